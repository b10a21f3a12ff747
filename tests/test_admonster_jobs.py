"""Scheduled jobs: token_check through a `Sessions` implementation of the Protocol, the outbox job, the Scheduler."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from admonster_config import Settings
from admonster_jobs import (
    JOBS,
    DailyAt,
    Every,
    JobContext,
    JobResult,
    JobSpec,
    Scheduler,
    Sessions,
    TokenStatus,
    Weekly,
    run_job,
    run_slot,
)
from admonster_notify import Notifier
from admonster_store import Store, Workspace

pytestmark = pytest.mark.usefixtures("clean_environment")


class StoreSessions:
    """The `Sessions` seam answered from the store: a token is valid unless revoked here, expiring as saved."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.revoked: dict[int, str] = {}
        self.broken: set[int] = set()
        self.calls: list[str] = []

    async def workspaces(self) -> list[Workspace]:
        return await self.store.list_workspaces()

    async def token_status(self, workspace: Workspace) -> TokenStatus:
        self.calls.append(workspace.name)
        if workspace.id in self.broken:
            raise ConnectionError("graph.facebook.com unreachable")
        token = await self.store.load_token(workspace.id)
        reason = self.revoked.get(workspace.id)
        return TokenStatus(
            valid=reason is None,
            expires_at=token.expires_at,
            scopes=token.scopes or [],
            missing_scopes=[s for s in ("ads_management", "ads_read") if s not in (token.scopes or [])],
            user_id=token.user_id,
            app_id=token.app_id,
            reason=reason,
            checked_at=self.store.clock(),
        )


@pytest.fixture
async def store(store_target, clock):
    """The store on each engine: SQLite in memory, then a fresh PostgreSQL database."""
    async with await Store.open(store_target, secret_key=Fernet.generate_key(), clock=clock) as opened:
        yield opened


@pytest.fixture
async def context(store, clock):
    settings = Settings(_env_file=None)
    notifier = Notifier(store, settings)
    ctx = JobContext(
        store=store, notifier=notifier, settings=settings, sessions=StoreSessions(store), clock=clock, tz=UTC
    )
    try:
        yield ctx
    finally:
        await notifier.close()


async def inbox(ctx: JobContext, workspace: Workspace) -> list[str]:
    return [n.subject for n in await ctx.store.list_notifications(workspace.id, channel="inbox")]


def test_sessions_fake_implements_the_protocol(store):
    assert isinstance(StoreSessions(store), Sessions)


def test_registry_has_the_documented_jobs():
    assert JOBS["token_check"].schedule == DailyAt(3, 0)
    assert JOBS["outbox"].schedule == Every(60)
    assert JOBS["alerts"].schedule == Every(3600)
    assert JOBS["experiments"].schedule == Every(3600)
    assert JOBS["reconcile"].schedule == Every(3600)
    assert JOBS["insights_sync"].schedule == DailyAt(4, 0)
    assert JOBS["weekly_report"].schedule == Weekly(0, 8, 0)
    assert JOBS["spend_billing"].schedule == DailyAt(6, 0)
    assert all(spec.name == name and spec.description for name, spec in JOBS.items())
    assert list(JOBS) == [
        "token_check",
        "outbox",
        "alerts",
        "experiments",
        "reconcile",
        "insights_sync",
        "weekly_report",
        "spend_billing",
    ]
    assert JOBS["experiments"].description.startswith("Check running A/B tests: stop clear losers")


# -- token_check ------------------------------------------------------------------------------------------------


async def test_expiry_warnings_7_days_then_1_day_once_each(context, store, clock):
    shop = await store.ensure_workspace("shop")
    await store.save_token(
        shop.id,
        token="EAAB-shop-token",
        expires_at=clock.now + timedelta(days=6, hours=12),
        scopes=["ads_management", "ads_read"],
    )
    first = await run_job("token_check", context)
    assert first.ok and "1 expiring" in first.summary and "1 notice" in first.summary
    [notice] = await inbox(context, shop)
    assert "expires in 6 days on 2026-03-08" in notice
    for _ in range(3):  # hourly runs do not repeat it
        clock.advance(3600)
        await run_job("token_check", context)
    assert len(await inbox(context, shop)) == 1

    clock.advance(timedelta(days=5, hours=18).total_seconds())  # 15 hours left
    await run_job("token_check", context)
    await run_job("token_check", context)
    notices = await inbox(context, shop)
    assert len(notices) == 2 and "expires in 15 hours on 2026-03-08" in notices[0]
    token = await store.load_token(shop.id)
    assert token.checked_at == clock.now and token.invalid_reason is None

    text = await context.notifier.inbox_text(shop.id)
    assert text.startswith("Notices:") and text.count("\n- ") == 2 and "/connect" in text
    assert await context.notifier.inbox_text(shop.id) is None


async def test_first_seen_within_a_day_warns_once_not_twice(context, store, clock):
    shop = await store.ensure_workspace("shop")
    await store.save_token(shop.id, token="EAAB-token", expires_at=clock.now + timedelta(hours=20))
    await run_job("token_check", context)
    clock.advance(3600)
    await run_job("token_check", context)
    assert len(await inbox(context, shop)) == 1


async def test_invalid_token_notifies_once_per_token(context, store, clock):
    shop = await store.ensure_workspace("shop")
    await store.save_token(shop.id, token="EAAB-first-token", expires_at=clock.now + timedelta(days=50))
    context.sessions.revoked[shop.id] = "Error validating access token: The user has not authorized application."
    for _ in range(3):
        result = await run_job("token_check", context)
        clock.advance(3600)
    assert "1 invalid" in result.summary
    [notice] = await store.list_notifications(shop.id, channel="inbox")
    assert notice.subject == "Facebook connection for workspace shop stopped working"
    assert notice.text == (
        "Facebook connection for workspace shop stopped working: Error validating access token: The user has not "
        "authorized application. Reconnect with /connect or `admonster connect`."
    )
    assert notice.level == "error"
    assert (await store.load_token(shop.id)).invalid_reason.startswith("Error validating access token")

    await store.save_token(shop.id, token="EAAB-second-token", expires_at=clock.now + timedelta(days=50))
    context.sessions.revoked.pop(shop.id)
    await run_job("token_check", context)
    assert (await store.load_token(shop.id)).invalid_reason is None
    context.sessions.revoked[shop.id] = "Session has been invalidated because the user changed their password."
    await run_job("token_check", context)
    await run_job("token_check", context)
    assert len(await inbox(context, shop)) == 2  # the new token's invalidation is news; once


async def test_healthy_and_never_expiring_tokens_get_no_notice(context, store, clock):
    healthy = await store.ensure_workspace("healthy")
    forever = await store.ensure_workspace("forever")
    empty = await store.ensure_workspace("no-token")
    await store.save_token(
        healthy.id, token="EAAB-h", expires_at=clock.now + timedelta(days=59), scopes=["ads_management", "ads_read"]
    )
    await store.save_token(
        forever.id, token="EAAB-f", kind="system_user", expires_at=0, scopes=["ads_management", "ads_read"]
    )
    result = await run_job("token_check", context)
    assert result.ok and result.summary.startswith("checked 2 token(s): 2 healthy, 0 expiring, 0 invalid")
    assert any("never expires" in line for line in result.details)
    assert any(line == "no-token: no token" for line in result.details)
    for workspace in (healthy, forever, empty):
        assert await store.list_notifications(workspace.id) == []
        assert await context.notifier.inbox_text(workspace.id) is None
    assert (await store.load_token(forever.id)).checked_at == clock.now


async def test_token_past_its_expiry_counts_as_invalid(context, store, clock):
    shop = await store.ensure_workspace("shop")
    await store.save_token(shop.id, token="EAAB-old", expires_at=clock.now - timedelta(hours=1))
    await run_job("token_check", context)
    [notice] = await store.list_notifications(shop.id)
    assert "expired on 2026-03-01" in notice.text


async def test_one_failing_workspace_does_not_stop_the_others(context, store, clock):
    down = await store.ensure_workspace("down")
    fine = await store.ensure_workspace("fine")
    for workspace in (down, fine):
        await store.save_token(workspace.id, token=f"EAAB-{workspace.name}", expires_at=clock.now + timedelta(days=3))
    context.sessions.broken.add(down.id)
    result = await run_job("token_check", context)
    assert result.ok is False and "1 not checked" in result.summary
    assert any("down: could not check" in line for line in result.details)
    assert len(await inbox(context, fine)) == 1 and await inbox(context, down) == []
    assert (await store.last_job_run("token_check")).ok is False


async def test_warnings_reach_the_webhook_too(store, clock, aiohttp_server):
    received = []

    async def hook(request):
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    settings = Settings(_env_file=None, notify_webhook_url=str(server.make_url("/hook")))
    async with Notifier(store, settings) as notifier:
        ctx = JobContext(
            store=store, notifier=notifier, settings=settings, sessions=StoreSessions(store), clock=clock, tz=UTC
        )
        shop = await store.ensure_workspace("shop")
        await store.save_token(shop.id, token="EAAB-x", expires_at=clock.now + timedelta(days=2))
        await run_job("token_check", ctx)
        outbox = await run_job("outbox", ctx)
        assert outbox.ok and outbox.summary == "1 sent, 0 retrying, 0 failed"
        assert (await run_job("outbox", ctx)).summary == "0 sent, 0 retrying, 0 failed"
    assert len(received) == 1 and received[0]["text"].startswith("*Facebook connection for workspace shop expires")
    assert received[0]["workspace"] == "shop"


# -- run_job ----------------------------------------------------------------------------------------------------


async def test_unknown_job_names_the_closest(context):
    with pytest.raises(ValueError, match=re.escape("Unknown job 'token_chek'. Did you mean token_check?")) as caught:
        await run_job("token_chek", context)
    assert "\n" not in str(caught.value) and "outbox" in str(caught.value)
    with pytest.raises(
        ValueError,
        match="Fix: use one of alerts, experiments, insights_sync, outbox, reconcile, spend_billing, token_check, weekly_report",
    ):
        await run_job("zzz", context)


async def test_run_job_records_the_run(context, store, clock):
    result = await run_job("outbox", context)
    run = await store.last_job_run("outbox")
    assert (run.last_run_at, run.ok, run.summary) == (clock.now, True, result.summary)


# -- Scheduler --------------------------------------------------------------------------------------------------


def daily(hour=3, minute=0) -> JobSpec:
    async def noop(ctx):
        return JobResult("daily", True, "ran")

    return JobSpec("daily", DailyAt(hour, minute), noop)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_next_run_daily_across_midnight_in_utc(context):
    scheduler = Scheduler([daily()], context, tz="UTC")
    assert scheduler.next_run("daily", utc(2026, 3, 1, 2, 59)) == utc(2026, 3, 1, 3, 0)
    assert scheduler.next_run("daily", utc(2026, 3, 1, 3, 0)) == utc(2026, 3, 2, 3, 0)  # strictly after
    assert scheduler.next_run("daily", utc(2026, 3, 1, 23, 30)) == utc(2026, 3, 2, 3, 0)
    assert scheduler.next_run("daily", utc(2026, 12, 31, 23, 59)) == utc(2027, 1, 1, 3, 0)


def test_next_run_in_a_given_timezone(context):
    tokyo = Scheduler([daily()], context, tz="Asia/Tokyo")
    # 17:00 UTC is 02:00 next day in Tokyo: 03:00 JST is one hour later.
    assert tokyo.next_run("daily", utc(2026, 3, 1, 17, 0)) == utc(2026, 3, 1, 18, 0)
    assert tokyo.next_run("daily", utc(2026, 3, 1, 18, 30)) == utc(2026, 3, 2, 18, 0)
    new_york = Scheduler([daily()], context, tz=ZoneInfo("America/New_York"))
    assert new_york.next_run("daily", utc(2026, 3, 1, 12, 0)) == utc(2026, 3, 2, 8, 0)  # 03:00 EST
    assert new_york.next_run("daily", utc(2026, 3, 7, 12, 0)) == utc(2026, 3, 8, 7, 0)  # 03:00 EDT: DST began
    skipped = Scheduler([daily(2, 30)], context, tz="America/New_York")  # 02:30 does not exist on 2026-03-08
    assert skipped.next_run("daily", utc(2026, 3, 7, 12, 0)) == utc(2026, 3, 8, 7, 30)


def test_next_run_defaults_to_machine_local_time(store, clock):
    ctx = JobContext(store=store, notifier=None, settings=Settings(_env_file=None), sessions=StoreSessions(store))
    scheduler = Scheduler([daily()], ctx)
    after = utc(2026, 6, 1, 12, 0)
    result = scheduler.next_run("daily", after)
    assert after < result <= after + timedelta(days=1, hours=1)
    assert (result.astimezone().hour, result.astimezone().minute) == (3, 0)


def test_next_run_weekly_monday_morning(context):
    weekly = JobSpec("weekly", Weekly(0, 8, 0), None)
    scheduler = Scheduler([weekly], context, tz="Asia/Tokyo")
    # 2026-03-01 is a Sunday; Monday 08:00 in Tokyo is 2026-03-01 23:00 UTC.
    assert scheduler.next_run("weekly", utc(2026, 3, 1, 12, 0)) == utc(2026, 3, 1, 23, 0)
    assert scheduler.next_run("weekly", utc(2026, 3, 1, 23, 0)) == utc(2026, 3, 8, 23, 0)  # strictly after: a week on
    assert str(weekly.schedule) == "weekly on Monday at 08:00"
    with pytest.raises(ValueError):
        Weekly(7, 8)


def test_next_run_every_and_the_timezone_setting(store):
    ctx = JobContext(
        store=store,
        notifier=None,
        settings=Settings(_env_file=None, timezone="Asia/Tokyo"),
        sessions=StoreSessions(store),
    )
    scheduler = Scheduler([daily(), JobSpec("tick", Every(60), None)], ctx)
    assert str(scheduler.tz) == "Asia/Tokyo"
    assert scheduler.next_run("tick", utc(2026, 3, 1, 12, 0)) == utc(2026, 3, 1, 12, 1)
    with pytest.raises(ValueError):
        DailyAt(24, 0)
    with pytest.raises(ValueError):
        Every(0)


async def test_run_pending_runs_due_jobs_once(context, store, clock):
    runs: list[tuple[str, datetime]] = []

    def job(name, schedule):
        async def run(ctx):
            runs.append((name, ctx.now()))
            return JobResult(name, True, "ran")

        return JobSpec(name, schedule, run)

    jobs = [job("daily", DailyAt(3, 0)), job("tick", Every(60))]
    scheduler = Scheduler(jobs, context, tz="UTC")

    async def step(at: datetime) -> list[str]:
        clock.now = at
        return [r.name for r in await scheduler.run_pending(at)]

    start = clock.now  # 2026-03-01 12:00 UTC
    assert await step(start) == ["tick"]  # a never-run interval job starts at once; daily waits for 03:00
    assert await step(start) == []
    assert await step(start + timedelta(seconds=30)) == []
    assert await step(start + timedelta(seconds=60)) == ["tick"]
    assert await step(utc(2026, 3, 2, 2, 59, 30)) == ["tick"]
    assert await step(utc(2026, 3, 2, 3, 0)) == ["daily"]
    assert await step(utc(2026, 3, 2, 3, 0, 10)) == []
    assert [name for name, _ in runs].count("daily") == 1
    assert (await store.last_job_run("daily")).last_run_at == utc(2026, 3, 2, 3, 0)

    # A restart two days later catches up once, not once per missed day.
    restarted = Scheduler(jobs, context, tz="UTC")
    clock.now = utc(2026, 3, 4, 10, 0)
    assert sorted(r.name for r in await restarted.run_pending(clock.now)) == ["daily", "tick"]
    assert await restarted.run_pending(clock.now) == []
    assert restarted.next_run("daily", (await store.last_job_run("daily")).last_run_at) == utc(2026, 3, 5, 3, 0)


async def test_a_failing_job_is_reported_and_others_still_run(context, store):
    async def boom(ctx):
        raise RuntimeError("database on fire")

    async def fine(ctx):
        return JobResult("fine", True, "ok")

    scheduler = Scheduler([JobSpec("boom", Every(60), boom), JobSpec("fine", Every(60), fine)], context, tz="UTC")
    results = await scheduler.run_pending()
    assert [(r.name, r.ok) for r in results] == [("boom", False), ("fine", True)]
    assert results[0].summary == "failed: RuntimeError: database on fire"
    assert (await store.last_job_run("boom")).ok is False
    assert await scheduler.run_pending() == []  # a failure does not make it run in a hot loop


async def test_run_forever_runs_jobs_and_stops_on_the_event(store):
    ticks = []
    stop = asyncio.Event()

    async def tick(ctx):
        ticks.append(ctx.now())
        if len(ticks) >= 3:
            stop.set()
        return JobResult("tick", True, "tick")

    real_clock = lambda: datetime.now(UTC)  # noqa: E731
    ctx = JobContext(
        store=store, notifier=None, settings=Settings(_env_file=None), sessions=StoreSessions(store), clock=real_clock
    )
    scheduler = Scheduler([JobSpec("tick", Every(0.05), tick), daily()], ctx, tz="UTC")
    await asyncio.wait_for(scheduler.run_forever(stop), timeout=5)
    assert len(ticks) == 3

    # Sleeping until 03:00 tomorrow, it still stops at once when told to.
    waiting = Scheduler([daily()], ctx, tz="UTC")
    stop = asyncio.Event()
    task = asyncio.create_task(waiting.run_forever(stop))
    await asyncio.sleep(0.1)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, timeout=1)


async def test_scheduler_delivers_the_outbox_and_drain_keeps_the_rest(context, store, clock, aiohttp_server):
    answers = [500, 500, 500]

    async def hook(request):
        await request.read()
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    shop = await store.ensure_workspace("shop")
    await store.set_setting(shop.id, "notify_webhook_url", str(server.make_url("/hook")))
    await context.notifier.notify(shop.id, "Queued", "body")
    scheduler = Scheduler(JOBS, context, tz="UTC")
    ran = {r.name: r for r in await scheduler.run_pending(clock.now)}
    assert sorted(ran) == ["alerts", "experiments", "outbox", "reconcile"]  # the never-run interval jobs start at once
    for job in ("alerts", "experiments", "reconcile"):  # these sessions have no Facebook
        assert ran[job].ok and "none connected to Facebook" in ran[job].summary
    outbox = ran["outbox"]
    assert outbox.name == "outbox" and outbox.summary == "0 sent, 1 retrying, 0 failed"
    clock.advance(60)
    report = await context.notifier.drain(timeout=5)  # shutdown: one more try, still 500
    assert report.retrying == 1
    [hook_message] = await store.list_notifications(shop.id, channel="webhook")
    assert (hook_message.status, hook_message.attempts) == ("pending", 2)
    clock.advance(300)
    assert (await scheduler.run_pending(clock.now))[0].summary == "0 sent, 1 retrying, 0 failed"
    clock.advance(900)
    assert (await scheduler.run_pending(clock.now))[0].summary == "1 sent, 0 retrying, 0 failed"


# -- replicas on one database (issue 21, item 3) -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_target(request, tmp_path) -> str:
    """One database several processes open: a SQLite file, then a fresh PostgreSQL database."""
    return str(tmp_path / "shared.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


async def test_replicas_on_one_database_run_each_job_slot_once(shared_target, clock):
    """Three schedulers (as three `serve` replicas), each with its own store on one database and the same clock, all
    seeing every job come due at once: every slot of every job runs exactly once, whichever replica wins it."""
    key = Fernet.generate_key()
    runs: list[tuple[str, str, datetime]] = []

    def job(name, schedule):
        async def run(ctx):
            await asyncio.sleep(0.01)  # the others look while it runs
            runs.append((name, ctx.store.path, ctx.now()))
            return JobResult(name, True, "ran")

        return JobSpec(name, schedule, run)

    jobs = [job("alerts", Every(900)), job("token_check", DailyAt(3, 0)), job("weekly_report", Weekly(0, 8))]
    stores = [await Store.open(shared_target, secret_key=key, clock=clock) for _ in range(3)]
    settings = Settings(_env_file=None)
    notifiers = [Notifier(store, settings) for store in stores]
    try:
        schedulers = [
            Scheduler(
                jobs,
                JobContext(
                    store=store,
                    notifier=notifier,
                    settings=settings,
                    sessions=StoreSessions(store),
                    clock=clock,
                    tz=UTC,
                ),
                tz="UTC",
            )
            for store, notifier in zip(stores, notifiers)
        ]
        start = clock.now  # 2026-03-01 12:00 UTC, a Sunday
        for step in range(0, 8 * 24 * 4):  # eight days in 15-minute steps, each replica looking at every step
            clock.now = start + timedelta(minutes=15 * step)
            await asyncio.gather(*(scheduler.run_pending(clock.now) for scheduler in schedulers))
        by_job = {spec.name: [at for name, _, at in runs if name == spec.name] for spec in jobs}
        assert len(by_job["alerts"]) == len(set(by_job["alerts"])) == 8 * 24 * 4  # every 15 minutes, once
        assert [at.day for at in by_job["token_check"]] == list(range(2, 10))  # 03:00 of each following day, once
        assert [at.date().isoformat() for at in by_job["weekly_report"]] == ["2026-03-02", "2026-03-09"]  # Mondays
    finally:
        for notifier in notifiers:
            await notifier.close()
        for store in stores:
            await store.close()


async def test_a_slot_claimed_by_a_replica_that_died_is_skipped_not_stuck(shared_target, clock):
    """A replica that claimed a slot and died before recording the run: the others skip that slot and run the next."""
    key = Fernet.generate_key()
    runs: list[datetime] = []

    async def run(ctx):
        runs.append(ctx.now())
        return JobResult("token_check", True, "ran")

    spec = JobSpec("token_check", DailyAt(3, 0), run)
    async with await Store.open(shared_target, secret_key=key, clock=clock) as store:
        settings = Settings(_env_file=None)
        notifier = Notifier(store, settings)
        try:
            scheduler = Scheduler(
                [spec],
                JobContext(
                    store=store,
                    notifier=notifier,
                    settings=settings,
                    sessions=StoreSessions(store),
                    clock=clock,
                    tz=UTC,
                ),
                tz="UTC",
            )
            due = await scheduler.due_at(spec, clock.now)
            assert await store.claim_job_slot("token_check", run_slot(spec, due), "dead-replica")
            clock.now = due + timedelta(minutes=1)
            assert await scheduler.run_pending(clock.now) == [] and runs == []
            assert await scheduler.due_at(spec, clock.now) == due + timedelta(days=1)  # waits for the next slot
            clock.now = due + timedelta(days=1, minutes=1)
            assert [r.name for r in await scheduler.run_pending(clock.now)] == ["token_check"] and len(runs) == 1
        finally:
            await notifier.close()

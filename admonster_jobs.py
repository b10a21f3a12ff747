"""Ad Monster scheduled jobs: a registry (`JOBS`), the jobs themselves, and the `Scheduler` inside `admonster serve`.

Jobs: `token_check` (daily at 03:00 local time) checks every workspace's Facebook token and warns 7 days and
1 day before it expires and once when it stops working; `outbox` (every 60 s) delivers due notifications;
`alerts` (hourly) evaluates alert rules; `experiments` (hourly) checks running A/B tests (stop losers, declare and
scale winners); `reconcile` (hourly) settles writes whose outcome was lost or cut short; `insights_sync` (daily 04:00)
keeps yesterday's snapshots;
`weekly_report` (Mondays 08:00) sends the weekly report; `spend_billing` (daily 06:00) writes the spend ledger and
pauses/resumes campaigns on billing problems. The Facebook jobs call ops through each workspace's `fi_facebook`
session (`FacebookSessions.facebook_for`, interface "job"); in sandbox mode their "now" is the sandbox's clock.
`admonster jobs run NAME` runs one on demand through `run_job`. The product provides the `Sessions` object
(the workspaces and a token's health from `/debug_token`); this module only defines its shape.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from admonster_notify import Notifier
from admonster_store import SecretKeyError, Store, Workspace
from fb_utils import closest_names, get_logger

log = get_logger("admonster_jobs")

WARN_DAYS = (7, 1)
MAX_IDLE_SECONDS = 300.0  # the scheduler wakes at least this often (clock changes, new jobs)
ERROR_PAUSE_SECONDS = 30.0

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[Any]]


# -- schedules ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyAt:
    """Once a day at hour:minute in the scheduler's time zone."""

    hour: int
    minute: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ValueError(f"DailyAt({self.hour}, {self.minute}) is not a time of day. Fix: hour 0-23, minute 0-59.")

    def __str__(self) -> str:
        return f"daily at {self.hour:02d}:{self.minute:02d}"


@dataclass(frozen=True)
class Every:
    """Every `seconds` seconds."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"Every({self.seconds}) needs a positive interval. Fix: pass seconds > 0.")

    def __str__(self) -> str:
        return f"every {self.seconds:g}s"


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Weekly:
    """Once a week on `weekday` (0 = Monday) at hour:minute in the scheduler's time zone."""

    weekday: int
    hour: int
    minute: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.weekday <= 6 and 0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ValueError(
                f"Weekly({self.weekday}, {self.hour}, {self.minute}) is not a time of the week. "
                "Fix: weekday 0-6 (Monday 0), hour 0-23, minute 0-59."
            )

    def __str__(self) -> str:
        return f"weekly on {WEEKDAYS[self.weekday].capitalize()} at {self.hour:02d}:{self.minute:02d}"


Schedule = DailyAt | Every | Weekly


# -- the product seam ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenStatus:
    """A token's health as Facebook reports it (debug_token and /me/permissions)."""

    valid: bool
    expires_at: datetime | None = None  # None: never expires
    scopes: list[str] = field(default_factory=list)
    missing_scopes: list[str] = field(default_factory=list)
    user_id: str | None = None
    app_id: str | None = None
    reason: str | None = None  # why it is invalid
    checked_at: datetime | None = None


@runtime_checkable
class Sessions(Protocol):
    """What jobs need from the product: the workspaces, and the health of one workspace's token."""

    async def workspaces(self) -> list[Workspace]:
        """Every workspace the jobs should look at."""
        ...

    async def token_status(self, workspace: Workspace) -> TokenStatus:
        """The health of the workspace's stored token, asked of Facebook (or the sandbox)."""
        ...


@runtime_checkable
class FacebookSessions(Protocol):
    """What the Facebook jobs (alerts, experiments, insights_sync, weekly_report, spend_billing) need besides `Sessions`:
    a workspace's `fi_facebook.Facebook` session; jobs call ops through its `call(op, args, interface="job")`."""

    async def facebook_for(self, workspace: Workspace) -> Any: ...


# -- jobs ------------------------------------------------------------------------------------------------------


@dataclass
class JobContext:
    """Everything a job may use."""

    store: Store
    notifier: Notifier
    settings: Any
    sessions: Sessions
    clock: Clock | None = None
    tz: tzinfo | None = None  # None: this machine's local time
    # The runtime's clock when it is not this machine's (the sandbox's in sandbox mode): read before each run.
    time_source: Callable[[], Awaitable[datetime]] | None = None
    _offset: timedelta | None = field(default=None, repr=False)

    def now(self) -> datetime:
        """The current time, timezone-aware: the clock given, else the runtime's (as last read), else the store's."""
        if self.clock is None and self._offset is not None:
            return datetime.now(UTC) + self._offset
        moment = (self.clock or self.store.clock)()
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment

    async def sync_clock(self) -> None:
        """Read the runtime's clock (the sandbox's `GET /__sandbox/clock`); `now()` follows it from then on."""
        if self.time_source is not None:
            moment = await self.time_source()
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            self._offset = moment - datetime.now(UTC)

    def local(self, moment: datetime) -> datetime:
        """`moment` in the jobs' time zone."""
        return moment.astimezone(self.tz) if self.tz is not None else moment.astimezone()


@dataclass(frozen=True)
class JobResult:
    """How one job run went: one summary line and details (one line each)."""

    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'FAILED'}: {self.summary}"


@dataclass(frozen=True)
class JobSpec:
    """A named job with its schedule."""

    name: str
    schedule: Schedule
    run: Callable[[JobContext], Awaitable[JobResult]]
    description: str = ""


def _expiry(value: Any) -> datetime | None:
    """A TokenStatus expiry as an aware datetime; None/0 (never expires) -> None."""
    if value is None or value == 0:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return None if value.timestamp() <= 0 else value


def _in_words(remaining: timedelta) -> str:
    days = remaining.total_seconds() / 86400
    if days >= 1:
        whole = math.floor(days)
        return f"{whole} day" + ("s" if whole != 1 else "")
    hours = max(1, math.floor(remaining.total_seconds() / 3600))
    return f"{hours} hour" + ("s" if hours != 1 else "")


RECONNECT = "Reconnect with /connect or `admonster connect`."


async def token_check(ctx: JobContext) -> JobResult:
    """Check every workspace's token; warn once 7 days and once 1 day before expiry, and once when invalid."""
    now = ctx.now()
    details: list[str] = []
    counts = {"healthy": 0, "expiring": 0, "invalid": 0, "unchecked": 0}
    notices = 0
    ok = True
    for workspace in await ctx.sessions.workspaces():
        try:
            stored = await ctx.store.load_token(workspace.id)
        except SecretKeyError as exc:
            ok = False
            counts["unchecked"] += 1
            details.append(f"{workspace.name}: token cannot be read ({exc})")
            continue
        if stored is None:
            details.append(f"{workspace.name}: no token")
            continue
        try:
            status = await ctx.sessions.token_status(workspace)
        except Exception as exc:  # noqa: BLE001 - one workspace's failure must not stop the others
            ok = False
            counts["unchecked"] += 1
            details.append(f"{workspace.name}: could not check the token ({type(exc).__name__}: {exc})")
            log.warning("token_check_failed", workspace=workspace.name, error=f"{type(exc).__name__}: {exc}")
            continue
        expires_at = _expiry(status.expires_at)
        reason = status.reason
        valid = status.valid
        if valid and expires_at is not None and expires_at <= now:
            valid, reason = False, f"the token expired on {_date(ctx, expires_at)}"
        await ctx.store.mark_token_checked(
            workspace.id,
            valid=valid,
            expires_at=expires_at if (valid or expires_at is not None) else stored.expires_at,
            scopes=list(status.scopes) if status.scopes else None,
            reason=None if valid else (reason or "Facebook reports the token as invalid"),
        )
        if not valid:
            counts["invalid"] += 1
            why = reason or "Facebook reports the token as invalid"
            key = f"invalid:{stored.fingerprint}"
            if await ctx.store.record_token_warning(workspace.id, key):
                notices += 1
                await ctx.notifier.notify(
                    workspace.id,
                    f"Facebook connection for workspace {workspace.name} stopped working",
                    f"Facebook connection for workspace {workspace.name} stopped working: {why.rstrip('.')}. "
                    f"{RECONNECT}",
                    dedupe_key=key,
                    level="error",
                )
            details.append(f"{workspace.name}: invalid ({why})")
            continue
        if expires_at is None:
            counts["healthy"] += 1
            details.append(f"{workspace.name}: valid, never expires" + _missing(status))
            continue
        remaining = expires_at - now
        window = next((days for days in sorted(WARN_DAYS) if remaining <= timedelta(days=days)), None)
        if window is None:
            counts["healthy"] += 1
            details.append(f"{workspace.name}: valid, expires in {_in_words(remaining)}" + _missing(status))
            continue
        counts["expiring"] += 1
        stamp = expires_at.astimezone(UTC).isoformat(timespec="seconds")
        key = f"expiry:{window}d:{stamp}"
        first = await ctx.store.record_token_warning(workspace.id, key)
        for wider in (days for days in WARN_DAYS if days > window):  # a later, wider warning would be stale
            await ctx.store.record_token_warning(workspace.id, f"expiry:{wider}d:{stamp}")
        if first:
            notices += 1
            when = f"in {_in_words(remaining)} on {_date(ctx, expires_at)}"
            await ctx.notifier.notify(
                workspace.id,
                f"Facebook connection for workspace {workspace.name} expires {when}",
                f"The Facebook token of workspace {workspace.name} expires {when}. "
                f"{RECONNECT} Ads keep running, but Ad Monster cannot manage them after that.",
                dedupe_key=key,
                level="warning" if window > 1 else "error",
            )
        details.append(f"{workspace.name}: valid, expires in {_in_words(remaining)}" + _missing(status))
    checked = sum(counts.values())
    summary = (
        f"checked {checked} token(s): {counts['healthy']} healthy, {counts['expiring']} expiring, "
        f"{counts['invalid']} invalid"
        + (f", {counts['unchecked']} not checked" if counts["unchecked"] else "")
        + f"; {notices} notice(s) sent"
    )
    return JobResult("token_check", ok, summary, details)


def _missing(status: TokenStatus) -> str:
    return f"; missing scopes: {', '.join(status.missing_scopes)}" if status.missing_scopes else ""


def _date(ctx: JobContext, moment: datetime) -> str:
    return ctx.local(moment).strftime("%Y-%m-%d %H:%M %Z").strip()


async def deliver_outbox(ctx: JobContext) -> JobResult:
    """Deliver due email and webhook notifications."""
    report = await ctx.notifier.deliver_due()
    return JobResult("outbox", True, str(report), list(report.errors))


# -- Facebook jobs: every one reaches Facebook through the workspace's fi_facebook session (interface "job") --

BILLING_PROBLEM_STATUSES = {3: "UNSETTLED", 8: "PENDING_SETTLEMENT", 9: "IN_GRACE_PERIOD"}
ACCOUNT_ACTIVE = 1


async def _connected(ctx: JobContext) -> list[tuple[Workspace, Any]]:
    """(workspace, Facebook session) for every workspace connected to Facebook."""
    if not isinstance(ctx.sessions, FacebookSessions):
        return []
    found = []
    for workspace in await ctx.sessions.workspaces():
        if await ctx.store.load_token(workspace.id) is None:
            continue  # never connect a workspace behind the person's back (the sandbox would sign in its demo user)
        facebook = await ctx.sessions.facebook_for(workspace)
        if getattr(facebook, "graph", None) is not None:
            found.append((workspace, facebook))
    return found


async def _each_workspace(ctx: JobContext, name: str, work: Callable[[Workspace, Any], Awaitable[str]]) -> JobResult:
    """Run `work` for every connected workspace; one workspace's failure is reported and the others still run."""
    details, ok = [], True
    sessions = await _connected(ctx)
    for workspace, facebook in sessions:
        try:
            details.append(f"{workspace.name}: {await work(workspace, facebook)}")
        except Exception as exc:  # noqa: BLE001 - one workspace must not stop the others
            ok = False
            details.append(f"{workspace.name}: failed ({type(exc).__name__}: {exc})")
            log.warning(
                "job_workspace_failed", job=name, workspace=workspace.name, error=f"{type(exc).__name__}: {exc}"
            )
    summary = f"{len(sessions)} workspace(s)" + (
        ": " + "; ".join(details) if details else ": none connected to Facebook"
    )
    return JobResult(name, ok, summary[:400], details)


def _first_line(text: str) -> str:
    return (text or "").splitlines()[0] if text else ""


async def alerts_job(ctx: JobContext) -> JobResult:
    """Evaluate every workspace's alert rules; each firing is sent to chat, email and webhook."""

    async def work(workspace: Workspace, facebook: Any) -> str:
        result = await facebook.call("evaluate_alerts", {}, interface="job")
        fired = (result.data or {}).get("fired", [])
        for event in fired:  # a failed action is announced too, before the job fails
            await ctx.notifier.notify(
                workspace.id,
                event["subject"],
                event["text"],
                dedupe_key=f"alert:{event['rule_id']}:{event['fired_at']}",
                level="error" if event.get("outcome") == "failed" else "warning",
            )
        if not result.ok:
            raise RuntimeError(_first_line(result.text))
        return f"{(result.data or {}).get('checked', 0)} rule(s) checked, {len(fired)} fired"

    return await _each_workspace(ctx, "alerts", work)


async def experiments_job(ctx: JobContext) -> JobResult:
    """Check every workspace's running A/B tests; each decision (stop, winner, pause, scale) is sent as a notice."""

    async def work(workspace: Workspace, facebook: Any) -> str:
        result = await facebook.call("evaluate_experiments", {}, interface="job")
        for event in (result.data or {}).get("events", []):  # a failed action is announced too, before the job fails
            await ctx.notifier.notify(
                workspace.id,
                event["subject"],
                event["text"],
                dedupe_key=f"experiment:{event['experiment_id']}:{event['action']}:{event['at']}",
                level=event.get("level") or "info",
            )
        if not result.ok:
            raise RuntimeError(_first_line(result.text))
        return _first_line(result.text)

    return await _each_workspace(ctx, "experiments", work)


async def reconcile_job(ctx: JobContext) -> JobResult:
    """Settle every workspace's writes whose outcome was lost or cut short, from what Facebook shows; each write that
    turns out to have happened (or not) is announced, since the person was told its outcome was unknown."""

    async def work(workspace: Workspace, facebook: Any) -> str:
        result = await facebook.call("reconcile", {}, interface="job")
        if not result.ok:
            raise RuntimeError(_first_line(result.text))
        for settled in (result.data or {}).get("settled", []):
            line = next((x for x in result.text.splitlines() if x.startswith(f"- #{settled['audit_id']} ")), "")
            await ctx.notifier.notify(
                workspace.id,
                f"Write #{settled['audit_id']} settled: {settled['outcome']}",
                line.lstrip("- "),
                dedupe_key=f"reconcile:{settled['audit_id']}",
                level="info" if settled["outcome"] == "ok" else "warning",
            )
        return _first_line(result.text)

    return await _each_workspace(ctx, "reconcile", work)


async def insights_sync_job(ctx: JobContext) -> JobResult:
    """Keep yesterday's metrics of every campaign, ad set and ad as daily snapshots."""

    async def work(workspace: Workspace, facebook: Any) -> str:
        result = await facebook.call("sync_snapshots", {}, interface="job")
        if not result.ok:
            raise RuntimeError(_first_line(result.text))
        return _first_line(result.text)

    return await _each_workspace(ctx, "insights_sync", work)


async def weekly_report_job(ctx: JobContext) -> JobResult:
    """Send each workspace its weekly report (last 7 days against the 7 before) through the outbox."""

    async def work(workspace: Workspace, facebook: Any) -> str:
        result = await facebook.call("weekly_report", {}, interface="job")
        if not result.ok:
            raise RuntimeError(_first_line(result.text))
        period = (result.data or {}).get("period", {})
        subject = f"Weekly report {period.get('since', '')} to {period.get('until', '')}".strip()
        await ctx.notifier.notify(
            workspace.id, subject, result.text, dedupe_key=f"weekly:{period.get('until')}", level="info"
        )
        return subject

    return await _each_workspace(ctx, "weekly_report", work)


async def spend_billing_job(ctx: JobContext) -> JobResult:
    """Write yesterday's spend per ad account; pause on a billing problem, resume what was paused once it is fixed."""

    async def work(workspace: Workspace, facebook: Any) -> str:
        result = await facebook.call("sync_spend", {}, interface="job")
        if not result.ok:
            raise RuntimeError(_first_line(result.text))
        done = [_first_line(result.text)]
        for account in (result.data or {}).get("accounts", []):
            status, account_id = account.get("account_status"), account["ad_account_id"]
            if status in BILLING_PROBLEM_STATUSES and not account.get("billing_paused"):
                paused = await facebook.call("billing_failed", {"ad_account_id": account_id}, interface="job")
                await ctx.notifier.notify(
                    workspace.id,
                    f"Billing problem on {account.get('name') or account_id}: campaigns paused",
                    f"Facebook reports ad account {account_id} as {BILLING_PROBLEM_STATUSES[status]}. {paused.text}",
                    dedupe_key=f"billing_failed:{account_id}:{(paused.data or {}).get('pause_id')}",
                    level="error",
                )
                done.append(f"{account_id} {BILLING_PROBLEM_STATUSES[status]}: {_first_line(paused.text)}")
            elif status == ACCOUNT_ACTIVE and account.get("billing_paused"):
                resumed = await facebook.call("billing_recovered", {"ad_account_id": account_id}, interface="job")
                if resumed.ok:
                    subject = f"Billing fixed on {account.get('name') or account_id}: campaigns resumed"
                    text = resumed.text
                else:
                    confirm = (resumed.data or {}).get("confirmation_id")
                    subject = f"Billing fixed on {account.get('name') or account_id}: resume the paused campaigns?"
                    text = (
                        f"Facebook reports ad account {account_id} active again. "
                        + (f"Resuming needs your confirmation: /confirm {confirm}. " if confirm else "")
                        + resumed.text
                    )
                await ctx.notifier.notify(
                    workspace.id,
                    subject,
                    text,
                    dedupe_key=f"billing_recovered:{account_id}:{account.get('pause_id')}",
                    level="info" if resumed.ok else "warning",
                )
                done.append(f"{account_id} active again: {_first_line(resumed.text)}")
        return "; ".join(done)

    return await _each_workspace(ctx, "spend_billing", work)


JOBS: dict[str, JobSpec] = {
    "token_check": JobSpec(
        "token_check",
        DailyAt(3, 0),
        token_check,
        "Check every workspace's Facebook token; warn before expiry and when it stops working.",
    ),
    "outbox": JobSpec("outbox", Every(60), deliver_outbox, "Deliver due email and webhook notifications."),
    "alerts": JobSpec(
        "alerts",
        Every(3600),
        alerts_job,
        "Evaluate alert rules; notify, pause or scale as each rule says, once per cooldown.",
    ),
    "experiments": JobSpec(
        "experiments",
        Every(3600),
        experiments_job,
        "Check running A/B tests: stop clear losers, declare winners at the chosen certainty or when "
        "time is up, pause losers, scale winners within the guardrails.",
    ),
    "reconcile": JobSpec(
        "reconcile",
        Every(3600),
        reconcile_job,
        "Settle writes whose outcome was lost or cut short (a timeout, a crash), from what Facebook shows.",
    ),
    "insights_sync": JobSpec(
        "insights_sync",
        DailyAt(4, 0),
        insights_sync_job,
        "Keep yesterday's metrics of every campaign, ad set and ad as daily snapshots.",
    ),
    "weekly_report": JobSpec(
        "weekly_report",
        Weekly(0, 8, 0),
        weekly_report_job,
        "Send the weekly report: last 7 days against the 7 before, top campaigns, recommendations.",
    ),
    "spend_billing": JobSpec(
        "spend_billing",
        DailyAt(6, 0),
        spend_billing_job,
        "Write yesterday's spend per ad account; pause on billing problems, resume once fixed.",
    ),
}


def resolve_tz(value: tzinfo | str | None) -> tzinfo | None:
    """A tzinfo from a zone name, a tzinfo, or None (this machine's local time)."""
    if value is None or isinstance(value, tzinfo):
        return value
    return ZoneInfo(str(value))


def unknown_job_error(name: str, jobs: Mapping[str, JobSpec]) -> ValueError:
    """The error for a job name that does not exist, naming the closest ones."""
    close = closest_names(name, jobs, cutoff=0.4)
    hint = f"Did you mean {', '.join(close)}? " if close else ""
    return ValueError(f"Unknown job {name!r}. {hint}Fix: use one of {', '.join(sorted(jobs))}.")


async def _run_spec(spec: JobSpec, context: JobContext, *, ran_at: datetime | None = None) -> JobResult:
    try:
        result = await spec.run(context)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing job is reported, never crashes the server
        log.error("job_failed", job=spec.name, error=f"{type(exc).__name__}: {exc}")
        result = JobResult(spec.name, False, f"failed: {type(exc).__name__}: {exc}", [])
    await context.store.record_job_run(spec.name, ran_at=ran_at or context.now(), ok=result.ok, summary=result.summary)
    return result


async def run_job(name: str, context: JobContext, jobs: Mapping[str, JobSpec] | None = None) -> JobResult:
    """Run one job now (`admonster jobs run NAME`) and record the run; ValueError naming close names if unknown."""
    jobs = JOBS if jobs is None else jobs
    spec = jobs.get(str(name).strip())
    if spec is None:
        raise unknown_job_error(name, jobs)
    await context.sync_clock()
    return await _run_spec(spec, context)


def run_slot(spec: JobSpec, due: datetime) -> str:
    """The run slot a due run belongs to, the same in every process that shares the database: an interval job's
    interval number, a daily or weekly job's scheduled time (UTC)."""
    if isinstance(spec.schedule, Every):
        return f"every {spec.schedule.seconds:g}s #{int(due.timestamp() // spec.schedule.seconds)}"
    return due.astimezone(UTC).isoformat()


class Scheduler:
    """Runs jobs when their time comes; the last run of each job is kept in the store, so restarts catch up once."""

    def __init__(
        self,
        jobs: Mapping[str, JobSpec] | Iterable[JobSpec],
        context: JobContext,
        *,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        tz: tzinfo | str | None = None,
    ) -> None:
        specs = list(jobs.values()) if isinstance(jobs, Mapping) else list(jobs)
        self.jobs: dict[str, JobSpec] = {spec.name: spec for spec in specs}
        self.context = context
        self.clock: Clock = clock or context.now
        self._sleep = sleep
        self.tz = resolve_tz(tz if tz is not None else (context.tz or getattr(context.settings, "timezone", None)))
        if context.tz is None:
            context.tz = self.tz
        self._anchor: dict[str, datetime] = {}  # first time a never-run job was seen
        # Replicas on one database: each due run is a slot that one process claims (Store.claim_job_slot) and runs;
        # the others skip it, and remember it here so they wait for the next slot rather than this one again.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._taken: dict[str, datetime] = {}

    def now(self) -> datetime:
        """The scheduler's current time (aware)."""
        moment = self.clock()
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment

    def next_run(self, job: JobSpec | str, after: datetime) -> datetime:
        """The first time strictly after `after` when `job` is due (DailyAt in the scheduler's time zone)."""
        spec = self.jobs[job] if isinstance(job, str) else job
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        schedule = spec.schedule
        if isinstance(schedule, Every):
            return after + timedelta(seconds=schedule.seconds)
        at = time(schedule.hour, schedule.minute)
        local_after = self._local(after)
        day = local_after.date()
        for _ in range(10):
            candidate = self._at(day, at)
            if candidate > after and (not isinstance(schedule, Weekly) or day.weekday() == schedule.weekday):
                return candidate
            day += timedelta(days=1)
        raise AssertionError("unreachable: a later day always has the time")

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz) if self.tz is not None else moment.astimezone()

    def _at(self, day: Any, at: time) -> datetime:
        naive = datetime.combine(day, at)
        if self.tz is None:
            return naive.astimezone()  # the machine's local time, with its DST rules
        # Through UTC and back: a time skipped by a DST jump lands just after it, a repeated one on its first pass.
        return naive.replace(tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)

    async def due_at(self, job: JobSpec | str, now: datetime | None = None) -> datetime:
        """When `job` is next due: after its last recorded run; a never-run Every job is due at once."""
        spec = self.jobs[job] if isinstance(job, str) else job
        now = now or self.now()
        last = await self.context.store.last_job_run(spec.name)
        seen = [
            moment for moment in (last.last_run_at if last else None, self._taken.get(spec.name)) if moment is not None
        ]
        if seen:
            return self.next_run(spec, max(seen))
        if isinstance(spec.schedule, Every):
            return now
        anchor = self._anchor.setdefault(spec.name, now)
        return self.next_run(spec, anchor)

    async def run_pending(self, now: datetime | None = None) -> list[JobResult]:
        """Run (in order) each job whose time has come at `now`; each runs at most once per call."""
        now = now or self.now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        results = []
        for spec in self.jobs.values():
            due = await self.due_at(spec, now)
            if due > now:
                continue
            if await self.context.store.claim_job_slot(spec.name, run_slot(spec, due), self.owner):
                results.append(await _run_spec(spec, self.context, ran_at=now))
            else:  # another process runs this slot
                self._taken[spec.name] = due
                log.info("job_slot_taken", job=spec.name, slot=run_slot(spec, due))
        return results

    async def run_job(self, name: str) -> JobResult:
        """Run one of this scheduler's jobs now."""
        return await run_job(name, self.context, self.jobs)

    async def seconds_until_next(self, now: datetime | None = None) -> float:
        """Seconds until the earliest due job (0 when one is due)."""
        now = now or self.now()
        if not self.jobs:
            return MAX_IDLE_SECONDS
        soonest = min([await self.due_at(spec, now) for spec in self.jobs.values()])
        return max(0.0, (soonest - now).total_seconds())

    async def run_forever(self, stop_event: asyncio.Event) -> None:
        """Run due jobs until `stop_event` is set, sleeping until the next due job (or the stop) in between."""
        log.info("scheduler_started", jobs=sorted(self.jobs), tz=str(self.tz or "local"))
        while not stop_event.is_set():
            try:
                await self.context.sync_clock()
                await self.run_pending(self.now())
                wait = min(MAX_IDLE_SECONDS, await self.seconds_until_next(self.now()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. the database is briefly locked: try again later
                log.error("scheduler_error", error=f"{type(exc).__name__}: {exc}")
                wait = ERROR_PAUSE_SECONDS
            if stop_event.is_set():
                break
            await self._wait(stop_event, max(wait, 0.05))
        log.info("scheduler_stopped")

    async def _wait(self, stop_event: asyncio.Event, seconds: float) -> None:
        stopper = asyncio.ensure_future(stop_event.wait())
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait({stopper, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stopper, sleeper):
                if not task.done():
                    task.cancel()
            await asyncio.gather(stopper, sleeper, return_exceptions=True)

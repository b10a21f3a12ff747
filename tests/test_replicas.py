"""Three `admonster serve` replicas on one PostgreSQL database and one Graph API (a standalone sandbox), as an
operator runs them behind a load balancer (issue 21, item 5): a change held for confirmation on one replica is
confirmed on another and refused as used on the third, the audit log every replica reads is the same one, and the
scheduled jobs the three run at once each claim their slot once. At scale (FLEET workspaces, each with an alert and
an experiment due): every job slot runs once, every campaign is paused once (the audit log and the sandbox's own
count of writes agree), every notification reaches the webhook once, and each replica stops cleanly on SIGTERM after
draining the outbox. Replicas opening an empty database at once migrate it once (the advisory lock). Real processes, real HTTP,
no mocks; `make bench` (bench/replicas.py) runs the scale proof with hundreds more workspaces."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import aiohttp
import asyncpg
import pytest
from cryptography.fernet import Fernet

import replicakit
from admonster_jobs import JOBS, Every
from admonster_store import Store, head_revision
from test_admonster_bot import ROOT, StandaloneSandbox, _cli
from testkit import free_port

FLEET = 120  # workspaces in the scale proof here (about 25 s); bench/replicas.py runs 300


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "a replica did not start"
            time.sleep(0.2)


async def _tool(url: str, key: str, op: str, args: dict | None = None) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{url}/v1/tools/facebook", json={"op": op, "args": args or {}}, headers={"Authorization": f"Bearer {key}"}
        ) as answer:
            return await answer.json()


@pytest.fixture
def replicas(tmp_path, postgres_url):
    """(urls, api key, sandbox, the database URL): three serve processes sharing one database and one sandbox."""
    sandbox = StandaloneSandbox(tmp_path)
    key = Fernet.generate_key().decode()
    processes = []
    try:

        def env_for(number: int) -> dict:
            return {
                **sandbox.live_env(tmp_path / f"home{number}"),
                "ADMONSTER_DATABASE_URL": postgres_url,
                "ADMONSTER_SECRET_KEY": key,
            }

        created = _cli(["workspace", "create", "agency"], env_for(0))
        assert created.returncode == 0, created.stderr
        api_key = re.search(r"amk_[A-Za-z0-9_-]+", created.stdout).group()
        token = sandbox.control("POST", "tokens", {"type": "SYSTEM_USER", "expires_in": 0})["access_token"]
        stored = _cli(["token", "set", "--workspace", "agency"], env_for(1), stdin=token + "\n")
        assert stored.returncode == 0, stored.stderr
        urls = []
        for number in range(3):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "admonster_bot", "serve", "--port", str(port)],
                cwd=ROOT,
                env=env_for(number),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            processes.append(process)
            _wait_for_port(port, process)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls, api_key, sandbox, postgres_url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        sandbox.stop()


async def test_a_confirmation_made_on_one_replica_is_confirmed_on_another_once(replicas):
    (first, second, third), key, _, _ = replicas
    listed = await _tool(first, key, "list_campaigns", {"status": ["ACTIVE"]})
    assert listed["ok"], listed["text"]
    target = next(c for c in listed["data"]["campaigns"] if c.get("daily_budget"))
    paused = await _tool(second, key, "pause_campaign", {"campaign_id": target["id"]})
    assert paused["ok"], paused["text"]
    held = await _tool(third, key, "resume_campaign", {"campaign_id": target["id"]})
    confirmation = held["data"]["confirmation_id"]
    assert not held["ok"] and held["data"]["error"] == "confirmation_required"

    answers = await asyncio.gather(
        _tool(first, key, "confirm", {"confirm": confirmation}),
        _tool(second, key, "confirm", {"confirm": confirmation}),
    )
    assert sorted(answer["ok"] for answer in answers) == [False, True]  # one replica ran it, the other says used
    audits = [await _tool(url, key, "audit_log") for url in (first, second, third)]
    entries = [[(e["id"], e["op"], e["outcome"]) for e in audit["data"]["entries"]] for audit in audits]
    assert entries[0] == entries[1] == entries[2]  # one audit log, whichever replica answers
    assert [op for _, op, outcome in entries[0] if outcome == "ok"].count("resume_campaign") == 1
    campaign = await _tool(third, key, "get_campaign", {"campaign_id": target["id"]})
    assert campaign["data"]["campaign"]["status"] == "ACTIVE"


async def test_an_ad_account_selected_on_one_replica_is_the_one_the_others_next_request_uses(replicas):
    """Each request reads the workspace's selections again: a replica whose session read them earlier follows a
    selection made on another replica since (with a stale copy it would list, or launch in, the old account)."""
    (first, second, third), key, sandbox, _ = replicas
    accounts = sandbox.control("GET", "objects?type=adaccount")["data"]
    before = await _tool(first, key, "list_campaigns")
    assert before["ok"], before["text"]
    other = next(a["id"] for a in accounts if a["id"] != before["data"]["ad_account_id"])
    selected = await _tool(second, key, "select_ad_account", {"ad_account_id": other})
    assert selected["ok"], selected["text"]
    after = await asyncio.gather(*(_tool(url, key, "list_campaigns") for url in (first, second, third)))
    assert [answer["data"]["ad_account_id"] for answer in after] == [other] * 3, [a["text"] for a in after]


async def test_three_replicas_running_their_schedulers_claim_each_job_slot_once(replicas):
    """Each replica's scheduler sees the hourly jobs due at start (they never ran); all three look, one runs each."""
    urls, key, _, database_url = replicas
    assert all([(await _tool(url, key, "token_status"))["ok"] for url in urls])  # all three are up and serving
    hourly = {name for name, spec in JOBS.items() if isinstance(spec.schedule, Every) and spec.schedule.seconds >= 3600}
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        deadline = time.monotonic() + 60
        while True:  # until every hourly job has run (each replica's scheduler looks as soon as it starts)
            ran = {row["name"] for row in await connection.fetch("SELECT name FROM job_runs")}
            if hourly <= ran or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # the later replicas have looked too
        claims = await connection.fetch("SELECT name, slot, owner FROM job_slots")
    finally:
        await connection.close()
    assert hourly <= ran, f"not run: {sorted(hourly - ran)}"
    per_job = {name: [row for row in claims if row["name"] == name] for name in hourly}
    assert {name: len(rows) for name, rows in per_job.items()} == {name: 1 for name in hourly}  # one run, not three


HOURLY = {name for name, spec in JOBS.items() if isinstance(spec.schedule, Every) and spec.schedule.seconds >= 3600}


async def test_a_fleet_of_workspaces_on_three_replicas_acts_once_and_notifies_once(tmp_path, postgres_url):
    """FLEET workspaces, each with an alert that pauses its campaign and an experiment past its end (both variants get
    paused, no winner), on three replicas that start together: one replica runs each hourly slot, every campaign is
    paused once, every notice reaches the webhook once (sent by whichever replica claimed it, at the latest by the
    drain each does on SIGTERM), and a change held on one replica is confirmed on another."""
    sandbox, hook = replicakit.Sandbox(tmp_path), replicakit.WebhookReceiver()
    await sandbox.start()
    await hook.start()
    key = Fernet.generate_key().decode()
    replicas = replicakit.Replicas(tmp_path, postgres_url, key, sandbox, 3, {"ADMONSTER_NOTIFY_WEBHOOK_URL": hook.url})
    try:
        fleet = await replicakit.make_fleet(postgres_url, key, sandbox, FLEET)
        campaigns = list(fleet.alert_campaign.values()) + [
            c for pair in fleet.experiment_campaigns.values() for c in pair
        ]
        assert len(set(campaigns)) == 3 * FLEET
        await sandbox.control("POST", "stats/reset")
        await replicas.start(await sandbox.control("GET", "app"))
        ran = await replicakit.wait_for_jobs(postgres_url, HOURLY, 150)  # ~15 s on a quiet machine
        assert ran >= HOURLY, f"not run: {sorted(HOURLY - ran)}"
        writes = (await sandbox.control("GET", "stats"))["by_route"]
        async with aiohttp.ClientSession() as session:  # the health check a load balancer asks each replica
            for url in replicas.urls:
                async with session.get(f"{url}/healthz") as answer:
                    assert answer.status == 200 and (await answer.json())["ok"] is True

        # A change held for confirmation on one replica, confirmed on another, refused as used on the third.
        name = sorted(fleet.keys)[FLEET // 2]
        first, second, third = replicas.urls
        campaign = fleet.alert_campaign[fleet.ids[name]]
        held = await _tool(first, fleet.keys[name], "resume_campaign", {"campaign_id": campaign})
        assert not held["ok"] and held["data"]["error"] == "confirmation_required", held["text"]
        confirmed = await _tool(second, fleet.keys[name], "confirm", {"confirm": held["data"]["confirmation_id"]})
        again = await _tool(third, fleet.keys[name], "confirm", {"confirm": held["data"]["confirmation_id"]})
        assert confirmed["ok"] and not again["ok"], (confirmed["text"], again["text"])

        assert await replicas.stop() == [0, 0, 0]  # SIGTERM: each finishes, drains the outbox and exits 0
    finally:
        await replicas.stop()
        await hook.stop()
        tally = await replicakit.tally(postgres_url, sandbox, campaigns)
        sandbox.stop()

    assert {job: tally.slots[job] for job in HOURLY} == {job: 1 for job in HOURLY}  # one slot each, not three
    assert {job: tally.job_runs[job] for job in HOURLY} == {job: 1 for job in HOURLY}
    assert writes.get("POST {id}") == 3 * FLEET  # the sandbox saw each pause once: no replica repeated one
    assert set(tally.pauses) == set(campaigns) and set(tally.pauses.values()) == {1}
    assert tally.paused_in_sandbox == set(campaigns) - {campaign}  # all but the one resumed by the confirmation
    assert tally.alert_events == {workspace: 1 for workspace in fleet.ids.values()}
    assert tally.experiment_events == {(workspace, "no_winner"): 1 for workspace in fleet.ids.values()}
    assert tally.notifications[("webhook", "sent")] == 2 * FLEET and tally.notifications[("webhook", "pending")] == 0
    texts = [body.get("text", "") for body in hook.received]
    assert len(texts) == 2 * FLEET and len(set(texts)) == len(texts)  # each notice delivered once, by one replica


async def test_replicas_opening_an_empty_database_at_once_migrate_it_once(postgres_url):
    """Four openers at the same moment (as replicas started together are): the advisory lock in Store._migrate lets one
    migrate while the others wait and find the schema at head. Without the lock they deadlock in the DDL (the wait
    below fails) or trip over each other's tables."""
    key = Fernet.generate_key()
    opened = await asyncio.wait_for(
        asyncio.gather(*(Store.open(postgres_url, secret_key=key) for _ in range(4)), return_exceptions=True), 60
    )
    try:
        assert [type(store).__name__ for store in opened] == ["Store"] * 4, opened
        assert {await store.schema_version() for store in opened} == {int(head_revision())}
    finally:
        for store in opened:
            if isinstance(store, Store):
                await store.close()
    connection = await asyncpg.connect(replicakit.plain_dsn(postgres_url))
    try:
        versions = [row["version_num"] for row in await connection.fetch("SELECT version_num FROM alembic_version")]
        applied = await connection.fetchval(
            "SELECT count(*) FROM schema_version WHERE version = $1", int(head_revision())
        )
    finally:
        await connection.close()
    assert versions == [head_revision()] and applied == 1


def test_a_replica_whose_database_is_down_says_so_in_one_line(tmp_path):
    """What an operator sees when ADMONSTER_DATABASE_URL points at a server that is not there: one line, exit 1."""
    env = {
        **os.environ,
        "ADMONSTER_HOME": str(tmp_path / "home"),
        "ADMONSTER_SECRET_KEY": Fernet.generate_key().decode(),
        "ADMONSTER_DATABASE_URL": f"postgresql+asyncpg://admonster:hunter2secret@127.0.0.1:{free_port()}/admonster",
    }
    done = subprocess.run(
        [sys.executable, "-m", "admonster_bot", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(
        "ERROR store: Could not open the database postgresql+asyncpg://admonster:***@127.0.0.1:"
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr and "hunter2secret" not in done.stderr
    assert "Fix: check ADMONSTER_DATABASE_URL and that the server runs." in done.stderr


async def test_a_replica_that_loses_its_database_answers_503_in_one_line_and_readyz_says_so(tmp_path):
    """The database server stops under a running replica: /healthz (liveness) still answers 200, /readyz and every
    /v1/ request answer 503 with Retry-After and one line (no 500, no traceback, no credentials), the replica serves
    again as soon as the server is back, and a SIGTERM while the database is gone still stops it cleanly (exit 0)."""
    import pgserver

    server = pgserver.start_server()  # its own server: this test stops it
    sandbox = StandaloneSandbox(tmp_path)
    process = None
    try:
        pgserver.run_sync(server.create_database("outage"))
        url = server.url("outage")
        env = {
            **sandbox.live_env(tmp_path / "home"),
            "ADMONSTER_DATABASE_URL": url,
            "ADMONSTER_SECRET_KEY": Fernet.generate_key().decode(),
        }
        created = _cli(["workspace", "create", "agency"], env)
        assert created.returncode == 0, created.stderr
        api_key = re.search(r"amk_[A-Za-z0-9_-]+", created.stdout).group()
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "admonster_bot", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_port(port, process)
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {api_key}"}

        async def get(path: str) -> tuple[int, dict, dict]:
            async with aiohttp.ClientSession() as session, session.get(base + path, headers=auth) as answer:
                return answer.status, dict(answer.headers), await answer.json()

        assert (await get("/readyz"))[0] == 200 and (await get("/v1/me"))[0] == 200
        server.pause()
        for path in ("/v1/me", "/readyz"):
            status, headers, body = await get(path)
            assert status == 503 and headers["Retry-After"] == "30", body
            assert body["text"].startswith(
                "ERROR unavailable: The database cannot be reached. Fix: Try again in 30 seconds"
            )
            assert "\n" not in body["text"] and "Traceback" not in body["text"] and url not in body["text"]
        assert (await get("/healthz"))[0] == 200  # liveness: the process serves, the proxy keeps it and waits
        status, _, body = await get("/v1/threads/t1")
        assert status == 503, body

        server.resume()
        deadline = time.monotonic() + 30
        while (await get("/v1/me"))[0] != 200:
            assert time.monotonic() < deadline, "the replica did not reconnect"
            await asyncio.sleep(0.5)
        assert (await get("/readyz"))[0] == 200

        server.pause()  # stopped while the database is gone: the outbox stays queued in it, the stop succeeds
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0 and "Traceback" not in stderr and "ERROR" not in stderr, stderr
        assert "outbox left queued: the database cannot be reached" in stderr
        process = None
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        sandbox.stop()
        server.stop()

"""Three `admonster serve` replicas on one PostgreSQL database and one Graph API (a standalone sandbox), as an
operator runs them behind a load balancer (issue 21, item 5 in part): a change held for confirmation on one replica
is confirmed on another and refused as used on the third, the audit log every replica reads is the same one, and
the scheduled jobs the three run at once each claim their slot once. Real processes, real HTTP, no mocks."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time

import aiohttp
import asyncpg
import pytest
from cryptography.fernet import Fernet

from admonster_jobs import JOBS, Every
from test_admonster_bot import ROOT, StandaloneSandbox, _cli
from testkit import free_port


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
        async with session.post(f"{url}/v1/tools/facebook", json={"op": op, "args": args or {}},
                                headers={"Authorization": f"Bearer {key}"}) as answer:
            return await answer.json()


@pytest.fixture
def replicas(tmp_path, postgres_url):
    """(urls, api key, sandbox, the database URL): three serve processes sharing one database and one sandbox."""
    sandbox = StandaloneSandbox(tmp_path)
    key = Fernet.generate_key().decode()
    processes = []
    try:
        def env_for(number: int) -> dict:
            return {**sandbox.live_env(tmp_path / f"home{number}"), "ADMONSTER_DATABASE_URL": postgres_url,
                    "ADMONSTER_SECRET_KEY": key}

        created = _cli(["workspace", "create", "agency"], env_for(0))
        assert created.returncode == 0, created.stderr
        api_key = re.search(r"amk_[A-Za-z0-9_-]+", created.stdout).group()
        token = sandbox.control("POST", "tokens", {"type": "SYSTEM_USER", "expires_in": 0})["access_token"]
        stored = _cli(["token", "set", "--workspace", "agency"], env_for(1), stdin=token + "\n")
        assert stored.returncode == 0, stored.stderr
        urls = []
        for number in range(3):
            port = free_port()
            process = subprocess.Popen([sys.executable, "-m", "admonster_bot", "serve", "--port", str(port)], cwd=ROOT,
                                       env=env_for(number), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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

    answers = await asyncio.gather(_tool(first, key, "confirm", {"confirm": confirmation}),
                                   _tool(second, key, "confirm", {"confirm": confirmation}))
    assert sorted(answer["ok"] for answer in answers) == [False, True]  # one replica ran it, the other says used
    audits = [await _tool(url, key, "audit_log") for url in (first, second, third)]
    entries = [[(e["id"], e["op"], e["outcome"]) for e in audit["data"]["entries"]] for audit in audits]
    assert entries[0] == entries[1] == entries[2]  # one audit log, whichever replica answers
    assert [op for _, op, outcome in entries[0] if outcome == "ok"].count("resume_campaign") == 1
    campaign = await _tool(third, key, "get_campaign", {"campaign_id": target["id"]})
    assert campaign["data"]["campaign"]["status"] == "ACTIVE"


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

"""Sandbox control API: usage headers and throttling, faults, clock, config, reset/seed, stats, objects."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from test_fb_sandbox_helpers import JPY, USD, campaign_form, graph  # noqa: F401


async def test_usage_headers(graph):
    answer = await graph.get(f"{USD}/campaigns")
    app = json.loads(answer.headers["X-App-Usage"])
    assert set(app) == {"call_count", "total_time", "total_cputime"}
    acc = json.loads(answer.headers["X-Ad-Account-Usage"])
    assert set(acc) == {"acc_id_util_pct", "reset_time_duration", "ads_api_access_tier"}
    assert acc["ads_api_access_tier"] == "standard_access" and acc["acc_id_util_pct"] > 0
    buc = json.loads(answer.headers["X-Business-Use-Case-Usage"])
    entry = buc[USD[4:]][0]
    assert entry["type"] == "ads_management" and entry["estimated_time_to_regain_access"] == 0
    cid = (await graph.get(f"{JPY}/campaigns")).body["data"][0]["id"]
    by_campaign = await graph.get(cid)
    assert JPY[4:] in json.loads(by_campaign.headers["X-Business-Use-Case-Usage"])
    me = await graph.get("me")
    assert "X-App-Usage" in me.headers and "X-Ad-Account-Usage" not in me.headers


async def test_development_tier_throttles_and_recovers(sandbox, graph):
    await sandbox.control("POST", "config", {"access_tier": "development_access"})
    for _ in range(20):  # 20 writes x 3 = 60 = the development cap
        cid = (await graph.post(f"{USD}/campaigns", campaign_form())).body["id"]
    pct = json.loads((await graph.get("me")).headers.get("X-Ad-Account-Usage", "null"))
    assert pct is None  # /me concerns no ad account
    blocked = await graph.get(cid)
    assert blocked.status == 400 and blocked.error["code"] == 17 and blocked.error["error_subcode"] == 2446079
    assert blocked.error["is_transient"] is True
    buc = json.loads(blocked.headers["X-Business-Use-Case-Usage"])[USD[4:]][0]
    assert buc["estimated_time_to_regain_access"] == 5 and buc["ads_api_access_tier"] == "development_access"
    assert json.loads(blocked.headers["X-Ad-Account-Usage"])["acc_id_util_pct"] == 100
    other_account = await graph.get(f"{JPY}/campaigns")
    assert other_account.status == 200
    await sandbox.control("POST", "clock", {"advance": 299})
    assert (await graph.get(cid)).error["code"] == 17
    await sandbox.control("POST", "clock", {"advance": 2})
    assert (await graph.get(cid)).status == 200


async def test_standard_tier_allows_many_reads(graph):
    cid = (await graph.get(f"{USD}/campaigns")).body["data"][0]["id"]
    answers = await asyncio.gather(*(graph.get(cid) for _ in range(150)))
    assert all(a.status == 200 for a in answers)


async def test_fault_http_500_and_unavailable(sandbox, graph):
    await sandbox.fault(kind="http_500", path="^me$", count=2)
    for _ in range(2):
        answer = await graph.get("me")
        assert answer.status == 500 and answer.error["code"] == 1 and answer.error["error_subcode"] == 99
        assert answer.error["is_transient"] is True
    assert (await graph.get("me")).status == 200
    await sandbox.fault(kind="unavailable", method="GET")
    down = await graph.get("me")
    assert down.status == 503 and down.body == "Service Unavailable"


async def test_fault_custom_error(sandbox, graph):
    await sandbox.fault(
        kind="error",
        path=f"^{USD}/campaigns$",
        method="POST",
        code=100,
        error_subcode=1885621,
        message="Invalid parameter",
        error_user_title="Budget on both levels",
        error_user_msg="Pick one.",
        blame_field="daily_budget",
        http_status=400,
    )
    answer = await graph.post(f"{USD}/campaigns", campaign_form())
    assert answer.error["error_subcode"] == 1885621 and answer.blame() == ["daily_budget"]
    assert answer.error["error_user_title"] == "Budget on both levels"
    assert (await graph.post(f"{USD}/campaigns", campaign_form())).status == 200


async def test_fault_throttle_and_token_expired(sandbox, graph):
    await sandbox.fault(kind="throttle", minutes=7, path="campaigns")
    answer = await graph.get(f"{USD}/campaigns")
    assert answer.status == 400 and answer.error["code"] == 80004 and answer.error["error_subcode"] == 2446079
    buc = json.loads(answer.headers["X-Business-Use-Case-Usage"])[USD[4:]][0]
    assert buc["estimated_time_to_regain_access"] == 7
    await sandbox.fault(kind="token_expired")
    expired = await graph.get("me")
    assert expired.error["code"] == 190 and expired.error["error_subcode"] == 463


async def test_fault_delay_and_timeout(sandbox, graph):
    await sandbox.fault(kind="delay", delay_ms=300, path="^me$")
    start = time.monotonic()
    assert (await graph.get("me")).status == 200
    assert time.monotonic() - start >= 0.3
    await sandbox.fault(kind="timeout", delay_ms=5000, path="^me$")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.get(f"{sandbox.url}/v26.0/me", params=graph.auth())


async def test_fault_drop_after_processes_the_create(sandbox, graph):
    before = len((await sandbox.control("GET", f"objects?type=campaign&account_id={USD}"))["data"])
    await sandbox.fault(kind="drop", method="POST", path=r"campaigns$", when="after")
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientError):
            await session.post(
                f"{sandbox.url}/v26.0/{USD}/campaigns", params=graph.auth(), data=campaign_form(name="Lost answer")
            )
    objects = (await sandbox.control("GET", f"objects?type=campaign&account_id={USD}"))["data"]
    assert len(objects) == before + 1 and objects[-1]["name"] == "Lost answer"
    await sandbox.fault(kind="drop", path="^me$", count=2)  # aiohttp re-sends an idempotent GET once
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"{sandbox.url}/v26.0/me", params=graph.auth())


async def test_fault_registry_listing_and_validation(sandbox):
    made = await sandbox.fault(kind="http_500", count=3, path="^act_\\d+/campaigns$")
    listed = (await sandbox.control("GET", "faults"))["data"]
    assert listed[0]["id"] == made["id"] and listed[0]["remaining"] == 3
    await sandbox.control("DELETE", "faults")
    assert (await sandbox.control("GET", "faults"))["data"] == []
    async with aiohttp.ClientSession() as session:
        for spec in ({"kind": "explode"}, {"kind": "error", "path": "("}, {"kind": "delay", "count": 0}, [1]):
            async with session.post(f"{sandbox.url}/__sandbox/faults", json=spec) as resp:
                assert resp.status == 400


async def test_clock(sandbox):
    first = await sandbox.control("GET", "clock")
    moved = await sandbox.control("POST", "clock", {"advance": 86400})
    assert moved["epoch"] - first["epoch"] in (86400, 86401)
    fixed = await sandbox.control("POST", "clock", {"set": 1795000000})
    assert fixed["epoch"] == 1795000000 and fixed["now"].endswith("+0000")


async def test_a_new_sandbox_starts_its_clock_where_told(aiohttp_client, tmp_path):
    """`clock_start` sets a new sandbox's simulated time (the demo is seeded at it); a sandbox started again on a file
    that has state keeps its own clock."""
    from conftest import SandboxHandle
    from fb_sandbox.server import SandboxServer, create_app
    from testkit import SANDBOX_START

    start = int(SANDBOX_START.timestamp())
    bare = await aiohttp_client(create_app(clock_start=start))
    assert (await (await bare.get("/__sandbox/clock")).json())["epoch"] - start in range(0, 30)
    path = str(tmp_path / "sandbox.db")
    async with SandboxServer(db_path=path, clock_start=start) as server:
        handle = SandboxHandle(server)
        clock = await handle.control("GET", "clock")
        assert clock["epoch"] - start in range(0, 30) and clock["frozen"] is False
        seeded = (await handle.control("GET", "objects?type=campaign"))["data"]
        assert seeded and max(o["_created"] for o in seeded) <= clock["epoch"] + 1
        moved = await handle.control("POST", "clock", {"advance": 86400})
    async with SandboxServer(db_path=path, clock_start=start) as server:
        assert (await SandboxHandle(server).control("GET", "clock"))["epoch"] - moved["epoch"] in range(0, 30)


async def test_a_frozen_clock_moves_only_when_told(sandbox):
    epoch = 1_800_000_000
    frozen = await sandbox.control("POST", "clock", {"set": epoch, "frozen": True})
    assert frozen == {"now": "2027-01-15T08:00:00+0000", "epoch": epoch, "frozen": True}
    await asyncio.sleep(1.1)
    assert await sandbox.control("GET", "clock") == frozen
    assert (await sandbox.control("POST", "clock", {"advance": 3600}))["epoch"] == epoch + 3600
    token = await sandbox.token(expires_in=60)
    assert token["expires_at"] == epoch + 3600 + 60
    running = await sandbox.control("POST", "clock", {"frozen": False})
    assert running["frozen"] is False and running["epoch"] - (epoch + 3600) in (0, 1)
    await asyncio.sleep(1.1)
    assert (await sandbox.control("GET", "clock"))["epoch"] > epoch + 3600
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sandbox.url}/__sandbox/clock", json={"frozen": "yes"}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["message"] == "frozen must be true or false"


async def test_a_frozen_clock_survives_a_restart_and_a_reset(tmp_path):
    from conftest import SandboxHandle
    from fb_sandbox.server import SandboxServer

    path, epoch = str(tmp_path / "sandbox.db"), 1_800_000_000
    async with SandboxServer(db_path=path) as server:
        await SandboxHandle(server).control("POST", "clock", {"set": epoch, "frozen": True})
    async with SandboxServer(db_path=path) as server:
        handle = SandboxHandle(server)
        assert await handle.control("GET", "clock") == {
            "now": "2027-01-15T08:00:00+0000",
            "epoch": epoch,
            "frozen": True,
        }
        await handle.control("POST", "reset", {"seed": True})
        assert (await handle.control("GET", "clock"))["epoch"] == epoch


async def test_config_latency(sandbox, graph):
    config = await sandbox.control("POST", "config", {"latency_ms": 150})
    assert config["latency_ms"] == 150 and (await sandbox.control("GET", "config"))["latency_ms"] == 150
    start = time.monotonic()
    await graph.get("me")
    assert time.monotonic() - start >= 0.15


async def test_reset_and_seed(sandbox, demo_token, graph):
    cid = (await graph.post(f"{USD}/campaigns", campaign_form(name="Temporary"))).body["id"]
    await sandbox.control("POST", "reset", {"seed": True})
    assert (await graph.get("me")).error["code"] == 190  # tokens are wiped too
    token = await sandbox.token()
    graph.token = token
    assert (await graph.get(cid)).error["error_subcode"] == 33
    seeded = await sandbox.control(
        "POST", "seed", {"campaigns": 3, "status": "ACTIVE", "name_prefix": "Seeded", "daily_budget": 2000}
    )
    c = (await graph.get(seeded["ids"][0], fields="name,status,daily_budget")).body
    assert c["name"] == "Seeded 0001" and c["status"] == "ACTIVE" and c["daily_budget"] == "2000"
    await sandbox.control("POST", "reset", {"seed": False})
    assert (await sandbox.control("GET", "objects?type=adaccount"))["data"] == []


async def test_stats(sandbox, graph):
    await sandbox.control("POST", "stats/reset")
    await graph.get(f"{USD}/campaigns")
    await graph.get(f"{JPY}/campaigns")
    await graph.get("me")
    stats = await sandbox.stats()
    assert stats["requests"] == 3 and stats["by_route"]["GET act_x/campaigns"] == 2


async def test_file_db_keeps_state_across_restarts(tmp_path):
    from fb_sandbox.server import SandboxServer
    from test_fb_sandbox_helpers import Graph

    db = str(tmp_path / "sandbox.db")
    async with SandboxServer(db_path=db) as server:
        async with aiohttp.ClientSession() as session:
            token = await (await session.post(f"{server.url}/__sandbox/tokens")).json()
        g = Graph(server.url, token)
        cid = (await g.post(f"{USD}/campaigns", campaign_form(name="Persistent"))).body["id"]
    async with SandboxServer(db_path=db) as server:
        g = Graph(server.url, token)
        assert (await g.get(cid, fields="name")).body["name"] == "Persistent"
        assert len((await g.get(f"{USD}/campaigns", effective_status='["DELETED"]')).body["data"]) == 1


async def test_python_m_fb_sandbox_runs_alone(tmp_path):
    import socket
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fb_sandbox",
        "--port",
        str(port),
        "--db",
        str(tmp_path / "alone.db"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert f"http://127.0.0.1:{port}" in line
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/__sandbox/tokens") as resp:
                assert "access_token" in await resp.json()
    finally:
        proc.terminate()
        await proc.wait()


async def test_usage_reset_clears_scores(sandbox, demo_token):
    import aiohttp

    await sandbox.control("POST", "config", {"access_tier": "development_access"})
    async with aiohttp.ClientSession() as session:

        async def usage_pct() -> float:
            import hashlib
            import hmac
            import json as _json

            proof = hmac.new(
                demo_token["app_secret"].encode(), demo_token["access_token"].encode(), hashlib.sha256
            ).hexdigest()
            async with session.get(
                f"{sandbox.url}/v26.0/{account}",
                params={"fields": "id", "access_token": demo_token["access_token"], "appsecret_proof": proof},
            ) as resp:
                return _json.loads(resp.headers["X-Ad-Account-Usage"])["acc_id_util_pct"]

        async with session.post(f"{sandbox.url}/__sandbox/seed", json={"campaigns": 1}) as resp:
            campaign_id = (await resp.json())["ids"][0]
        async with session.get(f"{sandbox.url}/__sandbox/objects?type=campaign") as resp:
            account = "act_" + next(o for o in (await resp.json())["data"] if o["id"] == campaign_id)["account_id"]
        for _ in range(10):
            high = await usage_pct()
        assert high > 10
        await sandbox.control("POST", "usage/reset")
        assert await usage_pct() < high


async def test_the_clock_is_kept_with_the_state_file(tmp_path):
    """A sandbox started again on the same file continues at the simulated time (and a reset keeps the clock)."""
    from conftest import SandboxHandle
    from fb_sandbox.server import SandboxServer

    path = str(tmp_path / "sandbox.db")
    first = SandboxServer(db_path=path, seed=True)
    await first.start()
    try:
        moved = await SandboxHandle(first).control("POST", "clock", {"advance": 3 * 86400})
    finally:
        await first.stop()
    again = SandboxServer(db_path=path, seed=True)
    await again.start()
    try:
        handle = SandboxHandle(again)
        assert abs((await handle.control("GET", "clock"))["epoch"] - moved["epoch"]) < 30
        await handle.control("POST", "reset", {"seed": True})
        assert (await handle.control("GET", "clock"))["epoch"] - time.time() > 3 * 86400 - 30
    finally:
        await again.stop()

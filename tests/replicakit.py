"""Several `admonster serve` replicas on one PostgreSQL database and one standalone sandbox, with many workspaces made
through the store directly (issue 21, item 5): tests/test_replicas.py proves with it that each job slot runs once,
each pause happens once and each notification is delivered once; bench/replicas.py measures 1 vs 3 replicas with it
and runs the same proof with hundreds of workspaces.

The sandbox's clock is frozen (its days, usage decay and delivery stand still). The replicas run on this machine's
clock, as `serve` does in live mode: everything they decide on (the experiments' end, the alerts' "today") lies days
away from any moment the run can fall on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
USD_ACCOUNT = "act_100000000000001"  # the demo business's USD account (docs/sandbox.md, "The demo business")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(
                    f"a process on port {port} ended: {process.stderr.read() if process.stderr else ''}"
                ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {seconds:g} s") from None
            await asyncio.sleep(0.2)


class Sandbox:
    """`python -m fb_sandbox` in its own process (a stand-in for graph.facebook.com), its clock frozen."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fb_sandbox", "--port", str(self.port), "--db", str(folder / "sandbox.db")],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def start(self) -> None:
        await wait_for_port(self.port, self.process, 30)
        await self.control("POST", "clock", {"frozen": True})

    async def control(self, method: str, path: str, body: dict | None = None) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.request(method, f"{self.url}/__sandbox/{path}", json=body) as answer:
                found = await answer.json()
                assert answer.status == 200, found
                return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


class WebhookReceiver:
    """A local webhook endpoint counting each delivery (the JSON body's text) it receives."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def receive(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Fleet:
    """The workspaces made for a run: name → (id, API key), and the campaigns each alert and experiment acts on."""

    keys: dict[str, str] = field(default_factory=dict)  # workspace name → API key
    ids: dict[str, int] = field(default_factory=dict)  # workspace name → id
    alert_campaign: dict[int, str] = field(default_factory=dict)  # workspace id → the campaign its alert pauses
    experiment_campaigns: dict[int, list[str]] = field(default_factory=dict)  # workspace id → its variants' campaigns


async def make_fleet(database_url: str, secret_key: str, sandbox: Sandbox, count: int, *, due: bool = True) -> Fleet:
    """`count` workspaces, each with an API key, the sandbox's token, the USD account selected, and (when `due`) an
    alert rule that pauses its own ACTIVE campaign and a running two-variant experiment past its end (time is up:
    the check pauses both variants' campaigns and says there is no winner)."""
    from admonster_store import Store

    token = await sandbox.control("POST", "tokens", {"type": "SYSTEM_USER", "expires_in": 0})
    campaigns = (
        await sandbox.control(
            "POST",
            "seed",
            {
                "campaigns": 3 * count if due else 1,
                "account_id": USD_ACCOUNT,
                "status": "ACTIVE",
                "name_prefix": "Fleet",
                "daily_budget": 5000,
            },
        )
    )["ids"]
    now = datetime.now(UTC)
    fleet = Fleet()
    store = await Store.open(database_url, secret_key=secret_key)
    try:
        for number in range(count):
            workspace = await store.ensure_workspace(f"fleet-{number:04d}")
            fleet.ids[workspace.name], fleet.keys[workspace.name] = (
                workspace.id,
                await store.create_api_key(workspace.id),
            )
            await store.save_token(
                workspace.id,
                token=token["access_token"],
                kind="system_user",
                app_id=token["app_id"],
                user_id=token["user_id"],
            )
            await store.set_selection(workspace.id, "ad_account", USD_ACCOUNT)
            if not due:
                continue
            alert, first, second = campaigns[3 * number : 3 * number + 3]
            await store.add_alert_rule(
                workspace.id,
                name="Stop at any spend",
                object_id=alert,
                level="campaign",
                metric="spend",
                operator=">=",
                threshold=0,
                window="today",
                action="pause",
                cooldown_hours=24,
                ad_account_id=USD_ACCOUNT,
                currency="USD",
            )
            fleet.alert_campaign[workspace.id] = alert
            await store.add_experiment(
                workspace.id,
                key=f"fleet-{number}",
                name=f"Fleet test {number}",
                ad_account_id=USD_ACCOUNT,
                currency="USD",
                plan={
                    "name": f"Fleet test {number}",
                    "variable": "creative",
                    "metric": "ctr",
                    "campaign": {"objective": "OUTCOME_TRAFFIC"},
                    "daily_budget": 5000,
                    "duration_days": 7,
                },
                variants=[
                    {
                        "name": name,
                        "campaign_id": campaign,
                        "adset_id": campaign,
                        "ad_ids": [],
                        "state": "running",
                        "daily_budget": 5000,
                    }
                    for name, campaign in (("A", first), ("B", second))
                ],
                started_at=now - timedelta(days=10),
                ends_at=now - timedelta(days=3),
            )
            fleet.experiment_campaigns[workspace.id] = [first, second]
    finally:
        await store.close()
    return fleet


class Replicas:
    """`count` `admonster serve` processes sharing one database (ADMONSTER_DATABASE_URL), one secret key and one
    Graph API (the sandbox); each has its own home folder. Stopped with SIGTERM, as an orchestrator stops them."""

    def __init__(
        self,
        folder: Path,
        database_url: str,
        secret_key: str,
        sandbox: Sandbox,
        count: int,
        extra_env: dict[str, str] | None = None,
    ):
        self.folder, self.count = folder, count
        self.env = {
            **os.environ,
            "ADMONSTER_GRAPH_URL": sandbox.url,
            "ADMONSTER_DATABASE_URL": database_url,
            "ADMONSTER_SECRET_KEY": secret_key,
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.env.pop("ADMONSTER_ACCESS_TOKEN", None)
        self.processes: list[subprocess.Popen] = []
        self.urls: list[str] = []
        self.stderr: list[str] = []

    async def start(self, app: dict) -> None:
        """Start them all at once (their schedulers look at the due jobs together) and wait until each serves."""
        ports = [free_port() for _ in range(self.count)]
        for number, port in enumerate(ports):
            env = {
                **self.env,
                "ADMONSTER_HOME": str(self.folder / f"home{number}"),
                "ADMONSTER_APP_ID": app["app_id"],
                "ADMONSTER_APP_SECRET": app["app_secret"],
            }
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "admonster_bot", "serve", "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            self.urls.append(f"http://127.0.0.1:{port}")
        for port, process in zip(ports, self.processes):
            await wait_for_port(port, process)

    async def stop(self, timeout: float = 60) -> list[int]:
        """SIGTERM to all at once, then wait (off the event loop: a webhook receiver may be running on it); their exit
        codes. One that does not stop in `timeout` seconds is killed."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in self.processes:
            try:
                codes.append(await asyncio.to_thread(process.wait, timeout))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(await asyncio.to_thread(process.wait))
            if process.stderr is not None:
                self.stderr.append(await asyncio.to_thread(process.stderr.read))
        self.processes = []
        return codes


async def wait_for_jobs(database_url: str, names: set[str], seconds: float) -> set[str]:
    """Poll job_runs until every job in `names` has run (or `seconds` pass); the names that ran."""
    import asyncpg

    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        deadline = time.monotonic() + seconds
        while True:
            ran = {row["name"] for row in await connection.fetch("SELECT name FROM job_runs")}
            if names <= ran or time.monotonic() > deadline:
                return ran
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


def plain_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Tally:
    """What the replicas did, counted from the database and the sandbox."""

    slots: Counter  # job name → slots claimed
    job_runs: Counter  # job name → runs recorded
    pauses: Counter  # campaign id → successful pause_campaign audit entries
    alert_events: Counter  # workspace id → alert firings
    experiment_events: Counter  # (workspace id, action) → events
    notifications: Counter  # (channel, status) → rows
    paused_in_sandbox: set[str]


async def tally(database_url: str, sandbox: Sandbox, campaigns: list[str]) -> Tally:
    import asyncpg

    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        slots = Counter(row["name"] for row in await connection.fetch("SELECT name FROM job_slots"))
        runs = Counter(row["name"] for row in await connection.fetch("SELECT name FROM job_runs"))
        pauses: Counter = Counter()
        for row in await connection.fetch(
            "SELECT object_ids_json FROM audit_log WHERE op = 'pause_campaign' AND outcome = 'ok' AND interface = 'job'"
        ):
            import json

            pauses.update(json.loads(row["object_ids_json"]))
        alerts = Counter(row["workspace_id"] for row in await connection.fetch("SELECT workspace_id FROM alert_events"))
        events = Counter(
            (row["workspace_id"], row["action"])
            for row in await connection.fetch(
                "SELECT e.action, x.workspace_id FROM experiment_events e JOIN experiments x ON x.id = e.experiment_id"
            )
        )
        notes = Counter(
            (row["channel"], row["status"])
            for row in await connection.fetch("SELECT channel, status FROM notifications")
        )
    finally:
        await connection.close()
    objects = (await sandbox.control("GET", f"objects?type=campaign&account_id={USD_ACCOUNT}"))["data"]
    wanted = set(campaigns)
    paused = {o["id"] for o in objects if o["id"] in wanted and o.get("status") == "PAUSED"}
    return Tally(slots, runs, pauses, alerts, events, notes, paused)


@contextlib.asynccontextmanager
async def database(server: Any, name: str):
    """A fresh database on the harness's server (tests/pgserver.py), dropped afterwards; its SQLAlchemy URL."""
    await server.create_database(name)
    try:
        yield server.url(name)
    finally:
        await server.drop_database(name)

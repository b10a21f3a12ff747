"""Shared fixtures: a real sandbox server on loopback, a token for its demo user, and a Graph client."""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import AsyncIterator

import aiohttp
import pytest

from fb_sandbox.server import SandboxServer
from testkit import SANDBOX_START, sandbox_clock


def pytest_addoption(parser):
    """``--record-mode`` for the contract cassettes: ``none`` replays them; other modes record live Graph answers."""
    parser.addoption(
        "--record-mode",
        action="store",
        default="none",
        choices=("none", "once", "new_episodes", "all"),
        help="vcrpy record mode for tests/test_contract_cassettes.py (default none: replay only, never the network; "
        "all: re-record from the live Graph API, needs ADMONSTER_LIVE_TOKEN)",
    )


class SandboxHandle:
    """A running sandbox plus a small client for its /__sandbox/ control endpoints."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url

    async def control(self, method: str, path: str, json: dict | None = None) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.request(method, f"{self.url}/__sandbox/{path.lstrip('/')}", json=json) as resp:
                body = await resp.json()
                assert resp.status < 400, body
                return body

    async def token(self, **options) -> dict:
        return await self.control("POST", "tokens", options or None)

    async def fault(self, **spec) -> dict:
        return await self.control("POST", "faults", spec)

    async def stats(self) -> dict:
        return await self.control("GET", "stats")


@asynccontextmanager
async def running_sandbox() -> AsyncIterator[SandboxHandle]:
    """A seeded sandbox in memory whose clock starts at SANDBOX_START: two started together hold the same objects."""
    server = SandboxServer(db_path=":memory:", seed=True, clock_start=SANDBOX_START.timestamp())
    await server.start()
    try:
        yield SandboxHandle(server)
    finally:
        await server.stop()


@pytest.fixture
async def sandbox():
    async with running_sandbox() as handle:
        yield handle


@pytest.fixture
async def demo_token(sandbox) -> dict:
    return await sandbox.token()


@pytest.fixture
async def store():
    from admonster_store import Store

    opened = await Store.open(":memory:")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def graph(sandbox, demo_token):
    from fb_utils import GraphClient

    client = GraphClient(demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def demo_accounts(graph) -> dict[str, str]:
    """The demo business's ad accounts by currency, as the sandbox lists them (never hard-coded)."""
    accounts = await graph.get_all("me/adaccounts", {"fields": "id,currency"})
    return {a["currency"]: a["id"] for a in accounts}


@pytest.fixture
async def facebook(store, graph, demo_accounts, sandbox):
    """The product's dispatch over the real sandbox, with the USD demo account selected; its "now" is the sandbox's."""
    from fi_facebook import Facebook

    workspace = await store.ensure_workspace("test")
    await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
    return Facebook(store, graph, workspace, clock=sandbox_clock(sandbox))


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    """No ADMONSTER_* variable or .env from the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("ADMONSTER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock():
    """A clock the test moves by hand (testkit.FakeClock)."""
    from testkit import FakeClock

    return FakeClock()


@pytest.fixture
async def two(store):
    """Two workspaces of the test's store (whichever `store` fixture the module uses)."""
    return await store.ensure_workspace("alpha"), await store.ensure_workspace("beta")

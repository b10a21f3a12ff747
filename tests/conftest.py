"""Shared fixtures: a real sandbox server on loopback, a token for its demo user, and a Graph client."""
from __future__ import annotations

import aiohttp
import pytest

from fb_sandbox.server import SandboxServer


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


@pytest.fixture
async def sandbox():
    server = SandboxServer(db_path=":memory:", seed=True)
    await server.start()
    try:
        yield SandboxHandle(server)
    finally:
        await server.stop()


@pytest.fixture
async def demo_token(sandbox) -> dict:
    return await sandbox.token()

"""Small helpers shared by the tests (the tests folder is on sys.path, so tests import this by name)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Where every test sandbox's clock starts: a fixed day, so no test depends on the date it runs. 20:00 UTC is 12:00 in
# Los Angeles and 05:00 next morning in Tokyo (the demo accounts' zones): hours from any midnight, a week before DST.
SANDBOX_START = datetime(2026, 3, 2, 20, 0, 0, tzinfo=UTC)
SANDBOX_START_ENV = {
    "ADMONSTER_SANDBOX_CLOCK_START": SANDBOX_START.isoformat()
}  # the same, for the product as a process


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sandbox_settings(tmp_path: Path, **overrides: Any) -> Any:
    """Settings for a runtime whose embedded sandbox lives under ``tmp_path`` and starts its clock at SANDBOX_START."""
    from admonster_config import load_settings

    return load_settings(
        home=tmp_path / "home", sandbox_db=tmp_path / "sandbox.db", sandbox_clock_start=SANDBOX_START, **overrides
    )


@contextlib.asynccontextmanager
async def running_server(tmp_path: Path, **settings_overrides: Any) -> AsyncIterator[tuple[str, Any]]:
    """`admonster serve` in-process on a free port with its own sandbox; yields (base URL, runtime). Its public URL is
    that address unless `public_url` says otherwise (a server behind a proxy)."""
    from admonster_runtime import open_runtime
    from admonster_server import serve

    port = free_port()
    settings = sandbox_settings(tmp_path, **{"public_url": f"http://127.0.0.1:{port}", **settings_overrides})
    async with open_runtime(settings) as runtime:
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(runtime, "127.0.0.1", port, stop=stop, ready=lambda _: started.set()))
        await asyncio.wait_for(started.wait(), 30)  # the first jobs may be busy simulating delivery on a loaded machine
        try:
            yield f"http://127.0.0.1:{port}", runtime
        finally:
            stop.set()
            await task


@contextlib.asynccontextmanager
async def workspaces_on_a_server(tmp_path: Path, names: tuple[str, ...] = ("alpha", "beta")):
    """`admonster serve` (running_server) with one workspace and API key per name: yields (url, runtime,
    [(workspace, key), …]). Each sandbox workspace gets a demo world of its own."""
    async with running_server(tmp_path) as (url, runtime):
        made = []
        for name in names:
            workspace = await runtime.store.ensure_workspace(name)
            made.append((workspace, await runtime.store.create_api_key(workspace.id)))
        yield url, runtime, made


def sandbox_clock(sandbox: Any):
    """The clock of a sandbox (anything with its ``url``) as a Facebook session's ``clock``: ops' "now" follows the
    simulated time, as `admonster_runtime` makes it in sandbox mode."""

    async def now() -> datetime:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.get(f"{sandbox.url}/__sandbox/clock") as answer:
            return datetime.fromtimestamp((await answer.json())["epoch"], UTC)

    return now


def job_context(runtime: Any) -> Any:
    """A JobContext over an opened runtime (sandbox mode): its store, notifier and time source."""
    from admonster_jobs import JobContext

    return JobContext(
        store=runtime.store,
        notifier=runtime.notifier,
        settings=runtime.settings,
        sessions=runtime,
        time_source=runtime.time_source,
        tz=UTC,
    )


class ServerThread:
    """`admonster serve` (testkit.running_server) on its own event loop in a thread, for synchronous Hypothesis tests."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.url = self.key = ""
        self.runtime: Any = None
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as error:  # reported by start()
            self.error = error
            self.ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with running_server(self.tmp_path) as (url, runtime):
            self.url, self.key = url, await self._workspace_key(runtime, "fuzz")
            self.runtime = runtime
            self.ready.set()
            await self._stop.wait()

    def new_key(self, name: str) -> str:
        """An API key of a new workspace `name` on the running server."""
        return asyncio.run_coroutine_threadsafe(self._workspace_key(self.runtime, name), self.loop).result(60)

    @staticmethod
    async def _workspace_key(runtime: Any, name: str) -> str:
        """A key of workspace `name`, whose /mcp lists every op as a tool (the fuzz calls each op's own tool)."""
        from admonster_tools import MCP_SETTING

        workspace = await runtime.store.ensure_workspace(name)
        await runtime.store.set_setting(workspace.id, MCP_SETTING, {"toolsets": ["all"]})
        return await runtime.store.create_api_key(workspace.id)

    def start(self) -> ServerThread:
        self.thread.start()
        assert self.ready.wait(90) and self.error is None, self.error
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)


class Errors(logging.Handler):
    """Every log record at ERROR or with a traceback, from any logger (aiohttp's "Error handling request" included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)

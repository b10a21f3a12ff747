"""Small helpers shared by the tests (the tests folder is on sys.path, so tests import this by name)."""
from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Where every test sandbox's clock starts: a fixed day, so no test depends on the date it runs. 20:00 UTC is 12:00 in
# Los Angeles and 05:00 next morning in Tokyo (the demo accounts' zones): hours from any midnight, a week before DST.
SANDBOX_START = datetime(2026, 3, 2, 20, 0, 0, tzinfo=UTC)
SANDBOX_START_ENV = {"ADMONSTER_SANDBOX_CLOCK_START": SANDBOX_START.isoformat()}  # the same, for the product as a process


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

    return load_settings(home=tmp_path / "home", sandbox_db=tmp_path / "sandbox.db", sandbox_clock_start=SANDBOX_START,
                         **overrides)


@contextlib.asynccontextmanager
async def running_server(tmp_path: Path, **settings_overrides: Any) -> AsyncIterator[tuple[str, Any]]:
    """`admonster serve` in-process on a free port with its own sandbox; yields (base URL, runtime)."""
    from admonster_runtime import open_runtime
    from admonster_server import serve

    port = free_port()
    settings = sandbox_settings(tmp_path, public_url=f"http://127.0.0.1:{port}", **settings_overrides)
    async with open_runtime(settings) as runtime:
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(runtime, "127.0.0.1", port, stop=stop, ready=lambda _: started.set()))
        await asyncio.wait_for(started.wait(), 30)  # the first jobs may be busy simulating delivery on a loaded machine
        try:
            yield f"http://127.0.0.1:{port}", runtime
        finally:
            stop.set()
            await task


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

    return JobContext(store=runtime.store, notifier=runtime.notifier, settings=runtime.settings, sessions=runtime,
                      time_source=runtime.time_source, tz=UTC)

"""`python -m fb_sandbox --port N [--db PATH] [--host 127.0.0.1] [--clock-start EPOCH]`: run the sandbox alone."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import sys
from pathlib import Path

from .server import SandboxServer
from .versions import DEFAULT_VERSION, served_versions


def default_db() -> str:
    home = Path(os.environ.get("ADMONSTER_HOME", ".admonster"))
    home.mkdir(parents=True, exist_ok=True)
    return str(home / "sandbox.db")


async def serve(host: str, port: int, db: str, clock_start: float | None = None) -> None:
    server = SandboxServer(db_path=db, host=host, port=port, clock_start=clock_start)
    await server.start()
    print(f"Ad Monster Graph API sandbox on {server.url}  (state: {db})")
    print(
        f"Graph base URL: {server.url}/{DEFAULT_VERSION}/ (serves {', '.join(served_versions(server.sandbox.now()))})"
    )
    print(f"Get a token:    curl -s -X POST {server.url}/__sandbox/tokens")
    print("Stop with Ctrl-C.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fb_sandbox", description="Run the Graph API sandbox alone.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--db",
        default=None,
        help="SQLite file (default $ADMONSTER_HOME/sandbox.db); ':memory:' for a throwaway sandbox",
    )
    parser.add_argument(
        "--clock-start",
        type=float,
        default=None,
        metavar="EPOCH",
        help="unix seconds where a new sandbox's simulated clock starts (default: now)",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.db or default_db(), args.clock_start))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # one line, never a traceback
        if exc.errno == errno.EADDRINUSE:
            print(f"ERROR system: port {args.port} is in use: choose another with --port", file=sys.stderr)
        else:
            print(
                f"ERROR system: the sandbox could not start on {args.host}:{args.port} ({exc.strerror or exc}). "
                "Fix: choose another --host/--port",
                file=sys.stderr,
            )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

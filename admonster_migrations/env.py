"""Alembic environment. The store passes its open connection (config.attributes["connection"]) and runs the revisions
inside its own transaction. From the command line (a contributor writing a revision), the database is
ADMONSTER_DATABASE_URL, or the SQLite file in ADMONSTER_HOME, e.g.:

    ADMONSTER_HOME=/tmp/scratch .venv/bin/alembic -c admonster_migrations/alembic.ini revision --autogenerate -m "..."
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from alembic import context

import admonster_store

config = context.config


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """A drafted revision names plain SQL types (TEXT, INTEGER), never the store's converters: a revision is frozen."""
    from sqlalchemy.types import TypeDecorator

    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def run(connection) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    context.configure(
        connection=connection,
        target_metadata=admonster_store.METADATA,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _from_command_line() -> None:
    """Bring the database to the head revision the way the store does (in a child process: Alembic's context is one
    per process), then hand Alembic a plain connection to it (e.g. for `revision --autogenerate`)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    url = os.environ.get("ADMONSTER_DATABASE_URL") or str(
        Path(os.environ.get("ADMONSTER_HOME", ".admonster")).resolve() / admonster_store.DB_FILENAME
    )
    opener = (
        "import asyncio, os, sys, admonster_store as s\n"
        "async def main():\n"
        "    await (await s.Store.open(sys.argv[1], secret_key=os.environ.get('ADMONSTER_SECRET_KEY'))).close()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", opener, url], check=True)
    engine = create_async_engine(url if admonster_store.is_database_url(url) else f"sqlite+aiosqlite:///{url}")

    async def migrate() -> None:
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(migrate())


if config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    _from_command_line()

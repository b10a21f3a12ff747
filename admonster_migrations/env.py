"""Alembic environment. The store passes its open connection (config.attributes["connection"]) and runs the revisions
inside its own transaction. From the command line (a contributor writing a revision), the database is
ADMONSTER_DATABASE_URL, or the SQLite file in ADMONSTER_HOME, e.g.:

    ADMONSTER_HOME=/tmp/scratch .venv/bin/alembic -c admonster_migrations/alembic.ini revision --autogenerate -m "..."
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import context

import admonster_store

config = context.config


def run(connection) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    context.configure(connection=connection, target_metadata=admonster_store.METADATA, compare_type=True,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def _from_command_line() -> None:
    url = os.environ.get("ADMONSTER_DATABASE_URL") or str(
        Path(os.environ.get("ADMONSTER_HOME", ".admonster")) / admonster_store.DB_FILENAME)
    store = await admonster_store.Store.open(url, secret_key=os.environ.get("ADMONSTER_SECRET_KEY"))
    try:
        async with store._engine.connect() as connection:  # noqa: SLF001 - the store's own engine, no second config
            await connection.run_sync(run)
            await connection.commit()
    finally:
        await store.close()


if config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    asyncio.run(_from_command_line())

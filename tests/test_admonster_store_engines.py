"""What must stay atomic when two stores share one database (two processes on one SQLite home, two replicas on one
PostgreSQL): each claim is won exactly once, concurrent appends never collide, on both engines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from admonster_store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
async def replicas(request, tmp_path, clock):
    """Two stores on one database (a SQLite file, or a fresh PostgreSQL database), with one key and the test's clock."""
    target = tmp_path / "admonster.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    key = Fernet.generate_key()
    stores = [await Store.open(target, secret_key=key, clock=clock) for _ in range(2)]
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def test_a_confirmation_is_taken_once_whoever_asks(replicas):
    first, second = replicas
    workspace = (await first.ensure_workspace("w")).id
    ids = [await first.add_confirmation(workspace, op="update_budget", args={"n": i}, preview="p") for i in range(10)]
    taken = await asyncio.gather(*(store.take_confirmation(workspace, cid) for cid in ids for store in (first, second)))
    assert sorted(c.args["n"] for c in taken if c is not None) == list(range(10))  # each once, by one of the two
    assert await second.list_confirmations(workspace) == []


async def test_an_oauth_state_is_consumed_once(replicas, clock):
    first, second = replicas
    workspace = (await first.ensure_workspace("w")).id
    for i in range(10):
        await first.add_oauth_state(workspace, f"n-{i}", clock() + timedelta(minutes=10))
    won = await asyncio.gather(*(store.consume_oauth_state(f"n-{i}") for i in range(10) for store in (second, first)))
    assert won.count(workspace) == 10 and won.count(None) == 10


async def test_a_lease_has_one_winner_among_concurrent_claims(replicas):
    first, second = replicas
    workspace = (await first.ensure_workspace("w")).id
    claims = await asyncio.gather(
        *(
            store.claim_lease(workspace, f"launch:{k}", f"owner-{i}", 30)
            for k in range(5)
            for i, store in enumerate((first, second, first, second))
        )
    )
    for k in range(5):
        owners = {lease.owner for lease in claims[k * 4 : (k + 1) * 4]}
        assert len(owners) == 1  # all four saw the same single owner


async def test_concurrent_appends_to_one_thread_keep_every_message_in_order(replicas):
    first, second = replicas
    workspace = (await first.ensure_workspace("w")).id
    await asyncio.gather(
        *(
            store.append_chat_messages(
                workspace, "t", [{"role": "user", "content": f"{i}-a"}, {"role": "assistant", "content": f"{i}-b"}]
            )
            for i, store in enumerate([first, second] * 5)
        )
    )
    history = await second.chat_history(workspace, "t")
    assert len(history) == 20
    assert all(history[n]["content"].split("-")[0] == history[n + 1]["content"].split("-")[0] for n in range(0, 20, 2))


async def test_a_notification_dedupe_key_is_queued_once(replicas):
    first, second = replicas
    workspace = (await first.ensure_workspace("w")).id
    made = await asyncio.gather(
        *(
            store.enqueue_notification(
                workspace, channel="inbox", subject="s", text="t", target=None, dedupe_key="once"
            )
            for store in (first, second) * 4
        )
    )
    assert len([m for m in made if m is not None]) == 1
    assert len(await first.unread_inbox(workspace)) == 1


def test_only_a_database_that_cannot_be_reached_counts_as_unreachable():
    """The server's 503 (admonster_server.database_outage) is for the database only: a refused or dropped connection
    counts; a file, disk or permission error elsewhere in a request, or a wrong statement, does not."""
    import errno
    import socket

    from sqlalchemy.exc import OperationalError, ProgrammingError

    from admonster_store import database_unreachable

    assert database_unreachable(ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"))
    assert database_unreachable(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert database_unreachable(socket.gaierror(-2, "Name or service not known"))
    assert database_unreachable(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert not database_unreachable(PermissionError(errno.EACCES, "Permission denied"))
    assert not database_unreachable(OSError(errno.ENOSPC, "No space left on device"))
    assert not database_unreachable(TimeoutError())
    assert not database_unreachable(ProgrammingError("SELEC 1", {}, Exception("syntax error")))
    assert not database_unreachable(ValueError("bad"))

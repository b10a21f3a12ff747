"""The SQLite store's trips to aiosqlite's thread (its speed) and the transactions it keeps while cutting them."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from admonster_store import InvalidArgument, Store, settings


class _CountingQueue:
    """Stands in front of aiosqlite's work queue and counts what is sent to its thread (the thread keeps reading the
    real queue)."""

    def __init__(self, queue):
        self.queue, self.sent = queue, 0

    def put_nowait(self, item) -> None:
        self.sent += 1
        self.queue.put_nowait(item)


@pytest.fixture(params=["memory", "file"])
async def counted(request, tmp_path):
    """A SQLite store (in memory, then on a file) and the counter of its connection's trips."""
    where = ":memory:" if request.param == "memory" else tmp_path
    async with await Store.open(where, secret_key=Fernet.generate_key()) as store:
        async with store._engine.connect() as conn:  # the pool's one connection
            driver = (await conn.get_raw_connection()).driver_connection
        counter = _CountingQueue(driver._tx)
        driver._tx = counter
        yield store, counter


async def trips(counter: _CountingQueue, call) -> tuple[int, object]:
    before = counter.sent
    result = await call
    return counter.sent - before, result


async def test_one_statement_calls_cost_one_trip(counted):
    store, counter = counted
    workspace = await store.ensure_workspace("trips")
    assert (await trips(counter, store.get_setting(workspace.id, "missing", "default"))) == (1, "default")
    sent, audit_id = await trips(
        counter,
        store.add_audit(
            workspace.id,
            interface="test",
            op="update_campaign",
            args={"name": "x"},
            summary="s",
            changes=[],
            object_ids=[],
            outcome="pending",
        ),
    )
    assert sent == 1 and audit_id > 0
    assert (await trips(counter, store.settle_audit(workspace.id, audit_id, outcome="ok"))) == (1, True)
    sent, entry = await trips(counter, store.get_audit(workspace.id, audit_id))
    assert sent == 1 and entry.outcome == "ok" and entry.args == {"name": "x"}
    assert (await trips(counter, store.settle_audit(workspace.id, audit_id, outcome="ok"))) == (1, False)


async def test_a_transaction_costs_one_trip_per_statement_and_its_commit(counted):
    store, counter = counted
    workspace = await store.ensure_workspace("trips")
    sent, _ = await trips(counter, store.set_setting(workspace.id, "k", {"v": 1}))  # BEGIN IMMEDIATE + upsert, COMMIT
    assert sent == 2
    assert await store.get_setting(workspace.id, "k") == {"v": 1}
    sent, workspace_again = await trips(counter, store.ensure_workspace("trips"))  # insert-or-ignore, select, COMMIT
    assert sent == 3 and workspace_again.id == workspace.id


async def test_a_transaction_still_rolls_back_whole(counted):
    """BEGIN now travels with the first statement: a failure after it still undoes what the transaction wrote."""
    store, _ = counted
    workspace = await store.ensure_workspace("trips")
    with pytest.raises(RuntimeError):
        async with store._tx(workspace.id) as conn:
            await conn.execute(
                insert(settings).values(
                    workspace_id=workspace.id, key="half", value={"v": 1}, updated_at="2026-01-01T00:00:00+00:00"
                )
            )
            raise RuntimeError("fails after its first statement")
    assert await store.get_setting(workspace.id, "half") is None
    with pytest.raises(InvalidArgument):  # a one-statement write refused by the database: nothing written
        await store.add_audit(
            workspace.id + 99,
            interface="test",
            op="x",
            args={},
            summary="s",
            changes=[],
            object_ids=[],
            outcome="pending",
        )
    async with store._tx(read=True) as conn:  # the connection is usable and in no transaction afterwards
        assert (await conn.execute(select(settings.c.key))).all() == []

"""Store call cost: the SQLAlchemy store beside the aiosqlite store it replaced, per call, on SQLite (target ≤ 2×).

    .venv/bin/python bench/store.py               # this figure alone
    make bench                                    # with the others (bench/run.py calls bench_store)

One round is four calls a tool call makes around a write: add_audit (pending), settle_audit, get_audit, get_setting.
The baseline is the store of the releases before SQLAlchemy reduced to those calls: plain aiosqlite on one connection
in autocommit, the frozen legacy schema (admonster_store_legacy.upgrade_legacy) and that store's own SQL for each call,
rows decoded as it decoded them. Both run in one process, rounds interleaved (best of several), in memory and on a
file (WAL), so the machine's load weighs on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from admonster_store import Store  # noqa: E402
from admonster_store_legacy import upgrade_legacy  # noqa: E402

TARGET = 2.0


class LegacyStore:
    """The four calls as the aiosqlite store (main before issue 21) made them: same SQL, same hops."""

    def __init__(self, db: aiosqlite.Connection):
        self._db = db

    @classmethod
    async def open(cls, path: str, schema_file: str) -> LegacyStore:
        """`path` (a file or ':memory:') with the frozen schema, built by that release's scripts in `schema_file`."""
        upgrade_legacy(schema_file)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA busy_timeout = 5000")
            if path != ":memory:":
                await db.execute("PRAGMA journal_mode = WAL")
            else:
                source = sqlite3.connect(schema_file, check_same_thread=False)
                try:
                    await db._execute(source.backup, db._conn)  # the schema into the memory database, on its thread
                finally:
                    source.close()
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def ensure_workspace(self, name: str) -> int:
        await self._db.execute("INSERT OR IGNORE INTO workspaces (name, created_at) VALUES (?, ?)", (name, _now()))
        async with self._db.execute("SELECT id, name, created_at FROM workspaces WHERE name = ?", (name,)) as cursor:
            return (await cursor.fetchone())["id"]

    async def add_audit(
        self, workspace_id: int, *, interface: str, op: str, args: dict, summary: str, outcome: str
    ) -> int:
        now = _now()
        cursor = await self._db.execute(
            "INSERT INTO audit_log (workspace_id, created_at, interface, op, args_json, summary, changes_json, "
            "object_ids_json, outcome, error, fbtrace_id, undo_of, tags_json, settled_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                workspace_id,
                now,
                interface,
                op,
                json.dumps(args),
                summary,
                "[]",
                "[]",
                outcome,
                None,
                None,
                None,
                "[]",
                None if outcome == "pending" else now,
            ),
        )
        return int(cursor.lastrowid)

    async def settle_audit(self, workspace_id: int, audit_id: int, *, outcome: str) -> bool:
        cursor = await self._db.execute(
            "UPDATE audit_log SET outcome = ?, error = ?, settled_at = ? "
            "WHERE workspace_id = ? AND id = ? AND outcome IN ('pending', 'unknown')",
            (outcome, None, _now(), workspace_id, audit_id),
        )
        return cursor.rowcount == 1

    async def get_audit(self, workspace_id: int, audit_id: int) -> dict | None:
        async with self._db.execute(
            "SELECT * FROM audit_log WHERE workspace_id = ? AND id = ?", (workspace_id, audit_id)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        entry = dict(row)
        for name in ("args_json", "changes_json", "object_ids_json", "tags_json"):
            entry[name] = json.loads(entry[name])
        return entry

    async def get_setting(self, workspace_id: int, key: str, default=None):
        async with self._db.execute(
            "SELECT value_json FROM settings WHERE workspace_id = ? AND key = ?", (workspace_id, key)
        ) as cursor:
            row = await cursor.fetchone()
        return json.loads(row["value_json"]) if row else default


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def _round(store, workspace_id: int, rounds: int) -> float:
    """Seconds per store call over `rounds` × the four calls."""
    started = time.perf_counter()
    for i in range(rounds):
        audit_id = await store.add_audit(
            workspace_id,
            interface="bench",
            op="update_campaign",
            args={"i": i},
            summary="bench",
            **({} if isinstance(store, LegacyStore) else {"changes": [], "object_ids": []}),
            outcome="pending",
        )
        assert await store.settle_audit(workspace_id, audit_id, outcome="ok")
        assert await store.get_audit(workspace_id, audit_id) is not None
        await store.get_setting(workspace_id, "guardrails")
    return (time.perf_counter() - started) / (4 * rounds)


async def _measure(where: str, calls: int, repeats: int) -> dict:
    folder = tempfile.TemporaryDirectory(prefix="admonster-bench-store-")
    with folder:
        legacy_path = ":memory:" if where == "memory" else str(Path(folder.name) / "legacy.db")
        new_path = ":memory:" if where == "memory" else str(Path(folder.name) / "home")
        legacy = await LegacyStore.open(legacy_path, str(Path(folder.name) / "legacy.db"))
        try:
            new = await Store.open(new_path)
        except BaseException:
            await legacy.close()
            raise
        try:
            legacy_ws = await legacy.ensure_workspace("bench")
            new_ws = (await new.ensure_workspace("bench")).id
            await _round(legacy, legacy_ws, 20)  # warm both (statement caches, pages)
            await _round(new, new_ws, 20)
            old_s, new_s = [], []
            for _ in range(repeats):
                old_s.append(await _round(legacy, legacy_ws, calls // 4))
                new_s.append(await _round(new, new_ws, calls // 4))
        finally:
            await legacy.close()
            await new.close()
    old_us, new_us = min(old_s) * 1e6, min(new_s) * 1e6
    return {"where": where, "old_us": old_us, "new_us": new_us, "ratio": new_us / old_us}


async def bench_store(calls: int = 800, repeats: int = 5) -> dict:
    places = [await _measure(where, calls, repeats) for where in ("memory", "file")]
    return {
        "calls": calls,
        "repeats": repeats,
        "places": places,
        "target": f"≤ {TARGET:g}×",
        "ok": all(place["ratio"] <= TARGET for place in places),
    }


def report_line(result: dict) -> list[str]:
    verdict = "PASS" if result["ok"] else "MISS"
    figures = " · ".join(
        f"{place['where']}: aiosqlite {place['old_us']:.0f} µs · SQLAlchemy {place['new_us']:.0f} µs · "
        f"{place['ratio']:.2f}×"
        for place in result["places"]
    )
    return [
        f"10. Store call cost on SQLite, {result['calls']} calls (add_audit, settle_audit, get_audit, get_setting), "
        f"best of {result['repeats']} interleaved rounds, the store before SQLAlchemy as baseline:",
        f"   {figures} (target {result['target']}) {verdict}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    result = asyncio.run(bench_store(options.calls, options.repeats))
    print("\n".join(report_line(result)))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""SQLite JSON object store: one generic object table, tokens, and a key/value table."""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    type TEXT NOT NULL,
    parent_id TEXT,
    account_id TEXT,
    data TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_type_account ON objects(type, account_id);
CREATE INDEX IF NOT EXISTS objects_parent ON objects(parent_id);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    scopes TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Id bases per object kind: distinct prefixes keep every id unique across kinds.
ID_BASES = {
    "adaccount": 100000000000000,
    "business": 200000000000000,
    "user": 300000000000000,
    "page": 400000000000000,
    "pixel": 500000000000000,
    "app": 600000000000000,
    "instagram": 17841400000000000,
    "campaign": 120210000000000000,
    "adset": 120211000000000000,
    "activity": 1300000000000000,
    "adlabel": 700000000000000,
    "business_user": 800000000000000,
    "adcreative": 120213000000000000,
    "ad": 120212000000000000,
    "video": 1200000000000000,
    "upload_session": 1210000000000000,
    "report_run": 1400000000000000,
    "customaudience": 120215000000000000,
    "savedaudience": 120216000000000000,
    "customconversion": 1500000000000000,
    "adstudy": 1600000000000000,
    "adstudycell": 1610000000000000,
    "adstudyobjective": 1620000000000000,
    "asyncrequestset": 1700000000000000,
}


class Obj(dict):
    """A stored object's data plus its row metadata (seq, type, created, updated)."""

    seq: int
    type: str
    parent_id: str | None
    account_id: str | None
    created: float
    updated: float

    @property
    def owner_account_id(self) -> str:
        """The ad account this object is stored under (campaigns, ad sets, ads, creatives...); none is a bug."""
        if self.account_id is None:
            raise KeyError(f"object {self.get('id')} is stored under no ad account")
        return self.account_id


def _row_to_obj(row: sqlite3.Row) -> Obj:
    obj = Obj(json.loads(row["data"]))
    obj.seq, obj.type, obj.parent_id = row["seq"], row["type"], row["parent_id"]
    obj.account_id, obj.created, obj.updated = row["account_id"], row["created"], row["updated"]
    return obj


class Store:
    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        # Called with (the object as stored, its new data, now) before an update is written; a hook may add to the
        # new data (delivery keeps a status log) and must not update objects itself.
        self.before_update: list[Callable[[Obj, dict, float], None]] = []
        if path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(tokens)")}
        if "meta" not in columns:  # databases from before apps/revocation: migrate in place
            self.db.execute("ALTER TABLE tokens ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")

    def close(self) -> None:
        self.db.close()

    # ---- key/value and counters
    def kv_get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def kv_set(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv(key, value) VALUES(?, ?)", (key, json.dumps(value)))

    def new_id(self, kind: str) -> str:
        with self.lock:
            n = int(self.kv_get(f"counter:{kind}", 0)) + 1
            self.kv_set(f"counter:{kind}", n)
        return str(ID_BASES[kind] + n)

    def is_empty(self) -> bool:
        return self.db.execute("SELECT COUNT(*) FROM objects").fetchone()[0] == 0

    def wipe(self) -> None:
        """Empty every table: objects, tokens, and the side tables of modules (audience members, received events)."""
        with self.lock:
            tables = [
                row[0]
                for row in self.db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for table in tables:
                self.db.execute(f'DELETE FROM "{table}"')
            self.db.execute("DELETE FROM sqlite_sequence")

    # ---- objects
    def insert(
        self,
        type_: str,
        obj_id: str,
        data: dict,
        *,
        parent_id: str | None = None,
        account_id: str | None = None,
        now: float,
    ) -> None:
        self.db.execute(
            "INSERT INTO objects(id, type, parent_id, account_id, data, created, updated) VALUES(?,?,?,?,?,?,?)",
            (obj_id, type_, parent_id, account_id, json.dumps(data), now, now),
        )

    def insert_many(self, rows: Iterable[tuple[str, str, dict, str | None, str | None, float]]) -> None:
        with self.lock:
            self.db.execute("BEGIN")
            try:
                self.db.executemany(
                    "INSERT INTO objects(id, type, parent_id, account_id, data, created, updated) "
                    "VALUES(?,?,?,?,?,?,?)",
                    [(i, t, p, a, json.dumps(d), now, now) for t, i, d, p, a, now in rows],
                )
                self.db.execute("COMMIT")
            except Exception:
                self.db.execute("ROLLBACK")
                raise

    def get(self, obj_id: str) -> Obj | None:
        row = self.db.execute("SELECT * FROM objects WHERE id=?", (obj_id,)).fetchone()
        return _row_to_obj(row) if row else None

    def update(self, obj_id: str, data: dict, *, now: float) -> None:
        if self.before_update:
            stored = self.get(obj_id)
            if stored is not None:
                for hook in self.before_update:
                    hook(stored, data, now)
        self.db.execute("UPDATE objects SET data=?, updated=? WHERE id=?", (json.dumps(data), now, obj_id))

    def list(self, type_: str, *, account_id: str | None = None, parent_id: str | None = None) -> builtins.list[Obj]:
        sql, args = "SELECT * FROM objects WHERE type=?", [type_]
        if account_id is not None:
            sql += " AND account_id=?"
            args.append(account_id)
        if parent_id is not None:
            sql += " AND parent_id=?"
            args.append(parent_id)
        return [_row_to_obj(r) for r in self.db.execute(sql + " ORDER BY seq", args)]

    # ---- tokens
    def add_token(
        self,
        token: str,
        user_id: str,
        kind: str,
        scopes: builtins.list[str],
        issued_at: float,
        expires_at: float,
        meta: dict | None = None,
    ) -> None:
        """`meta`: app_id, declined scopes, revoked flag (a token without app_id belongs to the sandbox's app)."""
        self.db.execute(
            "INSERT INTO tokens(token, user_id, kind, scopes, issued_at, expires_at, meta) VALUES(?,?,?,?,?,?,?)",
            (token, user_id, kind, json.dumps(scopes), issued_at, expires_at, json.dumps(meta or {})),
        )

    def get_token(self, token: str) -> dict | None:
        row = self.db.execute("SELECT * FROM tokens WHERE token=?", (token,)).fetchone()
        return _token_row(row) if row else None

    def user_tokens(self, user_id: str) -> builtins.list[dict]:
        return [_token_row(r) for r in self.db.execute("SELECT * FROM tokens WHERE user_id=?", (user_id,))]

    def update_token(self, token: str, *, scopes: builtins.list[str] | None = None, meta: dict | None = None) -> None:
        if scopes is not None:
            self.db.execute("UPDATE tokens SET scopes=? WHERE token=?", (json.dumps(scopes), token))
        if meta is not None:
            self.db.execute("UPDATE tokens SET meta=? WHERE token=?", (json.dumps(meta), token))


def _token_row(row: sqlite3.Row) -> dict:
    out = dict(row)
    out["scopes"] = json.loads(out["scopes"])
    out["meta"] = json.loads(out.get("meta") or "{}")
    return out

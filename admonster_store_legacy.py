"""The schema as the releases before Alembic made it: numbered SQL scripts, frozen. Used only to bring an old SQLite home to
the last of them (version 11) before the store stamps it with the Alembic baseline revision, and by tests to build such
a home. Never edit these scripts; schema changes are Alembic revisions in admonster_migrations/versions/."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

# The numbered scripts of the releases before Alembic: MIGRATIONS[0] is version 1. Frozen.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE workspaces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        key_hash TEXT PRIMARY KEY,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL
    );
    CREATE INDEX api_keys_workspace ON api_keys(workspace_id);
    CREATE TABLE settings (
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (workspace_id, key)
    );
    CREATE TABLE selections (
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (workspace_id, kind)
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        interface TEXT NOT NULL,
        op TEXT NOT NULL,
        args_json TEXT NOT NULL,
        summary TEXT NOT NULL,
        changes_json TEXT NOT NULL,
        object_ids_json TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'dry_run', 'pending')),
        error TEXT,
        fbtrace_id TEXT,
        undo_of INTEGER REFERENCES audit_log(id),
        undone_by INTEGER REFERENCES audit_log(id)
    );
    CREATE INDEX audit_log_workspace ON audit_log(workspace_id, id);
    CREATE TABLE confirmations (
        id TEXT PRIMARY KEY,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        op TEXT NOT NULL,
        args_json TEXT NOT NULL,
        preview TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE INDEX confirmations_workspace ON confirmations(workspace_id, expires_at);
    CREATE TABLE tokens (
        workspace_id INTEGER PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        token_encrypted TEXT NOT NULL,
        app_id TEXT,
        app_secret_encrypted TEXT,
        user_id TEXT,
        expires_at TEXT,
        scopes_json TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 2: OAuth state nonces, token health and warnings, the notification outbox, scheduled job runs.
    """
    CREATE TABLE oauth_states (
        nonce TEXT PRIMARY KEY,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);
    ALTER TABLE tokens ADD COLUMN invalid_reason TEXT;
    ALTER TABLE tokens ADD COLUMN checked_at TEXT;
    CREATE TABLE token_warnings (
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (workspace_id, key)
    );
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        channel TEXT NOT NULL CHECK (channel IN ('inbox', 'email', 'webhook')),
        level TEXT NOT NULL DEFAULT 'info',
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        target TEXT,
        dedupe_key TEXT,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'read')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE UNIQUE INDEX notifications_dedupe ON notifications(workspace_id, channel, dedupe_key)
        WHERE dedupe_key IS NOT NULL;
    CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
    CREATE INDEX notifications_workspace ON notifications(workspace_id, channel, status, id);
    CREATE TABLE job_runs (
        name TEXT PRIMARY KEY,
        last_run_at TEXT NOT NULL,
        ok INTEGER NOT NULL,
        summary TEXT NOT NULL
    );
    """,
    # 3: API keys are found by their public id, then their hash is compared in constant time.
    """
    ALTER TABLE api_keys ADD COLUMN key_id TEXT;
    CREATE INDEX api_keys_key_id ON api_keys(key_id);
    """,
    # 4: LLM chat threads: OpenAI-style messages per workspace and thread, in order.
    """
    CREATE TABLE chat_messages (
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        thread_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        content TEXT,
        tool_calls TEXT,
        tool_call_id TEXT,
        name TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (workspace_id, thread_id, seq)
    );
    """,
    # 5: launches: one-call campaign launches, each step recorded so a failed launch can be resumed or rolled back.
    """
    CREATE TABLE launches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        request_json TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'failed', 'done', 'rolled_back')),
        steps_json TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (workspace_id, key)
    );
    """,
    # 6: insights automation: alert rules and the events they fired, daily performance snapshots, the spend ledger,
    # and the campaigns paused because an ad account's billing failed (resumed exactly, later).
    """
    CREATE TABLE alert_rules (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        object_id TEXT NOT NULL,
        level TEXT NOT NULL CHECK (level IN ('account', 'campaign', 'adset', 'ad')),
        ad_account_id TEXT,
        currency TEXT,
        metric TEXT NOT NULL,
        operator TEXT NOT NULL CHECK (operator IN ('>', '>=', '<', '<=')),
        threshold REAL NOT NULL,
        window TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('notify', 'pause', 'scale')),
        scale_pct INTEGER,
        max_budget INTEGER,
        cooldown_hours REAL NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        last_fired_at TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (workspace_id, name)
    );
    CREATE TABLE alert_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        rule_id INTEGER REFERENCES alert_rules(id) ON DELETE SET NULL,
        rule_name TEXT NOT NULL,
        fired_at TEXT NOT NULL,
        object_id TEXT NOT NULL,
        value REAL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX alert_events_workspace ON alert_events(workspace_id, id);
    CREATE TABLE perf_snapshots (
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        object_id TEXT NOT NULL,
        level TEXT NOT NULL,
        day TEXT NOT NULL,
        metrics_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (workspace_id, object_id, day)
    );
    CREATE INDEX perf_snapshots_day ON perf_snapshots(workspace_id, day);
    CREATE TABLE spend_ledger (
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        ad_account_id TEXT NOT NULL,
        day TEXT NOT NULL,
        spend_minor INTEGER NOT NULL,
        currency TEXT NOT NULL,
        fee_minor INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (workspace_id, ad_account_id, day)
    );
    CREATE TABLE billing_pauses (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        ad_account_id TEXT NOT NULL,
        object_ids_json TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL,
        resumed_at TEXT
    );
    CREATE INDEX billing_pauses_open ON billing_pauses(workspace_id, ad_account_id, resumed_at);
    """,
    # 7: A/B experiments: the plan, each variant's objects and state, the last evaluation, and what each check did.
    """
    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        plan_json TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'stopped')),
        ad_account_id TEXT NOT NULL,
        currency TEXT NOT NULL,
        variants_json TEXT NOT NULL DEFAULT '[]',
        study_id TEXT,
        winner TEXT,
        outcome_json TEXT NOT NULL DEFAULT '{}',
        started_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        last_scaled_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (workspace_id, key),
        UNIQUE (workspace_id, name)
    );
    CREATE INDEX experiments_status ON experiments(workspace_id, status, id);
    CREATE TABLE experiment_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        detail_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX experiment_events_experiment ON experiment_events(workspace_id, experiment_id, id);
    """,
    # 8: exactly-once writes (docs/exactly-once.md): an audit entry is written `pending` before its request, with the
    # client tags it sends, and settled after (`ok`, `error`, or `unknown` when the answer was lost); a confirmation
    # keeps the exact changes it previewed, so a confirm never applies them to a state that moved.
    """
    CREATE TABLE audit_log_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        interface TEXT NOT NULL,
        op TEXT NOT NULL,
        args_json TEXT NOT NULL,
        summary TEXT NOT NULL,
        changes_json TEXT NOT NULL,
        object_ids_json TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'dry_run', 'pending', 'unknown')),
        error TEXT,
        fbtrace_id TEXT,
        undo_of INTEGER REFERENCES audit_log_new(id),
        undone_by INTEGER REFERENCES audit_log_new(id),
        tags_json TEXT NOT NULL DEFAULT '[]',
        settled_at TEXT
    );
    INSERT INTO audit_log_new (id, workspace_id, created_at, interface, op, args_json, summary, changes_json,
                               object_ids_json, outcome, error, fbtrace_id, undo_of, undone_by, settled_at)
        SELECT id, workspace_id, created_at, interface, op, args_json, summary, changes_json, object_ids_json, outcome,
               error, fbtrace_id, undo_of, undone_by, created_at FROM audit_log;
    DROP TABLE audit_log;
    ALTER TABLE audit_log_new RENAME TO audit_log;
    CREATE INDEX audit_log_workspace ON audit_log(workspace_id, id);
    CREATE INDEX audit_log_unsettled ON audit_log(workspace_id, outcome) WHERE outcome IN ('pending', 'unknown');
    ALTER TABLE confirmations ADD COLUMN changes_json TEXT NOT NULL DEFAULT '[]';
    """,
    # 9: single-flight leases: a launch or an experiment runs in one request at a time, across processes sharing this
    # file. A lease names its owner and expires unless renewed, so one left by a killed process frees itself shortly.
    """
    CREATE TABLE leases (
        workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        owner TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (workspace_id, key)
    );
    """,
    # 10: API keys can be listed, rotated and revoked (`admonster workspace keys`): a revoked key keeps its row (so the
    # list says when) and stops authenticating at once.
    """
    ALTER TABLE api_keys ADD COLUMN revoked_at TEXT;
    """,
    # 11: a sign-in link is bound to whoever asked for it: the SHA-256 of the browser cookie's nonce (the console) or
    # of the terminal listener's secret; and whether it may move the workspace to another Facebook user.
    """
    ALTER TABLE oauth_states ADD COLUMN binding_hash TEXT;
    ALTER TABLE oauth_states ADD COLUMN allow_switch INTEGER NOT NULL DEFAULT 0;
    """,
]

LEGACY_VERSION = len(MIGRATIONS)  # 11: the schema the Alembic baseline revision "0011" creates


class LegacyMigrationError(Exception):
    """A frozen script failed on this database; the message says which."""


def legacy_schema_version(db: sqlite3.Connection) -> int | None:
    """The highest frozen script applied to this SQLite database; None when it never had the legacy table."""
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if found is None:
        return None
    return int(db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def upgrade_legacy(path: str | Path, target: int = LEGACY_VERSION) -> int:
    """Apply the frozen scripts after the database's version up to `target`, each in one transaction, as the release
    before Alembic did (a concurrent opener applying one first is fine); returns the version now. A database newer than
    `target` is left as it is."""
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        current = legacy_schema_version(db) or 0
        for version in range(current + 1, target + 1):
            applied_at = datetime.now(UTC).isoformat(timespec="seconds")
            wrapped = (
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[version - 1]}\n;\n"
                f"INSERT INTO schema_version (version, applied_at) VALUES ({version}, '{applied_at}');\nCOMMIT;"
            )
            try:
                db.executescript(wrapped)
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if (legacy_schema_version(db) or 0) >= version:
                    continue  # another process applied it first
                raise LegacyMigrationError(f"Migration {version} failed: {exc}") from exc
        return legacy_schema_version(db) or 0
    finally:
        db.close()

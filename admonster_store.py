"""Ad Monster state: workspaces, settings, selections, audit log, confirmations and encrypted tokens in SQLite."""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
from cryptography.fernet import Fernet, InvalidToken

DB_FILENAME = "admonster.db"
KEY_FILENAME = "secret.key"
MEMORY = ":memory:"

SELECTION_KINDS = ("ad_account", "page", "instagram_account")
AUDIT_OUTCOMES = ("ok", "error", "dry_run", "pending", "unknown")
UNSETTLED_OUTCOMES = ("pending", "unknown")
LAUNCH_STATUSES = ("running", "failed", "done", "rolled_back")
STEP_STATUSES = ("sending", "done", "failed", "deleted")  # sending: a create about to go out, its answer not recorded
CONFIRM_POLICIES = ("always", "guardrails", "never")
GUARDRAILS_KEY = "guardrails"
DEFAULT_GUARDRAILS: dict[str, Any] = {
    "max_daily_budget": None,
    "max_budget_increase_pct": 50,
    "max_spend_cap": None,
    "confirm_policy": "guardrails",
}
SECRET_ARG_KEYS = frozenset({"access_token", "app_secret", "appsecret_proof", "client_secret", "password", "token"})
API_KEY_PREFIX = "amk_"
CONFIRMATION_PREFIX = "c-"
NOTIFICATION_CHANNELS = ("inbox", "email", "webhook")
DELIVERY_CHANNELS = ("email", "webhook")
NOTIFICATION_STATUSES = ("pending", "sent", "failed", "read")
NOTIFICATION_LEVELS = ("info", "warning", "error")
EXPERIMENT_STATUSES = ("running", "completed", "stopped")  # the same as fb_utils.EXPERIMENT_STATUSES
VARIANT_STATES = ("running", "stopped", "winner", "loser")  # the same as fb_utils.VARIANT_STATES
EXPERIMENT_UPDATABLE = ("status", "plan", "variants", "study_id", "winner", "outcome", "last_scaled_at", "started_at", "ends_at")
MAX_ERROR_CHARS = 500

Clock = Callable[[], datetime]

# Numbered schema migrations: MIGRATIONS[0] is version 1. Never edit an applied one; append a new script.
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
API_KEY_ID_LENGTH = 12


class StoreError(Exception):
    """A state-layer failure; the message says what happened and how to fix it."""


class InvalidArgument(StoreError, ValueError):
    """A caller passed a value the store does not accept."""


class SecretKeyError(StoreError):
    """The secret key is malformed or does not decrypt the saved tokens."""


@dataclass(frozen=True)
class Workspace:
    """An isolation unit: one user or team."""

    id: int
    name: str
    created_at: str


@dataclass(frozen=True)
class AuditEntry:
    """One recorded write: who, what, the state changes and the outcome."""

    id: int
    workspace_id: int
    created_at: str
    interface: str
    op: str
    args: dict[str, Any]
    summary: str
    changes: list[dict[str, Any]]
    object_ids: list[str]
    outcome: str
    error: str | None
    fbtrace_id: str | None
    undo_of: int | None
    undone_by: int | None
    tags: list[dict[str, str]] = field(default_factory=list)   # {"tag", "path", "name"}: how reconcile finds its creates
    settled_at: str | None = None                   # None while pending or unknown


@dataclass(frozen=True)
class Confirmation:
    """A spend op waiting for the caller to confirm it by id."""

    id: str
    workspace_id: int
    op: str
    args: dict[str, Any]
    preview: str
    created_at: str
    expires_at: str
    used_at: str | None
    status: str  # "pending" | "used" | "expired"
    changes: list[dict[str, Any]] = field(default_factory=list)   # exactly what the preview showed


@dataclass(frozen=True)
class Launch:
    """One recorded launch: the request (no secrets), its status and each step's outcome, in the order they ran."""

    id: int
    workspace_id: int
    key: str
    request: dict[str, Any]
    status: str  # "running" | "failed" | "done" | "rolled_back"
    steps: dict[str, dict[str, Any]]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Lease:
    """Who may run the launch or experiment named `key` now: `owner` until `expires_at` (ISO-8601 UTC, milliseconds)."""

    workspace_id: int
    key: str
    owner: str
    claimed_at: str
    expires_at: str


@dataclass(frozen=True)
class AlertRule:
    """A workspace's alert: when `metric` over `window` of `object_id` crosses `threshold`, do `action`.

    Money thresholds (spend, cpc, cpm, cpa) and `max_budget` are in minor units of `currency`.
    """

    id: int
    workspace_id: int
    name: str
    object_id: str
    level: str
    ad_account_id: str | None
    currency: str | None
    metric: str
    operator: str
    threshold: float
    window: str
    action: str
    scale_pct: int | None
    max_budget: int | None
    cooldown_hours: float
    enabled: bool
    last_fired_at: datetime | None
    created_at: str


@dataclass(frozen=True)
class AlertEvent:
    """One time a rule fired: the value seen, the action taken and how it went."""

    id: int
    workspace_id: int
    rule_id: int | None
    rule_name: str
    fired_at: datetime
    object_id: str
    value: float | None
    action: str
    outcome: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """One object's metrics for one day (the account's day), as insights reported them."""

    workspace_id: int
    object_id: str
    level: str
    day: str
    metrics: dict[str, Any]
    updated_at: str


@dataclass(frozen=True)
class LedgerEntry:
    """One ad account's spend on one day, in minor units of its currency, with the agency fee on it."""

    workspace_id: int
    ad_account_id: str
    day: str
    spend_minor: int
    currency: str
    fee_minor: int
    updated_at: str


@dataclass(frozen=True)
class BillingPause:
    """The campaigns Ad Monster paused because an ad account's billing failed; resumed_at once they run again."""

    id: int
    workspace_id: int
    ad_account_id: str
    object_ids: list[str]
    reason: str
    created_at: str
    resumed_at: str | None


@dataclass(frozen=True)
class Experiment:
    """One A/B test: the plan it came from, each variant's objects and state, and the last evaluation.

    ``variants`` is one dict per variant in the plan's order (``name``, object ids, ``state``: running, stopped, winner
    or loser); times are ISO-8601 UTC strings.
    """

    id: int
    workspace_id: int
    key: str
    name: str
    plan: dict[str, Any]
    status: str  # "running" | "completed" | "stopped"
    ad_account_id: str
    currency: str
    variants: list[dict[str, Any]]
    study_id: str | None
    winner: str | None
    outcome: dict[str, Any]
    started_at: str
    ends_at: str
    last_scaled_at: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class ExperimentEntry:
    """One thing an experiment did (launched, variant_stopped, winner, scaled, ...), with its details."""

    id: int
    workspace_id: int
    experiment_id: int
    at: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class StoredToken:
    """A decrypted Facebook token with what is known about it; secrets stay out of repr."""

    workspace_id: int
    kind: str
    token: str = field(repr=False)
    app_id: str | None = None
    app_secret: str | None = field(default=None, repr=False)
    user_id: str | None = None
    expires_at: datetime | None = None
    scopes: list[str] | None = None
    created_at: str = ""
    updated_at: str = ""
    invalid_reason: str | None = None
    checked_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible id of this token (for dedupe keys and logs; never the token itself)."""
        return token_fingerprint(self.token)

    def is_expired(self, at: datetime) -> bool:
        """True when the token has an expiry at or before `at`."""
        return self.expires_at is not None and self.expires_at <= _as_utc(at)


@dataclass(frozen=True)
class Notification:
    """One message in the outbox: the chat inbox, an email or a webhook call, with its delivery record."""

    id: int
    workspace_id: int
    channel: str  # "inbox" | "email" | "webhook"
    subject: str
    text: str
    target: str | None  # email address(es) or webhook URL; None for the inbox
    status: str  # "pending" | "sent" | "failed" | "read" (inbox, once shown)
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    level: str = "info"
    dedupe_key: str | None = None


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown of an API key: its public id (the prefix that finds it) and times; never the secret."""

    key_id: str
    created_at: str
    revoked_at: str | None = None


@dataclass(frozen=True)
class JobRun:
    """The last run of one scheduled job."""

    name: str
    last_run_at: datetime
    ok: bool
    summary: str


def token_fingerprint(token: str) -> str:
    """First 16 hex digits of the token's SHA-256: identifies a token without revealing it."""
    return hashlib.sha256(_secret_text(token).encode()).hexdigest()[:16]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return _as_utc(moment).isoformat(timespec="seconds")


def api_key_id(key: str) -> str:
    """The public part of an API key that finds its row; the secret rest is only ever compared as a hash."""
    return key[: len(API_KEY_PREFIX) + API_KEY_ID_LENGTH]


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of an API key: the only form the store keeps."""
    return hashlib.sha256(key.encode()).hexdigest()


def drop_secret_keys(value: Any) -> Any:
    """A copy of `value` with every dict key named like a credential removed, at any depth."""
    if isinstance(value, dict):
        return {k: drop_secret_keys(v) for k, v in value.items() if str(k).lower() not in SECRET_ARG_KEYS}
    if isinstance(value, (list, tuple)):
        return [drop_secret_keys(item) for item in value]
    return value


def normalize_ad_account_id(ad_account_id: str | int) -> str:
    """'123' or 'act_123' -> 'act_123'."""
    text = str(ad_account_id).strip()
    digits = text.removeprefix("act_")
    if not digits.isdigit():
        raise InvalidArgument(f"Ad account id {text!r} is not valid. Fix: use a number or act_<number>.")
    return f"act_{digits}"


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        message = f"{what} is not JSON-serializable ({exc}). Fix: pass numbers, strings, lists, dicts."
        raise InvalidArgument(message) from None


def _coerce_expiry(expires_at: datetime | int | float | str | None) -> str | None:
    if expires_at is None or expires_at == 0:
        return None
    if isinstance(expires_at, datetime):
        return _iso(expires_at)
    if isinstance(expires_at, (int, float)):
        return _iso(datetime.fromtimestamp(expires_at, UTC))
    try:
        return _iso(datetime.fromisoformat(str(expires_at)))
    except ValueError:
        message = f"Token expiry {expires_at!r} is not a time. Fix: pass a datetime or epoch seconds."
        raise InvalidArgument(message) from None


def _parse_fernet_key(key: str | bytes, source: str) -> Fernet:
    raw = key.encode() if isinstance(key, str) else key
    try:
        return Fernet(raw.strip())
    except (ValueError, TypeError):
        raise SecretKeyError(
            f"{source} is not a valid Fernet key (32 url-safe base64-encoded bytes). Fix: generate one with "
            "python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"."
        ) from None


def _secret_text(secret: Any) -> str:
    getter = getattr(secret, "get_secret_value", None)
    return getter() if callable(getter) else secret


def load_or_create_key_file(path: Path) -> Fernet:
    """Read the Fernet key in `path`, creating it with mode 0600 if it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
                os.chmod(path, PRIVATE_FILE_MODE)
        return _parse_fernet_key(path.read_bytes(), f"Key file {path}")
    key = Fernet.generate_key()
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(key + b"\n")
    return Fernet(key)


def _resolve_fernet(db_path: str, secret_key: Any, key_file: Path | None) -> Fernet:
    if secret_key:
        return _parse_fernet_key(_secret_text(secret_key), "ADMONSTER_SECRET_KEY")
    if key_file is not None:
        return load_or_create_key_file(key_file)
    if db_path == MEMORY:
        return Fernet(Fernet.generate_key())
    return load_or_create_key_file(Path(db_path).parent / KEY_FILENAME)


def _resolve_db_path(path: str | Path) -> str:
    if str(path) == MEMORY:
        return MEMORY
    db_path = Path(path).expanduser()
    if db_path.is_dir():
        db_path = db_path / DB_FILENAME
    private_folder(db_path.parent)
    return str(db_path)


PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
DB_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_folder(path: Path) -> Path:
    """Create `path` (and its parents) if needed and make it 0700: the home holds tokens, keys and people's data."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    if path.stat().st_mode & 0o777 != PRIVATE_FOLDER_MODE:
        os.chmod(path, PRIVATE_FOLDER_MODE)
    return path


def private_db_file(db_path: str) -> None:
    """Create the SQLite file 0600 before SQLite opens it (its -wal and -shm files take the database file's mode),
    and tighten an older one's files."""
    if db_path == MEMORY:
        return
    if not os.path.exists(db_path):
        with contextlib.suppress(FileNotFoundError):  # no folder yet: whoever opens it makes it (and reports that)
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    tighten_db_files(db_path)


def tighten_db_files(db_path: str) -> None:
    """Make the database and its WAL, SHM and journal files 0600 (an older home may have left them 0644)."""
    if db_path == MEMORY:
        return
    for suffix in DB_FILE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if os.stat(db_path + suffix).st_mode & 0o777 != PRIVATE_FILE_MODE:
                os.chmod(db_path + suffix, PRIVATE_FILE_MODE)


class Store:
    """Async access to Ad Monster's SQLite state; every record belongs to one workspace."""

    def __init__(self, db: aiosqlite.Connection, fernet: Fernet, *, path: str = MEMORY, clock: Clock | None = None):
        self._db = db
        self._fernet = fernet
        self.path = path
        self.clock: Clock = clock or _utc_now

    # -- lifecycle -------------------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        secret_key: Any = None,
        key_file: Path | None = None,
        clock: Clock | None = None,
    ) -> Store:
        """Open (creating if needed) the database at `path` or ':memory:' and apply pending migrations."""
        db_path = _resolve_db_path(path)
        fernet = _resolve_fernet(db_path, secret_key, key_file)
        private_db_file(db_path)
        db = await aiosqlite.connect(db_path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        store = cls(db, fernet, path=db_path, clock=clock)
        try:
            await store._configure_connection()
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        tighten_db_files(db_path)  # the WAL and SHM files now exist
        return store

    async def close(self) -> None:
        """Close the database connection."""
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _configure_connection(self) -> None:
        await self._db.execute("PRAGMA foreign_keys = ON")
        await self._db.execute("PRAGMA busy_timeout = 5000")
        if self.path != MEMORY:
            await self._db.execute("PRAGMA journal_mode = WAL")

    def _now(self) -> datetime:
        return _as_utc(self.clock())

    # -- migrations ------------------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        """The highest migration number applied to this database."""
        async with self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0])

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"Database {self.path} has schema version {current}, newer than this Ad Monster knows "
                f"({len(MIGRATIONS)}). Fix: upgrade Ad Monster or point ADMONSTER_HOME elsewhere."
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            await self._apply_migration(version, MIGRATIONS[version - 1])

    async def _apply_migration(self, version: int, script: str) -> None:
        applied_at = _iso(self._now())
        wrapped = (
            f"BEGIN IMMEDIATE;\n{script}\n;\n"
            f"INSERT INTO schema_version (version, applied_at) VALUES ({version}, '{applied_at}');\nCOMMIT;"
        )
        try:
            await self._db.executescript(wrapped)
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")
            if await self.schema_version() >= version:
                return  # another process applied it first
            raise StoreError(f"Migration {version} failed: {exc}. Fix: restore a backup of {self.path}.") from exc

    # -- writes helper ---------------------------------------------------------------------------------------

    async def _write(self, sql: str, params: tuple[Any, ...], workspace_id: int) -> aiosqlite.Cursor:
        try:
            return await self._db.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                raise InvalidArgument(
                    f"Workspace {workspace_id} does not exist. Fix: create it with ensure_workspace()."
                ) from None
            raise

    async def _fetchone(self, sql: str, params: tuple[Any, ...]) -> aiosqlite.Row | None:
        async with self._db.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _fetchall(self, sql: str, params: tuple[Any, ...]) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    # -- workspaces and API keys -----------------------------------------------------------------------------

    async def ensure_workspace(self, name: str) -> Workspace:
        """The workspace called `name`, created if it does not exist yet."""
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise InvalidArgument("Workspace name must be 1-100 characters. Fix: pass a short name such as 'default'.")
        await self._db.execute(
            "INSERT OR IGNORE INTO workspaces (name, created_at) VALUES (?, ?)", (name, _iso(self._now()))
        )
        row = await self._fetchone("SELECT id, name, created_at FROM workspaces WHERE name = ?", (name,))
        return Workspace(**dict(row))

    async def get_workspace(self, workspace_id: int) -> Workspace | None:
        """The workspace with this id, or None."""
        row = await self._fetchone("SELECT id, name, created_at FROM workspaces WHERE id = ?", (workspace_id,))
        return Workspace(**dict(row)) if row else None

    async def list_workspaces(self) -> list[Workspace]:
        """All workspaces, oldest first."""
        rows = await self._fetchall("SELECT id, name, created_at FROM workspaces ORDER BY id", ())
        return [Workspace(**dict(row)) for row in rows]

    async def create_api_key(self, workspace_id: int) -> str:
        """A new API key for the workspace; returned once in plain text, stored only as its SHA-256."""
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        await self._write(
            "INSERT INTO api_keys (key_hash, key_id, workspace_id, created_at) VALUES (?, ?, ?, ?)",
            (hash_api_key(key), api_key_id(key), workspace_id, _iso(self._now())),
            workspace_id,
        )
        return key

    async def find_workspace(self, name: str) -> Workspace | None:
        """The workspace called `name`, or None (nothing is created)."""
        row = await self._fetchone("SELECT id, name, created_at FROM workspaces WHERE name = ?", ((name or "").strip(),))
        return Workspace(**dict(row)) if row else None

    async def list_api_keys(self, workspace_id: int) -> list[ApiKeyInfo]:
        """The workspace's API keys, oldest first: their public ids and times, never the secret."""
        rows = await self._fetchall(
            "SELECT key_id, created_at, revoked_at FROM api_keys WHERE workspace_id = ? ORDER BY created_at, rowid",
            (workspace_id,),
        )
        return [ApiKeyInfo(key_id=row["key_id"] or "(made before key ids)", created_at=row["created_at"],
                           revoked_at=row["revoked_at"]) for row in rows]

    async def revoke_api_key(self, workspace_id: int, key_id: str) -> ApiKeyInfo | None:
        """Revoke the workspace's key with this public id (or the whole key): it stops authenticating at once.
        None when the workspace has no such key that is still valid."""
        wanted = api_key_id((key_id or "").strip())
        now = _iso(self._now())
        cursor = await self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE workspace_id = ? AND key_id = ? AND revoked_at IS NULL",
            (now, workspace_id, wanted),
        )
        if cursor.rowcount < 1:
            return None
        row = await self._fetchone(
            "SELECT key_id, created_at, revoked_at FROM api_keys WHERE workspace_id = ? AND key_id = ? ORDER BY rowid DESC",
            (workspace_id, wanted),
        )
        return ApiKeyInfo(key_id=row["key_id"], created_at=row["created_at"], revoked_at=row["revoked_at"])

    async def rotate_api_key(self, workspace_id: int, key_id: str) -> tuple[str, ApiKeyInfo] | None:
        """A new key for the workspace and the old one revoked, in one transaction; None (nothing changed) when the
        workspace has no valid key with that id."""
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            revoked = await self.revoke_api_key(workspace_id, key_id)
            if revoked is None:
                await self._db.execute("ROLLBACK")
                return None
            key = await self.create_api_key(workspace_id)
            await self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")
            raise
        return key, revoked

    async def workspace_for_api_key(self, key: str) -> Workspace | None:
        """The workspace an API key belongs to, or None for an unknown or revoked key."""
        if not key:
            return None
        rows = await self._fetchall(
            "SELECT k.key_hash, w.id, w.name, w.created_at FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id "
            "WHERE k.key_id = ? AND k.revoked_at IS NULL",
            (api_key_id(key),),
        )
        wanted = hash_api_key(key)
        for row in rows:
            if hmac.compare_digest(row["key_hash"], wanted):
                return Workspace(id=row["id"], name=row["name"], created_at=row["created_at"])
        return None

    # -- settings and guardrails -----------------------------------------------------------------------------

    async def get_setting(self, workspace_id: int, key: str, default: Any = None) -> Any:
        """The workspace's value for `key`, or `default`."""
        row = await self._fetchone(
            "SELECT value_json FROM settings WHERE workspace_id = ? AND key = ?", (workspace_id, key)
        )
        return json.loads(row["value_json"]) if row else default

    async def set_setting(self, workspace_id: int, key: str, value: Any) -> None:
        """Store a JSON value for `key` in the workspace; None removes the setting."""
        if not isinstance(key, str) or not key.strip():
            raise InvalidArgument("Setting key must be a non-empty string. Fix: pass a name such as 'guardrails'.")
        if value is None:
            await self._db.execute("DELETE FROM settings WHERE workspace_id = ? AND key = ?", (workspace_id, key))
            return
        await self._write(
            "INSERT INTO settings (workspace_id, key, value_json, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (workspace_id, key) DO UPDATE SET value_json = excluded.value_json, "
            "updated_at = excluded.updated_at",
            (workspace_id, key, _to_json(value, f"Setting {key!r}"), _iso(self._now())),
            workspace_id,
        )

    async def all_settings(self, workspace_id: int) -> dict[str, Any]:
        """Every setting of the workspace as a dict."""
        rows = await self._fetchall(
            "SELECT key, value_json FROM settings WHERE workspace_id = ? ORDER BY key", (workspace_id,)
        )
        return {row["key"]: json.loads(row["value_json"]) for row in rows}

    async def guardrails(self, workspace_id: int, ad_account_id: str | int | None = None) -> dict[str, Any]:
        """Effective guardrails: defaults < workspace 'guardrails' < 'guardrails:act_<id>' for the account."""
        merged = dict(DEFAULT_GUARDRAILS)
        merged.update(await self._guardrail_layer(workspace_id, GUARDRAILS_KEY))
        if ad_account_id is not None:
            merged.update(await self._guardrail_layer(workspace_id, guardrails_key(ad_account_id)))
        return merged

    async def _guardrail_layer(self, workspace_id: int, key: str) -> dict[str, Any]:
        stored = await self.get_setting(workspace_id, key, {})
        return stored if isinstance(stored, dict) else {}

    async def set_guardrails(
        self, workspace_id: int, values: dict[str, Any], ad_account_id: str | int | None = None
    ) -> dict[str, Any]:
        """Validate and merge guardrail values into the workspace (or one ad account); returns the effective set."""
        validated = validate_guardrails(values)
        key = GUARDRAILS_KEY if ad_account_id is None else guardrails_key(ad_account_id)
        layer = await self._guardrail_layer(workspace_id, key)
        layer.update(validated)
        await self.set_setting(workspace_id, key, layer)
        return await self.guardrails(workspace_id, ad_account_id)

    # -- selections ------------------------------------------------------------------------------------------

    async def get_selection(self, workspace_id: int, kind: str) -> str | None:
        """The selected ad account, page or Instagram account id, or None."""
        _check_selection_kind(kind)
        row = await self._fetchone(
            "SELECT value FROM selections WHERE workspace_id = ? AND kind = ?", (workspace_id, kind)
        )
        return row["value"] if row else None

    async def set_selection(self, workspace_id: int, kind: str, value: str | None) -> None:
        """Select an ad account, page or Instagram account; None clears the selection."""
        _check_selection_kind(kind)
        if value is None or not str(value).strip():
            await self._db.execute("DELETE FROM selections WHERE workspace_id = ? AND kind = ?", (workspace_id, kind))
            return
        await self._write(
            "INSERT INTO selections (workspace_id, kind, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (workspace_id, kind) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (workspace_id, kind, str(value).strip(), _iso(self._now())),
            workspace_id,
        )

    async def all_selections(self, workspace_id: int) -> dict[str, str | None]:
        """Every selection kind mapped to its value (None when unset)."""
        rows = await self._fetchall("SELECT kind, value FROM selections WHERE workspace_id = ?", (workspace_id,))
        found = {row["kind"]: row["value"] for row in rows}
        return {kind: found.get(kind) for kind in SELECTION_KINDS}

    # -- audit log -------------------------------------------------------------------------------------------

    async def add_audit(
        self,
        workspace_id: int,
        *,
        interface: str,
        op: str,
        args: dict[str, Any],
        summary: str,
        changes: list[dict[str, Any]],
        object_ids: list[str],
        outcome: str,
        error: str | None = None,
        fbtrace_id: str | None = None,
        undo_of: int | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> int:
        """Record one write in the audit log and return its id; credential-named keys are dropped. A `pending` entry is
        written before its request and settled after it (settle_audit); `tags` say how to find what its creates make
        ({"tag", "path", "name"} each)."""
        if outcome not in AUDIT_OUTCOMES:
            raise InvalidArgument(
                f"Audit outcome {outcome!r} is not known. Fix: use one of {', '.join(AUDIT_OUTCOMES)}."
            )
        now = _iso(self._now())
        cursor = await self._write(
            "INSERT INTO audit_log (workspace_id, created_at, interface, op, args_json, summary, changes_json, "
            "object_ids_json, outcome, error, fbtrace_id, undo_of, tags_json, settled_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                workspace_id,
                now,
                interface,
                op,
                _to_json(drop_secret_keys(args or {}), "Audit args"),
                summary,
                _to_json(drop_secret_keys(changes or []), "Audit changes"),
                _to_json([str(object_id) for object_id in object_ids or []], "Audit object ids"),
                outcome,
                error,
                fbtrace_id,
                undo_of,
                _tags_json(tags or []),
                None if outcome in UNSETTLED_OUTCOMES else now,
            ),
            workspace_id,
        )
        return int(cursor.lastrowid)

    async def settle_audit(
        self,
        workspace_id: int,
        audit_id: int,
        *,
        outcome: str,
        object_ids: list[str] | None = None,
        changes: list[dict[str, Any]] | None = None,
        error: str | None = None,
        fbtrace_id: str | None = None,
        undo_of: int | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> bool:
        """Settle a pending or unknown entry as `ok`, `error` or `unknown` (object ids and changes replaced when given;
        ``tags`` added to those it has: a lost answer can name more to look up, e.g. an upload session); False when the
        entry is not unsettled (another process settled it first)."""
        if outcome not in ("ok", "error", "unknown"):
            raise InvalidArgument(f"An audit entry settles as ok, error or unknown, not {outcome!r}. Fix: pass one of those.")
        sets = ["outcome = ?", "error = ?", "settled_at = ?"]
        values: list[Any] = [outcome, error, None if outcome == "unknown" else _iso(self._now())]
        for column, value, what in (("object_ids_json", object_ids, "Audit object ids"), ("changes_json", changes, "Audit changes")):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(_to_json(drop_secret_keys([str(v) for v in value] if column == "object_ids_json" else value), what))
        for column, value in (("fbtrace_id", fbtrace_id), ("undo_of", undo_of)):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(value)
        if tags:
            entry = await self.get_audit(workspace_id, audit_id)
            sets.append("tags_json = ?")
            values.append(_tags_json([*(entry.tags if entry else []), *tags]))
        cursor = await self._db.execute(
            f"UPDATE audit_log SET {', '.join(sets)} WHERE workspace_id = ? AND id = ? AND outcome IN ('pending', 'unknown')",
            (*values, workspace_id, audit_id),
        )
        return cursor.rowcount == 1

    async def note_audit_made(self, workspace_id: int, audit_id: int, object_id: str, lookup: dict[str, str]) -> bool:
        """While a write runs: record an object it has made so far and how reconcile looks at it (a video upload's id,
        known after its first phase), so a crash before the answer leaves no unrecorded object. False when the entry
        is no longer pending."""
        entry = await self.get_audit(workspace_id, audit_id)
        if entry is None or entry.outcome != "pending":
            return False
        object_ids = sorted({*entry.object_ids, str(object_id)})
        cursor = await self._db.execute(
            "UPDATE audit_log SET object_ids_json = ?, tags_json = ? WHERE workspace_id = ? AND id = ? AND outcome = 'pending'",
            (_to_json(object_ids, "Audit object ids"), _tags_json([*entry.tags, lookup]), workspace_id, audit_id),
        )
        return cursor.rowcount == 1

    async def unsettled_audit(self, workspace_id: int) -> list[AuditEntry]:
        """The workspace's entries still pending or unknown (a crash mid-write, a lost answer), oldest first."""
        rows = await self._fetchall(
            "SELECT * FROM audit_log WHERE workspace_id = ? AND outcome IN ('pending', 'unknown') ORDER BY id",
            (workspace_id,),
        )
        return [_audit_from_row(row) for row in rows]

    async def list_audit(self, workspace_id: int, limit: int = 20, op: str | None = None) -> list[AuditEntry]:
        """The workspace's latest audit entries, newest first, optionally only one op."""
        limit = max(1, min(int(limit), 1000))
        if op is None:
            rows = await self._fetchall(
                "SELECT * FROM audit_log WHERE workspace_id = ? ORDER BY id DESC LIMIT ?", (workspace_id, limit)
            )
        else:
            rows = await self._fetchall(
                "SELECT * FROM audit_log WHERE workspace_id = ? AND op = ? ORDER BY id DESC LIMIT ?",
                (workspace_id, op, limit),
            )
        return [_audit_from_row(row) for row in rows]

    async def get_audit(self, workspace_id: int, audit_id: int) -> AuditEntry | None:
        """One audit entry of the workspace, or None."""
        row = await self._fetchone(
            "SELECT * FROM audit_log WHERE workspace_id = ? AND id = ?", (workspace_id, audit_id)
        )
        return _audit_from_row(row) if row else None

    async def mark_undone(self, workspace_id: int, audit_id: int, undone_by: int) -> bool:
        """Record that entry `audit_id` was undone by entry `undone_by`; False if not found or already undone."""
        if await self.get_audit(workspace_id, undone_by) is None:
            raise InvalidArgument(
                f"Audit entry {undone_by} is not in this workspace. Fix: pass the undo's own entry id."
            )
        cursor = await self._db.execute(
            "UPDATE audit_log SET undone_by = ? WHERE workspace_id = ? AND id = ? AND undone_by IS NULL",
            (undone_by, workspace_id, audit_id),
        )
        return cursor.rowcount == 1

    async def release_undone(self, workspace_id: int, audit_id: int, undone_by: int) -> bool:
        """Take back mark_undone when the undo `undone_by` provably changed nothing; False if another undo holds it."""
        cursor = await self._db.execute(
            "UPDATE audit_log SET undone_by = NULL WHERE workspace_id = ? AND id = ? AND undone_by = ?",
            (workspace_id, audit_id, undone_by),
        )
        return cursor.rowcount == 1

    # -- confirmations ---------------------------------------------------------------------------------------

    async def add_confirmation(
        self, workspace_id: int, *, op: str, args: dict[str, Any], preview: str, ttl_seconds: int = 900,
        changes: list[dict[str, Any]] | None = None,
    ) -> str:
        """Save a pending spend op with the exact changes its preview showed, and return its short id (like 'c-7f3a9b'),
        valid for `ttl_seconds`."""
        now = self._now()
        # Encrypted with the store's key: a held add_users or send_events needs its people's data to run later.
        args_json = self._encrypt(_to_json(args or {}, "Confirmation args"))
        changes_json = _to_json(changes or [], "Confirmation changes")
        for _attempt in range(20):
            confirmation_id = CONFIRMATION_PREFIX + secrets.token_hex(3)
            try:
                await self._write(
                    "INSERT INTO confirmations (id, workspace_id, op, args_json, preview, created_at, expires_at, changes_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (confirmation_id, workspace_id, op, args_json, preview, _iso(now),
                     _iso(now + timedelta(seconds=ttl_seconds)), changes_json),
                    workspace_id,
                )
                return confirmation_id
            except sqlite3.IntegrityError:
                continue  # id collision: draw another
        raise StoreError("Could not allocate a confirmation id. Fix: retry the operation.")

    async def take_confirmation(self, workspace_id: int, confirmation_id: str) -> Confirmation | None:
        """Claim a pending, unexpired confirmation exactly once; None if unknown, used, expired or not ours."""
        now = _iso(self._now())
        cursor = await self._db.execute(
            "UPDATE confirmations SET used_at = ? WHERE workspace_id = ? AND id = ? AND used_at IS NULL "
            "AND expires_at > ?",
            (now, workspace_id, _clean_confirmation_id(confirmation_id), now),
        )
        if cursor.rowcount != 1:
            return None
        return await self.get_confirmation(workspace_id, confirmation_id)

    async def reject_confirmation(self, workspace_id: int, confirmation_id: str) -> Confirmation | None:
        """Cancel a pending confirmation (it can no longer be confirmed); None if unknown, used, expired or not ours."""
        return await self.take_confirmation(workspace_id, confirmation_id)

    async def get_confirmation(self, workspace_id: int, confirmation_id: str) -> Confirmation | None:
        """A confirmation of the workspace with its status (pending, used or expired), without claiming it."""
        row = await self._fetchone(
            "SELECT * FROM confirmations WHERE workspace_id = ? AND id = ?",
            (workspace_id, _clean_confirmation_id(confirmation_id)),
        )
        return _confirmation_from_row(row, _iso(self._now()), self._args_json) if row else None

    async def list_confirmations(self, workspace_id: int) -> list[Confirmation]:
        """The workspace's pending, unexpired confirmations, oldest first."""
        now = _iso(self._now())
        rows = await self._fetchall(
            "SELECT * FROM confirmations WHERE workspace_id = ? AND used_at IS NULL AND expires_at > ? "
            "ORDER BY created_at, id",
            (workspace_id, now),
        )
        return [_confirmation_from_row(row, now, self._args_json) for row in rows]

    # -- chat threads ----------------------------------------------------------------------------------------

    async def append_chat_messages(self, workspace_id: int, thread_id: str, messages: list[dict[str, Any]]) -> int:
        """Append OpenAI-style messages to a workspace's thread, all or none; returns the new last seq."""
        thread = _check_thread_id(thread_id)
        rows = [_chat_row(message) for message in messages]
        if not rows:
            return 0
        created = _iso(self._now())
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            last = await self._fetchone(
                "SELECT COALESCE(MAX(seq), 0) FROM chat_messages WHERE workspace_id = ? AND thread_id = ?",
                (workspace_id, thread),
            )
            start = int(last[0]) + 1
            for offset, (role, content, tool_calls, tool_call_id, name) in enumerate(rows):
                await self._write(
                    "INSERT INTO chat_messages (workspace_id, thread_id, seq, role, content, tool_calls, tool_call_id, "
                    "name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (workspace_id, thread, start + offset, role, content, tool_calls, tool_call_id, name, created),
                    workspace_id,
                )
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        return start + len(rows) - 1

    async def chat_history(self, workspace_id: int, thread_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The last `limit` messages of the workspace's thread, oldest first, as OpenAI message dicts."""
        thread = _check_thread_id(thread_id)
        rows = await self._fetchall(
            "SELECT * FROM (SELECT * FROM chat_messages WHERE workspace_id = ? AND thread_id = ? ORDER BY seq DESC LIMIT ?) "
            "ORDER BY seq",
            (workspace_id, thread, max(0, int(limit))),
        )
        return [_chat_message_from_row(row) for row in rows]

    async def list_threads(self, workspace_id: int) -> list[dict[str, Any]]:
        """The workspace's threads, most recently active first: thread_id, messages, started_at, last_at."""
        rows = await self._fetchall(
            "SELECT thread_id, COUNT(*) AS messages, MIN(created_at) AS started_at, MAX(created_at) AS last_at "
            "FROM chat_messages WHERE workspace_id = ? GROUP BY thread_id ORDER BY MAX(created_at) DESC, thread_id",
            (workspace_id,),
        )
        return [dict(row) for row in rows]

    # -- tokens ----------------------------------------------------------------------------------------------

    async def save_token(
        self,
        workspace_id: int,
        *,
        token: str,
        kind: str = "user",
        app_id: str | None = None,
        app_secret: str | None = None,
        user_id: str | None = None,
        expires_at: datetime | int | float | str | None = None,
        scopes: list[str] | None = None,
    ) -> None:
        """Encrypt and save the workspace's token (replacing any previous one)."""
        token = _secret_text(token)
        if not token or not isinstance(token, str):
            raise InvalidArgument("Token is empty. Fix: pass the access token to save.")
        app_secret = _secret_text(app_secret) if app_secret else None
        now = _iso(self._now())
        await self._write(
            "INSERT INTO tokens (workspace_id, kind, token_encrypted, app_id, app_secret_encrypted, user_id, "
            "expires_at, scopes_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (workspace_id) DO UPDATE SET kind = excluded.kind, "
            "token_encrypted = excluded.token_encrypted, app_id = excluded.app_id, "
            "app_secret_encrypted = excluded.app_secret_encrypted, user_id = excluded.user_id, "
            "expires_at = excluded.expires_at, scopes_json = excluded.scopes_json, updated_at = excluded.updated_at, "
            "invalid_reason = NULL, checked_at = NULL",
            (
                workspace_id,
                kind,
                self._encrypt(token),
                app_id,
                self._encrypt(app_secret) if app_secret else None,
                None if user_id is None else str(user_id),
                _coerce_expiry(expires_at),
                None if scopes is None else _to_json(list(scopes), "Token scopes"),
                now,
                now,
            ),
            workspace_id,
        )

    async def load_token(self, workspace_id: int) -> StoredToken | None:
        """The workspace's decrypted token, or None; SecretKeyError if the key cannot decrypt it."""
        row = await self._fetchone("SELECT * FROM tokens WHERE workspace_id = ?", (workspace_id,))
        if row is None:
            return None
        return StoredToken(
            workspace_id=row["workspace_id"],
            kind=row["kind"],
            token=self._decrypt(row["token_encrypted"]),
            app_id=row["app_id"],
            app_secret=self._decrypt(row["app_secret_encrypted"]) if row["app_secret_encrypted"] else None,
            user_id=row["user_id"],
            expires_at=datetime.fromisoformat(row["expires_at"]) if row["expires_at"] else None,
            scopes=json.loads(row["scopes_json"]) if row["scopes_json"] else None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            invalid_reason=row["invalid_reason"],
            checked_at=_parse_time(row["checked_at"]),
        )

    async def delete_token(self, workspace_id: int) -> bool:
        """Forget the workspace's token; True if there was one."""
        cursor = await self._db.execute("DELETE FROM tokens WHERE workspace_id = ?", (workspace_id,))
        return cursor.rowcount == 1

    async def mark_token_invalid(self, workspace_id: int, reason: str) -> bool:
        """Record that the workspace's token stopped working (e.g. error 190); False if there is no token."""
        reason = _one_line(reason or "the token was rejected by Facebook")
        cursor = await self._db.execute(
            "UPDATE tokens SET invalid_reason = ?, checked_at = ? WHERE workspace_id = ?",
            (reason, _iso(self._now()), workspace_id),
        )
        return cursor.rowcount == 1

    async def mark_token_checked(
        self,
        workspace_id: int,
        *,
        valid: bool,
        expires_at: datetime | int | float | str | None,
        scopes: list[str] | None,
        reason: str | None = None,
    ) -> bool:
        """Record a health check (debug_token): validity, expiry (None/0 = never), scopes (None keeps them).

        A valid check clears `invalid_reason`; an invalid one sets it to `reason` (or keeps the one recorded).
        False if the workspace has no token.
        """
        now = _iso(self._now())
        scopes_json = None if scopes is None else _to_json(list(scopes), "Token scopes")
        if valid:
            invalid_sql, invalid_params = "invalid_reason = NULL", ()
        else:
            fallback = _one_line(reason) if reason else "the token check found it invalid"
            invalid_sql = "invalid_reason = CASE WHEN ? IS NOT NULL THEN ? ELSE COALESCE(invalid_reason, ?) END"
            invalid_params = (reason, fallback, fallback)
        cursor = await self._db.execute(
            f"UPDATE tokens SET checked_at = ?, expires_at = ?, scopes_json = COALESCE(?, scopes_json), {invalid_sql} "
            "WHERE workspace_id = ?",
            (now, _coerce_expiry(expires_at), scopes_json, *invalid_params, workspace_id),
        )
        return cursor.rowcount == 1

    async def record_token_warning(self, workspace_id: int, key: str) -> bool:
        """True the first time `key` (e.g. 'expiry:7d:<expires_at>', 'invalid:<fingerprint>') is recorded."""
        key = str(key or "").strip()
        if not key or len(key) > 200:
            raise InvalidArgument("Warning key must be 1-200 characters. Fix: pass e.g. 'expiry:7d:<expires_at>'.")
        cursor = await self._write(
            "INSERT OR IGNORE INTO token_warnings (workspace_id, key, created_at) VALUES (?, ?, ?)",
            (workspace_id, key, _iso(self._now())),
            workspace_id,
        )
        return cursor.rowcount == 1

    # -- OAuth state nonces ----------------------------------------------------------------------------------

    async def add_oauth_state(self, workspace_id: int, nonce: str, expires_at: datetime, *,
                              binding_hash: str | None = None, allow_switch: bool = False) -> None:
        """Remember an OAuth `state` nonce bound to the workspace until `expires_at` (single use), and to the browser
        or terminal that asked for it (`binding_hash`)."""
        nonce = str(nonce or "").strip()
        if not nonce or len(nonce) > 200:
            raise InvalidArgument("OAuth state nonce must be 1-200 characters. Fix: use secrets.token_urlsafe().")
        if not isinstance(expires_at, datetime):
            raise InvalidArgument("OAuth state expiry must be a datetime. Fix: pass now + timedelta(minutes=10).")
        now = self._now()
        # Housekeeping: states expired for a day are of no use to anyone.
        await self._db.execute("DELETE FROM oauth_states WHERE expires_at < ?", (_iso(now - timedelta(days=1)),))
        try:
            await self._write(
                "INSERT INTO oauth_states (nonce, workspace_id, created_at, expires_at, binding_hash, allow_switch) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (nonce, workspace_id, _iso(now), _iso(expires_at), binding_hash, 1 if allow_switch else 0),
                workspace_id,
            )
        except sqlite3.IntegrityError:
            raise InvalidArgument("OAuth state nonce is already in use. Fix: draw a new random nonce.") from None

    async def consume_oauth_state(self, nonce: str) -> int | None:
        """The workspace id bound to `nonce`, exactly once; None when unknown, already used or expired."""
        nonce = str(nonce or "").strip()
        if not nonce:
            return None
        now = _iso(self._now())
        cursor = await self._db.execute(
            "UPDATE oauth_states SET used_at = ? WHERE nonce = ? AND used_at IS NULL AND expires_at > ?",
            (now, nonce, now),
        )
        if cursor.rowcount != 1:
            return None
        row = await self._fetchone("SELECT workspace_id FROM oauth_states WHERE nonce = ?", (nonce,))
        return int(row["workspace_id"]) if row else None

    async def oauth_state_binding(self, nonce: str) -> tuple[str | None, bool] | None:
        """(binding hash, switch allowed) of a state nonce, used or not; None when unknown."""
        row = await self._fetchone("SELECT binding_hash, allow_switch FROM oauth_states WHERE nonce = ?",
                                   (str(nonce or "").strip(),))
        return None if row is None else (row["binding_hash"], bool(row["allow_switch"]))

    async def token_holders(self, user_id: str, app_id: str | None, *, exclude_workspace: int) -> int:
        """How many other workspaces hold a token of this Facebook user for this app."""
        row = await self._fetchone(
            "SELECT COUNT(*) AS n FROM tokens WHERE user_id = ? AND COALESCE(app_id, '') = COALESCE(?, '') "
            "AND workspace_id != ?", (str(user_id), app_id, exclude_workspace))
        return int(row["n"]) if row else 0

    # -- notification outbox ---------------------------------------------------------------------------------

    async def enqueue_notification(
        self,
        workspace_id: int,
        *,
        channel: str,
        subject: str,
        text: str,
        target: str | None,
        dedupe_key: str | None = None,
        level: str = "info",
    ) -> int | None:
        """Queue a message; its id, or None when `dedupe_key` was already queued for this workspace and channel."""
        if channel not in NOTIFICATION_CHANNELS:
            raise InvalidArgument(
                f"Notification channel {channel!r} is not known. Fix: use {', '.join(NOTIFICATION_CHANNELS)}."
            )
        if level not in NOTIFICATION_LEVELS:
            raise InvalidArgument(f"Notification level {level!r} is not known. Fix: use {', '.join(NOTIFICATION_LEVELS)}.")
        subject = _one_line(subject or "")
        if not subject:
            raise InvalidArgument("Notification subject is empty. Fix: pass a short subject line.")
        target = str(target).strip() if target else None
        if channel in DELIVERY_CHANNELS and not target:
            raise InvalidArgument(
                f"A {channel} notification needs a target. Fix: pass the email address or webhook URL."
            )
        if channel == "inbox":
            target = None
        now = _iso(self._now())
        try:
            cursor = await self._write(
                "INSERT INTO notifications (workspace_id, channel, level, subject, text, target, dedupe_key, status, "
                "attempts, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                (workspace_id, channel, level, subject, str(text or ""), target, dedupe_key or None, now, now),
                workspace_id,
            )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                return None
            raise
        return int(cursor.lastrowid)

    async def due_notifications(self, now: datetime, limit: int = 50) -> list[Notification]:
        """Pending email and webhook messages of every workspace whose next attempt is at or before `now`."""
        limit = max(1, min(int(limit), 1000))
        rows = await self._fetchall(
            "SELECT * FROM notifications WHERE status = 'pending' AND channel IN ('email', 'webhook') "
            "AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            (_iso(now), limit),
        )
        return [_notification_from_row(row) for row in rows]

    async def get_notification(self, workspace_id: int, notification_id: int) -> Notification | None:
        """One message of the workspace, or None."""
        row = await self._fetchone(
            "SELECT * FROM notifications WHERE workspace_id = ? AND id = ?", (workspace_id, notification_id)
        )
        return _notification_from_row(row) if row else None

    async def mark_notification_sent(self, notification_id: int) -> bool:
        """Record a successful delivery of a pending message; False if it was not pending."""
        now = _iso(self._now())
        cursor = await self._db.execute(
            "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = ?, next_attempt_at = ? "
            "WHERE id = ? AND status = 'pending'",
            (now, now, notification_id),
        )
        return cursor.rowcount == 1

    async def mark_notification_failed(
        self, notification_id: int, error: str, next_attempt_at: datetime | None
    ) -> bool:
        """Record a failed attempt: retry at `next_attempt_at`, or give up (status 'failed') when it is None."""
        error = _one_line(str(error or "delivery failed"))[:MAX_ERROR_CHARS]
        if next_attempt_at is None:
            cursor = await self._db.execute(
                "UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = ? "
                "WHERE id = ? AND status = 'pending'",
                (error, notification_id),
            )
        else:
            cursor = await self._db.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (error, _iso(next_attempt_at), notification_id),
            )
        return cursor.rowcount == 1

    async def list_notifications(
        self, workspace_id: int, limit: int = 50, *, channel: str | None = None, status: str | None = None
    ) -> list[Notification]:
        """The workspace's messages, newest first, optionally one channel and/or status."""
        limit = max(1, min(int(limit), 1000))
        where, params = ["workspace_id = ?"], [workspace_id]
        if channel is not None:
            where.append("channel = ?")
            params.append(channel)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        rows = await self._fetchall(
            f"SELECT * FROM notifications WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [_notification_from_row(row) for row in rows]

    async def unread_inbox(self, workspace_id: int) -> list[Notification]:
        """The workspace's chat-inbox messages not shown yet, oldest first."""
        rows = await self._fetchall(
            "SELECT * FROM notifications WHERE workspace_id = ? AND channel = 'inbox' AND status = 'pending' "
            "ORDER BY id",
            (workspace_id,),
        )
        return [_notification_from_row(row) for row in rows]

    async def mark_inbox_read(self, workspace_id: int, ids: list[int]) -> int:
        """Mark these inbox messages of the workspace read; returns how many changed (others' ids are ignored)."""
        ids = [int(i) for i in ids or []]
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        cursor = await self._db.execute(
            f"UPDATE notifications SET status = 'read', sent_at = ? WHERE workspace_id = ? AND channel = 'inbox' "
            f"AND status = 'pending' AND id IN ({marks})",
            (_iso(self._now()), workspace_id, *ids),
        )
        return cursor.rowcount

    # -- scheduled job runs ----------------------------------------------------------------------------------

    async def record_job_run(self, name: str, *, ran_at: datetime, ok: bool, summary: str) -> None:
        """Remember when job `name` last ran and how it went."""
        await self._db.execute(
            "INSERT INTO job_runs (name, last_run_at, ok, summary) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE "
            "SET last_run_at = excluded.last_run_at, ok = excluded.ok, summary = excluded.summary",
            (name, _iso(ran_at), 1 if ok else 0, _one_line(summary or "")[:MAX_ERROR_CHARS]),
        )

    async def last_job_run(self, name: str) -> JobRun | None:
        """The last recorded run of job `name`, or None."""
        row = await self._fetchone("SELECT * FROM job_runs WHERE name = ?", (name,))
        return _job_run_from_row(row) if row else None

    async def list_job_runs(self) -> list[JobRun]:
        """The last run of every job that ever ran, by name."""
        rows = await self._fetchall("SELECT * FROM job_runs ORDER BY name", ())
        return [_job_run_from_row(row) for row in rows]

    # -- launches --------------------------------------------------------------------------------------------

    async def start_launch(self, workspace_id: int, key: str, request: dict[str, Any]) -> Launch:
        """The launch for `key`, created (status running) if new; a rolled-back one starts again with no steps."""
        if not key or len(key) > 200:
            raise InvalidArgument("Launch key must be 1-200 characters. Fix: pass the request's hash.")
        now = _iso(self._now())
        request_json = _to_json(drop_secret_keys(request or {}), "Launch request")
        await self._write(
            "INSERT OR IGNORE INTO launches (workspace_id, key, request_json, status, steps_json, created_at, updated_at) "
            "VALUES (?, ?, ?, 'running', '{}', ?, ?)",
            (workspace_id, key, request_json, now, now),
            workspace_id,
        )
        await self._db.execute(
            "UPDATE launches SET status = 'running', steps_json = '{}', request_json = ?, updated_at = ? "
            "WHERE workspace_id = ? AND key = ? AND status = 'rolled_back'",
            (request_json, now, workspace_id, key),
        )
        found = await self.find_launch(workspace_id, key)
        assert found is not None
        return found

    async def find_launch(self, workspace_id: int, key: str) -> Launch | None:
        """The workspace's launch for `key`, or None."""
        row = await self._fetchone("SELECT * FROM launches WHERE workspace_id = ? AND key = ?", (workspace_id, key))
        return _launch_from_row(row) if row else None

    async def get_launch(self, workspace_id: int, launch_id: int) -> Launch | None:
        """One launch of the workspace, or None (another workspace's launch is None too)."""
        row = await self._fetchone("SELECT * FROM launches WHERE workspace_id = ? AND id = ?", (workspace_id, int(launch_id)))
        return _launch_from_row(row) if row else None

    async def list_launches(self, workspace_id: int, limit: int = 20) -> list[Launch]:
        """The workspace's latest launches, newest first."""
        rows = await self._fetchall(
            "SELECT * FROM launches WHERE workspace_id = ? ORDER BY id DESC LIMIT ?",
            (workspace_id, max(1, min(int(limit), 1000))),
        )
        return [_launch_from_row(row) for row in rows]

    async def record_launch_step(
        self,
        workspace_id: int,
        launch_id: int,
        step: str,
        *,
        status: str,
        object_id: str | None = None,
        data: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> Launch:
        """Record one step's outcome (done, failed or deleted), or that its create is being sent; a failed step marks the
        launch failed."""
        if status not in STEP_STATUSES:
            raise InvalidArgument(f"Step status {status!r} is not known. Fix: use one of {', '.join(STEP_STATUSES)}.")
        launch = await self.get_launch(workspace_id, launch_id)
        if launch is None:
            raise InvalidArgument(f"Launch {launch_id} is not in this workspace. Fix: pass one of its launch ids.")
        steps = dict(launch.steps)
        previous = steps.pop(step, {})
        entry: dict[str, Any] = {"status": status, "object_id": object_id or previous.get("object_id"),
                                 "data": drop_secret_keys(data if data is not None else previous.get("data") or {}),
                                 "at": _iso(self._now())}
        if error is not None:
            entry["error"] = drop_secret_keys(error)
        steps[step] = entry  # re-inserted last: the steps stay in the order they last ran
        steps_json = json.dumps(steps, ensure_ascii=False)
        launch_status = "failed" if status == "failed" else launch.status
        await self._db.execute(
            "UPDATE launches SET steps_json = ?, status = ?, updated_at = ? WHERE workspace_id = ? AND id = ?",
            (steps_json, launch_status, _iso(self._now()), workspace_id, launch_id),
        )
        return await self.get_launch(workspace_id, launch_id)  # type: ignore[return-value]

    async def set_launch_status(self, workspace_id: int, launch_id: int, status: str) -> bool:
        """Set a launch's status (running, failed, done, rolled_back); False when it is not in this workspace."""
        if status not in LAUNCH_STATUSES:
            raise InvalidArgument(f"Launch status {status!r} is not known. Fix: use one of {', '.join(LAUNCH_STATUSES)}.")
        cursor = await self._db.execute(
            "UPDATE launches SET status = ?, updated_at = ? WHERE workspace_id = ? AND id = ?",
            (status, _iso(self._now()), workspace_id, launch_id),
        )
        return cursor.rowcount == 1

    # -- single-flight leases --------------------------------------------------------------------------------

    async def claim_lease(self, workspace_id: int, key: str, owner: str, seconds: float) -> Lease:
        """Take the lease on `key` for `owner` for `seconds` unless another owner holds one that has not expired.

        One atomic statement, so two requests or two processes sharing this file never both get it. Returns the lease
        as it stands afterwards: its `owner` says whether the claim won.
        """
        key, owner = _lease_names(key, owner)
        while True:
            now = self._now()
            await self._write(
                "INSERT INTO leases (workspace_id, key, owner, claimed_at, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (workspace_id, key) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at, "
                "expires_at = excluded.expires_at WHERE leases.expires_at <= excluded.claimed_at",
                (workspace_id, key, owner, _lease_time(now), _lease_time(now + _lease_length(seconds))),
                workspace_id,
            )
            row = await self._fetchone("SELECT * FROM leases WHERE workspace_id = ? AND key = ?", (workspace_id, key))
            if row is not None:
                return _lease_from_row(row)
            # The holder released it between the two statements: the key is free, so claim again.

    async def renew_lease(self, workspace_id: int, key: str, owner: str, seconds: float) -> bool:
        """Push the lease's expiry `seconds` from now; False when `owner` no longer holds it (another took it over)."""
        key, owner = _lease_names(key, owner)
        cursor = await self._db.execute(
            "UPDATE leases SET expires_at = ? WHERE workspace_id = ? AND key = ? AND owner = ?",
            (_lease_time(self._now() + _lease_length(seconds)), workspace_id, key, owner),
        )
        return cursor.rowcount == 1

    async def release_lease(self, workspace_id: int, key: str, owner: str) -> bool:
        """Give the lease up (only its owner can); False when `owner` did not hold it."""
        key, owner = _lease_names(key, owner)
        cursor = await self._db.execute(
            "DELETE FROM leases WHERE workspace_id = ? AND key = ? AND owner = ?", (workspace_id, key, owner)
        )
        return cursor.rowcount == 1

    # -- alert rules and events ------------------------------------------------------------------------------

    async def add_alert_rule(
        self,
        workspace_id: int,
        *,
        name: str,
        object_id: str,
        level: str,
        metric: str,
        operator: str,
        threshold: float,
        window: str,
        action: str,
        cooldown_hours: float,
        ad_account_id: str | None = None,
        currency: str | None = None,
        scale_pct: int | None = None,
        max_budget: int | None = None,
        enabled: bool = True,
    ) -> AlertRule:
        """Save a new alert rule; its name is unique in the workspace."""
        name = _one_line(name or "")
        if not name or len(name) > 200:
            raise InvalidArgument("Alert name must be 1-200 characters. Fix: pass a short name such as 'CPA too high'.")
        try:
            cursor = await self._write(
                "INSERT INTO alert_rules (workspace_id, name, object_id, level, ad_account_id, currency, metric, operator, "
                "threshold, window, action, scale_pct, max_budget, cooldown_hours, enabled, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (workspace_id, name, str(object_id), level, ad_account_id, currency, metric, operator, float(threshold),
                 window, action, scale_pct, max_budget, float(cooldown_hours), 1 if enabled else 0, _iso(self._now())),
                workspace_id,
            )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise InvalidArgument(f"An alert named {name!r} already exists. Fix: pick another name or delete it first.") from None
            raise InvalidArgument(f"Alert rule refused by the database ({exc}). Fix: check level, operator and action.") from None
        rule = await self.get_alert_rule(workspace_id, int(cursor.lastrowid))
        assert rule is not None
        return rule

    async def get_alert_rule(self, workspace_id: int, rule_id: int) -> AlertRule | None:
        """One alert rule of the workspace, or None."""
        row = await self._fetchone("SELECT * FROM alert_rules WHERE workspace_id = ? AND id = ?", (workspace_id, int(rule_id)))
        return _alert_rule_from_row(row) if row else None

    async def list_alert_rules(self, workspace_id: int, *, enabled_only: bool = False) -> list[AlertRule]:
        """The workspace's alert rules, oldest first."""
        where = " AND enabled = 1" if enabled_only else ""
        rows = await self._fetchall(f"SELECT * FROM alert_rules WHERE workspace_id = ?{where} ORDER BY id", (workspace_id,))
        return [_alert_rule_from_row(row) for row in rows]

    async def delete_alert_rule(self, workspace_id: int, rule_id: int) -> bool:
        """Delete one alert rule of the workspace (its events stay, without the rule); False when it is not there."""
        cursor = await self._db.execute("DELETE FROM alert_rules WHERE workspace_id = ? AND id = ?", (workspace_id, int(rule_id)))
        return cursor.rowcount == 1

    async def record_alert_fired(
        self,
        workspace_id: int,
        rule_id: int,
        *,
        fired_at: datetime,
        value: float | None,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> AlertEvent:
        """Record that a rule fired at `fired_at` (its cooldown starts then) and what its action did."""
        rule = await self.get_alert_rule(workspace_id, rule_id)
        if rule is None:
            raise InvalidArgument(f"Alert rule {rule_id} is not in this workspace. Fix: pass one of its rule ids.")
        at = _iso(_as_utc(fired_at))
        await self._db.execute("UPDATE alert_rules SET last_fired_at = ? WHERE workspace_id = ? AND id = ?",
                               (at, workspace_id, rule.id))
        cursor = await self._write(
            "INSERT INTO alert_events (workspace_id, rule_id, rule_name, fired_at, object_id, value, action, outcome, "
            "detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (workspace_id, rule.id, rule.name, at, rule.object_id, value, rule.action, _one_line(outcome)[:MAX_ERROR_CHARS],
             _to_json(drop_secret_keys(detail or {}), "Alert event detail")),
            workspace_id,
        )
        row = await self._fetchone("SELECT * FROM alert_events WHERE id = ?", (int(cursor.lastrowid),))
        return _alert_event_from_row(row)

    async def list_alert_events(self, workspace_id: int, *, rule_id: int | None = None, limit: int = 50) -> list[AlertEvent]:
        """The workspace's alert events, newest first (optionally one rule's)."""
        where, params = "workspace_id = ?", [workspace_id]
        if rule_id is not None:
            where += " AND rule_id = ?"
            params.append(int(rule_id))
        rows = await self._fetchall(f"SELECT * FROM alert_events WHERE {where} ORDER BY id DESC LIMIT ?",
                                    (*params, max(1, min(int(limit), 1000))))
        return [_alert_event_from_row(row) for row in rows]

    # -- daily performance snapshots -------------------------------------------------------------------------

    async def upsert_snapshot(self, workspace_id: int, object_id: str, level: str, day: str, metrics: dict[str, Any]) -> bool:
        """Keep one object's metrics for one day (replacing that day's earlier ones); True when new or changed."""
        day = _check_day(day)
        metrics_json = json.dumps(metrics, sort_keys=True, ensure_ascii=False)
        row = await self._fetchone("SELECT level, metrics_json FROM perf_snapshots WHERE workspace_id = ? AND object_id = ? AND day = ?",
                                   (workspace_id, str(object_id), day))
        if row is not None and row["metrics_json"] == metrics_json and row["level"] == level:
            return False
        await self._write(
            "INSERT INTO perf_snapshots (workspace_id, object_id, level, day, metrics_json, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (workspace_id, object_id, day) DO UPDATE SET level = excluded.level, "
            "metrics_json = excluded.metrics_json, updated_at = excluded.updated_at",
            (workspace_id, str(object_id), level, day, metrics_json, _iso(self._now())),
            workspace_id,
        )
        return True

    async def list_snapshots(
        self, workspace_id: int, since: str, until: str, *, level: str | None = None, object_ids: list[str] | None = None
    ) -> list[Snapshot]:
        """Snapshots with `since` <= day <= `until`, by day then object."""
        where, params = ["workspace_id = ?", "day >= ?", "day <= ?"], [workspace_id, _check_day(since), _check_day(until)]
        if level is not None:
            where.append("level = ?")
            params.append(level)
        if object_ids is not None:
            if not object_ids:
                return []
            where.append(f"object_id IN ({', '.join('?' for _ in object_ids)})")
            params.extend(str(i) for i in object_ids)
        rows = await self._fetchall(f"SELECT * FROM perf_snapshots WHERE {' AND '.join(where)} ORDER BY day, object_id", tuple(params))
        return [Snapshot(workspace_id=row["workspace_id"], object_id=row["object_id"], level=row["level"], day=row["day"],
                         metrics=json.loads(row["metrics_json"]), updated_at=row["updated_at"]) for row in rows]

    # -- spend ledger ----------------------------------------------------------------------------------------

    async def record_spend(
        self, workspace_id: int, ad_account_id: str, day: str, *, spend_minor: int, currency: str, fee_minor: int = 0
    ) -> LedgerEntry:
        """Write (or overwrite) one ad account's spend for one day."""
        account = normalize_ad_account_id(ad_account_id)
        day = _check_day(day)
        if int(spend_minor) < 0 or int(fee_minor) < 0:
            raise InvalidArgument("Spend and fee cannot be negative. Fix: pass amounts in minor units, 0 or more.")
        await self._write(
            "INSERT INTO spend_ledger (workspace_id, ad_account_id, day, spend_minor, currency, fee_minor, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, ad_account_id, day) DO UPDATE SET "
            "spend_minor = excluded.spend_minor, currency = excluded.currency, fee_minor = excluded.fee_minor, "
            "updated_at = excluded.updated_at",
            (workspace_id, account, day, int(spend_minor), str(currency).upper(), int(fee_minor), _iso(self._now())),
            workspace_id,
        )
        [entry] = await self.list_spend(workspace_id, day, day, ad_account_id=account)
        return entry

    async def list_spend(self, workspace_id: int, since: str, until: str, *, ad_account_id: str | None = None) -> list[LedgerEntry]:
        """Ledger entries with `since` <= day <= `until`, by day then account."""
        where, params = ["workspace_id = ?", "day >= ?", "day <= ?"], [workspace_id, _check_day(since), _check_day(until)]
        if ad_account_id is not None:
            where.append("ad_account_id = ?")
            params.append(normalize_ad_account_id(ad_account_id))
        rows = await self._fetchall(f"SELECT * FROM spend_ledger WHERE {' AND '.join(where)} ORDER BY day, ad_account_id", tuple(params))
        return [LedgerEntry(workspace_id=row["workspace_id"], ad_account_id=row["ad_account_id"], day=row["day"],
                            spend_minor=row["spend_minor"], currency=row["currency"], fee_minor=row["fee_minor"],
                            updated_at=row["updated_at"]) for row in rows]

    # -- billing pauses --------------------------------------------------------------------------------------

    async def add_billing_pause(self, workspace_id: int, ad_account_id: str, object_ids: list[str], reason: str) -> BillingPause:
        """Record exactly which objects were paused because the account's billing failed."""
        cursor = await self._write(
            "INSERT INTO billing_pauses (workspace_id, ad_account_id, object_ids_json, reason, created_at) VALUES (?, ?, ?, ?, ?)",
            (workspace_id, normalize_ad_account_id(ad_account_id), json.dumps([str(i) for i in object_ids]),
             _one_line(reason or "billing failed")[:MAX_ERROR_CHARS], _iso(self._now())),
            workspace_id,
        )
        row = await self._fetchone("SELECT * FROM billing_pauses WHERE id = ?", (int(cursor.lastrowid),))
        return _billing_pause_from_row(row)

    async def open_billing_pauses(self, workspace_id: int, ad_account_id: str | None = None) -> list[BillingPause]:
        """The billing pauses not resumed yet, oldest first (optionally one account's)."""
        where, params = "workspace_id = ? AND resumed_at IS NULL", [workspace_id]
        if ad_account_id is not None:
            where += " AND ad_account_id = ?"
            params.append(normalize_ad_account_id(ad_account_id))
        rows = await self._fetchall(f"SELECT * FROM billing_pauses WHERE {where} ORDER BY id", tuple(params))
        return [_billing_pause_from_row(row) for row in rows]

    async def mark_billing_resumed(self, workspace_id: int, pause_id: int) -> bool:
        """Mark a billing pause resumed; False when it is not open in this workspace."""
        cursor = await self._db.execute(
            "UPDATE billing_pauses SET resumed_at = ? WHERE workspace_id = ? AND id = ? AND resumed_at IS NULL",
            (_iso(self._now()), workspace_id, int(pause_id)),
        )
        return cursor.rowcount == 1

    # -- A/B experiments -------------------------------------------------------------------------------------

    async def add_experiment(
        self,
        workspace_id: int,
        *,
        key: str,
        name: str,
        plan: dict[str, Any],
        ad_account_id: str,
        currency: str,
        variants: list[dict[str, Any]],
        started_at: datetime | str,
        ends_at: datetime | str,
        status: str = "running",
        study_id: str | None = None,
        winner: str | None = None,
        outcome: dict[str, Any] | None = None,
        last_scaled_at: datetime | str | None = None,
    ) -> Experiment:
        """Save a new experiment; its key (the plan's hash) and its name are each unique in the workspace."""
        key = str(key or "").strip()
        if not key or len(key) > 200:
            raise InvalidArgument("Experiment key must be 1-200 characters. Fix: pass the plan's hash.")
        name = _one_line(name or "")
        if not name or len(name) > 200:
            raise InvalidArgument("Experiment name must be 1-200 characters. Fix: pass a short name such as 'Headline test'.")
        if not isinstance(plan, dict):
            raise InvalidArgument("Experiment plan must be an object. Fix: pass the plan as a dict.")
        started, ends = _check_time(started_at, "started_at"), _check_time(ends_at, "ends_at")
        if ends <= started:
            raise InvalidArgument(f"Experiment ends_at {ends} is not after started_at {started}. Fix: pass a later ends_at.")
        existing = await self._experiment_conflict(workspace_id, key, name)
        if existing is not None:
            raise existing
        now = _iso(self._now())
        try:
            cursor = await self._write(
                "INSERT INTO experiments (workspace_id, key, name, plan_json, status, ad_account_id, currency, variants_json, "
                "study_id, winner, outcome_json, started_at, ends_at, last_scaled_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (workspace_id, key, name, _to_json(drop_secret_keys(plan), "Experiment plan"), _check_experiment_status(status),
                 normalize_ad_account_id(ad_account_id), _check_currency(currency), _variants_json(variants),
                 _optional_text(study_id, "study_id"), _optional_text(winner, "winner"),
                 _to_json(drop_secret_keys(outcome or {}), "Experiment outcome"), started, ends,
                 _check_time(last_scaled_at, "last_scaled_at") if last_scaled_at is not None else None, now, now),
                workspace_id,
            )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):  # another writer took the key or name between the check and the insert
                raise (await self._experiment_conflict(workspace_id, key, name)
                       or InvalidArgument(f"Experiment {name!r} already exists. Fix: pick another name.")) from None
            raise InvalidArgument(f"Experiment refused by the database ({exc}). Fix: check status and variants.") from None
        experiment = await self.get_experiment(workspace_id, int(cursor.lastrowid))
        assert experiment is not None
        return experiment

    async def _experiment_conflict(self, workspace_id: int, key: str, name: str) -> InvalidArgument | None:
        """The refusal for a key or name already used in the workspace, naming the experiment that has it."""
        same_key = await self.find_experiment(workspace_id, key)
        if same_key is not None:
            return InvalidArgument(
                f"Experiment {same_key.id} ({same_key.name!r}, {same_key.status}) was already started from this plan. "
                f"Fix: check experiment {same_key.id} instead, or change the plan to start a new one."
            )
        row = await self._fetchone("SELECT id, status FROM experiments WHERE workspace_id = ? AND name = ?", (workspace_id, name))
        if row is not None:
            return InvalidArgument(
                f"An experiment named {name!r} already exists (experiment {row['id']}, {row['status']}). "
                f"Fix: pick another name, or check experiment {row['id']}."
            )
        return None

    async def find_experiment(self, workspace_id: int, key: str) -> Experiment | None:
        """The workspace's experiment started from the plan with this key, or None."""
        row = await self._fetchone("SELECT * FROM experiments WHERE workspace_id = ? AND key = ?", (workspace_id, str(key)))
        return _experiment_from_row(row) if row else None

    async def get_experiment(self, workspace_id: int, experiment_id: int) -> Experiment | None:
        """One experiment of the workspace, or None (another workspace's experiment is None too)."""
        row = await self._fetchone("SELECT * FROM experiments WHERE workspace_id = ? AND id = ?",
                                   (workspace_id, int(experiment_id)))
        return _experiment_from_row(row) if row else None

    async def list_experiments(self, workspace_id: int, status: str | None = None) -> list[Experiment]:
        """The workspace's experiments, newest first (only those with `status` when given)."""
        where, params = "workspace_id = ?", [workspace_id]
        if status is not None:
            where += " AND status = ?"
            params.append(_check_experiment_status(status))
        rows = await self._fetchall(f"SELECT * FROM experiments WHERE {where} ORDER BY id DESC", tuple(params))
        return [_experiment_from_row(row) for row in rows]

    async def update_experiment(self, workspace_id: int, experiment_id: int, **fields: Any) -> Experiment | None:
        """Change some of status, plan, variants, study_id, winner, outcome, last_scaled_at, started_at and ends_at
        (an experiment launched PAUSED starts its clock when it is switched on); None when the experiment is not in
        this workspace."""
        unknown = sorted(set(fields) - set(EXPERIMENT_UPDATABLE))
        if unknown:
            raise InvalidArgument(f"Experiment field {', '.join(unknown)} cannot be changed. "
                                  f"Fix: change only {', '.join(EXPERIMENT_UPDATABLE)}.")
        columns: dict[str, Any] = {}
        for field_name, value in fields.items():
            if field_name == "status":
                columns["status"] = _check_experiment_status(value)
            elif field_name == "variants":
                columns["variants_json"] = _variants_json(value)
            elif field_name == "outcome":
                columns["outcome_json"] = _to_json(drop_secret_keys(value or {}), "Experiment outcome")
            elif field_name == "plan":
                columns["plan_json"] = _to_json(drop_secret_keys(value or {}), "Experiment plan")
            elif field_name in ("study_id", "winner"):
                columns[field_name] = _optional_text(value, field_name)
            elif field_name == "last_scaled_at":
                columns[field_name] = _check_time(value, field_name) if value is not None else None
            else:  # started_at, ends_at
                columns[field_name] = _check_time(value, field_name)
        current = await self.get_experiment(workspace_id, experiment_id)
        if current is None:
            return None
        started, ends = columns.get("started_at", current.started_at), columns.get("ends_at", current.ends_at)
        if ends <= started:
            raise InvalidArgument(f"Experiment ends_at {ends} is not after started_at {started}. Fix: pass a later ends_at.")
        columns["updated_at"] = _iso(self._now())
        assignments = ", ".join(f"{column} = ?" for column in columns)
        await self._db.execute(f"UPDATE experiments SET {assignments} WHERE workspace_id = ? AND id = ?",
                               (*columns.values(), workspace_id, current.id))
        return await self.get_experiment(workspace_id, current.id)

    async def add_experiment_event(
        self, workspace_id: int, experiment_id: int, action: str, detail: dict[str, Any] | None = None, *,
        at: datetime | str,
    ) -> ExperimentEntry:
        """Record one thing an experiment did at `at` (launched, variant_stopped, winner, scaled, ...)."""
        action = _one_line(action or "")
        if not action or len(action) > 100:
            raise InvalidArgument("Experiment event action must be 1-100 characters. Fix: pass e.g. 'winner'.")
        experiment = await self.get_experiment(workspace_id, experiment_id)
        if experiment is None:
            raise InvalidArgument(f"Experiment {experiment_id} is not in this workspace. Fix: pass one of its experiment ids.")
        cursor = await self._write(
            "INSERT INTO experiment_events (workspace_id, experiment_id, at, action, detail_json) VALUES (?, ?, ?, ?, ?)",
            (workspace_id, experiment.id, _check_time(at, "at"), action,
             _to_json(drop_secret_keys(detail or {}), "Experiment event detail")),
            workspace_id,
        )
        row = await self._fetchone("SELECT * FROM experiment_events WHERE id = ?", (int(cursor.lastrowid),))
        return _experiment_entry_from_row(row)

    async def list_experiment_events(self, workspace_id: int, experiment_id: int) -> list[ExperimentEntry]:
        """One experiment's events, oldest first (none for another workspace's experiment)."""
        rows = await self._fetchall(
            "SELECT * FROM experiment_events WHERE workspace_id = ? AND experiment_id = ? ORDER BY id",
            (workspace_id, int(experiment_id)),
        )
        return [_experiment_entry_from_row(row) for row in rows]

    def _args_json(self, stored: str) -> str:
        """A confirmation's args as JSON text: encrypted since schema 10, plain JSON in rows written before."""
        return stored if stored.lstrip().startswith("{") else self._decrypt(stored)

    def _encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "The saved token cannot be decrypted with the current secret key. Fix: set ADMONSTER_SECRET_KEY "
                f"(or restore {KEY_FILENAME} in ADMONSTER_HOME) to the key used when it was saved, "
                "or run /connect to save a new token."
            ) from None


def guardrails_key(ad_account_id: str | int) -> str:
    """The setting key holding one ad account's guardrails, e.g. 'guardrails:act_123'."""
    return f"{GUARDRAILS_KEY}:{normalize_ad_account_id(ad_account_id)}"


def validate_guardrails(values: dict[str, Any]) -> dict[str, Any]:
    """Check guardrail names and values: money in minor units (int >= 0 or None), a known confirm_policy."""
    if not isinstance(values, dict):
        raise InvalidArgument("Guardrails must be an object. Fix: pass e.g. {\"max_daily_budget\": 10000}.")
    unknown = sorted(set(values) - set(DEFAULT_GUARDRAILS))
    if unknown:
        raise InvalidArgument(
            f"Unknown guardrail {', '.join(unknown)}. Fix: use {', '.join(DEFAULT_GUARDRAILS)}."
        )
    for name, value in values.items():
        _check_guardrail_value(name, value)
    return dict(values)


# ---------------------------------------------------------------------------------------------------------------
# Chat threads (LLM conversation history)
# ---------------------------------------------------------------------------------------------------------------

CHAT_ROLES = ("system", "user", "assistant", "tool")
MAX_THREAD_ID_CHARS = 200


def _check_thread_id(thread_id: str) -> str:
    text = str(thread_id or "").strip()
    if not text or len(text) > MAX_THREAD_ID_CHARS:
        raise InvalidArgument(f"Thread id {thread_id!r} must be 1 to {MAX_THREAD_ID_CHARS} characters. Fix: e.g. thread_id=\"terminal\".")
    return text


def _chat_row(message: dict[str, Any]) -> tuple[str, str | None, str | None, str | None, str | None]:
    role = message.get("role")
    if role not in CHAT_ROLES:
        raise InvalidArgument(f"Chat message role {role!r} is not known. Fix: use {', '.join(CHAT_ROLES)}.")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        content = json.dumps(content, default=str)
    tool_calls = message.get("tool_calls")
    return (role, content, json.dumps(tool_calls) if tool_calls else None, message.get("tool_call_id"), message.get("name"))


def _chat_message_from_row(row: aiosqlite.Row) -> dict[str, Any]:
    message: dict[str, Any] = {"role": row["role"], "content": row["content"]}
    if row["tool_calls"]:
        message["tool_calls"] = json.loads(row["tool_calls"])
    if row["tool_call_id"]:
        message["tool_call_id"] = row["tool_call_id"]
    if row["name"]:
        message["name"] = row["name"]
    return message


def _check_guardrail_value(name: str, value: Any) -> None:
    if name == "confirm_policy":
        if value not in CONFIRM_POLICIES:
            raise InvalidArgument(f"confirm_policy {value!r} is not known. Fix: use {', '.join(CONFIRM_POLICIES)}.")
        return
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(
            f"{name} must be a whole number >= 0 (money in minor units of the account currency) or null. "
            f"Fix: e.g. {name}=10000 for $100.00."
        )


def _check_selection_kind(kind: str) -> None:
    if kind not in SELECTION_KINDS:
        raise InvalidArgument(f"Selection kind {kind!r} is not known. Fix: use {', '.join(SELECTION_KINDS)}.")


def _clean_confirmation_id(confirmation_id: str) -> str:
    return str(confirmation_id or "").strip().lower()


def _tags_json(tags: list[dict[str, Any]]) -> str:
    """An audit entry's lookups as stored: strings only, each once, in the order they came."""
    unique: dict[str, dict[str, str]] = {}
    for tag in tags:
        text = {k: str(v) for k, v in tag.items()}
        unique.setdefault(json.dumps(text, sort_keys=True), text)
    return _to_json(list(unique.values()), "Audit tags")


def _audit_from_row(row: aiosqlite.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        workspace_id=row["workspace_id"],
        created_at=row["created_at"],
        interface=row["interface"],
        op=row["op"],
        args=json.loads(row["args_json"]),
        summary=row["summary"],
        changes=json.loads(row["changes_json"]),
        object_ids=json.loads(row["object_ids_json"]),
        outcome=row["outcome"],
        error=row["error"],
        fbtrace_id=row["fbtrace_id"],
        undo_of=row["undo_of"],
        undone_by=row["undone_by"],
        tags=json.loads(row["tags_json"]),
        settled_at=row["settled_at"],
    )


def _lease_names(key: str, owner: str) -> tuple[str, str]:
    key, owner = str(key or "").strip(), str(owner or "").strip()
    if not key or len(key) > 200 or not owner or len(owner) > 200:
        raise InvalidArgument("Lease key and owner must be 1-200 characters. Fix: pass the launch key and a request id.")
    return key, owner


def _lease_length(seconds: float) -> timedelta:
    if not 0 < float(seconds) <= 86400:
        raise InvalidArgument(f"Lease length {seconds!r} is not 0-86400 seconds. Fix: pass e.g. 30.")
    return timedelta(seconds=float(seconds))


def _lease_time(moment: datetime) -> str:
    """Lease times to the millisecond, in one format, so SQL compares them as text."""
    return _as_utc(moment).isoformat(timespec="milliseconds")


def _lease_from_row(row: aiosqlite.Row) -> Lease:
    return Lease(workspace_id=row["workspace_id"], key=row["key"], owner=row["owner"], claimed_at=row["claimed_at"],
                 expires_at=row["expires_at"])


def _launch_from_row(row: aiosqlite.Row) -> Launch:
    return Launch(
        id=row["id"],
        workspace_id=row["workspace_id"],
        key=row["key"],
        request=json.loads(row["request_json"]),
        status=row["status"],
        steps=json.loads(row["steps_json"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _check_day(day: Any) -> str:
    text = day.isoformat() if hasattr(day, "isoformat") else str(day)
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise InvalidArgument(f"{day!r} is not a day. Fix: pass YYYY-MM-DD, e.g. 2026-03-01.") from None
    return text


def _alert_rule_from_row(row: aiosqlite.Row) -> AlertRule:
    return AlertRule(
        id=row["id"], workspace_id=row["workspace_id"], name=row["name"], object_id=row["object_id"], level=row["level"],
        ad_account_id=row["ad_account_id"], currency=row["currency"], metric=row["metric"], operator=row["operator"],
        threshold=row["threshold"], window=row["window"], action=row["action"], scale_pct=row["scale_pct"],
        max_budget=row["max_budget"], cooldown_hours=row["cooldown_hours"], enabled=bool(row["enabled"]),
        last_fired_at=_parse_time(row["last_fired_at"]), created_at=row["created_at"],
    )


def _alert_event_from_row(row: aiosqlite.Row) -> AlertEvent:
    return AlertEvent(
        id=row["id"], workspace_id=row["workspace_id"], rule_id=row["rule_id"], rule_name=row["rule_name"],
        fired_at=datetime.fromisoformat(row["fired_at"]), object_id=row["object_id"], value=row["value"],
        action=row["action"], outcome=row["outcome"], detail=json.loads(row["detail_json"]),
    )


def _billing_pause_from_row(row: aiosqlite.Row) -> BillingPause:
    return BillingPause(
        id=row["id"], workspace_id=row["workspace_id"], ad_account_id=row["ad_account_id"],
        object_ids=json.loads(row["object_ids_json"]), reason=row["reason"], created_at=row["created_at"],
        resumed_at=row["resumed_at"],
    )


def _experiment_from_row(row: aiosqlite.Row) -> Experiment:
    return Experiment(
        id=row["id"], workspace_id=row["workspace_id"], key=row["key"], name=row["name"], plan=json.loads(row["plan_json"]),
        status=row["status"], ad_account_id=row["ad_account_id"], currency=row["currency"],
        variants=json.loads(row["variants_json"]), study_id=row["study_id"], winner=row["winner"],
        outcome=json.loads(row["outcome_json"]), started_at=row["started_at"], ends_at=row["ends_at"],
        last_scaled_at=row["last_scaled_at"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _experiment_entry_from_row(row: aiosqlite.Row) -> ExperimentEntry:
    return ExperimentEntry(
        id=row["id"], workspace_id=row["workspace_id"], experiment_id=row["experiment_id"], at=row["at"],
        action=row["action"], detail=json.loads(row["detail_json"]),
    )


def _check_experiment_status(status: Any) -> str:
    if status not in EXPERIMENT_STATUSES:
        raise InvalidArgument(f"Experiment status {status!r} is not known. Fix: use one of {', '.join(EXPERIMENT_STATUSES)}.")
    return str(status)


def _variants_json(variants: Any) -> str:
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise InvalidArgument("Experiment variants must be a list of objects. Fix: pass one dict per variant.")
    for variant in variants:
        state = variant.get("state", "running")
        if state not in VARIANT_STATES:
            raise InvalidArgument(f"Variant {variant.get('name')!r} has state {state!r}. "
                                  f"Fix: use one of {', '.join(VARIANT_STATES)}.")
    return _to_json(drop_secret_keys(variants), "Experiment variants")


def _check_currency(currency: Any) -> str:
    text = str(currency or "").strip().upper()
    if len(text) != 3 or not text.isalpha():
        raise InvalidArgument(f"Currency {currency!r} is not an ISO 4217 code. Fix: pass the ad account's currency, e.g. USD.")
    return text


def _optional_text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text or len(text) > 200:
        raise InvalidArgument(f"{what} must be 1-200 characters or null. Fix: pass the id or name, or leave it out.")
    return text


def _check_time(value: datetime | str | None, what: str) -> str:
    """A datetime or ISO-8601 string as the store's ISO UTC text (a time without a zone is UTC)."""
    if isinstance(value, datetime):
        return _iso(value)
    try:
        return _iso(datetime.fromisoformat(str(value)))
    except (TypeError, ValueError):
        raise InvalidArgument(f"{what} {value!r} is not a time. Fix: pass a datetime or ISO-8601 text, "
                              "e.g. 2026-03-01T12:00:00+00:00.") from None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _notification_from_row(row: aiosqlite.Row) -> Notification:
    return Notification(
        id=row["id"],
        workspace_id=row["workspace_id"],
        channel=row["channel"],
        subject=row["subject"],
        text=row["text"],
        target=row["target"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=datetime.fromisoformat(row["created_at"]),
        next_attempt_at=_parse_time(row["next_attempt_at"]) if row["status"] == "pending" else None,
        sent_at=_parse_time(row["sent_at"]),
        level=row["level"],
        dedupe_key=row["dedupe_key"],
    )


def _job_run_from_row(row: aiosqlite.Row) -> JobRun:
    return JobRun(
        name=row["name"],
        last_run_at=datetime.fromisoformat(row["last_run_at"]),
        ok=bool(row["ok"]),
        summary=row["summary"],
    )


def _confirmation_from_row(row: aiosqlite.Row, now_iso: str, args_json: Callable[[str], str]) -> Confirmation:
    if row["used_at"]:
        status = "used"
    elif row["expires_at"] <= now_iso:
        status = "expired"
    else:
        status = "pending"
    return Confirmation(
        id=row["id"],
        workspace_id=row["workspace_id"],
        op=row["op"],
        args=json.loads(args_json(row["args_json"])),
        preview=row["preview"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        status=status,
        changes=json.loads(row["changes_json"]),
    )


async def open_store(settings: Any, *, clock: Clock | None = None) -> Store:
    """Open the store described by a Settings object (its `home` and `secret_key`)."""
    return await Store.open(Path(settings.home) / DB_FILENAME, secret_key=settings.secret_key, clock=clock)

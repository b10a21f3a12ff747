"""Ad Monster state: workspaces, settings, selections, audit log, confirmations and encrypted tokens, on SQLAlchemy 2 Core.

Two engines: SQLite through aiosqlite (the embedded default, one file in ADMONSTER_HOME) and PostgreSQL through asyncpg
(``ADMONSTER_DATABASE_URL=postgresql+asyncpg://…``). Each stored concept is declared once: a record the ops use in
fb_utils (the store's record subclasses it, adding the workspace and its own times), a record only the bot side uses
here, as a frozen dataclass whose fields carry their column facts (``column(...)``). ``record_table`` derives the
SQLAlchemy ``Table`` from the record and ``from_row`` maps a row back, with JSON, UTC times and flags converted by the
column types (``JsonText``, ``UtcText``, ``Flag``) in one place. The schema is migrated by Alembic (admonster_migrations/) when the store opens; a SQLite home
made before Alembic is first brought to the last frozen script (admonster_store_legacy) and stamped.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import hmac
import json
import os
import secrets
import socket
import sqlite3
import types
import typing
from collections.abc import AsyncIterator, Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    case,
    delete,
    event,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy import Float as SqlFloat
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.sqlite import REAL
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, InterfaceError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import EMPTY_DICT, await_only, greenlet_spawn

from admonster_store_legacy import LEGACY_VERSION, LegacyMigrationError, legacy_schema_version, upgrade_legacy
from fb_utils import (
    AlertRuleRecord,
    BillingPauseRecord,
    ExperimentEvent,
    ExperimentRecord,
    LaunchRecord,
    LeaseHolder,
    SingleFlightPolicy,
    SnapshotRecord,
    SpendRecord,
    ValidationError,
)

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
EXPERIMENT_UPDATABLE = (
    "status",
    "plan",
    "variants",
    "study_id",
    "winner",
    "outcome",
    "last_scaled_at",
    "started_at",
    "ends_at",
)
MAX_ERROR_CHARS = 500
DELIVERY_HOLD = timedelta(
    minutes=5
)  # a claimed message is not due for others while it is sent (far beyond a send's timeout)
JOB_SLOT_MEMORY = timedelta(days=7)  # how long a claimed job slot is remembered (far longer than any job interval)

API_KEY_ID_LENGTH = 12
MIGRATIONS_DIR = Path(__file__).resolve().parent / "admonster_migrations"  # Alembic's script folder (env.py, versions/)
BASELINE_REVISION = "0011"  # the first Alembic revision: the schema of the last frozen script (version 11)
MIGRATION_LOCK_ID = 0x41444D4F  # PostgreSQL advisory lock held while one opener migrates ("ADMO")

Clock = Callable[[], datetime]


class StoreError(Exception):
    """A state-layer failure: ``message`` says what happened and ``fix`` how to fix it. ``str()`` is the one line
    "<message>. Fix: <fix>." (what a person or a log sees); nobody parses it back: read ``message`` and ``fix``."""

    def __init__(self, message: str, *, fix: str, blame_field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.blame_field = blame_field

    def __str__(self) -> str:
        return f"{self.message.rstrip('. ')}. Fix: {self.fix.rstrip('.')}."


class InvalidArgument(StoreError, ValidationError, ValueError):
    """A caller passed a value the store does not accept: the product's own ValidationError (``fix``, ``blame_field``),
    so an op's capability (WorkspaceState) raises it straight through the gate, which shows its one line."""


class SecretKeyError(StoreError):
    """The secret key is malformed or does not decrypt the saved tokens."""


def database_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database server cannot be reached (down, restarting, the network gone), not that a
    statement was wrong or that something else failed: the connection was refused, dropped, invalidated or not had in
    time from the pool. A file, disk or permission error elsewhere in a request is not counted."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (OperationalError, InterfaceError, PoolTimeout, ConnectionError, socket.gaierror)):
        return True
    return isinstance(error, OSError) and error.errno in UNREACHABLE_ERRNOS


UNREACHABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT})


# ---------------------------------------------------------------------------------------------------------------
# Records declared once: a dataclass's fields carry their column facts; the Table and the row mapping come from it.
# ---------------------------------------------------------------------------------------------------------------

COLUMN = "admonster_column"
METADATA = MetaData()


@dataclass(frozen=True)
class ColumnInfo:
    """How one record field is stored. The SQL type and nullability come from the annotation unless given here."""

    name: str | None = None  # the column's name when it is not the field's (JSON columns end in _json)
    primary_key: bool = False
    references: str | None = None  # "table.column"
    ondelete: str | None = None
    server_default: str | None = None
    nullable: bool | None = None
    sql_type: Any = None
    stored: bool = True  # False: computed when read (a confirmation's status), no column
    autoincrement: bool = False  # an INTEGER PRIMARY KEY AUTOINCREMENT id (never reused on SQLite)


def column(default: Any = MISSING, *, default_factory: Any = MISSING, repr: bool = True, **info: Any) -> Any:  # noqa: A002
    """A record field with its column facts (see ColumnInfo)."""
    return field(default=default, default_factory=default_factory, repr=repr, metadata={COLUMN: ColumnInfo(**info)})


def workspace_ref(*, primary_key: bool = False) -> Any:
    """The workspace a row belongs to; deleting the workspace deletes the row."""
    return column(references="workspaces.id", ondelete="CASCADE", primary_key=primary_key)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class JsonText(TypeDecorator[Any]):
    """A JSON value kept as text (the same on both engines); refused with one line when it is not JSON."""

    impl = Text
    cache_ok = True

    def __init__(self, what: str = "Value", sort_keys: bool = True):
        super().__init__()
        self.what, self.sort_keys = what, sort_keys

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        try:
            return json.dumps(value, ensure_ascii=False, sort_keys=self.sort_keys)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"{self.what} is not JSON-serializable ({exc})", fix="pass numbers, strings, lists, dicts."
            ) from None

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


class UtcText(TypeDecorator[datetime]):
    """A UTC time kept as ISO-8601 text (seconds; text order is time order); read back as an aware datetime."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: datetime | str | None, dialect: Any) -> str | None:
        return _iso(value) if isinstance(value, datetime) else value

    def process_result_value(self, value: str | None, dialect: Any) -> datetime | None:
        return datetime.fromisoformat(value) if value else None


class Flag(TypeDecorator[bool]):
    """A yes/no kept as INTEGER 0/1 on both engines (as the SQLite schema always had)."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else (1 if value else 0)

    def process_result_value(self, value: int | None, dialect: Any) -> bool | None:
        return None if value is None else bool(value)


WHOLE_NUMBER = BigInteger().with_variant(
    Integer(), "sqlite"
)  # SQLite's INTEGER is 64-bit; INTEGER PRIMARY KEY is the rowid
DECIMAL_NUMBER = SqlFloat().with_variant(REAL(), "sqlite")  # double precision on both (SQLite's REAL is 8 bytes)


def _sql_type(annotation: Any, what: str, given: Any = None) -> tuple[Any, bool]:
    """(SQL type, nullable) for a record field's annotation; `given` overrides the type."""
    nullable = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        annotation = args[0]
    if given is not None:
        return given, nullable
    base = typing.get_origin(annotation) or annotation
    if base is bool:
        return Flag(), nullable
    if base is int:
        return WHOLE_NUMBER, nullable
    if base is float:
        return DECIMAL_NUMBER, nullable
    if base is str:
        return Text(), nullable
    if base is datetime:
        return UtcText(), nullable
    if base in (dict, list):
        return JsonText(what), nullable
    raise TypeError(f"No column type for {annotation!r} ({what})")


def _column_info(spec: Any, annotation: Any, stored_as: dict[str, dict[str, Any]]) -> ColumnInfo:
    """How a field is stored: as its `column()` says, or for a field declared in fb_utils (no column facts there, as
    fb_utils knows no SQL) by these rules, with `stored_as` adding what they cannot know."""
    if COLUMN in spec.metadata:
        return typing.cast("ColumnInfo", spec.metadata[COLUMN])
    base = typing.get_origin(annotation) or annotation
    facts: dict[str, Any] = {}
    if spec.name == "id":
        facts.update(primary_key=True, autoincrement=True)
    if base in (dict, list):
        facts["name"] = f"{spec.name}_json"
    if spec.default_factory in (dict, list):
        facts["server_default"] = "{}" if spec.default_factory is dict else "[]"
    elif isinstance(spec.default, bool | int):
        facts["server_default"] = sql_text(str(int(spec.default)))
    return ColumnInfo(**{**facts, **stored_as.get(spec.name, {})})


def record_table(
    name: str, record: type, *extra: Any, label: str, stored_as: dict[str, dict[str, Any]] | None = None
) -> Table:
    """The table of `record`: one column per stored field, then `extra` columns, constraints and indexes."""
    hints = typing.get_type_hints(record)
    columns: list[Column[Any]] = []
    autoincrement = False
    for spec in fields(record):
        info = _column_info(spec, hints[spec.name], stored_as or {})
        if not info.stored:
            continue
        sql_type, nullable = _sql_type(hints[spec.name], f"{label} {spec.name.replace('_', ' ')}", info.sql_type)
        references = [ForeignKey(info.references, ondelete=info.ondelete)] if info.references else []
        autoincrement = autoincrement or info.autoincrement
        columns.append(
            Column(
                info.name or spec.name,
                sql_type,
                *references,
                key=spec.name,
                primary_key=info.primary_key,
                nullable=(nullable and not info.primary_key) if info.nullable is None else info.nullable,
                server_default=info.server_default,
                autoincrement=True if info.autoincrement else "auto",
            )
        )
    table = Table(name, METADATA, *columns, *extra, sqlite_autoincrement=autoincrement)
    table.info["record"] = record
    return table


def from_row(table: Table, row: Any, **computed: Any) -> Any:
    """The table's record from a result row (a RowMapping or Row); `computed` gives fields with no column, or
    replaces a stored value (a decrypted token)."""
    mapping = getattr(row, "_mapping", row)
    record = table.info["record"]
    values = {
        spec.name: mapping[table.c[spec.name]]
        for spec in fields(record)
        if spec.name in table.c and spec.name not in computed
    }
    return record(**values, **computed)


def _in(column_name: str, allowed: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in allowed)
    return CheckConstraint(f"{column_name} IN ({listed})")


# -- the records ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """An isolation unit: one user or team."""

    id: int = column(primary_key=True, autoincrement=True)
    name: str = column()
    created_at: str = column()


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown of an API key: its public id (the prefix that finds it) and times; never the secret."""

    key_id: str = column(nullable=True)  # NULL for keys made before key ids (schema 3)
    created_at: str = column()
    revoked_at: str | None = None


@dataclass(frozen=True)
class Setting:
    """One JSON value of a workspace, by key (guardrails, notify_email, ...)."""

    workspace_id: int = workspace_ref(primary_key=True)
    key: str = column(primary_key=True)
    value: Any = column(name="value_json", sql_type=JsonText("Setting value"))
    updated_at: str = column()


@dataclass(frozen=True)
class Selection:
    """The ad account, page or Instagram account a workspace works on."""

    workspace_id: int = workspace_ref(primary_key=True)
    kind: str = column(primary_key=True)
    value: str = column()
    updated_at: str = column()


@dataclass(frozen=True)
class AuditEntry:
    """One recorded write: who, what, the state changes and the outcome."""

    id: int = column(primary_key=True, autoincrement=True)
    workspace_id: int = workspace_ref()
    created_at: str = column()
    interface: str = column()
    op: str = column()
    args: dict[str, Any] = column(name="args_json")
    summary: str = column()
    changes: list[dict[str, Any]] = column(name="changes_json")
    object_ids: list[str] = column(name="object_ids_json")
    outcome: str = column()
    error: str | None = column()
    fbtrace_id: str | None = column()
    undo_of: int | None = column(references="audit_log.id")
    undone_by: int | None = column(references="audit_log.id")
    # {"tag", "path", "name"}: how reconcile finds its creates
    tags: list[dict[str, str]] = column(default_factory=list, name="tags_json", server_default="[]")
    settled_at: str | None = None  # None while pending or unknown


@dataclass(frozen=True)
class Confirmation:
    """A spend op waiting for the caller to confirm it by id."""

    id: str = column(primary_key=True)
    workspace_id: int = workspace_ref()
    op: str = column()
    # Encrypted JSON text (plain JSON in rows written before schema 10): the store decrypts it when read.
    args: dict[str, Any] = column(name="args_json", sql_type=Text())
    preview: str = column()
    created_at: str = column()
    expires_at: str = column()
    used_at: str | None = column()
    status: str = column(stored=False)  # "pending" | "used" | "expired"
    changes: list[dict[str, Any]] = column(default_factory=list, name="changes_json", server_default="[]")


@dataclass(frozen=True)
class StoredToken:
    """A decrypted Facebook token with what is known about it; secrets stay out of repr."""

    workspace_id: int = workspace_ref(primary_key=True)
    kind: str = column()
    token: str = column(repr=False, name="token_encrypted")  # Fernet ciphertext at rest
    app_id: str | None = None
    app_secret: str | None = column(None, repr=False, name="app_secret_encrypted")
    user_id: str | None = None
    expires_at: datetime | None = None
    scopes: list[str] | None = column(None, name="scopes_json")
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
class OAuthState:
    """A sign-in link's single-use `state` nonce, bound to a workspace and to whoever asked for it."""

    nonce: str = column(primary_key=True)
    workspace_id: int = workspace_ref()
    created_at: str = column()
    expires_at: str = column()
    used_at: str | None = None
    binding_hash: str | None = None  # SHA-256 of the browser cookie's nonce or the terminal listener's secret
    allow_switch: bool = column(False, server_default=sql_text("0"))


@dataclass(frozen=True)
class TokenWarning:
    """A token warning already sent (its key), so it is sent once."""

    workspace_id: int = workspace_ref(primary_key=True)
    key: str = column(primary_key=True)
    created_at: str = column()


@dataclass(frozen=True)
class Notification:
    """One message in the outbox: the chat inbox, an email or a webhook call, with its delivery record."""

    id: int = column(primary_key=True, autoincrement=True)
    workspace_id: int = workspace_ref()
    channel: str = column()  # "inbox" | "email" | "webhook"
    subject: str = column()
    text: str = column()
    target: str | None = column()  # email address(es) or webhook URL; None for the inbox
    status: str = column(server_default="pending")  # "pending" | "sent" | "failed" | "read" (inbox, once shown)
    attempts: int = column(server_default=sql_text("0"))
    last_error: str | None = column()
    created_at: datetime = column()
    next_attempt_at: datetime | None = column(nullable=False)  # read as None once the message is not pending
    sent_at: datetime | None = column()
    level: str = column("info", server_default="info")
    dedupe_key: str | None = None

    def __post_init__(self) -> None:
        if self.status != "pending":  # the next attempt means nothing once delivered, failed or read
            object.__setattr__(self, "next_attempt_at", None)


@dataclass(frozen=True)
class JobRun:
    """The last run of one scheduled job."""

    name: str = column(primary_key=True)
    last_run_at: datetime = column()
    ok: bool = column()
    summary: str = column()


@dataclass(frozen=True)
class JobSlot:
    """One run slot of a scheduled job (its due time, or its interval's number), claimed by the process that runs it:
    replicas sharing a database each see the slot come due, and only the one whose claim lands runs the job."""

    name: str = column(primary_key=True)
    slot: str = column(primary_key=True)
    owner: str = column()
    claimed_at: datetime = column()


@dataclass(frozen=True)
class AccountUsageShare:
    """An ad account's worst Graph API usage as the last process to pass the pacing threshold (or be throttled) saw
    it, so replicas on one database pace together. Keyed by the account, not the workspace: Facebook's limits are per
    ad account and app, whichever workspace calls. Times are wall-clock UTC."""

    ad_account_id: str = column(primary_key=True)
    usage_pct: float = column()
    measure: str = column()  # what the usage measures ("ad-account usage", "ads_management usage", ...)
    window_seconds: float = column()  # how long the usage takes to decay
    seen_at: datetime = column()  # when Facebook answered it
    block_until: datetime | None = column()  # a throttle: no call to the account before then


@dataclass(frozen=True)
class OfferedFile:
    """A file an op wrote, offered to its workspace under an unguessable id (`/v1/files/<id>/<name>`, MCP's
    `admonster://files/<id>/<name>`) until `expires_at`. In the database so that any replica serves a link another one
    handed out; the file itself stays on disk in the workspace's folder under the home, which replicas share (a shared
    volume). `size` and `mtime_ns` tell a file changed since it was offered (then it is not served)."""

    file_id: str = column(primary_key=True)
    workspace_id: int = workspace_ref()
    relative_path: str = column()  # inside the workspace's files folder (replicas may mount the home elsewhere)
    name: str = column()
    content_type: str = column()
    disposition: str = column()
    size: int = column()
    mtime_ns: int = column()
    offered_at: datetime = column()
    expires_at: datetime = column()


@dataclass(frozen=True)
class ChatMessage:
    """One OpenAI-style message of a workspace's chat thread, in order (seq)."""

    workspace_id: int = workspace_ref(primary_key=True)
    thread_id: str = column(primary_key=True)
    seq: int = column(primary_key=True, autoincrement=False)
    role: str = column()
    content: str | None = column()
    tool_calls: list[dict[str, Any]] | None = column(sql_type=JsonText("Chat tool calls", sort_keys=False))
    tool_call_id: str | None = column()
    name: str | None = column()
    created_at: str = column()


# The records ops read and write are declared once, in fb_utils; the store's record of each adds only what storage
# needs: the workspace the row belongs to and the times the store keeps. Their columns follow _column_info's rules
# (an `id` is the table's key; a dict or list is JSON text in `<name>_json`; a dict, list, number or flag default is
# also the column's server default); what those rules cannot know is given to record_table as `stored_as`.


@dataclass(kw_only=True)
class Launch(LaunchRecord):
    """A launch as stored: fb_utils.LaunchRecord in its workspace."""

    workspace_id: int = workspace_ref()


@dataclass(frozen=True, kw_only=True)
class Lease(LeaseHolder):
    """Who may run the launch or experiment named `key` now: fb_utils.LeaseHolder, keyed in its workspace."""

    workspace_id: int = workspace_ref(primary_key=True)
    key: str = column(primary_key=True)


@dataclass(kw_only=True)
class AlertRule(AlertRuleRecord):
    """An alert rule as stored: fb_utils.AlertRuleRecord in its workspace, with when it was made."""

    workspace_id: int = workspace_ref()
    created_at: str = column()


@dataclass(frozen=True)
class AlertEvent:
    """One time a rule fired: the value seen, the action taken and how it went."""

    id: int = column(primary_key=True, autoincrement=True)
    workspace_id: int = workspace_ref()
    rule_id: int | None = column(references="alert_rules.id", ondelete="SET NULL")
    rule_name: str = column()
    fired_at: datetime = column()
    object_id: str = column()
    value: float | None = column()
    action: str = column()
    outcome: str = column()
    detail: dict[str, Any] = column(name="detail_json", server_default="{}")


@dataclass(kw_only=True)
class Snapshot(SnapshotRecord):
    """One object's day as stored: fb_utils.SnapshotRecord, one per workspace, object and day."""

    workspace_id: int = workspace_ref(primary_key=True)
    updated_at: str = column()


@dataclass(kw_only=True)
class LedgerEntry(SpendRecord):
    """One ad account's day of spend as stored: fb_utils.SpendRecord, one per workspace, account and day."""

    workspace_id: int = workspace_ref(primary_key=True)
    updated_at: str = column()


@dataclass(kw_only=True)
class BillingPause(BillingPauseRecord):
    """A billing pause as stored: fb_utils.BillingPauseRecord in its workspace."""

    workspace_id: int = workspace_ref()


@dataclass(kw_only=True)
class Experiment(ExperimentRecord):
    """An A/B test as stored: fb_utils.ExperimentRecord in its workspace."""

    workspace_id: int = workspace_ref()


@dataclass(kw_only=True)
class ExperimentEntry(ExperimentEvent):
    """One thing an experiment did, as stored: fb_utils.ExperimentEvent in its workspace."""

    workspace_id: int = workspace_ref()


# -- the tables -------------------------------------------------------------------------------------------------

workspaces = record_table("workspaces", Workspace, UniqueConstraint("name"), label="Workspace")
api_keys = record_table(
    "api_keys",
    ApiKeyInfo,
    Column("key_hash", Text, primary_key=True),  # SHA-256 of the key: the only form kept
    Column("workspace_id", WHOLE_NUMBER, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Index("api_keys_workspace", "workspace_id"),
    Index("api_keys_key_id", "key_id"),
    label="API key",
)
settings = record_table("settings", Setting, label="Setting")
selections = record_table("selections", Selection, label="Selection")
audit_log = record_table(
    "audit_log",
    AuditEntry,
    _in("outcome", AUDIT_OUTCOMES),
    Index("audit_log_workspace", "workspace_id", "id"),
    Index(
        "audit_log_unsettled",
        "workspace_id",
        "outcome",
        sqlite_where=sql_text("outcome IN ('pending', 'unknown')"),
        postgresql_where=sql_text("outcome IN ('pending', 'unknown')"),
    ),
    label="Audit",
)
confirmations = record_table(
    "confirmations", Confirmation, Index("confirmations_workspace", "workspace_id", "expires_at"), label="Confirmation"
)
tokens = record_table("tokens", StoredToken, label="Token")
oauth_states = record_table("oauth_states", OAuthState, Index("oauth_states_expiry", "expires_at"), label="OAuth state")
token_warnings = record_table("token_warnings", TokenWarning, label="Token warning")
notifications = record_table(
    "notifications",
    Notification,
    _in("channel", NOTIFICATION_CHANNELS),
    _in("status", NOTIFICATION_STATUSES),
    Index(
        "notifications_dedupe",
        "workspace_id",
        "channel",
        "dedupe_key",
        unique=True,
        sqlite_where=sql_text("dedupe_key IS NOT NULL"),
        postgresql_where=sql_text("dedupe_key IS NOT NULL"),
    ),
    Index("notifications_due", "status", "next_attempt_at"),
    Index("notifications_workspace", "workspace_id", "channel", "status", "id"),
    label="Notification",
)
job_runs = record_table("job_runs", JobRun, label="Job run")
job_slots = record_table("job_slots", JobSlot, label="Job slot")
account_usage = record_table("account_usage", AccountUsageShare, label="Account usage")
offered_files = record_table(
    "offered_files", OfferedFile, Index("offered_files_workspace", "workspace_id", "offered_at"), label="Offered file"
)
chat_messages = record_table(
    "chat_messages", ChatMessage, _in("role", ("system", "user", "assistant", "tool")), label="Chat message"
)
launches = record_table(
    "launches",
    Launch,
    _in("status", LAUNCH_STATUSES),
    UniqueConstraint("workspace_id", "key"),
    label="Launch",
    stored_as={"steps": {"sql_type": JsonText("Launch steps", sort_keys=False)}},  # in the order they ran
)
leases = record_table("leases", Lease, label="Lease")
alert_rules = record_table(
    "alert_rules",
    AlertRule,
    _in("level", ("account", "campaign", "adset", "ad")),
    _in("operator", (">", ">=", "<", "<=")),
    _in("action", ("notify", "pause", "scale")),
    UniqueConstraint("workspace_id", "name"),
    label="Alert rule",
)
alert_events = record_table(
    "alert_events", AlertEvent, Index("alert_events_workspace", "workspace_id", "id"), label="Alert event"
)
perf_snapshots = record_table(
    "perf_snapshots",
    Snapshot,
    Index("perf_snapshots_day", "workspace_id", "day"),
    label="Snapshot",
    stored_as={"object_id": {"primary_key": True}, "day": {"primary_key": True}},
)
spend_ledger = record_table(
    "spend_ledger",
    LedgerEntry,
    label="Ledger entry",
    stored_as={"ad_account_id": {"primary_key": True}, "day": {"primary_key": True}},
)
billing_pauses = record_table(
    "billing_pauses",
    BillingPause,
    Index("billing_pauses_open", "workspace_id", "ad_account_id", "resumed_at"),
    label="Billing pause",
)
experiments = record_table(
    "experiments",
    Experiment,
    _in("status", EXPERIMENT_STATUSES),
    UniqueConstraint("workspace_id", "key"),
    UniqueConstraint("workspace_id", "name"),
    Index("experiments_status", "workspace_id", "status", "id"),
    label="Experiment",
    stored_as={"variants": {"server_default": "[]"}},
)
experiment_events = record_table(
    "experiment_events",
    ExperimentEntry,
    Index("experiment_events_experiment", "workspace_id", "experiment_id", "id"),
    label="Experiment event",
    stored_as={"experiment_id": {"references": "experiments.id", "ondelete": "CASCADE"}},
)
# The releases before Alembic counted their scripts here; the store still writes the revision number it reached, so
# such a release refuses a home migrated past the schema it knows (instead of breaking it).
schema_version = Table(
    "schema_version",
    METADATA,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Text, nullable=False),
)
RECORD_TABLES = tuple(table for table in METADATA.sorted_tables if "record" in table.info)


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
        raise InvalidArgument(f"Ad account id {text!r} is not valid", fix="use a number or act_<number>.")
    return f"act_{digits}"


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"{what} is not JSON-serializable ({exc})", fix="pass numbers, strings, lists, dicts."
        ) from None


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
        raise InvalidArgument(
            f"Token expiry {expires_at!r} is not a time", fix="pass a datetime or epoch seconds."
        ) from None


def _parse_fernet_key(key: str | bytes, source: str) -> Fernet:
    raw = key.encode() if isinstance(key, str) else key
    try:
        return Fernet(raw.strip())
    except (ValueError, TypeError):
        raise SecretKeyError(
            f"{source} is not a valid Fernet key (32 url-safe base64-encoded bytes)",
            fix="generate one with "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())".',
        ) from None


def _secret_text(secret: Any) -> str:
    getter = getattr(secret, "get_secret_value", None)
    return typing.cast("str", getter() if callable(getter) else secret)


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
    if is_database_url(db_path):
        raise SecretKeyError(
            "A store on a database server needs the key that encrypts its tokens",
            fix="set ADMONSTER_SECRET_KEY (the same on every replica), or pass key_file.",
        )
    return load_or_create_key_file(Path(db_path).parent / KEY_FILENAME)


def is_database_url(path: str | Path) -> bool:
    """True for a database URL such as postgresql+asyncpg://host/db (a store on a server), False for a file path."""
    return "://" in str(path)


def safe_database_url(url: str) -> str:
    """The URL with its password masked: what may be shown or logged."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(a malformed database URL)"


def _server_url(url: str) -> str:
    """A PostgreSQL URL for the asyncpg driver; anything else is refused with one line."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            "ADMONSTER_DATABASE_URL is not a database URL",
            fix="use postgresql+asyncpg://user:password@host:5432/dbname.",
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(
            f"Database {parsed.get_backend_name()!r} is not supported on a server",
            fix="use postgresql+asyncpg://user:password@host:5432/dbname (or unset it for the SQLite file).",
        )
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


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


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose execute is one trip to aiosqlite's thread: the statement, its rows, rowcount and lastrowid at once
    (SQLAlchemy's own adapter makes four: cursor, execute, fetchall, close), with the transaction's pending BEGIN sent
    in the same trip ahead of the first statement."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any):  # no driver cursor: each execute makes and closes its own, on the thread
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # no driver cursor (see above)
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: Any = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _async_soft_close(self) -> None:
        return None  # nothing is open on the driver's side

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._run(operation, seq_of_parameters, many=True)

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapt = typing.cast(_OneHopConnection, self._adapt_connection)
        async with adapt._execute_mutex:
            begin, adapt._begin = adapt._begin, None
            adapt._in_tx = None  # unknown until the trip answers (a failed statement may leave a transaction open)
            description, rows, self._rowcount, self._lastrowid, adapt._in_tx = await self._connection._execute(
                _one_trip, self._connection._conn, begin, operation, parameters, many
            )
            self._description = description
            if description:
                self._rows = collections.deque(rows)


def _one_trip(raw: Any, begin: str | None, operation: str, parameters: Any, many: bool) -> tuple[Any, ...]:
    """On aiosqlite's thread: BEGIN if one is pending, the statement, everything SQLAlchemy reads back."""
    if begin:
        raw.execute(begin)
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid, raw.in_transaction
    finally:
        cursor.close()


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """aiosqlite's connection as SQLAlchemy sees it, with the trips cut: BEGIN waits for the first statement and goes
    with it; COMMIT and ROLLBACK cost no trip when no transaction is open (a read in autocommit, a transaction that ran
    nothing, the pool's reset of a connection whose transaction already ended)."""

    __slots__ = ("_begin", "_in_tx")
    _cursor_cls = _OneHopCursor

    def __init__(self, dbapi: Any, connection: Any):
        super().__init__(dbapi, connection)
        self._begin: str | None = None  # the BEGIN to send with the next statement
        self._in_tx: bool | None = None  # whether SQLite has a transaction open; None: not known, ask it

    def _end(self, finish: Callable[[], None]) -> None:
        if self._begin is not None or self._in_tx is False:
            self._begin = None  # nothing was sent since BEGIN was asked for, or autocommit: nothing to end
            return
        self._in_tx = None
        finish()
        self._in_tx = False

    def commit(self) -> None:
        self._end(super().commit)

    def rollback(self) -> None:
        self._end(super().rollback)


class _OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _OneHopConnection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's adapter does: a forgotten store does not hold the exit
        return _OneHopConnection(self, await_only(connection))


def _sqlite_engine(db_path: str) -> AsyncEngine:
    """The embedded engine: one connection (coroutines take turns, as with one SQLite writer), foreign keys on, a busy
    timeout for other processes sharing the file, WAL for a file; a writing transaction starts with BEGIN IMMEDIATE so
    two processes never both read-then-write, a reading one with a plain BEGIN, a one-statement read with none (one
    SELECT is atomic by itself). Each statement is one trip to aiosqlite's thread (_OneHopConnection): a read costs one,
    a one-statement write two (BEGIN IMMEDIATE with the statement, COMMIT)."""
    url = f"sqlite+aiosqlite:///{db_path}"
    if db_path == MEMORY:  # a named in-memory database: it lives while any connection holds it (see _memory_keeper)
        url = f"sqlite+aiosqlite:///file:{_memory_name()}?mode=memory&cache=shared&uri=true"
    # No reset when the connection goes back to the pool: every use ends its own transaction (`_tx` and `_lone` commit
    # or roll back; Connection.close rolls back one left open), and a connection whose task was cancelled mid-statement
    # is invalidated by SQLAlchemy, not returned.
    engine = create_async_engine(
        url,
        module=_OneHopDBAPI(aiosqlite, sqlite3),
        poolclass=AsyncAdaptedQueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=120,
        pool_reset_on_return=None,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver's own implicit BEGIN off: transactions are ours
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 5000")
        if db_path != MEMORY:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: SyncConnection) -> None:  # sent with the first statement (_OneHopCursor)
        typing.cast(
            _OneHopConnection, connection.connection.dbapi_connection
        )._begin = connection.get_execution_options().get("admonster_begin", "BEGIN IMMEDIATE")

    return engine


# The hot look-ups, built once (Store._keyed): one SQL text for every workspace and key, on both engines.
_SETTING_BY_KEY = select(settings).where(
    settings.c.workspace_id == bindparam("workspace_id"), settings.c.key == bindparam("key")
)
_SELECTION_BY_KIND = select(selections).where(
    selections.c.workspace_id == bindparam("workspace_id"), selections.c.kind == bindparam("kind")
)
_AUDIT_BY_ID = select(audit_log).where(
    audit_log.c.workspace_id == bindparam("workspace_id"), audit_log.c.id == bindparam("id")
)
_TOKEN_OF = select(tokens).where(tokens.c.workspace_id == bindparam("workspace_id"))
_ADD_AUDIT = insert(audit_log).returning(audit_log.c.id)  # the columns come as parameters
# Equalities, not IN: SQLAlchemy expands an IN list's parameter again on every execution (bench item 10).
_UNSETTLED = or_(*(audit_log.c.outcome == outcome for outcome in UNSETTLED_OUTCOMES))
_SETTLE_AUDIT = update(audit_log).where(
    audit_log.c.workspace_id == bindparam("entry_workspace"), audit_log.c.id == bindparam("entry_id"), _UNSETTLED
)


def _first(result: Any) -> Any:
    return result.first()


def _all_rows(result: Any) -> list[Any]:
    return typing.cast("list[Any]", result.all())


def _scalar(result: Any) -> Any:
    return result.scalar()


def _rowcount(result: Any) -> int:
    return typing.cast("int", result.rowcount)


def _memory_name() -> str:
    return f"admonster-{secrets.token_hex(8)}"


def _memory_keeper(engine: AsyncEngine) -> Any:
    """A plain connection holding a store's in-memory database open for the store's life: the pool may drop its
    connection (a task cancelled mid-statement has its connection closed, not reused), and the data must outlive it."""
    return sqlite3.connect(
        f"file:{(engine.url.database or '').removeprefix('file:')}?mode=memory&cache=shared",
        uri=True,
        check_same_thread=False,
    )


def _violation(exc: IntegrityError) -> str:
    """Which constraint an IntegrityError broke: foreign_key, unique, check or other (both engines)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    message = str(orig).lower()
    if code == "23503" or "foreign key" in message:
        return "foreign_key"
    if code == "23505" or "unique" in message or "duplicate key" in message:
        return "unique"
    if code == "23514" or "check constraint" in message:
        return "check"
    return "other"


class Store:
    """Async access to Ad Monster's state (SQLite file or PostgreSQL); every record belongs to one workspace."""

    def __init__(self, engine: AsyncEngine, fernet: Fernet, *, path: str = MEMORY, clock: Clock | None = None):
        self._engine = engine
        # The same pool, other BEGINs (SQLite's "begin" event reads the option; PostgreSQL ignores it): a reading
        # transaction, and one statement alone (atomic by itself: autocommit on SQLite).
        self._read_engine = engine.execution_options(admonster_begin="BEGIN")
        self._lone_engine = engine.execution_options(admonster_begin=None)
        self._fernet = fernet
        self.path = path  # the SQLite file, ':memory:', or the server's URL without its password
        self.clock: Clock = clock or _utc_now
        self.dialect: str = engine.dialect.name  # "sqlite" | "postgresql"
        self._closed = False
        self._keeper = _memory_keeper(engine) if path == MEMORY else None

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
        """Open (creating if needed) the database at `path` (a SQLite file or folder, ':memory:', or a
        postgresql+asyncpg:// URL) and apply pending migrations."""
        if is_database_url(path):
            url = _server_url(str(path))
            fernet = _resolve_fernet(url, secret_key, key_file)
            engine = create_async_engine(url, pool_pre_ping=True)
            where, db_path = safe_database_url(url), MEMORY
        else:
            db_path = _resolve_db_path(path)
            fernet = _resolve_fernet(db_path, secret_key, key_file)
            private_db_file(db_path)
            if db_path != MEMORY:
                _bring_legacy_home(db_path)
            engine = _sqlite_engine(db_path)
            where = db_path
        store = cls(engine, fernet, path=where, clock=clock)
        try:
            await store._migrate()
        except (OperationalError, OSError) as exc:
            await engine.dispose()
            reason = _one_line(str(getattr(exc, "orig", None) or exc))
            password = make_url(url).password if is_database_url(path) else None
            if password:
                reason = reason.replace(str(password), "***")
            raise StoreError(
                f"Could not open the database {where} ({reason[:MAX_ERROR_CHARS]})",
                fix="check "
                f"{'ADMONSTER_DATABASE_URL and that the server runs' if is_database_url(path) else 'ADMONSTER_HOME'}.",
            ) from None
        except BaseException:
            await engine.dispose()
            raise
        tighten_db_files(db_path)  # the WAL and SHM files now exist
        return store

    async def close(self) -> None:
        """Close the database connections (closing twice is fine)."""
        self._closed = True
        await self._engine.dispose()
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None

    async def ping(self) -> None:
        """One round trip to the database (``SELECT 1``); raises what the driver raises when it cannot be reached."""
        async with self._engine.connect() as conn:
            await conn.execute(sql_text("SELECT 1"))

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _now(self) -> datetime:
        return _as_utc(self.clock())

    @contextlib.asynccontextmanager
    async def _tx(self, workspace_id: int | None = None, *, read: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction (writing unless `read`); a value the store refuses surfaces as its own error, and a row
        pointing at a workspace that does not exist as InvalidArgument."""
        with self._errors(workspace_id):
            async with (self._read_engine if read else self._engine).connect() as conn:
                async with conn.begin():
                    yield conn

    async def _lone(
        self,
        statement: Any,
        result: Callable[[Any], Any],
        workspace_id: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """`result` of one statement run alone (atomic by itself; on SQLite in autocommit, one trip to the driver's
        thread), all in one greenlet switch where an AsyncConnection takes five (connect, begin, execute, commit,
        close). Errors as in _tx."""
        engine = self._lone_engine.sync_engine

        def run() -> Any:
            with engine.connect() as conn, conn.begin():
                return result(conn.execute(statement, params))

        with self._errors(workspace_id):
            return await greenlet_spawn(run)

    @contextlib.contextmanager
    def _errors(self, workspace_id: int | None) -> typing.Iterator[None]:
        if self._closed:
            raise StoreError("The store is closed", fix="open a new one with Store.open().")
        try:
            yield
        except IntegrityError as exc:
            if _violation(exc) == "foreign_key" and workspace_id is not None:
                raise InvalidArgument(
                    f"Workspace {workspace_id} does not exist", fix="create it with ensure_workspace()."
                ) from None
            raise
        except StatementError as exc:
            if isinstance(exc.orig, StoreError):
                raise exc.orig from None
            raise

    def _insert(self, table: Table) -> Any:
        """INSERT for this engine, with ON CONFLICT (both SQLite and PostgreSQL have it)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            return postgresql_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def _upsert(self, table: Table, values: dict[str, Any], keys: tuple[str, ...], *, where: Any = None) -> Any:
        """INSERT `values`, or on a clash of `keys` UPDATE the other given columns (only when `where` holds)."""
        statement = self._insert(table).values(**values)
        changes = {table.c[name]: statement.excluded[name] for name in values if name not in keys}
        return statement.on_conflict_do_update(
            index_elements=[table.c[name] for name in keys], set_=changes, where=where
        )

    def _insert_or_ignore(self, table: Table, values: dict[str, Any]) -> Any:
        return self._insert(table).values(**values).on_conflict_do_nothing()

    # -- migrations ------------------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        """The number of the last schema revision applied (11 is the last script of the releases before Alembic)."""
        found = await self._lone(sql_text("SELECT version_num FROM alembic_version"), _scalar)
        return int(found) if found else 0

    async def _migrate(self) -> None:
        async with self._tx() as conn:
            if (
                self.dialect == "postgresql"
            ):  # openers on several replicas: one migrates, the others wait and see it done
                await conn.execute(sql_text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": MIGRATION_LOCK_ID})
            await conn.run_sync(self._migrate_sync)

    def _migrate_sync(self, connection: SyncConnection) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        script = ScriptDirectory.from_config(config)
        head = script.get_current_head()
        current = MigrationContext.configure(connection).get_current_revision()
        fix_home = (
            "point ADMONSTER_DATABASE_URL elsewhere"
            if self.dialect == "postgresql"
            else "point ADMONSTER_HOME elsewhere"
        )
        if current is not None:
            try:
                script.get_revision(current)
            except CommandError:
                raise StoreError(
                    f"Database {self.path} has schema revision {current}, newer than this Ad Monster knows ({head})",
                    fix=f"upgrade Ad Monster or {fix_home}.",
                ) from None
        elif (
            _legacy_version(connection) == LEGACY_VERSION
        ):  # a home of the releases before Alembic, at their last script
            command.stamp(config, BASELINE_REVISION)
        try:
            command.upgrade(config, "head")
        except Exception as exc:  # noqa: BLE001 - any failure of a revision is reported the same way
            raise StoreError(
                f"Migration {head} failed: {_one_line(str(exc))[:MAX_ERROR_CHARS]}",
                fix=f"restore a backup of {self.path}.",
            ) from exc
        revision = MigrationContext.configure(connection).get_current_revision()
        if (
            revision
            and revision.isdigit()
            and not connection.execute(
                select(schema_version.c.version).where(schema_version.c.version == int(revision))
            ).first()
        ):
            connection.execute(insert(schema_version).values(version=int(revision), applied_at=_iso(self._now())))

    # -- workspaces and API keys -----------------------------------------------------------------------------

    def workspace_state(self, workspace_id: int, policy: SingleFlightPolicy | None = None) -> WorkspaceState:
        """This store bound to one workspace: the ops' journal, records and experiments (fb_utils Protocols)."""
        return WorkspaceState(self, workspace_id, policy)

    async def ensure_workspace(self, name: str) -> Workspace:
        """The workspace called `name`, created if it does not exist yet."""
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise InvalidArgument("Workspace name must be 1-100 characters", fix="pass a short name such as 'default'.")
        async with self._tx() as conn:
            await conn.execute(self._insert_or_ignore(workspaces, {"name": name, "created_at": _iso(self._now())}))
            row = (await conn.execute(select(workspaces).where(workspaces.c.name == name))).one()
        return typing.cast("Workspace", from_row(workspaces, row))

    async def get_workspace(self, workspace_id: int) -> Workspace | None:
        """The workspace with this id, or None."""
        return typing.cast("Workspace | None", await self._one(workspaces, workspaces.c.id == workspace_id))

    async def list_workspaces(self) -> list[Workspace]:
        """All workspaces, oldest first."""
        return await self._all(select(workspaces).order_by(workspaces.c.id), workspaces)

    async def find_workspace(self, name: str) -> Workspace | None:
        """The workspace called `name`, or None (nothing is created)."""
        return typing.cast("Workspace | None", await self._one(workspaces, workspaces.c.name == (name or "").strip()))

    async def _one(self, table: Table, *where: Any) -> Any:
        """The record of the one row of `table` matching `where`, or None."""
        row = await self._lone(select(table).where(*where), _first)
        return from_row(table, row) if row else None

    async def _keyed(self, table: Table, statement: Any, **params: Any) -> Any:
        """Like _one, with a statement built once (_BY_KEY): the hot look-ups skip building and keying a statement."""
        row = await self._lone(statement, _first, params=params)
        return from_row(table, row) if row else None

    async def _all(self, statement: Any, table: Table) -> list[Any]:
        rows = await self._lone(statement, _all_rows)
        return [from_row(table, row) for row in rows]

    def _insertion_order(self, table: Table) -> Any:
        """Rows in the order they were written, for a table without an id: SQLite's rowid; PostgreSQL has none, so
        there ties of the time column fall back to the primary key (unverified order within one second)."""
        return literal_column("rowid") if self.dialect == "sqlite" else table.c.key_hash

    async def create_api_key(self, workspace_id: int) -> str:
        """A new API key for the workspace; returned once in plain text, stored only as its SHA-256."""
        async with self._tx(workspace_id) as conn:
            return await self._create_api_key(conn, workspace_id)

    async def _create_api_key(self, conn: AsyncConnection, workspace_id: int) -> str:
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        await conn.execute(
            insert(api_keys).values(
                key_hash=hash_api_key(key),
                key_id=api_key_id(key),
                workspace_id=workspace_id,
                created_at=_iso(self._now()),
            )
        )
        return key

    async def list_api_keys(self, workspace_id: int) -> list[ApiKeyInfo]:
        """The workspace's API keys, oldest first: their public ids and times, never the secret."""
        keys = await self._all(
            select(api_keys)
            .where(api_keys.c.workspace_id == workspace_id)
            .order_by(api_keys.c.created_at, self._insertion_order(api_keys)),
            api_keys,
        )
        return [
            ApiKeyInfo(
                key_id=key.key_id or "(made before key ids)", created_at=key.created_at, revoked_at=key.revoked_at
            )
            for key in keys
        ]

    async def revoke_api_key(self, workspace_id: int, key_id: str) -> ApiKeyInfo | None:
        """Revoke the workspace's key with this public id (or the whole key): it stops authenticating at once.
        None when the workspace has no such key that is still valid."""
        async with self._tx(workspace_id) as conn:
            return await self._revoke_api_key(conn, workspace_id, key_id)

    async def _revoke_api_key(self, conn: AsyncConnection, workspace_id: int, key_id: str) -> ApiKeyInfo | None:
        wanted = api_key_id((key_id or "").strip())
        mine = (api_keys.c.workspace_id == workspace_id, api_keys.c.key_id == wanted)
        result = await conn.execute(
            update(api_keys).where(*mine, api_keys.c.revoked_at.is_(None)).values(revoked_at=_iso(self._now()))
        )
        if result.rowcount < 1:
            return None
        row = (
            await conn.execute(select(api_keys).where(*mine).order_by(self._insertion_order(api_keys).desc()))
        ).first()
        return typing.cast("ApiKeyInfo | None", from_row(api_keys, row))

    async def rotate_api_key(self, workspace_id: int, key_id: str) -> tuple[str, ApiKeyInfo] | None:
        """A new key for the workspace and the old one revoked, in one transaction; None (nothing changed) when the
        workspace has no valid key with that id."""
        async with self._tx(workspace_id) as conn:
            revoked = await self._revoke_api_key(conn, workspace_id, key_id)
            if revoked is None:
                return None
            return await self._create_api_key(conn, workspace_id), revoked

    async def workspace_for_api_key(self, key: str) -> Workspace | None:
        """The workspace an API key belongs to, or None for an unknown or revoked key."""
        if not key:
            return None
        rows = await self._lone(
            select(api_keys.c.key_hash, workspaces)
            .join(workspaces, workspaces.c.id == api_keys.c.workspace_id)
            .where(api_keys.c.key_id == api_key_id(key), api_keys.c.revoked_at.is_(None)),
            _all_rows,
        )
        wanted = hash_api_key(key)
        for row in rows:
            if hmac.compare_digest(row.key_hash, wanted):
                return typing.cast("Workspace | None", from_row(workspaces, row))
        return None

    # -- settings and guardrails -----------------------------------------------------------------------------

    async def get_setting(self, workspace_id: int, key: str, default: Any = None) -> Any:
        """The workspace's value for `key`, or `default`."""
        found = await self._keyed(settings, _SETTING_BY_KEY, workspace_id=workspace_id, key=key)
        return found.value if found else default

    async def set_setting(self, workspace_id: int, key: str, value: Any) -> None:
        """Store a JSON value for `key` in the workspace; None removes the setting."""
        if not isinstance(key, str) or not key.strip():
            raise InvalidArgument("Setting key must be a non-empty string", fix="pass a name such as 'guardrails'.")
        async with self._tx(workspace_id) as conn:
            await self._set_setting(conn, workspace_id, key, value)

    async def _set_setting(self, conn: AsyncConnection, workspace_id: int, key: str, value: Any) -> None:
        if value is None:
            await conn.execute(delete(settings).where(settings.c.workspace_id == workspace_id, settings.c.key == key))
            return
        await conn.execute(
            self._upsert(
                settings,
                {"workspace_id": workspace_id, "key": key, "value": value, "updated_at": _iso(self._now())},
                ("workspace_id", "key"),
            )
        )

    async def all_settings(self, workspace_id: int) -> dict[str, Any]:
        """Every setting of the workspace as a dict."""
        found = await self._all(
            select(settings).where(settings.c.workspace_id == workspace_id).order_by(settings.c.key), settings
        )
        return {setting.key: setting.value for setting in found}

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
        async with self._tx(
            workspace_id
        ) as conn:  # read, merge and write in one transaction (row locked on PostgreSQL)
            stored = await conn.scalar(
                select(settings.c.value)
                .where(settings.c.workspace_id == workspace_id, settings.c.key == key)
                .with_for_update()
            )
            layer = stored if isinstance(stored, dict) else {}
            layer.update(validated)
            await self._set_setting(conn, workspace_id, key, layer)
        return await self.guardrails(workspace_id, ad_account_id)

    # -- selections ------------------------------------------------------------------------------------------

    async def get_selection(self, workspace_id: int, kind: str) -> str | None:
        """The selected ad account, page or Instagram account id, or None."""
        _check_selection_kind(kind)
        found = await self._keyed(selections, _SELECTION_BY_KIND, workspace_id=workspace_id, kind=kind)
        return found.value if found else None

    async def set_selection(self, workspace_id: int, kind: str, value: str | None) -> None:
        """Select an ad account, page or Instagram account; None clears the selection."""
        await self.set_selections(workspace_id, {kind: value})

    async def set_selections(self, workspace_id: int, chosen: dict[str, str | None]) -> None:
        """Set several selections in one transaction (a page with its Instagram account): a reader in another request
        or replica sees all of them or none, never the page without its Instagram account. None clears one."""
        for kind in chosen:
            _check_selection_kind(kind)
        async with self._tx(workspace_id) as conn:
            for kind, value in chosen.items():
                mine = (selections.c.workspace_id == workspace_id, selections.c.kind == kind)
                if value is None or not str(value).strip():
                    await conn.execute(delete(selections).where(*mine))
                    continue
                await conn.execute(
                    self._upsert(
                        selections,
                        {
                            "workspace_id": workspace_id,
                            "kind": kind,
                            "value": str(value).strip(),
                            "updated_at": _iso(self._now()),
                        },
                        ("workspace_id", "kind"),
                    )
                )

    async def all_selections(self, workspace_id: int) -> dict[str, str | None]:
        """Every selection kind mapped to its value (None when unset)."""
        found = {
            selection.kind: selection.value
            for selection in await self._all(
                select(selections).where(selections.c.workspace_id == workspace_id), selections
            )
        }
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
                f"Audit outcome {outcome!r} is not known", fix=f"use one of {', '.join(AUDIT_OUTCOMES)}."
            )
        now = _iso(self._now())
        return typing.cast(
            "int",
            await self._lone(
                _ADD_AUDIT,
                _scalar,
                workspace_id,
                params=dict(
                    workspace_id=workspace_id,
                    created_at=now,
                    interface=interface,
                    op=op,
                    args=drop_secret_keys(args or {}),
                    summary=summary,
                    changes=drop_secret_keys(changes or []),
                    object_ids=[str(object_id) for object_id in object_ids or []],
                    outcome=outcome,
                    error=error,
                    fbtrace_id=fbtrace_id,
                    undo_of=undo_of,
                    tags=_clean_tags(tags or []),
                    settled_at=None if outcome in UNSETTLED_OUTCOMES else now,
                ),
            ),
        )

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
            raise InvalidArgument(
                f"An audit entry settles as ok, error or unknown, not {outcome!r}", fix="pass one of those."
            )
        values: dict[str, Any] = {
            "outcome": outcome,
            "error": error,
            "settled_at": None if outcome == "unknown" else _iso(self._now()),
        }
        if object_ids is not None:
            values["object_ids"] = [str(v) for v in drop_secret_keys(object_ids)]
        if changes is not None:
            values["changes"] = drop_secret_keys(changes)
        if fbtrace_id is not None:
            values["fbtrace_id"] = fbtrace_id
        if undo_of is not None:
            values["undo_of"] = undo_of
        if not tags:  # the hot path: one UPDATE built once, the values as parameters
            return typing.cast(
                "bool",
                await self._lone(
                    _SETTLE_AUDIT, _rowcount, params={**values, "entry_workspace": workspace_id, "entry_id": audit_id}
                )
                == 1,
            )
        unsettled = (audit_log.c.workspace_id == workspace_id, audit_log.c.id == audit_id, _UNSETTLED)
        async with self._tx(workspace_id) as conn:
            held = await conn.scalar(select(audit_log.c.tags).where(*unsettled).with_for_update())
            values["tags"] = _clean_tags([*(held or []), *tags])
            result = await conn.execute(update(audit_log).where(*unsettled).values(**values))
        return result.rowcount == 1

    async def note_audit_made(self, workspace_id: int, audit_id: int, object_id: str, lookup: dict[str, str]) -> bool:
        """While a write runs: record an object it has made so far and how reconcile looks at it (a video upload's id,
        known after its first phase), so a crash before the answer leaves no unrecorded object. False when the entry
        is no longer pending."""
        pending = (
            audit_log.c.workspace_id == workspace_id,
            audit_log.c.id == audit_id,
            audit_log.c.outcome == "pending",
        )
        async with self._tx(workspace_id) as conn:
            row = (await conn.execute(select(audit_log).where(*pending).with_for_update())).first()
            if row is None:
                return False
            entry: AuditEntry = from_row(audit_log, row)
            result = await conn.execute(
                update(audit_log)
                .where(*pending)
                .values(object_ids=sorted({*entry.object_ids, str(object_id)}), tags=_clean_tags([*entry.tags, lookup]))
            )
        return result.rowcount == 1

    async def unsettled_audit(self, workspace_id: int) -> list[AuditEntry]:
        """The workspace's entries still pending or unknown (a crash mid-write, a lost answer), oldest first."""
        return await self._all(
            select(audit_log).where(audit_log.c.workspace_id == workspace_id, _UNSETTLED).order_by(audit_log.c.id),
            audit_log,
        )

    async def list_audit(self, workspace_id: int, limit: int = 20, op: str | None = None) -> list[AuditEntry]:
        """The workspace's latest audit entries, newest first, optionally only one op."""
        statement = select(audit_log).where(audit_log.c.workspace_id == workspace_id)
        if op is not None:
            statement = statement.where(audit_log.c.op == op)
        return await self._all(statement.order_by(audit_log.c.id.desc()).limit(_limit(limit)), audit_log)

    async def get_audit(self, workspace_id: int, audit_id: int) -> AuditEntry | None:
        """One audit entry of the workspace, or None."""
        return typing.cast(
            "AuditEntry | None", await self._keyed(audit_log, _AUDIT_BY_ID, workspace_id=workspace_id, id=audit_id)
        )

    async def mark_undone(self, workspace_id: int, audit_id: int, undone_by: int) -> bool:
        """Record that entry `audit_id` was undone by entry `undone_by`; False if not found or already undone."""
        if await self.get_audit(workspace_id, undone_by) is None:
            raise InvalidArgument(
                f"Audit entry {undone_by} is not in this workspace", fix="pass the undo's own entry id."
            )
        async with self._tx(workspace_id) as conn:
            result = await conn.execute(
                update(audit_log)
                .where(
                    audit_log.c.workspace_id == workspace_id,
                    audit_log.c.id == audit_id,
                    audit_log.c.undone_by.is_(None),
                )
                .values(undone_by=undone_by)
            )
        return result.rowcount == 1

    async def release_undone(self, workspace_id: int, audit_id: int, undone_by: int) -> bool:
        """Take back mark_undone when the undo `undone_by` provably changed nothing; False if another undo holds it."""
        async with self._tx(workspace_id) as conn:
            result = await conn.execute(
                update(audit_log)
                .where(
                    audit_log.c.workspace_id == workspace_id,
                    audit_log.c.id == audit_id,
                    audit_log.c.undone_by == undone_by,
                )
                .values(undone_by=None)
            )
        return result.rowcount == 1

    # -- confirmations ---------------------------------------------------------------------------------------

    async def add_confirmation(
        self,
        workspace_id: int,
        *,
        op: str,
        args: dict[str, Any],
        preview: str,
        ttl_seconds: int = 900,
        changes: list[dict[str, Any]] | None = None,
    ) -> str:
        """Save a pending spend op with the exact changes its preview showed, and return its short id (like 'c-7f3a9b'),
        valid for `ttl_seconds`."""
        now = self._now()
        # Encrypted with the store's key: a held add_users or send_events needs its people's data to run later.
        args_json = self._encrypt(_to_json(args or {}, "Confirmation args"))
        changes = json.loads(_to_json(changes or [], "Confirmation changes"))
        async with self._tx(workspace_id) as conn:
            for _attempt in range(20):
                confirmation_id = CONFIRMATION_PREFIX + secrets.token_hex(3)
                made = await conn.scalar(
                    self._insert(confirmations)
                    .values(
                        id=confirmation_id,
                        workspace_id=workspace_id,
                        op=op,
                        args=args_json,
                        preview=preview,
                        created_at=_iso(now),
                        expires_at=_iso(now + timedelta(seconds=ttl_seconds)),
                        changes=changes,
                    )
                    .on_conflict_do_nothing()
                    .returning(confirmations.c.id)
                )
                if made is not None:
                    return typing.cast("str", made)  # else an id collision: draw another
        raise StoreError("Could not allocate a confirmation id", fix="retry the operation.")

    async def take_confirmation(self, workspace_id: int, confirmation_id: str) -> Confirmation | None:
        """Claim a pending, unexpired confirmation exactly once; None if unknown, used, expired or not ours."""
        now = _iso(self._now())
        async with self._tx(workspace_id) as conn:
            row = (
                await conn.execute(
                    update(confirmations)
                    .where(
                        confirmations.c.workspace_id == workspace_id,
                        confirmations.c.id == _clean_confirmation_id(confirmation_id),
                        confirmations.c.used_at.is_(None),
                        confirmations.c.expires_at > now,
                    )
                    .values(used_at=now)
                    .returning(*confirmations.c)
                )
            ).first()
        return self._confirmation(row, now) if row else None

    async def reject_confirmation(self, workspace_id: int, confirmation_id: str) -> Confirmation | None:
        """Cancel a pending confirmation (it can no longer be confirmed); None if unknown, used, expired or not ours."""
        return await self.take_confirmation(workspace_id, confirmation_id)

    async def get_confirmation(self, workspace_id: int, confirmation_id: str) -> Confirmation | None:
        """A confirmation of the workspace with its status (pending, used or expired), without claiming it."""
        row = await self._lone(
            select(confirmations).where(
                confirmations.c.workspace_id == workspace_id,
                confirmations.c.id == _clean_confirmation_id(confirmation_id),
            ),
            _first,
        )
        return self._confirmation(row, _iso(self._now())) if row else None

    async def list_confirmations(self, workspace_id: int) -> list[Confirmation]:
        """The workspace's pending, unexpired confirmations, oldest first."""
        now = _iso(self._now())
        rows = await self._lone(
            select(confirmations)
            .where(
                confirmations.c.workspace_id == workspace_id,
                confirmations.c.used_at.is_(None),
                confirmations.c.expires_at > now,
            )
            .order_by(confirmations.c.created_at, confirmations.c.id),
            _all_rows,
        )
        return [self._confirmation(row, now) for row in rows]

    def _confirmation(self, row: Any, now_iso: str) -> Confirmation:
        used_at, expires_at, stored = (
            row._mapping[confirmations.c.used_at],
            row._mapping[confirmations.c.expires_at],
            row._mapping[confirmations.c.args],
        )
        status = "used" if used_at else "expired" if expires_at <= now_iso else "pending"
        # Encrypted since schema 10; plain JSON in rows written before.
        args = json.loads(stored if stored.lstrip().startswith("{") else self._decrypt(stored))
        return typing.cast("Confirmation", from_row(confirmations, row, args=args, status=status))

    # -- chat threads ----------------------------------------------------------------------------------------

    async def append_chat_messages(self, workspace_id: int, thread_id: str, messages: list[dict[str, Any]]) -> int:
        """Append OpenAI-style messages to a workspace's thread, all or none; returns the new last seq."""
        thread = _check_thread_id(thread_id)
        rows = [_chat_row(message) for message in messages]
        if not rows:
            return 0
        created = _iso(self._now())
        async with self._tx(workspace_id) as conn:
            # One appender per workspace at a time: the workspace row is locked on PostgreSQL (SQLite has one writer).
            if (
                await conn.scalar(select(workspaces.c.id).where(workspaces.c.id == workspace_id).with_for_update())
                is None
            ):
                raise InvalidArgument(
                    f"Workspace {workspace_id} does not exist", fix="create it with ensure_workspace()."
                )
            last = await conn.scalar(
                select(func.coalesce(func.max(chat_messages.c.seq), 0)).where(
                    chat_messages.c.workspace_id == workspace_id, chat_messages.c.thread_id == thread
                )
            )
            start = int(last or 0) + 1
            await conn.execute(
                insert(chat_messages),
                [
                    {
                        "workspace_id": workspace_id,
                        "thread_id": thread,
                        "seq": start + offset,
                        **row,
                        "created_at": created,
                    }
                    for offset, row in enumerate(rows)
                ],
            )
        return start + len(rows) - 1

    async def chat_history(self, workspace_id: int, thread_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The last `limit` messages of the workspace's thread, oldest first, as OpenAI message dicts."""
        thread = _check_thread_id(thread_id)
        latest = (
            select(chat_messages)
            .where(chat_messages.c.workspace_id == workspace_id, chat_messages.c.thread_id == thread)
            .order_by(chat_messages.c.seq.desc())
            .limit(max(0, int(limit)))
            .subquery()
        )
        rows = await self._lone(select(latest).order_by(latest.c.seq), _all_rows)
        return [_chat_message(ChatMessage(**row._asdict())) for row in rows]

    async def list_threads(self, workspace_id: int) -> list[dict[str, Any]]:
        """The workspace's threads, most recently active first: thread_id, messages, started_at, last_at."""
        last_at = func.max(chat_messages.c.created_at)
        rows = await self._lone(
            select(
                chat_messages.c.thread_id,
                func.count().label("messages"),
                func.min(chat_messages.c.created_at).label("started_at"),
                last_at.label("last_at"),
            )
            .where(chat_messages.c.workspace_id == workspace_id)
            .group_by(chat_messages.c.thread_id)
            .order_by(last_at.desc(), chat_messages.c.thread_id),
            _all_rows,
        )
        return [dict(row._mapping) for row in rows]

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
            raise InvalidArgument("Token is empty", fix="pass the access token to save.")
        app_secret = _secret_text(app_secret) if app_secret else None
        now = _iso(self._now())
        statement = self._insert(tokens).values(
            workspace_id=workspace_id,
            kind=kind,
            token=self._encrypt(token),
            app_id=app_id,
            app_secret=self._encrypt(app_secret) if app_secret else None,
            user_id=None if user_id is None else str(user_id),
            expires_at=_coerce_expiry(expires_at),
            scopes=None if scopes is None else list(scopes),
            created_at=now,
            updated_at=now,
        )
        replaced = ("kind", "token", "app_id", "app_secret", "user_id", "expires_at", "scopes", "updated_at")
        async with self._tx(workspace_id) as conn:
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[tokens.c.workspace_id],
                    set_={
                        **{tokens.c[name]: statement.excluded[name] for name in replaced},
                        tokens.c.invalid_reason: None,
                        tokens.c.checked_at: None,
                    },
                )
            )

    async def load_token(self, workspace_id: int) -> StoredToken | None:
        """The workspace's decrypted token, or None; SecretKeyError if the key cannot decrypt it."""
        row = await self._lone(_TOKEN_OF, _first, params={"workspace_id": workspace_id})
        if row is None:
            return None
        sealed_secret = row._mapping[tokens.c.app_secret]
        return typing.cast(
            "StoredToken | None",
            from_row(
                tokens,
                row,
                token=self._decrypt(row._mapping[tokens.c.token]),
                app_secret=self._decrypt(sealed_secret) if sealed_secret else None,
            ),
        )

    async def delete_token(self, workspace_id: int) -> bool:
        """Forget the workspace's token; True if there was one."""
        async with self._tx() as conn:
            result = await conn.execute(delete(tokens).where(tokens.c.workspace_id == workspace_id))
        return result.rowcount == 1

    async def mark_token_invalid(self, workspace_id: int, reason: str) -> bool:
        """Record that the workspace's token stopped working (e.g. error 190); False if there is no token."""
        reason = _one_line(reason or "the token was rejected by Facebook")
        async with self._tx() as conn:
            result = await conn.execute(
                update(tokens)
                .where(tokens.c.workspace_id == workspace_id)
                .values(invalid_reason=reason, checked_at=self._now())
            )
        return result.rowcount == 1

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
        values: dict[str, Any] = {"checked_at": self._now(), "expires_at": _coerce_expiry(expires_at)}
        if scopes is not None:
            values["scopes"] = list(scopes)
        fallback = "the token check found it invalid"
        if valid:
            values["invalid_reason"] = None
        elif reason is not None:  # a reason given replaces the one recorded
            values["invalid_reason"] = _one_line(reason) if reason else fallback
        else:
            values["invalid_reason"] = func.coalesce(tokens.c.invalid_reason, fallback)
        async with self._tx() as conn:
            result = await conn.execute(update(tokens).where(tokens.c.workspace_id == workspace_id).values(**values))
        return result.rowcount == 1

    async def record_token_warning(self, workspace_id: int, key: str) -> bool:
        """True the first time `key` (e.g. 'expiry:7d:<expires_at>', 'invalid:<fingerprint>') is recorded."""
        key = str(key or "").strip()
        if not key or len(key) > 200:
            raise InvalidArgument("Warning key must be 1-200 characters", fix="pass e.g. 'expiry:7d:<expires_at>'.")
        async with self._tx(workspace_id) as conn:
            result = await conn.execute(
                self._insert_or_ignore(
                    token_warnings, {"workspace_id": workspace_id, "key": key, "created_at": _iso(self._now())}
                )
            )
        return result.rowcount == 1

    # -- OAuth state nonces ----------------------------------------------------------------------------------

    async def add_oauth_state(
        self,
        workspace_id: int,
        nonce: str,
        expires_at: datetime,
        *,
        binding_hash: str | None = None,
        allow_switch: bool = False,
    ) -> None:
        """Remember an OAuth `state` nonce bound to the workspace until `expires_at` (single use), and to the browser
        or terminal that asked for it (`binding_hash`)."""
        nonce = str(nonce or "").strip()
        if not nonce or len(nonce) > 200:
            raise InvalidArgument("OAuth state nonce must be 1-200 characters", fix="use secrets.token_urlsafe().")
        if not isinstance(expires_at, datetime):
            raise InvalidArgument("OAuth state expiry must be a datetime", fix="pass now + timedelta(minutes=10).")
        now = self._now()
        async with self._tx(workspace_id) as conn:
            # Housekeeping: states expired for a day are of no use to anyone.
            await conn.execute(delete(oauth_states).where(oauth_states.c.expires_at < _iso(now - timedelta(days=1))))
            made = await conn.execute(
                self._insert(oauth_states)
                .values(
                    nonce=nonce,
                    workspace_id=workspace_id,
                    created_at=_iso(now),
                    expires_at=_iso(expires_at),
                    binding_hash=binding_hash,
                    allow_switch=allow_switch,
                )
                .on_conflict_do_nothing()
            )
            if made.rowcount != 1:
                raise InvalidArgument("OAuth state nonce is already in use", fix="draw a new random nonce.")

    async def consume_oauth_state(self, nonce: str) -> int | None:
        """The workspace id bound to `nonce`, exactly once; None when unknown, already used or expired."""
        nonce = str(nonce or "").strip()
        if not nonce:
            return None
        now = _iso(self._now())
        async with self._tx() as conn:
            return typing.cast(
                "int | None",
                await conn.scalar(
                    update(oauth_states)
                    .where(
                        oauth_states.c.nonce == nonce,
                        oauth_states.c.used_at.is_(None),
                        oauth_states.c.expires_at > now,
                    )
                    .values(used_at=now)
                    .returning(oauth_states.c.workspace_id)
                ),
            )

    async def oauth_state_binding(self, nonce: str) -> tuple[str | None, bool] | None:
        """(binding hash, switch allowed) of a state nonce, used or not; None when unknown."""
        state = await self._one(oauth_states, oauth_states.c.nonce == str(nonce or "").strip())
        return None if state is None else (state.binding_hash, state.allow_switch)

    async def token_holders(self, user_id: str, app_id: str | None, *, exclude_workspace: int) -> int:
        """How many other workspaces hold a token of this Facebook user for this app."""
        return int(
            await self._lone(
                select(func.count())
                .select_from(tokens)
                .where(
                    tokens.c.user_id == str(user_id),
                    func.coalesce(tokens.c.app_id, "") == (app_id or ""),
                    tokens.c.workspace_id != exclude_workspace,
                ),
                _scalar,
            )
            or 0
        )

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
                f"Notification channel {channel!r} is not known", fix=f"use {', '.join(NOTIFICATION_CHANNELS)}."
            )
        if level not in NOTIFICATION_LEVELS:
            raise InvalidArgument(
                f"Notification level {level!r} is not known", fix=f"use {', '.join(NOTIFICATION_LEVELS)}."
            )
        subject = _one_line(subject or "")
        if not subject:
            raise InvalidArgument("Notification subject is empty", fix="pass a short subject line.")
        target = str(target).strip() if target else None
        if channel in DELIVERY_CHANNELS and not target:
            raise InvalidArgument(
                f"A {channel} notification needs a target", fix="pass the email address or webhook URL."
            )
        if channel == "inbox":
            target = None
        now = _iso(self._now())
        async with self._tx(workspace_id) as conn:
            # The only unique key besides the id is (workspace, channel, dedupe_key): a clash means already queued.
            return typing.cast(
                "int | None",
                await conn.scalar(
                    self._insert(notifications)
                    .values(
                        workspace_id=workspace_id,
                        channel=channel,
                        level=level,
                        subject=subject,
                        text=str(text or ""),
                        target=target,
                        dedupe_key=dedupe_key or None,
                        status="pending",
                        attempts=0,
                        created_at=now,
                        next_attempt_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(notifications.c.id)
                ),
            )

    def _due(self, now: datetime) -> Any:
        return (
            select(notifications)
            .where(
                notifications.c.status == "pending",
                notifications.c.channel.in_(DELIVERY_CHANNELS),
                notifications.c.next_attempt_at <= _iso(now),
            )
            .order_by(notifications.c.next_attempt_at, notifications.c.id)
        )

    async def due_notifications(self, now: datetime, limit: int = 50) -> list[Notification]:
        """Pending email and webhook messages of every workspace whose next attempt is at or before `now`."""
        return await self._all(self._due(now).limit(_limit(limit, 1000)), notifications)

    async def claim_due_notifications(
        self, now: datetime, limit: int = 50, *, hold: timedelta = DELIVERY_HOLD
    ) -> list[Notification]:
        """The due messages (as due_notifications), claimed for delivery by this process: their next attempt moves
        `hold` ahead in the same statement, so another replica does not take them while this one sends. Sent or failed,
        the sender records it (mark_notification_sent/failed); a sender that dies leaves them due again after `hold`."""
        chosen = self._due(now).with_only_columns(notifications.c.id).limit(_limit(limit, 1000))
        if self.dialect == "postgresql":  # replicas claiming at once take different rows instead of waiting
            chosen = chosen.with_for_update(skip_locked=True)
        async with self._tx() as conn:
            rows = (
                await conn.execute(
                    update(notifications)
                    .where(notifications.c.id.in_(chosen.scalar_subquery()))
                    .values(next_attempt_at=now + hold)
                    .returning(*notifications.c)
                )
            ).all()
        return sorted((from_row(notifications, row) for row in rows), key=lambda item: item.id)

    async def get_notification(self, workspace_id: int, notification_id: int) -> Notification | None:
        """One message of the workspace, or None."""
        return typing.cast(
            "Notification | None",
            await self._one(
                notifications, notifications.c.workspace_id == workspace_id, notifications.c.id == notification_id
            ),
        )

    async def mark_notification_sent(self, notification_id: int) -> bool:
        """Record a successful delivery of a pending message; False if it was not pending."""
        now = self._now()
        async with self._tx() as conn:
            result = await conn.execute(
                update(notifications)
                .where(
                    notifications.c.id == notification_id,
                    notifications.c.status == "pending",
                )
                .values(status="sent", attempts=notifications.c.attempts + 1, sent_at=now, next_attempt_at=now)
            )
        return result.rowcount == 1

    async def mark_notification_failed(
        self, notification_id: int, error: str, next_attempt_at: datetime | None
    ) -> bool:
        """Record a failed attempt: retry at `next_attempt_at`, or give up (status 'failed') when it is None."""
        error = _one_line(str(error or "delivery failed"))[:MAX_ERROR_CHARS]
        values: dict[str, Any] = {"attempts": notifications.c.attempts + 1, "last_error": error}
        if next_attempt_at is None:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = next_attempt_at
        async with self._tx() as conn:
            result = await conn.execute(
                update(notifications)
                .where(notifications.c.id == notification_id, notifications.c.status == "pending")
                .values(**values)
            )
        return result.rowcount == 1

    async def list_notifications(
        self, workspace_id: int, limit: int = 50, *, channel: str | None = None, status: str | None = None
    ) -> list[Notification]:
        """The workspace's messages, newest first, optionally one channel and/or status."""
        statement = select(notifications).where(notifications.c.workspace_id == workspace_id)
        if channel is not None:
            statement = statement.where(notifications.c.channel == channel)
        if status is not None:
            statement = statement.where(notifications.c.status == status)
        return await self._all(statement.order_by(notifications.c.id.desc()).limit(_limit(limit, 1000)), notifications)

    async def unread_inbox(self, workspace_id: int) -> list[Notification]:
        """The workspace's chat-inbox messages not shown yet, oldest first."""
        return await self._all(
            select(notifications)
            .where(
                notifications.c.workspace_id == workspace_id,
                notifications.c.channel == "inbox",
                notifications.c.status == "pending",
            )
            .order_by(notifications.c.id),
            notifications,
        )

    async def mark_inbox_read(self, workspace_id: int, ids: list[int]) -> int:
        """Mark these inbox messages of the workspace read; returns how many changed (others' ids are ignored)."""
        ids = [int(i) for i in ids or []]
        if not ids:
            return 0
        async with self._tx() as conn:
            result = await conn.execute(
                update(notifications)
                .where(
                    notifications.c.workspace_id == workspace_id,
                    notifications.c.channel == "inbox",
                    notifications.c.status == "pending",
                    notifications.c.id.in_(ids),
                )
                .values(status="read", sent_at=self._now())
            )
        return result.rowcount

    # -- scheduled job runs ----------------------------------------------------------------------------------

    async def record_job_run(self, name: str, *, ran_at: datetime, ok: bool, summary: str) -> None:
        """Remember when job `name` last ran and how it went."""
        async with self._tx() as conn:
            await conn.execute(
                self._upsert(
                    job_runs,
                    {
                        "name": name,
                        "last_run_at": ran_at,
                        "ok": ok,
                        "summary": _one_line(summary or "")[:MAX_ERROR_CHARS],
                    },
                    ("name",),
                )
            )

    async def claim_job_slot(self, name: str, slot: str, owner: str) -> bool:
        """Claim run slot `slot` of job `name` for `owner`: True for the one claim that lands (that process runs the
        job), False when another process claimed it first. Claims older than a week are forgotten on the way."""
        now = self._now()
        async with self._tx() as conn:
            await conn.execute(delete(job_slots).where(job_slots.c.claimed_at < now - JOB_SLOT_MEMORY))
            claimed = await conn.execute(
                self._insert_or_ignore(
                    job_slots, {"name": name, "slot": slot, "owner": owner, "claimed_at": now}
                ).returning(job_slots.c.owner)
            )
            return claimed.first() is not None

    # -- offered files ---------------------------------------------------------------------------------------

    async def offer_file(self, *, keep: int = 2000, **offer: Any) -> None:
        """Record one offered file; expired offers go on the way, and the workspace keeps its `keep` newest (those
        offered in the same second as the last kept one stay too: times are kept to the second)."""
        offered = OfferedFile(**offer)  # every field named, or a TypeError saying which is missing
        values = {spec.name: getattr(offered, spec.name) for spec in fields(OfferedFile)}
        mine = offered_files.c.workspace_id == offered.workspace_id
        async with self._tx(offered.workspace_id) as conn:
            await conn.execute(delete(offered_files).where(offered_files.c.expires_at <= offered.offered_at))
            await conn.execute(insert(offered_files).values(**values))
            oldest_kept = (
                select(offered_files.c.offered_at)
                .where(mine)
                .order_by(offered_files.c.offered_at.desc())
                .offset(keep - 1)
                .limit(1)
                .scalar_subquery()
            )
            await conn.execute(delete(offered_files).where(mine, offered_files.c.offered_at < oldest_kept))

    async def offered_file(self, workspace_id: int, file_id: str, now: datetime) -> OfferedFile | None:
        """The workspace's offered file `file_id` while its offer lasts, else None (another workspace's is None too)."""
        return typing.cast(
            "OfferedFile | None",
            await self._one(
                offered_files,
                offered_files.c.file_id == file_id,
                offered_files.c.workspace_id == workspace_id,
                offered_files.c.expires_at > _as_utc(now),
            ),
        )

    async def offered_files_of(self, workspace_id: int, now: datetime) -> list[OfferedFile]:
        """The workspace's files still on offer, newest first."""
        return await self._all(
            select(offered_files)
            .where(offered_files.c.workspace_id == workspace_id, offered_files.c.expires_at > _as_utc(now))
            .order_by(offered_files.c.offered_at.desc(), offered_files.c.file_id),
            offered_files,
        )

    # -- shared pacing ---------------------------------------------------------------------------------------

    async def publish_account_usage(
        self,
        ad_account_id: str,
        *,
        usage_pct: float,
        measure: str,
        window_seconds: float,
        seen_at: datetime,
        block_until: datetime | None = None,
    ) -> None:
        """Share one ad account's usage with the other processes on this database. A newer sighting replaces the
        usage; a throttle's block only ever lengthens (a later, shorter block does not end an earlier one)."""
        if not ad_account_id:
            raise InvalidArgument("An ad account id is needed", fix="pass act_<digits>", blame_field="ad_account_id")
        statement = self._insert(account_usage).values(
            ad_account_id=ad_account_id,
            usage_pct=float(usage_pct),
            measure=measure,
            window_seconds=float(window_seconds),
            seen_at=_as_utc(seen_at),
            block_until=None if block_until is None else _as_utc(block_until),
        )
        new, old = statement.excluded, account_usage.c
        newer = new.seen_at >= old.seen_at
        statement = statement.on_conflict_do_update(
            index_elements=[old.ad_account_id],
            set_={
                old.usage_pct: case((newer, new.usage_pct), else_=old.usage_pct),
                old.measure: case((newer, new.measure), else_=old.measure),
                old.window_seconds: case((newer, new.window_seconds), else_=old.window_seconds),
                old.seen_at: case((newer, new.seen_at), else_=old.seen_at),
                old.block_until: case(
                    (old.block_until.is_(None), new.block_until),
                    (new.block_until.is_(None), old.block_until),
                    (new.block_until > old.block_until, new.block_until),
                    else_=old.block_until,
                ),
            },
        )
        async with self._tx() as conn:
            await conn.execute(statement)

    async def account_usage_share(self, ad_account_id: str) -> AccountUsageShare | None:
        """The shared usage of one ad account, or None when no process shared any."""
        return typing.cast(
            "AccountUsageShare | None", await self._one(account_usage, account_usage.c.ad_account_id == ad_account_id)
        )

    async def last_job_run(self, name: str) -> JobRun | None:
        """The last recorded run of job `name`, or None."""
        return typing.cast("JobRun | None", await self._one(job_runs, job_runs.c.name == name))

    async def list_job_runs(self) -> list[JobRun]:
        """The last run of every job that ever ran, by name."""
        return await self._all(select(job_runs).order_by(job_runs.c.name), job_runs)

    # -- launches --------------------------------------------------------------------------------------------

    async def start_launch(self, workspace_id: int, key: str, request: dict[str, Any]) -> Launch:
        """The launch for `key`, created (status running) if new; a rolled-back one starts again with no steps."""
        if not key or len(key) > 200:
            raise InvalidArgument("Launch key must be 1-200 characters", fix="pass the request's hash.")
        now = _iso(self._now())
        request = drop_secret_keys(request or {})
        mine = (launches.c.workspace_id == workspace_id, launches.c.key == key)
        async with self._tx(workspace_id) as conn:
            await conn.execute(
                self._insert_or_ignore(
                    launches,
                    {
                        "workspace_id": workspace_id,
                        "key": key,
                        "request": request,
                        "status": "running",
                        "steps": {},
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            )
            await conn.execute(
                update(launches)
                .where(*mine, launches.c.status == "rolled_back")
                .values(status="running", steps={}, request=request, updated_at=now)
            )
            return typing.cast("Launch", from_row(launches, (await conn.execute(select(launches).where(*mine))).one()))

    async def find_launch(self, workspace_id: int, key: str) -> Launch | None:
        """The workspace's launch for `key`, or None."""
        return typing.cast(
            "Launch | None", await self._one(launches, launches.c.workspace_id == workspace_id, launches.c.key == key)
        )

    async def get_launch(self, workspace_id: int, launch_id: int) -> Launch | None:
        """One launch of the workspace, or None (another workspace's launch is None too)."""
        return typing.cast(
            "Launch | None",
            await self._one(launches, launches.c.workspace_id == workspace_id, launches.c.id == int(launch_id)),
        )

    async def list_launches(self, workspace_id: int, limit: int = 20) -> list[Launch]:
        """The workspace's latest launches, newest first."""
        return await self._all(
            select(launches)
            .where(launches.c.workspace_id == workspace_id)
            .order_by(launches.c.id.desc())
            .limit(_limit(limit, 1000)),
            launches,
        )

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
            raise InvalidArgument(f"Step status {status!r} is not known", fix=f"use one of {', '.join(STEP_STATUSES)}.")
        mine = (launches.c.workspace_id == workspace_id, launches.c.id == int(launch_id))
        async with self._tx(workspace_id) as conn:
            row = (await conn.execute(select(launches).where(*mine).with_for_update())).first()
            if row is None:
                raise InvalidArgument(
                    f"Launch {launch_id} is not in this workspace",
                    fix="pass one of its launch ids.",
                    blame_field="launch_id",
                )
            launch: Launch = from_row(launches, row)
            steps = dict(launch.steps)
            previous = steps.pop(step, {})
            entry: dict[str, Any] = {
                "status": status,
                "object_id": object_id or previous.get("object_id"),
                "data": drop_secret_keys(data if data is not None else previous.get("data") or {}),
                "at": _iso(self._now()),
            }
            if error is not None:
                entry["error"] = drop_secret_keys(error)
            steps[step] = entry  # re-inserted last: the steps stay in the order they last ran
            await conn.execute(
                update(launches)
                .where(*mine)
                .values(
                    steps=steps, status="failed" if status == "failed" else launch.status, updated_at=_iso(self._now())
                )
            )
            return typing.cast("Launch", from_row(launches, (await conn.execute(select(launches).where(*mine))).one()))

    async def set_launch_status(self, workspace_id: int, launch_id: int, status: str) -> bool:
        """Set a launch's status (running, failed, done, rolled_back); False when it is not in this workspace."""
        if status not in LAUNCH_STATUSES:
            raise InvalidArgument(
                f"Launch status {status!r} is not known", fix=f"use one of {', '.join(LAUNCH_STATUSES)}."
            )
        async with self._tx() as conn:
            result = await conn.execute(
                update(launches)
                .where(
                    launches.c.workspace_id == workspace_id,
                    launches.c.id == launch_id,
                )
                .values(status=status, updated_at=_iso(self._now()))
            )
        return result.rowcount == 1

    # -- single-flight leases --------------------------------------------------------------------------------

    async def claim_lease(self, workspace_id: int, key: str, owner: str, seconds: float) -> Lease:
        """Take the lease on `key` for `owner` for `seconds` unless another owner holds one that has not expired.

        One atomic statement (INSERT … ON CONFLICT DO UPDATE … WHERE expired, on both engines), so two requests or two
        processes never both get it. Returns the lease as it stands afterwards: its `owner` says whether the claim won.
        """
        key, owner = _lease_names(key, owner)
        length = _lease_length(seconds)
        mine = (leases.c.workspace_id == workspace_id, leases.c.key == key)
        while True:
            now = self._now()
            async with self._tx(workspace_id) as conn:
                await conn.execute(self._claim_statement(workspace_id, key, owner, now, length))
                row = (await conn.execute(select(leases).where(*mine))).first()
            if row is not None:
                return typing.cast("Lease", from_row(leases, row))
            # The holder released it between the two statements: the key is free, so claim again.

    def _claim_statement(self, workspace_id: int, key: str, owner: str, now: datetime, length: timedelta) -> Any:
        statement = self._insert(leases).values(
            workspace_id=workspace_id,
            key=key,
            owner=owner,
            claimed_at=_lease_time(now),
            expires_at=_lease_time(now + length),
        )
        return statement.on_conflict_do_update(
            index_elements=[leases.c.workspace_id, leases.c.key],
            set_={
                leases.c.owner: statement.excluded.owner,
                leases.c.claimed_at: statement.excluded.claimed_at,
                leases.c.expires_at: statement.excluded.expires_at,
            },
            where=leases.c.expires_at <= statement.excluded.claimed_at,
        )

    async def renew_lease(self, workspace_id: int, key: str, owner: str, seconds: float) -> bool:
        """Push the lease's expiry `seconds` from now; False when `owner` no longer holds it (another took it over)."""
        key, owner = _lease_names(key, owner)
        async with self._tx() as conn:
            result = await conn.execute(
                update(leases)
                .where(
                    leases.c.workspace_id == workspace_id,
                    leases.c.key == key,
                    leases.c.owner == owner,
                )
                .values(expires_at=_lease_time(self._now() + _lease_length(seconds)))
            )
        return result.rowcount == 1

    async def release_lease(self, workspace_id: int, key: str, owner: str) -> bool:
        """Give the lease up (only its owner can); False when `owner` did not hold it."""
        key, owner = _lease_names(key, owner)
        async with self._tx() as conn:
            result = await conn.execute(
                delete(leases).where(
                    leases.c.workspace_id == workspace_id, leases.c.key == key, leases.c.owner == owner
                )
            )
        return result.rowcount == 1

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
            raise InvalidArgument(
                "Alert name must be 1-200 characters", fix="pass a short name such as 'CPA too high'."
            )
        try:
            async with self._tx(workspace_id) as conn:
                row = (
                    await conn.execute(
                        insert(alert_rules)
                        .values(
                            workspace_id=workspace_id,
                            name=name,
                            object_id=str(object_id),
                            level=level,
                            ad_account_id=ad_account_id,
                            currency=currency,
                            metric=metric,
                            operator=operator,
                            threshold=float(threshold),
                            window=window,
                            action=action,
                            scale_pct=scale_pct,
                            max_budget=max_budget,
                            cooldown_hours=float(cooldown_hours),
                            enabled=enabled,
                            created_at=_iso(self._now()),
                        )
                        .returning(*alert_rules.c)
                    )
                ).one()
        except IntegrityError as exc:
            if _violation(exc) == "unique":
                raise InvalidArgument(
                    f"An alert named {name!r} already exists",
                    fix="pick another name or delete it first.",
                    blame_field="name",
                ) from None
            raise InvalidArgument(
                f"Alert rule refused by the database ({_one_line(str(exc.orig))})",
                fix="check level, operator and action.",
            ) from None
        return typing.cast("AlertRule", from_row(alert_rules, row))

    async def get_alert_rule(self, workspace_id: int, rule_id: int) -> AlertRule | None:
        """One alert rule of the workspace, or None."""
        return typing.cast(
            "AlertRule | None",
            await self._one(alert_rules, alert_rules.c.workspace_id == workspace_id, alert_rules.c.id == int(rule_id)),
        )

    async def list_alert_rules(self, workspace_id: int, *, enabled_only: bool = False) -> list[AlertRule]:
        """The workspace's alert rules, oldest first."""
        statement = select(alert_rules).where(alert_rules.c.workspace_id == workspace_id)
        if enabled_only:
            statement = statement.where(alert_rules.c.enabled == 1)
        return await self._all(statement.order_by(alert_rules.c.id), alert_rules)

    async def delete_alert_rule(self, workspace_id: int, rule_id: int) -> bool:
        """Delete one alert rule of the workspace (its events stay, without the rule); False when it is not there."""
        async with self._tx() as conn:
            result = await conn.execute(
                delete(alert_rules).where(alert_rules.c.workspace_id == workspace_id, alert_rules.c.id == int(rule_id))
            )
        return result.rowcount == 1

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
        async with self._tx(workspace_id) as conn:
            row = (
                await conn.execute(
                    update(alert_rules)
                    .where(
                        alert_rules.c.workspace_id == workspace_id,
                        alert_rules.c.id == int(rule_id),
                    )
                    .values(last_fired_at=fired_at)
                    .returning(*alert_rules.c)
                )
            ).first()
            if row is None:
                raise InvalidArgument(
                    f"Alert rule {rule_id} is not in this workspace",
                    fix="pass one of its rule ids.",
                    blame_field="rule_id",
                )
            rule: AlertRule = from_row(alert_rules, row)
            event_row = (
                await conn.execute(
                    insert(alert_events)
                    .values(
                        workspace_id=workspace_id,
                        rule_id=rule.id,
                        rule_name=rule.name,
                        fired_at=fired_at,
                        object_id=rule.object_id,
                        value=value,
                        action=rule.action,
                        outcome=_one_line(outcome)[:MAX_ERROR_CHARS],
                        detail=drop_secret_keys(detail or {}),
                    )
                    .returning(*alert_events.c)
                )
            ).one()
        return typing.cast("AlertEvent", from_row(alert_events, event_row))

    async def list_alert_events(
        self, workspace_id: int, *, rule_id: int | None = None, limit: int = 50
    ) -> list[AlertEvent]:
        """The workspace's alert events, newest first (optionally one rule's)."""
        statement = select(alert_events).where(alert_events.c.workspace_id == workspace_id)
        if rule_id is not None:
            statement = statement.where(alert_events.c.rule_id == int(rule_id))
        return await self._all(statement.order_by(alert_events.c.id.desc()).limit(_limit(limit, 1000)), alert_events)

    # -- daily performance snapshots -------------------------------------------------------------------------

    async def upsert_snapshot(
        self, workspace_id: int, object_id: str, level: str, day: str, metrics: dict[str, Any]
    ) -> bool:
        """Keep one object's metrics for one day (replacing that day's earlier ones); True when new or changed."""
        day = _check_day(day)
        canonical = _to_json(metrics, "Snapshot metrics")
        mine = (
            perf_snapshots.c.workspace_id == workspace_id,
            perf_snapshots.c.object_id == str(object_id),
            perf_snapshots.c.day == day,
        )
        async with self._tx(workspace_id) as conn:
            row = (await conn.execute(select(perf_snapshots).where(*mine).with_for_update())).first()
            if row is not None:
                held: Snapshot = from_row(perf_snapshots, row)
                if held.level == level and _to_json(held.metrics, "Snapshot metrics") == canonical:
                    return False
            await conn.execute(
                self._upsert(
                    perf_snapshots,
                    {
                        "workspace_id": workspace_id,
                        "object_id": str(object_id),
                        "level": level,
                        "day": day,
                        "metrics": json.loads(canonical),
                        "updated_at": _iso(self._now()),
                    },
                    ("workspace_id", "object_id", "day"),
                )
            )
        return True

    async def list_snapshots(
        self,
        workspace_id: int,
        since: str,
        until: str,
        *,
        level: str | None = None,
        object_ids: list[str] | None = None,
    ) -> list[Snapshot]:
        """Snapshots with `since` <= day <= `until`, by day then object."""
        statement = select(perf_snapshots).where(
            perf_snapshots.c.workspace_id == workspace_id,
            perf_snapshots.c.day >= _check_day(since),
            perf_snapshots.c.day <= _check_day(until),
        )
        if level is not None:
            statement = statement.where(perf_snapshots.c.level == level)
        if object_ids is not None:
            if not object_ids:
                return []
            statement = statement.where(perf_snapshots.c.object_id.in_([str(i) for i in object_ids]))
        return await self._all(statement.order_by(perf_snapshots.c.day, perf_snapshots.c.object_id), perf_snapshots)

    # -- spend ledger ----------------------------------------------------------------------------------------

    async def record_spend(
        self, workspace_id: int, ad_account_id: str, day: str, *, spend_minor: int, currency: str, fee_minor: int = 0
    ) -> LedgerEntry:
        """Write (or overwrite) one ad account's spend for one day."""
        account = normalize_ad_account_id(ad_account_id)
        day = _check_day(day)
        if int(spend_minor) < 0 or int(fee_minor) < 0:
            raise InvalidArgument("Spend and fee cannot be negative", fix="pass amounts in minor units, 0 or more.")
        async with self._tx(workspace_id) as conn:
            await conn.execute(
                self._upsert(
                    spend_ledger,
                    {
                        "workspace_id": workspace_id,
                        "ad_account_id": account,
                        "day": day,
                        "spend_minor": int(spend_minor),
                        "currency": str(currency).upper(),
                        "fee_minor": int(fee_minor),
                        "updated_at": _iso(self._now()),
                    },
                    ("workspace_id", "ad_account_id", "day"),
                )
            )
            row = (
                await conn.execute(
                    select(spend_ledger).where(
                        spend_ledger.c.workspace_id == workspace_id,
                        spend_ledger.c.ad_account_id == account,
                        spend_ledger.c.day == day,
                    )
                )
            ).one()
        return typing.cast("LedgerEntry", from_row(spend_ledger, row))

    async def list_spend(
        self, workspace_id: int, since: str, until: str, *, ad_account_id: str | None = None
    ) -> list[LedgerEntry]:
        """Ledger entries with `since` <= day <= `until`, by day then account."""
        statement = select(spend_ledger).where(
            spend_ledger.c.workspace_id == workspace_id,
            spend_ledger.c.day >= _check_day(since),
            spend_ledger.c.day <= _check_day(until),
        )
        if ad_account_id is not None:
            statement = statement.where(spend_ledger.c.ad_account_id == normalize_ad_account_id(ad_account_id))
        return await self._all(statement.order_by(spend_ledger.c.day, spend_ledger.c.ad_account_id), spend_ledger)

    # -- billing pauses --------------------------------------------------------------------------------------

    async def add_billing_pause(
        self, workspace_id: int, ad_account_id: str, object_ids: list[str], reason: str
    ) -> BillingPause:
        """Record exactly which objects were paused because the account's billing failed."""
        account = normalize_ad_account_id(ad_account_id)
        async with self._tx(workspace_id) as conn:
            row = (
                await conn.execute(
                    insert(billing_pauses)
                    .values(
                        workspace_id=workspace_id,
                        ad_account_id=account,
                        object_ids=[str(i) for i in object_ids],
                        reason=_one_line(reason or "billing failed")[:MAX_ERROR_CHARS],
                        created_at=_iso(self._now()),
                    )
                    .returning(*billing_pauses.c)
                )
            ).one()
        return typing.cast("BillingPause", from_row(billing_pauses, row))

    async def open_billing_pauses(self, workspace_id: int, ad_account_id: str | None = None) -> list[BillingPause]:
        """The billing pauses not resumed yet, oldest first (optionally one account's)."""
        statement = select(billing_pauses).where(
            billing_pauses.c.workspace_id == workspace_id, billing_pauses.c.resumed_at.is_(None)
        )
        if ad_account_id is not None:
            statement = statement.where(billing_pauses.c.ad_account_id == normalize_ad_account_id(ad_account_id))
        return await self._all(statement.order_by(billing_pauses.c.id), billing_pauses)

    async def mark_billing_resumed(self, workspace_id: int, pause_id: int) -> bool:
        """Mark a billing pause resumed; False when it is not open in this workspace."""
        async with self._tx() as conn:
            result = await conn.execute(
                update(billing_pauses)
                .where(
                    billing_pauses.c.workspace_id == workspace_id,
                    billing_pauses.c.id == int(pause_id),
                    billing_pauses.c.resumed_at.is_(None),
                )
                .values(resumed_at=_iso(self._now()))
            )
        return result.rowcount == 1

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
            raise InvalidArgument("Experiment key must be 1-200 characters", fix="pass the plan's hash.")
        name = _one_line(name or "")
        if not name or len(name) > 200:
            raise InvalidArgument(
                "Experiment name must be 1-200 characters", fix="pass a short name such as 'Headline test'."
            )
        if not isinstance(plan, dict):
            raise InvalidArgument("Experiment plan must be an object", fix="pass the plan as a dict.")
        started, ends = _check_time(started_at, "started_at"), _check_time(ends_at, "ends_at")
        if ends <= started:
            raise InvalidArgument(
                f"Experiment ends_at {ends} is not after started_at {started}", fix="pass a later ends_at."
            )
        values = {
            "workspace_id": workspace_id,
            "key": key,
            "name": name,
            "plan": drop_secret_keys(plan),
            "status": _check_experiment_status(status),
            "ad_account_id": normalize_ad_account_id(ad_account_id),
            "currency": _check_currency(currency),
            "variants": _check_variants(variants),
            "study_id": _optional_text(study_id, "study_id"),
            "winner": _optional_text(winner, "winner"),
            "outcome": drop_secret_keys(outcome or {}),
            "started_at": started,
            "ends_at": ends,
            "last_scaled_at": _check_time(last_scaled_at, "last_scaled_at") if last_scaled_at is not None else None,
            "created_at": _iso(self._now()),
            "updated_at": _iso(self._now()),
        }
        existing = await self._experiment_conflict(workspace_id, key, name)
        if existing is not None:
            raise existing
        try:
            async with self._tx(workspace_id) as conn:
                row = (await conn.execute(insert(experiments).values(**values).returning(*experiments.c))).one()
        except IntegrityError as exc:
            if _violation(exc) == "unique":  # another writer took the key or name between the check and the insert
                raise (
                    await self._experiment_conflict(workspace_id, key, name)
                    or InvalidArgument(
                        f"Experiment {name!r} already exists", fix="pick another name.", blame_field="name"
                    )
                ) from None
            raise InvalidArgument(
                f"Experiment refused by the database ({_one_line(str(exc.orig))})", fix="check status and variants."
            ) from None
        return typing.cast("Experiment", from_row(experiments, row))

    async def _experiment_conflict(self, workspace_id: int, key: str, name: str) -> InvalidArgument | None:
        """The refusal for a key or name already used in the workspace, naming the experiment that has it."""
        same_key = await self.find_experiment(workspace_id, key)
        if same_key is not None:
            return InvalidArgument(
                f"Experiment {same_key.id} ({same_key.name!r}, {same_key.status}) was already started from this plan",
                fix=f"check experiment {same_key.id} instead, or change the plan to start a new one.",
                blame_field="name",
            )
        same_name = await self._one(experiments, experiments.c.workspace_id == workspace_id, experiments.c.name == name)
        if same_name is not None:
            return InvalidArgument(
                f"An experiment named {name!r} already exists (experiment {same_name.id}, {same_name.status})",
                fix=f"pick another name, or check experiment {same_name.id}.",
                blame_field="name",
            )
        return None

    async def find_experiment(self, workspace_id: int, key: str) -> Experiment | None:
        """The workspace's experiment started from the plan with this key, or None."""
        return typing.cast(
            "Experiment | None",
            await self._one(experiments, experiments.c.workspace_id == workspace_id, experiments.c.key == str(key)),
        )

    async def get_experiment(self, workspace_id: int, experiment_id: int) -> Experiment | None:
        """One experiment of the workspace, or None (another workspace's experiment is None too)."""
        return typing.cast(
            "Experiment | None",
            await self._one(
                experiments, experiments.c.workspace_id == workspace_id, experiments.c.id == int(experiment_id)
            ),
        )

    async def list_experiments(self, workspace_id: int, status: str | None = None) -> list[Experiment]:
        """The workspace's experiments, newest first (only those with `status` when given)."""
        statement = select(experiments).where(experiments.c.workspace_id == workspace_id)
        if status is not None:
            statement = statement.where(experiments.c.status == _check_experiment_status(status))
        return await self._all(statement.order_by(experiments.c.id.desc()), experiments)

    async def update_experiment(self, workspace_id: int, experiment_id: int, **changes: Any) -> Experiment | None:
        """Change some of status, plan, variants, study_id, winner, outcome, last_scaled_at, started_at and ends_at
        (an experiment launched PAUSED starts its clock when it is switched on); None when the experiment is not in
        this workspace."""
        unknown = sorted(set(changes) - set(EXPERIMENT_UPDATABLE))
        if unknown:
            raise InvalidArgument(
                f"Experiment field {', '.join(unknown)} cannot be changed",
                fix=f"change only {', '.join(EXPERIMENT_UPDATABLE)}.",
            )
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "status":
                values[name] = _check_experiment_status(value)
            elif name == "variants":
                values[name] = _check_variants(value)
            elif name in ("outcome", "plan"):
                values[name] = drop_secret_keys(value or {})
                _to_json(values[name], f"Experiment {name}")
            elif name in ("study_id", "winner"):
                values[name] = _optional_text(value, name)
            elif name == "last_scaled_at":
                values[name] = _check_time(value, name) if value is not None else None
            else:  # started_at, ends_at
                values[name] = _check_time(value, name)
        mine = (experiments.c.workspace_id == workspace_id, experiments.c.id == int(experiment_id))
        async with self._tx(workspace_id) as conn:
            row = (await conn.execute(select(experiments).where(*mine).with_for_update())).first()
            if row is None:
                return None
            current: Experiment = from_row(experiments, row)
            started, ends = values.get("started_at", current.started_at), values.get("ends_at", current.ends_at)
            if ends <= started:
                raise InvalidArgument(
                    f"Experiment ends_at {ends} is not after started_at {started}", fix="pass a later ends_at."
                )
            row = (
                await conn.execute(
                    update(experiments)
                    .where(*mine)
                    .values(**values, updated_at=_iso(self._now()))
                    .returning(*experiments.c)
                )
            ).one()
        return typing.cast("Experiment | None", from_row(experiments, row))

    async def add_experiment_event(
        self,
        workspace_id: int,
        experiment_id: int,
        action: str,
        detail: dict[str, Any] | None = None,
        *,
        at: datetime | str,
    ) -> ExperimentEntry:
        """Record one thing an experiment did at `at` (launched, variant_stopped, winner, scaled, ...)."""
        action = _one_line(action or "")
        if not action or len(action) > 100:
            raise InvalidArgument("Experiment event action must be 1-100 characters", fix="pass e.g. 'winner'.")
        when = _check_time(at, "at")
        async with self._tx(workspace_id) as conn:
            found = await conn.scalar(
                select(experiments.c.id).where(
                    experiments.c.workspace_id == workspace_id, experiments.c.id == int(experiment_id)
                )
            )
            if found is None:
                raise InvalidArgument(
                    f"Experiment {experiment_id} is not in this workspace",
                    fix="pass one of its experiment ids.",
                    blame_field="experiment_id",
                )
            row = (
                await conn.execute(
                    insert(experiment_events)
                    .values(
                        workspace_id=workspace_id,
                        experiment_id=found,
                        at=when,
                        action=action,
                        detail=drop_secret_keys(detail or {}),
                    )
                    .returning(*experiment_events.c)
                )
            ).one()
        return typing.cast("ExperimentEntry", from_row(experiment_events, row))

    async def list_experiment_events(self, workspace_id: int, experiment_id: int) -> list[ExperimentEntry]:
        """One experiment's events, oldest first (none for another workspace's experiment)."""
        return await self._all(
            select(experiment_events)
            .where(
                experiment_events.c.workspace_id == workspace_id,
                experiment_events.c.experiment_id == int(experiment_id),
            )
            .order_by(experiment_events.c.id),
            experiment_events,
        )

    def _encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "The saved token cannot be decrypted with the current secret key",
                fix="set ADMONSTER_SECRET_KEY "
                f"(or restore {KEY_FILENAME} in ADMONSTER_HOME) to the key used when it was saved, "
                "or run /connect to save a new token.",
            ) from None


# ---------------------------------------------------------------------------------------------------------------
# WorkspaceState: the store bound to one workspace, as the ops' capabilities (fb_utils Protocols) see it
# ---------------------------------------------------------------------------------------------------------------

RecordT = typing.TypeVar("RecordT")


def as_record(record: type[RecordT], row: Any) -> RecordT:
    """An fb_utils record from a stored row: its fields by name (the store's record has the same names and more)."""
    return record(**{spec.name: getattr(row, spec.name) for spec in fields(record)})  # type: ignore[arg-type]


class WorkspaceState:
    """The store bound to one workspace: ``ctx.journal`` (fb_utils.LaunchJournal: launches and their single-flight
    leases), ``ctx.records`` (InsightsRecords: alert rules, snapshots, spend ledger, billing pauses) and
    ``ctx.experiments`` (ExperimentRecords). Rows come back as the fb_utils records (``as_record``: same field names);
    refusals are the product's ValidationError (InvalidArgument) with ``fix`` and ``blame_field``."""

    def __init__(self, store: Store, workspace_id: int, policy: SingleFlightPolicy | None = None) -> None:
        self.store = store
        self.workspace_id = workspace_id
        self.policy = policy or SingleFlightPolicy()

    # -- LaunchJournal ------------------------------------------------------------------------------------------

    async def find(self, key: str) -> LaunchRecord | None:
        row = await self.store.find_launch(self.workspace_id, key)
        return None if row is None else as_record(LaunchRecord, row)

    async def start(self, key: str, request: dict[str, Any]) -> LaunchRecord:
        return as_record(LaunchRecord, await self.store.start_launch(self.workspace_id, key, request))

    async def step_sending(self, launch_id: int, step: str, data: dict[str, Any]) -> None:
        await self.store.record_launch_step(self.workspace_id, launch_id, step, status="sending", data=data)

    async def step_done(self, launch_id: int, step: str, object_id: str | None, data: dict[str, Any]) -> None:
        await self.store.record_launch_step(
            self.workspace_id, launch_id, step, status="done", object_id=object_id, data=data
        )

    async def step_failed(self, launch_id: int, step: str, error: dict[str, Any]) -> None:
        await self.store.record_launch_step(self.workspace_id, launch_id, step, status="failed", error=error)

    async def step_deleted(self, launch_id: int, step: str) -> None:
        await self.store.record_launch_step(self.workspace_id, launch_id, step, status="deleted")

    async def finish(self, launch_id: int, status: str) -> None:
        await self.store.set_launch_status(self.workspace_id, launch_id, status)

    async def get(self, launch_id: int) -> LaunchRecord | None:
        row = await self.store.get_launch(self.workspace_id, launch_id)
        return None if row is None else as_record(LaunchRecord, row)

    async def claim(self, key: str, owner: str) -> LeaseHolder:
        return as_record(
            LeaseHolder, await self.store.claim_lease(self.workspace_id, key, owner, self.policy.lease_seconds)
        )

    async def renew(self, key: str, owner: str) -> bool:
        return await self.store.renew_lease(self.workspace_id, key, owner, self.policy.lease_seconds)

    async def release(self, key: str, owner: str) -> None:
        await self.store.release_lease(self.workspace_id, key, owner)

    # -- InsightsRecords ----------------------------------------------------------------------------------------

    async def setting(self, key: str, default: Any = None) -> Any:
        return await self.store.get_setting(self.workspace_id, key, default)

    async def add_alert(self, rule: AlertRuleRecord) -> AlertRuleRecord:
        given = {k: v for k, v in vars(rule).items() if k not in ("id", "last_fired_at")}
        return as_record(AlertRuleRecord, await self.store.add_alert_rule(self.workspace_id, **given))

    async def alerts(self, *, enabled_only: bool = False) -> list[AlertRuleRecord]:
        return [
            as_record(AlertRuleRecord, row)
            for row in await self.store.list_alert_rules(self.workspace_id, enabled_only=enabled_only)
        ]

    async def delete_alert(self, rule_id: int) -> AlertRuleRecord | None:
        row = await self.store.get_alert_rule(self.workspace_id, rule_id)
        if row is None or not await self.store.delete_alert_rule(self.workspace_id, rule_id):
            return None
        return as_record(AlertRuleRecord, row)

    async def alert_fired(
        self, rule_id: int, at: datetime, value: float | None, outcome: str, detail: dict[str, Any]
    ) -> None:
        await self.store.record_alert_fired(
            self.workspace_id, rule_id, fired_at=at, value=value, outcome=outcome, detail=detail
        )

    async def put_snapshot(self, snapshot: SnapshotRecord) -> bool:
        return await self.store.upsert_snapshot(
            self.workspace_id, snapshot.object_id, snapshot.level, snapshot.day, snapshot.metrics
        )

    async def snapshots(self, since: str, until: str, *, level: str | None = None) -> list[SnapshotRecord]:
        return [
            as_record(SnapshotRecord, row)
            for row in await self.store.list_snapshots(self.workspace_id, since, until, level=level)
        ]

    async def put_spend(self, entry: SpendRecord) -> None:
        await self.store.record_spend(
            self.workspace_id,
            entry.ad_account_id,
            entry.day,
            spend_minor=entry.spend_minor,
            currency=entry.currency,
            fee_minor=entry.fee_minor,
        )

    async def spend(self, since: str, until: str, *, ad_account_id: str | None = None) -> list[SpendRecord]:
        return [
            as_record(SpendRecord, row)
            for row in await self.store.list_spend(self.workspace_id, since, until, ad_account_id=ad_account_id)
        ]

    async def open_billing_pauses(self, ad_account_id: str) -> list[BillingPauseRecord]:
        return [
            as_record(BillingPauseRecord, row)
            for row in await self.store.open_billing_pauses(self.workspace_id, ad_account_id)
        ]

    async def add_billing_pause(self, ad_account_id: str, object_ids: list[str], reason: str) -> BillingPauseRecord:
        return as_record(
            BillingPauseRecord, await self.store.add_billing_pause(self.workspace_id, ad_account_id, object_ids, reason)
        )

    async def billing_resumed(self, pause_id: int) -> None:
        await self.store.mark_billing_resumed(self.workspace_id, pause_id)

    # -- ExperimentRecords --------------------------------------------------------------------------------------

    async def find_experiment(self, key: str) -> ExperimentRecord | None:
        row = await self.store.find_experiment(self.workspace_id, key)
        return None if row is None else as_record(ExperimentRecord, row)

    async def add_experiment(self, record: ExperimentRecord) -> ExperimentRecord:
        given = {k: v for k, v in vars(record).items() if k not in ("id", "created_at", "updated_at")}
        return as_record(ExperimentRecord, await self.store.add_experiment(self.workspace_id, **given))

    async def get_experiment(self, experiment_id: int) -> ExperimentRecord | None:
        row = await self.store.get_experiment(self.workspace_id, experiment_id)
        return None if row is None else as_record(ExperimentRecord, row)

    async def experiments(self, *, status: str | None = None) -> list[ExperimentRecord]:
        return [
            as_record(ExperimentRecord, row) for row in await self.store.list_experiments(self.workspace_id, status)
        ]

    async def update_experiment(self, record: ExperimentRecord) -> None:
        changes = {name: getattr(record, name) for name in EXPERIMENT_UPDATABLE}
        if await self.store.update_experiment(self.workspace_id, record.id, **changes) is None:
            raise InvalidArgument(
                f"Experiment {record.id} is not in this workspace",
                fix="pass one of its experiment ids.",
                blame_field="experiment_id",
            )

    async def add_experiment_event(
        self, experiment_id: int, action: str, detail: dict[str, Any], at: datetime
    ) -> ExperimentEvent:
        return as_record(
            ExperimentEvent,
            await self.store.add_experiment_event(self.workspace_id, experiment_id, action, detail, at=at),
        )

    async def experiment_events(self, experiment_id: int) -> list[ExperimentEvent]:
        return [
            as_record(ExperimentEvent, row)
            for row in await self.store.list_experiment_events(self.workspace_id, experiment_id)
        ]


def _limit(limit: int, most: int = 1000) -> int:
    return max(1, min(int(limit), most))


def _legacy_version(connection: SyncConnection) -> int | None:
    """The legacy schema_version of a database Alembic has not stamped yet; None when it has no such table."""
    from sqlalchemy import inspect

    if not inspect(connection).has_table("schema_version"):
        return None
    return int(connection.execute(sql_text("SELECT COALESCE(MAX(version), 0) FROM schema_version")).scalar_one())


def _bring_legacy_home(db_path: str) -> None:
    """A SQLite home made before Alembic: refuse one newer than the frozen scripts, bring an older one to their last
    (the store then stamps it with the baseline revision, which is that same schema)."""
    import sqlite3

    if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
        return
    try:
        with contextlib.closing(sqlite3.connect(db_path, timeout=5)) as db:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = legacy_schema_version(db) if "alembic_version" not in names else None
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{db_path} is not an Ad Monster database ({exc})",
            fix="point ADMONSTER_HOME elsewhere or restore a backup.",
        ) from None
    if version is None or version == LEGACY_VERSION:
        return
    if version > LEGACY_VERSION:
        raise StoreError(
            f"Database {db_path} has schema version {version}, newer than this Ad Monster knows ({LEGACY_VERSION})",
            fix="upgrade Ad Monster or point ADMONSTER_HOME elsewhere.",
        )
    try:
        upgrade_legacy(db_path)
    except LegacyMigrationError as exc:
        raise StoreError(f"{exc}", fix=f"restore a backup of {db_path}.") from None


def head_revision() -> str:
    """The newest schema revision this code knows (the last Alembic revision in admonster_migrations)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return str(ScriptDirectory.from_config(config).get_current_head())


def guardrails_key(ad_account_id: str | int) -> str:
    """The setting key holding one ad account's guardrails, e.g. 'guardrails:act_123'."""
    return f"{GUARDRAILS_KEY}:{normalize_ad_account_id(ad_account_id)}"


def validate_guardrails(values: dict[str, Any]) -> dict[str, Any]:
    """Check guardrail names and values: money in minor units (int >= 0 or None), a known confirm_policy."""
    if not isinstance(values, dict):
        raise InvalidArgument("Guardrails must be an object", fix='pass e.g. {"max_daily_budget": 10000}.')
    unknown = sorted(set(values) - set(DEFAULT_GUARDRAILS))
    if unknown:
        raise InvalidArgument(f"Unknown guardrail {', '.join(unknown)}", fix=f"use {', '.join(DEFAULT_GUARDRAILS)}.")
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
        raise InvalidArgument(
            f"Thread id {thread_id!r} must be 1 to {MAX_THREAD_ID_CHARS} characters", fix='e.g. thread_id="terminal".'
        )
    return text


def _chat_row(message: dict[str, Any]) -> dict[str, Any]:
    role = message.get("role")
    if role not in CHAT_ROLES:
        raise InvalidArgument(f"Chat message role {role!r} is not known", fix=f"use {', '.join(CHAT_ROLES)}.")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        content = json.dumps(content, default=str)
    return {
        "role": role,
        "content": content,
        "tool_calls": message.get("tool_calls") or None,
        "tool_call_id": message.get("tool_call_id"),
        "name": message.get("name"),
    }


def _chat_message(stored: ChatMessage) -> dict[str, Any]:
    message: dict[str, Any] = {"role": stored.role, "content": stored.content}
    if stored.tool_calls:
        message["tool_calls"] = stored.tool_calls
    if stored.tool_call_id:
        message["tool_call_id"] = stored.tool_call_id
    if stored.name:
        message["name"] = stored.name
    return message


def _check_guardrail_value(name: str, value: Any) -> None:
    if name == "confirm_policy":
        if value not in CONFIRM_POLICIES:
            raise InvalidArgument(f"confirm_policy {value!r} is not known", fix=f"use {', '.join(CONFIRM_POLICIES)}.")
        return
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(
            f"{name} must be a whole number >= 0 (money in minor units of the account currency) or null",
            fix=f"e.g. {name}=10000 for $100.00.",
        )


def _check_selection_kind(kind: str) -> None:
    if kind not in SELECTION_KINDS:
        raise InvalidArgument(f"Selection kind {kind!r} is not known", fix=f"use {', '.join(SELECTION_KINDS)}.")


def _clean_confirmation_id(confirmation_id: str) -> str:
    return str(confirmation_id or "").strip().lower()


def _clean_tags(tags: list[dict[str, Any]]) -> list[dict[str, str]]:
    """An audit entry's lookups as stored: strings only, each once, in the order they came."""
    unique: dict[str, dict[str, str]] = {}
    for tag in tags:
        text = {k: str(v) for k, v in tag.items()}
        unique.setdefault(json.dumps(text, sort_keys=True), text)
    return list(unique.values())


def _lease_names(key: str, owner: str) -> tuple[str, str]:
    key, owner = str(key or "").strip(), str(owner or "").strip()
    if not key or len(key) > 200 or not owner or len(owner) > 200:
        raise InvalidArgument(
            "Lease key and owner must be 1-200 characters", fix="pass the launch key and a request id."
        )
    return key, owner


def _lease_length(seconds: float) -> timedelta:
    if not 0 < float(seconds) <= 86400:
        raise InvalidArgument(f"Lease length {seconds!r} is not 0-86400 seconds", fix="pass e.g. 30.")
    return timedelta(seconds=float(seconds))


def _lease_time(moment: datetime) -> str:
    """Lease times to the millisecond, in one format, so SQL compares them as text."""
    return _as_utc(moment).isoformat(timespec="milliseconds")


def _check_day(day: Any) -> str:
    text = day.isoformat() if hasattr(day, "isoformat") else str(day)
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise InvalidArgument(f"{day!r} is not a day", fix="pass YYYY-MM-DD, e.g. 2026-03-01.") from None
    return text


def _check_experiment_status(status: Any) -> str:
    if status not in EXPERIMENT_STATUSES:
        raise InvalidArgument(
            f"Experiment status {status!r} is not known",
            fix=f"use one of {', '.join(EXPERIMENT_STATUSES)}.",
            blame_field="status",
        )
    return str(status)


def _check_variants(variants: Any) -> list[dict[str, Any]]:
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise InvalidArgument("Experiment variants must be a list of objects", fix="pass one dict per variant.")
    for variant in variants:
        state = variant.get("state", "running")
        if state not in VARIANT_STATES:
            raise InvalidArgument(
                f"Variant {variant.get('name')!r} has state {state!r}", fix=f"use one of {', '.join(VARIANT_STATES)}."
            )
    cleaned = drop_secret_keys(variants)
    _to_json(cleaned, "Experiment variants")
    return typing.cast("list[dict[str, Any]]", cleaned)


def _check_currency(currency: Any) -> str:
    text = str(currency or "").strip().upper()
    if len(text) != 3 or not text.isalpha():
        raise InvalidArgument(
            f"Currency {currency!r} is not an ISO 4217 code", fix="pass the ad account's currency, e.g. USD."
        )
    return text


def _optional_text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text or len(text) > 200:
        raise InvalidArgument(f"{what} must be 1-200 characters or null", fix="pass the id or name, or leave it out.")
    return text


def _check_time(value: datetime | str | None, what: str) -> str:
    """A datetime or ISO-8601 string as the store's ISO UTC text (a time without a zone is UTC)."""
    if isinstance(value, datetime):
        return _iso(value)
    try:
        return _iso(datetime.fromisoformat(str(value)))
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"{what} {value!r} is not a time", fix="pass a datetime or ISO-8601 text, e.g. 2026-03-01T12:00:00+00:00."
        ) from None


async def open_store(settings: Any, *, clock: Clock | None = None) -> Store:
    """Open the store described by a Settings object: its `database_url` (a server) or the SQLite file in its `home`,
    with its `secret_key` (or the key file in `home`)."""
    url = _secret_text(getattr(settings, "database_url", None) or "")
    if url:
        key_file = None if settings.secret_key else Path(settings.home) / KEY_FILENAME
        return await Store.open(url, secret_key=settings.secret_key, key_file=key_file, clock=clock)
    return await Store.open(Path(settings.home) / DB_FILENAME, secret_key=settings.secret_key, clock=clock)

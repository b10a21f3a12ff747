"""Ad Monster configuration: one `Settings` object read from ADMONSTER_* environment variables and `.env`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fb_utils import DEFAULT_API_VERSION

ENV_PREFIX = "ADMONSTER_"
SANDBOX = "sandbox"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
API_VERSION_PATTERN = re.compile(r"^v\d+\.\d+$")

FIX_HINTS: dict[str, str] = {
    "home": "set ADMONSTER_HOME to a folder path, e.g. ~/.admonster",
    "graph_url": "set ADMONSTER_GRAPH_URL to 'sandbox' or a URL such as https://graph.facebook.com",
    "api_version": f"set ADMONSTER_API_VERSION to a Graph API version such as {DEFAULT_API_VERSION} (the newest)",
    "secret_key": (
        "set ADMONSTER_SECRET_KEY to a Fernet key made with: python -c "
        '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
    ),
    "database_url": (
        "set ADMONSTER_DATABASE_URL to postgresql+asyncpg://user:password@host:5432/dbname, or unset it "
        "to keep the store in the SQLite file in ADMONSTER_HOME"
    ),
    "log_level": f"set ADMONSTER_LOG_LEVEL to one of {', '.join(LOG_LEVELS)}",
    "workspace": "set ADMONSTER_WORKSPACE to a non-empty name, e.g. default",
    "llm_base_url": "set ADMONSTER_LLM_BASE_URL to an OpenAI-compatible URL such as http://localhost:11434/v1",
    "smtp_host": "set ADMONSTER_SMTP_HOST to a mail server host name such as smtp.example.com (no scheme, no port)",
    "smtp_port": "set ADMONSTER_SMTP_PORT to a port number such as 587 (STARTTLS) or 25",
    "smtp_username": "set ADMONSTER_SMTP_USERNAME to the SMTP login, or leave it unset",
    "smtp_password": "set ADMONSTER_SMTP_PASSWORD together with ADMONSTER_SMTP_USERNAME, or unset both",
    "smtp_from": "set ADMONSTER_SMTP_FROM to a sender address such as admonster@example.com",
    "smtp_starttls": "set ADMONSTER_SMTP_STARTTLS to true or false",
    "notify_email": "set ADMONSTER_NOTIFY_EMAIL to an address such as ops@example.com (several: comma-separated)",
    "notify_webhook_url": "set ADMONSTER_NOTIFY_WEBHOOK_URL to an http(s) URL such as a Slack incoming-webhook URL",
    "public_url": "set ADMONSTER_PUBLIC_URL to the http(s) address where `admonster serve` is reached",
    "serve_host": "set ADMONSTER_SERVE_HOST to an interface address such as 127.0.0.1 or 0.0.0.0",
    "serve_port": "set ADMONSTER_SERVE_PORT to a port number between 0 and 65535",
    "state_secret": "set ADMONSTER_STATE_SECRET to a random string of at least 16 characters, or leave it unset",
    "timezone": "set ADMONSTER_TIMEZONE to an IANA time zone such as Europe/Berlin, or leave it unset",
    "sandbox_clock_start": "set ADMONSTER_SANDBOX_CLOCK_START to a time such as 2026-03-02T20:00:00Z, or leave it unset",
    "graph_timeout": "set ADMONSTER_GRAPH_TIMEOUT to a number of seconds between 1 and 600, e.g. 60",
    "write_settle_seconds": "set ADMONSTER_WRITE_SETTLE_SECONDS to a number of seconds between 0 and 3600, e.g. 90",
}
EMAIL_PATTERN = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$|^[^@\s,;<>]+@localhost$")
HTTP_URL_PATTERN = re.compile(r"^https?://[^/\s?#]+")


class ConfigError(Exception):
    """A configuration value is wrong; the message is one line naming the variable and the fix."""


def listening_url(host: str, port: int) -> str:
    """The address a browser on this machine reaches a server listening on host:port by (loopback for a wildcard)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::", "[::]") else host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{port}"


class Settings(BaseSettings):
    """Every setting of Ad Monster, read from ADMONSTER_* environment variables and a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    _public_url_derived: bool = PrivateAttr(False)

    home: Path = Field(Path(".admonster"), description="Folder for Ad Monster's database, key file and sandbox data.")
    graph_url: str = Field(
        SANDBOX,
        description="'sandbox' starts the embedded sandbox; a URL such as https://graph.facebook.com goes live.",
    )
    api_version: str = Field(
        DEFAULT_API_VERSION, description=f"Graph API version used in request paths, e.g. {DEFAULT_API_VERSION}."
    )
    access_token: SecretStr | None = Field(
        None, description="Facebook access token (live mode) used until /connect saves one."
    )
    app_id: str | None = Field(None, description="Facebook app id, for OAuth and token exchange.")
    app_secret: SecretStr | None = Field(
        None, description="Facebook app secret, signs every call with appsecret_proof."
    )
    secret_key: SecretStr | None = Field(
        None, description="Fernet key that encrypts saved tokens; default: a generated <home>/secret.key file."
    )
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL database for the store (replicas share it), e.g. "
        "postgresql+asyncpg://user:password@host:5432/admonster; default: the SQLite file <home>/admonster.db. "
        "Its password is never shown or logged.",
    )
    sandbox_db: Path | None = Field(None, description="SQLite file of the embedded sandbox; default <home>/sandbox.db.")
    sandbox_clock_start: datetime | None = Field(
        None,
        description="Where a new embedded sandbox's simulated clock starts (ISO 8601, UTC unless it says); "
        "default: now. A sandbox that already has state keeps its own clock.",
    )
    graph_timeout: float = Field(
        60.0, ge=1, le=600, description="Seconds a Graph API request may take before the client gives up on its answer."
    )
    write_settle_seconds: float = Field(
        90.0,
        ge=0,
        le=3600,
        description="After a create's answer is lost, how long (seconds) to keep looking for the object before calling it "
        "absent; Facebook may finish a request after the client gave up (docs/exactly-once.md).",
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible LLM endpoint (OpenAI, Ollama, vLLM, llama.cpp)."
    )
    llm_model: str | None = Field(None, description="LLM model name used for chat, e.g. gpt-4o-mini or llama3.1.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the LLM endpoint, if it needs one.")
    llm_max_tool_rounds: int = Field(
        8, ge=1, le=100, description="Most tool-call rounds the LLM may take to answer one message."
    )
    log_level: str = Field("WARNING", description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    workspace: str = Field("default", description="Workspace used by the terminal chat and slash-commands.")
    smtp_host: str | None = Field(None, description="SMTP server for email notifications; unset: no email is sent.")
    smtp_port: int = Field(587, description="SMTP server port (587 for STARTTLS submission, 25 for plain relay).")
    smtp_username: str | None = Field(None, description="SMTP login name, if the server requires authentication.")
    smtp_password: SecretStr | None = Field(
        None, description="SMTP password (used only to log in; never logged or stored)."
    )
    smtp_from: str = Field("admonster@localhost", description="Sender address (From:) of notification emails.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS before logging in.")
    notify_email: str | None = Field(
        None,
        description="Default recipient(s) of email notifications, comma-separated; a workspace's notify_email "
        "setting overrides it ('' turns email off for that workspace).",
    )
    notify_webhook_url: str | None = Field(
        None,
        description="Default webhook (http/https; Slack-compatible JSON) for notifications; a workspace's "
        "notify_webhook_url setting overrides it ('' turns it off).",
    )
    public_url: str = Field(
        "http://127.0.0.1:8787",
        description="Address where `admonster serve` is reached; the OAuth callback URL and MCP's resource metadata are "
        "built on it. Unset: where `serve` listens (its host, loopback for 0.0.0.0, and its port).",
    )
    serve_host: str = Field("127.0.0.1", description="Interface `admonster serve` listens on.")
    serve_port: int = Field(8787, description="Port `admonster serve` listens on (0 picks a free one).")
    state_secret: SecretStr | None = Field(
        None,
        description="HMAC key that signs OAuth state; default: derived from the secret key (file).",
    )
    timezone: str | None = Field(
        None,
        description="IANA time zone for scheduled jobs (token_check runs daily at 03:00); default: this machine's.",
    )
    launch_lease_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="How long a running launch's lock lasts unless renewed (it is renewed every third of this): a launch "
        "whose process was killed can be taken over this long after.",
    )
    launch_wait_seconds: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="How long the same launch asked again while it runs waits for the first before saying it is still running.",
    )

    @field_validator("home", "sandbox_db", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("sandbox_clock_start", mode="after")
    @classmethod
    def _utc_unless_said(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @field_validator("graph_url", mode="after")
    @classmethod
    def _check_graph_url(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == SANDBOX:
            return SANDBOX
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be 'sandbox' or an http(s) URL")
        return value.rstrip("/")

    @field_validator("api_version", mode="after")
    @classmethod
    def _check_api_version(cls, value: str) -> str:
        value = value.strip()
        if not API_VERSION_PATTERN.match(value):
            raise ValueError(f"must look like {DEFAULT_API_VERSION}")
        return value

    @field_validator("secret_key", mode="after")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from cryptography.fernet import Fernet  # imported lazily: keeps CLI start-up fast

        try:
            Fernet(value.get_secret_value().strip().encode())
        except (ValueError, TypeError):
            raise ValueError("is not a valid Fernet key (32 url-safe base64-encoded bytes)") from None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("database_url", mode="after")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from sqlalchemy.engine import make_url  # lazily: keeps CLI start-up fast
        from sqlalchemy.exc import ArgumentError

        try:
            backend = make_url(value.get_secret_value().strip()).get_backend_name()
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        if backend != "postgresql":
            raise ValueError(f"names a {backend} database; only PostgreSQL is supported on a server")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("log_level", mode="after")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("workspace", mode="after")
    @classmethod
    def _check_workspace(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("llm_base_url", mode="after")
    @classmethod
    def _check_llm_base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.match(r"^https?://[^/\s]+", value.strip()):
            raise ValueError("must be an http(s) URL")
        return value.strip().rstrip("/")

    @field_validator("smtp_host", mode="after")
    @classmethod
    def _check_smtp_host(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", value) or "://" in value:
            raise ValueError("must be a host name such as smtp.example.com")
        return value

    @field_validator("smtp_port", mode="after")
    @classmethod
    def _check_smtp_port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be between 1 and 65535")
        return value

    @field_validator("serve_port", mode="after")
    @classmethod
    def _check_serve_port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError("must be between 0 and 65535")
        return value

    @field_validator("smtp_username", mode="after")
    @classmethod
    def _check_smtp_username(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("smtp_password", mode="after")
    @classmethod
    def _check_smtp_password(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not info.data.get("smtp_username"):
            raise ValueError("is set but ADMONSTER_SMTP_USERNAME is not")
        return value

    @field_validator("smtp_from", mode="after")
    @classmethod
    def _check_smtp_from(cls, value: str) -> str:
        value = value.strip()
        if not EMAIL_PATTERN.match(value):
            raise ValueError("must be an email address such as admonster@example.com")
        return value

    @field_validator("notify_email", mode="after")
    @classmethod
    def _check_notify_email(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return normalize_email_list(value)

    @field_validator("notify_webhook_url", mode="after")
    @classmethod
    def _check_notify_webhook_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return normalize_webhook_url(value)

    @field_validator("public_url", mode="after")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        value = value.strip()
        if not HTTP_URL_PATTERN.match(value) or "?" in value or "#" in value:
            raise ValueError("must be an http(s) URL without query, such as http://127.0.0.1:8787")
        return value.rstrip("/")

    @field_validator("serve_host", mode="after")
    @classmethod
    def _check_serve_host(cls, value: str) -> str:
        value = value.strip()
        if not value or not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", value):
            raise ValueError("must be a host name or IP address such as 127.0.0.1")
        return value

    @field_validator("state_secret", mode="after")
    @classmethod
    def _check_state_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if len(value.get_secret_value().strip()) < 16:
            raise ValueError("is too short (at least 16 characters)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("timezone", mode="after")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # lazily: tzdata lookup only when set

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known IANA time zone such as Europe/Berlin") from None
        return value.strip()

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        """Without ADMONSTER_PUBLIC_URL, `admonster serve` is reached where it listens."""
        if "public_url" not in self.model_fields_set:
            self.public_url = listening_url(self.serve_host, self.serve_port)
            self._public_url_derived = True
        return self

    @property
    def public_url_is_derived(self) -> bool:
        """True when ADMONSTER_PUBLIC_URL is not set (the URL follows where `serve` listens)."""
        return self._public_url_derived

    @model_validator(mode="after")
    def _default_sandbox_db(self) -> Settings:
        if self.sandbox_db is None:
            self.sandbox_db = self.home / "sandbox.db"
        return self

    @property
    def mode(self) -> Literal["SANDBOX", "LIVE"]:
        """SANDBOX when the embedded sandbox serves the Graph API, LIVE otherwise."""
        return "SANDBOX" if self.graph_url == SANDBOX else "LIVE"

    @property
    def store_path(self) -> Path:
        """Path of the Ad Monster state database inside `home`."""
        return self.home / "admonster.db"

    @property
    def smtp_configured(self) -> bool:
        """True when an SMTP server is set (email notifications can be sent)."""
        return bool(self.smtp_host)

    @property
    def oauth_callback_url(self) -> str:
        """The OAuth redirect URI served by `admonster serve`."""
        return f"{self.public_url}/oauth/facebook/callback"

    @property
    def llm_configured(self) -> bool:
        """True when an LLM endpoint and model are both set."""
        return bool(self.llm_base_url and self.llm_model)


def normalize_email_list(value: str) -> str:
    """'a@x.com; b@y.org' -> 'a@x.com, b@y.org'; ValueError when any address is malformed."""
    addresses = [part.strip() for part in re.split(r"[,;]", value) if part.strip()]
    if not addresses:
        raise ValueError("must be an email address such as ops@example.com")
    for address in addresses:
        if not EMAIL_PATTERN.match(address):
            raise ValueError("must be email addresses such as ops@example.com, comma-separated")
    return ", ".join(addresses)


def normalize_webhook_url(value: str) -> str:
    """A stripped http(s) URL; ValueError for any other scheme or a URL without a host."""
    value = value.strip()
    if not HTTP_URL_PATTERN.match(value) or any(ch.isspace() for ch in value):
        raise ValueError("must be an http(s) URL")
    return value


def env_var_name(field_name: str) -> str:
    """The environment variable that sets a Settings field."""
    return f"{ENV_PREFIX}{field_name.upper()}"


def describe_settings() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for the README and `--help`."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else str(field.default)
        if name == "sandbox_db":
            default = "<home>/sandbox.db"
        rows.append((env_var_name(name), default, field.description or ""))
    return rows


def _describe_error(error: Mapping[str, Any]) -> str:
    """One readable clause for one pydantic error, never echoing secret values."""
    field = str(error["loc"][0]) if error.get("loc") else "?"
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    hint = FIX_HINTS.get(field, f"set {env_var_name(field)} to a valid value")
    return f"{env_var_name(field)} {message}. Fix: {hint} (environment or .env)."


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment and `.env`; raise ConfigError with one clear line if any is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        clauses = [_describe_error(error) for error in exc.errors(include_url=False, include_input=False)]
        raise ConfigError(" ".join(clauses)) from None

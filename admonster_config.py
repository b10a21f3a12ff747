"""Ad Monster configuration: one `Settings` object read from ADMONSTER_* environment variables and `.env`."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ADMONSTER_"
SANDBOX = "sandbox"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
API_VERSION_PATTERN = re.compile(r"^v\d+\.\d+$")

FIX_HINTS: dict[str, str] = {
    "home": "set ADMONSTER_HOME to a folder path, e.g. ~/.admonster",
    "graph_url": "set ADMONSTER_GRAPH_URL to 'sandbox' or a URL such as https://graph.facebook.com",
    "api_version": "set ADMONSTER_API_VERSION to a Graph API version such as v26.0",
    "secret_key": (
        "set ADMONSTER_SECRET_KEY to a Fernet key made with: python -c "
        "\"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\""
    ),
    "log_level": f"set ADMONSTER_LOG_LEVEL to one of {', '.join(LOG_LEVELS)}",
    "workspace": "set ADMONSTER_WORKSPACE to a non-empty name, e.g. default",
    "llm_base_url": "set ADMONSTER_LLM_BASE_URL to an OpenAI-compatible URL such as http://localhost:11434/v1",
}


class ConfigError(Exception):
    """A configuration value is wrong; the message is one line naming the variable and the fix."""


class Settings(BaseSettings):
    """Every setting of Ad Monster, read from ADMONSTER_* environment variables and a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    home: Path = Field(Path(".admonster"), description="Folder for Ad Monster's database, key file and sandbox data.")
    graph_url: str = Field(
        SANDBOX,
        description="'sandbox' starts the embedded sandbox; a URL such as https://graph.facebook.com goes live.",
    )
    api_version: str = Field("v26.0", description="Graph API version used in request paths, e.g. v26.0.")
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
    sandbox_db: Path | None = Field(None, description="SQLite file of the embedded sandbox; default <home>/sandbox.db.")
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible LLM endpoint (OpenAI, Ollama, vLLM, llama.cpp)."
    )
    llm_model: str | None = Field(None, description="LLM model name used for chat, e.g. gpt-4o-mini or llama3.1.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the LLM endpoint, if it needs one.")
    log_level: str = Field("WARNING", description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    workspace: str = Field("default", description="Workspace used by the terminal chat and slash-commands.")

    @field_validator("home", "sandbox_db", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

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
            raise ValueError("must look like v26.0")
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
    def llm_configured(self) -> bool:
        """True when an LLM endpoint and model are both set."""
        return bool(self.llm_base_url and self.llm_model)


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


def _describe_error(error: dict[str, Any]) -> str:
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

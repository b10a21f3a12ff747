"""Settings from ADMONSTER_* environment variables and `.env`, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from admonster_config import ConfigError, Settings, describe_settings, load_settings
from fb_utils import DEFAULT_API_VERSION

pytestmark = pytest.mark.usefixtures("clean_environment")


def test_defaults_are_sandbox_mode():
    settings = load_settings()
    assert settings.mode == "SANDBOX"
    assert settings.home == Path(".admonster")
    assert settings.sandbox_db == Path(".admonster") / "sandbox.db"
    assert settings.store_path == Path(".admonster") / "admonster.db"
    assert (settings.api_version, settings.log_level, settings.workspace) == (DEFAULT_API_VERSION, "WARNING", "default")
    assert settings.access_token is None and settings.secret_key is None
    assert settings.llm_configured is False


def test_environment_variables_are_read(monkeypatch, tmp_path):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("ADMONSTER_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("ADMONSTER_GRAPH_URL", "https://graph.facebook.com/")
    monkeypatch.setenv("ADMONSTER_API_VERSION", "v25.0")
    monkeypatch.setenv("ADMONSTER_ACCESS_TOKEN", "EAAB-token-from-env")
    monkeypatch.setenv("ADMONSTER_APP_ID", "4242")
    monkeypatch.setenv("ADMONSTER_APP_SECRET", "app-secret-from-env")
    monkeypatch.setenv("ADMONSTER_SECRET_KEY", key)
    monkeypatch.setenv("ADMONSTER_LLM_BASE_URL", "http://localhost:11434/v1/")
    monkeypatch.setenv("ADMONSTER_LLM_MODEL", "llama3.1")
    monkeypatch.setenv("ADMONSTER_LOG_LEVEL", "debug")
    monkeypatch.setenv("ADMONSTER_WORKSPACE", "team-a")
    settings = load_settings()
    assert settings.mode == "LIVE"
    assert settings.graph_url == "https://graph.facebook.com"
    assert settings.api_version == "v25.0"
    assert settings.home == tmp_path / "state"
    assert settings.sandbox_db == tmp_path / "state" / "sandbox.db"
    assert settings.access_token.get_secret_value() == "EAAB-token-from-env"
    assert settings.app_secret.get_secret_value() == "app-secret-from-env"
    assert settings.secret_key.get_secret_value() == key
    assert settings.app_id == "4242"
    assert settings.llm_base_url == "http://localhost:11434/v1"
    assert settings.llm_configured is True
    assert (settings.log_level, settings.workspace) == ("DEBUG", "team-a")


def test_dotenv_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("ADMONSTER_WORKSPACE=from-dotenv\nADMONSTER_LOG_LEVEL=INFO\n")
    assert load_settings().workspace == "from-dotenv"
    monkeypatch.setenv("ADMONSTER_WORKSPACE", "from-env")
    settings = load_settings()
    assert (settings.workspace, settings.log_level) == ("from-env", "INFO")


def test_overrides_win_and_sandbox_db_can_be_set(monkeypatch):
    monkeypatch.setenv("ADMONSTER_WORKSPACE", "from-env")
    settings = load_settings(workspace="override", sandbox_db=Path("/tmp/s.db"), graph_url="SANDBOX")
    assert (settings.workspace, settings.sandbox_db, settings.mode) == ("override", Path("/tmp/s.db"), "SANDBOX")


def test_secrets_never_appear_in_repr(monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("ADMONSTER_ACCESS_TOKEN", "EAAB-very-secret")
    monkeypatch.setenv("ADMONSTER_APP_SECRET", "app-very-secret")
    monkeypatch.setenv("ADMONSTER_LLM_API_KEY", "sk-very-secret")
    monkeypatch.setenv("ADMONSTER_SECRET_KEY", key)
    settings = load_settings()
    text = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in ("EAAB-very-secret", "app-very-secret", "sk-very-secret", key):
        assert secret not in text


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ADMONSTER_API_VERSION", "26.0", f"ADMONSTER_API_VERSION must look like {DEFAULT_API_VERSION}. Fix:"),
        ("ADMONSTER_GRAPH_URL", "graph.facebook.com", "ADMONSTER_GRAPH_URL must be 'sandbox' or an http(s) URL"),
        ("ADMONSTER_LOG_LEVEL", "loud", "ADMONSTER_LOG_LEVEL must be one of DEBUG"),
        ("ADMONSTER_SECRET_KEY", "short-key-value", "ADMONSTER_SECRET_KEY is not a valid Fernet key"),
        ("ADMONSTER_WORKSPACE", "   ", "ADMONSTER_WORKSPACE must not be empty"),
        ("ADMONSTER_LLM_BASE_URL", "localhost:11434", "ADMONSTER_LLM_BASE_URL must be an http(s) URL"),
    ],
)
def test_bad_value_gives_one_line_config_error(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "Fix:" in message
    assert "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_secret_value_is_not_echoed_in_errors(monkeypatch):
    monkeypatch.setenv("ADMONSTER_SECRET_KEY", "my-private-but-malformed-key")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "my-private-but-malformed-key" not in str(caught.value)


def test_two_bad_values_still_one_line(monkeypatch):
    monkeypatch.setenv("ADMONSTER_API_VERSION", "latest")
    monkeypatch.setenv("ADMONSTER_LOG_LEVEL", "chatty")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "ADMONSTER_API_VERSION" in message and "ADMONSTER_LOG_LEVEL" in message and "\n" not in message


def test_describe_settings_covers_every_field():
    rows = describe_settings()
    assert [row[0] for row in rows] == [f"ADMONSTER_{name.upper()}" for name in Settings.model_fields]
    assert all(description for _, _, description in rows)
    assert rows[[r[0] for r in rows].index("ADMONSTER_API_VERSION")][:2] == (
        "ADMONSTER_API_VERSION",
        DEFAULT_API_VERSION,
    )


def test_the_public_url_follows_where_serve_listens_unless_set():
    from admonster_config import listening_url, load_settings

    derived = load_settings(serve_port=8799)
    assert derived.public_url == "http://127.0.0.1:8799" and derived.public_url_is_derived
    assert derived.oauth_callback_url == "http://127.0.0.1:8799/oauth/facebook/callback"
    assert load_settings(serve_host="0.0.0.0", serve_port=9000).public_url == "http://127.0.0.1:9000"
    chosen = load_settings(serve_port=8799, public_url="https://ads.example.com/")
    assert chosen.public_url == "https://ads.example.com" and not chosen.public_url_is_derived
    assert listening_url("::1", 80) == "http://[::1]:80"

"""The state layer against real SQLite files and in-memory databases."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

import admonster_store
from admonster_store import (
    BASELINE_REVISION,
    DEFAULT_GUARDRAILS,
    InvalidArgument,
    SecretKeyError,
    Store,
    StoreError,
    head_revision,
)
from admonster_store_legacy import LEGACY_VERSION, upgrade_legacy


@pytest.fixture
async def store(store_target, clock):
    """The store on each engine: SQLite in memory, then a fresh PostgreSQL database."""
    async with await Store.open(store_target, secret_key=Fernet.generate_key(), clock=clock) as opened:
        yield opened


@pytest.fixture
async def two_workspaces(store):
    return await store.ensure_workspace("alpha"), await store.ensure_workspace("beta")


def db_bytes(folder: Path) -> bytes:
    """Every byte SQLite wrote for the database (main file plus WAL)."""
    return b"".join(path.read_bytes() for path in folder.glob("admonster.db*"))


# -- migrations -------------------------------------------------------------------------------------------------


def next_revision(tmp_path: Path, body: str) -> Path:
    """A copy of the store's Alembic folder with one more revision (NEXT, after HEAD) whose upgrade() runs `body`."""
    folder = tmp_path / "migrations"
    shutil.copytree(admonster_store.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / f"{NEXT}_next.py").write_text(
        f'from alembic import op\nimport sqlalchemy as sa\nrevision = "{NEXT}"\ndown_revision = "{HEAD}"\n'
        f"branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n{body}\n"
    )
    return folder


HEAD = head_revision()  # the newest revision the code knows
NEXT = f"{int(HEAD) + 1:04d}"


async def test_fresh_database_is_at_the_head_revision(tmp_path):
    db_path = tmp_path / "nested" / "home" / "admonster.db"
    async with await Store.open(db_path) as store:
        assert await store.schema_version() == int(HEAD) >= int(BASELINE_REVISION) == LEGACY_VERSION
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        # the releases before Alembic read this table and refuse a home past their last script (11)
        assert max(row[0] for row in db.execute("SELECT version FROM schema_version")) == int(HEAD)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopen_applies_only_new_revisions_and_keeps_data(tmp_path, monkeypatch):
    db_path = tmp_path / "admonster.db"
    async with await Store.open(db_path) as store:
        workspace = await store.ensure_workspace("keep-me")
        await store.set_setting(workspace.id, "answer", 42)
    monkeypatch.setattr(
        admonster_store,
        "MIGRATIONS_DIR",
        next_revision(
            tmp_path,
            '    op.create_table("future_launches", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))',
        ),
    )
    async with await Store.open(db_path) as store:
        assert await store.schema_version() == int(NEXT)
        assert await store.get_setting(workspace.id, "answer") == 42
    async with await Store.open(db_path) as store:  # a third open applies nothing and does not fail
        assert await store.schema_version() == int(NEXT)
    with sqlite3.connect(db_path) as db:
        assert "future_launches" in {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        # a release before Alembic (it knows 11) now refuses this home instead of writing to a schema it does not know
        assert max(row[0] for row in db.execute("SELECT version FROM schema_version")) == int(NEXT)


async def test_failed_migration_rolls_back_whole_revision(tmp_path, monkeypatch):
    db_path = tmp_path / "admonster.db"
    monkeypatch.setattr(
        admonster_store,
        "MIGRATIONS_DIR",
        next_revision(
            tmp_path,
            '    op.create_table("half_done", sa.Column("id", sa.Integer))\n    op.execute("INSERT INTO no_such_table VALUES (1)")',
        ),
    )
    with pytest.raises(StoreError, match=f"Migration {NEXT} failed: .*no_such_table.* Fix: restore a backup"):
        await Store.open(db_path)
    monkeypatch.undo()
    async with await Store.open(db_path) as store:
        assert await store.schema_version() == int(HEAD)
    tables = {row[0] for row in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables and "workspaces" in tables


async def test_database_newer_than_code_is_refused(tmp_path, monkeypatch):
    db_path = tmp_path / "admonster.db"
    monkeypatch.setattr(
        admonster_store,
        "MIGRATIONS_DIR",
        next_revision(tmp_path, '    op.create_table("later", sa.Column("id", sa.Integer))'),
    )
    await (await Store.open(db_path)).close()
    monkeypatch.undo()
    with pytest.raises(
        StoreError, match=rf"schema revision {NEXT}, newer than this Ad Monster knows \({HEAD}\). Fix: upgrade"
    ):
        await Store.open(db_path)


async def test_a_legacy_home_newer_than_the_frozen_scripts_is_refused(tmp_path):
    db_path = tmp_path / "admonster.db"
    upgrade_legacy(db_path)
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO schema_version (version, applied_at) VALUES (12, 'later')")
    with pytest.raises(StoreError, match=r"schema version 12, newer than this Ad Monster knows \(11\)"):
        await Store.open(db_path)


async def test_open_accepts_a_folder(tmp_path):
    async with await Store.open(tmp_path) as store:
        assert store.path == str(tmp_path / "admonster.db")
    assert (tmp_path / "admonster.db").exists()


# -- workspaces and API keys ------------------------------------------------------------------------------------


async def test_ensure_workspace_is_idempotent(store, clock):
    first = await store.ensure_workspace("team")
    clock.advance(60)
    again = await store.ensure_workspace("  team ")
    assert again == first
    assert first.created_at == "2026-03-01T12:00:00+00:00"
    assert [w.name for w in await store.list_workspaces()] == ["team"]
    assert await store.get_workspace(first.id) == first
    with pytest.raises(InvalidArgument):
        await store.ensure_workspace("   ")


async def test_api_key_maps_to_its_workspace_and_is_stored_hashed(tmp_path):
    async with await Store.open(tmp_path / "admonster.db") as store:
        alpha = await store.ensure_workspace("alpha")
        beta = await store.ensure_workspace("beta")
        alpha_key = await store.create_api_key(alpha.id)
        beta_key = await store.create_api_key(beta.id)
        assert alpha_key != beta_key
        assert await store.workspace_for_api_key(alpha_key) == alpha
        assert await store.workspace_for_api_key(beta_key) == beta
        assert await store.workspace_for_api_key(alpha_key + "x") is None
        assert await store.workspace_for_api_key("") is None
        contents = db_bytes(tmp_path)
    assert alpha_key.encode() not in contents
    assert admonster_store.hash_api_key(alpha_key).encode() in contents


async def test_writes_for_unknown_workspace_give_clear_error(store):
    with pytest.raises(InvalidArgument, match="Workspace 999 does not exist"):
        await store.set_setting(999, "x", 1)
    with pytest.raises(InvalidArgument, match="does not exist"):
        await store.create_api_key(999)


# -- settings and guardrails ------------------------------------------------------------------------------------


async def test_settings_round_trip_json_values(store, two_workspaces):
    alpha, _ = two_workspaces
    assert await store.get_setting(alpha.id, "missing", default="fallback") == "fallback"
    await store.set_setting(alpha.id, "nested", {"a": [1, 2, {"b": None}], "ok": True})
    await store.set_setting(alpha.id, "count", 3)
    await store.set_setting(alpha.id, "count", 4)
    assert await store.get_setting(alpha.id, "nested") == {"a": [1, 2, {"b": None}], "ok": True}
    assert await store.all_settings(alpha.id) == {"count": 4, "nested": {"a": [1, 2, {"b": None}], "ok": True}}
    await store.set_setting(alpha.id, "count", None)
    assert await store.get_setting(alpha.id, "count", 7) == 7
    with pytest.raises(InvalidArgument, match="JSON"):
        await store.set_setting(alpha.id, "bad", object())


async def test_guardrails_merge_defaults_workspace_account(store, two_workspaces):
    alpha, _ = two_workspaces
    assert await store.guardrails(alpha.id) == DEFAULT_GUARDRAILS
    await store.set_setting(alpha.id, "guardrails", {"max_daily_budget": 10_000, "confirm_policy": "always"})
    await store.set_setting(alpha.id, "guardrails:act_123", {"max_daily_budget": 500_000})
    workspace_level = await store.guardrails(alpha.id)
    assert workspace_level == {**DEFAULT_GUARDRAILS, "max_daily_budget": 10_000, "confirm_policy": "always"}
    account_level = await store.guardrails(alpha.id, ad_account_id="act_123")
    assert account_level["max_daily_budget"] == 500_000
    assert account_level["confirm_policy"] == "always"
    assert account_level["max_budget_increase_pct"] == 50
    assert await store.guardrails(alpha.id, ad_account_id="123") == account_level
    assert await store.guardrails(alpha.id, ad_account_id="act_999") == workspace_level


async def test_set_guardrails_validates_and_merges(store, two_workspaces):
    alpha, _ = two_workspaces
    effective = await store.set_guardrails(alpha.id, {"max_spend_cap": 2_000_000})
    assert effective["max_spend_cap"] == 2_000_000
    effective = await store.set_guardrails(alpha.id, {"confirm_policy": "never"}, ad_account_id=456)
    assert effective == {**DEFAULT_GUARDRAILS, "max_spend_cap": 2_000_000, "confirm_policy": "never"}
    assert await store.get_setting(alpha.id, "guardrails:act_456") == {"confirm_policy": "never"}
    for bad in (
        {"max_daily_budget": -1},
        {"max_daily_budget": 12.5},
        {"confirm_policy": "sometimes"},
        {"max_daily_budgt": 10},
        {"max_spend_cap": True},
    ):
        with pytest.raises(InvalidArgument, match="Fix:"):
            await store.set_guardrails(alpha.id, bad)
    with pytest.raises(InvalidArgument, match="act_"):
        await store.guardrails(alpha.id, ad_account_id="not-an-account")


# -- selections -------------------------------------------------------------------------------------------------


async def test_selections_set_get_clear_and_validate_kind(store, two_workspaces):
    alpha, _ = two_workspaces
    assert await store.get_selection(alpha.id, "ad_account") is None
    await store.set_selection(alpha.id, "ad_account", "act_123")
    await store.set_selection(alpha.id, "page", "555")
    await store.set_selection(alpha.id, "ad_account", "act_456")
    assert await store.get_selection(alpha.id, "ad_account") == "act_456"
    assert await store.all_selections(alpha.id) == {"ad_account": "act_456", "page": "555", "instagram_account": None}
    await store.set_selection(alpha.id, "ad_account", None)
    assert await store.get_selection(alpha.id, "ad_account") is None
    with pytest.raises(InvalidArgument, match="ad_account, page, instagram_account"):
        await store.set_selection(alpha.id, "campaign", "1")
    with pytest.raises(InvalidArgument):
        await store.get_selection(alpha.id, "adaccount")


# -- audit log --------------------------------------------------------------------------------------------------


async def add_sample_audit(store, workspace_id, op="update_campaign", **extra):
    fields = dict(
        interface="chat",
        op=op,
        args={"campaign_id": "120001", "daily_budget": 5000},
        summary="raised daily budget of Summer Sale from $50.00 to $60.00",
        changes=[{"id": "120001", "before": {"daily_budget": "5000"}, "after": {"daily_budget": "6000"}}],
        object_ids=["120001"],
        outcome="ok",
    )
    fields.update(extra)
    return await store.add_audit(workspace_id, **fields)


async def test_audit_add_get_and_list_newest_first(store, two_workspaces, clock):
    alpha, _ = two_workspaces
    first = await add_sample_audit(store, alpha.id, fbtrace_id="AbC123")
    clock.advance(5)
    second = await add_sample_audit(store, alpha.id, op="pause_campaign", outcome="error", error="ERROR auth: ...")
    clock.advance(5)
    third = await add_sample_audit(store, alpha.id, op="create_campaign", outcome="dry_run")
    entries = await store.list_audit(alpha.id)
    assert [entry.id for entry in entries] == [third, second, first]
    assert [entry.id for entry in await store.list_audit(alpha.id, limit=2)] == [third, second]
    assert [entry.id for entry in await store.list_audit(alpha.id, op="pause_campaign")] == [second]
    entry = await store.get_audit(alpha.id, first)
    assert entry.fbtrace_id == "AbC123"
    assert entry.created_at == "2026-03-01T12:00:00+00:00"
    assert entry.changes[0]["after"] == {"daily_budget": "6000"}
    assert entry.object_ids == ["120001"]
    assert entry.undone_by is None and entry.undo_of is None
    assert (await store.get_audit(alpha.id, second)).error == "ERROR auth: ..."
    with pytest.raises(InvalidArgument, match="outcome"):
        await add_sample_audit(store, alpha.id, outcome="maybe")


async def test_audit_undo_marks_both_directions(store, two_workspaces):
    alpha, _ = two_workspaces
    original = await add_sample_audit(store, alpha.id)
    undo = await add_sample_audit(store, alpha.id, op="undo", undo_of=original)
    assert await store.mark_undone(alpha.id, original, undone_by=undo) is True
    assert (await store.get_audit(alpha.id, original)).undone_by == undo
    assert (await store.get_audit(alpha.id, undo)).undo_of == original
    assert await store.mark_undone(alpha.id, original, undone_by=undo) is False  # already undone
    assert await store.mark_undone(alpha.id, 12345, undone_by=undo) is False


async def test_audit_drops_secret_keys_recursively(tmp_path):
    async with await Store.open(tmp_path / "admonster.db") as store:
        workspace = await store.ensure_workspace("alpha")
        audit_id = await store.add_audit(
            workspace.id,
            interface="mcp",
            op="update_campaign",
            args={
                "campaign_id": "1",
                "access_token": "EAAB-secret-1",
                "nested": {"Token": "secret-2", "keep": "yes", "list": [{"app_secret": "secret-3", "n": 1}]},
                "appsecret_proof": "secret-4",
                "client_secret": "secret-5",
                "password": "secret-6",
            },
            summary="s",
            changes=[{"before": {"token": "secret-7"}, "after": {"status": "PAUSED"}}],
            object_ids=["1"],
            outcome="ok",
        )
        entry = await store.get_audit(workspace.id, audit_id)
        contents = db_bytes(tmp_path)
    assert entry.args == {"campaign_id": "1", "nested": {"keep": "yes", "list": [{"n": 1}]}}
    assert entry.changes == [{"before": {}, "after": {"status": "PAUSED"}}]
    for n in range(1, 8):
        assert f"secret-{n}".encode() not in contents


# -- confirmations ----------------------------------------------------------------------------------------------


async def test_confirmation_is_single_use(store, two_workspaces):
    alpha, _ = two_workspaces
    confirmation_id = await store.add_confirmation(
        alpha.id,
        op="update_campaign",
        args={"campaign_id": "1", "daily_budget": 12000},
        preview="would raise daily budget of Summer Sale from $50.00 to $120.00",
    )
    assert confirmation_id.startswith("c-") and len(confirmation_id) == 8
    pending = await store.list_confirmations(alpha.id)
    assert [c.id for c in pending] == [confirmation_id]
    assert pending[0].status == "pending"
    taken = await store.take_confirmation(alpha.id, confirmation_id.upper())
    assert taken.op == "update_campaign"
    assert taken.args == {"campaign_id": "1", "daily_budget": 12000}
    assert taken.preview.startswith("would raise")
    assert await store.take_confirmation(alpha.id, confirmation_id) is None
    assert (await store.get_confirmation(alpha.id, confirmation_id)).status == "used"
    assert await store.list_confirmations(alpha.id) == []
    assert await store.take_confirmation(alpha.id, "c-000000") is None


async def test_confirmation_expires(store, two_workspaces, clock):
    alpha, _ = two_workspaces
    short = await store.add_confirmation(alpha.id, op="resume_campaign", args={}, preview="p", ttl_seconds=60)
    long = await store.add_confirmation(alpha.id, op="resume_campaign", args={}, preview="p", ttl_seconds=900)
    clock.advance(59)
    assert {c.id for c in await store.list_confirmations(alpha.id)} == {short, long}
    clock.advance(1)
    assert [c.id for c in await store.list_confirmations(alpha.id)] == [long]
    assert (await store.get_confirmation(alpha.id, short)).status == "expired"
    assert await store.take_confirmation(alpha.id, short) is None
    assert (await store.take_confirmation(alpha.id, long)).id == long


async def test_concurrent_takes_succeed_once(store, two_workspaces):
    import asyncio

    alpha, _ = two_workspaces
    confirmation_id = await store.add_confirmation(alpha.id, op="x", args={}, preview="p")
    results = await asyncio.gather(*(store.take_confirmation(alpha.id, confirmation_id) for _ in range(10)))
    assert sum(result is not None for result in results) == 1


# -- tokens -----------------------------------------------------------------------------------------------------


async def test_token_round_trip_and_encrypted_at_rest(tmp_path):
    secret_key = Fernet.generate_key().decode()
    expiry = datetime(2026, 5, 1, tzinfo=UTC)
    async with await Store.open(tmp_path / "admonster.db", secret_key=secret_key) as store:
        workspace = await store.ensure_workspace("alpha")
        await store.save_token(
            workspace.id,
            token="EAAB-plain-token-xyz",
            app_id="1234",
            app_secret="app-secret-abc",
            user_id=10001,
            expires_at=int(expiry.timestamp()),
            scopes=["ads_management", "ads_read"],
        )
        loaded = await store.load_token(workspace.id)
        contents = db_bytes(tmp_path)
    assert loaded.token == "EAAB-plain-token-xyz"
    assert loaded.app_secret == "app-secret-abc"
    assert (loaded.kind, loaded.app_id, loaded.user_id) == ("user", "1234", "10001")
    assert loaded.expires_at == expiry
    assert loaded.scopes == ["ads_management", "ads_read"]
    assert loaded.is_expired(expiry) and not loaded.is_expired(expiry - timedelta(seconds=1))
    assert "EAAB-plain-token-xyz" not in repr(loaded) and "app-secret-abc" not in repr(loaded)
    assert b"EAAB-plain-token-xyz" not in contents
    assert b"app-secret-abc" not in contents
    assert not (tmp_path / "secret.key").exists()  # an explicit key means no key file


async def test_token_replace_and_delete(store, two_workspaces):
    alpha, _ = two_workspaces
    assert await store.load_token(alpha.id) is None
    await store.save_token(alpha.id, token="first")
    await store.save_token(alpha.id, token="second", kind="system_user")
    loaded = await store.load_token(alpha.id)
    assert (loaded.token, loaded.kind, loaded.expires_at) == ("second", "system_user", None)
    assert await store.delete_token(alpha.id) is True
    assert await store.load_token(alpha.id) is None
    assert await store.delete_token(alpha.id) is False
    with pytest.raises(InvalidArgument):
        await store.save_token(alpha.id, token="")


async def test_generated_key_file_has_mode_0600_and_is_reused(tmp_path):
    home = tmp_path / "home"
    async with await Store.open(home / "admonster.db") as store:
        workspace = await store.ensure_workspace("alpha")
        await store.save_token(workspace.id, token="persisted-token")
    key_file = home / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key_before = key_file.read_bytes()
    async with await Store.open(home / "admonster.db") as store:
        assert (await store.load_token(workspace.id)).token == "persisted-token"
    assert key_file.read_bytes() == key_before


async def test_wrong_key_gives_clear_error(tmp_path):
    db_path = tmp_path / "admonster.db"
    async with await Store.open(db_path, secret_key=Fernet.generate_key()) as store:
        workspace = await store.ensure_workspace("alpha")
        await store.save_token(workspace.id, token="t")
    async with await Store.open(db_path, secret_key=Fernet.generate_key()) as store:
        with pytest.raises(SecretKeyError) as caught:
            await store.load_token(workspace.id)
    message = str(caught.value)
    assert "cannot be decrypted" in message and "Fix:" in message and "\n" not in message


async def test_malformed_key_is_refused_at_open(tmp_path):
    with pytest.raises(SecretKeyError, match="ADMONSTER_SECRET_KEY is not a valid Fernet key"):
        await Store.open(tmp_path / "admonster.db", secret_key="not-a-key")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "secret.key").write_text("garbage")
    with pytest.raises(SecretKeyError, match=re.escape("secret.key is not a valid Fernet key")):
        await Store.open(tmp_path / "other" / "admonster.db")


# -- isolation --------------------------------------------------------------------------------------------------


async def test_workspaces_never_see_each_others_records(store, two_workspaces):
    alpha, beta = two_workspaces
    await store.set_setting(alpha.id, "guardrails", {"max_daily_budget": 100})
    await store.set_selection(alpha.id, "ad_account", "act_1")
    audit_id = await add_sample_audit(store, alpha.id)
    confirmation_id = await store.add_confirmation(alpha.id, op="x", args={}, preview="p")
    await store.save_token(alpha.id, token="alpha-token")

    assert await store.get_setting(beta.id, "guardrails") is None
    assert await store.all_settings(beta.id) == {}
    assert await store.guardrails(beta.id) == DEFAULT_GUARDRAILS
    assert await store.get_selection(beta.id, "ad_account") is None
    assert await store.list_audit(beta.id) == []
    assert await store.get_audit(beta.id, audit_id) is None
    beta_audit = await add_sample_audit(store, beta.id)
    assert await store.mark_undone(beta.id, audit_id, undone_by=beta_audit) is False
    with pytest.raises(InvalidArgument):
        await store.mark_undone(alpha.id, audit_id, undone_by=beta_audit)
    assert (await store.get_audit(alpha.id, audit_id)).undone_by is None
    assert await store.list_confirmations(beta.id) == []
    assert await store.get_confirmation(beta.id, confirmation_id) is None
    assert await store.take_confirmation(beta.id, confirmation_id) is None
    assert await store.load_token(beta.id) is None
    assert await store.delete_token(beta.id) is False

    assert (await store.take_confirmation(alpha.id, confirmation_id)) is not None
    assert (await store.load_token(alpha.id)).token == "alpha-token"
    assert [entry.id for entry in await store.list_audit(alpha.id)] == [audit_id]


async def test_open_store_uses_settings_home_and_key(tmp_path):
    from admonster_config import load_settings

    key = Fernet.generate_key().decode()
    settings = load_settings(home=tmp_path / "h", secret_key=key, _env_file=None)
    async with await admonster_store.open_store(settings) as store:
        workspace = await store.ensure_workspace(settings.workspace)
        await store.save_token(workspace.id, token="t")
    assert (tmp_path / "h" / "admonster.db").exists()
    assert not (tmp_path / "h" / "secret.key").exists()
    async with await Store.open(tmp_path / "h", secret_key=key) as store:
        assert (await store.load_token(workspace.id)).token == "t"


async def test_a_version_7_database_keeps_its_audit_log_and_confirmations_through_migration_8(tmp_path):
    """Migration 8 rebuilds the audit table (outcomes pending/unknown, client tags, settled_at) and gives confirmations
    the changes they previewed: an existing home from the last release upgrades in place."""
    db_path = tmp_path / "admonster.db"
    assert upgrade_legacy(db_path, 7) == 7  # rows as the version 7 code wrote them
    with sqlite3.connect(db_path) as old:
        workspace_id = old.execute(
            "INSERT INTO workspaces (name, created_at) VALUES ('legacy', '2026-03-02T19:00:00+00:00')"
        ).lastrowid
        columns = "(workspace_id, created_at, interface, op, args_json, summary, changes_json, object_ids_json, outcome, undo_of)"
        old.execute(
            f"INSERT INTO audit_log {columns} VALUES (?, '2026-03-02T20:00:00+00:00', 'api', 'pause_campaign', "
            "'{}', 'pause', '[]', '[\"1\"]', 'ok', NULL)",
            (workspace_id,),
        )
        old.execute(
            f"INSERT INTO audit_log {columns} VALUES (?, '2026-03-02T20:01:00+00:00', 'api', 'undo', "
            "'{}', 'undo', '[]', '[\"1\"]', 'ok', 1)",
            (workspace_id,),
        )
        old.execute("UPDATE audit_log SET undone_by = 2 WHERE id = 1")
        old.execute(
            "INSERT INTO confirmations (id, workspace_id, op, args_json, preview, created_at, expires_at) "
            "VALUES ('c-abcdef', ?, 'resume_campaign', '{}', 'would resume', '2026-03-02T20:00:00+00:00', "
            "'2126-03-02T20:00:00+00:00')",
            (workspace_id,),
        )
    first, undo, held = 1, 2, "c-abcdef"
    async with await Store.open(db_path) as upgraded:
        assert await upgraded.schema_version() == int(head_revision())
        workspace = await upgraded.find_workspace("legacy")
        kept = await upgraded.get_audit(workspace.id, first)
        assert (kept.outcome, kept.undone_by, kept.tags, kept.settled_at) == ("ok", undo, [], kept.created_at)
        assert (await upgraded.get_confirmation(workspace.id, held)).changes == []
        pending = await upgraded.add_audit(
            workspace.id,
            interface="api",
            op="create_campaign",
            args={},
            summary="s",
            changes=[],
            object_ids=[],
            outcome="pending",
            tags=[{"tag": "am-1", "path": "act_1/campaigns", "name": "X"}],
        )
        assert [e.id for e in await upgraded.unsettled_audit(workspace.id)] == [pending]
        assert await upgraded.settle_audit(workspace.id, pending, outcome="unknown", error="lost")
        assert (await upgraded.get_audit(workspace.id, pending)).settled_at is None
        assert await upgraded.settle_audit(workspace.id, pending, outcome="ok", object_ids=["5"])
        assert not await upgraded.settle_audit(workspace.id, pending, outcome="error")  # settled once
        settled = await upgraded.get_audit(workspace.id, pending)
        assert (settled.outcome, settled.object_ids, settled.tags[0]["name"]) == (
            "ok",
            ["5"],
            "X",
        ) and settled.settled_at
        assert await upgraded.unsettled_audit(workspace.id) == []

"""The store's records against the schema Alembic makes, on both engines, and a home of the last release before
Alembic (legacy schema 11, built by the frozen scripts and filled as that release wrote its rows) upgraded in place."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from datetime import UTC, datetime
from inspect import get_annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import inspect

import admonster_store
from admonster_config import ConfigError, load_settings
from admonster_store import (
    BASELINE_REVISION,
    COLUMN,
    METADATA,
    RECORD_TABLES,
    ColumnInfo,
    Store,
    StoreError,
    api_key_id,
    hash_api_key,
    head_revision,
    open_store,
)
from admonster_store_legacy import LEGACY_VERSION, upgrade_legacy


def schema_differences(connection) -> list:
    """What Alembic's autogenerate would change to make the database match the records (types compared too)."""
    context = MigrationContext.configure(connection, opts={"compare_type": True, "target_metadata": METADATA})
    return compare_metadata(context, METADATA)


def columns_as_found(connection) -> dict[str, dict[str, tuple[str, bool]]]:
    """table -> column -> (type affinity, nullable), as the database reports them."""
    found = {}
    inspector = inspect(connection)
    for table in RECORD_TABLES:
        found[table.name] = {
            c["name"]: (type(c["type"]).__name__, c["nullable"]) for c in inspector.get_columns(table.name)
        }
    return found


@pytest.fixture
async def migrated(store_target, tmp_path):
    """A store opened on each engine (a SQLite file, so the file's own schema is read back)."""
    target = tmp_path / "admonster.db" if store_target == ":memory:" else store_target
    async with await Store.open(target, secret_key=Fernet.generate_key()) as store:
        yield store


async def test_every_record_matches_the_migrated_schema(migrated):
    async with migrated._engine.connect() as connection:
        differences = await connection.run_sync(schema_differences)
        found = await connection.run_sync(columns_as_found)
    assert differences == []
    for table in RECORD_TABLES:
        record = table.info["record"]
        stored = [spec for spec in dataclasses.fields(record) if spec.metadata.get(COLUMN, ColumnInfo()).stored]
        # every stored field is a column of its table, named as declared, nullable exactly when the model says
        for spec in stored:
            column = table.c[spec.name]
            assert column.name in found[table.name], (table.name, column.name)
            assert found[table.name][column.name][1] == column.nullable, (table.name, column.name)
        # and the table has no column the declaration does not name (extras are declared on the table itself)
        assert set(found[table.name]) == {column.name for column in table.c}, table.name
    assert await migrated.schema_version() == int(head_revision())


STORAGE_FIELDS = {"workspace_id", "key", "created_at", "updated_at"}


def test_a_record_the_ops_use_is_declared_once_in_fb_utils():
    """The store's record of each concept the ops read and write is a subclass of the fb_utils record that declares
    none of its fields again (only the workspace and the store's own times), so a field added there is a column."""
    import fb_utils

    shared = {
        table.name: (record, base)
        for table in RECORD_TABLES
        for record in [table.info["record"]]
        for base in record.__mro__[1:2]
        if base.__module__ == "fb_utils"
    }
    assert set(shared) == {
        "launches",
        "leases",
        "alert_rules",
        "perf_snapshots",
        "spend_ledger",
        "billing_pauses",
        "experiments",
        "experiment_events",
    }
    for name, (record, base) in shared.items():
        own = set(get_annotations(record))
        assert own <= STORAGE_FIELDS and not own & {spec.name for spec in dataclasses.fields(base)}, name
        assert getattr(fb_utils, base.__name__) is base
        table = next(t for t in RECORD_TABLES if t.name == name)
        assert {spec.name for spec in dataclasses.fields(base)} <= set(table.c.keys()), name


async def test_json_time_and_flag_columns_are_converted_in_one_place(migrated, clock):
    workspace = await migrated.ensure_workspace("types")
    rule = await migrated.add_alert_rule(
        workspace.id,
        name="r",
        object_id="1",
        level="ad",
        metric="spend",
        operator=">",
        threshold=5,
        window="today",
        action="notify",
        cooldown_hours=1.5,
        enabled=False,
    )
    assert (rule.enabled, rule.threshold, rule.cooldown_hours) == (False, 5.0, 1.5)
    fired = datetime(2026, 3, 2, 20, 0, 1, 999, tzinfo=UTC)
    event = await migrated.record_alert_fired(
        workspace.id, rule.id, fired_at=fired, value=7.25, outcome="ok", detail={"é": [1, {"b": None}]}
    )
    assert event.fired_at == fired.replace(microsecond=0) and event.detail == {"é": [1, {"b": None}]}
    assert (await migrated.get_alert_rule(workspace.id, rule.id)).last_fired_at == fired.replace(microsecond=0)
    async with migrated._engine.connect() as connection:
        stored = (await connection.exec_driver_sql("SELECT detail_json, fired_at FROM alert_events")).one()
    assert json.loads(stored[0]) == {"é": [1, {"b": None}]} and stored[1] == "2026-03-02T20:00:01+00:00"


# -- a home of the last release before Alembic ----------------------------------------------------------------------

THEN = "2026-03-02T20:00:00+00:00"
LATER = "2126-03-02T20:00:00+00:00"


def fill_like_the_last_release(db_path, fernet: Fernet) -> dict[str, int]:
    """One row in every table, as the release with schema 11 wrote them (its SQL, its JSON, its encrypted fields)."""
    with sqlite3.connect(db_path) as db:
        ws = db.execute("INSERT INTO workspaces (name, created_at) VALUES ('agency', ?)", (THEN,)).lastrowid
        key = "amk_" + "L" * 43
        db.execute(
            "INSERT INTO api_keys (key_hash, key_id, workspace_id, created_at) VALUES (?, ?, ?, ?)",
            (hash_api_key(key), api_key_id(key), ws, THEN),
        )
        db.execute(
            "INSERT INTO settings VALUES (?, 'guardrails', ?, ?)", (ws, json.dumps({"max_daily_budget": 5000}), THEN)
        )
        db.execute("INSERT INTO selections VALUES (?, 'ad_account', 'act_101', ?)", (ws, THEN))
        audit = db.execute(
            "INSERT INTO audit_log (workspace_id, created_at, interface, op, args_json, summary, changes_json, "
            "object_ids_json, outcome, tags_json, settled_at) VALUES (?, ?, 'mcp', 'create_campaign', ?, 'made', ?, ?, "
            "'unknown', ?, NULL)",
            (
                ws,
                THEN,
                json.dumps({"name": "Spring"}),
                json.dumps([{"field": "status", "to": "PAUSED"}]),
                json.dumps(["120"]),
                json.dumps([{"tag": "am-1", "path": "act_101/campaigns", "name": "Spring"}]),
            ),
        ).lastrowid
        db.execute(
            "INSERT INTO confirmations (id, workspace_id, op, args_json, preview, created_at, expires_at, changes_json) "
            "VALUES ('c-0a0b0c', ?, 'add_users', ?, 'would add 1', ?, ?, ?)",
            (
                ws,
                fernet.encrypt(
                    json.dumps({"audience_id": "9", "source": [{"email": "ann@example.com"}]}).encode()
                ).decode(),
                THEN,
                LATER,
                json.dumps([{"field": "users", "to": 1}]),
            ),
        )
        db.execute(
            "INSERT INTO tokens (workspace_id, kind, token_encrypted, app_id, app_secret_encrypted, user_id, expires_at, "
            "scopes_json, created_at, updated_at, invalid_reason, checked_at) VALUES (?, 'user', ?, '77', ?, '555', ?, ?, ?, ?, NULL, ?)",
            (
                ws,
                fernet.encrypt(b"EAAB-old").decode(),
                fernet.encrypt(b"app-secret").decode(),
                LATER,
                json.dumps(["ads_management"]),
                THEN,
                THEN,
                THEN,
            ),
        )
        db.execute(
            "INSERT INTO oauth_states (nonce, workspace_id, created_at, expires_at, binding_hash, allow_switch) "
            "VALUES ('n-1', ?, ?, ?, 'abc', 1)",
            (ws, THEN, LATER),
        )
        db.execute("INSERT INTO token_warnings VALUES (?, 'expiry:7d:x', ?)", (ws, THEN))
        note = db.execute(
            "INSERT INTO notifications (workspace_id, channel, level, subject, text, target, dedupe_key, status, "
            "attempts, created_at, next_attempt_at) VALUES (?, 'email', 'warning', 'Token', 'expires', "
            "'ops@localhost', 'd-1', 'pending', 2, ?, ?)",
            (ws, THEN, THEN),
        ).lastrowid
        db.execute("INSERT INTO job_runs VALUES ('alerts', ?, 1, 'fine')", (THEN,))
        db.execute("INSERT INTO chat_messages VALUES (?, 'terminal', 1, 'user', 'hi', NULL, NULL, NULL, ?)", (ws, THEN))
        db.execute(
            "INSERT INTO chat_messages VALUES (?, 'terminal', 2, 'assistant', NULL, ?, NULL, NULL, ?)",
            (ws, json.dumps([{"id": "call_1", "type": "function"}]), THEN),
        )
        launch = db.execute(
            "INSERT INTO launches (workspace_id, key, request_json, status, steps_json, created_at, updated_at) "
            "VALUES (?, 'k1', ?, 'failed', ?, ?, ?)",
            (
                ws,
                json.dumps({"name": "L"}),
                json.dumps({"z_campaign": {"status": "done"}, "a_adset": {"status": "failed"}}),
                THEN,
                THEN,
            ),
        ).lastrowid
        db.execute("INSERT INTO leases VALUES (?, 'launch:k1', 'pid-1', ?, ?)", (ws, THEN, LATER))
        rule = db.execute(
            "INSERT INTO alert_rules (workspace_id, name, object_id, level, metric, operator, threshold, window, "
            "action, cooldown_hours, enabled, last_fired_at, created_at) VALUES (?, 'CPA', '120', 'campaign', "
            "'cpa', '>', 2000, 'yesterday', 'notify', 6, 0, ?, ?)",
            (ws, THEN, THEN),
        ).lastrowid
        db.execute(
            "INSERT INTO alert_events (workspace_id, rule_id, rule_name, fired_at, object_id, value, action, outcome, "
            "detail_json) VALUES (?, ?, 'CPA', ?, '120', 2500.5, 'notify', 'sent', '{}')",
            (ws, rule, THEN),
        )
        db.execute(
            "INSERT INTO perf_snapshots VALUES (?, '120', 'campaign', '2026-03-01', ?, ?)",
            (ws, json.dumps({"spend": 100}), THEN),
        )
        db.execute("INSERT INTO spend_ledger VALUES (?, 'act_101', '2026-03-01', 12345, 'USD', 1234, ?)", (ws, THEN))
        db.execute(
            "INSERT INTO billing_pauses (workspace_id, ad_account_id, object_ids_json, reason, created_at) "
            "VALUES (?, 'act_101', ?, 'card declined', ?)",
            (ws, json.dumps(["120"]), THEN),
        )
        experiment = db.execute(
            "INSERT INTO experiments (workspace_id, key, name, plan_json, status, ad_account_id, currency, variants_json, "
            "outcome_json, started_at, ends_at, created_at, updated_at) VALUES (?, 'p1', 'Headlines', ?, 'running', "
            "'act_101', 'USD', ?, '{}', ?, ?, ?, ?)",
            (
                ws,
                json.dumps({"certainty": 0.95}),
                json.dumps([{"name": "V1", "state": "running"}]),
                THEN,
                LATER,
                THEN,
                THEN,
            ),
        ).lastrowid
        db.execute(
            "INSERT INTO experiment_events (workspace_id, experiment_id, at, action, detail_json) "
            "VALUES (?, ?, ?, 'launched', '{}')",
            (ws, experiment, THEN),
        )
    return {
        "workspace": ws,
        "audit": audit,
        "notification": note,
        "launch": launch,
        "rule": rule,
        "experiment": experiment,
    }


async def test_a_home_of_the_last_release_upgrades_in_place_with_its_data(tmp_path, clock):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    db_path = home / "admonster.db"
    key = Fernet.generate_key()
    assert upgrade_legacy(db_path) == LEGACY_VERSION == int(BASELINE_REVISION)
    ids = fill_like_the_last_release(db_path, Fernet(key))
    ws = ids["workspace"]
    async with await Store.open(db_path, secret_key=key, clock=clock) as store:
        assert await store.schema_version() == int(head_revision()) > LEGACY_VERSION  # stamped 0011, then upgraded
        assert (await store.workspace_for_api_key("amk_" + "L" * 43)).name == "agency"
        assert (await store.guardrails(ws))["max_daily_budget"] == 5000
        assert await store.get_selection(ws, "ad_account") == "act_101"
        [unsettled] = await store.unsettled_audit(ws)
        assert (unsettled.id, unsettled.args, unsettled.object_ids, unsettled.tags[0]["tag"]) == (
            ids["audit"],
            {"name": "Spring"},
            ["120"],
            "am-1",
        )
        held = await store.take_confirmation(ws, "c-0a0b0c")
        assert held.args["source"][0]["email"] == "ann@example.com" and held.changes == [{"field": "users", "to": 1}]
        token = await store.load_token(ws)
        assert (token.token, token.app_secret, token.scopes, token.expires_at.year) == (
            "EAAB-old",
            "app-secret",
            ["ads_management"],
            2126,
        )
        assert await store.oauth_state_binding("n-1") == ("abc", True)
        assert not await store.record_token_warning(ws, "expiry:7d:x")  # already sent before the upgrade
        note = await store.get_notification(ws, ids["notification"])
        assert (note.attempts, note.level, note.next_attempt_at.isoformat()) == (2, "warning", THEN)
        assert (
            await store.enqueue_notification(
                ws, channel="email", subject="Token", text="again", target="ops@localhost", dedupe_key="d-1"
            )
            is None
        )
        assert (await store.last_job_run("alerts")).ok is True
        history = await store.chat_history(ws, "terminal")
        assert history == [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function"}]},
        ]
        assert await store.append_chat_messages(ws, "terminal", [{"role": "user", "content": "next"}]) == 3
        launch = await store.get_launch(ws, ids["launch"])
        assert list(launch.steps) == ["z_campaign", "a_adset"] and launch.status == "failed"  # the order they ran
        assert (await store.claim_lease(ws, "launch:k1", "pid-2", 30)).owner == "pid-1"
        rule = await store.get_alert_rule(ws, ids["rule"])
        assert (rule.enabled, rule.threshold, rule.last_fired_at.isoformat()) == (False, 2000.0, THEN)
        [event] = await store.list_alert_events(ws)
        assert (event.value, event.rule_id) == (2500.5, ids["rule"])
        [snapshot] = await store.list_snapshots(ws, "2026-03-01", "2026-03-01")
        assert snapshot.metrics == {"spend": 100}
        assert not await store.upsert_snapshot(ws, "120", "campaign", "2026-03-01", {"spend": 100})  # unchanged
        [spend] = await store.list_spend(ws, "2026-03-01", "2026-03-01")
        assert (spend.spend_minor, spend.fee_minor) == (12345, 1234)
        [pause] = await store.open_billing_pauses(ws)
        assert pause.object_ids == ["120"]
        experiment = await store.get_experiment(ws, ids["experiment"])
        assert (experiment.plan, experiment.variants[0]["name"]) == ({"certainty": 0.95}, "V1")
        assert [e.action for e in await store.list_experiment_events(ws, experiment.id)] == ["launched"]
        new = await store.add_experiment(
            ws,
            key="p2",
            name="Images",
            plan={},
            ad_account_id="101",
            currency="usd",
            variants=[{"name": "V1"}],
            started_at=THEN,
            ends_at=LATER,
        )
        assert new.id == ids["experiment"] + 1  # ids go on after the old rows
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
    async with await Store.open(db_path, secret_key=key) as store:  # the upgraded home now matches the records too
        async with store._engine.connect() as connection:
            assert legacy_only(await connection.run_sync(schema_differences)) == []
    with sqlite3.connect(db_path) as db:  # ... with the same foreign keys, delete rules included
        for table in RECORD_TABLES:
            found = {(row[3], row[2], row[4], row[6]) for row in db.execute(f"PRAGMA foreign_key_list({table.name})")}
            declared = {
                (fk.parent.name, fk.column.table.name, fk.column.name, fk.ondelete or "NO ACTION")
                for fk in table.foreign_keys
            }
            assert found == declared, table.name


def legacy_only(differences: list) -> list:
    """The differences left once two things SQLite's reflection cannot tell apart are set aside: a single-column
    primary key the old scripts did not also mark NOT NULL (SQLite keeps it non-null in use; an INTEGER one is the
    rowid), and a foreign key declared inline (`REFERENCES t(id) ON DELETE …`), whose delete rule SQLAlchemy does not
    parse; the caller checks those with PRAGMA foreign_key_list instead."""
    left = []
    for difference in differences:
        change = difference[0] if isinstance(difference, list) else difference
        if change[0] == "modify_nullable" and METADATA.tables[change[2]].c[change[3]].primary_key:
            continue
        if change[0] in ("remove_fk", "add_fk"):
            continue
        left.append(difference)
    return left


# -- ADMONSTER_DATABASE_URL ---------------------------------------------------------------------------------------


async def test_the_database_url_setting_opens_postgresql_and_hides_its_password(
    postgres_url, tmp_path, monkeypatch, clean_environment
):
    with_password = (
        postgres_url.replace("://", "://postgres:hunter2-secret@", 1) if "@" not in postgres_url else postgres_url
    )
    monkeypatch.setenv("ADMONSTER_DATABASE_URL", with_password)
    monkeypatch.setenv("ADMONSTER_HOME", str(tmp_path / "home"))
    settings = load_settings()
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    async with await open_store(settings) as store:
        assert store.dialect == "postgresql" and "hunter2" not in store.path
        workspace = await store.ensure_workspace("on-postgres")
        await store.save_token(workspace.id, token="EAAB-pg")
        assert (await store.load_token(workspace.id)).token == "EAAB-pg"
    # the key that encrypts tokens is the home's key file, as with SQLite, unless ADMONSTER_SECRET_KEY is set
    assert (tmp_path / "home" / "secret.key").exists() and not (tmp_path / "home" / "admonster.db").exists()


def test_a_database_url_that_is_not_postgresql_is_one_line_without_the_password(monkeypatch, clean_environment):
    monkeypatch.setenv("ADMONSTER_DATABASE_URL", "mysql://root:hunter2-secret@db/admonster")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert (
        "ADMONSTER_DATABASE_URL names a mysql database" in message
        and "Fix: set ADMONSTER_DATABASE_URL to postgresql" in message
    )
    assert "hunter2" not in message and "\n" not in message


async def test_an_unreachable_server_is_one_line_without_the_password():
    with pytest.raises(StoreError) as caught:
        await Store.open(
            "postgresql+asyncpg://bob:hunter2-secret@127.0.0.1:1/admonster", secret_key=Fernet.generate_key()
        )
    message = str(caught.value)
    assert message.startswith("Could not open the database postgresql+asyncpg://bob:***@127.0.0.1:1/admonster")
    assert "hunter2" not in message and "Fix: check ADMONSTER_DATABASE_URL" in message


async def test_a_store_on_a_server_needs_the_token_key(postgres_url):
    with pytest.raises(
        admonster_store.SecretKeyError,
        match=re.escape("needs the key that encrypts its tokens. Fix: set ADMONSTER_SECRET_KEY"),
    ):
        await Store.open(postgres_url)

"""A/B experiments in the store (migration 7): experiments and their events, workspace isolation, and
`admonster_store.WorkspaceState` (`Facebook.state()`), the `ctx.experiments` an op handler gets, over a real Facebook session."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import CheckConstraint

import admonster_store
import admonster_store_legacy
import fb_utils
from admonster_store import InvalidArgument, Store
from admonster_store_legacy import LEGACY_VERSION, upgrade_legacy
from fb_utils import ExperimentRecord, OpArgs, OpKind, OpResult, OpSet, ValidationError

pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture
async def store(store_target, clock):
    """The store on each engine: SQLite in memory, then a fresh PostgreSQL database."""
    async with await Store.open(store_target, secret_key=Fernet.generate_key(), clock=clock) as opened:
        yield opened


TOKYO = timezone(timedelta(hours=9))


def variants(*states: str) -> list[dict]:
    return [
        {
            "name": f"V{i}",
            "adset_id": f"23850000000000{i}",
            "ad_ids": [f"23860000000000{i}"],
            "state": state,
            "reason": None,
            "changed_at": None,
        }
        for i, state in enumerate(states, start=1)
    ]


async def add(store: Store, workspace_id: int, **overrides) -> admonster_store.Experiment:
    fields = {
        "key": "plan-hash-1",
        "name": "Headline test",
        "plan": {"variants": ["V1", "V2"], "certainty": 0.95},
        "ad_account_id": "act_101",
        "currency": "usd",
        "variants": variants("running", "running"),
        "started_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        "ends_at": datetime(2026, 3, 15, 12, 0, tzinfo=UTC),
    }
    return await store.add_experiment(workspace_id, **{**fields, **overrides})


# -- migration 7 ------------------------------------------------------------------------------------------------


async def test_a_version_6_database_gains_the_experiment_tables_and_keeps_its_data(tmp_path):
    db_path = tmp_path / "admonster.db"
    assert upgrade_legacy(db_path, 6) == 6
    with sqlite3.connect(db_path) as old:  # a rule as the version 6 code wrote it
        workspace_id = old.execute(
            "INSERT INTO workspaces (name, created_at) VALUES ('legacy', '2026-03-01T00:00:00+00:00')"
        ).lastrowid
        rule_id = old.execute(
            "INSERT INTO alert_rules (workspace_id, name, object_id, level, metric, operator, threshold, window, action, "
            "cooldown_hours, created_at) VALUES (?, 'CPA', '1', 'campaign', 'cpa', '>', 2000, 'yesterday', 'notify', 6, "
            "'2026-03-01T00:00:00+00:00')",
            (workspace_id,),
        ).lastrowid
    async with await Store.open(db_path) as upgraded:
        assert await upgraded.schema_version() >= LEGACY_VERSION >= 7
        assert (await upgraded.get_alert_rule(workspace_id, rule_id)).name == "CPA"
        created = await add(upgraded, workspace_id)
        assert (await upgraded.get_experiment(workspace_id, created.id)).name == "Headline test"
    with sqlite3.connect(db_path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"experiments", "experiment_events"} <= tables
    assert "experiment_events_experiment" in indexes


def test_the_store_knows_the_same_statuses_as_the_ops():
    assert admonster_store.EXPERIMENT_STATUSES == fb_utils.EXPERIMENT_STATUSES
    assert admonster_store.VARIANT_STATES == fb_utils.VARIANT_STATES
    assert all(f"'{status}'" in admonster_store_legacy.MIGRATIONS[6] for status in fb_utils.EXPERIMENT_STATUSES)
    [check] = [c for c in admonster_store.experiments.constraints if isinstance(c, CheckConstraint)]
    assert all(f"'{status}'" in str(check.sqltext) for status in fb_utils.EXPERIMENT_STATUSES)


# -- experiments --------------------------------------------------------------------------------------------------


async def test_add_then_get_and_find_decode_json_and_keep_times_in_utc(store, two, clock):
    alpha, _ = two
    store.clock = clock
    created = await add(
        store,
        alpha.id,
        ad_account_id="101",
        study_id="120330000000001",
        started_at=datetime(2026, 3, 1, 21, 0, tzinfo=TOKYO),
        ends_at="2026-03-15T12:00:00",
        outcome={"decision": None},
    )
    assert created.id > 0 and created.workspace_id == alpha.id
    assert (created.key, created.name, created.status) == ("plan-hash-1", "Headline test", "running")
    assert (created.ad_account_id, created.currency, created.study_id, created.winner) == (
        "act_101",
        "USD",
        "120330000000001",
        None,
    )
    assert created.plan == {"variants": ["V1", "V2"], "certainty": 0.95}
    assert created.variants == variants("running", "running") and created.outcome == {"decision": None}
    assert (created.started_at, created.ends_at) == ("2026-03-01T12:00:00+00:00", "2026-03-15T12:00:00+00:00")
    assert created.last_scaled_at is None
    assert created.created_at == created.updated_at == clock.now.isoformat()
    assert await store.get_experiment(alpha.id, created.id) == created
    assert await store.find_experiment(alpha.id, "plan-hash-1") == created
    assert await store.find_experiment(alpha.id, "another-plan") is None
    assert await store.get_experiment(alpha.id, created.id + 1) is None


async def test_a_plan_key_used_twice_names_the_experiment_that_has_it(store, two):
    alpha, _ = two
    first = await add(store, alpha.id)
    with pytest.raises(InvalidArgument) as caught:
        await add(store, alpha.id, name="Another name")
    message = str(caught.value)
    assert f"Experiment {first.id} ('Headline test', running) was already started from this plan" in message
    assert f" Fix: check experiment {first.id} instead" in message
    assert len(await store.list_experiments(alpha.id)) == 1


async def test_a_name_used_twice_names_the_experiment_that_has_it(store, two):
    alpha, _ = two
    first = await add(store, alpha.id)
    await store.update_experiment(alpha.id, first.id, status="completed", winner="V2")
    with pytest.raises(InvalidArgument) as caught:
        await add(store, alpha.id, key="plan-hash-2", name="  Headline\ttest ")  # the same name once tidied
    message = str(caught.value)
    assert f"An experiment named 'Headline test' already exists (experiment {first.id}, completed)" in message
    assert f" Fix: pick another name, or check experiment {first.id}." in message


async def test_one_workspace_never_sees_anothers_experiments(store, two):
    alpha, beta = two
    mine = await add(store, alpha.id)
    theirs = await add(store, beta.id, ad_account_id="act_202")  # the same key and name are free in another workspace
    assert mine.id != theirs.id
    assert [e.id for e in await store.list_experiments(alpha.id)] == [mine.id]
    assert [e.id for e in await store.list_experiments(beta.id)] == [theirs.id]
    assert await store.get_experiment(beta.id, mine.id) is None
    assert (await store.find_experiment(beta.id, "plan-hash-1")).id == theirs.id
    assert await store.update_experiment(beta.id, mine.id, status="stopped") is None
    assert (await store.get_experiment(alpha.id, mine.id)).status == "running"
    with pytest.raises(InvalidArgument, match=f"Experiment {mine.id} is not in this workspace"):
        await store.add_experiment_event(beta.id, mine.id, "stopped", at=datetime(2026, 3, 2, tzinfo=UTC))
    await store.add_experiment_event(alpha.id, mine.id, "launched", at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert await store.list_experiment_events(beta.id, mine.id) == []
    assert len(await store.list_experiment_events(alpha.id, mine.id)) == 1


async def test_list_is_newest_first_and_filters_by_status(store, two):
    alpha, _ = two
    made = [await add(store, alpha.id, key=f"plan-{n}", name=f"Test {n}") for n in range(3)]
    await store.update_experiment(alpha.id, made[1].id, status="completed", winner="V1")
    assert [e.name for e in await store.list_experiments(alpha.id)] == ["Test 2", "Test 1", "Test 0"]
    assert [e.name for e in await store.list_experiments(alpha.id, status="running")] == ["Test 2", "Test 0"]
    assert [e.name for e in await store.list_experiments(alpha.id, "completed")] == ["Test 1"]
    assert await store.list_experiments(alpha.id, status="stopped") == []
    with pytest.raises(
        InvalidArgument,
        match=re.escape("Experiment status 'done' is not known. Fix: use one of running, completed, stopped"),
    ):
        await store.list_experiments(alpha.id, status="done")


async def test_update_changes_only_what_is_given_and_stamps_updated_at(store, two, clock):
    alpha, _ = two
    store.clock = clock
    created = await add(store, alpha.id)
    clock.advance(3600)
    settled = variants("loser", "winner")
    updated = await store.update_experiment(
        alpha.id,
        created.id,
        status="completed",
        variants=settled,
        winner="V2",
        study_id="120330000000009",
        outcome={"decision": "winner", "probability_best": {"V1": 0.02, "V2": 0.98}},
        last_scaled_at=datetime(2026, 3, 1, 22, 0, tzinfo=TOKYO),
    )
    assert (updated.status, updated.winner, updated.study_id) == ("completed", "V2", "120330000000009")
    assert updated.variants == settled
    assert updated.outcome == {"decision": "winner", "probability_best": {"V1": 0.02, "V2": 0.98}}
    assert updated.last_scaled_at == "2026-03-01T13:00:00+00:00"
    assert (updated.created_at, updated.updated_at) == (created.created_at, clock.now.isoformat())
    assert (updated.key, updated.name, updated.plan, updated.started_at, updated.ends_at) == (
        created.key,
        created.name,
        created.plan,
        created.started_at,
        created.ends_at,
    )
    assert await store.get_experiment(alpha.id, created.id) == updated

    extended = await store.update_experiment(
        alpha.id, created.id, ends_at="2026-03-20T12:00:00+00:00", last_scaled_at=None
    )
    assert (extended.ends_at, extended.last_scaled_at, extended.status) == (
        "2026-03-20T12:00:00+00:00",
        None,
        "completed",
    )


@pytest.mark.parametrize(
    "fields, refusal",
    [
        ({"name": "Renamed"}, "Experiment field name cannot be changed. Fix: change only status, plan, variants"),
        ({"status": "paused"}, "Experiment status 'paused' is not known. Fix: use one of running, completed, stopped"),
        ({"variants": {"V1": {}}}, "Experiment variants must be a list of objects. Fix:"),
        (
            {"variants": variants("running", "champion")},
            "Variant 'V2' has state 'champion'. Fix: use one of running, stopped, winner, loser",
        ),
        ({"last_scaled_at": "yesterday"}, "last_scaled_at 'yesterday' is not a time. Fix:"),
        (
            {"ends_at": "2026-02-01T00:00:00+00:00"},
            "is not after started_at 2026-03-01T12:00:00+00:00. Fix: pass a later ends_at",
        ),
        ({"winner": "  "}, "winner must be 1-200 characters or null. Fix:"),
    ],
)
async def test_update_refuses_what_the_store_cannot_keep(store, two, fields, refusal):
    alpha, _ = two
    created = await add(store, alpha.id)
    with pytest.raises(InvalidArgument) as caught:
        await store.update_experiment(alpha.id, created.id, **fields)
    assert refusal in str(caught.value)
    assert await store.get_experiment(alpha.id, created.id) == created


@pytest.mark.parametrize(
    "overrides, refusal",
    [
        ({"key": ""}, "Experiment key must be 1-200 characters. Fix:"),
        ({"name": " \n "}, "Experiment name must be 1-200 characters. Fix:"),
        ({"plan": ["V1", "V2"]}, "Experiment plan must be an object. Fix:"),
        ({"ad_account_id": "my account"}, "Ad account id 'my account' is not valid. Fix:"),
        ({"currency": "dollars"}, "Currency 'dollars' is not an ISO 4217 code. Fix:"),
        ({"status": "draft"}, "Experiment status 'draft' is not known. Fix:"),
        ({"variants": "V1,V2"}, "Experiment variants must be a list of objects. Fix:"),
        ({"started_at": "soon"}, "started_at 'soon' is not a time. Fix:"),
        ({"ends_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC)}, "is not after started_at"),
        ({"outcome": {"when": datetime(2026, 3, 1, tzinfo=UTC)}}, "Experiment outcome is not JSON-serializable"),
    ],
)
async def test_add_refuses_bad_values_before_writing(store, two, overrides, refusal):
    alpha, _ = two
    with pytest.raises(InvalidArgument) as caught:
        await add(store, alpha.id, **overrides)
    assert refusal in str(caught.value) and " Fix: " in str(caught.value)
    assert await store.list_experiments(alpha.id) == []


async def test_an_unknown_workspace_is_refused(store):
    with pytest.raises(InvalidArgument, match="Workspace 999 does not exist"):
        await add(store, 999)


async def test_secrets_never_reach_the_experiment_tables(store, two):
    alpha, _ = two
    created = await add(
        store,
        alpha.id,
        plan={"name": "x", "access_token": "EAAB-secret"},
        variants=[{"name": "V1", "state": "running", "token": "EAAB-secret"}],
    )
    await store.update_experiment(alpha.id, created.id, outcome={"app_secret": "shh", "decision": "none"})
    event = await store.add_experiment_event(
        alpha.id, created.id, "launched", {"password": "hunter2", "ids": ["1"]}, at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    stored = await store.get_experiment(alpha.id, created.id)
    assert stored.plan == {"name": "x"} and stored.variants == [{"name": "V1", "state": "running"}]
    assert stored.outcome == {"decision": "none"} and event.detail == {"ids": ["1"]}


# -- events -------------------------------------------------------------------------------------------------------


async def test_events_are_kept_oldest_first_with_their_details(store, two):
    alpha, _ = two
    first, second = await add(store, alpha.id), await add(store, alpha.id, key="plan-2", name="Audience test")
    launched = await store.add_experiment_event(
        alpha.id, first.id, "launched", {"adset_ids": ["1", "2"]}, at=datetime(2026, 3, 1, 21, 0, tzinfo=TOKYO)
    )
    await store.add_experiment_event(alpha.id, second.id, "launched", at="2026-03-01T13:00:00+00:00")
    stopped = await store.add_experiment_event(
        alpha.id,
        first.id,
        " variant_stopped ",
        {"variant": "V1", "p": 0.01},
        at=datetime(2026, 3, 3, 12, 0, tzinfo=UTC),
    )
    winner = await store.add_experiment_event(
        alpha.id, first.id, "winner", {"variant": "V2"}, at=datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    )
    assert (launched.experiment_id, launched.at, launched.action, launched.detail) == (
        first.id,
        "2026-03-01T12:00:00+00:00",
        "launched",
        {"adset_ids": ["1", "2"]},
    )
    assert stopped.action == "variant_stopped"
    assert await store.list_experiment_events(alpha.id, first.id) == [launched, stopped, winner]
    assert [e.action for e in await store.list_experiment_events(alpha.id, second.id)] == ["launched"]
    with pytest.raises(InvalidArgument, match=re.escape("Experiment event action must be 1-100 characters. Fix:")):
        await store.add_experiment_event(alpha.id, first.id, "", at=datetime(2026, 3, 4, tzinfo=UTC))
    with pytest.raises(InvalidArgument, match=re.escape("at 'later' is not a time. Fix:")):
        await store.add_experiment_event(alpha.id, first.id, "scaled", at="later")


async def test_deleting_an_experiment_or_its_workspace_deletes_its_events(tmp_path):
    db_path = tmp_path / "admonster.db"
    async with await Store.open(db_path) as store:
        alpha, beta = await store.ensure_workspace("alpha"), await store.ensure_workspace("beta")
        gone, kept = await add(store, alpha.id), await add(store, beta.id)
        for experiment, workspace in ((gone, alpha), (kept, beta)):
            await store.add_experiment_event(
                workspace.id, experiment.id, "launched", at=datetime(2026, 3, 1, tzinfo=UTC)
            )
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM experiments WHERE id = ?", (gone.id,))
        assert db.execute("SELECT experiment_id FROM experiment_events").fetchall() == [(kept.id,)]
        db.execute("DELETE FROM workspaces WHERE id = ?", (beta.id,))
        assert db.execute("SELECT COUNT(*) FROM experiments").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM experiment_events").fetchone()[0] == 0


# -- ctx.experiments through a real Facebook session --------------------------------------------------------------


def record(**overrides) -> ExperimentRecord:
    fields = {
        "id": 0,
        "key": "plan-hash-1",
        "name": "Headline test",
        "plan": {"variants": ["V1", "V2"]},
        "status": "running",
        "ad_account_id": "act_101",
        "currency": "USD",
        "variants": variants("running", "running"),
        "started_at": "2026-03-01T12:00:00+00:00",
        "ends_at": "2026-03-15T12:00:00+00:00",
    }
    return ExperimentRecord(**{**fields, **overrides})


async def test_store_experiments_keeps_records_for_the_session_workspace(facebook, store, demo_accounts, clock):
    async def runtime_now() -> datetime:  # the runtime's clock (the sandbox's in sandbox mode), here moved by hand
        return clock.now

    facebook.clock = runtime_now
    experiments = facebook.state()
    assert await facebook.now() == clock.now
    saved = await experiments.add_experiment(record(ad_account_id=demo_accounts["USD"]))
    assert saved.id > 0 and saved.created_at and saved.updated_at
    assert (saved.key, saved.name, saved.ad_account_id, saved.variants) == (
        "plan-hash-1",
        "Headline test",
        demo_accounts["USD"],
        variants("running", "running"),
    )
    assert await experiments.find_experiment("plan-hash-1") == saved
    assert await experiments.get_experiment(saved.id) == saved
    assert (
        await experiments.find_experiment("nope") is None and await experiments.get_experiment(saved.id + 100) is None
    )

    decided = replace(
        saved,
        status="completed",
        winner="V2",
        variants=variants("loser", "winner"),
        outcome={"decision": "winner"},
        last_scaled_at="2026-03-05T12:00:00+00:00",
        study_id="120330000000001",
    )
    await experiments.update_experiment(decided)
    again = await experiments.get_experiment(saved.id)
    assert (again.status, again.winner, again.variants, again.outcome, again.last_scaled_at, again.study_id) == (
        "completed",
        "V2",
        variants("loser", "winner"),
        {"decision": "winner"},
        "2026-03-05T12:00:00+00:00",
        "120330000000001",
    )
    assert [e.id for e in await experiments.experiments(status="completed")] == [saved.id]
    assert await experiments.experiments(status="running") == []

    at = await facebook.now()
    event = await experiments.add_experiment_event(saved.id, "winner", {"variant": "V2"}, at)
    assert (event.experiment_id, event.action, event.detail) == (saved.id, "winner", {"variant": "V2"})
    assert event.at == "2026-03-01T12:00:00+00:00"
    assert await experiments.experiment_events(saved.id) == [event]

    # The store holds them under the session's workspace only.
    assert [e.id for e in await store.list_experiments(facebook.workspace.id)] == [saved.id]
    other = await store.ensure_workspace("other")
    assert await store.list_experiments(other.id) == []


async def test_store_experiments_refusals_become_validation_errors(facebook, store, graph):
    from fi_facebook import Facebook

    experiments = facebook.state()
    saved = await experiments.add_experiment(record())
    with pytest.raises(ValidationError) as caught:
        await experiments.add_experiment(record(key="plan-hash-2"))
    error = caught.value
    assert error.blame_field == "name" and f"experiment {saved.id}" in error.message
    assert error.fix == f"pick another name, or check experiment {saved.id}."
    assert error.to_text().startswith("ERROR validation: An experiment named 'Headline test' already exists")
    with pytest.raises(ValidationError, match=f"Experiment {saved.id} .* was already started from this plan"):
        await experiments.add_experiment(record(name="Other"))
    with pytest.raises(ValidationError) as caught:
        await experiments.experiments(status="paused")
    assert caught.value.blame_field == "status" and "running, completed, stopped" in caught.value.fix

    # Another workspace's session sees none of it and cannot change it.
    other = Facebook(store, graph, await store.ensure_workspace("other"), clock=facebook.clock)
    theirs = other.state()
    assert await theirs.get_experiment(saved.id) is None and await theirs.experiments() == []
    with pytest.raises(ValidationError, match=f"Experiment {saved.id} is not in this workspace"):
        await theirs.update_experiment(replace(saved, status="stopped"))
    with pytest.raises(ValidationError, match=f"Experiment {saved.id} is not in this workspace") as caught:
        await theirs.add_experiment_event(saved.id, "stopped", {}, await other.now())
    assert caught.value.blame_field == "experiment_id"
    assert (await experiments.get_experiment(saved.id)).status == "running"
    assert await experiments.experiment_events(saved.id) == []
    with pytest.raises(ValidationError, match="Variant 'V1' has state 'best'"):
        await experiments.update_experiment(replace(saved, variants=[{"name": "V1", "state": "best"}]))


class CountArgs(OpArgs):
    """Count the workspace's experiments (a test op reading ctx.experiments)."""


probe = OpSet("test_experiments")


@probe.op(OpKind.READ)
async def count_experiments(ctx, args: CountArgs) -> OpResult:
    listed = await ctx.experiments.experiments()
    return OpResult(text=f"{len(listed)} experiment(s)", data={"names": [e.name for e in listed]})


async def test_op_handlers_get_ctx_experiments_from_the_dispatcher(store, graph, sandbox):
    from fi_facebook import Facebook, Registry
    from testkit import sandbox_clock

    workspace = await store.ensure_workspace("ops")
    facebook = Facebook(store, graph, workspace, registry=Registry.from_opsets([probe]), clock=sandbox_clock(sandbox))
    await store.add_experiment(
        workspace.id,
        key="k1",
        name="Creative test",
        plan={},
        ad_account_id="act_1",
        currency="USD",
        variants=variants("running"),
        started_at="2026-03-01T00:00:00+00:00",
        ends_at="2026-03-08T00:00:00+00:00",
    )
    result = await facebook.call("count_experiments", {})
    assert result.ok, result.text
    assert (result.text, result.data) == ("1 experiment(s)", {"names": ["Creative test"]})

"""WorkspaceState, the store bound to one workspace, is the ops' capabilities (fb_utils LaunchJournal, InsightsRecords,
ExperimentRecords) itself: every Protocol method is called on it against a real store, on SQLite and PostgreSQL, and
answers with the fb_utils records; another workspace's state sees none of it; refusals are the product's
ValidationError with fix and blame_field."""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from admonster_store import InvalidArgument, Store, StoreError, WorkspaceState
from fb_utils import (
    AlertRuleRecord,
    BillingPauseRecord,
    ExperimentEvent,
    ExperimentRecord,
    ExperimentRecords,
    InsightsRecords,
    LaunchJournal,
    LaunchRecord,
    LeaseHolder,
    SingleFlightPolicy,
    SnapshotRecord,
    SpendRecord,
    ValidationError,
    single_flight,
)

PROTOCOLS = (LaunchJournal, InsightsRecords, ExperimentRecords)


def protocol_methods(protocol: type) -> set[str]:
    return {name for name, value in vars(protocol).items() if inspect.iscoroutinefunction(value)}


@pytest.fixture
async def store(store_target, clock):
    async with await Store.open(store_target, secret_key=Fernet.generate_key(), clock=clock) as opened:
        yield opened


@pytest.fixture
async def state(store):
    return WorkspaceState(store, (await store.ensure_workspace("w")).id, SingleFlightPolicy(lease_seconds=30))


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_each_protocol_method_has_the_protocols_signature(protocol):
    for name in protocol_methods(protocol):
        ours = inspect.signature(getattr(WorkspaceState, name))
        theirs = inspect.signature(getattr(protocol, name))
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], name
        assert inspect.iscoroutinefunction(getattr(WorkspaceState, name)), name
    assert "policy" in protocol.__annotations__ or protocol is not LaunchJournal


async def test_every_launch_journal_method_on_a_real_store(state, store):
    called = set()
    assert await state.find("k1") is None
    called.add("find")
    launch = await state.start("k1", {"name": "Spring", "access_token": "secret"})
    called.add("start")
    assert isinstance(launch, LaunchRecord) and launch.status == "running" and launch.request == {"name": "Spring"}
    await state.step_sending(launch.id, "campaign", {"sent_at": 1})
    await state.step_done(launch.id, "campaign", "120", {"sent_at": 1})
    await state.step_sending(launch.id, "adset", {"sent_at": 2})
    await state.step_failed(launch.id, "adset", {"message": "refused"})
    await state.step_deleted(launch.id, "campaign")
    called |= {"step_sending", "step_done", "step_failed", "step_deleted"}
    got = await state.get(launch.id)
    called.add("get")
    assert {name: entry["status"] for name, entry in got.steps.items()} == {"campaign": "deleted", "adset": "failed"}
    assert got.failed_step()[0] == "adset" and got.done("campaign") is None
    await state.finish(launch.id, "rolled_back")
    called.add("finish")
    assert (await state.find("k1")).status == "rolled_back"
    assert (await state.start("k1", {"name": "Again"})).steps == {}  # a rolled-back launch starts again empty

    holder = await state.claim("launch:k1", "A")
    assert isinstance(holder, LeaseHolder) and holder.owner == "A" and holder.expires_at > holder.claimed_at
    assert (await state.claim("launch:k1", "B")).owner == "A"
    assert await state.renew("launch:k1", "A") and not await state.renew("launch:k1", "B")
    await state.release("launch:k1", "A")
    assert (await state.claim("launch:k1", "B")).owner == "B"
    called |= {"claim", "renew", "release"}
    async with single_flight(state, "launch:k2", "launch") as lease:  # the journal single_flight takes
        assert (await store.claim_lease(state.workspace_id, "launch:k2", "other", 30)).owner == lease.owner
    assert (await state.claim("launch:k2", "C")).owner == "C"  # released after the block
    assert called == protocol_methods(LaunchJournal)


async def test_every_insights_records_method_on_a_real_store(state, store, clock):
    called = set()
    await store.set_setting(state.workspace_id, "agency_fee_pct", 10)
    assert await state.setting("agency_fee_pct") == 10 and await state.setting("none", "d") == "d"
    called.add("setting")
    rule = AlertRuleRecord(
        id=0,
        name="CPA too high",
        object_id="120",
        level="campaign",
        metric="cpa",
        operator=">",
        threshold=500.0,
        window="today",
        action="notify",
        cooldown_hours=6.0,
        ad_account_id="act_1",
        currency="USD",
    )
    saved = await state.add_alert(rule)
    called.add("add_alert")
    assert saved.id > 0 and replace(saved, id=0) == rule
    with pytest.raises(ValidationError) as caught:
        await state.add_alert(rule)
    assert caught.value.blame_field == "name" and caught.value.fix.startswith("pick another name")
    assert "Fix:" not in caught.value.message
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    await state.alert_fired(saved.id, at, 612.5, "notified", {"value": 612.5})
    called.add("alert_fired")
    assert [r.last_fired_at for r in await state.alerts(enabled_only=True)] == [at]
    called.add("alerts")
    assert (await state.delete_alert(saved.id)).name == "CPA too high" and await state.delete_alert(saved.id) is None
    called.add("delete_alert")
    assert await state.alerts() == []

    snapshot = SnapshotRecord("120", "campaign", "2026-03-01", {"spend": 100})
    assert await state.put_snapshot(snapshot) and not await state.put_snapshot(snapshot)
    called.add("put_snapshot")
    assert await state.snapshots("2026-03-01", "2026-03-01", level="campaign") == [snapshot]
    called.add("snapshots")
    entry = SpendRecord("act_1", "2026-03-01", 12345, "USD", 1234)
    await state.put_spend(entry)
    called.add("put_spend")
    assert await state.spend("2026-03-01", "2026-03-02", ad_account_id="act_1") == [entry]
    called.add("spend")
    pause = await state.add_billing_pause("act_1", ["120", "121"], "billing failed")
    called.add("add_billing_pause")
    assert isinstance(pause, BillingPauseRecord) and pause.object_ids == ["120", "121"] and pause.resumed_at is None
    assert await state.open_billing_pauses("act_1") == [pause]
    called.add("open_billing_pauses")
    await state.billing_resumed(pause.id)
    called.add("billing_resumed")
    assert await state.open_billing_pauses("act_1") == []
    assert called == protocol_methods(InsightsRecords)


async def test_every_experiment_records_method_on_a_real_store(state, store):
    called = set()
    record = ExperimentRecord(
        id=0,
        key="plan-1",
        name="Headline test",
        plan={"variants": ["A", "B"]},
        status="running",
        ad_account_id="act_1",
        currency="USD",
        variants=[{"name": "A", "state": "running"}],
        started_at="2026-03-01T12:00:00+00:00",
        ends_at="2026-03-08T12:00:00+00:00",
    )
    assert await state.find_experiment("plan-1") is None
    called.add("find_experiment")
    saved = await state.add_experiment(record)
    called.add("add_experiment")
    assert saved.id > 0 and saved.created_at and replace(saved, id=0, created_at="", updated_at="") == record
    assert await state.find_experiment("plan-1") == saved
    assert await state.get_experiment(saved.id) == saved
    called.add("get_experiment")
    await state.update_experiment(replace(saved, status="completed", winner="A"))
    called.add("update_experiment")
    assert [(e.status, e.winner) for e in await state.experiments(status="completed")] == [("completed", "A")]
    called.add("experiments")
    with pytest.raises(ValidationError) as caught:
        await state.experiments(status="paused")
    assert caught.value.blame_field == "status" and "running, completed, stopped" in caught.value.fix
    event = await state.add_experiment_event(saved.id, "winner", {"variant": "A"}, datetime(2026, 3, 5, tzinfo=UTC))
    called.add("add_experiment_event")
    assert isinstance(event, ExperimentEvent) and event.at.startswith("2026-03-05")
    assert await state.experiment_events(saved.id) == [event]
    called.add("experiment_events")

    other = WorkspaceState(store, (await store.ensure_workspace("other")).id)
    assert await other.get_experiment(saved.id) is None and await other.experiments() == []
    with pytest.raises(ValidationError) as caught:
        await other.update_experiment(replace(saved, status="stopped"))
    assert (
        caught.value.blame_field == "experiment_id"
        and caught.value.message == f"Experiment {saved.id} is not in this workspace"
    )
    assert called == protocol_methods(ExperimentRecords)


async def test_a_store_refusal_is_the_products_validation_error_and_reads_as_one_line(store):
    with pytest.raises(InvalidArgument) as caught:
        await store.set_selection((await store.ensure_workspace("w")).id, "campaign", "1")
    error = caught.value
    assert isinstance(error, ValidationError) and isinstance(error, StoreError) and isinstance(error, ValueError)
    assert error.message == "Selection kind 'campaign' is not known"
    assert error.fix == "use ad_account, page, instagram_account."
    assert str(error) == "Selection kind 'campaign' is not known. Fix: use ad_account, page, instagram_account."
    assert error.to_text() == (
        "ERROR validation: Selection kind 'campaign' is not known. Fix: use ad_account, page, instagram_account."
    )

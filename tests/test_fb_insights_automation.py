"""Insights automation over the sandbox: alert rules (notify, pause, scale) with cooldowns on the sandbox clock,
snapshots, the weekly and spend reports, the billing guard, and the jobs that run them through fi_facebook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fb_insights import parse_row, totals
from fi_facebook import Facebook
from testkit import SANDBOX_START_ENV, job_context, sandbox_clock, sandbox_settings

pytestmark = pytest.mark.usefixtures("clean_environment")
DAY = 86400


@pytest.fixture
async def fb(store, graph, sandbox, demo_accounts):
    """The product's dispatch over the sandbox, its "now" the sandbox clock, the USD demo account selected."""
    workspace = await store.ensure_workspace("auto")
    await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
    return Facebook(store, graph, workspace, clock=sandbox_clock(sandbox))


async def advance(sandbox, seconds: float) -> None:
    await sandbox.control("POST", "clock", {"advance": seconds})


async def spender(graph, account: str) -> dict:
    """The campaign of the account that spent most yesterday, with its insights row (found, never hard-coded)."""
    rows = await graph.get_all(
        f"{account}/insights",
        {"level": "campaign", "date_preset": "yesterday", "fields": "campaign_id,campaign_name,spend"},
    )
    rows = [r for r in rows if float(r["spend"]) > 0]
    assert rows, "the demo account has a campaign that spent yesterday"
    return max(rows, key=lambda r: float(r["spend"]))


async def campaign(graph, campaign_id: str) -> dict:
    return await graph.get(campaign_id, {"fields": "id,name,status,daily_budget"})


async def alert(fb, **args) -> dict:
    result = await fb.call("create_alert", args)
    assert result.ok, result.text
    return result.data["alert"]


# -- create / list / delete ------------------------------------------------------------------------------------


async def test_create_alert_validates_and_echoes_money(fb, graph, demo_accounts):
    top = await spender(graph, demo_accounts["USD"])
    created = await fb.call(
        "create_alert",
        {
            "name": "CPA over $20",
            "object_id": top["campaign_id"],
            "metric": "cpa",
            "operator": ">",
            "threshold": 2000,
            "action": "pause",
        },
    )
    assert created.ok and "cpa > $20.00 over today" in created.text and created.data["currency"] == "USD"
    jpy = await fb.call(
        "create_alert",
        {
            "name": "Tokyo spend",
            "object_id": demo_accounts["JPY"],
            "level": "account",
            "metric": "spend",
            "operator": ">=",
            "threshold": 5000,
        },
    )
    assert jpy.ok and "spend >= ¥5,000" in jpy.text and jpy.data["currency"] == "JPY"

    refused = {
        "scale without a cap": {"action": "scale", "scale_pct": 20},
        "fractional money": {"threshold": 20.5},
        "unknown metric": {"metric": "likes"},
        "pause an account": {"object_id": demo_accounts["USD"], "level": "account", "action": "pause"},
    }
    for why, change in refused.items():
        args = {
            "name": why,
            "object_id": top["campaign_id"],
            "metric": "cpa",
            "operator": ">",
            "threshold": 2000,
            **change,
        }
        answer = await fb.call("create_alert", args)
        assert not answer.ok and answer.text.startswith("ERROR validation"), why
    duplicate = await fb.call(
        "create_alert",
        {"name": "CPA over $20", "object_id": top["campaign_id"], "metric": "cpa", "operator": ">", "threshold": 1},
    )
    assert not duplicate.ok and "already exists" in duplicate.text

    listed = await fb.call("list_alerts")
    assert [a["name"] for a in listed.data["alerts"]] == ["CPA over $20", "Tokyo spend"]
    assert "#%d CPA over $20" % created.data["alert"]["id"] in listed.text
    deleted = await fb.call("delete_alert", {"alert_id": created.data["alert"]["id"]})
    assert deleted.ok and "Deleted alert" in deleted.text
    assert [a["name"] for a in (await fb.call("list_alerts")).data["alerts"]] == ["Tokyo spend"]


# -- evaluate: notify, pause, scale ----------------------------------------------------------------------------


async def test_notify_alert_fires_once_per_cooldown_on_the_sandbox_clock(fb, sandbox, demo_accounts, store):
    rule = await alert(
        fb,
        name="Spent anything",
        object_id=demo_accounts["USD"],
        level="account",
        metric="spend",
        operator=">",
        threshold=100,
        window="yesterday",
        cooldown_hours=24,
    )
    first = await fb.call("evaluate_alerts", interface="job")
    assert first.ok and [e["rule_id"] for e in first.data["fired"]] == [rule["id"]]
    event = first.data["fired"][0]
    assert event["outcome"] == "notified" and event["value"] > 100 and "$" in event["text"]

    again = await fb.call("evaluate_alerts", interface="job")
    assert again.data["fired"] == [] and again.data["cooling"] == 1
    await advance(sandbox, 23 * 3600)
    assert (await fb.call("evaluate_alerts", interface="job")).data["fired"] == []
    await advance(sandbox, 2 * 3600)  # 25 h after it fired: the cooldown has passed
    later = await fb.call("evaluate_alerts", interface="job")
    assert len(later.data["fired"]) == 1
    events = await store.list_alert_events(fb.workspace.id)
    assert len(events) == 2 and all(e.rule_id == rule["id"] and e.outcome == "notified" for e in events)
    fired_at = [e.fired_at for e in events]
    assert fired_at[0] - fired_at[1] >= timedelta(hours=25)


async def test_condition_not_met_does_not_fire(fb, demo_accounts):
    await alert(
        fb,
        name="Huge spend",
        object_id=demo_accounts["USD"],
        level="account",
        metric="spend",
        operator=">",
        threshold=10**12,
        window="last_7d",
    )
    result = await fb.call("evaluate_alerts", interface="job")
    assert result.ok and result.data["fired"] == [] and "none fired" in result.text
    # An id of no rule here (another workspace's, or deleted) is said so, not "checked 0, none fired".
    unknown = await fb.call("evaluate_alerts", {"alert_id": 999999})
    assert not unknown.ok and unknown.text.startswith(
        "ERROR validation: Alert #999999 does not exist in this workspace"
    )


async def test_pause_action_pauses_and_is_audited(fb, graph, store, demo_accounts):
    top = await spender(graph, demo_accounts["USD"])
    assert (await campaign(graph, top["campaign_id"]))["status"] == "ACTIVE"
    await alert(
        fb,
        name="Stop it",
        object_id=top["campaign_id"],
        metric="spend",
        operator=">",
        threshold=1,
        window="yesterday",
        action="pause",
    )
    result = await fb.call("evaluate_alerts", interface="job")
    assert result.ok and result.data["fired"][0]["outcome"] == "paused", result.text
    assert (await campaign(graph, top["campaign_id"]))["status"] == "PAUSED"
    audit = await store.list_audit(fb.workspace.id)
    pause = next(e for e in audit if e.op == "pause_campaign")
    assert pause.interface == "job" and pause.outcome == "ok" and pause.object_ids == [top["campaign_id"]]
    assert [(c["field"], c["before"], c["after"]) for c in pause.changes] == [("status", "ACTIVE", "PAUSED")]
    assert any(e.op == "evaluate_alerts" and e.interface == "job" for e in audit)


async def test_scale_is_capped_by_guardrails_then_the_rule_cap_and_cools_down(fb, graph, sandbox, store, demo_accounts):
    top = await spender(graph, demo_accounts["USD"])
    budget = int((await campaign(graph, top["campaign_id"]))["daily_budget"])
    guard = budget * 130 // 100
    await store.set_guardrails(fb.workspace.id, {"max_daily_budget": guard, "max_budget_increase_pct": 50})
    rule = await alert(
        fb,
        name="Scale winner",
        object_id=top["campaign_id"],
        metric="spend",
        operator=">",
        threshold=1,
        window="yesterday",
        action="scale",
        scale_pct=50,
        max_budget=budget * 10,
        cooldown_hours=12,
    )

    first = await fb.call("evaluate_alerts", interface="job")
    event = first.data["fired"][0]
    assert event["outcome"] == "scaled" and "max_daily_budget" in event["detail"], event
    assert int((await campaign(graph, top["campaign_id"]))["daily_budget"]) == guard  # not budget * 1.5, not the cap

    assert (await fb.call("evaluate_alerts", interface="job")).data["fired"] == []  # cooling down: acts once
    assert int((await campaign(graph, top["campaign_id"]))["daily_budget"]) == guard
    await advance(sandbox, 13 * 3600)
    held = (await fb.call("evaluate_alerts", interface="job")).data["fired"][0]
    assert held["outcome"] == "capped" and int((await campaign(graph, top["campaign_id"]))["daily_budget"]) == guard

    # Guardrails lifted: now the rule's own cap holds it.
    await store.set_guardrails(fb.workspace.id, {"max_daily_budget": None, "max_budget_increase_pct": 100})
    await fb.call("delete_alert", {"alert_id": rule["id"]})
    cap = guard + 77
    await alert(
        fb,
        name="Scale to cap",
        object_id=top["campaign_id"],
        metric="spend",
        operator=">",
        threshold=1,
        window="yesterday",
        action="scale",
        scale_pct=50,
        max_budget=cap,
    )
    capped = (await fb.call("evaluate_alerts", interface="job")).data["fired"][0]
    assert capped["outcome"] == "scaled" and "the rule's cap" in capped["detail"]
    assert int((await campaign(graph, top["campaign_id"]))["daily_budget"]) == cap
    scales = [e for e in await store.list_audit(fb.workspace.id) if e.op == "update_campaign"]
    assert all(e.interface == "job" and e.outcome == "ok" for e in scales)
    assert [(int(c["before"]), int(c["after"])) for e in reversed(scales) for c in e.changes] == [
        (budget, guard),
        (guard, cap),
    ]


async def test_scale_over_a_confirm_always_policy_is_not_run(fb, graph, store, demo_accounts):
    top = await spender(graph, demo_accounts["USD"])
    budget = int((await campaign(graph, top["campaign_id"]))["daily_budget"])
    await store.set_guardrails(fb.workspace.id, {"confirm_policy": "always"})
    await alert(
        fb,
        name="Scale",
        object_id=top["campaign_id"],
        metric="spend",
        operator=">",
        threshold=1,
        window="yesterday",
        action="scale",
        scale_pct=10,
        max_budget=budget * 2,
    )
    result = await fb.call("evaluate_alerts", interface="job")
    assert not result.ok and result.data["fired"][0]["outcome"] == "failed"
    assert "nobody is there to confirm" in result.data["fired"][0]["detail"]
    assert int((await campaign(graph, top["campaign_id"]))["daily_budget"]) == budget


# -- snapshots and reports -------------------------------------------------------------------------------------


async def test_sync_snapshots_is_idempotent_and_keeps_each_level(fb, store, graph, sandbox, demo_accounts):
    first = await fb.call("sync_snapshots", {"ad_account_id": demo_accounts["USD"]})
    assert first.ok and first.data["kept"] > 0 and first.data["changed"] == first.data["kept"]
    again = await fb.call("sync_snapshots", {"ad_account_id": demo_accounts["USD"]})
    assert again.data["kept"] == first.data["kept"] and again.data["changed"] == 0
    day = first.data["accounts"][0]["day"]
    snaps = await store.list_snapshots(fb.workspace.id, day, day)
    assert len(snaps) == first.data["kept"] and {s.level for s in snaps} == {"account", "campaign", "adset", "ad"}
    account_row = next(s for s in snaps if s.level == "account")
    rows = await graph.get_all(f"{demo_accounts['USD']}/insights", {"date_preset": "yesterday", "fields": "spend"})
    assert account_row.metrics["spend_minor"] == totals(parse_row(r, "USD") for r in rows).spend_minor > 0

    await advance(sandbox, DAY)  # a new day: a new snapshot, yesterday's kept
    moved = await fb.call("sync_snapshots", {"ad_account_id": demo_accounts["USD"]})
    assert moved.data["accounts"][0]["day"] > day and moved.data["changed"] > 0
    assert len(await store.list_snapshots(fb.workspace.id, day, day)) == first.data["kept"]


async def test_weekly_report_from_insights_then_from_snapshots(fb, graph, demo_accounts):
    account = demo_accounts["USD"]
    report = await fb.call("weekly_report", {"ad_account_id": account})
    assert report.ok and report.text.startswith("Weekly report") and "Top campaigns by spend" in report.text
    [data] = report.data["accounts"]
    rows = await graph.get_all(f"{account}/insights", {"date_preset": "last_7d", "fields": "spend,impressions"})
    assert data["current"]["spend_minor"] == totals(parse_row(r, "USD") for r in rows).spend_minor
    assert data["source"] == "insights" and data["previous"]["spend_minor"] > 0
    top = await spender(graph, account)
    assert top["campaign_name"] in report.text and "spend: $" in report.text and "(was $" in report.text

    until = datetime.fromisoformat(report.data["period"]["until"]).date()
    for back in range(14):
        await fb.call("sync_snapshots", {"ad_account_id": account, "day": (until - timedelta(days=back)).isoformat()})
    kept = await fb.call("weekly_report", {"ad_account_id": account})
    assert kept.data["accounts"][0]["source"] == "snapshots"
    assert kept.data["accounts"][0]["current"]["spend_minor"] == data["current"]["spend_minor"]
    assert kept.data["accounts"][0]["previous"]["spend_minor"] == data["previous"]["spend_minor"]


async def test_spend_report_with_fee_in_usd_and_jpy(fb, graph, store, demo_accounts):
    expected = {}
    for currency, account in demo_accounts.items():
        rows = await graph.get_all(
            f"{account}/insights", {"date_preset": "yesterday", "level": "campaign", "fields": "campaign_id,spend"}
        )
        expected[currency] = totals(parse_row(r, currency) for r in rows).spend_minor
    report = await fb.call("spend_report", {"fee_pct": 15})
    assert report.ok
    by_currency = {a["currency"]: a for a in report.data["accounts"]}
    for currency, spend in expected.items():
        entry = by_currency[currency]
        assert entry["spend_minor"] == spend and entry["fee_minor"] == int(spend * 0.15 + 0.5)
        assert entry["total_minor"] == spend + entry["fee_minor"]
        assert report.data["totals"][currency]["total_minor"] == entry["total_minor"]
    assert expected["JPY"] > 0 and expected["USD"] > 0
    assert "¥" in report.text and "$" in report.text and "agency fee 15%" in report.text
    assert f"Total JPY: ¥{expected['JPY']:,}" in report.text

    await store.set_setting(fb.workspace.id, "agency_fee_pct", 10)  # the workspace setting when no fee_pct is given
    from_setting = await fb.call("spend_report", {"ad_account_id": demo_accounts["JPY"]})
    assert from_setting.data["fee_pct"] == 10 and from_setting.data["accounts"][0]["fee_minor"] == int(
        expected["JPY"] * 0.1 + 0.5
    )
    [day_row] = await graph.get_all(
        f"{demo_accounts['USD']}/insights", {"date_preset": "yesterday", "fields": "spend,date_start"}
    )
    day = day_row["date_start"]
    ranged = await fb.call("spend_report", {"ad_account_id": demo_accounts["USD"], "since": day, "until": day})
    assert ranged.ok and ranged.data["accounts"][0]["spend_minor"] == expected["USD"] and day in ranged.text
    bad = await fb.call("spend_report", {"since": "2026-01-02"})
    assert not bad.ok and "since and until go together" in bad.text


# -- billing guard ---------------------------------------------------------------------------------------------


async def test_billing_failed_pauses_exactly_the_active_and_recovered_resumes_exactly_those(
    fb, graph, sandbox, store, demo_accounts
):
    account = demo_accounts["USD"]
    await sandbox.control(
        "POST", "seed", {"campaigns": 3, "account_id": account, "status": "ACTIVE", "name_prefix": "Live"}
    )
    already = (
        await sandbox.control(
            "POST", "seed", {"campaigns": 2, "account_id": account, "status": "PAUSED", "name_prefix": "Resting"}
        )
    )["ids"]
    before = await graph.get_all(f"{account}/campaigns", {"fields": "id,status"})
    active = {c["id"] for c in before if c["status"] == "ACTIVE"}
    assert len(active) >= 4

    failed = await fb.call("billing_failed", {"ad_account_id": account}, interface="job")
    assert failed.ok, failed.text
    assert set(failed.data["paused"]) == active
    after = {c["id"]: c["status"] for c in await graph.get_all(f"{account}/campaigns", {"fields": "id,status"})}
    assert all(after[i] == "PAUSED" for i in active | set(already))
    [pause] = await store.open_billing_pauses(fb.workspace.id, account)
    assert set(pause.object_ids) == active
    entry = next(e for e in await store.list_audit(fb.workspace.id) if e.op == "billing_failed")
    assert entry.interface == "job" and set(entry.object_ids) == active and len(entry.changes) == len(active)

    held = await fb.call("billing_recovered", {"ad_account_id": account})
    assert not held.ok and held.data["error"] == "confirmation_required"  # resuming spends: the gate asks first
    resumed = await fb.call("billing_recovered", {"ad_account_id": account, "confirm": held.data["confirmation_id"]})
    assert resumed.ok, resumed.text
    assert set(resumed.data["resumed"]) == active
    final = {c["id"]: c["status"] for c in await graph.get_all(f"{account}/campaigns", {"fields": "id,status"})}
    assert all(final[i] == "ACTIVE" for i in active) and all(final[i] == "PAUSED" for i in already)
    assert await store.open_billing_pauses(fb.workspace.id, account) == []
    nothing = await fb.call("billing_recovered", {"ad_account_id": account})
    assert nothing.ok and "nothing to resume" in nothing.text


async def test_billing_recovered_skips_campaigns_a_person_changed_meanwhile(fb, graph, sandbox, store, demo_accounts):
    account = demo_accounts["USD"]
    await store.set_guardrails(fb.workspace.id, {"confirm_policy": "never"})
    await sandbox.control(
        "POST", "seed", {"campaigns": 2, "account_id": account, "status": "ACTIVE", "name_prefix": "Live"}
    )
    paused = (await fb.call("billing_failed", {"ad_account_id": account})).data["paused"]
    archived = paused[0]
    assert (await fb.call("archive_campaign", {"campaign_id": archived})).ok
    resumed = await fb.call("billing_recovered", {"ad_account_id": account})
    assert resumed.ok and set(resumed.data["resumed"]) == set(paused) - {archived}
    assert (await campaign(graph, archived))["status"] == "ARCHIVED"


# -- jobs: through the runtime (sandbox mode), their "now" the sandbox's clock -----------------------------------


@pytest.fixture
async def runtime(tmp_path):
    from admonster_runtime import open_runtime

    settings = sandbox_settings(tmp_path)
    async with open_runtime(settings) as opened:
        yield opened


async def control(runtime, method: str, path: str, json: dict | None = None) -> dict:
    from admonster_runtime import _sandbox_call

    return await _sandbox_call(runtime.sandbox_url, method, path, json)


async def inbox_subjects(runtime, workspace) -> list[str]:
    return [n.subject for n in await runtime.store.list_notifications(workspace.id, channel="inbox")]


async def test_jobs_follow_the_sandbox_clock(runtime):
    from admonster_jobs import run_job

    ctx = job_context(runtime)
    workspace = await runtime.workspace("default")
    facebook = await runtime.facebook_for(workspace)
    account = (await facebook.selections())["ad_account"]
    created = await facebook.call(
        "create_alert",
        {
            "name": "Any spend",
            "object_id": account,
            "level": "account",
            "metric": "spend",
            "operator": ">",
            "threshold": 1,
            "window": "yesterday",
            "cooldown_hours": 6,
        },
    )
    assert created.ok, created.text

    await control(runtime, "POST", "clock", {"advance": 3 * DAY})
    first = await run_job("alerts", ctx)
    sandbox_now = datetime.fromtimestamp((await control(runtime, "GET", "clock"))["epoch"], UTC)
    assert abs((ctx.now() - sandbox_now).total_seconds()) < 5  # the job's "now" is the sandbox's, days ahead
    assert first.ok and "1 fired" in first.summary, first.summary
    assert (await runtime.store.last_job_run("alerts")).last_run_at >= sandbox_now - timedelta(seconds=5)
    assert [s for s in await inbox_subjects(runtime, workspace) if s.startswith("Alert Any spend")]
    assert "0 fired" in (await run_job("alerts", ctx)).summary  # cooling down
    await control(runtime, "POST", "clock", {"advance": 7 * 3600})
    assert "1 fired" in (await run_job("alerts", ctx)).summary
    assert len([s for s in await inbox_subjects(runtime, workspace) if s.startswith("Alert Any spend")]) == 2

    synced = await run_job("insights_sync", ctx)
    assert synced.ok and "snapshot" in synced.summary
    yesterday = (sandbox_now.astimezone() - timedelta(days=1)).date()
    around = await runtime.store.list_snapshots(
        workspace.id, (yesterday - timedelta(days=1)).isoformat(), (yesterday + timedelta(days=1)).isoformat()
    )
    assert around and {s.level for s in around} >= {"account", "campaign"}
    kept = len(around)
    assert (await run_job("insights_sync", ctx)).ok
    assert (
        len(
            await runtime.store.list_snapshots(
                workspace.id, (yesterday - timedelta(days=1)).isoformat(), (yesterday + timedelta(days=1)).isoformat()
            )
        )
        == kept
    )

    report = await run_job("weekly_report", ctx)
    assert report.ok, report.summary
    [weekly] = [
        n
        for n in await runtime.store.list_notifications(workspace.id, channel="inbox")
        if n.subject.startswith("Weekly report")
    ]
    assert "Top campaigns by spend" in weekly.text and "(was " in weekly.text

    billing = await run_job("spend_billing", ctx)
    assert billing.ok, billing.summary
    ledger = await runtime.store.list_spend(workspace.id, "2000-01-01", "2100-01-01")
    assert {e.currency for e in ledger} == {"USD", "JPY"} and all(e.spend_minor >= 0 for e in ledger)
    assert any(e.spend_minor > 0 for e in ledger)


async def test_spend_billing_resumes_after_a_recorded_billing_pause(runtime):
    """An account back at status 1 with an open billing pause: the job asks to resume (the gate holds activation)."""
    from admonster_jobs import run_job

    ctx = job_context(runtime)
    workspace = await runtime.workspace("default")
    facebook = await runtime.facebook_for(workspace)
    account = (await facebook.selections())["ad_account"]
    paused = await facebook.call("billing_failed", {"ad_account_id": account}, interface="job")
    assert paused.ok and paused.data["paused"], paused.text
    result = await run_job("spend_billing", ctx)
    assert result.ok and "active again" in result.summary, result.summary
    [notice] = [
        n for n in await runtime.store.list_notifications(workspace.id, channel="inbox") if "Billing fixed" in n.subject
    ]
    assert "/confirm c-" in notice.text
    confirm_id = notice.text.split("/confirm ")[1].split(".")[0].split()[0]
    resumed = await facebook.call("confirm", {"confirm": confirm_id})
    assert resumed.ok and set(resumed.data["resumed"]) == set(paused.data["paused"])
    assert await runtime.store.open_billing_pauses(workspace.id) == []


def test_admonster_jobs_run_by_name(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ADMONSTER_")},
        **SANDBOX_START_ENV,
        "ADMONSTER_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "admonster_bot", *args],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            timeout=120,
        )

    assert cli("call", "list_ad_accounts").returncode == 0  # the default workspace, connected to the embedded sandbox
    listed = cli("jobs", "list").stdout
    assert "weekly_report\tweekly on Monday at 08:00" in listed and "alerts\tevery 3600s" in listed
    for job in ("alerts", "insights_sync", "weekly_report", "spend_billing"):
        done = cli("jobs", "run", job)
        assert done.returncode == 0, done.stderr + done.stdout
        assert done.stdout.startswith("1 workspace(s): default: "), done.stdout


async def test_slash_commands_alerts_report_spend(fb, demo_accounts):
    from admonster_chat import parse_slash, slash_to_call
    from fi_facebook import REGISTRY

    assert slash_to_call(parse_slash("/alerts"), REGISTRY) == ("list_alerts", {})
    assert slash_to_call(parse_slash("/report"), REGISTRY) == ("weekly_report", {})
    op, args = slash_to_call(parse_slash("/spend last_7d fee_pct=12.5"), REGISTRY)
    assert (op, args) == ("spend_report", {"date_preset": "last_7d", "fee_pct": "12.5"})
    answer = await fb.call(op, {**args, "ad_account_id": demo_accounts["USD"]})
    assert answer.ok and answer.data["fee_pct"] == 12.5 and "last_7d" in answer.text

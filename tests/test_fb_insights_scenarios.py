"""The recommendation rules and the billing trigger end to end over the real sandbox: each rule fired by a crafted
delivery scenario (POST /__sandbox/delivery {"scenario": {...}}) and silent in a control scenario, with the numbers
of each explanation checked against insights read back; the `spend_billing` job pausing and resuming exactly the
right campaigns when the ad account's account_status changes (POST /__sandbox/accounts/{act_id})."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, date, timedelta

import pytest

from fb_insights import derived, money, parse_row
from testkit import sandbox_settings

pytestmark = pytest.mark.usefixtures("clean_environment")
BUDGET = 5000  # $50.00 a day per ad set
BIG = 20000  # $200.00: enough conversions a week that noise moves a CPA by a few percent only


async def scenario(sandbox, account: str, **spec) -> dict:
    body = await sandbox.control("POST", "delivery", {"scenario": {"account_id": account, **spec}})
    return body["scenario"]


async def recommend(facebook, campaign_id: str) -> tuple[list[dict], str]:
    """The campaign's recommendations (the filter keeps the demo's other campaigns out of the medians)."""
    result = await facebook.call("recommendations", {"campaign_id": campaign_id})
    assert result.ok, result.text
    assert result.text.count("\n- ") == len(result.data["recommendations"])
    return result.data["recommendations"], result.data["latest_day"]


def of_rule(recs: list[dict], rule: str) -> dict[str, dict]:
    return {r["object_id"]: r for r in recs if r["rule"] == rule}


async def read(graph, object_id: str, **params) -> dict:
    """One insights row of an object, read back straight from the Graph API."""
    fields = "impressions,reach,frequency,clicks,inline_link_clicks,spend,ctr,cpc,actions,action_values"
    rows = await graph.get_all(f"{object_id}/insights", {"fields": fields, **params})
    assert len(rows) == 1, rows
    return rows[0]


def window(latest: str, back: int) -> dict:
    """time_range of the 7 days ending `back` days before latest."""
    last = date.fromisoformat(latest) - timedelta(days=back)
    return {"time_range": {"since": (last - timedelta(days=6)).isoformat(), "until": last.isoformat()}}


# -- low CTR vs the account median -------------------------------------------------------------------------------


async def test_low_ctr_ad_is_named_with_the_median(facebook, graph, sandbox, demo_accounts):
    usd = demo_accounts["USD"]
    weak = await scenario(
        sandbox,
        usd,
        name="Weak creative",
        ads=3,
        adsets=3,
        days=21,
        daily_budget=BUDGET,
        true_effects={"0": {"ctr": 0.3}},
    )
    recs, _latest = await recommend(facebook, weak["campaign_id"])
    low = of_rule(recs, "low_ctr")
    assert set(low) == {weak["ad_ids"][0]}, recs
    rec = low[weak["ad_ids"][0]]
    assert rec["action"] == {"op": "pause_ad", "args": {"ad_id": weak["ad_ids"][0]}} and rec["severity"] == "warning"
    rows = {ad: await read(graph, ad, date_preset="last_7d") for ad in weak["ad_ids"]}
    ctrs = {ad: float(r["ctr"]) for ad, r in rows.items()}
    median = statistics.median(ctrs.values())
    weak_row = rows[weak["ad_ids"][0]]
    assert f"CTR {ctrs[weak['ad_ids'][0]]:.2f}% over {int(weak_row['impressions']):,} impressions" in rec["reason"]
    assert f"account median {median:.2f}%" in rec["reason"]
    assert ctrs[weak["ad_ids"][0]] < median / 2

    control = await scenario(sandbox, usd, name="Even creatives", ads=3, adsets=3, days=21, daily_budget=BUDGET)
    assert of_rule((await recommend(facebook, control["campaign_id"]))[0], "low_ctr") == {}


# -- CPC rising: last 7 days vs the 7 before ---------------------------------------------------------------------


async def test_cpc_rising_with_a_cpm_trend(facebook, graph, sandbox, demo_accounts):
    usd = demo_accounts["USD"]
    dearer = await scenario(
        sandbox, usd, name="Dearer auction", ads=2, days=21, daily_budget=2 * BUDGET, cpm_growth_per_day=0.08
    )
    recs, latest = await recommend(facebook, dearer["campaign_id"])
    rising = of_rule(recs, "cpc_rising")
    assert set(rising) == set(dearer["ad_ids"]), recs
    for ad in dearer["ad_ids"]:
        now = derived(parse_row(await read(graph, ad, **window(latest, 0)), "USD"))["cpc"]
        then = derived(parse_row(await read(graph, ad, **window(latest, 7)), "USD"))["cpc"]
        reason = rising[ad]["reason"]
        assert f"CPC rose {(now - then) / then * 100:.0f}% ({money(then, 'USD')} → {money(now, 'USD')}" in reason
        assert rising[ad]["action"]["op"] == "get_insights" and rising[ad]["action"]["args"]["object_id"] == ad
    daily = await graph.get_all(
        f"{dearer['campaign_id']}/insights", {"fields": "cpm", "date_preset": "last_14d", "time_increment": 1}
    )
    cpms = [float(r["cpm"]) for r in daily]
    assert statistics.mean(cpms[-3:]) > statistics.mean(cpms[:3]) * 1.3  # dearer day by day

    steady = await scenario(sandbox, usd, name="Steady auction", ads=2, days=21, daily_budget=2 * BUDGET)
    assert of_rule((await recommend(facebook, steady["campaign_id"]))[0], "cpc_rising") == {}


# -- frequency over 3: creative fatigue --------------------------------------------------------------------------


async def test_small_audience_fatigues_and_broad_does_not(facebook, graph, sandbox, demo_accounts):
    usd = demo_accounts["USD"]
    small = await scenario(sandbox, usd, name="Small audience", ads=1, days=21, daily_budget=BUDGET, audience_size=2000)
    [ad] = small["ad_ids"]
    recs, latest = await recommend(facebook, small["campaign_id"])
    fatigue = of_rule(recs, "creative_fatigue")
    assert set(fatigue) == {ad}, recs
    row = await read(graph, ad, date_preset="last_7d")
    impressions, reach = int(row["impressions"]), int(row["reach"])
    assert (
        f"frequency {impressions / reach:.1f} ({impressions:,} impressions to {reach:,} people in 7 days)"
        in fatigue[ad]["reason"]
    )
    assert fatigue[ad]["action"] == {"op": "pause_ad", "args": {"ad_id": ad}}
    weekly = [float((await read(graph, ad, **window(latest, back)))["frequency"]) for back in (14, 7, 0)]
    assert weekly[0] < weekly[1] < weekly[2] and weekly[2] > 3  # the same people see it more week after week

    broad = await scenario(sandbox, usd, name="Broad audience", ads=1, days=21, daily_budget=BUDGET)
    recs, _ = await recommend(facebook, broad["campaign_id"])
    assert of_rule(recs, "creative_fatigue") == {}
    assert float((await read(graph, broad["ad_ids"][0], date_preset="last_7d"))["frequency"]) < 2


# -- budgets: budget-limited winner, underspending ---------------------------------------------------------------


def spent_text(spend_minor: int, budget: int, days: int = 7) -> str:
    return f"spent {money(spend_minor, 'USD')} of {money(budget * days, 'USD')} ({spend_minor / (budget * days):.0%}) over {days} days"


async def test_budget_limited_winner_gets_a_scale_suggestion(facebook, graph, sandbox, demo_accounts):
    usd = demo_accounts["USD"]
    best = await scenario(
        sandbox, usd, name="Converts best", ads=3, adsets=3, days=14, daily_budget=BIG, true_effects={"0": {"cvr": 2.5}}
    )
    recs, _latest = await recommend(facebook, best["campaign_id"])
    winners = of_rule(recs, "budget_limited_winner")
    winner = best["adset_ids"][0]
    assert set(winners) == {winner}, recs
    rec = winners[winner]
    assert rec["action"] == {"op": "update_adset", "args": {"adset_id": winner, "daily_budget": 24000}}
    assert rec["severity"] == "opportunity"
    cpas = {}
    for adset in best["adset_ids"]:
        m = parse_row(await read(graph, adset, date_preset="last_7d"), "USD")
        cpas[adset] = derived(m)["cpa"]
        if adset == winner:
            assert m.spend_minor >= 0.95 * BIG * 7
            assert spent_text(m.spend_minor, BIG) in rec["reason"]
    median = statistics.median(cpas.values())
    assert f"CPA {money(cpas[winner], 'USD')} beats the median {money(median, 'USD')}" in rec["reason"]
    assert "($200.00 → $240.00)" in rec["reason"]

    # Three equal ad sets, all at their budget: the cheapest by a few percent of noise is no winner.
    even = await scenario(sandbox, usd, name="Even ad sets", ads=3, adsets=3, days=14, daily_budget=BIG)
    recs, _ = await recommend(facebook, even["campaign_id"])
    assert of_rule(recs, "budget_limited_winner") == {}, [
        r["reason"] for r in recs if r["rule"] == "budget_limited_winner"
    ]
    # The same winner held back by a small audience is not budget-limited: no scale suggestion.
    held = await scenario(
        sandbox,
        usd,
        name="Held back",
        ads=3,
        adsets=3,
        days=14,
        daily_budget=BIG,
        true_effects={"0": {"cvr": 2.5}},
        audience_size=[2000, None, None],
    )
    recs, _ = await recommend(facebook, held["campaign_id"])
    assert of_rule(recs, "budget_limited_winner") == {}, [
        r["reason"] for r in recs if r["rule"] == "budget_limited_winner"
    ]
    assert set(of_rule(recs, "underspending")) == {held["adset_ids"][0]}


async def test_underspending_ad_set_is_named(facebook, graph, sandbox, demo_accounts):
    usd = demo_accounts["USD"]
    narrow = await scenario(sandbox, usd, name="Narrow", ads=2, days=14, daily_budget=BUDGET, audience_size=2000)
    [adset] = narrow["adset_ids"]
    recs, _ = await recommend(facebook, narrow["campaign_id"])
    under = of_rule(recs, "underspending")
    assert set(under) == {adset}, recs
    spend = parse_row(await read(graph, adset, date_preset="last_7d"), "USD").spend_minor
    assert spend < 0.5 * BUDGET * 7
    assert spent_text(spend, BUDGET) in under[adset]["reason"]
    assert f"about {money(spend / 7, 'USD')}/day" in under[adset]["reason"]
    assert under[adset]["action"] == {"op": "get_adset", "args": {"adset_id": adset}}

    broad = await scenario(sandbox, usd, name="Broad", ads=2, days=14, daily_budget=BUDGET)
    recs, _ = await recommend(facebook, broad["campaign_id"])
    assert of_rule(recs, "underspending") == {}
    spend = parse_row(await read(graph, broad["adset_ids"][0], date_preset="last_7d"), "USD").spend_minor
    assert 0.95 * BUDGET * 7 <= spend <= BUDGET * 7  # a budget-limited ad set spends (almost) all of it


# -- learning phase ----------------------------------------------------------------------------------------------


async def test_learning_phase_until_50_results(facebook, graph, sandbox, demo_accounts):
    usd = demo_accounts["USD"]
    sales = await scenario(sandbox, usd, name="Few sales", ads=1, days=14, daily_budget=2000)
    [adset] = sales["adset_ids"]
    recs, _ = await recommend(facebook, sales["campaign_id"])
    learning = of_rule(recs, "learning_phase")
    assert set(learning) == {adset}, recs
    m = parse_row(await read(graph, adset, date_preset="last_7d"), "USD")
    assert 0 < m.purchases < 50
    edited = (await graph.get(adset, {"fields": "updated_time"}))["updated_time"][:10]
    assert (
        f"{m.purchases} offsite_conversions results since the last significant edit ({edited})"
        in learning[adset]["reason"]
    )
    cost = m.spend_minor / m.purchases
    needed = -(-cost * 50 // 7)
    assert learning[adset]["action"] == {"op": "update_adset", "args": {"adset_id": adset, "daily_budget": int(needed)}}
    assert f"at {money(cost, 'USD')} each" in learning[adset]["reason"]

    traffic = await scenario(
        sandbox, usd, name="Many clicks", ads=1, days=14, daily_budget=BUDGET, objective="OUTCOME_TRAFFIC", pixel=False
    )
    recs, _ = await recommend(facebook, traffic["campaign_id"])
    assert of_rule(recs, "learning_phase") == {}
    assert int((await read(graph, traffic["adset_ids"][0], date_preset="last_7d"))["inline_link_clicks"]) >= 50


# -- ads with issues ---------------------------------------------------------------------------------------------


async def test_disapproved_ad_is_named_with_facebooks_reason(facebook, graph, sandbox, demo_accounts):
    usd = demo_accounts["USD"]
    mixed = await scenario(sandbox, usd, name="Mixed review", ads=3, days=7, daily_budget=BUDGET, disapproved=1)
    bad = mixed["ad_ids"][-1]
    assert mixed["disapproved_ad_ids"] == [bad]
    recs, _ = await recommend(facebook, mixed["campaign_id"])
    issues = of_rule(recs, "ad_issues")
    assert set(issues) == {bad}, recs
    ad = await graph.get(bad, {"fields": "effective_status,issues_info"})
    assert ad["effective_status"] == "DISAPPROVED"
    summary = ad["issues_info"][0]["error_summary"]
    assert issues[bad]["reason"].startswith(f"DISAPPROVED: {summary}")
    assert issues[bad]["action"] == {"op": "get_ad", "args": {"ad_id": bad}} and issues[bad]["severity"] == "critical"
    delivered = await graph.get_all(f"{bad}/insights", {"fields": "impressions", "date_preset": "last_7d"})
    assert all(int(r["impressions"]) == 0 for r in delivered)  # a disapproved ad never delivers

    clean = await scenario(sandbox, usd, name="Clean review", ads=3, days=7, daily_budget=BUDGET)
    assert of_rule((await recommend(facebook, clean["campaign_id"]))[0], "ad_issues") == {}


# -- scenario knobs: validation ----------------------------------------------------------------------------------


async def test_scenario_knobs_are_validated(sandbox):
    import aiohttp

    async def post(path: str, body: dict) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sandbox.url}/__sandbox/{path}", json=body) as resp:
                return resp.status, await resp.json()

    for bad in (
        {"audience_size": 5},
        {"audience_size": [2000]},
        {"cpm_growth_per_day": 3},
        {"true_effects": {"7": 0.5}},
        {"true_effects": {"0": {"ctr": -1}}},
        {"true_effects": {"0": {"cpm": 1}}},
        {"disapproved": 4},
    ):
        status, body = await post("delivery", {"scenario": {"ads": 3, "adsets": 3, "days": 1, **bad}})
        assert status == 400 and "scenario" in body["error"]["message"], (bad, body)
    status, body = await post("delivery", {"true_effects": {"123": {"ctr": 0.5, "cvr": 2}}})
    assert status == 200 and body["true_effects"]["123"] == {"ctr": 0.5, "cvr": 2.0}
    for bad in ({"account_status": 4}, {"account_status": True}, {"colour": 1}, {}):
        status, body = await post("accounts/act_100000000000001", bad)
        assert status == 400, (bad, body)
    status, body = await post("accounts/act_999", {"account_status": 3})
    assert status == 400 and "unknown ad account" in body["error"]["message"]


async def test_a_failed_account_stops_delivering(graph, sandbox, demo_accounts):
    usd = demo_accounts["USD"]
    live = await scenario(sandbox, usd, name="Live", ads=1, days=3, daily_budget=BUDGET)
    changed = await sandbox.control("POST", f"accounts/{usd}", {"account_status": 3, "disable_reason": 0})
    assert changed["account_status"] == 3 and changed["disable_reason"] == 0
    assert (await graph.get(usd, {"fields": "account_status"}))["account_status"] == 3
    await sandbox.control("POST", "clock", {"advance": 2 * 86400})
    days = await graph.get_all(
        f"{live['campaign_id']}/insights", {"fields": "spend", "date_preset": "last_7d", "time_increment": 1}
    )
    spent = [float(r["spend"]) for r in days]
    assert spent[:3] and all(s > 0 for s in spent[:3]) and len(spent) == 3  # no delivery once billing failed
    await sandbox.control("POST", f"accounts/{usd}", {"account_status": 1})
    await sandbox.control("POST", "clock", {"advance": 86400})
    days = await graph.get_all(f"{live['campaign_id']}/insights", {"fields": "spend", "date_preset": "yesterday"})
    assert days and float(days[0]["spend"]) > 0


# -- the billing trigger, end to end through the spend_billing job ----------------------------------------------


@pytest.fixture
async def runtime(tmp_path):
    from admonster_runtime import open_runtime

    settings = sandbox_settings(tmp_path)
    async with open_runtime(settings) as opened:
        yield opened


async def control(runtime, method: str, path: str, json: dict | None = None) -> dict:
    from admonster_runtime import _sandbox_call

    return await _sandbox_call(runtime.sandbox_url, method, path, json)


async def statuses(facebook, account: str) -> dict[str, str]:
    rows = await facebook.graph.get_all(f"{account}/campaigns", {"fields": "id,status", "limit": 500})
    return {c["id"]: c["status"] for c in rows}


async def test_spend_billing_job_pauses_on_unsettled_and_resumes_exactly_those(runtime):
    from admonster_jobs import JobContext, run_job

    ctx = JobContext(
        store=runtime.store,
        notifier=runtime.notifier,
        settings=runtime.settings,
        sessions=runtime,
        time_source=runtime.time_source,
        tz=UTC,
    )
    workspace = await runtime.workspace("default")
    facebook = await runtime.facebook_for(workspace)
    account = (await facebook.selections())["ad_account"]
    await control(
        runtime, "POST", "seed", {"campaigns": 3, "account_id": account, "status": "ACTIVE", "name_prefix": "Live"}
    )
    resting = (
        await control(
            runtime,
            "POST",
            "seed",
            {"campaigns": 2, "account_id": account, "status": "PAUSED", "name_prefix": "Resting"},
        )
    )["ids"]
    accounts = await facebook.graph.get_all("me/adaccounts", {"fields": "id"})
    others = {a["id"]: await statuses(facebook, a["id"]) for a in accounts if a["id"] != account}
    before = await statuses(facebook, account)
    active = {i for i, s in before.items() if s == "ACTIVE"}
    assert len(active) >= 4 and set(resting) <= {i for i, s in before.items() if s == "PAUSED"}

    assert (await run_job("spend_billing", ctx)).ok  # all fine: nothing paused
    assert await statuses(facebook, account) == before and await runtime.store.open_billing_pauses(workspace.id) == []

    await control(runtime, "POST", f"accounts/{account}", {"account_status": 3})
    await control(runtime, "POST", "clock", {"advance": 86400})
    failed = await run_job("spend_billing", ctx)
    assert failed.ok and "UNSETTLED" in failed.summary, failed.summary
    after = await statuses(facebook, account)
    assert {i for i in active if after[i] == "PAUSED"} == active and all(after[i] == "PAUSED" for i in resting)
    assert {i for i, s in after.items() if s != before[i]} == active
    [pause] = await runtime.store.open_billing_pauses(workspace.id)
    assert pause.ad_account_id == account and set(pause.object_ids) == active
    [notice] = [
        n
        for n in await runtime.store.list_notifications(workspace.id, channel="inbox")
        if "Billing problem" in n.subject
    ]
    assert "UNSETTLED" in notice.text
    entry = next(e for e in await runtime.store.list_audit(workspace.id) if e.op == "billing_failed")
    assert entry.interface == "job" and set(entry.object_ids) == active
    again = await run_job("spend_billing", ctx)  # still unsettled: already paused, nothing more
    assert (
        again.ok
        and "UNSETTLED" not in again.summary
        and len(await runtime.store.open_billing_pauses(workspace.id)) == 1
    )

    await control(runtime, "POST", f"accounts/{account}", {"account_status": 1})
    recovered = await run_job("spend_billing", ctx)
    assert recovered.ok and "active again" in recovered.summary, recovered.summary
    [fixed] = [
        n for n in await runtime.store.list_notifications(workspace.id, channel="inbox") if "Billing fixed" in n.subject
    ]
    confirm = re.search(r"/confirm (\S+?)\.?\s", fixed.text + " ")
    assert confirm, fixed.text  # resuming spends money: held for confirmation under the default policy
    assert await statuses(facebook, account) == after  # nothing resumed before the confirmation
    resumed = await facebook.call("confirm", {"confirm": confirm.group(1)})
    assert resumed.ok and set(resumed.data["resumed"]) == active, resumed.text
    final = await statuses(facebook, account)
    assert final == before  # exactly the paused ones are back; the resting ones stayed paused
    assert await runtime.store.open_billing_pauses(workspace.id) == []
    assert {a: await statuses(facebook, a) for a in others} == others  # no other account touched
    quiet = await run_job("spend_billing", ctx)
    assert quiet.ok and "active again" not in quiet.summary and await statuses(facebook, account) == before

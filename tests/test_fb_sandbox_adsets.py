"""Sandbox ad sets: Facebook's rules (docs/adset_rules.md) with codes, subcodes and blame; lists, copies, activities."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta

import pytest

from test_fb_sandbox_helpers import JPY, USD, campaign_form, graph  # noqa: F401
from testkit import SANDBOX_START

TARGETING = {
    "geo_locations": {"countries": ["US"]},
    "age_min": 18,
    "age_max": 65,
    "targeting_automation": {"advantage_audience": 0},
}
ALL_FIELDS = (
    "id,account_id,campaign_id,name,status,configured_status,effective_status,optimization_goal,"
    "billing_event,bid_strategy,bid_amount,bid_constraints,daily_budget,lifetime_budget,budget_remaining,"
    "start_time,end_time,targeting,promoted_object,destination_type,adset_schedule,pacing_type,"
    "is_dynamic_creative,adlabels,created_time,updated_time,source_adset_id"
)


def _iso(**delta) -> str:
    """A time `delta` from the sandbox's start (its clock stays within minutes of it where this is used)."""
    return (SANDBOX_START + timedelta(**delta)).replace(microsecond=0).isoformat()


def form(campaign_id: str, **overrides) -> dict:
    """A valid ad set for a traffic campaign without a campaign budget; None drops a field."""
    body = {
        "campaign_id": campaign_id,
        "name": "Test ad set",
        "optimization_goal": "LINK_CLICKS",
        "billing_event": "IMPRESSIONS",
        "daily_budget": "2000",
        "status": "PAUSED",
        "targeting": TARGETING,
    }
    body.update(overrides)
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in body.items() if v is not None}


async def new_campaign(graph, account: str = USD, **overrides) -> str:
    spec = {"daily_budget": None, "is_adset_budget_sharing_enabled": "false", **overrides}
    answer = await graph.post(f"{account}/campaigns", campaign_form(**spec))
    assert answer.status == 200, answer.body
    return answer.body["id"]


async def count_adsets(sandbox, account: str = USD) -> int:
    return len((await sandbox.control("GET", f"objects?type=adset&account_id={account}"))["data"])


async def pixel_of(graph, account: str = USD) -> str:
    return (await graph.get(f"{account}/adspixels")).body["data"][0]["id"]


async def page_id(graph) -> str:
    return (await graph.get("me/accounts")).body["data"][0]["id"]


async def refused(graph, sandbox, path: str, body: dict, code: int, subcode: int | None, blame: str) -> dict:
    """POST must fail with Facebook's code/subcode/blame and create no ad set."""
    before = await count_adsets(sandbox)
    answer = await graph.post(path, body)
    assert answer.status == 400, answer.body
    assert (answer.error["code"], answer.error.get("error_subcode")) == (code, subcode), answer.error
    assert answer.blame() == [blame], answer.error
    assert await count_adsets(sandbox) == before
    return answer.error


# ---- create, read, update, delete


async def test_create_read_update_delete(graph):
    cid = await new_campaign(graph)
    created = await graph.post(f"{USD}/adsets", form(cid, adlabels='[{"name":"q3"}]'))
    assert created.status == 200 and re.fullmatch(r"120211\d{12}", created.body["id"]), created.body
    aid = created.body["id"]
    a = (await graph.get(aid, fields=ALL_FIELDS)).body
    assert (a["account_id"], a["campaign_id"], a["name"]) == (USD[4:], cid, "Test ad set")
    assert a["status"] == a["configured_status"] == a["effective_status"] == "PAUSED"
    assert a["daily_budget"] == a["budget_remaining"] == "2000" and "lifetime_budget" not in a
    assert a["targeting"]["geo_locations"]["countries"] == ["US"]
    assert a["pacing_type"] == ["standard"] and a["is_dynamic_creative"] is False
    assert a["adlabels"][0]["name"] == "q3" and a["source_adset_id"] == "0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", a["created_time"])
    assert (await graph.get(aid)).body == {"id": aid}
    update = await graph.post(
        aid,
        {
            "name": "Renamed ✓ 広告",
            "daily_budget": "3000",
            "bid_amount": "250",
            "bid_strategy": "LOWEST_COST_WITH_BID_CAP",
        },
    )
    assert update.body == {"success": True}
    a = (await graph.get(aid, fields="name,daily_budget,bid_amount,bid_strategy")).body
    assert (a["name"], a["daily_budget"], a["bid_amount"], a["bid_strategy"]) == (
        "Renamed ✓ 広告",
        "3000",
        "250",
        "LOWEST_COST_WITH_BID_CAP",
    )
    switch = await graph.post(aid, {"lifetime_budget": "100000", "end_time": _iso(days=10)})
    assert switch.error["code"] == 100 and switch.blame() == ["lifetime_budget"]
    assert (await graph.delete(aid)).body == {"success": True}
    assert (await graph.get(aid, fields="status,effective_status")).body["status"] == "DELETED"
    locked = await graph.post(aid, {"name": "zombie"})
    assert locked.error["code"] == 100 and locked.error["error_user_title"] == "Ad Set Deleted"
    unknown = await graph.get(aid, fields="name,colour")
    assert unknown.error["message"] == "(#100) Tried accessing nonexisting field (colour) on node type (AdSet)"


async def test_defaults_goal_per_objective_and_status_active(graph):
    cid = await new_campaign(graph, objective="OUTCOME_AWARENESS")
    body = form(cid, optimization_goal=None, billing_event=None, status=None)
    aid = (await graph.post(f"{USD}/adsets", body)).body["id"]
    a = (await graph.get(aid, fields="optimization_goal,billing_event,status,effective_status")).body
    assert (a["optimization_goal"], a["billing_event"]) == ("REACH", "IMPRESSIONS")
    assert a["status"] == "ACTIVE"  # Facebook's default; the campaign is PAUSED, hence:
    assert a["effective_status"] == "CAMPAIGN_PAUSED"


async def test_archive_then_only_delete(graph):
    cid = await new_campaign(graph)
    aid = (await graph.post(f"{USD}/adsets", form(cid))).body["id"]
    assert (await graph.post(aid, {"status": "ARCHIVED"})).body == {"success": True}
    again = await graph.post(aid, {"status": "ACTIVE"})
    assert again.error["code"] == 100 and again.error["error_user_title"]
    assert (await graph.post(aid, {"status": "DELETED"})).body == {"success": True}


async def test_campaign_must_be_of_the_account_and_live(graph, sandbox):
    jpy_campaign = await new_campaign(graph, account=JPY)
    await refused(graph, sandbox, f"{USD}/adsets", form(jpy_campaign), 100, None, "campaign_id")
    deleted = await new_campaign(graph)
    await graph.delete(deleted)
    err = await refused(graph, sandbox, f"{USD}/adsets", form(deleted), 100, None, "campaign_id")
    assert err["error_user_title"] == "Campaign Deleted"
    await refused(graph, sandbox, f"{USD}/adsets", form("abc"), 100, None, "campaign_id")
    await refused(graph, sandbox, f"{USD}/adsets", form(None), 100, None, "campaign_id")


# ---- the rules, one by one: refused with Facebook's code, then the valid variant passes


async def test_r1_goal_for_objective(graph, sandbox):
    cid = await new_campaign(graph)  # OUTCOME_TRAFFIC
    err = await refused(
        graph, sandbox, f"{USD}/adsets", form(cid, optimization_goal="APP_INSTALLS"), 100, 2490408, "optimization_goal"
    )
    assert "OUTCOME_TRAFFIC" in err["error_user_msg"]
    await refused(
        graph, sandbox, f"{USD}/adsets", form(cid, optimization_goal="WHATEVER"), 100, None, "optimization_goal"
    )
    assert (await graph.post(f"{USD}/adsets", form(cid, optimization_goal="LANDING_PAGE_VIEWS"))).status == 200
    aid = (await graph.post(f"{USD}/adsets", form(cid))).body["id"]
    update = await graph.post(aid, {"optimization_goal": "THRUPLAY"})
    assert update.error["error_subcode"] == 2490408


async def test_r2_billing_event_for_goal(graph, sandbox):
    cid = await new_campaign(graph)
    await refused(graph, sandbox, f"{USD}/adsets", form(cid, billing_event="THRUPLAY"), 100, 2490377, "billing_event")
    await refused(graph, sandbox, f"{USD}/adsets", form(cid, billing_event="PURCHASE"), 100, 2490377, "billing_event")
    await refused(graph, sandbox, f"{USD}/adsets", form(cid, billing_event="PIGEONS"), 100, None, "billing_event")
    assert (await graph.post(f"{USD}/adsets", form(cid, billing_event="LINK_CLICKS"))).status == 200


async def test_r3_bid_amount_for_capped_strategies(graph, sandbox):
    cid = await new_campaign(graph)
    for strategy in ("LOWEST_COST_WITH_BID_CAP", "COST_CAP"):
        err = await refused(
            graph, sandbox, f"{USD}/adsets", form(cid, bid_strategy=strategy), 100, 1815857, "bid_amount"
        )
        assert err["error_user_title"] == "Bid Amount Required"
        assert (await graph.post(f"{USD}/adsets", form(cid, bid_strategy=strategy, bid_amount="150"))).status == 200
    await refused(
        graph,
        sandbox,
        f"{USD}/adsets",
        form(cid, bid_strategy="LOWEST_COST_WITH_MIN_ROAS"),
        100,
        1815857,
        "bid_constraints",
    )
    ok = await graph.post(
        f"{USD}/adsets",
        form(cid, bid_strategy="LOWEST_COST_WITH_MIN_ROAS", bid_constraints={"roas_average_floor": 15000}),
    )
    assert ok.status == 200
    # The campaign's strategy counts when the ad set has none.
    capped = await new_campaign(
        graph, daily_budget="5000", is_adset_budget_sharing_enabled=None, bid_strategy="COST_CAP"
    )
    await refused(graph, sandbox, f"{USD}/adsets", form(capped, daily_budget=None), 100, 1815857, "bid_amount")
    assert (await graph.post(f"{USD}/adsets", form(capped, daily_budget=None, bid_amount="300"))).status == 200
    await refused(graph, sandbox, f"{USD}/adsets", form(cid, bid_amount="cheap"), 100, None, "bid_amount")


async def test_r4_budget_on_campaign_or_adset(graph, sandbox):
    cbo = await new_campaign(graph, daily_budget="5000", is_adset_budget_sharing_enabled=None)
    await refused(graph, sandbox, f"{USD}/adsets", form(cbo), 100, 1885621, "daily_budget")
    await refused(
        graph,
        sandbox,
        f"{USD}/adsets",
        form(cbo, daily_budget=None, lifetime_budget="90000", end_time=_iso(days=10)),
        100,
        1885621,
        "lifetime_budget",
    )
    aid = (await graph.post(f"{USD}/adsets", form(cbo, daily_budget=None))).body["id"]
    update = await graph.post(aid, {"daily_budget": "1000"})
    assert (update.error["code"], update.error["error_subcode"], update.blame()) == (100, 1885621, ["daily_budget"])


async def test_r4_campaign_side(graph):
    cid = await new_campaign(graph)
    aid = (await graph.post(f"{USD}/adsets", form(cid))).body["id"]
    refusal = await graph.post(cid, {"daily_budget": "5000"})
    assert (refusal.error["code"], refusal.error["error_subcode"], refusal.blame()) == (100, 1885621, ["daily_budget"])
    assert "daily_budget" not in (await graph.get(cid, fields="daily_budget")).body
    await graph.delete(aid)
    assert (await graph.post(cid, {"daily_budget": "5000"})).body == {"success": True}


async def test_r5_adset_budget_needed_without_campaign_budget(graph, sandbox):
    cid = await new_campaign(graph)
    await refused(graph, sandbox, f"{USD}/adsets", form(cid, daily_budget=None), 100, 1885621, "daily_budget")
    await refused(
        graph,
        sandbox,
        f"{USD}/adsets",
        form(cid, lifetime_budget="90000", end_time=_iso(days=5)),
        100,
        1885621,
        "daily_budget",
    )
    ok = await graph.post(f"{USD}/adsets", form(cid, daily_budget=None, lifetime_budget="90000", end_time=_iso(days=5)))
    assert ok.status == 200


async def test_r6_minimum_budget(graph, sandbox):
    cid = await new_campaign(graph)
    err = await refused(graph, sandbox, f"{USD}/adsets", form(cid, daily_budget="99"), 100, 1885272, "daily_budget")
    assert "$1.00" in err["error_user_msg"]
    # Lifetime: at least min_daily_budget (100) x 10 days (9.5 rounded up).
    start, end = _iso(hours=1), _iso(days=9, hours=13)
    err = await refused(
        graph,
        sandbox,
        f"{USD}/adsets",
        form(cid, daily_budget=None, lifetime_budget="999", start_time=start, end_time=end),
        100,
        1885272,
        "lifetime_budget",
    )
    assert "$10.00" in err["error_user_msg"]
    ok = await graph.post(
        f"{USD}/adsets", form(cid, daily_budget=None, lifetime_budget="1000", start_time=start, end_time=end)
    )
    assert ok.status == 200
    longer = await graph.post(ok.body["id"], {"end_time": _iso(days=30)})
    assert longer.error["error_subcode"] == 1885272 and longer.blame() == ["lifetime_budget"]
    jpy = await new_campaign(graph, account=JPY)
    low = await graph.post(f"{JPY}/adsets", form(jpy, daily_budget="50"))
    assert low.error["error_subcode"] == 1885272 and "¥100" in low.error["error_user_msg"]
    aid = (await graph.post(f"{USD}/adsets", form(cid))).body["id"]
    assert (await graph.post(aid, {"daily_budget": "10"})).error["error_subcode"] == 1885272


async def test_r7_lifetime_needs_end_time(graph, sandbox):
    cid = await new_campaign(graph)
    await refused(
        graph,
        sandbox,
        f"{USD}/adsets",
        form(cid, daily_budget=None, lifetime_budget="100000"),
        100,
        1885347,
        "end_time",
    )


async def test_r8_end_time(graph, sandbox):
    cid = await new_campaign(graph)
    await refused(
        graph,
        sandbox,
        f"{USD}/adsets",
        form(cid, start_time=_iso(days=-5), end_time=_iso(days=-2)),
        100,
        1487181,
        "end_time",
    )
    await refused(
        graph,
        sandbox,
        f"{USD}/adsets",
        form(cid, start_time=_iso(days=5), end_time=_iso(days=3)),
        100,
        1487181,
        "end_time",
    )
    await refused(graph, sandbox, f"{USD}/adsets", form(cid, end_time="next tuesday"), 100, None, "end_time")
    aid = (await graph.post(f"{USD}/adsets", form(cid, start_time=_iso(days=-5), end_time=_iso(days=3)))).body["id"]
    moved = await graph.post(aid, {"end_time": _iso(days=-1)})
    assert (moved.error["error_subcode"], moved.blame()) == (1487181, ["end_time"])
    assert (await graph.post(aid, {"end_time": _iso(days=20)})).body == {"success": True}


async def test_r14_promoted_object(graph, sandbox):
    sales = await new_campaign(graph, objective="OUTCOME_SALES")
    pixel = await pixel_of(graph)
    path = f"{USD}/adsets"
    body = dict(optimization_goal="OFFSITE_CONVERSIONS")
    await refused(graph, sandbox, path, form(sales, **body), 100, 1815430, "promoted_object")
    await refused(
        graph, sandbox, path, form(sales, **body, promoted_object={"pixel_id": pixel}), 100, 1815430, "promoted_object"
    )
    await refused(
        graph,
        sandbox,
        path,
        form(sales, **body, promoted_object={"pixel_id": "500000000000999", "custom_event_type": "PURCHASE"}),
        100,
        1815430,
        "promoted_object",
    )
    await refused(
        graph,
        sandbox,
        path,
        form(sales, **body, promoted_object={"pixel_id": pixel, "custom_event_type": "BUY_STUFF"}),
        100,
        1815430,
        "promoted_object",
    )
    await refused(graph, sandbox, path, form(sales, **body, promoted_object="[1]"), 100, None, "promoted_object")
    purchase = {"pixel_id": pixel, "custom_event_type": "PURCHASE"}
    ok = await graph.post(path, form(sales, **body, promoted_object=purchase))
    assert ok.status == 200
    leads = await new_campaign(graph, objective="OUTCOME_LEADS")
    await refused(
        graph, sandbox, path, form(leads, optimization_goal="LEAD_GENERATION"), 100, 1815430, "promoted_object"
    )
    await refused(
        graph,
        sandbox,
        path,
        form(leads, optimization_goal="LEAD_GENERATION", promoted_object={"page_id": "400000000000999"}),
        100,
        1815430,
        "promoted_object",
    )
    page = await page_id(graph)
    assert (
        await graph.post(path, form(leads, optimization_goal="LEAD_GENERATION", promoted_object={"page_id": page}))
    ).status == 200
    apps = await new_campaign(graph, objective="OUTCOME_APP_PROMOTION")
    app = {"application_id": "600000000000001", "object_store_url": "http://play.google.com/store/apps/details?id=x"}
    await refused(
        graph,
        sandbox,
        path,
        form(apps, optimization_goal="APP_INSTALLS", promoted_object=app),
        100,
        1815430,
        "promoted_object",
    )
    app["object_store_url"] = "https://apps.apple.com/app/id123"
    assert (await graph.post(path, form(apps, optimization_goal="APP_INSTALLS", promoted_object=app))).status == 200
    engagement = await new_campaign(graph, objective="OUTCOME_ENGAGEMENT")
    await refused(
        graph, sandbox, path, form(engagement, optimization_goal="PAGE_LIKES"), 100, 1815430, "promoted_object"
    )


async def test_r16_budget_changes_per_hour_and_reset(sandbox, graph):
    cid = await new_campaign(graph)
    aid = (await graph.post(f"{USD}/adsets", form(cid))).body["id"]
    for budget in ("2100", "2200", "2300", "2400"):
        assert (await graph.post(aid, {"daily_budget": budget})).body == {"success": True}
    assert (await graph.post(aid, {"daily_budget": "2400", "name": "same budget is no change"})).status == 200
    fifth = await graph.post(aid, {"daily_budget": "2500"})
    assert (fifth.error["code"], fifth.error["error_subcode"], fifth.blame()) == (613, 1487632, ["daily_budget"])
    assert (await graph.get(aid, fields="daily_budget")).body["daily_budget"] == "2400"
    activities = (await graph.get(f"{aid}/activities", fields="event_type,extra_data")).body["data"]
    budget_events = [json.loads(a["extra_data"]) for a in activities if a["event_type"] == "update_ad_set_budget"]
    assert [e["new_value"] for e in budget_events] == [2400, 2300, 2200, 2100]  # newest first
    await sandbox.control("POST", "clock", {"advance": 61 * 60})
    assert (await graph.post(aid, {"daily_budget": "2500"})).body == {"success": True}


async def test_r17_day_parting(graph, sandbox):
    cid = await new_campaign(graph)
    block = {"start_minute": 540, "end_minute": 1020, "days": [1, 2, 3, 4, 5], "timezone_type": "USER"}
    await refused(graph, sandbox, f"{USD}/adsets", form(cid, adset_schedule=[block]), 100, 2490126, "adset_schedule")
    lifetime = dict(daily_budget=None, lifetime_budget="200000", end_time=_iso(days=20))
    bad_blocks = [
        {**block, "start_minute": 30},
        {**block, "end_minute": 480},
        {**block, "days": []},
        {**block, "days": [7]},
        {**block, "timezone_type": "MARS"},
        "9to5",
        {**block, "end_minute": 1500},
    ]
    for bad in bad_blocks:
        await refused(
            graph, sandbox, f"{USD}/adsets", form(cid, **lifetime, adset_schedule=[bad]), 100, 1487079, "adset_schedule"
        )
    await refused(
        graph, sandbox, f"{USD}/adsets", form(cid, **lifetime, adset_schedule='{"a":1}'), 100, None, "adset_schedule"
    )
    aid = (await graph.post(f"{USD}/adsets", form(cid, **lifetime, adset_schedule=[block]))).body["id"]
    a = (await graph.get(aid, fields="adset_schedule,pacing_type")).body
    assert a["pacing_type"] == ["day_parting"] and a["adset_schedule"][0]["days"] == [1, 2, 3, 4, 5]


async def test_targeting_is_required_and_validated(graph, sandbox):
    cid = await new_campaign(graph)
    await refused(graph, sandbox, f"{USD}/adsets", form(cid, targeting=None), 100, None, "targeting")
    spec = {**TARGETING, "age_min": 10}
    answer = await graph.post(f"{USD}/adsets", form(cid, targeting=spec))
    assert (answer.error["code"], answer.error["error_subcode"]) == (100, 1487079)
    housing = await new_campaign(graph, special_ad_categories='["HOUSING"]', special_ad_category_country='["US"]')
    narrowed = await graph.post(f"{USD}/adsets", form(housing, targeting={**TARGETING, "age_min": 30}))
    assert narrowed.error["error_subcode"] == 1487079
    aid = (await graph.post(f"{USD}/adsets", form(cid))).body["id"]
    replaced = await graph.post(aid, {"targeting": json.dumps({**TARGETING, "geo_locations": {"countries": ["CA"]}})})
    assert replaced.body == {"success": True}
    got = (await graph.get(aid, fields="targeting")).body["targeting"]
    assert got["geo_locations"]["countries"] == ["CA"]


# ---- validate_only, lists, effective status


async def test_validate_only(graph, sandbox):
    cid = await new_campaign(graph)
    before = await count_adsets(sandbox)
    answer = await graph.post(f"{USD}/adsets", form(cid, execution_options='["validate_only"]'))
    assert answer.body == {"success": True}
    assert await count_adsets(sandbox) == before
    invalid = await graph.post(f"{USD}/adsets", form(cid, daily_budget="5", execution_options='["validate_only"]'))
    assert invalid.error["error_subcode"] == 1885272
    aid = (await graph.post(f"{USD}/adsets", form(cid))).body["id"]
    dry = await graph.post(aid, {"daily_budget": "9000", "execution_options": '["validate_only"]'})
    assert dry.body == {"success": True}
    assert (await graph.get(aid, fields="daily_budget")).body["daily_budget"] == "2000"


async def test_lists_paging_filters_and_campaign_paused(graph):
    cid = await new_campaign(graph, status="ACTIVE")
    ids = [
        (await graph.post(f"{USD}/adsets", form(cid, name=f"Paged {i}", status="ACTIVE"))).body["id"] for i in range(5)
    ]
    await graph.post(ids[0], {"status": "PAUSED"})
    first = await graph.get(f"{cid}/adsets", fields="name,effective_status", limit="2", summary="true")
    assert first.body["summary"]["total_count"] == 5 and len(first.body["data"]) == 2
    seen, page = [a["id"] for a in first.body["data"]], first.body
    while "next" in page["paging"]:
        async with __import__("aiohttp").ClientSession() as session:
            async with session.get(page["paging"]["next"]) as resp:
                page = await resp.json()
        seen += [a["id"] for a in page["data"]]
    assert seen == ids[::-1]
    paused = (await graph.get(f"{cid}/adsets", effective_status='["PAUSED"]', fields="status")).body["data"]
    assert [a["id"] for a in paused] == [ids[0]]
    by_name = (
        await graph.get(
            f"{USD}/adsets",
            fields="name",
            filtering=json.dumps([{"field": "adset.name", "operator": "CONTAIN", "value": "paged 3"}]),
        )
    ).body["data"]
    assert [a["name"] for a in by_name] == ["Paged 3"]
    account_wide = (await graph.get(f"{USD}/adsets", fields="campaign_id", limit="500")).body["data"]
    assert set(ids) <= {a["id"] for a in account_wide} and len({a["campaign_id"] for a in account_wide}) > 1
    await graph.post(cid, {"status": "PAUSED"})
    statuses = {
        a["id"]: a["effective_status"]
        for a in (await graph.get(f"{cid}/adsets", fields="effective_status")).body["data"]
    }
    assert statuses[ids[1]] == "CAMPAIGN_PAUSED" and statuses[ids[0]] == "PAUSED"
    campaign_paused = (await graph.get(f"{USD}/adsets", effective_status='["CAMPAIGN_PAUSED"]')).body["data"]
    assert {a["id"] for a in campaign_paused} == set(ids[1:])
    assert (await graph.get(f"{USD}/adsets", effective_status='["NAPPING"]')).error["code"] == 100
    await graph.delete(cid)
    gone = (await graph.get(f"{cid}/adsets", effective_status='["DELETED"]', fields="status")).body["data"]
    assert {a["id"] for a in gone} == set(ids)


async def test_seeded_adsets_follow_the_rules(graph):
    demo_accounts = {"USD": USD, "JPY": JPY}
    names = {}
    for account in demo_accounts.values():
        listed = (await graph.get(f"{account}/adsets", fields=ALL_FIELDS, limit="100")).body["data"]
        for a in listed:
            names[a["name"]] = a
            keep = (
                "campaign_id",
                "name",
                "status",
                "optimization_goal",
                "billing_event",
                "daily_budget",
                "lifetime_budget",
                "end_time",
                "targeting",
                "promoted_object",
            )
            body = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in a.items() if k in keep}
            check = await graph.post(f"{account}/adsets", {**body, "execution_options": '["validate_only"]'})
            assert check.body == {"success": True}, (a["name"], check.body)
    campaigns = {
        c["id"]: c
        for account in demo_accounts.values()
        for c in (await graph.get(f"{account}/campaigns", fields="name")).body["data"]
    }
    by_campaign: dict[str, list] = {}
    for a in names.values():
        by_campaign.setdefault(campaigns[a["campaign_id"]]["name"], []).append(a)
    assert [a["daily_budget"] is not None for a in by_campaign["Retargeting - Ad Set Budgets"]] == [True, True]
    assert {a["effective_status"] for a in by_campaign["Retargeting - Ad Set Budgets"]} == {"ACTIVE"}
    prospecting = by_campaign["Always-on Prospecting"][0]
    assert "daily_budget" not in prospecting and prospecting["promoted_object"]["custom_event_type"] == "PURCHASE"
    assert by_campaign["Spring Launch - Lifetime"][0]["status"] == "PAUSED"
    assert by_campaign["Tokyo Awareness"][0]["optimization_goal"] == "REACH"


# ---- copies and deep copies


async def test_copies_same_and_other_campaign(graph, sandbox):
    cid = await new_campaign(graph)
    source = (await graph.post(f"{USD}/adsets", form(cid, name="Original", status="ACTIVE"))).body["id"]
    copy = await graph.post(f"{source}/copies", {"status_option": "PAUSED", "deep_copy": "true"})
    new_id = copy.body["copied_adset_id"]
    assert copy.body["ad_object_ids"] == [{"ad_object_type": "ad_set", "source_id": source, "copied_id": new_id}]
    a = (await graph.get(new_id, fields="name,status,campaign_id,daily_budget,source_adset_id,targeting")).body
    assert (a["name"], a["status"], a["campaign_id"], a["daily_budget"], a["source_adset_id"]) == (
        "Original - Copy",
        "PAUSED",
        cid,
        "2000",
        source,
    )
    assert a["targeting"]["geo_locations"]["countries"] == ["US"]
    other = await new_campaign(graph)
    moved = await graph.post(
        f"{source}/copies",
        {
            "campaign_id": other,
            "status_option": "INHERITED_FROM_SOURCE",
            "rename_options": '{"rename_strategy":"NO_RENAME"}',
        },
    )
    a = (await graph.get(moved.body["copied_adset_id"], fields="name,status,campaign_id")).body
    assert (a["name"], a["status"], a["campaign_id"]) == ("Original", "ACTIVE", other)
    cbo = await new_campaign(graph, daily_budget="5000", is_adset_budget_sharing_enabled=None)
    clash = await graph.post(f"{source}/copies", {"campaign_id": cbo})
    assert (clash.error["code"], clash.error["error_subcode"]) == (100, 1885621)
    awareness = await new_campaign(graph, objective="OUTCOME_AWARENESS")
    assert (await graph.post(f"{source}/copies", {"campaign_id": awareness})).error["error_subcode"] == 2490408
    assert (await graph.post(f"{source}/copies", {"status_option": "LATER"})).error["code"] == 100


async def test_campaign_deep_copy_copies_adsets(graph):
    cid = await new_campaign(graph)
    kids = [(await graph.post(f"{USD}/adsets", form(cid, name=f"Kid {i}"))).body["id"] for i in range(2)]
    shallow = await graph.post(f"{cid}/copies", {"status_option": "PAUSED"})
    assert len(shallow.body["ad_object_ids"]) == 1
    deep = await graph.post(f"{cid}/copies", {"deep_copy": "true", "status_option": "PAUSED"})
    new_campaign_id = deep.body["copied_campaign_id"]
    copied = [o for o in deep.body["ad_object_ids"] if o["ad_object_type"] == "ad_set"]
    assert sorted(o["source_id"] for o in copied) == sorted(kids)
    listed = (await graph.get(f"{new_campaign_id}/adsets", fields="name,source_adset_id")).body["data"]
    assert {a["id"] for a in listed} == {o["copied_id"] for o in copied}
    assert {a["name"] for a in listed} == {"Kid 0", "Kid 1"}


# ---- activities


async def test_activities(sandbox, graph):
    cid = await new_campaign(graph)
    aid = (await graph.post(f"{USD}/adsets", form(cid, name="Watched"))).body["id"]
    await graph.post(aid, {"status": "ACTIVE"})
    await sandbox.control("POST", "clock", {"advance": 120})
    await graph.post(aid, {"name": "Watched 2", "daily_budget": "2600", "end_time": _iso(days=9)})
    answer = (await graph.get(f"{aid}/activities")).body
    events = [a["event_type"] for a in answer["data"]]
    assert events[-2:] == ["update_ad_set_run_status", "create_ad_set"]
    assert {"update_ad_set_budget", "update_ad_set_name", "update_ad_set_duration"} <= set(events[:3])
    budget = next(a for a in answer["data"] if a["event_type"] == "update_ad_set_budget")
    assert json.loads(budget["extra_data"])["old_value"] == 2000 and budget["actor_name"] == "Demo User"
    assert budget["object_id"] == aid and budget["object_name"] == "Watched 2"
    latest = datetime.strptime(answer["data"][0]["event_time"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    recent = (await graph.get(f"{aid}/activities", since=str(int(latest) - 60), fields="event_type")).body["data"]
    assert {a["event_type"] for a in recent} == {"update_ad_set_budget", "update_ad_set_name", "update_ad_set_duration"}
    older = (await graph.get(f"{aid}/activities", until=str(int(latest) - 60), fields="event_type")).body["data"]
    assert [a["event_type"] for a in older] == ["update_ad_set_run_status", "create_ad_set"]
    paged = (await graph.get(f"{aid}/activities", limit="2")).body
    assert len(paged["data"]) == 2 and "next" in paged["paging"]
    assert (await graph.get(f"{aid}/activities", since="yesterday-ish")).error["code"] == 100
    assert (await graph.get(f"{aid}/activities", fields="colour")).error["code"] == 100


# ---- the official SDK, unchanged but for its base URL


async def test_official_sdk_adsets(sandbox, demo_token, graph):
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.adset import AdSet
    from facebook_business.adobjects.campaign import Campaign
    from facebook_business.api import FacebookAdsApi
    from facebook_business.exceptions import FacebookRequestError

    cid = await new_campaign(graph)

    def drive() -> dict:
        api = FacebookAdsApi.init(
            demo_token["app_id"], demo_token["app_secret"], demo_token["access_token"], api_version="v26.0"
        )
        api._session.GRAPH = sandbox.url
        params = {
            AdSet.Field.name: "SDK ad set",
            AdSet.Field.campaign_id: cid,
            AdSet.Field.optimization_goal: AdSet.OptimizationGoal.link_clicks,
            AdSet.Field.billing_event: AdSet.BillingEvent.impressions,
            AdSet.Field.daily_budget: 1800,
            AdSet.Field.status: AdSet.Status.paused,
            AdSet.Field.targeting: TARGETING,
        }
        created = AdAccount(USD).create_ad_set(params=params)
        adset = AdSet(created["id"])
        adset.api_update(params={AdSet.Field.daily_budget: 1900})
        read = adset.api_get(
            fields=[AdSet.Field.name, AdSet.Field.daily_budget, AdSet.Field.targeting, AdSet.Field.effective_status]
        )
        listed = [a["id"] for a in Campaign(cid).get_ad_sets(fields=["name"])]
        activities = [a["event_type"] for a in adset.get_activities(fields=["event_type"])]
        copy = adset.create_copy(params={"status_option": "PAUSED"})
        try:
            AdAccount(USD).create_ad_set(params={**params, AdSet.Field.billing_event: "THRUPLAY"})
            error = None
        except FacebookRequestError as exc:
            error = exc
        adset.api_delete()
        return {
            "read": read,
            "listed": listed,
            "activities": activities,
            "copy": copy,
            "error": error,
            "id": created["id"],
        }

    out = await asyncio.to_thread(drive)
    assert out["read"]["name"] == "SDK ad set" and out["read"]["daily_budget"] == "1900"
    assert out["read"]["targeting"]["geo_locations"]["countries"] == ["US"]
    assert out["id"] in out["listed"] and out["activities"][0] == "update_ad_set_budget"
    assert out["copy"]["copied_adset_id"]
    assert out["error"].api_error_code() == 100 and out["error"].api_error_subcode() == 2490377
    assert out["error"].api_blame_field_specs() == [["billing_event"]]
    assert (await graph.get(out["id"], fields="status")).body["status"] == "DELETED"


# ---- malformed input: one Graph error, never a 500


@pytest.mark.parametrize(
    "overrides, blame",
    [
        ({"daily_budget": "12.5"}, "daily_budget"),
        ({"daily_budget": "-100"}, "daily_budget"),
        ({"daily_budget": '{"a":1}'}, "daily_budget"),
        ({"name": "x" * 100_000}, "name"),
        ({"name": ""}, "name"),
        ({"status": "LIVE"}, "status"),
        ({"start_time": "2026-13-45"}, "start_time"),
        ({"bid_constraints": '"high"'}, "bid_constraints"),
        ({"bid_constraints": '{"roas_average_floor":"lots"}'}, "bid_constraints"),
        ({"is_dynamic_creative": "maybe"}, "is_dynamic_creative"),
        ({"destination_type": "MOON"}, "destination_type"),
        ({"adlabels": "[42]"}, "adlabels"),
        ({"execution_options": '["dry"]'}, "execution_options[0]"),
    ],
)
async def test_malformed_input(graph, sandbox, overrides, blame):
    cid = await new_campaign(graph)
    answer = await graph.post(f"{USD}/adsets", {**form(cid), **overrides})
    assert answer.status == 400 and answer.error["code"] == 100 and "error_subcode" not in answer.error
    assert answer.blame() == [blame]


async def test_odd_bodies_never_500(graph):
    cid = await new_campaign(graph)
    for body in (
        {**form(cid), "targeting": "{not json"},
        {**form(cid), "targeting": "x" * 200_000},
        {**form(cid), "promoted_object": '{"pixel_id": {"deep": [1, 2]}}'},
        {**form(cid), "adset_schedule": '[{"start_minute": null}]'},
        {**form(cid), "name": "🚀 Ünïcødé ✓ 名前", "optimization_goal": "LINK_CLICKS"},
    ):
        answer = await graph.post(f"{USD}/adsets", body)
        assert answer.status in (200, 400), answer.body
        assert isinstance(answer.body, dict) and ("id" in answer.body or answer.error["code"] == 100)
    json_body = await graph.call(
        "POST",
        f"{USD}/adsets",
        json_body={
            "campaign_id": cid,
            "name": "JSON body",
            "daily_budget": 2000,
            "status": "PAUSED",
            "targeting": TARGETING,
            "optimization_goal": "LINK_CLICKS",
        },
    )
    assert json_body.status == 200, json_body.body
    named = (await graph.get(json_body.body["id"], fields="name")).body
    assert named["name"] == "JSON body"

"""Sandbox insights (docs/insights_contract.md): levels, dates, breakdowns, metrics, paging, limits, async runs."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from datetime import date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fb_sandbox import delivery
from fb_sandbox.insights import PRESETS, preset_range
from test_fb_sandbox_helpers import JPY, USD, graph  # noqa: F401

ADDITIVE = ("impressions", "clicks", "inline_link_clicks", "spend")
METRICS = (
    "impressions,reach,frequency,clicks,unique_clicks,inline_link_clicks,ctr,cpc,cpm,cpp,spend,actions,"
    "action_values,cost_per_action_type,purchase_roas"
)


async def scenario(sandbox, **spec) -> dict:
    """Seed a campaign with known delivery through the control API; answers delivery.create_scenario's dict."""
    return (await sandbox.control("POST", "delivery", {"scenario": spec}))["scenario"]


def sb_of(sandbox):
    return sandbox.server.sandbox


def today(sandbox, account: str = USD) -> date:
    return delivery.account_today(sb_of(sandbox), account)


async def rows(graph, path: str, **params) -> list[dict]:
    """Every row of an insights read, following paging.next."""
    answer = await graph.get(path, **params)
    assert answer.status == 200, answer.body
    out = list(answer.body["data"])
    while "next" in answer.body.get("paging", {}):
        query = dict(parse_qsl(urlsplit(answer.body["paging"]["next"]).query))
        answer = await graph.get(
            path, **{k: v for k, v in query.items() if k not in ("access_token", "appsecret_proof")}
        )
        assert answer.status == 200, answer.body
        out += answer.body["data"]
    return out


def total(data: list[dict], name: str) -> int:
    return sum(int(r[name].replace(".", "")) for r in data if name in r)


def action_totals(data: list[dict], name: str = "actions") -> dict[str, int]:
    out: dict[str, int] = {}
    for r in data:
        for a in r.get(name, []):
            out[a["action_type"]] = out.get(a["action_type"], 0) + int(a["value"].replace(".", ""))
    return out


def refused(answer, blame: str | None = None, subcode: int | None = None) -> dict:
    assert answer.status == 400, answer.body
    error = answer.error
    assert error["code"] == 100 and error.get("error_subcode") == subcode, error
    assert error["message"].startswith("(#100) ") or error.get("error_user_msg"), error
    if blame:
        assert answer.blame() == [blame], error
    return error


# ---- levels, nodes, fields


async def test_levels_agree_and_name_their_objects(sandbox, graph):
    s = await scenario(sandbox, ads=4, adsets=2, days=6)
    camp = s["campaign_id"]
    flt = json.dumps([{"field": "campaign.id", "operator": "IN", "value": [camp]}])
    by_level = {}
    for level in ("campaign", "adset", "ad"):
        by_level[level] = await rows(
            graph,
            f"{USD}/insights",
            level=level,
            filtering=flt,
            date_preset="last_7d",
            fields="campaign_id,campaign_name,adset_id,adset_name,ad_id,ad_name,"
            "impressions,clicks,spend,actions,objective,optimization_goal",
        )
    assert len(by_level["campaign"]) == 1 and len(by_level["adset"]) == 2 and len(by_level["ad"]) == 4
    for name in ADDITIVE[:2] + ("spend",):
        assert total(by_level["campaign"], name) == total(by_level["adset"], name) == total(by_level["ad"], name) > 0
    assert action_totals(by_level["campaign"]) == action_totals(by_level["ad"])
    ad_row = by_level["ad"][0]
    assert ad_row["campaign_id"] == camp and ad_row["ad_id"] in s["ad_ids"] and ad_row["adset_id"] in s["adset_ids"]
    assert ad_row["ad_name"] and ad_row["adset_name"] and ad_row["campaign_name"]
    assert ad_row["objective"] == "OUTCOME_SALES" and ad_row["optimization_goal"]
    assert "ad_id" not in by_level["campaign"][0] and "adset_id" not in by_level["campaign"][0]
    # The nodes themselves answer at their own level by default.
    node = (await graph.get(f"{camp}/insights", fields="campaign_id,impressions", date_preset="last_7d")).body
    assert node["data"][0]["impressions"] == by_level["campaign"][0]["impressions"]
    adset_rows = await rows(
        graph, f"{s['adset_ids'][0]}/insights", fields="adset_id,ad_id,impressions", date_preset="last_7d", level="ad"
    )
    assert {r["adset_id"] for r in adset_rows} == {s["adset_ids"][0]} and len(adset_rows) == 2
    ad = (await graph.get(f"{s['ad_ids'][0]}/insights", fields="ad_id,spend", date_preset="last_7d")).body
    assert ad["data"][0]["ad_id"] == s["ad_ids"][0]
    refused(await graph.get(f"{camp}/insights", level="account"), "level")
    refused(await graph.get(f"{USD}/insights", level="creative"), "level")


async def test_account_level_default_fields_and_headers(sandbox, graph):
    await scenario(sandbox, ads=2, days=3)
    answer = await graph.get(f"{USD}/insights")
    assert answer.status == 200, answer.body
    row = answer.body["data"][0]
    assert set(row) == {"account_id", "impressions", "spend", "date_start", "date_stop"}
    assert row["account_id"] == USD[4:]
    throttle = json.loads(answer.headers["x-fb-ads-insights-throttle"])
    assert {"app_id_util_pct", "acc_id_util_pct"} <= set(throttle)
    assert (await graph.get(f"{USD}/insights", date_preset="today")).body["data"] == []  # today is not over yet


async def test_unknown_objects_and_other_accounts(graph):
    assert (await graph.get("act_999999/insights")).error["code"] == 100
    assert (await graph.get("120210999999999999/insights")).error["error_subcode"] == 33


# ---- dates


async def test_presets_resolve_in_the_account_time_zone(sandbox, graph):
    await scenario(sandbox, ads=1, days=40)
    now = today(sandbox)
    account = sb_of(sandbox).store.get(USD)
    first = datetime.fromtimestamp(account.created, ZoneInfo(account["timezone_name"])).date()
    for preset in PRESETS:
        answer = await graph.get(f"{USD}/insights", date_preset=preset, fields="impressions", default_summary="true")
        assert answer.status == 200, (preset, answer.body)
        since, until = preset_range(preset, now, first)
        assert answer.body["summary"]["date_start"] == since.isoformat(), preset
        assert answer.body["summary"]["date_stop"] == until.isoformat(), preset
    last_7d = (await graph.get(f"{USD}/insights", date_preset="last_7d")).body["data"][0]
    assert (last_7d["date_start"], last_7d["date_stop"]) == (
        (now - timedelta(7)).isoformat(),
        (now - timedelta(1)).isoformat(),
    )
    assert preset_range("last_month", date(2024, 3, 15), first) == (date(2024, 2, 1), date(2024, 2, 29))
    assert preset_range("last_quarter", date(2024, 2, 10), first) == (date(2023, 10, 1), date(2023, 12, 31))
    assert preset_range("last_week_mon_sun", date(2024, 5, 15), first) == (date(2024, 5, 6), date(2024, 5, 12))
    assert preset_range("this_week_sun_today", date(2024, 5, 15), first) == (date(2024, 5, 12), date(2024, 5, 15))


async def test_time_increment_daily_buckets_and_monthly(sandbox, graph):
    await scenario(sandbox, ads=2, days=45)
    end = today(sandbox) - timedelta(1)
    window = json.dumps({"since": (end - timedelta(9)).isoformat(), "until": end.isoformat()})
    whole = await rows(graph, f"{USD}/insights", time_range=window, fields="impressions,spend,clicks")
    daily = await rows(
        graph, f"{USD}/insights", time_range=window, fields="impressions,spend,clicks", time_increment="1", limit="4"
    )
    assert [r["date_start"] for r in daily] == [(end - timedelta(9 - i)).isoformat() for i in range(10)]
    assert all(r["date_start"] == r["date_stop"] for r in daily)
    for name in ("impressions", "spend", "clicks"):
        assert total(daily, name) == total(whole, name)
    threes = await rows(graph, f"{USD}/insights", time_range=window, fields="impressions", time_increment="3")
    assert [(r["date_start"], r["date_stop"]) for r in threes][-1] == ((end).isoformat(), end.isoformat())
    assert len(threes) == 4 and total(threes, "impressions") == total(whole, "impressions")
    wide = json.dumps({"since": (end - timedelta(44)).isoformat(), "until": end.isoformat()})
    monthly = await rows(graph, f"{USD}/insights", time_range=wide, fields="impressions", time_increment="monthly")
    assert monthly[0]["date_start"] == (end - timedelta(44)).isoformat()
    for r in monthly:
        start, stop = date.fromisoformat(r["date_start"]), date.fromisoformat(r["date_stop"])
        assert (start.year, start.month) == (stop.year, stop.month)
    assert total(monthly, "impressions") == total(
        await rows(graph, f"{USD}/insights", time_range=wide, fields="impressions"), "impressions"
    )
    ranges = json.dumps(
        [
            {"since": (end - timedelta(1)).isoformat(), "until": end.isoformat()},
            {"since": end.isoformat(), "until": end.isoformat()},
        ]
    )
    two = await rows(graph, f"{USD}/insights", time_ranges=ranges, fields="impressions")
    assert len(two) == 2 and int(two[0]["impressions"]) > int(two[1]["impressions"])


@pytest.mark.parametrize(
    "params, blame",
    [
        ({"time_range": '{"since":"2024-02-30","until":"2024-03-01"}'}, "time_range"),
        ({"time_range": '{"since":"2024-03-05","until":"2024-03-01"}'}, "time_range"),
        ({"time_range": '{"since":"2020-01-01","until":"2020-01-31"}'}, "time_range"),
        ({"time_range": '{"since":"yesterday"}'}, "time_range"),
        ({"time_range": "last week"}, "time_range"),
        ({"time_range": '{"since":20240101,"until":20240102}'}, "time_range"),
        ({"time_ranges": "[]"}, "time_ranges"),
        ({"date_preset": "last_2d"}, "date_preset"),
        ({"time_increment": "0"}, "time_increment"),
        ({"time_increment": "91"}, "time_increment"),
        ({"time_increment": "weekly"}, "time_increment"),
        ({"fields": "impressions,colour"}, "fields"),
        ({"fields": '{"a":1}'}, "fields"),
        ({"breakdowns": "hour"}, "breakdowns"),
        ({"breakdowns": '["age","country"]'}, "breakdowns"),
        ({"breakdowns": "gender,publisher_platform"}, "breakdowns"),
        ({"breakdowns": "impression_device,age"}, "breakdowns"),
        ({"action_breakdowns": "action_colour"}, "action_breakdowns"),
        ({"filtering": '[{"field":"colour","operator":"EQUAL","value":1}]'}, "filtering"),
        ({"filtering": '[{"field":"spend","operator":"ABOUT","value":1}]'}, "filtering"),
        ({"filtering": '{"field":"spend"}'}, "filtering"),
        ({"sort": "spend_sideways"}, "sort"),
        ({"sort": "colour_descending"}, "sort"),
        ({"summary": "impressions,colour"}, "summary"),
        ({"default_summary": "maybe"}, "default_summary"),
        ({"limit": "-3"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"level": "everything"}, "level"),
    ],
)
async def test_bad_parameters_are_clear_graph_errors(graph, params, blame):
    error = refused(await graph.get(f"{USD}/insights", **params), blame)
    assert "error_user_title" not in error or error["error_user_msg"]


async def test_error_messages_read_like_facebook(graph):
    unknown = refused(await graph.get(f"{USD}/insights", fields="impressions,colour"))
    assert unknown["message"].startswith("(#100) colour is not valid for fields param.")
    pair = refused(await graph.get(f"{USD}/insights", breakdowns="age,country"))
    assert "age" in pair["message"] and "country" in pair["message"] and "invalid" in pair["message"]
    old = refused(await graph.get(f"{USD}/insights", time_range='{"since":"2019-01-01","until":"2019-01-02"}'))
    assert "37 months" in old["message"]
    hour = refused(await graph.get(f"{USD}/insights", breakdowns="hour"))
    assert "hour" in hour["message"]


# ---- breakdowns

# The breakdowns the delivery template holds, alone and in the documented permutations (every other SDK breakdown:
# tests/test_insights_spec.py).
TEMPLATE_COMBINATIONS = [
    [b]
    for b in (
        "age",
        "gender",
        "country",
        "publisher_platform",
        "platform_position",
        "impression_device",
        "device_platform",
    )
] + [
    ["age", "gender"],
    ["platform_position", "publisher_platform"],
    ["impression_device", "platform_position", "publisher_platform"],
]


@pytest.mark.parametrize("combo", TEMPLATE_COMBINATIONS)
async def test_breakdowns_sum_to_the_totals(sandbox, graph, combo):
    s = await scenario(sandbox, ads=3, days=4)
    camp = s["campaign_id"]
    fields = "impressions,clicks,inline_link_clicks,spend,actions,action_values,reach"
    totals = (await graph.get(f"{camp}/insights", fields=fields, date_preset="last_7d")).body["data"]
    cells = await rows(
        graph, f"{camp}/insights", fields=fields, date_preset="last_7d", breakdowns=",".join(combo), limit="500"
    )
    assert len(cells) > 1 or combo == ["country"]
    for row in cells:
        assert all(row.get(b) for b in combo), row
    assert len({tuple(r[b] for b in combo) for r in cells}) == len(cells)  # one row per cell
    for name in ADDITIVE:
        assert total(cells, name) == total(totals, name), name
    assert action_totals(cells) == action_totals(totals)
    assert action_totals(cells, "action_values") == action_totals(totals, "action_values")
    # Reach is people: cells split the object's reach (rounding aside), never more than impressions.
    assert abs(total(cells, "reach") - total(totals, "reach")) <= len(cells)
    assert all(int(r["reach"]) <= int(r["impressions"]) for r in cells)


async def test_breakdown_values(sandbox, graph):
    s = await scenario(sandbox, ads=2, days=3)
    camp = s["campaign_id"]
    ages = {r["age"] for r in await rows(graph, f"{camp}/insights", breakdowns="age", date_preset="last_7d")}
    assert ages <= {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"} and len(ages) > 2
    genders = {r["gender"] for r in await rows(graph, f"{camp}/insights", breakdowns="gender", date_preset="last_7d")}
    assert genders <= {"male", "female", "unknown"}
    devices = {
        r["device_platform"]
        for r in await rows(graph, f"{camp}/insights", breakdowns="device_platform", date_preset="last_7d")
    }
    assert devices <= {"mobile_app", "desktop"} and "mobile_app" in devices
    by_device = (
        await graph.get(
            f"{camp}/insights", fields="actions", action_breakdowns="action_type,action_device", date_preset="last_7d"
        )
    ).body["data"][0]["actions"]
    plain = (await graph.get(f"{camp}/insights", fields="actions", date_preset="last_7d")).body["data"][0]["actions"]
    assert all({"action_type", "action_device", "value"} == set(a) for a in by_device)
    assert action_totals([{"actions": by_device}]) == action_totals([{"actions": plain}])


# ---- metrics


def close(text: str, value: float) -> bool:
    return math.isclose(float(text), value, rel_tol=1e-5, abs_tol=1e-6)


async def test_derived_metrics_arithmetic(sandbox, graph):
    s = await scenario(sandbox, ads=3, days=5)
    data = await rows(
        graph, f"{s['campaign_id']}/insights", fields=METRICS, level="ad", time_increment="1", date_preset="last_7d"
    )
    assert data
    purchases = 0
    for r in data:
        imp, clicks, reach, spend = int(r["impressions"]), int(r["clicks"]), int(r["reach"]), float(r["spend"])
        assert re.fullmatch(r"\d+\.\d\d", r["spend"]), r["spend"]
        assert 0 < reach <= imp and int(r["unique_clicks"]) <= clicks
        assert close(r["ctr"], clicks / imp * 100) and close(r["cpm"], spend / imp * 1000)
        assert close(r["frequency"], imp / reach) and close(r["cpp"], spend / reach * 1000)
        if clicks:
            assert close(r["cpc"], spend / clicks)
        actions = {a["action_type"]: int(a["value"]) for a in r.get("actions", [])}
        assert int(r["inline_link_clicks"]) == actions.get("link_click", 0)
        for cost in r.get("cost_per_action_type", []):
            assert close(cost["value"], spend / actions[cost["action_type"]])
        if "purchase_roas" in r:
            value = float({a["action_type"]: a["value"] for a in r["action_values"]}["purchase"])
            assert r["purchase_roas"][0]["action_type"] == "omni_purchase"
            assert close(r["purchase_roas"][0]["value"], value / spend)
            purchases += actions["purchase"]
            assert actions["purchase"] == actions["offsite_conversion.fb_pixel_purchase"]
        assert set(actions) <= {
            "link_click",
            "landing_page_view",
            "post_engagement",
            "video_view",
            "lead",
            "add_to_cart",
            "initiate_checkout",
            "purchase",
            "offsite_conversion.fb_pixel_purchase",
        }
    assert purchases > 0


async def test_reach_is_delivery_object_reach(sandbox, graph):
    s = await scenario(sandbox, ads=4, adsets=2, days=8)
    sb = sb_of(sandbox)
    end = today(sandbox) - timedelta(1)
    since = end - timedelta(6)
    window = json.dumps({"since": since.isoformat(), "until": end.isoformat()})
    camp = (await graph.get(f"{s['campaign_id']}/insights", fields="reach", time_range=window)).body["data"][0]
    assert int(camp["reach"]) == delivery.object_reach(sb, USD, since, end, campaign_ids=[s["campaign_id"]])
    for row in await rows(
        graph, f"{s['campaign_id']}/insights", fields="adset_id,reach", time_range=window, level="adset"
    ):
        assert int(row["reach"]) == delivery.object_reach(sb, USD, since, end, adset_ids=[row["adset_id"]])
    daily = await rows(graph, f"{s['campaign_id']}/insights", fields="reach", time_range=window, time_increment="1")
    assert sum(int(r["reach"]) for r in daily) >= int(camp["reach"])  # people come back: not additive


async def test_jpy_has_no_decimals(sandbox, graph):
    await scenario(sandbox, ads=2, days=3, account_id=JPY)
    row = (
        await graph.get(f"{JPY}/insights", fields="spend,cpc,cpm,action_values,account_currency", date_preset="last_7d")
    ).body["data"][0]
    assert row["account_currency"] == "JPY" and re.fullmatch(r"[1-9]\d*", row["spend"]), row
    assert all(re.fullmatch(r"\d+", a["value"]) for a in row.get("action_values", []))
    usd = (await graph.get(f"{USD}/insights", fields="spend", date_preset="last_7d")).body["data"][0]
    assert re.fullmatch(r"\d+\.\d\d", usd["spend"])


# ---- filtering, sorting, summary, paging


async def test_filtering_sorting_summary(sandbox, graph):
    s = await scenario(sandbox, ads=5, days=4)
    camp = s["campaign_id"]
    base = {"fields": "ad_id,ad_name,impressions,spend,ctr", "level": "ad", "date_preset": "last_7d"}
    every = await rows(graph, f"{camp}/insights", **base)
    two = s["ad_ids"][:2]
    picked = await rows(
        graph, f"{camp}/insights", **base, filtering=json.dumps([{"field": "ad.id", "operator": "IN", "value": two}])
    )
    assert sorted(r["ad_id"] for r in picked) == sorted(two)
    median = sorted(float(r["spend"]) for r in every)[2]
    rich = await rows(
        graph,
        f"{camp}/insights",
        **base,
        filtering=json.dumps([{"field": "spend", "operator": "GREATER_THAN", "value": median}]),
    )
    assert rich and all(float(r["spend"]) > median for r in rich) and len(rich) < len(every)
    named = await rows(
        graph,
        f"{USD}/insights",
        **base,
        filtering=json.dumps([{"field": "ad.name", "operator": "CONTAIN", "value": every[0]["ad_name"]}]),
    )
    assert every[0]["ad_id"] in {r["ad_id"] for r in named}
    active = await rows(
        graph,
        f"{camp}/insights",
        **base,
        filtering=json.dumps([{"field": "ad.effective_status", "operator": "IN", "value": ["ACTIVE"]}]),
    )
    assert len(active) == len(every)
    ordered = await rows(graph, f"{camp}/insights", **base, sort="spend_descending")
    spends = [float(r["spend"]) for r in ordered]
    assert spends == sorted(spends, reverse=True)
    by_ctr = await rows(graph, f"{camp}/insights", **base, sort='["ctr_ascending"]')
    assert [float(r["ctr"]) for r in by_ctr] == sorted(float(r["ctr"]) for r in every)
    summed = (await graph.get(f"{camp}/insights", **base, default_summary="true", limit="2")).body
    assert len(summed["data"]) == 2
    assert summed["summary"]["impressions"] == str(total(every, "impressions"))
    assert summed["summary"]["spend"] == f"{total(every, 'spend') / 100:.2f}"
    assert "ad_id" not in summed["summary"]
    only = (await graph.get(f"{camp}/insights", **base, summary="impressions")).body["summary"]
    assert set(only) == {"impressions", "date_start", "date_stop"}
    assert "summary" not in (await graph.get(f"{camp}/insights", **base)).body
    cells = (
        await graph.get(
            f"{camp}/insights",
            fields="impressions",
            breakdowns="gender",
            date_preset="last_7d",
            filtering='[{"field":"gender","operator":"EQUAL","value":"female"}]',
        )
    ).body["data"]
    assert [r["gender"] for r in cells] == ["female"]


async def test_cursor_paging(sandbox, graph):
    s = await scenario(sandbox, ads=3, days=6)
    params = {"fields": "ad_id,impressions", "level": "ad", "time_increment": "1", "date_preset": "last_7d"}
    whole = (await graph.get(f"{s['campaign_id']}/insights", **params, limit="100")).body
    assert "next" not in whole["paging"] and len(whole["data"]) == 18
    paged = await rows(graph, f"{s['campaign_id']}/insights", **params, limit="5")
    assert paged == whole["data"]
    first = (await graph.get(f"{s['campaign_id']}/insights", **params, limit="5")).body
    second = (
        await graph.get(f"{s['campaign_id']}/insights", **params, limit="5", after=first["paging"]["cursors"]["after"])
    ).body
    assert "previous" in second["paging"] and second["data"] == whole["data"][5:10]
    back = (
        await graph.get(
            f"{s['campaign_id']}/insights", **params, limit="5", before=second["paging"]["cursors"]["before"]
        )
    ).body
    assert back["data"] == whole["data"][:5]


async def test_too_much_data_then_async(sandbox, graph):
    s = await scenario(sandbox, ads=120, days=90)
    params = {"fields": "ad_id,impressions", "level": "ad", "time_increment": "1", "date_preset": "last_90d"}
    error = refused(await graph.get(f"{USD}/insights", **params), subcode=1487534)
    assert error["error_user_msg"] == "Please reduce the amount of data you're asking for, then retry your request"
    assert error["error_user_title"]
    ok = await graph.get(f"{s['campaign_id']}/insights", **{**params, "time_increment": "all_days"})
    assert ok.status == 200 and len(ok.body["data"]) == 25
    run = await graph.post(f"{USD}/insights", params)
    assert run.status == 200 and re.fullmatch(r"\d+", run.body["report_run_id"]), run.body


# ---- async report runs


async def test_async_lifecycle(sandbox, graph):
    s = await scenario(sandbox, ads=3, days=5)
    params = {
        "fields": "ad_id,impressions,spend",
        "level": "ad",
        "time_increment": "1",
        "date_preset": "last_7d",
        "default_summary": "true",
    }
    created = await graph.post(f"{s['campaign_id']}/insights", params)
    assert created.status == 200, created.body
    run_id = created.body["report_run_id"]
    status = (await graph.get(run_id)).body
    assert status["id"] == run_id and status["account_id"] == USD[4:]
    assert status["async_status"] in ("Job Not Started", "Job Started", "Job Running")
    assert 0 <= status["async_percent_completion"] < 100 and status["time_completed"] == 0
    assert status["date_start"] == (today(sandbox) - timedelta(7)).isoformat()
    early = refused(await graph.get(f"{run_id}/insights"))
    assert "not complete" in early["message"]
    await sandbox.control("POST", "clock", {"advance": 1})
    middle = (await graph.get(run_id, fields="async_status,async_percent_completion,is_running")).body
    assert middle["async_status"] == "Job Running" and 40 <= middle["async_percent_completion"] < 100
    assert middle["is_running"] is True
    await sandbox.control("POST", "clock", {"advance": 2})
    done = (await graph.get(run_id)).body
    assert done["async_status"] == "Job Completed" and done["async_percent_completion"] == 100
    assert done["time_completed"] >= done["time_ref"]
    first = (await graph.get(f"{run_id}/insights", limit="4")).body
    assert len(first["data"]) == 4 and "next" in first["paging"]
    assert first["summary"]["impressions"]
    result = await rows(graph, f"{run_id}/insights", limit="4")
    direct = await rows(graph, f"{s['campaign_id']}/insights", **params, limit="500")
    assert result == direct and len(result) == 15
    assert refused(await graph.get(run_id, fields="colour"))
    assert (await graph.post(f"{run_id}/insights", {})).error["code"] == 100
    invalid = await graph.post(f"{USD}/insights", {"fields": "colour"})
    refused(invalid, "fields")


async def test_async_failure_from_a_fault(sandbox, graph):
    await scenario(sandbox, ads=1, days=3)
    await sandbox.fault(kind="error", path="^report_run/act_", message="Injected report failure")
    failing = (await graph.post(f"{USD}/insights", {"fields": "impressions"})).body["report_run_id"]
    healthy = (await graph.post(f"{USD}/insights", {"fields": "impressions"})).body["report_run_id"]
    await sandbox.control("POST", "clock", {"advance": 5})
    failed = (await graph.get(failing, fields="async_status,error_code,error_subcode,error_message")).body
    assert failed["async_status"] == "Job Failed" and failed["error_code"] == -2
    assert failed["error_subcode"] == 2490547 and failed["error_message"] == "Injected report failure"
    answer = await graph.get(f"{failing}/insights")
    assert answer.status == 400 and answer.error["code"] == -2 and answer.error["error_subcode"] == 2490547
    assert (await graph.get(healthy)).body["async_status"] == "Job Completed"
    assert (await graph.get(f"{healthy}/insights")).status == 200


async def test_async_90000_rows_fast(sandbox, graph):
    s = await scenario(sandbox, ads=1000, days=90)
    assert s["ad_days"] == 90000
    started = time.perf_counter()
    run = await graph.post(
        f"{USD}/insights",
        {
            "fields": "ad_id,ad_name,impressions,clicks,spend,ctr,cpc,reach",
            "level": "ad",
            "time_increment": "1",
            "date_preset": "last_90d",
            "filtering": json.dumps([{"field": "campaign.id", "operator": "IN", "value": [s["campaign_id"]]}]),
        },
    )
    created = time.perf_counter() - started
    await sandbox.control("POST", "clock", {"advance": 30})
    assert (await graph.get(run.body["report_run_id"])).body["async_status"] == "Job Completed"
    count, after, pages = 0, None, 0
    while True:
        params = {"limit": "5000", **({"after": after} if after else {})}
        page = (await graph.get(f"{run.body['report_run_id']}/insights", **params)).body
        count, pages = count + len(page["data"]), pages + 1
        if "next" not in page["paging"]:
            break
        after = page["paging"]["cursors"]["after"]
    elapsed = time.perf_counter() - started
    print(f"90 000-row async report: POST {created:.2f}s, {pages} pages, total {elapsed:.2f}s")
    assert count == 90000 and pages == 18
    assert elapsed < 60  # seconds on a loaded CI box; a few seconds on a workstation


# ---- the official SDK


async def test_official_sdk_insights(sandbox, demo_token, graph):
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.adreportrun import AdReportRun
    from facebook_business.adobjects.adsinsights import AdsInsights
    from facebook_business.api import FacebookAdsApi
    from facebook_business.exceptions import FacebookRequestError

    s = await scenario(sandbox, ads=2, days=4)
    fields = [
        AdsInsights.Field.ad_id,
        AdsInsights.Field.impressions,
        AdsInsights.Field.spend,
        AdsInsights.Field.actions,
    ]
    params = {
        "level": AdsInsights.Level.ad,
        "date_preset": AdsInsights.DatePreset.last_7d,
        "time_increment": 1,
        "filtering": [{"field": "campaign.id", "operator": "IN", "value": [s["campaign_id"]]}],
        "limit": 3,
    }

    def drive_sync() -> tuple[list, AdReportRun, Exception | None]:
        api = FacebookAdsApi.init(
            demo_token["app_id"], demo_token["app_secret"], demo_token["access_token"], api_version="v26.0"
        )
        api._session.GRAPH = sandbox.url
        account = AdAccount(USD)
        listed = [dict(r) for r in account.get_insights(fields=fields, params=params)]
        run = account.get_insights(fields=fields, params=params, is_async=True)
        try:
            account.get_insights(fields=["colour"], params={})
            error = None
        except FacebookRequestError as exc:
            error = exc
        return listed, run, error

    listed, run, error = await asyncio.to_thread(drive_sync)
    assert len(listed) == 8 and {r["ad_id"] for r in listed} == set(s["ad_ids"])
    assert error.api_error_code() == 100 and "colour" in error.api_error_message()
    await sandbox.control("POST", "clock", {"advance": 5})

    def drive_async() -> tuple[dict, list]:
        status = run.api_get()
        return dict(status), [dict(r) for r in run.get_result(params={"limit": 3})]

    status, result = await asyncio.to_thread(drive_async)
    assert status["async_status"] == "Job Completed" and status["async_percent_completion"] == 100
    assert result == listed


# ---- anything else: a Graph error, never a 500

PARAMS = [
    "fields",
    "level",
    "date_preset",
    "time_range",
    "time_ranges",
    "time_increment",
    "breakdowns",
    "action_breakdowns",
    "filtering",
    "sort",
    "limit",
    "after",
    "before",
    "summary",
    "default_summary",
]
values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "impressions,spend",
            "age",
            "age,gender",
            "1",
            "90",
            "monthly",
            "all_days",
            "last_7d",
            "maximum",
            "ad",
            "spend_descending",
            "true",
            '{"since":"2026-01-01","until":"2026-01-02"}',
            '[{"field":"spend","operator":"GREATER_THAN","value":1}]',
            '[{"since":"x"}]',
            "[]",
            "{}",
            '["age","country"]',
            "-1",
            "99999999999999999999",
            "ÿ\u2603",
        ]
    ),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6,
    ).map(json.dumps),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(st.sampled_from(PARAMS), values, max_size=5),
    method=st.sampled_from(["GET", "POST"]),
    node=st.sampled_from([USD, JPY, "120210000000000001"]),
)
async def test_random_parameters_never_5xx(graph, query, method, node):
    answer = await graph.call(
        method, f"{node}/insights", query if method == "GET" else None, data=query if method == "POST" else None
    )
    assert answer.status in (200, 400), (answer.status, answer.body)
    if answer.status == 400:
        syntax = answer.error["code"] == 2500 and answer.error["message"].startswith("Syntax error")  # fields=
        assert (answer.error["code"] == 100 or syntax) and answer.error["message"], answer.body
    else:
        assert "data" in answer.body or "report_run_id" in answer.body

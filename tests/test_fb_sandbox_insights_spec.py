"""Sandbox insights from Meta's spec (issue 17): every SDK breakdown and action breakdown served with rows that sum
to the totals, Meta's documented combination rules refused with its errors, attribution windows per window, and a
failed async run's v25 error fields. Over real HTTP (the raw Graph client of test_fb_sandbox_helpers)."""

from __future__ import annotations

import re

import pytest

from fb_sandbox import breakdowns as bd
from test_fb_sandbox_helpers import USD, graph  # noqa: F401
from test_fb_sandbox_insights import action_totals, refused, rows, scenario, total

BASE = ("impressions", "clicks", "spend", "reach", "actions", "action_values")  # every breakdown serves these
TARGETING = {"geo_locations": {"countries": ["US", "JP"]}, "age_min": 18, "age_max": 65}


def fields_for(breakdown: str) -> str:
    extra = (bd.ONLY_WITH_FIELD[breakdown],) if breakdown in bd.ONLY_WITH_FIELD else ()
    return ",".join(BASE + extra)


def asked_with(breakdown: str) -> str:
    """The breakdown alone, or the documented permutation it belongs to when the table only lists it combined."""
    if bd.combination([breakdown], []) != "invalid":
        return breakdown
    entry = next(cols for cols, _ in bd.PERMUTATIONS if breakdown in cols and cols <= set(bd.BREAKDOWNS))
    return ",".join(sorted(entry))


async def campaign(sandbox) -> str:
    return (await scenario(sandbox, ads=2, days=3, targeting=TARGETING))["campaign_id"]


def test_the_lists_are_the_sdks():
    from facebook_business.adobjects.adsinsights import AdsInsights

    assert set(bd.BREAKDOWNS) == {v for k, v in vars(AdsInsights.Breakdowns).items() if not k.startswith("_")}
    assert set(bd.ACTION_BREAKDOWNS) == {
        v for k, v in vars(AdsInsights.ActionBreakdowns).items() if not k.startswith("_")
    }
    assert {
        "region",
        "dma",
        "frequency_value",
        "product_id",
        "media_type",
        "hourly_stats_aggregated_by_advertiser_time_zone",
    } <= set(bd.BREAKDOWNS)
    assert len(bd.BREAKDOWNS) > 50 and "action_reaction" in bd.ACTION_BREAKDOWNS


@pytest.mark.parametrize("breakdown", bd.BREAKDOWNS)
async def test_every_sdk_breakdown_is_served_and_sums_to_the_totals(sandbox, graph, breakdown):
    camp = await campaign(sandbox)
    fields = fields_for(breakdown)
    whole = await rows(graph, f"{camp}/insights", fields=fields, date_preset="last_7d")
    cells = await rows(
        graph, f"{camp}/insights", fields=fields, date_preset="last_7d", breakdowns=asked_with(breakdown), limit="500"
    )
    assert cells and all(breakdown in r and r[breakdown] not in ("", None) for r in cells), cells[:2]
    for name in ("impressions", "clicks", "spend"):
        assert total(cells, name) == total(whole, name), name
    expected = action_totals(whole)
    if breakdown in bd.TYPE1_BREAKDOWNS:  # Type 1: off-Meta (pixel) actions are not returned
        expected = {k: v for k, v in expected.items() if k not in bd.OFF_META_ACTIONS}
    assert action_totals(cells) == expected
    if breakdown in bd.HOURLY:
        assert {r["reach"] for r in cells} == {"0"}  # the doc: reach returns 0 with hourly
    else:
        assert abs(total(cells, "reach") - total(whole, "reach")) <= len(cells)
    again = await rows(
        graph, f"{camp}/insights", fields=fields, date_preset="last_7d", breakdowns=asked_with(breakdown), limit="500"
    )
    assert again == cells  # deterministic


async def test_breakdown_values_are_plausible(sandbox, graph):
    camp = await campaign(sandbox)

    async def values(breakdown: str, fields: str = "impressions,reach") -> list:
        return [
            r[breakdown]
            for r in await rows(
                graph, f"{camp}/insights", fields=fields, breakdowns=breakdown, date_preset="last_7d", limit="500"
            )
        ]

    regions = set(await values("region"))
    assert {r for r, _ in bd.regions_of("US")} & regions and {r for r, _ in bd.regions_of("JP")} & regions
    assert set(await values("dma")) <= {d for d, _ in bd.DMAS} | {"Unknown"}
    hours = await values("hourly_stats_aggregated_by_advertiser_time_zone", "impressions")
    assert len(hours) == 24 and all(re.fullmatch(r"(\d\d):00:00 - \1:59:59", h) for h in hours)
    assert set(await values("frequency_value")) <= set(bd.FREQUENCY_BUCKETS) and "1" in await values("frequency_value")
    assert set(await values("media_type")) <= {"image", "video", "carousel"}
    assert set(await values("device_platform")) <= {"mobile_app", "desktop"}
    body = (await values("body_asset", "impressions,spend"))[0]
    assert isinstance(body, dict) and body["id"].isdigit() and "text" in body


@pytest.mark.parametrize("action_breakdown", bd.ACTION_BREAKDOWNS)
async def test_every_sdk_action_breakdown_splits_each_action_type(sandbox, graph, action_breakdown):
    camp = await campaign(sandbox)
    whole = action_totals(await rows(graph, f"{camp}/insights", fields="actions", date_preset="last_7d"))
    asked = [action_breakdown] + (["action_type"] if action_breakdown != "action_type" else [])
    if bd.combination([], asked) == "invalid":
        asked = [action_breakdown]  # carousel cards are documented alone
    answer = await graph.get(
        f"{camp}/insights",
        fields="actions",
        date_preset="last_7d",
        action_breakdowns=",".join(asked),
        default_summary="true",
    )
    assert answer.status == 200, answer.body
    summary, data = action_totals([answer.body["summary"]]), action_totals(answer.body["data"])
    assert summary.keys() == data.keys()  # the summary row too (reactions: a share per ad, floored)
    assert all(abs(summary[k] - data[k]) <= (2 if k == "post_reaction" else 0) for k in data), (summary, data)
    entries = [a for r in answer.body["data"] for a in r.get("actions", [])]
    assert all(action_breakdown in a for a in entries)
    if "action_type" not in asked:
        return
    split = action_totals(answer.body["data"])
    for action_type, value in split.items():
        if action_type == "post_reaction":  # reactions are a part of post engagement
            assert value <= whole["post_engagement"]
        else:
            assert value == whole[action_type], action_type
    if action_breakdown in ("action_type", "action_target_id", "action_destination", "action_device"):
        assert split == whole


async def test_action_target_id_is_the_pixel_or_the_page(sandbox, graph):
    s = await scenario(sandbox, ads=1, days=3)
    pixel = next(p["id"] for p in sandbox.server.sandbox.store.list("pixel"))
    answer = await graph.get(
        f"{s['campaign_id']}/insights",
        fields="actions",
        date_preset="last_7d",
        action_breakdowns="action_type,action_target_id",
    )
    targets = {a["action_type"]: a["action_target_id"] for a in answer.body["data"][0]["actions"]}
    assert targets.get("purchase") == pixel and targets["post_engagement"] != pixel


@pytest.mark.parametrize(
    ("params", "code", "subcode"),
    [
        ({"breakdowns": "age,country"}, 100, None),  # not a documented permutation
        ({"breakdowns": "country,region"}, 100, None),
        ({"breakdowns": "country", "action_breakdowns": "action_device"}, 100, None),
        ({"breakdowns": "age", "action_breakdowns": "action_carousel_card_id,action_type"}, 100, None),
        (
            {
                "breakdowns": "hourly_stats_aggregated_by_advertiser_time_zone",
                "fields": "impressions,video_p25_watched_actions",
            },
            2,
            1504041,
        ),
        ({"breakdowns": "frequency_value", "fields": "impressions"}, 2, 1504041),
        ({"breakdowns": "region", "fields": "impressions,video_p50_watched_actions"}, 2, 1504041),
        ({"breakdowns": "dma", "fields": "estimated_ad_recall_rate"}, 2, 1504041),
        ({"breakdowns": "body_asset", "fields": "impressions,cpc"}, 2, 1504041),
        ({"breakdowns": "app_id,skan_conversion_id", "fields": "impressions"}, 2, 1504041),
        ({"breakdowns": "place_page_id", "fields": "impressions", "level": "account"}, 2, 1504041),
        ({"action_attribution_windows": "2d_click"}, 100, None),
    ],
)
async def test_documented_impossible_combinations_are_refused(sandbox, graph, params, code, subcode):
    await campaign(sandbox)
    answer = await graph.get(f"{USD}/insights", **{"fields": "impressions", **params})
    error = refused(answer) if code == 100 else answer.error
    assert answer.status == 400 and error["code"] == code and error.get("error_subcode") == subcode, answer.body
    if code == 2:
        assert error["error_user_title"] == "Invalid Breakdowns" and "\n" not in error["message"]


async def test_an_undocumented_mix_is_served(sandbox, graph):
    """A mix the permutation table says nothing about (unverified) is served, summing to the totals."""
    camp = await campaign(sandbox)
    assert bd.combination(["publisher_platform", "device_platform"], ["action_type"]) == "unverified"
    whole = await rows(graph, f"{camp}/insights", fields="impressions,spend", date_preset="last_7d")
    cells = await rows(
        graph,
        f"{camp}/insights",
        fields="impressions,spend",
        date_preset="last_7d",
        breakdowns="publisher_platform,device_platform",
    )
    assert len(cells) > 1 and total(cells, "spend") == total(whole, "spend")


async def test_attribution_windows_per_window_values(sandbox, graph):
    camp = await campaign(sandbox)
    windows = "1d_click,7d_click,28d_click,1d_view,1d_ev,7d_view,28d_view"
    answer = await graph.get(
        f"{camp}/insights", fields="actions,action_values", date_preset="last_7d", action_attribution_windows=windows
    )
    assert answer.status == 200, answer.body
    row = answer.body["data"][0]
    plain = (await graph.get(f"{camp}/insights", fields="actions", date_preset="last_7d")).body["data"][0]
    assert [a["value"] for a in row["actions"]] == [a["value"] for a in plain["actions"]]  # value = the default
    purchases = next(a for a in row["actions"] if a["action_type"] == "purchase")
    assert int(purchases["7d_click"]) > 0
    for entry in row["actions"]:
        n = {k: int(v) for k, v in entry.items() if k != "action_type"}
        assert n["1d_click"] <= n["7d_click"] <= n["28d_click"], entry
        assert n["7d_click"] + n["1d_view"] == n["value"] and n["1d_ev"] <= n["1d_view"], entry
        assert "7d_view" not in entry and "28d_view" not in entry  # no data since 2026-01-12
    for entry in row["action_values"]:
        assert float(entry["1d_click"]) <= float(entry["7d_click"]) <= float(entry["28d_click"])
    again = await graph.get(
        f"{camp}/insights", fields="actions,action_values", date_preset="last_7d", action_attribution_windows=windows
    )
    assert again.body == answer.body


async def test_a_failed_run_answers_its_error_fields_by_default(sandbox, graph):
    await scenario(sandbox, ads=1, days=3)
    await sandbox.fault(kind="error", path="^report_run/act_")
    run_id = (await graph.post(f"{USD}/insights", {"fields": "impressions"})).body["report_run_id"]
    await sandbox.control("POST", "clock", {"advance": 5})
    failed = (await graph.get(run_id)).body
    assert failed["async_status"] == "Job Failed"
    assert (failed["error_code"], failed["error_subcode"]) == (-2, 2490547)
    assert failed["error_user_title"] == "Report Failed" and failed["error_user_msg"] and failed["error_message"]
    healthy = (await graph.post(f"{USD}/insights", {"fields": "impressions"})).body["report_run_id"]
    await sandbox.control("POST", "clock", {"advance": 5})
    done = (await graph.get(healthy)).body
    assert done["async_status"] == "Job Completed" and "error_code" not in done


def test_carousel_cards_split_link_clicks_over_the_creatives_cards():
    """A carousel ad's link clicks go to its cards (ids and names from the creative), summing to the count."""
    from fb_sandbox.insights import split_count

    store = {
        "9": {"adset_id": "8", "creative": {"id": "7"}},
        "8": {"promoted_object": {"pixel_id": "6"}},
        "7": {
            "id": "7",
            "_kind": "carousel",
            "_page_id": "5",
            "_cards": [{"name": "Red"}, {"name": "Blue"}, {"name": "Green"}],
        },
    }
    ad = bd.AdContext(store, "9", seed=1)
    shown, share, pairs = bd.action_values("action_carousel_card_name", ad, "link_click")
    assert (shown, share) == ("link_click", 1.0) and [p for p, _ in pairs] == ["Red", "Blue", "Green"]
    counts = split_count(101, [w for _, w in pairs])
    assert sum(counts) == 101 and counts[0] > counts[2]
    ids = [p for p, _ in bd.action_values("action_carousel_card_id", ad, "link_click")[2]]
    assert len(set(ids)) == 3 and all(i.isdigit() for i in ids)
    assert bd.action_values("action_carousel_card_id", ad, "purchase") is None  # only clicks on cards
    assert bd.action_values("action_target_id", ad, "purchase")[2] == [("6", 1.0)]  # the pixel
    assert bd.action_values("action_target_id", ad, "post_engagement")[2] == [("5", 1.0)]  # the page

"""Sandbox campaigns: CRUD, Facebook's validation rules with codes and subcodes, listing, paging, copies."""

from __future__ import annotations

import json
import re

import pytest

from test_fb_sandbox_helpers import JPY, USD, campaign_form, graph  # noqa: F401

ALL_FIELDS = (
    "id,account_id,name,objective,status,configured_status,effective_status,daily_budget,"
    "lifetime_budget,budget_remaining,bid_strategy,spend_cap,special_ad_categories,"
    "special_ad_category_country,start_time,stop_time,created_time,updated_time,adlabels,"
    "issues_info,source_campaign_id,buying_type"
)


async def test_create_read_update_delete(graph):
    created = await graph.post(
        f"{USD}/campaigns",
        campaign_form(
            name="Launch",
            bid_strategy="LOWEST_COST_WITHOUT_CAP",
            adlabels='[{"name":"spring"}]',
            special_ad_category_country='["US"]',
        ),
    )
    assert created.status == 200 and re.fullmatch(r"1202\d{14}", created.body["id"])
    cid = created.body["id"]
    c = (await graph.get(cid, fields=ALL_FIELDS)).body
    assert c["account_id"] == USD[4:] and c["name"] == "Launch" and c["status"] == "PAUSED"
    assert c["configured_status"] == c["effective_status"] == "PAUSED"
    assert c["daily_budget"] == "1000" and c["budget_remaining"] == "1000"
    assert c["special_ad_categories"] == [] and c["adlabels"][0]["name"] == "spring"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", c["created_time"])
    assert (await graph.get(cid)).body == {"id": cid}
    assert (await graph.post(cid, {"name": "Launch v2", "daily_budget": "2500", "status": "ACTIVE"})).body == {
        "success": True
    }
    c = (await graph.get(cid, fields="name,daily_budget,status,effective_status")).body
    assert (c["name"], c["daily_budget"], c["status"]) == ("Launch v2", "2500", "ACTIVE")
    assert (await graph.delete(cid)).body == {"success": True}
    assert (await graph.get(cid, fields="status")).body["status"] == "DELETED"
    locked = await graph.post(cid, {"name": "zombie"})
    assert locked.status == 400 and locked.error["code"] == 100


async def test_unknown_field_and_other_account(graph):
    cid = (await graph.post(f"{USD}/campaigns", campaign_form())).body["id"]
    bad = await graph.get(cid, fields="name,foo")
    assert bad.error["message"] == "(#100) Tried accessing nonexisting field (foo) on node type (Campaign)"
    other = await graph.get("act_123/campaigns")
    assert other.error["error_subcode"] == 33


async def test_archive_then_only_delete(graph):
    cid = (await graph.post(f"{USD}/campaigns", campaign_form())).body["id"]
    assert (await graph.post(cid, {"status": "ARCHIVED"})).body == {"success": True}
    refused = await graph.post(cid, {"status": "ACTIVE"})
    assert refused.error["code"] == 100 and refused.error["error_user_title"]
    assert (await graph.post(cid, {"status": "DELETED"})).body == {"success": True}


async def test_validate_only_creates_nothing(sandbox, graph):
    before = len((await sandbox.control("GET", f"objects?type=campaign&account_id={USD}"))["data"])
    answer = await graph.post(f"{USD}/campaigns", campaign_form(execution_options='["validate_only"]'))
    assert answer.body == {"success": True}
    after = len((await sandbox.control("GET", f"objects?type=campaign&account_id={USD}"))["data"])
    assert after == before
    invalid = await graph.post(
        f"{USD}/campaigns", campaign_form(daily_budget="5", execution_options='["validate_only"]')
    )
    assert invalid.error["error_subcode"] == 1885272


@pytest.mark.parametrize(
    "form, subcode, blame",
    [
        (campaign_form(name=None), None, "name"),
        (campaign_form(objective=None), None, "objective"),
        (campaign_form(special_ad_categories=None), None, "special_ad_categories"),
        (campaign_form(objective="LINK_CLICKS_PLEASE"), None, "objective"),
        (campaign_form(special_ad_categories='["PETS"]'), None, "special_ad_categories[0]"),
        (campaign_form(status="LIVE"), None, "status"),
        (campaign_form(bid_strategy="CHEAPEST"), None, "bid_strategy"),
        (campaign_form(lifetime_budget="100000"), None, "lifetime_budget"),
        (campaign_form(daily_budget="99"), 1885272, "daily_budget"),
        (campaign_form(daily_budget="100000000000"), 1885261, "daily_budget"),
        (campaign_form(daily_budget=None, lifetime_budget="50000"), None, "stop_time"),
        (campaign_form(daily_budget=None), 4834011, "is_adset_budget_sharing_enabled"),
        (
            campaign_form(daily_budget=None, is_adset_budget_sharing_enabled="false", bid_strategy="COST_CAP"),
            None,
            "bid_strategy",
        ),
        (campaign_form(daily_budget="abc"), None, "daily_budget"),
        (campaign_form(start_time="not a time"), None, "start_time"),
    ],
)
async def test_create_rules(graph, form, subcode, blame):
    answer = await graph.post(f"{USD}/campaigns", form)
    assert answer.status == 400
    assert answer.error["code"] == 100 and answer.error["type"] == "OAuthException"
    assert answer.error.get("error_subcode") == subcode
    assert answer.blame() == [blame]


async def test_budget_messages_use_account_currency(graph):
    low = await graph.post(f"{JPY}/campaigns", campaign_form(daily_budget="50"))
    assert low.error["error_subcode"] == 1885272 and "¥100" in low.error["error_user_msg"]
    usd = await graph.post(f"{USD}/campaigns", campaign_form(daily_budget="50"))
    assert "$1.00" in usd.error["error_user_msg"] and usd.error["error_user_title"]
    ok = await graph.post(f"{JPY}/campaigns", campaign_form(daily_budget="100"))
    assert ok.status == 200


async def test_no_budget_campaign_and_lifetime_with_stop(graph):
    shared = await graph.post(
        f"{USD}/campaigns", campaign_form(daily_budget=None, is_adset_budget_sharing_enabled="false")
    )
    assert shared.status == 200
    c = (await graph.get(shared.body["id"], fields="budget_remaining,daily_budget")).body
    assert c["budget_remaining"] == "0" and "daily_budget" not in c
    lifetime = await graph.post(
        f"{USD}/campaigns",
        campaign_form(daily_budget=None, lifetime_budget="500000", stop_time="2099-11-22T10:00:00+0000"),
    )
    assert lifetime.status == 200
    c = (await graph.get(lifetime.body["id"], fields="lifetime_budget,stop_time")).body
    assert c == {"lifetime_budget": "500000", "stop_time": "2099-11-22T10:00:00+0000", "id": lifetime.body["id"]}
    switch = await graph.post(lifetime.body["id"], {"daily_budget": "1000"})
    assert switch.error["code"] == 100


async def test_list_filtering_and_status(graph):
    listed = (await graph.get(f"{USD}/campaigns", fields="name,effective_status,issues_info")).body["data"]
    statuses = {c["effective_status"] for c in listed}
    assert not statuses & {"DELETED", "ARCHIVED"} and {"ACTIVE", "PAUSED", "WITH_ISSUES"} <= statuses
    archived = (await graph.get(f"{USD}/campaigns", effective_status='["ARCHIVED"]', fields="status")).body["data"]
    assert archived and all(c["status"] == "ARCHIVED" for c in archived)
    with_issues = next(c for c in listed if c["effective_status"] == "WITH_ISSUES")
    assert with_issues["issues_info"][0]["error_summary"]
    deleted = (await graph.get(f"{USD}/campaigns", effective_status='["DELETED"]', fields="status")).body["data"]
    assert deleted and all(c["status"] == "DELETED" for c in deleted)
    active = (
        await graph.get(f"{USD}/campaigns", effective_status='["ACTIVE","PAUSED"]', fields="effective_status")
    ).body["data"]
    assert {c["effective_status"] for c in active} <= {"ACTIVE", "PAUSED"}
    await graph.post(f"{USD}/campaigns", campaign_form(name="Tagged one", adlabels='[{"name":"promo"}]'))
    flt = lambda *f: json.dumps([{"field": a, "operator": b, "value": c} for a, b, c in f])  # noqa: E731
    cases = [
        (flt(("name", "CONTAIN", "tagged")), {"Tagged one"}),
        (flt(("adlabels", "ANY", ["promo"])), {"Tagged one"}),
        (flt(("campaign.name", "EQUAL", "Webinar Leads")), {"Webinar Leads"}),
        (flt(("effective_status", "IN", ["WITH_ISSUES"])), {"Webinar Leads"}),
    ]
    for filtering, names in cases:
        got = (await graph.get(f"{USD}/campaigns", filtering=filtering, fields="name")).body["data"]
        assert {c["name"] for c in got} == names, filtering
    not_in = (
        await graph.get(
            f"{USD}/campaigns", fields="name", filtering=flt(("effective_status", "NOT_IN", ["ACTIVE", "WITH_ISSUES"]))
        )
    ).body["data"]
    assert not_in and "Webinar Leads" not in {c["name"] for c in not_in}
    not_equal = (
        await graph.get(f"{USD}/campaigns", fields="id", filtering=flt(("id", "NOT_EQUAL", listed[0]["id"])))
    ).body["data"]
    assert listed[0]["id"] not in {c["id"] for c in not_equal}
    bad = await graph.get(f"{USD}/campaigns", filtering=flt(("colour", "EQUAL", "red")))
    assert bad.error["code"] == 100
    bad_status = await graph.get(f"{USD}/campaigns", effective_status='["SLEEPING"]')
    assert bad_status.error["code"] == 100


async def test_cursor_paging_over_250(sandbox, graph):
    seeded = await sandbox.control("POST", "seed", {"campaigns": 250, "account_id": JPY, "name_prefix": "Bulk"})
    assert len(seeded["ids"]) == 250
    first = await graph.get(
        f"{JPY}/campaigns",
        fields="name",
        limit="100",
        summary="true",
        filtering=json.dumps([{"field": "name", "operator": "CONTAIN", "value": "Bulk"}]),
    )
    assert first.body["summary"]["total_count"] == 250 and len(first.body["data"]) == 100
    seen = [c["id"] for c in first.body["data"]]
    page = first.body
    pages = 1
    while "next" in page.get("paging", {}):
        async with __import__("aiohttp").ClientSession() as session:
            async with session.get(page["paging"]["next"]) as resp:
                page = await resp.json()
        seen += [c["id"] for c in page["data"]]
        pages += 1
    assert pages == 3 and len(seen) == 250 and set(seen) == set(seeded["ids"])
    assert "after" in page["paging"]["cursors"] and "next" not in page["paging"]
    back = await graph.get(
        f"{JPY}/campaigns",
        fields="name",
        limit="100",
        before=page["paging"]["cursors"]["before"],
        filtering=json.dumps([{"field": "name", "operator": "CONTAIN", "value": "Bulk"}]),
    )
    assert [c["id"] for c in back.body["data"]] == seen[100:200]
    default = await graph.get(f"{JPY}/campaigns")
    assert len(default.body["data"]) == 25 and set(default.body["data"][0]) == {"id"}
    huge = await graph.get(f"{JPY}/campaigns", limit="5000", summary="true")
    assert len(huge.body["data"]) == huge.body["summary"]["total_count"] == 252
    bad = await graph.get(f"{JPY}/campaigns", after="%%%garbage")
    assert bad.error["code"] == 100


async def test_copies(graph):
    source = (await graph.post(f"{USD}/campaigns", campaign_form(name="Original", status="ACTIVE"))).body["id"]
    copy = await graph.post(f"{source}/copies", {"deep_copy": "true", "status_option": "PAUSED"})
    new_id = copy.body["copied_campaign_id"]
    assert copy.body["ad_object_ids"] == [{"ad_object_type": "campaign", "source_id": source, "copied_id": new_id}]
    c = (await graph.get(new_id, fields="name,status,daily_budget,source_campaign_id")).body
    assert c["status"] == "PAUSED" and c["daily_budget"] == "1000" and c["source_campaign_id"] == source
    assert c["name"] == "Original - Copy"
    renamed = await graph.post(
        f"{source}/copies", {"status_option": "INHERITED_FROM_SOURCE", "rename_options": '{"rename_suffix":" (B)"}'}
    )
    c = (await graph.get(renamed.body["copied_campaign_id"], fields="name,status")).body
    assert c == {"name": "Original (B)", "status": "ACTIVE", "id": renamed.body["copied_campaign_id"]}
    bad = await graph.post(f"{source}/copies", {"status_option": "SOMETIMES"})
    assert bad.error["code"] == 100

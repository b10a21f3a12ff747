"""Sandbox split tests (`ad_studies`) over real HTTP: create, read, list, cells, update, end early, cancel; every
validation rule with its code; one split test per object at a time; and delivery: a 50/50 study halves each cell's
reach, and a true effect on one cell's ad shows as a clearly higher CTR in insights. No product code."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import pytest

from test_fb_sandbox_helpers import JPY, USD, Graph, campaign_form, graph, make_old_app  # noqa: F401 - graph is a fixture

DAY = 86400
DOF = {
    "creative_features_spec": {
        "image_touchups": {"enroll_status": "OPT_OUT"},
        "text_optimizations": {"enroll_status": "OPT_IN"},
    }
}
BROAD = {
    "geo_locations": {"countries": ["US"]},
    "age_min": 18,
    "age_max": 65,
    "targeting_automation": {"advantage_audience": 0},
}
# ~6 000 people: a $100 daily budget can't buy enough impressions in it (an audience-limited ad set)
NARROW = {
    "geo_locations": {"zips": [{"key": "US:10001"}]},
    "age_min": 30,
    "age_max": 34,
    "genders": [1],
    "interests": [{"id": "6003211535908", "name": "Advertising"}],
    "targeting_automation": {"advantage_audience": 0},
}
STUDY_FIELDS = (
    "id,name,description,type,start_time,end_time,created_time,updated_time,canceled_time,business,"
    "confidence_level,cells,objectives,created_by,updated_by"
)


def enc(body: dict) -> dict:
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in body.items() if v is not None}


async def now(sandbox) -> int:
    return (await sandbox.control("GET", "clock"))["epoch"]


async def business_of(graph) -> str:
    return (await graph.get("me/businesses")).body["data"][0]["id"]


async def new_campaign(graph, name: str = "Study campaign", account: str = USD, status: str = "PAUSED") -> str:
    answer = await graph.post(
        f"{account}/campaigns",
        campaign_form(name=name, status=status, daily_budget=None, is_adset_budget_sharing_enabled="false"),
    )
    assert answer.status == 200, answer.body
    return answer.body["id"]


async def new_adset(
    graph,
    campaign: str,
    *,
    account: str = USD,
    status: str = "PAUSED",
    targeting=None,
    daily_budget: str = "2000",
    name: str = "Study ad set",
) -> str:
    answer = await graph.post(
        f"{account}/adsets",
        enc(
            {
                "campaign_id": campaign,
                "name": name,
                "optimization_goal": "LINK_CLICKS",
                "billing_event": "IMPRESSIONS",
                "daily_budget": daily_budget,
                "status": status,
                "targeting": targeting or BROAD,
            }
        ),
    )
    assert answer.status == 200, answer.body
    return answer.body["id"]


async def new_creative(graph, account: str = USD) -> str:
    page = (await graph.get("me/accounts")).body["data"][0]["id"]
    spec = {
        "page_id": page,
        "link_data": {
            "link": "https://shop.example.com/shoes",
            "message": "Light and fast.",
            "name": "Cloudstride",
            "picture": "https://shop.example.com/shoe.png",
            "call_to_action": {"type": "SHOP_NOW"},
        },
    }
    answer = await graph.post(
        f"{account}/adcreatives",
        enc({"name": "Study creative", "object_story_spec": spec, "degrees_of_freedom_spec": DOF}),
    )
    assert answer.status == 200, answer.body
    return answer.body["id"]


async def launch(graph, name: str, creative: str, *, targeting=None, daily_budget: str = "10000") -> dict:
    """An ACTIVE campaign with one ACTIVE ad set and one ACTIVE ad, through the Graph API."""
    campaign = await new_campaign(graph, name, status="ACTIVE")
    adset = await new_adset(
        graph, campaign, status="ACTIVE", targeting=targeting, daily_budget=daily_budget, name=f"{name} ad set"
    )
    answer = await graph.post(
        f"{USD}/ads",
        enc({"name": f"{name} ad", "adset_id": adset, "status": "ACTIVE", "creative": {"creative_id": creative}}),
    )
    assert answer.status == 200, answer.body
    return {"campaign": campaign, "adset": adset, "ad": answer.body["id"]}


def study_form(start: int, cell_list: list, **overrides) -> dict:
    """A study's POST body (unix times, cells JSON-encoded as the SDK sends them); None drops a field."""
    body = {
        "name": "Creative test",
        "description": "Which creative sells?",
        "type": "SPLIT_TEST",
        "start_time": start,
        "end_time": start + 14 * DAY,
        "cells": cell_list,
    }
    body.update(overrides)
    return enc(body)


def two_cells(a: str, b: str, kind: str = "campaigns", pcts=(50, 50)) -> list:
    return [
        {"name": "Group A", "treatment_percentage": pcts[0], kind: [a]},
        {"name": "Group B", "treatment_percentage": pcts[1], kind: [b]},
    ]


async def create(graph, business: str, form: dict) -> str:
    answer = await graph.post(f"{business}/ad_studies", form)
    assert answer.status == 200, answer.body
    assert set(answer.body) == {"id"} and answer.body["id"].isdigit()
    return answer.body["id"]


async def count_studies(sandbox) -> int:
    return len((await sandbox.control("GET", "objects?type=adstudy"))["data"])


def refused(answer, code: int = 100, title: str | None = None, blame: str | None = None) -> dict:
    assert answer.status == 400, answer.body
    error = answer.error
    assert error["code"] == code, error
    if title is not None:
        assert error["error_user_title"] == title, error
        assert error["error_user_msg"], error
    if blame is not None:
        assert answer.blame() == [blame], error
    assert error["fbtrace_id"]
    return error


async def insights(graph, object_id: str, fields: str = "impressions,reach,clicks,ctr,spend") -> dict:
    answer = await graph.get(f"{object_id}/insights", fields=fields, date_preset="maximum")
    assert answer.status == 200, answer.body
    rows = answer.body["data"]
    assert len(rows) == 1, answer.body
    return rows[0]


# ---- create, read, list, cells


@pytest.mark.sends_forbidden  # one multi-ID read of a study, as an old app
async def test_create_read_list_and_cells(graph, sandbox):
    business = await business_of(graph)
    a, b = await new_campaign(graph, "A"), await new_campaign(graph, "B")
    start = await now(sandbox) + 3600
    study = await create(
        graph,
        business,
        study_form(start, two_cells(a, b), confidence_level=90, objectives=[{"name": "Purchases", "type": "SALES"}]),
    )
    body = (await graph.get(study, fields=STUDY_FIELDS)).body
    assert body["id"] == study and body["name"] == "Creative test" and body["type"] == "SPLIT_TEST"
    assert body["description"] == "Which creative sells?" and body["confidence_level"] == 90
    assert body["start_time"].endswith("+0000") and body["end_time"].endswith("+0000")
    assert "canceled_time" not in body
    assert body["business"] == {"id": business, "name": "Demo Business"}
    assert body["created_by"]["id"] == body["updated_by"]["id"]
    cells = body["cells"]
    assert [(c["name"], c["treatment_percentage"]) for c in cells] == [("Group A", 50), ("Group B", 50)]
    assert body["objectives"][0]["name"] == "Purchases" and body["objectives"][0]["type"] == "SALES"
    assert (await graph.get(study)).body == {"id": study, "name": "Creative test"}
    # nested cell fields, the /cells edge and a cell node
    nested = (await graph.get(study, fields="cells{name,campaigns}")).body["cells"]
    assert nested[0]["campaigns"] == {"data": [{"id": a}]} and "treatment_percentage" not in nested[0]
    edge = (await graph.get(f"{study}/cells", fields="id,name,treatment_percentage,campaigns,adsets,adaccounts")).body
    assert [c["campaigns"] for c in edge["data"]] == [{"data": [{"id": a}]}, {"data": [{"id": b}]}]
    assert edge["data"][0]["adsets"] == {"data": []}
    assert edge["data"][0]["adaccounts"] == {"data": [{"id": USD}]}
    cell = (await graph.get(edge["data"][1]["id"], fields="name,treatment_percentage")).body
    assert cell == {"name": "Group B", "treatment_percentage": 50, "id": edge["data"][1]["id"]}
    await make_old_app(sandbox)  # a multi-ID read is an old app's legacy feature (docs/sandbox.md)
    assert (await graph.get("", ids=study, fields="name")).body == {study: {"name": "Creative test", "id": study}}
    refused(await graph.get(study, fields="name,nonsense"), 100)
    # a second study (ad sets this time) lists first; paging; the account, campaign and ad set views
    adset = await new_adset(graph, await new_campaign(graph, "C"))
    other = await new_adset(graph, await new_campaign(graph, "D"))
    second = await create(graph, business, study_form(start, two_cells(adset, other, "adsets"), name="Audience test"))
    listed = (await graph.get(f"{business}/ad_studies", fields="id,name,type")).body["data"]
    assert [s["id"] for s in listed] == [second, study]
    page = (await graph.get(f"{business}/ad_studies", limit=1, summary="true")).body
    assert [s["id"] for s in page["data"]] == [second] and page["paging"]["next"]
    assert page["summary"]["total_count"] == 2
    assert [s["id"] for s in (await graph.get(f"{USD}/ad_studies")).body["data"]] == [second, study]
    assert (await graph.get(f"{JPY}/ad_studies")).body["data"] == []
    assert [s["id"] for s in (await graph.get(f"{a}/ad_studies")).body["data"]] == [study]
    assert [s["id"] for s in (await graph.get(f"{adset}/ad_studies")).body["data"]] == [second]


async def test_equal_split_iso_times_relaxed_cells_and_other_types(graph, sandbox):
    business = await business_of(graph)
    ids = [await new_campaign(graph, f"Equal {i}") for i in range(3)]
    start = await now(sandbox) + 60
    study = await create(
        graph,
        business,
        study_form(
            0,
            [{"name": f"Cell {i}", "campaigns": [c]} for i, c in enumerate(ids)],
            start_time=iso(start),
            end_time=iso(start + 7 * DAY),
        ),
    )
    cells = (await graph.get(f"{study}/cells", fields="treatment_percentage")).body["data"]
    assert [c["treatment_percentage"] for c in cells] == [34, 33, 33]
    read = (await graph.get(study, fields="start_time,end_time")).body
    assert read["end_time"] > read["start_time"]
    # Meta's curl example sends cells with bare keys; a start in the past starts now
    more = [await new_campaign(graph, f"Relaxed {i}") for i in range(2)]
    relaxed = (
        f'[{{name:"Group A",treatment_percentage:60,campaigns:[{more[0]}]}},'
        f'{{name:"Group B",treatment_percentage:40,campaigns:[{more[1]}]}}]'
    )
    past = await now(sandbox) - 3 * DAY
    body = {
        "name": "Relaxed",
        "type": "SPLIT_TEST",
        "start_time": str(past),
        "end_time": str(past + 10 * DAY),
        "cells": relaxed,
    }
    study2 = await create(graph, business, body)
    read = (await graph.get(study2, fields="start_time,cells{treatment_percentage}")).body
    assert [c["treatment_percentage"] for c in read["cells"]] == [60, 40]
    assert _epoch(read["start_time"]) >= await now(sandbox) - 5
    # another AdStudy.Type is accepted (no delivery effect); an unknown one is refused
    lift = await create(
        graph,
        business,
        study_form(
            start, [{"name": "Test", "treatment_percentage": 90, "campaigns": [ids[0]]}], type="LIFT", name="Lift"
        ),
    )
    assert (await graph.get(lift, fields="type")).body["type"] == "LIFT"
    refused(
        await graph.post(f"{business}/ad_studies", study_form(start, two_cells(*more), type="AB_TEST")), blame="type"
    )


# ---- update, end early, cancel


async def test_update_end_early_and_cancel(graph, sandbox):
    business = await business_of(graph)
    a, b = await new_campaign(graph, "A"), await new_campaign(graph, "B")
    t0 = await now(sandbox)
    study = await create(graph, business, study_form(t0, two_cells(a, b)))
    assert (await graph.post(study, {"name": "Renamed", "description": "New text"})).body == {"success": True}
    read = (await graph.get(study, fields="name,description,updated_time")).body
    assert (read["name"], read["description"]) == ("Renamed", "New text")
    # extend, then end early: an end_time in the past is clamped to now
    assert (await graph.post(study, {"end_time": str(t0 + 20 * DAY)})).status == 200
    refused(await graph.post(study, {"end_time": str(t0 + 31 * DAY)}), title="Study Too Long", blame="end_time")
    refused(await graph.post(study, {"cells": "[]"}), title="Study Field Can't Be Changed", blame="cells")
    await sandbox.control("POST", "clock", {"advance": 2 * DAY})
    assert (await graph.post(study, {"end_time": str(t0)})).body == {"success": True}
    ended = (await graph.get(study, fields="end_time")).body["end_time"]
    clock_now = (await sandbox.control("GET", "clock"))["now"]
    assert ended == clock_now or abs(_epoch(ended) - await now(sandbox)) <= 2
    await sandbox.control("POST", "clock", {"advance": 60})
    refused(await graph.post(study, {"end_time": str(t0 + 10 * DAY)}), title="Study Already Ended", blame="end_time")
    assert (await graph.post(study, {"name": "Still renamable"})).status == 200
    # the objects are free again: a new study can use them
    second = await create(graph, business, study_form(await now(sandbox), two_cells(a, b), name="Round 2"))
    # DELETE cancels: canceled_time set, idempotent, no more edits, objects free
    assert (await graph.delete(second)).body == {"success": True}
    canceled = (await graph.get(second, fields="canceled_time,name")).body
    assert canceled["canceled_time"].endswith("+0000")
    assert (await graph.delete(second)).body == {"success": True}
    assert (await graph.get(second, fields="canceled_time")).body["canceled_time"] == canceled["canceled_time"]
    refused(await graph.post(second, {"name": "No"}), title="Study Canceled")
    await create(graph, business, study_form(await now(sandbox), two_cells(a, b), name="Round 3"))
    listed = (await graph.get(f"{business}/ad_studies", fields="name,canceled_time")).body["data"]
    assert [s["name"] for s in listed] == ["Round 3", "Round 2", "Still renamable"]


def _epoch(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp())


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def test_ending_a_study_that_has_not_started_needs_delete(graph, sandbox):
    business = await business_of(graph)
    a, b = await new_campaign(graph, "A"), await new_campaign(graph, "B")
    t0 = await now(sandbox)
    study = await create(graph, business, study_form(t0 + 2 * DAY, two_cells(a, b)))
    refused(await graph.post(study, {"end_time": str(t0)}), title="Study End Time Before Start Time", blame="end_time")
    assert (await graph.delete(study)).status == 200


# ---- validation: each rule with its code


async def test_every_rule_is_refused_with_its_code(graph, sandbox):
    business = await business_of(graph)
    a, b, c = await new_campaign(graph, "A"), await new_campaign(graph, "B"), await new_campaign(graph, "C")
    d, e, f = await new_campaign(graph, "D"), await new_campaign(graph, "E"), await new_campaign(graph, "F")
    adset_a = await new_adset(graph, a)
    deleted = await new_campaign(graph, "Gone")
    assert (await graph.delete(deleted)).status == 200
    jpy_campaign = await new_campaign(graph, "Tokyo", account=JPY)
    assert jpy_campaign
    t0 = await now(sandbox)
    ok = two_cells(a, b)
    cases = [
        ("name missing", study_form(t0, ok, name=None), None, "name"),
        ("type unknown", study_form(t0, ok, type="SPLIT"), None, "type"),
        ("start missing", study_form(t0, ok, start_time=None), None, "start_time"),
        ("end missing", study_form(t0, ok, end_time=None), None, "end_time"),
        ("end unparseable", study_form(t0, ok, end_time="next week"), None, "end_time"),
        (
            "end before start",
            study_form(t0 + DAY, ok, end_time=t0 + 3600),
            "Study End Time Before Start Time",
            "end_time",
        ),
        ("end in the past", study_form(t0 - 5 * DAY, ok, end_time=t0 - DAY), "Study End Time In The Past", "end_time"),
        ("over 30 days", study_form(t0, ok, end_time=t0 + 31 * DAY), "Study Too Long", "end_time"),
        ("cells missing", study_form(t0, ok, cells=None), None, "cells"),
        ("cells not a list", study_form(t0, ok, cells={"name": "x"}), None, "cells"),
        ("one cell", study_form(t0, [{"name": "Solo", "campaigns": [a]}]), "Wrong Number Of Cells", "cells"),
        (
            "six cells",
            study_form(t0, [{"campaigns": [x]} for x in (a, b, c, d, e, f)]),
            "Wrong Number Of Cells",
            "cells",
        ),
        (
            "both kinds",
            study_form(t0, [{"campaigns": [a], "adsets": [adset_a]}, {"campaigns": [b]}]),
            "Campaigns Or Ad Sets",
            "cells",
        ),
        ("no objects", study_form(t0, [{"name": "Empty"}, {"campaigns": [b]}]), "Cell Has No Ad Objects", "cells"),
        ("empty list", study_form(t0, [{"campaigns": []}, {"campaigns": [b]}]), "Cell Has No Ad Objects", "cells"),
        ("unknown id", study_form(t0, two_cells(a, "120210000009999999")), "Ad Object Not Found", "cells"),
        ("deleted campaign", study_form(t0, two_cells(a, deleted)), "Ad Object Not Found", "cells"),
        ("not a campaign", study_form(t0, two_cells(a, adset_a)), "Ad Object Not Found", "cells"),
        ("same object twice", study_form(t0, two_cells(a, a)), "Ad Object In Several Cells", "cells"),
        (
            "ad set of a campaign in another cell",
            study_form(t0, [{"campaigns": [a]}, {"adsets": [adset_a]}]),
            "Ad Object In Several Cells",
            "cells",
        ),
        ("percentage zero", study_form(t0, two_cells(a, b, pcts=(0, 100))), "Invalid Treatment Percentage", "cells"),
        (
            "percentage not an integer",
            study_form(t0, two_cells(a, b, pcts=(50.5, 49.5))),
            "Invalid Treatment Percentage",
            "cells",
        ),
        (
            "percentage over 100",
            study_form(t0, two_cells(a, b, pcts=(150, -50))),
            "Invalid Treatment Percentage",
            "cells",
        ),
        (
            "sum not 100",
            study_form(t0, two_cells(a, b, pcts=(50, 40))),
            "Treatment Percentages Must Add Up To 100",
            "cells",
        ),
        (
            "some percentages missing",
            study_form(t0, [{"campaigns": [a], "treatment_percentage": 50}, {"campaigns": [b]}]),
            "Treatment Percentage Missing",
            "cells",
        ),
        ("confidence out of range", study_form(t0, ok, confidence_level=120), None, "confidence_level"),
        ("objective type unknown", study_form(t0, ok, objectives=[{"name": "x", "type": "MONEY"}]), None, "objectives"),
    ]
    before = await count_studies(sandbox)
    for label, form, title, blame in cases:
        answer = await graph.post(f"{business}/ad_studies", form)
        error = refused(answer, 100, title, blame)
        assert error["message"], label
    assert await count_studies(sandbox) == before
    # an object of an ad account of another business
    other_campaign = await _other_business_campaign(sandbox, graph)
    refused(
        await graph.post(f"{business}/ad_studies", study_form(t0, two_cells(a, other_campaign))),
        100,
        "Ad Object Of Another Business",
        "cells",
    )
    assert await count_studies(sandbox) == before


async def _other_business_campaign(sandbox, graph) -> str:
    """A campaign in an ad account of another business that the demo user also manages (set up in-process:
    no Graph route creates a second business)."""
    store = sandbox.server.sandbox.store
    now_ = sandbox.server.sandbox.now()
    user_id = store.kv_get("demo_user_id")
    business = store.new_id("business")
    store.insert("business", business, {"id": business, "name": "Other Business", "_user_ids": [user_id]}, now=now_)
    digits = store.new_id("adaccount")
    act = f"act_{digits}"
    store.insert(
        "adaccount",
        act,
        {
            "id": act,
            "account_id": digits,
            "name": "Other (USD)",
            "currency": "USD",
            "timezone_name": "America/Los_Angeles",
            "min_daily_budget": 100,
            "account_status": 1,
            "_business_id": business,
            "_user_tasks": {user_id: ["DRAFT", "ANALYZE", "ADVERTISE", "MANAGE"]},
        },
        parent_id=business,
        now=now_,
    )
    user = store.get(user_id)
    store.update(user_id, {**user, "_account_ids": [*user["_account_ids"], act]}, now=now_)
    return await new_campaign(graph, "Other business campaign", account=act)


async def test_permissions(graph, sandbox):
    business = await business_of(graph)
    a, b = await new_campaign(graph, "A"), await new_campaign(graph, "B")
    t0 = await now(sandbox)
    form = study_form(t0, two_cells(a, b))
    read_only = Graph(sandbox.url, await sandbox.token(scopes=["ads_read", "business_management"]))
    refused(await read_only.post(f"{business}/ad_studies", form), 200)
    # Alex Analyst: a member of the business with only ANALYZE on the accounts
    users = (await graph.get(f"{business}/business_users", fields="name,role")).body["data"]
    assert {u["name"] for u in users} >= {"Alex Analyst"}
    store = sandbox.server.sandbox.store
    alex = next(u["id"] for u in store.list("user") if u["name"] == "Alex Analyst")
    analyst = Graph(sandbox.url, await sandbox.token(user=alex))
    error = refused(await analyst.post(f"{business}/ad_studies", form), 200)
    assert "ADVERTISE" in error["message"]
    # someone outside the business doesn't see it
    now_ = sandbox.server.sandbox.now()
    stranger = store.new_id("user")
    store.insert("user", stranger, {"id": stranger, "name": "Sam Stranger", "_account_ids": []}, now=now_)
    outsider = Graph(sandbox.url, await sandbox.token(user=stranger))
    error = refused(await outsider.post(f"{business}/ad_studies", form), 100)
    assert error["error_subcode"] == 33
    study = await create(graph, business, form)
    assert (await outsider.get(study)).error["error_subcode"] == 33
    assert (await outsider.delete(study)).error["error_subcode"] == 33
    assert (await analyst.get(study, fields="name")).body["name"] == "Creative test"  # members can read
    refused(await read_only.delete(study), 200)


async def test_an_object_is_in_one_split_test_at_a_time(graph, sandbox):
    business = await business_of(graph)
    a, b, c = await new_campaign(graph, "A"), await new_campaign(graph, "B"), await new_campaign(graph, "C")
    adset_c = await new_adset(graph, c)
    t0 = await now(sandbox)
    first = await create(graph, business, study_form(t0, two_cells(a, b), end_time=t0 + 10 * DAY))
    before = await count_studies(sandbox)
    # overlapping in time: the same campaign, or an ad set of... and the reverse: a campaign whose ad set is in one
    error = refused(
        await graph.post(f"{business}/ad_studies", study_form(t0 + 5 * DAY, two_cells(a, c), end_time=t0 + 12 * DAY)),
        100,
        "Ad Object Already In A Split Test",
        "cells",
    )
    assert first in error["error_user_msg"] and a in error["error_user_msg"]
    adset_a = await new_adset(graph, a)
    refused(
        await graph.post(f"{business}/ad_studies", study_form(t0, two_cells(adset_a, adset_c, "adsets"))),
        100,
        "Ad Object Already In A Split Test",
        "cells",
    )
    assert await count_studies(sandbox) == before
    # after the first one ends there is room; a non-split study type doesn't block anything either
    later = await create(graph, business, study_form(t0 + 10 * DAY, two_cells(a, c), end_time=t0 + 15 * DAY))
    lift = await create(
        graph, business, study_form(t0, [{"campaigns": [b], "treatment_percentage": 90}], type="LIFT", name="Lift")
    )
    assert later and lift
    # extending the first study into the later one is refused
    refused(
        await graph.post(first, {"end_time": str(t0 + 11 * DAY)}), 100, "Ad Object Already In A Split Test", "cells"
    )
    # a cell's ad set whose campaign is in a running study
    d = await new_campaign(graph, "D")
    refused(
        await graph.post(f"{business}/ad_studies", study_form(t0, [{"adsets": [adset_a]}, {"campaigns": [d]}])),
        100,
        "Ad Object Already In A Split Test",
        "cells",
    )
    # canceling frees the objects at once (until the later study starts)
    assert (await graph.delete(first)).status == 200
    assert await create(
        graph, business, study_form(t0 + 60, [{"adsets": [adset_a]}, {"campaigns": [d]}], end_time=t0 + 10 * DAY)
    )


# ---- delivery


async def test_a_50_50_study_halves_each_cells_reach(graph, sandbox):
    """Two equal audience-limited campaigns in a 50/50 split test each reach about half the people a third,
    identical campaign outside the test reaches alone."""
    business = await business_of(graph)
    creative = await new_creative(graph)
    cells = [await launch(graph, f"Cell {x}", creative, targeting=NARROW) for x in "AB"]
    alone = await launch(graph, "Alone", creative, targeting=NARROW)
    t0 = await now(sandbox)
    study = await create(
        graph, business, study_form(t0, two_cells(cells[0]["campaign"], cells[1]["campaign"]), end_time=t0 + 21 * DAY)
    )
    assert study
    await sandbox.control("POST", "clock", {"advance": 7 * DAY})
    solo = await insights(graph, alone["campaign"])
    split = [await insights(graph, c["campaign"]) for c in cells]
    for row in split:
        ratio = int(row["reach"]) / int(solo["reach"])
        assert 0.4 < ratio < 0.6, (row, solo)
        assert int(row["impressions"]) < 0.65 * int(solo["impressions"])
        assert int(row["spend"].replace(".", "")) <= 7 * 10000 + 10000  # within the ad set budgets
    # the two cells together reach about what one campaign reaches alone (disjoint halves of one audience)
    together = sum(int(r["reach"]) for r in split)
    assert 0.8 < together / int(solo["reach"]) < 1.2
    # ending the test early: the next days deliver to the whole audience again
    assert (await graph.post(study, {"end_time": str(await now(sandbox))})).status == 200
    before = int((await insights(graph, cells[0]["campaign"], "impressions"))["impressions"])
    before_solo = int((await insights(graph, alone["campaign"], "impressions"))["impressions"])
    await sandbox.control("POST", "clock", {"advance": 3 * DAY})
    gained = int((await insights(graph, cells[0]["campaign"], "impressions"))["impressions"]) - before
    gained_solo = int((await insights(graph, alone["campaign"], "impressions"))["impressions"]) - before_solo
    assert 0.75 < gained / gained_solo < 1.3


async def test_a_true_effect_shows_in_the_better_cells_ctr(graph, sandbox):
    business = await business_of(graph)
    creative = await new_creative(graph)  # the same creative: the same base CTR in both cells
    better, worse = await launch(graph, "Better", creative), await launch(graph, "Worse", creative)
    await sandbox.control("POST", "delivery", {"true_effects": {better["ad"]: {"ctr": 2.0}}})
    t0 = await now(sandbox)
    await create(
        graph, business, study_form(t0, two_cells(better["adset"], worse["adset"], "adsets"), end_time=t0 + 14 * DAY)
    )
    await sandbox.control("POST", "clock", {"advance": 7 * DAY + 600})
    good, bad = await insights(graph, better["campaign"]), await insights(graph, worse["campaign"])
    assert int(good["clicks"]) > 100 and int(bad["clicks"]) > 50
    assert float(good["ctr"]) > 1.5 * float(bad["ctr"]), (good, bad)
    # the split doesn't change how much each spends (budget-limited, broad audience)
    assert 0.8 < float(good["spend"]) / float(bad["spend"]) < 1.25
    by_ad = (
        await graph.get(
            f"{USD}/insights",
            level="ad",
            fields="ad_id,ctr",
            date_preset="maximum",
            filtering=json.dumps([{"field": "ad.id", "operator": "IN", "value": [better["ad"], worse["ad"]]}]),
        )
    ).body["data"]
    ctr = {r["ad_id"]: float(r["ctr"]) for r in by_ad}
    assert ctr[better["ad"]] > 1.5 * ctr[worse["ad"]]


async def test_scenario_study_seeds_a_split_test(graph, sandbox):
    spec = {
        "ads": 2,
        "adsets": 2,
        "days": 7,
        "daily_budget": 10000,
        "audience_size": 5000,
        "true_effects": {"0": {"ctr": 2.5}},
    }
    with_study = (await sandbox.control("POST", "delivery", {"scenario": {**spec, "study": True, "name": "Split"}}))[
        "scenario"
    ]
    without = (await sandbox.control("POST", "delivery", {"scenario": {**spec, "name": "Plain"}}))["scenario"]
    assert "study_id" not in without
    study = with_study["study_id"]
    business = await business_of(graph)
    read = (await graph.get(study, fields="name,type,business,cells{treatment_percentage,adsets}")).body
    assert read["type"] == "SPLIT_TEST" and read["business"]["id"] == business
    assert [c["adsets"]["data"][0]["id"] for c in read["cells"]] == with_study["adset_ids"]
    assert [c["treatment_percentage"] for c in read["cells"]] == [50, 50]
    assert [c["id"] for c in read["cells"]] == with_study["cell_ids"]
    for split_adset, plain_adset in zip(with_study["adset_ids"], without["adset_ids"]):
        split_reach = int((await insights(graph, split_adset, "reach"))["reach"])
        plain_reach = int((await insights(graph, plain_adset, "reach"))["reach"])
        assert 0.4 < split_reach / plain_reach < 0.6
    ctr = [float((await insights(graph, s, "ctr"))["ctr"]) for s in with_study["adset_ids"]]
    assert ctr[0] > 1.5 * ctr[1]
    # the study's ad sets can't join another split test while it runs
    t0 = await now(sandbox)
    refused(
        await graph.post(
            f"{business}/ad_studies",
            study_form(t0, two_cells(*without["adset_ids"][:1], with_study["adset_ids"][0], "adsets")),
        ),
        100,
        "Ad Object Already In A Split Test",
        "cells",
    )
    for bad in (
        {"adsets": 1, "study": True},
        {"adsets": 6, "ads": 6, "study": True},
        {"adsets": 2, "ads": 2, "study": {"treatment_percentages": [70, 20]}},
        {"adsets": 2, "ads": 2, "study": "yes"},
    ):
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sandbox.url}/__sandbox/delivery", json={"scenario": bad}) as resp:
                assert resp.status == 400, bad


async def test_official_sdk_drives_a_split_test(graph, sandbox, demo_token):
    """Business.create_ad_study, AdStudy.api_get/get_cells/api_update/api_delete, AdAccount.get_ad_studies: only the
    SDK's GRAPH base changed."""
    import asyncio

    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.adstudy import AdStudy
    from facebook_business.adobjects.business import Business
    from facebook_business.api import FacebookAdsApi

    business = await business_of(graph)
    a, b = await new_campaign(graph, "SDK A"), await new_campaign(graph, "SDK B")
    t0 = await now(sandbox)

    def drive() -> dict:
        api = FacebookAdsApi.init(
            demo_token["app_id"], demo_token["app_secret"], demo_token["access_token"], api_version="v26.0"
        )
        api._session.GRAPH = sandbox.url
        created = Business(business, api=api).create_ad_study(
            params={
                "name": "SDK study",
                "type": AdStudy.Type.split_test,
                "start_time": t0,
                "end_time": t0 + 7 * DAY,
                "cells": [
                    {"name": "A", "treatment_percentage": 50, "campaigns": [a]},
                    {"name": "B", "treatment_percentage": 50, "campaigns": [b]},
                ],
                "confidence_level": 95.0,
            }
        )
        study = AdStudy(created["id"], api=api)
        read = dict(study.api_get(fields=[AdStudy.Field.name, AdStudy.Field.type, AdStudy.Field.end_time]))
        cells = [dict(c) for c in study.get_cells(fields=["name", "treatment_percentage"])]
        listed = [s["id"] for s in AdAccount(USD, api=api).get_ad_studies(fields=["name"])]
        study.api_update(params={"end_time": t0})
        study.api_delete()
        after = study.api_get(fields=[AdStudy.Field.end_time, AdStudy.Field.canceled_time])
        return {"id": created["id"], "read": read, "cells": cells, "listed": listed, "after": dict(after)}

    out = await asyncio.to_thread(drive)
    assert out["read"]["name"] == "SDK study" and out["read"]["type"] == "SPLIT_TEST"
    assert [(c["name"], c["treatment_percentage"]) for c in out["cells"]] == [("A", 50), ("B", 50)]
    assert out["id"] in out["listed"]
    assert out["after"]["canceled_time"] and _epoch(out["after"]["end_time"]) < _epoch(out["read"]["end_time"])

"""The sandbox walks Meta's spec (the facebook_business SDK): every field of every served node type answers, every
GET edge answers (data or an empty paged list, never 2500), nested field expansion and edge modifiers work, Page
picture answers. Over real HTTP against a real sandbox; the field and edge lists come from the SDK."""

from __future__ import annotations

import json

import aiohttp

from fb_sandbox import spec
from fb_sandbox.fields import iter_fields, parse_fields, parse_tree
from test_fb_sandbox_helpers import USD, Graph, graph  # noqa: F401 - graph is a fixture

CHUNK = 30
DAY = 86400


def chunks(names, size=CHUNK):
    names = sorted(names)
    return [names[i : i + size] for i in range(0, len(names), size)]


async def first_of(sandbox, kind: str) -> dict | None:
    rows = (await sandbox.control("GET", f"objects?type={kind}"))["data"]
    return rows[0] if rows else None


async def now_of(sandbox) -> float:
    clock = await sandbox.control("GET", "clock")
    return float(clock["epoch"])


async def demo_objects(graph: Graph, sandbox) -> dict[str, str]:
    """One readable object of every served type: the seeded ones, plus the few the demo does not seed."""
    out = {}
    pixel = (await graph.get(f"{USD}/adspixels")).body["data"][0]["id"]
    made = {
        "customaudience": await graph.post(
            f"{USD}/customaudiences",
            {"name": "Spec walk", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"},
        ),
        "customconversion": await graph.post(
            f"{USD}/customconversions",
            {
                "name": "Spec walk",
                "pixel_id": pixel,
                "custom_event_type": "PURCHASE",
                "rule": json.dumps({"and": [{"event": {"eq": "PageView"}}]}),
            },
        ),
        "video": await graph.post(f"{USD}/advideos", {"file_url": f"{sandbox.url}/__sandbox/files/sample.mp4"}),
        "report_run": await graph.post(f"{USD}/insights", {"fields": "spend", "date_preset": "last_7d"}),
    }
    for kind, answer in made.items():
        assert answer.status == 200, (kind, answer.body)
        out[kind] = answer.body.get("id") or answer.body.get("report_run_id")
    campaigns = [c["id"] for c in (await graph.get(f"{USD}/campaigns", limit="2")).body["data"]]
    business = (await graph.get("me/businesses")).body["data"][0]["id"]
    start = int(await now_of(sandbox)) + DAY
    cells = [{"name": f"Cell {i}", "treatment_percentage": 50, "campaigns": [c]} for i, c in enumerate(campaigns)]
    study = await graph.post(
        f"{business}/ad_studies",
        {
            "name": "Spec walk",
            "type": "SPLIT_TEST",
            "start_time": str(start),
            "end_time": str(start + 14 * DAY),
            "cells": json.dumps(cells),
        },
    )
    assert study.status == 200, study.body
    out["adstudy"] = study.body["id"]
    out["adstudycell"] = (await graph.get(f"{study.body['id']}/cells")).body["data"][0]["id"]
    for kind in spec.SERVED:
        if kind not in out and kind != "adimage":
            row = await first_of(sandbox, kind)
            assert row is not None, f"the demo seeds no {kind}"
            out[kind] = row["id"]
    return out


def nonexisting(answer) -> bool:
    return isinstance(answer.body, dict) and "nonexisting field" in answer.body.get("error", {}).get("message", "")


async def test_every_sdk_field_of_every_served_node_answers(graph, sandbox):
    objects = await demo_objects(graph, sandbox)
    asked = 0
    for kind, obj_id in sorted(objects.items()):
        cls = spec.SERVED[kind]
        for names in chunks(spec.fields(cls)):
            answer = await graph.get(obj_id, fields=",".join(names))
            assert answer.status == 200, (kind, names, answer.body)
            assert answer.body["id"] == obj_id
            assert set(answer.body) <= set(names) | {"id"}, (kind, set(answer.body) - set(names))
            asked += len(names)
        refused = await graph.get(obj_id, fields="id,surely_not_a_field")
        assert nonexisting(refused) and f"({cls})" in refused.error["message"], refused.body
    # images have no node of their own here: their fields answer on the account's adimages edge
    for names in chunks(spec.fields("AdImage")):
        answer = await graph.get(f"{USD}/adimages", fields=",".join(names))
        assert answer.status == 200, (names, answer.body)
    assert asked >= sum(len(spec.fields(spec.SERVED[k])) for k in objects)


def edge_ok(answer) -> bool:
    """An edge answered: a page (or an object) of data, or a documented parameter error — never an unknown path."""
    if answer.status == 200:
        return isinstance(answer.body, dict)
    err = answer.body.get("error", {}) if isinstance(answer.body, dict) else {}
    return err.get("code") in (100, 200) and err.get("error_subcode") != 33 and "nonexisting" not in err["message"]


async def test_every_sdk_get_edge_of_every_served_node_answers(graph, sandbox):
    objects = await demo_objects(graph, sandbox)
    objects["adaccount"] = USD
    walked, failures, empty = 0, [], 0
    for kind, obj_id in sorted(objects.items()):
        for edge in sorted(spec.get_edges(spec.SERVED[kind])):
            answer = await graph.get(f"{obj_id}/{edge}", **({"redirect": "0"} if edge == "picture" else {}))
            walked += 1
            if not edge_ok(answer):
                failures.append((kind, edge, answer.status, answer.body))
            elif answer.status == 200 and answer.body.get("data") == []:
                empty += 1
    print(
        "FAILURES",
        [
            (k, e, s, b.get("error", {}).get("message", "")[:90] if isinstance(b, dict) else b)
            for k, e, s, b in failures
        ],
    )
    assert not failures
    assert walked == sum(len(spec.get_edges(spec.SERVED[k])) for k in objects) and empty < walked
    unknown = await graph.get(f"{USD}/surely_not_an_edge")
    assert unknown.status == 400 and unknown.error["code"] == 2500, unknown.body


async def test_the_edges_the_issue_names_answer_with_their_data(graph, sandbox):
    business = (await graph.get("me/businesses")).body["data"][0]["id"]
    me = (await graph.get("me")).body["id"]
    mine = (await graph.get("me/business_users", fields="id,name,role,business")).body
    assert [u["business"]["id"] for u in mine["data"]] == [business] and mine["data"][0]["name"] == "Demo User"
    pages = (await graph.get("me/accounts", fields="id")).body["data"]
    owned = (await graph.get(f"{business}/owned_pages", fields="id,name")).body
    assert {p["id"] for p in owned["data"]} == {p["id"] for p in pages} and pages
    pixels = (await graph.get(f"{USD}/adspixels", fields="id")).body["data"]
    biz_pixels = (await graph.get(f"{business}/adspixels", fields="id,name")).body["data"]
    assert {p["id"] for p in pixels} <= {p["id"] for p in biz_pixels} and pixels
    campaign = (await graph.get(f"{USD}/campaigns", limit="1")).body["data"][0]["id"]
    for path in (f"{campaign}/budget_schedules", f"{USD}/recommendations", f"{USD}/impacting_ad_studies"):
        answer = await graph.get(path)
        assert answer.status == 200 and isinstance(answer.body["data"], list), (path, answer.body)
    # activities: an ad set budget change is recorded and the account's activities edge lists it
    adset = (await graph.get(f"{USD}/adsets", fields="id,daily_budget", limit="100")).body["data"]
    with_budget = [a for a in adset if a.get("daily_budget")]
    assert with_budget, adset
    target = with_budget[0]
    changed = await graph.post(target["id"], {"daily_budget": str(int(target["daily_budget"]) + 100)})
    assert changed.status == 200, changed.body
    activities = (await graph.get(f"{USD}/activities", fields="event_type,object_id,actor_id")).body["data"]
    assert any(a["object_id"] == target["id"] and a["actor_id"] == me for a in activities), activities


async def test_page_picture_is_a_url_object(graph, sandbox):
    page = (await graph.get("me/accounts", fields="id")).body["data"][0]["id"]
    node = (await graph.get(page, fields="id,name,picture")).body
    pic = node["picture"]["data"]
    assert set(pic) == {"url", "is_silhouette", "height", "width"} and pic["is_silhouette"] is False
    edge = (await graph.get(f"{page}/picture", redirect="0", type="large")).body["data"]
    assert edge["width"] == edge["height"] == 200
    async with aiohttp.ClientSession() as session:
        async with session.get(edge["url"]) as resp:
            data = await resp.read()
    assert resp.status == 200 and data.startswith(b"\x89PNG")
    # without redirect=0 the edge redirects to the image, as Meta's does
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{sandbox.url}/v26.0/{page}/picture", params=graph.auth(), allow_redirects=False
        ) as resp:
            location = resp.headers.get("Location", "")
    assert resp.status == 302 and "/__sandbox/media/picture/" in location


async def test_nested_expansion_and_edge_modifiers(graph, sandbox):
    ad = (await graph.get(f"{USD}/ads", fields="id,creative", limit="1")).body["data"][0]
    nested = (await graph.get(ad["id"], fields="creative{object_story_spec,name}")).body
    creative = (await graph.get(ad["creative"]["id"], fields="object_story_spec,name")).body
    assert nested["creative"] == creative and "object_story_spec" in creative
    deeper = (await graph.get(ad["id"], fields="creative{object_story_spec{page_id}}")).body["creative"]
    assert deeper["object_story_spec"] == {"page_id": creative["object_story_spec"]["page_id"]}

    campaigns = (await graph.get(f"{USD}/campaigns", fields="id", limit="100")).body["data"]
    counts = {c["id"]: len((await graph.get(f"{c['id']}/adsets", limit="100")).body["data"]) for c in campaigns}
    camp = max(counts, key=counts.get)
    assert counts[camp] >= 2
    limited = (await graph.get(camp, fields="name,adsets.limit(1){name,status}")).body
    assert len(limited["adsets"]["data"]) == 1 and set(limited["adsets"]["data"][0]) == {"id", "name", "status"}
    assert "next" in limited["adsets"]["paging"] and "limit=1" in limited["adsets"]["paging"]["next"]
    following = (await graph.get(camp, fields="adsets.limit(100){name}")).body["adsets"]["data"]
    assert len(following) == counts[camp]

    rows = (
        await graph.get(f"{USD}/insights", level="campaign", fields="campaign_id,spend", date_preset="last_7d")
    ).body["data"]
    camp = max(rows, key=lambda r: float(r["spend"]))["campaign_id"]
    spend = (await graph.get(f"{camp}/insights", fields="spend", date_preset="last_7d")).body["data"]
    expanded = (await graph.get(camp, fields="insights.date_preset(last_7d){spend}")).body["insights"]["data"]
    assert [r["spend"] for r in expanded] == [r["spend"] for r in spend] and spend
    by_age = (await graph.get(camp, fields='insights.date_preset(last_7d).breakdowns(["age"]){spend}')).body
    assert len(by_age["insights"]["data"]) > 1 and all("age" in r for r in by_age["insights"]["data"])

    tree = (await graph.get(USD, fields="campaigns.limit(100){name,adsets{name}}")).body["campaigns"]["data"]
    assert {c["id"] for c in tree} == set(counts)
    assert {c["id"]: len(c.get("adsets", {}).get("data", [])) for c in tree} == {
        k: min(v, 25) for k, v in counts.items()
    }

    listed = (await graph.get(f"{USD}/campaigns", fields="name,adsets.limit(1){name}", limit="2")).body["data"]
    assert all(len(c["adsets"]["data"]) <= 1 for c in listed) and any(c["adsets"]["data"] for c in listed)


async def test_malformed_fields_answer_metas_syntax_error(graph, sandbox):
    for text, position in (("name,adsets{name", 16), ("name,,id", 5), ("adsets{id}{name}", 10), ("adsets.limit(5", 14)):
        answer = await graph.get(USD, fields=text)
        assert answer.status == 400 and answer.error["code"] == 2500, (text, answer.body)
        assert (
            answer.error["message"].startswith("Syntax error")
            and f"at character {position}: {text}" in answer.error["message"]
        ), (text, answer.error["message"])
    nested_unknown = await graph.get(USD, fields="campaigns{surely_not_a_field}")
    assert (
        nested_unknown.status == 400
        and nested_unknown.error["code"] == 100
        and "(Campaign)" in nested_unknown.error["message"]
    )


def test_field_syntax_parse_tree():
    fields = parse_fields(
        'name.as(title),insights.date_preset(last_7d).time_range({"since":"a","until":"b"})'
        "{spend,actions},adsets.limit(5){name,ads{id}},name"
    )
    assert fields == ["name", "insights", "adsets"]
    assert fields[0].alias == "title" and fields[0].key == "title" and fields[0].modifiers == {}
    assert fields[1].modifiers == {"date_preset": "last_7d", "time_range": '{"since":"a","until":"b"}'}
    assert fields[1].children == ["spend", "actions"]
    assert fields[2].modifiers == {"limit": "5"} and fields[2].children[1].children == ["id"]
    assert parse_fields(fields[2].source())[0].source() == "adsets.limit(5){name,ads{id}}"
    nested_alias = parse_tree("campaigns{name.as(title)},id")
    assert [f.alias for f in iter_fields(nested_alias)] == [None, "title", None]


def test_edge_names_come_from_the_sdk_requests():
    """The edge is the request's endpoint, not the method's name (Business.get_ads_pixels -> adspixels)."""
    assert {"adspixels", "owned_pages", "business_users"} <= spec.get_edges("Business")
    assert "ads_pixels" not in spec.get_edges("Business")
    assert {"activities", "impacting_ad_studies", "recommendations"} <= spec.get_edges("AdAccount")
    assert "budget_schedules" in spec.get_edges("Campaign") and "business_users" in spec.get_edges("User")
    assert spec.edges("Business")["adspixels"].target == "AdsPixel"
    assert "picture" in spec.get_edges("Page") and "picture" not in spec.fields("Page")

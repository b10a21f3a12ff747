"""Sandbox Graph batch: items through the same handlers, names, depends_on, {result=} references, limits."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from test_fb_sandbox_helpers import USD, campaign_form, graph, make_old_app  # noqa: F401


def create_item(campaign_name: str, **extra) -> dict:
    item = {"method": "POST", "relative_url": f"{USD}/campaigns", "body": urlencode(campaign_form(name=campaign_name))}
    return {**item, **extra}


async def run(graph, items, **params):
    return await graph.post("", {"batch": json.dumps(items), **params})


@pytest.mark.sends_forbidden  # one item reads ?ids= (an old app's multi-ID read)
async def test_batch_with_references(sandbox, graph):
    await make_old_app(sandbox)
    items = [
        create_item("Batch A", name="a", omit_response_on_success=False),
        {"method": "GET", "relative_url": "{result=a:$.id}?fields=id,name", "depends_on": "a"},
        {"method": "GET", "relative_url": f"{USD}/campaigns?fields=id&limit=2", "name": "listing"},
        {"method": "GET", "relative_url": "?ids={result=listing:$.data.*.id}&fields=name"},
        {"method": "POST", "relative_url": "{result=listing:$.data[0].id}", "body": "name=Renamed+in+batch"},
        {"method": "GET", "relative_url": "v26.0/me"},
    ]
    answer = await run(graph, items)
    assert answer.status == 200 and len(answer.body) == 6
    first, read, listing, multi, rename, me = answer.body
    created_id = json.loads(first["body"])["id"]
    assert json.loads(read["body"]) == {"id": created_id, "name": "Batch A"}
    assert listing is None  # named, referenced, omit_response_on_success defaults to true
    assert len(json.loads(multi["body"])) == 2
    assert json.loads(rename["body"]) == {"success": True}
    assert json.loads(me["body"])["name"] == "Demo User"
    header_names = {h["name"] for h in read["headers"]}
    assert {"X-App-Usage", "X-Ad-Account-Usage", "X-Business-Use-Case-Usage"} <= header_names
    no_headers = await run(graph, [{"method": "GET", "relative_url": "me"}], include_headers="false")
    assert "headers" not in no_headers.body[0]


async def test_batch_item_errors_and_failed_parents(graph):
    items = [
        create_item("bad", name="bad", body=urlencode(campaign_form(daily_budget="1"))),
        {"method": "GET", "relative_url": "{result=bad:$.id}", "depends_on": "bad"},
        {"method": "GET", "relative_url": "act_1/campaigns"},
        {"method": "PATCH", "relative_url": "me"},
        "not an object",
    ]
    answer = await run(graph, items)
    bad, dependent, foreign, patch, junk = answer.body
    assert bad["code"] == 400 and json.loads(bad["body"])["error"]["error_subcode"] == 1885272
    assert dependent is None
    assert json.loads(foreign["body"])["error"]["error_subcode"] == 33
    assert patch["code"] == 400 and junk["code"] == 400


async def test_batch_limits_and_bad_input(graph):
    too_many = await run(graph, [{"method": "GET", "relative_url": "me"}] * 51)
    assert too_many.error["code"] == 100
    assert too_many.error["message"] == "Too many requests in batch message. Maximum batch size is 50"
    fifty = await run(graph, [{"method": "GET", "relative_url": "me"}] * 50)
    assert fifty.status == 200 and all(item["code"] == 200 for item in fifty.body)
    for junk in ("not json", json.dumps({"a": 1}), "[]"):
        assert (await graph.post("", {"batch": junk})).error["code"] == 100


async def test_batch_items_count_against_limits_and_stats(sandbox, graph):
    await sandbox.control("POST", "stats/reset")
    await sandbox.control("POST", "config", {"access_tier": "development_access"})
    cids = [c["id"] for c in (await graph.get(f"{USD}/campaigns", limit="3")).body["data"]]
    items = [{"method": "POST", "relative_url": cids[i % 3], "body": "name=x"} for i in range(25)]
    answer = await run(graph, items)  # 1 read + 25 writes x 3 = 76 > 60
    codes = [json.loads(item["body"]).get("error", {}).get("code") for item in answer.body]
    assert codes[:19] == [None] * 19 and codes[-1] == 17
    stats = await sandbox.stats()
    assert stats["requests"] == 2 and stats["by_route"]["POST /"] == 1


async def test_batch_null_fault(sandbox, graph):
    await sandbox.fault(kind="batch_null", path=r"^\d+$", method="GET", count=2)
    cids = [c["id"] for c in (await graph.get(f"{USD}/campaigns", limit="4")).body["data"]]
    answer = await run(graph, [{"method": "GET", "relative_url": f"{cid}?fields=name"} for cid in cids])
    assert answer.body[0] is None and answer.body[1] is None
    assert all(item["code"] == 200 for item in answer.body[2:])
    assert (await sandbox.control("GET", "faults"))["data"] == []

"""Sandbox: tokens, appsecret_proof, versions, paths, /me and ad accounts, multi-id reads."""

from __future__ import annotations

import json

import aiohttp
import pytest

from test_fb_sandbox_helpers import JPY, USD, Graph, graph, make_old_app  # noqa: F401


async def test_token_endpoint_shape(sandbox):
    token = await sandbox.token(expires_in=3600)
    assert set(token) == {"access_token", "app_id", "app_secret", "user_id", "expires_at"}
    assert token["access_token"].startswith("EAA") and token["user_id"].isdigit()
    never = await sandbox.token(expires_in=0)
    assert never["expires_at"] == 0


async def test_unknown_missing_and_bearer_token(sandbox, demo_token, graph):
    bad = await graph.call("GET", "me", {"access_token": "nonsense"})
    assert bad.status == 400 and bad.error["code"] == 190 and bad.error["type"] == "OAuthException"
    assert bad.error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert bad.error["fbtrace_id"]
    missing = await graph.call("GET", "me", auth=False)
    assert missing.error["code"] == 104
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{sandbox.url}/v26.0/me",
            headers={"Authorization": f"Bearer {demo_token['access_token']}"},
            params={"appsecret_proof": graph.auth()["appsecret_proof"]},
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["name"] == "Demo User"


async def test_expired_token_after_clock_advance(sandbox):
    token = await sandbox.token(expires_in=60)
    g = Graph(sandbox.url, token)
    assert (await g.get("me")).status == 200
    await sandbox.control("POST", "clock", {"advance": 61})
    expired = await g.get("me")
    assert expired.error["code"] == 190 and expired.error["error_subcode"] == 463
    assert "Session has expired" in expired.error["message"]


async def test_appsecret_proof_wrong_and_missing(sandbox, demo_token, graph):
    wrong = await graph.call("GET", "me", {"appsecret_proof": "00" * 32})
    assert wrong.error["code"] == 100 and wrong.error["type"] == "GraphMethodException"
    assert wrong.error["message"] == "Invalid appsecret_proof provided in the API argument"
    missing = await graph.call("GET", "me", {"access_token": demo_token["access_token"]}, auth=False)
    assert missing.error["message"] == "API calls from the server require an appsecret_proof argument"
    await sandbox.control("POST", "config", {"require_appsecret_proof": False})
    relaxed = await graph.call("GET", "me", {"access_token": demo_token["access_token"]}, auth=False)
    assert relaxed.status == 200


async def test_versions_and_unknown_path(graph):
    from fb_sandbox.versions import NEWEST

    old = await graph.call("GET", "me", version="v19.0")
    assert old.error["code"] == 2635 and NEWEST in old.error["message"]
    # The test clock starts 2026-03-02: v22.0 ended 2026-02-19, v23.0 is still served (tests/test_legacy_features.py
    # moves the clock over every version's end).
    assert (await graph.call("GET", "me", version="v22.0")).error["code"] == 2635
    assert (await graph.call("GET", "me", version="v23.0")).status == 200
    unknown = await graph.get("no_such_thing/edge")
    assert unknown.error["code"] == 2500 and "Unknown path components" in unknown.error["message"]


async def test_me_and_edges(graph):
    me = await graph.get("me")
    assert me.body == {"name": "Demo User", "id": me.body["id"]}
    accounts = await graph.get("me/adaccounts", fields="name,currency,account_status,min_daily_budget")
    by_id = {a["id"]: a for a in accounts.body["data"]}
    assert by_id[USD]["currency"] == "USD" and by_id[JPY]["currency"] == "JPY"
    assert by_id[USD]["account_status"] == 1 and by_id[USD]["name"] == "Demo Store (USD)"
    businesses = await graph.get("me/businesses")
    assert businesses.body["data"][0]["name"] == "Demo Business"
    pages = await graph.get("me/accounts", fields="name,access_token,instagram_business_account")
    page = pages.body["data"][0]
    assert page["name"] == "Demo Page" and page["access_token"].startswith("EAA")
    ig_id = page["instagram_business_account"]["id"]
    node = await graph.get(page["id"], fields="name,instagram_business_account")
    assert node.body["instagram_business_account"] == {"id": ig_id}
    ig = await graph.get(f"{USD}/instagram_accounts", fields="id,username")
    assert ig.body["data"] == [{"id": ig_id, "username": "demo.store"}]


async def test_ad_account_read_update_and_users(graph):
    fields = (
        "id,account_id,name,currency,account_status,disable_reason,amount_spent,balance,spend_cap,"
        "min_daily_budget,timezone_name,timezone_offset_hours_utc,business,owner,created_time"
    )
    acc = (await graph.get(USD, fields=fields)).body
    assert acc["id"] == USD and acc["account_id"] == USD[4:]
    for money in ("amount_spent", "balance", "spend_cap"):
        assert isinstance(acc[money], str) and acc[money].isdigit()
    assert acc["spend_cap"] == "0" and acc["timezone_name"] == "America/Los_Angeles"
    assert acc["created_time"].endswith("+0000") and acc["business"]["name"] == "Demo Business"
    assert (await graph.post(USD, {"spend_cap": "50000000", "name": "Renamed"})).body == {"success": True}
    again = (await graph.get(USD, fields="spend_cap,name")).body
    assert again["spend_cap"] == "50000000" and again["name"] == "Renamed"
    bad = await graph.post(USD, {"spend_cap": "-5"})
    assert bad.error["code"] == 100 and bad.blame() == ["spend_cap"]
    users = (await graph.get(f"{USD}/users")).body["data"]
    assert {"id", "name", "tasks"} <= set(users[0]) and "MANAGE" in users[0]["tasks"]
    unknown_field = await graph.get(USD, fields="nonsense_field")
    assert (
        unknown_field.error["message"]
        == "(#100) Tried accessing nonexisting field (nonsense_field) on node type (AdAccount)"
    )


async def test_unknown_and_foreign_objects(graph):
    missing = await graph.get("act_999999")
    assert missing.status == 400 and missing.error["code"] == 100 and missing.error["error_subcode"] == 33
    assert missing.error["type"] == "GraphMethodException"
    assert "Object with ID 'act_999999' does not exist" in missing.error["message"]
    assert (await graph.get("123456789")).error["error_subcode"] == 33


@pytest.mark.sends_forbidden
async def test_multi_id_read(sandbox, graph):
    await make_old_app(sandbox)
    campaigns = (await graph.get(f"{USD}/campaigns", limit="2")).body["data"]
    ids = [c["id"] for c in campaigns]
    answer = await graph.get("", ids=",".join(ids + [USD]), fields="name")
    assert set(answer.body) == set(ids + [USD])
    assert all("name" in node for node in answer.body.values())
    missing = await graph.get("", ids=f"{ids[0]},424242")
    assert missing.error["code"] == 803


async def test_json_body_and_bad_bodies_never_500(sandbox, graph):
    good = await graph.call(
        "POST",
        f"{USD}/campaigns",
        json_body={
            "name": "JSON body",
            "objective": "OUTCOME_TRAFFIC",
            "special_ad_categories": ["NONE"],
            "status": "PAUSED",
            "daily_budget": 1000,
            **graph.auth(),
        },
    )
    assert good.status == 200 and good.body["id"].isdigit()
    async with aiohttp.ClientSession() as session:
        for body, ctype in [
            (b"{not json", "application/json"),
            (b"[1,2]", "application/json"),
            (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
            (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
            (b"\x00\x01", "text/plain"),
        ]:
            async with session.post(
                f"{sandbox.url}/v26.0/{USD}/campaigns", data=body, headers={"Content-Type": ctype}, params=graph.auth()
            ) as resp:
                assert resp.status < 500, (body, await resp.text())
                assert "error" in json.loads(await resp.text())

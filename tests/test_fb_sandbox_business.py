"""Sandbox businesses and access: business users, ad account creation rules, assigned users, pages and Instagram;
random input on the new routes never gets a 5xx."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_fb_sandbox_helpers import JPY, USD, Graph, graph, make_old_app  # noqa: F401 - graph is a fixture

NEW_ACCOUNT = {
    "name": "Brand New (EUR)",
    "currency": "EUR",
    "timezone_id": "7",
    "end_advertiser": "NONE",
    "media_agency": "NONE",
    "partner": "NONE",
}


async def business_id(graph: Graph) -> str:
    answer = await graph.get("me/businesses", fields="id,name")
    assert answer.status == 200 and len(answer.body["data"]) == 1
    return answer.body["data"][0]["id"]


async def business_users(graph: Graph, biz: str) -> dict[str, dict]:
    answer = await graph.get(f"{biz}/business_users", fields="id,name,email,role")
    return {u["name"]: u for u in answer.body["data"]}


async def test_business_node_and_business_users(graph):
    biz = await business_id(graph)
    node = await graph.get(biz, fields="id,name,verification_status,created_time")
    assert node.body["name"] == "Demo Business" and node.body["verification_status"] == "verified"
    assert node.body["created_time"].endswith("+0000")
    users = await business_users(graph, biz)
    assert set(users) == {"Demo User", "Alex Analyst", "Casey Creative"}
    assert users["Demo User"]["role"] == "ADMIN" and users["Alex Analyst"]["role"] == "EMPLOYEE"
    assert users["Casey Creative"]["email"] == "casey@example.com"
    one = await graph.get(users["Casey Creative"]["id"], fields="id,name,role,business")
    assert one.body["business"] == {"id": biz, "name": "Demo Business"}
    owned = await graph.get(f"{biz}/owned_ad_accounts", fields="id,name,currency")
    assert [a["id"] for a in owned.body["data"]] == [USD, JPY]
    assert (await graph.get(f"{biz}/business_users", fields="nope")).error["code"] == 100


async def test_create_ad_account_and_it_is_listed(graph):
    biz = await business_id(graph)
    answer = await graph.post(f"{biz}/adaccount", NEW_ACCOUNT)
    assert answer.status == 200, answer.body
    new = answer.body
    assert set(new) == {"id", "account_id", "business_id", "end_advertiser_id", "media_agency_id", "partner_id"}
    assert new["id"] == f"act_{new['account_id']}" and new["business_id"] == biz
    account = await graph.get(
        new["id"], fields="id,name,currency,timezone_id,timezone_name,min_daily_budget,account_status,business"
    )
    assert account.body["currency"] == "EUR" and account.body["timezone_name"] == "America/New_York"
    assert account.body["min_daily_budget"] == 100 and account.body["account_status"] == 1
    assert account.body["business"]["id"] == biz
    listed = await graph.get("me/adaccounts", fields="id")
    assert new["id"] in [a["id"] for a in listed.body["data"]]
    owned = await graph.get(f"{biz}/owned_ad_accounts")
    assert new["id"] in [a["id"] for a in owned.body["data"]]

    pages = await graph.get("me/accounts", fields="id")
    page_id = pages.body["data"][0]["id"]
    answer = await graph.post(
        f"{biz}/adaccount",
        {
            **NEW_ACCOUNT,
            "name": "Tokyo 2",
            "currency": "JPY",
            "timezone_id": "77",
            "end_advertiser": page_id,
            "media_agency": biz,
            "partner": "UNFOUND",
        },
    )
    assert answer.body["end_advertiser_id"] == page_id and answer.body["media_agency_id"] == biz
    jpy = await graph.get(answer.body["id"], fields="currency,min_daily_budget,timezone_name")
    assert jpy.body["min_daily_budget"] == 100 and jpy.body["timezone_name"] == "Asia/Tokyo"


async def test_create_ad_account_rules(graph):
    biz = await business_id(graph)
    cases = [
        ({"name": None}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"currency": None}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"timezone_id": None}, "timezone_id"),
        ({"timezone_id": "America/New_York"}, "timezone_id"),
        ({"timezone_id": "100000"}, "timezone_id"),
        ({"end_advertiser": None}, "end_advertiser"),
        ({"end_advertiser": "123"}, "end_advertiser"),
        ({"media_agency": "nobody"}, "media_agency"),
        ({"partner": None}, "partner"),
    ]
    for change, field in cases:
        form = {k: v for k, v in {**NEW_ACCOUNT, **change}.items() if v is not None}
        answer = await graph.post(f"{biz}/adaccount", form)
        assert answer.status == 400 and answer.error["code"] == 100, (change, answer.body)
        assert answer.blame() == [field], (change, answer.body)
    assert (await graph.post("120210000000000001/adaccount", NEW_ACCOUNT)).error["code"] == 100


async def test_create_ad_account_needs_admin_and_business_management(sandbox, graph):
    biz = await business_id(graph)
    users = (await sandbox.control("GET", "objects?type=user"))["data"]
    alex = next(u["id"] for u in users if u["name"] == "Alex Analyst")
    alex_graph = Graph(sandbox.url, await sandbox.token(user=alex))
    assert (await alex_graph.post(f"{biz}/adaccount", NEW_ACCOUNT)).error["code"] == 200
    narrow = Graph(sandbox.url, await sandbox.token(scopes=["ads_management", "ads_read"]))
    assert (await narrow.post(f"{biz}/adaccount", NEW_ACCOUNT)).error["code"] == 200


async def test_assigned_users_add_list_remove(sandbox, graph):
    biz = await business_id(graph)
    people = await business_users(graph, biz)
    casey = people["Casey Creative"]["id"]
    listed = await graph.get(f"{USD}/assigned_users", business=biz, fields="id,name,tasks")
    assert {u["name"]: u["tasks"] for u in listed.body["data"]} == {
        "Demo User": ["DRAFT", "ANALYZE", "ADVERTISE", "MANAGE"],
        "Alex Analyst": ["ANALYZE"],
    }

    answer = await graph.post(f"{USD}/assigned_users", {"user": casey, "tasks": json.dumps(["ADVERTISE"])})
    assert answer.body == {"success": True}
    listed = await graph.get(f"{USD}/assigned_users", business=biz, fields="id,name,tasks")
    tasks = {u["id"]: u["tasks"] for u in listed.body["data"]}
    assert tasks[casey] == ["DRAFT", "ANALYZE", "ADVERTISE"]
    users = await graph.get(f"{USD}/users")
    assert "Casey Creative" in [u["name"] for u in users.body["data"]]
    casey_user = next(
        u["id"] for u in (await sandbox.control("GET", "objects?type=user"))["data"] if u["name"] == "Casey Creative"
    )
    casey_graph = Graph(sandbox.url, await sandbox.token(user=casey_user))
    assert [a["id"] for a in (await casey_graph.get("me/adaccounts")).body["data"]] == [USD]

    answer = await graph.call("DELETE", f"{USD}/assigned_users", {"user": casey})
    assert answer.body == {"success": True}
    listed = await graph.get(f"{USD}/assigned_users", business=biz)
    assert casey not in [u["id"] for u in listed.body["data"]]
    assert (await casey_graph.get("me/adaccounts")).body["data"] == []
    users = await graph.get(f"{USD}/users")
    assert "Casey Creative" not in [u["name"] for u in users.body["data"]]


async def test_assigned_users_bad_input(sandbox, graph):
    biz = await business_id(graph)
    casey = (await business_users(graph, biz))["Casey Creative"]["id"]
    assert (await graph.get(f"{USD}/assigned_users")).blame() == ["business"]
    assert (await graph.get(f"{USD}/assigned_users", business="123")).error["code"] == 100
    bad = [
        ({"user": "300000000000001", "tasks": '["ANALYZE"]'}, "user"),  # a person, not a business user
        ({"user": "999", "tasks": '["ANALYZE"]'}, "user"),
        ({"tasks": '["ANALYZE"]'}, "user"),
        ({"user": casey}, "tasks"),
        ({"user": casey, "tasks": '["OWN_EVERYTHING"]'}, "tasks"),
    ]
    for form, field in bad:
        answer = await graph.post(f"{USD}/assigned_users", form)
        assert answer.error["code"] == 100 and answer.blame() == [field], (form, answer.body)
    answer = await graph.call("DELETE", f"{USD}/assigned_users", {"user": casey})
    assert answer.error["code"] == 100
    answer = await graph.call("DELETE", f"{USD}/assigned_users", {"user": "999"})
    assert answer.error["code"] == 100
    users = (await sandbox.control("GET", "objects?type=user"))["data"]
    alex = next(u["id"] for u in users if u["name"] == "Alex Analyst")
    alex_graph = Graph(sandbox.url, await sandbox.token(user=alex))
    assert (await alex_graph.post(f"{USD}/assigned_users", {"user": casey, "tasks": '["ANALYZE"]'})).error[
        "code"
    ] == 200


async def test_pages_and_instagram(sandbox, graph):
    pages = await graph.get("me/accounts", fields="id,name,category,tasks,access_token,instagram_business_account")
    assert len(pages.body["data"]) == 1
    page = pages.body["data"][0]
    assert {"ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MANAGE", "MODERATE"} <= set(page["tasks"])
    assert page["access_token"].startswith("EAAP") and page["category"]
    ig = await graph.get(page["instagram_business_account"]["id"], fields="id,username,name,profile_picture_url")
    assert ig.body["username"] == "demo.store" and ig.body["profile_picture_url"].startswith("https://")
    linked = await graph.get(f"{USD}/instagram_accounts", fields="id,username")
    assert linked.body["data"] == [{"id": ig.body["id"], "username": "demo.store"}]

    added = await sandbox.control("POST", "seed", {"pages": 1})
    assert len(added["ids"]) == 1 and added["instagram_ids"] == []
    added_ig = await sandbox.control("POST", "seed", {"pages": 1, "instagram": True})
    pages = await graph.get("me/accounts", fields="id,instagram_business_account")
    by_id = {p["id"]: p for p in pages.body["data"]}
    assert len(by_id) == 3 and "instagram_business_account" not in by_id[added["ids"][0]]
    assert by_id[added_ig["ids"][0]]["instagram_business_account"] == {"id": added_ig["instagram_ids"][0]}
    async with aiohttp.ClientSession() as session:
        for bad in ({"pages": -1}, {"pages": "x"}, {"pages": 1, "instagram": "yes"}):
            async with session.post(f"{sandbox.url}/__sandbox/seed", json=bad) as resp:
                assert resp.status == 400, bad


async def test_app_control_endpoint(sandbox, demo_token):
    app = await sandbox.control("GET", "app")
    assert app["app_id"] == demo_token["app_id"] and app["app_secret"] == demo_token["app_secret"]
    assert app["other_app_id"] and app["other_app_id"] != app["app_id"]


async def test_file_database_from_before_gains_other_app(tmp_path):
    """A database created before the other app existed (no tokens.meta column, no other app) still works."""
    import sqlite3

    from fb_sandbox.server import SandboxServer

    db = str(tmp_path / "old.db")
    async with SandboxServer(db_path=db) as server:
        pass
    con = sqlite3.connect(db)
    con.execute("DELETE FROM kv WHERE key IN ('other_app_id', 'other_app_secret')")
    con.execute("CREATE TABLE t2 AS SELECT token, user_id, kind, scopes, issued_at, expires_at FROM tokens")
    con.execute("DROP TABLE tokens")
    con.execute("ALTER TABLE t2 RENAME TO tokens")
    con.commit()
    con.close()
    async with SandboxServer(db_path=db) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/__sandbox/app") as resp:
                assert (await resp.json())["other_app_id"]
            async with session.post(f"{server.url}/__sandbox/tokens") as resp:
                token = await resp.json()
        assert (await Graph(server.url, token).get("me/permissions")).status == 200


PARAM_NAMES = [
    "client_id",
    "redirect_uri",
    "client_secret",
    "code",
    "grant_type",
    "fb_exchange_token",
    "input_token",
    "state",
    "scope",
    "decision",
    "declined",
    "granted",
    "form",
    "response_type",
    "user",
    "tasks",
    "business",
    "name",
    "currency",
    "timezone_id",
    "end_advertiser",
    "media_agency",
    "partner",
    "fields",
    "permission",
    "limit",
    "after",
]
values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "NONE",
            "USD",
            "7",
            "-1",
            "99999999999999999999",
            '["MANAGE"]',
            "[]",
            "{}",
            "null",
            "fb_exchange_token",
            "client_credentials",
            "allow",
            "deny",
            "AQ" + "a" * 50,
            "http://127.0.0.1/cb",
            "300000000000001",
            "800000000000001",
            "ÿ\u2603",
            "1|2",
        ]
    ),
)
params = st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=8), values, max_size=6)
segments = st.sampled_from(
    [
        "me",
        "permissions",
        "debug_token",
        "oauth",
        "access_token",
        "dialog",
        "confirm",
        "200000000000001",
        "business_users",
        "owned_ad_accounts",
        "adaccount",
        USD,
        "assigned_users",
        "instagram_accounts",
        "accounts",
        "businesses",
        "800000000000001",
        "17841400000000001",
        "ads_management",
        "",
    ]
)
paths = st.lists(segments, min_size=1, max_size=3).map("/".join)


@pytest.mark.sends_forbidden  # random parameters may carry legacy ones
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=paths,
    query=params,
    form=params,
    version=st.sampled_from(["v26.0/", ""]),
    app_token=st.booleans(),
)
async def test_new_routes_never_5xx(sandbox, demo_token, method, path, query, form, version, app_token):
    g = Graph(sandbox.url, demo_token)
    auth = {"access_token": f"{demo_token['app_id']}|{demo_token['app_secret']}"} if app_token else g.auth()
    url = f"{sandbox.url}/{version}{path}"
    kwargs: dict = {"params": {**auth, **query}, "allow_redirects": False}
    if method != "GET":
        kwargs["data"] = urlencode(form).encode()
        kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, **kwargs) as resp:
            text = await resp.text()
            assert resp.status < 500, (method, url, kwargs, text)
            if resp.content_type == "application/json":
                json.loads(text)


@pytest.mark.sends_forbidden  # an old app's multi-ID read
async def test_multi_id_read_of_a_single_numeric_id(sandbox, demo_token):
    await make_old_app(sandbox)
    import hashlib
    import hmac

    import aiohttp

    proof = hmac.new(demo_token["app_secret"].encode(), demo_token["access_token"].encode(), hashlib.sha256).hexdigest()
    auth = {"access_token": demo_token["access_token"], "appsecret_proof": proof}
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{sandbox.url}/v26.0/me/accounts", params={**auth, "fields": "instagram_business_account"}
        ) as resp:
            ig = (await resp.json())["data"][0]["instagram_business_account"]["id"]
        async with session.get(f"{sandbox.url}/v26.0/", params={**auth, "ids": ig, "fields": "id,username"}) as resp:
            body = await resp.json()
    assert resp.status == 200, body
    assert body[ig]["id"] == ig and body[ig]["username"]

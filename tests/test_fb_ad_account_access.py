"""Pages, Instagram accounts, businesses, new ad accounts and account access, end to end through dispatch over HTTP."""

from __future__ import annotations

import json

import pytest


async def _page_tokens(graph) -> list[str]:
    pages = await graph.get_all("me/accounts", {"fields": "id,access_token"})
    return [p["access_token"] for p in pages if p.get("access_token")]


async def _posts(sandbox) -> dict:
    stats = await sandbox.stats()
    return {route: n for route, n in stats["by_route"].items() if route.startswith(("POST", "DELETE"))}


async def _business(graph) -> dict:
    return (await graph.get_all("me/businesses", {"fields": "id,name"}))[0]


async def _business_user(graph, name: str) -> str:
    business = await _business(graph)
    people = await graph.get_all(f"{business['id']}/business_users", {"fields": "id,name"})
    return next(p["id"] for p in people if p["name"] == name)


# ---- pages -------------------------------------------------------------------------------------------------------


async def test_list_pages_shows_tasks_and_never_a_page_token(facebook, graph):
    tokens = await _page_tokens(graph)
    assert tokens, "the sandbox should hand the page token to a direct /me/accounts read"
    result = await facebook.call("list_pages")
    assert result.ok, result.text
    page = result.data["pages"][0]
    assert "ADVERTISE" in page["tasks"] and "ADVERTISE" in result.text
    assert page["instagram_account_id"] and page["instagram_account_id"] in result.text
    dumped = json.dumps(result.data)
    for token in tokens:
        assert token not in result.text and token not in dumped
    assert "access_token" not in dumped and "access_token" not in result.text


async def test_the_only_page_is_selected_automatically(facebook):
    workspace = facebook.workspace.id
    assert await facebook.store.get_selection(workspace, "page") is None
    first = await facebook.call("list_pages")
    assert first.ok, first.text
    page = first.data["pages"][0]
    assert len(first.data["pages"]) == 1
    assert first.data["auto_selected"] == page["id"] and "automatically" in first.text
    assert await facebook.store.get_selection(workspace, "page") == page["id"]
    assert await facebook.store.get_selection(workspace, "instagram_account") == page["instagram_account_id"]
    again = await facebook.call("list_pages")
    assert again.data["auto_selected"] is None and "automatically" not in again.text
    line = next(line for line in again.text.splitlines() if page["id"] in line)
    assert line.strip().startswith("*")


async def test_select_page_refuses_a_page_that_is_not_yours(facebook, sandbox):
    mine = (await facebook.call("list_pages")).data["pages"][0]
    await facebook.store.set_selection(facebook.workspace.id, "page", None)
    refused = await facebook.call("select_page", {"page_id": "424242424242"})
    assert refused.text.startswith("ERROR validation:") and "424242424242" in refused.text
    assert mine["id"] in refused.text and "Fix:" in refused.text
    assert await facebook.store.get_selection(facebook.workspace.id, "page") is None
    malformed = await facebook.call("select_page", {"page_id": "my page"})
    assert malformed.text.startswith("ERROR validation:") and "page_id" in malformed.text
    assert not await _posts(sandbox)


async def test_a_second_page_means_no_automatic_choice(facebook, sandbox):
    seeded = await sandbox.control("POST", "seed", {"pages": 1, "instagram": False})
    plain_page = seeded["ids"][0]
    listed = await facebook.call("list_pages")
    assert listed.ok and len(listed.data["pages"]) == 2
    assert listed.data["auto_selected"] is None and "select_page" in listed.text
    assert await facebook.store.get_selection(facebook.workspace.id, "page") is None
    chosen = await facebook.call("select_page", {"page_id": plain_page})
    assert chosen.ok, chosen.text
    assert "no Instagram account" in chosen.text
    assert await facebook.store.get_selection(facebook.workspace.id, "page") == plain_page
    assert await facebook.store.get_selection(facebook.workspace.id, "instagram_account") is None
    demo = next(p for p in listed.data["pages"] if p["id"] != plain_page)
    switched = await facebook.call("select_page", {"page_id": demo["id"]})
    assert switched.ok and demo["instagram_account_id"] in switched.text
    assert (
        await facebook.store.get_selection(facebook.workspace.id, "instagram_account") == demo["instagram_account_id"]
    )


# ---- Instagram ---------------------------------------------------------------------------------------------------


async def test_instagram_accounts_from_pages_and_the_ad_account(facebook, sandbox, demo_accounts):
    seeded = await sandbox.control("POST", "seed", {"pages": 1, "instagram": True})
    new_ig = seeded["instagram_ids"][0]
    usd = await facebook.call("list_instagram_accounts")
    assert usd.ok, usd.text
    by_id = {i["id"]: i for i in usd.data["instagram_accounts"]}
    assert new_ig in by_id and len(by_id) == len(usd.data["instagram_accounts"])  # one entry per account
    demo = next(i for i in usd.data["instagram_accounts"] if i["id"] != new_ig)
    assert {s["type"] for s in demo["sources"]} == {"page", "ad_account"}
    assert demo["username"] and f"@{demo['username']}" in usd.text
    jpy = await facebook.call("list_instagram_accounts", {"ad_account_id": demo_accounts["JPY"]})
    jpy_sources = {i["id"]: {s["type"] for s in i["sources"]} for i in jpy.data["instagram_accounts"]}
    assert jpy_sources[new_ig] == {"page"}  # the seeded account is linked to the USD account only
    assert "ad_account" in jpy_sources[demo["id"]]

    chosen = await facebook.call("select_instagram_account", {"instagram_account_id": new_ig})
    assert chosen.ok, chosen.text
    assert await facebook.store.get_selection(facebook.workspace.id, "instagram_account") == new_ig
    marked = await facebook.call("list_instagram_accounts")
    assert next(line for line in marked.text.splitlines() if new_ig in line).strip().startswith("*")
    refused = await facebook.call("select_instagram_account", {"instagram_account_id": "17841499999999999"})
    assert refused.text.startswith("ERROR validation:") and new_ig in refused.text
    assert await facebook.store.get_selection(facebook.workspace.id, "instagram_account") == new_ig


# ---- businesses and new ad accounts ------------------------------------------------------------------------------


async def test_list_businesses(facebook, graph):
    business = await _business(graph)
    result = await facebook.call("list_businesses")
    assert result.ok, result.text
    assert business["id"] in result.text and business["name"] in result.text
    assert result.data["businesses"][0]["verification_status"]


async def test_create_ad_account_then_listed_and_not_selected(facebook, graph, demo_accounts):
    business = await _business(graph)
    created = await facebook.call(
        "create_ad_account", {"name": "Acme Germany", "currency": "eur", "timezone": "Europe/Berlin"}
    )
    assert created.ok, created.text
    account_id = created.data["id"]
    assert account_id.startswith("act_") and created.data["business_id"] == business["id"]
    assert created.data["timezone_id"] == 47 and "Europe/Berlin" in created.text
    assert f"select_ad_account {account_id}" in created.text
    assert await facebook.store.get_selection(facebook.workspace.id, "ad_account") == demo_accounts["USD"]
    listed = await facebook.call("list_ad_accounts")
    assert account_id in {a["id"] for a in listed.data["accounts"]}
    stored = await graph.get(account_id, {"fields": "id,name,currency,timezone_id,end_advertiser"})
    assert stored["currency"] == "EUR" and int(stored["timezone_id"]) == 47 and stored["name"] == "Acme Germany"
    assert stored["end_advertiser"] == "NONE"  # no page selected
    entry = (await facebook.store.list_audit(facebook.workspace.id, op="create_ad_account"))[0]
    assert entry.outcome == "ok" and account_id in entry.object_ids


async def test_create_ad_account_takes_a_numeric_timezone_and_the_selected_page(facebook, graph):
    page = (await facebook.call("list_pages")).data["pages"][0]  # the only page: selected automatically
    created = await facebook.call("create_ad_account", {"name": "Tokyo Two", "currency": "JPY", "timezone": 77})
    assert created.ok, created.text
    assert created.data["timezone_id"] == 77 and created.data["timezone_name"] == "Asia/Tokyo"
    stored = await graph.get(created.data["id"], {"fields": "end_advertiser,timezone_id"})
    assert stored["end_advertiser"] == page["id"] and int(stored["timezone_id"]) == 77


@pytest.mark.parametrize(
    "args,fragment",
    [
        ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"timezone": "Europe/Berlinn"}, "Did you mean Europe/Berlin"),
        ({"timezone": "9999"}, "not a Facebook timezone_id"),
        ({"currency": "XYZ"}, "not a currency Facebook accepts"),
        ({"currency": "EURO"}, "closest: EUR"),
        ({"end_advertiser": "my shop"}, "end_advertiser"),
        ({"business_id": "424242424242"}, "not one this person belongs to"),
        ({"name": ""}, "name"),
    ],
)
async def test_create_ad_account_refuses_bad_input_before_sending(facebook, sandbox, args, fragment):
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call(
        "create_ad_account", {"name": "Acme", "currency": "EUR", "timezone": "Europe/Berlin", **args}
    )
    assert result.text.startswith("ERROR validation:") and fragment in result.text and "Fix:" in result.text, (
        result.text
    )
    assert not await _posts(sandbox)


async def test_create_ad_account_dry_run_sends_nothing(facebook, sandbox, graph):
    business = await _business(graph)
    before = len((await facebook.call("list_ad_accounts")).data["accounts"])
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call(
        "create_ad_account", {"name": "Dry Run Co", "currency": "GBP", "timezone": "Europe/London", "dry_run": True}
    )
    assert result.ok and result.text.startswith("DRY RUN create_ad_account"), result.text
    request = result.data["requests"][0]
    assert request["method"] == "POST" and request["path"] == f"{business['id']}/adaccount"
    assert isinstance(request["params"]["timezone_id"], int) and "Europe/London" in result.text
    assert request["params"]["currency"] == "GBP" and request["params"]["end_advertiser"] == "NONE"
    assert not await _posts(sandbox)
    assert len((await facebook.call("list_ad_accounts")).data["accounts"]) == before
    assert not await facebook.store.list_audit(facebook.workspace.id, op="create_ad_account")


async def test_create_ad_account_lost_answer_is_not_sent_twice(facebook, sandbox, graph):
    business = await _business(graph)
    await sandbox.fault(kind="drop", method="POST", path="adaccount$", when="after", count=1)
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call(
        "create_ad_account", {"name": "Lost Answer", "currency": "USD", "timezone": "America/New_York"}
    )
    assert result.text.startswith("ERROR network:") and "may or may not have been created" in result.text
    assert "list_ad_accounts" in result.text
    stats = await sandbox.stats()
    assert sum(n for route, n in stats["by_route"].items() if route.startswith("POST")) == 1, stats
    owned = await graph.get_all(f"{business['id']}/owned_ad_accounts", {"fields": "id,name"})
    assert [a["name"] for a in owned].count("Lost Answer") == 1


# ---- account access ----------------------------------------------------------------------------------------------


async def test_list_account_users_shows_tasks_plainly(facebook):
    result = await facebook.call("list_account_users")
    assert result.ok, result.text
    assert result.data["users"] and result.data["business"]
    demo_line = next(line for line in result.text.splitlines() if "Demo User" in line)
    alex_line = next(line for line in result.text.splitlines() if "Alex Analyst" in line)
    assert "admin: can manage its settings, payment and people" in demo_line and "MANAGE" in demo_line
    assert "analyst: can see performance and reports [ANALYZE]" in alex_line
    assigned = {u["name"]: u["tasks"] for u in result.data["assigned_users"]}
    assert "MANAGE" in assigned["Demo User"] and assigned["Alex Analyst"] == ["ANALYZE"]
    assert "Assigned through the business" in result.text


async def test_assign_and_remove_a_user_with_audit(facebook, graph, sandbox, demo_accounts):
    casey = await _business_user(graph, "Casey Creative")
    account = demo_accounts["USD"]

    dry = await facebook.call("assign_account_user", {"user_id": casey, "tasks": ["advertise"], "dry_run": True})
    assert dry.ok and dry.data["requests"][0]["params"] == {"user": casey, "tasks": ["ADVERTISE", "ANALYZE", "DRAFT"]}
    assert casey not in {u["id"] for u in (await facebook.call("list_account_users")).data["assigned_users"]}

    granted = await facebook.call("assign_account_user", {"user_id": casey, "tasks": ["advertise"]})
    assert granted.ok, granted.text
    assert "ADVERTISE includes ANALYZE, DRAFT" in granted.text and "advertiser" in granted.text
    users = (await facebook.call("list_account_users")).data["assigned_users"]
    assert next(u for u in users if u["id"] == casey)["tasks"] == ["ADVERTISE", "ANALYZE", "DRAFT"]
    entry = (await facebook.store.list_audit(facebook.workspace.id, op="assign_account_user"))[0]
    assert entry.outcome == "ok" and account in entry.object_ids
    assert entry.changes[0]["before"] == [] and entry.changes[0]["after"] == ["ADVERTISE", "ANALYZE", "DRAFT"]

    same = await facebook.call("assign_account_user", {"user_id": casey, "tasks": ["ADVERTISE"]})
    assert same.ok and "nothing to change" in same.text
    # the same shape as a change (typed results, issue 20): before = tasks, no changes
    assert same.data["before"] == same.data["tasks"] == ["ADVERTISE", "ANALYZE", "DRAFT"] and same.data["changes"] == []

    admin = await facebook.call("assign_account_user", {"user_id": casey, "tasks": ["MANAGE"]})
    assert admin.ok and "full control" in admin.text
    entry = (await facebook.store.list_audit(facebook.workspace.id, op="assign_account_user"))[0]
    assert entry.changes[0]["before"] == ["ADVERTISE", "ANALYZE", "DRAFT"]
    assert entry.changes[0]["after"] == ["MANAGE", "ADVERTISE", "ANALYZE", "DRAFT"]

    await sandbox.control("POST", "stats/reset")
    dry_remove = await facebook.call("remove_account_user", {"user_id": casey, "dry_run": True})
    assert dry_remove.ok and dry_remove.data["requests"][0]["method"] == "DELETE"
    assert not await _posts(sandbox)

    removed = await facebook.call("remove_account_user", {"user_id": casey})
    assert removed.ok, removed.text
    assert casey not in {u["id"] for u in (await facebook.call("list_account_users")).data["assigned_users"]}
    entry = (await facebook.store.list_audit(facebook.workspace.id, op="remove_account_user"))[0]
    assert entry.outcome == "ok" and entry.changes[0]["before"] == ["MANAGE", "ADVERTISE", "ANALYZE", "DRAFT"]
    assert entry.changes[0]["after"] == []

    again = await facebook.call("remove_account_user", {"user_id": casey})
    assert again.text.startswith("ERROR validation:") and "not assigned" in again.text


async def test_assign_refuses_unknown_people_and_tasks_before_sending(facebook, graph, sandbox):
    alex = await _business_user(graph, "Alex Analyst")
    await sandbox.control("POST", "stats/reset")
    stranger = await facebook.call("assign_account_user", {"user_id": "424242424242"})
    assert stranger.text.startswith("ERROR validation:") and alex in stranger.text and "Alex Analyst" in stranger.text
    bad_task = await facebook.call("assign_account_user", {"user_id": alex, "tasks": ["OWNER"]})
    assert bad_task.text.startswith("ERROR validation:") and "tasks" in bad_task.text
    empty = await facebook.call("assign_account_user", {"user_id": alex, "tasks": []})
    assert empty.text.startswith("ERROR validation:")
    assert not await _posts(sandbox)


async def test_the_last_manager_cannot_be_removed(facebook, graph, sandbox):
    me = await _business_user(graph, "Demo User")
    await sandbox.control("POST", "stats/reset")
    refused = await facebook.call("remove_account_user", {"user_id": me})
    assert refused.text.startswith("ERROR validation:") and "only person" in refused.text and "MANAGE" in refused.text
    assert not await _posts(sandbox)

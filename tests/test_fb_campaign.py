"""Campaign ops end to end through dispatch, over HTTP against the sandbox."""

from __future__ import annotations

import json

import pytest


async def _objects(sandbox, **query) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in {"type": "campaign", **query}.items())
    return (await sandbox.control("GET", f"objects?{qs}"))["data"]


async def test_list_campaigns_shows_money_and_status(facebook):
    result = await facebook.call("list_campaigns")
    assert result.ok, result.text
    assert result.data["campaigns"]
    assert "$" in result.text and "/day" in result.text
    statuses = {c["effective_status"] for c in result.data["campaigns"]}
    assert "DELETED" not in statuses and len(statuses) >= 2


async def test_status_filter(facebook):
    result = await facebook.call("list_campaigns", {"status": ["PAUSED"]})
    assert result.ok and result.data["campaigns"]
    assert {c["effective_status"] for c in result.data["campaigns"]} == {"PAUSED"}


async def test_pagination_over_250_campaigns(facebook, sandbox, demo_accounts):
    seeded = await sandbox.control(
        "POST", "seed", {"campaigns": 250, "account_id": demo_accounts["USD"], "name_prefix": "Paged"}
    )
    assert len(seeded["ids"]) == 250
    from admonster_chat import parse_slash, slash_to_call

    # A person follows the command each page ends with, as typed; the LLM's hint names the call instead.
    seen, pages = [], 0
    op, args = "list_campaigns", {"name_contains": "Paged", "limit": 100}
    while True:
        page = await facebook.call(op, args)
        assert page.ok, page.text
        seen += [c["id"] for c in page.data["campaigns"]]
        pages += 1
        if not page.data["next_after"]:
            break
        [more] = [line for line in page.text.splitlines() if line.startswith("More: /")]
        assert "name_contains=Paged" in more and "limit=100" in more and "list_campaigns with" not in page.text
        assert f'call list_campaigns with after="{page.data["next_after"]}"' in page.llm_text
        op, args = slash_to_call(parse_slash(more.removeprefix("More: ").split(" (or ")[0]), facebook.registry)
    assert pages == 3 and sorted(seen) == sorted(seeded["ids"])
    everything = await facebook.call("list_campaigns", {"name_contains": "Paged", "all_pages": True, "limit": 100})
    assert len(everything.data["campaigns"]) == 100
    unlimited = await facebook.call("list_campaigns", {"name_contains": "Paged", "all_pages": True})
    assert len(unlimited.data["campaigns"]) == 250


async def test_create_read_update_archive_delete(facebook, sandbox):
    created = await facebook.call(
        "create_campaign",
        {"name": "Life cycle", "objective": "OUTCOME_LEADS", "daily_budget": 2500, "special_ad_categories": ["NONE"]},
    )
    assert created.ok, created.text
    assert "PAUSED" in created.text and "$25.00/day" in created.text
    cid = created.data["id"]
    got = await facebook.call("get_campaign", {"campaign_id": cid})
    assert got.data["campaign"]["objective"] == "OUTCOME_LEADS" and got.data["campaign"]["daily_budget"] == "2500"
    renamed = await facebook.call("update_campaign", {"campaign_id": cid, "name": "Life cycle 2"})
    assert renamed.ok and "Life cycle → Life cycle 2" in renamed.text.replace("name ", "")
    same = await facebook.call("update_campaign", {"campaign_id": cid, "name": "Life cycle 2"})
    assert same.ok and "nothing to change" in same.text
    archived = await facebook.call("archive_campaign", {"campaign_id": cid})
    assert archived.ok, archived.text
    refused = await facebook.call("update_campaign", {"campaign_id": cid, "daily_budget": 3000})
    assert not refused.ok and "archived" in refused.text
    deleted = await facebook.call("delete_campaign", {"campaign_id": cid})
    assert deleted.ok, deleted.text
    stored = [o for o in await _objects(sandbox) if o["id"] == cid]
    assert stored and stored[0]["status"] == "DELETED"
    listed = await facebook.call("list_campaigns", {"name_contains": "Life cycle"})
    assert cid not in [c["id"] for c in listed.data["campaigns"]]


async def test_create_without_budget_sends_adset_budget_sharing(facebook):
    dry = await facebook.call("create_campaign", {"name": "ABO", "objective": "OUTCOME_TRAFFIC", "dry_run": True})
    assert dry.data["requests"][0]["params"]["is_adset_budget_sharing_enabled"] is False
    created = await facebook.call("create_campaign", {"name": "ABO", "objective": "OUTCOME_TRAFFIC"})
    assert created.ok, created.text
    assert "budget on ad sets" in created.text


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"name": "X", "objective": "OUTCOME_SALES", "daily_budget": 50}, "below the minimum"),
        ({"name": "X", "objective": "OUTCOME_SALES", "daily_budget": 500, "lifetime_budget": 9000}, "not both"),
        ({"name": "X", "objective": "OUTCOME_SALES", "lifetime_budget": 9000}, "needs stop_time"),
        ({"name": "X", "objective": "OUTCOME_SALES", "bid_strategy": "COST_CAP"}, "needs a campaign budget"),
        ({"name": "X", "objective": "CONVERSIONS"}, "objective"),
        ({"name": "", "objective": "OUTCOME_SALES"}, "name"),
        ({"objective": "OUTCOME_SALES"}, "name is required"),
        ({"name": "X", "objective": "OUTCOME_SALES", "daily_budget": -100}, "daily_budget"),
        ({"name": "X", "objective": "OUTCOME_SALES", "special_ad_categories": ["MUSIC"]}, "special_ad_categories"),
        ({"name": "X", "objective": "OUTCOME_SALES", "ad_account_id": "acct-9"}, "not an ad account id"),
    ],
)
async def test_create_refuses_bad_input_before_sending(facebook, sandbox, args, fragment):
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("create_campaign", args)
    assert not result.ok
    assert result.text.startswith("ERROR validation:") and fragment in result.text and "Fix:" in result.text
    stats = await sandbox.stats()
    assert not any(route.startswith("POST") for route in stats["by_route"]), stats


async def test_unknown_campaign_is_not_found(facebook):
    result = await facebook.call("get_campaign", {"campaign_id": "999999999999"})
    assert not result.ok and result.text.startswith("ERROR not_found:")
    bad = await facebook.call("get_campaign", {"campaign_id": "12ab"})
    assert bad.text.startswith("ERROR validation:") and "campaign_id" in bad.text


async def test_duplicate_campaign_is_paused(facebook):
    source = (await facebook.call("list_campaigns", {"status": ["ACTIVE"]})).data["campaigns"][0]
    copied = await facebook.call("duplicate_campaign", {"campaign_id": source["id"]})
    assert copied.ok, copied.text
    new = await facebook.call("get_campaign", {"campaign_id": copied.data["campaign_id"]})
    assert new.data["campaign"]["status"] == "PAUSED"
    assert new.data["campaign"]["name"] == source["name"] + " - Copy"
    active_copy = await facebook.call("duplicate_campaign", {"campaign_id": source["id"], "status_option": "ACTIVE"})
    assert active_copy.held


async def test_bulk_update_of_120_campaigns_uses_batches(facebook, sandbox, demo_accounts):
    ids = (
        await sandbox.control(
            "POST",
            "seed",
            {"campaigns": 120, "account_id": demo_accounts["USD"], "status": "ACTIVE", "name_prefix": "Bulk"},
        )
    )["ids"]
    await facebook.graph.account_info(demo_accounts["USD"])  # cached for the session, as the bot does at start
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("bulk_update_campaigns", {"campaign_ids": ids + ["424242424242"], "status": "PAUSED"})
    assert result.data["results"], result.text
    lines = result.text.splitlines()
    assert sum(1 for line in lines if line.strip().startswith("ok")) == 120
    assert any("424242424242" in line and "not found" in line for line in lines)
    stats = await sandbox.stats()
    assert stats["requests"] <= 4, stats  # one read of the current state + three batches of at most 50
    stored = {o["id"]: o for o in await _objects(sandbox)}
    assert all(stored[i]["status"] == "PAUSED" for i in ids)
    entry = (await facebook.store.list_audit(facebook.workspace.id))[0]
    assert entry.op == "bulk_update_campaigns" and len(entry.changes) == 120


async def test_bulk_reports_per_campaign_failures(facebook, sandbox, demo_accounts):
    ids = (
        await sandbox.control(
            "POST",
            "seed",
            {
                "campaigns": 3,
                "account_id": demo_accounts["USD"],
                "status": "PAUSED",
                "name_prefix": "Mixed",
                "daily_budget": 1000,
            },
        )
    )["ids"]
    await sandbox.fault(
        kind="error",
        code=100,
        error_subcode=1885272,
        method="POST",
        path=f"^{ids[1]}$",
        message="Budget too low",
        error_user_msg="Your budget is too low.",
    )
    result = await facebook.call(
        "bulk_update_campaigns", {"updates": [{"campaign_id": i, "daily_budget": 1200} for i in ids]}
    )
    assert not result.ok
    failed = [r for r in result.data["results"] if not r["ok"]]
    assert [r["campaign_id"] for r in failed] == [ids[1]]
    assert "FAIL" in result.text and ids[1] in result.text


async def test_jpy_money_has_no_minor_unit(facebook, demo_accounts):
    jpy = demo_accounts["JPY"]
    created = await facebook.call(
        "create_campaign",
        {"ad_account_id": jpy, "name": "Tokyo", "objective": "OUTCOME_AWARENESS", "daily_budget": 5000},
    )
    assert created.ok, created.text
    assert "¥5,000/day" in created.text
    listed = await facebook.call("list_campaigns", {"ad_account_id": jpy, "name_contains": "Tokyo"})
    assert "¥5,000/day" in listed.text and "¥50.00" not in listed.text


async def test_lost_create_answer_is_not_duplicated(facebook, sandbox, demo_accounts):
    await sandbox.fault(kind="drop", when="after", method="POST", path=r"^act_\d+/campaigns$", count=1)
    result = await facebook.call(
        "create_campaign", {"name": "Lost answer", "objective": "OUTCOME_TRAFFIC", "daily_budget": 1500}
    )
    assert result.ok, result.text
    assert result.data["recovered"] is True
    made = [o for o in await _objects(sandbox) if o.get("name") == "Lost answer"]
    assert len(made) == 1 and made[0]["id"] == result.data["id"]


async def test_sandbox_fault_gives_one_error_line(facebook, sandbox):
    await sandbox.fault(kind="unavailable", count=10, method="GET", path=r"^act_\d+/campaigns$")
    result = await facebook.call("list_campaigns")
    assert not result.ok
    assert result.text.startswith("ERROR network:") and "\n" not in result.text and "Traceback" not in result.text


async def test_token_expiry_is_an_auth_error(facebook, sandbox):
    await sandbox.fault(kind="token_expired", count=5)
    result = await facebook.call("list_campaigns")
    assert result.text.startswith("ERROR auth:") and "/connect" in result.text
    assert result.data["code"] == 190 and result.data["error_subcode"] == 463


def test_payload_json_encodes_like_the_sdk():
    from fb_campaign import CreateCampaignArgs, create_payload

    data = create_payload(
        CreateCampaignArgs(
            name="A", objective="OUTCOME_SALES", special_ad_categories=["HOUSING"], special_ad_category_country=["us"]
        )
    )
    assert data["special_ad_categories"] == ["HOUSING"] and data["special_ad_category_country"] == ["US"]
    json.dumps(data)


async def test_bulk_update_of_only_unknown_campaigns_is_refused_before_any_write(facebook, sandbox, demo_accounts):
    # Campaigns of no account this person sees (another workspace's, deleted ones): nothing to send, nothing audited.
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call(
        "bulk_update_campaigns", {"campaign_ids": ["424242424242", "434343434343"], "status": "PAUSED"}
    )
    assert (
        not result.ok
        and result.text.startswith("ERROR validation: No campaign to update in ")
        and "\n" not in result.text
    )
    assert "424242424242 not found in this ad account" in result.text and "Fix: /list_campaigns" in result.text
    assert "Fix: list_campaigns" in result.llm_text
    assert await facebook.store.list_audit(facebook.workspace.id) == []
    assert not [r for r in (await sandbox.stats())["by_route"] if not r.startswith("GET")]

"""Ad account ops end to end through dispatch, over HTTP against the sandbox."""

from __future__ import annotations

import json
from datetime import timedelta

from fb_utils import format_money
from testkit import sandbox_clock


async def test_list_ad_accounts_marks_the_selected(facebook, demo_accounts):
    result = await facebook.call("list_ad_accounts")
    assert result.ok, result.text
    ids = {a["id"] for a in result.data["accounts"]}
    assert set(demo_accounts.values()) <= ids
    selected_line = next(line for line in result.text.splitlines() if demo_accounts["USD"] in line)
    assert selected_line.strip().startswith("*") and "USD" in selected_line


async def test_get_ad_account_formats_money(facebook, demo_accounts):
    usd = await facebook.call("get_ad_account")
    assert usd.ok and usd.data["account"]["id"] == demo_accounts["USD"]
    assert "minimum daily budget $" in usd.text
    jpy = await facebook.call("get_ad_account", {"ad_account_id": demo_accounts["JPY"]})
    assert "¥" in jpy.text and "minimum daily budget ¥" in jpy.text


async def test_account_overview_is_the_status(facebook):
    result = await facebook.call("account_overview")
    assert result.ok, result.text
    assert "delivering or in process" in result.text and "Needs attention:" in result.text
    assert result.data["active_campaigns"]
    assert all(c["effective_status"] == "ACTIVE" for c in result.data["active_campaigns"])


async def test_update_spend_cap_confirm_and_undo(facebook, demo_accounts):
    account = demo_accounts["USD"]
    spent = int((await facebook.call("get_ad_account")).data["account"]["amount_spent"])
    cap = (spent // 100 + 1000) * 100  # $1,000 over what the account has spent, in cents
    set_cap = await facebook.call("update_spend_cap", {"spend_cap": cap})
    assert set_cap.ok, set_cap.text
    assert f"${cap // 100:,}.00" in set_cap.text
    refused = await facebook.call("update_spend_cap", {"spend_cap": max(spent - 100, 1)})
    assert refused.text.startswith("ERROR validation:") and "already spent" in refused.text
    raise_cap = await facebook.call("update_spend_cap", {"spend_cap": cap * 5})
    assert not raise_cap.ok and raise_cap.held  # +400 %: over the default 50 % guardrail
    confirmed = await facebook.call("confirm", {"confirm": raise_cap.data["confirmation_id"]})
    assert confirmed.ok, confirmed.text
    got = await facebook.call("get_ad_account", {"ad_account_id": account})
    assert got.data["account"]["spend_cap"] == str(cap * 5)
    undo = await facebook.call("undo", {"audit_id": confirmed.data["audit_id"]})
    assert undo.ok, undo.text
    back = await facebook.call("get_ad_account", {"ad_account_id": account})
    assert back.data["account"]["spend_cap"] == str(cap)


async def test_an_unchanged_spend_cap_answers_like_a_change(facebook, demo_accounts):
    """Typed results (issue 20): "nothing to change" answers the op's one shape, with no changes."""
    from fi_facebook import REGISTRY

    await facebook.store.set_setting(facebook.workspace.id, "guardrails", {"confirm_policy": "never"})
    spent = int((await facebook.call("get_ad_account")).data["account"]["amount_spent"])
    changed = await facebook.call("update_spend_cap", {"spend_cap": spent + 30000})
    same = await facebook.call("update_spend_cap", {"spend_cap": spent + 30000})
    assert changed.ok and same.ok and "nothing to change" in same.text, same.text
    assert len(changed.data["changes"]) == 1 and changed.data["spend_cap"] == spent + 30000
    assert same.data == {"ad_account_id": demo_accounts["USD"], "spend_cap": spent + 30000, "changes": []}
    spec = REGISTRY.require("update_spend_cap")
    assert REGISTRY.result_problems(spec, changed.data) == [] and REGISTRY.result_problems(spec, same.data) == []


async def test_removing_the_spend_cap_needs_confirmation(facebook):
    await facebook.store.set_setting(facebook.workspace.id, "guardrails", {"confirm_policy": "never"})
    spent = int((await facebook.call("get_ad_account")).data["account"]["amount_spent"])
    assert (await facebook.call("update_spend_cap", {"spend_cap": spent + 20000})).ok
    await facebook.store.set_setting(facebook.workspace.id, "guardrails", {"confirm_policy": "guardrails"})
    removed = await facebook.call("update_spend_cap", {"spend_cap": 0})
    assert removed.held and "remove the spend cap" in removed.text


async def test_list_account_users(facebook):
    result = await facebook.call("list_account_users")
    assert result.ok, result.text
    assert result.data["users"] and result.data["users"][0].get("name")


async def test_select_ad_account(facebook, demo_accounts):
    result = await facebook.call("select_ad_account", {"ad_account_id": demo_accounts["JPY"].removeprefix("act_")})
    assert result.ok, result.text
    assert await facebook.store.get_selection(facebook.workspace.id, "ad_account") == demo_accounts["JPY"]
    listed = await facebook.call("list_campaigns")
    assert listed.data["currency"] == "JPY"


async def test_no_account_selected_says_how_to_fix(store, graph, sandbox):
    from fi_facebook import Facebook
    from testkit import sandbox_clock

    workspace = await store.ensure_workspace("empty")
    result = await Facebook(store, graph, workspace, clock=sandbox_clock(sandbox)).call("list_campaigns")
    assert result.text.startswith("ERROR validation: No ad account given and none selected")
    assert "/use" in result.text


# -- /status: budgets where they live, spend in the account's days, what needs attention -------------------------

TARGETING = {"geo_locations": {"countries": ["US"]}, "age_min": 25}


async def _make(facebook, op: str, args: dict) -> str:
    result = await facebook.call(op, args)
    assert result.ok, result.text
    return result.data["id"]


async def test_status_budget_per_campaign_from_the_campaign_or_its_active_ad_sets(facebook, graph, demo_accounts):
    await facebook.store.set_setting(facebook.workspace.id, "guardrails", {"confirm_policy": "never"})
    cbo = await _make(
        facebook,
        "create_campaign",
        {"name": "CBO status", "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000, "status": "ACTIVE"},
    )
    await _make(
        facebook, "create_adset", {"campaign_id": cbo, "name": "CBO set", "targeting": TARGETING, "status": "ACTIVE"}
    )
    abo = await _make(
        facebook, "create_campaign", {"name": "ABO status", "objective": "OUTCOME_TRAFFIC", "status": "ACTIVE"}
    )
    for name, budget in (("ABO one", 8000), ("ABO two", 5000)):
        await _make(
            facebook,
            "create_adset",
            {"campaign_id": abo, "name": name, "targeting": TARGETING, "daily_budget": budget, "status": "ACTIVE"},
        )
    await _make(
        facebook,
        "create_adset",
        {"campaign_id": abo, "name": "ABO paused", "targeting": TARGETING, "daily_budget": 9900},
    )  # PAUSED: not part of what the campaign spends
    empty = await _make(
        facebook, "create_campaign", {"name": "No live ad set", "objective": "OUTCOME_TRAFFIC", "status": "ACTIVE"}
    )

    result = await facebook.call("account_overview")
    assert result.ok, result.text
    # The expected figures come from the sandbox's own objects, read here without the op.
    account = demo_accounts["USD"]
    cbo_budget = int((await graph.get(cbo, {"fields": "daily_budget"}))["daily_budget"])
    abo_sets = await graph.get_all(f"{abo}/adsets", {"fields": "daily_budget,effective_status"})
    live_sets = [a for a in abo_sets if a["effective_status"] == "ACTIVE"]
    abo_budget = sum(int(a["daily_budget"]) for a in live_sets)
    assert (cbo_budget, abo_budget, len(live_sets), len(abo_sets)) == (5000, 13000, 2, 3)
    lines = {line.split(" · ")[0].strip(): line for line in result.text.splitlines() if " · " in line}
    assert f"${cbo_budget // 100}.00/day (campaign budget)" in lines[f"{cbo} CBO status"]
    assert (
        f"${abo_budget // 100}.00/day across 2 ad sets" in lines[f"{abo} ABO status"]
    )  # "$130.00/day across 2 ad sets"
    by_id = {c["id"]: c for c in result.data["campaigns"]}
    assert (by_id[cbo]["daily_budget"], by_id[cbo]["budget_source"]) == (cbo_budget, "campaign")
    assert (by_id[abo]["daily_budget"], by_id[abo]["budget_source"], by_id[abo]["active_adsets"]) == (
        abo_budget,
        "ad sets",
        2,
    )
    listed = await graph.get_all(
        f"{account}/campaigns",
        {
            "fields": "daily_budget,effective_status",
            "effective_status": json.dumps(["ACTIVE", "WITH_ISSUES", "IN_PROCESS"]),
        },
    )
    adsets = await graph.get_all(
        f"{account}/adsets",
        {
            "fields": "campaign_id,daily_budget,effective_status",
            "effective_status": json.dumps(["ACTIVE", "WITH_ISSUES", "IN_PROCESS"]),
        },
    )
    live_sets_of = {c["id"]: [a for a in adsets if a["campaign_id"] == c["id"]] for c in listed}
    expected_total = sum(
        int(c.get("daily_budget") or 0) or sum(int(a.get("daily_budget") or 0) for a in live_sets_of[c["id"]])
        for c in listed
        if live_sets_of[c["id"]]
    )  # a campaign without an active ad set spends nothing
    assert result.data["active_daily_budget"] == expected_total
    assert f"daily budgets ${expected_total / 100:,.2f} in all where an ad set is active" in result.text
    attention = {(item["kind"], item["object_id"]): item["text"] for item in result.data["attention"]}
    assert f"/adsets {empty}" in attention[("no_active_adset", empty)]
    assert ("no_active_adset", abo) not in attention and ("no_active_adset", cbo) not in attention


async def test_status_spend_today_and_yesterday_in_the_accounts_days(facebook, graph, demo_accounts, sandbox):
    from zoneinfo import ZoneInfo

    from fb_utils import format_money, to_minor

    result = await facebook.call("account_overview")
    account = await graph.get(demo_accounts["USD"], {"fields": "currency,timezone_name"})
    spent = {}
    for preset in ("today", "yesterday"):
        rows = await graph.get_all(f"{demo_accounts['USD']}/insights", {"fields": "spend", "date_preset": preset})
        spent[preset] = sum(to_minor(r["spend"], account["currency"]) for r in rows)
    assert spent["yesterday"] > 0  # the demo delivered yesterday: the figure is not a default zero
    now = await sandbox_clock(sandbox)()
    local = now.astimezone(ZoneInfo(account["timezone_name"]))
    assert (
        f"spend today ({local:%a %d %b %Y}, {account['timezone_name']}) "
        f"{format_money(spent['today'], 'USD')}, yesterday"
    ) in result.text
    assert f"yesterday ({(local - timedelta(days=1)):%a %d %b %Y})" in result.text
    assert f"{format_money(spent['yesterday'], 'USD')}" in result.text
    assert (result.data["spend_today"], result.data["spend_yesterday"]) == (spent["today"], spent["yesterday"])


async def test_status_names_disapproved_ads_and_a_spend_cap_nearly_reached(facebook, graph, demo_accounts):
    disapproved = await graph.get_all(
        f"{demo_accounts['USD']}/ads", {"fields": "id", "effective_status": json.dumps(["DISAPPROVED"])}
    )
    assert disapproved  # the demo has one: the attention line must name it
    await facebook.store.set_setting(facebook.workspace.id, "guardrails", {"confirm_policy": "never"})
    spent = int((await graph.get(demo_accounts["USD"], {"fields": "amount_spent"}))["amount_spent"])
    cap = spent * 100 // 95  # 95 % of the cap already spent
    assert (await facebook.call("update_spend_cap", {"spend_cap": cap})).ok
    result = await facebook.call("account_overview")
    attention = {(item["kind"], item["object_id"]): item["text"] for item in result.data["attention"]}
    for ad in disapproved:
        assert f"/get_ad {ad['id']}" in attention[("ad_disapproved", ad["id"])]
    cap_line = attention[("spend_cap_nearly_reached", demo_accounts["USD"])]
    assert f"of its {format_money(cap, 'USD')} spend cap ({round(100 * spent / cap)} %)" in cap_line
    assert "/update_spend_cap AMOUNT" in cap_line and "Needs attention:" in result.text


def test_status_budget_words_and_the_daily_budget_rule():
    from fb_ad_account import campaign_budget

    sets = [{"daily_budget": "8000"}, {"daily_budget": "5000"}]
    assert campaign_budget({"id": "1"}, sets, "USD") == (13000, "ad sets", "$130.00/day across 2 ad sets")
    assert campaign_budget({"id": "1", "daily_budget": "5000"}, sets, "JPY") == (
        5000,
        "campaign",
        "¥5,000/day (campaign budget)",
    )
    assert (
        campaign_budget({"id": "1", "lifetime_budget": "150000"}, [], "USD")[2]
        == "$1,500.00 lifetime (campaign budget)"
    )
    assert campaign_budget({"id": "1"}, [{"lifetime_budget": "20000"}], "USD")[2] == "$200.00 lifetime across 1 ad set"
    assert campaign_budget({"id": "1"}, [], "USD")[:2] == (0, "ad sets")


def test_status_flags_a_daily_budget_nearly_spent_today():
    # The sandbox simulates a day once it is over, so "today" is checked on the rule itself with Facebook-shaped values.
    from fb_ad_account import NEARLY_SPENT, budget_nearly_spent

    campaign = {"id": "120210000000000042", "name": "Summer"}
    assert budget_nearly_spent(campaign, 5000, "campaign", int(5000 * NEARLY_SPENT) - 1, "USD") is None
    item = budget_nearly_spent(campaign, 5000, "campaign", 4600, "USD")
    assert item["text"] == (
        "Summer (120210000000000042) has spent $46.00 of its $50.00 daily budget today (92 %). "
        "/budget 120210000000000042 AMOUNT raises it"
    )
    abo = budget_nearly_spent(campaign, 13000, "ad sets", 13000, "JPY")
    assert (
        "¥13,000 of its ¥13,000 daily budget today (100 %)" in abo["text"]
        and "/update_adset ID daily_budget=AMOUNT" in abo["text"]
    )
    assert budget_nearly_spent(campaign, 0, "ad sets", 500, "USD") is None

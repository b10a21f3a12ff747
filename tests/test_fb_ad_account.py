"""Ad account ops end to end through dispatch, over HTTP against the sandbox."""
from __future__ import annotations


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
    assert "active campaigns" in result.text
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

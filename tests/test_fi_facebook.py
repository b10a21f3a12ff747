"""The registry, the facebook tool's argument handling, and the safety gate, over the real sandbox."""

from __future__ import annotations

import json

import pytest

import fi_facebook
from fb_utils import OpKind, OpSet
from fi_facebook import REGISTRY, Registry, normalize_call, spend_reasons
from testkit import sandbox_clock

# -- registry ---------------------------------------------------------------------------------------------------


def test_every_op_has_description_schema_and_kind():
    assert len(REGISTRY.names()) >= 19
    for spec in REGISTRY.specs():
        assert spec.summary and len(spec.summary) > 15, spec.name
        assert isinstance(spec.kind, OpKind)
        schema = REGISTRY.args_schema(spec)
        assert schema["type"] == "object"
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description") or "$ref" in prop or "anyOf" in prop, (
                f"{spec.name}.{name} lacks a description"
            )
        if spec.kind is not OpKind.READ:
            assert {"dry_run", "confirm"} <= set(schema["properties"])


def test_every_op_declares_its_task_group():
    from fb_utils import TaskGroup

    missing = [spec.name for spec in REGISTRY.specs() if not isinstance(spec.group, TaskGroup)]
    assert not missing, f"ops without a task group (add group=TaskGroup.… to their @ops.op): {missing}"
    assert set(REGISTRY.by_group()) == set(TaskGroup)  # every group a person sees in /help has ops
    assert all(len(spec.summary.splitlines()) == 1 for spec in REGISTRY.specs())


def test_money_fields_say_their_unit_in_the_schema():
    money = {
        (spec.name, name)
        for spec in REGISTRY.specs()
        for name, prop in REGISTRY.args_schema(spec).get("properties", {}).items()
        if "x-unit" in str(prop)
    }
    assert {
        ("create_campaign", "daily_budget"),
        ("update_adset", "bid_amount"),
        ("update_spend_cap", "spend_cap"),
    } <= money
    launch = REGISTRY.args_schema(REGISTRY.get("launch_campaign"))["$defs"]
    assert launch["LaunchCampaignSpec"]["properties"]["daily_budget"]["x-unit"] == "minor"


def test_the_issue_ops_are_registered():
    wanted = {
        "list_ad_accounts",
        "get_ad_account",
        "account_overview",
        "update_spend_cap",
        "list_account_users",
        "list_campaigns",
        "get_campaign",
        "create_campaign",
        "update_campaign",
        "pause_campaign",
        "resume_campaign",
        "archive_campaign",
        "delete_campaign",
        "duplicate_campaign",
        "bulk_update_campaigns",
    }
    assert wanted <= set(REGISTRY.names())


def test_registry_refuses_duplicates():
    first, second = OpSet("a"), OpSet("b")
    spec = REGISTRY.get("get_campaign")
    first.specs["get_campaign"] = spec
    second.specs["get_campaign"] = spec
    with pytest.raises(ValueError, match="declared twice"):
        Registry.from_opsets([first, second])


def test_objectives_come_from_the_sdk_enum():
    from facebook_business.adobjects.campaign import Campaign

    schema = REGISTRY.args_schema(REGISTRY.get("create_campaign"))
    assert set(schema["properties"]["objective"]["enum"]) == {
        v for k, v in vars(Campaign.Objective).items() if not k.startswith("_") and v.startswith("OUTCOME_")
    }


def test_openai_and_mcp_schemas():
    single = REGISTRY.openai_tools("single")
    assert [t["function"]["name"] for t in single] == ["facebook"]
    both = REGISTRY.openai_tools("both")
    assert len(both) == len(REGISTRY.names()) + 1
    from admonster_tools import ToolSelection, tool_list

    mcp = {t["name"]: t for t in tool_list(ToolSelection("per-op", ("all",)))}
    assert mcp["list_campaigns"]["annotations"]["readOnlyHint"] is True
    assert mcp["delete_campaign"]["annotations"]["destructiveHint"] is True
    json.dumps(both)


def test_op_table_lists_every_op():
    table = REGISTRY.op_table_markdown()
    for name in REGISTRY.names():
        assert f"`{name}`" in table


# -- argument normalisation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, top, expected",
    [
        (None, None, {}),
        ("null", None, {}),
        ("", None, {}),
        ('{"limit": 5}', None, {"limit": 5}),
        ({"args": {"limit": 5}}, None, {"limit": 5}),
        ({}, {"limit": 5}, {"limit": 5}),
        ('{"args": "{\\"limit\\": 5}"}', None, {"limit": 5}),
    ],
)
def test_args_accepted_the_way_an_llm_sends_them(args, top, expected):
    assert normalize_call("list_campaigns", args, top) == ("list_campaigns", expected)


async def test_broken_json_is_one_error_line(facebook):
    result = await facebook.call("list_campaigns", '{"limit": 5')
    assert not result.ok
    assert result.text.startswith("ERROR validation: args is not valid JSON")
    assert "Fix:" in result.text and "\n" not in result.text


async def test_unknown_op_suggests_the_closest(facebook):
    result = await facebook.call("list_campaign")
    assert result.text.startswith("ERROR validation: Unknown op 'list_campaign'")
    assert "list_campaigns" in result.data["suggestions"]


async def test_wrong_types_and_unknown_fields(facebook):
    result = await facebook.call("list_campaigns", {"limit": "many", "colour": "red"})
    assert not result.ok and "limit" in result.text and "unknown argument 'colour'" in result.text
    result = await facebook.call("update_campaign", {"campaign_id": "123", "daily_budget": -5})
    assert not result.ok and "daily_budget" in result.text and result.data["blame_field"] == "daily_budget"
    # Two voices: the person's fix is a command to type, the LLM's names the call; values read as typed (no escapes).
    yen = await facebook.call("update_campaign", {"campaign_id": "123", "daily_budget": "\u00a54,000"})
    assert not yen.ok and '(got "¥4,000")' in yen.text and "\\u00a5" not in yen.text, yen.text
    assert yen.text.endswith("Fix: /help update_campaign explains each argument, with an example.")
    assert 'op=help with args={"op": "update_campaign"}' in yen.llm_text and "op=help" not in yen.text
    # A check over the arguments together reads as its own words, without pydantic's "Value error," or "args:".
    together = await facebook.call("update_campaign", {"campaign_id": "123"})
    assert not together.ok and "Value error" not in together.text and "args:" not in together.text, together.text


async def test_help_and_op_help(facebook):
    result = await facebook.call("help")
    assert "\nCampaigns:\n" in result.text and "create_campaign" in result.text and "fb_campaign" not in result.text
    assert "create_campaign" in result.data["groups"]["campaigns"]
    one = await facebook.call("help", {"op": "create_campaign"})
    assert "objective" in one.text and one.data["schema"]["required"]
    assert "Example:" in one.text


# -- safety gate -----------------------------------------------------------------------------------------------


async def _first_campaign(facebook, status: str, with_daily_budget: bool = False) -> dict:
    listed = await facebook.call("list_campaigns", {"status": [status]})
    assert listed.ok, listed.text
    found = [c for c in listed.data["campaigns"] if c.get("daily_budget") or not with_daily_budget]
    assert found, f"the demo has no {status} campaign"
    return found[0]


async def test_create_is_paused_by_default(facebook):
    result = await facebook.call(
        "create_campaign", {"name": "Gate default", "objective": "OUTCOME_TRAFFIC", "daily_budget": 2000}
    )
    assert result.ok, result.text
    got = await facebook.call("get_campaign", {"campaign_id": result.data["id"]})
    assert got.data["campaign"]["status"] == "PAUSED"


async def test_dry_run_changes_nothing_and_shows_requests(facebook, sandbox):
    before = await sandbox.control("GET", "objects?type=campaign")
    result = await facebook.call(
        "create_campaign", {"name": "Dry", "objective": "OUTCOME_SALES", "daily_budget": 5000, "dry_run": True}
    )
    assert result.ok, result.text
    assert result.text.startswith("DRY RUN create_campaign")
    assert result.data["requests"][0]["method"] == "POST" and result.data["requests"][0]["path"].endswith("/campaigns")
    assert result.data["validation"]["accepted"] is True
    after = await sandbox.control("GET", "objects?type=campaign")
    assert len(after["data"]) == len(before["data"])
    assert (await facebook.store.list_audit(facebook.workspace.id)) == []


async def test_dry_run_reports_facebook_validation_refusal(facebook, sandbox):
    # Something only Facebook knows refuses it (here a fault stands in for it): the dry run says so.
    await sandbox.fault(
        kind="error",
        method="POST",
        path=r"^act_\d+/campaigns$",
        error_subcode=1885183,
        message="(#100) The ad account is not allowed to create campaigns right now",
    )
    result = await facebook.call(
        "create_campaign", {"name": "Refused", "objective": "OUTCOME_SALES", "daily_budget": 5000, "dry_run": "true"}
    )
    assert not result.ok
    assert "validate_only: refused" in result.text and "not allowed to create campaigns" in result.text


async def test_an_impossible_budget_is_one_line_before_any_preview(facebook, sandbox):
    active = await _first_campaign(facebook, "ACTIVE", with_daily_budget=True)
    await sandbox.control("POST", "stats/reset")
    huge = await facebook.call("update_campaign", {"campaign_id": active["id"], "daily_budget": 99999999999999999999})
    assert not huge.ok and huge.text.startswith("ERROR validation:") and len(huge.text.splitlines()) == 1
    assert "more than Facebook takes for an amount" in huge.text and "confirmation_id" not in huge.data
    over = await facebook.call("update_campaign", {"campaign_id": active["id"], "daily_budget": 100_000_001})
    assert not over.ok and "over the most Facebook allows for a budget ($1,000,000.00)" in over.text
    assert over.data["error_subcode"] == 1885261 and "confirmation_id" not in over.data
    at_cap = await facebook.call(
        "update_campaign", {"campaign_id": active["id"], "daily_budget": 100_000_000, "dry_run": True}
    )
    assert at_cap.ok, at_cap.text  # exactly $1,000,000 is allowed
    now = await facebook.call("get_campaign", {"campaign_id": active["id"]})
    assert now.data["campaign"]["daily_budget"] == active["daily_budget"]  # nothing changed anywhere


async def test_resume_needs_confirmation_then_runs_once(facebook):
    paused = await _first_campaign(facebook, "PAUSED")
    held = await facebook.call("resume_campaign", {"campaign_id": paused["id"]})
    assert not held.ok and held.held and held.data["error"] == "confirmation_required"
    confirmation_id = held.data["confirmation_id"]
    # Two voices: the person reads a question and the two commands that answer it; the LLM also reads how to call.
    assert held.text.startswith(f"Waiting for your confirmation: this would set campaign {paused['name']}")
    assert f"/confirm {confirmation_id}" in held.text and f"/reject {confirmation_id}" in held.text
    assert "ERROR" not in held.text and "confirm=" not in held.text and "resume_campaign" not in held.text
    assert held.llm_text.startswith("ERROR confirmation_required: resume_campaign would set")
    assert f'call again with confirm="{confirmation_id}"' in held.llm_text
    still = await facebook.call("get_campaign", {"campaign_id": paused["id"]})
    assert still.data["campaign"]["status"] == "PAUSED"
    done = await facebook.call("confirm", {"confirm": confirmation_id})
    assert done.ok, done.text
    now = await facebook.call("get_campaign", {"campaign_id": paused["id"]})
    assert now.data["campaign"]["status"] == "ACTIVE"
    again = await facebook.call("confirm", {"confirm": confirmation_id})
    assert not again.ok and "already used" in again.text


async def test_confirm_with_the_wrong_op_is_refused(facebook):
    paused = await _first_campaign(facebook, "PAUSED")
    held = await facebook.call("resume_campaign", {"campaign_id": paused["id"]})
    wrong = await facebook.call(
        "pause_campaign", {"campaign_id": paused["id"], "confirm": held.data["confirmation_id"]}
    )
    assert not wrong.ok and "belongs to resume_campaign" in wrong.text


async def test_budget_raise_over_guardrail_needs_confirmation(facebook):
    active = await _first_campaign(facebook, "ACTIVE", with_daily_budget=True)
    budget = int(active["daily_budget"])
    small = await facebook.call("update_campaign", {"campaign_id": active["id"], "daily_budget": budget + budget // 10})
    assert small.ok, small.text  # +10 % is inside the default 50 % guardrail
    big = await facebook.call("update_campaign", {"campaign_id": active["id"], "daily_budget": budget * 3})
    assert not big.ok and big.held
    assert "would raise daily budget" in big.text and "$" in big.text
    raised = budget + budget // 10
    odd = raised * 8 // 3  # +166.67 %: rounds to 167, never floors to 166
    held = await facebook.call("update_campaign", {"campaign_id": active["id"], "daily_budget": odd})
    expected = round((odd - raised) * 100 / raised)
    assert held.held and f"(+{expected} %, over the 50 % increase guardrail)" in held.text, (expected, held.text)


async def test_policy_never_and_always(facebook):
    paused = await _first_campaign(facebook, "PAUSED")
    await facebook.store.set_setting(facebook.workspace.id, "guardrails", {"confirm_policy": "never"})
    resumed = await facebook.call("resume_campaign", {"campaign_id": paused["id"]})
    assert resumed.ok, resumed.text
    await facebook.store.set_setting(facebook.workspace.id, "guardrails", {"confirm_policy": "always"})
    active = await facebook.call("get_campaign", {"campaign_id": paused["id"]})
    budget = active.data["campaign"].get("daily_budget")
    if budget:
        held = await facebook.call("update_campaign", {"campaign_id": paused["id"], "daily_budget": int(budget) + 1})
        assert held.held


async def test_audit_records_before_and_after_and_undo_restores(facebook):
    active = await _first_campaign(facebook, "ACTIVE")
    paused = await facebook.call("pause_campaign", {"campaign_id": active["id"]})
    assert paused.ok, paused.text
    audit_id = paused.data["audit_id"]
    entry = await facebook.store.get_audit(facebook.workspace.id, audit_id)
    assert entry.op == "pause_campaign" and entry.outcome == "ok" and entry.interface == "api"
    assert entry.changes[0]["before"] == "ACTIVE" and entry.changes[0]["after"] == "PAUSED"
    assert active["id"] in entry.object_ids
    held = await facebook.call("undo", {"audit_id": audit_id})  # undoing a pause re-activates: a spend op
    assert held.held
    undone = await facebook.call("confirm", {"confirm": held.data["confirmation_id"]})
    assert undone.ok, undone.text
    now = await facebook.call("get_campaign", {"campaign_id": active["id"]})
    assert now.data["campaign"]["status"] == "ACTIVE"
    entry = await facebook.store.get_audit(facebook.workspace.id, audit_id)
    assert entry.undone_by
    twice = await facebook.call("undo", {"audit_id": audit_id})
    assert not twice.ok and "already undone" in twice.text


async def test_budget_undo(facebook):
    active = await _first_campaign(facebook, "ACTIVE", with_daily_budget=True)
    budget = int(active["daily_budget"])
    lowered = await facebook.call("update_campaign", {"campaign_id": active["id"], "daily_budget": budget // 2})
    assert lowered.ok, lowered.text
    undone = await facebook.call("undo", {"audit_id": lowered.data["audit_id"]})  # back up by 100 %: over the guardrail
    if not undone.ok:
        undone = await facebook.call("confirm", {"confirm": undone.data["confirmation_id"]})
    assert undone.ok, undone.text
    now = await facebook.call("get_campaign", {"campaign_id": active["id"]})
    assert int(now.data["campaign"]["daily_budget"]) == budget


async def test_failed_write_is_audited_with_the_error(facebook, sandbox):
    paused = await _first_campaign(facebook, "PAUSED")
    await sandbox.fault(
        kind="error",
        code=100,
        error_subcode=33,
        method="POST",
        path=f"^{paused['id']}$",
        message="Unsupported post request.",
        type="GraphMethodException",
    )
    result = await facebook.call("archive_campaign", {"campaign_id": paused["id"]})
    assert not result.ok
    entry = (await facebook.store.list_audit(facebook.workspace.id))[0]
    assert entry.outcome == "error" and entry.error.startswith("ERROR")


async def test_audit_args_have_no_secrets(facebook):
    result = await facebook.call(
        "create_campaign", {"name": "Mail bob@example.com", "objective": "OUTCOME_TRAFFIC", "dry_run": False}
    )
    assert result.ok, result.text
    entry = (await facebook.store.list_audit(facebook.workspace.id))[0]
    assert "bob@example.com" not in json.dumps(entry.args)


def test_spend_reasons_unit_cases():
    from fb_utils import Change, WritePlan

    def plan(*changes):
        return WritePlan("x", None, [], list(changes), execute=None)

    guard = {"confirm_policy": "guardrails", "max_budget_increase_pct": 50, "max_daily_budget": 10000}
    assert spend_reasons(plan(Change("1", "campaign", "A", "status", "PAUSED", "ACTIVE")), guard)
    assert not spend_reasons(plan(Change("1", "campaign", "A", "status", "ACTIVE", "PAUSED")), guard)
    assert spend_reasons(plan(Change("1", "campaign", "A", "daily_budget", "1000", "20000", "USD")), guard)
    assert not spend_reasons(plan(Change("1", "campaign", "A", "daily_budget", "1000", "1400", "USD")), guard)
    assert spend_reasons(plan(Change("1", "campaign", "A", "daily_budget", "5000", "9000", "USD")), guard)
    assert spend_reasons(plan(Change("act_1", "ad account", "A", "spend_cap", "5000", "0", "USD")), guard)
    assert not spend_reasons(
        plan(Change("1", "campaign", "A", "status", "PAUSED", "ACTIVE")), {"confirm_policy": "never"}
    )


def test_fi_facebook_main_prints_the_table(capsys):
    assert fi_facebook.main(["--op-table"]) == 0
    assert "| `create_campaign` |" in capsys.readouterr().out


def test_docs_op_table_is_current():
    from pathlib import Path

    committed = (Path(__file__).resolve().parent.parent / "docs" / "ops.md").read_text()
    assert committed == REGISTRY.op_table_markdown(), "docs/ops.md is stale: run `make docs`"


async def test_rate_limit_wait_is_told_in_the_answer(sandbox, demo_token, store, demo_accounts):
    from fb_utils import GraphClient
    from fi_facebook import Facebook, record_wait

    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:  # the one thing tests may fake: real time
        slept.append(seconds)

    graph = GraphClient(
        demo_token["access_token"],
        app_secret=demo_token["app_secret"],
        base_url=sandbox.url,
        sleep=fake_sleep,
        on_wait=record_wait,
    )
    try:
        workspace = await store.ensure_workspace("waits")
        await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
        await sandbox.fault(kind="throttle", minutes=1, count=1, method="GET", path=r"^act_\d+/campaigns$")
        result = await Facebook(store, graph, workspace, clock=sandbox_clock(sandbox)).call("list_campaigns")
    finally:
        await graph.close()
    assert result.ok, result.text
    assert 60 in slept
    assert "60 s" in result.text.splitlines()[-1] and result.data["rate_limit_waits"]


async def test_ids_sent_as_numbers_are_accepted(facebook):
    listed = await facebook.call("list_campaigns", {"status": ["PAUSED"]})
    campaign_id = int(listed.data["campaigns"][0]["id"])
    result = await facebook.call("get_campaign", {"campaign_id": campaign_id})
    assert result.ok, result.text
    assert result.data["campaign"]["id"] == str(campaign_id)


# -- one gate path: an automation's call (run_gated, ctx.gate) goes the way a person's call goes -------------------


async def test_run_gated_applies_the_ops_selections_like_a_persons_call(facebook, store, demo_accounts):
    """The path run_gated takes keeps what an op selected (it used to skip that step: a selection an automation's op
    made was lost, and the next op ran against the old account)."""
    other = next(account for currency, account in demo_accounts.items() if currency != "USD")
    result = await facebook.run_gated("select_ad_account", {"ad_account_id": other}, "job")
    assert result.ok, result.text
    assert await store.get_selection(facebook.workspace.id, "ad_account") == other
    assert (await facebook.selections())["ad_account"] == other
    assert (await facebook._context("job")).ad_account_id == other


async def test_run_gated_refuses_a_held_write_and_never_confirms(facebook, store, sandbox):
    before = len((await sandbox.control("GET", "objects?type=campaign"))["data"])
    await store.set_guardrails(facebook.workspace.id, {"confirm_policy": "always"})
    args = {"name": "Unattended", "objective": "OUTCOME_TRAFFIC", "daily_budget": 2000}
    refused = await facebook.run_gated("create_campaign", args, "job")
    assert not refused.ok and refused.data["error"] == "confirmation_required"
    assert "nobody is there to confirm" in refused.data["message"]
    assert await store.list_confirmations(facebook.workspace.id) == []  # nothing left waiting for a person
    held = await facebook.call("create_campaign", args)  # a person's call is held instead
    assert held.held
    confirmation = (await store.list_confirmations(facebook.workspace.id))[0].id
    for op, given in (("confirm", {"id": confirmation}), ("create_campaign", {**args, "confirm": confirmation})):
        answer = await facebook.run_gated(op, given, "job")
        assert not answer.ok and "needs a person" in answer.data["message"], op
    assert [c.id for c in await store.list_confirmations(facebook.workspace.id)] == [confirmation]
    assert len((await sandbox.control("GET", "objects?type=campaign"))["data"]) == before

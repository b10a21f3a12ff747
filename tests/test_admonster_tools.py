"""Toolsets, find_ops and an affordable tools/list (issue 20, items 1, 2, 7): `admonster mcp` as a real stdio
subprocess driven by the official MCP client, `admonster tools` as a real subprocess, `/mcp` on a real
`admonster serve`. Everything is derived from the registry, so the expectations are too."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from admonster_tools import (
    ALL_TOOLSETS,
    MCP_SETTING,
    META_TOOLS,
    ToolSelection,
    openai_tools,
    parse_toolsets,
    selected_specs,
    tool_list,
)
from fb_utils import OpKind, TaskGroup, ValidationError
from fi_facebook import REGISTRY
from test_admonster_mcp import ROOT, TIMEOUT, _text, http_session, server, stdio_session  # noqa: F401 (fixture)
from testkit import SANDBOX_START_ENV

MAX_DEFAULT_LIST_BYTES = 30 * 1024  # issue 20's target for the default tools/list


def listed_bytes(result: types.ListToolsResult) -> int:
    """The tools/list result as the client holds it, serialized as JSON-RPC carries it (camelCase, no nulls)."""
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


def core_names() -> set[str]:
    return {spec.name for spec in REGISTRY.specs() if spec.core}


# ---------------------------------------------------------------------------------------------------------------
# The registry: toolsets, core ops, find_ops
# ---------------------------------------------------------------------------------------------------------------


def test_every_op_belongs_to_exactly_one_toolset():
    toolsets = REGISTRY.toolsets()
    assert list(toolsets) == [group.value for group in TaskGroup]  # the task groups of /help, in order
    members = [spec.name for specs in toolsets.values() for spec in specs]
    assert sorted(members) == sorted(REGISTRY.names())  # each op once: no op twice, none left out
    for name, specs in toolsets.items():
        assert all(spec.group.value == name for spec in specs)
    everything = {spec.name for spec in selected_specs(ToolSelection(toolsets=(ALL_TOOLSETS,)))}
    assert everything == set(REGISTRY.names())


def test_core_ops_are_account_and_campaign_basics_declared_on_the_op():
    core = [spec for spec in REGISTRY.specs() if spec.core]
    assert 3 <= len(core) <= 10
    assert {spec.group for spec in core} <= {TaskGroup.ACCOUNTS, TaskGroup.CAMPAIGNS}
    assert {"list_ad_accounts", "list_campaigns", "pause_campaign"} <= {spec.name for spec in core}
    assert all(spec.kind is not OpKind.SPEND and not spec.destructive for spec in core)  # nothing that raises spend
    default = {spec.name for spec in selected_specs(ToolSelection())}
    assert default == {spec.name for spec in core}


def test_find_ops_ranks_the_op_for_a_plain_request():
    cases = {
        "pause campaigns spending too much": "pause_campaign",
        "upload a video": "upload_video",
        "weekly report": "weekly_report",
        "lookalike audience": "create_lookalike",
        "undo the last change": "undo",
        "connect facebook": "connect",
        "who can access the ad account": "list_account_users",
    }
    for query, best in cases.items():
        ranked = [spec.name for spec, _ in REGISTRY.find_ops(query, 3)]
        assert ranked[0] == best, (query, ranked)
    scores = [score for _, score in REGISTRY.find_ops("pause campaigns spending too much", 8)]
    assert scores == sorted(scores, reverse=True) and len(scores) == 8
    assert REGISTRY.find_ops("the of and", 5) == [] and REGISTRY.find_ops("zzzqqq", 5) == []
    read_only = REGISTRY.find_ops("pause campaign", 20, lambda spec: spec.kind is OpKind.READ)
    assert read_only and all(spec.kind is OpKind.READ for spec, _ in read_only)
    answer = REGISTRY.find_ops_result("pause campaigns spending too much", 3)
    assert answer.data["ops"][0]["op"] == "pause_campaign" and len(answer.text.splitlines()) == 4
    with pytest.raises(ValidationError):
        REGISTRY.find_ops_result("  ")


async def test_find_ops_is_an_op_of_the_facebook_tool(facebook):
    found = await facebook.call("find_ops", {"query": "pause campaigns spending too much", "limit": 3}, interface="api")
    assert found.ok and [op["op"] for op in found.data["ops"]][0] == "pause_campaign" and len(found.data["ops"]) == 3
    assert "pause_campaign" in found.text and "facebook(op=NAME" in found.llm_text
    for bad in ({"query": ""}, {"query": "pause", "limit": 0}, {"query": "pause", "limt": 3}):
        refused = await facebook.call("find_ops", bad, interface="api")
        assert not refused.ok and refused.text.startswith("ERROR validation") and "Fix:" in refused.text
    nothing = await facebook.call("find_ops", {"query": "zzzqqq"}, interface="api")
    assert nothing.ok and nothing.data["ops"] == []


def test_toolset_names_are_checked_with_a_fix():
    assert parse_toolsets("campaigns, insights_reports") == ("campaigns", "insights_reports")
    assert parse_toolsets(None) is None and parse_toolsets("") is None
    with pytest.raises(ValidationError) as refused:
        parse_toolsets("campains")
    assert "Did you mean campaigns?" in refused.value.to_text()


def test_read_only_lists_no_write_op():
    for mode in ("per-op", "both"):
        tools = tool_list(ToolSelection(mode, (ALL_TOOLSETS,), read_only=True))
        ops = [tool for tool in tools if REGISTRY.get(tool["name"]) is not None]
        assert {tool["name"] for tool in ops} == {spec.name for spec in REGISTRY.specs() if spec.kind is OpKind.READ}
        assert all(tool["annotations"]["readOnlyHint"] for tool in tools)
    facebook = tool_list(ToolSelection("single", read_only=True))[0]
    assert facebook["annotations"]["readOnlyHint"] is True and "read-only" in facebook["description"]


# ---------------------------------------------------------------------------------------------------------------
# `admonster tools`: the same builder as `admonster mcp`
# ---------------------------------------------------------------------------------------------------------------


def _tools_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "admonster_bot", "tools", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_tools_command_follows_tools_toolsets_and_read_only():
    def names(*args: str) -> list[str]:
        done = _tools_cli(*args)
        assert done.returncode == 0, done.stderr
        listed = json.loads(done.stdout)
        return [tool["function"]["name"] if "function" in tool else tool["name"] for tool in listed]

    single, per_op, both = (names("--format", "mcp", "--tools", mode) for mode in ("single", "per-op", "both"))
    assert single == ["facebook"]
    assert set(per_op) == {*META_TOOLS, *core_names()} and "facebook" not in per_op
    assert both == ["facebook", *per_op]
    assert names("--format", "mcp") == both  # what `admonster mcp` serves by default
    everything = names("--format", "mcp", "--toolsets", "all")
    assert set(everything) == {"facebook", *META_TOOLS, *REGISTRY.names()}
    campaigns = {spec.name for spec in REGISTRY.toolsets()["campaigns"]}
    assert set(names("--format", "openai", "--tools", "per-op", "--toolsets", "campaigns")) == {"find_ops", *campaigns}
    read = {spec.name for spec in REGISTRY.toolsets()["campaigns"] if spec.kind is OpKind.READ}
    assert set(names("--format", "openai", "--tools", "both", "--toolsets", "campaigns", "--read-only")) == {
        "facebook",
        "find_ops",
        *read,
    }
    assert names("--format", "openai") == ["facebook"]
    refused = _tools_cli("--format", "mcp", "--toolsets", "campains")
    assert refused.returncode == 2 and "Did you mean campaigns?" in refused.stderr and "Traceback" not in refused.stderr


def test_openai_tools_are_the_mcp_selection():
    selection = ToolSelection("both", ("insights_reports",))
    mcp = tool_list(selection, dynamic=False)
    openai = openai_tools("both", toolsets=("insights_reports",))
    assert [tool["function"]["name"] for tool in openai] == [tool["name"] for tool in mcp]
    assert all(o["function"]["parameters"] == m["inputSchema"] for o, m in zip(openai, mcp))


# ---------------------------------------------------------------------------------------------------------------
# stdio with the official client: default list ≤ 30 KB, enable a toolset, list_changed, call its op
# ---------------------------------------------------------------------------------------------------------------


def list_changed_listener() -> tuple[asyncio.Event, Any]:
    """An Event set when the server sends notifications/tools/list_changed, and the ClientSession message_handler."""
    changed = asyncio.Event()

    async def on_message(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    return changed, on_message


async def check_default_list_and_toolset_discovery(session: Any, changed: asyncio.Event) -> types.ListToolsResult:
    """Issue 20's done-when, over any transport: the default list is at most 30 KB, any op is two calls away, and
    enable_toolset adds a toolset's tools (the client hears list_changed, lists again, calls one). The first list."""
    assert session.initialize_result.capabilities.tools.list_changed is True
    first = await session.list_tools()
    size = listed_bytes(first)
    assert size <= MAX_DEFAULT_LIST_BYTES, f"default tools/list is {size} bytes"
    names = {tool.name for tool in first.tools}
    assert names == {"facebook", *META_TOOLS, *core_names()}

    # find_ops, then the op through the facebook tool: any op in two calls
    found = await session.call_tool("find_ops", {"query": "list the ad sets of a campaign"})
    assert not found.is_error and found.structured_content["ops"][0]["op"] == "list_adsets"
    via_facebook = await session.call_tool("facebook", {"op": "find_ops", "args": {"query": "upload a video"}})
    assert via_facebook.structured_content["ops"][0]["op"] == "upload_video"
    campaigns = (await session.call_tool("list_campaigns", {"limit": 1})).structured_content["campaigns"]
    adsets = await session.call_tool("facebook", {"op": "list_adsets", "args": {"campaign_id": campaigns[0]["id"]}})
    assert not adsets.is_error, _text(adsets)

    not_listed = await session.call_tool("list_adsets", {"campaign_id": campaigns[0]["id"]})
    assert not_listed.is_error and 'enable_toolset with name="adsets_targeting"' in _text(not_listed)

    toolsets = await session.call_tool("list_toolsets", {})
    rows = {row["name"]: row for row in toolsets.structured_content["toolsets"]}
    assert list(rows) == list(REGISTRY.toolsets()) and rows["adsets_targeting"]["enabled"] is False

    assert not changed.is_set()
    enabled = await session.call_tool("enable_toolset", {"name": "adsets_targeting"})
    assert not enabled.is_error, _text(enabled)
    await asyncio.wait_for(changed.wait(), TIMEOUT)
    added = {spec.name for spec in REGISTRY.toolsets()["adsets_targeting"]}
    assert set(enabled.structured_content["added"]) == added and enabled.structured_content["listed"] is True
    second = await session.list_tools()
    assert {tool.name for tool in second.tools} == names | added
    assert listed_bytes(second) > size

    direct = await session.call_tool("list_adsets", {"campaign_id": campaigns[0]["id"]})
    assert not direct.is_error, _text(direct)
    assert direct.structured_content == adsets.structured_content  # the same op, the same answer

    again = await session.call_tool("enable_toolset", {"name": "adsets_targeting"})
    assert not again.is_error and again.structured_content["added"] == []
    unknown = await session.call_tool("enable_toolset", {"name": "adset"})
    assert unknown.is_error and _text(unknown).startswith("ERROR validation") and "adsets_targeting" in _text(unknown)
    return first


async def test_default_list_is_small_and_enable_toolset_changes_it(tmp_path):
    changed, on_message = list_changed_listener()
    async with stdio_session(tmp_path / "home", message_handler=on_message) as session:
        first = await check_default_list_and_toolset_discovery(session, changed)
        printed = _tools_cli("--format", "mcp")
        assert json.loads(printed.stdout) == [
            tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in first.tools
        ]  # `admonster tools` prints what is served


async def test_read_only_server_serves_and_runs_no_write(tmp_path):
    async with stdio_session(tmp_path / "home", "--toolsets", "all", "--read-only") as session:
        tools = (await session.list_tools()).tools
        ops = {tool.name for tool in tools if REGISTRY.get(tool.name) is not None}
        assert ops == {spec.name for spec in REGISTRY.specs() if spec.kind is OpKind.READ}
        assert all(tool.annotations.read_only_hint for tool in tools)
        campaigns = (await session.call_tool("list_campaigns", {"limit": 1})).structured_content["campaigns"]
        refused = await session.call_tool(
            "facebook", {"op": "pause_campaign", "args": {"campaign_id": campaigns[0]["id"]}}
        )
        assert refused.is_error and "read-only" in _text(refused) and "Fix:" in _text(refused)
        not_a_tool = await session.call_tool("pause_campaign", {"campaign_id": campaigns[0]["id"]})
        assert not_a_tool.is_error
        still = await session.call_tool("get_campaign", {"campaign_id": campaigns[0]["id"]})
        assert still.structured_content["campaign"]["status"] == campaigns[0]["status"]  # nothing was paused
        found = await session.call_tool("find_ops", {"query": "pause campaign", "limit": 20})
        assert all(REGISTRY.get(op["op"]).kind is OpKind.READ for op in found.structured_content["ops"])


async def test_toolsets_flag_serves_only_those(tmp_path):
    async with stdio_session(
        tmp_path / "home", "--toolsets", "insights_reports,experiments", "--tools", "per-op"
    ) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        wanted = {spec.name for name in ("insights_reports", "experiments") for spec in REGISTRY.toolsets()[name]}
        assert names == {*META_TOOLS, *wanted}


# ---------------------------------------------------------------------------------------------------------------
# HTTP /mcp: the workspace's setting
# ---------------------------------------------------------------------------------------------------------------


async def test_http_default_list_and_enable_toolset_changes_it(server):  # noqa: F811 (the fixture)
    """The same done-when over /mcp with the official streamable HTTP client: the session keeps its toolsets."""
    url, runtime = server
    key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("acme")).id)
    changed, on_message = list_changed_listener()
    async with http_session(url, key, message_handler=on_message) as session:
        await check_default_list_and_toolset_discovery(session, changed)


async def test_http_lists_what_the_workspace_setting_says(server):  # noqa: F811 (the fixture)
    """The workspace's setting is each session's base list; a toolset enabled in one session is that session's only
    (another session of the workspace, or of another workspace, never sees it)."""
    url, runtime = server
    workspace = await runtime.store.ensure_workspace("acme")
    key = await runtime.store.create_api_key(workspace.id)
    other_key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("beta")).id)
    default = {"facebook", *META_TOOLS, *core_names()}
    automation = {spec.name for spec in REGISTRY.toolsets()["automation"]}

    async with (
        http_session(url, key) as session,
        http_session(url, key) as sibling,
        http_session(url, other_key) as stranger,
    ):
        listed = await session.list_tools()
        assert {tool.name for tool in listed.tools} == default
        assert listed_bytes(listed) <= MAX_DEFAULT_LIST_BYTES
        enabled = await session.call_tool("enable_toolset", {"name": "automation"})
        assert not enabled.is_error and enabled.structured_content["listed"] is True, _text(enabled)
        assert {tool.name for tool in (await session.list_tools()).tools} == default | automation
        for other in (sibling, stranger):
            assert {tool.name for tool in (await other.list_tools()).tools} == default
            refused = await other.call_tool(sorted(automation)[0], {})
            assert refused.is_error and 'enable_toolset with name="automation"' in _text(refused)

    await runtime.store.set_setting(workspace.id, MCP_SETTING, {"toolsets": ["automation"], "read_only": True})
    async with http_session(url, key) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        reads = {spec.name for spec in REGISTRY.toolsets()["automation"] if spec.kind is OpKind.READ}
        assert names == {"facebook", *META_TOOLS, *reads}
        refused = await session.call_tool("facebook", {"op": "pause_campaign", "args": {"campaign_id": "1"}})
        assert refused.is_error and "read-only" in _text(refused)


def test_workspace_mcp_command_stores_the_setting(tmp_path):
    env = {**SANDBOX_START_ENV, "ADMONSTER_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "admonster_bot", "workspace", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    assert run("create", "acme").returncode == 0
    done = run("mcp", "acme", "--toolsets", "campaigns,safety", "--read-only")
    assert done.returncode == 0 and "campaigns, safety" in done.stdout and "read-only" in done.stdout
    refused = run("mcp", "acme", "--toolsets", "nope")
    assert refused.returncode == 2 and refused.stderr.startswith("ERROR validation")

    async def stored() -> object:
        from admonster_store import Store

        async with await Store.open(Path(env["ADMONSTER_HOME"]) / "admonster.db") as store:
            return await store.get_setting((await store.find_workspace("acme")).id, MCP_SETTING)

    assert asyncio.run(stored()) == {"toolsets": ["campaigns", "safety"], "read_only": True}
    only_read = run("mcp", "acme", "--read-only")  # no --toolsets: the default ones, read-only (was list(None))
    assert only_read.returncode == 0, only_read.stderr
    assert "default (core ops), read-only" in only_read.stdout
    assert asyncio.run(stored()) == {"toolsets": [], "read_only": True}
    assert run("mcp", "acme").returncode == 0
    assert asyncio.run(stored()) is None

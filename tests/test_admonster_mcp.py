"""The MCP server with the official SDK's own clients: `admonster mcp` as a real stdio subprocess, and `/mcp` on a
real `admonster serve` (streamable HTTP) with workspace API keys. Nothing of ours is mocked."""
from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from admonster_mcp import OUTPUT_SCHEMA, build_tools
from admonster_tools import MCP_SETTING, META_TOOLS
from admonster_runtime import SANDBOX_AUTOCONNECT, open_runtime
from admonster_server import serve
from fi_facebook import REGISTRY
from fb_utils import OpKind
from testkit import SANDBOX_START_ENV, free_port, sandbox_settings

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


@asynccontextmanager
async def stdio_session(home: Path, *args: str, message_handler=None):
    params = StdioServerParameters(command=sys.executable, args=["-m", "admonster_bot", "mcp", *args],
                                   env={**SANDBOX_START_ENV, "ADMONSTER_HOME": str(home)}, cwd=str(ROOT))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=message_handler) as session:
            await asyncio.wait_for(session.initialize(), TIMEOUT)
            yield session


def _text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


# ---------------------------------------------------------------------------------------------------------------
# Tools from the registry (no transport)
# ---------------------------------------------------------------------------------------------------------------


def test_tools_follow_the_registry():
    both = {tool.name: tool for tool in build_tools("both", toolsets=("all",))}
    assert set(both) == {"facebook", *META_TOOLS, *REGISTRY.names()}
    for spec in REGISTRY.specs():
        tool = both[spec.name]
        assert tool.input_schema == REGISTRY.args_schema(spec) and tool.output_schema == OUTPUT_SCHEMA
        assert tool.annotations.read_only_hint is (spec.kind is OpKind.READ)
        assert tool.annotations.destructive_hint is spec.destructive and tool.annotations.idempotent_hint is spec.idempotent
    assert [t.name for t in build_tools("single")] == ["facebook"]
    assert {t.name for t in build_tools("per-op", toolsets=("all",))} == {*META_TOOLS, *REGISTRY.names()}
    with pytest.raises(ValueError):
        build_tools("some")


# ---------------------------------------------------------------------------------------------------------------
# stdio: `python -m admonster_bot mcp`
# ---------------------------------------------------------------------------------------------------------------


async def test_stdio_lists_and_calls_tools(tmp_path):
    async with stdio_session(tmp_path / "home", "--toolsets", "all") as session:
        listed = (await session.list_tools()).tools
        tools = {tool.name: tool for tool in listed}
        assert set(tools) == {"facebook", *META_TOOLS, *REGISTRY.names()}
        for spec in REGISTRY.specs():
            hints = tools[spec.name].annotations
            assert hints.read_only_hint is (spec.kind is OpKind.READ), spec.name
            assert hints.destructive_hint is spec.destructive and hints.idempotent_hint is spec.idempotent, spec.name
            assert tools[spec.name].input_schema == REGISTRY.args_schema(spec)
        assert tools["pause_campaign"].annotations.read_only_hint is False
        assert "op='help'" in tools["facebook"].description

        listed_campaigns = await session.call_tool("list_campaigns", {"limit": 3})
        assert not listed_campaigns.is_error, _text(listed_campaigns)
        assert "Campaigns in Demo Store (USD)" in _text(listed_campaigns)
        campaigns = listed_campaigns.structured_content["campaigns"]
        assert 0 < len(campaigns) <= 3 and all("id" in c for c in campaigns)

        bad = await session.call_tool("list_campaigns", {"limit": "lots"})
        assert bad.is_error and _text(bad).startswith("ERROR validation") and "Fix:" in _text(bad)
        assert "\n" not in _text(bad)  # the same one line as chat

        helped = await session.call_tool("facebook", {"op": "help"})
        assert not helped.is_error and "list_campaigns" in _text(helped)
        assert "list_campaigns" in helped.structured_content["groups"]["campaigns"]  # by task group
        one = await session.call_tool("facebook", {"op": "help", "args": {"op": "pause_campaign"}})
        assert not one.is_error and one.structured_content["op"] == "pause_campaign"

        via_facebook = await session.call_tool("facebook", {"op": "list_campaigns", "args": {"limit": 1}})
        assert not via_facebook.is_error and len(via_facebook.structured_content["campaigns"]) == 1

        unknown = await session.call_tool("list_campain", {})
        assert unknown.is_error and "list_campaigns" in _text(unknown)
        unknown_op = await session.call_tool("facebook", {"op": "list_campain"})
        assert unknown_op.is_error and "list_campaigns" in _text(unknown_op)

        dry = await session.call_tool("pause_campaign", {"campaign_id": campaigns[0]["id"], "dry_run": True})
        assert not dry.is_error and dry.structured_content["dry_run"] is True


async def test_stdio_single_tool_mode(tmp_path):
    async with stdio_session(tmp_path / "home", "--tools", "single", "--workspace", "solo") as session:
        tools = (await session.list_tools()).tools
        assert [tool.name for tool in tools] == ["facebook"]
        per_op = await session.call_tool("list_campaigns", {})
        assert per_op.is_error and 'op="list_campaigns"' in _text(per_op)
        result = await session.call_tool("facebook", {"op": "list_ad_accounts"})
        assert not result.is_error, _text(result)


# ---------------------------------------------------------------------------------------------------------------
# Streamable HTTP: `/mcp` on `admonster serve`
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
async def server(tmp_path):
    port = free_port()
    settings = sandbox_settings(tmp_path, public_url=f"http://127.0.0.1:{port}")
    async with open_runtime(settings) as runtime:
        stop = asyncio.Event()
        started = asyncio.Event()
        task = asyncio.create_task(serve(runtime, "127.0.0.1", port, stop=stop, ready=lambda _: started.set()))
        await asyncio.wait_for(started.wait(), 10)
        try:
            yield f"http://127.0.0.1:{port}", runtime
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


@asynccontextmanager
async def http_session(url: str, key: str | None):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with create_mcp_http_client(headers=headers) as client:
        async with streamable_http_client(f"{url}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await asyncio.wait_for(session.initialize(), TIMEOUT)
                yield session


async def test_http_lists_and_calls_tools_per_workspace(server):
    url, runtime = server
    acme = await runtime.store.ensure_workspace("acme")
    await runtime.store.set_setting(acme.id, MCP_SETTING, {"toolsets": ["all"]})  # every op as a tool
    key = await runtime.store.create_api_key(acme.id)
    other = await runtime.store.ensure_workspace("beta")
    await runtime.store.set_setting(other.id, SANDBOX_AUTOCONNECT, False)
    other_key = await runtime.store.create_api_key(other.id)

    async with http_session(url, key) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == {"facebook", *META_TOOLS, *REGISTRY.names()}
        assert tools["list_campaigns"].annotations.read_only_hint is True
        listed = await session.call_tool("list_campaigns", {"limit": 2})
        assert not listed.is_error, _text(listed)
        assert "Campaigns in Demo Store (USD)" in _text(listed) and len(listed.structured_content["campaigns"]) <= 2
        bad = await session.call_tool("list_campaigns", {"limit": 0})
        assert bad.is_error and _text(bad).startswith("ERROR validation")
        helped = await session.call_tool("facebook", {"op": "help"})
        assert not helped.is_error and "pause_campaign" in _text(helped)

    # The other workspace's key reaches its own (unconnected) session, never acme's.
    async with http_session(url, other_key) as session:
        refused = await session.call_tool("list_campaigns", {})
        assert refused.is_error and _text(refused).startswith("ERROR auth: Facebook is not connected")
        status = await session.call_tool("facebook", {"op": "token_status"})  # beta lists the default tools
        assert status.structured_content["connected"] is False
    assert await runtime.store.load_token(other.id) is None


@pytest.mark.parametrize("key", [None, "", "amk_not-a-real-key"])
async def test_http_needs_a_workspace_key(server, key):
    url, _ = server
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/mcp", json=body, headers={**headers, "Accept": "application/json, text/event-stream"}) as resp:
            assert resp.status == 401
            answer = await resp.json()
            assert answer["text"].startswith("ERROR auth:") and "Fix:" in answer["text"]
    with pytest.raises(BaseException):  # the SDK client cannot even initialize
        async with http_session(url, key) as session:
            await session.list_tools()


async def test_http_raw_requests_are_answered_not_crashed(server):
    url, runtime = server
    key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("raw")).id)
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/mcp", headers=headers) as resp:  # stateless: no standalone stream
            assert resp.status == 405 and resp.headers["Allow"] == "POST"
        async with http.post(f"{url}/mcp", data=b"{not json", headers=headers) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == -32700
        call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "facebook", "arguments": {"op": "list_campaigns", "args": "{broken"}}}
        async with http.post(f"{url}/mcp", json=call, headers=headers) as resp:
            answer = await resp.json()
            assert resp.status == 200 and answer["id"] == 7 and answer["result"]["isError"] is True
            assert answer["result"]["content"][0]["text"].startswith("ERROR validation")

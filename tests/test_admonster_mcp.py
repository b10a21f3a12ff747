"""The MCP server with the official SDK's own clients: `admonster mcp` as a real stdio subprocess, and `/mcp` on a
real `admonster serve` (streamable HTTP) with workspace API keys. Nothing of ours is mocked."""
from __future__ import annotations

import asyncio
import base64
import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from admonster_mcp import build_tools
from admonster_tools import MCP_SETTING, META_TOOLS, OUTPUT_SCHEMA
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


# ---------------------------------------------------------------------------------------------------------------
# Progress, cancellation, resources, prompts (issue 20, items 4 and 5)
# ---------------------------------------------------------------------------------------------------------------


def _mp4(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
        handle.truncate(size)
    return path


def _png(path: Path) -> Path:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    width = height = 600
    rows = b"".join(b"\x00" + bytes((i + y) % 256 for i in range(width * 3)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def _collector():
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    return seen, on_progress


async def test_stdio_progress_during_video_upload_and_launch(tmp_path):
    video = _mp4(tmp_path / "promo.mp4", 9_000_000)
    async with stdio_session(tmp_path / "home", "--toolsets", "all") as session:
        seen, on_progress = _collector()
        uploaded = await asyncio.wait_for(session.call_tool("upload_video", {"source": str(video), "title": "Promo", "wait": False},
                                                            progress_callback=on_progress), TIMEOUT)
        assert not uploaded.is_error, _text(uploaded)
        assert uploaded.structured_content["chunks"] >= 2
        uploads = [s for s in seen if s[2] and s[2].startswith("uploading")]
        assert len(uploads) >= 3, seen  # the start, then one per chunk
        assert uploads[-1][2].endswith("9.0 of 9.0 MB") and uploads[-1][0] == uploads[-1][1]
        progress = [p for p, _, _ in seen]
        assert progress == sorted(set(progress)), "MCP progress must increase with each notification"

        seen, on_progress = _collector()
        launch = {"campaign": {"name": "Progress", "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000},
                  "adset": {"targeting": {"geo_locations": {"countries": ["US"]}}},
                  "creatives": [{"kind": "image", "image": str(_png(tmp_path / "ad.png")), "message": "Sale",
                                 "link": "https://shop.example.com", "headline": "Sale", "call_to_action": "SHOP_NOW"}]}
        launched = await asyncio.wait_for(session.call_tool("launch_campaign", launch, progress_callback=on_progress), TIMEOUT)
        assert not launched.is_error, _text(launched)
        steps = [m for _, _, m in seen if m and m.startswith("launch steps")]
        # campaign, ad set, the image, the creative, the ad: five steps, each reported as it is done
        assert steps == [f"launch steps: {n} of 5" for n in range(6)], seen
        # the image's upload inside its step moves progress within that step: 2 steps done + 0.999 of 5
        image = [(p, t, m) for p, t, m in seen if m and m.startswith("uploading image ad.png")]
        size = (tmp_path / "ad.png").stat().st_size
        assert image == [(2.999, 5, f"uploading image ad.png: {size} of {size}")], seen
        assert all(t == 5 for _, t, _ in seen)
        progress = [p for p, _, _ in seen]
        assert progress == sorted(set(progress))

        # two calls at once: each gets only its own progress
        (first, on_first), (second, on_second) = _collector(), _collector()
        both = await asyncio.wait_for(asyncio.gather(
            session.call_tool("upload_video", {"source": str(_mp4(tmp_path / "one.mp4", 9_000_000)), "wait": False},
                              progress_callback=on_first),
            session.call_tool("upload_video", {"source": str(_mp4(tmp_path / "two.mp4", 9_000_000)), "wait": False},
                              progress_callback=on_second)), TIMEOUT)
        assert not any(result.is_error for result in both)
        assert len(first) >= 3 and all("one.mp4" in m for _, _, m in first), first
        assert len(second) >= 3 and all("two.mp4" in m for _, _, m in second), second

        # a call without a progress token gets no notifications, and the same answer
        seen, _ = _collector()
        quiet = await session.call_tool("upload_video", {"source": str(video), "title": "Again", "wait": False})
        assert not quiet.is_error and seen == []


async def test_stdio_cancelled_upload_stays_pending_and_the_next_call_says_so(tmp_path):
    video = _mp4(tmp_path / "big.mp4", 60_000_000)
    async with stdio_session(tmp_path / "home", "--toolsets", "all") as session:
        started = asyncio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if message and message.startswith("uploading") and progress > 0:
                started.set()

        call = asyncio.create_task(session.call_tool("upload_video", {"source": str(video), "title": "Big"},
                                                     progress_callback=on_progress))
        await asyncio.wait_for(started.wait(), TIMEOUT)
        call.cancel()  # the SDK client sends notifications/cancelled for the request
        with pytest.raises(asyncio.CancelledError):
            await call

        audit = await asyncio.wait_for(session.call_tool("audit_log", {"limit": 5}), TIMEOUT)
        assert not audit.is_error, _text(audit)
        entries = [e for e in audit.structured_content["entries"] if e["op"] == "upload_video"]
        assert len(entries) == 1 and entries[0]["outcome"] == "pending", audit.structured_content
        said = audit.structured_content["cancelled_calls"]
        assert len(said) == 1 and f"write #{entries[0]['id']} (upload_video) had started and is recorded as pending" in said[0]
        assert f"reconcile with audit_id={entries[0]['id']}" in _text(audit)
        again = await session.call_tool("audit_log", {"limit": 1})
        assert "cancelled_calls" not in again.structured_content  # said once


async def test_stdio_resources_and_prompts(tmp_path):
    home = tmp_path / "home"
    async with stdio_session(home, "--toolsets", "all") as session:
        listed = {str(r.uri): r for r in (await session.list_resources()).resources}
        assert {"admonster://audit", "admonster://ops", "admonster://fidelity"} <= set(listed)
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["admonster://files/{id}/{name}"]
        ops = (await session.read_resource("admonster://ops")).contents[0]
        assert ops.mime_type == "text/markdown" and ops.text == REGISTRY.op_table_markdown()
        from fb_sandbox.rules import fidelity_markdown

        assert (await session.read_resource("admonster://fidelity")).contents[0].text == fidelity_markdown()

        chart = await asyncio.wait_for(session.call_tool("chart_insights", {"date_preset": "last_30d"}), TIMEOUT)
        assert not chart.is_error, _text(chart)
        links = [block for block in chart.content if block.type == "resource_link"]
        assert len(links) == 1 and links[0].mime_type == "image/png" and str(links[0].uri).startswith("admonster://files/")
        assert str(links[0].uri) in _text(chart)
        on_disk = next(home.rglob(links[0].name)).read_bytes()
        images = [block for block in chart.content if block.type == "image"]
        assert len(on_disk) > 1000 and base64.b64decode(images[0].data) == on_disk  # small PNG: inline too
        read = (await session.read_resource(str(links[0].uri))).contents[0]
        assert read.mime_type == "image/png" and base64.b64decode(read.blob) == on_disk
        assert str(links[0].uri) in {str(r.uri) for r in (await session.list_resources()).resources}
        with pytest.raises(Exception, match="No resource"):
            await session.read_resource("admonster://files/not-an-id/chart.png")

        audit = json.loads((await session.read_resource("admonster://audit")).contents[0].text)
        assert "entries" in audit

        prompts = {p.name: p for p in (await session.list_prompts()).prompts}
        assert set(prompts) == {"weekly_review", "launch_from_brief", "find_waste"}
        assert [a.name for a in prompts["launch_from_brief"].arguments if a.required] == ["brief"]
        brief = await session.get_prompt("launch_from_brief", {"brief": "Summer sale, US women 25-45, $50 a day"})
        text = brief.messages[0].content.text
        assert "Summer sale, US women 25-45" in text and "launch_campaign" in text and "dry_run" in text
        from admonster_mcp import PROMPTS

        for prompt in PROMPTS.values():  # every op a prompt names exists
            assert set(prompt.ops) <= set(REGISTRY.names()), prompt.name
        with pytest.raises(Exception, match="needs brief"):
            await session.get_prompt("launch_from_brief", {})
        with pytest.raises(Exception, match="Unknown prompt"):
            await session.get_prompt("make_money", {})


async def test_http_chart_resource_is_the_workspace_own(server):
    url, runtime = server
    key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("acme")).id)
    other_key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("beta")).id)
    async with http_session(url, key) as session:
        # /mcp lists the default core tools: an op of another toolset runs through the facebook tool
        chart = await session.call_tool("facebook", {"op": "chart_insights",
                                                     "args": {"date_preset": "last_30d", "out_dir": "out"}})
        assert not chart.is_error, _text(chart)
        link = next(block for block in chart.content if block.type == "resource_link")
        uri = str(link.uri)
        assert str(runtime.settings.home) not in json.dumps(chart.model_dump(mode="json"))  # never a server path
        read = (await session.read_resource(uri)).contents[0]
        on_disk = next(Path(runtime.settings.home).rglob(link.name)).read_bytes()
        assert base64.b64decode(read.blob) == on_disk
    async with http_session(url, other_key) as session:
        with pytest.raises(Exception, match="No resource"):
            await session.read_resource(uri)
        assert uri not in {str(r.uri) for r in (await session.list_resources()).resources}


async def test_http_progress_reaches_the_caller(server, tmp_path):
    """Over stateless HTTP a call asking for progress is answered as an SSE stream, which carries the notifications."""
    url, runtime = server
    key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("acme")).id)
    data = _mp4(tmp_path / "clip.mp4", 9_000_000).read_bytes()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/v1/files", params={"name": "clip.mp4"}, data=data,
                             headers={"Authorization": f"Bearer {key}"}) as resp:
            name = (await resp.json())["file"]
    async with http_session(url, key) as session:
        seen, on_progress = _collector()
        uploaded = await session.call_tool("facebook", {"op": "upload_video", "args": {"source": name, "wait": False}},
                                           progress_callback=on_progress)
        assert not uploaded.is_error, _text(uploaded)
        assert len(seen) >= 3 and seen[-1][:2] == (9_000_000, 9_000_000) and seen[-1][2].endswith("9.0 of 9.0 MB")
        assert [p for p, _, _ in seen] == sorted({p for p, _, _ in seen})
        plain = await session.call_tool("list_campaigns", {"limit": 1})  # without a token: the plain JSON answer
        assert not plain.is_error

"""The MCP server with the official SDK's own clients: `admonster mcp` as a real stdio subprocess, and `/mcp` on a
real `admonster serve` (streamable HTTP) with workspace API keys. Nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from mcp.client.auth.utils import (
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
)
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

import admonster_mcp
from admonster_mcp import build_tools, resource_metadata_url
from admonster_runtime import SANDBOX_AUTOCONNECT
from admonster_tools import MCP_SETTING, META_TOOLS
from fb_utils import ErrorData, OpKind
from fi_facebook import REGISTRY
from testkit import SANDBOX_START_ENV, running_server

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


@asynccontextmanager
async def stdio_session(home: Path, *args: str, message_handler=None):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "admonster_bot", "mcp", *args],
        env={**SANDBOX_START_ENV, "ADMONSTER_HOME": str(home)},
        cwd=str(ROOT),
    )
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
        assert tool.input_schema == REGISTRY.args_schema(spec) and tool.output_schema == REGISTRY.result_schema(spec)
        assert tool.annotations.read_only_hint is (spec.kind is OpKind.READ)
        assert (
            tool.annotations.destructive_hint is spec.destructive
            and tool.annotations.idempotent_hint is spec.idempotent
        )
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

        # Typed results (issue 20, item 3): what each tool answers validates against the outputSchema it listed (the
        # client checked too), and an error's structured content is the error model.
        one_campaign = await session.call_tool("get_campaign", {"campaign_id": campaigns[0]["id"]})
        for name, answer in (
            ("list_campaigns", listed_campaigns),
            ("pause_campaign", dry),
            ("get_campaign", one_campaign),
        ):
            assert not answer.is_error and tools[name].output_schema == REGISTRY.result_schema(REGISTRY.require(name))
            Draft202012Validator(tools[name].output_schema).validate(answer.structured_content)
        assert one_campaign.structured_content["campaign"]["id"] == campaigns[0]["id"]
        for failed in (bad, unknown, unknown_op):
            error = ErrorData.model_validate(failed.structured_content, strict=True)
            assert error.error == "validation" and error.fix and error.retryable is False
        assert ErrorData.model_validate(bad.structured_content).blame_field == "limit"


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
    async with running_server(tmp_path) as served:
        yield served


@asynccontextmanager
async def http_session(url: str, key: str | None, *, message_handler=None):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with create_mcp_http_client(headers=headers) as client:
        async with streamable_http_client(f"{url}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write, message_handler=message_handler) as session:
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


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.parametrize("key", [None, "", "amk_not-a-real-key"])
async def test_http_needs_a_workspace_key(server, key):
    url, runtime = server
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/mcp", json=INITIALIZE, headers={**headers, **ACCEPT}) as resp:
            assert resp.status == 401
            answer = await resp.json()
            assert answer["text"].startswith("ERROR auth:") and "Fix:" in answer["text"]
            assert answer["error"]["message"] == answer["text"]  # also a JSON-RPC error: MCP clients show the line
            # RFC 9728 5.1: the 401 names the protected-resource metadata; an error code only for a key presented
            challenge = resp.headers["WWW-Authenticate"]
            assert f'resource_metadata="{resource_metadata_url(runtime.settings)}"' in challenge
            assert ('error="invalid_token"' in challenge) is bool(key)
    with pytest.raises(BaseException):  # noqa: B017  the SDK client cannot even initialize (its error type varies)
        async with http_session(url, key) as session:
            await session.list_tools()


async def _initialize(http: aiohttp.ClientSession, url: str, key: str, **headers: str) -> tuple[int, str | None]:
    """A raw initialize (and the initialized notification): the status and the session id it opened."""
    auth = {"Authorization": f"Bearer {key}", **ACCEPT, **headers}
    async with http.post(f"{url}/mcp", json=INITIALIZE, headers=auth) as resp:
        await resp.read()
        session_id = resp.headers.get("Mcp-Session-Id")
        status = resp.status
    if session_id:
        async with http.post(
            f"{url}/mcp",
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={**auth, "Mcp-Session-Id": session_id},
        ) as resp:
            assert resp.status == 202
    return status, session_id


async def _rpc(
    http: aiohttp.ClientSession, url: str, key: str, session_id: str, method: str, params: dict | None = None
) -> tuple[int, dict | str]:
    """One JSON-RPC request in a session: the status and the answer (a refusal's JSON, or the last message of the
    SSE stream a session answers with)."""
    headers = {"Authorization": f"Bearer {key}", **ACCEPT, "Mcp-Session-Id": session_id}
    message = {"jsonrpc": "2.0", "id": 2, "method": method, **({"params": params} if params is not None else {})}
    async with http.post(f"{url}/mcp", json=message, headers=headers) as resp:
        body = await resp.text()
        if resp.content_type == "application/json":
            return resp.status, json.loads(body)
        data = [line[5:] for line in body.splitlines() if line.startswith("data:")]
        return resp.status, json.loads(data[-1]) if data else body


async def _ping(http: aiohttp.ClientSession, url: str, key: str, session_id: str) -> tuple[int, dict | str]:
    return await _rpc(http, url, key, session_id, "ping")


async def test_http_session_lifecycle_and_binding(server, caplog):
    """initialize opens a session; GET opens its event stream; DELETE ends it; its id then answers 404, like an unknown
    one and like another workspace's (no hint of which); a revoked key is refused; ids are never logged whole."""
    caplog.set_level(logging.INFO, logger="mcp.server")
    url, runtime = server
    acme = await runtime.store.ensure_workspace("acme")
    key, second_key = await runtime.store.create_api_key(acme.id), await runtime.store.create_api_key(acme.id)
    other_key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("beta")).id)
    async with aiohttp.ClientSession() as http:
        status, session_id = await _initialize(http, url, key)
        assert status == 200 and session_id
        assert (await _ping(http, url, key, session_id))[0] == 200
        assert (await _ping(http, url, second_key, session_id))[0] == 200  # bound to the workspace, not to one key

        unknown = await _ping(http, url, key, "0" * 32)
        stolen = await _ping(http, url, other_key, session_id)
        assert unknown == stolen and stolen[0] == 404
        text = stolen[1]["text"]
        assert (
            text.startswith("ERROR not_found: No MCP session")
            and "Fix: Start a new session" in text
            and "\n" not in text
        )
        for method in ("GET", "DELETE"):  # every method of the session is bound alike
            async with http.request(
                method,
                f"{url}/mcp",
                headers={"Authorization": f"Bearer {other_key}", **ACCEPT, "Mcp-Session-Id": session_id},
            ) as resp:
                assert resp.status == 404 and (await resp.json())["text"] == text

        # the standalone stream: GET with the session id is an SSE stream (one per session)
        auth = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream", "Mcp-Session-Id": session_id}
        async with http.get(f"{url}/mcp", headers=auth) as stream:
            assert stream.status == 200 and stream.content_type == "text/event-stream"
            # DELETE ends the session, and with it the open stream
            async with http.delete(f"{url}/mcp", headers={**auth, "Authorization": f"Bearer {key}"}) as resp:
                assert resp.status == 200
            assert await asyncio.wait_for(stream.read(), TIMEOUT) == b""
        assert await _ping(http, url, key, session_id) == unknown  # ended: as unknown as any

        # a revoked key cannot use its workspace's session
        status, session_id = await _initialize(http, url, second_key)
        [second] = [k for k in await runtime.store.list_api_keys(acme.id)][1:]
        assert await runtime.store.revoke_api_key(acme.id, second.key_id)
        refused = await _ping(http, url, second_key, session_id)
        assert refused[0] == 401 and refused[1]["text"].startswith("ERROR auth: Unknown API key")
        assert (await _ping(http, url, key, session_id))[0] == 200

        # without a session id: GET and DELETE have nothing to address
        for method in ("GET", "DELETE"):
            async with http.request(method, f"{url}/mcp", headers={"Authorization": f"Bearer {key}", **ACCEPT}) as resp:
                assert resp.status == 400 and "needs the Mcp-Session-Id" in (await resp.json())["text"]
    logged = caplog.text
    assert session_id[:8] + "…" in logged  # the SDK logged the session (created), shortened
    assert session_id not in logged and not re.search(r"\b[0-9a-f]{32}\b", logged)


async def test_http_setting_change_reaches_an_open_session_on_its_stream(server):
    """The operator changes the workspace's MCP setting while a session is open: the session's GET stream carries
    notifications/tools/list_changed (a server-initiated message), and its next tools/list shows the new list."""
    url, runtime = server
    workspace = await runtime.store.ensure_workspace("acme")
    key = await runtime.store.create_api_key(workspace.id)
    async with aiohttp.ClientSession() as http:
        _, session_id = await _initialize(http, url, key)
        _, listed = await _rpc(http, url, key, session_id, "tools/list")
        core = {spec.name for spec in REGISTRY.specs() if spec.core}
        assert {tool["name"] for tool in listed["result"]["tools"]} == {"facebook", *META_TOOLS, *core}
        async with http.get(
            f"{url}/mcp",
            headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream", "Mcp-Session-Id": session_id},
        ) as stream:
            assert stream.status == 200
            _, found = await _rpc(
                http, url, key, session_id, "tools/call", {"name": "find_ops", "arguments": {"query": "pause"}}
            )
            assert found["result"]["isError"] is False  # nothing changed: nothing said
            await runtime.store.set_setting(workspace.id, MCP_SETTING, {"toolsets": ["automation"]})
            _, found = await _rpc(
                http, url, key, session_id, "tools/call", {"name": "find_ops", "arguments": {"query": "pause"}}
            )
            assert found["result"]["isError"] is False

            async def next_message() -> dict:
                async for line in stream.content:
                    if line.startswith(b"data:"):
                        return json.loads(line[5:])
                raise AssertionError("the stream ended")

            assert await asyncio.wait_for(next_message(), TIMEOUT) == {
                "jsonrpc": "2.0",
                "method": "notifications/tools/list_changed",
            }
        _, listed = await _rpc(http, url, key, session_id, "tools/list")
        automation = {spec.name for spec in REGISTRY.toolsets()["automation"]}
        assert {tool["name"] for tool in listed["result"]["tools"]} == {"facebook", *META_TOOLS, *automation}


async def test_http_raw_requests_are_answered_not_crashed(server):
    url, runtime = server
    key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("raw")).id)
    headers = {"Authorization": f"Bearer {key}", **ACCEPT}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/mcp", data=b"{not json", headers=headers) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == -32700
        # a POST without a session that is not initialize: answered without one (one JSON answer), as one-shot callers
        # (scripts, curl) expect
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "facebook", "arguments": {"op": "list_campaigns", "args": "{broken"}},
        }
        async with http.post(f"{url}/mcp", json=call, headers=headers) as resp:
            answer = await resp.json()
            assert resp.status == 200 and answer["id"] == 7 and answer["result"]["isError"] is True
            assert answer["result"]["content"][0]["text"].startswith("ERROR validation")
        enable = {
            "jsonrpc": "2.0",
            "id": 8,
            "method": "tools/call",
            "params": {"name": "enable_toolset", "arguments": {"name": "automation"}},
        }
        async with http.post(f"{url}/mcp", json=enable, headers=headers) as resp:
            result = (await resp.json())["result"]
            assert result["structuredContent"]["listed"] is False and "no MCP session" in result["content"][0]["text"]


async def test_http_origin_metadata_and_public_url(tmp_path):
    """Protected-resource metadata (RFC 9728) at both well-known URLs, named from ADMONSTER_PUBLIC_URL (here not the
    address the server listens on, as behind a proxy); an Origin other than that URL's is refused 403 (DNS rebinding)."""
    public = "https://ads.example.com"
    async with running_server(tmp_path, public_url=public) as (url, runtime):
        key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("acme")).id)
        async with aiohttp.ClientSession() as http:
            for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
                async with http.get(url + path) as resp:  # public: no key
                    assert resp.status == 200
                    document = await resp.json()
                assert document == {
                    "resource": f"{public}/mcp",
                    "bearer_methods_supported": ["header"],
                    "resource_name": document["resource_name"],
                    "resource_documentation": f"{public}/console#login",
                }
                assert "API key" in document["resource_name"]
            async with create_mcp_http_client() as client:  # the SDK's own OAuth discovery, from our 401
                refused = await client.post(f"{url}/mcp", json=INITIALIZE, headers=ACCEPT)
            assert refused.status_code == 401
            found = extract_resource_metadata_from_www_auth(refused)
            assert found == f"{public}/.well-known/oauth-protected-resource/mcp"
            assert build_protected_resource_metadata_discovery_urls(found, f"{public}/mcp")[:2] == [
                found,
                f"{public}/.well-known/oauth-protected-resource/mcp",
            ]

            for origin in ("http://evil.example", url, "null"):  # url: where it listens, not its public URL
                status, session_id = await _initialize(http, url, key, Origin=origin)
                assert status == 403 and session_id is None, origin
            async with http.post(
                f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Origin": "http://evil.example"}
            ) as resp:
                assert resp.status == 403  # before the key: a page learns nothing about keys either
                assert (await resp.json())["text"].startswith("ERROR permission: Requests from this web origin")
            assert (await _initialize(http, url, key, Origin=public))[0] == 200
            assert (await _initialize(http, url, key, Origin="https://ADS.example.com:443"))[
                0
            ] == 200  # the same origin
            assert (await _initialize(http, url, key))[0] == 200  # programs send no Origin


async def test_http_sessions_expire_are_capped_and_end_with_the_server(tmp_path, monkeypatch):
    monkeypatch.setattr(admonster_mcp, "SESSION_IDLE_SECONDS", 1.5)
    monkeypatch.setattr(admonster_mcp, "MAX_SESSIONS_PER_WORKSPACE", 2)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        async with running_server(tmp_path) as (url, runtime):
            key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("acme")).id)
            other_key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("beta")).id)
            first, second = [(await _initialize(http, url, key))[1] for _ in range(2)]
            async with http.post(
                f"{url}/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {key}", **ACCEPT}
            ) as resp:
                assert resp.status == 429  # this workspace's cap
                assert "2 MCP sessions open" in (await resp.json())["text"]
            assert (await _initialize(http, url, other_key))[0] == 200  # the other workspace is not held up
            await asyncio.sleep(1)
            assert (await _ping(http, url, key, first))[0] == 200  # a request restarts the idle countdown
            await asyncio.sleep(1)
            assert (await _ping(http, url, key, second))[0] == 404  # idle too long: ended, the client initializes again
            assert (await _ping(http, url, key, first))[0] == 200
            await asyncio.sleep(2.5)
            assert (await _ping(http, url, key, first))[0] == 404
            status, live = await _initialize(http, url, key)
            assert status == 200
            # a GET stream open when the server stops ends, and the server does not wait for it
            stream = await http.get(
                f"{url}/mcp",
                headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream", "Mcp-Session-Id": live},
            )
            assert stream.status == 200
            reading = asyncio.create_task(stream.read())
            await asyncio.sleep(2.5)  # an open stream holds its session past the idle timeout
            assert not reading.done()
            assert (await _ping(http, url, key, live))[0] == 200
            stopping = loop.time()
        assert loop.time() - stopping < 10  # running_server stopped the server and waited for it here
        assert await asyncio.wait_for(reading, 5) == b""
        stream.release()


# ---------------------------------------------------------------------------------------------------------------
# Progress, cancellation, resources, prompts (issue 20, items 4 and 5): one check per feature, run over stdio and HTTP
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
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


def _collector():
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    return seen, on_progress


# What a tool gets as a file: stdio, the person's own path; HTTP, the name POST /v1/files gave the upload.
FileSource = Callable[[Path], Awaitable[str]]


async def local_file(path: Path) -> str:
    return str(path)


def uploaded_file(url: str, key: str) -> FileSource:
    async def upload(path: Path) -> str:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{url}/v1/files",
                params={"name": path.name},
                data=path.read_bytes(),
                headers={"Authorization": f"Bearer {key}"},
            ) as resp:
                assert resp.status == 200, await resp.text()
                return (await resp.json())["file"]

    return upload


async def check_progress_during_upload_and_launch(session: ClientSession, folder: Path, source: FileSource) -> None:
    """upload_video and launch_campaign report progress (increasing, per call, none without a token)."""
    video = await source(_mp4(folder / "promo.mp4", 9_000_000))
    seen, on_progress = _collector()
    uploaded = await asyncio.wait_for(
        session.call_tool(
            "upload_video", {"source": video, "title": "Promo", "wait": False}, progress_callback=on_progress
        ),
        TIMEOUT,
    )
    assert not uploaded.is_error, _text(uploaded)
    assert uploaded.structured_content["chunks"] >= 2
    uploads = [s for s in seen if s[2] and s[2].startswith("uploading")]
    assert len(uploads) >= 3, seen  # the start, then one per chunk
    assert uploads[-1][2].endswith("9.0 of 9.0 MB") and uploads[-1][0] == uploads[-1][1]
    progress = [p for p, _, _ in seen]
    assert progress == sorted(set(progress)), "MCP progress must increase with each notification"

    seen, on_progress = _collector()
    png = _png(folder / "ad.png")
    image = await source(png)
    launch = {
        "campaign": {"name": "Progress", "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000},
        "adset": {"targeting": {"geo_locations": {"countries": ["US"]}}},
        "creatives": [
            {
                "kind": "image",
                "image": image,
                "message": "Sale",
                "link": "https://shop.example.com",
                "headline": "Sale",
                "call_to_action": "SHOP_NOW",
            }
        ],
    }
    launched = await asyncio.wait_for(
        session.call_tool("launch_campaign", launch, progress_callback=on_progress), TIMEOUT
    )
    assert not launched.is_error, _text(launched)
    steps = [m for _, _, m in seen if m and m.startswith("launch steps")]
    # campaign, ad set, the image, the creative, the ad: five steps, each reported as it is done
    assert steps == [f"launch steps: {n} of 5" for n in range(6)], seen
    # the image's upload inside its step moves progress within that step: 2 steps done + 0.999 of 5
    size = png.stat().st_size
    uploading = [(p, t, m) for p, t, m in seen if m and m.startswith("uploading image")]
    assert uploading == [(2.999, 5, f"uploading image {Path(image).name}: {size} of {size}")], seen
    assert all(t == 5 for _, t, _ in seen)
    progress = [p for p, _, _ in seen]
    assert progress == sorted(set(progress))

    # two calls at once: each gets only its own progress
    one, two = await source(_mp4(folder / "one.mp4", 9_000_000)), await source(_mp4(folder / "two.mp4", 9_000_000))
    (first, on_first), (second, on_second) = _collector(), _collector()
    both = await asyncio.wait_for(
        asyncio.gather(
            session.call_tool("upload_video", {"source": one, "wait": False}, progress_callback=on_first),
            session.call_tool("upload_video", {"source": two, "wait": False}, progress_callback=on_second),
        ),
        TIMEOUT,
    )
    assert not any(result.is_error for result in both)
    assert len(first) >= 3 and all("one.mp4" in m for _, _, m in first), first
    assert len(second) >= 3 and all("two.mp4" in m for _, _, m in second), second

    # a call without a progress token gets no notifications, and the same answer
    seen, _ = _collector()
    quiet = await session.call_tool("upload_video", {"source": video, "title": "Again", "wait": False})
    assert not quiet.is_error and seen == []


async def check_cancelled_upload(session: ClientSession, folder: Path, source: FileSource) -> None:
    """A cancelled upload stops where it stands, stays pending in the audit log, and the next call says so (once)."""
    video = await source(_mp4(folder / "big.mp4", 60_000_000))
    earlier = (await session.call_tool("audit_log", {"limit": 1})).structured_content["entries"]
    before = max((entry["id"] for entry in earlier), default=0)  # what the session wrote before this call
    started = asyncio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message and message.startswith("uploading") and progress > 0:
            started.set()

    call = asyncio.create_task(
        session.call_tool("upload_video", {"source": video, "title": "Big"}, progress_callback=on_progress)
    )
    await asyncio.wait_for(started.wait(), TIMEOUT)
    call.cancel()  # the SDK client sends notifications/cancelled for the request
    with pytest.raises(asyncio.CancelledError):
        await call

    audit = await asyncio.wait_for(session.call_tool("audit_log", {"limit": 5}), TIMEOUT)
    assert not audit.is_error, _text(audit)
    entries = [e for e in audit.structured_content["entries"] if e["op"] == "upload_video" and e["id"] > before]
    assert len(entries) == 1 and entries[0]["outcome"] == "pending", audit.structured_content
    said = audit.structured_content["cancelled_calls"]
    assert (
        len(said) == 1 and f"write #{entries[0]['id']} (upload_video) had started and is recorded as pending" in said[0]
    )
    assert f"reconcile with audit_id={entries[0]['id']}" in _text(audit)
    again = await session.call_tool("audit_log", {"limit": 1})
    assert "cancelled_calls" not in again.structured_content  # said once


async def check_chart_resource(session: ClientSession, home: Path) -> tuple[str, object]:
    """chart_insights' PNG is a resource of the workspace (a link, inline when small), read back with resources/read."""
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
    return str(links[0].uri), chart


async def test_stdio_progress_during_video_upload_and_launch(tmp_path):
    async with stdio_session(tmp_path / "home", "--toolsets", "all") as session:
        await check_progress_during_upload_and_launch(session, tmp_path, local_file)


async def test_stdio_cancelled_upload_stays_pending_and_the_next_call_says_so(tmp_path):
    async with stdio_session(tmp_path / "home", "--toolsets", "all") as session:
        await check_cancelled_upload(session, tmp_path, local_file)


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

        await check_chart_resource(session, home)

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


async def test_http_progress_cancellation_and_chart_resource(server, tmp_path):
    """Issue 20's done-when over HTTP with the official client: progress during a video upload and a launch, a
    cancelled call, a chart read as a resource (the same checks as stdio); another workspace cannot read that chart."""
    url, runtime = server
    acme = await runtime.store.ensure_workspace("acme")
    await runtime.store.set_setting(acme.id, MCP_SETTING, {"toolsets": ["all"]})
    key = await runtime.store.create_api_key(acme.id)
    other_key = await runtime.store.create_api_key((await runtime.store.ensure_workspace("beta")).id)
    async with http_session(url, key) as session:
        await check_progress_during_upload_and_launch(session, tmp_path, uploaded_file(url, key))
        await check_cancelled_upload(session, tmp_path, uploaded_file(url, key))
        uri, chart = await check_chart_resource(session, Path(runtime.settings.home))
        assert str(runtime.settings.home) not in json.dumps(chart.model_dump(mode="json"))  # never a server path
    async with http_session(url, other_key) as session:
        with pytest.raises(Exception, match="No resource"):
            await session.read_resource(uri)
        assert uri not in {str(r.uri) for r in (await session.list_resources()).resources}

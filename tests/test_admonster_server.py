"""`admonster serve` over real HTTP: API keys, the tool endpoint, workspace isolation tried as an attacker would,
the OAuth callback route, and a clean SIGTERM shutdown that keeps the outbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from admonster_runtime import SANDBOX_AUTOCONNECT
from fb_utils import DEFAULT_API_VERSION, workspace_files_dir
from testkit import SANDBOX_START_ENV, free_port, running_server

ROOT = Path(__file__).resolve().parent.parent


class Server:
    def __init__(self, url: str, runtime) -> None:
        self.url, self.runtime = url, runtime

    async def tool(self, key: str | None, op, args=None, raw: bytes | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        async with aiohttp.ClientSession() as session:
            if raw is not None:
                request = session.post(f"{self.url}/v1/tools/facebook", data=raw, headers=headers)
            else:
                request = session.post(f"{self.url}/v1/tools/facebook", json={"op": op, "args": args}, headers=headers)
            async with request as resp:
                return resp.status, await resp.json()


@pytest.fixture
async def server(tmp_path):
    async with running_server(tmp_path) as (url, runtime):
        yield Server(url, runtime)


async def _sandbox(runtime, method: str, path: str, json: dict | None = None) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{runtime.sandbox_url}/__sandbox/{path}", json=json) as resp:
            return await resp.json()


async def _workspace_key(runtime, name: str, autoconnect: bool = True) -> tuple[object, str]:
    workspace = await runtime.store.ensure_workspace(name)
    if not autoconnect:
        await runtime.store.set_setting(workspace.id, SANDBOX_AUTOCONNECT, False)
    return workspace, await runtime.store.create_api_key(workspace.id)


async def test_health_needs_no_key(server):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/healthz") as resp:
            body = await resp.json()
            assert resp.status == 200 and body["mode"] == "SANDBOX"
            assert body["api_version"] == DEFAULT_API_VERSION and "api_version_warning" not in body  # no end date yet


@pytest.mark.parametrize("key", [None, "", "amk_not-a-real-key", "Basic abc", "x" * 5000])
async def test_bad_keys_are_refused(server, key):
    status, body = await server.tool(key, "list_campaigns")
    assert status == 401 and body["text"].startswith("ERROR auth:") and "Fix:" in body["text"]


async def test_tool_call_answers_like_chat(server):
    _, key = await _workspace_key(server.runtime, "acme")
    status, body = await server.tool(key, "list_campaigns", {"limit": 3})
    assert status == 200 and body["ok"], body
    assert "Campaigns in Demo Store (USD)" in body["text"] and len(body["data"]["campaigns"]) <= 3
    status, body = await server.tool(key, None, raw=b"{not json")
    assert status == 400 and body["text"].startswith("ERROR validation")
    status, body = await server.tool(key, "list_campaign")
    assert status == 200 and not body["ok"] and "list_campaigns" in body["text"]


async def test_workspaces_cannot_touch_each_other(server):
    runtime = server.runtime
    _, key_a = await _workspace_key(runtime, "alpha")
    workspace_b, key_b = await _workspace_key(runtime, "beta", autoconnect=False)

    listed = (await server.tool(key_a, "list_campaigns", {"status": ["ACTIVE"]}))[1]
    target = next(c for c in listed["data"]["campaigns"] if c.get("daily_budget"))
    paused = (await server.tool(key_a, "pause_campaign", {"campaign_id": target["id"]}))[1]
    assert paused["ok"], paused
    held = (await server.tool(key_a, "resume_campaign", {"campaign_id": target["id"]}))[1]
    confirmation = held["data"]["confirmation_id"]

    # B has no Facebook connection of its own and cannot borrow A's.
    assert (await server.tool(key_b, "list_campaigns"))[1]["text"].startswith("ERROR auth: Facebook is not connected")
    assert (await server.tool(key_b, "token_status"))[1]["data"]["connected"] is False
    assert await runtime.store.load_token(workspace_b.id) is None

    # Connected as another Facebook user (one with no ad account), B still reaches nothing of A's.
    users = await _sandbox(runtime, "GET", "objects?type=user")
    casey = next(u["id"] for u in users["data"] if u["name"] == "Casey Creative")
    grant = await _sandbox(runtime, "POST", "tokens", {"user": casey})
    await runtime.connector.store_checked_token(workspace_b.id, grant["access_token"], kind="user")
    assert (await server.tool(key_b, "confirm", {"confirm": confirmation}))[1]["text"].startswith(
        "ERROR validation: Confirmation"
    )
    assert "does not exist" in (await server.tool(key_b, "undo", {"audit_id": paused["data"]["audit_id"]}))[1]["text"]
    assert (await server.tool(key_b, "audit_log"))[1]["data"]["entries"] == []
    assert (await server.tool(key_b, "list_confirmations"))[1]["data"]["confirmations"] == []
    stolen = (await server.tool(key_b, "get_campaign", {"campaign_id": target["id"]}))[1]
    assert stolen["text"].startswith("ERROR not_found:")
    foreign = (await server.tool(key_b, "list_campaigns", {"ad_account_id": listed["data"]["ad_account_id"]}))[1]
    assert not foreign["ok"] and foreign["text"].startswith("ERROR")
    assert (await server.tool(key_b, "list_ad_accounts"))[1]["data"]["accounts"] == []

    # A's confirmation still works for A, once.
    done = (await server.tool(key_a, "confirm", {"confirm": confirmation}))[1]
    assert done["ok"], done


async def test_connect_through_the_server_callback(server):
    runtime = server.runtime
    workspace, key = await _workspace_key(runtime, "gamma", autoconnect=False)
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # one browser: the link is bound to it
    async with browser.post(
        f"{server.url}/v1/tools/facebook", json={"op": "connect"}, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        started = await resp.json()
    assert started["ok"], started
    url = started["data"]["url"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["redirect_uri"] == f"{server.url}/oauth/facebook/callback"
    parsed = urllib.parse.urlsplit(url)
    confirm = urllib.parse.urlunsplit(
        parsed._replace(path=parsed.path + "/confirm", query=urllib.parse.urlencode({**query, "decision": "allow"}))
    )
    async with browser as session:
        async with session.get(confirm) as page:  # follows the redirect to our server's callback
            assert page.status == 200 and "Facebook connected" in await page.text()
    assert (await runtime.store.load_token(workspace.id)) is not None
    assert (await server.tool(key, "list_campaigns"))[1]["ok"]


def test_sigterm_shuts_down_cleanly_and_keeps_the_outbox(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    env = {
        **os.environ,
        **SANDBOX_START_ENV,
        "ADMONSTER_HOME": str(home),
        "ADMONSTER_NOTIFY_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hook",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "admonster_bot", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", timeout=10
        ) as page:
            assert json.load(page)["resource"] == f"http://127.0.0.1:{port}/mcp"  # --port, not the default 8787
        workspace_id = asyncio.run(_enqueue(home))  # a message for a webhook that is down
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    with sqlite3.connect(home / "admonster.db") as db:
        rows = db.execute(
            "SELECT status FROM notifications WHERE workspace_id = ? AND channel = 'webhook'", (workspace_id,)
        ).fetchall()
    assert rows and all(status == "pending" for (status,) in rows)


async def _enqueue(home: Path) -> int:
    from admonster_store import Store

    async with await Store.open(home / "admonster.db") as store:
        workspace = await store.ensure_workspace("outbox")
        await store.enqueue_notification(
            workspace.id,
            channel="webhook",
            subject="Test",
            text="kept across shutdown",
            target="http://127.0.0.1:9/hook",
        )
        return workspace.id


async def _chat(server: Server, key: str | None, body) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with aiohttp.ClientSession() as session:
        kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with session.post(f"{server.url}/v1/chat", headers=headers, **kwargs) as resp:
            return resp.status, await resp.json()


async def _thread(server: Server, key: str, thread_id: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{server.url}/v1/threads/{thread_id}", headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            return resp.status, await resp.json()


async def test_http_chat_answers_slash_commands_and_keeps_the_thread(server):
    _, key = await _workspace_key(server.runtime, "talk")
    _, other_key = await _workspace_key(server.runtime, "other-talk")
    assert (await _chat(server, None, {"thread_id": "t1", "message": "/status"}))[0] == 401
    status, body = await _chat(server, key, {"thread_id": "t1", "message": "/status"})
    assert status == 200 and body["ok"], body
    assert "Ad account Demo Store (USD)" in body["reply"]
    assert body["tool_calls"] == [
        {"name": "account_overview", "arguments": {}, "ok": True, "files": [], "file_urls": []}
    ]
    assert body["files"] == [] and body["file_urls"] == []
    free = (await _chat(server, key, {"thread_id": "t1", "message": "how are my ads?"}))[1]
    assert "No LLM is configured" in free["reply"] and free["tool_calls"] == []
    bad = (await _chat(server, key, {"thread_id": "t1", "message": "/pauze 1"}))[1]
    assert not bad["ok"] and bad["reply"].startswith("ERROR validation") and "/pause" in bad["reply"]
    for wrong in ({"message": "/status"}, {"thread_id": "t1"}, {"thread_id": "", "message": "x"}, [1, 2], b"{oops"):
        status, answer = await _chat(server, key, wrong)
        assert status == 400 and answer["text"].startswith("ERROR validation") and "Fix:" in answer["text"]
    status, history = await _thread(server, key, "t1")
    assert status == 200
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["/status"]
    assert "Demo Store" in history["messages"][1]["content"]
    assert (await _thread(server, other_key, "t1"))[1]["messages"] == []  # same thread id, other workspace: nothing


async def test_http_chat_with_an_llm(tmp_path):
    from test_admonster_llm import FakeModel, call, say

    model = await FakeModel().start()
    try:
        async with running_server(tmp_path, llm_base_url=model.url, llm_model="fake-model") as (url, runtime):
            server = Server(url, runtime)
            _, key = await _workspace_key(runtime, "llm")
            model.plan(call("account_overview"), say("Your USD account is active."))
            status, body = await _chat(server, key, {"thread_id": "plan", "message": "How is my account?"})
            assert status == 200 and body["ok"], body
            assert body["reply"] == "Your USD account is active."
            assert [c["name"] for c in body["tool_calls"]] == ["account_overview"] and body["tool_calls"][0]["ok"]
            roles = [m["role"] for m in (await _thread(server, key, "plan"))[1]["messages"]]
            assert roles[0] == "user" and "tool" in roles and roles[-1] == "assistant"
    finally:
        await model.stop()


# ---------------------------------------------------------------------------------------------------------------
# Files ops write (charts, exports, previews): offered to their workspace only
# ---------------------------------------------------------------------------------------------------------------


async def _get(server: Server, key: str | None, path: str) -> tuple[int, dict, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + path, headers=headers) as resp:
            return resp.status, dict(resp.headers), await resp.read()


async def test_op_files_are_served_to_their_workspace_only(server, tmp_path):
    runtime = server.runtime
    workspace, key = await _workspace_key(runtime, "charts")
    _, other_key = await _workspace_key(runtime, "snoop")
    status, body = await server.tool(key, "chart_insights", {"date_preset": "last_30d", "out_dir": "out"})
    assert status == 200 and body["ok"], body
    [name], [url] = body["files"], body["file_urls"]
    assert not Path(name).is_absolute() and str(runtime.settings.home) not in body["text"]  # no server path shown
    path = str(workspace_files_dir(runtime.settings.home, workspace.id) / name)
    assert url.startswith("/v1/files/") and url.endswith("/" + Path(path).name)
    file_id = url.split("/")[3]
    assert len(file_id) >= 30 and key not in url and "amk_" not in url and "token" not in url.lower()

    status, headers, data = await _get(server, key, url)
    assert status == 200 and data == Path(path).read_bytes() and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert headers["Content-Type"] == "image/png" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"].startswith("inline;")

    # Another workspace, no key, an unknown id, a wrong name, path tricks: nothing.
    assert (await _get(server, other_key, url))[0] == 404
    assert (await _get(server, None, url))[0] == 401
    assert (await _get(server, key, f"/v1/files/{'A' * 32}/{Path(path).name}"))[0] == 404
    assert (await _get(server, key, f"/v1/files/{file_id}/other.png"))[0] == 404
    for trick in (
        f"/v1/files/{file_id}/..%2f..%2fpyproject.toml",
        f"/v1/files/{file_id}/%2e%2e",
        f"/v1/files/{file_id}/../../pyproject.toml",
        "/v1/files/../../admonster_server.py",
        f"/v1/files/{file_id}%2f..%2f/{Path(path).name}",
        f"/v1/files/{file_id}/{path.replace('/', '%2f')}",
    ):
        status, _, data = await _get(server, key, trick)
        assert status in (401, 404), trick
        assert b"import" not in data and b"PNG" not in data, trick

    # A CSV export downloads (attachment), as text/csv.
    status, body = await server.tool(key, "export_insights", {"date_preset": "last_7d", "out_dir": "out"})
    assert body["ok"], body
    status, headers, data = await _get(server, key, body["file_urls"][0])
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"].startswith("attachment;")
    assert data == (workspace_files_dir(runtime.settings.home, workspace.id) / body["files"][0]).read_bytes()

    # A file changed on disk after it was offered is not served (whoever changed it).
    Path(path).write_bytes(b"not the chart")
    assert (await _get(server, key, url))[0] == 404


async def test_chat_tool_calls_carry_file_urls(server, tmp_path):
    _, key = await _workspace_key(server.runtime, "chat-charts")
    status, body = await _chat(
        server, key, {"thread_id": "c1", "message": '/tool chart_insights {"out_dir": "chat-out"}'}
    )
    assert status == 200 and body["ok"], body
    [call] = body["tool_calls"]
    assert (
        call["name"] == "chart_insights" and len(call["files"]) == 1 and call["file_urls"][0].startswith("/v1/files/")
    )
    assert body["file_urls"] == call["file_urls"] and body["files"] == call["files"]
    status, headers, data = await _get(server, key, call["file_urls"][0])
    assert status == 200 and headers["Content-Type"] == "image/png" and data[:4] == b"\x89PNG"


async def test_file_shelf_expires_bounds_and_skips_unknown_kinds(tmp_path):
    from admonster_files import FileShelf

    now = [1000.0]
    shelf = FileShelf(ttl=60, limit=2, clock=lambda: now[0])
    png, script = tmp_path / "a.png", tmp_path / "run.sh"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    script.write_text("echo hi")
    assert await shelf.urls(1, [str(script), str(tmp_path / "missing.png"), str(tmp_path)], tmp_path) == [
        None,
        None,
        None,
    ]
    assert (
        await shelf.offer(1, str(png), tmp_path / "elsewhere") is None
    )  # outside the workspace's folder: never offered
    first = await shelf.offer(1, "a.png", tmp_path)
    file_id = first.split("/")[3]
    assert (
        await shelf.find(1, file_id, "a.png", tmp_path) is not None
        and await shelf.find(2, file_id, "a.png", tmp_path) is None
    )
    now[0] += 61
    assert await shelf.find(1, file_id, "a.png", tmp_path) is None  # expired
    ids = [(await shelf.offer(1, str(png), tmp_path)).split("/")[3] for _ in range(3)]
    assert (
        await shelf.find(1, ids[0], "a.png", tmp_path) is None
        and await shelf.find(1, ids[2], "a.png", tmp_path) is not None
    )  # oldest dropped

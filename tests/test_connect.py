"""Connecting Facebook end to end: the OAuth code flow through the sandbox's dialog and our loopback callback
listener, token checks before storing, the token lifecycle and disconnecting — all over real HTTP."""

from __future__ import annotations

import re
import time
import urllib.parse

import aiohttp
import pytest

from admonster_runtime import SANDBOX_AUTOCONNECT, open_runtime
from admonster_server import CallbackListener
from testkit import job_context, sandbox_settings


@pytest.fixture
async def runtime(tmp_path):
    settings = sandbox_settings(tmp_path)
    async with open_runtime(settings) as opened:
        yield opened


@pytest.fixture
async def listener(runtime):
    callback = CallbackListener(runtime, timeout=60)
    runtime.callback_url = callback.url
    yield callback
    await callback.stop()


async def _blank_workspace(runtime, name: str):
    workspace = await runtime.workspace(name)
    await runtime.store.set_setting(workspace.id, SANDBOX_AUTOCONNECT, False)
    return workspace


async def _sandbox(runtime, method: str, path: str, json: dict | None = None) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{runtime.sandbox_url}/__sandbox/{path}", json=json) as resp:
            return await resp.json()


async def _consent(session: aiohttp.ClientSession, dialog_url: str, decision: str = "allow", declined: str = "") -> str:
    """Do what the person does on the sandbox's consent page; returns where Facebook redirects the browser."""
    async with session.get(dialog_url) as page:
        assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        assert "ads_management" in await page.text()
    parsed = urllib.parse.urlsplit(dialog_url)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    query.update({"decision": decision, **({"declined": declined} if declined else {})})
    confirm = urllib.parse.urlunsplit(
        parsed._replace(path=parsed.path + "/confirm", query=urllib.parse.urlencode(query))
    )
    async with session.get(confirm, allow_redirects=False) as redirect:
        assert redirect.status == 302, await redirect.text()
        return redirect.headers["Location"]


async def _start(runtime, workspace) -> str:
    facebook = await runtime.facebook_for(workspace)
    result = await facebook.call("connect")
    assert result.ok, result.text
    assert "valid until" in result.text
    return result.data["url"]


async def test_full_oauth_flow(runtime, listener):
    workspace = await _blank_workspace(runtime, "oauth")
    facebook = await runtime.facebook_for(workspace)
    before = await facebook.call("list_campaigns")
    assert before.text.startswith("ERROR auth: Facebook is not connected") and "/connect" in before.text
    url = await _start(runtime, workspace)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert set(query["scope"].split(",")) >= {"ads_management", "pages_show_list", "instagram_basic"}
    assert query["redirect_uri"] == listener.redirect_uri and query["state"]
    async with aiohttp.ClientSession() as session:
        callback = await _consent(session, url)
        assert callback.startswith(listener.redirect_uri) and "code=" in callback
        async with session.get(callback) as page:
            body = await page.text()
            assert page.status == 200, body
    assert "Facebook connected" in body and "Demo User" in body
    assert listener.succeeded
    stored = await runtime.store.load_token(workspace.id)
    assert stored is not None and stored.kind == "user"
    assert stored.expires_at and 55 < (stored.expires_at - await runtime.sandbox_now()).days <= 60  # long-lived
    facebook = await runtime.facebook_for(workspace)
    status = await facebook.call("token_status")
    assert status.ok and "valid" in status.text and "expires in 60 day(s)" in status.text  # on the session's clock
    assert status.data["missing_scopes"] == []
    assert stored.token not in status.text + str(status.data)
    listed = await facebook.call("list_campaigns")
    assert listed.ok, listed.text


async def test_declined_permission_is_reported(runtime, listener):
    workspace = await _blank_workspace(runtime, "partial")
    url = await _start(runtime, workspace)
    async with aiohttp.ClientSession() as session:
        callback = await _consent(session, url, declined="pages_show_list")
        async with session.get(callback) as page:
            body = await page.text()
    assert page.status == 200 and "Missing permissions: pages_show_list" in body
    status = await (await runtime.facebook_for(workspace)).call("token_status")
    assert status.data["missing_scopes"] == ["pages_show_list"] and "Missing: pages_show_list" in status.text


async def test_declining_ads_management_stores_nothing(runtime, listener):
    workspace = await _blank_workspace(runtime, "no-ads")
    url = await _start(runtime, workspace)
    async with aiohttp.ClientSession() as session:
        callback = await _consent(session, url, declined="ads_management")
        async with session.get(callback) as page:
            body = await page.text()
    assert page.status == 400 and "lacks ads_management" in body
    assert await runtime.store.load_token(workspace.id) is None


async def test_access_denied(runtime, listener):
    workspace = await _blank_workspace(runtime, "deny")
    url = await _start(runtime, workspace)
    async with aiohttp.ClientSession() as session:
        callback = await _consent(session, url, decision="deny")
        assert "error=access_denied" in callback
        async with session.get(callback) as page:
            body = await page.text()
    assert page.status == 400 and "you chose not to connect" in body and "Fix:" in body
    assert await runtime.store.load_token(workspace.id) is None


async def test_state_replay_forgery_expiry_and_missing_code(runtime, listener):
    workspace = await _blank_workspace(runtime, "attacks")
    async with aiohttp.ClientSession() as session:
        callback = await _consent(session, await _start(runtime, workspace))
        async with session.get(callback) as first:
            assert first.status == 200
        await runtime.store.delete_token(workspace.id)
        async with session.get(callback) as replay:
            assert replay.status == 400 and "already used" in await replay.text()

        url = await _start(runtime, workspace)
        callback = await _consent(session, url)
        parts = urllib.parse.urlsplit(callback)
        query = dict(urllib.parse.parse_qsl(parts.query))
        payload, signature = query["state"].split(".")
        forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
        for state in (f"{forged_payload}.{signature}", "nonsense", ""):
            forged = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode({**query, "state": state})))
            async with session.get(forged) as page:
                assert page.status == 400 and "not valid" in await page.text()
        no_code = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode({"state": query["state"]})))
        async with session.get(no_code) as page:
            assert page.status == 400 and "no authorization code" in await page.text()

        url = await _start(runtime, workspace)
        callback = await _consent(session, url)
        runtime.connector.clock = lambda: time.time() + 601
        async with session.get(callback) as late:
            assert late.status == 400 and "expired" in await late.text()
    assert await runtime.store.load_token(workspace.id) is None


async def test_token_of_another_app_is_refused(runtime):
    workspace = await _blank_workspace(runtime, "other-app")
    grant = await _sandbox(runtime, "POST", "tokens", {"app": "other"})
    from fb_utils import ValidationError

    with pytest.raises(ValidationError, match="another Facebook app"):
        await runtime.connector.store_checked_token(workspace.id, grant["access_token"], kind="system_user")
    assert await runtime.store.load_token(workspace.id) is None


async def test_token_without_ads_management_is_refused(runtime):
    workspace = await _blank_workspace(runtime, "weak")
    grant = await _sandbox(runtime, "POST", "tokens", {"scopes": ["ads_read", "pages_show_list"]})
    from fb_utils import ValidationError

    with pytest.raises(ValidationError, match="lacks ads_management"):
        await runtime.connector.store_checked_token(workspace.id, grant["access_token"], kind="user")


async def test_system_user_token_never_expires(runtime):
    workspace = await _blank_workspace(runtime, "system")
    grant = await _sandbox(runtime, "POST", "tokens", {"type": "SYSTEM_USER", "expires_in": 0})
    health = await runtime.connector.store_checked_token(workspace.id, grant["access_token"], kind="system_user")
    assert health.expires_at is None
    status = await (await runtime.facebook_for(workspace)).call("token_status")
    assert "never expires" in status.text


async def test_a_190_marks_the_token_invalid(runtime):
    workspace = await runtime.workspace("default")
    facebook = await runtime.facebook_for(workspace)
    assert (await facebook.call("list_ad_accounts")).ok
    await _sandbox(runtime, "POST", "faults", {"kind": "token_expired", "count": 5})
    failed = await facebook.call("list_ad_accounts")
    assert failed.text.startswith("ERROR auth:") and "/connect" in failed.text
    stored = await runtime.store.load_token(workspace.id)
    assert stored.invalid_reason


async def test_expired_token_shows_in_status(runtime):
    workspace = await runtime.workspace("default")
    facebook = await runtime.facebook_for(workspace)
    await _sandbox(runtime, "POST", "clock", {"advance": 61 * 86400})
    status = await facebook.call("token_status")
    assert not status.ok and "not valid" in status.text and "/connect" in status.text


async def test_disconnect_revokes_and_forgets(runtime):
    workspace = await runtime.workspace("default")
    facebook = await runtime.facebook_for(workspace)
    token = (await runtime.store.load_token(workspace.id)).token
    result = await facebook.call("disconnect")
    assert result.ok and "revoked" in result.text
    assert await runtime.store.load_token(workspace.id) is None
    health = await runtime.connector.inspect(token)
    assert not health.valid  # Facebook (the sandbox) no longer accepts it
    again = await runtime.facebook_for(workspace)
    assert (await again.call("list_campaigns")).text.startswith("ERROR auth: Facebook is not connected")
    entry = (await runtime.store.list_audit(workspace.id))[0]
    assert entry.op == "disconnect"


async def test_token_check_warns_before_expiry_as_the_clock_advances(runtime):
    """The real token_check job over the real runtime: the sandbox clock moves, Facebook's debug_token and the job's
    "now" follow it."""
    from admonster_jobs import run_job

    workspace = await runtime.workspace("default")
    await runtime.facebook_for(workspace)  # the sandbox demo connection, valid 60 days
    advanced = {"seconds": 0}
    context = job_context(runtime)

    async def advance_to(days: float) -> None:
        step = days * 86400 - advanced["seconds"]
        await _sandbox(runtime, "POST", "clock", {"advance": step})
        advanced["seconds"] += step

    async def inbox() -> str:
        return await runtime.notifier.inbox_text(workspace.id) or ""

    assert (await run_job("token_check", context)).ok
    assert await inbox() == ""  # 60 days left: nothing to say
    await advance_to(54)
    await run_job("token_check", context)
    first = await inbox()
    assert re.search(r"expires in [56] days", first) and "/connect" in first
    await run_job("token_check", context)
    assert await inbox() == ""  # said once
    await advance_to(59.5)
    await run_job("token_check", context)
    last_day = await inbox()
    assert re.search(r"expires in (0|1) day|hours", last_day), last_day
    await advance_to(61)
    await run_job("token_check", context)
    notice = await inbox()
    assert "stopped working" in notice and "/connect" in notice
    assert (await runtime.store.load_token(workspace.id)).invalid_reason


async def test_disconnect_dry_run_changes_nothing(runtime):
    workspace = await runtime.workspace("default")
    facebook = await runtime.facebook_for(workspace)
    dry = await facebook.call("disconnect", {"dry_run": True})
    assert dry.ok and dry.text.startswith("DRY RUN disconnect") and "DELETE /me/permissions" in dry.text
    assert await runtime.store.load_token(workspace.id) is not None
    assert (await facebook.call("list_ad_accounts")).ok

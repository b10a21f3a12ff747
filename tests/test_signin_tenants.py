"""Sign-in and tenants over real HTTP on `admonster serve` with two workspaces (issue 18, items 4 and 5).

A sign-in link works only in the browser that asked for it (an HttpOnly, SameSite=Lax cookie checked at the callback)
or, from a terminal, only at that terminal's own loopback listener; moving a workspace to another Facebook user needs
`switch`; disconnecting one workspace revokes the app only when no other workspace holds the same user's token.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse

import aiohttp
import pytest

from admonster_runtime import SANDBOX_AUTOCONNECT
from admonster_server import CALLBACK_PATH, CallbackListener
from fi_facebook import Facebook
from testkit import running_server


@pytest.fixture
async def server(tmp_path):
    async with running_server(tmp_path) as (url, runtime):
        yield url, runtime


def browser() -> aiohttp.ClientSession:
    """A browser of its own: its own cookie jar (unsafe=True: the server is on 127.0.0.1, an IP address)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def workspace(runtime, name: str, *, connected: bool) -> tuple[object, str]:
    ws = await runtime.store.ensure_workspace(name)
    if not connected:
        await runtime.store.set_setting(ws.id, SANDBOX_AUTOCONNECT, False)
    return ws, await runtime.store.create_api_key(ws.id)


async def tool(session: aiohttp.ClientSession, url: str, key: str, op: str, args: dict | None = None) -> dict:
    async with session.post(
        f"{url}/v1/tools/facebook", json={"op": op, "args": args or {}}, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return await resp.json()


async def make_link(session: aiohttp.ClientSession, url: str, key: str, **args) -> str:
    answer = await tool(session, url, key, "connect", args)
    assert answer["ok"], answer
    return answer["data"]["url"]


async def consent(session: aiohttp.ClientSession, link: str, *, user: str | None = None) -> tuple[int, str]:
    """The person allows on the sandbox's dialog (as `user`, else the demo user); the browser follows the redirect to
    the callback. Returns the callback page's status and text."""
    parsed = urllib.parse.urlsplit(link)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    query.update({"decision": "allow", **({"user": user} if user else {})})
    confirm = urllib.parse.urlunsplit(
        parsed._replace(path=parsed.path + "/confirm", query=urllib.parse.urlencode(query))
    )
    async with session.get(confirm) as page:
        return page.status, await page.text()


async def sandbox_user(runtime, name: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{runtime.sandbox_url}/__sandbox/objects", params={"type": "user"}) as resp:
            users = (await resp.json())["data"]
    return next(u["id"] for u in users if u["name"] == name)


async def graph_get(runtime, token: str, path: str) -> tuple[int, dict]:
    """GET on the sandbox's Graph API with a token (and its appsecret_proof, which the app requires)."""
    proof = hmac.new(runtime.app.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{runtime.sandbox_url}/{runtime.settings.api_version}/{path}",
            params={"access_token": token, "appsecret_proof": proof},
        ) as resp:
            return resp.status, await resp.json()


async def test_the_cookie_is_httponly_lax_and_only_for_the_callback(server):
    url, runtime = server
    ws, key = await workspace(runtime, "alpha", connected=False)
    async with browser() as session:
        async with session.post(
            f"{url}/v1/tools/facebook", json={"op": "connect"}, headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            assert (await resp.json())["ok"]
            cookie = resp.cookies[f"admonster_signin_{ws.id}"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == CALLBACK_PATH
    assert len(cookie.value) >= 40 and cookie.value not in (await runtime.store.list_workspaces()).__repr__()
    async with browser() as session:  # other answers set no cookie
        async with session.post(
            f"{url}/v1/tools/facebook", json={"op": "token_status"}, headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            assert not [c for c in resp.cookies if c.startswith("admonster_signin_")]


async def test_a_link_completed_in_another_browser_is_refused_and_gives_nothing(server):
    url, runtime = server
    alpha, alpha_key = await workspace(runtime, "alpha", connected=False)
    beta, beta_key = await workspace(runtime, "beta", connected=False)
    async with browser() as alpha_browser, browser() as beta_browser:
        await make_link(alpha_browser, url, alpha_key)  # alpha's browser holds alpha's own sign-in cookie
        beta_link = await make_link(beta_browser, url, beta_key)
        status, page = await consent(alpha_browser, beta_link)  # alpha's person completes beta's link
        assert status == 403 and "started in another browser" in page and "start again from your own console" in page
        assert await runtime.store.load_token(beta.id) is None and await runtime.store.load_token(alpha.id) is None
        assert not (await tool(beta_browser, url, beta_key, "list_campaigns"))["ok"]
        # the refused attempt did not use the link up: beta's own browser still completes it
        status, page = await consent(beta_browser, beta_link)
        assert status == 200 and "Facebook connected" in page, page
        assert (await runtime.store.load_token(beta.id)) is not None


async def test_a_link_completed_without_its_cookie_is_refused(server):
    url, runtime = server
    alpha, alpha_key = await workspace(runtime, "alpha", connected=False)
    async with browser() as alpha_browser, browser() as stranger:
        link = await make_link(alpha_browser, url, alpha_key)
        status, page = await consent(stranger, link)
        assert status == 403 and "started in another browser" in page
        assert await runtime.store.load_token(alpha.id) is None
        # a forged cookie of the right name does not help either
        stranger.cookie_jar.update_cookies(
            {f"admonster_signin_{alpha.id}": "guessed"}, response_url=aiohttp.client.URL(url + CALLBACK_PATH)
        )
        status, _ = await consent(stranger, link)
        assert status == 403 and await runtime.store.load_token(alpha.id) is None


async def test_switching_to_another_facebook_user_needs_confirmation(server):
    url, runtime = server
    alpha, alpha_key = await workspace(runtime, "alpha", connected=True)  # the sandbox signs alpha in as its demo user
    async with browser() as session:
        before = await tool(session, url, alpha_key, "token_status")
        assert before["ok"] and before["data"]["user_name"] == "Demo User (alpha)"
        analyst = await sandbox_user(runtime, "Alex Analyst (alpha)")
        status, page = await consent(session, await make_link(session, url, alpha_key), user=analyst)
        assert status == 409
        assert "This workspace is connected to Demo User (alpha); connect it to Alex Analyst (alpha) instead?" in page
        assert "/connect --switch" in page
        assert (await runtime.store.load_token(alpha.id)).user_id == before["data"]["user_id"]
        # the same user again needs no confirmation
        status, page = await consent(session, await make_link(session, url, alpha_key), user=before["data"]["user_id"])
        assert status == 200 and "Facebook connected" in page
        # with switch, the sign-in moves the workspace
        status, page = await consent(session, await make_link(session, url, alpha_key, switch=True), user=analyst)
        assert status == 200 and "Alex Analyst (alpha)" in page, page
        assert (await runtime.store.load_token(alpha.id)).user_id == analyst


async def test_chat_connect_switch_sets_the_cookie_and_allows_the_switch(server):
    url, runtime = server
    alpha, alpha_key = await workspace(runtime, "alpha", connected=True)
    async with browser() as session:
        assert (await tool(session, url, alpha_key, "token_status"))["ok"]
        async with session.post(
            f"{url}/v1/chat",
            json={"thread_id": "t1", "message": "/connect --switch"},
            headers={"Authorization": f"Bearer {alpha_key}"},
        ) as resp:
            answer = await resp.json()
        assert answer["ok"], answer
        call = answer["tool_calls"][0]
        assert call["name"] == "connect" and call["arguments"] == {"switch": True}, call
        link = next(word for word in answer["reply"].split() if "/dialog/oauth?" in word)
        analyst = await sandbox_user(runtime, "Alex Analyst (alpha)")
        status, page = await consent(session, link, user=analyst)
        assert status == 200 and "Alex Analyst (alpha)" in page
        assert (await runtime.store.load_token(alpha.id)).user_id == analyst


async def test_a_terminal_link_completes_only_at_its_own_listener(server):
    url, runtime = server
    alpha, _ = await workspace(runtime, "alpha", connected=False)
    mine, other = CallbackListener(runtime, timeout=60), CallbackListener(runtime, timeout=60)
    try:
        terminal = Facebook(runtime.store, None, alpha, connector=runtime.connector, callback_url=mine.url)
        started = await terminal.call("connect", interface="cli")
        assert started.ok, started.text
        link = started.data["url"]
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
        assert query["redirect_uri"].startswith("http://127.0.0.1:") and mine.host == "127.0.0.1"
        await other.url()
        async with browser() as session:
            for elsewhere in (f"{url}{CALLBACK_PATH}", other.redirect_uri):  # the server's callback, another terminal's
                async with session.get(elsewhere, params={"state": query["state"], "code": "AQ" + "x" * 60}) as page:
                    assert page.status == 403 and "started in another browser" in await page.text()
            assert await runtime.store.load_token(alpha.id) is None
            status, page = await consent(session, link)  # the redirect goes to this terminal's listener
        assert status == 200 and "Facebook connected" in page and mine.succeeded
        assert await runtime.store.load_token(alpha.id) is not None
    finally:
        await mine.stop()
        await other.stop()


async def test_links_are_not_made_where_nothing_can_be_bound(server):
    _, runtime = server
    alpha, _ = await workspace(runtime, "alpha", connected=False)

    async def public_url() -> str:
        return runtime.settings.public_url + CALLBACK_PATH

    unbound = Facebook(runtime.store, None, alpha, connector=runtime.connector, callback_url=public_url)
    result = await unbound.call("connect", interface="mcp")
    assert not result.ok and "bind" in result.text and "Fix:" in result.text


async def test_disconnect_is_per_workspace_and_revokes_with_the_last_one(server):
    url, runtime = server
    alpha, alpha_key = await workspace(runtime, "alpha", connected=True)
    beta, beta_key = await workspace(runtime, "beta", connected=False)
    async with browser() as session:
        assert (await tool(session, url, alpha_key, "list_campaigns"))["ok"]
        alpha_user = (await runtime.store.load_token(alpha.id)).user_id
        status, page = await consent(session, await make_link(session, url, beta_key), user=alpha_user)  # same person
        assert status == 200 and "Demo User (alpha)" in page, page
        assert (await tool(session, url, beta_key, "list_campaigns"))["ok"]
        alpha_token = (await runtime.store.load_token(alpha.id)).token
        beta_token = (await runtime.store.load_token(beta.id)).token
        assert (await runtime.store.load_token(alpha.id)).user_id == (await runtime.store.load_token(beta.id)).user_id

        plan = await tool(session, url, alpha_key, "disconnect")
        done = (
            await tool(session, url, alpha_key, "confirm", {"confirm": plan["data"]["confirmation_id"]})
            if plan["data"].get("confirmation_id")
            else plan
        )
        assert done["ok"], done
        assert (
            "keeps access for 1 other workspace(s) of the same Facebook user, so the app was not revoked"
            in done["text"]
        )
        assert done["data"]["revoked"] is False
        assert await runtime.store.load_token(alpha.id) is None
        # beta still works, and the app is still granted for the user (checked on the sandbox with beta's token)
        assert (await tool(session, url, beta_key, "list_campaigns"))["ok"]
        status, permissions = await graph_get(runtime, beta_token, "me/permissions")
        assert status == 200 and {"permission": "ads_management", "status": "granted"} in permissions["data"]

        plan = await tool(session, url, beta_key, "disconnect")
        done = (
            await tool(session, url, beta_key, "confirm", {"confirm": plan["data"]["confirmation_id"]})
            if plan["data"].get("confirmation_id")
            else plan
        )
        assert done["ok"], done
        assert "Facebook permissions revoked" in done["text"] and done["data"]["revoked"] is True
        for token in (alpha_token, beta_token):  # the last one revoked the app for the user: both tokens are dead
            status, answer = await graph_get(runtime, token, "me/permissions")
            assert status in (400, 401, 403) and answer["error"]["code"] == 190, answer


async def test_sandbox_workspaces_have_worlds_of_their_own(server):
    url, runtime = server
    _default, default_key = await workspace(runtime, "default", connected=True)
    alpha, alpha_key = await workspace(runtime, "alpha", connected=True)
    _beta, beta_key = await workspace(runtime, "beta", connected=True)
    seen: dict[str, dict] = {}
    async with browser() as session:
        for name, key in (("default", default_key), ("alpha", alpha_key), ("beta", beta_key)):
            accounts = await tool(session, url, key, "list_ad_accounts")
            campaigns = await tool(session, url, key, "list_campaigns")
            assert accounts["ok"] and campaigns["ok"], (accounts, campaigns)
            seen[name] = {
                "accounts": {a["id"] for a in accounts["data"]["accounts"]},
                "campaigns": {c["id"] for c in campaigns["data"]["campaigns"]},
                "names": sorted(c["name"] for c in campaigns["data"]["campaigns"]),
                "user": (await runtime.store.load_token((await runtime.store.ensure_workspace(name)).id)).user_id,
            }
        async with aiohttp.ClientSession() as plain:  # `default` keeps the seeded demo user
            async with plain.get(f"{runtime.sandbox_url}/__sandbox/objects", params={"type": "user"}) as resp:
                names = {u["id"]: u["name"] for u in (await resp.json())["data"]}
        assert names[seen["default"]["user"]] == "Demo User"
        assert names[seen["alpha"]["user"]] == "Demo User (alpha)" and names[seen["beta"]["user"]] == "Demo User (beta)"
        for one, other in (("default", "alpha"), ("default", "beta"), ("alpha", "beta")):
            assert len(seen[one]["accounts"]) == 2 and not seen[one]["accounts"] & seen[other]["accounts"]
            assert seen[one]["campaigns"] and not seen[one]["campaigns"] & seen[other]["campaigns"]
            assert seen[one]["names"] == seen[other]["names"]  # the same demo world, different objects
        # by id: beta reads none of alpha's campaigns or ad accounts, and changes nothing there
        for campaign_id in sorted(seen["alpha"]["campaigns"])[:3]:
            answer = await tool(session, url, beta_key, "get_campaign", {"campaign_id": campaign_id})
            assert not answer["ok"], answer
        for account_id in seen["alpha"]["accounts"]:
            answer = await tool(session, url, beta_key, "list_campaigns", {"ad_account_id": account_id})
            assert not answer["ok"], answer
        target = sorted(seen["alpha"]["campaigns"])[-1]
        answer = await tool(session, url, beta_key, "pause_campaign", {"campaign_id": target})
        assert not answer["ok"], answer
        # the workspace keeps its world across sessions
        assert (await runtime.store.get_setting(alpha.id, "sandbox_user")) == seen["alpha"]["user"]

"""Sandbox Facebook Login: the dialog, code and token exchanges, debug_token, permissions, revocation, expiry."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from test_fb_sandbox_helpers import VERSION, Graph, proof

REDIRECT = "http://127.0.0.1:9999/oauth/facebook/callback"
NEEDED = [
    "ads_management",
    "ads_read",
    "business_management",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_ads",
    "instagram_basic",
]


async def http(method: str, url: str, **kwargs) -> tuple[int, dict, str, object]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, allow_redirects=False, **kwargs) as resp:
            text = await resp.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            return resp.status, body, text, resp.headers


@pytest.fixture
async def app(sandbox) -> dict:
    return await sandbox.control("GET", "app")


def dialog_params(app: dict, **extra) -> dict:
    return {
        "client_id": app["app_id"],
        "redirect_uri": REDIRECT,
        "state": "st4te",
        "scope": ",".join(NEEDED),
        "response_type": "code",
        **extra,
    }


async def consent(sandbox, app: dict, decision: str = "allow", **extra) -> dict:
    """Load the consent page, then press a button as the form would; -> the redirect's query."""
    params = dialog_params(app, **extra.pop("dialog", {}))
    status, _, page, _ = await http("GET", f"{sandbox.url}/{VERSION}/dialog/oauth", params=params)
    assert status == 200 and "Demo User: Ad Monster (sandbox) would like to manage your ads" in page
    status, _, _, headers = await http(
        "GET", f"{sandbox.url}/{VERSION}/dialog/oauth/confirm", params={**params, "decision": decision, **extra}
    )
    assert status == 302
    location = headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def exchange(sandbox, **params) -> tuple[int, dict]:
    status, body, _, _ = await http("GET", f"{sandbox.url}/{VERSION}/oauth/access_token", params=params)
    return status, body


async def code_for(sandbox, app, **extra) -> str:
    return (await consent(sandbox, app, **extra))["code"]


async def redeem(sandbox, app, auth_code: str, **over) -> tuple[int, dict]:
    return await exchange(
        sandbox,
        **{
            "client_id": app["app_id"],
            "redirect_uri": REDIRECT,
            "client_secret": app["app_secret"],
            "code": auth_code,
            **over,
        },
    )


async def debug(sandbox, app, input_token: str, access_token: str | None = None) -> dict:
    """debug_token with our app token, or with a user token of our app (then with its appsecret_proof)."""
    params = {"input_token": input_token, "access_token": access_token or f"{app['app_id']}|{app['app_secret']}"}
    if access_token:
        params["appsecret_proof"] = proof(app["app_secret"], access_token)
    status, body, _, _ = await http("GET", f"{sandbox.url}/{VERSION}/debug_token", params=params)
    assert status == 200, body
    return body["data"]


def graph_for(sandbox, app, token: str) -> Graph:
    return Graph(sandbox.url, {"access_token": token, "app_secret": app["app_secret"]})


async def test_full_flow_dialog_code_short_long_debug_permissions(sandbox, app):
    status, _, page, _ = await http("GET", f"{sandbox.url}/{VERSION}/dialog/oauth", params=dialog_params(app))
    assert status == 200
    for scope in NEEDED:
        assert f"value='{scope}' checked" in page
    assert "Continue" in page and "Cancel" in page and "name='state' value='st4te'" in page

    query = await consent(sandbox, app)
    assert query["state"] == "st4te" and query["code"].startswith("AQ")
    status, short = await redeem(sandbox, app, query["code"])
    assert status == 200 and short["token_type"] == "bearer" and short["expires_in"] == 5400

    status, long = await exchange(
        sandbox,
        grant_type="fb_exchange_token",
        client_id=app["app_id"],
        client_secret=app["app_secret"],
        fb_exchange_token=short["access_token"],
    )
    assert status == 200 and long["expires_in"] == 5183944 and long["access_token"] != short["access_token"]

    data = await debug(sandbox, app, long["access_token"])
    clock = await sandbox.control("GET", "clock")
    assert data["app_id"] == app["app_id"] and data["type"] == "USER" and data["is_valid"] is True
    assert data["application"] == "Ad Monster (sandbox)"
    assert abs(data["expires_at"] - (clock["epoch"] + 5183944)) <= 2
    assert data["scopes"] == NEEDED and data["granular_scopes"] == [{"scope": s} for s in NEEDED]
    assert data["data_access_expires_at"] > data["issued_at"]
    me = await graph_for(sandbox, app, long["access_token"]).get("me")
    assert data["user_id"] == me.body["id"]

    perms = await graph_for(sandbox, app, long["access_token"]).get("me/permissions")
    assert perms.body == {"data": [{"permission": s, "status": "granted"} for s in NEEDED]}
    # a user token of the same app may inspect tokens too
    assert (await debug(sandbox, app, short["access_token"], long["access_token"]))["is_valid"] is True


async def test_deny_redirects_with_facebook_error_params(sandbox, app):
    query = await consent(sandbox, app, decision="deny")
    assert query == {
        "error": "access_denied",
        "error_code": "200",
        "error_description": "Permissions error",
        "error_reason": "user_denied",
        "state": "st4te",
    }


async def test_declined_scopes_by_parameter_and_by_unchecked_boxes(sandbox, app):
    code = await code_for(sandbox, app, declined="pages_manage_ads,instagram_basic")
    _, token = await redeem(sandbox, app, code)
    perms = (await graph_for(sandbox, app, token["access_token"]).get("me/permissions")).body["data"]
    assert {"permission": "instagram_basic", "status": "declined"} in perms
    assert {"permission": "pages_manage_ads", "status": "declined"} in perms
    assert {"permission": "ads_management", "status": "granted"} in perms
    assert "instagram_basic" not in (await debug(sandbox, app, token["access_token"]))["scopes"]

    boxes = [("granted", s) for s in NEEDED if s != "ads_management"]
    params = list(dialog_params(app).items()) + [("form", "1"), ("decision", "allow")] + boxes
    _status, _, _, headers = await http("GET", f"{sandbox.url}/{VERSION}/dialog/oauth/confirm?{urlencode(params)}")
    code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
    _, token = await redeem(sandbox, app, code)
    data = await debug(sandbox, app, token["access_token"])
    assert "ads_management" not in data["scopes"] and "ads_read" in data["scopes"]


async def test_dialog_bad_input_is_an_html_error_page(sandbox, app):
    url = f"{sandbox.url}/{VERSION}/dialog/oauth"
    for params, text in [
        ({**dialog_params(app), "client_id": "999"}, "Invalid App ID"),
        ({k: v for k, v in dialog_params(app).items() if k != "redirect_uri"}, "redirect_uri"),
        ({**dialog_params(app), "redirect_uri": "javascript:alert(1)"}, "URL blocked"),
        ({**dialog_params(app), "scope": "ads_management,bogus_perm"}, "Invalid Scopes: bogus_perm"),
        ({**dialog_params(app), "response_type": "token"}, "response_type"),
    ]:
        status, _, page, headers = await http("GET", url, params=params)
        assert status == 400 and headers["Content-Type"].startswith("text/html") and text in page, (params, page)
    status, _, _, _ = await http("GET", f"{url}/confirm", params={**dialog_params(app), "client_id": "1"})
    assert status == 400


async def test_code_reuse_expiry_redirect_mismatch_bad_secret(sandbox, app):
    code = await code_for(sandbox, app)
    status, body = await redeem(sandbox, app, code, redirect_uri=REDIRECT + "/other")
    assert (status, body["error"]["code"], body["error"]["error_subcode"]) == (400, 100, 36008)
    status, body = await redeem(sandbox, app, code, client_secret="0" * 32)
    assert body["error"] == {
        **body["error"],
        "message": "Error validating client secret.",
        "code": 1,
        "type": "OAuthException",
    }
    assert (await redeem(sandbox, app, code))[0] == 200
    status, body = await redeem(sandbox, app, code)
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 36009)
    assert body["error"]["message"] == "This authorization code has been used."

    code = await code_for(sandbox, app)
    await sandbox.control("POST", "clock", {"advance": 601})
    status, body = await redeem(sandbox, app, code)
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 36007)
    assert body["error"]["message"] == "This authorization code has expired."

    status, body = await redeem(sandbox, app, "not-a-code")
    assert status == 400 and body["error"]["code"] == 100 and "format" in body["error"]["message"]
    status, body = await redeem(sandbox, app, code, client_id="12345")
    assert body["error"]["code"] == 101
    status, body = await redeem(sandbox, app, code, code="")
    assert body["error"]["code"] == 100


async def test_exchange_errors_and_client_credentials(sandbox, app):
    base = {"grant_type": "fb_exchange_token", "client_id": app["app_id"], "client_secret": app["app_secret"]}
    status, body = await exchange(sandbox, **base, fb_exchange_token="garbage")
    assert (status, body["error"]["code"]) == (400, 190)
    short = await sandbox.token(expires_in=60)
    await sandbox.control("POST", "clock", {"advance": 120})
    status, body = await exchange(sandbox, **base, fb_exchange_token=short["access_token"])
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (190, 463)
    other = await sandbox.token(app="other")
    status, body = await exchange(sandbox, **base, fb_exchange_token=other["access_token"])
    assert body["error"]["code"] == 190

    status, body = await exchange(
        sandbox, grant_type="client_credentials", client_id=app["app_id"], client_secret=app["app_secret"]
    )
    assert status == 200 and body == {"access_token": f"{app['app_id']}|{app['app_secret']}", "token_type": "bearer"}
    data = await debug(sandbox, app, body["access_token"])
    assert data["type"] == "APP" and data["is_valid"] is True


async def test_debug_token_expired_revoked_other_app_system_user_garbage(sandbox, app):
    expiring = await sandbox.token(expires_in=100)
    assert (await debug(sandbox, app, expiring["access_token"]))["is_valid"] is True
    await sandbox.control("POST", "clock", {"advance": 200})
    data = await debug(sandbox, app, expiring["access_token"])
    assert data["is_valid"] is False and data["error"]["code"] == 190 and data["error"]["subcode"] == 463
    assert data["expires_at"] == expiring["expires_at"]
    answer = await graph_for(sandbox, app, expiring["access_token"]).get("me")
    assert (answer.error["code"], answer.error["error_subcode"]) == (190, 463)

    other = await sandbox.token(app="other")
    assert other["app_id"] == app["other_app_id"] and other["app_secret"] != app["app_secret"]
    data = await debug(sandbox, app, other["access_token"])
    assert data["is_valid"] is True and data["app_id"] == app["other_app_id"] != app["app_id"]
    assert data["application"] != "Ad Monster (sandbox)"

    system = await sandbox.token(type="SYSTEM_USER", expires_in=0, scopes=["ads_management", "ads_read"])
    data = await debug(sandbox, app, system["access_token"])
    assert (data["type"], data["expires_at"], data["is_valid"], data["scopes"]) == (
        "SYSTEM_USER",
        0,
        True,
        ["ads_management", "ads_read"],
    )
    await sandbox.control("POST", "clock", {"advance": 10 * 365 * 86400})
    assert (await debug(sandbox, app, system["access_token"]))["is_valid"] is True

    data = await debug(sandbox, app, "EAAgarbage")
    assert data == {
        "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
        "is_valid": False,
        "scopes": [],
    }
    status, body, _, _ = await http(
        "GET",
        f"{sandbox.url}/{VERSION}/debug_token",
        params={"input_token": "x", "access_token": f"{app['app_id']}|wrong"},
    )
    assert status == 400 and body["error"]["code"] == 190
    status, body, _, _ = await http(
        "GET", f"{sandbox.url}/{VERSION}/debug_token", params={"access_token": f"{app['app_id']}|{app['app_secret']}"}
    )
    assert status == 400 and body["error"]["code"] == 100
    # an app token is not a person: /me refuses it
    status, body, _, _ = await http(
        "GET", f"{sandbox.url}/{VERSION}/me", params={"access_token": f"{app['app_id']}|{app['app_secret']}"}
    )
    assert status == 400 and body["error"]["code"] == 2500


async def test_token_options_user_and_bad_control_input(sandbox, app):
    accounts = await sandbox.control("GET", "objects?type=user")
    casey = next(u["id"] for u in accounts["data"] if u["name"] == "Casey Creative")
    token = await sandbox.token(user=casey)
    me = await graph_for(sandbox, app, token["access_token"]).get("me")
    assert me.body["name"] == "Casey Creative"
    async with aiohttp.ClientSession() as session:
        for bad in ({"app": "nope"}, {"type": "PAGE"}, {"user": "42"}, {"scopes": ["not_a_scope"]}, {"scopes": "x"}):
            async with session.post(f"{sandbox.url}/__sandbox/tokens", json=bad) as resp:
                assert resp.status == 400, bad


async def test_delete_permissions_invalidates_token_and_new_login_works(sandbox, app):
    _, token = await redeem(sandbox, app, await code_for(sandbox, app))
    g = graph_for(sandbox, app, token["access_token"])
    pages = await g.get("me/accounts", fields="id,access_token")
    page_token = pages.body["data"][0]["access_token"]
    assert (await g.delete("me/permissions")).body == {"success": True}
    answer = await g.get("me")
    assert (answer.error["code"], answer.error["error_subcode"]) == (190, 458)
    assert app["app_id"] in answer.error["message"]
    data = await debug(sandbox, app, token["access_token"])
    assert data["is_valid"] is False and data["error"]["subcode"] == 458
    assert (await debug(sandbox, app, page_token))["is_valid"] is False

    # a fresh login gets a working token (and working page tokens) again
    _, again = await redeem(sandbox, app, await code_for(sandbox, app))
    assert (await graph_for(sandbox, app, again["access_token"]).get("me")).status == 200
    assert (await debug(sandbox, app, page_token))["is_valid"] is True


async def test_delete_one_permission(sandbox, app):
    token = await sandbox.token()
    g = graph_for(sandbox, app, token["access_token"])
    assert (await g.call("DELETE", "me/permissions/instagram_basic")).body == {"success": True}
    perms = (await g.get("me/permissions")).body["data"]
    assert {"permission": "instagram_basic", "status": "declined"} in perms
    assert {"permission": "ads_management", "status": "granted"} in perms
    assert (await g.get("me")).status == 200
    assert (await g.call("DELETE", "me/permissions/not_a_perm")).error["code"] == 100


async def test_other_app_revocation_leaves_our_tokens_alone(sandbox, app):
    ours = await sandbox.token()
    other = await sandbox.token(app="other")
    g_other = Graph(sandbox.url, other)
    assert (await g_other.delete("me/permissions")).body == {"success": True}
    assert (await g_other.get("me")).error["error_subcode"] == 458
    assert (await Graph(sandbox.url, ours).get("me")).status == 200


async def test_unversioned_dialog_and_post_access_token(sandbox, app):
    status, _, page, _ = await http("GET", f"{sandbox.url}/dialog/oauth", params=dialog_params(app))
    assert status == 200 and re.search(r"action='/v\d+\.0/dialog/oauth/confirm'", page)
    code = await code_for(sandbox, app)
    status, body, _, _ = await http(
        "POST",
        f"{sandbox.url}/{VERSION}/oauth/access_token",
        data={"client_id": app["app_id"], "redirect_uri": REDIRECT, "client_secret": app["app_secret"], "code": code},
    )
    assert status == 200 and body["expires_in"] == 5400
    status, body, _, _ = await http("DELETE", f"{sandbox.url}/{VERSION}/oauth/access_token")
    assert status == 400 and "error" in body

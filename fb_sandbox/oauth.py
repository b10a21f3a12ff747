"""Facebook Login for the sandbox: the OAuth dialog (HTML), /oauth/access_token, /debug_token, /me/permissions."""

from __future__ import annotations

import html
import re
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from .apps import app_name, app_secret, apps, main_app
from .auth import (
    DATA_ACCESS_DAYS,
    KNOWN_SCOPES,
    LONG_LIVED,
    SHORT_LIVED,
    TOKEN_TYPES,
    app_token_app,
    issue_token,
    revoke_user_app,
    token_app,
    token_problem,
)
from .context import Ctx
from .errors import GraphError, param_error
from .state import Sandbox
from .versions import DEFAULT_VERSION

CODE_TTL = 600  # seconds of sandbox clock an authorization code stays usable
CODE_RE = re.compile(r"AQ[A-Za-z0-9_-]{40,400}")
DIALOG_PARAMS = ("client_id", "redirect_uri", "state", "scope", "response_type", "user")


# ---- the dialog (HTML, served by aiohttp routes outside the Graph router)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family:sans-serif;max-width:36em;margin:3em auto'>{body}</body></html>"
    )
    return web.Response(status=status, text=doc, content_type="text/html")


def _error_page(message: str) -> web.Response:
    return _page("Error", f"<h1>Sorry, something went wrong.</h1><p id='error'>{html.escape(message)}</p>", 400)


def _scopes(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    out: list[str] = []
    for part in re.split(r"[,\s]+", value):
        if part and part not in out:
            out.append(part)
    return out


def _check_dialog(sb: Sandbox, q) -> tuple[str | None, list[str], str | None]:
    """(error message, requested scopes, user id) for a dialog request."""
    client_id = q.get("client_id", "")
    if not client_id:
        return "Missing client_id parameter. The app ID is required.", [], None
    if client_id not in apps(sb.store):
        return f"Invalid App ID: {client_id}", [], None
    redirect = q.get("redirect_uri", "")
    if not redirect:
        return "Missing redirect_uri parameter.", [], None
    parts = urlsplit(redirect)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return (
            (
                "URL blocked: This redirect failed because the redirect URI is not whitelisted in the app's "
                "Client OAuth Settings."
            ),
            [],
            None,
        )
    if q.get("response_type", "code") not in ("code",):
        return "Unsupported response_type: the sandbox implements the code flow only.", [], None
    scopes = _scopes(q.get("scope", ""))
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        return f"Invalid Scopes: {', '.join(unknown)}.", [], None
    user_id = q.get("user") or sb.store.kv_get("demo_user_id")
    user = sb.store.get(user_id) if user_id else None
    if user is None or user.type != "user":
        return f"Unknown user {user_id}", [], None
    return None, scopes or ["public_profile"], user_id


async def dialog(request: web.Request) -> web.Response:
    from .control import SANDBOX_KEY

    sb = request.app[SANDBOX_KEY]
    q = request.query
    error, scopes, user_id = _check_dialog(sb, q)
    user = sb.store.get(user_id) if user_id else None
    if error or user is None:
        return _error_page(error or "no user to sign in")
    app = app_name(sb.store, q["client_id"])
    hidden = "".join(
        f"<input type='hidden' name='{k}' value='{html.escape(q[k], quote=True)}'>" for k in DIALOG_PARAMS if k in q
    )
    boxes = "".join(
        f"<li><label><input type='checkbox' name='granted' value='{s}' checked> {s}</label></li>" for s in scopes
    )
    version = request.match_info.get("version") or DEFAULT_VERSION
    body = (
        f"<h1>{html.escape(user['name'])}: {html.escape(app)} would like to manage your ads, "
        f"Pages and business assets</h1>"
        f"<p>{html.escape(app)} is requesting the following permissions:</p>"
        f"<form id='consent' method='get' action='/{version}/dialog/oauth/confirm'>{hidden}"
        f"<input type='hidden' name='form' value='1'><ul>{boxes}</ul>"
        f"<button type='submit' name='decision' value='allow'>Continue as {html.escape(user.get('first_name') or user['name'])}</button> "
        f"<button type='submit' name='decision' value='deny'>Cancel</button></form>"
    )
    return _page(f"Log in with Facebook - {app}", body)


def _redirect(uri: str, params: dict[str, str | None]) -> web.Response:
    sep = "&" if urlsplit(uri).query else "?"
    clean = {k: v for k, v in params.items() if v is not None}
    return web.Response(status=302, headers={"Location": f"{uri}{sep}{urlencode(clean)}"})


async def confirm(request: web.Request) -> web.Response:
    from .control import SANDBOX_KEY

    sb = request.app[SANDBOX_KEY]
    q = request.query
    error, scopes, user_id = _check_dialog(sb, q)
    if error:
        return _error_page(error)
    decision = q.get("decision", "")
    state = q.get("state")
    if decision == "deny":
        return _redirect(
            q["redirect_uri"],
            {
                "error": "access_denied",
                "error_code": "200",
                "error_description": "Permissions error",
                "error_reason": "user_denied",
                "state": state,
            },
        )
    if decision != "allow":
        return _error_page("decision must be allow or deny")
    declined = set()
    for value in q.getall("declined", []):
        declined |= set(_scopes(value))
    if q.get("form"):  # the HTML form: unchecked boxes are declined
        granted_boxes = set(q.getall("granted", []))
        declined |= {s for s in scopes if s not in granted_boxes}
    declined &= set(scopes)
    code = "AQ" + secrets.token_urlsafe(96)
    sb.store.kv_set(
        f"oauth_code:{code}",
        {
            "client_id": q["client_id"],
            "redirect_uri": q["redirect_uri"],
            "user_id": user_id,
            "granted": [s for s in scopes if s not in declined],
            "declined": [s for s in scopes if s in declined],
            "issued_at": sb.now(),
            "used": False,
        },
    )
    return _redirect(q["redirect_uri"], {"code": code, "state": state})


# ---- /oauth/access_token (no access_token needed)


def _client(ctx: Ctx) -> str:
    client_id = ctx.p.str("client_id")
    if not client_id:
        raise GraphError("Missing client_id parameter.", 101)
    if client_id not in apps(ctx.store):
        raise GraphError("Error validating application. Invalid application ID.", 101)
    secret = ctx.p.str("client_secret")
    if not secret or secret != app_secret(ctx.store, client_id):
        raise GraphError("Error validating client secret.", 1)
    return client_id


def access_token(ctx: Ctx) -> dict:
    grant = ctx.p.str("grant_type")
    if grant not in (None, "authorization_code", "fb_exchange_token", "client_credentials"):
        raise param_error(f"Unsupported grant_type: {grant}", field="grant_type")
    client_id = _client(ctx)
    if grant == "client_credentials":
        return {"access_token": f"{client_id}|{app_secret(ctx.store, client_id)}", "token_type": "bearer"}
    if grant == "fb_exchange_token":
        return _exchange(ctx, client_id)
    return _redeem_code(ctx, client_id)


def _redeem_code(ctx: Ctx, client_id: str) -> dict:
    redirect = ctx.p.str("redirect_uri")
    if not redirect:
        raise param_error("Missing redirect_uri parameter.", field="redirect_uri")
    code = ctx.p.str("code")
    if not code:
        raise param_error("Missing authorization code", field="code")
    record = ctx.store.kv_get(f"oauth_code:{code}") if CODE_RE.fullmatch(code) else None
    if record is None:
        raise GraphError("Invalid verification code format.", 100)
    if record["client_id"] != client_id:
        raise GraphError("Error validating verification code. The code was issued to another application.", 100)
    if record["used"]:
        raise GraphError("This authorization code has been used.", 100, subcode=36009)
    if ctx.now - record["issued_at"] > CODE_TTL:
        raise GraphError("This authorization code has expired.", 100, subcode=36007)
    if record["redirect_uri"] != redirect:
        raise GraphError(
            "Error validating verification code. Please make sure your redirect_uri is identical to "
            "the one you used in the OAuth dialog request",
            100,
            subcode=36008,
        )
    ctx.store.kv_set(f"oauth_code:{code}", {**record, "used": True})
    grant = issue_token(
        ctx.store,
        now=ctx.now,
        expires_in=SHORT_LIVED,
        scopes=record["granted"],
        user_id=record["user_id"],
        app_id=client_id,
        declined=record["declined"],
    )
    _unrevoke_page_tokens(ctx, record["user_id"], client_id)
    return {"access_token": grant["access_token"], "token_type": "bearer", "expires_in": SHORT_LIVED}


def _exchange(ctx: Ctx, client_id: str) -> dict:
    short = ctx.p.str("fb_exchange_token")
    if not short:
        raise param_error("Missing fb_exchange_token parameter.", field="fb_exchange_token")
    row = ctx.store.get_token(short)
    if row is None:
        raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)
    problem = token_problem(ctx.store, row, ctx.now)
    if problem is not None:
        raise problem
    if token_app(ctx.store, row) != client_id:
        raise GraphError("Error validating access token: the token was not issued to this application.", 190)
    grant = issue_token(
        ctx.store,
        now=ctx.now,
        expires_in=LONG_LIVED,
        scopes=row["scopes"],
        user_id=row["user_id"],
        kind=row["kind"],
        app_id=client_id,
        declined=row["meta"].get("declined", []),
    )
    return {"access_token": grant["access_token"], "token_type": "bearer", "expires_in": LONG_LIVED}


def _unrevoke_page_tokens(ctx: Ctx, user_id: str, app_id: str) -> None:
    """A fresh login gives the person's pages working page tokens again (after a DELETE /me/permissions)."""
    if app_id != main_app(ctx.store):
        return
    for row in ctx.store.user_tokens(user_id):
        if row["kind"] == "page" and row["meta"].get("revoked"):
            ctx.store.update_token(row["token"], meta={**row["meta"], "revoked": False})


# ---- /debug_token


def debug_token(ctx: Ctx) -> dict:
    if ctx.principal.kind not in ("app", "user", "system_user"):
        raise GraphError("(#100) The App_id in the input_token did not match the Viewing App", 100)
    input_token = ctx.p.str("input_token", required=True)
    if "|" in input_token:
        app_id = app_token_app(ctx.store, input_token)
        if app_id is None:
            return _invalid_parse()
        return {
            "data": {
                "app_id": app_id,
                "type": "APP",
                "application": app_name(ctx.store, app_id),
                "is_valid": True,
                "scopes": [],
            }
        }
    row = ctx.store.get_token(input_token)
    if row is None:
        return _invalid_parse()
    app_id = token_app(ctx.store, row)
    scopes = list(row["scopes"])
    data: dict[str, Any] = {
        "app_id": app_id,
        "type": TOKEN_TYPES.get(row["kind"], "USER"),
        "application": app_name(ctx.store, app_id),
        "data_access_expires_at": int(row["issued_at"] + DATA_ACCESS_DAYS * 86400),
        "expires_at": int(row["expires_at"]),
        "is_valid": True,
        "issued_at": int(row["issued_at"]),
        "scopes": scopes,
        "granular_scopes": [{"scope": s} for s in scopes],
        "user_id": row["user_id"],
    }
    if row["kind"] == "page":
        page = next((p for p in ctx.store.list("page") if p.get("_page_token") == input_token), None)
        if page is not None:
            data["profile_id"] = page["id"]
    problem = token_problem(ctx.store, row, ctx.now)
    if problem is not None:
        data["is_valid"] = False
        data["error"] = {"code": problem.code, "message": problem.message, "subcode": problem.subcode}
    return {"data": data}


def _invalid_parse() -> dict:
    return {
        "data": {
            "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
            "is_valid": False,
            "scopes": [],
        }
    }


# ---- /me/permissions


def _user_principal(ctx: Ctx) -> None:
    if ctx.principal.kind == "app" or not ctx.principal.user_id:
        raise GraphError("An active access token must be used to query information about the current user.", 2500)


def list_permissions(ctx: Ctx) -> dict:
    _user_principal(ctx)
    granted = [{"permission": s, "status": "granted"} for s in ctx.principal.scopes]
    declined = [
        {"permission": s, "status": "declined"} for s in ctx.principal.declined if s not in ctx.principal.scopes
    ]
    return {"data": granted + declined}


def revoke_permissions(ctx: Ctx) -> dict:
    _user_principal(ctx)
    permission = ctx.match[0] if ctx.match else None
    if permission is not None and permission not in KNOWN_SCOPES:
        raise param_error(f"Invalid permission: {permission}", field="permission")
    permission = permission or ctx.p.str("permission")
    if permission is not None and permission not in KNOWN_SCOPES:
        raise param_error(f"Invalid permission: {permission}", field="permission")
    revoke_user_app(ctx.store, ctx.principal.user_id, ctx.principal.app_id, permission=permission)
    return {"success": True}

"""Control endpoints under /__sandbox/ (no token; JSON in, JSON out)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .apps import app_created, app_secret, resolve_app, set_app_created
from .auth import KNOWN_SCOPES, issue_token
from .errors import GraphError
from .faults import FaultSpecError
from .seed import bulk_campaigns, seed_another_world, seed_demo, seed_pages
from .state import Sandbox

SANDBOX_KEY = web.AppKey("sandbox", Sandbox)


class BadRequest(Exception):
    pass


def _sb(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


async def _body(request: web.Request) -> dict:
    if request.method == "GET":
        return {k: _scalar(v) for k, v in request.query.items()}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("body must be JSON") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _scalar(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _number(body: dict, name: str, default: float | None = None, *, low: float = 0, high: float = 10**11) -> Any:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(f"{name} must be a number in [{low}, {high}]")
    return value


@web.middleware
async def control_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except BadRequest as exc:
        return web.json_response({"error": {"message": str(exc), "type": "SandboxControl", "code": 100}}, status=400)
    except FaultSpecError as exc:
        return web.json_response({"error": {"message": str(exc), "type": "SandboxControl", "code": 100}}, status=400)
    except GraphError as exc:
        return web.json_response(exc.body(), status=exc.http_status)


TOKEN_KINDS = {"USER": "user", "SYSTEM_USER": "system_user"}


async def tokens(request: web.Request) -> web.Response:
    sb, body = _sb(request), await _body(request)
    expires_in = _number(body, "expires_in", 5184000)
    scopes = body.get("scopes")
    if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
        raise BadRequest("scopes must be a list of strings")
    unknown = [s for s in scopes or [] if s not in KNOWN_SCOPES]
    if unknown:
        raise BadRequest(f"unknown scopes {unknown}; known: {KNOWN_SCOPES}")
    which = body.get("app")
    app_id = resolve_app(sb.store, which) if which is None or isinstance(which, str) else None
    if app_id is None:
        raise BadRequest('app must be "main", "other" or a sandbox app id')
    kind = TOKEN_KINDS.get(body.get("type", "USER")) if isinstance(body.get("type", "USER"), str) else None
    if kind is None:
        raise BadRequest("type must be USER or SYSTEM_USER")
    user_id = body.get("user")
    if user_id is not None:
        user = sb.store.get(user_id) if isinstance(user_id, str) else None
        if user is None or user.type != "user":
            raise BadRequest(f"unknown user {user_id!r}")
    return web.json_response(
        issue_token(
            sb.store, now=sb.now(), expires_in=expires_in, scopes=scopes, user_id=user_id, kind=kind, app_id=app_id
        )
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


async def app_info(request: web.Request) -> web.Response:
    store = _sb(request).store
    main, other = resolve_app(store, "main"), resolve_app(store, "other")
    return web.json_response(
        {
            "app_id": main,
            "app_secret": app_secret(store, main),
            "other_app_id": other,
            "created_time": _iso(app_created(store, main)),
            "other_created_time": _iso(app_created(store, other)),
        }
    )


async def set_app(request: web.Request) -> web.Response:
    """POST /__sandbox/apps {"app": "main"|"other"|id, "created_time": ISO-8601 or epoch}: when the app was created
    (an app created before 2026-11-04 is "old" and may still use the legacy Graph features, legacy.py)."""
    sb, body = _sb(request), await _body(request)
    which = body.get("app", "main")
    app_id = resolve_app(sb.store, which) if isinstance(which, str) else None
    if app_id is None:
        raise BadRequest('app must be "main", "other" or a sandbox app id')
    created = body.get("created_time")
    if isinstance(created, str):
        try:
            moment = datetime.fromisoformat(created.replace("+0000", "+00:00").replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest("created_time must be ISO-8601 (2026-01-31T00:00:00+0000) or epoch seconds") from None
        epoch = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    else:
        epoch = _number(body, "created_time", None)
        if epoch is None:
            raise BadRequest("created_time is required")
    set_app_created(sb.store, app_id, epoch)
    return web.json_response({"app_id": app_id, "created_time": _iso(epoch)})


async def reset(request: web.Request) -> web.Response:
    sb, body = _sb(request), await _body(request)
    sb.store.wipe()
    sb.keep_clock()  # a reset keeps the clock
    sb.reset_runtime()
    if body.get("seed", True) is not False:
        seed_demo(sb)
    return web.json_response({"success": True, "seeded": body.get("seed", True) is not False})


async def seed(request: web.Request) -> web.Response:
    sb, body = _sb(request), await _body(request)
    if "pages" in body:
        pages = int(_number(body, "pages", 1, high=100))
        instagram = body.get("instagram", False)
        if not isinstance(instagram, bool):
            raise BadRequest("instagram must be a boolean")
        page_ids, ig_ids = seed_pages(sb, count=pages, instagram=instagram)
        if "campaigns" not in body:
            return web.json_response({"ids": page_ids, "instagram_ids": ig_ids})
    count = int(_number(body, "campaigns", 0, high=100000))
    accounts = sb.store.list("adaccount")
    account_id = body.get("account_id") or (accounts[0]["id"] if accounts else None)
    account = sb.store.get(account_id) if isinstance(account_id, str) else None
    if account is None or account.type != "adaccount":
        raise BadRequest(f"unknown ad account {account_id!r}")
    status = body.get("status", "PAUSED")
    if status not in ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED"):
        raise BadRequest("status must be ACTIVE, PAUSED, ARCHIVED or DELETED")
    prefix = body.get("name_prefix", "Bulk")
    if not isinstance(prefix, str):
        raise BadRequest("name_prefix must be a string")
    budget = _number(body, "daily_budget", 1000, high=10**12)
    ids = bulk_campaigns(
        sb,
        count=count,
        account_id=str(account_id),
        status=status,
        name_prefix=prefix,
        daily_budget=int(budget) if budget else None,
    )
    return web.json_response({"ids": ids})


async def users(request: web.Request) -> web.Response:
    """POST /__sandbox/users {"label": "beta"}: one more demo world (user, business, USD and JPY ad accounts, page,
    pixel, campaigns) with fresh ids, so that tenants of one client never share objects; -> its ids."""
    sb, body = _sb(request), await _body(request)
    label = body.get("label", "")
    if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", label):
        raise BadRequest("label must be 1-40 letters, digits, '.', '_' or '-'")
    return web.json_response(seed_another_world(sb, label))


async def clock(request: web.Request) -> web.Response:
    """GET: the simulated time and whether it is frozen. POST {"advance": seconds} or {"set": epoch}, and/or
    {"frozen": true|false}: a frozen clock moves only when told; unfrozen, it runs on from where it stood."""
    sb = _sb(request)
    if request.method == "POST":
        body = await _body(request)
        frozen = body.get("frozen")
        if frozen is not None and not isinstance(frozen, bool):
            raise BadRequest("frozen must be true or false")
        advance, to = _number(body, "advance", low=-(10**10), high=10**10), _number(body, "set", high=10**11)
        _settle_delivery(sb)  # days completed so far are simulated with the objects as they are now
        sb.move_clock(frozen=frozen, advance=advance, to=to)
    return web.json_response(sb.clock.snapshot())


async def config(request: web.Request) -> web.Response:
    sb = _sb(request)
    if request.method == "POST":
        try:
            sb.config.update(await _body(request))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    return web.json_response(sb.config.as_dict())


async def faults(request: web.Request) -> web.Response:
    sb = _sb(request)
    if request.method == "POST":
        return web.json_response(sb.faults.add(await _body(request)).describe())
    if request.method == "DELETE":
        sb.faults.clear()
        return web.json_response({"success": True})
    return web.json_response({"data": sb.faults.describe()})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(_sb(request).stats.as_dict())


async def stats_reset(request: web.Request) -> web.Response:
    _sb(request).stats.reset()
    return web.json_response({"success": True})


async def usage_reset(request: web.Request) -> web.Response:
    """Forget every account's rate-limit score and blocks (benchmarks measure speed, not throttling)."""
    _sb(request).usage.reset()
    return web.json_response({"success": True})


async def objects(request: web.Request) -> web.Response:
    sb = _sb(request)
    kind = request.query.get("type", "campaign")
    account = request.query.get("account_id")
    rows = sb.store.list(kind, account_id=account)
    return web.json_response(
        {"data": [{**o, "_type": o.type, "_created": o.created, "_updated": o.updated} for o in rows]}
    )


def _settle_delivery(sb: Sandbox) -> None:
    from . import delivery

    try:
        delivery.settle(sb)
    except Exception:  # noqa: BLE001 - moving the clock never fails because of the simulation
        import logging

        logging.getLogger("fb_sandbox").exception("delivery simulation failed")


async def delivery_route(request: web.Request) -> web.Response:
    """GET: seed and simulated days per account. POST {"seed": n} (future days only), {"true_effects":
    {ad_id: multiplier}}, {"scenario": {...}} (delivery.create_scenario)."""
    from . import delivery

    sb = _sb(request)
    if request.method == "POST":
        body = await _body(request)
        out: dict[str, Any] = {}
        if "seed" in body:
            seed_value = body["seed"]
            if isinstance(seed_value, bool) or not isinstance(seed_value, int):
                raise BadRequest("seed must be an integer")
            delivery.set_seed(sb, seed_value)
        if "true_effects" in body:
            effects = body["true_effects"]
            if not isinstance(effects, dict):
                raise BadRequest('true_effects must map ad ids to non-negative numbers or {"ctr", "cvr"} objects')
            try:
                delivery.set_true_effects(sb, effects)
            except ValueError as exc:
                raise BadRequest(f"true_effects: {exc}") from None
        if "scenario" in body:
            try:
                out["scenario"] = delivery.create_scenario(sb, body["scenario"])
            except delivery.ScenarioError as exc:
                raise BadRequest(str(exc)) from None
        return web.json_response({**delivery.status(sb), **out})
    return web.json_response(delivery.status(sb))


ACCOUNT_STATUSES = (1, 2, 3, 7, 8, 9, 100, 101, 201, 202)
ACCOUNT_FIELDS = ("id", "name", "account_status", "disable_reason", "currency", "timezone_name")


async def account_route(request: web.Request) -> web.Response:
    """GET: an ad account's status fields. POST {"account_status": n, "disable_reason": n}: set them (a billing
    failure is 3 UNSETTLED; 1 ACTIVE again). Days already simulated keep their delivery; from the next simulated
    day an account outside ACTIVE/IN_GRACE_PERIOD delivers nothing."""
    sb = _sb(request)
    account_id = request.match_info["account_id"]
    if not account_id.startswith("act_"):
        account_id = f"act_{account_id}"
    account = sb.store.get(account_id)
    if account is None or account.type != "adaccount":
        raise BadRequest(f"unknown ad account {account_id!r}")
    if request.method == "POST":
        body = await _body(request)
        unknown = sorted(set(body) - {"account_status", "disable_reason"})
        if unknown or not body:
            raise BadRequest("body takes account_status and/or disable_reason")
        changes: dict[str, Any] = {}
        if "account_status" in body:
            status = body["account_status"]
            if isinstance(status, bool) or status not in ACCOUNT_STATUSES:
                raise BadRequest(f"account_status must be one of {list(ACCOUNT_STATUSES)}")
            changes["account_status"] = status
        if "disable_reason" in body:
            changes["disable_reason"] = int(_number(body, "disable_reason", high=100))
        elif changes.get("account_status") == 1:
            changes["disable_reason"] = 0
        _settle_delivery(sb)  # the days completed so far were delivered under the old status
        sb.store.update(account_id, {**account, **changes}, now=sb.now())
        account = sb.store.get(account_id) or account
    return web.json_response({k: account.get(k) for k in ACCOUNT_FIELDS})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/__sandbox/tokens", tokens)
    r.add_get("/__sandbox/app", app_info)
    r.add_post("/__sandbox/apps", set_app)
    r.add_post("/__sandbox/reset", reset)
    r.add_post("/__sandbox/seed", seed)
    r.add_post("/__sandbox/users", users)
    r.add_route("GET", "/__sandbox/clock", clock)
    r.add_route("POST", "/__sandbox/clock", clock)
    r.add_route("GET", "/__sandbox/config", config)
    r.add_route("POST", "/__sandbox/config", config)
    for method in ("GET", "POST", "DELETE"):
        r.add_route(method, "/__sandbox/faults", faults)
    r.add_get("/__sandbox/stats", stats)
    r.add_post("/__sandbox/stats/reset", stats_reset)
    r.add_post("/__sandbox/usage/reset", usage_reset)
    r.add_get("/__sandbox/objects", objects)
    r.add_route("GET", "/__sandbox/delivery", delivery_route)
    r.add_route("POST", "/__sandbox/delivery", delivery_route)
    r.add_route("GET", "/__sandbox/accounts/{account_id}", account_route)
    r.add_route("POST", "/__sandbox/accounts/{account_id}", account_route)
    from .media import add_routes as add_media_routes

    add_media_routes(app, SANDBOX_KEY)
    from .previews import preview_page

    r.add_get("/__sandbox/preview/{token}", preview_page)
    from .edges import picture_file

    r.add_get("/__sandbox/media/picture/{name}", picture_file)

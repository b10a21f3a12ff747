"""Graph routing: one `execute` used by direct HTTP calls and by batch items alike."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import (
    accounts,
    ads,
    adsets,
    audiences,
    batch,
    business,
    campaigns,
    creatives,
    edges,
    estimates,
    insights,
    legacy,
    media,
    oauth,
    pixels,
    previews,
    search,
    studies,
)
from .apps import app_created
from .auth import Principal, authenticate
from .context import Ctx, GraphCall, GraphResult, account_digits
from .errors import GraphError, internal_error, param_error, unknown_path, unsupported
from .fields import CURRENT
from .params import Params
from .state import Sandbox
from .store import Obj

Handler = Callable[[Ctx], Any]

ROUTES: list[tuple[str, re.Pattern, Handler]] = [
    (m, re.compile(rx), h)
    for m, rx, h in [
        ("GET", r"me", accounts.get_me),
        ("GET", r"me/adaccounts", accounts.list_adaccounts),
        ("GET", r"me/businesses", accounts.list_businesses),
        ("GET", r"me/accounts", accounts.list_pages),
        ("GET", r"me/permissions", oauth.list_permissions),
        ("DELETE", r"me/permissions", oauth.revoke_permissions),
        ("DELETE", r"me/permissions/([A-Za-z0-9_]+)", oauth.revoke_permissions),
        ("GET", r"debug_token", oauth.debug_token),
        ("GET", r"(\d+)/business_users", business.list_business_users),
        ("GET", r"(\d+)/owned_ad_accounts", business.list_owned_accounts),
        ("POST", r"(\d+)/adaccount", business.create_ad_account),
        ("GET", r"(act_\d+)/assigned_users", business.list_assigned_users),
        ("POST", r"(act_\d+)/assigned_users", business.assign_user),
        ("DELETE", r"(act_\d+)/assigned_users", business.remove_user),
        ("GET", r"(act_\d+)", accounts.get_account),
        ("POST", r"(act_\d+)", accounts.update_account),
        ("GET", r"(act_\d+)/users", accounts.list_account_users),
        ("GET", r"(act_\d+)/instagram_accounts", accounts.list_account_instagram),
        ("GET", r"(act_\d+)/adspixels", pixels.list_pixels),
        ("POST", r"(act_\d+)/adspixels", pixels.create_pixel),
        ("GET", r"(\d+)/stats", pixels.pixel_stats),
        ("POST", r"(\d+)/events", pixels.post_events),
        ("GET", r"(act_\d+)/customconversions", pixels.list_conversions),
        ("POST", r"(act_\d+)/customconversions", pixels.create_conversion),
        ("GET", r"(act_\d+)/customaudiences", audiences.list_audiences),
        ("POST", r"(act_\d+)/customaudiences", audiences.create_audience),
        ("POST", r"(\d+)/users", audiences.add_users),
        ("DELETE", r"(\d+)/users", audiences.remove_users),
        ("POST", r"(\d+)/usersreplace", audiences.replace_users),
        ("GET", r"(\d+)/sessions", audiences.list_sessions),
        ("GET", r"(act_\d+)/saved_audiences", audiences.list_saved),
        ("GET", r"(act_\d+)/ad_studies", studies.list_account_studies),
        ("GET", r"(\d+)/ad_studies", studies.list_studies),
        ("POST", r"(\d+)/ad_studies", studies.create_study),
        ("GET", r"(\d+)/cells", studies.list_cells),
        ("GET", r"(act_\d+)/campaigns", campaigns.list_campaigns),
        ("POST", r"(act_\d+)/campaigns", campaigns.create_campaign),
        ("GET", r"(act_\d+)/adsets", adsets.list_account_adsets),
        ("POST", r"(act_\d+)/adsets", adsets.create_adset),
        ("GET", r"(\d+)/adsets", adsets.list_campaign_adsets),
        ("GET", r"(\d+)/activities", adsets.list_activities),
        ("POST", r"(\d+)/copies", lambda ctx: copy_node(ctx)),
        ("GET", r"search", search.search),
        ("GET", r"(act_\d+)/adcreatives", creatives.list_creatives),
        ("POST", r"(act_\d+)/adcreatives", creatives.create_creative),
        ("GET", r"(act_\d+)/ads", ads.list_account_ads),
        ("POST", r"(act_\d+)/ads", ads.create_ad),
        ("GET", r"(\d+)/ads", ads.list_node_ads),
        ("GET", r"(\d+)/adcreatives", ads.list_node_creatives),
        ("GET", r"(\d+)/previews", previews.node_previews),
        ("GET", r"(act_\d+)/generatepreviews", previews.generate_previews),
        ("GET", r"(act_\d+)/adimages", media.list_images),
        ("POST", r"(act_\d+)/adimages", media.upload_images),
        ("DELETE", r"(act_\d+)/adimages", media.delete_image),
        ("GET", r"(act_\d+)/advideos", media.list_videos),
        ("POST", r"(act_\d+)/advideos", media.create_video),
        ("GET", r"(\d+)/thumbnails", media.list_thumbnails),
        ("GET", r"(act_\d+)/targetingsentencelines", estimates.targeting_sentence_lines),
        ("GET", r"(act_\d+)/delivery_estimate", estimates.delivery_estimate),
        ("GET", r"(act_\d+)/reachestimate", estimates.reach_estimate),
        ("GET", r"(act_\d+)/insights", insights.get_insights),
        ("POST", r"(act_\d+)/insights", insights.start_report_run),
        ("GET", r"(\d+)/insights", insights.get_insights),
        ("POST", r"(\d+)/insights", insights.start_report_run),
        ("POST", r"(act_\d+)/async_batch_requests", lambda ctx: batch.run_async_batch(ctx, execute)),
        ("GET", r"", lambda ctx: multi_read(ctx)),
        ("POST", r"", lambda ctx: batch.run_batch(ctx, execute)),
    ]
]

NODE_METHODS: dict[str, dict[str, Callable[[Ctx, Obj], Any]]] = {
    "campaign": {
        "GET": campaigns.read_campaign,
        "POST": campaigns.update_campaign,
        "DELETE": campaigns.delete_campaign,
    },
    "adset": {"GET": adsets.read_adset, "POST": adsets.update_adset, "DELETE": adsets.delete_adset},
    "adcreative": {
        "GET": creatives.read_creative,
        "POST": creatives.update_creative,
        "DELETE": creatives.delete_creative,
    },
    "ad": {"GET": ads.read_ad, "POST": ads.update_ad, "DELETE": ads.delete_ad},
    "video": {"GET": media.read_video, "POST": media.update_video, "DELETE": media.delete_video},
    "report_run": {"GET": insights.read_report_run},
    "customaudience": {
        "GET": audiences.read_audience,
        "POST": audiences.update_audience,
        "DELETE": audiences.delete_audience,
    },
    "savedaudience": {"GET": audiences.read_saved},
    "customconversion": {
        "GET": pixels.read_conversion,
        "POST": pixels.update_conversion,
        "DELETE": pixels.delete_conversion,
    },
    "pixel": {"GET": pixels.read_pixel, "POST": pixels.update_pixel},
    "adstudy": {"GET": studies.read_study, "POST": studies.update_study, "DELETE": studies.delete_study},
    "adstudycell": {"GET": studies.read_cell},
    "asyncrequestset": {"GET": batch.read_async_set},
    **{t: {"GET": accounts.read_node} for t in ("user", "business", "page", "instagram", "business_user")},
}
NODE_RE = re.compile(r"(\d+)")
EDGE_RE = re.compile(r"(me|act_\d+|\d+)/([A-Za-z0-9_]+)")
STUDY_TYPES = ("adstudy", "adstudycell")  # visible to the members of their business (studies.load_study)
# Routes that take no access_token (the app authenticates with client_id/client_secret).
NO_TOKEN_ROUTES: dict[str, Handler] = {"oauth/access_token": oauth.access_token}
# Routes an app token (APPID|APPSECRET) may call; any other route needs a person's token.
APP_TOKEN_OK = {oauth.debug_token}


def resolve(ctx: Ctx) -> Handler:
    method, path = ctx.call.method, ctx.call.path
    path_known = False
    for route_method, pattern, handler in ROUTES:
        match = pattern.fullmatch(path)
        if match:
            path_known = True
            if route_method == method:
                ctx.match = match.groups()
                return _with_spec_fallback(ctx, handler) if method == "GET" else handler
    spec_handler = _spec_edge(ctx) if method == "GET" else None
    if spec_handler is not None:
        return spec_handler
    node = NODE_RE.fullmatch(path)
    if node:
        obj = _load_node(ctx, node.group(1))
        node_handler = NODE_METHODS.get(obj.type, {}).get(method)
        if node_handler is None:
            raise unsupported(method, node.group(1))
        return lambda c: node_handler(c, obj)
    if path_known:
        raise unsupported(method, path.split("/")[0] or "/")
    raise unknown_path(path)


def _with_spec_fallback(ctx: Ctx, handler: Handler) -> Handler:
    """A route that serves `{id}/{edge}` for some node types only (e.g. `{id}/adsets` for campaigns): on a node of
    another type whose SDK class has that edge, the spec edge answers instead of "Unsupported get request"."""
    if EDGE_RE.fullmatch(ctx.call.path) is None:
        return handler
    try:
        fallback = _spec_edge(ctx)
    except GraphError:
        return handler
    if fallback is None:
        return handler
    node_id = ctx.call.path.split("/", 1)[0]

    def run(c: Ctx) -> Any:
        try:
            return handler(c)
        except GraphError as err:
            if err.subcode == 33 and f"'{node_id}'" in err.message:
                return fallback(c)
            raise

    return run


def _spec_edge(ctx: Ctx) -> Handler | None:
    """GET {node}/{edge} for an edge of the node's SDK class that no route serves (fb_sandbox/edges.py)."""
    match = EDGE_RE.fullmatch(ctx.call.path)
    if match is None:
        return None
    node_id, edge = match.groups()
    if node_id == "me":
        node_id = ctx.principal.user_id
    obj = _load_node(ctx, node_id)
    return edges.spec_edge(ctx, obj, edge)


def _load_node(ctx: Ctx, obj_id: str) -> Obj:
    """A node the caller may see; studies and their cells are visible to the members of their business."""
    raw = ctx.store.get(obj_id)
    if raw is not None and raw.type in STUDY_TYPES:
        return studies.load_study(ctx, obj_id)
    return ctx.load(obj_id)


def copy_node(ctx: Ctx) -> Any:
    """POST {id}/copies: campaigns and ad sets each copy their own way."""
    obj = ctx.load(ctx.match[0], types=("campaign", "adset", "ad"))
    if obj.type == "ad":
        return ads.copy_ad(ctx)
    return adsets.copy_adset(ctx) if obj.type == "adset" else campaigns.copy_campaign(ctx)


def usage_account(sb: Sandbox, path: str) -> str | None:
    first = path.split("/", 1)[0]
    if first.startswith("act_"):
        return account_digits(first)
    if first.isdigit():
        obj = sb.store.get(first)
        if obj is not None and obj.account_id:
            return account_digits(obj.account_id)
    return None


def multi_read(ctx: Ctx) -> dict:
    ids = ctx.p.list("ids")
    if not ids:
        raise param_error("Missing the ids parameter (or a node in the path)", field="ids")
    missing = [str(i) for i in ids if _load_any(ctx, str(i)) is None]
    if missing:
        raise GraphError(f"(#803) Some of the aliases you requested do not exist: {','.join(missing)}", 803)
    out = {}
    for obj_id in (str(i) for i in ids):
        sub = Ctx(
            ctx.sb,
            GraphCall("GET", obj_id, ctx.call.params, base_url=ctx.call.base_url, version=ctx.call.version),
            ctx.principal,
            ctx.p,
        )
        out[obj_id] = resolve(sub)(sub)
    return out


def _load_any(ctx: Ctx, obj_id: str) -> Obj | None:
    obj = ctx.store.get(obj_id)
    if obj is not None and obj.type in STUDY_TYPES:
        try:
            return studies.load_study(ctx, obj_id)
        except GraphError:
            return None
    return (
        obj if obj is not None and ctx.can_see(obj) and (obj.type in NODE_METHODS or obj.type == "adaccount") else None
    )


def execute(sb: Sandbox, call: GraphCall) -> GraphResult:
    """Authenticate, route, charge usage and run one Graph call; errors become Facebook error bodies."""
    now = sb.now()
    digits: str | None = None
    try:
        if call.path in NO_TOKEN_ROUTES:
            if call.method not in ("GET", "POST"):
                raise unsupported(call.method, call.path)
            ctx = Ctx(sb, call, Principal("", "", "none", []), Params(call.params))
            return GraphResult(200, NO_TOKEN_ROUTES[call.path](ctx), _usage_headers(sb, None, call))
        used = legacy.legacy_features(call)
        forbidden = used + ([] if call.path == "" and call.method == "POST" else legacy.forbidden_content(call.params))
        if forbidden:
            app_id = _token_app_quietly(sb, call)
            legacy.record(
                sb,
                call,
                forbidden,
                app_id=app_id,
                new_app=None if app_id is None else legacy.is_new_app(app_created(sb.store, app_id)),
            )
        principal = authenticate(
            sb.store,
            _token(call),
            call.params.get("appsecret_proof"),
            now=now,
            require_proof=sb.config.require_appsecret_proof,
        )
        if used and legacy.is_new_app(app_created(sb.store, principal.app_id)):
            raise legacy.refusal(used[0])
        aliases = legacy.strip_aliases(call.params) if "field_alias" in used else {}
        jsonp = legacy.check_callback(call.params["callback"]) if "jsonp" in used else None
        ctx = Ctx(sb, call, principal, Params(call.params))
        current = CURRENT.set(ctx)
        try:
            handler = resolve(ctx)
            if principal.kind == "app" and handler not in APP_TOKEN_OK:
                raise GraphError(
                    "An active access token must be used to query information about the current user.", 2500
                )
            digits = usage_account(sb, call.path)
            sb.usage.charge(digits, write=call.method != "GET", now=now, tier=sb.config.access_tier)
            body = handler(ctx)
        finally:
            CURRENT.reset(current)
        if isinstance(body, GraphResult):  # a handler that answers other than 200 (a redirect)
            return GraphResult(body.status, body.body, {**_usage_headers(sb, digits, call), **body.headers})
        body = legacy.apply_aliases(body, aliases)
        if "date_format" in used and isinstance(call.params.get("date_format"), str):
            body = legacy.apply_date_format(body, call.params["date_format"])
        return GraphResult(200, body, _usage_headers(sb, digits, call), jsonp)
    except GraphError as err:
        headers = {**_usage_headers(sb, digits, call), **err.headers}
        return GraphResult(err.http_status, err.body(), headers)
    except Exception:  # noqa: BLE001 - last line: never a traceback, always a Graph error body
        import logging

        logging.getLogger("fb_sandbox").exception("unexpected error on %s %s", call.method, call.path)
        internal = internal_error()
        return GraphResult(internal.http_status, internal.body(), _usage_headers(sb, digits, call))


def _token_app_quietly(sb: Sandbox, call: GraphCall) -> str | None:
    """The app a call's token belongs to, or None (the token is checked properly afterwards)."""
    from .auth import app_token_app, token_app

    token = _token(call)
    if not token:
        return None
    if "|" in token:
        return app_token_app(sb.store, token)
    row = sb.store.get_token(token)
    return token_app(sb.store, row) if row else None


def _token(call: GraphCall) -> str | None:
    from .auth import extract_token

    return extract_token(call.params, call.authorization)


def _usage_headers(sb: Sandbox, digits: str | None, call: GraphCall) -> dict[str, str]:
    return sb.usage.headers(digits, now=sb.now(), tier=sb.config.access_tier, insights=call.path.endswith("insights"))

"""Every GET edge of a served node type's SDK class answers (fb_sandbox/spec.py): the real data where the sandbox
has it (the handlers below), else an empty, correctly paged list — never 2500 "Unknown path components" for an edge
Meta's spec lists. Routes in router.ROUTES keep answering the edges they serve; this is the fallback for the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import spec
from .accounts import render_account, render_instagram, render_page, render_pixel
from .context import Ctx, GraphResult
from .fields import parse_fields, select
from .paging import paginate
from .rules import rule
from .store import Obj

rule(
    "edges.from_spec",
    "Every GET edge of a served node type's SDK class (the `endpoint` of each get_<x> method's "
    'FacebookRequest) answers: the sandbox\'s data where it has it, else `{"data": []}` (an empty page carries no '
    "cursors, as every sandbox edge); a path that is no spec edge keeps `(#2500) Unknown path components`",
    source="facebook_business SDK adobjects (https://github.com/facebook/facebook-business-sdk-codegen api_specs)",
    since="SDK 26.0.3",
    verified=True,
    area="edges",
)
rule(
    "edges.page_picture",
    "`/{page|user}/picture` redirects (302) to the image unless `redirect=0|false`, which "
    'answers `{"data": {"url", "is_silhouette", "height", "width"}}`; `fields=picture` answers '
    "that data form",
    source="https://developers.facebook.com/docs/graph-api/reference/page/picture/ ; "
    "https://developers.facebook.com/docs/graph-api/reference/user/picture/",
    since="any",
    verified=True,
    area="edges",
)
rule(
    "edges.recommendations",
    "`/act_x/recommendations` (AdAccount.get_recommendations, target "
    "AdAccountRecommendations) answers an empty list: the sandbox makes no recommendations",
    source="facebook_business AdAccount.get_recommendations; "
    "https://developers.facebook.com/docs/marketing-api/reference/ad-account/recommendations/",
    since="SDK 26.0.3",
    verified=False,
    area="edges",
)

EdgeHandler = Callable[[Ctx, Obj], Any]


def _fields(ctx: Ctx) -> list:
    return parse_fields(ctx.p.get("fields"))


def _empty(ctx: Ctx, obj: Obj, cls: str, edge: str) -> dict:
    """An empty page; asked fields are checked against the edge's target class when the sandbox knows it."""
    from .fields import NODE_TYPES

    target = spec.edges(cls)[edge].target
    if target in NODE_TYPES:
        select(target, _fields(ctx), ["id"], lambda n: None)
    return paginate(ctx, [], lambda o: {})


def picture(ctx: Ctx, obj: Obj) -> dict | GraphResult:
    size = {"small": 50, "normal": 100, "album": 50, "large": 200, "square": 50}.get(ctx.p.str("type") or "", 50)
    width = ctx.p.int("width") or ctx.p.int("height") or size
    height = ctx.p.int("height") or width
    url = f"{ctx.call.base_url}/__sandbox/media/picture/{obj['id']}.png?width={width}&height={height}"
    if ctx.p.bool("redirect", True):  # the edge's default: a 302 to the image (redirect=0|false: the data)
        return GraphResult(302, None, {"Location": url})
    return {"data": {"height": height, "is_silhouette": False, "url": url, "width": width}}


def _seq_desc(objs: list[Obj]) -> list[Obj]:
    return sorted(objs, key=lambda o: o.seq, reverse=True)


def business_owned_pages(ctx: Ctx, business: Obj) -> dict:
    """The pages the business's people manage (the demo pages: the sandbox keeps no separate page ownership)."""
    members = set(business.get("_user_ids", []))
    pages = [p for p in ctx.store.list("page") if ctx.can_see(p) and members & set(p.get("_user_ids", []))]
    names = _fields(ctx)
    return paginate(ctx, pages, lambda o: render_page(ctx, o, names))


def _business_accounts(ctx: Ctx, business: Obj) -> list[str]:
    return [a["id"] for a in ctx.store.list("adaccount") if a.get("_business_id") == business["id"]]


def business_pixels(ctx: Ctx, business: Obj) -> dict:
    accounts = set(_business_accounts(ctx, business))
    pixels = [p for p in ctx.store.list("pixel") if p.account_id in accounts and ctx.can_see(p)]
    names = _fields(ctx)
    select("AdsPixel", names, ["id"], lambda n: None)
    return paginate(ctx, pixels, lambda o: render_pixel(ctx, o, names))


def business_instagram(ctx: Ctx, business: Obj) -> dict:
    accounts = set(_business_accounts(ctx, business))
    objs = [o for o in ctx.store.list("instagram") if accounts & set(o.get("_account_ids", []))]
    names = _fields(ctx)
    return paginate(ctx, objs, lambda o: render_instagram(ctx, o, names))


def user_business_users(ctx: Ctx, user: Obj) -> dict:
    """GET /me/business_users: this person's business user in each business they belong to."""
    from .business import render_business_user

    objs = [bu for bu in ctx.store.list("business_user") if bu.get("_user_id") == user["id"]]
    names = _fields(ctx)
    return paginate(ctx, objs, lambda o: render_business_user(ctx, o, names))


def account_activities(ctx: Ctx, account: Obj) -> dict:
    """GET /act_x/activities: the changes the sandbox recorded on the account's objects (ad set budgets today)."""
    from .adsets import _bound, _check_activity_fields, render_activity

    since, until = _bound(ctx, "since"), _bound(ctx, "until")
    items = [
        o
        for o in ctx.store.list("activity", account_id=account["id"])
        if (since is None or o["_time"] >= since) and (until is None or o["_time"] <= until)
    ]
    names = _fields(ctx)
    _check_activity_fields(names)
    return paginate(ctx, _seq_desc(items), lambda o: render_activity(o, names))


def account_studies(ctx: Ctx, account: Obj) -> Any:
    """GET /act_x/impacting_ad_studies: the studies whose cells hold the account's campaigns or ad sets."""
    from .studies import list_account_studies

    ctx.match = (account["id"],)
    return list_account_studies(ctx)


def user_accounts_edge(ctx: Ctx, user: Obj) -> dict:
    objs = [o for o in (ctx.store.get(a) for a in user.get("_account_ids", [])) if o is not None]
    names = _fields(ctx)
    return paginate(
        ctx, sorted(objs, key=lambda o: o.seq), lambda o: render_account(ctx, o, names, ["account_id", "id"])
    )


# (stored node type, edge) -> handler; every other spec edge answers an empty page
HANDLERS: dict[tuple[str, str], EdgeHandler] = {
    ("page", "picture"): picture,
    ("user", "picture"): picture,
    ("business", "picture"): picture,
    ("business", "owned_pages"): business_owned_pages,
    ("business", "adspixels"): business_pixels,
    ("business", "owned_pixels"): business_pixels,
    ("business", "owned_instagram_accounts"): business_instagram,
    ("business", "instagram_accounts"): business_instagram,
    ("user", "business_users"): user_business_users,
    ("user", "assigned_ad_accounts"): user_accounts_edge,
    ("adaccount", "activities"): account_activities,
    ("adaccount", "impacting_ad_studies"): account_studies,
}


def spec_edge(ctx: Ctx, obj: Obj, edge: str) -> Callable[[Ctx], Any] | None:
    """The handler for GET {obj}/{edge} when `edge` is a GET edge of obj's SDK class, else None."""
    cls = spec.class_of(obj.type)
    if cls is None or edge not in spec.get_edges(cls):
        return None
    handler = HANDLERS.get((obj.type, edge))
    if handler is not None:
        return lambda c: handler(c, obj)
    return lambda c: _empty(c, obj, cls, edge)


def _png(width: int, height: int) -> bytes:
    """A plain grey PNG of that size (the silhouette-free stand-in for a profile picture)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x99" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


async def picture_file(request):
    """GET /__sandbox/media/picture/{id}.png?width=&height=: the image a picture URL points at."""
    from aiohttp import web

    def size(name: str) -> int:
        value = request.query.get(name, "50")
        return min(max(int(value), 1), 1024) if value.isdigit() else 50

    return web.Response(body=_png(size("width"), size("height")), content_type="image/png")

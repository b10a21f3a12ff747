"""Users, businesses, ad accounts, pages, Instagram accounts and pixels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .clock import iso
from .context import Ctx
from .errors import GraphError, param_error
from .fields import Field, parse_fields, select
from .paging import paginate
from .store import Obj


def _plain(obj: Obj, name: str) -> Any:
    if name.startswith("_"):
        return None
    return obj.get(name)


def _fields(ctx: Ctx) -> list[Field]:
    return parse_fields(ctx.p.get("fields"))


# ---- renderers per node type


def render_user(ctx: Ctx, obj: Obj, names: Sequence[str]) -> dict:
    return select("User", names, ["name", "id"], lambda n: _plain(obj, n))


def render_business(ctx: Ctx, obj: Obj, names: Sequence[str]) -> dict:
    def value(name: str) -> Any:
        if name == "created_time":
            return iso(obj.created)
        return _plain(obj, name)

    return select("Business", names, ["id", "name"], value)


def render_account(ctx: Ctx, obj: Obj, names: Sequence[str], default: list[str] | None = None) -> dict:
    def value(name: str) -> Any:
        if name == "created_time":
            return iso(obj.created)
        if name == "timezone_offset_hours_utc":
            offset = datetime.fromtimestamp(ctx.now, ZoneInfo(obj["timezone_name"])).utcoffset()
            return offset.total_seconds() / 3600 if offset is not None else 0
        if name == "business":
            business = ctx.store.get(obj.get("_business_id", ""))
            return {"id": business["id"], "name": business["name"]} if business else None
        if name == "owner":
            return obj.get("_business_id")
        if name == "age":
            return round((ctx.now - obj.created) / 86400, 6)
        return _plain(obj, name)

    return select("AdAccount", names, default or ["id"], value)


def render_page(ctx: Ctx, obj: Obj, names: Sequence[str], default: list[str] | None = None) -> dict:
    def value(name: str) -> Any:
        if name == "instagram_business_account":
            return {"id": obj["_instagram_id"]} if obj.get("_instagram_id") else None
        if name == "access_token":
            return obj.get("_page_token") if ctx.principal.user_id in obj.get("_user_ids", []) else None
        return _plain(obj, name)

    return select("Page", names, default or ["name", "id"], value)


def render_instagram(ctx: Ctx, obj: Obj, names: Sequence[str]) -> dict:
    return select("IGUser", names, ["id"], lambda n: _plain(obj, n))


def render_pixel(ctx: Ctx, obj: Obj, names: Sequence[str]) -> dict:
    def value(name: str) -> Any:
        if name == "creation_time":
            return iso(obj.created)
        if name == "last_fired_time":
            return iso(obj["_last_fired"]) if obj.get("_last_fired") else None
        return _plain(obj, name)

    return select("AdsPixel", names, ["id"], value)


RENDERERS = {
    "user": render_user,
    "business": render_business,
    "adaccount": render_account,
    "page": render_page,
    "instagram": render_instagram,
    "pixel": render_pixel,
}


def read_node(ctx: Ctx, obj: Obj) -> dict:
    if obj.type == "business_user":
        from .business import render_business_user

        return render_business_user(ctx, obj, _fields(ctx))
    return RENDERERS[obj.type](ctx, obj, _fields(ctx))


# ---- /me and its edges


def get_me(ctx: Ctx) -> dict:
    return render_user(ctx, ctx.load(ctx.principal.user_id), _fields(ctx))


def _seq_desc(objs: list[Obj]) -> list[Obj]:
    return sorted(objs, key=lambda o: o.seq, reverse=True)


def list_adaccounts(ctx: Ctx) -> dict:
    objs = [o for o in (ctx.store.get(a) for a in ctx.user_account_ids()) if o is not None]
    names = _fields(ctx)
    return paginate(
        ctx, sorted(objs, key=lambda o: o.seq), lambda o: render_account(ctx, o, names, ["account_id", "id"])
    )


def list_businesses(ctx: Ctx) -> dict:
    objs = [o for o in ctx.store.list("business") if ctx.can_see(o)]
    names = _fields(ctx)
    return paginate(ctx, objs, lambda o: render_business(ctx, o, names))


def list_pages(ctx: Ctx) -> dict:
    objs = [o for o in ctx.store.list("page") if ctx.can_see(o)]
    names = _fields(ctx)
    default = ["access_token", "category", "category_list", "name", "id", "tasks"]
    return paginate(ctx, objs, lambda o: render_page(ctx, o, names, default))


# ---- ad account node and edges


def get_account(ctx: Ctx) -> dict:
    return render_account(ctx, ctx.load_account(ctx.match[0]), _fields(ctx))


def update_account(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    changes: dict[str, Any] = {}
    if "name" in ctx.p:
        name = ctx.p.str("name")
        if not name or len(name) > 100:
            raise param_error("Param name must be a non-empty string of at most 100 characters", field="name")
        changes["name"] = name
    action = ctx.p.str("spend_cap_action")
    if action is not None and action not in ("reset", "delete"):
        raise param_error("Param spend_cap_action must be one of {reset, delete}", field="spend_cap_action")
    if "spend_cap" in ctx.p:
        changes["spend_cap"] = str(_spend_cap(ctx, account))
    if action == "delete":
        changes["spend_cap"] = "0"
    if action == "reset":
        changes["amount_spent"] = "0"
    if not changes:
        raise param_error("Requires one of the params: name, spend_cap, spend_cap_action")
    account.update(changes)
    ctx.store.update(account["id"], dict(account), now=ctx.now)
    return {"success": True}


def _spend_cap(ctx: Ctx, account: Obj) -> int:
    cap = ctx.p.int("spend_cap")
    if cap is None or cap < 0:
        raise param_error(
            "Param spend_cap must be a non-negative integer (minor units of the account currency)", field="spend_cap"
        )
    if cap > 10**13:
        raise param_error(
            "Spend cap too high",
            field="spend_cap",
            title="Spend Cap Too High",
            user_msg="The spend limit you entered is higher than the maximum allowed.",
        )
    if 0 < cap <= int(account.get("amount_spent", "0")):
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Spend Limit Too Low",
            user_msg="The account spending limit must be higher than the amount already spent.",
            blame="spend_cap",
        )
    return cap


def list_account_users(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    tasks = account.get("_user_tasks", {})
    users = [u for u in (ctx.store.get(uid) for uid in tasks) if u is not None]

    def render(user: Obj) -> dict:
        return {"id": user["id"], "name": user["name"], "tasks": tasks[user["id"]]}

    return paginate(ctx, users, render)


def list_account_instagram(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    names = _fields(ctx)
    objs = [o for o in ctx.store.list("instagram") if account["id"] in o.get("_account_ids", [])]
    return paginate(ctx, objs, lambda o: render_instagram(ctx, o, names))


def list_account_pixels(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    names = _fields(ctx)
    return paginate(ctx, ctx.store.list("pixel", account_id=account["id"]), lambda o: render_pixel(ctx, o, names))

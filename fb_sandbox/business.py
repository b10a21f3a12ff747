"""Businesses: business users, owned ad accounts, ad account creation, and who may use an ad account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.business import Business

from .accounts import render_account
from .apps import apps
from .context import Ctx
from .errors import GraphError, param_error
from .fields import parse_fields, select
from .paging import paginate
from .params import to_int
from .store import Obj


def _enum(klass) -> list[str]:
    return sorted(v for k, v in vars(klass).items() if not k.startswith("_") and isinstance(v, str))


CURRENCIES = _enum(AdAccount.Currency)
TIMEZONE_IDS = {int(v) for v in _enum(Business.TimezoneId)}
TASKS = _enum(AdAccount.Tasks)
# Implied tasks: MANAGE includes ADVERTISE, ANALYZE and DRAFT; ADVERTISE includes ANALYZE and DRAFT.
IMPLIED = {"MANAGE": ["ADVERTISE", "ANALYZE", "DRAFT"], "ADVERTISE": ["ANALYZE", "DRAFT"]}
TASK_ORDER = ["DRAFT", "ANALYZE", "ADVERTISE", "MANAGE", "AA_ANALYZE"]
# timezone_id -> tz database name for the ids the sandbox knows by name (Meta's "Timezone IDs" table, partly).
TIMEZONE_NAMES = {
    1: "America/Los_Angeles",
    2: "America/Denver",
    3: "Pacific/Honolulu",
    4: "America/Anchorage",
    5: "America/Phoenix",
    6: "America/Chicago",
    7: "America/New_York",
    8: "Asia/Dubai",
    47: "Europe/Berlin",
    57: "Europe/Paris",
    58: "Europe/London",
    77: "Asia/Tokyo",
    78: "Africa/Nairobi",
}
NO_ENTITY = ("NONE", "UNFOUND")
CREATE_PARAMS = ("name", "currency", "timezone_id", "end_advertiser", "media_agency", "partner")


def require_scope(ctx: Ctx, *scopes: str) -> None:
    """Code 200 unless the token carries one of `scopes` (app tokens never act for a person)."""
    if ctx.principal.kind == "app":
        raise GraphError("An active access token must be used to query information about the current user.", 2500)
    if not any(s in ctx.principal.scopes for s in scopes) and ctx.principal.kind != "page":
        raise GraphError(f"(#200) Requires {' or '.join(scopes)} permission to manage the object", 200)


def load_business(ctx: Ctx) -> Obj:
    return ctx.load(ctx.match[0], types=("business",))


def business_role(ctx: Ctx, business: Obj) -> str | None:
    for bu in ctx.store.list("business_user", parent_id=business["id"]):
        if bu.get("_user_id") == ctx.principal.user_id:
            return bu.get("role")
    return None


# ---- business users


def render_business_user(ctx: Ctx, obj: Obj, names: Sequence[str]) -> dict:
    def value(name: str) -> Any:
        if name == "business":
            business = ctx.store.get(obj.parent_id or "")
            return {"id": business["id"], "name": business["name"]} if business else None
        if name.startswith("_"):
            return None
        return obj.get(name)

    return select("BusinessUser", names, ["id", "name"], value)


def list_business_users(ctx: Ctx) -> dict:
    require_scope(ctx, "business_management")
    business = load_business(ctx)
    names = parse_fields(ctx.p.get("fields"))
    return paginate(
        ctx, ctx.store.list("business_user", parent_id=business["id"]), lambda o: render_business_user(ctx, o, names)
    )


def list_owned_accounts(ctx: Ctx) -> dict:
    require_scope(ctx, "business_management", "ads_management", "ads_read")
    business = load_business(ctx)
    names = parse_fields(ctx.p.get("fields"))
    objs = [o for o in ctx.store.list("adaccount") if o.get("_business_id") == business["id"] and ctx.can_see(o)]
    return paginate(ctx, objs, lambda o: render_account(ctx, o, names, ["account_id", "id"]))


# ---- POST /{business_id}/adaccount


def _entity(ctx: Ctx, name: str, business: Obj) -> str:
    value = ctx.p.str(name)
    if value is None:
        raise param_error(f"The parameter {name} is required", field=name)
    if value in NO_ENTITY:
        return value
    obj = ctx.store.get(value) if value.isdigit() else None
    if (obj is not None and obj.type in ("page", "business") and ctx.can_see(obj)) or value in apps(ctx.store):
        return value
    raise param_error(
        f"Param {name} must be a Facebook Page ID, App ID or business ID you can use, or NONE or UNFOUND", field=name
    )


def create_ad_account(ctx: Ctx) -> dict:
    require_scope(ctx, "business_management")
    business = load_business(ctx)
    if business_role(ctx, business) != "ADMIN":
        raise GraphError("(#200) Only business admins can create ad accounts for this business", 200)
    name = ctx.p.str("name")
    if not name:
        raise param_error("The parameter name is required", field="name")
    if len(name) > 100:
        raise param_error("Param name must be at most 100 characters", field="name")
    currency = ctx.p.str("currency")
    if not currency:
        raise param_error("The parameter currency is required", field="currency")
    if currency not in CURRENCIES:
        raise param_error(f"Param currency must be one of {{{', '.join(CURRENCIES)}}}", field="currency")
    if ctx.p.get("timezone_id") in (None, ""):
        raise param_error("The parameter timezone_id is required", field="timezone_id")
    tz = to_int(ctx.p.get("timezone_id"))
    if tz is None or tz not in TIMEZONE_IDS:
        raise param_error(
            "Param timezone_id must be a valid timezone id (see the SDK's Business.TimezoneId)", field="timezone_id"
        )
    end_advertiser = _entity(ctx, "end_advertiser", business)
    media_agency = _entity(ctx, "media_agency", business)
    partner = _entity(ctx, "partner", business)
    digits = ctx.store.new_id("adaccount")
    act = f"act_{digits}"
    data = {
        "id": act,
        "account_id": digits,
        "name": name,
        "currency": currency,
        "timezone_id": tz,
        "timezone_name": TIMEZONE_NAMES.get(tz, "Etc/UTC"),
        "min_daily_budget": 100,
        "account_status": 1,
        "disable_reason": 0,
        "balance": "0",
        "amount_spent": "0",
        "spend_cap": "0",
        "is_personal": 0,
        "capabilities": [],
        "end_advertiser": end_advertiser,
        "media_agency": media_agency,
        "partner": partner,
        "_business_id": business["id"],
        "_user_tasks": {ctx.principal.user_id: list(TASK_ORDER[:4])},
    }
    ctx.store.insert("adaccount", act, data, parent_id=business["id"], now=ctx.now)
    _grant_account(ctx, ctx.principal.user_id, act)

    def entity_id(value: str) -> str:
        return business["id"] if value in NO_ENTITY else value

    return {
        "id": act,
        "account_id": digits,
        "business_id": business["id"],
        "end_advertiser_id": entity_id(end_advertiser),
        "media_agency_id": entity_id(media_agency),
        "partner_id": entity_id(partner),
    }


def _grant_account(ctx: Ctx, user_id: str, act: str) -> None:
    user = ctx.store.get(user_id)
    if user is not None and act not in user.get("_account_ids", []):
        ctx.store.update(user_id, {**user, "_account_ids": [*user.get("_account_ids", []), act]}, now=ctx.now)


def _drop_account(ctx: Ctx, user_id: str, act: str) -> None:
    user = ctx.store.get(user_id)
    if user is not None and act in user.get("_account_ids", []):
        ctx.store.update(user_id, {**user, "_account_ids": [a for a in user["_account_ids"] if a != act]}, now=ctx.now)


# ---- /act_x/assigned_users


def _account_business(ctx: Ctx) -> tuple[Obj, Obj]:
    account = ctx.load_account(ctx.match[0])
    business = ctx.store.get(account.get("_business_id", ""))
    if business is None:
        raise GraphError("(#100) This ad account does not belong to a business", 100)
    return account, business


def _business_user(ctx: Ctx, business: Obj, value: Any) -> Obj:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    obj = ctx.store.get(text) if text.isdigit() else None
    if obj is None or obj.type != "business_user" or obj.parent_id != business["id"]:
        raise param_error(f"Param user must be the id of a business user of business {business['id']}", field="user")
    return obj


def _expand(tasks: list[str]) -> list[str]:
    wanted = set(tasks)
    for task in tasks:
        wanted |= set(IMPLIED.get(task, []))
    return [t for t in TASK_ORDER if t in wanted]


def list_assigned_users(ctx: Ctx) -> dict:
    require_scope(ctx, "business_management", "ads_management", "ads_read")
    account, business = _account_business(ctx)
    wanted = ctx.p.str("business")
    if not wanted:
        raise param_error("The parameter business is required", field="business")
    if wanted != business["id"]:
        raise param_error(f"Param business must be the business that owns {account['id']}", field="business")
    tasks = account.get("_user_tasks", {})
    users = [bu for bu in ctx.store.list("business_user", parent_id=business["id"]) if bu.get("_user_id") in tasks]
    names = parse_fields(ctx.p.get("fields"))

    def render(bu: Obj) -> dict:
        def value(name: str) -> Any:
            if name in ("tasks", "permitted_tasks"):
                return tasks[bu["_user_id"]]
            if name == "user_type":
                return "BUSINESS_USER"
            if name == "business":
                return {"id": business["id"], "name": business["name"]}
            return bu.get(name) if not name.startswith("_") else None

        return select("AssignedUser", names, ["id", "name", "tasks"], value)

    return paginate(ctx, users, render)


def _require_manage(ctx: Ctx, account: Obj) -> None:
    require_scope(ctx, "business_management")
    if "MANAGE" not in account.get("_user_tasks", {}).get(ctx.principal.user_id, []):
        raise GraphError("(#200) You need the MANAGE task on this ad account to change who can use it", 200)


def assign_user(ctx: Ctx) -> dict:
    account, business = _account_business(ctx)
    _require_manage(ctx, account)
    if ctx.p.get("user") in (None, ""):
        raise param_error("The parameter user is required", field="user")
    bu = _business_user(ctx, business, ctx.p.get("user"))
    tasks = ctx.p.list("tasks")
    if not tasks:
        raise param_error("The parameter tasks is required", field="tasks")
    for i, task in enumerate(tasks):
        if task not in TASKS:
            raise param_error(f"Param tasks[{i}] must be one of {{{', '.join(TASKS)}}}", field="tasks")
    user_tasks = dict(account.get("_user_tasks", {}))
    user_tasks[bu["_user_id"]] = _expand([str(t) for t in tasks])
    ctx.store.update(account["id"], {**account, "_user_tasks": user_tasks}, now=ctx.now)
    _grant_account(ctx, bu["_user_id"], account["id"])
    return {"success": True}


def remove_user(ctx: Ctx) -> dict:
    account, business = _account_business(ctx)
    _require_manage(ctx, account)
    if ctx.p.get("user") in (None, ""):
        raise param_error("The parameter user is required", field="user")
    bu = _business_user(ctx, business, ctx.p.get("user"))
    user_tasks = dict(account.get("_user_tasks", {}))
    if bu["_user_id"] not in user_tasks:
        raise param_error(f"Business user {bu['id']} is not assigned to {account['id']}", field="user")
    del user_tasks[bu["_user_id"]]
    ctx.store.update(account["id"], {**account, "_user_tasks": user_tasks}, now=ctx.now)
    _drop_account(ctx, bu["_user_id"], account["id"])
    return {"success": True}

"""Ads: create, read, list, update, delete, copies, and ad review (rules A1, A2 of docs/creative_rules.md).

Review is computed at read time from the sandbox clock: an ad is PENDING_REVIEW for REVIEW_SECONDS after it was
submitted (created, copied, or given another creative), then DISAPPROVED when its creative's text breaks a policy,
else ACTIVE or PAUSED / CAMPAIGN_PAUSED / ADSET_PAUSED by its own and its parents' status.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from facebook_business.adobjects.ad import Ad

from . import campaigns, creatives
from .clock import iso
from .context import Ctx
from .errors import GraphError, param_error
from .fields import parse_fields, select
from .paging import apply_filtering, paginate
from .store import Obj

_enum = campaigns._enum
STATUSES = _enum(Ad.Status)
STATUS_OPTIONS = _enum(Ad.StatusOption)
EXECUTION_OPTIONS = _enum(Ad.ExecutionOptions)
EFFECTIVE_STATUSES = _enum(Ad.EffectiveStatus)
REVIEW_SECONDS = 600
DISAPPROVED_CODE = 1815694
DEFAULT_FIELDS = ["id"]

# (pattern, policy, reason): text the sandbox's reviewer refuses, in the spirit of Meta's Advertising Standards.
POLICY_RULES = [
    (
        r"\bguaranteed\s+(income|returns?|profits?|earnings|money)\b",
        "Unrealistic Outcomes",
        "Ads can't promise guaranteed income, profits or financial returns.",
    ),
    (
        r"\bget[\s-]+rich[\s-]+quick\b",
        "Unrealistic Outcomes",
        "Ads can't promote get-rich-quick schemes or promise fast, easy money.",
    ),
    (
        r"\bmake\s+[$€£¥]?\s?\d[\d,.]*\s*(k\b)?\s*(\$|€|£|dollars?|euros?|usd|bucks)?\s*(a|per|each|every)\s+day\b",
        "Unrealistic Outcomes",
        "Ads can't promise that people will earn a set amount of money a day.",
    ),
    (
        r"\blose\s+\d+([.,]\d+)?\s*(kg|kgs|kilos?|kilograms?|lbs?|pounds)\s+in\b",
        "Personal Health and Appearance",
        "Ads can't promise a specific weight loss in a set time.",
    ),
    (
        r"\bmiracle\s+(cure|pill|remedy)\b",
        "Misleading Claims",
        "Ads can't claim miracle cures or other health results that can't be true.",
    ),
]
_POLICY_RES = [(re.compile(rx, re.IGNORECASE), policy, reason) for rx, policy, reason in POLICY_RULES]


def policy_violation(creative: dict | None) -> dict | None:
    """The first policy the creative's text breaks: {policy, reason, phrase}, or None."""
    for text in creatives.creative_texts(creative or {}):
        for pattern, policy, reason in _POLICY_RES:
            match = pattern.search(text)
            if match:
                return {"policy": policy, "reason": reason, "phrase": match.group(0)[:80]}
    return None


def new_review(now: float, creative: dict | None) -> dict:
    return {"submitted": now, "violation": policy_violation(creative)}


def _a1_adset(msg: str) -> GraphError:
    return GraphError(
        "Invalid parameter", 100, subcode=1487079, user_title="Ad Set Not Valid", user_msg=msg, blame="adset_id"
    )


def _a1_creative(msg: str) -> GraphError:
    return GraphError(
        "Invalid parameter", 100, subcode=1487242, user_title="Ad Creative Not Valid", user_msg=msg, blame="creative"
    )


# ---- status


def in_review(a: dict, now: float) -> bool:
    return now - (a.get("_review") or {}).get("submitted", 0) < REVIEW_SECONDS


def effective_status(a: dict, adset: dict | None, campaign: dict | None, now: float) -> str:
    status = a["status"]
    if status in ("DELETED", "ARCHIVED"):
        return status
    if in_review(a, now):
        return "PENDING_REVIEW"
    if (a.get("_review") or {}).get("violation"):
        return "DISAPPROVED"
    if status != "ACTIVE":
        return status
    if campaign is not None and campaign.get("status") != "ACTIVE":
        return "CAMPAIGN_PAUSED"
    if adset is not None and adset.get("status") != "ACTIVE":
        return "ADSET_PAUSED"
    return "ACTIVE"


def _rejected(a: dict, now: float) -> dict | None:
    violation = (a.get("_review") or {}).get("violation")
    return violation if violation and not in_review(a, now) and a["status"] not in ("DELETED",) else None


# ---- rendering


class Parents:
    """Ad sets and campaigns by id, loaded once per answer."""

    def __init__(self, ctx: Ctx, account_id: str | None = None) -> None:
        self.ctx = ctx
        self.cache: dict[str, Obj | None] = {}
        if account_id:
            for kind in ("adset", "campaign"):
                for o in ctx.store.list(kind, account_id=account_id):
                    self.cache[o["id"]] = o

    def get(self, obj_id: str) -> Obj | None:
        if obj_id not in self.cache:
            self.cache[obj_id] = self.ctx.store.get(obj_id)
        return self.cache[obj_id]

    def status(self, a: dict) -> str:
        return effective_status(a, self.get(a["adset_id"]), self.get(a["campaign_id"]), self.ctx.now)


def _render_value(ctx: Ctx, a: Obj, name: str, parents: Parents) -> Any:
    if name == "created_time":
        return iso(a.created)
    if name == "updated_time":
        return iso(a.updated)
    if name == "configured_status":
        return a["status"]
    if name == "effective_status":
        return parents.status(a)
    if name == "adset":
        return {"id": a["adset_id"]}
    if name == "campaign":
        return {"id": a["campaign_id"]}
    if name == "issues_info":
        violation = _rejected(a, ctx.now)
        if not violation:
            return None
        return [
            {
                "level": "AD",
                "error_code": DISAPPROVED_CODE,
                "error_summary": f"Ad not approved: {violation['policy']}",
                "error_message": f'{violation["reason"]} Your ad says "{violation["phrase"]}". Edit the ad\'s text '
                "(give it a new creative) to request another review.",
                "error_type": "HARD_ERROR",
            }
        ]
    if name == "ad_review_feedback":
        violation = _rejected(a, ctx.now)
        return {"global": {violation["policy"]: violation["reason"]}} if violation else None
    if name == "source_ad":
        return {"id": a["source_ad_id"]} if a.get("source_ad_id", "0") != "0" else None
    if name == "preview_shareable_link":
        from .previews import preview_url

        return preview_url(ctx, "a", a["id"], "MOBILE_FEED_STANDARD")
    if name in ("targeting", "bid_amount"):
        adset = parents.get(a["adset_id"])
        return adset.get(name) if adset else None
    if name == "special_ad_categories":
        campaign = parents.get(a["campaign_id"])
        return campaign.get("special_ad_categories") if campaign else None
    if name.startswith("_"):
        return None
    return a.get(name)


def render(ctx: Ctx, a: Obj, names: Sequence[str], parents: Parents) -> dict:
    return select("Ad", names, DEFAULT_FIELDS, lambda n: _render_value(ctx, a, n, parents))


# ---- parsing


def _options(ctx: Ctx) -> list[str]:
    options = ctx.p.list("execution_options", [])
    for i, option in enumerate(options):
        if option not in EXECUTION_OPTIONS:
            raise campaigns._one_of(f"execution_options[{i}]", EXECUTION_OPTIONS)
    return options


def load_adset(ctx: Ctx, account: Obj, adset_id: Any) -> Obj:
    """A1: a live ad set of this ad account."""
    if adset_id is None or adset_id == "":
        raise _a1_adset("An ad needs adset_id: the ad set it runs in.")
    if not isinstance(adset_id, (str, int)) or isinstance(adset_id, bool) or not str(adset_id).isdigit():
        raise _a1_adset("adset_id must be the id of an ad set of this ad account.")
    adset = ctx.store.get(str(adset_id))
    if adset is None or adset.type != "adset" or adset.account_id != account["id"]:
        raise _a1_adset(f"The ad set {adset_id} isn't an ad set of the ad account {account['id']}.")
    if adset["status"] in ("DELETED", "ARCHIVED"):
        raise _a1_adset(f"The ad set {adset_id} is {adset['status'].lower()}, so no ad can be added to it.")
    return adset


def _creative_id(ctx: Ctx, account: Obj, value: Any, *, insert: bool) -> str:
    """A1: `creative` is {"creative_id": id} of this account (or a creative spec, created on the way)."""
    if isinstance(value, str):
        parsed = ctx.p.json("creative")
        value = parsed if isinstance(parsed, dict) else {"creative_id": value} if value.isdigit() else parsed
    if value is None:
        raise _a1_creative('An ad needs a creative: creative={"creative_id": "<id>"}.')
    if not isinstance(value, dict):
        raise _a1_creative('creative must be a JSON object such as {"creative_id": "<id>"}.')
    if "creative_id" not in value and ("object_story_spec" in value or "object_story_id" in value):
        data = creatives.build_creative(ctx, account, value)
        return creatives.insert_creative(ctx, account, data) if insert else ""
    creative_id = value.get("creative_id", value.get("id"))
    if not isinstance(creative_id, (str, int)) or isinstance(creative_id, bool) or not str(creative_id).isdigit():
        raise _a1_creative('creative must name a creative of this ad account: {"creative_id": "<id>"}.')
    creative = ctx.store.get(str(creative_id))
    if (
        creative is None
        or creative.type != "adcreative"
        or creative.account_id != account["id"]
        or creative.get("status") == "DELETED"
    ):
        raise _a1_creative(f"The creative {creative_id} isn't a creative of the ad account {account['id']}.")
    return creative["id"]


def _tracking_specs(ctx: Ctx) -> list:
    specs = ctx.p.json("tracking_specs")
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise param_error("Param tracking_specs must be an array of objects", field="tracking_specs")
    return specs


def _status(ctx: Ctx, allowed: list[str]) -> str:
    status = ctx.p.str("status")
    if status not in allowed:
        raise campaigns._one_of("status", allowed)
    return status


# ---- handlers


def create_ad(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    options = _options(ctx)
    name = campaigns._parse_name(ctx)
    status = _status(ctx, ["ACTIVE", "PAUSED"]) if "status" in ctx.p else "ACTIVE"
    adset = load_adset(ctx, account, ctx.p.get("adset_id"))
    validate_only = "validate_only" in options
    creative_id = _creative_id(ctx, account, ctx.p.get("creative"), insert=not validate_only)
    data: dict[str, Any] = {
        "account_id": account["account_id"],
        "name": name,
        "status": status,
        "adset_id": adset["id"],
        "campaign_id": adset["campaign_id"],
        "source_ad_id": "0",
    }
    if "tracking_specs" in ctx.p:
        data["tracking_specs"] = _tracking_specs(ctx)
    if "adlabels" in ctx.p:
        data["adlabels"] = campaigns._parse_adlabels(ctx)
    if validate_only:
        return {"success": True}
    data["creative"] = {"id": creative_id}
    return {"id": insert_ad(ctx, account, data)}


def insert_ad(ctx: Ctx, account: Obj, data: dict) -> str:
    ad_id = ctx.store.new_id("ad")
    data = {**data, "id": ad_id, "last_updated_by_app_id": ctx.principal.app_id}
    data["adlabels"] = campaigns.resolve_labels(ctx, account["id"], data.get("adlabels", []))
    data["_review"] = new_review(ctx.now, ctx.store.get(data["creative"]["id"]))
    ctx.store.insert("ad", ad_id, data, parent_id=data["adset_id"], account_id=account["id"], now=ctx.now)
    return ad_id


def read_ad(ctx: Ctx, a: Obj) -> dict:
    return render(ctx, a, parse_fields(ctx.p.get("fields")), Parents(ctx))


def _state_rules(a: Obj, changes: dict) -> None:
    if a["status"] == "DELETED":
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Ad Deleted",
            user_msg="This ad has been deleted, so it can't be edited.",
            blame="status",
        )
    leaving_archive = set(changes) - {"status"} or changes.get("status") not in ("ARCHIVED", "DELETED")
    if a["status"] == "ARCHIVED" and leaving_archive:
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Archived Ad Can't Be Edited",
            user_msg="This ad is archived. An archived ad can only be deleted.",
            blame="status",
        )


def update_ad(ctx: Ctx, a: Obj) -> dict:
    account = ctx.load_account(a.account_id)
    options = _options(ctx)
    changes: dict[str, Any] = {}
    if "name" in ctx.p:
        changes["name"] = campaigns._parse_name(ctx)
    if "status" in ctx.p:
        changes["status"] = _status(ctx, STATUSES)
    if "adset_id" in ctx.p and str(ctx.p.get("adset_id")) != a["adset_id"]:
        raise param_error(
            "An ad can't be moved to another ad set; copy it instead (POST /{ad_id}/copies)", field="adset_id"
        )
    if "tracking_specs" in ctx.p:
        changes["tracking_specs"] = _tracking_specs(ctx)
    if "adlabels" in ctx.p:
        changes["adlabels"] = campaigns._parse_adlabels(ctx)
    new_creative = None
    if "creative" in ctx.p:
        new_creative = _creative_id(ctx, account, ctx.p.get("creative"), insert="validate_only" not in options)
    _state_rules(a, {**changes, **({"creative": 1} if new_creative else {})})
    if "validate_only" in options or not (changes or new_creative):
        return {"success": True}
    merged = {**a, **changes, "last_updated_by_app_id": ctx.principal.app_id}
    if "adlabels" in changes:
        merged["adlabels"] = campaigns.resolve_labels(ctx, a.owner_account_id, changes["adlabels"])
    if new_creative and new_creative != a["creative"]["id"]:
        merged["creative"] = {"id": new_creative}
        merged["_review"] = new_review(ctx.now, ctx.store.get(new_creative))
    ctx.store.update(a["id"], merged, now=ctx.now)
    return {"success": True}


def delete_ad(ctx: Ctx, a: Obj) -> dict:
    if a["status"] != "DELETED":
        ctx.store.update(a["id"], {**a, "status": "DELETED"}, now=ctx.now)
    return {"success": True}


def cascade_status(ctx: Ctx, adset_id: str, status: str) -> None:
    """An ad set deleted or archived takes its ads along."""
    for a in ctx.store.list("ad", parent_id=adset_id):
        if a["status"] != "DELETED" and a["status"] != status:
            ctx.store.update(a["id"], {**a, "status": status}, now=ctx.now)


def _copy(ctx: Ctx, account: Obj, source: Obj, adset: Obj, status: str, name: str) -> str:
    data = {k: v for k, v in source.items() if k not in ("id", "_review")}
    data.update(
        adset_id=adset["id"], campaign_id=adset["campaign_id"], status=status, name=name, source_ad_id=source["id"]
    )
    return insert_ad(ctx, account, data)


def _copy_status(option: str, source_status: str) -> str:
    status = source_status if option == "INHERITED_FROM_SOURCE" else option
    return status if status in ("ACTIVE", "PAUSED") else "PAUSED"


def copy_ad(ctx: Ctx) -> dict:
    source = ctx.load(ctx.match[0], types=("ad",))
    if source["status"] == "DELETED":
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Can't Copy A Deleted Ad",
            user_msg="This ad has been deleted, so it can't be copied.",
        )
    account = ctx.load_account(source.account_id)
    option = ctx.p.str("status_option", "PAUSED")
    if option not in STATUS_OPTIONS:
        raise campaigns._one_of("status_option", STATUS_OPTIONS)
    adset = load_adset(ctx, account, ctx.p.get("adset_id") or source["adset_id"])
    new_id = _copy(
        ctx, account, source, adset, _copy_status(option, source["status"]), campaigns._copy_name(ctx, source["name"])
    )
    return {
        "copied_ad_id": new_id,
        "ad_object_ids": [{"ad_object_type": "ad", "source_id": source["id"], "copied_id": new_id}],
    }


def copy_adset_ads(ctx: Ctx, source_adset_id: str, new_adset_id: str, option: str, rename: bool) -> list[dict]:
    """A deep copy of an ad set copies its live ads; -> ad_object_ids entries."""
    adset = ctx.store.get(new_adset_id)
    account = ctx.load_account(adset.account_id)
    out = []
    for source in ctx.store.list("ad", parent_id=source_adset_id):
        if source["status"] in ("DELETED", "ARCHIVED"):
            continue
        name = campaigns._copy_name(ctx, source["name"]) if rename else source["name"]
        new_id = _copy(ctx, account, source, adset, _copy_status(option, source["status"]), name)
        out.append({"ad_object_type": "ad", "source_id": source["id"], "copied_id": new_id})
    return out


# ---- lists

FILTER_GETTERS = {
    "id": lambda a: a["id"],
    "name": lambda a: a["name"],
    "status": lambda a: a["status"],
    "configured_status": lambda a: a["status"],
    "adset_id": lambda a: a["adset_id"],
    "adset.id": lambda a: a["adset_id"],
    "campaign_id": lambda a: a["campaign_id"],
    "campaign.id": lambda a: a["campaign_id"],
    "creative.id": lambda a: a["creative"]["id"],
    "adlabels": lambda a: [v for label in a.get("adlabels", []) for v in (label.get("id"), label.get("name"))],
    "created_time": lambda a: a.created,
    "updated_time": lambda a: a.updated,
}


def _list(ctx: Ctx, items: list[Obj], account_id: str) -> dict:
    parents = Parents(ctx, account_id)
    statuses = ctx.p.list("effective_status")
    if statuses is not None:
        for i, status in enumerate(statuses):
            if status not in EFFECTIVE_STATUSES:
                raise campaigns._one_of(f"effective_status[{i}]", EFFECTIVE_STATUSES)
    items = sorted(items, key=lambda o: o.seq, reverse=True)
    if statuses:
        items = [a for a in items if parents.status(a) in statuses]
    else:
        items = [a for a in items if a["status"] not in ("DELETED", "ARCHIVED")]
    filters = ctx.p.json("filtering")
    if filters not in (None, []):
        items = apply_filtering(items, filters, {**FILTER_GETTERS, "effective_status": parents.status}, "ad")
    names = parse_fields(ctx.p.get("fields"))
    if names and not items:
        select("Ad", names, DEFAULT_FIELDS, lambda n: None)
    return paginate(ctx, items, lambda a: render(ctx, a, names, parents))


def list_account_ads(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    return _list(ctx, ctx.store.list("ad", account_id=account["id"]), account["id"])


def list_node_ads(ctx: Ctx) -> dict:
    """GET {adset_id}/ads and {campaign_id}/ads."""
    node = ctx.load(ctx.match[0], types=("adset", "campaign"))
    if node.type == "adset":
        items = ctx.store.list("ad", parent_id=node["id"])
    else:
        items = [a for a in ctx.store.list("ad", account_id=node.account_id) if a["campaign_id"] == node["id"]]
    return _list(ctx, items, node.owner_account_id)


def list_node_creatives(ctx: Ctx) -> dict:
    """GET {ad_id}/adcreatives and {adset_id}/adcreatives: the creatives its ads use."""
    node = ctx.load(ctx.match[0], types=("ad", "adset"))
    ads = (
        [node]
        if node.type == "ad"
        else [a for a in ctx.store.list("ad", parent_id=node["id"]) if a["status"] != "DELETED"]
    )
    ids = list(dict.fromkeys(a["creative"]["id"] for a in ads))
    items = [c for c in (ctx.store.get(i) for i in ids) if c is not None]
    return creatives.list_of(ctx, items)


# ---- demo data (called by seed.py)

DEMO_IMAGES = {
    "sneakers": (1200, 628, (24, 119, 242)),
    "square": (600, 600, (242, 119, 24)),
    "tokyo": (1200, 628, (196, 48, 98)),
}


_DEMO_CACHE: dict[str, bytes] = {}


def _demo_png(name: str) -> bytes:
    if name not in _DEMO_CACHE:
        from .media import make_png

        _DEMO_CACHE[name] = make_png(*DEMO_IMAGES[name])
    return _DEMO_CACHE[name]


def seed_demo_ads(sb, now: float, *, accounts: dict[str, str] | None = None, page_id: str | None = None) -> None:
    """Images, creatives and ads under the seeded ad sets: approved, parent-paused, paused and one DISAPPROVED.
    `accounts` ({"USD": act, "JPY": act}) and `page_id`: the demo world to fill (default: the first one)."""
    import hashlib

    from .media import media_files

    store = sb.store
    scope = None if accounts is None else {act[4:] for act in accounts.values()}
    adsets = {a["name"]: a for a in store.list("adset") if scope is None or a["account_id"] in scope}
    page = store.get(page_id) if page_id else next((p for p in store.list("page")), None)
    if page is None:
        return
    files = media_files(sb)
    rows: list[tuple[str, str, dict[str, Any], str | None, str, float]] = []
    hashes: dict[tuple[str, str], str] = {}

    def image(account: str, name: str, created: float) -> str:
        data = _demo_png(name)
        digest = hashlib.md5(data).hexdigest()
        path = files.images / f"{digest}.png"
        if not path.exists():
            path.write_bytes(data)
        width, height, _ = DEMO_IMAGES[name]
        rows.append(
            (
                "adimage",
                f"{account[4:]}:{digest}",
                {
                    "id": f"{account[4:]}:{digest}",
                    "hash": digest,
                    "account_id": account[4:],
                    "name": f"{name}.png",
                    "width": width,
                    "height": height,
                    "_ext": "png",
                    "_bytes": len(data),
                    "status": "ACTIVE",
                },
                None,
                account,
                created,
            )
        )
        hashes[(account, name)] = digest
        return digest

    def creative(account: str, created: float, name: str, link_data: dict, images: dict[str, str]) -> str:
        creative_id = store.new_id("adcreative")
        media: dict[str, str] = {}
        cards = []
        for card in link_data.get("child_attachments", []):
            card["image_hash"] = images[card.pop("_image")]
            cards.append({**card, "_image_url": f"/__sandbox/media/images/{card['image_hash']}.png"})
            media.setdefault("image_url", cards[-1]["_image_url"])
        if "_image" in link_data:
            link_data["image_hash"] = images[link_data.pop("_image")]
            media.update(
                image_hash=link_data["image_hash"], image_url=f"/__sandbox/media/images/{link_data['image_hash']}.png"
            )
        data = {
            "id": creative_id,
            "account_id": account[4:],
            "name": name,
            "status": "ACTIVE",
            "adlabels": [],
            "object_story_spec": {"page_id": page["id"], "link_data": link_data},
            "object_type": "SHARE",
            "_kind": "carousel" if cards else "link",
            "_cards": cards,
            "_page_id": page["id"],
            "_media": media,
            "degrees_of_freedom_spec": {
                "creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_OUT"}}
            },
            "call_to_action_type": link_data["call_to_action"]["type"],
        }
        rows.append(("adcreative", creative_id, data, account, account, created))
        return creative_id

    def ad(adset_name: str, name: str, creative_id: str, status: str, created: float) -> None:
        adset = adsets.get(adset_name)
        if adset is None:
            return
        ad_id = store.new_id("ad")
        creative_row = next(r[2] for r in rows if r[1] == creative_id)
        data = {
            "id": ad_id,
            "account_id": adset["account_id"],
            "name": name,
            "status": status,
            "adset_id": adset["id"],
            "campaign_id": adset["campaign_id"],
            "source_ad_id": "0",
            "creative": {"id": creative_id},
            "adlabels": [],
            "_review": new_review(created, creative_row),
        }
        rows.append(("ad", ad_id, data, adset["id"], f"act_{adset['account_id']}", created))

    accounts = accounts or {a["currency"]: a["id"] for a in store.list("adaccount")}
    usd, jpy = accounts.get("USD"), accounts.get("JPY")
    t0 = now - 60 * 86400
    if usd:
        images = {n: image(usd, n, t0) for n in ("sneakers", "square")}
        shop = {"type": "SHOP_NOW"}
        link = creative(
            usd,
            t0,
            "Sneakers - link ad",
            {
                "link": "https://demo-store.example.com/sneakers",
                "_image": "sneakers",
                "call_to_action": shop,
                "message": "Meet the Cloudstride 2: light, fast and made from recycled materials. Try them for 30 days.",
                "name": "Cloudstride 2 running shoes",
                "description": "Free shipping over $50",
            },
            images,
        )
        carousel = creative(
            usd,
            t0,
            "Sneakers - carousel",
            {
                "link": "https://demo-store.example.com/colours",
                "message": "Pick your colour.",
                "call_to_action": shop,
                "child_attachments": [
                    {
                        "link": "https://demo-store.example.com/blue",
                        "name": "Ocean Blue",
                        "description": "$89",
                        "_image": "sneakers",
                    },
                    {
                        "link": "https://demo-store.example.com/orange",
                        "name": "Sunset Orange",
                        "description": "$89",
                        "_image": "square",
                    },
                    {
                        "link": "https://demo-store.example.com/all",
                        "name": "See all colours",
                        "description": "12 styles",
                        "_image": "sneakers",
                    },
                ],
            },
            images,
        )
        comeback = creative(
            usd,
            t0,
            "Come back - 10% off",
            {
                "link": "https://demo-store.example.com/cart",
                "_image": "square",
                "call_to_action": {"type": "GET_OFFER"},
                "message": "Still thinking it over? Here's 10% off your cart, this week only.",
                "name": "10% off your cart",
                "description": "Code COMEBACK10",
            },
            images,
        )
        bold = creative(
            usd,
            t0,
            "Side hustle - bold claim",
            {
                "link": "https://demo-store.example.com/partners",
                "_image": "square",
                "call_to_action": {"type": "SIGN_UP"},
                "message": "Become a Demo Store partner: guaranteed income from home, no experience needed!",
                "name": "Join our partner program",
                "description": "Sign up in 2 minutes",
            },
            images,
        )
        ad("Prospecting - Broad US", "Sneakers - link ad", link, "ACTIVE", t0)
        ad("Prospecting - Broad US", "Sneakers - carousel", carousel, "ACTIVE", t0 + 86400)
        ad("Spring Launch - US & CA", "Spring - sneakers link ad", link, "ACTIVE", t0 + 2 * 86400)
        ad("Retargeting - Site Visitors", "Come back - 10% off", comeback, "PAUSED", t0 + 3 * 86400)
        ad("Retargeting - Cart Abandoners", "Partner program - bold claim", bold, "ACTIVE", t0 + 4 * 86400)
    if jpy:
        images = {"tokyo": image(jpy, "tokyo", t0)}
        tokyo = creative(
            jpy,
            t0,
            "Tokyo - store opening",
            {
                "link": "https://demo-store.example.com/tokyo",
                "_image": "tokyo",
                "call_to_action": {"type": "LEARN_MORE"},
                "message": "Our first Tokyo store opens in Shibuya this month.",
                "name": "Demo Store Shibuya",
                "description": "渋谷店オープン",
            },
            images,
        )
        ad("Tokyo - Reach", "Tokyo - store opening", tokyo, "ACTIVE", t0 + 86400)
    store.insert_many(rows)

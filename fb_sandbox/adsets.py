"""Ad sets: create, read, list, update, delete, copies and activities, refusing what Facebook refuses.

The rules and their codes are those of docs/adset_rules.md (R1–R8, R14, R16, R17 here; the targeting rules
live in targeting.py). Written from that table and the SDK's enums, never from the product's client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from facebook_business.adobjects.adpromotedobject import AdPromotedObject
from facebook_business.adobjects.adset import AdSet

from . import campaigns
from .clock import iso, parse_time
from .context import Ctx
from .errors import GraphError, param_error
from .fields import known_fields, parse_fields, select, unknown_field
from .money import fmt
from .paging import apply_filtering, paginate
from .params import to_int
from .store import Obj
from .targeting import api_version, validate_targeting

_enum = campaigns._enum
OPTIMIZATION_GOALS = _enum(AdSet.OptimizationGoal)
BILLING_EVENTS = _enum(AdSet.BillingEvent)
BID_STRATEGIES = _enum(AdSet.BidStrategy)
STATUSES = _enum(AdSet.Status)
STATUS_OPTIONS = _enum(AdSet.StatusOption)
DESTINATION_TYPES = _enum(AdSet.DestinationType)
CUSTOM_EVENT_TYPES = _enum(AdPromotedObject.CustomEventType)
LIST_EFFECTIVE_STATUSES = sorted(set(_enum(AdSet.EffectiveStatus)) | {"ADSET_PAUSED"})

GOALS_BY_OBJECTIVE = {
    "OUTCOME_AWARENESS": ["REACH", "IMPRESSIONS", "AD_RECALL_LIFT", "THRUPLAY"],
    "OUTCOME_TRAFFIC": [
        "LINK_CLICKS",
        "LANDING_PAGE_VIEWS",
        "REACH",
        "IMPRESSIONS",
        "CONVERSATIONS",
        "VISIT_INSTAGRAM_PROFILE",
        "QUALITY_CALL",
    ],
    "OUTCOME_ENGAGEMENT": [
        "POST_ENGAGEMENT",
        "THRUPLAY",
        "PAGE_LIKES",
        "EVENT_RESPONSES",
        "CONVERSATIONS",
        "LINK_CLICKS",
        "LANDING_PAGE_VIEWS",
        "IMPRESSIONS",
        "REACH",
        "OFFSITE_CONVERSIONS",
        "QUALITY_CALL",
    ],
    "OUTCOME_LEADS": [
        "LEAD_GENERATION",
        "QUALITY_LEAD",
        "OFFSITE_CONVERSIONS",
        "CONVERSATIONS",
        "QUALITY_CALL",
        "LINK_CLICKS",
        "LANDING_PAGE_VIEWS",
    ],
    "OUTCOME_SALES": [
        "OFFSITE_CONVERSIONS",
        "VALUE",
        "LINK_CLICKS",
        "LANDING_PAGE_VIEWS",
        "CONVERSATIONS",
        "IMPRESSIONS",
        "REACH",
        "QUALITY_CALL",
    ],
    "OUTCOME_APP_PROMOTION": [
        "APP_INSTALLS",
        "APP_INSTALLS_AND_OFFSITE_CONVERSIONS",
        "OFFSITE_CONVERSIONS",
        "VALUE",
        "LINK_CLICKS",
    ],
}
DEFAULT_GOAL = {
    "OUTCOME_AWARENESS": "REACH",
    "OUTCOME_TRAFFIC": "LINK_CLICKS",
    "OUTCOME_ENGAGEMENT": "POST_ENGAGEMENT",
    "OUTCOME_LEADS": "LEAD_GENERATION",
    "OUTCOME_SALES": "OFFSITE_CONVERSIONS",
    "OUTCOME_APP_PROMOTION": "APP_INSTALLS",
}
# Goals that may also be billed on their own event; IMPRESSIONS is valid for every goal.
BILLED_ON_ITSELF = {"LINK_CLICKS", "THRUPLAY", "APP_INSTALLS", "PAGE_LIKES", "POST_ENGAGEMENT"}
BUDGETS = ("daily_budget", "lifetime_budget")
BUDGET_CHANGES_PER_HOUR = 4
APP_STORE_HOSTS = {"play.google.com", "apps.apple.com"}
DAY = 86400

ACTIVITY_FIELDS = [
    "event_type",
    "event_time",
    "extra_data",
    "object_id",
    "object_name",
    "object_type",
    "actor_id",
    "actor_name",
    "translated_event_type",
]
ACTIVITY_TITLES = {
    "create_ad_set": "Ad set created",
    "update_ad_set_budget": "Ad set budget updated",
    "update_ad_set_run_status": "Ad set run status updated",
    "update_ad_set_name": "Ad set name updated",
    "update_ad_set_target_spec": "Ad set targeting updated",
    "update_ad_set_duration": "Ad set schedule updated",
    "update_ad_set_bid_strategy": "Ad set bid strategy updated",
    "update_ad_set_bidding": "Ad set bid updated",
    "update_ad_set_optimization_goal": "Ad set optimization goal updated",
}


_one_of = campaigns._one_of


def _invalid(subcode: int, title: str, msg: str, blame: str, code: int = 100, **kw: Any) -> GraphError:
    return GraphError("Invalid parameter", code, subcode=subcode, user_title=title, user_msg=msg, blame=blame, **kw)


# ---- rendering


def effective_status(a: dict, campaign: dict | None) -> str:
    status = a["status"]
    if status == "ACTIVE" and campaign is not None and campaign.get("status") != "ACTIVE":
        return "CAMPAIGN_PAUSED"
    return status


def _render_value(a: Obj, name: str, campaign: dict | None) -> Any:
    if name == "start_time":
        return iso(a.get("start_time") or a.created)
    if name == "end_time":
        return iso(a["end_time"]) if a.get("end_time") else None
    if name == "created_time":
        return iso(a.created)
    if name == "updated_time":
        return iso(a.updated)
    if name == "configured_status":
        return a["status"]
    if name == "effective_status":
        return effective_status(a, campaign)
    if name == "budget_remaining":
        return a.get("daily_budget") or a.get("lifetime_budget") or "0"
    if name == "campaign":
        return {"id": a["campaign_id"]}
    if name == "special_ad_categories":
        return (campaign or {}).get("special_ad_categories", [])
    if name == "source_adset":
        return {"id": a["source_adset_id"]} if a.get("source_adset_id", "0") != "0" else None
    if name.startswith("_"):
        return None
    return a.get(name)


def render(a: Obj, names: Sequence[str], campaign: dict | None) -> dict:
    return select("AdSet", names, ["id"], lambda n: _render_value(a, n, campaign))


# ---- parsing parameters into a change set


def _positive(ctx: Ctx, name: str, what: str = "a positive integer") -> int:
    value = ctx.p.int(name)
    if value is None or value <= 0:
        raise param_error(f"Param {name} must be {what}", field=name)
    return value


def _parse_time(ctx: Ctx, name: str) -> float:
    value = parse_time(ctx.p.get(name))
    if value is None:
        raise param_error(f"Param {name} must be a valid ISO-8601 time or unix timestamp", field=name)
    return value


def _parse_choice(ctx: Ctx, name: str, values: list[str]) -> str:
    value = ctx.p.str(name)
    if value not in values:
        raise _one_of(name, values)
    return value


def _parse_bid_constraints(ctx: Ctx) -> dict:
    raw = ctx.p.obj("bid_constraints", {})
    out = {}
    for key, value in raw.items():
        if key not in ("roas_average_floor",):
            raise param_error(f"Param bid_constraints[{key}] is not a valid bid constraint", field="bid_constraints")
        number = to_int(value)
        if number is None or number <= 0:
            raise param_error(f"Param bid_constraints[{key}] must be a positive integer", field="bid_constraints")
        out[key] = number
    return out


def parse_changes(ctx: Ctx, creating: bool) -> dict:
    p = ctx.p
    out: dict[str, Any] = {}
    if creating or "name" in p:
        out["name"] = campaigns._parse_name(ctx)
    if creating or "campaign_id" in p:
        campaign_id = p.str("campaign_id", required=True)
        if not campaign_id.isdigit():
            raise param_error("Param campaign_id must be a valid campaign id", field="campaign_id")
        out["campaign_id"] = campaign_id
    if "status" in p:
        allowed = ["ACTIVE", "PAUSED"] if creating else STATUSES
        out["status"] = _parse_choice(ctx, "status", allowed)
    if "optimization_goal" in p:
        out["optimization_goal"] = _parse_choice(ctx, "optimization_goal", OPTIMIZATION_GOALS)
    if "billing_event" in p:
        out["billing_event"] = _parse_choice(ctx, "billing_event", BILLING_EVENTS)
    if "bid_strategy" in p:
        out["bid_strategy"] = _parse_choice(ctx, "bid_strategy", BID_STRATEGIES)
    if "bid_amount" in p:
        out["bid_amount"] = str(_positive(ctx, "bid_amount"))
    if "bid_constraints" in p:
        out["bid_constraints"] = _parse_bid_constraints(ctx)
    for budget in BUDGETS:
        if budget in p:
            out[budget] = str(_positive(ctx, budget, "a positive integer (minor units of the account currency)"))
    for name in ("start_time", "end_time"):
        if name in p:
            out[name] = _parse_time(ctx, name)
    if "promoted_object" in p:
        out["promoted_object"] = p.obj("promoted_object")
    if "destination_type" in p:
        out["destination_type"] = _parse_choice(ctx, "destination_type", DESTINATION_TYPES)
    if "adset_schedule" in p:
        schedule = p.json("adset_schedule")
        if not isinstance(schedule, list):
            raise param_error("Param adset_schedule must be an array", field="adset_schedule")
        out["adset_schedule"] = schedule
    if "is_dynamic_creative" in p:
        out["is_dynamic_creative"] = p.bool("is_dynamic_creative")
    if "adlabels" in p:
        out["adlabels"] = campaigns._parse_adlabels(ctx)
    if "targeting" in p:
        out["targeting"] = p.get("targeting")  # validated later, with the campaign's special ad categories
    return out


# ---- the campaign an ad set belongs to


def load_campaign(ctx: Ctx, account: Obj, campaign_id: str) -> Obj:
    campaign = ctx.store.get(campaign_id)
    if campaign is None or campaign.type != "campaign" or campaign.account_id != account["id"]:
        raise param_error(
            f"Param campaign_id must be a campaign of the ad account {account['id']}", field="campaign_id"
        )
    if campaign["status"] in ("DELETED", "ARCHIVED"):
        word = campaign["status"].lower()
        raise GraphError(
            "Invalid parameter",
            100,
            user_title=f"Campaign {word.capitalize()}",
            user_msg=f"The campaign {campaign_id} is {word}, so no ad set can be added to it.",
            blame="campaign_id",
        )
    return campaign


# ---- rules on the whole (new or merged) ad set


def _goal_rules(a: dict, objective: str) -> None:
    goal = a["optimization_goal"]
    if goal not in GOALS_BY_OBJECTIVE.get(objective, [goal]):
        raise _invalid(
            2490408,
            "Optimization Goal Is Invalid For Objective",
            f"The optimization goal {goal} isn't available for campaigns with the objective {objective}. "
            f"Choose one of: {', '.join(GOALS_BY_OBJECTIVE[objective])}.",
            "optimization_goal",
        )
    event = a["billing_event"]
    if event != "IMPRESSIONS" and not (event == goal and goal in BILLED_ON_ITSELF):
        allowed = ["IMPRESSIONS"] + ([goal] if goal in BILLED_ON_ITSELF else [])
        raise _invalid(
            2490377,
            "Billing Event Is Invalid",
            f"The billing event {event} isn't available with the optimization goal {goal}. "
            f"Choose one of: {', '.join(allowed)}.",
            "billing_event",
        )


def _bid_rules(a: dict, campaign: dict) -> None:
    strategy = a.get("bid_strategy") or campaign.get("bid_strategy") or "LOWEST_COST_WITHOUT_CAP"
    if strategy in ("LOWEST_COST_WITH_BID_CAP", "COST_CAP") and not a.get("bid_amount"):
        raise _invalid(
            1815857,
            "Bid Amount Required",
            f"The bid strategy {strategy} needs a bid amount (bid_amount, in minor units of the account currency).",
            "bid_amount",
        )
    if strategy == "LOWEST_COST_WITH_MIN_ROAS" and not (a.get("bid_constraints") or {}).get("roas_average_floor"):
        raise _invalid(
            1815857,
            "Bid Amount Required",
            "The bid strategy LOWEST_COST_WITH_MIN_ROAS needs bid_constraints.roas_average_floor.",
            "bid_constraints",
        )


def _budget_presence_rules(a: dict, campaign: dict, changes: dict, creating: bool) -> None:
    campaign_budget = campaign.get("daily_budget") or campaign.get("lifetime_budget")
    sent = [b for b in BUDGETS if b in changes]
    if campaign_budget and sent:
        raise _invalid(
            1885621,
            "Budget Set On Both Campaign And Ad Set",
            "This campaign uses a campaign budget, so its ad sets can't have their own budget. Remove "
            "the ad set budget, or remove the campaign budget first.",
            sent[0],
        )
    if campaign_budget or not (creating or sent):
        return
    if bool(a.get("daily_budget")) == bool(a.get("lifetime_budget")):
        raise _invalid(
            1885621,
            "Ad Set Budget Required",
            "This campaign has no campaign budget, so each ad set needs exactly one budget: "
            "daily_budget or lifetime_budget.",
            "daily_budget",
        )


def _amount_rules(account: Obj, a: dict, now: float, changes: dict, creating: bool) -> None:
    currency, minimum = account["currency"], int(account.get("min_daily_budget", 100))
    times_changed = "start_time" in changes or "end_time" in changes
    for name in BUDGETS:
        touched = creating or name in changes or (name == "lifetime_budget" and times_changed)
        if not a.get(name) or not touched:
            continue
        amount, floor = int(a[name]), minimum
        if name == "lifetime_budget" and a.get("end_time"):
            start = a.get("start_time") or now
            floor = minimum * max(1, math.ceil((a["end_time"] - start) / DAY))
        if amount < floor:
            what = "daily" if name == "daily_budget" else "lifetime"
            raise _invalid(
                1885272,
                "Your Budget Is Too Low",
                f"The minimum {what} budget for this ad set is {fmt(floor, currency)}. Please enter a "
                f"budget of at least {fmt(floor, currency)}.",
                name,
            )
        ceiling = floor * campaigns.MAX_BUDGET_FACTOR
        if amount > ceiling:
            raise _invalid(
                1885261,
                "Your Budget Is Too High",
                f"The maximum budget for this ad set is {fmt(ceiling, currency)}. Please enter a lower budget.",
                name,
            )


def _time_rules(a: dict, now: float, changes: dict, creating: bool) -> None:
    if a.get("lifetime_budget") and not a.get("end_time"):
        raise _invalid(
            1885347, "End Time Required", "An ad set with a lifetime budget needs an end time (end_time).", "end_time"
        )
    end = a.get("end_time")
    if end and (creating or "end_time" in changes or "start_time" in changes):
        start = a.get("start_time")
        if start and end <= start:
            raise _invalid(
                1487181, "End Time Before Start Time", "The ad set's end time must be after its start time.", "end_time"
            )
        if end <= now:
            raise _invalid(1487181, "End Time In The Past", "The ad set's end time must be in the future.", "end_time")


def _promoted_object_rules(ctx: Ctx, account: Obj, a: dict, objective: str) -> None:
    goal, promoted = a["optimization_goal"], a.get("promoted_object")
    needed: list[str] = []
    if objective in ("OUTCOME_SALES", "OUTCOME_LEADS") and goal in ("OFFSITE_CONVERSIONS", "VALUE"):
        needed = ["pixel_id", "custom_event_type"]
    elif objective == "OUTCOME_LEADS" and goal in ("LEAD_GENERATION", "QUALITY_LEAD"):
        needed = ["page_id"]
    elif objective == "OUTCOME_APP_PROMOTION":
        needed = ["application_id", "object_store_url"]
    elif objective == "OUTCOME_ENGAGEMENT" and goal == "PAGE_LIKES":
        needed = ["page_id"]
    missing = [k for k in needed if not (promoted or {}).get(k)]
    if missing:
        raise _invalid(
            1815430,
            "Select a promoted object",
            f"An ad set optimized for {goal} in a campaign with the objective {objective} needs a "
            f"promoted_object with {' and '.join(needed)} (missing: {', '.join(missing)}).",
            "promoted_object",
        )
    if promoted:
        _check_promoted_object(ctx, account, promoted)


def _check_promoted_object(ctx: Ctx, account: Obj, promoted: dict) -> None:
    def bad(msg: str) -> GraphError:
        return _invalid(1815430, "Invalid Promoted Object", msg, "promoted_object")

    for key, value in promoted.items():
        if not isinstance(value, (str, int)) or isinstance(value, bool) or len(str(value)) > 1000:
            raise bad(f"promoted_object.{key} must be a string or a number.")
    if "pixel_id" in promoted:
        pixel = ctx.store.get(str(promoted["pixel_id"]))
        if pixel is None or pixel.type != "pixel" or pixel.account_id != account["id"]:
            raise bad(f"The pixel {promoted['pixel_id']} isn't a pixel of the ad account {account['id']}.")
    if "custom_event_type" in promoted and promoted["custom_event_type"] not in CUSTOM_EVENT_TYPES:
        raise bad(f"promoted_object.custom_event_type must be one of {', '.join(CUSTOM_EVENT_TYPES)}.")
    if "page_id" in promoted:
        page = ctx.store.get(str(promoted["page_id"]))
        if page is None or page.type != "page" or not ctx.can_see(page):
            raise bad(f"The page {promoted['page_id']} doesn't exist or you can't advertise for it.")
    if "application_id" in promoted and not str(promoted["application_id"]).isdigit():
        raise bad("promoted_object.application_id must be an app id.")
    if "object_store_url" in promoted:
        url = urlparse(str(promoted["object_store_url"]))
        if url.scheme != "https" or url.hostname not in APP_STORE_HOSTS:
            raise bad(
                "promoted_object.object_store_url must be an https link to the app on play.google.com or "
                "apps.apple.com."
            )


def _schedule_rules(a: dict) -> None:
    schedule = a.get("adset_schedule") or []
    if not schedule:
        return
    if not a.get("lifetime_budget"):
        raise _invalid(
            2490126,
            "Ad Scheduling Needs A Lifetime Budget",
            "Ad scheduling (adset_schedule) is only available with a lifetime budget.",
            "adset_schedule",
        )
    for i, block in enumerate(schedule):
        problem = _block_problem(block)
        if problem:
            raise _invalid(1487079, "Invalid Ad Schedule", f"adset_schedule[{i}]: {problem}", "adset_schedule")


def _block_problem(block: Any) -> str | None:
    if not isinstance(block, dict):
        return "each block must be an object with start_minute, end_minute and days"
    unknown = set(block) - {"start_minute", "end_minute", "days", "timezone_type"}
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    start, end = to_int(block.get("start_minute")), to_int(block.get("end_minute"))
    for name, value in (("start_minute", start), ("end_minute", end)):
        if value is None or not 0 <= value <= 1440 or value % 60:
            return f"{name} must be a multiple of 60 from 0 to 1440"
    if start is None or end is None or end <= start:
        return "end_minute must be after start_minute"
    days = block.get("days")
    day_numbers = [to_int(d) for d in days] if isinstance(days, list) else []
    if not day_numbers or not all(n is not None and 0 <= n <= 6 for n in day_numbers):
        return "days must list at least one day, each from 0 (Sunday) to 6"
    if block.get("timezone_type", "USER") not in ("USER", "ADVERTISER"):
        return "timezone_type must be USER or ADVERTISER"
    return None


def check_rules(ctx: Ctx, account: Obj, campaign: dict, a: dict, changes: dict, *, creating: bool) -> None:
    """Every rule of docs/adset_rules.md owned here, on the merged ad set `a`."""
    objective = campaign.get("objective", "")
    _goal_rules(a, objective)
    _budget_presence_rules(a, campaign, changes, creating)
    _time_rules(a, ctx.now, changes, creating)
    _amount_rules(account, a, ctx.now, changes, creating)
    _bid_rules(a, campaign)
    if creating or {"promoted_object", "optimization_goal"} & set(changes):
        _promoted_object_rules(ctx, account, a, objective)
    if creating or {"adset_schedule", "lifetime_budget", "daily_budget"} & set(changes):
        _schedule_rules(a)


def _normalize(a: dict) -> None:
    a["pacing_type"] = ["day_parting"] if a.get("adset_schedule") else ["standard"]
    if a.get("adset_schedule"):
        a["adset_schedule"] = [
            {
                "start_minute": to_int(b["start_minute"]),
                "end_minute": to_int(b["end_minute"]),
                "days": [to_int(d) for d in b["days"]],
                "timezone_type": b.get("timezone_type", "USER"),
            }
            for b in a["adset_schedule"]
        ]


def _targeting(ctx: Ctx, a: dict, campaign: dict, changes: dict, creating: bool) -> None:
    if "targeting" not in changes:
        if creating:
            raise param_error("The parameter targeting is required", field="targeting")
        return
    # R12 applies on create only: "updating an existing ad set will not exhibit this behavior on any version"
    # (Version 23.0 changelog, docs/adset_rules.md)
    spec = validate_targeting(
        ctx,
        changes["targeting"],
        special_ad_categories=list(campaign.get("special_ad_categories") or []),
        creating=creating,
    )
    if creating:
        _device_default(ctx, spec, campaign)
    changes["targeting"] = a["targeting"] = spec


def _device_default(ctx: Ctx, spec: dict, campaign: dict) -> None:
    """v27.0+: "Reach more people across other mobile devices" is on for new eligible Sales ad sets that target
    specific mobile devices or operating systems unless targeting_automation.individual_setting.device = 0 ("Introducing
    Graph API v27.0 and Marketing API v27.0",
    https://developers.facebook.com/blog/post/2026/11/04/introducing-graph-api-v27-and-marketing-api-v27/; all versions
    about 90 days later, date not announced). Shown on read as individual_setting.device = 1: unverified."""
    if api_version(ctx) < 27 or campaign.get("objective") != "OUTCOME_SALES":
        return
    if not (spec.get("user_os") or spec.get("user_device")):
        return
    auto = spec.setdefault("targeting_automation", {})
    individual = auto.setdefault("individual_setting", {})
    if isinstance(individual, dict):
        individual.setdefault("device", 1)


# ---- activities


def record_activity(ctx: Ctx, a: dict, event_type: str, extra: dict | None = None, *, account_id: str) -> None:
    user = ctx.store.get(ctx.principal.user_id) if ctx.principal.user_id else None
    activity_id = ctx.store.new_id("activity")
    data = {
        "event_type": event_type,
        "_time": ctx.now,
        "extra_data": json.dumps(extra or {}, separators=(",", ":")),
        "object_id": a["id"],
        "object_name": a["name"],
        "object_type": "ADSET",
        "actor_id": ctx.principal.user_id or None,
        "actor_name": (user or {}).get("name"),
        "translated_event_type": ACTIVITY_TITLES.get(event_type, event_type),
    }
    ctx.store.insert("activity", activity_id, data, parent_id=a["id"], account_id=account_id, now=ctx.now)


def _activities_for(old: dict, new: dict, currency: str) -> list[tuple[str, dict]]:
    out = []
    for name in BUDGETS:
        if new.get(name) != old.get(name) and new.get(name):
            out.append(
                (
                    "update_ad_set_budget",
                    {
                        "type": "payment_amount",
                        "currency": currency,
                        "old_value": int(old.get(name) or 0),
                        "new_value": int(new[name]),
                    },
                )
            )
    simple = [
        ("status", "update_ad_set_run_status"),
        ("name", "update_ad_set_name"),
        ("targeting", "update_ad_set_target_spec"),
        ("bid_strategy", "update_ad_set_bid_strategy"),
        ("bid_amount", "update_ad_set_bidding"),
        ("optimization_goal", "update_ad_set_optimization_goal"),
    ]
    for name, event in simple:
        if new.get(name) != old.get(name):
            out.append((event, {"old_value": old.get(name), "new_value": new.get(name)}))
    if any(new.get(t) != old.get(t) for t in ("start_time", "end_time")):
        out.append(
            (
                "update_ad_set_duration",
                {
                    "old_value": {t: iso(old[t]) if old.get(t) else None for t in ("start_time", "end_time")},
                    "new_value": {t: iso(new[t]) if new.get(t) else None for t in ("start_time", "end_time")},
                },
            )
        )
    return out


def _budget_change_limit(ctx: Ctx, a: Obj, changed: list[str]) -> None:
    since = ctx.now - 3600
    recent = [
        o
        for o in ctx.store.list("activity", parent_id=a["id"])
        if o["event_type"] == "update_ad_set_budget" and o["_time"] > since
    ]
    if len(recent) >= BUDGET_CHANGES_PER_HOUR:
        raise GraphError(
            "(#613) Calls to this api have exceeded the rate limit.",
            613,
            subcode=1487632,
            user_title="Too Many Budget Changes",
            user_msg=f"An ad set's budget can be changed at most {BUDGET_CHANGES_PER_HOUR} times an "
            "hour. Wait a while before changing it again.",
            blame=changed[0],
            is_transient=True,
        )


# ---- handlers


def create_adset(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    changes = parse_changes(ctx, creating=True)
    options = campaigns.execution_options(ctx)
    campaign = load_campaign(ctx, account, changes["campaign_id"])
    objective = campaign.get("objective", "")
    data = {
        "status": "ACTIVE",
        "optimization_goal": DEFAULT_GOAL.get(objective, "LINK_CLICKS"),
        "billing_event": "IMPRESSIONS",
        "is_dynamic_creative": False,
        "adlabels": [],
        "source_adset_id": "0",
        "start_time": ctx.now,
        **changes,
    }
    _targeting(ctx, data, campaign, changes, creating=True)
    check_rules(ctx, account, campaign, data, changes, creating=True)
    if "validate_only" in options:
        return {"success": True}
    return {"id": insert_adset(ctx, account, data)}


def insert_adset(ctx: Ctx, account: Obj, data: dict) -> str:
    adset_id = ctx.store.new_id("adset")
    data = {**data, "id": adset_id, "account_id": account["account_id"]}
    data["adlabels"] = campaigns.resolve_labels(ctx, account["id"], data.get("adlabels", []))
    _normalize(data)
    ctx.store.insert("adset", adset_id, data, parent_id=data["campaign_id"], account_id=account["id"], now=ctx.now)
    record_activity(ctx, data, "create_ad_set", {}, account_id=account["id"])
    return adset_id


def read_adset(ctx: Ctx, a: Obj) -> dict:
    return render(a, parse_fields(ctx.p.get("fields")), ctx.store.get(a["campaign_id"]))


def _state_rules(a: Obj, changes: dict) -> None:
    if a["status"] == "DELETED":
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Ad Set Deleted",
            user_msg="This ad set has been deleted, so it can't be edited.",
            blame="status",
        )
    leaving_archive = set(changes) - {"status"} or changes.get("status") not in ("ARCHIVED", "DELETED")
    if a["status"] == "ARCHIVED" and leaving_archive:
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Archived Ad Set Can't Be Edited",
            user_msg="This ad set is archived. An archived ad set can only be deleted.",
            blame="status",
        )
    if changes.get("campaign_id", a["campaign_id"]) != a["campaign_id"]:
        raise param_error("An ad set can't be moved to another campaign; copy it instead", field="campaign_id")
    for new, old in (("daily_budget", "lifetime_budget"), ("lifetime_budget", "daily_budget")):
        if new in changes and a.get(old) and old not in changes:
            raise GraphError(
                "Invalid parameter",
                100,
                user_title="Budget Type Can't Be Changed",
                user_msg="You can't switch an ad set between a daily and a lifetime budget.",
                blame=new,
            )


def update_adset(ctx: Ctx, a: Obj) -> dict:
    changes = parse_changes(ctx, creating=False)
    options = campaigns.execution_options(ctx)
    if not changes and not options:
        return {"success": True}
    _state_rules(a, changes)
    changes.pop("campaign_id", None)
    account = ctx.load_account(a.account_id)
    campaign = ctx.store.get(a["campaign_id"]) or {}
    merged = {**a, **changes}
    _targeting(ctx, merged, campaign, changes, creating=False)
    check_rules(ctx, account, campaign, merged, changes, creating=False)
    budget_changed = [b for b in BUDGETS if b in changes and changes[b] != a.get(b)]
    if budget_changed:
        _budget_change_limit(ctx, a, budget_changed)
    if "validate_only" in options:
        return {"success": True}
    if "adlabels" in changes:
        merged["adlabels"] = campaigns.resolve_labels(ctx, a.owner_account_id, changes["adlabels"])
    _normalize(merged)
    ctx.store.update(a["id"], merged, now=ctx.now)
    if merged["status"] in ("ARCHIVED", "DELETED") and merged["status"] != a["status"]:
        from .ads import cascade_status

        cascade_status(ctx, a["id"], merged["status"])
    for event, extra in _activities_for(a, merged, account["currency"]):
        record_activity(ctx, merged, event, extra, account_id=a.owner_account_id)
    return {"success": True}


def delete_adset(ctx: Ctx, a: Obj) -> dict:
    if a["status"] != "DELETED":
        ctx.store.update(a["id"], {**a, "status": "DELETED"}, now=ctx.now)
        record_activity(
            ctx,
            a,
            "update_ad_set_run_status",
            {"old_value": a["status"], "new_value": "DELETED"},
            account_id=a.owner_account_id,
        )
    from .ads import cascade_status

    cascade_status(ctx, a["id"], "DELETED")
    return {"success": True}


def delete_campaign_adsets(ctx: Ctx, campaign_id: str) -> None:
    """A deleted campaign takes its ad sets with it."""
    for a in ctx.store.list("adset", parent_id=campaign_id):
        delete_adset(ctx, a)


def _copy_status(option: str, source_status: str) -> str:
    status = source_status if option == "INHERITED_FROM_SOURCE" else option
    return status if status in ("ACTIVE", "PAUSED") else "PAUSED"


def copy_data(source: Obj, *, campaign_id: str, status: str, name: str) -> dict:
    data = {k: v for k, v in source.items() if k not in ("id",)}
    data.update(campaign_id=campaign_id, status=status, name=name, source_adset_id=source["id"])
    return data


def copy_adset(ctx: Ctx) -> dict:
    source = ctx.load(ctx.match[0], types=("adset",))
    if source["status"] == "DELETED":
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Can't Copy A Deleted Ad Set",
            user_msg="This ad set has been deleted, so it can't be copied.",
        )
    account = ctx.load_account(source.account_id)
    option = ctx.p.str("status_option", "PAUSED")
    if option not in STATUS_OPTIONS:
        raise _one_of("status_option", STATUS_OPTIONS)
    deep_copy = ctx.p.bool("deep_copy", False)
    target_id = ctx.p.str("campaign_id") or source["campaign_id"]
    if not target_id.isdigit():
        raise param_error("Param campaign_id must be a valid campaign id", field="campaign_id")
    campaign = load_campaign(ctx, account, target_id)
    data = copy_data(
        source,
        campaign_id=target_id,
        status=_copy_status(option, source["status"]),
        name=campaigns._copy_name(ctx, source["name"]),
    )
    changes: dict = {}
    for name in ("start_time", "end_time"):
        if name in ctx.p:
            data[name] = changes[name] = _parse_time(ctx, name)
    if target_id != source["campaign_id"]:
        changes.update({b: data[b] for b in BUDGETS if data.get(b)})
    check_rules(ctx, account, campaign, data, changes, creating=target_id != source["campaign_id"])
    new_id = insert_adset(ctx, account, data)
    copied = [{"ad_object_type": "ad_set", "source_id": source["id"], "copied_id": new_id}]
    if deep_copy:
        from .ads import copy_adset_ads

        rename = (
            ctx.p.obj("rename_options") is not None
            and (ctx.p.obj("rename_options") or {}).get("rename_strategy", "DEEP_RENAME") == "DEEP_RENAME"
        )
        copied += copy_adset_ads(ctx, source["id"], new_id, option, rename)
    return {"copied_adset_id": new_id, "ad_object_ids": copied}


def deep_copy_adsets(ctx: Ctx, source_campaign_id: str, new_campaign_id: str, status: str, rename: bool) -> list[dict]:
    """Copies of a campaign's live ad sets into its copy (a campaign deep copy); -> ad_object_ids entries."""
    out = []
    for source in ctx.store.list("adset", parent_id=source_campaign_id):
        if source["status"] in ("DELETED", "ARCHIVED"):
            continue
        account = ctx.load_account(source.account_id)
        name = campaigns._copy_name(ctx, source["name"]) if rename else source["name"]
        data = copy_data(source, campaign_id=new_campaign_id, status=_copy_status(status, source["status"]), name=name)
        new_id = insert_adset(ctx, account, data)
        out.append({"ad_object_type": "ad_set", "source_id": source["id"], "copied_id": new_id})
        from .ads import copy_adset_ads

        out += copy_adset_ads(ctx, source["id"], new_id, status, rename)
    return out


# ---- lists


def _campaigns_by_id(ctx: Ctx, account_id: str) -> dict[str, Obj]:
    return {c["id"]: c for c in ctx.store.list("campaign", account_id=account_id)}


def _list(ctx: Ctx, items: list[Obj], parents: dict[str, Obj]) -> dict:
    statuses = ctx.p.list("effective_status")
    if statuses is not None:
        for i, status in enumerate(statuses):
            if status not in LIST_EFFECTIVE_STATUSES:
                raise _one_of(f"effective_status[{i}]", LIST_EFFECTIVE_STATUSES)
    items = sorted(items, key=lambda o: o.seq, reverse=True)
    status_of = lambda a: effective_status(a, parents.get(a["campaign_id"]))  # noqa: E731
    if statuses:
        items = [a for a in items if status_of(a) in statuses]
    else:
        items = [a for a in items if a["status"] not in ("DELETED", "ARCHIVED")]
    filters = ctx.p.json("filtering")
    if filters not in (None, []):
        getters = {**FILTER_GETTERS, "effective_status": status_of}
        items = apply_filtering(items, filters, getters, "adset")
    names = parse_fields(ctx.p.get("fields"))
    if names and not items:
        select("AdSet", names, ["id"], lambda n: None)
    return paginate(ctx, items, lambda a: render(a, names, parents.get(a["campaign_id"])))


FILTER_GETTERS = {
    "id": lambda a: a["id"],
    "name": lambda a: a["name"],
    "status": lambda a: a["status"],
    "configured_status": lambda a: a["status"],
    "campaign_id": lambda a: a["campaign_id"],
    "campaign.id": lambda a: a["campaign_id"],
    "optimization_goal": lambda a: a.get("optimization_goal"),
    "billing_event": lambda a: a.get("billing_event"),
    "bid_strategy": lambda a: a.get("bid_strategy"),
    "daily_budget": lambda a: a.get("daily_budget"),
    "lifetime_budget": lambda a: a.get("lifetime_budget"),
    "adlabels": lambda a: [v for label in a.get("adlabels", []) for v in (label.get("id"), label.get("name"))],
    "created_time": lambda a: a.created,
    "updated_time": lambda a: a.updated,
}


def list_account_adsets(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    return _list(ctx, ctx.store.list("adset", account_id=account["id"]), _campaigns_by_id(ctx, account["id"]))


def list_campaign_adsets(ctx: Ctx) -> dict:
    campaign = ctx.load(ctx.match[0], types=("campaign",))
    return _list(ctx, ctx.store.list("adset", parent_id=campaign["id"]), {campaign["id"]: campaign})


def _activity_value(o: Obj, name: str) -> Any:
    if name == "event_time":
        return iso(o["_time"])
    if name == "id" or name.startswith("_"):
        return None
    return o.get(name)


def _check_activity_fields(names: Sequence[str]) -> None:
    allowed = known_fields("AdActivity")
    for name in names:
        if name not in allowed:
            raise unknown_field(name, "AdActivity")


def render_activity(o: Obj, names: Sequence[str]) -> dict:
    out = {}
    for name in names or ACTIVITY_FIELDS:
        value = _activity_value(o, name)
        if value is not None:
            out[name] = value
    return out


def _bound(ctx: Ctx, name: str) -> float | None:
    if name not in ctx.p:
        return None
    value = parse_time(ctx.p.get(name))
    if value is None:
        raise param_error(f"Param {name} must be a unix timestamp or an ISO-8601 time", field=name)
    return value


def list_activities(ctx: Ctx) -> dict:
    a = ctx.load(ctx.match[0], types=("adset",))
    since, until = _bound(ctx, "since"), _bound(ctx, "until")
    items = [
        o
        for o in ctx.store.list("activity", parent_id=a["id"])
        if (since is None or o["_time"] >= since) and (until is None or o["_time"] <= until)
    ]
    items.sort(key=lambda o: o.seq, reverse=True)
    names = parse_fields(ctx.p.get("fields"))
    _check_activity_fields(names)
    return paginate(ctx, items, lambda o: render_activity(o, names))

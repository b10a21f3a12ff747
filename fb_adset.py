"""Ops: ad sets (list, read, create, update, pause/resume/archive/delete, duplicate, schedule and day parting).

Every rule of docs/adset_rules.md that an ad set create or update can break is checked here, before anything is
sent, and refused with the code and subcode Facebook would answer; targeting and placements are checked by
fb_targeting.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.adpromotedobject import AdPromotedObject
from facebook_business.adobjects.campaign import Campaign
from pydantic import BaseModel, ConfigDict, Field

from fb_targeting import (
    apply_placements,
    check_targeting,
    describe_targeting_locally,
    parse_targeting,
    recommend_placements,
    targeting_payload,
)
from fb_utils import (
    AccountInfo,
    Change,
    CreateLookup,
    GraphRequest,
    OpArgs,
    OpContext,
    OpKind,
    OpResult,
    OpSet,
    ValidationError,
    WritePlan,
    EditedObject,
    check_object_id,
    describe_change,
    format_money,
    new_client_tag,
    sdk_enum_values,
    update_plan,
)

ops = OpSet("fb_adset")

OPTIMIZATION_GOALS = sdk_enum_values(AdSet.OptimizationGoal)
BILLING_EVENTS = sdk_enum_values(AdSet.BillingEvent)
BID_STRATEGIES = sdk_enum_values(AdSet.BidStrategy)
EFFECTIVE_STATUSES = sdk_enum_values(AdSet.EffectiveStatus)
STATUS_OPTIONS = sdk_enum_values(AdSet.StatusOption)
DESTINATION_TYPES = sdk_enum_values(AdSet.DestinationType)
CUSTOM_EVENT_TYPES = sdk_enum_values(AdPromotedObject.CustomEventType)

OptimizationGoal = Literal[OPTIMIZATION_GOALS]  # type: ignore[valid-type]
BillingEvent = Literal[BILLING_EVENTS]  # type: ignore[valid-type]
BidStrategy = Literal[BID_STRATEGIES]  # type: ignore[valid-type]
EffectiveStatus = Literal[EFFECTIVE_STATUSES]  # type: ignore[valid-type]
StatusOption = Literal[STATUS_OPTIONS]  # type: ignore[valid-type]
DestinationType = Literal[DESTINATION_TYPES]  # type: ignore[valid-type]
CustomEventType = Literal[CUSTOM_EVENT_TYPES]  # type: ignore[valid-type]

# docs/adset_rules.md, "Optimization goals by objective" (R1) and its defaults.
GOALS_BY_OBJECTIVE: dict[str, tuple[str, ...]] = {
    "OUTCOME_AWARENESS": ("REACH", "IMPRESSIONS", "AD_RECALL_LIFT", "THRUPLAY"),
    "OUTCOME_TRAFFIC": ("LINK_CLICKS", "LANDING_PAGE_VIEWS", "REACH", "IMPRESSIONS", "CONVERSATIONS",
                        "VISIT_INSTAGRAM_PROFILE", "QUALITY_CALL"),
    "OUTCOME_ENGAGEMENT": ("POST_ENGAGEMENT", "THRUPLAY", "PAGE_LIKES", "EVENT_RESPONSES", "CONVERSATIONS", "LINK_CLICKS",
                           "LANDING_PAGE_VIEWS", "IMPRESSIONS", "REACH", "OFFSITE_CONVERSIONS", "QUALITY_CALL"),
    "OUTCOME_LEADS": ("LEAD_GENERATION", "QUALITY_LEAD", "OFFSITE_CONVERSIONS", "CONVERSATIONS", "QUALITY_CALL",
                      "LINK_CLICKS", "LANDING_PAGE_VIEWS"),
    "OUTCOME_SALES": ("OFFSITE_CONVERSIONS", "VALUE", "LINK_CLICKS", "LANDING_PAGE_VIEWS", "CONVERSATIONS", "IMPRESSIONS",
                      "REACH", "QUALITY_CALL"),
    "OUTCOME_APP_PROMOTION": ("APP_INSTALLS", "APP_INSTALLS_AND_OFFSITE_CONVERSIONS", "OFFSITE_CONVERSIONS", "VALUE",
                              "LINK_CLICKS"),
}
DEFAULT_GOAL = {"OUTCOME_AWARENESS": "REACH", "OUTCOME_TRAFFIC": "LINK_CLICKS", "OUTCOME_ENGAGEMENT": "POST_ENGAGEMENT",
                "OUTCOME_LEADS": "LEAD_GENERATION", "OUTCOME_SALES": "OFFSITE_CONVERSIONS",
                "OUTCOME_APP_PROMOTION": "APP_INSTALLS"}
# R2: IMPRESSIONS fits every goal; these goals may also be billed by their own event.
GOAL_BILLED_BY_ITSELF = ("LINK_CLICKS", "THRUPLAY", "APP_INSTALLS", "PAGE_LIKES", "POST_ENGAGEMENT")
BID_AMOUNT_STRATEGIES = ("LOWEST_COST_WITH_BID_CAP", "COST_CAP")
SPECIAL_CATEGORIES_WITH_LIMITS = ("CREDIT", "EMPLOYMENT", "HOUSING", "FINANCIAL_PRODUCTS_SERVICES")
BUDGET_CHANGES_PER_HOUR = 4

F = AdSet.Field
ADSET_FIELDS = ",".join([
    F.id, F.account_id, F.campaign_id, F.name, F.status, F.effective_status, F.optimization_goal, F.billing_event,
    F.bid_strategy, F.bid_amount, F.bid_constraints, F.daily_budget, F.lifetime_budget, F.budget_remaining,
    F.start_time, F.end_time, F.targeting, F.promoted_object, F.destination_type, F.adset_schedule, F.pacing_type,
    F.created_time, F.updated_time,
])
LIST_FIELDS = ",".join([F.id, F.campaign_id, F.name, F.status, F.effective_status, F.optimization_goal, F.billing_event,
                        F.daily_budget, F.lifetime_budget, F.start_time, F.end_time, F.adset_schedule])
C = Campaign.Field
CAMPAIGN_FIELDS = ",".join([C.id, C.name, C.account_id, C.objective, C.status, C.daily_budget, C.lifetime_budget,
                            C.bid_strategy, C.special_ad_categories])
LISTABLE_STATUSES = [s for s in EFFECTIVE_STATUSES if s not in ("ARCHIVED", "DELETED")]
BUDGET_NOTE = "Minor units of the account currency (cents for USD: 5000 = $50.00; yen for JPY: 5000 = ¥5,000)."
TIME_NOTE = "ISO-8601, e.g. 2026-12-01T09:00:00-08:00; without an offset it is read in the ad account's time zone."

AdAccountArg = Field(None, description="Ad account id (act_<digits>); defaults to the campaign's account, else the selected one.", examples=["act_1234567890"])
AdSetIdArg = Field(..., description="The ad set id (digits).", examples=["120210000000000101"])

# Facebook numbers days 0-6 from Sunday.
DAY_NUMBERS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
WEEK_ORDER = (1, 2, 3, 4, 5, 6, 0)


# ---------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------


def _has(value: Any) -> bool:
    return value not in (None, "", "0", 0)


def _rule_error(message: str, fix: str, field: str, code: int, subcode: int | None) -> ValidationError:
    return ValidationError(message, fix=fix, blame_field=field, code=code, error_subcode=subcode)


def account_zone(account: AccountInfo) -> ZoneInfo | timezone:
    try:
        return ZoneInfo(account.timezone_name) if account.timezone_name else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def parse_graph_time(value: Any) -> datetime | None:
    """Facebook's times ('2026-12-01T09:00:00-0800', ISO with colon, or unix seconds) as aware datetimes."""
    if value in (None, "", 0, "0"):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    text = str(value).replace("Z", "+00:00")
    for fmt in (None, "%Y-%m-%dT%H:%M:%S%z"):
        try:
            parsed = datetime.fromisoformat(text) if fmt is None else datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def local_time(value: datetime | None, account: AccountInfo) -> datetime | None:
    """A time the caller gave: one without an offset means the ad account's time zone, as in Ads Manager."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=account_zone(account))


def when_text(value: Any, account: AccountInfo) -> str:
    moment = parse_graph_time(value)
    if moment is None:
        return str(value)
    return moment.astimezone(account_zone(account)).strftime("%a %d %b %Y %H:%M")


def budget_text(adset: dict[str, Any], currency: str) -> str:
    if _has(adset.get("daily_budget")):
        return f"{format_money(adset['daily_budget'], currency)}/day"
    if _has(adset.get("lifetime_budget")):
        return f"{format_money(adset['lifetime_budget'], currency)} lifetime"
    return "budget on the campaign"


def schedule_text(adset: dict[str, Any], account: AccountInfo) -> str:
    zone = account.timezone_name or "UTC"
    start, end = adset.get("start_time"), adset.get("end_time")
    parts = [f"from {when_text(start, account)}" if start else "starts when active"]
    parts.append(f"until {when_text(end, account)}" if _has(end) else "no end")
    text = ", ".join(parts) + f" ({zone})"
    if adset.get("adset_schedule"):
        text += "; " + day_parting_text(adset["adset_schedule"], account)
    return text


def _day_ranges(days: list[int]) -> str:
    ordered = [d for d in WEEK_ORDER if d in set(days)]
    runs: list[list[int]] = []
    for day in ordered:
        if runs and WEEK_ORDER.index(day) == WEEK_ORDER.index(runs[-1][-1]) + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}–{DAY_NAMES[r[-1]]}" for r in runs)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def day_parting_text(schedule: list[dict[str, Any]], account: AccountInfo) -> str:
    """adset_schedule in words: 'Mon–Fri 09:00–17:00 in the ad account's time zone (America/Los_Angeles)'."""
    blocks = []
    for block in schedule:
        blocks.append(f"{_day_ranges([int(d) for d in block.get('days', [])])} "
                      f"{_clock(int(block.get('start_minute', 0)))}–{_clock(int(block.get('end_minute', 0)))}")
    kinds = {block.get("timezone_type", "USER") for block in schedule}
    where = (f"in the ad account's time zone ({account.timezone_name or 'UTC'})" if kinds == {"ADVERTISER"}
             else "in each viewer's own time zone" if kinds == {"USER"} else "mixed time zones")
    return "runs only " + "; ".join(blocks) + f" {where}"


def adset_line(adset: dict[str, Any], account: AccountInfo) -> str:
    status = adset.get("effective_status") or adset.get("status") or "?"
    goal = adset.get("optimization_goal", "")
    return (f"{adset['id']} · {adset.get('name', '')} · {status} · {goal} · {budget_text(adset, account.currency)}"
            f" · {schedule_text(adset, account)}")


def targeting_text(raw: Any) -> str:
    """The targeting in words; a spec this client does not understand is shown as it came."""
    if not raw:
        return "none"
    try:
        return describe_targeting_locally(parse_targeting(raw))
    except ValidationError:
        return json.dumps(raw, default=str)[:500]


def placements_text(targeting: dict[str, Any] | None) -> str:
    targeting = targeting or {}
    platforms = targeting.get("publisher_platforms")
    if not platforms:
        return "Advantage+ (automatic) placements"
    parts = []
    for platform in platforms:
        positions = targeting.get(f"{platform}_positions")
        parts.append(f"{platform} ({', '.join(positions)})" if positions else f"{platform} (all positions)")
    devices = targeting.get("device_platforms")
    return "; ".join(parts) + (f"; devices {', '.join(devices)}" if devices else "")


def adset_details(adset: dict[str, Any], account: AccountInfo) -> str:
    currency = account.currency
    lines = [f"Ad set {adset.get('name')} ({adset['id']}) in campaign {adset.get('campaign_id')}, {account.name} ({account.id})",
             f"  status {adset.get('status')} (effective {adset.get('effective_status')})",
             f"  goal {adset.get('optimization_goal')}, billed per {adset.get('billing_event')}",
             f"  budget {budget_text(adset, currency)}"]
    if _has(adset.get("budget_remaining")):
        lines.append(f"  budget remaining {format_money(adset['budget_remaining'], currency)}")
    bid = adset.get("bid_strategy") or "campaign's / lowest cost"
    if _has(adset.get("bid_amount")):
        bid += f", bid {format_money(adset['bid_amount'], currency)}"
    if adset.get("bid_constraints"):
        bid += f", constraints {json.dumps(adset['bid_constraints'])}"
    lines.append(f"  bid {bid}")
    lines.append(f"  schedule {schedule_text(adset, account)}")
    lines.append(f"  targeting {targeting_text(adset.get('targeting'))}")
    lines.append(f"  placements {placements_text(adset.get('targeting'))}")
    if adset.get("promoted_object"):
        lines.append(f"  promoted object {json.dumps(adset['promoted_object'], sort_keys=True)}")
    if adset.get("destination_type"):
        lines.append(f"  destination {adset['destination_type']}")
    return "\n".join(lines)


async def _read_adset(ctx: OpContext, adset_id: str, fields: str = ADSET_FIELDS) -> dict[str, Any]:
    return await ctx.graph.get(check_object_id(adset_id, "adset_id"), {"fields": fields})


async def _read_campaign(ctx: OpContext, campaign_id: str, field: str = "campaign_id") -> dict[str, Any]:
    return await ctx.graph.get(check_object_id(campaign_id, field), {"fields": CAMPAIGN_FIELDS})


async def _account_of(ctx: OpContext, obj: dict[str, Any], explicit: str | None = None) -> AccountInfo:
    account_id = f"act_{obj['account_id']}" if obj.get("account_id") else ctx.require_ad_account(explicit)
    return await ctx.graph.account_info(account_id)


def _graph_time(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------------------------------------------
# The rules of docs/adset_rules.md
# ---------------------------------------------------------------------------------------------------------------


def check_goal(objective: str | None, goal: str) -> None:
    """R1: the optimization goal must fit the campaign's objective."""
    valid = GOALS_BY_OBJECTIVE.get(objective or "")
    if valid is not None and goal not in valid:
        raise _rule_error(f"optimization_goal {goal} does not fit the campaign's objective {objective}",
                          f"Use one of {', '.join(valid)} (default {DEFAULT_GOAL[objective]})",
                          "optimization_goal", 100, 2490408)


def check_billing(goal: str, billing_event: str) -> None:
    """R2: the billing event must fit the optimization goal."""
    valid = ["IMPRESSIONS"] + ([goal] if goal in GOAL_BILLED_BY_ITSELF else [])
    if billing_event not in valid:
        raise _rule_error(f"billing_event {billing_event} cannot be used with optimization_goal {goal}",
                          f"Use billing_event {' or '.join(valid)} (IMPRESSIONS always works)", "billing_event", 100, 2490377)


def check_bid(strategy: str | None, bid_amount: int | None, bid_constraints: dict[str, Any] | None) -> None:
    """R3: cap strategies need a bid amount; the minimum-ROAS strategy needs a ROAS floor."""
    if strategy in BID_AMOUNT_STRATEGIES and not bid_amount:
        raise _rule_error(f"bid strategy {strategy} needs a bid_amount",
                          f"Pass bid_amount (the {'cap per result' if strategy == 'COST_CAP' else 'highest bid'}, {BUDGET_NOTE}) "
                          "or use bid_strategy LOWEST_COST_WITHOUT_CAP", "bid_amount", 100, 1815857)
    if strategy == "LOWEST_COST_WITH_MIN_ROAS" and not (bid_constraints or {}).get("roas_average_floor"):
        raise _rule_error("bid strategy LOWEST_COST_WITH_MIN_ROAS needs bid_constraints.roas_average_floor",
                          "Pass bid_constraints {\"roas_average_floor\": 10000} (ROAS × 10 000: 10000 = 1.0) or another bid strategy",
                          "bid_constraints", 100, 1815857)


def campaign_has_budget(campaign: dict[str, Any]) -> bool:
    return _has(campaign.get("daily_budget")) or _has(campaign.get("lifetime_budget"))


def check_budget_owner(campaign: dict[str, Any], daily: int | None, lifetime: int | None, account: AccountInfo) -> None:
    """R4 and R5: the budget lives on the campaign or on every ad set, exactly one kind."""
    if campaign_has_budget(campaign):
        if daily or lifetime:
            sent = "daily_budget" if daily else "lifetime_budget"
            raise _rule_error(f"Campaign {campaign.get('name')} ({campaign['id']}) has a campaign budget "
                              f"({budget_text(campaign, account.currency)}), so its ad sets cannot have their own {sent.replace('_', ' ')}",
                              f"Leave out {sent}, or change the campaign's budget with update_campaign", sent, 100, 1885621)
        return
    if daily and lifetime:
        raise _rule_error("An ad set takes daily_budget or lifetime_budget, not both",
                          "Keep one: daily_budget (spend per day) or lifetime_budget (total, needs end_time)",
                          "daily_budget", 100, 1885621)
    if not (daily or lifetime):
        raise _rule_error(f"Campaign {campaign.get('name')} ({campaign['id']}) has no campaign budget, so the ad set needs its own",
                          f"Pass daily_budget (e.g. 2000 = {format_money(2000, account.currency)}/day) or lifetime_budget with end_time; {BUDGET_NOTE}",
                          "daily_budget", 100, 1885621)


def schedule_days(start: datetime | None, end: datetime | None) -> int:
    begin = start or datetime.now(timezone.utc)
    return max(1, math.ceil((end - begin).total_seconds() / 86400)) if end else 1


def check_min_budget(field: str, amount: int | None, account: AccountInfo, start: datetime | None = None,
                     end: datetime | None = None) -> None:
    """R6: at least the account's minimum per day (a lifetime budget: that minimum × the days it runs)."""
    minimum = account.min_daily_budget
    if amount is None or not minimum:
        return
    days = schedule_days(start, end) if field == "lifetime_budget" else 1
    needed = minimum * days
    if amount < needed:
        per = f" ({format_money(minimum, account.currency)} a day × {days} days)" if field == "lifetime_budget" else ""
        raise _rule_error(f"{field} {format_money(amount, account.currency)} is below the minimum of "
                          f"{format_money(needed, account.currency)}{per} for {account.name}",
                          f"Use {field} of at least {needed} ({format_money(needed, account.currency)}); amounts are minor units of {account.currency}",
                          field, 100, 1885272)


def check_times(start: datetime | None, end: datetime | None, lifetime: bool, now: datetime | None = None) -> None:
    """R7 and R8: a lifetime budget needs an end; the end comes after the start and lies in the future."""
    if lifetime and end is None:
        raise _rule_error("A lifetime budget needs end_time (when the ad set stops)",
                          "Pass end_time, e.g. 2026-12-31T23:00:00, or use daily_budget", "end_time", 100, 1885347)
    now = now or datetime.now(timezone.utc)
    if end is not None and end <= now:
        raise _rule_error(f"end_time {end.isoformat()} is in the past", "Pick an end_time in the future", "end_time", 100, 1487181)
    if end is not None and start is not None and end <= start:
        raise _rule_error(f"end_time {end.isoformat()} is not after start_time {start.isoformat()}",
                          "Pick an end_time after start_time", "end_time", 100, 1487181)


def promoted_object_needs(objective: str | None, goal: str) -> tuple[str, ...]:
    """R14: which promoted_object keys Facebook requires for this objective and goal."""
    if objective == "OUTCOME_SALES" and goal in ("OFFSITE_CONVERSIONS", "VALUE"):
        return ("pixel_id", "custom_event_type")
    if objective == "OUTCOME_LEADS" and goal == "OFFSITE_CONVERSIONS":
        return ("pixel_id", "custom_event_type")
    if objective == "OUTCOME_LEADS" and goal in ("LEAD_GENERATION", "QUALITY_LEAD"):
        return ("page_id",)
    if objective == "OUTCOME_APP_PROMOTION":
        return ("application_id", "object_store_url")
    if objective == "OUTCOME_ENGAGEMENT" and goal == "PAGE_LIKES":
        return ("page_id",)
    return ()


DEFAULT_EVENT = {"OUTCOME_SALES": "PURCHASE", "OUTCOME_LEADS": "LEAD"}


async def default_pixel(ctx: OpContext, account: AccountInfo, objective: str | None, goal: str,
                        promoted: dict[str, Any]) -> list[str]:
    """A conversion goal needs a pixel: the account's only pixel is taken (and said); several or none is the caller's call."""
    pixels = await ctx.graph.get_all(f"{account.id}/adspixels", {"fields": "id,name", "limit": 100})
    if len(pixels) > 1:
        listed = ", ".join(f"{p.get('name', '')} ({p['id']})" for p in pixels[:10])
        raise _rule_error(f"{objective} with optimization_goal {goal} needs a pixel, and {account.name} has {len(pixels)}: {listed}",
                          "Pass promoted_object {\"pixel_id\": \"<one of them>\", \"custom_event_type\": \"PURCHASE\"}",
                          "promoted_object", 100, 1815430)
    if not pixels:
        raise _rule_error(f"{objective} with optimization_goal {goal} needs a pixel, and {account.name} has none",
                          "Install a Meta pixel on the website first, or use optimization_goal LINK_CLICKS or LANDING_PAGE_VIEWS",
                          "promoted_object", 100, 1815430)
    pixel = pixels[0]
    promoted["pixel_id"] = pixel["id"]
    notes = [f"pixel {pixel.get('name', '')} ({pixel['id']}), the account's only pixel"]
    if not promoted.get("custom_event_type"):
        promoted["custom_event_type"] = DEFAULT_EVENT.get(objective or "", "PURCHASE")
        notes.append(f"conversion event {promoted['custom_event_type']}")
    return notes


def check_promoted_object(objective: str | None, goal: str, promoted: dict[str, Any]) -> None:
    missing = [k for k in promoted_object_needs(objective, goal) if not promoted.get(k)]
    if missing:
        hints = {"pixel_id": "the id of the ad account's pixel", "custom_event_type": "the event to optimise for, e.g. PURCHASE or LEAD",
                 "page_id": "the Facebook page (select one with /use page <id>)", "application_id": "the app's Facebook id",
                 "object_store_url": "the app's store URL"}
        raise _rule_error(f"{objective} with optimization_goal {goal} needs promoted_object {' and '.join(missing)}",
                          "Pass promoted_object with " + "; ".join(f"{k}: {hints[k]}" for k in missing),
                          "promoted_object", 100, 1815430)


def _hour_minute(value: Any, what: str) -> int:
    """'09:00', '9', 9 or '24:00' -> minutes since midnight; Facebook takes whole hours only."""
    text = str(value).strip()
    hours, _, minutes = text.partition(":")
    if not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise _rule_error(f"day_parting {what} {value!r} is not a time of day", "Write times as HH:MM, e.g. \"09:00\" or \"24:00\"",
                          "adset_schedule", 100, 1487079)
    if minutes and int(minutes) != 0:
        raise _rule_error(f"day_parting {what} {text} is not on the hour: Facebook schedules whole hours only",
                          f"Use {int(hours):02d}:00 or {int(hours) + 1:02d}:00", "adset_schedule", 100, 1487079)
    minute = int(hours) * 60
    if not 0 <= minute <= 1440:
        raise _rule_error(f"day_parting {what} {text} is outside 00:00–24:00", "Use hours from 00:00 to 24:00",
                          "adset_schedule", 100, 1487079)
    return minute


def _day_number(value: Any) -> int:
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        if 0 <= number <= 6:
            return number
    elif isinstance(value, str) and value.strip()[:3].lower() in DAY_NUMBERS:
        return DAY_NUMBERS[value.strip()[:3].lower()]
    raise _rule_error(f"day_parting day {value!r} is not a day", "Use mon..sun, or 0-6 with 0 = Sunday as Facebook numbers them",
                      "adset_schedule", 100, 1487079)


class DayPartingBlock(BaseModel):
    """One block of hours on some days."""

    model_config = ConfigDict(extra="forbid")

    days: list[int | str] = Field(..., description="Days: \"mon\"..\"sun\" (or 0-6, 0 = Sunday as Facebook counts).", examples=[["mon", "tue", "wed", "thu", "fri"]])
    start: str | int = Field(..., description="Start hour, \"HH:00\" (whole hours only).", examples=["09:00"])
    end: str | int = Field(..., description="End hour, \"HH:00\", after start; \"24:00\" is midnight at the end of the day.", examples=["17:00"])


def day_parting_schedule(blocks: list[DayPartingBlock], timezone_choice: str) -> list[dict[str, Any]]:
    """Blocks as a person writes them -> Facebook's adset_schedule (R17 block rules)."""
    if not blocks:
        raise _rule_error("day_parting has no blocks", "Give at least one block, or null to clear day parting",
                          "adset_schedule", 100, 1487079)
    timezone_type = "ADVERTISER" if timezone_choice == "account" else "USER"
    schedule = []
    for block in blocks:
        start, end = _hour_minute(block.start, "start"), _hour_minute(block.end, "end")
        if end <= start:
            raise _rule_error(f"day_parting block {_clock(start)}–{_clock(end)} ends before it starts",
                              "Make end later than start (a block cannot cross midnight: split it in two)", "adset_schedule", 100, 1487079)
        days = sorted({_day_number(d) for d in block.days})
        if not days:
            raise _rule_error("day_parting block has no days", "List at least one day, e.g. [\"mon\", \"tue\"]",
                              "adset_schedule", 100, 1487079)
        schedule.append({"start_minute": start, "end_minute": end, "days": days, "timezone_type": timezone_type})
    return schedule


def check_day_parting_budget(has_lifetime: bool) -> None:
    """R17: Facebook runs day parting only with a lifetime budget."""
    if not has_lifetime:
        raise _rule_error("Day parting (adset_schedule) needs a lifetime budget",
                          "Use lifetime_budget with end_time instead of daily_budget, or leave out day_parting",
                          "adset_schedule", 100, 2490126)


def _decode_targeting(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def default_advantage_audience(raw: Any) -> tuple[Any, str | None]:
    """Facebook requires targeting_automation.advantage_audience (R12); choose it the way the person most likely means."""
    if not isinstance(raw, dict):
        return raw, None
    automation = raw.get("targeting_automation")
    if isinstance(automation, dict) and "advantage_audience" in automation:
        return raw, None
    custom = [k for k in ("age_min", "age_max", "genders") if raw.get(k) not in (None, [], "")]
    value = 0 if custom else 1
    chosen = {**raw, "targeting_automation": {**(automation if isinstance(automation, dict) else {}), "advantage_audience": value}}
    note = (f"advantage_audience set to 0 because you set {'/'.join(custom)}: the audience stays as given (pass 1 to let Facebook widen it)"
            if custom else "advantage_audience set to 1 (Facebook may widen the audience beyond your suggestions; pass 0 to keep it strict)")
    return chosen, note


# ---------------------------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------------------------


class ListAdSetsArgs(OpArgs):
    """List ad sets of a campaign (or of an ad account) with status, goal, budget and schedule; filter and page."""

    campaign_id: str | None = Field(None, description="Only the ad sets of this campaign. Without it: every ad set of the ad account.")
    ad_account_id: str | None = Field(None, description="Ad account id (act_<digits>); defaults to the selected account. Ignored with campaign_id.")
    status: list[EffectiveStatus] | None = Field(None, description="Only ad sets with these effective statuses, e.g. [\"ACTIVE\"]. Default: all but ARCHIVED and DELETED.")
    name_contains: str | None = Field(None, min_length=1, max_length=200, description="Only ad sets whose name contains this text.")
    limit: int = Field(25, ge=1, le=1000, description="Page size (1-1000).")
    after: str | None = Field(None, description="Cursor from a previous page's `next_after` to get the next page.")
    all_pages: bool = Field(False, description="Follow every page (up to `limit` ad sets in total when set together).")


@ops.op(OpKind.READ)
async def list_adsets(ctx: OpContext, args: ListAdSetsArgs) -> OpResult:
    if args.campaign_id:
        campaign = await _read_campaign(ctx, args.campaign_id)
        account = await _account_of(ctx, campaign, args.ad_account_id)
        path, where = f"{campaign['id']}/adsets", f"campaign {campaign.get('name')} ({campaign['id']})"
    else:
        account = await ctx.graph.account_info(ctx.require_ad_account(args.ad_account_id))
        path, where = f"{account.id}/adsets", f"{account.name} ({account.id})"
    params: dict[str, Any] = {"fields": LIST_FIELDS, "limit": args.limit,
                              "effective_status": json.dumps(args.status or LISTABLE_STATUSES)}
    if args.name_contains:
        params["filtering"] = json.dumps([{"field": "name", "operator": "CONTAIN", "value": args.name_contains}])
    if args.after:
        params["after"] = args.after
    next_after = None
    if args.all_pages:
        adsets = await ctx.graph.get_all(path, params, limit=args.limit if args.limit != 25 else None)
    else:
        page = await ctx.graph.get(path, params)
        adsets = page.get("data", [])
        paging = page.get("paging", {})
        next_after = paging.get("cursors", {}).get("after") if paging.get("next") else None
    if not adsets:
        text = f"No ad sets in {where} match."
    else:
        lines = [f"Ad sets in {where}, {len(adsets)} shown:"] + ["  " + adset_line(a, account) for a in adsets]
        if next_after:
            lines.append(f"More: list_adsets with after=\"{next_after}\" (or all_pages=true).")
        text = "\n".join(lines)
    return OpResult(text=text, data={"ad_account_id": account.id, "campaign_id": args.campaign_id, "currency": account.currency,
                                     "adsets": adsets, "next_after": next_after})


class GetAdSetArgs(OpArgs):
    """Show one ad set: status, goal, budget, bid, schedule, targeting in words, placements, promoted object."""

    adset_id: str = AdSetIdArg


@ops.op(OpKind.READ)
async def get_adset(ctx: OpContext, args: GetAdSetArgs) -> OpResult:
    adset = await _read_adset(ctx, args.adset_id)
    account = await _account_of(ctx, adset)
    return OpResult(text=adset_details(adset, account), data={"adset": adset, "currency": account.currency})


# ---------------------------------------------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------------------------------------------


class PromotedObject(BaseModel):
    """What the ad set promotes: a pixel event, a page, or an app."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    pixel_id: str | None = Field(None, description="Pixel id, for website conversions (with custom_event_type).")
    custom_event_type: CustomEventType | None = Field(None, description="Conversion event to optimise for, e.g. PURCHASE, LEAD.")
    page_id: str | None = Field(None, description="Facebook page id, for lead forms and page likes (default: the selected page).")
    application_id: str | None = Field(None, description="Facebook app id, for app promotion.")
    object_store_url: str | None = Field(None, description="App store URL of the app, for app promotion.")


class CreateAdSetArgs(OpArgs):
    """Create an ad set in a campaign (PAUSED unless status=ACTIVE is confirmed): targeting, goal, budget, schedule, placements.

    Every Facebook rule for ad sets is checked first; defaults (goal for the objective, IMPRESSIONS billing,
    advantage_audience, the selected page) are named in the answer.
    """

    campaign_id: str = Field(..., description="The campaign the ad set belongs to (digits).", examples=["120210000000000001"])
    name: str = Field(..., min_length=1, max_length=400, description="Ad set name.", examples=["US 25-45 runners"])
    targeting: dict[str, Any] | str = Field(..., description="Targeting spec as Facebook takes it: geo_locations {countries, regions, cities, zips}, age_min, age_max, genders [1 male, 2 female], interests [{id,name}], flexible_spec, custom_audiences, targeting_automation {advantage_audience 0|1}. Use search_locations/search_interests for ids.", examples=[{"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 45}])
    optimization_goal: OptimizationGoal | None = Field(None, description="What Facebook optimises delivery for; default by the campaign objective (TRAFFIC → LINK_CLICKS, SALES → OFFSITE_CONVERSIONS, LEADS → LEAD_GENERATION, AWARENESS → REACH, ENGAGEMENT → POST_ENGAGEMENT, APP_PROMOTION → APP_INSTALLS).")
    billing_event: BillingEvent | None = Field(None, description="What you pay for; default IMPRESSIONS (valid for every goal).")
    bid_strategy: BidStrategy | None = Field(None, description="Bid strategy of the ad set (when the campaign has no budget); COST_CAP and LOWEST_COST_WITH_BID_CAP need bid_amount.")
    bid_amount: int | None = Field(None, gt=0, description=f"Bid cap or cost cap per result. {BUDGET_NOTE}")
    bid_constraints: dict[str, Any] | None = Field(None, description="For LOWEST_COST_WITH_MIN_ROAS: {\"roas_average_floor\": 10000} (ROAS × 10 000).")
    daily_budget: int | None = Field(None, gt=0, description=f"Daily budget of the ad set (only when the campaign has no budget). {BUDGET_NOTE}")
    lifetime_budget: int | None = Field(None, gt=0, description=f"Total budget of the ad set (needs end_time; needed for day_parting). {BUDGET_NOTE}")
    start_time: datetime | None = Field(None, description=f"When delivery may start (default: as soon as it is active). {TIME_NOTE}")
    end_time: datetime | None = Field(None, description=f"When delivery stops; required with lifetime_budget. {TIME_NOTE}")
    promoted_object: PromotedObject | None = Field(None, description="Required for conversions (pixel_id + custom_event_type), lead forms and page likes (page_id; default the selected page), app installs (application_id + object_store_url).")
    destination_type: DestinationType | None = Field(None, description="Where people go: WEBSITE, APP, MESSENGER, WHATSAPP, ON_AD (lead form), …")
    placements: Literal["recommended", "automatic"] | None = Field(None, description="\"recommended\": placements chosen for creative_type (the answer says which and why); \"automatic\": Advantage+ placements; omitted: what the targeting says.")
    creative_type: Literal["image", "video", "carousel"] = Field("image", description="The kind of ads planned, used by placements=\"recommended\".")
    day_parting: list[DayPartingBlock] | None = Field(None, description="Run only in these hours (needs lifetime_budget): [{days: [\"mon\",..], start: \"09:00\", end: \"17:00\"}].")
    timezone: Literal["viewer", "account"] = Field("viewer", description="Day parting hours in each viewer's time zone (viewer) or the ad account's (account).")
    status: Literal["PAUSED", "ACTIVE"] = Field("PAUSED", description="PAUSED (default) or ACTIVE, which can start spending and needs confirmation.")
    ad_account_id: str | None = AdAccountArg


@dataclass
class PreparedAdSet:
    """A create checked against every rule: the body to send and what was chosen on the caller's behalf."""

    data: dict[str, Any]
    notes: list[str]
    targeting_summary: str
    placements_summary: str


async def prepare_create(ctx: OpContext, args: CreateAdSetArgs, campaign: dict[str, Any], account: AccountInfo) -> PreparedAdSet:
    """Check R1-R8, R14, R17 and the targeting (R9-R13, R15) and build the create body; nothing is sent."""
    notes: list[str] = []
    raw_targeting, automation_note = default_advantage_audience(_decode_targeting(args.targeting))
    spec = parse_targeting(raw_targeting)
    objective = campaign.get("objective")
    goal = args.optimization_goal or DEFAULT_GOAL.get(objective or "", "LINK_CLICKS")
    if not args.optimization_goal:
        notes.append(f"optimization goal {goal} (the default for {objective})")
    check_goal(objective, goal)
    billing = args.billing_event or "IMPRESSIONS"
    check_billing(goal, billing)
    check_bid(args.bid_strategy or campaign.get("bid_strategy"), args.bid_amount, args.bid_constraints)
    check_budget_owner(campaign, args.daily_budget, args.lifetime_budget, account)
    start, end = local_time(args.start_time, account), local_time(args.end_time, account)
    check_times(start, end, bool(args.lifetime_budget))
    check_min_budget("daily_budget", args.daily_budget, account)
    check_min_budget("lifetime_budget", args.lifetime_budget, account, start, end)

    promoted = args.promoted_object.model_dump(exclude_none=True) if args.promoted_object else {}
    needs = promoted_object_needs(objective, goal)
    if "page_id" in needs and not promoted.get("page_id") and ctx.page_id:
        promoted["page_id"] = ctx.page_id
        notes.append(f"promoted page {ctx.page_id} (the selected page)")
    if "pixel_id" in needs and not promoted.get("pixel_id"):
        notes += await default_pixel(ctx, account, objective, goal, promoted)
    check_promoted_object(objective, goal, promoted)

    schedule = None
    if args.day_parting is not None:
        check_day_parting_budget(bool(args.lifetime_budget))
        schedule = day_parting_schedule(args.day_parting, args.timezone)

    if automation_note:
        notes.append(automation_note)
    placements_summary = None
    if args.placements:
        plan = recommend_placements(args.creative_type, objective, automatic=args.placements == "automatic")
        spec = apply_placements(spec, plan)
        placements_summary = plan.summary()
        if args.placements == "recommended":
            why = "; ".join(reason.rstrip(". ") for reason in plan.reasons)
            notes.append(f"placements for {args.creative_type} ads" + (f", because: {why}" if why else ""))
    categories = [c for c in campaign.get("special_ad_categories") or [] if c != "NONE"]
    check_targeting(spec, special_ad_categories=categories, creating=True)
    targeting = targeting_payload(spec)

    data: dict[str, Any] = {"name": args.name, "campaign_id": campaign["id"], "status": args.status,
                            "optimization_goal": goal, "billing_event": billing, "targeting": targeting}
    optional = {"bid_strategy": args.bid_strategy, "bid_amount": args.bid_amount, "bid_constraints": args.bid_constraints,
                "daily_budget": args.daily_budget, "lifetime_budget": args.lifetime_budget,
                "start_time": start and _graph_time(start), "end_time": end and _graph_time(end),
                "promoted_object": promoted or None, "destination_type": args.destination_type}
    data.update({k: v for k, v in optional.items() if v is not None})
    if schedule:
        data["adset_schedule"] = schedule
        data["pacing_type"] = ["day_parting"]
    return PreparedAdSet(data=data, notes=notes, targeting_summary=describe_targeting_locally(spec),
                         placements_summary=placements_summary or placements_text(targeting))


def create_summary(args: CreateAdSetArgs, prepared: PreparedAdSet, campaign: dict[str, Any], account: AccountInfo) -> str:
    data = prepared.data
    budget = budget_text(data, account.currency) if (args.daily_budget or args.lifetime_budget) else \
        f"campaign budget ({budget_text(campaign, account.currency)})"
    parts = [f"goal {data['optimization_goal']}", f"billing {data['billing_event']}", f"budget {budget}",
             f"schedule {schedule_text(data, account)}", f"targeting {prepared.targeting_summary.rstrip('. ')}"]
    if "placements" not in prepared.targeting_summary:
        parts.append(f"placements {prepared.placements_summary}")
    if data.get("bid_amount"):
        parts.append(f"bid {format_money(data['bid_amount'], account.currency)}")
    if data.get("promoted_object"):
        parts.append(f"promoted object {json.dumps(data['promoted_object'], sort_keys=True)}")
    text = "; ".join(parts)
    if prepared.notes:
        text += ". Chosen for you: " + "; ".join(prepared.notes)
    return text


@ops.op(OpKind.SPEND, example={"campaign_id": "120210000000000001", "name": "US 25-45", "daily_budget": 2000,
                               "targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 45},
                               "placements": "recommended"})
async def create_adset(ctx: OpContext, args: CreateAdSetArgs) -> WritePlan:
    campaign = await _read_campaign(ctx, args.campaign_id)
    account = await _account_of(ctx, campaign, args.ad_account_id)
    if args.ad_account_id and ctx.require_ad_account(args.ad_account_id) != account.id:
        raise ValidationError(f"Campaign {campaign['id']} belongs to {account.id}, not {args.ad_account_id}",
                              fix="Leave out ad_account_id (the campaign's account is used) or pick a campaign of that account",
                              blame_field="ad_account_id")
    if campaign.get("status") in ("DELETED", "ARCHIVED"):
        raise ValidationError(f"Campaign {campaign.get('name')} ({campaign['id']}) is {campaign['status'].lower()}; it takes no new ad sets",
                              fix="Pick an active or paused campaign, or duplicate this one", blame_field="campaign_id")
    prepared = await prepare_create(ctx, args, campaign, account)
    data = prepared.data
    summary = create_summary(args, prepared, campaign, account)
    tag = new_client_tag()
    path = f"{account.id}/adsets"
    send = {**data, "adlabels": [{"name": tag}]}

    async def execute() -> OpResult:
        created = await ctx.graph.create(path, send, lookup=CreateLookup(list_path=path, name=args.name, tag=tag))
        recovered = " (its first answer was lost; found it instead of creating it twice)" if created.get("recovered") else ""
        text = (f"Created ad set {args.name} ({created['id']}) {args.status} in campaign {campaign.get('name')}{recovered}: "
                f"{summary}. Next: add ads with a creative.")
        return OpResult(text=text, data={"id": created["id"], "adset_id": created["id"], "campaign_id": campaign["id"],
                                         "status": args.status, "ad_account_id": account.id, "notes": prepared.notes,
                                         "targeting": data["targeting"], "recovered": bool(created.get("recovered"))})

    async def validate() -> Any:
        return await ctx.graph.post(path, {**data, "execution_options": ["validate_only"]})

    changes = [Change(None, "adset", args.name, "status", None, args.status)]
    changes += [Change(None, "adset", args.name, f, None, getattr(args, f), account.currency)
                for f in ("daily_budget", "lifetime_budget", "bid_amount") if getattr(args, f)]
    return WritePlan(summary=f"create ad set {args.name} ({args.status}) in campaign {campaign.get('name')} ({campaign['id']}): {summary}",
                     ad_account_id=account.id, requests=[GraphRequest("POST", path, send)], changes=changes,
                     execute=execute, validate=validate, currency=account.currency)


# ---------------------------------------------------------------------------------------------------------------
# Update and status changes
# ---------------------------------------------------------------------------------------------------------------


class UpdateAdSetArgs(OpArgs):
    """Change an ad set's name, status, budget, bid, goal, targeting or times (raises need confirmation over the guardrails).

    A budget changes at most 4 times an hour (Facebook's limit); targeting replaces the whole spec.
    """

    adset_id: str = AdSetIdArg
    name: str | None = Field(None, min_length=1, max_length=400, description="New name.")
    status: Literal["ACTIVE", "PAUSED"] | None = Field(None, description="ACTIVE (can start spending) or PAUSED.")
    daily_budget: int | None = Field(None, gt=0, description=f"New daily budget. {BUDGET_NOTE}")
    lifetime_budget: int | None = Field(None, gt=0, description=f"New lifetime budget. {BUDGET_NOTE}")
    bid_amount: int | None = Field(None, gt=0, description=f"New bid cap / cost cap. {BUDGET_NOTE}")
    bid_strategy: BidStrategy | None = Field(None, description="New bid strategy; COST_CAP and LOWEST_COST_WITH_BID_CAP need a bid_amount.")
    targeting: dict[str, Any] | str | None = Field(None, description="A complete new targeting spec (replaces the current one entirely; get_adset shows it).")
    optimization_goal: OptimizationGoal | None = Field(None, description="New optimization goal (must fit the campaign's objective).")
    start_time: datetime | None = Field(None, description=f"New start. {TIME_NOTE}")
    end_time: datetime | None = Field(None, description=f"New end. {TIME_NOTE}")


def _check_editable(adset: dict[str, Any], updates: dict[str, Any]) -> None:
    status = adset.get("status")
    if status == "DELETED":
        raise ValidationError(f"Ad set {adset['id']} is deleted and cannot be changed", fix="Duplicate it or create a new ad set")
    if status == "ARCHIVED" and (set(updates) - {"status"} or updates.get("status") != "DELETED"):
        raise ValidationError(f"Ad set {adset.get('name')} ({adset['id']}) is archived; Facebook only allows deleting it",
                              fix="Use duplicate_adset to run it again, or delete_adset")


async def budget_changes_last_hour(ctx: OpContext, adset_id: str, now: float | None = None) -> list[datetime]:
    """When this ad set's budget changed in the last hour, from its activity log (R16)."""
    now = time.time() if now is None else now
    since = int(now - 3600)
    events = await ctx.graph.get_all(f"{adset_id}/activities", {"fields": "event_type,event_time", "since": since})
    times = []
    for event in events:
        if event.get("event_type") != "update_ad_set_budget":
            continue
        moment = parse_graph_time(event.get("event_time"))
        if moment is None or moment.timestamp() >= since:
            times.append(moment or datetime.fromtimestamp(now, tz=timezone.utc))
    return sorted(times)


async def check_budget_rate(ctx: OpContext, adset: dict[str, Any], account: AccountInfo, field: str) -> None:
    changes = await budget_changes_last_hour(ctx, adset["id"])
    if len(changes) >= BUDGET_CHANGES_PER_HOUR:
        next_at = changes[-BUDGET_CHANGES_PER_HOUR] + timedelta(hours=1)
        wait = max(1, math.ceil((next_at - datetime.now(timezone.utc)).total_seconds() / 60))
        raise _rule_error(f"The budget of ad set {adset.get('name')} ({adset['id']}) already changed {len(changes)} times in the "
                          f"last hour; Facebook allows {BUDGET_CHANGES_PER_HOUR}",
                          f"Change it again after {when_text(next_at, account)} ({account.timezone_name or 'UTC'}), in about {wait} min",
                          field, 613, 1487632)


def _updates_of(args: BaseModel, exclude: set[str]) -> dict[str, Any]:
    return args.model_dump(exclude=exclude, exclude_none=True)


async def _check_update(ctx: OpContext, adset: dict[str, Any], campaign: dict[str, Any], account: AccountInfo,
                        updates: dict[str, Any], args: UpdateAdSetArgs) -> dict[str, Any]:
    """Apply every rule to an update and turn it into the fields to send."""
    _check_editable(adset, updates)
    budget_field = next((f for f in ("daily_budget", "lifetime_budget") if f in updates), None)
    if updates.get("daily_budget") and updates.get("lifetime_budget"):
        raise _rule_error("An ad set takes daily_budget or lifetime_budget, not both", "Change one of them", "daily_budget", 100, 1885621)
    if budget_field:
        if campaign_has_budget(campaign):
            raise _rule_error(f"Ad set {adset.get('name')} belongs to campaign {campaign.get('name')} ({campaign['id']}), which has a "
                              f"campaign budget ({budget_text(campaign, account.currency)}); its ad sets have none to change",
                              "Change the campaign's budget with update_campaign", budget_field, 100, 1885621)
        other = "lifetime_budget" if budget_field == "daily_budget" else "daily_budget"
        if _has(adset.get(other)):
            raise ValidationError(f"Ad set {adset.get('name')} has a {other.replace('_', ' ')}; Facebook cannot switch an ad set "
                                  "between daily and lifetime budget",
                                  fix=f"Change {other} instead, or duplicate the ad set and give the copy a {budget_field.replace('_', ' ')}",
                                  blame_field=budget_field)
    start = local_time(args.start_time, account) or parse_graph_time(adset.get("start_time"))
    end = local_time(args.end_time, account) or parse_graph_time(adset.get("end_time"))
    if "start_time" in updates or "end_time" in updates:
        check_times(start, end, _has(adset.get("lifetime_budget")) or "lifetime_budget" in updates)
    check_min_budget("daily_budget", updates.get("daily_budget"), account)
    lifetime = updates.get("lifetime_budget") or (int(adset["lifetime_budget"]) if _has(adset.get("lifetime_budget")) and end else None)
    if lifetime and ("lifetime_budget" in updates or "end_time" in updates or "start_time" in updates):
        check_min_budget("lifetime_budget", lifetime, account, start, end)
    goal = updates.get("optimization_goal") or adset.get("optimization_goal")
    if "optimization_goal" in updates:
        check_goal(campaign.get("objective"), goal)
        if adset.get("billing_event"):
            check_billing(goal, adset["billing_event"])
    if "bid_strategy" in updates or "bid_amount" in updates:
        strategy = updates.get("bid_strategy") or adset.get("bid_strategy") or campaign.get("bid_strategy")
        check_bid(strategy, updates.get("bid_amount") or (int(adset["bid_amount"]) if _has(adset.get("bid_amount")) else None),
                  adset.get("bid_constraints"))
    sent = dict(updates)
    if args.targeting is not None:
        spec = parse_targeting(_decode_targeting(args.targeting))
        categories = [c for c in campaign.get("special_ad_categories") or [] if c != "NONE"]
        check_targeting(spec, special_ad_categories=categories, creating=False)
        sent["targeting"] = targeting_payload(spec)
    for key in ("start_time", "end_time"):
        if key in sent:
            sent[key] = _graph_time(local_time(getattr(args, key), account))
    return sent


def describe_changes(changes: list[Change], account: AccountInfo | None = None) -> str:
    parts = []
    for change in changes:
        if change.field == "targeting":
            parts.append(f"targeting → {targeting_text(change.after)}")
        elif change.field == "adset_schedule" and account is not None:
            parts.append(f"day parting → {day_parting_text(change.after, account) if change.after else 'none (runs all day)'}")
        elif change.field == "pacing_type":
            continue
        elif change.field in ("start_time", "end_time") and account is not None:
            before = when_text(change.before, account) if _has(change.before) else "none"
            parts.append(f"{change.field.replace('_', ' ')} {before} → {when_text(change.after, account) if _has(change.after) else 'none'}")
        else:
            parts.append(describe_change(change))
    return "; ".join(parts)


def adset_plan(ctx: OpContext, adset: dict[str, Any], account: AccountInfo, updates: dict[str, Any], verb: str,
               extra: str = "") -> WritePlan | OpResult:
    target = EditedObject(adset, "adset", "ad set", "adset_id", account.id, account.currency)
    return update_plan(ctx, target, updates, verb, describe=lambda changes: describe_changes(changes, account), extra=extra)


@ops.op(OpKind.SPEND, example={"adset_id": "120210000000000101", "daily_budget": 3000})
async def update_adset(ctx: OpContext, args: UpdateAdSetArgs) -> WritePlan | OpResult:
    updates = _updates_of(args, {"adset_id"})
    if not updates:
        raise ValidationError("Nothing to change", fix="Pass at least one of name, status, daily_budget, lifetime_budget, bid_amount, "
                              "bid_strategy, targeting, optimization_goal, start_time, end_time", blame_field="adset_id")
    adset = await _read_adset(ctx, args.adset_id)
    account = await _account_of(ctx, adset)
    campaign = await _read_campaign(ctx, adset["campaign_id"]) if adset.get("campaign_id") else {"id": "?"}
    sent = await _check_update(ctx, adset, campaign, account, updates, args)
    budget_field = next((f for f in ("daily_budget", "lifetime_budget") if f in sent and str(adset.get(f)) != str(sent[f])), None)
    if budget_field:
        await check_budget_rate(ctx, adset, account, budget_field)
    return adset_plan(ctx, adset, account, sent, "Updated")


class AdSetIdArgs(OpArgs):
    adset_id: str = AdSetIdArg


class PauseAdSetArgs(AdSetIdArgs):
    """Pause an ad set: its ads stop delivering until it is resumed."""


class ResumeAdSetArgs(AdSetIdArgs):
    """Resume (activate) a paused ad set: it can spend again, so this asks for confirmation under the guardrails policy."""


class ArchiveAdSetArgs(AdSetIdArgs):
    """Archive an ad set: it stops and leaves the default lists; afterwards it can only be deleted."""


class DeleteAdSetArgs(AdSetIdArgs):
    """Delete an ad set (and with it its ads). This cannot be undone."""


async def _status_change(ctx: OpContext, adset_id: str, status: str, verb: str) -> WritePlan | OpResult:
    adset = await _read_adset(ctx, adset_id)
    account = await _account_of(ctx, adset)
    _check_editable(adset, {"status": status})
    return adset_plan(ctx, adset, account, {"status": status}, verb)


@ops.op(OpKind.WRITE, idempotent=True)
async def pause_adset(ctx: OpContext, args: PauseAdSetArgs) -> WritePlan | OpResult:
    return await _status_change(ctx, args.adset_id, "PAUSED", "Paused")


@ops.op(OpKind.SPEND, idempotent=True)
async def resume_adset(ctx: OpContext, args: ResumeAdSetArgs) -> WritePlan | OpResult:
    return await _status_change(ctx, args.adset_id, "ACTIVE", "Resumed")


@ops.op(OpKind.WRITE, idempotent=True)
async def archive_adset(ctx: OpContext, args: ArchiveAdSetArgs) -> WritePlan | OpResult:
    return await _status_change(ctx, args.adset_id, "ARCHIVED", "Archived")


@ops.op(OpKind.WRITE, destructive=True, idempotent=True)
async def delete_adset(ctx: OpContext, args: DeleteAdSetArgs) -> WritePlan | OpResult:
    return await _status_change(ctx, args.adset_id, "DELETED", "Deleted")


# ---------------------------------------------------------------------------------------------------------------
# Schedule and day parting
# ---------------------------------------------------------------------------------------------------------------


class SetScheduleArgs(OpArgs):
    """Set when an ad set runs: start/end times and day parting (hours of the week; needs a lifetime budget).

    day_parting blocks are whole hours, e.g. [{"days": ["mon","tue","wed","thu","fri"], "start": "09:00", "end": "17:00"}];
    null clears day parting. timezone "account" uses the ad account's time zone, "viewer" each viewer's own.
    """

    adset_id: str = AdSetIdArg
    start_time: datetime | None = Field(None, description=f"New start. {TIME_NOTE}")
    end_time: datetime | None = Field(None, description=f"New end (after the start, in the future). {TIME_NOTE}")
    day_parting: list[DayPartingBlock] | None = Field(None, description="Hours to run in: [{days: [\"mon\"..\"sun\"] or 0-6 (0 = Sunday), start: \"09:00\", end: \"17:00\"}]; null clears day parting; omitted leaves it as it is.")
    timezone: Literal["viewer", "account"] = Field("viewer", description="Day parting in each viewer's time zone (viewer) or the ad account's time zone (account).")


# SPEND: a later end_time lets a daily budget keep spending.
@ops.op(OpKind.SPEND, example={"adset_id": "120210000000000101", "timezone": "account",
                               "day_parting": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]})
async def set_schedule(ctx: OpContext, args: SetScheduleArgs) -> WritePlan | OpResult:
    given = args.model_fields_set - {"adset_id", "timezone"}
    if not given:
        raise ValidationError("Nothing to schedule", fix="Pass start_time, end_time, or day_parting (null clears it)", blame_field="day_parting")
    adset = await _read_adset(ctx, args.adset_id)
    account = await _account_of(ctx, adset)
    _check_editable(adset, {"schedule": True})
    has_lifetime = _has(adset.get("lifetime_budget"))
    updates: dict[str, Any] = {}
    if "day_parting" in given:
        if args.day_parting is None:
            if adset.get("adset_schedule"):
                updates["adset_schedule"] = []
                updates["pacing_type"] = ["standard"]
        else:
            check_day_parting_budget(has_lifetime)
            updates["adset_schedule"] = day_parting_schedule(args.day_parting, args.timezone)
            updates["pacing_type"] = ["day_parting"]
    start = local_time(args.start_time, account) if args.start_time else parse_graph_time(adset.get("start_time"))
    end = local_time(args.end_time, account) if args.end_time else parse_graph_time(adset.get("end_time"))
    if args.start_time or args.end_time:
        check_times(start, end, has_lifetime)
        if has_lifetime:
            check_min_budget("lifetime_budget", int(adset["lifetime_budget"]), account, start, end)
    if args.start_time:
        updates["start_time"] = _graph_time(start)
    if args.end_time:
        updates["end_time"] = _graph_time(end)
    future = {**adset, **updates}
    words = schedule_text(future, account) if future.get("adset_schedule") or start or end else "runs all day, every day"
    if "adset_schedule" in updates and not updates["adset_schedule"]:
        words += "; day parting cleared (runs all day)"
    return adset_plan(ctx, adset, account, updates, "Scheduled", extra=f" Now: {words}.")


# ---------------------------------------------------------------------------------------------------------------
# Duplicate
# ---------------------------------------------------------------------------------------------------------------


class DuplicateAdSetArgs(OpArgs):
    """Copy an ad set (optionally with its ads, optionally into another campaign) through Facebook's /copies; PAUSED by default."""

    adset_id: str = AdSetIdArg
    campaign_id: str | None = Field(None, description="Put the copy in this campaign (default: the same campaign).")
    deep_copy: bool = Field(False, description="Also copy the ad set's ads.")
    status_option: StatusOption = Field("PAUSED", description="Status of the copy: PAUSED (default), ACTIVE (needs confirmation) or INHERITED_FROM_SOURCE.")
    rename_suffix: str = Field(" - Copy", max_length=100, description="Text appended to the copy's name.")


@ops.op(OpKind.SPEND)
async def duplicate_adset(ctx: OpContext, args: DuplicateAdSetArgs) -> WritePlan:
    source = await _read_adset(ctx, args.adset_id)
    account = await _account_of(ctx, source)
    if source.get("status") == "DELETED":
        raise ValidationError(f"Ad set {source['id']} is deleted and cannot be copied", fix="Pick an ad set that exists")
    body: dict[str, Any] = {"deep_copy": args.deep_copy, "status_option": args.status_option,
                            "rename_options": {"rename_suffix": args.rename_suffix,
                                               "rename_strategy": "DEEP_RENAME" if args.deep_copy else "ONLY_TOP_LEVEL_RENAME"}}
    target = ""
    if args.campaign_id and args.campaign_id != source.get("campaign_id"):
        campaign = await _read_campaign(ctx, args.campaign_id)
        if campaign.get("account_id") and source.get("account_id") and str(campaign["account_id"]) != str(source["account_id"]):
            raise ValidationError(f"Campaign {campaign['id']} is in another ad account than ad set {source['id']}",
                                  fix="Copy into a campaign of the same ad account", blame_field="campaign_id")
        own_budget = _has(source.get("daily_budget")) or _has(source.get("lifetime_budget"))
        if campaign_has_budget(campaign) == own_budget:
            why = ("has a campaign budget and the ad set has its own" if own_budget
                   else "has no campaign budget and the ad set has none of its own")
            raise _rule_error(f"Campaign {campaign.get('name')} ({campaign['id']}) {why}",
                              "Copy into a campaign whose budget setup matches (campaign budget or ad set budgets)",
                              "daily_budget" if own_budget or not campaign_has_budget(campaign) else "campaign_id", 100, 1885621)
        body["campaign_id"] = campaign["id"]
        target = f" in campaign {campaign.get('name')} ({campaign['id']})"
    status = source.get("status") if args.status_option == "INHERITED_FROM_SOURCE" else args.status_option
    new_name = f"{source.get('name', '')}{args.rename_suffix}"

    async def execute() -> OpResult:
        copied = await ctx.graph.post(f"{source['id']}/copies", body)
        new_id = copied.get("copied_adset_id") or copied.get("id")
        return OpResult(text=f"Copied ad set {source.get('name')} ({source['id']}) to {new_name} ({new_id}){target}, {status}"
                             + (" with its ads." if args.deep_copy else "."),
                        data={"adset_id": new_id, "copied_adset_id": new_id, "source_adset_id": source["id"],
                              "campaign_id": body.get("campaign_id", source.get("campaign_id")), "status": status,
                              "ad_object_ids": copied.get("ad_object_ids", [])})

    changes = [Change(None, "adset", new_name, "status", None, status)]
    return WritePlan(summary=f"copy ad set {source.get('name')} ({source['id']}) as {new_name}{target} ({status})",
                     ad_account_id=account.id, requests=[GraphRequest("POST", f"{source['id']}/copies", body)],
                     changes=changes, execute=execute, currency=account.currency)

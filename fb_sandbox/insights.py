"""Ads Insights: `GET|POST /{object}/insights` and async report runs (docs/insights_contract.md).

A request is parsed once into a frozen `Query` (every parameter checked, errors blame it), then `compute` reads
delivery rows in two passes (`delivery.iter_day_totals` without breakdowns, `iter_rows` with): rows are summed
per (object, day, breakdown cells) by C-level getters, then folded into the time buckets. Reach is not additive:
each row's reach is `delivery.object_reach` of its object over its bucket (computed for all rows at once by one
grouped query, see `_people`), split over breakdown cells in proportion to their per-day reach. Async runs
keep their computed `Result` in memory per sandbox, so paging a 90 000-row report never aggregates twice.
"""

from __future__ import annotations

import calendar
import json
import re
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from operator import add, attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from . import breakdowns as bd
from . import delivery
from .context import Ctx
from .errors import GraphError, param_error
from .fields import known_fields, parse_fields, select
from .money import CURRENCIES
from .paging import OPERATORS, _page_url, decode_cursor, encode_cursor
from .paging import _test as filter_passes
from .params import Params, to_bool, to_int
from .state import Sandbox
from .store import Obj

LEVELS = ("account", "campaign", "adset", "ad")
LEVEL_OF_TYPE = {"adaccount": "account", "campaign": "campaign", "adset": "adset", "ad": "ad"}
LEVEL_ATTR = {"account": "account_id", "campaign": "campaign_id", "adset": "adset_id", "ad": "ad_id"}
BREAKDOWNS = bd.BREAKDOWNS  # Meta's spec (the SDK's AdsInsights.Breakdowns), see breakdowns.py
ACTION_BREAKDOWNS = bd.ACTION_BREAKDOWNS
PRESETS = (
    "today",
    "yesterday",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "maximum",
    "data_maximum",
    "last_3d",
    "last_7d",
    "last_14d",
    "last_28d",
    "last_30d",
    "last_90d",
    "last_week_mon_sun",
    "last_week_sun_sat",
    "this_week_mon_today",
    "this_week_sun_today",
    "this_year",
    "last_year",
)
MAX_SYNC_ROWS = 10_000
MAX_PAGE = 5_000
MAX_MONTHS_BACK = 37
ROWS_PER_SECOND = 5_000  # async runs take max(2, rows / ROWS_PER_SECOND) simulated seconds
MIN_RUN_SECONDS = 2.0
RUN_STATUSES = ("Job Not Started", "Job Started", "Job Running", "Job Completed", "Job Failed")
FIELDS_URL = "https://developers.facebook.com/docs/marketing-api/reference/ads-insights/"
RUN_DEFAULT_FIELDS = [
    "id",
    "account_id",
    "time_ref",
    "time_completed",
    "async_status",
    "async_percent_completion",
    "date_start",
    "date_stop",
]

# Delivery metrics summed per (object, day, cells); the last two are per cell and only additive within a day.
METRICS = (
    "impressions",
    "clicks",
    "link_clicks",
    "spend",
    "landing_page_views",
    "post_engagements",
    "video_views",
    "leads",
    "add_to_cart",
    "initiate_checkout",
    "purchases",
    "purchase_value",
    "reach",
    "unique_clicks",
)
IMP, CLK, LINK, SPEND, LPV, ENG, VID, LEAD, ATC, IC, PUR, PVAL, REACH, UCLK = range(len(METRICS))
ACTION_TYPES = (
    ("link_click", LINK),
    ("landing_page_view", LPV),
    ("post_engagement", ENG),
    ("video_view", VID),
    ("lead", LEAD),
    ("add_to_cart", ATC),
    ("initiate_checkout", IC),
    ("purchase", PUR),
    ("offsite_conversion.fb_pixel_purchase", PUR),
)
VALUE_TYPES = (("purchase", PVAL), ("offsite_conversion.fb_pixel_purchase", PVAL))
CONVERSION_TYPES = (("lead", LEAD), ("add_to_cart", ATC), ("initiate_checkout", IC), ("purchase", PUR))
# action_destination has no delivery column: the sandbox names where each action type happens.
ACTION_DESTINATIONS = bd.ACTION_DESTINATIONS
# A split metric follows its parent's split (chained cumulative rounding: exact sums, child <= parent per cell).
SPLIT_CHAIN = (
    (CLK, IMP),
    (SPEND, IMP),
    (ENG, IMP),
    (VID, IMP),
    (REACH, IMP),
    (LINK, CLK),
    (LEAD, CLK),
    (UCLK, CLK),
    (LPV, LINK),
    (ATC, LPV),
    (IC, ATC),
    (PUR, IC),
    (PVAL, PUR),
)
SPLIT_SCALE = 1_000_000
ID_FILTERS = ("campaign", "adset", "ad")
OBJECT_FILTER_FIELDS = ("id", "name", "effective_status")


# ---- the parsed request


@dataclass(frozen=True)
class Filter:
    field: str
    operator: str
    value: Any


@dataclass(frozen=True)
class Query:
    account: Obj
    node_type: str  # adaccount | campaign | adset | ad
    node_id: str
    level: str
    fields: tuple[str, ...]
    breakdowns: tuple[str, ...]
    action_breakdowns: tuple[str, ...]
    buckets: tuple[tuple[date, date], ...]
    since: date
    until: date
    object_filters: tuple[Filter, ...]
    row_filters: tuple[Filter, ...]
    sorts: tuple[tuple[str, bool], ...]  # (field, descending)
    summary: tuple[str, ...] | None
    today: date  # the account's today: buckets stop there, delivery is simulated up to it
    windows: tuple[str, ...] = ()  # action_attribution_windows

    @cached_property
    def currency(self) -> str:
        return self.account.get("currency", "USD")

    @cached_property
    def minor(self) -> int:
        return 10 ** CURRENCIES.get(self.currency, ("", 2))[1]


def _error(message: str, blame: str) -> GraphError:
    return param_error(message, field=blame)


def _listish(p: Params, name: str) -> list:
    try:
        value = p.list(name, [])
    except GraphError:
        raise _error(f"Param {name} must be an array of strings.", name) from None
    if not all(isinstance(v, str) for v in value):
        raise _error(f"Param {name} must be an array of strings.", name)
    return [v.strip() for v in value]


def insight_fields() -> frozenset[str]:
    return known_fields("AdsInsights")


def parse_query(sb: Sandbox, account: Obj, node: Obj, p: Params) -> Query:
    """Check every insights parameter the way Facebook does; the first problem is a code 100 blaming it."""
    node_type = node.type
    level = _level(p, node_type)
    fields = _fields(p, level)
    breakdowns = _breakdowns(p)
    _combination(breakdowns, _listish(p, "action_breakdowns"), fields, level)
    action_breakdowns = _action_breakdowns(p)
    windows = _windows(p)
    today = delivery.account_today(sb, account["id"])
    since, until, buckets = _time(p, account, today)
    object_filters, row_filters = _filtering(p, breakdowns)
    sorts = _sorts(p, breakdowns)
    summary = _summary(p, fields)
    return Query(
        account,
        node_type,
        node["id"],
        level,
        tuple(fields),
        tuple(breakdowns),
        tuple(action_breakdowns),
        tuple(buckets),
        since,
        until,
        tuple(object_filters),
        tuple(row_filters),
        tuple(sorts),
        summary,
        today,
        tuple(windows),
    )


def _level(p: Params, node_type: str) -> str:
    own = LEVEL_OF_TYPE[node_type]
    level = p.str("level", own)
    if level not in LEVELS:
        raise _error(f"level must be one of the following values: {', '.join(LEVELS)}", "level")
    if LEVELS.index(level) < LEVELS.index(own):
        raise _error(f"level {level} is above the {own} being read: use level {own} or below", "level")
    return level


def _fields(p: Params, level: str) -> Sequence[str]:
    value = p.get("fields")
    if isinstance(value, str) and value.strip().startswith("["):
        value = p.json("fields")
    if isinstance(value, str) and value.strip().startswith("{"):
        value = None if value.strip() == "{}" else {}
    if not (
        value is None or isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    ):
        raise _error("Param fields must be a comma-separated list of field names.", "fields")
    names = parse_fields(value)
    allowed = insight_fields()
    for name in names:
        if name not in allowed:
            raise _error(
                f"{name} is not valid for fields param. please check {FIELDS_URL} for all valid values", "fields"
            )
    return names or [f"{level}_id" if level != "account" else "account_id", "impressions", "spend"]


def _breakdowns(p: Params) -> list[str]:
    names = _listish(p, "breakdowns")
    for i, name in enumerate(names):
        if name not in BREAKDOWNS:
            raise _error(
                f"breakdowns[{i}] must be one of the following values: {', '.join(BREAKDOWNS)} (got '{name}')",
                "breakdowns",
            )
    return list(dict.fromkeys(names))


def _combination(breakdowns: list[str], action_breakdowns: list[str], fields: Sequence[str], level: str) -> None:
    """Meta's documented combination rules (breakdowns.py): columns the permutation table only combines otherwise
    -> 100 (the message other clients quote; unverified text); metrics with no data for these breakdowns ->
    2/1504041 "Invalid Breakdowns" (ERROR_CODES_DOC)."""
    if bd.combination(breakdowns, action_breakdowns) == "invalid":
        cols = ",".join(sorted({*(action_breakdowns or ["action_type"]), *breakdowns}))
        raise _error(f"Current combination of data breakdown columns ({cols}) is invalid ", "breakdowns")
    conflict = bd.field_conflict(fields, breakdowns, level)
    if conflict:
        raise GraphError(
            f"Invalid Breakdowns: {conflict}. No data is available for the requested metrics and "
            "breakdowns. Try different metrics or breakdowns.",
            2,
            subcode=1504041,
            user_title="Invalid Breakdowns",
            user_msg="No data is available for the requested metrics and breakdowns. Try different "
            "metrics or breakdowns. See Breakdowns.",
        )


def _windows(p: Params) -> list[str]:
    names = _listish(p, "action_attribution_windows")
    for i, name in enumerate(names):
        if name not in bd.ATTRIBUTION_WINDOWS:
            raise _error(
                f"action_attribution_windows[{i}] must be one of the following values: "
                f"{', '.join(bd.ATTRIBUTION_WINDOWS)} (got '{name}')",
                "action_attribution_windows",
            )
    return list(dict.fromkeys(names))


def _action_breakdowns(p: Params) -> list[str]:
    names = _listish(p, "action_breakdowns") or ["action_type"]
    for i, name in enumerate(names):
        if name not in ACTION_BREAKDOWNS:
            raise _error(
                f"action_breakdowns[{i}] must be one of the following values: "
                f"{', '.join(ACTION_BREAKDOWNS)} (got '{name}')",
                "action_breakdowns",
            )
    return list(dict.fromkeys(names))


# ---- dates


def _months_back(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def preset_range(preset: str, today: date, first_day: date) -> tuple[date, date]:
    """A date_preset's (since, until) in the account's days; last_Nd ends yesterday, this_* include today."""
    one = timedelta(days=1)
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return today - one, today - one
    if match := re.fullmatch(r"last_(\d+)d", preset):
        return today - int(match.group(1)) * one, today - one
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        end = today.replace(day=1) - one
        return end.replace(day=1), end
    if preset == "this_quarter":
        return _quarter_start(today), today
    if preset == "last_quarter":
        end = _quarter_start(today) - one
        return _quarter_start(end), end
    if preset == "this_year":
        return date(today.year, 1, 1), today
    if preset == "last_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    if preset == "this_week_mon_today":
        return today - today.weekday() * one, today
    if preset == "this_week_sun_today":
        return today - ((today.weekday() + 1) % 7) * one, today
    if preset == "last_week_mon_sun":
        start = today - (today.weekday() + 7) * one
        return start, start + 6 * one
    if preset == "last_week_sun_sat":
        start = today - ((today.weekday() + 1) % 7 + 7) * one
        return start, start + 6 * one
    return max(first_day, _months_back(today, MAX_MONTHS_BACK)), today  # maximum, data_maximum


def _day(value: Any, name: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise _error(f"Param {name} must be a date in YYYY-MM-DD format (got {value!r})", name.split("[")[0])
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise _error(f"Param {name} is not a valid date: {value}", name.split("[")[0]) from None


def _one_range(value: Any, name: str, today: date) -> tuple[date, date]:
    if isinstance(value, str):
        try:
            value = Params({"v": value}).obj("v")
        except GraphError:
            value = None
    if not isinstance(value, dict) or "since" not in value or "until" not in value:
        raise _error(
            f"Param {name} must be a JSON object with since and until dates, "
            'e.g. {"since":"2024-01-01","until":"2024-01-31"}',
            name.split("[")[0],
        )
    since, until = _day(value["since"], f"{name}[since]"), _day(value["until"], f"{name}[until]")
    if since > until:
        raise _error(f"Param {name}: since ({since}) must be on or before until ({until})", name.split("[")[0])
    if since < _months_back(today, MAX_MONTHS_BACK):
        raise _error(
            f"The start date of the time range cannot be beyond {MAX_MONTHS_BACK} months from the current date",
            name.split("[")[0],
        )
    return since, until


def _time(p: Params, account: Obj, today: date) -> tuple[date, date, list[tuple[date, date]]]:
    first_day = datetime.fromtimestamp(account.created, ZoneInfo(account.get("timezone_name", "UTC"))).date()
    if "time_ranges" in p:
        raw = p.json("time_ranges")
        if not isinstance(raw, list) or not raw or len(raw) > 37:
            raise _error("Param time_ranges must be an array of 1 to 37 {since, until} objects", "time_ranges")
        ranges = [_one_range(r, f"time_ranges[{i}]", today) for i, r in enumerate(raw)]
        return min(r[0] for r in ranges), max(r[1] for r in ranges), ranges
    if "time_range" in p:
        since, until = _one_range(p.get("time_range"), "time_range", today)
    else:
        preset = p.str("date_preset", "last_30d")
        if preset not in PRESETS:
            raise _error(f"date_preset must be one of the following values: {', '.join(PRESETS)}", "date_preset")
        since, until = preset_range(preset, today, first_day)
    return since, until, _buckets(p, since, min(until, today))


def _buckets(p: Params, since: date, until: date) -> list[tuple[date, date]]:
    raw = p.get("time_increment", "all_days")
    text = str(raw).strip().lower() if not isinstance(raw, (dict, list, bool)) else None
    if text == "all_days":
        return [(since, until)]
    if since > until:  # the whole range is in the future: no bucket can hold data
        return []
    if text == "monthly":
        out, start = [], since
        while start <= until:
            end = min(until, start.replace(day=calendar.monthrange(start.year, start.month)[1]))
            out.append((start, end))
            start = end + timedelta(days=1)
        return out
    step = to_int(raw) if text is not None else None
    if step is None or not 1 <= step <= 90:
        raise _error(
            "time_increment must be all_days, monthly, or an integer number of days from 1 to 90", "time_increment"
        )
    out, start = [], since
    while start <= until:
        end = min(until, start + timedelta(days=step - 1))
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


# ---- filtering, sorting, summary


def _filtering(p: Params, breakdowns: list[str]) -> tuple[list[Filter], list[Filter]]:
    raw = p.json("filtering", [])
    if not isinstance(raw, list):
        raise _error("Param filtering must be an array of {field, operator, value} objects", "filtering")
    object_filters, row_filters = [], []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict) or not isinstance(spec.get("field"), str) or "value" not in spec:
            raise _error(f"filtering[{i}] must be an object with field, operator and value", "filtering")
        name, op = spec["field"], spec.get("operator")
        if op not in OPERATORS:
            raise _error(f"filtering[{i}][operator] must be one of {{{', '.join(sorted(OPERATORS))}}}", "filtering")
        target, _, attribute = name.partition(".")
        if target in ID_FILTERS and attribute in OBJECT_FILTER_FIELDS:
            object_filters.append(Filter(name, op, spec["value"]))
        elif name in NUMERIC or name in breakdowns:
            row_filters.append(Filter(name, op, spec["value"]))
        else:
            raise _error(f"Filtering field {name} is invalid", "filtering")
    return object_filters, row_filters


def _sorts(p: Params, breakdowns: list[str]) -> list[tuple[str, bool]]:
    out = []
    for i, spec in enumerate(_listish(p, "sort")):
        match = re.fullmatch(r"(.+)_(ascending|descending)", spec)
        name = match.group(1) if match else None
        if match is None or name is None or not (name in NUMERIC or name in TEXT or name in breakdowns):
            raise _error(
                f"sort[{i}] must be <field>_ascending or <field>_descending with a sortable field (got '{spec}')",
                "sort",
            )
        out.append((name, match.group(2) == "descending"))
    return out


def _summary(p: Params, fields: Sequence[str]) -> tuple[str, ...] | None:
    default = p.bool("default_summary", False)
    raw = p.get("summary")
    flag = to_bool(raw) if not isinstance(raw, (list, dict)) else None
    if raw is None or raw == "" or flag is False:
        return tuple(fields) if default else None
    if flag is True:
        return tuple(fields)
    names = _listish(p, "summary")
    allowed = insight_fields()
    for name in names:
        if name not in allowed:
            raise _error(
                f"{name} is not valid for summary param. please check {FIELDS_URL} for all valid values", "summary"
            )
    return tuple(names)


# ---- aggregation


@dataclass(slots=True)
class Group:
    """One answer row: an object × time bucket × breakdown cell. `sums` follows METRICS; its reach and
    unique_clicks are per-day sums (not people), the de-duplicated figures are `reach` / `unique_clicks`."""

    obj_id: str
    bucket: int
    cells: tuple
    sums: list
    devices: dict | None = None  # impression_device (or (ad, device)) -> sums, for actions
    ads: Any = None  # _Ads, when action breakdowns need each ad's context
    reach: int = 0
    unique_clicks: int = 0
    context: tuple | None = None  # (campaign, adset, ad) objects, set when rendered


@dataclass
class Result:
    query: Query
    rows: list[Group]
    total: Group
    objects: dict[str, Obj]
    computed_at: float


def _device_platform(device: str) -> str:
    return "desktop" if device == "desktop" else "mobile_app"


def _object_scope(sb: Sandbox, q: Query) -> tuple[dict[str, Obj], dict[str, set[str] | None]]:
    """The account's campaigns, ad sets and ads by id, and the id sets the node and object filters allow."""
    act = q.account["id"]
    objects: dict[str, Obj] = {}
    by_type: dict[str, list[Obj]] = {}
    for kind in ID_FILTERS:
        by_type[kind] = sb.store.list(kind, account_id=act)
        objects.update((o["id"], o) for o in by_type[kind])
    scope: dict[str, set[str] | None] = {"campaign": None, "adset": None, "ad": None}
    if q.node_type != "adaccount":
        scope[q.node_type] = {q.node_id}
    now = sb.now()
    for flt in q.object_filters:
        kind, _, attribute = flt.field.partition(".")
        allowed = {
            o["id"]
            for o in by_type[kind]
            if filter_passes(flt.operator, _object_value(o, attribute, objects, now), flt.value)
        }
        current = scope[kind]
        scope[kind] = allowed if current is None else current & allowed
    return objects, scope


def _object_value(obj: Obj, attribute: str, objects: dict[str, Obj], now: float) -> Any:
    if attribute != "effective_status":
        return obj.get(attribute)
    from . import ads, adsets, campaigns

    if obj.type == "campaign":
        return campaigns.effective_status(obj)
    campaign = objects.get(obj.get("campaign_id", ""))
    if obj.type == "adset":
        return adsets.effective_status(obj, campaign)
    return ads.effective_status(obj, objects.get(obj.get("adset_id", "")), campaign, now)


def _scope_ids(scope: dict[str, set[str] | None]) -> dict[str, list[str] | None]:
    return {f"{kind}_ids": sorted(ids) if ids is not None else None for kind, ids in scope.items()}


def compute(sb: Sandbox, q: Query) -> Result:
    """Aggregate delivery rows for the query: filtered, sorted, with totals."""
    objects, scope = _object_scope(sb, q)
    act = q.account["id"]
    last = min(q.until, q.today)
    delivery.ensure_simulated(sb, act, last)
    groups: dict[tuple, Group] = _aggregate(sb, q, scope) if q.buckets and q.since <= last else {}
    rows = [g for g in groups.values() if all(_passes(g, q, f) for f in q.row_filters)]
    rows.sort(key=lambda g: (g.bucket, _id_order(g.obj_id), g.cells))
    for name, descending in reversed(q.sorts):
        keyed = [(_sort_value(g, q, name, objects), g) for g in rows]
        present = [(k, g) for k, g in keyed if k is not None]
        present.sort(key=lambda kg: kg[0], reverse=descending)
        rows = [g for _, g in present] + [g for k, g in keyed if k is None]
    total = _total(rows, 0)
    everything = _total(groups.values(), 0) if len(rows) < len(groups) else total
    if groups:
        # The summary's people: the whole scope's de-duplicated reach, in proportion when filters dropped rows.
        people = _scope_people(sb, q, scope, last)
        total.reach = _share(people[0], total.sums[REACH], everything.sums[REACH])
        total.unique_clicks = min(_share(people[1], total.sums[UCLK], everything.sums[UCLK]), total.reach)
    return Result(q, rows, total, objects, sb.now())


def _scope_people(sb: Sandbox, q: Query, scope: dict[str, set[str] | None], last: date) -> tuple[int, ...]:
    sql, args = delivery._where(q.account["id"], q.since, last, **_scope_ids(scope))
    rows = sb.store.db.execute(
        f"SELECT adset_id, SUM(reach), SUM(unique_clicks), MAX(audience) FROM delivery_days{sql} GROUP BY adset_id",
        args,
    ).fetchall()
    by_adset = {a: [int(r or 0), int(u or 0)] for a, r, u, _ in rows}
    return _people(by_adset, {(a, 0): int(size or 1) for a, _, _, size in rows}, 0)


def _share(value: int, part: int, whole: int) -> int:
    return value if part == whole else (round(value * part / whole) if whole else 0)


def _id_order(obj_id: str) -> tuple:
    digits = obj_id.removeprefix("act_")
    return (len(digits), digits)


def _aggregate(sb: Sandbox, q: Query, scope: dict[str, set[str] | None]) -> dict[tuple, Group]:
    if _needs_ads(q):
        return _aggregate_split(sb, q, scope)
    raw_cells = [("impression_device" if b == "device_platform" else b) for b in q.breakdowns]
    device_index = None
    if "action_device" in q.action_breakdowns:
        if "impression_device" not in raw_cells:
            raw_cells.append("impression_device")
        device_index = 3 + raw_cells.index("impression_device")
    visible = len(q.breakdowns)
    bucket_of = _bucket_index(q.buckets, q.today)
    if not raw_cells:
        return _aggregate_objects(sb, q, scope, bucket_of)
    daily = _cell_days(sb, q, scope, raw_cells)
    platform_index = [i for i, b in enumerate(q.breakdowns) if b == "device_platform"]

    def entries():
        for key, sums in daily.items():
            cells = key[3 : 3 + visible]
            if platform_index:
                cells = tuple(_device_platform(c) if i in platform_index else c for i, c in enumerate(cells))
            yield key[0], key[1], key[2], cells, key[device_index] if device_index is not None else None, None, sums

    return _fold(sb, q, scope, bucket_of, entries(), device_index is not None, False)


def _needs_ads(q: Query) -> bool:
    """Breakdowns the delivery template does not hold, or action breakdowns whose values come from each ad (its
    creative, page, pixel): rows are then split per ad-day (breakdowns.py)."""
    return any(b not in bd.TEMPLATE and b != "device_platform" for b in q.breakdowns) or _per_ad_actions(q)


def _per_ad_actions(q: Query) -> bool:
    return any(a not in ("action_type", "action_device", "action_destination") for a in q.action_breakdowns)


def _fold(
    sb: Sandbox,
    q: Query,
    scope: dict[str, set[str] | None],
    bucket_of: dict,
    entries: Iterable[tuple],
    by_device: bool,
    by_ad: bool,
) -> dict[tuple, Group]:
    """(object, ad set, day, cells, device, ad, sums) entries folded into groups per (object, bucket, cells)."""
    audience = _audiences(sb, q, scope, bucket_of)
    groups: dict[tuple, Group] = {}
    people: dict[tuple, dict[str, list[int]]] = {}  # (object, bucket) -> ad set -> [Σ reach, Σ unique clicks]
    for obj_id, adset_id, day, cells, device, ad_id, sums in entries:
        for bucket in bucket_of.get(day, ()):
            gkey = (obj_id, bucket, cells)
            group = groups.get(gkey)
            if group is None:
                group = groups[gkey] = Group(
                    obj_id, bucket, cells, list(sums), devices={} if by_device or by_ad else None
                )
            else:
                group.sums[:] = map(add, group.sums, sums)
            if group.devices is not None:  # by device or by ad
                source = (ad_id, device) if by_ad else device
                per = group.devices.get(source)
                if per is None:
                    group.devices[source] = list(sums)
                else:
                    per[:] = map(add, per, sums)
            by_adset = people.get((obj_id, bucket))
            if by_adset is None:
                people[(obj_id, bucket)] = {adset_id: [sums[REACH], sums[UCLK]]}
            elif adset_id in by_adset:
                slot = by_adset[adset_id]
                slot[0] += sums[REACH]
                slot[1] += sums[UCLK]
            else:
                by_adset[adset_id] = [sums[REACH], sums[UCLK]]
    _set_people(groups, people, audience)
    return groups


def split_sums(sums: list, weights: list[float]) -> list[list[int]]:
    """One cell's METRICS split over weights by chained cumulative rounding: every metric sums exactly to the cell's,
    and a child metric follows its parent's split (SPLIT_CHAIN)."""
    total = sum(weights) or 1.0
    cum, acc = [0], 0.0
    for w in weights:
        acc += w
        cum.append(int(round(acc / total * SPLIT_SCALE)))
    cum[-1] = SPLIT_SCALE
    bounds: list = [None] * len(METRICS)
    bounds[IMP] = [sums[IMP] * c // SPLIT_SCALE for c in cum]
    for child, parent in SPLIT_CHAIN:
        x, whole = sums[child], sums[parent]
        bounds[child] = [x * b // whole for b in bounds[parent]] if whole else [x * c // SPLIT_SCALE for c in cum]
    return [[b[k + 1] - b[k] for b in bounds] for k in range(len(weights))]


def split_count(amount: int, weights: list[float]) -> list[int]:
    """An integer amount over weights by cumulative rounding (exact sum)."""
    total = sum(weights) or 1.0
    out, acc, prev = [], 0.0, 0
    for w in weights:
        acc += w
        point = int(round(acc / total * amount))
        out.append(point - prev)
        prev = point
    out[-1] += amount - prev
    return out


_NO_AD = bd.AdContext(None, "", 0)


class _Ads:
    """Per-ad breakdown contexts (creative, page, pixel), loaded once per computation."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb, self.seed = sb, delivery.get_seed(sb)
        self.cache: dict[str, bd.AdContext] = {}

    def __call__(self, ad_id: str) -> bd.AdContext:
        ctx = self.cache.get(ad_id)
        if ctx is None:
            ctx = self.cache[ad_id] = bd.AdContext(self.sb.store, ad_id, self.seed)
        return ctx


def _aggregate_split(sb: Sandbox, q: Query, scope: dict[str, set[str] | None]) -> dict[tuple, Group]:
    """Per ad-day rows of the template breakdowns asked, each split over the breakdowns the template does not hold
    (breakdowns.split_values), then folded like the template path; per-ad action sources kept for rendering."""
    template = [
        b
        for b in bd.TEMPLATE
        if b in q.breakdowns
        or (b == "impression_device" and ("device_platform" in q.breakdowns or "action_device" in q.action_breakdowns))
        or (b == "country" and any(x in q.breakdowns for x in ("region", "dma", "comscore_market")))
    ]
    extras = [b for b in q.breakdowns if b not in bd.TEMPLATE and b != "device_platform"]
    by_device = "action_device" in q.action_breakdowns
    by_ad = _per_ad_actions(q)
    ads = _Ads(sb)
    level_attr = LEVEL_ATTR[q.level]
    values_of = attrgetter(*METRICS)
    bucket_of = _bucket_index(q.buckets, q.today)

    def entries():
        for row in delivery.iter_rows(
            sb, q.account["id"], q.since, min(q.until, q.today), breakdowns=template, **_scope_ids(scope)
        ):
            sums = list(values_of(row))
            cells = {b: getattr(row, b) for b in template}
            pieces = [({}, sums)]
            for name in extras:
                ad = ads(row.ad_id)
                out = []
                for labels, part in pieces:
                    if not any(part):
                        continue
                    pairs = bd.split_values(name, ad, cells, part[IMP] / part[REACH] if part[REACH] else 1.0)
                    for (label, _), piece in zip(pairs, split_sums(part, [w for _, w in pairs])):
                        if any(piece):
                            out.append(({**labels, name: label}, piece))
                pieces = out
            for labels, piece in pieces:
                shown = tuple(
                    _device_platform(cells["impression_device"])
                    if b == "device_platform"
                    else cells[b]
                    if b in cells
                    else labels[b]
                    for b in q.breakdowns
                )
                yield (
                    getattr(row, level_attr),
                    row.adset_id,
                    row.day,
                    shown,
                    cells.get("impression_device") if by_device else None,
                    row.ad_id if by_ad else None,
                    piece,
                )

    groups = _fold(sb, q, scope, bucket_of, entries(), by_device, by_ad)
    for group in groups.values():
        group.ads = ads
    return groups


def _set_people(
    groups: dict[tuple, Group], people: dict[tuple, dict[str, list[int]]], audience: dict[tuple[str, int], int]
) -> None:
    dedup = {key: _people(by_adset, audience, key[1]) for key, by_adset in people.items()}
    for group in groups.values():
        reach, unique, reach_days, unique_days = dedup[(group.obj_id, group.bucket)]
        group.reach = min(_share(reach, group.sums[REACH], reach_days), group.sums[IMP])
        group.unique_clicks = min(_share(unique, group.sums[UCLK], unique_days), group.reach, group.sums[CLK])


def _cell_days(sb: Sandbox, q: Query, scope: dict[str, set[str] | None], raw_cells: list[str]) -> dict[tuple, list]:
    """(object, ad set, day, *cells) -> METRICS sums, from delivery.iter_rows (breakdowns asked)."""
    key_of = attrgetter(LEVEL_ATTR[q.level], "adset_id", "day", *raw_cells)
    values_of = attrgetter(*METRICS)
    daily: dict[tuple, list] = {}
    get = daily.get
    for row in delivery.iter_rows(
        sb, q.account["id"], q.since, min(q.until, q.today), breakdowns=raw_cells, **_scope_ids(scope)
    ):
        key = key_of(row)  # hot loop: one dict probe and one C-level map per row
        acc = get(key)
        if acc is None:
            daily[key] = list(values_of(row))
        else:
            acc[:] = map(add, acc, values_of(row))
    return daily


def _aggregate_objects(sb: Sandbox, q: Query, scope: dict[str, set[str] | None], bucket_of: dict) -> dict[tuple, Group]:
    """Without breakdowns: the ad-day totals delivery stores (what delivery.iter_day_totals yields), summed by
    SQLite per (object, ad set, day) and folded into buckets, with each (ad set, bucket)'s audience, in one pass."""
    column = LEVEL_ATTR[q.level]
    sql, args = delivery._where(q.account["id"], q.since, min(q.until, q.today), **_scope_ids(scope))
    if column == "ad_id":  # one stored row per ad-day already: nothing for SQLite to group
        select = f"SELECT ad_id, adset_id, day, audience, {', '.join(METRICS)} FROM delivery_days{sql}"
    else:
        select = (
            f"SELECT {column}, adset_id, day, MAX(audience), {', '.join(f'SUM({m})' for m in METRICS)} "
            f"FROM delivery_days{sql} GROUP BY {column}, adset_id, day"
        )
    groups: dict[tuple, Group] = {}
    people: dict[tuple, dict[str, list[int]]] = {}
    audience: dict[tuple[str, int], int] = {}
    for obj_id, adset_id, day, size, *sums in sb.store.db.execute(select, args):
        for bucket in bucket_of.get(day, ()):
            gkey = (obj_id, bucket, ())
            group = groups.get(gkey)
            if group is None:
                groups[gkey] = Group(obj_id, bucket, (), sums)
            else:
                group.sums[:] = map(add, group.sums, sums)
            by_adset = people.get((obj_id, bucket))
            if by_adset is None:
                people[(obj_id, bucket)] = {adset_id: [sums[REACH], sums[UCLK]]}
            elif adset_id in by_adset:
                slot = by_adset[adset_id]
                slot[0] += sums[REACH]
                slot[1] += sums[UCLK]
            else:
                by_adset[adset_id] = [sums[REACH], sums[UCLK]]
            if audience.get((adset_id, bucket), 0) < (size or 1):
                audience[(adset_id, bucket)] = size or 1
    _set_people(groups, people, audience)
    return groups


def _audiences(sb: Sandbox, q: Query, scope: dict[str, set[str] | None], bucket_of: dict) -> dict[tuple[str, int], int]:
    """(ad set, bucket) -> the largest audience its ad-days had, as delivery.object_reach takes it."""
    sql, args = delivery._where(q.account["id"], q.since, min(q.until, q.today), **_scope_ids(scope))
    out: dict[tuple[str, int], int] = {}
    for adset_id, day, size in sb.store.db.execute(
        f"SELECT adset_id, day, MAX(audience) FROM delivery_days{sql} GROUP BY adset_id, day", args
    ):
        for bucket in bucket_of.get(day, ()):
            key = (adset_id, bucket)
            out[key] = max(out.get(key, 1), int(size or 1))
    return out


def _people(
    by_adset: dict[str, list[int]], audience: dict[tuple[str, int], int], bucket: int
) -> tuple[int, int, int, int]:
    """(reach, unique clicks, Σ daily reach, Σ daily unique clicks) of one object over one bucket.

    Exactly delivery.object_reach (a test pins the equality): per ad set dedup_reach(Σ daily reach, audience),
    ad sets combined over the sum of their audiences, never below the largest. Unique clicks the same way."""
    if len(by_adset) == 1:  # one ad set: no combining (the common, hot case)
        ((adset_id, (reach_days, unique_days)),) = by_adset.items()
        size = audience.get((adset_id, bucket), 1)
        return (
            delivery.dedup_reach(reach_days, size),
            delivery.dedup_reach(unique_days, size),
            reach_days,
            unique_days,
        )
    sizes = {adset_id: audience.get((adset_id, bucket), 1) for adset_id in by_adset}
    reach = _combine([(v[0], sizes[a]) for a, v in by_adset.items()])
    unique = _combine([(v[1], sizes[a]) for a, v in by_adset.items()])
    return reach, unique, sum(v[0] for v in by_adset.values()), sum(v[1] for v in by_adset.values())


def _combine(per_adset: list[tuple[int, int]]) -> int:
    reaches = [delivery.dedup_reach(total, size) for total, size in per_adset]
    if len(reaches) == 1:
        return reaches[0]
    return max(max(reaches), delivery.dedup_reach(sum(reaches), sum(size for _, size in per_adset)))


def _bucket_index(buckets: tuple[tuple[date, date], ...], today: date) -> dict[date | str, tuple[int, ...]]:
    out: dict[date | str, tuple[int, ...]] = {}
    for i, (start, end) in enumerate(buckets):
        day = start
        while day <= min(end, today):
            out[day] = out.get(day, ()) + (i,)
            out[day.isoformat()] = out[day]  # delivery's SQL rows carry ISO days
            day += timedelta(days=1)
    return out


def _total(rows: Iterable[Group], reach: int) -> Group:
    sums = [sum(column) for column in zip(*(g.sums for g in rows))] or [0] * len(METRICS)
    return Group("", -1, (), sums, reach=reach)


# ---- metric values (numbers for sort and filtering; strings when rendered)


def _ratio(a: float, b: float, scale: float = 1.0) -> float | None:
    return a / b * scale if b else None


def _spend(g: Group, q: Query) -> float:
    return g.sums[SPEND] / q.minor


NUMERIC: dict[str, Callable[[Group, Query], float | int | None]] = {
    "impressions": lambda g, q: g.sums[IMP],
    "clicks": lambda g, q: g.sums[CLK],
    "inline_link_clicks": lambda g, q: g.sums[LINK],
    "reach": lambda g, q: g.reach,
    "unique_clicks": lambda g, q: g.unique_clicks,
    "spend": _spend,
    "frequency": lambda g, q: _ratio(g.sums[IMP], g.reach),
    "ctr": lambda g, q: _ratio(g.sums[CLK], g.sums[IMP], 100),
    "unique_ctr": lambda g, q: _ratio(g.unique_clicks, g.reach, 100),
    "inline_link_click_ctr": lambda g, q: _ratio(g.sums[LINK], g.sums[IMP], 100),
    "cpc": lambda g, q: _ratio(_spend(g, q), g.sums[CLK]),
    "cpm": lambda g, q: _ratio(_spend(g, q), g.sums[IMP], 1000),
    "cpp": lambda g, q: _ratio(_spend(g, q), g.reach, 1000),
    "cost_per_inline_link_click": lambda g, q: _ratio(_spend(g, q), g.sums[LINK]),
    "cost_per_unique_click": lambda g, q: _ratio(_spend(g, q), g.unique_clicks),
}
HOURLY_ZERO = ("reach", "frequency", "unique_clicks", "unique_ctr", "cpp", "cost_per_unique_click")
INTEGER = {"impressions", "clicks", "inline_link_clicks", "reach", "unique_clicks"}
TEXT = (
    "account_id",
    "account_name",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "date_start",
    "date_stop",
    "objective",
    "optimization_goal",
    "account_currency",
)


def _sort_value(g: Group, q: Query, name: str, objects: dict[str, Obj]) -> Any:
    if name in NUMERIC:
        return NUMERIC[name](g, q)
    if name in q.breakdowns:
        return g.cells[q.breakdowns.index(name)]
    if name in ("date_start", "date_stop"):
        return q.buckets[g.bucket][0 if name == "date_start" else 1].isoformat()
    return _identity(name, g, q, objects)


def _passes(g: Group, q: Query, flt: Filter) -> bool:
    if flt.field in q.breakdowns:
        return filter_passes(flt.operator, g.cells[q.breakdowns.index(flt.field)], flt.value)
    value = NUMERIC[flt.field](g, q)
    return value is not None and filter_passes(flt.operator, value, flt.value)


def decimal_text(value: float) -> str:
    """Facebook's ratio strings: up to six decimals, no trailing zeros ("1.234568", "12.5", "3")."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def money_text(minor: int, q: Query) -> str:
    """Minor units as the account currency's major units: "12.34", JPY "1234"."""
    digits = len(str(q.minor)) - 1
    if digits == 0:
        return str(minor)
    whole, cents = divmod(minor, q.minor)
    return f"{whole}.{cents:0{digits}d}"


def _actions(q: Query, kinds: tuple, kind: str) -> Callable[[Group], list | None]:
    """A renderer for an actions-like list: [{<action breakdowns>, "action_type", "value", <windows>}]. `kind` is
    count, money or cost. Values per action breakdown come from breakdowns.action_values (per ad when they depend
    on it); each action type's entries sum to its total. Attribution windows add per-window values
    (breakdowns.window_counts)."""
    by_device = "action_device" in q.action_breakdowns
    with_type = "action_type" in q.action_breakdowns
    dims = [a for a in q.action_breakdowns if a not in ("action_type", "action_device")]
    per_ad = _per_ad_actions(q)
    seed_account = q.account["id"]
    if bd.TYPE1_BREAKDOWNS & set(q.breakdowns):  # BREAKDOWNS_DOC: no off-Meta action metrics with Type 1
        kinds = tuple((t, i) for t, i in kinds if t not in bd.OFF_META_ACTIONS)

    def fmt(amount: int, g: Group, spend: int) -> str | None:
        if kind == "count":
            return str(amount)
        if kind == "money":
            return money_text(amount, q)
        return decimal_text(spend / q.minor / amount) if amount else None

    def render(g: Group) -> list | None:
        if (per_ad or by_device) and g.devices is not None:
            sources = sorted(g.devices.items(), key=lambda kv: str(kv[0]))
        else:  # the summary row: its sums, no ad or device of its own
            sources = [((None, None) if per_ad else None, g.sums)]
        entries: dict[tuple, list[int]] = {}
        for source, sums in sources:
            ad_id, device = source if per_ad else (None, source)
            ad = (g.ads(ad_id) if g.ads is not None else _NO_AD) if per_ad else None
            for action_type, index in kinds:
                amount = sums[index]
                if not amount:
                    continue
                shown = action_type
                parts: list[tuple[tuple[tuple[str, str], ...], int]] = [((), amount)]
                for dim in dims:
                    found = bd.action_values(dim, ad or _NO_AD, action_type)
                    if found is None:
                        parts = []
                        break
                    shown, share, pairs = found
                    weights = [w for _, w in pairs]
                    split_parts: list[tuple[tuple[tuple[str, str], ...], int]] = []
                    for labels, part in parts:
                        part = part if share == 1.0 else int(part * share)
                        split_parts += [
                            (labels + ((dim, label),), piece)
                            for (label, _), piece in zip(pairs, split_count(part, weights))
                            if piece
                        ]
                    parts = split_parts
                for labels, part in parts:
                    key = (device, labels, shown)
                    slot = entries.get(key)
                    if slot is None:
                        entries[key] = [part, sums[SPEND]]
                    else:
                        slot[0] += part
                        slot[1] += sums[SPEND]
        out = []
        for (device, labels, shown), (amount, spend) in entries.items():
            value = fmt(amount, g, spend)
            if value is None:
                continue
            entry: dict[str, Any] = {}
            if by_device:
                entry["action_device"] = device
            entry.update(labels)
            if with_type:
                entry["action_type"] = shown
            entry["value"] = value
            if q.windows:
                for window, n in bd.window_counts(amount, (seed_account, shown), q.windows, q.today).items():
                    text = fmt(n, g, spend)
                    if text is not None:
                        entry[window] = text
            out.append(entry)
        return out or None

    return render


def _roas(q: Query, kind: str) -> Callable[[Group], list | None]:
    type1 = bool(bd.TYPE1_BREAKDOWNS & set(q.breakdowns))

    def render(g: Group) -> list | None:
        if type1 or not g.sums[PVAL] or not g.sums[SPEND]:
            return None
        return [{"action_type": kind, "value": decimal_text(g.sums[PVAL] / g.sums[SPEND])}]

    return render


def _renderer(name: str, q: Query, objects: dict[str, Obj]) -> Callable[[Group], Any]:
    """How one field of a row renders, as Facebook sends it; a None value leaves the field out."""
    if name in HOURLY_ZERO and any(b in bd.HOURLY for b in q.breakdowns):
        return lambda g: "0"  # BREAKDOWNS_DOC: reach and frequency (unique fields) return 0 with hourly
    if name in INTEGER:
        number = NUMERIC[name]
        return lambda g: str(number(g, q))
    if name == "spend":
        return lambda g: money_text(g.sums[SPEND], q)
    if name in NUMERIC:
        ratio = NUMERIC[name]
        return lambda g: None if (v := ratio(g, q)) is None else decimal_text(v)
    if name == "actions":
        return _actions(q, ACTION_TYPES, "count")
    if name == "conversions":
        return _actions(q, CONVERSION_TYPES, "count")
    if name in ("action_values", "conversion_values"):
        return _actions(q, VALUE_TYPES, "money")
    if name == "cost_per_action_type":
        return _actions(q, ACTION_TYPES, "cost")
    if name in ("purchase_roas", "website_purchase_roas"):
        return _roas(q, "omni_purchase" if name == "purchase_roas" else "offsite_conversion.fb_pixel_purchase")
    if name in q.breakdowns:
        return lambda g: None  # breakdown columns follow date_start/date_stop
    return lambda g: _identity(name, g, q, objects)


def _context(g: Group, q: Query, objects: dict[str, Obj]) -> tuple:
    """(campaign, ad set, ad) objects of a row, as far as its level has them."""
    if g.context is None:
        obj = objects.get(g.obj_id) if q.level != "account" else None
        ad = obj if q.level == "ad" else None
        adset = obj if q.level == "adset" else objects.get(ad.get("adset_id", "")) if ad else None
        campaign = obj if q.level == "campaign" else objects.get(adset.get("campaign_id", "")) if adset else None
        g.context = (campaign, adset, ad)
    return g.context


def _identity(name: str, g: Group, q: Query, objects: dict[str, Obj]) -> Any:
    account = q.account
    if name == "account_id":
        return account["id"][4:]
    if name == "account_name":
        return account.get("name")
    if name == "account_currency":
        return q.currency
    if g.bucket < 0:  # the summary row has no object
        return None
    campaign, adset, ad = _context(g, q, objects)
    if name in ("campaign_id", "adset_id", "ad_id"):
        holder = {"campaign_id": campaign, "adset_id": adset, "ad_id": ad}[name]
        if holder is not None:
            return holder["id"]
        return g.obj_id if LEVEL_ATTR[q.level] == name else None
    if name in ("campaign_name", "adset_name", "ad_name"):
        holder = {"campaign_name": campaign, "adset_name": adset, "ad_name": ad}[name]
        return holder.get("name") if holder else None
    if name == "objective":
        return campaign.get("objective") if campaign else None
    if name == "optimization_goal":
        return adset.get("optimization_goal") if adset else None
    return None


def render_rows(result: Result, groups: Iterable[Group], names: Iterable[str]) -> list[dict]:
    """Rows as Facebook sends them: the asked fields (absent when empty), date_start, date_stop, breakdowns."""
    q = result.query
    renderers = [(name, _renderer(name, q, result.objects)) for name in names]
    dates = [(start.isoformat(), stop.isoformat()) for start, stop in q.buckets]
    whole = (q.since.isoformat(), q.until.isoformat())
    out = []
    for g in groups:
        row = {}
        for name, render in renderers:
            value = render(g)
            if value is not None:
                row[name] = value
        row["date_start"], row["date_stop"] = dates[g.bucket] if g.bucket >= 0 else whole
        if g.bucket >= 0:
            row.update((b, json.loads(c) if b in bd.ASSET_BREAKDOWNS else c) for b, c in zip(q.breakdowns, g.cells))
        out.append(row)
    return out


# ---- answers


def _page_limit(p: Params) -> int:
    limit = p.int("limit", 25)
    if limit is None or limit < 0:
        raise _error("Param limit must be a non-negative integer", "limit")
    return min(limit or 25, MAX_PAGE)


def page(ctx: Ctx, result: Result) -> dict:
    """One page of rows with Facebook's cursors, `next`/`previous` and, when asked, the summary."""
    p, rows = ctx.p, result.rows
    limit = _page_limit(p)
    if "after" in p:
        start = decode_cursor(p.get("after"), "after") + 1
    elif "before" in p:
        start = max(0, decode_cursor(p.get("before"), "before") - limit)
    else:
        start = 0
    start = min(max(start, 0), len(rows))
    chunk = rows[start : start + limit]
    names = result.query.fields
    out: dict[str, Any] = {"data": render_rows(result, chunk, names)}
    if chunk:
        cursors = {"before": encode_cursor(start), "after": encode_cursor(start + len(chunk) - 1)}
        paging: dict[str, Any] = {"cursors": cursors}
        if start + len(chunk) < len(rows):
            paging["next"] = _page_url(ctx, after=cursors["after"])
        if start > 0:
            paging["previous"] = _page_url(ctx, before=cursors["before"])
        out["paging"] = paging
    if result.query.summary is not None:
        out["summary"] = render_rows(result, [result.total], result.query.summary)[0]
    return out


def too_much_data() -> GraphError:
    return GraphError(
        "(#100) Please reduce the amount of data you're asking for, then retry your request",
        100,
        subcode=1487534,
        user_title="Too Much Data Requested",
        user_msg="Please reduce the amount of data you're asking for, then retry your request",
    )


def _node_and_account(ctx: Ctx) -> tuple[Obj, Obj]:
    node_id = ctx.match[0]
    if node_id.startswith("act_"):
        account = ctx.load_account(node_id)
        return account, account
    node = ctx.load(node_id, types=("campaign", "adset", "ad", "report_run"))
    return node, ctx.load_account(node.account_id)


def get_insights(ctx: Ctx) -> dict:
    """GET /{object}/insights: synchronous, at most MAX_SYNC_ROWS rows; a report run's id pages its results."""
    node, account = _node_and_account(ctx)
    if node.type == "report_run":
        return report_results(ctx, node)
    query = parse_query(ctx.sb, account, node, ctx.p)
    result = compute(ctx.sb, query)
    if len(result.rows) > MAX_SYNC_ROWS:
        raise too_much_data()
    return page(ctx, result)


# ---- async report runs

_RESULTS: weakref.WeakKeyDictionary[Sandbox, dict[str, Result]] = weakref.WeakKeyDictionary()
_SECRET_PARAMS = {"access_token", "appsecret_proof", "method", "batch", "limit", "after", "before"}


def _cache(sb: Sandbox) -> dict[str, Result]:
    return _RESULTS.setdefault(sb, {})


def start_report_run(ctx: Ctx) -> dict:
    """POST /{object}/insights: validate now, aggregate now (cached), answer {"report_run_id"}."""
    node, account = _node_and_account(ctx)
    if node.type == "report_run":
        from .errors import unsupported

        raise unsupported("POST", node["id"])
    query = parse_query(ctx.sb, account, node, ctx.p)
    result = compute(ctx.sb, query)
    fault = ctx.sb.faults.take(ctx.call.method, f"report_run/{ctx.call.path}", "before")
    run_id = ctx.store.new_id("report_run")
    params = {k: v for k, v in ctx.call.params.items() if k not in _SECRET_PARAMS and v is not None}
    duration = max(MIN_RUN_SECONDS, len(result.rows) / ROWS_PER_SECOND)
    data = {
        "id": run_id,
        "account_id": account["id"][4:],
        "_node_id": node["id"],
        "_params": params,
        "_rows": len(result.rows),
        "_duration": duration,
        "_started": ctx.now,
        "_failure": (fault.options.get("message") or "Generating the report failed. Try again later.")
        if fault
        else None,
        "date_start": query.since.isoformat(),
        "date_stop": query.until.isoformat(),
        "level": query.level,
        "fields": list(query.fields),
        "breakdowns": list(query.breakdowns),
    }
    ctx.store.insert("report_run", run_id, data, parent_id=node["id"], account_id=account["id"], now=ctx.now)
    _cache(ctx.sb)[run_id] = result
    return {"report_run_id": run_id}


def run_state(run: Obj, now: float) -> tuple[str, int]:
    """(async_status, async_percent_completion) from the sandbox clock."""
    elapsed = now - run["_started"]
    fraction = elapsed / run["_duration"]
    if fraction >= 1:
        return ("Job Failed" if run.get("_failure") else "Job Completed"), 100
    if fraction <= 0:
        return "Job Not Started", 0
    return ("Job Started" if fraction < 0.1 else "Job Running"), int(fraction * 100)


def read_report_run(ctx: Ctx, run: Obj) -> dict:
    """GET /{report_run_id}."""
    status, percent = run_state(run, ctx.now)
    done_at = run["_started"] + run["_duration"]

    def value(name: str) -> Any:
        if name == "async_status":
            return status
        if name == "async_percent_completion":
            return percent
        if name == "time_ref":
            return int(run["_started"])
        if name == "time_completed":
            return int(done_at) if percent == 100 else 0
        if name == "is_running":
            return percent < 100
        if name == "async_report_url":
            return f"{ctx.call.base_url}/{ctx.call.version}/{run['id']}/insights"
        if name in ("error_code", "error_subcode", "error_message", "error_user_title", "error_user_msg"):
            return _failure_fields(run).get(name) if status == "Job Failed" else None
        if name.startswith("_"):
            return None
        return run.get(name)

    default = RUN_DEFAULT_FIELDS
    if status == "Job Failed" and _version_number(ctx.call.version) >= 25:
        default = RUN_DEFAULT_FIELDS + list(RUN_ERROR_FIELDS)
    return select("AdReportRun", parse_fields(ctx.p.get("fields")), default, value)


# Since v25.0 a failed run answers these as default fields ("Version 25.0",
# https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/version25.0 ;
# "Enhanced Error Messaging for Ads Insights Async API", Jan 8, 2026,
# https://developers.facebook.com/blog/post/2026/01/08/enhanced-error-messaging-for-ads-insights-async-api/).
# Values: -2/2490547 "Report Failed" (ERROR_CODES_DOC in breakdowns.py).
RUN_ERROR_FIELDS = ("error_code", "error_subcode", "error_message", "error_user_title", "error_user_msg")


def _version_number(version: str) -> float:
    try:
        return float(str(version).lstrip("v"))
    except ValueError:
        return 0.0


def _failure_fields(run: Obj) -> dict:
    return {
        "error_code": -2,
        "error_subcode": 2490547,
        "error_message": run["_failure"],
        "error_user_title": "Report Failed",
        "error_user_msg": "Generating the report failed. Try again later.",
    }


def report_results(ctx: Ctx, run: Obj) -> dict:
    """GET /{report_run_id}/insights: the run's rows, paged from the cached result."""
    status, percent = run_state(run, ctx.now)
    if status == "Job Failed":
        f = _failure_fields(run)
        raise GraphError(
            f["error_message"],
            -2,
            subcode=2490547,
            user_title=f["error_user_title"],
            user_msg=f["error_user_msg"],
            is_transient=True,
        )
    if status != "Job Completed":
        raise _error(
            f"The async job {run['id']} is not complete yet (async_status {status}, "
            f"{percent}% done): poll GET /{run['id']} until async_status is Job Completed",
            "report_run_id",
        )
    result = _cache(ctx.sb).get(run["id"])
    if result is None:  # e.g. the sandbox restarted: recompute from the stored request
        account = ctx.load_account(run.account_id)
        node = account if run["_node_id"].startswith("act_") else ctx.store.get(run["_node_id"])
        result = compute(ctx.sb, parse_query(ctx.sb, account, node, Params(run["_params"])))
        _cache(ctx.sb)[run["id"]] = result
    return page(ctx, result)

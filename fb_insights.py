"""Ops: insights, reports, exports, charts, recommendations, alerts, snapshots, spend reports and the billing guard.

Every query is checked against docs/insights_contract.md before anything is sent (``build_query``). Reads go
through ``fetch_insights`` / ``iter_insights``, which switch by themselves to an async report run when Facebook
answers 100/1487534 (too much data): create the run, poll it with backoff and progress, then page its rows.
``parse_row`` turns Facebook's string numbers into a ``MetricRow`` (money in minor units, actions flattened);
``totals`` and ``derived`` do the arithmetic every op shares. Charts and PDFs use matplotlib (Agg), imported only
when a file is drawn so the registry stays quick to load.
"""

from __future__ import annotations

import asyncio
import csv
import difflib
import json
import math
import re
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from facebook_business.adobjects.adreportrun import AdReportRun
from facebook_business.adobjects.adsinsights import AdsInsights
from pydantic import ConfigDict, Field, model_validator

from fb_utils import (
    MONEY_UNIT,
    AccountInfo,
    AlertRuleRecord,
    Change,
    DataRow,
    FacebookError,
    GraphError,
    OpArgs,
    OpContext,
    OpData,
    OpKind,
    OpResult,
    OpSet,
    SnapshotRecord,
    SpendRecord,
    TaskGroup,
    ValidationError,
    WritePlan,
    absent_key,
    backoff_delay,
    check_object_id,
    counted,
    currency_offset,
    format_money,
    graph_object,
    next_page_lines,
    normalize_ad_account_id,
    output_file,
    report_progress,
    scaled_budget,
    sdk_enum_values,
)

ops = OpSet("fb_insights")

# ---------------------------------------------------------------------------------------------------------------
# The contract (docs/insights_contract.md)
# ---------------------------------------------------------------------------------------------------------------

LEVELS = ("account", "campaign", "adset", "ad")
DATE_PRESETS = (
    "today",
    "yesterday",
    "this_month",
    "last_month",
    "this_quarter",
    "maximum",
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


def _sdk_enum(cls: type) -> tuple[str, ...]:
    return tuple(sorted(v for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, str)))


# Meta's spec (the SDK's AdsInsights enums, generated from Meta's API specs): never a hand list.
BREAKDOWNS = _sdk_enum(AdsInsights.Breakdowns)
ACTION_BREAKDOWNS = _sdk_enum(AdsInsights.ActionBreakdowns)
ATTRIBUTION_WINDOWS = _sdk_enum(AdsInsights.ActionAttributionWindows)
SDK_FIELDS = _sdk_enum(AdsInsights.Field)
SDK_LIST_FIELDS = frozenset(name for name, kind in AdsInsights._field_types.items() if str(kind).startswith("list<"))

# Combination rules: "Insights API Breakdowns" (BREAKDOWNS_DOC; read 2026-12-06 in its v25.0 copy and the English
# page updated May 8, 2026). The permutation table: entries marked * may add action_type, action_target_id and
# action_destination; the others are exact. Carousel card id and name count as one column.
BREAKDOWNS_DOC = "https://developers.facebook.com/docs/marketing-api/insights/breakdowns"
METRIC_AVAILABILITY = (
    "https://developers.facebook.com/blog/post/2025/10/16/ads-insights-api-metric-availability-updates/"
)
_CAROUSEL = "action_carousel_card_id/name"
_JOINABLE = frozenset({"action_type", "action_target_id", "action_destination"})
DOCUMENTED_PERMUTATIONS: tuple[tuple[tuple[str, ...], bool], ...] = tuple(
    (tuple(c.split("+")), star)
    for c, star in (
        ("action_converted_product_id", False),
        ("action_type", True),
        ("action_type+action_converted_product_id", False),
        ("action_target_id", True),
        ("action_device", True),
        ("action_device+impression_device", True),
        ("action_device+publisher_platform", True),
        ("action_device+publisher_platform+impression_device", True),
        ("action_device+publisher_platform+platform_position", True),
        ("action_device+publisher_platform+platform_position+impression_device", True),
        ("action_reaction", False),
        ("action_type+action_reaction", False),
        ("age", True),
        ("gender", True),
        ("age+gender", True),
        ("app_id+skan_conversion_id", False),
        ("country", True),
        ("region", True),
        ("publisher_platform", True),
        ("publisher_platform+impression_device", True),
        ("publisher_platform+platform_position", True),
        ("publisher_platform+platform_position+impression_device", True),
        ("product_id", True),
        ("hourly_stats_aggregated_by_advertiser_time_zone", True),
        ("hourly_stats_aggregated_by_audience_time_zone", True),
        (_CAROUSEL, False),
        (f"{_CAROUSEL}+impression_device", False),
        (f"{_CAROUSEL}+country", False),
        (f"{_CAROUSEL}+age", False),
        (f"{_CAROUSEL}+gender", False),
        (f"{_CAROUSEL}+age+gender", False),
    )
)
_TABLE_COLUMNS = frozenset(c for cols, _ in DOCUMENTED_PERMUTATIONS for c in cols)
_EXACT_ONLY = frozenset({_CAROUSEL, "action_reaction", "action_converted_product_id", "app_id", "skan_conversion_id"})
HOURLY_BREAKDOWNS = ("hourly_stats_aggregated_by_advertiser_time_zone", "hourly_stats_aggregated_by_audience_time_zone")
NO_BREAKDOWN_FIELDS = (
    "app_store_clicks",
    "newsfeed_avg_position",
    "newsfeed_clicks",
    "relevance_score",
    "newsfeed_impressions",
)
ASSET_BREAKDOWNS = (
    "ad_format_asset",
    "body_asset",
    "call_to_action_asset",
    "description_asset",
    "image_asset",
    "link_url_asset",
    "title_asset",
    "video_asset",
)
ASSET_METRICS = ("impressions", "clicks", "spend", "reach", "actions", "action_values")
ONLY_WITH_FIELD = {
    "app_id": "total_postbacks",
    "skan_conversion_id": "total_postbacks",
    "skan_campaign_id": "total_postbacks_detailed",
    "is_conversion_id_modeled": "total_postbacks_detailed",
}
REGION_UNSUPPORTED = (
    "video_p25_watched_actions",
    "video_p50_watched_actions",
    "video_p75_watched_actions",
    "video_p95_watched_actions",
    "video_p100_watched_actions",
    "video_avg_time_watched_actions",
)
DMA_UNSUPPORTED = ("estimated_ad_recall_rate", "video_thruplay_watched_actions")
# 7d_view and 28d_view return no data from 2026-01-12, all versions (METRIC_AVAILABILITY).
WINDOWS_WITHOUT_DATA = ("7d_view", "28d_view")
PER_WINDOW_SHOWN = ("1d_click", "7d_click", "28d_click", "1d_view", "1d_ev")

ID_FIELDS = ("account_id", "account_name", "campaign_id", "campaign_name", "adset_id", "adset_name", "ad_id", "ad_name")
METRIC_FIELDS = (
    "impressions",
    "reach",
    "frequency",
    "clicks",
    "unique_clicks",
    "inline_link_clicks",
    "ctr",
    "cpc",
    "cpm",
    "cpp",
    "spend",
    "actions",
    "action_values",
    "cost_per_action_type",
    "conversions",
    "purchase_roas",
)
DIM_FIELDS = ID_FIELDS + ("date_start", "date_stop", "objective", "optimization_goal", "account_currency")
FIELDS = tuple(dict.fromkeys(DIM_FIELDS + METRIC_FIELDS + SDK_FIELDS))  # the SDK's AdsInsights.Field, ours first
LIST_FIELDS = tuple(
    sorted(SDK_LIST_FIELDS | {"actions", "action_values", "cost_per_action_type", "conversions", "purchase_roas"})
)
FILTER_OPERATORS = (
    "EQUAL",
    "NOT_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "IN_RANGE",
    "NOT_IN_RANGE",
    "CONTAIN",
    "NOT_CONTAIN",
    "IN",
    "NOT_IN",
    "ANY",
    "ALL",
    "NONE",
)
FILTER_ID_FIELDS = {"campaign_id": "campaign.id", "adset_id": "adset.id", "ad_id": "ad.id"}
BASE_METRICS = ("impressions", "reach", "clicks", "inline_link_clicks", "spend", "actions", "action_values")
MAX_MONTHS_BACK = 37
MAX_TIME_INCREMENT = 90
SUBCODE_TOO_MUCH_DATA = 1487534
SYNC_PAGE_SIZE = 500
ASYNC_PAGE_SIZE = 5000  # the most Facebook pages at once from a report run
REPORT_WAIT_SECONDS = 600.0
POLL_BASE_SECONDS = 0.25
POLL_CAP_SECONDS = 5.0
DATA_ROWS_CAP = 2000  # rows an op puts in data; beyond that it summarizes and points to export_insights
DEFAULT_OUT_DIR = "admonster-reports"
CHART_SIZE_IN = (12.0, 7.0)  # at 100 dpi: 1200×700 pixels
CHART_DPI = 100

# Which action types feed each flattened count ("purchase" is the omni figure; the pixel one is a fallback).
PURCHASE_TYPES = ("purchase", "omni_purchase", "offsite_conversion.fb_pixel_purchase")
LEAD_TYPES = ("lead", "onsite_conversion.lead_grouped", "offsite_conversion.fb_pixel_lead")

Level = Literal["account", "campaign", "adset", "ad"]
DatePreset = Literal[DATE_PRESETS]  # type: ignore[valid-type]
Breakdown = Literal[BREAKDOWNS]  # type: ignore[valid-type]


def _default_fields(level: str | None) -> tuple[str, ...]:
    """The sensible default columns for a level: its ids and names, dates, and the base metrics."""
    names = {
        "account": ("account_id", "account_name"),
        "campaign": ("campaign_id", "campaign_name"),
        "adset": ("campaign_id", "adset_id", "adset_name"),
        "ad": ("campaign_id", "adset_id", "ad_id", "ad_name"),
    }
    return names.get(level or "", ()) + ("date_start", "date_stop") + BASE_METRICS + ("ctr", "cpc", "cpm")


@dataclass(frozen=True)
class InsightsQuery:
    """One validated insights request: build with ``build_query``, send with ``params()``."""

    object_id: str
    level: str | None
    fields: tuple[str, ...]
    date_preset: str | None = None
    since: str | None = None
    until: str | None = None
    time_increment: str | None = None
    breakdowns: tuple[str, ...] = ()
    filtering: tuple[dict, ...] = ()
    sort: tuple[str, ...] = ()
    summary: bool = False
    action_breakdowns: tuple[str, ...] = ()
    attribution_windows: tuple[str, ...] = ()
    notes: tuple[str, ...] = dataclass_field(default=(), compare=False)  # warnings for the answer's text

    def params(self) -> dict[str, Any]:
        """The Graph parameters, as the SDK would send them."""
        params: dict[str, Any] = {"fields": ",".join(self.fields)}
        if self.level:
            params["level"] = self.level
        if self.since:
            params["time_range"] = {"since": self.since, "until": self.until}
        elif self.date_preset:
            params["date_preset"] = self.date_preset
        if self.time_increment:
            params["time_increment"] = self.time_increment
        if self.breakdowns:
            params["breakdowns"] = ",".join(self.breakdowns)
        if self.action_breakdowns:
            params["action_breakdowns"] = ",".join(self.action_breakdowns)
        if self.attribution_windows:
            params["action_attribution_windows"] = ",".join(self.attribution_windows)
        if self.filtering:
            params["filtering"] = list(self.filtering)
        if self.sort:
            params["sort"] = list(self.sort)
        if self.summary:
            params["default_summary"] = "true"
        return params

    @property
    def period(self) -> str:
        return f"{self.since}..{self.until}" if self.since else (self.date_preset or "last_30d")


def _refuse(
    message: str, field_name: str, allowed: Iterable[str] | None = None, fix: str | None = None
) -> ValidationError:
    if fix is None and allowed is not None:
        fix = f"Use one of: {', '.join(allowed)}"
    return ValidationError(message, fix=fix, blame_field=field_name, code=100)


def _closest(value: str, allowed: Sequence[str]) -> str:
    near = difflib.get_close_matches(value, allowed, n=1)
    return f" (did you mean {near[0]}?)" if near else ""


def check_object(object_id: str) -> str:
    """An insights object: an ad account (act_<digits>) or a campaign, ad set or ad id."""
    text = str(object_id).strip()
    return normalize_ad_account_id(text) if text.startswith("act_") else check_object_id(text, "object_id")


def _parse_day(value: str, field_name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _refuse(f"{value!r} is not a date", field_name, fix="Give dates as YYYY-MM-DD, e.g. 2025-03-31") from None


def _months_back(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, 28))


def normalize_filtering(filtering: Any) -> tuple[dict, ...]:
    """Simple filters (``{"campaign_id": [...]}``, ``{"spend": {"GREATER_THAN": 10}}``) or Facebook's list form, checked."""
    if not filtering:
        return ()
    out: list[dict] = []
    if isinstance(filtering, Mapping):
        for key, value in filtering.items():
            graph_field = FILTER_ID_FIELDS.get(key, key)
            if isinstance(value, Mapping):
                out += [{"field": graph_field, "operator": str(op).upper(), "value": v} for op, v in value.items()]
            elif isinstance(value, (list, tuple)):
                out.append({"field": graph_field, "operator": "IN", "value": [str(v) for v in value]})
            else:
                out.append(
                    {
                        "field": graph_field,
                        "operator": "EQUAL",
                        "value": str(value) if key in FILTER_ID_FIELDS else value,
                    }
                )
    elif isinstance(filtering, (list, tuple)):
        for item in filtering:
            if not isinstance(item, Mapping) or set(item) != {"field", "operator", "value"}:
                raise _refuse(
                    f"{item!r} is not a filter",
                    "filtering",
                    fix='Give {"campaign_id": ["123"]} or [{"field": "campaign.id", "operator": "IN", "value": ["123"]}]',
                )
            out.append({"field": str(item["field"]), "operator": str(item["operator"]).upper(), "value": item["value"]})
    else:
        raise _refuse(
            f"{filtering!r} is not a filter", "filtering", fix='Give {"campaign_id": ["123"]} or Facebook\'s list form'
        )
    allowed_fields = tuple(FILTER_ID_FIELDS.values()) + METRIC_FIELDS
    for item in out:
        if item["field"] in FILTER_ID_FIELDS:
            item["field"] = FILTER_ID_FIELDS[item["field"]]
        if item["field"] not in allowed_fields:
            raise _refuse(
                f"{item['field']} cannot be filtered on{_closest(item['field'], allowed_fields)}",
                "filtering",
                ("campaign_id", "adset_id", "ad_id") + METRIC_FIELDS,
            )
        if item["operator"] not in FILTER_OPERATORS:
            raise _refuse(
                f"{item['operator']} is not a filter operator{_closest(item['operator'], FILTER_OPERATORS)}",
                "filtering",
                FILTER_OPERATORS,
            )
        if item["operator"] in ("IN", "NOT_IN") and not isinstance(item["value"], (list, tuple)):
            item["value"] = [item["value"]]
    return tuple(out)


async def session_today(ctx: OpContext) -> date:
    """Today's date (UTC) on the session's clock."""
    return (await ctx.now()).date()


def _columns(breakdowns: Sequence[str], action_breakdowns: Sequence[str]) -> frozenset[str]:
    return frozenset(
        _CAROUSEL if c in ("action_carousel_card_id", "action_carousel_card_name") else c
        for c in (*breakdowns, *action_breakdowns)
    )


def _documented_with(cols: frozenset[str]) -> list[str]:
    """The documented permutations that share a column with the request (for the fix)."""
    out = []
    for entry, star in DOCUMENTED_PERMUTATIONS:
        if (set(entry) & (cols - _JOINABLE) and len(entry) > 1) or (set(entry) & cols - _JOINABLE and star):
            out.append(" + ".join(entry) + (" (+ action_type)" if star else ""))
    return out[:8]


def check_breakdowns(
    breakdowns: Sequence[str], action_breakdowns: Sequence[str], fields: Sequence[str], level: str
) -> str | None:
    """Meta's combination rules (BREAKDOWNS_DOC): refuse what Meta cannot answer, before anything is sent; answer a
    note when the combination is one the docs say nothing about (sent anyway, marked unverified)."""
    # Meta adds action_type when no action breakdown is given; the table's exact entries (app_id + skan_conversion_id)
    # are asked without action fields, so either reading may match.
    readings = [tuple(action_breakdowns)] if action_breakdowns else [(), ("action_type",)]
    documented = any(
        cols == set(entry) or (star and set(entry) <= cols and cols - set(entry) <= _JOINABLE)
        for cols in (_columns(breakdowns, a) for a in readings)
        for entry, star in DOCUMENTED_PERMUTATIONS
    )
    cols = _columns(breakdowns, readings[-1])
    core = cols - _JOINABLE
    if not documented and not (len(core) <= 1 and not core & _EXACT_ONLY):
        named = [c for c in (*breakdowns, *action_breakdowns)]
        if core <= _TABLE_COLUMNS:
            options = _documented_with(cols)
            raise _refuse(
                f"breakdowns {' + '.join(named)} cannot be combined (Meta answers only its documented permutations)",
                "breakdowns",
                fix="Ask them in separate requests" + (f", or use one of: {'; '.join(options)}" if options else ""),
            )
    chosen, asked = set(breakdowns), set(fields)
    if chosen and (bad := sorted(asked & set(NO_BREAKDOWN_FIELDS))):
        raise _refuse(
            f"{bad[0]} cannot be requested with any breakdown", "fields", fix=f"Drop {bad[0]}, or the breakdowns"
        )
    hourly = chosen & set(HOURLY_BREAKDOWNS)
    if hourly:
        if bad := sorted(f for f in asked if f.startswith("video_")):
            raise _refuse(
                f"{bad[0]} cannot be requested with an hourly breakdown",
                "fields",
                fix=f"Drop the video fields, or ask them without {min(hourly)}",
            )
        if bad := sorted(f for f in asked if f.startswith("unique_") or f in ("reach", "frequency", "cpp")):
            raise _refuse(
                f"hourly breakdowns do not support {bad[0]} (Meta answers 0)",
                "fields",
                fix="Drop reach, frequency and unique_* fields, or the hourly breakdown",
            )
    if "frequency_value" in chosen and "reach" not in asked:
        raise _refuse("the frequency_value breakdown is used with reach only", "fields", fix="Add reach to fields")
    if "region" in chosen and (bad := sorted(asked & set(REGION_UNSUPPORTED))):
        raise _refuse(f"{bad[0]} does not support the region breakdown", "fields", fix=f"Drop {bad[0]}, or use country")
    if "dma" in chosen and (bad := sorted(asked & set(DMA_UNSUPPORTED))):
        raise _refuse(
            f"{bad[0]} is not available with the dma breakdown", "fields", fix=f"Drop {bad[0]}, or use region"
        )
    if "place_page_id" in chosen and level == "account":
        raise _refuse(
            "place_page_id cannot be asked at the account level", "level", fix="Use level campaign, adset or ad"
        )
    if chosen & set(ASSET_BREAKDOWNS):
        bad = sorted(f for f in asked if f not in ASSET_METRICS and f not in DIM_FIELDS and f not in chosen)
        if bad:
            raise _refuse(
                f"{bad[0]} is not available with dynamic creative asset breakdowns",
                "fields",
                fix=f"Ask only {', '.join(ASSET_METRICS)} (plus ids and dates)",
            )
    for name, needed in ONLY_WITH_FIELD.items():
        if name in chosen and needed not in asked:
            raise _refuse(
                f"the {name} breakdown is only supported with the {needed} field",
                "fields",
                fix=f"Add {needed} to fields",
            )
    if not documented and len(core) > 1:
        return (
            f"Note: {' + '.join(sorted(core))} is not in Meta's documented breakdown permutations "
            "(unverified: Facebook may refuse it)."
        )
    return None


def build_query(
    object_id: str,
    *,
    level: str | None = None,
    fields: Sequence[str] | None = None,
    date_preset: str | None = None,
    since: str | None = None,
    until: str | None = None,
    time_increment: int | str | None = None,
    breakdowns: Sequence[str] = (),
    filtering: Any = None,
    sort: Sequence[str] | str | None = None,
    summary: bool = False,
    action_breakdowns: Sequence[str] = (),
    attribution_windows: Sequence[str] = (),
    today: date,
) -> InsightsQuery:
    """Check every argument against the contract and build the query; refuses before any request is sent. ``today``
    (the session's, see ``session_today``) bounds how far back ``since`` may go."""
    object_id = check_object(object_id)
    if level is not None and level not in LEVELS:
        raise _refuse(f"{level!r} is not an insights level{_closest(str(level), LEVELS)}", "level", LEVELS)
    chosen = tuple(dict.fromkeys(fields)) if fields else _default_fields(level)
    for name in chosen:
        if name not in FIELDS and name not in BREAKDOWNS:
            raise _refuse(f"{name} is not valid for fields{_closest(name, FIELDS)}", "fields", FIELDS)
    if date_preset is not None and date_preset not in DATE_PRESETS:
        raise _refuse(
            f"{date_preset!r} is not a date_preset{_closest(str(date_preset), DATE_PRESETS)}",
            "date_preset",
            DATE_PRESETS,
        )
    if (since is None) != (until is None):
        raise _refuse(
            "since and until go together",
            "since" if since is None else "until",
            fix="Give both since and until (YYYY-MM-DD), or a date_preset such as last_7d",
        )
    if since is not None and date_preset is not None:
        raise _refuse(
            "date_preset and since/until are two ways to say the period: give one",
            "date_preset",
            fix="Drop date_preset, or drop since and until",
        )
    if since is not None and until is not None:  # one without the other was refused above
        start, stop = _parse_day(since, "since"), _parse_day(until, "until")
        if start > stop:
            raise _refuse(f"since {since} is after until {until}", "since", fix="Give since on or before until")
        oldest = _months_back(today, MAX_MONTHS_BACK)
        if start < oldest:
            raise _refuse(
                f"since {since} is more than {MAX_MONTHS_BACK} months back (Facebook keeps insights since {oldest})",
                "since",
                fix=f"Give since on or after {oldest}",
            )
        since, until = start.isoformat(), stop.isoformat()
    increment = None
    if time_increment is not None:
        increment = str(time_increment).strip().lower()
        if increment not in ("monthly", "all_days") and not (
            increment.isdigit() and 1 <= int(increment) <= MAX_TIME_INCREMENT
        ):
            raise _refuse(
                f"{time_increment!r} is not a time_increment",
                "time_increment",
                fix=f"Use a number of days from 1 to {MAX_TIME_INCREMENT}, 'monthly' or 'all_days'",
            )
    chosen_breakdowns = tuple(dict.fromkeys(breakdowns or ()))
    for name in chosen_breakdowns:
        if name not in BREAKDOWNS:
            raise _refuse(f"{name} is not a breakdown{_closest(name, BREAKDOWNS)}", "breakdowns", BREAKDOWNS)
    chosen_actions = tuple(dict.fromkeys(action_breakdowns or ()))
    for name in chosen_actions:
        if name not in ACTION_BREAKDOWNS:
            raise _refuse(
                f"{name} is not an action breakdown{_closest(name, ACTION_BREAKDOWNS)}",
                "action_breakdowns",
                ACTION_BREAKDOWNS,
            )
    windows = tuple(dict.fromkeys(attribution_windows or ()))
    for name in windows:
        if name not in ATTRIBUTION_WINDOWS:
            raise _refuse(
                f"{name} is not an attribution window{_closest(name, ATTRIBUTION_WINDOWS)}",
                "attribution_windows",
                fix="Use e.g. 1d_click, 7d_click, 28d_click, 1d_view, 1d_ev",
            )
    effective_level = level or ("account" if object_id.startswith("act_") else None)
    notes = [n for n in (check_breakdowns(chosen_breakdowns, chosen_actions, chosen, effective_level or ""),) if n]
    gone = [w for w in windows if w in WINDOWS_WITHOUT_DATA]
    if gone:
        notes.append(
            f"Note: {' and '.join(gone)} {'has' if len(gone) == 1 else 'have'} no data since 2026-01-12 "
            "(Meta, all API versions); use 1d_view or 7d_click/28d_click."
        )
    sort_list = tuple([sort] if isinstance(sort, str) else (sort or ()))
    for item in sort_list:
        match = re.fullmatch(r"(.+)_(ascending|descending)", str(item))
        if not match or match.group(1) not in FIELDS + BREAKDOWNS:
            raise _refuse(
                f"{item!r} is not a sort order",
                "sort",
                fix="Use <field>_ascending or <field>_descending, e.g. spend_descending",
            )
    return InsightsQuery(
        object_id=object_id,
        level=level,
        fields=chosen,
        date_preset=date_preset,
        since=since,
        until=until,
        time_increment=increment,
        breakdowns=chosen_breakdowns,
        filtering=normalize_filtering(filtering),
        sort=sort_list,
        summary=summary,
        action_breakdowns=chosen_actions,
        attribution_windows=windows,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------------------------------
# Rows and arithmetic
# ---------------------------------------------------------------------------------------------------------------

METRIC_NAMES = (
    "impressions",
    "reach",
    "clicks",
    "link_clicks",
    "landing_page_views",
    "leads",
    "purchases",
    "spend_minor",
    "purchase_value_minor",
)


@dataclass(slots=True)
class MetricRow:
    """One insights row as numbers: counts as ints, money (spend, purchase value) in the account's minor units.

    ``dims`` keeps the row's non-metric columns (ids, names, dates, breakdown values). ``reach`` adds up across
    rows only as an upper bound: Facebook's reach is not additive across days or breakdowns.
    """

    impressions: int = 0
    reach: int = 0
    clicks: int = 0
    link_clicks: int = 0
    landing_page_views: int = 0
    leads: int = 0
    purchases: int = 0
    spend_minor: int = 0
    purchase_value_minor: int = 0
    currency: str = "USD"
    dims: dict = dataclass_field(default_factory=dict)

    @property
    def spend(self) -> int:
        """Spend in minor units (alias of spend_minor)."""
        return self.spend_minor

    @property
    def purchase_value(self) -> int:
        """Purchase value in minor units (alias of purchase_value_minor)."""
        return self.purchase_value_minor

    @property
    def conversions(self) -> int:
        return self.purchases + self.leads

    def add(self, other: MetricRow) -> MetricRow:
        """Add another row's metrics into this one (in place); returns self."""
        self.impressions += other.impressions
        self.reach += other.reach
        self.clicks += other.clicks
        self.link_clicks += other.link_clicks
        self.landing_page_views += other.landing_page_views
        self.leads += other.leads
        self.purchases += other.purchases
        self.spend_minor += other.spend_minor
        self.purchase_value_minor += other.purchase_value_minor
        return self

    def minus(self, other: MetricRow) -> MetricRow:
        """This row's metrics less another's (a new row)."""
        out = MetricRow(currency=self.currency)
        for name in METRIC_NAMES:
            setattr(out, name, getattr(self, name) - getattr(other, name))
        return out

    def metrics(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in METRIC_NAMES}

    def to_dict(self) -> dict[str, Any]:
        """dims, metrics and derived ratios in one flat dict (money in minor units)."""
        return {**self.dims, **self.metrics(), **derived(self)}


def _int(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return int(round(float(value)))


def _minor(value: Any, offset: int) -> int:
    """Facebook's major-unit money string ("12.34", JPY "1234") in minor units."""
    if value is None or value == "":
        return 0
    return int(round(float(value) * offset))


def _action_value(items: Any, types: Sequence[str]) -> float:
    if not isinstance(items, list):
        return 0.0
    found: dict[str, float] = {}
    for item in items:  # with action breakdowns one type has several entries (one per value): they add up
        if isinstance(item, Mapping):
            try:
                raw: Any = item.get("value")
                value = float(raw)
            except (TypeError, ValueError):
                continue
            key = str(item.get("action_type"))
            found[key] = found.get(key, 0.0) + value
    for action_type in types:  # the first type present wins: the omni and pixel figures count the same events
        if action_type in found:
            return found[action_type]
    return 0.0


def add_windows(into: dict[str, dict[str, float]], row: Mapping[str, Any], windows: Sequence[str]) -> None:
    """Sum a row's per-window action values (action_attribution_windows) by window and action type."""
    for item in row.get("actions") or ():
        if not isinstance(item, Mapping):
            continue
        for window in ("value", *windows):
            if window in item:
                try:
                    amount = float(item[window])
                except (TypeError, ValueError):
                    continue
                per = into.setdefault(window, {})
                key = str(item.get("action_type"))
                per[key] = per.get(key, 0.0) + amount


def windows_line(by_window: Mapping[str, Mapping[str, float]], windows: Sequence[str]) -> list[str]:
    """One line per main action type: its count in each attribution window asked, and the default ('value')."""
    lines = []
    for action_type in ("purchase", "offsite_conversion.fb_pixel_purchase", "lead", "add_to_cart", "link_click"):
        default = (by_window.get("value") or {}).get(action_type)
        if default is None:
            continue
        parts = [
            f"{w} {int((by_window.get(w) or {}).get(action_type, 0)):,}"
            for w in windows
            if w in by_window and w not in WINDOWS_WITHOUT_DATA
        ]
        missing = [w for w in windows if w not in by_window or w in WINDOWS_WITHOUT_DATA]
        lines.append(
            f"{action_type} by attribution window: "
            + " · ".join(parts + [f"default {int(default):,}"])
            + (f" (no data: {', '.join(missing)})" if missing else "")
        )
        if len(lines) == 3:
            break
    return lines


def parse_row(row: Mapping[str, Any], currency: str) -> MetricRow:
    """One Graph insights row (string numbers) as a MetricRow: money in minor units, actions flattened."""
    offset = currency_offset(currency)
    actions = row.get("actions")
    link_clicks = row.get("inline_link_clicks")
    out = MetricRow(
        impressions=_int(row.get("impressions")),
        reach=_int(row.get("reach")),
        clicks=_int(row.get("clicks")),
        link_clicks=_int(link_clicks)
        if link_clicks not in (None, "")
        else int(_action_value(actions, ("link_click",))),
        landing_page_views=int(_action_value(actions, ("landing_page_view",))),
        leads=int(_action_value(actions, LEAD_TYPES)),
        purchases=int(_action_value(actions, PURCHASE_TYPES)),
        spend_minor=_minor(row.get("spend"), offset),
        purchase_value_minor=int(round(_action_value(row.get("action_values"), PURCHASE_TYPES) * offset)),
        currency=currency,
    )
    out.dims = {k: v for k, v in row.items() if k not in METRIC_FIELDS}
    return out


def totals(rows: Iterable[MetricRow], currency: str | None = None) -> MetricRow:
    """The sum of rows' additive metrics (reach summed: an upper bound, see MetricRow)."""
    total: MetricRow | None = None
    for row in rows:
        if total is None:
            total = MetricRow(currency=row.currency)
        total.add(row)
    return total or MetricRow(currency=currency or "USD")


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return numerator / denominator * scale if denominator else None


def derived(m: MetricRow) -> dict[str, float | None]:
    """CTR (%), CPC, CPM, CPA (minor units, float), frequency and ROAS; None where the denominator is zero."""
    return {
        "ctr": _ratio(m.clicks, m.impressions, 100.0),
        "cpc": _ratio(m.spend_minor, m.clicks),
        "cpm": _ratio(m.spend_minor, m.impressions, 1000.0),
        "frequency": _ratio(m.impressions, m.reach),
        "cpa": _ratio(m.spend_minor, m.conversions),
        "roas": _ratio(m.purchase_value_minor, m.spend_minor),
    }


class Metrics(DataRow):
    """A MetricRow's numbers as the ops answer them (``MetricRow.to_dict`` without dims): counts, money in minor units of
    the account currency, and the ratios derived from them (null where the denominator is zero)."""

    impressions: int
    reach: int = Field(description="Summed over rows it is an upper bound: Facebook's reach is not additive.")
    clicks: int
    link_clicks: int
    landing_page_views: int
    leads: int
    purchases: int
    spend_minor: int = Field(description="Minor units of the account currency (cents for USD, yen for JPY).")
    purchase_value_minor: int = Field(description="Minor units of the account currency.")
    ctr: float | None = Field(description="Clicks per 100 impressions (percent).")
    cpc: float | None = Field(description="Spend per click, minor units.")
    cpm: float | None = Field(description="Spend per 1,000 impressions, minor units.")
    frequency: float | None = Field(description="Impressions per person reached.")
    cpa: float | None = Field(description="Spend per conversion (purchases + leads), minor units.")
    roas: float | None = Field(description="Purchase value per spend.")


# An insights row as Facebook sends it (numbers as strings), typed from Meta's spec (the SDK's AdsInsights field types)
# for the columns the ops ask for by default and read (ids, names, dates, the metrics); any other field asked for comes
# as Facebook sends it. (Typing all of AdsInsights' ~150 fields would make each outputSchema ~20 KB larger.)
InsightsObject = graph_object(AdsInsights, DIM_FIELDS + METRIC_FIELDS, name="InsightsObject")
# The columns a MetricRow keeps as they came: ids, names, dates typed; breakdown values (not in the SDK's field types)
# and other fields as they came.
InsightsDims = graph_object(AdsInsights, DIM_FIELDS, name="InsightsDims")


class InsightsRow(Metrics, InsightsDims):  # type: ignore[misc,valid-type]
    """One row (MetricRow.to_dict): its columns as Facebook sent them (breakdown values too), then the numbers."""

    model_config = ConfigDict(extra="allow")


def results_of(m: MetricRow, optimization_goal: str | None = None) -> int:
    """The results that count for an ad set's optimization goal (conversions, else link clicks)."""
    goal = (optimization_goal or "").upper()
    if goal in ("LEAD_GENERATION", "QUALITY_LEAD"):
        return m.leads
    if goal in ("OFFSITE_CONVERSIONS", "VALUE"):
        return m.conversions
    if goal == "LANDING_PAGE_VIEWS":
        return m.landing_page_views
    if goal == "LINK_CLICKS":
        return m.link_clicks
    if goal in ("IMPRESSIONS", "REACH"):
        return m.impressions
    return m.conversions or m.link_clicks


def money(minor: float | int | None, currency: str) -> str:
    """Minor units (int or float) formatted in the currency; '-' when unknown."""
    if minor is None:
        return "-"
    return format_money(int(round(minor)), currency)


def summary_line(m: MetricRow) -> str:
    """One line: spend, impressions, clicks with CTR and CPC, CPM, and conversions with CPA and ROAS."""
    d = derived(m)
    parts = [
        f"spend {money(m.spend_minor, m.currency)}",
        counted(m.impressions, "impression"),
        counted(m.clicks, "click")
        + (
            f" (CTR {d['ctr']:.2f}%, CPC {money(d['cpc'], m.currency)})"
            if d["ctr"] is not None and d["cpc"] is not None
            else ""
        ),
        f"CPM {money(d['cpm'], m.currency)}",
    ]
    if m.link_clicks:
        parts.append(counted(m.link_clicks, "link click"))
    if m.purchases:
        parts.append(
            f"{counted(m.purchases, 'purchase')} (value {money(m.purchase_value_minor, m.currency)}"
            + (f", ROAS {d['roas']:.2f}×" if d["roas"] is not None else "")
            + ")"
        )
    if m.leads:
        parts.append(counted(m.leads, "lead"))
    if d["cpa"] is not None:
        parts.append(f"CPA {money(d['cpa'], m.currency)}")
    return " · ".join(parts)


def row_label(m: MetricRow) -> str:
    """What a row is: the most specific object's name and id, its days and its breakdown values."""
    dims = m.dims
    parts = []
    for level in ("ad", "adset", "campaign", "account"):
        if dims.get(f"{level}_id") or dims.get(f"{level}_name"):
            parts.append(f"{dims.get(f'{level}_name') or level} ({dims.get(f'{level}_id')})")
            break
    start, stop = dims.get("date_start"), dims.get("date_stop")
    if start and start == stop:
        parts.append(str(start))
    parts += [f"{b}={dims[b]}" for b in BREAKDOWNS if b in dims]
    return " · ".join(parts) or "all"


class Aggregator:
    """Streaming summary: totals, per-key totals and a row count, without keeping rows."""

    def __init__(self, currency: str, key: Callable[[MetricRow], Any] | None = None) -> None:
        self.currency = currency
        self.key = key
        self.total = MetricRow(currency=currency)
        self.groups: dict[Any, MetricRow] = {}
        self.count = 0

    def add_raw(self, row: Mapping[str, Any]) -> MetricRow:
        parsed = parse_row(row, self.currency)
        self.add(parsed)
        return parsed

    def add(self, row: MetricRow) -> None:
        self.count += 1
        self.total.add(row)
        if self.key is not None:
            group_key = self.key(row)
            group = self.groups.get(group_key)
            if group is None:
                group = self.groups[group_key] = MetricRow(currency=self.currency, dims=dict(row.dims))
            group.add(row)


# ---------------------------------------------------------------------------------------------------------------
# Fetching: sync, switching to async on 1487534, streaming
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class InsightsResult:
    """What fetch_insights answers: the rows as Facebook sent them, the summary, and how they were fetched."""

    rows: list[dict]
    query: InsightsQuery
    summary: dict | None = None
    report_run_id: str | None = None
    pages: int = 0

    @property
    def used_async(self) -> bool:
        return self.report_run_id is not None


@dataclass
class _FetchState:
    summary: dict | None = None
    report_run_id: str | None = None
    pages: int = 0


def is_too_much_data(error: FacebookError) -> bool:
    """Facebook's 100/1487534: the synchronous request asks for too much, an async report run can do it."""
    return error.code == 100 and error.error_subcode == SUBCODE_TOO_MUCH_DATA


async def start_report_run(ctx: OpContext, query: InsightsQuery) -> str:
    """POST the query to /{object}/insights: an async report run; its id."""
    answer = await ctx.graph.post(f"{query.object_id}/insights", query.params())
    run_id = str(answer.get("report_run_id") or answer.get("id") or "")
    if not run_id:
        raise GraphError(
            "Facebook answered no report_run_id for the async insights report", fix="Start the report again"
        )
    return run_id


REPORT_FAILED = ("Job Failed", "Job Skipped")


async def report_run_status(ctx: OpContext, run_id: str) -> dict:
    """The run's async_status, async_percent_completion and dates."""
    return await ctx.graph.get(check_object_id(run_id, "report_run_id"))


REPORT_ERROR_DOC = (
    "https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/version25.0"
)


def report_failure(run_id: str, status: Mapping[str, Any]) -> GraphError:
    """A failed report run as one clear error. Since v25.0 GET /{report_run_id} carries error_code, error_subcode,
    error_message, error_user_title and error_user_msg on a failed run (REPORT_ERROR_DOC); older answers have only
    async_status, then Meta's documented -2/2490547 "Report Failed" stands in."""
    code = status.get("error_code")
    subcode = status.get("error_subcode")
    title, user_msg, message = status.get("error_user_title"), status.get("error_user_msg"), status.get("error_message")
    reason = user_msg or message or "Generating the report failed"
    text = f"The async insights report {run_id} failed: " + (f"{title}: " if title else "") + str(reason).rstrip(".")
    return GraphError(
        text,
        code=int(code) if isinstance(code, (int, str)) and str(code).lstrip("-").isdigit() else -2,
        error_subcode=int(subcode) if isinstance(subcode, (int, str)) and str(subcode).isdigit() else 2490547,
        user_title=title,
        user_message=user_msg,
        data={"report_run_id": run_id, "async_status": status.get("async_status"), "error_message": message},
        fix="Start the report again later (create_report), with a shorter date range or fewer breakdowns if it repeats",
    )


async def wait_for_report(
    ctx: OpContext,
    run_id: str,
    *,
    timeout: float = REPORT_WAIT_SECONDS,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> dict:
    """Poll a report run with backoff until it completes (progress reported); raises if it fails or times out."""
    label = f"insights report {run_id}"
    started = time.monotonic()
    attempt = 0
    while True:
        status = await report_run_status(ctx, run_id)
        state = str(status.get("async_status") or "")
        percent = int(_int(status.get("async_percent_completion")))
        await report_progress(label, percent if state != "Job Completed" else 100, 100)
        if state == "Job Completed":
            return status
        if state in REPORT_FAILED:
            raise report_failure(run_id, status)
        if time.monotonic() - started > timeout:
            raise GraphError(
                f"The async insights report {run_id} is not done after {timeout:.0f} s ({state}, {percent}%)",
                is_transient=True,
                data={"report_run_id": run_id},
                fix=f"Ask again later with report_status and get_report_results (report_run_id {run_id})",
            )
        await sleep(backoff_delay(attempt, base=POLL_BASE_SECONDS, cap=POLL_CAP_SECONDS))
        attempt += 1


async def _follow(ctx: OpContext, page: Any, state: _FetchState) -> AsyncIterator[list[dict]]:
    visited: set[str] = set()
    while True:
        rows = page.get("data") if isinstance(page, dict) else None
        if not isinstance(rows, list):
            raise GraphError(
                "The insights answer has no 'data' list", fix="Retry; if it repeats, report the fbtrace_id"
            )
        if state.summary is None and isinstance(page.get("summary"), dict):
            state.summary = page["summary"]
        state.pages += 1
        if rows:
            yield rows
        next_url = (page.get("paging") or {}).get("next")
        if not rows or not next_url or next_url in visited:
            return
        visited.add(next_url)
        page = await ctx.graph.get(next_url)


async def _query_pages(
    ctx: OpContext, query: InsightsQuery, state: _FetchState, timeout: float = REPORT_WAIT_SECONDS
) -> AsyncIterator[list[dict]]:
    try:
        first = await ctx.graph.get(f"{query.object_id}/insights", {**query.params(), "limit": SYNC_PAGE_SIZE})
    except FacebookError as error:
        if not is_too_much_data(error):
            raise
        state.report_run_id = await start_report_run(ctx, query)
        await wait_for_report(ctx, state.report_run_id, timeout=timeout)
        first = await ctx.graph.get(f"{state.report_run_id}/insights", {"limit": ASYNC_PAGE_SIZE})
    async for rows in _follow(ctx, first, state):
        yield rows


async def fetch_insights(
    ctx: OpContext,
    object_id: str,
    *,
    level: str | None = None,
    fields: Sequence[str] | None = None,
    date_preset: str | None = None,
    since: str | None = None,
    until: str | None = None,
    time_increment: int | str | None = None,
    breakdowns: Sequence[str] = (),
    filtering: Any = None,
    sort: Sequence[str] | str | None = None,
    summary: bool = False,
    action_breakdowns: Sequence[str] = (),
    attribution_windows: Sequence[str] = (),
    timeout: float = REPORT_WAIT_SECONDS,
) -> InsightsResult:
    """Every row of an insights query; switches to an async report run by itself when Facebook says 1487534."""
    query = build_query(
        object_id,
        level=level,
        fields=fields,
        date_preset=date_preset,
        since=since,
        until=until,
        time_increment=time_increment,
        breakdowns=breakdowns,
        filtering=filtering,
        sort=sort,
        summary=summary,
        action_breakdowns=action_breakdowns,
        attribution_windows=attribution_windows,
        today=await session_today(ctx),
    )
    state = _FetchState()
    rows: list[dict] = []
    async for page in _query_pages(ctx, query, state, timeout):
        rows.extend(page)
    return InsightsResult(
        rows=rows, query=query, summary=state.summary, report_run_id=state.report_run_id, pages=state.pages
    )


async def iter_insights(
    ctx: OpContext,
    object_id: str,
    *,
    timeout: float = REPORT_WAIT_SECONDS,
    _state: _FetchState | None = None,
    **query_args: Any,
) -> AsyncIterator[dict]:
    """The rows of an insights query one at a time, page by page (never all in memory); async by itself on 1487534."""
    query = build_query(object_id, today=await session_today(ctx), **query_args)
    async for page in _query_pages(ctx, query, _state or _FetchState(), timeout):
        for row in page:
            yield row


async def report_rows(
    ctx: OpContext, run_id: str, *, limit: int | None = None, after: str | None = None
) -> tuple[list[dict], str | None]:
    """One page of a completed report run's rows and the cursor of the next page (None at the end)."""
    params: dict[str, Any] = {"limit": min(limit or ASYNC_PAGE_SIZE, ASYNC_PAGE_SIZE)}
    if after:
        params["after"] = after
    page = await ctx.graph.get(f"{check_object_id(run_id, 'report_run_id')}/insights", params)
    rows = page.get("data") if isinstance(page, dict) else None
    if not isinstance(rows, list):
        raise GraphError(
            "The report's rows came back without a 'data' list", fix="Retry; if it repeats, start the report again"
        )
    paging = page.get("paging") or {}
    cursor = (paging.get("cursors") or {}).get("after") if paging.get("next") else None
    return rows, cursor


# ---------------------------------------------------------------------------------------------------------------
# Files: CSV, charts, PDF
# ---------------------------------------------------------------------------------------------------------------

FLAT_COLUMNS = ("link_clicks", "landing_page_views", "leads", "purchases", "purchase_value")


def csv_columns(query: InsightsQuery) -> list[str]:
    """The CSV header for a query: its scalar fields and breakdowns, then the flattened action counts."""
    columns = [f for f in query.fields if f not in LIST_FIELDS] + [b for b in query.breakdowns if b not in query.fields]
    if any(f in query.fields for f in ("actions", "action_values")):
        columns += [c for c in FLAT_COLUMNS if c not in columns]
    return columns


def csv_record(row: Mapping[str, Any], columns: Sequence[str], currency: str) -> list[Any]:
    """One CSV line: scalar values exactly as Facebook sent them; flattened actions as plain numbers."""
    flat: dict[str, Any] | None = None
    out = []
    for column in columns:
        if column in FLAT_COLUMNS and column not in row:
            if flat is None:
                parsed = parse_row(row, currency)
                value = parsed.purchase_value_minor / currency_offset(currency)
                flat = {
                    "link_clicks": parsed.link_clicks,
                    "landing_page_views": parsed.landing_page_views,
                    "leads": parsed.leads,
                    "purchases": parsed.purchases,
                    "purchase_value": f"{value:.{0 if currency_offset(currency) == 1 else 2}f}",
                }
            out.append(flat[column])
        else:
            out.append(row.get(column, ""))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "insights"


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _daily_figure(plt: Any, series: Mapping[str, MetricRow] | Sequence[MetricRow], title: str, currency: str) -> Any:
    days, rows = _series_points(series)
    offset = currency_offset(currency)
    spend = [r.spend_minor / offset for r in rows]
    results = [r.conversions or r.link_clicks for r in rows]
    metrics = [derived(r) for r in rows]
    ctr = [d["ctr"] if d["ctr"] is not None else math.nan for d in metrics]
    cpc = [d["cpc"] / offset if d["cpc"] is not None else math.nan for d in metrics]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=CHART_SIZE_IN, dpi=CHART_DPI, sharex=True)
    figure.suptitle(title)
    positions = list(range(len(days)))
    top.bar(positions, spend, color="#4a7bd0", label=f"spend ({currency})")
    top.set_ylabel(f"spend ({currency})")
    twin = top.twinx()
    twin.plot(positions, results, color="#d0634a", marker="o", label="results")
    twin.set_ylabel("results (conversions, else link clicks)")
    top.legend(loc="upper left")
    twin.legend(loc="upper right")
    bottom.plot(positions, ctr, color="#2f9e62", marker=".", label="CTR %")
    bottom.set_ylabel("CTR %")
    twin2 = bottom.twinx()
    twin2.plot(positions, cpc, color="#8a56c2", marker=".", label=f"CPC ({currency})")
    twin2.set_ylabel(f"CPC ({currency})")
    bottom.legend(loc="upper left")
    twin2.legend(loc="upper right")
    step = max(1, len(days) // 12)
    bottom.set_xticks(positions[::step])
    bottom.set_xticklabels(days[::step], rotation=30, ha="right", fontsize=8)
    figure.subplots_adjust(left=0.07, right=0.91, top=0.92, bottom=0.13, hspace=0.12)
    return figure


def _series_points(series: Mapping[str, MetricRow] | Sequence[MetricRow]) -> tuple[list[str], list[MetricRow]]:
    if isinstance(series, Mapping):
        items = sorted(series.items())
        return [str(k) for k, _ in items], [v for _, v in items]
    ordered = sorted(series, key=lambda r: str(r.dims.get("date_start", "")))
    return [str(r.dims.get("date_start", i)) for i, r in enumerate(ordered)], ordered


def render_chart_png(
    series: Mapping[str, MetricRow] | Sequence[MetricRow], path: str | Path, *, title: str, currency: str
) -> Path:
    """Spend and results per day (top), CTR and CPC trends (bottom): a 1200×700 PNG at 100 dpi."""
    plt = _matplotlib()
    figure = _daily_figure(plt, series, title, currency)
    target = Path(path)
    try:
        figure.savefig(target, format="png", dpi=CHART_DPI)
    finally:
        plt.close(figure)
    return target


def _text_page(plt: Any, title: str, lines: Sequence[str]) -> Any:
    figure = plt.figure(figsize=(8.27, 11.69), dpi=CHART_DPI)
    figure.text(0.08, 0.94, title, fontsize=16, weight="bold", va="top")
    y = 0.89
    for line in lines:
        for piece in _wrap(line, 95):
            figure.text(0.08, y, piece, fontsize=9.5, va="top", family="DejaVu Sans")
            y -= 0.022
            if y < 0.05:
                return figure
    return figure


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, subsequent_indent="    ") or [""]


def _table_page(plt: Any, title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Any:
    figure = plt.figure(figsize=(11.69, 8.27), dpi=CHART_DPI)
    figure.suptitle(title, fontsize=14, weight="bold")
    axes = figure.add_subplot(111)
    axes.axis("off")
    if rows:
        table = axes.table(cellText=[list(r) for r in rows], colLabels=list(header), loc="upper center", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.scale(1, 1.3)
    else:
        axes.text(0.5, 0.5, "No campaign delivered in this period.", ha="center")
    return figure


# An optional section provider for export_report (the automation half plugs its recommendations in here).
ReportSection = Callable[[OpContext, str, str, str], Awaitable["str | Sequence[str] | None"]]
_report_sections: list[ReportSection] = []


def register_report_section(provider: ReportSection) -> None:
    """Let another module add text to export_report: ``async provider(ctx, account_id, since, until) -> lines``."""
    if provider not in _report_sections:
        _report_sections.append(provider)


# ---------------------------------------------------------------------------------------------------------------
# Op arguments
# ---------------------------------------------------------------------------------------------------------------

ObjectArg = Field(
    None, description="Ad account (act_<digits>), campaign, ad set or ad id; default the selected ad account."
)
LevelArg = Field(None, description="Row level: account, campaign, adset or ad (default the object's own level).")
PresetArg = Field(
    None,
    description="Relative period, e.g. last_7d, last_30d (default), yesterday, this_month, maximum. Not with since/until.",
)
SinceArg = Field(
    None, description="First day YYYY-MM-DD (with until), at most 37 months back; days in the ad account's time zone."
)
UntilArg = Field(None, description="Last day YYYY-MM-DD (with since).")
IncrementArg = Field(
    None, description="Rows per time bucket: 1 (daily) to 90 days, 'monthly', or 'all_days' (default)."
)
BreakdownsArg: Any = Field(
    default_factory=list,
    description="Split rows by any of Meta's insights breakdowns, e.g. age, gender, country, "
    "region, dma, publisher_platform, platform_position, impression_device, device_platform, "
    "hourly_stats_aggregated_by_advertiser_time_zone, frequency_value (with reach), product_id, "
    "media_type. Combinations are Meta's documented ones: age+gender; publisher_platform+"
    "platform_position(+impression_device); most others alone.",
)
ActionBreakdownsArg: Any = Field(
    default_factory=list,
    description="Split the actions lists by: action_type (default), action_device, "
    "action_destination, action_target_id, action_reaction, action_video_sound, action_video_type, "
    "action_carousel_card_id/name and Meta's other action breakdowns.",
)
WindowsArg: Any = Field(
    default_factory=list,
    description="Attribution windows to show per action, e.g. ['1d_click', '7d_click', "
    "'28d_click', '1d_view', '1d_ev']; 'value' stays the account's default attribution. 7d_view and "
    "28d_view return no data since 2026-01-12.",
)
FieldsArg = Field(
    None,
    description="Columns (default: ids and names of the level, dates, impressions, reach, clicks, link clicks, "
    "spend, actions, action values, ctr, cpc, cpm).",
)
FilteringArg = Field(
    None,
    description='Only some rows: {"campaign_id": ["123"]}, {"spend": {"GREATER_THAN": 10}}, or Facebook\'s '
    '[{"field": "campaign.id", "operator": "IN", "value": ["123"]}].',
)
SortArg = Field(None, description="Row order, e.g. ['spend_descending'] or 'impressions_ascending'.")
OutDirArg = Field(
    None,
    max_length=1000,
    description=f"Folder inside the workspace's own files folder (relative; default {DEFAULT_OUT_DIR}).",
)


class QueryArgs(OpArgs):
    object_id: str | None = ObjectArg
    level: Level | None = LevelArg
    date_preset: str | None = PresetArg
    since: str | None = SinceArg
    until: str | None = UntilArg
    time_increment: int | str | None = IncrementArg
    breakdowns: list[str] = BreakdownsArg
    action_breakdowns: list[str] = ActionBreakdownsArg
    attribution_windows: list[str] = WindowsArg
    fields: list[str] | None = FieldsArg
    filtering: dict[str, Any] | list[dict[str, Any]] | None = FilteringArg
    sort: list[str] | str | None = SortArg

    async def query(self, ctx: OpContext, *, summary: bool = False) -> InsightsQuery:
        return build_query(
            self.object_id or ctx.require_ad_account(),
            level=self.level,
            fields=self.fields,
            date_preset=self.date_preset,
            since=self.since,
            until=self.until,
            time_increment=self.time_increment,
            breakdowns=self.breakdowns,
            filtering=self.filtering,
            sort=self.sort,
            summary=summary,
            action_breakdowns=self.action_breakdowns,
            attribution_windows=self.attribution_windows,
            today=await session_today(ctx),
        )


async def _currency_of(ctx: OpContext, object_id: str) -> AccountInfo:
    """The ad account an object belongs to (for its currency)."""
    if object_id.startswith("act_"):
        return await ctx.graph.account_info(object_id)
    node = await ctx.graph.get(object_id, {"fields": "account_id"})
    account = node.get("account_id") or ctx.ad_account_id
    if not account:
        raise GraphError(
            f"Facebook did not say which ad account {object_id} belongs to", fix="Pass the ad account id as object_id"
        )
    return await ctx.graph.account_info(str(account))


def _kwargs(query: InsightsQuery) -> dict[str, Any]:
    return {
        "level": query.level,
        "fields": query.fields,
        "date_preset": query.date_preset,
        "since": query.since,
        "until": query.until,
        "time_increment": query.time_increment,
        "breakdowns": query.breakdowns,
        "filtering": list(query.filtering) or None,
        "sort": list(query.sort) or None,
        "summary": query.summary,
        "action_breakdowns": query.action_breakdowns,
        "attribution_windows": query.attribution_windows,
    }


def _how(result: InsightsResult | _FetchState) -> str:
    return f" (async report {result.report_run_id}: too much data for one request)" if result.report_run_id else ""


# ---------------------------------------------------------------------------------------------------------------
# Ops: reading
# ---------------------------------------------------------------------------------------------------------------

# ---- What the ops answer as data (their result models: MCP's outputSchema) ----------------------------------------


class InsightsData(OpData):
    rows: list[InsightsRow] = Field(description="Every row up to 2,000 (truncated says when there were more).")
    row_count: int = Field(description="Rows Facebook answered.")
    truncated: bool = Field(description="More rows than data holds: export_insights writes them all.")
    totals: Metrics
    summary: InsightsObject | None = Field(  # type: ignore[valid-type]
        description="Facebook's summary row (deduplicated reach); null when it sent none."
    )
    currency: str
    params: dict[str, Any] = Field(description="The Graph parameters sent to /insights.")
    report_run_id: str | None = Field(
        description="The async report run used when the data was too much for one request."
    )
    notes: list[str] = Field(description="What was adjusted in the query, and why.")
    attribution_windows: dict[str, dict[str, float]] | None = Field(
        description="With attribution_windows: window (and 'value', the default) -> action type -> count; null otherwise."
    )


class MetricChange(DataRow):
    current: float | None
    previous: float | None
    delta: float | None
    pct_change: float | None = Field(description="Percent change; null when the previous value is zero or unknown.")


class NamedMetrics(Metrics):
    name: str = Field(description="The object's name (its id for an ad account).")


class InsightsComparison(OpData):
    """One object over two periods (object_id, current, previous, comparison), or several side by side (objects)."""

    period: str = Field(description="The period compared (a date preset or since..until).")
    currency: str
    object_id: str = absent_key(description="One object: the object compared.")
    compared_with: str = absent_key(description="One object: the period compared with (since..until).")
    current: Metrics = absent_key(description="One object: the totals of the period.")
    previous: Metrics = absent_key(description="One object: the totals of the period compared with.")
    comparison: dict[str, MetricChange] | None = Field(
        None, description="One object: metric -> change; null when the period had no delivery (nothing to compare)."
    )
    objects: dict[str, NamedMetrics] = absent_key(
        description="Several objects: object id -> its totals over the period."
    )


class GetInsightsArgs(QueryArgs):
    """Performance numbers (spend, impressions, clicks, CTR, CPC, CPM, conversions, ROAS) of an account, campaign, ad set or ad.

    Choose the row level, the period (date_preset or since/until), time buckets, breakdowns, filters and sort.
    The answer has a totals line and the top rows in the account currency; data holds every row (large results are
    summarized: export_insights writes them all to CSV).
    """

    limit: int = Field(10, ge=1, le=200, description="Rows shown in the text (data holds every row up to 2,000).")


@ops.op(
    OpKind.READ,
    group=TaskGroup.INSIGHTS_REPORTS,
    example={"level": "campaign", "date_preset": "last_7d"},
    result=InsightsData,
)
async def get_insights(ctx: OpContext, args: GetInsightsArgs) -> OpResult:
    query = await args.query(ctx, summary=True)
    account = await _currency_of(ctx, query.object_id)
    state = _FetchState()
    aggregate = Aggregator(account.currency)
    kept: list[MetricRow] = []
    by_window: dict[str, dict[str, float]] = {}
    async for page in _query_pages(ctx, query, state):
        for raw in page:
            if query.attribution_windows:
                add_windows(by_window, raw, query.attribution_windows)
            parsed = aggregate.add_raw(raw)
            if len(kept) < DATA_ROWS_CAP:
                kept.append(parsed)
    total = aggregate.total
    if state.summary and "reach" in state.summary:  # Facebook's deduplicated reach beats our upper bound
        total.reach = _int(state.summary.get("reach"))
    head = (
        f"Insights of {query.object_id}{' by ' + query.level if query.level else ''} · {query.period}"
        f"{' · by ' + '+'.join(query.breakdowns) if query.breakdowns else ''}"
        f"{' · ' + query.time_increment + '-day buckets' if query.time_increment and query.time_increment.isdigit() else ''}"
        f" · {aggregate.count:,} row{'s' if aggregate.count != 1 else ''}{_how(state)}"
    )
    if not aggregate.count:
        return OpResult(
            text="\n".join([f"{head}.", *query.notes, "No delivery in this period."]),
            data={
                "rows": [],
                "row_count": 0,
                "truncated": False,
                "totals": total.to_dict(),
                "summary": state.summary,
                "currency": account.currency,
                "params": query.params(),
                "report_run_id": state.report_run_id,
                "notes": list(query.notes),
                "attribution_windows": {} if query.attribution_windows else None,
            },
        )
    shown = sorted(kept, key=lambda r: r.spend_minor, reverse=True)[: args.limit]
    lines = [head + ".", *query.notes, f"Totals ({account.currency}): {summary_line(total)}"]
    if query.attribution_windows:
        lines += windows_line(by_window, query.attribution_windows)
    if aggregate.count > 1 or row_label(shown[0]) != "all":
        lines.append(f"Top {len(shown)} by spend:")
        lines += [f"- {row_label(r)}: {summary_line(r)}" for r in shown]
    if aggregate.count > DATA_ROWS_CAP:
        lines.append(
            f"{aggregate.count:,} rows is more than data holds ({DATA_ROWS_CAP:,}): export_insights writes them all to CSV."
        )
    return OpResult(
        text="\n".join(lines),
        data={
            "rows": [r.to_dict() for r in kept],
            "row_count": aggregate.count,
            "truncated": aggregate.count > DATA_ROWS_CAP,
            "totals": total.to_dict(),
            "summary": state.summary,
            "currency": account.currency,
            "params": query.params(),
            "report_run_id": state.report_run_id,
            "notes": list(query.notes),
            "attribution_windows": {
                w: {k: int(v) if float(v).is_integer() else v for k, v in per.items()} for w, per in by_window.items()
            }
            if query.attribution_windows
            else None,
        },
    )


COMPARED = ("spend_minor", "impressions", "clicks", "link_clicks", "conversions", "ctr", "cpc", "cpm", "cpa", "roas")
LOWER_IS_BETTER = {"cpc", "cpm", "cpa"}


class CompareInsightsArgs(OpArgs):
    """Compare performance: one object over two periods (deltas, % change, arrows) or several objects over one period.

    With one object the second period is the one just before (same length) unless compare_since/compare_until say
    otherwise. With several objects they are shown side by side.
    """

    object_ids: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Objects to compare (act_…, campaign, ad set or ad ids); "
        "default the selected ad account. One object: two periods; several: side by side.",
    )
    date_preset: str | None = PresetArg
    since: str | None = SinceArg
    until: str | None = UntilArg
    compare_since: str | None = Field(
        None, description="First day of the period to compare with (default: the period just before)."
    )
    compare_until: str | None = Field(None, description="Last day of the period to compare with.")


def _comparison(current: MetricRow, previous: MetricRow) -> dict[str, dict]:
    now, then = (
        {**current.metrics(), "conversions": current.conversions, **derived(current)},
        {**previous.metrics(), "conversions": previous.conversions, **derived(previous)},
    )
    out = {}
    for name in COMPARED:
        a, b = now.get(name), then.get(name)
        change = None if a is None or b is None or not b else (a - b) / b * 100
        out[name] = {
            "current": a,
            "previous": b,
            "delta": None if a is None or b is None else a - b,
            "pct_change": change,
        }
    return out


def _arrow(name: str, change: float | None) -> str:
    if change is None:
        return "·"
    if abs(change) < 0.5:
        return "→"
    better = (change < 0) if name in LOWER_IS_BETTER else (change > 0)
    return ("▲" if change > 0 else "▼") + ("" if better else " (worse)")


def _show(name: str, value: float | None, currency: str) -> str:
    if value is None:
        return "-"
    if name in ("spend_minor", "cpc", "cpm", "cpa"):
        return money(value, currency)
    if name == "ctr":
        return f"{value:.2f}%"
    if name == "roas":
        return f"{value:.2f}×"
    return f"{int(value):,}"


async def _period_totals(
    ctx: OpContext, object_id: str, currency: str, **period: Any
) -> tuple[MetricRow, str | None, str | None]:
    query = build_query(
        object_id, fields=("date_start", "date_stop") + BASE_METRICS, today=await session_today(ctx), **period
    )
    total = MetricRow(currency=currency)
    start = stop = None
    async for page in _query_pages(ctx, query, _FetchState()):
        for raw in page:
            total.add(parse_row(raw, currency))
            start = min(filter(None, (start, raw.get("date_start")))) if raw.get("date_start") else start
            stop = max(filter(None, (stop, raw.get("date_stop")))) if raw.get("date_stop") else stop
    return total, start, stop


@ops.op(OpKind.READ, group=TaskGroup.INSIGHTS_REPORTS, example={"date_preset": "last_7d"}, result=InsightsComparison)
async def compare_insights(ctx: OpContext, args: CompareInsightsArgs) -> OpResult:
    objects = [check_object(o) for o in (args.object_ids or [ctx.require_ad_account()])]
    period: dict[str, Any] = {
        "date_preset": args.date_preset or (None if args.since else "last_7d"),
        "since": args.since,
        "until": args.until,
    }
    today = await session_today(ctx)
    build_query(objects[0], today=today, **period)  # every argument checked before any request
    if (args.compare_since is None) != (args.compare_until is None):
        raise _refuse(
            "compare_since and compare_until go together",
            "compare_since",
            fix="Give both, or neither for the period just before",
        )
    if args.compare_since:
        build_query(objects[0], since=args.compare_since, until=args.compare_until, today=today)
    account = await _currency_of(ctx, objects[0])
    currency = account.currency
    if len(objects) == 1:
        current, start, stop = await _period_totals(ctx, objects[0], currency, **period)
        if args.compare_since:
            before = {"since": args.compare_since, "until": args.compare_until}
        else:
            if not start and not args.since:
                label = str(period["date_preset"])  # no since here: the preset asked, else last_7d
                return OpResult(
                    text=f"{objects[0]}: no delivery in {label}; nothing to compare.",
                    data={
                        "object_id": objects[0],
                        "currency": currency,
                        "period": label,
                        "current": current.to_dict(),
                        "comparison": None,
                    },
                )
            first, last = date.fromisoformat(args.since or start or ""), date.fromisoformat(args.until or stop or "")
            length = (last - first).days + 1
            before = {
                "since": (first - timedelta(days=length)).isoformat(),
                "until": (first - timedelta(days=1)).isoformat(),
            }
        previous, _, _ = await _period_totals(ctx, objects[0], currency, **before)
        comparison = _comparison(current, previous)
        label_now = f"{args.since or start}..{args.until or stop}"
        label_then = f"{before['since']}..{before['until']}"
        lines = [f"{objects[0]}: {label_now} vs {label_then} ({currency})"]
        for name, c in comparison.items():
            pct = f"{c['pct_change']:+.1f}%" if c["pct_change"] is not None else "n/a"
            lines.append(
                f"- {name.removesuffix('_minor')}: {_show(name, c['current'], currency)} vs {_show(name, c['previous'], currency)} "
                f"{_arrow(name, c['pct_change'])} {pct}"
            )
        return OpResult(
            text="\n".join(lines),
            data={
                "object_id": objects[0],
                "currency": currency,
                "period": label_now,
                "compared_with": label_then,
                "current": current.to_dict(),
                "previous": previous.to_dict(),
                "comparison": comparison,
            },
        )
    side: dict[str, MetricRow] = {}
    names: dict[str, str] = {}
    for object_id in objects:
        side[object_id], _, _ = await _period_totals(ctx, object_id, currency, **period)
    with_names = (
        await ctx.graph.get_many([o for o in objects if not o.startswith("act_")], "name")
        if any(not o.startswith("act_") for o in objects)
        else {}
    )
    for object_id in objects:
        names[object_id] = (with_names.get(object_id) or {}).get("name") or object_id
    label = args.date_preset or f"{args.since}..{args.until}"
    lines = [f"Side by side, {label} ({currency}):"]
    for object_id, m in side.items():
        lines.append(f"- {names[object_id]} ({object_id}): {summary_line(m)}")
    best = max(side.items(), key=lambda kv: (derived(kv[1])["roas"] or 0, -(derived(kv[1])["cpa"] or math.inf)))
    if best[1].spend_minor:
        lines.append(f"Best ROAS/CPA: {names[best[0]]}.")
    return OpResult(
        text="\n".join(lines),
        data={
            "period": label,
            "currency": currency,
            "objects": {o: {"name": names[o], **m.to_dict()} for o, m in side.items()},
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Ops: async reports
# ---------------------------------------------------------------------------------------------------------------

# ---- What the ops answer as data ------------------------------------------------------------------------------------
# GET /{report_run_id} is sent without fields (Facebook answers its default ones), so any field of Meta's spec may come.
ReportRunObject = graph_object(AdReportRun, sdk_enum_values(AdReportRun.Field), name="ReportRunObject")


class ReportStarted(OpData):
    report_run_id: str
    params: dict[str, Any] = Field(description="The Graph parameters the report was started with.")


class ReportFailure(DataRow):
    code: int
    error_subcode: int
    error_user_title: str | None
    error_user_msg: str | None


class ReportRunStatus(OpData, ReportRunObject):  # type: ignore[misc,valid-type]
    """The report run as Facebook answers it (async_status, async_percent_completion, ...)."""

    model_config = ConfigDict(extra="allow")

    error: ReportFailure = absent_key(description="A failed or skipped run: Facebook's error (absent otherwise).")


class ReportResults(OpData):
    """One page of rows (rows, next_after), or with all=true the CSV of every row (path, row_count, totals)."""

    currency: str
    rows: list[InsightsObject] = absent_key(  # type: ignore[valid-type]
        description="One page: the rows as Facebook sent them."
    )
    next_after: str | None = Field(None, description="One page: the cursor of the next page; null on the last page.")
    path: str = absent_key(description="all=true: the CSV file written.")
    row_count: int = absent_key(description="all=true: the rows written.")
    totals: Metrics = absent_key(description="all=true: the totals of every row.")


class CreateReportArgs(QueryArgs):
    """Start an async insights report (for big reports: many objects, days or breakdowns); answers its report_run_id.

    Follow with report_status, then get_report_results.
    """


@ops.op(
    OpKind.READ,
    group=TaskGroup.INSIGHTS_REPORTS,
    example={"level": "ad", "date_preset": "last_90d", "time_increment": 1},
    result=ReportStarted,
)
async def create_report(ctx: OpContext, args: CreateReportArgs) -> OpResult:
    query = await args.query(ctx)
    run_id = await start_report_run(ctx, query)
    return OpResult(
        text=f"Started async report {run_id} for {query.object_id} · {query.period}. "
        f"Next: report_status with report_run_id {run_id}, then get_report_results."
        + "".join(f"\n{note}" for note in query.notes),
        data={"report_run_id": run_id, "params": query.params()},
    )


class ReportStatusArgs(OpArgs):
    """How far an async insights report is (status and percent)."""

    report_run_id: str = Field(..., description="The id create_report answered.")


@ops.op(OpKind.READ, group=TaskGroup.INSIGHTS_REPORTS, result=ReportRunStatus)
async def report_status(ctx: OpContext, args: ReportStatusArgs) -> OpResult:
    status = await report_run_status(ctx, args.report_run_id)
    state = status.get("async_status")
    percent = _int(status.get("async_percent_completion"))
    if state in REPORT_FAILED:
        failure = report_failure(args.report_run_id, status)
        return OpResult(
            text=f"Report {args.report_run_id}: {state}. {failure.message}. Start it again with create_report.",
            data={
                **status,
                "error": {
                    "code": failure.code,
                    "error_subcode": failure.error_subcode,
                    "error_user_title": status.get("error_user_title"),
                    "error_user_msg": status.get("error_user_msg"),
                },
            },
        )
    nxt = " Next: get_report_results." if state == "Job Completed" else " Ask again in a little while."
    return OpResult(text=f"Report {args.report_run_id}: {state}, {percent}%.{nxt}", data=status)


class GetReportResultsArgs(OpArgs):
    """Rows of a completed async report: one page (limit, after), or all of them to a CSV file (all=true)."""

    report_run_id: str = Field(..., description="The id create_report answered.")
    limit: int = Field(100, ge=1, le=5000, description="Rows in this page (at most 5,000).")
    after: str | None = Field(None, description="Cursor from a previous page's next_after.")
    all: bool = Field(False, description="Write every row to a CSV file instead of one page.")
    out_dir: str | None = OutDirArg

    @model_validator(mode="after")
    def _out_dir_with_all(self) -> GetReportResultsArgs:
        if self.out_dir is not None and not self.all:  # one page is answered, not written: out_dir would be ignored
            raise ValueError("out_dir goes with all=true (only the CSV of every row is written to a file)")
        return self


@ops.op(OpKind.READ, group=TaskGroup.INSIGHTS_REPORTS, result=ReportResults)
async def get_report_results(ctx: OpContext, args: GetReportResultsArgs) -> OpResult:
    status = await report_run_status(ctx, args.report_run_id)
    if status.get("async_status") != "Job Completed":
        raise ValidationError(
            f"Report {args.report_run_id} is not complete ({status.get('async_status')}, "
            f"{_int(status.get('async_percent_completion'))}%)",
            blame_field="report_run_id",
            fix="Wait and check with report_status; then ask for the results",
        )
    account = await ctx.graph.account_info(str(status.get("account_id") or ctx.require_ad_account()))
    if not args.all:
        rows, cursor = await report_rows(ctx, args.report_run_id, limit=args.limit, after=args.after)
        parsed = [parse_row(r, account.currency) for r in rows]
        page_total = totals(parsed, account.currency)
        text = [
            f"Report {args.report_run_id}: {len(rows)} rows in this page ({account.currency}): {summary_line(page_total)}"
        ]
        text += [f"- {row_label(r)}: {summary_line(r)}" for r in parsed[:10]]
        hints = []
        if cursor:
            more, hint = next_page_lines("get_report_results", args, cursor, every="all=true, a CSV of every row,")
            text.append(more)
            hints.append(hint)
        return OpResult(
            text="\n".join(text), hints=hints, data={"rows": rows, "next_after": cursor, "currency": account.currency}
        )
    target = output_file(ctx, args.out_dir, DEFAULT_OUT_DIR, f"report-{args.report_run_id}.csv")
    state = _FetchState()
    first = await ctx.graph.get(f"{args.report_run_id}/insights", {"limit": ASYNC_PAGE_SIZE})
    aggregate = Aggregator(account.currency)
    count = await _write_csv(_rows_of(_follow(ctx, first, state)), target, None, aggregate)
    return OpResult(
        text=f"Report {args.report_run_id}: {count:,} rows written to {target} ({account.currency} totals: "
        f"{summary_line(aggregate.total)}).",
        data={
            "path": str(target),
            "row_count": count,
            "totals": aggregate.total.to_dict(),
            "currency": account.currency,
        },
        files=[str(target)],
    )


async def _rows_of(pages: AsyncIterator[list[dict]]) -> AsyncIterator[dict]:
    async for page in pages:
        for row in page:
            yield row


async def _write_csv(
    rows: AsyncIterator[dict], target: Path, columns: Sequence[str] | None, aggregate: Aggregator
) -> int:
    """Stream rows into a CSV file (header first); with no columns given they come from the first row."""
    count = 0
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        header: list[str] | None = list(columns) if columns else None
        if header:
            writer.writerow(header)
        async for row in rows:
            if header is None:
                header = [k for k in row if k not in LIST_FIELDS]
                if any(k in row for k in ("actions", "action_values")):
                    header += [c for c in FLAT_COLUMNS if c not in header]
                writer.writerow(header)
            writer.writerow(csv_record(row, header, aggregate.currency))
            aggregate.add_raw(row)
            count += 1
        if header is None:
            writer.writerow(list(columns or ()))
    return count


# ---------------------------------------------------------------------------------------------------------------
# Ops: files
# ---------------------------------------------------------------------------------------------------------------

# ---- What the ops answer as data ------------------------------------------------------------------------------------


class InsightsExport(OpData):
    path: str = Field(description="The CSV file written (absolute path).")
    rows: int = Field(description="Rows written.")
    columns: list[str] = Field(description="The CSV's header.")
    totals: Metrics
    currency: str
    report_run_id: str | None = Field(
        description="The async report run used when the data was too much for one request."
    )


class InsightsChart(OpData):
    days: int = Field(description="Days charted (0: no delivery, no file).")
    path: str = absent_key(description="The PNG written (absolute path); absent when there was nothing to chart.")
    totals: Metrics = absent_key(description="The totals of the days charted; absent when there was nothing to chart.")


class PdfReport(OpData):
    path: str = Field(description="The PDF written (absolute path).")
    pages: int
    totals: Metrics
    period: str = Field(description="since..until, or the date preset.")
    campaigns: list[InsightsRow] = Field(
        description="The top campaigns by spend (campaign_id, campaign_name, numbers)."
    )
    section: str = Field(description="The title of the last page: Recommendations or Top movers.")


class ExportInsightsArgs(QueryArgs):
    """Write insights rows to a CSV file (header row, one line per row, numbers unformatted), streamed to disk."""

    out_dir: str | None = OutDirArg
    filename: str | None = Field(
        None, max_length=200, description="File name (default insights-<object>-<level>-<period>.csv)."
    )


@ops.op(
    OpKind.READ,
    group=TaskGroup.INSIGHTS_REPORTS,
    example={"level": "ad", "date_preset": "last_30d", "time_increment": 1},
    result=InsightsExport,
)
async def export_insights(ctx: OpContext, args: ExportInsightsArgs) -> OpResult:
    query = await args.query(ctx)
    account = await _currency_of(ctx, query.object_id)
    name = args.filename or f"insights-{query.object_id}-{query.level or 'own'}-{query.period}.csv"
    target = output_file(ctx, args.out_dir, DEFAULT_OUT_DIR, name if name.lower().endswith(".csv") else name + ".csv")
    state = _FetchState()
    aggregate = Aggregator(account.currency)
    count = await _write_csv(_rows_of(_query_pages(ctx, query, state)), target, csv_columns(query), aggregate)
    return OpResult(
        text=f"Wrote {count:,} rows to {target}{_how(state)}. Totals ({account.currency}): {summary_line(aggregate.total)}.",
        data={
            "path": str(target.resolve()),
            "rows": count,
            "columns": csv_columns(query),
            "totals": aggregate.total.to_dict(),
            "currency": account.currency,
            "report_run_id": state.report_run_id,
        },
        files=[str(target.resolve())],
    )


class ChartInsightsArgs(OpArgs):
    """Draw a PNG chart of one object's days: spend and results per day, CTR and CPC trends (1200×700)."""

    object_id: str | None = ObjectArg
    date_preset: str | None = PresetArg
    since: str | None = SinceArg
    until: str | None = UntilArg
    filtering: dict[str, Any] | list[dict[str, Any]] | None = FilteringArg
    out_dir: str | None = OutDirArg


async def _daily_series(
    ctx: OpContext, query: InsightsQuery, currency: str
) -> tuple[dict[str, MetricRow], _FetchState]:
    series: dict[str, MetricRow] = {}
    state = _FetchState()
    async for page in _query_pages(ctx, query, state):
        for raw in page:
            row = parse_row(raw, currency)
            day = str(raw.get("date_start"))
            series.setdefault(day, MetricRow(currency=currency, dims={"date_start": day})).add(row)
    return series, state


def _daily_query(object_id: str, args: Any, today: date) -> InsightsQuery:
    return build_query(
        object_id,
        fields=("date_start", "date_stop") + BASE_METRICS,
        time_increment=1,
        today=today,
        date_preset=args.date_preset or (None if args.since else "last_30d"),
        since=args.since,
        until=args.until,
        filtering=getattr(args, "filtering", None),
    )


@ops.op(OpKind.READ, group=TaskGroup.INSIGHTS_REPORTS, example={"date_preset": "last_30d"}, result=InsightsChart)
async def chart_insights(ctx: OpContext, args: ChartInsightsArgs) -> OpResult:
    query = _daily_query(args.object_id or ctx.require_ad_account(), args, await session_today(ctx))
    account = await _currency_of(ctx, query.object_id)
    series, _state = await _daily_series(ctx, query, account.currency)
    if not series:
        return OpResult(text=f"{query.object_id}: no delivery in {query.period}; nothing to chart.", data={"days": 0})
    target = output_file(
        ctx, args.out_dir, DEFAULT_OUT_DIR, f"chart-{_slug(query.object_id)}-{_slug(query.period)}.png"
    )
    title = f"{account.name if query.object_id == account.id else query.object_id} · {query.period}"
    await asyncio.to_thread(render_chart_png, series, target, title=title, currency=account.currency)
    total = totals(series.values(), account.currency)
    return OpResult(
        text=f"Chart of {len(series)} days written to {target.resolve()} (1200×700 PNG). Totals: {summary_line(total)}.",
        data={"path": str(target.resolve()), "days": len(series), "totals": total.to_dict()},
        files=[str(target.resolve())],
    )


class ExportReportArgs(OpArgs):
    """Write a PDF report of an ad account: title page with the period and totals, daily charts, top campaigns, recommendations or top movers."""

    ad_account_id: str | None = Field(None, description="Ad account (act_<digits>); default the selected one.")
    date_preset: str | None = PresetArg
    since: str | None = SinceArg
    until: str | None = UntilArg
    top: int = Field(15, ge=1, le=40, description="Campaigns in the table.")
    out_dir: str | None = OutDirArg


async def _campaign_totals(ctx: OpContext, account_id: str, currency: str, **period: Any) -> dict[str, MetricRow]:
    query = build_query(
        account_id,
        level="campaign",
        fields=("campaign_id", "campaign_name") + BASE_METRICS,
        today=await session_today(ctx),
        **period,
    )
    found: dict[str, MetricRow] = {}
    async for page in _query_pages(ctx, query, _FetchState()):
        for raw in page:
            row = parse_row(raw, currency)
            key = str(raw.get("campaign_id"))
            found.setdefault(
                key, MetricRow(currency=currency, dims={"campaign_id": key, "campaign_name": raw.get("campaign_name")})
            ).add(row)
    return found


def _previous_range(start: str, stop: str) -> dict[str, str]:
    first, last = date.fromisoformat(start), date.fromisoformat(stop)
    length = (last - first).days + 1
    return {"since": (first - timedelta(days=length)).isoformat(), "until": (first - timedelta(days=1)).isoformat()}


@ops.op(OpKind.READ, group=TaskGroup.INSIGHTS_REPORTS, example={"date_preset": "last_30d"}, result=PdfReport)
async def export_report(ctx: OpContext, args: ExportReportArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    query = _daily_query(account_id, args, await session_today(ctx))
    account = await ctx.graph.account_info(account_id)
    series, _ = await _daily_series(ctx, query, account.currency)
    period = {"date_preset": query.date_preset, "since": query.since, "until": query.until}
    campaigns = await _campaign_totals(ctx, account_id, account.currency, **period)
    total = totals(series.values(), account.currency)
    days = sorted(series)
    start, stop = (query.since, query.until) if query.since else ((days[0], days[-1]) if days else (None, None))
    section_title, section = "Top movers (campaign spend vs the period before)", []
    provided: list[str] = []
    for provider in _report_sections:
        try:
            lines = await provider(ctx, account_id, start or "", stop or "")
        except FacebookError as error:
            lines = [f"(recommendations unavailable: {error.to_text()})"]
        provided += [lines] if isinstance(lines, str) else list(lines or [])
    if provided:
        section_title, section = "Recommendations", provided
    elif start:
        before = await _campaign_totals(ctx, account_id, account.currency, **_previous_range(start, stop or start))
        movers = []
        for key in set(campaigns) | set(before):
            now, then = campaigns.get(key), before.get(key)
            delta = (now.spend_minor if now else 0) - (then.spend_minor if then else 0)
            row = now or then  # one of the two has the key
            name = (row.dims.get("campaign_name") if row else None) or key
            movers.append((abs(delta), delta, name, key, now, then))
        movers.sort(reverse=True)
        for _, _delta, name, key, now, then in movers[:10]:
            a, b = (now.spend_minor if now else 0), (then.spend_minor if then else 0)
            pct = f"{(a - b) / b * 100:+.0f}%" if b else "new"
            section.append(
                f"{name} ({key}): spend {money(b, account.currency)} → {money(a, account.currency)} ({pct}); "
                f"conversions {(then.conversions if then else 0)} → {(now.conversions if now else 0)}"
            )
    if not section:
        section = ["No movement to report."]
    label = f"{start}..{stop}" if start else query.period
    target = output_file(ctx, args.out_dir, DEFAULT_OUT_DIR, f"report-{_slug(account_id)}-{_slug(label)}.pdf")
    top = sorted(campaigns.values(), key=lambda m: m.spend_minor, reverse=True)[: args.top]
    pages = await asyncio.to_thread(_write_pdf, target, account, label, total, series, top, section_title, section)
    return OpResult(
        text=f"PDF report of {account.name} ({account_id}), {label}, {pages} pages: {target.resolve()}. "
        f"Totals: {summary_line(total)}.",
        data={
            "path": str(target.resolve()),
            "pages": pages,
            "totals": total.to_dict(),
            "period": label,
            "campaigns": [m.to_dict() for m in top],
            "section": section_title,
        },
        files=[str(target.resolve())],
    )


def _write_pdf(
    target: Path,
    account: AccountInfo,
    label: str,
    total: MetricRow,
    series: dict[str, MetricRow],
    campaigns: list[MetricRow],
    section_title: str,
    section: list[str],
) -> int:
    plt = _matplotlib()
    from matplotlib.backends.backend_pdf import PdfPages

    d = derived(total)
    title_lines = [
        f"Ad account: {account.name} ({account.id}) · currency {account.currency}",
        f"Period: {label}",
        "",
        f"Spend: {money(total.spend_minor, account.currency)}",
        f"Impressions: {total.impressions:,}",
        f"Clicks: {total.clicks:,} (CTR {d['ctr'] or 0:.2f}%, CPC {money(d['cpc'], account.currency)})",
        f"Link clicks: {total.link_clicks:,}",
        f"CPM: {money(d['cpm'], account.currency)}",
        f"Purchases: {total.purchases:,} (value {money(total.purchase_value_minor, account.currency)}, "
        f"ROAS {d['roas'] or 0:.2f}×)",
        f"Leads: {total.leads:,}",
        f"CPA: {money(d['cpa'], account.currency)}",
    ]
    header = ("campaign", "spend", "impressions", "clicks", "CTR", "CPC", "conversions", "CPA", "ROAS")
    table = []
    for m in campaigns:
        dm = derived(m)
        table.append(
            (
                str(m.dims.get("campaign_name") or m.dims.get("campaign_id"))[:40],
                money(m.spend_minor, account.currency),
                f"{m.impressions:,}",
                f"{m.clicks:,}",
                f"{dm['ctr']:.2f}%" if dm["ctr"] is not None else "-",
                money(dm["cpc"], account.currency),
                f"{m.conversions:,}",
                money(dm["cpa"], account.currency),
                f"{dm['roas']:.2f}×" if dm["roas"] is not None else "-",
            )
        )
    pages = 0
    with PdfPages(target) as pdf:
        for build in (
            lambda: _text_page(plt, "Ad Monster performance report", title_lines),
            (lambda: _daily_figure(plt, series, f"{account.name} · daily", account.currency)) if series else None,
            lambda: _table_page(plt, "Top campaigns by spend", header, table),
            lambda: _text_page(plt, section_title, section),
        ):
            if build is None:
                continue
            figure = build()
            pdf.savefig(figure)
            plt.close(figure)
            pages += 1
    return pages


# ---------------------------------------------------------------------------------------------------------------
# Ops: recommendations
# ---------------------------------------------------------------------------------------------------------------

MIN_IMPRESSIONS_FOR_CTR = 1000
LOW_CTR_SHARE = 0.5  # an ad's CTR under half the account median is low
CPC_RISE_PCT = 25.0
MIN_CLICKS_FOR_CPC = 20
FATIGUE_FREQUENCY = 3.0
BUDGET_LIMITED_SHARE = 0.95
# A budget-limited "winner" must beat the median CPA/ROAS clearly: by WINNER_MARGIN_PCT and by WINNER_Z standard
# errors. Conversions are counts, so with n of them a CPA is uncertain by about 1/√n (a ROAS more: order values
# vary, coefficient of variation ORDER_VALUE_CV), and the median is about as noisy; without this, one of three
# equal ad sets beats the median by 10–25 % from noise alone every other week, which is no reason to raise its budget.
WINNER_MARGIN_PCT = 20.0
WINNER_Z = 2.5
ORDER_VALUE_CV = 0.66
UNDERSPEND_SHARE = 0.5
LEARNING_RESULTS = 50
SCALE_STEP_PCT = 20
ISSUE_STATUSES = ("WITH_ISSUES", "DISAPPROVED")


# ---- What the op answers as data ----------------------------------------------------------------------------------


class RecommendedAction(DataRow):
    op: str = Field(description="The op that acts on the recommendation.")
    args: dict[str, Any] = Field(description="Its arguments.")


class RecommendationRow(DataRow):
    rule: str = Field(
        description="The rule that fired: low_ctr, cpc_rising, creative_fatigue, budget_limited_winner, "
        "underspending, learning_phase or ad_issues."
    )
    object_id: str
    object_name: str
    reason: str = Field(description="Why, with the numbers behind it.")
    action: RecommendedAction | None = Field(description="The op call that acts on it; null when it is advice only.")
    severity: str = Field(description="info, opportunity, warning or critical.")


class Recommendations(OpData):
    account_id: str = Field(description="The ad account (act_<digits>).")
    currency: str
    latest_day: str | None = Field(description="The last day with data (YYYY-MM-DD); null when there was none.")
    recommendations: list[RecommendationRow]


class RecommendationsArgs(OpArgs):
    """Rule-based advice for an ad account with the numbers behind each: low CTR, rising CPC, creative fatigue,
    budget-limited winners to scale, underspending, learning phase, ads with issues; each names the op call that acts on it."""

    ad_account_id: str | None = Field(None, description="Ad account (act_<digits>); default the selected one.")
    campaign_id: str | None = Field(None, description="Only this campaign's ad sets and ads.")


@dataclass
class Recommendation:
    rule: str
    object_id: str
    object_name: str
    reason: str
    op: str | None
    args: dict[str, Any]
    severity: str = "info"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "object_id": self.object_id,
            "object_name": self.object_name,
            "reason": self.reason,
            "action": {"op": self.op, "args": self.args} if self.op else None,
            "severity": self.severity,
        }


@dataclass
class _AdStats:
    recent: MetricRow
    earlier: MetricRow
    dims: dict


async def collect_ad_days(
    ctx: OpContext, account_id: str, currency: str, filtering: Any = None
) -> tuple[dict[str, _AdStats], dict[str, dict[str, MetricRow]], str | None]:
    """Ad-level daily rows of the last 14 days, folded per ad into the last 7 days and the 7 before, and per ad set per day."""
    days_by_ad: dict[str, dict[str, MetricRow]] = {}
    dims: dict[str, dict] = {}
    fields = ("ad_id", "ad_name", "adset_id", "campaign_id", "date_start") + BASE_METRICS
    async for raw in iter_insights(
        ctx, account_id, level="ad", fields=fields, date_preset="last_14d", time_increment=1, filtering=filtering
    ):
        ad_id = str(raw.get("ad_id"))
        dims.setdefault(ad_id, {k: raw.get(k) for k in ("ad_id", "ad_name", "adset_id", "campaign_id")})
        day = str(raw.get("date_start"))
        days_by_ad.setdefault(ad_id, {}).setdefault(day, MetricRow(currency=currency)).add(parse_row(raw, currency))
    latest = max((d for days in days_by_ad.values() for d in days), default=None)
    stats: dict[str, _AdStats] = {}
    if latest:
        split = (date.fromisoformat(latest) - timedelta(days=6)).isoformat()
        for ad_id, days in days_by_ad.items():
            recent = totals((m for d, m in days.items() if d >= split), currency)
            earlier = totals((m for d, m in days.items() if d < split), currency)
            stats[ad_id] = _AdStats(recent, earlier, dims[ad_id])
    return stats, days_by_ad, latest


def _median(values: Iterable[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return statistics.median(numbers) if numbers else None


@ops.op(OpKind.READ, group=TaskGroup.INSIGHTS_REPORTS, result=Recommendations)
async def recommendations(ctx: OpContext, args: RecommendationsArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    if args.campaign_id:  # read first: a campaign this user cannot see is Facebook's error, never an empty answer
        campaign = await ctx.graph.get(check_object_id(args.campaign_id, "campaign_id"), {"fields": "id,account_id"})
        owner = f"act_{campaign.get('account_id')}" if campaign.get("account_id") else account_id
        if args.ad_account_id is None:
            account_id = owner
        elif owner != account_id:
            raise ValidationError(
                f"Campaign {args.campaign_id} is not in ad account {account_id}",
                fix=f"Leave ad_account_id out (the campaign's account is {owner})",
                blame_field="campaign_id",
            )
    account = await ctx.graph.account_info(account_id)
    currency = account.currency
    filtering = {"campaign_id": [check_object_id(args.campaign_id, "campaign_id")]} if args.campaign_id else None
    stats, days_by_ad, latest = await collect_ad_days(ctx, account_id, currency, filtering)
    reach_7d: dict[str, MetricRow] = {}
    async for raw in iter_insights(
        ctx,
        account_id,
        level="ad",
        fields=("ad_id", "impressions", "reach"),
        date_preset="last_7d",
        filtering=filtering,
    ):
        reach_7d[str(raw.get("ad_id"))] = parse_row(raw, currency)
    where = (
        {"filtering": json.dumps([{"field": "campaign.id", "operator": "EQUAL", "value": args.campaign_id}])}
        if args.campaign_id
        else {}
    )
    adsets = await ctx.graph.get_all(
        f"{account_id}/adsets",
        {
            "fields": "id,name,campaign_id,daily_budget,lifetime_budget,"
            "effective_status,optimization_goal,updated_time,created_time",
            **where,
        },
    )
    campaigns = await ctx.graph.get_all(
        f"{account_id}/campaigns", {"fields": "id,name,daily_budget,effective_status", **where}
    )
    ads = await ctx.graph.get_all(
        f"{account_id}/ads", {"fields": "id,name,adset_id,campaign_id,effective_status,issues_info", **where}
    )
    found = evaluate_rules(account, stats, days_by_ad, latest, reach_7d, adsets, campaigns, ads)
    if not found:
        text = f"No recommendations for {account.name} ({account_id}): nothing crossed a rule in the last 14 days."
    else:
        text = "\n".join(
            [
                f"{len(found)} recommendation{'s' if len(found) != 1 else ''} for {account.name} ({account_id}), "
                f"last 7 days vs the 7 before (up to {latest}):"
            ]
            + [
                f"- [{r.rule}] {r.object_name} ({r.object_id}): {r.reason}"
                + (f" → {r.op} {json.dumps(r.args)}" if r.op else "")
                for r in found
            ]
        )
        if any(r.rule == "budget_limited_winner" for r in found):
            text += (
                "\nBudget raises go through the safety gate: over the workspace guardrails (max_daily_budget, "
                "max_budget_increase_pct) they ask for confirmation first."
            )
    return OpResult(
        text=text,
        data={
            "account_id": account_id,
            "currency": currency,
            "latest_day": latest,
            "recommendations": [r.to_dict() for r in found],
        },
    )


def _clearly_better(ratio: float, count: int, value_cv: float = 0.0) -> bool:
    """`ratio` (> 1: better than the median) is more than noise for a figure built on `count` conversions: at
    least WINNER_MARGIN_PCT better and WINNER_Z standard errors of a difference of two such figures away."""
    if count <= 0 or ratio < 1 + WINNER_MARGIN_PCT / 100:
        return False
    return math.log(ratio) * math.sqrt(count / (2 * (1 + value_cv * value_cv))) >= WINNER_Z


def evaluate_rules(
    account: AccountInfo,
    stats: Mapping[str, _AdStats],
    days_by_ad: Mapping[str, Mapping[str, MetricRow]],
    latest: str | None,
    reach_7d: Mapping[str, MetricRow],
    adsets: Sequence[dict],
    campaigns: Sequence[dict],
    ads: Sequence[dict],
) -> list[Recommendation]:
    """Every rule over the numbers already read (pure: no requests)."""
    currency = account.currency
    out: list[Recommendation] = []
    name_of = {str(a.get("id")): a.get("name") or str(a.get("id")) for a in [*ads, *adsets, *campaigns]}
    for ad_id, s in stats.items():
        name_of.setdefault(ad_id, s.dims.get("ad_name") or ad_id)

    # CTR low vs the account median (per ad, last 7 days).
    ctrs = {a: derived(s.recent)["ctr"] for a, s in stats.items() if s.recent.impressions >= MIN_IMPRESSIONS_FOR_CTR}
    median_ctr = _median(ctrs.values())
    if median_ctr and len(ctrs) >= 2:
        for ad_id, ctr in ctrs.items():
            if ctr is not None and ctr < median_ctr * LOW_CTR_SHARE:
                out.append(
                    Recommendation(
                        "low_ctr",
                        ad_id,
                        name_of[ad_id],
                        f"CTR {ctr:.2f}% over {stats[ad_id].recent.impressions:,} "
                        f"impressions is under half the account median {median_ctr:.2f}%: pause it or change its creative",
                        "pause_ad",
                        {"ad_id": ad_id},
                        "warning",
                    )
                )

    # CPC rising: last 7 days vs the 7 before.
    for ad_id, s in stats.items():
        if s.recent.clicks < MIN_CLICKS_FOR_CPC or s.earlier.clicks < MIN_CLICKS_FOR_CPC:
            continue
        now, then = derived(s.recent)["cpc"], derived(s.earlier)["cpc"]
        if now and then and (now - then) / then * 100 >= CPC_RISE_PCT:
            out.append(
                Recommendation(
                    "cpc_rising",
                    ad_id,
                    name_of[ad_id],
                    f"CPC rose {(now - then) / then * 100:.0f}% "
                    f"({money(then, currency)} → {money(now, currency)}, last 7 days vs the 7 before): see where it got "
                    "dearer by placement",
                    "get_insights",
                    {
                        "object_id": ad_id,
                        "date_preset": "last_14d",
                        "time_increment": 7,
                        "breakdowns": ["publisher_platform", "platform_position"],
                    },
                    "warning",
                )
            )

    # Frequency over 3 in the last 7 days: creative fatigue.
    for ad_id, m in reach_7d.items():
        frequency = derived(m)["frequency"]
        if frequency is not None and frequency > FATIGUE_FREQUENCY:
            out.append(
                Recommendation(
                    "creative_fatigue",
                    ad_id,
                    name_of.get(ad_id, ad_id),
                    f"frequency {frequency:.1f} "
                    f"({m.impressions:,} impressions to {m.reach:,} people in 7 days) is over {FATIGUE_FREQUENCY:.0f}: "
                    "the audience has seen it often; refresh the creative or pause the ad",
                    "pause_ad",
                    {"ad_id": ad_id},
                    "warning",
                )
            )

    # Budgets: per budget holder (the campaign with a campaign budget, else the ad set), last 7 days of its ads.
    adset_recent: dict[str, MetricRow] = {}
    adset_days: dict[str, set[str]] = {}
    adset_since_edit: dict[str, MetricRow] = {}
    edits = {str(a["id"]): str(a.get("updated_time") or a.get("created_time") or "")[:10] for a in adsets}
    split = (date.fromisoformat(latest) - timedelta(days=6)).isoformat() if latest else None
    for ad_id, s in stats.items():
        adset_id = str(s.dims.get("adset_id"))
        adset_recent.setdefault(adset_id, MetricRow(currency=currency)).add(s.recent)
        for day, m in days_by_ad.get(ad_id, {}).items():
            if split and day >= split and m.impressions:
                adset_days.setdefault(adset_id, set()).add(day)
            if split and day >= max(split, edits.get(adset_id, "")):
                adset_since_edit.setdefault(adset_id, MetricRow(currency=currency)).add(m)
    campaign_budget = {str(c["id"]): _int(c.get("daily_budget")) for c in campaigns if _int(c.get("daily_budget"))}
    holders: dict[tuple[str, str], tuple[int, MetricRow, int, str]] = {}
    for adset in adsets:
        adset_id = str(adset["id"])
        if adset.get("effective_status") != "ACTIVE" or adset_id not in adset_recent:
            continue
        campaign_id = str(adset.get("campaign_id"))
        days = len(adset_days.get(adset_id, ())) or 1
        if campaign_id in campaign_budget:
            key = ("campaign", campaign_id)
            budget, total, seen_days, goal = holders.get(
                key, (campaign_budget[campaign_id], MetricRow(currency=currency), 0, "")
            )
            holders[key] = (
                budget,
                total.add(adset_recent[adset_id]),
                max(seen_days, days),
                adset.get("optimization_goal") or goal,
            )
        elif _int(adset.get("daily_budget")):
            holders[("adset", adset_id)] = (
                _int(adset.get("daily_budget")),
                MetricRow(currency=currency).add(adset_recent[adset_id]),
                days,
                adset.get("optimization_goal") or "",
            )
    cpas = [derived(m)["cpa"] for _, m, _, _ in holders.values() if derived(m)["cpa"] is not None]
    roases = [derived(m)["roas"] for _, m, _, _ in holders.values() if derived(m)["roas"] is not None]
    median_cpa, median_roas = _median(cpas), _median(roases)
    for (kind, holder_id), (budget, m, days, _goal) in holders.items():
        share = m.spend_minor / (budget * days)
        d = derived(m)
        name = name_of.get(holder_id, holder_id)
        spent = f"spent {money(m.spend_minor, currency)} of {money(budget * days, currency)} ({share:.0%}) over {days} day{'s' if days != 1 else ''}"
        better = []
        if d["cpa"] and median_cpa and _clearly_better(median_cpa / d["cpa"], m.conversions):
            better.append(
                f"CPA {money(d['cpa'], currency)} beats the median {money(median_cpa, currency)} "
                f"by {(median_cpa - d['cpa']) / median_cpa:.0%} ({m.conversions:,} conversions)"
            )
        if d["roas"] and median_roas and _clearly_better(d["roas"] / median_roas, m.purchases, ORDER_VALUE_CV):
            better.append(
                f"ROAS {d['roas']:.2f}× beats the median {median_roas:.2f}× by "
                f"{(d['roas'] - median_roas) / median_roas:.0%} ({counted(m.purchases, 'purchase')})"
            )
        if share >= BUDGET_LIMITED_SHARE and better:
            new_budget = int(math.ceil(budget * (100 + SCALE_STEP_PCT) / 100))
            op = "update_campaign" if kind == "campaign" else "update_adset"
            out.append(
                Recommendation(
                    "budget_limited_winner",
                    holder_id,
                    name,
                    f"{spent} with {' and '.join(better)}: raise the daily budget {SCALE_STEP_PCT}% "
                    f"({money(budget, currency)} → {money(new_budget, currency)}), within the workspace guardrails",
                    op,
                    {f"{kind}_id": holder_id, "daily_budget": new_budget},
                    "opportunity",
                )
            )
        elif share < UNDERSPEND_SHARE:
            spend_per_day = m.spend_minor / days
            out.append(
                Recommendation(
                    "underspending",
                    holder_id,
                    name,
                    f"{spent}: delivery is limited by audience or bid, not budget; broaden targeting or "
                    f"lower the budget to what it spends (about {money(spend_per_day, currency)}/day)",
                    "get_adset" if kind == "adset" else "get_campaign",
                    {f"{kind}_id": holder_id},
                    "info",
                )
            )

    # Learning phase: fewer than 50 results in the 7 days since the last significant edit.
    for adset in adsets:
        adset_id = str(adset["id"])
        if adset.get("effective_status") != "ACTIVE" or adset_id not in adset_recent:
            continue
        since_edit = adset_since_edit.get(adset_id, MetricRow(currency=currency))
        adset_goal = adset.get("optimization_goal")
        results = results_of(since_edit, adset_goal)
        if results < LEARNING_RESULTS:
            edit = edits.get(adset_id) or "?"
            cost = _ratio(since_edit.spend_minor, results)
            budget = _int(adset.get("daily_budget"))
            action_args: dict[str, Any] = {"adset_id": adset_id}
            advice = "avoid edits until it exits learning"
            if cost and budget and str(adset.get("campaign_id")) not in campaign_budget:
                needed = int(math.ceil(cost * LEARNING_RESULTS / 7))
                if needed > budget:
                    action_args["daily_budget"] = needed
                    advice += f"; {money(needed, currency)}/day would buy about {LEARNING_RESULTS} results a week at {money(cost, currency)} each"
            out.append(
                Recommendation(
                    "learning_phase",
                    adset_id,
                    name_of.get(adset_id, adset_id),
                    f"{results} {str(adset_goal or 'results').lower()} results since the last significant edit ({edit}), "
                    f"under the {LEARNING_RESULTS} in 7 days that end the learning phase: {advice}",
                    "update_adset" if "daily_budget" in action_args else "get_adset",
                    action_args,
                    "info",
                )
            )

    # Ads with issues.
    for ad in ads:
        status = ad.get("effective_status")
        if status in ISSUE_STATUSES:
            issues = ad.get("issues_info") or []
            summary = (
                "; ".join(
                    str(i.get("error_summary") or i.get("error_message") or "")
                    for i in issues
                    if isinstance(i, Mapping)
                )
                or status
            )
            out.append(
                Recommendation(
                    "ad_issues",
                    str(ad["id"]),
                    ad.get("name") or str(ad["id"]),
                    f"{status}: {summary}; read Facebook's reasons, then fix the creative with update_ad",
                    "get_ad",
                    {"ad_id": str(ad["id"])},
                    "critical",
                )
            )
    order = {"critical": 0, "warning": 1, "opportunity": 2, "info": 3}
    out.sort(key=lambda r: order.get(r.severity, 9))
    return out


# ===============================================================================================================
# Automation: alerts, snapshots, weekly and spend reports, billing guard
# ===============================================================================================================

Metric = Literal["spend", "cpc", "cpm", "ctr", "cpa", "roas", "frequency", "impressions", "results"]
Operator = Literal[">", ">=", "<", "<="]
Window = Literal["today", "yesterday", "last_3d", "last_7d"]
Action = Literal["notify", "pause", "scale"]
MONEY_METRICS = frozenset({"spend", "cpc", "cpm", "cpa"})
COUNT_METRICS = frozenset({"impressions", "results"})
BILLING_PROBLEMS = {3: "UNSETTLED", 8: "PENDING_SETTLEMENT", 9: "IN_GRACE_PERIOD"}
FEE_SETTING = "agency_fee_pct"
ROW_FIELDS = (
    "account_id",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "date_start",
    "date_stop",
) + tuple(BASE_METRICS)
OPERATORS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
PAUSE_OPS = {"campaign": "pause_campaign", "adset": "pause_adset", "ad": "pause_ad"}
UPDATE_OPS = {"campaign": "update_campaign", "adset": "update_adset"}
LEVEL_LABELS = {"account": "ad account", "campaign": "campaign", "adset": "ad set", "ad": "ad"}
SpendPreset = Literal[
    "today",
    "yesterday",
    "last_3d",
    "last_7d",
    "last_14d",
    "last_28d",
    "last_30d",
    "this_month",
    "last_month",
    "this_week_mon_today",
    "last_week_mon_sun",
]


# ---------------------------------------------------------------------------------------------------------------
# Metrics from insights rows
# ---------------------------------------------------------------------------------------------------------------


def _value(m: MetricRow, metric: str) -> float | None:
    """One metric for rules and reports: money in minor units, ctr in percent; None where it is undefined."""
    if metric == "spend":
        return float(m.spend_minor)
    if metric == "impressions":
        return float(m.impressions)
    if metric == "results":
        return float(results_of(m))
    if metric == "cpa":  # cost per result, for the same results the reports show
        results = results_of(m)
        return m.spend_minor / results if results else None
    if metric == "roas" and not m.purchase_value_minor:
        return None  # no purchase values: ROAS is undefined, not zero
    return derived(m)[metric]


def _from_snapshot(metrics: dict[str, Any], currency: str) -> MetricRow:
    counts: dict[str, Any] = {k: int(metrics.get(k) or 0) for k in METRIC_NAMES}
    return MetricRow(**counts, currency=currency)


async def _insight_rows(
    ctx: OpContext,
    object_id: str,
    *,
    level: str,
    date_preset: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    period: dict[str, Any] = (
        {"since": since, "until": until} if since and until else {"date_preset": date_preset or "yesterday"}
    )
    result = await fetch_insights(ctx, object_id, level=level, fields=ROW_FIELDS, **period)
    return result.rows


async def _account_of(ctx: OpContext, object_id: str, level: str) -> AccountInfo:
    if level == "account":
        return await ctx.graph.account_info(object_id)
    obj = await ctx.graph.get(object_id, {"fields": "id,account_id"})
    return await ctx.graph.account_info(f"act_{obj['account_id']}")


async def _yesterday(ctx: OpContext, account: AccountInfo) -> date:
    """Yesterday in the ad account's time zone (Facebook's days are the account's)."""
    now = await ctx.now()
    zone = ZoneInfo(account.timezone_name) if account.timezone_name else UTC
    return now.astimezone(zone).date() - timedelta(days=1)


async def _accounts(ctx: OpContext, explicit: str | None) -> list[AccountInfo]:
    """The account asked for, else every ad account the token can see."""
    if explicit:
        return [await ctx.graph.account_info(normalize_ad_account_id(explicit))]
    listed = await ctx.graph.get_all("me/adaccounts", {"fields": "id"})
    return [await ctx.graph.account_info(a["id"]) for a in listed]


def _records(ctx: OpContext):
    if ctx.records is None:
        raise ValidationError(
            "This op keeps records and needs a workspace session",
            fix="Call it through Ad Monster (chat, MCP, API or a job), not as a bare handler",
        )
    return ctx.records


def _show_metric(metric: str, value: float | None, currency: str | None) -> str:
    if value is None:
        return "n/a"
    if metric in MONEY_METRICS and currency:
        return format_money(round(value), currency)
    if metric == "ctr":
        return f"{value:.2f}%"
    if metric in ("roas", "frequency"):
        return f"{value:.2f}"
    return f"{int(value):,}"


# ---------------------------------------------------------------------------------------------------------------
# Alert rules
# ---------------------------------------------------------------------------------------------------------------

# ---- What the ops answer as data ------------------------------------------------------------------------------------


class AlertRule(DataRow):
    """An alert rule (AlertRuleRecord). Money thresholds and max_budget are minor units of currency."""

    id: int
    name: str
    object_id: str
    level: Level
    metric: Metric
    operator: Operator
    threshold: float
    window: Window
    action: Action
    cooldown_hours: float
    ad_account_id: str | None
    currency: str | None
    scale_pct: int | None = Field(
        description="action scale: the percent a firing raises the daily budget by; null otherwise."
    )
    max_budget: int | None = Field(
        description="action scale: the daily budget it never passes (minor units); null otherwise."
    )
    enabled: bool
    last_fired_at: str | None = Field(description="When it last acted (ISO 8601, UTC); null if never.")


class AlertCreated(OpData):
    alert: AlertRule
    currency: str


class AlertList(OpData):
    alerts: list[AlertRule]


class AlertDeleted(OpData):
    deleted: AlertRule


class CreateAlertArgs(OpArgs):
    """Create an alert rule: when a metric of a campaign, ad set, ad or account crosses a threshold, notify, pause or scale.

    Money thresholds (spend, cpc, cpm, cpa) and max_budget are in minor units of the account currency (cents for USD,
    yen for JPY); ctr is a percent (1.5 = 1.5%); roas and frequency are ratios. Rules are checked hourly; a rule acts
    at most once per cooldown. scale raises the daily budget by scale_pct, never past max_budget nor the workspace
    guardrails (max_daily_budget, max_budget_increase_pct).
    """

    name: str = Field(..., min_length=1, max_length=200, description="A short unique name, e.g. 'CPA over $20'.")
    object_id: str = Field(..., description="The campaign, ad set or ad id, or act_<id> for a whole ad account.")
    level: Level = Field("campaign", description="What object_id is: account, campaign, adset or ad.")
    metric: Metric = Field(
        ..., description="spend, cpc, cpm, cpa (minor units), ctr (percent), roas, frequency, impressions or results."
    )
    operator: Operator = Field(..., description="How the metric compares to the threshold: >, >=, < or <=.")
    threshold: float = Field(..., ge=0, description="The threshold; money in minor units (2000 = $20.00, or ¥2,000).")
    window: Window = Field("today", description="The period the metric covers: today, yesterday, last_3d or last_7d.")
    action: Action = Field(
        "notify", description="notify (chat, email, webhook), pause the object, or scale its daily budget."
    )
    scale_pct: int | None = Field(None, ge=1, le=100, description="For scale: raise the daily budget by this percent.")
    max_budget: int | None = Field(
        None,
        json_schema_extra=MONEY_UNIT,
        gt=0,
        description="For scale (required): never raise the daily budget past this, in minor units.",
    )
    cooldown_hours: float = Field(24, gt=0, le=720, description="After acting, wait this long before acting again.")

    @model_validator(mode="after")
    def _action_needs(self) -> CreateAlertArgs:
        if self.action == "scale" and (self.scale_pct is None or self.max_budget is None):
            raise ValueError("action scale needs scale_pct and max_budget (the cap the budget never passes)")
        if self.action != "scale" and (self.scale_pct is not None or self.max_budget is not None):
            raise ValueError("scale_pct and max_budget apply only to action scale")
        if self.action == "pause" and self.level == "account":
            raise ValueError("an ad account cannot be paused; use level campaign, adset or ad")
        if self.action == "scale" and self.level not in ("campaign", "adset"):
            raise ValueError("only campaigns and ad sets have budgets to scale")
        if self.metric in MONEY_METRICS | COUNT_METRICS and self.threshold != int(self.threshold):
            raise ValueError(
                f"{self.metric} thresholds are whole numbers ({'minor units' if self.metric in MONEY_METRICS else 'a count'})"
            )
        return self


def _rule_line(rule: AlertRuleRecord) -> str:
    what = (
        f"{rule.metric} {rule.operator} {_show_metric(rule.metric, rule.threshold, rule.currency)} over {rule.window}"
    )
    action = rule.action
    if rule.action == "scale":
        action = f"scale +{rule.scale_pct}% up to {format_money(rule.max_budget, rule.currency) if rule.currency and rule.max_budget is not None else rule.max_budget}"
    fired = f", last fired {rule.last_fired_at:%Y-%m-%d %H:%M} UTC" if rule.last_fired_at else ""
    state = "" if rule.enabled else " (disabled)"
    return (
        f"#{rule.id} {rule.name}: {LEVEL_LABELS[rule.level]} {rule.object_id}: {what} → {action}, "
        f"cooldown {rule.cooldown_hours:g}h{fired}{state}"
    )


def _rule_data(rule: AlertRuleRecord) -> dict[str, Any]:
    data = asdict(rule)
    data["last_fired_at"] = rule.last_fired_at.isoformat() if rule.last_fired_at else None
    return data


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUTOMATION,
    example={
        "name": "CPA over $20",
        "object_id": "120210000000000003",
        "level": "campaign",
        "metric": "cpa",
        "operator": ">",
        "threshold": 2000,
        "window": "today",
        "action": "pause",
    },
    result=AlertCreated,
)
async def create_alert(ctx: OpContext, args: CreateAlertArgs) -> WritePlan:
    records = _records(ctx)
    object_id = (
        normalize_ad_account_id(args.object_id)
        if args.level == "account"
        else check_object_id(args.object_id, "object_id")
    )
    account = await _account_of(ctx, object_id, args.level)
    if args.action == "scale":
        obj = await ctx.graph.get(object_id, {"fields": "id,name,daily_budget"})
        if not obj.get("daily_budget"):
            raise ValidationError(
                f"{LEVEL_LABELS[args.level].capitalize()} {obj.get('name', '')} ({object_id}) has no daily budget to scale",
                fix="Scale the object that holds the daily budget (the campaign with campaign budget, else its ad sets)",
                blame_field="object_id",
            )
    rule = AlertRuleRecord(
        id=0,
        name=args.name.strip(),
        object_id=object_id,
        level=args.level,
        metric=args.metric,
        operator=args.operator,
        threshold=args.threshold,
        window=args.window,
        action=args.action,
        cooldown_hours=args.cooldown_hours,
        ad_account_id=account.id,
        currency=account.currency,
        scale_pct=args.scale_pct,
        max_budget=args.max_budget,
    )
    described = _rule_line(rule).split(": ", 1)[1]

    async def execute() -> OpResult:
        saved = await records.add_alert(rule)
        return OpResult(
            text=f"Alert #{saved.id} {saved.name} created: {described}. Checked hourly; amounts in {account.currency}.",
            data={"alert": _rule_data(saved), "currency": account.currency},
        )

    return WritePlan(
        summary=f"create alert {rule.name}: {described}",
        ad_account_id=account.id,
        requests=[],
        changes=[],
        execute=execute,
        currency=account.currency,
    )


class ListAlertsArgs(OpArgs):
    """List the alert rules: what each watches, its threshold and action, its cooldown and when it last fired."""


@ops.op(OpKind.READ, group=TaskGroup.AUTOMATION, result=AlertList)
async def list_alerts(ctx: OpContext, args: ListAlertsArgs) -> OpResult:
    rules = await _records(ctx).alerts()
    if not rules:
        return OpResult(
            text="No alert rules yet. Create one with create_alert (e.g. pause a campaign when its CPA passes a limit).",
            data={"alerts": []},
        )
    return OpResult(
        text="\n".join([f"Alert rules ({len(rules)}):"] + [f"  {_rule_line(r)}" for r in rules]),
        data={"alerts": [_rule_data(r) for r in rules]},
    )


class DeleteAlertArgs(OpArgs):
    """Delete an alert rule by its id (list_alerts shows them)."""

    alert_id: int = Field(..., ge=1, description="The rule's id, e.g. 3 for #3.")


@ops.op(OpKind.WRITE, group=TaskGroup.AUTOMATION, destructive=True, idempotent=True, result=AlertDeleted)
async def delete_alert(ctx: OpContext, args: DeleteAlertArgs) -> WritePlan:
    records = _records(ctx)
    rule = next((r for r in await records.alerts() if r.id == args.alert_id), None)
    if rule is None:
        raise ValidationError(
            f"Alert #{args.alert_id} does not exist", fix="Run list_alerts to see the rule ids", blame_field="alert_id"
        )

    async def execute() -> OpResult:
        await records.delete_alert(rule.id)
        return OpResult(text=f"Deleted alert #{rule.id} {rule.name}.", data={"deleted": _rule_data(rule)})

    return WritePlan(
        summary=f"delete alert #{rule.id} {rule.name}",
        ad_account_id=rule.ad_account_id,
        requests=[],
        changes=[],
        execute=execute,
    )


# ---------------------------------------------------------------------------------------------------------------
# Evaluating alerts
# ---------------------------------------------------------------------------------------------------------------

# ---- What the op answers as data ----------------------------------------------------------------------------------


class FiredAlert(DataRow):
    rule_id: int
    rule: str = Field(description="The rule's name.")
    fired_at: str = Field(description="ISO 8601, UTC.")
    object_id: str
    metric: Metric
    value: float = Field(description="The metric's value that crossed the threshold (money in minor units).")
    threshold: float
    action: Action
    outcome: Literal["notified", "paused", "scaled", "capped", "failed"]
    detail: str = Field(description="What the action did, in words.")
    currency: str | None
    subject: str = Field(description="A notification's subject line.")
    text: str = Field(description="A notification's text.")


class AlertsChecked(OpData):
    checked: int = Field(description="Enabled rules checked.")
    cooling: int = Field(description="Rules skipped: within their cooldown.")
    fired: list[FiredAlert]
    object_ids: list[str] = absent_key(description="The objects acted on; absent when none fired.")


class EvaluateAlertsArgs(OpArgs):
    """Check every enabled alert rule now and act on those whose condition holds and whose cooldown has passed.

    The alerts job runs this hourly. Pauses and budget changes go through the safety gate and the audit log.
    """

    alert_id: int | None = Field(None, ge=1, description="Check only this rule.")


@dataclass
class _Firing:
    rule: AlertRuleRecord
    value: float
    object_name: str


async def _rule_value(ctx: OpContext, rule: AlertRuleRecord) -> tuple[float | None, str]:
    rows = await _insight_rows(ctx, rule.object_id, level=rule.level, date_preset=rule.window)
    total = totals((parse_row(r, rule.currency or "USD") for r in rows), rule.currency)
    name = (
        str(next((r.get(f"{rule.level}_name") for r in rows if r.get(f"{rule.level}_name")), ""))
        if rule.level != "account"
        else ""
    )
    return _value(total, rule.metric), name


async def _scale(ctx: OpContext, rule: AlertRuleRecord) -> tuple[str, str]:
    obj = await ctx.graph.get(rule.object_id, {"fields": "id,name,daily_budget"})
    current = int(obj.get("daily_budget") or 0)
    money = lambda v: format_money(v, rule.currency)  # noqa: E731
    if not current:
        return "failed", f"{LEVEL_LABELS[rule.level]} {rule.object_id} has no daily budget to scale"
    wanted = current * (100 + int(rule.scale_pct or 0)) // 100
    guardrails = await ctx.gate.guardrails(rule.ad_account_id) if ctx.gate else {}
    target, held_by = scaled_budget(
        current, int(rule.scale_pct or 0), ("the rule's cap", int(rule.max_budget or wanted)), guardrails
    )
    if target <= current:
        return "capped", f"daily budget stays {money(current)}: already at {held_by}"
    if ctx.gate is None:
        raise ValidationError(
            "Scaling a budget needs a workspace session (the safety gate)",
            fix="Call it through Ad Monster (chat, MCP, API or a job), not as a bare handler",
        )
    result = await ctx.gate.run(UPDATE_OPS[rule.level], {f"{rule.level}_id": rule.object_id, "daily_budget": target})
    if not result.ok:
        return "failed", result.text.splitlines()[0]
    capped = f" (held by {held_by})" if held_by else ""
    return "scaled", f"daily budget {money(current)} → {money(target)}{capped}"


async def _act(ctx: OpContext, firing: _Firing) -> tuple[str, str]:
    rule = firing.rule
    if rule.action == "notify":
        return "notified", "notified"
    if ctx.gate is None:
        return "failed", "no safety gate in this session to act through"
    try:
        if rule.action == "pause":
            result = await ctx.gate.run(PAUSE_OPS[rule.level], {f"{rule.level}_id": rule.object_id})
            return ("paused", result.text.splitlines()[0]) if result.ok else ("failed", result.text.splitlines()[0])
        return await _scale(ctx, rule)
    except FacebookError as error:
        return "failed", error.to_text()


@ops.op(OpKind.SPEND, group=TaskGroup.AUTOMATION, result=AlertsChecked)
async def evaluate_alerts(ctx: OpContext, args: EvaluateAlertsArgs) -> OpResult | WritePlan:
    records = _records(ctx)
    now = await ctx.now()
    rules = [r for r in await records.alerts(enabled_only=True) if args.alert_id in (None, r.id)]
    if args.alert_id is not None and not rules:  # an id of no rule here (another workspace's, or gone): say so
        raise ValidationError(
            f"Alert #{args.alert_id} does not exist in this workspace (or is disabled)",
            fix="Run list_alerts to see the rule ids",
            blame_field="alert_id",
        )
    firing: list[_Firing] = []
    lines, cooling = [], 0
    for rule in rules:
        if rule.last_fired_at and now - rule.last_fired_at < timedelta(hours=rule.cooldown_hours):
            cooling += 1
            continue
        value, name = await _rule_value(ctx, rule)
        if value is not None and OPERATORS[rule.operator](value, rule.threshold):
            firing.append(_Firing(rule, value, name))
    checked = len(rules)
    if not firing:
        return OpResult(
            text=f"Checked {checked} alert rule(s): none fired" + (f" ({cooling} cooling down)." if cooling else "."),
            data={"checked": checked, "cooling": cooling, "fired": []},
        )

    def headline(f: _Firing) -> str:
        r = f.rule
        what = f"{LEVEL_LABELS[r.level]} {f.object_name + ' ' if f.object_name else ''}({r.object_id})"
        return (
            f"{r.name}: {what} {r.metric} {_show_metric(r.metric, f.value, r.currency)} {r.operator} "
            f"{_show_metric(r.metric, r.threshold, r.currency)} over {r.window}"
        )

    async def execute() -> OpResult:
        fired = []
        for f in firing:
            outcome, detail = await _act(ctx, f)
            await records.alert_fired(f.rule.id, now, f.value, outcome, {"detail": detail, "metric": f.rule.metric})
            text = f"{headline(f)}. Action {f.rule.action}: {detail}."
            lines.append(f"  #{f.rule.id} {text}")
            fired.append(
                {
                    "rule_id": f.rule.id,
                    "rule": f.rule.name,
                    "fired_at": now.isoformat(),
                    "object_id": f.rule.object_id,
                    "metric": f.rule.metric,
                    "value": f.value,
                    "threshold": f.rule.threshold,
                    "action": f.rule.action,
                    "outcome": outcome,
                    "detail": detail,
                    "currency": f.rule.currency,
                    "subject": f"Alert {f.rule.name}: {f.rule.metric} {_show_metric(f.rule.metric, f.value, f.rule.currency)}",
                    "text": text,
                }
            )
        head = (
            f"Checked {checked} alert rule(s): {len(fired)} fired"
            + (f", {cooling} cooling down" if cooling else "")
            + "."
        )
        failed = [e for e in fired if e["outcome"] == "failed"]
        return OpResult(
            text="\n".join([head] + lines),
            data={
                "checked": checked,
                "cooling": cooling,
                "fired": fired,
                "object_ids": [e["object_id"] for e in fired],
            },
            ok=not failed,
        )

    summary = "alerts fired: " + "; ".join(f"{headline(f)} → {f.rule.action}" for f in firing)
    return WritePlan(summary=summary, ad_account_id=None, requests=[], changes=[], execute=execute)


# ---------------------------------------------------------------------------------------------------------------
# Snapshots
# ---------------------------------------------------------------------------------------------------------------

# ---- What the op answers as data ----------------------------------------------------------------------------------


class AccountSnapshots(DataRow):
    ad_account_id: str
    day: str = Field(description="YYYY-MM-DD, in the account's time zone.")
    snapshots: int = Field(description="Objects kept for that day.")


class SnapshotsSynced(OpData):
    kept: int = Field(description="Snapshots written (campaigns, ad sets, ads and accounts).")
    changed: int = Field(description="Of those, new or different from what was kept.")
    accounts: list[AccountSnapshots]


class SyncSnapshotsArgs(OpArgs):
    """Keep one day's metrics (default yesterday, in each account's time zone) of every campaign, ad set and ad as snapshots.

    The insights_sync job runs this daily; running it again for the same day changes nothing.
    """

    ad_account_id: str | None = Field(None, description="One ad account (act_…); default every ad account you can use.")
    day: date | None = Field(None, description="The day (YYYY-MM-DD); default yesterday.")


@ops.op(OpKind.READ, group=TaskGroup.AUTOMATION, result=SnapshotsSynced)
async def sync_snapshots(ctx: OpContext, args: SyncSnapshotsArgs) -> OpResult:
    records = _records(ctx)
    kept, changed, days = 0, 0, set()
    per_account = []
    for account in await _accounts(ctx, args.ad_account_id):
        day = (args.day or await _yesterday(ctx, account)).isoformat()
        days.add(day)
        count = 0
        for level in ("account", "campaign", "adset", "ad"):
            for row in await _insight_rows(ctx, account.id, level=level, since=day, until=day):
                object_id = account.id if level == "account" else row.get(f"{level}_id")
                if not object_id:
                    continue
                metrics = {
                    **parse_row(row, account.currency).metrics(),
                    "currency": account.currency,
                    "ad_account_id": account.id,
                    "name": row.get(f"{level}_name") or account.name,
                }
                for parent in ("campaign", "adset"):
                    if level in ("adset", "ad") and parent != level and row.get(f"{parent}_id"):
                        metrics[f"{parent}_id"] = row[f"{parent}_id"]
                changed += await records.put_snapshot(SnapshotRecord(str(object_id), level, day, metrics))
                kept += 1
                count += 1
        per_account.append({"ad_account_id": account.id, "day": day, "snapshots": count})
    text = f"Kept {kept} snapshot(s) for {', '.join(sorted(days)) or 'no account'}: {changed} new or changed."
    return OpResult(text=text, data={"kept": kept, "changed": changed, "accounts": per_account})


# ---------------------------------------------------------------------------------------------------------------
# Weekly report
# ---------------------------------------------------------------------------------------------------------------

# ---- What the op answers as data ----------------------------------------------------------------------------------


class WeekMetrics(Metrics):
    results: int = Field(description="Conversions, else link clicks.")


class TopCampaign(WeekMetrics):
    campaign_id: str
    name: str


class WeeklyAccount(DataRow):
    ad_account_id: str
    name: str
    currency: str
    source: Literal["snapshots", "insights"] = Field(description="Where the week's numbers came from.")
    current: WeekMetrics = Field(description="The last 7 full days.")
    previous: WeekMetrics = Field(description="The 7 days before.")
    top_campaigns: list[TopCampaign]
    recommendations: list[str]


class DayRange(DataRow):
    since: str = Field(description="YYYY-MM-DD")
    until: str = Field(description="YYYY-MM-DD")


class WeeklyReport(OpData):
    accounts: list[WeeklyAccount]
    period: DayRange | None = Field(description="The last account's week; null when there was no ad account.")


class WeeklyReportArgs(OpArgs):
    """The weekly report: the last 7 full days against the 7 before, per ad account, top campaigns and recommendations."""

    ad_account_id: str | None = Field(None, description="One ad account (act_…); default every ad account you can use.")
    top: int = Field(3, ge=1, le=10, description="How many top campaigns (by spend) to list.")


def _data(m: MetricRow) -> dict[str, Any]:
    return {**m.metrics(), **derived(m), "results": results_of(m)}


def _days(since: date, until: date) -> list[str]:
    return [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)]


async def _period(
    ctx: OpContext, account: AccountInfo, since: date, until: date
) -> tuple[MetricRow, dict[str, tuple[str, MetricRow]], str]:
    """Account totals and per-campaign totals for a period: from snapshots when every day is kept, else insights."""
    wanted = _days(since, until)
    currency = account.currency
    if ctx.records is not None:
        snaps = await ctx.records.snapshots(wanted[0], wanted[-1])
        account_days = {s.day: s for s in snaps if s.level == "account" and s.object_id == account.id}
        if set(account_days) == set(wanted):
            total = totals((_from_snapshot(s.metrics, currency) for s in account_days.values()), currency)
            campaigns: dict[str, tuple[str, MetricRow]] = {}
            for snap in snaps:
                if snap.level == "campaign" and _belongs(snap, account):
                    name, so_far = campaigns.get(
                        snap.object_id, (snap.metrics.get("name", ""), MetricRow(currency=currency))
                    )
                    campaigns[snap.object_id] = (name, so_far.add(_from_snapshot(snap.metrics, currency)))
            return total, campaigns, "snapshots"
    rows = await _insight_rows(ctx, account.id, level="account", since=wanted[0], until=wanted[-1])
    total = totals((parse_row(r, currency) for r in rows), currency)
    campaigns = {}
    for row in await _insight_rows(ctx, account.id, level="campaign", since=wanted[0], until=wanted[-1]):
        campaigns[row["campaign_id"]] = (row.get("campaign_name", ""), parse_row(row, currency))
    return total, campaigns, "insights"


def _belongs(snap: SnapshotRecord, account: AccountInfo) -> bool:
    return snap.metrics.get("ad_account_id") == account.id


def _change(now: float | None, before: float | None) -> str:
    if now is None or before is None or before == 0:
        return ""
    pct = (now - before) * 100 / before
    return f" ({'+' if pct >= 0 else ''}{pct:.0f}%)"


async def _recommendations(ctx: OpContext, account: AccountInfo) -> list[str]:
    try:
        from fb_insights import RecommendationsArgs, recommendations  # the reporting half's rule-based advice
    except ImportError:
        return []
    try:
        found = await recommendations(ctx, RecommendationsArgs(ad_account_id=account.id))
    except FacebookError:  # a report without recommendations is still a report
        return []
    return [line[2:] for line in found.text.splitlines() if line.startswith("- ")][:5]


@ops.op(OpKind.READ, group=TaskGroup.INSIGHTS_REPORTS, result=WeeklyReport)
async def weekly_report(ctx: OpContext, args: WeeklyReportArgs) -> OpResult:
    lines, accounts, period = [], [], None
    for account in await _accounts(ctx, args.ad_account_id):
        until = await _yesterday(ctx, account)
        since = until - timedelta(days=6)
        period = {"since": since.isoformat(), "until": until.isoformat()}
        current, campaigns, source = await _period(ctx, account, since, until)
        previous, _, _ = await _period(ctx, account, since - timedelta(days=7), since - timedelta(days=1))
        money = account.format
        lines.append(
            f"{account.name} ({account.id}), {since:%b %d} – {until:%b %d} vs the week before ({account.currency}):"
        )
        for metric in ("spend", "impressions", "results", "ctr", "cpc", "cpa", "roas"):
            now_v, before_v = _value(current, metric), _value(previous, metric)
            lines.append(
                f"  {metric}: {_show_metric(metric, now_v, account.currency)} (was {_show_metric(metric, before_v, account.currency)})"
                f"{_change(now_v, before_v)}"
            )
        top = sorted(
            ((cid, n, m) for cid, (n, m) in campaigns.items() if m.spend_minor), key=lambda t: -t[2].spend_minor
        )[: args.top]
        if top:
            lines.append("  Top campaigns by spend:")
            for cid, name, m in top:
                lines.append(
                    f"    {name} ({cid}): {money(m.spend_minor)}, {results_of(m)} results, "
                    f"CPA {_show_metric('cpa', _value(m, 'cpa'), account.currency)}, ROAS {_show_metric('roas', _value(m, 'roas'), account.currency)}"
                )
        tips = await _recommendations(ctx, account)
        if tips:
            lines.append("  Recommendations:")
            lines += [f"    - {t}" for t in tips]
        accounts.append(
            {
                "ad_account_id": account.id,
                "name": account.name,
                "currency": account.currency,
                "source": source,
                "current": _data(current),
                "previous": _data(previous),
                "top_campaigns": [{"campaign_id": c, "name": n, **_data(m)} for c, n, m in top],
                "recommendations": tips,
            }
        )
    if not accounts:
        return OpResult(text="No ad accounts to report on.", data={"accounts": [], "period": None})
    return OpResult(text="Weekly report\n" + "\n".join(lines), data={"accounts": accounts, "period": period})


# ---------------------------------------------------------------------------------------------------------------
# Spend: report, ledger, billing guard
# ---------------------------------------------------------------------------------------------------------------

# ---- What the ops answer as data (money in minor units of each account's currency) --------------------------------


class CampaignSpend(DataRow):
    campaign_id: str
    name: str
    spend_minor: int


class SpendSum(DataRow):
    spend_minor: int
    fee_minor: int = Field(description="The agency fee on the spend.")
    total_minor: int = Field(description="Spend plus fee.")


class AccountSpend(SpendSum):
    ad_account_id: str
    name: str
    currency: str
    campaigns: list[CampaignSpend] = Field(description="By spend, highest first.")


class SpendReport(OpData):
    period: str = Field(description="The date preset, or 'since to until'.")
    fee_pct: float = Field(description="The agency fee in percent of spend.")
    accounts: list[AccountSpend]
    totals: dict[str, SpendSum] = Field(description="Currency -> the sums over its accounts.")


class LedgerAccount(DataRow):
    ad_account_id: str
    name: str
    day: str = Field(description="YYYY-MM-DD, in the account's time zone.")
    spend_minor: int
    currency: str
    account_status: int | None = Field(
        description="Facebook's account_status (1 active, 3 unsettled, 9 in grace period, ...)."
    )
    billing_paused: bool = Field(description="Campaigns of it are paused for billing (billing_recovered resumes them).")
    pause_id: int | None = Field(description="The latest open billing pause; null when none.")


class SpendSynced(OpData):
    accounts: list[LedgerAccount]


class BillingPaused(OpData):
    ad_account_id: str
    paused: list[str] = Field(description="The campaigns paused (billing_recovered resumes exactly these).")
    pause_id: int | None = Field(description="The billing pause record; null when there was nothing to pause.")
    changes: list[Change]
    object_ids: list[str] = absent_key(description="The campaigns paused; absent when there was nothing to pause.")


class BillingResumed(OpData):
    ad_account_id: str
    resumed: list[str] = Field(description="The campaigns resumed.")
    changes: list[Change]
    object_ids: list[str] = absent_key(description="The campaigns resumed; absent when there was nothing to resume.")


class SpendReportArgs(OpArgs):
    """Spend per ad account and campaign for yesterday or any period, in each account's currency, with an agency fee.

    The fee percent comes from fee_pct, else the workspace setting agency_fee_pct, else 0.
    """

    ad_account_id: str | None = Field(None, description="One ad account (act_…); default every ad account you can use.")
    date_preset: SpendPreset = Field("yesterday", description="The period, e.g. yesterday, last_7d, this_month.")
    since: date | None = Field(None, description="Start day (YYYY-MM-DD) of a custom period; needs until.")
    until: date | None = Field(None, description="End day (YYYY-MM-DD) of a custom period.")
    fee_pct: float | None = Field(None, ge=0, le=100, description="Agency fee in percent of spend, e.g. 15.")

    @model_validator(mode="after")
    def _range(self) -> SpendReportArgs:
        if (self.since is None) != (self.until is None):
            raise ValueError("since and until go together")
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must be on or before until")
        return self


async def _fee_pct(ctx: OpContext, explicit: float | None) -> float:
    if explicit is not None:
        return float(explicit)
    stored = await ctx.records.setting(FEE_SETTING, 0) if ctx.records is not None else 0
    try:
        return max(0.0, float(stored or 0))
    except (TypeError, ValueError):
        return 0.0


def _fee(spend: int, pct: float) -> int:
    return int(spend * pct / 100 + 0.5)


@ops.op(OpKind.READ, group=TaskGroup.INSIGHTS_REPORTS, result=SpendReport)
async def spend_report(ctx: OpContext, args: SpendReportArgs) -> OpResult:
    pct = await _fee_pct(ctx, args.fee_pct)
    period = f"{args.since} to {args.until}" if args.since else args.date_preset
    lines = [f"Spend, {period}" + (f", agency fee {pct:g}%" if pct else "") + ":"]
    accounts: list[dict[str, Any]] = []
    by_currency: dict[str, list[int]] = {}
    for account in await _accounts(ctx, args.ad_account_id):
        rows = await _insight_rows(
            ctx,
            account.id,
            level="campaign",
            date_preset=args.date_preset,
            since=args.since.isoformat() if args.since else None,
            until=args.until.isoformat() if args.until else None,
        )
        campaigns = sorted(
            (
                {
                    "campaign_id": r["campaign_id"],
                    "name": r.get("campaign_name", ""),
                    "spend_minor": parse_row(r, account.currency).spend_minor,
                }
                for r in rows
            ),
            key=lambda c: -c["spend_minor"],
        )
        spend = sum(c["spend_minor"] for c in campaigns)
        fee = _fee(spend, pct)
        money = account.format
        lines.append(
            f"  {account.name} ({account.id}): {money(spend)}"
            + (f" + fee {money(fee)} = {money(spend + fee)}" if pct else "")
        )
        lines += [
            f"    {c['name']} ({c['campaign_id']}): {money(c['spend_minor'])}" for c in campaigns if c["spend_minor"]
        ]
        sums = by_currency.setdefault(account.currency, [0, 0])
        sums[0] += spend
        sums[1] += fee
        accounts.append(
            {
                "ad_account_id": account.id,
                "name": account.name,
                "currency": account.currency,
                "spend_minor": spend,
                "fee_minor": fee,
                "total_minor": spend + fee,
                "campaigns": campaigns,
            }
        )
    for currency, (spend, fee) in by_currency.items():
        lines.append(
            f"Total {currency}: {format_money(spend, currency)}"
            + (f" + fee {format_money(fee, currency)} = {format_money(spend + fee, currency)}" if pct else "")
        )
    totals = {c: {"spend_minor": s, "fee_minor": f, "total_minor": s + f} for c, (s, f) in by_currency.items()}
    return OpResult(
        text="\n".join(lines), data={"period": period, "fee_pct": pct, "accounts": accounts, "totals": totals}
    )


class SyncSpendArgs(OpArgs):
    """Write yesterday's spend of each ad account (in its currency, with the agency fee) into the spend ledger, and
    report each account's billing status. The spend_billing job runs this daily."""

    ad_account_id: str | None = Field(None, description="One ad account (act_…); default every ad account you can use.")
    day: date | None = Field(None, description="The day (YYYY-MM-DD); default yesterday in the account's time zone.")


@ops.op(OpKind.READ, group=TaskGroup.AUTOMATION, result=SpendSynced)
async def sync_spend(ctx: OpContext, args: SyncSpendArgs) -> OpResult:
    records = _records(ctx)
    pct = await _fee_pct(ctx, None)
    lines, accounts = [], []
    for account in await _accounts(ctx, args.ad_account_id):
        day = (args.day or await _yesterday(ctx, account)).isoformat()
        rows = await _insight_rows(ctx, account.id, level="account", since=day, until=day)
        spend = sum(parse_row(r, account.currency).spend_minor for r in rows)
        await records.put_spend(SpendRecord(account.id, day, spend, account.currency, _fee(spend, pct)))
        status = (await ctx.graph.get(account.id, {"fields": "account_status"})).get("account_status")
        status = int(status) if status is not None else None
        pauses = await records.open_billing_pauses(account.id)
        billing = (BILLING_PROBLEMS.get(status) if status is not None else None) or (
            "ok" if status == 1 else f"status {status}"
        )
        lines.append(
            f"  {account.name} ({account.id}) {day}: {account.format(spend)}; billing {billing}"
            + (f"; {sum(len(p.object_ids) for p in pauses)} campaign(s) paused for billing" if pauses else "")
        )
        accounts.append(
            {
                "ad_account_id": account.id,
                "name": account.name,
                "day": day,
                "spend_minor": spend,
                "currency": account.currency,
                "account_status": status,
                "billing_paused": bool(pauses),
                "pause_id": pauses[-1].id if pauses else None,
            }
        )
    return OpResult(
        text="\n".join([f"Spend ledger: {len(accounts)} account(s) written."] + lines), data={"accounts": accounts}
    )


class BillingFailedArgs(OpArgs):
    """Billing failed on an ad account: pause every ACTIVE campaign of it and remember exactly which (billing_recovered resumes those)."""

    ad_account_id: str = Field(..., description="The ad account, act_<id>.")


@ops.op(OpKind.WRITE, group=TaskGroup.SAFETY, result=BillingPaused)
async def billing_failed(ctx: OpContext, args: BillingFailedArgs) -> OpResult | WritePlan:
    records = _records(ctx)
    account = await ctx.graph.account_info(normalize_ad_account_id(args.ad_account_id))
    campaigns = await ctx.graph.get_all(f"{account.id}/campaigns", {"fields": "id,name,status", "limit": 500})
    active = [c for c in campaigns if c.get("status") == "ACTIVE"]
    if not active:
        return OpResult(
            text=f"{account.name} ({account.id}) has no ACTIVE campaign; nothing to pause.",
            data={"ad_account_id": account.id, "paused": [], "pause_id": None, "changes": []},
        )
    if ctx.ops is None:
        raise ValidationError("billing_failed needs a workspace session", fix="Call it through Ad Monster")
    inner = await ctx.ops.plan(
        "bulk_update_campaigns",
        {"ad_account_id": account.id, "campaign_ids": [c["id"] for c in active], "status": "PAUSED"},
    )
    if not isinstance(inner, WritePlan):
        return inner

    async def execute() -> OpResult:
        done = await inner.execute()
        paused = [
            r["campaign_id"] for r in (done.data or {}).get("results", []) if r.get("ok") and not r.get("unchanged")
        ]
        record = await records.add_billing_pause(account.id, paused, "billing failed")
        names = {c["id"]: c.get("name", "") for c in active}
        text = (
            f"Billing failed on {account.name} ({account.id}): paused {len(paused)} active campaign(s): "
            + ", ".join(f"{names.get(i, '')} ({i})" for i in paused)
            + ". billing_recovered resumes exactly these."
        )
        if not done.ok:
            text += "\n" + done.text
        return OpResult(
            text=text,
            ok=done.ok,
            data={
                "ad_account_id": account.id,
                "paused": paused,
                "pause_id": record.id,
                "changes": (done.data or {}).get("changes", []),
                "object_ids": paused,
            },
        )

    return WritePlan(
        summary=f"billing failed on {account.name} ({account.id}): pause {len(active)} active campaign(s)",
        ad_account_id=account.id,
        requests=inner.requests,
        changes=inner.changes,
        execute=execute,
        currency=account.currency,
    )


class BillingRecoveredArgs(OpArgs):
    """Billing works again on an ad account: resume exactly the campaigns billing_failed paused (and nothing else)."""

    ad_account_id: str = Field(..., description="The ad account, act_<id>.")


@ops.op(OpKind.SPEND, group=TaskGroup.SAFETY, result=BillingResumed)
async def billing_recovered(ctx: OpContext, args: BillingRecoveredArgs) -> OpResult | WritePlan:
    records = _records(ctx)
    account = await ctx.graph.account_info(normalize_ad_account_id(args.ad_account_id))
    pauses = await records.open_billing_pauses(account.id)
    ids = list(dict.fromkeys(i for p in pauses for i in p.object_ids))
    if not pauses:
        return OpResult(
            text=f"No campaigns of {account.name} ({account.id}) are paused for billing; nothing to resume.",
            data={"ad_account_id": account.id, "resumed": [], "changes": []},
        )
    current = await ctx.graph.get_many(ids, "id,name,status") if ids else {}
    still_paused = [i for i in ids if (current.get(i) or {}).get("status") == "PAUSED"]
    if not still_paused:
        for pause in pauses:
            await records.billing_resumed(pause.id)
        return OpResult(
            text=f"None of the {len(ids)} campaign(s) paused for billing on {account.name} is still paused; "
            "nothing to resume (record closed).",
            data={"ad_account_id": account.id, "resumed": [], "changes": []},
        )
    if ctx.ops is None:
        raise ValidationError("billing_recovered needs a workspace session", fix="Call it through Ad Monster")
    inner = await ctx.ops.plan(
        "bulk_update_campaigns", {"ad_account_id": account.id, "campaign_ids": still_paused, "status": "ACTIVE"}
    )
    if not isinstance(inner, WritePlan):
        return inner

    async def execute() -> OpResult:
        done = await inner.execute()
        resumed = [r["campaign_id"] for r in (done.data or {}).get("results", []) if r.get("ok")]
        if done.ok:
            for pause in pauses:
                await records.billing_resumed(pause.id)
        text = (
            f"Billing works again on {account.name} ({account.id}): resumed {len(resumed)} campaign(s): "
            + ", ".join(f"{(current.get(i) or {}).get('name', '')} ({i})" for i in resumed)
            + "."
        )
        if not done.ok:
            text += "\n" + done.text
        return OpResult(
            text=text,
            ok=done.ok,
            data={
                "ad_account_id": account.id,
                "resumed": resumed,
                "changes": (done.data or {}).get("changes", []),
                "object_ids": resumed,
            },
        )

    return WritePlan(
        summary=f"billing recovered on {account.name} ({account.id}): resume {len(still_paused)} campaign(s) paused for billing",
        ad_account_id=account.id,
        requests=inner.requests,
        changes=inner.changes,
        execute=execute,
        currency=account.currency,
    )

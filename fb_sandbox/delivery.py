"""Simulated delivery: per day × ad × breakdown rows that insights read (docs/insights_contract.md,
"Delivery simulation"; docs/sandbox.md "Delivery simulation").

How it works
- Days are the ad account's time zone. A day is simulated once it is complete (the sandbox clock is past its
  end), lazily: `ensure_simulated` (called by insights, and by `POST /__sandbox/clock` before the clock moves)
  simulates every missing complete day in order and persists the result; history never changes afterwards. Every
  day is computed from the state the objects had on that day: before a campaign, ad set, ad or ad account changes
  (any update, a cascade or `/__sandbox` account change included: `before_change`, a hook on the store), the days
  completed so far are simulated with the state they had, so a pause or a budget change never rewrites the past.
  Within the day in progress, status changes are kept with their times (`_status_log` on the object), so a campaign
  paused at 14:00 delivers that day until 14:00; a budget or targeting change in the day in progress applies to the
  whole of that day (Meta paces a day's budget over the rest of the day: modelling choice, unverified).
- An ad delivers on a day when it, its ad set and its campaign are ACTIVE (configured status), it is approved
  (not PENDING_REVIEW or DISAPPROVED — ads.py's review: approved REVIEW_SECONDS after submission, unless its
  creative breaks a policy), within the start/end times of ad set and campaign, and — with day parting
  (adset_schedule) — in the scheduled hours; partial days and unscheduled hours cut delivery in proportion to a
  fixed hourly traffic curve. Only an ad account with account_status 1 (ACTIVE) or 9 (IN_GRACE_PERIOD) delivers.
- Budget: the ad set's daily budget, or the campaign's (shared equally by its delivering ad sets); a lifetime
  budget is spread evenly over the remaining days (remaining budget / days left). Within an ad set, better
  creatives (higher CTR) get more of the budget. Every ad's spend is floored, so spend never exceeds a budget.
- Shape: impressions = spend / CPM, CPM from a base times targeting breadth (estimates.audience_size: narrow is
  expensive), the placement mix, the goal and the ad set's CPM trend (scenario cpm_growth_per_day); impressions
  are capped by the audience (narrow audiences can't spend everything: they underspend) and a saturation factor
  (impressions so far per person of the audience) raises the day's frequency, so a small audience's frequency
  climbs day after day. A scenario's audience_size replaces the targeting's estimate. CTR per creative comes from a hash of its content (0.4 %–2.5 %, ×1.3 video, ×1.15
  carousel). Counts are drawn, not rounded: clicks are binomial in the impressions, link clicks in the clicks,
  landing page views in the link clicks, add to cart / initiate checkout / purchases each in the step before
  (values ~ lognormal around a per-account order value) only when the ad set promotes a pixel (purchases only for
  custom_event_type PURCHASE); leads (binomial in the clicks) for OUTCOME_LEADS. On top of the draws, each day
  multiplies an ad's CTR and conversion rate by a lognormal factor of mean 1 (see "noise" below: one part shared by
  the account's ads that day, one the ad's own), so equal ads differ from day to day by more than chance, as live
  ones do. Randomness comes from generators seeded by a hash of (seed, day, ad id) and (seed, day, account id), so
  rows are deterministic for a seed.
- Storage: one row per ad-day (table delivery_days, primary key (account_id, day, ad_id)) plus a breakdown
  template per ad-set targeting (delivery_templates). The template is a list of cells (age, gender, country,
  publisher_platform, platform_position, impression_device) with integer weights, built by merging the
  cumulative shares of four marginals (age×gender, country, placement, device) so each breakdown that
  insights allows gets its own distribution. `iter_rows` splits an ad-day over its cells at read time with
  chained cumulative rounding, which preserves every total exactly and keeps child ≤ parent in every cell
  (clicks ≤ impressions, link clicks ≤ clicks, …).
- Split tests (studies.py): while a SPLIT_TEST ad study runs (start_time <= t < end_time, before its
  canceled_time), the ad sets of each cell (named directly, or through the cell's campaigns) reach only the
  cell's treatment_percentage of their audience: the reachable people (the 30 % daily cap, the saturation
  pressure and the pool that reach is de-duplicated over) are multiplied by treatment_percentage / 100, for the
  share of the ad set's traffic that day inside the study's window. Each cell is its own slice of people, so cells never
  share saturation; CPM still comes from the targeting's full audience (a random split doesn't change the
  auction). Study windows are absolute times, so days simulated later still see when a study ran, ended early
  or was canceled.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as dtime
from typing import TYPE_CHECKING, Any, overload
from zoneinfo import ZoneInfo

from .money import CURRENCIES

if TYPE_CHECKING:
    import numpy


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One simulated day of one ad in one breakdown cell. Money in minor units of the account currency.

    Every metric is additive across cells and days except `reach` / `unique_clicks`, which are the ad-day's
    people split over the cells (additive across cells of one ad-day, not across days or ads; see
    object_reach for a de-duplicated reach over a period)."""

    day: date
    account_id: str
    campaign_id: str
    adset_id: str
    ad_id: str
    age: str
    gender: str
    country: str
    publisher_platform: str
    platform_position: str
    impression_device: str
    impressions: int
    reach: int
    clicks: int
    unique_clicks: int
    link_clicks: int
    spend: int
    landing_page_views: int
    post_engagements: int
    video_views: int
    leads: int
    add_to_cart: int
    initiate_checkout: int
    purchases: int
    purchase_value: int


METRICS = (
    "impressions",
    "reach",
    "clicks",
    "unique_clicks",
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
)
# Each metric is split over the cells in proportion to its parent's split (chained cumulative rounding).
PARENT = {
    "reach": "impressions",
    "clicks": "impressions",
    "unique_clicks": "clicks",
    "link_clicks": "clicks",
    "spend": "impressions",
    "landing_page_views": "link_clicks",
    "post_engagements": "impressions",
    "video_views": "impressions",
    "leads": "clicks",
    "add_to_cart": "landing_page_views",
    "initiate_checkout": "add_to_cart",
    "purchases": "initiate_checkout",
    "purchase_value": "purchases",
}
_IDX = {m: i for i, m in enumerate(METRICS)}
_CHAIN = [(_IDX[m], _IDX[PARENT[m]]) for m in METRICS[1:]]
DEFAULT_SEED = 1
DELIVERING_ACCOUNT_STATUSES = (1, 9)  # ACTIVE, IN_GRACE_PERIOD; any other account_status stops delivery
DAILY_ACTIVE_SHARE = 0.3  # the share of an audience an ad set can show to in a day (caps impressions)
PACING_LOW = 0.96  # a budget-limited ad set spends 96–100 % of its daily allowance
SATURATION = 0.2  # per-day frequency × (1 + 0.2 × impressions per person so far)
MAX_DAILY_FREQUENCY = 6.0
S = 1_000_000  # template weights are integers summing to S
DAY = 86400
MAX_HISTORY_DAYS = 37 * 31  # insights reach back 37 months at most
AGE_BUCKETS = (
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, 65),
)
UNKNOWN_GENDER_SHARE = 0.02
# targeting position -> (insights platform_position, share of automatic placements' impressions)
POSITIONS: dict[str, dict[str, tuple[str, float]]] = {
    "facebook": {
        "feed": ("feed", 35),
        "right_hand_column": ("right_hand_column", 2),
        "marketplace": ("marketplace", 5),
        "video_feeds": ("video_feeds", 3),
        "story": ("facebook_stories", 7),
        "search": ("search", 1),
        "instream_video": ("instream_video", 3),
        "facebook_reels": ("facebook_reels", 6),
        "facebook_reels_overlay": ("facebook_reels_overlay", 1),
        "profile_feed": ("facebook_profile_feed", 1),
        "notification": ("notification", 0.5),
    },
    "instagram": {
        "stream": ("feed", 18),
        "story": ("instagram_stories", 9),
        "explore": ("instagram_explore", 2),
        "explore_home": ("instagram_explore_grid_home", 1),
        "reels": ("instagram_reels", 8),
        "profile_feed": ("instagram_profile_feed", 1),
        "ig_search": ("instagram_search", 0.5),
        "profile_reels": ("instagram_profile_reels", 0.5),
    },
    "audience_network": {"classic": ("an_classic", 3), "rewarded_video": ("rewarded_video", 1)},
    "messenger": {
        "messenger_home": ("messenger_inbox", 1),
        "sponsored_messages": ("sponsored_messages", 0.2),
        "story": ("messenger_stories", 0.5),
    },
    "threads": {"threads_stream": ("threads_feed", 0.5)},
    "whatsapp": {"status": ("whatsapp_status", 0.5)},
}
# Automatic (Advantage+) placements deliver to the positions Meta still offers: not Facebook video feeds (removed in
# v24.0, Meta Business SDK 24.0.0 release note) nor Instagram Explore (removed in v26.0, "Introducing Graph API v26.0
# and Marketing API v26.0", 2026-07-29); docs/adset_rules.md "Changelog rules".
AUTOMATIC = [
    ("facebook", "feed"),
    ("instagram", "stream"),
    ("instagram", "story"),
    ("instagram", "reels"),
    ("facebook", "story"),
    ("facebook", "facebook_reels"),
    ("facebook", "marketplace"),
    ("audience_network", "classic"),
    ("instagram", "explore_home"),
    ("messenger", "messenger_home"),
]
DESKTOP_POSITIONS = {
    ("facebook", p) for p in ("feed", "right_hand_column", "marketplace", "video_feeds", "search", "instream_video")
}
PLATFORM_CPM = {
    "facebook": 1.0,
    "instagram": 1.25,
    "audience_network": 0.45,
    "messenger": 0.8,
    "threads": 0.9,
    "whatsapp": 0.9,
}
DEVICES = (("desktop", 0.08), ("ipad", 0.02), ("iphone", 0.45), ("android_smartphone", 0.45))
HOURLY = (2, 1.5, 1, 1, 1, 1.5, 2.5, 3.5, 4, 4.5, 4.5, 5, 5, 5, 5, 5, 5, 5.5, 6, 6.5, 6.5, 6, 5, 3.5)
GOAL_FACTORS = {  # goal -> (CPM factor, CTR factor, conversion factor)
    "REACH": (0.55, 0.5, 0.5),
    "IMPRESSIONS": (0.6, 0.55, 0.5),
    "AD_RECALL_LIFT": (0.6, 0.5, 0.5),
    "THRUPLAY": (0.8, 0.7, 0.6),
    "LINK_CLICKS": (1.1, 1.25, 0.9),
    "LANDING_PAGE_VIEWS": (1.15, 1.2, 1.0),
    "OFFSITE_CONVERSIONS": (1.3, 1.0, 1.4),
    "VALUE": (1.4, 1.0, 1.5),
    "LEAD_GENERATION": (1.2, 1.0, 1.3),
    "QUALITY_LEAD": (1.3, 1.0, 1.2),
    "POST_ENGAGEMENT": (0.8, 0.9, 0.6),
}
CPM_USD = 7.0
USD_RATE = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "CAD": 1.37,
    "AUD": 1.52,
    "JPY": 150.0,
    "KRW": 1350.0,
    "TWD": 32.0,
    "CLP": 950.0,
    "VND": 25000.0,
    "HUF": 360.0,
    "ISK": 138.0,
    "IDR": 16000.0,
    "COP": 4000.0,
    "CRC": 510.0,
    "PYG": 7400.0,
}
CURRENCY_COUNTRY = {
    "USD": "US",
    "EUR": "DE",
    "GBP": "GB",
    "CAD": "CA",
    "AUD": "AU",
    "JPY": "JP",
    "KRW": "KR",
    "TWD": "TW",
    "CLP": "CL",
    "VND": "VN",
    "HUF": "HU",
    "ISK": "IS",
    "IDR": "ID",
    "COP": "CO",
    "CRC": "CR",
    "PYG": "PY",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_days (
    account_id TEXT NOT NULL, day TEXT NOT NULL, ad_id TEXT NOT NULL, adset_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL, tpl INTEGER NOT NULL,
    audience INTEGER NOT NULL,  -- the ad set's reachable pool that day: min(audience size, 30 days at budget)
    impressions INTEGER, reach INTEGER, clicks INTEGER, unique_clicks INTEGER, link_clicks INTEGER, spend INTEGER,
    landing_page_views INTEGER, post_engagements INTEGER, video_views INTEGER, leads INTEGER, add_to_cart INTEGER,
    initiate_checkout INTEGER, purchases INTEGER, purchase_value INTEGER,
    PRIMARY KEY (account_id, day, ad_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery_templates (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL,
    cells TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS delivery_accounts (account_id TEXT PRIMARY KEY, first_day TEXT NOT NULL,
    last_day TEXT NOT NULL);
"""
_KV_READY = "delivery:ready"  # kv is wiped on /__sandbox/reset: then the delivery tables are stale
_KV_SEED = "delivery:seed"
_KV_EFFECTS = "delivery:true_effects"


# ---- storage


def _db(sb):
    db = sb.store.db
    if getattr(sb, "_delivery_schema", None) is not db:
        db.executescript(SCHEMA)
        sb._delivery_schema = db
        sb._delivery_templates = {}
    if not sb.store.kv_get(_KV_READY):
        with sb.store.lock:
            for table in ("delivery_days", "delivery_templates", "delivery_accounts"):
                db.execute(f"DELETE FROM {table}")
            sb._delivery_templates = {}
            sb.store.kv_set(_KV_READY, True)
    return db


def get_seed(sb) -> int:
    _db(sb)
    return int(sb.store.kv_get(_KV_SEED, DEFAULT_SEED))


def set_seed(sb, seed: int) -> None:
    """The seed of days simulated from now on (history already simulated stays)."""
    _db(sb)
    sb.store.kv_set(_KV_SEED, int(seed))


def true_effects(sb) -> dict[str, float | dict[str, float]]:
    return dict(sb.store.kv_get(_KV_EFFECTS, {}) or {})


EFFECT_KEYS = {"ctr", "cvr", "ctr_rate", "cvr_rate"}


def effect_value(value) -> float | dict[str, float]:
    """A true effect as stored: a number (CTR and conversion rates both) or an object with "ctr" and "cvr"
    multipliers (each defaults to 1) and/or "ctr_rate" (the ad's own click-through rate, 0-0.5, in place of the one
    its creative's content gives) and "cvr_rate" (its conversion factor, 0-10, in place of the creative's 0.7-1.3):
    with rates, variants whose creatives differ can have exactly the same truth. ValueError for anything else."""
    if isinstance(value, dict):
        if not value or set(value) - EFFECT_KEYS:
            raise ValueError('a true effect object takes "ctr", "cvr", "ctr_rate" and/or "cvr_rate"')
        out: dict[str, Any] = {k: effect_value(v) for k, v in value.items()}
        if not 0 <= out.get("ctr_rate", 0) <= 0.5 or not 0 <= out.get("cvr_rate", 0) <= 10:
            raise ValueError("ctr_rate is a rate in [0, 0.5] and cvr_rate a factor in [0, 10]")
        return out
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
        raise ValueError('a true effect is a number in [0, 1000] or {"ctr": m, "cvr": m, "ctr_rate": r, "cvr_rate": f}')
    return float(value)


def effect_multipliers(value) -> tuple[float, float]:
    """(CTR multiplier, conversion-rate multiplier) of a stored true effect."""
    if isinstance(value, dict):
        return float(value.get("ctr", 1.0)), float(value.get("cvr", 1.0))
    return float(value), float(value)


def effect_rates(value) -> tuple[float | None, float | None]:
    """(click-through rate, conversion factor) a stored true effect sets in place of the creative's, or None."""
    if isinstance(value, dict):
        return value.get("ctr_rate"), value.get("cvr_rate")
    return None, None


def set_true_effects(sb, effects: dict[str, float | dict]) -> None:
    """Multipliers on CTR and conversion rates per ad id (for experiments with a known answer): a number
    multiplies both, {"ctr": m, "cvr": m} each on its own."""
    _db(sb)
    sb.store.kv_set(_KV_EFFECTS, {**true_effects(sb), **{str(k): effect_value(v) for k, v in effects.items()}})


def _template_id(sb, cells: list, cum: list[int]) -> int:
    key = hashlib.sha1(json.dumps([cells, cum], separators=(",", ":")).encode()).hexdigest()
    cache = sb._delivery_templates
    if key in cache:
        return cache[key]
    db = sb.store.db
    row = db.execute("SELECT id FROM delivery_templates WHERE key=?", (key,)).fetchone()
    if row is None:
        db.execute(
            "INSERT INTO delivery_templates(key, cells) VALUES(?, ?)",
            (key, json.dumps({"cells": cells, "cum": cum}, separators=(",", ":"))),
        )
        row = db.execute("SELECT id FROM delivery_templates WHERE key=?", (key,)).fetchone()
    cache[key] = row[0]
    return row[0]


def _template(sb, tpl: int) -> tuple[list, list[int]]:
    cache = sb._delivery_templates
    hit = cache.get(("id", tpl))
    if hit is None:
        row = sb.store.db.execute("SELECT cells FROM delivery_templates WHERE id=?", (tpl,)).fetchone()
        data = json.loads(row[0])
        hit = cache[("id", tpl)] = ([tuple(c) for c in data["cells"]], data["cum"])
    return hit


# ---- time


def account_tz(account: dict) -> ZoneInfo | timezone:
    try:
        return ZoneInfo(account.get("timezone_name") or "UTC")
    except Exception:  # noqa: BLE001 - an unknown zone falls back to UTC
        return UTC


def _account(sb, account_id: str) -> dict:
    account = sb.store.get(account_id)
    if account is None or account.type != "adaccount":
        raise KeyError(f"unknown ad account {account_id!r}")
    return account


def account_today(sb, account_id: str) -> date:
    """Today in the ad account's time zone, per the sandbox clock."""
    return datetime.fromtimestamp(sb.now(), account_tz(_account(sb, account_id))).date()


def day_bounds(day: date, tz) -> tuple[float, float]:
    start = datetime.combine(day, dtime(0), tz).timestamp()
    return start, datetime.combine(day + timedelta(days=1), dtime(0), tz).timestamp()


def _local_day(epoch: float, tz) -> date:
    return datetime.fromtimestamp(epoch, tz).date()


# ---- shaping


def _u(*parts) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def creative_ctr(creative: dict | None) -> float:
    """Base click-through rate of a creative, from a hash of its content: 0.4 %–2.5 %, video ×1.3,
    carousel ×1.15."""
    creative = creative or {}
    content = {
        k: creative.get(k)
        for k in ("name", "object_story_spec", "object_story_id", "asset_feed_spec", "_kind", "title", "body")
    }
    ctr = 0.004 + 0.021 * _u("ctr", json.dumps(content, sort_keys=True, default=str))
    kind = creative.get("_kind") or ""
    if kind == "video" or (creative.get("object_story_spec") or {}).get("video_data"):
        ctr *= 1.3
    elif kind == "carousel":
        ctr *= 1.15
    return ctr


def _cum(weights: list[float]) -> list[int]:
    """Integer cumulative weights 0..S (cumulative rounding: exact total)."""
    total = sum(weights)
    out, acc = [0], 0.0
    for w in weights:
        acc += w
        out.append(int(round(acc / total * S)))
    out[-1] = S
    return out


def _marginals(targeting: dict, account: dict) -> tuple[list, list, list, list]:
    from .estimates import _age_weight

    t = targeting or {}
    lo, hi = int(t.get("age_min", 18) or 18), int(t.get("age_max", 65) or 65)
    genders = set(t.get("genders") or [1, 2])
    ages = []
    for label, a, b in AGE_BUCKETS:
        w = sum(_age_weight(x) for x in range(max(a, lo), min(b, hi) + 1))
        if w > 0:
            ages.append((label, w))
    if not ages:
        ages = [("25-34", 1.0)]
    total_age = sum(w for _, w in ages)
    gender_share = {"female": 0.51 if 2 in genders else 0, "male": 0.49 if 1 in genders else 0}
    known = sum(gender_share.values())
    age_gender = []
    for label, w in ages:
        for g in ("female", "male"):
            if gender_share[g]:
                age_gender.append(
                    (
                        (label, g),
                        w
                        / total_age
                        * gender_share[g]
                        / known
                        * (1 - (UNKNOWN_GENDER_SHARE if len(genders) > 1 else 0)),
                    )
                )
    if len(genders) > 1:  # people with no gender on their profile: one cell, in the biggest age bucket
        age_gender.append(((max(ages, key=lambda x: x[1])[0], "unknown"), UNKNOWN_GENDER_SHARE))

    countries: dict[str, float] = {}
    try:
        from .targeting import catalog

        cat = catalog()
        geo = t.get("geo_locations") or {}
        for c in geo.get("countries", []):
            countries[c] = countries.get(c, 0) + ((cat.place("countries", c) or {}).get("audience") or 1_000_000)
        for kind in ("regions", "cities", "zips"):
            for item in geo.get(kind, []):
                place = cat.place(kind, item["key"] if isinstance(item, dict) else item) or {}
                code = place.get("country_code")
                if code and code not in countries:
                    countries[code] = place.get("audience") or 100_000
    except Exception:  # noqa: BLE001 - any odd geo spec falls back to the account's country
        pass
    if not countries:
        countries = {CURRENCY_COUNTRY.get(account.get("currency", "USD"), "US"): 1.0}
    country_list = sorted(countries.items(), key=lambda kv: -kv[1])

    platforms = t.get("publisher_platforms")
    devices_wanted = set(t.get("device_platforms") or ["mobile", "desktop"])
    if platforms:
        chosen = []
        for p in platforms:
            field = f"{p}_positions"
            for pos in t.get(field) or POSITIONS.get(p, {}).keys():
                if pos in POSITIONS.get(p, {}):
                    chosen.append((p, pos))
    else:
        chosen = list(AUTOMATIC)
    if devices_wanted == {"desktop"}:
        chosen = [c for c in chosen if c in DESKTOP_POSITIONS] or [("facebook", "feed")]
    placements = [((p, POSITIONS[p][pos][0]), POSITIONS[p][pos][1]) for p, pos in chosen]
    merged: dict = {}
    for key, w in placements:  # instagram "stream" and facebook "feed" are both platform_position "feed"
        merged[key] = merged.get(key, 0) + w
    placements = list(merged.items())
    has_desktop_slot = "desktop" in devices_wanted and any(c in DESKTOP_POSITIONS for c in chosen)
    if devices_wanted == {"desktop"}:
        devices = [("desktop", 1.0)]
    else:
        devices = [(d, w) for d, w in DEVICES if d != "desktop" or has_desktop_slot]
    return age_gender, country_list, placements, devices


def build_template(targeting: dict, account: dict) -> tuple[list, list[int], float]:
    """-> (cells [(age, gender, country, platform, position, device)], cumulative weights 0..S, placement CPM
    factor). The four marginals' cumulative shares are merged: each cell takes the value of each marginal at
    its start, so every marginal is kept exactly (in weights) with few cells."""
    age_gender, countries, placements, devices = _marginals(targeting, account)
    margs = [age_gender, countries, placements, devices]
    cums = [_cum([w for _, w in m]) for m in margs]
    points = sorted(set().union(*[set(c) for c in cums]))
    cells, cum = [], [0]
    idx = [0, 0, 0, 0]
    for p0, p1 in zip(points, points[1:]):
        for k in range(4):
            while cums[k][idx[k] + 1] <= p0:
                idx[k] += 1
        (age, gender), country = margs[0][idx[0]][0], margs[1][idx[1]][0]
        (platform, position), device = margs[2][idx[2]][0], margs[3][idx[3]][0]
        cells.append((age, gender, country, platform, position, device))
        cum.append(p1)
    total_w = sum(w for _, w in placements)
    cpm_factor = sum(PLATFORM_CPM.get(p, 1.0) * w for (p, _), w in placements) / total_w
    return cells, cum, cpm_factor


def _audience(targeting: dict) -> int:
    from .estimates import audience_size

    try:
        return max(1000, audience_size(targeting or {}))
    except Exception:  # noqa: BLE001 - a spec the estimator doesn't know: a mid-size audience
        return 2_000_000


def _schedule_weights(schedule: list) -> list[list[float]] | None:
    """Per weekday (0 = Sunday), the traffic weight of each hour that's scheduled (0 when not)."""
    if not schedule:
        return None
    out = [[0.0] * 24 for _ in range(7)]
    for block in schedule:
        start, end = int(block.get("start_minute", 0)) // 60, int(block.get("end_minute", 1440)) // 60
        for d in block.get("days", []):
            for h in range(max(0, start), min(24, end)):
                out[int(d)][h] = HOURLY[h]
    return out


_HOURLY_TOTAL = sum(HOURLY)


def _fraction(
    day_start: float, day_end: float, window: tuple[float, float], weekday: int, schedule: list[list[float]] | None
) -> float:
    """Share of the day's traffic inside [window) and the schedule."""
    lo, hi = max(day_start, window[0]), min(day_end, window[1])
    if hi <= lo:
        return 0.0
    if schedule is None and lo == day_start and hi == day_end:
        return 1.0
    hour = (day_end - day_start) / 24
    total = 0.0
    for h in range(24):
        h0 = day_start + h * hour
        overlap = min(hi, h0 + hour) - max(lo, h0)
        if overlap > 0:
            weight = HOURLY[h] if schedule is None else schedule[weekday][h]
            total += weight * overlap / hour
    return total / _HOURLY_TOTAL


# ---- noise: the draws of one ad-day (docs/sandbox.md "Noise"; bench/experiments.py draws from these same functions)

# Day-level overdispersion. Counts are binomial draws, and on top of that every rate an ad has on a day is multiplied
# by a lognormal factor of mean 1: exp(MARKET·z_market + AD·z_ad − (MARKET² + AD²)/2). z_market is one draw per ad
# account and day, shared by all its ads (weekday, auction pressure: variants move together, so it cancels in a
# comparison); z_ad is each ad's own draw (its luck in the auction that day: why two identical ads differ by more than
# chance). The sizes are modelling choices (no public source measures them): docs/sandbox.md says so.
MARKET_DAY_SIGMA = 0.10
AD_DAY_SIGMA = 0.05
LINK_CLICK_SHARE, LANDING_VIEW_SHARE, UNIQUE_CLICK_SHARE = 0.65, 0.72, 0.9
ENGAGEMENT_RATE, VIDEO_VIEW_RATE, LEAD_RATE = 0.004, 0.25, 0.09
ADD_TO_CART_RATE, CHECKOUT_RATE, PURCHASE_RATE = 0.14, 0.5, 0.55
ORDER_VALUE_SIGMA = 0.6  # log-sd of one order's value around the account's average order value


class SeededDraws:
    """Generators seeded by a hash of parts (deterministic for a seed, day and ad). Calling it re-seeds one PCG64 and
    returns its generator, valid until the next call: ten times cheaper than making a generator per ad-day."""

    def __init__(self) -> None:
        import numpy

        self._bits = numpy.random.PCG64(0)
        self._generator = numpy.random.Generator(self._bits)
        self._state = self._bits.state

    def __call__(self, *parts) -> numpy.random.Generator:
        digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=32).digest()
        self._state["state"] = {
            "state": int.from_bytes(digest[:16], "little"),
            "inc": int.from_bytes(digest[16:], "little") | 1,
        }
        self._state["has_uint32"] = self._state["uinteger"] = 0
        self._bits.state = self._state
        return self._generator


# The functions below take numbers (the sandbox, one ad-day at a time) or numpy arrays (the calibration bench,
# thousands of experiments at once); with numbers they stay in plain Python, which is several times faster.


def _is_array(value) -> bool:
    return hasattr(value, "shape")


def _within(value, low: float, high: float):
    if _is_array(value):
        return value.clip(low, high)
    return min(high, max(low, float(value)))


def day_factor(market_z, ad_z):
    """The multiplier of a rate on one day (mean 1), from the market's and the ad's standard normal draws."""
    exponent = MARKET_DAY_SIGMA * market_z + AD_DAY_SIGMA * ad_z - (MARKET_DAY_SIGMA**2 + AD_DAY_SIGMA**2) / 2
    if _is_array(exponent):
        import numpy

        return numpy.exp(exponent)
    return math.exp(exponent)


def paced_target(rng, allowance, cpm):
    """(what the day's pacing aims to spend, the day's CPM): 96–100 % of the allowance, the CPM ±10 %."""
    pace, price = rng.random((2,) + allowance.shape) if _is_array(allowance) else rng.random(2).tolist()
    return allowance * (PACING_LOW + (1 - PACING_LOW) * pace), cpm * (0.9 + 0.2 * price)


def bought(target, cpm, cap=None):
    """(impressions, spend) that a target buys at a CPM, at most cap impressions; spend never exceeds the target."""
    if _is_array(target) or _is_array(cpm):
        import numpy

        impressions = numpy.floor(target * 1000 / cpm).astype(numpy.int64)
        if cap is not None:
            impressions = numpy.minimum(impressions, cap)
        return impressions, numpy.minimum(numpy.floor(impressions * cpm / 1000), numpy.floor(target)).astype(
            numpy.int64
        )
    impressions = int(target * 1000 / cpm)
    if cap is not None:
        impressions = min(impressions, int(cap))
    return impressions, min(int(impressions * cpm / 1000), int(target))


def binomial(rng, n, p):
    """A binomial draw (p held to [0, 1])."""
    return rng.binomial(n, _within(p, 0.0, 1.0))


def draw_clicks(rng, impressions, ctr, factor):
    """Clicks of a day: binomial in the impressions at the ad's CTR times the day's factor."""
    return binomial(rng, impressions, ctr * factor)


def draw_purchases(rng, landing_page_views, conv, factor):
    """(add to cart, initiate checkout, purchases) of a day: each step binomial in the one before; conv (the ad's
    conversion factor, ~1) times the day's factor scales the first step, and the last up to a factor of 1."""
    add_to_cart = binomial(rng, landing_page_views, ADD_TO_CART_RATE * conv * factor)
    checkout = binomial(rng, add_to_cart, CHECKOUT_RATE)
    return add_to_cart, checkout, binomial(rng, checkout, PURCHASE_RATE * _within(conv, 0.0, 1.0))


def draw_order_value(rng, purchases, average_order_value):
    """The value of a day's purchases: a sum of lognormal orders, approximated by one lognormal of the same mean."""
    if _is_array(purchases):
        import numpy

        sigma = ORDER_VALUE_SIGMA / numpy.sqrt(numpy.maximum(purchases, 1))
        value = (
            purchases
            * average_order_value
            * numpy.exp(sigma * rng.standard_normal(purchases.shape) - sigma * sigma / 2)
        )
        return numpy.floor(value).astype(numpy.int64)
    if not purchases:
        return 0
    sigma = ORDER_VALUE_SIGMA / math.sqrt(purchases)
    return int(purchases * average_order_value * math.exp(sigma * float(rng.standard_normal()) - sigma * sigma / 2))


# ---- simulation


class _Plan:
    """An account's objects, loaded once for a run of days."""

    def __init__(self, sb, account: dict, only_ads: set[str] | None) -> None:
        store = sb.store
        self.sb, self.account = sb, account
        self.draws = SeededDraws()
        aid = account["id"]
        self.tz = account_tz(account)
        currency = account.get("currency", "USD")
        self.minor = 10 ** CURRENCIES.get(currency, ("", 2))[1]
        self.rate = USD_RATE.get(currency, 1.0)
        self.aov = (35 + 75 * _u("aov", aid)) * self.rate * self.minor
        self.campaigns = {c["id"]: c for c in store.list("campaign", account_id=aid)}
        self.adsets = {s["id"]: s for s in store.list("adset", account_id=aid)}
        self.effects = true_effects(sb)
        # A disabled or unsettled account (billing failed, closed, …) delivers nothing; a grace period still does.
        delivering = int(account.get("account_status", 1) or 1) in DELIVERING_ACCOUNT_STATUSES
        ads = [a for a in store.list("ad", account_id=aid) if delivering and (only_ads is None or a["id"] in only_ads)]
        creative_cache: dict[str | None, dict | None] = {}
        from .ads import REVIEW_SECONDS

        self.ads = []  # live candidates: (ad, adset, campaign, live periods, ctr, conv, video)
        for a in ads:
            s, c = self.adsets.get(a.get("adset_id")), self.campaigns.get(a.get("campaign_id"))
            if s is None or c is None:
                continue
            review = a.get("_review") or {}
            if review.get("violation"):
                continue
            cid = (a.get("creative") or {}).get("id")
            if cid not in creative_cache:
                creative_cache[cid] = store.get(cid) if cid else None
            creative = creative_cache[cid]
            start = max(
                a.created,
                review.get("submitted", a.created) + REVIEW_SECONDS,
                float(s.get("start_time") or s.created),
                float(c.get("start_time") or c.created),
            )
            ends = [float(x) for x in (s.get("end_time"), c.get("stop_time")) if x]
            end = min(ends) if ends else float("inf")
            periods = live_periods(a, s, c, (start, end))
            if not periods:
                continue
            effect = self.effects.get(a["id"], 1.0)
            ctr_effect, cvr_effect = effect_multipliers(effect)
            ctr_rate, cvr_rate = effect_rates(effect)
            ctr = (creative_ctr(creative) if ctr_rate is None else ctr_rate) * ctr_effect
            conv = (
                0.7
                + 0.6 * _u("conv", json.dumps((creative or {}).get("object_story_spec"), sort_keys=True, default=str))
                if cvr_rate is None
                else cvr_rate
            ) * cvr_effect
            video = (creative or {}).get("_kind") == "video"
            self.ads.append((a, s, c, periods, ctr, conv, video))
        # split tests: ad set -> [(start, end, share of its audience)] from the cells naming it or its campaign
        from .studies import split_windows

        split_adsets, split_campaigns = split_windows(store)
        self.splits: dict[str, list[tuple[float, float, float]]] = {}
        for sid, s in self.adsets.items():
            windows = split_adsets.get(sid, []) + split_campaigns.get(s.get("campaign_id"), [])
            if windows:
                self.splits[sid] = windows
        self.adset_info: dict[str, tuple] = {}
        for s in {x[1]["id"]: x[1] for x in self.ads}.values():
            targeting = s.get("targeting") or {}
            cells, cum, cpm_factor = build_template(targeting, account)
            tpl = _template_id(sb, cells, cum)
            audience = int(s.get("_audience_size") or 0) or _audience(targeting)
            breadth = min(3.0, max(0.6, (5_000_000 / audience) ** 0.18))
            goal = s.get("optimization_goal", "")
            g_cpm, g_ctr, g_conv = GOAL_FACTORS.get(goal, (1.0, 1.0, 1.0))
            cpm_minor = CPM_USD * breadth * cpm_factor * g_cpm * self.rate * self.minor
            promoted = s.get("promoted_object") or {}
            pixel = bool(promoted.get("pixel_id"))
            purchase = pixel and promoted.get("custom_event_type") == "PURCHASE"
            growth = float(s.get("_cpm_growth_per_day") or 0.0)
            start_day = _local_day(float(s.get("start_time") or s.created), self.tz)
            self.adset_info[s["id"]] = (
                tpl,
                audience,
                cpm_minor,
                g_ctr,
                g_conv,
                pixel,
                purchase,
                _schedule_weights(s.get("adset_schedule") or []),
                growth,
                start_day,
            )
        # lifetime budgets: spend so far per object; saturation: impressions so far per ad set
        self.spent: dict[str, int] = {}
        self.shown: dict[str, int] = {}
        db = sb.store.db
        for col in ("adset_id", "campaign_id"):
            for oid, total, shown in db.execute(
                f"SELECT {col}, SUM(spend), SUM(impressions) FROM delivery_days WHERE account_id=? GROUP BY {col}",
                (aid,),
            ):
                self.spent[oid] = int(total or 0)
                if col == "adset_id":
                    self.shown[oid] = int(shown or 0)

    def _lifetime_allowance(self, obj: dict, end_key: str, day: date) -> float:
        budget = int(obj["lifetime_budget"])
        remaining = max(0, budget - self.spent.get(obj["id"], 0))
        end = obj.get(end_key)
        if end:
            last = _local_day(float(end) - 1, self.tz)
            days_left = max(1, (last - day).days + 1)
        else:
            days_left = 30
        return remaining / days_left

    def _split_share(
        self, sid: str, day_start: float, day_end: float, weekday: int, live: tuple[float, float]
    ) -> float:
        """The share of its audience an ad set reaches on a day: 1 outside split tests; a cell's
        treatment_percentage / 100 for the part of the ad set's traffic that day (its ads' live hours, its
        schedule) inside the study's window."""
        schedule = self.adset_info[sid][7]
        total = _fraction(day_start, day_end, live, weekday, schedule)
        if total <= 0:
            return 1.0
        share = 1.0
        for start, end, pct in self.splits[sid]:
            inside = _fraction(day_start, day_end, (max(live[0], start), min(live[1], end)), weekday, schedule)
            share -= min(1.0, inside / total) * (1.0 - pct)
        return max(0.01, share)

    def simulate_day(self, day: date, seed: int) -> list[tuple]:
        day_start, day_end = day_bounds(day, self.tz)
        weekday = (day.weekday() + 1) % 7  # 0 = Sunday, as adset_schedule counts
        live = []
        for entry in self.ads:
            a, s, c, periods, ctr, conv, video = entry
            if all(end <= day_start or start >= day_end for start, end in periods):
                continue
            info = self.adset_info[s["id"]]
            f = sum(_fraction(day_start, day_end, period, weekday, info[7]) for period in periods)
            if f > 0:
                live.append((entry, f))
        if not live:
            return []
        # budgets: ad set allowance for the day (campaign budget shared by delivering ad sets)
        by_adset: dict[str, list] = {}
        for item in live:
            by_adset.setdefault(item[0][1]["id"], []).append(item)
        by_campaign: dict[str, list[str]] = {}
        for sid in by_adset:
            by_campaign.setdefault(self.adsets[sid]["campaign_id"], []).append(sid)
        allowance: dict[str, float] = {}
        for cid, sids in by_campaign.items():
            c = self.campaigns[cid]
            if c.get("daily_budget"):
                campaign_budget = float(int(c["daily_budget"]))
            elif c.get("lifetime_budget"):
                campaign_budget = self._lifetime_allowance(c, "stop_time", day)
            else:
                campaign_budget = None
            for sid in sids:
                s = self.adsets[sid]
                if campaign_budget is not None:
                    allowance[sid] = campaign_budget / len(sids)
                elif s.get("daily_budget"):
                    allowance[sid] = float(int(s["daily_budget"]))
                elif s.get("lifetime_budget"):
                    allowance[sid] = self._lifetime_allowance(s, "end_time", day)
                else:
                    allowance[sid] = 0.0
        rows = []
        iso = day.isoformat()
        aid = self.account["id"]
        market_ctr_z, market_conv_z = self.draws(seed, iso, aid, "market").standard_normal(2).tolist()
        for sid, items in by_adset.items():
            tpl, audience, cpm_minor, g_ctr, g_conv, pixel, purchase, _, growth, start_day = self.adset_info[sid]
            objective = self.campaigns[self.adsets[sid]["campaign_id"]].get("objective", "")
            leads_on = objective == "OUTCOME_LEADS"
            weekend = 1.08 if weekday in (0, 6) else 1.0
            trend = (1.0 + growth) ** max(0, (day - start_day).days) if growth else 1.0
            weights = [entry[4] ** 1.5 for entry, _ in items]
            total_w = sum(weights)
            if sid in self.splits:  # a split-test cell reaches only its share of the people
                window = (
                    min(p[0] for entry, _ in items for p in entry[3]),
                    max(p[1] for entry, _ in items for p in entry[3]),
                )
                audience = audience * self._split_share(sid, day_start, day_end, weekday, window)
            daily_people = audience * DAILY_ACTIVE_SHARE
            # saturation: the impressions each person of the pool has had so far; the same people see it more
            pressure = self.shown.get(sid, 0) / max(audience, 1)
            repeat = min(MAX_DAILY_FREQUENCY / 2, 1.0 + SATURATION * pressure)
            # the people this ad set can reach at its budget (what object_reach de-duplicates over)
            pool = int(min(audience, max(1000, 30 * allowance[sid] * 1000 / cpm_minor)))
            for (entry, f), w in zip(items, weights):
                a, s, c, _, ctr, conv, video = entry
                rng = self.draws(seed, iso, a["id"])
                share = w / total_w
                target, cpm = paced_target(rng, allowance[sid] * share * f, cpm_minor * weekend * trend)
                impressions, spend = bought(target, cpm, int(daily_people * share * f))
                if impressions <= 0:
                    continue
                freq = min(MAX_DAILY_FREQUENCY, (1.0 + impressions / max(daily_people * share, 1.0)) * repeat)
                reach = max(1, int(impressions / freq))
                own_ctr_z, own_conv_z = rng.standard_normal(2).tolist()
                clicks = int(draw_clicks(rng, impressions, ctr * g_ctr, day_factor(market_ctr_z, own_ctr_z)))
                unique = min(reach, int(binomial(rng, clicks, UNIQUE_CLICK_SHARE)))
                link = int(binomial(rng, clicks, LINK_CLICK_SHARE))
                lpv = int(binomial(rng, link, LANDING_VIEW_SHARE))
                engagements = clicks + int(binomial(rng, impressions - clicks, ENGAGEMENT_RATE))
                conv_factor = day_factor(market_conv_z, own_conv_z)
                views = leads = atc = ic = purchases = value = 0
                if video:
                    views = int(binomial(rng, impressions, VIDEO_VIEW_RATE))
                if leads_on:
                    leads = int(binomial(rng, clicks, LEAD_RATE * conv * g_conv * conv_factor))
                if pixel:
                    atc, ic, purchases = (int(v) for v in draw_purchases(rng, lpv, conv * g_conv, conv_factor))
                    if not purchase:
                        purchases = 0
                    value = int(draw_order_value(rng, purchases, self.aov))
                spend = max(0, spend)
                self.shown[sid] = self.shown.get(sid, 0) + impressions
                self.spent[sid] = self.spent.get(sid, 0) + spend
                self.spent[c["id"]] = self.spent.get(c["id"], 0) + spend
                rows.append(
                    (
                        aid,
                        iso,
                        a["id"],
                        sid,
                        c["id"],
                        tpl,
                        pool,
                        impressions,
                        reach,
                        clicks,
                        unique,
                        link,
                        spend,
                        lpv,
                        engagements,
                        views,
                        leads,
                        atc,
                        ic,
                        purchases,
                        value,
                    )
                )
        return rows


_INSERT = "INSERT OR IGNORE INTO delivery_days VALUES(" + ",".join("?" * 21) + ")"


def _simulate(sb, account: dict, days: Iterable[date], only_ads: set[str] | None = None) -> int:
    days = list(days)
    if not days:
        return 0
    plan = _Plan(sb, account, only_ads)
    seed = get_seed(sb)
    rows: list[tuple] = []
    for day in days:
        rows.extend(plan.simulate_day(day, seed))
    db = sb.store.db
    db.execute("BEGIN")
    try:
        db.executemany(_INSERT, rows)
        db.execute("COMMIT")
    except Exception:
        db.execute("ROLLBACK")
        raise
    return len(rows)


def _state(sb, account_id: str) -> tuple[date, date] | None:
    row = sb.store.db.execute(
        "SELECT first_day, last_day FROM delivery_accounts WHERE account_id=?", (account_id,)
    ).fetchone()
    return (date.fromisoformat(row[0]), date.fromisoformat(row[1])) if row else None


def _set_state(sb, account_id: str, first: date, last: date) -> None:
    sb.store.db.execute(
        "INSERT OR REPLACE INTO delivery_accounts(account_id, first_day, last_day) VALUES(?,?,?)",
        (account_id, first.isoformat(), last.isoformat()),
    )


DELIVERY_TYPES = frozenset({"campaign", "adset", "ad", "adaccount"})


def before_change(sb, stored, data: dict, now: float) -> None:
    """The store's hook before an object is updated: fix the history of its ad account up to yesterday (the days
    completed so far were delivered under the state they had), and log a status change with its time."""
    if stored.type not in DELIVERY_TYPES:
        return
    account_id = stored["id"] if stored.type == "adaccount" else stored.account_id
    if account_id and sb.store.get(account_id) is not None:
        ensure_simulated(sb, account_id, date.max - timedelta(days=2))
    if stored.type != "adaccount" and data.get("status") != stored.get("status"):
        data["_status_log"] = [*(stored.get("_status_log") or []), [now, stored.get("status"), data.get("status")]]


def active_periods(obj: dict) -> list[tuple[float, float]]:
    """When the object's configured status was ACTIVE, from its status log (before the first change it had the
    change's old status; with no log, its status now holds throughout)."""
    log = obj.get("_status_log") or []
    status, since = (log[0][1] if log else obj.get("status")), float("-inf")
    periods = []
    for at, _, new in log:
        if status == "ACTIVE" and at > since:
            periods.append((since, float(at)))
        status, since = new, float(at)
    if status == "ACTIVE":
        periods.append((since, float("inf")))
    return periods


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(max(x0, y0), min(x1, y1)) for x0, x1 in a for y0, y1 in b if max(x0, y0) < min(x1, y1)]


def live_periods(ad: dict, adset: dict, campaign: dict, window: tuple[float, float]) -> list[tuple[float, float]]:
    """When an ad could deliver: it, its ad set and its campaign ACTIVE at once, inside its start/end window."""
    periods = [window]
    for obj in (ad, adset, campaign):
        periods = _overlap(periods, active_periods(obj))
    return periods


def ensure_simulated(sb, account_id: str, until_day: date) -> None:
    """Simulate the account's missing complete days up to until_day (inclusive; never today or later), in
    order, with the objects' current state, and persist them. Idempotent."""
    _db(sb)
    with sb.store.lock:
        account = _account(sb, account_id)
        tz = account_tz(account)
        today = datetime.fromtimestamp(sb.now(), tz).date()
        until = min(until_day, today - timedelta(days=1))
        state = _state(sb, account_id)
        if state is None:
            ads = sb.store.list("ad", account_id=account_id)
            if not ads:
                return
            first = max(min(_local_day(a.created, tz) for a in ads), today - timedelta(days=MAX_HISTORY_DAYS))
            start = first
        else:
            first, last = state
            start = last + timedelta(days=1)
        if until < start:
            return
        _simulate(sb, account, (start + timedelta(days=i) for i in range((until - start).days + 1)))
        _set_state(sb, account_id, first, until)


def settle(sb) -> None:
    """Simulate every account's complete days (called before the sandbox clock moves)."""
    _db(sb)
    for account in sb.store.list("adaccount"):
        ensure_simulated(sb, account["id"], date.max - timedelta(days=2))


# ---- reading


def _where(account_id: str, since: date, until: date, campaign_ids, adset_ids, ad_ids) -> tuple[str, list]:
    sql = " WHERE account_id=? AND day>=? AND day<=?"
    args: list = [account_id, since.isoformat(), until.isoformat()]
    for col, ids in (("campaign_id", campaign_ids), ("adset_id", adset_ids), ("ad_id", ad_ids)):
        if ids is not None:
            ids = [str(i) for i in ids]
            if not ids:
                return sql + " AND 0", args
            sql += f" AND {col} IN ({','.join('?' * len(ids))})"
            args += ids
    return sql, args


_COLUMNS = "day, campaign_id, adset_id, ad_id, tpl, audience, " + ", ".join(METRICS)


def iter_day_totals(
    sb, account_id: str, since: date, until: date, *, campaign_ids=None, adset_ids=None, ad_ids=None
) -> Iterator[DeliveryRow]:
    """One row per ad-day with the day's totals (breakdown columns empty): the fast path when no breakdown is
    asked. Reads what is stored (call ensure_simulated first)."""
    _db(sb)
    sql, args = _where(account_id, since, until, campaign_ids, adset_ids, ad_ids)
    days: dict[str, date] = {}
    for r in sb.store.db.execute(f"SELECT {_COLUMNS} FROM delivery_days{sql} ORDER BY day, ad_id", args):
        day = days.get(r[0]) or days.setdefault(r[0], date.fromisoformat(r[0]))
        yield DeliveryRow(day, account_id, r[1], r[2], r[3], "", "", "", "", "", "", *r[6:])


BREAKDOWNS = ("age", "gender", "country", "publisher_platform", "platform_position", "impression_device")


def _bounds(totals, points: list[int]) -> list[list[int] | None]:
    """Chained cumulative rounding: per metric, its cumulative amount at each template point (0..S). Pointwise,
    so any subset of points gives the same numbers; exact totals at S, and a child metric never exceeds its
    parent between two points."""
    out: list[list[int] | None] = [None] * len(METRICS)
    imp = totals[0]
    out[0] = [imp * c // S for c in points]
    for child, parent in _CHAIN:
        x, pb = totals[child], out[parent]
        out[child] = [x * c // totals[parent] for c in pb] if x and pb is not None else None
    return out


def split(totals, cum: list[int]) -> list[list[int]]:
    """Per cell of a template (cumulative weights `cum`), the metric values (METRICS order); sums are exact."""
    b = _bounds(totals, cum)
    return [[(bb[k + 1] - bb[k]) if bb is not None else 0 for bb in b] for k in range(len(cum) - 1)]


def _groups(sb, tpl: int, dims: tuple[str, ...] | None) -> tuple[list[int], list[tuple[tuple, list]]]:
    """Template cells grouped by the breakdown dims: (points, [(6 labels with "" for other dims, runs)]) where
    runs are (i, j) index pairs into points."""
    cache = sb._delivery_templates
    key = ("groups", tpl, dims)
    hit = cache.get(key)
    if hit is not None:
        return hit
    cells, cum = _template(sb, tpl)
    keep = [i for i, name in enumerate(BREAKDOWNS) if dims is None or name in dims]
    runs: dict[tuple, list[list[int]]] = {}
    prev = None
    for k, cell in enumerate(cells):
        label = tuple(cell[i] if i in keep else "" for i in range(6))
        if label == prev:
            runs[label][-1][1] = k + 1
        else:
            runs.setdefault(label, []).append([k, k + 1])
        prev = label
    needed = sorted({cum[i] for rs in runs.values() for r in rs for i in r})
    where = {c: i for i, c in enumerate(needed)}
    groups = [(label, [(where[cum[a]], where[cum[b]]) for a, b in rs]) for label, rs in runs.items()]
    hit = cache[key] = (needed, groups)
    return hit


def iter_rows(
    sb,
    account_id: str,
    since: date,
    until: date,
    *,
    campaign_ids=None,
    adset_ids=None,
    ad_ids=None,
    breakdowns: Iterable[str] | None = None,
) -> Iterator[DeliveryRow]:
    """The stored rows per day × ad × breakdown cell (cells with impressions only), ordered by day and ad.
    Reads what is stored: call ensure_simulated(sb, account_id, until) first.

    `breakdowns` (optional, for speed): the breakdown columns the caller will group by; the others come back
    as "" and the cells are pre-summed over them (() = one row per ad-day, like iter_day_totals). The numbers
    are exactly the sums of the full cells'."""
    _db(sb)
    dims = None if breakdowns is None else tuple(sorted(set(breakdowns)))
    if dims is not None and not set(dims) <= set(BREAKDOWNS):
        raise ValueError(f"breakdowns must be among {BREAKDOWNS}")
    sql, args = _where(account_id, since, until, campaign_ids, adset_ids, ad_ids)
    days: dict[str, date] = {}
    make = DeliveryRow
    for r in sb.store.db.execute(f"SELECT {_COLUMNS} FROM delivery_days{sql} ORDER BY day, ad_id", args):
        points, groups = _groups(sb, r[4], dims)
        totals = r[6:]
        day = days.get(r[0]) or days.setdefault(r[0], date.fromisoformat(r[0]))
        if len(groups) == 1:
            yield make(day, account_id, r[1], r[2], r[3], *groups[0][0], *totals)
            continue
        b = _bounds(totals, points)
        imp = b[0] or []  # impressions, the chain's root, always has bounds
        for label, runs in groups:
            if len(runs) == 1:
                i, j = runs[0]
                if imp[j] == imp[i]:
                    continue
                yield make(
                    day, account_id, r[1], r[2], r[3], *label, *[(bb[j] - bb[i]) if bb is not None else 0 for bb in b]
                )
            else:
                values = [sum(bb[j] - bb[i] for i, j in runs) if bb is not None else 0 for bb in b]
                if values[0]:
                    yield make(day, account_id, r[1], r[2], r[3], *label, *values)


def dedup_reach(reach_sum: int, audience: int) -> int:
    """People reached over several ad-days of one pool of A people (the `audience` column: the ad set's
    reachable pool, min(audience size, ~30 days of impressions at its budget)): A·(1 − e^(−Σreach/A)), never
    above Σreach."""
    if reach_sum <= 0:
        return 0
    audience = max(audience, 1)
    return min(reach_sum, max(1, int(round(audience * (1 - math.exp(-reach_sum / audience))))))


def object_reach(
    sb, account_id: str, since: date, until: date, *, campaign_ids=None, adset_ids=None, ad_ids=None
) -> int:
    """De-duplicated reach of the selected rows over the period: per ad set dedup_reach(Σ daily reach, its
    audience), then the ad sets combined the same way over the sum of their audiences (at least the largest
    ad set's reach). Deterministic and sub-additive."""
    _db(sb)
    sql, args = _where(account_id, since, until, campaign_ids, adset_ids, ad_ids)
    per_adset = sb.store.db.execute(
        f"SELECT adset_id, SUM(reach), MAX(audience) FROM delivery_days{sql} GROUP BY adset_id", args
    ).fetchall()
    if not per_adset:
        return 0
    reaches = [dedup_reach(int(r or 0), int(a or 1)) for _, r, a in per_adset]
    if len(reaches) == 1:
        return reaches[0]
    audience = sum(int(a or 1) for _, _, a in per_adset)
    return max(max(reaches), dedup_reach(sum(reaches), audience))


def status(sb) -> dict:
    _db(sb)
    out: dict[str, Any] = {"seed": get_seed(sb), "simulated_days": {}, "first_day": {}, "last_day": {}, "rows": {}}
    for account_id, first, last in sb.store.db.execute(
        "SELECT account_id, first_day, last_day FROM delivery_accounts ORDER BY account_id"
    ):
        out["simulated_days"][account_id] = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
        out["first_day"][account_id], out["last_day"][account_id] = first, last
    for account_id, n in sb.store.db.execute("SELECT account_id, COUNT(*) FROM delivery_days GROUP BY account_id"):
        out["rows"][account_id] = n
    out["true_effects"] = true_effects(sb)
    return out


# ---- scenarios (POST /__sandbox/delivery {"scenario": {...}})


class ScenarioError(ValueError):
    pass


@overload
def _int(spec: dict, name: str, default: int, low: int, high: int) -> int: ...
@overload
def _int(spec: dict, name: str, default: None, low: int, high: int) -> int | None: ...
def _int(spec: dict, name: str, default: int | None, low: int, high: int) -> int | None:
    value = spec.get(name)
    if value is None:  # absent or null: the default
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ScenarioError(f"scenario.{name} must be an integer in [{low}, {high}]")
    return value


def _per_adset(spec: dict, name: str, n_adsets: int, check) -> list:
    """A scenario knob given once for every ad set or as a list with one value per ad set."""
    value = spec.get(name)
    values = value if isinstance(value, list) else [value] * n_adsets
    if len(values) != n_adsets:
        raise ScenarioError(f"scenario.{name} must be one value or a list of {n_adsets} (one per ad set)")
    return [None if v is None else check(v) for v in values]


def _audience_value(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 10**10:
        raise ScenarioError("scenario.audience_size must be an integer in [100, 10000000000] (or a list per ad set)")
    return value


def _growth_value(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -0.5 <= value <= 1:
        raise ScenarioError("scenario.cpm_growth_per_day must be a number in [-0.5, 1] (or a list per ad set)")
    return float(value)


def _scenario_effects(spec: dict, n_ads: int) -> dict[int, float | dict]:
    """effects (a list, one per ad in order) and true_effects ({ad index: …}) → {ad index: stored effect}."""
    out: dict[int, float | dict] = {}
    effects = spec.get("effects") or []
    if not isinstance(effects, list):
        raise ScenarioError('scenario.effects must be a list of numbers (or {"ctr", "cvr"} objects)')
    by_index = spec.get("true_effects") or {}
    if not isinstance(by_index, dict):
        raise ScenarioError(
            'scenario.true_effects must map ad indexes (0-based) to a multiplier or {"ctr": m, "cvr": m}'
        )
    try:
        for i, value in enumerate(effects[:n_ads]):
            out[i] = effect_value(value)
        for key, value in by_index.items():
            index = int(key)
            if not 0 <= index < n_ads:
                raise ScenarioError(f"scenario.true_effects: ad index {key} is not in [0, {n_ads - 1}]")
            out[index] = effect_value(value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise ScenarioError(f"scenario effects: {exc}") from None
    return out


def _study_spec(spec: dict, n_adsets: int, account: dict) -> dict | None:
    """scenario.study: true, or {"name", "end_days" (7: the study ends at midnight N days after today),
    "treatment_percentages" (one per ad set, summing to 100; default an equal split)}. None when absent/false."""
    from .studies import MAX_CELLS, MIN_CELLS

    value = spec.get("study")
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict) or set(value) - {"name", "end_days", "treatment_percentages"}:
        raise ScenarioError('scenario.study must be true or {"name", "end_days", "treatment_percentages"}')
    if not MIN_CELLS <= n_adsets <= MAX_CELLS:
        raise ScenarioError(
            f"scenario.study puts each ad set in its own cell: it needs {MIN_CELLS} to {MAX_CELLS} "
            f"ad sets (scenario.adsets), not {n_adsets}"
        )
    if not account.get("_business_id"):
        raise ScenarioError(f"scenario.study: ad account {account['id']} belongs to no business")
    _int(value, "end_days", 7, 1, 30)
    pcts = value.get("treatment_percentages")
    if pcts is not None and (
        not isinstance(pcts, list)
        or len(pcts) != n_adsets
        or any(isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 100 for p in pcts)
        or sum(pcts) != 100
    ):
        raise ScenarioError(
            f"scenario.study.treatment_percentages must be {n_adsets} integers from 1 to 100 "
            "summing to 100 (one per ad set)"
        )
    return value


def _scenario_study(
    sb, value: dict, account: dict, adset_ids: list[str], name: str, t0: float, today: date, tz
) -> tuple[str, list[str]]:
    """A SPLIT_TEST study of the account's business with one cell per ad set, from the scenario's start (at most
    30 days before its end) to midnight end_days after today."""
    from .studies import MAX_DAYS, SPLIT_TEST, insert_study

    end = day_bounds(today + timedelta(days=value.get("end_days", 7)), tz)[0]
    start = max(t0, end - MAX_DAYS * DAY)
    n = len(adset_ids)
    pcts = value.get("treatment_percentages") or [100 // n + (1 if i < 100 % n else 0) for i in range(n)]
    cells = [
        {"name": f"Cell {chr(ord('A') + i)}", "treatment_percentage": pct, "adsets": [sid]}
        for i, (sid, pct) in enumerate(zip(adset_ids, pcts))
    ]
    return insert_study(
        sb.store,
        business_id=account["_business_id"],
        name=str(value.get("name") or f"{name} test"),
        study_type=SPLIT_TEST,
        start=start,
        end=end,
        cells=cells,
        now=sb.now(),
        user_id=sb.store.kv_get("demo_user_id"),
    )


POLICY_BREAKING_TEXT = "Miracle cure: feel young again"  # ads.policy_violation → DISAPPROVED


def create_scenario(sb, spec: dict) -> dict:
    """A campaign, its ad sets, creatives and N ACTIVE approved ads, backdated `days` days (to midnight in the
    account's time zone), with their history simulated. Keys: ads (1), days (30), adsets (1), creatives (1),
    daily_budget (minor units per ad set; default 2000 per ad in it), lifetime_budget (per ad set, instead;
    ends `end_days` (7) days after today), objective (OUTCOME_SALES), optimization_goal, pixel (true for
    OUTCOME_SALES: promotes the account's pixel with PURCHASE), targeting (US 18-65), adset_schedule,
    account_id (the first ad account), name; knobs: effects ([multiplier or {"ctr","cvr"} per ad] →
    true_effects), true_effects ({ad index: multiplier or {"ctr": m, "cvr": m}}), audience_size (people the ad
    sets can reach, instead of the targeting's estimate: small → underspends, frequency climbs),
    cpm_growth_per_day (CPM × (1 + g)^days since the ad set started: CPC rises day by day) — both one value or
    a list per ad set — disapproved (the last N ads get a creative that breaks an ad policy) and study (true or
    {name, end_days, treatment_percentages}: the ad sets, one per cell, in a SPLIT_TEST study of the account's
    business; the answer adds study_id and cell_ids)."""
    import time as _time

    from .ads import REVIEW_SECONDS, new_review

    began = _time.perf_counter()
    _db(sb)
    if not isinstance(spec, dict):
        raise ScenarioError("scenario must be an object")
    store = sb.store
    n_ads = _int(spec, "ads", 1, 1, 100_000)
    n_days = _int(spec, "days", 30, 0, MAX_HISTORY_DAYS)
    n_adsets = _int(spec, "adsets", 1, 1, n_ads)
    n_creatives = _int(spec, "creatives", 1, 1, n_ads)
    account_id = spec.get("account_id") or next((a["id"] for a in store.list("adaccount")), None)
    account = store.get(account_id) if isinstance(account_id, str) else None
    if account is None or account.type != "adaccount":
        raise ScenarioError(f"unknown ad account {account_id!r}")
    per_adset = math.ceil(n_ads / n_adsets)
    daily = _int(spec, "daily_budget", None, 1, 10**12)
    lifetime = _int(spec, "lifetime_budget", None, 1, 10**13)
    if daily is None and lifetime is None:
        daily = 2000 * per_adset
    objective = spec.get("objective", "OUTCOME_SALES")
    pixel_wanted = spec.get("pixel", objective == "OUTCOME_SALES")
    goal = spec.get("optimization_goal") or (
        "OFFSITE_CONVERSIONS"
        if pixel_wanted
        else {"OUTCOME_LEADS": "LEAD_GENERATION", "OUTCOME_AWARENESS": "REACH"}.get(objective, "LINK_CLICKS")
    )
    targeting = spec.get("targeting") or {"geo_locations": {"countries": ["US"]}, "age_min": 18, "age_max": 65}
    if not isinstance(targeting, dict):
        raise ScenarioError("scenario.targeting must be an object")
    effects = _scenario_effects(spec, n_ads)
    audiences = _per_adset(spec, "audience_size", n_adsets, _audience_value)
    growths = _per_adset(spec, "cpm_growth_per_day", n_adsets, _growth_value)
    n_disapproved = _int(spec, "disapproved", 0, 0, n_ads)
    study_spec = _study_spec(spec, n_adsets, account)
    name = str(spec.get("name") or "Scenario")
    tz = account_tz(account)
    today = datetime.fromtimestamp(sb.now(), tz).date()
    first_day = today - timedelta(days=n_days)
    t0 = day_bounds(first_day, tz)[0] - REVIEW_SECONDS
    digits = account["id"][4:]
    rows: list[tuple] = []
    promoted = None
    if pixel_wanted:
        pixel = next(iter(store.list("pixel", account_id=account["id"])), None)
        if pixel is None:
            pixel_id = store.new_id("pixel")
            rows.append(
                (
                    "pixel",
                    pixel_id,
                    {"id": pixel_id, "name": f"{name} Pixel", "code": ""},
                    account["id"],
                    account["id"],
                    t0,
                )
            )
        else:
            pixel_id = pixel["id"]
        promoted = {"pixel_id": pixel_id, "custom_event_type": "PURCHASE"}
    campaign_id = store.new_id("campaign")
    rows.append(
        (
            "campaign",
            campaign_id,
            {
                "id": campaign_id,
                "account_id": digits,
                "name": name,
                "objective": objective,
                "status": "ACTIVE",
                "buying_type": "AUCTION",
                "special_ad_categories": [],
                "special_ad_category_country": [],
                "source_campaign_id": "0",
                "adlabels": [],
                "start_time": t0,
                "is_adset_budget_sharing_enabled": False,
            },
            account["id"],
            account["id"],
            t0,
        )
    )
    end_time = day_bounds(today + timedelta(days=_int(spec, "end_days", 7, 1, 3650)), tz)[0] if lifetime else None
    adset_ids = []
    for i in range(n_adsets):
        sid = store.new_id("adset")
        data = {
            "id": sid,
            "account_id": digits,
            "campaign_id": campaign_id,
            "name": f"{name} - ad set {i + 1}",
            "status": "ACTIVE",
            "optimization_goal": goal,
            "billing_event": "IMPRESSIONS",
            "is_dynamic_creative": False,
            "adlabels": [],
            "source_adset_id": "0",
            "start_time": t0,
            "pacing_type": ["standard"],
            "targeting": targeting,
        }
        if lifetime:
            data.update(lifetime_budget=str(lifetime), end_time=end_time)
        else:
            data["daily_budget"] = str(daily)
        if spec.get("adset_schedule"):
            data.update(adset_schedule=spec["adset_schedule"], pacing_type=["day_parting"])
        if promoted:
            data["promoted_object"] = promoted
        if audiences[i]:
            data["_audience_size"] = audiences[i]
        if growths[i]:
            data["_cpm_growth_per_day"] = growths[i]
        rows.append(("adset", sid, data, campaign_id, account["id"], t0))
        adset_ids.append(sid)
    page = next(iter(store.list("page")), None)
    page_id = page["id"] if page else "0"
    creative_ids, creative_data = [], {}
    for i in range(n_creatives):
        cid = store.new_id("adcreative")
        link = {
            "link": f"https://scenario.example.com/{i + 1}",
            "message": f"{name}: offer number {i + 1}",
            "name": f"Offer {i + 1}",
            "call_to_action": {"type": "SHOP_NOW"},
        }
        data = {
            "id": cid,
            "account_id": digits,
            "name": f"{name} - creative {i + 1}",
            "status": "ACTIVE",
            "adlabels": [],
            "object_story_spec": {"page_id": page_id, "link_data": link},
            "object_type": "SHARE",
            "_kind": "link",
            "_cards": [],
            "_page_id": page_id,
            "_media": {},
            "call_to_action_type": "SHOP_NOW",
        }
        rows.append(("adcreative", cid, data, account["id"], account["id"], t0))
        creative_ids.append(cid)
        creative_data[cid] = data
    bad_creative = None
    if n_disapproved:
        bad_creative = store.new_id("adcreative")
        link = {
            "link": "https://scenario.example.com/miracle",
            "message": POLICY_BREAKING_TEXT,
            "name": "Miracle offer",
            "call_to_action": {"type": "SHOP_NOW"},
        }
        data = {
            "id": bad_creative,
            "account_id": digits,
            "name": f"{name} - policy-breaking creative",
            "status": "ACTIVE",
            "adlabels": [],
            "object_story_spec": {"page_id": page_id, "link_data": link},
            "object_type": "SHARE",
            "_kind": "link",
            "_cards": [],
            "_page_id": page_id,
            "_media": {},
            "call_to_action_type": "SHOP_NOW",
        }
        rows.append(("adcreative", bad_creative, data, account["id"], account["id"], t0))
        creative_data[bad_creative] = data
    ad_ids = []
    for i in range(n_ads):
        ad_id = store.new_id("ad")
        sid, cid = adset_ids[i // per_adset], creative_ids[i % n_creatives]
        if bad_creative and i >= n_ads - n_disapproved:
            cid = bad_creative
        data = {
            "id": ad_id,
            "account_id": digits,
            "name": f"{name} - ad {i + 1}",
            "status": "ACTIVE",
            "adset_id": sid,
            "campaign_id": campaign_id,
            "source_ad_id": "0",
            "creative": {"id": cid},
            "adlabels": [],
            "_review": new_review(t0, creative_data[cid]),
        }
        rows.append(("ad", ad_id, data, sid, account["id"], t0))
        ad_ids.append(ad_id)
    store.insert_many(rows)
    if effects:
        set_true_effects(sb, {ad_ids[i]: e for i, e in effects.items()})
    study = _scenario_study(sb, study_spec, account, adset_ids, name, t0, today, tz) if study_spec is not None else None
    created = _time.perf_counter() - began
    with store.lock:
        state = _state(sb, account["id"])
        if state is not None and n_days:
            first, last = state
            new_last = min(last, today - timedelta(days=1))
            if new_last >= first_day:
                _simulate(
                    sb,
                    account,
                    (first_day + timedelta(days=i) for i in range((new_last - first_day).days + 1)),
                    set(ad_ids),
                )
            _set_state(sb, account["id"], min(first, first_day), last)
        ensure_simulated(sb, account["id"], today - timedelta(days=1))
    count = sb.store.db.execute(
        "SELECT COUNT(*) FROM delivery_days WHERE account_id=? AND campaign_id=?", (account["id"], campaign_id)
    ).fetchone()[0]
    return {
        "account_id": account["id"],
        "campaign_id": campaign_id,
        "adset_ids": adset_ids,
        "creative_ids": creative_ids,
        "ad_ids": ad_ids,
        "first_day": first_day.isoformat(),
        "disapproved_ad_ids": ad_ids[n_ads - n_disapproved :] if n_disapproved else [],
        **({"study_id": study[0], "cell_ids": study[1]} if study else {}),
        "ad_days": count,
        "seconds": {"create": round(created, 3), "simulate": round(_time.perf_counter() - began - created, 3)},
    }

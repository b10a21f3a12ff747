"""Audience estimates and targeting sentences for an ad account: reachestimate, delivery_estimate,
targetingsentencelines.

Sizes are deterministic and come from the spec's breadth: people in the chosen places (bundled data set),
times the age and gender shares, times the detailed-targeting shares (OR inside a group, AND across groups),
minus exclusions, times the placement and device shares. Facebook answers at least 1 000.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from facebook_business.adobjects.adset import AdSet

from .context import Ctx
from .errors import param_error
from .money import CURRENCIES
from .targeting import PLATFORM_POSITIONS, catalog, validate_targeting

WORLD_AUDIENCE = 3_000_000_000  # people reachable on Meta's apps: the base of interest shares
MIN_AUDIENCE = 1_000
CUSTOM_AUDIENCE_SIZE = 120_000  # one custom audience, until audiences are modelled
GEO_MARKET_SIZE = 1_500_000
COUNTRY_GROUP_SHARE = {
    "worldwide": 1.0,
    "asia": 0.42,
    "europe": 0.14,
    "africa": 0.12,
    "latam": 0.14,
    "south_america": 0.1,
    "central_america": 0.03,
    "caribbean": 0.01,
    "north_america": 0.1,
    "middle_east": 0.05,
    "oceania": 0.008,
    "eea": 0.1,
    "gcc": 0.012,
    "gulf_cooperation_council": 0.012,
    "asean": 0.13,
    "apec": 0.35,
    "mercosur": 0.08,
    "nafta": 0.12,
    "emea": 0.3,
}
PLATFORM_SHARE = {"facebook": 0.85, "instagram": 0.6, "audience_network": 0.35, "messenger": 0.4, "threads": 0.1}
DEVICE_SHARE = {"mobile": 0.95, "desktop": 0.3}
GENDER_SHARE = {1: 0.49, 2: 0.51}
GOALS = sorted(v for k, v in vars(AdSet.OptimizationGoal).items() if not k.startswith("_") and isinstance(v, str))
ACTION_RATE = {
    "LINK_CLICKS": 0.009,
    "LANDING_PAGE_VIEWS": 0.006,
    "POST_ENGAGEMENT": 0.02,
    "THRUPLAY": 0.04,
    "PAGE_LIKES": 0.003,
    "LEAD_GENERATION": 0.0015,
    "QUALITY_LEAD": 0.0008,
    "OFFSITE_CONVERSIONS": 0.001,
    "VALUE": 0.001,
    "APP_INSTALLS": 0.002,
    "CONVERSATIONS": 0.002,
    "EVENT_RESPONSES": 0.004,
    "AD_RECALL_LIFT": 0.03,
    "QUALITY_CALL": 0.0005,
    "VISIT_INSTAGRAM_PROFILE": 0.006,
}
CURVE_SPEND_USD = (0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)  # daily spend points, major units of USD
CPM_USD = 7.0


def _age_weight(age: int) -> float:
    """Share of Facebook's audience at one age (65 stands for 65+)."""
    if age < 18:
        return 0.008
    if age < 25:
        return 0.022
    if age < 35:
        return 0.026
    if age < 45:
        return 0.02
    if age < 55:
        return 0.016
    if age < 65:
        return 0.012
    return 0.1


ADULT_WEIGHT = sum(_age_weight(a) for a in range(18, 66))


def _jitter(*parts: Any) -> float:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return 0.8 + int.from_bytes(digest[:4], "big") % 4000 / 10000


def _union(shares: list[float]) -> float:
    rest = 1.0
    for share in shares:
        rest *= 1 - min(max(share, 0.0), 0.999)
    return 1 - rest


# ---- breadth


def _places(geo: dict) -> tuple[float, set[str]]:
    """People in a geo_locations block, and the countries it touches; nested places are not counted twice."""
    cat = catalog()
    countries = set(geo.get("countries", []))
    total: float = sum(cat.known_place("countries", c)["audience"] for c in countries)
    regions = {r["key"] for r in geo.get("regions", [])}
    touched = set(countries)
    for region in geo.get("regions", []):
        place = cat.known_place("regions", region["key"])
        touched.add(place["country_code"])
        if place["country_code"] not in countries:
            total += place["audience"]
    for city in geo.get("cities", []):
        place = cat.known_place("cities", city["key"])
        touched.add(place["country_code"])
        if place["country_code"] in countries or place["region_id"] in regions:
            continue
        radius = float(city.get("radius", 25 if city.get("distance_unit", "mile") == "mile" else 40))
        miles = radius if city.get("distance_unit", "mile") == "mile" else radius / 1.609
        total += place["audience"] * min(1.5, 0.6 + miles / 50)
    for zip_code in geo.get("zips", []):
        place = cat.known_place("zips", zip_code["key"])
        touched.add(place["country_code"])
        if place["country_code"] not in countries and place["region_id"] not in regions:
            total += place["audience"]
    for spot in geo.get("custom_locations", []):
        radius = float(spot.get("radius", 10))
        miles = radius if spot.get("distance_unit", "mile") == "mile" else radius / 1.609
        total += 40_000 * max(miles, 0.63) ** 1.5
    for group in geo.get("country_groups", []):
        total += WORLD_AUDIENCE * COUNTRY_GROUP_SHARE.get(group, 0.05)
    total += GEO_MARKET_SIZE * len(geo.get("geo_markets", []))
    return total, touched


def _item_share(field: str, item: Any) -> float:
    cat = catalog()
    known = cat.enum(field, item) if isinstance(item, int) else cat.category(item.get("id"))
    if known is None:
        return 0.02 * _jitter(field, item)
    middle = (known["audience_size_lower_bound"] + known["audience_size_upper_bound"]) / 2
    return min(0.95, middle / WORLD_AUDIENCE)


def _group_share(group: dict) -> float:
    shares = []
    for field, items in group.items():
        if field == "custom_audiences":
            shares += [CUSTOM_AUDIENCE_SIZE * _jitter("ca", a["id"]) / WORLD_AUDIENCE for a in items]
        else:
            shares += [_item_share(field, item) for item in items]
    return _union(shares) if shares else 1.0


def _placement_share(spec: dict) -> float:
    share = 1.0
    platforms = spec.get("publisher_platforms")
    if platforms:
        parts = []
        for platform in platforms:
            position_field, positions = PLATFORM_POSITIONS[platform]
            chosen = spec.get(position_field)
            factor = 1.0 if chosen is None else 0.5 + 0.5 * len(set(chosen)) / len(positions)
            parts.append(PLATFORM_SHARE[platform] * factor)
        share *= _union(parts) / _union(list(PLATFORM_SHARE.values()))
    devices = spec.get("device_platforms")
    if devices:
        share *= _union([DEVICE_SHARE[d] for d in set(devices)]) / _union(list(DEVICE_SHARE.values()))
    return share


def audience_size(spec: dict) -> int:
    """Deterministic number of people a validated targeting spec reaches."""
    geo = spec.get("geo_locations") or {}
    people, touched = _places(geo)
    audiences = spec.get("custom_audiences") or []
    if audiences:
        custom = sum(CUSTOM_AUDIENCE_SIZE * _jitter("ca", a["id"]) for a in audiences)
        people = min(people, custom) if people else custom
    excluded_geo = spec.get("excluded_geo_locations") or {}
    if excluded_geo and people:
        minus, _ = _places({k: v for k, v in excluded_geo.items()})
        minus = min(minus, people * 0.95) if _places_overlap(excluded_geo, touched) else 0
        people -= minus
    ages = range(spec.get("age_min", 18), spec.get("age_max", 65) + 1)
    people *= sum(_age_weight(a) for a in ages) / ADULT_WEIGHT
    genders = set(spec.get("genders") or [1, 2])
    people *= sum(GENDER_SHARE[g] for g in genders)
    top = {k: v for k, v in spec.items() if k in _DETAILED}
    for group in ([top] if top else []) + list(spec.get("flexible_spec") or []):
        people *= _group_share(group)
    exclusions = spec.get("exclusions") or {}
    if exclusions:
        people *= 1 - 0.9 * _group_share(exclusions)
    for audience in spec.get("excluded_custom_audiences") or []:
        people -= min(people * 0.05, CUSTOM_AUDIENCE_SIZE * _jitter("ca", audience["id"]) * 0.1)
    if spec.get("locales"):
        people *= min(1.0, 0.35 * len(spec["locales"]))
    people *= _placement_share(spec)
    return max(0, int(people))


def _places_overlap(excluded: dict, touched: set[str]) -> bool:
    _, countries = _places(excluded)
    return bool(countries & touched)


_DETAILED = {
    "interests",
    "behaviors",
    "life_events",
    "family_statuses",
    "industries",
    "income",
    "work_positions",
    "work_employers",
    "education_schools",
    "education_majors",
    "education_statuses",
    "relationship_statuses",
    "interested_in",
    "home_ownership",
    "home_type",
    "home_value",
    "household_composition",
    "moms",
    "net_worth",
    "office_type",
    "generation",
    "politics",
    "ethnic_affinity",
    "user_adclusters",
}


def _round(number: float) -> int:
    """Three significant digits, as Facebook rounds estimates."""
    if number <= 0:
        return 0
    digits = max(0, int(math.floor(math.log10(number))) - 2)
    return int(round(number / 10**digits) * 10**digits)


def bounds(spec: dict) -> tuple[int, int]:
    """(lower, upper) audience bounds; never below 1 000."""
    size = audience_size(spec)
    lower = max(MIN_AUDIENCE, _round(size * 0.85))
    upper = max(lower, _round(size * 1.15))
    return lower, upper


# ---- routes


def _spec(ctx: Ctx) -> dict:
    ctx.load_account(ctx.match[0])
    raw = ctx.p.get("targeting_spec")
    if raw is None or raw == "":
        raise param_error("The parameter targeting_spec is required", field="targeting_spec")
    return validate_targeting(ctx, raw, special_ad_categories=[], creating=False)


def reach_estimate(ctx: Ctx) -> dict:
    """GET act_x/reachestimate."""
    lower, upper = bounds(_spec(ctx))
    return {"data": {"users_lower_bound": lower, "users_upper_bound": upper, "estimate_ready": True}}


def delivery_estimate(ctx: Ctx) -> dict:
    """GET act_x/delivery_estimate: audience bounds, daily active people and a daily outcomes curve."""
    spec = _spec(ctx)
    goal = ctx.p.str("optimization_goal", required=True)
    if goal not in GOALS:
        raise param_error(f"Param optimization_goal must be one of {{{', '.join(GOALS)}}}", field="optimization_goal")
    lower, upper = bounds(spec)
    dau = _round((lower + upper) / 2 * 0.4)
    currency = ctx.load_account(ctx.match[0]).get("currency", "USD")
    minor = 10 ** CURRENCIES.get(currency, ("", 2))[1]
    per_usd = _USD_RATE.get(currency, 1.0)
    return {
        "data": [
            {
                "daily_outcomes_curve": _curve(dau, goal, minor, per_usd),
                "estimate_dau": dau,
                "estimate_mau_lower_bound": lower,
                "estimate_mau_upper_bound": upper,
                "estimate_ready": True,
                "targeting_optimization_types": [],
            }
        ]
    }


_USD_RATE = {
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


def _curve(dau: int, goal: str, minor: int, per_usd: float) -> list[dict]:
    """Daily spend (account minor units) -> reach, impressions and actions, with diminishing returns."""
    cap = dau * 1.6
    points = []
    for usd in CURVE_SPEND_USD:
        bought = usd / CPM_USD * 1000
        impressions = int(cap * (1 - math.exp(-bought / cap))) if cap else 0
        reach = int(impressions / (1 + impressions / max(dau, 1) * 0.6)) if impressions else 0
        if goal == "REACH":
            actions = reach
        elif goal == "IMPRESSIONS":
            actions = impressions
        else:
            actions = int(impressions * ACTION_RATE.get(goal, 0.002))
        points.append(
            {"spend": int(round(usd * per_usd * minor)), "reach": reach, "impressions": impressions, "actions": actions}
        )
    return points


# ---- targeting sentences


def targeting_sentence_lines(ctx: Ctx) -> dict:
    """GET act_x/targetingsentencelines: the spec as Ads Manager's human-readable lines."""
    spec = _spec(ctx)
    return {
        "id": f"{ctx.match[0]}/targetingsentencelines",
        "params": spec,
        "targetingsentencelines": sentence_lines(spec),
    }


_LOCATION_TITLE = {
    ("home",): "Location - Living In:",
    ("recent",): "Location - Recently In:",
    ("travel_in",): "Location - Traveling In:",
}


def _place_names(geo: dict) -> list[str]:
    cat = catalog()
    names = [cat.known_place("countries", c)["name"] for c in geo.get("countries", [])]
    for region in geo.get("regions", []):
        place = cat.known_place("regions", region["key"])
        names.append(f"{place['name']}, {place['country_name']}")
    for city in geo.get("cities", []):
        place = cat.known_place("cities", city["key"])
        unit = "mi" if city.get("distance_unit", "mile") == "mile" else "km"
        radius = f" (+{city['radius']} {unit})" if "radius" in city else ""
        names.append(f"{place['name']}{radius} {place['region']}, {place['country_name']}")
    for zip_code in geo.get("zips", []):
        place = cat.known_place("zips", zip_code["key"])
        names.append(f"{place['name']} ({place['primary_city']}, {place['region']}), {place['country_name']}")
    for spot in geo.get("custom_locations", []):
        where = spot.get("address_string") or f"({spot.get('latitude')}, {spot.get('longitude')})"
        names.append(f"{where} (+{spot.get('radius', 10)} {spot.get('distance_unit', 'mile')})")
    names += [group.replace("_", " ").title() for group in geo.get("country_groups", [])]
    names += [m.get("name") or m["key"] for m in geo.get("geo_markets", [])]
    return names


def _group_lines(group: dict) -> list[str]:
    cat = catalog()
    lines = []
    for field, items in group.items():
        names = []
        for item in items:
            if isinstance(item, int):
                known = cat.enum(field, item)
                names.append(known["name"] if known else str(item))
            else:
                names.append(item.get("name") or item["id"])
        label = field.replace("_", " ").capitalize()
        lines.append(f"{label}: {' or '.join(names)}")
    return lines


def sentence_lines(spec: dict) -> list[dict]:
    """Ads Manager's summary of a validated spec: [{content, children}]."""
    lines: list[dict] = []
    geo = spec.get("geo_locations") or {}
    if _place_names(geo):
        kinds = tuple(sorted(set(geo.get("location_types") or [])))
        lines.append({"content": _LOCATION_TITLE.get(kinds, "Location:"), "children": _place_names(geo)})
    if _place_names(spec.get("excluded_geo_locations") or {}):
        lines.append({"content": "Excluded Location:", "children": _place_names(spec["excluded_geo_locations"])})
    age_max = spec.get("age_max", 65)
    lines.append(
        {"content": "Age:", "children": [f"{spec.get('age_min', 18)} - {'65+' if age_max == 65 else age_max}"]}
    )
    genders = set(spec.get("genders") or [])
    if genders and genders != {1, 2}:
        lines.append({"content": "Gender:", "children": ["Male" if genders == {1} else "Female"]})
    top = {k: v for k, v in spec.items() if k in _DETAILED}
    groups = ([top] if top else []) + list(spec.get("flexible_spec") or [])
    for index, group in enumerate(groups):
        lines.append(
            {"content": "People Who Match:" if index == 0 else "And Must Also Match:", "children": _group_lines(group)}
        )
    if spec.get("exclusions"):
        lines.append({"content": "Exclude:", "children": _group_lines(spec["exclusions"])})
    if spec.get("custom_audiences"):
        lines.append({"content": "Custom Audience:", "children": [a["id"] for a in spec["custom_audiences"]]})
    if spec.get("excluded_custom_audiences"):
        lines.append(
            {"content": "Excluded Custom Audience:", "children": [a["id"] for a in spec["excluded_custom_audiences"]]}
        )
    lines.append({"content": "Placements:", "children": [_placements(spec)]})
    if spec.get("device_platforms"):
        lines.append(
            {"content": "Devices:", "children": [" and ".join(d.capitalize() for d in spec["device_platforms"])]}
        )
    return lines


def _placements(spec: dict) -> str:
    platforms = spec.get("publisher_platforms")
    if not platforms:
        return "Advantage+ placements (all placements)"
    parts = []
    for platform in platforms:
        position_field, _ = PLATFORM_POSITIONS[platform]
        title = platform.replace("_", " ").title()
        chosen = spec.get(position_field)
        parts.append(f"{title}: {', '.join(p.replace('_', ' ') for p in chosen)}" if chosen else f"{title}: all")
    return "; ".join(parts)

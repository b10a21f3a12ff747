"""Targeting specs: the bundled data set (places, interests, behaviors, ...) and Facebook's validation rules.

Rules R9-R13, R15 and R11 of docs/adset_rules.md, written from that table and Facebook's documentation
(never from our client). `validate_targeting` is shared by ad sets, targeting sentences and estimates.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pycountry
from facebook_business.adobjects.targeting import Targeting

from .context import DEFAULT_VERSION, Ctx
from .errors import GraphError

DATA_DIR = Path(__file__).parent / "data"

KNOWN_KEYS = frozenset(v for k, v in vars(Targeting.Field).items() if not k.startswith("_") and isinstance(v, str))
GEO_KEYS = (
    "countries",
    "regions",
    "cities",
    "zips",
    "location_types",
    "custom_locations",
    "country_groups",
    "geo_markets",
)
LOCATION_KEYS = ("countries", "regions", "cities", "zips", "custom_locations", "country_groups", "geo_markets")
LOCATION_TYPES = frozenset({"home", "recent", "travel_in"})
COUNTRY_GROUPS = frozenset(
    {
        "worldwide",
        "africa",
        "asia",
        "caribbean",
        "central_america",
        "europe",
        "gulf_cooperation_council",
        "international_location",
        "latam",
        "middle_east",
        "north_america",
        "oceania",
        "south_america",
        "apec",
        "asean",
        "eea",
        "mercosur",
        "nafta",
        "android_app_store",
        "itunes_app_store",
        "android_paid_store",
        "itunes_paid_store",
        "emea",
        "gcc",
    }
)
# Detailed-targeting lists of {id, name}: the field and the data-set type its ids must belong to (None: any id).
CATEGORY_FIELDS: dict[str, str | None] = {
    "interests": "interests",
    "behaviors": "behaviors",
    "life_events": "life_events",
    "family_statuses": "family_statuses",
    "industries": "industries",
    "income": "income",
    "work_positions": "work_positions",
    "work_employers": None,
    "education_schools": None,
    "education_majors": None,
    "home_ownership": None,
    "home_type": None,
    "home_value": None,
    "household_composition": None,
    "moms": None,
    "net_worth": None,
    "office_type": None,
    "generation": None,
    "politics": None,
    "ethnic_affinity": None,
    "user_adclusters": None,
}
# Enumerations sent as lists of small integers.
EDUCATION_STATUSES = frozenset(range(1, 14))
RELATIONSHIP_STATUSES = frozenset({1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13})
INT_LIST_FIELDS: dict[str, frozenset[int] | None] = {
    "education_statuses": EDUCATION_STATUSES,
    "relationship_statuses": RELATIONSHIP_STATUSES,
    "interested_in": frozenset({1, 2}),
    "college_years": None,
    "locales": None,
}
AUDIENCE_FIELDS = ("custom_audiences", "excluded_custom_audiences")
GROUP_FIELDS = frozenset(CATEGORY_FIELDS) | frozenset(INT_LIST_FIELDS) | {"custom_audiences", "connections"}

PLATFORM_POSITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "facebook": (
        "facebook_positions",
        (
            "feed",
            "right_hand_column",
            "marketplace",
            "video_feeds",
            "story",
            "search",
            "instream_video",
            "facebook_reels",
            "facebook_reels_overlay",
            "profile_feed",
            "notification",
        ),
    ),
    "instagram": (
        "instagram_positions",
        ("stream", "story", "explore", "explore_home", "reels", "profile_feed", "ig_search", "profile_reels"),
    ),
    "audience_network": ("audience_network_positions", ("classic", "rewarded_video")),
    "messenger": ("messenger_positions", ("messenger_home", "sponsored_messages", "story")),
    "threads": ("threads_positions", ("threads_stream",)),
    "whatsapp": ("whatsapp_positions", ("status",)),
}
POSITION_FIELDS = {
    "facebook_positions",
    "instagram_positions",
    "audience_network_positions",
    "messenger_positions",
    "threads_positions",
    "whatsapp_positions",
}
DEVICE_PLATFORMS = frozenset(
    v for k, v in vars(Targeting.DevicePlatforms).items() if not k.startswith("_") and isinstance(v, str)
)  # Meta's spec: mobile, desktop, connected_tv
RESTRICTED_CATEGORIES = frozenset({"CREDIT", "EMPLOYMENT", "HOUSING", "FINANCIAL_PRODUCTS_SERVICES"})

MAX_LIST = 25_000

# ---- changelog rules by version (docs/adset_rules.md, "Changelog rules"); sources next to each rule below.
V26_RELEASED = 1785283200.0  # 2026-07-29 00:00 UTC: Marketing API v26.0
ALL_VERSIONS_2026_10_27 = 1793059200.0  # 2026-10-27 00:00 UTC: v26 changes reach every version


def api_version(ctx: Ctx | None) -> int:
    """The major version of the request (the path's vNN.0, as fb_sandbox/context.py records it)."""
    text = ctx.call.version if ctx is not None else DEFAULT_VERSION
    match = re.match(r"v(\d+)", str(text or DEFAULT_VERSION)) or re.match(r"v(\d+)", DEFAULT_VERSION)
    if match is None:
        raise ValueError(f"DEFAULT_VERSION {DEFAULT_VERSION!r} is not vNN.0")
    return int(match.group(1))


MAX_ZIPS = 50_000
MAX_STRING = 1_000
MAX_DEPTH = 8
CITY_RADIUS = {"mile": (10, 50), "kilometer": (17, 80)}
CUSTOM_RADIUS = {"mile": (0.63, 50), "kilometer": (1, 80)}
SPECIAL_MIN_RADIUS = {"mile": 15, "kilometer": 25}
ID_RE = re.compile(r"\d{1,20}")
ZIP_RE = re.compile(r"[A-Z]{2}:[A-Za-z0-9 -]{1,12}")
DMA_RE = re.compile(r"DMA:\d{1,6}")


# ---- the bundled data set


@dataclass
class Catalog:
    """The bundled targeting data, indexed: places by type and key, categories by id."""

    geo: dict[str, list[dict]] = field(default_factory=dict)
    categories: dict[str, list[dict]] = field(default_factory=dict)
    places: dict[str, dict[str, dict]] = field(default_factory=dict)
    by_id: dict[str, dict] = field(default_factory=dict)
    enums: dict[tuple[str, int], dict] = field(default_factory=dict)

    def place(self, kind: str, key: Any) -> dict | None:
        return self.places.get(kind, {}).get(str(key))

    def known_place(self, kind: str, key: Any) -> dict:
        """A place that targeting validation already found."""
        place = self.place(kind, key)
        if place is None:
            raise KeyError(f"{kind} {key!r} is not in the targeting data")
        return place

    def category(self, item_id: Any) -> dict | None:
        return self.by_id.get(str(item_id))

    def enum(self, kind: str, number: int) -> dict | None:
        """An education or relationship status by its small integer."""
        return self.enums.get((kind, number))

    def all_categories(self) -> list[dict]:
        return [item for items in self.categories.values() for item in items]


def _read(name: str) -> dict:
    path = DATA_DIR / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """Load fb_sandbox/data/*.json once (built by fb_sandbox/data/build_targeting_data.py)."""
    geo = _read("targeting_geo.json")
    cats = _read("targeting_categories.json")
    cat = Catalog(geo=geo, categories=cats)
    for kind, items in geo.items():
        cat.places[kind] = {str(item["key"]): item for item in items}
    for items in cats.values():
        for item in items:
            if item["type"] in INT_LIST_FIELDS:
                cat.enums[(item["type"], int(item["id"]))] = item
            else:
                cat.by_id[str(item["id"])] = item
    return cat


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


# ---- errors


def invalid(message: str, *path: str) -> GraphError:
    """R9: 100/1487079 "Invalid Targeting Spec", blaming targeting (and the sub-field when known)."""
    return GraphError(
        "Invalid parameter",
        100,
        subcode=1487079,
        user_title="Invalid Targeting Spec",
        user_msg=message,
        blame=["targeting", *path[:1]],
    )


def _geo_invalid(detail: str, root: str = "geo_locations") -> GraphError:
    return invalid(f"Invalid data for field {root}: {detail}", root)


def _rule(message: str, subcode: int, title: str) -> GraphError:
    return GraphError(
        "Invalid parameter", 100, subcode=subcode, user_title=title, user_msg=message, blame=["targeting"]
    )


# ---- parsing


def parse_spec(raw: Any) -> dict:
    """The targeting parameter as a dict: an object, or its JSON text."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise invalid("The targeting spec is not valid JSON.") from None
    if not isinstance(raw, dict):
        raise invalid("The targeting spec must be a JSON object.")
    return raw


def _check_shape(spec: dict) -> None:
    """Bounds on any value: nesting depth, list lengths, string lengths, key and number types."""
    stack: list[tuple[Any, int, str, str]] = [(spec, 0, "", "")]
    while stack:
        value, depth, top, name = stack.pop()
        if depth > MAX_DEPTH:
            raise invalid(f"The field {top or 'targeting'} is nested too deeply.", top)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or len(key) > MAX_STRING:
                    raise invalid("Targeting field names must be short strings.", top)
                stack.append((item, depth + 1, top or key, key))
        elif isinstance(value, list):
            limit = MAX_ZIPS if name == "zips" else MAX_LIST
            if len(value) > limit:
                raise invalid(f"The field {name or top} has {len(value)} entries; at most {limit} are allowed.", top)
            stack.extend((item, depth + 1, top, name) for item in value)
        elif isinstance(value, str):
            if len(value) > MAX_STRING:
                raise invalid(f"A value of {top} is longer than {MAX_STRING} characters.", top)
        elif isinstance(value, float) and not math.isfinite(value):
            raise invalid(f"The field {top} has a number that is not finite.", top)


def _int(value: Any, name: str, root: str | None = None) -> int:
    if isinstance(value, bool):
        raise invalid(f"The field {name} must be an integer.", root or name)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and value.isascii() and len(value) < 12:
        return int(value)
    raise invalid(f"The field {name} must be an integer.", root or name)


def _number(value: Any, name: str, root: str) -> float:
    if isinstance(value, bool):
        raise invalid(f"The field {name} must be a number.", root)
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, int) and abs(value) < 10**15:
        return float(value)
    if isinstance(value, str) and len(value) < 40:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    raise invalid(f"The field {name} must be a number.", root)


def _list(value: Any, name: str, root: str | None = None) -> list:
    if not isinstance(value, list):
        raise invalid(f"The field {name} must be an array.", root or name)
    return value


def _str(value: Any, name: str, root: str | None = None) -> str:
    if not isinstance(value, str):
        raise invalid(f"The field {name} must be a string.", root or name)
    return value


def _id(value: Any, name: str, root: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**20:
        return str(value)
    if isinstance(value, str) and ID_RE.fullmatch(value.strip()):
        return value.strip()
    raise invalid(f"The field {name} needs numeric ids.", root)


# ---- geo_locations


def _geo(value: Any, root: str) -> dict:
    if not isinstance(value, dict):
        raise invalid(f"The field {root} must be an object.", root)
    cat = catalog()
    out: dict[str, Any] = {}
    for key, items in value.items():
        if key not in GEO_KEYS:
            raise _geo_invalid(f"unknown field {key!r}", root)
        if not isinstance(items, list):
            raise _geo_invalid(f"{key} must be an array", root)
        if key == "countries":
            codes = country_codes()
            for code in items:
                if not isinstance(code, str) or code not in codes:
                    raise _geo_invalid(f"{str(code)[:40]!r} is not a country code (ISO 3166-1 alpha-2)", root)
            out[key] = list(dict.fromkeys(items))
        elif key == "location_types":
            for kind in items:
                if not isinstance(kind, str) or kind not in LOCATION_TYPES:
                    raise _geo_invalid(f"location_types must be among {sorted(LOCATION_TYPES)}", root)
            out[key] = list(items)
        elif key == "country_groups":
            for group in items:
                if not isinstance(group, str) or group not in COUNTRY_GROUPS:
                    raise _geo_invalid(f"{str(group)[:40]!r} is not a country group", root)
            out[key] = list(items)
        elif key in ("regions", "cities", "zips"):
            out[key] = [_place(cat, key, item, root) for item in items]
        elif key == "custom_locations":
            out[key] = [_custom_location(item, root) for item in items]
        elif key == "geo_markets":
            out[key] = [_market(item, root) for item in items]
    return out


def _place(cat: Catalog, key: str, item: Any, root: str) -> dict:
    kind = {"regions": "regions", "cities": "cities", "zips": "zips"}[key]
    if not isinstance(item, dict) or "key" not in item:
        raise _geo_invalid(f"each of {key} must be an object with a key", root)
    place_key = item["key"]
    if isinstance(place_key, bool) or not isinstance(place_key, (str, int)):
        raise _geo_invalid(f"{key} keys must be strings", root)
    place = cat.place(kind, place_key)
    if place is None:
        raise _geo_invalid(f"{str(place_key)[:40]!r} is not a known {kind[:-1]}", root)
    out = {**item, "key": str(place_key), "name": place["name"], "country": place["country_code"]}
    if key == "cities":
        unit = item.get("distance_unit", "mile")
        if unit not in CITY_RADIUS:
            raise _geo_invalid("distance_unit must be mile or kilometer", root)
        if "radius" in item:
            radius = _number(item["radius"], f"{root}.cities.radius", root)
            low, high = CITY_RADIUS[unit]
            if not low <= radius <= high:
                raise _geo_invalid(f"a city radius must be between {low} and {high} {unit}s", root)
            out["radius"], out["distance_unit"] = item["radius"], unit
    return out


def _custom_location(item: Any, root: str) -> dict:
    if not isinstance(item, dict):
        raise _geo_invalid("each custom location must be an object", root)
    unit = item.get("distance_unit", "mile")
    if unit not in CUSTOM_RADIUS:
        raise _geo_invalid("distance_unit must be mile or kilometer", root)
    if "address_string" in item:
        _str(item["address_string"], f"{root}.custom_locations.address_string", root)
    elif "latitude" in item and "longitude" in item:
        lat = _number(item["latitude"], f"{root}.custom_locations.latitude", root)
        lon = _number(item["longitude"], f"{root}.custom_locations.longitude", root)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise _geo_invalid("latitude/longitude out of range", root)
    else:
        raise _geo_invalid("a custom location needs latitude and longitude, or address_string", root)
    if "radius" in item:
        radius = _number(item["radius"], f"{root}.custom_locations.radius", root)
        low, high = CUSTOM_RADIUS[unit]
        if not low <= radius <= high:
            raise _geo_invalid(f"a custom location radius must be between {low} and {high} {unit}s", root)
    return dict(item)


def _market(item: Any, root: str) -> dict:
    if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not DMA_RE.fullmatch(item["key"]):
        raise _geo_invalid("geo_markets entries need a key like DMA:501", root)
    return dict(item)


# ---- detailed targeting


def _categories(name: str, value: Any, root: str) -> list[dict]:
    expected = CATEGORY_FIELDS[name]
    cat = catalog()
    out = []
    for item in _list(value, name, root):
        raw_id = item.get("id") if isinstance(item, dict) else item
        item_id = _id(raw_id, name, root)
        if isinstance(item, dict) and "name" in item:
            _str(item["name"], f"{name}.name", root)
        entry = {"id": item_id}
        if expected is not None:
            known = cat.category(item_id)
            if known is None or known.get("type") != expected:
                raise invalid(f"{item_id} is not a valid id for {name}.", root)
            entry["name"] = known["name"]
        elif isinstance(item, dict) and "name" in item:
            entry["name"] = item["name"]
        out.append(entry)
    return out


def _int_list(name: str, value: Any, root: str) -> list[int]:
    allowed = INT_LIST_FIELDS[name]
    out = []
    for item in _list(value, name, root):
        number = _int(item, name, root)
        if (allowed is not None and number not in allowed) or number < 0:
            raise invalid(f"{number} is not a valid value for {name}.", root)
        out.append(number)
    return out


def _audiences(name: str, value: Any, root: str) -> list[dict]:
    out = []
    for item in _list(value, name, root):
        raw_id = item.get("id") if isinstance(item, dict) else item
        out.append({"id": _id(raw_id, name, root)})
    return out


def _group(group: Any, root: str) -> dict:
    if not isinstance(group, dict):
        raise invalid(f"Each entry of {root} must be an object.", root)
    out: dict[str, Any] = {}
    for name, value in group.items():
        if name not in GROUP_FIELDS:
            raise invalid(f"{name!r} cannot be used in {root}.", root)
        out[name] = _group_value(name, value, root)
    return out


def _group_value(name: str, value: Any, root: str) -> Any:
    if name in CATEGORY_FIELDS:
        return _categories(name, value, root)
    if name in INT_LIST_FIELDS:
        return _int_list(name, value, root)
    if name == "custom_audiences":
        return _audiences(name, value, root)
    return [{"id": _id(i.get("id") if isinstance(i, dict) else i, name, root)} for i in _list(value, name, root)]


# ---- placements (R15)


def _placements(spec: dict, version: int, now: float | None) -> None:
    for name in ("publisher_platforms", "device_platforms", *POSITION_FIELDS):
        if name in spec:
            for item in _list(spec[name], name):
                _str(item, name)
    for device in spec.get("device_platforms", []):
        if device not in DEVICE_PLATFORMS:
            raise _placement_error(f"{device!r} is not a device platform: use mobile and/or desktop.")
    platforms = spec.get("publisher_platforms")
    for platform in platforms or []:
        if platform not in PLATFORM_POSITIONS:
            raise _placement_error(f"{platform!r} is not a publisher platform: use {', '.join(PLATFORM_POSITIONS)}.")
    for platform, (position_field, positions) in PLATFORM_POSITIONS.items():
        given = spec.get(position_field)
        if given is None:
            continue
        if platforms is None:
            raise _placement_error(
                f"{position_field} needs publisher_platforms: automatic placements take no positions."
            )
        if platform not in platforms:
            raise _placement_error(f"{position_field} is given but {platform} is not in publisher_platforms.")
        for position in given:
            if position not in positions:
                raise _placement_error(f"{position!r} is not a {platform} position.")
    _placement_changes(spec, version, now)


def _placement_changes(spec: dict, version: int, now: float | None) -> None:
    """Placements Meta removed, by version (each rule cites its source and the version it applies from)."""
    # Facebook video feeds: no longer available from v24.0, "using it returns an error" (Meta Business SDK 24.0.0
    # release note, https://github.com/facebook/facebook-php-business-sdk/releases/tag/24.0.0). The position name
    # video_feeds and the error code are unverified.
    if version >= 24 and "video_feeds" in (spec.get("facebook_positions") or []):
        raise _placement_error(
            "The Facebook video feeds placement is no longer available (v24.0+): remove video_feeds "
            "from facebook_positions.",
            title="Placement Not Available",
        )
    # Instagram Explore: removed from v26.0, "returns errors if specified" ("Introducing Graph API v26.0 and Marketing
    # API v26.0", https://developers.facebook.com/blog/post/2026/07/29/introducing-graph-api-v26-and-marketing-api-v26/;
    # Meta SDK v26.0.0 release). Code and message not documented: 100/2490392 here is unverified. explore_home is a
    # distinct position that Meta did not name: kept.
    if version >= 26 and "explore" in (spec.get("instagram_positions") or []):
        raise _placement_error(
            "The Instagram Explore placement is no longer available (v26.0+): remove explore from instagram_positions.",
            title="Placement Not Available",
        )
    # Messenger Stories: `story` is silently removed from messenger_positions on create and update, v26.0 calls from
    # 2026-07-29, every version from 2026-10-27 (v26 blog above; Meta SDK v26.0.0 "silently removed"). Whether an
    # emptied list is dropped is unverified; an empty list would mean no position, so the key goes.
    messenger = spec.get("messenger_positions")
    if messenger and "story" in messenger and (version >= 26 or (now is not None and now >= ALL_VERSIONS_2026_10_27)):
        kept = [p for p in messenger if p != "story"]
        if kept:
            spec["messenger_positions"] = kept
        else:
            del spec["messenger_positions"]
    platforms = spec.get("publisher_platforms") or []
    instagram = spec.get("instagram_positions")
    # Threads: publisher_platforms needs both instagram and threads, threads_positions ["threads_stream"], and the
    # Instagram stream (feed) placement selected ("Threads App Ads", updated 2026-06-17,
    # https://developers.facebook.com/documentation/ads-commerce/marketing-api/ad-creative/threads-ads/creation/app-ads).
    # Code unverified.
    if "threads" in platforms and (
        "instagram" not in platforms or (instagram is not None and "stream" not in instagram)
    ):
        raise _placement_error(
            "Threads ads also need Instagram Feed: add instagram to publisher_platforms with stream "
            "in instagram_positions.",
            title="Threads Needs Instagram Feed",
        )
    # WhatsApp Status: only with Instagram Stories selected; no standalone Status campaigns ("Create ad creatives with
    # WhatsApp identity", updated 2026-06-24,
    # https://developers.facebook.com/documentation/ads-commerce/marketing-api/ads-in-whatsapp-status/whatsapp-identity).
    # Code unverified.
    if "whatsapp" in platforms and (
        "instagram" not in platforms or (instagram is not None and "story" not in instagram)
    ):
        raise _placement_error(
            "WhatsApp Status ads also need Instagram Stories: add instagram to publisher_platforms "
            "with story in instagram_positions.",
            title="WhatsApp Status Needs Instagram Stories",
        )


def _placement_error(message: str, title: str = "Placements are not consistent") -> GraphError:
    return _rule(message, 2490392, title)


# ---- the whole spec


def validate_targeting(
    ctx: Ctx | None, raw: Any, *, special_ad_categories: list[str] | None = None, creating: bool = True
) -> dict:
    """Check a targeting spec as Facebook does (R9-R13, R15, R11) and return the spec to store."""
    spec = parse_spec(raw)
    _check_shape(spec)
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key not in KNOWN_KEYS:
            raise invalid(f"{key!r} is not a valid targeting spec field.", key)
        if key in ("geo_locations", "excluded_geo_locations"):
            out[key] = _geo(value, key)
        elif key in ("age_min", "age_max"):
            out[key] = _int(value, key)
            if not 13 <= out[key] <= 65:
                raise invalid(f"{key} must be between 13 and 65.", key)
        elif key == "genders":
            genders = [_int(g, key) for g in _list(value, key)]
            if any(g not in (1, 2) for g in genders):
                raise invalid("genders must be 1 (men) and/or 2 (women).", key)
            out[key] = sorted(set(genders))
        elif key in CATEGORY_FIELDS or key in INT_LIST_FIELDS:
            out[key] = _group_value(key, value, key)
        elif key in AUDIENCE_FIELDS:
            out[key] = _audiences(key, value, key)
        elif key == "flexible_spec":
            out[key] = [_group(g, key) for g in _list(value, key)]
        elif key == "exclusions":
            out[key] = _group(value, key)
        elif key == "targeting_automation":
            out[key] = _automation(value)
        else:
            out[key] = copy.deepcopy(value)
    if "age_min" in out and "age_max" in out and out["age_max"] < out["age_min"]:
        raise invalid("age_max must be at least age_min.", "age_max")
    zips = sum(len(out.get(g, {}).get("zips", [])) for g in ("geo_locations", "excluded_geo_locations"))
    if zips > MAX_ZIPS:
        raise invalid(f"At most {MAX_ZIPS} zip codes may be targeted.", "geo_locations")
    version = api_version(ctx)
    _placements(out, version, ctx.now if ctx is not None else None)
    _location_required(out)
    _automation_rules(out, creating, version, special_ad_categories or [])
    _special_categories(out, special_ad_categories or [])
    out.setdefault("age_min", 18)
    out.setdefault("age_max", 65)
    return out


def _automation(value: Any) -> dict:
    if not isinstance(value, dict):
        raise invalid("targeting_automation must be an object.", "targeting_automation")
    out = copy.deepcopy(value)
    if "advantage_audience" in value:
        flag = value["advantage_audience"]
        number = _int(flag, "targeting_automation.advantage_audience", "targeting_automation")
        if number not in (0, 1):
            raise invalid("advantage_audience must be 0 or 1.", "targeting_automation")
        out["advantage_audience"] = number
    return out


def _location_required(spec: dict) -> None:
    geo = spec.get("geo_locations") or {}
    if any(geo.get(key) for key in LOCATION_KEYS) or spec.get("custom_audiences"):
        return
    raise _rule(
        "Your audience is missing a location. You can add a location or a Custom Audience.",
        1885364,
        "Location Required",
    )


DEFAULT_AGES = {"age_min": 18, "age_max": 65}


def restricted_setup(spec: dict) -> list[str]:
    """What makes a targeting spec neither "default" nor "relaxed" (v23.0 Advantage+ audience rule): non-default age,
    gender, custom-audience inclusion or detailed-targeting inclusion, each without its relaxation setting.
    Relaxations read as targeting_automation.individual_setting {age, gender} = 1 (Version 23.0 changelog),
    targeting_relaxation_types.custom_audience = 1 ("Advantage custom audience") and targeting_optimization =
    expansion_all (Advantage detailed targeting): that mapping is unverified."""
    auto = spec.get("targeting_automation") or {}
    individual = auto.get("individual_setting")
    individual = individual if isinstance(individual, dict) else {}
    relax = spec.get("targeting_relaxation_types")
    relax = relax if isinstance(relax, dict) else {}
    found = []
    ages = any(key in spec and spec[key] != value for key, value in DEFAULT_AGES.items())
    if ages and individual.get("age") != 1:
        found.append("age")
    if spec.get("genders") and sorted(spec["genders"]) != [1, 2] and individual.get("gender") != 1:
        found.append("gender")
    groups = [spec, *[g for g in spec.get("flexible_spec") or [] if isinstance(g, dict)]]
    if any(g.get("custom_audiences") for g in groups) and relax.get("custom_audience") != 1:
        found.append("custom audience")
    if (
        any(g.get(key) for g in groups for key in (*CATEGORY_FIELDS, *INT_LIST_FIELDS))
        and spec.get("targeting_optimization") != "expansion_all"
    ):
        found.append("detailed targeting")
    return found


def _automation_rules(spec: dict, creating: bool, version: int, categories: list[str]) -> None:
    """R12. advantage_audience on create (updates never), v23.0+: it defaults to 1 for a default or relaxed setup,
    otherwise an explicit 1 or 0 is required ("Version 23.0",
    https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/version23.0 ;
    "Marketing API: Changes to Advantage+ audience behaviours",
    https://developers.facebook.com/blog/post/2025/06/13/marketing-api-changes-to-advantage-plus-audience-behaviors/).
    Special ad category (housing, employment, credit, financial) campaigns follow the same rule from v26.0 (v26 blog,
    https://developers.facebook.com/blog/post/2026/07/29/introducing-graph-api-v26-and-marketing-api-v26/); before
    v26 they take the restricted audience as given (stored 0: unverified). The error code/subcode/title are a
    third-party observation (100/1870227 "Advantage Audience Flag Required"): unverified."""
    auto = spec.get("targeting_automation") or {}
    if creating and "advantage_audience" not in auto and version >= 23:
        restricted = restricted_setup(spec)
        special = bool(RESTRICTED_CATEGORIES & {str(c) for c in categories})
        if not restricted:
            spec["targeting_automation"] = {**auto, "advantage_audience": 1}
            return
        if special and version < 26:
            spec["targeting_automation"] = {**auto, "advantage_audience": 0}
            return
        raise _rule(
            f"To create your ad set with a non-default {', '.join(restricted)} setting, you need to enable or "
            "disable the Advantage audience feature: set targeting_automation.advantage_audience to 1 or 0.",
            1870227,
            "Advantage Audience Flag Required",
        )
    if auto.get("advantage_audience") == 1:
        if ("age_max" in spec and spec["age_max"] != 65) or spec.get("age_min", 18) > 25:
            raise _rule(
                "With Advantage audience on, age_max must be 65 and age_min at most 25: widen the ages or "
                "set advantage_audience to 0.",
                1870189,
                "Age Range Not Allowed With Advantage Audience",
            )


def _special_categories(spec: dict, categories: list[str]) -> None:
    restricted = sorted(RESTRICTED_CATEGORIES & {str(c) for c in categories})
    if not restricted:
        return
    what = restricted[0]
    problems = []
    if spec.get("age_min", 18) != 18 or spec.get("age_max", 65) != 65:
        problems.append("the age range must be 18 - 65+")
    if spec.get("genders") and sorted(spec["genders"]) != [1, 2]:
        problems.append("both genders must be targeted")
    geo = spec.get("geo_locations") or {}
    if geo.get("zips"):
        problems.append("zip codes cannot be targeted")
    for city in geo.get("cities", []):
        unit = city.get("distance_unit", "mile")
        if "radius" in city and float(city["radius"]) < SPECIAL_MIN_RADIUS[unit]:
            problems.append(f"a city radius must be at least {SPECIAL_MIN_RADIUS[unit]} {unit}s")
            break
    if spec.get("excluded_custom_audiences"):
        problems.append("custom audiences cannot be excluded")
    if problems:
        raise GraphError(
            "Invalid parameter",
            100,
            subcode=1487079,
            user_title="Targeting Not Allowed For Special Ad Category",
            user_msg=f"Ads in the {what} special ad category: " + "; ".join(problems) + ".",
            blame=["targeting"],
        )

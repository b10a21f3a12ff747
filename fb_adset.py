"""Ops: ad sets, targeting, placements and estimates.

Targeting specs are parsed and checked here (``parse_targeting``: rule R9; ``check_targeting``: R10-R13 and R15),
and so is every rule of docs/adset_rules.md that an ad set create or update can break: each is refused before
anything is sent, with the code and subcode Facebook would answer. Also: audience estimates, interest, category and
location search, placement recommendations, schedules and day parting.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, overload

import pycountry
from facebook_business.adobjects.adaccountreachestimate import AdAccountReachEstimate
from facebook_business.adobjects.adaccounttargetingunified import AdAccountTargetingUnified
from facebook_business.adobjects.adpromotedobject import AdPromotedObject
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.campaign import Campaign
from facebook_business.adobjects.flexibletargeting import FlexibleTargeting
from facebook_business.adobjects.outcomepredictionpoint import OutcomePredictionPoint
from facebook_business.adobjects.targeting import Targeting
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from fb_utils import (
    CLIENT_TAG_DESCRIPTION,
    CLIENT_TAG_PATTERN,
    AccountInfo,
    Amount,
    Change,
    CreateLookup,
    DataRow,
    EditedObject,
    FacebookError,
    GraphError,
    GraphRequest,
    ListPage,
    OpArgs,
    OpContext,
    OpData,
    OpKind,
    OpResult,
    OpSet,
    TaskGroup,
    ValidationError,
    WritePlan,
    absent_key,
    account_zone,
    add_status_ops,
    changed_data,
    check_max_budget,
    check_object_id,
    describe_change,
    format_money,
    graph_object,
    list_page,
    list_text,
    new_client_tag,
    parse_graph_time,
    recovered_words,
    sdk_enum_values,
    update_plan,
    when_text,
)

ops = OpSet("fb_adset")

# Codes of docs/adset_rules.md.
CODE = 100
SUBCODE_INVALID_SPEC = 1487079  # R9, R11
SUBCODE_NO_LOCATION = 1885364  # R10
SUBCODE_ADVANTAGE_MISSING = 1870227  # R12
SUBCODE_ADVANTAGE_AGE = 1870189  # R13
SUBCODE_PLACEMENTS = 2490392  # R15

MAX_LIST_ENTRIES = 25_000
MAX_ZIPS_TOTAL = 50_000
MAX_STRING_CHARS = 1_000
MAX_DEPTH = 12
AGE_LOWEST, AGE_HIGHEST, AGE_DEFAULT_MIN = 13, 65, 18
CITY_RADIUS_RANGE = {"mile": (10, 50), "kilometer": (17, 80)}
SPECIAL_CITY_RADIUS_MIN = {"mile": 15, "kilometer": 25}
RESTRICTED_CATEGORIES = ("CREDIT", "EMPLOYMENT", "HOUSING", "FINANCIAL_PRODUCTS_SERVICES")

# Positions per platform (docs/adset_rules.md R15). The SDK's Targeting lists the *_positions fields but no enum of
# their values, so the values are the documented ones, without the positions Meta removed (REMOVED_POSITIONS).
PLATFORM_POSITIONS: dict[str, tuple[str, ...]] = {
    "facebook": (
        "feed",
        "right_hand_column",
        "marketplace",
        "story",
        "search",
        "instream_video",
        "facebook_reels",
        "facebook_reels_overlay",
        "profile_feed",
        "notification",
    ),
    "instagram": ("stream", "story", "explore_home", "reels", "profile_feed", "ig_search", "profile_reels"),
    "audience_network": ("classic", "rewarded_video"),
    "messenger": ("messenger_home", "sponsored_messages"),
    "threads": ("threads_stream",),
    "whatsapp": ("status",),
}
# Positions Meta removed: never sent; a person who names one is told it is gone (one line, with the fix).
REMOVED_POSITIONS: dict[tuple[str, str], str] = {
    # v24.0: "Facebook video feeds placement is no longer available" (Meta Business SDK 24.0.0 release note,
    # https://github.com/facebook/facebook-php-business-sdk/releases/tag/24.0.0); the value name is unverified.
    ("facebook", "video_feeds"): "Facebook video feeds is no longer a placement (Meta removed it in v24.0)",
    # v26.0: Instagram Explore removed, "returns errors if specified" ("Introducing Graph API v26.0 and Marketing API
    # v26.0", https://developers.facebook.com/blog/post/2026/07/29/introducing-graph-api-v26-and-marketing-api-v26/).
    ("instagram", "explore"): "Instagram Explore is no longer a placement (Meta removed it in v26.0)",
    # v26.0 from 2026-07-29, every version from 2026-10-27: Messenger `story` silently dropped (same blog; Meta SDK
    # v26.0.0 release note). Facebook would drop it without a word; we say so instead of sending it.
    (
        "messenger",
        "story",
    ): "Messenger Stories is no longer a placement (Meta drops it silently since v26.0, all versions since 2026-10-27)",
}
POSITION_FIELDS = {platform: f"{platform}_positions" for platform in PLATFORM_POSITIONS}
ALL_POSITION_FIELDS = tuple(POSITION_FIELDS.values())
DEVICE_PLATFORMS = ("mobile", "desktop")  # what recommend_placements chooses from
VALID_DEVICE_PLATFORMS = sdk_enum_values(Targeting.DevicePlatforms)  # Meta's spec: connected_tv, desktop, mobile
LOCATION_KEYS = ("countries", "regions", "cities", "zips", "custom_locations", "country_groups", "geo_markets")

POSITION_NAMES = {
    "feed": "Feed",
    "stream": "Feed",
    "story": "Stories",
    "facebook_reels": "Reels",
    "reels": "Reels",
    "explore": "Explore",
    "explore_home": "Explore home",
    "marketplace": "Marketplace",
    "video_feeds": "Video feeds",
    "right_hand_column": "Right column",
    "search": "Search results",
    "instream_video": "In-stream video",
    "facebook_reels_overlay": "Reels overlay",
    "profile_feed": "Profile feed",
    "notification": "Notifications",
    "ig_search": "Search results",
    "profile_reels": "Profile reels",
    "classic": "Native, banner and interstitial",
    "rewarded_video": "Rewarded video",
    "messenger_home": "Inbox",
    "sponsored_messages": "Sponsored messages",
    "threads_stream": "Feed",
    "status": "Status",
}
PLATFORM_NAMES = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "audience_network": "Audience Network",
    "messenger": "Messenger",
    "threads": "Threads",
    "whatsapp": "WhatsApp",
}

OPTIMIZATION_GOALS = sdk_enum_values(AdSet.OptimizationGoal)
SPECIAL_AD_CATEGORIES = sdk_enum_values(Campaign.SpecialAdCategories)
OptimizationGoal = Literal[OPTIMIZATION_GOALS]  # type: ignore[valid-type]
SpecialAdCategory = Literal[SPECIAL_AD_CATEGORIES]  # type: ignore[valid-type]


# ---------------------------------------------------------------------------------------------------------------
# Coercion helpers: take what an LLM obviously means, refuse what is ambiguous (with a Fix)
# ---------------------------------------------------------------------------------------------------------------


def _refuse(message: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("targeting", "{reason}", {"reason": message, "fix": fix})


def _shown(value: Any, limit: int = 40) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _maybe_json(value: Any, opener: str) -> Any:
    """A nested value sent as a JSON string (LLMs double-encode) is taken as the JSON it holds."""
    if isinstance(value, str) and value.strip().startswith(opener):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise _refuse(
                f"is a string that is not valid JSON ({_shown(value)})",
                "Send the value itself (a list or an object), not a string",
            ) from None
    return value


def _listify(value: Any, *, split_commas: bool = False) -> Any:
    value = _maybe_json(value, "[")
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str) and split_commas:
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value]


def _whole_number(value: Any, what: str) -> int:
    """'25', 25.0 -> 25; booleans, fractions and words refused."""
    if isinstance(value, bool):
        raise _refuse(f"{what} must be a whole number, got {_shown(value)}", f"Send {what} as a number, e.g. 25")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,3}\s*", value):
        return int(value)
    raise _refuse(f"{what} must be a whole number, got {_shown(value)}", f"Send {what} as a number, e.g. 25")


def _age(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*65\s*\+\s*", value):
        return 65
    if isinstance(value, str) and re.search(r"\d\s*[-–]\s*\d", value):
        raise _refuse(
            f"is a range ({_shown(value)}), not an age",
            "Set age_min and age_max separately, e.g. age_min 25 and age_max 45",
        )
    age = _whole_number(value, "an age")
    if not AGE_LOWEST <= age <= AGE_HIGHEST:
        raise _refuse(
            f"must be from {AGE_LOWEST} to {AGE_HIGHEST}, got {age}",
            f"Use an age from {AGE_LOWEST} to {AGE_HIGHEST} (65 means 65 and older)",
        )
    return age


GENDER_WORDS = {
    "male": [1],
    "men": [1],
    "man": [1],
    "m": [1],
    "female": [2],
    "women": [2],
    "woman": [2],
    "f": [2],
    "all": [1, 2],
    "both": [1, 2],
}


def _gender(value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() in ("1", "2"):
        return int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (1, 2):
        return int(value)
    raise _refuse(
        f"must be 1 (men) or 2 (women), got {_shown(value)}",
        "Use genders [1] for men, [2] for women, or leave genders out for everyone",
    )


def _genders(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in GENDER_WORDS:
        return GENDER_WORDS[value.strip().lower()]
    value = _listify(value)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            word = item.strip().lower() if isinstance(item, str) else None
            out += GENDER_WORDS[word] if word in GENDER_WORDS and word not in ("all", "both") else [item]
        return out
    return value


def _locale(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, str):
        raise _refuse(
            f"must be a numeric locale id, got {_shown(value)}",
            "Locales are numbers (e.g. 6 = English (US), 24 = English (UK)); leave locales out for every language",
        )
    return _whole_number(value, "a locale id")


def _country(value: Any) -> str:
    if not isinstance(value, str):
        raise _refuse(
            f"must be a two-letter country code, got {_shown(value)}", "Use ISO 3166-1 alpha-2 codes such as US, GB, DE"
        )
    code = value.strip().upper()
    if len(code) == 2 and code.isalpha() and pycountry.countries.get(alpha_2=code) is not None:
        return code
    suggestion = _country_suggestion(value)
    fix = (
        f"Use {suggestion.alpha_2!r} for {suggestion.name}"
        if suggestion
        else "Use ISO 3166-1 alpha-2 codes such as US, GB, DE; search_locations with kinds=['country'] finds them"
    )
    raise _refuse(f"{_shown(value)} is not an ISO 3166-1 alpha-2 country code", fix)


def _country_suggestion(value: str) -> Any:
    text = value.strip()
    if text.upper() in ("UK", "EN", "ENGLAND", "GREAT BRITAIN", "BRITAIN"):
        return pycountry.countries.get(alpha_2="GB")
    if not text or len(text) > 60:
        return None
    try:
        return pycountry.countries.lookup(text)
    except LookupError:
        return None


def _lower_code(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _id_item(value: Any, what: str, finder: str) -> Any:
    value = _maybe_json(value, "{")
    if isinstance(value, bool):
        raise _refuse(
            f"must be an id, got {_shown(value)}", f'Send {what} as [{{"id": "6003139266461"}}]; {finder} finds ids'
        )
    if isinstance(value, int):
        return {"id": str(value)}
    if isinstance(value, str):
        if value.strip().isdigit():
            return {"id": value.strip()}
        raise _refuse(
            f"{_shown(value)} is a name, not an id", f'{finder} finds the ids; then send [{{"id": "…", "name": "…"}}]'
        )
    return value


def _key_item(value: Any, what: str) -> Any:
    value = _maybe_json(value, "{")
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return {"key": str(value).strip()}
    return value


def _digits_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and re.fullmatch(r"\d{1,25}", value.strip()):
        return value.strip()
    raise _refuse(
        f"must be a numeric id, got {_shown(value)}",
        "Use the numeric id from a search op (search_interests, search_targeting_categories, list_custom_audiences)",
    )


def _location_key(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"\d{1,25}", value.strip()):
        return value.strip()
    raise _refuse(
        f"must be a numeric location key, got {_shown(value)}", "search_locations finds keys for regions and cities"
    )


def _zip_key(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([A-Za-z]{2}):(\S{1,20})\s*", value)
        if match and pycountry.countries.get(alpha_2=match.group(1).upper()) is not None:
            return f"{match.group(1).upper()}:{match.group(2)}"
    raise _refuse(
        f"{_shown(value)} is not a zip key (they look like US:94304)",
        "Zip keys carry their country: US:94304; search_locations with kinds=['zip'] finds them",
    )


def _distance_unit(value: Any) -> Any:
    words = {
        "mi": "mile",
        "mile": "mile",
        "miles": "mile",
        "km": "kilometer",
        "kms": "kilometer",
        "kilometer": "kilometer",
        "kilometers": "kilometer",
        "kilometre": "kilometer",
        "kilometres": "kilometer",
    }
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    return value


def _radius(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _refuse(
                f"must be a number, got {_shown(value)}", "Send radius as a number with distance_unit mile or kilometer"
            ) from None
    return value


def _advantage(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false", "on", "off"):
        return 1 if value.strip().lower() in ("1", "true", "on") else 0
    return value


CountryCode = Annotated[str, BeforeValidator(_country)]
Code = Annotated[str, BeforeValidator(_lower_code)]
Age = Annotated[int | None, BeforeValidator(_age)]
Gender = Annotated[Literal[1, 2], BeforeValidator(_gender)]
Locale = Annotated[int, BeforeValidator(_locale)]


def _code_list(value: Any) -> Any:
    return _listify(value, split_commas=True)


def _plain_list(value: Any) -> Any:
    return _listify(value)


CodeList = Annotated[list[Code] | None, BeforeValidator(_code_list)]


# ---------------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _object_from_json_string(cls, value: Any) -> Any:
        return _maybe_json(value, "{")


class TargetingItem(_Strict):
    """One detailed-targeting entry (interest, behavior, life event, …) or audience: its numeric id and name."""

    id: Annotated[str, BeforeValidator(_digits_id)]
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, value: Any) -> Any:
        return _id_item(value, "items", "search_interests or search_targeting_categories")


class AudienceItem(TargetingItem):
    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, value: Any) -> Any:
        return _id_item(value, "audiences", "list_custom_audiences")


class Region(_Strict):
    key: Annotated[str, BeforeValidator(_location_key)]
    name: str | None = None
    country: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_key(cls, value: Any) -> Any:
        return _key_item(value, "regions")


class City(_Strict):
    key: Annotated[str, BeforeValidator(_location_key)]
    radius: Annotated[float | None, BeforeValidator(_radius)] = None
    distance_unit: Annotated[Literal["mile", "kilometer"] | None, BeforeValidator(_distance_unit)] = None
    name: str | None = None
    region: str | None = None
    region_id: str | int | None = None
    country: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_key(cls, value: Any) -> Any:
        return _key_item(value, "cities")

    @model_validator(mode="after")
    def _radius_range(self) -> City:
        if self.radius is not None:
            unit = self.distance_unit or "mile"
            low, high = CITY_RADIUS_RANGE[unit]
            if not low <= self.radius <= high:
                raise _refuse(
                    f"radius {self.radius:g} {unit}s is out of range ({low}-{high} {unit}s)",
                    f"Use a radius from {low} to {high} {unit}s (10-50 miles or 17-80 kilometers)",
                )
            if self.radius.is_integer():
                self.radius = int(self.radius)
        return self


class Zip(_Strict):
    key: Annotated[str, BeforeValidator(_zip_key)]
    name: str | None = None
    primary_city_id: str | int | None = None
    region_id: str | int | None = None
    country: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_key(cls, value: Any) -> Any:
        return _key_item(value, "zips")


_Item = TypeVar("_Item")
# A list of items or none; one bare item is taken as a list of one.
_ListOf = Annotated[list[_Item] | None, BeforeValidator(_plain_list)]


class GeoLocations(_Strict):
    """Where: countries, regions, cities (with radius), zips, custom locations, country groups, markets."""

    countries: Annotated[list[CountryCode] | None, BeforeValidator(_code_list)] = None
    regions: _ListOf[Region] = None
    cities: _ListOf[City] = None
    zips: _ListOf[Zip] = None
    location_types: Annotated[list[Literal["home", "recent", "travel_in"]] | None, BeforeValidator(_code_list)] = None
    custom_locations: _ListOf[dict[str, Any]] = None
    country_groups: CodeList = None
    geo_markets: _ListOf[dict[str, Any]] = None
    electoral_districts: _ListOf[dict[str, Any]] = None
    large_geo_areas: _ListOf[dict[str, Any]] = None
    location_cluster_ids: _ListOf[dict[str, Any]] = None
    medium_geo_areas: _ListOf[dict[str, Any]] = None
    metro_areas: _ListOf[dict[str, Any]] = None
    neighborhoods: _ListOf[dict[str, Any]] = None
    places: _ListOf[dict[str, Any]] = None
    political_districts: _ListOf[dict[str, Any]] = None
    small_geo_areas: _ListOf[dict[str, Any]] = None
    subcities: _ListOf[dict[str, Any]] = None
    subneighborhoods: _ListOf[dict[str, Any]] = None

    @model_validator(mode="before")
    @classmethod
    def _country_codes_as_countries(cls, value: Any) -> Any:
        value = _maybe_json(value, "{")
        if isinstance(value, str):  # "US" or "US,CA" where an object belongs: the obvious meaning is countries
            return {"countries": value}
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return {"countries": value}
        return value


# Detailed-targeting fields whose entries are {id, name}; the others of FlexibleTargeting are taken loosely.
ID_ITEM_FIELDS = (
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
)
_FLEX_LOOSE = [
    f for f in sdk_enum_values(FlexibleTargeting.Field) if f not in ID_ITEM_FIELDS and f != "custom_audiences"
]


class _FlexibleFields(_Strict):
    interests: _ListOf[TargetingItem] = None
    behaviors: _ListOf[TargetingItem] = None
    life_events: _ListOf[TargetingItem] = None
    family_statuses: _ListOf[TargetingItem] = None
    industries: _ListOf[TargetingItem] = None
    income: _ListOf[TargetingItem] = None
    work_positions: _ListOf[TargetingItem] = None
    work_employers: _ListOf[TargetingItem] = None
    education_schools: _ListOf[TargetingItem] = None
    education_majors: _ListOf[TargetingItem] = None
    custom_audiences: _ListOf[AudienceItem] = None


if TYPE_CHECKING:  # built at import from the SDK's field list; to mypy, its typed part
    FlexibleGroup = _FlexibleFields
else:
    FlexibleGroup = create_model(
        "FlexibleGroup",
        __base__=_FlexibleFields,
        __doc__="One OR-group of detailed targeting (entries inside match any).",
        **{name: (Any, None) for name in _FLEX_LOOSE},
    )


class TargetingAutomation(_Strict):
    advantage_audience: Annotated[Literal[0, 1] | None, BeforeValidator(_advantage)] = None
    individual_setting: dict[str, Any] | None = None
    shared_audiences: Any = None
    value_expression: Any = None
    creative_audience_pairing: Any = None


# Top-level location keys LLMs put beside geo_locations instead of inside it (the SDK still lists them as legacy).
_HOISTED_LOCATION_KEYS = {
    "countries": "countries",
    "country": "countries",
    "regions": "regions",
    "cities": "cities",
    "zips": "zips",
    "location_types": "location_types",
}


class _PreciseFields(_Strict):
    geo_locations: GeoLocations | None = None
    excluded_geo_locations: GeoLocations | None = None
    age_min: Age = None
    age_max: Age = None
    genders: Annotated[list[Gender] | None, BeforeValidator(_genders)] = None
    locales: _ListOf[Locale] = None
    interests: _ListOf[TargetingItem] = None
    behaviors: _ListOf[TargetingItem] = None
    life_events: _ListOf[TargetingItem] = None
    family_statuses: _ListOf[TargetingItem] = None
    industries: _ListOf[TargetingItem] = None
    income: _ListOf[TargetingItem] = None
    work_positions: _ListOf[TargetingItem] = None
    work_employers: _ListOf[TargetingItem] = None
    education_schools: _ListOf[TargetingItem] = None
    education_majors: _ListOf[TargetingItem] = None
    flexible_spec: _ListOf[FlexibleGroup] = None
    exclusions: FlexibleGroup | None = None
    custom_audiences: _ListOf[AudienceItem] = None
    excluded_custom_audiences: _ListOf[AudienceItem] = None
    publisher_platforms: CodeList = None
    facebook_positions: CodeList = None
    instagram_positions: CodeList = None
    audience_network_positions: CodeList = None
    messenger_positions: CodeList = None
    threads_positions: CodeList = None
    whatsapp_positions: CodeList = None
    device_platforms: CodeList = None
    targeting_automation: TargetingAutomation | None = None


_LOOSE_FIELDS = [
    f
    for f in sdk_enum_values(Targeting.Field)
    if f not in _PreciseFields.model_fields and f not in _HOISTED_LOCATION_KEYS
]
if TYPE_CHECKING:  # built at import from the SDK's field list; to mypy, its typed part
    _TargetingBase = _PreciseFields
else:
    _TargetingBase = create_model(
        "_TargetingBase", __base__=_PreciseFields, **{name: (Any, None) for name in _LOOSE_FIELDS}
    )


class TargetingSpec(_TargetingBase):
    """Facebook's ad set targeting spec, typed where it matters; other SDK fields are taken as given (JSON values)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _hoist_locations(cls, value: Any) -> Any:
        value = _maybe_json(value, "{")
        if not isinstance(value, dict) or not any(k in value for k in _HOISTED_LOCATION_KEYS):
            return value
        value = dict(value)
        geo = _maybe_json(value.get("geo_locations"), "{")
        geo = dict(geo) if isinstance(geo, dict) else ({} if geo is None else geo)
        if not isinstance(geo, dict):
            return value
        for key, target in _HOISTED_LOCATION_KEYS.items():
            if key in value and target not in geo:
                geo[target] = value.pop(key)
        value["geo_locations"] = geo
        return value


# ---------------------------------------------------------------------------------------------------------------
# parse_targeting (R9)
# ---------------------------------------------------------------------------------------------------------------

_KEY_HINTS = {
    "advantage_audience": 'put it inside targeting_automation: {"advantage_audience": 1}',
    "age": "use age_min and age_max",
    "ages": "use age_min and age_max",
    "age_range": None,
    "gender": "use genders: [1] men, [2] women",
    "locations": "use geo_locations",
    "location": "use geo_locations",
    "geo": "use geo_locations",
    "placements": "use publisher_platforms and <platform>_positions",
    "platforms": "use publisher_platforms",
    "devices": "use device_platforms",
    "languages": "use locales (numeric ids)",
}


def _invalid(
    message: str, fix: str, blame: str, *, subcode: int = SUBCODE_INVALID_SPEC, rule: str = "R9"
) -> ValidationError:
    return ValidationError(message, fix=fix, blame_field=blame, code=CODE, error_subcode=subcode, data={"rule": rule})


def _path(field: str, loc: Sequence[Any]) -> str:
    out = field
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _walk(value: Any, field: str, loc: tuple, depth: int, zips: list[int]) -> ValidationError | None:
    """Size, depth and JSON-type limits, checked before the model so huge or odd input answers fast and exactly."""
    where = _path(field, loc)
    if depth > MAX_DEPTH:
        return _invalid(
            f"{where} is nested too deeply (more than {MAX_DEPTH} levels)",
            "Send a flat targeting spec as in the examples",
            where,
        )
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            return _invalid(
                f"{where} is {len(value):,} characters long; the limit is {MAX_STRING_CHARS:,}",
                "Shorten the text",
                where,
            )
        return None
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return _invalid(
                f"{where} is {value}, which is not a number Facebook accepts", "Send a finite number", where
            )
        return None
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if not isinstance(key, str):
                return _invalid(
                    f"{where} has a key that is not text ({_shown(key)})", "Use text keys, as in JSON", where
                )
            problem = _walk(inner, field, (*loc, key), depth + 1, zips)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        is_zips = bool(loc) and loc[-1] == "zips"
        if is_zips:
            zips.append(len(value))
            if sum(zips) > MAX_ZIPS_TOTAL:
                return _invalid(
                    f"{where} brings the zip codes to {sum(zips):,}; the limit is {MAX_ZIPS_TOTAL:,} in total",
                    "Target fewer zip codes, or use regions or cities",
                    where,
                )
        elif len(value) > MAX_LIST_ENTRIES:
            return _invalid(
                f"{where} has {len(value):,} entries; the limit is {MAX_LIST_ENTRIES:,}",
                "Send fewer entries (split into several ad sets if needed)",
                where,
            )
        for index, inner in enumerate(value):
            problem = _walk(inner, field, (*loc, index), depth + 1, zips)
            if problem:
                return problem
        return None
    return _invalid(
        f"{where} holds a {type(value).__name__}, which is not JSON",
        "Send JSON values only (text, numbers, lists, objects)",
        where,
    )


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model class that holds the last key of ``loc`` (to suggest known keys for an unknown one)."""
    model: Any = TargetingSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _inner_model(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    for _ in range(6):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        origin = typing.get_origin(annotation)
        if origin is Annotated or (origin in (list, typing.Union, types.UnionType) and args):
            annotation = args[0]
        else:
            return None
    return None


_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "string": "text",
    "list": "a list",
    "dict": "an object",
    "model": "an object",
    "bool": "true or false",
    "literal": None,
}


def _problem_from(err: Mapping[str, Any], field: str) -> ValidationError:
    loc = tuple(err.get("loc", ()))
    where = _path(field, loc)
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    shown = _shown(err.get("input"))
    if kind == "targeting":
        return _invalid(f"{where}: {ctx.get('reason')}", str(ctx.get("fix")), where)
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        parent = _path(field, loc[:-1])
        model = _model_at(loc[:-1])
        known = sorted(model.model_fields) if model else []
        shown_keys = list(_PreciseFields.model_fields) if model is TargetingSpec else known
        hint = _KEY_HINTS.get(key) if not loc[:-1] else None
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        fix = (
            hint[0].upper() + hint[1:]
            if hint
            else f"Rename it to {close[0]!r}"
            if close
            else f"Use known keys such as {', '.join(shown_keys[:30])}{'…' if len(shown_keys) > 30 else ''}"
        )
        return _invalid(f"{parent} has an unknown key {_shown(key)}", fix, where)
    if kind == "missing":
        return _invalid(f"{where} is required", f"Add {loc[-1] if loc else 'it'}", where)
    if kind.startswith(("model_", "dict_", "model_attributes")):
        return _invalid(
            f"{where} must be an object, got {shown}", "Send an object ({…}) here, as in the examples", where
        )
    if kind.startswith(("list_", "tuple_", "iterable_")):
        return _invalid(f"{where} must be a list, got {shown}", "Send a list ([…]) here", where)
    if kind == "literal_error":
        return _invalid(
            f"{where} must be one of {ctx.get('expected')}, got {shown}", f"Use one of {ctx.get('expected')}", where
        )
    for prefix, words in _TYPE_WORDS.items():
        if kind.startswith(prefix) and words:
            return _invalid(
                f"{where} must be {words}, got {shown}", f"Send {words} for {loc[-1] if loc else field}", where
            )
    return _invalid(f"{where} is not valid ({shown})", "Correct the value as in the examples", where)


def parse_problems(raw: Any, field: str = "targeting") -> tuple[TargetingSpec | None, list[ValidationError]]:
    """The spec, or every R9 problem found in ``raw`` (a dict or a JSON string)."""
    if isinstance(raw, TargetingSpec):
        return raw, []
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(exclude_none=True)
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None, [
                _invalid(
                    f"{field} is empty", 'Send a targeting object, e.g. {"geo_locations": {"countries": ["US"]}}', field
                )
            ]
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, [
                _invalid(
                    f"{field} is not valid JSON ({exc.msg} at position {exc.pos})",
                    'Send a JSON object, e.g. {"geo_locations": {"countries": ["US"]}, "age_min": 25}',
                    field,
                )
            ]
        except RecursionError:
            return None, [
                _invalid(f"{field} is nested too deeply", "Send a flat targeting spec as in the examples", field)
            ]
    if not isinstance(raw, Mapping):
        return None, [
            _invalid(
                f"{field} must be an object, got {_shown(raw)}",
                'Send a targeting object, e.g. {"geo_locations": {"countries": ["US"]}, "age_min": 25}',
                field,
            )
        ]
    problem = _walk(raw, field, (), 0, [])
    if problem:
        return None, [problem]
    try:
        spec = TargetingSpec.model_validate(dict(raw))
    except PydanticValidationError as exc:
        return None, [_problem_from(err, field) for err in exc.errors(include_url=False)]
    except RecursionError:
        return None, [_invalid(f"{field} is nested too deeply", "Send a flat targeting spec as in the examples", field)]
    problems = _age_order_problems(spec, field)
    return (None, problems) if problems else (spec, [])


def _age_order_problems(spec: TargetingSpec, field: str) -> list[ValidationError]:
    if spec.age_min is not None and spec.age_max is not None and spec.age_max < spec.age_min:
        return [
            _invalid(
                f"{field}.age_max {spec.age_max} is below age_min {spec.age_min}",
                "Make age_max at least age_min (or swap them)",
                f"{field}.age_max",
            )
        ]
    return []


def combined(problems: Sequence[ValidationError]) -> ValidationError:
    """One error for several problems: the first one's code and field, every message, all of them in data."""
    first = problems[0]
    if len(problems) == 1:
        first.data.setdefault("problems", [problem_data(first)])
        return first
    message = first.message + f"; {len(problems) - 1} more: " + "; ".join(p.message for p in problems[1:4])
    if len(problems) > 4:
        message += f"; … ({len(problems) - 4} not shown)"
    return ValidationError(
        message,
        fix=first.fix,
        blame_field=first.blame_field,
        code=first.code,
        error_subcode=first.error_subcode,
        data={"rule": first.data.get("rule"), "problems": [problem_data(p) for p in problems]},
    )


def problem_data(problem: ValidationError) -> dict[str, Any]:
    return {
        "message": problem.message,
        "fix": problem.fix,
        "field": problem.blame_field,
        "code": problem.code,
        "error_subcode": problem.error_subcode,
        "rule": problem.data.get("rule"),
    }


def parse_targeting(raw: Any, field: str = "targeting") -> TargetingSpec:
    """A targeting spec from a dict or JSON string; any R9 problem is one ValidationError (100/1487079) naming the field."""
    spec, problems = parse_problems(raw, field)
    if problems:
        raise combined(problems)
    assert spec is not None
    return spec


# ---------------------------------------------------------------------------------------------------------------
# check_targeting (R10, R11, R12, R13, R15)
# ---------------------------------------------------------------------------------------------------------------


def _has_location(geo: GeoLocations | None) -> bool:
    return geo is not None and any(getattr(geo, key) for key in LOCATION_KEYS)


def _has_custom_audience(spec: TargetingSpec) -> bool:
    return bool(spec.custom_audiences) or any(group.custom_audiences for group in spec.flexible_spec or [])


def targeting_problems(
    spec: TargetingSpec, *, special_ad_categories: Sequence[str] = (), creating: bool = True, field: str = "targeting"
) -> list[ValidationError]:
    """Every R10-R13/R15 problem of a parsed spec, in rule order."""
    problems: list[ValidationError] = []
    if not _has_location(spec.geo_locations) and not _has_custom_audience(spec):
        problems.append(
            _invalid(
                "targeting has no location: Facebook needs geo_locations (countries, regions, cities, zips, custom_locations, "
                "country_groups or geo_markets) unless a custom audience is targeted",
                'Add geo_locations, e.g. {"countries": ["US"]}; search_locations finds regions and cities',
                field,
                subcode=SUBCODE_NO_LOCATION,
                rule="R10",
            )
        )
    problems += _special_category_problems(spec, special_ad_categories, field)
    automation = spec.targeting_automation.advantage_audience if spec.targeting_automation else None
    # R12, v23.0+ (special ad categories too from v26.0): on create, a restricted setup needs an explicit flag; a
    # default or relaxed one defaults to 1. "Version 23.0"
    # https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/version23.0 ;
    # https://developers.facebook.com/blog/post/2025/06/13/marketing-api-changes-to-advantage-plus-audience-behaviors/ ;
    # v26 blog https://developers.facebook.com/blog/post/2026/07/29/introducing-graph-api-v26-and-marketing-api-v26/
    restricted = restricted_setup(spec) if creating and automation is None else []
    if restricted:
        problems.append(
            _invalid(
                f"targeting.targeting_automation.advantage_audience is required for a new ad set with a non-default "
                f"{', '.join(restricted)} setting (0 = your audience as given, 1 = Advantage+ audience may reach beyond it)",
                'Add "targeting_automation": {"advantage_audience": 0} (or 1)',
                field,
                subcode=SUBCODE_ADVANTAGE_MISSING,
                rule="R12",
            )
        )
    if automation == 1 and (
        (spec.age_max is not None and spec.age_max != AGE_HIGHEST) or (spec.age_min is not None and spec.age_min > 25)
    ):
        problems.append(
            _invalid(
                f"with Advantage+ audience (advantage_audience 1) age_max must be 65 and age_min at most 25; "
                f"got age_min {spec.age_min if spec.age_min is not None else 'unset'}, age_max {spec.age_max if spec.age_max is not None else 'unset'}",
                "Set advantage_audience 0 to keep a strict age range, or use age_min ≤ 25 and age_max 65 (or leave them out)",
                field,
                subcode=SUBCODE_ADVANTAGE_AGE,
                rule="R13",
            )
        )
    problems += _placement_problems(spec, field)
    return problems


def _special_category_problems(spec: TargetingSpec, categories: Sequence[str], field: str) -> list[ValidationError]:
    restricted = sorted({str(c).upper() for c in categories or ()} & set(RESTRICTED_CATEGORIES))
    if not restricted:
        return []
    label = "/".join(restricted)
    found: list[tuple[str, str]] = []
    if spec.age_min is not None and spec.age_min != AGE_DEFAULT_MIN:
        found.append(
            (
                f"age_min must be 18 for special ad category {label} (got {spec.age_min})",
                "Set age_min 18 or leave it out",
            )
        )
    if spec.age_max is not None and spec.age_max != AGE_HIGHEST:
        found.append(
            (
                f"age_max must be 65 for special ad category {label} (got {spec.age_max})",
                "Set age_max 65 or leave it out",
            )
        )
    if spec.genders and set(spec.genders) != {1, 2}:
        found.append(
            (f"special ad category {label} must reach all genders (got genders {spec.genders})", "Leave genders out")
        )
    if spec.geo_locations and spec.geo_locations.zips:
        found.append(
            (
                f"zip code targeting is not allowed for special ad category {label}",
                "Use cities (radius at least 15 miles), regions or countries instead of zips",
            )
        )
    for city in (spec.geo_locations.cities or []) if spec.geo_locations else []:
        unit = city.distance_unit or "mile"
        if city.radius is not None and city.radius < SPECIAL_CITY_RADIUS_MIN[unit]:
            found.append(
                (
                    f"city {city.key} radius {city.radius:g} {unit}s is under the {SPECIAL_CITY_RADIUS_MIN[unit]} {unit}s "
                    f"minimum for special ad category {label}",
                    "Use a radius of at least 15 miles (25 kilometers)",
                )
            )
    if spec.excluded_custom_audiences:
        found.append(
            (
                f"excluded_custom_audiences is not allowed for special ad category {label}",
                "Remove excluded_custom_audiences",
            )
        )
    return [_invalid(message, fix, field, rule="R11") for message, fix in found]


def _placement_problems(spec: TargetingSpec, field: str) -> list[ValidationError]:
    found: list[tuple[str, str]] = []
    platforms = spec.publisher_platforms
    if platforms is not None:
        for platform in platforms:
            if platform not in PLATFORM_POSITIONS:
                close = difflib.get_close_matches(platform, list(PLATFORM_POSITIONS), n=1)
                found.append(
                    (
                        f"publisher_platforms has {_shown(platform)}, which is not a platform",
                        f"Use {close[0]!r}" if close else f"Use some of {', '.join(PLATFORM_POSITIONS)}",
                    )
                )
        if not platforms:
            found.append(
                (
                    "publisher_platforms is empty",
                    "List at least one platform, or leave publisher_platforms out for Advantage+ placements",
                )
            )
    for position_field in ALL_POSITION_FIELDS:
        positions = getattr(spec, position_field)
        if positions is None:
            continue
        platform = position_field.removesuffix("_positions")
        if platforms is None:
            found.append(
                (
                    f"{position_field} is set but publisher_platforms is not (no publisher_platforms means Advantage+ placements, where positions cannot be chosen)",
                    f"Add publisher_platforms including {platform!r}, or remove {position_field}",
                )
            )
            continue
        if platform not in platforms:
            found.append(
                (
                    f"{position_field} is set but {platform!r} is not in publisher_platforms",
                    f"Add {platform!r} to publisher_platforms or remove {position_field}",
                )
            )
            continue
        valid = PLATFORM_POSITIONS.get(platform, ())
        for position in positions:
            if (platform, position) in REMOVED_POSITIONS:
                others = [p for p in valid if p != position]
                found.append(
                    (
                        REMOVED_POSITIONS[(platform, position)],
                        f"Remove {position!r} from {position_field}"
                        + (f" (still available: {', '.join(others)})" if others else ""),
                    )
                )
            elif position not in valid:
                close = difflib.get_close_matches(position, list(valid), n=1)
                found.append(
                    (
                        f"{position_field} has {_shown(position)}, which is not a position of {PLATFORM_NAMES.get(platform, platform)}",
                        (f"Did you mean {close[0]!r}? " if close else "") + f"Valid: {', '.join(valid)}",
                    )
                )
    for device in spec.device_platforms or []:
        if device not in VALID_DEVICE_PLATFORMS:
            found.append((f"device_platforms has {_shown(device)}", f"Use some of {', '.join(VALID_DEVICE_PLATFORMS)}"))
    found += _placement_dependencies(spec)
    return [_invalid(message, fix, field, subcode=SUBCODE_PLACEMENTS, rule="R15") for message, fix in found]


def _placement_dependencies(spec: TargetingSpec) -> list[tuple[str, str]]:
    """Placements that only run together with another (checked before sending; codes unverified)."""
    found: list[tuple[str, str]] = []
    platforms = spec.publisher_platforms or []
    instagram = spec.instagram_positions
    # Threads needs instagram in publisher_platforms and the Instagram stream (Feed) placement ("Threads App Ads",
    # https://developers.facebook.com/documentation/ads-commerce/marketing-api/ad-creative/threads-ads/creation/app-ads).
    if "threads" in platforms and (
        "instagram" not in platforms or (instagram is not None and "stream" not in instagram)
    ):
        found.append(
            (
                "Threads ads run only together with Instagram Feed",
                "Add 'instagram' to publisher_platforms with 'stream' in instagram_positions, or remove threads",
            )
        )
    # WhatsApp Status only with Instagram Stories; no standalone Status campaigns ("Create ad creatives with WhatsApp
    # identity", https://developers.facebook.com/documentation/ads-commerce/marketing-api/ads-in-whatsapp-status/whatsapp-identity).
    if "whatsapp" in platforms and (
        "instagram" not in platforms or (instagram is not None and "story" not in instagram)
    ):
        found.append(
            (
                "WhatsApp Status ads run only together with Instagram Stories",
                "Add 'instagram' to publisher_platforms with 'story' in instagram_positions, or remove whatsapp",
            )
        )
    return found


def restricted_setup(spec: TargetingSpec) -> list[str]:
    """Why a spec is neither Meta's "default" nor "relaxed" setup (R12): non-default age, gender, custom-audience
    inclusion or detailed-targeting inclusion without its relaxation (individual_setting age/gender = 1,
    targeting_relaxation_types.custom_audience = 1, targeting_optimization expansion_all: mapping unverified)."""
    individual = (spec.targeting_automation.individual_setting if spec.targeting_automation else None) or {}
    relax_types = getattr(spec, "targeting_relaxation_types", None)  # an SDK field taken as given (JSON)
    relax = relax_types if isinstance(relax_types, dict) else {}
    found = []
    if (
        (spec.age_min is not None and spec.age_min != AGE_DEFAULT_MIN)
        or (spec.age_max is not None and spec.age_max != AGE_HIGHEST)
    ) and individual.get("age") != 1:
        found.append("age")
    if spec.genders and set(spec.genders) != {1, 2} and individual.get("gender") != 1:
        found.append("gender")
    if _has_custom_audience(spec) and relax.get("custom_audience") != 1:
        found.append("custom audience")
    groups = [spec, *(spec.flexible_spec or [])]
    if (
        any(getattr(group, name, None) for group in groups for name in ID_ITEM_FIELDS)
        and getattr(spec, "targeting_optimization", None) != "expansion_all"
    ):
        found.append("detailed targeting")
    return found


def check_targeting(
    spec: TargetingSpec, *, special_ad_categories: Sequence[str] = (), creating: bool = True, field: str = "targeting"
) -> None:
    """Raise one ValidationError (code/subcode of the first rule broken, all problems in data) if the spec breaks a rule."""
    problems = targeting_problems(spec, special_ad_categories=special_ad_categories, creating=creating, field=field)
    if problems:
        raise combined(problems)


def targeting_payload(spec: TargetingSpec) -> dict[str, Any]:
    """The spec as Graph takes it: JSON-ready, no None values, no read-only effective_* fields."""
    data = spec.model_dump(mode="json", exclude_none=True)
    return {k: v for k, v in data.items() if not k.startswith("effective_")}


# ---------------------------------------------------------------------------------------------------------------
# Placements
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class PlacementPlan:
    """Where ads of one ad set should run, and why."""

    automatic: bool
    publisher_platforms: list[str] = dataclass_field(default_factory=list)
    positions: dict[str, list[str]] = dataclass_field(default_factory=dict)
    device_platforms: list[str] = dataclass_field(default_factory=list)
    reasons: list[str] = dataclass_field(default_factory=list)

    def summary(self) -> str:
        """One line: 'Advantage+ placements' or the platforms with their positions and the devices."""
        if self.automatic:
            return "Advantage+ placements (automatic: Facebook picks where the ads run)"
        parts = []
        for platform in self.publisher_platforms:
            names = _unique(POSITION_NAMES.get(p, p) for p in self.positions.get(platform, []))
            parts.append(f"{PLATFORM_NAMES.get(platform, platform)} ({', '.join(names) if names else 'all positions'})")
        devices = " and ".join(self.device_platforms) if self.device_platforms else "all devices"
        return f"Manual placements: {'; '.join(parts)}; on {devices}"

    def targeting_fragment(self) -> dict[str, Any]:
        """The targeting keys this plan sets (empty for Advantage+ placements)."""
        if self.automatic:
            return {}
        fragment: dict[str, Any] = {"publisher_platforms": list(self.publisher_platforms)}
        for platform in self.publisher_platforms:
            if self.positions.get(platform):
                fragment[POSITION_FIELDS[platform]] = list(self.positions[platform])
        if self.device_platforms:
            fragment["device_platforms"] = list(self.device_platforms)
        return fragment


def _unique(items: Any) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


_OBJECTIVE_WORDS = {
    "REACH": "OUTCOME_AWARENESS",
    "AWARENESS": "OUTCOME_AWARENESS",
    "BRAND_AWARENESS": "OUTCOME_AWARENESS",
    "CONVERSIONS": "OUTCOME_SALES",
    "SALES": "OUTCOME_SALES",
    "PURCHASES": "OUTCOME_SALES",
    "CATALOG_SALES": "OUTCOME_SALES",
    "LEADS": "OUTCOME_LEADS",
    "LEAD_GENERATION": "OUTCOME_LEADS",
    "TRAFFIC": "OUTCOME_TRAFFIC",
    "LINK_CLICKS": "OUTCOME_TRAFFIC",
    "ENGAGEMENT": "OUTCOME_ENGAGEMENT",
    "POST_ENGAGEMENT": "OUTCOME_ENGAGEMENT",
    "VIDEO_VIEWS": "OUTCOME_ENGAGEMENT",
    "APP_INSTALLS": "OUTCOME_APP_PROMOTION",
    "APP_PROMOTION": "OUTCOME_APP_PROMOTION",
}
_CREATIVE_WORDS = {
    "image": "image",
    "photo": "image",
    "picture": "image",
    "single_image": "image",
    "video": "video",
    "reel": "video",
    "reels": "video",
    "carousel": "carousel",
}


def normalize_objective(objective: str | None) -> str | None:
    """'reach', 'conversions', 'OUTCOME_SALES' -> the OUTCOME_* objective (None stays None)."""
    if objective is None or not str(objective).strip():
        return None
    word = str(objective).strip().upper().replace(" ", "_").replace("-", "_")
    if word.startswith("OUTCOME_"):
        return word
    if word in _OBJECTIVE_WORDS:
        return _OBJECTIVE_WORDS[word]
    if f"OUTCOME_{word}" in _OBJECTIVE_WORDS.values():
        return f"OUTCOME_{word}"
    raise ValidationError(
        f"{objective!r} is not a campaign objective",
        blame_field="objective",
        fix="Use an OUTCOME_* objective: OUTCOME_AWARENESS, OUTCOME_TRAFFIC, OUTCOME_ENGAGEMENT, "
        "OUTCOME_LEADS, OUTCOME_SALES, OUTCOME_APP_PROMOTION",
    )


def recommend_placements(
    creative_type: str, objective: str | None = None, *, automatic: bool = False, instagram: bool = True
) -> PlacementPlan:
    """Placements for a creative type and objective (video → Reels/Stories/Feed; carousel → Feed; image → Feed/Stories; never a removed position)."""
    kind = _CREATIVE_WORDS.get(str(creative_type).strip().lower())
    if kind is None:
        raise ValidationError(
            f"{creative_type!r} is not a creative type", fix="Use image, video or carousel", blame_field="creative_type"
        )
    goal = normalize_objective(objective)
    if automatic:
        auto_reasons = [
            "Advantage+ placements: Facebook spreads the budget over every placement where it expects the best "
            "results for this objective, which usually lowers the cost per result."
        ]
        if not instagram:
            auto_reasons.append(
                "No Instagram account is selected: on Instagram the ads will show the Page's name and picture."
            )
        return PlacementPlan(automatic=True, reasons=auto_reasons)
    facebook: list[str]
    insta: list[str]
    reasons: list[str] = []
    if kind == "video":
        facebook, insta = ["facebook_reels", "story", "feed"], ["reels", "story", "stream"]
        reasons.append(
            "Video: Reels and Stories are full-screen vertical video, where video gets the most attention; Feed adds reach."
        )
    elif kind == "carousel":
        facebook, insta = ["feed"], ["stream", "profile_feed"]
        reasons.append("Carousel: cards are swiped in Feed; Stories and Reels show only one card at a time.")
    else:
        facebook, insta = ["feed", "story"], ["stream", "story"]
        reasons.append("Image: a single image works in Feed and, cropped to full screen, in Stories.")
    audience_network: list[str] = []
    devices = list(DEVICE_PLATFORMS)
    if goal == "OUTCOME_AWARENESS":
        facebook += ["marketplace", "profile_feed"] + (["instream_video"] if kind == "video" else ["right_hand_column"])
        insta += [p for p in ("reels", "profile_feed") if p not in insta]
        audience_network = ["classic"] + (["rewarded_video"] if kind == "video" else [])
        reasons.append(
            "Awareness/reach: more positions, Audience Network included, so the budget reaches the most people at the lowest cost per person."
        )
    elif goal in ("OUTCOME_SALES", "OUTCOME_LEADS"):
        facebook = (
            ["feed"] + [p for p in facebook if p in ("facebook_reels",)] + (["marketplace"] if kind != "video" else [])
        )
        insta = ["stream"] + [p for p in insta if p in ("reels", "profile_feed")]
        reasons.append(
            "Sales/leads (conversions): Feed first, where people click through and buy or sign up; "
            "Stories and Audience Network left out because they convert less."
        )
    elif goal == "OUTCOME_APP_PROMOTION":
        devices = ["mobile"]
        audience_network = ["classic"] + (["rewarded_video"] if kind == "video" else [])
        reasons.append(
            "App promotion: mobile only (apps are installed on phones); Audience Network adds in-app inventory."
        )
    platforms = ["facebook"]
    positions = {"facebook": _unique(facebook)}
    if instagram:
        platforms.append("instagram")
        positions["instagram"] = _unique(insta)
    else:
        reasons.append("Instagram left out: no Instagram account is selected for these ads.")
    if audience_network:
        platforms.append("audience_network")
        positions["audience_network"] = audience_network
    return PlacementPlan(
        automatic=False, publisher_platforms=platforms, positions=positions, device_platforms=devices, reasons=reasons
    )


def apply_placements(spec: TargetingSpec, plan: PlacementPlan) -> TargetingSpec:
    """A copy of ``spec`` with its placements replaced by ``plan``'s (Advantage+: none at all)."""
    updates: dict[str, Any] = {name: None for name in ALL_POSITION_FIELDS}
    updates.update(publisher_platforms=None, device_platforms=None)
    if not plan.automatic:
        updates["publisher_platforms"] = list(plan.publisher_platforms)
        for platform in plan.publisher_platforms:
            if plan.positions.get(platform):
                updates[POSITION_FIELDS[platform]] = list(plan.positions[platform])
        updates["device_platforms"] = list(plan.device_platforms) or None
    return spec.model_copy(update=updates, deep=True)


# ---------------------------------------------------------------------------------------------------------------
# Local description
# ---------------------------------------------------------------------------------------------------------------


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return getattr(country, "common_name", None) or (country.name if country else code)


def _places(geo: GeoLocations) -> list[str]:
    places = [country_name(c) for c in geo.countries or []]
    places += [f"region {r.name or r.key}" for r in geo.regions or []]
    for city in geo.cities or []:
        radius = (
            f" +{city.radius:g} {'km' if city.distance_unit == 'kilometer' else 'mi'}"
            if city.radius is not None
            else ""
        )
        places.append(f"{city.name or 'city ' + city.key}{radius}")
    if geo.zips:
        places.append(f"{len(geo.zips):,} zip code{'s' if len(geo.zips) != 1 else ''}")
    if geo.custom_locations:
        places.append(f"{len(geo.custom_locations):,} custom location{'s' if len(geo.custom_locations) != 1 else ''}")
    places += [f"group {g}" for g in geo.country_groups or []]
    if geo.geo_markets:
        places.append(f"{len(geo.geo_markets):,} market{'s' if len(geo.geo_markets) != 1 else ''}")
    return places


def _shorten(names: list[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _item_names(items: Sequence[TargetingItem]) -> list[str]:
    return [item.name or item.id for item in items]


def describe_targeting_locally(spec: TargetingSpec) -> str:
    """One paragraph saying who and where the spec reaches, computed without a request."""
    sentences = []
    geo = spec.geo_locations
    places = _places(geo) if geo else []
    sentences.append(f"People in {_shorten(places)}" if places else "People anywhere (no location set)")
    if geo and geo.location_types:
        sentences[-1] += f" ({' or '.join(t.replace('_', ' ') for t in geo.location_types)})"
    excluded = _places(spec.excluded_geo_locations) if spec.excluded_geo_locations else []
    if excluded:
        sentences[-1] += f", except {_shorten(excluded)}"
    low = spec.age_min if spec.age_min is not None else AGE_DEFAULT_MIN
    high = f"{spec.age_max}" if spec.age_max is not None and spec.age_max < AGE_HIGHEST else "65+"
    gender_words: dict[tuple[int, ...], str] = {(1,): "men", (2,): "women"}
    genders = gender_words.get(tuple(sorted(set(spec.genders or []))), "all genders")
    sentences[-1] += f", aged {low}-{high}, {genders}."
    if spec.locales:
        sentences.append(f"Languages: {len(spec.locales)} locale{'s' if len(spec.locales) != 1 else ''}.")
    detail = []
    for name in ID_ITEM_FIELDS:
        items = getattr(spec, name) or []
        if items:
            detail.append(f"{name.replace('_', ' ')}: {_shorten(_item_names(items))}")
    if detail:
        sentences.append("Interested in any of " + "; ".join(detail) + ".")
    for index, group in enumerate(spec.flexible_spec or []):
        parts = [
            f"{name.replace('_', ' ')}: {_shorten(_item_names(getattr(group, name)))}"
            for name in ID_ITEM_FIELDS
            if getattr(group, name)
        ]
        if parts:
            sentences.append(("Matching any of " if index == 0 else "And any of ") + "; ".join(parts) + ".")
    if spec.exclusions:
        parts = [
            _shorten(_item_names(getattr(spec.exclusions, name)))
            for name in ID_ITEM_FIELDS
            if getattr(spec.exclusions, name)
        ]
        if parts:
            sentences.append("Excluding people interested in " + "; ".join(parts) + ".")
    if spec.custom_audiences:
        sentences.append(f"Custom audiences: {_shorten(_item_names(spec.custom_audiences))}.")
    if spec.excluded_custom_audiences:
        sentences.append(f"Excluded audiences: {_shorten(_item_names(spec.excluded_custom_audiences))}.")
    if spec.publisher_platforms:
        plan = PlacementPlan(
            automatic=False,
            publisher_platforms=list(spec.publisher_platforms),
            positions={
                p: list(getattr(spec, POSITION_FIELDS[p]) or [])
                for p in spec.publisher_platforms
                if p in POSITION_FIELDS
            },
            device_platforms=list(spec.device_platforms or []),
        )
        sentences.append(plan.summary() + ".")
    else:
        sentences.append(
            "Advantage+ placements"
            + (f" on {' and '.join(spec.device_platforms)}" if spec.device_platforms else "")
            + "."
        )
    automation = spec.targeting_automation.advantage_audience if spec.targeting_automation else None
    if automation is not None:
        sentences.append(
            "Advantage+ audience on: Facebook may reach beyond these settings."
            if automation == 1
            else "Advantage+ audience off: only this audience."
        )
    return " ".join(sentences)


# ---------------------------------------------------------------------------------------------------------------
# Ops: shared pieces
# ---------------------------------------------------------------------------------------------------------------

AdAccountArg = Field(
    None, description="Ad account id (act_<digits>); defaults to the selected account.", examples=["act_1234567890"]
)
TargetingArg = Field(
    ...,
    description='The targeting spec (object, or the same as a JSON string): geo_locations {countries ["US"], '
    "regions [{key}], cities [{key, radius, distance_unit}], zips [{key}]}, age_min/age_max 13-65, genders [1 men | 2 women], "
    "flexible_spec [{interests [{id, name}], behaviors [...]}], custom_audiences [{id}], publisher_platforms, "
    "<platform>_positions, device_platforms, targeting_automation {advantage_audience 0|1}.",
    examples=[
        {
            "geo_locations": {"countries": ["US"]},
            "age_min": 25,
            "age_max": 45,
            "targeting_automation": {"advantage_audience": 0},
        }
    ],
    json_schema_extra={"type": "object"},
)
EXAMPLE_SPEC = {
    "geo_locations": {"countries": ["US"]},
    "age_min": 25,
    "age_max": 45,
    "targeting_automation": {"advantage_audience": 0},
}


def _spec_json(spec: TargetingSpec) -> str:
    return json.dumps(targeting_payload(spec), separators=(",", ":"), ensure_ascii=False)


def _number(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _size_range(lower: Any, upper: Any) -> str:
    low, high = _number(lower), _number(upper)
    if low is None and high is None:
        return "size unknown"
    if low is None or high is None or low == high:
        return f"{(low if low is not None else high):,} people"
    return f"{low:,}–{high:,} people"


def sentence_lines(answer: Any) -> list[str]:
    """Facebook's targetingsentencelines answer as plain lines ('Location: United States')."""
    rows: list[Any] = []
    if isinstance(answer, Mapping):
        data = answer.get("data")
        if isinstance(data, list):
            for entry in data:
                rows += entry.get("targetingsentencelines") or [] if isinstance(entry, Mapping) else [entry]
        rows += answer.get("targetingsentencelines") or []
    lines = []
    for row in rows:
        if isinstance(row, Mapping):
            content = str(row.get("content") or "").strip()
            children = [str(c) for c in row.get("children") or [] if c not in (None, "")]
            lines.append(f"{content} {', '.join(children)}".strip())
        elif row not in (None, ""):
            lines.append(str(row))
    return [line for line in lines if line]


async def _sentence_lines(ctx: OpContext, account_id: str, spec: TargetingSpec) -> list[str]:
    answer = await ctx.graph.get(f"{account_id}/targetingsentencelines", {"targeting_spec": _spec_json(spec)})
    return sentence_lines(answer)


async def _campaign_categories(ctx: OpContext, campaign_id: str) -> tuple[list[str], str | None]:
    campaign = await ctx.graph.get(
        check_object_id(campaign_id, "campaign_id"), {"fields": "special_ad_categories,account_id,name"}
    )
    account = f"act_{campaign['account_id']}" if campaign.get("account_id") else None
    return list(campaign.get("special_ad_categories") or []), account


# ---------------------------------------------------------------------------------------------------------------
# Ops: validate and describe
# ---------------------------------------------------------------------------------------------------------------


TargetingDict = Field(description="The targeting spec as Ad Monster sends it to Facebook (a Targeting object).")


class TargetingProblem(DataRow):
    """One reason a targeting spec is refused, with the code and subcode Facebook gives (docs/adset_rules.md)."""

    message: str
    fix: str
    field: str | None = Field(description="The argument or targeting key at fault.")
    code: int | None
    error_subcode: int | None
    rule: str | None = Field(description="The rule of docs/adset_rules.md (R9…R15); null for Facebook's own refusal.")


class TargetingCheck(OpData):
    valid: bool
    checked_by: Literal["local", "facebook"] = Field(
        description="local: refused before anything was sent; facebook: Facebook's answer."
    )
    problems: list[TargetingProblem]
    ad_account_id: str
    sentence_lines: list[str] = absent_key(description="Facebook's description of the audience (valid specs only).")
    targeting: dict[str, Any] = absent_key(description="The spec as it would be sent (valid specs only).")


class TargetingDescription(OpData):
    sentence_lines: list[str] = Field(description="Facebook's targeting sentence lines ('Location: United States').")
    summary: str = Field(description="Ad Monster's own one-line description.")
    targeting: dict[str, Any] = TargetingDict
    ad_account_id: str


class ValidateTargetingArgs(OpArgs):
    """Check a targeting spec before creating an ad set: every local rule first (all problems listed), then Facebook confirms it."""

    targeting: Any = TargetingArg
    campaign_id: str | None = Field(
        None,
        description="The ad set's campaign: its special ad categories (housing, credit, …) add rules.",
        examples=["120210000000000001"],
    )
    special_ad_categories: list[SpecialAdCategory] | None = Field(
        None, description='Special ad categories, when no campaign_id is given, e.g. ["HOUSING"].'
    )
    creating: bool = Field(
        True,
        description="True (default) for a new ad set, where targeting_automation.advantage_audience is required; false for an edit.",
    )
    ad_account_id: str | None = AdAccountArg


def _problem_lines(problems: Sequence[ValidationError]) -> list[str]:
    lines = []
    for number, problem in enumerate(problems, 1):
        lines.append(
            f"  {number}. {problem.message} [{problem.code}/{problem.error_subcode}, {problem.blame_field}]. Fix: {problem.fix.rstrip('.')}."
        )
    return lines


@ops.op(
    OpKind.READ,
    group=TaskGroup.ADSETS_TARGETING,
    example={"targeting": EXAMPLE_SPEC, "special_ad_categories": []},
    result=TargetingCheck,
)
async def validate_targeting(ctx: OpContext, args: ValidateTargetingArgs) -> OpResult:
    categories = list(args.special_ad_categories or [])
    account_from_campaign = None
    if args.campaign_id:
        categories, account_from_campaign = await _campaign_categories(ctx, args.campaign_id)
    account_id = ctx.require_ad_account(args.ad_account_id or account_from_campaign)
    spec, problems = parse_problems(args.targeting)
    if spec is not None:
        problems = targeting_problems(spec, special_ad_categories=categories, creating=args.creating)
    if problems:
        text = "\n".join(
            [
                f"Targeting is not valid ({len(problems)} problem{'s' if len(problems) != 1 else ''}); nothing was sent to Facebook:",
                *_problem_lines(problems),
            ]
        )
        return OpResult(
            text=text,
            data={
                "valid": False,
                "checked_by": "local",
                "problems": [problem_data(p) for p in problems],
                "ad_account_id": account_id,
            },
        )
    assert spec is not None
    try:
        lines = await _sentence_lines(ctx, account_id, spec)
    except GraphError as error:
        problem = {
            "message": error.user_message or error.message,
            "fix": error.fix,
            "field": error.blame_field or "targeting",
            "code": error.code,
            "error_subcode": error.error_subcode,
            "rule": None,
        }
        text = f"Facebook refused this targeting: {problem['message']} [{error.code}/{error.error_subcode}]. Fix: {error.fix.rstrip('.')}."
        return OpResult(
            text=text,
            data={"valid": False, "checked_by": "facebook", "problems": [problem], "ad_account_id": account_id},
        )
    text = "\n".join(
        ["Targeting is valid (Facebook confirmed it):", *[f"  {line}" for line in lines]]
        if lines
        else [f"Targeting is valid. {describe_targeting_locally(spec)}"]
    )
    return OpResult(
        text=text,
        data={
            "valid": True,
            "checked_by": "facebook",
            "problems": [],
            "sentence_lines": lines,
            "targeting": targeting_payload(spec),
            "ad_account_id": account_id,
        },
    )


class DescribeTargetingArgs(OpArgs):
    """Say in plain words whom a targeting spec reaches, as Facebook describes it (targeting sentence lines)."""

    targeting: Any = TargetingArg
    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.READ, group=TaskGroup.ADSETS_TARGETING, example={"targeting": EXAMPLE_SPEC}, result=TargetingDescription)
async def describe_targeting(ctx: OpContext, args: DescribeTargetingArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    spec = parse_targeting(args.targeting)
    lines = await _sentence_lines(ctx, account_id, spec)
    summary = describe_targeting_locally(spec)
    text = "\n".join(["Targeting:", *[f"  {line}" for line in lines]]) if lines else f"Targeting: {summary}"
    return OpResult(
        text=text,
        data={
            "sentence_lines": lines,
            "summary": summary,
            "targeting": targeting_payload(spec),
            "ad_account_id": account_id,
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Ops: audience estimate
# ---------------------------------------------------------------------------------------------------------------

# Facebook's delivery estimate answers its daily outcomes curve as OutcomePredictionPoints (Meta's spec, the SDK);
# the reach estimate with AdAccountReachEstimate's fields (asked without `fields`: its default fields).
CurvePoint = graph_object(OutcomePredictionPoint, list(OutcomePredictionPoint._field_types), name="CurvePoint")
ReachEstimate = graph_object(AdAccountReachEstimate, list(AdAccountReachEstimate._field_types), name="ReachEstimate")
VERDICTS = ("unknown", "narrow", "specific", "very_broad", "balanced")


class AudienceEstimate(OpData):
    ad_account_id: str
    optimization_goal: str
    currency: str
    audience_lower_bound: int | None = Field(
        description="Monthly active people, lower bound (null: Facebook gave none yet)."
    )
    audience_upper_bound: int | None = Field(
        description="Monthly active people, upper bound (null: Facebook gave none yet)."
    )
    estimate_dau: int | None = Field(description="Daily active people in the audience (null: not given).")
    verdict: Literal[VERDICTS]  # type: ignore[valid-type]
    advice: str
    daily_outcomes_curve: list[CurvePoint] = Field(  # type: ignore[valid-type]
        description="Daily reach by daily spend (spend in minor units)."
    )
    reach_estimate: ReachEstimate | None = Field(  # type: ignore[valid-type]
        description="The older reach estimate (null: Facebook refused or gave none)."
    )
    estimate_ready: bool | None = Field(description="False while Facebook's estimate is not final (null: not said).")
    targeting: dict[str, Any] = TargetingDict


NARROW_AUDIENCE = 50_000
SPECIFIC_AUDIENCE = 1_000_000
VERY_BROAD_AUDIENCE = 500_000_000


class EstimateAudienceArgs(OpArgs):
    """Estimate how many people a targeting spec reaches (audience size range, daily reach by budget) and whether it is too narrow or broad."""

    targeting: Any = TargetingArg
    optimization_goal: OptimizationGoal = Field(
        "REACH", description="The ad set's optimization goal; daily estimates depend on it."
    )
    ad_account_id: str | None = AdAccountArg


def audience_advice(lower: int | None, upper: int | None) -> tuple[str, str]:
    """(verdict, advice in words) for an audience size range."""
    size = upper if upper is not None else lower
    if size is None:
        return "unknown", "Facebook gave no size yet; try again in a minute."
    if size < NARROW_AUDIENCE:
        return "narrow", (
            f"Narrow: under {NARROW_AUDIENCE:,} people. Delivery may be slow and costly; widen it "
            "(more locations, a wider age range, more interests, or advantage_audience 1)."
        )
    if size < SPECIFIC_AUDIENCE:
        return "specific", "Specific: fine for retargeting or a niche offer; a wider audience usually lowers costs."
    if (lower if lower is not None else size) > VERY_BROAD_AUDIENCE:
        return "very_broad", (
            f"Very broad: over {VERY_BROAD_AUDIENCE:,} people. Good for awareness; for sales or leads "
            "narrow it with locations, ages or interests, or let the pixel's data guide delivery."
        )
    return "balanced", "Balanced: large enough for Facebook to optimise delivery."


def _first(answer: Any) -> dict[str, Any]:
    data = answer.get("data") if isinstance(answer, Mapping) else None
    if isinstance(data, list):
        return dict(data[0]) if data and isinstance(data[0], Mapping) else {}
    if isinstance(data, Mapping):
        return dict(data)
    return dict(answer) if isinstance(answer, Mapping) else {}


def _curve_points(curve: Any, count: int = 3) -> list[Mapping[str, Any]]:
    points = [
        p
        for p in curve or []
        if isinstance(p, Mapping) and _number(p.get("spend")) and _number(p.get("reach")) is not None
    ]
    if len(points) <= count:
        return points
    step = (len(points) - 1) / (count - 1)
    return [points[round(i * step)] for i in range(count)]


@ops.op(
    OpKind.READ,
    group=TaskGroup.ADSETS_TARGETING,
    example={"targeting": EXAMPLE_SPEC, "optimization_goal": "REACH"},
    result=AudienceEstimate,
)
async def estimate_audience(ctx: OpContext, args: EstimateAudienceArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    spec = parse_targeting(args.targeting)
    spec_json = _spec_json(spec)
    delivery_answer, reach_answer, account = await asyncio.gather(
        ctx.graph.get(
            f"{account_id}/delivery_estimate",
            {"targeting_spec": spec_json, "optimization_goal": args.optimization_goal},
        ),
        ctx.graph.get(f"{account_id}/reachestimate", {"targeting_spec": spec_json}),
        ctx.graph.account_info(account_id),
        return_exceptions=True,
    )
    for answer in (delivery_answer, account):
        if isinstance(answer, BaseException):
            raise answer
    if isinstance(reach_answer, BaseException) and not isinstance(reach_answer, FacebookError):
        raise reach_answer  # a Facebook refusal of the older reach estimate alone is noted below; anything else is a bug
    delivery = _first(delivery_answer)
    reach = _first(reach_answer) if not isinstance(reach_answer, BaseException) else {}
    lower = _number(delivery.get("estimate_mau_lower_bound", reach.get("users_lower_bound")))
    upper = _number(delivery.get("estimate_mau_upper_bound", reach.get("users_upper_bound")))
    verdict, advice = audience_advice(lower, upper)
    currency = account.currency
    lines = [f"Estimated audience: {_size_range(lower, upper)} (monthly active, {args.optimization_goal}).", advice]
    if reach:
        lines.insert(
            1, f"Reach estimate: {_size_range(reach.get('users_lower_bound'), reach.get('users_upper_bound'))}."
        )
    dau = _number(delivery.get("estimate_dau"))
    if dau:
        lines.insert(-1, f"Daily active in this audience: about {dau:,}.")
    points = _curve_points(delivery.get("daily_outcomes_curve"))
    if points:
        shown = []
        for point in points:
            spend = _number(point["spend"]) or 0
            money = format_money(spend, currency) if currency else f"{spend:,}"
            shown.append(f"{money}/day → ~{_number(point['reach']):,} people")
        lines.insert(-1, "Daily reach: " + "; ".join(shown) + ".")
    if delivery.get("estimate_ready") is False or reach.get("estimate_ready") is False:
        lines.append("Facebook marks this estimate as not final yet; ask again shortly for a firmer number.")
    if isinstance(reach_answer, BaseException):
        lines.append(f"(reach estimate unavailable: {getattr(reach_answer, 'message', None) or reach_answer})")
    return OpResult(
        text="\n".join(lines),
        data={
            "ad_account_id": account_id,
            "optimization_goal": args.optimization_goal,
            "currency": currency,
            "audience_lower_bound": lower,
            "audience_upper_bound": upper,
            "estimate_dau": dau,
            "verdict": verdict,
            "advice": advice,
            "daily_outcomes_curve": delivery.get("daily_outcomes_curve") or [],
            "reach_estimate": reach or None,
            "estimate_ready": delivery.get("estimate_ready"),
            "targeting": targeting_payload(spec),
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Ops: search
# ---------------------------------------------------------------------------------------------------------------


# Targeting search results (/search type=adinterest, adinterestsuggestion, adTargetingCategory): the SDK's
# TargetingSearch declares no fields, so they are typed by AdAccountTargetingUnified, Meta's spec of a targeting
# search/browse entry (id, name, audience_size_lower_bound/upper_bound, path, description, type, …).
TargetingEntry = graph_object(
    AdAccountTargetingUnified, list(AdAccountTargetingUnified._field_types), name="TargetingEntry"
)


class TargetingRef(DataRow):
    """An entry as targeting takes it: {id, name}."""

    id: str
    name: str


ReadyTargeting = Field(
    description="A targeting fragment with every result, ready to merge: {flexible_spec: [...]}; {} without results."
)


class InterestSearch(OpData):
    query: str
    results: list[TargetingEntry]  # type: ignore[valid-type]
    items: list[TargetingRef]
    targeting: dict[str, Any] = ReadyTargeting


class InterestSuggestions(OpData):
    interests_from: list[str]
    results: list[TargetingEntry]  # type: ignore[valid-type]
    items: list[TargetingRef]
    targeting: dict[str, Any] = ReadyTargeting


class CategorySearch(OpData):
    kind: Literal["behaviors", "demographics", "life_events"]
    query: str | None
    results: list[TargetingEntry]  # type: ignore[valid-type]
    by_field: dict[str, list[TargetingRef]] = Field(description="Results by the flexible_spec field that takes them.")
    targeting: dict[str, Any] = ReadyTargeting


class FoundLocation(BaseModel):
    """An adgeolocation search result (Facebook's keys: key, name, type, country_code, region, …) and its fragment."""

    model_config = ConfigDict(extra="allow")

    key: str
    name: str
    type: str = Field(description="country, region, city, zip, …")
    geo_locations: dict[str, Any] = Field(description="geo_locations targeting just this place.")


class LocationSearch(OpData):
    query: str
    results: list[FoundLocation]
    geo_locations: dict[str, Any] = Field(description="geo_locations targeting every result.")


def _path_text(path: Any) -> str:
    return " > ".join(str(p) for p in path) if isinstance(path, list) else str(path or "")


def _audience_text(item: Mapping[str, Any]) -> str:
    lower, upper = item.get("audience_size_lower_bound"), item.get("audience_size_upper_bound")
    if lower is None and upper is None:
        lower = upper = item.get("audience_size")
    return _size_range(lower, upper)


def _interest_line(item: Mapping[str, Any]) -> str:
    path = _path_text(item.get("path"))
    return f"{item.get('name')} ({item.get('id')}) · {_audience_text(item)}" + (f" · {path}" if path else "")


def _ready_items(items: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"id": str(i["id"]), "name": str(i.get("name") or "")} for i in items if i.get("id") is not None]


class SearchInterestsArgs(OpArgs):
    """Find interests to target by keyword: names, ids, audience sizes and categories, ready to put in flexible_spec."""

    query: str = Field(
        ..., min_length=1, max_length=200, description='Keyword, e.g. "yoga" or "running shoes".', examples=["yoga"]
    )
    limit: int = Field(10, ge=1, le=100, description="Most results (1-100).")
    locale: str | None = Field(None, max_length=10, description="Language of the names, e.g. en_US.")


@ops.op(OpKind.READ, group=TaskGroup.ADSETS_TARGETING, example={"query": "yoga", "limit": 5}, result=InterestSearch)
async def search_interests(ctx: OpContext, args: SearchInterestsArgs) -> OpResult:
    params: dict[str, Any] = {"type": "adinterest", "q": args.query, "limit": args.limit}
    if args.locale:
        params["locale"] = args.locale
    items = [i for i in (await ctx.graph.get("search", params)).get("data", []) if isinstance(i, Mapping)][: args.limit]
    ready = _ready_items(items)
    hints = []
    if not items:
        text = f"No interests match {args.query!r}. Try a broader word."
        hints.append("suggest_interests with interests=[…] (names you already target) finds related ones.")
    else:
        text = "\n".join([f"Interests for {args.query!r} ({len(items)}):", *["  " + _interest_line(i) for i in items]])
        hints.append('Use in targeting: flexible_spec [{"interests": [{"id": …, "name": …}]}] (data.targeting).')
    return OpResult(
        text=text,
        hints=hints,
        data={
            "query": args.query,
            "results": items,
            "items": ready,
            "targeting": {"flexible_spec": [{"interests": ready}]} if ready else {},
        },
    )


class SuggestInterestsArgs(OpArgs):
    """Suggest related interests from ones you already target (by name or id), with ids and audience sizes."""

    interests: list[str] = Field(
        ...,
        min_length=1,
        max_length=50,
        description='Interest names (or ids) to start from, e.g. ["Yoga", "Pilates"].',
        examples=[["Yoga"]],
    )
    limit: int = Field(10, ge=1, le=100, description="Most suggestions (1-100).")


@ops.op(
    OpKind.READ,
    group=TaskGroup.ADSETS_TARGETING,
    example={"interests": ["Yoga"], "limit": 5},
    result=InterestSuggestions,
)
async def suggest_interests(ctx: OpContext, args: SuggestInterestsArgs) -> OpResult:
    names = [n.strip() for n in args.interests if n.strip()]
    if not names:
        raise ValidationError(
            "interests has no names", fix='Pass interest names, e.g. ["Yoga"]', blame_field="interests"
        )
    answer = await ctx.graph.get(
        "search", {"type": "adinterestsuggestion", "interest_list": names, "limit": args.limit}
    )
    items = [i for i in answer.get("data", []) if isinstance(i, Mapping)][: args.limit]
    ready = _ready_items(items)
    if not items:
        text = f"No suggestions for {', '.join(names)}. Try search_interests with a keyword."
    else:
        text = "\n".join(
            [f"Interests related to {', '.join(names)} ({len(items)}):", *["  " + _interest_line(i) for i in items]]
        )
    return OpResult(
        text=text,
        data={
            "interests_from": names,
            "results": items,
            "items": ready,
            "targeting": {"flexible_spec": [{"interests": ready}]} if ready else {},
        },
    )


CATEGORY_FIELDS = {"behaviors": "behaviors", "life_events": "life_events"}


class SearchTargetingCategoriesArgs(OpArgs):
    """Browse behaviors, demographics or life events to target, optionally filtered by a word; gives ids ready for flexible_spec."""

    kind: Literal["behaviors", "demographics", "life_events"] = Field(
        ..., description="Which catalogue: behaviors, demographics (income, family, work, education…) or life_events."
    )
    query: str | None = Field(
        None,
        max_length=200,
        description="Only entries whose name or category contains this text.",
        examples=["parents"],
    )
    limit: int = Field(25, ge=1, le=500, description="Most results (1-500).")


def _category_field(kind: str, item: Mapping[str, Any]) -> str:
    if kind in CATEGORY_FIELDS:
        return CATEGORY_FIELDS[kind]
    declared = str(item.get("type") or "")
    return (
        declared
        if declared in _FlexibleFields.model_fields or declared in FlexibleGroup.model_fields
        else "demographics"
    )


@ops.op(
    OpKind.READ,
    group=TaskGroup.ADSETS_TARGETING,
    example={"kind": "behaviors", "query": "travel"},
    result=CategorySearch,
)
async def search_targeting_categories(ctx: OpContext, args: SearchTargetingCategoriesArgs) -> OpResult:
    answer = await ctx.graph.get("search", {"type": "adTargetingCategory", "class": args.kind})
    items = [i for i in answer.get("data", []) if isinstance(i, Mapping)]
    if args.query:
        needle = args.query.strip().lower()
        items = [
            i
            for i in items
            if needle in str(i.get("name", "")).lower()
            or needle in _path_text(i.get("path")).lower()
            or needle in str(i.get("description", "")).lower()
        ]
    items = items[: args.limit]
    grouped: dict[str, list[dict[str, str]]] = {}
    for item in items:
        if item.get("id") is not None:
            grouped.setdefault(_category_field(args.kind, item), []).append(
                {"id": str(item["id"]), "name": str(item.get("name") or "")}
            )
    what = args.kind.replace("_", " ")
    if not items:
        text = f"No {what} match {args.query!r}." if args.query else f"Facebook lists no {what}."
    else:
        lines = [f"{what.capitalize()}{' matching ' + repr(args.query) if args.query else ''} ({len(items)}):"]
        lines += [
            f"  {_interest_line(i)}" + (f" [{_category_field(args.kind, i)}]" if args.kind == "demographics" else "")
            for i in items
        ]
        text = "\n".join(lines)
    usable = {k: v for k, v in grouped.items() if k != "demographics"}
    hints = ["Use in targeting: flexible_spec [{<field>: [{id, name}]}] (data.targeting)."] if items else []
    return OpResult(
        text=text,
        hints=hints,
        data={
            "kind": args.kind,
            "query": args.query,
            "results": items,
            "by_field": grouped,
            "targeting": {"flexible_spec": [usable]} if usable else {},
        },
    )


PlaceKind = Literal["country", "region", "city", "zip"]
PLACE_KINDS: tuple[PlaceKind, ...] = ("country", "region", "city", "zip")


class SearchLocationsArgs(OpArgs):
    """Find countries, regions, cities or zip codes to target; gives geo_locations fragments ready to use (cities with an optional radius)."""

    query: str = Field(
        ...,
        min_length=1,
        max_length=200,
        description='Place name, e.g. "Berlin", "California", "94304".',
        examples=["Berlin"],
    )
    kinds: list[PlaceKind] = Field(
        default_factory=lambda: list(PLACE_KINDS), min_length=1, description="Which kinds of places to search."
    )
    country_code: str | None = Field(
        None, description="Only places in this country (ISO code, e.g. US).", examples=["DE"]
    )
    radius: float | None = Field(
        None, gt=0, description="Radius around cities: 10-50 miles, or 17-80 kilometers with distance_unit=kilometer."
    )
    distance_unit: Literal["mile", "kilometer"] = Field("mile", description="Unit of radius.")
    limit: int = Field(10, ge=1, le=100, description="Most results (1-100).")


def _check_radius(radius: float | None, unit: str) -> None:
    if radius is None:
        return
    low, high = CITY_RADIUS_RANGE[unit]
    if not low <= radius <= high:
        raise ValidationError(
            f"radius {radius:g} {unit}s is out of range",
            blame_field="radius",
            fix=f"Use {low}-{high} {unit}s (Facebook: 10-50 miles or 17-80 kilometers)",
        )


def location_fragment(
    items: Sequence[Mapping[str, Any]], radius: float | None = None, distance_unit: str = "mile"
) -> dict[str, Any]:
    """geo_locations built from adgeolocation search results (every result included)."""
    fragment: dict[str, list[Any]] = {}
    for item in items:
        kind, key = item.get("type"), item.get("key")
        if key is None:
            continue
        if kind == "country":
            code = str(item.get("country_code") or key).upper()
            if code not in fragment.setdefault("countries", []):
                fragment["countries"].append(code)
        elif kind == "region":
            fragment.setdefault("regions", []).append({"key": str(key)})
        elif kind == "city":
            city: dict[str, Any] = {"key": str(key)}
            if radius is not None:
                city.update(radius=int(radius) if float(radius).is_integer() else radius, distance_unit=distance_unit)
            fragment.setdefault("cities", []).append(city)
        elif kind == "zip":
            fragment.setdefault("zips", []).append({"key": str(key)})
    return fragment


def _location_line(item: Mapping[str, Any]) -> str:
    where = ", ".join(str(p) for p in (item.get("region"), item.get("country_name") or item.get("country_code")) if p)
    return f"{item.get('name')} · {item.get('type')} · key {item.get('key')}" + (f" · {where}" if where else "")


def _one_fragment(item: Mapping[str, Any], radius: float | None, unit: str) -> dict[str, Any]:
    return location_fragment([item], radius, unit)


@ops.op(
    OpKind.READ,
    group=TaskGroup.ADSETS_TARGETING,
    example={"query": "Berlin", "kinds": ["city"], "country_code": "DE", "radius": 25, "distance_unit": "kilometer"},
    result=LocationSearch,
)
async def search_locations(ctx: OpContext, args: SearchLocationsArgs) -> OpResult:
    _check_radius(args.radius, args.distance_unit)
    params: dict[str, Any] = {
        "type": "adgeolocation",
        "q": args.query,
        "location_types": list(dict.fromkeys(args.kinds)),
        "limit": args.limit,
    }
    if args.country_code:
        try:
            params["country_code"] = _country(args.country_code)
        except PydanticCustomError as exc:
            context = exc.context or {}
            raise ValidationError(
                f"country_code: {context.get('reason')}", fix=context.get("fix"), blame_field="country_code"
            ) from None
    items = [i for i in (await ctx.graph.get("search", params)).get("data", []) if isinstance(i, Mapping)][: args.limit]
    places = [{**dict(i), "geo_locations": _one_fragment(i, args.radius, args.distance_unit)} for i in items]
    if not items:
        text = (
            f"No {'/'.join(args.kinds)} matches {args.query!r}"
            + (f" in {args.country_code.upper()}" if args.country_code else "")
            + "."
        )
    else:
        text = "\n".join([f"Locations for {args.query!r} ({len(items)}):", *["  " + _location_line(i) for i in items]])
    hints = (
        ["Use in targeting: geo_locations from data.results[n].geo_locations (one place) or data.geo_locations (all)."]
        if items
        else []
    )
    return OpResult(
        text=text,
        hints=hints,
        data={
            "query": args.query,
            "results": places,
            "geo_locations": location_fragment(items, args.radius, args.distance_unit),
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Ops: placements
# ---------------------------------------------------------------------------------------------------------------


class PlacementsData(OpData):
    plan: PlacementPlan
    targeting: dict[str, Any] = Field(description="The targeting keys the plan sets ({} for Advantage+ placements).")
    summary: str


class RecommendPlacementsArgs(OpArgs):
    """Recommend placements (Feed, Stories, Reels, Explore, …) for a creative type and objective, with the reasons and the targeting keys to use."""

    creative_type: Literal["image", "video", "carousel"] = Field(..., description="The ads' format.")
    objective: str | None = Field(
        None,
        description="The campaign objective (OUTCOME_*, or words like reach, conversions).",
        examples=["OUTCOME_SALES"],
    )
    automatic: bool = Field(False, description="True for Advantage+ placements (Facebook chooses; usually cheapest).")
    instagram: bool | None = Field(
        None, description="Include Instagram; default: yes when an Instagram account is selected."
    )


@ops.op(
    OpKind.READ,
    group=TaskGroup.ADSETS_TARGETING,
    name="recommend_placements",
    example={"creative_type": "video", "objective": "OUTCOME_AWARENESS"},
    result=PlacementsData,
)
async def recommend_placements_op(ctx: OpContext, args: RecommendPlacementsArgs) -> OpResult:
    instagram = args.instagram if args.instagram is not None else bool(ctx.instagram_account_id)
    plan = recommend_placements(args.creative_type, args.objective, automatic=args.automatic, instagram=instagram)
    fragment = plan.targeting_fragment()
    lines = [plan.summary() + ".", *[f"  Why: {reason}" for reason in plan.reasons]]
    if args.instagram is None and not instagram:
        lines.append(
            "  (Pass instagram=true to include Instagram with the Page's identity, or select an Instagram account.)"
        )
    return OpResult(
        text="\n".join(lines), data={"plan": asdict(plan), "targeting": fragment, "summary": plan.summary()}
    )


# ===============================================================================================================
# Ad sets
# ===============================================================================================================

BILLING_EVENTS = sdk_enum_values(AdSet.BillingEvent)
BID_STRATEGIES = sdk_enum_values(AdSet.BidStrategy)
EFFECTIVE_STATUSES = sdk_enum_values(AdSet.EffectiveStatus)
STATUS_OPTIONS = sdk_enum_values(AdSet.StatusOption)
DESTINATION_TYPES = sdk_enum_values(AdSet.DestinationType)
CUSTOM_EVENT_TYPES = sdk_enum_values(AdPromotedObject.CustomEventType)

BillingEvent = Literal[BILLING_EVENTS]  # type: ignore[valid-type]
BidStrategy = Literal[BID_STRATEGIES]  # type: ignore[valid-type]
EffectiveStatus = Literal[EFFECTIVE_STATUSES]  # type: ignore[valid-type]
StatusOption = Literal[STATUS_OPTIONS]  # type: ignore[valid-type]
DestinationType = Literal[DESTINATION_TYPES]  # type: ignore[valid-type]
CustomEventType = Literal[CUSTOM_EVENT_TYPES]  # type: ignore[valid-type]

# docs/adset_rules.md, "Optimization goals by objective" (R1) and its defaults.
GOALS_BY_OBJECTIVE: dict[str, tuple[str, ...]] = {
    "OUTCOME_AWARENESS": ("REACH", "IMPRESSIONS", "AD_RECALL_LIFT", "THRUPLAY"),
    "OUTCOME_TRAFFIC": (
        "LINK_CLICKS",
        "LANDING_PAGE_VIEWS",
        "REACH",
        "IMPRESSIONS",
        "CONVERSATIONS",
        "VISIT_INSTAGRAM_PROFILE",
        "QUALITY_CALL",
    ),
    "OUTCOME_ENGAGEMENT": (
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
    ),
    "OUTCOME_LEADS": (
        "LEAD_GENERATION",
        "QUALITY_LEAD",
        "OFFSITE_CONVERSIONS",
        "CONVERSATIONS",
        "QUALITY_CALL",
        "LINK_CLICKS",
        "LANDING_PAGE_VIEWS",
    ),
    "OUTCOME_SALES": (
        "OFFSITE_CONVERSIONS",
        "VALUE",
        "LINK_CLICKS",
        "LANDING_PAGE_VIEWS",
        "CONVERSATIONS",
        "IMPRESSIONS",
        "REACH",
        "QUALITY_CALL",
    ),
    "OUTCOME_APP_PROMOTION": (
        "APP_INSTALLS",
        "APP_INSTALLS_AND_OFFSITE_CONVERSIONS",
        "OFFSITE_CONVERSIONS",
        "VALUE",
        "LINK_CLICKS",
    ),
}
DEFAULT_GOAL = {
    "OUTCOME_AWARENESS": "REACH",
    "OUTCOME_TRAFFIC": "LINK_CLICKS",
    "OUTCOME_ENGAGEMENT": "POST_ENGAGEMENT",
    "OUTCOME_LEADS": "LEAD_GENERATION",
    "OUTCOME_SALES": "OFFSITE_CONVERSIONS",
    "OUTCOME_APP_PROMOTION": "APP_INSTALLS",
}
# R2: IMPRESSIONS fits every goal; these goals may also be billed by their own event.
GOAL_BILLED_BY_ITSELF = ("LINK_CLICKS", "THRUPLAY", "APP_INSTALLS", "PAGE_LIKES", "POST_ENGAGEMENT")
BID_AMOUNT_STRATEGIES = ("LOWEST_COST_WITH_BID_CAP", "COST_CAP")
SPECIAL_CATEGORIES_WITH_LIMITS = ("CREDIT", "EMPLOYMENT", "HOUSING", "FINANCIAL_PRODUCTS_SERVICES")
BUDGET_CHANGES_PER_HOUR = 4

F = AdSet.Field
ADSET_FIELDS = ",".join(
    [
        F.id,
        F.account_id,
        F.campaign_id,
        F.name,
        F.status,
        F.effective_status,
        F.optimization_goal,
        F.billing_event,
        F.bid_strategy,
        F.bid_amount,
        F.bid_constraints,
        F.daily_budget,
        F.lifetime_budget,
        F.budget_remaining,
        F.start_time,
        F.end_time,
        F.targeting,
        F.promoted_object,
        F.destination_type,
        F.adset_schedule,
        F.pacing_type,
        F.created_time,
        F.updated_time,
    ]
)
LIST_FIELDS = ",".join(
    [
        F.id,
        F.campaign_id,
        F.name,
        F.status,
        F.effective_status,
        F.optimization_goal,
        F.billing_event,
        F.daily_budget,
        F.lifetime_budget,
        F.start_time,
        F.end_time,
        F.adset_schedule,
    ]
)
C = Campaign.Field
CAMPAIGN_FIELDS = ",".join(
    [
        C.id,
        C.name,
        C.account_id,
        C.objective,
        C.status,
        C.daily_budget,
        C.lifetime_budget,
        C.bid_strategy,
        C.special_ad_categories,
    ]
)
LISTABLE_STATUSES = [s for s in EFFECTIVE_STATUSES if s not in ("ARCHIVED", "DELETED")]

# ---- What the ad set ops answer as data (their result models: MCP's outputSchema) ---------------------------------
ListedAdSet = graph_object(AdSet, LIST_FIELDS, name="ListedAdSet")
AdSetObject = graph_object(AdSet, ADSET_FIELDS, name="AdSetObject")
ChangedAdSet = changed_data("adset_id")  # update_adset, set_schedule and the status ops (update_plan's answer)


class AdSetList(ListPage):
    ad_account_id: str
    campaign_id: str | None = Field(description="The campaign listed (null: every ad set of the ad account).")
    currency: str
    adsets: list[ListedAdSet]  # type: ignore[valid-type]


class AdSetData(OpData):
    adset: AdSetObject  # type: ignore[valid-type]
    currency: str


class CreatedAdSet(OpData):
    id: str
    adset_id: str
    campaign_id: str
    status: Literal["PAUSED", "ACTIVE"]
    ad_account_id: str
    notes: list[str] = Field(description="What was chosen on the caller's behalf (defaults).")
    targeting: dict[str, Any] = Field(description="The targeting spec sent.")
    recovered: bool = Field(description="True when the create's answer was lost and the ad set was found afterwards.")


class CopiedAdSet(OpData):
    adset_id: str = Field(description="The copy.")
    copied_adset_id: str
    source_adset_id: str
    campaign_id: str = Field(description="The copy's campaign.")
    status: str
    ad_object_ids: list[dict[str, Any]] = Field(
        description="Facebook's copied objects: {ad_object_type, source_id, copied_id}."
    )


BUDGET_NOTE = "Minor units of the account currency (cents for USD: 5000 = $50.00; yen for JPY: 5000 = ¥5,000)."
TIME_NOTE = "ISO-8601, e.g. 2026-12-01T09:00:00-08:00; without an offset it is read in the ad account's time zone."

AdAccountArg = Field(
    None,
    description="Ad account id (act_<digits>); defaults to the campaign's account, else the selected one.",
    examples=["act_1234567890"],
)
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


@overload
def local_time(value: datetime, account: AccountInfo) -> datetime: ...
@overload
def local_time(value: None, account: AccountInfo) -> None: ...
@overload
def local_time(value: datetime | None, account: AccountInfo) -> datetime | None: ...
def local_time(value: datetime | None, account: AccountInfo) -> datetime | None:
    """A time the caller gave: one without an offset means the ad account's time zone, as in Ads Manager."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=account_zone(account))


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
        blocks.append(
            f"{_day_ranges([int(d) for d in block.get('days', [])])} "
            f"{_clock(int(block.get('start_minute', 0)))}–{_clock(int(block.get('end_minute', 0)))}"
        )
    kinds = {block.get("timezone_type", "USER") for block in schedule}
    where = (
        f"in the ad account's time zone ({account.timezone_name or 'UTC'})"
        if kinds == {"ADVERTISER"}
        else "in each viewer's own time zone"
        if kinds == {"USER"}
        else "mixed time zones"
    )
    return "runs only " + "; ".join(blocks) + f" {where}"


def adset_line(adset: dict[str, Any], account: AccountInfo) -> str:
    status = adset.get("effective_status") or adset.get("status") or "?"
    goal = adset.get("optimization_goal", "")
    return (
        f"{adset['id']} · {adset.get('name', '')} · {status} · {goal} · {budget_text(adset, account.currency)}"
        f" · {schedule_text(adset, account)}"
    )


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
    lines = [
        f"Ad set {adset.get('name')} ({adset['id']}) in campaign {adset.get('campaign_id')}, {account.name} ({account.id})",
        f"  status {adset.get('status')} (effective {adset.get('effective_status')})",
        f"  goal {adset.get('optimization_goal')}, billed per {adset.get('billing_event')}",
        f"  budget {budget_text(adset, currency)}",
    ]
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
        raise _rule_error(
            f"optimization_goal {goal} does not fit the campaign's objective {objective}",
            f"Use one of {', '.join(valid)} (default {DEFAULT_GOAL.get(objective or '')})",
            "optimization_goal",
            100,
            2490408,
        )


def check_billing(goal: str, billing_event: str) -> None:
    """R2: the billing event must fit the optimization goal."""
    valid = ["IMPRESSIONS"] + ([goal] if goal in GOAL_BILLED_BY_ITSELF else [])
    if billing_event not in valid:
        raise _rule_error(
            f"billing_event {billing_event} cannot be used with optimization_goal {goal}",
            f"Use billing_event {' or '.join(valid)} (IMPRESSIONS always works)",
            "billing_event",
            100,
            2490377,
        )


def check_bid(strategy: str | None, bid_amount: int | None, bid_constraints: dict[str, Any] | None) -> None:
    """R3: cap strategies need a bid amount; the minimum-ROAS strategy needs a ROAS floor."""
    if strategy in BID_AMOUNT_STRATEGIES and not bid_amount:
        raise _rule_error(
            f"bid strategy {strategy} needs a bid_amount",
            f"Pass bid_amount (the {'cap per result' if strategy == 'COST_CAP' else 'highest bid'}, {BUDGET_NOTE}) "
            "or use bid_strategy LOWEST_COST_WITHOUT_CAP",
            "bid_amount",
            100,
            1815857,
        )
    if strategy == "LOWEST_COST_WITH_MIN_ROAS" and not (bid_constraints or {}).get("roas_average_floor"):
        raise _rule_error(
            "bid strategy LOWEST_COST_WITH_MIN_ROAS needs bid_constraints.roas_average_floor",
            'Pass bid_constraints {"roas_average_floor": 10000} (ROAS × 10 000: 10000 = 1.0) or another bid strategy',
            "bid_constraints",
            100,
            1815857,
        )


def campaign_has_budget(campaign: dict[str, Any]) -> bool:
    return _has(campaign.get("daily_budget")) or _has(campaign.get("lifetime_budget"))


def check_budget_owner(campaign: dict[str, Any], daily: int | None, lifetime: int | None, account: AccountInfo) -> None:
    """R4 and R5: the budget lives on the campaign or on every ad set, exactly one kind."""
    if campaign_has_budget(campaign):
        if daily or lifetime:
            sent = "daily_budget" if daily else "lifetime_budget"
            raise _rule_error(
                f"Campaign {campaign.get('name')} ({campaign['id']}) has a campaign budget "
                f"({budget_text(campaign, account.currency)}), so its ad sets cannot have their own {sent.replace('_', ' ')}",
                f"Leave out {sent}, or change the campaign's budget with update_campaign",
                sent,
                100,
                1885621,
            )
        return
    if daily and lifetime:
        raise _rule_error(
            "An ad set takes daily_budget or lifetime_budget, not both",
            "Keep one: daily_budget (spend per day) or lifetime_budget (total, needs end_time)",
            "daily_budget",
            100,
            1885621,
        )
    if not (daily or lifetime):
        raise _rule_error(
            f"Campaign {campaign.get('name')} ({campaign['id']}) has no campaign budget, so the ad set needs its own",
            f"Pass daily_budget (e.g. 2000 = {format_money(2000, account.currency)}/day) or lifetime_budget with end_time; {BUDGET_NOTE}",
            "daily_budget",
            100,
            1885621,
        )


def schedule_days(start: datetime | None, end: datetime | None, now: datetime) -> int:
    """The days an ad set runs: from its start (or now, when it has none) to its end."""
    return max(1, math.ceil((end - (start or now)).total_seconds() / 86400)) if end else 1


def check_min_budget(
    field: str,
    amount: int | None,
    account: AccountInfo,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    now: datetime,
) -> None:
    """R6: at least the account's minimum per day (a lifetime budget: that minimum × the days it runs from ``start``,
    or from ``now`` when it has no start)."""
    minimum = account.min_daily_budget
    if amount is None or not minimum:
        return
    days = schedule_days(start, end, now) if field == "lifetime_budget" else 1
    needed = minimum * days
    if amount < needed:
        per = f" ({format_money(minimum, account.currency)} a day × {days} days)" if field == "lifetime_budget" else ""
        raise _rule_error(
            f"{field} {format_money(amount, account.currency)} is below the minimum of "
            f"{format_money(needed, account.currency)}{per} for {account.name}",
            f"Use {field} of at least {needed} ({format_money(needed, account.currency)}); amounts are minor units of {account.currency}",
            field,
            100,
            1885272,
        )


def check_times(start: datetime | None, end: datetime | None, lifetime: bool, now: datetime) -> None:
    """R7 and R8: a lifetime budget needs an end; the end comes after the start and lies in the future (``now``: the
    session's clock)."""
    if lifetime and end is None:
        raise _rule_error(
            "A lifetime budget needs end_time (when the ad set stops)",
            f"Pass end_time, e.g. {now + timedelta(days=30):%Y-%m-%d}T23:00:00, or use daily_budget",
            "end_time",
            100,
            1885347,
        )
    if end is not None and end <= now:
        raise _rule_error(
            f"end_time {end.isoformat()} is in the past", "Pick an end_time in the future", "end_time", 100, 1487181
        )
    if end is not None and start is not None and end <= start:
        raise _rule_error(
            f"end_time {end.isoformat()} is not after start_time {start.isoformat()}",
            "Pick an end_time after start_time",
            "end_time",
            100,
            1487181,
        )


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


async def default_pixel(
    ctx: OpContext, account: AccountInfo, objective: str | None, goal: str, promoted: dict[str, Any]
) -> list[str]:
    """A conversion goal needs a pixel: the account's only pixel is taken (and said); several or none is the caller's call."""
    pixels = await ctx.graph.get_all(f"{account.id}/adspixels", {"fields": "id,name", "limit": 100})
    if len(pixels) > 1:
        listed = ", ".join(f"{p.get('name', '')} ({p['id']})" for p in pixels[:10])
        raise _rule_error(
            f"{objective} with optimization_goal {goal} needs a pixel, and {account.name} has {len(pixels)}: {listed}",
            'Pass promoted_object {"pixel_id": "<one of them>", "custom_event_type": "PURCHASE"}',
            "promoted_object",
            100,
            1815430,
        )
    if not pixels:
        raise _rule_error(
            f"{objective} with optimization_goal {goal} needs a pixel, and {account.name} has none",
            "Install a Meta pixel on the website first, or use optimization_goal LINK_CLICKS or LANDING_PAGE_VIEWS",
            "promoted_object",
            100,
            1815430,
        )
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
        hints = {
            "pixel_id": "the id of the ad account's pixel",
            "custom_event_type": "the event to optimise for, e.g. PURCHASE or LEAD",
            "page_id": "the Facebook page (select one with /use page <id>)",
            "application_id": "the app's Facebook id",
            "object_store_url": "the app's store URL",
        }
        raise _rule_error(
            f"{objective} with optimization_goal {goal} needs promoted_object {' and '.join(missing)}",
            "Pass promoted_object with " + "; ".join(f"{k}: {hints[k]}" for k in missing),
            "promoted_object",
            100,
            1815430,
        )


def _hour_minute(value: Any, what: str) -> int:
    """'09:00', '9', 9 or '24:00' -> minutes since midnight; Facebook takes whole hours only."""
    text = str(value).strip()
    hours, _, minutes = text.partition(":")
    if not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise _rule_error(
            f"day_parting {what} {value!r} is not a time of day",
            'Write times as HH:MM, e.g. "09:00" or "24:00"',
            "adset_schedule",
            100,
            1487079,
        )
    if minutes and int(minutes) != 0:
        raise _rule_error(
            f"day_parting {what} {text} is not on the hour: Facebook schedules whole hours only",
            f"Use {int(hours):02d}:00 or {int(hours) + 1:02d}:00",
            "adset_schedule",
            100,
            1487079,
        )
    minute = int(hours) * 60
    if not 0 <= minute <= 1440:
        raise _rule_error(
            f"day_parting {what} {text} is outside 00:00–24:00",
            "Use hours from 00:00 to 24:00",
            "adset_schedule",
            100,
            1487079,
        )
    return minute


def _day_number(value: Any) -> int:
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        if 0 <= number <= 6:
            return number
    elif isinstance(value, str) and value.strip()[:3].lower() in DAY_NUMBERS:
        return DAY_NUMBERS[value.strip()[:3].lower()]
    raise _rule_error(
        f"day_parting day {value!r} is not a day",
        "Use mon..sun, or 0-6 with 0 = Sunday as Facebook numbers them",
        "adset_schedule",
        100,
        1487079,
    )


class DayPartingBlock(BaseModel):
    """One block of hours on some days."""

    model_config = ConfigDict(extra="forbid")

    days: list[int | str] = Field(
        ...,
        description='Days: "mon".."sun" (or 0-6, 0 = Sunday as Facebook counts).',
        examples=[["mon", "tue", "wed", "thu", "fri"]],
    )
    start: str | int = Field(..., description='Start hour, "HH:00" (whole hours only).', examples=["09:00"])
    end: str | int = Field(
        ...,
        description='End hour, "HH:00", after start; "24:00" is midnight at the end of the day.',
        examples=["17:00"],
    )


def day_parting_schedule(blocks: list[DayPartingBlock], timezone_choice: str) -> list[dict[str, Any]]:
    """Blocks as a person writes them -> Facebook's adset_schedule (R17 block rules)."""
    if not blocks:
        raise _rule_error(
            "day_parting has no blocks",
            "Give at least one block, or null to clear day parting",
            "adset_schedule",
            100,
            1487079,
        )
    timezone_type = "ADVERTISER" if timezone_choice == "account" else "USER"
    schedule = []
    for block in blocks:
        start, end = _hour_minute(block.start, "start"), _hour_minute(block.end, "end")
        if end <= start:
            raise _rule_error(
                f"day_parting block {_clock(start)}–{_clock(end)} ends before it starts",
                "Make end later than start (a block cannot cross midnight: split it in two)",
                "adset_schedule",
                100,
                1487079,
            )
        days = sorted({_day_number(d) for d in block.days})
        if not days:
            raise _rule_error(
                "day_parting block has no days",
                'List at least one day, e.g. ["mon", "tue"]',
                "adset_schedule",
                100,
                1487079,
            )
        schedule.append({"start_minute": start, "end_minute": end, "days": days, "timezone_type": timezone_type})
    return schedule


def check_day_parting_budget(has_lifetime: bool) -> None:
    """R17: Facebook runs day parting only with a lifetime budget."""
    if not has_lifetime:
        raise _rule_error(
            "Day parting (adset_schedule) needs a lifetime budget",
            "Use lifetime_budget with end_time instead of daily_budget, or leave out day_parting",
            "adset_schedule",
            100,
            2490126,
        )


def _decode_targeting(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def default_device_expansion(raw: Any, objective: str | None, api_version: str) -> tuple[Any, str | None]:
    """v27.0+: a new Sales ad set that targets specific mobile devices or operating systems also reaches other mobile
    devices unless targeting_automation.individual_setting.device = 0 (v27 blog,
    https://developers.facebook.com/blog/post/2026/11/04/introducing-graph-api-v27-and-marketing-api-v27/). Keep the
    person's devices as given (0) unless they chose; say so."""
    match = re.match(r"v(\d+)", api_version or "")
    if not isinstance(raw, dict) or objective != "OUTCOME_SALES" or not match or int(match.group(1)) < 27:
        return raw, None
    if not (raw.get("user_os") or raw.get("user_device")):
        return raw, None
    automation = raw.get("targeting_automation")
    automation = automation if isinstance(automation, dict) else {}
    individual = automation.get("individual_setting")
    individual = individual if isinstance(individual, dict) else {}
    if "device" in individual:
        return raw, None
    chosen = {**raw, "targeting_automation": {**automation, "individual_setting": {**individual, "device": 0}}}
    return chosen, (
        "kept to the devices/operating systems you chose (individual_setting.device 0; from API v27 Facebook "
        "otherwise also reaches other mobile devices for Sales ad sets: pass device 1 to allow it)"
    )


def default_advantage_audience(raw: Any) -> tuple[Any, str | None]:
    """Facebook requires targeting_automation.advantage_audience (R12); choose it the way the person most likely means."""
    if not isinstance(raw, dict):
        return raw, None
    automation = raw.get("targeting_automation")
    if isinstance(automation, dict) and "advantage_audience" in automation:
        return raw, None
    custom = [k for k in ("age_min", "age_max", "genders") if raw.get(k) not in (None, [], "")]
    value = 0 if custom else 1
    chosen = {
        **raw,
        "targeting_automation": {**(automation if isinstance(automation, dict) else {}), "advantage_audience": value},
    }
    note = (
        f"advantage_audience set to 0 because you set {'/'.join(custom)}: the audience stays as given (pass 1 to let Facebook widen it)"
        if custom
        else "advantage_audience set to 1 (Facebook may widen the audience beyond your suggestions; pass 0 to keep it strict)"
    )
    return chosen, note


# ---------------------------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------------------------


class ListAdSetsArgs(OpArgs):
    """List ad sets of a campaign (or of an ad account) with status, goal, budget and schedule; filter and page."""

    campaign_id: str | None = Field(
        None, description="Only the ad sets of this campaign. Without it: every ad set of the ad account."
    )
    ad_account_id: str | None = Field(
        None, description="Ad account id (act_<digits>); defaults to the selected account. Ignored with campaign_id."
    )
    status: list[EffectiveStatus] | None = Field(
        None,
        description='Only ad sets with these effective statuses, e.g. ["ACTIVE"]. Default: all but ARCHIVED and DELETED.',
    )
    name_contains: str | None = Field(
        None, min_length=1, max_length=200, description="Only ad sets whose name contains this text."
    )
    limit: int = Field(25, ge=1, le=1000, description="Page size (1-1000).")
    after: str | None = Field(None, description="Cursor from a previous page's `next_after` to get the next page.")
    all_pages: bool = Field(False, description="Follow every page (up to `limit` ad sets in total when set together).")


@ops.op(OpKind.READ, group=TaskGroup.ADSETS_TARGETING, result=AdSetList)
async def list_adsets(ctx: OpContext, args: ListAdSetsArgs) -> OpResult:
    if args.campaign_id:
        campaign = await _read_campaign(ctx, args.campaign_id)
        account = await _account_of(ctx, campaign, args.ad_account_id)
        path, where = f"{campaign['id']}/adsets", f"campaign {campaign.get('name')} ({campaign['id']})"
    else:
        account = await ctx.graph.account_info(ctx.require_ad_account(args.ad_account_id))
        path, where = f"{account.id}/adsets", f"{account.name} ({account.id})"
    adsets, next_after = await list_page(ctx.graph, path, args, LIST_FIELDS, LISTABLE_STATUSES)
    text, hints = list_text("list_adsets", args, "ad sets", where, adsets, lambda a: adset_line(a, account), next_after)
    return OpResult(
        text=text,
        hints=hints,
        data={
            "ad_account_id": account.id,
            "campaign_id": args.campaign_id,
            "currency": account.currency,
            "adsets": adsets,
            "next_after": next_after,
        },
    )


class GetAdSetArgs(OpArgs):
    """Show one ad set: status, goal, budget, bid, schedule, targeting in words, placements, promoted object."""

    adset_id: str = AdSetIdArg


@ops.op(OpKind.READ, group=TaskGroup.ADSETS_TARGETING, result=AdSetData)
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
    custom_event_type: CustomEventType | None = Field(
        None, description="Conversion event to optimise for, e.g. PURCHASE, LEAD."
    )
    page_id: str | None = Field(
        None, description="Facebook page id, for lead forms and page likes (default: the selected page)."
    )
    application_id: str | None = Field(None, description="Facebook app id, for app promotion.")
    object_store_url: str | None = Field(None, description="App store URL of the app, for app promotion.")


class CreateAdSetArgs(OpArgs):
    """Create an ad set in a campaign (PAUSED unless status=ACTIVE is confirmed): targeting, goal, budget, schedule, placements.

    Every Facebook rule for ad sets is checked first; defaults (goal for the objective, IMPRESSIONS billing,
    advantage_audience, the selected page) are named in the answer.
    """

    campaign_id: str = Field(
        ..., description="The campaign the ad set belongs to (digits).", examples=["120210000000000001"]
    )
    name: str = Field(..., min_length=1, max_length=400, description="Ad set name.", examples=["US 25-45 runners"])
    targeting: dict[str, Any] | str = Field(
        ...,
        description="Targeting spec as Facebook takes it: geo_locations {countries, regions, cities, zips}, age_min, age_max, genders [1 male, 2 female], interests [{id,name}], flexible_spec, custom_audiences, targeting_automation {advantage_audience 0|1}. Use search_locations/search_interests for ids.",
        examples=[{"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 45}],
    )
    optimization_goal: OptimizationGoal | None = Field(
        None,
        description="What Facebook optimises delivery for; default by the campaign objective (TRAFFIC → LINK_CLICKS, SALES → OFFSITE_CONVERSIONS, LEADS → LEAD_GENERATION, AWARENESS → REACH, ENGAGEMENT → POST_ENGAGEMENT, APP_PROMOTION → APP_INSTALLS).",
    )
    billing_event: BillingEvent | None = Field(
        None, description="What you pay for; default IMPRESSIONS (valid for every goal)."
    )
    bid_strategy: BidStrategy | None = Field(
        None,
        description="Bid strategy of the ad set (when the campaign has no budget); COST_CAP and LOWEST_COST_WITH_BID_CAP need bid_amount.",
    )
    bid_amount: Amount | None = Field(None, gt=0, description=f"Bid cap or cost cap per result. {BUDGET_NOTE}")
    bid_constraints: dict[str, Any] | None = Field(
        None, description='For LOWEST_COST_WITH_MIN_ROAS: {"roas_average_floor": 10000} (ROAS × 10 000).'
    )
    daily_budget: Amount | None = Field(
        None, gt=0, description=f"Daily budget of the ad set (only when the campaign has no budget). {BUDGET_NOTE}"
    )
    lifetime_budget: Amount | None = Field(
        None, gt=0, description=f"Total budget of the ad set (needs end_time; needed for day_parting). {BUDGET_NOTE}"
    )
    start_time: datetime | None = Field(
        None, description=f"When delivery may start (default: as soon as it is active). {TIME_NOTE}"
    )
    end_time: datetime | None = Field(
        None, description=f"When delivery stops; required with lifetime_budget. {TIME_NOTE}"
    )
    promoted_object: PromotedObject | None = Field(
        None,
        description="Required for conversions (pixel_id + custom_event_type), lead forms and page likes (page_id; default the selected page), app installs (application_id + object_store_url).",
    )
    destination_type: DestinationType | None = Field(
        None, description="Where people go: WEBSITE, APP, MESSENGER, WHATSAPP, ON_AD (lead form), …"
    )
    placements: Literal["recommended", "automatic"] | None = Field(
        None,
        description='"recommended": placements chosen for creative_type (the answer says which and why); "automatic": Advantage+ placements; omitted: what the targeting says.',
    )
    creative_type: Literal["image", "video", "carousel"] = Field(
        "image", description='The kind of ads planned, used by placements="recommended".'
    )
    day_parting: list[DayPartingBlock] | None = Field(
        None,
        description='Run only in these hours (needs lifetime_budget): [{days: ["mon",..], start: "09:00", end: "17:00"}].',
    )
    timezone: Literal["viewer", "account"] = Field(
        "viewer", description="Day parting hours in each viewer's time zone (viewer) or the ad account's (account)."
    )
    status: Literal["PAUSED", "ACTIVE"] = Field(
        "PAUSED", description="PAUSED (default) or ACTIVE, which can start spending and needs confirmation."
    )
    ad_account_id: str | None = AdAccountArg
    client_tag: str | None = Field(None, pattern=CLIENT_TAG_PATTERN, description=CLIENT_TAG_DESCRIPTION)


@dataclass
class PreparedAdSet:
    """A create checked against every rule: the body to send and what was chosen on the caller's behalf."""

    data: dict[str, Any]
    notes: list[str]
    targeting_summary: str
    placements_summary: str


async def prepare_create(
    ctx: OpContext, args: CreateAdSetArgs, campaign: dict[str, Any], account: AccountInfo
) -> PreparedAdSet:
    """Check R1-R8, R14, R17 and the targeting (R9-R13, R15) and build the create body; nothing is sent."""
    notes: list[str] = []
    raw_targeting, automation_note = default_advantage_audience(_decode_targeting(args.targeting))
    objective = campaign.get("objective")
    raw_targeting, device_note = default_device_expansion(raw_targeting, objective, ctx.graph.api_version)
    if device_note:
        notes.append(device_note)
    spec = parse_targeting(raw_targeting)
    goal = args.optimization_goal or DEFAULT_GOAL.get(objective or "", "LINK_CLICKS")
    if not args.optimization_goal:
        notes.append(f"optimization goal {goal} (the default for {objective})")
    check_goal(objective, goal)
    billing = args.billing_event or "IMPRESSIONS"
    check_billing(goal, billing)
    check_bid(args.bid_strategy or campaign.get("bid_strategy"), args.bid_amount, args.bid_constraints)
    check_budget_owner(campaign, args.daily_budget, args.lifetime_budget, account)
    start, end, now = local_time(args.start_time, account), local_time(args.end_time, account), await ctx.now()
    check_times(start, end, bool(args.lifetime_budget), now)
    check_min_budget("daily_budget", args.daily_budget, account, now=now)
    check_min_budget("lifetime_budget", args.lifetime_budget, account, start, end, now=now)
    check_max_budget("daily_budget", args.daily_budget, account)
    check_max_budget("lifetime_budget", args.lifetime_budget, account)

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

    data: dict[str, Any] = {
        "name": args.name,
        "campaign_id": campaign["id"],
        "status": args.status,
        "optimization_goal": goal,
        "billing_event": billing,
        "targeting": targeting,
    }
    optional = {
        "bid_strategy": args.bid_strategy,
        "bid_amount": args.bid_amount,
        "bid_constraints": args.bid_constraints,
        "daily_budget": args.daily_budget,
        "lifetime_budget": args.lifetime_budget,
        "start_time": start and _graph_time(start),
        "end_time": end and _graph_time(end),
        "promoted_object": promoted or None,
        "destination_type": args.destination_type,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    if schedule:
        data["adset_schedule"] = schedule
        data["pacing_type"] = ["day_parting"]
    return PreparedAdSet(
        data=data,
        notes=notes,
        targeting_summary=describe_targeting_locally(spec),
        placements_summary=placements_summary or placements_text(targeting),
    )


def create_summary(
    args: CreateAdSetArgs, prepared: PreparedAdSet, campaign: dict[str, Any], account: AccountInfo
) -> str:
    data = prepared.data
    budget = (
        budget_text(data, account.currency)
        if (args.daily_budget or args.lifetime_budget)
        else f"campaign budget ({budget_text(campaign, account.currency)})"
    )
    parts = [
        f"goal {data['optimization_goal']}",
        f"billing {data['billing_event']}",
        f"budget {budget}",
        f"schedule {schedule_text(data, account)}",
        f"targeting {prepared.targeting_summary.rstrip('. ')}",
    ]
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


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.ADSETS_TARGETING,
    example={
        "campaign_id": "120210000000000001",
        "name": "US 25-45",
        "daily_budget": 2000,
        "targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 45},
        "placements": "recommended",
    },
    result=CreatedAdSet,
)
async def create_adset(ctx: OpContext, args: CreateAdSetArgs) -> WritePlan:
    campaign = await _read_campaign(ctx, args.campaign_id)
    account = await _account_of(ctx, campaign, args.ad_account_id)
    if args.ad_account_id and ctx.require_ad_account(args.ad_account_id) != account.id:
        raise ValidationError(
            f"Campaign {campaign['id']} belongs to {account.id}, not {args.ad_account_id}",
            fix="Leave out ad_account_id (the campaign's account is used) or pick a campaign of that account",
            blame_field="ad_account_id",
        )
    if campaign.get("status") in ("DELETED", "ARCHIVED"):
        raise ValidationError(
            f"Campaign {campaign.get('name')} ({campaign['id']}) is {campaign['status'].lower()}; it takes no new ad sets",
            fix="Pick an active or paused campaign, or duplicate this one",
            blame_field="campaign_id",
        )
    prepared = await prepare_create(ctx, args, campaign, account)
    data = prepared.data
    summary = create_summary(args, prepared, campaign, account)
    tag = args.client_tag or new_client_tag()
    path = f"{account.id}/adsets"
    send = {**data, "adlabels": [{"name": tag}]}

    async def execute() -> OpResult:
        created = await ctx.graph.create(
            path, send, lookup=CreateLookup(list_path=path, name=args.name, tag=tag), look_first=bool(args.client_tag)
        )
        recovered = recovered_words(created)
        text = (
            f"Created ad set {args.name} ({created['id']}) {args.status} in campaign {campaign.get('name')}{recovered}: "
            f"{summary}. Next: add ads with a creative."
        )
        return OpResult(
            text=text,
            data={
                "id": created["id"],
                "adset_id": created["id"],
                "campaign_id": campaign["id"],
                "status": args.status,
                "ad_account_id": account.id,
                "notes": prepared.notes,
                "targeting": data["targeting"],
                "recovered": bool(created.get("recovered")),
            },
        )

    async def validate() -> Any:
        return await ctx.graph.post(path, {**data, "execution_options": ["validate_only"]})

    changes = [Change(None, "adset", args.name, "status", None, args.status)]
    changes += [
        Change(None, "adset", args.name, f, None, getattr(args, f), account.currency)
        for f in ("daily_budget", "lifetime_budget", "bid_amount")
        if getattr(args, f)
    ]
    return WritePlan(
        summary=f"create ad set {args.name} ({args.status}) in campaign {campaign.get('name')} ({campaign['id']}): {summary}",
        ad_account_id=account.id,
        requests=[GraphRequest("POST", path, send)],
        changes=changes,
        execute=execute,
        validate=validate,
        currency=account.currency,
    )


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
    daily_budget: Amount | None = Field(None, gt=0, description=f"New daily budget. {BUDGET_NOTE}")
    lifetime_budget: Amount | None = Field(None, gt=0, description=f"New lifetime budget. {BUDGET_NOTE}")
    bid_amount: Amount | None = Field(None, gt=0, description=f"New bid cap / cost cap. {BUDGET_NOTE}")
    bid_strategy: BidStrategy | None = Field(
        None, description="New bid strategy; COST_CAP and LOWEST_COST_WITH_BID_CAP need a bid_amount."
    )
    targeting: dict[str, Any] | str | None = Field(
        None, description="A complete new targeting spec (replaces the current one entirely; get_adset shows it)."
    )
    optimization_goal: OptimizationGoal | None = Field(
        None, description="New optimization goal (must fit the campaign's objective)."
    )
    start_time: datetime | None = Field(None, description=f"New start. {TIME_NOTE}")
    end_time: datetime | None = Field(None, description=f"New end. {TIME_NOTE}")


def _check_editable(adset: dict[str, Any], updates: dict[str, Any]) -> None:
    status = adset.get("status")
    if status == "DELETED":
        raise ValidationError(
            f"Ad set {adset['id']} is deleted and cannot be changed", fix="Duplicate it or create a new ad set"
        )
    if status == "ARCHIVED" and (set(updates) - {"status"} or updates.get("status") != "DELETED"):
        raise ValidationError(
            f"Ad set {adset.get('name')} ({adset['id']}) is archived; Facebook only allows deleting it",
            fix="Use duplicate_adset to run it again, or delete_adset",
        )


async def budget_changes_last_hour(ctx: OpContext, adset_id: str, now: datetime) -> list[datetime]:
    """When this ad set's budget changed in the hour before ``now`` (the session's clock), from its activity log (R16)."""
    since = int(now.timestamp()) - 3600
    events = await ctx.graph.get_all(f"{adset_id}/activities", {"fields": "event_type,event_time", "since": since})
    times = []
    for event in events:
        if event.get("event_type") != "update_ad_set_budget":
            continue
        moment = parse_graph_time(event.get("event_time"))
        if moment is None or moment.timestamp() >= since:
            times.append(moment or now)
    return sorted(times)


async def check_budget_rate(ctx: OpContext, adset: dict[str, Any], account: AccountInfo, field: str) -> None:
    now = await ctx.now()
    changes = await budget_changes_last_hour(ctx, adset["id"], now)
    if len(changes) >= BUDGET_CHANGES_PER_HOUR:
        next_at = changes[-BUDGET_CHANGES_PER_HOUR] + timedelta(hours=1)
        wait = max(1, math.ceil((next_at - now).total_seconds() / 60))
        raise _rule_error(
            f"The budget of ad set {adset.get('name')} ({adset['id']}) already changed {len(changes)} times in the "
            f"last hour; Facebook allows {BUDGET_CHANGES_PER_HOUR}",
            f"Change it again after {when_text(next_at, account)} ({account.timezone_name or 'UTC'}), in about {wait} min",
            field,
            613,
            1487632,
        )


def _updates_of(args: BaseModel, exclude: set[str]) -> dict[str, Any]:
    return args.model_dump(exclude=exclude, exclude_none=True)


async def _check_update(
    ctx: OpContext,
    adset: dict[str, Any],
    campaign: dict[str, Any],
    account: AccountInfo,
    updates: dict[str, Any],
    args: UpdateAdSetArgs,
) -> dict[str, Any]:
    """Apply every rule to an update and turn it into the fields to send."""
    _check_editable(adset, updates)
    budget_field = next((f for f in ("daily_budget", "lifetime_budget") if f in updates), None)
    if updates.get("daily_budget") and updates.get("lifetime_budget"):
        raise _rule_error(
            "An ad set takes daily_budget or lifetime_budget, not both",
            "Change one of them",
            "daily_budget",
            100,
            1885621,
        )
    if budget_field:
        if campaign_has_budget(campaign):
            raise _rule_error(
                f"Ad set {adset.get('name')} belongs to campaign {campaign.get('name')} ({campaign['id']}), which has a "
                f"campaign budget ({budget_text(campaign, account.currency)}); its ad sets have none to change",
                "Change the campaign's budget with update_campaign",
                budget_field,
                100,
                1885621,
            )
        other = "lifetime_budget" if budget_field == "daily_budget" else "daily_budget"
        if _has(adset.get(other)):
            raise ValidationError(
                f"Ad set {adset.get('name')} has a {other.replace('_', ' ')}; Facebook cannot switch an ad set "
                "between daily and lifetime budget",
                fix=f"Change {other} instead, or duplicate the ad set and give the copy a {budget_field.replace('_', ' ')}",
                blame_field=budget_field,
            )
    start = local_time(args.start_time, account) or parse_graph_time(adset.get("start_time"))
    end = local_time(args.end_time, account) or parse_graph_time(adset.get("end_time"))
    now = await ctx.now()
    if "start_time" in updates or "end_time" in updates:
        check_times(start, end, _has(adset.get("lifetime_budget")) or "lifetime_budget" in updates, now)
    check_min_budget("daily_budget", updates.get("daily_budget"), account, now=now)
    for field in ("daily_budget", "lifetime_budget"):
        check_max_budget(field, updates.get(field), account)
    lifetime = updates.get("lifetime_budget") or (
        int(adset["lifetime_budget"]) if _has(adset.get("lifetime_budget")) and end else None
    )
    if lifetime and ("lifetime_budget" in updates or "end_time" in updates or "start_time" in updates):
        check_min_budget("lifetime_budget", lifetime, account, start, end, now=now)
    goal = updates.get("optimization_goal") or adset.get("optimization_goal")
    if "optimization_goal" in updates:
        check_goal(campaign.get("objective"), str(goal))
        if adset.get("billing_event"):
            check_billing(str(goal), adset["billing_event"])
    if "bid_strategy" in updates or "bid_amount" in updates:
        strategy = updates.get("bid_strategy") or adset.get("bid_strategy") or campaign.get("bid_strategy")
        check_bid(
            strategy,
            updates.get("bid_amount") or (int(adset["bid_amount"]) if _has(adset.get("bid_amount")) else None),
            adset.get("bid_constraints"),
        )
    sent = dict(updates)
    if args.targeting is not None:
        spec = parse_targeting(_decode_targeting(args.targeting))
        categories = [c for c in campaign.get("special_ad_categories") or [] if c != "NONE"]
        check_targeting(spec, special_ad_categories=categories, creating=False)
        sent["targeting"] = targeting_payload(spec)
    for key in ("start_time", "end_time"):
        if key in sent:
            given: datetime = getattr(args, key)  # in sent: given
            sent[key] = _graph_time(local_time(given, account))
    return sent


def describe_changes(changes: list[Change], account: AccountInfo | None = None) -> str:
    parts = []
    for change in changes:
        if change.field == "targeting":
            parts.append(f"targeting → {targeting_text(change.after)}")
        elif change.field == "adset_schedule" and account is not None:
            parts.append(
                f"day parting → {day_parting_text(change.after, account) if change.after else 'none (runs all day)'}"
            )
        elif change.field == "pacing_type":
            continue
        elif change.field in ("start_time", "end_time") and account is not None:
            before = when_text(change.before, account) if _has(change.before) else "none"
            parts.append(
                f"{change.field.replace('_', ' ')} {before} → {when_text(change.after, account) if _has(change.after) else 'none'}"
            )
        else:
            parts.append(describe_change(change))
    return "; ".join(parts)


def adset_plan(
    ctx: OpContext, adset: dict[str, Any], account: AccountInfo, updates: dict[str, Any], verb: str, extra: str = ""
) -> WritePlan | OpResult:
    target = EditedObject(adset, "adset", "ad set", "adset_id", account.id, account.currency)
    return update_plan(
        ctx, target, updates, verb, describe=lambda changes: describe_changes(changes, account), extra=extra
    )


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.ADSETS_TARGETING,
    example={"adset_id": "120210000000000101", "daily_budget": 3000},
    result=ChangedAdSet,
)
async def update_adset(ctx: OpContext, args: UpdateAdSetArgs) -> WritePlan | OpResult:
    updates = _updates_of(args, {"adset_id"})
    if not updates:
        raise ValidationError(
            "Nothing to change",
            fix="Pass at least one of name, status, daily_budget, lifetime_budget, bid_amount, "
            "bid_strategy, targeting, optimization_goal, start_time, end_time",
            blame_field="adset_id",
        )
    adset = await _read_adset(ctx, args.adset_id)
    account = await _account_of(ctx, adset)
    campaign = await _read_campaign(ctx, adset["campaign_id"]) if adset.get("campaign_id") else {"id": "?"}
    sent = await _check_update(ctx, adset, campaign, account, updates, args)
    budget_field = next(
        (f for f in ("daily_budget", "lifetime_budget") if f in sent and str(adset.get(f)) != str(sent[f])), None
    )
    if budget_field:
        await check_budget_rate(ctx, adset, account, budget_field)
    return adset_plan(ctx, adset, account, sent, "Updated")


async def _status_change(ctx: OpContext, adset_id: str, status: str, verb: str) -> WritePlan | OpResult:
    adset = await _read_adset(ctx, adset_id)
    account = await _account_of(ctx, adset)
    _check_editable(adset, {"status": status})
    return adset_plan(ctx, adset, account, {"status": status}, verb)


add_status_ops(
    ops,
    "adset",
    "adset_id",
    AdSetIdArg,
    {
        "pause": "Pause an ad set: its ads stop delivering until it is resumed.",
        "resume": "Resume (activate) a paused ad set: it can spend again, so this asks for confirmation under the guardrails policy.",
        "archive": "Archive an ad set: it stops and leaves the default lists; afterwards it can only be deleted.",
        "delete": "Delete an ad set (and with it its ads). This cannot be undone.",
    },
    _status_change,
    TaskGroup.ADSETS_TARGETING,
    result=ChangedAdSet,
)


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
    day_parting: list[DayPartingBlock] | None = Field(
        None,
        description='Hours to run in: [{days: ["mon".."sun"] or 0-6 (0 = Sunday), start: "09:00", end: "17:00"}]; null clears day parting; omitted leaves it as it is.',
    )
    timezone: Literal["viewer", "account"] = Field(
        "viewer", description="Day parting in each viewer's time zone (viewer) or the ad account's time zone (account)."
    )


# SPEND: a later end_time lets a daily budget keep spending.
@ops.op(
    OpKind.SPEND,
    group=TaskGroup.ADSETS_TARGETING,
    example={
        "adset_id": "120210000000000101",
        "timezone": "account",
        "day_parting": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    },
    result=ChangedAdSet,
)
async def set_schedule(ctx: OpContext, args: SetScheduleArgs) -> WritePlan | OpResult:
    given = args.model_fields_set - {"adset_id", "timezone"}
    if not given:
        raise ValidationError(
            "Nothing to schedule",
            fix="Pass start_time, end_time, or day_parting (null clears it)",
            blame_field="day_parting",
        )
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
        now = await ctx.now()
        check_times(start, end, has_lifetime, now)
        if has_lifetime:
            check_min_budget("lifetime_budget", int(adset["lifetime_budget"]), account, start, end, now=now)
    if args.start_time:
        updates["start_time"] = _graph_time(local_time(args.start_time, account))
    if args.end_time:
        updates["end_time"] = _graph_time(local_time(args.end_time, account))
    future = {**adset, **updates}
    words = (
        schedule_text(future, account) if future.get("adset_schedule") or start or end else "runs all day, every day"
    )
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
    status_option: StatusOption = Field(
        "PAUSED",
        description="Status of the copy: PAUSED (default), ACTIVE (needs confirmation) or INHERITED_FROM_SOURCE.",
    )
    rename_suffix: str = Field(" - Copy", max_length=100, description="Text appended to the copy's name.")


@ops.op(OpKind.SPEND, group=TaskGroup.ADSETS_TARGETING, result=CopiedAdSet)
async def duplicate_adset(ctx: OpContext, args: DuplicateAdSetArgs) -> WritePlan:
    source = await _read_adset(ctx, args.adset_id)
    account = await _account_of(ctx, source)
    if source.get("status") == "DELETED":
        raise ValidationError(
            f"Ad set {source['id']} is deleted and cannot be copied", fix="Pick an ad set that exists"
        )
    body: dict[str, Any] = {
        "deep_copy": args.deep_copy,
        "status_option": args.status_option,
        "rename_options": {
            "rename_suffix": args.rename_suffix,
            "rename_strategy": "DEEP_RENAME" if args.deep_copy else "ONLY_TOP_LEVEL_RENAME",
        },
    }
    target = ""
    if args.campaign_id and args.campaign_id != source.get("campaign_id"):
        campaign = await _read_campaign(ctx, args.campaign_id)
        if (
            campaign.get("account_id")
            and source.get("account_id")
            and str(campaign["account_id"]) != str(source["account_id"])
        ):
            raise ValidationError(
                f"Campaign {campaign['id']} is in another ad account than ad set {source['id']}",
                fix="Copy into a campaign of the same ad account",
                blame_field="campaign_id",
            )
        own_budget = _has(source.get("daily_budget")) or _has(source.get("lifetime_budget"))
        if campaign_has_budget(campaign) == own_budget:
            why = (
                "has a campaign budget and the ad set has its own"
                if own_budget
                else "has no campaign budget and the ad set has none of its own"
            )
            raise _rule_error(
                f"Campaign {campaign.get('name')} ({campaign['id']}) {why}",
                "Copy into a campaign whose budget setup matches (campaign budget or ad set budgets)",
                "daily_budget" if own_budget or not campaign_has_budget(campaign) else "campaign_id",
                100,
                1885621,
            )
        body["campaign_id"] = campaign["id"]
        target = f" in campaign {campaign.get('name')} ({campaign['id']})"
    status = source.get("status") if args.status_option == "INHERITED_FROM_SOURCE" else args.status_option
    new_name = f"{source.get('name', '')}{args.rename_suffix}"

    async def execute() -> OpResult:
        copied = await ctx.graph.post(f"{source['id']}/copies", body)
        new_id = copied.get("copied_adset_id") or copied.get("id")
        return OpResult(
            text=f"Copied ad set {source.get('name')} ({source['id']}) to {new_name} ({new_id}){target}, {status}"
            + (" with its ads." if args.deep_copy else "."),
            data={
                "adset_id": new_id,
                "copied_adset_id": new_id,
                "source_adset_id": source["id"],
                "campaign_id": body.get("campaign_id", source.get("campaign_id")),
                "status": status,
                "ad_object_ids": copied.get("ad_object_ids", []),
            },
        )

    changes = [Change(None, "adset", new_name, "status", None, status)]
    return WritePlan(
        summary=f"copy ad set {source.get('name')} ({source['id']}) as {new_name}{target} ({status})",
        ad_account_id=account.id,
        requests=[GraphRequest("POST", f"{source['id']}/copies", body)],
        changes=changes,
        execute=execute,
        currency=account.currency,
    )

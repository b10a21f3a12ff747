"""GET /search for ad targeting: interests, suggestions, validity, places and targeting categories."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from .context import Ctx
from .errors import param_error
from .paging import page_limit
from .targeting import catalog

SEARCH_TYPES = ("adinterest", "adinterestsuggestion", "adinterestvalid", "adgeolocation", "adTargetingCategory")
LOCATION_TYPES = ("country", "region", "city", "zip")
GEO_BUCKETS = {"country": "countries", "region": "regions", "city": "cities", "zip": "zips"}
CATEGORY_CLASSES = (
    "interests",
    "behaviors",
    "demographics",
    "life_events",
    "family_statuses",
    "industries",
    "income",
    "work_positions",
    "education_statuses",
    "relationship_statuses",
)
INTEREST_FIELDS = (
    "id",
    "name",
    "audience_size_lower_bound",
    "audience_size_upper_bound",
    "path",
    "topic",
    "description",
)
CATEGORY_FIELDS = (
    "id",
    "name",
    "type",
    "path",
    "description",
    "audience_size_lower_bound",
    "audience_size_upper_bound",
)


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name or query."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def rank(
    items: list[dict],
    query: str,
    name: Callable[[dict], str] = lambda i: i["name"],
    size: Callable[[dict], int] = lambda i: i.get("audience_size_upper_bound", 0),
) -> list[dict]:
    """Exact matches, then prefix matches (of the name or a word of it), then substring matches; big first."""
    q = fold(query)
    if not q:
        return []
    scored = []
    for item in items:
        text = fold(name(item))
        if text == q:
            tier = 0
        elif text.startswith(q):
            tier = 1
        elif any(word.startswith(q) for word in text.replace("(", " ").split()):
            tier = 2
        elif q in text:
            tier = 3
        else:
            continue
        scored.append((tier, -size(item), text, item))
    scored.sort(key=lambda row: row[:3])
    return [row[3] for row in scored]


def search(ctx: Ctx) -> dict:
    """GET /search?type=…: the targeting searches of the Marketing API."""
    kind = ctx.p.str("type", required=True)
    handler = HANDLERS.get(kind)
    if handler is None:
        raise param_error(f"Param type must be one of {{{', '.join(SEARCH_TYPES)}}}", field="type")
    return {"data": handler(ctx)}


def _pick(item: dict, names: tuple[str, ...]) -> dict:
    return {n: item[n] for n in names if n in item}


def _interests() -> list[dict]:
    return catalog().categories.get("interests", [])


def _name_list(ctx: Ctx) -> list[str]:
    names = ctx.p.list("interest_list")
    if not names:
        raise param_error("The parameter interest_list is required", field="interest_list")
    if not all(isinstance(n, str) for n in names):
        raise param_error("Param interest_list must be an array of strings", field="interest_list")
    return names


def adinterest(ctx: Ctx) -> list[dict]:
    query = ctx.p.str("q", required=True)
    limit = page_limit(ctx.p)
    return [_pick(i, INTEREST_FIELDS) for i in rank(_interests(), query)[:limit]]


def adinterestsuggestion(ctx: Ctx) -> list[dict]:
    names = _name_list(ctx)
    limit = page_limit(ctx.p)
    by_name = {fold(i["name"]): i for i in _interests()}
    given = [by_name[fold(n)] for n in names if fold(n) in by_name]
    excluded = {i["id"] for i in given}
    ordered: list[dict] = []
    for wanted in [lambda i, g=g: i["path"][:-1] == g["path"][:-1] for g in given] + [
        lambda i, g=g: i["topic"] == g["topic"] for g in given
    ]:
        siblings = sorted(
            (i for i in _interests() if wanted(i)), key=lambda i: (-i["audience_size_upper_bound"], i["name"])
        )
        for item in siblings:
            if item["id"] not in excluded:
                excluded.add(item["id"])
                ordered.append(item)
    return [_pick(i, INTEREST_FIELDS) for i in ordered[:limit]]


def adinterestvalid(ctx: Ctx) -> list[dict]:
    by_name = {fold(i["name"]): i for i in _interests()}
    out = []
    for name in _name_list(ctx):
        item = by_name.get(fold(name))
        if item is None:
            out.append({"name": name, "valid": False})
        else:
            out.append(
                {
                    "name": item["name"],
                    "valid": True,
                    "id": item["id"],
                    "audience_size_lower_bound": item["audience_size_lower_bound"],
                    "audience_size_upper_bound": item["audience_size_upper_bound"],
                }
            )
    return out


def _place_view(place: dict) -> dict:
    kind = place["type"]
    view: dict[str, Any] = {
        "key": place["key"],
        "name": place["name"],
        "type": kind,
        "country_code": place["country_code"],
    }
    if kind == "country":
        view.update(supports_region=place["supports_region"], supports_city=place["supports_city"])
        return view
    view["country_name"] = place["country_name"]
    if kind == "region":
        view["region"], view["region_id"] = place["name"], int(place["key"])
    else:
        view["region"], view["region_id"] = place["region"], int(place["region_id"])
    if kind == "zip":
        view.update(primary_city=place["primary_city"], primary_city_id=place["primary_city_id"])
    view.update(supports_region=True, supports_city=True)
    return view


def adgeolocation(ctx: Ctx) -> list[dict]:
    query = ctx.p.str("q", required=True)
    limit = page_limit(ctx.p)
    kinds = ctx.p.list("location_types", ["country", "region", "city", "zip"])
    if not kinds or any(k not in LOCATION_TYPES for k in kinds):
        raise param_error(
            f"Param location_types must be an array of {{{', '.join(LOCATION_TYPES)}}}", field="location_types"
        )
    country = ctx.p.str("country_code")
    geo = catalog().geo
    places = [p for kind in LOCATION_TYPES if kind in kinds for p in geo.get(GEO_BUCKETS[kind], [])]
    if country:
        places = [p for p in places if p["country_code"] == country.upper()]
    order = {kind: n for n, kind in enumerate(LOCATION_TYPES)}
    q = fold(query)
    codes = [p for p in places if p["type"] == "country" and p["key"].casefold() == q]
    ranked = codes + [
        p for p in rank(places, query, size=lambda p: p.get("audience", 0) // 1000 - order[p["type"]]) if p not in codes
    ]
    return [_place_view(p) for p in ranked[:limit]]


def adtargetingcategory(ctx: Ctx) -> list[dict]:
    klass = ctx.p.str("class", required=True)
    if klass not in CATEGORY_CLASSES:
        raise param_error(f"Param class must be one of {{{', '.join(CATEGORY_CLASSES)}}}", field="class")
    cats = catalog().categories
    items = cats[klass] if klass in cats else [i for i in cats.get("demographics", []) if i["type"] == klass]
    query = ctx.p.str("q")
    if query:
        items = rank(items, query)
    limit = ctx.p.int("limit", len(items) or 1, minimum=0) or len(items)
    return [_pick(i, CATEGORY_FIELDS) for i in items[:limit]]


HANDLERS: dict[str, Callable[[Ctx], list[dict]]] = {
    "adinterest": adinterest,
    "adinterestsuggestion": adinterestsuggestion,
    "adinterestvalid": adinterestvalid,
    "adgeolocation": adgeolocation,
    "adTargetingCategory": adtargetingcategory,
}

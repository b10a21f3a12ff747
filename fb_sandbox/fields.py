"""`fields=` parsing and the known field names per node type (taken from the facebook_business SDK)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from .errors import unknown_field


def _sdk_fields(module: str, cls: str) -> frozenset[str]:
    import importlib

    klass = getattr(importlib.import_module(f"facebook_business.adobjects.{module}"), cls)
    return frozenset(v for k, v in vars(klass.Field).items() if not k.startswith("_") and isinstance(v, str))


# node type -> (SDK module, class, extra edge names accepted in fields= and rendered as absent)
NODE_TYPES = {
    "Campaign": ("campaign", "Campaign", {"adsets", "ads", "insights", "copies", "adrules_governed"}),
    "AdAccount": ("adaccount", "AdAccount", {"campaigns", "adsets", "ads", "insights", "users", "adspixels",
                                              "assigned_users", "instagram_accounts"}),
    "User": ("user", "User", {"adaccounts", "businesses", "accounts", "permissions"}),
    "Page": ("page", "Page", {"instagram_accounts", "tasks"}),
    "Business": ("business", "Business", {"owned_ad_accounts", "client_ad_accounts", "business_users"}),
    "BusinessUser": ("businessuser", "BusinessUser", set()),
    "AssignedUser": ("assigneduser", "AssignedUser", {"tasks", "permitted_tasks"}),
    "AdsPixel": ("adspixel", "AdsPixel", {"stats", "events", "customconversions"}),
    "CustomAudience": ("customaudience", "CustomAudience", {"users", "usersreplace", "adaccounts"}),
    "CustomConversion": ("customconversion", "CustomConversion", {"stats"}),
    "SavedAudience": ("savedaudience", "SavedAudience", set()),
    "IGUser": ("iguser", "IGUser", {"username"}),
    "AdSet": ("adset", "AdSet", {"ads", "insights", "copies", "activities", "adcreatives",
                                 "delivery_estimate", "targetingsentencelines"}),
    "AdActivity": ("adactivity", "AdActivity", set()),
    "AdCreative": ("adcreative", "AdCreative", {"previews"}),
    "Ad": ("ad", "Ad", {"previews", "insights", "copies", "adcreatives", "leads", "targetingsentencelines"}),
    "AdPreview": ("adpreview", "AdPreview", set()),
    "AdImage": ("adimage", "AdImage", set()),
    "AdVideo": ("advideo", "AdVideo", {"thumbnails"}),
    "AdsInsights": ("adsinsights", "AdsInsights", set()),
    "AdReportRun": ("adreportrun", "AdReportRun", {"insights"}),
    "AdStudy": ("adstudy", "AdStudy", set()),
    "AdStudyCell": ("adstudycell", "AdStudyCell", {"adaccounts", "adsets", "campaigns"}),
}


@lru_cache(maxsize=None)
def known_fields(node_type: str) -> frozenset[str]:
    module, cls, extra = NODE_TYPES[node_type]
    return _sdk_fields(module, cls) | frozenset(extra) | {"id"}


def parse_fields(value: Any) -> list[str]:
    """Top-level names of a fields= value: "a,b{c,d},e.limit(5)" -> [a, b, e]."""
    if value is None:
        return []
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    text = str(value)
    names, depth, current = [], 0, []
    for ch in text:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            names.append("".join(current))
            current = []
            continue
        if depth == 0 and ch not in "})":
            current.append(ch)
    names.append("".join(current))
    out = []
    for name in names:
        base = name.split(".")[0].strip()
        if base and base not in out:
            out.append(base)
    return out


def select(node_type: str, requested: list[str], default: list[str],
           render: Callable[[str], Any]) -> dict:
    """Build a node answer: `id` always first, unknown names refused, absent values left out."""
    names = requested or default
    allowed = known_fields(node_type)
    for name in names:
        if name not in allowed:
            raise unknown_field(name, node_type)
    out: dict[str, Any] = {}
    for name in names:
        value = render(name)
        if value is not None:
            out[name] = value
    if "id" not in out:
        out["id"] = render("id")
    return out

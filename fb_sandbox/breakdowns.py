"""Insights breakdowns, action breakdowns and attribution windows: what Meta's spec lists, which combinations Meta
documents, and the values the sandbox splits delivery into (docs/insights_contract.md "Breakdowns").

Sources (each rule below names the one it comes from):
- SPEC: the facebook_business SDK (26.x), generated from Meta's API specs: `AdsInsights.Breakdowns`,
  `.ActionBreakdowns`, `.ActionAttributionWindows`. Every value there is accepted; nothing is typed by hand.
- BREAKDOWNS_DOC: "Insights API Breakdowns" https://developers.facebook.com/docs/marketing-api/insights/breakdowns
  (read 2026-12-06 in its v25.0 copy of 2026-03-30, and the English page updated May 8, 2026): the permutation
  table, unavailable fields, hourly limits, frequency_value with reach only, region/dma metric limits, dynamic
  creative asset metrics, place_page_id not at account level.
- ERROR_CODES_DOC: "Ads Insights API Error Codes" (updated May 21, 2026)
  https://developers.facebook.com/documentation/ads-commerce/marketing-api/insights/error-codes : 2/1504041
  "Invalid Breakdowns" (sync and async) when no data is available for the requested metrics and breakdowns.
- METRIC_AVAILABILITY: "Ads Insights API Metric Availability Updates" (Oct 16, 2025)
  https://developers.facebook.com/blog/post/2025/10/16/ads-insights-api-metric-availability-updates/ :
  7d_view and 28d_view return no data from 2026-01-12, all versions.
Unverified (no Meta source found; third-party reports only): the text of the "Current combination of data
breakdown columns (...) is invalid" error (code 100, widely quoted by other clients); the values Meta uses for
frequency_value buckets, action_video_sound/type and the default value of breakdowns the sandbox has no data for.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from functools import lru_cache

from .rules import rule


def _enum(cls_name: str) -> tuple[str, ...]:
    from facebook_business.adobjects.adsinsights import AdsInsights

    cls = getattr(AdsInsights, cls_name)
    return tuple(sorted(v for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, str)))


BREAKDOWNS = _enum("Breakdowns")  # SPEC
ACTION_BREAKDOWNS = _enum("ActionBreakdowns")  # SPEC
ATTRIBUTION_WINDOWS = _enum("ActionAttributionWindows")  # SPEC

BREAKDOWNS_DOC = "https://developers.facebook.com/docs/marketing-api/insights/breakdowns"
ERROR_CODES_DOC = "https://developers.facebook.com/documentation/ads-commerce/marketing-api/insights/error-codes"
METRIC_AVAILABILITY = (
    "https://developers.facebook.com/blog/post/2025/10/16/ads-insights-api-metric-availability-updates/"
)

# ---- combination rules (BREAKDOWNS_DOC "Combining breakdowns")

rule(
    "insights.breakdowns_from_spec",
    "Every breakdown, action breakdown and attribution window the spec lists is "
    "accepted and served, rows summing to the unbroken totals",
    source="facebook_business AdsInsights.Breakdowns, .ActionBreakdowns, .ActionAttributionWindows (SDK 26.x)",
    since="v26.0",
    verified=True,
    area="insights",
)
rule(
    "insights.permutations",
    "Breakdown columns combine only as the documented permutation table lists (code 100 "
    "'Current combination of data breakdown columns (…) is invalid': the text is unverified)",
    source=BREAKDOWNS_DOC,
    since="v25.0",
    verified=True,
    area="insights",
)
rule(
    "insights.invalid_breakdowns",
    "Metrics a breakdown cannot give (video fields with hourly, frequency_value "
    "without reach, region/dma limits) answer 2/1504041 Invalid Breakdowns",
    source=f"{BREAKDOWNS_DOC} ; {ERROR_CODES_DOC}",
    since="v25.0",
    verified=True,
    area="insights",
)
rule(
    "insights.view_windows_gone",
    "action_attribution_windows 7d_view and 28d_view return no data",
    source=METRIC_AVAILABILITY,
    since="2026-01-12 (all versions)",
    verified=True,
    area="insights",
)
rule(
    "insights.frequency_buckets",
    "frequency_value buckets, action_video_sound/type labels and the default value of a "
    "breakdown without data are the sandbox's own",
    source="no Meta source found (modelling choice)",
    since="v25.0",
    verified=False,
    area="insights",
)
CAROUSEL = "action_carousel_card"  # the table writes "action_carousel_card_id / _name"
JOINABLE = frozenset({"action_type", "action_target_id", "action_destination"})  # what "*" entries may add
PERMUTATIONS: tuple[tuple[frozenset[str], bool], ...] = tuple(
    (frozenset(cols.split(",")), star)
    for cols, star in (
        ("action_converted_product_id", False),
        ("action_type", True),
        ("action_type,action_converted_product_id", False),
        ("action_target_id", True),
        ("action_device", True),
        ("action_device,impression_device", True),
        ("action_device,publisher_platform", True),
        ("action_device,publisher_platform,impression_device", True),
        ("action_device,publisher_platform,platform_position", True),
        ("action_device,publisher_platform,platform_position,impression_device", True),
        ("action_reaction", False),
        ("action_type,action_reaction", False),
        ("age", True),
        ("gender", True),
        ("age,gender", True),
        ("app_id,skan_conversion_id", False),
        ("country", True),
        ("region", True),
        ("publisher_platform", True),
        ("publisher_platform,impression_device", True),
        ("publisher_platform,platform_position", True),
        ("publisher_platform,platform_position,impression_device", True),
        ("product_id", True),
        ("hourly_stats_aggregated_by_advertiser_time_zone", True),
        ("hourly_stats_aggregated_by_audience_time_zone", True),
        (CAROUSEL, False),
        (f"{CAROUSEL},impression_device", False),
        (f"{CAROUSEL},country", False),
        (f"{CAROUSEL},age", False),
        (f"{CAROUSEL},gender", False),
        (f"{CAROUSEL},age,gender", False),
    )
)
TABLE_COLUMNS = frozenset().union(*(cols for cols, _ in PERMUTATIONS))
ONLY_UNSTARRED = frozenset({CAROUSEL, "action_reaction", "action_converted_product_id", "app_id", "skan_conversion_id"})
HOURLY = ("hourly_stats_aggregated_by_advertiser_time_zone", "hourly_stats_aggregated_by_audience_time_zone")
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
ASSET_METRICS = frozenset({"impressions", "clicks", "spend", "reach", "actions", "action_values"})
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
# BREAKDOWNS_DOC "Restrictions for off-Meta action metrics" (since April 27, 2021): with a Type 1 breakdown the
# off-Meta (pixel) action metrics are not returned; on-Meta ones (link clicks, engagement, leads on forms) are.
TYPE1_BREAKDOWNS = frozenset(
    {
        "region",
        "dma",
        *("hourly_stats_aggregated_by_audience_time_zone", "hourly_stats_aggregated_by_advertiser_time_zone"),
    }
)
OFF_META_ACTIONS = frozenset(
    {
        "landing_page_view",
        "add_to_cart",
        "initiate_checkout",
        "purchase",
        "offsite_conversion.fb_pixel_purchase",
        "omni_purchase",
    }
)
IDENTITY_FIELDS = frozenset(
    {
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
        "buying_type",
        "attribution_setting",
        "created_time",
        "updated_time",
    }
)


def columns(breakdowns, action_breakdowns) -> frozenset[str]:
    """The request's breakdown columns as the permutation table names them."""
    return frozenset(
        CAROUSEL if c in ("action_carousel_card_id", "action_carousel_card_name") else c
        for c in (*breakdowns, *action_breakdowns)
    )


def combination(breakdowns, action_breakdowns) -> str:
    """'documented' (in the table), 'single' (one breakdown alone: the doc's generic list), 'unverified' (a mix
    the table says nothing about: served with a note), or 'invalid' (columns the table only combines otherwise).
    With no action_breakdowns given, Meta adds action_type: either reading may match (the table's exact entries
    such as app_id + skan_conversion_id are asked without action fields)."""
    if not action_breakdowns:
        found = {_classify(breakdowns, ()), _classify(breakdowns, ("action_type",))}
        return next(k for k in ("documented", "single", "unverified", "invalid") if k in found)
    return _classify(breakdowns, action_breakdowns)


def _classify(breakdowns, action_breakdowns) -> str:
    cols = columns(breakdowns, action_breakdowns)
    for entry, star in PERMUTATIONS:
        if cols == entry or (star and entry <= cols and cols - entry <= JOINABLE):
            return "documented"
    core = cols - JOINABLE
    if len(core) <= 1 and not core & ONLY_UNSTARRED:
        return "single"
    if core <= TABLE_COLUMNS:
        return "invalid"
    return "unverified"


def field_conflict(fields, breakdowns, level: str) -> str | None:
    """Why these fields cannot be served with these breakdowns (BREAKDOWNS_DOC), or None."""
    fields, chosen = set(fields), set(breakdowns)
    if chosen and (bad := sorted(fields & set(NO_BREAKDOWN_FIELDS))):
        return f"{bad[0]} cannot be requested with any breakdown"
    if chosen & set(HOURLY) and (bad := sorted(f for f in fields if f.startswith("video_"))):
        return f"{bad[0]} cannot be requested with an hourly breakdown"
    if "frequency_value" in chosen and "reach" not in fields:
        return "frequency_value is used with reach only: add reach to fields"
    if "region" in chosen and (bad := sorted(fields & set(REGION_UNSUPPORTED))):
        return f"{bad[0]} does not support the region breakdown"
    if "dma" in chosen and (bad := sorted(fields & set(DMA_UNSUPPORTED))):
        return f"{bad[0]} is not available with the dma breakdown"
    if "place_page_id" in chosen and level == "account":
        return "place_page_id cannot be queried with account-level insights"
    if chosen & set(ASSET_BREAKDOWNS):
        bad = sorted(f for f in fields if f not in ASSET_METRICS and f not in IDENTITY_FIELDS and f not in chosen)
        if bad:
            return f"{bad[0]} is not available with dynamic creative asset breakdowns (only {', '.join(sorted(ASSET_METRICS))})"
    for name, needed in ONLY_WITH_FIELD.items():
        if name in chosen and needed not in fields:
            return f"the {name} breakdown is only supported with the {needed} field"
    return None


# ---- values: what the sandbox splits each ad-day into

TEMPLATE = ("age", "gender", "country", "publisher_platform", "platform_position", "impression_device")
DMAS = (
    ("New York", 6.4),
    ("Los Angeles", 4.9),
    ("Chicago", 2.9),
    ("Philadelphia", 2.5),
    ("Dallas-Ft. Worth", 2.5),
    ("Houston", 2.2),
    ("Atlanta", 2.2),
    ("Washington, DC (Hagerstown, MD)", 2.2),
    ("Boston (Manchester)", 2.1),
    ("San Francisco-Oakland-San Jose", 2.1),
)  # Nielsen DMA names, weights ~ % of US TV homes (2025-26)
FREQUENCY_BUCKETS = ("1", "2", "3", "4", "5", "6-10", "11-20", "21+")  # unverified bucket labels
REACTIONS = (("like", 62), ("love", 21), ("haha", 7), ("wow", 5), ("sad", 3), ("angry", 2))
VIDEO_SOUND = (("sound_on", 35), ("sound_off", 65))  # unverified labels
VIDEO_TYPE = (("auto_play", 80), ("click_to_play", 20))  # unverified labels
REACTION_SHARE = 0.35  # post reactions as a share of post engagement (the sandbox has no reaction counts)
PIXEL_TYPES = frozenset(
    {"add_to_cart", "initiate_checkout", "purchase", "offsite_conversion.fb_pixel_purchase", "landing_page_view"}
)


def u(*parts) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hour_label(h: int) -> str:
    return f"{h:02d}:00:00 - {h:02d}:59:59"


def default_value(name: str) -> str:
    """The one value of a breakdown the sandbox has no data model for (unverified)."""
    return "0" if name.endswith("_id") or name.endswith("_ids") else "unknown"


@lru_cache(maxsize=64)
def regions_of(country: str) -> tuple[tuple[str, float], ...]:
    """The country's largest regions in the targeting geo catalog (fb_sandbox/data/targeting_geo.json)."""
    from .targeting import catalog

    try:
        places = [p for p in catalog().geo.get("regions", []) if p.get("country_code") == country]
    except Exception:  # noqa: BLE001 - no catalog: one unknown region
        places = []
    places.sort(key=lambda p: -(p.get("audience") or 0))
    return tuple((p["name"], float(p.get("audience") or 1)) for p in places[:8]) or (("Unknown", 1.0),)


class AdContext:
    """What an ad's breakdown values come from: its creative, page, pixel and seed."""

    def __init__(self, store, ad_id: str, seed: int) -> None:
        get = store.get if store is not None else (lambda _id: None)  # no store: the summary row's "no ad"
        ad = get(ad_id) or {}
        adset = get(ad.get("adset_id", "")) or {}
        creative = get(((ad.get("creative") or {}).get("id")) or "") or {}
        self.ad_id, self.seed = ad_id, seed
        self.creative = dict(creative)
        self.creative_id = creative.get("id") if creative else None
        self.page_id = creative.get("_page_id") or (creative.get("object_story_spec") or {}).get("page_id")
        self.pixel_id = (adset.get("promoted_object") or {}).get("pixel_id")
        self.cards = list(creative.get("_cards") or [])
        self.kind = creative.get("_kind") or ""
        spec = creative.get("object_story_spec") or {}
        self.story = spec.get("link_data") or spec.get("video_data") or spec.get("photo_data") or {}

    def jitter(self, name: str, weights: list[float]) -> list[float]:
        """Weights perturbed ±20 % per ad and seed: deterministic, plausible, never zero."""
        return [w * (0.8 + 0.4 * u(self.seed, self.ad_id, name, i)) for i, w in enumerate(weights)]

    def media(self, name: str) -> str:
        story, kind = self.story, self.kind
        if name == "media_type":
            return {"video": "video", "carousel": "carousel", "photo": "image"}.get(kind, "image")
        if name == "media_format":
            return {"video": "VIDEO", "carousel": "CAROUSEL"}.get(kind, "IMAGE")
        if name == "media_id":
            return str(story.get("video_id") or story.get("image_hash") or self.creative_id or "0")
        if name == "media_asset_url":
            return str(
                story.get("picture") or story.get("image_url") or self.creative.get("thumbnail_url") or "unknown"
            )
        if name == "media_destination_url":
            return str(
                story.get("link") or (story.get("call_to_action") or {}).get("value", {}).get("link") or "unknown"
            )
        if name == "media_text_content":
            return str(story.get("message") or self.creative.get("body") or "unknown")
        if name == "media_creator":
            return str(self.page_id or "0")
        if name == "media_origin_url":
            return f"https://www.facebook.com/{self.page_id}" if self.page_id else "unknown"
        return default_value(name)

    def asset(self, name: str) -> str:
        """A dynamic creative asset breakdown's value (JSON, rendered as an object): the creative's own asset."""
        story, key = self.story, name.removesuffix("_asset")
        text = {
            "body": story.get("message"),
            "title": story.get("name") or story.get("title"),
            "description": story.get("description"),
            "link_url": story.get("link"),
            "call_to_action": (story.get("call_to_action") or {}).get("type"),
            "ad_format": {"video": "SINGLE_VIDEO", "carousel": "CAROUSEL"}.get(self.kind, "SINGLE_IMAGE"),
        }
        asset_id = str(int(u(self.seed, self.creative_id, name) * 10**15) + 10**15)
        if key == "image":
            value = {"hash": story.get("image_hash") or "", "url": story.get("picture") or "", "id": asset_id}
        elif key == "video":
            value = {"video_id": str(story.get("video_id") or "0"), "id": asset_id}
        elif key == "link_url":
            value = {"website_url": text["link_url"] or "", "id": asset_id}
        elif key in ("call_to_action", "ad_format"):
            value = {"name": text[key] or "", "id": asset_id}
        else:
            value = {"text": text[key] or "", "id": asset_id}
        return json.dumps(value, sort_keys=True)

    def card(self, index: int) -> tuple[str, str]:
        card = self.cards[index]
        card_id = str(int(u(self.seed, self.creative_id, "card", index) * 10**15) + 10**15)
        return card_id, str(card.get("name") or card.get("description") or f"Card {index + 1}")


def split_values(name: str, ad: AdContext, template: dict[str, str], frequency: float) -> list[tuple[str, float]]:
    """One breakdown the delivery template does not hold, for one ad-day cell: (value, weight) pairs."""
    if name == "region":
        regions = regions_of(template.get("country") or "US")
        return list(zip([r for r, _ in regions], ad.jitter(name, [w for _, w in regions])))
    if name in ("dma", "comscore_market"):
        if (template.get("country") or "US") != "US":
            return [("Unknown", 1.0)]
        return list(zip([d for d, _ in DMAS], ad.jitter(name, [w for _, w in DMAS])))
    if name in HOURLY or name == "impression_view_time_advertiser_hour_v2":
        from .delivery import HOURLY as curve

        return [(hour_label(h), w) for h, w in enumerate(ad.jitter(name, list(curve)))]
    if name == "frequency_value":
        q = 1 / max(frequency, 1.0)  # people seeing the ad k times ~ geometric with mean = frequency
        people = [(1 - q) ** (k - 1) * q for k in range(1, 26)]
        groups = [
            sum(people[0:1]),
            sum(people[1:2]),
            sum(people[2:3]),
            sum(people[3:4]),
            sum(people[4:5]),
            sum(people[5:10]),
            sum(people[10:20]),
            sum(people[20:]) + 1e-9,
        ]
        return list(zip(FREQUENCY_BUCKETS, groups))
    if name.startswith("media_"):
        return [(ad.media(name), 1.0)]
    if name in ASSET_BREAKDOWNS:
        return [(ad.asset(name), 1.0)]
    if name == "place_page_id":
        return [(str(ad.page_id or "0"), 1.0)]
    return [(default_value(name), 1.0)]


# The action breakdowns: per ad and action type, (action_type shown, share of the count, [(value, weight)]);
# None leaves that action type out under this breakdown.
ACTION_DESTINATIONS = {
    "link_click": "website",
    "landing_page_view": "website",
    "post_engagement": "post",
    "video_view": "post",
    "lead": "lead_form",
    "add_to_cart": "website",
    "initiate_checkout": "website",
    "purchase": "website",
    "offsite_conversion.fb_pixel_purchase": "website",
}


def action_values(name: str, ad: AdContext, action_type: str) -> tuple[str, float, list[tuple[str, float]]] | None:
    if name == "action_destination":
        return action_type, 1.0, [(ACTION_DESTINATIONS.get(action_type, "website"), 1.0)]
    if name == "action_target_id":
        target = ad.pixel_id if action_type in PIXEL_TYPES and ad.pixel_id else ad.page_id
        return action_type, 1.0, [(str(target or "0"), 1.0)]
    if name in ("action_carousel_card_id", "action_carousel_card_name"):
        if not ad.cards or action_type not in ("link_click", "landing_page_view"):
            return None
        weights = ad.jitter("cards", [1 / (i + 1) for i in range(len(ad.cards))])
        index = 0 if name.endswith("_id") else 1
        return action_type, 1.0, [(ad.card(i)[index], w) for i, w in enumerate(weights)]
    if name == "action_reaction":
        if action_type != "post_engagement":
            return None
        return (
            "post_reaction",
            REACTION_SHARE,
            list(zip([r for r, _ in REACTIONS], ad.jitter(name, [w for _, w in REACTIONS]))),
        )
    if name in ("action_video_sound", "action_video_type"):
        if action_type != "video_view":
            return None
        pairs = VIDEO_SOUND if name == "action_video_sound" else VIDEO_TYPE
        return action_type, 1.0, list(zip([p for p, _ in pairs], ad.jitter(name, [w for _, w in pairs])))
    if name == "action_canvas_component_name":
        return None  # the sandbox serves no Instant Experience (canvas) ads
    if name == "conversion_destination":
        return (
            action_type,
            1.0,
            [("website" if action_type in PIXEL_TYPES or action_type == "link_click" else "on_ad", 1.0)],
        )
    return action_type, 1.0, [(default_value(name), 1.0)]


# ---- attribution windows (METRIC_AVAILABILITY; BREAKDOWNS_DOC "Action metrics")

VIEW_WINDOWS_END = date(2026, 1, 12)  # 7d_view and 28d_view return no data from this day, all versions
SERVED_WINDOWS = ("1d_click", "7d_click", "28d_click", "1d_view", "1d_ev", "7d_view", "28d_view")


def window_counts(count: int, seed_parts: tuple, windows, today: date) -> dict[str, int]:
    """Per-window counts of an action whose default-attribution count (7-day click + 1-day view, the default
    attribution setting) is `count`: 1d_click <= 7d_click <= 28d_click, 7d_click + 1d_view = count, 1d_ev <= 1d_view;
    deterministic for the parts. Windows the sandbox has no data for (and 7d_view/28d_view from 2026-01-12) are
    left out."""
    view = int(count * (0.08 + 0.12 * u(*seed_parts, "view")))
    click7 = count - view
    out = {
        "1d_click": int(click7 * (0.6 + 0.25 * u(*seed_parts, "1d"))),
        "7d_click": click7,
        "28d_click": click7 + int(click7 * (0.05 + 0.15 * u(*seed_parts, "28d"))),
        "1d_view": view,
        "1d_ev": int(view * (0.2 + 0.3 * u(*seed_parts, "ev"))),
    }
    if today < VIEW_WINDOWS_END:
        out["7d_view"] = view + int(view * 0.6)
        out["28d_view"] = out["7d_view"] + int(view * 0.4)
    return {w: out[w] for w in windows if w in out}

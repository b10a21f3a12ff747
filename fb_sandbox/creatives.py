"""Ad creatives: create, read, list, rename, delete, refusing what Facebook refuses.

Rules and codes from docs/creative_rules.md (C1–C7, M2, M4), enums from the SDK's AdCreative; written from
that table, never from the product's client. Images and videos are the objects fb_sandbox/media.py stores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from facebook_business.adobjects.adcreative import AdCreative
from facebook_business.adobjects.adcreativefeaturesspec import AdCreativeFeaturesSpec

from . import campaigns, media
from .context import Ctx
from .errors import GraphError, param_error
from .fields import parse_fields, select
from .paging import paginate
from .params import Params
from .store import ID_BASES, Obj

_enum = campaigns._enum
CTA_TYPES = _enum(AdCreative.CallToActionType)
# Call-to-action types that do not open a web page (calls, messages, page actions): no link needed.
NON_LINK_CTAS = {
    "CALL",
    "CALL_ME",
    "CALL_NOW",
    "AUDIO_CALL",
    "VIDEO_CALL",
    "MESSAGE_PAGE",
    "WHATSAPP_MESSAGE",
    "START_A_CHAT",
    "CHAT_WITH_US",
    "CHAT_NOW",
    "BUY_VIA_MESSAGE",
    "ASK_US",
    "ASK_A_QUESTION",
    "NO_BUTTON",
    "LIKE_PAGE",
    "FOLLOW_PAGE",
    "FOLLOW_USER",
    "SEND_UPDATES",
    "GET_DIRECTIONS",
    "INSTALL_APP",
    "INSTALL_MOBILE_APP",
    "USE_APP",
    "USE_MOBILE_APP",
    "PLAY_GAME",
    "MOBILE_DOWNLOAD",
    "OPEN_INSTANT_APP",
    "VIDEO_ANNOTATION",
    "SAY_THANKS",
    "JOIN_CHANNEL",
    "VIEW_CHANNEL",
}
STORY_KEYS = {"page_id", "instagram_user_id", "instagram_actor_id", "link_data", "video_data", "photo_data"}
ENROLL_STATUSES = ["OPT_IN", "OPT_OUT"]
# C4: Advantage+ creative features, each {"enroll_status": OPT_IN|OPT_OUT}. The keys are Meta's spec (the SDK's
# AdCreativeFeaturesSpec, generated from it: image_templates, image_touchups, text_optimizations, inline_comment,
# video_auto_crop, image_animation and video_filtering (OCC 2026-06-28), ...), never a hand list.
# The Standard Enhancements bundle is deprecated from v22.0 (all later versions): "Marketing API v22.0 Impacts to
# Advantage+ Creative Enhancements" https://developers.facebook.com/blog/post/2025/01/17/marketing-api-v22-impacts-to-advantage-plus-creative-enhancements/
# and "Standard Enhancements for Advantage+ Creative" https://developers.facebook.com/documentation/ads-commerce/marketing-api/advantage-catalog-ads/standard-enhancements
# Sending it on POST is refused; GET may still show it (unverified: third-party reports of subcode 3858504
# "Including standard enhancements field in creative has been deprecated",
# https://github.com/pipeboard-co/meta-ads-mcp/pull/102). The sandbox serves v25-v27 only, all after v22.
DEPRECATED_FEATURES = frozenset({"standard_enhancements"})
CREATIVE_FEATURES = (
    frozenset(v for k, v in vars(AdCreativeFeaturesSpec.Field).items() if not k.startswith("_") and isinstance(v, str))
    - DEPRECATED_FEATURES
)
MAX_CARDS, MIN_CARDS = 10, 2
MAX_NAME = 400
MAX_LONG_TEXT = 5000  # message, caption: sandbox limit (Facebook truncates long primary text on display)
MAX_SHORT_TEXT = 255  # headline (name), description, title
MAX_URL = 2048
DEFAULT_FIELDS = ["id"]
POST_ID_BASE = 100000000000000  # ids of the unpublished page posts Facebook makes for creatives


def _rule(subcode: int | None, title: str, msg: str, blame: str) -> GraphError:
    return GraphError("Invalid parameter", 100, subcode=subcode, user_title=title, user_msg=msg, blame=blame)


def _bad(path: str, what: str, blame: str = "object_story_spec") -> GraphError:
    return param_error(f"Param {path} {what}", field=blame)


# ---- media of the ad account (stored by media.py)


def find_image(ctx: Ctx, account_id: str, image_hash: Any) -> Obj | None:
    if not isinstance(image_hash, str) or not re.fullmatch(r"[0-9A-Za-z_\-]{1,128}", image_hash):
        return None
    return media.find_image(ctx, account_id, image_hash)


def find_video(ctx: Ctx, account_id: str, video_id: Any) -> Obj | None:
    if not isinstance(video_id, (str, int)) or isinstance(video_id, bool) or not str(video_id).isdigit():
        return None
    obj = ctx.store.get(str(video_id))
    if obj is None or obj.type != "video" or obj.account_id != account_id:
        return None
    return obj


def video_status(ctx: Ctx, video: Obj) -> str:
    return media.video_state(ctx, video)[0]


def _relative(ctx: Ctx, url: str | None) -> str | None:
    """Sandbox media URLs are stored without host and port, so they survive a restart on another port."""
    if url and ctx.call.base_url and url.startswith(ctx.call.base_url + "/"):
        return url[len(ctx.call.base_url) :]
    return url


def absolute(ctx: Ctx, url: str | None) -> str | None:
    return ctx.call.base_url + url if isinstance(url, str) and url.startswith("/") else url


def image_url(ctx: Ctx, image: Obj) -> str:
    return f"/__sandbox/media/images/{image['hash']}.{image.get('_ext', 'png')}"


def video_picture(ctx: Ctx, video: Obj) -> str | None:
    return _relative(ctx, media.render_video(ctx, video, ["picture"]).get("picture"))


# ---- rule checks on one spec


def is_absolute_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_URL or any(c.isspace() for c in value):
        return False
    try:
        parts = urlparse(value)
    except ValueError:
        return False
    try:
        host = parts.hostname or ""
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and ("." in host.strip(".") or host == "localhost")


def _link_rule(value: Any, path: str) -> str:
    if not is_absolute_url(value):
        raise _rule(
            1443049,
            "Invalid Link",
            f"The link {path} must be an absolute http:// or https:// URL (for example https://example.com/"
            "product). Enter a complete web address.",
            "object_story_spec",
        )
    return value


def _text(d: dict, key: str, path: str, limit: int) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{path}[{key}]", "must be a string")
    if len(value) > limit:
        raise _bad(f"{path}[{key}]", f"must be at most {limit} characters long")
    return value


def _dict(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _bad(path, "must be a JSON object")
    return value


def _image_rule(ctx: Ctx, account_id: str, value: Any) -> Obj:
    image = find_image(ctx, account_id, value)
    if image is None:
        shown = value if isinstance(value, str) and len(value) <= 64 else "(invalid)"
        raise _rule(
            1487242,
            "Image Not Found",
            f"The image with hash {shown} isn't an image of the ad account {account_id}. Upload it to this "
            "ad account (POST /act_x/adimages) and use the hash it returns.",
            "image_hash",
        )
    return image


def _video_rule(ctx: Ctx, account_id: str, value: Any) -> Obj:
    video = find_video(ctx, account_id, value)
    if video is None:
        raise _rule(
            1885252,
            "Video Not Found",
            f"The video {value if isinstance(value, (str, int)) else ''} isn't a video of the ad account "
            f"{account_id}. Upload it to this ad account first (POST /act_x/advideos).",
            "video_id",
        )
    status = video_status(ctx, video)
    if status != "ready":
        raise _rule(
            1885252,
            "Video Not Ready",
            f"The video {video['id']} is still {status} (its processing must finish before it can be used in "
            "an ad). Check GET /{video_id}?fields=status and try again when video_status is ready.",
            "video_id",
        )
    return video


def _cta_rule(value: Any, path: str, fallback_link: str | None) -> dict:
    if not isinstance(value, dict):
        raise param_error(f"Param {path} must be a JSON object with a type", field="call_to_action")
    cta_type = value.get("type")
    if cta_type not in CTA_TYPES:
        raise param_error(
            f"Param call_to_action[type] must be one of {{{', '.join(CTA_TYPES)}}}", field="call_to_action"
        )
    inner = value.get("value", {})
    if not isinstance(inner, dict):
        raise param_error(f"Param {path}[value] must be a JSON object", field="call_to_action")
    link = inner.get("link")
    if link is not None:
        _link_rule(link, f"{path}[value][link]")
    elif cta_type not in NON_LINK_CTAS and not fallback_link:
        raise param_error(
            f"The call to action {cta_type} needs a link: set {path}[value][link]", field="call_to_action"
        )
    out = {"type": cta_type}
    if inner:
        out["value"] = inner
    return out


def _card(ctx: Ctx, account_id: str, card: Any, i: int, assets: dict) -> dict:
    path = f"object_story_spec[link_data][child_attachments][{i}]"
    if not isinstance(card, dict):
        raise _carousel_error(f"Card {i + 1} must be an object with a link and an image_hash, picture or video_id.")
    if "link" not in card:
        raise _carousel_error(f"Card {i + 1} has no link. Each carousel card needs a link and an image or video.")
    _link_rule(card["link"], f"{path}[link]")
    for key in ("name", "description"):
        _text(card, key, path, MAX_SHORT_TEXT)
    if not any(card.get(k) for k in ("image_hash", "picture", "video_id")):
        raise _carousel_error(f"Card {i + 1} has no image or video: set image_hash, picture or video_id.")
    out = dict(card)
    if card.get("image_hash"):
        image = _image_rule(ctx, account_id, card["image_hash"])
        out["_image_url"] = image_url(ctx, image)
    elif card.get("picture"):
        out["_image_url"] = _link_rule(card["picture"], f"{path}[picture]")
    if card.get("video_id"):
        video = _video_rule(ctx, account_id, card["video_id"])
        out["video_id"] = str(card["video_id"])
        out.setdefault("_image_url", video_picture(ctx, video))
    if "call_to_action" in card:
        out["call_to_action"] = _cta_rule(card["call_to_action"], f"{path}[call_to_action]", card["link"])
    assets.setdefault("image_url", out.get("_image_url"))
    return out


def _carousel_error(msg: str) -> GraphError:
    return _rule(1443050, "Invalid Carousel", msg, "object_story_spec")


def _link_data(ctx: Ctx, account_id: str, d: Any, assets: dict) -> dict:
    path = "object_story_spec[link_data]"
    d = _dict(d, path)
    if "link" not in d:
        raise _rule(
            1443049,
            "Link Required",
            "A link ad needs object_story_spec.link_data.link: the web address people go to when they click.",
            "object_story_spec",
        )
    _link_rule(d["link"], f"{path}[link]")
    _text(d, "message", path, MAX_LONG_TEXT)
    _text(d, "caption", path, MAX_LONG_TEXT)
    for key in ("name", "description"):
        _text(d, key, path, MAX_SHORT_TEXT)
    out = dict(d)
    if d.get("image_hash") is not None:
        image = _image_rule(ctx, account_id, d["image_hash"])
        assets.update(image_hash=d["image_hash"], image_url=image_url(ctx, image))
    elif d.get("picture") is not None:
        assets["image_url"] = _link_rule(d["picture"], f"{path}[picture]")
    if "child_attachments" in d:
        cards = d["child_attachments"]
        if not isinstance(cards, list) or not MIN_CARDS <= len(cards) <= MAX_CARDS:
            count = len(cards) if isinstance(cards, list) else 0
            raise _carousel_error(
                f"A carousel needs {MIN_CARDS} to {MAX_CARDS} cards "
                f"(link_data.child_attachments); this one has {count}."
            )
        out["child_attachments"] = [_card(ctx, account_id, card, i, assets) for i, card in enumerate(cards)]
    if "call_to_action" in d:
        out["call_to_action"] = _cta_rule(d["call_to_action"], "call_to_action", d["link"])
    return out


def _video_data(ctx: Ctx, account_id: str, d: Any, assets: dict) -> dict:
    path = "object_story_spec[video_data]"
    d = _dict(d, path)
    for key, limit in (("message", MAX_LONG_TEXT), ("title", MAX_SHORT_TEXT), ("link_description", MAX_SHORT_TEXT)):
        _text(d, key, path, limit)
    if not d.get("video_id"):
        raise _rule(1885252, "Video Required", "A video ad needs object_story_spec.video_data.video_id.", "video_id")
    out = dict(d)
    if not (d.get("image_hash") or d.get("image_url")):
        raise _rule(
            1443051,
            "Video Thumbnail Required",
            "A video ad needs a thumbnail: set video_data.image_hash (an image of this ad account) or "
            "video_data.image_url.",
            "object_story_spec",
        )
    if d.get("image_hash"):
        image = _image_rule(ctx, account_id, d["image_hash"])
        assets.update(image_hash=d["image_hash"], thumbnail=image_url(ctx, image))
    else:
        assets["thumbnail"] = _link_rule(d["image_url"], f"{path}[image_url]")
    video = _video_rule(ctx, account_id, d["video_id"])
    out["video_id"] = assets["video_id"] = str(video["id"])
    if "call_to_action" in d:
        out["call_to_action"] = _cta_rule(d["call_to_action"], "call_to_action", None)
    return out


def _photo_data(ctx: Ctx, account_id: str, d: Any, assets: dict) -> dict:
    path = "object_story_spec[photo_data]"
    d = _dict(d, path)
    _text(d, "caption", path, MAX_LONG_TEXT)
    out = dict(d)
    if d.get("image_hash"):
        image = _image_rule(ctx, account_id, d["image_hash"])
        assets.update(image_hash=d["image_hash"], image_url=image_url(ctx, image))
    elif d.get("url"):
        assets["image_url"] = _link_rule(d["url"], f"{path}[url]")
    else:
        raise _rule(
            1487242, "Image Required", "A photo ad needs object_story_spec.photo_data.image_hash.", "image_hash"
        )
    return out


def load_page(ctx: Ctx, page_id: Any) -> Obj:
    """C1: a page the token's user can advertise for."""
    page = ctx.store.get(str(page_id)) if isinstance(page_id, (str, int)) and not isinstance(page_id, bool) else None
    if (
        page is None
        or page.type != "page"
        or ctx.principal.user_id not in page.get("_user_ids", [])
        or "ADVERTISE" not in page.get("tasks", ["ADVERTISE"])
    ):
        shown = page_id if isinstance(page_id, (str, int)) and len(str(page_id)) <= 40 else ""
        raise _rule(
            1443048,
            "Page Required",
            f"The creative needs object_story_spec.page_id: a Facebook Page you can advertise for"
            f"{' (' + str(shown) + ' is not one)' if shown else ''}. List yours with GET /me/accounts.",
            "object_story_spec",
        )
    return page


def _instagram_rule(ctx: Ctx, account_id: str, page: Obj, value: Any) -> str:
    ig = ctx.store.get(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    connected = (
        ig is not None
        and ig.type == "instagram"
        and (page.get("_instagram_id") == ig["id"] or account_id in ig.get("_account_ids", []))
    )
    if ig is None or not connected:
        raise _rule(
            2446886,
            "Instagram Account Not Connected",
            "The Instagram account in instagram_user_id isn't connected to this Page or ad account. Use the "
            "Page's instagram_business_account or one listed by GET /act_x/instagram_accounts.",
            "object_story_spec",
        )
    return ig["id"]


def dof_rule(spec: Any) -> dict:
    """C4: degrees_of_freedom_spec is optional; its creative_features_spec holds individual Advantage+ creative
    features (keys from the SDK's AdCreativeFeaturesSpec) each with enroll_status OPT_IN or OPT_OUT; the deprecated
    standard_enhancements bundle is refused (sources next to CREATIVE_FEATURES)."""
    if not isinstance(spec, dict):
        raise param_error("Param degrees_of_freedom_spec must be a JSON object", field="degrees_of_freedom_spec")
    features = spec.get("creative_features_spec")
    if features is None:
        return spec
    if not isinstance(features, dict):
        raise param_error(
            "Param degrees_of_freedom_spec[creative_features_spec] must be a JSON object",
            field="degrees_of_freedom_spec",
        )
    if any(key in DEPRECATED_FEATURES for key in features):
        raise _rule(
            3858504,
            "Standard Enhancements Deprecated",
            "Including standard enhancements field in creative has been deprecated. Opt in or out of "
            "individual Advantage+ creative features instead (e.g. image_touchups, text_optimizations).",
            "degrees_of_freedom_spec",
        )
    for key, value in features.items():
        if key not in CREATIVE_FEATURES:
            raise param_error(
                f"Param degrees_of_freedom_spec[creative_features_spec][{str(key)[:64]}] is not a "
                "valid Advantage+ creative feature",
                field="degrees_of_freedom_spec",
            )
        status = value.get("enroll_status") if isinstance(value, dict) else None
        if status not in ENROLL_STATUSES:
            raise param_error(
                f"Param degrees_of_freedom_spec[creative_features_spec][{key}][enroll_status] must be "
                "one of {OPT_IN, OPT_OUT}",
                field="degrees_of_freedom_spec",
            )
    return spec


def build_creative(ctx: Ctx, account: Obj, raw: dict) -> dict:
    """Validate a creative spec (parameters of POST act_x/adcreatives) into the data to store."""
    p = Params(raw)
    account_id = account["id"]
    data: dict[str, Any] = {"account_id": account["account_id"], "status": "ACTIVE", "adlabels": []}
    name = p.str("name")
    if name is not None:
        if len(name) > MAX_NAME:
            raise param_error(f"Param name must be at most {MAX_NAME} characters long", field="name")
        data["name"] = name
    assets: dict[str, Any] = {}
    if "object_story_spec" in p:
        spec = p.obj("object_story_spec", {})
        unknown = sorted(str(k) for k in spec if k not in STORY_KEYS)
        if unknown:
            raise _bad(f"object_story_spec[{unknown[0][:64]}]", "is not a valid field of object_story_spec")
        page = load_page(ctx, spec.get("page_id"))
        out: dict[str, Any] = {"page_id": page["id"]}
        ig = spec.get("instagram_user_id", spec.get("instagram_actor_id"))
        if ig is not None:
            out["instagram_user_id"] = data["instagram_user_id"] = _instagram_rule(ctx, account_id, page, ig)
        kinds = [k for k in ("link_data", "video_data", "photo_data") if spec.get(k) is not None]
        if len(kinds) != 1:
            raise param_error(
                "object_story_spec needs exactly one of link_data, video_data or photo_data", field="object_story_spec"
            )
        kind = kinds[0]
        parse = {"link_data": _link_data, "video_data": _video_data, "photo_data": _photo_data}[kind]
        out[kind] = parse(ctx, account_id, spec[kind], assets)
        data["object_story_spec"] = _public(out)
        data["object_type"] = {"link_data": "SHARE", "video_data": "VIDEO", "photo_data": "PHOTO"}[kind]
        data["_kind"] = "carousel" if kind == "link_data" and "child_attachments" in out[kind] else kind[:-5]
        data["_cards"] = [{k: v for k, v in c.items()} for c in out[kind].get("child_attachments", [])]
        data["_page_id"] = page["id"]
        cta = out[kind].get("call_to_action")
        if cta:
            data["call_to_action_type"] = cta["type"]
    elif "object_story_id" in p:
        story = p.str("object_story_id", "")
        match = re.fullmatch(r"(\d{1,20})_(\d{1,20})", story)
        if not match:
            raise param_error(
                "Param object_story_id must be a page post id of the form <page_id>_<post_id>", field="object_story_id"
            )
        page = load_page(ctx, match.group(1))
        data.update(
            object_story_id=story,
            effective_object_story_id=story,
            object_type="SHARE",
            _kind="post",
            _page_id=page["id"],
        )
    else:
        raise param_error(
            "The creative needs object_story_spec (page_id and link_data, video_data or photo_data) or object_story_id",
            field="object_story_spec",
        )
    dof = p.obj("degrees_of_freedom_spec") if "degrees_of_freedom_spec" in p else None
    if dof is not None:
        data["degrees_of_freedom_spec"] = dof_rule(dof)
    if "url_tags" in p:
        tags = p.str("url_tags", "")
        if len(tags) > 1024:
            raise param_error("Param url_tags must be at most 1024 characters long", field="url_tags")
        data["url_tags"] = tags
    if "adlabels" in p:
        data["adlabels"] = campaigns._parse_adlabels(Ctx(ctx.sb, ctx.call, ctx.principal, p))
    data["_media"] = assets
    if "name" not in data:
        data["name"] = default_name(ctx, data)
    return data


def _public(value: Any) -> Any:
    """The spec as Facebook echoes it: without the sandbox's private keys."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def default_name(ctx: Ctx, data: dict) -> str:
    page = ctx.store.get(data.get("_page_id", "")) or {}
    text = creative_texts(data)
    snippet = (text[0] if text else "").replace("\n", " ")
    snippet = snippet[:40] + ("…" if len(snippet) > 40 else "")
    return f'{page.get("name", "Page")} Post: "{snippet}"'


def creative_texts(data: dict) -> list[str]:
    """The words people read in the ad: primary text, headlines, descriptions, titles, of the ad and its cards."""
    spec = data.get("object_story_spec") or {}
    out: list[str] = []
    for kind in ("link_data", "video_data", "photo_data"):
        part = spec.get(kind) or {}
        for key in ("message", "name", "description", "title", "caption", "link_description"):
            if isinstance(part.get(key), str) and part[key]:
                out.append(part[key])
        for card in part.get("child_attachments") or []:
            for key in ("name", "description"):
                if isinstance(card.get(key), str) and card[key]:
                    out.append(card[key])
    return out


# ---- rendering


def _render_value(ctx: Ctx, c: Obj, name: str) -> Any:
    assets = c.get("_media") or {}
    spec = c.get("object_story_spec") or {}
    part: dict[str, Any] = next((spec[k] for k in ("link_data", "video_data", "photo_data") if k in spec), {})
    if name == "thumbnail_url":
        return absolute(ctx, assets.get("thumbnail") or assets.get("image_url"))
    if name == "image_url":
        return absolute(ctx, assets.get("image_url"))
    if name == "image_hash":
        return assets.get("image_hash")
    if name == "video_id":
        return assets.get("video_id")
    if name == "effective_object_story_id":
        return c.get("effective_object_story_id") or f"{c['_page_id']}_{post_id(c['id'])}"
    if name == "actor_id":
        return c.get("_page_id")
    if name == "body":
        return part.get("message") or part.get("caption")
    if name == "title":
        return part.get("name") or part.get("title")
    if name in ("link_url", "object_url"):
        return part.get("link")
    if name == "call_to_action":
        return part.get("call_to_action")
    if name.startswith("_"):
        return None
    return c.get(name)


def post_id(creative_id: str) -> int:
    return POST_ID_BASE + int(creative_id) - ID_BASES["adcreative"]


def render(ctx: Ctx, c: Obj, names: Sequence[str]) -> dict:
    return select("AdCreative", names, DEFAULT_FIELDS, lambda n: _render_value(ctx, c, n))


# ---- handlers


def create_creative(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    data = build_creative(ctx, account, ctx.p.raw)
    if "validate_only" in campaigns.execution_options(ctx):
        return {"success": True}
    return {"id": insert_creative(ctx, account, data)}


def insert_creative(ctx: Ctx, account: Obj, data: dict) -> str:
    creative_id = ctx.store.new_id("adcreative")
    data = {**data, "id": creative_id}
    data["adlabels"] = campaigns.resolve_labels(ctx, account["id"], data.get("adlabels", []))
    ctx.store.insert("adcreative", creative_id, data, parent_id=account["id"], account_id=account["id"], now=ctx.now)
    return creative_id


def read_creative(ctx: Ctx, c: Obj) -> dict:
    return render(ctx, c, parse_fields(ctx.p.get("fields")))


def update_creative(ctx: Ctx, c: Obj) -> dict:
    """Facebook lets a creative's name change; everything else needs a new creative."""
    if c.get("status") == "DELETED":
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Ad Creative Deleted",
            user_msg="This creative has been deleted, so it can't be edited.",
            blame="name",
        )
    others = sorted(k for k in ctx.p.raw if k not in campaigns.CONTROL_PARAMS and k != "name")
    if others:
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Ad Creative Can't Be Changed",
            user_msg=f"Only a creative's name can be edited ({others[0][:64]} can't). Create a new "
            "creative with the change and point the ad at it.",
            blame=others[0][:64],
        )
    name = campaigns._parse_name(ctx)
    if len(name) > MAX_NAME:
        raise param_error(f"Param name must be at most {MAX_NAME} characters long", field="name")
    if "validate_only" not in campaigns.execution_options(ctx):
        ctx.store.update(c["id"], {**c, "name": name}, now=ctx.now)
    return {"success": True}


def delete_creative(ctx: Ctx, c: Obj) -> dict:
    users = [
        a["id"]
        for a in ctx.store.list("ad", account_id=c.account_id)
        if a.get("creative", {}).get("id") == c["id"] and a["status"] != "DELETED"
    ]
    if users:
        shown = ", ".join(users[:5]) + (" …" if len(users) > 5 else "")
        raise GraphError(
            "Invalid parameter",
            100,
            user_title="Ad Creative In Use",
            user_msg=f"This creative is used by {len(users)} ad(s) ({shown}), so it can't be deleted. "
            "Delete those ads, or give them another creative, first.",
            blame="id",
        )
    if c.get("status") != "DELETED":
        ctx.store.update(c["id"], {**c, "status": "DELETED"}, now=ctx.now)
    return {"success": True}


def list_creatives(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    items = [c for c in ctx.store.list("adcreative", account_id=account["id"]) if c.get("status") != "DELETED"]
    return list_of(ctx, items)


def list_of(ctx: Ctx, items: list[Obj]) -> dict:
    items = sorted(items, key=lambda o: o.seq, reverse=True)
    names = parse_fields(ctx.p.get("fields"))
    if names and not items:
        select("AdCreative", names, DEFAULT_FIELDS, lambda n: None)
    return paginate(ctx, items, lambda c: render(ctx, c, names))

"""Ad previews: `{ad_id}/previews`, `{creative_id}/previews`, `act_x/generatepreviews` and the HTML page behind them.

Each preview body is an iframe on `/__sandbox/preview/<token>`; the token is an HMAC-signed (kind, id, format), so
the page needs no access token and can't be guessed. The page renders the creative as it would look in that
placement: Facebook feed (desktop or mobile), Instagram feed, full-screen stories and reels, or a compact box.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from facebook_business.adobjects.adpreview import AdPreview

from . import campaigns, creatives
from .context import Ctx
from .errors import GraphError, param_error
from .store import Store

FORMATS = campaigns._enum(AdPreview.AdFormat)
SPEC_PREFIX = "preview_spec:"
COMPACT = ("RIGHT_COLUMN", "BANNER", "MEDIUM_RECTANGLE", "MOBILE_NATIVE", "INSTANT_ARTICLE", "JOB_BROWSER")
VERTICAL = ("STORY", "REELS", "IMMERSIVE", "FULLSCREEN", "INTERSTITIAL", "STATUS_MEDIA")


def layout_of(ad_format: str) -> str:
    """compact | vertical | instagram | desktop | mobile."""
    if any(word in ad_format for word in COMPACT):
        return "compact"
    if any(word in ad_format for word in VERTICAL):
        return "vertical"
    if ad_format.startswith("INSTAGRAM_"):
        return "instagram"
    if "DESKTOP" in ad_format:
        return "desktop"
    return "mobile"


SIZES = {
    "desktop": (502, 650),
    "mobile": (335, 600),
    "instagram": (326, 540),
    "vertical": (320, 570),
    "compact": (254, 200),
}


def size_of(ad_format: str, view: dict | None = None) -> tuple[int, int]:
    """The iframe's size: fixed for full-screen and compact placements, fitted to the content in feeds."""
    layout = layout_of(ad_format)
    width, height = SIZES[layout]
    if view is None or layout in ("vertical", "compact"):
        return width, height

    def text_height(text: str, limit: int, px_per_line: int, avail: int) -> int:
        chars = min(len(text), limit + 10)
        lines = sum(max(1, -(-len(part) * 8 // avail)) for part in text[:chars].split("\n")) if text else 0
        return lines * px_per_line

    kind = view["kind"]
    if layout == "instagram":
        caption = text_height(view["message"], 90, 18, width - 24) + 12 if view["message"] else 0
        cta = 44 if view["cta"] or any(c["cta"] for c in view["cards"]) else 0
        return width, 56 + width + cta + 44 + caption + 12
    desktop = layout == "desktop"
    msg = text_height(view["message"], 240 if desktop else 125, 20, width - 32) + 22 if view["message"] else 0
    if kind == "carousel":
        card = int(width * (0.56 if desktop else 0.72))
        body = card + 74 + 12
    elif kind in ("photo", "post"):
        body = width if kind == "photo" else round(width / 1.91)
    else:
        body = round(width * 9 / 16) if kind == "video" else round(width / 1.91)
        if view["headline"] or view["cta"] or view["domain"]:
            body += 76 if view["description"] else 60
    return width, 56 + msg + body + 46 + 12


# ---- tokens


def _secret(store: Store) -> bytes:
    secret = store.kv_get("preview_secret")
    if not secret:
        secret = secrets.token_hex(32)
        store.kv_set("preview_secret", secret)
    return secret.encode()


def make_token(store: Store, kind: str, obj_id: str, ad_format: str) -> str:
    payload = f"{kind}:{obj_id}:{ad_format}"
    sig = hmac.new(_secret(store), payload.encode(), hashlib.sha256).hexdigest()[:32]
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=") + "." + sig


def read_token(store: Store, token: str) -> tuple[str, str, str] | None:
    encoded, _, sig = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeError):
        return None
    expected = hmac.new(_secret(store), payload.encode(), hashlib.sha256).hexdigest()[:32]
    parts = payload.split(":")
    if not hmac.compare_digest(expected, sig) or len(parts) != 3 or parts[2] not in FORMATS:
        return None
    return parts[0], parts[1], parts[2]


def preview_url(ctx: Ctx, kind: str, obj_id: str, ad_format: str) -> str:
    return f"{ctx.call.base_url}/__sandbox/preview/{make_token(ctx.store, kind, obj_id, ad_format)}"


def _format(ctx: Ctx) -> str:
    value = ctx.p.get("ad_format")
    if value is None or value == "":
        raise param_error("The parameter ad_format is required", field="ad_format")
    if value not in FORMATS:
        raise param_error(f"Param ad_format must be one of {{{', '.join(FORMATS)}}}", field="ad_format")
    return value


def _answer(ctx: Ctx, kind: str, obj_id: str, ad_format: str) -> dict:
    creative, _ = _creative_for(ctx.store, kind, obj_id)
    width, height = size_of(ad_format, view_model(ctx.store, creative) if creative else None)
    src = html.escape(preview_url(ctx, kind, obj_id, ad_format))
    body = f'<iframe src="{src}" width="{width}" height="{height}" scrolling="yes" style="border: none;"></iframe>'
    return {"data": [{"body": body}]}


# ---- Graph handlers


def node_previews(ctx: Ctx) -> dict:
    """GET {ad_id}/previews and {creative_id}/previews."""
    node = ctx.load(ctx.match[0], types=("ad", "adcreative"))
    ad_format = _format(ctx)
    return _answer(ctx, "a" if node.type == "ad" else "c", node["id"], ad_format)


def generate_previews(ctx: Ctx) -> dict:
    """GET act_x/generatepreviews?creative={"creative_id"} or a creative spec."""
    account = ctx.load_account(ctx.match[0])
    ad_format = _format(ctx)
    spec = ctx.p.json("creative")
    if not isinstance(spec, dict):
        raise param_error(
            'Param creative must be a JSON object: {"creative_id": "<id>"} or a creative spec with object_story_spec',
            field="creative",
        )
    if "creative_id" in spec:
        creative_id = spec["creative_id"]
        creative = ctx.store.get(str(creative_id)) if isinstance(creative_id, (str, int)) else None
        if creative is None or creative.type != "adcreative" or creative.account_id != account["id"]:
            raise GraphError(
                "Invalid parameter",
                100,
                subcode=1487242,
                user_title="Ad Creative Not Valid",
                user_msg=f"The creative {str(creative_id)[:40]} isn't a creative of the ad account {account['id']}.",
                blame="creative",
            )
        return _answer(ctx, "c", creative["id"], ad_format)
    data = creatives.build_creative(ctx, account, spec)
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(f"{account['id']}:{encoded}".encode()).hexdigest()[:20]
    ctx.store.kv_set(SPEC_PREFIX + key, {**data, "id": key})
    return _answer(ctx, "s", key, ad_format)


# ---- the preview page


def _creative_for(store: Store, kind: str, obj_id: str) -> tuple[dict | None, str | None]:
    if kind == "s":
        return store.kv_get(SPEC_PREFIX + obj_id), None
    obj = store.get(obj_id)
    if kind == "a" and obj is not None and obj.type == "ad":
        return store.get(obj["creative"]["id"]), obj["name"]
    if kind == "c" and obj is not None and obj.type == "adcreative":
        return obj, None
    return None, None


async def preview_page(request: web.Request) -> web.Response:
    from .control import SANDBOX_KEY

    store = request.app[SANDBOX_KEY].store
    parsed = read_token(store, request.match_info.get("token", ""))
    creative, ad_name = _creative_for(store, *parsed[:2]) if parsed else (None, None)
    if parsed is None or creative is None:
        return web.Response(status=404, content_type="text/html", text=_not_found_page())
    view = view_model(store, creative)
    return web.Response(
        content_type="text/html", text=render_page(view, parsed[2], ad_name), headers={"Cache-Control": "no-store"}
    )


# ---- what the page shows


def _cta_label(cta: Any) -> str | None:
    if not isinstance(cta, dict) or not isinstance(cta.get("type"), str) or cta["type"] == "NO_BUTTON":
        return None
    words = cta["type"].replace("_", " ").lower()
    return words[:1].upper() + words[1:]


def _domain(link: Any) -> str:
    try:
        host = urlparse(link).hostname if isinstance(link, str) else None
    except ValueError:
        host = None
    return (host or "").removeprefix("www.").upper()


def view_model(store: Store, c: dict) -> dict:
    """Everything the page draws, taken from a stored creative (or a generatepreviews spec)."""
    spec = c.get("object_story_spec") or {}
    media = c.get("_media") or {}
    page: dict[str, Any] = store.get(c.get("_page_id") or "") or {}
    ig_id = spec.get("instagram_user_id") or page.get("_instagram_id")
    ig = store.get(ig_id) if ig_id else None
    page_name = page.get("name") or "Facebook Page"
    view: dict[str, Any] = {
        "kind": c.get("_kind", "link"),
        "page_name": page_name,
        "ig_name": (ig.get("username") if ig else None) or page_name.lower().replace(" ", "."),
        "message": "",
        "headline": "",
        "description": "",
        "domain": "",
        "cta": None,
        "image": media.get("image_url"),
        "thumbnail": media.get("thumbnail"),
        "cards": [],
    }
    if "link_data" in spec:
        d = spec["link_data"]
        view.update(
            message=d.get("message") or "",
            headline=d.get("name") or "",
            description=d.get("description") or d.get("caption") or "",
            domain=_domain(d.get("link")),
            cta=_cta_label(d.get("call_to_action")),
        )
        default_cta = view["cta"]
        for card in c.get("_cards") or []:
            view["cards"].append(
                {
                    "image": card.get("_image_url"),
                    "headline": card.get("name") or "",
                    "description": card.get("description") or "",
                    "video": bool(card.get("video_id")),
                    "cta": _cta_label(card.get("call_to_action")) or default_cta,
                    "domain": _domain(card.get("link")),
                }
            )
    elif "video_data" in spec:
        d = spec["video_data"]
        link = ((d.get("call_to_action") or {}).get("value") or {}).get("link")
        view.update(
            message=d.get("message") or "",
            headline=d.get("title") or "",
            description=d.get("link_description") or "",
            domain=_domain(link),
            cta=_cta_label(d.get("call_to_action")),
        )
    elif "photo_data" in spec:
        view.update(message=spec["photo_data"].get("caption") or "")
    elif c.get("object_story_id"):
        view.update(message=f"Page post {c['object_story_id'].split('_', 1)[-1]} from {page_name}.")
    return view


def _e(text: Any) -> str:
    return html.escape(str(text or ""))


def _hue(text: str) -> int:
    return int(hashlib.md5(text.encode()).hexdigest()[:4], 16) % 360


def _initials(name: str) -> str:
    words = [w for w in name.replace(".", " ").split() if w]
    return "".join(w[0] for w in words[:2]).upper() or "P"


def _avatar(name: str, size: int, ring: bool = False) -> str:
    hue = _hue(name)
    inner = (
        f'<div class="av" style="width:{size}px;height:{size}px;font-size:{size * 0.4:.0f}px;'
        f'background:linear-gradient(135deg,hsl({hue},65%,55%),hsl({(hue + 40) % 360},70%,45%))">'
        f"{_e(_initials(name))}</div>"
    )
    return f'<div class="ring">{inner}</div>' if ring else inner


def _media(url: str | None, seed: str, ratio: str, *, video: bool = False, cover: bool = True) -> str:
    hue = _hue(seed or "x")
    style = (
        f"aspect-ratio:{ratio};background:linear-gradient(135deg,hsl({hue},55%,82%),hsl({(hue + 60) % 360},60%,68%))"
    )
    img = ""
    if url:
        fit = "cover" if cover else "contain"
        img = (
            f'<img src="{_e(url)}" alt="" style="object-fit:{fit}" '
            "onerror=\"this.parentNode.classList.add('noimg');this.remove()\">"
        )
    play = '<div class="play"><svg viewBox="0 0 24 24"><path d="M8 5v14l11-7z"/></svg></div>' if video else ""
    cls = "media" + ("" if url else " noimg")
    return f'<div class="{cls}" style="{style}">{img}<div class="ph">{_ICON_IMAGE}</div>{play}</div>'


_ICON_IMAGE = (
    '<svg viewBox="0 0 24 24"><path d="M21 19V5a2 2 0 0 0-2-2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 '
    '2-2zM8.5 13.5l2.5 3 3.5-4.5 4.5 6H5l3.5-4.5z"/></svg>'
)
_GLOBE = (
    '<svg class="globe" viewBox="0 0 16 16"><circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" '
    'stroke-width="1.3"/><path d="M1.5 8h13M8 1.5c2 2 2 11 0 13M8 1.5c-2 2-2 11 0 13" fill="none" '
    'stroke="currentColor" stroke-width="1.1"/></svg>'
)
_FB_LIKE = (
    '<svg viewBox="0 0 24 24"><path d="M7 10v11H3V10zm2 11h8.5a2 2 0 0 0 2-1.6l1.4-7A2 2 0 0 0 19 10h-5l.8-4.2'
    'A1.8 1.8 0 0 0 13 4l-4 6z" fill="none" stroke="currentColor" stroke-width="1.8" '
    'stroke-linejoin="round"/></svg>'
)
_FB_COMMENT = (
    '<svg viewBox="0 0 24 24"><path d="M4 5h16v11H9l-5 4z" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linejoin="round"/></svg>'
)
_FB_SHARE = (
    '<svg viewBox="0 0 24 24"><path d="M14 5l7 7-7 7v-4c-5 0-8 1.5-11 5 1-5 4-10 11-11z" fill="none" '
    'stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/></svg>'
)
_IG_ICONS = (
    '<svg viewBox="0 0 24 24"><path d="M12 21s-7.5-4.6-9.5-9.3C1.2 8.4 3.3 5 6.7 5c2 0 3.4 1.1 4.3 2.5C11.9 6.1 13.3 5 '
    '15.3 5c3.4 0 5.5 3.4 4.2 6.7C19.5 16.4 12 21 12 21z" fill="none" stroke="currentColor" stroke-width="1.8"/></svg>'
    '<svg viewBox="0 0 24 24"><path d="M20.5 11.5a8.5 8.5 0 1 1-4-7.2L21 3l-1.3 4.3a8.4 8.4 0 0 1 .8 4.2z" fill="none" '
    'stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/></svg>'
    '<svg viewBox="0 0 24 24"><path d="M22 3 9.2 10.6M22 3l-7 18-3.6-8.4L3 9z" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linejoin="round"/></svg>'
)
_IG_SAVE = (
    '<svg viewBox="0 0 24 24" class="save"><path d="M19 21l-7-5-7 5V3h14z" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linejoin="round"/></svg>'
)


def _message(text: str, limit: int) -> str:
    if len(text) > limit:
        cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
        return _e(cut).replace("\n", "<br>") + '… <span class="more">See more</span>'
    return _e(text).replace("\n", "<br>")


def _fb_post(view: dict, width: int) -> str:
    desktop = width > 400
    head = (
        f'<div class="hd">{_avatar(view["page_name"], 40)}<div class="who"><div class="pn">'
        f'{_e(view["page_name"])}</div><div class="sp">Sponsored · {_GLOBE}</div></div>'
        '<div class="dots">···</div></div>'
    )
    msg = f'<div class="msg">{_message(view["message"], 240 if desktop else 125)}</div>' if view["message"] else ""
    kind, seed = view["kind"], view["headline"] or view["message"] or view["page_name"]
    if kind == "carousel":
        card_w = int(width * (0.56 if desktop else 0.72))
        cards = "".join(
            f'<div class="cc" style="width:{card_w}px">'
            f"{_media(c['image'], c['headline'] + str(i), '1/1', video=c['video'])}"
            f'<div class="cb"><div class="ct"><div class="hl">{_e(c["headline"])}</div>'
            f'<div class="ds">{_e(c["description"])}</div></div>'
            + (f'<span class="btn">{_e(c["cta"])}</span>' if c["cta"] else "")
            + "</div></div>"
            for i, c in enumerate(view["cards"])
        )
        body = f'<div class="car">{cards}</div>'
    elif kind in ("photo", "post"):
        body = _media(view["image"], seed, "1/1" if kind == "photo" else "1.91/1")
    else:
        video = kind == "video"
        body = _media(view["thumbnail"] if video else view["image"], seed, "16/9" if video else "1.91/1", video=video)
        if view["headline"] or view["cta"] or view["domain"]:
            body += (
                '<div class="lb"><div class="lbt">'
                + (f'<div class="dom">{_e(view["domain"])}</div>' if view["domain"] else "")
                + f'<div class="hl">{_e(view["headline"])}</div>'
                + (f'<div class="ds">{_e(view["description"])}</div>' if view["description"] else "")
                + "</div>"
                + (f'<span class="btn">{_e(view["cta"])}</span>' if view["cta"] else "")
                + "</div>"
            )
    foot = (
        f'<div class="foot"><span>{_FB_LIKE}Like</span><span>{_FB_COMMENT}Comment</span>'
        f"<span>{_FB_SHARE}Share</span></div>"
    )
    return f'<div class="post fb">{head}{msg}{body}{foot}</div>'


def _ig_post(view: dict) -> str:
    name = view["ig_name"]
    head = (
        f'<div class="hd">{_avatar(name, 32, ring=True)}<div class="who"><div class="pn">{_e(name)}</div>'
        '<div class="sp">Sponsored</div></div><div class="dots">···</div></div>'
    )
    first = view["cards"][0] if view["cards"] else None
    image = first["image"] if first else (view["thumbnail"] if view["kind"] == "video" else view["image"])
    seed = (first or {}).get("headline") or view["headline"] or view["message"] or name
    video = view["kind"] == "video" or bool(first and first["video"])
    body = _media(image, seed + ("0" if first else ""), "1/1", video=video)
    if view["cards"]:
        body = body.replace('<div class="ph">', f'<div class="badge">1/{len(view["cards"])}</div><div class="ph">', 1)
    cta = view["cta"] or (first or {}).get("cta")
    bar = f'<div class="igcta"><span>{_e(cta)}</span><span>›</span></div>' if cta else ""
    dots = ""
    if view["cards"]:
        dots = (
            '<div class="igdots">'
            + "".join(f'<i class="{"on" if i == 0 else ""}"></i>' for i in range(len(view["cards"])))
            + "</div>"
        )
    icons = f'<div class="igicons">{_IG_ICONS}{dots}{_IG_SAVE}</div>'
    caption = f'<div class="igcap"><b>{_e(name)}</b> {_message(view["message"], 90)}</div>' if view["message"] else ""
    return f'<div class="post ig">{head}{body}{bar}{icons}{caption}</div>'


def _vertical(view: dict, ad_format: str) -> str:
    instagram = ad_format.startswith("INSTAGRAM_")
    name = view["ig_name"] if instagram else view["page_name"]
    first = view["cards"][0] if view["cards"] else None
    image = first["image"] if first else (view["thumbnail"] if view["kind"] == "video" else view["image"])
    seed = (first or {}).get("headline") or view["headline"] or view["message"] or name
    video = view["kind"] == "video" or bool(first and first["video"])
    hue = _hue(seed or "x")
    backdrop = (
        f'<div class="vbg" style="background:linear-gradient(160deg,hsl({hue},45%,35%),'
        f'hsl({(hue + 50) % 360},50%,18%))">'
        + (f'<img class="blur" src="{_e(image)}" alt="" onerror="this.remove()">' if image else "")
        + "</div>"
    )
    media = _media(image, seed, "4/5", video=video, cover=True)
    bars = "".join('<i class="on"></i>' if i == 0 else "<i></i>" for i in range(max(1, len(view["cards"]) or 1)))
    top = (
        f'<div class="vtop"><div class="prog">{bars}</div><div class="hd">{_avatar(name, 32)}<div class="who">'
        f'<div class="pn">{_e(name)}</div><div class="sp">Sponsored</div></div>'
        '<div class="dots">···</div></div></div>'
    )
    cta = view["cta"] or (first or {}).get("cta") or "Learn more"
    text = view["message"] or (first or {}).get("headline") or view["headline"]
    bottom = (
        '<div class="vbot">'
        + (f'<div class="vmsg">{_message(text, 110)}</div>' if text else "")
        + f'<div class="vcta"><svg viewBox="0 0 24 24"><path d="M6 15l6-6 6 6" fill="none" stroke="currentColor" '
        f'stroke-width="2.4"/></svg><span>{_e(cta)}</span></div></div>'
    )
    return f'<div class="post vert">{backdrop}<div class="vmid">{media}</div>{top}{bottom}</div>'


def _compact(view: dict) -> str:
    first = view["cards"][0] if view["cards"] else None
    image = first["image"] if first else (view["thumbnail"] if view["kind"] == "video" else view["image"])
    headline = view["headline"] or (first or {}).get("headline") or view["page_name"]
    domain = view["domain"] or (first or {}).get("domain") or ""
    return (
        f'<div class="post cmp">{_media(image, headline, "1.91/1", video=view["kind"] == "video")}'
        f'<div class="hl">{_e(headline)}</div><div class="dom">{_e(domain.lower())}</div></div>'
    )


def render_page(view: dict, ad_format: str, ad_name: str | None = None) -> str:
    width, height = size_of(ad_format, view)
    layout = layout_of(ad_format)
    if layout == "vertical":
        inner = _vertical(view, ad_format)
    elif layout == "instagram":
        inner = _ig_post(view)
    elif layout == "compact":
        inner = _compact(view)
    else:
        inner = _fb_post(view, width)
    title = _e(ad_name or view["headline"] or view["page_name"])
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} · {ad_format}</title>'
        f'<meta name="viewport" content="width={width}"><style>{_CSS}'
        f"body{{width:{width}px;min-height:{height if layout == 'vertical' else 0}px}}"
        f".vert{{height:{height}px}}</style></head>"
        f'<body data-format="{_e(ad_format)}" data-layout="{layout}">{inner}</body></html>'
    )


def _not_found_page() -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Preview not found</title>'
        f'<style>{_CSS}</style></head><body><div class="nf">This preview link is not valid or the ad no longer '
        "exists.</div></body></html>"
    )


_CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#050505;background:#fff;-webkit-font-smoothing:antialiased;font-size:15px;line-height:1.34}
.post{background:#fff;overflow:hidden}
.fb{margin:0}
.hd{display:flex;align-items:center;gap:8px;padding:12px 16px 0}
.av{border-radius:50%;color:#fff;font-weight:700;display:flex;align-items:center;justify-content:center;
 flex:none;letter-spacing:.02em}
.ring{padding:2px;border-radius:50%;background:linear-gradient(45deg,#f9ce34,#ee2a7b,#6228d7);flex:none}
.ring .av{border:2px solid #fff}
.who{flex:1;min-width:0}
.pn{font-weight:600;font-size:15px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.sp{color:#65676b;font-size:13px;display:flex;align-items:center;gap:3px}
.globe{width:12px;height:12px}
.dots{color:#65676b;font-weight:700;letter-spacing:1px;padding:0 4px}
.msg{padding:10px 16px 12px;white-space:normal;word-wrap:break-word;overflow-wrap:anywhere}
.more{color:#65676b;font-weight:600}
.media{position:relative;width:100%;overflow:hidden;display:flex;align-items:center;justify-content:center}
.media img{position:absolute;inset:0;width:100%;height:100%;display:block}
.media .ph{display:none;width:56px;height:56px;opacity:.55}
.media.noimg .ph{display:block}
.ph svg{width:100%;height:100%;fill:#fff}
.play{position:absolute;width:64px;height:64px;border-radius:50%;background:rgba(0,0,0,.55);
 border:3px solid #fff;display:flex;align-items:center;justify-content:center}
.play svg{width:34px;height:34px;fill:#fff;margin-left:4px}
.lb{display:flex;align-items:center;gap:12px;background:#f0f2f5;padding:10px 16px;border-bottom:1px solid #e4e6eb}
.lbt{flex:1;min-width:0}
.dom{color:#65676b;font-size:12px;text-transform:uppercase;letter-spacing:.01em;white-space:nowrap;overflow:hidden;
 text-overflow:ellipsis}
.hl{font-weight:600;font-size:16px;line-height:1.25;overflow:hidden;display:-webkit-box;-webkit-line-clamp:2;
 -webkit-box-orient:vertical;overflow-wrap:anywhere}
.ds{color:#65676b;font-size:14px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.btn{flex:none;background:#e4e6eb;color:#050505;font-weight:600;font-size:14px;border-radius:6px;padding:8px 12px;
 white-space:nowrap}
.car{display:flex;gap:10px;overflow-x:auto;padding:0 16px 12px;scrollbar-width:none}
.cc{flex:none;border:1px solid #dadde1;border-radius:8px;overflow:hidden;background:#fff}
.cb{display:flex;align-items:center;gap:8px;padding:10px 12px;min-height:72px}
.ct{flex:1;min-width:0}
.cc .hl{font-size:15px}
.cc .btn{padding:6px 10px;font-size:13px}
.foot{display:flex;justify-content:space-around;color:#65676b;font-weight:600;font-size:14px;padding:10px 8px;
 border-top:1px solid #e4e6eb;margin:0 12px}
.foot span{display:flex;align-items:center;gap:6px}
.foot svg{width:18px;height:18px}
.ig{font-size:14px}
.ig .hd{padding:10px 12px}
.ig .pn{font-size:14px}
.ig .sp{color:#262626;font-size:12px}
.badge{position:absolute;top:10px;right:10px;background:rgba(20,20,20,.7);color:#fff;font-size:12px;
 border-radius:12px;padding:3px 8px;z-index:1}
.igcta{display:flex;justify-content:space-between;align-items:center;padding:10px 12px;font-weight:600;
 color:#0095f6;border-bottom:1px solid #efefef;font-size:14px}
.igcta span:last-child{font-size:20px;line-height:1;color:#262626}
.igicons{display:flex;align-items:center;gap:14px;padding:10px 12px 6px}
.igicons svg{width:24px;height:24px;color:#262626}
.igicons .save{margin-left:auto}
.igdots{display:flex;gap:4px;margin:0 auto}
.igdots i{width:6px;height:6px;border-radius:50%;background:#c7c7c7}
.igdots i.on{background:#0095f6}
.igcap{padding:0 12px 12px;overflow-wrap:anywhere}
.vert{position:relative;background:#111;color:#fff}
.vbg{position:absolute;inset:0;overflow:hidden}
.vbg .blur{width:100%;height:100%;object-fit:cover;filter:blur(24px) brightness(.6);transform:scale(1.2)}
.vmid{position:absolute;left:0;right:0;top:50%;transform:translateY(-52%)}
.vtop{position:absolute;top:0;left:0;right:0;padding-top:8px;
 background:linear-gradient(rgba(0,0,0,.45),rgba(0,0,0,0))}
.prog{display:flex;gap:3px;padding:0 8px}
.prog i{flex:1;height:2px;border-radius:2px;background:rgba(255,255,255,.4)}
.prog i.on{background:#fff}
.vert .hd{padding:10px 12px}
.vert .pn{color:#fff;font-size:14px;text-shadow:0 1px 2px rgba(0,0,0,.4)}
.vert .sp,.vert .dots{color:rgba(255,255,255,.85)}
.vbot{position:absolute;left:0;right:0;bottom:0;padding:48px 16px 18px;
 background:linear-gradient(rgba(0,0,0,0),rgba(0,0,0,.7));text-align:center}
.vmsg{font-size:14px;text-align:left;margin-bottom:14px;text-shadow:0 1px 2px rgba(0,0,0,.5);overflow-wrap:anywhere}
.vmsg .more{color:rgba(255,255,255,.8)}
.vcta{display:inline-flex;flex-direction:column;align-items:center;font-weight:600;font-size:14px}
.vcta svg{width:22px;height:22px;color:#fff}
.vcta span{background:#fff;color:#050505;border-radius:18px;padding:8px 22px;margin-top:2px}
.cmp{border:1px solid #dadde1;border-radius:6px}
.cmp .hl{font-size:14px;padding:8px 10px 2px}
.cmp .dom{padding:0 10px 10px;text-transform:none}
.nf{padding:24px;color:#65676b}
"""

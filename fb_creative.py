"""Ops: images, videos, creatives and previews (the media, creative and preview half of the creative module).

Every rule of docs/creative_rules.md that can be checked without Facebook (M1, M3 sizes, C1-C7) is checked here
before a request is sent, and refused with the code, subcode and blamed field Facebook would answer. Uploads stream
from disk (``GraphClient.upload``); a video goes in the chunks Facebook names and resumes from the offsets it names
after a lost chunk. URLs are fetched through ``fetch_public_url`` (no private, loopback or metadata addresses).
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import html
import ipaddress
import json
import os
import re
import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from facebook_business.adobjects.ad import Ad
from facebook_business.adobjects.adcreative import AdCreative
from facebook_business.adobjects.adcreativefeaturesspec import AdCreativeFeaturesSpec
from facebook_business.adobjects.adimage import AdImage
from facebook_business.adobjects.adpreview import AdPreview
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.advideo import AdVideo
from facebook_business.adobjects.campaign import Campaign
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError
from yarl import URL

from fb_utils import (
    DEFAULT_SETTLE_WINDOW,
    IMAGE_LOOKUP,
    LAUNCH_STATUSES,
    MONEY_UNIT,
    VIDEO_UPLOAD_LOOKUP,
    AccountInfo,
    Change,
    CreateLookup,
    DataRow,
    EditedObject,
    ErrorData,
    FacebookError,
    FileRange,
    GraphError,
    GraphRequest,
    LaunchJournal,
    LaunchRecord,
    Lease,
    ListPage,
    NetworkError,
    NotFoundError,
    OpArgs,
    OpContext,
    OpData,
    OpKind,
    OpResult,
    OpRunner,
    OpSet,
    OutcomeUnknownError,
    RateLimitError,
    TaskGroup,
    ValidationError,
    WritePlan,
    absent_key,
    add_lookup,
    add_status_ops,
    backoff_delay,
    changed_data,
    check_object_id,
    fetch_public_url,
    find_all_tagged,
    format_money,
    graph_object,
    host_port,
    is_ambiguous,
    list_page,
    list_text,
    new_client_tag,
    normalize_ad_account_id,
    output_file,
    readable_name,
    report_progress,
    safe_url,
    sdk_enum_values,
    single_flight,
    update_plan,
    when_text,
)

ops = OpSet("fb_creative")

MAX_IMAGE_BYTES = 30 * 1024 * 1024
MAX_VIDEO_BYTES = 10 * 1024**3
MAX_CHUNK_FAILURES = 5  # failed transfers in a row before a video upload gives up (progress resets the count)
VIDEO_WAIT_SECONDS = 300.0  # how long upload_video waits for Facebook to finish processing by default
CHROMIUM_TIMEOUT = 45.0
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEFAULT_PREVIEW_DIR = "admonster-previews"

CALL_TO_ACTION_TYPES = sdk_enum_values(AdCreative.CallToActionType)
CallToActionType = Literal[CALL_TO_ACTION_TYPES]  # type: ignore[valid-type]
# Call-to-action types that do not open a web page, so they need no link.
NON_LINK_CTAS = frozenset(
    t
    for t in (
        "NO_BUTTON",
        "CALL",
        "CALL_NOW",
        "CALL_ME",
        "AUDIO_CALL",
        "VIDEO_CALL",
        "MESSAGE_PAGE",
        "WHATSAPP_MESSAGE",
        "BUY_VIA_MESSAGE",
    )
    if t in CALL_TO_ACTION_TYPES
)
ENROLL_STATUSES = ("OPT_IN", "OPT_OUT")
# C4, Advantage+ creative features (docs/creative_rules.md). The keys are Meta's spec: the SDK's AdCreativeFeaturesSpec
# (image_templates, image_touchups, text_optimizations, inline_comment, video_auto_crop, image_animation,
# video_filtering, ...), never a hand list. The Standard Enhancements bundle is deprecated from v22.0 ("Marketing API
# v22.0 Impacts to Advantage+ Creative Enhancements",
# https://developers.facebook.com/blog/post/2025/01/17/marketing-api-v22-impacts-to-advantage-plus-creative-enhancements/);
# sending it on a create is refused (unverified: third-party reports of 100/3858504, pipeboard-co/meta-ads-mcp PR #102).
DEPRECATED_FEATURES = ("standard_enhancements",)
CREATIVE_FEATURES = tuple(f for f in sdk_enum_values(AdCreativeFeaturesSpec.Field) if f not in DEPRECATED_FEATURES)
# The individual features that have the bundle's effect, per kind, v22.0+ ("Standard Enhancements for Advantage+
# Creative", https://developers.facebook.com/documentation/ads-commerce/marketing-api/advantage-catalog-ads/standard-enhancements;
# Meta's prose names image_templates, the SDK spells it so).
STANDARD_SET: dict[str, tuple[str, ...]] = {
    "image": tuple(
        f
        for f in ("image_templates", "image_touchups", "text_optimizations", "inline_comment")
        if f in CREATIVE_FEATURES
    ),
    "video": tuple(f for f in ("video_auto_crop", "text_optimizations", "inline_comment") if f in CREATIVE_FEATURES),
}
EnrollStatus = Literal["OPT_IN", "OPT_OUT"]
AD_FORMATS = sdk_enum_values(AdPreview.AdFormat)
PREVIEW_FORMATS = {
    "desktop_feed": AdPreview.AdFormat.desktop_feed_standard,
    "mobile_feed": AdPreview.AdFormat.mobile_feed_standard,
    "instagram_feed": AdPreview.AdFormat.instagram_standard,
    "instagram_story": AdPreview.AdFormat.instagram_story,
    "instagram_reels": AdPreview.AdFormat.instagram_reels,
    "facebook_reels": AdPreview.AdFormat.facebook_reels_mobile,
    "facebook_story": AdPreview.AdFormat.facebook_story_mobile,
}
PREVIEW_FORMAT_NAMES = tuple(PREVIEW_FORMATS)
PreviewFormat = Literal[PREVIEW_FORMAT_NAMES]  # type: ignore[valid-type]

# docs/creative_rules.md: rule -> (code, subcode, blamed field)
RULES: dict[str, tuple[int, int | None, str]] = {
    "M1": (100, 1487242, "filename"),
    "M2": (100, 1487242, "image_hash"),
    "M3": (6001, 1363037, "start_offset"),
    "M4": (100, 1885252, "video_id"),
    "C1": (100, 1443048, "object_story_spec"),
    "C2": (100, 1443050, "object_story_spec"),
    "C3": (100, None, "call_to_action"),
    "C4": (100, 3858504, "degrees_of_freedom_spec"),
    "C5": (100, 2446886, "object_story_spec"),
    "C6": (100, 1443051, "object_story_spec"),
    "C7": (100, 1443049, "object_story_spec"),
}

_HASH_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_DIGITS_RE = re.compile(r"^\d{1,25}$")
_STORY_ID_RE = re.compile(r"^\d{1,25}_\d{1,25}$")
_URL_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")

AdAccountArg = Field(
    None, description="Ad account id (act_<digits>); defaults to the selected account.", examples=["act_1234567890"]
)


def rule_error(rule: str, message: str, fix: str, *, blame_field: str | None = None) -> ValidationError:
    """A local refusal carrying the code, subcode and blamed field Facebook answers for ``rule``."""
    code, subcode, blame = RULES[rule]
    return ValidationError(
        message, fix=fix, code=code, error_subcode=subcode, blame_field=blame_field or blame, data={"rule": rule}
    )


# ---------------------------------------------------------------------------------------------------------------
# Images: type sniffing and dimensions from the header (M1)
# ---------------------------------------------------------------------------------------------------------------

IMAGE_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "webp": "image/webp",
}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    size: int

    @property
    def content_type(self) -> str:
        return IMAGE_TYPES[self.format]


def sniff_image_format(data: bytes) -> str | None:
    """The image format named by the magic bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_dimensions(kind: str, data: bytes) -> tuple[int, int]:
    """(width, height) read from the header; ValueError when the header is not decodable."""
    try:
        width, height = _DIMENSION_READERS[kind](data)
    except (struct.error, IndexError, KeyError) as exc:
        raise ValueError("its header is truncated") from exc
    if width <= 0 or height <= 0:
        raise ValueError(f"its header says {width}×{height} pixels")
    return width, height


def _png_size(data: bytes) -> tuple[int, int]:
    length, chunk = struct.unpack(">I4s", data[8:16])
    if chunk != b"IHDR" or length != 13:
        raise ValueError("the PNG has no IHDR header chunk")
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(data[12:29]) & 0xFFFFFFFF != crc:
        raise ValueError("the PNG header's checksum is wrong")
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError("the JPEG markers are broken")
        while data[pos] == 0xFF:
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in (0x01, *range(0xD0, 0xD8)):
            continue
        if marker in (0xD9, 0xDA):
            raise ValueError("the JPEG has no frame header before its image data")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise ValueError("the JPEG markers are broken")
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return width, height
        pos += length
    raise ValueError("the JPEG has no frame header")


def _gif_size(data: bytes) -> tuple[int, int]:
    return struct.unpack("<HH", data[6:10])


def _bmp_size(data: bytes) -> tuple[int, int]:
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:
        return struct.unpack("<HH", data[18:22])
    if header < 40:
        raise ValueError("the BMP header is unknown")
    width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)


def _tiff_size(data: bytes) -> tuple[int, int]:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    found: dict[int, int] = {}
    for index in range(count):
        entry = data[ifd + 2 + 12 * index : ifd + 14 + 12 * index]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[
                0
            ]
    return found[256], found[257]


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ValueError("the WebP frame header is broken")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise ValueError("the WebP lossless header is broken")
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise ValueError("the WebP has no known image chunk")


_DIMENSION_READERS: dict[str, Callable[[bytes], tuple[int, int]]] = {
    "png": _png_size,
    "jpeg": _jpeg_size,
    "gif": _gif_size,
    "bmp": _bmp_size,
    "tiff": _tiff_size,
    "webp": _webp_size,
}


def check_image_bytes(data: bytes, name: str) -> ImageInfo:
    """M1: a real JPEG, PNG, GIF, BMP, TIFF or WebP with a decodable header, 1 byte to 30 MB."""
    fix = "Use a JPEG, PNG, GIF, BMP, TIFF or WebP image of at most 30 MB"
    if not data:
        raise rule_error("M1", f"{name} is empty (0 bytes)", fix)
    if len(data) > MAX_IMAGE_BYTES:
        raise rule_error(
            "M1",
            f"{name} is {len(data) / 1024 / 1024:.1f} MB, over Facebook's 30 MB image limit",
            "Resize or recompress the image under 30 MB",
        )
    kind = sniff_image_format(data)
    if kind is None:
        what = _describe_non_image(data)
        raise rule_error("M1", f"{name} is not an image Facebook accepts ({what})", fix)
    try:
        width, height = image_dimensions(kind, data)
    except ValueError as exc:
        raise rule_error(
            "M1",
            f"{name} looks like a {kind.upper()} but is corrupt: {exc}",
            "Re-export the image from an editor, or use another file",
        ) from None
    return ImageInfo(kind, width, height, len(data))


def _describe_non_image(data: bytes) -> str:
    video = sniff_video_format(data[:64])
    if video:
        return f"it is a {video} video: use upload_video"
    if data[:5] == b"%PDF-":
        return "it is a PDF"
    if data[:2] == b"PK":
        return "it is a ZIP archive"
    if data.lstrip()[:1] in (b"<", b"{", b"["):
        return "it looks like text (HTML, XML or JSON)"
    return "its first bytes match no image format"


# ---------------------------------------------------------------------------------------------------------------
# Videos: a container sniff and the size limit (M3)
# ---------------------------------------------------------------------------------------------------------------


def sniff_video_format(head: bytes) -> str | None:
    """The video container named by the first bytes, or None."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "MP4/MOV"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "WebM/MKV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:3] == b"FLV":
        return "FLV"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "WMV/ASF"
    if head[:4] == b"\x00\x00\x01\xba":
        return "MPEG-PS"
    if head[:1] == b"\x47" and len(head) > 1:
        return "MPEG-TS"
    return None


@dataclass(frozen=True)
class VideoFile:
    path: str
    size: int
    format: str

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def check_video_file(path: str) -> VideoFile:
    """A readable video file of 1 byte to 10 GB (M3), in a container Facebook takes."""
    file = _existing_file(path, "video")
    size = file.stat().st_size
    if size == 0:
        raise ValidationError(
            f"{path} is empty (0 bytes)", fix="Pass a video file of 1 byte to 10 GB", blame_field="file_size", code=100
        )
    if size > MAX_VIDEO_BYTES:
        raise ValidationError(
            f"{path} is {size / 1024**3:.1f} GB, over Facebook's 10 GB video limit",
            fix="Compress or trim the video under 10 GB",
            blame_field="file_size",
            code=100,
        )
    with open(file, "rb") as handle:
        head = handle.read(64)
    kind = sniff_video_format(head)
    if kind is None:
        image_kind = sniff_image_format(head)
        what = (
            f"it is a {image_kind.upper()} image: use upload_image"
            if image_kind
            else "its first bytes match no video container"
        )
        raise ValidationError(
            f"{path} is not a video Facebook accepts ({what})",
            fix="Use an MP4, MOV, WebM/MKV, AVI, FLV, WMV or MPEG file",
            blame_field="source",
            code=100,
        )
    return VideoFile(str(file), size, kind)


def _existing_file(path: str, what: str) -> Path:
    file = Path(os.path.expanduser(str(path).strip()))
    if not file.exists():
        raise ValidationError(
            f"No {what} file at {path}",
            fix=f"Pass the path of an existing {what} file (or an http(s) URL)",
            blame_field="source",
        )
    if not file.is_file():
        raise ValidationError(f"{path} is not a file", fix=f"Pass the path of a {what} file", blame_field="source")
    return file


# ---------------------------------------------------------------------------------------------------------------
# Uploads: the functions the launch half calls too
# ---------------------------------------------------------------------------------------------------------------


def _url_scheme(source: str) -> str | None:
    match = _URL_SCHEME_RE.match(source.strip())
    if match and not (len(match.group(1)) == 1 and os.name == "nt"):  # C:\ is a Windows drive, not a scheme
        return match.group(1).lower()
    return None


def check_url_scheme(source: str, blame_field: str = "source") -> None:
    """Only http(s) URLs are fetched (no file://, ftp://, gopher://, data:)."""
    scheme = _url_scheme(source)
    if scheme is not None and scheme not in ("http", "https"):
        raise ValidationError(
            f"Refused {safe_url(source) if '://' in source else scheme + ':'}: only http:// and https:// URLs "
            "can be fetched",
            fix="Pass an http(s) URL or a local file path",
            blame_field=blame_field,
        )


def graph_hosts(ctx: OpContext) -> set[str]:
    """host:port of the configured Graph base URL: the one non-public address a fetch may reach (the sandbox)."""
    return {host_port(ctx.graph.base_url)}


async def upload_image_bytes(ctx: OpContext, account_id: str, data: bytes, name: str) -> dict:
    """Upload image bytes (checked locally first, M1) to the account's image library; {"hash","url","width","height","name"}."""
    account_id = normalize_ad_account_id(account_id)
    info = check_image_bytes(data, name)
    filename = _image_filename(name, info.format)
    label = f"uploading image {filename}"  # one request: 0 bytes before it, all of them once Facebook has answered
    await report_progress(label, 0, len(data))
    # As the SDK sends it: the multipart field is named after the file, and the answer is keyed by that name.
    try:
        answer = await ctx.graph.upload(
            f"{account_id}/adimages", {}, {filename: (filename, data, info.content_type)}, idempotent=True
        )  # an image is stored under its md5: sending it twice stores it once
    except OutcomeUnknownError as error:
        add_lookup(error, image_lookup(account_id, data, filename))
        raise
    await report_progress(label, len(data), len(data))
    images = answer.get("images") if isinstance(answer, dict) else None
    if not isinstance(images, dict) or not images:
        raise GraphError(f"Facebook answered the image upload of {name} without an image", fix="Try the upload again")
    key, image = (filename, images[filename]) if isinstance(images.get(filename), dict) else next(iter(images.items()))
    return {
        "hash": image.get("hash"),
        "url": image.get("url"),
        "width": _int(image.get("width")) or info.width,
        "height": _int(image.get("height")) or info.height,
        "name": image.get("name") or key or filename,
        "size": info.size,
        "format": info.format,
    }


def image_lookup(account_id: str, data: bytes, filename: str) -> dict[str, str]:
    """How reconcile finds an image whose upload answer was lost: Facebook keeps an image under the md5 of its bytes."""
    return {
        "kind": IMAGE_LOOKUP,
        "path": f"{account_id}/adimages",
        "tag": hashlib.md5(data).hexdigest(),
        "name": filename,
    }


async def image_in_library(graph: Any, lookup: dict[str, str]) -> str | None:
    """The hash of the image ``lookup`` names when the ad account's library holds it, else None."""
    found = await graph.get(lookup["path"], {"hashes": [lookup["tag"]], "fields": "hash"})
    return lookup["tag"] if any(image.get("hash") == lookup["tag"] for image in found.get("data", [])) else None


async def upload_image_source(ctx: OpContext, account_id: str, source: str) -> dict:
    """Upload an image from a local path or a public http(s) URL (SSRF-guarded, size-capped), all checks first."""
    source = str(source).strip()
    if _url_scheme(source) is not None:
        check_url_scheme(source)
        data, _ = await fetch_public_url(
            source, max_bytes=MAX_IMAGE_BYTES, allowed_hosts=graph_hosts(ctx), blame_field="source"
        )
        name = os.path.basename(safe_url(source).split("://", 1)[-1].split("/", 1)[-1]) or "image"
        return await upload_image_bytes(ctx, account_id, data, name)
    file = _existing_file(source, "image")
    size = file.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise rule_error(
            "M1",
            f"{source} is {size / 1024 / 1024:.1f} MB, over Facebook's 30 MB image limit",
            "Resize or recompress the image under 30 MB",
        )
    data = await asyncio.to_thread(file.read_bytes)
    return await upload_image_bytes(ctx, account_id, data, file.name)


def _image_filename(name: str, kind: str) -> str:
    base = re.sub(r"[^\w.\-]+", "_", os.path.basename(name or "image")).strip("._") or "image"
    extension = {"jpeg": (".jpg", ".jpeg"), "tiff": (".tif", ".tiff")}.get(kind, (f".{kind}",))
    return base if base.lower().endswith(extension) else f"{base}{extension[0]}"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def _tell(on_progress: Callable[[int, int], Any] | None, label: str, sent: int, total: int) -> None:
    if on_progress is not None:
        outcome = on_progress(sent, total)
        if asyncio.iscoroutine(outcome):
            await outcome
    await report_progress(label, sent, total)


def _resume_offsets(error: FacebookError) -> tuple[int, int] | None:
    """The offsets Facebook names after refusing a chunk (subcode 1363037), or None."""
    if error.error_subcode != 1363037:
        return None
    data = error.data.get("error_data")
    if not isinstance(data, dict):
        return None
    start, end = _int(data.get("start_offset")), _int(data.get("end_offset"))
    return (start, end) if start is not None and end is not None else None


def video_upload_lookup(video_id: str, title: str) -> dict[str, str]:
    """How reconcile settles a video upload cut short: the video's upload phase, as Facebook shows it."""
    return {"kind": VIDEO_UPLOAD_LOOKUP, "path": video_id, "tag": video_id, "name": title}


async def video_upload_shown(graph: Any, lookup: dict[str, str]) -> str:
    """Whether the upload a lookup names finished: "complete", "in_progress" (its chunks never all arrived or it was
    never finished) or "gone" (Facebook has no such video)."""
    try:
        video = await graph.get(lookup["path"], {"fields": "status"})
    except NotFoundError:
        return "gone"
    phase = ((video.get("status") or {}).get("uploading_phase") or {}).get("status")
    return "complete" if phase == "complete" else "in_progress"


async def upload_video_file(
    ctx: OpContext,
    account_id: str,
    path: str,
    *,
    title: str | None = None,
    description: str | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
    wait: bool = True,
    wait_seconds: float = VIDEO_WAIT_SECONDS,
) -> dict:
    """Chunked upload (start / transfer / finish) streamed from disk in the chunks Facebook names, resuming from the
    offsets it names after a failed chunk; then waits for processing unless ``wait`` is false. {"video_id", ...}

    ``description`` is set with the title at the finish phase (a launch puts its step's tag there, to find the upload
    again instead of repeating it)."""
    account_id = normalize_ad_account_id(account_id)
    video = check_video_file(path)
    edge = f"{account_id}/advideos"
    label = f"uploading {video.name}"
    started = time.monotonic()
    start = await ctx.graph.post(edge, {"upload_phase": "start", "file_size": video.size})
    session_id, video_id = str(start["upload_session_id"]), str(start["video_id"])
    await ctx.record_made(video_id, video_upload_lookup(video_id, title or video.name))
    offset, end = int(start["start_offset"]), int(start["end_offset"])
    await _tell(on_progress, label, 0, video.size)
    chunks = resumed = failures = 0
    resumes: list[dict[str, Any]] = []
    while offset < end:
        try:
            answer = await ctx.graph.upload(
                edge,
                {"upload_phase": "transfer", "upload_session_id": session_id, "start_offset": str(offset)},
                {"video_file_chunk": (video.name, FileRange(video.path, offset, end), "application/octet-stream")},
            )
        except FacebookError as error:
            failures += 1
            named = _resume_offsets(error)
            retryable = named is not None or isinstance(error, (NetworkError, RateLimitError)) or error.is_transient
            if not retryable or failures > MAX_CHUNK_FAILURES:
                raise _upload_stopped(video, offset, failures, error) from error
            resumed += 1
            resumes.append(
                {"at": offset, "error": error.error_subcode or error.kind, "next": named[0] if named else offset}
            )
            if named is not None:
                offset, end = named  # Facebook says where it wants to continue: it may already hold the lost chunk
            else:
                await asyncio.sleep(backoff_delay(failures - 1, base=0.25, cap=5.0))  # same offsets again
            continue
        failures = 0
        chunks += 1
        offset, end = int(answer["start_offset"]), int(answer["end_offset"])
        await _tell(on_progress, label, min(offset, video.size), video.size)
    await ctx.graph.post(
        edge,
        _drop_none(
            {
                "upload_phase": "finish",
                "upload_session_id": session_id,
                "title": title or video.name,
                "description": description,
            }
        ),
        idempotent=True,
    )
    uploaded_s = time.monotonic() - started
    result = {
        "video_id": video_id,
        "id": video_id,
        "title": title or video.name,
        "size": video.size,
        "chunks": chunks,
        "resumed": resumed,
        "resumes": resumes,
        "upload_seconds": round(uploaded_s, 2),
        "status": "processing",
        "waited_seconds": 0.0,
    }
    if wait:
        status, waited = await wait_for_video(ctx, video_id, timeout=wait_seconds)
        result.update(
            status=status.get("video_status", "processing"),
            waited_seconds=round(waited, 1),
            processing_progress=status.get("processing_progress"),
        )
    return result


VIDEO_LOOKUP_LIMIT = 200  # the newest videos of the account a launch looks through for its own finished upload


async def find_finished_upload(ctx: OpContext, account_id: str, tag: str) -> str | None:
    """The newest video of the account whose description carries ``tag`` and whose bytes all arrived (Facebook keeps a
    finished upload; an unfinished session cannot be picked up again without its id), or None."""
    videos = await ctx.graph.get_all(
        f"{normalize_ad_account_id(account_id)}/advideos", {"fields": "id,description,status"}, limit=VIDEO_LOOKUP_LIMIT
    )
    for video in videos:
        status = video.get("status")
        status = status if isinstance(status, dict) else {}
        uploaded = (status.get("uploading_phase") or {}).get("status") == "complete"
        if tag in str(video.get("description") or "") and uploaded and status.get("video_status") != "error":
            return str(video["id"])
    return None


def _upload_stopped(video: VideoFile, offset: int, failures: int, error: FacebookError) -> FacebookError:
    error.message = (
        f"Video upload of {video.name} stopped at byte {offset:,} of {video.size:,} "
        f"({failures} failed attempt{'s' if failures != 1 else ''} at this chunk): {error.message}"
    )
    error.fix = f"{error.fix.rstrip('.')}; then run upload_video again (it starts a new upload session)"
    return error


async def wait_for_video(ctx: OpContext, video_id: str, *, timeout: float = VIDEO_WAIT_SECONDS) -> tuple[dict, float]:
    """Poll GET {video_id}?fields=status with backoff until ready, error or ``timeout``; (status, seconds waited)."""
    started = time.monotonic()
    delay = 0.25
    while True:
        answer = await ctx.graph.get(check_object_id(video_id, "video_id"), {"fields": "status"})
        status = answer.get("status")
        status = status if isinstance(status, dict) else {}
        state = status.get("video_status")
        waited = time.monotonic() - started
        if state == "ready":
            await report_progress(f"processing video {video_id}", 100, 100)
            return status, waited
        if state == "error":
            raise GraphError(
                f"Facebook could not process video {video_id}",
                fix="Check the file plays locally, then upload it again",
                blame_field="video_id",
                data={"video_status": status},
            )
        await report_progress(f"processing video {video_id}", int(_int(status.get("processing_progress")) or 0), 100)
        if waited + delay > timeout:
            return status, waited
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


# ---------------------------------------------------------------------------------------------------------------
# Creative bodies: building and local checks (C1-C7)
# ---------------------------------------------------------------------------------------------------------------

CreativeKind = Literal["image", "video", "carousel", "page_post"]


def _cta(call_to_action: Any, link: str | None) -> dict | None:
    if call_to_action in (None, ""):
        return None
    if isinstance(call_to_action, dict):
        cta = json.loads(json.dumps(call_to_action))
    else:
        cta = {"type": str(call_to_action).strip().upper()}
    if link and cta.get("type") not in NON_LINK_CTAS:
        cta.setdefault("value", {}).setdefault("link", link)
    return cta


def _drop_none(values: dict) -> dict:
    return {k: v for k, v in values.items() if v not in (None, "", [], {})}


def creative_spec(
    kind: str,
    *,
    page_id: str | None,
    instagram_user_id: str | None,
    message: str | None,
    link: str | None,
    headline: str | None,
    description: str | None,
    call_to_action: Any,
    image_hash: str | None = None,
    video_id: str | None = None,
    thumbnail_hash: str | None = None,
    cards: list[dict] | None = None,
    object_story_id: str | None = None,
    enhancements: dict[str, str] | None = None,
    thumbnail_url: str | None = None,
) -> dict:
    """The Graph body of a creative (without its name); raises ValidationError per C1-C7.

    ``cards``: [{"link", "image_hash" | "video_id" (+ "image_hash" thumbnail), "headline", "description", "call_to_action"}].
    ``enhancements``: {feature: OPT_IN|OPT_OUT} (see ``enhancement_features``); None sends no degrees_of_freedom_spec.
    """
    body: dict[str, Any] = {}
    if enhancements:
        body["degrees_of_freedom_spec"] = {
            "creative_features_spec": {feature: {"enroll_status": status} for feature, status in enhancements.items()}
        }
    if kind == "page_post":
        body["object_story_id"] = object_story_id
        if instagram_user_id:
            body["instagram_user_id"] = instagram_user_id
        check_creative_locally(body)
        return body
    story: dict[str, Any] = _drop_none({"page_id": page_id, "instagram_user_id": instagram_user_id})
    if kind == "image":
        story["link_data"] = _drop_none(
            {
                "link": link,
                "message": message,
                "name": headline,
                "description": description,
                "image_hash": image_hash,
                "call_to_action": _cta(call_to_action, link),
            }
        )
    elif kind == "video":
        story["video_data"] = _drop_none(
            {
                "video_id": video_id,
                "image_hash": thumbnail_hash,
                "image_url": None if thumbnail_hash else thumbnail_url,
                "title": headline,
                "message": message,
                "link_description": description,
                "call_to_action": _cta(call_to_action or ("LEARN_MORE" if link else None), link),
            }
        )
    elif kind == "carousel":
        attachments = []
        for card in cards or []:
            attachments.append(
                _drop_none(
                    {
                        "link": card.get("link"),
                        "name": card.get("headline") or card.get("name"),
                        "description": card.get("description"),
                        "image_hash": card.get("image_hash"),
                        "picture": card.get("picture"),
                        "video_id": card.get("video_id"),
                        "call_to_action": _cta(card.get("call_to_action"), card.get("link")),
                    }
                )
            )
        first_link = next((c.get("link") for c in attachments if c.get("link")), None)
        story["link_data"] = _drop_none(
            {
                "link": link or first_link,
                "message": message,
                "child_attachments": attachments,
                "call_to_action": _cta(call_to_action, link or first_link),
            }
        )
        story["link_data"].setdefault("child_attachments", [])
    else:
        raise ValidationError(
            f"Unknown creative kind {kind!r}", fix="Use image, video, carousel or page_post", blame_field="kind"
        )
    body["object_story_spec"] = story
    check_creative_locally(body)
    return body


def _is_web_link(value: Any) -> bool:
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        return False
    try:
        url = URL(value)
    except (ValueError, TypeError):
        return False
    host = url.host or ""
    return url.scheme in ("http", "https") and bool(host) and ("." in host or ":" in host or host == "localhost")


def _check_link(value: Any, where: str) -> None:
    if not _is_web_link(value):
        shown = (
            "missing" if value in (None, "") else repr(safe_url(str(value)) if "://" in str(value) else str(value)[:80])
        )
        raise rule_error(
            "C7",
            f"{where} must be an absolute http(s) URL (got {shown})",
            "Pass a full web address such as https://example.com/summer-sale",
        )


def _check_cta(cta: Any, fallback_link: str | None, where: str) -> None:
    if cta is None:
        return
    if not isinstance(cta, dict) or cta.get("type") not in CALL_TO_ACTION_TYPES:
        kind = cta.get("type") if isinstance(cta, dict) else cta
        raise rule_error(
            "C3",
            f"(#100) Param call_to_action[type] must be one of {{{', '.join(CALL_TO_ACTION_TYPES)}}} (got {kind!r} in {where})",
            "Use a call-to-action type such as SHOP_NOW, LEARN_MORE, SIGN_UP, BOOK_NOW, DOWNLOAD, CONTACT_US, "
            "APPLY_NOW, GET_OFFER or SUBSCRIBE",
        )
    if cta["type"] in NON_LINK_CTAS:
        return
    value = cta.get("value")
    value = value if isinstance(value, dict) else {}
    target = value.get("link") or fallback_link
    if not target:
        raise rule_error(
            "C3",
            f"call_to_action {cta['type']} in {where} needs a link (call_to_action.value.link)",
            "Pass link (the page the button opens)",
        )
    _check_link(target, f"{where} call_to_action link")


def _check_features(dof: Any) -> None:
    """C4: optional degrees_of_freedom_spec.creative_features_spec of individual features, never standard_enhancements."""
    if dof is None:
        return
    features = dof.get("creative_features_spec") if isinstance(dof, dict) else None
    if not isinstance(dof, dict) or not isinstance(features, (dict, type(None))):
        raise ValidationError(
            'degrees_of_freedom_spec must be {"creative_features_spec": {feature: {"enroll_status": …}}}',
            fix='Pass enhancements as {"text_optimizations": "OPT_OUT"}',
            code=100,
            blame_field="degrees_of_freedom_spec",
        )
    for feature, value in (features or {}).items():
        if feature in DEPRECATED_FEATURES:
            raise rule_error(
                "C4",
                "standard_enhancements was deprecated by Meta in v22.0 and is refused on a new creative",
                'Name individual features instead, e.g. enhancements={"image_touchups": "OPT_OUT"}, or '
                "enhancements=OPT_OUT for the set that replaced it",
            )
        if feature not in CREATIVE_FEATURES:
            close = difflib.get_close_matches(str(feature), CREATIVE_FEATURES, n=1)
            raise ValidationError(
                f"{str(feature)[:64]!r} is not an Advantage+ creative feature",
                fix=(f"Did you mean {close[0]!r}? " if close else "") + "Features: " + ", ".join(CREATIVE_FEATURES),
                code=100,
                blame_field="degrees_of_freedom_spec",
            )
        status = value.get("enroll_status") if isinstance(value, dict) else None
        if status not in ENROLL_STATUSES:
            raise ValidationError(
                f"{feature} enroll_status must be OPT_IN or OPT_OUT (got {status!r})",
                fix=f'Pass enhancements={{"{feature}": "OPT_OUT"}} or OPT_IN',
                code=100,
                blame_field="degrees_of_freedom_spec",
            )


def enhancement_features(kind: str, value: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """The features to send for an ``enhancements`` argument: None (send none: Facebook's defaults), OPT_IN/OPT_OUT
    (the individual features that replaced standard enhancements for an image or a video), or {feature: OPT_IN|OPT_OUT}."""
    if value is None:
        return None
    if isinstance(value, str):
        if kind not in STANDARD_SET:
            raise ValidationError(
                f"enhancements={value} names no features for a {kind} creative (Meta documents the "
                "standard set for single image and single video only)",
                fix='Name the features, e.g. enhancements={"text_optimizations": "OPT_OUT"}',
                code=100,
                blame_field="enhancements",
            )
        return {feature: value for feature in STANDARD_SET[kind]}
    return dict(value)


def describe_features(features: dict[str, str] | None) -> str:
    """One phrase for the person: which Advantage+ creative features were chosen."""
    if not features:
        return (
            "no Advantage+ creative features chosen (Facebook applies its defaults; pass enhancements=OPT_OUT to "
            "keep it as made)"
        )
    by_status: dict[str, list[str]] = {}
    for feature, status in features.items():
        by_status.setdefault(status, []).append(feature)
    return "; ".join(f"{', '.join(names)} {status}" for status, names in sorted(by_status.items()))


def _enhancements_alias(data: Any) -> Any:
    """standard_enhancements (the deprecated bundle) given as an argument means the features that replaced it."""
    if isinstance(data, dict) and "standard_enhancements" in data:
        data = dict(data)
        value = data.pop("standard_enhancements")
        if data.get("enhancements") is None and value is not None:
            data["enhancements"] = value
    return data


def check_creative_locally(body: dict) -> None:
    """Refuse a creative body Facebook would refuse (docs/creative_rules.md C1-C7), with the same code and subcode."""
    if not isinstance(body, dict):
        raise ValidationError(
            "A creative body must be an object", fix="Build it with creative_spec", blame_field="object_story_spec"
        )
    _check_features(body.get("degrees_of_freedom_spec"))
    instagram = body.get("instagram_user_id") or body.get("instagram_actor_id")
    story = body.get("object_story_spec")
    if story is None and "object_story_id" in body:
        if not _STORY_ID_RE.match(str(body.get("object_story_id") or "")):
            raise ValidationError(
                f"object_story_id {body.get('object_story_id')!r} is not a page post id",
                fix="Use the form <page_id>_<post_id>, e.g. 1234567890_9876543210",
                code=100,
                blame_field="object_story_id",
            )
        _check_instagram(instagram)
        return
    if not isinstance(story, dict):
        raise rule_error(
            "C1",
            "A creative needs object_story_spec (page_id and link_data or video_data) or object_story_id",
            "Pass page_id (or select a page with /use page <id>) and the creative's content",
        )
    if not _DIGITS_RE.match(str(story.get("page_id") or "")):
        raise rule_error(
            "C1",
            f"object_story_spec.page_id is {'missing' if not story.get('page_id') else repr(story.get('page_id'))}: "
            "a creative runs as a Facebook page",
            "Pass page_id (list_pages shows yours) or select one with /use page <id>",
        )
    _check_instagram(story.get("instagram_user_id") or story.get("instagram_actor_id") or instagram)
    link_data, video_data = story.get("link_data"), story.get("video_data")
    if (
        link_data is None
        and video_data is None
        and story.get("photo_data") is None
        and story.get("template_data") is None
    ):
        raise ValidationError(
            "object_story_spec needs link_data (image, carousel) or video_data",
            fix="Pass the creative's content",
            code=100,
            blame_field="object_story_spec",
        )
    if isinstance(link_data, dict):
        _check_link_data(link_data)
    if isinstance(video_data, dict):
        _check_video_data(video_data)


def _check_instagram(instagram: Any) -> None:
    if instagram not in (None, "") and not _DIGITS_RE.match(str(instagram)):
        raise rule_error(
            "C5",
            f"instagram_user_id {instagram!r} is not an Instagram account id",
            "Pass the numeric id of an Instagram account connected to the page (list_instagram_accounts)",
        )


def _check_link_data(link_data: dict) -> None:
    cards = link_data.get("child_attachments")
    if cards is not None:
        if not isinstance(cards, list) or not 2 <= len(cards) <= 10:
            count = len(cards) if isinstance(cards, list) else 0
            raise rule_error("C2", f"A carousel needs 2 to 10 cards, not {count}", "Pass between 2 and 10 cards")
        for index, card in enumerate(cards, 1):
            if not isinstance(card, dict):
                raise rule_error(
                    "C2", f"Carousel card {index} is not an object", "Give each card a link and an image or video"
                )
            if not (card.get("image_hash") or card.get("picture") or card.get("video_id")):
                raise rule_error(
                    "C2",
                    f"Carousel card {index} has no image or video",
                    "Give each card an image (hash, path or URL) or a video",
                )
            if not card.get("link"):
                raise rule_error("C2", f"Carousel card {index} has no link", "Give each card the link it opens")
            _check_link(card.get("link"), f"card {index} link")
            _check_cta(card.get("call_to_action"), card.get("link"), f"card {index}")
    _check_link(link_data.get("link"), "link_data.link")
    _check_cta(link_data.get("call_to_action"), link_data.get("link"), "link_data")


def _check_video_data(video_data: dict) -> None:
    if not _DIGITS_RE.match(str(video_data.get("video_id") or "")):
        raise ValidationError(
            f"video_data.video_id is {'missing' if not video_data.get('video_id') else repr(video_data.get('video_id'))}",
            fix="Upload the video first (upload_video) and pass its id",
            code=100,
            blame_field="video_id",
        )
    if not (video_data.get("image_hash") or video_data.get("image_url")):
        raise rule_error(
            "C6",
            "A video creative needs a thumbnail (video_data.image_hash or image_url)",
            "Pass thumbnail (an image hash, path or URL); by default the video's preferred thumbnail is used",
        )
    _check_cta(video_data.get("call_to_action"), None, "video_data")


async def create_creative_from_spec(
    ctx: OpContext, account_id: str, name: str, body: dict, *, tag: str | None = None, look_first: bool = False
) -> dict:
    """POST act_x/adcreatives with ``body`` after the local checks; never created twice (client tag + lookup).

    ``look_first``: the tag may already be on a creative (a resumed launch step), which is then answered instead."""
    account_id = normalize_ad_account_id(account_id)
    check_creative_locally(body)
    tag = tag or new_client_tag()
    path = f"{account_id}/adcreatives"
    created = await ctx.graph.create(
        path, {"name": name, **body}, lookup=CreateLookup(list_path=path, name=name, tag=tag), look_first=look_first
    )
    return {
        "id": str(created["id"]),
        "creative_id": str(created["id"]),
        "name": name,
        "recovered": bool(created.get("recovered")),
        "tag": tag,
    }


# ---------------------------------------------------------------------------------------------------------------
# Media references in op arguments: a hash/id, a local path or a URL
# ---------------------------------------------------------------------------------------------------------------

PENDING_HASH = "0" * 32  # stands in for the hash of an image not uploaded yet, so the body can be checked before
PENDING_VIDEO = "0"
PENDING_THUMBNAIL = "https://pending.invalid/thumbnail.jpg"


def is_image_hash(value: str) -> bool:
    return bool(_HASH_RE.match(value.strip()))


def check_image_reference(source: str, field: str) -> str:
    """Local checks of an image argument: a hash passes; a path must hold a valid image (M1); a URL must be http(s)."""
    source = str(source).strip()
    if not source:
        raise ValidationError(
            f"{field} is empty", fix="Pass an image hash, a local path or an http(s) URL", blame_field=field
        )
    if is_image_hash(source):
        return "hash"
    if _url_scheme(source) is not None:
        check_url_scheme(source, field)
        return "url"
    file = _existing_file(source, "image")
    size = file.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise rule_error(
            "M1",
            f"{source} is {size / 1024 / 1024:.1f} MB, over Facebook's 30 MB image limit",
            "Resize or recompress the image under 30 MB",
        )
    check_image_bytes(file.read_bytes(), file.name)
    return "path"


def check_video_reference(source: str, field: str) -> str:
    source = str(source).strip()
    if _DIGITS_RE.match(source):
        return "id"
    if _url_scheme(source) is not None:
        raise ValidationError(
            f"{field} must be a video id or a local file path, not a URL",
            fix="Download the video and pass its path, or upload it with upload_video",
            blame_field=field,
        )
    check_video_file(source)
    return "path"


class MediaResolver:
    """Turns the op's media arguments into hashes and video ids at execute time: uploads paths and URLs, checks
    given hashes belong to the account (M2) and given videos are ready (M4), finds default thumbnails."""

    def __init__(self, ctx: OpContext, account_id: str) -> None:
        self.ctx = ctx
        self.account_id = account_id
        self.uploaded: list[dict] = []
        self._known_hashes: set[str] | None = None

    async def image(self, source: str, field: str) -> str:
        source = str(source).strip()
        if is_image_hash(source):
            await self._check_hash(source.lower(), field)
            return source.lower()
        uploaded = await upload_image_source(self.ctx, self.account_id, source)
        self.uploaded.append({"kind": "image", "source": safe_url(source) if "://" in source else source, **uploaded})
        return uploaded["hash"]

    async def _check_hash(self, image_hash: str, field: str) -> None:
        if self._known_hashes is None or image_hash not in self._known_hashes:
            images = await self.ctx.graph.get_all(
                f"{self.account_id}/adimages", {"fields": "hash", "hashes": [image_hash]}
            )
            self._known_hashes = (self._known_hashes or set()) | {str(i.get("hash", "")).lower() for i in images}
        if image_hash not in self._known_hashes:
            raise rule_error(
                "M2",
                f"Image hash {image_hash} is not an image of {self.account_id}",
                "Upload the image to this ad account (upload_image) and use the hash it answers",
                blame_field=field,
            )

    async def video(self, source: str, field: str) -> str:
        source = str(source).strip()
        if _DIGITS_RE.match(source):
            video_id = source
        else:
            uploaded = await upload_video_file(self.ctx, self.account_id, source, wait=True)
            self.uploaded.append({"kind": "video", "source": source, **uploaded})
            video_id = uploaded["video_id"]
        answer = await self.ctx.graph.get(video_id, {"fields": "status"})
        state = (answer.get("status") or {}).get("video_status") if isinstance(answer.get("status"), dict) else None
        if state != "ready":
            raise rule_error(
                "M4",
                f"Video {video_id} is {state or 'not ready'}: a creative needs a processed (ready) video",
                f"Wait until get_video_status video_id={video_id} says ready, then call again with video={video_id}",
                blame_field=field if field != "video" else "video_id",
            )
        return video_id

    async def thumbnail(self, video_id: str) -> str:
        """The URL of the video's preferred thumbnail (GET {video_id}/thumbnails)."""
        thumbnails = await self.ctx.graph.get_all(
            f"{video_id}/thumbnails", {"fields": "id,uri,is_preferred,width,height"}, limit=50
        )
        chosen = next((t for t in thumbnails if t.get("is_preferred")), thumbnails[0] if thumbnails else None)
        if not chosen or not chosen.get("uri"):
            raise rule_error(
                "C6", f"Video {video_id} has no thumbnail yet", "Pass thumbnail (an image hash, path or URL)"
            )
        return str(chosen["uri"])


# ---------------------------------------------------------------------------------------------------------------
# Ops: images and videos
# ---------------------------------------------------------------------------------------------------------------

# ---- What the ops answer as data (their result models: MCP's outputSchema) ----------------------------------------
IMAGE_LIST_FIELDS = "hash,name,width,height,url,created_time"
VIDEO_STATUS_FIELDS = "id,title,status,length"
ListedImage = graph_object(AdImage, IMAGE_LIST_FIELDS, name="ListedImage")
VideoObject = graph_object(AdVideo, VIDEO_STATUS_FIELDS, name="VideoObject")


class StoredImage(DataRow):
    """An image stored in the ad account's library (what upload_image_bytes answers)."""

    hash: str = Field(description="The image hash: how creatives name the image (in this ad account only).")
    url: str = Field(description="Facebook's URL of the stored image.")
    width: int = Field(description="Pixels.")
    height: int = Field(description="Pixels.")
    name: str
    size: int = Field(description="Bytes.")
    format: str = Field(description="jpeg, png, gif, bmp, tiff or webp.")


class ChunkResume(DataRow):
    at: int = Field(description="Byte offset of the chunk that failed.")
    error: int | str = Field(description="Facebook's error subcode, else the error kind.")
    next: int = Field(description="Offset the upload went on from.")


class StoredVideo(DataRow):
    """A video uploaded in chunks (what upload_video_file answers)."""

    video_id: str
    id: str = Field(description="The same video id.")
    title: str
    size: int = Field(description="Bytes.")
    chunks: int = Field(description="Chunks sent.")
    resumed: int = Field(description="Chunks sent again after a failure.")
    resumes: list[ChunkResume]
    upload_seconds: float
    status: str = Field(description="Facebook's video_status after the wait: ready, processing or error.")
    waited_seconds: float = Field(description="Seconds spent waiting for processing (0 with wait=false).")
    processing_progress: int | None = Field(
        None, description="Percent processed when the wait ended (absent with wait=false)."
    )


class UploadedImage(OpData, StoredImage):
    ad_account_id: str
    object_ids: list[str] = Field(description="The image hash.")


class ImageList(OpData):
    ad_account_id: str
    images: list[ListedImage]  # type: ignore[valid-type]


class UploadedVideo(OpData, StoredVideo):
    ad_account_id: str
    object_ids: list[str] = Field(description="The video id.")


class VideoState(OpData):
    video_id: str
    video_status: str = Field(description="ready, processing, error, or unknown when Facebook answered no status.")
    video: VideoObject  # type: ignore[valid-type]


class UploadImageArgs(OpArgs):
    """Upload an image (local path or public http(s) URL; JPEG, PNG, GIF, BMP, TIFF or WebP up to 30 MB) to the ad account's image library and get its hash."""

    source: str = Field(
        ...,
        min_length=1,
        max_length=4000,
        description="Local file path or public http(s) URL (presigned S3 URLs work).",
        examples=["./banner.jpg", "https://example.com/banner.png"],
    )
    name: str | None = Field(
        None, min_length=1, max_length=200, description="File name to store it under (default: the file's name)."
    )
    ad_account_id: str | None = AdAccountArg


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.CREATIVES_LAUNCH,
    idempotent=True,
    example={"source": "./banner.jpg"},
    result=UploadedImage,
)
async def upload_image(ctx: OpContext, args: UploadImageArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    kind = check_image_reference(args.source, "source")
    if kind == "hash":
        raise ValidationError(
            f"{args.source} is already an image hash",
            fix="Use it directly as image in create_creative",
            blame_field="source",
        )
    path = f"{account_id}/adimages"
    shown = safe_url(args.source) if kind == "url" else args.source

    async def execute() -> OpResult:
        if kind == "url":
            image = await upload_image_source(ctx, account_id, args.source)
        else:
            data = await asyncio.to_thread(Path(os.path.expanduser(args.source.strip())).read_bytes)
            image = await upload_image_bytes(ctx, account_id, data, args.name or readable_name(args.source))
        text = (
            f"Uploaded {image['name']} to {account_id}: hash {image['hash']}, {image['width']}×{image['height']} px, "
            f"{_size_text(image['size'])} {image['format'].upper()}.\n"
            f'Use it with create_creative image="{image["hash"]}" (or as a carousel card\'s image); the hash works in '
            "this ad account only."
        )
        return OpResult(text=text, data={"ad_account_id": account_id, **image, "object_ids": [image["hash"]]})

    return WritePlan(
        summary=f"upload image {shown} to {account_id}",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", path, {"filename": shown})],
        changes=[Change(None, "image", os.path.basename(shown), "uploaded", None, shown)],
        execute=execute,
    )


def _size_text(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.1f} KB"


class ListImagesArgs(OpArgs):
    """List the images in the ad account's library: hash, name, size in pixels."""

    ad_account_id: str | None = AdAccountArg
    limit: int = Field(25, ge=1, le=500, description="How many images (1-500).")


@ops.op(OpKind.READ, group=TaskGroup.CREATIVES_LAUNCH, result=ImageList)
async def list_images(ctx: OpContext, args: ListImagesArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    images = await ctx.graph.get_all(f"{account_id}/adimages", {"fields": IMAGE_LIST_FIELDS}, limit=args.limit)
    if not images:
        return OpResult(
            text=f"No images in {account_id}. Upload one with upload_image.",
            data={"ad_account_id": account_id, "images": []},
        )
    lines = [f"Images in {account_id}, {len(images)} shown:"]
    lines += [f"  {i.get('hash')} · {i.get('name', '')} · {i.get('width', '?')}×{i.get('height', '?')}" for i in images]
    return OpResult(text="\n".join(lines), data={"ad_account_id": account_id, "images": images})


class UploadVideoArgs(OpArgs):
    """Upload a video file (MP4, MOV, WebM… up to 10 GB) in chunks, resuming after a lost chunk; waits for Facebook to process it unless wait=false."""

    source: str = Field(
        ...,
        min_length=1,
        max_length=4000,
        validation_alias=AliasChoices("source", "path"),
        description="The video file: a local path (as upload_image's source; `path` is read too).",
        examples=["./promo.mp4"],
    )
    title: str | None = Field(None, min_length=1, max_length=255, description="Video title (default: the file name).")
    ad_account_id: str | None = AdAccountArg
    wait: bool = Field(
        True, description="Wait (bounded, about 5 minutes) until processing is finished and the video is ready to use."
    )


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.CREATIVES_LAUNCH,
    example={"source": "./promo.mp4", "title": "Spring promo"},
    result=UploadedVideo,
)
async def upload_video(ctx: OpContext, args: UploadVideoArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    video = check_video_file(args.source)
    edge = f"{account_id}/advideos"

    async def execute() -> OpResult:
        result = await upload_video_file(ctx, account_id, video.path, title=args.title, wait=args.wait)
        lines = [
            f"Uploaded video {result['title']} ({result['video_id']}) to {account_id}: {_size_text(video.size)} {video.format} "
            f"in {result['chunks']} chunk{'s' if result['chunks'] != 1 else ''}, {result['upload_seconds']:.1f} s"
            + (f", resumed {result['resumed']}× after failed chunks" if result["resumed"] else "")
            + "."
        ]
        if result["status"] == "ready":
            lines.append(
                f"Processing finished (waited {result['waited_seconds']:.1f} s): ready. Use it with create_creative "
                f'kind=video video="{result["video_id"]}".'
            )
        elif args.wait:
            lines.append(
                f"Still {result['status']} after waiting {result['waited_seconds']:.0f} s; check with get_video_status "
                f"video_id={result['video_id']} before using it in a creative."
            )
        else:
            lines.append(
                f"Facebook is processing it; get_video_status video_id={result['video_id']} says when it is ready."
            )
        return OpResult(
            text="\n".join(lines), data={"ad_account_id": account_id, **result, "object_ids": [result["video_id"]]}
        )

    return WritePlan(
        summary=f"upload video {video.name} ({_size_text(video.size)}) to {account_id}",
        ad_account_id=account_id,
        requests=[
            GraphRequest("POST", edge, {"upload_phase": "start", "file_size": video.size}),
            GraphRequest("POST", edge, {"upload_phase": "transfer", "video_file_chunk": f"<chunks of {video.name}>"}),
            GraphRequest("POST", edge, {"upload_phase": "finish", "title": args.title or video.name}),
        ],
        changes=[Change(None, "video", args.title or video.name, "uploaded", None, video.path)],
        execute=execute,
    )


class GetVideoStatusArgs(OpArgs):
    """Show whether an uploaded video is still processing, ready to use in a creative, or failed."""

    video_id: str = Field(..., description="The video id (digits) from upload_video.")


@ops.op(OpKind.READ, group=TaskGroup.CREATIVES_LAUNCH, result=VideoState)
async def get_video_status(ctx: OpContext, args: GetVideoStatusArgs) -> OpResult:
    video_id = check_object_id(args.video_id, "video_id")
    video = await ctx.graph.get(video_id, {"fields": VIDEO_STATUS_FIELDS})
    status = video.get("status")
    status = status if isinstance(status, dict) else {}
    state = status.get("video_status", "unknown")
    progress = status.get("processing_progress")
    text = f"Video {video.get('title') or ''} ({video_id}): {state}" + (
        f", {progress}% processed" if progress not in (None, "") and state != "ready" else ""
    )
    text += {
        "ready": ". Ready for create_creative kind=video.",
        "error": ". Facebook could not process it: upload it again.",
    }.get(state, ".")
    return OpResult(text=text, data={"video_id": video_id, "video_status": state, "video": video})


# ---------------------------------------------------------------------------------------------------------------
# Ops: creatives
# ---------------------------------------------------------------------------------------------------------------

# ---- What the ops answer as data ------------------------------------------------------------------------------------
CREATIVE_FIELDS = "id,name,account_id,status,object_type,object_story_spec,object_story_id,thumbnail_url,degrees_of_freedom_spec,call_to_action_type"
CREATIVE_LIST_FIELDS = "id,name,status,object_type,thumbnail_url"
ListedCreative = graph_object(AdCreative, CREATIVE_LIST_FIELDS, name="ListedCreative")
CreativeObject = graph_object(AdCreative, CREATIVE_FIELDS, name="CreativeObject")


class UploadedImageMedium(StoredImage):
    kind: Literal["image"]
    source: str = Field(description="The path or URL (without its query) the image came from.")


class UploadedVideoMedium(StoredVideo):
    kind: Literal["video"]
    source: str = Field(description="The path the video came from.")


class CreatedCreative(OpData):
    id: str
    creative_id: str = Field(description="The same id.")
    ad_account_id: str
    kind: CreativeKind
    name: str
    page_id: str | None = Field(description="The page the ad runs as; null for a page post creative without page_id.")
    instagram_account_id: str | None
    enhancements: dict[str, EnrollStatus] = Field(
        description="Advantage+ creative features sent (feature -> OPT_IN/OPT_OUT)."
    )
    uploaded: list[UploadedImageMedium | UploadedVideoMedium] = Field(
        description="Media uploaded first, from paths or URLs."
    )
    body: dict[str, Any] = Field(
        description="The creative as sent to act_<id>/adcreatives (object_story_spec and the rest)."
    )
    recovered: bool = Field(description="True when the create's answer was lost and the creative was found afterwards.")


class CreativeList(OpData):
    ad_account_id: str
    creatives: list[ListedCreative]  # type: ignore[valid-type]


class CreativeData(OpData):
    creative: CreativeObject  # type: ignore[valid-type]


class Card(BaseModel):
    """One carousel card."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    image: str | None = Field(None, description="Image hash, local path or http(s) URL.")
    video: str | None = Field(None, description="Video id or local path (its preferred thumbnail is used).")
    link: str = Field(..., description="Absolute http(s) URL the card opens.")
    headline: str | None = Field(None, max_length=255, description="Card headline.")
    description: str | None = Field(None, max_length=255, description="Card description.")

    @model_validator(mode="after")
    def _one_medium(self) -> Card:
        if bool(self.image) == bool(self.video):
            raise ValueError("each card needs exactly one of image or video")
        return self


class CreativeContentArgs(OpArgs):
    kind: CreativeKind = Field(
        ..., description="image (single image), video, carousel (2-10 cards) or page_post (an existing page post)."
    )
    message: str | None = Field(None, max_length=5000, description="Primary text shown above the ad.")
    link: str | None = Field(
        None,
        max_length=2000,
        description="Absolute http(s) URL the ad opens (required for image; the button's link for video).",
    )
    headline: str | None = Field(None, max_length=255, description="Headline (link title; the video title for video).")
    description: str | None = Field(None, max_length=255, description="Link description under the headline.")
    call_to_action: CallToActionType | None = Field(
        None, description="Button type from Facebook's AdCreative.CallToActionType, e.g. SHOP_NOW, LEARN_MORE, SIGN_UP."
    )
    image: str | None = Field(
        None, description="kind=image: an image hash, a local path or an http(s) URL (uploaded first)."
    )
    video: str | None = Field(
        None, description="kind=video: a video id, or a local path (uploaded and processed first)."
    )
    thumbnail: str | None = Field(
        None, description="kind=video: thumbnail image hash, path or URL; default the video's preferred thumbnail."
    )
    cards: list[Card] | None = Field(
        None, description="kind=carousel: 2-10 cards, each {image|video, link, headline, description}."
    )
    object_story_id: str | None = Field(None, description="kind=page_post: the post id, <page_id>_<post_id>.")
    page_id: str | None = Field(None, description="Facebook page the ad runs as; default the selected page.")
    instagram_account_id: str | None = Field(
        None, description="Instagram account for Instagram placements; default the selected one."
    )
    enhancements: EnrollStatus | dict[str, EnrollStatus] | None = Field(
        None,
        description="Advantage+ creative features: none (default: Facebook's defaults), OPT_OUT or OPT_IN (image/video: "
        "the set that replaced standard enhancements: templates, touch-ups, text optimizations, comments, "
        'video auto-crop), or per feature, e.g. {"text_optimizations": "OPT_OUT"}.',
    )
    ad_account_id: str | None = AdAccountArg

    @model_validator(mode="before")
    @classmethod
    def _standard_enhancements(cls, data: Any) -> Any:
        return _enhancements_alias(data)

    @model_validator(mode="after")
    def _kind_fields(self) -> CreativeContentArgs:
        needs = {"image": ["image"], "video": ["video"], "carousel": ["cards"], "page_post": ["object_story_id"]}[
            self.kind
        ]
        missing = [f for f in needs if not getattr(self, f)]
        if missing:
            raise ValueError(f"kind={self.kind} needs {', '.join(missing)}")
        foreign = [
            f
            for f in ("image", "video", "thumbnail", "cards", "object_story_id")
            if getattr(self, f) and f not in needs and not (self.kind == "video" and f == "thumbnail")
        ]
        if foreign:
            raise ValueError(f"kind={self.kind} does not take {', '.join(foreign)}")
        return self


class CreateCreativeArgs(CreativeContentArgs):
    """Create an ad creative (image, video, carousel or existing page post); media given as paths or URLs are uploaded first. Spends nothing."""

    name: str = Field(..., min_length=1, max_length=400, description="Creative name.", examples=["Summer sale · image"])


def _card_count_check(cards: list[Any] | None) -> None:
    if cards is not None and not 2 <= len(cards) <= 10:
        raise rule_error("C2", f"A carousel needs 2 to 10 cards, not {len(cards)}", "Pass between 2 and 10 cards")


def check_media_arguments(args: CreativeContentArgs) -> list[tuple[str, str, str]]:
    """Local checks of every media argument (no request): [(argument, "image"|"video", "hash"|"id"|"path"|"url")]."""
    _card_count_check(args.cards)
    media: list[tuple[str, str, str]] = []
    if args.image:
        media.append(("image", "image", check_image_reference(args.image, "image")))
    if args.video:
        media.append(("video", "video", check_video_reference(args.video, "video")))
    if args.thumbnail:
        media.append(("thumbnail", "image", check_image_reference(args.thumbnail, "thumbnail")))
    for index, card in enumerate(args.cards or []):
        if card.image:
            media.append((f"cards[{index}].image", "image", check_image_reference(card.image, f"cards[{index}].image")))
        if card.video:
            media.append((f"cards[{index}].video", "video", check_video_reference(card.video, f"cards[{index}].video")))
    return media


def _spec_from_args(
    args: CreativeContentArgs,
    page_id: str | None,
    instagram: str | None,
    *,
    image_hash: str | None = None,
    video_id: str | None = None,
    thumbnail_hash: str | None = None,
    thumbnail_url: str | None = None,
    cards: list[dict] | None = None,
) -> dict:
    return creative_spec(
        args.kind,
        page_id=page_id,
        instagram_user_id=instagram,
        message=args.message,
        link=args.link,
        headline=args.headline,
        description=args.description,
        call_to_action=args.call_to_action,
        image_hash=image_hash,
        video_id=video_id,
        thumbnail_hash=thumbnail_hash,
        thumbnail_url=thumbnail_url,
        cards=cards,
        object_story_id=args.object_story_id,
        enhancements=enhancement_features(args.kind, args.enhancements),
    )


def _pending_spec(args: CreativeContentArgs, page_id: str | None, instagram: str | None) -> dict:
    """The body with stand-ins for media not uploaded yet: every rule is checked before anything is sent."""
    cards = (
        [
            {
                "link": c.link,
                "headline": c.headline,
                "description": c.description,
                "image_hash": (c.image if c.image and is_image_hash(c.image) else PENDING_HASH)
                if c.image
                else PENDING_HASH,
                "video_id": (c.video if _DIGITS_RE.match(c.video) else PENDING_VIDEO) if c.video else None,
            }
            for c in args.cards or []
        ]
        if args.kind == "carousel"
        else None
    )
    return _spec_from_args(
        args,
        page_id,
        instagram,
        image_hash=(args.image if is_image_hash(args.image) else PENDING_HASH) if args.image else None,
        video_id=(args.video if _DIGITS_RE.match(args.video) else PENDING_VIDEO) if args.video else None,
        thumbnail_hash=(args.thumbnail if is_image_hash(args.thumbnail) else PENDING_HASH) if args.thumbnail else None,
        thumbnail_url=None if args.thumbnail else PENDING_THUMBNAIL,
        cards=cards,
    )


async def resolve_spec(
    ctx: OpContext,
    account_id: str,
    args: CreativeContentArgs,
    page_id: str | None,
    instagram: str | None,
    media: MediaResolver,
) -> dict:
    """The real body: media uploaded or checked (M2, M4), default thumbnails found."""
    image_hash = await media.image(args.image, "image") if args.image else None
    video_id = await media.video(args.video, "video") if args.video else None
    thumbnail_hash = await media.image(args.thumbnail, "thumbnail") if args.thumbnail else None
    thumbnail_url = await media.thumbnail(video_id) if video_id and not thumbnail_hash else None
    cards = None
    if args.kind == "carousel":
        cards = []
        for index, card in enumerate(args.cards or []):
            entry: dict[str, Any] = {"link": card.link, "headline": card.headline, "description": card.description}
            if card.image:
                entry["image_hash"] = await media.image(card.image, f"cards[{index}].image")
            elif card.video:
                entry["video_id"] = await media.video(card.video, f"cards[{index}].video")
                entry["picture"] = await media.thumbnail(entry["video_id"])
            cards.append(entry)
    return _spec_from_args(
        args,
        page_id,
        instagram,
        image_hash=image_hash,
        video_id=video_id,
        thumbnail_hash=thumbnail_hash,
        thumbnail_url=thumbnail_url,
        cards=cards,
    )


def _uploads_text(uploaded: list[dict]) -> str:
    parts = []
    for item in uploaded:
        if item["kind"] == "image":
            parts.append(f"image {item['source']} → hash {item['hash']}")
        else:
            parts.append(f"video {item['source']} → {item['video_id']} ({item.get('status')})")
    return ("Uploaded first: " + "; ".join(parts) + ".\n") if parts else ""


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.CREATIVES_LAUNCH,
    example={
        "kind": "image",
        "name": "Summer · image",
        "image": "./banner.jpg",
        "link": "https://example.com/sale",
        "message": "Summer sale: 30% off",
        "headline": "Shop the sale",
        "call_to_action": "SHOP_NOW",
    },
    result=CreatedCreative,
)
async def create_creative(ctx: OpContext, args: CreateCreativeArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    page_id = args.page_id or ctx.page_id
    instagram = args.instagram_account_id or ctx.instagram_account_id
    media = check_media_arguments(args)
    pending = _pending_spec(args, page_id, instagram)  # C1-C7 on the whole body, before any upload
    path = f"{account_id}/adcreatives"
    tag = new_client_tag()
    requests = [
        GraphRequest("POST", f"{account_id}/ad{medium}s", {"source": argument})
        for argument, medium, given_as in media
        if given_as in ("path", "url")
    ]
    requests.append(GraphRequest("POST", path, {"name": args.name, **pending, "adlabels": [{"name": tag}]}))

    async def execute() -> OpResult:
        resolver = MediaResolver(ctx, account_id)
        body = await resolve_spec(ctx, account_id, args, page_id, instagram, resolver)
        created = await create_creative_from_spec(ctx, account_id, args.name, body, tag=tag)
        where = f"page {page_id}" if page_id else "its page post"
        if instagram:
            where += f" and Instagram account {instagram}"
        features = enhancement_features(args.kind, args.enhancements)
        enhancements = describe_features(features)
        recovered = (
            " (its first answer was lost; found it instead of creating it twice)" if created["recovered"] else ""
        )
        thumbnail = (
            "; thumbnail: the video's preferred thumbnail (pass thumbnail to choose another)"
            if args.kind == "video" and not args.thumbnail
            else ""
        )
        text = (
            f"{_uploads_text(resolver.uploaded)}Created {args.kind} creative {args.name} ({created['id']}) for {where}; "
            f"{enhancements}{thumbnail}{recovered}. It spends nothing by itself.\n"
            f"Next: preview_ad creative_id={created['id']}, then create an ad with this creative_id in an ad set."
        )
        return OpResult(
            text=text,
            data={
                "id": created["id"],
                "creative_id": created["id"],
                "ad_account_id": account_id,
                "kind": args.kind,
                "name": args.name,
                "page_id": page_id,
                "instagram_account_id": instagram,
                "enhancements": features or {},
                "uploaded": resolver.uploaded,
                "body": body,
                "recovered": created["recovered"],
            },
        )

    return WritePlan(
        summary=f"create {args.kind} creative {args.name} in {account_id}",
        ad_account_id=account_id,
        requests=requests,
        changes=[Change(None, "creative", args.name, "kind", None, args.kind)],
        execute=execute,
    )


class ListCreativesArgs(OpArgs):
    """List the ad account's creatives: id, name, type."""

    ad_account_id: str | None = AdAccountArg
    limit: int = Field(25, ge=1, le=500, description="How many creatives (1-500).")


@ops.op(OpKind.READ, group=TaskGroup.CREATIVES_LAUNCH, result=CreativeList)
async def list_creatives(ctx: OpContext, args: ListCreativesArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    creatives = await ctx.graph.get_all(f"{account_id}/adcreatives", {"fields": CREATIVE_LIST_FIELDS}, limit=args.limit)
    if not creatives:
        return OpResult(
            text=f"No creatives in {account_id}. Make one with create_creative.",
            data={"ad_account_id": account_id, "creatives": []},
        )
    lines = [f"Creatives in {account_id}, {len(creatives)} shown:"]
    lines += [
        f"  {c['id']} · {c.get('name', '')} · {c.get('object_type') or '?'} · {c.get('status') or ''}".rstrip(" ·")
        for c in creatives
    ]
    return OpResult(text="\n".join(lines), data={"ad_account_id": account_id, "creatives": creatives})


class GetCreativeArgs(OpArgs):
    """Show one creative: page, text, link, call to action, media."""

    creative_id: str = Field(..., description="The creative id (digits).")


def describe_creative(creative: dict) -> str:
    lines = [
        f"Creative {creative.get('name', '')} ({creative['id']})"
        + (f", {creative['status']}" if creative.get("status") else "")
    ]
    story = creative.get("object_story_spec") or {}
    if creative.get("object_story_id"):
        lines.append(f"  page post {creative['object_story_id']}")
    if story.get("page_id"):
        lines.append(
            f"  page {story['page_id']}"
            + (f" · Instagram {story['instagram_user_id']}" if story.get("instagram_user_id") else "")
        )
    content = story.get("link_data") or story.get("video_data") or {}
    for key, label in (
        ("message", "text"),
        ("name", "headline"),
        ("title", "headline"),
        ("description", "description"),
        ("link", "link"),
        ("image_hash", "image"),
        ("video_id", "video"),
    ):
        if content.get(key):
            lines.append(f"  {label} {content[key]}")
    if content.get("child_attachments"):
        lines.append(f"  carousel of {len(content['child_attachments'])} cards")
    if (content.get("call_to_action") or {}).get("type"):
        lines.append(f"  button {content['call_to_action']['type']}")
    features = (creative.get("degrees_of_freedom_spec") or {}).get("creative_features_spec") or {}
    chosen = {name: (value or {}).get("enroll_status") for name, value in features.items() if isinstance(value, dict)}
    if chosen:
        lines.append(f"  Advantage+ creative features: {describe_features({k: v for k, v in chosen.items() if v})}")
    return "\n".join(lines)


@ops.op(OpKind.READ, group=TaskGroup.CREATIVES_LAUNCH, result=CreativeData)
async def get_creative(ctx: OpContext, args: GetCreativeArgs) -> OpResult:
    creative = await ctx.graph.get(check_object_id(args.creative_id, "creative_id"), {"fields": CREATIVE_FIELDS})
    return OpResult(text=describe_creative(creative), data={"creative": creative})


# ---------------------------------------------------------------------------------------------------------------
# Ops: previews (HTML files, PNGs through headless Chromium)
# ---------------------------------------------------------------------------------------------------------------


# ---- What the op answers as data ----------------------------------------------------------------------------------


class PreviewFile(DataRow):
    format: PreviewFormat
    ad_format: str = Field(description="Facebook's AdPreview.AdFormat it was asked as.")
    html: str = Field(description="The HTML file written (absolute path).")
    png: str | None = Field(description="The PNG written with png=true; null without one.")
    src: str | None = Field(description="The preview's web address in Facebook's iframe; null when it has none.")
    png_error: str | None = Field(description="Why no PNG was made with png=true; null otherwise.")


class Previews(OpData):
    subject: str = Field(description="What was previewed, in words.")
    out_dir: str = Field(description="The folder the files were written to (absolute path).")
    chromium: str | None = Field(description="The Chromium used for PNGs; null when none was used or found.")
    previews: list[PreviewFile]


PREVIEW_CONTENT_FIELDS = (
    "message",
    "link",
    "headline",
    "description",
    "call_to_action",
    "image",
    "video",
    "thumbnail",
    "cards",
    "object_story_id",
    "page_id",
    "instagram_account_id",
    "enhancements",
    "ad_account_id",
)


class PreviewAdArgs(OpArgs):
    """Preview an ad, a creative, or a creative not made yet, in feed/story/reels formats; saves HTML files (and PNGs with png=true)."""

    ad_id: str | None = Field(None, description="Preview this ad.")
    creative_id: str | None = Field(None, description="Preview this creative.")
    kind: CreativeKind | None = Field(
        None,
        description="Preview a creative before making it: its kind plus the create_creative content fields (media as hashes and video ids).",
    )
    message: str | None = Field(None, max_length=5000, description="Primary text (with kind).")
    link: str | None = Field(None, max_length=2000, description="Link (with kind).")
    headline: str | None = Field(None, max_length=255, description="Headline (with kind).")
    description: str | None = Field(None, max_length=255, description="Description (with kind).")
    call_to_action: CallToActionType | None = Field(None, description="Button type (with kind).")
    image: str | None = Field(None, description="Image hash (with kind=image).")
    video: str | None = Field(None, description="Video id (with kind=video).")
    thumbnail: str | None = Field(
        None, description="Thumbnail image hash (with kind=video); default the video's preferred thumbnail."
    )
    cards: list[Card] | None = Field(
        None, description="Carousel cards with image hashes or video ids (with kind=carousel)."
    )
    object_story_id: str | None = Field(None, description="Page post id (with kind=page_post).")
    page_id: str | None = Field(None, description="Page (with kind); default the selected page.")
    instagram_account_id: str | None = Field(
        None, description="Instagram account (with kind); default the selected one."
    )
    enhancements: EnrollStatus | dict[str, EnrollStatus] | None = Field(
        None,
        description="With kind: Advantage+ creative features, as for create_creative (OPT_OUT, OPT_IN or per feature).",
    )
    formats: list[PreviewFormat] = Field(
        default_factory=lambda: ["mobile_feed", "instagram_feed"],
        min_length=1,
        max_length=7,
        description="Placements to preview: desktop_feed, mobile_feed, instagram_feed, instagram_story, "
        "instagram_reels, facebook_reels, facebook_story.",
    )
    png: bool = Field(False, description="Also render each preview to a PNG with headless Chromium (when installed).")
    out_dir: str | None = Field(
        None,
        max_length=1000,
        description=f"Folder inside the workspace's own files folder (relative; default {DEFAULT_PREVIEW_DIR}).",
    )
    ad_account_id: str | None = AdAccountArg

    @model_validator(mode="before")
    @classmethod
    def _standard_enhancements(cls, data: Any) -> Any:
        return _enhancements_alias(data)

    @model_validator(mode="after")
    def _one_subject(self) -> PreviewAdArgs:
        given = [n for n in ("ad_id", "creative_id", "kind") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("pass exactly one of ad_id, creative_id, or kind with the creative's content")
        # An ad or a creative is previewed as it is: a content field (or a page, an account) beside its id would be
        # silently ignored, so it is refused and the caller learns it had no effect.
        content = [f for f in PREVIEW_CONTENT_FIELDS if getattr(self, f) not in (None, [], {})]
        if not self.kind and content:
            raise ValueError(
                f"{', '.join(content)} go(es) with kind (a creative not made yet), not with ad_id or creative_id"
            )
        if self.kind:
            try:
                content_args(self)
            except PydanticValidationError as exc:
                raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
        self.formats = list(dict.fromkeys(self.formats))
        return self


def content_args(args: BaseModel) -> CreativeContentArgs:
    """The creative content fields of a preview's arguments, validated like create_creative's."""
    return CreativeContentArgs.model_validate(
        args.model_dump(include=set(CreativeContentArgs.model_fields), exclude_none=True)
    )


@dataclass
class Preview:
    format: str
    ad_format: str
    body: str
    html_path: str = ""
    png_path: str | None = None
    png_error: str | None = None

    @property
    def src(self) -> str | None:
        match = re.search(r"""src\s*=\s*["']([^"']+)["']""", self.body)
        return html.unescape(match.group(1)) if match else None

    @property
    def size(self) -> tuple[int, int]:
        width = re.search(r"""width\s*=\s*["']?(\d+)""", self.body)
        height = re.search(r"""height\s*=\s*["']?(\d+)""", self.body)
        return (int(width.group(1)) if width else 540, int(height.group(1)) if height else 690)


async def _preview_bodies(ctx: OpContext, args: PreviewAdArgs) -> tuple[str, str, list[Preview]]:
    """(subject label, file stem, previews) from Facebook, one request per format, sent together."""
    if args.ad_id:
        ad_id = check_object_id(args.ad_id, "ad_id")
        requests = [
            (name, ctx.graph.get(f"{ad_id}/previews", {"ad_format": PREVIEW_FORMATS[name]})) for name in args.formats
        ]
        label, stem = f"ad {ad_id}", f"ad-{ad_id}"
    else:
        if args.creative_id:
            creative_id = check_object_id(args.creative_id, "creative_id")
            creative = await ctx.graph.get(
                creative_id, {"fields": "id,name,account_id,object_story_spec,object_story_id"}
            )
            account_id = (
                f"act_{creative['account_id']}"
                if creative.get("account_id")
                else ctx.require_ad_account(args.ad_account_id)
            )
            spec = {k: creative[k] for k in ("object_story_spec", "object_story_id") if creative.get(k)}
            label, stem = f"creative {creative.get('name', '')} ({creative_id})", f"creative-{creative_id}"
        else:
            account_id = ctx.require_ad_account(args.ad_account_id)
            content = content_args(args)
            spec = await _preview_spec(ctx, account_id, content)
            label, stem = f"a {args.kind} creative not created yet", f"draft-{args.kind}-{int(time.time())}"
        requests = [
            (
                name,
                ctx.graph.get(f"{account_id}/generatepreviews", {"creative": spec, "ad_format": PREVIEW_FORMATS[name]}),
            )
            for name in args.formats
        ]
    answers = await asyncio.gather(*(request for _, request in requests))
    previews = []
    for (name, _), answer in zip(requests, answers):
        data = answer.get("data") if isinstance(answer, dict) else None
        body = data[0].get("body") if data and isinstance(data[0], dict) else None
        if not body:
            raise GraphError(f"Facebook answered no preview for {name}", fix="Try another format")
        previews.append(Preview(name, PREVIEW_FORMATS[name], body))
    return label, stem, previews


async def _preview_spec(ctx: OpContext, account_id: str, args: CreativeContentArgs) -> dict:
    """A draft creative's body for generatepreviews: media by hash or id only (a preview uploads nothing)."""
    for name, value in (("image", args.image), ("thumbnail", args.thumbnail)):
        if value and not is_image_hash(value):
            raise ValidationError(
                f"A preview takes {name} as an image hash, not {value!r}",
                fix="Upload it first with upload_image and pass the hash, or create_creative then preview_ad creative_id=…",
                blame_field=name,
            )
    if args.video and not _DIGITS_RE.match(args.video):
        raise ValidationError(
            "A preview takes video as a video id", fix="Upload it first with upload_video", blame_field="video"
        )
    for card in args.cards or []:
        if (card.image and not is_image_hash(card.image)) or (card.video and not _DIGITS_RE.match(card.video)):
            raise ValidationError(
                "A preview takes carousel media as image hashes and video ids",
                fix="Upload them first with upload_image / upload_video",
                blame_field="cards",
            )
    page_id = args.page_id or ctx.page_id
    instagram = args.instagram_account_id or ctx.instagram_account_id
    _pending_spec(args, page_id, instagram)  # every local rule first
    media = MediaResolver(ctx, account_id)
    thumbnail_url = await media.thumbnail(args.video) if args.video and not args.thumbnail else None
    cards = None
    if args.kind == "carousel":
        cards = [
            {
                "link": c.link,
                "headline": c.headline,
                "description": c.description,
                "image_hash": c.image,
                "video_id": c.video,
                "picture": await media.thumbnail(c.video) if c.video else None,
            }
            for c in args.cards or []
        ]
    return _spec_from_args(
        args,
        page_id,
        instagram,
        image_hash=args.image,
        video_id=args.video,
        thumbnail_hash=args.thumbnail,
        thumbnail_url=thumbnail_url,
        cards=cards,
    )


def preview_page(title: str, body: str) -> str:
    """The iframe Facebook answers, wrapped in a minimal page that opens in any browser."""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        f'<body style="margin:0;padding:16px;background:#f0f2f5">\n{body}\n</body></html>\n'
    )


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


async def render_png(
    chromium: str, url: str, png_path: str, width: int, height: int, timeout: float = CHROMIUM_TIMEOUT
) -> None:
    """Screenshot ``url`` with headless Chromium into ``png_path``; RuntimeError with the reason when it fails."""
    with tempfile.TemporaryDirectory(prefix="admonster-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png_path}",
            url,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"Chromium took longer than {timeout:.0f} s") from None
    if not os.path.exists(png_path) or os.path.getsize(png_path) == 0:
        last = (stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"Chromium wrote no screenshot (exit {process.returncode}: {last[0][:200]})")


@ops.op(
    OpKind.READ,
    group=TaskGroup.CREATIVES_LAUNCH,
    example={"creative_id": "120210000000000001", "formats": ["mobile_feed", "instagram_story"], "png": True},
    result=Previews,
)
async def preview_ad(ctx: OpContext, args: PreviewAdArgs) -> OpResult:
    label, stem, previews = await _preview_bodies(ctx, args)
    folder = output_file(ctx, args.out_dir, DEFAULT_PREVIEW_DIR, stem)  # an unguessable folder of its own
    folder.mkdir()
    files: list[str] = []
    for preview in previews:
        target = folder / f"{stem}-{preview.format}.html"
        target.write_text(preview_page(f"Preview of {label} · {preview.format}", preview.body), encoding="utf-8")
        preview.html_path = str(target.resolve())
        files.append(preview.html_path)
    chromium = find_chromium() if args.png else None
    notes = []
    if args.png and chromium is None:
        notes.append(
            f"No PNGs: Chromium is not installed (looked for {', '.join(CHROMIUM_NAMES)} on PATH); the HTML files open in any browser."
        )
    elif chromium is not None:  # args.png
        for preview in previews:
            src = preview.src
            if not src or not src.startswith(("http://", "https://")):
                preview.png_error = "the preview has no web address to render"
                continue
            target = folder / f"{stem}-{preview.format}.png"
            try:
                await render_png(chromium, src, str(target), *preview.size)
            except (RuntimeError, OSError) as exc:
                preview.png_error = str(exc)
                continue
            preview.png_path = str(target.resolve())
            files.append(preview.png_path)
        failed = [f"{p.format} ({p.png_error})" for p in previews if p.png_error]
        if failed:
            notes.append("PNG not made for " + "; ".join(failed) + ".")
    lines = [f"Previews of {label}, {len(previews)} format{'s' if len(previews) != 1 else ''} in {folder}:"]
    for preview in previews:
        lines.append(
            f"  {preview.format} ({preview.ad_format}): {os.path.basename(preview.html_path)}"
            + (f" + {os.path.basename(preview.png_path)}" if preview.png_path else "")
        )
    lines += notes
    data = {
        "subject": label,
        "out_dir": str(folder.resolve()),
        "chromium": chromium,
        "previews": [
            {
                "format": p.format,
                "ad_format": p.ad_format,
                "html": p.html_path,
                "png": p.png_path,
                "src": p.src,
                "png_error": p.png_error,
            }
            for p in previews
        ],
    }
    return OpResult(text="\n".join(lines), data=data, files=files)


# ===============================================================================================================
# Ads
# ===============================================================================================================

F = Ad.Field
AD_FIELDS = ",".join(
    [
        F.id,
        F.name,
        F.account_id,
        F.adset_id,
        F.campaign_id,
        F.status,
        F.configured_status,
        F.effective_status,
        "creative{id,name}",
        F.issues_info,
        F.ad_review_feedback,
        F.tracking_specs,
        F.created_time,
        F.updated_time,
    ]
)
LIST_FIELDS = ",".join([F.id, F.name, F.adset_id, F.status, F.effective_status, "creative{id}"])
AD_EFFECTIVE_STATUSES = sdk_enum_values(Ad.EffectiveStatus)
AD_STATUS_OPTIONS = sdk_enum_values(Ad.StatusOption)
AdEffectiveStatus = Literal[AD_EFFECTIVE_STATUSES]  # type: ignore[valid-type]
AdStatusOption = Literal[AD_STATUS_OPTIONS]  # type: ignore[valid-type]
LISTABLE_AD_STATUSES = [s for s in AD_EFFECTIVE_STATUSES if s not in ("ARCHIVED", "DELETED")]
LOOKUP_AD_STATUSES = tuple(
    s for s in AD_EFFECTIVE_STATUSES if s != "DELETED"
)  # a new ad is in review, not ACTIVE/PAUSED
DEAD_STATUSES = ("DELETED", "ARCHIVED")

# ---- What the ops answer as data ------------------------------------------------------------------------------------
ListedAd = graph_object(Ad, LIST_FIELDS, name="ListedAd")
AdObject = graph_object(Ad, AD_FIELDS, name="AdObject")
ChangedAd = changed_data("ad_id")


class AdList(ListPage):
    ads: list[ListedAd]  # type: ignore[valid-type]


class AdData(OpData):
    ad: AdObject  # type: ignore[valid-type]
    review: str = Field(
        description="The delivery/review state in words, with Facebook's reasons and the fix when refused."
    )
    reasons: list[str] = Field(description="Why Facebook refused or limited the ad (ad_review_feedback, issues_info).")


class CreatedAd(OpData):
    id: str
    ad_id: str = Field(description="The same id.")
    adset_id: str
    creative_id: str
    status: Literal["PAUSED", "ACTIVE"]
    ad_account_id: str
    recovered: bool = Field(description="True when the create's answer was lost and the ad was found afterwards.")


class CopiedAd(OpData):
    ad_id: str = Field(description="The copy.")
    id: str = Field(description="The copy (same id).")
    copied_ad_id: str = Field(description="The copy (same id).")
    source_ad_id: str
    adset_id: str = Field(description="The copy's ad set.")
    status: str = Field(description="The copy's status.")


# docs/creative_rules.md, A1.
SUBCODE_AD_ADSET = 1487079
SUBCODE_AD_CREATIVE = 1487242

AdAccountArg = Field(
    None, description="Ad account id (act_<digits>); defaults to the selected account.", examples=["act_1234567890"]
)
AdIdArg = Field(..., description="The ad id (digits).", examples=["120210000000000201"])

REVIEW_TEXT = {
    "PENDING_REVIEW": "in review, usually minutes (at most 24 hours); it delivers once approved",
    "PREAPPROVED": "pre-approved: it delivers once its ad set and campaign are active",
    "DISAPPROVED": "disapproved: it does not deliver",
    "WITH_ISSUES": "has issues that stop or limit delivery",
    "ADSET_PAUSED": "approved, but its ad set is paused",
    "CAMPAIGN_PAUSED": "approved, but its campaign is paused",
    "PENDING_BILLING_INFO": "waiting for a payment method on the ad account",
    "IN_PROCESS": "being processed by Facebook",
}
REVIEW_FIX = {
    "DISAPPROVED": "edit the text and update the creative: create a new creative with compliant text, then "
    "update_ad with its creative_id (that sends the ad to review again)",
    "WITH_ISSUES": "fix what the issues name, then update the ad",
    "ADSET_PAUSED": "resume_adset to deliver",
    "CAMPAIGN_PAUSED": "resume_campaign to deliver",
    "PENDING_BILLING_INFO": "add a payment method in Ads Manager's billing settings",
}


def _ad_account_of(obj: dict[str, Any]) -> str | None:
    return f"act_{obj['account_id']}" if obj.get("account_id") else None


def review_reasons(ad: dict[str, Any]) -> list[str]:
    """Why Facebook refused or limited an ad, from ad_review_feedback and issues_info, one line each."""
    reasons: list[str] = []
    feedback = ad.get("ad_review_feedback") or {}
    if isinstance(feedback, str):
        try:
            feedback = json.loads(feedback)
        except ValueError:
            feedback = {"global": {"": feedback}}
    for scope, entries in feedback.items() if isinstance(feedback, dict) else []:
        if isinstance(entries, dict):
            for title, text in entries.items():
                reasons.append(f"{title}: {text}" if title and text else str(text or title))
        elif entries:
            reasons.append(f"{scope}: {entries}")
    for issue in ad.get("issues_info") or []:
        if isinstance(issue, dict):
            summary = issue.get("error_summary") or ""
            message = issue.get("error_message") or ""
            reasons.append(
                f"{summary}: {message}".strip(": ") if summary and message != summary else (message or summary)
            )
    return [r for r in dict.fromkeys(reasons) if r]


def review_text(ad: dict[str, Any]) -> str:
    """The ad's delivery/review state in words, with Facebook's reasons and the fix when it is refused."""
    status = ad.get("effective_status") or ad.get("status") or "?"
    text = f"{status}: {REVIEW_TEXT[status]}" if status in REVIEW_TEXT else status
    reasons = review_reasons(ad) if status in ("DISAPPROVED", "WITH_ISSUES") or ad.get("ad_review_feedback") else []
    if reasons:
        text += ". Reasons: " + "; ".join(reasons)
    if status in REVIEW_FIX:
        text += f". Fix: {REVIEW_FIX[status]}"
    return text


def ad_line(ad: dict[str, Any]) -> str:
    creative = (ad.get("creative") or {}).get("id", "?")
    return f"{ad['id']} · {ad.get('name', '')} · {ad.get('effective_status') or ad.get('status')} · ad set {ad.get('adset_id', '?')} · creative {creative}"


def ad_details(ad: dict[str, Any], account: AccountInfo | None = None) -> str:
    creative = ad.get("creative") or {}
    lines = [
        f"Ad {ad.get('name')} ({ad['id']})" + (f" in {_ad_account_of(ad)}" if ad.get("account_id") else ""),
        f"  status {ad.get('status')} (effective {review_text(ad)})",
        f"  ad set {ad.get('adset_id')}, campaign {ad.get('campaign_id')}",
        f"  creative {creative.get('name', '')} ({creative.get('id', '?')})".replace("  (", " ("),
    ]
    if ad.get("tracking_specs"):
        lines.append(f"  tracking {json.dumps(ad['tracking_specs'], sort_keys=True)}")
    for key in ("created_time", "updated_time"):
        if ad.get(key):
            lines.append(f"  {key.replace('_', ' ')} {when_text(ad[key], account)}")
    return "\n".join(lines)


async def _read_ad(ctx: OpContext, ad_id: str, fields: str = AD_FIELDS) -> dict[str, Any]:
    return await ctx.graph.get(check_object_id(ad_id, "ad_id"), {"fields": fields})


async def _currency(ctx: OpContext, obj: dict[str, Any]) -> str | None:
    account = _ad_account_of(obj)
    return (await ctx.graph.account_info(account)).currency if account else None


def ad_create_body(
    name: str, adset_id: str, creative_id: str, status: str, tracking_specs: Any = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "adset_id": adset_id,
        "creative": {"creative_id": creative_id},
        "status": status,
    }
    if tracking_specs:
        body["tracking_specs"] = tracking_specs
    return body


async def create_ad_object(
    ctx: OpContext, account_id: str, body: dict[str, Any], tag: str, *, look_first: bool = False
) -> dict[str, Any]:
    """POST act_x/ads with a client tag; a lost answer is recovered by the tag instead of creating the ad twice.

    ``look_first``: the tag may already be on an ad (a resumed launch step), which is then answered instead."""
    path = f"{account_id}/ads"
    return await ctx.graph.create(
        path,
        {**body, "adlabels": [{"name": tag}]},
        look_first=look_first,
        lookup=CreateLookup(list_path=path, name=body["name"], tag=tag, statuses=LOOKUP_AD_STATUSES),
    )


def check_ad_parents(adset: dict[str, Any], creative: dict[str, Any]) -> str:
    """A1: a live ad set and a creative of the same ad account; returns that account."""
    if adset.get("status") in DEAD_STATUSES or adset.get("effective_status") in DEAD_STATUSES:
        raise ValidationError(
            f"Ad set {adset.get('name')} ({adset['id']}) is {str(adset.get('status')).lower()}; it takes no new ads",
            fix="Pick an active or paused ad set (list_adsets), or duplicate this one",
            blame_field="adset_id",
            code=100,
            error_subcode=SUBCODE_AD_ADSET,
        )
    account, creative_account = adset.get("account_id"), creative.get("account_id")
    if account and creative_account and str(account) != str(creative_account):
        raise ValidationError(
            f"Creative {creative['id']} belongs to act_{creative_account}, ad set {adset['id']} to act_{account}",
            fix="Use a creative of the ad set's ad account (make it there with create_creative)",
            blame_field="creative",
            code=100,
            error_subcode=SUBCODE_AD_CREATIVE,
        )
    return f"act_{account}"


class CreateAdArgs(OpArgs):
    """Create an ad: a creative placed in an ad set (PAUSED unless status=ACTIVE is confirmed). It goes to review first."""

    adset_id: str = Field(..., description="The ad set the ad runs in (digits).", examples=["120210000000000101"])
    creative_id: str = Field(
        ..., description="The creative the ad shows (create_creative makes one).", examples=["120210000000000301"]
    )
    name: str = Field(..., min_length=1, max_length=400, description="Ad name.", examples=["Summer Sale – image"])
    status: Literal["PAUSED", "ACTIVE"] = Field(
        "PAUSED", description="PAUSED (default) or ACTIVE, which can start spending and needs confirmation."
    )
    tracking_specs: list[dict[str, Any]] | None = Field(
        None,
        description='Conversion tracking specs, e.g. [{"action.type": ["offsite_conversion"], "fb_pixel": ["<pixel id>"]}].',
    )


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.CREATIVES_LAUNCH,
    example={"adset_id": "120210000000000101", "creative_id": "120210000000000301", "name": "Summer Sale – image"},
    result=CreatedAd,
)
async def create_ad(ctx: OpContext, args: CreateAdArgs) -> WritePlan:
    adset = await ctx.graph.get(
        check_object_id(args.adset_id, "adset_id"), {"fields": "id,name,account_id,campaign_id,status,effective_status"}
    )
    creative = await ctx.graph.get(check_object_id(args.creative_id, "creative_id"), {"fields": "id,name,account_id"})
    account_id = check_ad_parents(adset, creative)
    body = ad_create_body(args.name, adset["id"], creative["id"], args.status, args.tracking_specs)
    tag = new_client_tag()

    async def execute() -> OpResult:
        created = await create_ad_object(ctx, account_id, body, tag)
        recovered = (
            " (its first answer was lost; found it instead of creating it twice)" if created.get("recovered") else ""
        )
        text = (
            f"Created ad {args.name} ({created['id']}) {args.status} in ad set {adset.get('name')} ({adset['id']}) with creative "
            f"{creative.get('name') or creative['id']}{recovered}. It goes to review first (usually minutes); get_ad shows the review state."
        )
        return OpResult(
            text=text,
            data={
                "id": created["id"],
                "ad_id": created["id"],
                "adset_id": adset["id"],
                "creative_id": creative["id"],
                "status": args.status,
                "ad_account_id": account_id,
                "recovered": bool(created.get("recovered")),
            },
        )

    async def validate() -> Any:
        return await ctx.graph.post(f"{account_id}/ads", {**body, "execution_options": ["validate_only"]})

    return WritePlan(
        summary=f"create ad {args.name} ({args.status}) in ad set {adset.get('name')} ({adset['id']})",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", f"{account_id}/ads", {**body, "adlabels": [{"name": tag}]})],
        changes=[Change(None, "ad", args.name, "status", None, args.status)],
        execute=execute,
        validate=validate,
    )


class ListAdsArgs(OpArgs):
    """List ads of an ad set, a campaign or the ad account, with status, review state and creative; filter and page."""

    adset_id: str | None = Field(None, description="Only the ads of this ad set.")
    campaign_id: str | None = Field(None, description="Only the ads of this campaign.")
    ad_account_id: str | None = AdAccountArg
    status: list[AdEffectiveStatus] | None = Field(
        None,
        description='Only ads with these effective statuses, e.g. ["DISAPPROVED"]. Default: all but ARCHIVED and DELETED.',
    )
    name_contains: str | None = Field(
        None, min_length=1, max_length=200, description="Only ads whose name contains this text."
    )
    limit: int = Field(25, ge=1, le=1000, description="Page size (1-1000).")
    after: str | None = Field(None, description="Cursor from a previous page's `next_after` to get the next page.")
    all_pages: bool = Field(False, description="Follow every page (up to `limit` ads in total when set together).")

    @model_validator(mode="after")
    def _one_parent(self) -> ListAdsArgs:
        if self.adset_id and self.campaign_id:
            raise ValueError("pass adset_id or campaign_id, not both")
        return self


@ops.op(OpKind.READ, group=TaskGroup.CREATIVES_LAUNCH, result=AdList)
async def list_ads(ctx: OpContext, args: ListAdsArgs) -> OpResult:
    if args.adset_id:
        path, where = f"{check_object_id(args.adset_id, 'adset_id')}/ads", f"ad set {args.adset_id}"
    elif args.campaign_id:
        path, where = f"{check_object_id(args.campaign_id, 'campaign_id')}/ads", f"campaign {args.campaign_id}"
    else:
        account_id = ctx.require_ad_account(args.ad_account_id)
        path, where = f"{account_id}/ads", account_id
    ads, next_after = await list_page(ctx.graph, path, args, LIST_FIELDS, LISTABLE_AD_STATUSES)
    text, hints = list_text("list_ads", args, "ads", where, ads, ad_line, next_after)
    return OpResult(text=text, hints=hints, data={"ads": ads, "next_after": next_after})


class GetAdArgs(OpArgs):
    """Show one ad: status, review state (in review, approved, disapproved with Facebook's reasons and the fix), creative."""

    ad_id: str = AdIdArg


@ops.op(OpKind.READ, group=TaskGroup.CREATIVES_LAUNCH, result=AdData)
async def get_ad(ctx: OpContext, args: GetAdArgs) -> OpResult:
    ad = await _read_ad(ctx, args.ad_id)
    account = await ctx.graph.account_info(f"act_{ad['account_id']}") if ad.get("account_id") else None
    return OpResult(
        text=ad_details(ad, account), data={"ad": ad, "review": review_text(ad), "reasons": review_reasons(ad)}
    )


class UpdateAdArgs(OpArgs):
    """Change an ad's name, status or creative (a new creative sends the ad to review again; ACTIVE needs confirmation)."""

    ad_id: str = AdIdArg
    name: str | None = Field(None, min_length=1, max_length=400, description="New name.")
    status: Literal["ACTIVE", "PAUSED", "ARCHIVED"] | None = Field(
        None, description="New status; ACTIVE can start spending."
    )
    creative_id: str | None = Field(None, description="Show this creative instead (same ad account).")

    @model_validator(mode="after")
    def _something(self) -> UpdateAdArgs:
        if self.name is None and self.status is None and self.creative_id is None:
            raise ValueError("nothing to change: pass name, status or creative_id")
        return self


def _check_ad_editable(ad: dict[str, Any], updates: dict[str, Any]) -> None:
    if ad.get("status") == "DELETED":
        raise ValidationError(
            f"Ad {ad['id']} is deleted and cannot be changed", fix="Create a new ad (or duplicate_ad another one)"
        )
    if ad.get("status") == "ARCHIVED" and updates.get("status") != "DELETED":
        raise ValidationError(
            f"Ad {ad.get('name')} ({ad['id']}) is archived; Facebook only allows deleting it",
            fix="Use duplicate_ad to run it again, or delete_ad",
        )


def _edited_ad(ad: dict[str, Any], currency: str | None) -> EditedObject:
    return EditedObject(ad, "ad", "ad", "ad_id", _ad_account_of(ad), currency)


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.CREATIVES_LAUNCH,
    example={"ad_id": "120210000000000201", "creative_id": "120210000000000302"},
    result=ChangedAd,
)
async def update_ad(ctx: OpContext, args: UpdateAdArgs) -> WritePlan | OpResult:
    ad = await _read_ad(ctx, args.ad_id)
    updates: dict[str, Any] = {k: v for k, v in (("name", args.name), ("status", args.status)) if v is not None}
    _check_ad_editable(ad, updates)
    extra = ""
    if args.creative_id:
        creative = await ctx.graph.get(
            check_object_id(args.creative_id, "creative_id"), {"fields": "id,name,account_id"}
        )
        if creative.get("account_id") and ad.get("account_id") and str(creative["account_id"]) != str(ad["account_id"]):
            raise ValidationError(
                f"Creative {creative['id']} belongs to act_{creative['account_id']}, the ad to act_{ad['account_id']}",
                fix="Use a creative of the ad's ad account",
                blame_field="creative_id",
                code=100,
                error_subcode=SUBCODE_AD_CREATIVE,
            )
        if (ad.get("creative") or {}).get("id") != creative["id"]:
            ad = {**ad, "creative": {"creative_id": (ad.get("creative") or {}).get("id")}}
            updates["creative"] = {"creative_id": creative["id"]}
            extra = " The ad goes to review again with the new creative."
    return update_plan(ctx, _edited_ad(ad, await _currency(ctx, ad)), updates, "Updated", extra=extra)


async def _ad_status_change(ctx: OpContext, ad_id: str, status: str, verb: str) -> WritePlan | OpResult:
    ad = await _read_ad(ctx, ad_id)
    _check_ad_editable(ad, {"status": status})
    return update_plan(ctx, _edited_ad(ad, await _currency(ctx, ad)), {"status": status}, verb)


add_status_ops(
    ops,
    "ad",
    "ad_id",
    AdIdArg,
    {
        "pause": "Pause an ad: it stops delivering until it is resumed.",
        "resume": "Resume (activate) a paused ad: it can spend again, so this asks for confirmation under the guardrails policy.",
        "archive": "Archive an ad: it stops and leaves the default lists; afterwards it can only be deleted.",
        "delete": "Delete an ad. This cannot be undone.",
    },
    _ad_status_change,
    TaskGroup.CREATIVES_LAUNCH,
    result=ChangedAd,
)


class DuplicateAdArgs(OpArgs):
    """Copy an ad (optionally into another ad set) through Facebook's /copies; the copy is PAUSED by default."""

    ad_id: str = AdIdArg
    adset_id: str | None = Field(None, description="Put the copy in this ad set (default: the same ad set).")
    status_option: AdStatusOption = Field(
        "PAUSED",
        description="Status of the copy: PAUSED (default), ACTIVE (needs confirmation) or INHERITED_FROM_SOURCE.",
    )
    rename_suffix: str = Field(" - Copy", max_length=100, description="Text appended to the copy's name.")


@ops.op(OpKind.SPEND, group=TaskGroup.CREATIVES_LAUNCH, result=CopiedAd)
async def duplicate_ad(ctx: OpContext, args: DuplicateAdArgs) -> WritePlan:
    source = await _read_ad(ctx, args.ad_id)
    if source.get("status") == "DELETED":
        raise ValidationError(f"Ad {source['id']} is deleted and cannot be copied", fix="Pick an ad that exists")
    body: dict[str, Any] = {
        "status_option": args.status_option,
        "rename_options": {"rename_suffix": args.rename_suffix, "rename_strategy": "ONLY_TOP_LEVEL_RENAME"},
    }
    target = ""
    if args.adset_id and args.adset_id != source.get("adset_id"):
        adset = await ctx.graph.get(
            check_object_id(args.adset_id, "adset_id"), {"fields": "id,name,account_id,status,effective_status"}
        )
        check_ad_parents(
            adset, {"id": (source.get("creative") or {}).get("id", "?"), "account_id": source.get("account_id")}
        )
        body["adset_id"] = adset["id"]
        target = f" in ad set {adset.get('name')} ({adset['id']})"
    status = source.get("status") if args.status_option == "INHERITED_FROM_SOURCE" else args.status_option
    new_name = f"{source.get('name', '')}{args.rename_suffix}"

    async def execute() -> OpResult:
        copied = await ctx.graph.post(f"{source['id']}/copies", body)
        new_id = copied.get("copied_ad_id") or copied.get("id")
        return OpResult(
            text=f"Copied ad {source.get('name')} ({source['id']}) to {new_name} ({new_id}){target}, {status}. "
            "The copy goes to review first.",
            data={
                "ad_id": new_id,
                "id": new_id,
                "copied_ad_id": new_id,
                "source_ad_id": source["id"],
                "adset_id": body.get("adset_id", source.get("adset_id")),
                "status": status,
            },
        )

    return WritePlan(
        summary=f"copy ad {source.get('name')} ({source['id']}) as {new_name}{target} ({status})",
        ad_account_id=_ad_account_of(source),
        requests=[GraphRequest("POST", f"{source['id']}/copies", body)],
        changes=[Change(None, "ad", new_name, "status", None, status)],
        execute=execute,
    )


# ===============================================================================================================
# One-call launch
# ===============================================================================================================

# A placeholder id for the campaign a launch is about to create: digits (ids are checked as digits) with a leading
# zero, which no Facebook id has. create_adset is pre-checked against it through ctx.ops.plan(objects=...).
PLANNED_CAMPAIGN_ID = "0000000000000001"
BLOCKED_HOSTS = ("localhost", "localhost.localdomain", "metadata.google.internal", "metadata")
BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")

OBJECTIVES = tuple(v for v in sdk_enum_values(Campaign.Objective) if v.startswith("OUTCOME_"))
SPECIAL_AD_CATEGORIES = sdk_enum_values(Campaign.SpecialAdCategories)
CALL_TO_ACTIONS = sdk_enum_values(AdCreative.CallToActionType)
Objective = Literal[OBJECTIVES]  # type: ignore[valid-type]
SpecialAdCategory = Literal[SPECIAL_AD_CATEGORIES]  # type: ignore[valid-type]
CallToAction = Literal[CALL_TO_ACTIONS]  # type: ignore[valid-type]
BUDGET_NOTE = "Minor units of the account currency (cents for USD: 5000 = $50.00; yen for JPY: 5000 = ¥5,000)."


# ---- What the ops answer as data ------------------------------------------------------------------------------------


class LaunchStepRef(DataRow):
    step: str = Field(description="campaign, adset, image:0, video:1.0, creative:0, ad:0, ...")
    id: str = Field(description="The object (or image hash, video id) it made.")


class NextCall(DataRow):
    op: str
    args: dict[str, Any]


class LaunchOutcome(OpData):
    """A launch done (now, or in an earlier request: already_launched), or stopped at a step (status failed, an answer
    that is not ok: resume_launch continues it, rollback_launch undoes it)."""

    launch_id: int
    status: Literal["done", "failed"]
    already_launched: bool = Field(description="True when this request made nothing: the same launch ran before.")
    object_ids: list[str] = Field(description="The campaign, ad set, creatives and ads the launch created (so far).")
    campaign_id: str = absent_key(description="done: the campaign.")
    adset_id: str = absent_key(description="done: the ad set.")
    creative_ids: list[str] = absent_key(description="done: the creatives.")
    ad_ids: list[str] = absent_key(description="done: the ads.")
    uploads: dict[str, str] = absent_key(
        description="done by this request: each media step (image:0, video:1.0, ...) -> the "
        "image hash or video id used."
    )
    notes: list[str] = absent_key(description="done by this request: what was chosen for you (page, placements, ...).")
    failed_step: str = absent_key(description="failed: the step that stopped it.")
    error: ErrorData = absent_key(description="failed: what stopped it.")
    outcome: Literal["error", "unknown"] = absent_key(
        description="failed: unknown when the step's answer was lost (it may "
        "have made its object; resume_launch finds it)."
    )
    created: list[LaunchStepRef] = absent_key(description="failed: what the launch created so far (all PAUSED).")
    next: list[NextCall] = absent_key(description="failed: the calls that go on from here.")


class LaunchStep(DataRow):
    """One step of a launch as the journal holds it (LaunchRecord.steps)."""

    status: Literal["sending", "done", "failed", "deleted"]
    object_id: str | None = Field(description="The object the step made; null until it made one.")
    data: dict[str, Any] = Field(description="What the step recorded (name, kind, sent_at, ...).")
    at: str = Field(description="When the step was last recorded (ISO 8601, UTC).")
    error: dict[str, Any] = absent_key(
        description="A failed step's error (kind, code, subcode, message, fix); absent otherwise."
    )


class LaunchData(OpData):
    launch_id: int
    status: Literal[LAUNCH_STATUSES]  # type: ignore[valid-type]
    steps: dict[str, LaunchStep] = Field(
        description="Step name (campaign, adset, image:0, creative:0, ad:0, activate:campaign, "
        "...) -> its record, in the order the steps last ran."
    )
    request: dict[str, Any] = Field(description="The launch_campaign arguments as recorded.")


class RolledBackLaunch(OpData):
    """A launch rolled back (now, or before), or a rollback stopped at an object (an answer that is not ok: call again)."""

    launch_id: int
    status: Literal[LAUNCH_STATUSES] = Field(  # type: ignore[valid-type]
        description="rolled_back; when the rollback stopped, the launch's status as it stays (done, failed or running)."
    )
    deleted: list[str] = Field(
        description="Ids of the objects this call deleted (nothing when it was rolled back before)."
    )
    already_gone: list[str] = Field(description="Ids of objects that were already deleted or not found.")
    object_ids: list[str] = Field(description="The objects deleted.")
    orphans: list[str] = absent_key(
        description="rolled_back: ids of objects an interrupted run made without recording them "
        "(found by the launch's tags)."
    )
    kept_media: list[str] = absent_key(
        description="rolled_back: uploaded media that stay in the ad account's library, in words."
    )
    failed: str = absent_key(description="Stopped: the object it could not delete.")
    error: ErrorData = absent_key(description="Stopped: why.")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class LaunchCampaignSpec(_Spec):
    """The campaign: name, objective, and a campaign budget (or leave the budget to the ad set)."""

    name: str = Field(..., min_length=1, max_length=400, description="Campaign name.", examples=["Summer Sale"])
    objective: Objective = Field(
        ..., description="What the campaign optimises for (OUTCOME_*).", examples=["OUTCOME_TRAFFIC"]
    )
    daily_budget: int | None = Field(
        None,
        json_schema_extra=MONEY_UNIT,
        gt=0,
        description=f"Campaign daily budget (then the ad set has none). {BUDGET_NOTE}",
    )
    lifetime_budget: int | None = Field(
        None,
        json_schema_extra=MONEY_UNIT,
        gt=0,
        description=f"Campaign lifetime budget (needs stop_time). {BUDGET_NOTE}",
    )
    special_ad_categories: list[SpecialAdCategory] = Field(
        default_factory=list, description="Credit, employment, housing, politics, gambling; empty otherwise."
    )
    special_ad_category_country: list[str] | None = Field(
        None, description="ISO country codes where the special category applies."
    )
    bid_strategy: str | None = Field(None, description="Campaign bid strategy (needs a campaign budget).")
    spend_cap: int | None = Field(
        None, json_schema_extra=MONEY_UNIT, gt=0, description=f"Most the campaign may ever spend. {BUDGET_NOTE}"
    )
    start_time: datetime | None = Field(None, description="ISO-8601 start.")
    stop_time: datetime | None = Field(None, description="ISO-8601 end; required with lifetime_budget.")


class LaunchAdSetSpec(_Spec):
    """The ad set: who sees the ads, the goal, and its budget when the campaign has none."""

    name: str | None = Field(
        None, min_length=1, max_length=400, description="Ad set name (default: '<campaign> · ad set')."
    )
    targeting: dict[str, Any] | str = Field(
        ...,
        description="Targeting spec: geo_locations {countries, regions, cities, zips}, age_min, age_max, genders, interests, custom_audiences, … (as create_adset takes it).",
        examples=[{"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 45}],
    )
    optimization_goal: str | None = Field(
        None, description="Delivery goal; default by the objective (TRAFFIC → LINK_CLICKS, …)."
    )
    billing_event: str | None = Field(None, description="What you pay for; default IMPRESSIONS.")
    bid_amount: int | None = Field(
        None, json_schema_extra=MONEY_UNIT, gt=0, description=f"Bid or cost cap per result. {BUDGET_NOTE}"
    )
    daily_budget: int | None = Field(
        None,
        json_schema_extra=MONEY_UNIT,
        gt=0,
        description=f"Ad set daily budget (only when the campaign has none). {BUDGET_NOTE}",
    )
    lifetime_budget: int | None = Field(
        None, json_schema_extra=MONEY_UNIT, gt=0, description=f"Ad set lifetime budget (needs end_time). {BUDGET_NOTE}"
    )
    start_time: datetime | None = Field(None, description="When delivery may start (ISO-8601).")
    end_time: datetime | None = Field(
        None, description="When delivery stops (ISO-8601); required with lifetime_budget."
    )
    placements: Literal["recommended", "automatic"] | None = Field(
        "recommended",
        description='"recommended" (default): placements chosen for the creatives\' format; "automatic": Advantage+ placements; null: what the targeting says.',
    )
    promoted_object: dict[str, Any] | None = Field(
        None,
        description="For conversions: {pixel_id, custom_event_type}; lead forms/page likes: {page_id}; apps: {application_id, object_store_url}.",
    )


class LaunchCard(_Spec):
    """One carousel card."""

    image: str | None = Field(
        None, description="The card's image: a file path, an https URL, or an image hash of the ad account."
    )
    video: str | None = Field(
        None, description="The card's video: a file path or a video id (then image is its thumbnail)."
    )
    link: str = Field(
        ..., description="Where the card leads (absolute http(s) URL).", examples=["https://example.com/red-shoes"]
    )
    headline: str | None = Field(None, max_length=255, description="The card's headline.")
    description: str | None = Field(None, max_length=255, description="The card's description.")
    call_to_action: CallToAction | None = Field(None, description="The card's button, e.g. SHOP_NOW.")


class LaunchCreativeSpec(_Spec):
    """One creative: an image, a video, a carousel (2-10 cards) or an existing page post."""

    kind: Literal["image", "video", "carousel", "page_post"] = Field(
        "image", description="image, video, carousel or page_post."
    )
    name: str | None = Field(
        None, min_length=1, max_length=400, description="Creative (and ad) name; default '<campaign> · <kind> <n>'."
    )
    message: str | None = Field(None, max_length=5000, description="The primary text above the ad.")
    link: str | None = Field(
        None,
        description="Where the ad leads (absolute http(s) URL); required except for page_post.",
        examples=["https://example.com/sale"],
    )
    headline: str | None = Field(None, max_length=255, description="The headline under the image or video.")
    description: str | None = Field(None, max_length=255, description="The line under the headline.")
    call_to_action: CallToAction | None = Field(
        "LEARN_MORE", description="The button, e.g. SHOP_NOW, LEARN_MORE, SIGN_UP."
    )
    image: str | None = Field(
        None,
        description="image: the picture; video: its thumbnail. A file path, an https URL, or an image hash of the ad account.",
    )
    video: str | None = Field(
        None, description="video: a file path (uploaded, its progress reported) or the id of a video of the ad account."
    )
    thumbnail: str | None = Field(
        None,
        description="video: the thumbnail (path, https URL or image hash); default image, else the video's preferred thumbnail.",
    )
    cards: list[LaunchCard] | None = Field(
        None, description="carousel: 2-10 cards, each {image or video, link, headline, description}."
    )
    post_id: str | None = Field(
        None, description="page_post: the page post to promote ('<page id>_<post id>' or the post id)."
    )


class LaunchAdSpec(_Spec):
    """One ad: which creative it shows (by position in creatives, from 0, or by name) and its name."""

    creative: int | str = Field(..., description="The creative: its position in creatives (0 = first) or its name.")
    name: str | None = Field(None, min_length=1, max_length=400, description="Ad name (default: the creative's name).")


class LaunchCampaignArgs(OpArgs):
    """Launch a whole campaign in one call: campaign → ad set → uploads → creatives → ads, all checked before anything is sent.

    Everything is created PAUSED; status ACTIVE asks for one confirmation and switches the ads, ad set and campaign on
    only once all of them exist. The same request twice creates nothing twice; a launch that fails part way says
    what was created and offers resume_launch or rollback_launch. Creatives use the selected Instagram account; with
    none selected, Instagram is left out of the placements (the answer says so).
    """

    campaign: LaunchCampaignSpec = Field(
        ..., description="The campaign: name, objective, campaign budget or none (then the ad set's)."
    )
    adset: LaunchAdSetSpec = Field(
        ..., description="The ad set: targeting, goal, budget (when the campaign has none), schedule, placements."
    )
    creatives: list[LaunchCreativeSpec] = Field(
        ..., min_length=1, max_length=10, description="1-10 creatives (image, video, carousel, page_post)."
    )
    ads: list[LaunchAdSpec] | None = Field(
        None, max_length=50, description="The ads; default one ad per creative, named after it."
    )
    status: Literal["PAUSED", "ACTIVE"] = Field(
        "PAUSED", description="PAUSED (default) or ACTIVE (one confirmation; switched on at the very end)."
    )
    ad_account_id: str | None = AdAccountArg
    page_id: str | None = Field(
        None, description="The Facebook page the ads speak for; default the selected page (or the only page)."
    )

    @model_validator(mode="after")
    def _ads_point_at_creatives(self) -> LaunchCampaignArgs:
        names = [c.name for c in self.creatives]
        for ad in self.ads or []:
            if isinstance(ad.creative, int) or str(ad.creative).isdigit():
                if not 0 <= int(ad.creative) < len(self.creatives):
                    raise ValueError(
                        f"ads: creative {ad.creative} does not exist (there are {len(self.creatives)}, numbered from 0)"
                    )
            elif ad.creative not in names:
                raise ValueError(f"ads: no creative is named {ad.creative!r}")
        return self


# -- local checks of files and URLs (no fetch) -----------------------------------------------------------------


def _invalid(message: str, fix: str, field_name: str, **codes: Any) -> ValidationError:
    return ValidationError(message, fix=fix, blame_field=field_name, **codes)


def check_public_url(url: str, field_name: str) -> str:
    """The SSRF checks that need no fetch: http(s), a host, no credentials, not a private/loopback/link-local address."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(
            f"{field_name} {url!r} is not an http(s) URL", "Give a full https:// URL, or a file path", field_name
        )
    if parts.username or parts.password:
        raise _invalid(
            f"{field_name} URL carries a user name or password", "Remove the credentials from the URL", field_name
        )
    host = parts.hostname.rstrip(".").lower()
    if host in BLOCKED_HOSTS or host.endswith(BLOCKED_SUFFIXES):
        raise _invalid(
            f"{field_name} URL points at an internal host ({host})", "Use a public URL, or a file path", field_name
        )
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return url.strip()
    if not address.is_global or address.is_multicast:
        raise _invalid(
            f"{field_name} URL points at a private or reserved address ({address})",
            "Use a public URL, or a file path",
            field_name,
        )
    return url.strip()


@dataclass
class Media:
    """One file or URL a launch uploads (or an existing hash/video id it only uses), with the value checks stand on."""

    step: str  # "image:0", "video:1", "image:2.0" (card 0 of creative 2)
    kind: str  # image | video
    source: str  # a path, URL, hash or video id as given
    field_name: str  # where it came from, for messages: creatives[0].image
    upload: bool  # False for an existing hash or video id
    stand_in: str  # the value creatives are checked with before the upload (md5 of a file is its Facebook hash)
    fingerprint: str  # what makes the launch key change when the file changes


def check_image_source(source: str, step: str, field_name: str) -> Media:
    """M1 and the URL checks, before anything is sent: fb_creative's image checks, plus the SSRF checks needing no fetch."""
    text = source.strip()
    kind = check_image_reference(text, field_name)
    if kind == "hash":
        return Media(step, "image", text.lower(), field_name, False, text.lower(), text.lower())
    if kind == "url":
        url = check_public_url(text, field_name)
        return Media(step, "image", url, field_name, True, hashlib.md5(url.encode()).hexdigest(), url)
    digest = hashlib.md5(
        Path(text).expanduser().read_bytes()
    ).hexdigest()  # Facebook's image hash is the md5 of the bytes
    return Media(step, "image", text, field_name, True, digest, digest)


def check_video_source(source: str, step: str, field_name: str) -> Media:
    """M3 before anything is sent (a file Facebook takes, 1 byte to 10 GB), or a video id to check for M4."""
    text = source.strip()
    if check_video_reference(text, field_name) == "id":
        return Media(step, "video", text, field_name, False, text, text)
    stat = Path(text).expanduser().stat()
    return Media(
        step,
        "video",
        text,
        field_name,
        True,
        "1" + "0" * 14,
        f"{Path(text).resolve()}:{stat.st_size}:{int(stat.st_mtime)}",
    )


# -- the prepared launch ----------------------------------------------------------------------------------------


@dataclass
class PreparedCreative:
    index: int
    name: str
    spec: LaunchCreativeSpec
    media: dict[str, Media]  # role ("image", "video", "card:0:image", …) → media
    body: dict[str, Any]  # checked with stand-in hashes/ids (shown by dry_run)


@dataclass
class PreparedLaunch:
    """A launch checked end to end before its first write: what each step will send, and the notes for the answer."""

    args: LaunchCampaignArgs
    account: AccountInfo
    page_id: str
    instagram_user_id: str | None
    campaign_args: dict[str, Any]
    adset_args: dict[str, Any]  # without campaign_id
    creatives: list[PreparedCreative]
    ads: list[tuple[str, int]]  # (ad name, creative index)
    key: str
    request: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    requests: list[GraphRequest] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    planned: tuple[list[GraphRequest], list[GraphRequest]] = (
        [],
        [],
    )  # the campaign's and the ad set's requests, untagged

    def media(self) -> list[Media]:
        seen: dict[str, Media] = {}
        for creative in self.creatives:
            for item in creative.media.values():
                seen.setdefault(item.step, item)
        return list(seen.values())


def _stopped_before_writing(what: str, error: FacebookError) -> FacebookError:
    """A pre-check failure, named by its step; the same class, code and blame, so the caller's fix still applies."""
    error.message = f"Nothing was created: the {what} would be refused: {error.message}"
    return error


def _creative_type(creatives: list[LaunchCreativeSpec]) -> str:
    kinds = {c.kind for c in creatives}
    if "video" in kinds:
        return "video"
    return "carousel" if kinds == {"carousel"} else "image"


def _decode(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


async def _placements(
    ctx: OpContext, args: LaunchCampaignArgs, instagram: bool
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """create_adset's targeting and placements arguments, with Instagram left out when no Instagram account is selected.

    The choice: without a selected Instagram account the launch drops Instagram from the placements and says so in
    the answer (with the fix), rather than refusing; the ads run on the other platforms. Only an ad set that targets
    Instagram alone is refused, since nothing would be left.
    """
    targeting = _decode(args.adset.targeting)
    placement_args: dict[str, Any] = {}
    notes: list[str] = []
    creative_type = _creative_type(args.creatives)
    if instagram:
        if args.adset.placements:
            placement_args = {"placements": args.adset.placements, "creative_type": creative_type}
        return targeting, placement_args, notes
    if not isinstance(targeting, dict):
        return targeting, placement_args, notes  # create_adset names what is wrong with it
    targeting = dict(targeting)
    fix = "select one with /use instagram <id> to add Instagram placements"
    if args.adset.placements == "recommended":
        recommended = _read_result(
            await _ops(ctx).plan(
                "recommend_placements",
                {"creative_type": creative_type, "objective": args.campaign.objective, "instagram": False},
            )
        )
        for key in [
            k for k in targeting if k == "publisher_platforms" or k.endswith("_positions") or k == "device_platforms"
        ]:
            targeting.pop(key)
        targeting.update(recommended.data["targeting"])
        notes.append(f"placements for {creative_type} ads without Instagram: no Instagram account is selected ({fix})")
    elif args.adset.placements == "automatic" or not targeting.get("publisher_platforms"):
        targeting = {k: v for k, v in targeting.items() if not k.endswith("_positions")}
        targeting["publisher_platforms"] = ["facebook", "audience_network", "messenger"]
        notes.append(
            "Advantage+ placements would include Instagram and no Instagram account is selected: the ads run on "
            f"Facebook, Audience Network and Messenger, every position ({fix})"
        )
    elif "instagram" in (targeting.get("publisher_platforms") or []):
        platforms = [p for p in targeting["publisher_platforms"] if p != "instagram"]
        if not platforms:
            raise ValidationError(
                "The ad set targets only Instagram, and no Instagram account is selected for the ads",
                fix="Select an Instagram account (/use instagram <id>), or add facebook to publisher_platforms",
                blame_field="adset.targeting.publisher_platforms",
            )
        targeting["publisher_platforms"] = platforms
        targeting.pop("instagram_positions", None)
        notes.append(f"Instagram left out of the placements: no Instagram account is selected ({fix})")
    return targeting, placement_args, notes


async def _page(ctx: OpContext, args: LaunchCampaignArgs) -> tuple[str, list[str]]:
    pages = await ctx.graph.get_all("me/accounts", {"fields": "id,name,tasks"})
    chosen = check_object_id(args.page_id, "page_id") if args.page_id else ctx.page_id
    posts = [
        (i, str(c.post_id).split("_", 1)[0])
        for i, c in enumerate(args.creatives)
        if c.kind == "page_post" and c.post_id and "_" in str(c.post_id)
    ]  # <page id>_<post id>: that page's post
    for index, post_page in posts:
        check_pages_you_advertise_for(pages, [post_page], f"creatives[{index}].post_id")
    if chosen:
        check_pages_you_advertise_for(pages, [chosen], "page_id")
        return chosen, []
    if len(pages) == 1:
        return str(pages[0]["id"]), [f"page {pages[0].get('name', '')} ({pages[0]['id']}), your only page"]
    listed = ", ".join(f"{p.get('name', '')} ({p['id']})" for p in pages[:10]) or "none"
    raise ValidationError(
        "No page given and none selected: ads speak for a Facebook page",
        fix=f"Pass page_id, or select one with /use page <id>; your pages: {listed}",
        blame_field="page_id",
        code=100,
        error_subcode=1443048,
    )


def check_pages_you_advertise_for(pages: list[dict[str, Any]], wanted: list[str], field_name: str) -> None:
    """Refuse, before anything is created, a page the person cannot advertise for (rule C1, docs/creative_rules.md,
    with the code and subcode Facebook answers the creative with). Source: "User must have Admin or
    Editor role for this page" (object_story_spec.page_id, https://developers.facebook.com/docs/marketing-api/reference/ad-creative-object-story-spec/,
    all versions); the pages a user has a role on are GET /me/accounts, each with its tasks. That the role shows as the
    ADVERTISE task is unverified (a page listed without tasks passes). A page of another user (another workspace's) is
    refused here rather than after the campaign and ad set were made."""
    yours = {str(p["id"]): p for p in pages if "ADVERTISE" in (p.get("tasks") or ["ADVERTISE"])}
    for page_id in wanted:
        if str(page_id) not in yours:
            listed = ", ".join(f"{p.get('name', '')} ({i})" for i, p in list(yours.items())[:10]) or "none"
            raise rule_error(
                "C1",
                f"Nothing was created: page {page_id} is not a page you can advertise for",
                f"Use one of your pages: {listed}",
                blame_field=field_name,
            )


def _campaign_args(args: LaunchCampaignArgs, account_id: str) -> dict[str, Any]:
    data = args.campaign.model_dump(mode="json", exclude_none=True)
    return {**data, "status": "PAUSED", "ad_account_id": account_id}


def _planned_campaign(args: LaunchCampaignArgs, account: AccountInfo) -> dict[str, Any]:
    """The campaign about to be created, as create_adset reads a campaign."""
    c = args.campaign
    return {
        "name": c.name,
        "objective": c.objective,
        "status": "PAUSED",
        "effective_status": "PAUSED",
        "daily_budget": str(c.daily_budget) if c.daily_budget else None,
        "lifetime_budget": str(c.lifetime_budget) if c.lifetime_budget else None,
        "bid_strategy": c.bid_strategy,
        "special_ad_categories": [s for s in c.special_ad_categories if s != "NONE"],
        "stop_time": c.stop_time.isoformat() if c.stop_time else None,
        "account_id": account.id.removeprefix("act_"),
    }


# The media fields each launch creative kind reads; any other one given would be ignored without a word, so it is refused
# (as create_creative refuses them: CreativeContentArgs._kind_fields). A video's picture may come as image or thumbnail.
LAUNCH_KIND_MEDIA = {
    "image": ("image",),
    "video": ("video", "thumbnail", "image"),
    "carousel": ("cards",),
    "page_post": ("post_id",),
}


def _creative_media(index: int, spec: LaunchCreativeSpec) -> dict[str, Media]:
    where = f"creatives[{index}]"
    media: dict[str, Media] = {}
    foreign = [
        f
        for f in ("image", "video", "thumbnail", "cards", "post_id")
        if getattr(spec, f) and f not in LAUNCH_KIND_MEDIA[spec.kind]
    ]
    if foreign:
        raise _invalid(
            f"{where}: kind={spec.kind} does not take {', '.join(foreign)}",
            f"Leave {', '.join(foreign)} out, or set kind to the creative's type",
            f"{where}.{foreign[0]}",
        )
    if spec.kind == "image":
        if not spec.image:
            raise _invalid(
                f"{where}: an image creative needs image",
                "Pass image: a file path, an https URL or an image hash",
                f"{where}.image",
            )
        media["image"] = check_image_source(spec.image, f"image:{index}", f"{where}.image")
    elif spec.kind == "video":
        if not spec.video:
            raise _invalid(
                f"{where}: a video creative needs video", "Pass video: a file path or a video id", f"{where}.video"
            )
        media["video"] = check_video_source(spec.video, f"video:{index}", f"{where}.video")
        thumbnail = spec.thumbnail or spec.image
        if thumbnail:  # without one the video's preferred thumbnail is used
            media["image"] = check_image_source(thumbnail, f"image:{index}", f"{where}.thumbnail")
    elif spec.kind == "carousel":
        cards = spec.cards or []
        if not 2 <= len(cards) <= 10:
            raise _invalid(
                f"{where}: a carousel has 2 to 10 cards, this one has {len(cards)}",
                "Give 2-10 cards, or use kind image for one picture",
                f"{where}.cards",
                code=100,
                error_subcode=1443050,
            )
        for j, card in enumerate(cards):
            if not (card.image or card.video):
                raise _invalid(
                    f"{where}.cards[{j}] has no image or video",
                    "Give each card an image (or a video)",
                    f"{where}.cards[{j}].image",
                    code=100,
                    error_subcode=1443050,
                )
            if card.video:
                media[f"card:{j}:video"] = check_video_source(
                    card.video, f"video:{index}.{j}", f"{where}.cards[{j}].video"
                )
            if card.image:
                media[f"card:{j}:image"] = check_image_source(
                    card.image, f"image:{index}.{j}", f"{where}.cards[{j}].image"
                )
    elif spec.kind == "page_post" and not spec.post_id:
        raise _invalid(
            f"{where}: a page_post creative needs post_id",
            "Pass the id of the page post to promote",
            f"{where}.post_id",
        )
    return media


def _cards(spec: LaunchCreativeSpec, values: dict[str, str]) -> list[dict[str, Any]] | None:
    if spec.kind != "carousel":
        return None
    cards = []
    for j, card in enumerate(spec.cards or []):
        entry: dict[str, Any] = {"link": card.link}
        if values.get(f"card:{j}:image"):
            entry["image_hash"] = values[f"card:{j}:image"]
        if values.get(f"card:{j}:video"):
            entry["video_id"] = values[f"card:{j}:video"]
        for key, value in (
            ("headline", card.headline),
            ("description", card.description),
            ("call_to_action", card.call_to_action),
        ):
            if value:
                entry[key] = value
        cards.append(entry)
    return cards


def build_creative_body(prepared: PreparedLaunch, creative: PreparedCreative, values: dict[str, str]) -> dict[str, Any]:
    """The creative's Graph body through fb_creative's creative_spec (its rules raise ValidationError)."""
    spec = creative.spec
    post = None
    if spec.kind == "page_post":
        post = spec.post_id if "_" in str(spec.post_id) else f"{prepared.page_id}_{spec.post_id}"
    return creative_spec(
        spec.kind,
        page_id=prepared.page_id,
        instagram_user_id=prepared.instagram_user_id,
        message=spec.message,
        link=spec.link,
        headline=spec.headline,
        description=spec.description,
        call_to_action=spec.call_to_action,
        image_hash=values.get("image") if spec.kind == "image" else None,
        video_id=values.get("video"),
        thumbnail_hash=values.get("image") if spec.kind == "video" else None,
        thumbnail_url=values.get("thumbnail_url"),
        cards=_cards(spec, values),
        object_story_id=post,
    )


def launch_key(account_id: str, request: dict[str, Any], fingerprints: list[str]) -> str:
    """SHA-256 of the normalized request (and of the files' contents): the same launch asked twice has the same key."""
    normalized = json.dumps(
        {"ad_account_id": account_id, "request": request, "files": fingerprints},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(normalized.encode()).hexdigest()


def step_tag(key: str, step: str) -> str:
    """The client tag of one step's create: the same on a resume, so a create whose answer was lost is found, not repeated."""
    return "am-" + hashlib.sha256(f"{key}:{step}".encode()).hexdigest()[:16]


def launch_lock(key: str) -> str:
    """The single-flight lease of a launch in the store: one request at a time runs, resumes or rolls it back."""
    return f"launch:{key}"


def adset_name(args: LaunchCampaignArgs) -> str:
    return args.adset.name or f"{args.campaign.name} · ad set"


def creative_name(args: LaunchCampaignArgs, index: int) -> str:
    spec = args.creatives[index]
    return spec.name or f"{args.campaign.name} · {spec.kind.replace('_', ' ')} {index + 1}"


def planned_ads(args: LaunchCampaignArgs) -> list[tuple[str, int]]:
    """(ad name, creative index) of each ad: the ads asked for, or one per creative named after it."""
    names = [creative_name(args, i) for i in range(len(args.creatives))]
    by_name = {name: i for i, name in enumerate(names)} | {c.name: i for i, c in enumerate(args.creatives) if c.name}
    wanted = args.ads or [LaunchAdSpec(creative=i) for i in range(len(args.creatives))]
    ads = []
    for ad in wanted:
        index = int(ad.creative) if isinstance(ad.creative, int) or str(ad.creative).isdigit() else by_name[ad.creative]
        ads.append((ad.name or names[index], index))
    return ads


def launch_objects(args: LaunchCampaignArgs) -> list[tuple[str, str, str]]:
    """(step, kind, name) of every object a launch creates, in the order it creates them; each step's tag is on it."""
    objects = [("campaign", "campaign", args.campaign.name), ("adset", "adset", adset_name(args))]
    objects += [(f"creative:{i}", "creative", creative_name(args, i)) for i in range(len(args.creatives))]
    objects += [(f"ad:{n}", "ad", name) for n, (name, _) in enumerate(planned_ads(args))]
    return objects


def _ops(ctx: OpContext) -> OpRunner:
    if ctx.ops is None:
        raise ValidationError(
            "Launching needs a session with the op runner",
            fix="Call launch_campaign through the facebook tool (fi_facebook)",
        )
    return ctx.ops


def _journal(ctx: OpContext) -> LaunchJournal:
    if ctx.journal is None:
        raise ValidationError(
            "Launches need a session with the launch journal", fix="Call through the facebook tool (fi_facebook)"
        )
    return ctx.journal


def _write_plan(planned: WritePlan | OpResult) -> WritePlan:
    """A create op's plan (the op runner answers an OpResult only for reads)."""
    if not isinstance(planned, WritePlan):
        raise TypeError(f"a create op answered without a write plan: {planned.text}")
    return planned


def _read_result(planned: WritePlan | OpResult) -> OpResult:
    if not isinstance(planned, OpResult):
        raise TypeError(f"a read op answered with a write plan: {planned.summary}")
    return planned


async def prepare_launch(ctx: OpContext, args: LaunchCampaignArgs) -> PreparedLaunch:
    """Every rule of every step checked, before the first write; raises the first refusal, naming its step."""
    if ctx.ops is None or ctx.journal is None:
        raise ValidationError(
            "Launching needs a session with the op runner and the launch journal",
            fix="Call launch_campaign through the facebook tool (fi_facebook)",
        )
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.account_info(account_id)
    page_id, notes = await _page(ctx, args)
    instagram_user_id = ctx.instagram_account_id
    campaign_args = _campaign_args(args, account_id)
    try:
        campaign_plan = await ctx.ops.plan("create_campaign", campaign_args)
    except FacebookError as error:
        raise _stopped_before_writing("campaign", error) from None

    targeting, placement_args, placement_notes = await _placements(ctx, args, bool(instagram_user_id))
    notes += placement_notes
    adset_args = {
        **args.adset.model_dump(mode="json", exclude_none=True, exclude={"placements", "targeting", "name"}),
        "name": adset_name(args),
        "targeting": targeting,
        **placement_args,
        "status": "PAUSED",
        "ad_account_id": account_id,
    }
    try:
        adset_plan = await ctx.ops.plan(
            "create_adset",
            {**adset_args, "campaign_id": PLANNED_CAMPAIGN_ID},
            objects={PLANNED_CAMPAIGN_ID: _planned_campaign(args, account)},
        )
    except FacebookError as error:
        raise _stopped_before_writing("ad set", error) from None

    if "creative_spec" not in globals():
        raise ValidationError(
            "Creatives are not available in this build",
            fix="Update Ad Monster; create the objects one by one meanwhile",
        )
    creatives: list[PreparedCreative] = []
    fingerprints: list[str] = []
    prepared = PreparedLaunch(
        args=args,
        account=account,
        page_id=page_id,
        instagram_user_id=instagram_user_id,
        campaign_args=campaign_args,
        adset_args=adset_args,
        creatives=creatives,
        ads=[],
        key="",
        request={},
        notes=notes,
    )
    for index, spec in enumerate(args.creatives):
        name = creative_name(args, index)
        media = _creative_media(index, spec)
        for item in media.values():  # one file used twice is uploaded once
            first = next(
                (m for c in creatives for m in c.media.values() if (m.kind, m.source) == (item.kind, item.source)), None
            )
            item.step = first.step if first else item.step
        fingerprints += [m.fingerprint for m in media.values()]
        creative = PreparedCreative(index, name, spec, media, {})
        stand_ins = {role: m.stand_in for role, m in media.items()}
        if spec.kind == "video" and "image" not in media:
            stand_ins["thumbnail_url"] = PENDING_THUMBNAIL
        try:
            creative.body = build_creative_body(prepared, creative, stand_ins)
            check_creative_locally(creative.body)
        except FacebookError as error:
            raise _stopped_before_writing(f"creative {name!r} (creatives[{index}])", error) from None
        creatives.append(creative)
    resolver = MediaResolver(ctx, account_id)
    for item in prepared.media():
        if item.kind == "video" and not item.upload:
            await _check_video_ready(ctx, item)
        elif item.kind == "image" and not item.upload:
            try:
                await resolver._check_hash(item.source, item.field_name)  # M2: a read, nothing is written
            except FacebookError as error:
                raise _stopped_before_writing(f"image {item.field_name}", error) from None

    prepared.ads = planned_ads(args)

    request = args.model_dump(mode="json", exclude_none=True)
    request.update(ad_account_id=account_id, page_id=page_id)
    prepared.request = request
    # The status is left out: the same launch asked again with status ACTIVE activates what the first one built.
    keyed = {k: v for k, v in request.items() if k != "status"}
    prepared.key = launch_key(account_id, {**keyed, "instagram_user_id": instagram_user_id}, fingerprints)
    prepared.planned = (list(getattr(campaign_plan, "requests", [])), list(getattr(adset_plan, "requests", [])))
    prepared.requests = _requests(prepared)
    prepared.changes = _changes(prepared, campaign_plan, adset_plan)
    return prepared


async def _check_video_ready(ctx: OpContext, item: Media) -> None:
    """M4: a video used by id must exist and have finished processing (a read; nothing is written)."""
    try:
        video = await ctx.graph.get(check_object_id(item.source, item.field_name), {"fields": "id,status"})
    except NotFoundError as error:
        raise _stopped_before_writing(f"video {item.source} ({item.field_name})", error) from None
    status = (
        (video.get("status") or {}).get("video_status")
        if isinstance(video.get("status"), dict)
        else video.get("status")
    )
    if status not in (None, "ready"):
        raise _invalid(
            f"{item.field_name}: video {item.source} is {status}, not ready",
            "Wait until the video has finished processing, then launch",
            item.field_name,
            code=100,
            error_subcode=1885252,
        )


def _step_tagged(request: GraphRequest, key: str, step: str) -> GraphRequest:
    """The request as the step sends it: carrying the step's tag (the audit entry records it, reconcile looks for it)."""
    return GraphRequest(request.method, request.path, {**request.params, "adlabels": [{"name": step_tag(key, step)}]})


def _requests(prepared: PreparedLaunch) -> list[GraphRequest]:
    """What the launch sends, each create with the tag its step sends (``prepared.key``'s): the gate audits these tags
    before the first write, so `reconcile` finds what a killed run made. Called again when a resume takes the key over."""
    account_id = prepared.account.id
    campaign_requests, adset_requests = prepared.planned
    requests: list[GraphRequest] = []
    requests += [_step_tagged(r, prepared.key, "campaign") if r.method == "POST" else r for r in campaign_requests]
    requests += [_step_tagged(r, prepared.key, "adset") if r.method == "POST" else r for r in adset_requests]
    for item in prepared.media():
        if item.upload:
            edge = "adimages" if item.kind == "image" else "advideos"
            requests.append(GraphRequest("POST", f"{account_id}/{edge}", {"source": item.source}))
    for creative in prepared.creatives:
        requests.append(
            _step_tagged(
                GraphRequest("POST", f"{account_id}/adcreatives", {"name": creative.name, **creative.body}),
                prepared.key,
                f"creative:{creative.index}",
            )
        )
    for number, (name, index) in enumerate(prepared.ads):
        requests.append(
            _step_tagged(
                GraphRequest(
                    "POST", f"{account_id}/ads", ad_create_body(name, "<ad set>", f"<creative {index}>", "PAUSED")
                ),
                prepared.key,
                f"ad:{number}",
            )
        )
    if prepared.args.status == "ACTIVE":
        requests += [GraphRequest("POST", f"<ad {n}>", {"status": "ACTIVE"}) for n, _ in prepared.ads]
        requests += [
            GraphRequest("POST", "<ad set>", {"status": "ACTIVE"}),
            GraphRequest("POST", "<campaign>", {"status": "ACTIVE"}),
        ]
    return requests


def _changes(prepared: PreparedLaunch, campaign_plan: Any, adset_plan: Any) -> list[Change]:
    status, currency = prepared.args.status, prepared.account.currency
    changes = [Change(None, "campaign", prepared.args.campaign.name, "status", None, status, currency)]
    changes += [c for c in getattr(campaign_plan, "changes", []) if c.field != "status"]
    changes.append(Change(None, "adset", prepared.adset_args["name"], "status", None, status, currency))
    changes += [c for c in getattr(adset_plan, "changes", []) if c.field != "status"]
    changes += [Change(None, "ad", name, "status", None, status, currency) for name, _ in prepared.ads]
    return changes


def launch_budget_words(prepared: PreparedLaunch) -> str:
    args, currency = prepared.args, prepared.account.currency
    budget_owner = args.campaign if (args.campaign.daily_budget or args.campaign.lifetime_budget) else args.adset
    budget = (
        f"{format_money(budget_owner.daily_budget, currency)}/day"
        if budget_owner.daily_budget
        else f"{format_money(budget_owner.lifetime_budget, currency)} lifetime"
        if budget_owner.lifetime_budget
        else "no budget"
    )
    return f"{'campaign budget' if budget_owner is args.campaign else 'ad set budget'} {budget}"


def launch_summary(prepared: PreparedLaunch) -> str:
    args = prepared.args
    uploads = [m for m in prepared.media() if m.upload]
    kinds = ", ".join(f"{c.name} ({c.spec.kind})" for c in prepared.creatives)
    return (
        f"launch campaign {args.campaign.name} ({args.status}) in {prepared.account.name} ({prepared.account.id}): "
        f"{args.campaign.objective}, {launch_budget_words(prepared)}; ad set {prepared.adset_args['name']}; "
        f"{len(uploads)} upload(s); {len(prepared.creatives)} creative(s): {kinds}; {len(prepared.ads)} ad(s): "
        + ", ".join(n for n, _ in prepared.ads)
    )


# -- running the steps ------------------------------------------------------------------------------------------


class StepFailed(Exception):
    def __init__(self, step: str, error: FacebookError) -> None:
        super().__init__(step)
        self.step = step
        self.error = error


STEP_WORDS = {
    "campaign": "campaign",
    "adset": "ad set",
    "image": "image upload",
    "video": "video upload",
    "creative": "creative",
    "ad": "ad",
    "activate": "activation",
}


def step_words(step: str) -> str:
    """A launch step as a person says it: "image:0" is the "image upload of creative 1", "ad:2" is "ad 3",
    "video:1.0" the "video upload of creative 2, card 1" (steps count from 0, people from 1)."""
    kind, _, rest = step.partition(":")
    words = STEP_WORDS.get(kind, kind)
    if kind in ("campaign", "adset") or not rest:
        return words
    numbers = [int(part) + 1 for part in rest.replace(":", ".").split(".") if part.isdigit()]
    if not numbers:
        return f"{words} {rest}"
    if kind in ("image", "video"):
        return f"{words} of creative {numbers[0]}" + (f", card {numbers[1]}" if len(numbers) > 1 else "")
    return f"{words} {numbers[0]}"


LAUNCH_PROGRESS = "launch steps"  # the progress channel's label for a launch: steps done of the launch's steps


class LaunchRun:
    """Runs a prepared launch's steps in order, skipping the ones the journal holds as done.

    It runs holding the launch's lease (``single_flight``). ``look_first``: a step not recorded as done may still have
    made its object (a run killed between the create and the journal), so each create first looks for the step's tag;
    only the first run of a launch just recorded skips that.
    """

    def __init__(
        self, ctx: OpContext, prepared: PreparedLaunch, record: LaunchRecord, lease: Lease, *, look_first: bool
    ) -> None:
        self.ctx = ctx
        self.prepared = prepared
        self.record = record
        self.lease = lease
        self.look_first = look_first
        self.lines: list[str] = []
        self.total_steps = 0  # set by run(): what the progress channel counts ("launch steps", n of total)
        self.finished_steps = 0

    async def step(self, name: str, action: Any) -> dict[str, Any]:
        done = self.record.done(name)
        if done:
            self.lines.append(f"  = {step_words(name)}: {done.get('object_id')} (done before)")
            await self._count_step()
            return done
        self.lease.ensure_held()
        creates = name.split(":")[0] in OBJECT_STEPS
        try:
            if creates:
                await self._settle_interrupted(name, self.record.steps.get(name))
                self.lease.ensure_held()
                await _journal(self.ctx).step_sending(self.record.id, name, {"sent_at": time.time()})
            object_id, data, line = await action()
        except FacebookError as error:
            await _journal(self.ctx).step_failed(self.record.id, name, {**error.to_data(), "text": error.to_text()})
            raise StepFailed(name, error) from None
        except Exception as error:  # a bug must not leave the launch "running" with no trace of where it stopped
            wrapped = FacebookError(
                f"Internal error at step {name}: {type(error).__name__}: {error}",
                fix="This is a bug in Ad Monster; resume_launch retries the step",
            )
            await _journal(self.ctx).step_failed(self.record.id, name, {**wrapped.to_data(), "text": wrapped.to_text()})
            raise StepFailed(name, wrapped) from error
        await _journal(self.ctx).step_done(self.record.id, name, object_id, data)
        entry = {"status": "done", "object_id": object_id, "data": data}
        self.record.steps[name] = entry
        self.lines.append(f"  ✓ {line}")
        await self._count_step()
        return entry

    async def _count_step(self) -> None:
        self.finished_steps += 1
        await report_progress(LAUNCH_PROGRESS, self.finished_steps, max(self.total_steps, self.finished_steps))

    async def _settle_interrupted(self, name: str, entry: dict[str, Any] | None) -> None:
        """A create an earlier run sent and never saw answered (its process was killed with the request on the wire, or
        the answer was lost and the look for it failed) may still land: Facebook finishes requests the client gave up
        on. So before this run sends it again, it looks for the step's tag until the settle window has passed since that
        send (the create then finds the object instead of making a second). A look that fails stops the step, unsent."""
        sent_at = _interrupted_send(entry)
        if sent_at is None:
            return
        lookup = self._lookup(name)
        deadline = sent_at + float(getattr(self.ctx.graph, "settle_window", DEFAULT_SETTLE_WINDOW))
        pause = 0.25
        while not await self.ctx.graph.find_tagged(lookup) and (left := deadline - time.time()) > 0:
            self.lease.ensure_held()
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 4.0)

    def _lookup(self, name: str) -> CreateLookup:
        kind, object_name = next((k, n) for step, k, n in launch_objects(self.prepared.args) if step == name)
        edge, statuses = TAGGED_EDGES[kind]
        return CreateLookup(
            f"{self.prepared.account.id}/{edge}", object_name, step_tag(self.prepared.key, name), statuses
        )

    async def run(self) -> dict[str, Any]:
        ctx, prepared = self.ctx, self.prepared
        account_id = prepared.account.id
        self.total_steps = (
            2
            + sum(1 for item in prepared.media() if item.upload)
            + len(prepared.creatives)
            + len(prepared.ads)
            + (len(prepared.ads) + 2 if prepared.args.status == "ACTIVE" else 0)
        )
        await report_progress(LAUNCH_PROGRESS, 0, self.total_steps)

        async def make_campaign() -> tuple[str, dict, str]:
            plan = _write_plan(
                await _ops(ctx).plan(
                    "create_campaign", {**prepared.campaign_args, "client_tag": step_tag(prepared.key, "campaign")}
                )
            )
            result = await plan.execute()
            return (
                result.data["id"],
                {"name": prepared.args.campaign.name},
                f"campaign {prepared.args.campaign.name} ({result.data['id']}) PAUSED"
                + (" (recovered a lost answer)" if result.data.get("recovered") else ""),
            )

        campaign_id = (await self.step("campaign", make_campaign))["object_id"]

        async def make_adset() -> tuple[str, dict, str]:
            plan = _write_plan(
                await _ops(ctx).plan(
                    "create_adset",
                    {**prepared.adset_args, "campaign_id": campaign_id, "client_tag": step_tag(prepared.key, "adset")},
                )
            )
            result = await plan.execute()
            return (
                result.data["id"],
                {"name": prepared.adset_args["name"]},
                f"ad set {prepared.adset_args['name']} ({result.data['id']}) PAUSED"
                + (" (recovered a lost answer)" if result.data.get("recovered") else ""),
            )

        adset_id = (await self.step("adset", make_adset))["object_id"]

        values: dict[str, str] = {}
        for item in prepared.media():
            if not item.upload:
                values[item.step] = item.source
                continue
            values[item.step] = (
                await self.step(item.step, lambda item=item: self._upload(item, step_tag(prepared.key, item.step)))
            )["object_id"]

        creative_ids: dict[int, str] = {}
        for creative in prepared.creatives:
            step = f"creative:{creative.index}"
            creative_ids[creative.index] = (
                await self.step(step, lambda c=creative, s=step: self._creative(c, s, values))
            )["object_id"]

        ad_ids: list[str] = []
        for number, (name, index) in enumerate(prepared.ads):
            step = f"ad:{number}"

            async def make_ad(name: str = name, index: int = index, step: str = step) -> tuple[str, dict, str]:
                body = ad_create_body(name, adset_id, creative_ids[index], "PAUSED")
                created = await create_ad_object(
                    ctx, account_id, body, step_tag(prepared.key, step), look_first=self.look_first
                )
                return (
                    created["id"],
                    {"name": name, "creative_id": creative_ids[index]},
                    f"ad {name} ({created['id']}) PAUSED"
                    + (" (recovered a lost answer)" if created.get("recovered") else ""),
                )

            ad_ids.append((await self.step(step, make_ad))["object_id"])

        if prepared.args.status == "ACTIVE":
            targets = [(f"activate:ad:{n}", ad_id, "ad") for n, ad_id in enumerate(ad_ids)]
            targets += [("activate:adset", adset_id, "ad set"), ("activate:campaign", campaign_id, "campaign")]
            for step, object_id, label in targets:

                async def activate(object_id: str = object_id, label: str = label) -> tuple[str, dict, str]:
                    await ctx.graph.post(object_id, {"status": "ACTIVE"}, idempotent=True)
                    return object_id, {"status": "ACTIVE"}, f"{label} {object_id} ACTIVE"

                await self.step(step, activate)
        return {
            "campaign_id": campaign_id,
            "adset_id": adset_id,
            "creative_ids": [creative_ids[i] for i in sorted(creative_ids)],
            "ad_ids": ad_ids,
            "uploads": {k: v for k, v in values.items()},
        }

    async def _upload(self, item: Media, tag: str) -> tuple[str, dict, str]:
        account_id = self.prepared.account.id
        if item.kind == "image":  # sent again on a resume: Facebook keeps an image once, under the md5 of its bytes
            uploaded = await upload_image_source(self.ctx, account_id, item.source)
            return (
                uploaded["hash"],
                {"source": item.source, "hash": uploaded["hash"]},
                f"image {Path(item.source).name} uploaded (hash {uploaded['hash']})",
            )
        found = await find_finished_upload(self.ctx, account_id, tag) if self.look_first else None
        if found:
            await wait_for_video(self.ctx, found)
            return (
                found,
                {"source": item.source, "video_id": found},
                f"video {Path(item.source).name} found already uploaded ({found})",
            )
        reported: list[int] = []

        def progress(sent: int, total: int) -> None:
            """Each quarter of the upload is one line of the answer (the progress channel shows every chunk)."""
            quarter = 100 if total <= 0 else (sent * 4 // total) * 25
            if quarter not in reported:
                reported.append(quarter)
                self.lines.append(f"    video {Path(item.source).name}: {quarter}% uploaded")

        uploaded = await upload_video_file(
            self.ctx,
            account_id,
            item.source,
            title=Path(item.source).stem,
            description=f"Uploaded by Ad Monster ({tag})",
            on_progress=progress,
            wait=True,
        )
        return (
            uploaded["video_id"],
            {"source": item.source, "video_id": uploaded["video_id"]},
            f"video {Path(item.source).name} uploaded ({uploaded['video_id']})",
        )

    async def _creative(self, creative: PreparedCreative, step: str, values: dict[str, str]) -> tuple[str, dict, str]:
        by_role = {role: values[m.step] for role, m in creative.media.items()}
        if creative.spec.kind == "video" and "image" not in by_role:
            by_role["thumbnail_url"] = await MediaResolver(self.ctx, self.prepared.account.id).thumbnail(
                by_role["video"]
            )
        body = build_creative_body(self.prepared, creative, by_role)
        created = await create_creative_from_spec(
            self.ctx,
            self.prepared.account.id,
            creative.name,
            body,
            tag=step_tag(self.prepared.key, step),
            look_first=self.look_first,
        )
        recovered = " (recovered a lost answer)" if created.get("recovered") else ""
        return (
            created["id"],
            {"name": creative.name, "kind": creative.spec.kind},
            f"creative {creative.name} ({created['id']}, {creative.spec.kind}){recovered}",
        )


# -- answers ----------------------------------------------------------------------------------------------------

OBJECT_STEPS = ("campaign", "adset", "creative", "ad")


def _interrupted_send(entry: dict[str, Any] | None) -> float | None:
    """When (epoch seconds) an earlier run sent this step's create without learning whether it landed, else None: the
    step is still marked sending (that run was killed), or it failed with its outcome unknown."""
    if not entry:
        return None
    unknown = entry.get("status") == "failed" and (entry.get("error") or {}).get("error") == OutcomeUnknownError.kind
    sent_at = (entry.get("data") or {}).get("sent_at")
    if (entry.get("status") == "sending" or unknown) and isinstance(sent_at, (int, float)):
        return float(sent_at)
    return None


def created_objects(record: LaunchRecord) -> list[tuple[str, str, str]]:
    """(step, object id, words) for every object the launch created and still has, in creation order."""
    out = []
    for step, entry in record.steps.items():
        kind = step.split(":")[0]
        if entry.get("status") == "done" and kind in OBJECT_STEPS + ("image", "video"):
            name = (entry.get("data") or {}).get("name") or ""
            out.append(
                (
                    step,
                    str(entry.get("object_id")),
                    f"{step_words(step)} {name} ({entry.get('object_id')})".replace("  ", " "),
                )
            )
    return out


def _object_ids(record: LaunchRecord) -> list[str]:
    return [object_id for step, object_id, _ in created_objects(record) if step.split(":")[0] in OBJECT_STEPS]


def failure_result(
    record: LaunchRecord, step: str, error: FacebookError, lines: list[str], verb: str = "stopped"
) -> OpResult:
    made = created_objects(record)
    fix = (
        f"resume_launch with launch_id={record.id} continues from the {step_words(step)} step (done steps are not redone); "
        f"rollback_launch with launch_id={record.id} deletes what this launch created"
    )
    head = (
        f"ERROR {error.kind}: launch #{record.id} {verb} at the {step_words(step)} step: "
        f"{error.to_text().removeprefix(f'ERROR {error.kind}: ')}"
    )
    text = [head, f"Next: {fix}."]
    text += lines
    text.append(
        "Created so far (all PAUSED, nothing spends): " + ("; ".join(w for _, _, w in made) if made else "nothing")
    )
    # A step whose answer was lost leaves the launch's outcome unknown (the audit says so until reconcile looks).
    return OpResult(
        text="\n".join(text),
        ok=False,
        data={
            "launch_id": record.id,
            "status": "failed",
            "already_launched": False,
            "failed_step": step,
            "error": error.to_data(),
            "outcome": "unknown" if is_ambiguous(error) else "error",
            "created": [{"step": s, "id": i} for s, i, _ in made],
            "object_ids": _object_ids(record),
            "next": [
                {"op": "resume_launch", "args": {"launch_id": record.id}},
                {"op": "rollback_launch", "args": {"launch_id": record.id}},
            ],
        },
    )


def done_result(
    record: LaunchRecord, outcome: dict[str, Any], lines: list[str], notes: list[str], status: str, head: str
) -> OpResult:
    text = [head] + lines
    if notes:
        text.append("Chosen for you: " + "; ".join(notes) + ".")
    if status == "PAUSED":
        text.append(
            "Everything is PAUSED: nothing spends. Ads go to review first (usually minutes); to start, launch the same "
            "request again with status ACTIVE: it switches the campaign, ad set and ads on (after your confirmation) "
            "and creates nothing new."
        )
    else:
        text.append("Everything is ACTIVE: the ads deliver once approved in review (usually minutes).")
    return OpResult(
        text="\n".join(text),
        data={
            "launch_id": record.id,
            "status": "done",
            "already_launched": False,
            **outcome,
            "notes": notes,
            "object_ids": _object_ids(record),
        },
    )


def _outcome_of(record: LaunchRecord) -> dict[str, Any]:
    def ids(kind: str) -> list[str]:
        return [
            str(e["object_id"])
            for s, e in record.steps.items()
            if s.split(":")[0] == kind and e.get("status") == "done"
        ]

    return {
        "campaign_id": (record.done("campaign") or {}).get("object_id"),
        "adset_id": (record.done("adset") or {}).get("object_id"),
        "creative_ids": ids("creative"),
        "ad_ids": ids("ad"),
    }


async def run_launch(
    ctx: OpContext, prepared: PreparedLaunch, record: LaunchRecord, head_verb: str, lease: Lease, *, look_first: bool
) -> OpResult:
    run = LaunchRun(ctx, prepared, record, lease, look_first=look_first)
    try:
        outcome = await run.run()
    except StepFailed as failed:
        fresh = await _journal(ctx).get(record.id) or record
        return failure_result(fresh, failed.step, failed.error, run.lines)
    await _journal(ctx).finish(record.id, "done")
    record.status = "done"
    head = (
        f"{head_verb} campaign {prepared.args.campaign.name} ({outcome['campaign_id']}) in {prepared.account.name}: "
        f"launch #{record.id}, {len(outcome['creative_ids'])} creative(s), {len(outcome['ad_ids'])} ad(s), {prepared.args.status}."
    )
    return done_result(record, outcome, run.lines, prepared.notes, prepared.args.status, head)


def earlier_run_result(record: LaunchRecord) -> OpResult:
    """The answer to a launch asked again: the first run's objects, or how to finish or undo a run that stopped."""
    if record.status == "done":
        outcome = _outcome_of(record)
        made = "; ".join(w for _, _, w in created_objects(record))
        return OpResult(
            text=f"Already launched as launch #{record.id}; nothing was created twice. Its objects: {made}.",
            data={
                "launch_id": record.id,
                "status": "done",
                "already_launched": True,
                **outcome,
                "object_ids": _object_ids(record),
            },
        )
    failed = record.failed_step()
    step = failed[0] if failed else next(reversed(record.steps), "campaign")
    error_data = (failed[1].get("error") if failed else None) or {}
    error = FacebookError(
        f"the same launch ran before and {'failed' if failed else 'did not finish'}: "
        f"{error_data.get('message', 'it was interrupted')}",
        fix=f"resume_launch with launch_id={record.id}, or rollback_launch with launch_id={record.id}",
    )
    result = failure_result(record, step, error, [])
    result.data["already_launched"] = True
    return result


def needs_activation(record: LaunchRecord, status: str) -> bool:
    """A finished PAUSED launch asked again with status ACTIVE: its objects exist, switching them on is left."""
    return record.status == "done" and status == "ACTIVE" and record.done("activate:campaign") is None


async def launch_once(ctx: OpContext, prepared: PreparedLaunch, head_verb: str) -> OpResult:
    """Run (or continue) the launch holding its lease. A request that waited for another one running the same launch
    reports that launch's objects (every step is done), creating nothing; one whose launch failed is told how to go on."""
    async with single_flight(
        _journal(ctx), launch_lock(prepared.key), f"launch of campaign {prepared.args.campaign.name}"
    ) as lease:
        first_run = await _journal(ctx).find(prepared.key) is None
        record = await _journal(ctx).start(prepared.key, prepared.request)
        if record.status == "failed" or (
            record.status == "done" and not needs_activation(record, prepared.args.status)
        ):
            return earlier_run_result(record)  # another request ran it while this one waited: this one made nothing
        return await run_launch(ctx, prepared, record, head_verb, lease, look_first=not first_run)


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.CREATIVES_LAUNCH,
    example={
        "campaign": {"name": "Summer Sale", "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000},
        "adset": {"targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 45}},
        "creatives": [
            {
                "kind": "image",
                "image": "./banner.jpg",
                "message": "Summer sale: 30% off",
                "link": "https://example.com/sale",
                "headline": "30% off everything",
                "call_to_action": "SHOP_NOW",
            }
        ],
    },
    result=LaunchOutcome,
)
async def launch_campaign(ctx: OpContext, args: LaunchCampaignArgs) -> WritePlan | OpResult:
    prepared = await prepare_launch(ctx, args)
    earlier = await _journal(ctx).find(prepared.key)
    if earlier is not None and needs_activation(earlier, args.status):
        return activation_plan(ctx, prepared, earlier)
    if earlier is not None and earlier.status in ("done", "failed"):
        return earlier_run_result(earlier)
    # New, rolled back, or running: here or in another process now (then this one waits for it), or in a process that
    # was killed (then this one takes over once its lease expires and continues from the last recorded step).

    async def execute() -> OpResult:
        return await launch_once(ctx, prepared, "Launched")

    summary = launch_summary(prepared)
    return WritePlan(
        summary=summary,
        ad_account_id=prepared.account.id,
        requests=prepared.requests,
        changes=prepared.changes,
        execute=execute,
        currency=prepared.account.currency,
        confirm_text=f"The launch: {summary}",
    )


def activation_plan(ctx: OpContext, prepared: PreparedLaunch, record: LaunchRecord) -> WritePlan:
    """A finished PAUSED launch asked again with status ACTIVE: switch its ads, ad set and campaign on, nothing else."""
    outcome = _outcome_of(record)

    async def execute() -> OpResult:
        return await launch_once(ctx, prepared, "Activated")

    changes = [
        Change(outcome["campaign_id"], "campaign", prepared.args.campaign.name, "status", "PAUSED", "ACTIVE"),
        Change(
            outcome["adset_id"],
            "adset",
            (record.done("adset") or {}).get("data", {}).get("name", ""),
            "status",
            "PAUSED",
            "ACTIVE",
        ),
    ]
    changes += [Change(ad_id, "ad", "", "status", "PAUSED", "ACTIVE") for ad_id in outcome["ad_ids"]]
    requests = [
        GraphRequest("POST", str(c.object_id), {"status": "ACTIVE"}) for c in reversed(changes)
    ]  # ids of the launch
    summary = (
        f"activate launch #{record.id}: campaign {prepared.args.campaign.name} ({outcome['campaign_id']}), its ad set "
        f"and {len(outcome['ad_ids'])} ad(s) switch to ACTIVE; {launch_budget_words(prepared)}"
    )
    return WritePlan(
        summary=summary,
        ad_account_id=prepared.account.id,
        requests=requests,
        changes=changes,
        execute=execute,
        currency=prepared.account.currency,
        confirm_text=f"The launch: {summary}",
    )


class LaunchIdArgs(OpArgs):
    launch_id: int = Field(..., ge=1, description="The launch's id, from launch_campaign's answer.")


class ResumeLaunchArgs(LaunchIdArgs):
    """Finish a launch that stopped part way: continues from the failed step; steps already done are not redone."""


class RollbackLaunchArgs(LaunchIdArgs):
    """Undo a launch: deletes the ads, creatives, ad set and campaign it created (ads first, the campaign last), also any
    an interrupted run made without recording them (found by the launch's tags); objects already gone count as done;
    uploaded media stay."""


class GetLaunchArgs(LaunchIdArgs):
    """Show a launch: its status and each step with the object it created or the error that stopped it."""


async def _record(ctx: OpContext, launch_id: int) -> LaunchRecord:
    if ctx.journal is None:
        raise ValidationError(
            "Launches need a session with the launch journal", fix="Call through the facebook tool (fi_facebook)"
        )
    record = await _journal(ctx).get(launch_id)
    if record is None:
        raise ValidationError(
            f"Launch #{launch_id} does not exist in this workspace",
            fix="Use the launch_id from launch_campaign's answer",
            blame_field="launch_id",
        )
    return record


@ops.op(OpKind.READ, group=TaskGroup.CREATIVES_LAUNCH, result=LaunchData)
async def get_launch(ctx: OpContext, args: GetLaunchArgs) -> OpResult:
    record = await _record(ctx, args.launch_id)
    lines = [
        f"Launch #{record.id}: {record.status} (campaign {record.request.get('campaign', {}).get('name', '?')}, "
        f"started {record.created_at[:19]}, updated {record.updated_at[:19]})"
    ]
    for step, entry in record.steps.items():
        detail = entry.get("object_id") or ""
        if entry.get("status") == "failed":
            detail = (entry.get("error") or {}).get("text") or (entry.get("error") or {}).get("message", "")
        lines.append(f"  {entry.get('status', '?'):<7} {step_words(step)}: {detail}")
    if record.status == "failed":
        lines.append(f"Next: resume_launch or rollback_launch with launch_id={record.id}.")
    return OpResult(
        text="\n".join(lines),
        data={"launch_id": record.id, "status": record.status, "steps": record.steps, "request": record.request},
    )


@ops.op(OpKind.SPEND, group=TaskGroup.CREATIVES_LAUNCH, result=LaunchOutcome)
async def resume_launch(ctx: OpContext, args: ResumeLaunchArgs) -> WritePlan | OpResult:
    record = await _record(ctx, args.launch_id)
    if record.status == "done":
        return earlier_run_result(record)
    if record.status == "rolled_back":
        raise ValidationError(
            f"Launch #{record.id} was rolled back; there is nothing to resume",
            fix="Run launch_campaign again with the same request to launch it anew",
        )
    request = {k: v for k, v in record.request.items()}
    try:
        launch_args = LaunchCampaignArgs.model_validate(request)
    except Exception as error:  # noqa: BLE001  (a record from an older version of the arguments)
        raise ValidationError(
            f"Launch #{record.id}'s recorded request no longer validates: {error}",
            fix=f"rollback_launch with launch_id={record.id}, then launch again",
        ) from None
    prepared = await prepare_launch(ctx, launch_args)
    prepared.key = record.key  # tags of the remaining steps stay those of the first run
    prepared.requests = _requests(prepared)
    remaining = [c for c in prepared.changes if not _change_done(record, c)]

    async def execute() -> OpResult:
        async with single_flight(_journal(ctx), launch_lock(record.key), f"launch #{record.id}") as lease:
            current = await _journal(ctx).get(record.id) or record
            if current.status == "done":  # another request finished it while this one waited
                return earlier_run_result(current)
            if current.status == "rolled_back":  # another request undid it while this one waited: as when asked after
                raise ValidationError(
                    f"Launch #{record.id} was rolled back while this request waited; there is nothing to resume",
                    fix="Run launch_campaign again with the same request to launch it anew",
                )
            await _journal(ctx).finish(record.id, "running")
            current.status = "running"
            return await run_launch(ctx, prepared, current, "Resumed and finished", lease, look_first=True)

    summary = f"resume launch #{record.id}: " + launch_summary(prepared)
    return WritePlan(
        summary=summary,
        ad_account_id=prepared.account.id,
        requests=prepared.requests,
        changes=remaining,
        execute=execute,
        currency=prepared.account.currency,
        confirm_text=f"The launch: {summary}",
    )


def _change_done(record: LaunchRecord, change: Change) -> bool:
    """Whether a planned change is already in place (its object created, or already activated), so the gate skips it."""
    if change.object_type == "campaign":
        step = "activate:campaign" if change.after == "ACTIVE" and change.field == "status" else "campaign"
    elif change.object_type == "adset":
        step = "activate:adset" if change.after == "ACTIVE" and change.field == "status" else "adset"
    else:
        return False
    return record.done(step) is not None


# Dependents first: Facebook refuses to delete a creative an ad uses, and an ad set's ads go with it.
ROLLBACK_ORDER = ("ad", "creative", "adset", "campaign")
CAMPAIGN_LIVE_STATUSES = tuple(s for s in sdk_enum_values(Campaign.EffectiveStatus) if s != "DELETED")
ADSET_LIVE_STATUSES = tuple(s for s in sdk_enum_values(AdSet.EffectiveStatus) if s != "DELETED")
TAGGED_EDGES = {
    "campaign": ("campaigns", CAMPAIGN_LIVE_STATUSES),
    "adset": ("adsets", ADSET_LIVE_STATUSES),
    "creative": ("adcreatives", None),
    "ad": ("ads", LOOKUP_AD_STATUSES),
}


@dataclass(frozen=True)
class RollbackTarget:
    kind: str  # ad, creative, adset, campaign
    object_id: str
    words: str  # "creative Summer · image 1 (120…)"
    step: str | None  # its journal step; None for an object the journal never heard of (a run killed after the create)


async def rollback_targets(ctx: OpContext, record: LaunchRecord) -> tuple[list[RollbackTarget], list[str]]:
    """What a rollback deletes, in ROLLBACK_ORDER: the journal's objects, and every object carrying one of the launch's
    step tags that the journal does not hold. Also the notes for the answer."""
    targets = [
        RollbackTarget(step.split(":")[0], object_id, words, step)
        for step, object_id, words in created_objects(record)
        if step.split(":")[0] in OBJECT_STEPS
    ]
    notes: list[str] = []
    try:
        args = LaunchCampaignArgs.model_validate(record.request)
    except PydanticValidationError:
        notes.append(
            "objects outside the journal were not looked for: the launch's recorded request no longer validates"
        )
        args = None
    known = {t.object_id for t in targets}
    account = str(record.request.get("ad_account_id") or "")
    for step, kind, name in launch_objects(args) if args is not None and account else []:
        edge, statuses = TAGGED_EDGES[kind]
        lookup = CreateLookup(f"{normalize_ad_account_id(account)}/{edge}", name, step_tag(record.key, step), statuses)
        for object_id in await find_all_tagged(ctx.graph, lookup):
            if object_id not in known:
                known.add(object_id)
                targets.append(RollbackTarget(kind, object_id, f"{step_words(step)} {name} ({object_id})", None))
    targets.sort(key=lambda t: ROLLBACK_ORDER.index(t.kind))
    return targets, notes


async def delete_unless_gone(ctx: OpContext, object_id: str) -> bool:
    """Delete the object; False when it was already gone (not found, or already DELETED), which counts as done."""
    try:
        current = await ctx.graph.get(object_id, {"fields": "id,status"})
        if current.get("status") == "DELETED":
            return False
        await ctx.graph.delete(object_id)
    except NotFoundError:
        return False
    return True


def _kept_media(record: LaunchRecord) -> list[str]:
    """The media a launch uploaded, in words: a rollback leaves them in the ad account's library."""
    return [w for s, _, w in created_objects(record) if s.split(":")[0] in ("image", "video")]


def rolled_back_result(record: LaunchRecord) -> OpResult:
    return OpResult(
        text=f"Launch #{record.id} is already rolled back; nothing left to delete.",
        data={
            "launch_id": record.id,
            "status": "rolled_back",
            "deleted": [],
            "already_gone": [],
            "orphans": [],
            "kept_media": _kept_media(record),
            "object_ids": [],
        },
    )


async def roll_back(
    ctx: OpContext, record: LaunchRecord, targets: list[RollbackTarget], notes: list[str], lease: Lease
) -> OpResult:
    deleted: list[str] = []
    gone: list[str] = []
    lines = [f"Rolled back launch #{record.id}:"]
    for target in targets:
        lease.ensure_held()
        try:
            removed = await delete_unless_gone(ctx, target.object_id)
        except FacebookError as error:
            lines.append(f"  ✗ {target.words}: {error.to_text()}")
            text = "\n".join(
                [
                    f"ERROR {error.kind}: rollback of launch #{record.id} stopped at {target.words}: {error.message}. "
                    f"Fix: call rollback_launch with launch_id={record.id} again (what is deleted stays deleted)."
                ]
                + lines[1:]
            )
            return OpResult(
                text=text,
                ok=False,
                data={
                    "launch_id": record.id,
                    "status": record.status,
                    "deleted": deleted,
                    "already_gone": gone,
                    "failed": target.object_id,
                    "error": error.to_data(),
                    "object_ids": deleted,
                },
            )
        if target.step:
            await _journal(ctx).step_deleted(record.id, target.step)
        (deleted if removed else gone).append(target.object_id)
        orphan = "" if target.step else " (made by an interrupted run, not in the journal)"
        lines.append(f"  {'deleted' if removed else 'already gone:'} {target.words}{orphan}")
    await _journal(ctx).finish(record.id, "rolled_back")
    if not targets:
        lines.append("  nothing had been created")
    uploads = _kept_media(record)
    if uploads:
        lines.append(
            "Uploaded media stay in the ad account's library (Facebook keeps them; they cost nothing): "
            + "; ".join(uploads)
            + "."
        )
    lines += [f"Note: {note}." for note in notes]
    return OpResult(
        text="\n".join(lines),
        data={
            "launch_id": record.id,
            "status": "rolled_back",
            "deleted": deleted,
            "already_gone": gone,
            "orphans": [t.object_id for t in targets if not t.step],
            "kept_media": uploads,
            "object_ids": deleted,
        },
    )


@ops.op(OpKind.WRITE, group=TaskGroup.CREATIVES_LAUNCH, destructive=True, idempotent=True, result=RolledBackLaunch)
async def rollback_launch(ctx: OpContext, args: RollbackLaunchArgs) -> WritePlan | OpResult:
    record = await _record(ctx, args.launch_id)
    if record.status == "rolled_back":
        return rolled_back_result(record)
    targets, _ = await rollback_targets(ctx, record)

    async def execute() -> OpResult:
        async with single_flight(_journal(ctx), launch_lock(record.key), f"launch #{record.id}") as lease:
            current = await _journal(ctx).get(record.id) or record  # as it stands once no other request runs it
            if current.status == "rolled_back":
                return rolled_back_result(current)
            return await roll_back(ctx, current, *await rollback_targets(ctx, current), lease)

    changes = [Change(t.object_id, t.kind, t.words, "status", None, "DELETED") for t in targets]
    return WritePlan(
        summary=f"roll back launch #{record.id}: delete {len(targets)} object(s)",
        ad_account_id=None,
        requests=[GraphRequest("DELETE", t.object_id) for t in targets],
        changes=changes,
        execute=execute,
    )

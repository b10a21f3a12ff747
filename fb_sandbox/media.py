"""Images and videos: `act_x/adimages`, `act_x/advideos` (simple and chunked), `/{video_id}` and its thumbnails,
plus the CDN-like `/__sandbox/media/...` file routes and the test-support `/__sandbox/files/...` samples.

Rules M1 and M3 of docs/creative_rules.md, written from that table and GRAPH_API.md (never from the product's
client). Bytes live on disk (a temporary directory per in-memory sandbox, `<db>.media/` next to a database file):
a 200 MB chunked upload streams chunk by chunk to its file and never sits in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import shutil
import struct
import tempfile
import weakref
import zlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiohttp import web

from .clock import iso
from .context import Ctx
from .errors import GraphError, param_error
from .fields import parse_fields, select
from .paging import paginate
from .state import Sandbox
from .store import Obj

MAX_IMAGE_BYTES = 30 * 1024 * 1024
MAX_VIDEO_BYTES = 10 * 1024**3
IMAGE_SUBCODE = 1487242
UPLOAD_CODE, UPLOAD_SUBCODE = 6001, 1363037
IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "tiff": "image/tiff",
}
VIDEO_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "bin": "application/octet-stream",
}
QUICKTIME_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}
IMAGE_DEFAULT_FIELDS = ["hash", "id"]
VIDEO_DEFAULT_FIELDS = ["id", "title", "description", "updated_time"]
UPLOAD_PHASES = ["start", "transfer", "finish"]


# ---- where the bytes live


class MediaFiles:
    """One sandbox's media directory: images/<md5>.<ext> and videos/<video_id>.<ext>."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = root / "images"
        self.videos = root / "videos"
        self.images.mkdir(parents=True, exist_ok=True)
        self.videos.mkdir(parents=True, exist_ok=True)


def media_files(sb: Sandbox) -> MediaFiles:
    files = getattr(sb, "_media_files", None)
    if files is None:
        path = sb.store.path
        if path in (":memory:", "") or path.startswith("file::memory:"):
            root = Path(tempfile.mkdtemp(prefix="fb_sandbox_media_"))
            weakref.finalize(sb, shutil.rmtree, str(root), True)
        else:
            root = Path(path + ".media")
        files = MediaFiles(root)
        sb._media_files = files  # type: ignore[attr-defined]
    return files


# ---- image sniffing (M1): the real type and size from the header, no Pillow


class NotAnImage(ValueError):
    pass


def sniff_image(data: bytes) -> tuple[str, int, int]:
    """(extension, width, height) of a JPEG, PNG, GIF, BMP, TIFF or WebP; NotAnImage otherwise."""
    if not data:
        raise NotAnImage("the file is empty")
    for magic, parser in (
        (b"\x89PNG\r\n\x1a\n", _png),
        (b"\xff\xd8\xff", _jpeg),
        (b"GIF87a", _gif),
        (b"GIF89a", _gif),
        (b"BM", _bmp),
        (b"II*\x00", _tiff),
        (b"MM\x00*", _tiff),
    ):
        if data.startswith(magic):
            ext, width, height = parser(data)
            break
    else:
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            ext, width, height = _webp(data)
        else:
            raise NotAnImage("the file is not a JPEG, PNG, GIF, BMP, TIFF or WebP image")
    if not (0 < width <= 65535 * 4 and 0 < height <= 65535 * 4):
        raise NotAnImage(f"the image header has an impossible size {width}x{height}")
    return ext, width, height


def _png(data: bytes) -> tuple[str, int, int]:
    pos, size = 8, None
    seen: list[bytes] = []
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise NotAnImage(f"the PNG chunk {kind!r} is truncated")
        body = data[pos + 8 : pos + 8 + length]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4 : end])[0]:
            raise NotAnImage(f"the PNG chunk {kind.decode('latin-1')!r} fails its CRC")
        if not seen and kind != b"IHDR":
            raise NotAnImage("the PNG does not start with an IHDR chunk")
        if kind == b"IHDR":
            if length != 13:
                raise NotAnImage("the PNG IHDR chunk has the wrong length")
            size = struct.unpack(">II", body[:8])
        seen.append(kind)
        pos = end
        if kind == b"IEND":
            break
    if size is None or b"IDAT" not in seen or b"IEND" not in seen:
        raise NotAnImage("the PNG has no image data (IHDR, IDAT and IEND are required)")
    return "png", size[0], size[1]


def _jpeg(data: bytes) -> tuple[str, int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise NotAnImage("the JPEG has a broken marker sequence")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if length < 2 or pos + 2 + length > len(data):
            raise NotAnImage("the JPEG has a truncated segment")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if length < 8:
                raise NotAnImage("the JPEG frame header is too short")
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return "jpg", width, height
        pos += 2 + length
    raise NotAnImage("the JPEG has no frame header (SOF) before its image data")


def _gif(data: bytes) -> tuple[str, int, int]:
    if len(data) < 13:
        raise NotAnImage("the GIF header is truncated")
    width, height = struct.unpack("<HH", data[6:10])
    return "gif", width, height


def _bmp(data: bytes) -> tuple[str, int, int]:
    if len(data) < 26:
        raise NotAnImage("the BMP header is truncated")
    dib = struct.unpack("<I", data[14:18])[0]
    if dib == 12:
        width, height = struct.unpack("<HH", data[18:22])
    elif dib in (40, 52, 56, 64, 108, 124):
        width, height = struct.unpack("<ii", data[18:26])
    else:
        raise NotAnImage("the BMP has an unknown header")
    return "bmp", width, abs(height)


def _webp(data: bytes) -> tuple[str, int, int]:
    if len(data) < 30:
        raise NotAnImage("the WebP header is truncated")
    kind = data[12:16]
    if kind == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise NotAnImage("the WebP VP8 frame has no start code")
        width, height = struct.unpack("<HH", data[26:30])
        return "webp", width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        if data[20] != 0x2F:
            raise NotAnImage("the WebP VP8L stream has no signature")
        bits = int.from_bytes(data[21:25], "little")
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return "webp", int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise NotAnImage("the WebP has no VP8, VP8L or VP8X chunk")


def _tiff(data: bytes) -> tuple[str, int, int]:
    order = "<" if data[:2] == b"II" else ">"
    try:
        offset = struct.unpack(order + "I", data[4:8])[0]
        count = struct.unpack(order + "H", data[offset : offset + 2])[0]
        found: dict[int, int] = {}
        for i in range(count):
            entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, kind, _n = struct.unpack(order + "HHI", entry[:8])
            if tag in (256, 257):
                value = entry[8:12]
                short = kind == 3
                found[tag] = struct.unpack(order + ("H" if short else "I"), value[:2] if short else value)[0]
    except struct.error:
        raise NotAnImage("the TIFF image file directory is truncated") from None
    if 256 not in found or 257 not in found:
        raise NotAnImage("the TIFF has no ImageWidth/ImageLength")
    return "tiff", found[256], found[257]


# ---- generated files: PNG (pure zlib), a minimal JPEG, an MP4 header


def make_png(width: int, height: int, color=(24, 119, 242)) -> bytes:
    """A valid RGB PNG: a vertical gradient of `color` (rows repeat, so it compresses to almost nothing)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = []
    for y in range(height):
        shade = y * 255 // max(1, height - 1)
        pixel = bytes(((c + shade) // 2) for c in color)
        rows.append(b"\x00" + pixel * width)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def make_jpeg(width: int = 64, height: int = 48) -> bytes:
    """A valid baseline grayscale JPEG (mid gray): one-symbol Huffman tables, every block DC diff 0 + EOB."""

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = "00" * blocks
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    one_code = bytes([1] + [0] * 15)
    return (
        b"\xff\xd8"
        + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + segment(0xDB, b"\x00" + b"\x01" * 64)
        + segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
        + segment(0xC4, b"\x00" + one_code + b"\x00")
        + segment(0xC4, b"\x10" + one_code + b"\x00")
        + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + scan
        + b"\xff\xd9"
    )


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def make_mp4(seconds: int = 10, payload: int = 1024 * 1024) -> bytes:
    """ftyp + moov/mvhd (the duration) + mdat of deterministic bytes: a plausible MP4 container."""
    mvhd = struct.pack(">B3xIIII", 0, 0, 0, 1000, seconds * 1000) + b"\x00\x01\x00\x00\x01\x00" + b"\x00" * 70
    seed = hashlib.sha256(b"fb_sandbox sample.mp4").digest()
    data = (seed * (payload // len(seed) + 1))[:payload]
    return (
        _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41")
        + _box(b"moov", _box(b"mvhd", mvhd))
        + _box(b"mdat", data)
    )


def make_corrupt_png() -> bytes:
    good = make_png(16, 16)
    return good[:16] + b"\x00\x00\x00\x10" + b"\xde\xad\xbe\xef" * 3 + good[33:60]


@cache
def sample_file(name: str) -> tuple[bytes, str] | None:
    makers = {
        "sample.png": (lambda: make_png(1080, 1080), "image/png"),
        "sample.jpg": (make_jpeg, "image/jpeg"),
        "corrupt.png": (make_corrupt_png, "image/png"),
        "sample.mp4": (make_mp4, "video/mp4"),
    }
    if name not in makers:
        return None
    maker, ctype = makers[name]
    return maker(), ctype


@cache
def thumbnail_png() -> bytes:
    return make_png(320, 180, color=(66, 183, 42))


# ---- errors


class ResumeError(GraphError):
    """6001/1363037 with `error_data` an object {start_offset, end_offset} (the SDK's uploader indexes it)."""

    def __init__(self, message: str, start: int, end: int, blame: str = "start_offset") -> None:
        super().__init__(
            message,
            UPLOAD_CODE,
            subcode=UPLOAD_SUBCODE,
            user_title="Video upload interrupted",
            user_msg=f"{message} Resume by sending bytes {start} to {end}.",
            blame=blame,
            error_data={"start_offset": str(start), "end_offset": str(end), "blame_field_specs": [[blame]]},
        )

    def body(self, trace_id: str | None = None) -> dict:
        out = super().body(trace_id)
        out["error"]["error_data"] = self.error_data
        return out


def image_error(message: str, blame: str) -> GraphError:
    return param_error(message, field=blame, subcode=IMAGE_SUBCODE, title="Invalid Image", user_msg=message)


# ---- images


def _account(ctx: Ctx) -> Obj:
    return ctx.load_account(ctx.match[0])


def image_url(ctx: Ctx, hash_: str, ext: str) -> str:
    return f"{ctx.call.base_url}/__sandbox/media/images/{hash_}.{ext}"


def find_image(ctx: Ctx, act_id: str, hash_: str) -> Obj | None:
    """The image of that ad account with that hash, or None (rule M2 for creatives)."""
    obj = ctx.store.get(f"{act_id.removeprefix('act_')}:{hash_}")
    return obj if obj is not None and obj.type == "adimage" else None


def _image_inputs(ctx: Ctx) -> list[tuple[str, bytes, str]]:
    """(key, bytes, blame) for each uploaded image: multipart files (keyed by field name, which clients set to
    the file name) first, then `bytes` (base64, keyed by `name` or "bytes")."""
    out = [(name, data, "filename") for name, data in ctx.call.files.items()]
    if "bytes" in ctx.p:
        text = ctx.p.str("bytes", required=True)
        try:
            data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
        except (binascii.Error, ValueError):
            raise image_error("The bytes parameter is not valid base64.", "bytes") from None
        name = ctx.p.str("name") or "bytes"
        out.append((name, data, "bytes"))
    if not out:
        raise image_error("No image was uploaded: send a multipart file or the bytes parameter (base64).", "filename")
    return out


def _display_name(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1][:255] or "image"


def upload_images(ctx: Ctx) -> dict:
    account = _account(ctx)
    checked = []
    for name, data, blame in _image_inputs(ctx):
        if len(data) > MAX_IMAGE_BYTES:
            raise image_error(
                f"The image {_display_name(name)} is {len(data)} bytes; images may be at most "
                f"{MAX_IMAGE_BYTES} bytes (30 MB).",
                blame,
            )
        try:
            ext, width, height = sniff_image(data)
        except NotAnImage as exc:
            raise image_error(f"The file {_display_name(name)} is not a valid image: {exc}.", blame) from None
        checked.append((name, data, ext, width, height))
    files = media_files(ctx.sb)
    answer = {}
    for name, data, ext, width, height in checked:
        hash_ = hashlib.md5(data).hexdigest()
        path = files.images / f"{hash_}.{ext}"
        if not path.exists():
            _write_atomic(path, data)
        obj_id = f"{account['account_id']}:{hash_}"
        if ctx.store.get(obj_id) is None:
            record = {
                "id": obj_id,
                "hash": hash_,
                "account_id": account["account_id"],
                "name": _display_name(name),
                "width": width,
                "height": height,
                "_ext": ext,
                "_bytes": len(data),
                "status": "ACTIVE",
            }
            ctx.store.insert("adimage", obj_id, record, account_id=account["id"], now=ctx.now)
        answer[name] = {"hash": hash_, "url": image_url(ctx, hash_, ext), "width": width, "height": height}
    return {"images": answer}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _image_value(ctx: Ctx, img: Obj, name: str) -> Any:
    if name in ("url", "url_128", "permalink_url"):
        return image_url(ctx, img["hash"], img["_ext"])
    if name == "created_time":
        return iso(img.created)
    if name == "updated_time":
        return iso(img.updated)
    if name in ("original_width", "original_height"):
        return img[name.removeprefix("original_")]
    if name == "is_associated_creatives_in_adgroups":
        return False
    if name.startswith("_") or name in ("bytes", "filename", "copy_from"):
        return None
    return img.get(name)


def list_images(ctx: Ctx) -> dict:
    account = _account(ctx)
    hashes = ctx.p.list("hashes")
    if hashes is not None and not all(isinstance(h, str) for h in hashes):
        raise param_error("Param hashes must be an array of image hashes (strings)", field="hashes")
    items = sorted(ctx.store.list("adimage", account_id=account["id"]), key=lambda o: o.seq, reverse=True)
    if hashes:
        items = [i for i in items if i["hash"] in set(hashes)]
    names = parse_fields(ctx.p.get("fields")) or IMAGE_DEFAULT_FIELDS
    select("AdImage", names, IMAGE_DEFAULT_FIELDS, lambda n: None)  # unknown names refused even on an empty page
    return paginate(
        ctx, items, lambda i: select("AdImage", names, IMAGE_DEFAULT_FIELDS, lambda n: _image_value(ctx, i, n))
    )


def delete_image(ctx: Ctx) -> dict:
    account = _account(ctx)
    hash_ = ctx.p.str("hash", required=True)
    img = find_image(ctx, account["id"], hash_)
    if img is None:
        raise param_error(f"Image with hash {hash_} does not exist in this ad account", field="hash")
    _remove(ctx, img["id"])
    if not any(o["hash"] == hash_ for o in ctx.store.list("adimage")):
        (media_files(ctx.sb).images / f"{hash_}.{img['_ext']}").unlink(missing_ok=True)
    return {"success": True}


def _remove(ctx: Ctx, obj_id: str) -> None:
    with ctx.store.lock:
        ctx.store.db.execute("DELETE FROM objects WHERE id=?", (obj_id,))


# ---- videos


def _video_file(ctx: Ctx, v: dict) -> Path:
    return media_files(ctx.sb).videos / v["_file"]


def _parse_size(ctx: Ctx) -> int:
    raw = ctx.p.get("file_size")
    if raw is None or raw == "":
        raise param_error("The parameter file_size is required", field="file_size")
    text = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    if text is None or not re.fullmatch(r"-?\d{1,40}", text):
        raise param_error("Param file_size must be an integer number of bytes.", field="file_size")
    size = int(text)
    if not 1 <= size <= MAX_VIDEO_BYTES:
        raise GraphError(
            "(#6001) The video file size must be between 1 byte and 10 GB.",
            UPLOAD_CODE,
            subcode=UPLOAD_SUBCODE,
            user_title="Invalid video size",
            user_msg=f"file_size {text} is outside 1 byte to 10 GB.",
            blame="file_size",
        )
    return size


def _chunk_end(v: dict) -> int:
    return min(v["file_size"], v["_received"] + v["_chunk"])


def _new_video(ctx: Ctx, account: Obj, size: int, **extra: Any) -> dict:
    video_id = ctx.store.new_id("video")
    v = {
        "id": video_id,
        "account_id": account["account_id"],
        "file_size": size,
        "_received": 0,
        "_chunk": ctx.sb.config.video_chunk_bytes,
        "_phase": "uploading",
        "_file": f"{video_id}.part",
        "_processing_seconds": ctx.sb.config.video_processing_seconds,
        **extra,
    }
    for name in ("title", "description", "name"):
        if name in ctx.p:
            v[name] = ctx.p.str(name)
    return v


def _session(ctx: Ctx, account: Obj) -> Obj:
    sid = ctx.p.str("upload_session_id", required=True)
    video_id = ctx.store.kv_get(f"upload_session:{sid}") if sid.isdigit() else None
    v = ctx.store.get(video_id) if isinstance(video_id, str) else None
    if v is None or v.type != "video" or v.account_id != account["id"]:
        raise param_error(
            f"Invalid upload_session_id {sid}: no upload session of this ad account has that id.",
            field="upload_session_id",
        )
    return v


def create_video(ctx: Ctx) -> dict:
    account = _account(ctx)
    phase = ctx.p.str("upload_phase")
    if phase is None:
        return _simple_upload(ctx, account)
    phase = phase.lower()
    if phase not in UPLOAD_PHASES:
        raise param_error(f"Param upload_phase must be one of {{{', '.join(UPLOAD_PHASES)}}}", field="upload_phase")
    return {"start": _start, "transfer": _transfer, "finish": _finish}[phase](ctx, account)


def _start(ctx: Ctx, account: Obj) -> dict:
    size = _parse_size(ctx)
    sid = ctx.store.new_id("upload_session")
    v = _new_video(ctx, account, size, _session_id=sid)
    _video_file(ctx, v).write_bytes(b"")
    ctx.store.insert("video", v["id"], v, account_id=account["id"], now=ctx.now)
    ctx.store.kv_set(f"upload_session:{sid}", v["id"])
    return {"upload_session_id": sid, "video_id": v["id"], "start_offset": "0", "end_offset": str(_chunk_end(v))}


def _transfer(ctx: Ctx, account: Obj) -> dict:
    v = _session(ctx, account)
    expected = (v["_received"], _chunk_end(v))
    if v["_phase"] != "uploading":
        raise ResumeError("(#6001) This upload session is already finished.", *expected)
    if ctx.sb.faults.take_media("video_chunk", ctx.call.method, ctx.call.path, "before"):
        raise ResumeError(
            "(#6001) There was a problem uploading your video file (injected fault). Please try again.", *expected
        )
    raw_start = ctx.p.get("start_offset")
    text = str(raw_start).strip() if isinstance(raw_start, (str, int)) and not isinstance(raw_start, bool) else ""
    if not re.fullmatch(r"\d{1,20}", text):
        raise ResumeError("(#6001) Param start_offset must be a non-negative integer.", *expected)
    chunk = ctx.call.files.get("video_file_chunk")
    if chunk is None:
        raise param_error(
            "The video_file_chunk file is required for upload_phase=transfer (multipart).", field="video_file_chunk"
        )
    if int(text) != expected[0]:
        raise ResumeError(
            f"(#6001) The chunk starts at offset {text} but the upload session expects offset {expected[0]}.", *expected
        )
    if len(chunk) != expected[1] - expected[0]:
        raise ResumeError(
            f"(#6001) The chunk has {len(chunk)} bytes but the upload session expects "
            f"{expected[1] - expected[0]} (bytes {expected[0]} to {expected[1]}).",
            *expected,
        )
    with open(_video_file(ctx, v), "r+b") as handle:
        handle.seek(expected[0])
        handle.write(chunk)
    v["_received"] = expected[1]
    ctx.store.update(v["id"], v, now=ctx.now)
    following = (v["_received"], _chunk_end(v))
    if ctx.sb.faults.take_media("video_chunk", ctx.call.method, ctx.call.path, "after"):
        raise ResumeError(
            "(#6001) There was a problem uploading your video file (injected fault). Please try again.", *following
        )
    return {"start_offset": str(following[0]), "end_offset": str(following[1])}


def _finish(ctx: Ctx, account: Obj) -> dict:
    v = _session(ctx, account)
    if v["_phase"] != "uploading":
        return {"success": True}
    if v["_received"] < v["file_size"]:
        raise ResumeError(
            f"(#6001) The upload is not complete: {v['_received']} of {v['file_size']} bytes arrived.",
            v["_received"],
            _chunk_end(v),
        )
    for name in ("title", "description", "name"):
        if name in ctx.p:
            v[name] = ctx.p.str(name)
    _complete(ctx, v)
    ctx.store.update(v["id"], v, now=ctx.now)
    return {"success": True}


def _complete(ctx: Ctx, v: dict) -> None:
    """The bytes are all there: inspect the container, name the file, start processing on the sandbox clock."""
    path = _video_file(ctx, v)
    kind, reason, length = inspect_video(path)
    final = path.with_name(f"{v['id']}.{kind}")
    os.replace(path, final)
    v.update(
        _file=final.name,
        _phase="finished",
        _finished_at=ctx.now,
        _error=reason,
        _ext=kind,
        length=length,
        _thumb_id=ctx.store.new_id("video"),
    )


def _simple_upload(ctx: Ctx, account: Obj) -> dict:
    if "slideshow_spec" in ctx.p:
        raise param_error(
            "slideshow_spec is not supported by the sandbox: upload a video file.", field="slideshow_spec"
        )
    source: bytes | Path | None = ctx.call.files.get("source")
    if source is None and "file_url" in ctx.p:
        source = fetch_local(ctx, ctx.p.str("file_url", required=True))
    if source is None:
        raise param_error(
            "Upload a video: a multipart source file, a file_url, or upload_phase=start for a chunked upload.",
            field="source",
        )
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size == 0:
        raise param_error("The video file is empty.", field="source" if "source" in ctx.call.files else "file_url")
    v = _new_video(ctx, account, size, _received=size)
    target = _video_file(ctx, v)
    if isinstance(source, Path):
        shutil.copyfile(source, target)
    else:
        target.write_bytes(source)
    _complete(ctx, v)
    ctx.store.insert("video", v["id"], v, account_id=account["id"], now=ctx.now)
    return {"id": v["id"]}


def fetch_local(ctx: Ctx, url: str, hops: int = 0) -> bytes | Path:
    """file_url: only this sandbox's own /__sandbox/ URLs (it never reaches the Internet), redirects followed."""
    own = urlparse(ctx.call.base_url)
    try:
        parsed = urlparse(url)
        loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1") and parsed.port == own.port
    except ValueError:  # "http://[::1", a port out of range
        raise GraphError(
            f"(#389) Unable to fetch video file from URL: {url!r} is not a valid URL.", 389, blame="file_url"
        ) from None
    if (
        parsed.scheme not in ("http", "https")
        or not (parsed.netloc == own.netloc or loopback)
        or not parsed.path.startswith("/__sandbox/")
    ):
        raise GraphError(
            "(#389) Unable to fetch video file from URL. The sandbox never reaches the Internet: "
            f"file_url must be one of its own URLs ({ctx.call.base_url}/__sandbox/files/sample.mp4, "
            "/__sandbox/media/..., /__sandbox/redirect?to=...).",
            389,
            blame="file_url",
        )
    path = parsed.path
    if path == "/__sandbox/redirect":
        target = (parse_qs(parsed.query).get("to") or [""])[0]
        if hops >= 5 or not target:
            raise GraphError("(#389) Unable to fetch video file from URL: too many redirects.", 389, blame="file_url")
        return fetch_local(ctx, target, hops + 1)
    if path.startswith("/__sandbox/files/"):
        sample = sample_file(path.rsplit("/", 1)[-1])
        if sample is not None:
            return sample[0]
    match = re.fullmatch(r"/__sandbox/media/(images|videos)/([0-9a-f]{32}\.[a-z]+|\d+\.[a-z0-9]+)", path)
    if match:
        local = getattr(media_files(ctx.sb), match.group(1)) / match.group(2)
        if local.is_file():
            return local
    raise GraphError(f"(#389) Unable to fetch video file from URL: {url} answers 404.", 389, blame="file_url")


def inspect_video(path: Path) -> tuple[str, str | None, float | None]:
    """(extension, error reason or None, length in seconds or None) from the container header."""
    with open(path, "rb") as handle:
        head = handle.read(64)
        if head[:4] == b"\x1a\x45\xdf\xa3":
            return ("webm" if b"webm" in head else "mkv"), None, None
        if len(head) >= 8 and head[4:8] in QUICKTIME_BOXES:
            kind = "mov" if (head[4:8] == b"ftyp" and head[8:12] == b"qt  ") or head[4:8] != b"ftyp" else "mp4"
            return kind, None, _mp4_length(handle, path.stat().st_size)
    return (
        "bin",
        (
            "The video file is not a valid video container: neither an MP4/MOV (no 'ftyp' box) nor a "
            "WebM/Matroska (no EBML header) file."
        ),
        None,
    )


def _mp4_length(handle, size: int) -> float | None:
    """Seconds from moov/mvhd, walking box headers only (never reading mdat)."""
    pos = 0
    for _ in range(1000):
        if pos + 8 > size:
            return None
        handle.seek(pos)
        box_size, kind = struct.unpack(">I4s", handle.read(8))
        header = 8
        if box_size == 1:
            box_size, header = struct.unpack(">Q", handle.read(8))[0], 16
        elif box_size == 0:
            box_size = size - pos
        if box_size < header:
            return None
        if kind == b"moov":
            body = handle.read(min(box_size - header, 16 * 1024 * 1024))
            at = body.find(b"mvhd")
            if at < 4:
                return None
            mvhd = body[at + 4 :]
            try:
                if mvhd[0] == 1:
                    scale, duration = struct.unpack(">IQ", mvhd[20:32])
                else:
                    scale, duration = struct.unpack(">II", mvhd[12:20])
            except (struct.error, IndexError):
                return None
            return round(duration / scale, 3) if scale else None
        pos += box_size
    return None


def video_state(ctx: Ctx, v: dict) -> tuple[str, int]:
    """('processing'|'ready'|'error', progress 0-100): advances only with the sandbox clock."""
    if v["_phase"] != "finished":
        return "processing", 0
    total = v.get("_processing_seconds", 30)
    elapsed = ctx.now - v["_finished_at"]
    if elapsed >= total:
        return ("error" if v.get("_error") else "ready"), 100
    return "processing", max(0, min(99, int(elapsed * 100 / total)))


def _status(ctx: Ctx, v: dict) -> dict:
    state, progress = video_state(ctx, v)
    uploading = {
        "status": "complete" if v["_phase"] == "finished" else "in_progress",
        "bytes_transferred": v["_received"],
    }
    processing: dict[str, Any] = {
        "status": {"ready": "complete", "error": "error"}.get(
            state, "in_progress" if v["_phase"] == "finished" else "not_started"
        )
    }
    if state == "error":
        processing["errors"] = [{"code": 1363008, "message": v["_error"]}]
    out = {
        "video_status": state,
        "processing_progress": progress,
        "uploading_phase": uploading,
        "processing_phase": processing,
    }
    if state == "error":
        out["error"] = {"message": v["_error"]}
    return out


def _thumbnail(ctx: Ctx, v: dict) -> dict | None:
    if video_state(ctx, v)[0] != "ready":
        return None
    png = thumbnail_png()
    hash_ = hashlib.md5(png).hexdigest()
    path = media_files(ctx.sb).images / f"{hash_}.png"
    if not path.exists():
        _write_atomic(path, png)
    return {
        "id": v["_thumb_id"],
        "uri": image_url(ctx, hash_, "png"),
        "is_preferred": True,
        "width": 320,
        "height": 180,
        "scale": 1,
    }


def _video_value(ctx: Ctx, v: Obj, name: str) -> Any:
    if name == "status":
        return _status(ctx, v)
    if name == "created_time":
        return iso(v.created)
    if name == "updated_time":
        return iso(v.updated)
    if name == "source":
        return f"{ctx.call.base_url}/__sandbox/media/videos/{v['_file']}" if video_state(ctx, v)[0] == "ready" else None
    if name in ("picture", "thumb"):
        thumb = _thumbnail(ctx, v)
        return thumb["uri"] if thumb else None
    if name == "thumbnails":
        thumb = _thumbnail(ctx, v)
        return {"data": [thumb] if thumb else []}
    if name == "format":
        thumb = _thumbnail(ctx, v)
        return [{"filter": "native", "width": 320, "height": 180, "picture": thumb["uri"]}] if thumb else None
    if name == "permalink_url":
        return f"/{v['id']}"
    if name == "published":
        return False
    if name.startswith("_") or name in (
        "upload_session_id",
        "video_file_chunk",
        "start_offset",
        "end_offset",
        "upload_phase",
        "file_url",
        "filepath",
        "fbuploader_video_file_chunk",
    ):
        return None
    return v.get(name)


def render_video(ctx: Ctx, v: Obj, names: Sequence[str]) -> dict:
    return select("AdVideo", names, VIDEO_DEFAULT_FIELDS, lambda n: _video_value(ctx, v, n))


def read_video(ctx: Ctx, v: Obj) -> dict:
    return render_video(ctx, v, parse_fields(ctx.p.get("fields")))


def update_video(ctx: Ctx, v: Obj) -> dict:
    for name in ("title", "description", "name"):
        if name in ctx.p:
            value = ctx.p.str(name) or ""
            if len(value) > 10000:
                raise param_error(f"Param {name} is too long", field=name)
            v[name] = value
    ctx.store.update(v["id"], v, now=ctx.now)
    return {"success": True}


def delete_video(ctx: Ctx, v: Obj) -> dict:
    _video_file(ctx, v).unlink(missing_ok=True)
    if v.get("_session_id"):
        ctx.store.kv_set(f"upload_session:{v['_session_id']}", None)
    _remove(ctx, v["id"])
    return {"success": True}


def list_videos(ctx: Ctx) -> dict:
    account = _account(ctx)
    items = sorted(ctx.store.list("video", account_id=account["id"]), key=lambda o: o.seq, reverse=True)
    names = parse_fields(ctx.p.get("fields"))
    select("AdVideo", names, VIDEO_DEFAULT_FIELDS, lambda n: None)
    return paginate(ctx, items, lambda v: render_video(ctx, v, names))


def list_thumbnails(ctx: Ctx) -> dict:
    v = ctx.load(ctx.match[0], types=("video",))
    thumb = _thumbnail(ctx, v)
    return {"data": [thumb] if thumb else []}


def video_ready(ctx: Ctx, video_id: str) -> bool:
    """Rule M4 for creatives: the video exists, is visible and finished processing."""
    v = ctx.store.get(video_id)
    return v is not None and v.type == "video" and ctx.can_see(v) and video_state(ctx, v)[0] == "ready"


# ---- /__sandbox/ routes: the CDN stand-in and the test-support files (no token)


def add_routes(app: web.Application, key: web.AppKey) -> None:
    def sandbox(request: web.Request) -> Sandbox:
        return request.app[key]

    def missing(what: str) -> web.Response:
        return web.json_response(
            {"error": {"message": f"{what} not found", "type": "SandboxControl", "code": 100}}, status=404
        )

    async def image(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        match = re.fullmatch(r"[0-9a-f]{32}\.([a-z]+)", name)
        path = media_files(sandbox(request)).images / name
        if not match or match.group(1) not in IMAGE_TYPES or not path.is_file():
            return missing(f"image {name}")
        return web.FileResponse(
            path, headers={"Content-Type": IMAGE_TYPES[match.group(1)], "Cache-Control": "public, max-age=31536000"}
        )

    async def video(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        match = re.fullmatch(r"(\d+)\.([a-z0-9]+)", name)
        path = media_files(sandbox(request)).videos / name
        if not match or match.group(2) not in VIDEO_TYPES or not path.is_file():
            return missing(f"video {name}")
        return web.FileResponse(path, headers={"Content-Type": VIDEO_TYPES[match.group(2)]})

    async def files(request: web.Request) -> web.Response:
        sample = sample_file(request.match_info["name"])
        if sample is None:
            return missing(
                f"sample file {request.match_info['name']} (known: sample.png, sample.jpg, corrupt.png, sample.mp4)"
            )
        return web.Response(body=sample[0], content_type=sample[1])

    async def redirect(request: web.Request) -> web.Response:
        target = request.query.get("to", "")
        if not target:
            return web.json_response(
                {"error": {"message": "redirect needs ?to=<url>", "type": "SandboxControl", "code": 100}}, status=400
            )
        raise web.HTTPFound(target)

    app.router.add_get("/__sandbox/media/images/{name}", image)
    app.router.add_get("/__sandbox/media/videos/{name}", video)
    app.router.add_get("/__sandbox/files/{name}", files)
    app.router.add_get("/__sandbox/redirect", redirect)

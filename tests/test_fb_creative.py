"""Images, videos, creatives and previews: local checks (docs/creative_rules.md), the SSRF guard, and every op end to
end through dispatch over the sandbox."""

from __future__ import annotations

import asyncio
import shutil
import struct
import zlib
from pathlib import Path

import pytest

import fb_creative
from fb_creative import check_creative_locally, check_image_bytes, creative_spec, sniff_image_format
from fb_utils import OpContext, ValidationError, fetch_public_url, host_port, safe_url

PAGE_LINK = "https://example.com/summer"


def png_bytes(width: int = 600, height: int = 400) -> bytes:
    raw = b"".join(b"\x00" + b"\x10\x80\xc0" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xda\x00\x02" + b"\x00" * 32 + b"\xff\xd9"


def mp4_file(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
        handle.truncate(size)
    return path


def _dims(info) -> tuple:
    return info.format, info.width, info.height


def spec_args(**overrides) -> dict:
    values = dict(
        page_id="400000000000001",
        instagram_user_id=None,
        message="Hello",
        link=PAGE_LINK,
        headline="Sale",
        description="All week",
        call_to_action="SHOP_NOW",
    )
    values.update(overrides)
    return values


async def _page(graph) -> dict:
    pages = await graph.get_all("me/accounts", {"fields": "id,name,instagram_business_account"})
    return pages[0]


@pytest.fixture
async def studio(facebook, graph, sandbox):
    """The dispatch with the demo page and its Instagram account selected (as /use page would)."""
    page = await _page(graph)
    await facebook.select("page", page["id"])
    if page.get("instagram_business_account"):
        await facebook.select("instagram_account", page["instagram_business_account"]["id"])
    await sandbox.control("POST", "stats/reset")
    return facebook


async def _objects(sandbox, type_: str) -> list[dict]:
    return (await sandbox.control("GET", f"objects?type={type_}"))["data"]


async def _writes(sandbox) -> list[str]:
    stats = await sandbox.stats()
    return [route for route in stats["by_route"] if not route.startswith("GET")]


async def _advance_clock_soon(sandbox, seconds: int = 120, after: float = 0.3) -> None:
    await asyncio.sleep(after)
    await sandbox.control("POST", "clock", {"advance": seconds})


# -- local checks: image sniffing (M1) ------------------------------------------------------------------------------


def test_sniff_and_dimensions_of_each_format():
    assert check_image_bytes(png_bytes(640, 360), "a.png") == fb_creative.ImageInfo(
        "png", 640, 360, len(png_bytes(640, 360))
    )
    assert _dims(check_image_bytes(jpeg_header(1080, 1350), "b.jpg")) == ("jpeg", 1080, 1350)
    gif = b"GIF89a" + struct.pack("<HH", 32, 16) + b"\x00" * 20
    assert _dims(check_image_bytes(gif, "c.gif")) == ("gif", 32, 16)
    bmp = b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 10, -20) + b"\x00" * 30
    assert _dims(check_image_bytes(bmp, "d.bmp")) == ("bmp", 10, 20)
    webp = (
        b"RIFF"
        + struct.pack("<I", 30)
        + b"WEBPVP8X"
        + struct.pack("<I", 10)
        + b"\x00" * 4
        + (99).to_bytes(3, "little")
        + (49).to_bytes(3, "little")
    )
    assert _dims(check_image_bytes(webp, "e.webp")) == ("webp", 100, 50)
    tiff = (
        b"II*\x00"
        + struct.pack("<I", 8)
        + struct.pack("<H", 2)
        + struct.pack("<HHIHH", 256, 3, 1, 70, 0)
        + struct.pack("<HHII", 257, 4, 1, 90)
        + b"\x00" * 4
    )
    assert _dims(check_image_bytes(tiff, "f.tif")) == ("tiff", 70, 90)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "is empty"),
        (b"hello, not an image", "not an image Facebook accepts"),
        (b"<html><body>404</body></html>", "looks like text"),
        (b"%PDF-1.7 ...", "it is a PDF"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40, "use upload_video"),
        (png_bytes()[:20], "corrupt"),
        (png_bytes()[:29] + b"\x00\x00\x00\x00" + png_bytes()[33:], "checksum"),
        (b"\xff\xd8\xff\xda\x00\x02" + b"\x00" * 20, "corrupt"),
        (b"GIF89a\x00\x00\x00\x00" + b"\x00" * 10, "0×0 pixels"),
    ],
)
def test_bad_images_refused_with_m1(data, words):
    with pytest.raises(ValidationError) as caught:
        check_image_bytes(data, "x.png")
    error = caught.value
    assert words in error.message
    assert (error.code, error.error_subcode, error.blame_field) == (100, 1487242, "filename")
    assert error.to_text().startswith("ERROR validation: ")


def test_over_30_mb_refused_before_sniffing():
    with pytest.raises(ValidationError) as caught:
        check_image_bytes(b"\x89PNG" + b"\x00" * (30 * 1024 * 1024), "big.png")
    assert "30 MB" in caught.value.message and caught.value.error_subcode == 1487242


def test_sniff_names_no_format_for_text():
    assert sniff_image_format(b"just text") is None and sniff_image_format(png_bytes()) == "png"


# -- local checks: creative bodies (C1-C7) -------------------------------------------------------------------------


def test_creative_spec_shapes():
    image = creative_spec("image", image_hash="a" * 32, **spec_args())
    link_data = image["object_story_spec"]["link_data"]
    assert link_data == {
        "link": PAGE_LINK,
        "message": "Hello",
        "name": "Sale",
        "description": "All week",
        "image_hash": "a" * 32,
        "call_to_action": {"type": "SHOP_NOW", "value": {"link": PAGE_LINK}},
    }
    assert "degrees_of_freedom_spec" not in image  # no Advantage+ creative features unless asked (C4)
    video = creative_spec(
        "video", video_id="123", thumbnail_url="https://cdn.example.com/t.jpg", **spec_args(call_to_action=None)
    )
    video_data = video["object_story_spec"]["video_data"]
    assert video_data["image_url"] == "https://cdn.example.com/t.jpg" and video_data["title"] == "Sale"
    assert video_data["call_to_action"] == {"type": "LEARN_MORE", "value": {"link": PAGE_LINK}}
    cards = [{"link": f"https://example.com/{i}", "image_hash": "b" * 32, "headline": f"Card {i}"} for i in range(3)]
    carousel = creative_spec(
        "carousel", cards=cards, **spec_args(link=None, enhancements={"text_optimizations": "OPT_IN"})
    )
    assert carousel["degrees_of_freedom_spec"] == {
        "creative_features_spec": {"text_optimizations": {"enroll_status": "OPT_IN"}}
    }
    assert len(carousel["object_story_spec"]["link_data"]["child_attachments"]) == 3
    assert carousel["object_story_spec"]["link_data"]["link"] == "https://example.com/0"
    post = creative_spec("page_post", object_story_id="400000000000001_55", **spec_args())
    assert post["object_story_id"] == "400000000000001_55" and "object_story_spec" not in post


@pytest.mark.parametrize(
    "kind, overrides, rule",
    [
        ("image", {"page_id": None}, "C1"),
        ("carousel", {"cards": [{"link": PAGE_LINK, "image_hash": "a" * 32}]}, "C2"),
        ("carousel", {"cards": [{"link": PAGE_LINK, "image_hash": "a" * 32}] * 11}, "C2"),
        ("carousel", {"cards": [{"link": PAGE_LINK, "image_hash": "a" * 32}, {"link": PAGE_LINK}]}, "C2"),
        ("image", {"call_to_action": "BUY_IT_NOW_PLEASE"}, "C3"),
        ("video", {"link": None, "call_to_action": "SHOP_NOW", "thumbnail_hash": "a" * 32}, "C3"),
        ("image", {"enhancements": {"standard_enhancements": "OPT_OUT"}}, "C4"),
        ("image", {"instagram_user_id": "@brand"}, "C5"),
        ("video", {"thumbnail_hash": None}, "C6"),
        ("image", {"link": "example.com/sale"}, "C7"),
        ("image", {"link": "ftp://example.com/x"}, "C7"),
    ],
)
def test_creative_rules_refused_locally_with_their_codes(kind, overrides, rule):
    values = spec_args(image_hash="a" * 32, video_id="123")
    values.update(overrides)
    with pytest.raises(ValidationError) as caught:
        creative_spec(kind, **values)
    code, subcode, blame = fb_creative.RULES[rule]
    error = caught.value
    assert (error.code, error.error_subcode, error.blame_field, error.data["rule"]) == (code, subcode, blame, rule)


def test_c3_message_lists_the_sdk_types():
    with pytest.raises(ValidationError) as caught:
        check_creative_locally(
            {
                "object_story_spec": {
                    "page_id": "1",
                    "link_data": {"link": PAGE_LINK, "call_to_action": {"type": "NOPE"}},
                },
                "degrees_of_freedom_spec": {"creative_features_spec": {"image_touchups": {"enroll_status": "OPT_OUT"}}},
            }
        )
    assert (
        "(#100) Param call_to_action[type] must be one of {" in caught.value.message
        and "SHOP_NOW" in caught.value.message
    )


def test_c4_no_spec_is_fine_standard_enhancements_refused():
    body = {"object_story_spec": {"page_id": "1", "link_data": {"link": PAGE_LINK, "image_hash": "a" * 32}}}
    check_creative_locally(body)  # no degrees_of_freedom_spec: accepted since v22
    with pytest.raises(ValidationError) as caught:
        check_creative_locally(
            {
                **body,
                "degrees_of_freedom_spec": {
                    "creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_OUT"}}
                },
            }
        )
    assert (caught.value.code, caught.value.error_subcode, caught.value.blame_field) == (
        100,
        3858504,
        "degrees_of_freedom_spec",
    )
    assert "v22" in caught.value.message and "enhancements=" in caught.value.fix


@pytest.mark.parametrize(
    "features, words",
    [
        ({"image_touchup": {"enroll_status": "OPT_IN"}}, "image_touchups"),  # a close match is suggested
        ({"text_optimizations": {"enroll_status": "MAYBE"}}, "OPT_IN or OPT_OUT"),
    ],
)
def test_c4_feature_names_from_the_sdk_and_enroll_status(features, words):
    body = {
        "object_story_spec": {"page_id": "1", "link_data": {"link": PAGE_LINK, "image_hash": "a" * 32}},
        "degrees_of_freedom_spec": {"creative_features_spec": features},
    }
    with pytest.raises(ValidationError) as caught:
        check_creative_locally(body)
    assert caught.value.code == 100 and words in caught.value.message + caught.value.fix


def test_c4_feature_list_is_the_sdk_spec_and_standard_set_is_documented():
    from facebook_business.adobjects.adcreativefeaturesspec import AdCreativeFeaturesSpec

    sdk = {v for k, v in vars(AdCreativeFeaturesSpec.Field).items() if not k.startswith("_")}
    assert set(fb_creative.CREATIVE_FEATURES) == sdk - {"standard_enhancements"}
    assert {"image_animation", "video_filtering"} <= set(fb_creative.CREATIVE_FEATURES)  # OCC 2026-06-28
    assert fb_creative.enhancement_features("video", "OPT_OUT") == {
        "video_auto_crop": "OPT_OUT",
        "text_optimizations": "OPT_OUT",
        "inline_comment": "OPT_OUT",
    }
    with pytest.raises(ValidationError):
        fb_creative.enhancement_features("carousel", "OPT_OUT")  # Meta documents the set for single image/video only


# -- the SSRF guard --------------------------------------------------------------------------------------------------


def test_safe_url_never_shows_query_or_userinfo():
    shown = safe_url("https://user:pw@bucket.s3.amazonaws.com/k/a.png?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA#f")
    assert shown == "https://bucket.s3.amazonaws.com/k/a.png"
    assert host_port("https://Example.com/x") == "example.com:443" and host_port("http://[::1]:81/") == "[::1]:81"


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://10.0.0.1/a.png?sig=SECRET", "private"),
        ("http://169.254.169.254/latest/meta-data/?token=SECRET", "link-local"),
        ("http://[::1]/a.png", "loopback"),
        ("http://0.0.0.0/a.png", "unspecified"),
        ("http://[::ffff:127.0.0.1]/a.png", "loopback"),
        ("http://224.0.0.1/a.png", "multicast"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://example.com/x", "only http:// and https://"),
    ],
)
async def test_fetch_refuses_non_public_targets(url, words):
    with pytest.raises(ValidationError) as caught:
        await fetch_public_url(url, max_bytes=1000, allowed_hosts=set())
    assert words in caught.value.message
    assert "SECRET" not in caught.value.to_text()


async def test_fetch_refuses_loopback_on_another_port_than_the_sandbox(sandbox):
    allowed = {host_port(sandbox.url)}
    body, content_type = await fetch_public_url(
        f"{sandbox.url}/__sandbox/files/sample.png", max_bytes=10**7, allowed_hosts=allowed
    )
    assert body.startswith(b"\x89PNG") and content_type == "image/png"
    port = int(sandbox.url.rsplit(":", 1)[1])
    with pytest.raises(ValidationError) as caught:
        await fetch_public_url(
            f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/x", max_bytes=1000, allowed_hosts=allowed
        )
    assert "loopback" in caught.value.message


async def test_fetch_rechecks_redirect_targets_and_caps_size(sandbox):
    allowed = {host_port(sandbox.url)}
    followed, _ = await fetch_public_url(
        f"{sandbox.url}/__sandbox/redirect?to=/__sandbox/files/sample.jpg", max_bytes=10**7, allowed_hosts=allowed
    )
    assert followed.startswith(b"\xff\xd8\xff")
    with pytest.raises(ValidationError) as caught:
        await fetch_public_url(
            f"{sandbox.url}/__sandbox/redirect?to=http://127.0.0.1:1/secret", max_bytes=10**7, allowed_hosts=allowed
        )
    assert "loopback" in caught.value.message and "127.0.0.1" in caught.value.message
    with pytest.raises(ValidationError) as caught:
        await fetch_public_url(f"{sandbox.url}/__sandbox/files/sample.png", max_bytes=100, allowed_hosts=allowed)
    assert "over the 100-byte limit" in caught.value.message


# -- images end to end -----------------------------------------------------------------------------------------------


async def test_upload_image_from_path_answers_hash_size_and_use(studio, tmp_path, sandbox):
    path = tmp_path / "banner.png"
    data = png_bytes(1200, 628)
    path.write_bytes(data)
    result = await studio.call("upload_image", {"source": str(path)})
    assert result.ok, result.text
    import hashlib

    assert result.data["hash"] == hashlib.md5(data).hexdigest()
    assert (result.data["width"], result.data["height"]) == (1200, 628)
    assert "1200×628" in result.text and "create_creative image=" in result.text
    listed = await studio.call("list_images", {})
    assert result.data["hash"] in [i["hash"] for i in listed.data["images"]] and result.data["hash"] in listed.text


async def test_upload_image_from_sandbox_url_and_redirect(studio, sandbox):
    result = await studio.call(
        "upload_image", {"source": f"{sandbox.url}/__sandbox/files/sample.jpg?X-Amz-Signature=SECRET"}
    )
    assert result.ok, result.text
    assert result.data["format"] == "jpeg" and len(result.data["hash"]) == 32
    via = await studio.call(
        "upload_image", {"source": f"{sandbox.url}/__sandbox/redirect?to=/__sandbox/files/sample.png"}
    )
    assert via.ok, via.text


@pytest.mark.parametrize(
    "source, words",
    [
        ("http://127.0.0.1:9/a.png", "loopback"),
        ("http://10.0.0.1/a.png", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/a.png", "loopback"),
        ("ftp://example.com/a.png", "only http:// and https://"),
    ],
)
async def test_ssrf_refusals_send_nothing(studio, sandbox, source, words):
    result = await studio.call("upload_image", {"source": source})
    assert not result.ok and words in result.text and result.text.startswith("ERROR validation")
    assert await _writes(sandbox) == []


async def test_redirect_to_loopback_and_oversize_send_nothing(studio, sandbox, monkeypatch):
    result = await studio.call(
        "upload_image", {"source": f"{sandbox.url}/__sandbox/redirect?to=http://127.0.0.1:1/admin"}
    )
    assert not result.ok and "loopback" in result.text
    monkeypatch.setattr(fb_creative, "MAX_IMAGE_BYTES", 64)
    result = await studio.call("upload_image", {"source": f"{sandbox.url}/__sandbox/files/sample.png"})
    assert not result.ok and "64-byte limit" in result.text
    assert await _writes(sandbox) == []


async def test_corrupt_empty_and_wrong_type_images(studio, sandbox, tmp_path):
    corrupt = await studio.call("upload_image", {"source": f"{sandbox.url}/__sandbox/files/corrupt.png"})
    assert not corrupt.ok and "corrupt" in corrupt.text and corrupt.data["error_subcode"] == 1487242
    (tmp_path / "empty.png").write_bytes(b"")
    empty = await studio.call("upload_image", {"source": str(tmp_path / "empty.png")})
    assert not empty.ok and "empty" in empty.text and empty.data["code"] == 100
    (tmp_path / "notes.png").write_text("shopping list")
    wrong = await studio.call("upload_image", {"source": str(tmp_path / "notes.png")})
    assert not wrong.ok and "not an image Facebook accepts" in wrong.text and wrong.data["blame_field"] == "filename"
    missing = await studio.call("upload_image", {"source": str(tmp_path / "nope.png")})
    assert not missing.ok and "No image file" in missing.text
    assert await _writes(sandbox) == []


# -- videos ----------------------------------------------------------------------------------------------------------


async def test_upload_video_in_chunks_with_progress_then_wait(studio, sandbox, tmp_path):
    path = mp4_file(tmp_path / "promo.mp4", 9_000_000)
    ticker = asyncio.create_task(_advance_clock_soon(sandbox, 120, after=0.5))
    seen: list[tuple[str, int, int]] = []
    from fb_utils import reset_progress_handler, set_progress_handler

    token = set_progress_handler(lambda label, sent, total: seen.append((label, sent, total)))
    try:
        result = await studio.call("upload_video", {"path": str(path), "title": "Promo"})
    finally:
        reset_progress_handler(token)
        await ticker
    assert result.ok, result.text
    assert result.data["status"] == "ready" and result.data["chunks"] >= 2 and "ready" in result.text
    uploads = [(sent, total) for label, sent, total in seen if label.startswith("uploading")]
    assert uploads[0] == (0, 9_000_000) and uploads[-1] == (9_000_000, 9_000_000)
    assert [s for s, _ in uploads] == sorted(s for s, _ in uploads)
    status = await studio.call("get_video_status", {"video_id": result.data["video_id"]})
    assert status.ok and status.data["video_status"] == "ready"


async def test_video_upload_resumes_after_a_lost_chunk(facebook, graph, sandbox, tmp_path, demo_accounts):
    path = mp4_file(tmp_path / "long.mp4", 10_000_000)
    ctx = OpContext(graph=graph, ad_account_id=demo_accounts["USD"])
    injected = []

    async def lose_next_chunks(sent: int, total: int) -> None:
        if 0 < sent < total and not injected:  # after the first chunk: drop the next answer, then lose the next chunk
            injected.append(await sandbox.fault(kind="drop", method="POST", path="advideos", when="after"))
            injected.append(await sandbox.fault(kind="drop", method="POST", path="advideos", when="before"))

    result = await fb_creative.upload_video_file(
        ctx, demo_accounts["USD"], str(path), on_progress=lose_next_chunks, wait=False
    )
    assert len(injected) == 2
    assert result["resumed"] >= 2 and result["size"] == 10_000_000
    # the chunk's answer lost, then the chunk lost on the way (neither says whether it arrived: outcome unknown, sent
    # again at the same offset); then the chunk that had arrived is refused with the offsets to continue from (1363037)
    assert [r["error"] for r in result["resumes"]] == ["outcome_unknown", "outcome_unknown", 1363037]
    named = result["resumes"][2]
    assert named["next"] > named["at"]
    status = await graph.get(result["video_id"], {"fields": "status"})
    assert status["status"]["uploading_phase"]["bytes_transferred"] == 10_000_000


async def test_video_upload_gives_up_after_bounded_retries(graph, sandbox, tmp_path, demo_accounts, monkeypatch):
    monkeypatch.setattr(fb_creative, "MAX_CHUNK_FAILURES", 2)
    path = mp4_file(tmp_path / "v.mp4", 5_000_000)
    ctx = OpContext(graph=graph, ad_account_id=demo_accounts["USD"])

    async def break_everything(sent: int, total: int) -> None:
        if sent == 0:
            await sandbox.fault(kind="drop", method="POST", path="advideos", count=10)

    with pytest.raises(Exception) as caught:
        await fb_creative.upload_video_file(
            ctx, demo_accounts["USD"], str(path), on_progress=break_everything, wait=False
        )
    assert "stopped at byte 0 of 5,000,000" in str(caught.value) and "3 failed attempts" in str(caught.value)


async def test_video_local_checks(studio, sandbox, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    empty = await studio.call("upload_video", {"path": str(tmp_path / "empty.mp4")})
    assert not empty.ok and "empty" in empty.text
    (tmp_path / "pic.mp4").write_bytes(png_bytes(10, 10))
    wrong = await studio.call("upload_video", {"path": str(tmp_path / "pic.mp4")})
    assert not wrong.ok and "PNG image: use upload_image" in wrong.text
    assert await _writes(sandbox) == []


# -- creatives end to end --------------------------------------------------------------------------------------------


async def test_image_creative_from_a_path_uploads_first(studio, sandbox, tmp_path):
    path = tmp_path / "hero.png"
    path.write_bytes(png_bytes(1080, 1080))
    result = await studio.call(
        "create_creative",
        {
            "kind": "image",
            "name": "Hero",
            "image": str(path),
            "link": PAGE_LINK,
            "message": "Summer sale",
            "headline": "30% off",
            "call_to_action": "SHOP_NOW",
        },
    )
    assert result.ok, result.text
    assert "Uploaded first: image" in result.text and "no Advantage+ creative features chosen" in result.text
    got = await studio.call("get_creative", {"creative_id": result.data["id"]})
    assert got.ok, got.text
    spec = got.data["creative"]["object_story_spec"]
    assert (
        spec["link_data"]["image_hash"] == result.data["uploaded"][0]["hash"]
        and spec["page_id"] == result.data["page_id"]
    )
    assert "button SHOP_NOW" in got.text
    listed = await studio.call("list_creatives", {})
    assert result.data["id"] in [c["id"] for c in listed.data["creatives"]]


async def test_image_creative_from_hash_and_url(studio, sandbox):
    uploaded = await studio.call("upload_image", {"source": f"{sandbox.url}/__sandbox/files/sample.png"})
    by_hash = await studio.call(
        "create_creative",
        {
            "kind": "image",
            "name": "By hash",
            "image": uploaded.data["hash"],
            "link": PAGE_LINK,
            "standard_enhancements": "OPT_IN",
        },
    )
    assert by_hash.ok, by_hash.text
    assert "OPT_IN" in by_hash.text and "Uploaded first" not in by_hash.text
    # standard_enhancements (deprecated bundle) as an argument means the individual features that replaced it
    assert by_hash.data["body"]["degrees_of_freedom_spec"]["creative_features_spec"] == {
        f: {"enroll_status": "OPT_IN"}
        for f in ("image_templates", "image_touchups", "text_optimizations", "inline_comment")
    }
    shown = await studio.call("get_creative", {"creative_id": by_hash.data["id"]})
    assert "Advantage+ creative features: image_templates" in shown.text and "standard" not in shown.text
    by_url = await studio.call(
        "create_creative",
        {"kind": "image", "name": "By URL", "image": f"{sandbox.url}/__sandbox/files/sample.jpg", "link": PAGE_LINK},
    )
    assert by_url.ok, by_url.text


async def test_foreign_image_hash_refused_m2_nothing_created(studio, sandbox):
    before = len(await _objects(sandbox, "adcreative"))
    result = await studio.call(
        "create_creative", {"kind": "image", "name": "Foreign", "image": "f" * 32, "link": PAGE_LINK}
    )
    assert not result.ok and result.data["error_subcode"] == 1487242 and result.data["blame_field"] == "image"
    assert len(await _objects(sandbox, "adcreative")) == before


async def test_video_creative_from_path_uses_preferred_thumbnail(studio, sandbox, tmp_path):
    path = mp4_file(tmp_path / "clip.mp4", 3_000_000)
    ticker = asyncio.create_task(_advance_clock_soon(sandbox, 120, after=0.5))
    result = await studio.call(
        "create_creative",
        {
            "kind": "video",
            "name": "Clip",
            "video": str(path),
            "link": PAGE_LINK,
            "message": "Watch",
            "headline": "New",
            "call_to_action": "LEARN_MORE",
        },
    )
    await ticker
    assert result.ok, result.text
    video_data = result.data["body"]["object_story_spec"]["video_data"]
    assert (
        video_data["image_url"].startswith(sandbox.url)
        and video_data["video_id"] == result.data["uploaded"][0]["video_id"]
    )


async def test_video_not_ready_refused_m4(studio, sandbox, tmp_path, graph, demo_accounts):
    path = mp4_file(tmp_path / "fresh.mp4", 2_000_000)
    ctx = OpContext(graph=graph, ad_account_id=demo_accounts["USD"])
    video = await fb_creative.upload_video_file(ctx, demo_accounts["USD"], str(path), wait=False)
    result = await studio.call(
        "create_creative",
        {"kind": "video", "name": "Too soon", "video": video["video_id"], "link": PAGE_LINK, "thumbnail": "a" * 32},
    )
    assert not result.ok and result.data["error_subcode"] == 1885252 and "processing" in result.text


async def test_carousel_of_images_and_the_card_limits(studio, sandbox, tmp_path):
    paths = []
    for index in range(3):
        path = tmp_path / f"card{index}.png"
        path.write_bytes(png_bytes(500 + index, 500))
        paths.append(str(path))
    cards = [{"image": p, "link": f"https://example.com/p{i}", "headline": f"Product {i}"} for i, p in enumerate(paths)]
    result = await studio.call(
        "create_creative",
        {"kind": "carousel", "name": "Three", "cards": cards, "message": "Pick one", "call_to_action": "SHOP_NOW"},
    )
    assert result.ok, result.text
    assert len(result.data["body"]["object_story_spec"]["link_data"]["child_attachments"]) == 3
    before = len(await _objects(sandbox, "adcreative"))
    await sandbox.control("POST", "stats/reset")
    for count in (1, 11):
        bad = await studio.call(
            "create_creative", {"kind": "carousel", "name": f"{count} cards", "cards": [cards[0]] * count}
        )
        assert not bad.ok and bad.data["error_subcode"] == 1443050 and f"not {count}" in bad.text
    assert len(await _objects(sandbox, "adcreative")) == before and await _writes(sandbox) == []


async def test_page_post_creative(studio, graph):
    page = await _page(graph)
    result = await studio.call(
        "create_creative", {"kind": "page_post", "name": "Boost", "object_story_id": f"{page['id']}_1001"}
    )
    assert result.ok, result.text
    assert result.data["body"]["object_story_id"] == f"{page['id']}_1001"


async def test_creative_rules_checked_before_any_upload(studio, sandbox, tmp_path):
    path = tmp_path / "ok.png"
    path.write_bytes(png_bytes())
    no_link = await studio.call(
        "create_creative", {"kind": "image", "name": "No link", "image": str(path), "link": "example.com"}
    )
    assert not no_link.ok and no_link.data["error_subcode"] == 1443049
    await studio.select("page", None)
    no_page = await studio.call(
        "create_creative", {"kind": "image", "name": "No page", "image": str(path), "link": PAGE_LINK}
    )
    assert not no_page.ok and no_page.data["error_subcode"] == 1443048
    assert await _writes(sandbox) == []


async def test_dry_run_shows_uploads_and_the_creative_without_sending(studio, sandbox, tmp_path):
    path = tmp_path / "dry.png"
    path.write_bytes(png_bytes())
    result = await studio.call(
        "create_creative", {"kind": "image", "name": "Dry", "image": str(path), "link": PAGE_LINK, "dry_run": True}
    )
    assert result.ok, result.text
    assert "adimages" in result.text and "adcreatives" in result.text
    assert await _writes(sandbox) == []


# -- previews --------------------------------------------------------------------------------------------------------


async def _creative(studio, sandbox) -> str:
    uploaded = await studio.call("upload_image", {"source": f"{sandbox.url}/__sandbox/files/sample.png"})
    made = await studio.call(
        "create_creative",
        {
            "kind": "image",
            "name": "Preview me",
            "image": uploaded.data["hash"],
            "link": PAGE_LINK,
            "message": "Look",
            "call_to_action": "LEARN_MORE",
        },
    )
    assert made.ok, made.text
    return made.data["id"]


async def test_preview_html_files_per_format(studio, sandbox, tmp_path):
    creative_id = await _creative(studio, sandbox)
    result = await studio.call(
        "preview_ad",
        {
            "creative_id": creative_id,
            "formats": ["mobile_feed", "instagram_story", "desktop_feed"],
            "out_dir": "previews",
        },
    )
    assert result.ok, result.text
    assert len(result.files) == 3 and all(f.endswith(".html") for f in result.files)
    for file in result.files:
        text = Path(file).read_text()
        assert text.startswith("<!doctype html>") and "<iframe" in text
    assert [p["ad_format"] for p in result.data["previews"]] == [
        "MOBILE_FEED_STANDARD",
        "INSTAGRAM_STORY",
        "DESKTOP_FEED_STANDARD",
    ]


async def test_preview_of_a_made_creative_refuses_content_it_would_ignore(studio, sandbox):
    creative_id = await _creative(studio, sandbox)
    for extra in (
        {"page_id": "400000000000001"},
        {"thumbnail": "0" * 32},
        {"headline": "Other"},
        {"ad_account_id": "act_100000000000001"},
    ):
        result = await studio.call("preview_ad", {"creative_id": creative_id, **extra})
        assert not result.ok and f"{next(iter(extra))} go(es) with kind" in result.text, result.text


async def test_preview_of_a_draft_spec_defaults_to_two_formats(studio, sandbox, tmp_path):
    uploaded = await studio.call("upload_image", {"source": f"{sandbox.url}/__sandbox/files/sample.jpg"})
    result = await studio.call(
        "preview_ad", {"kind": "image", "image": uploaded.data["hash"], "link": PAGE_LINK, "out_dir": "out"}
    )
    assert result.ok, result.text
    assert [p["format"] for p in result.data["previews"]] == ["mobile_feed", "instagram_feed"]
    bad = await studio.call("preview_ad", {"kind": "image", "image": "./local.png", "link": PAGE_LINK})
    assert not bad.ok and "upload_image" in bad.text


@pytest.mark.skipif(not any(shutil.which(n) for n in fb_creative.CHROMIUM_NAMES), reason="no Chromium binary on PATH")
async def test_preview_png_from_chromium(studio, sandbox, tmp_path):
    creative_id = await _creative(studio, sandbox)
    result = await studio.call(
        "preview_ad", {"creative_id": creative_id, "formats": ["mobile_feed"], "png": True, "out_dir": "out"}
    )
    assert result.ok, result.text
    pngs = [f for f in result.files if f.endswith(".png")]
    assert len(pngs) == 1, result.text
    data = Path(pngs[0]).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    expected = fb_creative.Preview("mobile_feed", "MOBILE_FEED_STANDARD", Path(result.files[0]).read_text()).size
    assert (width, height) == expected


async def test_preview_without_chromium_still_gives_html(studio, sandbox, tmp_path, monkeypatch):
    creative_id = await _creative(studio, sandbox)
    monkeypatch.setattr(fb_creative, "find_chromium", lambda: None)
    result = await studio.call("preview_ad", {"creative_id": creative_id, "png": True, "out_dir": "out"})
    assert result.ok and "Chromium is not installed" in result.text
    assert len(result.files) == 2 and all(f.endswith(".html") for f in result.files)


# -- GraphClient.upload: streamed multipart, never blindly re-sent ----------------------------------------------------


async def test_upload_streams_an_async_generator(graph, demo_accounts):
    data = png_bytes(64, 48)

    async def pieces():
        for start in range(0, len(data), 100):
            yield data[start : start + 100]

    answer = await graph.upload(
        f"{demo_accounts['USD']}/adimages", {}, {"stream.png": ("stream.png", pieces(), "image/png")}
    )
    import hashlib

    assert answer["images"]["stream.png"]["hash"] == hashlib.md5(data).hexdigest()


async def test_upload_of_a_stream_is_not_resent_but_bytes_of_an_image_are(graph, sandbox, demo_accounts):
    from fb_utils import NetworkError

    path = f"{demo_accounts['USD']}/adimages"
    await sandbox.fault(kind="drop", method="POST", path="adimages", when="after")

    async def once():
        yield png_bytes(8, 8)

    await sandbox.control("POST", "stats/reset")
    with pytest.raises(NetworkError):
        await graph.upload(path, {}, {"a.png": ("a.png", once(), "image/png")})
    posts = sum(n for route, n in (await sandbox.stats())["by_route"].items() if route.startswith("POST"))
    assert posts == 1
    await sandbox.fault(kind="drop", method="POST", path="adimages", when="after")
    answer = await graph.upload(path, {}, {"b.png": ("b.png", png_bytes(8, 8), "image/png")}, idempotent=True)
    assert answer["images"]["b.png"]["hash"]


async def test_instagram_account_not_connected_is_refused_c5(studio, sandbox):
    uploaded = await studio.call("upload_image", {"source": f"{sandbox.url}/__sandbox/files/sample.png"})
    before = len(await _objects(sandbox, "adcreative"))
    result = await studio.call(
        "create_creative",
        {
            "kind": "image",
            "name": "Other IG",
            "image": uploaded.data["hash"],
            "link": PAGE_LINK,
            "instagram_account_id": "17841499999999999",
        },
    )
    assert not result.ok and result.data["error_subcode"] == 2446886
    assert len(await _objects(sandbox, "adcreative")) == before

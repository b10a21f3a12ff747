"""Sandbox images and videos: rules M1 and M3 (docs/creative_rules.md) with code/subcode/blame, image hashes and
URLs, chunked video uploads with resume offsets and faults, processing on the sandbox clock, bounded memory."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
import sys

import aiohttp
import pytest

from test_fb_sandbox_helpers import JPY, USD, graph  # noqa: F401

MB = 1024 * 1024
# Tiny real files (3x2 pixels) of the formats the sandbox sniffs besides PNG and JPEG.
SAMPLES = {
    "gif": "R0lGODdhAwACAIEAAMgUHgAAAAAAAAAAACwAAAAAAwACAAAIBgABCBwYEAA7",
    "bmp": "Qk1OAAAAAAAAADYAAAAoAAAAAwAAAAIAAAABABgAAAAAABgAAADEDgAAxA4AAAAAAAAAAAAAHhTIHhTIHhTIAAAAHhTIHhTIHhTIAAAA",
    "tiff": "SUkqAAgAAAAKAAABBAABAAAAAwAAAAEBBAABAAAAAgAAAAIBAwADAAAAhgAAAAMBAwABAAAAAQAAAAYBAwABAAAAAgAAABEBBA"
    "ABAAAAjAAAABUBAwABAAAAAwAAABYBBAABAAAAAgAAABcBBAABAAAAEgAAABwBAwABAAAAAQAAAAAAAAAIAAgACADIFB7IFB7IFB7I"
    "FB7IFB7IFB4=",
    "webp": "UklGRh4AAABXRUJQVlA4TBEAAAAvAkAAAAdQiiLXo/+BiOh/AAA=",  # VP8L (lossless)
    "webp-lossy": "UklGRjIAAABXRUJQVlA4ICYAAABwAQCdASoDAAIAB0CWJaACdAFAAAD+5fosFKQ3/V352/U9sAAAAA==",  # VP8
}
CTYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "tiff": "image/tiff",
}


async def fetch(url: str) -> tuple[int, bytes, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, allow_redirects=False) as resp:
            return resp.status, await resp.read(), dict(resp.headers)


async def sample(sandbox, name: str) -> bytes:
    status, body, _ = await fetch(f"{sandbox.url}/__sandbox/files/{name}")
    assert status == 200
    return body


def files_form(files: dict[str, bytes], **fields) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    for name, data in files.items():
        form.add_field(name, data, filename=name.rsplit("/", 1)[-1] or "file", content_type="application/octet-stream")
    return form


async def upload_image(graph, data: bytes, name: str = "pic.png", account: str = USD):
    return await graph.post(f"{account}/adimages", files_form({name: data}))


async def image_count(graph, account: str = USD) -> int:
    return len((await graph.get(f"{account}/adimages", limit="1000")).body["data"])


def refused_with(answer, code: int, subcode: int | None, blame: str) -> dict:
    assert answer.status == 400, answer.body
    error = answer.error
    assert (error["code"], error.get("error_subcode")) == (code, subcode), error
    data = error["error_data"]
    data = json.loads(data) if isinstance(data, str) else data
    assert data["blame_field_specs"] == [[blame]], error
    return error


# ---- images


async def test_upload_image_answers_hash_url_and_size_and_the_url_serves_the_bytes(sandbox, graph):
    png = await sample(sandbox, "sample.png")
    answer = await upload_image(graph, png, "sample.png")
    assert answer.status == 200, answer.body
    img = answer.body["images"]["sample.png"]
    assert img["hash"] == hashlib.md5(png).hexdigest()
    assert (img["width"], img["height"]) == (1080, 1080)
    status, body, headers = await fetch(img["url"])  # the CDN stand-in: no token
    assert status == 200 and body == png and headers["Content-Type"] == "image/png"

    jpg = await sample(sandbox, "sample.jpg")
    answer = await graph.post(f"{USD}/adimages", {"bytes": base64.b64encode(jpg).decode(), "name": "gray ✓ 広告.jpg"})
    assert answer.status == 200, answer.body
    img = answer.body["images"]["gray ✓ 広告.jpg"]
    assert img["hash"] == hashlib.md5(jpg).hexdigest() and img["url"].endswith(".jpg")
    assert (img["width"], img["height"]) == (64, 48)
    listed = (await graph.get(f"{USD}/adimages", fields="hash,name,width", hashes=json.dumps([img["hash"]]))).body
    assert listed["data"][0]["name"] == "gray ✓ 広告.jpg"
    status, body, headers = await fetch(img["url"])
    assert body == jpg and headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("kind", sorted(SAMPLES))
async def test_every_image_format_is_sniffed_from_its_header(sandbox, graph, kind):
    data = base64.b64decode(SAMPLES[kind])
    answer = await upload_image(graph, data, f"x.{kind}")
    assert answer.status == 200, answer.body
    img = answer.body["images"][f"x.{kind}"]
    assert (img["width"], img["height"]) == (3, 2)
    ext = kind.split("-")[0]
    assert img["url"].endswith("." + ext)
    assert (await fetch(img["url"]))[2]["Content-Type"] == CTYPES[ext]


async def test_same_bytes_same_hash_without_duplicates_and_accounts_are_separate(sandbox, graph):
    png = await sample(sandbox, "sample.png")
    before = await image_count(graph)
    first = (await upload_image(graph, png, "a.png")).body["images"]["a.png"]
    second = (await upload_image(graph, png, "b.png")).body["images"]["b.png"]
    assert first["hash"] == second["hash"] and first["url"] == second["url"]
    assert await image_count(graph) == before + 1
    other = (await upload_image(graph, png, "a.png", account=JPY)).body["images"]["a.png"]
    assert other["hash"] == first["hash"]
    ids = {(await graph.get(f"{a}/adimages")).body["data"][0]["id"] for a in (USD, JPY)}
    assert ids == {f"{USD[4:]}:{first['hash']}", f"{JPY[4:]}:{first['hash']}"}


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize(
    "case",
    [
        "corrupt",
        "empty",
        "text",
        "truncated",
        "signature_only",
        "no_idat",
        "zero_size",
        "jpeg_no_frame",
        "mp4_as_image",
    ],
)
async def test_m1_invalid_images_are_refused_blaming_filename(sandbox, graph, case):
    png = await sample(sandbox, "sample.png")
    data = {
        "corrupt": await sample(sandbox, "corrupt.png"),
        "empty": b"",
        "text": "hello, this is not an image ✓".encode(),
        "truncated": png[: len(png) // 2],
        "signature_only": png[:8],
        "no_idat": png[:8]
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0))
        + _png_chunk(b"IEND", b""),
        "zero_size": png[:8] + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)) + png[33:],
        "jpeg_no_frame": b"\xff\xd8\xff\xe0\x00\x04ab\xff\xda\x00\x02\xff\xd9",
        "mp4_as_image": (await sample(sandbox, "sample.mp4"))[:4096],
    }[case]
    before = await image_count(graph)
    error = refused_with(await upload_image(graph, data, f"{case}.png"), 100, 1487242, "filename")
    assert error["error_user_title"] and f"{case}.png" in error["error_user_msg"]
    assert await image_count(graph) == before


async def test_m1_base64_bytes_and_size_limit(sandbox, graph):
    before = await image_count(graph)
    refused_with(await graph.post(f"{USD}/adimages", {"bytes": "!!not base64!!"}), 100, 1487242, "bytes")
    refused_with(
        await graph.post(f"{USD}/adimages", {"bytes": base64.b64encode(b"plain text").decode()}), 100, 1487242, "bytes"
    )
    refused_with(await graph.post(f"{USD}/adimages", {"name": "nothing.png"}), 100, 1487242, "filename")
    png = await sample(sandbox, "sample.png")
    huge = png + b"\x00" * (30 * MB - len(png) + 1)  # 30 MB + 1 byte: the size rule, before any decoding
    error = refused_with(await upload_image(graph, huge, "huge.png"), 100, 1487242, "filename")
    assert "30 MB" in error["error_user_msg"]
    exact = png + b"\x00" * (30 * MB - len(png))  # trailing bytes after IEND are tolerated
    assert (await upload_image(graph, exact, "exact.png")).status == 200
    # one bad file refuses the whole request: nothing of it is stored
    answer = await graph.post(f"{USD}/adimages", files_form({"good.png": png + b"1", "bad.png": b"GIF89a"}))
    refused_with(answer, 100, 1487242, "filename")
    assert await image_count(graph) == before + 1


async def test_list_filter_page_and_delete_images(sandbox, graph):
    png = await sample(sandbox, "sample.png")
    hashes = []
    for i in range(3):
        data = png + bytes([i])  # distinct bytes, same picture
        hashes.append((await upload_image(graph, data, f"p{i}.png")).body["images"][f"p{i}.png"]["hash"])
    listed = (await graph.get(f"{USD}/adimages", fields="hash,name,url,width,height,created_time,status")).body
    assert [i["hash"] for i in listed["data"][:3]] == hashes[::-1]
    first = listed["data"][0]
    assert first["id"] == f"{USD[4:]}:{hashes[2]}" and first["status"] == "ACTIVE" and first["width"] == 1080
    assert first["name"] == "p2.png" and first["created_time"].endswith("+0000")
    default = (await graph.get(f"{USD}/adimages")).body["data"][0]
    assert set(default) == {"hash", "id"}
    only = (await graph.get(f"{USD}/adimages", hashes=json.dumps(hashes[:2]))).body["data"]
    assert {i["hash"] for i in only} == set(hashes[:2])
    page = (await graph.get(f"{USD}/adimages", limit="2")).body
    assert len(page["data"]) == 2 and "next" in page["paging"]
    rest = (await graph.get(f"{USD}/adimages", limit="2", after=page["paging"]["cursors"]["after"])).body
    assert rest["data"][0]["hash"] == hashes[0]
    assert (await graph.get(f"{USD}/adimages", fields="colour")).error["code"] == 100

    url = first["url"]
    answer = await graph.call("DELETE", f"{USD}/adimages", {"hash": hashes[2]})
    assert answer.status == 200 and answer.body == {"success": True}
    assert hashes[2] not in [i["hash"] for i in (await graph.get(f"{USD}/adimages")).body["data"]]
    assert (await fetch(url))[0] == 404
    refused_with(await graph.call("DELETE", f"{USD}/adimages", {"hash": hashes[2]}), 100, None, "hash")
    refused_with(await graph.call("DELETE", f"{USD}/adimages"), 100, None, "hash")


async def test_images_of_an_account_the_token_cannot_see(sandbox, graph):
    answer = await graph.post("act_999999999/adimages", files_form({"a.png": await sample(sandbox, "sample.png")}))
    assert answer.status == 400 and answer.error["code"] == 100 and answer.error["error_subcode"] == 33


# ---- videos: chunked uploads


async def start(graph, size: int, account: str = USD) -> dict:
    answer = await graph.post(f"{account}/advideos", {"upload_phase": "start", "file_size": str(size)})
    assert answer.status == 200, answer.body
    return answer.body


async def transfer(graph, sid: str, offset, chunk: bytes, account: str = USD):
    form = files_form(
        {"video_file_chunk": chunk}, upload_phase="transfer", upload_session_id=sid, start_offset=str(offset)
    )
    return await graph.post(f"{account}/advideos", form)


async def finish(graph, sid: str, account: str = USD, **extra):
    return await graph.post(f"{account}/advideos", {"upload_phase": "finish", "upload_session_id": sid, **extra})


def video_bytes(mp4: bytes, size: int) -> bytes:
    """A plausible MP4 of `size` bytes: the sample's header, then deterministic filler."""
    filler = hashlib.sha256(b"filler").digest() * (size // 32 + 1)
    return (mp4[:200] + filler)[:size]


async def upload_all(graph, data: bytes, account: str = USD) -> tuple[str, list[tuple[int, int]]]:
    session = await start(graph, len(data), account)
    offsets = [(int(session["start_offset"]), int(session["end_offset"]))]
    while offsets[-1][0] != offsets[-1][1]:
        lo, hi = offsets[-1]
        answer = await transfer(graph, session["upload_session_id"], lo, data[lo:hi], account)
        assert answer.status == 200, answer.body
        offsets.append((int(answer.body["start_offset"]), int(answer.body["end_offset"])))
    assert (await finish(graph, session["upload_session_id"], account, title="Clip ✓")).body == {"success": True}
    return session["video_id"], offsets


async def test_chunked_upload_of_20_mb_in_4_mb_chunks(sandbox, graph):
    mp4 = await sample(sandbox, "sample.mp4")
    data = video_bytes(mp4, 20 * MB + 12345)
    session = await start(graph, len(data))
    assert session["start_offset"] == "0" and session["end_offset"] == str(4 * MB)
    assert all(isinstance(session[k], str) for k in ("upload_session_id", "video_id", "start_offset", "end_offset"))
    video_id, offsets = await upload_all(graph, data)
    assert offsets[:3] == [(0, 4 * MB), (4 * MB, 8 * MB), (8 * MB, 12 * MB)]
    assert offsets[-2] == (20 * MB, len(data)) and offsets[-1] == (len(data), len(data))
    await sandbox.control("POST", "clock", {"advance": 31})
    v = (await graph.get(video_id, fields="status,title,length,source,picture,created_time")).body
    assert v["status"]["video_status"] == "ready" and v["title"] == "Clip ✓" and v["length"] == 10.0
    status, body, _ = await fetch(v["source"])
    assert status == 200 and hashlib.md5(body).hexdigest() == hashlib.md5(data).hexdigest()
    assert (await fetch(v["picture"]))[0] == 200


async def test_m3_wrong_offset_or_length_answers_resume_offsets_then_resuming_works(sandbox, graph):
    data = video_bytes(await sample(sandbox, "sample.mp4"), 10 * MB)
    session = await start(graph, len(data))
    sid = session["upload_session_id"]
    assert (await transfer(graph, sid, 0, data[: 4 * MB])).body == {
        "start_offset": str(4 * MB),
        "end_offset": str(8 * MB),
    }
    for offset, chunk in ((0, data[: 4 * MB]), (5 * MB, data[5 * MB : 9 * MB]), (4 * MB, data[4 * MB : 6 * MB])):
        error = refused_with(await transfer(graph, sid, offset, chunk), 6001, 1363037, "start_offset")
        assert isinstance(error["error_data"], dict)  # the SDK's uploader indexes it as an object
        assert (error["error_data"]["start_offset"], error["error_data"]["end_offset"]) == (str(4 * MB), str(8 * MB))
    error = refused_with(await finish(graph, sid), 6001, 1363037, "start_offset")
    assert error["error_data"]["start_offset"] == str(4 * MB)
    lo, hi = int(error["error_data"]["start_offset"]), int(error["error_data"]["end_offset"])
    while lo != hi:
        answer = await transfer(graph, sid, lo, data[lo:hi])
        lo, hi = int(answer.body["start_offset"]), int(answer.body["end_offset"])
    assert (await finish(graph, sid)).body == {"success": True}
    assert (await finish(graph, sid)).body == {"success": True}  # finishing twice is harmless
    refused_with(await transfer(graph, sid, lo, b"x"), 6001, 1363037, "start_offset")


@pytest.mark.parametrize("when", ["before", "after"])
async def test_fault_injected_chunk_failure_then_resume(sandbox, graph, when):
    data = video_bytes(await sample(sandbox, "sample.mp4"), 9 * MB)
    session = await start(graph, len(data))
    sid = session["upload_session_id"]
    await transfer(graph, sid, 0, data[: 4 * MB])
    await sandbox.fault(kind="video_chunk", path="advideos", method="POST", count=1, when=when)
    error = refused_with(await transfer(graph, sid, 4 * MB, data[4 * MB : 8 * MB]), 6001, 1363037, "start_offset")
    # before: the chunk was dropped, send it again; after: it was kept, only the answer was lost
    expected = (4 * MB, 8 * MB) if when == "before" else (8 * MB, 9 * MB)
    assert (int(error["error_data"]["start_offset"]), int(error["error_data"]["end_offset"])) == expected
    lo, hi = expected
    while lo != hi:
        answer = await transfer(graph, sid, lo, data[lo:hi])
        assert answer.status == 200, answer.body
        lo, hi = int(answer.body["start_offset"]), int(answer.body["end_offset"])
    assert (await finish(graph, sid)).body == {"success": True}
    await sandbox.control("POST", "clock", {"advance": 60})
    v = (await graph.get(session["video_id"], fields="source")).body
    assert hashlib.md5((await fetch(v["source"]))[1]).digest() == hashlib.md5(data).digest()


async def test_chunk_size_is_configurable(sandbox, graph):
    await sandbox.control("POST", "config", {"video_chunk_bytes": MB})
    assert (await start(graph, 3 * MB))["end_offset"] == str(MB)
    for bad in (0, -1, "big", 10**12, True):
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{sandbox.url}/__sandbox/config", json={"video_chunk_bytes": bad}) as resp:
                assert resp.status == 400


# ---- processing, thumbnails, reads


async def test_processing_advances_only_with_the_sandbox_clock(sandbox, graph):
    mp4 = await sample(sandbox, "sample.mp4")
    video_id, _ = await upload_all(graph, mp4)
    status = (await graph.get(video_id, fields="status")).body["status"]
    assert status["video_status"] == "processing" and status["processing_progress"] < 10
    assert (await graph.get(f"{video_id}/thumbnails")).body == {"data": []}
    await asyncio.sleep(0.2)
    assert (await graph.get(video_id, fields="status")).body["status"]["processing_progress"] < 10
    await sandbox.control("POST", "clock", {"advance": 15})
    status = (await graph.get(video_id, fields="status")).body["status"]
    assert status["video_status"] == "processing" and 50 <= status["processing_progress"] < 60
    await sandbox.control("POST", "clock", {"advance": 15})
    status = (await graph.get(video_id, fields="status")).body["status"]
    assert status["video_status"] == "ready" and status["processing_progress"] == 100
    thumbs = (await graph.get(f"{video_id}/thumbnails")).body["data"]
    assert len(thumbs) == 1 and thumbs[0]["is_preferred"] is True
    status_code, png, headers = await fetch(thumbs[0]["uri"])
    assert status_code == 200 and png.startswith(b"\x89PNG") and headers["Content-Type"] == "image/png"
    assert struct.unpack(">II", png[16:24]) == (thumbs[0]["width"], thumbs[0]["height"])


async def test_bytes_that_are_not_a_video_end_in_error(sandbox, graph):
    video_id, _ = await upload_all(graph, os.urandom(5 * MB))
    assert (await graph.get(video_id, fields="status")).body["status"]["video_status"] == "processing"
    await sandbox.control("POST", "clock", {"advance": 31})
    v = (await graph.get(video_id, fields="status,source")).body
    assert v["status"]["video_status"] == "error" and "ftyp" in v["status"]["processing_phase"]["errors"][0]["message"]
    assert "source" not in v and (await graph.get(f"{video_id}/thumbnails")).body == {"data": []}
    webm = b"\x1a\x45\xdf\xa3" + b"\x00" * 1000  # WebM/Matroska EBML magic is accepted
    webm_id, _ = await upload_all(graph, webm)
    await sandbox.control("POST", "clock", {"advance": 31})
    assert (await graph.get(webm_id, fields="status")).body["status"]["video_status"] == "ready"


async def test_simple_upload_by_source_and_file_url(sandbox, graph):
    mp4 = await sample(sandbox, "sample.mp4")
    answer = await graph.post(f"{USD}/advideos", files_form({"source": mp4}, title="simple"))
    assert answer.status == 200 and set(answer.body) == {"id"}, answer.body
    by_url = await graph.post(f"{USD}/advideos", {"file_url": f"{sandbox.url}/__sandbox/files/sample.mp4"})
    redirected = await graph.post(
        f"{USD}/advideos", {"file_url": f"{sandbox.url}/__sandbox/redirect?to={sandbox.url}/__sandbox/files/sample.mp4"}
    )
    assert by_url.status == redirected.status == 200, (by_url.body, redirected.body)
    await sandbox.control("POST", "clock", {"advance": 31})
    for vid in (answer.body["id"], by_url.body["id"], redirected.body["id"]):
        v = (await graph.get(vid, fields="status,length,source")).body
        assert v["status"]["video_status"] == "ready" and v["length"] == 10.0
        assert (await fetch(v["source"]))[1] == mp4
    assert (await graph.get(answer.body["id"], fields="title")).body["title"] == "simple"
    for url in (
        "https://example.com/video.mp4",
        "http://169.254.169.254/latest",
        f"{sandbox.url}/v26.0/me",
        f"{sandbox.url}/__sandbox/files/nothing.mp4",
        "ftp://x/y.mp4",
        "not a url",
        "http://[::1",
        "http://127.0.0.1:99999/__sandbox/files/sample.mp4",
        f"{sandbox.url}/__sandbox/redirect?to=https://example.com/v.mp4",
    ):
        refused_with(await graph.post(f"{USD}/advideos", {"file_url": url}), 389, None, "file_url")
    refused_with(await graph.post(f"{USD}/advideos", {"title": "nothing"}), 100, None, "source")
    refused_with(await graph.post(f"{USD}/advideos", files_form({"source": b""})), 100, None, "source")


async def test_list_update_and_delete_videos(sandbox, graph):
    mp4 = await sample(sandbox, "sample.mp4")
    ids = [
        (await graph.post(f"{USD}/advideos", files_form({"source": mp4}, title=f"v{i}"))).body["id"] for i in range(2)
    ]
    listed = (await graph.get(f"{USD}/advideos", fields="title,status,created_time")).body["data"]
    assert [v["id"] for v in listed[:2]] == ids[::-1] and listed[0]["title"] == "v1"
    assert (await graph.get(f"{JPY}/advideos")).body["data"] == []
    assert (await graph.post(ids[0], {"title": "Renamed ✓", "description": "d"})).body == {"success": True}
    v = (await graph.get(ids[0])).body
    assert v["title"] == "Renamed ✓" and v["description"] == "d" and "updated_time" in v
    assert (await graph.get(ids[0], fields="colour")).error["code"] == 100
    assert (await graph.delete(ids[0])).body == {"success": True}
    gone = await graph.get(ids[0])
    assert gone.status == 400 and gone.error["error_subcode"] == 33
    assert ids[0] not in [v["id"] for v in (await graph.get(f"{USD}/advideos")).body["data"]]


# ---- memory: chunks stream to disk


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
async def test_100_mb_chunked_upload_keeps_memory_bounded(sandbox, graph):
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    chunk = hashlib.sha256(b"x").digest() * (4 * MB // 32)
    size = 100 * MB

    async def push(total: int) -> None:
        session = await start(graph, total)
        lo, hi = 0, int(session["end_offset"])
        while lo != hi:
            answer = await transfer(graph, session["upload_session_id"], lo, chunk[: hi - lo])
            lo, hi = int(answer.body["start_offset"]), int(answer.body["end_offset"])
        assert (await finish(graph, session["upload_session_id"])).body == {"success": True}

    await push(12 * MB)  # warm up buffers and allocator arenas
    before = rss()
    await push(size)
    assert rss() - before < 30 * MB, (rss() - before) / MB


# ---- malformed input: one Graph error, never a 500


@pytest.mark.parametrize(
    "form, code",
    [
        ({"upload_phase": "launch"}, 100),
        ({"upload_phase": "start"}, 100),
        ({"upload_phase": "start", "file_size": "abc"}, 100),
        ({"upload_phase": "start", "file_size": "1.5"}, 100),
        ({"upload_phase": "start", "file_size": "[1]"}, 100),
        ({"upload_phase": "start", "file_size": "-5"}, 6001),
        ({"upload_phase": "start", "file_size": "0"}, 6001),
        ({"upload_phase": "start", "file_size": str(10**30)}, 6001),
        ({"upload_phase": "start", "file_size": str(10 * 1024**3 + 1)}, 6001),
        ({"upload_phase": "transfer"}, 100),
        ({"upload_phase": "transfer", "upload_session_id": "nope", "start_offset": "0"}, 100),
        ({"upload_phase": "transfer", "upload_session_id": "1210000000999999", "start_offset": "0"}, 100),
        ({"upload_phase": "finish", "upload_session_id": "１２３"}, 100),
        ({"upload_phase": "finish"}, 100),
        ({"slideshow_spec": "{}"}, 100),
        ({"file_url": '{"a": 1}'}, 389),
    ],
)
async def test_malformed_video_requests(graph, form, code):
    answer = await graph.post(f"{USD}/advideos", form)
    assert answer.status == 400 and answer.error["code"] == code, answer.body


async def test_malformed_transfers_and_json_bodies(sandbox, graph):
    session = await start(graph, 100)
    sid = session["upload_session_id"]
    for offset in ("x", "-1", "1e3", "99999999999999999999999"):
        answer = await transfer(graph, sid, offset, b"a" * 100)
        assert answer.status == 400 and answer.error["error_subcode"] == 1363037
    no_chunk = await graph.post(
        f"{USD}/advideos", {"upload_phase": "transfer", "upload_session_id": sid, "start_offset": "0"}
    )
    refused_with(no_chunk, 100, None, "video_file_chunk")
    refused_with(await transfer(graph, sid, 0, b"a" * 100, account=JPY), 100, None, "upload_session_id")
    for body in (
        {"upload_phase": ["start"]},
        {"upload_phase": "start", "file_size": {"a": 1}},
        {"upload_phase": "start", "file_size": True},
        {"bytes": 5},
        {"bytes": ["a"]},
    ):
        path = "adimages" if "bytes" in body else "advideos"
        answer = await graph.call("POST", f"{USD}/{path}", json_body=body)
        assert answer.status == 400 and answer.error["code"] in (100, 6001), answer.body
    for hashes in ('{"a":1}', "[1,2]"):
        answer = await graph.get(f"{USD}/adimages", hashes=hashes)
        assert answer.status == 400 and answer.error["code"] == 100
    assert (await graph.get(f"{USD}/adimages", hashes="nope")).body["data"] == []
    unicode_name = await upload_image(graph, await sample(sandbox, "sample.jpg"), "ジャケット ✓ 😀.jpg")
    assert unicode_name.status == 200 and "ジャケット ✓ 😀.jpg" in unicode_name.body["images"]


async def test_control_files_and_redirect(sandbox):
    for name, ctype in (
        ("sample.png", "image/png"),
        ("sample.jpg", "image/jpeg"),
        ("corrupt.png", "image/png"),
        ("sample.mp4", "video/mp4"),
    ):
        status, body, headers = await fetch(f"{sandbox.url}/__sandbox/files/{name}")
        assert status == 200 and body and headers["Content-Type"].startswith(ctype)
    assert 900 * 1024 < len(await sample(sandbox, "sample.mp4")) < 1100 * 1024
    assert (await fetch(f"{sandbox.url}/__sandbox/files/secret.txt"))[0] == 404
    assert (await fetch(f"{sandbox.url}/__sandbox/files/..%2f..%2fetc%2fpasswd"))[0] == 404
    status, _, headers = await fetch(f"{sandbox.url}/__sandbox/redirect?to=http://10.0.0.1/x")
    assert status == 302 and headers["Location"] == "http://10.0.0.1/x"
    assert (await fetch(f"{sandbox.url}/__sandbox/redirect"))[0] == 400
    assert (await fetch(f"{sandbox.url}/__sandbox/media/images/..%2F..%2Fx.png"))[0] == 404
    assert (await fetch(f"{sandbox.url}/__sandbox/media/videos/1.mp4"))[0] == 404


# ---- the official SDK, unchanged but for its base URL


async def test_official_sdk_image_and_video_upload(sandbox, demo_token, graph, tmp_path, monkeypatch):
    from facebook_business import video_uploader
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.adimage import AdImage
    from facebook_business.adobjects.advideo import AdVideo
    from facebook_business.api import FacebookAdsApi

    png_path = tmp_path / "sdk.png"
    png_path.write_bytes(await sample(sandbox, "sample.png"))
    video_path = tmp_path / "clip.mp4"
    video_path.write_bytes(video_bytes(await sample(sandbox, "sample.mp4"), 9 * MB))
    await sandbox.fault(kind="video_chunk", path="advideos", count=1)  # the SDK resumes on 1363037

    def send(self, path):  # the uploader hard-codes graph-video.facebook.com: point it at the sandbox too
        return self._api.call("POST", path, params=self._params, files=self._files, url_override=sandbox.url)

    monkeypatch.setattr(video_uploader.VideoUploadRequest, "send", send)

    def drive() -> dict:
        api = FacebookAdsApi.init(
            demo_token["app_id"], demo_token["app_secret"], demo_token["access_token"], api_version="v26.0"
        )
        api._session.GRAPH = sandbox.url
        image = AdImage(parent_id=USD)
        image[AdImage.Field.filename] = str(png_path)
        image.remote_create()
        images = [dict(i) for i in AdAccount(USD).get_ad_images(fields=["hash", "width"])]
        video = AdVideo(parent_id=USD)
        video[AdVideo.Field.filepath] = str(video_path)
        video.remote_create()
        return {"image": dict(image), "images": images, "video": dict(video)}

    out = await asyncio.to_thread(drive)
    expected_hash = hashlib.md5(png_path.read_bytes()).hexdigest()
    assert out["image"]["hash"] == expected_hash and out["image"]["width"] == 1080
    assert {"hash": expected_hash, "width": 1080, "id": f"{USD[4:]}:{expected_hash}"} in out["images"]
    video_id = out["video"]["id"]
    await sandbox.control("POST", "clock", {"advance": 31})
    v = (await graph.get(video_id, fields="status,title,source")).body
    assert v["status"]["video_status"] == "ready" and v["title"] == "clip.mp4"
    assert (await fetch(v["source"]))[1] == video_path.read_bytes()
    assert (await sandbox.control("GET", "faults"))["data"] == []

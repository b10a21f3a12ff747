"""The rules of docs/creative_rules.md, both sides: the sandbox (standing in for Facebook) refuses a creative the way
Facebook does, and our client stops the same input with the same code before it sends the create.

Where the client fills in what Facebook would refuse without (the enhancements choice, a video's thumbnail), the
test shows the sandbox refusing the bare request and the client's create succeeding and saying what it chose.
"""

from __future__ import annotations

import json

import pytest

from fb_utils import FacebookError

ENHANCEMENTS = {"creative_features_spec": {"image_touchups": {"enroll_status": "OPT_OUT"}}}


@pytest.fixture
async def media(facebook, sandbox, graph):
    pages = await graph.get_all("me/accounts", {"fields": "id"})
    uploaded = await facebook.call("upload_image", {"source": f"{sandbox.url}/__sandbox/files/sample.png"})
    assert uploaded.ok, uploaded.text
    return {"page_id": pages[0]["id"], "hash": uploaded.data["hash"]}


async def _writes(sandbox) -> int:
    stats = await sandbox.stats()
    return sum(n for route, n in stats["by_route"].items() if route.startswith(("POST", "DELETE")))


def _link_spec(page_id: str | None, image_hash: str, link: str = "https://example.com/shop", cards=None) -> dict:
    link_data: dict = {"link": link, "message": "Hello", "name": "Shop now"}
    if cards is not None:
        link_data["child_attachments"] = cards
    else:
        link_data["image_hash"] = image_hash
    spec: dict = {"link_data": link_data}
    if page_id:
        spec["page_id"] = page_id
    return spec


async def _sandbox_refuses(graph, account: str, spec: dict, *, enhancements: bool = True) -> FacebookError:
    body = {"name": "Parity", "object_story_spec": json.dumps(spec)}
    if enhancements:
        body["degrees_of_freedom_spec"] = json.dumps(ENHANCEMENTS)
    with pytest.raises(FacebookError) as refused:
        await graph.post(f"{account}/adcreatives", body)
    return refused.value


async def _client_refuses(facebook, sandbox, args: dict) -> dict:
    before = await _writes(sandbox)
    result = await facebook.call("create_creative", {"name": "Parity", **args})
    assert not result.ok, result.text
    assert result.data.get("error") == "validation", result.data  # our own check, before sending
    assert await _writes(sandbox) == before, "the client sent a create it should have stopped"
    return result.data


def _cards(n: int, image_hash: str) -> list[dict]:
    return [{"link": f"https://example.com/p/{i}", "image_hash": image_hash, "name": f"Card {i}"} for i in range(n)]


@pytest.mark.parametrize(
    "rule, subcode, raw, args",
    [
        (
            "M2 unknown image hash",
            1487242,
            lambda m: _link_spec(m["page_id"], "0" * 32),
            lambda m: {"kind": "image", "image": "0" * 32, "link": "https://example.com"},
        ),
        (
            "C2 carousel of one card",
            1443050,
            lambda m: _link_spec(m["page_id"], m["hash"], cards=_cards(1, m["hash"])),
            lambda m: {
                "kind": "carousel",
                "link": "https://example.com",
                "cards": [{"image": m["hash"], "link": "https://example.com/a"}],
            },
        ),
        (
            "C2 carousel of eleven cards",
            1443050,
            lambda m: _link_spec(m["page_id"], m["hash"], cards=_cards(11, m["hash"])),
            lambda m: {
                "kind": "carousel",
                "link": "https://example.com",
                "cards": [{"image": m["hash"], "link": f"https://example.com/{i}"} for i in range(11)],
            },
        ),
        (
            "C7 link without a scheme",
            1443049,
            lambda m: _link_spec(m["page_id"], m["hash"], link="example.com/shop"),
            lambda m: {"kind": "image", "image": m["hash"], "link": "example.com/shop"},
        ),
    ],
)
async def test_sandbox_and_client_refuse_alike(
    rule, subcode, raw, args, facebook, sandbox, graph, demo_accounts, media
):
    account = demo_accounts["USD"]
    await facebook.select("page", media["page_id"])
    refused = await _sandbox_refuses(graph, account, raw(media))
    assert (refused.code, refused.error_subcode) == (100, subcode), rule
    error = await _client_refuses(facebook, sandbox, args(media))
    assert (error.get("code"), error.get("error_subcode")) == (100, subcode), (rule, error)


async def test_c1_page_required(facebook, sandbox, graph, demo_accounts, media):
    refused = await _sandbox_refuses(graph, demo_accounts["USD"], _link_spec(None, media["hash"]))
    assert (refused.code, refused.error_subcode) == (100, 1443048)
    error = await _client_refuses(
        facebook, sandbox, {"kind": "image", "image": media["hash"], "link": "https://example.com"}
    )
    assert (error.get("code"), error.get("error_subcode")) == (100, 1443048), error


async def test_c3_call_to_action_type(facebook, sandbox, graph, demo_accounts, media):
    spec = _link_spec(media["page_id"], media["hash"])
    spec["link_data"]["call_to_action"] = {"type": "BUY_IT_NOW_PLEASE", "value": {"link": "https://example.com"}}
    refused = await _sandbox_refuses(graph, demo_accounts["USD"], spec)
    assert refused.code == 100 and refused.error_subcode is None and "call_to_action" in str(refused)
    await facebook.select("page", media["page_id"])
    error = await _client_refuses(
        facebook,
        sandbox,
        {"kind": "image", "image": media["hash"], "link": "https://example.com", "call_to_action": "BUY_IT_NOW_PLEASE"},
    )
    assert "call_to_action" in error.get("message", "") + str(error.get("blame_field", ""))


@pytest.mark.sends_forbidden  # sends standard_enhancements on purpose: refused
async def test_c4_standard_enhancements_refused_alike_and_no_spec_accepted(
    facebook, sandbox, graph, demo_accounts, media
):
    """C4 (v22.0+, blog 2025-01-17): the bundle is refused on both sides (3858504, unverified); no spec is fine."""
    body = {
        "name": "Parity",
        "object_story_spec": json.dumps(_link_spec(media["page_id"], media["hash"])),
        "degrees_of_freedom_spec": json.dumps(
            {"creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_OUT"}}}
        ),
    }
    with pytest.raises(FacebookError) as refused:
        await graph.post(f"{demo_accounts['USD']}/adcreatives", body)
    assert (refused.value.code, refused.value.error_subcode) == (100, 3858504)
    await facebook.select("page", media["page_id"])
    error = await _client_refuses(
        facebook,
        sandbox,
        {
            "kind": "image",
            "image": media["hash"],
            "link": "https://example.com",
            "enhancements": {"standard_enhancements": "OPT_OUT"},
        },
    )
    assert (error["code"], error["error_subcode"]) == (100, 3858504) and "v22" in error["message"]
    created = await facebook.call(
        "create_creative", {"name": "Parity", "kind": "image", "image": media["hash"], "link": "https://example.com"}
    )
    assert created.ok, created.text
    assert "degrees_of_freedom_spec" not in created.data["body"] and "no Advantage+ creative features" in created.text
    chosen = await facebook.call(
        "create_creative",
        {
            "name": "Parity 2",
            "kind": "image",
            "image": media["hash"],
            "link": "https://example.com",
            "enhancements": {"text_optimizations": "OPT_OUT"},
        },
    )
    assert chosen.ok, chosen.text
    stored = await graph.get(chosen.data["id"], {"fields": "degrees_of_freedom_spec"})
    assert stored["degrees_of_freedom_spec"] == {
        "creative_features_spec": {"text_optimizations": {"enroll_status": "OPT_OUT"}}
    }


async def test_m4_video_must_be_ready_and_c6_thumbnail(facebook, sandbox, graph, demo_accounts, media, tmp_path):
    account = demo_accounts["USD"]
    await facebook.select("page", media["page_id"])
    sample = tmp_path / "clip.mp4"
    async with __import__("aiohttp").ClientSession() as session:
        async with session.get(f"{sandbox.url}/__sandbox/files/sample.mp4") as resp:
            sample.write_bytes(await resp.read())
    uploaded = await facebook.call("upload_video", {"path": str(sample), "wait": False})
    assert uploaded.ok, uploaded.text
    video_id = uploaded.data["video_id"]
    spec = {
        "page_id": media["page_id"],
        "video_data": {
            "video_id": video_id,
            "image_hash": media["hash"],
            "message": "Hi",
            "call_to_action": {"type": "LEARN_MORE", "value": {"link": "https://example.com"}},
        },
    }
    refused = await _sandbox_refuses(graph, account, spec)
    assert (refused.code, refused.error_subcode) == (100, 1885252)
    error = await _client_refuses(
        facebook,
        sandbox,
        {
            "kind": "video",
            "video": video_id,
            "thumbnail": media["hash"],
            "link": "https://example.com",
            "message": "Hi",
        },
    )
    assert (error.get("code"), error.get("error_subcode")) == (100, 1885252), error

    await sandbox.control("POST", "clock", {"advance": 120})
    bare = {"page_id": media["page_id"], "video_data": {"video_id": video_id, "message": "Hi"}}
    refused = await _sandbox_refuses(graph, account, bare)
    assert (refused.code, refused.error_subcode) == (100, 1443051)
    created = await facebook.call(
        "create_creative",
        {"name": "Video", "kind": "video", "video": video_id, "link": "https://example.com", "message": "Hi"},
    )
    assert created.ok, created.text
    assert "thumbnail" in created.text.lower()


async def test_c5_instagram_account_must_be_connected(facebook, sandbox, graph, demo_accounts, media):
    """Only Facebook knows which Instagram accounts a page may use: the client sends, and answers Facebook's code."""
    spec = {**_link_spec(media["page_id"], media["hash"]), "instagram_user_id": "17841400000099999"}
    refused = await _sandbox_refuses(graph, demo_accounts["USD"], spec)
    assert (refused.code, refused.error_subcode) == (100, 2446886)
    await facebook.select("page", media["page_id"])
    result = await facebook.call(
        "create_creative",
        {
            "name": "IG",
            "kind": "image",
            "image": media["hash"],
            "link": "https://example.com",
            "instagram_account_id": "17841400000099999",
        },
    )
    assert not result.ok and (result.data.get("code"), result.data.get("error_subcode")) == (100, 2446886), result.data
    creatives = (await sandbox.control("GET", "objects?type=adcreative"))["data"]
    assert not [c for c in creatives if c.get("name") == "IG"]

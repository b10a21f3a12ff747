"""Sandbox creatives, ads and previews: rules C1–C7, M2, M4, A1 with codes, subcodes and blame; review (A2);
lists, copies, cascades; preview iframes and their pages; the official SDK. Over real HTTP, no product code."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from test_fb_sandbox_helpers import JPY, USD, Graph, campaign_form

DOF = {
    "creative_features_spec": {
        "image_touchups": {"enroll_status": "OPT_OUT"},
        "text_optimizations": {"enroll_status": "OPT_IN"},
    }
}
TARGETING = {
    "geo_locations": {"countries": ["US"]},
    "age_min": 18,
    "age_max": 65,
    "targeting_automation": {"advantage_audience": 0},
}
CREATIVE_FIELDS = (
    "id,account_id,name,object_story_spec,object_type,status,thumbnail_url,image_hash,image_url,"
    "video_id,call_to_action_type,effective_object_story_id,degrees_of_freedom_spec,"
    "instagram_user_id,url_tags,adlabels,body,title,object_story_id,actor_id"
)
AD_FIELDS = (
    "id,name,adset_id,campaign_id,account_id,creative,status,configured_status,effective_status,"
    "issues_info,ad_review_feedback,created_time,updated_time,source_ad_id,preview_shareable_link,adlabels"
)


@pytest.fixture
async def api(sandbox, demo_token) -> Graph:
    return Graph(sandbox.url, demo_token)


def enc(body: dict) -> dict:
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in body.items() if v is not None}


async def png_bytes(sandbox, color: int = 0) -> bytes:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sandbox.url}/__sandbox/files/sample.png") as resp:
            data = await resp.read()
    return data + bytes([color]) * (color > 0)  # trailing bytes after IEND: another hash, same picture


async def upload_image(api, sandbox, account: str = USD, color: int = 1) -> str:
    form = aiohttp.FormData()
    form.add_field(f"pic{color}.png", await png_bytes(sandbox, color), filename=f"pic{color}.png")
    answer = await api.call("POST", f"{account}/adimages", data=form)
    assert answer.status == 200, answer.body
    return next(iter(answer.body["images"].values()))["hash"]


async def upload_video(api, sandbox, *, ready: bool = True, account: str = USD) -> str:
    answer = await api.post(f"{account}/advideos", {"file_url": f"{sandbox.url}/__sandbox/files/sample.mp4"})
    assert answer.status == 200, answer.body
    if ready:
        await advance(sandbox, 3600)
    return answer.body["id"]


async def advance(sandbox, seconds: float) -> None:
    await sandbox.control("POST", "clock", {"advance": seconds})


async def page_of(api) -> dict:
    return (await api.get("me/accounts", fields="id,name,instagram_business_account")).body["data"][0]


async def count(sandbox, kind: str) -> int:
    return len((await sandbox.control("GET", f"objects?type={kind}"))["data"])


def link_spec(page: str, image_hash: str, **link_data) -> dict:
    data = {
        "link": "https://shop.example.com/shoes",
        "message": "New running shoes, light and fast.",
        "name": "Cloudstride 2",
        "description": "Free shipping",
        "image_hash": image_hash,
        "call_to_action": {"type": "SHOP_NOW"},
        **link_data,
    }
    return {"page_id": page, "link_data": {k: v for k, v in data.items() if v is not None}}


def cards(n: int, image_hash: str) -> list[dict]:
    return [
        {
            "link": f"https://shop.example.com/p/{i}",
            "name": f"Card {i}",
            "description": f"${10 + i}",
            "image_hash": image_hash,
        }
        for i in range(n)
    ]


async def new_creative(api, spec: dict | None = None, account: str = USD, **extra) -> str:
    body = enc({"name": "Test creative", "degrees_of_freedom_spec": DOF, "object_story_spec": spec, **extra})
    answer = await api.post(f"{account}/adcreatives", body)
    assert answer.status == 200, answer.body
    return answer.body["id"]


@pytest.fixture
async def world(api, sandbox) -> dict:
    """A paused-free traffic campaign with an ACTIVE ad set, an image, a link creative, and the page."""
    page = await page_of(api)
    image = await upload_image(api, sandbox)
    campaign = await api.post(f"{USD}/campaigns", campaign_form(status="ACTIVE"))
    assert campaign.status == 200, campaign.body
    adset = await api.post(
        f"{USD}/adsets",
        enc(
            {
                "campaign_id": campaign.body["id"],
                "name": "Ads test ad set",
                "optimization_goal": "LINK_CLICKS",
                "billing_event": "IMPRESSIONS",
                "status": "ACTIVE",
                "targeting": TARGETING,
            }
        ),
    )
    assert adset.status == 200, adset.body
    creative = await new_creative(api, link_spec(page["id"], image))
    return {
        "page": page["id"],
        "ig": page.get("instagram_business_account", {}).get("id"),
        "image": image,
        "campaign": campaign.body["id"],
        "adset": adset.body["id"],
        "creative": creative,
    }


async def new_ad(api, world, **overrides) -> str:
    body = {
        "name": "Test ad",
        "adset_id": world["adset"],
        "creative": {"creative_id": world["creative"]},
        "status": "ACTIVE",
        **overrides,
    }
    answer = await api.post(f"{USD}/ads", enc(body))
    assert answer.status == 200, answer.body
    return answer.body["id"]


def refused_with(answer, code: int, subcode: int | None, blame: str | None) -> dict:
    assert answer.status == 400, answer.body
    error = answer.error
    assert (error["code"], error.get("error_subcode")) == (code, subcode), error
    if blame is not None:
        assert answer.blame() == [blame], error
    assert error["fbtrace_id"]
    return error


# ---- creatives of each kind, created and read back


async def test_image_link_creative_round_trip(api, sandbox, world):
    spec = link_spec(world["page"], world["image"])
    spec["instagram_user_id"] = world["ig"]
    cid = await new_creative(api, spec, url_tags="utm_source=facebook", adlabels=[{"name": "spring"}])
    assert re.fullmatch(r"120213\d{12}", cid)
    c = (await api.get(cid, fields=CREATIVE_FIELDS)).body
    assert (c["account_id"], c["name"], c["object_type"], c["status"]) == (USD[4:], "Test creative", "SHARE", "ACTIVE")
    assert c["object_story_spec"]["link_data"]["message"] == "New running shoes, light and fast."
    assert c["object_story_spec"]["instagram_user_id"] == c["instagram_user_id"] == world["ig"]
    assert c["image_hash"] == world["image"] and c["call_to_action_type"] == "SHOP_NOW"
    assert c["degrees_of_freedom_spec"] == DOF and c["url_tags"] == "utm_source=facebook"
    assert c["adlabels"][0]["name"] == "spring" and c["actor_id"] == world["page"]
    assert (c["body"], c["title"]) == ("New running shoes, light and fast.", "Cloudstride 2")
    assert re.fullmatch(rf"{world['page']}_\d+", c["effective_object_story_id"])
    assert c["thumbnail_url"] == c["image_url"] and world["image"] in c["image_url"]
    async with aiohttp.ClientSession() as session:
        async with session.get(c["image_url"]) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
    assert (await api.get(cid)).body == {"id": cid}
    listed = (await api.get(f"{USD}/adcreatives", fields="id,name", summary="true")).body
    assert listed["data"][0] == {"id": cid, "name": "Test creative"}
    assert listed["summary"]["total_count"] >= 2


async def test_video_creative(api, sandbox, world):
    video = await upload_video(api, sandbox)
    spec = {
        "page_id": world["page"],
        "video_data": {
            "video_id": video,
            "image_hash": world["image"],
            "title": "See it run",
            "message": "60 seconds of speed",
            "call_to_action": {"type": "LEARN_MORE", "value": {"link": "https://shop.example.com/video"}},
        },
    }
    c = (await api.get(await new_creative(api, spec), fields=CREATIVE_FIELDS)).body
    assert (c["object_type"], c["video_id"], c["title"]) == ("VIDEO", video, "See it run")
    assert c["call_to_action_type"] == "LEARN_MORE" and world["image"] in c["thumbnail_url"]
    by_url = dict(
        spec, video_data={**spec["video_data"], "image_hash": None, "image_url": "https://cdn.example.com/thumb.jpg"}
    )
    by_url["video_data"] = {k: v for k, v in by_url["video_data"].items() if v is not None}
    c2 = (await api.get(await new_creative(api, by_url), fields="thumbnail_url")).body
    assert c2["thumbnail_url"] == "https://cdn.example.com/thumb.jpg"


async def test_photo_creative(api, world):
    spec = {"page_id": world["page"], "photo_data": {"image_hash": world["image"], "caption": "Photo of the day"}}
    c = (await api.get(await new_creative(api, spec), fields="object_type,image_hash,body")).body
    assert (c["object_type"], c["image_hash"], c["body"]) == ("PHOTO", world["image"], "Photo of the day")


@pytest.mark.parametrize("n", [2, 10])
async def test_carousel_creative(api, world, n):
    spec = link_spec(world["page"], None, child_attachments=cards(n, world["image"]), name=None, description=None)
    c = (await api.get(await new_creative(api, spec), fields="object_story_spec,object_type,image_url")).body
    got = c["object_story_spec"]["link_data"]["child_attachments"]
    assert [card["name"] for card in got] == [f"Card {i}" for i in range(n)]
    assert all(card["image_hash"] == world["image"] and not any(k.startswith("_") for k in card) for card in got)
    assert c["object_type"] == "SHARE" and world["image"] in c["image_url"]


async def test_page_post_creative(api, world):
    story = f"{world['page']}_987654321"
    body = enc({"name": "Boost a post", "object_story_id": story, "degrees_of_freedom_spec": DOF})
    answer = await api.post(f"{USD}/adcreatives", body)
    assert answer.status == 200, answer.body
    c = (await api.get(answer.body["id"], fields="object_story_id,effective_object_story_id,object_type")).body
    assert c["object_story_id"] == c["effective_object_story_id"] == story and c["object_type"] == "SHARE"
    unknown_page = enc({"object_story_id": "999_1", "degrees_of_freedom_spec": DOF})
    refused_with(await api.post(f"{USD}/adcreatives", unknown_page), 100, 1443048, "object_story_spec")
    refused_with(
        await api.post(f"{USD}/adcreatives", enc({"object_story_id": "not-a-post", "degrees_of_freedom_spec": DOF})),
        100,
        None,
        "object_story_id",
    )


async def test_creative_rename_only_and_validate_only(api, sandbox, world):
    cid = world["creative"]
    assert (await api.post(cid, {"name": "Renamed ✓"})).body == {"success": True}
    assert (await api.get(cid, fields="name")).body["name"] == "Renamed ✓"
    error = refused_with(
        await api.post(cid, enc({"object_story_spec": link_spec(world["page"], world["image"])})),
        100,
        None,
        "object_story_spec",
    )
    assert "name" in error["error_user_msg"]
    before = await count(sandbox, "adcreative")
    answer = await api.post(
        f"{USD}/adcreatives",
        enc(
            {
                "object_story_spec": link_spec(world["page"], world["image"]),
                "degrees_of_freedom_spec": DOF,
                "execution_options": ["validate_only"],
            }
        ),
    )
    assert answer.body == {"success": True} and await count(sandbox, "adcreative") == before
    default_name = await new_creative(api, link_spec(world["page"], world["image"]), name=None)
    assert (await api.get(default_name, fields="name")).body["name"].startswith("Demo Page Post: ")


# ---- every rule refused with Facebook's code, subcode and blame, creating nothing


def _rule_cases(page: str, image: str, ig: str, jpy_image: str, processing_video: str) -> list:
    link = link_spec(page, image)
    ld = link["link_data"]
    video = {"page_id": page, "video_data": {"video_id": processing_video, "image_hash": image, "title": "t"}}
    return [
        ("C1 no page", {"link_data": ld}, (1443048, "object_story_spec")),
        ("C1 unknown page", {**link, "page_id": "400000000009999"}, (1443048, "object_story_spec")),
        ("C2 one card", link_spec(page, None, child_attachments=cards(1, image)), (1443050, "object_story_spec")),
        ("C2 eleven cards", link_spec(page, None, child_attachments=cards(11, image)), (1443050, "object_story_spec")),
        (
            "C2 card without link",
            link_spec(page, None, child_attachments=[{"image_hash": image}] * 2),
            (1443050, "object_story_spec"),
        ),
        (
            "C2 card without image",
            link_spec(page, None, child_attachments=[{"link": "https://a.example.com"}] * 2),
            (1443050, "object_story_spec"),
        ),
        (
            "C3 unknown CTA",
            link_spec(page, image, call_to_action={"type": "BUY_IT_NOW_PLEASE"}),
            (None, "call_to_action"),
        ),
        ("C5 unknown instagram", {**link, "instagram_user_id": "17841499999999999"}, (2446886, "object_story_spec")),
        ("C5 instagram_actor_id", {**link, "instagram_actor_id": page}, (2446886, "object_story_spec")),
        (
            "C6 video without thumbnail",
            {"page_id": page, "video_data": {"video_id": processing_video}},
            (1443051, "object_story_spec"),
        ),
        ("C7 relative link", link_spec(page, image, link="/shoes"), (1443049, "object_story_spec")),
        ("C7 ftp link", link_spec(page, image, link="ftp://shop.example.com/x"), (1443049, "object_story_spec")),
        (
            "C7 no link",
            {"page_id": page, "link_data": {"message": "hi", "image_hash": image}},
            (1443049, "object_story_spec"),
        ),
        (
            "C7 card link",
            link_spec(page, None, child_attachments=[{"link": "shop", "image_hash": image}] * 2),
            (1443049, "object_story_spec"),
        ),
        (
            "C7 CTA link",
            link_spec(page, image, call_to_action={"type": "SHOP_NOW", "value": {"link": "javascript:x"}}),
            (1443049, "object_story_spec"),
        ),
        ("M2 unknown hash", link_spec(page, "0123456789abcdef0123456789abcdef"), (1487242, "image_hash")),
        ("M2 other account's image", link_spec(page, jpy_image), (1487242, "image_hash")),
        (
            "M2 card image",
            link_spec(page, None, child_attachments=[{"link": "https://a.example.com", "image_hash": "feed"}] * 2),
            (1487242, "image_hash"),
        ),
        ("M4 video processing", video, (1885252, "video_id")),
        (
            "M4 unknown video",
            {"page_id": page, "video_data": {"video_id": "1200000000099999", "image_hash": image}},
            (1885252, "video_id"),
        ),
    ]


async def test_creative_rules_refused(api, sandbox, world):
    jpy_image = await upload_image(api, sandbox, account=JPY, color=7)
    processing = await upload_video(api, sandbox, ready=False)
    before = await count(sandbox, "adcreative")
    for label, spec, (subcode, blame) in _rule_cases(world["page"], world["image"], world["ig"], jpy_image, processing):
        answer = await api.post(
            f"{USD}/adcreatives", enc({"name": label, "object_story_spec": spec, "degrees_of_freedom_spec": DOF})
        )
        try:
            error = refused_with(answer, 100, subcode, blame)
        except AssertionError as exc:
            raise AssertionError(f"{label}: {exc}") from None
        if label == "C3 unknown CTA":
            assert error["message"].startswith("(#100) Param call_to_action[type] must be one of {")
            assert "SHOP_NOW" in error["message"] and "LEARN_MORE" in error["message"]
    assert await count(sandbox, "adcreative") == before


@pytest.mark.sends_forbidden  # sends standard_enhancements on purpose: refused
async def test_c3_link_cta_needs_a_link_and_c4_enroll_status(api, sandbox, world):
    video = await upload_video(api, sandbox)
    spec = {
        "page_id": world["page"],
        "video_data": {"video_id": video, "image_hash": world["image"], "call_to_action": {"type": "SHOP_NOW"}},
    }
    refused_with(
        await api.post(f"{USD}/adcreatives", enc({"object_story_spec": spec, "degrees_of_freedom_spec": DOF})),
        100,
        None,
        "call_to_action",
    )
    spec["video_data"]["call_to_action"] = {"type": "CALL_NOW"}  # a call needs no web link
    assert (
        await api.post(f"{USD}/adcreatives", enc({"object_story_spec": spec, "degrees_of_freedom_spec": DOF}))
    ).status == 200
    link = link_spec(world["page"], world["image"])
    # C4 (v22.0+): no spec, or individual features (SDK AdCreativeFeaturesSpec keys) with OPT_IN/OPT_OUT
    for dof in (
        None,
        {},
        {
            "creative_features_spec": {
                "image_animation": {"enroll_status": "OPT_IN"},
                "video_filtering": {"enroll_status": "OPT_OUT"},
            }
        },
    ):
        body = (
            {"object_story_spec": link} if dof is None else {"object_story_spec": link, "degrees_of_freedom_spec": dof}
        )
        answer = await api.post(f"{USD}/adcreatives", enc(body))
        assert answer.status == 200, answer.body
        got = (await api.get(answer.body["id"], fields="degrees_of_freedom_spec")).body
        assert got.get("degrees_of_freedom_spec") == dof, got
    # the deprecated bundle is refused on POST (third-party observed 3858504, unverified)
    answer = await api.post(
        f"{USD}/adcreatives",
        enc(
            {
                "object_story_spec": link,
                "degrees_of_freedom_spec": {
                    "creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_OUT"}}
                },
            }
        ),
    )
    error = refused_with(answer, 100, 3858504, "degrees_of_freedom_spec")
    assert "deprecated" in error["error_user_msg"]
    for dof, words in (
        ({"creative_features_spec": {"not_a_feature": {"enroll_status": "OPT_IN"}}}, "not a valid"),
        ({"creative_features_spec": {"image_touchups": {"enroll_status": "MAYBE"}}}, "OPT_IN, OPT_OUT"),
        ("OPT_IN", "JSON object"),
    ):
        answer = await api.post(f"{USD}/adcreatives", enc({"object_story_spec": link, "degrees_of_freedom_spec": dof}))
        error = refused_with(answer, 100, None, "degrees_of_freedom_spec")
        assert words in error["message"], error


async def test_video_becomes_usable_when_ready(api, sandbox, world):
    video = await upload_video(api, sandbox, ready=False)
    spec = {"page_id": world["page"], "video_data": {"video_id": video, "image_hash": world["image"]}}
    body = enc({"object_story_spec": spec, "degrees_of_freedom_spec": DOF})
    error = refused_with(await api.post(f"{USD}/adcreatives", body), 100, 1885252, "video_id")
    assert "processing" in error["error_user_msg"]
    await advance(sandbox, 3600)
    assert (await api.post(f"{USD}/adcreatives", body)).status == 200


# ---- ads: A1, review (A2), lists


async def test_ad_rules_a1(api, sandbox, world):
    jpy_adset = (await api.get(f"{JPY}/adsets")).body["data"][0]["id"]
    jpy_image = await upload_image(api, sandbox, account=JPY, color=9)
    jpy_page_creative = await new_creative(api, link_spec(world["page"], jpy_image), account=JPY)
    deleted_adset = (
        await api.post(
            f"{USD}/adsets",
            enc(
                {
                    "campaign_id": world["campaign"],
                    "name": "to delete",
                    "optimization_goal": "LINK_CLICKS",
                    "billing_event": "IMPRESSIONS",
                    "status": "PAUSED",
                    "targeting": TARGETING,
                }
            ),
        )
    ).body["id"]
    await api.delete(deleted_adset)
    unused = await new_creative(api, link_spec(world["page"], world["image"]))
    await api.delete(unused)
    before = await count(sandbox, "ad")
    good = {"name": "A1", "adset_id": world["adset"], "creative": {"creative_id": world["creative"]}}
    cases = [
        ({"adset_id": None}, 1487079, "adset_id"),
        ({"adset_id": jpy_adset}, 1487079, "adset_id"),
        ({"adset_id": deleted_adset}, 1487079, "adset_id"),
        ({"adset_id": "abc"}, 1487079, "adset_id"),
        ({"creative": None}, 1487242, "creative"),
        ({"creative": {"creative_id": jpy_page_creative}}, 1487242, "creative"),
        ({"creative": {"creative_id": unused}}, 1487242, "creative"),
        ({"creative": {"creative_id": world["adset"]}}, 1487242, "creative"),
        ({"creative": "[1,2]"}, 1487242, "creative"),
    ]
    for overrides, subcode, blame in cases:
        refused_with(await api.post(f"{USD}/ads", enc({**good, **overrides})), 100, subcode, blame)
    refused_with(await api.post(f"{USD}/ads", enc({**good, "status": "ARCHIVED"})), 100, None, "status")
    refused_with(await api.post(f"{USD}/ads", enc({**good, "name": None})), 100, None, "name")
    assert await count(sandbox, "ad") == before
    answer = await api.post(f"{USD}/ads", enc({**good, "execution_options": ["validate_only"]}))
    assert answer.body == {"success": True} and await count(sandbox, "ad") == before


async def test_ad_round_trip_and_review(api, sandbox, world):
    creative_as_string = await api.post(
        f"{USD}/ads",
        {
            "name": "String creative",
            "adset_id": world["adset"],
            "creative": json.dumps({"creative_id": world["creative"]}),
        },
    )
    assert creative_as_string.status == 200, creative_as_string.body
    ad_id = await new_ad(api, world, adlabels=[{"name": "q3"}])
    assert re.fullmatch(r"120212\d{12}", ad_id)
    a = (await api.get(ad_id, fields=AD_FIELDS)).body
    assert (a["adset_id"], a["campaign_id"], a["account_id"]) == (world["adset"], world["campaign"], USD[4:])
    assert a["creative"] == {"id": world["creative"]} and a["source_ad_id"] == "0"
    assert a["status"] == a["configured_status"] == "ACTIVE" and a["effective_status"] == "PENDING_REVIEW"
    assert "issues_info" not in a and "ad_review_feedback" not in a and a["adlabels"][0]["name"] == "q3"
    assert a["preview_shareable_link"].startswith(sandbox.url + "/__sandbox/preview/")
    paused = await new_ad(api, world, status="PAUSED")
    await advance(sandbox, 599)
    assert (await api.get(ad_id, fields="effective_status")).body["effective_status"] == "PENDING_REVIEW"
    await advance(sandbox, 2)
    assert (await api.get(ad_id, fields="effective_status")).body["effective_status"] == "ACTIVE"
    assert (await api.get(paused, fields="effective_status")).body["effective_status"] == "PAUSED"
    assert (await api.post(world["adset"], {"status": "PAUSED"})).status == 200
    assert (await api.get(ad_id, fields="effective_status")).body["effective_status"] == "ADSET_PAUSED"
    assert (await api.post(world["campaign"], {"status": "PAUSED"})).status == 200
    assert (await api.get(ad_id, fields="effective_status")).body["effective_status"] == "CAMPAIGN_PAUSED"
    await api.post(world["campaign"], {"status": "ACTIVE"})
    await api.post(world["adset"], {"status": "ACTIVE"})
    assert (await api.post(ad_id, {"name": "Renamed ad", "status": "PAUSED"})).body == {"success": True}
    a = (await api.get(ad_id, fields="name,status,effective_status")).body
    assert (a["name"], a["status"], a["effective_status"]) == ("Renamed ad", "PAUSED", "PAUSED")
    refused_with(await api.post(ad_id, {"adset_id": world["campaign"]}), 100, None, "adset_id")
    other = await new_creative(api, link_spec(world["page"], world["image"], message="Fresh text"))
    await api.post(ad_id, enc({"creative": {"creative_id": other}, "status": "ACTIVE"}))
    assert (await api.get(ad_id, fields="effective_status")).body["effective_status"] == "PENDING_REVIEW"
    await advance(sandbox, 600)
    assert (await api.get(ad_id, fields="effective_status,creative")).body == {
        "effective_status": "ACTIVE",
        "creative": {"id": other},
        "id": ad_id,
    }


@pytest.mark.parametrize(
    "text, policy",
    [
        ("Guaranteed income from home, starting today!", "Unrealistic Outcomes"),
        ("This is not a get-rich-quick scheme", "Unrealistic Outcomes"),
        ("Make $500 a day with our app", "Unrealistic Outcomes"),
        ("Lose 10 kg in two weeks", "Personal Health and Appearance"),
        ("The miracle cure doctors hate", "Misleading Claims"),
    ],
)
async def test_policy_phrase_disapproved(api, sandbox, world, text, policy):
    spec = link_spec(world["page"], world["image"], message="Nice shoes", description=text)
    ad_id = await new_ad(api, world, creative={"creative_id": await new_creative(api, spec)})
    assert (await api.get(ad_id, fields="effective_status")).body["effective_status"] == "PENDING_REVIEW"
    await advance(sandbox, 601)
    a = (await api.get(ad_id, fields="effective_status,issues_info,ad_review_feedback")).body
    assert a["effective_status"] == "DISAPPROVED"
    issue = a["issues_info"][0]
    assert (issue["level"], issue["error_type"], issue["error_code"]) == ("AD", "HARD_ERROR", 1815694)
    assert policy in issue["error_summary"] and issue["error_message"]
    assert list(a["ad_review_feedback"]["global"]) == [policy]
    listed = (await api.get(f"{USD}/ads", effective_status='["DISAPPROVED"]', fields="id")).body["data"]
    assert {"id": ad_id} in listed


async def test_policy_in_carousel_card(api, sandbox, world):
    spec = link_spec(world["page"], None, child_attachments=cards(2, world["image"]), name=None)
    spec["link_data"]["child_attachments"][1]["name"] = "Get rich quick!"
    ad_id = await new_ad(api, world, creative={"creative_id": await new_creative(api, spec)})
    await advance(sandbox, 600)
    assert (await api.get(ad_id, fields="effective_status")).body["effective_status"] == "DISAPPROVED"


async def test_ad_lists(api, sandbox, world):
    ids = [await new_ad(api, world, name=f"List ad {i}", status="PAUSED" if i == 2 else "ACTIVE") for i in range(3)]
    for path in (f"{USD}/ads", f"{world['adset']}/ads", f"{world['campaign']}/ads"):
        body = (await api.get(path, fields="id,name,effective_status", limit="2", summary="true")).body
        assert [a["id"] for a in body["data"]] == ids[::-1][:2], path
        rest = (await api.get(path, fields="id", limit="2", after=body["paging"]["cursors"]["after"])).body
        assert ids[0] in [a["id"] for a in rest["data"]], path
        if path != f"{USD}/ads":
            assert body["summary"]["total_count"] == 3 and "next" in body["paging"]
    await advance(sandbox, 600)
    active = (await api.get(f"{world['adset']}/ads", effective_status='["ACTIVE"]')).body["data"]
    assert {a["id"] for a in active} == set(ids[:2])
    filtered = (
        await api.get(
            f"{USD}/ads", filtering=json.dumps([{"field": "ad.name", "operator": "CONTAIN", "value": "List ad 1"}])
        )
    ).body["data"]
    assert [a["id"] for a in filtered] == [ids[1]]
    refused_with(await api.get(f"{USD}/ads", effective_status='["SLEEPING"]'), 100, None, "effective_status[0]")
    refused_with(await api.get(f"{USD}/ads", fields="id,colour"), 100, None, None)
    creatives = (await api.get(f"{ids[0]}/adcreatives", fields="id,name")).body["data"]
    assert creatives == [{"id": world["creative"], "name": "Test creative"}]


async def test_seeded_demo_ads(api):
    ads = (await api.get(f"{USD}/ads", fields="name,effective_status,issues_info,creative", limit="50")).body["data"]
    by_status = {a["effective_status"] for a in ads}
    assert {"ACTIVE", "PAUSED", "CAMPAIGN_PAUSED", "DISAPPROVED"} <= by_status
    disapproved = next(a for a in ads if a["effective_status"] == "DISAPPROVED")
    assert disapproved["issues_info"][0]["error_type"] == "HARD_ERROR"
    thumb = (await api.get(disapproved["creative"]["id"], fields="thumbnail_url")).body["thumbnail_url"]
    async with aiohttp.ClientSession() as session:
        async with session.get(thumb) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
    assert (await api.get(f"{JPY}/ads")).body["data"]


# ---- copies, cascades, deleting creatives


async def test_ad_copies(api, sandbox, world):
    ad_id = await new_ad(api, world, name="Original")
    other_adset = (
        await api.post(
            f"{USD}/adsets",
            enc(
                {
                    "campaign_id": world["campaign"],
                    "name": "Second",
                    "optimization_goal": "LINK_CLICKS",
                    "billing_event": "IMPRESSIONS",
                    "status": "ACTIVE",
                    "targeting": TARGETING,
                }
            ),
        )
    ).body["id"]
    copy = await api.post(
        f"{ad_id}/copies",
        {
            "adset_id": other_adset,
            "status_option": "INHERITED_FROM_SOURCE",
            "rename_options": json.dumps({"rename_suffix": " (B)"}),
        },
    )
    assert copy.status == 200, copy.body
    c = (
        await api.get(copy.body["copied_ad_id"], fields="name,adset_id,status,source_ad_id,creative,effective_status")
    ).body
    assert (c["name"], c["adset_id"], c["status"], c["source_ad_id"]) == ("Original (B)", other_adset, "ACTIVE", ad_id)
    assert c["creative"] == {"id": world["creative"]} and c["effective_status"] == "PENDING_REVIEW"
    plain = (await api.post(f"{ad_id}/copies")).body["copied_ad_id"]
    p = (await api.get(plain, fields="name,status,adset_id")).body
    assert (p["name"], p["status"], p["adset_id"]) == ("Original - Copy", "PAUSED", world["adset"])
    jpy_adset = (await api.get(f"{JPY}/adsets")).body["data"][0]["id"]
    refused_with(await api.post(f"{ad_id}/copies", {"adset_id": jpy_adset}), 100, 1487079, "adset_id")
    refused_with(await api.post(f"{ad_id}/copies", {"status_option": "LOUD"}), 100, None, "status_option")
    deep = (await api.post(f"{world['adset']}/copies", {"deep_copy": "true"})).body
    copied_ads = [o for o in deep["ad_object_ids"] if o["ad_object_type"] == "ad"]
    assert {o["source_id"] for o in copied_ads} == {ad_id, plain}
    listed = (await api.get(f"{deep['copied_adset_id']}/ads", fields="status")).body["data"]
    assert len(listed) == 2 and all(a["status"] == "PAUSED" for a in listed)
    whole = (await api.post(f"{world['campaign']}/copies", {"deep_copy": "true"})).body
    assert sum(o["ad_object_type"] == "ad" for o in whole["ad_object_ids"]) >= 3


async def test_cascades_and_creative_delete(api, sandbox, world):
    ad_id = await new_ad(api, world)
    error = refused_with(await api.delete(world["creative"]), 100, None, None)
    assert ad_id in error["error_user_msg"]
    assert (await api.post(world["adset"], {"status": "ARCHIVED"})).status == 200
    assert (await api.get(ad_id, fields="status,effective_status")).body["status"] == "ARCHIVED"
    assert (await api.get(f"{USD}/ads", fields="id")).body["data"][0]["id"] != ad_id
    assert (await api.delete(world["adset"])).body == {"success": True}
    assert (await api.get(ad_id, fields="status")).body["status"] == "DELETED"
    refused_with(await api.post(ad_id, {"name": "zombie"}), 100, None, "status")
    assert (await api.delete(world["creative"])).body == {"success": True}
    assert (await api.get(world["creative"], fields="status")).body["status"] == "DELETED"
    assert world["creative"] not in [c["id"] for c in (await api.get(f"{USD}/adcreatives")).body["data"]]
    # a deleted campaign takes its ad sets and their ads along
    adset = (
        await api.post(
            f"{USD}/adsets",
            enc(
                {
                    "campaign_id": world["campaign"],
                    "name": "Third",
                    "optimization_goal": "LINK_CLICKS",
                    "billing_event": "IMPRESSIONS",
                    "status": "ACTIVE",
                    "targeting": TARGETING,
                }
            ),
        )
    ).body["id"]
    creative = await new_creative(api, link_spec(world["page"], world["image"]))
    second = await new_ad(api, {**world, "adset": adset, "creative": creative})
    assert (await api.delete(world["campaign"])).status == 200
    assert (await api.get(second, fields="status,effective_status")).body["effective_status"] == "DELETED"
    assert (await api.delete(second)).body == {"success": True}


# ---- previews


def iframe_parts(body: str) -> tuple[str, int, int]:
    match = re.fullmatch(
        r'<iframe src="([^"]+)" width="(\d+)" height="(\d+)" scrolling="yes" '
        r'style="border: none;"></iframe>',
        body,
    )
    assert match, body
    return match.group(1).replace("&amp;", "&"), int(match.group(2)), int(match.group(3))


async def fetch(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            return resp.status, resp.content_type, await resp.text()


MESSAGE, HEADLINE = "New running shoes, light and fast.", "Cloudstride 2"


@pytest.mark.parametrize(
    "ad_format, width, texts",
    [
        ("DESKTOP_FEED_STANDARD", 502, [MESSAGE, HEADLINE, "Shop now", "SHOP.EXAMPLE.COM", "Demo Page"]),
        ("MOBILE_FEED_STANDARD", 335, [MESSAGE, HEADLINE, "Shop now", "Sponsored"]),
        ("INSTAGRAM_STANDARD", 326, [MESSAGE, "Shop now", "demo.store"]),
        ("INSTAGRAM_STORY", 320, [MESSAGE, "Shop now", "demo.store"]),
        ("FACEBOOK_REELS_MOBILE", 320, [MESSAGE, "Shop now", "Demo Page"]),
        ("FACEBOOK_STORY_MOBILE", 320, [MESSAGE, "Shop now"]),
        ("RIGHT_COLUMN_STANDARD", 254, [HEADLINE, "shop.example.com"]),
    ],
)
async def test_ad_previews(api, sandbox, world, ad_format, width, texts):
    ad_id = await new_ad(api, world)
    answer = await api.get(f"{ad_id}/previews", ad_format=ad_format)
    assert answer.status == 200 and len(answer.body["data"]) == 1, answer.body
    src, w, h = iframe_parts(answer.body["data"][0]["body"])
    assert src.startswith(sandbox.url + "/__sandbox/preview/") and w == width and 150 <= h <= 700
    status, ctype, page = await fetch(src)
    assert status == 200 and ctype == "text/html"
    assert all(text in page for text in texts), [t for t in texts if t not in page]
    assert f"/__sandbox/media/images/{world['image']}.png" in page
    assert "<script" not in page.lower()


async def test_preview_content_per_kind(api, sandbox, world):
    video = await upload_video(api, sandbox)
    carousel = await new_creative(
        api, link_spec(world["page"], None, child_attachments=cards(3, world["image"]), message="Pick one <b>now</b>")
    )
    for ad_format in ("DESKTOP_FEED_STANDARD", "INSTAGRAM_STANDARD", "INSTAGRAM_REELS"):
        src, _, _ = iframe_parts((await api.get(f"{carousel}/previews", ad_format=ad_format)).body["data"][0]["body"])
        _, _, page = await fetch(src)
        assert "Pick one &lt;b&gt;now&lt;/b&gt;" in page and "<b>now</b>" not in page
        if ad_format == "DESKTOP_FEED_STANDARD":
            assert all(f"Card {i}" in page for i in range(3)) and page.count('class="cc"') == 3
    video_creative = await new_creative(
        api,
        {
            "page_id": world["page"],
            "video_data": {
                "video_id": video,
                "image_hash": world["image"],
                "title": "Watch it",
                "message": "Video text",
                "call_to_action": {"type": "WATCH_MORE", "value": {"link": "https://shop.example.com/v"}},
            },
        },
    )
    src, _, _ = iframe_parts(
        (await api.get(f"{video_creative}/previews", ad_format="MOBILE_FEED_STANDARD")).body["data"][0]["body"]
    )
    _, _, page = await fetch(src)
    assert "Video text" in page and "Watch it" in page and 'class="play"' in page and "Watch more" in page


@pytest.mark.sends_forbidden  # sends standard_enhancements on purpose: refused
async def test_generatepreviews(api, sandbox, world):
    by_id = await api.get(
        f"{USD}/generatepreviews",
        ad_format="MOBILE_FEED_STANDARD",
        creative=json.dumps({"creative_id": world["creative"]}),
    )
    src, w, _ = iframe_parts(by_id.body["data"][0]["body"])
    assert w == 335 and (await fetch(src))[0] == 200
    spec = {"object_story_spec": link_spec(world["page"], world["image"], message="Inline spec ünïcödé 広告")}
    inline = await api.get(f"{USD}/generatepreviews", ad_format="INSTAGRAM_STANDARD", creative=json.dumps(spec))
    assert inline.status == 200, inline.body
    status, _, page = await fetch(iframe_parts(inline.body["data"][0]["body"])[0])
    assert status == 200 and "Inline spec ünïcödé 広告" in page
    refused_with(
        await api.get(
            f"{USD}/generatepreviews",
            ad_format="MOBILE_FEED_STANDARD",
            creative=json.dumps({"object_story_spec": {"link_data": {}}}),
        ),
        100,
        1443048,
        "object_story_spec",
    )
    refused_with(
        await api.get(
            f"{JPY}/generatepreviews",
            ad_format="MOBILE_FEED_STANDARD",
            creative=json.dumps({"creative_id": world["creative"]}),
        ),
        100,
        1487242,
        "creative",
    )
    refused_with(
        await api.get(f"{USD}/generatepreviews", ad_format="MOBILE_FEED_STANDARD", creative="nope"),
        100,
        None,
        "creative",
    )
    # Standard Enhancements are deprecated "for opt-in and preview" (v22.0 blog): refused here too; features are fine
    bundle = {
        **spec,
        "degrees_of_freedom_spec": {"creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_IN"}}},
    }
    refused_with(
        await api.get(f"{USD}/generatepreviews", ad_format="MOBILE_FEED_STANDARD", creative=json.dumps(bundle)),
        100,
        3858504,
        "degrees_of_freedom_spec",
    )
    features = {**spec, "degrees_of_freedom_spec": DOF}
    assert (
        await api.get(f"{USD}/generatepreviews", ad_format="MOBILE_FEED_STANDARD", creative=json.dumps(features))
    ).status == 200


async def test_preview_errors(api, sandbox, world):
    ad_id = await new_ad(api, world)
    refused_with(await api.get(f"{ad_id}/previews"), 100, None, "ad_format")
    error = refused_with(await api.get(f"{ad_id}/previews", ad_format="BILLBOARD"), 100, None, "ad_format")
    assert error["message"].startswith("(#100) Param ad_format must be one of {")
    assert "INSTAGRAM_STORY" in error["message"]
    refused_with(await api.get(f"{world['adset']}/previews", ad_format="MOBILE_FEED_STANDARD"), 100, 33, None)
    answer = await api.get(f"{ad_id}/previews", ad_format="MOBILE_FEED_STANDARD")
    src, _, _ = iframe_parts(answer.body["data"][0]["body"])
    token = src.rsplit("/", 1)[1]
    payload, sig = token.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for bad in (f"{forged}.{sig}", f"{payload}.{'0' * 32}", "garbage", f"{payload}"):
        status, ctype, _ = await fetch(f"{sandbox.url}/__sandbox/preview/{bad}")
        assert status == 404 and ctype == "text/html", bad


# ---- malformed input: one Graph error, never a 500


@pytest.mark.parametrize(
    "label, body",
    [
        ("spec not JSON", {"object_story_spec": "{not json", "degrees_of_freedom_spec": json.dumps(DOF)}),
        ("spec a list", {"object_story_spec": "[1, 2]", "degrees_of_freedom_spec": json.dumps(DOF)}),
        ("link_data a string", {"object_story_spec": json.dumps({"page_id": "400000000000001", "link_data": "x"})}),
        (
            "message a number",
            {
                "object_story_spec": json.dumps(
                    {"page_id": "400000000000001", "link_data": {"link": "https://a.example.com", "message": 5}}
                )
            },
        ),
        (
            "huge message",
            {
                "object_story_spec": json.dumps(
                    {
                        "page_id": "400000000000001",
                        "link_data": {"link": "https://a.example.com", "message": "x" * 200000},
                    }
                )
            },
        ),
        ("huge name", {"name": "n" * 100000}),
        ("page_id an object", {"object_story_spec": json.dumps({"page_id": {"a": 1}, "link_data": {}})}),
        (
            "two kinds",
            {"object_story_spec": json.dumps({"page_id": "400000000000001", "link_data": {}, "photo_data": {}})},
        ),
        ("unknown spec key", {"object_story_spec": json.dumps({"page_id": "400000000000001", "zzz": 1})}),
        (
            "cards not a list",
            {
                "object_story_spec": json.dumps(
                    {
                        "page_id": "400000000000001",
                        "link_data": {"link": "https://a.example.com", "child_attachments": "abc"},
                    }
                )
            },
        ),
        (
            "cta a string",
            {
                "object_story_spec": json.dumps(
                    {
                        "page_id": "400000000000001",
                        "link_data": {"link": "https://a.example.com", "call_to_action": "SHOP"},
                    }
                )
            },
        ),
        (
            "unicode link",
            {
                "object_story_spec": json.dumps(
                    {"page_id": "400000000000001", "link_data": {"link": "https://例え.テスト/ü", "image_hash": "💥"}}
                )
            },
        ),
        ("url_tags a dict", {"url_tags": json.dumps({"a": 1})}),
    ],
)
async def test_malformed_creatives(api, sandbox, label, body):
    answer = await api.post(f"{USD}/adcreatives", body)
    assert answer.status == 400 and answer.error["code"] == 100, (label, answer.body)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "adset_id": ["1"], "creative": "{}"},
        {"name": "x", "adset_id": "120211000000000001", "creative": json.dumps({"creative_id": {"x": 1}})},
        {"name": "x", "adset_id": "120211000000000001", "creative": "\u0000\u2028"},
        {"name": "x" * 5000, "adset_id": "120211000000000001"},
        {
            "name": "x",
            "adset_id": "120211000000000001",
            "creative": json.dumps({"creative_id": "1"}),
            "tracking_specs": "not a list",
        },
        {"name": "x", "status": ["ACTIVE"]},
    ],
)
async def test_malformed_ads(api, body):
    answer = await api.post(f"{USD}/ads", body)
    assert answer.status == 400 and answer.error["code"] == 100, answer.body


async def test_graph_client_errors(graph, world):
    from fb_utils import FacebookError

    with pytest.raises(FacebookError) as caught:
        await graph.post(
            f"{USD}/adcreatives",
            enc(
                {
                    "object_story_spec": {
                        "page_id": world["page"],
                        "link_data": {"link": "https://a.example.com", "child_attachments": cards(11, world["image"])},
                    },
                    "degrees_of_freedom_spec": DOF,
                }
            ),
        )
    assert (caught.value.code, caught.value.error_subcode, caught.value.blame_field) == (
        100,
        1443050,
        "object_story_spec",
    )
    created = await graph.post(
        f"{USD}/ads",
        enc(
            {
                "name": "Client ad",
                "adset_id": world["adset"],
                "creative": {"creative_id": world["creative"]},
                "status": "PAUSED",
            }
        ),
    )
    assert (await graph.get(created["id"], {"fields": "effective_status"}))["effective_status"] == "PENDING_REVIEW"


async def test_batch_creates_creative_and_ad(api, world):
    spec = json.dumps(link_spec(world["page"], world["image"]))
    batch = [
        {
            "method": "POST",
            "relative_url": f"{USD}/adcreatives",
            "name": "c",
            "body": f"name=Batch&object_story_spec={spec}&degrees_of_freedom_spec={json.dumps(DOF)}",
        },
        {
            "method": "POST",
            "relative_url": f"{USD}/ads",
            "depends_on": "c",
            "body": f'name=Batch ad&adset_id={world["adset"]}&creative={{"creative_id":"{{result=c:$.id}}"}}',
        },
    ]
    answer = await api.post("", {"batch": json.dumps(batch)})
    assert answer.status == 200, answer.body
    last = answer.body[-1]
    assert last["code"] == 200 and "id" in json.loads(last["body"]), answer.body


# ---- the official SDK, unchanged but for its base URL


async def test_official_sdk_creatives_ads_previews(sandbox, demo_token, api, world):
    from facebook_business.adobjects.ad import Ad
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.adcreative import AdCreative
    from facebook_business.adobjects.adpreview import AdPreview
    from facebook_business.api import FacebookAdsApi
    from facebook_business.exceptions import FacebookRequestError

    def drive() -> dict:
        sdk = FacebookAdsApi.init(
            demo_token["app_id"], demo_token["app_secret"], demo_token["access_token"], api_version="v26.0"
        )
        sdk._session.GRAPH = sandbox.url
        account = AdAccount(USD)
        creative = account.create_ad_creative(
            params={
                AdCreative.Field.name: "SDK creative",
                AdCreative.Field.object_story_spec: link_spec(world["page"], world["image"]),
                AdCreative.Field.degrees_of_freedom_spec: DOF,
            }
        )
        read_creative = AdCreative(creative["id"]).api_get(
            fields=[AdCreative.Field.name, AdCreative.Field.call_to_action_type]
        )
        ad = account.create_ad(
            params={
                Ad.Field.name: "SDK ad",
                Ad.Field.adset_id: world["adset"],
                Ad.Field.creative: {"creative_id": creative["id"]},
                Ad.Field.status: Ad.Status.paused,
            }
        )
        read_ad = Ad(ad["id"]).api_get(fields=[Ad.Field.name, Ad.Field.effective_status, Ad.Field.creative])
        previews = Ad(ad["id"]).get_previews(params={"ad_format": AdPreview.AdFormat.instagram_story})
        listed = [a["id"] for a in account.get_ads(fields=[Ad.Field.name])]
        copy = Ad(ad["id"]).create_copy(params={"status_option": "PAUSED"})
        try:
            account.create_ad_creative(
                params={
                    AdCreative.Field.object_story_spec: {"page_id": world["page"]},
                    AdCreative.Field.degrees_of_freedom_spec: DOF,
                }
            )
            error = None
        except FacebookRequestError as exc:
            error = exc
        Ad(ad["id"]).api_delete()
        return {
            "creative": read_creative,
            "ad": read_ad,
            "previews": previews,
            "listed": listed,
            "copy": copy,
            "error": error,
            "ad_id": ad["id"],
        }

    out = await asyncio.to_thread(drive)
    assert out["creative"]["name"] == "SDK creative" and out["creative"]["call_to_action_type"] == "SHOP_NOW"
    assert out["ad"]["name"] == "SDK ad" and out["ad"]["effective_status"] == "PENDING_REVIEW"
    assert out["ad_id"] in out["listed"] and out["copy"]["copied_ad_id"]
    src, w, h = iframe_parts(out["previews"][0]["body"])
    assert (w, h) == (320, 570) and (await fetch(src))[0] == 200
    assert out["error"].api_error_code() == 100 and out["error"].api_blame_field_specs() == [["object_story_spec"]]
    assert (await api.get(out["ad_id"], fields="status")).body["status"] == "DELETED"

"""Ads ops and the one-call launch (launch_campaign, resume_launch, rollback_launch) end to end over the sandbox:
review states, links read back, idempotence, a fault at each step with resume and rollback, lost answers,
validation before any write, ACTIVE through one confirmation, Instagram placements, and the launches store."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

import fb_creative as launch
from fb_utils import ValidationError

US = {"geo_locations": {"countries": ["US"]}}
LINK = "https://example.com/summer"


def png_bytes(width: int = 600, height: int = 600, shade: int = 0x40) -> bytes:
    raw = b"".join(b"\x00" + bytes([shade, 0x80, 0xC0]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def image_file(tmp_path: Path, name: str, shade: int = 0x40) -> str:
    path = tmp_path / name
    path.write_bytes(png_bytes(shade=shade))
    return str(path)


def video_file(tmp_path: Path, name: str = "promo.mp4", size: int = 6000) -> str:
    path = tmp_path / name
    with open(path, "wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
        handle.truncate(size)
    return str(path)


async def _objects(sandbox, type_: str) -> list[dict]:
    return (await sandbox.control("GET", f"objects?type={type_}"))["data"]


async def _live(sandbox, type_: str, name_prefix: str) -> list[dict]:
    """Objects of a type whose name starts with the prefix and that are not deleted."""
    return [
        o
        for o in await _objects(sandbox, type_)
        if str(o.get("name", "")).startswith(name_prefix) and o.get("status") != "DELETED"
    ]


async def _posts(sandbox) -> list[str]:
    return [route for route in (await sandbox.stats())["by_route"] if not route.startswith("GET")]


@pytest.fixture
async def fast_video(sandbox):
    await sandbox.control("POST", "config", {"video_processing_seconds": 0})


def launch_args(tmp_path: Path, name: str = "Summer", **overrides) -> dict:
    args = {
        "campaign": {"name": name, "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000},
        "adset": {"targeting": US},
        "creatives": [
            {
                "kind": "image",
                "image": image_file(tmp_path, f"{name}.png"),
                "message": "Summer sale: 30% off",
                "link": LINK,
                "headline": "30% off",
                "call_to_action": "SHOP_NOW",
            }
        ],
    }
    args.update(overrides)
    return args


# -- ads ops ----------------------------------------------------------------------------------------------------


async def _campaign_adset(facebook, name: str = "Ads") -> tuple[str, str]:
    campaign = await facebook.call("create_campaign", {"name": f"{name} C", "objective": "OUTCOME_TRAFFIC"})
    assert campaign.ok, campaign.text
    adset = await facebook.call(
        "create_adset",
        {"campaign_id": campaign.data["id"], "name": f"{name} AS", "targeting": US, "daily_budget": 2000},
    )
    assert adset.ok, adset.text
    return campaign.data["id"], adset.data["id"]


async def _creative(facebook, tmp_path: Path, name: str, message: str) -> str:
    created = await facebook.call(
        "create_creative",
        {
            "kind": "image",
            "name": name,
            "image": image_file(tmp_path, f"{name}.png"),
            "message": message,
            "link": LINK,
            "page_id": "400000000000001",
        },
    )
    assert created.ok, created.text
    return created.data["id"]


async def test_ads_end_to_end_review_states_and_disapproval(facebook, sandbox, tmp_path):
    campaign_id, adset_id = await _campaign_adset(facebook)
    good = await _creative(facebook, tmp_path, "Good", "Fresh shoes for summer")
    bad = await _creative(facebook, tmp_path, "Bad", "Guaranteed income from home, get rich quick!")
    created = await facebook.call("create_ad", {"adset_id": adset_id, "creative_id": good, "name": "Good ad"})
    assert created.ok, created.text
    assert "PAUSED" in created.text and "review" in created.text
    refused = await facebook.call("create_ad", {"adset_id": adset_id, "creative_id": bad, "name": "Bad ad"})
    assert refused.ok, refused.text

    shown = await facebook.call("get_ad", {"ad_id": created.data["id"]})
    assert shown.ok and shown.data["ad"]["effective_status"] == "PENDING_REVIEW"
    assert "in review, usually minutes" in shown.text
    await sandbox.control("POST", "clock", {"advance": 3600})
    bad_shown = await facebook.call("get_ad", {"ad_id": refused.data["id"]})
    assert bad_shown.data["ad"]["effective_status"] == "DISAPPROVED"
    assert bad_shown.data["reasons"] and any("guarantee" in r.lower() for r in bad_shown.data["reasons"])
    assert "edit the text and update the creative" in bad_shown.text
    good_shown = await facebook.call("get_ad", {"ad_id": created.data["id"]})
    assert good_shown.data["ad"]["effective_status"] != "PENDING_REVIEW" and "Reasons" not in good_shown.text

    # The fix named in the answer works: a new creative sends the ad back to review.
    fixed = await facebook.call("update_ad", {"ad_id": refused.data["id"], "creative_id": good})
    assert fixed.ok, fixed.text
    assert "review again" in fixed.text
    assert (await facebook.call("get_ad", {"ad_id": refused.data["id"]})).data["ad"][
        "effective_status"
    ] == "PENDING_REVIEW"

    for where in ({"adset_id": adset_id}, {"campaign_id": campaign_id}, {}):
        listed = await facebook.call("list_ads", where)
        assert listed.ok, listed.text
        assert {created.data["id"], refused.data["id"]} <= {a["id"] for a in listed.data["ads"]}
    page = await facebook.call("list_ads", {"adset_id": adset_id, "limit": 1})
    assert len(page.data["ads"]) == 1 and page.data["next_after"] and "More: /list_ads" in page.text
    second = await facebook.call("list_ads", {"adset_id": adset_id, "limit": 1, "after": page.data["next_after"]})
    assert second.data["ads"][0]["id"] != page.data["ads"][0]["id"]
    disapproved = await facebook.call("list_ads", {"adset_id": adset_id, "status": ["PENDING_REVIEW"]})
    assert [a["id"] for a in disapproved.data["ads"]] == [refused.data["id"]]


async def test_ad_status_ops_gate_duplicate_and_delete(facebook, sandbox, tmp_path):
    _, adset_id = await _campaign_adset(facebook, "Status")
    creative = await _creative(facebook, tmp_path, "Status creative", "Hello")
    ad_id = (
        await facebook.call("create_ad", {"adset_id": adset_id, "creative_id": creative, "name": "Status ad"})
    ).data["id"]

    held = await facebook.call("resume_ad", {"ad_id": ad_id})
    assert not held.ok and held.data["error"] == "confirmation_required"
    assert (await facebook.call("get_ad", {"ad_id": ad_id})).data["ad"]["status"] == "PAUSED"
    resumed = await facebook.call("resume_ad", {"ad_id": ad_id, "confirm": held.data["confirmation_id"]})
    assert resumed.ok and "PAUSED → ACTIVE" in resumed.text
    paused = await facebook.call("pause_ad", {"ad_id": ad_id})
    assert paused.ok and (await facebook.call("get_ad", {"ad_id": ad_id})).data["ad"]["status"] == "PAUSED"
    renamed = await facebook.call("update_ad", {"ad_id": ad_id, "name": "Renamed ad"})
    assert renamed.ok and (await facebook.call("get_ad", {"ad_id": ad_id})).data["ad"]["name"] == "Renamed ad"
    same = await facebook.call("pause_ad", {"ad_id": ad_id})
    assert same.ok and "nothing to change" in same.text

    copy = await facebook.call("duplicate_ad", {"ad_id": ad_id, "rename_suffix": " (2)"})
    assert copy.ok, copy.text
    copied = (await facebook.call("get_ad", {"ad_id": copy.data["ad_id"]})).data["ad"]
    assert copied["name"] == "Renamed ad (2)" and copied["status"] == "PAUSED" and copied["adset_id"] == adset_id
    assert copied["creative"]["id"] == creative

    archived = await facebook.call("archive_ad", {"ad_id": copy.data["ad_id"]})
    assert archived.ok
    refused = await facebook.call("resume_ad", {"ad_id": copy.data["ad_id"]})
    assert not refused.ok and "archived" in refused.text
    deleted = await facebook.call("delete_ad", {"ad_id": ad_id})
    assert deleted.ok, deleted.text
    assert [o["status"] for o in await _objects(sandbox, "ad") if o["id"] == ad_id] == ["DELETED"]


async def test_create_ad_checks_a1_before_sending(facebook, sandbox, tmp_path, demo_accounts):
    _, adset_id = await _campaign_adset(facebook, "A1")
    creative = await _creative(facebook, tmp_path, "A1 creative", "Hello")
    jpy_creative = await facebook.call(
        "create_creative",
        {
            "kind": "image",
            "name": "Yen",
            "image": image_file(tmp_path, "yen.png"),
            "link": LINK,
            "page_id": "400000000000001",
            "ad_account_id": demo_accounts["JPY"],
        },
    )
    assert jpy_creative.ok, jpy_creative.text
    await facebook.call("archive_adset", {"adset_id": adset_id})
    await sandbox.control("POST", "stats/reset")
    archived = await facebook.call("create_ad", {"adset_id": adset_id, "creative_id": creative, "name": "No"})
    assert not archived.ok and archived.data["error_subcode"] == launch.SUBCODE_AD_ADSET and "archived" in archived.text
    _, live_adset = await _campaign_adset(facebook, "A1b")
    await sandbox.control("POST", "stats/reset")
    foreign = await facebook.call(
        "create_ad", {"adset_id": live_adset, "creative_id": jpy_creative.data["id"], "name": "No"}
    )
    assert (
        not foreign.ok
        and foreign.data["error_subcode"] == launch.SUBCODE_AD_CREATIVE
        and foreign.data["blame_field"] == "creative"
    )
    assert await _posts(sandbox) == []


def test_review_text_explains_each_state():
    assert "usually minutes" in launch.review_text({"effective_status": "PENDING_REVIEW"})
    refused = {
        "effective_status": "DISAPPROVED",
        "ad_review_feedback": {"global": {"Unrealistic Outcomes": "No guaranteed income."}},
        "issues_info": [{"error_summary": "Ad not approved", "error_message": "Text breaks policy"}],
    }
    text = launch.review_text(refused)
    assert "Unrealistic Outcomes: No guaranteed income." in text and "Ad not approved: Text breaks policy" in text
    assert "edit the text and update the creative" in text
    assert "resume_adset" in launch.review_text({"effective_status": "ADSET_PAUSED"})


# -- launch: the happy path -------------------------------------------------------------------------------------


async def test_launch_image_video_carousel_all_paused_and_linked(facebook, sandbox, tmp_path, fast_video):
    args = launch_args(tmp_path, "Trio")
    args["creatives"] += [
        {
            "kind": "video",
            "name": "Trio video",
            "video": video_file(tmp_path),
            "thumbnail": image_file(tmp_path, "thumb.png", 0x10),
            "message": "Watch",
            "link": LINK,
            "headline": "See it move",
        },
        {
            "kind": "carousel",
            "name": "Trio carousel",
            "message": "Swipe",
            "link": LINK,
            "cards": [
                {
                    "image": image_file(tmp_path, f"card{i}.png", 0x20 + i),
                    "link": f"{LINK}/{i}",
                    "headline": f"Card {i}",
                }
                for i in range(3)
            ],
        },
    ]
    result = await facebook.call("launch_campaign", args)
    assert result.ok, result.text
    data = result.data
    assert len(data["creative_ids"]) == 3 and len(data["ad_ids"]) == 3
    for word in (
        "✓ campaign Trio",
        "✓ ad set",
        "✓ image",
        "✓ video",
        "% uploaded",
        "✓ creative Trio video",
        "✓ ad Trio carousel",
    ):
        assert word in result.text
    assert "Everything is PAUSED" in result.text

    campaign = await facebook.call("get_campaign", {"campaign_id": data["campaign_id"]})
    assert campaign.data["campaign"]["status"] == "PAUSED" and campaign.data["campaign"]["daily_budget"] == "5000"
    adset = (await facebook.call("get_adset", {"adset_id": data["adset_id"]})).data["adset"]
    assert adset["status"] == "PAUSED" and adset["campaign_id"] == data["campaign_id"]
    creatives = {c["id"]: c for c in await _objects(sandbox, "adcreative")}
    images = {i["hash"] for i in await _objects(sandbox, "adimage")}
    for ad_id, creative_id in zip(data["ad_ids"], data["creative_ids"]):
        ad = (await facebook.call("get_ad", {"ad_id": ad_id})).data["ad"]
        assert ad["status"] == "PAUSED" and ad["adset_id"] == data["adset_id"] and ad["creative"]["id"] == creative_id
        assert ad["campaign_id"] == data["campaign_id"]
    image_story = creatives[data["creative_ids"][0]]["object_story_spec"]
    assert image_story["link_data"]["image_hash"] in images and image_story["page_id"] == "400000000000001"
    video_story = creatives[data["creative_ids"][1]]["object_story_spec"]["video_data"]
    assert (
        video_story["video_id"] == data["uploads"]["video:1"]
        and video_story["image_hash"] == data["uploads"]["image:1"]
    )
    cards = creatives[data["creative_ids"][2]]["object_story_spec"]["link_data"]["child_attachments"]
    assert [c["link"] for c in cards] == [f"{LINK}/{i}" for i in range(3)] and all(
        c["image_hash"] in images for c in cards
    )

    entry = (await facebook.store.list_audit(facebook.workspace.id, op="launch_campaign"))[0]
    assert (
        entry.outcome == "ok"
        and set(data["ad_ids"]) <= set(entry.object_ids)
        and data["campaign_id"] in entry.object_ids
    )
    shown = await facebook.call("get_launch", {"launch_id": data["launch_id"]})
    assert shown.ok and shown.data["status"] == "done" and list(shown.data["steps"])[0] == "campaign"


async def test_the_same_launch_twice_creates_nothing_twice(facebook, sandbox, tmp_path):
    args = launch_args(tmp_path, "Twice")
    first = await facebook.call("launch_campaign", args)
    assert first.ok, first.text
    await sandbox.control("POST", "stats/reset")
    again = await facebook.call("launch_campaign", args)
    assert again.ok and again.data["already_launched"] and "nothing was created twice" in again.text
    assert again.data["campaign_id"] == first.data["campaign_id"] and again.data["ad_ids"] == first.data["ad_ids"]
    assert await _posts(sandbox) == []
    assert len(await _live(sandbox, "campaign", "Twice")) == 1 and len(await _live(sandbox, "ad", "Twice")) == 1


async def test_same_image_twice_is_uploaded_once(facebook, sandbox, tmp_path):
    args = launch_args(tmp_path, "Shared")
    args["creatives"].append({**args["creatives"][0], "name": "Shared again", "message": "Second text"})
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("launch_campaign", args)
    assert result.ok, result.text
    assert (await sandbox.stats())["by_route"]["POST act_x/adimages"] == 1 and len(result.data["ad_ids"]) == 2


# -- launch: a failure at each step, then resume or rollback -----------------------------------------------------

STEP_FAULTS = [
    ("campaign", r"^act_\d+/campaigns$"),
    ("adset", r"^act_\d+/adsets$"),
    ("image", r"^act_\d+/adimages$"),
    ("creative", r"^act_\d+/adcreatives$"),
    ("ad", r"^act_\d+/ads$"),
]
KINDS = (("campaign", "campaign"), ("adset", "adset"), ("adcreative", "creative"), ("ad", "ad"))


async def _launch_failing_at(facebook, sandbox, tmp_path, name: str, path: str) -> dict:
    await sandbox.fault(
        kind="error",
        method="POST",
        path=path,
        code=100,
        message="(#100) Something is wrong with this object",
        error_user_title="Injected",
        error_user_msg="The sandbox refused this step.",
    )
    result = await facebook.call("launch_campaign", launch_args(tmp_path, name))
    assert not result.ok
    return result


@pytest.mark.parametrize("step, path", STEP_FAULTS)
async def test_fault_at_each_step_then_resume_finishes_without_duplicates(facebook, sandbox, tmp_path, step, path):
    name = f"Resume {step}"
    failed = await _launch_failing_at(facebook, sandbox, tmp_path, name, path)
    assert failed.data["failed_step"].split(":")[0] == step
    assert failed.text.startswith("ERROR facebook: launch #") and "The sandbox refused this step" in failed.text
    # the person reads the commands to type; the LLM reads the calls
    assert "/resume_launch launch_id=" in failed.text and "/rollback_launch launch_id=" in failed.text
    assert "resume_launch with launch_id=" in failed.llm_text and "rollback_launch with launch_id=" in failed.llm_text
    assert "Created so far" in failed.text
    launch_id = failed.data["launch_id"]
    assert [n["op"] for n in failed.data["next"]] == ["resume_launch", "rollback_launch"]
    entry = (await facebook.store.list_audit(facebook.workspace.id, op="launch_campaign"))[0]
    assert entry.outcome == "error" and set(failed.data["object_ids"]) <= set(entry.object_ids)

    again = await facebook.call("launch_campaign", launch_args(tmp_path, name))
    assert not again.ok and again.data["already_launched"] and f"/resume_launch launch_id={launch_id}" in again.text

    resumed = await facebook.call("resume_launch", {"launch_id": launch_id})
    assert resumed.ok, resumed.text
    assert "done before" in resumed.text or step == "campaign"
    for type_, _ in KINDS:
        assert len(await _live(sandbox, type_, name)) == 1, type_
    ad = (await facebook.call("get_ad", {"ad_id": resumed.data["ad_ids"][0]})).data["ad"]
    assert ad["adset_id"] == resumed.data["adset_id"] and ad["campaign_id"] == resumed.data["campaign_id"]
    finished = await facebook.call("resume_launch", {"launch_id": launch_id})
    assert finished.ok and finished.data["already_launched"]


async def test_fault_at_the_video_upload_step_then_resume(facebook, sandbox, tmp_path, fast_video):
    name = "Clip"
    args = launch_args(tmp_path, name)
    args["creatives"] = [
        {
            "kind": "video",
            "name": "Clip video",
            "video": video_file(tmp_path, "clip.mp4"),
            "thumbnail": image_file(tmp_path, "clip.png", 0x20),
            "message": "Watch",
            "link": LINK,
        }
    ]
    await sandbox.fault(
        kind="error", method="POST", path=r"^act_\d+/advideos$", code=1, message="An unknown error occurred", count=10
    )
    failed = await facebook.call("launch_campaign", args)
    assert not failed.ok and failed.data["failed_step"].startswith("video"), failed.text
    await sandbox.control("DELETE", "faults")
    resumed = await facebook.call("resume_launch", {"launch_id": failed.data["launch_id"]})
    assert resumed.ok, resumed.text
    for type_, _ in KINDS:
        assert len(await _live(sandbox, type_, name)) == 1, type_


async def test_crash_before_recording_a_step_is_recovered_by_its_tag(facebook, sandbox, tmp_path):
    """The process died after Facebook made the campaign and ad set but before the journal said so: resume finds them."""
    name = "Crash"
    failed = await _launch_failing_at(facebook, sandbox, tmp_path, name, r"^act_\d+/adcreatives$")
    launch_id = failed.data["launch_id"]
    for step in ("campaign", "adset"):  # forget both, as a crash between the create and the journal would
        await facebook.store.record_launch_step(
            facebook.workspace.id, launch_id, step, status="failed", error={"message": "crash"}
        )
    resumed = await facebook.call("resume_launch", {"launch_id": launch_id})
    assert resumed.ok, resumed.text
    assert resumed.text.count("recovered") >= 2
    for type_, _ in KINDS:
        assert len(await _live(sandbox, type_, name)) == 1, type_


async def test_create_with_the_same_client_tag_twice_makes_one_object(facebook, sandbox):
    args = {"name": "Tagged", "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000, "client_tag": "order-1234"}
    first = await facebook.call("create_campaign", args)
    second = await facebook.call("create_campaign", args)
    assert first.ok and second.ok, (first.text, second.text)
    assert first.data["id"] == second.data["id"] and second.data["recovered"]
    assert len(await _live(sandbox, "campaign", "Tagged")) == 1
    adset = {"campaign_id": first.data["id"], "name": "Tagged set", "targeting": US, "client_tag": "order-1234-set"}
    one, two = await facebook.call("create_adset", adset), await facebook.call("create_adset", adset)
    assert one.ok and two.ok and one.data["id"] == two.data["id"]


@pytest.mark.parametrize("step, path", STEP_FAULTS)
async def test_fault_at_each_step_then_rollback_leaves_no_orphans(facebook, sandbox, tmp_path, step, path):
    name = f"Rollback {step}"
    failed = await _launch_failing_at(facebook, sandbox, tmp_path, name, path)
    launch_id = failed.data["launch_id"]
    rolled = await facebook.call("rollback_launch", {"launch_id": launch_id})
    assert rolled.ok, rolled.text
    for type_, _ in KINDS:
        assert await _live(sandbox, type_, name) == [], type_
    if step in ("creative", "ad"):
        assert "Uploaded media stay" in rolled.text
    assert set(rolled.data["deleted"]) == set(failed.data["object_ids"])
    twice = await facebook.call("rollback_launch", {"launch_id": launch_id})
    assert twice.ok and "already rolled back" in twice.text
    assert (await facebook.call("get_launch", {"launch_id": launch_id})).data["status"] == "rolled_back"
    not_resumable = await facebook.call("resume_launch", {"launch_id": launch_id})
    assert not not_resumable.ok and "rolled back" in not_resumable.text


async def test_rollback_deletes_newest_first_and_a_relaunch_starts_afresh(facebook, sandbox, tmp_path):
    args = launch_args(tmp_path, "Order")
    done = await facebook.call("launch_campaign", args)
    assert done.ok, done.text
    rolled = await facebook.call("rollback_launch", {"launch_id": done.data["launch_id"]})
    assert rolled.ok
    deleted = rolled.data["deleted"]
    assert deleted == [
        done.data["ad_ids"][0],
        done.data["creative_ids"][0],
        done.data["adset_id"],
        done.data["campaign_id"],
    ]
    again = await facebook.call("launch_campaign", args)
    assert again.ok, again.text
    assert again.data["launch_id"] == done.data["launch_id"] and again.data["campaign_id"] != done.data["campaign_id"]
    assert len(await _live(sandbox, "campaign", "Order")) == 1


@pytest.mark.parametrize(
    "path, type_, kind",
    [
        (r"^act_\d+/ads$", "ad", "http_500"),
        (r"^act_\d+/ads$", "ad", "drop"),
        (r"^act_\d+/campaigns$", "campaign", "http_500"),
        (r"^act_\d+/adsets$", "adset", "http_500"),
        (r"^act_\d+/adcreatives$", "adcreative", "http_500"),
    ],
)
async def test_a_lost_create_answer_is_recovered_not_duplicated(facebook, sandbox, tmp_path, path, type_, kind):
    await sandbox.fault(kind=kind, method="POST", path=path, when="after")
    name = f"Lost {type_} {kind}"
    result = await facebook.call("launch_campaign", launch_args(tmp_path, name))
    assert result.ok, result.text
    assert "recovered a lost answer" in result.text
    assert len(await _live(sandbox, type_, name)) == 1


# -- validation before any write -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda a, p: a["adset"].update(targeting={"geo_locations": {"countries": ["US"]}, "age_min": 10}), "age_min"),
        (lambda a, p: a["adset"].update(targeting={"age_min": 20}), "location"),
        (lambda a, p: a["campaign"].update(daily_budget=50), "minimum"),
        (
            lambda a, p: a["creatives"].append(
                {"kind": "carousel", "link": LINK, "cards": [{"image": a["creatives"][0]["image"], "link": LINK}]}
            ),
            "2 to 10",
        ),
        (lambda a, p: a["creatives"][0].update(image=str(p / "missing.png")), "missing.png"),
        (lambda a, p: a["creatives"][0].update(link="example.com/no-scheme"), "http"),
        (lambda a, p: a["creatives"][0].update(image="http://169.254.169.254/latest/meta-data.png"), "169.254.169.254"),
        (
            lambda a, p: a["creatives"].append({"kind": "video", "video": str(p / "nothing.mp4"), "link": LINK}),
            "nothing.mp4",
        ),
    ],
)
async def test_a_bad_step_stops_the_launch_before_any_write(facebook, sandbox, tmp_path, change, words):
    args = launch_args(tmp_path, "Invalid")
    change(args, tmp_path)
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("launch_campaign", args)
    assert not result.ok and result.data["error"] == "validation", result.text
    assert words in result.text
    assert await _posts(sandbox) == []
    assert await facebook.store.list_launches(facebook.workspace.id) == []


async def test_dry_run_lists_every_request_and_sends_none(facebook, sandbox, tmp_path):
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("launch_campaign", launch_args(tmp_path, "Dry"), dry_run=True)
    assert result.ok, result.text
    paths = [r["path"] for r in result.data["requests"]]
    assert [p.split("/")[-1] for p in paths] == ["campaigns", "adsets", "adimages", "adcreatives", "ads"]
    assert "campaign budget $50.00/day" in result.text and "1 upload(s)" in result.text
    assert await _posts(sandbox) == []


# -- ACTIVE through one confirmation ---------------------------------------------------------------------------


async def test_paused_launch_asked_again_active_switches_it_on_and_creates_nothing(facebook, sandbox, tmp_path):
    first = await facebook.call("launch_campaign", launch_args(tmp_path, "Later"))
    assert first.ok and "launch the same request again with status ACTIVE" in first.text
    counts = {t: len(await _live(sandbox, t, "Later")) for t in ("campaign", "adset", "ad")}
    held = await facebook.call("launch_campaign", launch_args(tmp_path, "Later", status="ACTIVE"))
    assert not held.ok and held.data["error"] == "confirmation_required"
    assert f"activate launch #{first.data['launch_id']}" in held.text
    done = await facebook.call("confirm", {"confirm": held.data["confirmation_id"]})
    assert done.ok, done.text
    assert done.data["campaign_id"] == first.data["campaign_id"] and done.data["ad_ids"] == first.data["ad_ids"]
    assert {t: len(await _live(sandbox, t, "Later")) for t in ("campaign", "adset", "ad")} == counts
    assert (await facebook.call("get_campaign", {"campaign_id": first.data["campaign_id"]})).data["campaign"][
        "status"
    ] == "ACTIVE"
    assert (await facebook.call("get_ad", {"ad_id": first.data["ad_ids"][0]})).data["ad"]["status"] == "ACTIVE"
    again = await facebook.call("launch_campaign", launch_args(tmp_path, "Later", status="ACTIVE"))
    assert again.ok and again.data.get("already_launched"), again.text


async def test_active_launch_is_one_confirmation_and_activates_last(facebook, sandbox, tmp_path):
    await sandbox.control("POST", "stats/reset")
    held = await facebook.call("launch_campaign", launch_args(tmp_path, "Live", status="ACTIVE"))
    assert not held.ok and held.data["error"] == "confirmation_required"
    preview = held.data["preview"]
    assert "campaign Live" in preview and "ACTIVE" in preview and "$50.00" in held.text
    assert {c["object_type"] for c in held.data["changes"]} == {"campaign", "adset", "ad"}
    assert await _posts(sandbox) == []
    done = await facebook.call("confirm", {"confirm": held.data["confirmation_id"]})
    assert done.ok, done.text
    assert "Everything is ACTIVE" in done.text
    record = await facebook.store.get_launch(facebook.workspace.id, done.data["launch_id"])
    steps = list(record.steps)
    assert steps[-1] == "activate:campaign" and steps.index("activate:ad:0") > steps.index("ad:0")
    assert all(not s.startswith("activate") for s in steps[: steps.index("activate:ad:0")])
    assert (await facebook.call("get_campaign", {"campaign_id": done.data["campaign_id"]})).data["campaign"][
        "status"
    ] == "ACTIVE"
    assert (await facebook.call("get_adset", {"adset_id": done.data["adset_id"]})).data["adset"]["status"] == "ACTIVE"
    assert (await facebook.call("get_ad", {"ad_id": done.data["ad_ids"][0]})).data["ad"]["status"] == "ACTIVE"


async def test_active_launch_failing_part_way_has_spent_nothing(facebook, sandbox, tmp_path):
    await sandbox.fault(kind="error", method="POST", path=r"^act_\d+/ads$", code=100, message="(#100) No")
    held = await facebook.call("launch_campaign", launch_args(tmp_path, "Half", status="ACTIVE"))
    failed = await facebook.call("confirm", {"confirm": held.data["confirmation_id"]})
    assert not failed.ok and failed.data["failed_step"] == "ad:0"
    assert [o["status"] for o in await _live(sandbox, "campaign", "Half")] == ["PAUSED"]
    assert [o["status"] for o in await _live(sandbox, "adset", "Half")] == ["PAUSED"]
    held_again = await facebook.call("resume_launch", {"launch_id": failed.data["launch_id"]})
    assert not held_again.ok and held_again.data["error"] == "confirmation_required"
    resumed = await facebook.call("confirm", {"confirm": held_again.data["confirmation_id"]})
    assert resumed.ok, resumed.text
    assert [o["status"] for o in await _live(sandbox, "campaign", "Half")] == ["ACTIVE"]


# -- Instagram and the page ------------------------------------------------------------------------------------


async def test_instagram_placements_use_the_selected_account(facebook, sandbox, graph, tmp_path):
    page = (await graph.get_all("me/accounts", {"fields": "id,instagram_business_account"}))[0]
    await facebook.select("page", page["id"])
    await facebook.select("instagram_account", page["instagram_business_account"]["id"])
    result = await facebook.call("launch_campaign", launch_args(tmp_path, "Insta"))
    assert result.ok, result.text
    creative = next(c for c in await _objects(sandbox, "adcreative") if c["id"] == result.data["creative_ids"][0])
    assert creative["object_story_spec"]["instagram_user_id"] == page["instagram_business_account"]["id"]
    adset = (await facebook.call("get_adset", {"adset_id": result.data["adset_id"]})).data["adset"]
    assert "instagram" in adset["targeting"]["publisher_platforms"]


async def test_without_instagram_account_instagram_is_dropped_and_said(facebook, sandbox, tmp_path):
    result = await facebook.call("launch_campaign", launch_args(tmp_path, "NoInsta"))
    assert result.ok, result.text
    assert "without Instagram: no Instagram account is selected" in result.text
    adset = (await facebook.call("get_adset", {"adset_id": result.data["adset_id"]})).data["adset"]
    assert "instagram" not in adset["targeting"]["publisher_platforms"]
    automatic = launch_args(tmp_path, "NoInstaAuto")
    automatic["adset"]["placements"] = "automatic"
    auto = await facebook.call("launch_campaign", automatic)
    assert auto.ok and "Advantage+ placements would include Instagram" in auto.text
    only = launch_args(tmp_path, "OnlyInsta")
    only["adset"] = {"targeting": {**US, "publisher_platforms": ["instagram"]}, "placements": None}
    refused = await facebook.call("launch_campaign", only)
    assert not refused.ok and "/use instagram" in refused.text


# -- the pieces ------------------------------------------------------------------------------------------------


def test_public_url_checks_need_no_fetch():
    assert launch.check_public_url("https://cdn.example.com/a.png", "image") == "https://cdn.example.com/a.png"
    for bad in (
        "ftp://example.com/a.png",
        "http://127.0.0.1/a.png",
        "http://10.0.0.5/a.png",
        "http://[::1]/a.png",
        "http://metadata.google.internal/x",
        "http://user:pw@example.com/a.png",
        "http://printer.local/a.png",
    ):
        with pytest.raises(ValidationError):
            launch.check_public_url(bad, "image")


def test_launch_key_and_step_tags_are_stable():
    key = launch.launch_key("act_1", {"b": 1, "a": [1, 2]}, ["f"])
    assert key == launch.launch_key("act_1", {"a": [1, 2], "b": 1}, ["f"]) and len(key) == 64
    assert key != launch.launch_key("act_1", {"a": [1, 2], "b": 1}, ["g"])
    assert launch.step_tag(key, "ad:0") == launch.step_tag(key, "ad:0") != launch.step_tag(key, "ad:1")


async def test_launches_in_the_store_are_per_workspace_and_restart_after_rollback(store):
    one = await store.ensure_workspace("one")
    two = await store.ensure_workspace("two")
    first = await store.start_launch(one.id, "k", {"campaign": {"name": "X"}, "access_token": "secret"})
    assert first.status == "running" and "access_token" not in first.request
    assert (await store.start_launch(one.id, "k", {"other": True})).id == first.id
    assert await store.get_launch(two.id, first.id) is None and await store.find_launch(two.id, "k") is None
    await store.record_launch_step(one.id, first.id, "campaign", status="done", object_id="1", data={"name": "X"})
    failed = await store.record_launch_step(one.id, first.id, "adset", status="failed", error={"message": "no"})
    assert failed.status == "failed" and list(failed.steps) == ["campaign", "adset"]
    await store.set_launch_status(one.id, first.id, "rolled_back")
    again = await store.start_launch(one.id, "k", {"campaign": {"name": "X"}})
    assert again.id == first.id and again.status == "running" and again.steps == {}


async def test_a_page_that_is_not_yours_stops_the_launch_before_anything_is_created(facebook, sandbox, tmp_path):
    await sandbox.control("POST", "stats/reset")
    for args in (
        launch_args(tmp_path, "Foreign page", page_id="400000000000099"),
        launch_args(tmp_path, "Foreign post", creatives=[{"kind": "page_post", "post_id": "400000000000099_7"}]),
    ):
        result = await facebook.call("launch_campaign", args)
        assert (
            not result.ok
            and "Nothing was created: page 400000000000099 is not a page you can advertise for" in result.text
        )
        assert result.data["code"] == 100 and result.data["error_subcode"] == 1443048, result.data  # rule C1
    assert await _posts(sandbox) == []

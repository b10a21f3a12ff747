"""Pixels, custom conversions, Conversions API events and the GTM export (fb_audience) against the sandbox."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from pathlib import Path

import pytest

from fb_audience import (
    STANDARD_EVENTS,
    CreateCustomConversionArgs,
    DeleteCustomConversionArgs,
    GtmExportArgs,
    ListCustomConversionsArgs,
    ListPixelsArgs,
    PixelStatsArgs,
    SendEventsArgs,
    create_custom_conversion,
    delete_custom_conversion,
    gtm_container,
    gtm_export,
    list_custom_conversions,
    list_pixels,
    normalize_user_data,
    pixel_stats,
    send_events,
)
from fb_utils import OpContext, ValidationError, configure_logging
from fi_facebook import REGISTRY
from testkit import sandbox_clock


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


UA = "Mozilla/5.0 (test)"


def event(n: int, name: str = "Purchase", at: float | None = None, **extra) -> dict:
    body = {
        "event_name": name,
        "event_id": f"ev-{n}",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {"em": f"Buyer{n}@Example.com ", "client_user_agent": UA, "client_ip_address": "203.0.113.7"},
        "custom_data": {"value": 10 + n % 7, "currency": "usd", "content_ids": [f"SKU-{n}"]},
    }
    if at is not None:
        body["event_time"] = int(at)
    body.update(extra)
    return body


# ---------------------------------------------------------------------------------------------------------------
# Pure: normalization and hashing
# ---------------------------------------------------------------------------------------------------------------


def test_user_data_normalized_and_hashed_like_hashlib():
    already = sha("someone@example.com")
    out = normalize_user_data(
        {
            "em": ["  John.Doe+Tag@Example.COM ", already.upper()],
            "ph": "+1 (650) 555-1234",
            "fn": "  Émilie ",
            "ln": "O'Brien",
            "db": "1990-01-31",
            "ge": "Female",
            "ct": "San Francisco 94",
            "st": "C.A.",
            "zp": "94025-1234",
            "country": "US",
            "external_id": "user-42",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": UA,
            "fbc": "fb.1.1554763741205.AbCdEfGh",
            "fbp": "fb.1.1558571054389.1098115397",
        }
    )
    assert out["em"] == [sha("john.doe+tag@example.com"), already]
    assert out["ph"] == [sha("16505551234")]
    assert out["fn"] == [sha("émilie")]
    assert out["ln"] == [sha("o'brien")]
    assert out["db"] == [sha("19900131")]
    assert out["ge"] == [sha("f")]
    assert out["ct"] == [sha("sanfrancisco")]
    assert out["st"] == [sha("ca")]
    assert out["zp"] == [sha("94025")]
    assert out["country"] == [sha("us")]
    # Not hashed: sent as they are.
    assert out["external_id"] == ["user-42"]
    assert out["client_ip_address"] == "203.0.113.7"
    assert out["client_user_agent"] == UA
    assert out["fbc"] == "fb.1.1554763741205.AbCdEfGh"
    assert out["fbp"] == "fb.1.1558571054389.1098115397"


def test_user_data_aliases_and_duplicates():
    out = normalize_user_data({"email": ["a@b.co", " A@B.CO"], "phone": "0044 20 7946 0958"})
    assert out["em"] == [sha("a@b.co")]
    assert out["ph"] == [sha("442079460958")]


@pytest.mark.parametrize(
    "field,value",
    [("em", "not-an-email"), ("ph", "0123"), ("country", "Atlantis"), ("db", "31/31/1990"), ("ge", "robot")],
)
def test_bad_user_data_refused_without_echoing_it(field, value):
    with pytest.raises(ValidationError) as caught:
        normalize_user_data({field: value, "client_user_agent": UA}, "events[3].user_data")
    text = caught.value.to_text()
    assert f"events[3].user_data.{field}" in text
    assert value not in text


def test_unknown_key_and_empty_user_data_refused():
    with pytest.raises(ValidationError, match="unknown key"):
        normalize_user_data({"shoe_size": "44"})
    with pytest.raises(ValidationError, match="no customer information"):
        normalize_user_data({"em": ""})


# ---------------------------------------------------------------------------------------------------------------
# Pure: the GTM container
# ---------------------------------------------------------------------------------------------------------------


def _check_container(container: dict, pixel_id: str, events: list[str]) -> None:
    assert container["exportFormatVersion"] == 2
    version = container["containerVersion"]
    tags, triggers, variables = version["tag"], version["trigger"], version["variable"]
    trigger_ids = {t["triggerId"] for t in triggers}
    assert len(trigger_ids) == len(triggers)
    assert len({t["tagId"] for t in tags}) == len(tags)
    tag_names = {t["name"] for t in tags}
    for tag in tags:
        assert tag["type"] == "html"
        assert tag["firingTriggerId"] and set(tag["firingTriggerId"]) <= trigger_ids
        for setup in tag.get("setupTag", []):
            assert setup["tagName"] in tag_names
    known = {v["name"] for v in variables} | {"_event"}  # _event: the built-in Event variable
    assert any(b["type"] == "EVENT" for b in version["builtInVariable"])
    blob = json.dumps(version)
    referenced = set(re.findall(r"\{\{([^{}]+)\}\}", blob))
    assert referenced and referenced <= known
    for v in variables:
        assert v["type"] == "v"
        assert {p["key"] for p in v["parameter"]} >= {"name", "dataLayerVersion"}
    # Base code on All Pages.
    all_pages = next(t for t in triggers if t["type"] == "PAGEVIEW")
    base = next(t for t in tags if all_pages["triggerId"] in t["firingTriggerId"])
    base_html = next(p["value"] for p in base["parameter"] if p["key"] == "html")
    assert f"fbq('init', '{pixel_id}')" in base_html and "fbevents.js" in base_html
    # One tag per event with eventID for deduplication, on a custom event trigger of that name.
    by_id = {t["triggerId"]: t for t in triggers}
    for name in events:
        if name == "PageView":
            continue
        tag = next(
            t
            for t in tags
            if f"fbq('track', '{name}'" in next(p["value"] for p in t["parameter"] if p["key"] == "html")
        )
        html = next(p["value"] for p in tag["parameter"] if p["key"] == "html")
        assert "eventID: {{DLV - event_id}}" in html
        trigger = by_id[tag["firingTriggerId"][0]]
        assert trigger["type"] == "CUSTOM_EVENT"
        assert trigger["customEventFilter"][0]["parameter"][1]["value"] == name


def test_gtm_container_every_standard_event():
    container = gtm_container("1234567890", list(STANDARD_EVENTS))
    _check_container(container, "1234567890", list(STANDARD_EVENTS))
    assert len(container["containerVersion"]["tag"]) == len(STANDARD_EVENTS)  # base + 17 (PageView is the base's)
    json.loads(json.dumps(container))


# ---------------------------------------------------------------------------------------------------------------
# End to end against the sandbox
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
async def ctx(graph, demo_accounts, sandbox):
    return OpContext(graph=graph, ad_account_id=demo_accounts["USD"], clock=sandbox_clock(sandbox))


async def _sandbox_now(sandbox) -> int:
    return (await sandbox.control("GET", "clock"))["epoch"]


@pytest.fixture
async def pixel_id(ctx):
    result = await list_pixels(ctx, ListPixelsArgs())
    assert result.data["pixels"], result.text
    return result.data["pixels"][0]["id"]


def _event_posts(stats: dict) -> int:
    return sum(n for route, n in stats["by_route"].items() if route.startswith("POST") and "events" in route)


async def _send(ctx, pixel_id, events, **extra):
    plan = await send_events(ctx, SendEventsArgs.model_validate({"pixel_id": pixel_id, "events": events, **extra}))
    return plan, await plan.execute()


async def test_old_event_refused_locally_nothing_sent(ctx, pixel_id, sandbox):
    before = _event_posts(await sandbox.stats())
    now = await _sandbox_now(sandbox)
    events = [event(0, at=now - 60), event(1, at=now - 8 * 86400), event(2)]
    with pytest.raises(ValidationError) as caught:
        await send_events(ctx, SendEventsArgs.model_validate({"pixel_id": pixel_id, "events": events}))
    assert "events[1]" in caught.value.to_text() and "7 days" in caught.value.to_text()
    with pytest.raises(ValidationError, match=r"events\[0\].*future"):
        await send_events(
            ctx, SendEventsArgs.model_validate({"pixel_id": pixel_id, "events": [event(0, at=now + 600)]})
        )
    assert _event_posts(await sandbox.stats()) == before


async def test_2500_events_sent_in_3_requests(ctx, pixel_id, sandbox):
    before = _event_posts(await sandbox.stats())
    events = [event(n, name=STANDARD_EVENTS[n % len(STANDARD_EVENTS)]) for n in range(2500)]
    plan, result = await _send(ctx, pixel_id, events)
    assert len(plan.requests) == 3
    assert result.ok, result.text
    assert result.data["events_received"] == 2500
    assert [b["events"] for b in result.data["batches"]] == [1000, 1000, 500]
    assert _event_posts(await sandbox.stats()) - before == 3
    blob = result.text + json.dumps(result.data) + json.dumps([r.to_data() for r in plan.requests])
    assert "buyer1@example.com" not in blob.lower() and "203.0.113.7" not in blob


async def test_batch_refused_by_facebook_reported(ctx, pixel_id, sandbox):
    # Planned at once, sent 2 hours later (a confirmation that waited): an event 7 days minus 1 hour old when checked
    # is more than 7 days old when Facebook receives it.
    now = await _sandbox_now(sandbox)
    events = [event(n) for n in range(1500)]
    events[1200] = event(1200, at=now - 7 * 86400 + 3600)
    plan = await send_events(ctx, SendEventsArgs.model_validate({"pixel_id": pixel_id, "events": events}))
    await sandbox.control("POST", "clock", {"advance": 7200})
    before = _event_posts(await sandbox.stats())
    result = await plan.execute()
    assert not result.ok
    assert result.data["failed_batch"] == 2 and result.data["failed_events"] == [1000, 1499]
    assert result.data["events_received"] == 1000
    assert "request 2 of 2" in result.text and "events[1000]–events[1499]" in result.text
    assert result.data["failed_event_index"] == 1200 and "events[1200]" in result.text and "event_time" in result.text
    assert _event_posts(await sandbox.stats()) - before == 2


async def test_dedup_visible_in_pixel_stats(ctx, pixel_id):
    first = await pixel_stats(ctx, PixelStatsArgs(pixel_id=pixel_id, period="last_hour"))
    base = first.data["totals"].get("Lead", 0)
    lead = [event(n, name="Lead", custom_data=None) for n in range(5)]
    _, sent = await _send(ctx, pixel_id, lead)
    assert sent.data["events_received"] == 5
    _, again = await _send(ctx, pixel_id, lead[:3] + [event(9, name="Lead", custom_data=None)])
    assert again.ok
    stats = await pixel_stats(ctx, PixelStatsArgs(pixel_id=pixel_id, period="last_hour"))
    assert stats.data["totals"]["Lead"] - base == 6  # 3 duplicates by event_id + event_name counted once
    assert "Lead" in stats.text


async def test_test_events_not_counted(ctx, pixel_id):
    base = (
        (await pixel_stats(ctx, PixelStatsArgs(pixel_id=pixel_id, period="last_hour")))
        .data["totals"]
        .get("Schedule", 0)
    )
    _, result = await _send(ctx, pixel_id, [event(1, name="Schedule", custom_data=None)], test_event_code="TEST123")
    assert result.ok and "TEST123" in result.text
    after = (
        (await pixel_stats(ctx, PixelStatsArgs(pixel_id=pixel_id, period="last_hour")))
        .data["totals"]
        .get("Schedule", 0)
    )
    assert after == base


async def test_custom_conversion_lifecycle(ctx, pixel_id):
    plan = await create_custom_conversion(
        ctx,
        CreateCustomConversionArgs.model_validate(
            {
                "name": "Thank-you purchases",
                "pixel_id": pixel_id,
                "event": "Purchase",
                "rule": {"url_contains": "thank-you"},
                "default_value": 25,
            }
        ),
    )
    made = await plan.execute()
    cc_id = made.data["custom_conversion_id"]
    assert json.loads(made.data["rule"]) == {
        "and": [{"event": {"eq": "Purchase"}}, {"url": {"i_contains": "thank-you"}}]
    }
    listed = await list_custom_conversions(ctx, ListCustomConversionsArgs())
    assert cc_id in {c["id"] for c in listed.data["custom_conversions"]}
    with pytest.raises(ValidationError, match="exactly one"):
        await create_custom_conversion(
            ctx,
            CreateCustomConversionArgs.model_validate(
                {"name": "x", "pixel_id": pixel_id, "rule": {"url_contains": "a", "url_equals": "b"}}
            ),
        )
    deleted = await (
        await delete_custom_conversion(ctx, DeleteCustomConversionArgs(custom_conversion_id=cc_id))
    ).execute()
    assert cc_id in deleted.text
    listed = await list_custom_conversions(ctx, ListCustomConversionsArgs())
    assert cc_id not in {c["id"] for c in listed.data["custom_conversions"] if c.get("is_archived") is not True}


async def test_gtm_export_file(ctx, pixel_id, tmp_path):
    events = ["PageView", "ViewContent", "AddToCart", "Purchase", "Lead"]
    result = await gtm_export(
        dataclasses.replace(ctx, files_dir=tmp_path), GtmExportArgs(pixel_id=pixel_id, events=events, out_dir="gtm")
    )
    assert result.files and result.files[0].startswith(str(tmp_path / "gtm"))
    container = json.loads(Path(result.files[0]).read_text(encoding="utf-8"))
    _check_container(container, pixel_id, events)


async def test_sent_events_leave_no_personal_data_in_the_audit_log(facebook):
    pixels = await facebook.call("list_pixels")
    pixel = pixels.data["pixels"][0]["id"]
    events = [
        event(n, name="Lead")
        | {
            "user_data": {
                "em": f"Buyer{n}@Example.com",
                "fn": "Zoë",
                "ct": "Berlin",
                "client_user_agent": UA,
                "client_ip_address": "203.0.113.7",
            }
        }
        for n in range(3)
    ]
    sent = await facebook.call("send_events", {"pixel_id": pixel, "events": events})
    assert sent.ok, sent.text
    entry = (await facebook.store.list_audit(facebook.workspace.id, op="send_events"))[0]
    stored = json.dumps(entry.args, ensure_ascii=False).lower()
    assert "buyer0@example.com" not in stored and "zoë" not in stored and "berlin" not in stored
    assert "personal data withheld" in stored


async def test_tracking_ops_answer_what_their_result_models_declare(facebook, tmp_path):
    """Every pixel, event, custom conversion and GTM op through the dispatcher (issue 20, item 3): each answer as its
    result model declares it (the suite checks every answer too; here each one is named), and a drifted one refused."""

    def conforms(op: str, result) -> dict:
        assert result.ok, result.text
        assert REGISTRY.result_problems(REGISTRY.require(op), result.data) == [], op
        return result.data

    made = conforms("create_pixel", await facebook.call("create_pixel", {"name": "Typed results pixel"}))
    pixel = made["pixel_id"]
    assert made["object_ids"] == [pixel] and made["ad_account_id"].startswith("act_")
    assert pixel in [p["id"] for p in conforms("list_pixels", await facebook.call("list_pixels"))["pixels"]]
    got = conforms("get_pixel", await facebook.call("get_pixel", {"pixel_id": pixel}))
    assert got["pixel"]["id"] == pixel and got["pixel"]["name"] == "Typed results pixel"
    sent = conforms(
        "send_events", await facebook.call("send_events", {"pixel_id": pixel, "events": [event(1), purchase(2)]})
    )
    assert (sent["events_sent"], sent["events_received"], sent["event_ids_derived"], sent["requests"]) == (2, 2, 1, 1)
    assert sent["batches"][0]["events_received"] == 2 and sent["event_counts"] == {"Purchase": 2}
    stats = conforms("pixel_stats", await facebook.call("pixel_stats", {"pixel_id": pixel, "period": "last_hour"}))
    assert stats["totals"] == {"Purchase": 2} and stats["end_time"] > stats["start_time"]
    rule = {"url_contains": "thank-you"}
    conversion = conforms(
        "create_custom_conversion",
        await facebook.call(
            "create_custom_conversion",
            {"name": "Typed thanks", "pixel_id": pixel, "rule": rule, "default_value": 25, "description": "typed"},
        ),
    )
    assert conversion["default_conversion_value"] == 25 and conversion["event_source_id"] == pixel
    listed = conforms("list_custom_conversions", await facebook.call("list_custom_conversions"))["custom_conversions"]
    assert conversion["custom_conversion_id"] in [c["id"] for c in listed]
    deleted = conforms(
        "delete_custom_conversion",
        await facebook.call("delete_custom_conversion", {"custom_conversion_id": conversion["custom_conversion_id"]}),
    )
    assert deleted["custom_conversion_id"] == conversion["custom_conversion_id"]
    exported = conforms(
        "gtm_export", await facebook.call("gtm_export", {"pixel_id": pixel, "events": ["Purchase", "Lead"]})
    )
    assert exported["tags"] == 3 and exported["events"] == ["Purchase", "Lead"]
    # A sloppy answer (a count as a string, a key nobody declared) is named, not let through.
    drifted = REGISTRY.result_problems(REGISTRY.require("send_events"), {**sent, "events_received": "2", "extra": 1})
    assert any(p.startswith("events_received:") for p in drifted) and any("extra" in p for p in drifted)


# ---------------------------------------------------------------------------------------------------------------
# Replay safety: every event carries an event_id; a lost answer is "unknown", never "not received"
# ---------------------------------------------------------------------------------------------------------------


def purchase(n: int, **extra) -> dict:
    """A Purchase without an event_id (the product derives one), at the sandbox's now unless extra says when."""
    body = {
        "event_name": "Purchase",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {
            "em": f"Buyer{n}@Example.com",
            "ph": "+1 650 555 0199",
            "client_user_agent": UA,
            "client_ip_address": "203.0.113.7",
        },
        "custom_data": {"value": 99, "currency": "USD", "content_ids": [f"SKU-{n}"]},
    }
    body.update(extra)
    return body


async def _purchases(ctx, pixel_id) -> int:
    stats = await pixel_stats(ctx, PixelStatsArgs(pixel_id=pixel_id, period="last_hour"))
    return stats.data["totals"].get("Purchase", 0)


async def _duplicates(graph, pixel_id) -> int:
    return int((await graph.get(pixel_id, {"fields": "duplicate_entries"}))["duplicate_entries"])


async def test_same_event_sent_twice_without_an_event_id_counts_once(ctx, pixel_id, graph, sandbox):
    now = await _sandbox_now(sandbox)
    base = await _purchases(ctx, pixel_id)
    events = [purchase(1), purchase(2, event_time=now - 120)]  # one with no time given, one with
    plan, first = await _send(ctx, pixel_id, events)
    assert first.ok, first.text
    assert "Each event got an id derived from its content" in first.text
    assert first.data["event_ids_derived"] == 2 and first.data["event_ids_given"] == 0
    ids = first.data["event_ids"]
    assert len(set(ids)) == 2 and all(i.startswith("am1-") and len(i) == 36 for i in ids)
    assert "each with an event_id" in plan.requests[0].describe()
    await sandbox.control("POST", "clock", {"advance": 600})  # ten minutes later: same content, same ids
    _, again = await _send(ctx, pixel_id, events)
    assert again.ok and again.data["event_ids"] == ids
    assert await _purchases(ctx, pixel_id) - base == 2
    assert await _duplicates(graph, pixel_id) == 2
    # Other content is another event: a different order, or the same one at another time the caller gave.
    _, other = await _send(ctx, pixel_id, [purchase(3), purchase(2, event_time=now - 60)])
    assert set(other.data["event_ids"]).isdisjoint(ids)
    assert await _purchases(ctx, pixel_id) - base == 4


async def test_given_event_ids_are_kept_and_mixed_ones_said_so(ctx, pixel_id):
    _, result = await _send(ctx, pixel_id, [purchase(1, event_id="order-1001"), purchase(2)])
    assert result.ok, result.text
    assert result.data["event_ids"][0] == "order-1001" and result.data["event_ids"][1].startswith("am1-")
    assert "1 of the 2 events got an id derived from their content" in result.text


def test_derived_event_id_follows_the_normalized_content():
    from fb_audience import ServerEvent, prepare_event

    raw = purchase(1, event_time=1_700_000_000)
    body = prepare_event(ServerEvent.model_validate(raw), 0, 1_700_000_100)
    same = prepare_event(
        ServerEvent.model_validate(
            purchase(
                1,
                event_time=1_700_000_000,
                user_data={
                    "email": "  buyer1@example.COM",
                    "phone": "16505550199",
                    "client_user_agent": UA,
                    "client_ip_address": "203.0.113.7",
                },
            )
        ),
        0,
        1_700_000_100,
    )
    assert body["event_id"] == same["event_id"]  # the same person however written: the same event
    moved = prepare_event(ServerEvent.model_validate(purchase(1, event_time=1_700_000_001)), 0, 1_700_000_100)
    other_ip = prepare_event(
        ServerEvent.model_validate(
            purchase(1, event_time=1_700_000_000, user_data={**raw["user_data"], "client_ip_address": "203.0.113.8"})
        ),
        0,
        1_700_000_100,
    )
    assert len({body["event_id"], moved["event_id"], other_ip["event_id"]}) == 3


async def test_lost_answer_is_unknown_and_resending_counts_the_purchase_once(facebook, sandbox, graph):
    pixel_id = (await facebook.call("list_pixels")).data["pixels"][0]["id"]
    ctx = OpContext(graph=graph, clock=sandbox_clock(sandbox))
    base = await _purchases(ctx, pixel_id)
    await sandbox.fault(kind="drop", when="after", method="POST", path=r"^\d+/events$", count=1)
    lost = await facebook.call("send_events", {"pixel_id": pixel_id, "events": [purchase(1)]})
    assert not lost.ok
    line = lost.text.splitlines()[0]
    assert line.startswith("ERROR outcome_unknown: The answer to request 1 of 1 to pixel")
    assert "was lost (the connection dropped before the answer came): Facebook may have received them" in line
    assert "Sending them again is safe" in line and "event_id" in line
    assert f'/tool send_events {{"pixel_id": "{pixel_id}", "events": [the same events]}}' in line
    assert "not received" not in lost.text and "none of those" not in lost.text and "Nothing was" not in lost.text
    assert lost.data["outcome"] == "unknown" and lost.data["safe_to_resend"] is True
    assert lost.data["error"] == "outcome_unknown" and lost.data["event_ids_derived"] == 1
    assert await _purchases(ctx, pixel_id) - base == 1  # Facebook did count it: only its answer was lost
    again = await facebook.call("send_events", {"pixel_id": pixel_id, "events": [purchase(1)]})
    assert again.ok, again.text
    assert again.data["event_ids"] == lost.data["event_ids"]
    assert await _purchases(ctx, pixel_id) - base == 1  # the $99 purchase is counted once


async def test_answer_after_the_timeout_is_unknown_and_later_requests_wait(sandbox, demo_token, ctx, pixel_id):
    from fb_utils import GraphClient, OutcomeUnknownError

    short = GraphClient(
        demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url, timeout=2.0
    )
    try:
        quick = OpContext(graph=short, clock=sandbox_clock(sandbox))
        await sandbox.fault(
            kind="timeout", when="after", method="POST", path=r"^\d+/events$", count=1, skip=1, delay_ms=4000
        )
        plan = await send_events(
            quick,
            SendEventsArgs.model_validate(
                {"pixel_id": pixel_id, "events": [event(n, name="Lead", custom_data=None) for n in range(2500)]}
            ),
        )
        with pytest.raises(OutcomeUnknownError) as caught:
            await plan.execute()
    finally:
        await short.close()
    text = caught.value.to_text()
    assert "request 2 of 3" in text and "events[1000]–events[1999], 1,000 events" in text
    assert "(no answer came in time)" in text and "may have received them" in text
    assert "Request 1 was accepted (1000 events received). Request 3 was not sent." in text
    assert caught.value.data["outcome"] == "unknown" and caught.value.data["events_not_sent"] == 500
    assert caught.value.data["events_received"] == 1000 and caught.value.data["unknown_events"] == [1000, 1999]


async def test_refused_events_are_still_reported_not_received(ctx, pixel_id, sandbox):
    await sandbox.fault(
        kind="error",
        method="POST",
        path=r"^\d+/events$",
        count=1,
        code=100,
        error_subcode=2804019,
        message="Invalid parameter",
        error_user_msg="Event 0 (user_data): invalid.",
    )
    _, result = await _send(ctx, pixel_id, [purchase(1)])
    assert not result.ok and "none of those 1 events were received" in result.text
    assert "Nothing was received." in result.text and "outcome" not in result.data


async def test_no_personal_data_in_answers_errors_or_logs_of_lost_and_refused_sends(facebook, sandbox, store):
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    try:
        pixel_id = (await facebook.call("list_pixels")).data["pixels"][0]["id"]
        await sandbox.fault(kind="drop", when="after", method="POST", path=r"^\d+/events$", count=1)
        lost = await facebook.call("send_events", {"pixel_id": pixel_id, "events": [purchase(7)]})
        await sandbox.fault(kind="http_500", method="POST", path=r"^\d+/events$", count=1)
        failed = await facebook.call("send_events", {"pixel_id": pixel_id, "events": [purchase(8)]})
        await sandbox.fault(kind="error", method="POST", path=r"^\d+/events$", count=1)
        refused = await facebook.call("send_events", {"pixel_id": pixel_id, "events": [purchase(9)]})
        sent = await facebook.call("send_events", {"pixel_id": pixel_id, "events": [purchase(10)]})
    finally:
        configure_logging()
    assert not lost.ok and not failed.ok and not refused.ok and sent.ok
    assert failed.data["outcome"] == "unknown" and "server error" in failed.text
    entries = await store.list_audit(facebook.workspace.id, limit=20)
    produced = stream.getvalue() + json.dumps([r.data for r in (lost, failed, refused, sent)], default=str)
    produced += "".join(r.text for r in (lost, failed, refused, sent))
    produced += json.dumps([vars(e) if hasattr(e, "__dict__") else e for e in entries], default=str)
    assert stream.getvalue()
    raw = [f"buyer{n}@example.com" for n in (7, 8, 9, 10)] + ["650 555 0199", "16505550199", "203.0.113.7"]
    assert [v for v in raw if v in produced.lower()] == []

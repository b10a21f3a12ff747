"""Sandbox custom audiences, saved audiences, pixels, custom conversions and the Conversions API over real HTTP."""

from __future__ import annotations

import hashlib
import json

from test_fb_sandbox_helpers import USD, graph  # noqa: F401
from testkit import SANDBOX_START

START = int(SANDBOX_START.timestamp())  # the sandbox's clock as each test begins (it runs on from there)


def h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def pixel_of(graph, account: str = USD) -> str:
    return (await graph.get(f"{account}/adspixels")).body["data"][0]["id"]


async def new_list(graph, name: str = "Customers") -> str:
    answer = await graph.post(
        f"{USD}/customaudiences", {"name": name, "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}
    )
    assert answer.status == 200, answer.body
    return answer.body["id"]


def users_form(schema, data, session_id=1, seq=1, last=True, total=None) -> dict:
    session = {"session_id": session_id, "batch_seq": seq, "last_batch_flag": last}
    if total is not None:
        session["estimated_num_total"] = total
    return {"payload": json.dumps({"schema": schema, "data": data}), "session": json.dumps(session)}


def emails(start: int, n: int) -> list[list[str]]:
    return [[h(f"user{i}@example.com")] for i in range(start, start + n)]


async def fill(graph, audience: str, n: int, session_id: int = 7) -> None:
    answer = await graph.post(f"{audience}/users", users_form("EMAIL", emails(0, n), session_id))
    assert answer.status == 200, answer.body


def event(**overrides) -> dict:
    body = {
        "event_name": "Purchase",
        "event_time": START - 60,
        "action_source": "website",
        "event_source_url": "https://shop.example/checkout",
        "user_data": {"em": [h("a@example.com")], "client_ip_address": "1.2.3.4", "fbp": "fb.1.1.1"},
        "custom_data": {"value": 12.5, "currency": "USD"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def stats(graph, pixel: str, aggregation: str = "event") -> dict[str, int]:
    answer = await graph.get(
        f"{pixel}/stats", aggregation=aggregation, start_time=str(START - 8 * 86400), end_time=str(START + 3 * 86400)
    )
    assert answer.status == 200, answer.body
    out: dict[str, int] = {}
    for bucket in answer.body["data"]:
        for row in bucket["data"]:
            out[row["value"]] = out.get(row["value"], 0) + row["count"]
    return out


# ---- custom audiences


async def test_customer_list_sessions_read_update_delete(graph):
    aid = await new_list(graph)
    first = await graph.post(
        f"{aid}/users",
        users_form(
            ["EMAIL", "FN"],
            [[h("x@e.com"), h("x")]] * 2 + [[h(f"{i}@e.com"), h("n")] for i in range(1500)],
            session_id=42,
            seq=1,
            last=False,
            total=3000,
        ),
    )
    assert first.status == 200, first.body
    assert first.body == {
        "audience_id": aid,
        "session_id": 42,
        "num_received": 1502,
        "num_invalid_entries": 0,
        "invalid_entry_samples": {},
    }
    second = await graph.post(
        f"{aid}/users", users_form(["EMAIL", "FN"], [[h(f"{i}@f.com"), h("m")] for i in range(1500)], 42, 2, True)
    )
    assert second.status == 200 and second.body["num_received"] == 1500
    fields = (
        "id,name,subtype,approximate_count_lower_bound,approximate_count_upper_bound,delivery_status,"
        "operation_status,time_created,time_updated,description"
    )
    a = (await graph.get(aid, fields=fields)).body
    assert a["subtype"] == "CUSTOM" and 0.40 * 3001 <= a["approximate_count_lower_bound"] <= 0.71 * 3001
    assert a["approximate_count_upper_bound"] >= a["approximate_count_lower_bound"]
    assert a["delivery_status"]["code"] == 200 and a["operation_status"]["code"] == 200
    closed = await graph.post(f"{aid}/users", users_form("EMAIL", emails(0, 1), 42, 3, True))
    assert closed.status == 400 and closed.error["code"] == 100
    assert (await graph.post(aid, {"name": "Renamed", "description": "VIPs"})).body == {"success": True}
    listed = (await graph.get(f"{USD}/customaudiences", fields="id,name,description,delivery_status")).body
    assert listed["data"][0] == {
        "id": aid,
        "name": "Renamed",
        "description": "VIPs",
        "delivery_status": a["delivery_status"],
    }
    assert (await graph.delete(aid)).body == {"success": True}
    assert (await graph.get(aid)).status == 400


async def test_small_audience_remove_and_paging(graph):
    aid = await new_list(graph)
    await fill(graph, aid, 200)
    a = (await graph.get(aid, fields="approximate_count_lower_bound,delivery_status")).body
    assert a["delivery_status"]["code"] == 300 and 60 <= a["approximate_count_lower_bound"] <= 150
    removed = await graph.call("DELETE", f"{aid}/users", data=users_form("EMAIL", emails(0, 200), 8))
    assert removed.status == 200 and removed.body["num_received"] == 200
    assert (await graph.get(aid, fields="approximate_count_lower_bound")).body["approximate_count_lower_bound"] == 0
    for i in range(3):
        await new_list(graph, f"List {i}")
    page = (await graph.get(f"{USD}/customaudiences", limit="2")).body
    assert len(page["data"]) == 2 and "next" in page["paging"]


async def test_invalid_hashes_counted_with_samples(graph):
    aid = await new_list(graph)
    rows = [[h("ok@e.com"), "raw-extern-1"], ["not-a-hash", "e2"], [h("ok2@e.com")], ["", ""]]
    answer = await graph.post(f"{aid}/users", users_form(["EMAIL_SHA256", "EXTERN_ID"], rows))
    assert answer.status == 200, answer.body
    assert answer.body["num_received"] == 4 and answer.body["num_invalid_entries"] == 3
    assert answer.body["invalid_entry_samples"]["EMAIL_SHA256"] == ["not-a-hash"]


async def test_too_many_rows_and_malformed_payloads(graph):
    aid = await new_list(graph)
    big = await graph.post(f"{aid}/users", users_form("EMAIL", [[h("a")]] * 10_001))
    assert big.status == 400 and big.error["code"] == 100 and "10,000" in big.error["message"]
    for form in (
        {"payload": "{not json"},
        {"payload": json.dumps({"schema": "NOPE", "data": [["x"]]})},
        {"payload": json.dumps({"schema": "EMAIL", "data": []})},
        users_form("EMAIL", [[h("a")]]) | {"session": json.dumps({"session_id": "x"})},
        {},
    ):
        answer = await graph.post(f"{aid}/users", form)
        assert answer.status == 400 and answer.error["code"] == 100, (form, answer.body)
    for form in (
        {"name": "x", "subtype": "BOGUS"},
        {"subtype": "CUSTOM"},
        {"name": "w", "subtype": "WEBSITE", "rule": "{}", "pixel_id": "1"},
        {"name": "l", "subtype": "LOOKALIKE", "origin_audience_id": aid, "lookalike_spec": "[1]"},
    ):
        answer = await graph.post(f"{USD}/customaudiences", form)
        assert answer.status == 400 and answer.error["code"] == 100, (form, answer.body)


async def test_replace_swaps_content_at_last_batch(graph):
    aid = await new_list(graph)
    await fill(graph, aid, 2000)
    before = (await graph.get(aid, fields="approximate_count_lower_bound")).body["approximate_count_lower_bound"]
    part = await graph.post(f"{aid}/usersreplace", users_form("EMAIL", emails(5000, 100), 9, 1, False))
    assert part.status == 200, part.body
    mid = (await graph.get(aid, fields="approximate_count_lower_bound,operation_status")).body
    assert mid["approximate_count_lower_bound"] == before and mid["operation_status"]["code"] == 300
    done = await graph.post(f"{aid}/usersreplace", users_form("EMAIL", emails(5100, 100), 9, 2, True))
    assert done.status == 200
    after = (await graph.get(aid, fields="approximate_count_lower_bound,operation_status")).body
    assert 80 <= after["approximate_count_lower_bound"] <= 140 and after["operation_status"]["code"] == 200
    bad_start = await graph.post(f"{aid}/usersreplace", users_form("EMAIL", emails(0, 1), 10, 2, True))
    assert bad_start.status == 400


async def test_fault_fails_one_users_request_and_retry_succeeds(graph, sandbox):
    aid = await new_list(graph)
    await sandbox.fault(kind="http_500", count=1, method="POST", path=f"{aid}/users$")
    form = users_form("EMAIL", emails(0, 50), 11, 1, False)
    assert (await graph.post(f"{aid}/users", form)).status == 500
    retry = await graph.post(f"{aid}/users", form)
    assert retry.status == 200 and retry.body["num_received"] == 50
    assert (await graph.post(f"{aid}/users", users_form("EMAIL", emails(50, 50), 11, 2, True))).status == 200


async def test_upload_sessions_edge_shows_what_each_session_received(graph):
    """GET /{audience_id}/sessions (Meta's "Custom Audience Sessions" reference): CustomAudienceSession nodes, every
    value a string, shaped like the live answer in facebook-java-business-sdk issue #492; session_id picks one."""
    aid = await new_list(graph)
    assert (await graph.get(f"{aid}/sessions")).body == {"data": [], "paging": {}}
    await graph.post(f"{aid}/users", users_form("EMAIL", emails(0, 30) + [["not-a-hash"]], 21, 1, False))
    await graph.post(f"{aid}/users", users_form("EMAIL", emails(30, 20), 21, 2, True))
    await graph.call("DELETE", f"{aid}/users", data=users_form("EMAIL", emails(0, 5), 22))
    listed = (await graph.get(f"{aid}/sessions")).body["data"]
    assert {s["session_id"] for s in listed} == {"21", "22"}
    one = await graph.get(f"{aid}/sessions", session_id="21")
    assert one.status == 200, one.body
    assert one.body["data"] == [
        {
            "session_id": "21",
            "start_time": str(START),
            "end_time": "0",
            "num_received": "51",
            "num_matched": "-1",
            "num_invalid_entries": "1",
            "progress": "0",
            "stage": "uploading",
        }
    ]
    picked = (await graph.get(f"{aid}/sessions", session_id="22", fields="num_received,stage")).body["data"]
    assert picked == [{"num_received": "5", "stage": "uploading"}]
    assert (await graph.get(f"{aid}/sessions", session_id="23")).body["data"] == []
    unknown = await graph.get(f"{aid}/sessions", fields="num_received,rows")
    assert unknown.status == 400 and "(rows)" in unknown.error["message"]
    assert (await graph.get(f"{aid}/sessions", session_id="x")).status == 400


async def test_official_sdk_reads_upload_sessions(graph, sandbox, demo_token):
    """The SDK's CustomAudience.get_sessions (every CustomAudienceSession field) works against the sandbox unchanged."""
    import asyncio

    from facebook_business.adobjects.customaudience import CustomAudience
    from facebook_business.adobjects.customaudiencesession import CustomAudienceSession
    from facebook_business.api import FacebookAdsApi

    aid = await new_list(graph)
    await graph.post(f"{aid}/users", users_form("EMAIL", emails(0, 12), 31))
    fields = [v for k, v in vars(CustomAudienceSession.Field).items() if not k.startswith("_")]

    def read() -> list[dict]:
        api = FacebookAdsApi.init(
            demo_token["app_id"], demo_token["app_secret"], demo_token["access_token"], api_version="v26.0"
        )
        api._session.GRAPH = sandbox.url
        return [s.export_all_data() for s in CustomAudience(aid).get_sessions(fields=fields, params={"session_id": 31})]

    sessions = await asyncio.to_thread(read)
    assert len(sessions) == 1 and set(sessions[0]) == set(fields)
    assert sessions[0]["session_id"] == "31" and sessions[0]["num_received"] == "12"


async def test_lookalike_duplicates_and_small_source_2654(graph):
    """Lookalikes with a country, as before v27.0 (v27 takes none: tests/test_changelog_rules.py)."""

    async def post(path: str, data: dict):
        return await graph.call("POST", path, data=data, version="v26.0")

    small = await new_list(graph, "Small")
    await fill(graph, small, 50)
    refused = await post(
        f"{USD}/customaudiences",
        {
            "name": "LAL",
            "subtype": "LOOKALIKE",
            "origin_audience_id": small,
            "lookalike_spec": json.dumps({"ratio": 0.01, "country": "US"}),
        },
    )
    assert refused.status == 400 and refused.error["code"] == 2654
    source = await new_list(graph, "Buyers")
    await fill(graph, source, 1000)
    spec = {
        "name": "LAL 1% US",
        "subtype": "LOOKALIKE",
        "origin_audience_id": source,
        "lookalike_spec": json.dumps({"ratio": 0.01, "country": "US"}),
    }
    created = await post(f"{USD}/customaudiences", spec)
    assert created.status == 200, created.body
    lal = (
        await graph.get(
            created.body["id"], fields="subtype,lookalike_spec,approximate_count_lower_bound,delivery_status"
        )
    ).body
    assert lal["subtype"] == "LOOKALIKE" and lal["lookalike_spec"]["ratio"] == 0.01
    assert lal["approximate_count_lower_bound"] > 1_000_000 and lal["delivery_status"]["code"] == 200
    duplicate = await post(f"{USD}/customaudiences", spec)
    assert duplicate.status == 400 and duplicate.error["code"] == 2654
    other = await post(
        f"{USD}/customaudiences",
        {
            **spec,
            "lookalike_spec": json.dumps({"ratio": 0.02, "location_spec": {"geo_locations": {"countries": ["US"]}}}),
        },
    )
    assert other.status == 200
    for ratio in (0.005, 0.25):
        bad = await post(
            f"{USD}/customaudiences", {**spec, "lookalike_spec": json.dumps({"ratio": ratio, "country": "CA"})}
        )
        assert bad.status == 400 and bad.error["code"] == 100
    upload = await graph.post(f"{created.body['id']}/users", users_form("EMAIL", emails(0, 1)))
    assert upload.status == 400 and upload.error["code"] == 2654


async def test_website_and_engagement_audiences(graph):
    pixel = await pixel_of(graph)
    rule = {
        "inclusions": {
            "operator": "or",
            "rules": [{"event_sources": [{"id": pixel, "type": "pixel"}], "retention_seconds": 2592000}],
        }
    }
    site = await graph.post(
        f"{USD}/customaudiences",
        {"name": "Visitors", "subtype": "WEBSITE", "pixel_id": pixel, "retention_days": "30", "rule": json.dumps(rule)},
    )
    assert site.status == 200, site.body
    read = (await graph.get(site.body["id"], fields="retention_days,rule,subtype")).body
    assert read["retention_days"] == 30 and json.loads(read["rule"]) == rule
    for extra in ({"retention_days": "181"}, {"retention_days": "0"}, {"pixel_id": "500000000099999"}):
        bad = await graph.post(
            f"{USD}/customaudiences",
            {"name": "V", "subtype": "WEBSITE", "pixel_id": pixel, "rule": json.dumps(rule), **extra},
        )
        assert bad.status == 400 and bad.error["code"] == 100, bad.body
    page = (await graph.get("me/accounts")).body["data"][0]["id"]
    engagement = {
        "inclusions": {
            "operator": "or",
            "rules": [{"event_sources": [{"id": page, "type": "page"}], "retention_seconds": 31536000}],
        }
    }
    created = await graph.post(
        f"{USD}/customaudiences", {"name": "Engaged", "subtype": "ENGAGEMENT", "rule": json.dumps(engagement)}
    )
    assert created.status == 200, created.body
    no_source = await graph.post(
        f"{USD}/customaudiences",
        {"name": "E", "subtype": "ENGAGEMENT", "rule": json.dumps({"inclusions": {"rules": []}})},
    )
    assert no_source.status == 400


# ---- saved audiences


async def test_saved_audiences(graph):
    listed = (await graph.get(f"{USD}/saved_audiences", fields="id,name,targeting,approximate_count_lower_bound")).body
    assert len(listed["data"]) == 2
    first = listed["data"][0]
    assert first["targeting"]["geo_locations"]["countries"] and first["approximate_count_lower_bound"] > 0
    one = (await graph.get(first["id"], fields="name,account,approximate_count_upper_bound")).body
    assert one["name"] == first["name"] and one["account"]["id"] == USD


# ---- pixels and custom conversions


async def test_pixels_and_custom_conversions(graph):
    created = await graph.post(f"{USD}/adspixels", {"name": "Second pixel"})
    assert created.status == 200, created.body
    pid = created.body["id"]
    listed = (await graph.get(f"{USD}/adspixels", fields="id,name")).body["data"]
    assert pid in {p["id"] for p in listed} and len(listed) >= 2
    p = (await graph.get(pid, fields="name,code,last_fired_time,is_unavailable")).body
    assert p["name"] == "Second pixel" and pid in p["code"] and p["is_unavailable"] is False
    assert "last_fired_time" not in p
    assert (await graph.post(f"{USD}/adspixels", {})).status == 400
    rule = {"and": [{"event": {"eq": "PageView"}}, {"or": [{"URL": {"i_contains": "thank-you"}}]}]}
    cc = await graph.post(
        f"{USD}/customconversions",
        {
            "name": "Thank you",
            "pixel_id": pid,
            "custom_event_type": "PURCHASE",
            "rule": json.dumps(rule),
            "default_conversion_value": "10",
        },
    )
    assert cc.status == 200, cc.body
    got = (await graph.get(f"{USD}/customconversions", fields="id,name,custom_event_type,rule,pixel")).body["data"]
    assert got[0]["id"] == cc.body["id"] and got[0]["custom_event_type"] == "PURCHASE"
    assert json.loads(got[0]["rule"]) == rule and got[0]["pixel"] == {"id": pid}
    for bad in (
        {"name": "x", "pixel_id": pid, "rule": "nope"},
        {"name": "x", "pixel_id": pid},
        {"name": "x", "pixel_id": pid, "rule": json.dumps(rule), "custom_event_type": "BOGUS"},
        {"name": "x", "pixel_id": "1", "rule": json.dumps(rule)},
    ):
        answer = await graph.post(f"{USD}/customconversions", bad)
        assert answer.status == 400 and answer.error["code"] == 100, (bad, answer.body)
    assert (await graph.delete(cc.body["id"])).body == {"success": True}
    assert (await graph.get(f"{USD}/customconversions")).body["data"] == []


# ---- Conversions API


async def test_capi_events_objects_and_json_strings_feed_stats(graph):
    pixel = await pixel_of(graph)
    objects = await graph.call(
        "POST",
        f"{pixel}/events",
        json_body={"data": [event(), event(event_name="Lead", action_source="email")], "partner_agent": "admonster"},
    )
    assert objects.status == 200, objects.body
    assert objects.body["events_received"] == 2 and objects.body["messages"] == [] and objects.body["fbtrace_id"]
    strings = await graph.post(f"{pixel}/events", {"data": json.dumps([json.dumps(event(event_name="ViewContent"))])})
    assert strings.status == 200 and strings.body["events_received"] == 1
    assert await stats(graph, pixel) == {"Purchase": 1, "Lead": 1, "ViewContent": 1}
    assert await stats(graph, pixel, "event_source") == {"website": 2, "email": 1}
    test = await graph.post(f"{pixel}/events", {"data": json.dumps([event()]), "test_event_code": "TEST123"})
    assert test.status == 200 and (await stats(graph, pixel))["Purchase"] == 1
    fired = (await graph.get(pixel, fields="last_fired_time")).body
    assert "last_fired_time" in fired
    assert (await graph.get(f"{pixel}/stats", aggregation="nope")).status == 400


async def test_capi_one_bad_event_rejects_the_batch(graph):
    pixel = await pixel_of(graph)
    now = START
    bad_events = [
        (event(event_name=None), "event_name"),
        (event(event_time=now - 8 * 86400), "event_time"),
        (event(event_time=now + 600), "event_time"),
        (event(action_source=None), "action_source"),
        (event(action_source="fax"), "action_source"),
        (event(user_data={}), "user_data"),
        (event(user_data={"em": "raw@example.com"}), "user_data.em"),
        (event(user_data={"ph": [h("1"), "123"]}), "user_data.ph"),
        (event(custom_data={"value": 5}), "custom_data.currency"),
        (event(custom_data={"value": 5, "currency": "DOLLARS"}), "custom_data.currency"),
    ]
    for bad, field in bad_events:
        answer = await graph.call("POST", f"{pixel}/events", json_body={"data": [event(), event(), bad]})
        assert answer.status == 400 and answer.error["code"] == 100, (field, answer.body)
        assert "Event 2" in answer.error["error_user_msg"] and field in answer.error["error_user_msg"], answer.error
    assert await stats(graph, pixel) == {}
    too_many = await graph.call("POST", f"{pixel}/events", json_body={"data": [event()] * 1001})
    assert too_many.status == 400 and too_many.error["code"] == 100
    for data in ("{broken", "[]", '["not json"]', "[1]"):
        answer = await graph.post(f"{pixel}/events", {"data": data})
        assert answer.status == 400 and answer.error["code"] == 100, (data, answer.body)
    assert (await graph.post(f"{pixel}/events", {})).status == 400
    assert await stats(graph, pixel) == {}


async def test_capi_dedup_within_48_hours_only(graph, sandbox):
    pixel = await pixel_of(graph)
    same = event(event_id="order-1")
    for _ in range(2):
        assert (await graph.post(f"{pixel}/events", {"data": json.dumps([same])})).status == 200
    assert await stats(graph, pixel) == {"Purchase": 1}
    dupes = (await graph.get(pixel, fields="duplicate_entries")).body
    assert dupes["duplicate_entries"] == 1
    other_name = event(event_id="order-1", event_name="AddToCart")
    await graph.post(f"{pixel}/events", {"data": json.dumps([other_name])})
    assert await stats(graph, pixel) == {"Purchase": 1, "AddToCart": 1}
    await sandbox.control("POST", "clock", {"advance": 49 * 3600})
    later = event(event_id="order-1", event_time=START + 49 * 3600 - 10)
    assert (await graph.post(f"{pixel}/events", {"data": json.dumps([later])})).status == 200
    assert (await stats(graph, pixel))["Purchase"] == 2


async def test_a_person_is_the_same_in_any_case_or_padding_and_removal_finds_them(graph):
    """Lowercase rows take the sandbox's fast path, uppercase or padded ones its careful path: one identity."""
    aid = await new_list(graph)
    rows = [[h(f"p{i}@example.com").upper(), f" {h(f'+1650555{i:04d}')} "] for i in range(300)]
    assert (await graph.post(f"{aid}/users", users_form(["EMAIL", "PHONE"], rows, 21))).status == 200
    size = (await graph.get(aid, fields="approximate_count_lower_bound")).body["approximate_count_lower_bound"]
    again = [[e.strip().lower(), p.strip()] for e, p in rows]
    assert (await graph.post(f"{aid}/users", users_form(["EMAIL", "PHONE"], again, 22))).status == 200
    assert (
        (await graph.get(aid, fields="approximate_count_lower_bound")).body["approximate_count_lower_bound"] == size > 0
    )
    removed = await graph.call("DELETE", f"{aid}/users", data=users_form(["EMAIL", "PHONE"], again, 23))
    assert removed.status == 200 and removed.body["num_invalid_entries"] == 0
    assert (await graph.get(aid, fields="approximate_count_lower_bound")).body["approximate_count_lower_bound"] == 0


async def test_reset_forgets_audience_members_and_received_events(graph, sandbox):
    aid = await new_list(graph)
    await fill(graph, aid, 500)
    pixel = await pixel_of(graph)
    assert (await graph.post(f"{pixel}/events", {"data": json.dumps([event()])})).status == 200
    db = sandbox.server.sandbox.store.db
    assert db.execute("SELECT COUNT(*) FROM audience_people").fetchone()[0] > 0
    assert db.execute("SELECT COUNT(*) FROM capi_events").fetchone()[0] > 0
    await sandbox.control("POST", "reset", {"seed": True})
    assert db.execute("SELECT COUNT(*) FROM audience_people").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM capi_events").fetchone()[0] == 0


async def test_fault_skip_lets_the_first_matching_requests_through(graph, sandbox):
    aid = await new_list(graph)
    await sandbox.fault(kind="http_500", count=1, skip=2, method="POST", path=f"{aid}/users$")
    statuses = [(await graph.post(f"{aid}/users", users_form("EMAIL", emails(i, 1), 30 + i))).status for i in range(4)]
    assert statuses == [200, 200, 500, 200]


async def test_a_person_is_the_same_whatever_else_the_batch_holds(graph, sandbox):
    """Identities come from the values and their keys: the same email alone, beside a blank phone, or in capitals
    (the careful path), is one person; with a phone it is another row, so another person."""
    aid = await new_list(graph)
    db, store = sandbox.server.sandbox.store.db, sandbox.server.sandbox.store
    from fb_sandbox import audiences

    alone = emails(0, 50)
    with_blank_phone = [[e, ""] for [e] in alone]
    in_capitals = [[e.upper(), ""] for [e] in alone]
    with_phone = [[e, h(f"+1650555{i:04d}")] for i, [e] in enumerate(alone)]
    sizes = []
    for seq, (schema, rows) in enumerate(
        [
            ("EMAIL", alone),
            (["EMAIL", "PHONE"], with_blank_phone),
            (["EMAIL", "PHONE"], in_capitals),
            (["EMAIL_SHA256", "PHONE"], with_blank_phone),
            (["EMAIL", "PHONE"], with_phone),
        ],
        start=1,
    ):
        answer = await graph.post(f"{aid}/users", users_form(schema, rows, 40 + seq))
        assert answer.status == 200 and answer.body["num_invalid_entries"] == 0, answer.body
        sizes.append(len(audiences._people(db, store.get(aid)["_members_key"])))
    assert sizes == [50, 50, 50, 50, 100]

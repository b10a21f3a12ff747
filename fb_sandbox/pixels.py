"""Pixels (`act_x/adspixels`, `/{pixel_id}`, `/{pixel_id}/stats`), custom conversions, and the Conversions API
(`POST /{pixel_id}/events`), written from GRAPH_API.md ("Conversions API").

Events live in their own table (`capi_events`) keyed by a random token stored on the pixel. Deduplication: an
event whose event_name and event_id match one received in the previous 48 hours (sandbox clock) is recorded as a
duplicate and left out of the stats; events sent with a test_event_code are recorded as test events only.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from typing import Any, NoReturn

from .clock import iso, parse_time
from .context import Ctx
from .errors import GraphError, new_trace_id, param_error
from .fields import parse_fields, select
from .paging import paginate
from .params import to_int
from .store import Obj

MAX_EVENTS = 1000
MAX_AGE = 7 * 86400
MAX_FUTURE = 60
# Meta: "If we find a match between events sent within 48 hours of each other, we only consider the first one", by
# event_name and event_id (Conversions API "Server Event Parameters" and "Handling Duplicate Pixel and Conversions
# API Events", Graph API v25.0 docs; see docs/graph_api_verified.md).
DEDUP_WINDOW = 48 * 3600
ACTION_SOURCES = {
    "website",
    "app",
    "email",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
}
HASHED = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "db", "ge")
RAW = (
    "external_id",
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "lead_id",
    "anon_id",
    "madid",
    "fb_login_id",
    "page_id",
    "ctwa_clid",
)
HEX64 = re.compile(r"[0-9a-f]{64}")
AGGREGATIONS = {"event", "event_source", "url", "had_pii", "event_total_counts", "event_detection_method"}
CONVERSION_EVENT_TYPES = {
    "ADD_PAYMENT_INFO",
    "ADD_TO_CART",
    "ADD_TO_WISHLIST",
    "COMPLETE_REGISTRATION",
    "CONTENT_VIEW",
    "INITIATED_CHECKOUT",
    "LEAD",
    "PURCHASE",
    "SEARCH",
    "CONTACT",
    "CUSTOMIZE_PRODUCT",
    "DONATE",
    "FIND_LOCATION",
    "SCHEDULE",
    "START_TRIAL",
    "SUBMIT_APPLICATION",
    "SUBSCRIBE",
    "LISTING_INTERACTION",
    "FACEBOOK_SELECTED",
    "OTHER",
}
_TABLE = """CREATE TABLE IF NOT EXISTS capi_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, events_key TEXT NOT NULL, event_name TEXT NOT NULL,
    event_id TEXT, event_time REAL NOT NULL, received REAL NOT NULL, action_source TEXT,
    duplicate INTEGER NOT NULL, test_code TEXT, partner_agent TEXT, data TEXT NOT NULL)"""


def _db(ctx: Ctx):
    store = ctx.store
    if not getattr(store, "_capi_table", False):
        store.db.execute(_TABLE)
        store.db.execute("CREATE INDEX IF NOT EXISTS capi_events_key ON capi_events(events_key, event_name, event_id)")
        store._capi_table = True
    return store.db


def _events_key(ctx: Ctx, pixel: Obj) -> str:
    key = pixel.get("_events_key")
    if not key:
        key = secrets.token_hex(8)
        ctx.store.update(pixel["id"], {**pixel, "_events_key": key}, now=pixel.updated)
        pixel["_events_key"] = key
    return key


def events(
    ctx: Ctx,
    pixel: Obj,
    *,
    test: bool = False,
    duplicates: bool = False,
    since: float | None = None,
    until: float | None = None,
) -> list[dict]:
    """Recorded events of a pixel: the counted ones by default, or its test events, or its duplicates."""
    sql = "SELECT * FROM capi_events WHERE events_key=? AND duplicate=? AND test_code IS " + (
        "NOT NULL" if test else "NULL"
    )
    args: list[Any] = [_events_key(ctx, pixel), 1 if duplicates else 0]
    if since is not None:
        sql += " AND event_time>=?"
        args.append(since)
    if until is not None:
        sql += " AND event_time<?"
        args.append(until)
    rows = _db(ctx).execute(sql + " ORDER BY seq", args).fetchall()
    return [{**dict(r), "data": json.loads(r["data"])} for r in rows]


def distinct_visitors(ctx: Ctx, pixel_id: str, since: float) -> int:
    """People seen by a pixel since a time (website custom audiences size from this)."""
    pixel = ctx.store.get(pixel_id)
    if pixel is None or pixel.type != "pixel":
        return 0
    people = set()
    for e in events(ctx, pixel, since=since):
        user = e["data"].get("user_data") or {}
        people.add(json.dumps({k: user.get(k) for k in ("em", "ph", "external_id", "fbp")}, sort_keys=True))
    return len(people)


# ---- pixels


def render_pixel(ctx: Ctx, obj: Obj, names: Sequence[str]) -> dict:
    def value(name: str) -> Any:
        if name.startswith("_"):
            return None
        if name == "creation_time":
            return iso(obj.created)
        if name == "last_fired_time":
            return iso(obj["_last_fired"]) if obj.get("_last_fired") else None
        if name == "is_unavailable":
            return bool(obj.get("is_unavailable", False))
        if name == "code":
            return obj.get("code") or _code(obj["id"])
        if name == "owner_ad_account" and obj.account_id:
            return {"account_id": obj.account_id[4:], "id": obj.account_id}
        if name == "duplicate_entries":
            return len(events(ctx, obj, duplicates=True))
        return obj.get(name)

    return select("AdsPixel", names, ["id"], value)


def _code(pixel_id: str) -> str:
    return (
        f"<!-- Meta Pixel Code -->\n<script>fbq('init', '{pixel_id}');fbq('track', 'PageView');</script>\n"
        "<!-- End Meta Pixel Code -->"
    )


def read_pixel(ctx: Ctx, pixel: Obj) -> dict:
    return render_pixel(ctx, pixel, parse_fields(ctx.p.get("fields")))


def update_pixel(ctx: Ctx, pixel: Obj) -> dict:
    if "name" in ctx.p:
        ctx.store.update(pixel["id"], {**pixel, "name": ctx.p.str("name", required=True)}, now=ctx.now)
    return {"success": True}


def list_pixels(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    names = parse_fields(ctx.p.get("fields"))
    select("AdsPixel", names, ["id"], lambda n: None)
    return paginate(ctx, ctx.store.list("pixel", account_id=account["id"]), lambda o: render_pixel(ctx, o, names))


def create_pixel(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    name = ctx.p.str("name", required=True)
    if len(name) > 100:
        raise param_error("The pixel name must be at most 100 characters", field="name")
    pixel_id = ctx.store.new_id("pixel")
    ctx.store.insert(
        "pixel",
        pixel_id,
        {"id": pixel_id, "name": name, "code": _code(pixel_id), "_events_key": secrets.token_hex(8)},
        account_id=account["id"],
        parent_id=account["id"],
        now=ctx.now,
    )
    return {"id": pixel_id}


def pixel_stats(ctx: Ctx) -> dict:
    pixel = ctx.load(ctx.match[0], types=("pixel",))
    aggregation = ctx.p.str("aggregation", "event")
    if aggregation not in AGGREGATIONS:
        raise param_error(
            f"Param aggregation must be one of {{{', '.join(sorted(AGGREGATIONS))}}}", field="aggregation"
        )
    start, end = _time_param(ctx, "start_time", ctx.now - 86400), _time_param(ctx, "end_time", ctx.now + 1)
    if end <= start:
        raise param_error("end_time must be after start_time", field="end_time")
    buckets: dict[int, dict[str, int]] = {}
    for e in events(ctx, pixel, since=start, until=end):
        hour = int(e["event_time"]) // 3600 * 3600
        key = _aggregate(aggregation, e)
        counts = buckets.setdefault(hour, {})
        counts[key] = counts.get(key, 0) + 1
    data = [
        {
            "start_time": iso(hour),
            "aggregation": aggregation,
            "data": [{"value": k, "count": v} for k, v in sorted(counts.items())],
        }
        for hour, counts in sorted(buckets.items(), reverse=True)
    ]
    return {"data": data}


def _time_param(ctx: Ctx, name: str, default: float) -> float:
    raw = ctx.p.get(name)
    if raw is None or raw == "":
        return default
    value = parse_time(raw)
    if value is None:
        raise param_error(f"Param {name} must be a unix time or an ISO 8601 date", field=name)
    return value


def _aggregate(aggregation: str, e: dict) -> str:
    if aggregation == "event":
        return e["event_name"]
    if aggregation == "event_source":
        return e["action_source"] or "other"
    if aggregation == "url":
        return str(e["data"].get("event_source_url") or "")
    if aggregation == "had_pii":
        user = e["data"].get("user_data") or {}
        return "true" if any(user.get(k) for k in HASHED) else "false"
    if aggregation == "event_detection_method":
        return "server"
    return "total"


# ---- Conversions API


def post_events(ctx: Ctx) -> dict:
    pixel = ctx.load(ctx.match[0], types=("pixel",))
    batch = _events_param(ctx)
    now = ctx.now
    for index, event in enumerate(batch):
        _validate(index, event, now)
    test_code = ctx.p.str("test_event_code")
    partner = ctx.p.str("partner_agent")
    key = _events_key(ctx, pixel)
    db = _db(ctx)
    with ctx.store.lock:
        for event in batch:
            event_id = str(event["event_id"]) if event.get("event_id") not in (None, "") else None
            duplicate = 0
            if event_id is not None and test_code is None:
                seen = db.execute(
                    "SELECT 1 FROM capi_events WHERE events_key=? AND event_name=? AND event_id=? "
                    "AND duplicate=0 AND test_code IS NULL AND received>=? LIMIT 1",
                    (key, event["event_name"], event_id, now - DEDUP_WINDOW),
                ).fetchone()
                duplicate = 1 if seen else 0
            db.execute(
                "INSERT INTO capi_events(events_key, event_name, event_id, event_time, received, "
                "action_source, duplicate, test_code, partner_agent, data) VALUES(?,?,?,?,?,?,?,?,?,?)",
                (
                    key,
                    event["event_name"],
                    event_id,
                    float(to_int(event["event_time"]) or 0),
                    now,  # validated: a time
                    event.get("action_source"),
                    duplicate,
                    test_code,
                    partner,
                    json.dumps(event),
                ),
            )
    if test_code is None:
        fresh = ctx.store.get(pixel["id"]) or pixel
        ctx.store.update(pixel["id"], {**fresh, "_last_fired": now}, now=ctx.now)
    return {"events_received": len(batch), "messages": [], "fbtrace_id": new_trace_id()}


def _events_param(ctx: Ctx) -> list[dict]:
    raw = ctx.p.get("data")
    if raw is None or raw == "":
        raise param_error("The parameter data is required", field="data")
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise param_error("Param data must be a JSON array of events", field="data") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise param_error("Param data must be a non-empty array of events", field="data")
    if len(value) > MAX_EVENTS:
        raise param_error(f"Param data has {len(value)} events: at most {MAX_EVENTS} a request", field="data")
    out = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError:
                _bad(index, "data", "The event is not valid JSON.")
        if not isinstance(item, dict):
            _bad(index, "data", "The event must be a JSON object.")
        out.append(item)
    return out


def _bad(index: int, field: str, text: str) -> NoReturn:
    raise GraphError(
        "Invalid parameter",
        100,
        subcode=2804019 if field != "event_time" else 2804003,
        user_title=f"Invalid {field}",
        user_msg=f"Event {index} ({field}): {text} No event of this request was processed.",
        blame=f"data[{index}].{field}",
    )


def _validate(index: int, event: dict, now: float) -> None:
    name = event.get("event_name")
    if not isinstance(name, str) or not name.strip():
        _bad(index, "event_name", "event_name is required.")
    raw_time = event.get("event_time")
    t = to_int(raw_time)
    if t is None:
        _bad(index, "event_time", "event_time is required, as unix seconds.")
    if t < now - MAX_AGE:
        _bad(index, "event_time", "event_time is more than 7 days in the past.")
    if t > now + MAX_FUTURE:
        _bad(index, "event_time", "event_time is in the future.")
    source = event.get("action_source")
    if source not in ACTION_SOURCES:
        _bad(
            index, "action_source", f"action_source is required and must be one of {', '.join(sorted(ACTION_SOURCES))}."
        )
    user = event.get("user_data")
    if not isinstance(user, dict):
        _bad(index, "user_data", "user_data is required (a JSON object).")
    present = False
    for key, value in user.items():
        if key in HASHED:
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str) and HEX64.fullmatch(v) for v in values):
                _bad(index, f"user_data.{key}", f"{key} must be normalized then SHA-256 hashed (64 lowercase hex).")
            present = True
        elif key in RAW:
            if value in (None, "", []) or isinstance(value, (dict, bool)):
                _bad(index, f"user_data.{key}", f"{key} has an empty or malformed value.")
            present = True
    if not present:
        _bad(index, "user_data", "user_data must contain at least one customer information parameter.")
    custom = event.get("custom_data")
    if custom is not None:
        if not isinstance(custom, dict):
            _bad(index, "custom_data", "custom_data must be a JSON object.")
        value = custom.get("value")
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float, str))
            or not re.fullmatch(r"-?\d+(\.\d+)?", str(value))
        ):
            _bad(index, "custom_data.value", "value must be a number.")
        currency = custom.get("currency")
        if (value is not None or currency is not None) and not (
            isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency)
        ):
            _bad(index, "custom_data.currency", "currency must be a three-letter ISO 4217 code when value is given.")


# ---- custom conversions


def render_conversion(ctx: Ctx, c: Obj, names: Sequence[str]) -> dict:
    def value(name: str) -> Any:
        if name.startswith("_"):
            return None
        if name == "creation_time":
            return iso(c.created)
        if name == "pixel":
            return {"id": c["_pixel_id"]} if c.get("_pixel_id") else None
        if name == "event_source_id":
            return c.get("_pixel_id")
        if name == "rule":
            return json.dumps(c["rule"]) if c.get("rule") is not None else None
        if name == "is_archived":
            return False
        return c.get(name)

    return select("CustomConversion", names, ["id"], value)


def create_conversion(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    name = ctx.p.str("name", required=True)
    pixel_id = ctx.p.str("pixel_id") or ctx.p.str("event_source_id")
    if pixel_id:
        pixel = ctx.store.get(pixel_id)
        if pixel is None or pixel.type != "pixel" or pixel.account_id != account["id"]:
            raise param_error(
                f"The pixel {pixel_id} does not belong to the ad account {account['id']}", field="pixel_id"
            )
    event_type = (ctx.p.str("custom_event_type") or "OTHER").upper()
    if event_type not in CONVERSION_EVENT_TYPES:
        raise param_error(
            f"Param custom_event_type must be one of {{{', '.join(sorted(CONVERSION_EVENT_TYPES))}}}",
            field="custom_event_type",
        )
    if ctx.p.get("rule") in (None, ""):
        raise param_error("The parameter rule is required", field="rule")
    rule = ctx.p.json("rule")
    if not isinstance(rule, dict) or not rule:
        raise param_error("Param rule must be a JSON object (a url or parameter rule)", field="rule")
    default_value = ctx.p.get("default_conversion_value")
    if default_value is not None and (
        isinstance(default_value, bool) or not re.fullmatch(r"\d+(\.\d+)?", str(default_value))
    ):
        raise param_error(
            "Param default_conversion_value must be a non-negative number", field="default_conversion_value"
        )
    conversion_id = ctx.store.new_id("customconversion")
    data = {
        "id": conversion_id,
        "account_id": account["id"][4:],
        "name": name,
        "custom_event_type": event_type,
        "rule": rule,
        "description": ctx.p.str("description"),
        "_pixel_id": pixel_id,
        "default_conversion_value": float(default_value) if default_value is not None else 0,
    }
    ctx.store.insert(
        "customconversion", conversion_id, data, account_id=account["id"], parent_id=account["id"], now=ctx.now
    )
    return {"id": conversion_id}


def list_conversions(ctx: Ctx) -> dict:
    account = ctx.load_account(ctx.match[0])
    names = parse_fields(ctx.p.get("fields"))
    select("CustomConversion", names, ["id"], lambda n: None)
    items = sorted(ctx.store.list("customconversion", account_id=account["id"]), key=lambda o: o.seq, reverse=True)
    return paginate(ctx, items, lambda c: render_conversion(ctx, c, names))


def read_conversion(ctx: Ctx, c: Obj) -> dict:
    return render_conversion(ctx, c, parse_fields(ctx.p.get("fields")))


def update_conversion(ctx: Ctx, c: Obj) -> dict:
    changes = {}
    for name in ("name", "description"):
        if name in ctx.p:
            changes[name] = ctx.p.str(name, "")
    ctx.store.update(c["id"], {**c, **changes}, now=ctx.now)
    return {"success": True}


def delete_conversion(ctx: Ctx, c: Obj) -> dict:
    with ctx.store.lock:
        ctx.store.db.execute("DELETE FROM objects WHERE id=?", (c["id"],))
    return {"success": True}

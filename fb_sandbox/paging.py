"""Cursor paging and `filtering=` for edge reads."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from .errors import param_error
from .params import Params, to_int
from .rules import rule
from .store import Obj

MAX_LIMIT = 1000
OPERATORS = {
    "EQUAL",
    "NOT_EQUAL",
    "IN",
    "NOT_IN",
    "CONTAIN",
    "NOT_CONTAIN",
    "ANY",
    "ALL",
    "NONE",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "IN_RANGE",
    "NOT_IN_RANGE",
    "STARTS_WITH",
}


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{seq}".encode()).decode().rstrip("=")


def decode_cursor(value: Any, name: str) -> int:
    try:
        text = base64.urlsafe_b64decode(str(value) + "=" * (-len(str(value)) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix == "cursor" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeError):
        pass
    raise param_error(f"The {name} cursor is invalid", field=name)


def page_limit(p: Params, default: int = 25) -> int:
    limit = p.int("limit", default)
    if limit is None or limit < 0:
        raise param_error("Param limit must be a non-negative integer", field="limit")
    return min(limit or default, MAX_LIMIT)


def _page_url(ctx, **cursor: str) -> str:
    query = {
        k: v if isinstance(v, str) else _json(v)
        for k, v in ctx.call.params.items()
        if k not in ("after", "before", "batch") and v is not None
    }
    query.update(cursor)
    return f"{ctx.call.base_url}/{ctx.call.version}/{ctx.call.path}?{urlencode(query)}"


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def paginate(ctx, items: list[Obj], render: Callable[[Obj], dict], *, default_limit: int = 25) -> dict:
    """`items` in display order; answers one page with Facebook's cursors, next/previous and summary."""
    p: Params = ctx.p
    limit = page_limit(p, default_limit)
    if "after" in p:
        after = decode_cursor(p.get("after"), "after")
        pos = next((i + 1 for i, o in enumerate(items) if o.seq == after), None)
        start = pos if pos is not None else _position_after(items, after)
        page, start_index = items[start : start + limit], start
    elif "before" in p:
        before = decode_cursor(p.get("before"), "before")
        end = next((i for i, o in enumerate(items) if o.seq == before), 0)
        start_index = max(0, end - limit)
        page = items[start_index:end]
    else:
        page, start_index = items[:limit], 0
    out: dict[str, Any] = {"data": [render(o) for o in page]}
    if page:
        paging: dict[str, Any] = {
            "cursors": {"before": encode_cursor(page[0].seq), "after": encode_cursor(page[-1].seq)}
        }
        if start_index + len(page) < len(items):
            paging["next"] = _page_url(ctx, after=paging["cursors"]["after"])
        if start_index > 0:
            paging["previous"] = _page_url(ctx, before=paging["cursors"]["before"])
        out["paging"] = paging
    if _wants_summary(p):
        out["summary"] = {"total_count": len(items)}
    return out


def _position_after(items: list[Obj], seq: int) -> int:
    """When the cursor's object vanished, resume after where it would sort (display order is seq-desc)."""
    for i, obj in enumerate(items):
        if obj.seq < seq:
            return i
    return len(items)


def _wants_summary(p: Params) -> bool:
    value = p.get("summary")
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0")
    return True


# ---- filtering=[{field, operator, value}]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _num(value: Any):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    number = to_int(value)
    if number is None:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return number


def _test(op: str, actual: Any, value: Any) -> bool:
    actual_list = [str(a) for a in _as_list(actual) if a is not None]
    if op in ("EQUAL", "NOT_EQUAL"):
        hit = str(value) in actual_list if isinstance(actual, list) else str(actual) == str(value)
        return hit if op == "EQUAL" else not hit
    if op in ("IN", "NOT_IN", "ANY", "NONE"):
        wanted = {str(v) for v in _as_list(value)}
        hit = bool(wanted & set(actual_list))
        return hit if op in ("IN", "ANY") else not hit
    if op == "ALL":
        return {str(v) for v in _as_list(value)} <= set(actual_list)
    if op in ("CONTAIN", "NOT_CONTAIN", "STARTS_WITH"):
        needle = str(value).lower()
        if op == "STARTS_WITH":
            return any(a.lower().startswith(needle) for a in actual_list)
        hit = any(needle in a.lower() for a in actual_list)
        return hit if op == "CONTAIN" else not hit
    return _compare(op, actual, value)


def _compare(op: str, actual: Any, value: Any) -> bool:
    a = _num(actual)
    if op in ("IN_RANGE", "NOT_IN_RANGE"):
        bounds = _as_list(value)
        lo, hi = (_num(bounds[0]), _num(bounds[-1])) if bounds else (None, None)
        if a is None or lo is None or hi is None:
            return op == "NOT_IN_RANGE"
        return (lo <= a <= hi) == (op == "IN_RANGE")
    b = _num(value)
    if a is None or b is None:
        return False
    return {"GREATER_THAN": a > b, "GREATER_THAN_OR_EQUAL": a >= b, "LESS_THAN": a < b, "LESS_THAN_OR_EQUAL": a <= b}[
        op
    ]


def apply_filtering(
    items: Iterable[Obj], filters: Any, getters: dict[str, Callable[[Obj], Any]], prefix: str
) -> list[Obj]:
    if not isinstance(filters, list):
        raise param_error("Param filtering must be an array of {field, operator, value} objects", field="filtering")
    checks = []
    for i, spec in enumerate(filters):
        if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
            raise param_error(
                f"param filtering[{i}] must be an object with field, operator and value", field="filtering"
            )
        field = spec["field"].removeprefix(prefix + ".")
        op = spec.get("operator")
        if op not in OPERATORS:
            raise param_error(
                f"param filtering[{i}]['operator'] must be one of {{{', '.join(sorted(OPERATORS))}}}", field="filtering"
            )
        if field not in getters:
            raise param_error(
                f"Filtering field '{spec['field']}' with operation '{op}' is not supported", field="filtering"
            )
        checks.append((getters[field], op, spec.get("value")))
    return [o for o in items if all(_test(op, get(o), value) for get, op, value in checks)]


rule(
    "paging.cursors",
    "Edges page with cursors: `paging.cursors.before/after`, `next`/`previous` full URLs only when "
    "there is a page there, `limit` (default 25), `summary=true` adds `summary.total_count`",
    source="https://developers.facebook.com/docs/graph-api/results",
    since="any",
    verified=True,
    area="edges",
)

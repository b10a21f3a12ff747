"""Graph batch: items run through the same `execute` as direct calls, with names, depends_on and
{result=name:$.path} references."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .context import Ctx, GraphCall, GraphResult
from .errors import GraphError, param_error

MAX_BATCH = 50
REF_RE = re.compile(r"\{result=([^:}]+):(\$[^}]*)\}")
VERSION_RE = re.compile(r"v\d+\.\d+/?")


class Unresolved(Exception):
    pass


def jsonpath(doc: Any, path: str) -> list[Any]:
    """The small JSONPath subset Facebook documents: $.a.b, $.data.*.id, $.data[0].id, $.data.0.id."""
    tokens = re.findall(r"\.?([^.\[\]]+)|\[(\d+|\*)\]", path[1:])
    values = [doc]
    for name, index in tokens:
        key = name or index
        nxt = []
        for value in values:
            if key == "*":
                nxt.extend(
                    value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else []
                )
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                nxt.append(value[int(key)])
            elif isinstance(value, dict) and key in value:
                nxt.append(value[key])
        values = nxt
    return values


def substitute(text: str, results: dict[str, Any]) -> str:
    def replace(match: re.Match) -> str:
        name, path = match.group(1), match.group(2)
        if name not in results:
            raise Unresolved(name)
        values = jsonpath(results[name], path)
        if not values:
            raise Unresolved(f"{name}:{path}")
        return ",".join(v if isinstance(v, str) else json.dumps(v) for v in values)

    return REF_RE.sub(replace, text)


def references(item: Any) -> set[str]:
    if not isinstance(item, dict):
        return set()
    text = json.dumps([item.get("relative_url"), item.get("body")])
    names = {m.group(1) for m in REF_RE.finditer(text)}
    if isinstance(item.get("depends_on"), str):
        names.add(item["depends_on"])
    return names


def _item_error(message: str) -> GraphResult:
    err = param_error(message)
    return GraphResult(400, err.body(), {})


def _build_call(ctx: Ctx, item: dict, results: dict[str, Any]) -> GraphCall:
    method = str(item.get("method", "GET")).upper()
    url = item.get("relative_url")
    if method not in ("GET", "POST", "DELETE") or not isinstance(url, str):
        raise ValueError("each batch item needs a method (GET, POST or DELETE) and a relative_url string")
    url = substitute(url, results)
    parts = urlsplit(url.lstrip("/"))
    path = VERSION_RE.sub("", parts.path, count=1) if VERSION_RE.match(parts.path) else parts.path
    params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    body = item.get("body")
    if isinstance(body, str):
        params.update(parse_qsl(substitute(body, results), keep_blank_values=True))
    elif isinstance(body, dict):
        params.update({k: substitute(v, results) if isinstance(v, str) else v for k, v in body.items()})
    elif body is not None:
        raise ValueError("a batch item's body must be a form-encoded string")
    for inherited in ("access_token", "appsecret_proof"):
        if inherited not in params and inherited in ctx.call.params:
            params[inherited] = ctx.call.params[inherited]
    return GraphCall(method, path.strip("/"), params, ctx.call.authorization, ctx.call.base_url, ctx.call.version)


def _run_item(ctx: Ctx, item: Any, results: dict[str, Any], failed: set[str], execute: Callable) -> GraphResult | None:
    if not isinstance(item, dict):
        return _item_error("Each batch item must be a JSON object")
    parent = item.get("depends_on")
    if parent is not None and (not isinstance(parent, str) or parent in failed or parent not in results):
        return None
    try:
        call = _build_call(ctx, item, results)
    except Unresolved as exc:
        return _item_error(f"Cannot resolve batch reference {{result={exc}}}")
    except ValueError as exc:
        return _item_error(str(exc))
    faults = ctx.sb.faults
    fault = faults.take(call.method, call.path, "before", item=True)
    if fault is not None:
        return None if fault.kind == "batch_null" else GraphResult(fault.error().http_status, fault.error().body(), {})
    result = execute(ctx.sb, call)
    fault = faults.take(call.method, call.path, "after", item=True)
    if fault is not None:
        return None if fault.kind == "batch_null" else GraphResult(fault.error().http_status, fault.error().body(), {})
    return result


def _encode(result: GraphResult, include_headers: bool) -> dict:
    out: dict[str, Any] = {"code": result.status}
    if include_headers:
        headers = {"Content-Type": "application/json; charset=UTF-8", **result.headers}
        out["headers"] = [{"name": k, "value": v} for k, v in headers.items()]
    out["body"] = json.dumps(result.body, separators=(",", ":"), ensure_ascii=False)
    return out


def run_batch(ctx: Ctx, execute: Callable) -> list:
    items = ctx.p.json("batch")
    if items is None:
        raise param_error("The parameter batch is required", field="batch")
    if not isinstance(items, list):
        raise param_error("Param batch must be a JSON array of requests", field="batch")
    if len(items) > MAX_BATCH:
        raise GraphError("Too many requests in batch message. Maximum batch size is 50", 100)
    if not items:
        raise param_error("The batch must contain at least one request", field="batch")
    include_headers = ctx.p.bool("include_headers", True)
    referenced = set().union(*(references(i) for i in items))
    results: dict[str, Any] = {}
    failed: set[str] = set()
    out: list = []
    for item in items:
        result = _run_item(ctx, item, results, failed, execute)
        name = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
        if name and result is not None and result.status == 200:
            results[name] = result.body
        elif name:
            failed.add(name)
        omit = isinstance(item, dict) and item.get("omit_response_on_success") not in (False, "false", 0)
        if name and result is not None and result.status == 200 and name in referenced and omit:
            out.append(None)
        else:
            out.append(None if result is None else _encode(result, include_headers))
    return out


# ---- asynchronous batch (POST act_x/async_batch_requests): an "old" app's legacy feature (legacy.py) --------------
# Meta's "Ad Account Async Batch Requests" reference: `adbatch` (list of {name, relative_url, body}, required) and
# `name` (required); answers {"id"} of an async request set, read with GET /{id} (fields id, owner_id, name,
# is_completed, total_count, success_count, error_count…; "Asynchronous and Batch Requests",
# https://developers.facebook.com/documentation/ads-commerce/marketing-api/asyncrequests.md). The sandbox runs the
# requests at once (they are complete when the set is read).
ASYNC_SET_DEFAULT = ["id", "owner_id", "name", "is_completed"]
ASYNC_SET_FIELDS = ASYNC_SET_DEFAULT + [
    "total_count",
    "initial_count",
    "in_progress_count",
    "success_count",
    "error_count",
    "canceled_count",
]


def run_async_batch(ctx: Ctx, execute: Callable) -> dict:
    act = ctx.load_account(ctx.match[0])
    name = ctx.p.str("name", required=True)
    items = ctx.p.json("adbatch")
    if not isinstance(items, list) or not items:
        raise GraphError("(#194) Missing at least one required parameter: adbatch", 194)
    ok = errors = 0
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("relative_url"), str):
            raise param_error("Each adbatch item needs a name, a relative_url and a body", field="adbatch")
        try:
            call = _build_call(ctx, {"method": "POST", **item}, {})
        except (Unresolved, ValueError) as exc:
            raise param_error(str(exc), field="adbatch") from None
        result = execute(ctx.sb, call)
        ok, errors = ok + (result.status == 200), errors + (result.status != 200)
    set_id = ctx.store.new_id("asyncrequestset")
    data = {
        "id": set_id,
        "owner_id": act["account_id"],
        "name": name,
        "is_completed": True,
        "total_count": len(items),
        "initial_count": 0,
        "in_progress_count": 0,
        "success_count": ok,
        "error_count": errors,
        "canceled_count": 0,
    }
    ctx.store.insert("asyncrequestset", set_id, data, parent_id=act["id"], account_id=act["id"], now=ctx.now)
    return {"id": set_id}


def read_async_set(ctx: Ctx, obj) -> dict:
    from .fields import parse_fields

    requested = parse_fields(ctx.p.get("fields")) or ASYNC_SET_DEFAULT
    unknown = [f for f in requested if f not in ASYNC_SET_FIELDS]
    if unknown:
        raise param_error(f"Tried accessing nonexisting field ({unknown[0]}) on node type (AdAsyncRequestSet)")
    return {f: obj[f] for f in ["id", *requested] if f in obj}

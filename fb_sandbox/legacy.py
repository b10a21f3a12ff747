"""Legacy Graph features Meta blocks for new apps, and the record of requests that used a forbidden thing.

Rule: "Introducing Graph API v27.0 and Marketing API v27.0" (Meta developer blog, 2026-11-04,
https://developers.facebook.com/blog/post/2026/11/04/introducing-graph-api-v27-and-marketing-api-v27/): from
November 4, 2026, on all Graph API versions, new apps cannot use multi-ID requests, date/time formatting, HTTP method
override, field aliases, JSONP callbacks or asynchronous batch requests; existing apps keep them (until v28.0).
Verified (rule). The parameter names below are our mapping of those features (inferred):
- multi-ID: GET /?ids=a,b (Graph API "Multiple ID Read Requests");
- date_format: the `date_format` parameter;
- method override: an HTTP POST carrying `method=GET|DELETE`;
- field aliases: `fields=name.as(title)`;
- JSONP: the `callback` parameter;
- asynchronous batch: POST /act_{id}/async_batch_requests (`adbatch`, `name`), Meta's "Ad Account Async Batch
  Requests" reference https://developers.facebook.com/documentation/ads-commerce/marketing-api/reference/ad-account/async_batch_requests.md
  (synchronous `batch=` stays allowed).
"New app" = created on or after the cutoff (Meta does not say how it decides: unverified). The error Meta returns is
not documented: the sandbox answers Graph's "deprecated API" code 12 in the shape Graph used for earlier blocked
features ("(#12) fql is deprecated for versions v2.1 and higher", https://github.com/jgorset/facepy/issues/152;
"(#12) singular statuses API is deprecated for versions v2.4 and higher",
https://github.com/node-facebook/facebook-node-sdk/issues/85) — code and text unverified.

The record: every request that carries a legacy feature, `standard_enhancements` inside a creative's
`degrees_of_freedom_spec` (refused by Meta on POST since 2026, docs/creative_rules.md) or `explore` in
`instagram_positions` (placement removed in v26) is counted in /__sandbox/stats ("forbidden") and, when the
environment names a file in FB_SANDBOX_FORBIDDEN_LOG, appended to it as one JSON line (the test suite's proof that the
product never sends one; tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any

from .errors import GraphError, param_error
from .rules import rule

LEGACY_CUTOFF = datetime(2026, 11, 4, tzinfo=UTC).timestamp()
LEGACY_SOURCE = "https://developers.facebook.com/blog/post/2026/11/04/introducing-graph-api-v27-and-marketing-api-v27/"
LEGACY = {
    "multi_id": "Multi-ID request (ids)",
    "method_override": "HTTP method override (method)",
    "field_alias": "Field alias (.as())",
    "date_format": "Date formatting (date_format)",
    "jsonp": "JSONP callback (callback)",
    "async_batch": "Asynchronous batch request (async_batch_requests)",
}
CONTENT = ("standard_enhancements", "instagram_explore")
LOG_ENV = "FB_SANDBOX_FORBIDDEN_LOG"
for _feature, _words in LEGACY.items():
    rule(
        f"legacy.{_feature}",
        f"{_words}: refused with (#12) for apps created on or after 2026-11-04; an older app "
        "still gets it (the error code and text, and what makes an app 'new', are unverified)",
        source=LEGACY_SOURCE,
        since="2026-11-04 (all versions)",
        verified=True,
        area="legacy features",
    )
ALIAS_RE = re.compile(r"\.as\(([^()]*)\)")
ASYNC_BATCH_RE = re.compile(r"act_\d+/async_batch_requests")
CALLBACK_RE = re.compile(r"[A-Za-z_$][\w$.]{0,99}")


def legacy_features(call: Any) -> list[str]:
    """The legacy features one Graph call uses (direct or a batch item)."""
    params, found = call.params, []
    if call.method == "GET" and call.path == "" and "ids" in params:
        found.append("multi_id")
    if getattr(call, "method_override", False):
        found.append("method_override")
    if isinstance(params.get("fields"), str) and ALIAS_RE.search(params["fields"]):
        found.append("field_alias")
    if "date_format" in params:
        found.append("date_format")
    if "callback" in params:
        found.append("jsonp")
    if call.method == "POST" and ASYNC_BATCH_RE.fullmatch(call.path):
        found.append("async_batch")
    return found


def _walk(value: Any, found: set[str], inside_dof: bool = False) -> None:
    if isinstance(value, str):
        if "standard_enhancements" in value or "explore" in value:
            try:
                parsed = json.loads(value)
            except ValueError:
                return
            if not isinstance(parsed, str):
                _walk(parsed, found, inside_dof)
        return
    if isinstance(value, list):
        for item in value:
            _walk(item, found, inside_dof)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if inside_dof and key == "standard_enhancements":
            found.add("standard_enhancements")
        if key == "instagram_positions" and "explore" in (
            item if isinstance(item, list) else _maybe_json(item) if isinstance(item, str) else []
        ):
            found.add("instagram_explore")
        _walk(item, found, inside_dof or key == "degrees_of_freedom_spec")


def _maybe_json(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return [p.strip() for p in text.split(",")]
    return value if isinstance(value, list) else []


def forbidden_content(params: dict) -> list[str]:
    """`standard_enhancements` in a degrees_of_freedom_spec, `explore` in instagram_positions, anywhere in the
    parameters (JSON strings included)."""
    found: set[str] = set()
    for key, value in params.items():
        if key in ("access_token", "appsecret_proof"):
            continue
        _walk({key: value}, found)
    return sorted(found)


def is_new_app(created: float) -> bool:
    return created >= LEGACY_CUTOFF


def refusal(feature: str) -> GraphError:
    """Meta's answer to a new app using a legacy feature (code 12, unverified: see the module docstring)."""
    return GraphError(f"(#12) {LEGACY[feature]} is deprecated for apps created after November 4, 2026", 12)


def record(sb: Any, call: Any, features: list[str], *, app_id: str | None, new_app: bool | None) -> None:
    """Count the request in the stats and, when FB_SANDBOX_FORBIDDEN_LOG names a file, append one JSON line."""
    sb.stats.forbid(features, app_id)
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    line = {
        "features": features,
        "method": call.method,
        "path": call.path,
        "app_id": app_id,
        "new_app": new_app,
        "version": call.version,
    }
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(line, separators=(",", ":")) + "\n")


# ---- what an "old" app still gets ---------------------------------------------------------------------------------


def strip_aliases(params: dict) -> dict[str, str]:
    """Remove `.as(alias)` from `fields` in place; returns field -> alias for the top-level fields."""
    fields = params.get("fields")
    if not isinstance(fields, str):
        return {}
    aliases: dict[str, str] = {}
    for part in _top_level(fields):
        match = ALIAS_RE.search(part)
        if match:
            name = ALIAS_RE.sub("", part).split("{")[0].split(".")[0].strip()
            aliases[name] = match.group(1).strip()
    params["fields"] = ALIAS_RE.sub("", fields)
    return aliases


def _top_level(fields: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(fields):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(fields[start:i])
            start = i + 1
    parts.append(fields[start:])
    return parts


def apply_aliases(body: Any, aliases: dict[str, str]) -> Any:
    if not aliases or not isinstance(body, dict):
        return body
    if isinstance(body.get("data"), list):
        return {**body, "data": [apply_aliases(item, aliases) for item in body["data"]]}
    return {aliases.get(k, k): v for k, v in body.items()}


_PHP = {"Y": "%Y", "m": "%m", "d": "%d", "H": "%H", "i": "%M", "s": "%S", "y": "%y", "D": "%a", "M": "%b"}
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}")


def apply_date_format(body: Any, fmt: str) -> Any:
    """date_format (PHP date() letters; the subset Y m d H i s y D M U) applied to every time string in the answer."""
    if isinstance(body, list):
        return [apply_date_format(v, fmt) for v in body]
    if isinstance(body, dict):
        return {k: apply_date_format(v, fmt) for k, v in body.items()}
    if isinstance(body, str) and _TIME_RE.fullmatch(body):
        moment = datetime.strptime(body, "%Y-%m-%dT%H:%M:%S%z")
        if fmt == "U":
            return int(moment.timestamp())
        return "".join(moment.strftime(_PHP[ch]) if ch in _PHP else ch for ch in fmt)
    return body


def check_callback(name: Any) -> str:
    if not isinstance(name, str) or not CALLBACK_RE.fullmatch(name):
        raise param_error("Invalid callback name", field="callback")
    return name

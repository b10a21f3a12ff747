"""Count-based fault injection: each matching request consumes one use of the first matching fault."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import GraphError

TRANSPORT_KINDS = {"unavailable", "delay", "timeout", "drop"}
RESPONSE_KINDS = {"http_500", "error", "throttle", "token_expired"}
ITEM_KINDS = {"batch_null"}
MEDIA_KINDS = {"video_chunk"}  # consumed by media.py: a transfer refused with 1363037 + resume offsets
KINDS = TRANSPORT_KINDS | RESPONSE_KINDS | ITEM_KINDS | MEDIA_KINDS
METHODS = {"*", "GET", "POST", "DELETE"}


class FaultSpecError(ValueError):
    pass


@dataclass
class Fault:
    id: str
    kind: str
    count: int
    method: str = "*"
    path: str | None = None
    when: str = "before"
    options: dict[str, Any] = field(default_factory=dict)
    skip: int = 0  # matching requests let through before the fault starts answering

    def matches(self, method: str, path: str, when: str) -> bool:
        if self.count <= 0 or self.when != when:
            return False
        if self.method != "*" and self.method != method:
            return False
        return self.path is None or re.search(self.path, path) is not None

    def describe(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "count": self.count,
            "remaining": self.count,
            "method": self.method,
            "path": self.path,
            "when": self.when,
            "skip": self.skip,
            **self.options,
        }

    def error(self) -> GraphError:
        """The Graph error a response-kind fault answers."""
        o = self.options
        if self.kind == "http_500":
            return GraphError("An unknown error has occurred.", 1, subcode=99, is_transient=True, http_status=500)
        if self.kind == "token_expired":
            return GraphError(
                "Error validating access token: Session has expired on Monday, 01-Jan-24 "
                "00:00:00 UTC. The current time is later.",
                190,
                subcode=463,
            )
        if self.kind == "throttle":
            return GraphError(
                o.get("message") or "There have been too many calls to this ad-account. Wait a bit and try again.",
                int(o.get("code", 80004)),
                subcode=int(o.get("error_subcode", 2446079)),
                is_transient=True,
            )
        data = o.get("error_data")
        if data is None and o.get("blame_field"):
            data = {"blame_field_specs": [[o["blame_field"]]]}
        return GraphError(
            o.get("message", "(#100) Invalid parameter"),
            int(o.get("code", 100)),
            type=o.get("type", "OAuthException"),
            subcode=o.get("error_subcode"),
            user_title=o.get("error_user_title"),
            user_msg=o.get("error_user_msg"),
            is_transient=bool(o.get("is_transient", False)),
            http_status=int(o.get("http_status", 400)),
            error_data=data,
        )


def _int_option(spec: dict, name: str, default: int, low: int, high: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultSpecError(f"{name} must be an integer in [{low}, {high}]")
    return value


def _validate_error_options(options: dict) -> None:
    for name in ("code", "error_subcode"):
        if name in options and (isinstance(options[name], bool) or not isinstance(options[name], int)):
            raise FaultSpecError(f"{name} must be an integer")
    if "http_status" in options:
        _int_option(options, "http_status", 400, 200, 599)
    for name in ("message", "type", "error_user_title", "error_user_msg", "blame_field"):
        if name in options and not isinstance(options[name], str):
            raise FaultSpecError(f"{name} must be a string")


class Faults:
    def __init__(self) -> None:
        self.pending: list[Fault] = []
        self._ids = itertools.count(1)

    def clear(self) -> None:
        self.pending.clear()

    def add(self, spec: Any) -> Fault:
        if not isinstance(spec, dict):
            raise FaultSpecError("body must be a JSON object")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise FaultSpecError(f"kind must be one of {sorted(KINDS)}")
        method = str(spec.get("method", "*")).upper()
        if method not in METHODS:
            raise FaultSpecError(f"method must be one of {sorted(METHODS)}")
        when = spec.get("when", "before")
        if when not in ("before", "after"):
            raise FaultSpecError("when must be 'before' or 'after'")
        path = spec.get("path")
        if path is not None:
            if not isinstance(path, str):
                raise FaultSpecError("path must be a regular expression string")
            try:
                re.compile(path)
            except re.error as exc:
                raise FaultSpecError(f"path is not a valid regular expression: {exc}") from None
        count = _int_option(spec, "count", 1, 1, 10**6)
        skip = _int_option(spec, "skip", 0, 0, 10**6)
        options = {k: v for k, v in spec.items() if k not in ("kind", "count", "method", "path", "when", "skip")}
        if kind in ("delay", "timeout"):
            options["delay_ms"] = _int_option(spec, "delay_ms", 30000 if kind == "timeout" else 1000, 0, 600000)
        if kind == "throttle":
            options["minutes"] = _int_option(spec, "minutes", 1, 0, 1440)
        if kind == "error":
            _validate_error_options(options)
        fault = Fault(f"fault_{next(self._ids)}", kind, count, method, path, when, options, skip)
        self.pending.append(fault)
        return fault

    def take(self, method: str, path: str, when: str, *, item: bool = False) -> Fault | None:
        kinds = (ITEM_KINDS | RESPONSE_KINDS) if item else (TRANSPORT_KINDS | RESPONSE_KINDS)
        for fault in self.pending:
            if fault.kind in kinds and fault.matches(method, path, when):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault
        return None

    def take_media(self, kind: str, method: str, path: str, when: str) -> Fault | None:
        """Consume one use of the first pending fault of this handler-level kind (e.g. video_chunk)."""
        for fault in self.pending:
            if fault.kind == kind and fault.matches(method, path, when):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault
        return None

    def describe(self) -> list[dict]:
        return [f.describe() for f in self.pending]

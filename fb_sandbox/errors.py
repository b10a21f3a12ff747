"""Facebook-shaped errors: one exception type, rendered as Graph error bodies."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from .rules import rule

_TRACE_ALPHABET = string.ascii_letters + string.digits


def new_trace_id() -> str:
    """An fbtrace_id-like token (Facebook's are 23 url-safe characters today)."""
    return "A" + "".join(secrets.choice(_TRACE_ALPHABET) for _ in range(22))


def shows_is_transient(code: int, subcode: int | None) -> bool:
    """Marketing API validation and rate-limit errors carry is_transient; token, lookup and BUC errors do not."""
    return not (code in (104, 190, 2500) or 80000 <= code <= 80014 or (code == 100 and subcode == 33))


class GraphError(Exception):
    """An error the sandbox answers the way Facebook would."""

    def __init__(
        self,
        message: str,
        code: int = 100,
        *,
        type: str = "OAuthException",
        subcode: int | None = None,
        user_title: str | None = None,
        user_msg: str | None = None,
        blame: str | list[str] | None = None,
        is_transient: bool = False,
        http_status: int = 400,
        error_data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.type = type
        self.subcode = subcode
        self.user_title = user_title
        self.user_msg = user_msg
        self.blame = [blame] if isinstance(blame, str) else blame
        self.is_transient = is_transient
        self.http_status = http_status
        self.error_data = error_data
        self.headers = headers or {}

    def body(self, trace_id: str | None = None) -> dict:
        err: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        if shows_is_transient(self.code, self.subcode):
            err["is_transient"] = bool(self.is_transient)
        if self.user_title:
            err["error_user_title"] = self.user_title
        if self.user_msg:
            err["error_user_msg"] = self.user_msg
        data = self.error_data
        if data is None and self.blame:
            data = {"blame_field_specs": [self.blame]}
        if data is not None:
            err["error_data"] = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        err["fbtrace_id"] = trace_id or new_trace_id()
        return {"error": err}


def param_error(
    message: str,
    *,
    field: str | None = None,
    subcode: int | None = None,
    title: str | None = None,
    user_msg: str | None = None,
) -> GraphError:
    """Code 100 invalid parameter, with Facebook's "(#100) " prefix."""
    text = message if message.startswith("(#") else f"(#100) {message}"
    if title is None and user_msg is None:
        return GraphError(text, 100, subcode=subcode, blame=field)
    return GraphError(
        "Invalid parameter", 100, subcode=subcode, user_title=title, user_msg=user_msg or message, blame=field
    )


def not_found(object_id: str) -> GraphError:
    """An object that does not exist or that this token may not see (another user's: one workspace's objects seen with
    another's token): error 100, subcode 33, the same words for both, so the answer tells nothing of what exists.
    Source: https://developers.facebook.com/docs/graph-api/guides/error-handling/ (all versions: the error shape, code
    100); the message and subcode 33 are those of Facebook's answers, not listed in the guide (unverified there)."""
    return GraphError(
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation. Please read the Graph API "
        "documentation at https://developers.facebook.com/docs/graph-api",
        100,
        type="GraphMethodException",
        subcode=33,
    )


def unsupported(method: str, object_id: str) -> GraphError:
    verb = method.lower()
    return GraphError(
        f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation. Please read the Graph API "
        "documentation at https://developers.facebook.com/docs/graph-api",
        100,
        type="GraphMethodException",
        subcode=33,
    )


def unknown_path(path: str) -> GraphError:
    return GraphError(f"Unknown path components: /{path}", 2500)


def unknown_field(field: str, node_type: str) -> GraphError:
    return GraphError(f"(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})", 100)


def internal_error() -> GraphError:
    return GraphError("An unknown error has occurred.", 1, subcode=99, is_transient=True, http_status=500)


rule(
    "errors.body",
    'Error bodies `{"error": {message, type, code, error_subcode, is_transient, error_user_title, '
    "error_user_msg, error_data, fbtrace_id}}`; is_transient shown on Marketing API validation and rate-limit errors",
    source="https://developers.facebook.com/docs/graph-api/guides/error-handling/",
    since="any",
    verified=True,
    area="errors",
)
rule(
    "errors.unknown_path",
    "A path that is no node or edge answers `(#2500) Unknown path components: /x`",
    source="https://developers.facebook.com/docs/graph-api/guides/error-handling/",
    since="any",
    verified=False,
    area="errors",
)
rule(
    "errors.unsupported_get",
    "A node the caller cannot see, or a method a node does not support, answers 100/33 "
    "`Unsupported get request. Object with ID 'x' does not exist...` (GraphMethodException)",
    source="https://developers.facebook.com/docs/graph-api/guides/error-handling/",
    since="any",
    verified=True,
    area="errors",
)
rule(
    "errors.nonexisting_field",
    "A name that is neither a field nor an edge of the node answers `(#100) Tried "
    "accessing nonexisting field (x) on node type (Node)`",
    source="https://developers.facebook.com/docs/graph-api/guides/error-handling/",
    since="any",
    verified=False,
    area="errors",
)

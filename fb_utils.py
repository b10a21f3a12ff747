"""The shared Facebook layer: Graph client, errors, rate limiting, pagination, batch, money, logging, op contract.

Error tree (one function, ``error_from_response``, turns a Graph answer into one of these)::

    FacebookError                     base: kind, message, fix, code, error_subcode, fbtrace_id, blame_field, ...
    ├── ValidationError               kind=validation: our own checks failed before any request was sent
    ├── AuthError                     kind=auth: token invalid or expired (190 and friends): reconnect
    ├── PermissionDeniedError         kind=permission: a permission is missing (10, 200-299, 272, 294)
    ├── RateLimitError                kind=rate_limit: throttled (4, 17, 32, 613, 80000-80014); retry_after set
    ├── NotFoundError                 kind=not_found: object missing or not visible (100/33, 803)
    ├── GraphError                    kind=facebook: anything else Facebook refused, with its user title/message
    ├── NetworkError                  kind=network: connection failed, timed out or the answer was lost
    └── ConfirmationRequired          kind=confirmation_required: the safety gate wants a confirmation id

Nothing outside ``error_from_response`` reads error JSON.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel

# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


class FacebookError(Exception):
    """Base of every failure that reaches a person or an LLM as one line: ``ERROR <kind>: ... Fix: ...``."""

    kind = "facebook"
    default_fix = "Check the request against the Marketing API documentation and try again."

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        http_status: int | None = None,
        code: int | None = None,
        error_subcode: int | None = None,
        fbtrace_id: str | None = None,
        blame_field: str | None = None,
        user_title: str | None = None,
        user_message: str | None = None,
        retry_after: float | None = None,
        is_transient: bool = False,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix or self.default_fix
        self.http_status = http_status
        self.code = code
        self.error_subcode = error_subcode
        self.fbtrace_id = fbtrace_id
        self.blame_field = blame_field
        self.user_title = user_title
        self.user_message = user_message
        self.retry_after = retry_after
        self.is_transient = is_transient
        self.data = data or {}

    @property
    def retryable(self) -> bool:
        return self.is_transient or self.retry_after is not None

    def to_text(self) -> str:
        """The one line shown to people and LLMs."""
        message = self.message.rstrip(". ")
        if self.blame_field and self.blame_field not in message:
            message += f" (field: {self.blame_field})"
        return f"ERROR {self.kind}: {message}. Fix: {self.fix.rstrip('.')}."

    def to_data(self) -> dict[str, Any]:
        """Machine-readable details for ``OpResult.data``."""
        out: dict[str, Any] = {"error": self.kind, "message": self.message, "fix": self.fix, "retryable": self.retryable}
        for name in ("code", "error_subcode", "fbtrace_id", "blame_field", "user_title", "user_message", "retry_after", "http_status"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.data)
        return out

    def __str__(self) -> str:
        return self.to_text()


class ValidationError(FacebookError):
    """Our own checks refused the arguments before anything was sent."""

    kind = "validation"
    default_fix = "Correct the argument and call again; `help` with this op shows its schema."


class AuthError(FacebookError):
    """The access token is invalid, expired or revoked (code 190 and related)."""

    kind = "auth"
    default_fix = "Reconnect Facebook (/connect) or set a fresh token, then retry."


class PermissionDeniedError(FacebookError):
    """The token lacks a permission or the user lacks a role on the object."""

    kind = "permission"
    default_fix = "Grant the missing permission (reconnect with ads_management) or ask an admin for access to this object."


class RateLimitError(FacebookError):
    """Facebook throttled the app, user, page or ad account; ``retry_after`` says when to try again."""

    kind = "rate_limit"
    default_fix = "Wait before retrying; fewer or batched calls help."


class NotFoundError(FacebookError):
    """The object does not exist or this token cannot see it."""

    kind = "not_found"
    default_fix = "Check the id (list the objects to find it) and that this ad account is the one selected."


class GraphError(FacebookError):
    """Facebook refused the request for any other reason; its own title and message are kept."""

    kind = "facebook"


class NetworkError(FacebookError):
    """The request did not complete: connection refused, timed out, dropped, or a 5xx with no usable body."""

    kind = "network"
    default_fix = "Check connectivity to the Graph API (ADMONSTER_GRAPH_URL) and retry; reads are retried automatically."


class ConfirmationRequired(FacebookError):
    """The safety gate holds a spend op until it is called again with ``confirm`` set to the given id."""

    kind = "confirmation_required"
    default_fix = "Review the preview, then call again with confirm set to the confirmation id."


# ---------------------------------------------------------------------------------------------------------------
# The op contract
# ---------------------------------------------------------------------------------------------------------------


class OpKind(str, Enum):
    """How much an op can change: read nothing, write without raising spend, or spend."""

    READ = "read"
    WRITE = "write"
    SPEND = "spend"


@dataclass
class OpResult:
    """What every op answers: short exact text for a person or an LLM, JSON data for programs, optional files."""

    text: str
    data: Any = None
    files: list[str] = field(default_factory=list)
    ok: bool = True

    @classmethod
    def from_error(cls, error: FacebookError) -> "OpResult":
        return cls(text=error.to_text(), data=error.to_data(), ok=False)


@dataclass(frozen=True)
class GraphRequest:
    """One Graph API request, as sent or as it would be sent (dry_run shows these)."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.method} /{self.path.lstrip('/')}" + (f" {{{shown}}}" if shown else "")

    def to_data(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "params": self.params}


@dataclass
class Change:
    """One field of one object that a write will change; the gate, the audit log and undo read these."""

    object_id: str | None
    object_type: str
    object_name: str
    field: str
    before: Any
    after: Any
    currency: str | None = None


@dataclass
class WritePlan:
    """What a write or spend op intends to do. The safety gate in fi_facebook decides whether and when to run it.

    ``requests`` are the Graph requests ``execute`` will send (shown by dry_run); ``validate`` sends the same
    requests with ``execution_options=["validate_only"]`` where Facebook supports that.
    """

    summary: str
    ad_account_id: str | None
    requests: list[GraphRequest]
    changes: list[Change]
    execute: Callable[[], Awaitable[OpResult]]
    validate: Callable[[], Awaitable[Any]] | None = None
    currency: str | None = None


@dataclass
class OpContext:
    """Everything an op handler may use: the Graph client and the workspace's current selections."""

    graph: "GraphClient"
    workspace: str = "default"
    interface: str = "api"
    ad_account_id: str | None = None
    page_id: str | None = None
    instagram_account_id: str | None = None

    def require_ad_account(self, explicit: str | None = None) -> str:
        """The ad account an op works on: the one passed, else the selected one."""
        account = explicit or self.ad_account_id
        if not account:
            raise ValidationError(
                "No ad account given and none selected",
                fix="Pass ad_account_id (e.g. act_123) or select one with /use act_123; /accounts lists them",
                blame_field="ad_account_id",
            )
        return normalize_ad_account_id(account)


OpHandler = Callable[[OpContext, BaseModel], Awaitable["OpResult | WritePlan"]]


@dataclass(frozen=True)
class OpSpec:
    """One op as declared by its module: name, kind, argument model, handler, hints for MCP."""

    name: str
    module: str
    kind: OpKind
    args_model: type[BaseModel]
    handler: OpHandler
    summary: str
    destructive: bool = False
    idempotent: bool = False
    example: dict[str, Any] | None = None

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.args_model.__doc__ or self.summary)


class OpSet:
    """The ops one module declares; ``@ops.op(kind=...)`` registers a handler typed ``(ctx, args: Model)``."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.specs: dict[str, OpSpec] = {}

    def op(
        self,
        kind: OpKind,
        *,
        name: str | None = None,
        destructive: bool = False,
        idempotent: bool = False,
        example: dict[str, Any] | None = None,
    ) -> Callable[[OpHandler], OpHandler]:
        def register(handler: OpHandler) -> OpHandler:
            op_name = name or handler.__name__
            if op_name in self.specs:
                raise ValueError(f"op {op_name!r} declared twice in {self.module}")
            args_model = _args_model_of(handler)
            summary = (inspect.cleandoc(args_model.__doc__ or "").splitlines() or [op_name])[0]
            self.specs[op_name] = OpSpec(
                name=op_name,
                module=self.module,
                kind=kind,
                args_model=args_model,
                handler=handler,
                summary=summary,
                destructive=destructive,
                idempotent=idempotent or kind is OpKind.READ,
                example=example,
            )
            return handler

        return register

    def __iter__(self):
        return iter(self.specs.values())


def _args_model_of(handler: OpHandler) -> type[BaseModel]:
    hints = inspect.get_annotations(handler, eval_str=True)
    params = list(inspect.signature(handler).parameters)
    model = hints.get(params[1]) if len(params) > 1 else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"op handler {handler.__name__} must annotate its second parameter with a pydantic model")
    return model


# ---------------------------------------------------------------------------------------------------------------
# Ids and tags
# ---------------------------------------------------------------------------------------------------------------

_AD_ACCOUNT_RE = re.compile(r"^(act_)?(\d{1,20})$")
_OBJECT_ID_RE = re.compile(r"^\d{1,25}$")


def normalize_ad_account_id(value: str) -> str:
    """'123' or 'act_123' -> 'act_123'; anything else is a validation error."""
    match = _AD_ACCOUNT_RE.match(str(value).strip())
    if not match:
        raise ValidationError(
            f"{value!r} is not an ad account id",
            fix="Use the form act_<digits>, e.g. act_1234567890; /accounts lists yours",
            blame_field="ad_account_id",
        )
    return f"act_{match.group(2)}"


def check_object_id(value: str, field_name: str = "id") -> str:
    """A Graph object id is a string of digits."""
    text = str(value).strip()
    if not _OBJECT_ID_RE.match(text):
        raise ValidationError(
            f"{value!r} is not a valid {field_name}",
            fix=f"Pass the numeric id ({field_name}), e.g. 120210000000000001; list the objects to find it",
            blame_field=field_name,
        )
    return text


def new_client_tag() -> str:
    """A tag made once per create, so a lookup after an ambiguous failure finds exactly the object it may have made."""
    return f"am-{uuid.uuid4().hex[:16]}"


def dataclass_to_dict(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def sdk_enum_values(enum_cls: type) -> tuple[str, ...]:
    """The values of one of the facebook_business SDK's enum holder classes (e.g. Campaign.Objective), sorted."""
    return tuple(sorted(v for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, str)))

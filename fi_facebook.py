"""The Facebook integration: the op registry, the `facebook` tool's dispatch, and the safety gate.

Every op declared by the fb_* modules lands in one ``Registry``. From it come the help text, the JSON schemas
(OpenAI and MCP tools), slash-command parsing, dispatch and the docs' op table. ``Facebook.call`` is the one
path every interface uses: it normalises the arguments the way an LLM means them, validates them with the
op's model, runs the handler, and passes every write through the safety gate (dry_run, confirmation of
spend over the workspace guardrails, audit log with before/after state, undo).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

import fb_ad_account
import fb_adset
import fb_audience
import fb_campaign
import fb_creative
import fb_experiments
import fb_insights
from fb_utils import (
    DEFAULT_API_VERSION,
    IMAGE_LOOKUP,
    REMOTE_INTERFACES,
    USERS_SESSION_LOOKUP,
    VIDEO_UPLOAD_LOOKUP,
    AuthError,
    BatchItem,
    Change,
    ConfirmationRequired,
    CreateLookup,
    DataRow,
    ErrorData,
    FacebookError,
    GraphClient,
    GraphRequest,
    OpArgs,
    OpContext,
    OpData,
    OpKind,
    OpResult,
    OpSet,
    OpSpec,
    OutcomeUnknownError,
    SharedAccountUsage,
    SingleFlightPolicy,
    TaskGroup,
    ValidationError,
    WritePlan,
    api_version_warning,
    change_dicts,
    check_json_ints,
    closest_names,
    confine_input_paths,
    currency_offset,
    expand_arguments_files,
    format_money,
    get_logger,
    hide_server_paths,
    is_ambiguous,
    load_json_bounded,
    redact,
    single_flight,
    structured_data,
    when_text,
    workspace_files_dir,
)

if TYPE_CHECKING:  # the store is given to Facebook (bot, server, jobs); this module only names its types
    from admonster_store import AuditEntry, Confirmation, Store, Workspace, WorkspaceState

OP_MODULES = (fb_ad_account, fb_campaign, fb_adset, fb_creative, fb_insights, fb_audience, fb_experiments)
GATE_ARGS = ("dry_run", "confirm")
# Calls the dispatcher answers itself (Facebook._call) besides the registry's ops, with the arguments it reads: the
# HTTP API's description (/openapi.json) lists them with the ops.
DISPATCHER_CALLS: dict[str, dict[str, Any]] = {
    "help": {
        "type": "object",
        "additionalProperties": False,
        "description": "Every op; with op, one op's arguments and an example.",
        "properties": {"op": {"type": "string", "description": "The op to describe."}},
    },
    "find_ops": {
        "type": "object",
        "additionalProperties": False,
        "required": ["query"],
        "description": "The ops for a task in plain words, best first, one line each.",
        "properties": {
            "query": {"type": "string", "description": "What you want to do, in plain words."},
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 50,
                "default": 8,
                "description": "How many ops at most.",
            },
        },
    },
    "confirm": {
        "type": "object",
        "additionalProperties": False,
        "required": ["confirm"],
        "description": "Run a call that was held for confirmation.",
        "properties": {"confirm": {"type": "string", "description": "The confirmation id the held call answered."}},
    },
    "reject": {
        "type": "object",
        "additionalProperties": False,
        "required": ["confirm"],
        "description": "Cancel a call that was held for confirmation.",
        "properties": {"confirm": {"type": "string", "description": "The confirmation id the held call answered."}},
    },
}
BUDGET_FIELDS = ("daily_budget", "lifetime_budget")
UNDOABLE_FIELDS = ("status", "daily_budget", "lifetime_budget", "spend_cap", "bid_amount")
UNDOABLE_STATUSES = {"ACTIVE", "PAUSED"}
SECRET_ARG_NAMES = ("access_token", "app_secret", "appsecret_proof", "client_secret", "token", "password")

log = get_logger("fi_facebook")
_call_waits: ContextVar[list[str] | None] = ContextVar("admonster_call_waits", default=None)
_current_audit: ContextVar[int | None] = ContextVar("admonster_current_audit", default=None)  # the write the gate runs
# The audit entries a caller's context started (an interface that may cancel a call says afterwards what it left).
_call_audits: ContextVar[list[int] | None] = ContextVar("admonster_call_audits", default=None)


def collect_audits(into: list[int] | None) -> Any:
    """Append the id of every audit entry written in this context to `into` (None: stop); returns the reset token."""
    return _call_audits.set(into)


def stop_collecting_audits(token: Any) -> None:
    _call_audits.reset(token)


def record_wait(message: str) -> None:
    """The Graph client's on_wait hook: a pause for Facebook's rate limits is told in the answer of the call it slowed."""
    waits = _call_waits.get()
    if waits is not None:
        waits.append(message)


# ---------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------


class Registry:
    """Every op by name; refuses duplicates; the source of help, schemas and the op table."""

    def __init__(self) -> None:
        self._ops: dict[str, OpSpec] = {}
        self._search_cache: dict[str, list[tuple[set[str], float]]] = {}
        self._result_schemas: dict[str, dict[str, Any]] = {}
        self._result_validators: dict[str, Any] = {}

    @classmethod
    def from_opsets(cls, opsets: list[OpSet]) -> Registry:
        registry = cls()
        for opset in opsets:
            for spec in opset:
                registry.add(spec)
        return registry

    def add(self, spec: OpSpec) -> None:
        if spec.name in self._ops or spec.name in DISPATCHER_CALLS:  # help, find_ops, confirm, reject: the dispatcher's
            raise ValueError(
                f"op {spec.name!r} is declared twice ({self._ops.get(spec.name, spec).module}, {spec.module})"
            )
        self._ops[spec.name] = spec

    def get(self, name: str) -> OpSpec | None:
        return self._ops.get(name)

    def names(self) -> list[str]:
        return list(self._ops)

    def specs(self) -> list[OpSpec]:
        return list(self._ops.values())

    def closest(self, name: str, count: int = 3) -> list[str]:
        return closest_names(name, self.names(), count)

    def require(self, name: str) -> OpSpec:
        spec = self.get(name)
        if spec is None:
            suggestions = self.closest(name)
            hint = f"Did you mean {', '.join(suggestions)}? " if suggestions else ""
            raise ValidationError(
                f"Unknown op {name!r}",
                fix=f"{hint}Call op=help to list every op",
                data={"suggestions": suggestions},
            )
        return spec

    # -- schemas -----------------------------------------------------------------------------------------------

    def args_schema(self, spec: OpSpec) -> dict[str, Any]:
        """The op's JSON schema: its argument model plus the gate's dry_run/confirm for writes."""
        schema = spec.args_model.model_json_schema()
        schema.pop("title", None)
        if spec.kind is not OpKind.READ:
            schema.setdefault("properties", {}).update(self.gate_properties(spec))
        return schema

    def result_schema(self, spec: OpSpec) -> dict[str, Any]:
        """What the op answers as structured content (MCP's outputSchema): its declared result model; for a write,
        that or the gate's dry-run preview (DryRunData). Titles are left out (they repeat the names)."""
        cached = self._result_schemas.get(spec.name)
        if cached is None:
            if spec.result is None:
                raise ValueError(f"op {spec.name} declares no result model (@ops.op(..., result=Model))")
            cached = model_output_schema(spec.result)
            if spec.kind is not OpKind.READ:  # or its dry run, the same for every write: described once (DryRunData)
                cached = {
                    "type": "object",
                    "anyOf": [{key: value for key, value in cached.items() if key != "$defs"}, DRY_RUN_BRANCH],
                    **({"$defs": cached["$defs"]} if "$defs" in cached else {}),
                }
            self._result_schemas[spec.name] = cached
        return cached

    def result_problems(self, spec: OpSpec, data: Any) -> list[str]:
        """Where an answer's data differs from what the op declares (empty when it conforms), checked the way an MCP
        client checks structured content: JSON Schema against the JSON it receives. A write's dry run is checked
        against the dry-run model, anything else against the op's own (so a difference is named, not just "neither")."""
        from jsonschema import Draft202012Validator

        content = structured_data(data)
        shape = DryRunData if content.get("dry_run") is True and spec.kind is not OpKind.READ else spec.result
        if shape is None:
            return []
        key = f"{spec.name}:{shape.__name__}"
        validator = self._result_validators.get(key)
        if validator is None:
            self.result_schema(spec)  # the whole schema must build too
            validator = self._result_validators[key] = Draft202012Validator(model_output_schema(shape))
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message[:300]}"
            for error in validator.iter_errors(content)
        ]

    @staticmethod
    def gate_properties(spec: OpSpec) -> dict[str, Any]:
        """The arguments the write gate adds to every write's own (none for reads): dry_run and confirm."""
        if spec.kind is OpKind.READ:
            return {}
        return {
            "dry_run": {
                "type": "boolean",
                "default": False,
                "description": "Show the Graph requests this would send (and Facebook's validate_only verdict) without changing anything.",
            },
            "confirm": {
                "type": "string",
                "description": "The confirmation id returned by an earlier call that needed confirmation; runs that held call.",
            },
        }

    def by_group(self) -> dict[TaskGroup | None, list[OpSpec]]:
        """The ops by task group, in the groups' order (None last: an op declared without one)."""
        grouped: dict[TaskGroup | None, list[OpSpec]] = {group: [] for group in TaskGroup}
        for spec in self._ops.values():
            grouped.setdefault(spec.group, []).append(spec)
        return {group: specs for group, specs in grouped.items() if specs}

    def toolsets(self) -> dict[str, list[OpSpec]]:
        """The MCP toolsets: one per task group (its value, e.g. "campaigns"), in /help's order, with its ops."""
        return {group.value: specs for group, specs in self.by_group().items() if group is not None}

    def core_specs(self) -> list[OpSpec]:
        """The ops declared core (OpSpec.core): what an MCP client lists before it enables a toolset."""
        return [spec for spec in self._ops.values() if spec.core]

    def find_ops(
        self, query: str, limit: int = 8, allowed: Callable[[OpSpec], bool] | None = None
    ) -> list[tuple[OpSpec, float]]:
        """Ops ranked for a plain-words query ("pause campaigns spending too much"): keyword scoring over each op's
        name, summary, argument names, task group and description (words reduced to a crude stem). A word counts by
        the best field it appears in, weighted by how rare it is among the ops (idf), and an op whose name the query
        covers whole gets a bonus. Best first."""
        wanted = list(dict.fromkeys(word for word in _search_words(query) if word not in _STOP_WORDS))
        if not wanted:
            return []
        fields = {spec.name: self._search_fields(spec) for spec in self._ops.values()}
        total = len(fields)
        rarity = {
            word: math.log(1 + total / max(1, sum(any(word in words for words, _ in f) for f in fields.values())))
            for word in wanted
        }
        ranked: list[tuple[OpSpec, float]] = []
        for spec in self._ops.values():
            if allowed is not None and not allowed(spec):
                continue
            own = fields[spec.name]
            score = sum(
                max((weight for words, weight in own if word in words), default=0.0) * rarity[word] for word in wanted
            )
            if not score:
                continue
            name_words = own[0][0]
            score += 2.0 * len(name_words & set(wanted)) / len(name_words)
            ranked.append((spec, round(score, 2)))
        ranked.sort(key=lambda item: (-item[1], len(item[0].name), item[0].name))
        return ranked[: max(1, limit)]

    def _search_fields(self, spec: OpSpec) -> list[tuple[set[str], float]]:
        """The op's words by field, the name first: (words, weight)."""
        cached = self._search_cache.get(spec.name)
        if cached is None:
            arguments = " ".join(spec.args_model.model_json_schema().get("properties", {}))
            group = f"{spec.group.value} {spec.group.label}" if spec.group else ""
            cached = [
                (set(_search_words(spec.name)), 4.0),
                (set(_search_words(spec.summary)), 2.0),
                (set(_search_words(arguments)), 1.5),
                (set(_search_words(group)), 1.0),
                (set(_search_words(spec.description)), 1.0),
            ]
            self._search_cache[spec.name] = cached
        return cached

    def find_ops_result(self, query: Any, limit: Any = 8, allowed: Callable[[OpSpec], bool] | None = None) -> OpResult:
        """find_ops as an answer: one line per op (name, kind, first sentence), the names as data."""
        if not isinstance(query, str) or not query.strip():
            raise ValidationError(
                "find_ops needs a query",
                fix='Pass query, e.g. {"query": "pause campaigns spending too much"}',
                blame_field="query",
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50:
            raise ValidationError(
                "find_ops limit must be a whole number from 1 to 50",
                fix="Pass limit=8, or leave it out",
                blame_field="limit",
            )
        found = self.find_ops(query, limit, allowed)
        if not found:
            return OpResult(
                text=f"No op matches {query.strip()!r}.",
                data={"query": query, "ops": []},
                hints=["op='help' lists every op by task group."],
            )
        lines = [f"Ops for {query.strip()!r}, best first:"]
        lines += [f"  {spec.name:<26} [{spec.kind.value}] {first_sentence(spec.summary)}" for spec, _ in found]
        ops = [
            {
                "op": spec.name,
                "kind": spec.kind.value,
                "toolset": spec.group.value if spec.group else None,
                "summary": first_sentence(spec.summary),
                "score": score,
            }
            for spec, score in found
        ]
        return OpResult(
            text="\n".join(lines),
            data={"query": query, "ops": ops},
            hints=[
                "Call one with facebook(op=NAME, args={...}); op='help' with args={'op': NAME} shows its arguments."
            ],
        )

    def help_text(self) -> str:
        lines = [
            'Ad Monster ops: facebook(op, args). op=help with args={"op": NAME} shows one op\'s schema and an example.'
        ]
        for group, specs in self.by_group().items():
            lines.append(f"\n{group.label if group else 'Other'}:")
            for spec in specs:
                lines.append(f"  {spec.name:<26} [{spec.kind.value}] {first_sentence(spec.summary)}")
        lines.append(
            "\nWrites accept dry_run=true; spend ops over the guardrails answer with a confirmation id to pass back as confirm."
        )
        return "\n".join(lines)

    def example(self, spec: OpSpec) -> dict[str, Any]:
        """The op's example arguments: declared on the op where the schema cannot make a good one, else from the schema."""
        return dict(spec.example) if spec.example is not None else _example_from_schema(self.args_schema(spec))

    def op_help(
        self,
        spec: OpSpec,
        *,
        currency: str | None = None,
        example_line: str | None = None,
        usage: str | None = None,
        note: str | None = None,
    ) -> OpResult:
        """One op's help: what it does, every argument (nested types expanded, defaults, money units) and an example.
        The LLM's form by default (facebook(op=…)); a chat passes its own example line (/tool OP {…})."""
        schema = self.args_schema(spec)
        example = self.example(spec)
        group = f"{spec.group.label}, " if spec.group else ""
        lines = [
            f"{usage or spec.name} ({group}{KIND_WORDS[spec.kind]}{'; ' + note if note else ''})",
            spec.description,
            "",
            "Arguments:",
        ]
        lines += argument_lines(schema, currency) or ["  none"]
        lines += [
            "",
            "Example:",
            "  " + (example_line or f'facebook(op="{spec.name}", args={json.dumps(example, ensure_ascii=False)})'),
        ]
        return OpResult(
            text="\n".join(lines),
            data={
                "op": spec.name,
                "kind": spec.kind.value,
                "group": spec.group.value if spec.group else None,
                "schema": schema,
                "example": example,
            },
        )

    def facebook_tool_description(self) -> str:
        ops = ", ".join(self.names())
        return (
            "Run Facebook and Instagram advertising operations on the selected ad account. "
            "Call op='help' first to see every op, or op='help' with args={'op': NAME} for one op's arguments; "
            "op='find_ops' with args={'query': 'what you want to do'} ranks the ops for a task. "
            f"Ops: {ops}. Money is in minor units of the account currency (cents for USD, yen for JPY). "
            "New objects are created PAUSED; writes accept dry_run=true; spend over the guardrails needs confirm."
        )

    def openai_tools(self, mode: Literal["single", "per-op", "both"] = "single") -> list[dict[str, Any]]:
        tools = []
        if mode in ("single", "both"):
            tools.append(
                {
                    "type": "function",
                    "function": {
                        "name": "facebook",
                        "description": self.facebook_tool_description(),
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "op": {"type": "string", "description": "The op name, or 'help'."},
                                "args": {
                                    "type": "object",
                                    "description": "The op's arguments (see op='help', args={'op': NAME}).",
                                },
                            },
                            "required": ["op"],
                        },
                    },
                }
            )
        if mode in ("per-op", "both"):
            for spec in self.specs():
                tools.append(
                    {
                        "type": "function",
                        "function": {
                            "name": spec.name,
                            "description": spec.description,
                            "parameters": self.args_schema(spec),
                        },
                    }
                )
        return tools

    def op_table_markdown(self) -> str:
        lines = [
            "# Ops",
            "",
            "Generated from the registry by `make docs` (`python -m fi_facebook --op-table`). Do not edit by hand.",
            "",
            "The task is the op's MCP toolset (`admonster mcp --toolsets NAME`); `core` ops are listed by MCP by default.",
            "",
            "| op | task (toolset) | module | kind | hints | arguments | what it does |",
            "|---|---|---|---|---|---|---|",
        ]
        for spec in [spec for specs in self.by_group().values() for spec in specs]:
            schema = spec.args_model.model_json_schema()
            required = set(schema.get("required", []))
            args = ", ".join(f"`{n}`" + ("" if n in required else "?") for n in schema.get("properties", {}))
            hints = ", ".join(
                h
                for h, on in (
                    ("read-only", spec.kind is OpKind.READ),
                    ("destructive", spec.destructive),
                    ("idempotent", spec.idempotent),
                    ("core", spec.core),
                )
                if on
            )
            task = f"{spec.group.label} (`{spec.group.value}`)" if spec.group else ""
            lines.append(
                f"| `{spec.name}` | {task} | {spec.module} | {spec.kind.value} | {hints} | {args} | {spec.summary} |"
            )
        return "\n".join(lines) + "\n"


KIND_WORDS = {
    OpKind.READ: "reads only",
    OpKind.WRITE: "changes things, never raises spend",
    OpKind.SPEND: "can start or raise spending: asks to confirm over the guardrails",
}
_PLAIN_TYPES = {
    "string": "text",
    "integer": "whole number",
    "number": "number",
    "boolean": "true/false",
    "object": "object",
    "null": "nothing",
}
_FORMATS = {
    "date-time": "date and time (ISO 8601, e.g. 2026-03-01T09:00:00-08:00)",
    "date": "date (YYYY-MM-DD)",
    "uri": "URL",
}
_MINOR_UNIT_NAMES = {
    "USD": "cents",
    "EUR": "cents",
    "CAD": "cents",
    "AUD": "cents",
    "NZD": "cents",
    "HKD": "cents",
    "SGD": "cents",
    "MXN": "centavos",
    "BRL": "centavos",
    "GBP": "pence",
    "INR": "paise",
}
_GENERIC_MONEY_NOTE = re.compile(r"\s*Minor units of the account currency \([^)]*\)\.?")
MAX_HELP_DEPTH = 4  # nested objects deeper than this are named, not expanded


_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "for",
        "from",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "show",
        "that",
        "the",
        "their",
        "them",
        "these",
        "this",
        "those",
        "to",
        "too",
        "use",
        "want",
        "we",
        "what",
        "when",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "much",
        "many",
        "very",
        "all",
        "any",
        "some",
    ]
)
_SUFFIXES = ("ing", "ies", "ed", "es", "s")


def _stem(word: str) -> str:
    """A crude English stem, enough to meet "campaigns"/"campaign", "spending"/"spend", "paused"/"pause"."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word.rstrip("e") if len(word) > 3 else word


def _search_words(text: str) -> list[str]:
    text = re.sub(r"\bad sets?\b", "adset", text.lower().replace("_", " "))  # "ad set" is one word in op names
    return [_stem(word) for word in re.findall(r"[a-z0-9]+", text)]


_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "approx.")


def first_sentence(text: str) -> str:
    """The first whole sentence of a summary (a person's /help line), never cut inside one: not after an
    abbreviation (e.g.), nor inside brackets."""
    for match in re.finditer(r"(?<=[.!?])\s+(?=[A-Z(])", text):
        head = text[: match.start()]
        if head.count("(") == head.count(")") and not head.lower().endswith(_ABBREVIATIONS):
            return head
    return text


def money_words(currency: str | None) -> str:
    """How a minor-units amount reads: 'in cents of USD: 5000 = $50.00', 'in whole JPY: 5000 = ¥5,000'."""
    if not currency:
        return (
            "money in minor units of the account's currency (cents for USD: 5000 = $50.00; yen for JPY: 5000 = ¥5,000)"
        )
    code = currency.upper()
    try:
        example = format_money(5000, code)
    except ValidationError:
        return f"money in minor units of {currency}"
    if currency_offset(code) == 1:
        return f"money in whole {code}: 5000 = {example}"
    return f"money in {_MINOR_UNIT_NAMES.get(code, 'hundredths')} of {code}: 5000 = {example}"


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A property with its $ref (or allOf of one $ref) replaced by the definition, keeping the property's own keys."""
    ref = prop.get("$ref") or (prop.get("allOf", [{}])[0].get("$ref") if len(prop.get("allOf", [])) == 1 else None)
    if not ref:
        return prop
    target = defs.get(ref.rsplit("/", 1)[-1], {})
    merged = {**target, **{k: v for k, v in prop.items() if k not in ("$ref", "allOf")}}
    merged["x-ref"] = ref.rsplit("/", 1)[-1]
    return merged


def schema_variants(prop: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a property (anyOf/oneOf), each resolved."""
    options = prop.get("anyOf") or prop.get("oneOf")
    if not options:
        return [_resolve(prop, defs)]
    return [_resolve(option, defs) for option in options if option.get("type") != "null"]


def plain_type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A schema type in words: 'text', 'list of whole number', 'one of A, B', 'object (Targeting)'."""
    words = []
    for option in schema_variants(prop, defs):
        if "enum" in option or "const" in option:
            values = option.get("enum", [option.get("const")])
            words.append("one of " + ", ".join(map(str, values)))
        elif option.get("type") == "array" or "items" in option:
            words.append("list of " + plain_type(option.get("items", {}), defs))
        elif option.get("type") == "object" or "properties" in option:
            extra = option.get("additionalProperties")
            if isinstance(extra, dict) and extra and "properties" not in option:
                words.append("map of text to " + plain_type(extra, defs))
            else:
                words.append("object")
        elif option.get("format") in _FORMATS and option.get("type") == "string":
            words.append(_FORMATS[option["format"]])
        else:
            words.append(_PLAIN_TYPES.get(option.get("type", ""), "any value"))
    unique = list(dict.fromkeys(words))
    return " or ".join(unique) or "any value"


def _is_money(prop: dict[str, Any], defs: dict[str, Any]) -> bool:
    return any(option.get("x-unit") == "minor" for option in [prop, *schema_variants(prop, defs)])


def _nested_object(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema with fields inside a property (itself, or its list's items), if any."""
    for option in schema_variants(prop, defs):
        if option.get("properties"):
            return option
        items = _resolve(option.get("items", {}), defs) if option.get("type") == "array" else {}
        for item in schema_variants(items, defs) if items else []:
            if item.get("properties"):
                return item
    return None


def argument_lines(
    schema: dict[str, Any],
    currency: str | None = None,
    *,
    indent: int = 2,
    defs: dict[str, Any] | None = None,
    seen: tuple[str, ...] = (),
) -> list[str]:
    """Every argument of a schema on its own line: type in words (nested objects expanded below it, list item types,
    enum values), required or optional, default, money unit in the account's currency, and the description."""
    defs = schema.get("$defs", {}) if defs is None else defs
    required = set(schema.get("required", []))
    lines = []
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(raw, defs)
        facts = [plain_type(prop, defs), "required" if name in required else "optional"]
        if "default" in prop and prop["default"] not in (None, [], {}):
            facts.append(f"default {json.dumps(prop['default'], ensure_ascii=False)}")
        if _is_money(prop, defs):
            facts.append(money_words(currency))
        description = " ".join(str(prop.get("description", "")).split())
        if _is_money(prop, defs):  # the unit is said once, in the account's currency, not again in general terms
            description = _GENERIC_MONEY_NOTE.sub("", description).strip()
        lines.append(f"{' ' * indent}{name} ({'; '.join(facts)})" + (f": {description}" if description else ""))
        nested = _nested_object(prop, defs)
        if nested is not None:
            ref = nested.get("x-ref", "")
            if ref in seen or len(seen) >= MAX_HELP_DEPTH:
                lines.append(f"{' ' * (indent + 4)}(fields as above)")
            else:
                lines += argument_lines(nested, currency, indent=indent + 4, defs=defs, seen=(*seen, ref))
    return lines


def _example_from_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Example arguments from a schema: each required field from its declared examples, default or type."""
    defs = schema.get("$defs", {})
    return {
        name: _example_value(name, schema.get("properties", {}).get(name, {}), defs)
        for name in schema.get("required", [])
    }


def _example_value(name: str, raw: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    prop = _resolve(raw, defs)
    if prop.get("examples"):
        return prop["examples"][0]
    if prop.get("default") is not None:
        return prop["default"]
    option = (schema_variants(prop, defs) or [{}])[0]
    if option.get("examples"):
        return option["examples"][0]
    if "enum" in option or "const" in option:
        return option.get("enum", [option.get("const")])[0]
    kind = option.get("type")
    if kind in ("integer", "number"):
        low = option.get("minimum", option.get("exclusiveMinimum", 0) + 1)
        return max(int(low), 1000 if option.get("x-unit") == "minor" else 1)
    if kind == "boolean":
        return False
    if kind == "array" and depth < MAX_HELP_DEPTH:
        return [_example_value(name, option.get("items", {}), defs, depth + 1)] * max(1, option.get("minItems", 1))
    if option.get("properties") and depth < MAX_HELP_DEPTH:
        return {
            field: _example_value(field, option["properties"][field], defs, depth + 1)
            for field in option.get("required", [])
        }
    if kind == "object":
        return {}
    if name == "ad_account_id":
        return "act_1234567890"
    if name.endswith(
        "_id"
    ):  # Graph ids are strings of digits: a made-up one validates, and Facebook answers "not found"
        return "1234567890123456"
    return f"<{name}>"


# ---------------------------------------------------------------------------------------------------------------
# Argument normalisation: accept what an LLM means
# ---------------------------------------------------------------------------------------------------------------


def normalize_call(op: Any, args: Any, top_level: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Turn (op, args, stray top-level keys) into (op name, argument dict), or raise a ValidationError."""
    parsed = _parse_args(args)
    if top_level:
        parsed = {**{str(k): v for k, v in top_level.items() if v is not None}, **parsed}
    if isinstance(parsed.get("args"), (dict, str)) and len(parsed) == 1:
        parsed = _parse_args(parsed["args"])
    if not op and isinstance(parsed.get("op"), str):
        op = parsed.pop("op")
    if not isinstance(op, str) or not op.strip():
        raise ValidationError(
            "No op given", fix='Pass op, e.g. op="list_campaigns"; op="help" lists them all', blame_field="op"
        )
    return op.strip().lower().lstrip("/"), parsed


def _parse_args(args: Any) -> dict[str, Any]:
    if args is None:
        return {}
    if isinstance(args, BaseModel):
        return args.model_dump(exclude_none=True)
    if isinstance(args, str):
        text = args.strip()
        if text in ("", "null", "None", "{}"):
            return {}
        args = load_json_bounded(text, what="args")  # bounded size and depth: one line, never a RecursionError
        if args is None:
            return {}
    if not isinstance(args, dict):
        raise ValidationError(
            f"args must be an object, got {type(args).__name__}",
            fix='Send args as a JSON object of named arguments, e.g. {"limit": 10}',
            blame_field="args",
        )
    return dict(args)


def validate_args(spec: OpSpec, args: dict[str, Any]) -> BaseModel:
    """Validate with the op's model; a failure becomes one readable line naming each bad field."""
    try:
        model = spec.args_model.model_validate(args)
        check_json_ints(model.model_dump(), what=spec.name)  # ids beyond int64 never reach SQLite (OverflowError)
        return model
    except PydanticValidationError as exc:
        problems = [_describe_problem(err) for err in exc.errors()[:4]]
        first_field = ".".join(str(p) for p in exc.errors()[0]["loc"]) if exc.errors() else None
        raise ValidationError(
            f"{spec.name}: " + "; ".join(problems),
            fix=f"/help {spec.name} explains each argument, with an example",
            hint=f'op=help with args={{"op": "{spec.name}"}} gives the argument schema',
            blame_field=first_field or None,
        ) from None


def _describe_problem(err: ErrorDetails) -> str:
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown argument {where!r}"
    if err["type"] == "missing":
        return f"{where} is required"
    message: str = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ").rstrip(".")
    if not where:  # a check of the arguments together: its words say what is wrong
        return message
    shown = err.get("input")
    shown_text = json.dumps(shown, default=str, ensure_ascii=False)[:60] if shown is not None else "null"
    return f"{where}: {message} (got {shown_text})"


def withhold_pii(spec: OpSpec, args: dict[str, Any]) -> dict[str, Any]:
    """Arguments without the customer data an op marks (json_schema_extra {"pii": ...}): "rows" keeps a file path
    (a string) and withholds inline rows; any other mark withholds the value whole."""
    marks = {
        name: info.json_schema_extra["pii"]
        for name, info in spec.args_model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("pii")
    }
    if not marks or not isinstance(args, dict):
        return args

    def withheld(mark: Any, value: Any) -> Any:
        if mark == "rows" and isinstance(value, str):
            return value
        return f"<customer data withheld: {len(value)} rows>" if isinstance(value, list) else "<customer data withheld>"

    return {k: withheld(marks[k], v) if k in marks else v for k, v in args.items()}


# Arguments that carry people's personal data (Conversions API user data, customer-list rows): kept out of the
# audit log and logs whole, with only their size said.
PERSONAL_DATA_ARG_NAMES = frozenset({"user_data", "rows", "users", "customers", "data"})


def _personal_data_stand_in(value: Any) -> str:
    size = f"{len(value)} item(s)" if isinstance(value, (list, dict)) else "a value"
    return f"<personal data withheld: {size}>"


def scrub_args(args: Any) -> Any:
    """Arguments as they may be stored or logged: secrets dropped, personal data withheld, text redacted."""
    if isinstance(args, dict):
        return {
            k: _personal_data_stand_in(v) if k.lower() in PERSONAL_DATA_ARG_NAMES else scrub_args(v)
            for k, v in args.items()
            if k.lower() not in SECRET_ARG_NAMES
        }
    if isinstance(args, list):
        return [scrub_args(v) for v in args]
    if isinstance(args, str):
        return redact(args)
    return args


def args_at_rest(spec: OpSpec | None, args: Any) -> Any:
    """An op's arguments as anything may keep them (audit log, chat history): the customer data the op marks withheld,
    personal-data arguments withheld, secrets dropped, emails/phones/tokens in text redacted. Declared once."""
    return scrub_args(withhold_pii(spec, args) if spec is not None and isinstance(args, dict) else args)


def _personal_values(value: Any, found: set[str], inside: bool = False, key: str = "") -> None:
    """Collect the text of every value args_at_rest withholds (so the same values are masked in free text)."""
    inside = inside or key.lower() in PERSONAL_DATA_ARG_NAMES
    if isinstance(value, dict):
        for k, v in value.items():
            _personal_values(v, found, inside, str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            _personal_values(v, found, inside)
    elif inside and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value).strip()
        if len(text) >= 4:
            found.add(text)


def _call_at_rest(op: Any, args: Any, found: set[str]) -> tuple[Any, bool]:
    """(args as stored, whether they could be read); the withheld values join `found`."""
    if isinstance(args, str):
        try:
            args = load_json_bounded(args, what="The arguments") if args.strip() else {}
        except FacebookError:
            return None, False
    spec = REGISTRY.get(str(op).strip().lower().lstrip("/")) if isinstance(op, str) and op.strip() else None
    if spec is not None and isinstance(args, dict):
        marks = {
            n
            for n, info in spec.args_model.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("pii")
        }
        for name in marks & set(args):
            value = args[name]
            if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
                value = value[1:]  # a header row names columns ("email"): masking those words would say nothing
            if not (isinstance(value, str) and withhold_pii(spec, {name: value})[name] == value):
                _personal_values(value, found, inside=True)
    _personal_values(args, found)
    return args_at_rest(spec, args), True


def _text_at_rest(text: str, found: set[str]) -> str:
    if found:  # one pattern for all the values, longest first: a call may carry thousands of rows
        either = "|".join(re.escape(value) for value in sorted(found, key=len, reverse=True))
        text = re.sub(rf"(?<!\w)(?:{either})(?!\w)", "[WITHHELD]", text)
    return redact(text)


def _tool_line_at_rest(line: str, found: set[str]) -> str | None:
    """A typed `/tool OP {json}` line with its arguments as stored; None when the line is not one."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0].lower() != "/tool":
        return None
    stored, readable = _call_at_rest(parts[1], parts[2] if len(parts) > 2 else "", found)
    if not readable:
        return f"/tool {redact(parts[1])} <arguments not kept: not valid JSON>"
    return (
        f"/tool {redact(parts[1])} {json.dumps(stored, ensure_ascii=False, default=str)}"
        if len(parts) > 2
        else redact(line)
    )


def command_line_at_rest(line: str, op: Any, args: Any) -> str:
    """A typed slash-command as the chat history keeps it: `/add_users 123 source=[…]` whose arguments carry personal
    data becomes `/tool add_users {…withheld…}`; `/tool` lines are left to chat_messages_at_rest."""
    if line.lower().startswith("/tool") or not isinstance(args, dict):
        return line
    stored, _ = _call_at_rest(op, args, set())
    return line if stored == args else f"/tool {op} {json.dumps(stored, ensure_ascii=False, default=str)}"


def chat_messages_at_rest(
    messages: list[dict[str, Any]], calls: list[tuple[Any, Any]] | None = None
) -> list[dict[str, Any]]:
    """One chat turn as the chat history keeps it: tool arguments through args_at_rest, and every text (what the person
    typed, the replies, tool results) redacted, with the personal values the turn's calls carried masked wherever they
    appear. `calls` are (op, args) the turn ran that its messages do not show (a slash-command's)."""
    found: set[str] = set()
    for op, args in calls or []:
        _call_at_rest(op, args, found)
    kept: list[dict[str, Any]] = []
    for message in messages:
        message = dict(message)
        if message.get("tool_calls"):
            message["tool_calls"] = [_tool_call_at_rest(call, found) for call in message["tool_calls"]]
        kept.append(message)
    lines: dict[int, str] = {}
    for index, message in enumerate(kept):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            line = _tool_line_at_rest(message["content"], found)
            if line is not None:
                lines[index] = line
    for index, message in enumerate(kept):
        content = message.get("content")
        if index in lines:
            message["content"] = _text_at_rest(lines[index], found)
        elif isinstance(content, str):
            message["content"] = _text_at_rest(content, found)
        elif content is not None:
            message["content"] = _text_at_rest(json.dumps(content, default=str), found)
    return kept


def _tool_call_at_rest(call: Any, found: set[str]) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = dict(call["function"])
    name, raw = function.get("name"), function.get("arguments")
    try:
        parsed = load_json_bounded(raw, what="The tool call's arguments") if isinstance(raw, str) else raw
    except FacebookError:
        parsed = None
    if not isinstance(parsed, dict):
        function["arguments"] = redact(str(raw)) if raw is not None else raw
    elif name == "facebook":
        stored, _ = _call_at_rest(parsed.get("op"), parsed.get("args"), found)
        rest, _ = _call_at_rest(None, {k: v for k, v in parsed.items() if k not in ("op", "args")}, found)
        kept_call = {**rest, "op": parsed.get("op")} | ({"args": stored} if "args" in parsed else {})
        function["arguments"] = json.dumps(kept_call, default=str)
    else:
        stored, _ = _call_at_rest(name, parsed, found)
        function["arguments"] = json.dumps(stored, default=str)
    return {**call, "function": function}


# ---------------------------------------------------------------------------------------------------------------
# The safety gate
# ---------------------------------------------------------------------------------------------------------------


def spend_reasons(plan: WritePlan, guardrails: dict[str, Any]) -> list[str]:
    """Why this plan needs a person's confirmation under the workspace policy; empty when it does not."""
    reasons = list(plan.attention)  # not about money, so no confirm_policy waives them
    policy = guardrails.get("confirm_policy", "guardrails")
    if policy == "never":
        return reasons
    for change in plan.changes:
        reason = (
            _activation_reason(change)
            or _budget_reason(change, guardrails, policy)
            or _spend_cap_reason(change, guardrails, policy)
        )
        if reason:
            reasons.append(reason)
    return reasons


def _label(change: Change) -> str:
    name = f"{change.object_type} {change.object_name}".strip()
    return f"{name} ({change.object_id})" if change.object_id else f"new {name}"


def _money(value: Any, currency: str | None) -> str:
    if value in (None, ""):
        return "none"
    return format_money(value, currency) if currency else str(value)


def _activation_reason(change: Change) -> str | None:
    if change.field == "status" and change.after == "ACTIVE" and change.before != "ACTIVE":
        return f"would set {_label(change)} ACTIVE, which can start spending"
    return None


def _budget_reason(change: Change, guardrails: dict[str, Any], policy: str) -> str | None:
    if change.field not in BUDGET_FIELDS + ("bid_amount",) or change.after in (None, ""):
        return None
    before = int(change.before) if change.before not in (None, "", "0") else None
    after = int(change.after)
    if before is not None and after <= before:
        return None
    what = change.field.replace("_", " ")
    described = (
        f"would raise {what} of {_label(change)} from {_money(before, change.currency)} to {_money(after, change.currency)}"
        if before is not None
        else f"would set {what} of {_label(change)} to {_money(after, change.currency)}"
    )
    if policy == "always":
        return described
    limit = guardrails.get("max_daily_budget") if change.field == "daily_budget" else None
    if limit is not None and after > int(limit):
        return f"{described}, over the max_daily_budget guardrail of {_money(limit, change.currency)}"
    max_pct = guardrails.get("max_budget_increase_pct")
    if before and max_pct is not None and (after - before) * 100 > int(max_pct) * before:
        return f"{described} (+{_percent_more(before, after)} %, over the {max_pct} % increase guardrail)"
    return None


def cancelled_writes_text(entries: list[Any], *, for_llm: bool) -> str:
    """What a cancelled call's audit entries say, oldest first: a write under way is pending (never sent again;
    reconcile settles it), a finished one says how it ended. A person gets /reconcile N, an LLM the call."""
    words = []
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.outcome == "pending":
            settle = f"reconcile with audit_id={entry.id}" if for_llm else f"/reconcile {entry.id}"
            words.append(
                f"write #{entry.id} ({entry.op}) had started and is recorded as pending: its outcome is not "
                f"known, nothing more is sent, and {settle} looks at Facebook to settle it"
            )
        else:
            words.append(f"write #{entry.id} ({entry.op}) had finished: {entry.outcome}")
    return "; ".join(words)


def commands_in_fix(text: str, op_names: list[str]) -> str:
    """An error line as a person reads it: in its fix, the ops it names become commands to type ("resume_launch with
    launch_id=5" -> "/resume_launch launch_id=5", "list_alerts" -> "/list_alerts"); the LLM keeps the original."""
    head, _, fix = text.partition(" Fix: ")
    names = "|".join(sorted((re.escape(n) for n in op_names), key=len, reverse=True))

    def plain(words: str) -> str:
        words = re.sub(
            rf"(?<![/\w])(?<!/tool )(?<!/help )({names}) with (\w+=[^\s,;)]+(?: and \w+=[^\s,;)]+)*)",
            lambda m: f"/{m.group(1)} {m.group(2).replace(' and ', ' ')}",
            words,
        )
        return re.sub(rf"(?<![/\w])(?<!/tool )(?<!/help )({names})(?![\w(])", r"/\1", words)

    parts = fix.split("`")  # what is quoted (a shell command) stays as it is
    return f"{head} Fix: " + "`".join(plain(part) if i % 2 == 0 else part for i, part in enumerate(parts))


def _one_line_preview(preview: str, limit: int = 160) -> str:
    """A held call's preview, short: its first clause, cut at a word."""
    first = " ".join(str(preview or "").split()).split("; ")[0].rstrip(".")
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + " …"


def _percent_more(before: int, after: int) -> int:
    """How much more `after` is than `before`, in whole percent rounded half up (30 -> 80 is 167, not 166)."""
    return ((after - before) * 200 + before) // (2 * before)


def _spend_cap_reason(change: Change, guardrails: dict[str, Any], policy: str) -> str | None:
    """A spend cap limits total spend: removing it, or raising it past the guardrails, can release money."""
    if change.field != "spend_cap":
        return None
    before, after = int(change.before or 0), int(change.after or 0)
    if before == 0 or (after and after <= before):
        return None
    described = (
        f"would remove the spend cap of {_label(change)} (was {_money(before, change.currency)})"
        if after == 0
        else f"would raise the spend cap of {_label(change)} from {_money(before, change.currency)} to {_money(after, change.currency)}"
    )
    limit = guardrails.get("max_spend_cap")
    max_pct = guardrails.get("max_budget_increase_pct")
    if after == 0 or policy == "always":
        return described
    if limit is not None and after > int(limit):
        return f"{described}, over the max_spend_cap guardrail of {_money(limit, change.currency)}"
    if max_pct is not None and (after - before) * 100 > int(max_pct) * before:
        return f"{described} (+{_percent_more(before, after)} %, over the {max_pct} % increase guardrail)"
    return None


# Tests set ADMONSTER_CHECK_RESULTS to a file (tests/conftest.py; the servers they start inherit it): every answer an
# op gives is then checked against its declared result model, and each difference is a crash of that call plus one
# line in the file, which fails the test that caused it.
CHECK_RESULTS_ENV = "ADMONSTER_CHECK_RESULTS"


class ResultMismatch(AssertionError):
    """An op answered data its result model does not allow: a bug, never the caller's fault."""


def check_result(registry: Registry, spec: OpSpec, result: OpResult) -> None:
    """In tests (CHECK_RESULTS_ENV set): the answer's data against the op's result model."""
    import os

    log_path = os.environ.get(CHECK_RESULTS_ENV)
    if not log_path or spec.result is None or is_error_answer(result):
        return
    _report_mismatch(log_path, spec.name, registry.result_problems(spec, result.data))
    if spec.name not in _checked_here:  # once per op and process: the suite's summary counts the ops checked
        _checked_here.add(spec.name)
        _append_line(log_path, {"op": spec.name, "checked": True})


_checked_here: set[str] = set()


def _append_line(log_path: str, line: dict[str, Any]) -> None:
    with open(log_path, "a", encoding="utf-8") as log_file:
        log_file.write(json.dumps(line) + "\n")


def is_error_answer(result: OpResult) -> bool:
    """A failure told as an error (FacebookError.to_data: ErrorData), not an op's own answer that is not ok (a bulk
    update with some objects refused answers its own model, with isError)."""
    return not result.ok and isinstance(result.data, dict) and "error" in result.data and "fix" in result.data


def check_error(op: Any, result: OpResult) -> None:
    """In tests: an error's data against ErrorData (every error, whatever raised it)."""
    import os

    log_path = os.environ.get(CHECK_RESULTS_ENV)
    if log_path and is_error_answer(result):
        problems = [
            f"{'/'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}"
            for e in _error_data_problems(structured_data(result.data))
        ]
        _report_mismatch(log_path, str(op), problems, error=True)


def _error_data_problems(content: dict[str, Any]) -> list[Any]:
    try:
        ErrorData.model_validate(content, strict=True)
    except PydanticValidationError as error:
        return error.errors()
    return []


def _report_mismatch(log_path: str, op: str, problems: list[str], *, error: bool = False) -> None:
    if problems:
        found = f"{op} answered {'an error' if error else 'data'} its model refuses: " + "; ".join(problems[:5])
        _append_line(log_path, {"op": op, "problems": problems[:5]})
        raise ResultMismatch(found)


class DryRunData(OpData):
    """A write's dry run: the Graph requests it would send and the changes it would make; nothing was sent."""

    dry_run: Literal[True]
    summary: str
    requests: list[GraphRequest]
    changes: list[Change]
    attention: list[str] = Field(description="Why a person would have to confirm it, beside the guardrails.")
    validation: dict[str, Any] | None = Field(None, description="Facebook's validate_only verdict, where it was asked.")


# A write's outputSchema allows its dry run in this short form (every write's dry run is a DryRunData, checked in full
# in the tests; README describes it), so forty-odd write tools do not each carry the same 2 KB.
DRY_RUN_BRANCH: dict[str, Any] = {
    "type": "object",
    "required": ["dry_run", "requests", "changes"],
    "description": "dry_run=true: the preview (DryRunData: summary, requests, changes, attention, validation); nothing was sent.",
    "properties": {"dry_run": {"const": True}, "requests": {"type": "array"}, "changes": {"type": "array"}},
}


def model_output_schema(shapes: Any) -> dict[str, Any]:
    """A result model (or a union of them) as an MCP outputSchema: a JSON Schema of an object, without titles."""
    return {"type": "object", **_without_titles(TypeAdapter(shapes).json_schema(mode="serialization"))}


def _without_titles(schema: Any) -> Any:
    """A schema without what only repeats (titles) or says nothing (a null default): tools/list stays small."""
    if isinstance(schema, dict):
        return {
            key: _without_titles(value)
            for key, value in schema.items()
            if not (key == "title" and isinstance(value, str)) and not (key == "default" and value is None)
        }
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    return schema


def describe_dry_run(
    spec: OpSpec, plan: WritePlan, validation: Any, validation_error: FacebookError | None
) -> OpResult:
    lines = [
        f"DRY RUN {spec.name}: {plan.summary}. Nothing was changed; it would send {len(plan.requests)} request(s):"
    ]
    lines += [f"  {request.describe()}" for request in plan.requests[:20]]
    if len(plan.requests) > 20:
        lines.append(f"  … and {len(plan.requests) - 20} more")
    if validation_error is not None:
        lines.append(f"Facebook validate_only: refused. {validation_error.to_text()}")
    elif validation is not None:
        lines.append("Facebook validate_only: accepted.")
    lines += [f"Needs a person's confirmation: it {reason}." for reason in plan.attention]
    data = {
        "dry_run": True,
        "summary": plan.summary,
        "requests": [r.to_data() for r in plan.requests],
        "changes": [_change_data(c) for c in plan.changes],
        "attention": list(plan.attention),
    }
    if validation_error is not None:
        data["validation"] = validation_error.to_data()
    elif validation is not None:
        data["validation"] = {"accepted": True, "response": validation}
    return OpResult(text="\n".join(lines), data=data, ok=validation_error is None)


def _comparable(changes: list[Change] | list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """What a preview promised, in a form two plans can be compared by: each change's object, field, before and after."""
    rows = [c if isinstance(c, dict) else _change_data(c) for c in changes]
    return sorted(
        tuple(str(row.get(k)) for k in ("object_id", "object_type", "field", "before", "after")) for row in rows
    )


def _described(change: dict[str, Any]) -> str:
    label = f"{change.get('object_type') or ''} {change.get('object_name') or ''}".strip() or "the object"
    money = change.get("field") in BUDGET_FIELDS + ("spend_cap", "bid_amount")

    def value(v: Any) -> str:
        return _money(v, change.get("currency")) if money else "none" if v in (None, "") else str(v)

    return f"{label} {change.get('field', '').replace('_', ' ')} {value(change.get('before'))} → {value(change.get('after'))}"


def _confirmation_gone(confirmation_id: str, known: Confirmation | None) -> ValidationError:
    """One line for a confirmation id that cannot run: used, expired, or not this workspace's."""
    if known is not None and known.status == "used":
        return ValidationError(
            f"Confirmation {confirmation_id} was already used or cancelled",
            blame_field="confirm",
            fix="Nothing was run again; run the op again for a fresh preview if you still want it",
        )
    if known is not None and known.status == "expired":
        return ValidationError(
            f"Confirmation {confirmation_id} expired at {known.expires_at[:16].replace('T', ' ')} UTC",
            fix="Run the op again for a fresh preview and confirmation id",
            blame_field="confirm",
        )
    return ValidationError(
        f"Confirmation {confirmation_id!r} is unknown in this workspace",
        fix="/confirmations lists the calls waiting for you; run the op again for a fresh one",
        blame_field="confirm",
    )


def _change_data(change: Change) -> dict[str, Any]:
    return change_dicts([change])[0]


# ---------------------------------------------------------------------------------------------------------------
# Meta ops: audit, undo, confirmations, selection (need the store, so they live here, not in an fb_* module)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class FacebookContext(OpContext):
    """OpContext plus the Facebook session, for the meta ops that need the store."""

    facebook: Facebook | None = None

    @property
    def session(self) -> Facebook:
        """The Facebook session a meta op works in (None only for a bare handler run outside one)."""
        if self.facebook is None:
            raise ValidationError(
                "This op needs a workspace session", fix="Call it through Ad Monster (chat, API or MCP)"
            )
        return self.facebook


meta_ops = OpSet("fi_facebook")


# ---- What the audit ops answer as data (their result models: MCP's outputSchema) -----------------------------------


class AuditEntryData(DataRow):
    """One write of the audit log."""

    id: int
    created_at: str = Field(description="When it was recorded (ISO-8601, UTC).")
    interface: str = Field(description="Where it came from: chat, console, mcp, api, cli, job, …")
    op: str
    args: dict[str, Any] = Field(description="Its arguments (without secrets).")
    summary: str
    changes: list[Change] = Field(description="The fields it changed (or meant to), with before and after.")
    object_ids: list[str] = Field(description="The objects it made or changed.")
    # A str, not a Literal of the store's AUDIT_OUTCOMES: a read op's schema names no dry run (tests/test_typed_results.py).
    outcome: str = Field(
        description="ok, error, pending (sent, no answer yet) or unknown (the answer was lost); "
        "reconcile settles the last two."
    )
    error: str | None
    fbtrace_id: str | None
    undo_of: int | None = Field(description="The entry this one undid.")
    undone_by: int | None = Field(description="The entry that undid this one.")


class AuditLog(OpData):
    entries: list[AuditEntryData] = Field(description="Newest first.")


class UndoData(OpData):
    undone: int | None = Field(description="The audit entry undone (null: Facebook already showed the earlier values).")
    changes: list[Change] = Field(description="The fields set back (none when nothing needed it).")


class SettledWrite(DataRow):
    audit_id: int
    op: str
    outcome: Literal["ok", "error", "unknown"]
    object_ids: list[str]


class ReconcileData(OpData):
    settled: list[SettledWrite] = Field(description="Writes whose outcome is now recorded.")
    open: list[SettledWrite] = Field(description="Writes still unknown (the hourly reconcile job looks again).")
    # Absent, never null (the schema says so): None is only the model's default.
    entry: AuditEntryData = Field(None, description="With audit_id, when that entry was already settled: the entry.")  # type: ignore[assignment]


class PendingConfirmation(DataRow):
    id: str = Field(description="Pass it as confirm (or /confirm it).")
    op: str
    preview: str


class ConfirmationList(OpData):
    confirmations: list[PendingConfirmation]


class AuditLogArgs(OpArgs):
    """Show the audit log: every write with who, what, before/after and outcome, newest first."""

    limit: int = Field(10, ge=1, le=200, description="How many entries to show (1-200).")
    op: str | None = Field(None, description="Only entries of this op, e.g. pause_campaign.")


@meta_ops.op(OpKind.READ, group=TaskGroup.SAFETY, result=AuditLog)
async def audit_log(ctx: FacebookContext, args: AuditLogArgs) -> OpResult:
    entries = await ctx.session.store.list_audit(ctx.session.workspace.id, limit=args.limit, op=args.op)
    if not entries:
        return OpResult(text="The audit log is empty: nothing has been written yet.", data={"entries": []})
    lines = [f"Audit log ({len(entries)} newest):"]
    for entry in entries:
        undo = (
            " (undone)"
            if entry.undone_by
            else (" · /undo %d" % entry.id if _undoable_changes(entry.changes) and entry.outcome == "ok" else "")
        )
        lines.append(
            f"  #{entry.id} {when_text(entry.created_at, None)} {entry.interface} {entry.op} → {entry.outcome}: "
            f"{entry.summary}{undo}"
        )
    return OpResult(text="\n".join(lines), data={"entries": [_audit_data(e) for e in entries]})


def _audit_data(entry: AuditEntry) -> dict[str, Any]:
    return {
        k: getattr(entry, k)
        for k in (
            "id",
            "created_at",
            "interface",
            "op",
            "args",
            "summary",
            "changes",
            "object_ids",
            "outcome",
            "error",
            "fbtrace_id",
            "undo_of",
            "undone_by",
        )
    }


class UndoArgs(OpArgs):
    """Undo a status or budget change recorded in the audit log, restoring each field's earlier value."""

    audit_id: int = Field(..., ge=1, description="The audit log entry to undo (audit_log lists them).")


def _undoable_changes(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Status flips between ACTIVE and PAUSED and budget/cap changes of existing objects; archive and delete are final."""
    return [
        c
        for c in changes or []
        if c.get("field") in UNDOABLE_FIELDS
        and c.get("object_id")
        and c.get("before") not in (None, "")
        and (c["field"] != "status" or {c.get("before"), c.get("after")} <= UNDOABLE_STATUSES)
    ]


@meta_ops.op(OpKind.SPEND, group=TaskGroup.SAFETY, result=UndoData)
async def undo(ctx: FacebookContext, args: UndoArgs) -> WritePlan | OpResult:
    """Undo from what Facebook shows: each field goes back to its value before the entry, from the value it has now.
    An entry whose outcome is unknown is looked up first; an undo runs once however many ask for it at once."""
    facebook = ctx.session
    entry = await facebook.store.get_audit(facebook.workspace.id, args.audit_id)
    if entry is None:
        raise ValidationError(
            f"Audit entry #{args.audit_id} does not exist", fix="Run /audit to see the entries", blame_field="audit_id"
        )
    if entry.outcome in ("pending", "unknown"):
        verdict = await _what_facebook_shows(ctx, entry, facebook)
        if verdict.outcome != "unknown":
            await facebook.store.settle_audit(
                facebook.workspace.id,
                entry.id,
                outcome=verdict.outcome,
                object_ids=verdict.object_ids,
                error=None if verdict.outcome == "ok" else verdict.words,
            )
            entry = await facebook.store.get_audit(facebook.workspace.id, entry.id) or entry
    _check_undoable(entry)
    changes = _undoable_changes(entry.changes)
    current = await _current_values(ctx.graph, changes)
    reverse = [
        Change(
            c["object_id"],
            c["object_type"],
            c["object_name"],
            c["field"],
            current[(c["object_id"], c["field"])],
            c["before"],
            c.get("currency"),
        )
        for c in changes
        if str(current[(c["object_id"], c["field"])]) != str(c["before"])
    ]
    if not reverse:
        return OpResult(
            text=f"Nothing to undo for #{entry.id} ({entry.op}): Facebook already shows the earlier values.",
            data={"undone": None, "changes": []},
        )
    moved = [
        c for c in changes if str(current[(c["object_id"], c["field"])]) not in (str(c["after"]), str(c["before"]))
    ]
    updates: dict[str, dict[str, Any]] = {}
    for change in reverse:
        updates.setdefault(str(change.object_id), {})[change.field] = change.after

    async def execute() -> OpResult:
        mine = _current_audit.get()
        if mine is not None and not await facebook.store.mark_undone(facebook.workspace.id, entry.id, mine):
            held = await facebook.store.get_audit(facebook.workspace.id, entry.id)
            holder = held.undone_by if held is not None else None
            raise ValidationError(
                f"Audit entry #{entry.id} is already undone, or being undone, by #{holder}",
                fix="Nothing was sent; /audit shows the log",
            )
        results = await ctx.graph.batch(
            [BatchItem("POST", object_id, body=fields) for object_id, fields in updates.items()]
        )
        failed = [r for r in results if not r.ok]
        if failed:
            error = failed[0].error or FacebookError(f"Undoing #{entry.id} failed", fix="Run /audit and try again")
            if mine is not None and not is_ambiguous(error) and len(failed) == len(results):
                await facebook.store.release_undone(facebook.workspace.id, entry.id, mine)
            raise error
        lines = [f"Undid #{entry.id} ({entry.op}):"] + [f"  {_change_words(c)}" for c in reverse]
        lines += [
            f"  (it had changed since: {c['object_type']} {c['object_id']} showed {c['field']} "
            f"{_value_words(current[(c['object_id'], c['field'])], c)} instead of {_value_words(c['after'], c)})"
            for c in moved
        ]
        return OpResult(text="\n".join(lines), data={"undone": entry.id, "changes": [_change_data(c) for c in reverse]})

    return WritePlan(
        summary=f"undo #{entry.id} ({entry.op}): " + "; ".join(_change_words(c) for c in reverse),
        ad_account_id=None,
        requests=[GraphRequest("POST", object_id, fields) for object_id, fields in updates.items()],
        changes=reverse,
        execute=execute,
    )


def _check_undoable(entry: AuditEntry) -> None:
    if entry.undone_by:
        raise ValidationError(
            f"Audit entry #{entry.id} was already undone by #{entry.undone_by}",
            fix="Nothing to do; /audit shows the log",
        )
    if entry.outcome in ("pending", "unknown"):
        raise ValidationError(
            f"Audit entry #{entry.id} ({entry.op}) has an unknown outcome: Facebook does not show yet whether it happened",
            fix=f"Try /undo {entry.id} again in a few minutes, or /reconcile",
        )
    if entry.outcome != "ok" or not _undoable_changes(entry.changes):
        raise ValidationError(
            f"Audit entry #{entry.id} ({entry.op}) has no status or budget change to undo",
            fix="Only successful status, budget and spend-cap changes can be undone",
        )


async def _current_values(graph: GraphClient, changes: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """Each changed field's value on Facebook now, by (object id, field)."""
    fields: dict[str, set[str]] = {}
    for change in changes:
        fields.setdefault(change["object_id"], set()).add(change["field"])
    out = {}
    for object_id, names in fields.items():
        node = await graph.get(object_id, {"fields": ",".join(sorted(names))})
        out.update({(object_id, name): node.get(name) for name in names})
    return out


def _value_words(value: Any, change: Any) -> str:
    currency = change.get("currency") if isinstance(change, dict) else change.currency
    field_name = change.get("field") if isinstance(change, dict) else change.field
    return str(value) if field_name == "status" else _money(value, currency)


def _change_words(change: Change) -> str:
    return (
        f"{change.object_type} {change.object_name} ({change.object_id}): {change.field} {_value_words(change.before, change)}"
        f" → {_value_words(change.after, change)}"
    )


class ReconcileArgs(OpArgs):
    """Settle writes whose outcome is unknown (the answer was lost) or still pending (the process stopped mid-write): look
    at Facebook for what each would have made or changed, and record what it shows. Nothing is ever sent again."""

    audit_id: int | None = Field(None, ge=1, description="Only this audit entry (default: every unsettled one).")


@dataclass
class Verdict:
    """What Facebook shows about one unsettled write."""

    outcome: str  # ok | error | unknown
    words: str  # for the person
    object_ids: list[str] | None = None


@meta_ops.op(OpKind.READ, group=TaskGroup.SAFETY, result=ReconcileData)
async def reconcile(ctx: FacebookContext, args: ReconcileArgs) -> OpResult:
    facebook = ctx.session
    entries = await facebook.store.unsettled_audit(facebook.workspace.id)
    if args.audit_id is not None:
        entries = [e for e in entries if e.id == args.audit_id]
        if not entries:
            entry = await facebook.store.get_audit(facebook.workspace.id, args.audit_id)
            if entry is None:
                raise ValidationError(
                    f"Audit entry #{args.audit_id} does not exist",
                    fix="Run /audit to see the entries",
                    blame_field="audit_id",
                )
            return OpResult(
                text=f"Audit entry #{entry.id} ({entry.op}) is already settled: {entry.outcome}.",
                data={"settled": [], "open": [], "entry": _audit_data(entry)},
            )
    if not entries:
        return OpResult(
            text="Every write in the audit log is settled: nothing to reconcile.", data={"settled": [], "open": []}
        )
    lines: list[str] = []
    settled: list[dict[str, Any]] = []
    still_open: list[dict[str, Any]] = []
    for entry in entries:
        verdict = await _what_facebook_shows(ctx, entry, facebook)
        if verdict.outcome != "unknown" or entry.outcome == "pending":
            await facebook.store.settle_audit(
                facebook.workspace.id,
                entry.id,
                outcome=verdict.outcome,
                object_ids=verdict.object_ids,
                error=None if verdict.outcome == "ok" else verdict.words,
            )
        (still_open if verdict.outcome == "unknown" else settled).append(
            {"audit_id": entry.id, "op": entry.op, "outcome": verdict.outcome, "object_ids": verdict.object_ids or []}
        )
        lines.append(f"- #{entry.id} {entry.op} ({entry.summary}): {verdict.words}")
    head = (
        f"Reconciled {len(settled)} of {len(entries)} unsettled write(s)"
        + (f"; {len(still_open)} still unknown, checked again by the hourly reconcile job" if still_open else "")
        + ":"
    )
    return OpResult(text="\n".join([head, *lines]), data={"settled": settled, "open": still_open})


async def _what_facebook_shows(ctx: FacebookContext, entry: AuditEntry, facebook: Facebook) -> Verdict:
    """Look up an unsettled write: its creates by client tag, an image by its hash, a customer-list upload by its
    session's count, its updates by the fields' current values."""
    age = (facebook.store.clock() - datetime.fromisoformat(entry.created_at)).total_seconds()
    settled_for_sure = age >= (facebook.graph.settle_window if facebook.graph else 0)
    try:
        sessions = [t for t in entry.tags if t.get("kind") == USERS_SESSION_LOOKUP]
        if sessions:
            return await _users_upload_shown(ctx.graph, sessions[0], settled_for_sure)
        creates = [t for t in entry.tags if t.get("kind") != VIDEO_UPLOAD_LOOKUP]
        if creates:
            return await _creates_shown(ctx.graph, creates, settled_for_sure)
        videos = [t for t in entry.tags if t.get("kind") == VIDEO_UPLOAD_LOOKUP]
        if videos:
            return await _video_uploads_shown(ctx.graph, videos, settled_for_sure)
        changes = [c for c in entry.changes if _shown_as_a_field(c)]
        if changes:
            return await _updates_shown(ctx.graph, changes)
    except FacebookError as error:
        return Verdict("unknown", f"still unknown: looking at Facebook failed ({error.message})")
    return Verdict(
        "unknown",
        "still unknown: this kind of write leaves nothing to look up "
        "(events and customer lists are safe to send again: duplicates are dropped)",
    )


def _shown_as_a_field(change: dict[str, Any]) -> bool:
    """A change reconcile can read back: a Graph field of an existing object, read before the write (a status or a
    budget may have had no earlier value). A count of events sent or of customers added is no field to read."""
    field_name = str(change.get("field") or "")
    return bool(
        change.get("object_id")
        and field_name.isidentifier()
        and (change.get("before") not in (None, "") or field_name in UNDOABLE_FIELDS)
    )


def _lookup_of(tag: dict[str, str]) -> CreateLookup:
    edge = tag["path"].rstrip("/").rsplit("/", 1)[-1]
    return CreateLookup(
        tag["path"], tag["name"], tag["tag"], statuses=fb_creative.LOOKUP_AD_STATUSES if edge == "ads" else None
    )


async def _look_for(graph: GraphClient, tag: dict[str, str]) -> str | None:
    """The id of what one tag names (an image: its hash), or None when Facebook does not show it."""
    if tag.get("kind") == IMAGE_LOOKUP:
        return await fb_creative.image_in_library(graph, tag)
    return await graph.find_tagged(_lookup_of(tag))


async def _creates_shown(graph: GraphClient, tags: list[dict[str, str]], settled_for_sure: bool) -> Verdict:
    found = {t["tag"]: await _look_for(graph, t) for t in tags if t.get("path")}
    made = [object_id for object_id in found.values() if object_id]
    if len(made) == len(found):
        return Verdict("ok", f"it happened: Facebook shows {', '.join(made)}", made)
    if not settled_for_sure:
        return Verdict(
            "unknown", "still unknown: too soon to be sure it did not land (Facebook can finish a request late)"
        )
    missing = ", ".join(t["name"] or t["tag"] for t in tags if not found.get(t["tag"]))
    if made:
        return Verdict("error", f"only part of it happened: Facebook shows {', '.join(made)}, not {missing}", made)
    return Verdict(
        "error",
        f"it did not happen: nothing on Facebook carries its tag ({missing}); run it again if you still want it",
        [],
    )


async def _video_uploads_shown(graph: GraphClient, lookups: list[dict[str, str]], settled_for_sure: bool) -> Verdict:
    """Video uploads cut short (a crash or Ctrl-C between their phases), settled by each video's upload phase."""
    shown = {lookup["tag"]: await fb_creative.video_upload_shown(graph, lookup) for lookup in lookups}
    held = [video_id for video_id, phase in shown.items() if phase != "gone"]  # an unfinished upload is an object too
    if all(phase == "complete" for phase in shown.values()):
        return Verdict("ok", f"it happened: the upload of video {', '.join(shown)} finished", held)
    if not settled_for_sure:
        return Verdict("unknown", "still unknown: too soon to be sure the upload will not finish", held)
    unfinished = ", ".join(video_id for video_id, phase in shown.items() if phase != "complete")
    return Verdict(
        "error",
        f"it did not happen: the upload of video {unfinished} never finished (Facebook does not use "
        "an unfinished upload); upload the file again",
        held,
    )


async def _users_upload_shown(graph: GraphClient, lookup: dict[str, str], settled_for_sure: bool) -> Verdict:
    """Lost batches of a customer-list upload, settled by the upload session's count of rows received."""
    shown, received = await fb_audience.lost_rows_shown(graph, lookup)
    audience_id = lookup["path"].split("/", 1)[0]
    if shown == "arrived":
        return Verdict("ok", f"it happened: the upload session shows every row received ({received:,})", [audience_id])
    if shown == "unclear":
        return Verdict(
            "unknown",
            f"still unknown: the upload session's count ({received} rows received) tells neither "
            "that the lost batches arrived nor that they did not",
            [audience_id],
        )
    if not settled_for_sure:
        return Verdict(
            "unknown",
            "still unknown: too soon to be sure the lost batches did not land (Facebook can finish a request late)",
            [audience_id],
        )
    earlier = f"only the {received:,} rows of the earlier batches" if received else "no row of it"
    return Verdict(
        "error",
        f"it did not happen: the upload session holds {earlier}; run the same upload again (people "
        "already in the list are not added twice)",
        [audience_id],
    )


async def _updates_shown(graph: GraphClient, changes: list[dict[str, Any]]) -> Verdict:
    by_object: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_object.setdefault(str(change["object_id"]), []).append(change)
    now = await _current_values(graph, changes)
    shown = [(c, str(now[(str(c["object_id"]), c["field"])])) for c in changes]
    if all(value == str(c["after"]) for c, value in shown):
        return Verdict("ok", "it happened: Facebook shows the new values", list(by_object))
    if all(value == str(c["before"]) for c, value in shown):
        return Verdict("error", "it did not happen: Facebook still shows the earlier values", list(by_object))
    return Verdict(
        "unknown",
        "still unknown: Facebook shows values that are neither the earlier nor the intended ones "
        "(changed since?); look at the objects",
        list(by_object),
    )


class ListConfirmationsArgs(OpArgs):
    """List the calls waiting for a person's confirmation, with their ids and previews."""


@meta_ops.op(OpKind.READ, group=TaskGroup.SAFETY, result=ConfirmationList)
async def list_confirmations(ctx: FacebookContext, args: ListConfirmationsArgs) -> OpResult:
    pending = await ctx.session.store.list_confirmations(ctx.session.workspace.id)
    if not pending:
        return OpResult(text="No calls are waiting for confirmation.", data={"confirmations": []})
    lines = ["Waiting for confirmation:"] + [f"  {c.id}: {c.op} — {c.preview}" for c in pending]
    return OpResult(
        text="\n".join(lines), data={"confirmations": [{"id": c.id, "op": c.op, "preview": c.preview} for c in pending]}
    )


# ---------------------------------------------------------------------------------------------------------------
# Connecting Facebook: the OAuth code flow and the token lifecycle
# ---------------------------------------------------------------------------------------------------------------

REQUIRED_SCOPES = (
    "ads_management",
    "ads_read",
    "business_management",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_ads",
    "instagram_basic",
)
ESSENTIAL_SCOPES = ("ads_management",)
STATE_TTL_SECONDS = 600
LONG_LIVED_WARNING_DAYS = (7, 1)


@dataclass(frozen=True)
class AppCredentials:
    """The Facebook app Ad Monster signs in with, and where its OAuth dialog and Graph API live."""

    app_id: str
    app_secret: str = dataclass_field(repr=False)
    graph_url: str
    dialog_url: str
    api_version: str

    @property
    def app_token(self) -> str:
        return f"{self.app_id}|{self.app_secret}"


@dataclass
class TokenHealth:
    """What Facebook's debug_token says about a workspace's token, in the terms a person needs."""

    connected: bool
    valid: bool = False
    kind: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    app_id: str | None = None
    expires_at: datetime | None = None
    scopes: list[str] = dataclass_field(default_factory=list)
    missing_scopes: list[str] = dataclass_field(default_factory=list)
    reason: str | None = None
    source: str | None = None  # where an unstored token comes from (the environment), else None: the store

    def days_left(self, now: datetime) -> float | None:
        return None if self.expires_at is None else (self.expires_at - now).total_seconds() / 86400

    def describe(self, now: datetime) -> str:
        if not self.connected:
            return (
                "Facebook is not connected. Connect with /connect (or `admonster connect`, or `admonster token set`)."
            )
        if not self.valid:
            reason = (self.reason or "Facebook refused it").strip().rstrip(".")
            where = f" (from {self.source})" if self.source else ""
            return f"The Facebook token{where} is not valid: {reason}. Reconnect with /connect."
        days = self.days_left(now)
        expiry = (
            "never expires"
            if days is None
            else f"expires in {max(days, 0):.0f} day(s), on {self.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        who = f"{self.user_name} ({self.user_id})" if self.user_name else self.user_id or "unknown user"
        lines = [
            f"Facebook token valid ({self.kind or 'user'} token of {who}); it {expiry}.",
            f"Scopes: {', '.join(self.scopes) or 'none'}.",
        ]
        if self.source:
            lines.append(
                f"It comes from {self.source}, not from a sign-in; /connect signs in and keeps the token for "
                "this workspace."
            )
        if self.missing_scopes:
            lines.append(f"Missing: {', '.join(self.missing_scopes)}. Fix: reconnect with /connect and allow them.")
        if days is not None and days <= LONG_LIVED_WARNING_DAYS[0]:
            lines.append(
                "Fix: reconnect soon with /connect; Facebook has no refresh token, a person must sign in again."
            )
        return "\n".join(lines)

    def to_data(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "valid": self.valid,
            "kind": self.kind,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "app_id": self.app_id,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "scopes": self.scopes,
            "missing_scopes": self.missing_scopes,
            "reason": self.reason,
            "source": self.source,
        }


def sign_state(secret: bytes, workspace_id: int, nonce: str, expires_at: int) -> str:
    """An OAuth `state`: the workspace, a single-use nonce and an expiry, HMAC-signed so it cannot be forged."""
    payload = base64.urlsafe_b64encode(f"{workspace_id}.{nonce}.{expires_at}".encode()).decode().rstrip("=")
    signature = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{signature}"


def read_state(secret: bytes, state: str | None, now: float) -> tuple[int, str]:
    """The (workspace id, nonce) a state carries, after checking its signature and expiry; ValidationError otherwise."""
    refused = ValidationError(
        "This sign-in link is not valid (its state was altered or is not ours)",
        fix="Start again with /connect and use the new link",
        blame_field="state",
    )
    if not isinstance(state, str) or state.count(".") != 1 or not state.isascii():  # ours is base64 and hex:
        raise refused  # anything else is refused before hmac.compare_digest (it raises TypeError on non-ASCII text)
    payload, signature = state.split(".")
    expected = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise refused
    try:
        workspace_id, nonce, expires_at = (
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split(".")
        )
        workspace, expiry = int(workspace_id), int(expires_at)
    except (ValueError, UnicodeDecodeError):
        raise refused from None
    if now > expiry:
        raise ValidationError(
            "This sign-in link expired (links are valid for 10 minutes)",
            fix="Start again with /connect and finish within 10 minutes",
            blame_field="state",
        )
    return workspace, nonce


class SigninBinding:
    """Who asked for a sign-in link: the SHA-256 of a secret only that browser (an HttpOnly cookie) or that terminal's
    loopback listener holds. The interface sets it (`bind_signin`) before the `connect` op runs; the link's state is
    stored with it and the callback refuses a completion that does not present the same secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.used = False  # set when a link was made with it (the console then sets its cookie)

    @property
    def digest(self) -> str:
        return binding_digest(self.secret)


def binding_digest(secret: str | None) -> str:
    return hashlib.sha256(("admonster signin\0" + (secret or "")).encode()).hexdigest()


SIGNIN_BINDING: ContextVar[SigninBinding | None] = ContextVar("admonster_signin_binding", default=None)


def bind_signin(secret: str) -> SigninBinding:
    """Bind the sign-in links made from here on (in this request or task) to `secret`."""
    binding = SigninBinding(secret)
    SIGNIN_BINDING.set(binding)
    return binding


class SigninElsewhere(ValidationError):
    """A sign-in link completed by another browser or terminal than the one that asked for it."""


class SwitchNeeded(ValidationError):
    """A sign-in as another Facebook user than the one the workspace is connected to, without `switch`."""


class Connector:
    """The OAuth code flow and the token lifecycle for every workspace of one store."""

    def __init__(
        self,
        store: Store,
        app: AppCredentials | None,
        state_secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
        graph_url: str = "https://graph.facebook.com",
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        self.store = store
        self.app = app
        self.state_secret = state_secret
        self.clock = clock
        self.graph_url = app.graph_url if app else graph_url  # where tokens are inspected when no app is configured
        self.api_version = app.api_version if app else api_version

    def _require_app(self) -> AppCredentials:
        if self.app is None:
            raise ValidationError(
                "No Facebook app is configured, so Ad Monster cannot sign anyone in",
                fix="Set ADMONSTER_APP_ID and ADMONSTER_APP_SECRET (or use `admonster token set`)",
            )
        return self.app

    def _app_client(self) -> GraphClient:
        app = self._require_app()
        return GraphClient(
            app.app_token, app_secret=app.app_secret, base_url=app.graph_url, api_version=app.api_version
        )

    async def dialog_url(self, workspace_id: int, redirect_uri: str, *, switch: bool = False) -> tuple[str, datetime]:
        """The Facebook sign-in link for a workspace, with a fresh single-use state valid 10 minutes, bound to the
        browser or terminal that asked for it (`bind_signin`); `switch` lets it move the workspace to another user."""
        app = self._require_app()
        binding = SIGNIN_BINDING.get()
        if binding is None:
            raise ValidationError(
                "Sign-in links are made only by the console, the chat or the terminal, which can bind "
                "them to the person who asked",
                fix="Press Connect Facebook in the console, or run `admonster connect` in a terminal",
            )
        nonce = secrets.token_urlsafe(16)
        expires = int(self.clock()) + STATE_TTL_SECONDS
        await self.store.add_oauth_state(
            workspace_id, nonce, datetime.fromtimestamp(expires, UTC), binding_hash=binding.digest, allow_switch=switch
        )
        binding.used = True
        query = urllib.parse.urlencode(
            {
                "client_id": app.app_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": ",".join(REQUIRED_SCOPES),
                "state": sign_state(self.state_secret, workspace_id, nonce, expires),
            }
        )
        return f"{app.dialog_url}?{query}", datetime.fromtimestamp(expires, UTC)

    async def state_workspace(self, state: str | None) -> int | None:
        """The workspace a (well-signed) state names, else None: which sign-in cookie the callback reads."""
        try:
            return read_state(self.state_secret, state, self.clock())[0]
        except ValidationError:
            return None

    async def complete(
        self,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        error_description: str | None,
        redirect_uri: str,
        binding_secret: str | None = None,
    ) -> tuple[int, TokenHealth]:
        """Finish a sign-in from the callback's query; stores the long-lived token. Raises with a readable reason.

        `binding_secret` is what the completing browser (its cookie) or terminal (its listener) holds: it must be the
        secret the link was made with, else nothing happens (the link is not even used up)."""
        workspace_id, nonce = read_state(self.state_secret, state, self.clock())
        bound = await self.store.oauth_state_binding(nonce)
        if bound is not None and (
            not bound[0] or not binding_secret or not hmac.compare_digest(bound[0], binding_digest(binding_secret))
        ):
            raise SigninElsewhere(
                "This sign-in link was started in another browser",
                fix="Start again from your own console (or terminal) with Connect Facebook or /connect",
                blame_field="state",
            )
        allow_switch = bool(bound and bound[1])
        if await self.store.consume_oauth_state(nonce) != workspace_id:
            raise ValidationError(
                "This sign-in link was already used", fix="Start again with /connect", blame_field="state"
            )
        if error:
            detail = "you chose not to connect" if error == "access_denied" else (error_description or error)
            raise ValidationError(f"Facebook did not connect: {detail}", fix="Run /connect again and choose Continue")
        if not code:
            raise ValidationError("Facebook sent no authorization code", fix="Run /connect again", blame_field="code")
        app = self._require_app()
        async with self._app_client() as client:
            short = await client.get(
                "oauth/access_token",
                {"client_id": app.app_id, "client_secret": app.app_secret, "redirect_uri": redirect_uri, "code": code},
            )
            long = await client.get(
                "oauth/access_token",
                {
                    "grant_type": "fb_exchange_token",
                    "client_id": app.app_id,
                    "client_secret": app.app_secret,
                    "fb_exchange_token": short["access_token"],
                },
            )
        health = await self.inspect(long["access_token"])
        current = await self.store.load_token(workspace_id)
        if (
            current is not None
            and current.user_id
            and health.user_id
            and str(current.user_id) != str(health.user_id)
            and not allow_switch
        ):
            before = await self._user_name(current.token) or f"Facebook user {current.user_id}"
            after = health.user_name or f"Facebook user {health.user_id}"
            raise SwitchNeeded(
                f"This workspace is connected to {before}; connect it to {after} instead? Nothing was changed",
                fix=f"To move this workspace to {after}, press Connect to another Facebook user in the "
                "console (or run /connect --switch) and sign in again",
            )
        health = await self.store_checked_token(workspace_id, long["access_token"], kind="user", checked=health)
        return workspace_id, health

    async def _user_name(self, token: str) -> str | None:
        try:
            async with GraphClient(
                token,
                app_secret=self.app.app_secret if self.app else None,
                base_url=self.graph_url,
                api_version=self.api_version,
            ) as client:
                return (await client.get("me", {"fields": "name"})).get("name")
        except FacebookError:
            return None

    async def inspect(self, token: str) -> TokenHealth:
        """Ask Facebook's debug_token (and /me/permissions) about a token; never stores anything."""
        app = self.app
        if app is not None:
            client = self._app_client()
        else:  # no app configured: a token may inspect itself
            client = GraphClient(token, base_url=self.graph_url, api_version=self.api_version)
        async with client:
            info = (await client.get("debug_token", {"input_token": token})).get("data", {})
        health = _health_from_debug(info)
        if health.valid and not self.foreign(health):
            health = await self._add_permissions_and_name(token, health)
        return health

    def foreign(self, health: TokenHealth) -> bool:
        """Whether the token was made for another Facebook app than Ad Monster's."""
        return self.app is not None and bool(health.app_id) and health.app_id != self.app.app_id

    async def _add_permissions_and_name(self, token: str, health: TokenHealth) -> TokenHealth:
        app = self.app
        async with GraphClient(
            token, app_secret=app.app_secret if app else None, base_url=self.graph_url, api_version=self.api_version
        ) as client:
            permissions = await client.get_all("me/permissions")
            me = await client.get("me", {"fields": "id,name"})
        granted = [p["permission"] for p in permissions if p.get("status") == "granted"]
        health.scopes = granted or health.scopes
        health.missing_scopes = [s for s in REQUIRED_SCOPES if s not in health.scopes]
        health.user_name, health.user_id = me.get("name"), me.get("id") or health.user_id
        return health

    async def store_checked_token(
        self, workspace_id: int, token: str, *, kind: str, checked: TokenHealth | None = None
    ) -> TokenHealth:
        """Check a token (right app, valid, ads_management) and only then store it encrypted (`checked`: an
        `inspect` of it just made)."""
        health = checked or await self.inspect(token)
        if self.foreign(health):
            raise ValidationError(
                f"This token belongs to another Facebook app ({health.app_id}), not Ad Monster's ({self.app.app_id if self.app else 'none configured'})",
                fix="Create the token for Ad Monster's app (ADMONSTER_APP_ID) and try again",
            )
        if not health.valid:
            raise ValidationError(
                f"Facebook says this token is not valid: {health.reason or 'unknown reason'}",
                fix="Create a fresh token (or /connect) and try again",
            )
        missing = [s for s in ESSENTIAL_SCOPES if s not in health.scopes]
        if missing:
            raise ValidationError(
                f"This token lacks {', '.join(missing)}, which every ad operation needs",
                fix="Sign in again and allow managing ads, or give the system user the ads_management permission",
            )
        await self.store.save_token(
            workspace_id,
            token=token,
            kind=kind,
            app_id=health.app_id,
            user_id=health.user_id,
            expires_at=health.expires_at,
            scopes=health.scopes,
        )
        return health

    async def status(self, workspace_id: int, unstored: str | None = None) -> TokenHealth:
        """The workspace's token as Facebook sees it now (and recorded as checked). `unstored`: the token the session
        uses when none is stored (ADMONSTER_ACCESS_TOKEN), checked the same way and said to be from there."""
        stored = await self.store.load_token(workspace_id)
        if stored is None and unstored:
            try:
                health = await self.inspect(unstored)
            except AuthError as error:
                health = TokenHealth(connected=True, valid=False, reason=error.message)
            health.source = "ADMONSTER_ACCESS_TOKEN"
            return health
        if stored is None:
            return TokenHealth(connected=False)
        try:
            health = await self.inspect(stored.token)
        except AuthError as error:
            health = TokenHealth(connected=True, valid=False, reason=error.message)
        if not health.valid:
            await self.store.mark_token_invalid(workspace_id, health.reason or "invalid")
        else:
            await self.store.mark_token_checked(
                workspace_id, valid=True, expires_at=health.expires_at, scopes=health.scopes
            )
        return health

    async def disconnect(self, workspace_id: int) -> tuple[str, bool]:
        """Forget this workspace's token; revoke Ad Monster's permissions (`DELETE /me/permissions`, which acts on the
        Facebook user and app, not on one token) only when no other workspace holds a token of the same user and app.
        -> (what happened, whether the app was revoked).

        Source: https://developers.facebook.com/docs/graph-api/reference/user/permissions (DELETE
        /{user-id}/permissions[/{permission-name}] with a user or app token of the app; all versions). That removing
        every permission de-authorizes the app for the user, so every token of that user for the app stops working, is
        Facebook Login's revoking guide, not quoted on that page: unverified here, and what the sandbox does."""
        stored = await self.store.load_token(workspace_id)
        if stored is None:
            return "Facebook was not connected; nothing to do.", False
        others = (
            await self.store.token_holders(stored.user_id, stored.app_id, exclude_workspace=workspace_id)
            if stored.user_id
            else 0
        )
        if others:
            await self.store.delete_token(workspace_id)
            return (
                f"Disconnected this workspace: its stored token is deleted. Ad Monster keeps access for {others} other "
                "workspace(s) of the same Facebook user, so the app was not revoked."
            ), False
        revoked, done = "Facebook permissions revoked", True
        try:
            async with GraphClient(
                stored.token,
                app_secret=self.app.app_secret if self.app else None,
                base_url=self.graph_url,
                api_version=self.api_version,
            ) as client:
                await client.delete("me/permissions")
        except FacebookError as error:
            revoked, done = (
                (
                    f"Facebook did not revoke the permissions ({error.message}); remove the app in Facebook's "
                    "settings if needed"
                ),
                False,
            )
        await self.store.delete_token(workspace_id)
        return f"Disconnected: {revoked}; the stored token is deleted.", done


def _health_from_debug(info: dict[str, Any]) -> TokenHealth:
    expires = int(info.get("expires_at") or 0)
    error = info.get("error") or {}
    scopes = [s for s in info.get("scopes") or [] if isinstance(s, str)]
    return TokenHealth(
        connected=True,
        valid=bool(info.get("is_valid")),
        kind=str(info.get("type") or "USER").lower(),
        user_id=info.get("user_id"),
        app_id=str(info["app_id"]) if info.get("app_id") else None,
        expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
        scopes=scopes,
        missing_scopes=[s for s in REQUIRED_SCOPES if s not in scopes],
        reason=error.get("message") if error else (None if info.get("is_valid") else "Facebook marked it invalid"),
    )


# ---- What the connection ops answer as data ----


class SigninLink(OpData):
    url: str = Field(description="The Facebook sign-in link (single use).")
    expires_at: str = Field(description="When the link expires (ISO-8601, UTC; 10 minutes).")
    scopes: list[str] = Field(description="The permissions it asks for.")


class TokenHealthData(OpData):
    """TokenHealth.to_data: the token as Facebook's debug_token sees it (ok only when connected and valid)."""

    connected: bool
    valid: bool
    kind: str | None = Field(description="user, system_user, page, app… (null: not connected).")
    user_id: str | None
    user_name: str | None
    app_id: str | None
    expires_at: str | None = Field(description="ISO-8601 (null: never expires, or not connected).")
    scopes: list[str]
    missing_scopes: list[str] = Field(description="Permissions Ad Monster asks for that the token lacks.")
    reason: str | None = Field(description="Why it is not valid.")
    source: str | None = Field(
        description="Where an unstored token comes from (ADMONSTER_ACCESS_TOKEN); null: the store."
    )
    api_version_warning: str = Field(
        None, description="Present when the configured Graph API version ends within 90 days."
    )  # type: ignore[assignment]  # absent, never null


class Disconnected(OpData):
    disconnected: Literal[True]
    revoked: bool = Field(description="Whether Facebook's permissions for Ad Monster were revoked.")


class ConnectArgs(OpArgs):
    """Connect Facebook: returns the sign-in link (valid 10 minutes) that grants Ad Monster the permissions its ops need."""

    switch: bool = Field(
        False,
        description="Allow this sign-in to move the workspace to another Facebook user than the "
        "one it is connected to (without it, such a sign-in is refused).",
    )


@meta_ops.op(OpKind.READ, group=TaskGroup.CONNECT, name="connect", result=SigninLink)
async def connect_op(ctx: FacebookContext, args: ConnectArgs) -> OpResult:
    facebook = ctx.session
    if facebook.connector is None or facebook.callback_url is None:
        raise ValidationError(
            "Signing in is not available in this interface",
            fix="Run `admonster connect`, or `admonster serve` and /connect there",
        )
    redirect_uri = await facebook.callback_url()
    url, expires = await facebook.connector.dialog_url(facebook.workspace.id, redirect_uri, switch=args.switch)
    return OpResult(
        text=f"Open this link to connect Facebook (valid until {expires:%H:%M} UTC, usable once):\n{url}\n"
        f"It asks for: {', '.join(REQUIRED_SCOPES)}.",
        data={"url": url, "expires_at": expires.isoformat(), "scopes": list(REQUIRED_SCOPES)},
    )


class TokenStatusArgs(OpArgs):
    """The Facebook connection's health: valid or not, when it expires, its scopes and the scopes still missing."""


@meta_ops.op(OpKind.READ, group=TaskGroup.CONNECT, name="token_status", result=TokenHealthData)
async def token_status_op(ctx: FacebookContext, args: TokenStatusArgs) -> OpResult:
    facebook = ctx.session
    if facebook.connector is None:
        raise ValidationError("Token checks are not available in this interface", fix="Use `admonster token status`")
    unstored = None
    if facebook.graph is not None and await facebook.store.load_token(facebook.workspace.id) is None:
        unstored = facebook.graph.access_token  # the session's token comes from the environment
    health = await facebook.connector.status(facebook.workspace.id, unstored=unstored)
    now = await ctx.now()
    text, data = health.describe(now), health.to_data()
    warning = api_version_warning(facebook.connector.api_version, now.date())
    if warning:  # the configured Graph API version ends within 90 days
        text, data = f"{text}\n{warning}", {**data, "api_version_warning": warning}
    return OpResult(text=text, data=data, ok=health.connected and health.valid)


class DisconnectArgs(OpArgs):
    """Disconnect Facebook: revoke Ad Monster's permissions where Facebook allows, and delete the stored token."""


@meta_ops.op(OpKind.WRITE, group=TaskGroup.CONNECT, name="disconnect", destructive=True, result=Disconnected)
async def disconnect_op(ctx: FacebookContext, args: DisconnectArgs) -> WritePlan:
    facebook = ctx.session
    connector = facebook.connector
    if connector is None:
        raise ValidationError("Disconnecting is not available in this interface", fix="Use `admonster disconnect`")

    async def execute() -> OpResult:
        text, revoked = await connector.disconnect(facebook.workspace.id)
        await facebook.after_disconnect()
        return OpResult(text=text, data={"disconnected": True, "revoked": revoked})

    return WritePlan(
        summary="disconnect Facebook from this workspace: delete its stored token, and revoke Ad Monster's "
        "permissions unless another workspace uses the same Facebook user",
        ad_account_id=None,
        requests=[GraphRequest("DELETE", "me/permissions")],
        changes=[],
        execute=execute,
    )


REGISTRY = Registry.from_opsets([m.ops for m in OP_MODULES] + [meta_ops])


# ---------------------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------------------


class Facebook:
    """One workspace's session: the store, the Graph client, and the one dispatch path for every interface."""

    def __init__(
        self,
        store: Store,
        graph: GraphClient | None,
        workspace: Workspace,
        registry: Registry = REGISTRY,
        *,
        connector: Connector | None = None,
        callback_url: Callable[[], Awaitable[str]] | None = None,
        on_disconnect: Callable[[Workspace], Awaitable[Any]] | None = None,
        clock: Callable[[], Awaitable[datetime]] | None = None,
        single_flight: SingleFlightPolicy = SingleFlightPolicy(),
        files_home: Path | None = None,
    ) -> None:
        self.store = store
        # The workspace's own folder for the files its ops write and it uploads (ADMONSTER_HOME/files/<id>); without a
        # home (a bare session in tests) a folder under the system's temporary folder.
        self.files_dir = workspace_files_dir(
            files_home if files_home is not None else Path(tempfile.gettempdir()) / "admonster", workspace.id
        )
        self._selections: dict[str, str | None] | None = None
        self.single_flight = single_flight  # the launch leases: how long one lasts, how long a second request waits
        self.clock = clock  # async: the runtime's "now" (the sandbox's clock in sandbox mode); None: the store's clock
        self.graph = graph
        if graph is not None and graph.limiter.shared is None:
            graph.limiter.shared = StoreSharedUsage(store)  # replicas on one database pace each ad account together
        self.workspace = workspace
        self.registry = registry
        self.connector = connector
        self.callback_url = callback_url  # async () -> the OAuth redirect URI this interface listens on
        self._on_disconnect = on_disconnect

    async def call(
        self,
        op: Any,
        args: Any = None,
        /,
        *,
        interface: str = "api",
        top_level: dict[str, Any] | None = None,
        **more: Any,
    ) -> OpResult:
        """The `facebook(op, args)` tool. Never raises for bad input or Facebook failures: errors are OpResults.
        Stray top-level keys of a request body come as the `top_level` dict (any key, even "self" or "interface",
        becomes an argument the op's model then accepts or refuses as unknown: one line naming it)."""
        return await self._answer(op, args, interface, {**more, **(top_level or {})})

    async def _answer(
        self, op: Any, args: Any, interface: str, top_level: dict[str, Any], *, unattended: bool = False
    ) -> OpResult:
        """The one path every op takes (a person's call, or an automation's through ``run_gated``): arguments,
        selections, guardrails, confirmation, audit, the result checks and a failed token's marking. ``unattended``:
        nobody is there to confirm, so a write the guardrails would hold is refused instead, and confirm/reject too."""
        waits: list[str] = []
        token = _call_waits.set(waits)
        try:
            result = await self._call(op, args, interface, top_level, unattended=unattended)
        except FacebookError as error:
            result = OpResult.from_error(error)
        except Exception as error:  # the single boundary for the unexpected: one line, logged with its traceback
            log.exception("op crashed", op=str(op))
            result = OpResult.from_error(
                FacebookError(
                    f"Internal error while running {op!r}: {redact(type(error).__name__ + ': ' + str(error))}",
                    fix="This is a bug in Ad Monster; the log has details. Nothing further was sent",
                )
            )
        finally:
            _call_waits.reset(token)
        if not result.ok and not result.held and result.llm is None and " Fix: " in result.text:
            result.llm, result.text = result.text, commands_in_fix(result.text, self.registry.names())
        if interface in REMOTE_INTERFACES:  # a remote caller never sees a server path
            result.text = hide_server_paths(result.text, self.files_dir)
            result.data = hide_server_paths(result.data, self.files_dir)
            result.files = hide_server_paths(result.files, self.files_dir)
        if (
            not result.ok
            and isinstance(result.data, dict)
            and result.data.get("error") == "auth"
            and result.data.get("code") == 190
        ):
            await self._token_failed(result)
        if waits:
            result.text += "\n(" + "; ".join(waits) + ")"
            if isinstance(result.data, dict):
                result.data.setdefault("rate_limit_waits", waits)
        check_error(op, result)
        return result

    async def _call(
        self, op: Any, args: Any, interface: str, top_level: dict[str, Any], *, unattended: bool = False
    ) -> OpResult:
        name, arguments = normalize_call(op, args, top_level)
        if unattended and (name in ("confirm", "reject") or arguments.get("confirm")):
            raise ValidationError(
                f"{name} was not run: confirming or rejecting a held write needs a person",
                fix="Confirm it yourself with /confirm <id> (/list_confirmations lists them)",
            )
        if name == "help":
            return self._help(arguments)
        if name == "find_ops":
            unknown = sorted(set(arguments) - {"query", "limit"})
            if unknown:
                raise ValidationError(
                    f"find_ops takes query and limit, not {', '.join(unknown)}",
                    fix='Pass {"query": "what you want to do"}',
                    blame_field=unknown[0],
                )
            return self.registry.find_ops_result(arguments.get("query"), arguments.get("limit", 8))
        if self.graph is None and name not in (
            "connect",
            "token_status",
            "disconnect",
            "audit_log",
            "list_confirmations",
        ):
            raise AuthError(
                "Facebook is not connected for this workspace",
                fix="Connect with /connect (or `admonster connect`, or `admonster token set`)",
            )
        if name == "confirm":
            return await self.confirm(
                arguments.get("confirm") or arguments.get("id") or arguments.get("confirmation_id"), interface
            )
        if name == "reject":
            return await self.reject(
                arguments.get("confirm") or arguments.get("id") or arguments.get("confirmation_id")
            )
        spec = self.registry.require(name)
        dry_run = _pop_flag(arguments, "dry_run")
        confirm_id = arguments.pop("confirm", None)
        if spec.kind is OpKind.READ and (dry_run or confirm_id):
            raise ValidationError(
                f"{spec.name} only reads; dry_run and confirm apply to writes",
                fix=f"Call {spec.name} without dry_run/confirm",
            )
        if confirm_id:
            return await self.confirm(confirm_id, interface, expected_op=spec.name)
        arguments = expand_arguments_files(spec.args_model, arguments, self.files_dir, interface)
        arguments = confine_input_paths(arguments, self.files_dir, interface)
        model = validate_args(spec, arguments)
        return await self._run(
            spec, model, arguments, interface, dry_run=dry_run, confirmed=False, unattended=unattended
        )

    async def _run(
        self,
        spec: OpSpec,
        model: BaseModel,
        arguments: dict[str, Any],
        interface: str,
        *,
        dry_run: bool,
        confirmed: bool,
        previewed: list[dict[str, Any]] | None = None,
        unattended: bool = False,
    ) -> OpResult:
        result = await self._run_op(
            spec,
            model,
            arguments,
            interface,
            dry_run=dry_run,
            confirmed=confirmed,
            previewed=previewed,
            unattended=unattended,
        )
        check_result(self.registry, spec, result)
        return result

    async def _run_op(
        self,
        spec: OpSpec,
        model: BaseModel,
        arguments: dict[str, Any],
        interface: str,
        *,
        dry_run: bool,
        confirmed: bool,
        previewed: list[dict[str, Any]] | None = None,
        unattended: bool = False,
    ) -> OpResult:
        ctx = await self._context(interface)
        outcome = await spec.handler(ctx, model)
        if isinstance(outcome, OpResult):
            if outcome.selections:
                await self.select_together(outcome.selections)
            return outcome
        plan: WritePlan = outcome
        if dry_run:
            return await self._dry_run(spec, plan)
        if previewed is not None and _comparable(plan.changes) != _comparable(previewed):
            return await self._hold_moved(spec, plan, arguments, previewed)
        if not confirmed:
            guardrails = await self.store.guardrails(self.workspace.id, plan.ad_account_id)
            reasons = spend_reasons(plan, guardrails)
            if reasons and unattended:
                raise ConfirmationRequired(
                    f"{spec.name} was not run: it {'; '.join(reasons)}, and nobody is there to confirm it",
                    fix="Run it yourself and confirm, or change the workspace guardrails",
                    data={"op": spec.name, "reasons": reasons, "changes": [_change_data(c) for c in plan.changes]},
                )
            if reasons:
                return await self._hold_for_confirmation(spec, plan, arguments, reasons)
        return await self._execute(spec, plan, arguments, interface)

    async def now(self) -> datetime:
        """The current time for automations (cooldowns, "yesterday"): the runtime's clock, else the store's."""
        moment = await self.clock() if self.clock is not None else self.store.clock()
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment

    async def run_gated(self, op: str, args: dict[str, Any], interface: str) -> OpResult:
        """Run an op through the safety gate with nobody to confirm (automations): the same path as a person's call
        (``_answer``), audited as usual; a write the guardrails would hold is not run (a not-ok answer says why)."""
        return await self._answer(op, dict(args), interface, {}, unattended=True)

    async def _token_failed(self, result: OpResult) -> None:
        """A 190 during any op: mark the stored token invalid so status, jobs and the next answer know."""
        reason = str(result.data.get("message") or "Facebook refused the token")
        try:
            await self.store.mark_token_invalid(self.workspace.id, reason)
        except Exception:  # the store is not the answer: the person still gets the auth error below
            log.exception("could not mark the token invalid")
        if "/connect" not in result.text:
            result.text += " Reconnect with /connect (or `admonster connect`)."

    async def after_disconnect(self) -> None:
        if self._on_disconnect is not None:
            await self._on_disconnect(self.workspace)

    async def selections(self) -> dict[str, str | None]:
        """The workspace's selected ad account, page and Instagram account, as this request read them from the store
        (refresh_selections, at the start of every request) and as its own ops changed them since."""
        return self._selections if self._selections is not None else await self.refresh_selections()

    async def refresh_selections(self) -> dict[str, str | None]:
        """Read the selections again: another request, process or replica may have changed them (the runtime calls
        this each time it hands the session to a request; a stale copy would launch for the old page)."""
        self._selections = dict(await self.store.all_selections(self.workspace.id))
        return self._selections

    async def select(self, kind: str, value: str | None) -> None:
        await self.select_together({kind: value})

    async def select_together(self, chosen: dict[str, str | None]) -> None:
        """Store selections in one transaction (a page with its Instagram account): no reader sees one without the other."""
        await self.store.set_selections(self.workspace.id, chosen)
        (await self.selections()).update(chosen)

    async def _context(self, interface: str) -> FacebookContext:
        chosen = await self.selections()
        state = self.state()
        return FacebookContext(
            # Unconnected (graph None), only the ops that never read ctx.graph run (_call: connect, token_status, …).
            graph=self.graph,  # type: ignore[arg-type]
            workspace=self.workspace.name,
            interface=interface,
            ad_account_id=chosen.get("ad_account"),
            page_id=chosen.get("page"),
            instagram_account_id=chosen.get("instagram_account"),
            facebook=self,
            ops=GatelessOpRunner(self, interface),
            journal=state,
            records=state,
            gate=JobGate(self, interface),
            experiments=state,
            clock=self.now,
            on_made=self._note_made,
            files_dir=self.files_dir,
        )

    def state(self) -> WorkspaceState:
        """The store bound to this workspace: the ops' journal, records and experiments (with this session's leases)."""
        return self.store.workspace_state(self.workspace.id, self.single_flight)

    async def _note_made(self, object_id: str, lookup: dict[str, str]) -> None:
        audit_id = _current_audit.get()
        if audit_id is not None:
            await self.store.note_audit_made(self.workspace.id, audit_id, object_id, lookup)

    def _help(self, arguments: dict[str, Any]) -> OpResult:
        wanted = arguments.get("op") or arguments.get("name")
        if wanted:
            return self.registry.op_help(self.registry.require(str(wanted).strip().lower()))
        groups = {(g.value if g else "other"): [s.name for s in specs] for g, specs in self.registry.by_group().items()}
        return OpResult(text=self.registry.help_text(), data={"groups": groups})

    async def _dry_run(self, spec: OpSpec, plan: WritePlan) -> OpResult:
        validation, validation_error = None, None
        if plan.validate is not None:
            try:
                validation = await plan.validate()
            except FacebookError as error:
                validation_error = error
        return describe_dry_run(spec, plan, validation, validation_error)

    async def _hold_moved(
        self, spec: OpSpec, plan: WritePlan, arguments: dict[str, Any], previewed: list[dict[str, Any]]
    ) -> OpResult:
        """A confirm whose object moved since its preview: nothing runs; a new preview of the change as it would be now."""
        before = "; ".join(_described(c) for c in previewed) or "nothing"
        now = "; ".join(_described(_change_data(c)) for c in plan.changes) or "nothing"
        guardrails = await self.store.guardrails(self.workspace.id, plan.ad_account_id)
        reasons = [
            f"changed since the preview, so nothing was run: the preview showed {before}; now it would be {now}",
            *spend_reasons(plan, guardrails),
        ]
        return await self._hold_for_confirmation(spec, plan, arguments, reasons)

    async def _hold_for_confirmation(
        self, spec: OpSpec, plan: WritePlan, arguments: dict[str, Any], reasons: list[str]
    ) -> OpResult:
        preview = "; ".join(reasons) + (f". {plan.confirm_text}" if plan.confirm_text else "")
        confirmation_id = await self.store.add_confirmation(
            self.workspace.id,
            op=spec.name,
            args=arguments,
            preview=preview,
            changes=[_change_data(c) for c in plan.changes],
        )
        error = ConfirmationRequired(
            f"{spec.name} {preview}",
            fix=f'Ask the person first; to go ahead call again with confirm="{confirmation_id}" (in chat: /confirm {confirmation_id})',
            data={
                "confirmation_id": confirmation_id,
                "preview": preview,
                "op": spec.name,
                "changes": [_change_data(c) for c in plan.changes],
            },
        )
        return OpResult.from_error(error)

    async def confirm(self, confirmation_id: Any, interface: str, expected_op: str | None = None) -> OpResult:
        """Run a call held by the safety gate, once."""
        if not isinstance(confirmation_id, str) or not confirmation_id.strip():
            raise ValidationError(
                "No confirmation id given",
                fix="Pass the id from the preview, e.g. /confirm c-7f3a9b",
                blame_field="confirm",
            )
        confirmation_id = confirmation_id.strip()
        known = await self.store.get_confirmation(self.workspace.id, confirmation_id)
        if known is not None and expected_op and known.op != expected_op:
            raise ValidationError(
                f"Confirmation {confirmation_id} belongs to {known.op}, not {expected_op}",
                fix=f"Call {known.op} with this confirmation id, or /confirm {confirmation_id}",
            )
        held = await self.store.take_confirmation(self.workspace.id, confirmation_id)
        if held is None:  # as it stands now: another request may have taken it since it was read above
            raise _confirmation_gone(
                confirmation_id, await self.store.get_confirmation(self.workspace.id, confirmation_id)
            )
        spec = self.registry.require(held.op)
        model = validate_args(spec, dict(held.args))
        return await self._run(
            spec, model, dict(held.args), interface, dry_run=False, confirmed=True, previewed=held.changes
        )

    async def reject(self, confirmation_id: Any) -> OpResult:
        """Cancel a call waiting for confirmation: it can no longer run."""
        if not isinstance(confirmation_id, str) or not confirmation_id.strip():
            raise ValidationError(
                "No confirmation id given",
                fix="Pass the id from the preview, e.g. /reject c-7f3a9b",
                blame_field="confirm",
            )
        confirmation_id = confirmation_id.strip()
        rejected = await self.store.reject_confirmation(self.workspace.id, confirmation_id)
        if rejected is None:
            raise _confirmation_gone(
                confirmation_id, await self.store.get_confirmation(self.workspace.id, confirmation_id)
            )
        what = _one_line_preview(rejected.preview)
        return OpResult(
            text=f"Dropped {rejected.id}: nothing was sent, and it cannot run any more ({what}).",
            hints=[f"The held {rejected.op} call {rejected.id} is rejected."],
            data={"rejected": rejected.id, "op": rejected.op},
        )

    async def _execute(self, spec: OpSpec, plan: WritePlan, arguments: dict[str, Any], interface: str) -> OpResult:
        """Run a write: audited `pending` (with the client tags it sends and the intended change) before anything is
        sent, settled after: `ok`, `error` only when Facebook's answer proves nothing changed, `unknown` when the answer
        was lost. A crash or Ctrl-C in between leaves the pending entry for `reconcile` (docs/exactly-once.md)."""
        audit_id = await self.store.add_audit(
            self.workspace.id,
            interface=interface,
            op=spec.name,
            args=args_at_rest(spec, arguments),
            summary=plan.summary,
            changes=[_change_data(c) for c in plan.changes],
            object_ids=_object_ids(plan, None),
            outcome="pending",
            tags=plan_tags(plan),
        )
        started = _call_audits.get()
        if started is not None:
            started.append(audit_id)
        token = _current_audit.set(audit_id)
        try:
            result = await self._execute_once_per_client_tag(plan, arguments.get("client_tag"))
        except FacebookError as error:
            outcome = "unknown" if is_ambiguous(error) else "error"
            lookups = (error.data or {}).get("lookups") if outcome == "unknown" else None
            await self.store.settle_audit(
                self.workspace.id,
                audit_id,
                outcome=outcome,
                error=error.to_text(),
                fbtrace_id=error.fbtrace_id,
                tags=lookups,
            )
            log.info("write failed", op=spec.name, outcome=outcome, error=error.to_text())
            failed = OpResult.from_error(error)
            failed.text += f"\n(audit #{audit_id})"
            if isinstance(failed.data, dict):
                failed.data.update(audit_id=audit_id, outcome=outcome)
            return failed
        finally:
            _current_audit.reset(token)
        changes = (result.data or {}).get("changes") if isinstance(result.data, dict) else None
        undo_of = result.data.get("undone") if isinstance(result.data, dict) else None
        outcome = _result_outcome(result)
        # A write that did part of its work (a launch stopped at a step, a bulk update with failures) is audited as an
        # error (or unknown) with the objects it did change, so the log never reads "ok" for half a job.
        failed_line = None if result.ok else (result.text.splitlines() or [""])[0]
        await self.store.settle_audit(
            self.workspace.id,
            audit_id,
            outcome=outcome,
            object_ids=_object_ids(plan, result),
            changes=changes or None,
            error=failed_line,
            undo_of=undo_of,
        )
        log.info("write done", op=spec.name, audit_id=audit_id, outcome=outcome)
        undo_hint = (
            f" · /undo {audit_id}"
            if outcome == "ok" and _undoable_changes(changes or [_change_data(c) for c in plan.changes]) and not undo_of
            else ""
        )
        result.text = f"{result.text}\n(audit #{audit_id}{undo_hint})"
        if isinstance(result.data, dict):
            result.data.setdefault("audit_id", audit_id)
        return result

    async def _execute_once_per_client_tag(self, plan: WritePlan, client_tag: Any) -> OpResult:
        """A create carrying the caller's client_tag runs as the only one with that tag (a lease in the store, so across
        requests and processes sharing it): the same create asked twice at once would otherwise have both look for the
        tag, both find nothing and both create. The second runs after the first and finds its object."""
        if not isinstance(client_tag, str) or not client_tag:
            return await plan.execute()
        async with single_flight(self.state(), f"client_tag:{client_tag}", f"create with client_tag {client_tag}"):
            return await plan.execute()


def _result_outcome(result: OpResult) -> str:
    """ok, or for a failed answer: unknown when the failure was a lost answer, else error."""
    if result.ok:
        return "ok"
    data = result.data if isinstance(result.data, dict) else {}
    return "unknown" if data.get("error") == OutcomeUnknownError.kind or data.get("outcome") == "unknown" else "error"


def plan_tags(plan: WritePlan) -> list[dict[str, str]]:
    """How to find what a plan's creates make: for each create request carrying a client tag (an ad label), the edge it
    posts to, the new object's name and the tag (reconcile looks them up after a crash or a lost answer)."""
    found = []
    for request in plan.requests:
        labels = request.params.get("adlabels") if isinstance(request.params, dict) else None
        if request.method != "POST" or not isinstance(labels, list):
            continue
        for label in labels:
            if isinstance(label, dict) and label.get("name"):
                found.append(
                    {"tag": str(label["name"]), "path": request.path, "name": str(request.params.get("name") or "")}
                )
    return found


# ---------------------------------------------------------------------------------------------------------------
# Capabilities for ops built from other ops: running an op's handler without the gate, and the launch journal
# ---------------------------------------------------------------------------------------------------------------


class PlannedObjectsGraph:
    """``ctx.graph`` for pre-checks: reads of placeholder ids answer from the objects about to be created.

    Everything else goes to the real Graph client. Writing to a placeholder is refused: it does not exist yet.
    """

    def __init__(self, graph: GraphClient, objects: dict[str, dict[str, Any]]) -> None:
        self._graph = graph
        self._objects = {str(k): dict(v) for k, v in objects.items()}

    def _placeholder(self, path: str) -> tuple[str, bool] | None:
        parts = [p for p in str(path).split("?")[0].strip("/").split("/") if p]
        if parts and parts[0] in self._objects:
            return parts[0], len(parts) > 1
        return None

    def _answer(self, object_id: str, params: Any) -> dict[str, Any]:
        obj = {**self._objects[object_id], "id": object_id}
        fields = (params or {}).get("fields") if isinstance(params, dict) else None
        if isinstance(fields, str) and fields:
            wanted = {f.strip().split("{")[0] for f in fields.split(",")} | {"id"}
            obj = {k: v for k, v in obj.items() if k in wanted}
        return obj

    async def get(self, path: str, params: Any = None) -> dict[str, Any]:
        found = self._placeholder(path)
        if found is None:
            return await self._graph.get(path, params)
        object_id, edge = found
        return {"data": []} if edge else self._answer(object_id, params)

    async def get_all(self, path: str, params: Any = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        if self._placeholder(path) is not None:
            return []  # an object not created yet has no children
        return await self._graph.get_all(path, params, limit=limit)

    async def get_many(self, ids: Any, fields: Any) -> dict[str, dict[str, Any]]:
        ids = [str(i) for i in ids]
        planned = {
            i: self._answer(i, {"fields": fields if isinstance(fields, str) else ",".join(fields)})
            for i in ids
            if i in self._objects
        }
        rest = [i for i in ids if i not in self._objects]
        return {**planned, **(await self._graph.get_many(rest, fields) if rest else {})}

    def _refuse_write(self, path: str) -> None:
        if self._placeholder(path) is not None:
            raise ValidationError(
                f"{path} is a placeholder for an object not created yet",
                fix="This is a bug in Ad Monster: pre-checks must not write",
            )

    async def post(self, path: str, data: Any = None, **kwargs: Any) -> dict[str, Any]:
        self._refuse_write(path)
        return await self._graph.post(path, data, **kwargs)

    async def create(self, path: str, data: Any, **kwargs: Any) -> dict[str, Any]:
        self._refuse_write(path)
        return await self._graph.create(path, data, **kwargs)

    async def delete(self, path: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
        self._refuse_write(path)
        return await self._graph.delete(path, params, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)


class GatelessOpRunner:
    """``ctx.ops``: validates arguments with the registry and runs an op's handler without the safety gate.

    The caller (launch_campaign) is itself a gated op: its one confirmation, dry run and audit entry cover the
    steps it runs through here.
    """

    def __init__(self, facebook: Facebook, interface: str) -> None:
        self._facebook = facebook
        self._interface = interface

    async def plan(
        self, op: str, args: dict[str, Any], *, objects: dict[str, dict[str, Any]] | None = None
    ) -> WritePlan | OpResult:
        spec = self._facebook.registry.require(op)
        model = validate_args(spec, dict(args))
        ctx = await self._facebook._context(self._interface)
        if objects:
            ctx.graph = PlannedObjectsGraph(ctx.graph, objects)  # type: ignore[assignment]
        return await spec.handler(ctx, model)


class StoreSharedUsage:
    """fb_utils.SharedUsage on the store's ``account_usage`` table: the Graph client of every process on one database
    publishes an ad account's usage when it crosses the pacing threshold or is throttled, and reads it before pacing
    when its own view is stale. Times cross as wall-clock UTC (epoch seconds in fb_utils, datetimes in the store)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def publish(self, usage: SharedAccountUsage) -> None:
        block = None if usage.block_until is None else datetime.fromtimestamp(math.ceil(usage.block_until), UTC)
        await self._store.publish_account_usage(
            usage.account,
            usage_pct=usage.pct,
            measure=usage.measure,
            window_seconds=usage.window,
            block_until=block,
            seen_at=datetime.fromtimestamp(usage.seen_at, UTC),
        )

    async def read(self, account: str) -> SharedAccountUsage | None:
        row = await self._store.account_usage_share(account)
        if row is None:
            return None
        return SharedAccountUsage(
            row.ad_account_id,
            row.usage_pct,
            row.measure,
            row.window_seconds,
            row.seen_at.timestamp(),
            None if row.block_until is None else row.block_until.timestamp(),
        )


class JobGate:
    """``ctx.gate``: another op through the safety gate with nobody to confirm (audited under the caller's interface)."""

    def __init__(self, facebook: Facebook, interface: str) -> None:
        self._facebook = facebook
        self._interface = interface

    async def run(self, op: str, args: dict[str, Any]) -> OpResult:
        return await self._facebook.run_gated(op, args, self._interface)

    async def guardrails(self, ad_account_id: str | None) -> dict[str, Any]:
        return await self._facebook.store.guardrails(self._facebook.workspace.id, ad_account_id)


def _pop_flag(arguments: dict[str, Any], name: str) -> bool:
    value = arguments.pop(name, False)
    if isinstance(value, str):
        if value.strip().lower() in ("true", "1", "yes"):
            return True
        if value.strip().lower() in ("false", "0", "no", ""):
            return False
        raise ValidationError(
            f"{name} must be true or false, got {value!r}", fix=f"Pass {name}=true or leave it out", blame_field=name
        )
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError(
            f"{name} must be true or false, got {value!r}", fix=f"Pass {name}=true or leave it out", blame_field=name
        )
    return value


def _object_ids(plan: WritePlan, result: OpResult | None) -> list[str]:
    ids = [c.object_id for c in plan.changes if c.object_id]
    if result is not None and isinstance(result.data, dict):
        for key in ("id", "campaign_id", "copied_campaign_id"):
            if isinstance(result.data.get(key), str):
                ids.append(result.data[key])
        ids += [str(i) for i in result.data.get("object_ids") or [] if isinstance(i, (str, int))]
    return sorted(set(ids))


def main(argv: list[str] | None = None) -> int:
    """`python -m fi_facebook --op-table` prints the docs' op table."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--op-table"]:
        sys.stdout.write(REGISTRY.op_table_markdown())
        return 0
    sys.stderr.write("usage: python -m fi_facebook --op-table\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

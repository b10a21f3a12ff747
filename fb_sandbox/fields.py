"""`fields=`: Meta's field-expansion syntax, the fields and edges each node type knows (from the SDK, fb_sandbox/spec.py),
and the rendering of a node's answer with nested expansion.

Grammar (https://developers.facebook.com/docs/graph-api/guides/field-expansion), parsed by recursive descent:

    fields   := field ("," field)*
    field    := name modifier* ("{" fields "}")? modifier*
    modifier := "." name "(" argument ")"          e.g. .limit(5) .date_preset(last_7d) .time_range({...}) .as(x)

`parse_fields` returns the top-level names as `Field`s: plain strings (every caller that compares names keeps working)
that also carry `.modifiers` (name -> raw argument text), `.alias` (the `.as(x)` argument, or None; whether an alias
is allowed is decided elsewhere, by app age) and `.children` (the nested fields, or None). Malformed syntax answers
Meta's error: code 2500, `Syntax error "<what>" at character <0-based position>: <the fields text>`.

`select` renders a node: a field whose value is another node (`{"id": ...}`) is expanded with its nested fields by
reading that node; a struct value keeps only the nested keys asked; an edge of the node's SDK class is read as a
paged list (`{"data": [...], "paging": {...}}`) by running `GET {id}/{edge}` with the modifiers as parameters
(`.limit(n)` -> limit, `.date_preset(x)` -> date_preset ...) and the nested fields as `fields`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from functools import cache
from typing import Any

from . import spec
from .errors import GraphError, unknown_field
from .rules import rule

# The Ctx of the Graph call being answered (set by router.execute), so that nested edges can be read as sub-calls.
CURRENT: ContextVar = ContextVar("fb_sandbox_current_call", default=None)

EXPANSION_DOC = "https://developers.facebook.com/docs/graph-api/guides/field-expansion"
rule(
    "fields.expansion",
    "Nested field expansion `a{b,c}` and edge modifiers `.limit(n)`, `.date_preset(x)`, "
    "`.time_range(...)`, `.breakdowns(...)`, `.level(...)`, `.summary(...)` (every modifier becomes a parameter "
    "of the nested edge read)",
    source=EXPANSION_DOC,
    since="v2.0",
    verified=True,
    area="fields",
)
rule(
    "fields.syntax_error",
    'Malformed `fields=` answers code 2500 `Syntax error "Expected ..." at character N: <fields>` (N 0-based)',
    source="https://github.com/node-facebook/facebook-node-sdk/issues/123 ; "
    "https://github.com/facebook/facebook-nodejs-business-sdk/issues/59",
    since="any",
    verified=False,
    area="fields",
)
rule(
    "fields.alias",
    "`.as(name)` is parsed as a modifier and renames the key in the answer (legacy feature: "
    "refusing it for new apps is the legacy-features rule's job)",
    source=EXPANSION_DOC,
    since="v2.0",
    verified=False,
    area="fields",
)


class Field(str):
    """A requested field name with its modifiers, alias and nested fields."""

    modifiers: dict[str, str]
    alias: str | None
    children: list[Field] | None

    def __new__(cls, name: str, modifiers: dict[str, str] | None = None, children: list[Field] | None = None):
        obj = super().__new__(cls, name)
        obj.modifiers = dict(modifiers or {})
        obj.alias = obj.modifiers.pop("as", None)
        obj.children = children
        return obj

    @property
    def key(self) -> str:
        """The key of this field in the answer."""
        return self.alias or str(self)

    def source(self) -> str:
        """This field written back in field-expansion syntax."""
        text = str(self) + "".join(f".{k}({v})" for k, v in self.modifiers.items())
        if self.alias:
            text += f".as({self.alias})"
        if self.children is not None:
            text += "{" + ",".join(c.source() for c in self.children) + "}"
        return text


def syntax_error(what: str, pos: int, text: str) -> GraphError:
    return GraphError(f'Syntax error "{what}" at character {pos}: {text}', 2500)


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_CLOSE = {"(": ")", "[": "]", "{": "}"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def name(self) -> str:
        self.skip_space()
        start = self.pos
        while self.peek() and self.peek() in _NAME_CHARS:
            self.pos += 1
        if self.pos == start:
            raise syntax_error("Expected name.", self.pos, self.text)
        return self.text[start : self.pos]

    def argument(self) -> str:
        """The raw text between the modifier's parentheses (balanced brackets and quotes inside)."""
        start, stack, quote = self.pos, [], ""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if quote:
                if ch == "\\":
                    self.pos += 1
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch in _CLOSE:
                stack.append(_CLOSE[ch])
            elif ch in ")]}":
                if not stack:
                    if ch == ")":
                        return self.text[start : self.pos]
                    raise syntax_error(f'Expected ")" instead of "{ch}".', self.pos, self.text)
                if stack.pop() != ch:
                    raise syntax_error(f'Unexpected "{ch}".', self.pos, self.text)
            self.pos += 1
        raise syntax_error('Expected ")" instead of end of string.', self.pos, self.text)

    def modifiers(self, into: dict[str, str]) -> None:
        while True:
            self.skip_space()
            if self.peek() != ".":
                return
            self.pos += 1
            name = self.name()
            if self.peek() != "(":
                raise syntax_error(f'Expected "(" instead of {self._found()}.', self.pos, self.text)
            self.pos += 1
            into[name] = self.argument().strip()
            self.pos += 1  # the closing ")"

    def _found(self) -> str:
        return f'"{self.peek()}"' if self.peek() else "end of string"

    def field(self) -> Field:
        name = self.name()
        modifiers: dict[str, str] = {}
        self.modifiers(modifiers)
        children = None
        self.skip_space()
        if self.peek() == "{":
            self.pos += 1
            children = self.fields(closing="}")
            self.pos += 1
            self.modifiers(modifiers)
        return Field(name, modifiers, children)

    def fields(self, closing: str = "") -> list[Field]:
        out = [self.field()]
        while True:
            self.skip_space()
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                out.append(self.field())
            elif ch == closing:
                return out
            elif closing:
                raise syntax_error(f'Expected "{closing}" instead of {self._found()}.', self.pos, self.text)
            else:
                raise syntax_error(f'Expected end of string instead of "{ch}".', self.pos, self.text)


def parse_tree(value: Any) -> list[Field]:
    """Every top-level field of a fields= value, in order (duplicates kept)."""
    if value is None:
        return []
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    text = str(value)
    if not text.strip():
        return []
    return _Parser(text).fields()


def iter_fields(fields: list[Field]):
    """Every field of a parse tree, nested ones included (e.g. `any(f.alias for f in iter_fields(tree))`)."""
    for f in fields:
        yield f
        if f.children:
            yield from iter_fields(f.children)


def parse_fields(value: Any) -> list[Field]:
    """Top-level fields of a fields= value, first occurrence of each name: "a,b{c,d},e.limit(5)" -> [a, b, e]."""
    out: list[Field] = []
    for item in parse_tree(value):
        if item not in out:
            out.append(item)
    return out


# ---- the names each node type answers

# node type -> (SDK class, names the SDK does not list for that class but the sandbox answers): the fields and GET
# edges themselves come from the SDK (spec.py). `tasks` is the person's tasks on a page or an ad account, a field
# of the /me/accounts and /act_x/assigned_users edges; the POST-only edges below have always been accepted.
NODE_TYPES = {
    "Campaign": ("Campaign", set()),
    "AdAccount": ("AdAccount", set()),
    "User": ("User", set()),
    "Page": ("Page", {"tasks"}),
    "Business": ("Business", set()),
    "BusinessUser": ("BusinessUser", set()),
    "AssignedUser": ("AssignedUser", {"tasks", "permitted_tasks"}),
    "AdsPixel": ("AdsPixel", {"events", "customconversions"}),
    "CustomAudience": ("CustomAudience", {"users", "usersreplace"}),
    "CustomConversion": ("CustomConversion", set()),
    "SavedAudience": ("SavedAudience", set()),
    "IGUser": ("IGUser", set()),
    "AdSet": ("AdSet", set()),
    "AdActivity": ("AdActivity", set()),
    "AdCreative": ("AdCreative", set()),
    "Ad": ("Ad", set()),
    "AdPreview": ("AdPreview", set()),
    "AdImage": ("AdImage", set()),
    "AdVideo": ("AdVideo", set()),
    "AdsInsights": ("AdsInsights", set()),
    "AdReportRun": ("AdReportRun", set()),
    "AdStudy": ("AdStudy", set()),
    "AdStudyCell": ("AdStudyCell", set()),
}
rule(
    "fields.from_spec",
    "Every field `<Node>.Field` of the SDK lists is answered (the stored value, else absent); "
    "a name that is neither a field nor an edge answers `(#100) Tried accessing nonexisting field (x) on node type "
    "(Node)`",
    source="facebook_business SDK adobjects (generated from Meta's API specs, "
    "https://github.com/facebook/facebook-business-sdk-codegen)",
    since="SDK 26.0.3",
    verified=True,
    area="fields",
)


@cache
def known_fields(node_type: str) -> frozenset[str]:
    cls, extra = NODE_TYPES[node_type]
    return spec.fields(cls) | spec.get_edges(cls) | frozenset(extra) | {"id"}


@cache
def edge_names(node_type: str) -> frozenset[str]:
    """Names read as edges when asked in fields=: the SDK's GET edges that are not also fields."""
    cls, _extra = NODE_TYPES[node_type]
    return spec.get_edges(cls) - spec.fields(cls)


def select(node_type: str, requested: Sequence[str], default: Sequence[str], render: Callable[[str], Any]) -> dict:
    """Build a node answer: `id` always first, unknown names refused, absent values left out, nested fields
    expanded (see the module doc)."""
    names = requested or default
    allowed = known_fields(node_type)
    for name in names:
        if name not in allowed:
            raise unknown_field(name, node_type)
    out: dict[str, Any] = {}
    node_id = None
    for name in names:
        value = render(name)
        if name == "id":
            node_id = value
        elif value is None and name in edge_names(node_type):
            node_id = node_id if node_id is not None else render("id")
            if node_id is not None and CURRENT.get() is not None:
                value = read_edge(str(node_id), name)
        elif value is not None and isinstance(name, Field) and name.children is not None:
            value = expand_value(value, name.children)
        if value is not None:
            out[name.key if isinstance(name, Field) else name] = value
    if "id" not in out:
        out["id"] = render("id")
    return out


# ---- nested reads


def _sub_call(path: str, params: dict[str, Any]) -> Any:
    """GET `path` as the current caller, inside the current call; errors propagate to the whole answer."""
    from .context import Ctx, GraphCall
    from .params import Params
    from .router import resolve

    outer = CURRENT.get()
    keep = {k: v for k, v in outer.call.params.items() if k in ("access_token", "appsecret_proof")}
    call = GraphCall("GET", path, {**keep, **params}, outer.call.authorization, outer.call.base_url, outer.call.version)
    ctx = Ctx(outer.sb, call, outer.principal, Params(call.params))
    token = CURRENT.set(ctx)
    try:
        return resolve(ctx)(ctx)
    finally:
        CURRENT.reset(token)


def read_edge(node_id: str, field: str) -> Any:
    """An edge asked in fields=: the edge's answer with the modifiers as parameters."""
    params: dict[str, Any] = {}
    if isinstance(field, Field):
        params.update(field.modifiers)
        if field.children is not None:
            params["fields"] = ",".join(c.source() for c in field.children)
    if field == "picture":
        params.setdefault("redirect", "false")  # as a field, a picture is its data, never a redirect
    return _sub_call(f"{node_id}/{field}", params)


def _is_node_ref(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("id"), (str, int)):
        return False
    outer = CURRENT.get()
    return outer is not None and outer.store.get(str(value["id"])) is not None


def expand_value(value: Any, children: list[Field]) -> Any:
    """A field's value with nested fields applied: a node reference is read with them, a struct filtered to them."""
    if isinstance(value, list):
        return [expand_value(v, children) for v in value]
    if not isinstance(value, dict):
        return value
    if _is_node_ref(value):
        return _sub_call(str(value["id"]), {"fields": ",".join(c.source() for c in children)})
    out = {}
    for child in children:
        if child in value and value[child] is not None:
            inner = value[child]
            out[child.key] = expand_value(inner, child.children) if child.children is not None else inner
    return out

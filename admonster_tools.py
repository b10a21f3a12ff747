"""The tool lists Ad Monster offers to agents, derived from the op registry: one builder for `admonster mcp`, `/mcp`
on `admonster serve` and `admonster tools` (MCP or OpenAI format), so what is printed is what is served.

Which ops get their own tool is a ``ToolSelection``: the toolsets named (the registry's task groups, the same as
/help's), else the ops declared core (``@ops.op(..., core=True)``); read-only keeps only read ops. Beside the op
tools: the ``facebook`` tool ({op, args}: every op, whatever is listed), ``find_ops`` (ranked ops for a query), and,
where the list can change at run time (MCP), ``list_toolsets`` and ``enable_toolset``.

Kept free of the MCP SDK and aiohttp: `admonster tools` starts in well under a second (bench item 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from fb_utils import OpData, OpKind, OpResult, TaskGroup, ValidationError, closest_names

TOOL_MODES: tuple[str, ...] = ("single", "per-op", "both")
FACEBOOK_TOOL = "facebook"
FIND_OPS_TOOL = "find_ops"
LIST_TOOLSETS_TOOL = "list_toolsets"
ENABLE_TOOLSET_TOOL = "enable_toolset"
META_TOOLS = (FIND_OPS_TOOL, LIST_TOOLSETS_TOOL, ENABLE_TOOLSET_TOOL)
ALL_TOOLSETS = "all"  # --toolsets all: every op as its own tool
DEFAULT_TOOLSETS = "default"  # --toolsets default: the core ops (what no --toolsets serves)
MCP_SETTING = "mcp_tools"  # the workspace setting /mcp reads: {"toolsets": [...], "read_only": bool}

# What every op answers as structured content: its data object (non-object data is wrapped as {"result": …}).
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The op's data: the same JSON the HTTP API returns as `data` (non-object data under `result`).",
    "additionalProperties": True,
}


class FoundOp(BaseModel):
    op: str
    kind: str = Field(description="read, write or spend.")
    toolset: str | None
    summary: str
    score: float


class FindOpsData(OpData):
    """find_ops: the ops for a query, best first."""

    query: str
    ops: list[FoundOp]


class ToolsetRow(BaseModel):
    name: str
    label: str
    ops: list[str]
    enabled: bool = Field(description="Whether its ops are listed as tools now.")


class ListToolsetsData(OpData):
    """list_toolsets: every toolset and its ops."""

    toolsets: list[ToolsetRow]
    read_only: bool


class EnableToolsetData(OpData):
    """enable_toolset: the toolset and the op tools it added."""

    toolset: str
    added: list[str]
    listed: bool = Field(description="Whether tools/list now shows them (false where the list cannot change).")


META_RESULTS: dict[str, type[OpData]] = {
    FIND_OPS_TOOL: FindOpsData,
    LIST_TOOLSETS_TOOL: ListToolsetsData,
    ENABLE_TOOLSET_TOOL: EnableToolsetData,
}


def meta_output_schema(name: str) -> dict[str, Any]:
    from fi_facebook import model_output_schema

    return model_output_schema(META_RESULTS[name])


def _registry(registry: Any = None) -> Any:
    if registry is not None:
        return registry
    from fi_facebook import REGISTRY

    return REGISTRY


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class ToolSelection:
    """Which tools a server lists. `toolsets` None means the default: the ops declared core (OpSpec.core); names are
    the registry's toolsets, "default" (the core ops) or "all". `read_only` keeps only read ops and refuses any other
    op through the facebook tool too. `enabled` are the toolsets enable_toolset added in this session."""

    mode: str = "both"
    toolsets: tuple[str, ...] | None = None
    read_only: bool = False
    enabled: tuple[str, ...] = ()

    def with_enabled(self, name: str) -> ToolSelection:
        return ToolSelection(self.mode, self.toolsets, self.read_only, tuple(dict.fromkeys((*self.enabled, name))))

    def allows(self, spec: Any) -> bool:
        """Whether this server may run the op at all (read-only refuses writes, through any tool)."""
        return not self.read_only or spec.kind is OpKind.READ


def unknown_toolset(name: Any, known: list[str], field: str) -> ValidationError:
    close = closest_names(name, known, 1)
    return ValidationError(
        f"Unknown toolset {name!r}",
        fix=(f"Did you mean {close[0]}? " if close else "") + f"Toolsets: {', '.join(known)}",
        blame_field=field,
    )


def parse_toolsets(value: str | Iterable[str] | None, registry: Any = None) -> tuple[str, ...] | None:
    """`a,b` (or a list) as toolset names, checked against the registry: one line with a fix for an unknown one."""
    if value is None:
        return None
    names = [str(part).strip().lower() for part in (value.split(",") if isinstance(value, str) else value)]
    names = [name for name in names if name]
    known = [*_registry(registry).toolsets(), DEFAULT_TOOLSETS, ALL_TOOLSETS]
    for name in names:
        if name not in known:
            raise unknown_toolset(name, known, "toolsets")
    return tuple(dict.fromkeys(names)) or None


def selected_specs(selection: ToolSelection, registry: Any = None) -> list[Any]:
    """The ops that get their own tool under a selection, in registry order."""
    registry = _registry(registry)
    names = set(selection.toolsets or (DEFAULT_TOOLSETS,)) | set(selection.enabled)
    chosen = []
    for spec in registry.specs():
        group = spec.group.value if spec.group is not None else None
        if ALL_TOOLSETS in names or group in names or (DEFAULT_TOOLSETS in names and spec.core):
            if selection.allows(spec):
                chosen.append(spec)
    return chosen


def selection_from_setting(value: Any, mode: str = "both", registry: Any = None) -> ToolSelection:
    """A workspace's stored MCP setting as a selection. A setting the registry no longer knows (a toolset renamed)
    falls back to the default toolsets rather than failing every request; read-only is kept either way."""
    if not isinstance(value, dict):
        return ToolSelection(mode)
    try:
        toolsets = parse_toolsets(value.get("toolsets"), registry)
    except ValidationError:
        toolsets = None
    return ToolSelection(mode, toolsets, bool(value.get("read_only", False)))


# ---------------------------------------------------------------------------------------------------------------
# Tools as MCP's JSON (camelCase): what tools/list sends
# ---------------------------------------------------------------------------------------------------------------


def _hints(
    title: str, *, read_only: bool, destructive: bool, idempotent: bool, open_world: bool = True
) -> dict[str, Any]:
    return {
        "title": title,
        "readOnlyHint": read_only,
        "destructiveHint": destructive,
        "idempotentHint": idempotent,
        "openWorldHint": open_world,
    }


def facebook_tool(registry: Any = None, *, read_only: bool = False) -> dict[str, Any]:
    registry = _registry(registry)
    description = registry.facebook_tool_description()
    if read_only:
        description += " This server is read-only: only ops that read run."
    return {
        "name": FACEBOOK_TOOL,
        "title": "Facebook ads",
        "description": description,
        "inputSchema": {
            "type": "object",
            "properties": {
                "op": {"type": "string", "description": "The op name, 'help', or 'find_ops' (args={'query': ...})."},
                "args": {"type": "object", "description": "The op's arguments (see op='help', args={'op': NAME})."},
            },
            "required": ["op"],
        },
        "outputSchema": OUTPUT_SCHEMA,
        "annotations": _hints("Facebook ads", read_only=read_only, destructive=not read_only, idempotent=read_only),
    }


def op_tool(spec: Any, registry: Any = None) -> dict[str, Any]:
    registry = _registry(registry)
    return {
        "name": spec.name,
        "title": _title(spec.name),
        "description": spec.description,
        "inputSchema": registry.args_schema(spec),
        "outputSchema": registry.result_schema(spec) if spec.result is not None else OUTPUT_SCHEMA,
        "annotations": _hints(
            _title(spec.name),
            read_only=spec.kind is OpKind.READ,
            destructive=bool(spec.destructive),
            idempotent=bool(spec.idempotent),
        ),
    }


def meta_tools(registry: Any = None, *, dynamic: bool = True) -> list[dict[str, Any]]:
    """find_ops, and (where the list can change at run time) list_toolsets and enable_toolset."""
    registry = _registry(registry)
    toolsets = list(registry.toolsets())
    local = dict(read_only=True, destructive=False, idempotent=True, open_world=False)
    tools = [
        {
            "name": FIND_OPS_TOOL,
            "title": "Find ops",
            "description": "Find the ops for a task in plain words (e.g. 'pause campaigns spending too much'): ranked "
            "op names, one line each. Run one with the facebook tool (op=NAME), or with its own tool "
            "once its toolset is enabled.",
            "inputSchema": {
                "type": "object",
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
                "required": ["query"],
            },
            "outputSchema": meta_output_schema(FIND_OPS_TOOL),
            "annotations": _hints("Find ops", **local),
        }
    ]
    if dynamic:
        tools.append(
            {
                "name": LIST_TOOLSETS_TOOL,
                "title": "List toolsets",
                "description": "The toolsets (groups of ops by task), their ops, and which are enabled now.",
                "inputSchema": {"type": "object", "properties": {}},
                "outputSchema": meta_output_schema(LIST_TOOLSETS_TOOL),
                "annotations": _hints("List toolsets", **local),
            }
        )
        tools.append(
            {
                "name": ENABLE_TOOLSET_TOOL,
                "title": "Enable toolset",
                "description": "Add a toolset's ops as tools for the rest of this session (the server sends "
                f"tools/list_changed). Toolsets: {', '.join(toolsets)}.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": toolsets, "description": "The toolset to enable."}
                    },
                    "required": ["name"],
                },
                "outputSchema": meta_output_schema(ENABLE_TOOLSET_TOOL),
                "annotations": _hints("Enable toolset", **local),
            }
        )
    return tools


def tool_list(selection: ToolSelection, registry: Any = None, *, dynamic: bool = True) -> list[dict[str, Any]]:
    """The tools for a selection: `single` (just `facebook`), `per-op` (find_ops, the toolset tools and one tool
    per selected op) or `both` (the facebook tool and all of that). The one builder of tool lists."""
    if selection.mode not in TOOL_MODES:
        raise ValueError(f"tools mode must be one of {', '.join(TOOL_MODES)}, not {selection.mode!r}")
    registry = _registry(registry)
    tools: list[dict[str, Any]] = []
    if selection.mode in ("single", "both"):
        tools.append(facebook_tool(registry, read_only=selection.read_only))
    if selection.mode in ("per-op", "both"):
        tools.extend(meta_tools(registry, dynamic=dynamic))
        tools.extend(op_tool(spec, registry) for spec in selected_specs(selection, registry))
    return tools


def openai_tools(
    mode: str = "single", registry: Any = None, *, toolsets: tuple[str, ...] | None = None, read_only: bool = False
) -> list[dict[str, Any]]:
    """The same selection as OpenAI function tools (no list_toolsets/enable_toolset: an OpenAI tool list is fixed).
    Each tool name is an op the facebook(op, args) dispatcher runs, find_ops included."""
    selection = ToolSelection(mode, parse_toolsets(toolsets, registry), read_only)
    return [
        {
            "type": "function",
            "function": {"name": tool["name"], "description": tool["description"], "parameters": tool["inputSchema"]},
        }
        for tool in tool_list(selection, registry, dynamic=False)
    ]


# ---------------------------------------------------------------------------------------------------------------
# The meta tools' answers
# ---------------------------------------------------------------------------------------------------------------


def find_ops_result(arguments: dict[str, Any], selection: ToolSelection, registry: Any = None) -> OpResult:
    """find_ops for a server: ops this server may run, ranked for the query."""
    unknown = sorted(set(arguments) - {"query", "limit"})
    if unknown:
        raise ValidationError(
            f"find_ops takes query and limit, not {', '.join(unknown)}",
            fix='Pass {"query": "what you want to do"}',
            blame_field=unknown[0],
        )
    return _registry(registry).find_ops_result(arguments.get("query"), arguments.get("limit", 8), selection.allows)


def list_toolsets_result(selection: ToolSelection, registry: Any = None) -> OpResult:
    """list_toolsets: each toolset, its ops (those this server may run) and whether they are listed now."""
    registry = _registry(registry)
    listed = {spec.name for spec in selected_specs(selection, registry)}
    rows, lines = (
        [],
        [f"Toolsets{' (read-only server)' if selection.read_only else ''}; enable one with enable_toolset:"],
    )
    for name, specs in registry.toolsets().items():
        ops = [spec.name for spec in specs if selection.allows(spec)]
        enabled = bool(ops) and all(op in listed for op in ops)
        rows.append({"name": name, "label": TaskGroup(name).label, "ops": ops, "enabled": enabled})
        lines.append(f"  {name:<20} {'enabled' if enabled else 'not enabled':<11} {len(ops):>3} ops: {', '.join(ops)}")
    lines.append("Any op also runs through the facebook tool (op=NAME); find_ops finds the ops for a task.")
    return OpResult(text="\n".join(lines), data={"toolsets": rows, "read_only": selection.read_only})


def enable_toolset_plan(
    selection: ToolSelection, arguments: dict[str, Any], registry: Any = None
) -> tuple[str, list[str]]:
    """The toolset enable_toolset names (checked) and the op tools it would add to the selection."""
    registry = _registry(registry)
    unknown = sorted(set(arguments) - {"name"})
    if unknown:
        raise ValidationError(
            f"enable_toolset takes name, not {', '.join(unknown)}",
            fix='Pass {"name": "campaigns"}',
            blame_field=unknown[0],
        )
    name = arguments.get("name")
    known = list(registry.toolsets())
    if not isinstance(name, str) or name.strip().lower() not in known:
        raise unknown_toolset(name, known, "name")
    name = name.strip().lower()
    before = {spec.name for spec in selected_specs(selection, registry)}
    return name, [
        spec.name for spec in selected_specs(selection.with_enabled(name), registry) if spec.name not in before
    ]

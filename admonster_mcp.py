"""Ad Monster as an MCP server (the official `mcp` SDK): `admonster mcp` over stdio, and `/mcp` on `admonster serve`.

The tools come from the op registry: every op as its own tool (input schema from its argument model, structured
output, read-only / destructive / idempotent annotations) and/or the single `facebook` tool ({op, args}), chosen
with ``--tools single|per-op|both``. Which ops get their own tool is a selection (``ToolSelection``): the toolsets
(the registry's task groups) named with ``--toolsets``, else the ops declared core; ``--read-only`` keeps read ops
only. Beside them sit ``find_ops`` (ranked ops for a query), ``list_toolsets`` and ``enable_toolset`` (adds a
toolset's tools for the rest of the session and sends ``notifications/tools/list_changed``). Every op stays
reachable through the `facebook` tool whatever is listed. Every call goes through ``Facebook.call(..., interface="mcp")``, so answers and
errors are the same one-line texts chat shows; an op's failure comes back as a tool error (isError), never as a
protocol error.

Over HTTP, each request carries ``Authorization: Bearer <workspace API key>``; the key's workspace decides which
Facebook session serves the call. The SDK's ``StreamableHTTPSessionManager`` (an ASGI app, stateless, JSON responses)
is bridged into the aiohttp server and lives as long as the aiohttp app does.
"""
from __future__ import annotations

import asyncio
import difflib
import json
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import mcp_types as types
from aiohttp import web
from mcp.server.lowlevel import NotificationOptions, Server

from fb_utils import FacebookError, OpKind, ValidationError, get_logger, load_json_bounded

ToolsMode = Literal["single", "per-op", "both"]
TOOL_MODES: tuple[str, ...] = ("single", "per-op", "both")
FACEBOOK_TOOL = "facebook"
FIND_OPS_TOOL = "find_ops"
LIST_TOOLSETS_TOOL = "list_toolsets"
ENABLE_TOOLSET_TOOL = "enable_toolset"
META_TOOLS = (FIND_OPS_TOOL, LIST_TOOLSETS_TOOL, ENABLE_TOOLSET_TOOL)
ALL_TOOLSETS = "all"  # --toolsets all: every op as its own tool
DEFAULT_TOOLSETS = "default"  # --toolsets default: the core ops (what no --toolsets serves)
MCP_SETTING = "mcp_tools"  # the workspace setting /mcp reads: {"toolsets": [...], "read_only": bool}
MCP_PATH = "/mcp"
INTERFACE = "mcp"  # stdio: the person at this machine
HTTP_INTERFACE = "mcp_http"  # /mcp on `admonster serve`: a remote caller (fb_utils.REMOTE_INTERFACES)
WORKSPACE_SCOPE_KEY = "admonster.workspace"
MAX_BODY_BYTES = 1 << 20

# What every op answers as structured content: its data object (non-object data is wrapped as {"result": …}).
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The op's data: the same JSON the HTTP API returns as `data` (non-object data under `result`).",
    "additionalProperties": True,
}

log = get_logger("admonster_mcp")

# Resolves the Facebook session serving one MCP request (stdio: the configured workspace; HTTP: the key's workspace).
SessionResolver = Callable[[Any], Awaitable[Any]]


# ---------------------------------------------------------------------------------------------------------------
# Tools from the registry
# ---------------------------------------------------------------------------------------------------------------


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

    def with_enabled(self, name: str) -> "ToolSelection":
        return ToolSelection(self.mode, self.toolsets, self.read_only, tuple(dict.fromkeys((*self.enabled, name))))

    def allows(self, spec: Any) -> bool:
        """Whether this server may run the op at all (read-only refuses writes, through any tool)."""
        return not self.read_only or spec.kind is OpKind.READ


def parse_toolsets(value: str | Iterable[str] | None, registry: Any = None) -> tuple[str, ...] | None:
    """`a,b` (or a list) as toolset names, checked against the registry: one line with a fix for an unknown one."""
    if value is None:
        return None
    names = [part.strip().lower() for part in (value.split(",") if isinstance(value, str) else value)]
    names = [name for name in names if name]
    known = [*_registry(registry).toolsets(), DEFAULT_TOOLSETS, ALL_TOOLSETS]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            raise ValidationError(f"Unknown toolset {name!r}", fix=(f"Did you mean {close[0]}? " if close else "")
                                  + f"Toolsets: {', '.join(known)}", blame_field="toolsets")
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


def facebook_tool(registry: Any = None, *, read_only: bool = False) -> types.Tool:
    registry = _registry(registry)
    description = registry.facebook_tool_description()
    if read_only:
        description += " This server is read-only: only ops that read run."
    return types.Tool(
        name=FACEBOOK_TOOL,
        title="Facebook ads",
        description=description,
        input_schema={"type": "object", "properties": {
            "op": {"type": "string", "description": "The op name, 'help', or 'find_ops' (args={'query': ...})."},
            "args": {"type": "object", "description": "The op's arguments (see op='help', args={'op': NAME})."}},
            "required": ["op"]},
        output_schema=OUTPUT_SCHEMA,
        annotations=types.ToolAnnotations(title="Facebook ads", read_only_hint=read_only, destructive_hint=not read_only,
                                          idempotent_hint=read_only, open_world_hint=True),
    )


def op_tool(spec: Any, registry: Any = None) -> types.Tool:
    registry = _registry(registry)
    return types.Tool(
        name=spec.name,
        title=_title(spec.name),
        description=spec.description,
        input_schema=registry.args_schema(spec),
        output_schema=OUTPUT_SCHEMA,
        annotations=types.ToolAnnotations(title=_title(spec.name), read_only_hint=spec.kind is OpKind.READ,
                                          destructive_hint=bool(spec.destructive), idempotent_hint=bool(spec.idempotent),
                                          open_world_hint=True),
    )


def _read_hints(title: str) -> types.ToolAnnotations:
    return types.ToolAnnotations(title=title, read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                 open_world_hint=False)


def meta_tools(registry: Any = None, *, dynamic: bool = True) -> list[types.Tool]:
    """find_ops, and (where the list can change at run time) list_toolsets and enable_toolset."""
    registry = _registry(registry)
    toolsets = list(registry.toolsets())
    tools = [types.Tool(
        name=FIND_OPS_TOOL, title="Find ops",
        description="Find the ops for a task in plain words (e.g. 'pause campaigns spending too much'): ranked op names, "
                    "one line each. Run one with the facebook tool (op=NAME) or its own tool once its toolset is enabled.",
        input_schema={"type": "object", "properties": {
            "query": {"type": "string", "description": "What you want to do, in plain words."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 8, "description": "How many ops at most."}},
            "required": ["query"]},
        output_schema=OUTPUT_SCHEMA, annotations=_read_hints("Find ops"))]
    if dynamic:
        tools.append(types.Tool(
            name=LIST_TOOLSETS_TOOL, title="List toolsets",
            description="The toolsets (groups of ops by task), their ops, and which are enabled in this session.",
            input_schema={"type": "object", "properties": {}}, output_schema=OUTPUT_SCHEMA,
            annotations=_read_hints("List toolsets")))
        tools.append(types.Tool(
            name=ENABLE_TOOLSET_TOOL, title="Enable toolset",
            description="Add a toolset's ops as tools for the rest of this session (the tool list changes: "
                        f"tools/list_changed). Toolsets: {', '.join(toolsets)}.",
            input_schema={"type": "object", "properties": {
                "name": {"type": "string", "enum": toolsets, "description": "The toolset to enable."}}, "required": ["name"]},
            output_schema=OUTPUT_SCHEMA, annotations=_read_hints("Enable toolset")))
    return tools


def build_tools(mode: str = "both", registry: Any = None, *, toolsets: tuple[str, ...] | None = None,
                read_only: bool = False, enabled: tuple[str, ...] = (), dynamic: bool = True) -> list[types.Tool]:
    """The MCP tools for a mode and a selection: `single` (just `facebook`), `per-op` (find_ops, the toolset tools
    and one tool per selected op) or `both` (the facebook tool and all of that). The one builder of tool lists:
    `admonster mcp`, `/mcp` and `admonster tools` all list what this returns."""
    if mode not in TOOL_MODES:
        raise ValueError(f"tools mode must be one of {', '.join(TOOL_MODES)}, not {mode!r}")
    registry = _registry(registry)
    selection = ToolSelection(mode, parse_toolsets(toolsets, registry), read_only, tuple(enabled))
    tools: list[types.Tool] = []
    if mode in ("single", "both"):
        tools.append(facebook_tool(registry, read_only=read_only))
    if mode in ("per-op", "both"):
        tools.extend(meta_tools(registry, dynamic=dynamic))
        tools.extend(op_tool(spec, registry) for spec in selected_specs(selection, registry))
    return tools


def tools_for(selection: ToolSelection, registry: Any = None, *, dynamic: bool = True) -> list[types.Tool]:
    return build_tools(selection.mode, registry, toolsets=selection.toolsets, read_only=selection.read_only,
                       enabled=selection.enabled, dynamic=dynamic)


def tool_dicts(tools: list[types.Tool]) -> list[dict[str, Any]]:
    """Tools as MCP's JSON (camelCase, no nulls): what tools/list sends."""
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


def openai_tools(mode: str = "single", registry: Any = None, *, toolsets: tuple[str, ...] | None = None,
                 read_only: bool = False) -> list[dict[str, Any]]:
    """The same selection as OpenAI function tools (no list_toolsets/enable_toolset: an OpenAI tool list is fixed).
    Each tool name is an op the facebook(op, args) dispatcher runs (find_ops included)."""
    return [{"type": "function", "function": {"name": tool.name, "description": tool.description,
                                              "parameters": tool.input_schema}}
            for tool in build_tools(mode, registry, toolsets=toolsets, read_only=read_only, dynamic=False)]


# ---------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def structured(data: Any) -> dict[str, Any]:
    """An op's data as an MCP structured-content object."""
    safe = _json_safe(data)
    return safe if isinstance(safe, dict) else {"result": safe}


def to_call_result(result: Any) -> types.CallToolResult:
    """An OpResult as a CallToolResult: its text, its data as structured content, isError when it failed."""
    text = result.llm_text
    if result.files:
        text += "\n" + "\n".join(f"file: {path}" for path in result.files)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                structured_content=structured(result.data), is_error=not result.ok)


def error_result(error: FacebookError) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=error.to_text())],
                                structured_content=structured(error.to_data()), is_error=True)


def unknown_tool_error(name: str, tool_names: list[str], registry: Any = None) -> FacebookError:
    registry = _registry(registry)
    close = difflib.get_close_matches(name, tool_names, n=3, cutoff=0.5)
    if not close:
        close = [n for n in tool_names if name and (name in n or n in name)][:3]
    spec = registry.get(name)
    if FACEBOOK_TOOL in tool_names and spec is not None and ENABLE_TOOLSET_TOOL in tool_names and spec.group is not None:
        fix = (f'Call the facebook tool with op="{name}", or enable_toolset with name="{spec.group.value}" '
               "to list it as a tool")
    elif FACEBOOK_TOOL in tool_names and spec is not None:
        fix = f'Call the facebook tool with op="{name}" (this server does not list it as a tool)'
    elif close:
        fix = f"Did you mean {', '.join(close)}? tools/list shows every tool"
    else:
        fix = "tools/list shows every tool" + ("; facebook with op=help lists every op" if FACEBOOK_TOOL in tool_names else "")
    return ValidationError(f"Unknown tool {name!r}", fix=fix, data={"suggestions": close})


# ---------------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------------


def server_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("admonster")
    except PackageNotFoundError:
        return "0"


# Resolves the tool selection serving one MCP request (stdio: the command line's; HTTP: the workspace's setting).
SelectionResolver = Callable[[Any], Awaitable[ToolSelection]]


def list_toolsets_result(selection: ToolSelection, registry: Any = None) -> Any:
    """list_toolsets as an OpResult: each toolset, its ops (those this server may run) and whether it is listed."""
    from fb_utils import OpResult, TaskGroup

    registry = _registry(registry)
    listed = {spec.name for spec in selected_specs(selection, registry)}
    rows, lines = [], [f"Toolsets{' (read-only server)' if selection.read_only else ''}; enable one with enable_toolset:"]
    for name, specs in registry.toolsets().items():
        ops = [spec.name for spec in specs if selection.allows(spec)]
        enabled = bool(ops) and all(op in listed for op in ops)
        rows.append({"name": name, "label": TaskGroup(name).label, "ops": ops, "enabled": enabled})
        lines.append(f"  {name:<20} {'enabled' if enabled else 'not enabled':<11} {len(ops):>3} ops: {', '.join(ops)}")
    lines.append("Any op also runs through the facebook tool (op=NAME); find_ops finds ops for a task.")
    return OpResult(text="\n".join(lines), data={"toolsets": rows, "read_only": selection.read_only})


def build_server(resolve: SessionResolver, mode: str = "both", registry: Any = None, *,
                 interface: str = INTERFACE, toolsets: tuple[str, ...] | None = None, read_only: bool = False,
                 selection_for: SelectionResolver | None = None, stateless: bool = False) -> Server:
    """A low-level MCP Server whose tools are the registry's, each call run by the session `resolve(ctx)` gives.
    The tools listed follow the selection (`selection_for(ctx)`, else mode/toolsets/read_only) plus the toolsets
    enable_toolset added in this MCP session; a stateless server (HTTP today) keeps no session, so enable_toolset
    there only says which ops the toolset has."""
    from fb_utils import OpResult
    from fi_facebook import normalize_call

    registry = _registry(registry)
    base = ToolSelection(mode, parse_toolsets(toolsets, registry), read_only)
    listings: dict[ToolSelection, tuple[list[types.Tool], frozenset[str]]] = {}
    enabled_in: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()

    def listing(selection: ToolSelection) -> tuple[list[types.Tool], frozenset[str]]:
        if selection not in listings:
            tools = tools_for(selection, registry)
            listings[selection] = (tools, frozenset(tool.name for tool in tools))
        return listings[selection]

    async def selection_of(ctx: Any) -> ToolSelection:
        selection = await selection_for(ctx) if selection_for is not None else base
        for name in enabled_in.get(ctx.session, ()):
            selection = selection.with_enabled(name)
        return selection

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listing(await selection_of(ctx))[0])

    async def enable_toolset(ctx: Any, selection: ToolSelection, arguments: dict[str, Any]) -> Any:
        name = arguments.get("name")
        known = list(registry.toolsets())
        if not isinstance(name, str) or name.strip().lower() not in known:
            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
            raise ValidationError(f"Unknown toolset {name!r}", fix=(f"Did you mean {close[0]}? " if close else "")
                                  + f"Toolsets: {', '.join(known)}", blame_field="name")
        name = name.strip().lower()
        before = {spec.name for spec in selected_specs(selection, registry)}
        after = selection.with_enabled(name)
        added = [spec.name for spec in selected_specs(after, registry) if spec.name not in before]
        data = {"toolset": name, "added": added, "listed": not stateless}
        if stateless:
            return OpResult(text=f"Toolset {name}: {', '.join(added) or 'nothing new'}. This endpoint is stateless "
                                 "(HTTP), so its tool list cannot change during a session: run these through the "
                                 "facebook tool (op=NAME), or set the workspace's toolsets (admonster workspace mcp).",
                            data=data)
        if not added:
            return OpResult(text=f"Toolset {name} adds nothing: its ops are already listed.", data=data)
        enabled_in[ctx.session] = (*enabled_in.get(ctx.session, ()), name)
        await ctx.session.send_tool_list_changed()
        return OpResult(text=f"Enabled toolset {name}: {len(added)} tools added ({', '.join(added)}). "
                             "tools/list shows them now.", data=data)

    def find_ops(arguments: dict[str, Any], selection: ToolSelection) -> Any:
        unknown = sorted(set(arguments) - {"query", "limit"})
        if unknown:
            raise ValidationError(f"find_ops takes query and limit, not {', '.join(unknown)}",
                                  fix='Pass {"query": "what you want to do"}', blame_field=unknown[0])
        return registry.find_ops_result(arguments.get("query"), arguments.get("limit", 8), selection.allows)

    def refuse_in_read_only(name: str) -> None:
        spec = registry.get(name)
        if name in ("confirm", "reject") or (spec is not None and spec.kind is not OpKind.READ):
            raise ValidationError(f"{name} changes things, and this MCP server is read-only",
                                  fix="Use an MCP server started without --read-only to make changes")

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name, arguments = params.name, dict(params.arguments or {})
        try:
            selection = await selection_of(ctx)
            names = listing(selection)[1]
            if name not in names:
                return error_result(unknown_tool_error(name, sorted(names), registry))
            if name == FACEBOOK_TOOL:  # find_ops and the read-only rule are this server's, before any session
                extra = {k: v for k, v in arguments.items() if k not in ("op", "args")}
                op, op_args = normalize_call(arguments.get("op"), arguments.get("args"), extra)
                if op == FIND_OPS_TOOL:
                    return to_call_result(find_ops(op_args, selection))
                if selection.read_only:
                    refuse_in_read_only(op)
            if name == FIND_OPS_TOOL:
                return to_call_result(find_ops(arguments, selection))
            if name == LIST_TOOLSETS_TOOL:
                return to_call_result(list_toolsets_result(selection, registry))
            if name == ENABLE_TOOLSET_TOOL:
                return to_call_result(await enable_toolset(ctx, selection, arguments))
            if name == FACEBOOK_TOOL:
                facebook = await resolve(ctx)
                result = await facebook.call(arguments.get("op"), arguments.get("args"), interface=interface, top_level=extra)
            else:
                facebook = await resolve(ctx)
                result = await facebook.call(name, arguments, interface=interface)
            return to_call_result(result)
        except FacebookError as error:  # e.g. no workspace for this request
            return error_result(error)
        except Exception as error:  # never a protocol crash: one line, logged with its traceback
            log.exception("mcp tool call crashed", tool=name)
            return error_result(FacebookError(f"Internal error while running {name!r}: {type(error).__name__}",
                                              fix="This is a bug in Ad Monster; the log has details"))

    return Server("admonster", version=server_version(), title="Ad Monster",
                  instructions=registry.facebook_tool_description(),
                  on_list_tools=list_tools, on_call_tool=call_tool)


def initialization_options(server: Server) -> Any:
    """The server's capabilities, tools.listChanged declared: enable_toolset changes the list during a session."""
    return server.create_initialization_options(NotificationOptions(tools_changed=True))


# ---------------------------------------------------------------------------------------------------------------
# stdio: `admonster mcp`
# ---------------------------------------------------------------------------------------------------------------


async def serve_stdio(settings: Any, *, mode: str = "both", workspace: str | None = None,
                      toolsets: tuple[str, ...] | None = None, read_only: bool = False) -> None:
    """Serve MCP on stdin/stdout for one workspace; stdout carries nothing but the protocol (logs go to stderr)."""
    import sys

    from mcp.server.stdio import stdio_server

    from admonster_runtime import open_runtime

    name = workspace or settings.workspace
    async with stdio_server() as (read_stream, write_stream):  # claims fd 1 first: stray prints go to stderr
        async with open_runtime(settings, on_wait=lambda message: print(f"… {message}", file=sys.stderr)) as runtime:
            chosen = await runtime.workspace(name)

            async def resolve(ctx: Any) -> Any:
                return await runtime.facebook_for(chosen)

            server = build_server(resolve, mode, toolsets=toolsets, read_only=read_only)
            await server.run(read_stream, write_stream, initialization_options(server))


# ---------------------------------------------------------------------------------------------------------------
# Streamable HTTP on aiohttp: `/mcp` on `admonster serve`
# ---------------------------------------------------------------------------------------------------------------


MAX_API_KEY_CHARS = 200


def bearer_key(header: str) -> tuple[str | None, str]:
    """The API key of an `Authorization: Bearer <key>` header, or (None, why it is refused): missing, not printable
    ASCII (aiohttp hands non-UTF-8 bytes on as surrogates), or too long. Shared by every /v1/ route and /mcp."""
    scheme, _, key = (header or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None, "No API key"
    if len(key) > MAX_API_KEY_CHARS or not (key.isascii() and key.isprintable()):
        return None, "The API key is not a valid key (printable ASCII, at most 200 characters)"
    return key, ""


def _auth_error(message: str, fix: str) -> web.Response:
    return web.json_response({"ok": False, "text": f"ERROR auth: {message}. Fix: {fix}.",
                              "data": {"error": "auth", "message": message, "fix": fix}},
                             status=401, headers={"WWW-Authenticate": 'Bearer realm="admonster"'})


class McpHttp:
    """The SDK's session manager (stateless, JSON responses) behind API-key auth, bridged from aiohttp to ASGI."""

    def __init__(self, runtime: Any, mode: str = "both") -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        self.runtime = runtime
        self.mode = mode
        self.server = build_server(self._resolve, mode, interface=HTTP_INTERFACE, selection_for=self._selection,
                                   stateless=True)
        self.manager = StreamableHTTPSessionManager(app=self.server, stateless=True, json_response=True,
                                                    max_request_body_size=MAX_BODY_BYTES)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    @staticmethod
    def _workspace(ctx: Any) -> Any:
        request = getattr(ctx, "request", None)
        workspace = request.scope.get(WORKSPACE_SCOPE_KEY) if request is not None else None
        if workspace is None:  # cannot happen behind handle(): refuse rather than guess a workspace
            raise ValidationError("This MCP request has no workspace", fix="Send Authorization: Bearer <workspace API key>")
        return workspace

    async def _resolve(self, ctx: Any) -> Any:
        return await self.runtime.facebook_for(self._workspace(ctx))

    async def _selection(self, ctx: Any) -> ToolSelection:
        """The workspace's MCP setting (admonster workspace mcp NAME --toolsets … --read-only), else the default."""
        return selection_from_setting(await self.runtime.store.get_setting(self._workspace(ctx).id, MCP_SETTING, None),
                                      self.mode)

    # -- lifecycle (aiohttp signals) ----------------------------------------------------------------------------

    async def start(self, app: web.Application | None = None) -> None:
        if self._task is not None:
            return
        started = asyncio.Event()

        async def run() -> None:  # one task owns the manager's task group from start to stop
            async with self.manager.run():
                started.set()
                await self._stop.wait()

        self._task = asyncio.get_running_loop().create_task(run())
        waiter = asyncio.ensure_future(started.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiter.cancel()
            self._task.result()  # raises what stopped the manager

    async def stop(self, app: web.Application | None = None) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    # -- requests -----------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key, problem = bearer_key(request.headers.get("Authorization", ""))
        if key is None:
            return _auth_error(problem, "Send Authorization: Bearer <key> (admonster workspace create NAME prints one)")
        workspace = await self.runtime.store.workspace_for_api_key(key)
        if workspace is None:
            return _auth_error("Unknown API key", "Check the key, or create a workspace key with admonster workspace create NAME")
        if request.method != "POST":  # stateless: no standalone SSE stream to GET, no session to DELETE
            return web.json_response({"ok": False, "text": f"ERROR validation: {request.method} is not served on /mcp "
                                      "(stateless streamable HTTP). Fix: POST JSON-RPC messages to /mcp."},
                                     status=405, headers={"Allow": "POST"})
        if self._task is None:
            return web.json_response({"ok": False, "text": "ERROR system: The MCP endpoint is not running. Fix: restart admonster serve."},
                                     status=503)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"ok": False, "text": "ERROR validation: The request body is too large. Fix: send less."},
                                     status=413)
        try:  # bounded before the SDK parses it: too deep or not JSON is one line, never a RecursionError
            load_json_bounded(body, what="The JSON-RPC body", max_bytes=MAX_BODY_BYTES)
        except ValidationError as error:  # a JSON-RPC parse error, as the SDK answers bad JSON, with our one line
            return web.json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": error.to_text()}},
                                     status=error.http_status or 400)
        return await self._bridge(request, body, workspace)

    async def _bridge(self, request: web.Request, body: bytes, workspace: Any) -> web.StreamResponse:
        """Run one request through the ASGI session manager, streaming its answer back through aiohttp."""
        host, port = (request.transport.get_extra_info("sockname") or ("127.0.0.1", 0))[:2] if request.transport else ("127.0.0.1", 0)
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": request.method, "scheme": request.scheme, "path": request.path,
            "raw_path": request.raw_path.split("?", 1)[0].encode(), "query_string": request.query_string.encode(),
            "root_path": "", "headers": [(k.lower(), v) for k, v in request.raw_headers],
            "client": (request.remote or "", 0), "server": (host, port), "state": {},
            WORKSPACE_SCOPE_KEY: workspace,
        }
        answered = asyncio.Event()
        sent_body = False
        response: web.StreamResponse | None = None

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if answered.is_set():  # the client went away: drop what is left
                return
            try:
                await forward(message)
            except ConnectionError:  # aiohttp's ClientConnectionResetError included
                answered.set()

        async def forward(message: dict[str, Any]) -> None:
            nonlocal response
            if message["type"] == "http.response.start":
                response = web.StreamResponse(status=message["status"])
                for name, value in message.get("headers", []):
                    name_text, value_text = name.decode("latin-1"), value.decode("latin-1")
                    if name_text.lower() not in ("content-length", "transfer-encoding", "connection"):
                        response.headers.add(name_text, value_text)
                await response.prepare(request)
            elif message["type"] == "http.response.body" and response is not None:
                chunk = message.get("body", b"")
                if chunk:
                    await response.write(chunk)
                if not message.get("more_body", False):
                    await response.write_eof()
                    answered.set()

        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            answered.set()
        if response is None:
            return web.json_response({"ok": False, "text": "ERROR system: The MCP endpoint gave no answer. Fix: try again."},
                                     status=500)
        return response


def selection_from_setting(value: Any, mode: str = "both") -> ToolSelection:
    """A workspace's stored MCP setting as a selection; a setting the registry no longer knows (a toolset renamed)
    falls back to the default rather than failing every request (logged)."""
    if not isinstance(value, dict):
        return ToolSelection(mode)
    try:
        toolsets = parse_toolsets(value.get("toolsets"))
    except ValidationError as error:
        log.warning("workspace MCP setting ignored", problem=error.to_text())
        toolsets = None
    return ToolSelection(mode, toolsets, bool(value.get("read_only", False)))


def mount_mcp(app: web.Application, runtime: Any, *, mode: str = "both", path: str = MCP_PATH) -> McpHttp:
    """Serve MCP (streamable HTTP) at `path` on an aiohttp app; the session manager starts and stops with the app."""
    endpoint = McpHttp(runtime, mode)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, path, endpoint.handle)
    app.on_startup.append(endpoint.start)
    app.on_shutdown.append(endpoint.stop)  # before aiohttp waits for open connections
    app.on_cleanup.append(endpoint.stop)
    return endpoint

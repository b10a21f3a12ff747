"""Ad Monster as an MCP server (the official `mcp` SDK): `admonster mcp` over stdio, and `/mcp` on `admonster serve`.

The tools come from the op registry: every op as its own tool (input schema from its argument model, structured
output, read-only / destructive / idempotent annotations) and/or the single `facebook` tool ({op, args}), chosen
with ``--tools single|per-op|both``. Which ops get their own tool is a selection (``ToolSelection``): the toolsets
(the registry's task groups) named with ``--toolsets``, else the ops declared core; ``--read-only`` keeps read ops
only. Beside them sit ``find_ops`` (ranked ops for a query), ``list_toolsets`` and ``enable_toolset`` (adds a
toolset's tools for the rest of the session and sends ``notifications/tools/list_changed``). Every op stays
reachable through the `facebook` tool whatever is listed (admonster_tools builds every list). Every call goes
through ``Facebook.call(..., interface="mcp")``, so answers and errors are the same one-line texts chat shows; an
op's failure comes back as a tool error (isError), never as a protocol error.

Over HTTP, each request carries ``Authorization: Bearer <workspace API key>``; the key's workspace decides which
Facebook session serves the call. The SDK's ``StreamableHTTPSessionManager`` (an ASGI app, stateless, JSON responses)
is bridged into the aiohttp server and lives as long as the aiohttp app does.
"""
from __future__ import annotations

import asyncio
import difflib
import json
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import mcp_types as types
from aiohttp import web
from mcp.server.lowlevel import NotificationOptions, Server

import admonster_tools
from admonster_tools import (ENABLE_TOOLSET_TOOL, FACEBOOK_TOOL, FIND_OPS_TOOL, LIST_TOOLSETS_TOOL, MCP_SETTING,
                             OUTPUT_SCHEMA, TOOL_MODES, ToolSelection, enable_toolset_plan, find_ops_result,
                             list_toolsets_result, parse_toolsets, selection_from_setting, tool_list)
from fb_utils import FacebookError, OpKind, OpResult, ValidationError, get_logger, load_json_bounded

ToolsMode = Literal["single", "per-op", "both"]
MCP_PATH = "/mcp"
INTERFACE = "mcp"  # stdio: the person at this machine
HTTP_INTERFACE = "mcp_http"  # /mcp on `admonster serve`: a remote caller (fb_utils.REMOTE_INTERFACES)
WORKSPACE_SCOPE_KEY = "admonster.workspace"
MAX_BODY_BYTES = 1 << 20

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


def build_tools(mode: str = "both", registry: Any = None, *, toolsets: tuple[str, ...] | None = None,
                read_only: bool = False, enabled: tuple[str, ...] = (), dynamic: bool = True) -> list[types.Tool]:
    """The MCP tools for a mode and a selection (admonster_tools.tool_list, the one builder): `single` (just
    `facebook`), `per-op` (find_ops, list_toolsets, enable_toolset and one tool per selected op) or `both`."""
    registry = _registry(registry)
    selection = ToolSelection(mode, parse_toolsets(toolsets, registry), read_only, tuple(enabled))
    return tools_for(selection, registry, dynamic=dynamic)


def tools_for(selection: ToolSelection, registry: Any = None, *, dynamic: bool = True) -> list[types.Tool]:
    return [types.Tool.model_validate(tool) for tool in tool_list(selection, registry, dynamic=dynamic)]


def tool_dicts(tools: list[types.Tool]) -> list[dict[str, Any]]:
    """Tools as MCP's JSON (camelCase, no nulls): what tools/list sends."""
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


def facebook_tool(registry: Any = None, *, read_only: bool = False) -> types.Tool:
    return types.Tool.model_validate(admonster_tools.facebook_tool(_registry(registry), read_only=read_only))


def op_tool(spec: Any, registry: Any = None) -> types.Tool:
    return types.Tool.model_validate(admonster_tools.op_tool(spec, _registry(registry)))


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


class _OnlyConnection:
    """Stands for the server's single connection where the SDK's request context names none."""


# Resolves the tool selection serving one MCP request (stdio: the command line's; HTTP: the workspace's setting).
SelectionResolver = Callable[[Any], Awaitable[ToolSelection]]


def build_server(resolve: SessionResolver, mode: str = "both", registry: Any = None, *,
                 interface: str = INTERFACE, toolsets: tuple[str, ...] | None = None, read_only: bool = False,
                 selection_for: SelectionResolver | None = None, stateless: bool = False) -> Server:
    """A low-level MCP Server whose tools are the registry's, each call run by the session `resolve(ctx)` gives.
    The tools listed follow the selection (`selection_for(ctx)`, else mode/toolsets/read_only) plus the toolsets
    enable_toolset added in this MCP session; a stateless server (HTTP today) keeps no session, so enable_toolset
    there only says which ops the toolset has."""
    from fi_facebook import normalize_call

    registry = _registry(registry)
    base = ToolSelection(mode, parse_toolsets(toolsets, registry), read_only)
    listings: dict[ToolSelection, tuple[list[types.Tool], frozenset[str]]] = {}
    # Toolsets enabled per MCP connection. The SDK builds a ServerSession per request around the connection, which it
    # keeps as `_connection` (no public accessor in mcp 2.3); where it is missing, the server's one connection (stdio).
    enabled_in: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()
    only_connection = _OnlyConnection()

    def connection_of(ctx: Any) -> Any:
        return getattr(ctx.session, "_connection", None) or only_connection

    def listing(selection: ToolSelection) -> tuple[list[types.Tool], frozenset[str]]:
        if selection not in listings:
            tools = tools_for(selection, registry)
            listings[selection] = (tools, frozenset(tool.name for tool in tools))
        return listings[selection]

    async def selection_of(ctx: Any) -> ToolSelection:
        selection = await selection_for(ctx) if selection_for is not None else base
        for name in enabled_in.get(connection_of(ctx), ()):
            selection = selection.with_enabled(name)
        return selection

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listing(await selection_of(ctx))[0])

    async def enable_toolset(ctx: Any, selection: ToolSelection, arguments: dict[str, Any]) -> OpResult:
        name, added = enable_toolset_plan(selection, arguments, registry)
        data = {"toolset": name, "added": added, "listed": not stateless}
        if stateless:
            return OpResult(text=f"Toolset {name}: {', '.join(added) or 'nothing new'}. This endpoint is stateless "
                                 "(HTTP), so its tool list cannot change during a session: run these through the "
                                 "facebook tool (op=NAME), or set the workspace's toolsets (admonster workspace mcp).",
                            data=data)
        if not added:
            return OpResult(text=f"Toolset {name} adds nothing: its ops are already listed.", data=data)
        enabled_in[connection_of(ctx)] = (*enabled_in.get(connection_of(ctx), ()), name)
        await ctx.session.send_tool_list_changed()
        return OpResult(text=f"Enabled toolset {name}: {len(added)} tools added ({', '.join(added)}). "
                             "tools/list shows them now.", data=data)

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
                    return to_call_result(find_ops_result(op_args, selection, registry))
                if selection.read_only:
                    refuse_in_read_only(op)
            if name == FIND_OPS_TOOL:
                return to_call_result(find_ops_result(arguments, selection, registry))
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


def error_response(status: int, kind: str, message: str, fix: str, headers: dict[str, str] | None = None) -> web.Response:
    """The HTTP API's refusal (every /v1/ route and /mcp; /openapi.json's `Error`): one line with a fix, and the same
    as data."""
    return web.json_response({"ok": False, "text": f"ERROR {kind}: {message}. Fix: {fix}.",
                              "data": {"error": kind, "message": message, "fix": fix}}, status=status, headers=headers)


def _auth_error(message: str, fix: str) -> web.Response:
    return error_response(401, "auth", message, fix, headers={"WWW-Authenticate": 'Bearer realm="admonster"'})


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
            return error_response(405, "validation", f"{request.method} is not served on /mcp (stateless streamable HTTP)",
                                  "POST JSON-RPC messages to /mcp", headers={"Allow": "POST"})
        if self._task is None:
            return error_response(503, "system", "The MCP endpoint is not running", "restart admonster serve")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_response(413, "validation", "The request body is too large", "send less")
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
            return error_response(500, "system", "The MCP endpoint gave no answer", "try again")
        return response


def mount_mcp(app: web.Application, runtime: Any, *, mode: str = "both", path: str = MCP_PATH) -> McpHttp:
    """Serve MCP (streamable HTTP) at `path` on an aiohttp app; the session manager starts and stops with the app."""
    endpoint = McpHttp(runtime, mode)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, path, endpoint.handle)
    app.on_startup.append(endpoint.start)
    app.on_shutdown.append(endpoint.stop)  # before aiohttp waits for open connections
    app.on_cleanup.append(endpoint.stop)
    return endpoint

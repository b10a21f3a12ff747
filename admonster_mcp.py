"""Ad Monster as an MCP server (the official `mcp` SDK): `admonster mcp` over stdio, and `/mcp` on `admonster serve`.

The tools come from the op registry: every op as its own tool (input schema from its argument model, structured
output, read-only / destructive / idempotent annotations) and/or the single `facebook` tool ({op, args}), chosen
with ``--tools single|per-op|both``. Every call goes through ``Facebook.call(..., interface="mcp")``, so answers and
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
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import mcp_types as types
from aiohttp import web
from mcp.server.lowlevel import Server

from fb_utils import FacebookError, OpKind, ValidationError, get_logger, load_json_bounded

ToolsMode = Literal["single", "per-op", "both"]
TOOL_MODES: tuple[str, ...] = ("single", "per-op", "both")
FACEBOOK_TOOL = "facebook"
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


def facebook_tool(registry: Any = None) -> types.Tool:
    registry = _registry(registry)
    return types.Tool(
        name=FACEBOOK_TOOL,
        title="Facebook ads",
        description=registry.facebook_tool_description(),
        input_schema={"type": "object", "properties": {
            "op": {"type": "string", "description": "The op name, or 'help'."},
            "args": {"type": "object", "description": "The op's arguments (see op='help', args={'op': NAME})."}},
            "required": ["op"]},
        output_schema=OUTPUT_SCHEMA,
        annotations=types.ToolAnnotations(title="Facebook ads", read_only_hint=False, destructive_hint=True,
                                          idempotent_hint=False, open_world_hint=True),
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


def build_tools(mode: str = "both", registry: Any = None) -> list[types.Tool]:
    """The MCP tools for a mode: `single` (just `facebook`), `per-op` (one per op) or `both`."""
    if mode not in TOOL_MODES:
        raise ValueError(f"tools mode must be one of {', '.join(TOOL_MODES)}, not {mode!r}")
    registry = _registry(registry)
    tools: list[types.Tool] = []
    if mode in ("single", "both"):
        tools.append(facebook_tool(registry))
    if mode in ("per-op", "both"):
        tools.extend(op_tool(spec, registry) for spec in registry.specs())
    return tools


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
    if FACEBOOK_TOOL in tool_names and registry.get(name) is not None:
        fix = f'Call the facebook tool with op="{name}" (this server lists only the facebook tool)'
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


def build_server(resolve: SessionResolver, mode: str = "both", registry: Any = None, *,
                 interface: str = INTERFACE) -> Server:
    """A low-level MCP Server whose tools are the registry's, each call run by the session `resolve(ctx)` gives."""
    registry = _registry(registry)
    tools = build_tools(mode, registry)
    names = [tool.name for tool in tools]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name, arguments = params.name, dict(params.arguments or {})
        try:
            if name not in names:
                return error_result(unknown_tool_error(name, names, registry))
            facebook = await resolve(ctx)
            if name == FACEBOOK_TOOL:
                extra = {k: v for k, v in arguments.items() if k not in ("op", "args")}
                result = await facebook.call(arguments.get("op"), arguments.get("args"), interface=interface, top_level=extra)
            else:
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


# ---------------------------------------------------------------------------------------------------------------
# stdio: `admonster mcp`
# ---------------------------------------------------------------------------------------------------------------


async def serve_stdio(settings: Any, *, mode: str = "both", workspace: str | None = None) -> None:
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

            server = build_server(resolve, mode)
            await server.run(read_stream, write_stream, server.create_initialization_options())


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
        self.server = build_server(self._resolve, mode, interface=HTTP_INTERFACE)
        self.manager = StreamableHTTPSessionManager(app=self.server, stateless=True, json_response=True,
                                                    max_request_body_size=MAX_BODY_BYTES)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _resolve(self, ctx: Any) -> Any:
        request = getattr(ctx, "request", None)
        workspace = request.scope.get(WORKSPACE_SCOPE_KEY) if request is not None else None
        if workspace is None:  # cannot happen behind handle(): refuse rather than guess a workspace
            raise ValidationError("This MCP request has no workspace", fix="Send Authorization: Bearer <workspace API key>")
        return await self.runtime.facebook_for(workspace)

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

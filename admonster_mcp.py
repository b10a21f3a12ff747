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

Over HTTP (``McpHttp``), each request carries ``Authorization: Bearer <workspace API key>``; the key's workspace
decides which Facebook session serves the call. The SDK's ``StreamableHTTPSessionManager`` (an ASGI app, stateful:
one MCP session per client, SSE answers) is bridged into the aiohttp server and lives as long as the aiohttp app does;
a session belongs to the workspace that opened it. The protected-resource metadata (RFC 9728) is served beside it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import anyio
import mcp_types as types
from aiohttp import web
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.shared.exceptions import MCPError

import admonster_tools
from admonster_tools import (
    ENABLE_TOOLSET_TOOL,
    FACEBOOK_TOOL,
    FIND_OPS_TOOL,
    LIST_TOOLSETS_TOOL,
    MCP_SETTING,
    ToolSelection,
    enable_toolset_plan,
    find_ops_result,
    list_toolsets_result,
    parse_toolsets,
    selection_from_setting,
    tool_list,
)
from fb_utils import (
    FacebookError,
    OpKind,
    OpResult,
    ValidationError,
    closest_names,
    get_logger,
    load_json_bounded,
    reset_progress_handler,
    set_progress_handler,
    structured_data,
)

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


def build_tools(
    mode: str = "both",
    registry: Any = None,
    *,
    toolsets: tuple[str, ...] | None = None,
    read_only: bool = False,
    enabled: tuple[str, ...] = (),
    dynamic: bool = True,
) -> list[types.Tool]:
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


def to_call_result(result: Any, resources: list[tuple[str, Any] | None] | None = None) -> types.CallToolResult:
    """An OpResult as a CallToolResult: its text, its data as structured content, isError when it failed. `resources`:
    per file of the result, its (id, shelf entry) when it is offered as a resource: the answer then carries a resource
    link (and a small PNG inline as image content) and names the file by its `admonster://files/…` URI."""
    text = result.llm_text
    shelved = list(resources or []) + [None] * (len(result.files or []) - len(resources or []))
    links: list[Any] = []
    names: list[str] = []
    for path, offered in zip(result.files or [], shelved):
        if offered is None:
            names.append(f"file: {path}")
            continue
        file_id, entry = offered
        uri = file_uri(file_id, entry.name)
        names.append(f"file: {uri}")
        links.append(
            types.ResourceLink(
                type="resource_link", name=entry.name, uri=uri, mime_type=entry.content_type, size=entry.size
            )
        )
        if entry.content_type == "image/png" and entry.size <= INLINE_IMAGE_BYTES:
            try:
                links.append(
                    types.ImageContent(
                        type="image",
                        mime_type="image/png",
                        data=base64.b64encode(entry.path.read_bytes()).decode("ascii"),
                    )
                )
            except OSError:  # gone since it was offered: the link stays, reading it says so
                pass
    if names:
        text += "\n" + "\n".join(names)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text), *links],
        structured_content=structured_data(result.data),
        is_error=not result.ok,
    )


# ---------------------------------------------------------------------------------------------------------------
# Progress: fb_utils' progress channel of one tools/call as `notifications/progress`
# ---------------------------------------------------------------------------------------------------------------

# A PNG up to this size also comes inline as image content in the tool result (bigger ones: the resource link only).
INLINE_IMAGE_BYTES = 256 * 1024


class CallProgress:
    """The progress reports of one tools/call (uploads, video processing, customer-list rows, launch steps, async report
    percent: fb_utils.report_progress) as MCP progress against the request's own token. The handler is set in the call's
    context (a ContextVar), so two calls at once never mix. MCP wants each notification's progress above the last:
    a phase (a label) that starts after the one before it finished continues from where that one ended; a label that
    reports while the current phase is unfinished (an image upload inside a launch step) moves progress within the
    current unit only (3 steps done + 0.999), keeping the phase's total; a report that would not move forward is not
    sent. Without a progress token in the request, the SDK sends nothing."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.phase: str | None = None
        self.base = 0.0
        self.done = 0
        self.total = 0
        self.last: float | None = None

    async def __call__(self, label: str, done: int, total: int) -> None:
        done, total = max(done, 0), max(total, done, 1)
        if self.phase is None or (label != self.phase and self.done >= self.total):
            self.phase, self.base = label, self.last or 0.0
        if label == self.phase:
            self.done, self.total = done, total
            progress, whole = self.base + done, self.base + total
        else:
            progress, whole = self.base + self.done + min(done / total, 0.999), self.base + self.total
        if self.last is not None and progress <= self.last:
            return
        self.last = progress
        await self.session.report_progress(progress, whole, progress_message(label, done, total))


def progress_message(label: str, done: int, total: int) -> str:
    """One short line: bytes as MB for uploads, plain counts otherwise."""
    if label.startswith("uploading") and total >= 100_000:
        return f"{label}: {done / 1e6:.1f} of {total / 1e6:.1f} MB"
    if total == 100 and ("processing" in label or "report" in label):
        return f"{label}: {done}%"
    return f"{label}: {done} of {total}"


# ---------------------------------------------------------------------------------------------------------------
# Cancellation: what a cancelled call left, said on the workspace's next call
# ---------------------------------------------------------------------------------------------------------------


async def cancelled_text(facebook: Any, tool: str, started: list[int]) -> str:
    """What a cancelled call left (the same truth as the terminal's Ctrl-C, docs/exactly-once.md): a write that had
    started stays in the audit log as pending, nothing more is sent for it, and `reconcile` settles it. `started`: the
    audit entries this call wrote (fi_facebook.collect_audits), so a call running beside it is never counted."""
    entries = (
        [e for e in await facebook.store.list_audit(facebook.workspace.id, limit=200) if e.id in started]
        if started
        else []
    )
    if not entries:
        return f"The cancelled call {tool} wrote nothing."
    from fi_facebook import cancelled_writes_text

    return f"The cancelled call {tool}: " + cancelled_writes_text(entries, for_llm=True) + "."


def error_result(error: FacebookError) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=error.to_text())],
        structured_content=structured_data(error.to_data()),
        is_error=True,
    )


def unknown_tool_error(name: str, tool_names: list[str], registry: Any = None) -> FacebookError:
    registry = _registry(registry)
    close = closest_names(name, tool_names)
    spec = registry.get(name)
    if (
        FACEBOOK_TOOL in tool_names
        and spec is not None
        and ENABLE_TOOLSET_TOOL in tool_names
        and spec.group is not None
    ):
        fix = (
            f'Call the facebook tool with op="{name}", or enable_toolset with name="{spec.group.value}" '
            "to list it as a tool"
        )
    elif FACEBOOK_TOOL in tool_names and spec is not None:
        fix = f'Call the facebook tool with op="{name}" (this server does not list it as a tool)'
    elif close:
        fix = f"Did you mean {', '.join(close)}? tools/list shows every tool"
    else:
        fix = "tools/list shows every tool" + (
            "; facebook with op=help lists every op" if FACEBOOK_TOOL in tool_names else ""
        )
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


class McpServer(Server):
    """The SDK's low-level server, declaring `tools.listChanged` however it is served: stdio passes its options, but
    the SDK's HTTP session manager answers each session's initialize with the server's default options."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True), *args, **kwargs
        )


def build_server(
    resolve: SessionResolver,
    mode: str = "both",
    registry: Any = None,
    *,
    interface: str = INTERFACE,
    toolsets: tuple[str, ...] | None = None,
    read_only: bool = False,
    selection_for: SelectionResolver | None = None,
    in_session: Callable[[Any], bool] | None = None,
) -> Server:
    """A low-level MCP Server whose tools are the registry's, each call run by the session `resolve(ctx)` gives.
    The tools listed follow the selection (`selection_for(ctx)`, else mode/toolsets/read_only) plus the toolsets
    enable_toolset added in this MCP session. `in_session(ctx)`: whether a request belongs to a session (HTTP: it
    carries Mcp-Session-Id; stdio: always); enable_toolset outside one only says which ops the toolset has."""
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

    # The selection each connection was last told about (it listed it, or heard list_changed for it).
    announced: weakref.WeakKeyDictionary[Any, ToolSelection] = weakref.WeakKeyDictionary()

    async def tell_if_changed(ctx: Any, selection: ToolSelection) -> None:
        """A session that listed its tools hears when the list changed without its asking (the workspace's setting,
        `admonster workspace mcp`, changed while it was open): list_changed on the connection's own channel, which is
        the session's GET stream over HTTP (nothing is sent when it has none open)."""
        connection = connection_of(ctx)
        before = announced.get(connection)
        announced[connection] = selection
        if before is not None and before != selection:
            try:
                await ctx.session.send_tool_list_changed()
            except Exception:  # best effort: the call itself goes on
                log.debug("mcp list_changed not sent", exc_info=True)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        selection = await selection_of(ctx)
        announced[connection_of(ctx)] = selection
        return types.ListToolsResult(tools=listing(selection)[0])

    async def enable_toolset(ctx: Any, selection: ToolSelection, arguments: dict[str, Any]) -> OpResult:
        name, added = enable_toolset_plan(selection, arguments, registry)
        kept = in_session is None or in_session(ctx)
        data = {"toolset": name, "added": added, "listed": kept}
        if not kept:
            return OpResult(
                text=f"Toolset {name}: {', '.join(added) or 'nothing new'}. This request belongs to no MCP "
                "session (no Mcp-Session-Id), so no tool list can change for it: run these through the "
                "facebook tool (op=NAME), or initialize a session (MCP clients do) and enable the "
                "toolset there.",
                data=data,
            )
        if not added:
            return OpResult(text=f"Toolset {name} adds nothing: its ops are already listed.", data=data)
        enabled_in[connection_of(ctx)] = (*enabled_in.get(connection_of(ctx), ()), name)
        announced[connection_of(ctx)] = selection.with_enabled(name)
        # On this call's own stream (over HTTP: the POST's SSE answer, before the result), so the client hears it
        # whether or not it keeps the session's GET stream open.
        await ctx.session.send_notification(types.ToolListChangedNotification(), related_request_id=ctx.request_id)
        return OpResult(
            text=f"Enabled toolset {name}: {len(added)} tools added ({', '.join(added)}). tools/list shows them now.",
            data=data,
        )

    def refuse_in_read_only(name: str) -> None:
        spec = registry.get(name)
        if name in ("confirm", "reject") or (spec is not None and spec.kind is not OpKind.READ):
            raise ValidationError(
                f"{name} changes things, and this MCP server is read-only",
                fix="Use an MCP server started without --read-only to make changes",
            )

    from fi_facebook import collect_audits, stop_collecting_audits

    shelves: dict[int, Any] = {}

    def shelf_of(facebook: Any) -> Any:  # the index in the session's database: any replica reads what another offered
        store = getattr(facebook, "store", None)
        return shelves.setdefault(id(store), _file_shelf(store))

    cancelled: dict[Any, list[str]] = {}  # per workspace: what its cancelled calls left, said on its next call

    async def run(facebook: Any, name: str, arguments: dict[str, Any]) -> Any:
        if name == FACEBOOK_TOOL:
            extra = {k: v for k, v in arguments.items() if k not in ("op", "args")}
            return await facebook.call(arguments.get("op"), arguments.get("args"), interface=interface, top_level=extra)
        return await facebook.call(name, arguments, interface=interface)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name, arguments = params.name, dict(params.arguments or {})
        try:
            selection = await selection_of(ctx)
            await tell_if_changed(ctx, selection)
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
            facebook = await resolve(ctx)
            started: list[int] = []
            token, audits = set_progress_handler(CallProgress(ctx.session)), collect_audits(started)
            try:
                result = await run(facebook, name, arguments)
            except BaseException as stop:  # notifications/cancelled: the SDK cancels this request's scope
                if isinstance(stop, anyio.get_cancelled_exc_class()):
                    with anyio.CancelScope(shield=True):
                        note = await cancelled_text(facebook, _called(name, arguments), started)
                        cancelled.setdefault(facebook.workspace.id, []).append(note)
                        log.info("mcp tool call cancelled", tool=name, left=note)
                raise
            finally:
                stop_collecting_audits(audits)
                reset_progress_handler(token)
            answer = to_call_result(result, resources=await shelve_files(shelf_of(facebook), facebook, result.files))
            return with_cancelled_notes(answer, cancelled.pop(facebook.workspace.id, []))
        except FacebookError as error:  # e.g. no workspace for this request
            return error_result(error)
        except Exception as error:  # never a protocol crash: one line, logged with its traceback
            log.exception("mcp tool call crashed", tool=name)
            return error_result(
                FacebookError(
                    f"Internal error while running {name!r}: {type(error).__name__}",
                    fix="This is a bug in Ad Monster; the log has details",
                )
            )

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        facebook = await resolve(ctx)
        files = [
            types.Resource(
                name=entry.name,
                uri=file_uri(file_id, entry.name),
                mime_type=entry.content_type,
                size=entry.size,
                description="A file an op wrote for this workspace",
            )
            for file_id, entry in await shelf_of(facebook).shelved(facebook.workspace.id, facebook.files_dir)
        ]
        return types.ListResourcesResult(resources=[*STATIC_RESOURCES, *files])

    async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[FILES_TEMPLATE])

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri == OPS_URI:
            return _text_contents(uri, "text/markdown", registry.op_table_markdown())
        if uri == FIDELITY_URI:
            from fb_sandbox.rules import fidelity_markdown

            return _text_contents(uri, "text/markdown", fidelity_markdown())
        facebook = await resolve(ctx)
        if uri == AUDIT_URI:
            result = await facebook.call("audit_log", {"limit": 100}, interface=interface)
            return _text_contents(uri, "application/json", json.dumps(structured_data(result.data), indent=1))
        entry = await find_file(shelf_of(facebook), facebook.workspace.id, uri, facebook.files_dir)
        if entry is None:  # unknown, expired, changed, or another workspace's: the same answer, so ids leak nothing
            raise MCPError(
                RESOURCE_NOT_FOUND,
                f"No resource {uri} for this workspace. Fix: resources/list shows what "
                "this workspace can read; files stay offered for 24 hours",
            )
        data = await asyncio.to_thread(entry.path.read_bytes)
        if entry.content_type.startswith("text/"):
            return _text_contents(uri, entry.content_type, data.decode("utf-8", errors="replace"))
        return types.ReadResourceResult(
            contents=[
                types.BlobResourceContents(
                    uri=uri, mime_type=entry.content_type, blob=base64.b64encode(data).decode("ascii")
                )
            ]
        )

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[prompt.listing() for prompt in PROMPTS.values()])

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = PROMPTS.get(params.name)
        if prompt is None:
            raise MCPError(
                INVALID_PARAMS, f"Unknown prompt {params.name!r}. Fix: prompts/list shows {', '.join(PROMPTS)}"
            )
        return prompt.render(dict(params.arguments or {}))

    return McpServer(
        "admonster",
        version=server_version(),
        title="Ad Monster",
        instructions=registry.facebook_tool_description(),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


# ---------------------------------------------------------------------------------------------------------------
# Resources: the files an op wrote for the workspace, the audit log, the op table, the fidelity notes
# ---------------------------------------------------------------------------------------------------------------

FILES_URI_PREFIX = "admonster://files/"
AUDIT_URI = "admonster://audit"
OPS_URI = "admonster://ops"
FIDELITY_URI = "admonster://fidelity"
RESOURCE_NOT_FOUND = -32002  # the MCP spec's resources/read error for an unknown resource
INVALID_PARAMS = -32602

STATIC_RESOURCES = [
    types.Resource(
        name="audit",
        title="Audit log",
        uri=AUDIT_URI,
        mime_type="application/json",
        description="This workspace's last 100 writes (the audit_log op's data): pending ones are unsettled",
    ),
    types.Resource(
        name="ops",
        title="Op table",
        uri=OPS_URI,
        mime_type="text/markdown",
        description="Every op with its kind and arguments (docs/ops.md, generated from the registry)",
    ),
    types.Resource(
        name="fidelity",
        title="Sandbox fidelity notes",
        uri=FIDELITY_URI,
        mime_type="text/markdown",
        description="Which Facebook rules the sandbox imitates, each with its source (docs/fidelity.md)",
    ),
]
FILES_TEMPLATE = types.ResourceTemplate(
    name="file",
    title="A file an op wrote",
    uri_template=FILES_URI_PREFIX + "{id}/{name}",
    description="Charts, CSV and PDF exports, previews an op wrote for this workspace "
    "(the id is in the tool result's resource link)",
)


def _file_shelf(store: Any = None) -> Any:
    from admonster_files import FileShelf  # the same shelf `/files/…` serves over HTTP: kinds, ids, expiry

    return FileShelf(store=store)


def file_uri(file_id: str, name: str) -> str:
    return f"{FILES_URI_PREFIX}{file_id}/{quote(name, safe='')}"


async def find_file(shelf: Any, workspace_id: Any, uri: str, folder: Any) -> Any:
    if not uri.startswith(FILES_URI_PREFIX):
        return None
    file_id, _, name = uri[len(FILES_URI_PREFIX) :].partition("/")
    return await shelf.find(workspace_id, file_id, unquote(name), folder) if file_id and name else None


async def shelve_files(shelf: Any, facebook: Any, files: list[str] | None) -> list[tuple[str, Any] | None]:
    """Each file an op wrote, offered as a resource of the workspace (None: a kind not offered, or outside its folder)."""
    return [await shelf.shelve(facebook.workspace.id, path, facebook.files_dir) for path in files or []]


def _text_contents(uri: str, mime_type: str, text: str) -> types.ReadResourceResult:
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=mime_type, text=text)])


def _called(name: str, arguments: dict[str, Any]) -> str:
    return str(arguments.get("op")) if name == FACEBOOK_TOOL and arguments.get("op") else name


def with_cancelled_notes(answer: types.CallToolResult, notes: list[str]) -> types.CallToolResult:
    """The next answer of a workspace whose call was cancelled says what that call left (a cancelled request itself
    is never answered, as MCP says)."""
    if not notes:
        return answer
    answer.content.append(types.TextContent(type="text", text="\n".join(notes)))
    if isinstance(answer.structured_content, dict):
        answer.structured_content.setdefault("cancelled_calls", notes)
    return answer


# ---------------------------------------------------------------------------------------------------------------
# Prompts: the common jobs, each naming the ops to use
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class McpPrompt:
    name: str
    title: str
    description: str
    arguments: tuple[tuple[str, str, str | None], ...]  # (name, description, default; None: required)
    template: str
    ops: tuple[str, ...]

    def listing(self) -> types.Prompt:
        return types.Prompt(
            name=self.name,
            title=self.title,
            description=self.description,
            arguments=[
                types.PromptArgument(name=n, description=d, required=default is None)
                for n, d, default in self.arguments
            ],
        )

    def render(self, arguments: dict[str, Any]) -> types.GetPromptResult:
        values = {n: str(arguments.get(n) or "").strip() or (default or "") for n, _, default in self.arguments}
        missing = [n for n, _, default in self.arguments if default is None and not values[n]]
        if missing:
            raise MCPError(
                INVALID_PARAMS,
                f"The prompt {self.name} needs {', '.join(missing)}. Fix: pass " + ", ".join(f"{n}=…" for n in missing),
            )
        text = self.template.format(**values) + "\n\nOps to use: " + ", ".join(self.ops) + "."
        return types.GetPromptResult(
            description=self.description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
        )


def _prompts() -> dict[str, McpPrompt]:
    prompts = [
        McpPrompt(
            "weekly_review",
            "Weekly review",
            "How the ad account did over the last 7 days, and what to change",
            (("ad_account_id", "The ad account (default: the selected one)", "the selected ad account"),),
            "Review my Facebook ads for the last 7 days ({ad_account_id}). Start with account_overview, then list_campaigns "
            "and get_insights (date_preset last_7d, compared with the 7 days before), and chart_insights for the "
            "spend and results. Say which campaigns did best and worst per result, and propose at most three "
            "changes; make none of them without asking me.",
            ("account_overview", "list_campaigns", "get_insights", "chart_insights"),
        ),
        McpPrompt(
            "launch_from_brief",
            "Launch a campaign from a brief",
            "Turn a short brief into a paused campaign, checked before anything is spent",
            (("brief", "What to advertise, to whom, with what budget and creative", None),),
            "Launch a campaign from this brief: {brief}\n\nCheck the brief against the account first "
            "(list_ad_accounts, list_pages), then call launch_campaign with dry_run=true and show me the plan. "
            "Launch it PAUSED only after I say yes; get_launch shows how it went, resume_launch finishes one that "
            "stopped, rollback_launch removes one.",
            ("list_ad_accounts", "list_pages", "launch_campaign", "get_launch", "resume_launch", "rollback_launch"),
        ),
        McpPrompt(
            "find_waste",
            "Find what wastes money",
            "Ads and ad sets that spend without results",
            (("date_preset", "The period (default: last_14d)", "last_14d"),),
            "Find where my ad spend is wasted over {date_preset}: get_insights at ad set and ad level, sorted by "
            "spend, and name what spent money with few or no results, or costs far more per result than the "
            "account's average. For each, say the numbers and what to do (pause_campaign / pause_adset / pause_ad / "
            "update_adset with a lower daily_budget); change nothing until I confirm.",
            ("get_insights", "list_campaigns", "pause_campaign", "pause_adset", "pause_ad", "update_adset"),
        ),
    ]
    return {prompt.name: prompt for prompt in prompts}


def initialization_options(server: Server) -> Any:
    """The server's capabilities, tools.listChanged declared: enable_toolset changes the list during a session."""
    return server.create_initialization_options(NotificationOptions(tools_changed=True))


# ---------------------------------------------------------------------------------------------------------------
# stdio: `admonster mcp`
# ---------------------------------------------------------------------------------------------------------------


async def serve_stdio(
    settings: Any,
    *,
    mode: str = "both",
    workspace: str | None = None,
    toolsets: tuple[str, ...] | None = None,
    read_only: bool = False,
) -> None:
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
SESSION_HEADER = "Mcp-Session-Id"
# A session ends after this long with no request in flight (an open GET stream counts as one): the SDK's idle timeout.
SESSION_IDLE_SECONDS = 30 * 60
MAX_SESSIONS = 1000  # live sessions on one server; one more initialize is answered 503
MAX_SESSIONS_PER_WORKSPACE = 50  # so one workspace's forgotten sessions cannot fill the server for the others: 429
WELL_KNOWN_RESOURCE = "/.well-known/oauth-protected-resource"  # RFC 9728 section 3
JSONRPC_INVALID_REQUEST = -32600


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


def error_response(
    status: int, kind: str, message: str, fix: str, headers: dict[str, str] | None = None
) -> web.Response:
    """The HTTP API's refusal (every /v1/ route; /openapi.json's `Error`): one line with a fix, and the same as data."""
    return web.json_response(
        {
            "ok": False,
            "text": f"ERROR {kind}: {message}. Fix: {fix}.",
            "data": {"error": kind, "message": message, "fix": fix},
        },
        status=status,
        headers=headers,
    )


def mcp_refusal(status: int, kind: str, message: str, fix: str, headers: dict[str, str] | None = None) -> web.Response:
    """A refusal of /mcp: the API's error shape (error_response) that is also a JSON-RPC error without an id, so an
    MCP client shows the same one line (the official client surfaces the JSON-RPC error of a 4xx/5xx answer)."""
    text = f"ERROR {kind}: {message}. Fix: {fix}."
    data = {"error": kind, "message": message, "fix": fix}
    return web.json_response(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": JSONRPC_INVALID_REQUEST, "message": text, "data": data},
            "ok": False,
            "text": text,
            "data": data,
        },
        status=status,
        headers=headers,
    )


def resource_url(settings: Any) -> str:
    """/mcp as the server names itself (ADMONSTER_PUBLIC_URL): the protected resource of RFC 9728."""
    return settings.public_url.rstrip("/") + MCP_PATH


def resource_metadata_url(settings: Any) -> str:
    """Where /mcp's protected-resource metadata is: the well-known prefix inserted before the path (RFC 9728 3.1)."""
    return settings.public_url.rstrip("/") + WELL_KNOWN_RESOURCE + MCP_PATH


def protected_resource_metadata(settings: Any) -> dict[str, Any]:
    """RFC 9728 section 2 metadata for /mcp (MCP authorization spec 2025-06-18, "Authorization Server Discovery").
    No `authorization_servers`: Ad Monster has no OAuth authorization server, its keys are issued by the operator
    (`admonster workspace create`, the console), so the document tells a client where to send the key and where to read
    how to get one, not where to obtain a token (docs/security.md, "MCP over HTTP")."""
    return {
        "resource": resource_url(settings),
        "bearer_methods_supported": ["header"],
        "resource_name": "Ad Monster MCP (workspace API key as bearer)",
        "resource_documentation": settings.public_url.rstrip("/") + "/console#login",
    }


def short_session_id(session_id: str | None) -> str:
    """A session id as logs may show it: its first 8 characters."""
    return f"{session_id[:8]}…" if session_id else "-"


class _SessionIdFilter(logging.Filter):
    """The SDK's session manager and transport log whole session ids (created, terminated, idle, refused): a record
    keeps only the first 8 characters of each (the SDK's ids are 32 hex digits, uuid4().hex)."""

    PATTERN = re.compile(r"\b([0-9a-f]{8})[0-9a-f]{24}\b")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.PATTERN.sub(r"\1…", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


SDK_SESSION_LOGGERS = ("mcp.server.streamable_http_manager", "mcp.server.streamable_http")


def _mask_sdk_session_ids() -> None:
    for name in SDK_SESSION_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _SessionIdFilter) for f in logger.filters):
            logger.addFilter(_SessionIdFilter())


def _client_id(workspace: Any) -> str:
    return f"workspace:{workspace.id}"


def _principal(workspace: Any) -> Any:
    """The request's user as the SDK's session manager reads it (`scope["user"]`): it binds each session to the
    principal that opened it and answers 404 to any other, a second lock behind ours."""
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    return AuthenticatedUser(
        AccessToken(token="", client_id=_client_id(workspace), scopes=[], subject=str(workspace.id))
    )


DEFAULT_PORTS = {"http": 80, "https": 443}


def web_origin(url: str) -> str:
    """A URL's origin as browsers write the Origin header: scheme://host[:port], lower case, no default port."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:  # a port that is not a number: matches no origin
        return url
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS.get(scheme) else "")


def is_initialize(message: Any) -> bool:
    return isinstance(message, dict) and message.get("method") == "initialize" and "id" in message


class McpHttp:
    """`/mcp`: MCP streamable HTTP (the transport of MCP 2025-06-18 / 2025-11-25) behind workspace API keys, bridged
    from aiohttp to the SDK's ASGI session managers.

    - Every request (initialize, POST, GET, DELETE) carries `Authorization: Bearer <workspace API key>`; a 401 names
      the protected-resource metadata (`WWW-Authenticate: Bearer resource_metadata=…`).
    - initialize opens a session (the SDK's StreamableHTTPSessionManager, stateful, answers as SSE so progress and
      list_changed arrive before a result); its answer carries `Mcp-Session-Id`, which every later request of the
      session sends. GET opens the session's standalone SSE stream (list_changed when the workspace's MCP setting
      changes under an open session), DELETE ends the session.
    - A session belongs to the workspace whose key opened it: an unknown, expired, ended or another workspace's
      session id is answered 404 alike (the client then initializes again, as the spec says).
    - Sessions end after SESSION_IDLE_SECONDS without a request in flight; at most MAX_SESSIONS live, and
      MAX_SESSIONS_PER_WORKSPACE per workspace. Stopping the server ends them all (and their SSE streams).
    - An Origin header (a web page) must be the server's own (ADMONSTER_PUBLIC_URL's): the spec's DNS-rebinding rule.
    - A POST without Mcp-Session-Id that is not initialize is answered without a session (stateless, one JSON
      answer): one-shot callers (curl, scripts) keep working; it gets no progress and enable_toolset cannot list.
    """

    def __init__(self, runtime: Any, mode: str = "both") -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        self.runtime = runtime
        self.mode = mode
        self.server = build_server(
            self._resolve, mode, interface=HTTP_INTERFACE, selection_for=self._selection, in_session=self._in_session
        )
        self.sessions = StreamableHTTPSessionManager(
            app=self.server,
            json_response=False,
            session_idle_timeout=SESSION_IDLE_SECONDS,
            max_sessions=MAX_SESSIONS,
            max_request_body_size=MAX_BODY_BYTES,
        )
        self.sessionless = StreamableHTTPSessionManager(
            app=self.server, stateless=True, json_response=True, max_request_body_size=MAX_BODY_BYTES
        )
        self.origin = web_origin(runtime.settings.public_url)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        _mask_sdk_session_ids()

    @staticmethod
    def _workspace(ctx: Any) -> Any:
        request = getattr(ctx, "request", None)
        workspace = request.scope.get(WORKSPACE_SCOPE_KEY) if request is not None else None
        if workspace is None:  # cannot happen behind handle(): refuse rather than guess a workspace
            raise ValidationError(
                "This MCP request has no workspace", fix="Send Authorization: Bearer <workspace API key>"
            )
        return workspace

    @staticmethod
    def _in_session(ctx: Any) -> bool:
        """Whether this request belongs to an MCP session (so enable_toolset can change what tools/list shows)."""
        request = getattr(ctx, "request", None)
        return request is not None and request.headers.get(SESSION_HEADER) is not None

    async def _resolve(self, ctx: Any) -> Any:
        return await self.runtime.facebook_for(self._workspace(ctx))

    async def _selection(self, ctx: Any) -> ToolSelection:
        """The workspace's MCP setting (admonster workspace mcp NAME --toolsets … --read-only), else the default."""
        return selection_from_setting(
            await self.runtime.store.get_setting(self._workspace(ctx).id, MCP_SETTING, None), self.mode
        )

    # -- sessions ----------------------------------------------------------------------------------------------

    def _owners(self) -> dict[str, Any]:
        # Who opened each live session, as the SDK records it (mcp 2.3 has no public accessor); it forgets a session
        # as soon as it ends (DELETE, idle timeout, shutdown), so this is also the count of live sessions.
        return self.sessions._session_owners

    def owner_of(self, session_id: str) -> str | None:
        owner = self._owners().get(session_id)
        return owner.get("client_id") if owner else None

    def open_sessions(self, workspace: Any | None = None) -> int:
        owners = list(self._owners().values())
        if workspace is None:
            return len(owners)
        return sum(1 for owner in owners if owner.get("client_id") == _client_id(workspace))

    def _admission(self, workspace: Any) -> web.Response | None:
        idle = f"an idle session ends after {SESSION_IDLE_SECONDS / 60:g} minutes"
        if self.open_sessions() >= MAX_SESSIONS:
            return mcp_refusal(
                503,
                "system",
                f"This server has {MAX_SESSIONS} MCP sessions open, its limit",
                f"Try again later: {idle}",
                headers={"Retry-After": "60"},
            )
        if self.open_sessions(workspace) >= MAX_SESSIONS_PER_WORKSPACE:
            return mcp_refusal(
                429,
                "rate_limit",
                f"This workspace has {MAX_SESSIONS_PER_WORKSPACE} MCP sessions open, its limit",
                f"End the sessions you no longer use (an MCP client sends DELETE /mcp when it closes), or wait: {idle}",
                headers={"Retry-After": "60"},
            )
        return None

    # -- lifecycle (aiohttp signals) ----------------------------------------------------------------------------

    async def start(self, app: web.Application | None = None) -> None:
        if self._task is not None:
            return
        started = asyncio.Event()

        async def run() -> None:  # one task owns the managers' task groups from start to stop
            async with self.sessions.run(), self.sessionless.run():
                started.set()
                await self._stop.wait()

        self._task = asyncio.get_running_loop().create_task(run())
        waiter = asyncio.ensure_future(started.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiter.cancel()
            self._task.result()  # raises what stopped the manager

    async def stop(self, app: web.Application | None = None) -> None:
        """End every session (their SSE streams end with them) and the managers; called on shutdown, before aiohttp
        waits for open requests."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    # -- requests -----------------------------------------------------------------------------------------------

    def _auth_error(self, message: str, fix: str, *, invalid: bool) -> web.Response:
        challenge = f'Bearer realm="admonster", resource_metadata="{resource_metadata_url(self.runtime.settings)}"'
        if invalid:  # RFC 6750 3.1: an error code only when a credential was presented
            challenge += ', error="invalid_token"'
        return mcp_refusal(401, "auth", message, fix, headers={"WWW-Authenticate": challenge})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and web_origin(origin) != self.origin:  # MCP transport spec: a bad Origin gets 403
            return mcp_refusal(
                403,
                "permission",
                "Requests from this web origin may not use /mcp",
                f"Call /mcp from a program (no Origin header) or from a page of {self.origin} (ADMONSTER_PUBLIC_URL)",
            )
        header = request.headers.get("Authorization", "")
        key, problem = bearer_key(header)
        if key is None:
            return self._auth_error(
                problem,
                "Send Authorization: Bearer <key> (admonster workspace create NAME prints one)",
                invalid=bool(header.strip().partition(" ")[2].strip()),
            )
        workspace = await self.runtime.store.workspace_for_api_key(key)
        if workspace is None:
            return self._auth_error(
                "Unknown API key",
                "Check the key, or create a workspace key with admonster workspace create NAME",
                invalid=True,
            )
        if self._task is None:
            return mcp_refusal(503, "system", "The MCP endpoint is not running", "restart admonster serve")
        session_id = request.headers.get(SESSION_HEADER)
        if session_id is not None and self.owner_of(session_id) != _client_id(workspace):
            # unknown, expired, ended or another workspace's: one answer, so a session id tells nothing
            return mcp_refusal(
                404,
                "not_found",
                "No MCP session with this Mcp-Session-Id for this API key",
                "Start a new session: send initialize without Mcp-Session-Id (MCP clients do this when they reconnect)",
            )
        body, message = b"", None
        if request.method == "POST":
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return mcp_refusal(413, "validation", "The request body is too large", "send less")
            try:  # bounded before the SDK parses it: too deep or not JSON is one line, never a RecursionError
                message = load_json_bounded(body, what="The JSON-RPC body", max_bytes=MAX_BODY_BYTES)
            except ValidationError as error:  # a JSON-RPC parse error, as the SDK answers bad JSON, with our one line
                return web.json_response(
                    {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": error.to_text()}},
                    status=error.http_status or 400,
                )
        elif session_id is None:
            return mcp_refusal(
                400,
                "validation",
                f"{request.method} /mcp needs the Mcp-Session-Id of an open session",
                "POST an initialize request first and send the Mcp-Session-Id header its answer carries",
            )
        if session_id is not None:
            response = await self._bridge(request, body, workspace, self.sessions)
            if request.method == "DELETE":
                log.info(
                    "mcp session ended by the client", workspace=workspace.name, session=short_session_id(session_id)
                )
            return response
        if is_initialize(message):
            refused = self._admission(workspace)
            if refused is not None:
                return refused
            response = await self._bridge(request, body, workspace, self.sessions)
            log.info(
                "mcp session opened",
                workspace=workspace.name,
                session=short_session_id(response.headers.get(SESSION_HEADER)),
            )
            return response
        return await self._bridge(request, body, workspace, self.sessionless)

    async def _bridge(self, request: web.Request, body: bytes, workspace: Any, manager: Any) -> web.StreamResponse:
        """Run one request through an ASGI session manager, streaming its answer back through aiohttp."""
        host, port = (
            (request.transport.get_extra_info("sockname") or ("127.0.0.1", 0))[:2]
            if request.transport
            else ("127.0.0.1", 0)
        )
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.scheme,
            "path": request.path,
            "raw_path": request.raw_path.split("?", 1)[0].encode(),
            "query_string": request.query_string.encode(),
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.raw_headers],
            "client": (request.remote or "", 0),
            "server": (host, port),
            "state": {},
            "user": _principal(workspace),
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
            await manager.handle_request(scope, receive, send)
        finally:
            answered.set()
        if response is None:
            return mcp_refusal(500, "system", "The MCP endpoint gave no answer", "try again")
        return response

    async def metadata(self, request: web.Request) -> web.Response:
        """RFC 9728 protected-resource metadata of /mcp: public, as the RFC means it to be."""
        return web.json_response(
            protected_resource_metadata(self.runtime.settings),
            headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=3600"},
        )


def mount_mcp(app: web.Application, runtime: Any, *, mode: str = "both", path: str = MCP_PATH) -> McpHttp:
    """Serve MCP (streamable HTTP) at `path` on an aiohttp app, and its protected-resource metadata (RFC 9728) at the
    well-known URLs; the session managers start and stop with the app."""
    endpoint = McpHttp(runtime, mode)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, path, endpoint.handle)
    app.router.add_get(WELL_KNOWN_RESOURCE, endpoint.metadata)
    app.router.add_get(WELL_KNOWN_RESOURCE + path, endpoint.metadata)
    app.on_startup.append(endpoint.start)
    app.on_shutdown.append(endpoint.stop)  # before aiohttp waits for open connections (SSE streams end first)
    app.on_cleanup.append(endpoint.stop)
    return endpoint


PROMPTS = _prompts()

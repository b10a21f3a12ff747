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
import base64
import json
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote

import anyio
import mcp_types as types
from aiohttp import web
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.shared.exceptions import MCPError

import admonster_tools
from admonster_tools import (ENABLE_TOOLSET_TOOL, FACEBOOK_TOOL, FIND_OPS_TOOL, LIST_TOOLSETS_TOOL, MCP_SETTING,
                             ToolSelection, enable_toolset_plan, find_ops_result,
                             list_toolsets_result, parse_toolsets, selection_from_setting, tool_list)
from fb_utils import (FacebookError, OpKind, OpResult, ValidationError, closest_names, get_logger, load_json_bounded,
                      reset_progress_handler, set_progress_handler)

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
        links.append(types.ResourceLink(type="resource_link", name=entry.name, uri=uri, mime_type=entry.content_type,
                                        size=entry.size))
        if entry.content_type == "image/png" and entry.size <= INLINE_IMAGE_BYTES:
            try:
                links.append(types.ImageContent(type="image", mime_type="image/png",
                                                data=base64.b64encode(entry.path.read_bytes()).decode("ascii")))
            except OSError:  # gone since it was offered: the link stays, reading it says so
                pass
    if names:
        text += "\n" + "\n".join(names)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text), *links],
                                structured_content=structured(result.data), is_error=not result.ok)


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
    entries = [e for e in await facebook.store.list_audit(facebook.workspace.id, limit=200) if e.id in started] if started else []
    if not entries:
        return f"The cancelled call {tool} wrote nothing."
    from fi_facebook import cancelled_writes_text

    return f"The cancelled call {tool}: " + cancelled_writes_text(entries, for_llm=True) + "."


def error_result(error: FacebookError) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=error.to_text())],
                                structured_content=structured(error.to_data()), is_error=True)


def unknown_tool_error(name: str, tool_names: list[str], registry: Any = None) -> FacebookError:
    registry = _registry(registry)
    close = closest_names(name, tool_names)
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

    from fi_facebook import collect_audits, stop_collecting_audits

    shelf = _file_shelf()
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
            answer = to_call_result(result, resources=shelve_files(shelf, facebook, result.files))
            return with_cancelled_notes(answer, cancelled.pop(facebook.workspace.id, []))
        except FacebookError as error:  # e.g. no workspace for this request
            return error_result(error)
        except Exception as error:  # never a protocol crash: one line, logged with its traceback
            log.exception("mcp tool call crashed", tool=name)
            return error_result(FacebookError(f"Internal error while running {name!r}: {type(error).__name__}",
                                              fix="This is a bug in Ad Monster; the log has details"))

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        facebook = await resolve(ctx)
        files = [types.Resource(name=entry.name, uri=file_uri(file_id, entry.name), mime_type=entry.content_type,
                                size=entry.size, description="A file an op wrote for this workspace")
                 for file_id, entry in shelf.shelved(facebook.workspace.id)]
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
            return _text_contents(uri, "application/json", json.dumps(structured(result.data), indent=1))
        entry = find_file(shelf, facebook.workspace.id, uri)
        if entry is None:  # unknown, expired, changed, or another workspace's: the same answer, so ids leak nothing
            raise MCPError(RESOURCE_NOT_FOUND, f"No resource {uri} for this workspace. Fix: resources/list shows what "
                                               "this workspace can read; files stay offered for 24 hours")
        data = await asyncio.to_thread(entry.path.read_bytes)
        if entry.content_type.startswith("text/"):
            return _text_contents(uri, entry.content_type, data.decode("utf-8", errors="replace"))
        return types.ReadResourceResult(contents=[types.BlobResourceContents(
            uri=uri, mime_type=entry.content_type, blob=base64.b64encode(data).decode("ascii"))])

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[prompt.listing() for prompt in PROMPTS.values()])

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = PROMPTS.get(params.name)
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt {params.name!r}. Fix: prompts/list shows "
                                           f"{', '.join(PROMPTS)}")
        return prompt.render(dict(params.arguments or {}))

    return Server("admonster", version=server_version(), title="Ad Monster",
                  instructions=registry.facebook_tool_description(),
                  on_list_tools=list_tools, on_call_tool=call_tool,
                  on_list_resources=list_resources, on_list_resource_templates=list_templates,
                  on_read_resource=read_resource, on_list_prompts=list_prompts, on_get_prompt=get_prompt)


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
    types.Resource(name="audit", title="Audit log", uri=AUDIT_URI, mime_type="application/json",
                   description="This workspace's last 100 writes (the audit_log op's data): pending ones are unsettled"),
    types.Resource(name="ops", title="Op table", uri=OPS_URI, mime_type="text/markdown",
                   description="Every op with its kind and arguments (docs/ops.md, generated from the registry)"),
    types.Resource(name="fidelity", title="Sandbox fidelity notes", uri=FIDELITY_URI, mime_type="text/markdown",
                   description="Which Facebook rules the sandbox imitates, each with its source (docs/fidelity.md)"),
]
FILES_TEMPLATE = types.ResourceTemplate(name="file", title="A file an op wrote", uri_template=FILES_URI_PREFIX + "{id}/{name}",
                                        description="Charts, CSV and PDF exports, previews an op wrote for this workspace "
                                                    "(the id is in the tool result's resource link)")


def _file_shelf() -> Any:
    from admonster_files import FileShelf  # the same shelf `/files/…` serves over HTTP: kinds, ids, expiry

    return FileShelf()


def file_uri(file_id: str, name: str) -> str:
    return f"{FILES_URI_PREFIX}{file_id}/{quote(name, safe='')}"


def find_file(shelf: Any, workspace_id: Any, uri: str) -> Any:
    if not uri.startswith(FILES_URI_PREFIX):
        return None
    file_id, _, name = uri[len(FILES_URI_PREFIX):].partition("/")
    return shelf.find(workspace_id, file_id, unquote(name)) if file_id and name else None


def shelve_files(shelf: Any, facebook: Any, files: list[str] | None) -> list[tuple[str, Any] | None]:
    """Each file an op wrote, offered as a resource of the workspace (None: a kind not offered, or outside its folder)."""
    return [shelf.shelve(facebook.workspace.id, path, facebook.files_dir) for path in files or []]


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
        return types.Prompt(name=self.name, title=self.title, description=self.description,
                            arguments=[types.PromptArgument(name=n, description=d, required=default is None)
                                       for n, d, default in self.arguments])

    def render(self, arguments: dict[str, Any]) -> types.GetPromptResult:
        values = {n: str(arguments.get(n) or "").strip() or (default or "") for n, _, default in self.arguments}
        missing = [n for n, _, default in self.arguments if default is None and not values[n]]
        if missing:
            raise MCPError(INVALID_PARAMS, f"The prompt {self.name} needs {', '.join(missing)}. Fix: pass "
                                           + ", ".join(f"{n}=…" for n in missing))
        text = self.template.format(**values) + "\n\nOps to use: " + ", ".join(self.ops) + "."
        return types.GetPromptResult(description=self.description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])


def _prompts() -> dict[str, McpPrompt]:
    prompts = [
        McpPrompt("weekly_review", "Weekly review", "How the ad account did over the last 7 days, and what to change",
                  (("ad_account_id", "The ad account (default: the selected one)", "the selected ad account"),),
                  "Review my Facebook ads for the last 7 days ({ad_account_id}). Start with account_overview, then list_campaigns "
                  "and get_insights (date_preset last_7d, compared with the 7 days before), and chart_insights for the "
                  "spend and results. Say which campaigns did best and worst per result, and propose at most three "
                  "changes; make none of them without asking me.",
                  ("account_overview", "list_campaigns", "get_insights", "chart_insights")),
        McpPrompt("launch_from_brief", "Launch a campaign from a brief", "Turn a short brief into a paused campaign, "
                  "checked before anything is spent",
                  (("brief", "What to advertise, to whom, with what budget and creative", None),),
                  "Launch a campaign from this brief: {brief}\n\nCheck the brief against the account first "
                  "(list_ad_accounts, list_pages), then call launch_campaign with dry_run=true and show me the plan. "
                  "Launch it PAUSED only after I say yes; get_launch shows how it went, resume_launch finishes one that "
                  "stopped, rollback_launch removes one.",
                  ("list_ad_accounts", "list_pages", "launch_campaign", "get_launch", "resume_launch", "rollback_launch")),
        McpPrompt("find_waste", "Find what wastes money", "Ads and ad sets that spend without results",
                  (("date_preset", "The period (default: last_14d)", "last_14d"),),
                  "Find where my ad spend is wasted over {date_preset}: get_insights at ad set and ad level, sorted by "
                  "spend, and name what spent money with few or no results, or costs far more per result than the "
                  "account's average. For each, say the numbers and what to do (pause_campaign / pause_adset / pause_ad / "
                  "update_adset with a lower daily_budget); change nothing until I confirm.",
                  ("get_insights", "list_campaigns", "pause_campaign", "pause_adset", "pause_ad", "update_adset")),
    ]
    return {prompt.name: prompt for prompt in prompts}


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
        # A tools/call asking for progress (`_meta.progressToken`) is answered as an SSE stream instead, so its
        # notifications/progress reach the caller before the result (stateless: one stream per POST).
        self.streaming = StreamableHTTPSessionManager(app=self.server, stateless=True, json_response=False,
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
            async with self.manager.run(), self.streaming.run():
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
            message = load_json_bounded(body, what="The JSON-RPC body", max_bytes=MAX_BODY_BYTES)
        except ValidationError as error:  # a JSON-RPC parse error, as the SDK answers bad JSON, with our one line
            return web.json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": error.to_text()}},
                                     status=error.http_status or 400)
        return await self._bridge(request, body, workspace, streaming=wants_progress(message))

    async def _bridge(self, request: web.Request, body: bytes, workspace: Any, *, streaming: bool = False) -> web.StreamResponse:
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
            await (self.streaming if streaming else self.manager).handle_request(scope, receive, send)
        finally:
            answered.set()
        if response is None:
            return error_response(500, "system", "The MCP endpoint gave no answer", "try again")
        return response


def wants_progress(message: Any) -> bool:
    """Whether a JSON-RPC body is a request carrying a progress token (then answered as SSE, which can carry progress)."""
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and meta.get("progressToken") is not None and "id" in message


def mount_mcp(app: web.Application, runtime: Any, *, mode: str = "both", path: str = MCP_PATH) -> McpHttp:
    """Serve MCP (streamable HTTP) at `path` on an aiohttp app; the session manager starts and stops with the app."""
    endpoint = McpHttp(runtime, mode)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, path, endpoint.handle)
    app.on_startup.append(endpoint.start)
    app.on_shutdown.append(endpoint.stop)  # before aiohttp waits for open connections
    app.on_cleanup.append(endpoint.stop)
    return endpoint


PROMPTS = _prompts()

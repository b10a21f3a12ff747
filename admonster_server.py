"""`admonster serve`: the HTTP API (direct tool calls), its OpenAPI description, the OAuth callback, health, and the
scheduler; plus the loopback callback listener that `admonster connect` and the terminal chat use."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

import admonster_mcp
import admonster_web
from admonster_chat import thread_id_problem
from admonster_files import FILES_PREFIX, FileShelf, _url_name
from admonster_openapi import OPENAPI_PATH

if TYPE_CHECKING:
    from admonster_runtime import Runtime
    from admonster_store import Workspace

CALLBACK_PATH = "/oauth/facebook/callback"
# Typed for mypy only: the runtime module loads the store and the ops, which this module must not import at start.
RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("runtime", object)  # type: ignore[arg-type]
WORKSPACE_KEY: web.RequestKey[Workspace] = web.RequestKey("workspace", object)  # type: ignore[arg-type]
MAX_BODY_BYTES = 1 << 20


# ---------------------------------------------------------------------------------------------------------------
# The OAuth callback page
# ---------------------------------------------------------------------------------------------------------------


def _page(title: str, lines: list[str], status: int = 200) -> web.Response:
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    document = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;line-height:1.5}"
        "h1{font-size:1.4em}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}<p>You can close this tab.</p></body></html>"
    )
    return web.Response(text=document, content_type="text/html", status=status)


SIGNIN_COOKIE = "admonster_signin_"  # + the workspace id: one pending sign-in per workspace and browser


def signin_cookie_name(workspace_id: int) -> str:
    return f"{SIGNIN_COOKIE}{workspace_id}"


@dataclass(frozen=True)
class SigninOutcome:
    """What a sign-in callback did: the page's title and lines (the terminal chat prints them too) and its status."""

    ok: bool
    title: str
    lines: list[str]
    status: int = 200

    def page(self) -> web.Response:
        return _page(self.title, self.lines, status=self.status)


async def complete_oauth(
    runtime: Any, request: web.Request, redirect_uri: str, binding_secret: str | None = None
) -> tuple[bool, web.Response]:
    """Finish a sign-in from Facebook's redirect; answers a small page saying what happened."""
    outcome = await oauth_outcome(runtime, request, redirect_uri, binding_secret)
    return outcome.ok, outcome.page()


async def oauth_outcome(
    runtime: Any, request: web.Request, redirect_uri: str, binding_secret: str | None = None
) -> SigninOutcome:
    """Finish a sign-in from Facebook's redirect and say what happened.

    `binding_secret`: what this callback knows of who asked for the link: the terminal listener's own secret, or
    (None) the browser's sign-in cookie for the workspace the state names."""
    from fb_utils import FacebookError
    from fi_facebook import SigninElsewhere, SwitchNeeded

    query = request.query
    if binding_secret is None:
        workspace_id = await runtime.connector.state_workspace(query.get("state"))
        if workspace_id is not None:
            binding_secret = request.cookies.get(signin_cookie_name(workspace_id))
    try:
        workspace_id, health = await runtime.connector.complete(
            state=query.get("state"),
            code=query.get("code"),
            error=query.get("error"),
            error_description=query.get("error_description"),
            redirect_uri=redirect_uri,
            binding_secret=binding_secret,
        )
    except SigninElsewhere as error:
        return SigninOutcome(
            False,
            "Sign-in refused",
            [error.message + "; start again from your own console.", f"Fix: {error.fix}."],
            status=403,
        )
    except SwitchNeeded as error:
        return SigninOutcome(
            False,
            "Connect this workspace to another Facebook user?",
            [error.message + ".", f"Fix: {error.fix}."],
            status=409,
        )
    except FacebookError as error:
        return SigninOutcome(
            False, "Facebook was not connected", [error.message + ".", f"Fix: {error.fix}."], status=400
        )
    workspace = await runtime.store.get_workspace(workspace_id)
    lines = [
        f"Workspace “{workspace.name if workspace else workspace_id}” is connected as "
        f"{health.user_name or health.user_id}.",
        f"Permissions granted: {', '.join(health.scopes) or 'none'}.",
    ]
    if health.missing_scopes:
        lines.append(
            f"Missing permissions: {', '.join(health.missing_scopes)}. Some ops will not work until you "
            "connect again and allow them."
        )
    if health.expires_at:
        lines.append(
            f"The connection lasts until {health.expires_at:%Y-%m-%d} (Ad Monster warns you 7 days and 1 day before)."
        )
    return SigninOutcome(True, "Facebook connected", lines)


class CallbackListener:
    """The OAuth callback on loopback for the terminal.

    One-shot (`admonster connect`): stops after a successful sign-in or after `timeout` seconds. Otherwise (the chat):
    open as long as a link it made is valid (each new link keeps it open for that link's lifetime, fi_facebook's
    STATE_TTL_SECONDS), then closed; the next link starts it again. `on_outcome(outcome)` hears every callback, so the
    chat can say "Facebook connected" while its prompt waits."""

    def __init__(
        self,
        runtime: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 300.0,
        one_shot: bool = True,
        on_outcome: Callable[[SigninOutcome], Any] | None = None,
        link_seconds: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.host, self.port, self.timeout = host, port, timeout
        self.one_shot = one_shot
        self.on_outcome = on_outcome
        self.link_seconds = link_seconds  # how long a link keeps it open (default: the link's lifetime, and a margin)
        self.done = asyncio.Event()
        self.succeeded = False
        self._requested_port = port
        self._deadline = 0.0
        self._runner: web.AppRunner | None = None
        self._stopper: asyncio.Task | None = None
        self._secret = secrets.token_urlsafe(32)  # binds the links this terminal makes to this listener only

    @property
    def redirect_uri(self) -> str:
        return f"http://{self.host}:{self.port}{CALLBACK_PATH}"

    @property
    def listening(self) -> bool:
        return self._runner is not None

    async def url(self) -> str:
        """Start listening if not yet; the redirect URI to give Facebook. Binds the link being made (in the caller's
        context) to this listener: only this process's loopback callback can complete it."""
        from fi_facebook import STATE_TTL_SECONDS, bind_signin

        bind_signin(self._secret)
        loop = asyncio.get_running_loop()
        if self._runner is None:
            self.done = asyncio.Event()
            app = web.Application()
            app.router.add_get(CALLBACK_PATH, self._callback)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
            self._runner = runner
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._deadline = loop.time() + self.timeout if self.one_shot else 0.0
            self._stopper = loop.create_task(self._stop_later())
        if not self.one_shot:  # the link being made is valid STATE_TTL_SECONDS; a little more for a slow browser
            keep = self.link_seconds if self.link_seconds is not None else STATE_TTL_SECONDS + 30
            self._deadline = max(self._deadline, loop.time() + keep)
        return self.redirect_uri

    async def _callback(self, request: web.Request) -> web.Response:
        outcome = await oauth_outcome(self.runtime, request, self.redirect_uri, binding_secret=self._secret)
        if outcome.ok:
            self.succeeded = True
            if self.one_shot:
                self.done.set()
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:  # the page must reach the browser whatever the terminal does with the news
                from fb_utils import get_logger

                get_logger(__name__).exception("the sign-in news could not be shown")
        return outcome.page()

    async def _stop_later(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.done.is_set() and (remaining := self._deadline - loop.time()) > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.done.wait(), remaining)  # the chat's deadline may have moved meanwhile
        await asyncio.sleep(0.2)  # let the success page reach the browser
        await self._close()

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.port = self._requested_port
        self.done.set()

    async def stop(self) -> None:
        stopper, self._stopper = self._stopper, None
        if stopper is not None and stopper is not asyncio.current_task():
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
        await self._close()


# ---------------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------------


def _error(status: int, kind: str, message: str, fix: str) -> web.Response:
    return admonster_mcp.error_response(status, kind, message, fix)


DATABASE_RETRY_AFTER = 30  # seconds a client is told to wait when the database cannot be reached


def _database_down() -> web.Response:
    return admonster_mcp.error_response(
        503,
        "unavailable",
        "The database cannot be reached",
        f"Try again in {DATABASE_RETRY_AFTER} seconds; before sending a change again, check the audit log for it (a change "
        "is never repeated by the server); the operator should check ADMONSTER_DATABASE_URL and the database server",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


@web.middleware
async def database_outage(request: web.Request, handler: Any) -> web.StreamResponse:
    """A request that meets an unreachable database is answered 503 with one line and Retry-After, never a 500 and a
    traceback. It does not say a change was not made: the audit log settles that, as for any outcome unknown."""
    try:
        return await handler(request)
    except Exception as error:
        from admonster_store import database_unreachable
        from fb_utils import get_logger, redact

        if not database_unreachable(error):
            raise
        get_logger("admonster_server").warning(
            "database unreachable", path=request.path, reason=redact(str(error))[:200]
        )
        return _database_down()


@web.middleware
async def api_key_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every /v1/ request carries a workspace API key as `Authorization: Bearer amk_…`."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    key, problem = admonster_mcp.bearer_key(request.headers.get("Authorization", ""))
    if key is None:
        return _error(
            401, "auth", problem, "Send Authorization: Bearer <key> (admonster workspace create NAME prints one)"
        )
    runtime = request.app[RUNTIME_KEY]
    workspace = await runtime.store.workspace_for_api_key(key)
    if workspace is None:
        return _error(
            401,
            "auth",
            "Unknown API key",
            "Check the key, or create a workspace key with admonster workspace create NAME",
        )
    request[WORKSPACE_KEY] = workspace
    return await handler(request)


# ---------------------------------------------------------------------------------------------------------------
# Files that ops write (charts, previews, CSV and PDF exports), offered over HTTP to the workspace that made them
# ---------------------------------------------------------------------------------------------------------------

FILES_KEY = web.AppKey("files", FileShelf)


def _files_dir(request: web.Request) -> Path:
    from fb_utils import workspace_files_dir

    return workspace_files_dir(request.app[RUNTIME_KEY].settings.home, request[WORKSPACE_KEY].id)


async def _with_file_urls(request: web.Request, files: list[str] | None) -> list[str | None]:
    return await request.app[FILES_KEY].urls(request[WORKSPACE_KEY].id, files, _files_dir(request))


UPLOAD_MAX_BYTES = 512 << 20  # images are at most 30 MB on Facebook; a video for ads fits comfortably
UPLOAD_CHUNK = 1 << 16


async def upload_file(request: web.Request) -> web.Response:
    """POST /v1/files?name=<file name>: the raw body is stored (streamed, at most UPLOAD_MAX_BYTES) in the workspace's
    own uploads folder; the answer's `file` is the name to pass as an op's `source`/`path`/`image`/`video`/`plan_file`.
    Only this workspace can use it."""

    from fb_utils import UPLOADS_DIR

    fix = "Send the file as the body of POST /v1/files?name=photo.jpg (at most 512 MB)"
    name = (request.query.get("name") or "").strip()
    if not name or len(name) > 150 or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        return _error(400, "validation", "name must be a plain file name of at most 150 characters", fix)
    if request.content_length is not None and request.content_length > UPLOAD_MAX_BYTES:
        return _error(
            413, "validation", "The file is larger than 512 MB", "Upload a smaller file, or pass an http(s) URL"
        )
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "file"
    folder = _files_dir(request) / UPLOADS_DIR
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    stored = f"{secrets.token_hex(12)}-{safe}"
    target = folder / stored
    partial = folder / f".{stored}.part"
    size = 0
    try:
        with open(partial, "xb") as handle:
            async for chunk in request.content.iter_chunked(UPLOAD_CHUNK):
                size += len(chunk)
                if size > UPLOAD_MAX_BYTES:
                    raise ValueError("too large")
                await asyncio.to_thread(handle.write, chunk)
        if size == 0:
            raise EOFError("empty")
        partial.rename(target)
    except ValueError:
        partial.unlink(missing_ok=True)
        return _error(
            413, "validation", "The file is larger than 512 MB", "Upload a smaller file, or pass an http(s) URL"
        )
    except EOFError:
        partial.unlink(missing_ok=True)
        return _error(400, "validation", "The body is empty", fix)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return web.json_response(
        {
            "ok": True,
            "text": f'Uploaded {name} ({size} bytes): pass "{stored}" as the op\'s source.',
            "file": stored,
            "size": size,
        }
    )


async def serve_file(request: web.Request) -> web.StreamResponse:
    """GET /v1/files/{id}/{name}: a file an op wrote for this workspace (404 for anything else)."""
    entry = await request.app[FILES_KEY].find(
        request[WORKSPACE_KEY].id, request.match_info["file_id"], request.match_info["name"], _files_dir(request)
    )
    if entry is None:
        return _error(
            404,
            "not_found",
            "No such file for this workspace (links last 24 hours)",
            "Run the op again for a fresh link",
        )
    quoted = _url_name(entry.name)
    headers = {
        "Content-Type": entry.content_type,
        "Content-Disposition": f"{entry.disposition}; filename=\"{quoted}\"; filename*=UTF-8''{quoted}",
        "X-Content-Type-Options": "nosniff",
        # Nothing in a file runs as this origin (Chromium shows no PDF in a sandboxed document, so PDF is spared).
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
        + ("" if entry.content_type == "application/pdf" else "; sandbox"),
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
    }
    try:
        body = await asyncio.to_thread(entry.path.read_bytes)
    except OSError:
        return _error(404, "not_found", "The file is gone from disk", "Run the op again")
    if len(body) != entry.size:
        return _error(404, "not_found", "The file changed since it was offered", "Run the op again")
    return web.Response(body=body, headers=headers)


async def health(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    body = {"ok": True, "mode": runtime.mode, "time": int(time.time()), "api_version": runtime.settings.api_version}
    warning = await runtime.version_warning()
    if warning:  # the configured Graph API version ends within 90 days
        body["api_version_warning"] = warning
    return web.json_response(body)


async def ready(request: web.Request) -> web.Response:
    """GET /readyz: 200 when this replica reaches its database (one ``SELECT 1``), 503 with one line when it does not;
    a load balancer's readiness check. /healthz stays the liveness check and never touches the database."""
    from admonster_store import database_unreachable

    try:
        await request.app[RUNTIME_KEY].store.ping()
    except Exception as error:
        if not database_unreachable(error):
            raise
        return _database_down()
    return web.json_response({"ok": True, "database": "reachable"})


async def _json_body(request: web.Request, example: str) -> Any:
    """The request's JSON, bounded in size and depth before parsing (fb_utils.load_json_bounded); a bad body is an
    error response (400/413 with one line), returned instead of the value."""
    from fb_utils import ValidationError, load_json_bounded

    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "validation", f"The body is over the {MAX_BODY_BYTES:,}-byte limit", "Send less")
    try:
        return load_json_bounded(raw, what="The body", max_bytes=MAX_BODY_BYTES)
    except ValidationError as error:
        return _error(error.http_status or 400, "validation", error.message, f"{error.fix.rstrip('.')}; e.g. {example}")


async def tool_call(request: web.Request) -> web.Response:
    """POST /v1/tools/facebook {"op", "args"}: the facebook tool, with the same answers as chat."""
    body = await _json_body(request, '{"op": "help", "args": {}}')
    if isinstance(body, web.Response):
        return body
    if not isinstance(body, dict):
        return _error(400, "validation", "The body must be a JSON object", 'Send {"op": "help", "args": {}}')
    runtime = request.app[RUNTIME_KEY]
    facebook = await runtime.facebook_for(request[WORKSPACE_KEY])
    extra = {k: v for k, v in body.items() if k not in ("op", "args")}
    binding = _bind_signin_to_browser()
    result = await facebook.call(body.get("op"), body.get("args"), interface="http", top_level=extra)
    response = web.json_response(
        {
            "ok": result.ok,
            "held": result.held,
            "text": result.text,
            "llm_text": result.llm_text,
            "data": result.data,
            "files": result.files,
            "file_urls": await _with_file_urls(request, result.files),
        },
        dumps=lambda value: json.dumps(value, default=str),
    )
    return _with_signin_cookie(request, response, binding)


def _bind_signin_to_browser() -> Any:
    """A fresh secret that a sign-in link made by this request is bound to (fi_facebook.bind_signin)."""
    from fi_facebook import bind_signin

    return bind_signin(secrets.token_urlsafe(32))


def _with_signin_cookie(request: web.Request, response: web.Response, binding: Any) -> web.Response:
    """When this request made a sign-in link, give the browser its secret as an HttpOnly, SameSite=Lax cookie that
    only the OAuth callback receives: the link then works in this browser only."""
    if binding.used:
        runtime = request.app[RUNTIME_KEY]
        response.set_cookie(
            signin_cookie_name(request[WORKSPACE_KEY].id),
            binding.secret,
            path=CALLBACK_PATH,
            max_age=600,
            httponly=True,
            samesite="Lax",
            secure=runtime.settings.public_url.startswith("https://"),
        )
    return response


MAX_MESSAGE_CHARS = 20000


async def _chat_turn(request: web.Request) -> tuple[str, str] | web.Response:
    """(thread_id, message) of a chat request, or the one-line 400/413 answer."""
    body = await _json_body(request, '{"thread_id": "t1", "message": "/status"}')
    if isinstance(body, web.Response):
        return body
    thread_id, message = (body.get("thread_id"), body.get("message")) if isinstance(body, dict) else (None, None)
    problem = thread_id_problem(thread_id)
    if problem:
        return _error(400, "validation", problem, 'Send {"thread_id": "t1", "message": "/status"}')
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE_CHARS:
        return _error(
            400,
            "validation",
            f"message must be non-empty text of at most {MAX_MESSAGE_CHARS} characters",
            'Send {"thread_id": "t1", "message": "/status"}',
        )
    return str(thread_id).strip(), message  # thread_id_problem passed: text


async def chat(request: web.Request) -> web.Response:
    """POST /v1/chat {"thread_id", "message"}: the bot's reply and the tool calls it made (slash-commands too)."""
    from admonster_chat import Chat

    turn = await _chat_turn(request)
    if isinstance(turn, web.Response):
        return turn
    thread_id, message = turn
    conversation = Chat(
        request.app[RUNTIME_KEY],
        request[WORKSPACE_KEY],
        console=None,
        thread_id=thread_id,
        stream=False,
        interface="http",
    )
    binding = _bind_signin_to_browser()
    reply, failed = await conversation.answer(message)
    response = web.json_response(
        await _chat_reply(request, conversation, thread_id, reply, failed),
        dumps=lambda value: json.dumps(value, default=str),
    )
    return _with_signin_cookie(request, response, binding)


async def chat_stream(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/stream: the same turn as /v1/chat, answered as JSON lines while it runs: {"text": …} for each
    piece of the LLM's reply as it arrives, then {"done": true, …} holding /v1/chat's whole answer."""
    from admonster_chat import Chat

    turn = await _chat_turn(request)
    if isinstance(turn, web.Response):
        return turn
    thread_id, message = turn
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/x-ndjson; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    binding = _bind_signin_to_browser()
    # The headers leave before the turn runs: the sign-in cookie goes with them in case the turn makes a link.
    runtime = request.app[RUNTIME_KEY]
    response.set_cookie(
        signin_cookie_name(request[WORKSPACE_KEY].id),
        binding.secret,
        path=CALLBACK_PATH,
        max_age=600,
        httponly=True,
        samesite="Lax",
        secure=runtime.settings.public_url.startswith("https://"),
    )
    await response.prepare(request)

    async def relay(fragment: str) -> None:
        await response.write((json.dumps({"text": fragment}, ensure_ascii=False) + "\n").encode())

    conversation = Chat(
        runtime, request[WORKSPACE_KEY], console=None, thread_id=thread_id, stream=False, interface="http", relay=relay
    )
    reply, failed = await conversation.answer(message)
    done = {"done": True, **(await _chat_reply(request, conversation, thread_id, reply, failed))}
    await response.write((json.dumps(done, default=str, ensure_ascii=False) + "\n").encode())
    await response.write_eof()
    return response


async def _chat_reply(
    request: web.Request, conversation: Any, thread_id: str, reply: str, failed: bool
) -> dict[str, Any]:
    tool_calls, files, file_urls = [], [], []
    for call in conversation.last_tool_calls:
        call = dict(call)
        call["files"] = list(call.get("files") or [])
        call["file_urls"] = await _with_file_urls(request, call["files"])
        files += call["files"]
        file_urls += call["file_urls"]
        tool_calls.append(call)
    return {
        "ok": not failed,
        "thread_id": thread_id,
        "reply": reply,
        "tool_calls": tool_calls,
        "files": files,
        "file_urls": file_urls,
    }


async def thread_history(request: web.Request) -> web.Response:
    """GET /v1/threads/{id}: the thread's messages, oldest first (only this workspace's)."""
    runtime = request.app[RUNTIME_KEY]
    thread_id = request.match_info["thread_id"]
    problem = thread_id_problem(thread_id)
    if problem:
        return _error(400, "validation", problem, "Use the thread_id you chat with, e.g. GET /v1/threads/t1")
    from fi_facebook import chat_messages_at_rest

    # Stored turns are already kept without personal data; passing them through again covers rows older than that.
    messages = chat_messages_at_rest(await runtime.store.chat_history(request[WORKSPACE_KEY].id, thread_id))
    return web.json_response(
        {"thread_id": thread_id, "messages": messages}, dumps=lambda value: json.dumps(value, default=str)
    )


async def me(request: web.Request) -> web.Response:
    """GET /v1/me: who the API key is (the workspace's id and name), the mode, and the currencies Facebook counts
    without a minor unit (fb_utils.ZERO_DECIMAL_CURRENCIES): the web console shows the name and turns the minor
    units of op answers into money with them. Nothing here needs Facebook."""
    from fb_utils import ZERO_DECIMAL_CURRENCIES

    runtime = request.app[RUNTIME_KEY]
    workspace = request[WORKSPACE_KEY]
    return web.json_response(
        {
            "workspace": {"id": workspace.id, "name": workspace.name},
            "mode": runtime.mode,
            "zero_decimal_currencies": sorted(ZERO_DECIMAL_CURRENCIES),
        }
    )


async def oauth_callback(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    _, response = await complete_oauth(runtime, request, public_callback_url(runtime))
    return response


def public_callback_url(runtime: Any) -> str:
    return runtime.settings.public_url.rstrip("/") + CALLBACK_PATH


OPENAPI_KEY = web.AppKey("openapi", dict)


async def openapi_document(request: web.Request) -> web.Response:
    """GET /openapi.json: the OpenAPI 3.1 description of this API, built from the route table and the op registry on
    the first request (admonster_openapi). Served without an API key: it shows the op list `admonster tools` prints."""
    from admonster_openapi import build_document

    cache = request.app[OPENAPI_KEY]
    if "document" not in cache:
        cache["document"] = await asyncio.to_thread(
            build_document, request.app, server_url=request.app[RUNTIME_KEY].settings.public_url
        )
    return web.json_response(cache["document"])


def create_app(runtime: Any) -> web.Application:
    app = web.Application(middlewares=[database_outage, api_key_auth], client_max_size=MAX_BODY_BYTES)
    app[RUNTIME_KEY] = runtime
    # In the database: any replica serves the links (a runtime without a store, as the OpenAPI build uses: in memory).
    app[FILES_KEY] = FileShelf(store=getattr(runtime, "store", None))
    app[OPENAPI_KEY] = {}
    app.router.add_get(OPENAPI_PATH, openapi_document)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    app.router.add_post("/v1/tools/facebook", tool_call)
    app.router.add_post("/v1/chat", chat)
    app.router.add_post("/v1/chat/stream", chat_stream)
    app.router.add_get("/v1/threads/{thread_id}", thread_history)
    app.router.add_get("/v1/me", me)
    app.router.add_get(FILES_PREFIX + "{file_id}/{name}", serve_file)
    app.router.add_post("/v1/files", upload_file)
    app.router.add_get(CALLBACK_PATH, oauth_callback)
    admonster_web.add_routes(app)
    admonster_mcp.mount_mcp(app, runtime)
    return app


SHUTDOWN_GRACE_SECONDS = 30.0


class ServerLog:
    """aiohttp's server logger, except that a request aiohttp's parser refuses (a control byte in a header, a bad
    request line: the client's fault, already answered 400) is one warning line, not a traceback in the log."""

    def __init__(self) -> None:
        import logging

        self._logger = logging.getLogger("aiohttp.server")

    def exception(self, message: str, *args: Any, exc_info: Any = True, **kw: Any) -> None:
        from aiohttp.http_exceptions import HttpProcessingError

        if isinstance(exc_info, HttpProcessingError):
            first = (str(exc_info.message) or type(exc_info).__name__).splitlines()[0][:200]
            self._logger.warning(f"{message}: refused a malformed request ({exc_info.code}): %s", *args, first)
            return
        self._logger.exception(message, *args, exc_info=exc_info, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


async def serve(runtime: Any, host: str, port: int, *, stop: asyncio.Event | None = None, ready: Any = None) -> None:
    """Run the server until SIGTERM/SIGINT (or `stop`), with the scheduler; drain the outbox before leaving."""

    async def callback_url() -> str:
        return public_callback_url(runtime)

    runtime.callback_url = callback_url
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests): `stop` is set by the caller
            pass
    runner = web.AppRunner(create_app(runtime), access_log=None, logger=ServerLog())
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    scheduler_task = _start_scheduler(runtime, stop)
    if ready is not None:
        ready(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    try:
        await stop.wait()
    finally:
        # A job in the middle of a write finishes it (the scheduler stops at its next turn); past the grace period it is
        # cancelled and its write stays audited `pending` for reconcile. In-flight requests get aiohttp's shutdown timeout.
        done, _ = await asyncio.wait({scheduler_task}, timeout=SHUTDOWN_GRACE_SECONDS)
        if not done:
            scheduler_task.cancel()
            await asyncio.gather(scheduler_task, return_exceptions=True)
        await runner.cleanup()
        if runtime.notifier is not None:
            await _drain_outbox(runtime.notifier)


async def _drain_outbox(notifier: Any) -> None:
    """The last delivery pass before leaving. With the database gone the messages stay queued in it (any replica, or
    this one restarted, delivers them): one warning, and the stop still succeeds."""
    from admonster_store import database_unreachable
    from fb_utils import get_logger, redact

    try:
        await notifier.drain(timeout=10)
    except Exception as error:
        if not database_unreachable(error):
            raise
        get_logger("admonster_server").warning(
            "outbox left queued: the database cannot be reached", reason=redact(str(error))[:200]
        )


def _start_scheduler(runtime: Any, stop: asyncio.Event) -> asyncio.Task:
    from admonster_jobs import JOBS, JobContext, Scheduler

    context = JobContext(
        store=runtime.store,
        notifier=runtime.notifier,
        settings=runtime.settings,
        sessions=runtime,
        time_source=runtime.time_source,
    )
    scheduler = Scheduler(JOBS, context)
    return asyncio.get_running_loop().create_task(scheduler.run_forever(stop))

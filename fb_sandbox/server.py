"""The sandbox HTTP server: aiohttp app factory, the Graph HTTP handler, and `SandboxServer`."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import hdrs, web
from aiohttp.multipart import BodyPartReader, MultipartReader
from multidict import CIMultiDict, CIMultiDictProxy

from . import control, oauth
from .apps import ensure_apps
from .context import DEFAULT_VERSION, GraphCall, GraphResult
from .control import SANDBOX_KEY
from .errors import GraphError, internal_error, new_trace_id, param_error, unknown_path
from .router import execute, usage_account
from .rules import rule
from .seed import seed_demo
from .state import Sandbox
from .versions import NEWEST, version_state

log = logging.getLogger("fb_sandbox")
MAX_BODY = 64 * 1024 * 1024


rule(
    "versions.deprecated",
    "A version past its end of life (versions.py, by the sandbox clock) answers `(#2635) You are "
    "calling a deprecated version of the Ads API. Please update to the latest version: vXX.`; an unversioned path gets "
    "the default version",
    source="https://developers.facebook.com/blog/post/2024/04/16/upcoming-change-in-marketing-api-version-deprecation",
    since="2024-05",
    verified=True,
    area="versions",
)


def split_version(tail: str, now: float) -> tuple[str, str]:
    """'v26.0/act_1/campaigns' -> ('v26.0', 'act_1/campaigns'); an unversioned path gets the default version. An
    expired version answers 2635, a version that does not exist 2500 (see versions.py for the sources)."""
    tail = tail.strip("/")
    first, _, rest = tail.partition("/")
    if not re.fullmatch(r"v\d+(\.\d+)?", first):
        return DEFAULT_VERSION, tail
    state = version_state(first, now)
    if state == "expired":
        raise GraphError(
            f"(#2635) You are calling a deprecated version of the Ads API. Please update to the "
            f"latest version: {NEWEST}.",
            2635,
        )
    if state == "unknown":
        raise unknown_path(tail)
    return first, rest.strip("/")


def route_label(method: str, path: str) -> str:
    parts = ["act_x" if re.fullmatch(r"act_\d+", s) else "{id}" if s.isdigit() else s for s in path.split("/")]
    return f"{method} {'/'.join(parts) or '/'}"


LARGE_BODY = 256 * 1024


def _parse_json_body(raw: bytes) -> Any:
    """A JSON body, parsed with the cyclic collector paused when it is large: a 10,000-row users batch becomes 10,000
    lists, and each 700 new ones would otherwise make the collector walk the young objects again (half the parse)."""
    if len(raw) < LARGE_BODY or not gc.isenabled():
        return json.loads(raw)
    gc.disable()
    try:
        return json.loads(raw)
    finally:
        gc.enable()


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.method == "GET" or not request.body_exists:
        return params, files
    ctype = request.content_type
    try:
        if ctype == "application/json":
            body = _parse_json_body(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise param_error("A JSON request body must be an object")
            params.update(body)
        elif ctype == "multipart/form-data":
            await _read_multipart(request, params, files)
        elif ctype == "application/x-www-form-urlencoded":
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    params[key] = value
        else:
            text = (await request.read()).decode("utf-8", "replace")
            params.update(parse_qsl(text, keep_blank_values=True))
    except GraphError:
        raise
    except web.HTTPException:
        raise
    except Exception:  # noqa: BLE001 - any unparseable body is a client error, never a 500
        raise param_error("Could not parse the request body") from None
    return params, files


class _FlatMultipartReader(MultipartReader):
    """Every part is a field or a file: the SDK's video uploader labels its chunk `multipart/form-data`, which
    aiohttp's own form parser would take for a nested multipart without a boundary."""

    def _get_part_reader(self, headers):
        if headers.get(hdrs.CONTENT_TYPE, "").lower().startswith("multipart/"):
            headers = CIMultiDictProxy(CIMultiDict({**headers, hdrs.CONTENT_TYPE: "application/octet-stream"}))
        return super()._get_part_reader(headers)


async def _read_multipart(request: web.Request, params: dict[str, Any], files: dict[str, bytes]) -> None:
    reader, total = _FlatMultipartReader(request.headers, request.content), 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise param_error("Every multipart part needs a name")
        data = bytearray()
        while chunk := await part.read_chunk():
            total += len(chunk)
            if total > MAX_BODY:
                raise web.HTTPRequestEntityTooLarge(MAX_BODY, total)
            data += chunk
        if part.filename is not None:
            files[part.name] = bytes(part.decode(data))
        else:
            params[part.name] = bytes(part.decode(data)).decode(part.get_charset("utf-8"))


def _response(result: GraphResult, version: str) -> web.Response:
    headers = {
        "facebook-api-version": version,
        "x-fb-trace-id": new_trace_id(),
        "x-fb-rev": "1000000",
        **result.headers,
    }
    text = json.dumps(result.body, separators=(",", ":"), ensure_ascii=False)
    if result.jsonp:  # an old app's JSONP callback (legacy.py)
        return web.Response(
            status=result.status, headers=headers, content_type="text/javascript", text=f"/**/ {result.jsonp}({text});"
        )
    return web.Response(status=result.status, headers=headers, content_type="application/json", text=text)


def _fault_result(sb: Sandbox, fault, path: str) -> GraphResult:
    err = fault.error()
    digits = usage_account(sb, path)
    if fault.kind == "throttle" and digits is None:
        accounts = sb.store.list("adaccount")
        digits = accounts[0]["account_id"] if accounts else "0"
    headers = sb.usage.headers(
        digits,
        now=sb.now(),
        tier=sb.config.access_tier,
        regain_minutes=fault.options.get("minutes") if fault.kind == "throttle" else None,
    )
    return GraphResult(err.http_status, err.body(), headers)


async def _transport_fault(request: web.Request, fault) -> web.StreamResponse | None:
    """Apply a fault that acts on the connection; None means: answer normally."""
    if fault.kind in ("delay", "timeout"):
        await asyncio.sleep(fault.options["delay_ms"] / 1000)
        return None
    if fault.kind == "unavailable":
        return web.Response(status=503, text="Service Unavailable", content_type="text/plain")
    if fault.kind == "drop":
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError()
    return None


async def graph_handler(request: web.Request) -> web.StreamResponse:
    sb = request.app[SANDBOX_KEY]
    method = request.method if request.method != "HEAD" else "GET"
    try:
        version, path = split_version(request.match_info.get("tail", ""), sb.now())
    except GraphError as err:
        sb.stats.record(route_label(method, request.match_info.get("tail", "")))
        return _response(GraphResult(err.http_status, err.body(), {}), DEFAULT_VERSION)
    sb.stats.record(route_label(method, path))
    if sb.config.latency_ms:
        await asyncio.sleep(sb.config.latency_ms / 1000)
    try:
        params, files = await read_params(request)
    except GraphError as err:
        return _response(GraphResult(err.http_status, err.body(), {}), version)
    override = params.get("method")
    overridden = (
        isinstance(override, str) and override.upper() in ("GET", "POST", "DELETE") and method in ("GET", "POST")
    )
    if overridden and isinstance(
        override, str
    ):  # HTTP method override: a legacy feature, refused for new apps (legacy.py)
        method = override.upper()
    if method not in ("GET", "POST", "DELETE"):
        refused = param_error(f"Unsupported method {request.method}")
        return _response(GraphResult(refused.http_status, refused.body(), {}), version)
    call = GraphCall(
        method,
        path,
        params,
        request.headers.get("Authorization"),
        f"{request.scheme}://{request.host}",
        version,
        files,
        method_override=overridden,
    )
    return await _run_with_faults(request, sb, call)


async def _run_with_faults(request: web.Request, sb: Sandbox, call: GraphCall) -> web.StreamResponse:
    faulted = await _fault_answer(request, sb, call, "before")
    if faulted is not None:
        return faulted
    result = execute(sb, call)  # an "after" fault answers in its place: the work is done, the answer is lost
    faulted = await _fault_answer(request, sb, call, "after")
    return faulted if faulted is not None else _response(result, call.version)


async def _fault_answer(request: web.Request, sb: Sandbox, call: GraphCall, when: str) -> web.StreamResponse | None:
    """The answer a pending fault gives instead of the real one, or None when no fault matches."""
    fault = sb.faults.take(call.method, call.path, when)
    if fault is None:
        return None
    if fault.kind in ("http_500", "error", "throttle", "token_expired"):
        return _response(_fault_result(sb, fault, call.path), call.version)
    return await _transport_fault(request, fault)


@web.middleware
async def last_line(request: web.Request, handler):
    """Unexpected exceptions become a Facebook code 1 error body instead of a traceback."""
    try:
        return await handler(request)
    except (web.HTTPException, asyncio.CancelledError):
        raise
    except Exception:  # noqa: BLE001
        log.exception("unexpected error on %s %s", request.method, request.path)
        err = internal_error()
        return web.json_response(err.body(), status=err.http_status)


def create_app(db_path: str = ":memory:", seed: bool = True, clock_start: float | None = None) -> web.Application:
    """The sandbox app; a new sandbox's simulated clock starts at ``clock_start`` (epoch seconds), else now."""
    sb = Sandbox(db_path, clock_start)
    if seed and sb.store.is_empty():
        seed_demo(sb)
    ensure_apps(sb.store)
    app = web.Application(middlewares=[last_line, control.control_errors], client_max_size=MAX_BODY)
    app[SANDBOX_KEY] = sb
    control.add_routes(app)
    for prefix in ("/{version:v\\d+\\.\\d+}", ""):  # the Login dialog is HTML, outside the Graph router
        app.router.add_get(prefix + "/dialog/oauth", oauth.dialog)
        app.router.add_get(prefix + "/dialog/oauth/confirm", oauth.confirm)
    app.router.add_route("*", "/{tail:.*}", graph_handler)

    async def close_store(_app: web.Application) -> None:
        sb.store.close()

    app.on_cleanup.append(close_store)
    return app


class SandboxServer:
    """A sandbox on loopback: `await start()` sets `.url`; also an async context manager. ``clock_start``: see create_app."""

    def __init__(
        self,
        db_path: str = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
        seed: bool = True,
        clock_start: float | None = None,
    ) -> None:
        self.db_path, self.host, self.port, self.seed, self.clock_start = db_path, host, port, seed, clock_start
        self.url: str | None = None
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None

    @property
    def sandbox(self) -> Sandbox:
        assert self.app is not None, "start() first"
        return self.app[SANDBOX_KEY]

    async def start(self) -> str:
        self.app = create_app(self.db_path, self.seed, self.clock_start)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

"""`GET /openapi.json`: the OpenAPI 3.1 description of Ad Monster's HTTP API, generated from what exists.

Nothing here is typed twice: the paths and methods come from the server's route table (every route of
`admonster_server.create_app` must have an entry in OPERATIONS, or building the document fails: a test builds it), the
tool call's `op` enum and each op's argument schema from the op registry (the same pydantic models that validate the
calls, as components), the MCP tool names from `admonster_mcp.build_tools`, the file kinds from the server's
FILE_TYPES, the thread id pattern from its THREAD_ID. What is written here is what a route is for and what it answers.

The document itself needs no API key: it shows the routes and the op list, which `admonster tools` prints anyway
(docs/security.md). aiohttp answers HEAD for every GET route by itself; HEAD is not listed.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

OPENAPI_PATH = "/openapi.json"
OPENAPI_VERSION = "3.1.0"
BEARER = "apiKey"  # the security scheme's name
SCHEMAS = "#/components/schemas/"
DOCUMENT_KEY = "admonster.openapi"  # the built document, cached on the aiohttp app


class UndocumentedRoute(Exception):
    """A route of the server has no entry in OPERATIONS."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _text(description: str, media: str = "text/plain") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}
# A text/event-stream answer, described per event as schemathesis reads it (OpenAPI 3.2's itemSchema): each event's
# fields, its data the JSON-RPC message as text.
SSE = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "properties": {
                "event": {"type": "string"},
                "data": {"type": "string"},
                "id": {"type": "string"},
                "retry": {"type": "integer"},
            },
        }
    }
}
MCP_SESSION_PARAMETER = {
    "name": "Mcp-Session-Id",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The session id initialize's answer carried (absent: initialize, or a request "
    "answered without a session).",
}
NO_SESSION = _error(
    "No session with this id for this key's workspace (unknown, expired, ended or another's): initialize again."
)
FOREIGN_ORIGIN = _error("An Origin header that is not ADMONSTER_PUBLIC_URL's (a web page of another site).")
BAD_BODY = _error(
    "The body is not a JSON object of the right shape, is not UTF-8, or is nested too deep: one line and a fix."
)
TOO_LARGE = _error("The body is over the size limit.")
DATABASE_DOWN = _error("The database cannot be reached (Retry-After says when to try again): one line and a fix.")
SECURED: list[dict[str, list[str]]] = [{BEARER: []}]


# ---------------------------------------------------------------------------------------------------------------
# Components: the op registry's argument models, and the shapes every route answers
# ---------------------------------------------------------------------------------------------------------------


def op_components(registry: Any) -> tuple[dict[str, Any], list[str]]:
    """(schemas, op names): every op's argument schema as `args.<op>` (the op's pydantic model plus the write gate's
    dry_run/confirm, as `Registry.args_schema` gives it), the models they use under their own names, and one
    `call.<op>` per op and dispatcher call ({"op": <name>, "args": <its arguments>})."""
    from pydantic.json_schema import models_json_schema

    from fi_facebook import DISPATCHER_CALLS

    specs = registry.specs()
    keys, top = models_json_schema(
        [(spec.args_model, "validation") for spec in specs], ref_template=SCHEMAS + "{model}"
    )
    definitions = top.get("$defs", {})
    op_models = {keys[(spec.args_model, "validation")]["$ref"].removeprefix(SCHEMAS) for spec in specs}
    schemas: dict[str, Any] = {}
    for spec in specs:
        model_name = keys[(spec.args_model, "validation")]["$ref"].removeprefix(SCHEMAS)
        schema = copy.deepcopy(definitions[model_name])
        schema.pop("title", None)
        schema.setdefault("properties", {}).update(registry.gate_properties(spec))
        schema["x-op-kind"] = spec.kind.value
        schemas[f"args.{spec.name}"] = schema
    # The models an op's arguments use inside them; an op's own model is `args.<op>` (a model used inside another's
    # arguments stays under its name too).
    used = component_refs(list(schemas.values()) + [definitions[name] for name in definitions if name not in op_models])
    for name, schema in definitions.items():
        if name not in op_models or name in used:
            schemas[name] = schema
    calls = {
        **{name: schema for name, schema in DISPATCHER_CALLS.items()},
        **{spec.name: _ref(f"args.{spec.name}") for spec in specs},
    }
    for name, args in calls.items():
        spec = registry.get(name)
        schemas[f"call.{name}"] = {
            "type": "object",
            "required": ["op"],
            "additionalProperties": False,
            "description": DISPATCHER_CALLS[name]["description"] if spec is None else spec.summary,
            "properties": {"op": {"const": name}, "args": args},
        }
        if spec is not None and spec.example:  # the example the op declares (op=help shows the same)
            schemas[f"call.{name}"]["examples"] = [{"op": name, "args": spec.example}]
    return schemas, list(calls)


def component_refs(values: Any) -> set[str]:
    """The names of the components `values` refer to (#/components/schemas/NAME), at any depth."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith(SCHEMAS):
                found.add(ref.removeprefix(SCHEMAS))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(values)
    return found


def shape_components(op_names: list[str]) -> dict[str, Any]:
    """What the routes answer (admonster_server builds these bodies)."""
    file_urls = {
        "type": "array",
        "items": {"type": ["string", "null"]},
        "description": "One entry per file: a /v1/files/ link for this workspace, or null for a kind the server does not hand out.",
    }
    files = {
        "type": "array",
        "items": {"type": "string"},
        "description": "Files the op wrote (names in the workspace's folder).",
    }
    return {
        "Error": {
            "type": "object",
            "required": ["ok", "text", "data"],
            "description": "Every refusal of the API itself (admonster_server._error): one line with a fix, and the same as data.",
            "properties": {
                "ok": {"const": False},
                "text": {"type": "string", "description": "ERROR <kind>: <message>. Fix: <fix>."},
                "data": {
                    "type": "object",
                    "required": ["error", "message", "fix"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "fix": {"type": "string"},
                    },
                },
            },
        },
        "OpName": {
            "enum": op_names,
            "description": "Every op the facebook tool runs (the registry's, and help, confirm, reject).",
        },
        "ToolCall": {
            "description": "One call of the facebook tool: an op and its arguments (op=help lists every op). A failed "
            "call still answers 200, with ok=false and one line saying why.",
            "oneOf": [_ref(f"call.{name}") for name in op_names],
            "discriminator": {"propertyName": "op", "mapping": {name: SCHEMAS + f"call.{name}" for name in op_names}},
        },
        "ToolResult": {
            "type": "object",
            "required": ["ok", "held", "text", "llm_text", "data", "files", "file_urls"],
            "properties": {
                "ok": {"type": "boolean"},
                "held": {"type": "boolean", "description": "Waiting for a person's confirmation (ok is false)."},
                "text": {"type": "string", "description": "The answer, as chat shows it to a person."},
                "llm_text": {
                    "type": "string",
                    "description": "The same answer for an LLM: with hints (op and argument names).",
                },
                "data": {"description": "The op's data (on failure: error, message, fix)."},
                "files": files,
                "file_urls": file_urls,
            },
        },
        "ChatRequest": {
            "type": "object",
            "required": ["thread_id", "message"],
            "properties": {
                "thread_id": _ref("ThreadId"),
                "message": {
                    "type": "string",
                    "minLength": 1,
                    "examples": _chat_commands(),
                    "description": "What the person says, or a /command (/help lists them).",
                },
            },
        },
        "ChatReply": {
            "type": "object",
            "required": ["ok", "thread_id", "reply", "tool_calls", "files", "file_urls"],
            "properties": {
                "ok": {"type": "boolean"},
                "thread_id": _ref("ThreadId"),
                "reply": {"type": "string"},
                "tool_calls": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "ok", "files", "file_urls"],
                        "properties": {
                            "name": {"type": "string"},
                            "arguments": {},
                            "ok": {"type": "boolean"},
                            "files": files,
                            "file_urls": file_urls,
                        },
                    },
                },
                "files": files,
                "file_urls": file_urls,
            },
        },
        "Thread": {
            "type": "object",
            "required": ["thread_id", "messages"],
            "properties": {"thread_id": {"type": "string"}, "messages": {"type": "array", "items": {"type": "object"}}},
        },
        "Upload": {
            "type": "object",
            "required": ["ok", "text", "file", "size"],
            "properties": {
                "ok": {"const": True},
                "text": {"type": "string"},
                "file": {
                    "type": "string",
                    "description": "The name to pass as an op's source, path, image, video or plan_file.",
                },
                "size": {"type": "integer", "minimum": 1},
            },
        },
        "Me": {
            "type": "object",
            "required": ["workspace", "mode", "zero_decimal_currencies"],
            "properties": {
                "workspace": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
                "mode": {"type": "string"},
                "zero_decimal_currencies": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Health": {
            "type": "object",
            "required": ["ok", "mode", "time", "api_version"],
            "properties": {
                "ok": {"const": True},
                "mode": {"type": "string"},
                "time": {"type": "integer"},
                "api_version": {"type": "string"},
                "api_version_warning": {"type": "string"},
            },
        },
    }


def _chat_commands() -> list[str]:
    """Every chat command, bare (admonster_bot's BOT_COMMANDS and LOCAL_COMMANDS), and a /tool call."""
    from admonster_chat import BOT_COMMANDS, LOCAL_COMMANDS

    return [f"/{name}" for name in [*BOT_COMMANDS, *LOCAL_COMMANDS]] + ['/tool list_campaigns {"limit": 5}']


def mcp_components(registry: Any) -> dict[str, Any]:
    """JSON-RPC over /mcp (MCP streamable HTTP, sessions). The tools are admonster_mcp.build_tools'
    with every toolset (what a workspace lists is its setting, a subset): the facebook tool takes a ToolCall, each
    op's own tool the op's arguments (`args.<op>`), find_ops/list_toolsets/enable_toolset their own schemas."""
    from admonster_mcp import FACEBOOK_TOOL, build_tools

    request_id = {"type": ["integer", "string"]}
    tool_calls = []
    for tool in build_tools("both", registry, toolsets=("all",)):
        if tool.name == FACEBOOK_TOOL:
            arguments = _ref("ToolCall")
        elif registry.get(tool.name) is not None:
            arguments = _ref(f"args.{tool.name}")
        else:
            arguments = tool.input_schema
        tool_calls.append(
            {
                "type": "object",
                "required": ["name"],
                "title": tool.name,
                "properties": {"name": {"const": tool.name}, "arguments": arguments},
            }
        )
    return {
        "McpToolCall": {"oneOf": tool_calls},
        "JsonRpcRequest": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["jsonrpc", "id", "method", "params"],
                    "title": "initialize",
                    "properties": {
                        "jsonrpc": {"const": "2.0"},
                        "id": request_id,
                        "method": {"const": "initialize"},
                        "params": {
                            "type": "object",
                            "required": ["protocolVersion", "capabilities", "clientInfo"],
                            "properties": {
                                "protocolVersion": {"type": "string"},
                                "capabilities": {"type": "object"},
                                "clientInfo": {
                                    "type": "object",
                                    "required": ["name", "version"],
                                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
                {
                    "type": "object",
                    "required": ["jsonrpc", "id", "method"],
                    "title": "tools/list or ping",
                    "properties": {
                        "jsonrpc": {"const": "2.0"},
                        "id": request_id,
                        "method": {"enum": ["tools/list", "ping"]},
                    },
                },
                {
                    "type": "object",
                    "required": ["jsonrpc", "id", "method", "params"],
                    "title": "tools/call",
                    "properties": {
                        "jsonrpc": {"const": "2.0"},
                        "id": request_id,
                        "method": {"const": "tools/call"},
                        "params": _ref("McpToolCall"),
                    },
                },
                {
                    "type": "object",
                    "required": ["jsonrpc", "method"],
                    "title": "notification",
                    "properties": {"jsonrpc": {"const": "2.0"}, "method": {"const": "notifications/initialized"}},
                },
            ]
        },
        "ProtectedResourceMetadata": {
            "type": "object",
            "required": ["resource", "bearer_methods_supported"],
            "description": "RFC 9728 section 2 (admonster_mcp.protected_resource_metadata). No authorization_servers: "
            "keys are issued by the operator (admonster workspace create, the console).",
            "properties": {
                "resource": {"type": "string", "format": "uri"},
                "bearer_methods_supported": {"type": "array", "items": {"const": "header"}},
                "resource_name": {"type": "string"},
                "resource_documentation": {"type": "string", "format": "uri"},
            },
        },
        "JsonRpcResponse": {
            "type": "object",
            "required": ["jsonrpc"],
            "properties": {
                "jsonrpc": {"const": "2.0"},
                "id": {"type": ["integer", "string", "null"]},
                "result": {},
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "data": {}},
                },
            },
        },
    }


# ---------------------------------------------------------------------------------------------------------------
# Operations: what each route of the server is for and answers (keyed by method and path as aiohttp has them)
# ---------------------------------------------------------------------------------------------------------------


def _thread_id_schema() -> dict[str, Any]:
    from admonster_chat import THREAD_ID

    return {
        "type": "string",
        "pattern": f"^{THREAD_ID.pattern}$",
        "description": "A conversation's id (you choose it).",
    }


def _file_media() -> dict[str, Any]:
    from admonster_files import FILE_TYPES

    return {
        media: {"schema": {"type": "string", "format": "binary"}} for media, _ in dict.fromkeys(FILE_TYPES.values())
    }


def _console_files() -> list[str]:
    from admonster_web import STATIC_FILES

    return sorted(STATIC_FILES)


def _console_media() -> dict[str, Any]:
    from admonster_web import STATIC_FILES

    return {media: {"schema": {"type": "string"}} for media in dict.fromkeys(STATIC_FILES.values())}


def _favicon_media() -> dict[str, Any]:
    from admonster_web import FAVICON, STATIC_FILES

    return {STATIC_FILES[FAVICON]: {"schema": {"type": "string"}}}


def _html_page(statuses: dict[str, str]) -> dict[str, Any]:
    return {status: _text(description, "text/html") for status, description in statuses.items()}


OPERATIONS: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
    ("GET", OPENAPI_PATH): lambda: {
        "operationId": "openapi",
        "tags": ["meta"],
        "security": [],
        "summary": "This document (OpenAPI 3.1), generated from the route table and the op registry; no key needed.",
        "responses": {"200": _json({"type": "object", "required": ["openapi", "paths"]}, "The document.")},
    },
    ("GET", "/healthz"): lambda: {
        "operationId": "health",
        "tags": ["meta"],
        "security": [],
        "summary": "Liveness, mode and Graph API version (with a warning when the version ends within 90 days).",
        "responses": {"200": _json(_ref("Health"), "The server is up.")},
    },
    ("GET", "/readyz"): lambda: {
        "operationId": "ready",
        "tags": ["meta"],
        "security": [],
        "summary": "Readiness: whether this replica reaches its database (one SELECT 1); no key needed.",
        "responses": {
            "200": _json(
                {
                    "type": "object",
                    "required": ["ok", "database"],
                    "properties": {"ok": {"type": "boolean"}, "database": {"type": "string"}},
                },
                "The database answers.",
            ),
            "503": DATABASE_DOWN,
        },
    },
    ("POST", "/v1/tools/facebook"): lambda: {
        "operationId": "tool_call",
        "tags": ["api"],
        "security": SECURED,
        "summary": "Run one op of the facebook tool (the same answers as chat).",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ToolCall")}}},
        "responses": {
            "200": _json(_ref("ToolResult"), "The op's answer; ok=false when it failed (one line with a fix)."),
            "400": BAD_BODY,
            "401": UNAUTHORIZED,
            "413": TOO_LARGE,
        },
    },
    ("POST", "/v1/chat"): lambda: {
        "operationId": "chat",
        "tags": ["api"],
        "security": SECURED,
        "summary": "One chat turn in a thread: the bot's reply and the tool calls it made (slash-commands too).",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ChatRequest")}}},
        "responses": {
            "200": _json(_ref("ChatReply"), "The reply; ok=false when the turn failed."),
            "400": BAD_BODY,
            "401": UNAUTHORIZED,
            "413": TOO_LARGE,
        },
    },
    ("POST", "/v1/chat/stream"): lambda: {
        "operationId": "chat_stream",
        "tags": ["api"],
        "security": SECURED,
        "summary": 'The same chat turn, answered as JSON lines while it runs: {"text": …} for each piece of the LLM\'s '
        'reply as it arrives, then {"done": true, …} with /v1/chat\'s whole answer.',
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ChatRequest")}}},
        "responses": {
            "200": {
                "description": "JSON lines (application/x-ndjson); the last one is the whole answer.",
                "content": {
                    "application/x-ndjson": {
                        "schema": {
                            "description": "One line: a piece of the reply, or the last line: /v1/chat's answer "
                            "with done=true.",
                            "oneOf": [
                                {
                                    "type": "object",
                                    "required": ["text"],
                                    "additionalProperties": False,
                                    "properties": {"text": {"type": "string"}},
                                },
                                {
                                    "allOf": [
                                        _ref("ChatReply"),
                                        {
                                            "type": "object",
                                            "required": ["done"],
                                            "properties": {"done": {"const": True}},
                                        },
                                    ]
                                },
                            ],
                        }
                    }
                },
            },
            "400": BAD_BODY,
            "401": UNAUTHORIZED,
            "413": TOO_LARGE,
        },
    },
    ("GET", "/v1/threads/{thread_id}"): lambda: {
        "operationId": "thread_history",
        "tags": ["api"],
        "security": SECURED,
        "summary": "A thread's messages, oldest first (this workspace's only; personal data withheld).",
        "parameters": [{"name": "thread_id", "in": "path", "required": True, "schema": _ref("ThreadId")}],
        "responses": {
            "200": _json(_ref("Thread"), "The messages (none for a thread never used)."),
            "400": _error("Not a valid thread id."),
            "401": UNAUTHORIZED,
        },
    },
    ("GET", "/v1/me"): lambda: {
        "operationId": "me",
        "tags": ["api"],
        "security": SECURED,
        "summary": "Whose key this is (the workspace's id and name), the mode, and the currencies without a minor unit.",
        "responses": {"200": _json(_ref("Me"), "The key's workspace."), "401": UNAUTHORIZED},
    },
    ("POST", "/v1/files"): lambda: {
        "operationId": "upload_file",
        "tags": ["api"],
        "security": SECURED,
        "summary": "Upload a file (streamed) into the workspace's own folder, to pass to an op as its source.",
        "parameters": [
            {
                "name": "name",
                "in": "query",
                "required": True,
                "description": "The file's name.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 150, "pattern": r"^[^/\\\x00]+$"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        "responses": {
            "200": _json(_ref("Upload"), "Stored; `file` is the name to pass to an op."),
            "400": _error("No usable name, or an empty body."),
            "401": UNAUTHORIZED,
            "413": _error("Over the upload limit."),
        },
    },
    ("GET", "/v1/files/{file_id}/{name}"): lambda: {
        "operationId": "get_file",
        "tags": ["api"],
        "security": SECURED,
        "summary": "A file an op wrote for this workspace (its link is in the op's file_urls, for 24 hours).",
        "parameters": [
            {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {"description": "The file.", "content": _file_media()},
            "401": UNAUTHORIZED,
            "404": _error("No such file for this workspace, or it changed."),
        },
    },
    ("GET", "/oauth/facebook/callback"): lambda: {
        "operationId": "oauth_callback",
        "tags": ["sign-in"],
        "security": [],
        "summary": "Where Facebook sends the person back after sign-in; answers a small page saying what happened.",
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in ("state", "code", "error", "error_description")
        ],
        "responses": _html_page(
            {
                "200": "Connected.",
                "400": "Facebook was not connected (bad or expired link, refused).",
                "403": "The link was made in another browser or terminal.",
                "409": "The workspace is connected to another Facebook user: confirmation needed.",
            }
        ),
    },
    ("GET", "/"): lambda: {
        "operationId": "console_root",
        "tags": ["console"],
        "security": [],
        "summary": "The web console (a static page; it asks for the API key and talks to /v1/).",
        "responses": {"200": _text("The page.", "text/html")},
    },
    ("GET", "/console"): lambda: {
        "operationId": "console",
        "tags": ["console"],
        "security": [],
        "summary": "The web console (the same page as /).",
        "responses": {"200": _text("The page.", "text/html")},
    },
    ("GET", "/console/static/{name}"): lambda: {
        "operationId": "console_file",
        "tags": ["console"],
        "security": [],
        "summary": "The console's script and style sheet (only these names).",
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"enum": _console_files()}}],
        "responses": {
            "200": {"description": "The file.", "content": _console_media()},
            "404": _text("No such console file."),
        },
    },
    ("GET", "/favicon.ico"): lambda: {
        "operationId": "favicon",
        "tags": ["console"],
        "security": [],
        "summary": "The console's icon, where browsers look for one.",
        "responses": {"200": {"description": "The icon.", "content": _favicon_media()}},
    },
    ("POST", "/mcp"): lambda: {
        "operationId": "mcp",
        "tags": ["mcp"],
        "security": SECURED,
        "summary": "MCP over streamable HTTP: JSON-RPC messages; the tools are the ops. initialize opens a session "
        "(its answer carries Mcp-Session-Id; session requests are answered as SSE); a request without a "
        "session id that is not initialize is answered without one (one JSON answer).",
        "description": "Send `Accept: application/json, text/event-stream` (the MCP transport's rule). An `Origin` "
        "header must be ADMONSTER_PUBLIC_URL's origin.",
        "parameters": [MCP_SESSION_PARAMETER],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("JsonRpcRequest")}}},
        "responses": {
            "200": {
                "description": "The JSON-RPC answer (a failed tool call is a result with isError): JSON "
                "without a session, an SSE stream (progress, then the answer) in one.",
                "content": {"application/json": {"schema": _ref("JsonRpcResponse")}, **SSE},
            },
            "202": {"description": "A notification, accepted (no body)."},
            "400": _json(_ref("JsonRpcResponse"), "Not JSON, too deep, or not a JSON-RPC message: a JSON-RPC error."),
            "401": UNAUTHORIZED,
            "403": FOREIGN_ORIGIN,
            "404": NO_SESSION,
            "406": _json(_ref("JsonRpcResponse"), "The Accept header lacks application/json and text/event-stream."),
            "413": _error("The body is too large."),
            "415": _json(_ref("JsonRpcResponse"), "The body is not application/json."),
            "429": _error("initialize: this workspace has its maximum of MCP sessions open."),
            "503": _error("initialize: the server has its maximum of MCP sessions open."),
        },
    },
    ("GET", "/mcp"): lambda: {
        "operationId": "mcp_get",
        "tags": ["mcp"],
        "security": SECURED,
        "summary": "The session's standalone SSE stream (server-initiated messages), open until the session ends.",
        "parameters": [{**MCP_SESSION_PARAMETER, "required": True}],
        "responses": {
            "200": {"description": "The event stream.", "content": SSE},
            "400": _error("No Mcp-Session-Id: initialize first."),
            "401": UNAUTHORIZED,
            "403": FOREIGN_ORIGIN,
            "404": NO_SESSION,
            "406": _json(_ref("JsonRpcResponse"), "The Accept header lacks text/event-stream."),
            "409": _json(_ref("JsonRpcResponse"), "The session already has its stream open."),
        },
    },
    ("DELETE", "/mcp"): lambda: {
        "operationId": "mcp_delete",
        "tags": ["mcp"],
        "security": SECURED,
        "summary": "End the session (its streams end; its id then answers 404).",
        "parameters": [{**MCP_SESSION_PARAMETER, "required": True}],
        "responses": {
            "200": {"description": "The session ended."},
            "400": _error("No Mcp-Session-Id: there is no session to end."),
            "401": UNAUTHORIZED,
            "403": FOREIGN_ORIGIN,
            "404": NO_SESSION,
        },
    },
    ("GET", "/.well-known/oauth-protected-resource"): lambda: {
        "operationId": "protected_resource_metadata",
        "tags": ["mcp"],
        "security": [],
        "summary": "OAuth protected-resource metadata of /mcp (RFC 9728): the workspace API key is the bearer.",
        "responses": {"200": _json(_ref("ProtectedResourceMetadata"), "The metadata.")},
    },
    ("GET", "/.well-known/oauth-protected-resource/mcp"): lambda: {
        "operationId": "protected_resource_metadata_mcp",
        "tags": ["mcp"],
        "security": [],
        "summary": "The same metadata at the URL RFC 9728 derives from /mcp (the well-known prefix before the path).",
        "responses": {"200": _json(_ref("ProtectedResourceMetadata"), "The metadata.")},
    },
}


def app_routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every route of an aiohttp app, HEAD left out (aiohttp adds it to every GET)."""
    routes = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        routes.append((route.method, route.resource.canonical, route.handler))
    return routes


def build_document(app: Any, registry: Any = None, *, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an `admonster_server.create_app` application. Raises UndocumentedRoute when a
    route has no entry in OPERATIONS (and names it)."""
    from admonster_mcp import server_version
    from fi_facebook import REGISTRY

    registry = registry or REGISTRY
    paths: dict[str, dict[str, Any]] = {}
    missing = []
    for method, path, handler in app_routes(app):
        describe = OPERATIONS.get((method, path))
        if describe is None:
            missing.append(f"{method} {path}")
            continue
        operation = describe()
        if (
            operation.get("security") == SECURED
        ):  # the key is looked up in the database (admonster_server.database_outage)
            operation["responses"].setdefault("503", DATABASE_DOWN)
        doc = inspect.getdoc(handler)
        if doc and "description" not in operation:
            operation["description"] = doc
        paths.setdefault(path, {})[method.lower()] = operation
    if missing:
        raise UndocumentedRoute("Routes without a description in admonster_openapi.OPERATIONS: " + ", ".join(missing))
    op_schemas, op_names = op_components(registry)
    schemas = {**shape_components(op_names), **mcp_components(registry), "ThreadId": _thread_id_schema(), **op_schemas}
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Ad Monster HTTP API",
            "version": server_version(),
            "description": "Run Facebook and Instagram advertising ops over HTTP (`admonster serve`). Every /v1/ "
            "route and /mcp needs a workspace API key (`admonster workspace create NAME` prints one). "
            "Generated from the server's route table and the op registry.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "amk_…",
                    "description": "A workspace API key: Authorization: Bearer amk_…",
                }
            },
            "responses": {"Unauthorized": _error("No API key, or not a key of any workspace.")},
            "schemas": schemas,
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url.rstrip("/")}]
    return document

"""`GET /openapi.json` describes the whole HTTP API (issue 18, item 3), and schemathesis fuzzes every operation it
describes against a real `admonster serve` (sandbox mode, a workspace with an API key): no 5xx, every answer as the
document says (status, content type, body schema), no "Internal error" or traceback in any answer or in the log.

schemathesis' pytest loader (`schemathesis.pytest.from_fixture`) fails under pytest 9 ('Function' object has no
attribute '_nodeid'), so the tests draw schemathesis' strategies (`as_strategy`, `get_strategies_from_examples`) with
Hypothesis themselves and run schemathesis' checks on each answer (`case.validate_response`)."""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import re
from collections import Counter

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.generation import GenerationMode

from admonster_openapi import OPERATIONS, UndocumentedRoute, app_routes, build_document, component_refs
from admonster_server import create_app
from admonster_tools import META_TOOLS
from fi_facebook import DISPATCHER_CALLS, REGISTRY
from testkit import Errors, ServerThread, running_server

CRASH_MARKS = ("Traceback", "Internal error", "RecursionError", "OverflowError", "TypeError")


class _Runtime:  # what create_app reads of a runtime when nothing is served
    class settings:
        public_url = "http://127.0.0.1:1"


# ---------------------------------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------------------------------


async def test_openapi_json_is_served_without_a_key_and_is_valid_openapi_31(tmp_path):
    async with running_server(tmp_path) as (url, runtime):
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/openapi.json") as response:
                assert response.status == 200 and response.content_type == "application/json"
                document = await response.json()
            async with session.get(url + "/v1/threads/t1") as response:  # the API itself still needs the key
                assert response.status == 401
    validate(document)  # openapi-spec-validator: a valid OpenAPI 3.1 document
    assert document["openapi"].startswith("3.1") and document["servers"] == [{"url": url}]
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    served = {(method, path) for method, path, _ in app_routes(create_app(runtime))}
    assert documented == served and len(served) >= 14, documented ^ served
    security = document["components"]["securitySchemes"]["apiKey"]
    assert security == {**security, "type": "http", "scheme": "bearer"}
    for path, item in document["paths"].items():  # every /v1/ route and /mcp asks for the key; nothing else does
        for operation in item.values():
            assert bool(operation["security"]) == (path.startswith("/v1/") or path == "/mcp"), path
            if operation["security"]:
                assert operation["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}


def test_every_op_is_in_the_document_with_the_schema_that_validates_it():
    document = build_document(create_app(_Runtime()))
    schemas = document["components"]["schemas"]
    calls = schemas["ToolCall"]["discriminator"]["mapping"]
    assert set(calls) == set(REGISTRY.names()) | set(DISPATCHER_CALLS) and len(calls) == len(REGISTRY.names()) + len(
        DISPATCHER_CALLS
    )
    assert schemas["OpName"]["enum"] == list(calls)
    tools = [branch["properties"]["name"]["const"] for branch in schemas["McpToolCall"]["oneOf"]]
    assert tools == ["facebook", *META_TOOLS, *REGISTRY.names()]  # admonster_mcp.build_tools("both", toolsets=("all",))
    for spec in REGISTRY.specs():
        documented = schemas[f"args.{spec.name}"]
        declared = REGISTRY.args_schema(spec)  # what help, MCP and the OpenAI tools show: the same properties
        assert set(documented["properties"]) == set(declared["properties"]), spec.name
        assert documented.get("required", []) == declared.get("required", []), spec.name
        assert documented["additionalProperties"] is False  # unknown arguments are refused (OpArgs extra=forbid)
        assert schemas[f"call.{spec.name}"]["properties"]["op"] == {"const": spec.name}
    text = json.dumps(document)
    assert "#/$defs/" not in text  # every nested model is a component
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in schemas, ref


def test_a_route_without_a_description_fails_the_build():
    app = create_app(_Runtime())

    async def extra(request):
        """A route someone forgot to describe."""

    app.router.add_post("/v1/new-thing", extra)
    with pytest.raises(UndocumentedRoute, match="POST /v1/new-thing"):
        build_document(app)
    assert ("POST", "/v1/new-thing") not in OPERATIONS


# ---------------------------------------------------------------------------------------------------------------
# What schemathesis found, fixed at the cause (each also stays covered by the fuzz below)
# ---------------------------------------------------------------------------------------------------------------


def _error_shape(body: dict) -> None:
    import jsonschema

    jsonschema.validate(body, DOCUMENT["components"]["schemas"]["Error"])


def test_a_non_ascii_oauth_state_is_refused_not_a_type_error():
    from fb_utils import ValidationError
    from fi_facebook import read_state, sign_state

    secret = b"k" * 32
    good = sign_state(secret, 7, "nonce", 2_000_000_000)
    assert read_state(secret, good, 1_000_000_000) == (7, "nonce")
    payload, signature = good.split(".")
    for state in (f"{payload}.é{signature[1:]}", f"é{payload[1:]}.{signature}", 'L.\x05嬚;á"', "\udcff.x"):
        with pytest.raises(ValidationError, match="not valid"):  # hmac.compare_digest raised TypeError on non-ASCII
            read_state(secret, state, 1_000_000_000)


async def test_found_by_schemathesis_over_http(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with running_server(tmp_path) as (url, runtime):
        workspace = await runtime.store.ensure_workspace("alpha")
        key = await runtime.store.create_api_key(workspace.id)
        async with aiohttp.ClientSession() as session:
            # a non-ASCII OAuth state: the page says the link is not valid (was a 500 and a traceback)
            async with session.get(
                url + "/oauth/facebook/callback", params={"state": "L.\x05嬚;á", "code": "x"}
            ) as answer:
                assert answer.status == 400 and "not valid" in await answer.text()
            # /mcp's own refusals have the API's error shape (405, 413 had no data)
            auth = {"Authorization": f"Bearer {key}"}
            for method in ("GET", "DELETE"):  # without a session: nothing to stream or end
                async with session.request(method, url + "/mcp", headers=auth) as answer:
                    assert answer.status == 400
                    body = await answer.json()
                    _error_shape(body)
                    assert body["text"] == (
                        f"ERROR validation: {method} /mcp needs the Mcp-Session-Id of an open session. "
                        "Fix: POST an initialize request first and send the Mcp-Session-Id header its "
                        "answer carries."
                    )
            async with session.post(
                url + "/mcp", headers={**auth, "Content-Type": "application/json"}, data=b"[" + b" " * (2 << 20) + b"]"
            ) as answer:
                assert answer.status == 413
                _error_shape(await answer.json())
            # send_events with an event_time no calendar holds: one validation line (was "Internal error": ValueError
            # "year 932898081 is out of range" while writing the refusal)
            async with session.post(url + "/v1/tools/facebook", headers=auth, json={"op": "list_pixels"}) as answer:
                pixel_id = (await answer.json())["data"]["pixels"][0]["id"]
            for event_time, words in (
                (29_440_000_000_000_000, "in the future"),
                (-(10**17), "more than 7 days ago"),
                (1e300, "in the future"),
            ):
                event = {
                    "event_name": "Purchase",
                    "event_time": event_time,
                    "action_source": "website",
                    "event_source_url": "https://shop.example.com/thanks",
                    "user_data": {"em": "jane@example.com", "client_user_agent": "Mozilla/5.0"},
                }
                async with session.post(
                    url + "/v1/tools/facebook",
                    headers=auth,
                    json={"op": "send_events", "args": {"pixel_id": pixel_id, "events": [event]}},
                ) as answer:
                    body = await answer.json()
                    assert answer.status == 200 and not body["ok"] and body["text"].startswith("ERROR validation"), body
                    assert words in body["text"] and "no calendar date" in body["text"], body["text"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# ---------------------------------------------------------------------------------------------------------------
# Schemathesis against the live server
# ---------------------------------------------------------------------------------------------------------------

# Every fuzzed request: (route, op or MCP tool, status, whether the op answered ok), to show the fuzzer got past the
# key and ran ops, and for the figures in docs/security.md.
ANSWERS: list[tuple[str, str | None, int, bool]] = []
RAN: set[tuple[str, str]] = set()  # the (route, op) pairs test_schemathesis_every_op finished
# Bounded for CI (about a minute on one free CPU); ADMONSTER_FUZZ_SCALE=N multiplies every count for a longer run.
SCALE = max(1, int(os.environ.get("ADMONSTER_FUZZ_SCALE", "1")))
MAX_EXAMPLES = 25 * SCALE  # per operation of the document
# The document is generated the same way the server does it (the served one is checked equal below): schemathesis
# draws from it at collection time, before the server runs.
DOCUMENT = build_document(create_app(_Runtime()))
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
LABELS = [f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item]
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    errors = Errors()
    logging.getLogger().addHandler(errors)
    server = ServerThread(tmp_path_factory.mktemp("openapi")).start()
    server.errors = errors
    served = requests.get(server.url + "/openapi.json", timeout=60).json()
    assert {**served, "servers": None} == {**DOCUMENT, "servers": None}
    yield server
    server.stop()
    logging.getLogger().removeHandler(errors)
    if RAN:
        routes = Counter(route for route, *_ in ANSWERS)
        worked = {(route, op) for route, op, _, ok in ANSWERS if ok}
        print(
            f"schemathesis: {len(ANSWERS)} requests {dict(routes)}; ops that answered ok: "
            f"{len({op for _, op in worked})}; statuses {dict(Counter(status for _, _, status, _ in ANSWERS))}"
        )
        for route, name in RAN:  # every op fuzzed was sent as that op, past the key check
            assert any(r == route and op == name and status != 401 for r, op, status, _ in ANSWERS), (route, name)
        if len(RAN) == len(OP_PARAMS):  # the whole run: the fuzzer reached the ops, not only refusals
            assert len({op for route, op in worked if route == "POST /v1/tools/facebook"}) >= 40, worked
            assert len({op for route, op in worked if route == "POST /mcp"}) >= 40, worked


def _check(case, live_api, capfd, key: str) -> None:
    """Send one generated request with the workspace's key; schemathesis' checks (no 5xx; status, content type and
    body as documented), no crash text in the answer, in what the server printed, or in its log."""
    live_api.errors.records.clear()
    headers = {"Authorization": f"Bearer {key}"}  # (a missing or bad key: test_hostile_input, and below)
    case.headers = {**(case.headers or {}), **headers}
    if case.path == "/mcp":
        headers["Accept"] = "application/json, text/event-stream"
    response = case.call(base_url=live_api.url, headers=headers, timeout=60)
    body = case.body if isinstance(case.body, dict) else {}
    op, ok = body.get("op"), False
    if case.path == "/mcp" and isinstance(body.get("params"), dict):
        op = body["params"].get("name")
    try:
        answer = response.json()
        ok = answer.get("ok") is True or (
            isinstance(answer.get("result"), dict) and answer["result"].get("isError") is False
        )
    except ValueError:
        pass
    ANSWERS.append((f"{case.method} {case.path}", op if isinstance(op, str) else None, response.status_code, ok))
    case.validate_response(response, checks=CHECKS)
    for mark in CRASH_MARKS:
        assert mark not in response.text, response.text[:500]
    out, err = capfd.readouterr()
    for mark in CRASH_MARKS:
        assert mark not in out + err, (out + err)[-2000:]
    assert not live_api.errors.records, [
        (r.getMessage(), r.exc_info and repr(r.exc_info[1])) for r in live_api.errors.records
    ]


def _fuzz(schema, operation, examples: tuple[int, int], live_api, capfd, key: str, ids: dict | None = None) -> None:
    """The operation's documented examples (one request each), then `examples` generated requests that fit the
    document (positive; `*_id` arguments often set to one of `ids`) and that do not (negative), each through _check.
    Deterministic (derandomize)."""
    runs = [(strategy, 1) for strategy in schema.get_strategies_from_examples(operation)]
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody")):
        modes = modes[:1]  # nothing to send that the document does not allow
    runs += [(operation.as_strategy(mode), count) for mode, count in zip(modes, examples)]
    if ids:
        strategy, count = runs[-2] if len(modes) == 2 else runs[-1]
        runs.append((st.tuples(strategy, st.integers(0, 2**32)).map(lambda drawn: _with_ids(*drawn, ids)), count))
    for strategy, count in runs:

        @settings(
            max_examples=count, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=strategy)
        def fuzz(case):
            _check(case, live_api, capfd, key)

        fuzz()


@pytest.mark.parametrize("label", LABELS)
def test_schemathesis_every_operation(label, live_api, capfd, fuzz_key):
    method, path = label.split(" ", 1)
    operation = SCHEMA[path][method]
    _fuzz(SCHEMA, operation, (MAX_EXAMPLES, MAX_EXAMPLES // 2), live_api, capfd, fuzz_key)
    if operation.definition.raw.get("security"):  # without the key: 401 and the error shape, as documented
        response = requests.request(method, live_api.url + path.replace("{", "").replace("}", ""), timeout=60)
        assert response.status_code == 401 and response.json()["data"]["error"] == "auth", response.text[:300]


# ---------------------------------------------------------------------------------------------------------------
# Every op, through the tool route and through /mcp: the document narrowed to one op's call, fuzzed the same way
# ---------------------------------------------------------------------------------------------------------------

CALLS = list(DOCUMENT["components"]["schemas"]["ToolCall"]["discriminator"]["mapping"])
# (positive, negative) generated examples per op, besides its declared example
OP_EXAMPLES = {"POST /v1/tools/facebook": (5 * SCALE, 3 * SCALE), "POST /mcp": (2 * SCALE, SCALE)}


def _one_call_document(route: str, name: str) -> dict:
    """The document with only `route`, whose body is one op's call (tool route: call.<op>; /mcp: a tools/call of the
    op's own tool), and the components that needs."""
    method, path = route.split(" ", 1)
    operation = copy.deepcopy(DOCUMENT["paths"][path][method.lower()])
    schemas = DOCUMENT["components"]["schemas"]
    if path == "/mcp":
        body = {
            "type": "object",
            "required": ["jsonrpc", "id", "method", "params"],
            "properties": {
                "jsonrpc": {"const": "2.0"},
                "id": {"type": "integer"},
                "method": {"const": "tools/call"},
                "params": next(t for t in schemas["McpToolCall"]["oneOf"] if t["title"] == name),
            },
        }
    else:
        body = {"$ref": f"#/components/schemas/call.{name}"}
    operation["requestBody"]["content"]["application/json"]["schema"] = body
    needed, todo = set(), component_refs([operation, DOCUMENT["components"]["responses"]])
    while todo:
        ref = todo.pop()
        if ref not in needed:
            needed.add(ref)
            todo |= component_refs(schemas[ref])
    return {
        **DOCUMENT,
        "paths": {path: {method.lower(): operation}},
        "components": {**DOCUMENT["components"], "schemas": {ref: schemas[ref] for ref in needed}},
    }


OP_PARAMS = [
    (route, name)
    for route in OP_EXAMPLES
    for name in CALLS
    if route == "POST /v1/tools/facebook" or REGISTRY.get(name) is not None
]


@pytest.mark.parametrize("route,name", OP_PARAMS)
def test_schemathesis_every_op(route, name, live_api, capfd, fuzz_key):
    method, path = route.split(" ", 1)
    schema = schemathesis.openapi.from_dict(_one_call_document(route, name))
    _fuzz(
        schema, schema[path][method], OP_EXAMPLES[route], live_api, capfd, fuzz_key, _workspace_ids(live_api, fuzz_key)
    )
    RAN.add((route, name))


WORKSPACE = {"key": None, "count": 0}
IDS: dict[str, dict[str, list[str]]] = {}  # API key -> {argument name: ids of that workspace's objects of that kind}
ID_TEXT = re.compile(r"(act_)?[0-9]{1,25}")


def _workspace_ids(live_api, key: str) -> dict[str, list[str]]:
    """Ids of the workspace's own objects by the argument that takes them, from every list_* op that needs no argument
    (the registry says which): an item of `campaigns` is a `campaign_id`, a field `adset_id` an `adset_id`; "*" holds
    them all. The fuzz puts them in generated `*_id` arguments, so calls reach past "not found" into the ops' checks."""
    if key not in IDS:
        found: dict[str, set[str]] = {}

        def add(kind: str, value) -> None:
            if isinstance(value, str) and ID_TEXT.fullmatch(value):
                found.setdefault(kind, set()).add(value)
                found.setdefault("*", set()).add(value)

        def collect(value, kind: str | None = None) -> None:
            if isinstance(value, dict):
                for name, item in value.items():
                    if name == "id" and kind:
                        add(kind, item)
                    elif name.endswith("_id"):
                        add(name, item)
                    items_kind = re.sub(r"(ss)es$|s$", r"\1", name) + "_id" if isinstance(item, list) else None
                    collect(item, items_kind)
            elif isinstance(value, list):
                for item in value:
                    collect(item, kind)

        for spec in REGISTRY.specs():
            if spec.name.startswith("list_") and not REGISTRY.args_schema(spec).get("required"):
                collect(
                    requests.post(
                        live_api.url + "/v1/tools/facebook",
                        json={"op": spec.name},
                        timeout=60,
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    .json()
                    .get("data")
                )
        IDS[key] = {kind: sorted(values) for kind, values in found.items()}
    return IDS[key]


def _with_ids(case, seed: int, ids: dict[str, list[str]]):
    """The case with most of its `*_id` arguments (tool call args, or an MCP tool's arguments) set to a real id of
    that kind (any id where the workspace has none of it)."""
    chooser = random.Random(seed)
    body = case.body if isinstance(case.body, dict) else {}
    args = body.get("args") if "op" in body else (body.get("params") or {}).get("arguments")
    if isinstance(args, dict):
        for name in [name for name in args if name.endswith("_id")]:
            if chooser.random() < 0.8:
                args[name] = chooser.choice(ids.get(name) or ids["*"])
    return case


@pytest.fixture
def fuzz_key(live_api):
    """The API key the fuzz tests use: the same workspace from test to test, a new one once an op (disconnect) left it
    without Facebook, so the ops after it are fuzzed connected, as a person would call them."""
    if WORKSPACE["key"] is None:
        WORKSPACE["count"] += 1
        WORKSPACE["key"] = live_api.new_key(f"fuzz-{WORKSPACE['count']}")
    yield WORKSPACE["key"]
    answer = requests.post(
        live_api.url + "/v1/tools/facebook",
        json={"op": "token_status"},
        timeout=60,
        headers={"Authorization": f"Bearer {WORKSPACE['key']}"},
    ).json()
    if not (answer["data"] or {}).get("connected"):
        WORKSPACE["key"] = None

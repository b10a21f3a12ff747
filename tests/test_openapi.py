"""`GET /openapi.json` describes the whole HTTP API (issue 18, item 3), and schemathesis fuzzes every operation it
describes against a real `admonster serve` (sandbox mode, a workspace with an API key): no 5xx, every answer as the
document says (status, content type, body schema), no "Internal error" or traceback in any answer or in the log."""
from __future__ import annotations

import copy
import json
import logging
import time
from collections import Counter

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from openapi_spec_validator import validate

from admonster_openapi import OPERATIONS, UndocumentedRoute, _refs, app_routes, build_document
from admonster_server import create_app
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
    assert set(calls) == set(REGISTRY.names()) | set(DISPATCHER_CALLS) and len(calls) == len(REGISTRY.names()) + 3
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
# Schemathesis against the live server
# ---------------------------------------------------------------------------------------------------------------

TEXTS = []
ANSWERS: list[tuple[str, str, int, float]] = []  # (operation, op, status, seconds) of every fuzzed request
MAX_EXAMPLES = 40
# The document is generated the same way the server does it (the served one is checked equal below): schemathesis
# draws from it at collection time, before the server runs.
DOCUMENT = build_document(create_app(_Runtime()))
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
LABELS = [f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item]


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


def _check(case, live_api, capfd, key: str) -> None:
    live_api.errors.records.clear()
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}  # (a missing or bad key: test_hostile_input)
    headers = {"Authorization": f"Bearer {key}"}
    if case.path == "/mcp":
        headers["Accept"] = "application/json, text/event-stream"
    started = time.monotonic()
    response = case.call(base_url=live_api.url, headers=headers, timeout=60)
    seconds = time.monotonic() - started
    op = case.body.get("op") if isinstance(case.body, dict) else None
    if case.path == "/mcp" and isinstance(case.body, dict) and isinstance(case.body.get("params"), dict):
        op = case.body["params"].get("name")
    ANSWERS.append((f"{case.method} {case.path}", str(op), response.status_code, seconds))
    try:
        j = response.json()
        TEXTS.append((str(op), j.get("ok"), (j.get("text") or str(j.get("result", j.get("error"))))[:90]))
    except Exception:
        pass
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error,
                                             schemathesis.checks.status_code_conformance,
                                             schemathesis.checks.content_type_conformance,
                                             schemathesis.checks.response_schema_conformance])
    for mark in CRASH_MARKS:
        assert mark not in response.text, response.text[:500]
    out, err = capfd.readouterr()
    for mark in CRASH_MARKS:
        assert mark not in out + err, (out + err)[-2000:]
    assert not live_api.errors.records, [(r.getMessage(), r.exc_info and repr(r.exc_info[1])) for r in live_api.errors.records]


@pytest.mark.parametrize("label", LABELS)
def test_schemathesis_every_operation(label, live_api, capfd, fuzz_key):
    key = fuzz_key
    method, path = label.split(" ", 1)
    operation = SCHEMA[path][method]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case):
        _check(case, live_api, capfd, key)

    fuzz()


# ---------------------------------------------------------------------------------------------------------------
# Every op, through the tool route and through /mcp: the document narrowed to one op's call, fuzzed the same way
# ---------------------------------------------------------------------------------------------------------------

CALLS = list(DOCUMENT["components"]["schemas"]["ToolCall"]["discriminator"]["mapping"])
OP_EXAMPLES = {"POST /v1/tools/facebook": (8, 4), "POST /mcp": (3, 2)}  # (positive, negative) examples per op


def _one_call_document(route: str, name: str) -> dict:
    """The document with only `route`, whose body is one op's call (tool route: call.<op>; /mcp: a tools/call of the
    op's own tool), and the components that needs."""
    method, path = route.split(" ", 1)
    operation = copy.deepcopy(DOCUMENT["paths"][path][method.lower()])
    schemas = DOCUMENT["components"]["schemas"]
    if path == "/mcp":
        body = {"type": "object", "required": ["jsonrpc", "id", "method", "params"],
                "properties": {"jsonrpc": {"const": "2.0"}, "id": {"type": "integer"}, "method": {"const": "tools/call"},
                               "params": next(t for t in schemas["McpToolCall"]["oneOf"] if t["title"] == name)}}
    else:
        body = {"$ref": f"#/components/schemas/call.{name}"}
    operation["requestBody"]["content"]["application/json"]["schema"] = body
    needed, todo = set(), _refs([operation, DOCUMENT["components"]["responses"]])
    while todo:
        ref = todo.pop()
        if ref not in needed:
            needed.add(ref)
            todo |= _refs(schemas[ref])
    return {**DOCUMENT, "paths": {path: {method.lower(): operation}},
            "components": {**DOCUMENT["components"], "schemas": {ref: schemas[ref] for ref in needed}}}


@pytest.mark.parametrize("route,name", [(route, name) for route in OP_EXAMPLES for name in CALLS
                                        if route == "POST /v1/tools/facebook" or REGISTRY.get(name) is not None])
def test_schemathesis_every_op(route, name, live_api, capfd, fuzz_key):
    key = fuzz_key
    method, path = route.split(" ", 1)
    schema = schemathesis.openapi.from_dict(_one_call_document(route, name))
    operation = schema[path][method]
    # the op's declared example (and its arguments' examples and defaults), then generated calls that fit the schema
    # and calls that do not
    runs = [(strategy, 1) for strategy in schema.get_strategies_from_examples(operation)]
    runs += [(operation.as_strategy(mode), examples)
             for mode, examples in zip((GenerationMode.POSITIVE, GenerationMode.NEGATIVE), OP_EXAMPLES[route])]
    for strategy, examples in runs:
        @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def fuzz(case):
            _check(case, live_api, capfd, key)

        fuzz()


WORKSPACE = {"key": None, "count": 0}


@pytest.fixture
def fuzz_key(live_api):
    """The API key the fuzz tests use: the same workspace from test to test, a new one once an op (disconnect) left it
    without Facebook, so the ops after it are fuzzed connected, as a person would call them."""
    if WORKSPACE["key"] is None:
        WORKSPACE["count"] += 1
        WORKSPACE["key"] = live_api.new_key(f"fuzz-{WORKSPACE['count']}")
    yield WORKSPACE["key"]
    answer = requests.post(live_api.url + "/v1/tools/facebook", json={"op": "token_status"}, timeout=60,
                           headers={"Authorization": f"Bearer {WORKSPACE['key']}"}).json()
    if not (answer["data"] or {}).get("connected"):
        WORKSPACE["key"] = None


def test_zz_report():
    counts = Counter((a, s) for a, _, s, _ in ANSWERS)
    print(sorted(counts.items()))
    slow = sorted(ANSWERS, key=lambda a: -a[3])[:25]
    print(slow)
    print(len(ANSWERS), len({o for _, o, _, _ in ANSWERS}))
    print("WORKSPACES", WORKSPACE["count"])
    print("OKS", Counter(ok for _, ok, _ in TEXTS))
    print("OKOPS", sorted({o for o, ok, _ in TEXTS if ok}))
    for t, n in Counter(t[:50] for _, ok, t in TEXTS if not ok).most_common(40): print(n, t)

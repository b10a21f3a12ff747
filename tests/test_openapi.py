"""`GET /openapi.json` describes the whole HTTP API (issue 18, item 3), and schemathesis fuzzes every operation it
describes against a real `admonster serve` (sandbox mode, a workspace with an API key): no 5xx, every answer as the
document says (status, content type, body schema), no "Internal error" or traceback in any answer or in the log."""
from __future__ import annotations

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

from admonster_openapi import OPERATIONS, UndocumentedRoute, app_routes, build_document
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


def _check(case, live_api, capfd) -> None:
    live_api.errors.records.clear()
    headers = {"Authorization": f"Bearer {live_api.key}"}
    if case.path == "/mcp":
        headers["Accept"] = "application/json, text/event-stream"
    started = time.monotonic()
    response = case.call(base_url=live_api.url, headers=headers, timeout=60)
    seconds = time.monotonic() - started
    op = case.body.get("op") if isinstance(case.body, dict) else None
    ANSWERS.append((f"{case.method} {case.path}", str(op), response.status_code, seconds))
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
def test_schemathesis_every_operation(label, live_api, capfd):
    method, path = label.split(" ", 1)
    operation = SCHEMA[path][method]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case):
        _check(case, live_api, capfd)

    fuzz()


def test_zz_report():
    counts = Counter((a, s) for a, _, s, _ in ANSWERS)
    print(sorted(counts.items()))
    slow = sorted(ANSWERS, key=lambda a: -a[3])[:15]
    print(slow)
    print(len(ANSWERS), len({o for _, o, _, _ in ANSWERS}))

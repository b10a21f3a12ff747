"""Hostile input never crashes Ad Monster (issue 18, item 3): every interface answers one clear line, never a
traceback, an HTTP 500 or "Internal error".

Explicit regressions for each input measured by the fuzzer of issue 18 (JSON 20k-50k deep, top-level "self" /
"interface" keys, ids above 2^63, a 5,000-character thread id, non-UTF-8 bytes in Authorization, a backslash
URL, a busy port for `admonster sandbox`), then Hypothesis fuzz tests of the HTTP routes (against a real
`admonster serve`) and of the slash-command parser. The fuzz tests are deterministic (derandomize=True) and bounded.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admonster_chat import SlashSyntaxError, parse_slash, slash_to_call
from fb_utils import MAX_JSON_DEPTH, ValidationError, load_json_bounded
from fi_facebook import REGISTRY, validate_args
from testkit import SANDBOX_START_ENV, Errors, ServerThread, running_server

ROOT = Path(__file__).resolve().parent.parent
DEEP = "[" * 50_000 + "]" * 50_000
BIG_ID = 2**63  # one past SQLite's int64
BAD_URL = "http://example.com\\@127.0.0.1:1/a.png"
CRASH_MARKS = ("Traceback", "Internal error", "RecursionError", "OverflowError", "TypeError")


def _no_crash_text(text: str) -> None:
    for mark in CRASH_MARKS:
        assert mark not in text, text[:500]


def _no_crash_logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture) -> None:
    out, err = capfd.readouterr()
    _no_crash_text(out + err)
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert record.levelno < logging.ERROR or "crash" not in record.getMessage(), record.getMessage()


# ---------------------------------------------------------------------------------------------------------------
# The shared guard
# ---------------------------------------------------------------------------------------------------------------


def test_the_guard_bounds_depth_size_numbers_and_encoding():
    assert load_json_bounded('{"a": [1, {"b": "[[[[["}]}') == {"a": [1, {"b": "[[[[["}]}
    assert load_json_bounded("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    cases = [
        (DEEP, "levels deep", 400),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "levels deep", 400),
        ("x" * (1 << 20 + 1), "byte limit", 413),
        (b"\xff\xfe{}", "not UTF-8", 400),
        (json.dumps({"audit_id": BIG_ID}), "out of range", 400),
        ('{"a": NaN}', "not valid JSON", 400),
        ("1" * 5000, "not valid JSON", 400),
        ("{", "not valid JSON", 400),
    ]
    for text, fragment, status in cases:
        with pytest.raises(ValidationError, match=fragment) as caught:
            load_json_bounded(text)
        assert caught.value.http_status == status and "\n" not in caught.value.to_text()


# ---------------------------------------------------------------------------------------------------------------
# Each measured input, over real HTTP
# ---------------------------------------------------------------------------------------------------------------


async def _raw(url: str, request: bytes) -> tuple[int, str]:
    """One raw HTTP/1.1 exchange (for header bytes no client library sends)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = (await asyncio.wait_for(reader.read(), 30)).decode("utf-8", "replace")
    writer.close()
    return int(answer.split(" ", 2)[1]), answer


async def test_every_measured_input_answers_one_line_over_http(tmp_path, caplog, capfd):
    caplog.set_level(logging.INFO)
    async with running_server(tmp_path) as (url, runtime):
        workspace = await runtime.store.ensure_workspace("alpha")
        key = await runtime.store.create_api_key(workspace.id)
        auth = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession(headers=auth) as session:

            async def post(path: str, body: bytes | dict) -> tuple[int, dict]:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                async with session.post(url + path, data=data, headers={"Content-Type": "application/json"}) as resp:
                    return resp.status, await resp.json(content_type=None)

            # JSON nested 20k-50k deep: the body, a string of args, a chat body, an MCP body
            for depth in (20_000, 50_000):
                status, body = await post("/v1/tools/facebook", ("[" * depth + "]" * depth).encode())
                assert status == 400 and "levels deep" in body["text"] and "Fix:" in body["text"], body
            status, body = await post("/v1/tools/facebook", {"op": "list_campaigns", "args": DEEP})
            assert status == 200 and not body["ok"] and "levels deep" in body["text"], body
            status, body = await post("/v1/tools/facebook", ('{"op": "list_campaigns", "args": ' + DEEP + "}").encode())
            assert status == 400 and "levels deep" in body["text"]
            status, body = await post("/v1/chat", ('{"thread_id": "t1", "message": ' + DEEP + "}").encode())
            assert status == 400 and "levels deep" in body["text"]
            status, body = await post(
                "/v1/chat", {"thread_id": "t1", "message": "/tool list_campaigns " + "[" * 15_000}
            )
            assert status == 200 and not body["ok"] and "levels deep" in body["reply"], body
            status, body = await post(
                "/v1/chat", {"thread_id": "t1", "message": "/list_campaigns status=" + "[" * 15_000}
            )
            assert status == 200 and not body["ok"] and "levels deep" in body["reply"], body
            async with session.post(
                url + "/mcp",
                data=DEEP.encode(),
                headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
            ) as resp:
                error = (await resp.json())["error"]  # a JSON-RPC parse error carrying our one line
                assert resp.status == 400 and error["code"] == -32700 and "levels deep" in error["message"]
            # over the body limit: 413 with one line
            status, body = await post("/v1/tools/facebook", b'{"op": "help", "args": "' + b"x" * (1 << 20) + b'"}')
            assert status == 413 and body["text"].startswith("ERROR validation") and "limit" in body["text"]

            # a top-level "self" or "interface" key: an unknown argument named, never a TypeError
            for extra in ("self", "interface", "top_level", "op_", "1"):
                status, body = await post("/v1/tools/facebook", {"op": "list_campaigns", extra: 1})
                assert status == 200 and not body["ok"] and f"unknown argument {extra!r}" in body["text"], body

            # ids above 2^63 in undo / get_launch / experiment_status, as JSON numbers and as chat words
            for op, field in (
                ("undo", "audit_id"),
                ("get_launch", "launch_id"),
                ("experiment_status", "experiment_id"),
                ("reconcile", "audit_id"),
            ):
                for value in (BIG_ID, 2**64 + 7, -BIG_ID - 1, str(BIG_ID)):
                    status, body = await post("/v1/tools/facebook", {"op": op, "args": {field: value}})
                    # a JSON number is refused with the body (400), a string by the op's validation (200, ok false)
                    assert status in (200, 400) and not body["ok"] and body["text"].startswith("ERROR validation"), body
                    assert value in (-BIG_ID - 1,) or "out of range" in body["text"], body
            for line in (f"/undo {BIG_ID}", f"/experiment {2**70}", f"/get_launch {BIG_ID}", f"/reconcile {BIG_ID}"):
                status, body = await post("/v1/chat", {"thread_id": "t1", "message": line})
                assert status == 200 and not body["ok"] and "out of range" in body["reply"], (line, body)

            # a 5,000-character thread id, in the chat body and in the thread route; odd characters too
            for thread in ("t" * 5000, "a/b", "tab\there", "x\u0000y", ""):
                status, body = await post("/v1/chat", {"thread_id": thread, "message": "/status"})
                assert status == 400 and "thread_id" in body["text"], body
            for thread in ("t" * 5000, "%00", "a%0Ab"):
                async with session.get(f"{url}/v1/threads/{thread}") as resp:
                    assert resp.status == 400 and "thread_id" in (await resp.json())["text"]

            # the backslash / userinfo URL as an image source: one validation line
            for source in (
                BAD_URL,
                "http://user:pw@127.0.0.1:1/a.png",
                "http://[::1/a.png",
                "http://example.com:99999/a.png",
            ):
                status, body = await post(
                    "/v1/tools/facebook", {"op": "upload_image", "args": {"source": source, "ad_account_id": "act_1"}}
                )
                assert status == 200 and not body["ok"] and body["text"].startswith("ERROR validation"), (source, body)

        # non-UTF-8 bytes in Authorization: 401 with one line, on /v1/ and on /mcp
        for path in ("/v1/tools/facebook", "/mcp"):
            status, answer = await _raw(
                url,
                b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Authorization: Bearer amk_\xff\xfe\xc3\x28\r\nContent-Type: application/json\r\n"
                b'Content-Length: 15\r\n\r\n{"op": "help"}',
            )
            assert status == 401 and "ERROR auth" in answer, answer
    _no_crash_logs(caplog, capfd)


# ---------------------------------------------------------------------------------------------------------------
# The terminal: piped chat, `admonster call`, `admonster sandbox` on a busy port
# ---------------------------------------------------------------------------------------------------------------


def _env(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        **SANDBOX_START_ENV,
        "ADMONSTER_HOME": str(home),
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "400",
    }
    for key in ("ADMONSTER_GRAPH_URL", "ADMONSTER_ACCESS_TOKEN", "ADMONSTER_LLM_BASE_URL", "ADMONSTER_LLM_MODEL"):
        env.pop(key, None)
    return env


def test_piped_chat_and_cli_answer_bad_lines_with_one_error_line(tmp_path):
    lines = [
        "/tool list_campaigns " + DEEP,
        '/tool list_campaigns {"self": 1}',
        f"/undo {BIG_ID}",
        f"/experiment {2**70}",
        f'/tool get_launch {{"launch_id": {2**64}}}',
        f'/tool upload_image {{"source": {json.dumps(BAD_URL)}}}',
        "/campaigns " + "[" * 10_000,
        "/status",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "admonster_bot", "chat"],
        input="\n".join(lines) + "\n",
        text=True,
        capture_output=True,
        cwd=ROOT,
        env=_env(tmp_path),
        timeout=120,
    )
    _no_crash_text(result.stdout + result.stderr)
    assert result.returncode == 1, result.stderr[-2000:]  # piped lines failed: exit status 1, after answering them all
    assert result.stdout.count("ERROR validation") >= len(lines) - 1, result.stdout[-3000:]
    assert "Demo Store" in result.stdout  # the chat went on to the last line
    for args in (DEEP[:20_000], json.dumps({"audit_id": BIG_ID}), '{"a": NaN}'):
        call = subprocess.run(
            [sys.executable, "-m", "admonster_bot", "call", "undo", args],
            text=True,
            capture_output=True,
            cwd=ROOT,
            env=_env(tmp_path),
            timeout=120,
        )
        _no_crash_text(call.stdout + call.stderr)
        assert call.returncode == 1 and "ERROR validation" in call.stdout + call.stderr


def test_sandbox_on_a_busy_port_says_so_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for command in (["admonster_bot", "sandbox"], ["fb_sandbox"]):
            result = subprocess.run(
                [sys.executable, "-m", *command, "--port", str(port), "--db", ":memory:"],
                text=True,
                capture_output=True,
                cwd=ROOT,
                env=_env(tmp_path),
                timeout=60,
            )
            assert result.returncode != 0
            _no_crash_text(result.stdout + result.stderr)
            assert f"port {port} is in use: choose another with --port" in result.stderr, result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# ---------------------------------------------------------------------------------------------------------------
# Fuzz: the slash-command parser
# ---------------------------------------------------------------------------------------------------------------

COMMAND_NAMES = sorted(
    {"tool", "help", "undo", "experiment", "budget", "campaigns", "status", "use", "pause"} | set(REGISTRY.names())
)
WORDS = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(
        [
            "[" * 200,
            "{" * 200,
            "[]",
            "{}",
            "null",
            "true",
            "NaN",
            "Infinity",
            "1e999",
            '"',
            "'",
            "\\",
            "a=b",
            "limit=1e400",
            "dry_run=true",
            BAD_URL,
            "x" * 5000,
        ]
    ),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=10,
    ).map(json.dumps),
)


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    command=st.sampled_from(COMMAND_NAMES),
    words=st.lists(WORDS, max_size=4),
    option=st.tuples(st.sampled_from(["limit", "status", "audit_id", "x", "dry_run"]), WORDS),
)
def test_fuzz_slash_parser_never_raises_anything_but_a_one_line_error(command, words, option):
    line = "/" + " ".join([command, *[json.dumps(w) if " " in w else w for w in words], f"{option[0]}={option[1]}"])
    try:
        op, args = slash_to_call(parse_slash(line), REGISTRY)
    except SlashSyntaxError as error:
        assert "\n" not in str(error) and "Traceback" not in str(error)
        return
    assert isinstance(op, str) and isinstance(args, dict)
    spec = REGISTRY.get(op)
    if spec is not None:
        try:
            validate_args(spec, dict(args))
        except ValidationError as error:
            assert "\n" not in error.to_text()


# ---------------------------------------------------------------------------------------------------------------
# Fuzz: the HTTP routes of a real `admonster serve`
# ---------------------------------------------------------------------------------------------------------------


FUZZ_ANSWERS: list[tuple[str, int]] = []  # (path, status) of every fuzzed request, to show the fuzzer reached the ops


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    errors = Errors()
    logging.getLogger().addHandler(errors)
    server = ServerThread(tmp_path_factory.mktemp("fuzz")).start()
    server.errors = errors
    yield server
    server.stop()
    logging.getLogger().removeHandler(errors)
    if FUZZ_ANSWERS:  # the fuzzer got past the key check and ran ops, not only 401s and 404s
        from collections import Counter

        counts = Counter(FUZZ_ANSWERS)
        print("fuzzed answers:", sorted(counts.items()))
        assert counts["/v1/tools/facebook", 200] >= 30 and counts["/v1/chat", 200] >= 10, counts


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)
# Reads and refused writes only: a fuzzer creating campaigns would only slow the test down.
FUZZ_OPS = st.sampled_from(
    [
        "help",
        "list_campaigns",
        "get_campaign",
        "undo",
        "get_launch",
        "experiment_status",
        "upload_image",
        "reconcile",
        "audit_log",
        "update_campaign",
        "nope",
        "",
        "/undo",
        "HELP",
    ]
)
TOOL_BODIES = st.fixed_dictionaries(
    {"op": FUZZ_OPS | st.text(max_size=10) | JSON_VALUES},
    optional={
        "args": st.dictionaries(
            st.sampled_from(
                [
                    "limit",
                    "audit_id",
                    "launch_id",
                    "experiment_id",
                    "campaign_id",
                    "source",
                    "self",
                    "interface",
                    "args",
                    "dry_run",
                    "confirm",
                ]
            ),
            JSON_VALUES,
            max_size=4,
        )
        | JSON_VALUES
        | st.just(DEEP),
        "self": JSON_VALUES,
        "interface": JSON_VALUES,
        "top_level": JSON_VALUES,
    },
)
CHAT_LINES = st.sampled_from(
    [
        "/status",
        "/help",
        f"/undo {BIG_ID}",
        '/tool undo {"audit_id": 1e999}',
        "hello",
        "/experiment " + "9" * 40,
        "/tool " + "[" * 5000,
        "/budget x y z",
        '/tool help "',
        "/use act_1",
    ]
)
CHAT_BODIES = st.fixed_dictionaries(
    {
        "thread_id": st.one_of(
            st.just("t1"),
            st.just("t1"),
            st.just("t1"),
            st.sampled_from(["t" * 5000, "a/b", "", " "]),
            st.text(max_size=120),
            JSON_VALUES,
        ),
        "message": st.one_of(CHAT_LINES, CHAT_LINES, st.text(min_size=1, max_size=40), JSON_VALUES),
    }
)
BODIES = st.fixed_dictionaries(
    {
        "thread_id": st.sampled_from(["t1"] * 6 + ["t" * 5000, "a/b", "", " "]) | st.text(max_size=120) | JSON_VALUES,
        "message": st.sampled_from(
            [
                "/status",
                "/help",
                f"/undo {BIG_ID}",
                '/tool undo {"audit_id": 1e999}',
                "/experiment " + "9" * 40,
                "/tool " + "[" * 5000,
            ]
        )
        | st.text(max_size=40)
        | JSON_VALUES,
    }
)
BODIES = st.one_of(
    TOOL_BODIES.map(json.dumps),
    CHAT_BODIES.map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.integers(min_value=1, max_value=60_000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=1, max_value=30_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.text(max_size=200),
).map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(max_size=200)
PATHS = st.sampled_from(
    ["/v1/tools/facebook"] * 4
    + ["/v1/chat"] * 3
    + ["/mcp"] * 2
    + [
        "/v1/threads/t1",
        "/v1/threads/" + "t" * 5000,
        "/v1/files/abc/x.png",
        "/healthz",
        "/",
        "/console",
        "/console/static/console.js",
        "/console/static/..%2f..%2fsecret.key",
        "/oauth/facebook/callback?state=x&code=y",
        "/v1/",
        "/v1/threads/%00",
        "/nope",
    ]
) | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60).map(
    lambda p: "/" + p.replace("#", "")
)
AUTH = st.sampled_from(
    ["valid"] * 12 + ["none", "Bearer ", "Bearer amk_nope", "Basic xyz", "Bearer " + "k" * 5000]
) | st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b and b"\x00" not in b)


def _send(
    server: ServerThread,
    capfd: pytest.CaptureFixture,
    method: str,
    path: str,
    auth: str | bytes,
    body: bytes,
    content_type: str,
) -> None:
    """One request with raw control over its bytes; asserts no 500, no crash text in the answer or in the server's log."""
    server.errors.records.clear()
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=60)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        if auth == "valid":
            connection.putheader("Authorization", f"Bearer {server.key}")
        elif isinstance(auth, bytes):
            connection.putheader("Authorization", b"Bearer " + auth)
        elif auth != "none":
            connection.putheader("Authorization", auth)
        if content_type:
            connection.putheader("Content-Type", content_type)
        if path == "/mcp":
            connection.putheader("Accept", "application/json, text/event-stream")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        answer = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    assert response.status < 500, (response.status, answer[:500])
    _no_crash_text(answer)
    out, err = capfd.readouterr()  # what the server printed or logged while answering
    _no_crash_text(out + err)
    assert not server.errors.records, [
        (r.getMessage(), r.exc_info and repr(r.exc_info[1])) for r in server.errors.records
    ]
    FUZZ_ANSWERS.append((path[:40], response.status))


def _encoded(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return strategy.map(lambda text: text.encode("utf-8", "surrogatepass"))


HOSTILE_BODIES = _encoded(
    st.one_of(
        st.integers(min_value=1, max_value=60_000).map(lambda n: "[" * n + "]" * n),
        st.integers(min_value=1, max_value=30_000).map(lambda n: '{"op": "help", "args": ' * n + "1" + "}" * n),
        st.text(max_size=100),
    )
) | st.binary(max_size=100)
API_REQUESTS = st.one_of(
    st.tuples(st.just("/v1/tools/facebook"), _encoded(TOOL_BODIES.map(json.dumps))),
    st.tuples(st.just("/v1/tools/facebook"), _encoded(TOOL_BODIES.map(json.dumps))),
    st.tuples(st.just("/v1/chat"), _encoded(CHAT_BODIES.map(json.dumps))),
    st.tuples(st.just("/v1/chat"), _encoded(CHAT_BODIES.map(json.dumps))),
    st.tuples(st.sampled_from(["/v1/tools/facebook", "/v1/chat", "/mcp"]), HOSTILE_BODIES),
)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=API_REQUESTS)
def test_fuzz_api_bodies_never_answer_500_or_a_traceback(fuzz_server, capfd, request):
    """Signed-in requests with fuzzed JSON (ops, args, stray keys, thread ids, chat lines, deep nesting, bytes)."""
    path, body = request
    _send(fuzz_server, capfd, "POST", path, "valid", body, "application/json")


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]),
    path=PATHS,
    auth=AUTH,
    body=BODIES,
    content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1", ""]),
)
def test_fuzz_http_routes_never_answer_500_or_a_traceback(fuzz_server, capfd, method, path, auth, body, content_type):
    """Any method, path, Authorization header (raw bytes too), content type and body."""
    _send(fuzz_server, capfd, method, path, auth, body, content_type)


def test_llm_tool_arguments_are_bounded_too():
    from admonster_llm import parse_tool_arguments

    for raw in (DEEP, "{" * 100 + "}" * 100, "x" * ((1 << 20) + 1)):
        parsed, problem = parse_tool_arguments(raw)
        assert parsed == {} and problem.startswith("ERROR validation") and "\n" not in problem
    for raw in ("1" * 5000, '{"op": NaN'):
        parsed, problem = parse_tool_arguments(raw)
        assert parsed == {} and problem.startswith("ERROR validation: the tool call's arguments are not valid JSON")
    assert parse_tool_arguments('{"op": "help", "self": 1}') == ({"op": "help", "self": 1}, None)


def test_stdio_mcp_survives_a_deep_line_and_checks_the_next_call(tmp_path):
    """`admonster mcp` (stdio): the SDK parses each line itself; a 50k-deep line crashes nothing (no answer, no
    traceback) and the next call's stray key and out-of-range id are one validation line."""
    lines = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        DEEP,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "facebook", "arguments": {"op": "undo", "args": {"audit_id": 1}, "self": 1}},
        },
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "undo", "arguments": {"audit_id": 2**64}},
        },
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    process = subprocess.Popen(
        [sys.executable, "-m", "admonster_bot", "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(tmp_path),
    )
    watchdog = threading.Timer(120, process.kill)  # a missing answer fails the test instead of hanging it
    watchdog.start()
    try:
        process.stdin.write(text)
        process.stdin.flush()
        answers: dict[int, dict] = {}
        while len(answers) < 3:  # stdin stays open until the answers are in (closing it ends the session)
            line = process.stdout.readline()
            assert line, process.stderr.read()[-2000:]
            answer = json.loads(line)
            answers[answer.get("id")] = answer
        process.stdin.close()
        err = process.stderr.read()
        process.wait(60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
    _no_crash_text(err)
    assert "unknown argument 'self'" in answers[2]["result"]["content"][0]["text"]
    assert answers[3]["result"]["isError"] and answers[3]["result"]["content"][0]["text"].startswith("ERROR validation")

"""The LLM chat loop against a scripted fake OpenAI-compatible server (real HTTP, real openai client), with the real
runtime and the embedded sandbox: multi-step plans with real effects, errors fed back, the confirmation flow, the
round limit, malformed tool arguments, shortened results, thread history and its isolation, LLM failures, and
`admonster chat` streaming the model's text."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from admonster_llm import ChatLoop, LLMClient, bounded_history, load_system_prompt, parse_tool_arguments, shorten
from admonster_runtime import open_runtime
from testkit import SANDBOX_START_ENV, sandbox_settings

ROOT = Path(__file__).resolve().parent.parent
Step = dict[str, Any] | Callable[[list[dict[str, Any]]], dict[str, Any]]


# ---------------------------------------------------------------------------------------------------------------
# The scripted fake model
# ---------------------------------------------------------------------------------------------------------------


def call(op: str, args: dict | None = None, raw: str | None = None) -> dict[str, Any]:
    """A step: the model calls the facebook tool (raw: the exact arguments string, even broken JSON)."""
    return {"tool_calls": [raw if raw is not None else json.dumps({"op": op, "args": args or {}})]}


def say(text: str) -> dict[str, Any]:
    return {"text": text}


class FakeModel:
    """POST /v1/chat/completions answering planned steps; SSE when stream=true (unless streaming is off)."""

    def __init__(self, script: list[Step] | None = None, *, streaming: bool = True) -> None:
        self.script: list[Step] = list(script or [])
        self.streaming = streaming
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None  # answer every request with this HTTP status
        self.runner: web.AppRunner | None = None
        self.url = ""

    def plan(self, *steps: Step) -> None:
        self.script.extend(steps)

    async def start(self) -> FakeModel:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def tool_messages(self, request: int) -> list[str]:
        return [m["content"] for m in self.requests[request]["messages"] if m["role"] == "tool"]

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.fail_with:
            message = {401: "Incorrect API key provided", 404: f"model '{body.get('model')}' not found"}.get(
                self.fail_with, "boom"
            )
            return web.json_response({"error": {"message": message, "type": "error"}}, status=self.fail_with)
        if not self.script:
            return web.json_response({"error": {"message": "the fake model has no step left"}}, status=500)
        step = self.script.pop(0)
        if callable(step):
            step = step(body["messages"])
        if step.get("status"):
            return web.json_response({"error": {"message": "scripted failure"}}, status=step["status"])
        n = len(self.requests)
        calls = [
            {"id": f"call_{n}_{i}", "type": "function", "function": {"name": "facebook", "arguments": arguments}}
            for i, arguments in enumerate(step.get("tool_calls", []))
        ]
        text = step.get("text", "")
        if body.get("stream") and self.streaming:
            return await self._sse(request, text, calls)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return web.json_response(
            {
                "id": f"cmpl-{n}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            }
        )

    async def _sse(self, request: web.Request, text: str, calls: list[dict[str, Any]]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": "cmpl",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        for word in re.findall(r"\S+\s*", text):  # the text in several fragments, as real servers stream it
            await send({"content": word})
        for index, tool_call in enumerate(calls):  # the id and name first, then the arguments in pieces
            await send(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": tool_call["id"],
                            "type": "function",
                            "function": {"name": "facebook", "arguments": ""},
                        }
                    ]
                }
            )
            arguments = tool_call["function"]["arguments"]
            for start in range(0, len(arguments), 7):
                await send({"tool_calls": [{"index": index, "function": {"arguments": arguments[start : start + 7]}}]})
        await send({}, "tool_calls" if calls else "stop")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


@pytest.fixture
async def model():
    fake = await FakeModel().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def runtime(tmp_path, model):
    settings = sandbox_settings(tmp_path, llm_base_url=model.url, llm_model="fake-model", llm_api_key=None)
    async with open_runtime(settings) as opened:
        yield opened


_CLIENTS: list[LLMClient] = []


@pytest.fixture(autouse=True)
async def _close_clients():
    yield
    while _CLIENTS:
        await _CLIENTS.pop().close()


def make_loop(runtime, model_or_url: FakeModel | str, **options) -> ChatLoop:
    url = model_or_url.url if isinstance(model_or_url, FakeModel) else model_or_url
    client = LLMClient(url, "fake-model", max_retries=0, timeout=20)
    _CLIENTS.append(client)
    return ChatLoop(runtime.facebook_for, runtime.store, client, **options)


def last_tool(messages: list[dict[str, Any]]) -> str:
    return [m for m in messages if m["role"] == "tool"][-1]["content"]


def undo_hint(text: str) -> str:
    return re.search(r"/undo \d+", text).group(0)


def ids_with_status(text: str, status: str) -> list[str]:
    return re.findall(rf"(\d{{6,}}) · [^·\n]+ · {status}", text)


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------


async def test_multi_step_plan_with_real_effects(runtime, model):
    workspace = await runtime.workspace("default")
    loop = make_loop(runtime, model)
    picked: dict[str, str] = {}

    def pause_first_active(messages):
        picked["id"] = ids_with_status(last_tool(messages), "ACTIVE")[0]
        return call("pause_campaign", {"campaign_id": picked["id"]})

    model.plan(
        call("account_overview"),
        call("list_campaigns", {"status": ["ACTIVE"]}),
        pause_first_active,
        lambda messages: say(f"Done: I paused campaign {picked['id']}. Undo with {undo_hint(last_tool(messages))}."),
    )
    fragments: list[str] = []
    turn = await loop.reply(workspace, "plan", "Pause my first active campaign", on_text=fragments.append)

    assert turn.ok and turn.rounds == 3
    assert [(r.name, r.ok) for r in turn.tool_calls] == [
        ("account_overview", True),
        ("list_campaigns", True),
        ("pause_campaign", True),
    ]
    assert turn.text.startswith(f"Done: I paused campaign {picked['id']}") and "/undo" in turn.text
    assert len(fragments) > 3 and "".join(fragments) == turn.text  # streamed in pieces
    # The model saw each result before its next step, and the system prompt and the tool schema.
    assert len(model.requests) == 4
    first = model.requests[0]
    assert first["messages"][0]["role"] == "system" and "Ad Monster" in first["messages"][0]["content"]
    assert first["tools"][0]["function"]["name"] == "facebook" and first["tool_choice"] == "auto" and first["stream"]
    assert "Demo Store (USD)" in model.tool_messages(1)[0]
    assert picked["id"] in model.tool_messages(2)[1]
    assert "ACTIVE → PAUSED" in model.tool_messages(3)[2]
    # Real effect in the sandbox, and in the audit log with the chat interface.
    facebook = await runtime.facebook_for(workspace)
    assert "PAUSED" in (await facebook.call("get_campaign", {"campaign_id": picked["id"]})).text
    audit = await runtime.store.list_audit(workspace.id, limit=1)
    assert audit[0].op == "pause_campaign" and audit[0].interface == "chat"
    # The whole turn is in the thread, tool calls paired with their results.
    history = await runtime.store.chat_history(workspace.id, "plan")
    assert [m["role"] for m in history] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert history[1]["tool_calls"][0]["function"]["name"] == "facebook"
    assert history[2]["tool_call_id"] == history[1]["tool_calls"][0]["id"]
    assert history[-1]["content"] == turn.text


async def test_tool_error_is_fed_back_and_recovered(runtime, model):
    workspace = await runtime.workspace("default")
    model.plan(
        call("get_campaign", {"campaign_id": "999"}),
        lambda messages: (
            call("list_campaigns", {}) if last_tool(messages).startswith("ERROR not_found") else say("lost")
        ),
        lambda messages: say(
            "That id does not exist; here are your campaigns: "
            + ", ".join(re.findall(r"(\d{6,}) ·", last_tool(messages)))
        ),
    )
    turn = await make_loop(runtime, model).reply(workspace, "t", "show campaign 999")
    assert [r.ok for r in turn.tool_calls] == [False, True]
    error = model.tool_messages(1)[0]
    assert error.startswith("ERROR not_found:") and "Fix:" in error and "\n" not in error
    assert turn.tool_calls[0].result_text == error
    assert turn.ok and turn.text.startswith("That id does not exist") and re.search(r"\d{6,}", turn.text)


async def test_confirmation_flow_in_words(runtime, model):
    workspace = await runtime.workspace("default")
    facebook = await runtime.facebook_for(workspace)
    listed = await facebook.call("list_campaigns", {"status": ["ACTIVE"]})
    target = ids_with_status(listed.text, "ACTIVE")[0]
    assert (await facebook.call("pause_campaign", {"campaign_id": target}, interface="test")).ok
    loop = make_loop(runtime, model)

    def ask(messages):
        held = re.search(r'confirm="(c-[0-9a-f]+)"', last_tool(messages)).group(1)
        return say(f"Resuming campaign {target} can start spending. Shall I go ahead? (or /confirm {held})")

    model.plan(call("resume_campaign", {"campaign_id": target}), ask)
    first = await loop.reply(workspace, "confirm", f"resume campaign {target}")
    assert first.tool_calls[0].result_text.startswith("Waiting for your confirmation")
    assert not first.tool_calls[0].ok
    assert first.confirmation_id and re.fullmatch(r"c-[0-9a-f]+", first.confirmation_id)
    assert first.confirmation_id in first.text
    assert "PAUSED" in (await facebook.call("get_campaign", {"campaign_id": target})).text  # nothing ran yet

    seen: dict[str, Any] = {}

    def agree(messages):
        seen["messages"] = messages
        notes = [m["content"] for m in messages if m["role"] == "system"][1:]
        held = re.search(r"(c-[0-9a-f]+): resume_campaign", "\n".join(notes)).group(1)
        return call("resume_campaign", {"campaign_id": target, "confirm": held})

    model.plan(
        agree, lambda messages: say("Done, it is ACTIVE again." if "ACTIVE" in last_tool(messages) else "failed")
    )
    second = await loop.reply(workspace, "confirm", "yes, go ahead")
    assert second.ok and second.text == "Done, it is ACTIVE again."
    assert second.tool_calls[0].ok and second.confirmation_id is None
    assert seen["messages"][-1] == {"role": "user", "content": "yes, go ahead"}
    assert any(
        first.confirmation_id in (m.get("content") or "") for m in seen["messages"] if m["role"] == "tool"
    )  # the thread
    assert (
        "ACTIVE"
        in (await facebook.call("get_campaign", {"campaign_id": target})).text.split("\n")[0]
        + (await facebook.call("get_campaign", {"campaign_id": target})).text
    )
    assert (await runtime.store.get_confirmation(workspace.id, first.confirmation_id)).status == "used"
    # Once used, the id is no longer offered to the model as pending.
    model.plan(say("ok"))
    await loop.reply(workspace, "confirm", "thanks")
    assert not any(
        "Waiting for the person's answer" in (m.get("content") or "") for m in model.requests[-1]["messages"]
    )


async def test_round_limit_stops_and_says_what_was_done(runtime, model):
    workspace = await runtime.workspace("default")
    model.plan(*[call("list_campaigns", {"limit": 1}) for _ in range(5)])
    fragments: list[str] = []
    turn = await make_loop(runtime, model, max_rounds=2).reply(
        workspace, "limit", "loop forever", on_text=fragments.append
    )
    assert turn.rounds == 2 and len(turn.tool_calls) == 2 and len(model.requests) == 3
    assert "limit of 2 tool rounds" in turn.text and "list_campaigns (ok); list_campaigns (ok)" in turn.text
    assert "".join(fragments).strip() == turn.text
    history = await runtime.store.chat_history(workspace.id, "limit")
    assert history[-1] == {"role": "assistant", "content": turn.text}  # no dangling tool call
    model.plan(say("continuing"))
    again = await make_loop(runtime, model).reply(workspace, "limit", "continue")
    assert again.ok and again.text == "continuing"


async def test_malformed_tool_arguments_are_explained_and_the_loop_goes_on(runtime, model):
    workspace = await runtime.workspace("default")
    model.plan(
        call("", raw='{"op": "list_campaigns", "args": {"limit": 2}'),
        call("", raw='["list_campaigns"]'),
        call("list_campaigns", {"limit": 2}),
        say("Here they are."),
    )
    turn = await make_loop(runtime, model).reply(workspace, "bad", "list two campaigns")
    assert turn.ok and turn.text == "Here they are." and [r.ok for r in turn.tool_calls] == [False, False, True]
    broken = model.tool_messages(1)[0]
    assert broken.startswith("ERROR validation: the tool call's arguments are not valid JSON")
    assert "character" in broken and "Fix:" in broken and "Nothing was run" in broken
    assert "must be a JSON object, got list" in model.tool_messages(2)[1]
    assert "Campaigns in" in model.tool_messages(3)[2]


async def test_long_tool_results_are_shortened_with_a_note(runtime, model):
    workspace = await runtime.workspace("default")
    model.plan(call("help"), say("ok"))
    await make_loop(runtime, model, max_tool_result_chars=500).reply(workspace, "long", "what can you do")
    content = model.tool_messages(1)[0]
    body, note = content.split("\n[shortened: ")
    assert len(body) == 500
    full = (await (await runtime.facebook_for(workspace)).call("help")).text
    assert body == full[:500]
    total = int(re.match(r"([\d,]+) characters", note).group(1).replace(",", ""))
    assert total >= len(full) > 500
    assert note.endswith("showing the first 500; ask with a narrower filter or limit]")
    assert shorten("short", 10) == "short"


async def test_history_per_thread_and_isolated_per_workspace(runtime, model):
    alpha, beta = await runtime.workspace("alpha"), await runtime.workspace("beta")
    loop = make_loop(runtime, model)
    model.plan(say("alpha one"), say("alpha two"), say("beta one"), say("other thread"))
    await loop.reply(alpha, "shared-id", "secret plan for alpha")
    await loop.reply(alpha, "shared-id", "and then?")
    second = [m.get("content") for m in model.requests[1]["messages"]]
    assert second[1:] == ["secret plan for alpha", "alpha one", "and then?"]
    await loop.reply(beta, "shared-id", "hello from beta")
    beta_seen = json.dumps(model.requests[2]["messages"])
    assert "alpha" not in beta_seen and "hello from beta" in beta_seen
    await loop.reply(alpha, "other", "new topic")
    assert [m.get("content") for m in model.requests[3]["messages"]][1:] == ["new topic"]
    assert [m["content"] for m in await runtime.store.chat_history(alpha.id, "shared-id")] == [
        "secret plan for alpha",
        "alpha one",
        "and then?",
        "alpha two",
    ]
    assert [m["content"] for m in await runtime.store.chat_history(beta.id, "shared-id")] == [
        "hello from beta",
        "beta one",
    ]
    assert {t["thread_id"] for t in await runtime.store.list_threads(alpha.id)} == {"shared-id", "other"}
    assert [t["thread_id"] for t in await runtime.store.list_threads(beta.id)] == ["shared-id"]
    assert len(await runtime.store.chat_history(alpha.id, "shared-id", limit=2)) == 2


async def test_llm_down_401_404_and_mid_turn_failure_leave_no_partial_history(runtime, model):
    workspace = await runtime.workspace("default")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    down = await make_loop(runtime, closed).reply(workspace, "fail", "hello")
    assert not down.ok and down.text.startswith("ERROR llm: cannot reach the model server at " + closed)
    assert "Fix: check ADMONSTER_LLM_BASE_URL / ADMONSTER_LLM_MODEL / key" in down.text and "\n" not in down.text

    model.fail_with = 401
    refused = await make_loop(runtime, model).reply(workspace, "fail", "hello")
    assert not refused.ok and "refused the API key (401)" in refused.text and refused.text.startswith("ERROR llm:")
    model.fail_with = 404
    missing = await make_loop(runtime, model).reply(workspace, "fail", "hello")
    assert "model 'fake-model' or the chat endpoint was not found" in missing.text
    model.fail_with = None

    model.plan(call("account_overview"), {"status": 503})
    broken = await make_loop(runtime, model).reply(workspace, "fail", "hello")
    assert not broken.ok and "answered 503" in broken.text and "1 tool call(s) ran: account_overview" in broken.text
    assert await runtime.store.chat_history(workspace.id, "fail") == []
    assert await runtime.store.list_threads(workspace.id) == []


async def test_server_without_streaming_falls_back(runtime):
    workspace = await runtime.workspace("default")
    plain = await FakeModel([call("account_overview"), say("Your account is Demo Store.")], streaming=False).start()
    try:
        fragments: list[str] = []
        turn = await make_loop(runtime, plain).reply(workspace, "plain", "how is my account", on_text=fragments.append)
    finally:
        await plain.stop()
    assert turn.ok and turn.text == "Your account is Demo Store." and "".join(fragments) == turn.text
    assert turn.tool_calls[0].ok and "Demo Store (USD)" in plain.tool_messages(-1)[0]


# ---------------------------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------------------------


def test_parse_tool_arguments():
    assert parse_tool_arguments('{"op": "help"}') == ({"op": "help"}, None)
    assert parse_tool_arguments("") == ({}, None)
    assert parse_tool_arguments({"op": "x"}) == ({"op": "x"}, None)
    parsed, problem = parse_tool_arguments('{"op": ')
    assert parsed == {} and "not valid JSON" in problem and "Fix:" in problem


def test_bounded_history_never_splits_a_tool_call_from_its_results():
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        {"role": "tool", "tool_call_id": "1", "content": "r"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "2"}]},
        {"role": "tool", "tool_call_id": "2", "content": "r"},
        {"role": "assistant", "content": "d"},
    ]
    assert bounded_history(history, 100) == history
    assert bounded_history(history, 5) == history[4:]
    assert bounded_history(history, 2) == history[4:]  # the last exchange stays whole
    assert bounded_history([], 5) == []


def test_system_prompt_from_docs_with_fallback(tmp_path):
    prompt = load_system_prompt()
    for needle in (
        "account_overview",
        "dry_run",
        "PAUSED",
        "confirm",
        "minor units",
        "Fix",
        'op="help"',
        "Never invent ids",
    ):
        assert needle in prompt
    assert "Ad Monster" in load_system_prompt(tmp_path / "missing.md")


# ---------------------------------------------------------------------------------------------------------------
# `admonster chat` with an LLM
# ---------------------------------------------------------------------------------------------------------------


async def test_admonster_chat_streams_the_model_text(tmp_path, model):
    model.plan(
        call("account_overview"),
        lambda messages: say(
            "Your account " + re.search(r"Ad account ([^\n]+)", last_tool(messages)).group(1) + " is fine."
        ),
    )
    env = {
        **os.environ,
        **SANDBOX_START_ENV,
        "ADMONSTER_HOME": str(tmp_path),
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "200",
        "ADMONSTER_LLM_BASE_URL": model.url,
        "ADMONSTER_LLM_MODEL": "fake-model",
    }
    for key in ("ADMONSTER_GRAPH_URL", "ADMONSTER_ACCESS_TOKEN", "ADMONSTER_LLM_API_KEY"):
        env.pop(key, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "admonster_bot",
        "chat",
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(b"how is my account?\n/campaigns\n"), timeout=90)
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, stderr
    assert "Your account Demo Store (USD) (act_" in stdout and ") is fine.\n" in stdout
    assert "No LLM is configured" not in stdout and "Traceback" not in stdout + stderr
    assert "Campaigns in" in stdout  # slash-commands still answer directly
    assert len(model.requests) == 2 and model.requests[0]["model"] == "fake-model"
    assert model.requests[0]["messages"][-1] == {"role": "user", "content": "how is my account?"}

"""Overhead of the LLM chat loop per tool call, the fake model answering at once (target ≤ 5 ms).

    .venv/bin/python bench/llm_loop.py            # this figure alone
    make bench                                    # with the others (bench/run.py calls bench_llm_loop)

One ChatLoop.reply runs N `get_campaign` tool rounds (the model's streamed tool call → parse → facebook.call →
the result fed back), then a final text; beside it, the same N `facebook.call`s directly. The difference divided by
N is what the loop adds per tool call: the round trip to the model through the openai client, streaming, argument
parsing, history and the store. The sandbox and the fake model each run in their own process, as remote servers
would, so their work is not billed to the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


# ---------------------------------------------------------------------------------------------------------------
# The fake model: answers at once, from the messages alone
# ---------------------------------------------------------------------------------------------------------------


def fake_model_app(rounds: int, campaign_id: str):
    """Calls get_campaign until the current message has `rounds` tool results, then answers with text (SSE)."""
    from aiohttp import web

    user_role, tool_role = re.compile(rb'"role":\s*"user"'), re.compile(rb'"role":\s*"tool"')

    async def complete(request: web.Request) -> web.StreamResponse:
        # "Answering at once": count the tool results after the last user message in the raw body, without
        # decoding the whole history, so the model's own work stays out of the loop's figure.
        raw = await request.read()
        last_user = max(match.end() for match in user_role.finditer(raw))
        done = len(tool_role.findall(raw, last_user))
        if done < rounds:
            arguments = json.dumps({"op": "get_campaign", "args": {"campaign_id": campaign_id}})
            deltas = [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": f"call_{done}",
                            "type": "function",
                            "function": {"name": "facebook", "arguments": arguments},
                        }
                    ],
                }
            ]
            finish = "tool_calls"
        else:
            deltas = [{"role": "assistant", "content": "Done: "}, {"content": f"{done} lookups."}]
            finish = "stop"
        chunks = [
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "fake",
                "choices": [{"index": 0, "delta": d, "finish_reason": None}],
            }
            for d in deltas
        ]
        chunks.append(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "fake",
                "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            }
        )
        payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return web.Response(body=payload.encode(), headers={"Content-Type": "text/event-stream"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    return app


def serve_fake(port: int, rounds: int, campaign_id: str) -> None:
    from aiohttp import web

    web.run_app(fake_model_app(rounds, campaign_id), host="127.0.0.1", port=port, print=None, access_log=None)


@contextlib.asynccontextmanager
async def external_fake_model(rounds: int, campaign_id: str):
    import aiohttp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-fake", str(port), "--calls", str(rounds), "--campaign", campaign_id],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(150):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(f"{url}/chat/completions", json={"messages": [{"role": "user"}]}) as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the fake model did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------------------
# The measurement
# ---------------------------------------------------------------------------------------------------------------


async def bench_llm_loop(calls: int = 200, per_message: int = 8) -> dict:
    import aiohttp
    from run import _control, _setup, _timed, external_sandbox

    from admonster_llm import ChatLoop, LLMClient

    async with external_sandbox() as url, aiohttp.ClientSession() as session:
        _grant, store, graph, facebook, usd = await _setup(url, session)
        campaign_id = (await graph.get(f"{usd}/campaigns", {"fields": "id", "limit": 1}))["data"][0]["id"]
        per_message = max(1, min(per_message, calls))
        messages = -(-calls // per_message)
        calls = messages * per_message
        async with external_fake_model(per_message, campaign_id) as model_url:
            llm = LLMClient(model_url, "fake-model", max_retries=0)

            async def provider(_workspace):
                return facebook

            loop = ChatLoop(provider, store, llm, max_rounds=per_message)
            thread = {"n": 0}

            async def through_loop() -> None:
                thread["n"] += 1  # one thread per timed run: its history grows as a real conversation's does
                for _ in range(messages):
                    turn = await loop.reply(facebook.workspace, f"bench-{thread['n']}", "look it up")
                    assert turn.ok and turn.rounds == per_message and all(r.ok for r in turn.tool_calls), turn.text

            async def direct() -> None:
                for _ in range(calls):
                    result = await facebook.call("get_campaign", {"campaign_id": campaign_id}, interface="chat")
                    assert result.ok, result.text

            await _control(session, url, "usage/reset")
            await direct()  # warm both paths
            await _control(session, url, "usage/reset")
            await through_loop()
            loop_times, direct_times = [], []
            for _ in range(3):  # interleaved rounds, so drift hits both sides alike
                await _control(session, url, "usage/reset")
                direct_times.append(await _timed(direct))
                await _control(session, url, "usage/reset")
                loop_times.append(await _timed(through_loop))
            await llm.close()
        await graph.close()
        await store.close()
    loop_s, direct_s = min(loop_times), min(direct_times)
    overhead_ms = (loop_s - direct_s) / calls * 1000
    return {
        "calls": calls,
        "messages": messages,
        "per_message": per_message,
        "loop_s": loop_s,
        "direct_s": direct_s,
        "overhead_ms": overhead_ms,
        "target": "≤ 5 ms",
        "ok": overhead_ms <= 5,
    }


def report_line(result: dict) -> list[str]:
    verdict = "PASS" if result["ok"] else "MISS"
    return [
        f"4. Chat loop overhead per tool call: {result['calls']} get_campaign tool rounds through ChatLoop "
        f"({result['messages']} messages × {result['per_message']} rounds in one thread, fake model answering at once) "
        f"vs the same facebook.calls directly (best of 3 interleaved rounds):",
        f"   direct {result['direct_s']:.3f} s · through the loop {result['loop_s']:.3f} s · "
        f"{result['overhead_ms']:.2f} ms per tool call (target {result['target']}) {verdict}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument(
        "--per-message", type=int, default=8, help="Tool rounds per chat message (the default round limit)."
    )
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--campaign", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_fake:
        serve_fake(options.serve_fake, options.calls, options.campaign)
        return 0
    result = asyncio.run(bench_llm_loop(options.calls, options.per_message))
    print("\n".join(report_line(result)))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

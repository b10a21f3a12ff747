"""Streamed answers (issue 19): `POST /v1/chat/stream` sends the LLM's words as JSON lines while they arrive, then the
whole /v1/chat answer; the console shows them as they come and then the rendered reply."""

from __future__ import annotations

import json

import aiohttp

from test_admonster_llm import FakeModel, call, say
from testkit import running_server


async def test_the_llm_reply_streams_as_json_lines_then_the_whole_answer(tmp_path):
    model = await FakeModel().start()
    try:
        async with running_server(tmp_path, llm_base_url=model.url, llm_model="fake") as (url, runtime):
            workspace = await runtime.store.ensure_workspace("streams")
            key = await runtime.store.create_api_key(workspace.id)
            model.plan(
                call("list_campaigns", {"status": ["ACTIVE"]}),
                say("Two campaigns are active and spending as planned today."),
            )
            lines = []
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"{url}/v1/chat/stream",
                    json={"thread_id": "s1", "message": "What runs?"},
                    headers={"Authorization": f"Bearer {key}"},
                ) as resp:
                    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/x-ndjson")
                    async for raw in resp.content:  # one line at a time, as they come
                        lines.append(json.loads(raw))
                # a refused request is still one JSON line of error, not a stream
                async with session.post(
                    f"{url}/v1/chat/stream",
                    json={"thread_id": "bad id!", "message": "x"},
                    headers={"Authorization": f"Bearer {key}"},
                ) as bad:
                    assert bad.status == 400 and (await bad.json())["text"].startswith("ERROR validation")
            pieces, done = [line["text"] for line in lines[:-1]], lines[-1]
            assert len(pieces) >= 3 and all(set(line) == {"text"} for line in lines[:-1])
            assert done["done"] is True and done["ok"] and "".join(pieces).strip() == done["reply"].strip()
            assert [c["name"] for c in done["tool_calls"]] == ["list_campaigns"]
            history = await runtime.store.chat_history(workspace.id, "s1")
            assert history[-1]["content"] == done["reply"]
    finally:
        await model.stop()


class HeldModel(FakeModel):
    """Streams the first word of its reply, then waits for `go` before the rest: the test sees the half-written reply."""

    def __init__(self) -> None:
        super().__init__()
        import asyncio

        self.go = asyncio.Event()

    async def _sse(self, request, text, calls):
        from aiohttp import web

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        words = text.split(" ")
        for index, word in enumerate(words):
            chunk = {
                "id": "cmpl",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "fake",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": word + (" " if index < len(words) - 1 else "")},
                        "finish_reason": None,
                    }
                ],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if index == 0:
                await self.go.wait()
        done = {
            "id": "cmpl",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "fake",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        await response.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response


async def test_the_console_shows_the_reply_as_it_streams(tmp_path):
    from playwright.async_api import expect

    from test_console_views import browser_page, sign_in

    model = await HeldModel().start()
    try:
        async with running_server(tmp_path, llm_base_url=model.url, llm_model="fake") as (url, runtime):
            workspace = await runtime.store.ensure_workspace("streams")
            key = await runtime.store.create_api_key(workspace.id)
            model.plan(say("Spending **looks fine** today."))
            async with browser_page(url, 1280) as page:
                await sign_in(page, key)
                await page.get_by_label("Message").fill("How is spend today?")
                await page.get_by_role("button", name="Send").click()
                streaming = page.locator("#chat-log li.streaming")
                await expect(streaming).to_contain_text("Spending", timeout=20_000)  # the first word, before the rest
                assert "fine" not in await streaming.inner_text()
                model.go.set()
                final = page.locator("#chat-log li.bot").last
                await expect(final.locator("strong")).to_have_text("looks fine", timeout=20_000)  # rendered Markdown
                await expect(streaming).to_have_count(0)
                assert not page.errors, page.errors
    finally:
        model.go.set()
        await model.stop()

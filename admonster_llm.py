"""The LLM chat loop: an OpenAI-compatible Chat Completions client driving the `facebook` tool.

    loop = ChatLoop(runtime.facebook_for, runtime.store, LLMClient.from_settings(settings))
    turn = await loop.reply(workspace, "terminal", "pause the summer sale", on_text=print_fragment)

Works with any server speaking OpenAI's Chat Completions with tools (OpenAI, Ollama, vLLM, llama.cpp, LiteLLM).
The final text streams; a thread's history lives in the store per workspace; a call the safety gate holds is put
to the person with its confirmation id; every failure is one line with a Fix.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_PROMPT_PATH = Path(__file__).resolve().parent / "docs" / "system_prompt.md"
FALLBACK_SYSTEM_PROMPT = (
    "You are Ad Monster, an assistant that runs Facebook and Instagram ads through the `facebook` tool. "
    "Check the account first (op=account_overview), never invent ids (list first), validate with dry_run, create "
    "PAUSED, and ask the person before any spend the tool holds for confirmation, quoting its confirmation id. "
    "Money is in minor units of the account currency. Explain errors with their Fix. Call op=help when unsure."
)
LLM_FIX = "Fix: check ADMONSTER_LLM_BASE_URL / ADMONSTER_LLM_MODEL / key"
DEFAULT_THREAD = "terminal"
CONFIRM_ID = re.compile(r"confirm=\"(c-[A-Za-z0-9_-]+)\"")


def load_system_prompt(path: Path = SYSTEM_PROMPT_PATH) -> str:
    """docs/system_prompt.md next to this module; a short built-in prompt when the file is missing."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return FALLBACK_SYSTEM_PROMPT
    return text or FALLBACK_SYSTEM_PROMPT


# ---------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ToolCallRecord:
    """One tool call the model made: the op it ran (or the tool name), its arguments, and what it answered."""

    name: str
    arguments: Any
    ok: bool
    result_text: str
    files: list[str] = field(default_factory=list)  # the files the op wrote (charts, exports, previews)


@dataclass
class ChatTurn:
    """The answer to one message: the final text, the tool calls made, a pending confirmation id, the rounds used."""

    text: str
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    confirmation_id: str | None = None
    rounds: int = 0
    ok: bool = True


class LLMError(Exception):
    """The LLM endpoint failed; str() is one line `ERROR llm: ... Fix: ...`."""


@dataclass
class Completion:
    """One assistant message: its text and its tool calls (OpenAI dicts: id, type, function.name/arguments)."""

    content: str
    tool_calls: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------------------


class LLMClient:
    """`openai.AsyncOpenAI` pointed at any OpenAI-compatible base URL; streams, and falls back when a server does not."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, *, timeout: float = 120.0, max_retries: int = 2
    ) -> None:
        import openai

        self.base_url = base_url
        self.model = model
        self._transport = AiohttpTransport()
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=max_retries,
            http_client=openai.DefaultAsyncHttpxClient(transport=self._transport, timeout=timeout),
        )
        self.streaming = True  # turned off for servers that answer a stream request with one JSON body

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> LLMClient:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(settings.llm_base_url, settings.llm_model, key, **options)

    async def close(self) -> None:
        await self.client.close()
        await self._transport.aclose()

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_text: Callable[[str], Any] | None = None
    ) -> Completion:
        """One assistant message; content fragments go to on_text as they arrive. Raises LLMError."""
        try:
            if self.streaming:
                streamed = await self._stream(messages, tools, on_text)
                if streamed is not None:
                    return streamed
                self.streaming = False
            return await self._whole(messages, tools, on_text)
        except LLMError:
            raise
        except Exception as error:  # openai's errors and anything a strange server provokes
            raise LLMError(describe_llm_error(error, self.base_url, self.model)) from error

    def _request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        """The request body. Messages and tools are plain JSON already, so they go in `extra_body`: the openai
        package's per-request type transform walks every message of the history (milliseconds per call on a long
        thread), while extra_body is merged into the JSON body as it is."""
        return {
            "model": self.model,
            "messages": [],
            "extra_body": {"messages": messages, "tools": tools, "tool_choice": "auto"},
        }

    async def _stream(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_text: Callable[[str], Any] | None
    ) -> Completion | None:
        # The openai client's documented raw `post` (its retries, auth and status errors included) skips the
        # per-call type transform of `chat.completions.create`, most of the client's fixed cost per round.
        response = await self.client.post(
            "/chat/completions",
            cast_to=_httpx().Response,
            body={"model": self.model, "messages": messages, "tools": tools, "tool_choice": "auto", "stream": True},
            options={"headers": {"X-Stainless-Raw-Response": "stream"}},
        )
        if "text/event-stream" not in response.headers.get("content-type", ""):
            # A server that ignores stream=true answers with one JSON body: read it, and stop asking for streams.
            self.streaming = False
            body = json.loads(await response.aread())
            return await self._from_body(body, on_text)
        parts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        chunks = 0
        # The SSE lines are read here as plain JSON: the same protocol the openai package parses, without building
        # a pydantic object per chunk (most of the per-call cost of the loop).
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            chunks += 1
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error"):
                raise LLMError(
                    f"ERROR llm: the model server reported an error mid-answer "
                    f"({_short(json.dumps(chunk['error']))}). {LLM_FIX}"
                )
            choices = chunk.get("choices") or []
            delta = (choices[0] or {}).get("delta") if choices else None
            if not delta:
                continue
            if delta.get("content"):
                parts.append(delta["content"])
                await _emit(on_text, delta["content"])
            for position, piece in enumerate(delta.get("tool_calls") or []):
                index = piece.get("index")
                index = index if isinstance(index, int) else len(calls) + position
                slot = calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
                if piece.get("id"):
                    slot["id"] = piece["id"]
                function = piece.get("function") or {}
                if function.get("name"):
                    slot["name"] += function["name"]
                arguments = function.get("arguments")
                if arguments:
                    slot["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)
        if chunks == 0:
            return None
        return Completion("".join(parts), [_tool_call(i, calls[i]) for i in sorted(calls)])

    async def _whole(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_text: Callable[[str], Any] | None
    ) -> Completion:
        response = await self.client.chat.completions.create(**self._request(messages, tools))
        return await self._message(response, on_text)

    async def _message(self, response: Any, on_text: Callable[[str], Any] | None) -> Completion:
        if not getattr(response, "choices", None):
            raise LLMError(f"ERROR llm: the model server answered without any choices. {LLM_FIX}")
        message = response.choices[0].message
        content = message.content or ""
        if content:
            await _emit(on_text, content)
        calls = [
            _tool_call(i, {"id": c.id, "name": c.function.name or "", "arguments": c.function.arguments or ""})
            for i, c in enumerate(message.tool_calls or [])
        ]
        return Completion(content, calls)

    async def _from_body(self, body: Any, on_text: Callable[[str], Any] | None) -> Completion:
        from openai.types.chat import ChatCompletion

        if isinstance(body, dict) and body.get("error"):
            raise LLMError(
                f"ERROR llm: the model server answered with an error ({_short(json.dumps(body['error']))}). {LLM_FIX}"
            )
        response = ChatCompletion.model_validate(body)
        return await self._message(response, on_text)


def _httpx() -> Any:
    """The HTTP package the openai client is built on (httpx, or its httpx2 fork in newer releases)."""
    import openai._base_client as base

    for name in ("httpx2", "httpx"):
        if hasattr(base, name):
            return getattr(base, name)
    raise ImportError("the openai client's HTTP package (httpx) was not found")


class AiohttpTransport:
    """The openai client's HTTP transport on aiohttp (the project's HTTP stack): the same requests and answers, with
    a fraction of the default transport's per-request cost. Connection failures and timeouts become the transport
    errors the openai client turns into APIConnectionError / APITimeoutError."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        httpx: Any = _httpx()

        class _Body(httpx.AsyncByteStream):
            def __init__(self, response: Any) -> None:
                self.response = response

            async def __aiter__(self) -> Any:

                import aiohttp

                try:
                    async for piece in self.response.content.iter_any():
                        yield piece
                except (TimeoutError, aiohttp.ClientError) as error:
                    raise httpx.ReadError(str(error) or type(error).__name__) from error

            async def aclose(self) -> None:
                self.response.release()

        class _Transport(httpx.AsyncBaseTransport):
            def __init__(self) -> None:
                self._session: Any = None

            async def handle_async_request(self, request: Any) -> Any:

                import aiohttp

                if self._session is None or self._session.closed:
                    self._session = aiohttp.ClientSession(auto_decompress=False)
                limits = request.extensions.get("timeout") or {}
                timeout = aiohttp.ClientTimeout(total=None, connect=limits.get("connect"), sock_read=limits.get("read"))
                try:
                    response = await self._session.request(
                        request.method,
                        str(request.url),
                        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                        data=await request.aread(),
                        timeout=timeout,
                        allow_redirects=False,
                    )
                except TimeoutError as error:
                    raise httpx.ReadTimeout("the request timed out", request=request) from error
                except aiohttp.ClientError as error:
                    raise httpx.ConnectError(str(error) or type(error).__name__, request=request) from error
                return httpx.Response(
                    response.status,
                    headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
                    stream=_Body(response),
                    request=request,
                )

            async def aclose(self) -> None:
                if self._session is not None:
                    await self._session.close()

        return _Transport()


def _tool_call(index: int, slot: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": slot["id"] or f"call_{index}",
        "type": "function",
        "function": {"name": slot["name"], "arguments": slot["arguments"]},
    }


async def _emit(on_text: Callable[[str], Any] | None, text: str) -> None:
    if on_text is None:
        return
    outcome = on_text(text)
    if inspect.isawaitable(outcome):
        await outcome


def describe_llm_error(error: BaseException, base_url: str, model: str) -> str:
    """One line for any failure talking to the LLM server, never a traceback and never the key."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        what = f"the model server at {base_url} did not answer in time"
    elif isinstance(error, openai.APIConnectionError):
        what = f"cannot reach the model server at {base_url} ({_cause(error)})"
    elif isinstance(error, openai.AuthenticationError):
        what = f"the model server at {base_url} refused the API key (401)"
    elif isinstance(error, openai.PermissionDeniedError):
        what = f"the model server at {base_url} denied access (403)"
    elif isinstance(error, openai.NotFoundError):
        what = f"model {model!r} or the chat endpoint was not found at {base_url} (404)"
    elif isinstance(error, openai.RateLimitError):
        what = f"the model server at {base_url} is rate limiting (429); try again shortly"
    elif isinstance(error, openai.APIStatusError):
        what = f"the model server at {base_url} answered {error.status_code}: {_short(_status_message(error))}"
    else:
        what = f"unexpected answer from the model server at {base_url} ({type(error).__name__}: {_short(str(error))})"
    return f"ERROR llm: {what}. {LLM_FIX}"


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return _short(str(cause) if cause else str(error)) or type(error).__name__


def _status_message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(error, "message", "") or error)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------


FacebookProvider = Callable[[Any], Awaitable[Any]]


class ChatLoop:
    """Plans with the model, runs its `facebook` tool calls through the one dispatch path, and keeps the thread."""

    def __init__(
        self,
        facebook_provider: FacebookProvider,
        store: Any,
        llm: LLMClient,
        *,
        max_rounds: int = 8,
        max_tool_result_chars: int = 12000,
        system_prompt: str | None = None,
        history_messages: int = 60,
        tools: list[dict[str, Any]] | None = None,
    ) -> None:
        from fi_facebook import REGISTRY

        self.facebook_provider = facebook_provider
        self.store = store
        self.llm = llm
        self.max_rounds = max(1, int(max_rounds))
        self.max_tool_result_chars = max(200, int(max_tool_result_chars))
        self.system_prompt = system_prompt if system_prompt is not None else load_system_prompt()
        self.history_messages = max(2, int(history_messages))
        self.tools = tools if tools is not None else REGISTRY.openai_tools("single")
        self.registry = REGISTRY

    async def reply(
        self,
        workspace: Any,
        thread_id: str,
        message: str,
        *,
        on_text: Callable[[str], Any] | None = None,
        interface: str = "chat",
    ) -> ChatTurn:
        """Answer one message of the person; the turn is stored only when it completed."""
        facebook = await self.facebook_provider(workspace)
        history = bounded_history(await self.store.chat_history(workspace.id, thread_id), self.history_messages)
        new: list[dict[str, Any]] = [{"role": "user", "content": message}]
        context = [{"role": "system", "content": self.system_prompt}, *history]
        pending = await self._pending_note(workspace, history)
        if pending:
            context.append({"role": "system", "content": pending})
        turn = ChatTurn(text="")
        try:
            while True:
                completion = await self.llm.complete(context + new, self.tools, on_text)
                if not completion.tool_calls:
                    turn.text = completion.content
                    new.append({"role": "assistant", "content": completion.content})
                    break
                if turn.rounds >= self.max_rounds:
                    turn.text = self._round_limit_text(turn, completion.content)
                    await _emit(on_text, ("\n" if completion.content else "") + turn.text)
                    new.append({"role": "assistant", "content": turn.text})
                    break
                turn.rounds += 1
                new.append(
                    {"role": "assistant", "content": completion.content or None, "tool_calls": completion.tool_calls}
                )
                for call in completion.tool_calls:
                    record, content = await self._run_tool(facebook, call, interface)
                    turn.tool_calls.append(record)
                    new.append({"role": "tool", "tool_call_id": call["id"], "content": content})
                    turn.confirmation_id = _track_confirmation(turn.confirmation_id, record, content)
        except LLMError as error:
            done = ""
            if turn.tool_calls:
                done = (
                    f" Before that, {len(turn.tool_calls)} tool call(s) ran: "
                    f"{', '.join(r.name for r in turn.tool_calls)} (see /audit)."
                )
            return ChatTurn(text=f"{error}{done}", tool_calls=turn.tool_calls, rounds=turn.rounds, ok=False)
        from fi_facebook import chat_messages_at_rest

        await self.store.append_chat_messages(workspace.id, thread_id, chat_messages_at_rest(new))
        return turn

    async def _run_tool(self, facebook: Any, call: dict[str, Any], interface: str) -> tuple[ToolCallRecord, str]:
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        raw = function.get("arguments")
        parsed, problem = parse_tool_arguments(raw)
        if problem:
            return ToolCallRecord(name or "?", raw, False, problem), problem
        if name == "facebook":
            op, args = parsed.pop("op", None), parsed.pop("args", None)
            top_level = {k: v for k, v in parsed.items() if k not in ("interface",)}
        elif self.registry.get(name) is not None:  # a model that calls an op as if it were its own tool
            op, args, top_level = name, parsed, {}
        else:
            text = (
                f"ERROR validation: there is no tool named {name!r}. Fix: call the facebook tool, e.g. "
                '{"op": "list_campaigns", "args": {"limit": 5}}; op="help" lists the ops'
            )
            return ToolCallRecord(name or "?", raw, False, text), text
        result = await facebook.call(op, args, interface=interface, top_level=top_level)
        content = self._tool_content(result)
        label = str(op) if op else "facebook"
        return ToolCallRecord(
            label, {"op": op, "args": args, **top_level}, result.ok, result.text, list(result.files or [])
        ), content

    def _tool_content(self, result: Any) -> str:
        # The op's text with its hints for an LLM (ids, names, money, the next call); its JSON data would double every
        # round's payload and tokens without telling the model more.
        return shorten(result.llm_text, self.max_tool_result_chars)

    async def _pending_note(self, workspace: Any, history: list[dict[str, Any]]) -> str | None:
        """The confirmations this thread asked about that are still waiting, so 'yes, go ahead' can be acted on."""
        asked = []
        for message in history:
            if message.get("role") == "tool":
                asked += CONFIRM_ID.findall(message.get("content") or "")
        if not asked:
            return None
        waiting = {c.id: c for c in await self.store.list_confirmations(workspace.id)}
        lines = [
            f"- {cid}: {waiting[cid].op} {waiting[cid].preview} (args {json.dumps(waiting[cid].args, default=str)})"
            for cid in dict.fromkeys(asked)
            if cid in waiting
        ]
        if not lines:
            return None
        return (
            "Waiting for the person's answer on these held calls (the safety gate asked for confirmation):\n"
            + "\n".join(lines)
            + "\nIf the person agrees (for example 'yes', 'go ahead', 'do it'), call the facebook "
            'tool with that op and args {"confirm": "ID"} (or op="confirm", args={"confirm": "ID"}). '
            "If they decline, do not call it; say it was left as it is."
        )

    def _round_limit_text(self, turn: ChatTurn, partial: str) -> str:
        done = "; ".join(f"{r.name} ({'ok' if r.ok else 'error'})" for r in turn.tool_calls) or "nothing"
        return (
            f"I stopped: this message reached the limit of {self.max_rounds} tool rounds "
            f"(ADMONSTER_LLM_MAX_TOOL_ROUNDS). Done so far: {done}. "
            "Say 'continue' to let me go on, or ask for something narrower."
        )


def parse_tool_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """The model's arguments as a dict, or (empty, one-line error telling the model exactly what to fix)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    if isinstance(raw, dict):
        return dict(raw), None
    if isinstance(raw, (str, bytes)):
        from fb_utils import MAX_JSON_DEPTH, json_depth

        if (
            len(raw) > (1 << 20)
            or json_depth(raw if isinstance(raw, str) else raw.decode("utf-8", "replace")) > MAX_JSON_DEPTH
        ):
            return {}, (
                "ERROR validation: the tool call's arguments are too large or nest too deep. Nothing was run. "
                'Fix: send one flat JSON object, e.g. {"op": "list_campaigns", "args": {"limit": 5}}'
            )
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError) as exc:
        where = f" ({exc.msg} at character {exc.pos})" if isinstance(exc, json.JSONDecodeError) else ""
        return {}, (
            f"ERROR validation: the tool call's arguments are not valid JSON{where}: {_short(str(raw), 120)!r}. "
            "Nothing was run. Fix: send the arguments as one JSON object, e.g. "
            '{"op": "get_campaign", "args": {"campaign_id": "120210000000000001"}}'
        )
    if not isinstance(value, dict):
        return {}, (
            f"ERROR validation: the tool call's arguments must be a JSON object, got {type(value).__name__}. "
            'Nothing was run. Fix: send {"op": "NAME", "args": {...}}'
        )
    return value, None


def shorten(text: str, limit: int) -> str:
    """`text` when it fits, else its start and an explicit note: never cut silently."""
    if len(text) <= limit:
        return text
    return (
        f"{text[:limit]}\n[shortened: {len(text):,} characters, showing the first {limit:,}; "
        "ask with a narrower filter or limit]"
    )


def bounded_history(history: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The last messages, at most `limit`, starting at a user message: a tool call never loses its results."""
    if len(history) <= limit:
        start = 0
    else:
        start = len(history) - limit
    while start < len(history) and history[start].get("role") != "user":
        start += 1
    if start >= len(history) and history:  # no user message in the window: keep the last whole exchange
        users = [i for i, m in enumerate(history) if m.get("role") == "user"]
        start = users[-1] if users else len(history)
    return history[start:]


def _track_confirmation(current: str | None, record: ToolCallRecord, content: str) -> str | None:
    if not record.ok and content.startswith("ERROR confirmation_required"):
        found = CONFIRM_ID.search(content)
        return found.group(1) if found else current
    if record.ok and current and isinstance(record.arguments, dict):
        args = record.arguments.get("args")
        args = args if isinstance(args, dict) else {}
        if current in (args.get("confirm"), record.arguments.get("confirm")):
            return None
    return current

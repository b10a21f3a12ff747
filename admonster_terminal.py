"""The terminal chat's input: a prompt_toolkit prompt that leaves the event loop serving (line editing, history across
sessions stored redacted and 0600, completion, Ctrl-C), piped standard input read without blocking the loop, a
`/tool OP {…}` call spanning lines read as one call, and Ctrl-C that cancels the running command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

# A `/tool` call's JSON may span lines, up to this many characters (the HTTP API's body limit); past it the lines read
# so far are one call (which the JSON reader then refuses) and reading goes on.
MAX_COMMAND_CHARS = 1 << 20
# History entries longer than this are not kept (a pasted megabyte would slow every later start).
MAX_HISTORY_CHARS = 16_000
QUIT_WORDS = ("/quit", "/exit", "quit", "exit")
_JSON_SPECIALS = re.compile(r'[{}\[\]"\\]')
# Ids worth completing: ad accounts, confirmations, Graph object ids (6+ digits).
_ID_PATTERN = re.compile(r"(?<![\w-])(act_\d+|c-[0-9a-z]{4,}|\d{6,})(?![\w-])")


# ---------------------------------------------------------------------------------------------------------------
# A `/tool` call spanning lines
# ---------------------------------------------------------------------------------------------------------------


class JsonBalance:
    """Follows brackets and strings through JSON text fed piece by piece: `open` while a `{` or `[` is unclosed."""

    def __init__(self) -> None:
        self.depth = 0
        self.started = self.closed = False
        self._in_string = self._escaped = False

    @property
    def open(self) -> bool:
        return self.started and not self.closed

    def feed(self, text: str) -> None:
        for match in _JSON_SPECIALS.finditer(text):
            if self.closed:
                return
            char = match.group()
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
                continue
            if char == '"':
                self._in_string = True
            elif char in "{[":
                self.depth += 1
                self.started = True
            elif char in "}]":
                self.depth -= 1
                self.closed = self.depth <= 0


def tool_json_start(line: str) -> JsonBalance | None:
    """For `/tool OP {…` whose JSON is not closed on this line, the balance so far; else None (a whole command)."""
    parts = line.lstrip().split(None, 2)
    if len(parts) < 3 or parts[0].lower() != "/tool" or parts[2].lstrip()[:1] not in ("{", "["):
        return None
    balance = JsonBalance()
    balance.feed(parts[2])
    return balance if balance.open else None


def tool_json_open(text: str) -> bool:
    """Whether `text` (one or more lines) is a `/tool` call whose JSON arguments have begun and not closed yet."""
    first, _, rest = text.partition("\n")
    balance = tool_json_start(first)
    if balance is None:
        return False
    if rest:
        balance.feed(rest)
    return balance.open


class CommandJoiner:
    """Physical lines in, commands out: a `/tool OP {` whose JSON is not closed takes the following lines until it
    closes. A line starting with `/` ends it early (a new command: the unfinished call is sent as it is, and the JSON
    reader says what is wrong), as do the end of input and MAX_COMMAND_CHARS."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._size = 0
        self._balance: JsonBalance | None = None

    def feed(self, line: str) -> list[str]:
        """The commands this line completes (none while a `/tool` call is still open)."""
        line = line.rstrip("\r\n")
        done: list[str] = []
        if self._pending and line.lstrip().startswith("/"):
            done.append(self._flush())
        if self._pending:
            assert self._balance is not None
            self._pending.append(line)
            self._size += len(line) + 1
            self._balance.feed("\n" + line)
            if not self._balance.open or self._size > MAX_COMMAND_CHARS:
                done.append(self._flush())
            return done
        balance = tool_json_start(line)
        if balance is None:
            done.append(line)
        else:
            self._pending, self._size, self._balance = [line], len(line), balance
        return done

    def finish(self) -> list[str]:
        """At the end of input: the unfinished call, if any."""
        return [self._flush()] if self._pending else []

    def _flush(self) -> str:
        text = "\n".join(self._pending)
        self._pending, self._size, self._balance = [], 0, None
        return text


def split_commands(lines: Iterable[str]) -> list[str]:
    """Lines (a pasted block, a file) as the commands they hold."""
    joiner = CommandJoiner()
    commands = [command for line in lines for command in joiner.feed(line)]
    return commands + joiner.finish()


# ---------------------------------------------------------------------------------------------------------------
# Piped standard input
# ---------------------------------------------------------------------------------------------------------------


class PipedInput:
    """Commands from a stream that is not a terminal. A daemon thread reads it, so the event loop keeps serving (the
    sign-in callback, the embedded sandbox) while the next line is awaited, and an unfinished read never holds up the
    exit."""

    interactive = False

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._lines: asyncio.Queue[str | None] | None = None
        self._joiner = CommandJoiner()
        self._ready: deque[str] = deque()
        self._ended = False

    def _start(self) -> asyncio.Queue[str | None]:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def put(item: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed first: nobody is waiting any more
                loop.call_soon_threadsafe(lines.put_nowait, item)

        def pump() -> None:
            try:
                for line in iter(self._stream.readline, ""):
                    put(line)
            except (OSError, ValueError, UnicodeDecodeError):  # unreadable input ends the session as its end does
                pass
            put(None)

        threading.Thread(target=pump, name="admonster-stdin", daemon=True).start()
        return lines

    async def read(self) -> str | None:
        """The next command, or None at the end of input."""
        if self._lines is None:
            self._lines = self._start()
        while not self._ready:
            if self._ended:
                return None
            line = await self._lines.get()
            if line is None:
                self._ended = True
                self._ready.extend(self._joiner.finish())
            else:
                self._ready.extend(self._joiner.feed(line))
        return self._ready.popleft()

    def close(self) -> None:
        pass


class ListInput:
    """Commands from a list of lines (tests, scripts): the same joining as piped input."""

    interactive = False

    def __init__(self, lines: Iterable[str]) -> None:
        self._ready = deque(split_commands(lines))

    async def read(self) -> str | None:
        return self._ready.popleft() if self._ready else None

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------------------------
# History and completion
# ---------------------------------------------------------------------------------------------------------------


def private_file(path: Path) -> Path:
    """Create `path` 0600 in a 0700 folder if it is missing, and tighten it if it is not."""
    from admonster_store import PRIVATE_FILE_MODE, private_folder

    private_folder(path.parent)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
        os.chmod(path, PRIVATE_FILE_MODE)
    return path


def history_path(home: Path, workspace_id: Any) -> Path:
    """Where the terminal keeps a workspace's prompt history."""
    return Path(home) / "terminal_history" / f"{workspace_id}.txt"


def _file_history_class() -> type:
    from prompt_toolkit.history import FileHistory

    class PrivateFileHistory(FileHistory):
        """prompt_toolkit's history file, kept 0600, each entry written as `at_rest` makes it (personal data withheld,
        as the chat history keeps it); this session's own entries stay as typed in memory."""

        def __init__(self, path: Path, at_rest: Callable[[str], str]) -> None:
            self.path = private_file(Path(path))
            self.at_rest = at_rest
            super().__init__(str(self.path))

        def store_string(self, string: str) -> None:
            if len(string) > MAX_HISTORY_CHARS:
                return
            try:
                stored = self.at_rest(string)
            except Exception:  # what could not be redacted is not kept
                return
            private_file(self.path)
            super().store_string(stored)

    return PrivateFileHistory


def private_history(path: Path, at_rest: Callable[[str], str]) -> Any:
    """A prompt_toolkit history stored in `path` through `at_rest`."""
    return _file_history_class()(path, at_rest)


class RecentIds:
    """Ids seen in recent answers (ad accounts, Graph objects, confirmations), newest first, for completion."""

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self._ids: dict[str, None] = {}

    def remember(self, text: str) -> None:
        for found in _ID_PATTERN.findall(text or ""):
            self._ids.pop(found, None)
            self._ids[found] = None
        while len(self._ids) > self.limit:
            self._ids.pop(next(iter(self._ids)))

    def newest_first(self) -> list[str]:
        return list(reversed(self._ids))


def chat_completer(commands: dict[str, str], op_names: Callable[[], list[str]], recent: RecentIds) -> Any:
    """Tab completion: slash-commands (with their usage), op names after `/tool` and `/help`, and ids seen in answers."""
    from prompt_toolkit.completion import Completer, Completion

    class ChatCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
            text = document.text_before_cursor
            if "\n" in text:
                return
            words = text.split(" ")
            if len(words) == 1:
                if text.startswith("/"):
                    names = [(name, usage) for name, usage in commands.items()] + [
                        (op, "op") for op in op_names() if op not in commands
                    ]
                    for name, usage in names:
                        if ("/" + name).startswith(text.lower()):
                            yield Completion("/" + name, start_position=-len(text), display_meta=usage)
                return
            head, word = words[0].lower(), words[-1]
            if head in ("/tool", "/help") and len(words) == 2:
                for op in op_names():
                    if op.startswith(word):
                        yield Completion(op, start_position=-len(word))
                return
            prefix = word.split("=", 1)[-1]
            for found in recent.newest_first():
                if found.startswith(prefix) and found != prefix:
                    yield Completion(found, start_position=-len(prefix))

    return ChatCompleter()


# ---------------------------------------------------------------------------------------------------------------
# The interactive prompt
# ---------------------------------------------------------------------------------------------------------------


class PromptInput:
    """Commands typed at a prompt_toolkit prompt, awaited with `prompt_async` so the event loop keeps serving.

    Enter sends the line, unless it is a `/tool` call whose JSON is still open (then it starts a new line; Esc Enter
    sends it as it is). A bracketed paste is one input, split into its commands the way piped lines are. Ctrl-C clears
    a line being typed; at an empty prompt it asks for a second Ctrl-C (or Ctrl-D) to leave."""

    interactive = True

    def __init__(
        self,
        *,
        history: Any = None,
        completer: Any = None,
        say: Callable[[str], None] = print,
        session_options: dict[str, Any] | None = None,
    ) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.filters import Condition
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.styles import Style

        self._say = say
        self._ready: deque[str] = deque()
        self._interrupted = False
        bindings = KeyBindings()

        @bindings.add("c-c")
        def _interrupt(event: Any) -> None:
            if event.current_buffer.text:
                event.current_buffer.reset()
            else:
                event.app.exit(exception=KeyboardInterrupt(), style="class:aborting")

        @Condition
        def _tool_call_open() -> bool:
            return tool_json_open(self.session.default_buffer.text)

        @bindings.add("enter", filter=_tool_call_open)
        @bindings.add("c-j", filter=_tool_call_open)
        def _next_line(event: Any) -> None:
            event.current_buffer.insert_text("\n")

        @bindings.add("escape", "enter")
        def _send_as_is(event: Any) -> None:
            event.current_buffer.validate_and_handle()

        self.session: Any = PromptSession(
            history=history,
            completer=completer,
            complete_while_typing=False,
            key_bindings=bindings,
            enable_history_search=False,
            style=Style.from_dict({"prompt": "bold ansicyan", "continuation": "ansicyan"}),
            prompt_continuation=lambda width, line_number, wrap_count: [
                ("class:continuation", "…".rjust(width - 1) + " ")
            ],
            **(session_options or {}),
        )

    async def read(self) -> str | None:
        """The next command, or None when the person leaves (Ctrl-D, or Ctrl-C twice at an empty prompt)."""
        from prompt_toolkit.patch_stdout import patch_stdout

        while not self._ready:
            try:
                with patch_stdout(
                    raw=True
                ):  # what the loop prints meanwhile (a sign-in finished) shows above the prompt
                    text = await self.session.prompt_async([("class:prompt", "you> ")])
            except KeyboardInterrupt:
                if self._interrupted:
                    return None
                self._interrupted = True
                self._say("Press Ctrl-C again or Ctrl-D to leave.")
                continue
            except EOFError:
                return None
            self._interrupted = False
            self._ready.extend(split_commands(text.split("\n")))
        return self._ready.popleft()

    def close(self) -> None:
        pass


def terminal_is_interactive() -> bool:
    """A person at a terminal (both ends a tty): the prompt; anything else reads lines and prints answers only."""
    return sys.stdin.isatty() and sys.stdout.isatty()


# ---------------------------------------------------------------------------------------------------------------
# Ctrl-C while a command runs
# ---------------------------------------------------------------------------------------------------------------


class Interrupt:
    """Whether Ctrl-C cancelled the command (rather than something else cancelling the chat)."""

    def __init__(self) -> None:
        self.pressed = False


@contextlib.contextmanager
def sigint_cancels(task: asyncio.Future) -> Iterator[Interrupt]:
    """While the block runs, SIGINT (Ctrl-C) cancels `task` instead of the whole chat; the previous handler is back
    after. Cancelling raises CancelledError inside the command at its current await, so whatever it wrote first (the
    audit's pending entry) stays written (docs/exactly-once.md)."""
    loop = asyncio.get_running_loop()
    interrupt = Interrupt()
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint() -> None:
        interrupt.pressed = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        yield interrupt
        return
    try:
        yield interrupt
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        with contextlib.suppress(TypeError, ValueError):
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)

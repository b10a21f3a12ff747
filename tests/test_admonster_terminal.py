"""The terminal chat as a person meets it: the real `admonster chat` in a pseudo-terminal (pexpect) against its embedded
sandbox — /connect completing while the prompt waits, Ctrl-C cancelling a running write (its audit entry kept), arrow-up
history across sessions, a multi-line /tool paste as one call, the history file private and redacted — and piped runs
(exit status, banner on stderr, a multi-line /tool block as one call)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pexpect

from admonster_chat import line_at_rest
from admonster_runtime import SANDBOX_AUTOCONNECT, open_runtime
from admonster_server import CallbackListener
from admonster_terminal import (
    MAX_COMMAND_CHARS,
    ListInput,
    RecentIds,
    chat_completer,
    history_path,
    private_history,
    split_commands,
    tool_json_open,
)
from fi_facebook import REGISTRY
from testkit import SANDBOX_START_ENV, sandbox_settings

ROOT = Path(__file__).resolve().parent.parent
ADMONSTER = [sys.executable, "-m", "admonster_bot", "chat"]
WAIT = 90  # seconds: generous, the test waits for what it expects, never for time to pass
EMAIL = "jane.doe@example.com"
CAMPAIGN = "120210000000000006"  # a demo campaign of the default workspace's USD account (ACTIVE)
PASTE = '/tool create_campaign {"name": "Pasted %s",\n  "objective": "OUTCOME_TRAFFIC",\n  "daily_budget": 5000}'


def _readme_tool_block() -> str:
    """The README's multi-line `/tool launch_campaign` example, as printed."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(/tool launch_campaign \{.*?)\n```", text, re.S)
    assert block, "README.md lost its multi-line /tool launch_campaign example"
    return block.group(1)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **SANDBOX_START_ENV, "ADMONSTER_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200", **extra}
    for key in ("ADMONSTER_GRAPH_URL", "ADMONSTER_ACCESS_TOKEN", "ADMONSTER_LLM_BASE_URL", "ADMONSTER_LLM_MODEL"):
        env.pop(key, None)
    return env


# ---------------------------------------------------------------------------------------------------------------
# Lines into commands
# ---------------------------------------------------------------------------------------------------------------


def test_a_tool_call_spanning_lines_is_one_command():
    block = _readme_tool_block()
    assert len(block.splitlines()) > 1
    (command,) = split_commands(block.splitlines())
    assert command == block
    assert json.loads(command.split(None, 2)[2])["campaign"]["name"] == "Winter Boots"
    lines = ["/status", '/tool create_campaign {"name": "a } [ \\" {",', '"objective": "OUTCOME_TRAFFIC"}', "/help"]
    assert split_commands(lines) == ["/status", "\n".join(lines[1:3]), "/help"]
    # An unfinished call ends at the next command (the JSON reader then says what is wrong), or at the end.
    assert split_commands(['/tool list_campaigns {"limit": 2', "/help"]) == [
        '/tool list_campaigns {"limit": 2',
        "/help",
    ]
    assert split_commands(["/tool list_campaigns [", "1,"]) == ["/tool list_campaigns [\n1,"]
    deep = "/tool list_campaigns " + "[" * 50_000 + "]" * 50_000  # closed on its line: one command, found fast
    assert split_commands([deep, "/status"]) == [deep, "/status"]
    huge = split_commands(["/tool x {"] + ["1," * 1000] * (MAX_COMMAND_CHARS // 2000 + 2) + ["}"])
    assert len(huge[0]) > MAX_COMMAND_CHARS and huge[-1] == "}"  # the cap ended it; the lines after are their own
    assert tool_json_open('/tool x {"a": "}"') and not tool_json_open("/tool x {}") and not tool_json_open("/status {")


async def test_list_input_joins_like_piped_input():
    source = ListInput(["/status", *_readme_tool_block().splitlines(), "/quit"])
    assert [await source.read() for _ in range(4)] == ["/status", _readme_tool_block(), "/quit", None]


def test_history_file_is_private_and_keeps_no_personal_data(tmp_path):
    path = history_path(tmp_path / "home", 1)
    history = private_history(
        path, lambda text: "\n".join(line_at_rest(c, REGISTRY) for c in split_commands(text.split("\n")))
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for line in (
        f"/add_users 120210000000000099 {EMAIL}",
        f"mail {EMAIL} please",
        '/tool add_users {"audience_id": "1",\n "source": [{"email": "' + EMAIL + '"}]}',
        "/status",
    ):
        history.append_string(line)
    stored = path.read_text(encoding="utf-8")
    assert EMAIL not in stored and "jane" not in stored
    assert (
        stored.count("<customer data withheld: 1 rows>") == 2
        and "mail [EMAIL] please" in stored
        and "+/status" in stored
    )
    reloaded = private_history(path, str)
    assert list(reloaded.load_history_strings())[0] == "/status"
    os.chmod(path, 0o644)
    private_history(path, str).append_string("/accounts")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # an older, looser file is tightened


def test_completion_of_commands_ops_and_recent_ids():
    from prompt_toolkit.document import Document

    recent = RecentIds()
    recent.remember(f"Campaigns:\n  {CAMPAIGN} · Summer · ACTIVE\n  act_100000000000001 · /confirm c-8k2m9x1a")
    completer = chat_completer({"pause": "/pause ID: pause a campaign", "help": "/help"}, REGISTRY.names, recent)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), None)]

    assert complete("/pa") == ["/pause"] + [f"/{op}" for op in REGISTRY.names() if op.startswith("pa")]
    assert "list_campaigns" in complete("/tool list_c") and "create_campaign" in complete("/help create_")
    assert complete("/pause 1202") == [CAMPAIGN]
    assert complete("/use act") == ["act_100000000000001"] and complete("/confirm c-") == ["c-8k2m9x1a"]
    assert complete("/tool create_campaign {\n") == []


# ---------------------------------------------------------------------------------------------------------------
# The chat's sign-in listener: open as long as its link is valid, started again by the next link
# ---------------------------------------------------------------------------------------------------------------


async def _consent(session: aiohttp.ClientSession, dialog_url: str) -> str:
    parsed = urllib.parse.urlsplit(dialog_url)
    query = {**dict(urllib.parse.parse_qsl(parsed.query)), "decision": "allow"}
    confirm = urllib.parse.urlunsplit(
        parsed._replace(path=parsed.path + "/confirm", query=urllib.parse.urlencode(query))
    )
    async with session.get(confirm, allow_redirects=False) as redirect:
        assert redirect.status == 302, await redirect.text()
        return redirect.headers["Location"]


async def test_chat_listener_lives_as_long_as_its_link(tmp_path):
    import asyncio

    heard = []
    async with open_runtime(sandbox_settings(tmp_path)) as runtime:
        listener = CallbackListener(runtime, one_shot=False, on_outcome=heard.append, link_seconds=0.3)
        runtime.callback_url = listener.url
        workspace = await runtime.workspace("linked")
        await runtime.store.set_setting(workspace.id, SANDBOX_AUTOCONNECT, False)
        facebook = await runtime.facebook_for(workspace)
        try:
            first = await facebook.call("connect")
            assert first.ok and listener.listening
            for _ in range(
                200
            ):  # the link's time is up: the port closes (0.3 s here; 10 minutes and a margin by default)
                if not listener.listening:
                    break
                await asyncio.sleep(0.05)
            assert not listener.listening
            listener.link_seconds = None  # the default from here: the link's lifetime, so the sign-in below has time
            second = await facebook.call("connect")  # a later link gets a working listener
            redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(second.data["url"]).query))["redirect_uri"]
            assert second.ok and listener.listening and redirect == listener.redirect_uri
            async with aiohttp.ClientSession() as session:
                callback = await _consent(session, second.data["url"])
                async with session.get(callback) as page:
                    assert page.status == 200 and "Facebook connected" in await page.text()
            assert [o.ok for o in heard] == [True] and heard[0].title == "Facebook connected"
            assert "linked" in heard[0].lines[0]
            assert (await facebook.call("token_status")).ok
        finally:
            await listener.stop()
        assert not listener.listening


# ---------------------------------------------------------------------------------------------------------------
# The real chat in a pseudo-terminal
# ---------------------------------------------------------------------------------------------------------------


class Terminal:
    """`admonster chat` in a pty, driven as a person would: keys in, screen text out (waited for, never slept on)."""

    def __init__(self, home: Path) -> None:
        env = _env(home, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
        self.child = pexpect.spawn(
            ADMONSTER[0], ADMONSTER[1:], cwd=str(ROOT), env=env, encoding="utf-8", timeout=WAIT, dimensions=(50, 200)
        )
        self.seen: list[str] = []
        self.prompt()

    def expect(self, text: str) -> str:
        """Wait for `text`; what came before it."""
        self.child.expect_exact(text)
        self.seen.append(self.child.before + text)
        return self.child.before

    def prompt(self) -> None:
        self.expect("you> ")

    def command(self, line: str, answer: str) -> str:
        self.child.send(line + "\r")
        before = self.expect(answer)
        self.prompt()
        return before

    def paste(self, text: str) -> None:
        """A bracketed paste (what terminals send when text is pasted), then Enter."""
        self.child.send("\x1b[200~" + text + "\x1b[201~")
        self.child.send("\r")

    def leave(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus


def _sandbox_base(link: str) -> str:
    parsed = urllib.parse.urlsplit(link)
    return f"{parsed.scheme}://{parsed.netloc}"


def _control(base: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}/__sandbox/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


def _wait_until(check, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"waited {WAIT} s for {what}"
        time.sleep(0.05)


def _audit(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "admonster.db") as db:
        return db.execute("SELECT op, outcome FROM audit_log ORDER BY id").fetchall()


def test_terminal_chat_in_a_pty(tmp_path):
    home = tmp_path / "home"
    term = Terminal(home)

    # (a) /connect: the link completes while the prompt waits, and the chat says so.
    term.child.send("/connect\r")
    term.expect("Open this link to connect Facebook")
    term.child.expect(r"(http://127\.0\.0\.1:\d+/v[\d.]+/dialog/oauth\?\S+)")
    link = term.child.match.group(1)
    term.prompt()
    parsed = urllib.parse.urlsplit(link)
    query = {**dict(urllib.parse.parse_qsl(parsed.query)), "decision": "allow"}
    confirm = urllib.parse.urlunsplit(
        parsed._replace(path=parsed.path + "/confirm", query=urllib.parse.urlencode(query))
    )
    with urllib.request.urlopen(
        confirm, timeout=WAIT
    ) as page:  # follows the sandbox's redirect to our loopback callback
        assert page.url.startswith(query["redirect_uri"]) and "Facebook connected" in page.read().decode()
    term.expect("Facebook connected: Workspace “default” is connected as Demo User.")
    sandbox = _sandbox_base(link)

    # Tab completes a slash-command.
    term.child.send("/confirmat")
    term.expect("/confirmat")
    term.child.send("\t")
    term.expect("ions")  # the completion drawn (only the new letters may be redrawn)
    term.child.send("\r")  # as typed, "/confirmat" would be an unknown command
    assert "unknown command" not in term.expect("No calls are waiting for confirmation.")
    term.prompt()

    # (d) A multi-line /tool paste is one call: one answer, one audit entry; typed line by line, the same.
    term.paste(PASTE % "One")
    term.expect("Created campaign Pasted One (")
    term.prompt()
    for line in (PASTE % "Two").split("\n"):
        term.child.send(line + "\r")
    term.expect("Created campaign Pasted Two (")
    term.prompt()

    # (b) Ctrl-C cancels a running write: a delayed POST (the sandbox's documented fault) is under way, Ctrl-C, and
    # the write stays in the audit log as pending; the next command works.
    _control(
        sandbox, "POST", "faults", {"kind": "delay", "delay_ms": 600_000, "method": "POST", "path": f"^{CAMPAIGN}$"}
    )
    term.child.send(f"/pause {CAMPAIGN}\r")
    _wait_until(
        lambda: not any(f["remaining"] for f in _control(sandbox, "GET", "faults")["data"]),
        "the pause to reach the sandbox",
    )
    term.child.sendintr()
    cancelled = term.expect("/audit shows the log.")
    assert "Cancelled. Write #" in cancelled and "(pause_campaign) had started and is recorded as pending" in cancelled
    term.prompt()
    _control(sandbox, "DELETE", "faults")
    # A read cancelled the same way wrote nothing, and says so.
    _control(sandbox, "POST", "faults", {"kind": "delay", "delay_ms": 600_000, "method": "GET", "path": "/campaigns$"})
    term.child.send("/campaigns\r")
    _wait_until(
        lambda: not any(f["remaining"] for f in _control(sandbox, "GET", "faults")["data"]),
        "the campaigns read to reach the sandbox",
    )
    term.child.sendintr()
    term.expect("Cancelled. Nothing was written.")
    term.prompt()
    _control(sandbox, "DELETE", "faults")
    term.command("/campaigns ACTIVE", "Campaigns in")

    # (c) Arrow-up recalls the previous line.
    term.child.send("\x1b[A")
    term.expect("/campaigns ACTIVE")
    term.child.send("\r")
    term.expect("Campaigns in")
    term.prompt()

    # Personal data typed at the prompt, for (e); then Ctrl-C: a line being typed is cleared, an empty prompt asks
    # once, and the next command still runs.
    term.command(f"mail {EMAIL} please", "No LLM is configured")
    term.command(f"/add_users 120210000000000099 {EMAIL}", "ERROR")
    term.child.send("/stat")
    term.expect("/stat")
    term.child.sendintr()  # clears the line (the hint below only comes at an empty prompt)
    term.child.sendintr()
    term.expect("Press Ctrl-C again or Ctrl-D to leave.")
    term.prompt()
    term.command(f"/get_campaign {CAMPAIGN}", "Retargeting - Ad Set Budgets")
    term.child.sendintr()
    term.expect("Press Ctrl-C again or Ctrl-D to leave.")
    term.prompt()
    term.child.sendintr()
    assert term.leave() == 0

    audit = _audit(home)
    assert [op for op, _ in audit].count("create_campaign") == 2 and ("pause_campaign", "pending") in audit
    assert "Traceback" not in "".join(term.seen)

    # (e) The history file is 0600 and holds no raw email; a new session recalls the last line with arrow-up.
    (path,) = (home / "terminal_history").iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text(encoding="utf-8")
    assert EMAIL not in stored and "[EMAIL]" in stored and "<customer data withheld: 1 rows>" in stored
    # A multi-line call is one entry, kept as the chat history keeps a /tool line (its JSON on one line).
    assert (
        '+/tool create_campaign {"name": "Pasted Two", "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000}' in stored
    )
    again = Terminal(home)
    again.child.send("\x1b[A")
    again.expect(f"/get_campaign {CAMPAIGN}")
    again.child.send("\r")
    again.expect("Retargeting - Ad Set Budgets")
    again.prompt()
    again.child.sendeof()
    assert again.leave() == 0


# ---------------------------------------------------------------------------------------------------------------
# Piped runs
# ---------------------------------------------------------------------------------------------------------------


def _piped(home: Path, text: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ADMONSTER, input=text, text=True, capture_output=True, cwd=ROOT, env=_env(home, TERM="dumb"), timeout=WAIT * 2
    )


def test_piped_runs_exit_status_and_banner_on_stderr(tmp_path):
    good = _piped(tmp_path, "/accounts\n/status\n")
    assert good.returncode == 0, good.stderr
    assert "SANDBOX" in good.stderr and "Type /help" in good.stderr
    assert "SANDBOX" not in good.stdout and "Type /help" not in good.stdout and "Demo Tokyo (JPY)" in good.stdout

    failed = _piped(tmp_path, "/accounts\n/pause 1 2 3\n/status\n")
    assert failed.returncode == 1, failed.stderr
    assert "ERROR validation" in failed.stdout and "Demo Tokyo (JPY)" in failed.stdout  # it went on after the error
    assert "Traceback" not in failed.stdout + failed.stderr


def test_piped_multi_line_tool_block_is_one_call(tmp_path):
    block = (PASTE % "Piped") + "\n/audit\n" + _readme_tool_block() + "\n"
    result = _piped(tmp_path, block)
    assert result.returncode == 0, result.stderr  # the README's launch uploads examples/boots.jpg, which exists
    out = result.stdout
    assert out.count("Created campaign Pasted Piped (") == 1 and "No LLM is configured" not in out
    assert "image boots.jpg uploaded" in out and "ERROR" not in out
    assert [op for op, _ in _audit(tmp_path)] == ["create_campaign", "launch_campaign"]

"""The README works as printed (issue 19): every chat example, in the order printed, through the real terminal chat
(piped, embedded sandbox, a fresh home, from the repository folder as `make chat` runs it); the multi-line launch; the
A/B plan, which is the file beside its photos; and the shell commands for programs. No ERROR, no traceback, no
machine hint in what a person reads. Not run: `make chat`/`make test` themselves, and the lines that need a secret
the reader must paste (`amk_…` API keys), which tests/test_admonster_server.py covers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_two_voices import machine_hints
from testkit import SANDBOX_START_ENV

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def chat_table(text: str) -> list[str]:
    """The commands of the table under "In the chat, try these", in order."""
    section = text[text.index("In the chat, try these") :]
    table = section[section.index("| type |") :].split("\n\n", 1)[0]
    return [row.split("`", 2)[1] for row in table.splitlines() if row.startswith("| `")]


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADMONSTER_", "OPENAI_"))}
    return {**env, **SANDBOX_START_ENV, "ADMONSTER_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}


def chat(lines: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "admonster_bot", "chat"],
        input=lines,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(home),
        timeout=240,
    )


def reads_well(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, (run.returncode, run.stdout[-3000:], run.stderr[-3000:])
    assert "Traceback" not in run.stdout + run.stderr and "ERROR" not in run.stdout, run.stdout
    assert machine_hints(run.stdout) == [], machine_hints(run.stdout)
    return run.stdout


def test_the_chat_table_runs_as_printed_in_order(tmp_path):
    commands = chat_table(README)
    assert len(commands) >= 15 and commands[0] == "/status"
    out = reads_well(chat("\n".join(commands) + "\n", tmp_path / "home"))
    # the table's promises, in its order: a pause, a held resume that /confirm runs, a held budget that /reject drops,
    # an undo, and a created campaign whose next step is a command
    order = [
        "Paused campaign",
        "Waiting for your confirmation",
        "Resumed campaign",
        "Waiting for your confirmation",
        "Dropped c-",
        "Undid #2",
        "Created campaign Summer Sale",
        "Next, an ad set",
        "Commands by task",
        "Example:",
    ]
    at = 0
    for words in order:
        at = out.index(words, at) + len(words)


def test_the_launch_example_and_the_ab_plan_run_as_printed(tmp_path):
    [launch] = [body for lang, body in fenced_blocks(README) if body.startswith("/tool launch_campaign")]
    [plan] = [body for lang, body in fenced_blocks(README) if lang == "yaml"]
    assert (ROOT / "examples" / "spring-test" / "plan.yaml").read_text(encoding="utf-8") == plan
    abtest = re.search(r"`(/abtest examples/\S+)`", README).group(1)
    out = reads_well(chat(launch + abtest + "\n/confirm\n/experiments\n", tmp_path / "home"))
    assert "Winter Boots" in out and "PAUSED" in out
    assert out.index("Waiting for your confirmation") < out.index("Spring photo test", out.index("/confirm c-"))


def test_the_shell_examples_for_programs_run_as_printed(tmp_path):
    env = environment(tmp_path / "home")
    printed = re.search(r"`(printf '[^`]+\| \.venv/bin/admonster chat)`", README).group(1)
    lines = [printed]
    for lang, body in fenced_blocks(README):
        if lang == "sh":
            lines += [
                line for line in body.splitlines() if line.startswith(".venv/bin/admonster ") and " serve" not in line
            ]
    assert len(lines) >= 5, lines
    for line in lines:
        run = subprocess.run(["bash", "-c", line], capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
        assert run.returncode == 0 and "Traceback" not in run.stderr, (line, run.stdout[-2000:], run.stderr[-2000:])
        assert run.stdout.strip(), line

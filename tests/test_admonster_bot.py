"""The terminal bot: slash-command parsing from the registry, and `admonster chat` driven through piped input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from admonster_chat import SlashCommand, SlashSyntaxError, parse_slash, slash_to_call
from fi_facebook import REGISTRY
from testkit import SANDBOX_START, SANDBOX_START_ENV

ROOT = Path(__file__).resolve().parent.parent


def test_parse_slash_into_a_frozen_command():
    command = parse_slash('/budget 123 5000 dry_run=true name="Big sale"')
    assert command == SlashCommand("budget", ("123", "5000"), (("dry_run", "true"), ("name", "Big sale")))
    with pytest.raises(AttributeError):
        command.command = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "line, op, args",
    [
        ("/pause 120210000000000001", "pause_campaign", {"campaign_id": "120210000000000001"}),
        ("/budget 12 5000", "update_campaign", {"campaign_id": "12", "daily_budget": "5000"}),
        ("/campaigns ACTIVE,paused", "list_campaigns", {"status": ["ACTIVE", "PAUSED"]}),
        ("/campaigns limit=5", "list_campaigns", {"limit": "5"}),
        ("/use act_1", "select_ad_account", {"ad_account_id": "act_1"}),
        ("/get_campaign 77", "get_campaign", {"campaign_id": "77"}),
        (
            '/bulk_update_campaigns campaign_ids=["1","2"] status=PAUSED',
            "bulk_update_campaigns",
            {"campaign_ids": ["1", "2"], "status": "PAUSED"},
        ),
        ("/undo 4", "undo", {"audit_id": "4"}),
        ("/abtest plan.yaml status=ACTIVE", "launch_experiment", {"plan_file": "plan.yaml", "status": "ACTIVE"}),
        ("/experiments running", "list_experiments", {"status": "running"}),
        ("/experiment 3", "experiment_status", {"experiment_id": "3"}),
    ],
)
def test_slash_commands_map_onto_ops(line, op, args):
    assert slash_to_call(parse_slash(line), REGISTRY) == (op, args)


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("/pauze 1", "Did you mean /pause"),
        ("/pause 1 2 3", "takes 1 word"),
        ('/budget "unclosed', "cannot read"),
    ],
)
def test_bad_slash_commands(line, fragment):
    with pytest.raises(SlashSyntaxError, match=fragment):
        slash_to_call(parse_slash(line), REGISTRY)


def _chat(home: Path, lines: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **SANDBOX_START_ENV,
        "ADMONSTER_HOME": str(home),
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "200",
    }
    for key in ("ADMONSTER_GRAPH_URL", "ADMONSTER_ACCESS_TOKEN", "ADMONSTER_LLM_BASE_URL", "ADMONSTER_LLM_MODEL"):
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "admonster_bot", "chat"],
        input="\n".join(lines) + "\n",
        text=True,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def test_chat_through_piped_input(tmp_path):
    first = _chat(
        tmp_path,
        [
            "/accounts",
            "/status",
            "/campaigns ACTIVE",
            "hello there",
            "/pauze 1",
            "/budget abc",
            '/tool list_campaigns {"limit": 2',
            "/help",
        ],
    )
    out = first.stdout
    assert first.returncode == 1, first.stderr  # piped: some lines failed (the banner is on stderr)
    assert "SANDBOX" in first.stderr and "SANDBOX" not in out and "Demo Store (USD)" in out
    assert "Traceback" not in out + first.stderr
    assert "No LLM is configured" in out
    assert "Did you mean /pause" in out
    assert "ERROR validation" in out and "Fix:" in out
    assert "args is not valid JSON" in out
    assert "/confirm ID" in out  # the help
    campaign_ids = re.findall(r"(\d{6,}) · [^·]+ · ACTIVE", out)
    assert campaign_ids, out

    # A second session on the same home: the sandbox state and the audit log persist.
    target = campaign_ids[0]
    second = _chat(tmp_path, [f"/pause {target}", "/audit", f"/get_campaign {target}"])
    assert second.returncode == 0, second.stderr  # every line answered without an error
    assert "Paused campaign" in second.stdout and "status ACTIVE → PAUSED" in second.stdout
    audit_id = re.search(r"audit #(\d+)", second.stdout).group(1)
    assert f"#{audit_id}" in second.stdout.split("Audit log")[1]

    third = _chat(tmp_path, [f"/undo {audit_id}"])
    confirmation = re.search(r"/confirm (c-[0-9a-z]+)", third.stdout)
    assert confirmation, third.stdout
    fourth = _chat(tmp_path, [f"/confirm {confirmation.group(1)}", f"/get_campaign {target}"])
    assert f"Undid #{audit_id}" in fourth.stdout
    assert "status ACTIVE" in fourth.stdout


def test_tools_prints_openai_schema():
    result = subprocess.run(
        [sys.executable, "-m", "admonster_bot", "tools", "--format", "openai"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    tools = json.loads(result.stdout)
    assert tools[0]["function"]["name"] == "facebook"
    bad = subprocess.run(
        [sys.executable, "-m", "admonster_bot", "tools", "--format", "xml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("ERROR validation") and "Traceback" not in bad.stderr


def test_live_mode_without_token_says_how_to_connect(tmp_path):
    env = {
        **os.environ,
        "ADMONSTER_HOME": str(tmp_path),
        "ADMONSTER_GRAPH_URL": "https://graph.facebook.com",
        "NO_COLOR": "1",
    }
    for key in ("ADMONSTER_ACCESS_TOKEN", "ADMONSTER_APP_ID", "ADMONSTER_APP_SECRET"):
        env.pop(key, None)
    result = subprocess.run(
        [sys.executable, "-m", "admonster_bot", "chat"],
        input="/campaigns\n/connect\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr  # piped, and the lines failed
    assert "LIVE" in result.stderr and "Facebook not connected" in result.stderr  # the banner
    assert "ERROR auth: Facebook is not connected" in result.stdout and "/connect" in result.stdout
    assert "ERROR validation: No Facebook app is configured" in result.stdout and "ADMONSTER_APP_ID" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_config_is_one_line(tmp_path):
    env = {**os.environ, "ADMONSTER_HOME": str(tmp_path), "ADMONSTER_API_VERSION": "latest"}
    result = subprocess.run(
        [sys.executable, "-m", "admonster_bot", "chat"],
        input="",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and "ADMONSTER_API_VERSION" in result.stderr and "Traceback" not in result.stderr


def test_admonster_sandbox_serves_tokens_to_any_client(tmp_path):
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, **SANDBOX_START_ENV, "ADMONSTER_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "admonster_bot", "sandbox", "--port", str(port), "--db", ":memory:"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/__sandbox/tokens", method="POST", data=b"")
                grant = json.loads(urllib.request.urlopen(request, timeout=2).read())
                break
            except OSError:
                assert time.monotonic() < deadline, server.stderr.read() if server.poll() is not None else "no answer"
                time.sleep(0.2)
        assert {"access_token", "app_id", "app_secret", "user_id", "expires_at"} <= set(grant)
        assert 0 <= grant["expires_at"] - SANDBOX_START.timestamp() - 60 * 86400 < 60  # its clock began there
        import hashlib
        import hmac

        proof = hmac.new(grant["app_secret"].encode(), grant["access_token"].encode(), hashlib.sha256).hexdigest()
        me = json.loads(
            urllib.request.urlopen(
                f"http://127.0.0.1:{port}/v26.0/me?fields=id,name&access_token={grant['access_token']}&appsecret_proof={proof}",
                timeout=5,
            ).read()
        )
        assert me["id"] == grant["user_id"] and me["name"]
    finally:
        server.terminate()
        server.wait(timeout=10)


class StandaloneSandbox:
    """`admonster sandbox` in its own process: a stand-in for graph.facebook.com that LIVE mode can point at (its
    clock is this machine's, as Facebook's and the product's are in live mode)."""

    def __init__(self, tmp_path: Path) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "admonster_bot",
                "sandbox",
                "--port",
                str(self.port),
                "--db",
                str(tmp_path / "standalone.db"),
            ],
            cwd=ROOT,
            env={**os.environ, "ADMONSTER_HOME": str(tmp_path)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.app = self._wait_for("GET", "app")

    def _wait_for(self, method: str, path: str) -> dict:
        import time

        deadline = time.monotonic() + 30
        while True:
            try:
                return self.control(method, path)
            except OSError:
                assert time.monotonic() < deadline and self.process.poll() is None, "the sandbox did not start"
                time.sleep(0.2)

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(
            f"{self.url}/__sandbox/{path}", method=method, data=data, headers={"Content-Type": "application/json"}
        )
        return json.loads(urllib.request.urlopen(request, timeout=5).read())

    def live_env(self, home: Path) -> dict:
        env = {
            **os.environ,
            "ADMONSTER_HOME": str(home),
            "ADMONSTER_GRAPH_URL": self.url,
            "NO_COLOR": "1",
            "ADMONSTER_APP_ID": self.app["app_id"],
            "ADMONSTER_APP_SECRET": self.app["app_secret"],
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("ADMONSTER_ACCESS_TOKEN", None)
        return env

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def standalone(tmp_path):
    sandbox = StandaloneSandbox(tmp_path)
    yield sandbox
    sandbox.stop()


def _cli(args: list[str], env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "admonster_bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_token_set_reads_stdin_and_checks_before_storing(standalone, tmp_path):
    env = standalone.live_env(tmp_path / "home")
    other = standalone.control("POST", "tokens", {"app": "other"})["access_token"]
    refused = _cli(["token", "set"], env, stdin=other + "\n")
    assert (
        refused.returncode == 1
        and "another Facebook app" in refused.stderr
        and other not in refused.stderr + refused.stdout
    )
    empty = _cli(["token", "set"], env, stdin="")
    assert empty.returncode == 2 and "no token on standard input" in empty.stderr
    good = standalone.control("POST", "tokens", {"type": "SYSTEM_USER", "expires_in": 0})["access_token"]
    stored = _cli(["token", "set"], env, stdin=good + "\n")
    assert stored.returncode == 0, stored.stderr
    assert "Stored." in stored.stdout and "never expires" in stored.stdout and good not in stored.stdout
    status = _cli(["token", "status"], env)
    assert status.returncode == 0 and "valid" in status.stdout
    listed = _cli(["call", "list_ad_accounts"], env)
    assert listed.returncode == 0 and "Demo Store (USD)" in listed.stdout
    assert good.encode() not in (tmp_path / "home" / "admonster.db").read_bytes()  # encrypted at rest
    checked = _cli(["jobs", "run", "token_check"], env)
    assert checked.returncode == 0, checked.stderr
    unknown = _cli(["jobs", "run", "token_chek"], env)
    assert unknown.returncode == 1 and unknown.stderr.startswith("ERROR validation") and "token_check" in unknown.stderr


def test_admonster_connect_one_shot_callback(standalone, tmp_path):
    import urllib.parse
    import urllib.request

    env = standalone.live_env(tmp_path / "home")
    process = subprocess.Popen(
        [sys.executable, "-m", "admonster_bot", "connect", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for line in process.stdout:
            if line.startswith("http"):
                url = line.strip()
                break
        assert url and "dialog/oauth" in url, process.stderr.read()
        parsed = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        assert query["redirect_uri"].startswith("http://127.0.0.1:")
        confirm = urllib.parse.urlunsplit(
            parsed._replace(path=parsed.path + "/confirm", query=urllib.parse.urlencode({**query, "decision": "allow"}))
        )
        page = urllib.request.urlopen(confirm, timeout=10).read().decode()  # follows the redirect to our listener
        assert "Facebook connected" in page
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Connected." in out
    status = _cli(["token", "status"], env)
    assert "valid" in status.stdout and "expires in" in status.stdout


def test_workspace_create_prints_a_key_once(tmp_path):
    env = {**os.environ, "ADMONSTER_HOME": str(tmp_path)}
    created = _cli(["workspace", "create", "acme"], env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[1].strip()
    assert key.startswith("amk_")
    assert key.encode() not in (tmp_path / "admonster.db").read_bytes()
    listed = _cli(["workspace", "list"], env)
    assert "acme" in listed.stdout and key not in listed.stdout


def test_token_reports_the_environment_token_the_session_uses(standalone, tmp_path):
    """LIVE mode with ADMONSTER_ACCESS_TOKEN and nothing stored: /token checks that token and says where it is from
    (it used to say "not connected" while every op worked)."""
    env = standalone.live_env(tmp_path / "home")
    token = standalone.control("POST", "tokens", {})["access_token"]
    env["ADMONSTER_ACCESS_TOKEN"] = token
    status = _cli(["chat"], env, stdin="/token\n")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Facebook token valid" in status.stdout and "It comes from ADMONSTER_ACCESS_TOKEN" in status.stdout
    assert "not connected" not in status.stdout and token not in status.stdout + status.stderr
    env["ADMONSTER_ACCESS_TOKEN"] = token[:-6] + "XXXXXX"
    bad = _cli(["chat"], env, stdin="/token\n")
    assert "The Facebook token (from ADMONSTER_ACCESS_TOKEN) is not valid" in bad.stdout, bad.stdout

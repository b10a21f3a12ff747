"""The terminal bot: slash-command parsing from the registry, and `admonster chat` driven through piped input."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from admonster_bot import SlashCommand, SlashSyntaxError, parse_slash, slash_to_call
from fi_facebook import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def test_parse_slash_into_a_frozen_command():
    command = parse_slash('/budget 123 5000 dry_run=true name="Big sale"')
    assert command == SlashCommand("budget", ("123", "5000"), (("dry_run", "true"), ("name", "Big sale")))
    with pytest.raises(AttributeError):
        command.command = "x"  # type: ignore[misc]


@pytest.mark.parametrize("line, op, args", [
    ("/pause 120210000000000001", "pause_campaign", {"campaign_id": "120210000000000001"}),
    ("/budget 12 5000", "update_campaign", {"campaign_id": "12", "daily_budget": "5000"}),
    ("/campaigns ACTIVE,paused", "list_campaigns", {"status": ["ACTIVE", "PAUSED"]}),
    ("/campaigns limit=5", "list_campaigns", {"limit": "5"}),
    ("/use act_1", "select_ad_account", {"ad_account_id": "act_1"}),
    ("/get_campaign 77", "get_campaign", {"campaign_id": "77"}),
    ("/bulk_update_campaigns campaign_ids=[\"1\",\"2\"] status=PAUSED", "bulk_update_campaigns",
     {"campaign_ids": ["1", "2"], "status": "PAUSED"}),
    ("/undo 4", "undo", {"audit_id": "4"}),
])
def test_slash_commands_map_onto_ops(line, op, args):
    assert slash_to_call(parse_slash(line), REGISTRY) == (op, args)


@pytest.mark.parametrize("line, fragment", [
    ("/pauze 1", "Did you mean /pause"),
    ("/pause 1 2 3", "takes 1 word"),
    ('/budget "unclosed', "cannot read"),
])
def test_bad_slash_commands(line, fragment):
    with pytest.raises(SlashSyntaxError, match=fragment):
        slash_to_call(parse_slash(line), REGISTRY)


def _chat(home: Path, lines: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "ADMONSTER_HOME": str(home), "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}
    for key in ("ADMONSTER_GRAPH_URL", "ADMONSTER_ACCESS_TOKEN", "ADMONSTER_LLM_BASE_URL", "ADMONSTER_LLM_MODEL"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "admonster_bot", "chat"], input="\n".join(lines) + "\n", text=True,
                          capture_output=True, cwd=ROOT, env=env, timeout=timeout)


def test_chat_through_piped_input(tmp_path):
    first = _chat(tmp_path, ["/accounts", "/status", "/campaigns ACTIVE", "hello there", "/pauze 1", "/budget abc",
                             "/tool list_campaigns {\"limit\": 2", "/help"])
    out = first.stdout
    assert first.returncode == 0, first.stderr
    assert "SANDBOX" in out and "Demo Store (USD)" in out
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
    assert second.returncode == 0, second.stderr
    assert f"Paused campaign" in second.stdout and "status ACTIVE → PAUSED" in second.stdout
    audit_id = re.search(r"audit #(\d+)", second.stdout).group(1)
    assert f"#{audit_id}" in second.stdout.split("Audit log")[1]

    third = _chat(tmp_path, [f"/undo {audit_id}"])
    confirmation = re.search(r"/confirm (c-[0-9a-z]+)", third.stdout)
    assert confirmation, third.stdout
    fourth = _chat(tmp_path, [f"/confirm {confirmation.group(1)}", f"/get_campaign {target}"])
    assert f"Undid #{audit_id}" in fourth.stdout
    assert "status ACTIVE" in fourth.stdout


def test_tools_prints_openai_schema():
    result = subprocess.run([sys.executable, "-m", "admonster_bot", "tools", "--format", "openai"], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    tools = json.loads(result.stdout)
    assert tools[0]["function"]["name"] == "facebook"
    bad = subprocess.run([sys.executable, "-m", "admonster_bot", "tools", "--format", "xml"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("ERROR validation") and "Traceback" not in bad.stderr


def test_live_mode_without_token_is_one_line(tmp_path):
    env = {**os.environ, "ADMONSTER_HOME": str(tmp_path), "ADMONSTER_GRAPH_URL": "https://graph.facebook.com"}
    env.pop("ADMONSTER_ACCESS_TOKEN", None)
    result = subprocess.run([sys.executable, "-m", "admonster_bot", "chat"], input="", capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("ERROR config: LIVE mode has no Facebook token")
    assert "Traceback" not in result.stderr


def test_bad_config_is_one_line(tmp_path):
    env = {**os.environ, "ADMONSTER_HOME": str(tmp_path), "ADMONSTER_API_VERSION": "latest"}
    result = subprocess.run([sys.executable, "-m", "admonster_bot", "chat"], input="", capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 2 and "ADMONSTER_API_VERSION" in result.stderr and "Traceback" not in result.stderr


def test_admonster_sandbox_serves_tokens_to_any_client(tmp_path):
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ADMONSTER_HOME": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "admonster_bot", "sandbox", "--port", str(port), "--db", ":memory:"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        import hashlib
        import hmac

        proof = hmac.new(grant["app_secret"].encode(), grant["access_token"].encode(), hashlib.sha256).hexdigest()
        me = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/v26.0/me?fields=id,name&access_token={grant['access_token']}&appsecret_proof={proof}",
            timeout=5).read())
        assert me["id"] == grant["user_id"] and me["name"]
    finally:
        server.terminate()
        server.wait(timeout=10)

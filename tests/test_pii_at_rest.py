"""No raw personal data at rest (issue 18): a realistic `admonster serve` session types `/tool add_users` and
`/tool send_events` with emails and phones into chat (and an LLM passes them to a tool), reads the threads back over
HTTP, then every byte written under ADMONSTER_HOME is scanned for the raw emails, phones, tokens, app secret and API
key, and every database file and the home are checked private (0600 / 0700)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import stat
import tempfile
from pathlib import Path

import aiohttp

from admonster_store import DB_FILE_SUFFIXES, Store, head_revision
from admonster_store_legacy import LEGACY_VERSION, upgrade_legacy
from conftest import home_leaks_verdict, private_files_verdict
from testkit import SANDBOX_START, free_port

EMAILS = ("roberta.quill@example.com", "zed.buyer@example.org", "ann.lee@example.net")
PHONES = ("15551234567", "+1 650 555 0134", "16505550134", "4155550199")
NAMES = ("Roberta", "Quillfeather")


async def _post(session, url: str, key: str, path: str, body: dict) -> dict:
    async with session.post(url + path, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _get(session, url: str, key: str, path: str) -> dict:
    async with session.get(url + path, headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def _files(home: Path) -> list[Path]:
    return [path for path in home.rglob("*") if path.is_file()]


def _leaks(home: Path, needles: dict[str, str]) -> list[str]:
    """Every (file, what) where a needle's bytes appear in a file under home (SQLite pages and WAL frames included)."""
    found = []
    for path in _files(home):
        data = path.read_bytes()
        for what, needle in needles.items():
            for form in {needle, needle.lower()}:
                if form.encode() in data or form.encode("utf-16-le") in data:
                    found.append(f"{path.name}: {what}")
    return sorted(set(found))


def _not_private(home: Path) -> list[str]:
    wrong = [] if stat.S_IMODE(home.stat().st_mode) == 0o700 else [f"home {oct(stat.S_IMODE(home.stat().st_mode))}"]
    for path in _files(home):
        if (
            path.name.endswith((".db", ".db-wal", ".db-shm", ".db-journal", ".key"))
            and stat.S_IMODE(path.stat().st_mode) != 0o600
        ):
            wrong.append(f"{path.name} {oct(stat.S_IMODE(path.stat().st_mode))}")
    return wrong


async def test_a_chat_session_leaves_no_personal_data_or_secret_in_the_home(tmp_path):
    from admonster_config import load_settings
    from admonster_runtime import open_runtime
    from admonster_server import serve
    from test_admonster_llm import FakeModel, call, say

    home = tmp_path / "home"
    model = await FakeModel().start()
    port = free_port()
    settings = load_settings(
        home=home,
        sandbox_clock_start=SANDBOX_START,
        public_url=f"http://127.0.0.1:{port}",
        llm_base_url=model.url,
        llm_model="fake-model",
    )  # the sandbox's db in the home, as by default
    try:
        async with open_runtime(settings) as runtime:
            stop, started = asyncio.Event(), asyncio.Event()
            task = asyncio.create_task(serve(runtime, "127.0.0.1", port, stop=stop, ready=lambda _: started.set()))
            await asyncio.wait_for(started.wait(), 30)
            url = f"http://127.0.0.1:{port}"
            try:
                workspace = await runtime.store.ensure_workspace("alpha")
                key = await runtime.store.create_api_key(workspace.id)
                async with aiohttp.ClientSession() as session:
                    chat = lambda message, thread="crm": _post(
                        session, url, key, "/v1/chat", {"thread_id": thread, "message": message}
                    )  # noqa: E731
                    made = await _post(
                        session,
                        url,
                        key,
                        "/v1/tools/facebook",
                        {"op": "create_customer_list_audience", "args": {"name": "VIPs"}},
                    )
                    assert made["ok"], made
                    audience_id = made["data"]["audience_id"]
                    rows = [
                        {"email": EMAILS[0], "phone": PHONES[0], "fn": NAMES[0], "ln": NAMES[1]},
                        {"email": EMAILS[1], "phone": PHONES[1], "country": "US"},
                    ]
                    added = await chat(f"/tool add_users {json.dumps({'audience_id': audience_id, 'source': rows})}")
                    assert added["ok"], added
                    assert added["tool_calls"][0]["ok"]
                    slash = await chat(
                        f"/add_users {audience_id} source='{json.dumps([{'email': EMAILS[2], 'phone': PHONES[3]}])}'"
                    )
                    assert slash["ok"], slash
                    broken = await chat(
                        f'/tool add_users {{"audience_id": "{audience_id}", "source": [{{"email": "{EMAILS[2]}"'
                    )
                    assert not broken["ok"]
                    pixels = await _post(session, url, key, "/v1/tools/facebook", {"op": "list_pixels"})
                    pixel_id = pixels["data"]["pixels"][0]["id"]
                    event = {
                        "event_name": "Purchase",
                        "event_id": "ev-1",
                        "action_source": "website",
                        "event_source_url": "https://shop.example.com/thanks",
                        "user_data": {"em": EMAILS[1], "ph": PHONES[2], "client_user_agent": "Mozilla/5.0 (test)"},
                        "custom_data": {"value": 12, "currency": "usd"},
                    }
                    sent = await chat(f"/tool send_events {json.dumps({'pixel_id': pixel_id, 'events': [event]})}")
                    assert sent["ok"], sent
                    # The LLM is given the emails in free text and passes them to add_users itself.
                    model.plan(
                        call(
                            "add_users",
                            {"audience_id": audience_id, "source": [{"email": EMAILS[0], "phone": PHONES[0]}]},
                        ),
                        say("Added them."),
                    )
                    llm = await chat(f"Please add {EMAILS[0]} (phone {PHONES[0]}) to VIPs", thread="llm")
                    assert llm["ok"] and llm["tool_calls"][0]["ok"], llm
                    # A held call that needs its people's data later keeps them, encrypted.
                    held = await runtime.store.add_confirmation(
                        workspace.id, op="add_users", preview="test", args={"audience_id": audience_id, "source": rows}
                    )
                    assert (await runtime.store.get_confirmation(workspace.id, held)).args["source"] == rows

                    threads = [await _get(session, url, key, f"/v1/threads/{t}") for t in ("crm", "llm")]
                    text = json.dumps(threads)
                    for needle in (*EMAILS, PHONES[0], PHONES[2], PHONES[3], NAMES[1]):
                        assert needle not in text, needle
                    assert "withheld" in text and "add_users" in text and "send_events" in text
                    assert "[WITHHELD]" in text  # the emails the person typed in free text
                    during = _not_private(home)
                    assert any(p.name.endswith("-wal") for p in _files(home))  # the WAL files exist and were checked
                token = await runtime.store.load_token(workspace.id)
                secrets_ = {
                    "token": token.token,
                    "app_secret": token.app_secret or runtime.app.app_secret,
                    "api_key": key,
                }
            finally:
                stop.set()
                await task
    finally:
        await model.stop()
    assert during == []
    assert _not_private(home) == []
    needles = {**{f"email {e}": e for e in EMAILS}, **{f"phone {p}": p for p in PHONES}, f"name {NAMES[1]}": NAMES[1]}
    assert _leaks(home, needles) == []
    # Only the embedded sandbox's own file may hold the token it issued and its app's secret: it plays Facebook, whose
    # records those are (SANDBOX mode only; docs/security.md). Ad Monster's files hold neither, nor the API key.
    leaks = _leaks(home, secrets_)
    assert [leak for leak in leaks if not leak.split(":")[0].startswith("sandbox.db")] == [], leaks
    assert not any("api_key" in leak for leak in leaks)


async def test_older_homes_are_made_private_on_open(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    async with await Store.open(home / "admonster.db") as store:
        await store.ensure_workspace("x")
    for suffix in ("", "-wal", "-shm"):
        if (home / f"admonster.db{suffix}").exists():
            os.chmod(home / f"admonster.db{suffix}", 0o644)
    os.chmod(home / "secret.key", 0o644)
    os.chmod(home, 0o755)
    async with await Store.open(home / "admonster.db") as store:
        assert [w.name for w in await store.list_workspaces()] == ["x"]
        assert _not_private(home) == []
        assert all(
            stat.S_IMODE(os.stat(f"{store.path}{s}").st_mode) == 0o600
            for s in DB_FILE_SUFFIXES
            if os.path.exists(f"{store.path}{s}")
        )


async def test_confirmations_held_before_encryption_still_run(tmp_path):
    """A confirmation written by schema 9 (args as plain JSON) reads back after the upgrade; new ones are encrypted."""
    db_path = tmp_path / "home" / "admonster.db"
    db_path.parent.mkdir(mode=0o700)
    assert upgrade_legacy(db_path, 9) == 9
    with sqlite3.connect(db_path) as db:  # as the version 9 code wrote it
        workspace_id = db.execute(
            "INSERT INTO workspaces (name, created_at) VALUES ('old', '2026-03-01T00:00:00+00:00')"
        ).lastrowid
        db.execute(
            "INSERT INTO confirmations (id, workspace_id, op, args_json, preview, created_at, expires_at) "
            "VALUES ('c-000001', ?, 'pause_campaign', ?, 'p', '2026-03-01T00:00:00+00:00', '2126-03-01T00:00:00+00:00')",
            (workspace_id, json.dumps({"campaign_id": "1"})),
        )
    async with await Store.open(db_path) as store:
        workspace = await store.get_workspace(workspace_id)
        assert await store.schema_version() == int(head_revision()) > LEGACY_VERSION
        [old] = await store.list_confirmations(workspace.id)
        assert old.args == {"campaign_id": "1"}
        new_id = await store.add_confirmation(
            workspace.id, op="add_users", preview="p", args={"audience_id": "2", "source": [{"email": EMAILS[0]}]}
        )
        assert (await store.get_confirmation(workspace.id, new_id)).args["source"][0]["email"] == EMAILS[0]
    with sqlite3.connect(db_path) as db:
        stored = db.execute("SELECT args_json FROM confirmations WHERE id = ?", (new_id,)).fetchone()[0]
    assert EMAILS[0] not in stored and not stored.startswith("{")


def test_a_turn_is_kept_without_its_personal_values():
    from fi_facebook import chat_messages_at_rest, command_line_at_rest

    rows = [["email", "phone"], [EMAILS[0], PHONES[0]], [EMAILS[1], PHONES[3]]]
    call = {
        "id": "c1",
        "type": "function",
        "function": {
            "name": "facebook",
            "arguments": json.dumps({"op": "add_users", "args": {"audience_id": "9", "source": rows}}),
        },
    }
    bare = {"id": "c2", "type": "function", "function": {"name": "facebook", "arguments": json.dumps({"op": "help"})}}
    kept = chat_messages_at_rest(
        [
            {"role": "user", "content": f"add {EMAILS[0]} and {PHONES[3]} please"},
            {"role": "assistant", "content": None, "tool_calls": [call, bare]},
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": f'ERROR validation: source.1: bad phone (got "{PHONES[0]}")',
            },
            {"role": "assistant", "content": "Done: 2 rows; the email column was read."},
        ]
    )
    text = json.dumps(kept)
    assert not any(value in text for value in (EMAILS[0], EMAILS[1], PHONES[0], PHONES[3]))
    assert kept[0]["content"] == "add [WITHHELD] and [WITHHELD] please"
    assert json.loads(kept[1]["tool_calls"][0]["function"]["arguments"]) == {
        "op": "add_users",
        "args": {"audience_id": "9", "source": "<customer data withheld: 3 rows>"},
    }
    assert json.loads(kept[1]["tool_calls"][1]["function"]["arguments"]) == {"op": "help"}
    assert kept[3]["content"] == "Done: 2 rows; the email column was read."  # the header's words are not masked
    csv_path = {"audience_id": "9", "source": "/home/me/customers.csv"}
    assert (
        command_line_at_rest("/add_users 9 source=/home/me/customers.csv", "add_users", csv_path)
        == "/add_users 9 source=/home/me/customers.csv"
    )  # a path is not personal data: the line is kept as typed
    typed = f'/add_users 9 source=\'[{{"email": "{EMAILS[2]}"}}]\''
    assert (
        command_line_at_rest(typed, "add_users", {"audience_id": "9", "source": [{"email": EMAILS[2]}]})
        == '/tool add_users {"audience_id": "9", "source": "<customer data withheld: 1 rows>"}'
    )


def test_the_suite_wide_scan_finds_what_it_looks_for():
    """After the whole suite, conftest scans every home the suite made (issue 18's "Done when"): the scan itself must
    find a planted email, formatted phone, token and API key, keep to Ad Monster's own files, flag loose permissions,
    and pass a clean home."""
    with tempfile.TemporaryDirectory() as scratch:  # outside the suite's tmp folders, which the session's scan reads
        _scan_planted_homes(Path(scratch))


def _scan_planted_homes(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir(mode=0o700)
    (clean / "admonster.db").write_bytes(
        b"workspace alpha act_100000000000001 2026-12-06T18:23:01+00:00 amk_pedWcz8y-_n1"
    )
    (clean / "admonster.db").chmod(0o600)
    (clean / "sandbox.db").write_bytes(f"EAAS{secrets.token_hex(80)}".encode())  # Facebook's own records (the sandbox)
    assert home_leaks_verdict(tmp_path) == [] and private_files_verdict(tmp_path) == []

    dirty = tmp_path / "dirty"
    (dirty / "files" / "1" / "out").mkdir(parents=True)
    (dirty / "admonster.db").write_bytes(f"{EMAILS[1]} and {PHONES[1]}".encode())
    (dirty / "admonster.db-wal").write_bytes(f"EAAS{secrets.token_hex(80)}".encode())
    (dirty / "files" / "1" / "out" / "x.csv").write_bytes(f"amk_{secrets.token_urlsafe(32)}".encode())
    found = " ".join(home_leaks_verdict(tmp_path))
    for kind in ("email", "phone", "access token", "API key"):
        assert kind in found, (kind, found)
    assert "clean" not in found and "admonster.db-wal" in found and "x.csv" in found
    assert EMAILS[1] not in found  # the report names the kind, not the value
    assert any(line.startswith("dirty/admonster.db ") for line in private_files_verdict(tmp_path))

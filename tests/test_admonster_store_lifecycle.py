"""Store additions for the token lifecycle: OAuth state nonces, token health, warnings, the outbox, job runs."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from admonster_store import InvalidArgument, Store, head_revision, load_or_create_key_file, token_fingerprint
from admonster_store_legacy import upgrade_legacy


@pytest.fixture
async def store(store_target, clock):
    """The store on each engine: SQLite in memory, then a fresh PostgreSQL database."""
    async with await Store.open(store_target, secret_key=Fernet.generate_key(), clock=clock) as opened:
        yield opened


# -- migration --------------------------------------------------------------------------------------------------


async def test_version_one_database_upgrades_and_keeps_its_token(tmp_path):
    db_path = tmp_path / "admonster.db"
    assert upgrade_legacy(db_path, 1) == 1
    with sqlite3.connect(db_path) as db:
        workspace_id = db.execute("INSERT INTO workspaces (name, created_at) VALUES ('legacy', 'then')").lastrowid
    # A token row exactly as version 1 wrote it (today's save_token knows the new columns).
    encrypted = load_or_create_key_file(tmp_path / "k").encrypt(b"EAAB-legacy-token").decode()
    with sqlite3.connect(db_path) as db:
        db.execute(
            "INSERT INTO tokens (workspace_id, kind, token_encrypted, expires_at, created_at, updated_at) "
            "VALUES (?, 'user', ?, '2030-03-17T17:46:40+00:00', 'then', 'then')",
            (workspace_id, encrypted),
        )
    async with await Store.open(db_path, key_file=tmp_path / "k") as upgraded:
        assert await upgraded.schema_version() == int(head_revision())
        token = await upgraded.load_token(workspace_id)
        assert token.token == "EAAB-legacy-token"
        assert (token.invalid_reason, token.checked_at) == (None, None)
    tables = {row[0] for row in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")}
    assert {"oauth_states", "token_warnings", "notifications", "job_runs"} <= tables


# -- OAuth state ------------------------------------------------------------------------------------------------


async def test_oauth_state_is_single_use_and_bound_to_its_workspace(store, two, clock):
    alpha, beta = two
    await store.add_oauth_state(alpha.id, "nonce-a", clock.now + timedelta(minutes=10))
    await store.add_oauth_state(beta.id, "nonce-b", clock.now + timedelta(minutes=10))
    assert await store.consume_oauth_state("nonce-b") == beta.id
    assert await store.consume_oauth_state("nonce-a") == alpha.id
    assert await store.consume_oauth_state("nonce-a") is None  # replay
    assert await store.consume_oauth_state("forged") is None
    assert await store.consume_oauth_state("") is None


async def test_oauth_state_expires(store, two, clock):
    alpha, _ = two
    await store.add_oauth_state(alpha.id, "late", clock.now + timedelta(minutes=10))
    clock.advance(600)
    assert await store.consume_oauth_state("late") is None


async def test_concurrent_consumers_succeed_once(store, two, clock):
    alpha, _ = two
    await store.add_oauth_state(alpha.id, "race", clock.now + timedelta(minutes=10))
    results = await asyncio.gather(*(store.consume_oauth_state("race") for _ in range(20)))
    assert results.count(alpha.id) == 1 and results.count(None) == 19


async def test_concurrent_consumers_across_connections_succeed_once(tmp_path, clock):
    path = tmp_path / "admonster.db"
    stores = [await Store.open(path, key_file=tmp_path / "k", clock=clock) for _ in range(4)]
    try:
        workspace = await stores[0].ensure_workspace("alpha")
        await stores[0].add_oauth_state(workspace.id, "shared", clock.now + timedelta(minutes=10))
        results = await asyncio.gather(*(s.consume_oauth_state("shared") for s in stores for _ in range(3)))
        assert results.count(workspace.id) == 1
    finally:
        for opened in stores:
            await opened.close()


async def test_oauth_state_bad_input(store, two, clock):
    alpha, _ = two
    with pytest.raises(InvalidArgument):
        await store.add_oauth_state(alpha.id, "", clock.now)
    with pytest.raises(InvalidArgument, match="does not exist"):
        await store.add_oauth_state(9999, "orphan", clock.now + timedelta(minutes=10))
    await store.add_oauth_state(alpha.id, "dup", clock.now + timedelta(minutes=10))
    with pytest.raises(InvalidArgument, match="already in use"):
        await store.add_oauth_state(alpha.id, "dup", clock.now + timedelta(minutes=10))


# -- token health -----------------------------------------------------------------------------------------------


async def test_mark_invalid_then_new_token_clears_it(store, two, clock):
    alpha, beta = two
    await store.save_token(alpha.id, token="EAAB-first-token", scopes=["ads_read"])
    await store.save_token(beta.id, token="EAAB-beta-token")
    assert await store.mark_token_invalid(alpha.id, "Error validating access token: session expired (190)")
    token = await store.load_token(alpha.id)
    assert token.invalid_reason == "Error validating access token: session expired (190)"
    assert token.checked_at == clock.now
    assert (await store.load_token(beta.id)).invalid_reason is None  # isolation
    await store.save_token(alpha.id, token="EAAB-second-token")
    token = await store.load_token(alpha.id)
    assert token.invalid_reason is None and token.token == "EAAB-second-token"
    assert await store.mark_token_invalid(9999, "x") is False


async def test_mark_token_checked_records_expiry_scopes_and_validity(store, two, clock):
    alpha, _ = two
    await store.save_token(alpha.id, token="EAAB-token", scopes=["ads_read"], expires_at=clock.now + timedelta(days=60))
    expiry = clock.now + timedelta(days=50)
    assert await store.mark_token_checked(
        alpha.id, valid=True, expires_at=expiry, scopes=["ads_read", "ads_management"]
    )
    token = await store.load_token(alpha.id)
    assert (token.expires_at, token.scopes, token.checked_at) == (expiry, ["ads_read", "ads_management"], clock.now)
    await store.mark_token_checked(alpha.id, valid=False, expires_at=expiry, scopes=None, reason="revoked")
    token = await store.load_token(alpha.id)
    assert token.invalid_reason == "revoked" and token.scopes == ["ads_read", "ads_management"]
    await store.mark_token_checked(alpha.id, valid=True, expires_at=0, scopes=None)
    token = await store.load_token(alpha.id)
    assert token.invalid_reason is None and token.expires_at is None  # 0 = never expires


async def test_token_warning_is_recorded_once_per_workspace(store, two):
    alpha, beta = two
    key = "expiry:7d:2026-03-08T12:00:00+00:00"
    assert await store.record_token_warning(alpha.id, key) is True
    assert await store.record_token_warning(alpha.id, key) is False
    assert await store.record_token_warning(beta.id, key) is True
    assert await store.record_token_warning(alpha.id, "expiry:1d:2026-03-08T12:00:00+00:00") is True


def test_token_fingerprint_is_short_stable_and_not_the_token():
    first = token_fingerprint("EAAB-some-long-token-value")
    assert first == token_fingerprint("EAAB-some-long-token-value") != token_fingerprint("EAAB-other")
    assert len(first) == 16 and "EAAB" not in first


# -- outbox -----------------------------------------------------------------------------------------------------


async def test_enqueue_dedupes_per_workspace_and_channel(store, two):
    alpha, beta = two
    first = await store.enqueue_notification(
        alpha.id, channel="inbox", subject="S", text="T", target=None, dedupe_key="k1"
    )
    assert isinstance(first, int)
    assert (
        await store.enqueue_notification(alpha.id, channel="inbox", subject="S", text="T", target=None, dedupe_key="k1")
        is None
    )
    assert (
        await store.enqueue_notification(
            alpha.id, channel="email", subject="S", text="T", target="a@example.com", dedupe_key="k1"
        )
        is not None
    )
    assert (
        await store.enqueue_notification(beta.id, channel="inbox", subject="S", text="T", target=None, dedupe_key="k1")
        is not None
    )
    no_key = [
        await store.enqueue_notification(alpha.id, channel="inbox", subject="S", text="T", target=None)
        for _ in range(2)
    ]
    assert None not in no_key and no_key[0] != no_key[1]


async def test_enqueue_rejects_bad_input(store, two):
    alpha, _ = two
    with pytest.raises(InvalidArgument, match="channel"):
        await store.enqueue_notification(alpha.id, channel="sms", subject="S", text="T", target="1")
    with pytest.raises(InvalidArgument, match="needs a target"):
        await store.enqueue_notification(alpha.id, channel="webhook", subject="S", text="T", target=None)
    with pytest.raises(InvalidArgument, match="subject"):
        await store.enqueue_notification(alpha.id, channel="inbox", subject="  ", text="T", target=None)
    with pytest.raises(InvalidArgument, match="does not exist"):
        await store.enqueue_notification(4242, channel="inbox", subject="S", text="T", target=None)


async def test_due_sent_failed_lifecycle(store, two, clock):
    alpha, beta = two
    email = await store.enqueue_notification(
        alpha.id, channel="email", subject="E", text="body", target="ops@example.com"
    )
    hook = await store.enqueue_notification(
        beta.id, channel="webhook", subject="W", text="body", target="https://hooks.example.com/x"
    )
    await store.enqueue_notification(alpha.id, channel="inbox", subject="I", text="body", target=None)
    due = await store.due_notifications(clock.now)
    assert [n.id for n in due] == [email, hook]  # inbox is never "delivered" by the outbox
    assert {n.workspace_id for n in due} == {alpha.id, beta.id}

    retry_at = clock.now + timedelta(minutes=1)
    assert await store.mark_notification_failed(email, "SMTP server answered 451", retry_at)
    failed_once = await store.get_notification(alpha.id, email)
    assert (failed_once.status, failed_once.attempts, failed_once.last_error) == (
        "pending",
        1,
        "SMTP server answered 451",
    )
    assert failed_once.next_attempt_at == retry_at
    assert [n.id for n in await store.due_notifications(clock.now)] == [hook]
    clock.advance(60)
    assert [n.id for n in await store.due_notifications(clock.now)] == [hook, email]  # oldest due first

    assert await store.mark_notification_sent(email)
    sent = await store.get_notification(alpha.id, email)
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 2, clock.now)
    assert await store.mark_notification_sent(email) is False  # only once

    assert await store.mark_notification_failed(hook, "HTTP 404", None)
    gave_up = await store.get_notification(beta.id, hook)
    assert (gave_up.status, gave_up.attempts, gave_up.next_attempt_at) == ("failed", 1, None)
    assert await store.due_notifications(clock.now + timedelta(days=30)) == []


async def test_a_claimed_message_is_held_from_others_then_due_again_if_its_sender_died(store, two, clock):
    from admonster_store import DELIVERY_HOLD

    alpha, _ = two
    first = await store.enqueue_notification(
        alpha.id, channel="webhook", subject="A", text="body", target="https://h.example.com/a"
    )
    second = await store.enqueue_notification(
        alpha.id, channel="webhook", subject="B", text="body", target="https://h.example.com/b"
    )
    assert [n.id for n in await store.claim_due_notifications(clock.now, limit=1)] == [first]
    assert [n.id for n in await store.claim_due_notifications(clock.now)] == [
        second
    ]  # the first is held for its sender
    assert await store.claim_due_notifications(clock.now) == [] and await store.due_notifications(clock.now) == []
    assert await store.mark_notification_sent(second)
    clock.advance(DELIVERY_HOLD.total_seconds())  # the first one's sender never said how it went: due again
    assert [n.id for n in await store.claim_due_notifications(clock.now)] == [first]


async def test_notifications_never_cross_workspaces(store, two):
    alpha, beta = two
    mine = await store.enqueue_notification(alpha.id, channel="inbox", subject="for alpha", text="a", target=None)
    await store.enqueue_notification(beta.id, channel="inbox", subject="for beta", text="b", target=None)
    assert await store.get_notification(beta.id, mine) is None
    assert [n.subject for n in await store.list_notifications(alpha.id)] == ["for alpha"]
    assert [n.subject for n in await store.unread_inbox(beta.id)] == ["for beta"]
    assert await store.mark_inbox_read(beta.id, [mine]) == 0  # beta cannot mark alpha's notice
    assert [n.id for n in await store.unread_inbox(alpha.id)] == [mine]


async def test_inbox_read_once(store, two, clock):
    alpha, _ = two
    ids = [
        await store.enqueue_notification(alpha.id, channel="inbox", subject=f"S{i}", text="t", target=None)
        for i in range(3)
    ]
    assert [n.id for n in await store.unread_inbox(alpha.id)] == ids
    assert await store.mark_inbox_read(alpha.id, ids[:2]) == 2
    assert [n.id for n in await store.unread_inbox(alpha.id)] == ids[2:]
    read = await store.get_notification(alpha.id, ids[0])
    assert (read.status, read.sent_at) == ("read", clock.now)
    assert await store.mark_inbox_read(alpha.id, []) == 0
    listed = await store.list_notifications(alpha.id, channel="inbox", status="read")
    assert sorted(n.id for n in listed) == ids[:2]


async def test_failure_error_is_one_line_and_bounded(store, two, clock):
    alpha, _ = two
    nid = await store.enqueue_notification(alpha.id, channel="email", subject="S", text="T", target="a@example.com")
    await store.mark_notification_failed(nid, "line one\nline two " + "x" * 2000, clock.now)
    stored = await store.get_notification(alpha.id, nid)
    assert "\n" not in stored.last_error and len(stored.last_error) <= 500


async def test_job_runs_are_recorded(store, clock):
    assert await store.last_job_run("token_check") is None
    await store.record_job_run("token_check", ran_at=clock.now, ok=True, summary="checked 2 token(s)")
    clock.advance(3600)
    await store.record_job_run("token_check", ran_at=clock.now, ok=False, summary="failed: boom")
    run = await store.last_job_run("token_check")
    assert (run.last_run_at, run.ok, run.summary) == (clock.now, False, "failed: boom")
    assert [r.name for r in await store.list_job_runs()] == ["token_check"]


async def test_deleting_a_workspace_removes_its_outbox_and_states(tmp_path, clock):
    async with await Store.open(tmp_path / "db.sqlite", key_file=tmp_path / "k", clock=clock) as opened:
        workspace = await opened.ensure_workspace("gone")
        await opened.enqueue_notification(workspace.id, channel="inbox", subject="S", text="T", target=None)
        await opened.add_oauth_state(workspace.id, "n1", clock.now + timedelta(minutes=5))
        await opened.record_token_warning(workspace.id, "invalid:abc")
    db = sqlite3.connect(tmp_path / "db.sqlite")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("DELETE FROM workspaces WHERE id = ?", (workspace.id,))
    db.commit()
    for table in ("notifications", "oauth_states", "token_warnings"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


async def test_api_key_found_by_public_id_and_checked_by_hash():
    from admonster_store import Store, api_key_id

    async with await Store.open(":memory:") as store:
        workspace = await store.ensure_workspace("keys")
        key = await store.create_api_key(workspace.id)
        assert (await store.workspace_for_api_key(key)).id == workspace.id
        forged = api_key_id(key) + ("A" if key[-1] != "A" else "B") * (len(key) - len(api_key_id(key)))
        assert await store.workspace_for_api_key(forged) is None
        assert await store.workspace_for_api_key(key[:-1]) is None

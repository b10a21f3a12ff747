"""Notifications over real transports: a local SMTP server (aiosmtpd) and a local aiohttp webhook receiver."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography.fernet import Fernet

from admonster_config import Settings
from admonster_notify import BACKOFF_SECONDS, MAX_ATTEMPTS, Notifier, redact_text, redact_url
from admonster_store import Store
from testkit import free_port

pytestmark = pytest.mark.usefixtures("clean_environment")

SMTP_PASSWORD = "smtp-pa55word-never-shown"


class MailHandler:
    """aiosmtpd handler that keeps what it receives, or refuses it with 550 while `refuse` is set."""

    def __init__(self) -> None:
        self.messages: list = []
        self.refuse = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.7.1 Relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": message_from_bytes(envelope.content, policy=default_policy),
                "authenticated": getattr(session, "authenticated", False),
            }
        )
        return "250 Message accepted"


class SmtpServer:
    """A real SMTP server on loopback, startable and stoppable on a fixed port."""

    def __init__(self, port: int, **options) -> None:
        self.port = port
        self.handler = MailHandler()
        self.options = options
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server():
    server = SmtpServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def store(store_target, clock):
    """The store on each engine: SQLite in memory, then a fresh PostgreSQL database."""
    async with await Store.open(store_target, secret_key=Fernet.generate_key(), clock=clock) as opened:
        yield opened


@pytest.fixture
async def workspace(store):
    return await store.ensure_workspace("shop")


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


class Receiver:
    """A local webhook receiver answering with the statuses queued in `statuses` (then 200)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.hits: list[dict] = []
        self.delay = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.hits.append({"path": request.path_qs, "json": body, "content_type": request.content_type})
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "upstream says no")


@pytest.fixture
async def receiver(aiohttp_server):
    state = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", state.handle)
    server = await aiohttp_server(app)
    state.url = str(server.make_url("/services/T000/B000/secretXYZ"))
    return state


# -- email ------------------------------------------------------------------------------------------------------


async def test_email_is_delivered_to_a_real_smtp_server(store, workspace, clock, smtp_server):
    config = settings(
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_from="bot@example.com", notify_email="ops@example.com"
    )
    async with Notifier(store, config) as notifier:
        ids = await notifier.notify(workspace.id, "Token expires soon", "Reconnect with /connect.")
        assert len(ids) == 2  # inbox + email
        report = await notifier.deliver_due()
    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [mail] = smtp_server.handler.messages
    assert mail["from"] == "bot@example.com" and mail["to"] == ["ops@example.com"]
    message = mail["message"]
    assert message["Subject"] == "[Ad Monster] Token expires soon"
    assert message["To"] == "ops@example.com" and message["From"] == "bot@example.com"
    assert "Reconnect with /connect." in message.get_content()
    assert message.get_content_type() == "text/plain"
    emails = await store.list_notifications(workspace.id, channel="email")
    assert [(n.status, n.attempts, n.sent_at) for n in emails] == [("sent", 1, clock.now)]


async def test_refusing_smtp_server_keeps_message_pending_then_delivers_once(store, workspace, clock, smtp_server):
    smtp_server.handler.refuse = True
    config = settings(smtp_host="127.0.0.1", smtp_port=smtp_server.port, notify_email="ops@example.com")
    async with Notifier(store, config) as notifier:
        await notifier.notify(workspace.id, "Heads up", "body")
        first = await notifier.deliver_due()
        assert (first.sent, first.retrying) == (0, 1)
        [email] = await store.list_notifications(workspace.id, channel="email")
        assert (email.status, email.attempts) == ("pending", 1)
        assert "550" in email.last_error and "Relaying denied" in email.last_error
        assert email.next_attempt_at == clock.now + timedelta(seconds=BACKOFF_SECONDS[0])
        assert (await notifier.deliver_due()).attempted == 0  # not due yet: no hammering
        smtp_server.handler.refuse = False
        clock.advance(BACKOFF_SECONDS[0])
        second = await notifier.deliver_due()
        assert second.sent == 1
        clock.advance(3600)
        assert (await notifier.deliver_due()).attempted == 0
    assert len(smtp_server.handler.messages) == 1
    [email] = await store.list_notifications(workspace.id, channel="email")
    assert (email.status, email.attempts) == ("sent", 2)


async def test_smtp_server_down_then_back(store, workspace, clock):
    port = free_port()  # nothing listens here yet
    config = settings(smtp_host="127.0.0.1", smtp_port=port, notify_email="ops@example.com")
    async with Notifier(store, config, smtp_timeout=3) as notifier:
        await notifier.notify(workspace.id, "Down", "body")
        report = await notifier.deliver_due()
        assert report.retrying == 1
        [email] = await store.list_notifications(workspace.id, channel="email")
        assert email.status == "pending" and email.attempts == 1 and email.next_attempt_at > clock.now
        assert "could not be reached" in email.last_error or "refused" in email.last_error.lower()
        server = SmtpServer(port)
        server.start()
        try:
            clock.advance(BACKOFF_SECONDS[0])
            assert (await notifier.deliver_due()).sent == 1
        finally:
            server.stop()
    assert len(server.handler.messages) == 1


async def test_smtp_login_works_and_a_wrong_password_is_never_stored_or_logged(store, workspace, clock, capsys):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    server = SmtpServer(free_port(), authenticator=authenticator, auth_require_tls=False)
    server.start()
    try:
        good = settings(
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_username="bot",
            smtp_password=SMTP_PASSWORD,
            notify_email="ops@example.com",
        )
        async with Notifier(store, good) as notifier:
            await notifier.notify(workspace.id, "Logged in", "body")
            assert (await notifier.deliver_due()).sent == 1
        assert server.handler.messages[0]["authenticated"] is True

        bad = settings(
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_username="bot",
            smtp_password="wrong-" + SMTP_PASSWORD,
            notify_email="ops@example.com",
        )
        async with Notifier(store, bad) as notifier:
            await notifier.notify(workspace.id, "Wrong password", "body")
            report = await notifier.deliver_due()
        assert report.retrying == 1
    finally:
        server.stop()
    failed = [n for n in await store.list_notifications(workspace.id, channel="email") if n.status == "pending"]
    assert "535" in failed[0].last_error and "ADMONSTER_SMTP_PASSWORD" in failed[0].last_error
    everything = " ".join(str(n) for n in await store.list_notifications(workspace.id)) + capsys.readouterr().err
    assert SMTP_PASSWORD not in everything


async def test_email_gives_up_after_max_attempts_with_backoff(store, workspace, clock, smtp_server):
    smtp_server.handler.refuse = True
    config = settings(smtp_host="127.0.0.1", smtp_port=smtp_server.port, notify_email="ops@example.com")
    delays = []
    async with Notifier(store, config) as notifier:
        await notifier.notify(workspace.id, "Never arrives", "body")
        for _ in range(MAX_ATTEMPTS):
            await notifier.deliver_due()
            [email] = await store.list_notifications(workspace.id, channel="email")
            if email.next_attempt_at is not None:
                delays.append((email.next_attempt_at - clock.now).total_seconds())
                clock.advance((email.next_attempt_at - clock.now).total_seconds())
        clock.advance(86400)
        assert (await notifier.deliver_due()).attempted == 0
    assert delays == [float(s) for s in BACKOFF_SECONDS]
    [email] = await store.list_notifications(workspace.id, channel="email")
    assert (email.status, email.attempts) == ("failed", MAX_ATTEMPTS)
    assert "gave up" in email.last_error
    assert smtp_server.handler.messages == []


async def test_no_email_channel_without_smtp_host(store, workspace):
    async with Notifier(store, settings(notify_email="ops@example.com")) as notifier:
        ids = await notifier.notify(workspace.id, "Inbox only", "body")
    assert [n.channel for n in await store.list_notifications(workspace.id)] == ["inbox"]
    assert len(ids) == 1


# -- webhook ----------------------------------------------------------------------------------------------------


async def test_webhook_delivers_slack_style_json(store, workspace, receiver):
    async with Notifier(store, settings(notify_webhook_url=receiver.url)) as notifier:
        await notifier.notify(workspace.id, "Token expires in 7 days", "Reconnect with /connect.", level="warning")
        report = await notifier.deliver_due()
    assert report.sent == 1
    [hit] = receiver.hits
    assert hit["content_type"] == "application/json"
    assert hit["json"] == {
        "text": "*Token expires in 7 days*\nReconnect with /connect.",
        "subject": "Token expires in 7 days",
        "workspace": "shop",
        "level": "warning",
    }
    [hook] = await store.list_notifications(workspace.id, channel="webhook")
    assert (hook.status, hook.attempts, hook.target) == ("sent", 1, receiver.url)


async def test_webhook_500_then_200_is_retried_and_delivered_once(store, workspace, clock, receiver):
    receiver.statuses = [500]
    async with Notifier(store, settings(notify_webhook_url=receiver.url)) as notifier:
        await notifier.notify(workspace.id, "Retry me", "body")
        first = await notifier.deliver_due()
        assert (first.sent, first.retrying, first.failed) == (0, 1, 0)
        [hook] = await store.list_notifications(workspace.id, channel="webhook")
        assert hook.status == "pending" and hook.attempts == 1 and "HTTP 500" in hook.last_error
        assert "secretXYZ" not in hook.last_error and "/…" in hook.last_error
        clock.advance(BACKOFF_SECONDS[0])
        assert (await notifier.deliver_due()).sent == 1
        clock.advance(86400)
        assert (await notifier.deliver_due()).attempted == 0
    assert len(receiver.hits) == 2
    [hook] = await store.list_notifications(workspace.id, channel="webhook")
    assert (hook.status, hook.attempts) == ("sent", 2)


async def test_webhook_404_gives_up_at_once(store, workspace, clock, receiver):
    receiver.statuses = [404]
    async with Notifier(store, settings(notify_webhook_url=receiver.url)) as notifier:
        await notifier.notify(workspace.id, "Nobody home", "body")
        report = await notifier.deliver_due()
        assert (report.sent, report.retrying, report.failed) == (0, 0, 1)
        for _ in range(3):
            clock.advance(86400)
            assert (await notifier.deliver_due()).attempted == 0
    assert len(receiver.hits) == 1
    [hook] = await store.list_notifications(workspace.id, channel="webhook")
    assert (hook.status, hook.attempts, hook.next_attempt_at) == ("failed", 1, None)
    assert "HTTP 404" in hook.last_error and "Fix:" in hook.last_error


async def test_webhook_429_and_408_are_retried(store, workspace, clock, receiver):
    receiver.statuses = [429, 408]
    async with Notifier(store, settings(notify_webhook_url=receiver.url)) as notifier:
        await notifier.notify(workspace.id, "Slow down", "body")
        assert (await notifier.deliver_due()).retrying == 1
        clock.advance(BACKOFF_SECONDS[0])
        assert (await notifier.deliver_due()).retrying == 1
        clock.advance(BACKOFF_SECONDS[1])
        assert (await notifier.deliver_due()).sent == 1


async def test_unreachable_and_slow_webhooks_retry_with_redacted_errors(store, workspace, clock, receiver):
    dead = f"http://127.0.0.1:{free_port()}/hook/secret-path?token=abc123"
    receiver.delay = 1.0
    await store.set_setting(workspace.id, "notify_webhook_url", dead)
    other = await store.ensure_workspace("other")
    await store.set_setting(other.id, "notify_webhook_url", receiver.url)
    async with Notifier(store, settings(), webhook_timeout=0.2) as notifier:
        await notifier.notify(workspace.id, "Dead", "body")
        await notifier.notify(other.id, "Slow", "body")
        report = await notifier.deliver_due()
    assert report.retrying == 2
    [dead_hook] = await store.list_notifications(workspace.id, channel="webhook")
    [slow_hook] = await store.list_notifications(other.id, channel="webhook")
    assert "could not be reached" in dead_hook.last_error
    assert "timed out" in slow_hook.last_error
    for error in (dead_hook.last_error, slow_hook.last_error):
        assert "secret" not in error and "abc123" not in error and "/…" in error


async def test_workspace_settings_override_and_disable_channels(store, workspace, receiver, smtp_server):
    config = settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        notify_email="global@example.com",
        notify_webhook_url="https://hooks.example.com/global",
    )
    other = await store.ensure_workspace("other")
    await store.set_setting(workspace.id, "notify_email", "")  # off for this workspace
    await store.set_setting(workspace.id, "notify_webhook_url", receiver.url)
    async with Notifier(store, config) as notifier:
        await notifier.notify(workspace.id, "Mine", "body")
        await notifier.notify(other.id, "Theirs", "body")
        assert (await notifier.targets(other.id)) == {
            "email": "global@example.com",
            "webhook": "https://hooks.example.com/global",
        }
    mine = {n.channel: n.target for n in await store.list_notifications(workspace.id)}
    theirs = {n.channel: n.target for n in await store.list_notifications(other.id)}
    assert mine == {"inbox": None, "webhook": receiver.url}
    assert theirs == {"inbox": None, "email": "global@example.com", "webhook": "https://hooks.example.com/global"}


async def test_bad_webhook_url_in_workspace_setting_fails_clearly(store, workspace, clock):
    await store.set_setting(workspace.id, "notify_webhook_url", "ftp://files.example.com/drop")
    async with Notifier(store, settings()) as notifier:
        await notifier.notify(workspace.id, "Wrong scheme", "body")
        report = await notifier.deliver_due()
    assert report.failed == 1
    [hook] = await store.list_notifications(workspace.id, channel="webhook")
    assert hook.status == "failed" and "not an http(s) URL" in hook.last_error and "/drop" not in hook.last_error


# -- inbox, dedupe, drain ---------------------------------------------------------------------------------------


async def test_inbox_text_shows_notices_once(store, workspace):
    other = await store.ensure_workspace("other")
    async with Notifier(store, settings()) as notifier:
        assert await notifier.inbox_text(workspace.id) is None
        await notifier.notify(workspace.id, "First", "one")
        await notifier.notify(workspace.id, "Second", "two\nlines")
        await notifier.notify(other.id, "Not yours", "x")
        text = await notifier.inbox_text(workspace.id)
        assert text.splitlines() == ["Notices:", "- First: one", "- Second: two lines"]
        assert await notifier.inbox_text(workspace.id) is None
        assert "Not yours" in await notifier.inbox_text(other.id)


async def test_dedupe_key_queues_each_channel_once(store, workspace, receiver):
    async with Notifier(store, settings(notify_webhook_url=receiver.url)) as notifier:
        first = await notifier.notify(workspace.id, "Once", "body", dedupe_key="invalid:abc")
        again = await notifier.notify(workspace.id, "Once", "body", dedupe_key="invalid:abc")
    assert len(first) == 2 and again == []


async def test_drain_delivers_what_it_can_and_leaves_the_rest_pending(store, workspace, clock, receiver):
    port = free_port()  # nothing listens here until "the next start"
    other = await store.ensure_workspace("other")
    await store.set_setting(other.id, "notify_webhook_url", f"http://127.0.0.1:{port}/hook")
    async with Notifier(store, settings(notify_webhook_url=receiver.url)) as notifier:
        await notifier.notify(workspace.id, "Delivered at shutdown", "body")
        await notifier.notify(other.id, "Kept for later", "body")
        report = await notifier.drain(timeout=5)
    assert (report.sent, report.retrying) == (1, 1)
    [kept] = await store.list_notifications(other.id, channel="webhook")
    assert (kept.status, kept.attempts) == ("pending", 1)

    late = Receiver()
    app = web.Application()
    app.router.add_post("/hook", late.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        clock.advance(BACKOFF_SECONDS[0])
        async with Notifier(store, settings()) as restarted:  # a new process: only the store carries over
            assert (await restarted.deliver_due()).sent == 1
    finally:
        await runner.cleanup()
    assert [hit["json"]["subject"] for hit in late.hits] == ["Kept for later"]
    [kept] = await store.list_notifications(other.id, channel="webhook")
    assert (kept.status, kept.attempts) == ("sent", 2)


async def test_drain_respects_its_timeout_and_loses_nothing(store, workspace, receiver):
    receiver.delay = 3.0
    async with Notifier(store, settings(notify_webhook_url=receiver.url), webhook_timeout=30) as notifier:
        await notifier.notify(workspace.id, "Slow receiver", "body")
        started = time.monotonic()
        report = await notifier.drain(timeout=0.3)
        assert time.monotonic() - started < 2
    assert report.sent == 0
    [hook] = await store.list_notifications(workspace.id, channel="webhook")
    assert (hook.status, hook.attempts) == ("pending", 0)


# -- redaction helpers ------------------------------------------------------------------------------------------


def test_redaction_hides_webhook_paths_queries_and_secrets():
    url = "https://hooks.slack.com/services/T0/B0/xyzSECRET?token=abc"
    assert redact_url(url) == "https://hooks.slack.com/…"
    assert redact_url("not a url") == "<url>"
    text = redact_text(f"POST {url} failed; password=hunter2 and pw p4ss-word", ["p4ss-word"])
    assert "xyzSECRET" not in text and "abc" not in text and "hunter2" not in text and "p4ss-word" not in text
    assert "https://hooks.slack.com/…" in text


# -- webhook formats: Slack and Discord by host ----------------------------------------------------------------


class LoopbackResolver:
    """Resolves every host to 127.0.0.1, so a real local receiver answers for hooks.slack.com and discord.com."""

    async def resolve(self, host, port=0, family=0):
        import socket

        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self):
        return None


@pytest.fixture
async def loopback_session():
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=LoopbackResolver()))
    try:
        yield session
    finally:
        await session.close()


@pytest.mark.parametrize("host", ["hooks.slack.com", "discord.com", "discordapp.com", "ptb.discord.com", "example.org"])
async def test_webhook_payload_matches_the_destination(store, workspace, receiver, loopback_session, host):
    port = receiver.url.split("://", 1)[1].split("/", 1)[0].split(":")[1]
    path = "/services/T000/B000/secretXYZ" if "slack" in host else "/api/webhooks/123/token-abc"
    await store.set_setting(workspace.id, "notify_webhook_url", f"http://{host}:{port}{path}")
    async with Notifier(store, settings(), http_session=loopback_session) as notifier:
        await notifier.notify(
            workspace.id,
            "Alert CPA over $20: cpa $25.10",
            "CPA over $20: campaign Summer (1202) cpa $25.10 > $20.00 over today. Action pause: paused.",
            level="warning",
        )
        report = await notifier.deliver_due()
    assert report.sent == 1, report.errors
    [hit] = receiver.hits
    body = hit["json"]
    assert hit["path"] == path and hit["content_type"] == "application/json"
    if host == "hooks.slack.com":
        assert set(body) == {"text", "blocks"}
        assert "*Alert CPA over $20: cpa $25.10*" in body["text"]
        header, section, context = body["blocks"]
        assert header == {
            "type": "header",
            "text": {"type": "plain_text", "text": "Alert CPA over $20: cpa $25.10", "emoji": True},
        }
        assert (
            section["type"] == "section"
            and section["text"]["type"] == "mrkdwn"
            and "Action pause: paused." in section["text"]["text"]
        )
        assert context["type"] == "context" and "workspace shop" in context["elements"][0]["text"]
    elif "discord" in host:
        assert set(body) == {"content", "embeds", "allowed_mentions"}
        assert "**Alert CPA over $20: cpa $25.10**" in body["content"] and body["allowed_mentions"] == {"parse": []}
        [embed] = body["embeds"]
        assert embed["title"] == "Alert CPA over $20: cpa $25.10" and "Action pause: paused." in embed["description"]
        assert isinstance(embed["color"], int) and "workspace shop" in embed["footer"]["text"]
    else:  # any other host: the generic JSON
        assert body == {
            "text": "*Alert CPA over $20: cpa $25.10*\nCPA over $20: campaign Summer (1202) cpa $25.10 > $20.00 over today. "
            "Action pause: paused.",
            "subject": "Alert CPA over $20: cpa $25.10",
            "workspace": "shop",
            "level": "warning",
        }


def test_webhook_payloads_stay_within_the_destinations_limits():
    from admonster_notify import webhook_kind, webhook_payload

    assert webhook_kind("https://hooks.slack.com/services/T/B/x") == "slack"
    assert webhook_kind("https://discord.com/api/webhooks/1/x") == "discord"
    assert webhook_kind("https://discord.com/channels/1") == "generic"  # not a webhook URL
    assert webhook_kind("https://hooks.slack.com.evil.example/x") == "generic"
    long = "x" * 10000
    slack = webhook_payload("https://hooks.slack.com/services/T/B/x", "s" * 400, long, "shop", "info")
    assert len(slack["blocks"][0]["text"]["text"]) <= 150 and len(slack["blocks"][1]["text"]["text"]) <= 3000
    discord = webhook_payload("https://discord.com/api/webhooks/1/x", "s" * 400, long, "shop", "error")
    assert len(discord["content"]) <= 2000 and len(discord["embeds"][0]["title"]) <= 256
    assert len(discord["embeds"][0]["description"]) <= 4096


# -- replicas on one database (issue 21, item 3) -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_target(request, tmp_path) -> str:
    """One database several processes open: a SQLite file, then a fresh PostgreSQL database."""
    return str(tmp_path / "shared.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


async def test_three_replicas_deliver_each_message_once(shared_target, clock, receiver):
    """Three notifiers, each with its own store on one database (as three `serve` replicas), delivering at the same
    time with a slow receiver: every message reaches the webhook exactly once, and each is recorded sent once."""
    key = Fernet.generate_key()
    stores = [await Store.open(shared_target, secret_key=key, clock=clock) for _ in range(3)]
    notifiers = [Notifier(store, settings(notify_webhook_url=receiver.url)) for store in stores]
    receiver.delay = 0.02  # each send takes a while: the other replicas look meanwhile
    try:
        workspace = await stores[0].ensure_workspace("agency")
        for number in range(60):
            await notifiers[number % 3].notify(workspace.id, f"Alert {number}", "Spend is over the limit.")
        reports = await asyncio.gather(
            *(notifier.deliver_due(limit=20) for notifier in notifiers),
            *(notifier.deliver_due(limit=20) for notifier in notifiers),
        )
        subjects = [hit["json"]["subject"] for hit in receiver.hits]
        assert sorted(subjects) == sorted(f"Alert {number}" for number in range(60))  # each once, none twice
        assert sum(report.sent for report in reports) == 60
        sent = await stores[1].list_notifications(workspace.id, limit=100, channel="webhook")
        assert [(n.status, n.attempts) for n in sent] == [("sent", 1)] * 60
    finally:
        for notifier in notifiers:
            await notifier.close()
        for store in stores:
            await store.close()

"""Ad Monster notifications: the outbox's three channels (chat inbox, email over SMTP, webhook) with retries.

`Notifier.notify()` queues one message per channel in the store's outbox; `deliver_due()` sends what is due
(the scheduler's `outbox` job calls it every minute) and records every attempt; `drain()` makes one last pass
at shutdown (nothing undelivered is lost: it stays pending for the next start); `inbox_text()` hands the chat
its unread notices once. Secrets never reach logs or the outbox: the SMTP password is only used to log in,
and webhook URLs (Slack's are secrets) appear as scheme://host/… in every error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib

from admonster_config import normalize_email_list, normalize_webhook_url
from admonster_store import Notification, Store
from fb_utils import get_logger

log = get_logger("admonster_notify")

NOTIFY_EMAIL_SETTING = "notify_email"
NOTIFY_WEBHOOK_SETTING = "notify_webhook_url"
BACKOFF_SECONDS: tuple[int, ...] = (60, 300, 900, 3600)  # after attempt 1, 2, 3, 4
MAX_ATTEMPTS = 5  # the 5th failure gives up
RETRYABLE_HTTP = frozenset({408, 429})
INBOX_SHOWN_MAX = 10
INBOX_TEXT_MAX_CHARS = 300
_URL_RE = re.compile(r"\b(https?)://([^/\s?#'\"<>]+)[^\s'\"<>]*", re.IGNORECASE)
_SECRET_PARAM_RE = re.compile(
    r"(?i)\b(access_token|appsecret_proof|app_secret|client_secret|password|token|key|sig|signature)=([^\s&'\"]+)"
)

Clock = Callable[[], datetime]


@dataclass
class DeliveryReport:
    """What one delivery pass did: messages delivered, scheduled for a retry, and given up."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        """How many messages this pass tried."""
        return self.sent + self.retrying + self.failed

    def add(self, other: DeliveryReport) -> None:
        """Add another pass's counts into this one."""
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.errors.extend(other.errors)

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.retrying} retrying, {self.failed} failed"


class DeliveryError(Exception):
    """One delivery attempt failed; `retry` says whether trying later can help. The message is already redacted."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after


def redact_url(url: str | None) -> str:
    """'https://hooks.slack.com/services/T0/B0/xyz?x=1' -> 'https://hooks.slack.com/…' (webhook URLs are secrets)."""
    if not url:
        return ""
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return "<url>"
    if parts.scheme and parts.hostname:
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        return f"{parts.scheme}://{host}/…"
    return "<url>"


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove known secrets, URL paths and queries, and credential-like parameters from a piece of text."""
    text = str(text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    text = _URL_RE.sub(lambda m: f"{m.group(1)}://{m.group(2)}/…", text)
    return _SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}=[REDACTED]", text)


def backoff_delay(attempts: int) -> float | None:
    """Seconds before the next try after `attempts` failed tries; None once it is time to give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return float(BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1])


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Notifier:
    """Queues notices for a workspace in every configured channel and delivers the outbox with retries."""

    def __init__(
        self,
        store: Store,
        settings: Any,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        http_session: aiohttp.ClientSession | None = None,
        smtp_timeout: float = 15.0,
        webhook_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or store.clock
        self._sleep = sleep
        self._session = http_session
        self._own_session = http_session is None
        self.smtp_timeout = smtp_timeout
        self.webhook_timeout = webhook_timeout
        self._deliver_lock = asyncio.Lock()

    def now(self) -> datetime:
        """The notifier's current time (UTC)."""
        return _utc(self.clock())

    async def close(self) -> None:
        """Close the HTTP session the notifier opened itself (a session passed in stays open)."""
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None if self._own_session else self._session

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- queueing --------------------------------------------------------------------------------------------

    async def targets(self, workspace_id: int) -> dict[str, str | None]:
        """The email recipients and webhook URL for a workspace: its own settings override the global ones."""
        return {
            "email": await self._target(
                workspace_id, NOTIFY_EMAIL_SETTING, getattr(self.settings, "notify_email", None)
            ),
            "webhook": await self._target(
                workspace_id, NOTIFY_WEBHOOK_SETTING, getattr(self.settings, "notify_webhook_url", None)
            ),
        }

    async def _target(self, workspace_id: int, key: str, default: str | None) -> str | None:
        value = await self.store.get_setting(workspace_id, key, None)
        if value is None:
            value = default
        value = str(value).strip() if value is not None else ""
        return value or None  # "" in the workspace turns the channel off

    async def notify(
        self, workspace_id: int, subject: str, text: str, *, dedupe_key: str | None = None, level: str = "warning"
    ) -> list[int]:
        """Queue a notice: always in the chat inbox, plus email and webhook when configured. Returns the new ids.

        With `dedupe_key`, a channel that already holds that key for the workspace is skipped.
        """
        targets = await self.targets(workspace_id)
        ids: list[int] = []
        channels: list[tuple[str, str | None]] = [("inbox", None)]
        if targets["email"] and getattr(self.settings, "smtp_host", None):
            channels.append(("email", targets["email"]))
        elif targets["email"]:
            log.warning("notify_email_skipped", workspace=workspace_id, reason="ADMONSTER_SMTP_HOST is not set")
        if targets["webhook"]:
            channels.append(("webhook", targets["webhook"]))
        for channel, target in channels:
            new_id = await self.store.enqueue_notification(
                workspace_id,
                channel=channel,
                subject=subject,
                text=text,
                target=target,
                dedupe_key=dedupe_key,
                level=level,
            )
            if new_id is not None:
                ids.append(new_id)
        return ids

    # -- the chat inbox --------------------------------------------------------------------------------------

    async def inbox_text(self, workspace_id: int) -> str | None:
        """The unread inbox as a short 'Notices: …' block, marked read (shown once); None when empty."""
        unread = await self.store.unread_inbox(workspace_id)
        if not unread:
            return None
        lines = ["Notices:"]
        for item in unread[:INBOX_SHOWN_MAX]:
            body = _one_line(item.text, INBOX_TEXT_MAX_CHARS)
            lines.append(f"- {item.subject}: {body}" if body else f"- {item.subject}")
        if len(unread) > INBOX_SHOWN_MAX:
            lines.append(f"- … and {len(unread) - INBOX_SHOWN_MAX} more (see the notification list).")
        await self.store.mark_inbox_read(workspace_id, [item.id for item in unread])
        return "\n".join(lines)

    # -- delivery --------------------------------------------------------------------------------------------

    async def deliver_due(self, *, limit: int = 50) -> DeliveryReport:
        """Send every email and webhook message that is due, recording each attempt; one pass at a time."""
        async with self._deliver_lock:
            report = DeliveryReport()
            for item in await self.store.claim_due_notifications(self.now(), limit=limit):
                await self._deliver_one(item, report)
            return report

    async def drain(self, timeout: float = 10.0) -> DeliveryReport:
        """At shutdown: one more delivery pass over everything due, within `timeout` seconds.

        Whatever is not delivered stays pending in the store (the next start delivers it).
        """
        report = DeliveryReport()

        async def passes() -> None:
            seen: set[int] = set()
            while True:
                due = [n for n in await self.store.claim_due_notifications(self.now(), limit=50) if n.id not in seen]
                if not due:
                    return
                async with self._deliver_lock:
                    for item in due:
                        seen.add(item.id)
                        await self._deliver_one(item, report)
                await self._sleep(0)

        try:
            await asyncio.wait_for(passes(), timeout)
        except TimeoutError:
            log.warning("outbox_drain_timeout", timeout=timeout, report=str(report))
        return report

    async def _deliver_one(self, item: Notification, report: DeliveryReport) -> None:
        try:
            if item.channel == "email":
                await self._send_email(item)
            elif item.channel == "webhook":
                await self._send_webhook(item)
            else:
                return
        except DeliveryError as exc:
            await self._record_failure(item, exc, report)
            return
        except asyncio.CancelledError:
            raise  # shutdown: the message stays pending
        except Exception as exc:  # noqa: BLE001 - an unexpected failure must not stop the outbox
            message = redact_text(f"{type(exc).__name__}: {exc}", self._secrets(item))
            await self._record_failure(item, DeliveryError(message, retry=True), report)
            return
        await self.store.mark_notification_sent(item.id)
        report.sent += 1
        log.info("notification_sent", id=item.id, workspace=item.workspace_id, channel=item.channel)

    async def _record_failure(self, item: Notification, exc: DeliveryError, report: DeliveryReport) -> None:
        attempts = item.attempts + 1
        delay = backoff_delay(attempts) if exc.retry else None
        if delay is not None and exc.retry_after:
            delay = max(delay, min(exc.retry_after, 24 * 3600.0))
        next_at = self.now() + timedelta(seconds=delay) if delay is not None else None
        error = str(exc)
        if delay is None and exc.retry:
            error = f"{error} (gave up after {attempts} attempts)"
        await self.store.mark_notification_failed(item.id, error, next_at)
        if next_at is None:
            report.failed += 1
        else:
            report.retrying += 1
        report.errors.append(f"#{item.id} {item.channel}: {error}")
        log.warning(
            "notification_failed",
            id=item.id,
            workspace=item.workspace_id,
            channel=item.channel,
            attempts=attempts,
            retry_at=next_at.isoformat() if next_at else None,
            error=error,
        )

    def _secrets(self, item: Notification | None = None) -> list[str]:
        secrets: list[str] = []
        password = getattr(self.settings, "smtp_password", None)
        if password is not None:
            secrets.append(password.get_secret_value() if hasattr(password, "get_secret_value") else str(password))
        if item is not None and item.channel == "webhook" and item.target:
            secrets.append(item.target)
        return secrets

    async def _workspace_name(self, workspace_id: int) -> str:
        workspace = await self.store.get_workspace(workspace_id)
        return workspace.name if workspace else str(workspace_id)

    # -- email -----------------------------------------------------------------------------------------------

    async def _send_email(self, item: Notification) -> None:
        settings = self.settings
        host = getattr(settings, "smtp_host", None)
        if not host:
            raise DeliveryError(
                "SMTP is not configured. Fix: set ADMONSTER_SMTP_HOST (and _PORT, _USERNAME, _PASSWORD).", retry=True
            )
        try:
            recipients = [part.strip() for part in normalize_email_list(item.target or "").split(",")]
        except ValueError:
            raise DeliveryError(
                f"Email recipient {item.target!r} is not an address. Fix: set notify_email to e.g. ops@example.com.",
                retry=False,
            ) from None
        workspace = await self._workspace_name(item.workspace_id)
        message = EmailMessage()
        message["Subject"] = f"[Ad Monster] {item.subject}"
        message["From"] = settings.smtp_from
        message["To"] = ", ".join(recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1] or "localhost")
        message["X-AdMonster-Workspace"] = workspace
        message.set_content(f"{item.text}\n\n-- \nAd Monster, workspace {workspace}\n")
        password = getattr(settings, "smtp_password", None)
        username = getattr(settings, "smtp_username", None)
        try:
            await aiosmtplib.send(
                message,
                sender=settings.smtp_from,
                recipients=recipients,
                hostname=host,
                port=settings.smtp_port,
                username=username or None,
                password=password.get_secret_value() if (password is not None and username) else None,
                start_tls=bool(getattr(settings, "smtp_starttls", False)),
                timeout=self.smtp_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(self._smtp_error(host, exc), retry=True) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                self._smtp_error(host, exc) + " Fix: check ADMONSTER_SMTP_USERNAME and ADMONSTER_SMTP_PASSWORD.",
                retry=True,
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(self._smtp_error(host, exc), retry=True) from None

    def _smtp_error(self, host: str, exc: BaseException) -> str:
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            details = "; ".join(f"{r.code} {r.message}" for r in exc.recipients) or str(exc)
            text = f"SMTP server {host} refused the recipients: {details}"
        elif isinstance(exc, aiosmtplib.SMTPResponseException):
            text = f"SMTP server {host} answered {exc.code} {exc.message}"
        elif isinstance(exc, (TimeoutError, aiosmtplib.SMTPTimeoutError)):
            text = f"SMTP server {host} timed out"
        else:
            text = f"SMTP server {host} could not be reached ({type(exc).__name__}: {exc})"
        return redact_text(_one_line(text, 400), self._secrets())

    # -- webhook ---------------------------------------------------------------------------------------------

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._own_session:
                raise DeliveryError("The HTTP session passed to the notifier is closed.", retry=True)
            self._session = aiohttp.ClientSession()
        return self._session

    async def _send_webhook(self, item: Notification) -> None:
        url = item.target or ""
        shown = redact_url(url)
        try:
            url = normalize_webhook_url(url)
        except ValueError:
            raise DeliveryError(
                f"Webhook {shown or 'URL'} is not an http(s) URL. Fix: set notify_webhook_url to an https:// URL.",
                retry=False,
            ) from None
        payload = webhook_payload(
            url, item.subject, item.text, await self._workspace_name(item.workspace_id), item.level
        )
        session = await self._http()
        try:
            async with session.post(
                url, json=payload, timeout=aiohttp.ClientTimeout(total=self.webhook_timeout), allow_redirects=False
            ) as response:
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
                body = _one_line(await response.text(errors="replace"), 120) if status >= 300 else ""
        except TimeoutError:
            raise DeliveryError(f"Webhook {shown} timed out after {self.webhook_timeout:g}s", retry=True) from None
        except aiohttp.ClientError as exc:
            message = redact_text(f"Webhook {shown} could not be reached ({type(exc).__name__}: {exc})", [url])
            raise DeliveryError(_one_line(message, 400), retry=True) from None
        if 200 <= status < 300:
            return
        detail = f"Webhook {shown} answered HTTP {status}" + (f": {redact_text(body, [url])}" if body else "")
        if status >= 500 or status in RETRYABLE_HTTP:
            raise DeliveryError(detail, retry=True, retry_after=retry_after)
        raise DeliveryError(f"{detail}. Fix: check notify_webhook_url.", retry=False)


SLACK_HOSTS = ("hooks.slack.com",)
DISCORD_HOSTS = ("discord.com", "discordapp.com")
SLACK_SECTION_MAX = 3000  # Slack's limit for a section block's text
SLACK_HEADER_MAX = 150
DISCORD_CONTENT_MAX = 2000
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_COLORS = {"info": 0x3B82F6, "warning": 0xF59E0B, "error": 0xDC2626}
LEVEL_ICONS = {"info": "ℹ️", "warning": "⚠️", "error": "🛑"}


def webhook_kind(url: str) -> str:
    """ "slack", "discord" or "generic", by the webhook URL's host (subdomains included: ptb.discord.com)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return "generic"
    if any(host == h or host.endswith("." + h) for h in SLACK_HOSTS):
        return "slack"
    if any(host == h or host.endswith("." + h) for h in DISCORD_HOSTS) and "/api/webhooks/" in urlsplit(url).path:
        return "discord"
    return "generic"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def webhook_payload(url: str, subject: str, text: str, workspace: str, level: str) -> dict[str, Any]:
    """The JSON body for a webhook in its destination's own format.

    Slack incoming webhooks take ``text`` (the notification fallback) and Block Kit ``blocks``; Discord webhooks take
    ``content`` and ``embeds``; anything else gets Ad Monster's generic JSON (text, subject, workspace, level).
    """
    kind = webhook_kind(url)
    icon = LEVEL_ICONS.get(level, "")
    if kind == "slack":
        return {
            "text": _clip(f"{icon} *{subject}*\n{text}".strip(), SLACK_SECTION_MAX),
            "blocks": [
                {
                    "type": "header",
                    "text": {"type": "plain_text", "text": _clip(subject, SLACK_HEADER_MAX), "emoji": True},
                },
                {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text or subject, SLACK_SECTION_MAX)}},
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": f"{icon} Ad Monster · workspace {workspace} · {level}".strip()}
                    ],
                },
            ],
        }
    if kind == "discord":
        return {
            "content": _clip(f"{icon} **{subject}**".strip(), DISCORD_CONTENT_MAX),
            "embeds": [
                {
                    "title": _clip(subject, DISCORD_TITLE_MAX),
                    "description": _clip(text or subject, DISCORD_DESCRIPTION_MAX),
                    "color": DISCORD_COLORS.get(level, DISCORD_COLORS["info"]),
                    "footer": {"text": f"Ad Monster · workspace {workspace} · {level}"},
                }
            ],
            "allowed_mentions": {"parse": []},  # a campaign named "@everyone" must not ping a server
        }
    return {"text": f"*{subject}*\n{text}", "subject": subject, "workspace": workspace, "level": level}


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None

"""fb_utils money by currency, and structlog logging whose output never holds a token, secret, email or phone."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
import structlog

from fb_utils import (
    GraphClient,
    ValidationError,
    configure_logging,
    currency_offset,
    format_money,
    from_minor,
    get_logger,
    log_context,
    redact,
    to_minor,
)

# Money ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (123456, "USD", "$1,234.56"),
        ("500000", "JPY", "¥500,000"),
        (1200, "EUR", "€12.00"),
        (5000, "KRW", "₩5,000"),
        (-550, "usd", "-$5.50"),
        (0, "GBP", "£0.00"),
        (1200, "XYZ", "12.00 XYZ"),
        (987654, "SEK", "9,876.54 SEK"),
        (" 1,234 ", "USD", "$12.34"),
    ],
)
def test_format_money(minor, currency, shown):
    assert format_money(minor, currency) == shown


def test_offsets_follow_facebooks_currency_table():
    assert [
        currency_offset(c)
        for c in ("USD", "EUR", "JPY", "KRW", "CLP", "COP", "CRC", "HUF", "ISK", "IDR", "PYG", "TWD", "VND", "BHD")
    ] == [100, 100, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 100]


def test_to_and_from_minor_units():
    assert to_minor("12.34", "USD") == 1234
    assert to_minor(Decimal("15"), "EUR") == 1500
    assert to_minor(5000, "JPY") == 5000
    assert from_minor("1234", "USD") == Decimal("12.34")
    assert from_minor(5000, "JPY") == Decimal("5000")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: format_money("abc", "USD"), "'abc' is not an amount"),
        (lambda: format_money(True, "USD"), "True is not an amount"),
        (lambda: format_money(None, "USD"), "None is not an amount"),
        (lambda: format_money("1e3", "USD"), "'1e3' is not an amount"),
        (lambda: format_money(float("inf"), "USD"), "inf is not an amount"),
        (lambda: format_money(12.5, "USD"), "12.5 is not a whole number of minor units"),
        (lambda: format_money(100, "US"), "'US' is not a currency code"),
        (lambda: format_money(100, None), "None is not a currency code"),
        (lambda: to_minor("12.5", "JPY"), "12.5 JPY has more decimals than JPY allows"),
        (lambda: to_minor("12.345", "USD"), "12.345 USD has more decimals than USD allows"),
    ],
)
def test_garbage_amounts_are_refused(call, message):
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.message == message
    assert caught.value.kind == "validation"


# Redaction ------------------------------------------------------------------------------------------------------------

TOKEN = "EAABwzLixnjYBOZBqSecretTokenValue1234567890"
APP_SECRET = "69a3cda3d0bab1692d4287f2fa67c3ff"
EMAIL = "jane.doe@example.com"
PHONE = "+1 (415) 555-0100"


def test_redact_removes_credentials_and_personal_data_but_keeps_ids():
    text = (
        f"GET /v26.0/me?access_token={TOKEN}&appsecret_proof=abcdef0123456789&client_secret=s3cr3tvalue "
        f"Authorization: Bearer abc.def-ghi_123456 mail {EMAIL} call {PHONE} or 415-555-0100 "
        f"app token 600000000000001|{APP_SECRET} campaign 120210000000000001 on 2024-01-15"
    )
    cleaned = redact(text)
    for secret in (TOKEN, "abcdef0123456789", "s3cr3tvalue", "abc.def-ghi_123456", EMAIL, "555-0100", APP_SECRET):
        assert secret not in cleaned
    assert "campaign 120210000000000001 on 2024-01-15" in cleaned
    assert "access_token=[REDACTED]" in cleaned and "[EMAIL]" in cleaned and "[PHONE]" in cleaned


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    yield stream
    configure_logging()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_log_messages_values_and_exception_text_are_redacted(log_stream):
    log = get_logger("test")
    with log_context(workspace="ws1", op="get_campaign", ad_account_id="act_1"):
        log.info(
            f"called https://graph.facebook.com/v26.0/me?access_token={TOKEN} for {EMAIL}",
            url=f"/me?access_token={TOKEN}",
            app_secret=APP_SECRET,
            contact={"phone": PHONE, "emails": [EMAIL]},
        )
        try:
            raise RuntimeError(f"Graph said no to {TOKEN} for {EMAIL}")
        except RuntimeError:
            log.exception("request failed")
    output = log_stream.getvalue()
    for secret in (TOKEN, APP_SECRET, EMAIL, "555-0100"):
        assert secret not in output
    first, second = lines(log_stream)
    assert first["workspace"] == "ws1" and first["op"] == "get_campaign" and first["ad_account_id"] == "act_1"
    assert first["app_secret"] == "[REDACTED]" and first["contact"] == {"phone": "[PHONE]", "emails": ["[EMAIL]"]}
    assert "RuntimeError: Graph said no to [TOKEN] for [EMAIL]" in second["exception"]


def test_console_output_is_redacted_too():
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        get_logger("test").warning("token in text", detail=f"Bearer {TOKEN}")
    finally:
        configure_logging()
    assert TOKEN not in stream.getvalue() and "token in text" in stream.getvalue()


def test_log_level_filters(log_stream):
    configure_logging("WARNING", json=True, stream=log_stream)
    get_logger("test").info("quiet")
    get_logger("test").warning("loud")
    assert [line["event"] for line in lines(log_stream)] == ["loud"]


async def test_graph_requests_are_logged_without_credentials(sandbox, demo_token, log_stream):
    async with GraphClient(
        demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url
    ) as client:
        accounts = await client.get_all("me/adaccounts", {"fields": "id"})
        campaign = (await sandbox.control("POST", "seed", {"campaigns": 1, "account_id": accounts[0]["id"]}))["ids"][0]
        await client.post(campaign, {"name": "Logged"})
    output = log_stream.getvalue()
    assert demo_token["access_token"] not in output and demo_token["app_secret"] not in output
    events = lines(log_stream)
    request = next(e for e in events if e["event"] == "graph request" and e["method"] == "GET")
    assert (
        request["status"] == 200 and request["path"] == "me/adaccounts" and request["ms"] >= 0 and request["fbtrace_id"]
    )
    assert request["level"] == "debug"
    write = next(e for e in events if e["event"] == "graph write")
    assert (
        write["level"] == "info"
        and write["path"] == campaign
        and write["fields"] == ["name"]
        and write["result"] is True
    )


def test_capture_logs_sees_bound_context():
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        with log_context(op="pause_campaign"):
            get_logger("test").warning("paused")
    assert captured[0]["op"] == "pause_campaign" and captured[0]["event"] == "paused"

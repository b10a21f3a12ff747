"""Contract cassettes: Graph API answers as Facebook documents them, replayed through our GraphClient and held
against the sandbox.

Every cassette in ``tests/cassettes/`` (sources in ``docs/contracts.md``) is used three ways:

- replay: vcrpy plays it to the real ``GraphClient`` (base URL ``https://graph.facebook.com``) and the test checks
  what the client makes of it: data, errors and their class/code/subcode/blamed field/wait, paging, batch re-queues;
- parity: the same requests go to the sandbox over real HTTP, and its answers must have the cassette's shape
  (``shape()``); the sandbox differences we know of are listed in ``KNOWN_SANDBOX_DIFFERENCES``;
- re-recording: ``--record-mode=all`` with ``ADMONSTER_LIVE_TOKEN`` set sends the replay tests of live-capable
  cassettes to the live Graph API and records its answers, tokens scrubbed.

The default run replays only and never touches the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import vcr
import yaml

from fb_utils import (
    AccountInfo,
    AuthError,
    BatchItem,
    GraphClient,
    GraphError,
    NotFoundError,
    RateLimitError,
    appsecret_proof,
    currency_offset,
)

CASSETTES = Path(__file__).parent / "cassettes"
GRAPH_URL = "https://graph.facebook.com"
API_VERSION = "v26.0"  # the version the cassettes were recorded with (live Graph); the product default is fb_utils.DEFAULT_API_VERSION
SECRET_PARAMS = ("access_token", "appsecret_proof")
FILTERED = "FILTERED"
LIVE_TOKEN_ENV = "ADMONSTER_LIVE_TOKEN"
LIVE_SECRET_ENV = "ADMONSTER_LIVE_APP_SECRET"
LIVE_ACCOUNT_ENV = "ADMONSTER_LIVE_AD_ACCOUNT"
REPLAY_TOKEN = "replay-token-not-a-secret"
REPLAY_APP_SECRET = "replay-app-secret"
USAGE_HEADERS = ("x-app-usage", "x-ad-account-usage", "x-business-use-case-usage")

ACCOUNT_LIST_FIELDS = "id,name,currency,account_status,amount_spent"
ACCOUNT_FIELDS = "id,account_id,name,currency,account_status,disable_reason,amount_spent,balance,spend_cap,min_daily_budget,timezone_name"
CAMPAIGN_LIST_FIELDS = (
    "id,name,objective,status,configured_status,effective_status,buying_type,created_time,updated_time"
)
CAMPAIGN_FIELDS = "id,account_id,name,objective,status,configured_status,effective_status,daily_budget,budget_remaining,buying_type,created_time,updated_time"
NEW_CAMPAIGN = {
    "name": "Ad Monster contract test",
    "objective": "OUTCOME_TRAFFIC",
    "status": "PAUSED",
    "special_ad_categories": [],
    "daily_budget": 1000,
}
NOT_AN_OBJECT = "120219999999999999"  # a campaign-like id nobody owns
PAGING_CAP = 5  # items an edge walk reads at most (live recordings stay small)
_FACEBOOK_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}")  # 2026-03-02T09:15:44-0800

# Where the sandbox's answers depart from the cassettes' shapes, by parity scenario. Each entry is a difference we
# reported rather than fixed (see docs/contracts.md); a new difference fails the test, and so does fixing one
# without removing it here.
KNOWN_SANDBOX_DIFFERENCES: dict[str, set[str]] = {}


# ---------------------------------------------------------------------------------------------------------------
# Cassette plumbing: matching, scrubbing, record modes
# ---------------------------------------------------------------------------------------------------------------


def _json_or_text(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def form_fields(body: Any) -> dict[str, Any]:
    """A request body (aiohttp's form dict, urlencoded text or nothing) as fields, JSON values decoded, credentials dropped."""
    if body in (None, b"", ""):
        return {}
    if isinstance(body, dict):
        pairs = body.items()
    else:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
    return {str(key): _json_or_text(value) for key, value in pairs if key not in SECRET_PARAMS}


def graph_form_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: the same form fields, whatever their order or encoding (batch JSON compared as JSON)."""
    assert form_fields(r1.body) == form_fields(r2.body)


_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(access_token|appsecret_proof|client_secret|fb_exchange_token|input_token)=([^&\"'\s\\]+)"
)
_SECRET_IN_JSON = re.compile(r'(?i)("(?:access_token|appsecret_proof|client_secret)"\s*:\s*")([^"]+)(")')
_USER_TOKEN = re.compile(r"\bEAA[A-Za-z0-9]{10,}")


def scrub_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text with every credential replaced by FILTERED: known secrets, ``access_token=…`` style parameters, EAA tokens."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, FILTERED)
    text = _SECRET_IN_TEXT.sub(lambda match: f"{match.group(1)}={FILTERED}", text)
    text = _SECRET_IN_JSON.sub(lambda match: f"{match.group(1)}{FILTERED}{match.group(3)}", text)
    return _USER_TOKEN.sub(FILTERED, text)


def scrub_response(secrets: tuple[str, ...] = ()):
    """A before_record_response hook: no token survives in a recorded body (paging.next URLs carry one) or header."""

    def before_record_response(response: dict) -> dict:
        body = response.get("body") or {}
        raw = body.get("string")
        if isinstance(raw, bytes):
            body["string"] = scrub_text(raw.decode("utf-8", "replace"), secrets).encode("utf-8")
        elif isinstance(raw, str):
            body["string"] = scrub_text(raw, secrets)
        response["headers"] = {
            name: [scrub_text(str(value), secrets) for value in values]
            for name, values in (response.get("headers") or {}).items()
            if name.lower() != "set-cookie"
        }
        return response

    return before_record_response


def graph_vcr(
    record_mode: str, secrets: tuple[str, ...] = (), library: Path | None = None, fresh: bool = False
) -> vcr.VCR:
    """The recorder every contract test uses: credentials filtered from requests, scrubbed from answers.

    ``fresh`` ignores what the cassette held, so a live recording holds only what the live API said.
    """
    recorder = vcr.VCR(
        cassette_library_dir=str(library or CASSETTES),
        record_mode=record_mode,
        match_on=["method", "scheme", "host", "port", "path", "query", "graph_form_body"],
        filter_query_parameters=list(SECRET_PARAMS),
        filter_post_data_parameters=list(SECRET_PARAMS),
        filter_headers=["authorization", "cookie"],
        before_record_response=scrub_response(secrets),
        decode_compressed_response=True,
        after_load_interaction=(lambda request, response: None) if fresh else None,
    )
    recorder.register_matcher("graph_form_body", graph_form_body)
    return recorder


@dataclass
class Contract:
    """The run's --record-mode and the live credentials from the environment."""

    record_mode: str
    token: str | None
    app_secret: str | None
    ad_account: str | None

    def goes_live(self, cassette: Path, live_capable: bool) -> bool:
        """Whether this cassette is recorded from the live API in this run (otherwise it is replayed)."""
        if self.record_mode == "none" or not live_capable:
            return False
        if self.record_mode != "all" and cassette.exists():
            return False  # once / new_episodes only fill in missing cassettes; "all" re-records
        if not self.token:
            pytest.skip(
                f"--record-mode={self.record_mode} records {cassette.name} from the live Graph API: set {LIVE_TOKEN_ENV} "
                f"(and optionally {LIVE_SECRET_ENV}, {LIVE_ACCOUNT_ENV}=act_…), or run with --record-mode=none to replay"
            )
        return True


@pytest.fixture
def contract(request) -> Contract:
    account = os.environ.get(LIVE_ACCOUNT_ENV) or None
    if account and not account.startswith("act_"):
        account = f"act_{account}"
    return Contract(
        record_mode=request.config.getoption("--record-mode"),
        token=os.environ.get(LIVE_TOKEN_ENV) or None,
        app_secret=os.environ.get(LIVE_SECRET_ENV) or None,
        ad_account=account,
    )


@dataclass
class Session:
    """One cassette in use: the GraphClient to drive, the cassette, and the waits the client asked for."""

    graph: GraphClient
    cassette: Any
    live: bool
    account: str | None
    waits: list[float] = field(default_factory=list)

    def answers(self) -> list[Any]:
        """The JSON bodies of the cassette's answers, in order (recorded just now when live)."""
        return [answer_json(response) for response in self.cassette.responses]

    def page_size(self) -> int:
        """Live: one item a page, so any account with two items pages; replayed: the page size the cassette recorded."""
        return 1 if self.live else int(query_of(self.cassette.requests[0])["limit"])

    def assert_every_interaction_used(self) -> None:
        """Replayed: every recorded answer was asked for (so each request matched one); live: nothing to compare."""
        if not self.live:
            assert self.cassette.all_played, f"{self.cassette.play_count} of {len(self.cassette)} interactions used"


def recorded_account(path: Path) -> str | None:
    """The ad account a cassette's requests are about."""
    for interaction in yaml.safe_load(path.read_text())["interactions"]:
        found = re.search(r"/(act_\d+)", interaction["request"]["uri"])
        if found:
            return found.group(1)
    return None


@contextlib.asynccontextmanager
async def replay(
    contract: Contract, name: str, *, live_capable: bool = False, needs_account: bool = False, **client_options: Any
) -> AsyncIterator[Session]:
    """Use cassette ``name``: replayed by default, recorded from the live API when --record-mode asks and it can be."""
    path = CASSETTES / f"{name}.yaml"
    live = contract.goes_live(path, live_capable)
    if not live:
        assert path.exists(), f"missing cassette {path}"
    account = contract.ad_account if live else recorded_account(path)
    if needs_account and account is None:
        pytest.skip(f"recording {name} live needs {LIVE_ACCOUNT_ENV}=act_… (an ad account the token manages)")
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    if live:
        graph = GraphClient(
            contract.token,
            app_secret=contract.app_secret,
            base_url=GRAPH_URL,
            api_version=API_VERSION,
            **client_options,
        )
        secrets = tuple(s for s in (contract.token, contract.app_secret) if s)
    else:
        graph = GraphClient(
            REPLAY_TOKEN,
            app_secret=REPLAY_APP_SECRET,
            base_url=GRAPH_URL,
            api_version=API_VERSION,
            sleep=fake_sleep,
            rng=random.Random(7),
            **client_options,
        )
        secrets = ()
    recorder = graph_vcr(contract.record_mode if live else "none", secrets, library=path.parent, fresh=live)
    try:
        with recorder.use_cassette(path.name) as cassette:
            yield Session(graph, cassette, live, account, waits)
    finally:
        await graph.close()


def answer_json(response: dict) -> Any:
    return json.loads(response["body"]["string"])


def header_json(response: dict, name: str) -> Any:
    """A usage header of a recorded answer, parsed; None when the answer has none."""
    for key, values in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            value = values[0] if isinstance(values, list) else values
            return json.loads(value)
    return None


def query_of(request: Any) -> dict[str, str]:
    return dict(request.query)


# ---------------------------------------------------------------------------------------------------------------
# Replay: our GraphClient against Facebook's documented answers
# ---------------------------------------------------------------------------------------------------------------


async def test_me_adaccounts_follows_next_to_the_last_page(contract):
    async with replay(contract, "me_adaccounts", live_capable=True) as s:
        accounts = await s.graph.get_all(
            "me/adaccounts", {"fields": ACCOUNT_LIST_FIELDS, "limit": s.page_size()}, limit=PAGING_CAP
        )
    pages = s.answers()
    s.assert_every_interaction_used()
    assert_followed_pages(s, pages, accounts)
    for account in accounts:
        assert account["id"].startswith("act_")
        assert type(account["account_status"]) is int and type(account["amount_spent"]) is str
    app_usage = header_json(s.cassette.responses[-1], "x-app-usage")
    if app_usage is not None or not s.live:
        assert s.graph.limiter.app_pct == max(app_usage[k] for k in ("call_count", "total_cputime", "total_time"))


def assert_followed_pages(s: Session, pages: list[dict], items: list[dict]) -> None:
    """One request per page, each after the first sent with the cursor the page before named, up to the last page."""
    assert items == [item for page in pages for item in page["data"]][:PAGING_CAP]
    assert len(s.cassette) == len(pages)
    for earlier, request in zip(pages, s.cassette.requests[1:]):
        assert "next" in earlier["paging"]
        assert query_of(request)["after"] == earlier["paging"]["cursors"]["after"]
        assert query_of(request)["fields"] == query_of(s.cassette.requests[0])["fields"]
    if len(items) < PAGING_CAP:  # the walk ended because Facebook said so, not because of our cap
        assert "next" not in pages[-1].get("paging", {}) or not pages[-1]["data"]
    if len(pages) > 1 and pages[-1]["data"]:
        assert "previous" in pages[-1]["paging"]


async def test_ad_account_read_gives_account_info_and_string_money(contract):
    async with replay(contract, "ad_account", live_capable=True, needs_account=True) as s:
        info = await s.graph.account_info(s.account)
        account = await s.graph.get(s.account, {"fields": ACCOUNT_FIELDS})
    s.assert_every_interaction_used()
    first, second = s.answers()
    assert info == AccountInfo(
        id=s.account,
        name=first["name"],
        currency=first["currency"],
        offset=currency_offset(first["currency"]),
        min_daily_budget=first["min_daily_budget"],
        timezone_name=first["timezone_name"],
        account_status=first["account_status"],
    )
    assert account == second and account["id"] == s.account == f"act_{account['account_id']}"
    for name in ("account_status", "disable_reason", "min_daily_budget"):
        assert type(account[name]) is int, name
    for name in ("account_id", "amount_spent", "balance", "spend_cap", "currency", "timezone_name"):
        assert type(account[name]) is str, name
    account_usage = header_json(s.cassette.responses[1], "x-ad-account-usage")
    if account_usage is not None or not s.live:
        usage = s.graph.usage[s.account]
        assert usage.ad_account_pct == account_usage["acc_id_util_pct"]
        assert usage.access_tier == account_usage["ads_api_access_tier"]
    business_usage = header_json(s.cassette.responses[1], "x-business-use-case-usage")
    if not s.live or (business_usage and list(business_usage) == [s.account.removeprefix("act_")]):
        (entry,) = business_usage[s.account.removeprefix("act_")]
        assert entry["type"] == "ads_management"
        assert s.graph.usage[s.account].business_use_case["ads_management"] == max(
            entry["call_count"], entry["total_cputime"], entry["total_time"]
        )


async def test_campaign_list_pages_with_cursors(contract):
    async with replay(contract, "campaigns", live_capable=True, needs_account=True) as s:
        campaigns = await s.graph.get_all(
            f"{s.account}/campaigns", {"fields": CAMPAIGN_LIST_FIELDS, "limit": s.page_size()}, limit=PAGING_CAP
        )
    pages = s.answers()
    s.assert_every_interaction_used()
    assert_followed_pages(s, pages, campaigns)
    for campaign in campaigns:
        assert campaign["id"].isdigit() and campaign["effective_status"] not in ("ARCHIVED", "DELETED")
        assert _FACEBOOK_TIME.fullmatch(campaign["created_time"]), campaign["created_time"]
    account_usage = header_json(s.cassette.responses[-1], "x-ad-account-usage")
    if account_usage is not None or not s.live:
        assert s.graph.usage[s.account].ad_account_pct == account_usage["acc_id_util_pct"]


async def test_campaign_create_update_read_copy_delete(contract):
    async with replay(contract, "campaign_lifecycle", live_capable=True, needs_account=True) as s:
        created = await s.graph.create(f"{s.account}/campaigns", NEW_CAMPAIGN, lookup=None)
        campaign_id = created["id"]
        updated = await s.graph.post(campaign_id, {"daily_budget": 1500})
        campaign = await s.graph.get(campaign_id, {"fields": CAMPAIGN_FIELDS})
        copied = await s.graph.post(f"{campaign_id}/copies", {"status_option": "PAUSED", "deep_copy": False})
        copy_deleted = await s.graph.delete(copied["copied_campaign_id"])
        deleted = await s.graph.delete(campaign_id)
    s.assert_every_interaction_used()
    assert created == {"id": campaign_id} and campaign_id.isdigit()
    assert updated == {"success": True}
    assert campaign["id"] == campaign_id and campaign["account_id"] == s.account.removeprefix("act_")
    assert (campaign["name"], campaign["status"], campaign["daily_budget"]) == (NEW_CAMPAIGN["name"], "PAUSED", "1500")
    assert isinstance(campaign["budget_remaining"], str)
    copy_id = copied["copied_campaign_id"]
    assert copy_id.isdigit() and copy_id != campaign_id
    assert copied["ad_object_ids"] == [{"ad_object_type": "campaign", "source_id": campaign_id, "copied_id": copy_id}]
    assert copy_deleted == deleted == {"success": True}
    sent = form_fields(s.cassette.requests[0].body)
    assert sent == {
        "name": NEW_CAMPAIGN["name"],
        "objective": "OUTCOME_TRAFFIC",
        "status": "PAUSED",
        "special_ad_categories": [],
        "daily_budget": "1000",
    }


async def test_expired_token_is_an_auth_error_and_not_retried(contract):
    async with replay(contract, "error_expired_token") as s:
        with pytest.raises(AuthError) as caught:
            await s.graph.get("me", {"fields": "id,name"})
    body = s.answers()[0]["error"]
    error = caught.value
    assert (error.kind, error.http_status, error.code, error.error_subcode) == ("auth", 400, 190, 463)
    assert error.fbtrace_id == body["fbtrace_id"] and error.message == body["message"]
    assert not error.retryable and error.retry_after is None and error.blame_field is None
    assert error.data["facebook_type"] == "OAuthException"
    assert s.cassette.play_count == 1 and s.waits == []
    assert error.to_text().startswith("ERROR auth: Error validating access token") and "/connect" in error.fix


async def test_unknown_object_is_not_found(contract):
    async with replay(contract, "error_not_found", live_capable=True) as s:
        with pytest.raises(NotFoundError) as caught:
            await s.graph.get(NOT_AN_OBJECT, {"fields": "id,name,status"})
    body = s.answers()[0]["error"]
    error = caught.value
    assert (error.kind, error.http_status, error.code, error.error_subcode) == ("not_found", 400, 100, 33)
    assert error.fbtrace_id == body["fbtrace_id"] and NOT_AN_OBJECT in error.message
    assert error.data["facebook_type"] == "GraphMethodException" and not error.retryable
    assert len(s.cassette) == 1 and s.waits == []


async def test_budget_too_low_blames_daily_budget_from_error_data(contract):
    async with replay(contract, "error_budget_too_low", live_capable=True, needs_account=True) as s:
        with pytest.raises(GraphError) as caught:
            await s.graph.post(
                f"{s.account}/campaigns", {**NEW_CAMPAIGN, "daily_budget": 1, "execution_options": ["validate_only"]}
            )
    body = s.answers()[0]["error"]
    error = caught.value
    assert (error.kind, error.http_status, error.code, error.error_subcode) == ("facebook", 400, 100, 1885272)
    assert error.blame_field == "daily_budget"
    assert error.data["error_data"] == {"blame_field_specs": [["daily_budget"]]}
    assert (error.user_title, error.user_message) == (body["error_user_title"], body["error_user_msg"])
    assert error.message == body["error_user_msg"] and error.data["facebook_message"] == body["message"]
    assert error.fbtrace_id == body["fbtrace_id"] and not error.retryable
    assert "min_daily_budget" in error.fix and "(field: daily_budget)" in error.to_text()
    assert len(s.cassette) == 1


async def test_user_request_limit_waits_the_time_facebook_names_then_retries(contract):
    async with replay(contract, "throttle_user_limit", needs_account=True) as s:
        account = await s.graph.get(s.account, {"fields": "id,name"})
    throttled, ok = s.answers()
    assert throttled["error"]["code"] == 17 and account == ok
    (entry,) = header_json(s.cassette.responses[0], "x-business-use-case-usage")[s.account.removeprefix("act_")]
    assert s.waits == [entry["estimated_time_to_regain_access"] * 60.0] == [60.0]
    s.assert_every_interaction_used()

    async with replay(contract, "throttle_user_limit", needs_account=True, max_wait=30) as s:
        with pytest.raises(RateLimitError) as caught:
            await s.graph.get(s.account, {"fields": "id,name"})
    error = caught.value
    assert (error.kind, error.http_status, error.code, error.error_subcode) == ("rate_limit", 400, 17, 2446079)
    assert error.retry_after == 60.0 and error.data["retry_after_source"] == "facebook"
    assert error.is_transient and error.retryable and s.waits == [] and s.cassette.play_count == 1


async def test_business_use_case_throttle_longer_than_we_wait_is_raised_with_retry_after(contract):
    async with replay(contract, "throttle_buc_80004") as s:
        with pytest.raises(RateLimitError) as caught:
            await s.graph.post("120210987654321003", {"daily_budget": 2000})
    error = caught.value
    (entry,) = header_json(s.cassette.responses[0], "x-business-use-case-usage")["2384916503517824"]
    assert (error.kind, error.http_status, error.code, error.error_subcode) == ("rate_limit", 400, 80004, 2446079)
    assert error.retry_after == entry["estimated_time_to_regain_access"] * 60.0 == 300.0
    assert error.data["retry_after_source"] == "facebook" and "about 300 s" in error.fix
    assert "ads_management" in error.fix and error.fbtrace_id == s.answers()[0]["error"]["fbtrace_id"]
    assert s.waits == [] and s.cassette.play_count == 1


async def test_transient_500_is_retried_once_for_a_read(contract):
    async with replay(contract, "transient_unknown_error") as s:
        campaign = await s.graph.get("120210987654321003", {"fields": "id,name,status"})
    assert campaign == s.answers()[1]
    assert len(s.waits) == 1 and 0.375 <= s.waits[0] <= 0.625  # 0.5 s backoff with ±25 % jitter
    s.assert_every_interaction_used()

    async with replay(contract, "transient_unknown_error", max_retries=0) as s:
        with pytest.raises(GraphError) as caught:
            await s.graph.get("120210987654321003", {"fields": "id,name,status"})
    error = caught.value
    assert (error.kind, error.http_status, error.code, error.error_subcode) == ("facebook", 500, 1, 99)
    assert error.is_transient and error.retryable and error.fbtrace_id == s.answers()[0]["error"]["fbtrace_id"]


async def test_batch_parses_items_and_requeues_the_null_one(contract):
    items = [
        BatchItem("GET", "120210987654321003?fields=id,name,status"),
        BatchItem("POST", "120210987654321002", {"status": "PAUSED"}),
        BatchItem("GET", f"{NOT_AN_OBJECT}?fields=id,name,status"),
    ]
    async with replay(contract, "batch_requeue") as s:
        results = await s.graph.batch(items)
    first_round, second_round = s.answers()
    s.assert_every_interaction_used()  # the second batch, holding only the re-queued item, was sent
    assert first_round[1] is None and len(second_round) == 1
    assert form_fields(s.cassette.requests[1].body)["batch"] == [
        {"method": "POST", "relative_url": "120210987654321002", "body": "status=PAUSED"}
    ]
    assert [result.index for result in results] == [0, 1, 2]
    assert results[0].ok and results[0].status == 200 and results[0].body == json.loads(first_round[0]["body"])
    assert results[0].headers == {h["name"]: h["value"] for h in first_round[0]["headers"]}
    assert results[1].ok and results[1].body == {"success": True} == json.loads(second_round[0]["body"])
    error = results[2].error
    assert isinstance(error, NotFoundError) and results[2].status == 400
    assert (error.code, error.error_subcode) == (100, 33)
    assert error.fbtrace_id == json.loads(first_round[2]["body"])["error"]["fbtrace_id"]


# ---------------------------------------------------------------------------------------------------------------
# Secrets never reach a cassette
# ---------------------------------------------------------------------------------------------------------------


def test_cassettes_hold_no_credentials():
    for path in sorted(CASSETTES.glob("*.yaml")):
        text = path.read_text()
        interactions = yaml.safe_load(text)["interactions"]
        assert interactions, path.name
        for found in re.finditer(r"(?i)(access_token|appsecret_proof)=([^&\"'\s\\]*)", text):
            assert found.group(2) == FILTERED, f"{path.name}: {found.group(0)}"
        assert not _USER_TOKEN.search(text), path.name
        assert not re.search(r"(?i)bearer\s+\w", text), path.name
        for interaction in interactions:
            request = interaction["request"]
            assert not {name.lower() for name in request.get("headers") or {}} & {"authorization", "cookie"}
            assert not set(form_fields(request.get("body"))) & set(SECRET_PARAMS)
            assert not set(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request["uri"]).query))) & set(
                SECRET_PARAMS
            )


async def test_recording_scrubs_tokens_from_uris_bodies_and_next_links(sandbox, tmp_path):
    """Record real answers (the sandbox's, whose paging.next carries token and proof) and read the cassette back."""
    issued = await sandbox.token()
    token, secret = issued["access_token"], issued["app_secret"]
    graph = GraphClient(token, app_secret=secret, base_url=sandbox.url)
    try:
        with graph_vcr("all", (token, secret), library=tmp_path).use_cassette("recorded.yaml") as cassette:
            accounts = await graph.get_all("me/adaccounts", {"fields": "id,name", "limit": 1})
            await graph.get(accounts[0]["id"], {"fields": "id,name"})
            await graph.post(accounts[0]["id"], {"name": accounts[0]["name"]})
    finally:
        await graph.close()
    assert len(accounts) == 2 and len(cassette) == 4
    text = (tmp_path / "recorded.yaml").read_text()
    proof = appsecret_proof(token, secret)
    assert token not in text and secret not in text and proof not in text
    assert "access_token=FILTERED" in text  # the first page's paging.next, scrubbed
    for request in yaml.safe_load(text)["interactions"]:
        assert not set(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request["request"]["uri"]).query))) & set(
            SECRET_PARAMS
        )


def test_scrubber_covers_headers_and_escaped_json():
    hook = scrub_response(("s3cr3t-app-secret",))
    body = json.dumps(
        {
            "paging": {"next": "https:\\/\\/graph.facebook.com\\/v26.0\\/me?access_token=EAABwzLixnjYBAKZCk1&after=x"},
            "note": "s3cr3t-app-secret",
            "data": [{"id": "1", "access_token": "123456|app-token-value"}],
        }
    )
    out = hook(
        {
            "status": {"code": 200, "message": "OK"},
            "body": {"string": body.encode()},
            "headers": {"X-Debug": ["appsecret_proof=abc123"], "Set-Cookie": ["datr=1"]},
        }
    )
    assert b"EAAB" not in out["body"]["string"] and b"s3cr3t" not in out["body"]["string"]
    assert b"access_token=FILTERED&after=x" in out["body"]["string"]
    assert json.loads(out["body"]["string"])["data"] == [{"id": "1", "access_token": FILTERED}]
    assert out["headers"] == {"X-Debug": ["appsecret_proof=FILTERED"]}


# ---------------------------------------------------------------------------------------------------------------
# Parity: the sandbox answers the same requests with the same shapes
# ---------------------------------------------------------------------------------------------------------------


def shape(value: Any) -> Any:
    """The JSON shape of a value: objects keep their keys, lists the distinct shapes of their items, scalars their
    type; strings say whether they hold an integer (Facebook's money and ids), a Facebook time, or JSON."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            if shape(item) not in shapes:
                shapes.append(shape(item))
        return shapes
    if isinstance(value, str):
        decoded = _json_or_text(value)
        if decoded is not value:
            return {"json": shape(decoded)}
        if re.fullmatch(r"-?\d+", value):
            return "str(int)"
        return "str(time)" if _FACEBOOK_TIME.fullmatch(value) else "str"
    return "null" if value is None else type(value).__name__


def shape_differences(facebook: Any, sandbox: Any, path: str = "") -> list[str]:
    """Where the sandbox's shape departs from Facebook's, one line per place."""
    if isinstance(facebook, dict) and isinstance(sandbox, dict):
        found = []
        for key in sorted(facebook.keys() | sandbox.keys()):
            where = f"{path}.{key}" if path else key
            if key not in sandbox:
                found.append(f"{where}: Facebook has {facebook[key]}, the sandbox nothing")
            elif key not in facebook:
                found.append(f"{where}: only the sandbox has it ({sandbox[key]})")
            else:
                found += shape_differences(facebook[key], sandbox[key], where)
        return found
    if isinstance(facebook, list) and isinstance(sandbox, list) and len(facebook) == len(sandbox) == 1:
        return shape_differences(facebook[0], sandbox[0], f"{path}[]")
    return [] if facebook == sandbox else [f"{path}: Facebook {facebook}, the sandbox {sandbox}"]


def _normalized_usage(name: str, value: Any) -> Any:
    if name == "x-business-use-case-usage" and isinstance(value, dict):
        return {"{ad account or business id}": list(value.values())[-1]} if value else {}  # keys are ids: keep the last
    return value


def answer_shape(status: int, headers: dict, body: Any, usage_headers: set[str]) -> dict:
    """Status, the named usage headers' JSON shapes, and the body's shape of one answer."""
    lowered = {str(k).lower(): (v[0] if isinstance(v, list) else v) for k, v in headers.items()}
    return {
        "status": status,
        "headers": {
            name: shape(_normalized_usage(name, json.loads(lowered[name])))
            for name in sorted(usage_headers)
            if name in lowered
        },
        "body": shape(body),
    }


def cassette_answer(path: str, index: int) -> tuple[dict, Any]:
    """(request, response) of interaction ``index`` of a cassette, read from the file."""
    interaction = yaml.safe_load((CASSETTES / f"{path}.yaml").read_text())["interactions"][index]
    return interaction["request"], interaction["response"]


def recorded_query(request: dict) -> dict[str, str]:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request["uri"]).query, keep_blank_values=True))
    return {key: value for key, value in query.items() if key not in SECRET_PARAMS and key != "pretty"}


def recorded_form(request: dict) -> dict[str, str]:
    return {str(k): str(v) for k, v in (request.get("body") or {}).items() if k not in SECRET_PARAMS}


@dataclass
class SandboxAnswer:
    status: int
    headers: dict
    body: Any


class SandboxGraph:
    """Plain aiohttp calls to the sandbox's Graph API, answers kept whole (status, headers, body)."""

    def __init__(self, sandbox: Any, issued: dict) -> None:
        self.url = sandbox.url
        self.auth = {
            "access_token": issued["access_token"],
            "appsecret_proof": appsecret_proof(issued["access_token"], issued["app_secret"]),
        }

    async def call(self, method: str, path: str, params: dict | None = None, data: dict | None = None) -> SandboxAnswer:
        url = path if path.startswith("http") else f"{self.url}/{API_VERSION}/{path}"
        query = {} if path.startswith("http") else {**(params or {}), **self.auth}
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, params=query, data=data) as response:
                return SandboxAnswer(response.status, dict(response.headers), await response.json())


def assert_parity(scenario: str, cassette: str, index: int, answer: SandboxAnswer) -> None:
    """The sandbox's answer has the shape of the cassette's answer ``index``, but for the known differences."""
    assert_same_shape(scenario, cassette_answer(cassette, index)[1], answer)


def assert_same_shape(scenario: str, response: dict, answer: SandboxAnswer) -> None:
    """Status, usage headers (those Facebook sent) and body of the sandbox's answer have the recorded answer's shape."""
    usage = {name.lower() for name in response["headers"]} & set(USAGE_HEADERS)
    facebook = answer_shape(response["status"]["code"], response["headers"], answer_json(response), usage)
    sandbox = answer_shape(answer.status, answer.headers, answer.body, usage)
    found = shape_differences(facebook, sandbox)
    assert {line.split(":")[0] for line in found} == KNOWN_SANDBOX_DIFFERENCES.get(scenario, set()), "\n".join(found)


async def assert_pages_alike(scenario: str, cassette: str, sandbox_graph: SandboxGraph, first: SandboxAnswer) -> list:
    """Walk the sandbox's pages from ``first``; a page with next and the last page match the cassette's alike pages."""
    pages = [first]
    while "next" in pages[-1].body.get("paging", {}):
        pages.append(await sandbox_graph.call("GET", pages[-1].body["paging"]["next"]))
    assert len(pages) >= 2, "the sandbox did not page"
    recorded = yaml.safe_load((CASSETTES / f"{cassette}.yaml").read_text())["interactions"]
    with_next = [i["response"] for i in recorded if "next" in answer_json(i["response"]).get("paging", {})]
    last = [i["response"] for i in recorded if "next" not in answer_json(i["response"]).get("paging", {})]
    assert with_next or last
    if with_next:
        assert_same_shape(scenario, with_next[0], pages[0])
    if last:
        assert_same_shape(scenario, last[-1], pages[-1])
    return pages


@pytest.fixture
async def sandbox_graph(sandbox, demo_token) -> SandboxGraph:
    return SandboxGraph(sandbox, demo_token)


async def _campaign_ids(sandbox_graph: SandboxGraph, account: str) -> list[str]:
    listed = await sandbox_graph.call("GET", f"{account}/campaigns", {"fields": "id", "limit": "100"})
    return [campaign["id"] for campaign in listed.body["data"]]


async def test_parity_me_adaccounts_pages(sandbox_graph):
    request, _ = cassette_answer("me_adaccounts", 0)
    query = {**recorded_query(request), "limit": "1"}  # the demo business has two accounts: page them one by one
    first = await sandbox_graph.call("GET", "me/adaccounts", query)
    await assert_pages_alike("me_adaccounts", "me_adaccounts", sandbox_graph, first)


@pytest.mark.parametrize("currency", ["USD", "JPY"])
async def test_parity_ad_account(sandbox_graph, demo_accounts, currency):
    account = demo_accounts[currency]
    for index in (0, 1):
        request, _ = cassette_answer("ad_account", index)
        answer = await sandbox_graph.call("GET", account, recorded_query(request))
        assert answer.status == 200, answer.body
        assert_parity(f"ad_account[{currency}]" if index else "ad_account", "ad_account", index, answer)


async def test_parity_campaign_pages(sandbox_graph, demo_accounts):
    request, _ = cassette_answer("campaigns", 0)
    query = {**recorded_query(request), "limit": "2"}
    first = await sandbox_graph.call("GET", f"{demo_accounts['USD']}/campaigns", query)
    pages = await assert_pages_alike("campaigns", "campaigns", sandbox_graph, first)
    # The edge's reference: "A request with no filters returns only campaigns that were not archived or deleted."
    statuses = {campaign["effective_status"] for page in pages for campaign in page.body["data"]}
    assert "DELETED" not in statuses
    listed_archived = {"behaviour: ARCHIVED campaigns listed"} if "ARCHIVED" in statuses else set()
    assert listed_archived == KNOWN_SANDBOX_DIFFERENCES.get("campaigns: unfiltered list", set()), statuses


async def test_parity_campaign_lifecycle(sandbox_graph, demo_accounts):
    requests = [cassette_answer("campaign_lifecycle", index)[0] for index in range(6)]
    created = await sandbox_graph.call("POST", f"{demo_accounts['USD']}/campaigns", data=recorded_form(requests[0]))
    assert_parity("campaign_lifecycle", "campaign_lifecycle", 0, created)
    campaign_id = created.body["id"]
    updated = await sandbox_graph.call("POST", campaign_id, data=recorded_form(requests[1]))
    assert_parity("campaign_lifecycle", "campaign_lifecycle", 1, updated)
    read = await sandbox_graph.call("GET", campaign_id, recorded_query(requests[2]))
    assert_parity("campaign_lifecycle", "campaign_lifecycle", 2, read)
    assert read.body["daily_budget"] == recorded_form(requests[1])["daily_budget"]
    copied = await sandbox_graph.call("POST", f"{campaign_id}/copies", data=recorded_form(requests[3]))
    assert_parity("campaign_lifecycle", "campaign_lifecycle", 3, copied)
    copy_deleted = await sandbox_graph.call("DELETE", copied.body["copied_campaign_id"])
    assert_parity("campaign_lifecycle", "campaign_lifecycle", 4, copy_deleted)
    deleted = await sandbox_graph.call("DELETE", campaign_id)
    assert_parity("campaign_lifecycle", "campaign_lifecycle", 5, deleted)


async def test_parity_expired_token(sandbox):
    issued = await sandbox.token(expires_in=60)
    await sandbox.control("POST", "clock", {"advance": 120})
    request, _ = cassette_answer("error_expired_token", 0)
    answer = await SandboxGraph(sandbox, issued).call("GET", "me", recorded_query(request))
    assert (answer.body["error"]["code"], answer.body["error"]["error_subcode"]) == (190, 463)
    assert_parity("error_expired_token", "error_expired_token", 0, answer)


async def test_parity_unknown_object(sandbox_graph):
    request, _ = cassette_answer("error_not_found", 0)
    answer = await sandbox_graph.call("GET", NOT_AN_OBJECT, recorded_query(request))
    assert_parity("error_not_found", "error_not_found", 0, answer)


async def test_parity_budget_too_low(sandbox_graph, demo_accounts):
    request, _ = cassette_answer("error_budget_too_low", 0)
    answer = await sandbox_graph.call("POST", f"{demo_accounts['USD']}/campaigns", data=recorded_form(request))
    assert answer.body["error"]["error_subcode"] == 1885272
    assert_parity("error_budget_too_low", "error_budget_too_low", 0, answer)


async def test_parity_user_request_limit(sandbox, sandbox_graph, demo_accounts):
    await sandbox.control("POST", "config", {"access_tier": "development_access"})
    request, _ = cassette_answer("throttle_user_limit", 0)
    for _ in range(200):  # the development tier allows a score of 60 (one per read) before throttling
        answer = await sandbox_graph.call("GET", demo_accounts["USD"], recorded_query(request))
        if answer.status != 200:
            break
    assert (answer.body["error"]["code"], answer.body["error"]["error_subcode"]) == (17, 2446079)
    assert_parity("throttle_user_limit", "throttle_user_limit", 0, answer)
    regain = json.loads(answer.headers["X-Business-Use-Case-Usage"])
    assert [e["estimated_time_to_regain_access"] > 0 for entries in regain.values() for e in entries] == [True]


async def test_parity_business_use_case_throttle(sandbox, sandbox_graph, demo_accounts):
    request, _ = cassette_answer("throttle_buc_80004", 0)
    campaign_id = (await _campaign_ids(sandbox_graph, demo_accounts["USD"]))[0]
    await sandbox.fault(kind="throttle", code=80004, error_subcode=2446079, minutes=5, method="POST", path=campaign_id)
    answer = await sandbox_graph.call("POST", campaign_id, data=recorded_form(request))
    assert_parity("throttle_buc_80004", "throttle_buc_80004", 0, answer)
    (entry,) = [e for entries in json.loads(answer.headers["X-Business-Use-Case-Usage"]).values() for e in entries]
    assert entry["estimated_time_to_regain_access"] == 5


async def test_parity_transient_500_then_success(sandbox, sandbox_graph, demo_accounts):
    request, _ = cassette_answer("transient_unknown_error", 0)
    campaign_id = (await _campaign_ids(sandbox_graph, demo_accounts["USD"]))[0]
    await sandbox.fault(kind="http_500", method="GET", path=campaign_id, count=1)
    failed = await sandbox_graph.call("GET", campaign_id, recorded_query(request))
    assert_parity("transient_unknown_error", "transient_unknown_error", 0, failed)
    retried = await sandbox_graph.call("GET", campaign_id, recorded_query(request))
    assert_parity("transient_unknown_error", "transient_unknown_error", 1, retried)


async def test_parity_batch_with_a_null_item(sandbox, sandbox_graph, demo_accounts):
    read_id, update_id = (await _campaign_ids(sandbox_graph, demo_accounts["USD"]))[:2]
    translate = {"120210987654321003": read_id, "120210987654321002": update_id}

    def sandbox_batch(index: int) -> dict:
        form = recorded_form(cassette_answer("batch_requeue", index)[0])
        for theirs, ours in translate.items():
            form["batch"] = form["batch"].replace(theirs, ours)
        return form

    def item_shape(item: Any) -> Any:
        # An item's headers are a list of {name, value} strings; which headers come back varies, so only that form counts.
        if item is None:
            return shape(None)
        assert all(set(h) == {"name", "value"} and isinstance(h["value"], str) for h in item["headers"]), item
        return shape({key: value for key, value in item.items() if key != "headers"})

    await sandbox.fault(kind="batch_null", method="POST", path=update_id, count=1)
    first = await sandbox_graph.call("POST", "", data=sandbox_batch(0))
    facebook = answer_json(cassette_answer("batch_requeue", 0)[1])
    assert first.status == 200 and len(first.body) == len(facebook) == 3 and first.body[1] is None
    found = [
        line
        for i, (theirs, ours) in enumerate(zip(facebook, first.body))
        for line in shape_differences(item_shape(theirs), item_shape(ours), f"body[{i}]")
    ]
    assert {line.split(":")[0] for line in found} == KNOWN_SANDBOX_DIFFERENCES.get("batch_requeue", set()), found
    second = await sandbox_graph.call("POST", "", data=sandbox_batch(1))
    (requeued,) = answer_json(cassette_answer("batch_requeue", 1)[1])
    assert second.status == 200 and shape_differences(item_shape(requeued), item_shape(second.body[0])) == []

"""fb_utils error mapping: every Graph code in GRAPH_API.md, injected by the real sandbox, reaches the caller as the
right error class with a pinned Fix line; error bodies are never returned as data."""

from __future__ import annotations

import json

import pytest

from fb_utils import (
    DEFAULT_API_VERSION,
    AuthError,
    FacebookError,
    GraphClient,
    GraphError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    error_from_response,
    graph_answer,
)

THROTTLE_FIX = (
    "Facebook throttled this business's {}: wait the time it names, then send fewer (batch updates, fewer reads)"
)
PERMISSION_FIX = (
    "A permission is missing: reconnect Facebook (/connect) granting ads_management, ads_read and "
    "business_management, and make sure the user has a role on the ad account"
)

# (code, subcode, class, kind, fix) — the strings are pinned on purpose: changing a Fix line is a visible decision.
CASES = [
    (
        1,
        99,
        GraphError,
        "facebook",
        "Facebook hit an unknown error (1/99): retry in a minute; if it repeats, check the parameters (for insights, that level matches the object) and quote the fbtrace_id",
    ),
    (
        1,
        None,
        GraphError,
        "facebook",
        "Facebook hit an unknown error that usually passes: retry in a minute (reads are retried automatically); if it repeats, quote the fbtrace_id to Meta support",
    ),
    (
        2,
        None,
        GraphError,
        "facebook",
        "Facebook's service is temporarily unavailable: retry in a minute (reads are retried automatically)",
    ),
    (
        4,
        None,
        RateLimitError,
        "rate_limit",
        "The app's request limit is reached: wait, then send fewer calls (batch updates, fewer reads)",
    ),
    (
        10,
        None,
        PermissionDeniedError,
        "permission",
        "The app lacks permission for this action: reconnect Facebook (/connect) granting ads_management and ads_read, or ask an admin of the object for access",
    ),
    (
        12,
        None,
        GraphError,
        "facebook",
        "Facebook refused a deprecated Graph feature (apps created after 4 Nov 2026 may not use multi-id reads, method override, field aliases, date_format, JSONP or async batch): this is a bug in Ad Monster, report it with the fbtrace_id",
    ),
    (
        17,
        2446079,
        RateLimitError,
        "rate_limit",
        "The user's request limit for the Marketing API is reached: wait the time Facebook names, then spread the calls out",
    ),
    (
        32,
        None,
        RateLimitError,
        "rate_limit",
        "The Page's request limit is reached: wait before calling this Page again",
    ),
    (
        100,
        None,
        GraphError,
        "facebook",
        "Facebook rejected a parameter: correct the blamed field as the message says and retry",
    ),
    (
        100,
        33,
        NotFoundError,
        "not_found",
        "The object does not exist or this token cannot see it: check the id (list the objects to find it) and that the user or system user has a role on its ad account",
    ),
    (
        100,
        1487534,
        GraphError,
        "facebook",
        "Too much insights data for one request: use a shorter date range or fewer breakdowns, or run the report asynchronously",
    ),
    (
        100,
        1487694,
        GraphError,
        "facebook",
        "A targeting category is deprecated: search the current interests and behaviors (targeting search) and replace it",
    ),
    (
        100,
        1713230,
        GraphError,
        "facebook",
        "Facebook blocked this custom audience upload: check the audience's terms and permissions for this ad account in Ads Manager, then retry",
    ),
    (
        100,
        1885272,
        GraphError,
        "facebook",
        "Raise the budget to at least the account's minimum daily budget (get_ad_account shows min_daily_budget)",
    ),
    (
        100,
        1885261,
        GraphError,
        "facebook",
        "Lower the budget: it is above what Facebook allows for this account (stay within the account's spend cap and limits)",
    ),
    (
        100,
        1885621,
        GraphError,
        "facebook",
        "Set the budget on the campaign or on its ad sets, not both: remove daily_budget/lifetime_budget from one of them",
    ),
    (
        100,
        2490408,
        GraphError,
        "facebook",
        "Pick an optimization_goal valid for the campaign's objective (e.g. LINK_CLICKS for OUTCOME_TRAFFIC), or change the objective",
    ),
    (
        100,
        1504018,
        GraphError,
        "facebook",
        "The insights request timed out: use a shorter date range, fewer fields or breakdowns, or an async report",
    ),
    (
        104,
        None,
        AuthError,
        "auth",
        "No valid access token reached Facebook: reconnect Facebook (/connect) or set a new token",
    ),
    (190, None, AuthError, "auth", "The access token is invalid: reconnect Facebook (/connect) or set a new token"),
    (
        190,
        458,
        AuthError,
        "auth",
        "The app was removed from the Facebook account: reconnect Facebook (/connect) to authorize it again",
    ),
    (
        190,
        459,
        AuthError,
        "auth",
        "The Facebook user is checkpointed: log in at facebook.com to clear the checkpoint, then reconnect (/connect)",
    ),
    (
        190,
        460,
        AuthError,
        "auth",
        "The Facebook password changed, which revoked the token: reconnect Facebook (/connect)",
    ),
    (190, 463, AuthError, "auth", "The token expired: reconnect Facebook (/connect) or set a new token"),
    (
        190,
        464,
        AuthError,
        "auth",
        "The Facebook user is not confirmed: confirm the account at facebook.com, then reconnect (/connect)",
    ),
    (
        190,
        467,
        AuthError,
        "auth",
        "The user logged out of Facebook, which invalidated the token: reconnect Facebook (/connect)",
    ),
    (200, None, PermissionDeniedError, "permission", PERMISSION_FIX),
    (250, None, PermissionDeniedError, "permission", PERMISSION_FIX),
    (299, None, PermissionDeniedError, "permission", PERMISSION_FIX),
    (
        272,
        None,
        PermissionDeniedError,
        "permission",
        "The Marketing API is not enabled for this app or user: add the Marketing API product in the Meta app dashboard and make the user an admin or developer of the app",
    ),
    (
        294,
        None,
        PermissionDeniedError,
        "permission",
        "Managing ads needs the ads_management permission: reconnect Facebook (/connect) and grant it",
    ),
    (
        368,
        None,
        PermissionDeniedError,
        "permission",
        "Facebook blocked this action as abusive or against its policies: review Account Quality in Business Manager; retrying will not help",
    ),
    (
        613,
        1487742,
        RateLimitError,
        "rate_limit",
        "Too many calls from this ad account: wait the time Facebook names, then send fewer calls (batch updates, fewer reads)",
    ),
    (
        613,
        None,
        RateLimitError,
        "rate_limit",
        "Too many calls for this ad account: wait, then send fewer calls (batch updates, fewer reads)",
    ),
    (
        960,
        None,
        GraphError,
        "facebook",
        "A batch item timed out at Facebook: run it again (reads are retried automatically)",
    ),
    (
        2500,
        None,
        GraphError,
        "facebook",
        "Facebook could not parse the request path: check the object id, the edge name and the API version, and that a token is set",
    ),
    (
        2635,
        None,
        GraphError,
        "facebook",
        f"This Graph API version is deprecated: set ADMONSTER_API_VERSION={DEFAULT_API_VERSION} (the newest)",
    ),
    (
        2654,
        None,
        GraphError,
        "facebook",
        "The audience cannot be made: its source is too small or the same lookalike already exists; use a bigger source or the existing audience",
    ),
    (80000, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("ads_insights calls")),
    (80001, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("pages calls")),
    (80002, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("instagram calls")),
    (80003, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("custom_audience calls")),
    (80004, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("ads_management calls")),
    (80005, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("leadgen calls")),
    (80006, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("messenger calls")),
    (80007, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("calls of one business use case")),
    (80008, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("whatsapp_business_management calls")),
    (80009, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("catalog_management calls")),
    (80010, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("calls of one business use case")),
    (80011, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("calls of one business use case")),
    (80012, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("calls of one business use case")),
    (80013, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("calls of one business use case")),
    (80014, 2446079, RateLimitError, "rate_limit", THROTTLE_FIX.format("catalog_batch calls")),
    (
        -2,
        2490547,
        GraphError,
        "facebook",
        "Generating the async report failed at Facebook: start the report again later, with a shorter date range if it repeats",
    ),
]
RETRYABLE_CODES = {1, 2, 960}


@pytest.fixture
async def raw_client(sandbox, demo_token):
    """A client that does not retry, so every injected error reaches the test as it was mapped."""
    client = GraphClient(
        demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url, max_retries=0
    )
    yield client
    await client.close()


@pytest.fixture
async def account_id(raw_client) -> str:
    accounts = await raw_client.get_all("me/adaccounts", {"fields": "id,currency"})
    return next(a["id"] for a in accounts if a["currency"] == "USD")


async def inject_and_read(sandbox, client: GraphClient, account_id: str, **error) -> FacebookError:
    await sandbox.fault(kind="error", count=1, method="GET", path=r"^act_\d+$", **error)
    with pytest.raises(FacebookError) as caught:
        await client.get(account_id, {"fields": "id,name"})
    return caught.value


@pytest.mark.parametrize(
    ("code", "subcode", "error_class", "kind", "fix"), CASES, ids=[f"{c[0]}/{c[1]}" for c in CASES]
)
async def test_every_graph_code_maps_to_its_class_and_fix(
    sandbox, raw_client, account_id, code, subcode, error_class, kind, fix
):
    spec = {"code": code, "message": f"(#{code}) injected failure", "http_status": 500 if code == 1 else 400}
    if subcode is not None:
        spec["error_subcode"] = subcode
    error = await inject_and_read(sandbox, raw_client, account_id, **spec)

    assert type(error) is error_class
    assert error.kind == kind
    assert error.fix == fix
    assert (error.code, error.error_subcode) == (code, subcode)
    assert error.fbtrace_id  # the sandbox sends one, like Facebook
    assert error.data["facebook_message"] == f"(#{code}) injected failure"
    assert error.to_text().startswith(f"ERROR {kind}: (#{code}) injected failure")
    assert error.to_text().endswith(f". Fix: {fix}.")
    if error_class is RateLimitError:
        assert error.retry_after == 5.0 and error.data["retry_after_source"] == "default"
    assert error.is_transient == (code in RETRYABLE_CODES)


async def test_user_message_is_shown_and_facebooks_message_kept(sandbox, raw_client, account_id):
    error = await inject_and_read(
        sandbox,
        raw_client,
        account_id,
        code=100,
        error_subcode=1885272,
        message="Invalid parameter",
        error_user_title="Budget Too Low",
        error_user_msg="Your budget is too low. The minimum is $1.00.",
        blame_field="daily_budget",
    )
    assert error.message == "Your budget is too low. The minimum is $1.00."
    assert (error.user_title, error.user_message) == ("Budget Too Low", "Your budget is too low. The minimum is $1.00.")
    assert error.data["facebook_message"] == "Invalid parameter"
    assert error.blame_field == "daily_budget"
    assert error.to_data()["blame_field"] == "daily_budget"
    assert error.to_text() == (
        "ERROR facebook: Your budget is too low. The minimum is $1.00 (field: daily_budget). "
        "Fix: Raise the budget to at least the account's minimum daily budget (get_ad_account shows min_daily_budget)."
    )


async def test_error_data_given_as_a_json_string_is_parsed(sandbox, raw_client, account_id):
    error_data = json.dumps({"blame_field_specs": [["targeting", "age_min"]]})
    error = await inject_and_read(
        sandbox, raw_client, account_id, code=100, message="(#100) age_min too low", error_data=error_data
    )
    assert error.blame_field == "targeting.age_min"
    assert error.data["error_data"] == {"blame_field_specs": [["targeting", "age_min"]]}


async def test_known_subcodes_blame_their_field_when_facebook_names_none(sandbox, raw_client, account_id):
    error = await inject_and_read(
        sandbox, raw_client, account_id, code=100, error_subcode=2490408, message="(#100) bad goal"
    )
    assert error.blame_field == "optimization_goal"
    assert error.to_text().startswith(
        "ERROR facebook: (#100) bad goal (field: optimization_goal). Fix: Pick an optimization_goal"
    )


def test_error_data_given_as_an_object_is_read_the_same():
    body = {
        "error": {
            "message": "(#100) bad",
            "code": 100,
            "error_subcode": 2490408,
            "error_data": {"blame_field_specs": [["optimization_goal"], ["billing_event"]]},
        }
    }
    error = error_from_response(400, body)
    assert error.blame_field == "optimization_goal, billing_event"
    assert error.data["error_data"]["blame_field_specs"][0] == ["optimization_goal"]


async def test_an_error_body_with_http_200_is_never_data(sandbox, raw_client, account_id):
    error = await inject_and_read(
        sandbox, raw_client, account_id, code=100, error_subcode=33, message="gone", http_status=200
    )
    assert isinstance(error, NotFoundError)
    assert error.http_status == 200


async def test_is_transient_from_facebook_is_honored(sandbox, raw_client, account_id, demo_token):
    error = await inject_and_read(sandbox, raw_client, account_id, code=100, message="try again", is_transient=True)
    assert error.is_transient and error.retryable

    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    async with GraphClient(
        demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url, sleep=record
    ) as client:
        await sandbox.fault(
            kind="error", count=1, method="GET", path=r"^act_\d+$", code=100, message="try again", is_transient=True
        )
        assert (await client.get(account_id, {"fields": "id"}))["id"] == account_id
    assert len(recorded) == 1


async def test_token_expiry_fault_is_an_auth_error(sandbox, raw_client, account_id):
    await sandbox.fault(kind="token_expired", count=1, path=r"^act_\d+$")
    with pytest.raises(AuthError) as caught:
        await raw_client.get(account_id)
    assert caught.value.fix == "The token expired: reconnect Facebook (/connect) or set a new token"
    assert caught.value.error_subcode == 463


async def test_non_json_5xx_is_a_retryable_network_error(sandbox, raw_client, account_id):
    await sandbox.fault(kind="unavailable", count=1, method="GET", path=r"^act_\d+$")
    with pytest.raises(NetworkError) as caught:
        await raw_client.get(account_id)
    assert caught.value.http_status == 503
    assert caught.value.is_transient
    assert "Service Unavailable" in caught.value.message


def test_service_unavailable_with_http_200_is_not_data():
    with pytest.raises(NetworkError) as caught:
        graph_answer(200, "Service Unavailable")
    assert caught.value.is_transient


def test_success_false_is_not_data():
    with pytest.raises(GraphError) as caught:
        graph_answer(200, '{"success": false}')
    assert caught.value.message == 'Facebook answered {"success": false}: the change was not applied'


def test_empty_200_is_success_and_true_means_success():
    assert graph_answer(200, "") == {}
    assert graph_answer(304, "") == {}
    assert graph_answer(200, "true") == {"success": True}
    with pytest.raises(NetworkError):
        graph_answer(502, "")


def test_unknown_code_keeps_facebooks_words_and_a_generic_fix():
    error = error_from_response(
        400, {"error": {"message": "(#12345) Something new", "code": 12345, "type": "OAuthException"}}
    )
    assert type(error) is GraphError
    assert error.message == "(#12345) Something new"
    assert error.fix == FacebookError.default_fix
    assert not error.retryable


def test_throttle_wait_comes_from_the_business_use_case_header():
    headers = {
        "X-Business-Use-Case-Usage": json.dumps(
            {"123": [{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 3}]}
        )
    }
    error = error_from_response(
        400, {"error": {"message": "throttled", "code": 80004, "error_subcode": 2446079}}, headers
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 180.0
    assert error.fix.endswith("(Facebook asks to wait about 180 s)")


def test_tokens_in_error_text_are_redacted():
    body = "<html>Bad gateway for https://graph.facebook.com/v26.0/me?access_token=EAABsecretsecretsecret123</html>"
    error = error_from_response(502, body)
    assert isinstance(error, NetworkError)
    assert "EAABsecret" not in error.to_text()
    assert "access_token=[REDACTED]" in error.message


def test_error_text_is_always_one_line():
    from fb_utils import ValidationError

    error = ValidationError("unknown argument '\x1e'\nsecond line", fix="Do this\rthen that", blame_field="a\u2028b")
    assert len(error.to_text().splitlines()) == 1
    assert (
        error.to_text()
        == "ERROR validation: unknown argument '\\x1e'\\nsecond line (field: a\\u2028b). Fix: Do this\\rthen that."
    )


def test_closest_names_by_spelling_then_by_containing():
    from fb_utils import closest_names

    ops = ["list_campaigns", "get_campaign", "pause_campaign", "list_adsets", "token_status"]
    assert closest_names("list_campain", ops)[0] == "list_campaigns"
    assert closest_names("token", ops) == ["token_status"]  # too short to be spelled alike: contained
    assert closest_names("zzz", ops) == [] and closest_names(None, ops) == [] and closest_names("", ops) == []
    assert len(closest_names("campaign", ops, 2)) == 2

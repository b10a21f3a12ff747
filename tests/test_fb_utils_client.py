"""fb_utils GraphClient against the real sandbox: wire format, lifecycle, retries, creates that are never duplicated,
pacing and throttle waits. Only the client's ``sleep`` is replaced: a recorder that moves the sandbox clock instead."""

from __future__ import annotations

import asyncio
import json
import random
import re

import aiohttp
import pytest
from facebook_business.api import _top_level_param_json_encode
from facebook_business.session import FacebookSession

from fb_utils import (
    AccountUsage,
    ClientClosedError,
    CreateLookup,
    GraphClient,
    GraphError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    ValidationError,
    appsecret_proof,
    backoff_delay,
    encode_graph_params,
    jitter,
    new_client_tag,
    should_retry,
)

CAMPAIGNS_EDGE = r"^act_\d+/campaigns$"
OBJECT = r"^\d+$"


class Waits:
    """Records the client's waits and what it said; time passes in the sandbox (its clock) instead of here."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.sleeps: list[float] = []
        self.messages: list[str] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self.sandbox.control("POST", "clock", {"advance": seconds})

    def on_wait(self, message: str) -> None:
        self.messages.append(message)


@pytest.fixture
async def make_client(sandbox, demo_token):
    clients: list[GraphClient] = []

    def make(**options) -> tuple[GraphClient, Waits]:
        waits = Waits(sandbox)
        client = GraphClient(
            demo_token["access_token"],
            app_secret=demo_token["app_secret"],
            base_url=sandbox.url,
            **{"sleep": waits.sleep, "on_wait": waits.on_wait, "rng": random.Random(7), **options},
        )
        clients.append(client)
        return client, waits

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def account_id(make_client) -> str:
    client, _ = make_client()
    accounts = await client.get_all("me/adaccounts", {"fields": "id,currency"})
    return next(a["id"] for a in accounts if a["currency"] == "USD")


@pytest.fixture
async def campaign_id(sandbox, account_id) -> str:
    return (await sandbox.control("POST", "seed", {"campaigns": 1, "account_id": account_id, "name_prefix": "Target"}))[
        "ids"
    ][0]


async def route_count(sandbox, route: str) -> int:
    return (await sandbox.stats())["by_route"].get(route, 0)


async def campaigns_named(sandbox, name: str) -> list[dict]:
    rows = (await sandbox.control("GET", "objects?type=campaign"))["data"]
    return [row for row in rows if row.get("name") == name]


def campaign_data(name: str) -> dict:
    return {
        "name": name,
        "objective": "OUTCOME_TRAFFIC",
        "status": "PAUSED",
        "special_ad_categories": [],
        "is_adset_budget_sharing_enabled": False,
    }


# Wire format and lifecycle ----------------------------------------------------------------------------------------


def test_params_are_encoded_like_the_sdk():
    params = {
        "name": "Summer",
        "special_ad_categories": [],
        "adlabels": [{"name": "t"}],
        "is_adset_budget_sharing_enabled": False,
        "targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 18},
        "daily_budget": 1500,
    }
    sdk = {k: str(v) if not isinstance(v, str) else v for k, v in _top_level_param_json_encode(params).items()}
    assert encode_graph_params(params) == sdk


def test_appsecret_proof_matches_the_sdk():
    session = FacebookSession(app_id="1", app_secret="shh-app-secret", access_token="EAAtokenvalue123")
    assert appsecret_proof("EAAtokenvalue123", "shh-app-secret") == session.appsecret_proof


async def test_the_sandbox_accepts_our_token_and_proof_on_get_and_post(make_client, campaign_id):
    client, _ = make_client()
    assert (await client.post(campaign_id, {"name": "Renamed by proof"}))["success"] is True
    assert (await client.get(campaign_id, {"fields": "name"}))["name"] == "Renamed by proof"


async def test_a_wrong_app_secret_is_refused(sandbox, demo_token, account_id):
    async with GraphClient(
        demo_token["access_token"], app_secret="not-the-secret", base_url=sandbox.url, max_retries=0
    ) as client:
        with pytest.raises(GraphError) as caught:
            await client.get(account_id)
    assert "appsecret_proof" in caught.value.message


async def test_close_is_safe_twice_and_use_after_close_is_refused(make_client, account_id):
    client, _ = make_client()
    assert (await client.get(account_id, {"fields": "id"}))["id"] == account_id
    await client.close()
    await client.close()
    with pytest.raises(ClientClosedError) as caught:
        await client.get(account_id)
    assert (
        caught.value.to_text()
        == "ERROR network: This Graph client is closed. Fix: Open a new GraphClient; a closed client cannot be reused."
    )


async def test_an_injected_session_is_used_and_left_open(sandbox, demo_token, account_id):
    async with aiohttp.ClientSession() as session:
        client = GraphClient(
            demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url, session=session
        )
        assert (await client.get(account_id, {"fields": "id"}))["id"] == account_id
        await client.close()
        assert not session.closed  # its owner closes it


async def test_context_manager_counts_requests(sandbox, demo_token, account_id):
    async with GraphClient(
        demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url
    ) as client:
        await client.get(account_id)
        await client.get("me/adaccounts")
        assert client.request_count == 2
    assert client.closed


async def test_account_info_is_cached_until_invalidated(sandbox, make_client, account_id):
    client, _ = make_client()
    first = await client.account_info(account_id)
    again = await client.account_info(account_id.removeprefix("act_"))
    assert first is again and first.currency == "USD" and first.offset == 100
    assert first.format(first.min_daily_budget) == f"${first.min_daily_budget / 100:,.2f}"
    assert await route_count(sandbox, "GET act_x") == 1
    client.invalidate_account(account_id)
    await client.account_info(account_id)
    assert await route_count(sandbox, "GET act_x") == 2


async def test_not_found_object(make_client):
    client, _ = make_client()
    with pytest.raises(NotFoundError) as caught:
        await client.get("999999999999")
    assert caught.value.error_subcode == 33


# Retries ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_500", "drop", "unavailable"])
async def test_a_read_is_retried_after_a_server_or_connection_failure(sandbox, make_client, account_id, kind):
    client, waits = make_client()
    await sandbox.fault(kind=kind, count=2, method="GET", path=r"^act_\d+$")
    assert (await client.get(account_id, {"fields": "id"}))["id"] == account_id
    assert await route_count(sandbox, "GET act_x") == 3
    # aiohttp itself re-sends a GET once when a reused keep-alive connection turns out closed, so a drop may cost
    # no backoff; every backoff we did take follows the jittered schedule.
    assert 1 <= len(waits.sleeps) <= 2
    assert waits.sleeps[0] == pytest.approx(jitter(backoff_delay(0), random.Random(7)))
    assert all(0.75 * backoff_delay(n) <= s <= 1.25 * backoff_delay(n) for n, s in enumerate(waits.sleeps))


async def test_a_read_is_retried_after_a_timeout(sandbox, make_client, account_id):
    client, waits = make_client(timeout=0.2)
    await sandbox.fault(kind="timeout", count=1, method="GET", path=r"^act_\d+$", delay_ms=600)
    assert (await client.get(account_id, {"fields": "id"}))["id"] == account_id
    assert len(waits.sleeps) == 1


async def test_reads_give_up_after_max_retries(sandbox, make_client, account_id):
    client, waits = make_client(max_retries=2)
    await sandbox.fault(kind="http_500", count=5, method="GET", path=r"^act_\d+$")
    with pytest.raises(GraphError) as caught:
        await client.get(account_id)
    assert caught.value.code == 1 and caught.value.http_status == 500
    assert len(waits.sleeps) == 2


async def test_an_update_is_not_blindly_resent_after_a_lost_answer(sandbox, make_client, campaign_id):
    client, waits = make_client()
    await sandbox.fault(kind="drop", count=1, method="POST", path=OBJECT, when="after")
    with pytest.raises(NetworkError) as caught:
        await client.post(campaign_id, {"name": "Maybe renamed"})
    assert caught.value.data["reason"] == "connection"
    assert await route_count(sandbox, "POST {id}") == 1
    assert waits.sleeps == []


async def test_an_idempotent_update_is_resent(sandbox, make_client, campaign_id):
    client, _waits = make_client()
    await sandbox.fault(kind="http_500", count=1, method="POST", path=OBJECT)
    assert (await client.post(campaign_id, {"status": "PAUSED"}, idempotent=True))["success"] is True
    assert await route_count(sandbox, "POST {id}") == 2


async def test_a_refused_update_is_not_retried(sandbox, make_client, campaign_id):
    client, _ = make_client()
    with pytest.raises(GraphError) as caught:
        await client.post(campaign_id, {"status": "NOT_A_STATUS"})
    assert caught.value.code == 100
    assert await route_count(sandbox, "POST {id}") == 1


# Creates: never duplicated ------------------------------------------------------------------------------------------


async def test_a_create_whose_answer_is_lost_is_recovered_not_duplicated(sandbox, make_client, account_id):
    client, _ = make_client()
    edge, tag = f"{account_id}/campaigns", new_client_tag()
    await sandbox.fault(kind="drop", count=1, method="POST", path=CAMPAIGNS_EDGE, when="after")
    created = await client.create(edge, campaign_data("Lost Answer"), lookup=CreateLookup(edge, "Lost Answer", tag))
    made = await campaigns_named(sandbox, "Lost Answer")
    assert len(made) == 1
    assert created == {"id": made[0]["id"], "recovered": True}
    assert [label["name"] for label in made[0]["adlabels"]] == [tag]
    assert await route_count(sandbox, "POST act_x/campaigns") == 1
    assert await route_count(sandbox, "GET act_x/campaigns") == 1


async def test_a_create_that_never_arrived_is_sent_again_once_absence_is_proven(sandbox, make_client, account_id):
    """A lost answer is followed by looks for the tag over the whole settle window (1 s, 2 s, 4 s … apart): only when
    none found it is the create sent again, once."""
    client, waits = make_client(settle_window=10)
    edge, tag = f"{account_id}/campaigns", new_client_tag()
    await sandbox.fault(kind="drop", count=1, method="POST", path=CAMPAIGNS_EDGE, when="before")
    created = await client.create(edge, campaign_data("Never Arrived"), lookup=CreateLookup(edge, "Never Arrived", tag))
    made = await campaigns_named(sandbox, "Never Arrived")
    assert len(made) == 1 and created == {"id": made[0]["id"]}
    assert await route_count(sandbox, "POST act_x/campaigns") == 2
    assert await route_count(sandbox, "GET act_x/campaigns") == 5  # at 0, 1, 3, 7 and 10 s of the window
    assert waits.sleeps == [1.0, 2.0, 4.0, 3.0] and sum(waits.sleeps) == 10


async def test_a_create_that_lands_late_is_found_not_made_twice(sandbox, make_client, account_id):
    """Facebook finishes a request after the client gave up on it (the sandbox's timeout fault delays the create past
    the client's timeout): the looks over the settle window find it, and nothing is sent again."""
    client, _ = make_client(
        timeout=0.3, settle_window=30, sleep=asyncio.sleep
    )  # real waits: the write lands after 1.5 s
    edge, tag = f"{account_id}/campaigns", new_client_tag()
    await sandbox.fault(kind="timeout", count=1, method="POST", path=CAMPAIGNS_EDGE, delay_ms=1500)
    created = await client.create(edge, campaign_data("Late Write"), lookup=CreateLookup(edge, "Late Write", tag))
    made = await campaigns_named(sandbox, "Late Write")
    assert len(made) == 1 and created == {"id": made[0]["id"], "recovered": True}
    assert await route_count(sandbox, "POST act_x/campaigns") == 1


async def test_a_same_named_object_without_our_tag_is_not_taken_for_ours(sandbox, make_client, account_id):
    client, _ = make_client()
    edge = f"{account_id}/campaigns"
    await client.create(edge, campaign_data("Twin"), lookup=CreateLookup(edge, "Twin", new_client_tag()))
    await sandbox.fault(kind="http_500", count=1, method="POST", path=CAMPAIGNS_EDGE)
    created = await client.create(edge, campaign_data("Twin"), lookup=CreateLookup(edge, "Twin", new_client_tag()))
    assert "recovered" not in created
    assert len(await campaigns_named(sandbox, "Twin")) == 2


async def test_when_the_lookup_fails_too_the_create_says_it_may_have_happened(sandbox, make_client, account_id):
    client, _ = make_client(max_retries=1)
    edge, tag = f"{account_id}/campaigns", new_client_tag()
    await sandbox.fault(kind="drop", count=1, method="POST", path=CAMPAIGNS_EDGE, when="after")
    await sandbox.fault(kind="http_500", count=5, method="GET", path=CAMPAIGNS_EDGE)
    with pytest.raises(NetworkError) as caught:
        await client.create(edge, campaign_data("Unknown Fate"), lookup=CreateLookup(edge, "Unknown Fate", tag))
    assert "it may or may not have been created, and it was not sent again" in caught.value.message
    assert isinstance(caught.value, OutcomeUnknownError) and "reconcile" in caught.value.fix
    assert caught.value.data["create_outcome"] == "unknown" and caught.value.data["client_tag"] == tag
    assert len(await campaigns_named(sandbox, "Unknown Fate")) == 1  # made once, never sent twice


async def test_a_create_without_lookup_is_never_resent(sandbox, make_client, account_id):
    client, _ = make_client()
    await sandbox.fault(kind="http_500", count=1, method="POST", path=CAMPAIGNS_EDGE)
    with pytest.raises(NetworkError) as caught:
        await client.create(f"{account_id}/campaigns", campaign_data("No Lookup"), lookup=None)
    assert "may or may not have been created" in caught.value.message
    assert await route_count(sandbox, "POST act_x/campaigns") == 1


async def test_a_refused_create_is_not_looked_up(sandbox, make_client, account_id):
    client, _ = make_client()
    edge = f"{account_id}/campaigns"
    with pytest.raises(GraphError) as caught:
        await client.create(
            edge, {**campaign_data("Bad"), "objective": "NOPE"}, lookup=CreateLookup(edge, "Bad", new_client_tag())
        )
    assert caught.value.code == 100 and caught.value.blame_field == "objective"
    assert await route_count(sandbox, "GET act_x/campaigns") == 0


async def test_a_throttled_create_waits_and_is_sent_again(sandbox, make_client, account_id):
    client, waits = make_client()
    edge = f"{account_id}/campaigns"
    await sandbox.fault(kind="throttle", count=1, method="POST", path=CAMPAIGNS_EDGE, minutes=1)
    created = await client.create(
        edge, campaign_data("After Throttle"), lookup=CreateLookup(edge, "After Throttle", new_client_tag())
    )
    assert len(await campaigns_named(sandbox, "After Throttle")) == 1 and "recovered" not in created
    assert waits.sleeps == [60.0]


# Retry policy, unit by unit -----------------------------------------------------------------------------------------


def test_should_retry_decides_by_error_method_and_attempt():
    network = NetworkError("dropped", is_transient=True)
    server = GraphError("unknown", code=1, http_status=500, is_transient=True)
    throttle = RateLimitError("slow down", code=80004, retry_after=60)
    refused = GraphError("bad field", code=100, http_status=400)
    transient_refusal = GraphError("try again", code=100, http_status=400, is_transient=True)
    assert should_retry(network, method="GET", creates=False, attempt=0, max_retries=3)
    assert should_retry(server, method="DELETE", creates=False, attempt=2, max_retries=3)
    assert not should_retry(server, method="GET", creates=False, attempt=3, max_retries=3)
    assert not should_retry(network, method="POST", creates=False, attempt=0, max_retries=3)
    assert should_retry(network, method="POST", creates=False, attempt=0, max_retries=3, idempotent=True)
    assert not should_retry(network, method="POST", creates=True, attempt=0, max_retries=3, idempotent=True)
    assert should_retry(throttle, method="POST", creates=True, attempt=0, max_retries=3)
    assert not should_retry(refused, method="GET", creates=False, attempt=0, max_retries=3)
    assert should_retry(transient_refusal, method="POST", creates=True, attempt=0, max_retries=3)
    assert not should_retry(ValidationError("no"), method="GET", creates=False, attempt=0, max_retries=3)


def test_backoff_grows_to_its_cap_and_jitter_is_deterministic_with_a_seeded_rng():
    assert [backoff_delay(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff_delay(2, base=1.0, cap=3.0) == 3.0
    first = [jitter(10.0, random.Random(42)) for _ in range(2)]
    assert first[0] == first[1] and 7.5 <= first[0] <= 12.5


# Pacing and throttles -----------------------------------------------------------------------------------------------


async def test_pacing_keeps_a_development_tier_account_below_its_limit(sandbox, make_client, account_id):
    await sandbox.control("POST", "config", {"access_tier": "development_access"})
    client, waits = make_client()
    for _ in range(90):  # the development tier allows 60 reads in 300 s: without pacing this is throttled
        await client.get(account_id, {"fields": "id"})

    pacing = [m for m in waits.messages if m.startswith(f"Pacing {account_id}: ad-account usage at ")]
    assert pacing, waits.messages
    levels = [int(re.search(r"at (\d+)%", m).group(1)) for m in pacing]
    assert min(levels) >= 75 and max(levels) < 100
    assert not [m for m in waits.messages if "throttled" in m]
    assert len(waits.sleeps) == len(pacing) and all(s > 0 for s in waits.sleeps)
    usage = client.usage[account_id]
    assert isinstance(usage, AccountUsage) and usage.access_tier == "development_access"
    assert await route_count(sandbox, "GET act_x") == 90  # every read was answered: none refused and re-sent


async def test_without_pacing_the_same_reads_are_throttled(sandbox, make_client, account_id):
    await sandbox.control("POST", "config", {"access_tier": "development_access"})
    client, waits = make_client(pace_threshold=101)  # pacing off: shows the pacing test above is not vacuous
    with pytest.raises(RateLimitError) as caught:
        for _ in range(90):
            await client.get(account_id, {"fields": "id"})
    assert caught.value.retry_after == 300.0  # the development tier blocks for 300 s, longer than max_wait
    assert not [m for m in waits.messages if m.startswith("Pacing")]


async def test_a_throttle_is_waited_out_as_facebook_asks(sandbox, make_client, account_id):
    client, waits = make_client()
    await sandbox.fault(kind="throttle", count=1, method="GET", path=r"^act_\d+$", minutes=1)
    assert (await client.get(account_id, {"fields": "id"}))["id"] == account_id
    assert waits.sleeps == [60.0]
    assert waits.messages == [f"Facebook throttled {account_id} (code 80004): waiting 60 s, as Facebook asks"]


async def test_a_throttle_longer_than_max_wait_is_raised_with_retry_after(sandbox, make_client, account_id):
    client, waits = make_client(max_wait=120)
    await sandbox.fault(kind="throttle", count=1, method="GET", path=r"^act_\d+$", minutes=5)
    with pytest.raises(RateLimitError) as caught:
        await client.get(account_id)
    assert caught.value.retry_after == 300.0
    assert caught.value.to_data()["retry_after"] == 300.0
    assert caught.value.fix.endswith("(Facebook asks to wait about 300 s)")
    assert waits.sleeps == []


async def test_a_throttle_without_a_time_backs_off_a_little(sandbox, make_client, account_id):
    client, waits = make_client()
    await sandbox.fault(kind="throttle", count=1, method="GET", path=r"^act_\d+$", minutes=0)
    assert (await client.get(account_id, {"fields": "id"}))["id"] == account_id
    assert waits.sleeps == [5.0]
    assert waits.messages == [f"Facebook throttled {account_id} (code 80004): waiting 5 s before retrying"]


async def test_usage_of_an_object_call_is_credited_to_its_account(make_client, account_id, campaign_id):
    client, _ = make_client()
    await client.get(campaign_id, {"fields": "id"})
    assert account_id in client.usage
    assert client.usage[account_id].reset_time_duration > 0


async def test_overlong_get_goes_as_post_with_method_get(sandbox, graph, demo_accounts):
    import json as _json

    ids = (
        await sandbox.control(
            "POST", "seed", {"campaigns": 400, "account_id": demo_accounts["USD"], "name_prefix": "Long"}
        )
    )["ids"]
    params = {
        "fields": "id,name",
        "limit": 1000,
        "filtering": _json.dumps([{"field": "id", "operator": "IN", "value": ids}]),
    }
    assert len(params["filtering"]) > 8000  # longer than a server accepts in a request line
    await sandbox.control("POST", "stats/reset")
    found = await graph.get_all(f"{demo_accounts['USD']}/campaigns", params)
    assert sorted(c["id"] for c in found) == sorted(ids)
    assert (await sandbox.stats())["requests"] == 1


def test_a_large_body_is_one_json_object_with_nested_values_embedded_once():
    from fb_utils import RawJSON, encode_graph_params, graph_json_body

    params = {
        "payload": {"schema": ["EMAIL"], "data": [["a" * 64]] * 3},
        "session": RawJSON('{"batch_seq":2}'),
        "name": 'Q4 "list"',
        "limit": 5,
        "flag": True,
        "skipped": None,
    }
    body = json.loads(graph_json_body(params, encode_graph_params(params)))
    assert body == {
        "payload": {"schema": ["EMAIL"], "data": [["a" * 64]] * 3},
        "session": {"batch_seq": 2},
        "name": 'Q4 "list"',
        "limit": "5",
        "flag": True,
    }

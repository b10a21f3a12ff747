"""Pacing shared through the database (issue 21 item 3): Facebook's limits are per ad account and app, whichever process
calls, so a replica that sees an account at 90 % (or throttled) slows the others. Graph clients talk to the real
sandbox over HTTP on its development tier (60 points of ad-account score per 300 s: fb_sandbox/usage.py); the store is
real, on SQLite and PostgreSQL. Time is simulated: a client's sleep moves the sandbox's clock and the shared wall clock
together (the shared rows hold wall-clock UTC)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from admonster_store import Store
from fb_utils import GraphClient, RateLimitError, SharedAccountUsage
from fi_facebook import Facebook, StoreSharedUsage
from testkit import SANDBOX_START, sandbox_clock

READ = "GET act_x"


class World:
    """The simulated time every client of one test shares: the sandbox's clock and the wall clock, moved together."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.now = SANDBOX_START.timestamp()

    def wall(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        await self.sandbox.control("POST", "clock", {"advance": seconds})


class Waits:
    """One client's waits and what it said about them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.sleeps: list[float] = []
        self.messages: list[str] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self.world.advance(seconds)

    def on_wait(self, message: str) -> None:
        self.messages.append(message)


@pytest.fixture
async def world(sandbox) -> World:
    await sandbox.control("POST", "config", {"access_tier": "development_access"})
    return World(sandbox)


@pytest.fixture
async def shared_store(store_target):
    opened = await Store.open(store_target, secret_key=Fernet.generate_key())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def make_client(world, demo_token):
    clients: list[GraphClient] = []

    def make(store: Store | None, **options) -> tuple[GraphClient, Waits]:
        waits = Waits(world)
        client = GraphClient(
            demo_token["access_token"],
            app_secret=demo_token["app_secret"],
            base_url=world.sandbox.url,
            shared_usage=StoreSharedUsage(store) if store is not None else None,
            wall_clock=world.wall,
            **{"sleep": waits.sleep, "on_wait": waits.on_wait, "rng": random.Random(7), **options},
        )
        clients.append(client)
        return client, waits

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def account_id(demo_accounts) -> str:
    return demo_accounts["USD"]


async def reads(sandbox) -> int:
    return (await sandbox.stats())["by_route"].get(READ, 0)


async def drive_to(client: GraphClient, account: str, level: float, limit: int = 120) -> float:
    """Read the account until its usage (as Facebook's headers say) reaches `level`; returns the level reached."""
    for _ in range(limit):
        await client.get(account, {"fields": "id"})
        reached, _ = client.usage[account].worst()
        if reached >= level:
            return reached
    return client.usage[account].worst()[0]


def pacing_levels(waits: Waits, account: str) -> list[int]:
    return [int(re.search(r"at (\d+)%", m).group(1)) for m in waits.messages if m.startswith(f"Pacing {account}: ")]


# The store's shared rows, on both engines ----------------------------------------------------------------------------


async def test_shared_usage_keeps_the_newest_sighting_and_the_longest_block(shared_store):
    at = datetime(2026, 3, 2, 20, 0, 0, tzinfo=UTC)
    assert await shared_store.account_usage_share("act_1") is None
    await shared_store.publish_account_usage(
        "act_1",
        usage_pct=91.5,
        measure="ad-account usage",
        window_seconds=300,
        seen_at=at.replace(second=10),
        block_until=at.replace(minute=5),
    )
    # An older sighting arriving late changes nothing but may not shorten the block; a newer one replaces the usage.
    await shared_store.publish_account_usage(
        "act_1",
        usage_pct=20,
        measure="ads_management usage",
        window_seconds=60,
        seen_at=at.replace(second=5),
        block_until=at.replace(minute=1),
    )
    row = await shared_store.account_usage_share("act_1")
    assert (row.usage_pct, row.measure, row.window_seconds, row.seen_at) == (
        91.5,
        "ad-account usage",
        300,
        at.replace(second=10),
    )
    assert row.block_until == at.replace(minute=5)
    await shared_store.publish_account_usage(
        "act_1",
        usage_pct=80,
        measure="insights usage",
        window_seconds=120,
        seen_at=at.replace(second=30),
        block_until=None,
    )
    row = await shared_store.account_usage_share("act_1")
    assert (row.usage_pct, row.measure, row.window_seconds, row.seen_at) == (
        80,
        "insights usage",
        120,
        at.replace(second=30),
    )
    assert row.block_until == at.replace(minute=5)  # a sighting without a throttle does not lift an earlier block
    await shared_store.publish_account_usage(
        "act_1",
        usage_pct=100,
        measure="ad-account usage",
        window_seconds=300,
        seen_at=at.replace(second=40),
        block_until=at.replace(minute=9),
    )
    assert (await shared_store.account_usage_share("act_1")).block_until == at.replace(minute=9)
    assert await shared_store.account_usage_share("act_2") is None  # per ad account


# Two Graph clients on one database ----------------------------------------------------------------------------------


async def test_a_client_that_made_no_call_paces_when_another_saw_high_usage(
    sandbox, make_client, shared_store, account_id
):
    busy, busy_waits = make_client(shared_store)
    reached = await drive_to(busy, account_id, 90)
    assert reached >= 90 and pacing_levels(busy_waits, account_id)  # it paced itself on the way
    shared = await shared_store.account_usage_share(account_id)
    assert shared is not None and shared.usage_pct >= 75  # published when it crossed the threshold (and since)

    fresh, fresh_waits = make_client(shared_store)
    before = await reads(sandbox)
    await fresh.get(account_id, {"fields": "id"})
    assert pacing_levels(fresh_waits, account_id) == [round(shared.usage_pct)]  # it waited before its first call
    assert len(fresh_waits.sleeps) == 1 and fresh_waits.sleeps[0] > 1.0
    assert await reads(sandbox) == before + 1

    alone, alone_waits = make_client(None)  # the same call without the shared store: nothing tells it
    await alone.get(account_id, {"fields": "id"})
    assert alone_waits.sleeps == [] and alone_waits.messages == []


async def test_the_shared_row_is_read_at_most_once_per_few_seconds(sandbox, make_client, shared_store, account_id):
    class Counting(StoreSharedUsage):
        reads = 0

        async def read(self, account):
            Counting.reads += 1
            return await super().read(account)

    client, _ = make_client(None)
    client.limiter.shared = Counting(shared_store)
    for _ in range(10):  # back-to-back answers are fresher than any shared row: no database round trip per call
        await client.get(account_id, {"fields": "id"})
    assert Counting.reads == 1  # only before the first call, when it knew nothing of the account


async def test_a_throttle_met_by_one_client_stops_the_others_before_they_call(
    sandbox, make_client, shared_store, account_id
):
    unpaced, _ = make_client(shared_store, pace_threshold=101)  # a client that does not pace: the sandbox blocks it
    with pytest.raises(RateLimitError) as caught:
        for _ in range(90):
            await unpaced.get(account_id, {"fields": "id"})
    assert caught.value.retry_after == 300.0  # the development tier blocks the account for 300 s
    sent = await reads(sandbox)

    other, other_waits = make_client(shared_store)  # waits at most 120 s: it refuses at once, without calling
    with pytest.raises(RateLimitError) as refused:
        await other.get(account_id, {"fields": "id"})
    assert 295 <= refused.value.retry_after <= 301 and f"throttling {account_id}" in refused.value.message
    assert await reads(sandbox) == sent and other_waits.sleeps == []

    patient, patient_waits = make_client(shared_store, max_wait=600)  # waits the throttle out, then calls once
    assert (await patient.get(account_id, {"fields": "id"}))["id"] == account_id
    assert len(patient_waits.sleeps) == 1 and 295 <= patient_waits.sleeps[0] <= 301
    assert patient_waits.messages[0].startswith(
        f"Waiting {round(patient_waits.sleeps[0])} s more for Facebook's throttle on {account_id}"
    )
    assert await reads(sandbox) == sent + 1

    alone, _ = make_client(None)  # without the shared store the call goes out and Facebook refuses it again
    await sandbox.fault(kind="throttle", count=1, method="GET", path=r"^act_\d+$", minutes=5)
    with pytest.raises(RateLimitError):
        await alone.get(account_id, {"fields": "id"})
    assert await reads(sandbox) == sent + 2


async def test_without_a_store_nothing_is_published_and_pacing_is_per_process(sandbox, make_client, account_id):
    client, waits = make_client(None)
    assert client.limiter.shared is None
    await drive_to(client, account_id, 90)
    assert pacing_levels(waits, account_id) and all(75 <= level < 100 for level in pacing_levels(waits, account_id))


class Recorder:
    """A SharedUsage that keeps what it was given (the Protocol fb_utils needs, without a store)."""

    def __init__(self) -> None:
        self.published: list[SharedAccountUsage] = []

    async def publish(self, usage: SharedAccountUsage) -> None:
        self.published.append(usage)

    async def read(self, account: str) -> SharedAccountUsage | None:
        return None


async def test_usage_is_published_when_it_crosses_the_threshold_not_on_every_call(make_client, account_id):
    client, _ = make_client(None)
    recorder = Recorder()
    client.limiter.shared = recorder
    await drive_to(client, account_id, 90)
    calls = client.request_count
    assert recorder.published and recorder.published[0].pct >= 75
    assert all(
        p.account == account_id and p.measure == "ad-account usage" and p.block_until is None
        for p in recorder.published
    )
    assert len(recorder.published) < calls - 40  # the ~45 calls under the threshold published nothing
    seen = [p.seen_at for p in recorder.published]
    assert all(b - a >= 5.0 for a, b in zip(seen, seen[1:]))  # while over it, at most once per 5 s


# Replicas: three processes' sessions (each its own store connection, Graph client and workspace) on one PostgreSQL ------


@pytest.fixture
async def replicas(sandbox, world, demo_token, postgres_url, demo_accounts, tmp_path):
    key = Fernet.generate_key()
    made = []
    for n in range(3):
        store = await Store.open(postgres_url, secret_key=key)
        waits = Waits(world)
        graph = GraphClient(
            demo_token["access_token"],
            app_secret=demo_token["app_secret"],
            base_url=sandbox.url,
            sleep=waits.sleep,
            on_wait=waits.on_wait,
            rng=random.Random(n),
            wall_clock=world.wall,
        )
        workspace = await store.ensure_workspace(f"replica-{n}")  # another workspace on each: the account is shared
        await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
        made.append(
            (Facebook(store, graph, workspace, clock=sandbox_clock(sandbox), files_home=tmp_path / "home"), waits)
        )
    try:
        yield made
    finally:
        for facebook, _ in made:
            await facebook.graph.close()
            await facebook.store.close()


async def test_the_per_account_limit_holds_across_three_replicas(sandbox, replicas, account_id):
    (busy, busy_waits), *others = replicas
    results = []
    while busy.graph.usage.get(account_id) is None or busy.graph.usage[account_id].worst()[0] < 90:
        results.append(await busy.call("get_ad_account"))
        assert len(results) < 120
    assert pacing_levels(busy_waits, account_id)
    for facebook, waits in others:  # replicas that made no call yet: they wait before their first one
        results.append(await facebook.call("get_ad_account"))
        assert len(waits.sleeps) == 1 and pacing_levels(waits, account_id)[0] >= 75, waits.messages
    for turn in range(96 - len(results)):  # then they take turns, 8 reads each: more than the tier's 60 in 300 s
        facebook, _ = replicas[turn // 8 % 3]
        results.append(await facebook.call("get_ad_account"))
    assert all(result.ok for result in results), [r.text for r in results if not r.ok][:1]
    assert not [m for _, waits in replicas for m in waits.messages if "throttl" in m]
    assert await reads(sandbox) == 96  # every read answered the first time: none refused and sent again
    for facebook, _ in replicas:  # each session was wired to the store by fi_facebook
        assert isinstance(facebook.graph.limiter.shared, StoreSharedUsage)


async def test_a_replica_throttled_stops_the_other_replicas_calls(sandbox, world, replicas, account_id):
    (first, _), (second, _), (third, _) = replicas
    await sandbox.fault(kind="throttle", count=1, method="GET", path=r"^act_\d+$", minutes=5)
    refused = await first.call("get_ad_account")
    assert not refused.ok and refused.data["retry_after"] == 300.0
    sent = await reads(sandbox)
    for other in (second, third):  # another workspace, another process: the same ad account, so the same throttle
        answer = await other.call("get_ad_account")
        assert not answer.ok and 295 <= answer.data["retry_after"] <= 301 and "throttling" in answer.text
    assert await reads(sandbox) == sent  # neither called Facebook while the account was blocked
    await world.advance(301)
    assert (await second.call("get_ad_account")).ok and await reads(sandbox) == sent + 1

"""Single-flight leases in the store (migration 9): one owner at a time per key, across connections to one file (as two
processes sharing ADMONSTER_HOME have), taken over only once expired, renewed and released only by their owner."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.fernet import Fernet

from admonster_store import InvalidArgument, Store


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_processes(request, tmp_path, clock):
    """Two stores on one database, as two processes sharing one home (or two replicas sharing one PostgreSQL) have;
    both read the test's clock."""
    target = tmp_path / "admonster.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    key = Fernet.generate_key()
    first = await Store.open(target, secret_key=key, clock=clock)
    second = await Store.open(target, secret_key=key, clock=clock)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_lease_has_one_owner_until_it_expires(two_processes, clock):
    first, second = two_processes
    workspace = (await first.ensure_workspace("w")).id
    held = await first.claim_lease(workspace, "launch:k", "A", 30)
    assert held.owner == "A" and held.expires_at > held.claimed_at
    refused = await second.claim_lease(workspace, "launch:k", "B", 30)
    assert refused.owner == "A" and refused.claimed_at == held.claimed_at
    assert (await second.claim_lease(workspace, "launch:other", "B", 30)).owner == "B"  # keys are independent

    clock.advance(29)
    assert await first.renew_lease(workspace, "launch:k", "A", 30)  # renewed: it now ends 30 s from here
    clock.advance(29)
    assert (await second.claim_lease(workspace, "launch:k", "B", 30)).owner == "A"
    clock.advance(2)  # A stopped renewing (killed): B takes over
    assert (await second.claim_lease(workspace, "launch:k", "B", 30)).owner == "B"
    assert not await first.renew_lease(workspace, "launch:k", "A", 30)  # A learns it lost the lease
    assert not await first.release_lease(workspace, "launch:k", "A")  # and cannot free B's
    assert (await first.claim_lease(workspace, "launch:k", "A", 30)).owner == "B"
    assert await second.release_lease(workspace, "launch:k", "B")
    assert (await first.claim_lease(workspace, "launch:k", "A", 30)).owner == "A"


async def test_claims_at_the_same_moment_have_one_winner(two_processes):
    first, second = two_processes
    workspace = (await first.ensure_workspace("w")).id
    claims = await asyncio.gather(
        *[(first if n % 2 else second).claim_lease(workspace, "launch:race", f"owner {n}", 30) for n in range(10)]
    )
    winners = {lease.owner for lease in claims}
    assert len(winners) == 1
    assert sum(1 for n, lease in enumerate(claims) if lease.owner == f"owner {n}") == 1


async def test_a_claim_racing_a_release_always_answers_with_the_lease_as_it_stands(two_processes):
    """A winner releasing at once while the other connection claims: the loser's look can fall between the release and
    its own claim; it claims again instead of finding no lease (a launch asked twice at once once crashed there)."""
    first, second = two_processes
    workspace = (await first.ensure_workspace("w")).id

    async def claim_and_release(store: Store, owner: str) -> str:
        lease = await store.claim_lease(workspace, "launch:churn", owner, 30)
        if lease.owner == owner:
            assert await store.release_lease(workspace, "launch:churn", owner)
        return lease.owner

    for round_ in range(100):
        names = [f"{n} of round {round_}" for n in range(6)]
        owners = await asyncio.gather(
            *[claim_and_release(first if n % 2 else second, name) for n, name in enumerate(names)]
        )
        assert set(owners) <= set(names), owners


async def test_leases_belong_to_a_workspace_and_refuse_bad_values(two_processes):
    first, _ = two_processes
    one, two = (await first.ensure_workspace("one")).id, (await first.ensure_workspace("two")).id
    assert (await first.claim_lease(one, "launch:k", "A", 30)).owner == "A"
    assert (await first.claim_lease(two, "launch:k", "B", 30)).owner == "B"
    for key, owner, seconds in (("", "A", 30), ("k", "", 30), ("k", "A", 0), ("k" * 201, "A", 30)):
        with pytest.raises(InvalidArgument, match="Fix:"):
            await first.claim_lease(one, key, owner, seconds)
    with pytest.raises(InvalidArgument, match="create it with ensure_workspace"):
        await first.claim_lease(999, "launch:k", "A", 30)

"""Property tests: random ops and arguments thrown at dispatch never crash it and always answer one clear line."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fi_facebook import REGISTRY
from testkit import SANDBOX_START, sandbox_clock

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
op_names = st.one_of(st.sampled_from(REGISTRY.names() + ["help", "confirm"]), st.text(max_size=20))


def _field_names() -> list[str]:
    names = set()
    for spec in REGISTRY.specs():
        names |= set(spec.args_model.model_fields)
    return sorted(names | {"dry_run", "confirm", "args", "op"})


args_strategy = st.one_of(
    st.none(),
    st.text(max_size=60),
    json_values,
    st.dictionaries(st.sampled_from(_field_names()), json_values, max_size=5),
)


@pytest.fixture(scope="module")
def live_dispatch():
    """One event loop, one sandbox and one Facebook session for all examples (hypothesis calls the test many times)."""
    from admonster_store import Store
    from fb_sandbox.server import SandboxServer
    from fb_utils import GraphClient
    from fi_facebook import Facebook

    loop = asyncio.new_event_loop()

    async def setup():
        server = SandboxServer(db_path=":memory:", seed=True, clock_start=SANDBOX_START.timestamp())
        await server.start()
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.post(f"{server.url}/__sandbox/tokens") as resp:
                grant = await resp.json()
        store = await Store.open(":memory:")
        workspace = await store.ensure_workspace("props")
        graph = GraphClient(grant["access_token"], app_secret=grant["app_secret"], base_url=server.url, max_retries=0)
        accounts = await graph.get("me/adaccounts", {"fields": "id"})
        await store.set_selection(workspace.id, "ad_account", accounts["data"][0]["id"])
        # Confirm nothing, so random spend calls stop at the gate instead of changing the demo at random.
        return server, store, graph, Facebook(store, graph, workspace, clock=sandbox_clock(server)), grant

    server, store, graph, facebook, grant = loop.run_until_complete(setup())
    facebook.test_secrets = (grant["access_token"], grant["app_secret"])
    yield loop, facebook
    loop.run_until_complete(graph.close())
    loop.run_until_complete(store.close())
    loop.run_until_complete(server.stop())
    loop.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(op=op_names, args=args_strategy)
def test_dispatch_never_crashes(live_dispatch, op, args):
    loop, facebook = live_dispatch
    result = loop.run_until_complete(facebook.call(op, args))
    assert isinstance(result.text, str) and result.text
    assert "Traceback" not in result.text
    assert "Internal error" not in result.text, result.text
    shown = result.text + json.dumps(result.data, default=str)
    assert not any(secret in shown for secret in facebook.test_secrets), "a token or app secret leaked into a result"
    if not result.ok:
        first_line = result.text.splitlines()[0] if not result.text.startswith("DRY RUN") else ""
        if first_line:
            assert first_line.startswith("ERROR ") and "Fix:" in first_line, result.text


async def _state(facebook, url: str) -> tuple[int, str]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/__sandbox/objects?type=campaign") as resp:
            objects = (await resp.json())["data"]
    audit = await facebook.store.list_audit(facebook.workspace.id, limit=200)
    return len(audit), repr(sorted((o["id"], o.get("status"), o.get("daily_budget"), o.get("name")) for o in objects))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    op=st.sampled_from([s.name for s in REGISTRY.specs() if s.kind.value != "read"]),
    args=st.dictionaries(st.sampled_from(_field_names()), json_values, max_size=5),
)
def test_random_writes_with_dry_run_change_nothing(live_dispatch, op, args):
    loop, facebook = live_dispatch
    before = loop.run_until_complete(_state(facebook, facebook.graph.base_url))
    result = loop.run_until_complete(facebook.call(op, {**args, "dry_run": True}))
    assert "Internal error" not in result.text, result.text
    assert loop.run_until_complete(_state(facebook, facebook.graph.base_url)) == before

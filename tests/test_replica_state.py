"""State that must survive a load balancer (issue 21 item 3; docs/replicas-state.md): what one replica hands out or
holds, another replica on the same database serves or respects. Each "replica" here is its own Store connection (and
its own Graph client where Facebook is called) on one database: a SQLite file or a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest
from cryptography.fernet import Fernet

from admonster_files import FileShelf
from admonster_store import Store
from fb_utils import GraphClient, ValidationError
from fi_facebook import AppCredentials, Connector, Facebook, bind_signin
from testkit import sandbox_clock


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_stores(request, tmp_path):
    target = tmp_path / "admonster.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    key = Fernet.generate_key()
    stores = [await Store.open(target, secret_key=key) for _ in range(2)]
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


# -- offered files: the index is in the database, the files on the shared home ----------------------------------


async def test_a_file_offered_by_one_replica_is_served_by_another(two_stores, tmp_path):
    workspace = (await two_stores[0].ensure_workspace("w")).id
    other = (await two_stores[0].ensure_workspace("other")).id
    now = [1_800_000_000.0]
    first, second = (FileShelf(store=store, ttl=60, clock=lambda: now[0]) for store in two_stores)
    folder = tmp_path / "home" / "files" / str(workspace)
    (folder / "charts").mkdir(parents=True)
    (folder / "charts" / "spend é.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "run.sh").write_text("echo hi")

    url = await first.offer(workspace, "charts/spend é.png", folder)
    assert url.startswith("/v1/files/") and url.endswith("/spend%20%C3%A9.png")
    file_id = url.split("/")[3]
    found = await second.find(workspace, file_id, "spend é.png", folder)  # the other replica, same shared folder
    assert found is not None and found.path == folder / "charts" / "spend é.png" and found.content_type == "image/png"
    assert await second.find(workspace, file_id, "spend%20%C3%A9.png", folder) is not None  # the URL's form too
    assert [(listed_id, entry.name) for listed_id, entry in await second.shelved(workspace, folder)] == [
        (file_id, "spend é.png")
    ]
    # Never another workspace's, never under another name, never a kind not offered, never outside the folder.
    assert (
        await second.find(other, file_id, "spend é.png", folder) is None and await second.shelved(other, folder) == []
    )
    assert await second.find(workspace, file_id, "other.png", folder) is None
    assert await first.urls(workspace, ["run.sh", "../outside.png"], folder) == [None, None]
    # A file changed since it was offered is not served; an expired offer is gone on every replica.
    (folder / "charts" / "spend é.png").write_bytes(b"\x89PNG\r\n\x1a\nchanged")
    assert await second.find(workspace, file_id, "spend é.png", folder) is None
    again = (await first.offer(workspace, "charts/spend é.png", folder)).split("/")[3]
    assert await second.find(workspace, again, "spend é.png", folder) is not None
    now[0] += 61
    assert (
        await second.find(workspace, again, "spend é.png", folder) is None
        and await first.shelved(workspace, folder) == []
    )


async def test_the_database_keeps_each_workspaces_newest_offers(two_stores, tmp_path):
    store = two_stores[0]
    workspace = (await store.ensure_workspace("w")).id
    now = [1_800_000_000.0]
    shelf = FileShelf(store=store, limit=2, clock=lambda: now[0])
    (tmp_path / "a.csv").write_text("a,b\n")
    ids = []
    for _ in range(4):
        ids.append((await shelf.offer(workspace, "a.csv", tmp_path)).split("/")[3])
        now[0] += 1
    assert [file_id for file_id, _ in await shelf.shelved(workspace, tmp_path)] == ids[:1:-1]  # the 2 newest
    assert await FileShelf(store=two_stores[1]).find(workspace, ids[0], "a.csv", tmp_path) is None


# -- OAuth state: made by one replica, consumed by another, once ------------------------------------------------


async def test_a_signin_started_on_one_replica_completes_on_another_once(two_stores):
    app = AppCredentials("1234", "app-secret", "https://graph.example", "https://dialog.example/oauth", "v25.0")
    first, second = (Connector(store, app, b"one state secret for every replica") for store in two_stores)
    workspace = (await two_stores[0].ensure_workspace("w")).id
    bind_signin("browser secret")
    url, _ = await first.dialog_url(workspace, "https://admonster.example/callback")
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["state"][0]
    # The person declines on Facebook: the callback reaches the other replica, which accepts the state and uses it up
    # (no Graph call is needed to see that); the same link is then used up on every replica.
    with pytest.raises(ValidationError, match="you chose not to connect"):
        await second.complete(
            state=state,
            code=None,
            error="access_denied",
            error_description=None,
            redirect_uri="https://admonster.example/callback",
            binding_secret="browser secret",
        )
    for replica in (first, second):
        with pytest.raises(ValidationError, match="already used"):
            await replica.complete(
                state=state,
                code=None,
                error="access_denied",
                error_description=None,
                redirect_uri="https://admonster.example/callback",
                binding_secret="browser secret",
            )
    # The state is signed: every replica needs the same ADMONSTER_STATE_SECRET (or secret key) to read it.
    assert await first.state_workspace(state) == workspace
    assert (
        await Connector(two_stores[1], app, b"a replica configured with another secret").state_workspace(state) is None
    )


# -- single flight: the launch lease is in the database ---------------------------------------------------------


async def test_two_replicas_launching_the_same_campaign_at_once_build_it_once(
    sandbox, demo_token, demo_accounts, postgres_url, tmp_path
):
    from test_fb_ads_launch import KINDS, _live, launch_args

    key = Fernet.generate_key()
    replicas = []
    for _ in range(2):
        store = await Store.open(postgres_url, secret_key=key)
        graph = GraphClient(demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url)
        workspace = await store.ensure_workspace("team")  # the same workspace, served by two replicas
        await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
        replicas.append(Facebook(store, graph, workspace, clock=sandbox_clock(sandbox), files_home=tmp_path / "home"))
    try:
        args = launch_args(tmp_path, "Replicas")
        await sandbox.control("POST", "stats/reset")
        answers = await asyncio.gather(*(facebook.call("launch_campaign", dict(args)) for facebook in replicas))
        assert all(answer.ok for answer in answers), [answer.text for answer in answers]
        assert answers[0].data["campaign_id"] == answers[1].data["campaign_id"]
        assert {type_: len(await _live(sandbox, type_, "Replicas")) for type_, _ in KINDS} == {
            "campaign": 1,
            "adset": 1,
            "adcreative": 1,
            "ad": 1,
        }
        routes = (await sandbox.stats())["by_route"]
        assert routes.get("POST act_x/campaigns", 0) == 1 and routes.get("POST act_x/ads", 0) == 1  # none sent twice
        assert len(await replicas[1].store.list_launches(replicas[1].workspace.id)) == 1
    finally:
        for facebook in replicas:
            await facebook.graph.close()
            await facebook.store.close()


# -- selections: a page and its Instagram account are written together ------------------------------------------


async def test_a_page_and_its_instagram_account_are_read_together_or_not_at_all(two_stores):
    """select_page stores the page and its Instagram account in one transaction: over many concurrent reads on the
    other replica, none sees one page with another page's Instagram account (a launch would be keyed on that mix)."""
    workspace = (await two_stores[0].ensure_workspace("w")).id
    pairs = [
        {"page": "400000000000001", "instagram_account": "17841400000000001"},
        {"page": "400000000000002", "instagram_account": "17841400000000002"},
    ]
    consistent = {(None, None)} | {(p["page"], p["instagram_account"]) for p in pairs}
    seen: list[tuple] = []
    reading = True

    async def select_back_and_forth() -> None:
        round_ = 0
        while reading:  # until the reader has seen enough, so the two always overlap
            await two_stores[0].set_selections(workspace, pairs[round_ % 2])
            round_ += 1

    async def read_meanwhile() -> None:
        nonlocal reading
        while len(seen) < 150 or not consistent - {(None, None)} <= set(seen):  # both pairs seen, 150 reads at least
            chosen = await two_stores[1].all_selections(workspace)
            seen.append((chosen["page"], chosen["instagram_account"]))
            assert len(seen) < 5000, "the reader never saw both pairs"
            await asyncio.sleep(0)
        reading = False

    await asyncio.gather(select_back_and_forth(), read_meanwhile())
    assert set(seen) <= consistent, set(seen) - consistent


# -- MCP sessions live in one replica's memory: another answers 404 and the client starts a new session there ------


async def test_an_mcp_session_id_unknown_to_a_replica_is_answered_404_and_a_new_session_works(postgres_url, tmp_path):
    import aiohttp

    from test_admonster_mcp import _initialize, _ping, _rpc
    from testkit import running_server

    secret = Fernet.generate_key().decode()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        running_server(tmp_path / "a", database_url=postgres_url, secret_key=secret) as (first_url, first_runtime),
        running_server(tmp_path / "b", database_url=postgres_url, secret_key=secret) as (second_url, _),
    ):
        workspace = await first_runtime.store.ensure_workspace("acme")
        key = await first_runtime.store.create_api_key(workspace.id)  # one key, valid on every replica
        async with aiohttp.ClientSession() as http:
            status, session_id = await _initialize(http, first_url, key)
            assert status == 200 and session_id and (await _ping(http, first_url, key, session_id))[0] == 200
            status, answer = await _ping(http, second_url, key, session_id)  # the balancer sent it to the other replica
            assert status == 404 and answer["text"].startswith("ERROR not_found: No MCP session")
            assert "Fix: Start a new session: send initialize without Mcp-Session-Id" in answer["text"]
            status, fresh = await _initialize(http, second_url, key)  # what the spec tells the client to do on 404
            assert status == 200 and fresh and fresh != session_id
            status, tools = await _rpc(http, second_url, key, fresh, "tools/list")
            assert status == 200 and tools["result"]["tools"]
            assert (await _ping(http, first_url, key, session_id))[0] == 200  # the first replica still holds its own

"""fb_utils pagination, multi-id reads and Graph batch against the real sandbox (seeded with 250 campaigns)."""

from __future__ import annotations

import pytest

from fb_utils import (
    BatchItem,
    GraphClient,
    ValidationError,
    batch_item_json,
    plan_batch_chunks,
)

PAGED_FILTER = [{"field": "name", "operator": "CONTAIN", "value": "Paged"}]


@pytest.fixture
async def client(sandbox, demo_token):
    graph = GraphClient(demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url)
    yield graph
    await graph.close()


@pytest.fixture
async def account_id(client) -> str:
    accounts = await client.get_all("me/adaccounts", {"fields": "id,currency"})
    return next(a["id"] for a in accounts if a["currency"] == "USD")


@pytest.fixture
async def seeded(sandbox, account_id) -> list[str]:
    """250 campaigns named "Paged 0001"…; stats reset so each test counts only its own requests."""
    ids = (await sandbox.control("POST", "seed", {"campaigns": 250, "account_id": account_id, "name_prefix": "Paged"}))[
        "ids"
    ]
    await sandbox.control("POST", "stats/reset")
    return ids


async def requests_on(sandbox, route: str) -> int:
    return (await sandbox.stats())["by_route"].get(route, 0)


async def names_by_id(sandbox) -> dict[str, str]:
    return {row["id"]: row["name"] for row in (await sandbox.control("GET", "objects?type=campaign"))["data"]}


# Pagination ---------------------------------------------------------------------------------------------------------


async def test_get_all_follows_paging_to_the_end(sandbox, client, account_id, seeded):
    campaigns = await client.get_all(f"{account_id}/campaigns", {"fields": "id,name", "filtering": PAGED_FILTER})
    assert sorted(c["id"] for c in campaigns) == sorted(seeded)
    assert len({c["id"] for c in campaigns}) == 250
    assert await requests_on(sandbox, "GET act_x/campaigns") == 3  # pages of 100, 100, 50


async def test_get_all_stops_at_the_limit(sandbox, client, account_id, seeded):
    campaigns = await client.get_all(f"{account_id}/campaigns", {"fields": "id", "filtering": PAGED_FILTER}, limit=120)
    assert len(campaigns) == 120 and set(c["id"] for c in campaigns) <= set(seeded)
    assert await requests_on(sandbox, "GET act_x/campaigns") == 2


async def test_iter_pages_keeps_the_callers_page_size(sandbox, client, account_id, seeded):
    sizes = [
        len(page)
        async for page in client.iter_pages(
            f"{account_id}/campaigns", {"fields": "id", "filtering": PAGED_FILTER, "limit": 40}
        )
    ]
    assert sizes == [40] * 6 + [10]
    assert await requests_on(sandbox, "GET act_x/campaigns") == 7


def test_a_next_url_keeps_our_base_host_and_our_credentials(sandbox, client):
    url, query = client._url_and_query(
        "https://graph.facebook.com/v26.0/act_1/campaigns?limit=25&after=QVFI&access_token=THEIRS", None
    )
    assert url == f"{sandbox.url}/v26.0/act_1/campaigns"
    assert query["after"] == "QVFI" and query["limit"] == "25"
    assert query["access_token"] != "THEIRS" and "appsecret_proof" in query


async def test_get_many_reads_by_id_in_synchronous_batches_of_50(sandbox, client, seeded):
    await sandbox.control("POST", "stats/reset")
    found = await client.get_many(seeded[:120] + ["424242424242"], ["id", "name"])
    assert set(found) == set(seeded[:120])  # an id that does not exist is left out
    assert found[seeded[0]]["name"] == "Paged 0001"
    stats = await sandbox.stats()
    assert stats["by_route"].get("POST /") == 3 and "GET /" not in stats["by_route"]  # never a multi-id GET
    assert stats["forbidden"] == {}


# Batch ----------------------------------------------------------------------------------------------------------------


async def test_a_batch_of_120_updates_takes_3_requests(sandbox, client, account_id, seeded):
    items = [BatchItem("POST", campaign_id, {"name": f"Renamed {n:03d}"}) for n, campaign_id in enumerate(seeded[:120])]
    results = await client.batch(items)
    assert [r.index for r in results] == list(range(120))
    assert all(r.ok and r.status == 200 and r.body == {"success": True} for r in results)
    assert await requests_on(sandbox, "POST /") == 3
    names = await names_by_id(sandbox)
    assert [names[cid] for cid in seeded[:120]] == [f"Renamed {n:03d}" for n in range(120)]
    assert "X-Ad-Account-Usage" in results[0].headers
    assert client.usage[account_id].ad_account_pct > 0  # the items' usage headers fed the limiter


async def test_depends_on_and_result_references(sandbox, client, account_id):
    items = [
        BatchItem(
            "POST",
            f"{account_id}/campaigns",
            {
                "name": "From Batch",
                "objective": "OUTCOME_TRAFFIC",
                "status": "PAUSED",
                "special_ad_categories": [],
                "is_adset_budget_sharing_enabled": False,
            },
            name="create",
        ),
        BatchItem("GET", "{result=create:$.id}", {"fields": "id,name,status"}, name="read", depends_on="create"),
        BatchItem("POST", "{result=read:$.id}", {"name": "From Batch, renamed"}, depends_on="read"),
    ]
    created, read, renamed = await client.batch(items)
    assert created.ok and read.ok and renamed.ok
    assert read.body == {"id": created.body["id"], "name": "From Batch", "status": "PAUSED"}
    assert (await names_by_id(sandbox))[created.body["id"]] == "From Batch, renamed"


async def test_items_answered_null_are_requeued(sandbox, client, seeded):
    await sandbox.fault(kind="batch_null", count=2, method="POST", path=r"^\d+$")
    results = await client.batch([BatchItem("POST", cid, {"status": "ACTIVE"}) for cid in seeded[:5]])
    assert all(r.ok for r in results)
    assert await requests_on(sandbox, "POST /") == 2
    assert await requests_on(sandbox, "POST {id}") == 0


async def test_an_item_facebook_never_runs_fails_alone(sandbox, client, seeded):
    await sandbox.fault(kind="batch_null", count=10, method="POST", path=f"^{seeded[1]}$")
    results = await client.batch([BatchItem("POST", cid, {"status": "ACTIVE"}) for cid in seeded[:3]])
    assert [r.ok for r in results] == [True, False, True]
    assert "not run by Facebook" in results[1].error.message
    assert results[1].error.fix == "Run it again; the other items were applied"
    assert await requests_on(sandbox, "POST /") == 4  # the first call plus three re-queues


async def test_a_requeued_child_gets_its_parents_result(sandbox, client, account_id):
    await sandbox.fault(kind="batch_null", count=1, method="GET", path=r"^\d+$")
    items = [
        BatchItem(
            "POST",
            f"{account_id}/campaigns",
            {
                "name": "Parent",
                "objective": "OUTCOME_TRAFFIC",
                "status": "PAUSED",
                "special_ad_categories": [],
                "is_adset_budget_sharing_enabled": False,
            },
            name="parent",
        ),
        BatchItem("GET", "{result=parent:$.id}", {"fields": "id,name"}, depends_on="parent"),
    ]
    parent, child = await client.batch(items)
    assert parent.ok and child.ok and child.body["id"] == parent.body["id"]
    assert len([n for n in (await names_by_id(sandbox)).values() if n == "Parent"]) == 1  # the create ran once


async def test_item_errors_are_parsed_per_item(client, seeded):
    results = await client.batch([BatchItem("POST", seeded[0], {"status": "BOGUS"}), BatchItem("GET", "999999999999")])
    assert results[0].error.code == 100 and results[0].error.kind == "facebook"
    assert results[1].error.kind == "not_found"
    assert not results[0].ok and results[0].status == 400


def test_chunks_keep_dependency_chains_together():
    items = [BatchItem("GET", str(n)) for n in range(48)]
    items += [
        BatchItem("POST", "act_1/campaigns", {"name": "c"}, name="c"),
        BatchItem("GET", "{result=c:$.id}", name="r", depends_on="c"),
        BatchItem("POST", "{result=r:$.id}", {"name": "x"}),
    ]
    chunks = plan_batch_chunks(items)
    assert [len(c) for c in chunks] == [48, 3]
    assert chunks[1] == [48, 49, 50]


def test_batch_items_are_checked_before_sending():
    with pytest.raises(ValidationError):
        plan_batch_chunks([BatchItem("GET", str(n), name="a", depends_on="a" if n else None) for n in range(51)])
    from fb_utils import check_batch_items

    with pytest.raises(ValidationError) as caught:
        check_batch_items([BatchItem("GET", "1", depends_on="missing")])
    assert caught.value.blame_field == "depends_on"


def test_batch_item_wire_format():
    post = batch_item_json(
        BatchItem("POST", "/act_1/campaigns", {"name": "A b", "special_ad_categories": []}, name="c")
    )
    assert post == {
        "method": "POST",
        "relative_url": "act_1/campaigns",
        "body": "name=A%20b&special_ad_categories=%5B%5D",
        "name": "c",
        "omit_response_on_success": False,
    }
    get = batch_item_json(BatchItem("GET", "1?fields=id", {"limit": 5}, depends_on="c"))
    assert get == {"method": "GET", "relative_url": "1?fields=id&limit=5", "depends_on": "c"}


async def test_a_batch_of_updates_is_retried_like_a_read(sandbox, demo_token, seeded):
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    async with GraphClient(
        demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url, sleep=record
    ) as graph:
        await sandbox.fault(kind="http_500", count=1, method="POST", path="^$")
        results = await graph.batch([BatchItem("POST", cid, {"status": "ACTIVE"}) for cid in seeded[:3]])
    assert all(r.ok for r in results)
    assert await requests_on(sandbox, "POST /") == 2 and len(recorded) == 1


async def test_a_lost_batch_holding_a_create_is_not_resent(sandbox, client, account_id):
    await sandbox.fault(kind="drop", count=1, method="POST", path="^$", when="after")
    item = BatchItem(
        "POST",
        f"{account_id}/campaigns",
        {
            "name": "Batch Create",
            "objective": "OUTCOME_TRAFFIC",
            "status": "PAUSED",
            "special_ad_categories": [],
            "is_adset_budget_sharing_enabled": False,
        },
    )
    (result,) = await client.batch([item])
    assert result.error.kind == "network" and "may or may not have been applied" in result.error.message
    assert await requests_on(sandbox, "POST /") == 1
    assert len([n for n in (await names_by_id(sandbox)).values() if n == "Batch Create"]) == 1

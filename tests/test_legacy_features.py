"""Issue 17: no legacy Graph features, the versions served, and the record of forbidden requests.

Legacy features (Graph API v27.0 blog, 2026-11-04; fb_sandbox/legacy.py): refused to apps created after the cutoff with
code 12 (unverified), still answered for an "old" app. Versions (fb_sandbox/versions.py, fb_utils.API_VERSIONS): an
expired version answers 2635, an unknown one 2500, and the client warns 90 days before its version ends.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest

from fb_sandbox.legacy import LEGACY, LEGACY_CUTOFF
from fb_sandbox.server import SandboxServer
from fb_sandbox.versions import NEWEST, VERSIONS
from fb_utils import API_VERSIONS, DEFAULT_API_VERSION, GraphClient, api_version_warning
from test_fb_sandbox_helpers import USD, Graph, graph, make_old_app  # noqa: F401 - graph is a fixture


async def some_campaigns(graph: Graph, n: int = 2) -> list[str]:
    return [c["id"] for c in (await graph.get(f"{USD}/campaigns", limit=str(n))).body["data"]]


async def forbidden_counts(sandbox, app_id: str) -> dict:
    return (await sandbox.stats())["forbidden"].get(app_id, {})


async def legacy_calls(graph: Graph) -> dict[str, object]:
    """One request per legacy feature; the answers by feature name."""
    first, second = await some_campaigns(graph)
    return {
        "multi_id": await graph.get("", ids=f"{first},{second}", fields="name"),
        "method_override": await graph.post(f"{USD}/campaigns", {"method": "GET", "fields": "id,name", "limit": "2"}),
        "field_alias": await graph.get(first, fields="id,name.as(title)"),
        "date_format": await graph.get(first, fields="id,created_time", date_format="U"),
        "jsonp": await graph.get("me", fields="id,name", callback="handle"),
        "async_batch": await graph.post(
            f"{USD}/async_batch_requests",
            {
                "name": "rename",
                "adbatch": json.dumps([{"name": "r1", "relative_url": first, "body": "name=Renamed+async"}]),
            },
        ),
    }


# ---- refused to a new app, answered to an old one ---------------------------------------------------------------


@pytest.mark.sends_forbidden
async def test_a_new_app_is_refused_every_legacy_feature(sandbox, graph, demo_token):
    info = await sandbox.control("GET", "app")
    assert (
        datetime.strptime(info["created_time"], "%Y-%m-%dT%H:%M:%S%z").timestamp() >= LEGACY_CUTOFF
    )  # the demo app is new
    answers = await legacy_calls(graph)
    assert set(answers) == set(LEGACY)
    for feature, answer in answers.items():
        assert answer.status == 400, (feature, answer.body)
        assert answer.error["code"] == 12 and answer.error["type"] == "OAuthException", feature
        assert LEGACY[feature] in answer.error["message"] and "November 4, 2026" in answer.error["message"]
    assert await forbidden_counts(sandbox, demo_token["app_id"]) == {feature: 1 for feature in LEGACY}
    names = {c["name"] for c in (await graph.get(f"{USD}/campaigns", limit="100", fields="name")).body["data"]}
    assert "Renamed async" not in names  # the refused async batch ran nothing


@pytest.mark.sends_forbidden
async def test_an_old_app_still_gets_every_legacy_feature(sandbox, graph, demo_token):
    await make_old_app(sandbox)
    first, second = await some_campaigns(graph)
    name_before = (await graph.get(first, fields="name")).body["name"]
    answers = await legacy_calls(graph)
    assert all(a.status == 200 for a in answers.values()), {f: a.body for f, a in answers.items() if a.status != 200}
    assert set(answers["multi_id"].body) == {first, second}
    assert len(answers["method_override"].body["data"]) == 2
    aliased = answers["field_alias"].body
    assert set(aliased) == {"id", "title"} and aliased["title"] == name_before
    created = (await graph.get(first, fields="created_time")).body["created_time"]
    assert answers["date_format"].body["created_time"] == int(
        datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    )
    jsonp = answers["jsonp"]
    assert jsonp.headers["Content-Type"].startswith("text/javascript")
    assert (
        jsonp.body.startswith("/**/ handle(")
        and json.loads(jsonp.body[len("/**/ handle(") : -2])["name"] == "Demo User"
    )
    assert (await graph.get("me", callback="alert(1)//")).error["code"] == 100  # a callback name, nothing else
    set_id = answers["async_batch"].body["id"]
    request_set = (await graph.get(set_id, fields="name,is_completed,total_count,success_count,error_count")).body
    assert request_set == {
        "id": set_id,
        "name": "rename",
        "is_completed": True,
        "total_count": 1,
        "success_count": 1,
        "error_count": 0,
    }
    assert (await graph.get(first, fields="name")).body["name"] == "Renamed async"
    assert await forbidden_counts(sandbox, demo_token["app_id"]) == {
        **{f: 1 for f in LEGACY},
        "jsonp": 2,
    }  # still recorded


@pytest.mark.sends_forbidden
async def test_the_cutoff_is_the_apps_creation_date_and_each_app_has_its_own(sandbox, graph):
    campaign = (await some_campaigns(graph, 1))[0]
    before = datetime.fromtimestamp(LEGACY_CUTOFF - 1, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    at = datetime.fromtimestamp(LEGACY_CUTOFF, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    await sandbox.control("POST", "apps", {"app": "main", "created_time": before})
    assert (await graph.get(campaign, fields="name.as(title)")).status == 200
    await sandbox.control("POST", "apps", {"app": "main", "created_time": at})
    assert (await graph.get(campaign, fields="name.as(title)")).error["code"] == 12
    # The other sandbox app stays new when the main one is made old.
    await make_old_app(sandbox, "main")
    other = Graph(sandbox.url, await sandbox.token(app="other"))
    assert (await other.get(campaign, fields="name.as(title)")).error["code"] == 12
    async with aiohttp.ClientSession() as session:
        for body, words in (
            ({"app": "main", "created_time": "yesterday"}, "ISO-8601"),
            ({"app": "nope", "created_time": 0}, "app must be"),
        ):
            async with session.post(f"{sandbox.url}/__sandbox/apps", json=body) as answer:
                assert answer.status == 400 and words in (await answer.json())["error"]["message"]


@pytest.mark.sends_forbidden
async def test_a_legacy_feature_inside_a_synchronous_batch_is_refused_per_item(sandbox, graph):
    first, second = await some_campaigns(graph)
    items = [
        {"method": "GET", "relative_url": f"?ids={first},{second}&fields=name"},
        {"method": "GET", "relative_url": f"{first}?fields=name"},
    ]
    answer = await graph.post("", {"batch": json.dumps(items)})
    assert answer.status == 200
    refused, plain = answer.body
    assert refused["code"] == 400 and json.loads(refused["body"])["error"]["code"] == 12
    assert plain["code"] == 200 and json.loads(plain["body"])["id"] == first  # synchronous batch stays allowed


# ---- the record of forbidden content --------------------------------------------------------------------------


@pytest.mark.sends_forbidden
async def test_standard_enhancements_and_explore_are_recorded_wherever_they_appear(sandbox, graph, demo_token):
    spec = {"creative_features_spec": {"standard_enhancements": {"enroll_status": "OPT_OUT"}}}
    await graph.post(f"{USD}/adcreatives", {"name": "x", "degrees_of_freedom_spec": json.dumps(spec)})
    targeting = {
        "geo_locations": {"countries": ["US"]},
        "publisher_platforms": ["instagram"],
        "instagram_positions": ["stream", "explore"],
    }
    await graph.post(f"{USD}/adsets", {"name": "x", "targeting": json.dumps(targeting)})
    item = {
        "method": "POST",
        "relative_url": f"{USD}/adcreatives",
        "body": "degrees_of_freedom_spec=" + json.dumps(spec),
    }
    await graph.post("", {"batch": json.dumps([item])})  # a batch item is looked at once, as the item
    # Not forbidden: the word elsewhere, explore_home, standard_enhancements outside a degrees_of_freedom_spec.
    await graph.post(
        f"{USD}/adsets",
        {"name": "explore", "targeting": json.dumps({**targeting, "instagram_positions": ["explore_home"]})},
    )
    await graph.post(f"{USD}/adcreatives", {"name": "standard_enhancements"})
    assert await forbidden_counts(sandbox, demo_token["app_id"]) == {"standard_enhancements": 2, "instagram_explore": 1}


async def test_the_clients_long_get_and_many_id_reads_use_no_legacy_feature(sandbox, demo_token):
    ids = (await sandbox.control("POST", "seed", {"campaigns": 300, "account_id": USD, "name_prefix": "Long"}))["ids"]
    await sandbox.control("POST", "stats/reset")
    async with GraphClient(
        demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url
    ) as client:
        params = {
            "fields": "id,name",
            "limit": 1000,
            "filtering": json.dumps([{"field": "id", "operator": "IN", "value": ids}]),
        }
        assert len(params["filtering"]) > 6000  # longer than a request line may safely be
        found = await client.get_all(f"{USD}/campaigns", params)
        many = await client.get_many(ids[:60], "name")
    assert sorted(c["id"] for c in found) == sorted(ids)
    assert set(many) == set(ids[:60])
    stats = await sandbox.stats()
    assert stats["forbidden"] == {}
    assert stats["by_route"] == {"POST /": 3}  # the long GET (one batch) and 60 ids (two batches of 50)


# ---- versions ----------------------------------------------------------------------------------------------------


def test_the_version_tables_agree_and_default_to_the_newest():
    assert DEFAULT_API_VERSION == NEWEST == max(API_VERSIONS, key=lambda v: float(v[1:]))
    assert {v: (str(r), str(e) if e else None) for v, (r, e) in API_VERSIONS.items()} == VERSIONS
    assert API_VERSIONS["v25.0"][1] == date(2027, 2, 23) and API_VERSIONS["v24.0"][1] == date(2026, 11, 10)


@pytest.fixture
async def december_sandbox():
    """A sandbox whose clock starts on 2026-12-06 12:00 UTC (the tests' usual sandbox starts in March 2026)."""
    server = SandboxServer(db_path=":memory:", seed=True, clock_start=datetime(2026, 12, 6, 12, tzinfo=UTC).timestamp())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_the_sandbox_serves_versions_by_its_clock(december_sandbox):
    from conftest import SandboxHandle

    sandbox = SandboxHandle(december_sandbox)
    g = Graph(sandbox.url, await sandbox.token())
    for version in ("v25.0", "v26.0", "v27.0"):
        answer = await g.call("GET", "me", version=version)
        assert answer.status == 200 and answer.headers["facebook-api-version"] == version
    unversioned = await g.call("GET", "me", version="")
    assert unversioned.status == 200 and unversioned.headers["facebook-api-version"] == NEWEST
    expired = await g.call("GET", "me", version="v24.0")  # ended 2026-11-10
    assert expired.error["code"] == 2635
    assert expired.error["message"] == (
        f"(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: {NEWEST}."
    )
    unknown = await g.call("GET", "me", version="v28.0")
    assert unknown.error["code"] == 2500 and unknown.error["message"] == "Unknown path components: /v28.0/me"
    end_of_v25 = datetime(2027, 2, 23, tzinfo=UTC).timestamp()
    await sandbox.control("POST", "clock", {"set": end_of_v25 - 60})
    g = Graph(sandbox.url, await sandbox.token(expires_in=0))  # the first token expired meanwhile
    assert (await g.call("GET", "me", version="v25.0")).status == 200
    await sandbox.control("POST", "clock", {"set": end_of_v25})
    assert (await g.call("GET", "me", version="v25.0")).error["code"] == 2635


def test_the_end_of_life_warning_is_one_line_from_90_days_before():
    end = API_VERSIONS["v25.0"][1]
    fix = f"set ADMONSTER_API_VERSION={DEFAULT_API_VERSION}"
    assert api_version_warning("v25.0", date(2026, 12, 6)) == f"Graph API v25.0 ends on 23 Feb 2027 (in 79 days): {fix}"
    assert api_version_warning("v25.0", end - timedelta(days=91)) is None
    assert api_version_warning("v25.0", end - timedelta(days=90)) is not None
    assert (
        api_version_warning("v25.0", end - timedelta(days=1))
        == f"Graph API v25.0 ends on 23 Feb 2027 (in 1 day): {fix}"
    )
    assert api_version_warning("v24.0", date(2026, 12, 6)) == f"Graph API v24.0 ended on 10 Nov 2026: {fix}"
    assert api_version_warning(DEFAULT_API_VERSION, date(2026, 12, 6)) is None  # no end date yet (TBD)


async def test_status_and_token_check_warn_on_the_session_clock(december_sandbox, store):
    from conftest import SandboxHandle
    from fi_facebook import AppCredentials, Connector, Facebook
    from testkit import sandbox_clock

    sandbox = SandboxHandle(december_sandbox)
    token = await sandbox.token()
    async with GraphClient(
        token["access_token"], app_secret=token["app_secret"], base_url=sandbox.url, api_version="v25.0"
    ) as client:
        accounts = await client.get_all("me/adaccounts", {"fields": "id,currency"})
        workspace = await store.ensure_workspace("old-version")
        usd = next(a["id"] for a in accounts if a["currency"] == "USD")
        await store.set_selection(workspace.id, "ad_account", usd)
        app = AppCredentials(
            token["app_id"], token["app_secret"], sandbox.url, f"{sandbox.url}/v25.0/dialog/oauth", "v25.0"
        )
        connector = Connector(store, app, b"s" * 32)
        await connector.store_checked_token(workspace.id, token["access_token"], kind="sandbox")
        facebook = Facebook(store, client, workspace, connector=connector, clock=sandbox_clock(sandbox))
        line = f"Graph API v25.0 ends on 23 Feb 2027 (in 79 days): set ADMONSTER_API_VERSION={DEFAULT_API_VERSION}"
        overview = await facebook.call("account_overview")
        assert overview.text.splitlines()[-1] == line and overview.data["api_version_warning"] == line
        checked = await facebook.call("token_status")
        assert checked.text.splitlines()[-1] == line


async def test_startup_says_it_once_when_the_version_ends_soon(tmp_path, capsys, clean_environment):
    from admonster_config import load_settings
    from admonster_runtime import open_runtime

    december = datetime(2026, 12, 6, 12, tzinfo=UTC)
    for version, expected in (
        ("v25.0", "Graph API v25.0 ends on 23 Feb 2027 (in 79 days)"),
        (DEFAULT_API_VERSION, None),
    ):
        settings = load_settings(
            home=tmp_path / version,
            sandbox_db=tmp_path / f"{version}.db",
            sandbox_clock_start=december,
            api_version=version,
        )
        async with open_runtime(settings):
            pass
        lines = [line for line in capsys.readouterr().err.splitlines() if "Graph API" in line]
        assert lines == ([f"{expected}: set ADMONSTER_API_VERSION={DEFAULT_API_VERSION}"] if expected else [])

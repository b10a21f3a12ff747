"""Sandbox: random requests never get a 5xx; the official facebook_business SDK works against it unchanged."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_fb_sandbox_helpers import USD, Graph

PARAM_NAMES = [
    "name",
    "objective",
    "status",
    "special_ad_categories",
    "daily_budget",
    "lifetime_budget",
    "bid_strategy",
    "spend_cap",
    "start_time",
    "stop_time",
    "adlabels",
    "execution_options",
    "fields",
    "limit",
    "after",
    "before",
    "summary",
    "filtering",
    "effective_status",
    "ids",
    "batch",
    "is_adset_budget_sharing_enabled",
    "special_ad_category_country",
    "status_option",
    "rename_options",
    "deep_copy",
    "include_headers",
    "method",
    "spend_cap_action",
    "callback",
    "date_format",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
param_values = st.one_of(
    st.text(max_size=40),
    json_values.map(json.dumps),
    st.sampled_from(
        [
            "ACTIVE",
            "OUTCOME_SALES",
            '["NONE"]',
            "true",
            "-1",
            "99999999999999999999",
            "name,foo{bar}",
            '[{"field":"name","operator":"CONTAIN","value":"a"}]',
            '[{"method":"GET","relative_url":"me"}]',
            "ÿ\u2603",
        ]
    ),
)
params = st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=10), param_values, max_size=6)
segments = st.sampled_from(
    [
        "me",
        USD,
        "act_1",
        "campaigns",
        "adaccounts",
        "copies",
        "users",
        "120210000000000001",
        "",
        "..",
        "%20",
        "v26.0",
        "insights",
        "accounts",
        "ünï",
    ]
) | st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"), max_size=10)
paths = st.lists(segments, max_size=3).map(lambda parts: "/".join(parts))
methods = st.sampled_from(["GET", "POST", "DELETE", "PUT", "HEAD"])
bodies = st.one_of(st.none(), params, json_values, st.binary(max_size=64))


@pytest.mark.sends_forbidden  # random parameters include the legacy ones (ids, method, callback, date_format)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=methods,
    path=paths,
    query=params,
    body=bodies,
    version=st.sampled_from(["v26.0", "v27.0", "v19.0", "v99.1", ""]),
)
async def test_random_requests_never_5xx(sandbox, demo_token, method, path, query, body, version):
    g = Graph(sandbox.url, demo_token)
    url = f"{sandbox.url}/{version}/{path}" if version else f"{sandbox.url}/{path}"
    kwargs: dict = {"params": {**g.auth(), **query}}
    if isinstance(body, dict) and all(isinstance(v, str) for v in body.values()):
        kwargs["data"] = urlencode(body).encode()
        kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    elif isinstance(body, bytes):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, **kwargs) as resp:
            text = await resp.text()
            assert resp.status < 500, (method, url, kwargs, text)
            if method != "HEAD":
                json.loads(text)


async def test_official_sdk_against_sandbox(sandbox, demo_token):
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.campaign import Campaign
    from facebook_business.api import FacebookAdsApi
    from facebook_business.exceptions import FacebookRequestError

    def drive() -> dict:
        api = FacebookAdsApi.init(
            demo_token["app_id"], demo_token["app_secret"], demo_token["access_token"], api_version="v26.0"
        )
        api._session.GRAPH = sandbox.url  # the only change: the base URL
        account = AdAccount(USD).api_get(
            fields=[AdAccount.Field.name, AdAccount.Field.currency, AdAccount.Field.min_daily_budget]
        )
        created = AdAccount(USD).create_campaign(
            params={
                Campaign.Field.name: "From the SDK",
                Campaign.Field.objective: Campaign.Objective.outcome_traffic,
                Campaign.Field.status: Campaign.Status.paused,
                Campaign.Field.special_ad_categories: [],
                Campaign.Field.daily_budget: 1500,
            }
        )
        read = Campaign(created["id"]).api_get(
            fields=[Campaign.Field.name, Campaign.Field.daily_budget, Campaign.Field.effective_status]
        )
        names = [c["name"] for c in AdAccount(USD).get_campaigns(fields=["name"], params={"limit": 2})]
        try:
            AdAccount(USD).create_campaign(
                params={"name": "x", "objective": "OUTCOME_TRAFFIC", "special_ad_categories": [], "daily_budget": 1}
            )
            error = None
        except FacebookRequestError as exc:
            error = exc
        return {"account": account, "created": created, "read": read, "names": names, "error": error}

    out = await asyncio.to_thread(drive)
    assert out["account"]["currency"] == "USD" and out["account"]["name"] == "Demo Store (USD)"
    assert out["read"]["name"] == "From the SDK" and out["read"]["daily_budget"] == "1500"
    assert out["read"]["effective_status"] == "PAUSED"
    assert "From the SDK" in out["names"] and len(out["names"]) > 2  # the SDK followed paging.next
    assert out["error"].api_error_code() == 100 and out["error"].api_error_subcode() == 1885272
    assert out["error"].api_blame_field_specs() == [["daily_budget"]]

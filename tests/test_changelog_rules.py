"""Meta's changelog rules v22-v27 that touch ad sets, campaigns and lookalikes, over real HTTP, by API version.

Each rule is in docs/adset_rules.md ("Changelog rules") with its source and the version it applies from. The sandbox
answers by the version in the request path (vNN.0); the client never sends what Meta removed and tells the person.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from fb_utils import FacebookError, GraphClient
from testkit import sandbox_clock

US = {"geo_locations": {"countries": ["US"]}}
ALL_VERSIONS_2026_10_27 = datetime.fromisoformat("2026-10-27T00:00:00+00:00")


@pytest.fixture
async def versions(sandbox, demo_token):
    """One Graph client per served version (v25.0-v27.0), all of the demo user."""
    clients = {
        v: GraphClient(
            demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url, api_version=f"v{v}.0"
        )
        for v in (25, 26, 27)
    }
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.close()


async def _campaign(graph: GraphClient, account: str, **extra) -> str:
    body = {
        "name": "Changelog",
        "objective": "OUTCOME_TRAFFIC",
        "status": "PAUSED",
        "special_ad_categories": "[]",
        "is_adset_budget_sharing_enabled": "false",
        **extra,
    }
    return (await graph.post(f"{account}/campaigns", body))["id"]


def _adset(campaign_id: str, targeting: dict, **extra) -> dict:
    return {
        "campaign_id": campaign_id,
        "name": "Changelog ad set",
        "optimization_goal": "LINK_CLICKS",
        "billing_event": "IMPRESSIONS",
        "daily_budget": "2000",
        "status": "PAUSED",
        "targeting": json.dumps(targeting),
        **extra,
    }


async def _writes(sandbox) -> int:
    stats = await sandbox.stats()
    return sum(n for route, n in stats["by_route"].items() if route.startswith(("POST", "DELETE")))


async def _sandbox_now(sandbox) -> datetime:
    return await sandbox_clock(sandbox)()


# ---- placements -------------------------------------------------------------------------------------------------


@pytest.mark.sends_forbidden  # sends explore on purpose: refused from v26 on
async def test_instagram_explore_refused_from_v26_only(versions, demo_accounts):
    """v26 blog: Explore "returns errors if specified" (code undocumented: 100/2490392 unverified)."""
    account = demo_accounts["USD"]
    spec = {
        **US,
        "targeting_automation": {"advantage_audience": 0},
        "publisher_platforms": ["instagram"],
        "instagram_positions": ["stream", "explore"],
    }
    campaign = await _campaign(versions[25], account)
    made = await versions[25].post(f"{account}/adsets", _adset(campaign, spec))
    read = await versions[25].get(made["id"], {"fields": "targeting"})
    assert "explore" in read["targeting"]["instagram_positions"]  # v25: still a placement
    for version in (26, 27):
        with pytest.raises(FacebookError) as refused:
            await versions[version].post(f"{account}/adsets", _adset(campaign, spec))
        assert (refused.value.code, refused.value.error_subcode) == (100, 2490392)
        assert "Explore" in str(refused.value)


async def test_messenger_story_dropped_silently(versions, demo_accounts, sandbox):
    """v26 from 2026-07-29, every version from 2026-10-27: story is removed from messenger_positions, no error."""
    account = demo_accounts["USD"]
    spec = {
        **US,
        "targeting_automation": {"advantage_audience": 0},
        "publisher_platforms": ["facebook", "messenger"],
        "messenger_positions": ["messenger_home", "story"],
    }
    campaign = await _campaign(versions[26], account)
    made = await versions[26].post(f"{account}/adsets", _adset(campaign, spec))
    read = await versions[26].get(made["id"], {"fields": "targeting"})
    assert read["targeting"]["messenger_positions"] == ["messenger_home"]
    updated = await versions[27].post(made["id"], {"targeting": json.dumps(spec)})  # on update too
    assert updated.get("success")
    assert (await versions[27].get(made["id"], {"fields": "targeting"}))["targeting"]["messenger_positions"] == [
        "messenger_home"
    ]
    old = await versions[25].post(f"{account}/adsets", _adset(campaign, spec))
    kept = (await versions[25].get(old["id"], {"fields": "targeting"}))["targeting"]["messenger_positions"]
    expected = (
        ["messenger_home"] if await _sandbox_now(sandbox) >= ALL_VERSIONS_2026_10_27 else ["messenger_home", "story"]
    )
    assert kept == expected  # v25 by the sandbox's date


async def test_client_never_sends_removed_placements_and_says_why(facebook, sandbox, graph, demo_accounts):
    campaign = await _campaign(graph, demo_accounts["USD"])
    for position_field, platform, position, words in (
        ("messenger_positions", "messenger", "story", "Messenger Stories is no longer a placement"),
        ("instagram_positions", "instagram", "explore", "Instagram Explore is no longer a placement"),
        ("facebook_positions", "facebook", "video_feeds", "video feeds is no longer a placement"),
    ):
        before = await _writes(sandbox)
        result = await facebook.call(
            "create_adset",
            {
                "campaign_id": campaign,
                "name": "Removed",
                "optimization_goal": "LINK_CLICKS",
                "billing_event": "IMPRESSIONS",
                "daily_budget": 2000,
                "targeting": {
                    **US,
                    "targeting_automation": {"advantage_audience": 0},
                    "publisher_platforms": [platform],
                    position_field: [position],
                },
            },
        )
        assert not result.ok and words in result.text and "Fix:" in result.text, result.text
        assert len(result.text.strip().splitlines()) == 1  # one line with its fix
        assert await _writes(sandbox) == before  # nothing sent
    plans = [
        await facebook.call("recommend_placements", {"creative_type": kind, "objective": objective})
        for kind in ("image", "video", "carousel")
        for objective in ("OUTCOME_AWARENESS", "OUTCOME_SALES")
    ]
    assert all(p.ok for p in plans)
    assert not any(
        "explore" in json.dumps(p.data).replace("explore_home", "") or "video_feeds" in json.dumps(p.data)
        for p in plans
    )


async def test_threads_and_whatsapp_dependencies(versions, demo_accounts, facebook, sandbox):
    """Threads needs instagram + Instagram Feed (Threads App Ads doc); WhatsApp Status needs Instagram Stories."""
    account = demo_accounts["USD"]
    graph = versions[27]
    campaign = await _campaign(graph, account)
    auto = {"targeting_automation": {"advantage_audience": 0}}
    good = {
        **US,
        **auto,
        "publisher_platforms": ["instagram", "threads", "whatsapp"],
        "instagram_positions": ["stream", "story"],
        "threads_positions": ["threads_stream"],
        "whatsapp_positions": ["status"],
    }
    made = await graph.post(f"{account}/adsets", _adset(campaign, good))
    read = (await graph.get(made["id"], {"fields": "targeting"}))["targeting"]
    assert read["threads_positions"] == ["threads_stream"] and read["whatsapp_positions"] == ["status"]
    for bad, words in (
        ({**US, **auto, "publisher_platforms": ["threads"]}, "Instagram Feed"),
        (
            {**US, **auto, "publisher_platforms": ["instagram", "whatsapp"], "instagram_positions": ["stream"]},
            "Instagram Stories",
        ),
    ):
        with pytest.raises(FacebookError) as refused:
            await graph.post(f"{account}/adsets", _adset(campaign, bad))
        assert (refused.value.code, refused.value.error_subcode) == (100, 2490392) and words in str(refused.value)
        before = await _writes(sandbox)
        result = await facebook.call(
            "create_adset",
            {
                "campaign_id": campaign,
                "name": "Dep",
                "optimization_goal": "LINK_CLICKS",
                "billing_event": "IMPRESSIONS",
                "daily_budget": 2000,
                "targeting": bad,
            },
        )
        assert not result.ok and words in result.text and await _writes(sandbox) == before, result.text


# ---- Advantage+ audience ----------------------------------------------------------------------------------------


async def test_special_category_advantage_audience_from_v26(versions, demo_accounts):
    """v26 blog: housing/employment/financial ad sets with restricted targeting need an explicit advantage_audience;
    before v26 the special-category audience is taken as given."""
    account = demo_accounts["USD"]
    interests = await versions[26].get("search", {"type": "adinterest", "q": "a"})
    interest = {"id": interests["data"][0]["id"]}
    spec = {**US, "interests": [interest]}  # detailed targeting: restricted setup
    housing = {"special_ad_categories": json.dumps(["HOUSING"]), "special_ad_category_country": json.dumps(["US"])}
    campaign = await _campaign(versions[25], account, **housing)
    made = await versions[25].post(f"{account}/adsets", _adset(campaign, spec))
    read = await versions[25].get(made["id"], {"fields": "targeting"})
    assert read["targeting"]["targeting_automation"]["advantage_audience"] == 0
    for version in (26, 27):
        with pytest.raises(FacebookError) as refused:
            await versions[version].post(f"{account}/adsets", _adset(campaign, spec))
        assert (refused.value.code, refused.value.error_subcode) == (100, 1870227)
    default = await versions[27].post(f"{account}/adsets", _adset(campaign, US))  # default setup: no flag needed
    read = await versions[27].get(default["id"], {"fields": "targeting"})
    assert read["targeting"]["targeting_automation"]["advantage_audience"] == 1


# ---- campaigns: budget sharing, ASC/AAC, advantage_state_info ---------------------------------------------------


async def test_budget_sharing_required_without_campaign_budget(graph, facebook, demo_accounts):
    account = demo_accounts["USD"]
    body = {"name": "No CBO", "objective": "OUTCOME_TRAFFIC", "status": "PAUSED", "special_ad_categories": "[]"}
    with pytest.raises(FacebookError) as refused:
        await graph.post(f"{account}/campaigns", body)
    assert refused.value.code == 100 and "is_adset_budget_sharing_enabled" in str(refused.value)
    assert (await graph.post(f"{account}/campaigns", {**body, "daily_budget": "5000"}))["id"]  # CBO: not needed
    plain = await facebook.call("create_campaign", {"name": "Ad set budgets", "objective": "OUTCOME_TRAFFIC"})
    assert plain.ok and "ad sets keep their own budgets" in plain.text, plain.text
    shared = await facebook.call(
        "create_campaign", {"name": "Shared", "objective": "OUTCOME_TRAFFIC", "adset_budget_sharing": True}
    )
    assert shared.ok and "share up to 20%" in shared.text, shared.text
    read = await graph.get(shared.data["id"], {"fields": "is_adset_budget_sharing_enabled"})
    assert read["is_adset_budget_sharing_enabled"] is True
    shown = await facebook.call("get_campaign", {"campaign_id": shared.data["id"]})
    assert "ad set budget sharing on" in shown.text, shown.text


@pytest.mark.parametrize("kind", ["AUTOMATED_SHOPPING_ADS", "SMART_APP_PROMOTION"])
async def test_asc_and_aac_creation_refused(versions, demo_accounts, kind):
    account = demo_accounts["USD"]
    for graph in versions.values():
        with pytest.raises(FacebookError) as refused:
            await _campaign(graph, account, objective="OUTCOME_SALES", daily_budget="5000", smart_promotion_type=kind)
        assert refused.value.code == 100 and "no longer" in str(refused.value)


async def test_advantage_state_info_reflects_the_three_levers(graph, facebook, demo_accounts):
    account = demo_accounts["USD"]
    pixel = (await graph.get_all(f"{account}/adspixels", {"fields": "id"}))[0]["id"]
    campaign = (
        await graph.post(
            f"{account}/campaigns",
            {
                "name": "Sales",
                "objective": "OUTCOME_SALES",
                "status": "PAUSED",
                "special_ad_categories": "[]",
                "daily_budget": "5000",
            },
        )
    )["id"]
    before = (await graph.get(campaign, {"fields": "advantage_state_info"}))["advantage_state_info"]
    assert before["advantage_state"] == "DISABLED" and before["advantage_budget_state"] == "ENABLED"
    body = _adset(
        campaign,
        US,
        optimization_goal="OFFSITE_CONVERSIONS",
        promoted_object=json.dumps({"pixel_id": pixel, "custom_event_type": "PURCHASE"}),
    )
    del body["daily_budget"]
    await graph.post(f"{account}/adsets", body)  # default setup: Advantage+ audience on
    after = (await graph.get(campaign, {"fields": "advantage_state_info"}))["advantage_state_info"]
    assert after == {
        "advantage_state": "advantage_plus_sales",
        "advantage_budget_state": "ENABLED",
        "advantage_audience_state": "ENABLED",
        "advantage_placement_state": "ENABLED",
    }
    shown = await facebook.call("get_campaign", {"campaign_id": campaign})
    assert shown.ok and "Advantage+ state advantage_plus_sales (budget ENABLED" in shown.text, shown.text


# ---- lookalikes ---------------------------------------------------------------------------------------------------


async def _source(facebook) -> str:
    created = await facebook.call("create_customer_list_audience", {"name": "Seed", "description": "seed"})
    assert created.ok, created.text
    rows = [["email"]] + [[f"buyer{i}@example.com"] for i in range(300)]
    filled = await facebook.call("add_users", {"audience_id": created.data["audience_id"], "source": rows})
    assert filled.ok, filled.text
    return created.data["audience_id"]


async def test_lookalike_country_refused_from_v27(versions, facebook, store, sandbox, demo_accounts):
    """Meta SDK v27.0.0 release: lookalike_spec no longer takes country/location_spec; before v27 it needs one."""
    from fi_facebook import Facebook

    account = demo_accounts["USD"]
    source = await _source(facebook)
    for spec in (
        {"ratio": 0.01, "country": "US"},
        {"ratio": 0.01, "location_spec": {"geo_locations": {"countries": ["US"]}}},
    ):
        with pytest.raises(FacebookError) as refused:
            await versions[27].post(
                f"{account}/customaudiences",
                {
                    "name": "LAL",
                    "subtype": "LOOKALIKE",
                    "origin_audience_id": source,
                    "lookalike_spec": json.dumps(spec),
                },
            )
        assert refused.value.code == 100 and "v27" in str(refused.value)
    with pytest.raises(FacebookError):
        await versions[26].post(
            f"{account}/customaudiences",
            {
                "name": "LAL",
                "subtype": "LOOKALIKE",
                "origin_audience_id": source,
                "lookalike_spec": json.dumps({"ratio": 0.02}),
            },
        )
    workspace = await store.ensure_workspace("test")
    v27 = Facebook(store, versions[27], workspace, clock=sandbox_clock(sandbox))
    made = await v27.call("create_lookalike", {"origin_audience_id": source, "country": "US", "ratio": 3})
    assert made.ok, made.text
    assert "country" not in made.data["audiences"][0]["lookalike_spec"] and "not sent" in made.text
    v26 = Facebook(store, versions[26], workspace, clock=sandbox_clock(sandbox))
    needs = await v26.call("create_lookalike", {"origin_audience_id": source, "ratio": 4})
    assert not needs.ok and "country" in needs.text and "Fix:" in needs.text
    located = await v26.call("create_lookalike", {"origin_audience_id": source, "country": "US", "ratio": 4})
    assert located.ok and located.data["audiences"][0]["lookalike_spec"]["country"] == "US", located.text


# ---- v27 device default -------------------------------------------------------------------------------------------


async def test_v27_sales_device_expansion_default(versions, demo_accounts, store, sandbox):
    """v27 blog: new Sales ad sets targeting specific devices/OS also reach other mobile devices unless
    individual_setting.device = 0. The sandbox shows the default on read (unverified); the client keeps the person's
    devices (sends 0) and says so."""
    from fi_facebook import Facebook

    account = demo_accounts["USD"]
    pixel = (await versions[27].get_all(f"{account}/adspixels", {"fields": "id"}))[0]["id"]
    campaign = await _campaign(versions[27], account, objective="OUTCOME_SALES")
    spec = {**US, "targeting_automation": {"advantage_audience": 0}, "user_os": ["iOS"]}
    body = _adset(
        campaign,
        spec,
        optimization_goal="OFFSITE_CONVERSIONS",
        promoted_object=json.dumps({"pixel_id": pixel, "custom_event_type": "PURCHASE"}),
    )
    for version, expected in ((26, None), (27, 1)):
        made = await versions[version].post(f"{account}/adsets", body)
        read = (await versions[version].get(made["id"], {"fields": "targeting"}))["targeting"]
        assert (read["targeting_automation"].get("individual_setting") or {}).get("device") == expected, read
    workspace = await store.ensure_workspace("test")
    v27 = Facebook(store, versions[27], workspace, clock=sandbox_clock(sandbox))
    created = await v27.call(
        "create_adset",
        {
            "campaign_id": campaign,
            "name": "iOS buyers",
            "optimization_goal": "OFFSITE_CONVERSIONS",
            "billing_event": "IMPRESSIONS",
            "daily_budget": 2000,
            "targeting": spec,
            "promoted_object": {"pixel_id": pixel, "custom_event_type": "PURCHASE"},
        },
    )
    assert created.ok, created.text
    assert created.data["targeting"]["targeting_automation"]["individual_setting"] == {"device": 0}
    assert "individual_setting.device 0" in created.text
    read = (await versions[27].get(created.data["id"], {"fields": "targeting"}))["targeting"]
    assert read["targeting_automation"]["individual_setting"]["device"] == 0


def test_position_fields_are_the_sdk_targeting_fields():
    """The SDK's Targeting has a *_positions field for every platform both sides know, and no other (its values have
    no enum in the SDK: they are the documented ones, without what Meta removed)."""
    from facebook_business.adobjects.targeting import Targeting

    import fb_adset
    from fb_sandbox import targeting as sandbox_targeting

    sdk = {
        v
        for k, v in vars(Targeting.Field).items()
        if isinstance(v, str) and v.endswith("_positions") and not v.startswith(("effective_", "work_"))
    }
    assert set(fb_adset.POSITION_FIELDS.values()) == sdk
    assert sdk == sandbox_targeting.POSITION_FIELDS
    assert (
        "explore" not in fb_adset.PLATFORM_POSITIONS["instagram"]
        and "video_feeds" not in fb_adset.PLATFORM_POSITIONS["facebook"]
    )
    assert "story" not in fb_adset.PLATFORM_POSITIONS["messenger"]
    sdk_devices = {v for k, v in vars(Targeting.DevicePlatforms).items() if not k.startswith("_")}
    assert sandbox_targeting.DEVICE_PLATFORMS == sdk_devices == set(fb_adset.VALID_DEVICE_PLATFORMS)

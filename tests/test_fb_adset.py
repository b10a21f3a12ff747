"""Ad set ops end to end through dispatch, over HTTP against the sandbox; the rules of docs/adset_rules.md."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from testkit import SANDBOX_START

US = {"geo_locations": {"countries": ["US"]}}


def _in(days: float) -> str:
    """A time `days` from the sandbox's start (its clock stays within minutes of it where this is used)."""
    return (SANDBOX_START + timedelta(days=days)).replace(microsecond=0).isoformat()


async def _objects(sandbox, type_: str = "adset") -> list[dict]:
    return (await sandbox.control("GET", f"objects?type={type_}"))["data"]


async def _campaign(facebook, objective: str = "OUTCOME_TRAFFIC", **extra) -> dict:
    result = await facebook.call("create_campaign", {"name": f"C {objective}", "objective": objective, **extra})
    assert result.ok, result.text
    return result.data


async def _adset(facebook, campaign_id: str, name: str = "AS", **extra) -> dict:
    args = {"campaign_id": campaign_id, "name": name, "targeting": US, "daily_budget": 2000, **extra}
    result = await facebook.call("create_adset", args)
    assert result.ok, result.text
    return result.data


async def _writes(sandbox) -> list[str]:
    stats = await sandbox.stats()
    return [route for route in stats["by_route"] if not route.startswith("GET")]


# -- end to end ---------------------------------------------------------------------------------------------------


async def test_create_paused_read_back_and_say_what_was_chosen(facebook, sandbox):
    campaign = await _campaign(facebook)
    created = await facebook.call(
        "create_adset",
        {
            "campaign_id": campaign["id"],
            "name": "Runners",
            "targeting": {**US, "age_min": 25, "age_max": 45},
            "daily_budget": 2000,
        },
    )
    assert created.ok, created.text
    assert "PAUSED" in created.text and "$20.00/day" in created.text
    assert "LINK_CLICKS (the default for OUTCOME_TRAFFIC)" in created.text
    assert "advantage_audience set to 0" in created.text
    assert created.data["targeting"]["targeting_automation"]["advantage_audience"] == 0
    got = await facebook.call("get_adset", {"adset_id": created.data["id"]})
    assert got.ok, got.text
    adset = got.data["adset"]
    assert (
        adset["status"] == "PAUSED"
        and adset["optimization_goal"] == "LINK_CLICKS"
        and adset["billing_event"] == "IMPRESSIONS"
    )
    assert adset["daily_budget"] == "2000" and adset["campaign_id"] == campaign["id"]
    assert "$20.00/day" in got.text and "targeting" in got.text and "placements" in got.text
    stored = [o for o in await _objects(sandbox) if o["id"] == created.data["id"]]
    assert stored and stored[0]["status"] == "PAUSED"


async def test_no_custom_ages_defaults_advantage_audience_to_1(facebook):
    campaign = await _campaign(facebook)
    created = await facebook.call(
        "create_adset", {"campaign_id": campaign["id"], "name": "Broad", "targeting": US, "daily_budget": 1500}
    )
    assert created.ok, created.text
    assert "advantage_audience set to 1" in created.text
    assert created.data["targeting"]["targeting_automation"]["advantage_audience"] == 1


async def test_list_by_campaign_and_account_with_paging(facebook):
    campaign = await _campaign(facebook)
    ids = [(await _adset(facebook, campaign["id"], f"Paged set {i}"))["id"] for i in range(5)]
    seen, after, pages = [], None, 0
    while True:
        page = await facebook.call(
            "list_adsets", {"campaign_id": campaign["id"], "limit": 2, **({"after": after} if after else {})}
        )
        assert page.ok, page.text
        seen += [a["id"] for a in page.data["adsets"]]
        pages += 1
        after = page.data["next_after"]
        if not after:
            break
        assert f"More: /list_adsets campaign_id={campaign['id']} limit=2 after=" in page.text
        assert f'call list_adsets with after="{after}"' in page.llm_text
    assert pages == 3 and sorted(seen) == sorted(ids)
    assert "$20.00/day" in page.text and "LINK_CLICKS" in page.text
    everything = await facebook.call("list_adsets", {"name_contains": "Paged set", "all_pages": True})
    assert sorted(a["id"] for a in everything.data["adsets"]) == sorted(ids)
    paused = await facebook.call("list_adsets", {"campaign_id": campaign["id"], "status": ["ACTIVE"]})
    assert paused.ok and paused.data["adsets"] == [] and "No ad sets" in paused.text


async def test_update_pause_resume_archive_delete(facebook, sandbox):
    campaign = await _campaign(facebook)
    adset_id = (await _adset(facebook, campaign["id"], "Life"))["id"]
    renamed = await facebook.call("update_adset", {"adset_id": adset_id, "name": "Life 2", "daily_budget": 1800})
    assert renamed.ok, renamed.text
    assert "Life → Life 2" in renamed.text and "$20.00 → $18.00" in renamed.text
    same = await facebook.call("update_adset", {"adset_id": adset_id, "name": "Life 2"})
    assert same.ok and "nothing to change" in same.text
    retargeted = await facebook.call(
        "update_adset",
        {
            "adset_id": adset_id,
            "targeting": {"geo_locations": {"countries": ["CA"]}, "targeting_automation": {"advantage_audience": 1}},
        },
    )
    assert retargeted.ok, retargeted.text
    got = await facebook.call("get_adset", {"adset_id": adset_id})
    assert got.data["adset"]["targeting"]["geo_locations"]["countries"] == ["CA"]
    assert "nothing to change" in (await facebook.call("pause_adset", {"adset_id": adset_id})).text
    resumed = await facebook.call("resume_adset", {"adset_id": adset_id})
    assert resumed.held
    confirmed = await facebook.call("resume_adset", {"adset_id": adset_id, "confirm": resumed.data["confirmation_id"]})
    assert confirmed.ok, confirmed.text
    assert (await facebook.call("get_adset", {"adset_id": adset_id})).data["adset"]["status"] == "ACTIVE"
    paused = await facebook.call("pause_adset", {"adset_id": adset_id})
    assert paused.ok and "status ACTIVE → PAUSED" in paused.text
    archived = await facebook.call("archive_adset", {"adset_id": adset_id})
    assert archived.ok, archived.text
    refused = await facebook.call("update_adset", {"adset_id": adset_id, "daily_budget": 1700})
    assert not refused.ok and "archived" in refused.text
    deleted = await facebook.call("delete_adset", {"adset_id": adset_id})
    assert deleted.ok, deleted.text
    stored = [o for o in await _objects(sandbox) if o["id"] == adset_id]
    assert stored and stored[0]["status"] == "DELETED"


async def test_create_active_needs_confirmation(facebook, sandbox):
    campaign = await _campaign(facebook)
    before = len(await _objects(sandbox))
    result = await facebook.call(
        "create_adset",
        {"campaign_id": campaign["id"], "name": "Live", "targeting": US, "daily_budget": 2000, "status": "ACTIVE"},
    )
    assert result.held and result.text.startswith("Waiting for your confirmation:"), result.text
    assert len(await _objects(sandbox)) == before


async def test_dry_run_shows_the_plan_and_creates_nothing(facebook, sandbox):
    campaign = await _campaign(facebook)
    before = len(await _objects(sandbox))
    dry = await facebook.call(
        "create_adset",
        {"campaign_id": campaign["id"], "name": "Dry", "targeting": US, "daily_budget": 2000, "dry_run": True},
    )
    assert dry.ok, dry.text
    assert (
        dry.text.startswith("DRY RUN create_adset")
        and "goal LINK_CLICKS" in dry.text
        and "billing IMPRESSIONS" in dry.text
    )
    assert "Facebook validate_only: accepted." in dry.text
    request = dry.data["requests"][0]
    assert request["method"] == "POST" and request["path"].endswith("/adsets")
    assert request["params"]["targeting"]["geo_locations"] == {"countries": ["US"]}
    assert len(await _objects(sandbox)) == before


async def test_duplicate_into_same_and_other_campaign(facebook):
    campaign = await _campaign(facebook)
    other = await _campaign(facebook)
    source = await _adset(facebook, campaign["id"], "Original")
    copied = await facebook.call("duplicate_adset", {"adset_id": source["id"]})
    assert copied.ok, copied.text
    new = (await facebook.call("get_adset", {"adset_id": copied.data["adset_id"]})).data["adset"]
    assert new["status"] == "PAUSED" and new["name"] == "Original - Copy" and new["campaign_id"] == campaign["id"]
    moved = await facebook.call(
        "duplicate_adset", {"adset_id": source["id"], "campaign_id": other["id"], "rename_suffix": " (B)"}
    )
    assert moved.ok, moved.text
    new = (await facebook.call("get_adset", {"adset_id": moved.data["adset_id"]})).data["adset"]
    assert new["campaign_id"] == other["id"] and new["name"] == "Original (B)"
    active = await facebook.call("duplicate_adset", {"adset_id": source["id"], "status_option": "ACTIVE"})
    assert active.held


async def test_set_schedule_day_parting_in_account_time(facebook, demo_accounts):
    campaign = await _campaign(facebook)
    adset = await _adset(
        facebook, campaign["id"], "Office hours", daily_budget=None, lifetime_budget=50000, end_time=_in(20)
    )
    account = await facebook.graph.account_info(demo_accounts["USD"])
    result = await facebook.call(
        "set_schedule",
        {
            "adset_id": adset["id"],
            "timezone": "account",
            "day_parting": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"},
                {"days": [0, 6], "start": "10:00", "end": "14:00"},
            ],
        },
    )
    assert result.ok, result.text
    assert "Mon–Fri 09:00–17:00" in result.text and "Sat–Sun 10:00–14:00" in result.text
    assert f"ad account's time zone ({account.timezone_name or 'UTC'})" in result.text
    stored = (await facebook.call("get_adset", {"adset_id": adset["id"]})).data["adset"]
    assert stored["adset_schedule"][0] == {
        "start_minute": 540,
        "end_minute": 1020,
        "days": [1, 2, 3, 4, 5],
        "timezone_type": "ADVERTISER",
    }
    assert stored["adset_schedule"][1]["days"] == [0, 6]
    moved = await facebook.call("set_schedule", {"adset_id": adset["id"], "end_time": _in(25)})
    assert moved.ok and "end time" in moved.text
    cleared = await facebook.call("set_schedule", {"adset_id": adset["id"], "day_parting": None})
    assert cleared.ok and "cleared" in cleared.text
    assert not (await facebook.call("get_adset", {"adset_id": adset["id"]})).data["adset"].get("adset_schedule")


async def test_create_with_day_parting_in_viewer_time(facebook):
    campaign = await _campaign(facebook)
    created = await facebook.call(
        "create_adset",
        {
            "campaign_id": campaign["id"],
            "name": "Evenings",
            "targeting": US,
            "lifetime_budget": 30000,
            "end_time": _in(10),
            "day_parting": [{"days": ["sat"], "start": "18:00", "end": "24:00"}],
        },
    )
    assert created.ok, created.text
    assert "Sat 18:00–24:00 in each viewer's own time zone" in created.text
    stored = (await facebook.call("get_adset", {"adset_id": created.data["id"]})).data["adset"]
    assert stored["adset_schedule"] == [
        {"start_minute": 1080, "end_minute": 1440, "days": [6], "timezone_type": "USER"}
    ]


async def test_recommended_placements_are_applied_and_explained(facebook):
    campaign = await _campaign(facebook)
    created = await facebook.call(
        "create_adset",
        {
            "campaign_id": campaign["id"],
            "name": "Video placements",
            "targeting": US,
            "daily_budget": 2000,
            "placements": "recommended",
            "creative_type": "video",
        },
    )
    assert created.ok, created.text
    assert (
        "placements for video ads, because: Video:" in created.text and "Manual placements: Facebook (" in created.text
    )
    targeting = created.data["targeting"]
    assert targeting.get("publisher_platforms")
    for platform in targeting["publisher_platforms"]:
        positions = targeting.get(f"{platform}_positions")
        assert positions is None or positions
    automatic = await facebook.call(
        "create_adset",
        {
            "campaign_id": campaign["id"],
            "name": "Auto",
            "targeting": US,
            "daily_budget": 2000,
            "placements": "automatic",
        },
    )
    assert automatic.ok, automatic.text
    assert "publisher_platforms" not in automatic.data["targeting"]


async def test_campaign_budget_ad_sets_have_none(facebook):
    campaign = await _campaign(facebook, daily_budget=5000)
    created = await facebook.call("create_adset", {"campaign_id": campaign["id"], "name": "CBO set", "targeting": US})
    assert created.ok, created.text
    assert "campaign budget ($50.00/day)" in created.text


async def test_targeting_from_search_results(facebook):
    locations = await facebook.call("search_locations", {"query": "California"})
    interests = await facebook.call("search_interests", {"query": "running"})
    assert locations.ok and interests.ok, (locations.text, interests.text)
    location = next(item for item in locations.data["results"] if item.get("type") == "region")
    interest = interests.data["results"][0]
    campaign = await _campaign(facebook)
    targeting = {
        "geo_locations": {"regions": [{"key": location["key"]}]},
        "flexible_spec": [{"interests": [{"id": interest["id"], "name": interest["name"]}]}],
        "age_min": 21,
    }
    created = await facebook.call(
        "create_adset",
        {"campaign_id": campaign["id"], "name": "Searched", "targeting": targeting, "daily_budget": 2500},
    )
    assert created.ok, created.text
    stored = (await facebook.call("get_adset", {"adset_id": created.data["id"]})).data["adset"]["targeting"]
    assert stored["geo_locations"]["regions"][0]["key"] == location["key"]
    assert stored["flexible_spec"][0]["interests"][0]["id"] == interest["id"]


# -- the rules: refused with Facebook's code before anything is sent -------------------------------------------------


def _base(campaign_id: str, **extra) -> dict:
    return {"campaign_id": campaign_id, "name": "Rule", "targeting": US, "daily_budget": 2000, **extra}


RULES = [
    ("R1", "OUTCOME_TRAFFIC", {}, {"optimization_goal": "APP_INSTALLS"}, 2490408, "optimization_goal"),
    ("R2", "OUTCOME_TRAFFIC", {}, {"billing_event": "THRUPLAY"}, 2490377, "billing_event"),
    ("R3 cap", "OUTCOME_TRAFFIC", {}, {"bid_strategy": "COST_CAP"}, 1815857, "bid_amount"),
    (
        "R3 roas",
        "OUTCOME_SALES",
        {},
        {
            "bid_strategy": "LOWEST_COST_WITH_MIN_ROAS",
            "optimization_goal": "VALUE",
            "promoted_object": {"pixel_id": "1", "custom_event_type": "PURCHASE"},
        },
        1815857,
        "bid_constraints",
    ),
    ("R4", "OUTCOME_TRAFFIC", {"daily_budget": 5000}, {}, 1885621, "daily_budget"),
    ("R5 none", "OUTCOME_TRAFFIC", {}, {"daily_budget": None}, 1885621, "daily_budget"),
    ("R5 both", "OUTCOME_TRAFFIC", {}, {"lifetime_budget": 90000, "end_time": _in(5)}, 1885621, "daily_budget"),
    ("R6 daily", "OUTCOME_TRAFFIC", {}, {"daily_budget": 50}, 1885272, "daily_budget"),
    (
        "R6 lifetime",
        "OUTCOME_TRAFFIC",
        {},
        {"daily_budget": None, "lifetime_budget": 500, "end_time": _in(10)},
        1885272,
        "lifetime_budget",
    ),
    ("R7", "OUTCOME_TRAFFIC", {}, {"daily_budget": None, "lifetime_budget": 90000}, 1885347, "end_time"),
    ("R8 past", "OUTCOME_TRAFFIC", {}, {"end_time": _in(-1)}, 1487181, "end_time"),
    ("R8 order", "OUTCOME_TRAFFIC", {}, {"start_time": _in(5), "end_time": _in(3)}, 1487181, "end_time"),
    (
        "R14 sales",
        "OUTCOME_SALES",
        {},
        {"promoted_object": {"pixel_id": "500000000000001"}},
        1815430,
        "promoted_object",
    ),
    ("R14 leads", "OUTCOME_LEADS", {}, {"optimization_goal": "LEAD_GENERATION"}, 1815430, "promoted_object"),
    ("R14 app", "OUTCOME_APP_PROMOTION", {}, {}, 1815430, "promoted_object"),
    (
        "R17 budget",
        "OUTCOME_TRAFFIC",
        {},
        {"day_parting": [{"days": ["mon"], "start": "09:00", "end": "17:00"}]},
        2490126,
        "adset_schedule",
    ),
    (
        "R17 block",
        "OUTCOME_TRAFFIC",
        {},
        {
            "daily_budget": None,
            "lifetime_budget": 90000,
            "end_time": _in(5),
            "day_parting": [{"days": ["mon"], "start": "09:30", "end": "17:00"}],
        },
        1487079,
        "adset_schedule",
    ),
    (
        "R13",
        "OUTCOME_TRAFFIC",
        {},
        {"targeting": {**US, "age_max": 40, "targeting_automation": {"advantage_audience": 1}}},
        1870189,
        "targeting",
    ),
]


@pytest.mark.parametrize("rule, objective, campaign_extra, extra, subcode, blame", RULES, ids=[r[0] for r in RULES])
async def test_rule_refused_before_sending(facebook, sandbox, rule, objective, campaign_extra, extra, subcode, blame):
    campaign = await _campaign(facebook, objective, **campaign_extra)
    args = {k: v for k, v in _base(campaign["id"], **extra).items() if v is not None}
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("create_adset", args)
    assert not result.ok, result.text
    assert result.text.startswith("ERROR validation:") and "Fix:" in result.text and "\n" not in result.text
    assert (result.data["code"], result.data["error_subcode"], result.data["blame_field"]) == (100, subcode, blame), (
        result.data
    )
    assert await _writes(sandbox) == []


async def test_r4_budget_change_on_campaign_budget_ad_set(facebook, sandbox):
    campaign = await _campaign(facebook, daily_budget=5000)
    adset_id = (
        await facebook.call("create_adset", {"campaign_id": campaign["id"], "name": "CBO", "targeting": US})
    ).data["id"]
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("update_adset", {"adset_id": adset_id, "daily_budget": 3000})
    assert (result.data["code"], result.data["error_subcode"]) == (100, 1885621) and "update_campaign" in result.text
    assert await _writes(sandbox) == []


async def test_r16_fifth_budget_change_in_an_hour_is_refused(facebook, sandbox):
    campaign = await _campaign(facebook)
    adset_id = (await _adset(facebook, campaign["id"], "Busy", daily_budget=3000))["id"]
    for budget in (2900, 2800, 2700, 2600):
        changed = await facebook.call("update_adset", {"adset_id": adset_id, "daily_budget": budget})
        assert changed.ok, changed.text
    renamed = await facebook.call("update_adset", {"adset_id": adset_id, "name": "Busy 2"})
    assert renamed.ok, renamed.text
    await sandbox.control("POST", "stats/reset")
    refused = await facebook.call("update_adset", {"adset_id": adset_id, "daily_budget": 2500})
    assert not refused.ok
    assert (refused.data["code"], refused.data["error_subcode"], refused.data["blame_field"]) == (
        613,
        1487632,
        "daily_budget",
    )
    assert "4 times in the last hour" in refused.text and "Change it again after" in refused.text
    assert await _writes(sandbox) == []


DAY = 86400


@pytest.fixture
async def ahead(store, sandbox, demo_accounts):
    """A session over the sandbox with its clock 3 days ahead of this machine's, the USD demo account selected."""
    from fb_utils import GraphClient
    from fi_facebook import Facebook
    from testkit import sandbox_clock

    await sandbox.control("POST", "clock", {"set": int(time.time()) + 3 * DAY})
    token = await sandbox.token(expires_in=0)  # never expires, however far the clock had to jump
    workspace = await store.ensure_workspace("ahead")
    await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
    async with GraphClient(token["access_token"], app_secret=token["app_secret"], base_url=sandbox.url) as graph:
        yield Facebook(store, graph, workspace, clock=sandbox_clock(sandbox))


async def test_r16_counts_the_changes_of_the_sessions_last_hour(ahead, sandbox):
    """The hour is the session's: with the sandbox's clock days ahead of this machine, an ad set whose budget changed
    once a day on earlier simulated days can change again, and a fifth change within one simulated hour is refused."""
    campaign = await _campaign(ahead)
    adset_id = (await _adset(ahead, campaign["id"], "Scaled daily", daily_budget=3000))["id"]
    budgets = iter(range(2900, 1900, -100))
    for _ in range(5):
        changed = await ahead.call("update_adset", {"adset_id": adset_id, "daily_budget": next(budgets)})
        assert changed.ok, changed.text
        await sandbox.control("POST", "clock", {"advance": DAY})
    for _ in range(4):
        changed = await ahead.call("update_adset", {"adset_id": adset_id, "daily_budget": next(budgets)})
        assert changed.ok, changed.text
    await sandbox.control("POST", "stats/reset")
    refused = await ahead.call("update_adset", {"adset_id": adset_id, "daily_budget": next(budgets)})
    assert (refused.data["code"], refused.data["error_subcode"], refused.data["blame_field"]) == (
        613,
        1487632,
        "daily_budget",
    )
    assert refused.text.startswith("ERROR validation:") and "already changed 4 times in the last hour" in refused.text
    assert "in about 60 min" in refused.text, refused.text
    assert await _writes(sandbox) == []


async def test_r6_r8_end_times_and_lifetime_days_count_from_the_sessions_now(ahead, sandbox, demo_accounts):
    """With the sandbox's clock days ahead of this machine, "the past" and the days a lifetime budget covers are the
    session's: an end a day before the sandbox's now is refused before sending; one 5 days after it needs 5 days' minimum."""
    now = datetime.fromtimestamp((await sandbox.control("GET", "clock"))["epoch"], UTC)
    minimum = (await ahead.graph.account_info(demo_accounts["USD"])).min_daily_budget
    campaign = await _campaign(ahead)
    lifetime = {"campaign_id": campaign["id"], "name": "Five days", "targeting": US, "lifetime_budget": 5 * minimum}
    await sandbox.control("POST", "stats/reset")
    past = await ahead.call("create_adset", {**lifetime, "end_time": (now - timedelta(days=1)).isoformat()})
    assert past.text.startswith("ERROR validation:") and "in the past" in past.text, past.text
    assert (past.data["error_subcode"], past.data["blame_field"]) == (1487181, "end_time")
    assert await _writes(sandbox) == []
    created = await ahead.call("create_adset", {**lifetime, "end_time": (now + timedelta(days=5)).isoformat()})
    assert created.ok, created.text


async def test_daily_lifetime_switch_refused(facebook, sandbox):
    campaign = await _campaign(facebook)
    adset_id = (await _adset(facebook, campaign["id"], "Daily"))["id"]
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("update_adset", {"adset_id": adset_id, "lifetime_budget": 90000})
    assert not result.ok and "switch" in result.text
    assert await _writes(sandbox) == []


async def test_update_checks_goal_and_targeting(facebook, sandbox):
    campaign = await _campaign(facebook)
    adset_id = (await _adset(facebook, campaign["id"], "Checked"))["id"]
    await sandbox.control("POST", "stats/reset")
    goal = await facebook.call("update_adset", {"adset_id": adset_id, "optimization_goal": "LEAD_GENERATION"})
    assert goal.data["error_subcode"] == 2490408
    no_place = await facebook.call("update_adset", {"adset_id": adset_id, "targeting": {"age_min": 30}})
    assert not no_place.ok and no_place.data["code"] == 100
    assert await _writes(sandbox) == []


async def test_set_schedule_rules(facebook, sandbox):
    campaign = await _campaign(facebook)
    daily = (await _adset(facebook, campaign["id"], "Daily sched"))["id"]
    await sandbox.control("POST", "stats/reset")
    needs_lifetime = await facebook.call(
        "set_schedule", {"adset_id": daily, "day_parting": [{"days": ["mon"], "start": "9", "end": "17"}]}
    )
    assert needs_lifetime.data["error_subcode"] == 2490126
    past = await facebook.call("set_schedule", {"adset_id": daily, "end_time": _in(-2)})
    assert past.data["error_subcode"] == 1487181
    assert await _writes(sandbox) == []


async def test_leads_use_the_selected_page(facebook, sandbox):
    pages = await facebook.graph.get_all("me/accounts", {"fields": "id"})
    campaign = await _campaign(facebook, "OUTCOME_LEADS")
    await sandbox.control("POST", "stats/reset")
    missing = await facebook.call("create_adset", _base(campaign["id"]))
    assert missing.data["error_subcode"] == 1815430 and "page" in missing.text
    assert await _writes(sandbox) == []
    await facebook.select("page", pages[0]["id"])
    created = await facebook.call("create_adset", _base(campaign["id"], destination_type="ON_AD"))
    assert created.ok, created.text
    assert f"promoted page {pages[0]['id']} (the selected page)" in created.text


async def test_sales_take_the_accounts_only_pixel_and_say_so(facebook, demo_accounts):
    pixels = await facebook.graph.get_all(f"{demo_accounts['USD']}/adspixels", {"fields": "id,name"})
    assert len(pixels) == 1
    campaign = await _campaign(facebook, "OUTCOME_SALES")
    created = await facebook.call("create_adset", _base(campaign["id"]))
    assert created.ok, created.text
    got = await facebook.call("get_adset", {"adset_id": created.data["id"]})
    assert got.data["adset"]["promoted_object"] == {"pixel_id": pixels[0]["id"], "custom_event_type": "PURCHASE"}
    assert (
        f"({pixels[0]['id']}), the account's only pixel" in created.text and "conversion event PURCHASE" in created.text
    )


async def test_sales_without_any_pixel_say_what_to_do(facebook, sandbox, demo_accounts):
    campaign = await _campaign(facebook, "OUTCOME_SALES", ad_account_id=demo_accounts["JPY"], daily_budget=None)
    await sandbox.control("POST", "stats/reset")
    refused = await facebook.call("create_adset", {**_base(campaign["id"]), "daily_budget": 2000})
    assert not refused.ok and refused.data["error_subcode"] == 1815430
    assert "has none" in refused.text and "LINK_CLICKS" in refused.text
    assert await _writes(sandbox) == []


# -- pure helpers ---------------------------------------------------------------------------------------------------


def test_day_parting_conversion():
    from fb_adset import DayPartingBlock, day_parting_schedule

    blocks = [DayPartingBlock(days=["Monday", "fri", 0], start="08:00", end="24:00")]
    assert day_parting_schedule(blocks, "viewer") == [
        {"start_minute": 480, "end_minute": 1440, "days": [0, 1, 5], "timezone_type": "USER"}
    ]
    assert (
        day_parting_schedule([DayPartingBlock(days=["6"], start=0, end=1)], "account")[0]["timezone_type"]
        == "ADVERTISER"
    )


@pytest.mark.parametrize(
    "block, fragment",
    [
        ({"days": ["mon"], "start": "17:00", "end": "09:00"}, "ends before it starts"),
        ({"days": ["funday"], "start": "09:00", "end": "10:00"}, "not a day"),
        ({"days": [7], "start": "09:00", "end": "10:00"}, "not a day"),
        ({"days": [], "start": "09:00", "end": "10:00"}, "no days"),
        ({"days": ["mon"], "start": "09:15", "end": "10:00"}, "whole hours"),
        ({"days": ["mon"], "start": "09:00", "end": "25:00"}, "outside"),
        ({"days": ["mon"], "start": "noon", "end": "13:00"}, "not a time of day"),
    ],
)
def test_day_parting_block_errors(block, fragment):
    from fb_adset import DayPartingBlock, day_parting_schedule
    from fb_utils import ValidationError

    with pytest.raises(ValidationError) as caught:
        day_parting_schedule([DayPartingBlock(**block)], "viewer")
    assert fragment in caught.value.message and caught.value.error_subcode == 1487079


def test_goal_table_uses_sdk_values_and_defaults_are_valid():
    from fb_adset import DEFAULT_GOAL, GOALS_BY_OBJECTIVE, OPTIMIZATION_GOALS
    from fb_campaign import OBJECTIVES

    assert set(GOALS_BY_OBJECTIVE) == set(OBJECTIVES) == set(DEFAULT_GOAL)
    for objective, goals in GOALS_BY_OBJECTIVE.items():
        assert set(goals) <= set(OPTIMIZATION_GOALS)
        assert DEFAULT_GOAL[objective] in goals


def test_advantage_audience_default_keeps_explicit_choice():
    from fb_adset import default_advantage_audience

    explicit = {**US, "age_min": 30, "targeting_automation": {"advantage_audience": 1}}
    assert default_advantage_audience(explicit) == (explicit, None)
    chosen, note = default_advantage_audience({**US, "genders": [2]})
    assert chosen["targeting_automation"] == {"advantage_audience": 0} and "genders" in note


def test_day_parting_words():
    from fb_adset import day_parting_text
    from fb_utils import AccountInfo

    account = AccountInfo("act_1", "A", "USD", 100, 100, "America/New_York", 1)
    text = day_parting_text(
        [{"start_minute": 540, "end_minute": 1020, "days": [1, 2, 3, 5, 0], "timezone_type": "ADVERTISER"}], account
    )
    assert text == "runs only Mon–Wed, Fri, Sun 09:00–17:00 in the ad account's time zone (America/New_York)"


def test_status_ops_and_updates_answer_update_plans_one_model():
    """Typed results (issue 20): every status op (declared by add_status_ops) and every update through update_plan
    answers changed_data(<id key>), one model per key, whichever module asks for it."""
    from fb_utils import changed_data
    from fi_facebook import REGISTRY

    for noun, key in (("campaign", "campaign_id"), ("adset", "adset_id"), ("ad", "ad_id")):
        for action in ("pause", "resume", "archive", "delete"):
            assert REGISTRY.require(f"{action}_{noun}").result is changed_data(key), (action, noun)
    assert (
        REGISTRY.require("update_adset").result is REGISTRY.require("set_schedule").result is changed_data("adset_id")
    )
    assert set(changed_data("adset_id").model_fields) >= {"adset_id", "changes"}

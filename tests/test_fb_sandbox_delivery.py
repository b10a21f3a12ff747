"""Simulated delivery (fb_sandbox/delivery.py): determinism, eligibility, budgets, breakdown sums, shape."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta

from fb_sandbox import delivery
from fb_sandbox.server import SandboxServer
from testkit import SANDBOX_START

FIXED_EPOCH = 1_767_268_800 + 12 * 3600  # 2026-01-01 12:00 UTC: same days in every sandbox of a test
DAY = 86400
PLACEMENTS = {
    ("facebook", "feed"),
    ("facebook", "facebook_stories"),
    ("instagram", "feed"),
    ("instagram", "instagram_stories"),
    ("instagram", "instagram_explore"),
    ("instagram", "instagram_reels"),
    ("instagram", "instagram_explore_grid_home"),
    ("instagram", "instagram_profile_feed"),
    ("instagram", "instagram_search"),
    ("instagram", "instagram_profile_reels"),
}


def _sb(sandbox):
    return sandbox.server.sandbox


async def _scenario(sandbox, **spec) -> dict:
    body = await sandbox.control("POST", "delivery", {"scenario": spec})
    return body["scenario"]


def _rows(sb, scenario: dict, days: int = 400, **kw) -> list[delivery.DeliveryRow]:
    act = scenario["account_id"]
    today = delivery.account_today(sb, act)
    delivery.ensure_simulated(sb, act, today)
    return list(
        delivery.iter_rows(sb, act, today - timedelta(days=days), today, campaign_ids=[scenario["campaign_id"]], **kw)
    )


def _totals(sb, scenario: dict, days: int = 400) -> list[delivery.DeliveryRow]:
    act = scenario["account_id"]
    today = delivery.account_today(sb, act)
    delivery.ensure_simulated(sb, act, today)
    return list(
        delivery.iter_day_totals(sb, act, today - timedelta(days=days), today, campaign_ids=[scenario["campaign_id"]])
    )


def _sum(rows, field: str) -> int:
    return sum(getattr(r, field) for r in rows)


async def test_deterministic_for_a_seed(sandbox):
    await sandbox.control("POST", "clock", {"set": FIXED_EPOCH})
    first = await _scenario(sandbox, ads=3, days=6, creatives=3)
    rows_a = _rows(_sb(sandbox), first)
    assert rows_a
    others = []
    for seed in (None, 7):
        server = SandboxServer(db_path=":memory:", seed=True, clock_start=SANDBOX_START.timestamp())
        await server.start()
        try:
            from conftest import SandboxHandle

            handle = SandboxHandle(server)
            await handle.control("POST", "clock", {"set": FIXED_EPOCH})
            if seed is not None:
                await handle.control("POST", "delivery", {"seed": seed})
            scenario = await _scenario(handle, ads=3, days=6, creatives=3)
            assert scenario["ad_ids"] == first["ad_ids"]
            others.append(_rows(server.sandbox, scenario))
        finally:
            await server.stop()
    assert others[0] == rows_a  # same seed: the same rows
    assert others[1] != rows_a  # another seed: other numbers
    assert {(r.day, r.ad_id) for r in others[1]} == {(r.day, r.ad_id) for r in rows_a}


async def test_status_route_seed_and_idempotence(sandbox):
    sb = _sb(sandbox)
    status = await sandbox.control("GET", "delivery")
    assert status["seed"] == delivery.DEFAULT_SEED
    await sandbox.control("POST", "delivery", {"seed": 42})
    scenario = await _scenario(sandbox, ads=2, days=4)
    status = await sandbox.control("GET", "delivery")
    assert status["seed"] == 42 and status["simulated_days"][scenario["account_id"]] >= 4
    before = _rows(sb, scenario)
    delivery.ensure_simulated(sb, scenario["account_id"], delivery.account_today(sb, scenario["account_id"]))
    assert _rows(sb, scenario) == before
    # history never changes: pausing now stops delivery from now on (the day in progress until the pause)
    ad = sb.store.get(scenario["ad_ids"][0])
    sb.store.update(ad["id"], {**ad, "status": "PAUSED"}, now=sb.now())
    paused_on = delivery.account_today(sb, scenario["account_id"])
    await sandbox.control("POST", "clock", {"advance": 2 * DAY})
    after = _rows(sb, scenario)
    assert [r for r in after if r.day <= before[-1].day] == before
    new_days = [r for r in after if r.day > paused_on]
    assert new_days and {r.ad_id for r in new_days} == {scenario["ad_ids"][1]}
    bad = await _raw(sandbox, {"scenario": {"ads": 0}})
    assert bad == 400


async def _raw(sandbox, body: dict) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sandbox.url}/__sandbox/delivery", json=body) as resp:
            return resp.status


async def test_only_eligible_ads_deliver(sandbox, graph):
    sb = _sb(sandbox)
    scenario = await _scenario(sandbox, ads=5, adsets=5, days=0)
    ads = scenario["ad_ids"]
    adsets = scenario["adset_ids"]
    # 0: paused ad (through the Graph API); 1: disapproved; 2: ad set starting later; 3: ad set ended; 4: runs
    assert (await graph.post(ads[0], {"status": "PAUSED"}))["success"] is True
    ad = sb.store.get(ads[1])
    sb.store.update(
        ads[1],
        {**ad, "_review": {**ad["_review"], "violation": {"policy": "x", "reason": "y", "phrase": "z"}}},
        now=sb.now(),
    )
    later = sb.store.get(adsets[2])
    sb.store.update(adsets[2], {**later, "start_time": sb.now() + 10 * DAY}, now=sb.now())
    ended = sb.store.get(adsets[3])
    sb.store.update(adsets[3], {**ended, "end_time": sb.now() - DAY}, now=sb.now())
    pending = await _scenario(sandbox, ads=1, days=0, name="Pending")
    ad = sb.store.get(pending["ad_ids"][0])  # resubmitted now: in review, approved in 10 minutes
    sb.store.update(ad["id"], {**ad, "_review": {**ad["_review"], "submitted": sb.now()}}, now=sb.now())
    paused_campaign = await _scenario(sandbox, ads=1, days=0, name="Paused campaign")
    campaign = sb.store.get(paused_campaign["campaign_id"])
    sb.store.update(campaign["id"], {**campaign, "status": "PAUSED"}, now=sb.now())
    changed_on = delivery.account_today(sb, scenario["account_id"])  # ads 0 and the campaign ran until now today
    await sandbox.control("POST", "clock", {"advance": 3 * DAY})
    rows = _rows(sb, scenario)
    assert {r.ad_id for r in rows if r.day > changed_on} == {ads[4]}
    assert {r.ad_id for r in rows} <= {ads[0], ads[4]}
    assert not [r for r in _rows(sb, paused_campaign) if r.day > changed_on]
    assert _rows(sb, pending)  # approved after its review, it delivers


def _check_budgets(sb, act: str) -> int:
    """Every ad set's and campaign's spend within its daily budget each day and its lifetime budget overall."""
    today = delivery.account_today(sb, act)
    delivery.ensure_simulated(sb, act, today)
    rows = list(delivery.iter_day_totals(sb, act, today - timedelta(days=2000), today))
    day_spend: dict[tuple, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for r in rows:
        for obj in (r.adset_id, r.campaign_id):
            day_spend[(obj, r.day)] += r.spend
            total[obj] += r.spend
    checked = 0
    for (obj, _day), spend in day_spend.items():
        data = sb.store.get(obj)
        if data.get("daily_budget"):
            assert spend <= int(data["daily_budget"]), (obj, _day, spend)
            checked += 1
    for obj, spend in total.items():
        data = sb.store.get(obj)
        if data.get("lifetime_budget"):
            assert spend <= int(data["lifetime_budget"]), (obj, spend)
            checked += 1
    return checked


async def test_spend_never_exceeds_budgets(sandbox):
    sb = _sb(sandbox)
    tight = await _scenario(sandbox, ads=12, adsets=3, days=20, daily_budget=700, creatives=4)
    lifetime = await _scenario(sandbox, ads=4, adsets=2, days=20, lifetime_budget=9000, end_days=3, name="Life")
    huge = await _scenario(
        sandbox,
        ads=2,
        days=10,
        daily_budget=10**9,
        name="Huge",
        targeting={"geo_locations": {"countries": ["US"]}, "age_min": 30, "age_max": 31, "genders": [1]},
    )
    await sandbox.control("POST", "clock", {"advance": 2 * DAY})
    act = tight["account_id"]
    assert _check_budgets(sb, act) > 60
    # tight budgets are (nearly) used: pacing spends most of each day's budget
    spend = _sum(_totals(sb, tight), "spend")
    assert spend > 0.8 * 700 * 3 * 21
    # lifetime: spread over the days left, never past the total
    assert 0 < _sum(_totals(sb, lifetime), "spend") <= 2 * 9000
    # a budget the audience can't absorb: delivery capped by people, spend far below the budget
    assert 0 < max(r.spend for r in _totals(sb, huge)) < 10**9 // 10
    for account in sb.store.list("adaccount"):  # the demo's campaign budgets (CBO) and ad set budgets too
        _check_budgets(sb, account["id"])


async def test_breakdowns_sum_exactly_to_totals(sandbox):
    sb = _sb(sandbox)
    scenario = await _scenario(
        sandbox,
        ads=4,
        adsets=2,
        days=8,
        creatives=4,
        targeting={
            "geo_locations": {"countries": ["US", "CA", "GB"]},
            "age_min": 21,
            "age_max": 60,
            "publisher_platforms": ["facebook", "instagram"],
            "facebook_positions": ["feed", "story"],
        },
    )
    totals = {(r.day, r.ad_id): r for r in _totals(sb, scenario)}
    cells = _rows(sb, scenario)
    assert len(cells) > 10 * len(totals)
    fields = delivery.METRICS
    summed: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(fields))
    for r in cells:
        acc = summed[(r.day, r.ad_id)]
        for i, f in enumerate(fields):
            acc[i] += getattr(r, f)
        assert r.clicks <= r.impressions and r.link_clicks <= r.clicks and r.landing_page_views <= r.link_clicks
        assert r.reach <= r.impressions and r.purchases <= r.initiate_checkout <= r.add_to_cart
        assert r.age in {"18-24", "25-34", "35-44", "45-54", "55-64"} and r.gender in {"male", "female", "unknown"}
        assert r.country in {"US", "CA", "GB"}
        assert (r.publisher_platform, r.platform_position) in PLACEMENTS
    for key, row in totals.items():
        assert summed[key] == [getattr(row, f) for f in fields]
    # every breakdown the contract allows, pre-grouped, equals the full cells grouped
    for dims in (
        ("age",),
        ("gender",),
        ("age", "gender"),
        ("country",),
        ("publisher_platform",),
        ("publisher_platform", "platform_position", "impression_device"),
        ("impression_device",),
        (),
    ):
        grouped: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(fields))
        for r in _rows(sb, scenario, breakdowns=dims):
            acc = grouped[(r.day, r.ad_id, *(getattr(r, d) for d in dims))]
            for i, f in enumerate(fields):
                acc[i] += getattr(r, f)
        expected: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(fields))
        for r in cells:
            acc = expected[(r.day, r.ad_id, *(getattr(r, d) for d in dims))]
            for i, f in enumerate(fields):
                acc[i] += getattr(r, f)
        assert grouped == expected, dims
    countries = defaultdict(int)
    for r in cells:
        countries[r.country] += r.impressions
    assert countries["US"] > countries["CA"] > 0 and countries["GB"] > 0


async def test_narrow_targeting_costs_more(sandbox):
    sb = _sb(sandbox)
    broad = await _scenario(sandbox, ads=2, days=10, daily_budget=3000, name="Broad")
    narrow = await _scenario(
        sandbox,
        ads=2,
        days=10,
        daily_budget=3000,
        name="Narrow",
        targeting={"geo_locations": {"countries": ["US"]}, "age_min": 30, "age_max": 32, "genders": [2]},
    )

    def cpm(s):
        rows = _totals(sb, s)
        return _sum(rows, "spend") / _sum(rows, "impressions") * 1000

    assert cpm(narrow) > 1.2 * cpm(broad)


async def test_creatives_differ_in_ctr(sandbox):
    sb = _sb(sandbox)
    scenario = await _scenario(sandbox, ads=6, adsets=6, creatives=6, days=20, daily_budget=20000)
    by_ad: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in _totals(sb, scenario):
        by_ad[r.ad_id][0] += r.clicks
        by_ad[r.ad_id][1] += r.impressions
    ctrs = {ad: c / i for ad, (c, i) in by_ad.items()}
    assert len(ctrs) == 6 and max(ctrs.values()) > 1.3 * min(ctrs.values())
    assert all(0.002 < v < 0.04 for v in ctrs.values())
    expected = {ad: delivery.creative_ctr(sb.store.get(sb.store.get(ad)["creative"]["id"])) for ad in ctrs}
    best = max(expected, key=expected.get)
    worst = min(expected, key=expected.get)
    assert ctrs[best] > ctrs[worst]
    # a known true effect doubles an ad's CTR from then on
    effect = await _scenario(sandbox, ads=2, adsets=2, days=20, daily_budget=20000, effects=[1.0, 2.0], name="FX")
    clicks = defaultdict(int)
    imps = defaultdict(int)
    for r in _totals(sb, effect):
        clicks[r.ad_id] += r.clicks
        imps[r.ad_id] += r.impressions
    a, b = effect["ad_ids"]
    assert clicks[b] / imps[b] > 1.6 * clicks[a] / imps[a]


async def test_purchases_only_with_a_pixel(sandbox):
    sb = _sb(sandbox)
    sales = await _scenario(sandbox, ads=2, days=20, daily_budget=30000, name="Sales")
    traffic = await _scenario(
        sandbox, ads=2, days=20, daily_budget=30000, objective="OUTCOME_TRAFFIC", pixel=False, name="Traffic"
    )
    leads = await _scenario(
        sandbox, ads=1, days=20, daily_budget=30000, objective="OUTCOME_LEADS", pixel=False, name="Leads"
    )
    rows = _totals(sb, sales)
    assert _sum(rows, "purchases") > 0 and _sum(rows, "purchase_value") > 0
    assert all(r.purchase_value == 0 for r in rows if r.purchases == 0)
    aov = _sum(rows, "purchase_value") / _sum(rows, "purchases") / 100
    assert 15 < aov < 250
    plain = _totals(sb, traffic)
    assert _sum(plain, "link_clicks") > 0 and _sum(plain, "landing_page_views") > 0
    assert _sum(plain, "purchases") == _sum(plain, "purchase_value") == _sum(plain, "add_to_cart") == 0
    assert _sum(plain, "leads") == 0 and _sum(_totals(sb, leads), "leads") > 0


async def test_day_parting_reduces_delivery(sandbox):
    sb = _sb(sandbox)
    common = dict(ads=1, days=6, lifetime_budget=200000, end_days=10)
    always = await _scenario(sandbox, name="Always", **common)
    evenings = await _scenario(
        sandbox,
        name="Evenings",
        adset_schedule=[{"start_minute": 1080, "end_minute": 1260, "days": [0, 1, 2, 3, 4, 5, 6]}],
        **common,
    )
    full, parted = _totals(sb, always), _totals(sb, evenings)
    assert _sum(parted, "impressions") < 0.5 * _sum(full, "impressions")
    assert 0 < _sum(parted, "spend") < 0.5 * _sum(full, "spend")


async def test_demo_has_history(sandbox):
    sb = _sb(sandbox)
    for account in sb.store.list("adaccount"):
        act = account["id"]
        today = delivery.account_today(sb, act)
        delivery.ensure_simulated(sb, act, today)
        days = {r.day for r in delivery.iter_day_totals(sb, act, today - timedelta(days=120), today)}
        assert len(days) >= 40, act
    reach = delivery.object_reach(sb, act, today - timedelta(days=30), today)
    rows = list(delivery.iter_day_totals(sb, act, today - timedelta(days=30), today))
    assert 0 < reach <= _sum(rows, "reach") and reach >= max(r.reach for r in rows)


async def test_scenario_route_speed(sandbox):
    began = time.perf_counter()
    scenario = await _scenario(sandbox, ads=300, adsets=30, days=90)
    elapsed = time.perf_counter() - began
    print(f"\nscenario 300 ads x 90 days: {elapsed:.2f}s ({scenario['ad_days']} ad-days; {scenario['seconds']})")
    assert len(scenario["ad_ids"]) == 300 and scenario["ad_days"] >= 300 * 89


async def test_equal_ads_differ_by_more_than_chance_day_after_day(sandbox):
    """The noise model: counts are binomial draws, and each day moves every ad's rate by a factor of its own (log-sd
    AD_DAY_SIGMA) on top of one the account's ads share (MARKET_DAY_SIGMA). Sixty identical ads, paired: the final CTR gaps
    of the pairs spread by more than one binomial standard error, as live A/A tests do, and the day-to-day gaps by about
    what the model says; the shared part moves every ad's day together."""
    import math
    import statistics

    await sandbox.control("POST", "clock", {"set": FIXED_EPOCH})
    await sandbox.control("POST", "delivery", {"seed": 3})
    scenario = await _scenario(
        sandbox, ads=60, adsets=60, creatives=1, days=14, daily_budget=20_000, objective="OUTCOME_TRAFFIC", pixel=False
    )
    rows = _totals(_sb(sandbox), scenario)
    by_ad: dict[str, dict] = defaultdict(dict)
    for r in rows:
        by_ad[r.ad_id][r.day] = r
    ads = scenario["ad_ids"]
    days = sorted(set.intersection(*(set(by_ad[a]) for a in ads)))
    assert len(days) >= 13 and all(by_ad[a][d].clicks < by_ad[a][d].impressions for a in ads for d in days)

    def rate(ad: str, d=None) -> tuple[int, int]:
        picked = [by_ad[ad][d]] if d else [by_ad[ad][x] for x in days]
        return sum(r.clicks for r in picked), sum(r.impressions for r in picked)

    finals, daily_ratio = [], []
    for first, second in zip(ads[0::2], ads[1::2]):
        (c1, n1), (c2, n2) = rate(first), rate(second)
        pooled = (c1 + c2) / (n1 + n2)
        finals.append((c1 / n1 - c2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
        for d in days:
            (x1, m1), (x2, m2) = rate(first, d), rate(second, d)
            daily_ratio.append((math.log(x1 / m1) - math.log(x2 / m2)) ** 2 / (1 / x1 + 1 / x2))
    spread = statistics.pstdev(finals)
    assert spread > 1.0, spread  # wider than the binomial alone
    excess = statistics.fmean(daily_ratio)  # 1 = chance alone
    clicks_a_day = statistics.fmean(by_ad[a][d].clicks for a in ads for d in days)
    expected = 1 + 2 * delivery.AD_DAY_SIGMA**2 / (2 / clicks_a_day)
    assert excess > 1.1 and abs(excess - expected) < 0.25 * expected, (excess, expected)
    market = [statistics.fmean(by_ad[a][d].clicks / by_ad[a][d].impressions for a in ads) for d in days]
    assert statistics.pstdev(market) / statistics.fmean(market) > 0.5 * delivery.MARKET_DAY_SIGMA  # days move together

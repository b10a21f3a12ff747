"""Every rule of docs/adset_rules.md, both sides: the sandbox (standing in for Facebook) refuses the request with
Facebook's code, and our client stops the same input with the same code before sending anything.

The two sides are written independently; this file is where they must agree.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from fb_utils import FacebookError
from testkit import SANDBOX_START

TARGETING = {
    "geo_locations": {"countries": ["US"]},
    "age_min": 18,
    "age_max": 65,
    "targeting_automation": {"advantage_audience": 0},
}


def _iso(delta: timedelta) -> str:
    """A time `delta` from the sandbox's start (the sandbox's clock, give or take the seconds a test takes)."""
    return (SANDBOX_START + delta).replace(microsecond=0).isoformat()


@dataclass
class Rule:
    rule: str
    code: int
    subcode: int | None
    campaign: str  # which test campaign the ad set goes in
    change: Callable[[dict], None]  # breaks a valid ad set (same change both sides)
    op: str = "create_adset"
    extra_blame: str = ""
    notes: dict[str, Any] = field(default_factory=dict)


def _set(**values: Any) -> Callable[[dict], None]:
    def change(body: dict) -> None:
        for key, value in values.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value

    return change


def _targeting(**values: Any) -> Callable[[dict], None]:
    def change(body: dict) -> None:
        spec = copy.deepcopy(body["targeting"])
        for key, value in values.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        body["targeting"] = spec

    return change


def _both(*changes: Callable[[dict], None]) -> Callable[[dict], None]:
    def change(body: dict) -> None:
        for one in changes:
            one(body)

    return change


RULES = [
    Rule("R1 goal invalid for objective", 100, 2490408, "traffic", _set(optimization_goal="APP_INSTALLS")),
    Rule("R2 billing event invalid for goal", 100, 2490377, "traffic", _set(billing_event="THRUPLAY")),
    Rule("R3 bid cap needs bid_amount", 100, 1815857, "traffic", _set(bid_strategy="LOWEST_COST_WITH_BID_CAP")),
    Rule("R4 budget on campaign and ad set", 100, 1885621, "cbo", _set()),
    Rule("R5 no budget anywhere", 100, 1885621, "traffic", _set(daily_budget=None)),
    Rule("R6 budget below the minimum", 100, 1885272, "traffic", _set(daily_budget=50)),
    Rule("R7 lifetime budget needs end_time", 100, 1885347, "traffic", _set(daily_budget=None, lifetime_budget=100000)),
    Rule(
        "R8 end time in the past",
        100,
        1487181,
        "traffic",
        lambda b: b.update(end_time=_iso(timedelta(days=-2)), start_time=_iso(timedelta(days=-5))),
    ),
    Rule("R9 age below 13", 100, 1487079, "traffic", _targeting(age_min=10)),
    Rule("R9 unknown country code", 100, 1487079, "traffic", _targeting(geo_locations={"countries": ["XX"]})),
    Rule("R10 no location", 100, 1885364, "traffic", _targeting(geo_locations=None)),
    Rule("R11 special category narrows age", 100, 1487079, "housing", _targeting(age_min=30)),
    Rule(
        "R13 advantage audience with a custom age cap",
        100,
        1870189,
        "traffic",
        _targeting(targeting_automation={"advantage_audience": 1}, age_max=40),
    ),
    Rule("R14 lead form without a page", 100, 1815430, "leads", _set(optimization_goal="LEAD_GENERATION")),
    Rule(
        "R15 instagram positions without instagram",
        100,
        2490392,
        "traffic",
        _targeting(publisher_platforms=["facebook"], instagram_positions=["stream"]),
    ),
    # placements Meta removed: Instagram Explore (v26.0 blog), Facebook video feeds (SDK 24.0.0 release note)
    Rule(
        "R15 Instagram Explore removed in v26",
        100,
        2490392,
        "traffic",
        _targeting(publisher_platforms=["instagram"], instagram_positions=["stream", "explore"]),
    ),
    Rule(
        "R15 Facebook video feeds removed in v24",
        100,
        2490392,
        "traffic",
        _targeting(publisher_platforms=["facebook"], facebook_positions=["feed", "video_feeds"]),
    ),
    # documented dependencies: Threads needs Instagram Feed, WhatsApp Status needs Instagram Stories
    Rule(
        "R15 Threads without Instagram Feed",
        100,
        2490392,
        "traffic",
        _targeting(
            publisher_platforms=["instagram", "threads"],
            instagram_positions=["story"],
            threads_positions=["threads_stream"],
        ),
    ),
    Rule(
        "R15 WhatsApp Status without Instagram Stories",
        100,
        2490392,
        "traffic",
        _targeting(publisher_platforms=["whatsapp"], whatsapp_positions=["status"]),
    ),
]


@pytest.fixture
async def campaigns(graph, demo_accounts) -> dict[str, str]:
    account = demo_accounts["USD"]
    specs = {
        "traffic": {"objective": "OUTCOME_TRAFFIC", "is_adset_budget_sharing_enabled": False},
        "cbo": {"objective": "OUTCOME_TRAFFIC", "daily_budget": 5000},
        "leads": {"objective": "OUTCOME_LEADS", "is_adset_budget_sharing_enabled": False},
        "housing": {
            "objective": "OUTCOME_TRAFFIC",
            "is_adset_budget_sharing_enabled": False,
            "special_ad_categories": ["HOUSING"],
            "special_ad_category_country": ["US"],
        },
    }
    out = {}
    for key, spec in specs.items():
        body = {"name": f"Parity {key}", "status": "PAUSED", "special_ad_categories": [], **spec}
        out[key] = (await graph.post(f"{account}/campaigns", body))["id"]
    return out


def _valid_body(campaign_id: str) -> dict:
    return {
        "campaign_id": campaign_id,
        "name": "Parity ad set",
        "optimization_goal": "LINK_CLICKS",
        "billing_event": "IMPRESSIONS",
        "daily_budget": 2000,
        "status": "PAUSED",
        "targeting": copy.deepcopy(TARGETING),
    }


def _graph_body(body: dict) -> dict:
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in body.items()}


async def _write_requests(sandbox) -> int:
    stats = await sandbox.stats()
    return sum(n for route, n in stats["by_route"].items() if route.startswith(("POST", "DELETE")))


def _check_error(rule: Rule, code: Any, subcode: Any) -> None:
    assert (code, subcode) == (rule.code, rule.subcode), f"{rule.rule}: got {code}/{subcode}"


# A rule about a forbidden placement sends it on purpose, to see both sides refuse it (tests/conftest.py's check).
SENDS_FORBIDDEN = {"R15 Instagram Explore removed in v26"}


@pytest.mark.parametrize(
    "rule",
    [pytest.param(r, id=r.rule, marks=[pytest.mark.sends_forbidden] * (r.rule in SENDS_FORBIDDEN)) for r in RULES],
)
async def test_sandbox_and_client_refuse_alike(rule: Rule, graph, sandbox, facebook, campaigns, demo_accounts):
    account = demo_accounts["USD"]
    body = _valid_body(campaigns[rule.campaign])
    if rule.campaign == "cbo":
        body_ok = {k: v for k, v in body.items() if k != "daily_budget"}
    else:
        body_ok = body
    created = await graph.post(f"{account}/adsets", _graph_body({**body_ok, "name": "Parity valid"}))
    assert created.get("id"), created  # the unbroken ad set is accepted

    broken = copy.deepcopy(body)
    rule.change(broken)
    with pytest.raises(FacebookError) as refused:
        await graph.post(f"{account}/adsets", _graph_body(broken))
    _check_error(rule, refused.value.code, refused.value.error_subcode)

    args = {k: v for k, v in broken.items() if k not in ("status",)}
    before = await _write_requests(sandbox)
    result = await facebook.call(rule.op, args)
    assert not result.ok, result.text
    error = result.data.get("error") if isinstance(result.data.get("error"), dict) else result.data
    _check_error(rule, error.get("code"), error.get("error_subcode"))
    assert error.get("error") == "validation", error  # stopped by our own checks, not by Facebook
    assert await _write_requests(sandbox) == before, "the client sent a write it should have stopped"


async def test_r12_advantage_flag_both_sides(graph, facebook, sandbox, campaigns, demo_accounts):
    """v23.0+: a restricted setup (here a custom age range) needs the Advantage audience flag on create; validate_targeting
    names the same rule, create_adset fills it and says so. A default setup needs none (Facebook defaults it to 1)."""
    default = {k: v for k, v in TARGETING.items() if k != "targeting_automation"}
    made = await graph.post(
        f"{demo_accounts['USD']}/adsets", _graph_body({**_valid_body(campaigns["traffic"]), "targeting": default})
    )
    read = await graph.get(made["id"], {"fields": "targeting"})
    assert read["targeting"]["targeting_automation"]["advantage_audience"] == 1
    checked_default = await facebook.call("validate_targeting", {"targeting": default})
    assert not any(p.get("error_subcode") == 1870227 for p in checked_default.data.get("problems", [])), (
        checked_default.data
    )
    spec = {**default, "age_min": 30}
    body = {**_valid_body(campaigns["traffic"]), "targeting": spec}
    with pytest.raises(FacebookError) as refused:
        await graph.post(f"{demo_accounts['USD']}/adsets", _graph_body(body))
    assert (refused.value.code, refused.value.error_subcode) == (100, 1870227)
    checked = await facebook.call("validate_targeting", {"targeting": spec})
    assert not checked.ok or checked.data.get("problems"), checked.text
    codes = {(p.get("code"), p.get("error_subcode")) for p in checked.data.get("problems", [])}
    assert (100, 1870227) in codes, checked.data
    created = await facebook.call("create_adset", {k: v for k, v in body.items() if k != "status"})
    assert created.ok, created.text
    assert "advantage" in created.text.lower()


async def test_r16_fifth_budget_change_in_an_hour(graph, facebook, sandbox, campaigns, demo_accounts):
    created = await graph.post(f"{demo_accounts['USD']}/adsets", _graph_body(_valid_body(campaigns["traffic"])))
    adset = created["id"]
    for budget in (2100, 2200, 2300, 2400):
        await graph.post(adset, {"daily_budget": budget})
    with pytest.raises(FacebookError) as refused:
        await graph.post(adset, {"daily_budget": 2500})
    assert (refused.value.code, refused.value.error_subcode) == (613, 1487632)
    before = await _write_requests(sandbox)
    result = await facebook.call("update_adset", {"adset_id": adset, "daily_budget": 2500})
    assert not result.ok
    error = result.data.get("error") if isinstance(result.data.get("error"), dict) else result.data
    assert (error.get("code"), error.get("error_subcode")) == (613, 1487632), error
    assert await _write_requests(sandbox) == before
    await sandbox.control("POST", "clock", {"advance": 3700})
    assert (await graph.post(adset, {"daily_budget": 2500})).get("success")


async def test_r17_day_parting_needs_lifetime_budget(graph, facebook, sandbox, campaigns, demo_accounts):
    created = await graph.post(f"{demo_accounts['USD']}/adsets", _graph_body(_valid_body(campaigns["traffic"])))
    schedule = [{"start_minute": 540, "end_minute": 1020, "days": [1, 2, 3, 4, 5], "timezone_type": "USER"}]
    with pytest.raises(FacebookError) as refused:
        await graph.post(created["id"], {"adset_schedule": json.dumps(schedule)})
    assert (refused.value.code, refused.value.error_subcode) == (100, 2490126)
    before = await _write_requests(sandbox)
    result = await facebook.call(
        "set_schedule",
        {
            "adset_id": created["id"],
            "day_parting": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
        },
    )
    assert not result.ok
    error = result.data.get("error") if isinstance(result.data.get("error"), dict) else result.data
    assert (error.get("code"), error.get("error_subcode")) == (100, 2490126), error
    assert await _write_requests(sandbox) == before


def test_every_rule_of_the_table_is_covered():
    covered = {r.rule.split()[0] for r in RULES} | {"R12", "R16", "R17"}
    assert covered == {f"R{i}" for i in range(1, 18)}, sorted({f"R{i}" for i in range(1, 18)} - covered)

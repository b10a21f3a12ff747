"""Experiment plans and statistics, without a sandbox: plan checks, the Bayesian comparison and the decision rules."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError as PydanticError

from fb_experiments import (
    ExperimentRules,
    LaunchExperimentArgs,
    VariantNumbers,
    compare,
    decide,
    plan_key,
    variant_launch,
)
from fb_utils import ExperimentRecord

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
CREATIVE = {"kind": "image", "image": "a.png", "link": "https://example.com", "message": "Hi"}


def plan(**overrides) -> dict:
    body = {"name": "Photo test", "hypothesis": "Lifestyle beats product", "variable": "creative",
            "campaign": {"objective": "OUTCOME_SALES"}, "adset": {"targeting": {"geo_locations": {"countries": ["US"]}}},
            "variants": [{"name": "A", "creative": {**CREATIVE, "image": "a.png"}},
                         {"name": "B", "creative": {**CREATIVE, "image": "b.png"}}],
            "daily_budget": 2000}
    body.update(overrides)
    return body


def record(variants=("A", "B"), *, ends_in_days: float = 3, states=None, **rules) -> ExperimentRecord:
    states = states or {}
    return ExperimentRecord(id=1, key="exp-test", name="T", plan={"metric": "cost_per_result", "rules": rules,
                                                                   "campaign": {"objective": "OUTCOME_SALES"}},
                            status="running", ad_account_id="act_1", currency="USD",
                            variants=[{"name": n, "state": states.get(n, "running")} for n in variants],
                            started_at=(NOW - timedelta(days=4)).isoformat(), ends_at=(NOW + timedelta(days=ends_in_days)).isoformat())


def test_a_plan_changes_one_variable_and_names_variants_once():
    args = LaunchExperimentArgs(**plan())
    assert args.rules.certainty == 0.95 and args.duration_days == 7
    for bad, words in (
        (plan(variants=[{"name": "A", "creative": CREATIVE}, {"name": "A", "creative": {**CREATIVE, "image": "b"}}]), "share a name"),
        (plan(variants=[{"name": "A", "creative": CREATIVE}, {"name": "B", "creative": CREATIVE}]), "same creative"),
        (plan(variants=[{"name": "A", "creative": CREATIVE, "daily_budget": 5}, {"name": "B", "creative": {**CREATIVE, "image": "b"}}]), "one variable only"),
        (plan(variable="audience", creative=CREATIVE), "has no targeting"),
        (plan(campaign={"objective": "OUTCOME_SALES", "daily_budget": 100}), "budgets belong to the variants"),
        (plan(variants=[{"name": "A", "creative": CREATIVE}]), "at least 2"),
    ):
        with pytest.raises(PydanticError) as caught:
            LaunchExperimentArgs(**bad)
        assert words in str(caught.value), (words, str(caught.value))


def test_plan_files_in_json_and_yaml_give_the_same_plan_and_key(tmp_path):
    import yaml

    (tmp_path / "p.json").write_text(json.dumps(plan()), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(plan()), encoding="utf-8")
    from_json = LaunchExperimentArgs(plan_file=str(tmp_path / "p.json"))
    from_yaml = LaunchExperimentArgs(plan_file=str(tmp_path / "p.yaml"))
    assert plan_key(from_json) == plan_key(from_yaml) == plan_key(LaunchExperimentArgs(**plan()))
    assert plan_key(LaunchExperimentArgs(**plan(status="ACTIVE"))) == plan_key(from_json)  # the status is not the plan
    assert plan_key(LaunchExperimentArgs(**plan(duration_days=8))) != plan_key(from_json)
    (tmp_path / "bad.yaml").write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(PydanticError, match="not valid YAML"):
        LaunchExperimentArgs(plan_file=str(tmp_path / "bad.yaml"))
    with pytest.raises(PydanticError, match="no plan file"):
        LaunchExperimentArgs(plan_file=str(tmp_path / "missing.json"))


def test_each_variant_launch_differs_only_in_the_variable():
    audience = LaunchExperimentArgs(**plan(variable="audience", creative=CREATIVE, variants=[
        {"name": "Young", "targeting": {"geo_locations": {"countries": ["US"]}, "age_max": 30}},
        {"name": "Older", "targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 31}}]))
    young, older = (variant_launch(audience, v, "act_1", None) for v in audience.variants)
    assert young["adset"]["targeting"]["age_max"] == 30 and older["adset"]["targeting"]["age_min"] == 31
    assert young["creatives"][0]["image"] == older["creatives"][0]["image"] == "a.png"
    assert young["adset"]["daily_budget"] == older["adset"]["daily_budget"] == 2000
    placement = LaunchExperimentArgs(**plan(variable="placement", creative=CREATIVE, variants=[
        {"name": "Feed", "placement": {"publisher_platforms": ["facebook"], "facebook_positions": ["feed"]}},
        {"name": "Reels", "placement": {"publisher_platforms": ["instagram"], "instagram_positions": ["reels"]}}]))
    feed = variant_launch(placement, placement.variants[0], "act_1", None)
    assert feed["adset"]["targeting"]["geo_locations"] == {"countries": ["US"]} and feed["adset"]["placements"] is None
    assert feed["campaign"] == {"objective": "OUTCOME_SALES", "name": "Photo test · Feed"}


def test_a_clear_difference_is_found_and_no_difference_is_not():
    rules = ExperimentRules()
    clear = compare("cost_per_result", [VariantNumbers("A", 60000, 30000, 600, 60), VariantNumbers("B", 60000, 30000, 600, 25)],
                    rules, seed="s")
    assert clear[0].p_best > 0.99 and clear[0].metric == 1000 and clear[0].low < 1000 < clear[0].high
    same = compare("ctr", [VariantNumbers("A", 5000, 20000, 300, 10), VariantNumbers("B", 5000, 20000, 300, 10)], rules, seed="s")
    assert abs(same[0].p_best - 0.5) < 0.05 and abs(same[0].p_best + same[1].p_best - 1) < 1e-9
    again = compare("ctr", [VariantNumbers("A", 5000, 20000, 300, 10), VariantNumbers("B", 5000, 20000, 300, 10)], rules, seed="s")
    assert [s.p_best for s in again] == [s.p_best for s in same]  # seeded: the same numbers give the same answer


def test_a_variant_without_data_is_uncertain_not_best_or_worst():
    stats = compare("ctr", [VariantNumbers("A", 5000, 20000, 300, 10), VariantNumbers("B")], ExperimentRules(), seed="s")
    assert 0.1 < stats[1].p_best < 0.9 and not stats[1].enough and stats[0].enough


def test_roas_uses_order_value():
    stats = compare("roas", [VariantNumbers("A", 10000, 9000, 200, 40, value=80000), VariantNumbers("B", 10000, 9000, 200, 40, value=20000)],
                    ExperimentRules(), seed="s")
    assert stats[0].metric == 8.0 and stats[0].p_best > 0.99


def stats_for(p_best: dict[str, float], enough=True, by_lift: dict[str, float] | None = None):
    from fb_experiments import VariantStats

    return [VariantStats(n, VariantNumbers(n), 1.0, 0.5, 1.5, p, enough, (by_lift or p_best)[n]) for n, p in p_best.items()]


def test_decide_winner_needs_certainty_and_data_for_every_running_variant():
    assert decide(record(), stats_for({"A": 0.97, "B": 0.03}), NOW).winner == "A"
    assert decide(record(), stats_for({"A": 0.90, "B": 0.10}), NOW).winner is None
    assert decide(record(), stats_for({"A": 0.97, "B": 0.03}, enough=False), NOW).winner is None
    assert decide(record(certainty=0.99), stats_for({"A": 0.97, "B": 0.03}), NOW).winner is None
    small = stats_for({"A": 0.97, "B": 0.03}, by_lift={"A": 0.90, "B": 0.0})  # better, but maybe not by 5 %
    assert decide(record(), small, NOW).winner is None
    assert decide(record(min_lift=0), stats_for({"A": 0.97, "B": 0.03}), NOW).winner == "A"


def test_a_small_difference_is_likely_better_but_not_by_the_minimum_lift():
    stats = compare("ctr", [VariantNumbers("A", 9000, 18000, 300, 10), VariantNumbers("B", 9000, 18000, 258, 10)],
                    ExperimentRules(), seed="s")
    assert stats[0].p_best > 0.95 and stats[0].p_best_by_lift < 0.95


def test_time_up_without_certainty_is_no_winner():
    decision = decide(record(ends_in_days=-0.1), stats_for({"A": 0.8, "B": 0.2}), NOW)
    assert decision.time_up and decision.winner is None and "no variant reached 95%" in decision.reason


def test_stop_rule_keeps_two_variants_and_skips_stopped_ones():
    three = decide(record(("A", "B", "C", "D")), stats_for({"A": 0.9, "B": 0.06, "C": 0.02, "D": 0.02}), NOW)
    assert three.stop == ["C", "D"] or three.stop == ["D", "C"]
    two_left = decide(record(("A", "B", "C"), states={"C": "stopped"}), stats_for({"A": 0.9, "B": 0.01, "C": 0.09}), NOW)
    assert two_left.stop is None and two_left.winner is None

"""Experiments end to end over the sandbox: launch in a split test (idempotent, PAUSED until switched on), a hidden
true effect per variant found by the hourly check, no winner without one, the stop rule once, scaling capped and
cooled down, every action audited, status, report (with its chart), list and stop; and the `experiments` job."""
from __future__ import annotations

from datetime import datetime

import pytest

from fi_facebook import Facebook
from test_fb_ads_launch import image_file
from testkit import job_context, sandbox_clock

pytestmark = pytest.mark.usefixtures("clean_environment")
HOUR, DAY = 3600, 86400
US = {"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 54}


@pytest.fixture
async def fb(store, graph, sandbox, demo_accounts):
    workspace = await store.ensure_workspace("experiments")
    await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
    return Facebook(store, graph, workspace, clock=sandbox_clock(sandbox))


def plan(tmp_path, name: str, count: int = 2, **overrides) -> dict:
    body = {"name": name, "hypothesis": "A warmer photo gets more clicks", "variable": "creative", "metric": "ctr",
            "campaign": {"objective": "OUTCOME_TRAFFIC"}, "adset": {"targeting": US},
            "variants": [{"name": label, "creative": {"kind": "image", "image": image_file(tmp_path, f"{name}-{label}.png", 0x30 + 9 * i),
                                                      "message": f"Offer {label}", "link": "https://example.com/offer",
                                                      "headline": f"Look {label}"}}
                         for i, label in enumerate("ABCDE"[:count])],
            "daily_budget": 3000, "duration_days": 7}
    body.update(overrides)
    return body


async def launch(fb, args: dict) -> dict:
    """launch_experiment through the gate: an ACTIVE launch is held for one confirmation, then confirmed."""
    held = await fb.call("launch_experiment", args)
    if args.get("status") == "ACTIVE":
        assert not held.ok and held.data["error"] == "confirmation_required", held.text
        done = await fb.call("confirm", {"confirm": held.data["confirmation_id"]})
    else:
        done = held
    assert done.ok, done.text
    return done.data


async def true_ctr(sandbox, variants: list[dict], rates: list[float]) -> None:
    """The hidden truth: each variant's ad gets this click-through rate, whatever its creative."""
    effects = {ad: {"ctr_rate": rate} for variant, rate in zip(variants, rates) for ad in variant["ad_ids"]}
    await sandbox.control("POST", "delivery", {"true_effects": effects})


async def advance(sandbox, seconds: float) -> None:
    await sandbox.control("POST", "clock", {"advance": seconds})


async def check(fb) -> dict:
    result = await fb.call("evaluate_experiments", {}, interface="job")
    assert result.ok, result.text
    return result.data


async def status_of(graph, object_id: str) -> str:
    return (await graph.get(object_id, {"fields": "status"}))["status"]


async def run_days(fb, sandbox, days: int) -> list[dict]:
    """One check an hour after each simulated day: the events of all of them."""
    events = []
    for _ in range(days):
        await advance(sandbox, DAY)
        events += (await check(fb))["events"]
    return events


async def live(sandbox, kind: str, prefix: str) -> list[dict]:
    objects = (await sandbox.control("GET", f"objects?type={kind}"))["data"]
    return [o for o in objects if str(o.get("name", "")).startswith(prefix) and o.get("status") != "DELETED"]


# -- launch ----------------------------------------------------------------------------------------------------


async def test_launch_builds_a_split_test_paused_and_again_creates_nothing(fb, sandbox, graph, tmp_path):
    first = await launch(fb, plan(tmp_path, "Photo test"))
    assert first["split_test"] and first["study_id"] and len(first["variants"]) == 2
    cells = await graph.get_all(f"{first['study_id']}/cells", {"fields": "name,treatment_percentage,campaigns"})
    assert sorted((c["name"], c["treatment_percentage"]) for c in cells) == [("A", 50), ("B", 50)]
    assert {c["campaigns"]["data"][0]["id"] for c in cells} == {v["campaign_id"] for v in first["variants"]}
    for variant in first["variants"]:
        assert await status_of(graph, variant["campaign_id"]) == "PAUSED"
        assert (await graph.get(variant["adset_id"], {"fields": "daily_budget"}))["daily_budget"] == "3000"
    counts = {kind: len(await live(sandbox, kind, "Photo test")) for kind in ("campaign", "adset", "ad")}
    assert counts == {"campaign": 2, "adset": 2, "ad": 2}

    again = await fb.call("launch_experiment", plan(tmp_path, "Photo test"))
    assert again.ok and again.data["already_launched"] and again.data["experiment_id"] == first["experiment_id"]
    switched = await launch(fb, plan(tmp_path, "Photo test", status="ACTIVE"))
    assert switched["activated"] and switched["experiment_id"] == first["experiment_id"]
    assert {kind: len(await live(sandbox, kind, "Photo test")) for kind in ("campaign", "adset", "ad")} == counts
    for variant in first["variants"]:
        assert await status_of(graph, variant["campaign_id"]) == "ACTIVE"
        assert await status_of(graph, variant["ad_ids"][0]) == "ACTIVE"


async def test_bad_plans_are_one_clear_line_and_send_nothing(fb, sandbox, tmp_path):
    await sandbox.control("POST", "stats/reset")
    same = plan(tmp_path, "Same")
    same["variants"][1]["creative"] = dict(same["variants"][0]["creative"])
    for args, words in ((same, "same creative"), ({**plan(tmp_path, "No file"), "plan_file": str(tmp_path / "none.yaml")}, "no plan file"),
                        (plan(tmp_path, "Budget", campaign={"objective": "OUTCOME_TRAFFIC", "daily_budget": 5000}), "budgets belong")):
        result = await fb.call("launch_experiment", args)
        assert not result.ok and result.text.startswith("ERROR") and words in result.text, result.text
        assert "Traceback" not in result.text
    bad_creative = plan(tmp_path, "Broken")
    bad_creative["variants"][1]["creative"]["link"] = "not a url"
    result = await fb.call("launch_experiment", bad_creative)
    assert not result.ok and "variant 'B'" in result.text, result.text
    posts = [route for route in (await sandbox.stats())["by_route"] if route.startswith("POST")]
    assert posts == []


async def test_a_plan_file_in_yaml_launches_like_arguments(fb, tmp_path):
    import yaml

    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan(tmp_path, "From file")), encoding="utf-8")
    from admonster_bot import parse_slash, slash_to_call

    op, args = slash_to_call(parse_slash(f"/abtest {path}"), fb.registry)
    launched = await launch(fb, {**args})
    assert op == "launch_experiment" and launched["split_test"]
    again = await fb.call("launch_experiment", plan(tmp_path, "From file"))
    assert again.data["already_launched"] and again.data["experiment_id"] == launched["experiment_id"]
    listed = await fb.call(*slash_to_call(parse_slash("/experiments running"), fb.registry))
    assert [e["name"] for e in listed.data["experiments"]] == ["From file"]


# -- the hourly check ------------------------------------------------------------------------------------------


async def test_a_clear_true_effect_is_found_the_loser_paused_and_everything_audited(fb, sandbox, graph, store, tmp_path):
    launched = await launch(fb, plan(tmp_path, "Clear", status="ACTIVE"))
    variants = launched["variants"]
    await true_ctr(sandbox, variants, [0.006, 0.018])  # B is truly three times better
    events = await run_days(fb, sandbox, 4)
    winners = [e for e in events if e["action"] == "winner"]
    assert len(winners) == 1 and "B wins" in winners[0]["text"], events
    assert await status_of(graph, variants[0]["campaign_id"]) == "PAUSED"
    assert await status_of(graph, variants[1]["campaign_id"]) == "ACTIVE"
    status = await fb.call("experiment_status", {"experiment_id": launched["experiment_id"]})
    assert status.ok and status.data["experiment"]["winner"] == "B" and status.data["experiment"]["status"] == "completed"
    b = next(s for s in status.data["stats"] if s["name"] == "B")
    assert b["p_best"] >= 0.95 and b["low"] < b["metric"] < b["high"]
    study = await graph.get(launched["study_id"], {"fields": "end_time"})
    assert datetime.fromisoformat(study["end_time"].replace("+0000", "+00:00")) <= await fb.now()  # ended early
    audit = await store.list_audit(fb.workspace.id, limit=50)
    paused = [e for e in audit if e.op == "pause_campaign" and variants[0]["campaign_id"] in e.object_ids]
    assert paused and paused[0].interface == "job" and paused[0].outcome == "ok"
    assert any(e.op == "evaluate_experiments" and e.interface == "job" for e in audit)
    assert any(e.op == "launch_experiment" for e in audit)


async def test_no_true_effect_means_no_winner_when_time_is_up(fb, sandbox, graph, tmp_path):
    launched = await launch(fb, plan(tmp_path, "Null", status="ACTIVE", duration_days=5))
    variants = launched["variants"]
    await true_ctr(sandbox, variants, [0.012, 0.012])
    events = await run_days(fb, sandbox, 6)
    assert [e["action"] for e in events] == ["no_winner"], events
    assert "no variant reached 95%" in events[0]["text"]
    for variant in variants:
        assert await status_of(graph, variant["campaign_id"]) == "PAUSED"
    listed = await fb.call("list_experiments", {"status": "completed"})
    assert [e["name"] for e in listed.data["experiments"]] == ["Null"] and listed.data["experiments"][0]["winner"] is None


async def test_the_stop_rule_pauses_a_clear_loser_once(fb, sandbox, graph, tmp_path):
    launched = await launch(fb, plan(tmp_path, "Three", count=3, status="ACTIVE"))
    variants = launched["variants"]
    await true_ctr(sandbox, variants, [0.015, 0.0155, 0.003])
    events = await run_days(fb, sandbox, 3)
    await advance(sandbox, HOUR)
    events += (await check(fb))["events"]
    stopped = [e for e in events if e["action"] == "variant_stopped"]
    assert len(stopped) == 1 and stopped[0]["text"].startswith("Experiment") and "C paused" in stopped[0]["text"], events
    assert await status_of(graph, variants[2]["campaign_id"]) == "PAUSED"
    assert [await status_of(graph, v["campaign_id"]) for v in variants[:2]] == ["ACTIVE", "ACTIVE"]
    record = await fb.store.get_experiment(fb.workspace.id, launched["experiment_id"])
    assert [v["state"] for v in record.variants] == ["running", "running", "stopped"]


async def test_the_winner_scales_within_the_cap_and_the_guardrails_after_each_cooldown(fb, sandbox, graph, store, tmp_path):
    rules = {"scale_pct": 50, "max_daily_budget": 6000, "scale_cooldown_hours": 24}
    launched = await launch(fb, plan(tmp_path, "Scale", status="ACTIVE", rules=rules))
    variants = launched["variants"]
    await true_ctr(sandbox, variants, [0.018, 0.005])
    for _ in range(6):  # until the winner is declared (its first scaling step comes with the next check)
        await advance(sandbox, DAY)
        if [e for e in (await check(fb))["events"] if e["action"] == "winner"]:
            break
    winner_adset = variants[0]["adset_id"]

    async def budget() -> int:
        return int((await graph.get(winner_adset, {"fields": "daily_budget"}))["daily_budget"])

    await advance(sandbox, HOUR)
    first = (await check(fb))["events"]
    assert [e["action"] for e in first] == ["scaled"] and await budget() == 4500  # +50 %
    await advance(sandbox, HOUR)
    assert (await check(fb))["events"] == [] and await budget() == 4500  # cooling down
    await store.set_guardrails(fb.workspace.id, {"max_budget_increase_pct": 10})
    await advance(sandbox, DAY)
    held = (await check(fb))["events"]
    assert [e["action"] for e in held] == ["scaled"] and "max_budget_increase_pct" in held[0]["text"] and await budget() == 4950
    await store.set_guardrails(fb.workspace.id, {"max_budget_increase_pct": 100})
    await advance(sandbox, DAY)
    capped = (await check(fb))["events"]
    assert [e["action"] for e in capped] == ["scaled"] and await budget() == 6000  # the experiment's cap
    await advance(sandbox, 2 * DAY)
    assert (await check(fb))["events"] == [] and await budget() == 6000
    raises = [e for e in await store.list_audit(fb.workspace.id, limit=100) if e.op == "update_adset"]
    assert len(raises) == 3 and all(e.interface == "job" for e in raises)


# -- status, report, stop --------------------------------------------------------------------------------------


async def test_status_report_and_stop(fb, sandbox, graph, tmp_path):
    launched = await launch(fb, plan(tmp_path, "Report", status="ACTIVE"))
    variants = launched["variants"]
    await true_ctr(sandbox, variants, [0.01, 0.011])
    await advance(sandbox, DAY)
    status = await fb.call("experiment_status", {"experiment_id": launched["experiment_id"]})
    assert status.ok and "chance of being best" in status.text and "Next hourly check" in status.text
    assert sum(s["spend_minor"] for s in status.data["stats"]) == status.data["spend_minor"] > 0
    report = await fb.call("report_experiment", {"experiment_id": launched["experiment_id"], "out_dir": str(tmp_path / "out")})
    assert report.ok and "Learned:" in report.text and report.files
    png = open(report.files[0], "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    stopped = await fb.call("stop_experiment", {"experiment_id": launched["experiment_id"], "reason": "budget moved"})
    assert stopped.ok, stopped.text
    assert [await status_of(graph, v["campaign_id"]) for v in variants] == ["PAUSED", "PAUSED"]
    await advance(sandbox, 8 * DAY)
    assert (await check(fb))["events"] == []  # a stopped experiment is left alone
    missing = await fb.call("experiment_status", {"experiment_id": 999})
    assert not missing.ok and "list_experiments" in missing.text


# -- the experiments job, through the runtime ------------------------------------------------------------------


@pytest.fixture
async def runtime(tmp_path):
    from admonster_config import load_settings
    from admonster_runtime import open_runtime

    settings = load_settings(home=tmp_path / "home", sandbox_db=tmp_path / "sandbox.db")
    async with open_runtime(settings) as opened:
        yield opened


async def launched_in_runtime(runtime, tmp_path, name: str):
    """A job context, the default workspace and a running two-variant experiment in it whose B clicks five times more."""
    from admonster_runtime import _sandbox_call

    workspace = await runtime.workspace("default")
    launched = await launch(await runtime.facebook_for(workspace), plan(tmp_path, name, status="ACTIVE"))
    effects = {ad: {"ctr_rate": rate} for v, rate in zip(launched["variants"], [0.004, 0.02]) for ad in v["ad_ids"]}
    await _sandbox_call(runtime.sandbox_url, "POST", "delivery", {"true_effects": effects})
    return job_context(runtime), workspace, launched


async def test_the_experiments_job_decides_and_announces_through_the_outbox(runtime, tmp_path):
    from admonster_jobs import run_job
    from admonster_runtime import _sandbox_call

    ctx, workspace, launched = await launched_in_runtime(runtime, tmp_path, "Job test")
    first = await run_job("experiments", ctx)
    assert first.ok and "nothing to do" in first.summary, first.summary
    await _sandbox_call(runtime.sandbox_url, "POST", "clock", {"advance": 4 * DAY})
    decided = await run_job("experiments", ctx)
    assert decided.ok and "1 action" in decided.summary, decided.summary
    subjects = [n.subject for n in await runtime.store.list_notifications(workspace.id, channel="inbox")]
    assert "Experiment Job test: winner" in subjects


async def test_an_audience_test_without_a_split_test_says_audiences_may_overlap(fb, sandbox, graph, tmp_path):
    args = plan(tmp_path, "Ages", variable="audience", split_test="no",
                creative={"kind": "image", "image": image_file(tmp_path, "ages.png"), "message": "Hi", "link": "https://example.com/a"},
                variants=[{"name": "Younger", "targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 18, "age_max": 34}},
                          {"name": "Older", "targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 35, "age_max": 65}}])
    result = await fb.call("launch_experiment", args)
    assert result.ok and not result.data["split_test"] and result.data["study_id"] is None
    assert "audiences may overlap" in result.text
    ages = [(await graph.get(v["adset_id"], {"fields": "targeting"}))["targeting"] for v in result.data["variants"]]
    assert [(t["age_min"], t["age_max"]) for t in ages] == [(18, 34), (35, 65)]
    creative_ids = [(await graph.get(v["ad_ids"][0], {"fields": "creative"}))["creative"]["id"] for v in result.data["variants"]]
    specs = [(await graph.get(cid, {"fields": "object_story_spec"}))["object_story_spec"] for cid in creative_ids]
    links = {spec["link_data"]["link"] for spec in specs}
    assert links == {"https://example.com/a"}  # the shared creative, the same in both


async def test_cost_per_purchase_decides_a_sales_test(fb, sandbox, graph, tmp_path):
    """The default metric end to end: purchases counted from the pixel the launch picked, gamma-Poisson per dollar."""
    args = plan(tmp_path, "Sales", metric="cost_per_result", campaign={"objective": "OUTCOME_SALES"}, daily_budget=10000,
                rules={"min_results": 3}, status="ACTIVE")
    launched = await launch(fb, args)
    effects = {ad: {"ctr_rate": 0.015, "cvr_rate": rate} for v, rate in zip(launched["variants"], [1.5, 0.4]) for ad in v["ad_ids"]}
    await sandbox.control("POST", "delivery", {"true_effects": effects})
    events = []
    for _ in range(7):
        await advance(sandbox, DAY)
        events += (await check(fb))["events"]
        if any(e["action"] == "winner" for e in events):
            break
    assert [e for e in events if e["action"] == "winner"][0]["text"].startswith("Experiment #1 Sales: A wins"), events
    status = await fb.call("experiment_status", {"experiment_id": launched["experiment_id"]})
    a, b = status.data["stats"]
    assert a["results"] > b["results"] >= 0 and a["metric"] < (b["metric"] or float("inf"))  # A's purchases cost less
    assert "cost per purchase" in status.text and "$" in status.text


async def test_a_failed_action_is_announced_and_the_job_says_it_failed(runtime, tmp_path):
    from admonster_jobs import run_job
    from admonster_runtime import _sandbox_call

    ctx, workspace, launched = await launched_in_runtime(runtime, tmp_path, "Refused")
    await _sandbox_call(runtime.sandbox_url, "POST", "clock", {"advance": 4 * DAY})
    loser = launched["variants"][0]["campaign_id"]
    await _sandbox_call(runtime.sandbox_url, "POST", "faults", {"kind": "error", "method": "POST", "path": f"^{loser}$",
                                                               "count": 5, "message": "(#100) The campaign is locked"})
    result = await run_job("experiments", ctx)
    assert not result.ok, result.summary
    notices = {n.subject: n for n in await runtime.store.list_notifications(workspace.id, channel="inbox")}
    assert "Experiment Refused: failed" in notices and "locked" in notices["Experiment Refused: failed"].text
    assert "Experiment Refused: winner" in notices

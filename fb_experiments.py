"""Experiments: A/B tests from a plan to a winner.

A plan names a hypothesis, the one variable under test (creative, audience, placement, optimization goal or budget),
2-5 variants, the primary metric (cost per result, CTR or ROAS), a daily budget per variant, a duration, and the rules
that stop losers and scale the winner. ``launch_experiment`` builds every variant with ``launch_campaign`` (one
campaign, ad set and ad each; checked before anything is sent; PAUSED unless asked ACTIVE; the same plan twice
creates nothing twice) and, when the ad account belongs to a business, puts them in a Facebook split test
(``ad_studies`` of type SPLIT_TEST, one cell per variant) so their audiences do not overlap.

The comparison is Bayesian: CTR as beta-binomial (clicks of impressions), cost per result and ROAS as gamma-Poisson
(results per unit of spend; ROAS times the variant's average order value). Each variant gets its metric, a 95 %
credible interval and the probability of being best, from 20,000 posterior draws seeded by the experiment, so the
same numbers give the same answer. ``evaluate_experiments`` (the hourly ``experiments`` job) applies the rules
through the safety gate, so every pause and budget change is audited like a person's.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fb_utils import (
    Change,
    ExperimentRecord,
    ExperimentRecords,
    FacebookError,
    GraphRequest,
    OpArgs,
    OpContext,
    OpKind,
    OpResult,
    OpSet,
    ValidationError,
    WritePlan,
    format_money,
    get_logger,
    output_folder,
    scaled_budget,
)

ops = OpSet("fb_experiments")
log = get_logger("fb_experiments")

DRAWS = 20_000
SPLIT_TEST_MAX_CELLS = 5
DEFAULT_OUT_DIR = "experiments"
VARIABLES = ("creative", "audience", "placement", "optimization_goal", "budget")
METRICS = ("cost_per_result", "ctr", "roas")
# What a "result" is for each objective (cost per result), and its name in sentences.
RESULT_OF_OBJECTIVE = {"OUTCOME_SALES": "purchases", "OUTCOME_LEADS": "leads", "OUTCOME_TRAFFIC": "link_clicks",
                       "OUTCOME_ENGAGEMENT": "clicks", "OUTCOME_APP_PROMOTION": "clicks", "OUTCOME_AWARENESS": "impressions"}
RESULT_WORDS = {"purchases": "purchase", "leads": "lead", "link_clicks": "link click", "clicks": "click",
                "impressions": "1,000 impressions"}


# ---------------------------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class ExperimentRules(_Spec):
    """When to stop a loser, declare a winner, and how far to scale it."""

    certainty: float = Field(0.95, ge=0.5, le=0.999, description="Probability of being best by min_lift at which a variant wins (0.95 = 95 %).")
    min_lift: float = Field(0.05, ge=0, le=1, description="How much better than every other variant the winner must be (0.05 = 5 %): differences smaller than this are noise for a decision.")
    min_impressions: int = Field(1000, ge=0, description="Impressions every variant needs before any decision.")
    min_results: int = Field(10, ge=0, description="Results (or clicks, for CTR) every variant needs before any decision.")
    stop_below: float = Field(0.05, ge=0, le=0.5, description="With 3+ variants running, one whose chance of being best falls below this is paused.")
    scale_pct: int = Field(20, ge=0, le=100, description="The winner's daily budget grows by this much per step (0: no scaling).")
    max_daily_budget: int | None = Field(None, gt=0, description="The most the winner's daily budget may reach, minor units (default 3× the variant budget).")
    scale_cooldown_hours: float = Field(24, ge=1, le=24 * 30, description="Hours between two scaling steps.")


class VariantSpec(_Spec):
    """One variant: its name and the value of the variable under test."""

    name: str = Field(..., min_length=1, max_length=100, description="Variant name, e.g. 'Lifestyle photo'.")
    creative: dict[str, Any] | None = Field(None, description="variable creative: the creative (as launch_campaign's creatives take one).")
    targeting: dict[str, Any] | None = Field(None, description="variable audience: the ad set targeting.")
    placement: dict[str, Any] | None = Field(None, description="variable placement: publisher_platforms and *_positions, merged into the targeting.")
    optimization_goal: str | None = Field(None, description="variable optimization_goal: the ad set's goal.")
    daily_budget: int | None = Field(None, gt=0, description="variable budget: this variant's daily budget in minor units.")


_VALUE_OF = {"creative": "creative", "audience": "targeting", "placement": "placement",
             "optimization_goal": "optimization_goal", "budget": "daily_budget"}


def _load_plan_file(path: str) -> dict[str, Any]:
    full = os.path.expanduser(path)
    if not os.path.isfile(full):
        raise ValueError(f"no plan file at {path}: give the path of a .json, .yaml or .yml file")
    with open(full, encoding="utf-8") as handle:
        text = handle.read()
    try:
        if full.lower().endswith((".yaml", ".yml")):
            import yaml

            loaded = yaml.safe_load(text)
        else:
            loaded = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is one clear line about the file
        raise ValueError(f"the plan file {path} is not valid {'YAML' if full.lower().endswith(('.yaml', '.yml')) else 'JSON'}: "
                         f"{str(exc).splitlines()[0][:200]}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"the plan file {path} must hold one object (name, hypothesis, variable, variants, …)")
    return loaded


class LaunchExperimentArgs(OpArgs):
    """Launch an A/B test from a plan: every variant built with launch_campaign, in a Facebook split test when it fits.

    Give the plan as arguments or as plan_file (JSON or YAML with the same fields; arguments given beside it win).
    Everything is created PAUSED unless status is ACTIVE (one confirmation). The same plan twice creates nothing twice.
    """

    plan_file: str | None = Field(None, description="A JSON or YAML file holding the plan (the fields below).")
    name: str = Field(..., min_length=1, max_length=200, description="Experiment name (unique in the workspace).")
    hypothesis: str = Field(..., min_length=3, max_length=1000, description="What you expect, e.g. 'A lifestyle photo lowers cost per purchase'.")
    variable: Literal["creative", "audience", "placement", "optimization_goal", "budget"] = Field(..., description="The one thing the variants differ in.")
    metric: Literal["cost_per_result", "ctr", "roas"] = Field("cost_per_result", description="The primary metric the winner is chosen on.")
    campaign: dict[str, Any] = Field(..., description="Shared campaign fields: objective (and special_ad_categories); no budget (each variant has its own).")
    adset: dict[str, Any] = Field(..., description="Shared ad set fields: targeting, optimization_goal, promoted_object, …")
    creative: dict[str, Any] | None = Field(None, description="The shared creative (all variables but creative).")
    variants: list[VariantSpec] = Field(..., min_length=2, max_length=10, description="2-10 variants (split tests take at most 5).")
    daily_budget: int = Field(..., gt=0, description="Daily budget of each variant in minor units (cents): equal budgets keep the test fair.")
    duration_days: int = Field(7, ge=1, le=30, description="How long the test runs (1-30 days; 7 is a good default).")
    rules: ExperimentRules = Field(default_factory=ExperimentRules, description="Stop, winner and scaling rules.")
    split_test: Literal["auto", "yes", "no"] = Field("auto", description="auto: a Facebook split test when the account has a business and ≤5 variants; yes: require it; no: plain variants.")
    status: Literal["PAUSED", "ACTIVE"] = Field("PAUSED", description="PAUSED (default) or ACTIVE (one confirmation).")
    ad_account_id: str | None = Field(None, description="Ad account id (act_123…); default: the selected one.")
    page_id: str | None = Field(None, description="The page the ads speak for; default the selected page.")

    @model_validator(mode="before")
    @classmethod
    def _from_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("plan_file"):
            loaded = _load_plan_file(str(data["plan_file"]))
            return {**loaded, **data}
        return data

    @field_validator("campaign")
    @classmethod
    def _campaign_without_budget(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value.get("objective"):
            raise ValueError("campaign.objective is required (OUTCOME_SALES, OUTCOME_TRAFFIC, …)")
        budgets = [k for k in ("daily_budget", "lifetime_budget") if value.get(k)]
        if budgets:
            raise ValueError(f"campaign.{budgets[0]}: budgets belong to the variants here (daily_budget, equal for all)")
        return value

    @model_validator(mode="after")
    def _variants_differ_in_the_variable(self) -> "LaunchExperimentArgs":
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variants: two variants share a name; name each one differently")
        wanted = _VALUE_OF[self.variable]
        for variant in self.variants:
            given = [k for k in _VALUE_OF.values() if getattr(variant, k) is not None]
            if wanted not in given:
                raise ValueError(f"variant {variant.name!r} has no {wanted} (the variable under test is {self.variable})")
            others = [k for k in given if k != wanted]
            if others:
                raise ValueError(f"variant {variant.name!r} also sets {', '.join(others)}: a test changes one variable only")
        values = [json.dumps(getattr(v, wanted), sort_keys=True) for v in self.variants]
        if len(set(values)) != len(values):
            raise ValueError(f"variants: two variants have the same {wanted}; the test would compare nothing")
        if self.variable != "creative" and not self.creative:
            raise ValueError("creative is required: the creative all variants share")
        if self.split_test == "yes" and len(self.variants) > SPLIT_TEST_MAX_CELLS:
            raise ValueError(f"a Facebook split test takes at most {SPLIT_TEST_MAX_CELLS} variants")
        return self


def plan_key(args: LaunchExperimentArgs) -> str:
    """The plan's idempotency key: everything that shapes what is built (not the status, not the file name)."""
    shape = args.model_dump(mode="json", exclude={"plan_file", "status"})
    return "exp-" + hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:20]


def variant_launch(args: LaunchExperimentArgs, variant: VariantSpec, account_id: str, page_id: str | None) -> dict[str, Any]:
    """launch_campaign's arguments for one variant: the shared parts with the variant's value of the variable."""
    label = f"{args.name} · {variant.name}"
    adset = {**args.adset, "name": label, "daily_budget": variant.daily_budget or args.daily_budget}
    if args.variable == "audience":
        adset["targeting"] = variant.targeting
    elif args.variable == "placement":
        adset["targeting"] = {**(args.adset.get("targeting") or {}), **(variant.placement or {})}
        adset["placements"] = None  # the variant's own publisher_platforms and positions decide
    elif args.variable == "optimization_goal":
        adset["optimization_goal"] = variant.optimization_goal
    creative = dict(variant.creative if args.variable == "creative" else args.creative or {})
    creative.setdefault("name", label)
    launch = {"campaign": {**args.campaign, "name": label}, "adset": adset, "creatives": [creative],
              "status": args.status, "ad_account_id": account_id}
    if page_id:
        launch["page_id"] = page_id
    return launch


# ---------------------------------------------------------------------------------------------------------------
# Statistics (pure)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class VariantNumbers:
    """What a variant delivered so far (money in minor units)."""

    name: str
    spend: int = 0
    impressions: int = 0
    clicks: int = 0
    results: int = 0
    value: int = 0   # purchase value, for ROAS


@dataclass
class VariantStats:
    name: str
    numbers: VariantNumbers
    metric: float | None            # cost per result (minor units), CTR (percent) or ROAS (×)
    low: float | None               # 95 % credible interval
    high: float | None
    p_best: float
    enough: bool                    # met min_impressions and min_results
    p_best_by_lift: float = 0.0     # chance of beating every other variant by at least min_lift


def _rng(seed_text: str) -> Any:
    import numpy

    return numpy.random.default_rng(int(hashlib.sha256(seed_text.encode()).hexdigest()[:16], 16))


@dataclass(frozen=True)
class Prior:
    """A weak prior centred on all variants pooled, worth one result (or one click): a variant without data is as
    good as the average, and very uncertain, instead of best or worst by default."""

    ctr: float
    rate: float     # results per minor unit of spend


def pooled_prior(numbers: list[VariantNumbers], result_kind: str) -> Prior:
    clicks, impressions = sum(n.clicks for n in numbers), sum(n.impressions for n in numbers)
    results = sum(_results(n, result_kind) for n in numbers)
    spend = sum(n.spend for n in numbers)
    return Prior(ctr=(clicks + 1) / (impressions + 2), rate=(results + 1) / (spend + 1) if spend else 1.0)


def _results(n: VariantNumbers, result_kind: str) -> float:
    return n.results / 1000 if result_kind == "impressions" else n.results


def _posterior(metric: str, n: VariantNumbers, rng: Any, result_kind: str, prior: Prior) -> Any:
    """DRAWS samples of the metric's posterior, oriented so that larger is better (cost per result: results per spend)."""
    if metric == "ctr":
        return rng.beta(1 + n.clicks, 1 / prior.ctr - 1 + max(0, n.impressions - n.clicks), DRAWS)
    rate = rng.gamma(1 + _results(n, result_kind), 1.0 / (1 / prior.rate + n.spend), DRAWS)
    if metric == "roas":
        order_value = n.value / n.results if n.results else 0.0
        return rate * order_value
    return rate


def compare(metric: str, numbers: list[VariantNumbers], rules: ExperimentRules, *, seed: str,
            result_kind: str = "purchases") -> list[VariantStats]:
    """Each variant's metric, 95 % interval and probability of being best (ties share the win)."""
    import numpy

    rng = _rng(seed)
    prior = pooled_prior(numbers, result_kind)
    draws = numpy.stack([_posterior(metric, n, rng, result_kind, prior) for n in numbers])
    best = draws.max(axis=0)
    winners = draws == best
    shares = winners / winners.sum(axis=0)
    out = []
    for index, n in enumerate(numbers):
        p_best = float(shares[index].mean())
        others = numpy.delete(draws, index, axis=0).max(axis=0) if len(numbers) > 1 else numpy.zeros(DRAWS)
        by_lift = float((draws[index] > others * (1 + rules.min_lift)).mean())
        value, low, high = _shown(metric, n, draws[index], result_kind)
        enough = n.impressions >= rules.min_impressions and (n.clicks if metric == "ctr" else n.results) >= rules.min_results
        out.append(VariantStats(n.name, n, value, low, high, p_best, enough, by_lift))
    return out


def _shown(metric: str, n: VariantNumbers, draws: Any, result_kind: str) -> tuple[float | None, float | None, float | None]:
    """The metric as people read it, with its 95 % interval (cost per result: spend per result, lower is better)."""
    import numpy

    if not n.impressions:
        return None, None, None  # no delivery: an interval would only repeat the prior
    if metric == "ctr":
        low, high = numpy.percentile(draws, [2.5, 97.5]) * 100
        return n.clicks / n.impressions * 100, float(low), float(high)
    if metric == "roas":
        value = n.value / n.spend if n.spend else None
        low, high = numpy.percentile(draws, [2.5, 97.5])
        return value, float(low), float(high)
    per = 1000 if result_kind == "impressions" else 1
    value = n.spend / n.results * per if n.results else None
    rates = draws[draws > 0]
    if not len(rates) or not n.spend:
        return value, None, None
    low, high = numpy.percentile(1.0 / rates, [2.5, 97.5]) * (per / 1000 if result_kind == "impressions" else 1)
    return value, float(low), float(high)


def lift(metric: str, numbers: list[VariantNumbers], winner: str, runner_up: str, *, seed: str, result_kind: str) -> tuple[float, float, float]:
    """How much better the winner is than the runner-up: median relative improvement and its 95 % interval."""
    import numpy

    rng = _rng(seed + ":lift")
    by_name = {n.name: n for n in numbers}
    prior = pooled_prior(numbers, result_kind)
    a = _posterior(metric, by_name[winner], rng, result_kind, prior)
    b = _posterior(metric, by_name[runner_up], rng, result_kind, prior)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        ratio = numpy.where(b > 0, a / b - 1.0, numpy.nan)
    ratio = ratio[numpy.isfinite(ratio)]
    if not len(ratio):
        return 0.0, 0.0, 0.0
    low, mid, high = numpy.percentile(ratio, [2.5, 50, 97.5])
    return float(mid), float(low), float(high)


# ---------------------------------------------------------------------------------------------------------------
# Reading and writing
# ---------------------------------------------------------------------------------------------------------------


def _experiments(ctx: OpContext) -> ExperimentRecords:
    if ctx.experiments is None:
        raise ValidationError("Experiments are kept per workspace and need a workspace session",
                              fix="Call it through Ad Monster (chat, MCP, API or a job), not as a bare handler")
    return ctx.experiments


async def _now(ctx: OpContext) -> datetime:
    moment = await _experiments(ctx).now()
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def _get_record(ctx: OpContext, experiment_id: int) -> ExperimentRecord:
    record = await _experiments(ctx).get_experiment(experiment_id)
    if record is None:
        raise ValidationError(f"Experiment #{experiment_id} does not exist in this workspace",
                              fix="list_experiments shows the experiments and their ids", blame_field="experiment_id")
    return record


def _result_kind(record_or_plan: dict[str, Any]) -> str:
    objective = str((record_or_plan.get("campaign") or {}).get("objective", "")).upper()
    return RESULT_OF_OBJECTIVE.get(objective, "purchases")


async def _numbers(ctx: OpContext, record: ExperimentRecord, now: datetime) -> list[VariantNumbers]:
    """Every variant's delivery since the start, from its campaign's insights."""
    kind = _result_kind(record.plan)
    account = await ctx.graph.account_info(record.ad_account_id)
    zone = ZoneInfo(account.timezone_name) if account.timezone_name else UTC  # Facebook's days are the account's
    start = _parse(record.started_at).astimezone(zone).date()
    since, until = start.isoformat(), max(now.astimezone(zone).date(), start).isoformat()
    out = []
    for variant in record.variants:
        answer = await ctx.ops.plan("get_insights", {"object_id": variant["campaign_id"], "since": since, "until": until})
        if not isinstance(answer, OpResult) or not answer.ok:
            raise FacebookError(f"Could not read the insights of variant {variant['name']}: "
                                f"{getattr(answer, 'text', '').splitlines()[0] if getattr(answer, 'text', '') else 'no answer'}")
        totals = (answer.data or {}).get("totals") or {}
        results = int(totals.get(kind, 0) or 0)
        out.append(VariantNumbers(variant["name"], spend=int(totals.get("spend_minor", 0) or 0),
                                  impressions=int(totals.get("impressions", 0) or 0), clicks=int(totals.get("clicks", 0) or 0),
                                  results=results, value=int(totals.get("purchase_value_minor", 0) or 0)))
    return out


def _rules(record: ExperimentRecord) -> ExperimentRules:
    return ExperimentRules(**(record.plan.get("rules") or {}))


async def _stats(ctx: OpContext, record: ExperimentRecord, now: datetime) -> list[VariantStats]:
    numbers = await _numbers(ctx, record, now)
    return compare(record.plan.get("metric", "cost_per_result"), numbers, _rules(record), seed=record.key,
                   result_kind=_result_kind(record.plan))


def metric_text(metric: str, value: float | None, currency: str, result_kind: str) -> str:
    if value is None:
        return "n/a"
    if metric == "ctr":
        return f"{value:.2f}%"
    if metric == "roas":
        return f"{value:.2f}×"
    return format_money(int(round(value)), currency)


def metric_name(metric: str, result_kind: str) -> str:
    if metric == "ctr":
        return "CTR"
    if metric == "roas":
        return "ROAS"
    return f"cost per {RESULT_WORDS.get(result_kind, 'result')}"


def stats_lines(record: ExperimentRecord, stats: list[VariantStats]) -> list[str]:
    metric, kind, currency = record.plan.get("metric", "cost_per_result"), _result_kind(record.plan), record.currency
    states = {v["name"]: v.get("state", "running") for v in record.variants}
    lines = []
    for s in stats:
        n = s.numbers
        interval = (f" (95% interval {metric_text(metric, s.low, currency, kind)}–{metric_text(metric, s.high, currency, kind)})"
                    if s.low is not None and s.high is not None else "")
        lines.append(f"- {s.name} [{states.get(s.name, 'running')}]: {metric_name(metric, kind)} "
                     f"{metric_text(metric, s.metric, currency, kind)}{interval}; {s.p_best:.0%} chance of being best; "
                     f"spent {format_money(n.spend, currency)}, {n.impressions:,} impressions, {n.clicks:,} clicks, "
                     f"{n.results:,} {RESULT_WORDS.get(kind, 'result')}s{'' if s.enough else ' (not enough data yet)'}")
    return lines


def _stats_data(stats: list[VariantStats]) -> list[dict[str, Any]]:
    return [{"name": s.name, "metric": s.metric, "low": s.low, "high": s.high, "p_best": round(s.p_best, 4),
             "p_best_by_lift": round(s.p_best_by_lift, 4),
             "enough": s.enough, "spend_minor": s.numbers.spend, "impressions": s.numbers.impressions,
             "clicks": s.numbers.clicks, "results": s.numbers.results, "value_minor": s.numbers.value} for s in stats]


# ---------------------------------------------------------------------------------------------------------------
# Decisions (pure): what the rules do with a set of statistics
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Decision:
    winner: str | None = None
    stop: list[str] | None = None      # variants to pause for being clearly worse
    time_up: bool = False
    reason: str = ""


def decide(record: ExperimentRecord, stats: list[VariantStats], now: datetime) -> Decision:
    """The rules applied once: a winner at the chosen certainty (every running variant with enough data), losers
    clearly worse stopped while 3+ run, and at the end of the duration either the winner or no winner."""
    rules = _rules(record)
    running = {v["name"] for v in record.variants if v.get("state", "running") == "running"}
    by_name = {s.name: s for s in stats}
    time_up = now >= _parse(record.ends_at)
    ready = all(by_name[name].enough for name in running)
    leader = max(stats, key=lambda s: s.p_best)
    margin = f" by at least {rules.min_lift:.0%}" if rules.min_lift else ""
    if ready and leader.name in running and leader.p_best_by_lift >= rules.certainty:
        return Decision(winner=leader.name, time_up=time_up,
                        reason=f"{leader.name} is best{margin} with {leader.p_best_by_lift:.1%} probability (needed {rules.certainty:.0%})")
    if time_up:
        return Decision(time_up=True, reason=(f"time is up and no variant reached {rules.certainty:.0%} certainty of being "
                                              f"best{margin} (the leader, {leader.name}, has {leader.p_best_by_lift:.1%})"))
    stop = [name for name in sorted(running, key=lambda n: by_name[n].p_best)
            if by_name[name].enough and by_name[name].p_best < rules.stop_below]
    stop = stop[:max(0, len(running) - 2)]  # a test keeps at least two variants running
    return Decision(stop=stop or None, reason="; ".join(f"{n} has only {by_name[n].p_best:.1%} chance of being best" for n in stop))


def next_steps(record: ExperimentRecord, stats: list[VariantStats], now: datetime) -> str:
    """What the hourly check will do next, in plain words."""
    rules = _rules(record)
    if record.status != "running":
        if record.winner and rules.scale_pct and not record.outcome.get("scaling_done"):
            return (f"{record.winner} won; the hourly check raises its daily budget by {rules.scale_pct}% at most every "
                    f"{rules.scale_cooldown_hours:g} h, up to the cap and the workspace guardrails.")
        return "Nothing: the experiment is over."
    running = [s for s in stats if any(v["name"] == s.name and v.get("state", "running") == "running" for v in record.variants)]
    waiting = [s.name for s in running if not s.enough]
    leader = max(stats, key=lambda s: s.p_best)
    if not any(s.numbers.impressions for s in stats):
        return (f"Next hourly check: nothing yet, no variant has delivered (ads go to review first, or the test is PAUSED); "
                f"time is up {_parse(record.ends_at).strftime('%Y-%m-%d %H:%M')} UTC.")
    parts = []
    if waiting:
        parts.append(f"waiting for data from {', '.join(waiting)} (each needs {rules.min_impressions:,} impressions and "
                     f"{rules.min_results} {'clicks' if record.plan.get('metric') == 'ctr' else 'results'})")
    margin = f" by at least {rules.min_lift:.0%}" if rules.min_lift else ""
    parts.append(f"{leader.name} wins once its chance of being best{margin} reaches {rules.certainty:.0%} (now {leader.p_best_by_lift:.0%})")
    if len(running) > 2:
        parts.append(f"a variant falling below {rules.stop_below:.0%} is paused")
    parts.append(f"time is up {_parse(record.ends_at).strftime('%Y-%m-%d %H:%M')} UTC: then the leader wins only if it is "
                 f"that certain, otherwise every variant is paused with no winner")
    return "Next hourly check: " + "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------------------------
# Launch
# ---------------------------------------------------------------------------------------------------------------


def _money(minor: int, currency: str) -> str:
    return format_money(int(minor), currency)


async def _business_of(ctx: OpContext, account_id: str) -> str | None:
    try:
        node = await ctx.graph.get(account_id, {"fields": "business"})
    except FacebookError:
        return None
    business = node.get("business") if isinstance(node, dict) else None
    return str(business["id"]) if isinstance(business, dict) and business.get("id") else None


def _study_name(args: LaunchExperimentArgs, key: str) -> str:
    return f"{args.name} [{key}]"


async def _find_study(ctx: OpContext, business_id: str, name: str) -> str | None:
    """The split test an earlier, interrupted launch of this plan created (its name carries the plan key)."""
    for study in await ctx.graph.get_all(f"{business_id}/ad_studies", {"fields": "id,name", "limit": 100}):
        if study.get("name") == name:
            return str(study["id"])
    return None


async def _create_study(ctx: OpContext, business_id: str, args: LaunchExperimentArgs, key: str,
                        campaign_ids: list[str], start: datetime, end: datetime) -> str:
    name = _study_name(args, key)
    found = await _find_study(ctx, business_id, name)
    if found:
        return found
    share, extra = divmod(100, len(campaign_ids))
    cells = [{"name": variant.name, "treatment_percentage": share + (1 if i < extra else 0), "campaigns": [campaign_id]}
             for i, (variant, campaign_id) in enumerate(zip(args.variants, campaign_ids))]
    answer = await ctx.graph.post(f"{business_id}/ad_studies", {
        "name": name, "description": args.hypothesis[:500], "type": "SPLIT_TEST", "cells": cells,
        "start_time": int(start.timestamp()), "end_time": int(end.timestamp()),
        "confidence_level": round(args.rules.certainty * 100)})
    return str(answer["id"])


def _planned_requests(plans: list[Any]) -> list[GraphRequest]:
    return [request for plan in plans if isinstance(plan, WritePlan) for request in plan.requests]


def _planned_changes(plans: list[Any]) -> list[Change]:
    return [change for plan in plans if isinstance(plan, WritePlan) for change in plan.changes]


async def _run_variant(plan: WritePlan | OpResult) -> OpResult:
    return await plan.execute() if isinstance(plan, WritePlan) else plan


@ops.op(OpKind.SPEND, example={"plan_file": "experiments/creative-test.yaml"})
async def launch_experiment(ctx: OpContext, args: LaunchExperimentArgs) -> WritePlan | OpResult:
    records = _experiments(ctx)
    key = plan_key(args)
    existing = await records.find_experiment(key)
    if existing is not None and args.status == "ACTIVE" and existing.plan.get("status") == "PAUSED" and existing.status == "running":
        return await _activation_plan(ctx, args, existing)
    if existing is not None:
        return OpResult(text=(f"Experiment #{existing.id} {existing.name} was launched from this plan on "
                              f"{existing.started_at[:10]}: nothing was created again. experiment_status with "
                              f"experiment_id={existing.id} shows how it is going."),
                        data={"experiment_id": existing.id, "already_launched": True, "status": existing.status})
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.account_info(account_id)
    business_id = await _business_of(ctx, account_id) if args.split_test != "no" else None
    if args.split_test == "yes" and business_id is None:
        raise ValidationError(f"Ad account {account_id} belongs to no business, so Facebook cannot run a split test for it",
                              fix="Use split_test=auto or no (equal-budget variants whose audiences may overlap)",
                              blame_field="split_test")
    split = business_id is not None and len(args.variants) <= SPLIT_TEST_MAX_CELLS
    launches = [variant_launch(args, variant, account_id, args.page_id or ctx.page_id) for variant in args.variants]
    plans = []
    for variant, launch in zip(args.variants, launches):
        try:
            plans.append(await ctx.ops.plan("launch_campaign", launch))
        except ValidationError as error:
            error.message = f"variant {variant.name!r}: {error.message}"
            raise
    budgets = [v.daily_budget or args.daily_budget for v in args.variants]
    how = ("in a Facebook split test (one cell per variant: audiences do not overlap)" if split else
           f"as {'separate' if args.variable == 'budget' else 'equal-budget'} variants (no split test: " + ("the account belongs to no business" if business_id is None and args.split_test != "no"
                                                         else "more than 5 variants" if business_id else "split_test=no")
           + "; their audiences may overlap, so the comparison is less clean)")
    summary = (f"experiment {args.name}: {len(args.variants)} variants of the {args.variable.replace('_', ' ')} "
               f"({', '.join(v.name for v in args.variants)}), {metric_name(args.metric, RESULT_OF_OBJECTIVE.get(str(args.campaign.get('objective')).upper(), 'purchases'))} "
               f"decides, {args.duration_days} days, daily budget {', '.join(_money(b, account.currency) for b in sorted(set(budgets)))} "
               f"per variant (at most {_money(sum(budgets) * args.duration_days, account.currency)} over the test), {how}; {args.status}")
    requests = _planned_requests(plans)
    if split:
        requests.append(GraphRequest("POST", f"{business_id}/ad_studies", {"name": _study_name(args, key), "type": "SPLIT_TEST",
                                                                          "cells": f"<{len(args.variants)} cells, one campaign each>"}))

    async def execute() -> OpResult:
        outcomes = []
        for variant, plan in zip(args.variants, plans):
            result = await _run_variant(plan)
            if not result.ok:
                made = ", ".join(f"{v.name} (launch #{o.data.get('launch_id')})" for v, o in zip(args.variants, outcomes))
                return OpResult(text=(f"{result.text.splitlines()[0]}\nThe experiment stopped while building variant "
                                      f"{variant.name}. {('Built: ' + made + '. ') if made else ''}Launch the same plan again "
                                      f"to continue: what exists is not created twice."),
                                data={**(result.data if isinstance(result.data, dict) else {}), "variant": variant.name}, ok=False)
            outcomes.append(result)
        start = await _now(ctx)
        end = start + timedelta(days=args.duration_days)
        campaign_ids = [str(o.data["campaign_id"]) for o in outcomes]
        study_id = await _create_study(ctx, business_id, args, key, campaign_ids, start, end) if split else None
        variants = [{"name": v.name, "launch_id": o.data.get("launch_id"), "campaign_id": str(o.data["campaign_id"]),
                     "adset_id": str(o.data["adset_id"]), "ad_ids": [str(a) for a in o.data.get("ad_ids") or []],
                     "daily_budget": b, "state": "running", "reason": "", "changed_at": _iso(start)}
                    for v, o, b in zip(args.variants, outcomes, budgets)]
        record = await records.add_experiment(ExperimentRecord(
            id=0, key=key, name=args.name, plan=args.model_dump(mode="json", exclude={"plan_file"}), status="running",
            ad_account_id=account_id, currency=account.currency, variants=variants, started_at=_iso(start),
            ends_at=_iso(end), study_id=study_id))
        await records.add_experiment_event(record.id, "launched", {"variants": variants, "study_id": study_id,
                                                                   "status": args.status}, start)
        lines = [f"Launched experiment #{record.id} {args.name}: {len(variants)} variants {how}, until {_iso(end)[:16]} UTC."]
        lines += [f"- {v['name']}: campaign {v['campaign_id']}, ad set {v['adset_id']}, daily budget "
                  f"{_money(v['daily_budget'], account.currency)}" for v in variants]
        lines.append("Everything is PAUSED: nothing spends until you launch the same plan with status ACTIVE."
                     if args.status == "PAUSED" else "The variants deliver once their ads pass review.")
        lines.append(f"The hourly experiments job checks it; experiment_status with experiment_id={record.id} shows the numbers.")
        return OpResult(text="\n".join(lines), data={"experiment_id": record.id, "study_id": study_id, "variants": variants,
                                                      "split_test": split, "object_ids": [i for v in variants for i in
                                                                                          [v["campaign_id"], v["adset_id"], *v["ad_ids"]]]})

    return WritePlan(summary=summary, ad_account_id=account_id, requests=requests, changes=_planned_changes(plans),
                     execute=execute, currency=account.currency, confirm_text=f"The experiment: {summary}")


async def _activation_plan(ctx: OpContext, args: LaunchExperimentArgs, record: ExperimentRecord) -> WritePlan:
    """A PAUSED experiment launched again with status ACTIVE: switch every variant on; the test's clock starts now."""
    records = _experiments(ctx)
    launches = [variant_launch(args, variant, record.ad_account_id, args.page_id or ctx.page_id) for variant in args.variants]
    plans = [await ctx.ops.plan("launch_campaign", launch) for launch in launches]

    async def execute() -> OpResult:
        for variant, plan in zip(args.variants, plans):
            result = await _run_variant(plan)
            if not result.ok:
                return OpResult(text=f"{result.text.splitlines()[0]}\nVariant {variant.name} could not be switched on; "
                                     "launch the same plan with status ACTIVE again to finish.", data=result.data, ok=False)
        start = await _now(ctx)
        end = start + timedelta(days=int(record.plan.get("duration_days", 7)))
        if record.study_id:
            await ctx.graph.post(record.study_id, {"end_time": int(end.timestamp())})
        record.plan = {**record.plan, "status": "ACTIVE"}
        record.started_at, record.ends_at = _iso(start), _iso(end)
        await records.update_experiment(record)
        await records.add_experiment_event(record.id, "activated", {"ends_at": record.ends_at}, start)
        return OpResult(text=(f"Experiment #{record.id} {record.name} is ACTIVE: {len(record.variants)} variants deliver once "
                              f"their ads pass review; the test runs until {record.ends_at[:16]} UTC."),
                        data={"experiment_id": record.id, "activated": True, "ends_at": record.ends_at,
                              "object_ids": [v["campaign_id"] for v in record.variants]})

    summary = (f"activate experiment #{record.id} {record.name}: {len(record.variants)} variants switch to ACTIVE, daily budget "
               f"{', '.join(_money(v['daily_budget'], record.currency) for v in record.variants)}")
    return WritePlan(summary=summary, ad_account_id=record.ad_account_id, requests=_planned_requests(plans),
                     changes=_planned_changes(plans), execute=execute, currency=record.currency,
                     confirm_text=f"The experiment: {summary}")


# ---------------------------------------------------------------------------------------------------------------
# The hourly check: stop rules, winner, losers paused, winner scaled
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One thing the check does to one experiment (shown before it runs, announced after)."""

    record: ExperimentRecord
    action: str                     # variant_stopped | winner | no_winner | scale
    variants: list[str]
    reason: str
    stats: list[VariantStats] | None = None


class EvaluateExperimentsArgs(OpArgs):
    """Check running experiments now (the hourly experiments job does this): stop clear losers, declare a winner at the
    chosen certainty or end the test when time is up, pause the losers, and scale the winner within the guardrails."""

    experiment_id: int | None = Field(None, ge=1, description="Only this experiment (default: all).")


def _variant(record: ExperimentRecord, name: str) -> dict[str, Any]:
    return next(v for v in record.variants if v["name"] == name)


def _set_state(record: ExperimentRecord, names: list[str], state: str, reason: str, at: datetime) -> None:
    for variant in record.variants:
        if variant["name"] in names:
            variant.update(state=state, reason=reason, changed_at=_iso(at))


def _scaling_due(record: ExperimentRecord, now: datetime) -> bool:
    rules = _rules(record)
    if not record.winner or not rules.scale_pct or record.outcome.get("scaling_done"):
        return False
    return record.last_scaled_at is None or now - _parse(record.last_scaled_at) >= timedelta(hours=rules.scale_cooldown_hours)


async def _pause(ctx: OpContext, campaign_id: str) -> tuple[bool, str]:
    result = await ctx.gate.run("pause_campaign", {"campaign_id": campaign_id})
    return result.ok, result.text.splitlines()[0] if result.text else ""


async def _end_study(ctx: OpContext, record: ExperimentRecord, now: datetime) -> None:
    """End the split test early, so the winner reaches the whole audience (a test already over stays as it is)."""
    if record.study_id and now < _parse(record.ends_at):
        try:
            await ctx.graph.post(record.study_id, {"end_time": int(now.timestamp())})
        except FacebookError as error:
            log.info("split test not ended", study_id=record.study_id, error=error.to_text())


async def _scale(ctx: OpContext, record: ExperimentRecord, now: datetime) -> tuple[str, str]:
    """One scaling step of the winner's daily budget: by scale_pct, held by the plan's cap and the guardrails."""
    rules = _rules(record)
    winner = _variant(record, record.winner or "")
    adset = await ctx.graph.get(winner["adset_id"], {"fields": "id,daily_budget"})
    current = int(adset.get("daily_budget") or winner["daily_budget"])
    cap = ("the experiment's cap", rules.max_daily_budget or 3 * int(winner["daily_budget"]))
    target, held_by = scaled_budget(current, rules.scale_pct, cap, await ctx.gate.guardrails(record.ad_account_id))
    money = lambda v: _money(v, record.currency)  # noqa: E731
    if target <= current:
        record.outcome["scaling_done"] = True
        return "scale_held", f"{record.winner}'s daily budget stays {money(current)}: it is at {held_by}"
    result = await ctx.gate.run("update_adset", {"adset_id": winner["adset_id"], "daily_budget": target})
    if not result.ok:
        return "failed", f"scaling {record.winner} failed: {result.text.splitlines()[0]}"
    record.last_scaled_at = _iso(now)
    if held_by == "the experiment's cap":
        record.outcome["scaling_done"] = True
    capped = f" (held by {held_by})" if held_by else ""
    return "scaled", f"{record.winner}'s daily budget {money(current)} → {money(target)}{capped}"


async def _plan_steps(ctx: OpContext, record: ExperimentRecord, now: datetime) -> list[Step]:
    if record.status == "running":
        stats = await _stats(ctx, record, now)
        record.outcome = {**record.outcome, "stats": _stats_data(stats), "checked_at": _iso(now)}
        decision = decide(record, stats, now)
        if decision.winner:
            return [Step(record, "winner", [decision.winner], decision.reason, stats)]
        if decision.time_up:
            return [Step(record, "no_winner", [], decision.reason, stats)]
        if decision.stop:
            return [Step(record, "variant_stopped", decision.stop, decision.reason, stats)]
        await _experiments(ctx).update_experiment(record)  # the latest numbers, for status and reports
        return []
    if _scaling_due(record, now):
        return [Step(record, "scale", [record.winner or ""], "the winner scales after its cooldown")]
    return []


async def _apply(ctx: OpContext, step: Step, now: datetime) -> list[dict[str, Any]]:
    """Run one step through the safety gate and record it; the events to announce."""
    record, records = step.record, _experiments(ctx)
    events: list[tuple[str, str, str, dict[str, Any]]] = []   # (action, level, text, detail)
    if step.action == "variant_stopped":
        for name in step.variants:
            ok, said = await _pause(ctx, _variant(record, name)["campaign_id"])
            _set_state(record, [name], "stopped" if ok else "running", step.reason, now)
            events.append(("variant_stopped" if ok else "failed", "warning" if ok else "error",
                           f"{name} paused: {step.reason}." if ok else f"{name} could not be paused: {said}", {"variant": name, "answer": said}))
    elif step.action == "winner":
        winner = step.variants[0]
        losers = [v["name"] for v in record.variants if v["name"] != winner and v.get("state") == "running"]
        failed = []
        for name in losers:
            ok, said = await _pause(ctx, _variant(record, name)["campaign_id"])
            if not ok:
                failed.append(f"{name}: {said}")
        _set_state(record, [winner], "winner", step.reason, now)
        _set_state(record, [n for n in losers if not any(f.startswith(n + ":") for f in failed)], "loser", f"{winner} won", now)
        record.status, record.winner = "completed", winner
        record.outcome["decision"] = step.reason
        await _end_study(ctx, record, now)
        events.append(("winner", "info", f"{winner} wins: {step.reason}. "
                       + (f"Paused {', '.join(losers)}." if losers else ""), {"winner": winner, "losers": losers}))
        if failed:
            events.append(("failed", "error", "Could not pause " + "; ".join(failed), {"failed": failed}))
    elif step.action == "no_winner":
        running = [v["name"] for v in record.variants if v.get("state") == "running"]
        for name in running:
            ok, said = await _pause(ctx, _variant(record, name)["campaign_id"])
            _set_state(record, [name], "stopped" if ok else "running", "time is up without a winner", now)
        record.status = "completed"
        record.outcome["decision"] = step.reason
        events.append(("no_winner", "warning", f"No winner: {step.reason}. Paused {', '.join(running)}; resume the one you prefer.",
                       {"paused": running}))
    elif step.action == "scale":
        action, text = await _scale(ctx, record, now)
        events.append((action, "error" if action == "failed" else "info", text, {"winner": record.winner}))
    await records.update_experiment(record)
    out = []
    for action, level, text, detail in events:
        await records.add_experiment_event(record.id, action, {"text": text, **detail}, now)
        out.append({"experiment_id": record.id, "action": action, "at": _iso(now), "level": level,
                    "subject": f"Experiment {record.name}: {action.replace('_', ' ')}", "text": f"Experiment #{record.id} {record.name}: {text}"})
    return out


@ops.op(OpKind.SPEND)
async def evaluate_experiments(ctx: OpContext, args: EvaluateExperimentsArgs) -> OpResult | WritePlan:
    records = _experiments(ctx)
    now = await _now(ctx)
    chosen = [r for r in await records.experiments() if args.experiment_id in (None, r.id) and r.status != "stopped"]
    if args.experiment_id is not None and not chosen:
        await _get_record(ctx, args.experiment_id)  # a clear error for an unknown id
    steps: list[Step] = []
    for record in chosen:
        steps += await _plan_steps(ctx, record, now)
    running = sum(1 for r in chosen if r.status == "running")
    if not steps:
        return OpResult(text=f"Checked {running} running experiment(s): nothing to do.",
                        data={"checked": running, "events": []})
    summary = "experiments: " + "; ".join(f"#{s.record.id} {s.record.name} {s.action.replace('_', ' ')} "
                                           f"{', '.join(s.variants)} ({s.reason})" for s in steps)

    async def execute() -> OpResult:
        events = []
        for step in steps:
            events += await _apply(ctx, step, now)
        failed = [e for e in events if e["action"] == "failed"]
        lines = [f"Checked {running} running experiment(s): {len(events)} action(s)."] + [f"- {e['text']}" for e in events]
        ids = [i for s in steps for name in s.variants if name for v in s.record.variants if v["name"] == name
               for i in (v["campaign_id"], v["adset_id"])]
        return OpResult(text="\n".join(lines), data={"checked": running, "events": events, "object_ids": ids}, ok=not failed)

    return WritePlan(summary=summary, ad_account_id=None, requests=[], changes=[], execute=execute)


# ---------------------------------------------------------------------------------------------------------------
# Status, list, stop, report
# ---------------------------------------------------------------------------------------------------------------


class ExperimentIdArgs(OpArgs):
    experiment_id: int = Field(..., ge=1, description="The experiment's id (list_experiments shows them).")


class ExperimentStatusArgs(ExperimentIdArgs):
    """How an experiment is going: per variant the metric with its 95% interval, the chance of being best, the spend,
    and what the hourly check will do next."""


@ops.op(OpKind.READ, example={"experiment_id": 1})
async def experiment_status(ctx: OpContext, args: ExperimentStatusArgs) -> OpResult:
    record = await _get_record(ctx, args.experiment_id)
    now = await _now(ctx)
    stats = await _stats(ctx, record, now)
    kind = _result_kind(record.plan)
    spent = sum(s.numbers.spend for s in stats)
    head = (f"Experiment #{record.id} {record.name} ({record.status}{', winner ' + record.winner if record.winner else ''}): "
            f"{record.plan.get('variable', '').replace('_', ' ')} test, {metric_name(record.plan.get('metric', 'cost_per_result'), kind)} "
            f"decides; {_parse(record.started_at).strftime('%Y-%m-%d')} to {_parse(record.ends_at).strftime('%Y-%m-%d')}; "
            f"spent {_money(spent, record.currency)}{'; Facebook split test ' + record.study_id if record.study_id else ''}.")
    lines = [head, f"Hypothesis: {record.plan.get('hypothesis', '')}"] + stats_lines(record, stats) + [next_steps(record, stats, now)]
    return OpResult(text="\n".join(lines), data={"experiment": _record_data(record), "stats": _stats_data(stats),
                                                 "spend_minor": spent, "next": next_steps(record, stats, now)})


def _record_data(record: ExperimentRecord) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "status": record.status, "winner": record.winner,
            "variable": record.plan.get("variable"), "metric": record.plan.get("metric"), "ad_account_id": record.ad_account_id,
            "currency": record.currency, "study_id": record.study_id, "started_at": record.started_at, "ends_at": record.ends_at,
            "variants": record.variants, "last_scaled_at": record.last_scaled_at}


class ListExperimentsArgs(OpArgs):
    """The workspace's experiments, newest first: status, variable, metric, winner and dates."""

    status: Literal["running", "completed", "stopped"] | None = Field(None, description="Only experiments in this status.")


@ops.op(OpKind.READ)
async def list_experiments(ctx: OpContext, args: ListExperimentsArgs) -> OpResult:
    found = await _experiments(ctx).experiments(status=args.status)
    if not found:
        return OpResult(text="No experiments" + (f" {args.status}" if args.status else "") + ": launch_experiment starts one.",
                        data={"experiments": []})
    lines = [f"{len(found)} experiment(s):"]
    lines += [f"- #{r.id} {r.name}: {r.status}{', winner ' + r.winner if r.winner else ''}; {r.plan.get('variable', '')} "
              f"({len(r.variants)} variants), {r.plan.get('metric', '')}, {r.started_at[:10]} to {r.ends_at[:10]}" for r in found]
    return OpResult(text="\n".join(lines), data={"experiments": [_record_data(r) for r in found]})


class StopExperimentArgs(ExperimentIdArgs):
    """Stop an experiment now: every variant still running is paused, the split test ends, no winner is declared."""

    reason: str | None = Field(None, max_length=300, description="Why (kept with the experiment).")


@ops.op(OpKind.WRITE, example={"experiment_id": 1, "reason": "budget needed elsewhere"})
async def stop_experiment(ctx: OpContext, args: StopExperimentArgs) -> WritePlan | OpResult:
    record = await _get_record(ctx, args.experiment_id)
    if record.status != "running":
        return OpResult(text=f"Experiment #{record.id} {record.name} is already {record.status}: nothing to stop.",
                        data={"experiment": _record_data(record)})
    running = [v for v in record.variants if v.get("state") == "running"]
    plans = [await ctx.ops.plan("pause_campaign", {"campaign_id": v["campaign_id"]}) for v in running]

    async def execute() -> OpResult:
        now = await _now(ctx)
        for variant, plan in zip(running, plans):
            result = await _run_variant(plan)
            if not result.ok:
                return OpResult(text=f"{result.text.splitlines()[0]}\nVariant {variant['name']} is still running; stop_experiment again to retry.",
                                data=result.data, ok=False)
            _set_state(record, [variant["name"]], "stopped", args.reason or "stopped by hand", now)
        await _end_study(ctx, record, now)
        record.status = "stopped"
        record.outcome["decision"] = f"stopped by hand{': ' + args.reason if args.reason else ''}"
        await _experiments(ctx).update_experiment(record)
        await _experiments(ctx).add_experiment_event(record.id, "stopped", {"reason": args.reason or "", "paused": [v["name"] for v in running]}, now)
        return OpResult(text=f"Stopped experiment #{record.id} {record.name}: paused {', '.join(v['name'] for v in running) or 'nothing'}; no winner declared.",
                        data={"experiment": _record_data(record), "object_ids": [v["campaign_id"] for v in running]})

    return WritePlan(summary=f"stop experiment #{record.id} {record.name}: pause {', '.join(v['name'] for v in running)}",
                     ad_account_id=record.ad_account_id, requests=_planned_requests(plans), changes=_planned_changes(plans),
                     execute=execute, currency=record.currency)


class ReportExperimentArgs(ExperimentIdArgs):
    """What an experiment taught: the hypothesis, each variant's numbers with intervals, the decision and by how much
    the winner beat the runner-up, every action taken, and a chart (PNG)."""

    out_dir: str | None = Field(None, description=f"Folder for the chart (default ./{DEFAULT_OUT_DIR}/).")


def learned(record: ExperimentRecord, stats: list[VariantStats]) -> str:
    metric, kind = record.plan.get("metric", "cost_per_result"), _result_kind(record.plan)
    ranked = sorted(stats, key=lambda s: s.p_best, reverse=True)
    if len(ranked) < 2:
        return "Only one variant has numbers: nothing was compared."
    first, second = ranked[0], ranked[1]
    mid, low, high = lift(metric, [s.numbers for s in stats], first.name, second.name, seed=record.key, result_kind=kind)
    if metric == "cost_per_result":
        words = lambda x: f"{(1 - 1 / (1 + x)):.0%} lower"  # noqa: E731 - more results per unit spent is a lower cost
        change = f"{metric_name(metric, kind)} {words(mid)} (95% interval {words(low)} to {words(high)})"
    else:
        change = f"{metric_name(metric, kind)} {mid:+.0%} (95% interval {low:+.0%} to {high:+.0%})"
    verdict = (f"The hypothesis held: {first.name} beat {second.name}" if record.winner == first.name else
               f"No clear answer yet: {first.name} leads {second.name}" if record.status == "running" else
               f"Not proven: {first.name} led {second.name} but never reached {_rules(record).certainty:.0%} certainty")
    return f"{verdict} with {change}; {first.p_best:.0%} chance of being best."


def render_experiment_png(record: ExperimentRecord, stats: list[VariantStats], path: Path) -> Path:
    """The metric per variant with its 95% interval (bars) and the chance of being best (labels): 1000×600 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, kind = record.plan.get("metric", "cost_per_result"), _result_kind(record.plan)
    scale = 1 / (100 if metric == "cost_per_result" and record.currency.upper() not in ("JPY", "KRW") else 1)
    values = [(s.metric or 0) * (scale if metric == "cost_per_result" else 1) for s in stats]
    lows = [max(0.0, v - (s.low or s.metric or 0) * (scale if metric == "cost_per_result" else 1)) for v, s in zip(values, stats)]
    highs = [max(0.0, (s.high or s.metric or 0) * (scale if metric == "cost_per_result" else 1) - v) for v, s in zip(values, stats)]
    colors = ["#2e7d32" if s.name == record.winner else "#9e9e9e" if any(v["name"] == s.name and v.get("state") in ("stopped", "loser")
                                                                          for v in record.variants) else "#1565c0" for s in stats]
    figure, axes = plt.subplots(figsize=(10, 6), dpi=100)
    try:
        bars = axes.bar([s.name for s in stats], values, yerr=[lows, highs], capsize=8, color=colors)
        for bar, s, above in zip(bars, stats, highs):
            axes.annotate(f"{s.p_best:.0%} chance best", (bar.get_x() + bar.get_width() / 2, bar.get_height() + above),
                          xytext=(0, 6), textcoords="offset points", ha="center", weight="bold")
        axes.margins(y=0.12)
        unit = {"ctr": "CTR (%)", "roas": "ROAS (×)"}.get(metric, f"{metric_name(metric, kind)} ({record.currency})")
        axes.set_ylabel(unit)
        axes.set_title(f"Experiment #{record.id} {record.name}: {unit}, 95% intervals"
                       + (f" · winner {record.winner}" if record.winner else ""))
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return path


@ops.op(OpKind.READ, example={"experiment_id": 1})
async def report_experiment(ctx: OpContext, args: ReportExperimentArgs) -> OpResult:
    record = await _get_record(ctx, args.experiment_id)
    now = await _now(ctx)
    stats = await _stats(ctx, record, now)
    events = await _experiments(ctx).experiment_events(record.id)
    folder = output_folder(args.out_dir, DEFAULT_OUT_DIR)
    chart = render_experiment_png(record, stats, folder / f"experiment-{record.id}.png")
    kind = _result_kind(record.plan)
    lines = [f"Experiment #{record.id} {record.name}: {record.status}" + (f", winner {record.winner}" if record.winner else ", no winner"),
             f"Hypothesis: {record.plan.get('hypothesis', '')}",
             f"Tested: the {record.plan.get('variable', '').replace('_', ' ')}; decided on {metric_name(record.plan.get('metric', 'cost_per_result'), kind)}; "
             f"{record.started_at[:10]} to {record.ends_at[:10]}{'; Facebook split test ' + record.study_id if record.study_id else '; variants could overlap (no split test)'}.",
             f"Learned: {learned(record, stats)}"]
    lines += stats_lines(record, stats)
    if record.outcome.get("decision"):
        lines.append(f"Decision: {record.outcome['decision']}.")
    lines.append("What happened:")
    lines += [f"- {e.at[:16]} {e.action.replace('_', ' ')}" + (f": {e.detail.get('text')}" if e.detail.get("text") else "") for e in events]
    lines.append(f"Chart: {chart}")
    return OpResult(text="\n".join(lines), data={"experiment": _record_data(record), "stats": _stats_data(stats),
                                                 "learned": learned(record, stats),
                                                 "events": [{"at": e.at, "action": e.action, "detail": e.detail} for e in events]},
                    files=[str(chart)])

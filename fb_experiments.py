"""Experiments: A/B tests from a plan to a winner.

A plan names a hypothesis, the one variable under test (creative, audience, placement, optimization goal or budget),
2-10 variants, the primary metric (cost per result, CTR or ROAS), a daily budget per variant, a duration, and the rules
that stop losers and scale the winner. ``launch_experiment`` sizes the plan first (what lift it can detect at its
budget and duration, from the account's recent delivery; an under-powered plan waits for a person's confirmation),
then builds every variant with ``launch_campaign`` (one campaign, ad set and ad each; checked before anything is sent;
PAUSED unless asked ACTIVE; the same plan twice creates nothing twice) and, when the ad account belongs to a business,
puts them in a Facebook split test (``ad_studies`` of type SPLIT_TEST, one cell per variant) so their audiences do not
overlap.

The comparison is an always-valid sequential test on daily numbers (docs/experiments.md): each pair of variants gets
a confidence sequence for the ratio of their rates (a mixture SPRT on the log ratio, whose variance counts chance and
the day-to-day spread the data show), valid however often it is checked, with the error shared by all pairs. A
variant wins when its sequence against every other one lies above zero; while 3 or more run, one that another
beats that way is stopped. ``evaluate_experiments`` (the hourly ``experiments`` job) applies the rules through the
safety gate, so every pause and budget change is audited like a person's. bench/experiments.py measures the error
rates this gives.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fb_utils import (
    ARGUMENTS_FILE_MARK,
    MONEY_UNIT,
    Change,
    ExperimentRecord,
    ExperimentRecords,
    FacebookError,
    GatedRunner,
    GraphRequest,
    LaunchJournal,
    OpArgs,
    OpContext,
    OpData,
    OpKind,
    OpResult,
    OpRunner,
    OpSet,
    TaskGroup,
    ValidationError,
    WritePlan,
    absent_key,
    format_money,
    get_logger,
    output_file,
    scaled_budget,
    single_flight,
)

ops = OpSet("fb_experiments")
log = get_logger("fb_experiments")

SPLIT_TEST_MAX_CELLS = 5
MAX_VARIANTS = 10
SPLIT_TEST_MAX_DAYS = 30  # unverified: the sandbox's limit (docs/graph_api_verified.md, "Split tests")
DEFAULT_OUT_DIR = "experiments"
VARIABLES = ("creative", "audience", "placement", "optimization_goal", "budget")
METRICS = ("cost_per_result", "ctr", "roas")
# What a "result" is for each objective (cost per result), and its name in sentences.
RESULT_OF_OBJECTIVE = {
    "OUTCOME_SALES": "purchases",
    "OUTCOME_LEADS": "leads",
    "OUTCOME_TRAFFIC": "link_clicks",
    "OUTCOME_ENGAGEMENT": "clicks",
    "OUTCOME_APP_PROMOTION": "clicks",
    "OUTCOME_AWARENESS": "impressions",
}
RESULT_WORDS = {
    "purchases": "purchase",
    "leads": "lead",
    "link_clicks": "link click",
    "clicks": "click",
    "impressions": "1,000 impressions",
}


# ---------------------------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class ExperimentRules(_Spec):
    """When to stop a loser, declare a winner, and how far to scale it."""

    certainty: float = Field(
        0.95,
        ge=0.5,
        le=0.999,
        description="How sure a decision must be, however often the test is checked (0.95: at most a 5 % chance that a winner or a stop is noise).",
    )
    min_lift: float = Field(
        0.2,
        gt=0,
        le=5,
        description="The smallest lift worth finding (0.2 = 20 % more clicks per impression, results or revenue per unit spent): the plan is sized to find it with 80 % chance, and launch asks for a confirmation when its budget and duration cannot.",
    )
    min_impressions: int = Field(1000, ge=0, description="Impressions every variant needs before any decision.")
    min_results: int = Field(
        10, ge=0, description="Results (or clicks, for CTR) every variant needs before any decision."
    )
    scale_pct: int = Field(
        20, ge=0, le=100, description="The winner's daily budget grows by this much per step (0: no scaling)."
    )
    max_daily_budget: int | None = Field(
        None,
        json_schema_extra=MONEY_UNIT,
        gt=0,
        description="The most the winner's daily budget may reach, minor units (default 3× the variant budget).",
    )
    scale_cooldown_hours: float = Field(24, ge=1, le=24 * 30, description="Hours between two scaling steps.")


class VariantSpec(_Spec):
    """One variant: its name and the value of the variable under test."""

    name: str = Field(..., min_length=1, max_length=100, description="Variant name, e.g. 'Lifestyle photo'.")
    creative: dict[str, Any] | None = Field(
        None, description="variable creative: the creative (as launch_campaign's creatives take one)."
    )
    targeting: dict[str, Any] | None = Field(None, description="variable audience: the ad set targeting.")
    placement: dict[str, Any] | None = Field(
        None, description="variable placement: publisher_platforms and *_positions, merged into the targeting."
    )
    optimization_goal: str | None = Field(None, description="variable optimization_goal: the ad set's goal.")
    daily_budget: int | None = Field(
        None,
        json_schema_extra=MONEY_UNIT,
        gt=0,
        description="variable budget: this variant's daily budget in minor units.",
    )


_VALUE_OF = {
    "creative": "creative",
    "audience": "targeting",
    "placement": "placement",
    "optimization_goal": "optimization_goal",
    "budget": "daily_budget",
}


class LaunchExperimentArgs(OpArgs):
    """Launch an A/B test from a plan: every variant built with launch_campaign, in a Facebook split test when it fits.

    Give the plan as arguments or as plan_file (JSON or YAML with the same fields; arguments given beside it win).
    Everything is created PAUSED unless status is ACTIVE (one confirmation). The same plan twice creates nothing twice.
    """

    plan_file: str | None = Field(
        None,
        description="A JSON or YAML file holding the plan (the fields below); relative "
        "paths in it (images, videos) are read from the plan's own folder.",
        json_schema_extra={ARGUMENTS_FILE_MARK: True},
    )
    name: str = Field(..., min_length=1, max_length=200, description="Experiment name (unique in the workspace).")
    hypothesis: str = Field(
        ...,
        min_length=3,
        max_length=1000,
        description="What you expect, e.g. 'A lifestyle photo lowers cost per purchase'.",
    )
    variable: Literal["creative", "audience", "placement", "optimization_goal", "budget"] = Field(
        ..., description="The one thing the variants differ in."
    )
    metric: Literal["cost_per_result", "ctr", "roas"] = Field(
        "cost_per_result", description="The primary metric the winner is chosen on."
    )
    campaign: dict[str, Any] = Field(
        ...,
        description="Shared campaign fields: objective (and special_ad_categories); no budget (each variant has its own).",
    )
    adset: dict[str, Any] = Field(
        ..., description="Shared ad set fields: targeting, optimization_goal, promoted_object, …"
    )
    creative: dict[str, Any] | None = Field(None, description="The shared creative (all variables but creative).")
    variants: list[VariantSpec] = Field(
        ...,
        description="2-10 variants (split tests take at most 5).",
        json_schema_extra={"minItems": 2, "maxItems": MAX_VARIANTS},
    )
    daily_budget: int = Field(
        ...,
        json_schema_extra=MONEY_UNIT,
        gt=0,
        description="Daily budget of each variant in minor units (cents): equal budgets keep the test fair.",
    )
    duration_days: int = Field(
        7,
        description=f"How long the test runs (1-{SPLIT_TEST_MAX_DAYS} days; 7 is a good default).",
        json_schema_extra={"minimum": 1, "maximum": SPLIT_TEST_MAX_DAYS},
    )
    rules: ExperimentRules = Field(default_factory=ExperimentRules, description="Stop, winner and scaling rules.")
    split_test: Literal["auto", "yes", "no"] = Field(
        "auto",
        description="auto: a Facebook split test when the account has a business and ≤5 variants; yes: require it; no: plain variants.",
    )
    status: Literal["PAUSED", "ACTIVE"] = Field("PAUSED", description="PAUSED (default) or ACTIVE (one confirmation).")
    ad_account_id: str | None = Field(None, description="Ad account id (act_123…); default: the selected one.")
    page_id: str | None = Field(None, description="The page the ads speak for; default the selected page.")

    @field_validator("duration_days")
    @classmethod
    def _duration_within_the_split_test_limit(cls, value: int) -> int:
        if not 1 <= value <= SPLIT_TEST_MAX_DAYS:
            raise ValueError(
                f"duration_days is {value}: a test runs 1 to {SPLIT_TEST_MAX_DAYS} days (a Facebook split test lasts at most "
                f"{SPLIT_TEST_MAX_DAYS}); for a longer look, run a second test after this one"
            )
        return value

    @field_validator("variants")
    @classmethod
    def _two_to_ten_variants(cls, value: list[VariantSpec]) -> list[VariantSpec]:
        if len(value) < 2:
            raise ValueError(
                f"a test compares at least 2 variants, and this plan has {len(value)}: add the variant to compare against"
            )
        if len(value) > MAX_VARIANTS:
            raise ValueError(
                f"a test compares at most {MAX_VARIANTS} variants, and this plan has {len(value)}: split it into smaller tests"
            )
        return value

    @field_validator("campaign")
    @classmethod
    def _campaign_without_budget(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value.get("objective"):
            raise ValueError("campaign.objective is required (OUTCOME_SALES, OUTCOME_TRAFFIC, …)")
        budgets = [k for k in ("daily_budget", "lifetime_budget") if value.get(k)]
        if budgets:
            raise ValueError(
                f"campaign.{budgets[0]}: budgets belong to the variants here (daily_budget, equal for all)"
            )
        return value

    @model_validator(mode="after")
    def _variants_differ_in_the_variable(self) -> LaunchExperimentArgs:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variants: two variants share a name; name each one differently")
        wanted = _VALUE_OF[self.variable]
        for variant in self.variants:
            given = [k for k in _VALUE_OF.values() if getattr(variant, k) is not None]
            if wanted not in given:
                raise ValueError(
                    f"variant {variant.name!r} has no {wanted} (the variable under test is {self.variable})"
                )
            others = [k for k in given if k != wanted]
            if others:
                raise ValueError(
                    f"variant {variant.name!r} also sets {', '.join(others)}: a test changes one variable only"
                )
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


def variant_launch(
    args: LaunchExperimentArgs, variant: VariantSpec, account_id: str, page_id: str | None
) -> dict[str, Any]:
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
    creative = dict((variant.creative if args.variable == "creative" else args.creative) or {})
    creative.setdefault("name", label)
    launch = {
        "campaign": {**args.campaign, "name": label},
        "adset": adset,
        "creatives": [creative],
        "status": args.status,
        "ad_account_id": account_id,
    }
    if page_id:
        launch["page_id"] = page_id
    return launch


# ---------------------------------------------------------------------------------------------------------------
# Statistics (pure): always-valid comparisons on daily numbers. docs/experiments.md has the math in plain words, its
# references and the calibration (bench/experiments.py) that measures the error rates these choices give.
# ---------------------------------------------------------------------------------------------------------------

# Assumptions, each stated to the person where it matters. The first is a floor the data can only raise:
# sd (log scale) of a variant's own day-to-day rate factor beyond chance, a floor under what the data show. Rates per
# unit spent also move with the day's price of impressions, so they get more.
ASSUMED_DAY_SPREAD = {"ctr": 0.05, "cost_per_result": 0.10, "roas": 0.10}
ASSUMED_SPREAD_DAYS = 3  # that assumption weighs as much as this many days of evidence
SPREAD_CONFIDENCE = 0.8  # the spread used is the upper 80 % bound of its estimate: a low estimate would crown noise
SPREAD_MIN_DAY_RESULTS = 5  # a day enters the spread estimate when both variants of a pair have this many results
ORDER_VALUE_CV2 = 1.0  # squared coefficient of variation of one order's value (ROAS): one order ≈ two results of noise
PLANNED_POWER = 0.8  # a plan is sized so that a true min_lift is found with this chance
DEFAULT_TAU2 = 0.01  # the mixture's width for tests launched before plans were sized (lifts around 10 %)


@dataclass(frozen=True)
class Design:
    """What a test fixes before it sees data: its certainty, how many variants share the error, the mixture's width."""

    certainty: float = 0.95
    variants: int = 2
    tau2: float = DEFAULT_TAU2
    assumed_spread: float = ASSUMED_DAY_SPREAD["ctr"]

    @property
    def pair_alpha(self) -> float:
        """The error each pair of variants may make: 1 − certainty shared equally by every pair (Bonferroni)."""
        return (1 - self.certainty) / (self.variants * (self.variants - 1) / 2)


def half_width(variance: Any, tau2: float, alpha: float) -> Any:
    """Half the width (log scale) of the mixture SPRT's confidence sequence around a normal estimate with this variance:
    it holds at every look at once, with probability 1 − alpha (Robbins 1970; Johari, Pekelis & Walsh 2017)."""
    import numpy

    variance = numpy.asarray(variance, dtype=float)
    return numpy.sqrt(
        variance * (variance + tau2) / tau2 * (2 * math.log(1 / alpha) + numpy.log((variance + tau2) / variance))
    )


def _mixture_cost(ratio: Any, alpha: float) -> Any:
    import numpy

    return (1 + ratio) / ratio * (2 * math.log(1 / alpha) + numpy.log1p(ratio))


def best_tau2(variance: float, alpha: float) -> float:
    """The mixture width that makes the confidence sequence narrowest when the estimate's variance is `variance`
    (the plan's last day): τ² = r·variance for the r that minimizes (1 + r)/r · (2 ln(1/α) + ln(1 + r))."""
    import numpy

    ratios = numpy.geomspace(0.1, 1000, 400)
    return float(ratios[numpy.argmin(_mixture_cost(ratios, alpha))] * variance)


@dataclass
class Evidence:
    """Per variant (the last axis): its log rate and that estimate's variance; and the day-to-day spread used (squared)."""

    log_rate: Any
    variance: Any
    spread2: Any


def weigh(exposure: Any, count: Any, effective: Any, assumed_spread: float) -> Evidence:
    """The evidence from daily numbers shaped (…, variants, days): what each variant was exposed to (impressions or
    spend), its count (clicks, results or value) and its count in results-worth of noise (`effective`). A variant's
    rate is its total count over its total exposure; its variance is chance (1 / results) plus the day-to-day spread
    weighted by how its exposure fell over the days: the day, not the impression, is the unit of that spread."""
    import numpy

    exposure, count, effective = (numpy.asarray(a, dtype=float) for a in (exposure, count, effective))
    total_exposure, total_count, total_effective = exposure.sum(-1), count.sum(-1), effective.sum(-1)
    unit = numpy.where(total_effective > 0, total_count / numpy.maximum(total_effective, 1e-300), 1.0)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        log_rate = numpy.where(total_exposure > 0, numpy.log((total_count + 0.5 * unit) / total_exposure), numpy.nan)
        shares2 = ((exposure / total_exposure[..., None]) ** 2).sum(-1)
    spread2 = day_spread2(exposure, count, effective, unit, assumed_spread)
    variance = 1 / (total_effective + 0.5) + spread2[..., None] * numpy.nan_to_num(shares2)
    return Evidence(log_rate, variance, spread2)


def day_spread2(exposure: Any, count: Any, effective: Any, unit: Any, assumed_spread: float) -> Any:
    """The variance (log scale) of a variant's own day-to-day factor: measured from how much each pair's daily log
    ratio moves beyond what chance explains, pooled with the assumed spread (worth ASSUMED_SPREAD_DAYS days), and
    never below it. A shift all variants share on a day (a weekend, the auction) cancels in the ratio and is not
    counted, as it does not blur a comparison."""
    import numpy

    with numpy.errstate(divide="ignore", invalid="ignore"):
        daily = numpy.where(
            exposure > 0, numpy.log((count + 0.5 * unit[..., None]) / numpy.maximum(exposure, 1e-300)), 0.0
        )
    chance = 1 / (effective + 0.5)
    usable = (effective >= SPREAD_MIN_DAY_RESULTS) & (exposure > 0)
    variants = exposure.shape[-2]
    excess = numpy.zeros(exposure.shape[:-2])
    freedom = numpy.zeros(exposure.shape[:-2])
    for i in range(variants):
        for j in range(i + 1, variants):
            both = usable[..., i, :] & usable[..., j, :]
            days = both.sum(-1)
            gap = numpy.where(both, daily[..., i, :] - daily[..., j, :], 0.0)
            mean = gap.sum(-1) / numpy.maximum(days, 1)
            moved = (numpy.where(both, gap - mean[..., None], 0.0) ** 2).sum(-1)
            expected = (
                numpy.where(both, chance[..., i, :] + chance[..., j, :], 0.0).sum(-1)
                * numpy.maximum(days - 1, 0)
                / numpy.maximum(days, 1)
            )
            excess += moved - expected
            freedom += numpy.maximum(days - 1, 0)
    measured = numpy.where(freedom > 0, excess / (2 * numpy.maximum(freedom, 1)), 0.0)
    days_of_evidence = (
        freedom * 2 / variants
    )  # pairs share their variants: K − 1 independent gaps a day, not K(K − 1)/2
    pooled = (ASSUMED_SPREAD_DAYS * assumed_spread**2 + days_of_evidence * measured) / (
        ASSUMED_SPREAD_DAYS + days_of_evidence
    )
    return numpy.maximum(pooled * spread_inflation(days_of_evidence), assumed_spread**2)


def spread_inflation(days_of_evidence: Any) -> Any:
    """How much the pooled spread estimate is raised to its upper SPREAD_CONFIDENCE bound: ν / χ²(1 − confidence, ν)
    for its ν degrees of freedom (the assumption's and the data's; Wilson–Hilferty's approximation of the quantile)."""
    from statistics import NormalDist

    import numpy

    freedom = ASSUMED_SPREAD_DAYS + numpy.asarray(days_of_evidence, dtype=float)
    z = NormalDist().inv_cdf(1 - SPREAD_CONFIDENCE)
    quantile = freedom * (1 - 2 / (9 * freedom) + z * numpy.sqrt(2 / (9 * freedom))) ** 3
    return freedom / quantile


def pair_gap(evidence: Evidence, design: Design) -> tuple[Any, Any]:
    """(how much better each variant's rate is than each other's, log scale: [..., i, j] = i over j; the half-width of
    its confidence sequence at the design's pair level)."""
    gap = evidence.log_rate[..., :, None] - evidence.log_rate[..., None, :]
    variance = evidence.variance[..., :, None] + evidence.variance[..., None, :]
    return gap, half_width(variance, design.tau2, design.pair_alpha)


def verdicts(evidence: Evidence, running: Any, ready: Any, design: Design) -> tuple[Any, Any]:
    """What the rule concludes at one look, for arrays shaped (…, variants): the winner's index (−1 for none) — the
    running variant whose confidence sequence against every other running one lies above zero — and which variants
    to stop — running ones that another running variant beats that way, while 3 or more run (at most all but two,
    the worst first). Nothing is concluded where `ready` (…) is false."""
    import numpy

    running = numpy.asarray(running, dtype=bool)
    ready = numpy.asarray(ready, dtype=bool)
    gap, width = pair_gap(evidence, design)
    with numpy.errstate(invalid="ignore"):
        beats = (gap - width) > 0  # nan (a variant without delivery) beats nothing
    variants = running.shape[-1]
    idle = ~running[..., None, :] | numpy.eye(variants, dtype=bool)
    wins = running & ready[..., None] & (beats | idle).all(-1)
    winner = numpy.where(wins.any(-1), wins.argmax(-1), -1)
    beaten = (beats & running[..., :, None]).any(-2) & running & ready[..., None] & (winner < 0)[..., None]
    room = numpy.maximum(running.sum(-1) - 2, 0)
    worst_first = numpy.argsort(numpy.where(beaten, evidence.log_rate, numpy.inf), axis=-1).argsort(axis=-1)
    stops = beaten & (worst_first < room[..., None])
    return winner, stops


def metric_series(
    metric: str, *, impressions: Any, spend: Any, clicks: Any, results: Any, value: Any
) -> tuple[Any, Any, Any]:
    """(exposure, count, effective count) of a metric from delivery numbers (numbers or arrays): CTR is clicks per
    impression; cost per result compares results per unit spent (more is a lower cost); ROAS compares value per unit
    spent, whose noise is that of results widened by the spread of order values."""
    if metric == "ctr":
        return impressions, clicks, clicks
    if metric == "roas":
        return spend, value, results / (1 + ORDER_VALUE_CV2)
    return spend, results, results


# ---------------------------------------------------------------------------------------------------------------
# Sizing a plan (pure): what a test can find at its budget and duration
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """What one impression brings, from the account's recent delivery or stated defaults (money in minor units)."""

    cpm: float  # cost of 1,000 impressions
    ctr: float  # clicks per impression
    results_per_impression: float
    source: str  # where the numbers come from, for the person


def effective_per_day(metric: str, baseline: Baseline, daily_budget: int) -> float:
    """A variant's expected daily count in results-worth of noise: clicks (CTR), results (cost per result) or results
    discounted for the spread of order values (ROAS)."""
    impressions = daily_budget * 1000 / baseline.cpm if baseline.cpm > 0 else 0.0
    if metric == "ctr":
        return impressions * baseline.ctr
    results = impressions * baseline.results_per_impression
    return results / (1 + ORDER_VALUE_CV2) if metric == "roas" else results


def horizon_variance(per_day: float, days: float, spread: float) -> float:
    """The variance of a two-variant log ratio after `days` days of `per_day` effective results each, with the spread
    raised as the test will raise it after that many days."""
    if per_day <= 0 or days <= 0:
        return math.inf
    return 2 * (1 / (per_day * days) + spread**2 * float(spread_inflation(days - 1)) / days)


def detectable_lift(metric: str, per_day: float, days: float, certainty: float, variants: int) -> tuple[float, float]:
    """(the smallest true lift the test finds with PLANNED_POWER chance by its last day, the mixture width τ² that
    makes it smallest). The last-day approximation is conservative: a test can also stop earlier."""
    from statistics import NormalDist

    variance = horizon_variance(per_day, days, ASSUMED_DAY_SPREAD[metric])
    if not math.isfinite(variance):
        return math.inf, DEFAULT_TAU2
    alpha = Design(certainty, variants).pair_alpha
    tau2 = best_tau2(variance, alpha)
    edge = float(half_width(variance, tau2, alpha)) + NormalDist().inv_cdf(PLANNED_POWER) * math.sqrt(variance)
    return math.expm1(edge), tau2


@dataclass
class Sizing:
    """What a plan can find: the detectable lift at its budget and duration, and what finding min_lift would take."""

    lift: float  # detectable at the plan's budget and duration
    min_lift: float  # what the plan wants to detect
    tau2: float
    per_day: float  # effective results per variant per day
    planned: float  # effective results per variant over the duration
    days_needed: int | None  # for min_lift at the plan's budget (None: not within SPLIT_TEST_MAX_DAYS)
    budget_needed: int | None  # for min_lift within the plan's duration (None: no budget reaches it)
    longer: tuple[int, int] | None  # when no budget reaches it in time: the shortest (days, daily budget) that does
    baseline: Baseline

    @property
    def enough(self) -> bool:
        return self.lift <= self.min_lift


def _budget_for(
    metric: str, baseline: Baseline, days: int, min_lift: float, certainty: float, variants: int, start: int
) -> int | None:
    """The smallest daily budget (to 1 %) at which a plan of `days` days detects min_lift; None if none does."""

    def finds(budget: int) -> bool:
        return (
            detectable_lift(metric, effective_per_day(metric, baseline, budget), days, certainty, variants)[0]
            <= min_lift
        )

    low, high = 1, max(start, 1) * 10_000
    if not finds(high):
        return None
    while high - low > max(1, low // 100):
        middle = (low + high) // 2
        low, high = (low, middle) if finds(middle) else (middle, high)
    return high


def size_plan(
    metric: str, baseline: Baseline, daily_budget: int, days: int, min_lift: float, certainty: float, variants: int
) -> Sizing:
    """Size a plan: what it can detect, and the duration or daily budget it would need to detect min_lift."""
    per_day = effective_per_day(metric, baseline, daily_budget)
    lift, tau2 = detectable_lift(metric, per_day, days, certainty, variants)
    days_needed = next(
        (
            d
            for d in range(1, SPLIT_TEST_MAX_DAYS + 1)
            if detectable_lift(metric, per_day, d, certainty, variants)[0] <= min_lift
        ),
        None,
    )
    budget_needed = _budget_for(metric, baseline, days, min_lift, certainty, variants, daily_budget)
    longer = None
    if budget_needed is None and days_needed is None:
        for more in range(days + 1, SPLIT_TEST_MAX_DAYS + 1):
            budget = _budget_for(metric, baseline, more, min_lift, certainty, variants, daily_budget)
            if budget is not None:
                longer = (more, budget)
                break
    return Sizing(lift, min_lift, tau2, per_day, per_day * days, days_needed, budget_needed, longer, baseline)


@dataclass
class VariantNumbers:
    """What a variant delivered (money in minor units): its totals, and per day (oldest first) the same numbers with
    `name` holding the date."""

    name: str
    spend: int = 0
    impressions: int = 0
    clicks: int = 0
    results: int = 0
    value: int = 0  # purchase value, for ROAS
    daily: list[VariantNumbers] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# Reading and writing
# ---------------------------------------------------------------------------------------------------------------


def _session_needed(what: str) -> ValidationError:
    return ValidationError(
        f"Experiments need a workspace session ({what})",
        fix="Call it through Ad Monster (chat, MCP, API or a job), not as a bare handler",
    )


def _ops(ctx: OpContext) -> OpRunner:
    if ctx.ops is None:
        raise _session_needed("the op runner")
    return ctx.ops


def _gate(ctx: OpContext) -> GatedRunner:
    if ctx.gate is None:
        raise _session_needed("the safety gate")
    return ctx.gate


def _journal(ctx: OpContext) -> LaunchJournal:
    if ctx.journal is None:
        raise _session_needed("the launch journal")
    return ctx.journal


def _experiments(ctx: OpContext) -> ExperimentRecords:
    if ctx.experiments is None:
        raise ValidationError(
            "Experiments are kept per workspace and need a workspace session",
            fix="Call it through Ad Monster (chat, MCP, API or a job), not as a bare handler",
        )
    return ctx.experiments


async def _now(ctx: OpContext) -> datetime:
    _experiments(ctx)  # experiments need a workspace session: say so before anything else
    return await ctx.now()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def _get_record(ctx: OpContext, experiment_id: int) -> ExperimentRecord:
    record = await _experiments(ctx).get_experiment(experiment_id)
    if record is None:
        raise ValidationError(
            f"Experiment #{experiment_id} does not exist in this workspace",
            fix="list_experiments shows the experiments and their ids",
            blame_field="experiment_id",
        )
    return record


def _result_kind(record_or_plan: dict[str, Any]) -> str:
    objective = str((record_or_plan.get("campaign") or {}).get("objective", "")).upper()
    return RESULT_OF_OBJECTIVE.get(objective, "purchases")


async def _numbers(ctx: OpContext, record: ExperimentRecord, now: datetime) -> list[VariantNumbers]:
    """Every variant's delivery since the start, per day of the ad account (Facebook's days), from one insights read
    of the variants' campaigns."""
    kind = _result_kind(record.plan)
    account = await ctx.graph.account_info(record.ad_account_id)
    zone = ZoneInfo(account.timezone_name) if account.timezone_name else UTC
    start = _parse(record.started_at).astimezone(zone).date()
    campaign_ids = [v["campaign_id"] for v in record.variants]
    answer = await _ops(ctx).plan(
        "get_insights",
        {
            "object_id": record.ad_account_id,
            "level": "campaign",
            "time_increment": 1,
            "limit": 1,
            "since": start.isoformat(),
            "until": max(now.astimezone(zone).date(), start).isoformat(),
            "filtering": [{"field": "campaign.id", "operator": "IN", "value": campaign_ids}],
        },
    )
    if not isinstance(answer, OpResult) or not answer.ok:
        said = getattr(answer, "text", "") or "no answer"
        raise FacebookError(f"Could not read the experiment's numbers: {said.splitlines()[0]}")
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in (answer.data or {}).get("rows") or []:
        rows.setdefault(str(row.get("campaign_id")), []).append(row)
    out = []
    for variant in record.variants:
        daily = [
            _day_numbers(str(row.get("date_start")), row, kind)
            for row in sorted(rows.get(variant["campaign_id"], []), key=lambda r: str(r.get("date_start")))
        ]
        out.append(
            VariantNumbers(
                variant["name"],
                spend=sum(d.spend for d in daily),
                impressions=sum(d.impressions for d in daily),
                clicks=sum(d.clicks for d in daily),
                results=sum(d.results for d in daily),
                value=sum(d.value for d in daily),
                daily=daily,
            )
        )
    return out


def _day_numbers(day: str, row: dict[str, Any], kind: str) -> VariantNumbers:
    number = lambda key: int(row.get(key) or 0)  # noqa: E731
    return VariantNumbers(
        day,
        spend=number("spend_minor"),
        impressions=number("impressions"),
        clicks=number("clicks"),
        results=number(kind),
        value=number("purchase_value_minor"),
    )


def _rules(record: ExperimentRecord) -> ExperimentRules:
    """The plan's rules (a rule an earlier version kept, such as stop_below, no longer applies and is left out)."""
    kept = {k: v for k, v in (record.plan.get("rules") or {}).items() if k in ExperimentRules.model_fields}
    return ExperimentRules(**kept)


def _metric(record_or_plan: dict[str, Any]) -> str:
    return str(record_or_plan.get("metric") or "cost_per_result")


def _design(record: ExperimentRecord) -> Design:
    metric = _metric(record.plan)
    sizing = record.plan.get("sizing") or {}
    return Design(
        _rules(record).certainty,
        len(record.variants),
        float(sizing.get("tau2") or DEFAULT_TAU2),
        ASSUMED_DAY_SPREAD[metric],
    )


def _arrays(metric: str, numbers: list[VariantNumbers]) -> tuple[Any, Any, Any]:
    """(exposure, count, effective) per variant and day, the days aligned across variants (a day without delivery is 0)."""
    import numpy

    days = sorted({d.name for n in numbers for d in n.daily})
    index = {day: i for i, day in enumerate(days)}
    columns = {
        key: numpy.zeros((len(numbers), max(1, len(days))))
        for key in ("impressions", "spend", "clicks", "results", "value")
    }
    for row, n in enumerate(numbers):
        for d in n.daily:
            for key, table in columns.items():
                table[row, index[d.name]] = getattr(d, key)
    return metric_series(metric, **columns)


@dataclass
class VariantStats:
    """One variant as a person reads it: its metric, an interval valid at every check, and whether it has enough data."""

    name: str
    numbers: VariantNumbers
    metric: float | None  # cost per result (minor units), CTR (percent) or ROAS (×)
    low: float | None
    high: float | None
    enough: bool  # met min_impressions and min_results


@dataclass
class Comparison:
    """How much better `name` does than `against` on the metric's own terms (relative rate: clicks per impression,
    results or revenue per unit spent), with the interval the test holds at every check."""

    name: str
    against: str
    lift: float
    low: float
    high: float

    @property
    def settled(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass
class Assessment:
    """Everything one check concludes about an experiment."""

    stats: list[VariantStats]
    comparisons: list[Comparison]  # the leader against every other variant that delivered
    leader: str | None  # the variant with the best rate so far (None before any delivery)
    winner: str | None
    stops: list[str]
    ready: bool  # every running variant has enough data for a decision
    spread: float  # the day-to-day spread used (sd of a variant's daily factor, log scale)
    design: Design


def _shown(
    metric: str, kind: str, n: VariantNumbers, log_rate: float, width: float
) -> tuple[float | None, float | None, float | None]:
    """The metric as people read it with its interval (from the log rate ± the half-width)."""
    if not n.impressions or not math.isfinite(log_rate):
        return None, None, None
    low, high = math.exp(log_rate - width), math.exp(log_rate + width)
    if metric == "ctr":
        return n.clicks / n.impressions * 100, low * 100, high * 100
    if metric == "roas":
        return (n.value / n.spend if n.spend else None), low, high
    per = 1000 if kind == "impressions" else 1
    return (n.spend / n.results * per if n.results else None), per / high, per / low


def assess(record: ExperimentRecord, numbers: list[VariantNumbers]) -> Assessment:
    """The rule applied once to the numbers so far (pure: the same numbers give the same answer)."""
    import numpy

    metric, kind, rules, design = _metric(record.plan), _result_kind(record.plan), _rules(record), _design(record)
    evidence = weigh(*_arrays(metric, numbers), design.assumed_spread)
    running = numpy.array([v.get("state", "running") == "running" for v in record.variants])
    enough = [
        n.impressions >= rules.min_impressions and (n.clicks if metric == "ctr" else n.results) >= rules.min_results
        for n in numbers
    ]
    ready = all(e for e, r in zip(enough, running) if r)
    winner, stops = verdicts(evidence, running, numpy.array(ready), design)
    gap, width = pair_gap(evidence, design)
    own_width = half_width(evidence.variance, design.tau2, design.pair_alpha)
    stats = [
        VariantStats(n.name, n, *_shown(metric, kind, n, float(evidence.log_rate[i]), float(own_width[i])), enough[i])
        for i, n in enumerate(numbers)
    ]
    candidates = [
        i for i in range(len(numbers)) if numpy.isfinite(evidence.log_rate[i])
    ]  # every variant that delivered
    leader = max(candidates, key=lambda i: evidence.log_rate[i]) if candidates else None
    comparisons = (
        []
        if leader is None
        else [
            Comparison(
                numbers[leader].name,
                numbers[j].name,
                math.expm1(gap[leader, j]),
                math.expm1(gap[leader, j] - width[leader, j]),
                math.expm1(gap[leader, j] + width[leader, j]),
            )
            for j in candidates
            if j != leader
        ]
    )
    return Assessment(
        stats,
        comparisons,
        numbers[leader].name if leader is not None else None,
        numbers[int(winner)].name if winner >= 0 else None,
        [numbers[i].name for i in numpy.flatnonzero(stops)],
        ready,
        math.sqrt(float(evidence.spread2)),
        design,
    )


async def _assess(ctx: OpContext, record: ExperimentRecord, now: datetime) -> Assessment:
    return assess(record, await _numbers(ctx, record, now))


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


def _percent(value: float) -> str:
    """A change in whole percent, rounded (never floored), signed with a true minus."""
    rounded = round(value * 100)
    return f"{'+' if rounded > 0 else '−' if rounded < 0 else ''}{abs(rounded)}%"


def comparison_words(metric: str, kind: str, comparison: Comparison) -> str:
    """A comparison as a person says it: "B's CTR is 18% higher than A's (interval +6% to +31%)"; for cost per result,
    more results per unit spent reads as a lower cost."""
    lift, low, high = comparison.lift, comparison.low, comparison.high
    if metric == "cost_per_result":  # the cost ratio is 1 / (1 + lift)
        lift, low, high = (1 / (1 + x) - 1 for x in (lift, high, low))
    direction = "higher" if lift >= 0 else "lower"
    name = metric_name(metric, kind)
    return (
        f"{comparison.name}'s {name} is {abs(round(lift * 100))}% {direction} than {comparison.against}'s "
        f"(interval {_percent(low)} to {_percent(high)})"
    )


def comparison_line(record: ExperimentRecord, comparison: Comparison) -> str:
    verdict = (
        f"{comparison.name} is better"
        if comparison.low > 0
        else f"{comparison.against} is better"
        if comparison.high < 0
        else "not clear yet (the interval still includes no difference)"
    )
    return f"- {comparison_words(_metric(record.plan), _result_kind(record.plan), comparison)}: {verdict}"


def stats_lines(record: ExperimentRecord, assessment: Assessment) -> list[str]:
    metric, kind, currency = _metric(record.plan), _result_kind(record.plan), record.currency
    states = {v["name"]: v.get("state", "running") for v in record.variants}
    lines = []
    for s in assessment.stats:
        n = s.numbers
        if not n.impressions:
            lines.append(f"- {s.name} [{states.get(s.name, 'running')}]: no delivery yet")
            continue
        interval = (
            f" (interval {metric_text(metric, s.low, currency, kind)} to {metric_text(metric, s.high, currency, kind)})"
            if s.low is not None and s.high is not None
            else ""
        )
        result_word = RESULT_WORDS.get(kind, "result")
        lines.append(
            f"- {s.name} [{states.get(s.name, 'running')}]: {metric_name(metric, kind)} {metric_text(metric, s.metric, currency, kind)}"
            f"{interval}; spent {format_money(n.spend, currency)}, {n.impressions:,} impressions, {n.clicks:,} clicks, "
            f"{n.results:,} {result_word if n.results == 1 else _plural(result_word)}{'' if s.enough else ' (not enough data yet)'}"
        )
    lines += [comparison_line(record, c) for c in assessment.comparisons]
    return lines


def _plural(word: str) -> str:
    return word if word.endswith("impressions") else word + "s"


def progress_line(record: ExperimentRecord, assessment: Assessment) -> str | None:
    """How far the test is toward the sample it was sized for, and how much day-to-day noise it allows for."""
    sizing = record.plan.get("sizing") or {}
    planned = sizing.get("planned")
    metric, kind = _metric(record.plan), _result_kind(record.plan)
    unit = "clicks" if metric == "ctr" else _plural(RESULT_WORDS.get(kind, "result"))
    running = [
        s
        for s in assessment.stats
        if any(v["name"] == s.name and v.get("state", "running") == "running" for v in record.variants)
    ]
    if not planned or not running:
        return None
    have = min((s.numbers.clicks if metric == "ctr" else s.numbers.results) for s in running)
    target = round(planned * (1 + ORDER_VALUE_CV2) if metric == "roas" else planned)
    sample = (
        f"{have:,} of the {target:,} {unit} per variant this test was sized for ({have / target:.0%})"
        if have < target
        else f"{have:,} {unit} per variant, past the {target:,} this test was sized for"
    )
    return (
        f"Sample: {sample}; it was sized to find a lift of {sizing.get('lift', 0):.0%} or more. Day-to-day noise allowed "
        f"for: {assessment.spread:.0%} (never less than {assessment.design.assumed_spread:.0%}; more while few days are in)."
    )


class VariantStatsData(BaseModel):
    """One variant's numbers so far and its metric with an interval valid at every check."""

    name: str
    metric: float | None = Field(
        description="Cost per result (minor units), CTR (percent) or ROAS (×); null before it can be computed."
    )
    low: float | None = Field(description="The interval's low end; null before any delivery.")
    high: float | None
    enough: bool = Field(description="Met rules.min_impressions and rules.min_results.")
    spend_minor: int
    impressions: int
    clicks: int
    results: int
    value_minor: int = Field(description="Purchase value (for ROAS), minor units.")


class ComparisonData(BaseModel):
    """The leader against one other variant: relative lift of its rate with the interval the test holds."""

    name: str
    against: str
    lift: float
    low: float
    high: float
    settled: bool = Field(description="The interval excludes 0: the difference is decided at the plan's certainty.")


class ExperimentStats(BaseModel):
    """One check's statistics (_stats_data)."""

    variants: list[VariantStatsData]
    comparisons: list[ComparisonData]
    leader: str | None = Field(description="The variant with the best rate so far; null before any delivery.")
    ready: bool = Field(description="Every running variant has enough data for a decision.")
    day_spread: float = Field(description="The day-to-day spread used (sd of a variant's daily factor, log scale).")
    certainty: float


def _stats_data(assessment: Assessment) -> dict[str, Any]:
    return {
        "variants": [
            {
                "name": s.name,
                "metric": s.metric,
                "low": s.low,
                "high": s.high,
                "enough": s.enough,
                "spend_minor": s.numbers.spend,
                "impressions": s.numbers.impressions,
                "clicks": s.numbers.clicks,
                "results": s.numbers.results,
                "value_minor": s.numbers.value,
            }
            for s in assessment.stats
        ],
        "comparisons": [
            {
                "name": c.name,
                "against": c.against,
                "lift": round(c.lift, 4),
                "low": round(c.low, 4),
                "high": round(c.high, 4),
                "settled": c.settled,
            }
            for c in assessment.comparisons
        ],
        "leader": assessment.leader,
        "ready": assessment.ready,
        "day_spread": round(assessment.spread, 4),
        "certainty": assessment.design.certainty,
    }


# ---------------------------------------------------------------------------------------------------------------
# Decisions (pure): what the rules do with an assessment
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Decision:
    winner: str | None = None
    stop: list[str] | None = None  # variants to pause for being clearly worse
    time_up: bool = False
    reason: str = ""


def _against(assessment: Assessment, record: ExperimentRecord, name: str) -> str:
    metric, kind = _metric(record.plan), _result_kind(record.plan)
    return "; ".join(comparison_words(metric, kind, c) for c in assessment.comparisons if c.name == name)


def decide(record: ExperimentRecord, assessment: Assessment, now: datetime) -> Decision:
    """The rules applied once: a winner when the test is sure enough that one variant beats every other; losers that
    another variant beats stopped while 3+ run; at the end of the duration either the winner or no winner."""
    certainty = f"{assessment.design.certainty:.0%}"
    time_up = now >= _parse(record.ends_at)
    if assessment.winner:
        return Decision(
            winner=assessment.winner,
            time_up=time_up,
            reason=f"{certainty} sure it beats every other variant: {_against(assessment, record, assessment.winner)}",
        )
    if time_up:
        best = (
            f"; the closest: {_against(assessment, record, assessment.leader)}"
            if assessment.leader and assessment.comparisons
            else ""
        )
        return Decision(
            time_up=True, reason=f"time is up and no variant was {certainty} sure to beat every other{best}"
        )
    if assessment.stops:
        metric, kind = _metric(record.plan), _result_kind(record.plan)
        reasons = [
            f"{c.against} is clearly worse: {comparison_words(metric, kind, c)}"
            for c in assessment.comparisons
            if c.against in assessment.stops
        ]
        return Decision(
            stop=assessment.stops, reason="; ".join(reasons) or f"{', '.join(assessment.stops)} clearly worse"
        )
    return Decision()


def _when(text: str) -> str:
    return _parse(text).astimezone(UTC).strftime("%a %d %b %Y %H:%M UTC")


def next_steps(record: ExperimentRecord, assessment: Assessment, now: datetime) -> str:
    """What the hourly check will do next, in plain words."""
    rules = _rules(record)
    if record.status != "running":
        if record.winner and rules.scale_pct and not record.outcome.get("scaling_done"):
            return (
                f"{record.winner} won; the hourly check raises its daily budget by {rules.scale_pct}% at most every "
                f"{rules.scale_cooldown_hours:g} h, up to the cap and the workspace guardrails."
            )
        return "Nothing: the experiment is over."
    end = _when(record.ends_at)
    if not any(s.numbers.impressions for s in assessment.stats):
        return (
            f"Next hourly check: nothing to decide yet, no variant has delivered (ads go to review first, or the test is "
            f"PAUSED). The test ends {end}."
        )
    running = [
        s
        for s in assessment.stats
        if any(v["name"] == s.name and v.get("state", "running") == "running" for v in record.variants)
    ]
    waiting = [s.name for s in running if not s.enough]
    parts = []
    if waiting:
        parts.append(
            f"waiting for data from {', '.join(waiting)} (each needs {rules.min_impressions:,} impressions and "
            f"{rules.min_results} {'clicks' if _metric(record.plan) == 'ctr' else 'results'} before any decision)"
        )
    certainty = f"{assessment.design.certainty:.0%}"
    parts.append(
        f"a variant wins once it beats every other with {certainty} certainty (its interval against each lies above no difference)"
        + (f"; {assessment.leader} leads so far" if assessment.leader else "")
    )
    if len(running) > 2:
        parts.append("a variant that another beats that clearly is paused")
    parts.append(f"the test ends {end}: without a winner by then, every variant is paused and none is declared")
    return "Next hourly check: " + "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------------------------
# Launch
# ---------------------------------------------------------------------------------------------------------------


class ExperimentVariant(BaseModel):
    """One variant as the experiment keeps it: the objects launch_campaign built and its state."""

    name: str
    launch_id: int = Field(description="The launch_campaign journal entry that built it.")
    campaign_id: str
    adset_id: str
    ad_ids: list[str]
    daily_budget: int = Field(description="Minor units, as launched.")
    state: Literal["running", "stopped", "winner", "loser"]
    reason: str = Field(description="Why it is in this state (empty while running as launched).")
    changed_at: str = Field(description="When the state last changed (ISO-8601, UTC).")


class LaunchedExperiment(OpData):
    """launch_experiment's answer. Built: experiment_id, study_id, variants, split_test. The same plan again:
    experiment_id, already_launched, status, variants. A PAUSED experiment launched again with status ACTIVE:
    experiment_id, activated, ends_at (and already_active when another request switched it on first)."""

    experiment_id: int
    study_id: str | None = Field(
        None, description="Built: the Facebook split test (ad study); null when there is none."
    )
    variants: list[ExperimentVariant] = absent_key(description="Built, or launched before: the variants.")
    split_test: bool = absent_key(description="Built: whether the variants are cells of a Facebook split test.")
    already_launched: Literal[True] = absent_key(description="The plan had been launched before: nothing was created.")
    status: Literal["running", "completed", "stopped"] = absent_key(
        description="Launched before: the experiment's status."
    )
    activated: Literal[True] = absent_key(description="Switched to ACTIVE.")
    already_active: Literal[True] = absent_key(
        description="Already switched on by the same request sent at the same time."
    )
    ends_at: str = absent_key(description="Activated: when the test ends (ISO-8601, UTC).")
    object_ids: list[str] = absent_key(description="Built or activated: the objects created or switched on.")


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


async def _create_study(
    ctx: OpContext,
    business_id: str,
    args: LaunchExperimentArgs,
    key: str,
    campaign_ids: list[str],
    start: datetime,
    end: datetime,
) -> str:
    name = _study_name(args, key)
    found = await _find_study(ctx, business_id, name)
    if found:
        return found
    share, extra = divmod(100, len(campaign_ids))
    cells = [
        {"name": variant.name, "treatment_percentage": share + (1 if i < extra else 0), "campaigns": [campaign_id]}
        for i, (variant, campaign_id) in enumerate(zip(args.variants, campaign_ids))
    ]
    answer = await ctx.graph.post(
        f"{business_id}/ad_studies",
        {
            "name": name,
            "description": args.hypothesis[:500],
            "type": "SPLIT_TEST",
            "cells": cells,
            "start_time": int(start.timestamp()),
            "end_time": int(end.timestamp()),
            "confidence_level": round(args.rules.certainty * 100),
        },
    )
    return str(answer["id"])


def _planned_requests(plans: list[Any]) -> list[GraphRequest]:
    return [request for plan in plans if isinstance(plan, WritePlan) for request in plan.requests]


def _planned_changes(plans: list[Any]) -> list[Change]:
    return [change for plan in plans if isinstance(plan, WritePlan) for change in plan.changes]


async def _run_variant(plan: WritePlan | OpResult) -> OpResult:
    return await plan.execute() if isinstance(plan, WritePlan) else plan


# ---------------------------------------------------------------------------------------------------------------
# Sizing at launch: the baseline from the account's recent delivery
# ---------------------------------------------------------------------------------------------------------------

HISTORY_MIN_IMPRESSIONS = (
    10_000  # fewer, and the account's CPM is estimated by Facebook for the plan's audience instead
)
HISTORY_MIN_CLICKS = 100
HISTORY_MIN_RESULTS = 20
# Assumed where the account's history is too thin, and said so: a typical link CTR, and results per click.
DEFAULT_CTR = 0.01
DEFAULT_RESULTS_PER_CLICK = {"purchases": 0.02, "leads": 0.08, "link_clicks": 0.6, "clicks": 1.0}


async def _history(ctx: OpContext, account_id: str) -> dict[str, Any]:
    answer = await _ops(ctx).plan("get_insights", {"object_id": account_id, "date_preset": "last_30d", "limit": 1})
    return (answer.data or {}).get("totals") or {} if isinstance(answer, OpResult) and answer.ok else {}


async def _estimated_cpm(ctx: OpContext, account_id: str, targeting: Any, goal: str, daily_budget: int) -> float | None:
    """The CPM Facebook's delivery estimate gives the plan's audience at about its budget (None when it gives none)."""
    try:
        answer = await _ops(ctx).plan(
            "estimate_audience", {"targeting": targeting, "optimization_goal": goal, "ad_account_id": account_id}
        )
    except FacebookError:
        return None
    if not isinstance(answer, OpResult) or not answer.ok:
        return None
    points = [
        p
        for p in (answer.data or {}).get("daily_outcomes_curve") or []
        if int(p.get("impressions") or 0) > 0 and int(p.get("spend") or 0) > 0
    ]
    if not points:
        return None
    nearest = min(points, key=lambda p: abs(int(p["spend"]) - daily_budget))
    return int(nearest["spend"]) / int(nearest["impressions"]) * 1000


def _planned_field(plans: list[Any], name: str) -> Any:
    """A field the first variant's launch would send to create its ad set (its resolved goal, its targeting)."""
    for request in _planned_requests(plans):
        if request.path.endswith("/adsets") and name in request.params:
            return request.params[name]
    return None


async def baseline_for(
    ctx: OpContext, account_id: str, args: LaunchExperimentArgs, plans: list[Any]
) -> Baseline | None:
    """What one impression brings in this account: its last 30 days where they say enough, else Facebook's delivery
    estimate for the CPM and stated defaults for the rates; None when neither gives a CPM."""
    kind = RESULT_OF_OBJECTIVE.get(str(args.campaign.get("objective", "")).upper(), "purchases")
    totals = await _history(ctx, account_id)
    impressions, spend = int(totals.get("impressions") or 0), int(totals.get("spend_minor") or 0)
    clicks, results = int(totals.get("clicks") or 0), int(totals.get(kind) or 0)
    notes = []
    cpm: float | None
    if impressions >= HISTORY_MIN_IMPRESSIONS and spend > 0:
        cpm = spend / impressions * 1000
        notes.append("CPM from the account's last 30 days")
    else:
        goal = _planned_field(plans, "optimization_goal") or "REACH"
        targeting = _planned_field(plans, "targeting") or args.adset.get("targeting") or {}
        cpm = await _estimated_cpm(
            ctx, account_id, targeting, str(goal), min(v.daily_budget or args.daily_budget for v in args.variants)
        )
        if cpm is None:
            return None
        notes.append("CPM from Facebook's delivery estimate for this audience")
    if clicks >= HISTORY_MIN_CLICKS:
        ctr = clicks / impressions
        notes.append(f"CTR {ctr:.2%} from its history")
    else:
        ctr = DEFAULT_CTR
        notes.append(f"CTR assumed {ctr:.0%} (too few clicks in its history)")
    if kind == "impressions":
        per_impression = 1.0
    elif results >= HISTORY_MIN_RESULTS:
        per_impression = results / impressions
        notes.append(f"{_plural(RESULT_WORDS[kind])} per impression from its history")
    else:
        per_click = DEFAULT_RESULTS_PER_CLICK.get(kind, 1.0)
        per_impression = ctr * per_click
        notes.append(
            f"{per_click:.0%} of clicks assumed to become {_plural(RESULT_WORDS[kind])} (too few in its history)"
        )
    return Baseline(cpm, ctr, per_impression, "; ".join(notes))


class SizingBaseline(BaseModel):
    cpm_minor: float = Field(description="Cost of 1,000 impressions, minor units.")
    ctr: float = Field(description="Clicks per impression.")
    results_per_impression: float


class SizingData(BaseModel):
    """What a plan can find at its budget and duration (sizing_data), kept with the plan."""

    lift: float | None = Field(
        description="The lift the plan finds with `power` chance by its last day; null: nothing measurable."
    )
    min_lift: float
    tau2: float
    per_day: float = Field(description="Effective results per variant per day.")
    planned: float = Field(description="Effective results per variant over the duration.")
    days_needed: int | None = Field(
        description="Days to find min_lift at this budget; null: not within the split test limit."
    )
    budget_needed: int | None = Field(
        description="Daily budget per variant (minor units) to find min_lift in the duration; null: none does."
    )
    longer: list[int] | None = Field(
        description="When no budget does in time: the shortest [days, daily budget] that does."
    )
    power: float
    source: str = Field(description="Where the baseline numbers come from, in words.")
    baseline: SizingBaseline


def sizing_data(sizing: Sizing) -> dict[str, Any]:
    lift = (
        round(sizing.lift, 4) if math.isfinite(sizing.lift) else None
    )  # JSON has no Infinity: nothing measurable is null
    return {
        "lift": lift,
        "min_lift": sizing.min_lift,
        "tau2": sizing.tau2,
        "per_day": round(sizing.per_day, 2),
        "planned": round(sizing.planned, 1),
        "days_needed": sizing.days_needed,
        "budget_needed": sizing.budget_needed,
        "longer": list(sizing.longer) if sizing.longer else None,
        "power": PLANNED_POWER,
        "source": sizing.baseline.source,
        "baseline": {
            "cpm_minor": round(sizing.baseline.cpm, 2),
            "ctr": sizing.baseline.ctr,
            "results_per_impression": sizing.baseline.results_per_impression,
        },
    }


def _sample_words(metric: str, kind: str, sizing: Sizing, days: int, budget: int) -> str:
    unit = "clicks" if metric == "ctr" else _plural(RESULT_WORDS.get(kind, "result"))
    planned = sizing.planned * (1 + ORDER_VALUE_CV2) if metric == "roas" else sizing.planned
    impressions = budget * 1000 / sizing.baseline.cpm * days if sizing.baseline.cpm > 0 else 0
    return f"about {round(planned):,} {unit} from {round(impressions, -3 if impressions >= 10_000 else 0):,.0f} impressions per variant"


def sizing_sentence(metric: str, kind: str, sizing: Sizing, days: int, budget: int) -> str:
    """What the plan can find and how long finding min_lift takes, for the summary a person confirms."""
    found = (
        "finds nothing measurable"
        if not math.isfinite(sizing.lift)
        else f"can find a lift of {sizing.lift:.0%} or more with {PLANNED_POWER:.0%} chance"
    )
    sooner = (
        f"; {sizing.min_lift:.0%} takes {sizing.days_needed} day{'s' if sizing.days_needed > 1 else ''} at this budget"
        if sizing.enough and sizing.days_needed and sizing.days_needed < days
        else ""
    )
    return f"sized: in {days} days it {found} ({_sample_words(metric, kind, sizing, days, budget)}{sooner}; {sizing.baseline.source})"


def underpowered_reason(sizing: Sizing, days: int, budget: int, currency: str) -> str:
    """Why an under-powered plan needs a person's yes, and what would fix it."""
    want = f"{sizing.min_lift:.0%}"
    can = f"a lift of {sizing.lift:.0%} or more" if math.isfinite(sizing.lift) else "no lift at all"
    fixes = []
    if sizing.budget_needed is not None:
        fixes.append(f"{_money(sizing.budget_needed, currency)} a day per variant")
    if sizing.days_needed is not None:
        fixes.append(f"{sizing.days_needed} days at this budget")
    if not fixes and sizing.longer:
        fixes.append(f"{sizing.longer[0]} days at {_money(sizing.longer[1], currency)} a day per variant")
    fix = (
        (f"finding {want} takes " + " or ".join(fixes))
        if fixes
        else f"no budget finds {want} within {SPLIT_TEST_MAX_DAYS} days: test a bigger change, or raise rules.min_lift"
    )
    return (
        f"would launch a test that can only find {can} in {days} days at {_money(budget, currency)} a day per variant "
        f"(the plan wants {want}): {fix}"
    )


def launched_before(existing: ExperimentRecord) -> OpResult:
    """The answer to a plan launched again (one after the other, or at the same time): the experiment it made."""
    return OpResult(
        text=(
            f"Experiment #{existing.id} {existing.name} was launched from this plan on "
            f"{existing.started_at[:10]}: nothing was created again. /experiment {existing.id} shows how it "
            "is going."
        ),
        hints=[f"experiment_status with experiment_id={existing.id} shows how it is going."],
        data={
            "experiment_id": existing.id,
            "already_launched": True,
            "status": existing.status,
            "variants": existing.variants,
        },
    )


def experiment_lock(key: str) -> str:
    """The single-flight lease of one plan in the store: one request at a time builds or switches on its experiment."""
    return f"experiment:{key}"


async def save_experiment(records: ExperimentRecords, record: ExperimentRecord) -> tuple[ExperimentRecord, bool]:
    """The experiment saved, and True; or the one the store already holds for its plan (it refuses a second), and False."""
    try:
        return await records.add_experiment(record), True
    except ValidationError:
        existing = await records.find_experiment(record.key)
        if existing is None:
            raise
        return existing, False


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.EXPERIMENTS,
    example={"plan_file": "experiments/creative-test.yaml"},
    result=LaunchedExperiment,
)
async def launch_experiment(ctx: OpContext, args: LaunchExperimentArgs) -> WritePlan | OpResult:
    records = _experiments(ctx)
    key = plan_key(args)
    existing = await records.find_experiment(key)
    if (
        existing is not None
        and args.status == "ACTIVE"
        and existing.plan.get("status") == "PAUSED"
        and existing.status == "running"
    ):
        return await _activation_plan(ctx, args, existing)
    if existing is not None:
        return launched_before(existing)
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.account_info(account_id)
    business_id = await _business_of(ctx, account_id) if args.split_test != "no" else None
    if args.split_test == "yes" and business_id is None:
        raise ValidationError(
            f"Ad account {account_id} belongs to no business, so Facebook cannot run a split test for it",
            fix="Use split_test=auto or no (equal-budget variants whose audiences may overlap)",
            blame_field="split_test",
        )
    split = business_id is not None and len(args.variants) <= SPLIT_TEST_MAX_CELLS
    launches = [variant_launch(args, variant, account_id, args.page_id or ctx.page_id) for variant in args.variants]
    plans = []
    for variant, launch in zip(args.variants, launches):
        try:
            plans.append(await _ops(ctx).plan("launch_campaign", launch))
        except ValidationError as error:
            error.message = f"variant {variant.name!r}: {error.message}"
            raise
    budgets = [v.daily_budget or args.daily_budget for v in args.variants]
    how = (
        "in a Facebook split test (one cell per variant: audiences do not overlap)"
        if split
        else f"as {'separate' if args.variable == 'budget' else 'equal-budget'} variants (no split test: "
        + (
            "the account belongs to no business"
            if business_id is None and args.split_test != "no"
            else "more than 5 variants"
            if business_id
            else "split_test=no"
        )
        + "; their audiences may overlap, so the comparison is less clean)"
    )
    summary = (
        f"experiment {args.name}: {len(args.variants)} variants of the {args.variable.replace('_', ' ')} "
        f"({', '.join(v.name for v in args.variants)}), {metric_name(args.metric, RESULT_OF_OBJECTIVE.get(str(args.campaign.get('objective')).upper(), 'purchases'))} "
        f"decides, {args.duration_days} days, daily budget {', '.join(_money(b, account.currency) for b in sorted(set(budgets)))} "
        f"per variant (at most {_money(sum(budgets) * args.duration_days, account.currency)} over the test), {how}; {args.status}"
    )
    kind = RESULT_OF_OBJECTIVE.get(str(args.campaign.get("objective")).upper(), "purchases")
    baseline = await baseline_for(ctx, account_id, args, plans)
    sizing = (
        None
        if baseline is None
        else size_plan(
            args.metric,
            baseline,
            min(budgets),
            args.duration_days,
            args.rules.min_lift,
            args.rules.certainty,
            len(args.variants),
        )
    )
    if sizing is None:
        attention = [
            f"would launch a test nothing can size: the account has no delivery in its last 30 days and Facebook "
            f"gave no delivery estimate, so it may find nothing in {args.duration_days} days"
        ]
    else:
        summary += "; " + sizing_sentence(args.metric, kind, sizing, args.duration_days, min(budgets))
        attention = (
            [] if sizing.enough else [underpowered_reason(sizing, args.duration_days, min(budgets), account.currency)]
        )
    requests = _planned_requests(plans)
    if split:
        requests.append(
            GraphRequest(
                "POST",
                f"{business_id}/ad_studies",
                {
                    "name": _study_name(args, key),
                    "type": "SPLIT_TEST",
                    "cells": f"<{len(args.variants)} cells, one campaign each>",
                },
            )
        )

    async def execute() -> OpResult:
        async with single_flight(_journal(ctx), experiment_lock(key), f"launch of experiment {args.name}"):
            existing = await records.find_experiment(key)  # made by the same plan sent at the same time
            return launched_before(existing) if existing is not None else await build()

    async def build() -> OpResult:
        outcomes: list[OpResult] = []
        for variant, plan in zip(args.variants, plans):
            result = await _run_variant(plan)
            if not result.ok:
                made = ", ".join(
                    f"{v.name} (launch #{o.data.get('launch_id')})" for v, o in zip(args.variants, outcomes)
                )
                return OpResult(
                    text=(
                        f"{result.text.splitlines()[0]}\nThe experiment stopped while building variant "
                        f"{variant.name}. {('Built: ' + made + '. ') if made else ''}Launch the same plan again "
                        f"to continue: what exists is not created twice."
                    ),
                    data={**(result.data if isinstance(result.data, dict) else {}), "variant": variant.name},
                    ok=False,
                )
            outcomes.append(result)
        start = await _now(ctx)
        end = start + timedelta(days=args.duration_days)
        campaign_ids = [str(o.data["campaign_id"]) for o in outcomes]
        study_id = (
            await _create_study(ctx, business_id, args, key, campaign_ids, start, end)
            if split and business_id
            else None
        )
        variants = [
            {
                "name": v.name,
                "launch_id": o.data.get("launch_id"),
                "campaign_id": str(o.data["campaign_id"]),
                "adset_id": str(o.data["adset_id"]),
                "ad_ids": [str(a) for a in o.data.get("ad_ids") or []],
                "daily_budget": b,
                "state": "running",
                "reason": "",
                "changed_at": _iso(start),
            }
            for v, o, b in zip(args.variants, outcomes, budgets)
        ]
        record, saved = await save_experiment(
            records,
            ExperimentRecord(
                id=0,
                key=key,
                name=args.name,
                status="running",
                plan={
                    **args.model_dump(mode="json", exclude={"plan_file"}),
                    "sizing": sizing_data(sizing) if sizing else None,
                },
                ad_account_id=account_id,
                currency=account.currency,
                variants=variants,
                started_at=_iso(start),
                ends_at=_iso(end),
                study_id=study_id,
            ),
        )
        if not saved:
            return launched_before(record)
        await records.add_experiment_event(
            record.id, "launched", {"variants": variants, "study_id": study_id, "status": args.status}, start
        )
        lines = [
            f"Launched experiment #{record.id} {args.name}: {len(variants)} variants {how}, until {_when(record.ends_at)}."
        ]
        lines += [
            f"- {v['name']}: campaign {v['campaign_id']}, ad set {v['adset_id']}, daily budget "
            f"{_money(v['daily_budget'], account.currency)}"
            for v in variants
        ]
        if sizing is not None:
            said = sizing_sentence(args.metric, kind, sizing, args.duration_days, min(budgets))
            lines.append(said[0].upper() + said[1:] + ".")
        lines.append(
            "Everything is PAUSED: nothing spends until you launch the same plan with status=ACTIVE."
            if args.status == "PAUSED"
            else "The variants deliver once their ads pass review."
        )
        lines.append(f"The hourly experiments check looks at it; /experiment {record.id} shows the numbers.")
        return OpResult(
            text="\n".join(lines),
            hints=[f"experiment_status with experiment_id={record.id} shows the numbers."],
            data={
                "experiment_id": record.id,
                "study_id": study_id,
                "variants": variants,
                "split_test": split,
                "object_ids": [i for v in variants for i in [v["campaign_id"], v["adset_id"], *v["ad_ids"]]],
            },
        )

    return WritePlan(
        summary=summary,
        ad_account_id=account_id,
        requests=requests,
        changes=_planned_changes(plans),
        execute=execute,
        currency=account.currency,
        confirm_text=f"The experiment: {summary}",
        attention=attention,
    )


async def _activation_plan(ctx: OpContext, args: LaunchExperimentArgs, record: ExperimentRecord) -> WritePlan:
    """A PAUSED experiment launched again with status ACTIVE: switch every variant on; the test's clock starts now."""
    records = _experiments(ctx)
    launches = [
        variant_launch(args, variant, record.ad_account_id, args.page_id or ctx.page_id) for variant in args.variants
    ]
    plans = [await _ops(ctx).plan("launch_campaign", launch) for launch in launches]

    async def execute() -> OpResult:
        async with single_flight(_journal(ctx), experiment_lock(record.key), f"activation of experiment {record.name}"):
            current = await records.get_experiment(record.id) or record
            if current.plan.get("status") == "ACTIVE":  # switched on by the same request sent at the same time
                return OpResult(
                    text=f"Experiment #{current.id} {current.name} is already ACTIVE (since {current.started_at[:16]} "
                    f"UTC): nothing was switched twice.",
                    data={
                        "experiment_id": current.id,
                        "activated": True,
                        "already_active": True,
                        "ends_at": current.ends_at,
                        "object_ids": [],
                    },
                )
            return await activate()

    async def activate() -> OpResult:
        for variant, plan in zip(args.variants, plans):
            result = await _run_variant(plan)
            if not result.ok:
                return OpResult(
                    text=f"{result.text.splitlines()[0]}\nVariant {variant.name} could not be switched on; "
                    "launch the same plan with status ACTIVE again to finish.",
                    data=result.data,
                    ok=False,
                )
        start = await _now(ctx)
        end = start + timedelta(days=int(record.plan.get("duration_days", 7)))
        if record.study_id:
            await ctx.graph.post(record.study_id, {"end_time": int(end.timestamp())})
        record.plan = {**record.plan, "status": "ACTIVE"}
        record.started_at, record.ends_at = _iso(start), _iso(end)
        await records.update_experiment(record)
        await records.add_experiment_event(record.id, "activated", {"ends_at": record.ends_at}, start)
        return OpResult(
            text=(
                f"Experiment #{record.id} {record.name} is ACTIVE: {len(record.variants)} variants deliver once "
                f"their ads pass review; the test runs until {record.ends_at[:16]} UTC."
            ),
            data={
                "experiment_id": record.id,
                "activated": True,
                "ends_at": record.ends_at,
                "object_ids": [v["campaign_id"] for v in record.variants],
            },
        )

    summary = (
        f"activate experiment #{record.id} {record.name}: {len(record.variants)} variants switch to ACTIVE, daily budget "
        f"{', '.join(_money(v['daily_budget'], record.currency) for v in record.variants)}"
    )
    return WritePlan(
        summary=summary,
        ad_account_id=record.ad_account_id,
        requests=_planned_requests(plans),
        changes=_planned_changes(plans),
        execute=execute,
        currency=record.currency,
        confirm_text=f"The experiment: {summary}",
    )


# ---------------------------------------------------------------------------------------------------------------
# The hourly check: stop rules, winner, losers paused, winner scaled
# ---------------------------------------------------------------------------------------------------------------


class CheckEvent(BaseModel):
    """One thing the check did, as it is announced (notifications read these)."""

    experiment_id: int
    action: Literal["variant_stopped", "winner", "no_winner", "scaled", "scale_held", "failed"]
    at: str = Field(description="ISO-8601, UTC.")
    level: Literal["info", "warning", "error"]
    subject: str
    text: str


class ExperimentsChecked(OpData):
    checked: int = Field(description="Running experiments looked at.")
    events: list[CheckEvent] = Field(description="What was done; empty when there was nothing to do.")
    object_ids: list[str] = absent_key(
        description="The campaigns and ad sets acted on (absent when there was nothing to do)."
    )


@dataclass
class Step:
    """One thing the check does to one experiment (shown before it runs, announced after)."""

    record: ExperimentRecord
    action: str  # variant_stopped | winner | no_winner | scale
    variants: list[str]
    reason: str


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
    return record.last_scaled_at is None or now - _parse(record.last_scaled_at) >= timedelta(
        hours=rules.scale_cooldown_hours
    )


async def _pause(ctx: OpContext, campaign_id: str) -> tuple[bool, str]:
    result = await _gate(ctx).run("pause_campaign", {"campaign_id": campaign_id})
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
    target, held_by = scaled_budget(current, rules.scale_pct, cap, await _gate(ctx).guardrails(record.ad_account_id))
    money = lambda v: _money(v, record.currency)  # noqa: E731
    if target <= current:
        record.outcome["scaling_done"] = True
        return "scale_held", f"{record.winner}'s daily budget stays {money(current)}: it is at {held_by}"
    result = await _gate(ctx).run("update_adset", {"adset_id": winner["adset_id"], "daily_budget": target})
    if not result.ok:
        return "failed", f"scaling {record.winner} failed: {result.text.splitlines()[0]}"
    record.last_scaled_at = _iso(now)
    if held_by == "the experiment's cap":
        record.outcome["scaling_done"] = True
    capped = f" (held by {held_by})" if held_by else ""
    return "scaled", f"{record.winner}'s daily budget {money(current)} → {money(target)}{capped}"


async def _plan_steps(ctx: OpContext, record: ExperimentRecord, now: datetime) -> list[Step]:
    if record.status == "running":
        assessment = await _assess(ctx, record, now)
        record.outcome = {**record.outcome, "stats": _stats_data(assessment), "checked_at": _iso(now)}
        decision = decide(record, assessment, now)
        if decision.winner:
            return [Step(record, "winner", [decision.winner], decision.reason)]
        if decision.time_up:
            return [Step(record, "no_winner", [], decision.reason)]
        if decision.stop:
            return [Step(record, "variant_stopped", decision.stop, decision.reason)]
        await _experiments(ctx).update_experiment(record)  # the latest numbers, for status and reports
        return []
    if _scaling_due(record, now):
        return [Step(record, "scale", [record.winner or ""], "the winner scales after its cooldown")]
    return []


async def _apply(ctx: OpContext, step: Step, now: datetime) -> list[dict[str, Any]]:
    """Run one step through the safety gate and record it; the events to announce."""
    record, records = step.record, _experiments(ctx)
    events: list[tuple[str, str, str, dict[str, Any]]] = []  # (action, level, text, detail)
    if step.action == "variant_stopped":
        for name in step.variants:
            ok, said = await _pause(ctx, _variant(record, name)["campaign_id"])
            _set_state(record, [name], "stopped" if ok else "running", step.reason, now)
            events.append(
                (
                    "variant_stopped" if ok else "failed",
                    "warning" if ok else "error",
                    f"{name} paused: {step.reason}." if ok else f"{name} could not be paused: {said}",
                    {"variant": name, "answer": said},
                )
            )
    elif step.action == "winner":
        winner = step.variants[0]
        losers = [v["name"] for v in record.variants if v["name"] != winner and v.get("state") == "running"]
        failed = []
        for name in losers:
            ok, said = await _pause(ctx, _variant(record, name)["campaign_id"])
            if not ok:
                failed.append(f"{name}: {said}")
        _set_state(record, [winner], "winner", step.reason, now)
        _set_state(
            record, [n for n in losers if not any(f.startswith(n + ":") for f in failed)], "loser", f"{winner} won", now
        )
        record.status, record.winner = "completed", winner
        record.outcome["decision"] = step.reason
        await _end_study(ctx, record, now)
        events.append(
            (
                "winner",
                "info",
                f"{winner} wins: {step.reason}. " + (f"Paused {', '.join(losers)}." if losers else ""),
                {"winner": winner, "losers": losers},
            )
        )
        if failed:
            events.append(("failed", "error", "Could not pause " + "; ".join(failed), {"failed": failed}))
    elif step.action == "no_winner":
        running = [v["name"] for v in record.variants if v.get("state") == "running"]
        for name in running:
            ok, said = await _pause(ctx, _variant(record, name)["campaign_id"])
            _set_state(record, [name], "stopped" if ok else "running", "time is up without a winner", now)
        record.status = "completed"
        record.outcome["decision"] = step.reason
        events.append(
            (
                "no_winner",
                "warning",
                f"No winner: {step.reason}. Paused {', '.join(running)}; resume the one you prefer.",
                {"paused": running},
            )
        )
    elif step.action == "scale":
        action, text = await _scale(ctx, record, now)
        events.append((action, "error" if action == "failed" else "info", text, {"winner": record.winner}))
    await records.update_experiment(record)
    out = []
    for action, level, text, detail in events:
        await records.add_experiment_event(record.id, action, {"text": text, **detail}, now)
        out.append(
            {
                "experiment_id": record.id,
                "action": action,
                "at": _iso(now),
                "level": level,
                "subject": f"Experiment {record.name}: {action.replace('_', ' ')}",
                "text": f"Experiment #{record.id} {record.name}: {text}",
            }
        )
    return out


@ops.op(OpKind.SPEND, group=TaskGroup.EXPERIMENTS, result=ExperimentsChecked)
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
        return OpResult(
            text=f"Checked {running} running experiment(s): nothing to do.", data={"checked": running, "events": []}
        )
    summary = "experiments: " + "; ".join(
        f"#{s.record.id} {s.record.name} {s.action.replace('_', ' ')} {', '.join(s.variants)} ({s.reason})"
        for s in steps
    )

    async def execute() -> OpResult:
        events = []
        for step in steps:
            events += await _apply(ctx, step, now)
        failed = [e for e in events if e["action"] == "failed"]
        lines = [f"Checked {running} running experiment(s): {len(events)} action(s)."] + [
            f"- {e['text']}" for e in events
        ]
        ids = [
            i
            for s in steps
            for name in s.variants
            if name
            for v in s.record.variants
            if v["name"] == name
            for i in (v["campaign_id"], v["adset_id"])
        ]
        return OpResult(
            text="\n".join(lines), data={"checked": running, "events": events, "object_ids": ids}, ok=not failed
        )

    return WritePlan(summary=summary, ad_account_id=None, requests=[], changes=[], execute=execute)


# ---------------------------------------------------------------------------------------------------------------
# Status, list, stop, report
# ---------------------------------------------------------------------------------------------------------------


class ExperimentData(BaseModel):
    """An experiment as the workspace keeps it (_record_data)."""

    id: int
    name: str
    status: Literal["running", "completed", "stopped"]
    winner: str | None
    variable: Literal[VARIABLES] = Field(  # type: ignore[valid-type]
        description="What the variants differ in."
    )
    metric: Literal[METRICS] = Field(  # type: ignore[valid-type]
        description="The primary metric the winner is chosen on."
    )
    ad_account_id: str
    currency: str
    study_id: str | None = Field(description="The Facebook split test; null when the variants are not in one.")
    started_at: str
    ends_at: str
    variants: list[ExperimentVariant]
    last_scaled_at: str | None


class ExperimentStatusData(OpData):
    experiment: ExperimentData
    stats: ExperimentStats
    sizing: SizingData | None = Field(description="What the plan was sized to find; null when nothing could size it.")
    spend_minor: int
    next: str = Field(description="What the hourly check will do next, in words.")


class ExperimentList(OpData):
    experiments: list[ExperimentData]


class StoppedExperiment(OpData):
    experiment: ExperimentData
    object_ids: list[str] = absent_key(
        description="The campaigns paused (absent when the experiment had already ended)."
    )


class ExperimentHistoryEntry(BaseModel):
    at: str
    action: str
    detail: dict[str, Any]


class ExperimentReport(OpData):
    experiment: ExperimentData
    stats: ExperimentStats
    learned: str = Field(description="What the test showed, in one sentence.")
    events: list[ExperimentHistoryEntry] = Field(description="Everything the experiment did, oldest first.")


class ExperimentIdArgs(OpArgs):
    experiment_id: int = Field(..., ge=1, description="The experiment's id (list_experiments shows them).")


class ExperimentStatusArgs(ExperimentIdArgs):
    """How an experiment is going: per variant the metric with an interval valid at every check, how the leader compares
    with each other variant, the progress toward the sample the test was sized for, the spend, and what the hourly
    check will do next."""


@ops.op(OpKind.READ, group=TaskGroup.EXPERIMENTS, example={"experiment_id": 1}, result=ExperimentStatusData)
async def experiment_status(ctx: OpContext, args: ExperimentStatusArgs) -> OpResult:
    record = await _get_record(ctx, args.experiment_id)
    now = await _now(ctx)
    assessment = await _assess(ctx, record, now)
    kind = _result_kind(record.plan)
    spent = sum(s.numbers.spend for s in assessment.stats)
    head = (
        f"Experiment #{record.id} {record.name} ({record.status}{', winner ' + record.winner if record.winner else ''}): "
        f"{record.plan.get('variable', '').replace('_', ' ')} test, {metric_name(_metric(record.plan), kind)} "
        f"decides; {_when(record.started_at)} to {_when(record.ends_at)}; "
        f"spent {_money(spent, record.currency)}{'; Facebook split test ' + record.study_id if record.study_id else ''}."
    )
    lines = [head, f"Hypothesis: {record.plan.get('hypothesis', '')}"] + stats_lines(record, assessment)
    progress = progress_line(record, assessment)
    lines += [progress] if progress else []
    lines.append(next_steps(record, assessment, now))
    return OpResult(
        text="\n".join(lines),
        data={
            "experiment": _record_data(record),
            "stats": _stats_data(assessment),
            "sizing": record.plan.get("sizing"),
            "spend_minor": spent,
            "next": next_steps(record, assessment, now),
        },
    )


def _record_data(record: ExperimentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "winner": record.winner,
        "variable": record.plan.get("variable"),
        "metric": record.plan.get("metric"),
        "ad_account_id": record.ad_account_id,
        "currency": record.currency,
        "study_id": record.study_id,
        "started_at": record.started_at,
        "ends_at": record.ends_at,
        "variants": record.variants,
        "last_scaled_at": record.last_scaled_at,
    }


class ListExperimentsArgs(OpArgs):
    """The workspace's experiments, newest first: status, variable, metric, winner and dates."""

    status: Literal["running", "completed", "stopped"] | None = Field(
        None, description="Only experiments in this status."
    )


@ops.op(OpKind.READ, group=TaskGroup.EXPERIMENTS, result=ExperimentList)
async def list_experiments(ctx: OpContext, args: ListExperimentsArgs) -> OpResult:
    found = await _experiments(ctx).experiments(status=args.status)
    if not found:
        return OpResult(
            text="No experiments" + (f" {args.status}" if args.status else "") + ": launch_experiment starts one.",
            data={"experiments": []},
        )
    lines = [f"{len(found)} experiment(s):"]
    lines += [
        f"- #{r.id} {r.name}: {r.status}{', winner ' + r.winner if r.winner else ''}; {r.plan.get('variable', '')} "
        f"({len(r.variants)} variants), {r.plan.get('metric', '')}, {r.started_at[:10]} to {r.ends_at[:10]}"
        for r in found
    ]
    return OpResult(text="\n".join(lines), data={"experiments": [_record_data(r) for r in found]})


class StopExperimentArgs(ExperimentIdArgs):
    """Stop an experiment now: every variant still running is paused, the split test ends, no winner is declared."""

    reason: str | None = Field(None, max_length=300, description="Why (kept with the experiment).")


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.EXPERIMENTS,
    example={"experiment_id": 1, "reason": "budget needed elsewhere"},
    result=StoppedExperiment,
)
async def stop_experiment(ctx: OpContext, args: StopExperimentArgs) -> WritePlan | OpResult:
    record = await _get_record(ctx, args.experiment_id)
    if record.status != "running":
        return OpResult(
            text=f"Experiment #{record.id} {record.name} is already {record.status}: nothing to stop.",
            data={"experiment": _record_data(record)},
        )
    running = [v for v in record.variants if v.get("state") == "running"]
    plans = [await _ops(ctx).plan("pause_campaign", {"campaign_id": v["campaign_id"]}) for v in running]

    async def execute() -> OpResult:
        now = await _now(ctx)
        for variant, plan in zip(running, plans):
            result = await _run_variant(plan)
            if not result.ok:
                return OpResult(
                    text=f"{result.text.splitlines()[0]}\nVariant {variant['name']} is still running; stop_experiment again to retry.",
                    data=result.data,
                    ok=False,
                )
            _set_state(record, [variant["name"]], "stopped", args.reason or "stopped by hand", now)
        await _end_study(ctx, record, now)
        record.status = "stopped"
        record.outcome["decision"] = f"stopped by hand{': ' + args.reason if args.reason else ''}"
        await _experiments(ctx).update_experiment(record)
        await _experiments(ctx).add_experiment_event(
            record.id, "stopped", {"reason": args.reason or "", "paused": [v["name"] for v in running]}, now
        )
        return OpResult(
            text=f"Stopped experiment #{record.id} {record.name}: paused {', '.join(v['name'] for v in running) or 'nothing'}; no winner declared.",
            data={"experiment": _record_data(record), "object_ids": [v["campaign_id"] for v in running]},
        )

    return WritePlan(
        summary=f"stop experiment #{record.id} {record.name}: pause {', '.join(v['name'] for v in running)}",
        ad_account_id=record.ad_account_id,
        requests=_planned_requests(plans),
        changes=_planned_changes(plans),
        execute=execute,
        currency=record.currency,
    )


class ReportExperimentArgs(ExperimentIdArgs):
    """What an experiment taught: the hypothesis, each variant's numbers with intervals, the decision and by how much
    the winner beat the runner-up, every action taken, and a chart (PNG)."""

    out_dir: str | None = Field(
        None, description=f"Folder inside the workspace's own files folder (relative; default {DEFAULT_OUT_DIR})."
    )


def learned(record: ExperimentRecord, assessment: Assessment) -> str:
    """What the test showed, in one sentence: the leader against its closest rival, with the interval."""
    if not assessment.comparisons:
        return "Nothing was compared: fewer than two variants have delivered."
    closest = min(assessment.comparisons, key=lambda c: c.lift)
    words = comparison_words(_metric(record.plan), _result_kind(record.plan), closest)
    if record.winner == closest.name:
        return f"The hypothesis held: {closest.name} won; {words}."
    if record.status == "running":
        return f"No clear answer yet: {closest.name} leads; {words}."
    return (
        f"Not proven: {closest.name} led ({words}), but the test was never {assessment.design.certainty:.0%} sure "
        f"that it beats every other variant."
    )


def _against_leader(metric: str, comparison: Comparison) -> float:
    """How a variant's metric compares with the leader's, as the metric reads (−0.15: CTR 15 % lower; +0.2: cost 20 %
    higher)."""
    return comparison.lift if metric == "cost_per_result" else 1 / (1 + comparison.lift) - 1


def render_experiment_png(record: ExperimentRecord, assessment: Assessment, path: Path) -> Path:
    """The metric per variant with its interval (bars), each labelled against the leader: 1000×600 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, kind, stats = _metric(record.plan), _result_kind(record.plan), assessment.stats
    scale = 1 / (100 if metric == "cost_per_result" and record.currency.upper() not in ("JPY", "KRW") else 1)
    shown = lambda value: (value or 0) * (scale if metric == "cost_per_result" else 1)  # noqa: E731
    values = [shown(s.metric) for s in stats]
    lows = [max(0.0, v - shown(s.low if s.low is not None else s.metric)) for v, s in zip(values, stats)]
    highs = [max(0.0, shown(s.high if s.high is not None else s.metric) - v) for v, s in zip(values, stats)]
    colors = [
        "#2e7d32"
        if s.name == record.winner
        else "#9e9e9e"
        if any(v["name"] == s.name and v.get("state") in ("stopped", "loser") for v in record.variants)
        else "#1565c0"
        for s in stats
    ]
    versus = {c.against: f"{_percent(_against_leader(metric, c))} vs {c.name}" for c in assessment.comparisons}
    figure, axes = plt.subplots(figsize=(10, 6), dpi=100)
    try:
        bars = axes.bar([s.name for s in stats], values, yerr=[lows, highs], capsize=8, color=colors)
        for bar, s, above in zip(bars, stats, highs):
            label = "leader" if s.name == assessment.leader else versus.get(s.name, "no delivery")
            axes.annotate(
                label,
                (bar.get_x() + bar.get_width() / 2, bar.get_height() + above),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                weight="bold",
            )
        axes.margins(y=0.12)
        unit = {"ctr": "CTR (%)", "roas": "ROAS (×)"}.get(metric, f"{metric_name(metric, kind)} ({record.currency})")
        axes.set_ylabel(unit)
        axes.set_title(
            f"Experiment #{record.id} {record.name}: {unit}, intervals valid at every check"
            + (f" · winner {record.winner}" if record.winner else "")
        )
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return path


@ops.op(OpKind.READ, group=TaskGroup.EXPERIMENTS, example={"experiment_id": 1}, result=ExperimentReport)
async def report_experiment(ctx: OpContext, args: ReportExperimentArgs) -> OpResult:
    record = await _get_record(ctx, args.experiment_id)
    now = await _now(ctx)
    assessment = await _assess(ctx, record, now)
    events = await _experiments(ctx).experiment_events(record.id)
    folder = output_file(ctx, args.out_dir, DEFAULT_OUT_DIR, f"experiment-{record.id}")  # an unguessable folder
    folder.mkdir()
    chart = render_experiment_png(record, assessment, folder / f"experiment-{record.id}.png")
    kind = _result_kind(record.plan)
    lines = [
        f"Experiment #{record.id} {record.name}: {record.status}"
        + (f", winner {record.winner}" if record.winner else ", no winner"),
        f"Hypothesis: {record.plan.get('hypothesis', '')}",
        f"Tested: the {record.plan.get('variable', '').replace('_', ' ')}; decided on {metric_name(_metric(record.plan), kind)}; "
        f"{_when(record.started_at)} to {_when(record.ends_at)}{'; Facebook split test ' + record.study_id if record.study_id else '; variants could overlap (no split test)'}.",
        f"Learned: {learned(record, assessment)}",
    ]
    lines += stats_lines(record, assessment)
    if record.outcome.get("decision"):
        lines.append(f"Decision: {record.outcome['decision']}.")
    lines.append("What happened:")
    lines += [
        f"- {_when(e.at)} {e.action.replace('_', ' ')}" + (f": {e.detail.get('text')}" if e.detail.get("text") else "")
        for e in events
    ]
    lines.append(f"Chart: {chart}")
    return OpResult(
        text="\n".join(lines),
        data={
            "experiment": _record_data(record),
            "stats": _stats_data(assessment),
            "learned": learned(record, assessment),
            "events": [{"at": e.at, "action": e.action, "detail": e.detail} for e in events],
        },
        files=[str(chart)],
    )

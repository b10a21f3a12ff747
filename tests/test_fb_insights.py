"""Insights: the contract checks, the row arithmetic, files, the async switch and the ops end to end over the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import fb_insights as fi
from fb_utils import AccountInfo, OpContext, ValidationError, reset_progress_handler, set_progress_handler

ADDITIVE = (
    "impressions",
    "clicks",
    "link_clicks",
    "landing_page_views",
    "leads",
    "purchases",
    "spend_minor",
    "purchase_value_minor",
)


def _row(**values) -> dict:
    return {k: str(v) if not isinstance(v, list) else v for k, v in values.items()}


# -- pure: parsing and arithmetic ---------------------------------------------------------------------------------


def test_parse_row_money_in_minor_units_and_actions_flattened_once():
    raw = _row(
        impressions=1000,
        reach=800,
        clicks=25,
        inline_link_clicks=20,
        spend="12.34",
        ad_id="1",
        date_start="2025-01-01",
        actions=[
            {"action_type": "link_click", "value": "20"},
            {"action_type": "purchase", "value": "3"},
            {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "3"},
            {"action_type": "landing_page_view", "value": "15"},
            {"action_type": "lead", "value": "2"},
        ],
        action_values=[
            {"action_type": "purchase", "value": "45.60"},
            {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "45.60"},
        ],
    )
    m = fi.parse_row(raw, "USD")
    assert (m.impressions, m.reach, m.clicks, m.link_clicks) == (1000, 800, 25, 20)
    assert m.spend_minor == m.spend == 1234 and m.purchase_value_minor == 4560
    assert (m.purchases, m.leads, m.landing_page_views) == (
        3,
        2,
        15,
    )  # the pixel figure is the same purchases, not more
    assert m.dims == {"ad_id": "1", "date_start": "2025-01-01"}
    jpy = fi.parse_row(_row(spend="1234", impressions=10), "JPY")
    assert jpy.spend_minor == 1234 and fi.money(jpy.spend_minor, "JPY") == "¥1,234"


def test_derived_ratios_and_zero_denominators():
    m = fi.MetricRow(impressions=2000, reach=500, clicks=40, spend_minor=5000, purchases=4, purchase_value_minor=20000)
    d = fi.derived(m)
    assert d["ctr"] == pytest.approx(2.0) and d["cpc"] == pytest.approx(125) and d["cpm"] == pytest.approx(2500)
    assert d["frequency"] == pytest.approx(4.0) and d["cpa"] == pytest.approx(1250) and d["roas"] == pytest.approx(4.0)
    assert set(fi.derived(fi.MetricRow()).values()) == {None}


def test_totals_add_up_and_summary_line_formats_the_currency():
    rows = [fi.MetricRow(impressions=i * 100, clicks=i, spend_minor=i * 150, currency="USD") for i in range(1, 5)]
    total = fi.totals(rows)
    assert (total.impressions, total.clicks, total.spend_minor) == (1000, 10, 1500)
    assert "spend $15.00" in fi.summary_line(total) and "CTR 1.00%" in fi.summary_line(total)
    assert fi.totals([], "JPY").currency == "JPY"


# -- pure: the contract checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "blamed", "words"),
    [
        ({"fields": ["impressions", "spendd"]}, "fields", "did you mean spend"),
        ({"breakdowns": ["agee"]}, "breakdowns", "did you mean age"),
        ({"breakdowns": ["age", "country"]}, "breakdowns", "age + country cannot be combined"),
        ({"breakdowns": ["gender", "publisher_platform"]}, "breakdowns", "cannot be combined"),
        ({"since": "2025-03-10", "until": "2025-03-01"}, "since", "after until"),
        ({"since": "2025-03-01"}, "until", "go together"),
        ({"since": "2025-03-01", "until": "2025-03-02", "date_preset": "last_7d"}, "date_preset", "give one"),
        ({"since": "2019-01-01", "until": "2019-01-31"}, "since", "37 months"),
        ({"since": "2025-02-30", "until": "2025-03-01"}, "since", "not a date"),
        ({"date_preset": "last_8d"}, "date_preset", "not a date_preset"),
        ({"time_increment": 91}, "time_increment", "not a time_increment"),
        ({"level": "adgroup"}, "level", "not an insights level"),
        (
            {"filtering": [{"field": "campaign.id", "operator": "LIKE", "value": "1"}]},
            "filtering",
            "not a filter operator",
        ),
        ({"filtering": {"bogus_field": ["1"]}}, "filtering", "cannot be filtered on"),
        ({"sort": ["spend_sideways"]}, "sort", "not a sort order"),
    ],
)
def test_build_query_refuses_with_the_argument_named(kwargs, blamed, words):
    with pytest.raises(ValidationError) as caught:
        fi.build_query("act_1", today=date(2025, 6, 1), **kwargs)
    assert caught.value.blame_field == blamed and words in caught.value.message


def test_build_query_params_and_simple_filters():
    query = fi.build_query(
        "act_1",
        level="ad",
        since="2025-01-01",
        until="2025-01-31",
        time_increment=1,
        breakdowns=["publisher_platform", "platform_position"],
        filtering={"campaign_id": ["5", 6]},
        sort="spend_descending",
        today=date(2025, 6, 1),
    )
    params = query.params()
    assert params["time_range"] == {"since": "2025-01-01", "until": "2025-01-31"} and "date_preset" not in params
    assert (
        params["level"] == "ad"
        and params["time_increment"] == "1"
        and params["breakdowns"] == "publisher_platform,platform_position"
    )
    assert params["filtering"] == [{"field": "campaign.id", "operator": "IN", "value": ["5", "6"]}]
    assert params["sort"] == ["spend_descending"] and "ad_id" in params["fields"] and "spend" in params["fields"]


# -- pure: files --------------------------------------------------------------------------------------------------


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as file:
        data = file.read(32)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_render_chart_png_is_1200_by_700(tmp_path):
    start = date(2025, 1, 1)
    series = {
        (start + timedelta(days=i)).isoformat(): fi.MetricRow(
            impressions=1000 + i, clicks=10 + i, spend_minor=1500 + 10 * i, link_clicks=5, currency="USD"
        )
        for i in range(14)
    }
    path = fi.render_chart_png(series, tmp_path / "c.png", title="t", currency="USD")
    assert _png_size(path) == (1200, 700)


# -- pure: the recommendation rules, each from crafted numbers ---------------------------------------------------

ACCOUNT = AccountInfo(
    id="act_1", name="A", currency="USD", offset=100, min_daily_budget=100, timezone_name="UTC", account_status=1
)


def _days(latest: str, per_day_recent: fi.MetricRow, per_day_earlier: fi.MetricRow) -> dict[str, fi.MetricRow]:
    last = date.fromisoformat(latest)
    out = {}
    for back in range(14):
        source = per_day_recent if back < 7 else per_day_earlier
        out[(last - timedelta(days=back)).isoformat()] = fi.MetricRow(**source.metrics(), currency="USD")
    return out


def _ad_stats(ads: dict[str, tuple[str, fi.MetricRow, fi.MetricRow]], latest: str = "2025-05-31"):
    days_by_ad, stats = {}, {}
    for ad_id, (adset_id, recent_day, earlier_day) in ads.items():
        days_by_ad[ad_id] = _days(latest, recent_day, earlier_day)
        split = (date.fromisoformat(latest) - timedelta(days=6)).isoformat()
        stats[ad_id] = fi._AdStats(
            fi.totals([m for d, m in days_by_ad[ad_id].items() if d >= split]),
            fi.totals([m for d, m in days_by_ad[ad_id].items() if d < split]),
            {"ad_id": ad_id, "ad_name": f"ad {ad_id}", "adset_id": adset_id, "campaign_id": "c"},
        )
    return stats, days_by_ad


def _rules(stats, days_by_ad, reach=None, adsets=(), campaigns=(), ads=()):
    found = fi.evaluate_rules(
        ACCOUNT, stats, days_by_ad, "2025-05-31", reach or {}, list(adsets), list(campaigns), list(ads)
    )
    return {(r.rule, r.object_id): r for r in found}


def _m(**values) -> fi.MetricRow:
    return fi.MetricRow(currency="USD", **values)


def test_rule_low_ctr_against_the_account_median():
    good, bad = _m(impressions=1000, clicks=20, spend_minor=1000), _m(impressions=1000, clicks=2, spend_minor=1000)
    stats, days = _ad_stats({"1": ("s", good, good), "2": ("s", good, good), "3": ("s", bad, bad)})
    found = _rules(stats, days)
    assert ("low_ctr", "3") in found and ("low_ctr", "1") not in found
    r = found[("low_ctr", "3")]
    assert "0.20%" in r.reason and "2.00%" in r.reason and (r.op, r.args) == ("pause_ad", {"ad_id": "3"})


def test_rule_cpc_rising_last_7_days_vs_the_7_before():
    stats, days = _ad_stats(
        {
            "1": (
                "s",
                _m(impressions=1000, clicks=10, spend_minor=1500),
                _m(impressions=1000, clicks=10, spend_minor=1000),
            )
        }
    )
    r = _rules(stats, days)[("cpc_rising", "1")]
    assert "50%" in r.reason and "$1.00 → $1.50" in r.reason and r.op == "get_insights" and r.args["object_id"] == "1"


def test_rule_frequency_over_3_is_creative_fatigue():
    found = _rules({}, {}, reach={"7": _m(impressions=4000, reach=1000), "8": _m(impressions=2000, reach=1000)})
    assert ("creative_fatigue", "7") in found and ("creative_fatigue", "8") not in found
    assert "frequency 4.0" in found[("creative_fatigue", "7")].reason


def test_rule_budget_limited_winner_scales_and_underspender_is_named():
    winner = _m(impressions=5000, clicks=100, spend_minor=1000, purchases=8)  # $10/day on a $10 budget, CPA $1.25
    loser = _m(impressions=5000, clicks=100, spend_minor=1000, purchases=1)  # CPA $10
    lazy = _m(impressions=500, clicks=5, spend_minor=300, purchases=1)  # $3/day of $50
    stats, days = _ad_stats({"1": ("w", winner, winner), "2": ("l", loser, loser), "3": ("u", lazy, lazy)})
    adsets = [
        {
            "id": "w",
            "name": "Winner",
            "campaign_id": "c1",
            "daily_budget": "1000",
            "effective_status": "ACTIVE",
            "optimization_goal": "OFFSITE_CONVERSIONS",
        },
        {
            "id": "l",
            "name": "Loser",
            "campaign_id": "c1",
            "daily_budget": "1000",
            "effective_status": "ACTIVE",
            "optimization_goal": "OFFSITE_CONVERSIONS",
        },
        {
            "id": "u",
            "name": "Lazy",
            "campaign_id": "c1",
            "daily_budget": "5000",
            "effective_status": "ACTIVE",
            "optimization_goal": "OFFSITE_CONVERSIONS",
        },
    ]
    found = _rules(stats, days, adsets=adsets)
    r = found[("budget_limited_winner", "w")]
    assert (
        (r.op, r.args) == ("update_adset", {"adset_id": "w", "daily_budget": 1200})
        and "100%" in r.reason
        and "guardrails" in r.reason
    )
    assert ("budget_limited_winner", "l") not in found
    assert "6%" in found[("underspending", "u")].reason


def test_rule_campaign_budget_winner_uses_update_campaign():
    winner, loser = _m(spend_minor=2000, purchases=10, impressions=1), _m(spend_minor=2000, purchases=1, impressions=1)
    stats, days = _ad_stats({"1": ("a", winner, winner), "2": ("b", loser, loser)})
    adsets = [
        {"id": "a", "campaign_id": "cw", "effective_status": "ACTIVE"},
        {"id": "b", "campaign_id": "cl", "effective_status": "ACTIVE"},
    ]
    campaigns = [{"id": "cw", "name": "CW", "daily_budget": "2000"}, {"id": "cl", "name": "CL", "daily_budget": "2000"}]
    r = _rules(stats, days, adsets=adsets, campaigns=campaigns)[("budget_limited_winner", "cw")]
    assert (r.op, r.args) == ("update_campaign", {"campaign_id": "cw", "daily_budget": 2400})


def test_rule_learning_phase_counts_results_since_the_last_edit():
    day = _m(impressions=1000, clicks=10, spend_minor=2000, purchases=2)
    stats, days = _ad_stats({"1": ("s", day, day)})
    adsets = [
        {
            "id": "s",
            "name": "S",
            "campaign_id": "c",
            "daily_budget": "2000",
            "effective_status": "ACTIVE",
            "optimization_goal": "OFFSITE_CONVERSIONS",
            "updated_time": "2025-05-29T10:00:00+0000",
        }
    ]
    r = _rules(stats, days, adsets=adsets)[("learning_phase", "s")]
    assert "6 offsite_conversions results since the last significant edit (2025-05-29)" in r.reason  # 3 days × 2
    assert r.op == "update_adset" and r.args["daily_budget"] == 7143  # $10 CPA × 50 / 7 days


def test_rule_ads_with_issues():
    ads = [
        {
            "id": "9",
            "name": "Bold",
            "effective_status": "DISAPPROVED",
            "issues_info": [{"error_summary": "Ad not approved: X"}],
        },
        {"id": "10", "name": "Fine", "effective_status": "ACTIVE"},
    ]
    found = _rules({}, {}, ads=ads)
    assert found[("ad_issues", "9")].op == "get_ad" and "Ad not approved: X" in found[("ad_issues", "9")].reason
    assert ("ad_issues", "10") not in found


# -- over the sandbox ---------------------------------------------------------------------------------------------


async def _insight_requests(sandbox) -> int:
    return sum(n for route, n in (await sandbox.stats())["by_route"].items() if "insights" in route)


def _sum(rows: list[dict], currency: str) -> dict[str, int]:
    total = fi.totals([fi.parse_row(r, currency) for r in rows], currency)
    return {k: getattr(total, k) for k in ADDITIVE}


async def test_breakdowns_sum_to_the_totals(graph, demo_accounts):
    usd = demo_accounts["USD"]
    ctx = OpContext(graph=graph, ad_account_id=usd)
    whole = await fi.fetch_insights(
        ctx,
        usd,
        date_preset="last_14d",
        fields=("spend", "impressions", "clicks", "inline_link_clicks", "actions", "action_values"),
    )
    assert len(whole.rows) == 1 and fi.parse_row(whole.rows[0], "USD").spend_minor > 0
    expected = _sum(whole.rows, "USD")
    for breakdowns in (
        ["age", "gender"],
        ["country"],
        ["publisher_platform", "platform_position", "impression_device"],
    ):
        split = await fi.fetch_insights(
            ctx,
            usd,
            date_preset="last_14d",
            breakdowns=breakdowns,
            fields=("spend", "impressions", "clicks", "inline_link_clicks", "actions", "action_values"),
        )
        assert all(b in row for row in split.rows for b in breakdowns)
        assert len(split.rows) > 1 or breakdowns == ["country"]  # the demo delivers in one country
        assert _sum(split.rows, "USD") == expected, breakdowns
    daily = await fi.fetch_insights(ctx, usd, level="ad", date_preset="last_14d", time_increment=1)
    assert _sum(daily.rows, "USD") == {k: expected[k] for k in ADDITIVE}


async def test_get_insights_text_in_usd_and_jpy(facebook, demo_accounts):
    result = await facebook.call("get_insights", {"level": "ad", "date_preset": "last_7d", "limit": 2})
    assert result.ok, result.text
    total = result.data["totals"]
    assert total["spend_minor"] == sum(r["spend_minor"] for r in result.data["rows"])
    assert f"spend {fi.money(total['spend_minor'], 'USD')}" in result.text and "Top 2 by spend" in result.text
    assert result.text.count("\n- ") == 2 and result.data["currency"] == "USD"
    jpy = await facebook.call("get_insights", {"object_id": demo_accounts["JPY"], "date_preset": "last_7d"})
    assert jpy.ok, jpy.text
    assert "¥" in jpy.text and "$" not in jpy.text and jpy.data["currency"] == "JPY"
    assert jpy.data["totals"]["spend_minor"] == round(float(jpy.data["summary"]["spend"]))


@pytest.mark.parametrize(
    ("args", "blamed"),
    [
        ({"fields": ["impressions", "bogus"]}, "fields"),
        ({"breakdowns": ["age", "country"]}, "breakdowns"),
        ({"breakdowns": ["weather"]}, "breakdowns"),
        ({"since": "2025-03-10", "until": "2025-03-01"}, "since"),
        ({"date_preset": "last_7d", "since": "2025-03-01", "until": "2025-03-02"}, "date_preset"),
        ({"time_increment": "weekly"}, "time_increment"),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(facebook, sandbox, args, blamed):
    before = await _insight_requests(sandbox)
    for op in ("get_insights", "export_insights", "create_report"):
        result = await facebook.call(op, args)
        assert not result.ok and result.text.startswith("ERROR validation") and result.data["blame_field"] == blamed, (
            result.text
        )
    assert await _insight_requests(sandbox) == before


@contextlib.asynccontextmanager
async def _clock_running(sandbox, step: int = 5):
    """Advance the sandbox clock in the background, as time passes at Facebook while a report runs."""

    async def tick():
        while True:
            await sandbox.control("POST", "clock", {"advance": step})
            await asyncio.sleep(0.05)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_since_reaches_back_37_months_from_the_sessions_today(facebook, sandbox):
    """The bound counts from the session's today (the sandbox's date, however far it is from this machine's)."""
    today = datetime.fromtimestamp((await sandbox.control("GET", "clock"))["epoch"], UTC).date()
    months = today.year * 12 + today.month - 1 - fi.MAX_MONTHS_BACK
    oldest = date(months // 12, months % 12 + 1, min(today.day, 28))
    reached = await facebook.call("get_insights", {"since": oldest.isoformat(), "until": today.isoformat()})
    assert reached.ok, reached.text
    await sandbox.control("POST", "stats/reset")
    too_old = await facebook.call(
        "get_insights", {"since": (oldest - timedelta(days=1)).isoformat(), "until": today.isoformat()}
    )
    assert too_old.text.startswith("ERROR validation:") and too_old.data["blame_field"] == "since", too_old.text
    assert f"Facebook keeps insights since {oldest}" in too_old.text
    assert (await sandbox.stats())["requests"] == 0


async def test_switches_to_async_on_1487534_with_progress(graph, sandbox, demo_accounts, monkeypatch):
    usd = demo_accounts["USD"]
    ctx = OpContext(graph=graph, ad_account_id=usd)
    query = {"level": "ad", "date_preset": "last_14d", "time_increment": 1, "breakdowns": ["age", "gender"]}
    direct = await fi.fetch_insights(ctx, usd, **query)
    assert direct.report_run_id is None
    await sandbox.fault(
        kind="error",
        code=100,
        error_subcode=1487534,
        method="GET",
        path=r"insights$",
        count=1,
        message="Please reduce the amount of data you're asking for, then retry your request",
    )
    seen: list[tuple[str, int, int]] = []
    token = set_progress_handler(lambda label, done, total: seen.append((label, done, total)))
    monkeypatch.setattr(fi, "ASYNC_PAGE_SIZE", 100)  # several pages of the run's rows
    try:
        async with _clock_running(sandbox):
            via_run = await fi.fetch_insights(ctx, usd, **query)
    finally:
        reset_progress_handler(token)
    assert via_run.report_run_id and via_run.pages > 1
    assert seen and seen[-1] == (f"insights report {via_run.report_run_id}", 100, 100)
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    key = lambda r: (r["ad_id"], r["date_start"], r["age"], r["gender"])  # noqa: E731
    assert sorted(via_run.rows, key=key) == sorted(direct.rows, key=key)
    stats = (await sandbox.stats())["by_route"]
    assert any(route.startswith("POST") and "insights" in route for route in stats)


async def test_async_report_lifecycle_ops(facebook, sandbox, tmp_path):
    created = await facebook.call("create_report", {"level": "ad", "date_preset": "last_14d", "time_increment": 1})
    assert created.ok, created.text
    run_id = created.data["report_run_id"]
    assert run_id in created.text and "report_status" in created.text
    status = await facebook.call("report_status", {"report_run_id": run_id})
    assert status.ok and status.data["async_status"].startswith("Job")
    if status.data["async_status"] != "Job Completed":
        early = await facebook.call("get_report_results", {"report_run_id": run_id})
        assert not early.ok and "not complete" in early.text
    for _ in range(50):
        await sandbox.control("POST", "clock", {"advance": 30})
        status = await facebook.call("report_status", {"report_run_id": run_id})
        if status.data["async_status"] == "Job Completed":
            break
    assert status.data["async_status"] == "Job Completed" and "100%" in status.text
    first = await facebook.call("get_report_results", {"report_run_id": run_id, "limit": 5})
    assert first.ok, first.text
    assert len(first.data["rows"]) == 5 and first.data["next_after"] and "after=" in first.text
    second = await facebook.call(
        "get_report_results", {"report_run_id": run_id, "limit": 5, "after": first.data["next_after"]}
    )
    assert second.ok and {r["ad_id"] + r["date_start"] for r in second.data["rows"]}.isdisjoint(
        r["ad_id"] + r["date_start"] for r in first.data["rows"]
    )
    everything = await facebook.call("get_report_results", {"report_run_id": run_id, "all": True, "out_dir": "out"})
    assert everything.ok, everything.text
    with open(everything.files[0], newline="") as handle:
        lines = list(csv.DictReader(handle))
    direct = await facebook.call("get_insights", {"level": "ad", "date_preset": "last_14d", "time_increment": 1})
    assert len(lines) == everything.data["row_count"] == direct.data["row_count"]
    assert everything.data["totals"]["spend_minor"] == direct.data["totals"]["spend_minor"]


async def test_export_insights_csv_parses_back_to_the_rows(facebook, graph, demo_accounts, tmp_path):
    args = {"level": "ad", "date_preset": "last_14d", "time_increment": 1, "breakdowns": ["gender"]}
    result = await facebook.call("export_insights", {**args, "out_dir": "out"})
    assert result.ok, result.text
    path = result.files[0]
    assert path.endswith(".csv") and path.startswith(str(facebook.files_dir / "out") + "/") and path in result.text
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        lines = [dict(zip(header, line)) for line in reader]
    assert header == result.data["columns"] and "spend" in header and "purchases" in header and "gender" in header
    rows = (await fi.fetch_insights(OpContext(graph=graph), demo_accounts["USD"], **args)).rows
    assert len(lines) == len(rows) == result.data["rows"]
    scalar = [c for c in header if c not in fi.FLAT_COLUMNS]
    assert [{c: line[c] for c in scalar} for line in lines] == [{c: row.get(c, "") for c in scalar} for row in rows]
    for line, row in zip(lines, rows):
        parsed = fi.parse_row(row, "USD")
        assert int(line["purchases"]) == parsed.purchases and int(line["link_clicks"]) == parsed.link_clicks
        assert round(float(line["purchase_value"]) * 100) == parsed.purchase_value_minor


async def test_chart_insights_writes_a_1200x700_png(facebook, tmp_path):
    result = await facebook.call("chart_insights", {"date_preset": "last_14d", "out_dir": "out"})
    assert result.ok, result.text
    assert result.files and result.files[0] in result.text and result.data["days"] > 1
    assert _png_size(result.files[0]) == (1200, 700)


async def test_export_report_writes_a_pdf_with_several_pages(facebook, tmp_path):
    result = await facebook.call("export_report", {"date_preset": "last_14d", "out_dir": "out"})
    assert result.ok, result.text
    data = Path(result.files[0]).read_bytes()
    assert data.startswith(b"%PDF") and result.data["pages"] > 1
    assert (
        data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") + data.count(b"/Type /Page>") >= result.data["pages"]
        or data.count(b"/Type /Page") > result.data["pages"]
    )  # the pages plus the /Pages tree
    assert result.data["section"] == "Top movers (campaign spend vs the period before)"
    assert (
        result.data["campaigns"]
        and result.data["campaigns"][0]["spend_minor"] >= result.data["campaigns"][-1]["spend_minor"]
    )


async def test_export_report_takes_a_registered_section(facebook, tmp_path, monkeypatch):
    calls = []

    async def provider(ctx, account_id, since, until):
        calls.append((account_id, since, until))
        return ["Scale the winners."]

    monkeypatch.setattr(fi, "_report_sections", [])
    fi.register_report_section(provider)
    result = await facebook.call("export_report", {"date_preset": "last_7d", "out_dir": "out"})
    assert result.ok and result.data["section"] == "Recommendations" and calls and calls[0][1] <= calls[0][2]


async def test_compare_two_periods_and_objects_side_by_side(facebook, demo_accounts):
    result = await facebook.call("compare_insights", {"since": "2026-01-08", "until": "2026-01-14"})
    assert result.ok, result.text
    assert result.data["compared_with"] == "2026-01-01..2026-01-07"
    now = await facebook.call("get_insights", {"date_preset": "last_7d"})
    cmp = await facebook.call("compare_insights", {"date_preset": "last_7d"})
    assert cmp.ok, cmp.text
    spend = cmp.data["comparison"]["spend_minor"]
    assert spend["current"] == now.data["totals"]["spend_minor"]
    since, until = cmp.data["compared_with"].split("..")
    before = await facebook.call("get_insights", {"since": since, "until": until})
    assert (
        spend["previous"] == before.data["totals"]["spend_minor"]
        and spend["delta"] == spend["current"] - spend["previous"]
    )
    if spend["previous"]:
        assert spend["pct_change"] == pytest.approx((spend["current"] - spend["previous"]) / spend["previous"] * 100)
    assert any(arrow in cmp.text for arrow in ("▲", "▼", "→"))
    campaigns = await facebook.call("get_insights", {"level": "campaign", "date_preset": "last_7d"})
    ids = [r["campaign_id"] for r in campaigns.data["rows"]][:2] + [demo_accounts["USD"]]
    side = await facebook.call("compare_insights", {"object_ids": ids, "date_preset": "last_7d"})
    assert side.ok, side.text
    assert set(side.data["objects"]) == set(ids) and side.text.count("\n- ") == len(ids)
    assert side.data["objects"][demo_accounts["USD"]]["spend_minor"] == now.data["totals"]["spend_minor"]


async def test_an_object_without_delivery_answers_the_shape_its_ops_declare(facebook):
    """Issue 20 (typed results): the "no delivery" answers carry the keys of the delivering ones, and each is what the
    op's result model (its MCP outputSchema) allows."""
    from fi_facebook import REGISTRY

    made = await facebook.call(
        "create_campaign", {"name": "Quiet campaign", "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000}
    )
    assert made.ok, made.text
    quiet_id = made.data["campaign_id"]
    delivering = await facebook.call("get_insights", {"date_preset": "last_7d"})
    quiet = await facebook.call("get_insights", {"object_id": quiet_id, "date_preset": "last_7d"})
    assert delivering.ok and delivering.data["row_count"] > 0, delivering.text
    assert quiet.ok and "No delivery" in quiet.text and quiet.data["rows"] == [] and quiet.data["row_count"] == 0, (
        quiet.text
    )
    assert set(quiet.data) == set(delivering.data) and quiet.data["totals"]["spend_minor"] == 0
    compared = await facebook.call("compare_insights", {"object_ids": [quiet_id], "date_preset": "last_7d"})
    assert compared.ok and compared.data["comparison"] is None and "nothing to compare" in compared.text, compared.text
    assert compared.data["period"] == "last_7d" and compared.data["currency"] == delivering.data["currency"]
    chart = await facebook.call("chart_insights", {"object_id": quiet_id, "date_preset": "last_7d"})
    assert chart.ok and chart.data["days"] == 0 and not chart.files, chart.text
    for op, answer in (("get_insights", quiet), ("compare_insights", compared), ("chart_insights", chart)):
        assert REGISTRY.result_problems(REGISTRY.require(op), answer.data) == [], op


def test_the_row_model_names_every_number_a_metric_row_answers():
    row = fi.parse_row(_row(impressions=10, clicks=1, spend="1.00", campaign_id="7", age="25-34"), "USD")
    assert set(row.to_dict()) - set(row.dims) == set(fi.Metrics.model_fields)
    assert fi.InsightsRow.model_validate(row.to_dict()).campaign_id == "7"  # age: a breakdown value, kept as it came
    total = fi.Metrics.model_validate(fi.totals([row, row]).to_dict())  # totals: the numbers only
    assert (total.impressions, total.spend_minor, total.ctr) == (20, 200, 10.0)


async def test_recommendations_over_the_sandbox(facebook, graph, sandbox, demo_accounts):
    result = await facebook.call("recommendations", {})
    assert result.ok, result.text
    recs = result.data["recommendations"]
    issues = [r for r in recs if r["rule"] == "ad_issues"]
    assert issues and issues[0]["action"]["op"] == "get_ad" and "DISAPPROVED" in issues[0]["reason"]
    learning = [r for r in recs if r["rule"] == "learning_phase"]
    assert learning and "since the last significant edit" in learning[0]["reason"], result.text
    assert result.text.count("\n- ") == len(recs)
    adset = await graph.get(learning[0]["object_id"], {"fields": "campaign_id"})
    campaign = await graph.get(adset["campaign_id"], {"fields": "daily_budget"})
    await graph.post(
        adset["campaign_id"], {"daily_budget": int(campaign["daily_budget"]) * 40}
    )  # enough for 50+ results a week
    await sandbox.control("POST", "clock", {"advance": 8 * 86400})
    after = await facebook.call("recommendations", {})
    assert after.ok, after.text
    assert not [
        r
        for r in after.data["recommendations"]
        if r["rule"] == "learning_phase" and r["object_id"] == learning[0]["object_id"]
    ]
    assert [r for r in after.data["recommendations"] if r["rule"] == "ad_issues"]


async def test_recommendations_read_the_campaign_first(facebook, graph, demo_accounts):
    # A campaign this person cannot see is Facebook's error, never "no recommendations"; a campaign of another of the
    # person's accounts is recommended on in its own account unless ad_account_id names a different one.
    unseen = await facebook.call("recommendations", {"campaign_id": "120219999999999999"})
    assert not unseen.ok and unseen.text.startswith("ERROR not_found: Unsupported get request"), unseen.text
    tokyo = (await graph.get_all(f"{demo_accounts['JPY']}/campaigns", {"fields": "id"}))[0]["id"]
    own = await facebook.call("recommendations", {"campaign_id": tokyo})
    assert own.ok and own.data["account_id"] == demo_accounts["JPY"], own.text
    mixed = await facebook.call("recommendations", {"campaign_id": tokyo, "ad_account_id": demo_accounts["USD"]})
    assert not mixed.ok and f"Campaign {tokyo} is not in ad account {demo_accounts['USD']}" in mixed.text

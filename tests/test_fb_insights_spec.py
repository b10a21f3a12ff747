"""fb_insights from Meta's spec (issue 17): every SDK breakdown and action breakdown accepted where Meta allows it,
the documented impossible combinations refused before sending (one line with the fix), attribution windows per
window, and a failed async report's v25 error fields read into its one-line error. Over the sandbox."""

from __future__ import annotations

import pytest

import fb_insights as fi
from fb_utils import GraphError, OpContext, ValidationError

TODAY = fi.date(2026, 12, 6)


def _fields_for(breakdown: str) -> tuple[str, ...]:
    extra = (fi.ONLY_WITH_FIELD[breakdown],) if breakdown in fi.ONLY_WITH_FIELD else ()
    reach = () if breakdown in fi.HOURLY_BREAKDOWNS else ("reach",)  # hourly: no reach (Meta answers 0)
    return ("impressions", "clicks", "spend", *reach, "actions", "action_values") + extra


def _asked_with(breakdown: str) -> list[str]:
    """The breakdown alone, or the documented permutation it belongs to when Meta lists it only combined."""
    try:
        fi.build_query("act_1", fields=_fields_for(breakdown), breakdowns=[breakdown], level="ad", today=TODAY)
        return [breakdown]
    except ValidationError:
        entry = next(
            cols for cols, _ in fi.DOCUMENTED_PERMUTATIONS if breakdown in cols and set(cols) <= set(fi.BREAKDOWNS)
        )
        return list(entry)


def test_the_accepted_lists_are_the_sdks():
    from facebook_business.adobjects.adsinsights import AdsInsights

    assert set(fi.BREAKDOWNS) == {v for k, v in vars(AdsInsights.Breakdowns).items() if not k.startswith("_")}
    assert set(fi.ACTION_BREAKDOWNS) == {
        v for k, v in vars(AdsInsights.ActionBreakdowns).items() if not k.startswith("_")
    }
    assert set(fi.ATTRIBUTION_WINDOWS) == {
        v for k, v in vars(AdsInsights.ActionAttributionWindows).items() if not k.startswith("_")
    }
    assert set(fi.FIELDS) == {v for k, v in vars(AdsInsights.Field).items() if not k.startswith("_")}


@pytest.mark.parametrize("breakdown", fi.BREAKDOWNS)
def test_every_sdk_breakdown_is_accepted_where_meta_allows_it(breakdown):
    asked = _asked_with(breakdown)
    query = fi.build_query("act_1", fields=_fields_for(breakdown), breakdowns=asked, level="ad", today=TODAY)
    assert breakdown in query.params()["breakdowns"].split(",")


@pytest.mark.parametrize("action_breakdown", fi.ACTION_BREAKDOWNS)
def test_every_sdk_action_breakdown_is_accepted(action_breakdown):
    query = fi.build_query("act_1", fields=("actions",), action_breakdowns=[action_breakdown], today=TODAY)
    assert query.params()["action_breakdowns"] == action_breakdown


@pytest.mark.parametrize(
    ("kwargs", "words", "fix"),
    [
        ({"breakdowns": ["age", "country"]}, "age + country cannot be combined", "separate requests"),
        ({"breakdowns": ["country", "region"]}, "cannot be combined", "separate requests"),
        (
            {"breakdowns": ["country"], "action_breakdowns": ["action_device"]},
            "cannot be combined",
            "separate requests",
        ),
        (
            {"breakdowns": ["hourly_stats_aggregated_by_advertiser_time_zone"], "fields": ["impressions", "reach"]},
            "hourly breakdowns do not support reach",
            "Drop reach",
        ),
        (
            {"breakdowns": ["hourly_stats_aggregated_by_audience_time_zone"], "fields": ["video_p25_watched_actions"]},
            "cannot be requested with an hourly breakdown",
            "Drop the video fields",
        ),
        ({"breakdowns": ["frequency_value"], "fields": ["impressions"]}, "used with reach only", "Add reach"),
        (
            {"breakdowns": ["region"], "fields": ["video_p75_watched_actions"]},
            "does not support the region breakdown",
            "country",
        ),
        (
            {"breakdowns": ["body_asset"], "fields": ["impressions", "cpm"]},
            "dynamic creative asset",
            "impressions, clicks",
        ),
        ({"breakdowns": ["place_page_id"], "fields": ["impressions"]}, "account level", "level campaign"),
        ({"attribution_windows": ["7d_clicks"]}, "not an attribution window", "1d_click"),
        ({"action_breakdowns": ["action_colour"]}, "not an action breakdown", "action_type"),
    ],
)
def test_impossible_combinations_are_refused_in_one_line_with_the_fix(kwargs, words, fix):
    with pytest.raises(ValidationError) as caught:
        fi.build_query("act_1", today=TODAY, **kwargs)
    line = caught.value.to_text()
    assert words in line and fix in line and "\n" not in line, line


def test_an_undocumented_mix_is_sent_with_a_note():
    query = fi.build_query("act_1", breakdowns=["publisher_platform", "device_platform"], today=TODAY)
    assert query.notes and "unverified" in query.notes[0]
    assert not fi.build_query("act_1", breakdowns=["age", "gender"], today=TODAY).notes


async def _insight_requests(sandbox) -> int:
    return sum(n for route, n in (await sandbox.stats())["by_route"].items() if "insights" in route)


async def test_refusals_send_nothing(facebook, sandbox):
    before = await _insight_requests(sandbox)
    for args in ({"breakdowns": ["age", "country"]}, {"breakdowns": ["frequency_value"], "fields": ["impressions"]}):
        result = await facebook.call("get_insights", args)
        assert result.text.startswith("ERROR validation") and "Fix:" in result.text and "\n" not in result.text, (
            result.text
        )
    assert await _insight_requests(sandbox) == before


async def test_every_sdk_breakdown_over_the_sandbox_sums_to_the_totals(graph, demo_accounts):
    usd = demo_accounts["USD"]
    ctx = OpContext(graph=graph, ad_account_id=usd)
    refused = []
    for breakdown in fi.BREAKDOWNS:
        fields = _fields_for(breakdown)
        whole = await fi.fetch_insights(ctx, usd, level="campaign", date_preset="last_14d", fields=fields)
        try:
            split = await fi.fetch_insights(
                ctx, usd, level="campaign", date_preset="last_14d", fields=fields, breakdowns=_asked_with(breakdown)
            )
        except GraphError as error:
            refused.append((breakdown, error.to_text()))
            continue
        assert split.rows and all(breakdown in r for r in split.rows), breakdown
        expected = fi.totals([fi.parse_row(r, "USD") for r in whole.rows], "USD")
        got = fi.totals([fi.parse_row(r, "USD") for r in split.rows], "USD")
        assert (got.spend_minor, got.impressions, got.clicks) == (
            expected.spend_minor,
            expected.impressions,
            expected.clicks,
        ), breakdown
    assert refused == []


async def test_attribution_windows_show_per_window_values(facebook):
    result = await facebook.call(
        "get_insights",
        {
            "date_preset": "last_14d",
            "fields": ["spend", "actions"],
            "attribution_windows": ["1d_click", "7d_click", "28d_click", "1d_view", "7d_view"],
        },
    )
    assert result.ok, result.text
    assert result.data["params"]["action_attribution_windows"] == "1d_click,7d_click,28d_click,1d_view,7d_view"
    windows = result.data["attribution_windows"]
    assert "7d_view" not in windows  # Meta: no data since 2026-01-12
    assert "7d_view and" not in result.text and "7d_view has no data since 2026-01-12" in result.text
    for action_type, default in windows["value"].items():
        assert windows["1d_click"][action_type] <= windows["7d_click"][action_type] <= windows["28d_click"][action_type]
        assert windows["7d_click"][action_type] + windows["1d_view"][action_type] == default
    line = next(x for x in result.text.splitlines() if "by attribution window" in x)
    shown = line.split(": ", 1)[1]
    assert shown.startswith("1d_click ") and "default" in shown and "(no data: 7d_view)" in shown


async def test_a_failed_report_reads_its_error_fields(facebook, sandbox, graph, demo_accounts):
    await sandbox.fault(kind="error", path="^report_run/act_", message="Too many rows in one bucket")
    started = await facebook.call("create_report", {"date_preset": "last_7d"})
    assert started.ok, started.text
    run_id = started.data["report_run_id"]
    await sandbox.control("POST", "clock", {"advance": 30})
    status = await facebook.call("report_status", {"report_run_id": run_id})
    assert status.ok and "Job Failed" in status.text and "Report Failed: Generating the report failed" in status.text
    assert status.data["error"]["code"] == -2 and status.data["error"]["error_subcode"] == 2490547
    with pytest.raises(GraphError) as caught:
        await fi.wait_for_report(OpContext(graph=graph, ad_account_id=demo_accounts["USD"]), run_id)
    error = caught.value
    assert (error.code, error.error_subcode, error.user_title) == (-2, 2490547, "Report Failed")
    assert error.data["error_message"] == "Too many rows in one bucket"
    assert "\n" not in error.to_text() and "create_report" in error.to_text()

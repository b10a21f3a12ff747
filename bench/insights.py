"""Benchmark 6: a 90-day ad-level daily insights report for 1 000 ads (90 000 rows), streamed vs loaded whole.

    .venv/bin/python bench/insights.py          # print the figures (bench/run.py runs it as part of `make bench`)

The sandbox runs in its own process and seeds a campaign with the ads and their history with its delivery scenario route
(`POST /__sandbox/delivery {"scenario": {"ads": 1000, "days": 90}}`). Each side runs in a fresh subprocess (clean
peak RSS) and fetches the same report (that campaign, level ad, daily, its last `days` days) through the async path (the synchronous request answers 100/1487534, the
client creates a report run, polls it, pages the rows 5 000 at a time); the parent advances the sandbox clock while
a run is being prepared, as time passes at Facebook. "streaming" folds rows into totals and per-ad sums as they
arrive (fb_insights.iter_insights); "whole list" loads every row into a list (fetch_insights), then summarizes.
Wall time and peak RSS of each are printed side by side (target: the streaming bot's peak RSS under 200 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RSS_TARGET_MB = 200.0
FIELDS = (
    "ad_id",
    "ad_name",
    "adset_id",
    "campaign_id",
    "date_start",
    "impressions",
    "reach",
    "clicks",
    "inline_link_clicks",
    "spend",
    "actions",
    "action_values",
)


def _summary(aggregate) -> dict:
    top = sorted(aggregate.groups.values(), key=lambda m: m.spend_minor, reverse=True)[:5]
    return {
        "rows": aggregate.count,
        "ads": len(aggregate.groups),
        "spend_minor": aggregate.total.spend_minor,
        "impressions": aggregate.total.impressions,
        "conversions": aggregate.total.conversions,
        "top_ads": [m.dims.get("ad_id") for m in top],
    }


async def child(kind: str, url: str, grant: dict, account: str, object_id: str, since: str, until: str) -> dict:
    from upload import peak_rss_kb

    import fb_insights as fi
    from fb_utils import GraphClient, OpContext

    async with GraphClient(grant["access_token"], app_secret=grant["app_secret"], base_url=url, timeout=300) as graph:
        info = await graph.account_info(account)
        ctx = OpContext(graph=graph, ad_account_id=account)
        query = {"level": "ad", "fields": FIELDS, "since": since, "until": until, "time_increment": 1}
        before = peak_rss_kb()
        started = time.perf_counter()
        aggregate = fi.Aggregator(info.currency, key=lambda m: m.dims.get("ad_id"))
        state = fi._FetchState()
        if kind == "streaming":
            async for row in fi.iter_insights(ctx, object_id, _state=state, **query):
                aggregate.add_raw(row)
            run_id = state.report_run_id
        else:
            result = await fi.fetch_insights(ctx, object_id, **query)
            parsed = [fi.parse_row(row, info.currency) for row in result.rows]
            for row in parsed:
                aggregate.add(row)
            run_id = result.report_run_id
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "rss_before_kb": before,
            "rss_peak_kb": peak_rss_kb(),
            "report_run_id": run_id,
            "requests": graph.request_count,
            **_summary(aggregate),
        }


def run_child(kind: str, url: str, grant: dict, account: str, campaign: str, since: str, until: str) -> dict:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--url",
            url,
            "--account",
            account,
            "--object",
            campaign,
            "--since",
            since,
            "--until",
            until,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "ADMONSTER_BENCH_GRANT": json.dumps(grant)},
    )
    if output.returncode != 0:
        raise RuntimeError(f"the {kind} run failed:\n{output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


@contextlib.asynccontextmanager
async def clock_running(session: aiohttp.ClientSession, url: str, step: int = 5):
    """Advance the sandbox clock in the background (async report runs progress with it)."""

    async def tick():
        while True:
            async with session.post(f"{url}/__sandbox/clock", json={"advance": step}) as resp:
                await resp.read()
            await asyncio.sleep(0.1)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def bench_insights(ads: int = 1000, days: int = 90) -> dict:
    from run import external_sandbox

    async with external_sandbox() as url, aiohttp.ClientSession() as session:
        async with session.post(f"{url}/__sandbox/tokens") as resp:
            grant = await resp.json()
        async with session.post(f"{url}/__sandbox/delivery", json={"scenario": {"ads": ads, "days": days}}) as resp:
            scenario = await resp.json()
            if resp.status >= 400:
                raise RuntimeError(f"the sandbox's delivery scenario route refused: {scenario}")
        made = scenario.get("scenario") or {}
        account, campaign = made.get("account_id"), made.get("campaign_id")
        last = (scenario.get("last_day") or {}).get(account)
        if not (account and campaign and last):
            raise RuntimeError(
                f"the delivery scenario answered no account, campaign or last day: {str(scenario)[:300]}"
            )
        until = date.fromisoformat(str(last)[:10])
        since = until - timedelta(days=days - 1)
        results = {}
        for kind in ("streaming", "whole"):
            async with clock_running(session, url):
                results[kind] = await asyncio.to_thread(
                    run_child, kind, url, grant, account, campaign, since.isoformat(), until.isoformat()
                )
    streaming, whole = results["streaming"], results["whole"]
    same = all(streaming[k] == whole[k] for k in ("rows", "ads", "spend_minor", "impressions", "conversions"))
    peak_mb = streaming["rss_peak_kb"] / 1024
    return {
        "ads": ads,
        "days": days,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "streaming": streaming,
        "whole": whole,
        "same_summary": same,
        "streaming_peak_mb": peak_mb,
        "whole_peak_mb": whole["rss_peak_kb"] / 1024,
        "async": bool(streaming["report_run_id"] and whole["report_run_id"]),
        "target": f"streaming peak RSS < {RSS_TARGET_MB:.0f} MB",
        "ok": peak_mb < RSS_TARGET_MB and same and bool(streaming["report_run_id"]),
    }


def report_line(result: dict) -> list[str]:
    s, w = result["streaming"], result["whole"]
    verdict = "PASS" if result["ok"] else "MISS"
    return [
        f"6. Insights: {result['days']}-day ad-level daily report for {result['ads']} ads ({s['rows']:,} rows, "
        f"{result['since']}..{result['until']}) from the sandbox in its own process, through the async report path "
        f"({'yes' if result['async'] else 'NO'}), each side in a fresh subprocess:",
        f"   streaming (iter_insights) {s['seconds']:.2f} s, peak RSS {s['rss_peak_kb'] / 1024:.0f} MB · whole list "
        f"(fetch_insights) {w['seconds']:.2f} s, peak RSS {w['rss_peak_kb'] / 1024:.0f} MB · "
        f"{w['rss_peak_kb'] / max(1, s['rss_peak_kb']):.2f}× the memory, same summary: {'yes' if result['same_summary'] else 'NO'} "
        f"(target {result['target']}) {verdict}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ads", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--child", choices=("streaming", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--account", help=argparse.SUPPRESS)
    parser.add_argument("--object", help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    parser.add_argument("--until", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        grant = json.loads(os.environ["ADMONSTER_BENCH_GRANT"])
        print(
            json.dumps(
                asyncio.run(
                    child(
                        options.child, options.url, grant, options.account, options.object, options.since, options.until
                    )
                )
            )
        )
        return 0
    result = asyncio.run(bench_insights(options.ads, options.days))
    print("\n".join(report_line(result)))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

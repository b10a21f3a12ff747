"""Simulated history is history (issue 17, item 4): a day that has passed on the sandbox clock is computed once, from
the state the objects had on that day, whatever is changed or read afterwards.

Each case runs the same change in the test's sandbox and leaves a twin sandbox (same seed, same frozen clock) untouched
or reads it first: the days before the change must be equal in both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from conftest import SandboxHandle, running_sandbox
from fb_sandbox import delivery
from fb_utils import GraphClient
from testkit import SANDBOX_START

NOW = SANDBOX_START.timestamp() + 3600  # frozen here in both sandboxes: the same days everywhere
DAY = 86400


async def freeze(*sandboxes: SandboxHandle, at: float = NOW) -> None:
    for sandbox in sandboxes:
        await sandbox.control("POST", "clock", {"set": at, "frozen": True})


async def graph_get(sandbox: SandboxHandle, path: str, **params) -> dict:
    async with _client(sandbox) as graph:
        return await graph.get(path, params)


async def graph_post(sandbox: SandboxHandle, path: str, **params) -> dict:
    async with _client(sandbox) as graph:
        return await graph.post(path, params)


@asynccontextmanager
async def _client(sandbox: SandboxHandle) -> AsyncIterator[GraphClient]:
    token = await sandbox.token(expires_in=0)
    graph = GraphClient(token["access_token"], app_secret=token["app_secret"], base_url=sandbox.url)
    try:
        yield graph
    finally:
        await graph.close()


async def daily_spend(sandbox: SandboxHandle, object_id: str, preset: str = "last_30d") -> dict[str, str]:
    rows = (
        await graph_get(
            sandbox, f"{object_id}/insights", fields="spend", date_preset=preset, time_increment="1", limit="100"
        )
    )["data"]
    return {row["date_start"]: row["spend"] for row in rows}


async def spending_campaign(sandbox: SandboxHandle, currency: str) -> tuple[str, str]:
    """An ACTIVE demo campaign of the demo account in ``currency`` that spent in the last 30 days: (account, campaign)."""
    accounts = (await sandbox.control("GET", "objects?type=adaccount"))["data"]
    account = next(a for a in accounts if a.get("currency") == currency)
    campaigns = (await sandbox.control("GET", f"objects?type=campaign&account_id={account['id']}"))["data"]
    for campaign in sorted(campaigns, key=lambda c: c["id"]):
        if campaign.get("status") == "ACTIVE":
            return account["id"], campaign["id"]
    raise AssertionError(f"no ACTIVE demo campaign in {currency}")


async def test_pausing_a_campaign_before_any_report_keeps_the_spend_it_had(facebook, sandbox):
    """The issue's case: pause a demo campaign before anything was read; /spend last_30d still shows its spend."""
    async with running_sandbox() as untouched:
        await freeze(sandbox, untouched)
        account_id, campaign_id = await spending_campaign(sandbox, "USD")
        had = await daily_spend(untouched, campaign_id)  # read first, nothing changed
        assert sum(float(v) for v in had.values()) > 0, had

        paused = await facebook.call("pause_campaign", {"campaign_id": campaign_id})
        assert paused.ok, paused.text
        report = await facebook.call("spend_report", {"date_preset": "last_30d", "ad_account_id": account_id})
        assert report.ok, report.text
        [shown] = [c for c in report.data["accounts"][0]["campaigns"] if c["campaign_id"] == campaign_id]
        assert shown["spend_minor"] == round(sum(float(v) for v in had.values()) * 100) > 0, (shown, had)
        assert await daily_spend(sandbox, campaign_id) == had


async def test_a_budget_change_never_rewrites_past_spend_in_yen(sandbox):
    async with running_sandbox() as untouched:
        await freeze(sandbox, untouched)
        _, campaign_id = await spending_campaign(sandbox, "JPY")
        had = await daily_spend(untouched, campaign_id)
        adsets = (await graph_get(sandbox, f"{campaign_id}/adsets", fields="daily_budget"))["data"]
        campaign = await graph_get(sandbox, campaign_id, fields="daily_budget")
        target = campaign["id"] if campaign.get("daily_budget") else adsets[0]["id"]
        budget = int((campaign if target == campaign["id"] else adsets[0])["daily_budget"])
        assert (await graph_post(sandbox, target, daily_budget=str(budget * 3)))["success"] is True
        assert await daily_spend(sandbox, campaign_id) == had  # the past, read after the change
        for handle in (sandbox, untouched):
            await handle.control("POST", "clock", {"advance": 2 * DAY})
        after, twin_after = await daily_spend(sandbox, campaign_id), await daily_spend(untouched, campaign_id)
        kept = {d: v for d, v in had.items() if d in after}  # last_30d has moved on by two days
        assert len(kept) == len(had) - 2 and {d: after[d] for d in kept} == kept  # still the same two days later
        new_days = sorted(set(after) - set(had))
        assert new_days and sum(float(after[d]) for d in new_days) > sum(float(twin_after[d]) for d in new_days), (
            after,
            twin_after,
        )  # the higher budget counts from the day it was set


async def test_a_campaign_paused_mid_day_delivers_that_day_until_the_pause(sandbox):
    async with running_sandbox() as untouched:
        await freeze(sandbox, untouched)
        made = [
            (
                await handle.control(
                    "POST", "delivery", {"scenario": {"ads": 1, "adsets": 1, "days": 3, "name": "Mid-day pause"}}
                )
            )["scenario"]
            for handle in (sandbox, untouched)
        ]
        assert made[0]["campaign_id"] == made[1]["campaign_id"]
        campaign_id, account_id = made[0]["campaign_id"], made[0]["account_id"]
        sb = sandbox.server.sandbox
        tz = delivery.account_tz(sb.store.get(account_id))
        today = delivery.account_today(sb, account_id)
        start, end = delivery.day_bounds(today, tz)
        assert start < NOW < end - 3600, "the pause must fall inside the day"

        assert (await graph_post(sandbox, campaign_id, status="PAUSED"))["success"] is True
        for handle in (sandbox, untouched):
            await handle.control("POST", "clock", {"advance": 2 * DAY})
        paused, running = await daily_spend(sandbox, campaign_id), await daily_spend(untouched, campaign_id)
        day = today.isoformat()
        assert {d: v for d, v in paused.items() if d < day} == {d: v for d, v in running.items() if d < day}
        assert 0 < float(paused[day]) < float(running[day]), (paused, running)  # the hours before the pause only
        later = (today + timedelta(days=1)).isoformat()
        assert later not in paused and later in running


async def test_the_status_log_keeps_each_change_with_its_time(sandbox):
    """The hook logs every status change of a campaign, ad set or ad with its time, and only those."""
    await freeze(sandbox)
    scenario = (await sandbox.control("POST", "delivery", {"scenario": {"ads": 1, "days": 0}}))["scenario"]
    ad_id = scenario["ad_ids"][0]
    await graph_post(sandbox, ad_id, status="PAUSED")
    await graph_post(sandbox, ad_id, name="Renamed")
    await sandbox.control("POST", "clock", {"set": NOW + 600, "frozen": True})
    await graph_post(sandbox, ad_id, status="ACTIVE")
    ad = sandbox.server.sandbox.store.get(ad_id)
    assert ad["_status_log"] == [[NOW, "ACTIVE", "PAUSED"], [NOW + 600, "PAUSED", "ACTIVE"]]
    assert delivery.active_periods(ad) == [(float("-inf"), NOW), (NOW + 600, float("inf"))]

"""Ops: ad accounts (list, read, overview, create), spend caps, account users, businesses, pages, Instagram accounts."""

from __future__ import annotations

import asyncio
import difflib
import json
import re
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from facebook_business.adobjects.ad import Ad
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.business import Business
from facebook_business.adobjects.campaign import Campaign
from pydantic import Field, field_validator

from fb_utils import (
    DEFAULT_API_VERSION,
    MONEY_UNIT,
    Change,
    DataRow,
    FacebookError,
    GraphRequest,
    NetworkError,
    NotFoundError,
    OpArgs,
    OpContext,
    OpData,
    OpKind,
    OpResult,
    OpSet,
    PermissionDeniedError,
    TaskGroup,
    ValidationError,
    WritePlan,
    absent_key,
    api_version_warning,
    check_object_id,
    counted,
    format_money,
    graph_object,
    sdk_enum_values,
    to_minor,
)

ops = OpSet("fb_ad_account")

ACCOUNT_STATUS = {
    1: "ACTIVE",
    2: "DISABLED",
    3: "UNSETTLED",
    7: "PENDING_RISK_REVIEW",
    8: "PENDING_SETTLEMENT",
    9: "IN_GRACE_PERIOD",
    100: "PENDING_CLOSURE",
    101: "CLOSED",
    201: "ANY_ACTIVE",
    202: "ANY_CLOSED",
}

A = AdAccount.Field
LIST_FIELDS = ",".join([A.id, A.name, A.currency, A.account_status, A.amount_spent, A.spend_cap, A.timezone_name])
DETAIL_FIELDS = ",".join(
    [
        A.id,
        A.account_id,
        A.name,
        A.currency,
        A.account_status,
        A.disable_reason,
        A.amount_spent,
        A.balance,
        A.spend_cap,
        A.min_daily_budget,
        A.timezone_name,
        A.business,
        A.created_time,
    ]
)
AdAccountArg = Field(
    None, description="Ad account id (act_<digits>); defaults to the selected account.", examples=["act_1234567890"]
)

# ---- What the ops answer as data (their result models: MCP's outputSchema) ----------------------------------------


ListedAdAccount = graph_object(AdAccount, LIST_FIELDS, name="ListedAdAccount")
AdAccountObject = graph_object(AdAccount, DETAIL_FIELDS, name="AdAccountObject")


class AdAccountList(OpData):
    accounts: list[ListedAdAccount]  # type: ignore[valid-type]
    selected: str | None = Field(description="The workspace's selected ad account (null: none selected).")


class AdAccountData(OpData):
    account: AdAccountObject  # type: ignore[valid-type]


def status_name(value: Any) -> str:
    try:
        return ACCOUNT_STATUS.get(int(value), str(value))
    except (TypeError, ValueError):
        return str(value)


def cap_text(spend_cap: Any, currency: str) -> str:
    return "no spend cap" if spend_cap in (None, "", "0", 0) else f"spend cap {format_money(spend_cap, currency)}"


def account_line(account: dict[str, Any], selected: str | None) -> str:
    currency = account.get("currency", "")
    mark = "*" if account.get("id") == selected else " "
    spent = format_money(account.get("amount_spent") or 0, currency) if currency else account.get("amount_spent")
    return (
        f"{mark} {account['id']} · {account.get('name', '')} · {currency} · {status_name(account.get('account_status'))}"
        f" · spent {spent} · {cap_text(account.get('spend_cap'), currency)}"
    )


class ListAdAccountsArgs(OpArgs):
    """List the ad accounts this token can use, with currency, status, amount spent and spend cap (* = selected)."""

    limit: int = Field(100, ge=1, le=1000, description="Most accounts to list.")


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, core=True, result=AdAccountList)
async def list_ad_accounts(ctx: OpContext, args: ListAdAccountsArgs) -> OpResult:
    accounts = await ctx.graph.get_all(
        "me/adaccounts", {"fields": LIST_FIELDS, "limit": min(args.limit, 100)}, limit=args.limit
    )
    if not accounts:
        return OpResult(
            text="This token sees no ad accounts. Fix: connect a user with access to an ad account (/connect).",
            data={"accounts": [], "selected": ctx.ad_account_id},
        )
    lines = [f"Ad accounts ({len(accounts)}):"] + ["  " + account_line(a, ctx.ad_account_id) for a in accounts]
    if not ctx.ad_account_id:
        lines.append("Select one with /use act_… (select_ad_account).")
    return OpResult(text="\n".join(lines), data={"accounts": accounts, "selected": ctx.ad_account_id})


class GetAdAccountArgs(OpArgs):
    """Show one ad account: currency, status, time zone, spend, balance, spend cap, minimum daily budget."""

    ad_account_id: str | None = AdAccountArg


def account_details(account: dict[str, Any]) -> str:
    currency = account.get("currency", "")
    lines = [
        f"Ad account {account.get('name')} ({account['id']})",
        f"  status {status_name(account.get('account_status'))}, currency {currency}, time zone {account.get('timezone_name')}",
        f"  amount spent {format_money(account.get('amount_spent') or 0, currency)}, balance {format_money(account.get('balance') or 0, currency)}",
        f"  {cap_text(account.get('spend_cap'), currency)}",
    ]
    if account.get("min_daily_budget") not in (None, ""):
        lines.append(f"  minimum daily budget {format_money(account['min_daily_budget'], currency)}")
    if account.get("disable_reason") not in (None, 0, "0"):
        lines.append(f"  disable reason {account['disable_reason']}")
    if isinstance(account.get("business"), dict):
        lines.append(f"  business {account['business'].get('name')} ({account['business'].get('id')})")
    return "\n".join(lines)


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, result=AdAccountData)
async def get_ad_account(ctx: OpContext, args: GetAdAccountArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.get(account_id, {"fields": DETAIL_FIELDS})
    return OpResult(text=account_details(account), data={"account": account})


class AccountOverviewArgs(OpArgs):
    """The `status` overview: the account, its spend today and yesterday, each delivering campaign's daily budget (its own or its ad sets'), and what needs attention.

    Attention lists disapproved ads, active campaigns without an active ad set, budgets nearly spent today, a spend cap
    nearly reached and a Facebook token about to expire, each with the command that fixes it.
    """

    ad_account_id: str | None = AdAccountArg


# Effective statuses that deliver (or will once processed), and the ad status that never does: values of the SDK's
# Campaign/AdSet/Ad.EffectiveStatus enums, checked against them here.
LIVE_STATUSES = ("ACTIVE", "WITH_ISSUES", "IN_PROCESS")
DISAPPROVED = "DISAPPROVED"
assert set(LIVE_STATUSES) <= set(sdk_enum_values(Campaign.EffectiveStatus)) & set(
    sdk_enum_values(AdSet.EffectiveStatus)
)
assert DISAPPROVED in sdk_enum_values(Ad.EffectiveStatus)
DELIVERY_WORDS = {"ACTIVE": "delivering", "WITH_ISSUES": "delivering with issues", "IN_PROCESS": "being processed"}
NEARLY_SPENT = 0.9  # a budget or spend cap counts as nearly spent from 90 % of it
TOKEN_WARNING_DAYS = 7  # the token warning starts a week before expiry, as the token_check job warns
C = Campaign.Field
OVERVIEW_CAMPAIGN_FIELDS = ",".join(
    [C.id, C.name, C.effective_status, C.daily_budget, C.lifetime_budget, C.issues_info]
)
ATTENTION_KINDS = (
    "no_active_adset",
    "budget_nearly_spent",
    "campaign_issue",
    "ad_disapproved",
    "spend_cap_nearly_reached",
    "token_expiring",
)

# ---- What account_overview answers ----
OverviewCampaign = graph_object(Campaign, OVERVIEW_CAMPAIGN_FIELDS, name="OverviewCampaign")


class CampaignBudgetSummary(DataRow):
    """One delivering campaign: its daily budget where it lives and its spend today (minor units)."""

    id: str
    name: str
    effective_status: str | None
    daily_budget: int = Field(
        description="Daily budget in minor units: the campaign's own, else the sum of its active ad sets' (0 with a lifetime budget)."
    )
    budget_source: Literal["campaign", "ad sets"]
    active_adsets: int
    spend_today: int = Field(description="Spend today in minor units (the account's day).")


class AttentionItem(DataRow):
    """Something that needs a person's attention, with the command that fixes it in `text`."""

    kind: Literal[ATTENTION_KINDS]  # type: ignore[valid-type]
    object_id: str | None = Field(description="The campaign, ad or ad account concerned (null for the token).")
    text: str


class AccountOverview(OpData):
    account: AdAccountObject  # type: ignore[valid-type]
    active_campaigns: list[OverviewCampaign]  # type: ignore[valid-type]
    campaigns_with_issues: list[OverviewCampaign]  # type: ignore[valid-type]
    campaigns: list[CampaignBudgetSummary] = Field(description="Delivering or in-process campaigns (up to 100).")
    active_daily_budget: int = Field(description="Daily budgets of the campaigns with an active ad set, minor units.")
    spend_today: int = Field(description="The account's spend today, minor units.")
    spend_yesterday: int = Field(description="The account's spend yesterday, minor units.")
    timezone: str = Field(description="The account's time zone (IANA): its days.")
    attention: list[AttentionItem]
    api_version_warning: str = absent_key(
        description="Present when the configured Graph API version ends within 90 days."
    )


async def _spend(ctx: OpContext, account_id: str, preset: str, currency: str, level: str = "account") -> dict[str, int]:
    """Spend by object (or {"account": n}) for a date preset, in minor units; insights give major-unit strings."""
    fields = "spend" if level == "account" else "campaign_id,spend"
    rows = await ctx.graph.get_all(f"{account_id}/insights", {"fields": fields, "date_preset": preset, "level": level})
    spent: dict[str, int] = {}
    for row in rows:
        key = row.get("campaign_id") or "account"
        spent[key] = spent.get(key, 0) + to_minor(row.get("spend") or 0, currency)
    return spent


def _local_day(now: Any, timezone_name: str | None, days_back: int = 0) -> str:
    """The account's calendar day, 'Mon 02 Mar 2026': insights days, today and yesterday included, are the ad account's
    time zone (docs/insights_contract.md "Endpoint"; https://developers.facebook.com/docs/marketing-api/insights)."""
    try:
        zone = ZoneInfo(timezone_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    day = (now.astimezone(zone) - timedelta(days=days_back)).date()
    return f"{day:%a %d %b %Y}"  # as format_moment writes a day


def campaign_budget(campaign: dict[str, Any], adsets: list[dict[str, Any]], currency: str) -> tuple[int, str, str]:
    """A campaign's daily budget, where it lives and in words: its own (CBO), else the sum of its live ad sets'."""
    if campaign.get("daily_budget") not in (None, "", "0"):
        amount = int(campaign["daily_budget"])
        return amount, "campaign", f"{format_money(amount, currency)}/day (campaign budget)"
    if campaign.get("lifetime_budget") not in (None, "", "0"):
        return 0, "campaign", f"{format_money(campaign['lifetime_budget'], currency)} lifetime (campaign budget)"
    if not adsets:
        return 0, "ad sets", "no budget (its ad sets hold it, and none is active)"
    amount = sum(int(a.get("daily_budget") or 0) for a in adsets)
    lifetime = sum(int(a.get("lifetime_budget") or 0) for a in adsets)
    count = counted(len(adsets), "ad set")
    words = f"{format_money(amount, currency)}/day across {count}" if amount or not lifetime else ""
    if lifetime:
        words += (" + " if words else "") + f"{format_money(lifetime, currency)} lifetime across {count}"
    return amount, "ad sets", words


async def _token_days_left(ctx: OpContext) -> float | None:
    """Days until the workspace's token expires (None: never, or not known here)."""
    if ctx.ops is None:
        return None
    try:
        result = await ctx.ops.plan("token_status", {})
    except FacebookError:
        return None
    expires = (getattr(result, "data", None) or {}).get("expires_at")
    if not expires:
        return None
    return (datetime.fromisoformat(expires) - await ctx.now()).total_seconds() / 86400


def budget_nearly_spent(
    campaign: dict[str, Any], amount: int, source: str, spent: int, currency: str
) -> dict[str, Any] | None:
    """The attention item for a campaign that has spent 90 % or more of its daily budget today (None otherwise), with
    the command that raises the budget where it lives."""
    if not amount or spent < NEARLY_SPENT * amount:
        return None
    cid = campaign["id"]
    fix = (
        f"/budget {cid} AMOUNT raises it"
        if source == "campaign"
        else f"/adsets {cid}, then /update_adset ID daily_budget=AMOUNT raises it"
    )
    return {
        "kind": "budget_nearly_spent",
        "object_id": cid,
        "text": f"{campaign.get('name', '')} ({cid}) has spent {format_money(spent, currency)} of its "
        f"{format_money(amount, currency)} daily budget today ({round(100 * spent / amount)} %). {fix}",
    }


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, core=True, result=AccountOverview)
async def account_overview(ctx: OpContext, args: AccountOverviewArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.get(account_id, {"fields": DETAIL_FIELDS})
    currency = account.get("currency") or "USD"
    live = json.dumps(list(LIVE_STATUSES))
    # Two gathers (six reads, then the token check beside them): typed, where one gather of seven is not.
    (page, adsets, ads, today, yesterday, by_campaign), days_left = await asyncio.gather(
        asyncio.gather(
            ctx.graph.get(
                f"{account_id}/campaigns",
                {"fields": OVERVIEW_CAMPAIGN_FIELDS, "limit": 100, "summary": "true", "effective_status": live},
            ),
            ctx.graph.get_all(
                f"{account_id}/adsets",
                {
                    "fields": "id,campaign_id,effective_status,daily_budget,lifetime_budget",
                    "effective_status": live,
                    "limit": 100,
                },
                limit=500,
            ),
            ctx.graph.get_all(
                f"{account_id}/ads",
                {
                    "fields": "id,name,campaign_id,effective_status",
                    "effective_status": json.dumps([DISAPPROVED]),
                    "limit": 100,
                },
                limit=100,
            ),
            _spend(ctx, account_id, "today", currency),
            _spend(ctx, account_id, "yesterday", currency),
            _spend(ctx, account_id, "today", currency, level="campaign"),
        ),
        _token_days_left(ctx),
    )
    campaigns = page.get("data", [])
    total = (page.get("summary") or {}).get("total_count", len(campaigns))
    now = await ctx.now()
    zone = account.get("timezone_name") or "UTC"
    lines = [
        account_details(account),
        f"  spend today ({_local_day(now, zone)}, {zone}) {format_money(today.get('account', 0), currency)}, "
        f"yesterday ({_local_day(now, zone, 1)}) {format_money(yesterday.get('account', 0), currency)}",
    ]
    adsets_of: dict[str, list[dict[str, Any]]] = {}
    for adset in adsets:
        adsets_of.setdefault(str(adset.get("campaign_id")), []).append(adset)
    attention: list[dict[str, Any]] = []
    summaries, daily_total = [], 0
    for campaign in campaigns:
        cid, name = campaign["id"], campaign.get("name", "")
        own = adsets_of.get(cid, [])
        amount, source, words = campaign_budget(campaign, own, currency)
        daily_total += amount if own else 0  # a campaign without an active ad set spends nothing today
        spent = by_campaign.get(cid, 0)
        summaries.append(
            {
                "id": cid,
                "name": name,
                "effective_status": campaign.get("effective_status"),
                "daily_budget": amount,
                "budget_source": source,
                "active_adsets": len(own),
                "spend_today": spent,
            }
        )
        delivery = (
            DELIVERY_WORDS.get(campaign.get("effective_status"), str(campaign.get("effective_status")).lower())
            if own
            else "not delivering: no active ad set"
        )
        lines.append(f"    {cid} {name} · {delivery} · {words} · spent today {format_money(spent, currency)}")
        if not own:
            attention.append(
                {
                    "kind": "no_active_adset",
                    "object_id": cid,
                    "text": f"{name} ({cid}) is active but has no active ad set, so it delivers nothing. "
                    f"/adsets {cid} lists them; /resume_adset ID turns one on",
                }
            )
        elif nearly_spent := budget_nearly_spent(campaign, amount, source, spent, currency):
            attention.append(nearly_spent)
        if campaign.get("effective_status") == "WITH_ISSUES":
            issue = (campaign.get("issues_info") or [{}])[0]
            attention.append(
                {
                    "kind": "campaign_issue",
                    "object_id": cid,
                    "text": f"{name} ({cid}): {issue.get('error_summary') or issue.get('error_message') or 'Facebook reports issues'}. "
                    f"/get_campaign {cid} shows it",
                }
            )
    active_count = sum(1 for c in campaigns if c.get("effective_status") == "ACTIVE")
    lines.insert(
        2,
        f"  {counted(len(campaigns), 'campaign')} delivering or in process "
        f"({active_count} active), daily budgets {format_money(daily_total, currency)} in all where an ad set is active"
        + (f"; showing {len(campaigns)} of {total}" if total > len(campaigns) else "")
        + (":" if campaigns else ""),
    )
    for ad in ads:
        attention.append(
            {
                "kind": "ad_disapproved",
                "object_id": ad["id"],
                "text": f"The ad {ad.get('name', '')} ({ad['id']}) was disapproved and does not deliver. "
                f"/get_ad {ad['id']} shows Facebook's reasons and the fix",
            }
        )
    cap, spent_total = int(account.get("spend_cap") or 0), int(account.get("amount_spent") or 0)
    if cap and spent_total >= NEARLY_SPENT * cap:
        attention.append(
            {
                "kind": "spend_cap_nearly_reached",
                "object_id": account_id,
                "text": f"The account has spent {format_money(spent_total, currency)} of its "
                f"{format_money(cap, currency)} spend cap ({round(100 * spent_total / cap)} %); delivery "
                f"stops at the cap. /update_spend_cap AMOUNT raises it",
            }
        )
    if days_left is not None and days_left <= TOKEN_WARNING_DAYS:
        attention.append(
            {
                "kind": "token_expiring",
                "object_id": None,
                "text": f"The Facebook connection expires in {max(round(days_left), 0)} day(s). /connect renews it",
            }
        )
    lines.append("  Needs attention:" if attention else "  Nothing needs attention.")
    lines += [f"    - {item['text']}" for item in attention]
    troubled = [c for c in campaigns if c.get("effective_status") == "WITH_ISSUES"]
    data = {
        "account": account,
        "active_campaigns": [c for c in campaigns if c.get("effective_status") == "ACTIVE"],
        "campaigns_with_issues": troubled,
        "campaigns": summaries,
        "active_daily_budget": daily_total,
        "spend_today": today.get("account", 0),
        "spend_yesterday": yesterday.get("account", 0),
        "timezone": zone,
        "attention": attention,
    }
    warning = api_version_warning(getattr(ctx.graph, "api_version", DEFAULT_API_VERSION), now.date())
    if warning:  # the configured Graph API version ends within 90 days
        lines.append(warning)
        data["api_version_warning"] = warning
    return OpResult(text="\n".join(lines), data=data)


class UpdateSpendCapArgs(OpArgs):
    """Set the ad account's spend cap (the most it may spend in total), or remove it with 0. Raising or removing it needs confirmation."""

    ad_account_id: str | None = AdAccountArg
    spend_cap: int = Field(
        ...,
        json_schema_extra=MONEY_UNIT,
        ge=0,
        le=10**13,
        description="New cap in minor units of the account currency (cents for USD, yen for JPY); 0 removes the cap.",
        examples=[500000],
    )


class SpendCapData(OpData):
    ad_account_id: str
    spend_cap: int = Field(description="The account's spend cap now, minor units; 0: no cap.")
    changes: list[Change] = Field(description="The change made (none when the account already had this cap).")


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.SAFETY,
    example={"ad_account_id": "act_1234567890", "spend_cap": 500000},
    result=SpendCapData,
)
async def update_spend_cap(ctx: OpContext, args: UpdateSpendCapArgs) -> WritePlan | OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.get(account_id, {"fields": "id,name,currency,spend_cap,amount_spent"})
    currency = account.get("currency", "")
    before = int(account.get("spend_cap") or 0)
    name = account.get("name", "")
    if before == args.spend_cap:
        return OpResult(
            text=f"{name} ({account_id}) already has {cap_text(before, currency)}; nothing to change.",
            data={"ad_account_id": account_id, "spend_cap": before, "changes": []},
        )
    spent = int(account.get("amount_spent") or 0)
    if args.spend_cap and args.spend_cap <= spent:
        raise ValidationError(
            f"A spend cap of {format_money(args.spend_cap, currency)} is not above the {format_money(spent, currency)} {name} has already spent",
            fix=f"Set spend_cap above {spent} ({format_money(spent, currency)}), or 0 to remove the cap",
            blame_field="spend_cap",
        )
    change = Change(account_id, "ad account", name, "spend_cap", str(before), str(args.spend_cap), currency)

    async def execute() -> OpResult:
        await ctx.graph.post(account_id, {"spend_cap": args.spend_cap}, idempotent=True)
        ctx.graph.invalidate_account(account_id)
        return OpResult(
            text=f"{name} ({account_id}): {cap_text(before, currency)} → {cap_text(args.spend_cap, currency)}.",
            data={"ad_account_id": account_id, "spend_cap": args.spend_cap, "changes": [vars(change).copy()]},
        )

    return WritePlan(
        summary=f"set spend cap of {name} ({account_id}) to {format_money(args.spend_cap, currency) if args.spend_cap else 'none'}",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", account_id, {"spend_cap": args.spend_cap})],
        changes=[change],
        execute=execute,
        currency=currency,
    )


# ---------------------------------------------------------------------------------------------------------------
# Who may touch an ad account: its people and their tasks
# ---------------------------------------------------------------------------------------------------------------

TASKS = sdk_enum_values(AdAccount.Tasks)
Task = Literal[TASKS]  # type: ignore[valid-type]
TASK_ORDER = ("MANAGE", "ADVERTISE", "ANALYZE", "DRAFT", "AA_ANALYZE")
TASK_MEANING = {
    "MANAGE": "manage its settings, payment and people",
    "ADVERTISE": "create, edit and publish ads",
    "ANALYZE": "see performance and reports",
    "DRAFT": "draft ads",
    "AA_ANALYZE": "see advanced analytics",
}
# What Business Manager grants with each task: an admin can also advertise and analyze, an advertiser can analyze.
TASK_IMPLIES = {"MANAGE": ("ADVERTISE", "ANALYZE", "DRAFT"), "ADVERTISE": ("ANALYZE", "DRAFT")}


def ordered_tasks(tasks: Any) -> list[str]:
    """Tasks as a list in a stable order (most powerful first), unknown ones kept at the end."""
    values = [str(t) for t in (tasks or [])]
    known = [t for t in TASK_ORDER if t in values]
    return known + sorted(set(values) - set(known))


def with_implied_tasks(tasks: list[str]) -> list[str]:
    full = set(tasks)
    for task in tasks:
        full.update(TASK_IMPLIES.get(task, ()))
    return ordered_tasks(full)


def role_of(tasks: Any) -> str:
    held = set(tasks or [])
    if "MANAGE" in held:
        return "admin"
    if "ADVERTISE" in held:
        return "advertiser"
    if "ANALYZE" in held or "AA_ANALYZE" in held:
        return "analyst"
    if "DRAFT" in held:
        return "drafter"
    return "no access"


def tasks_text(tasks: Any) -> str:
    """Tasks in plain words: 'advertiser: can create, edit and publish ads; see performance and reports [ADVERTISE, ANALYZE]'."""
    listed = ordered_tasks(tasks)
    if not listed:
        return "no access"
    meanings = "; ".join(TASK_MEANING.get(t, t) for t in listed)
    return f"{role_of(listed)}: can {meanings} [{', '.join(listed)}]"


def user_line(user: dict[str, Any]) -> str:
    return f"    {user.get('id')} {user.get('name', '')} — {tasks_text(user.get('tasks'))}"


ACCOUNT_BUSINESS_FIELDS = ",".join([A.id, A.name, A.business])
# A Business as Graph nests it in an ad account's `business` field (its default fields).
BUSINESS_REF_FIELDS = ",".join([Business.Field.id, Business.Field.name])


async def account_with_business(ctx: OpContext, account_id: str) -> dict[str, Any]:
    """The account's id, name and owning business ({id, name} or None)."""
    account = await ctx.graph.get(account_id, {"fields": ACCOUNT_BUSINESS_FIELDS})
    if not isinstance(account.get("business"), dict) or not account["business"].get("id"):
        account["business"] = None
    return account


def account_label(account: dict[str, Any]) -> str:
    return f"{account.get('name') or account['id']} ({account['id']})"


async def assigned_users(ctx: OpContext, account_id: str, business_id: str) -> list[dict[str, Any]]:
    users = await ctx.graph.get_all(
        f"{account_id}/assigned_users", {"business": business_id, "fields": "id,name,tasks"}
    )
    return [{"id": str(u.get("id")), "name": u.get("name", ""), "tasks": ordered_tasks(u.get("tasks"))} for u in users]


# ---- What the people ops answer ----
BusinessRef = graph_object(Business, BUSINESS_REF_FIELDS, name="BusinessRef")


class AccountUser(DataRow):
    """A person with access to the ad account and their tasks (most powerful first)."""

    id: str
    name: str
    tasks: list[str] = Field(description="AdAccount.Tasks values: MANAGE, ADVERTISE, ANALYZE, DRAFT, AA_ANALYZE.")


class AccountUsers(OpData):
    ad_account_id: str
    users: list[AccountUser] = Field(description="People on the account itself.")
    business: BusinessRef | None = Field(  # type: ignore[valid-type]
        description="The business that owns the account (null: none)."
    )
    assigned_users: list[AccountUser] | None = Field(
        description="People the business assigned (null: no business, or not readable with this token)."
    )


class AccountUserAccess(OpData):
    """A person's tasks on the ad account after an assign or a removal."""

    ad_account_id: str
    user_id: str
    before: list[str] = Field(description="Their tasks before ([]: no access).")
    tasks: list[str] = Field(description="Their tasks now ([]: removed).")
    changes: list[Change] = Field(description="The change made (none when they already had these tasks).")


class ListAccountUsersArgs(OpArgs):
    """List the people with access to the ad account and what each may do (admin, advertiser, analyst, with their tasks), including the people its business assigned."""

    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, result=AccountUsers)
async def list_account_users(ctx: OpContext, args: ListAccountUsersArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await account_with_business(ctx, account_id)
    users = [
        {"id": str(u.get("id")), "name": u.get("name", ""), "tasks": ordered_tasks(u.get("tasks"))}
        for u in await ctx.graph.get_all(f"{account_id}/users", {"fields": "id,name,tasks"})
    ]
    business = account["business"]
    lines = [f"People with access to {account_label(account)}:"]
    lines += ["  On the account:"] + ([user_line(u) for u in users] or ["    nobody listed"])
    assigned: list[dict[str, Any]] | None = None
    note = None
    if business:
        try:
            assigned = await assigned_users(ctx, account_id, business["id"])
        except (PermissionDeniedError, NotFoundError) as error:  # the rest of the answer is still right
            note = f"  Business-assigned people not shown: {error.message}"
        if assigned is not None:
            lines.append(f"  Assigned through the business {business.get('name', '')} ({business['id']}):")
            lines += [user_line(u) for u in assigned] or ["    nobody assigned"]
    else:
        lines.append("  No business owns this account, so nobody is assigned through one.")
    if note:
        lines.append(note)
    if business:
        lines.append("Change access with assign_account_user or remove_account_user (business users only).")
    return OpResult(
        text="\n".join(lines),
        data={"ad_account_id": account_id, "users": users, "business": business, "assigned_users": assigned},
    )


def _tasks_list(value: Any) -> Any:
    """Accept 'analyze', 'ANALYZE,ADVERTISE' or a list, any case."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if isinstance(value, (list, tuple)):
        return [v.strip().upper() if isinstance(v, str) else v for v in value]
    return value


class AssignAccountUserArgs(OpArgs):
    """Give a person of the business that owns the ad account access to it, with the tasks they may do (replaces their current tasks). MANAGE gives full control; ADVERTISE includes ANALYZE."""

    ad_account_id: str | None = AdAccountArg
    user_id: str = Field(
        ...,
        description="The business user id of the person (list_account_users shows assigned people; "
        "an unknown id answers with the business's people).",
        examples=["100000000000001"],
    )
    tasks: list[Task] = Field(
        ["ANALYZE"],
        min_length=1,
        description="What the person may do: MANAGE (everything, including people and payment), ADVERTISE (create and publish "
        "ads; includes ANALYZE), ANALYZE (see reports), DRAFT (draft ads only), AA_ANALYZE (advanced analytics). "
        "Default ANALYZE.",
    )

    _tasks = field_validator("tasks", mode="before")(_tasks_list)


async def _business_user(ctx: OpContext, business: dict[str, Any], user_id: str) -> dict[str, Any]:
    people = await ctx.graph.get_all(f"{business['id']}/business_users", {"fields": "id,name,role"})
    for person in people:
        if str(person.get("id")) == user_id:
            return person
    shown = (
        ", ".join(f"{p.get('id')} ({p.get('name', '')}, {p.get('role', 'member')})" for p in people[:15])
        or "none listed"
    )
    raise ValidationError(
        f"User {user_id} is not a person of the business {business.get('name', '')} ({business['id']})",
        fix=f"Use one of the business's people: {shown}",
        blame_field="user_id",
        data={"business_users": [{k: p.get(k) for k in ("id", "name", "role")} for p in people]},
    )


async def _business_of(ctx: OpContext, account_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    account = await account_with_business(ctx, account_id)
    if not account["business"]:
        raise ValidationError(
            f"{account_label(account)} is not owned by a business: people are assigned to an account through its business",
            fix="Move the account into a Business Manager first, or manage access in Ads Manager's account settings",
            blame_field="ad_account_id",
        )
    return account, account["business"]


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.ACCOUNTS,
    example={"user_id": "100000000000001", "tasks": ["ADVERTISE", "ANALYZE"]},
    result=AccountUserAccess,
)
async def assign_account_user(ctx: OpContext, args: AssignAccountUserArgs) -> WritePlan | OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    user_id = check_object_id(args.user_id, "user_id")
    tasks = with_implied_tasks(list(args.tasks))
    account, business = await _business_of(ctx, account_id)
    person = await _business_user(ctx, business, user_id)
    name = person.get("name") or user_id
    current = next((u for u in await assigned_users(ctx, account_id, business["id"]) if u["id"] == user_id), None)
    before = current["tasks"] if current else []
    if before == tasks:
        return OpResult(
            text=f"{name} ({user_id}) already has {tasks_text(tasks)} on {account_label(account)}; nothing to change.",
            data={"ad_account_id": account_id, "user_id": user_id, "before": before, "tasks": tasks, "changes": []},
        )
    implied = [t for t in tasks if t not in args.tasks]
    granting = [t for t in TASK_ORDER if t in args.tasks and t in TASK_IMPLIES]
    notes = (
        f" {' and '.join(granting)} include{'s' if len(granting) == 1 else ''} {', '.join(implied)}." if implied else ""
    )
    if "MANAGE" in tasks:
        notes += " MANAGE gives full control of the account, including its people and payment settings."
    params = {"user": user_id, "tasks": tasks}
    change = Change(
        account_id, "ad account", account.get("name") or account_id, f"tasks of {name} ({user_id})", before, tasks
    )

    async def execute() -> OpResult:
        await ctx.graph.post(
            f"{account_id}/assigned_users", params, idempotent=True
        )  # sets the same tasks again: safe to repeat
        was = tasks_text(before) if before else "no access"
        text = f"{name} ({user_id}) on {account_label(account)}: {was} → {tasks_text(tasks)}.{notes}"
        return OpResult(
            text=text,
            data={
                "ad_account_id": account_id,
                "user_id": user_id,
                "before": before,
                "tasks": tasks,
                "changes": [vars(change).copy()],
            },
        )

    return WritePlan(
        summary=f"give {name} ({user_id}) {', '.join(tasks)} on {account_label(account)} (currently {', '.join(before) or 'no access'})",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", f"{account_id}/assigned_users", params)],
        changes=[change],
        execute=execute,
    )


class RemoveAccountUserArgs(OpArgs):
    """Take away a business-assigned person's access to the ad account (all their tasks). They can be assigned again later."""

    ad_account_id: str | None = AdAccountArg
    user_id: str = Field(
        ...,
        description="The business user id of the person to remove (list_account_users shows them).",
        examples=["100000000000001"],
    )


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.ACCOUNTS,
    destructive=True,
    example={"user_id": "100000000000001"},
    result=AccountUserAccess,
)
async def remove_account_user(ctx: OpContext, args: RemoveAccountUserArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    user_id = check_object_id(args.user_id, "user_id")
    account, business = await _business_of(ctx, account_id)
    assigned = await assigned_users(ctx, account_id, business["id"])
    current = next((u for u in assigned if u["id"] == user_id), None)
    if current is None:
        shown = ", ".join(f"{u['id']} ({u['name']})" for u in assigned[:15]) or "nobody"
        raise ValidationError(
            f"User {user_id} is not assigned to {account_label(account)} through the business {business.get('name', '')}",
            fix=f"Pick one of the assigned people: {shown}",
            blame_field="user_id",
        )
    name = current["name"] or user_id
    managers = [u for u in assigned if "MANAGE" in u["tasks"]]
    if managers == [current]:
        raise ValidationError(
            f"{name} ({user_id}) is the only person the business lets manage {account_label(account)}; "
            "removing them would leave nobody able to change its settings or people",
            fix="First give MANAGE to someone else with assign_account_user, then remove this person",
            blame_field="user_id",
        )
    change = Change(
        account_id,
        "ad account",
        account.get("name") or account_id,
        f"tasks of {name} ({user_id})",
        current["tasks"],
        [],
    )

    async def execute() -> OpResult:
        await ctx.graph.delete(f"{account_id}/assigned_users", {"user": user_id})
        return OpResult(
            text=f"Removed {name} ({user_id}) from {account_label(account)} (was {tasks_text(current['tasks'])}).",
            data={
                "ad_account_id": account_id,
                "user_id": user_id,
                "before": current["tasks"],
                "tasks": [],
                "changes": [vars(change).copy()],
            },
        )

    return WritePlan(
        summary=f"remove {name} ({user_id}) from {account_label(account)} (currently {', '.join(current['tasks']) or 'no tasks'})",
        ad_account_id=account_id,
        requests=[GraphRequest("DELETE", f"{account_id}/assigned_users", {"user": user_id})],
        changes=[change],
        execute=execute,
    )


class SelectAdAccountArgs(OpArgs):
    """Select the ad account that later ops use when they are not given one."""

    ad_account_id: str = Field(
        ..., description="The ad account to use, e.g. act_1234567890.", examples=["act_1234567890"]
    )


class SelectedAdAccount(OpData):
    ad_account_id: str
    name: str
    currency: str


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, idempotent=True, core=True, result=SelectedAdAccount)
async def select_ad_account(ctx: OpContext, args: SelectAdAccountArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    info = await ctx.graph.account_info(account_id)
    return OpResult(
        text=f"Selected {info.name} ({account_id}), currency {info.currency}, time zone {info.timezone_name}.",
        data={"ad_account_id": account_id, "name": info.name, "currency": info.currency},
        selections={"ad_account": account_id},
    )


# ---------------------------------------------------------------------------------------------------------------
# Facebook pages and Instagram accounts (selected per workspace; creative ops use them as defaults)
# ---------------------------------------------------------------------------------------------------------------

# Never ask for a page's access_token: ops have no use for it, and what is never read cannot leak.
PAGE_FIELDS = "id,name,category,tasks,instagram_business_account"
INSTAGRAM_FIELDS = "id,username,name,profile_picture_url"


# ---- What the page and Instagram ops answer ----


class PageData(DataRow):
    """A Facebook page this person manages, as the ops keep it (never its access token)."""

    id: str
    name: str
    category: str | None
    tasks: list[str] = Field(description="This person's tasks on the page, e.g. ADVERTISE, MANAGE.")
    instagram_account_id: str | None = Field(
        description="The Instagram business account linked to the page (null: none)."
    )


class ListedPage(PageData):
    selected: bool


class PageList(OpData):
    pages: list[ListedPage]
    selected: str | None = Field(description="The workspace's selected page (null: none).")
    auto_selected: str | None = Field(
        description="The page this call selected because it is the only one (null: none)."
    )


class PageSelections(DataRow):
    """What a select call saved for the workspace."""

    page: str
    instagram_account: str = absent_key(description="Present when the page's Instagram account was selected too.")


class SelectedPage(OpData):
    page: PageData
    selected: PageSelections


class InstagramSource(DataRow):
    """Where an Instagram account is linked: a page (with its name) or the ad account."""

    type: Literal["page", "ad_account"]
    id: str
    name: str = absent_key(description="The page's name (pages only).")


class InstagramAccountData(DataRow):
    id: str
    username: str | None
    name: str | None
    profile_picture_url: str | None
    sources: list[InstagramSource]


class ListedInstagramAccount(InstagramAccountData):
    selected: bool


class InstagramAccountList(OpData):
    instagram_accounts: list[ListedInstagramAccount]
    selected: str | None = Field(description="The workspace's selected Instagram account (null: none).")


class SelectedInstagramAccount(OpData):
    instagram_account: InstagramAccountData


def clean_page(page: dict[str, Any]) -> dict[str, Any]:
    """Only the fields ops use; anything else Graph sends (a page token above all) is dropped."""
    instagram = page.get("instagram_business_account")
    return {
        "id": str(page.get("id")),
        "name": page.get("name", ""),
        "category": page.get("category"),
        "tasks": [str(t) for t in page.get("tasks") or []],
        "instagram_account_id": str(instagram["id"]) if isinstance(instagram, dict) and instagram.get("id") else None,
    }


async def fetch_pages(ctx: OpContext) -> list[dict[str, Any]]:
    return [clean_page(p) for p in await ctx.graph.get_all("me/accounts", {"fields": PAGE_FIELDS})]


def page_line(page: dict[str, Any], selected: str | None) -> str:
    mark = "*" if page["id"] == selected else " "
    instagram = f"Instagram {page['instagram_account_id']}" if page["instagram_account_id"] else "no Instagram account"
    advertise = "" if "ADVERTISE" in page["tasks"] else " · you cannot advertise for it (no ADVERTISE task)"
    category = f" · {page['category']}" if page.get("category") else ""
    return f"{mark} {page['id']} · {page['name']}{category} · your tasks: {', '.join(page['tasks']) or 'none'} · {instagram}{advertise}"


def pages_choice(pages: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['id']} ({p['name']})" for p in pages[:15]) or "none: this person manages no page"


class ListPagesArgs(OpArgs):
    """List the Facebook pages this person manages, their tasks on each, and whether each has an Instagram account (* = selected; the only page is selected automatically)."""


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, result=PageList)
async def list_pages(ctx: OpContext, args: ListPagesArgs) -> OpResult:
    pages = await fetch_pages(ctx)
    if not pages:
        return OpResult(
            text="This person manages no Facebook page. Fix: create a page or get a role on one, then reconnect "
            "with pages_show_list (/connect).",
            data={"pages": [], "selected": ctx.page_id, "auto_selected": None},
        )
    selected = ctx.page_id
    selections: dict[str, str | None] = {}
    notes = []
    if len(pages) == 1 and not selected:
        page = pages[0]
        selected = selections["page"] = page["id"]
        notes.append(f"Selected {page['name']} ({page['id']}) automatically: it is the only page.")
        if page["instagram_account_id"] and not ctx.instagram_account_id:
            selections["instagram_account"] = page["instagram_account_id"]
            notes.append(f"Selected its Instagram account {page['instagram_account_id']} too.")
    elif selected and all(p["id"] != selected for p in pages):
        notes.append(f"The selected page {selected} is not among them any more: choose one with select_page.")
    elif not selected:
        notes.append("Choose the page ads run for with select_page.")
    lines = [f"Pages ({len(pages)}):"] + ["  " + page_line(p, selected) for p in pages] + notes
    data = {
        "pages": [{**p, "selected": p["id"] == selected} for p in pages],
        "selected": selected,
        "auto_selected": selections.get("page"),
    }
    return OpResult(text="\n".join(lines), data=data, selections=selections)


class SelectPageArgs(OpArgs):
    """Select the Facebook page that ads and creatives use when none is given (also selects its Instagram account if none is selected)."""

    page_id: str = Field(..., description="The page's id (list_pages shows them).", examples=["100000000000001"])


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, idempotent=True, result=SelectedPage)
async def select_page(ctx: OpContext, args: SelectPageArgs) -> OpResult:
    page_id = check_object_id(args.page_id, "page_id")
    pages = await fetch_pages(ctx)
    page = next((p for p in pages if p["id"] == page_id), None)
    if page is None:
        raise ValidationError(
            f"Page {page_id} is not one of the pages this person manages",
            fix=f"Use one of: {pages_choice(pages)}",
            blame_field="page_id",
            data={"pages": [{"id": p["id"], "name": p["name"]} for p in pages]},
        )
    selections: dict[str, str | None] = {"page": page_id}
    text = f"Selected page {page['name']} ({page_id}); your tasks on it: {', '.join(page['tasks']) or 'none'}."
    if "ADVERTISE" not in page["tasks"]:
        text += " You lack the ADVERTISE task on it: ads for this page will be refused until a page admin grants it."
    if page["instagram_account_id"] and not ctx.instagram_account_id:
        selections["instagram_account"] = page["instagram_account_id"]
        text += f" Also selected its Instagram account {page['instagram_account_id']}."
    elif not page["instagram_account_id"]:
        text += " It has no Instagram account linked, so Instagram placements need one from list_instagram_accounts."
    return OpResult(text=text, data={"page": page, "selected": selections}, selections=selections)


async def collect_instagram_accounts(ctx: OpContext, account_id: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Instagram accounts linked to the person's pages and to the ad account, one entry each with its sources."""
    found: dict[str, dict[str, Any]] = {}
    notes: list[str] = []

    def entry(raw: dict[str, Any]) -> dict[str, Any]:
        ig_id = str(raw.get("id"))
        item = found.setdefault(
            ig_id, {"id": ig_id, "username": None, "name": None, "profile_picture_url": None, "sources": []}
        )
        for key in ("username", "name", "profile_picture_url"):
            item[key] = item[key] or raw.get(key)
        return item

    linked = [p for p in await fetch_pages(ctx) if p["instagram_account_id"]]
    if linked:
        details: dict[str, dict] = {}
        try:
            details = await ctx.graph.get_many([p["instagram_account_id"] for p in linked], INSTAGRAM_FIELDS)
        except (PermissionDeniedError, NotFoundError) as error:
            notes.append(f"Instagram details not readable ({error.message}); ids only.")
        for page in linked:
            item = entry(details.get(page["instagram_account_id"]) or {"id": page["instagram_account_id"]})
            item["sources"].append({"type": "page", "id": page["id"], "name": page["name"]})
    if account_id:
        try:
            for raw in await ctx.graph.get_all(f"{account_id}/instagram_accounts", {"fields": "id,username"}):
                entry(raw)["sources"].append({"type": "ad_account", "id": account_id})
        except PermissionDeniedError as error:
            notes.append(f"The Instagram accounts of {account_id} are not readable: {error.message}.")
    else:
        notes.append("No ad account selected, so only page-linked accounts are listed.")
    return list(found.values()), notes


def instagram_line(item: dict[str, Any], selected: str | None) -> str:
    mark = "*" if item["id"] == selected else " "
    handle = f"@{item['username']}" if item.get("username") else "(username not readable)"
    name = f" ({item['name']})" if item.get("name") else ""
    via = ", ".join(
        f"page {s['name']} ({s['id']})" if s["type"] == "page" else f"ad account {s['id']}" for s in item["sources"]
    )
    return f"{mark} {item['id']} {handle}{name} · linked via {via}"


class ListInstagramAccountsArgs(OpArgs):
    """List the Instagram accounts ads can run as: those linked to this person's pages and those linked to the ad account (* = selected)."""

    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, result=InstagramAccountList)
async def list_instagram_accounts(ctx: OpContext, args: ListInstagramAccountsArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id) if args.ad_account_id or ctx.ad_account_id else None
    items, notes = await collect_instagram_accounts(ctx, account_id)
    selected = ctx.instagram_account_id
    if not items:
        text = (
            "No Instagram account is linked to your pages or the ad account. Fix: link an Instagram professional "
            "account to your page (Page settings → Linked accounts), then list again."
        )
        return OpResult(text="\n".join([text] + notes), data={"instagram_accounts": [], "selected": selected})
    lines = [f"Instagram accounts ({len(items)}):"] + ["  " + instagram_line(i, selected) for i in items] + notes
    if not selected:
        lines.append("Choose the one ads run as with select_instagram_account.")
    return OpResult(
        text="\n".join(lines),
        data={"instagram_accounts": [{**i, "selected": i["id"] == selected} for i in items], "selected": selected},
    )


class SelectInstagramAccountArgs(OpArgs):
    """Select the Instagram account that ads and creatives use for Instagram placements when none is given."""

    instagram_account_id: str = Field(
        ...,
        description="The Instagram account's id (list_instagram_accounts shows them).",
        examples=["17841400000000001"],
    )
    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, idempotent=True, result=SelectedInstagramAccount)
async def select_instagram_account(ctx: OpContext, args: SelectInstagramAccountArgs) -> OpResult:
    instagram_id = check_object_id(args.instagram_account_id, "instagram_account_id")
    account_id = ctx.require_ad_account(args.ad_account_id) if args.ad_account_id or ctx.ad_account_id else None
    items, _ = await collect_instagram_accounts(ctx, account_id)
    item = next((i for i in items if i["id"] == instagram_id), None)
    if item is None:
        shown = ", ".join(f"{i['id']} (@{i.get('username') or '?'})" for i in items[:15]) or "none is linked"
        raise ValidationError(
            f"Instagram account {instagram_id} is not linked to your pages or to {account_id or 'the ad account'}",
            fix=f"Use one of: {shown}",
            blame_field="instagram_account_id",
        )
    handle = f"@{item['username']} " if item.get("username") else ""
    return OpResult(
        text=f"Selected Instagram account {handle}({instagram_id}).",
        data={"instagram_account": item},
        selections={"instagram_account": instagram_id},
    )


# ---------------------------------------------------------------------------------------------------------------
# Businesses and new ad accounts
# ---------------------------------------------------------------------------------------------------------------


BUSINESS_FIELDS = ",".join([Business.Field.id, Business.Field.name, Business.Field.verification_status])
ListedBusiness = graph_object(Business, BUSINESS_FIELDS, name="ListedBusiness")


class BusinessList(OpData):
    businesses: list[ListedBusiness]  # type: ignore[valid-type]


async def fetch_businesses(ctx: OpContext) -> list[dict[str, Any]]:
    return await ctx.graph.get_all("me/businesses", {"fields": BUSINESS_FIELDS})


class ListBusinessesArgs(OpArgs):
    """List the Business Managers (businesses) this person belongs to, with their verification status."""


@ops.op(OpKind.READ, group=TaskGroup.ACCOUNTS, result=BusinessList)
async def list_businesses(ctx: OpContext, args: ListBusinessesArgs) -> OpResult:
    businesses = await fetch_businesses(ctx)
    if not businesses:
        return OpResult(
            text="This person belongs to no business. Fix: create one at business.facebook.com, then reconnect "
            "with business_management (/connect).",
            data={"businesses": []},
        )
    lines = [f"Businesses ({len(businesses)}):"] + [
        f"  {b.get('id')} · {b.get('name', '')} · {str(b.get('verification_status') or 'verification unknown').replace('_', ' ')}"
        for b in businesses
    ]
    lines.append("create_ad_account makes a new ad account under one of them.")
    return OpResult(text="\n".join(lines), data={"businesses": businesses})


CURRENCIES = sdk_enum_values(AdAccount.Currency)
Currency = Literal[CURRENCIES]  # type: ignore[valid-type]
TIMEZONE_IDS = frozenset(int(v) for v in sdk_enum_values(Business.TimezoneId))
SPECIAL_ADVERTISERS = ("NONE", "UNFOUND")


def _currency(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    code = value.strip().upper()
    if code not in CURRENCIES:
        close = difflib.get_close_matches(code, CURRENCIES, n=3, cutoff=0.6)
        raise ValueError(
            f"{value!r} is not a currency Facebook accepts for ad accounts; "
            + (f"closest: {', '.join(close)}" if close else "use a 3-letter ISO 4217 code such as USD, EUR, GBP or JPY")
        )
    return code


class CreateAdAccountArgs(OpArgs):
    """Create a new ad account under a business (Business Manager). It spends nothing until campaigns run in it; its currency and time zone can never be changed later."""

    name: str = Field(
        ..., min_length=1, max_length=100, description="The new account's name.", examples=["Acme Germany"]
    )
    currency: Currency = Field(
        ...,
        description="Account currency, ISO 4217 (e.g. USD, EUR, JPY): every budget and report of the account uses it; permanent.",
    )
    timezone: str = Field(
        ...,
        description="The account's time zone, permanent: an IANA name like Europe/Berlin or America/New_York, "
        "or Facebook's numeric timezone_id (e.g. 47). Days in reports and schedules follow it.",
        examples=["Europe/Berlin"],
    )
    business_id: str | None = Field(
        None,
        description="The business that will own the account; defaults to yours when you "
        "belong to exactly one (list_businesses).",
        examples=["100000000000001"],
    )
    end_advertiser: str | None = Field(
        None,
        description="Who the ads are for: a page or app id, or NONE / UNFOUND; "
        "defaults to the selected page, else NONE.",
    )
    media_agency: str | None = Field(
        None, description="The media agency's page or app id, if an agency runs it; default NONE."
    )
    partner: str | None = Field(None, description="A partner's page or app id; default NONE.")

    _currency = field_validator("currency", mode="before")(_currency)


def _party(value: str | None, field_name: str, default: str = "NONE") -> str:
    """A page/app id, or NONE/UNFOUND, as Facebook takes end_advertiser, media_agency and partner."""
    if value is None or not str(value).strip():
        return default
    text = str(value).strip()
    if text.upper() in SPECIAL_ADVERTISERS:
        return text.upper()
    if not re.fullmatch(r"\d{1,25}", text):
        raise ValidationError(
            f"{field_name} {value!r} is neither a page/app id nor NONE or UNFOUND",
            fix="Pass the numeric page or app id (list_pages shows pages), or NONE",
            blame_field=field_name,
        )
    return text


def resolve_timezone(value: str) -> tuple[int, str | None]:
    """(Facebook timezone_id, IANA name) for an IANA name, a city, a TZ_ code or a numeric id; unknown ones refused with the closest names."""
    text = str(value).strip()
    names = timezone_names()
    if re.fullmatch(r"\d{1,4}", text):
        tz_id = int(text)
        if tz_id == 0 or tz_id not in TIMEZONE_IDS:
            raise ValidationError(
                f"{text} is not a Facebook timezone_id",
                blame_field="timezone",
                fix=f"Pass an IANA name such as Europe/Berlin, or an id from 1 to {max(TIMEZONE_IDS)}",
            )
        return tz_id, names[tz_id] if tz_id < len(names) else None
    key = text.lower().replace(" ", "_")
    by_key = timezones_by_key()
    if key in by_key:
        return by_key[key], names[by_key[key]]
    cities = [i for i, name in enumerate(names) if name.lower().rsplit("/", 1)[-1] == key and i]
    if len(cities) == 1:
        return cities[0], names[cities[0]]
    choices = [n for n in names[1:]]
    close = difflib.get_close_matches(text, choices, n=5, cutoff=0.6)
    city_names = {n.rsplit("/", 1)[-1].lower(): n for n in reversed(choices)}
    close += [
        city_names[c] for c in difflib.get_close_matches(key.rsplit("/", 1)[-1], list(city_names), n=5, cutoff=0.6)
    ]
    close = list(dict.fromkeys([names[i] for i in cities] + close))[:5]
    raise ValidationError(
        f"Unknown time zone {value!r}",
        blame_field="timezone",
        fix=("Did you mean " + ", ".join(close) + "? " if close else "")
        + "Use an IANA name such as Europe/Berlin or America/New_York, or Facebook's numeric timezone_id",
        data={"suggestions": close},
    )


@cache
def timezone_names() -> tuple[str, ...]:
    """Facebook's time zones by id (index = timezone_id, 0 = TZ_UNKNOWN) as IANA names."""
    return tuple(_FACEBOOK_TIMEZONES.split())


@cache
def timezones_by_key() -> dict[str, int]:
    """Lower-case IANA name and Facebook TZ_ code (tz_europe_berlin) → timezone_id."""
    keys: dict[str, int] = {}
    for tz_id, name in enumerate(timezone_names()):
        if tz_id:
            keys[name.lower()] = tz_id
            code = re.sub(r"gmt([+-])", lambda m: "gmt_plus_" if m.group(1) == "+" else "gmt_minus_", name.lower())
            keys.setdefault("tz_" + re.sub(r"[/-]", "_", code), tz_id)
    return keys


class CreatedAdAccount(OpData):
    id: str
    ad_account_id: str = Field(description="The new account, act_<digits>.")
    business_id: str
    name: str
    currency: str
    timezone_id: int = Field(description="Facebook's timezone_id.")
    timezone_name: str | None = Field(description="Its IANA name (null for an id newer than Ad Monster's table).")
    end_advertiser: str
    response: dict[str, Any] = Field(description="Facebook's answer to the create.")


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.ACCOUNTS,
    example={"name": "Acme Germany", "currency": "EUR", "timezone": "Europe/Berlin"},
    result=CreatedAdAccount,
)
async def create_ad_account(ctx: OpContext, args: CreateAdAccountArgs) -> WritePlan:
    timezone_id, timezone_name = resolve_timezone(args.timezone)
    end_advertiser = _party(args.end_advertiser, "end_advertiser", default=ctx.page_id or "NONE")
    media_agency = _party(args.media_agency, "media_agency")
    partner = _party(args.partner, "partner")
    wanted = check_object_id(args.business_id, "business_id") if args.business_id else None
    businesses = await fetch_businesses(ctx)
    business = _pick_business(businesses, wanted)
    business_id = str(business["id"])
    path = f"{business_id}/adaccount"
    payload = {
        "name": args.name,
        "currency": args.currency,
        "timezone_id": timezone_id,
        "end_advertiser": end_advertiser,
        "media_agency": media_agency,
        "partner": partner,
    }
    zone = f"{timezone_name} (timezone_id {timezone_id})" if timezone_name else f"timezone_id {timezone_id}"
    where = f"{business.get('name', '')} ({business_id})"

    async def execute() -> OpResult:
        try:
            created = await ctx.graph.create(path, payload, lookup=None)  # an ad account carries no label to find it by
        except FacebookError as error:
            if (error.data or {}).get("create_outcome") != "unknown":
                raise
            raise NetworkError(
                f"Creating ad account {args.name!r} under {where} failed ({error.message}): it may or may not have been created",
                fix=f"Do not send it again blindly: run list_ad_accounts and look for {args.name!r} first",
                data={"create_outcome": "unknown", "business_id": business_id, "name": args.name},
            ) from error
        account_id = str(created.get("id") or "")
        if account_id and not account_id.startswith("act_"):
            account_id = f"act_{account_id}"
        text = (
            f"Created ad account {args.name} ({account_id}) under {where}: currency {args.currency}, time zone {zone}, "
            f"end advertiser {end_advertiser}. It spends nothing until campaigns run in it. "
            f"Use it with select_ad_account {account_id} (/use {account_id})."
        )
        return OpResult(
            text=text,
            data={
                "id": account_id,
                "ad_account_id": account_id,
                "business_id": business_id,
                "name": args.name,
                "currency": args.currency,
                "timezone_id": timezone_id,
                "timezone_name": timezone_name,
                "end_advertiser": end_advertiser,
                "response": {k: v for k, v in created.items() if k != "access_token"},
            },
        )

    changes = [
        Change(None, "ad account", args.name, "currency", None, args.currency),
        Change(None, "ad account", args.name, "timezone_id", None, timezone_id),
    ]
    return WritePlan(
        summary=f"create ad account {args.name} under {where}: {args.currency}, {zone}, end advertiser {end_advertiser}",
        ad_account_id=None,
        requests=[GraphRequest("POST", path, payload)],
        changes=changes,
        execute=execute,
        currency=args.currency,
    )


def _pick_business(businesses: list[dict[str, Any]], wanted: str | None) -> dict[str, Any]:
    shown = ", ".join(f"{b.get('id')} ({b.get('name', '')})" for b in businesses[:15])
    if wanted:
        business = next((b for b in businesses if str(b.get("id")) == wanted), None)
        if business is None:
            raise ValidationError(
                f"Business {wanted} is not one this person belongs to",
                blame_field="business_id",
                fix=f"Use one of: {shown}" if shown else "Join or create a business first (business.facebook.com)",
            )
        return business
    if not businesses:
        raise ValidationError(
            "This person belongs to no business, and ad accounts are created under one",
            blame_field="business_id",
            fix="Create a business at business.facebook.com, then reconnect with business_management (/connect)",
        )
    if len(businesses) > 1:
        raise ValidationError(
            f"You belong to {len(businesses)} businesses: say which one owns the new account",
            blame_field="business_id",
            fix=f"Pass business_id, one of: {shown}",
        )
    return businesses[0]


# Facebook's time zones, index = timezone_id (0 = TZ_UNKNOWN, shown as "-"), from the Marketing API's "Timezone IDs"
# reference (TZ_AMERICA_LOS_ANGELES = 1 … TZ_WET = 475); each TZ_ code written as the IANA name it stands for.
# The SDK's Business.TimezoneId lists the valid ids (up to 592) but not their names: newer ids are accepted as numbers.
_FACEBOOK_TIMEZONES = (
    "- America/Los_Angeles America/Denver Pacific/Honolulu America/Anchorage America/Phoenix America/Chicago "
    "America/New_York Asia/Dubai America/Argentina/San_Luis America/Argentina/Buenos_Aires America/Argentina/Salta "
    "Europe/Vienna Australia/Perth Australia/Broken_Hill Australia/Sydney Europe/Sarajevo Asia/Dhaka Europe/Brussels "
    "Europe/Sofia Asia/Bahrain America/La_Paz America/Noronha America/Campo_Grande America/Belem America/Sao_Paulo "
    "America/Nassau America/Dawson America/Vancouver America/Dawson_Creek America/Edmonton America/Rainy_River "
    "America/Regina America/Atikokan America/Iqaluit America/Toronto America/Blanc-Sablon America/Halifax "
    "America/St_Johns Europe/Zurich Pacific/Easter America/Santiago Asia/Shanghai America/Bogota America/Costa_Rica "
    "Asia/Nicosia Europe/Prague Europe/Berlin Europe/Copenhagen America/Santo_Domingo Pacific/Galapagos "
    "America/Guayaquil Europe/Tallinn Africa/Cairo Atlantic/Canary Europe/Madrid Europe/Helsinki Europe/Paris "
    "Europe/London Africa/Accra Europe/Athens America/Guatemala Asia/Hong_Kong America/Tegucigalpa Europe/Zagreb "
    "Europe/Budapest Asia/Jakarta Asia/Makassar Asia/Jayapura Europe/Dublin Asia/Jerusalem Asia/Kolkata Asia/Baghdad "
    "Atlantic/Reykjavik Europe/Rome America/Jamaica Asia/Amman Asia/Tokyo Africa/Nairobi Asia/Seoul Asia/Kuwait "
    "Asia/Beirut Asia/Colombo Europe/Vilnius Europe/Luxembourg Europe/Riga Africa/Casablanca Europe/Skopje "
    "Europe/Malta Indian/Mauritius Indian/Maldives America/Tijuana America/Hermosillo America/Mazatlan "
    "America/Mexico_City Asia/Kuala_Lumpur Africa/Lagos America/Managua Europe/Amsterdam Europe/Oslo Pacific/Auckland "
    "Asia/Muscat America/Panama America/Lima Asia/Manila Asia/Karachi Europe/Warsaw America/Puerto_Rico Asia/Gaza "
    "Atlantic/Azores Europe/Lisbon America/Asuncion Asia/Qatar Europe/Bucharest Europe/Belgrade Europe/Kaliningrad "
    "Europe/Moscow Europe/Samara Asia/Yekaterinburg Asia/Omsk Asia/Krasnoyarsk Asia/Irkutsk Asia/Yakutsk "
    "Asia/Vladivostok Asia/Magadan Asia/Kamchatka Asia/Riyadh Europe/Stockholm Asia/Singapore Europe/Ljubljana "
    "Europe/Bratislava America/El_Salvador Asia/Bangkok Africa/Tunis Europe/Istanbul America/Port_of_Spain "
    "Asia/Taipei Europe/Kiev America/Montevideo America/Caracas Asia/Ho_Chi_Minh Africa/Johannesburg America/Winnipeg "
    "America/Detroit Australia/Melbourne Asia/Kathmandu Asia/Baku Africa/Abidjan Africa/Addis_Ababa Africa/Algiers "
    "Africa/Asmara Africa/Bamako Africa/Bangui Africa/Banjul Africa/Bissau Africa/Blantyre Africa/Brazzaville "
    "Africa/Bujumbura Africa/Ceuta Africa/Conakry Africa/Dakar Africa/Dar_es_Salaam Africa/Djibouti Africa/Douala "
    "Africa/El_Aaiun Africa/Freetown Africa/Gaborone Africa/Harare Africa/Juba Africa/Kampala Africa/Khartoum "
    "Africa/Kigali Africa/Kinshasa Africa/Libreville Africa/Lome Africa/Luanda Africa/Lubumbashi Africa/Lusaka "
    "Africa/Malabo Africa/Maputo Africa/Maseru Africa/Mbabane Africa/Mogadishu Africa/Monrovia Africa/Ndjamena "
    "Africa/Niamey Africa/Nouakchott Africa/Ouagadougou Africa/Porto-Novo Africa/Sao_Tome Africa/Tripoli "
    "Africa/Windhoek America/Adak America/Anguilla America/Antigua America/Araguaina America/Argentina/Catamarca "
    "America/Argentina/Cordoba America/Argentina/Jujuy America/Argentina/La_Rioja America/Argentina/Mendoza "
    "America/Argentina/Rio_Gallegos America/Argentina/San_Juan America/Argentina/Tucuman America/Argentina/Ushuaia "
    "America/Aruba America/Bahia America/Bahia_Banderas America/Barbados America/Belize America/Boa_Vista "
    "America/Boise America/Cambridge_Bay America/Cancun America/Cayenne America/Cayman America/Chihuahua "
    "America/Creston America/Cuiaba America/Curacao America/Danmarkshavn America/Dominica America/Eirunepe "
    "America/Fort_Nelson America/Fortaleza America/Glace_Bay America/Godthab America/Goose_Bay America/Grand_Turk "
    "America/Grenada America/Guadeloupe America/Guyana America/Havana America/Indiana/Indianapolis "
    "America/Indiana/Knox America/Indiana/Marengo America/Indiana/Petersburg America/Indiana/Tell_City "
    "America/Indiana/Vevay America/Indiana/Vincennes America/Indiana/Winamac America/Indianapolis America/Inuvik "
    "America/Juneau America/Kentucky/Louisville America/Kentucky/Monticello America/Kralendijk America/Lower_Princes "
    "America/Maceio America/Manaus America/Marigot America/Martinique America/Matamoros America/Menominee "
    "America/Merida America/Metlakatla America/Miquelon America/Moncton America/Monterrey America/Montreal "
    "America/Montserrat America/Nipigon America/Nome America/North_Dakota/Beulah America/North_Dakota/Center "
    "America/North_Dakota/New_Salem America/Ojinaga America/Pangnirtung America/Paramaribo America/Port-au-Prince "
    "America/Porto_Velho America/Punta_Arenas America/Rankin_Inlet America/Recife America/Resolute America/Rio_Branco "
    "America/Santarem America/Scoresbysund America/Sitka America/St_Barthelemy America/St_Kitts America/St_Lucia "
    "America/St_Thomas America/St_Vincent America/Swift_Current America/Thule America/Thunder_Bay America/Tortola "
    "America/Whitehorse America/Yakutat America/Yellowknife Antarctica/Casey Antarctica/Davis "
    "Antarctica/DumontDUrville Antarctica/Macquarie Antarctica/Mawson Antarctica/McMurdo Antarctica/Palmer "
    "Antarctica/Rothera Antarctica/Syowa Antarctica/Troll Antarctica/Vostok Arctic/Longyearbyen Asia/Aden Asia/Almaty "
    "Asia/Anadyr Asia/Aqtau Asia/Aqtobe Asia/Ashgabat Asia/Atyrau Asia/Barnaul Asia/Bishkek Asia/Brunei Asia/Chita "
    "Asia/Choibalsan Asia/Damascus Asia/Dili Asia/Dushanbe Asia/Famagusta Asia/Hebron Asia/Hovd Asia/Istanbul "
    "Asia/Kabul Asia/Khandyga Asia/Kuching Asia/Macau Asia/Novokuznetsk Asia/Novosibirsk Asia/Oral Asia/Phnom_Penh "
    "Asia/Pontianak Asia/Pyongyang Asia/Qostanay Asia/Qyzylorda Asia/Sakhalin Asia/Samarkand Asia/Srednekolymsk "
    "Asia/Tashkent Asia/Tbilisi Asia/Tehran Asia/Thimphu Asia/Tomsk Asia/Ulaanbaatar Asia/Urumqi Asia/Ust-Nera "
    "Asia/Vientiane Asia/Yangon Asia/Yerevan Atlantic/Bermuda Atlantic/Cape_Verde Atlantic/Faroe Atlantic/Madeira "
    "Atlantic/South_Georgia Atlantic/St_Helena Atlantic/Stanley Australia/Adelaide Australia/Brisbane "
    "Australia/Currie Australia/Darwin Australia/Eucla Australia/Hobart Australia/Lindeman Australia/Lord_Howe CET "
    "CST6CDT EET EST EST5EDT Etc/GMT Etc/GMT+0 Etc/GMT+1 Etc/GMT+10 Etc/GMT+11 Etc/GMT+12 Etc/GMT+2 Etc/GMT+3 "
    "Etc/GMT+4 Etc/GMT+5 Etc/GMT+6 Etc/GMT+7 Etc/GMT+8 Etc/GMT+9 Etc/GMT-0 Etc/GMT-1 Etc/GMT-10 Etc/GMT-11 Etc/GMT-12 "
    "Etc/GMT-13 Etc/GMT-14 Etc/GMT-2 Etc/GMT-3 Etc/GMT-4 Etc/GMT-5 Etc/GMT-6 Etc/GMT-7 Etc/GMT-8 Etc/GMT-9 Etc/GMT0 "
    "Etc/Greenwich Etc/Universal Etc/Zulu Europe/Andorra Europe/Astrakhan Europe/Busingen Europe/Chisinau "
    "Europe/Gibraltar Europe/Guernsey Europe/Isle_of_Man Europe/Jersey Europe/Kirov Europe/Mariehamn Europe/Minsk "
    "Europe/Monaco Europe/Nicosia Europe/Podgorica Europe/San_Marino Europe/Saratov Europe/Simferopol Europe/Tirane "
    "Europe/Ulyanovsk Europe/Uzhgorod Europe/Vaduz Europe/Vatican Europe/Volgograd Europe/Zaporozhye GMT HST "
    "Indian/Antananarivo Indian/Chagos Indian/Christmas Indian/Cocos Indian/Comoro Indian/Kerguelen Indian/Mahe "
    "Indian/Mayotte Indian/Reunion MET MST MST7MDT PST8PDT Pacific/Apia Pacific/Bougainville Pacific/Chatham "
    "Pacific/Chuuk Pacific/Efate Pacific/Enderbury Pacific/Fakaofo Pacific/Fiji Pacific/Funafuti Pacific/Gambier "
    "Pacific/Guadalcanal Pacific/Guam Pacific/Kiritimati Pacific/Kosrae Pacific/Kwajalein Pacific/Majuro "
    "Pacific/Marquesas Pacific/Midway Pacific/Nauru Pacific/Niue Pacific/Norfolk Pacific/Noumea Pacific/Pago_Pago "
    "Pacific/Palau Pacific/Pitcairn Pacific/Pohnpei Pacific/Port_Moresby Pacific/Rarotonga Pacific/Saipan "
    "Pacific/Tahiti Pacific/Tarawa Pacific/Tongatapu Pacific/Wake Pacific/Wallis UTC WET "
)

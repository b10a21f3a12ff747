"""Ops: ad accounts (list, read, overview), spend caps, account users."""
from __future__ import annotations

import json
from typing import Any

from facebook_business.adobjects.adaccount import AdAccount
from pydantic import Field

from fb_utils import (
    Change,
    GraphRequest,
    OpContext,
    OpArgs,
    OpKind,
    OpResult,
    OpSet,
    ValidationError,
    WritePlan,
    format_money,
)

ops = OpSet("fb_ad_account")

ACCOUNT_STATUS = {1: "ACTIVE", 2: "DISABLED", 3: "UNSETTLED", 7: "PENDING_RISK_REVIEW", 8: "PENDING_SETTLEMENT",
                  9: "IN_GRACE_PERIOD", 100: "PENDING_CLOSURE", 101: "CLOSED", 201: "ANY_ACTIVE", 202: "ANY_CLOSED"}

A = AdAccount.Field
LIST_FIELDS = ",".join([A.id, A.name, A.currency, A.account_status, A.amount_spent, A.spend_cap, A.timezone_name])
DETAIL_FIELDS = ",".join([A.id, A.account_id, A.name, A.currency, A.account_status, A.disable_reason, A.amount_spent,
                          A.balance, A.spend_cap, A.min_daily_budget, A.timezone_name, A.business, A.created_time])
AdAccountArg = Field(None, description="Ad account id (act_<digits>); defaults to the selected account.", examples=["act_1234567890"])


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
    return (f"{mark} {account['id']} · {account.get('name', '')} · {currency} · {status_name(account.get('account_status'))}"
            f" · spent {spent} · {cap_text(account.get('spend_cap'), currency)}")


class ListAdAccountsArgs(OpArgs):
    """List the ad accounts this token can use, with currency, status, amount spent and spend cap (* = selected)."""

    limit: int = Field(100, ge=1, le=1000, description="Most accounts to list.")


@ops.op(OpKind.READ)
async def list_ad_accounts(ctx: OpContext, args: ListAdAccountsArgs) -> OpResult:
    accounts = await ctx.graph.get_all("me/adaccounts", {"fields": LIST_FIELDS, "limit": min(args.limit, 100)}, limit=args.limit)
    if not accounts:
        return OpResult(text="This token sees no ad accounts. Fix: connect a user with access to an ad account (/connect).",
                        data={"accounts": []})
    lines = [f"Ad accounts ({len(accounts)}):"] + ["  " + account_line(a, ctx.ad_account_id) for a in accounts]
    if not ctx.ad_account_id:
        lines.append("Select one with /use act_… (select_ad_account).")
    return OpResult(text="\n".join(lines), data={"accounts": accounts, "selected": ctx.ad_account_id})


class GetAdAccountArgs(OpArgs):
    """Show one ad account: currency, status, time zone, spend, balance, spend cap, minimum daily budget."""

    ad_account_id: str | None = AdAccountArg


def account_details(account: dict[str, Any]) -> str:
    currency = account.get("currency", "")
    lines = [f"Ad account {account.get('name')} ({account['id']})",
             f"  status {status_name(account.get('account_status'))}, currency {currency}, time zone {account.get('timezone_name')}",
             f"  amount spent {format_money(account.get('amount_spent') or 0, currency)}, balance {format_money(account.get('balance') or 0, currency)}",
             f"  {cap_text(account.get('spend_cap'), currency)}"]
    if account.get("min_daily_budget") not in (None, ""):
        lines.append(f"  minimum daily budget {format_money(account['min_daily_budget'], currency)}")
    if account.get("disable_reason") not in (None, 0, "0"):
        lines.append(f"  disable reason {account['disable_reason']}")
    if isinstance(account.get("business"), dict):
        lines.append(f"  business {account['business'].get('name')} ({account['business'].get('id')})")
    return "\n".join(lines)


@ops.op(OpKind.READ)
async def get_ad_account(ctx: OpContext, args: GetAdAccountArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.get(account_id, {"fields": DETAIL_FIELDS})
    return OpResult(text=account_details(account), data={"account": account})


class AccountOverviewArgs(OpArgs):
    """The `status` overview: the account, what it has spent, its spend cap, and its active campaigns and those with issues."""

    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.READ)
async def account_overview(ctx: OpContext, args: AccountOverviewArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.get(account_id, {"fields": DETAIL_FIELDS})
    currency = account.get("currency", "")
    page = await ctx.graph.get(f"{account_id}/campaigns", {
        "fields": "id,name,effective_status,daily_budget,lifetime_budget,issues_info", "limit": 50, "summary": "true",
        "effective_status": json.dumps(["ACTIVE", "WITH_ISSUES", "IN_PROCESS"])})
    campaigns = page.get("data", [])
    total = (page.get("summary") or {}).get("total_count", len(campaigns))
    active = [c for c in campaigns if c.get("effective_status") == "ACTIVE"]
    troubled = [c for c in campaigns if c.get("effective_status") == "WITH_ISSUES"]
    daily = sum(int(c.get("daily_budget") or 0) for c in active)
    lines = [account_details(account), f"  active campaigns {len(active)} (of {total} delivering or in process), "
                                       f"combined campaign daily budgets {format_money(daily, currency)}"]
    lines += [f"    {c['id']} {c.get('name')}" + (f" · {format_money(c['daily_budget'], currency)}/day" if c.get("daily_budget") else "")
              for c in active[:10]]
    for campaign in troubled:
        issue = (campaign.get("issues_info") or [{}])[0]
        lines.append(f"  ISSUE {campaign['id']} {campaign.get('name')}: {issue.get('error_summary') or issue.get('error_message') or 'with issues'}")
    return OpResult(text="\n".join(lines), data={"account": account, "active_campaigns": active, "campaigns_with_issues": troubled,
                                                 "active_daily_budget": daily})


class UpdateSpendCapArgs(OpArgs):
    """Set the ad account's spend cap (the most it may spend in total), or remove it with 0. Raising or removing it needs confirmation."""

    ad_account_id: str | None = AdAccountArg
    spend_cap: int = Field(..., ge=0, le=10**13, description="New cap in minor units of the account currency (cents for USD, yen for JPY); 0 removes the cap.", examples=[500000])


@ops.op(OpKind.SPEND, example={"ad_account_id": "act_1234567890", "spend_cap": 500000})
async def update_spend_cap(ctx: OpContext, args: UpdateSpendCapArgs) -> WritePlan | OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.get(account_id, {"fields": "id,name,currency,spend_cap,amount_spent"})
    currency = account.get("currency", "")
    before = int(account.get("spend_cap") or 0)
    name = account.get("name", "")
    if before == args.spend_cap:
        return OpResult(text=f"{name} ({account_id}) already has {cap_text(before, currency)}; nothing to change.",
                        data={"ad_account_id": account_id, "spend_cap": before})
    spent = int(account.get("amount_spent") or 0)
    if args.spend_cap and args.spend_cap <= spent:
        raise ValidationError(
            f"A spend cap of {format_money(args.spend_cap, currency)} is not above the {format_money(spent, currency)} {name} has already spent",
            fix=f"Set spend_cap above {spent} ({format_money(spent, currency)}), or 0 to remove the cap", blame_field="spend_cap")
    change = Change(account_id, "ad account", name, "spend_cap", str(before), str(args.spend_cap), currency)

    async def execute() -> OpResult:
        await ctx.graph.post(account_id, {"spend_cap": args.spend_cap}, idempotent=True)
        ctx.graph.invalidate_account(account_id)
        return OpResult(text=f"{name} ({account_id}): {cap_text(before, currency)} → {cap_text(args.spend_cap, currency)}.",
                        data={"ad_account_id": account_id, "spend_cap": args.spend_cap, "changes": [vars(change).copy()]})

    return WritePlan(summary=f"set spend cap of {name} ({account_id}) to {format_money(args.spend_cap, currency) if args.spend_cap else 'none'}",
                     ad_account_id=account_id, requests=[GraphRequest("POST", account_id, {"spend_cap": args.spend_cap})],
                     changes=[change], execute=execute, currency=currency)


class ListAccountUsersArgs(OpArgs):
    """List the people with access to the ad account and what each may do (their tasks)."""

    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.READ)
async def list_account_users(ctx: OpContext, args: ListAccountUsersArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    users = await ctx.graph.get_all(f"{account_id}/users", {"fields": "id,name,tasks"})
    if not users:
        return OpResult(text=f"No users listed for {account_id}.", data={"users": []})
    lines = [f"Users of {account_id}:"] + [f"  {u.get('id')} {u.get('name', '')}: {', '.join(u.get('tasks') or []) or 'no tasks'}" for u in users]
    return OpResult(text="\n".join(lines), data={"ad_account_id": account_id, "users": users})


class SelectAdAccountArgs(OpArgs):
    """Select the ad account that later ops use when they are not given one."""

    ad_account_id: str = Field(..., description="The ad account to use, e.g. act_1234567890.", examples=["act_1234567890"])


@ops.op(OpKind.READ, idempotent=True)
async def select_ad_account(ctx: OpContext, args: SelectAdAccountArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    info = await ctx.graph.account_info(account_id)
    return OpResult(text=f"Selected {info.name} ({account_id}), currency {info.currency}, time zone {info.timezone_name}.",
                    data={"ad_account_id": account_id, "name": info.name, "currency": info.currency},
                    selections={"ad_account": account_id})

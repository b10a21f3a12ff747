"""Ops: campaigns (list, read, create, update, pause/resume/archive/delete, duplicate, bulk update)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from facebook_business.adobjects.campaign import Campaign
from pydantic import BaseModel, Field, field_validator, model_validator

from fb_utils import (
    CLIENT_TAG_DESCRIPTION,
    CLIENT_TAG_PATTERN,
    AccountInfo,
    Amount,
    BatchItem,
    Change,
    CreateLookup,
    EditedObject,
    GraphRequest,
    ListPage,
    OpArgs,
    OpContext,
    OpData,
    OpKind,
    OpResult,
    OpSet,
    TaskGroup,
    ValidationError,
    WritePlan,
    add_status_ops,
    change_dicts,
    changed_data,
    check_max_budget,
    check_object_id,
    describe_change,
    field_changes,
    format_money,
    graph_object,
    list_page,
    list_text,
    new_client_tag,
    recovered_words,
    sdk_enum_values,
    slash_command,
    update_plan,
    when_text,
)

ops = OpSet("fb_campaign")

# New campaigns take only the OUTCOME_* objectives; the SDK's enum still lists the legacy ones for old objects.
OBJECTIVES = tuple(v for v in sdk_enum_values(Campaign.Objective) if v.startswith("OUTCOME_"))
SPECIAL_AD_CATEGORIES = sdk_enum_values(Campaign.SpecialAdCategories)
BID_STRATEGIES = sdk_enum_values(Campaign.BidStrategy)
EFFECTIVE_STATUSES = sdk_enum_values(Campaign.EffectiveStatus)
STATUS_OPTIONS = sdk_enum_values(Campaign.StatusOption)

Objective = Literal[OBJECTIVES]  # type: ignore[valid-type]
SpecialAdCategory = Literal[SPECIAL_AD_CATEGORIES]  # type: ignore[valid-type]
BidStrategy = Literal[BID_STRATEGIES]  # type: ignore[valid-type]
EffectiveStatus = Literal[EFFECTIVE_STATUSES]  # type: ignore[valid-type]
StatusOption = Literal[STATUS_OPTIONS]  # type: ignore[valid-type]

F = Campaign.Field
CAMPAIGN_FIELDS = ",".join(
    [
        F.id,
        F.account_id,
        F.name,
        F.objective,
        F.status,
        F.effective_status,
        F.daily_budget,
        F.lifetime_budget,
        F.budget_remaining,
        F.bid_strategy,
        F.spend_cap,
        F.special_ad_categories,
        F.start_time,
        F.stop_time,
        F.created_time,
        F.updated_time,
        # v24.0+ budget sharing; v23.0+ read-only Advantage+ state (docs/adset_rules.md, "Changelog rules")
        F.is_adset_budget_sharing_enabled,
        F.advantage_state_info,
    ]
)
LIST_FIELDS = ",".join(
    [F.id, F.name, F.objective, F.status, F.effective_status, F.daily_budget, F.lifetime_budget, F.bid_strategy]
)

# ---- What the ops answer as data (their result models: MCP's outputSchema) ----------------------------------------
ListedCampaign = graph_object(Campaign, LIST_FIELDS, name="ListedCampaign")
CampaignObject = graph_object(Campaign, CAMPAIGN_FIELDS, name="CampaignObject")
ChangedCampaign = changed_data("campaign_id")


class CampaignList(ListPage):
    ad_account_id: str
    currency: str
    campaigns: list[ListedCampaign]  # type: ignore[valid-type]


class CampaignData(OpData):
    campaign: CampaignObject  # type: ignore[valid-type]
    currency: str


class CreatedCampaign(OpData):
    id: str
    campaign_id: str
    status: str
    ad_account_id: str
    recovered: bool = Field(description="True when the create's answer was lost and the campaign was found afterwards.")


class CopiedCampaign(OpData):
    campaign_id: str
    copied_campaign_id: str
    source_campaign_id: str
    status: str
    ad_object_ids: list[Any]


class BulkRow(BaseModel):
    campaign_id: str
    ok: bool
    error: dict[str, Any] | None = None
    skipped: str | None = None
    unchanged: bool | None = None


class BulkUpdated(OpData):
    results: list[BulkRow]
    changes: list[Change]


LISTABLE_STATUSES = [s for s in EFFECTIVE_STATUSES if s not in ("ARCHIVED", "DELETED")]
EDITABLE_LOOKUP_STATUSES = [s for s in EFFECTIVE_STATUSES if s != "DELETED"]
BUDGET_NOTE = "Minor units of the account currency (cents for USD: 5000 = $50.00; yen for JPY: 5000 = ¥5,000)."

AdAccountArg = Field(
    None, description="Ad account id (act_<digits>); defaults to the selected account.", examples=["act_1234567890"]
)
CampaignIdArg = Field(..., description="The campaign id (digits).", examples=["120210000000000001"])


# ---------------------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------------------


def budget_text(campaign: dict[str, Any], currency: str) -> str:
    if campaign.get("daily_budget") not in (None, "", "0"):
        return f"{format_money(campaign['daily_budget'], currency)}/day"
    if campaign.get("lifetime_budget") not in (None, "", "0"):
        return f"{format_money(campaign['lifetime_budget'], currency)} lifetime"
    return "budget on ad sets"


def campaign_line(campaign: dict[str, Any], currency: str) -> str:
    status = campaign.get("effective_status") or campaign.get("status") or "?"
    objective = campaign.get("objective", "")
    return f"{campaign['id']} · {campaign.get('name', '')} · {status} · {objective} · {budget_text(campaign, currency)}"


def campaign_details(campaign: dict[str, Any], account: AccountInfo) -> str:
    currency = account.currency
    lines = [
        f"Campaign {campaign.get('name')} ({campaign['id']}) in {account.name} ({account.id})",
        f"  status {campaign.get('status')} (effective {campaign.get('effective_status')}), objective {campaign.get('objective')}",
        f"  budget {budget_text(campaign, currency)}",
    ]
    if campaign.get("budget_remaining") not in (None, "", "0"):
        lines.append(f"  budget remaining {format_money(campaign['budget_remaining'], currency)}")
    if campaign.get("bid_strategy"):
        lines.append(f"  bid strategy {campaign['bid_strategy']}")
    if campaign.get("spend_cap") not in (None, "", "0"):
        lines.append(f"  spend cap {format_money(campaign['spend_cap'], currency)}")
    if (
        campaign.get("is_adset_budget_sharing_enabled") is not None
        and budget_text(campaign, currency) == "budget on ad sets"
    ):
        lines.append(
            "  ad set budget sharing " + ("on (up to 20%)" if campaign["is_adset_budget_sharing_enabled"] else "off")
        )
    advantage = campaign.get("advantage_state_info")
    advantage = advantage if isinstance(advantage, dict) else {}
    if advantage.get("advantage_state"):
        levers = ", ".join(
            f"{name} {advantage[key]}"
            for key, name in (
                ("advantage_budget_state", "budget"),
                ("advantage_audience_state", "audience"),
                ("advantage_placement_state", "placements"),
            )
            if advantage.get(key)
        )
        lines.append(f"  Advantage+ state {advantage['advantage_state']}" + (f" ({levers})" if levers else ""))
    categories = campaign.get("special_ad_categories") or []
    lines.append(f"  special ad categories {', '.join(categories) if categories else 'none'}")
    for key in ("start_time", "stop_time", "created_time"):
        if campaign.get(key):
            lines.append(f"  {key.replace('_', ' ')} {when_text(campaign[key], account)}")
    return "\n".join(lines)


async def _account_of(ctx: OpContext, campaign: dict[str, Any]) -> AccountInfo:
    return await ctx.graph.account_info(
        f"act_{campaign['account_id']}" if campaign.get("account_id") else ctx.require_ad_account()
    )


async def _read_campaign(ctx: OpContext, campaign_id: str, fields: str = CAMPAIGN_FIELDS) -> dict[str, Any]:
    return await ctx.graph.get(check_object_id(campaign_id, "campaign_id"), {"fields": fields})


# ---------------------------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------------------------


class ListCampaignsArgs(OpArgs):
    """List the campaigns of an ad account with status, objective and budget; filter by status or name, page with `after`."""

    ad_account_id: str | None = AdAccountArg
    status: list[EffectiveStatus] | None = Field(
        None,
        description='Only campaigns with these effective statuses, e.g. ["ACTIVE"]. Default: all but ARCHIVED and DELETED, like Ads Manager.',
    )
    name_contains: str | None = Field(
        None, min_length=1, max_length=200, description="Only campaigns whose name contains this text."
    )
    limit: int = Field(25, ge=1, le=1000, description="Page size (1-1000).")
    after: str | None = Field(None, description="Cursor from a previous page's `next_after` to get the next page.")
    all_pages: bool = Field(
        False, description="Follow every page (up to `limit` campaigns in total when set together)."
    )


@ops.op(OpKind.READ, group=TaskGroup.CAMPAIGNS, core=True, result=CampaignList)
async def list_campaigns(ctx: OpContext, args: ListCampaignsArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.account_info(account_id)
    campaigns, next_after = await list_page(ctx.graph, f"{account_id}/campaigns", args, LIST_FIELDS, LISTABLE_STATUSES)
    text, hints = list_text(
        "list_campaigns",
        args,
        "campaigns",
        f"{account.name} ({account_id})",
        campaigns,
        lambda c: campaign_line(c, account.currency),
        next_after,
    )
    return OpResult(
        text=text,
        hints=hints,
        data={
            "ad_account_id": account_id,
            "currency": account.currency,
            "campaigns": campaigns,
            "next_after": next_after,
        },
    )


class GetCampaignArgs(OpArgs):
    """Show one campaign: status, objective, budget, bid strategy, schedule."""

    campaign_id: str = CampaignIdArg


@ops.op(OpKind.READ, group=TaskGroup.CAMPAIGNS, core=True, result=CampaignData)
async def get_campaign(ctx: OpContext, args: GetCampaignArgs) -> OpResult:
    campaign = await _read_campaign(ctx, args.campaign_id)
    account = await _account_of(ctx, campaign)
    return OpResult(text=campaign_details(campaign, account), data={"campaign": campaign, "currency": account.currency})


# ---------------------------------------------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------------------------------------------


class CreateCampaignArgs(OpArgs):
    """Create a campaign (PAUSED unless status=ACTIVE is confirmed). Budget on the campaign, or leave it to the ad sets."""

    ad_account_id: str | None = AdAccountArg
    name: str = Field(..., min_length=1, max_length=400, description="Campaign name.", examples=["Summer Sale"])
    objective: Objective = Field(
        ..., description="What the campaign optimises for (OUTCOME_* objectives).", examples=["OUTCOME_TRAFFIC"]
    )
    status: Literal["PAUSED", "ACTIVE"] = Field(
        "PAUSED", description="PAUSED (default) or ACTIVE, which starts spending and needs confirmation."
    )
    special_ad_categories: list[SpecialAdCategory] = Field(
        default_factory=list,
        description="Required by Facebook for credit, employment, housing, social issues/politics, gambling; empty (or NONE) otherwise.",
    )
    special_ad_category_country: list[str] | None = Field(
        None, description='ISO country codes where the special category applies, e.g. ["US"].'
    )
    daily_budget: Amount | None = Field(None, gt=0, description=f"Campaign daily budget. {BUDGET_NOTE}")
    lifetime_budget: Amount | None = Field(
        None, gt=0, description=f"Campaign lifetime budget (needs stop_time). {BUDGET_NOTE}"
    )
    bid_strategy: BidStrategy | None = Field(None, description="Bid strategy; needs a campaign budget.")
    spend_cap: Amount | None = Field(None, gt=0, description=f"Most the campaign may ever spend. {BUDGET_NOTE}")
    start_time: datetime | None = Field(None, description="ISO-8601 start, e.g. 2026-12-01T09:00:00+00:00.")
    stop_time: datetime | None = Field(None, description="ISO-8601 end; required with lifetime_budget.")
    adset_budget_sharing: bool = Field(
        False,
        description="Without a campaign budget: let ad sets share up to 20% of their daily budgets "
        "with each other (true) or not (false, default). Ignored with a campaign budget.",
    )
    client_tag: str | None = Field(None, pattern=CLIENT_TAG_PATTERN, description=CLIENT_TAG_DESCRIPTION)

    @field_validator("special_ad_category_country")
    @classmethod
    def _countries(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        bad = [c for c in value if not (isinstance(c, str) and len(c) == 2 and c.isalpha())]
        if bad:
            raise ValueError(f"country codes must be two letters (ISO 3166), not {bad}")
        return [c.upper() for c in value]

    @model_validator(mode="after")
    def _budget_rules(self) -> CreateCampaignArgs:
        check_budget_fields(self.daily_budget, self.lifetime_budget, self.stop_time, self.bid_strategy)
        return self


def check_budget_fields(
    daily: int | None, lifetime: int | None, stop_time: datetime | None, bid_strategy: str | None
) -> None:
    if daily and lifetime:
        raise ValueError("set daily_budget or lifetime_budget, not both")
    if lifetime and stop_time is None:
        raise ValueError("lifetime_budget needs stop_time (when the campaign ends)")
    if bid_strategy and not (daily or lifetime):
        raise ValueError("bid_strategy needs a campaign budget (daily_budget or lifetime_budget)")


def check_min_budget(amount: int | None, account: AccountInfo, field: str) -> None:
    """Facebook refuses budgets under the account's minimum (100/1885272); say so before sending."""
    minimum = account.min_daily_budget
    if amount is not None and minimum and field == "daily_budget" and amount < minimum:
        raise ValidationError(
            f"daily_budget {format_money(amount, account.currency)} is below the minimum of "
            f"{format_money(minimum, account.currency)} for {account.name}",
            fix=f"Use daily_budget of at least {minimum} ({format_money(minimum, account.currency)}); amounts are minor units of {account.currency}",
            blame_field=field,
            code=100,
            error_subcode=1885272,
        )


def _graph_time(value: datetime) -> str:
    return value.isoformat()


def create_payload(args: CreateCampaignArgs) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": args.name,
        "objective": args.objective,
        "status": args.status,
        "special_ad_categories": [c for c in args.special_ad_categories if c != "NONE"],
    }
    optional = {
        "special_ad_category_country": args.special_ad_category_country,
        "daily_budget": args.daily_budget,
        "lifetime_budget": args.lifetime_budget,
        "bid_strategy": args.bid_strategy,
        "spend_cap": args.spend_cap,
        "start_time": args.start_time and _graph_time(args.start_time),
        "stop_time": args.stop_time and _graph_time(args.stop_time),
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    if not (args.daily_budget or args.lifetime_budget):
        # v24.0+: required (true or false) when the campaign has no campaign budget ("Ad set budget sharing",
        # https://developers.facebook.com/documentation/ads-commerce/marketing-api/bidding/guides/adset-budget-sharing)
        data["is_adset_budget_sharing_enabled"] = args.adset_budget_sharing
    return data


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.CAMPAIGNS,
    example={"name": "Summer Sale", "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000},
    result=CreatedCampaign,
)
async def create_campaign(ctx: OpContext, args: CreateCampaignArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.account_info(account_id)
    check_min_budget(args.daily_budget, account, "daily_budget")
    check_max_budget("daily_budget", args.daily_budget, account)
    check_max_budget("lifetime_budget", args.lifetime_budget, account)
    data = create_payload(args)
    tag = args.client_tag or new_client_tag()
    path = f"{account_id}/campaigns"
    send = {**data, "adlabels": [{"name": tag}]}

    async def execute() -> OpResult:
        created = await ctx.graph.create(
            path, send, lookup=CreateLookup(list_path=path, name=args.name, tag=tag), look_first=bool(args.client_tag)
        )
        recovered = recovered_words(created)
        sharing = ""
        if "is_adset_budget_sharing_enabled" in data:
            sharing = (
                " (ad sets may share up to 20% of their budgets)"
                if data["is_adset_budget_sharing_enabled"]
                else " (ad sets keep their own budgets; adset_budget_sharing=true lets them share up to 20%)"
            )
        campaign_budget = bool(data.get("daily_budget") or data.get("lifetime_budget"))
        next_adset = {
            "campaign_id": created["id"],
            "name": f"{args.name} - ad set 1",
            "targeting": {"geo_locations": {"countries": ["US"]}},
            **({} if campaign_budget else {"daily_budget": max(account.min_daily_budget or 0, 1000)}),
        }
        text = (
            f"Created campaign {args.name} ({created['id']}) {args.status} in {account.name}: {args.objective}, "
            f"{budget_text(data, account.currency)}{sharing}{recovered}.\nNext, an ad set "
            + ("(its budget comes from the campaign)" if campaign_budget else "with its own daily budget")
            + f": {slash_command('create_adset', next_adset)}"
        )
        return OpResult(
            text=text,
            data={
                "id": created["id"],
                "campaign_id": created["id"],
                "status": args.status,
                "ad_account_id": account_id,
                "recovered": bool(created.get("recovered")),
            },
        )

    async def validate() -> Any:
        return await ctx.graph.post(path, {**data, "execution_options": ["validate_only"]})

    changes = [Change(None, "campaign", args.name, "status", None, args.status)]
    changes += [
        Change(None, "campaign", args.name, f, None, getattr(args, f), account.currency)
        for f in ("daily_budget", "lifetime_budget")
        if getattr(args, f)
    ]
    return WritePlan(
        summary=f"create campaign {args.name} ({args.status}) in {account_id}",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", path, send)],
        changes=changes,
        execute=execute,
        validate=validate,
        currency=account.currency,
    )


# ---------------------------------------------------------------------------------------------------------------
# Update and status changes
# ---------------------------------------------------------------------------------------------------------------


class UpdateCampaignArgs(OpArgs):
    """Change a campaign's name, status, budget, bid strategy, spend cap or end time (raises need confirmation over the guardrails)."""

    campaign_id: str = CampaignIdArg
    name: str | None = Field(None, min_length=1, max_length=400, description="New name.")
    status: Literal["ACTIVE", "PAUSED"] | None = Field(None, description="ACTIVE (starts spending) or PAUSED.")
    daily_budget: Amount | None = Field(None, gt=0, description=f"New daily budget. {BUDGET_NOTE}")
    lifetime_budget: Amount | None = Field(None, gt=0, description=f"New lifetime budget. {BUDGET_NOTE}")
    bid_strategy: BidStrategy | None = Field(None, description="New bid strategy.")
    spend_cap: Amount | None = Field(None, ge=0, description=f"New spend cap; 0 removes it. {BUDGET_NOTE}")
    stop_time: datetime | None = Field(None, description="New ISO-8601 end time.")

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateCampaignArgs:
        if not self.model_dump(exclude={"campaign_id"}, exclude_none=True):
            raise ValueError(
                "nothing to change: pass at least one of name, status, daily_budget, lifetime_budget, bid_strategy, spend_cap, stop_time"
            )
        if self.daily_budget and self.lifetime_budget:
            raise ValueError("set daily_budget or lifetime_budget, not both")
        return self


def _updates_of(args: BaseModel, exclude: set[str]) -> dict[str, Any]:
    values = args.model_dump(exclude=exclude, exclude_none=True)
    return {k: (_graph_time(v) if isinstance(v, datetime) else v) for k, v in values.items()}


def _check_update_allowed(campaign: dict[str, Any], updates: dict[str, Any], account: AccountInfo) -> None:
    status = campaign.get("status")
    if status == "DELETED":
        raise ValidationError(
            f"Campaign {campaign['id']} is deleted and cannot be changed", fix="Duplicate it or create a new campaign"
        )
    if (status == "ARCHIVED" and set(updates) - {"status"}) or (
        status == "ARCHIVED" and updates.get("status") != "DELETED"
    ):
        raise ValidationError(
            f"Campaign {campaign.get('name')} ({campaign['id']}) is archived; Facebook only allows deleting it",
            fix="Use duplicate_campaign to run it again, or delete_campaign",
        )
    has_daily = campaign.get("daily_budget") not in (None, "", "0")
    has_lifetime = campaign.get("lifetime_budget") not in (None, "", "0")
    if ("daily_budget" in updates and has_lifetime) or ("lifetime_budget" in updates and has_daily):
        raise ValidationError(
            "A campaign cannot switch between daily and lifetime budget",
            fix="Change the budget of the kind it has (daily_budget or lifetime_budget)",
        )
    if ("daily_budget" in updates or "lifetime_budget" in updates) and not (has_daily or has_lifetime):
        raise ValidationError(
            f"Campaign {campaign.get('name')} has no campaign budget: its budgets are on its ad sets",
            fix="Change the ad sets' budgets instead",
        )
    check_min_budget(updates.get("daily_budget"), account, "daily_budget")
    for field in ("daily_budget", "lifetime_budget"):
        check_max_budget(field, updates.get(field), account)


def describe_changes(changes: list[Change]) -> str:
    return "; ".join(describe_change(c) for c in changes)


def edited_campaign(campaign: dict[str, Any], account: AccountInfo) -> EditedObject:
    return EditedObject(
        campaign,
        "campaign",
        "campaign",
        "campaign_id",
        f"act_{campaign['account_id']}" if campaign.get("account_id") else None,
        account.currency,
    )


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.CAMPAIGNS,
    example={"campaign_id": "120210000000000001", "daily_budget": 8000},
    result=ChangedCampaign,
)
async def update_campaign(ctx: OpContext, args: UpdateCampaignArgs) -> WritePlan | OpResult:
    campaign = await _read_campaign(ctx, args.campaign_id)
    account = await _account_of(ctx, campaign)
    updates = _updates_of(args, {"campaign_id"})
    _check_update_allowed(campaign, updates, account)
    return update_plan(ctx, edited_campaign(campaign, account), updates, "Updated")


async def _status_change(ctx: OpContext, campaign_id: str, status: str, verb: str) -> WritePlan | OpResult:
    campaign = await _read_campaign(ctx, campaign_id)
    account = await _account_of(ctx, campaign)
    _check_update_allowed(campaign, {"status": status}, account)
    return update_plan(ctx, edited_campaign(campaign, account), {"status": status}, verb)


add_status_ops(
    ops,
    "campaign",
    "campaign_id",
    CampaignIdArg,
    {
        "pause": "Pause a campaign: delivery stops until it is resumed.",
        "resume": "Resume (activate) a paused campaign: it can spend again, so this asks for confirmation under the guardrails policy.",
        "archive": "Archive a campaign: it stops and leaves the default lists; afterwards it can only be deleted.",
        "delete": "Delete a campaign (and with it its ad sets and ads). This cannot be undone.",
    },
    _status_change,
    TaskGroup.CAMPAIGNS,
    core=("pause",),
    result=ChangedCampaign,
)


# ---------------------------------------------------------------------------------------------------------------
# Duplicate
# ---------------------------------------------------------------------------------------------------------------


class DuplicateCampaignArgs(OpArgs):
    """Copy a campaign (optionally with its ad sets and ads) through Facebook's /copies; the copy is PAUSED by default."""

    campaign_id: str = CampaignIdArg
    deep_copy: bool = Field(False, description="Also copy the campaign's ad sets and ads.")
    status_option: StatusOption = Field(
        "PAUSED",
        description="Status of the copy: PAUSED (default), ACTIVE (needs confirmation) or INHERITED_FROM_SOURCE.",
    )
    rename_suffix: str = Field(" - Copy", max_length=100, description="Text appended to the copy's name.")


@ops.op(OpKind.SPEND, group=TaskGroup.CAMPAIGNS, result=CopiedCampaign)
async def duplicate_campaign(ctx: OpContext, args: DuplicateCampaignArgs) -> WritePlan:
    source = await _read_campaign(ctx, args.campaign_id)
    account = await _account_of(ctx, source)
    if source.get("status") == "DELETED":
        raise ValidationError(
            f"Campaign {source['id']} is deleted and cannot be copied", fix="Pick a campaign that exists"
        )
    status = source.get("status") if args.status_option == "INHERITED_FROM_SOURCE" else args.status_option
    new_name = f"{source.get('name', '')}{args.rename_suffix}"
    body = {
        "deep_copy": args.deep_copy,
        "status_option": args.status_option,
        "rename_options": {
            "rename_suffix": args.rename_suffix,
            "rename_strategy": "DEEP_RENAME" if args.deep_copy else "ONLY_TOP_LEVEL_RENAME",
        },
    }

    async def execute() -> OpResult:
        copied = await ctx.graph.post(f"{source['id']}/copies", body)
        new_id = copied.get("copied_campaign_id") or copied.get("id")
        return OpResult(
            text=f"Copied campaign {source.get('name')} ({source['id']}) to {new_name} ({new_id}), {status}"
            + (" with its ad sets and ads." if args.deep_copy else "."),
            data={
                "campaign_id": new_id,
                "copied_campaign_id": new_id,
                "source_campaign_id": source["id"],
                "status": status,
                "ad_object_ids": copied.get("ad_object_ids", []),
            },
        )

    changes = [Change(None, "campaign", new_name, "status", None, status)]
    return WritePlan(
        summary=f"copy campaign {source.get('name')} ({source['id']}) as {new_name} ({status})",
        ad_account_id=f"act_{source['account_id']}" if source.get("account_id") else None,
        requests=[GraphRequest("POST", f"{source['id']}/copies", body)],
        changes=changes,
        execute=execute,
        currency=account.currency,
    )


# ---------------------------------------------------------------------------------------------------------------
# Bulk update through Graph batch
# ---------------------------------------------------------------------------------------------------------------


class CampaignUpdateItem(OpArgs):
    campaign_id: str = CampaignIdArg
    name: str | None = Field(None, min_length=1, max_length=400)
    status: Literal["ACTIVE", "PAUSED", "ARCHIVED"] | None = None
    daily_budget: Amount | None = Field(None, gt=0)
    lifetime_budget: Amount | None = Field(None, gt=0)


class BulkUpdateCampaignsArgs(OpArgs):
    """Update many campaigns at once through Graph batch requests (50 per request); answers one line per campaign."""

    ad_account_id: str | None = AdAccountArg
    campaign_ids: list[str] | None = Field(
        None,
        max_length=5000,
        description="Campaigns that all get the same change (status, daily_budget, lifetime_budget).",
    )
    status: Literal["ACTIVE", "PAUSED", "ARCHIVED"] | None = Field(
        None, description="New status for every campaign in campaign_ids."
    )
    daily_budget: Amount | None = Field(
        None, gt=0, description=f"New daily budget for every campaign in campaign_ids. {BUDGET_NOTE}"
    )
    lifetime_budget: Amount | None = Field(
        None, gt=0, description=f"New lifetime budget for every campaign in campaign_ids. {BUDGET_NOTE}"
    )
    updates: list[CampaignUpdateItem] | None = Field(
        None,
        max_length=5000,
        description="Per-campaign changes: [{campaign_id, name?, status?, daily_budget?, lifetime_budget?}].",
    )

    @model_validator(mode="after")
    def _one_form(self) -> BulkUpdateCampaignsArgs:
        common = {
            k: v
            for k, v in (
                ("status", self.status),
                ("daily_budget", self.daily_budget),
                ("lifetime_budget", self.lifetime_budget),
            )
            if v is not None
        }
        if self.campaign_ids and not common:
            raise ValueError("campaign_ids needs a change to apply: status, daily_budget or lifetime_budget")
        if common and not self.campaign_ids:
            raise ValueError(
                "status/daily_budget/lifetime_budget apply to campaign_ids; pass campaign_ids or use updates"
            )
        if not self.campaign_ids and not self.updates:
            raise ValueError("pass campaign_ids with a change, or updates")
        return self

    def per_campaign(self) -> dict[str, dict[str, Any]]:
        wanted: dict[str, dict[str, Any]] = {}
        common = {
            k: v
            for k, v in (
                ("status", self.status),
                ("daily_budget", self.daily_budget),
                ("lifetime_budget", self.lifetime_budget),
            )
            if v is not None
        }
        for campaign_id in self.campaign_ids or []:
            wanted.setdefault(check_object_id(campaign_id, "campaign_ids"), {}).update(common)
        for item in self.updates or []:
            fields = item.model_dump(exclude={"campaign_id"}, exclude_none=True)
            if not fields:
                raise ValidationError(
                    f"updates entry for {item.campaign_id} changes nothing",
                    fix="Give each entry at least one field to change",
                    blame_field="updates",
                )
            wanted.setdefault(check_object_id(item.campaign_id, "updates.campaign_id"), {}).update(fields)
        return wanted


READ_MANY_CHUNK = 1000  # Facebook's largest page: one request reads up to this many campaigns


async def _read_many(ctx: OpContext, account_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Current state of many campaigns of one account in as few requests as Facebook allows."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), READ_MANY_CHUNK):
        chunk = ids[start : start + READ_MANY_CHUNK]
        params = {
            "fields": LIST_FIELDS + ",account_id",
            "limit": len(chunk),
            "effective_status": json.dumps(EDITABLE_LOOKUP_STATUSES),
            "filtering": json.dumps([{"field": "id", "operator": "IN", "value": chunk}]),
        }
        found.update((c["id"], c) for c in await ctx.graph.get_all(f"{account_id}/campaigns", params))
    return found


def _bulk_problem(campaign: dict[str, Any] | None, fields: dict[str, Any], account: AccountInfo) -> str | None:
    if campaign is None:
        return "not found in this ad account (or deleted)"
    try:
        _check_update_allowed(campaign, fields, account)
    except ValidationError as error:
        return error.message
    return None


@ops.op(
    OpKind.SPEND,
    group=TaskGroup.CAMPAIGNS,
    example={"campaign_ids": ["120210000000000001", "120210000000000002"], "status": "PAUSED"},
    result=BulkUpdated,
)
async def bulk_update_campaigns(ctx: OpContext, args: BulkUpdateCampaignsArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    account = await ctx.graph.account_info(account_id)
    wanted = args.per_campaign()
    current = await _read_many(ctx, account_id, list(wanted))
    skipped = {
        cid: problem for cid, fields in wanted.items() if (problem := _bulk_problem(current.get(cid), fields, account))
    }
    if wanted and len(skipped) == len(wanted):  # nothing to send: refused before anything is audited as a write
        shown = "; ".join(f"{cid} {problem}" for cid, problem in list(skipped.items())[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise ValidationError(
            f"No campaign to update in {account.name}: {shown}{more}",
            fix="list_campaigns shows this account's campaigns",
            blame_field="campaign_ids",
        )
    changes_by_id = {
        cid: field_changes(current[cid], fields, "campaign", account.currency)
        for cid, fields in wanted.items()
        if cid not in skipped
    }
    changes_by_id = {cid: ch for cid, ch in changes_by_id.items() if ch}
    items = [BatchItem("POST", cid, body={c.field: c.after for c in ch}) for cid, ch in changes_by_id.items()]

    async def execute() -> OpResult:
        results = await ctx.graph.batch(items) if items else []
        lines, done, rows = [], [], []
        for (cid, changes), result in zip(changes_by_id.items(), results):
            name = current[cid].get("name", "")
            if result.error is None:
                done.extend(changes)
                lines.append(f"  ok   {cid} {name}: {describe_changes(changes)}")
                rows.append({"campaign_id": cid, "ok": True})
            else:
                lines.append(f"  FAIL {cid} {name}: {result.error.to_text()}")
                rows.append({"campaign_id": cid, "ok": False, "error": result.error.to_data()})
        for cid in wanted:
            if cid in skipped:
                lines.append(f"  skip {cid}: {skipped[cid]}")
                rows.append({"campaign_id": cid, "ok": False, "skipped": skipped[cid]})
            elif cid not in changes_by_id:
                lines.append(f"  same {cid} {current[cid].get('name', '')}: already set")
                rows.append({"campaign_id": cid, "ok": True, "unchanged": True})
        failed = sum(1 for r in rows if not r["ok"])
        updated = sum(1 for r in rows if r["ok"] and not r.get("unchanged"))
        head = f"Bulk update in {account.name}: {updated} updated, {failed} not updated, {len(wanted)} asked."
        return OpResult(
            text="\n".join([head] + lines), data={"results": rows, "changes": change_dicts(done)}, ok=failed == 0
        )

    all_changes = [c for ch in changes_by_id.values() for c in ch]
    return WritePlan(
        summary=f"bulk update of {len(items)} campaign(s) in {account_id}"
        + (f", {len(skipped)} skipped" if skipped else ""),
        ad_account_id=account_id,
        requests=[GraphRequest(i.method, i.relative_url, i.body or {}) for i in items],
        changes=all_changes,
        execute=execute,
        currency=account.currency,
    )

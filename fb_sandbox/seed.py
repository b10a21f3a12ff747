"""The demo business seeded on first start, and fast bulk campaign inserts for tests."""

from __future__ import annotations

import secrets
from typing import Any

from .apps import ensure_apps
from .auth import new_token
from .state import Sandbox
from .store import Obj

DAY = 86400
TASKS_ALL = ["DRAFT", "ANALYZE", "ADVERTISE", "MANAGE"]


def _stored(sb: Sandbox, obj_id: str) -> Obj:
    """An object the seed itself made (so it exists)."""
    obj = sb.store.get(obj_id)
    if obj is None:
        raise KeyError(f"the seed's object {obj_id} is missing")
    return obj


def _insert(
    sb: Sandbox,
    kind: str,
    data: dict,
    *,
    created: float,
    account_id: str | None = None,
    parent_id: str | None = None,
    obj_id: str | None = None,
) -> str:
    obj_id = obj_id or sb.store.new_id(kind)
    sb.store.insert(kind, obj_id, {"id": obj_id, **data}, account_id=account_id, parent_id=parent_id, now=created)
    return obj_id


def _account(sb: Sandbox, business_id: str, user_ids: list[str], created: float, **data) -> str:
    digits = sb.store.new_id("adaccount")
    act = f"act_{digits}"
    tasks = {user_ids[0]: TASKS_ALL, user_ids[1]: ["ANALYZE"]}
    base = {
        "account_id": digits,
        "account_status": 1,
        "disable_reason": 0,
        "balance": "0",
        "spend_cap": "0",
        "is_personal": 0,
        "funding_source_details": {"id": "0", "display_string": "Visa *1234", "type": 1},
        "capabilities": [],
        "_business_id": business_id,
        "_user_tasks": tasks,
    }
    _insert(sb, "adaccount", {**base, **data}, created=created, obj_id=act, parent_id=business_id)
    return act


def _campaign(sb: Sandbox, act: str, created: float, **data) -> str:
    defaults = {
        "buying_type": "AUCTION",
        "special_ad_categories": [],
        "special_ad_category_country": [],
        "source_campaign_id": "0",
        "adlabels": [],
        "start_time": created,
    }
    campaign_id = sb.store.new_id("campaign")
    sb.store.insert(
        "campaign",
        campaign_id,
        {"id": campaign_id, "account_id": act[4:], **defaults, **data},
        parent_id=act,
        account_id=act,
        now=created,
    )
    return campaign_id


def seed_demo(sb: Sandbox) -> None:
    store, now = sb.store, sb.now()
    app_id = store.new_id("app")
    store.kv_set("app_id", app_id)
    store.kv_set("app_secret", secrets.token_hex(16))
    world = seed_world(sb, now)
    store.kv_set("demo_user_id", world["user_id"])
    _seed_business_people(sb, world["business_id"], world["user_id"], world["analyst_id"], now - 400 * DAY)
    ensure_apps(store)


def seed_another_world(sb: Sandbox, label: str) -> dict:
    """One more demo world (`POST /__sandbox/users`): its own user, analyst, business, USD and JPY ad accounts,
    Instagram account, page, pixel, saved audiences, campaigns, ad sets and ads, with fresh ids, from the same code
    as the first demo world (its business people and their roles too); the user's name carries `label`
    ("Demo User (beta)")."""
    world = seed_world(sb, sb.now(), label=label)
    _seed_business_people(sb, world["business_id"], world["user_id"], world["analyst_id"], sb.now() - 400 * DAY)
    return world


def seed_world(sb: Sandbox, now: float, *, label: str | None = None) -> dict:
    """A demo world; -> its ids. Without `label`, the first one (the insert order fixes the ids: keep it)."""
    store = sb.store
    t0 = now - 400 * DAY
    tag = f" ({label})" if label else ""
    user = _insert(
        sb,
        "user",
        {"name": f"Demo User{tag}", "first_name": "Demo", "last_name": f"User{tag}", "email": "demo@example.com"},
        created=t0,
    )
    analyst = _insert(
        sb, "user", {"name": f"Alex Analyst{tag}", "first_name": "Alex", "last_name": f"Analyst{tag}"}, created=t0
    )
    business = _insert(
        sb,
        "business",
        {"name": f"Demo Business{tag}", "verification_status": "verified", "_user_ids": [user, analyst]},
        created=t0,
    )
    usd = _account(
        sb,
        business,
        [user, analyst],
        t0,
        name="Demo Store (USD)",
        currency="USD",
        min_daily_budget=100,
        timezone_name="America/Los_Angeles",
        timezone_id=1,
        amount_spent="1234567",
        balance="4250",
    )
    jpy = _account(
        sb,
        business,
        [user, analyst],
        t0 + DAY,
        name="Demo Tokyo (JPY)",
        currency="JPY",
        min_daily_budget=100,
        timezone_name="Asia/Tokyo",
        timezone_id=77,
        amount_spent="845000",
    )
    _set_user_accounts(sb, user, [usd, jpy], t0)
    _set_user_accounts(sb, analyst, [usd, jpy], t0)
    instagram = _insert(
        sb,
        "instagram",
        {
            "username": "demo.store" + (f".{label}" if label else ""),
            "name": "Demo Store",
            "profile_picture_url": "https://sandbox.invalid/ig/demo.store.jpg",
            "followers_count": 1280,
            "_user_ids": [user],
            "_account_ids": [usd, jpy],
        },
        created=t0,
    )
    page_token = new_token("EAAP")
    page = _insert(
        sb,
        "page",
        {
            "name": f"Demo Page{tag}",
            "category": "Shopping & retail",
            "category_list": [{"id": "200600219953504", "name": "Shopping & retail"}],
            "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"],
            "_instagram_id": instagram,
            "_page_token": page_token,
            "_user_ids": [user],
        },
        created=t0,
    )
    store.add_token(page_token, user, "page", [], now, 0)
    pixel = _insert(
        sb,
        "pixel",
        {"name": "Demo Store Pixel", "code": "<!-- Meta Pixel Code -->", "_last_fired": now - 3600},
        created=t0,
        account_id=usd,
        parent_id=usd,
    )
    for name, targeting, size in (
        ("US Adults 25-54", {"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 54}, 120_000_000),
        (
            "Shoppers - US & CA",
            {
                "geo_locations": {"countries": ["US", "CA"]},
                "age_min": 18,
                "age_max": 65,
                "interests": [{"id": "6003107902433", "name": "Online shopping"}],
            },
            48_000_000,
        ),
    ):
        _insert(
            sb,
            "savedaudience",
            {
                "name": name,
                "targeting": targeting,
                "description": "",
                "approximate_count_lower_bound": size,
                "approximate_count_upper_bound": int(size * 1.18),
            },
            created=t0,
            account_id=usd,
            parent_id=usd,
        )
    campaign_ids = _seed_campaigns(sb, usd, jpy, now)
    _seed_adsets(sb, campaign_ids, pixel, user, now)
    from .ads import seed_demo_ads

    seed_demo_ads(sb, now, accounts={"USD": usd, "JPY": jpy}, page_id=page)
    return {
        "user_id": user,
        "analyst_id": analyst,
        "business_id": business,
        "ad_account_ids": [usd, jpy],
        "page_id": page,
        "instagram_id": instagram,
        "pixel_id": pixel,
    }


def _seed_business_people(sb: Sandbox, business: str, user: str, analyst: str, t0: float) -> None:
    """Business users (one per person) and a third person, "Casey Creative", with no ad account yet."""
    casey = _insert(
        sb,
        "user",
        {"name": "Casey Creative", "first_name": "Casey", "last_name": "Creative", "_account_ids": []},
        created=t0,
    )
    members = [user, analyst, casey]
    biz = _stored(sb, business)
    sb.store.update(business, {**biz, "_user_ids": members}, now=t0)
    people = [
        (user, "Demo User", "demo@example.com", "ADMIN"),
        (analyst, "Alex Analyst", "alex@example.com", "EMPLOYEE"),
        (casey, "Casey Creative", "casey@example.com", "EMPLOYEE"),
    ]
    for person, name, email, role in people:
        first, last = name.split(" ", 1)
        _insert(
            sb,
            "business_user",
            {
                "name": name,
                "first_name": first,
                "last_name": last,
                "email": email,
                "role": role,
                "_user_id": person,
                "_user_ids": members,
            },
            created=t0,
            parent_id=business,
        )


def seed_pages(sb: Sandbox, *, count: int, instagram: bool, user_id: str | None = None) -> tuple[list[str], list[str]]:
    """Add `count` pages (each with an Instagram account if asked) to the demo user; -> (page ids, ig ids)."""
    user = user_id or sb.store.kv_get("demo_user_id")
    now = sb.now()
    accounts = [
        a["id"] for a in sb.store.list("adaccount") if a["id"] in (sb.store.get(user) or Obj()).get("_account_ids", [])
    ]
    pages, igs = [], []
    for _ in range(count):
        n = len(sb.store.list("page")) + 1
        ig_id = None
        if instagram:
            ig_id = _insert(
                sb,
                "instagram",
                {
                    "username": f"demo.page{n}",
                    "name": f"Demo Page {n}",
                    "profile_picture_url": f"https://sandbox.invalid/ig/demo.page{n}.jpg",
                    "followers_count": 100 * n,
                    "_user_ids": [user],
                    "_account_ids": accounts[:1],
                },
                created=now,
            )
            igs.append(ig_id)
        token = new_token("EAAP")
        data = {
            "name": f"Demo Page {n}",
            "category": "Shopping & retail",
            "category_list": [{"id": "200600219953504", "name": "Shopping & retail"}],
            "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"],
            "_page_token": token,
            "_user_ids": [user],
        }
        if ig_id:
            data["_instagram_id"] = ig_id
        pages.append(_insert(sb, "page", data, created=now))
        sb.store.add_token(token, user, "page", [], now, 0)
    return pages, igs


def _set_user_accounts(sb: Sandbox, user_id: str, accounts: list[str], now: float) -> None:
    user = _stored(sb, user_id)
    sb.store.update(user_id, {**user, "_account_ids": accounts}, now=now)


def _seed_campaigns(sb: Sandbox, usd: str, jpy: str, now: float) -> dict[str, tuple[str, str, float]]:
    issues = [
        {
            "level": "CAMPAIGN",
            "error_code": 1815869,
            "error_summary": "Ad account has no payment method",
            "error_message": "Add a payment method to your ad account to keep your ads running.",
            "error_type": "HARD_ERROR",
        }
    ]
    specs: list[
        tuple[str, int, dict[str, Any]]
    ] = [  # (account, age in days, fields); inserted oldest first so ids follow created_time
        (
            usd,
            300,
            dict(name="Old Test Campaign", objective="OUTCOME_AWARENESS", status="DELETED", daily_budget="1000"),
        ),
        (usd, 200, dict(name="Black Friday 2025", objective="OUTCOME_SALES", status="ARCHIVED", daily_budget="20000")),
        (
            usd,
            90,
            dict(
                name="Always-on Prospecting",
                objective="OUTCOME_SALES",
                status="ACTIVE",
                daily_budget="5000",
                bid_strategy="LOWEST_COST_WITHOUT_CAP",
            ),
        ),
        (
            usd,
            60,
            dict(
                name="Spring Launch - Lifetime",
                objective="OUTCOME_TRAFFIC",
                status="PAUSED",
                lifetime_budget="150000",
                stop_time=now + 30 * DAY,
            ),
        ),
        (jpy, 45, dict(name="Tokyo Awareness", objective="OUTCOME_AWARENESS", status="ACTIVE", daily_budget="3000")),
        (
            usd,
            30,
            dict(
                name="Retargeting - Ad Set Budgets",
                objective="OUTCOME_SALES",
                status="ACTIVE",
                is_adset_budget_sharing_enabled=False,
            ),
        ),
        (
            jpy,
            20,
            dict(
                name="Tokyo App Installs",
                objective="OUTCOME_APP_PROMOTION",
                status="PAUSED",
                lifetime_budget="500000",
                stop_time=now + 40 * DAY,
            ),
        ),
        (
            usd,
            10,
            dict(
                name="Webinar Leads",
                objective="OUTCOME_LEADS",
                status="ACTIVE",
                daily_budget="3000",
                issues_info=issues,
            ),
        ),
    ]
    return {
        fields["name"]: (_campaign(sb, account, now - age * DAY, **fields), account, now - age * DAY)
        for account, age, fields in specs
    }


def _targeting(countries: list[str], age_min: int, age_max: int, advantage_audience: int) -> dict:
    return {
        "geo_locations": {"countries": countries},
        "age_min": age_min,
        "age_max": age_max,
        "targeting_automation": {"advantage_audience": advantage_audience},
    }


def _seed_adsets(sb: Sandbox, campaigns: dict[str, tuple[str, str, float]], pixel: str, user: str, now: float) -> None:
    """Ad sets under the live demo campaigns, each valid under docs/adset_rules.md, with a creation activity."""
    purchase = {"pixel_id": pixel, "custom_event_type": "PURCHASE"}
    specs = [  # (campaign name, days after the campaign started, fields)
        (
            "Always-on Prospecting",
            0,
            dict(
                name="Prospecting - Broad US",
                status="ACTIVE",
                optimization_goal="OFFSITE_CONVERSIONS",
                promoted_object=purchase,
                targeting=_targeting(["US"], 18, 65, 1),
            ),
        ),
        (
            "Spring Launch - Lifetime",
            0,
            dict(
                name="Spring Launch - US & CA",
                status="PAUSED",
                optimization_goal="LINK_CLICKS",
                billing_event="LINK_CLICKS",
                targeting=_targeting(["US", "CA"], 21, 55, 0),
            ),
        ),
        (
            "Tokyo Awareness",
            0,
            dict(
                name="Tokyo - Reach",
                status="ACTIVE",
                optimization_goal="REACH",
                targeting=_targeting(["JP"], 18, 65, 1),
            ),
        ),
        (
            "Retargeting - Ad Set Budgets",
            0,
            dict(
                name="Retargeting - Site Visitors",
                status="ACTIVE",
                optimization_goal="OFFSITE_CONVERSIONS",
                promoted_object=purchase,
                daily_budget="2500",
                targeting=_targeting(["US"], 25, 54, 0),
            ),
        ),
        (
            "Retargeting - Ad Set Budgets",
            1,
            dict(
                name="Retargeting - Cart Abandoners",
                status="ACTIVE",
                optimization_goal="LINK_CLICKS",
                daily_budget="1500",
                targeting=_targeting(["US", "CA"], 18, 65, 0),
            ),
        ),
    ]
    actor = (sb.store.get(user) or Obj()).get("name")
    rows = []
    for campaign_name, offset, fields in specs:
        campaign_id, account, started = campaigns[campaign_name]
        created = started + offset * DAY
        adset_id = sb.store.new_id("adset")
        campaign = _stored(sb, campaign_id)
        data = {
            "id": adset_id,
            "account_id": account[4:],
            "campaign_id": campaign_id,
            "billing_event": "IMPRESSIONS",
            "is_dynamic_creative": False,
            "adlabels": [],
            "source_adset_id": "0",
            "start_time": created,
            "pacing_type": ["standard"],
            **fields,
        }
        if campaign.get("stop_time"):
            data["end_time"] = campaign["stop_time"]
        rows.append(("adset", adset_id, data, campaign_id, account, created))
        activity = {
            "event_type": "create_ad_set",
            "_time": created,
            "extra_data": "{}",
            "object_id": adset_id,
            "object_name": data["name"],
            "object_type": "ADSET",
            "actor_id": user,
            "actor_name": actor,
            "translated_event_type": "Ad set created",
        }
        rows.append(("activity", sb.store.new_id("activity"), activity, adset_id, account, created))
    sb.store.insert_many(rows)


def bulk_campaigns(
    sb: Sandbox,
    *,
    count: int,
    account_id: str,
    status: str,
    name_prefix: str,
    daily_budget: int | None,
    objective: str = "OUTCOME_TRAFFIC",
) -> list[str]:
    now = sb.now()
    rows, ids = [], []
    for i in range(count):
        campaign_id = sb.store.new_id("campaign")
        data = {
            "id": campaign_id,
            "account_id": account_id[4:],
            "name": f"{name_prefix} {i + 1:04d}",
            "objective": objective,
            "status": status,
            "buying_type": "AUCTION",
            "special_ad_categories": [],
            "special_ad_category_country": [],
            "source_campaign_id": "0",
            "adlabels": [],
            "start_time": now,
        }
        if daily_budget:
            data["daily_budget"] = str(daily_budget)
        else:
            data["is_adset_budget_sharing_enabled"] = False
        rows.append(("campaign", campaign_id, data, account_id, account_id, now))
        ids.append(campaign_id)
    sb.store.insert_many(rows)
    return ids

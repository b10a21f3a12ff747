"""Identical requests at once (issue 16, proof 2), through `admonster serve` (HTTP /v1/tools/facebook, several requests
in flight on one server) and through two `admonster call` processes sharing one home: the same launch ×2 and ×5 builds
one of each object and every answer names them; one confirmation confirmed twice at once runs once, the other answer
is one clear line; ten undos of one entry run one; two creates with one client tag make one object; two processes
confirming, or undoing, the same thing run it once. Each test checks the sandbox's objects and requests, every answer,
and the audit log."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from test_crash_launch import Home, crash_sandbox  # noqa: F401  (crash_sandbox: a fixture)
from test_fb_ads_launch import launch_args
from testkit import running_server

pytestmark = pytest.mark.usefixtures("clean_environment")
CREATES = ("POST act_x/campaigns", "POST act_x/adsets", "POST act_x/adcreatives", "POST act_x/ads")
TYPES = ("campaign", "adset", "adcreative", "ad")


@dataclass
class Served:
    """`admonster serve` on a free port with its own sandbox, and one workspace's API key."""

    url: str
    runtime: Any
    workspace: Any
    key: str

    async def tool(self, op: str, args: dict | None = None) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.url}/v1/tools/facebook",
                json={"op": op, "args": args or {}},
                headers={"Authorization": f"Bearer {self.key}"},
            ) as answer:
                assert answer.status == 200, await answer.text()
                body = await answer.json()
        assert "Traceback" not in body["text"], body["text"]
        return body

    async def at_once(self, *calls: tuple[str, dict]) -> list[dict]:
        return list(await asyncio.gather(*(self.tool(op, args) for op, args in calls)))

    async def sandbox(self, method: str, path: str, body: dict | None = None) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.request(method, f"{self.runtime.sandbox_url}/__sandbox/{path}", json=body) as answer:
                assert answer.status < 400, await answer.text()
                return await answer.json()

    async def named(self, type_: str, name: str) -> list[dict]:
        """Live objects of a type whose name starts with ``name``."""
        return [
            o
            for o in (await self.sandbox("GET", f"objects?type={type_}"))["data"]
            if str(o.get("name", "")).startswith(name) and o.get("status") != "DELETED"
        ]

    async def posts(self) -> dict[str, int]:
        return {r: n for r, n in (await self.sandbox("GET", "stats"))["by_route"].items() if not r.startswith("GET")}

    async def audit(self, op: str) -> list[Any]:
        return await self.runtime.store.list_audit(self.workspace.id, limit=500, op=op)


@pytest.fixture
async def served(tmp_path):
    async with running_server(tmp_path, launch_wait_seconds=60) as (url, runtime):
        workspace = await runtime.store.ensure_workspace("races")
        yield Served(url, runtime, workspace, await runtime.store.create_api_key(workspace.id))


async def _usd_account(served: Served) -> str:
    accounts = await served.tool("list_ad_accounts")
    return next(a["id"] for a in accounts["data"]["accounts"] if a["currency"] == "USD")


async def _image_hash(served: Served, tmp_path: Path, account: str) -> str:
    """An image in the account's library: uploaded by the operator on the server's machine (a remote caller names
    images by hash or URL, never by a path on the server)."""
    facebook = await served.runtime.facebook_for(served.workspace)
    path = launch_args(tmp_path, "Library")["creatives"][0]["image"]
    uploaded = await facebook.call("upload_image", {"source": path, "ad_account_id": account}, interface="cli")
    assert uploaded.ok, uploaded.text
    return uploaded.data["hash"]


async def _campaign_with_budget(served: Served, account: str) -> dict:
    listed = await served.tool("list_campaigns", {"ad_account_id": account, "status": ["ACTIVE"], "limit": 50})
    return next(c for c in listed["data"]["campaigns"] if c.get("daily_budget"))


async def _budget(served: Served, campaign_id: str) -> int:
    [campaign] = [o for o in (await served.sandbox("GET", "objects?type=campaign"))["data"] if o["id"] == campaign_id]
    return int(campaign["daily_budget"])


# -- the same launch at once, through serve ------------------------------------------------------------------------


@pytest.mark.parametrize("copies", [2, 5])
async def test_identical_launches_through_serve_build_one_of_each(served, tmp_path, copies):
    account = await _usd_account(served)
    name = f"Served together {copies}"
    args = launch_args(tmp_path, name, ad_account_id=account)
    args["creatives"][0]["image"] = await _image_hash(served, tmp_path, account)
    await served.sandbox("POST", "stats/reset")
    # The creative is slow, so every copy arrives while the first one is mid-launch.
    await served.sandbox(
        "POST", "faults", {"kind": "delay", "method": "POST", "path": r"^act_\d+/adcreatives$", "delay_ms": 1500}
    )
    answers = await served.at_once(*[("launch_campaign", args)] * copies)
    assert all(a["ok"] for a in answers), [a["text"] for a in answers]
    ids = {
        (
            a["data"]["launch_id"],
            a["data"]["campaign_id"],
            a["data"]["adset_id"],
            tuple(a["data"]["creative_ids"]),
            tuple(a["data"]["ad_ids"]),
        )
        for a in answers
    }
    assert len(ids) == 1, ids
    launch_id, campaign_id, adset_id, creative_ids, ad_ids = ids.pop()
    assert all(f"launch #{launch_id}" in a["text"] and campaign_id in a["text"] for a in answers)
    [ran] = [a for a in answers if a["text"].startswith(f"Launched campaign {name} ({campaign_id})")]
    others = [a for a in answers if a is not ran]  # they waited for it, then report it: they made nothing themselves
    assert all(
        a["data"]["already_launched"]
        and a["text"].startswith(f"Already launched as launch #{launch_id}; nothing was created twice")
        for a in others
    ), [a["text"] for a in others]
    assert {t: [o["id"] for o in await served.named(t, name)] for t in TYPES} == {
        "campaign": [campaign_id],
        "adset": [adset_id],
        "adcreative": list(creative_ids),
        "ad": list(ad_ids),
    }
    posts = await served.posts()
    assert [posts.get(route, 0) for route in CREATES] == [1, 1, 1, 1], posts  # nothing was even sent twice
    entries = await served.audit("launch_campaign")
    assert len(entries) == copies and {e.outcome for e in entries} == {"ok"}
    assert all({campaign_id, adset_id, *creative_ids, *ad_ids} <= set(e.object_ids) for e in entries)


# -- one confirmation, confirmed twice at once ---------------------------------------------------------------------


async def test_one_confirmation_confirmed_twice_at_once_runs_once(served):
    account = await _usd_account(served)
    campaign = await _campaign_with_budget(served, account)
    before = int(campaign["daily_budget"])
    held = await served.tool("update_campaign", {"campaign_id": campaign["id"], "daily_budget": before * 3})
    assert not held["ok"] and held["data"]["error"] == "confirmation_required", held["text"]
    confirmation = held["data"]["confirmation_id"]
    await served.sandbox("POST", "stats/reset")
    await served.sandbox("POST", "faults", {"kind": "delay", "method": "POST", "path": r"^\d+$", "delay_ms": 500})
    answers = await served.at_once(("confirm", {"confirm": confirmation}), ("confirm", {"confirm": confirmation}))
    [ran] = [a for a in answers if a["ok"]]
    [refused] = [a for a in answers if not a["ok"]]
    assert ran["text"].startswith("Updated campaign") and f"audit #{ran['data']['audit_id']}" in ran["text"], ran[
        "text"
    ]
    assert refused["text"].startswith(f"ERROR validation: Confirmation {confirmation} was already used or cancelled")
    assert "Nothing was run again" in refused["text"] and len(refused["text"].splitlines()) == 1, refused["text"]
    assert await _budget(served, campaign["id"]) == before * 3
    assert (await served.posts()) == {"POST {id}": 1}
    [entry] = await served.audit("update_campaign")
    assert entry.outcome == "ok" and entry.object_ids == [campaign["id"]]


# -- ten undos of one entry at once --------------------------------------------------------------------------------


async def test_ten_undos_of_one_entry_through_serve_run_once(served):
    account = await _usd_account(served)
    campaign = await _campaign_with_budget(served, account)
    before = int(campaign["daily_budget"])
    lowered = await served.tool("update_campaign", {"campaign_id": campaign["id"], "daily_budget": before - 100})
    assert lowered["ok"], lowered["text"]
    audit_id = lowered["data"]["audit_id"]
    await served.sandbox("POST", "stats/reset")
    await served.sandbox(
        "POST", "faults", {"kind": "delay", "method": "POST", "path": "^$", "delay_ms": 500}
    )  # the undo's batch
    answers = await served.at_once(*[("undo", {"audit_id": audit_id})] * 10)
    ran = [a for a in answers if a["ok"] and a["data"].get("undone") == audit_id]
    assert len(ran) == 1, [a["text"] for a in answers]
    assert ran[0]["text"].startswith(f"Undid #{audit_id} (update_campaign):")
    for other in answers:
        if other is not ran[0]:
            assert (
                other["text"].startswith(
                    f"ERROR validation: Audit entry #{audit_id} is already undone, or being undone, by #"
                )
                or other["text"].startswith(f"ERROR validation: Audit entry #{audit_id} was already undone by #")
                or other["text"].startswith(f"Nothing to undo for #{audit_id}")
            ), other["text"]
            assert len(other["text"].splitlines()) <= 2, other["text"]  # the line, and the audit number
    assert await _budget(served, campaign["id"]) == before
    assert sum((await served.posts()).values()) == 1
    undos = [e for e in await served.audit("undo") if e.outcome == "ok" and e.undo_of == audit_id]
    assert len(undos) == 1
    assert (await served.runtime.store.get_audit(served.workspace.id, audit_id)).undone_by == undos[0].id


# -- two creates with one client tag at once -----------------------------------------------------------------------


async def test_two_creates_with_one_client_tag_at_once_make_one_object(served):
    account = await _usd_account(served)
    args = {
        "name": "Tagged twice",
        "objective": "OUTCOME_TRAFFIC",
        "ad_account_id": account,
        "client_tag": "am-race-0000000001",
    }
    await served.sandbox("POST", "stats/reset")
    await served.sandbox(
        "POST",
        "faults",
        {"kind": "delay", "method": "POST", "path": r"^act_\d+/campaigns$", "delay_ms": 800, "count": 2},
    )
    answers = await served.at_once(("create_campaign", args), ("create_campaign", args))
    assert all(a["ok"] for a in answers), [a["text"] for a in answers]
    made = await served.named("campaign", "Tagged twice")
    assert len(made) == 1 and {a["data"]["id"] for a in answers} == {made[0]["id"]}
    assert sum(1 for a in answers if a["data"]["recovered"]) == 1
    assert (await served.posts()).get("POST act_x/campaigns") == 1
    entries = await served.audit("create_campaign")
    assert len(entries) == 2 and all(e.outcome == "ok" and e.object_ids == [made[0]["id"]] for e in entries)


# -- two processes sharing one home --------------------------------------------------------------------------------


def _two_at_once(home: Home, op: str, args: dict) -> list[tuple[int, dict]]:
    processes = [home.start(op, args) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all("Traceback" not in err for _, err in outputs), outputs
    return [(p.returncode, json.loads(out)) for p, (out, _) in zip(processes, outputs)]


def _process_home(sandbox, tmp_path: Path) -> tuple[Home, dict]:
    home = Home(sandbox, tmp_path / "home")
    account = next(
        a["id"] for a in sandbox.control("GET", "objects?type=adaccount")["data"] if a.get("currency") == "USD"
    )
    code, listed, err = home.call("list_campaigns", {"ad_account_id": account, "status": ["ACTIVE"], "limit": 50})
    assert code == 0, (listed, err)
    return home, next(c for c in listed["campaigns"] if c.get("daily_budget"))


def _posts_sent(sandbox) -> int:
    return sum(n for route, n in sandbox.control("GET", "stats")["by_route"].items() if not route.startswith("GET"))


def _sandbox_budget(sandbox, campaign_id: str) -> int:
    [campaign] = [o for o in sandbox.control("GET", "objects?type=campaign")["data"] if o["id"] == campaign_id]
    return int(campaign["daily_budget"])


def test_two_processes_confirming_one_id_run_it_once(crash_sandbox, tmp_path):
    home, campaign = _process_home(crash_sandbox, tmp_path)
    before = int(campaign["daily_budget"])
    code, held, _ = home.call("update_campaign", {"campaign_id": campaign["id"], "daily_budget": before * 3})
    assert code == 1 and held["error"] == "confirmation_required", held
    crash_sandbox.control("POST", "faults", {"kind": "delay", "method": "POST", "path": r"^\d+$", "delay_ms": 1500})
    sent = _posts_sent(crash_sandbox)
    answers = _two_at_once(home, "confirm", {"confirm": held["confirmation_id"]})
    assert _posts_sent(crash_sandbox) - sent == 1
    assert sorted(code for code, _ in answers) == [0, 1], answers
    [refused] = [data for code, data in answers if code == 1]
    assert refused["error"] == "validation" and "already used or cancelled" in refused["message"], refused
    assert _sandbox_budget(crash_sandbox, campaign["id"]) == before * 3
    crash_sandbox.control("DELETE", "faults")
    entries = [e for e in home.audit() if e["op"] == "update_campaign"]
    assert [e["outcome"] for e in entries] == ["ok"]


def test_two_processes_undoing_one_entry_run_it_once(crash_sandbox, tmp_path):
    home, campaign = _process_home(crash_sandbox, tmp_path)
    before = int(campaign["daily_budget"])
    code, lowered, err = home.call("update_campaign", {"campaign_id": campaign["id"], "daily_budget": before - 100})
    assert code == 0, (lowered, err)
    crash_sandbox.control("POST", "faults", {"kind": "delay", "method": "POST", "path": "^$", "delay_ms": 1500})
    sent = _posts_sent(crash_sandbox)
    answers = _two_at_once(home, "undo", {"audit_id": lowered["audit_id"]})
    assert _posts_sent(crash_sandbox) - sent == 1
    crash_sandbox.control("DELETE", "faults")
    ran = [data for code, data in answers if code == 0 and data.get("undone") == lowered["audit_id"]]
    assert len(ran) == 1, answers
    [other] = [data for _, data in answers if data is not ran[0]]
    assert other.get("undone") is None and (
        "already undone" in str(other.get("message")) or other.get("changes") == []
    ), other
    assert _sandbox_budget(crash_sandbox, campaign["id"]) == before
    undos = [e for e in home.audit() if e["op"] == "undo" and e["outcome"] == "ok"]
    assert len(undos) == 1

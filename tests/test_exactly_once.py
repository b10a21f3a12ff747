"""Every write exactly once, and never a false word about it (docs/exactly-once.md), over the real sandbox and its
faults: a write is audited pending before it is sent and settled after; a lost answer is outcome unknown, never an
error, and never repeated blindly; a create that lands after the client gave up is found, not made twice; reconcile
settles unknown and pending entries from what Facebook shows; undo works from Facebook's values and runs once; a
confirmation runs only the change it previewed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from fb_utils import GraphClient
from fi_facebook import Facebook
from testkit import sandbox_clock

pytestmark = pytest.mark.usefixtures("clean_environment")
OBJECT = r"^\d+$"
CAMPAIGNS = r"^act_\d+/campaigns$"


@pytest.fixture
async def fast(store, sandbox, demo_accounts):
    """A session whose Graph client gives up on an answer after 0.5 s and looks for a lost create for 3 s."""
    token = await sandbox.token(expires_in=0)
    graph = GraphClient(
        token["access_token"], app_secret=token["app_secret"], base_url=sandbox.url, timeout=0.5, settle_window=3.0
    )
    workspace = await store.ensure_workspace("fast")
    await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
    try:
        yield Facebook(store, graph, workspace, clock=sandbox_clock(sandbox))
    finally:
        await graph.close()


async def campaign_with_budget(fb) -> dict:
    listed = await fb.call("list_campaigns", {"status": ["ACTIVE"], "limit": 50})
    return next(c for c in listed.data["campaigns"] if c.get("daily_budget"))


async def budget_of(fb, campaign_id: str) -> int:
    return int((await fb.graph.get(campaign_id, {"fields": "daily_budget"}))["daily_budget"])


async def named(sandbox, name: str) -> list[dict]:
    objects = (await sandbox.control("GET", "objects?type=campaign"))["data"]
    return [o for o in objects if o.get("name") == name and o.get("status") != "DELETED"]


async def entry(fb, audit_id: int):
    return await fb.store.get_audit(fb.workspace.id, audit_id)


# -- pending before, settled after --------------------------------------------------------------------------------


async def test_a_write_is_audited_pending_before_it_is_sent_and_settled_after(fast, sandbox):
    campaign = await campaign_with_budget(fast)
    await sandbox.fault(kind="delay", method="POST", path=OBJECT, delay_ms=300)
    call = asyncio.create_task(
        fast.call(
            "update_campaign", {"campaign_id": campaign["id"], "daily_budget": int(campaign["daily_budget"]) - 100}
        )
    )
    for _ in range(100):
        unsettled = await fast.store.unsettled_audit(fast.workspace.id)
        if unsettled:
            break
        await asyncio.sleep(0.01)
    assert [(e.op, e.outcome, e.settled_at) for e in unsettled] == [("update_campaign", "pending", None)]
    assert unsettled[0].changes[0]["after"] == int(campaign["daily_budget"]) - 100
    done = await call
    assert done.ok, done.text
    settled = await entry(fast, done.data["audit_id"])
    assert settled.outcome == "ok" and settled.settled_at and settled.id == unsettled[0].id


async def test_a_cancelled_write_stays_pending_and_reconcile_settles_it(fast, sandbox):
    """Ctrl-C, SIGTERM past the grace period or a crash while a create is on the wire: the entry stays pending, with
    the client tag it sent; reconcile finds the campaign Facebook made and records it."""
    await sandbox.fault(kind="delay", method="POST", path=CAMPAIGNS, delay_ms=400)
    call = asyncio.create_task(fast.call("create_campaign", {"name": "Cut short", "objective": "OUTCOME_TRAFFIC"}))
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    [pending] = await fast.store.unsettled_audit(fast.workspace.id)
    assert pending.outcome == "pending" and pending.tags and pending.tags[0]["name"] == "Cut short"
    await asyncio.sleep(0.5)  # the create lands meanwhile
    made = await named(sandbox, "Cut short")
    reconciled = await fast.call("reconcile", {})
    assert reconciled.ok and f"it happened: Facebook shows {made[0]['id']}" in reconciled.text, reconciled.text
    settled = await entry(fast, pending.id)
    assert settled.outcome == "ok" and settled.object_ids == [made[0]["id"]]


# -- lost answers --------------------------------------------------------------------------------------------------


async def test_a_budget_raise_whose_answers_are_lost_is_unknown_then_reconciled_then_undone(fast, sandbox):
    campaign = await campaign_with_budget(fast)
    before = int(campaign["daily_budget"])
    await sandbox.fault(kind="drop", method="POST", path=OBJECT, when="after", count=4)  # applied, every answer lost
    raised = await fast.call("update_campaign", {"campaign_id": campaign["id"], "daily_budget": before + 100})
    assert not raised.ok and raised.text.startswith("ERROR outcome_unknown:"), raised.text
    assert (
        "it was not sent again" in raised.text
        and "reconcile" in raised.text
        and "failed" not in raised.text.split("Fix:")[0]
    )
    assert raised.data["outcome"] == "unknown"
    audited = await entry(fast, raised.data["audit_id"])
    assert audited.outcome == "unknown" and audited.settled_at is None
    assert await budget_of(fast, campaign["id"]) == before + 100  # it did happen
    reconciled = await fast.call("reconcile", {"audit_id": audited.id})
    assert "it happened: Facebook shows the new values" in reconciled.text
    assert (await entry(fast, audited.id)).outcome == "ok"
    again = await fast.call("reconcile", {"audit_id": audited.id})  # settled: the entry, in the op's one shape
    assert again.ok and "already settled" in again.text and again.data["settled"] == again.data["open"] == []
    assert again.data["entry"]["id"] == audited.id and again.data["entry"]["outcome"] == "ok"
    undone = await fast.call("undo", {"audit_id": audited.id})
    assert undone.ok, undone.text
    assert await budget_of(fast, campaign["id"]) == before


async def test_a_write_that_never_arrived_is_unknown_until_facebook_shows_it_did_not_happen(fast, sandbox):
    campaign = await campaign_with_budget(fast)
    before = int(campaign["daily_budget"])
    await sandbox.fault(kind="drop", method="POST", path=OBJECT, when="before", count=4)
    lowered = await fast.call("update_campaign", {"campaign_id": campaign["id"], "daily_budget": before - 100})
    assert not lowered.ok and lowered.data["error"] == "outcome_unknown"
    undo = await fast.call("undo", {"audit_id": lowered.data["audit_id"]})  # undo looks at Facebook first
    assert not undo.ok and "has no status or budget change to undo" in undo.text
    settled = await entry(fast, lowered.data["audit_id"])
    assert settled.outcome == "error" and "it did not happen" in settled.error
    assert await budget_of(fast, campaign["id"]) == before


async def test_a_refused_write_is_an_error_because_facebook_said_so(fast, sandbox):
    campaign = await campaign_with_budget(fast)
    await sandbox.fault(kind="error", method="POST", path=OBJECT, message="(#100) The campaign is locked")
    refused = await fast.call(
        "update_campaign", {"campaign_id": campaign["id"], "daily_budget": int(campaign["daily_budget"]) - 100}
    )
    assert not refused.ok and refused.data["error"] == "facebook"
    assert (await entry(fast, refused.data["audit_id"])).outcome == "error"


async def test_a_create_that_lands_after_the_client_gave_up_is_found_not_made_twice(fast, sandbox):
    """The sandbox finishes the create 1.2 s after it arrived; the client gave up after 0.5 s: the looks by tag over
    the settle window find it. One campaign, the answer names it, the audit says ok."""
    await sandbox.fault(kind="timeout", method="POST", path=CAMPAIGNS, delay_ms=1200)
    created = await fast.call("create_campaign", {"name": "Late", "objective": "OUTCOME_TRAFFIC"})
    made = await named(sandbox, "Late")
    assert created.ok, created.text
    assert len(made) == 1 and created.data["id"] == made[0]["id"]
    assert (await entry(fast, created.data["audit_id"])).outcome == "ok"


async def test_a_create_whose_lookups_fail_is_unknown_not_repeated_and_reconciled_later(fast, sandbox):
    await sandbox.fault(kind="drop", method="POST", path=CAMPAIGNS, when="after")
    await sandbox.fault(kind="http_500", method="GET", path=CAMPAIGNS, count=20)
    created = await fast.call("create_campaign", {"name": "Unknown fate", "objective": "OUTCOME_TRAFFIC"})
    assert not created.ok and created.data["error"] == "outcome_unknown" and "not sent again" in created.text
    assert len(await named(sandbox, "Unknown fate")) == 1
    await sandbox.control("DELETE", "faults")
    reconciled = await fast.call("reconcile", {})
    assert "Reconciled 1 of 1" in reconciled.text and (await entry(fast, created.data["audit_id"])).outcome == "ok"
    again = await fast.call("reconcile", {})
    assert again.text == "Every write in the audit log is settled: nothing to reconcile."


# -- undo and confirmations ------------------------------------------------------------------------------------------


async def test_ten_undos_of_one_entry_at_once_run_once(fast, sandbox):
    campaign = await campaign_with_budget(fast)
    before = int(campaign["daily_budget"])
    lowered = await fast.call("update_campaign", {"campaign_id": campaign["id"], "daily_budget": before - 100})
    await sandbox.control("POST", "stats/reset")
    answers = await asyncio.gather(*(fast.call("undo", {"audit_id": lowered.data["audit_id"]}) for _ in range(10)))
    ran = [a for a in answers if a.ok]
    assert len(ran) == 1 and await budget_of(fast, campaign["id"]) == before
    assert all(
        "already undone" in a.text or "Nothing to undo" in a.text for a in answers if not a.ok or a is not ran[0]
    )
    sent = sum(n for route, n in (await sandbox.stats())["by_route"].items() if route.startswith("POST"))
    assert sent == 1
    undos = [
        e for e in await fast.store.list_audit(fast.workspace.id, limit=50) if e.op == "undo" and e.outcome == "ok"
    ]
    assert len(undos) == 1 and (await entry(fast, lowered.data["audit_id"])).undone_by == undos[0].id


async def test_a_confirmation_runs_only_the_change_it_previewed(fast):
    """/budget C 8000 is held ($50 → $80); /budget C 2000 runs (a decrease); confirming the first id runs nothing and
    shows the change as it would be now ($20 → $80, +300 %) under a new id."""
    campaign = await campaign_with_budget(fast)
    start = int(campaign["daily_budget"])
    raise_to = start * 16 // 10
    held = await fast.call("update_campaign", {"campaign_id": campaign["id"], "daily_budget": raise_to})
    assert held.data["error"] == "confirmation_required"
    lowered = await fast.call("update_campaign", {"campaign_id": campaign["id"], "daily_budget": start * 4 // 10})
    assert lowered.ok, lowered.text
    stale = await fast.call("confirm", {"confirm": held.data["confirmation_id"]})
    assert (
        not stale.ok
        and stale.data["error"] == "confirmation_required"
        and stale.data["confirmation_id"] != held.data["confirmation_id"]
    )
    assert "changed since the preview, so nothing was run" in stale.text
    assert await budget_of(fast, campaign["id"]) == start * 4 // 10
    used = await fast.call("confirm", {"confirm": held.data["confirmation_id"]})
    assert not used.ok and "already used or cancelled" in used.text
    fresh = await fast.call("confirm", {"confirm": stale.data["confirmation_id"]})
    assert fresh.ok, fresh.text
    assert await budget_of(fast, campaign["id"]) == raise_to


async def test_a_confirmation_can_be_rejected_and_unknown_ids_are_one_line(fast):
    campaign = await campaign_with_budget(fast)
    held = await fast.call(
        "update_campaign", {"campaign_id": campaign["id"], "daily_budget": int(campaign["daily_budget"]) * 3}
    )
    rejected = await fast.call("reject", {"confirm": held.data["confirmation_id"]})
    assert rejected.ok and "nothing was sent, and it cannot run any more" in rejected.text
    after = await fast.call("confirm", {"confirm": held.data["confirmation_id"]})
    assert not after.ok and "already used or cancelled" in after.text
    unknown = await fast.call("confirm", {"confirm": "c-000000"})
    assert not unknown.ok and "unknown in this workspace" in unknown.text and len(unknown.text.splitlines()) == 1
    assert await budget_of(fast, campaign["id"]) == int(campaign["daily_budget"])


# -- a video upload cut short ---------------------------------------------------------------------------------------

VIDEOS = r"^act_\d+/advideos$"


async def _cut_short(fb, sandbox, tmp_path, *, skip: int) -> object:
    """upload_video cancelled (Ctrl-C) while its request number skip+1 (start, transfer chunks, finish) is on the wire."""
    from test_fb_ads_launch import video_file

    await sandbox.fault(kind="delay", method="POST", path=VIDEOS, skip=skip, delay_ms=400)
    call = asyncio.create_task(
        fb.call("upload_video", {"path": video_file(tmp_path), "title": "Cut short", "wait": False})
    )
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    [pending] = await fb.store.unsettled_audit(fb.workspace.id)
    return pending


async def test_a_video_upload_cut_between_its_phases_names_its_video_and_reconcile_says_it_never_finished(
    fast, sandbox, tmp_path
):
    pending = await _cut_short(fast, sandbox, tmp_path, skip=1)  # cut while its first chunk is on the wire
    [video_id] = pending.object_ids
    shown = await fast.graph.get(video_id, {"fields": "status"})  # the object Facebook made at the start phase
    assert pending.op == "upload_video" and shown["status"]["uploading_phase"]["status"] == "in_progress", shown
    assert [(t["kind"], t["tag"]) for t in pending.tags] == [("video_upload", video_id)]
    too_soon = await fast.call("reconcile", {})
    assert "still unknown: too soon" in too_soon.text, too_soon.text
    assert (await entry(fast, pending.id)).object_ids == [video_id]
    fast.store.clock = lambda: datetime.now(UTC) + timedelta(seconds=fast.graph.settle_window)  # a settle window later
    reconciled = await fast.call("reconcile", {})
    assert f"it did not happen: the upload of video {video_id} never finished" in reconciled.text, reconciled.text
    assert (await entry(fast, pending.id)).outcome == "error"


async def test_a_video_upload_cut_while_its_finish_lands_is_reconciled_as_done(fast, sandbox, tmp_path):
    pending = await _cut_short(fast, sandbox, tmp_path, skip=2)  # the file is one chunk: start, transfer, finish
    await asyncio.sleep(0.5)  # the finish lands meanwhile
    reconciled = await fast.call("reconcile", {})
    assert f"it happened: the upload of video {pending.object_ids[0]} finished" in reconciled.text, reconciled.text
    settled = await entry(fast, pending.id)
    assert settled.outcome == "ok" and settled.object_ids == pending.object_ids

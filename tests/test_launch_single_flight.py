"""Launches and experiments are single-flight, over the real sandbox: the same launch asked at once (in one process, or
in two processes sharing one home) builds one of each object and every answer names them; a run killed after a
create but before its journal entry is resumed without a duplicate (each step looks for its tag first); a lease left
by a killed process expires and the next call takes over; a rollback deletes dependents first, orphans included, and
counts what is already gone as done; the same experiment plan launched twice at once is built once."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fb_creative as launch
from fb_utils import SingleFlightPolicy, ValidationError
from fi_facebook import Facebook
from test_admonster_bot import ROOT, _cli, standalone  # noqa: F401  (standalone: a fixture)
from test_fb_ads_launch import KINDS, _live, _objects, fast_video, image_file, launch_args, video_file  # noqa: F401
from test_fb_experiments import world  # noqa: F401  (a fixture)

CREATE_ROUTES = (
    "POST act_x/campaigns",
    "POST act_x/adsets",
    "POST act_x/adimages",
    "POST act_x/adcreatives",
    "POST act_x/ads",
)


async def _counts(sandbox, name: str) -> dict[str, int]:
    return {type_: len(await _live(sandbox, type_, name)) for type_, _ in KINDS}


def _ids(data: dict) -> tuple:
    return data["launch_id"], data["campaign_id"], data["adset_id"], tuple(data["creative_ids"]), tuple(data["ad_ids"])


async def _forget(facebook, launch_id: int, *steps: str) -> None:
    """What the journal holds after a process was killed between these steps' creates and their entries."""
    for step in steps:
        await facebook.store.record_launch_step(
            facebook.workspace.id, launch_id, step, status="failed", error={"message": "the process was killed"}
        )


def _session(facebook, **policy) -> Facebook:
    """Another request's session on the same store and sandbox, with its own lease timings."""
    return Facebook(
        facebook.store,
        facebook.graph,
        facebook.workspace,
        clock=facebook.clock,
        single_flight=SingleFlightPolicy(**policy),
    )


# -- the same launch at the same time --------------------------------------------------------------------------


@pytest.mark.parametrize("copies", [2, 5])
async def test_identical_launches_at_once_build_one_of_each_and_name_the_same_ids(facebook, sandbox, tmp_path, copies):
    name = f"Together {copies}"
    args = launch_args(tmp_path, name)
    await sandbox.control("POST", "stats/reset")
    answers = await asyncio.gather(*[facebook.call("launch_campaign", args) for _ in range(copies)])
    assert all(a.ok for a in answers), [a.text for a in answers]
    first = answers[0].data
    assert {_ids(a.data) for a in answers} == {_ids(first)}
    assert all(f"launch #{first['launch_id']}" in a.text and first["campaign_id"] in a.text for a in answers)
    launched = [a for a in answers if a.text.startswith(f"Launched campaign {name} ({first['campaign_id']})")]
    assert len(launched) == 1 and all(a.text.startswith("Already launched as") for a in answers if a not in launched)
    assert await _counts(sandbox, name) == {"campaign": 1, "adset": 1, "adcreative": 1, "ad": 1}
    routes = (await sandbox.stats())["by_route"]
    assert [routes.get(route, 0) for route in CREATE_ROUTES] == [1, 1, 1, 1, 1]  # nothing was even sent twice
    assert len(await facebook.store.list_launches(facebook.workspace.id)) == 1


async def test_a_launch_running_elsewhere_is_waited_for_then_reported_busy_in_one_line(facebook, sandbox, tmp_path):
    failed = await facebook.call("launch_campaign", launch_args(tmp_path, "Held"))
    assert failed.ok, failed.text
    record = await facebook.store.get_launch(facebook.workspace.id, failed.data["launch_id"])
    await _forget(facebook, record.id, "ad:0")
    elsewhere = await facebook.store.claim_lease(
        facebook.workspace.id, launch.launch_lock(record.key), "process 1 on elsewhere", 60
    )
    await sandbox.control("POST", "stats/reset")
    started = time.monotonic()
    busy = await _session(facebook, wait_seconds=0.5).call("resume_launch", {"launch_id": record.id})
    assert 0.5 <= time.monotonic() - started < 10
    assert not busy.ok and busy.data["error"] == "busy" and busy.data["lease_owner"] == "process 1 on elsewhere"
    assert busy.text.startswith(
        f"ERROR busy: The launch #{record.id} is still running in another request (process 1 on elsewhere"
    )
    assert (
        "Fix: Ask again in a minute" in busy.text and len(busy.text.splitlines()) <= 2
    )  # the line, and the audit number
    assert not [r for r in (await sandbox.stats())["by_route"] if not r.startswith("GET")]
    assert elsewhere.owner == "process 1 on elsewhere"


async def test_a_lease_left_by_a_killed_process_expires_and_the_next_call_takes_over(facebook, sandbox, tmp_path):
    """A process died mid-launch after making the ad (its lease stays behind, its journal never heard of the ad)."""
    args = launch_args(tmp_path, "Taken over")
    done = await facebook.call("launch_campaign", args)
    assert done.ok, done.text
    record = await facebook.store.get_launch(facebook.workspace.id, done.data["launch_id"])
    await _forget(facebook, record.id, "ad:0")
    await facebook.store.set_launch_status(facebook.workspace.id, record.id, "running")
    await facebook.store.claim_lease(facebook.workspace.id, launch.launch_lock(record.key), "process 2 on killed", 1.5)
    started = time.monotonic()
    again = await _session(facebook, wait_seconds=30).call("launch_campaign", args)
    assert again.ok, again.text
    assert 1.0 <= time.monotonic() - started < 25  # it waited for the dead lease to expire, then continued
    assert again.text.startswith(f"Launched campaign Taken over ({done.data['campaign_id']})")
    assert _ids(again.data) == _ids(done.data) and "recovered a lost answer" in again.text
    assert await _counts(sandbox, "Taken over") == {"campaign": 1, "adset": 1, "adcreative": 1, "ad": 1}


async def test_a_running_launch_renews_its_lease_so_a_slow_step_is_not_taken_over(facebook, sandbox, tmp_path):
    """The lease lasts 1 s and the ad's create takes 2.5 s: renewed every third of a second, it stays with the first."""
    args = launch_args(tmp_path, "Slow")
    await sandbox.fault(kind="delay", method="POST", path=r"^act_\d+/ads$", delay_ms=2500)
    sessions = [_session(facebook, lease_seconds=1, wait_seconds=30) for _ in range(2)]
    first = asyncio.create_task(sessions[0].call("launch_campaign", args))
    while (
        not (launches := await facebook.store.list_launches(facebook.workspace.id))
        or "creative:0" not in launches[0].steps
    ):
        await asyncio.sleep(0.05)
    second = await sessions[1].call("launch_campaign", args)
    assert (await first).ok and second.ok, second.text
    assert _ids(second.data) == _ids((await first).data)
    assert await _counts(sandbox, "Slow") == {"campaign": 1, "adset": 1, "adcreative": 1, "ad": 1}


# -- a run killed between a create and its journal entry -------------------------------------------------------


@pytest.mark.parametrize("forgotten", [("creative:0", "ad:0"), ("ad:0",)])
async def test_resume_after_a_create_the_journal_never_recorded_makes_no_duplicate(
    facebook, sandbox, tmp_path, forgotten
):
    name = f"Unrecorded {forgotten[0]}"
    done = await facebook.call("launch_campaign", launch_args(tmp_path, name))
    assert done.ok, done.text
    await _forget(facebook, done.data["launch_id"], *forgotten)
    resumed = await facebook.call("resume_launch", {"launch_id": done.data["launch_id"]})
    assert resumed.ok, resumed.text
    assert _ids(resumed.data) == _ids(done.data)
    assert resumed.text.count("recovered a lost answer") == len(forgotten)
    assert await _counts(sandbox, name) == {"campaign": 1, "adset": 1, "adcreative": 1, "ad": 1}


@pytest.mark.parametrize(
    "path, type_, step", [(r"^act_\d+/adcreatives$", "adcreative", "creative:0"), (r"^act_\d+/ads$", "ad", "ad:0")]
)
async def test_a_lost_answer_nobody_could_check_is_found_on_resume(facebook, sandbox, tmp_path, path, type_, step):
    """The create happened, its answer was lost and the check failed too: the step stops, unrecorded; resume finds it."""
    name = f"Unchecked {type_}"
    await sandbox.fault(kind="drop", method="POST", path=path, when="after")
    await sandbox.fault(kind="http_500", method="GET", path=path, count=20)
    stopped = await facebook.call("launch_campaign", launch_args(tmp_path, name))
    assert not stopped.ok and stopped.data["failed_step"] == step, stopped.text
    assert len(await _live(sandbox, type_, name)) == 1  # made, though the journal does not say so
    await sandbox.control("DELETE", "faults")
    resumed = await facebook.call("resume_launch", {"launch_id": stopped.data["launch_id"]})
    assert resumed.ok, resumed.text
    assert await _counts(sandbox, name) == {"campaign": 1, "adset": 1, "adcreative": 1, "ad": 1}


async def test_a_finished_video_upload_is_found_not_sent_again(facebook, sandbox, tmp_path, fast_video):
    args = launch_args(tmp_path, "Reel")
    args["creatives"] = [
        {
            "kind": "video",
            "name": "Reel video",
            "video": video_file(tmp_path, "reel.mp4"),
            "thumbnail": image_file(tmp_path, "reel.png", 0x22),
            "message": "Watch",
            "link": "https://example.com/reel",
        }
    ]
    done = await facebook.call("launch_campaign", args)
    assert done.ok, done.text
    await _forget(facebook, done.data["launch_id"], "video:0", "creative:0", "ad:0")
    await sandbox.control("POST", "stats/reset")
    resumed = await facebook.call("resume_launch", {"launch_id": done.data["launch_id"]})
    assert resumed.ok, resumed.text
    assert "found already uploaded" in resumed.text and "POST act_x/advideos" not in (await sandbox.stats())["by_route"]
    assert resumed.data["uploads"]["video:0"] == done.data["uploads"]["video:0"]
    assert len(await _objects(sandbox, "video")) == 1 and _ids(resumed.data) == _ids(done.data)


# -- rollback ---------------------------------------------------------------------------------------------------


async def test_rollback_deletes_dependents_first_with_orphans_and_counts_the_gone_as_done(facebook, sandbox, tmp_path):
    args = launch_args(tmp_path, "Undo")
    args["creatives"].append(
        {**args["creatives"][0], "name": "Undo second", "image": image_file(tmp_path, "second.png", 0x50)}
    )
    done = await facebook.call("launch_campaign", args)
    assert done.ok, done.text
    (ad0, ad1), (creative0, creative1) = done.data["ad_ids"], done.data["creative_ids"]
    await _forget(facebook, done.data["launch_id"], "creative:0", "ad:0")  # orphans: made, but not in the journal
    gone = await facebook.call("delete_ad", {"ad_id": ad1})  # deleted by hand meanwhile
    assert gone.ok, gone.text

    rolled = await facebook.call("rollback_launch", {"launch_id": done.data["launch_id"]})
    assert rolled.ok, rolled.text
    assert (
        rolled.data["already_gone"] == [ad1] and f"already gone: ad 2 Undo second ({ad1})" in rolled.text
    )  # steps count from 1, as people count
    assert set(rolled.data["orphans"]) == {ad0, creative0} and "not in the journal" in rolled.text
    kinds = {ad0: 0, ad1: 0, creative0: 1, creative1: 1, done.data["adset_id"]: 2, done.data["campaign_id"]: 3}
    assert [kinds[i] for i in rolled.data["deleted"]] == sorted(kinds[i] for i in rolled.data["deleted"])
    assert set(rolled.data["deleted"]) == set(kinds) - {ad1}
    assert await _counts(sandbox, "Undo") == {"campaign": 0, "adset": 0, "adcreative": 0, "ad": 0}
    entry = (await facebook.store.list_audit(facebook.workspace.id, op="rollback_launch"))[0]
    assert entry.outcome == "ok" and set(rolled.data["deleted"]) <= set(entry.object_ids)


async def test_rollback_waits_for_a_launch_that_is_running(facebook, sandbox, tmp_path):
    args = launch_args(tmp_path, "Racing")
    await sandbox.fault(kind="delay", method="POST", path=r"^act_\d+/ads$", delay_ms=1500)
    running = asyncio.create_task(facebook.call("launch_campaign", args))
    while (
        not (launches := await facebook.store.list_launches(facebook.workspace.id))
        or "creative:0" not in launches[0].steps
    ):
        await asyncio.sleep(0.05)
    rolled = await facebook.call("rollback_launch", {"launch_id": launches[0].id})
    launched = await running
    assert launched.ok and rolled.ok, (launched.text, rolled.text)
    assert set(rolled.data["deleted"]) == {
        launched.data["campaign_id"],
        launched.data["adset_id"],
        *launched.data["creative_ids"],
        *launched.data["ad_ids"],
    }
    assert await _counts(sandbox, "Racing") == {"campaign": 0, "adset": 0, "adcreative": 0, "ad": 0}


# -- two processes sharing one home ----------------------------------------------------------------------------


def _shared_home(standalone, tmp_path: Path, **env: str) -> tuple[dict, dict]:
    """A home with a stored token, as both processes see it, and the launch they both run."""
    environment = {**standalone.live_env(tmp_path / "home"), **env}
    token = standalone.control("POST", "tokens", {"expires_in": 0})["access_token"]
    stored = _cli(["token", "set"], environment, stdin=token + "\n")
    assert stored.returncode == 0, stored.stderr
    account = next(
        a["id"] for a in standalone.control("GET", "objects?type=adaccount")["data"] if a.get("currency") == "USD"
    )
    args = launch_args(tmp_path, "Two processes")
    args.update(ad_account_id=account, page_id="400000000000001")
    return environment, args


def _start(args: dict, environment: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "admonster_bot", "call", "launch_campaign", json.dumps(args)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _live_sync(standalone, type_: str, name: str) -> list[dict]:
    return [
        o
        for o in standalone.control("GET", f"objects?type={type_}")["data"]
        if str(o.get("name", "")).startswith(name) and o.get("status") != "DELETED"
    ]


def _named(output: str) -> tuple[str, str]:
    """The campaign id and launch number an answer names (a late second process answers "Already launched as …")."""
    campaign, number = re.search(r"campaign Two processes \((\d+)\)", output), re.search(r"launch #(\d+)", output)
    assert campaign and number, output
    return campaign.group(1), number.group(1)


def test_two_processes_sharing_one_home_launch_once(standalone, tmp_path):
    environment, args = _shared_home(standalone, tmp_path)
    standalone.control(
        "POST", "faults", {"kind": "delay", "method": "POST", "path": r"^act_\d+/adcreatives$", "delay_ms": 3000}
    )
    processes = [_start(args, environment) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert len({_named(out) for out, _ in outputs}) == 1, outputs
    assert all("Traceback" not in err for _, err in outputs)
    for type_, _ in KINDS:
        assert len(_live_sync(standalone, type_, "Two processes")) == 1, type_


def test_a_process_killed_mid_launch_is_taken_over_without_a_duplicate(standalone, tmp_path):
    environment, args = _shared_home(standalone, tmp_path, ADMONSTER_LAUNCH_LEASE_SECONDS="2")
    standalone.control(
        "POST",
        "faults",
        {"kind": "delay", "method": "POST", "path": r"^act_\d+/adcreatives$", "when": "after", "delay_ms": 60000},
    )
    killed = _start(args, environment)
    deadline = time.monotonic() + 60
    while not _live_sync(standalone, "adcreative", "Two processes"):  # the creative is made; its answer is held back
        assert time.monotonic() < deadline and killed.poll() is None, (
            killed.stderr.read() if killed.poll() is not None else "no creative"
        )
        time.sleep(0.1)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=10)
    standalone.control("DELETE", "faults")
    taker = _start(args, environment)
    out, err = taker.communicate(timeout=120)
    assert taker.returncode == 0, (out, err)
    assert out.startswith("Launched campaign Two processes") and "launch #1" in out and "recovered a lost answer" in out
    for type_, _ in KINDS:
        assert len(_live_sync(standalone, type_, "Two processes")) == 1, type_


# -- experiments --------------------------------------------------------------------------------------------------


async def test_the_same_experiment_plan_twice_at_once_builds_one_experiment(world, tmp_path):
    from test_fb_experiments import live, plan

    args = plan(tmp_path, "Twin test")
    # The split test's creation is slow, so a second request not waiting for the first would not see it and make its own.
    await world.sandbox.fault(kind="delay", method="POST", path=r"^\d+/ad_studies$", delay_ms=1500, count=2)
    answers = await asyncio.gather(*[world.fb.call("launch_experiment", args) for _ in range(2)])
    if all(a.data.get("error") == "confirmation_required" for a in answers):  # under-powered: each waits for a yes
        answers = await asyncio.gather(
            *[world.fb.call("confirm", {"confirm": a.data["confirmation_id"]}) for a in answers]
        )
    assert all(a.ok for a in answers), [a.text for a in answers]
    assert len({a.data["experiment_id"] for a in answers}) == 1
    assert sum(1 for a in answers if a.data.get("already_launched")) == 1
    assert [v["campaign_id"] for v in answers[0].data["variants"]] == [
        v["campaign_id"] for v in answers[1].data["variants"]
    ]
    assert {kind: len(await live(world.sandbox, kind, "Twin test")) for kind in ("campaign", "adset", "ad")} == {
        "campaign": 2,
        "adset": 2,
        "ad": 2,
    }
    assert [e.name for e in await world.store.list_experiments(world.fb.workspace.id)] == ["Twin test"]
    studies = [
        s
        for s in (await world.sandbox.control("GET", "objects?type=adstudy"))["data"]
        if "Twin test" in s.get("name", "")
    ]
    assert len(studies) == 1


async def test_an_experiment_the_store_already_holds_is_reported_not_refused(world, tmp_path):
    """Should two requests ever both reach the save (a lease lost to a long pause), the second gets the first's record."""
    from fb_experiments import save_experiment
    from fb_utils import ExperimentRecord

    records = world.fb.state()
    record = ExperimentRecord(
        id=0,
        key="exp-twice",
        name="Saved twice",
        status="running",
        plan={"status": "PAUSED"},
        ad_account_id="act_1",
        currency="USD",
        variants=[],
        started_at="2026-03-02T20:00:00+00:00",
        ends_at="2026-03-09T20:00:00+00:00",
    )
    first, saved = await save_experiment(records, record)
    again, saved_again = await save_experiment(records, record)
    assert saved and not saved_again and again.id == first.id
    other = ExperimentRecord(**{**vars(record), "key": "exp-other"})  # another plan with a name in use is still refused
    with pytest.raises(ValidationError, match="Saved twice"):
        await save_experiment(records, other)

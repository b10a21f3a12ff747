"""The product killed at each launch step (issue 16, proof 1): `admonster call launch_campaign` runs as its own process
against a standalone sandbox and is killed with SIGKILL at the campaign, the ad set, the image upload, the creative, the
ad, or the activation of a confirmed ACTIVE launch: once while that step's request is on the wire (a `delay` fault holds
it before the sandbox acts; the sandbox finishes it after the process is dead, as Facebook finishes a request the client
gave up on), once just after the step's write landed (the fault holds the answer back). Then the same launch is asked
again, or resumed, from another process sharing the home. Afterwards, whatever the step and the moment:

- no duplicate: one campaign, ad set, creative and ad, each step's tag on exactly one live object;
- nothing unaudited: the killed run's audit entry is `pending` until `reconcile` settles it, and then every object the
  sandbox holds with the launch's tags is named by an `ok` audit entry, with no entry left pending or unknown;
- `rollback_launch` completes: every object deleted, ads first, then creatives, the ad set, the campaign.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import fb_creative
from test_admonster_bot import ROOT, StandaloneSandbox
from test_fb_ads_launch import launch_args

LEASE_SECONDS = 2  # a killed process's lease frees itself this long after its last renewal
SETTLE_SECONDS = 10  # how long a lost create may still land (the product's settle window, set small)
LATE_WRITE_MS = (
    5000  # the killed request lands this long after it arrived: after the takeover begins, inside the window
)
HELD_ANSWER_MS = 60000  # an answer held back past the kill: it never reaches anyone
PAGE_ID = "400000000000001"
KINDS = {"campaign": "campaign", "adset": "adset", "creative": "adcreative", "ad": "ad"}
ROLLBACK_RANK = {"ad": 0, "creative": 1, "adset": 2, "campaign": 3}


@dataclass(frozen=True)
class Step:
    name: str
    path: str  # the Graph path (regex) of the step's request
    skip: int = 0  # requests on that path let through first
    active: bool = False  # a confirmed ACTIVE launch: the step is an activation


STEPS = [
    Step("campaign", r"^act_\d+/campaigns$"),
    Step("adset", r"^act_\d+/adsets$"),
    Step("image", r"^act_\d+/adimages$"),
    Step("creative", r"^act_\d+/adcreatives$"),
    Step("ad", r"^act_\d+/ads$"),
    Step("activate ad", r"^\d+$", active=True),  # the first activation: the ad
    Step("activate campaign", r"^\d+$", skip=2, active=True),  # the last one: the campaign, after the ad and ad set
]
# Each step is killed at both moments; the recovery alternates so that every step is both asked again and resumed.
CASES = [
    (step, moment, ("again", "resume")[(index + m) % 2])
    for index, step in enumerate(STEPS)
    for m, moment in enumerate(("in_flight", "landed"))
]


@pytest.fixture(scope="module")
def crash_sandbox(tmp_path_factory):
    sandbox = StandaloneSandbox(tmp_path_factory.mktemp("crash-sandbox"))
    yield sandbox
    sandbox.stop()


class Home:
    """One ADMONSTER_HOME shared by every process of a case, in live mode against the standalone sandbox."""

    def __init__(self, sandbox: StandaloneSandbox, path: Path) -> None:
        self.sandbox = sandbox
        self.path = path
        token = sandbox.control("POST", "tokens", {"expires_in": 0})["access_token"]
        self.env = {
            **sandbox.live_env(path),
            "ADMONSTER_ACCESS_TOKEN": token,
            "ADMONSTER_LAUNCH_LEASE_SECONDS": str(LEASE_SECONDS),
            "ADMONSTER_LAUNCH_WAIT_SECONDS": "60",
            "ADMONSTER_WRITE_SETTLE_SECONDS": str(SETTLE_SECONDS),
            "ADMONSTER_GRAPH_TIMEOUT": "30",
        }

    def start(self, op: str, args: dict) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "admonster_bot", "call", op, json.dumps(args), "--json"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def call(self, op: str, args: dict | None = None) -> tuple[int, dict, str]:
        process = self.start(op, args or {})
        out, err = process.communicate(timeout=120)
        assert "Traceback" not in err, err
        try:
            return process.returncode, json.loads(out), err
        except json.JSONDecodeError:
            raise AssertionError(f"{op} answered no JSON: {out!r} {err!r}") from None

    def run(self, op: str, args: dict) -> dict:
        """Call a write; a held spend is confirmed as a person would (the confirmation is part of the call)."""
        code, data, err = self.call(op, args)
        if data.get("error") == "confirmation_required":
            code, data, err = self.call("confirm", {"confirm": data["confirmation_id"]})
        assert code == 0, (data, err)
        return data

    def _read(self, query: str) -> list[sqlite3.Row]:
        db = sqlite3.connect(self.path / "admonster.db")
        try:
            db.row_factory = sqlite3.Row
            return db.execute(query).fetchall()
        finally:
            db.close()

    def audit(self) -> list[dict]:
        """The audit log as the store holds it (with the client tags each write sent), oldest first."""
        return [
            {
                "id": r["id"],
                "op": r["op"],
                "outcome": r["outcome"],
                "object_ids": json.loads(r["object_ids_json"]),
                "tags": [t["tag"] for t in json.loads(r["tags_json"])],
            }
            for r in self._read("SELECT * FROM audit_log ORDER BY id")
        ]

    def launch(self) -> tuple[int, str, str]:
        """(id, key, status) of the home's one launch, as the store holds it."""
        rows = self._read("SELECT id, key, status FROM launches")
        assert len(rows) == 1, [tuple(r) for r in rows]
        return tuple(rows[0])


def _objects(sandbox: StandaloneSandbox, type_: str) -> list[dict]:
    return sandbox.control("GET", f"objects?type={type_}")["data"]


def _tagged(sandbox: StandaloneSandbox, key: str, args: dict) -> dict[str, list[dict]]:
    """Every object the sandbox holds carrying one of the launch's step tags (deleted ones too), by step."""
    plan = fb_creative.LaunchCampaignArgs.model_validate(args)
    tags = {fb_creative.step_tag(key, step): step for step, _, _ in fb_creative.launch_objects(plan)}
    found: dict[str, list[dict]] = {step: [] for step in tags.values()}
    for type_ in KINDS.values():
        for obj in _objects(sandbox, type_):
            for label in obj.get("adlabels") or []:
                if label.get("name") in tags:
                    found[tags[label["name"]]].append(obj)
    return found


def _live(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o.get("status") != "DELETED"]


def _held(sandbox: StandaloneSandbox, fault_id: str, process: subprocess.Popen) -> None:
    """Wait until the sandbox took the fault: the step's request arrived whole (and, for an "after" fault, was done)."""
    deadline = time.monotonic() + 60
    while any(f["id"] == fault_id for f in sandbox.control("GET", "faults")["data"]):
        if process.poll() is not None:
            raise AssertionError(f"the launch ended before its step was reached: {process.communicate()}")
        assert time.monotonic() < deadline, "the step's request never reached the sandbox"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "step, moment, recovery", CASES, ids=[f"{s.name.replace(' ', '-')}-{m}-{r}" for s, m, r in CASES]
)
def test_a_launch_killed_at_a_step_is_finished_once_audited_and_rolled_back(
    crash_sandbox, tmp_path, step, moment, recovery
):
    sandbox = crash_sandbox
    home = Home(sandbox, tmp_path / "home")
    name = f"Crash {step.name} {moment} {recovery}"
    account = next(a["id"] for a in _objects(sandbox, "adaccount") if a.get("currency") == "USD")
    args = {**launch_args(tmp_path, name), "ad_account_id": account, "page_id": PAGE_ID}
    if step.active:
        args["status"] = "ACTIVE"
        code, held, _ = home.call("launch_campaign", args)
        assert code == 1 and held["error"] == "confirmation_required", held
        command = ("confirm", {"confirm": held["confirmation_id"]})
    else:
        command = ("launch_campaign", args)

    # The run, killed inside the step.
    sandbox.control("DELETE", "faults")
    fault = sandbox.control(
        "POST",
        "faults",
        {
            "kind": "delay",
            "method": "POST",
            "path": step.path,
            "skip": step.skip,
            "when": "before" if moment == "in_flight" else "after",
            "delay_ms": LATE_WRITE_MS if moment == "in_flight" else HELD_ANSWER_MS,
        },
    )
    killed = home.start(*command)
    try:
        _held(sandbox, fault["id"], killed)
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
    # The killed request is done by then, at the latest: its write landed, late, whatever the recovery did meanwhile.
    settled_by = time.monotonic() + (LATE_WRITE_MS / 1000 + 1.5 if moment == "in_flight" else 0)
    launch_id, key, status = home.launch()
    assert status == "running"
    [interrupted] = [e for e in home.audit() if e["op"] == "launch_campaign" and e["outcome"] != "error"]
    assert interrupted["outcome"] == "pending", interrupted
    plan = fb_creative.LaunchCampaignArgs.model_validate(args)  # it names every tag the launch sends, for reconcile
    assert set(interrupted["tags"]) == {fb_creative.step_tag(key, s) for s, _, _ in fb_creative.launch_objects(plan)}

    # The same launch again (or resumed) from another process: it takes the dead lease over and finishes.
    if recovery == "again":
        done = home.run("launch_campaign", args)
    else:
        done = home.run("resume_launch", {"launch_id": launch_id})
    assert done["launch_id"] == launch_id and done["status"] == "done", done
    time.sleep(max(0.0, settled_by - time.monotonic()))
    tagged = _tagged(sandbox, key, args)
    assert {s: len(_live(objs)) for s, objs in tagged.items()} == {s: 1 for s in tagged}, tagged  # no duplicate
    ids = {s: _live(objs)[0]["id"] for s, objs in tagged.items()}
    assert (done["campaign_id"], done["adset_id"], done["creative_ids"], done["ad_ids"]) == (
        ids["campaign"],
        ids["adset"],
        [ids["creative:0"]],
        [ids["ad:0"]],
    )
    for type_ in KINDS.values():  # nothing else by the launch's name either (an untagged duplicate would show here)
        assert len([o for o in _live(_objects(sandbox, type_)) if str(o.get("name", "")).startswith(name)]) == 1, type_
    if step.active:
        assert all(
            _live(objs)[0]["status"] == "ACTIVE" for objs in tagged.values() if objs[0].get("_type") != "adcreative"
        )

    # The killed run's entry stays pending until reconcile looks at Facebook; then every tagged object is audited ok.
    assert next(e for e in home.audit() if e["id"] == interrupted["id"])["outcome"] == "pending"
    code, reconciled, err = home.call("reconcile")
    assert code == 0, (reconciled, err)
    assert [s["audit_id"] for s in reconciled["settled"]] == [interrupted["id"]] and not reconciled["open"], reconciled
    entries = home.audit()
    assert not [e for e in entries if e["outcome"] in ("pending", "unknown")], entries
    assert next(e for e in entries if e["id"] == interrupted["id"])["outcome"] == "ok"
    named_ok = {object_id for e in entries if e["outcome"] == "ok" for object_id in e["object_ids"]}
    assert {o["id"] for objs in tagged.values() for o in objs} <= named_ok, (tagged, entries)

    # Rollback completes: everything deleted, dependents first.
    rolled = home.run("rollback_launch", {"launch_id": launch_id})
    assert rolled["status"] == "rolled_back" and not rolled["already_gone"], rolled
    assert set(rolled["deleted"]) == set(ids.values())
    kinds = {ids[s]: s.split(":")[0] for s in ids}
    ranks = [ROLLBACK_RANK[kinds[object_id]] for object_id in rolled["deleted"]]
    assert ranks == sorted(ranks), rolled["deleted"]
    assert not [o for objs in _tagged(sandbox, key, args).values() for o in _live(objs)]
    code, log, _ = home.call("audit_log", {"limit": 200})  # the log as a person reads it says the same
    assert code == 0 and [e["outcome"] for e in log["entries"]] == [e["outcome"] for e in reversed(home.audit())]
    rollback = log["entries"][0]
    assert (
        rollback["op"] == "rollback_launch"
        and rollback["outcome"] == "ok"
        and set(rolled["deleted"]) <= set(rollback["object_ids"])
    )

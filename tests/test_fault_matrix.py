"""The fault matrix (issue 16): every write family under every sandbox fault, over the real sandbox.

After each case: (1) the sandbox holds exactly what was meant: no duplicate, nothing missing when the person was told it
worked, nothing made when Facebook refused; (2) the person got one true line: success, `ERROR outcome_unknown:` only
when the answer was really lost, Facebook's refusal when it refused, never "failed" for a write that happened; (3) the
audit entry says what Facebook shows, and an unknown one is settled by `reconcile` to what the sandbox holds.

The Graph client gives up on an answer after CLIENT_TIMEOUT and looks for a lost write over SETTLE_WINDOW. Its sleep is
injected: it records every wait (a throttle's wait is checked, not spent) and passes at once, except where a request
lands late: there the settle window must really pass for the late write to be found.

Two faults are not in the matrix because the sandbox, like Facebook, has no such thing: a throttle "after the write"
(a throttled request is refused, not processed) and a timeout "before the write" that is never processed (a request
held too long is processed when it lands: timeout-lands-late; one never processed is drop-before or 5xx-before)."""

from __future__ import annotations

import asyncio
import csv
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from admonster_store import Store
from fb_utils import GraphClient, OpResult, RateLimiter
from fi_facebook import Facebook, record_wait
from test_fb_ads_launch import KINDS, image_file, launch_args
from testkit import sandbox_clock

pytestmark = pytest.mark.usefixtures("clean_environment")

CLIENT_TIMEOUT = 0.5
SETTLE_WINDOW = 2.0
LATE_MS = 1000  # held this long, a request lands after the client gave up on it and well inside the settle window
THROTTLE_MINUTES = 1  # Facebook's estimated_time_to_regain_access: waited (and recorded) by the client
US = {"geo_locations": {"countries": ["US"]}}
LINK = "https://example.com/matrix"
UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)


# -- the faults --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """Sandbox faults on the family's write request ("on": "write") or on the read that would settle it ("on": "look")."""

    id: str
    specs: tuple[dict[str, Any], ...]
    real_time: bool = False  # a request lands late: the settle window must really pass


def on_write(**spec: Any) -> dict[str, Any]:
    return {"on": "write", **spec}


def throttle(code: int, minutes: int = THROTTLE_MINUTES, **spec: Any) -> dict[str, Any]:
    return on_write(kind="throttle", code=code, minutes=minutes, **spec)


FAULTS = {
    fault.id: fault
    for fault in (
        Fault("5xx-before", (on_write(kind="http_500"),)),  # not processed; the 500 does not say so
        Fault("5xx-after", (on_write(kind="http_500", when="after"),)),  # processed, then a 500
        Fault("5xx-repeated", (on_write(kind="unavailable", count=50),)),  # every send refused with a 503
        Fault("drop-before", (on_write(kind="drop"),)),  # connection closed, not processed
        Fault("drop-after", (on_write(kind="drop", when="after"),)),  # processed, answer lost
        # Processed, and the answer is lost for good: every re-send's answer is lost too, and the read that would settle
        # it fails (a create's lookup by tag, the upload session of a customer list).
        Fault(
            "lost-for-good",
            (on_write(kind="drop", when="after", count=50), {"on": "look", "kind": "http_500", "count": 50}),
        ),
        Fault(
            "timeout-lands-late", (on_write(kind="timeout", delay_ms=LATE_MS),), real_time=True
        ),  # processed after the client gave up
        Fault(
            "timeout-answer-late", (on_write(kind="timeout", when="after", delay_ms=LATE_MS),)
        ),  # processed, answer too late
        Fault("throttle-4", (throttle(4),)),
        Fault("throttle-17", (throttle(17),)),
        Fault("throttle-613", (throttle(613, error_subcode=1487742),)),
        Fault("throttle-80004", (throttle(80004),)),
        Fault("throttle-too-long", (throttle(80004, minutes=10),)),  # longer than the client waits (120 s)
        Fault("token-expired", (on_write(kind="token_expired"),)),  # 190 mid-flow
    )
}
THROTTLES = {"throttle-4", "throttle-17", "throttle-613", "throttle-80004"}


# -- a session per case ------------------------------------------------------------------------------------------


class Waits:
    """The Graph client's sleep: records what it was asked to wait; passes at once unless the case needs real time."""

    def __init__(self, real: bool) -> None:
        self.asked: list[float] = []
        self.real = real

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(seconds if self.real else 0)


class Ahead:
    """The Graph client's clock: this machine's monotonic one, moved on by hand past a throttle Facebook named."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.seconds


class Later:
    """The store's clock: this machine's, moved on by hand to run reconcile a settle window later (as its job does)."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@dataclass
class Case:
    facebook: Facebook
    sandbox: Any
    waits: Waits
    later: Later
    ahead: Ahead
    tmp_path: Path
    name: str
    ready: dict[str, Any] = field(default_factory=dict)  # what the family made before the fault

    async def call(self, op: str, args: dict[str, Any]) -> OpResult:
        return await self.facebook.call(op, args)

    async def must(self, op: str, args: dict[str, Any]) -> OpResult:
        result = await self.facebook.call(op, args)
        assert result.ok, result.text
        return result

    async def live(self, type_: str, name_prefix: str | None = None) -> list[dict]:
        """The sandbox's objects of a type named after the case (or starting with a prefix), deleted ones left out."""
        objects = (await self.sandbox.control("GET", f"objects?type={type_}"))["data"]
        return [
            o
            for o in objects
            if o.get("status") != "DELETED"
            and (o.get("name") == self.name if name_prefix is None else str(o.get("name", "")).startswith(name_prefix))
        ]

    async def last_entry(self):
        return (await self.facebook.store.list_audit(self.facebook.workspace.id, limit=1))[0]


@pytest.fixture
async def session_for(sandbox, demo_accounts, tmp_path):
    """Makes the case's session: a store whose clock can be moved on, a short-timeout Graph client whose waits are
    recorded."""
    later = Later()
    store = await Store.open(":memory:", clock=later)
    clients: list[GraphClient] = []

    async def make(fault: Fault, name: str) -> Case:
        token = await sandbox.token(expires_in=0)
        waits, ahead = Waits(real=fault.real_time), Ahead()
        graph = GraphClient(
            token["access_token"],
            app_secret=token["app_secret"],
            base_url=sandbox.url,
            timeout=CLIENT_TIMEOUT,
            settle_window=SETTLE_WINDOW,
            sleep=waits,
            on_wait=record_wait,
        )
        graph.limiter = RateLimiter(
            threshold=graph.limiter.threshold,
            max_wait=graph.limiter.max_wait,
            sleep=waits,
            on_wait=record_wait,
            clock=ahead,
        )
        clients.append(graph)
        workspace = await store.ensure_workspace("matrix")
        await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
        return Case(
            Facebook(store, graph, workspace, clock=sandbox_clock(sandbox)),
            sandbox,
            waits,
            later,
            ahead,
            tmp_path,
            name,
        )

    try:
        yield make
    finally:
        for graph in clients:
            await graph.close()
        await store.close()


# -- the write families ------------------------------------------------------------------------------------------


@dataclass
class Family:
    """One kind of write: how to get ready for it, run it, and read what the sandbox holds of it afterwards."""

    id: str
    write: str  # the path (regex) of its write request, a POST
    look: str | None = None  # the path of the GET that settles a lost answer (None: it is re-sent instead)
    looks_first: int = 0  # GETs of that path before the write (a launch step looks for its tag first)
    creates: bool = True  # the answer names the object made (data["id"])

    async def prepare(self, case: Case) -> None:
        """What must exist before the write (made before any fault is set)."""

    async def run(self, case: Case) -> OpResult:
        raise NotImplementedError

    async def held(self, case: Case) -> Any:
        """What the sandbox holds of the write (compared with intended, untouched or written)."""
        raise NotImplementedError

    def intended(self, case: Case) -> Any:
        """What the sandbox holds once the write is done."""
        return 1

    def untouched(self, case: Case) -> Any:
        """What the sandbox holds when the write did not happen."""
        return 0

    def written(self, case: Case) -> Any:
        """What the sandbox holds when the faulted request happened but the op stopped there (its answer lost)."""
        return self.intended(case)

    async def made_ids(self, case: Case) -> list[str]:
        """The ids of what the write made, as the sandbox shows them (for the answer and the audit)."""
        return []


class CreateNamed(Family):
    """A create of one named object (campaign, ad set, creative, ad): the sandbox holds it once, by its name."""

    type_ = ""

    async def held(self, case: Case) -> int:
        return len(await case.live(self.type_))

    async def made_ids(self, case: Case) -> list[str]:
        return [o["id"] for o in await case.live(self.type_)]


class CreateCampaign(CreateNamed):
    type_ = "campaign"

    async def run(self, case: Case) -> OpResult:
        return await case.call("create_campaign", {"name": case.name, "objective": "OUTCOME_TRAFFIC"})


class ConfirmedActiveCreate(CreateNamed):
    """A create that spends (status ACTIVE): held for confirmation, then confirmed; the fault hits the confirmed create."""

    type_ = "campaign"

    async def prepare(self, case: Case) -> None:
        held = await case.call(
            "create_campaign",
            {"name": case.name, "objective": "OUTCOME_TRAFFIC", "status": "ACTIVE", "daily_budget": 5000},
        )
        assert held.data["error"] == "confirmation_required", held.text
        case.ready["confirmation_id"] = held.data["confirmation_id"]

    async def run(self, case: Case) -> OpResult:
        return await case.call("confirm", {"confirm": case.ready["confirmation_id"]})

    async def held(self, case: Case) -> int:
        return len([c for c in await case.live("campaign") if c.get("status") == "ACTIVE"])


class CreateAdset(CreateNamed):
    type_ = "adset"

    async def prepare(self, case: Case) -> None:
        campaign = await case.must("create_campaign", {"name": f"{case.name} campaign", "objective": "OUTCOME_TRAFFIC"})
        case.ready["campaign_id"] = campaign.data["id"]

    async def run(self, case: Case) -> OpResult:
        return await case.call(
            "create_adset",
            {"campaign_id": case.ready["campaign_id"], "name": case.name, "targeting": US, "daily_budget": 2000},
        )


async def uploaded_image_and_page(case: Case) -> None:
    uploaded = await case.must("upload_image", {"source": image_file(case.tmp_path, "creative.png")})
    pages = await case.facebook.graph.get_all("me/accounts", {"fields": "id"})
    case.ready.update(image=uploaded.data["hash"], page_id=pages[0]["id"])


def creative_args(case: Case, name: str) -> dict[str, Any]:
    return {
        "kind": "image",
        "name": name,
        "image": case.ready["image"],
        "message": "Fresh for summer",
        "link": LINK,
        "page_id": case.ready["page_id"],
    }


class CreateCreative(CreateNamed):
    type_ = "adcreative"

    async def prepare(self, case: Case) -> None:
        await uploaded_image_and_page(case)

    async def run(self, case: Case) -> OpResult:
        return await case.call("create_creative", creative_args(case, case.name))


class CreateAd(CreateNamed):
    type_ = "ad"

    async def prepare(self, case: Case) -> None:
        campaign = await case.must("create_campaign", {"name": f"{case.name} campaign", "objective": "OUTCOME_TRAFFIC"})
        adset = await case.must(
            "create_adset",
            {"campaign_id": campaign.data["id"], "name": f"{case.name} set", "targeting": US, "daily_budget": 2000},
        )
        await uploaded_image_and_page(case)
        creative = await case.must("create_creative", creative_args(case, f"{case.name} creative"))
        case.ready.update(adset_id=adset.data["id"], creative_id=creative.data["id"])

    async def run(self, case: Case) -> OpResult:
        return await case.call(
            "create_ad",
            {"adset_id": case.ready["adset_id"], "creative_id": case.ready["creative_id"], "name": case.name},
        )


class UploadImage(Family):
    """An image upload: content-addressed (md5), so Facebook keeps it once however often it is sent."""

    async def prepare(self, case: Case) -> None:
        case.ready["path"] = image_file(case.tmp_path, "upload.png", shade=0x21)

    async def run(self, case: Case) -> OpResult:
        return await case.call("upload_image", {"source": case.ready["path"]})

    async def held(self, case: Case) -> int:
        images = (await case.sandbox.control("GET", "objects?type=adimage"))["data"]
        return len([i for i in images if i.get("name") == "upload.png"])

    async def made_ids(self, case: Case) -> list[str]:
        images = (await case.sandbox.control("GET", "objects?type=adimage"))["data"]
        return [i["hash"] for i in images if i.get("name") == "upload.png"]


class UpdateBudget(Family):
    """A budget change of an existing campaign (a decrease: no confirmation needed); re-sent safely, it ends the same."""

    async def prepare(self, case: Case) -> None:
        made = await case.must(
            "create_campaign", {"name": case.name, "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000}
        )
        case.ready["campaign_id"] = made.data["id"]

    async def run(self, case: Case) -> OpResult:
        return await case.call("update_campaign", {"campaign_id": case.ready["campaign_id"], "daily_budget": 4000})

    async def held(self, case: Case) -> int:
        [campaign] = await case.live("campaign")
        return int(campaign["daily_budget"])

    def intended(self, case: Case) -> int:
        return 4000

    def untouched(self, case: Case) -> int:
        return 5000

    async def made_ids(self, case: Case) -> list[str]:
        return [case.ready["campaign_id"]]


class LaunchCampaign(Family):
    """The one-call launch, the fault on its ad set step (mid-flow: the campaign is made before it)."""

    async def run(self, case: Case) -> OpResult:
        return await case.call("launch_campaign", launch_args(case.tmp_path, case.name))

    async def held(self, case: Case) -> dict[str, int]:
        return {type_: len(await case.live(type_, case.name)) for type_, _ in KINDS}

    def intended(self, case: Case) -> dict[str, int]:
        return {"campaign": 1, "adset": 1, "adcreative": 1, "ad": 1}

    def untouched(self, case: Case) -> dict[str, int]:
        return {"campaign": 1, "adset": 0, "adcreative": 0, "ad": 0}  # stopped at the ad set: the campaign stays

    def written(self, case: Case) -> dict[str, int]:
        return {"campaign": 1, "adset": 1, "adcreative": 0, "ad": 0}  # the ad set was made, its answer lost: stopped

    async def made_ids(self, case: Case) -> list[str]:
        return [o["id"] for type_, _ in KINDS for o in await case.live(type_, case.name)]


USERS = 25


class AddUsers(Family):
    """Customers added to a customer list: the upload session's count settles a lost batch."""

    async def prepare(self, case: Case) -> None:
        made = await case.must("create_customer_list_audience", {"name": case.name, "description": "matrix"})
        path = case.tmp_path / "customers.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "country"])
            writer.writerows([f"person{i}@example.com", "US"] for i in range(USERS))
        case.ready.update(audience_id=made.data["audience_id"], path=str(path))

    async def run(self, case: Case) -> OpResult:
        return await case.call("add_users", {"audience_id": case.ready["audience_id"], "source": case.ready["path"]})

    async def held(self, case: Case) -> int:
        from fb_sandbox import audiences

        store = case.sandbox.server.sandbox.store
        if not store.db.execute("SELECT 1 FROM sqlite_master WHERE name='audience_people'").fetchone():
            return 0  # no customer ever reached this sandbox
        return len(audiences._people(store.db, store.get(case.ready["audience_id"])["_members_key"]))

    def intended(self, case: Case) -> int:
        return USERS

    async def made_ids(self, case: Case) -> list[str]:
        return [case.ready["audience_id"]]


class SendEvents(Family):
    """A Conversions API event (with an event_id: Facebook counts it once); its lost answer cannot be looked up."""

    async def prepare(self, case: Case) -> None:
        pixels = await case.must("list_pixels", {})
        case.ready["pixel_id"] = pixels.data["pixels"][0]["id"]

    async def run(self, case: Case) -> OpResult:
        event = {
            "event_name": "Purchase",
            "event_id": case.name,
            "event_source_url": LINK,
            "user_data": {"em": "buyer@example.com", "client_user_agent": UA},
            "custom_data": {"value": 25, "currency": "USD"},
        }
        return await case.call("send_events", {"pixel_id": case.ready["pixel_id"], "events": [event]})

    async def held(self, case: Case) -> int:
        db = case.sandbox.server.sandbox.store.db
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name='capi_events'").fetchone():
            return 0  # no event ever reached this sandbox
        return db.execute("SELECT COUNT(*) FROM capi_events WHERE event_id=? AND duplicate=0", (case.name,)).fetchone()[
            0
        ]

    async def made_ids(self, case: Case) -> list[str]:
        return [case.ready["pixel_id"]]


FAMILIES = {
    family.id: family
    for family in (
        CreateCampaign("create-campaign", r"^act_\d+/campaigns$", look=r"^act_\d+/campaigns$"),
        CreateAdset("create-adset", r"^act_\d+/adsets$", look=r"^act_\d+/adsets$"),
        CreateCreative("create-creative", r"^act_\d+/adcreatives$", look=r"^act_\d+/adcreatives$"),
        CreateAd("create-ad", r"^act_\d+/ads$", look=r"^act_\d+/ads$"),
        UploadImage("upload-image", r"^act_\d+/adimages$", creates=False),
        ConfirmedActiveCreate("confirmed-active-create", r"^act_\d+/campaigns$", look=r"^act_\d+/campaigns$"),
        UpdateBudget("budget-update", r"^\d+$", creates=False),
        LaunchCampaign("launch-campaign", r"^act_\d+/adsets$", look=r"^act_\d+/adsets$", looks_first=1, creates=False),
        AddUsers("add-users", r"^\d+/users$", look=r"^\d+/sessions$", creates=False),
        SendEvents("send-events", r"^\d+/events$", creates=False),
    )
}


# -- what each case must end with ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """done: it worked and the person is told so. unknown: the answer was really lost (`held` says whether it happened).
    refused: Facebook's answer (or a look since) proves nothing was done; `kind` is the error's kind."""

    outcome: str
    held: str = "intended"  # intended | untouched | written
    kind: str | None = None


DONE = Expect("done")
LOST_THEN_FOUND_MISSING = Expect("unknown", "untouched")
LOST_BUT_DONE = Expect("unknown", "written")


def expected(family_id: str, fault_id: str) -> Expect:
    if fault_id == "token-expired":
        return Expect("refused", "untouched", "auth")
    if fault_id == "throttle-too-long":
        return Expect("refused", "untouched", "rate_limit")
    if fault_id in THROTTLES:
        return DONE  # a throttled request was refused, not processed: sent again after the wait Facebook names
    if family_id == "send-events":
        # Never re-sent by itself (the person is told a re-send is safe: the event_id makes Facebook count it once), and
        # nothing shows whether Facebook counted it: every lost answer stays unknown.
        return (
            LOST_BUT_DONE
            if fault_id in ("5xx-after", "drop-after", "timeout-lands-late", "timeout-answer-late")
            else LOST_THEN_FOUND_MISSING
        )
    if fault_id == "lost-for-good":
        return LOST_BUT_DONE
    if fault_id == "5xx-repeated":
        if family_id in ("budget-update", "upload-image"):
            return LOST_THEN_FOUND_MISSING  # re-sent and never answered: only reconcile can tell
        return Expect("refused", "untouched", "network")  # looked for (or the session read) after each send: not made
    return DONE


def applies(family_id: str, fault_id: str) -> bool:
    # send_events is never re-sent and has no look: a repeated 5xx is its 5xx-before case, and an answer lost for
    # good is its drop-after case.
    return not (family_id == "send-events" and fault_id in ("5xx-repeated", "lost-for-good"))


CASES = [
    pytest.param(family_id, fault_id, id=f"{family_id}-{fault_id}")
    for family_id in FAMILIES
    for fault_id in FAULTS
    if applies(family_id, fault_id)
]


# -- the matrix ------------------------------------------------------------------------------------------------


async def inject(case: Case, family: Family, fault: Fault) -> None:
    for spec in fault.specs:
        spec = dict(spec)
        if spec.pop("on") == "write":
            await case.sandbox.fault(method="POST", path=family.write, **spec)
        elif family.look:
            await case.sandbox.fault(method="GET", path=family.look, skip=family.looks_first, **spec)


def held_for(family: Family, case: Case, which: str) -> Any:
    return {"intended": family.intended, "untouched": family.untouched, "written": family.written}[which](case)


def check_line(result: OpResult, expect: Expect, case: Case, fault: Fault) -> None:
    """One true line: success, or one ERROR line of the expected kind; never "failed" for a write that happened."""
    error_lines = [line for line in result.text.splitlines() if line.startswith("ERROR")]
    if expect.outcome == "done":
        assert result.ok and not error_lines, result.text
        if fault.id in THROTTLES:
            assert THROTTLE_MINUTES * 60.0 in case.waits.asked, case.waits.asked
            assert f"waiting {THROTTLE_MINUTES * 60} s, as Facebook asks" in result.text, result.text
        return
    kind = "outcome_unknown" if expect.outcome == "unknown" else expect.kind
    assert not result.ok and result.text.startswith(f"ERROR {kind}: ") and len(error_lines) == 1, result.text
    assert result.data["audit_id"] and (result.data.get("error") == kind or result.data["error"].get("error") == kind)
    said = error_lines[0].split(" Fix: ")[0]
    if expect.outcome == "unknown":
        assert "fail" not in said.replace("looking at Facebook failed", "").lower(), (
            said
        )  # never "failed": it may have happened
        assert re.search(r"(not|nothing was) sent again|Sending them again is safe", error_lines[0]), error_lines[0]


async def check_audit(case: Case, family: Family, expect: Expect, result: OpResult) -> None:
    """The audit entry says what Facebook shows; an unknown one is settled by reconcile, a settle window later."""
    entry = await case.last_entry()
    made = await family.made_ids(case)
    if expect.outcome == "done":
        assert entry.outcome == "ok" and entry.settled_at and set(made) <= set(entry.object_ids), (entry, made)
        if family.creates:
            assert [result.data["id"]] == made, (result.data, made)
        return
    if expect.outcome == "refused":
        assert entry.outcome == "error" and entry.error.startswith(f"ERROR {expect.kind}") and entry.settled_at, entry
        return
    assert entry.outcome == "unknown" and entry.settled_at is None, entry
    case.later.ahead += timedelta(seconds=SETTLE_WINDOW)
    reconciled = await case.call("reconcile", {})
    settled = await case.last_entry()
    if family.id == "send-events":  # nothing on Facebook tells whether an event was counted: it stays unknown
        assert settled.outcome == "unknown" and "safe to send again" in reconciled.text, reconciled.text
    elif expect.held == "untouched":
        assert settled.outcome == "error" and "it did not happen" in reconciled.text, reconciled.text
    elif family.id == "launch-campaign":  # the ad set was made, the launch stopped there: part of it happened
        assert settled.outcome == "error" and "only part of it happened" in reconciled.text, reconciled.text
        assert set(settled.object_ids) == set(made), (settled.object_ids, made)
    else:
        assert settled.outcome == "ok" and "it happened" in reconciled.text, reconciled.text
        assert set(made) <= set(settled.object_ids), (settled.object_ids, made)


async def check_launch_finishes(case: Case, family: Family, fault: Fault, result: OpResult) -> None:
    """A launch stopped at a step is finished by resume_launch without a duplicate (the step looks for its tag first);
    after a throttle longer than the client waits, not before the time Facebook named."""
    if fault.id == "throttle-too-long":
        await case.sandbox.control("POST", "stats/reset")
        early = await case.call("resume_launch", {"launch_id": result.data["launch_id"]})
        assert not early.ok and early.data["error"]["error"] == "rate_limit", early.text
        assert not (await case.sandbox.stats())["by_route"].get("POST act_x/adsets"), "sent while Facebook throttles"
        case.ahead.seconds += 10 * 60
    resumed = await case.call("resume_launch", {"launch_id": result.data["launch_id"]})
    assert resumed.ok, resumed.text
    assert await family.held(case) == family.intended(case)


@pytest.mark.parametrize("family_id, fault_id", CASES)
async def test_fault_matrix(session_for, family_id, fault_id):
    family, fault, expect = FAMILIES[family_id], FAULTS[fault_id], expected(family_id, fault_id)
    case = await session_for(fault, f"Matrix {family_id} {fault_id}")
    await family.prepare(case)
    await inject(case, family, fault)
    started = time.monotonic()
    result = await family.run(case)
    await case.sandbox.control("DELETE", "faults")
    if fault.real_time:  # a request held by the sandbox lands LATE_MS after it arrived, whatever the client did
        await asyncio.sleep(max(0.0, LATE_MS / 1000 + 0.2 - (time.monotonic() - started)))

    assert await family.held(case) == held_for(family, case, expect.held), result.text
    check_line(result, expect, case, fault)
    await check_audit(case, family, expect, result)
    if family_id == "launch-campaign" and expect.outcome != "done":
        await check_launch_finishes(case, family, fault, result)

"""Beta gets nothing of alpha's (issue 18, "Done when" line 1), tried over real HTTP on one `admonster serve`.

Alpha makes one of every object kind the op registry has an id for (and a launch, an experiment, an alert, a held
confirmation, an undo-able audit entry, a chat thread, a written file and an uploaded file). Beta then calls every op
of the registry once per id or path argument, that argument filled with alpha's object of the matching kind and every
other argument with beta's own objects, over `/v1/tools/facebook`, `/mcp` and chat (`/tool OP {json}`), plus the chat
commands that take an id, alpha's thread and alpha's file links. The attempts come from the registry's argument schemas,
never from a list typed here: a new op is attacked as soon as it is registered, and a new id argument fails the
coverage check until ARG_KINDS says which kind of object it names.

Every attempt must fail with one clear line, give no data of alpha's, and change nothing alpha owns.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from admonster_chat import BOT_COMMANDS
from fb_utils import INPUT_PATH_FIELDS, UPLOADS_DIR, ValidationError
from fi_facebook import GATE_ARGS, REGISTRY, _example_from_schema, validate_args
from test_fb_creative import mp4_file, png_bytes
from test_signin_tenants import browser, consent, make_link
from test_signin_tenants import workspace as signin_workspace
from test_workspace_files import Tenant
from testkit import running_server, workspaces_on_a_server

# Arguments that name a file an op writes (fb_utils.output_folder / output_file); INPUT_PATH_FIELDS are those it reads.
OUTPUT_PATH_FIELDS = frozenset({"out_dir", "filename"})
# An argument is an id when its name says so (…_id, …_ids, id, ids) or it is the gate's confirmation id.
ID_NAME = re.compile(r"^(?:\w+_ids?|ids?|confirm)$")
# Values alpha's calls carry that name no object but could lead to one: an idempotency tag (a create looks for the object
# carrying it first) and a paging cursor. Beta may use them and succeed, on beta's objects only (MAY_SUCCEED_KINDS).
TOKEN_NAME = re.compile(r"^(?:\w+_tag|after)$")
MAY_SUCCEED_KINDS = {"client_tag", "cursor"}
# Names that look like paths: each must be in INPUT_PATH_FIELDS or OUTPUT_PATH_FIELDS (else the coverage check fails).
PATH_LIKE_NAME = re.compile(r"(?:^|_)(?:path|file|filename|dir|folder)$")

# Which of alpha's objects each id or path argument is tried with. An argument the registry has and this table lacks
# fails test_every_id_and_path_argument_has_a_kind: say what it names before the suite passes again.
ARG_KINDS: dict[str, tuple[str, ...]] = {
    "ad_account_id": ("ad_account",),
    "campaign_id": ("campaign",),
    "campaign_ids": ("campaign",),
    "adset_id": ("adset",),
    "ad_id": ("ad",),
    "creative_id": ("creative",),
    "audience_id": ("custom_audience", "lookalike"),
    "origin_audience_id": ("custom_audience", "lookalike"),
    "saved_audience_id": ("saved_audience",),
    "pixel_id": ("pixel",),
    "custom_conversion_id": ("custom_conversion",),
    "page_id": ("page",),
    "instagram_account_id": ("instagram_account",),
    "business_id": ("business",),
    "user_id": ("account_user",),
    "video_id": ("video",),
    "report_run_id": ("report_run",),
    "object_id": ("ad_account", "campaign", "adset", "ad"),
    "object_ids": ("ad_account", "campaign", "adset", "ad"),
    "object_story_id": ("page_post",),
    "post_id": ("page_post",),
    "source_id": ("page", "instagram_account"),
    "launch_id": ("launch",),
    "experiment_id": ("experiment",),
    "alert_id": ("alert",),
    "audit_id": ("audit_entry",),
    "confirm": ("confirmation",),
    "client_tag": ("client_tag",),
    "after": ("cursor",),
    # files an op reads: alpha's upload by its stored name and by its server path, alpha's written file likewise
    "source": (
        "uploaded_file",
        "uploaded_csv",
        "uploaded_video",
        "uploaded_file_path",
        "written_file",
        "written_file_path",
    ),
    "plan_file": ("uploaded_plan", "uploaded_file_path", "written_file", "written_file_path"),
    "image": ("image_hash", "uploaded_file", "uploaded_file_path"),
    "thumbnail": ("image_hash", "uploaded_file", "uploaded_file_path"),
    "video": ("video", "uploaded_video", "uploaded_file_path"),
    # files an op writes: into alpha's folder
    "out_dir": ("folder_path", "folder_relative"),
    "filename": ("folder_relative_file",),
}
# Ids no workspace owns, so there is nothing of alpha's to try: each with the reason.
NOT_TENANT_IDS = {
    "application_id": "the id of the mobile app an ad set promotes: a public Facebook app, not a workspace's object",
    "event_id": "a Conversions API event's deduplication key, chosen by the sender and kept per pixel: names no object",
}
# Kinds whose value is a small store integer (launches, experiments, alerts, audit entries): too short to search for
# in answers as text, so leaks of those objects are searched by their names instead.
STORE_INTEGER_KINDS = {"launch", "experiment", "alert", "audit_entry"}
# Which of beta's own files stands for a file an op's example names (by argument, else by the example's extension).
OWN_FILE_KINDS = {
    "image": "image_hash",
    "thumbnail": "image_hash",
    "video": "video",
    ".csv": "uploaded_csv",
    ".mp4": "uploaded_video",
    ".yaml": "uploaded_plan",
    ".yml": "uploaded_plan",
    ".json": "uploaded_plan",
}
# Creative fields read only by some creative kinds (the call is fitted so the kind reads them); the level an object id of
# each kind goes with.
CREATIVE_MEDIA_FIELDS = ("video", "thumbnail", "object_story_id", "post_id")
LEVEL_OF_KIND = {"ad_account": "account", "campaign": "campaign", "adset": "adset", "ad": "ad"}
US = {"geo_locations": {"countries": ["US"]}, "age_min": 25, "age_max": 45}
LINK = "https://example.com/sale"


# -- the worlds --------------------------------------------------------------------------------------------------------


@dataclass
class World:
    """One tenant's objects: kind -> the value an argument of that kind takes; names and ids to search answers for."""

    tenant: Any
    label: str
    ids: dict[str, Any] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    file_urls: list[str] = field(default_factory=list)
    thread: str = ""


class Caller(Tenant):
    """A tenant over HTTP that returns the status too (an attempt's status is part of its verdict)."""

    async def post(self, path: str, body: dict, headers: dict | None = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.url}{path}", json=body, headers={**self.headers, **(headers or {})}
            ) as resp:
                text = await resp.text()
                try:
                    return resp.status, json.loads(text)
                except ValueError:
                    return resp.status, text


def _ok(answer: dict, what: str) -> dict:
    assert answer["ok"], f"{what}: {answer['text']}"
    return answer["data"]


def _first_id(answer: dict) -> str:
    """The id of the first item a list op answered (whatever its list is called)."""
    data = _ok(answer, "list")
    return next(v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict))[0]["id"]


def _new_id(answer: dict, what: str) -> Any:
    """The id a create answered: `id`, else its one `…_id`, else the first of its `…_ids`."""
    data = _ok(answer, what)
    for key in ("id", *(k for k in data if k.endswith("_id")), *(k for k in data if k.endswith("_ids"))):
        if data.get(key):
            return data[key][0] if isinstance(data[key], list) else data[key]
    raise AssertionError(f"{what} answered no id: {sorted(data)}")


async def _held_then_confirmed(tenant: Tenant, op: str, args: dict) -> dict:
    answer = await tenant.tool(op, args)
    if not answer["ok"] and (answer["data"] or {}).get("error") == "confirmation_required":
        answer = await tenant.tool("confirm", {"confirm": answer["data"]["confirmation_id"]})
    return _ok(answer, op)


async def build_world(tenant: Tenant, label: str, *, full: bool) -> World:
    """Everything a workspace can own, made through the API as its person would (full=False: what beta needs as the
    other arguments of an attempt)."""
    world = World(tenant, label)
    mark = f"{label.capitalize()}-{secrets.token_hex(4)}"  # in every name alpha gives: searched for in beta's answers
    ids = world.ids

    def name(what: str) -> str:
        world.names.add(f"{mark} {what}")
        return f"{mark} {what}"

    accounts = _ok(await tenant.tool("list_ad_accounts", {}), "list_ad_accounts")["accounts"]
    ids["ad_account"] = next(a["id"] for a in accounts if a.get("currency") == "USD")
    ids["page"] = _first_id(await tenant.tool("list_pages", {}))
    ids["instagram_account"] = _first_id(await tenant.tool("list_instagram_accounts", {}))
    ids["business"] = _first_id(await tenant.tool("list_businesses", {}))
    ids["account_user"] = _first_id(await tenant.tool("list_account_users", {}))
    ids["pixel"] = _first_id(await tenant.tool("list_pixels", {}))
    ids["saved_audience"] = _first_id(await tenant.tool("list_saved_audiences", {}))

    # Each its own picture: an image hash is the MD5 of the bytes, the same in every account for the same picture.
    status, body = await tenant.upload(f"{label}-banner.png", png_bytes(600 + len(label), 400))
    assert status == 200, body
    ids["uploaded_file"] = body["file"]
    ids["uploaded_file_path"] = str(tenant.folder / UPLOADS_DIR / body["file"])
    ids["image_hash"] = _ok(await tenant.tool("upload_image", {"source": body["file"], "name": name("banner")}), "img")[
        "hash"
    ]
    movie = mp4_file(tenant.folder.parent / f"{label}-promo.mp4", 6000)
    status, body = await tenant.upload(f"{label}-promo.mp4", movie.read_bytes())
    movie.unlink()
    assert status == 200, body
    ids["uploaded_video"] = body["file"]
    ids["video"] = _new_id(
        await tenant.tool("upload_video", {"source": body["file"], "title": name("promo"), "wait": False}),
        "upload_video",
    )
    plan = {
        "name": name("planned test"),
        "hypothesis": "A warmer photo gets more clicks",
        "variable": "creative",
        "metric": "ctr",
        "campaign": {"objective": "OUTCOME_TRAFFIC"},
        "adset": {"targeting": US},
        "variants": [
            {
                "name": v,
                "creative": {
                    "kind": "image",
                    "image": ids["image_hash"],
                    "message": f"Offer {v}",
                    "link": LINK,
                    "headline": f"Look {v}",
                },
            }
            for v in "AB"
        ],
        "daily_budget": 3000,
        "duration_days": 7,
    }
    status, body = await tenant.upload(f"{label}-plan.json", json.dumps(plan).encode())
    assert status == 200, body
    ids["uploaded_plan"] = body["file"]

    ids["client_tag"] = f"{label}-{secrets.token_hex(6)}"
    ids["campaign"] = _new_id(
        await tenant.tool(
            "create_campaign",
            {"name": name("campaign"), "objective": "OUTCOME_TRAFFIC", "client_tag": ids["client_tag"]},
        ),
        "create_campaign",
    )
    page = _ok(await tenant.tool("list_campaigns", {"limit": 1}), "list_campaigns")
    ids["cursor"] = page.get("next_after")
    assert ids["cursor"], sorted(page)
    ids["adset"] = _new_id(
        await tenant.tool(
            "create_adset",
            {"campaign_id": ids["campaign"], "name": name("ad set"), "targeting": US, "daily_budget": 2000},
        ),
        "create_adset",
    )
    ids["creative"] = _new_id(
        await tenant.tool(
            "create_creative",
            {
                "kind": "image",
                "name": name("creative"),
                "image": ids["image_hash"],
                "message": f"{mark} message",
                "link": LINK,
                "page_id": ids["page"],
            },
        ),
        "create_creative",
    )
    world.names.add(f"{mark} message")
    ids["ad"] = _new_id(
        await tenant.tool("create_ad", {"adset_id": ids["adset"], "creative_id": ids["creative"], "name": name("ad")}),
        "create_ad",
    )
    creative = _ok(await tenant.tool("get_creative", {"creative_id": ids["creative"]}), "get_creative")
    ids["page_post"] = creative.get("effective_object_story_id") or f"{ids['page']}_1"
    ids["custom_audience"] = _new_id(
        await tenant.tool("create_customer_list_audience", {"name": name("customers")}), "create_customer_list_audience"
    )
    # Hashed as Facebook takes them (SHA-256 of the normalized email): no raw email lands in the uploads folder, which
    # the suite-wide scan of every home would rightly flag.
    rows = "email\n" + "".join(
        hashlib.sha256(f"{label}.person{i}@example.com".encode()).hexdigest() + "\n" for i in range(400)
    )
    status, body = await tenant.upload(f"{label}-customers.csv", rows.encode())
    assert status == 200, body
    ids["uploaded_csv"] = body["file"]
    _ok(await tenant.tool("add_users", {"audience_id": ids["custom_audience"], "source": body["file"]}), "add_users")
    ids["lookalike"] = _ok(
        await tenant.tool(
            "create_lookalike",
            {"origin_audience_id": ids["custom_audience"], "country": "US", "name": name("lookalike")},
        ),
        "create_lookalike",
    )["audience_ids"][0]
    ids["custom_conversion"] = _new_id(
        await tenant.tool(
            "create_custom_conversion",
            {
                "name": name("conversion"),
                "pixel_id": ids["pixel"],
                "event": "Purchase",
                "rule": {"url_contains": "thank-you"},
            },
        ),
        "create_custom_conversion",
    )
    ids["report_run"] = _new_id(
        await tenant.tool("create_report", {"object_id": ids["ad_account"], "date_preset": "last_7d"}), "create_report"
    )

    exported = await tenant.tool("export_insights", {"date_preset": "last_7d", "filename": f"{label}-spend.csv"})
    _ok(exported, "export_insights")
    ids["written_file"] = exported["files"][0]
    ids["written_file_path"] = str(tenant.folder / exported["files"][0])
    world.file_urls += exported["file_urls"]
    ids["folder_path"] = str(tenant.folder)
    ids["folder_relative"] = f"../{tenant.workspace.id}/admonster-reports"
    ids["folder_relative_file"] = f"../{tenant.workspace.id}/{exported['files'][0]}"
    if not full:
        return world

    chart = await tenant.tool("chart_insights", {"date_preset": "last_7d"})
    world.file_urls += _ok(chart, "chart_insights") and chart["file_urls"]
    launch = await _held_then_confirmed(
        tenant,
        "launch_campaign",
        {
            "campaign": {"name": name("launch"), "objective": "OUTCOME_TRAFFIC", "daily_budget": 5000},
            "adset": {"targeting": US},
            "creatives": [
                {
                    "kind": "image",
                    "image": ids["image_hash"],
                    "message": f"{mark} launch message",
                    "link": LINK,
                    "headline": "30% off",
                    "call_to_action": "SHOP_NOW",
                }
            ],
            "page_id": ids["page"],
        },
    )
    ids["launch"] = launch["launch_id"]
    experiment = await _held_then_confirmed(
        tenant,
        "launch_experiment",
        {
            "name": name("experiment"),
            "hypothesis": "A warmer photo gets more clicks",
            "variable": "creative",
            "metric": "ctr",
            "campaign": {"objective": "OUTCOME_TRAFFIC"},
            "adset": {"targeting": US},
            "page_id": ids["page"],
            "variants": [
                {
                    "name": label_,
                    "creative": {
                        "kind": "image",
                        "image": ids["image_hash"],
                        "message": f"Offer {label_}",
                        "link": LINK,
                        "headline": f"Look {label_}",
                    },
                }
                for label_ in "AB"
            ],
            "daily_budget": 3000,
            "duration_days": 7,
        },
    )
    ids["experiment"] = experiment["experiment_id"]
    alert = _ok(
        await tenant.tool(
            "create_alert",
            {"name": name("alert"), "object_id": ids["campaign"], "metric": "cpa", "operator": ">", "threshold": 2000},
        ),
        "create_alert",
    )
    ids["alert"] = alert["alert"]["id"]
    held = await tenant.tool("resume_campaign", {"campaign_id": ids["campaign"]})
    assert (held["data"] or {}).get("error") == "confirmation_required", held
    ids["confirmation"] = held["data"]["confirmation_id"]
    lowered = _ok(await tenant.tool("update_adset", {"adset_id": ids["adset"], "daily_budget": 1500}), "update_adset")
    ids["audit_entry"] = lowered["audit_id"]
    world.thread = f"{label}-thread-{secrets.token_hex(3)}"
    status, chat = await tenant.post("/v1/chat", {"thread_id": world.thread, "message": f"/adsets {ids['campaign']}"})
    assert status == 200 and chat["ok"], chat
    return world


# -- the attempts, derived from the registry ----------------------------------------------------------------------------


def _resolve(node: dict, defs: dict, seen: frozenset) -> tuple[dict, frozenset]:
    ref = node.get("$ref")
    if ref and ref not in seen:
        return defs.get(ref.rsplit("/", 1)[-1], {}), seen | {ref}
    return node, seen


def schema_arguments(schema: dict) -> list[tuple[tuple[str, ...], dict]]:
    """Every argument of an op's schema at any depth, as (path, its schema); "[]" in a path marks a list's items."""
    defs, found = schema.get("$defs", {}), []

    def walk(node: dict, path: tuple[str, ...], seen: frozenset) -> None:
        node, seen = _resolve(node, defs, seen)
        for name, prop in node.get("properties", {}).items():
            found.append(((*path, name), prop))
            walk(prop, (*path, name), seen)
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key, []):
                walk(option, path, seen)
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, (*path, "[]"), seen)

    walk(schema, (), frozenset())
    return found


def is_id_or_path(name: str) -> bool:
    return (
        bool(ID_NAME.match(name) or TOKEN_NAME.match(name)) or name in INPUT_PATH_FIELDS or name in OUTPUT_PATH_FIELDS
    )


def _takes_a_list(prop: dict) -> bool:
    return prop.get("type") == "array" or any(p.get("type") == "array" for p in prop.get("anyOf", []))


def _takes_an_integer(prop: dict) -> bool:
    return prop.get("type") == "integer" or any(p.get("type") == "integer" for p in prop.get("anyOf", []))


def _set_at(args: dict, path: tuple[str, ...], value: Any) -> None:
    """Put value at path in args, making the objects and one-item lists on the way."""
    node: Any = args
    for step, following in zip(path, path[1:]):
        if step == "[]":
            continue
        nested = node.get(step) if isinstance(node, dict) else None
        if following == "[]":
            if not isinstance(nested, list) or not nested or not isinstance(nested[0], dict):
                nested = [{}]
                node[step] = nested
            node = nested[0]
        else:
            if not isinstance(nested, dict):
                nested = {}
                node[step] = nested
            node = nested
    node[path[-1]] = value


def _own_objects(value: Any, world: World, key: str | None = None) -> Any:
    """The op's example with each id and file in it replaced by `world`'s own (placeholders are nobody's), and no
    confirmation or output folder: an attempt then differs from a call that works in exactly one argument."""
    if isinstance(value, dict):
        return {
            k: _own_objects(v, world, k)
            for k, v in value.items()
            if k not in ("confirm", "dry_run") and k not in OUTPUT_PATH_FIELDS
        }
    if isinstance(value, list):
        return [_own_objects(v, world, key) for v in value]
    if key in INPUT_PATH_FIELDS and isinstance(value, str):
        return world.ids[OWN_FILE_KINDS.get(key) or OWN_FILE_KINDS.get(Path(value).suffix.lower(), "uploaded_file")]
    if key in ARG_KINDS and isinstance(value, (str, int)) and not isinstance(value, bool):
        return world.ids.get(ARG_KINDS[key][0], value)
    return value


@dataclass(frozen=True)
class Attempt:
    """One call beta makes: an op with alpha's object of one kind in one argument."""

    op: str
    where: str  # the argument's path, e.g. creatives[].image
    kind: str
    args: dict
    sent: Any  # alpha's value put there

    @property
    def label(self) -> str:
        return f"{self.op}.{self.where}={self.kind}"


def _fit_creative_kind(args: dict, path: tuple[str, ...], beta: World) -> dict:
    """The call reshaped so the attacked field is one its creative kind reads (a video id goes in a video creative, a
    card's image in a carousel, a post in a page_post; a preview of a draft rather than of a made creative)."""
    args = copy.deepcopy(args)
    cut = path.index("cards") if "cards" in path else len(path) - 1
    container: Any = args
    for step in path[:cut]:
        if step == "[]":
            continue
        container = container.setdefault(step, {})
        if isinstance(container, list):
            if not container:
                container.append({})
            container = container[0]
    if not isinstance(container, dict):
        return args
    if "creative_id" in container or "ad_id" in container:  # preview_ad: a draft, with the content beta gives
        container.pop("creative_id", None)
        container.pop("ad_id", None)
        container.update(kind="image", image=beta.ids["image_hash"], link=LINK)
    name = path[cut] if "cards" in path else path[-1]
    for media in ("image", "video", "thumbnail", "object_story_id", "post_id", "cards"):
        container.pop(media, None)
    if name == "cards":
        card = {"link": LINK, "image": beta.ids["image_hash"], "headline": "Card"}
        container.update(kind="carousel", cards=[dict(card), dict(card)])
        if path[-1] == "video":
            container["cards"][0].pop("image")
    elif name in ("video", "thumbnail"):
        container.update(kind="video", video=beta.ids["video"], thumbnail=beta.ids["image_hash"])
    elif name in ("object_story_id", "post_id"):
        container["kind"] = "page_post"
    else:
        container.update(kind="image", image=beta.ids["image_hash"])
    return args


def _fit_level_and_items(args: dict, path: tuple[str, ...], kind: str, schema: dict, base: dict) -> None:
    """An object id goes with its level (an account-level alert for an ad account); a list item made for the attack
    (bulk updates[]) carries the call's own values for the fields it shares with the call (status, budgets)."""
    level = schema.get("properties", {}).get("level", {})
    levels = level.get("enum") or [v for option in level.get("anyOf", []) for v in option.get("enum", [])]
    if path[-1] in ("object_id", "object_ids") and LEVEL_OF_KIND.get(kind) in levels:
        args["level"] = LEVEL_OF_KIND[kind]
    made = isinstance(args.get(path[0]), list) and set(args[path[0]][0]) == {path[-1]}  # an item made for the attack
    if len(path) == 3 and path[1] == "[]" and made:
        items = dict(schema_arguments(schema))
        shared = [
            k
            for (outer, *rest), _ in items.items()
            if outer == path[0] and len(rest) == 2
            for k in [rest[1]]
            if k in base and k != path[-1]
        ]
        args[path[0]][0].update({k: base[k] for k in shared})
        for k in shared:  # given once, in the item
            args.pop(k, None)


def _passes_validation(spec: Any, args: dict) -> bool:
    try:
        validate_args(spec, {k: v for k, v in args.items() if k not in GATE_ARGS})
    except ValidationError:
        return False
    return True


def registry_attempts(alpha: World, beta: World) -> list[Attempt]:
    """One attempt per op, id/path argument and kind of alpha's object that argument names. Of the shapes of the call
    (beta's working call with the one argument swapped; that call with only its required arguments; either with the
    creative kind fitted to the argument), the first that passes the op's argument model is sent: an attempt that
    stops at argument validation proves nothing."""
    attempts = []
    for spec in REGISTRY.specs():
        schema = REGISTRY.args_schema(spec)
        base = _own_objects(copy.deepcopy(spec.example or _example_from_schema(schema)), beta)
        required = {k: v for k, v in base.items() if k in schema.get("required", [])}
        for path, prop in schema_arguments(schema):
            name = path[-1]
            if not is_id_or_path(name) or name in NOT_TENANT_IDS:
                continue
            for kind in ARG_KINDS[name]:
                sent = alpha.ids[kind]
                value = [sent] if _takes_a_list(prop) and not isinstance(sent, list) else sent
                if isinstance(sent, int) and not _takes_an_integer(prop):
                    value = str(sent)
                shapes = []
                media = "cards" in path or name in CREATIVE_MEDIA_FIELDS  # its creative kind decides if it is read
                # An output folder matters only when the op writes: also try with its switches on (all=true, png=true).
                switched = {
                    **base,
                    **{
                        k: True
                        for k, p in schema.get("properties", {}).items()
                        if p.get("type") == "boolean" and k not in GATE_ARGS
                    },
                }
                for start in (base, required) + ((switched,) if name in OUTPUT_PATH_FIELDS else ()):
                    for fitted in (True, False) if media else (False, True):
                        args = _fit_creative_kind(start, path, beta) if fitted else copy.deepcopy(start)
                        _set_at(args, path, value)
                        _fit_level_and_items(args, path, kind, schema, base)
                        shapes.append(args)
                if name in INPUT_PATH_FIELDS and (kind.endswith("_path") or _is_file_name(kind)):
                    chosen = shapes[0]  # a path is refused before validation (fb_utils.confine_input_paths)
                else:
                    chosen = next((a for a in shapes if _passes_validation(spec, a)), shapes[0])
                attempts.append(Attempt(spec.name, ".".join(path).replace(".[]", "[]"), kind, chosen, sent))
    # The gate's own ops, which are not in the registry: confirm and reject a held call.
    for op in ("confirm", "reject"):
        attempts.append(
            Attempt(op, "confirm", "confirmation", {"confirm": alpha.ids["confirmation"]}, alpha.ids["confirmation"])
        )
    return attempts


def command_attempts(alpha: World) -> list[tuple[str, str, Any, str]]:
    """Chat commands (`/undo N`, `/confirm ID`, `/pause ID`, …) whose words name one of alpha's objects:
    (line, kind, value sent, command)."""
    lines = []
    for command, bot in BOT_COMMANDS.items():
        spec = REGISTRY.get(bot.op)
        example = (spec.example or _example_from_schema(REGISTRY.args_schema(spec))) if spec else {}
        for i, field_name in enumerate(bot.positional):
            if field_name not in ARG_KINDS:
                continue
            for kind in ARG_KINDS[field_name]:
                words = [
                    str(alpha.ids[kind]) if j == i else str(example.get(other, "1"))
                    for j, other in enumerate(bot.positional[: max(i + 1, len(bot.positional))])
                ]
                lines.append((f"/{command} " + " ".join(words), kind, alpha.ids[kind], command))
    return lines


def _is_file_name(kind: str) -> bool:
    """A kind whose value is the name of a file alpha uploaded or an op wrote for alpha (random token, then a name)."""
    return kind.startswith(("uploaded_", "written_")) and not kind.endswith("_path")


# -- verdicts -------------------------------------------------------------------------------------------------------------


CRASH_TEXT = ("Traceback", "Internal error", "RecursionError", "OverflowError", "TypeError", "KeyError")


@dataclass
class Verdicts:
    """Every attempt's outcome; `successes` are the attempts that got anything of alpha's."""

    alpha: World
    home: str
    attempts: int = 0
    successes: list[str] = field(default_factory=list)
    by_interface: dict[str, int] = field(default_factory=dict)
    kinds_tried: dict[str, set[str]] = field(default_factory=dict)
    refused_by_validation: list[str] = field(default_factory=list)
    confirmed_holds: int = 0

    def secrets(self) -> list[str]:
        """What of alpha's must not be in beta's answers: names, Graph ids, hashes, file names, the thread, links."""
        found = set(self.alpha.names) | {self.alpha.thread} | {u.split("/")[-2] for u in self.alpha.file_urls}
        for kind, value in self.alpha.ids.items():
            if _is_file_name(kind):
                found.add(Path(value).name)  # its random token makes it alpha's alone
            elif kind not in STORE_INTEGER_KINDS and not kind.endswith("_path") and not kind.startswith("folder"):
                found.add(str(value))  # (server paths are caught by the home check, folders hold no secret)
        return sorted(found, key=len, reverse=True)

    def judge(
        self, interface: str, label: str, kind: str, sent: Any, status: int, ok: bool, text: str, answer: Any
    ) -> None:
        self.attempts += 1
        self.by_interface[interface] = self.by_interface.get(interface, 0) + 1
        self.kinds_tried.setdefault(kind, set()).add(interface)
        problems = []
        if status >= 500:
            problems.append(f"HTTP {status}")
        if ok and kind not in MAY_SUCCEED_KINDS:
            problems.append("ok")
        whole = json.dumps(answer, default=str)
        if any(word in whole for word in CRASH_TEXT):
            problems.append("crash text")
        # Nothing of alpha's in the answer, but the echo of what beta sent (a path beta typed may be named back).
        echo_free = whole
        echoes = {str(sent), str(sent)[:80], str(sent)[:60]} | (
            {Path(str(sent)).name} if _is_file_name(kind) else set()
        )
        echoes |= {part for part in str(sent).split("_") if len(part) >= 8}  # a post id is <page id>_<post id>
        for value in sorted(echoes, key=len, reverse=True):  # errors quote at most 80 characters of a value
            echo_free = echo_free.replace(value, "<sent>")
        if self.home in echo_free:
            problems.append("a server path")
        first = text.strip().splitlines()[0] if text.strip() else ""
        held = (
            '"error": "confirmation_required"' in whole
        )  # a question (/confirm, /reject): beta's confirm is judged next
        if not ok and not held and (not first.startswith("ERROR ") or ("Fix:" not in first and "Fix:" not in text)):
            problems.append(f"not one clear line: {text[:120]!r}")
        leaked = [s for s in self.secrets() if re.search(rf"(?<![0-9A-Za-z]){re.escape(s)}(?![0-9A-Za-z])", echo_free)]
        if leaked:
            problems.append(f"alpha's {leaked[:3]} in the answer")
            at = echo_free.find(leaked[0])
            problems.append(f"near {echo_free[max(0, at - 80) : at + 40]!r}")
        if problems:
            self.successes.append(f"{interface} {label}: {'; '.join(problems)} :: {text[:200]!r}")
        elif re.match(r"ERROR validation: \w+: ", first) and "unknown argument" not in first:
            self.refused_by_validation.append(f"{label}: {first[:160]}")


async def mcp_call(tenant: Caller, op: str, args: dict, *, per_op: bool = False) -> tuple[int, Any]:
    """tools/call on /mcp: the `facebook` tool, or (per_op) the op's own tool (`admonster serve` offers both)."""
    params = {"name": op, "arguments": args} if per_op else {"name": "facebook", "arguments": {"op": op, "args": args}}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    return await tenant.post("/mcp", call, {"Accept": "application/json, text/event-stream"})


def _mcp_verdict(answer: Any) -> tuple[bool, str]:
    result = answer.get("result", {}) if isinstance(answer, dict) else {}
    text = (result.get("content") or [{}])[0].get("text", "") if result else str(answer)
    return not result.get("isError", False) if result else True, text


def _held(answer: Any) -> str | None:
    """The confirmation id of a call the safety gate held, if it was held."""
    data = answer.get("data") if isinstance(answer, dict) else None
    return (
        data.get("confirmation_id") if isinstance(data, dict) and data.get("error") == "confirmation_required" else None
    )


async def attack(beta: Caller, verdicts: Verdicts, attempts: list[Attempt], thread: str) -> None:
    for attempt in attempts:
        status, answer = await beta.post("/v1/tools/facebook", {"op": attempt.op, "args": attempt.args})
        ok, text = (answer.get("ok"), answer.get("text", "")) if isinstance(answer, dict) else (True, str(answer))
        verdicts.judge("http", attempt.label, attempt.kind, attempt.sent, status, bool(ok), text, answer)
        held = _held(answer)
        if held:  # the gate is no wall between tenants: beta confirms its own held call, and that must fail too
            verdicts.confirmed_holds += 1
            status, answer = await beta.post("/v1/tools/facebook", {"op": "confirm", "args": {"confirm": held}})
            verdicts.judge(
                "http",
                f"{attempt.label} (confirmed)",
                attempt.kind,
                attempt.sent,
                status,
                bool(answer.get("ok")),
                answer.get("text", ""),
                answer,
            )

        status, answer = await mcp_call(beta, attempt.op, attempt.args)
        verdicts.judge("mcp", attempt.label, attempt.kind, attempt.sent, status, *_mcp_verdict(answer), answer)
        if REGISTRY.get(attempt.op) is not None:  # the op's own MCP tool
            status, answer = await mcp_call(beta, attempt.op, attempt.args, per_op=True)
            verdicts.judge("mcp-op", attempt.label, attempt.kind, attempt.sent, status, *_mcp_verdict(answer), answer)

        line = f"/tool {attempt.op} {json.dumps(attempt.args)}"
        status, answer = await beta.post("/v1/chat", {"thread_id": thread, "message": line})
        reply = answer.get("reply", "") if isinstance(answer, dict) else str(answer)
        verdicts.judge(
            "chat",
            attempt.label,
            attempt.kind,
            attempt.sent,
            status,
            bool(answer.get("ok")) if isinstance(answer, dict) else True,
            reply,
            answer,
        )


# -- what alpha owns, read as alpha ---------------------------------------------------------------------------------------


# Fields that move by themselves while the sandbox delivers (spend, counts, times of reading): not alpha's doing.
VOLATILE = re.compile(
    r"^(?:spend|amount_spent|balance|budget_remaining|impressions|clicks|reach|insights|stats|"
    r"updated_time|effective_status|issues_info|delivery\w*|last_fired\w*|approximate_count\w*|"
    r"\w+_count|count_\w+)$"
)


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not VOLATILE.search(str(k))}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


async def snapshot(alpha: World) -> dict[str, Any]:
    """Everything alpha owns as alpha reads it (Graph objects, store records, the thread, file bytes)."""
    t, ids = alpha.tenant, alpha.ids
    reads = {
        "campaign": ("get_campaign", {"campaign_id": ids["campaign"]}),
        "adset": ("get_adset", {"adset_id": ids["adset"]}),
        "ad": ("get_ad", {"ad_id": ids["ad"]}),
        "creative": ("get_creative", {"creative_id": ids["creative"]}),
        "custom_audience": ("get_audience", {"audience_id": ids["custom_audience"]}),
        "lookalike": ("get_audience", {"audience_id": ids["lookalike"]}),
        "saved_audience": ("get_saved_audience", {"saved_audience_id": ids["saved_audience"]}),
        "pixel": ("get_pixel", {"pixel_id": ids["pixel"]}),
        "ad_account": ("get_ad_account", {"ad_account_id": ids["ad_account"]}),
        "account_users": ("list_account_users", {"ad_account_id": ids["ad_account"]}),
        "campaigns": ("list_campaigns", {"ad_account_id": ids["ad_account"], "all_pages": True}),
        "adsets": ("list_adsets", {"ad_account_id": ids["ad_account"], "all_pages": True}),
        "ads": ("list_ads", {"ad_account_id": ids["ad_account"], "all_pages": True}),
        "creatives": ("list_creatives", {"ad_account_id": ids["ad_account"]}),
        "images": ("list_images", {"ad_account_id": ids["ad_account"]}),
        "audiences": ("list_audiences", {"ad_account_id": ids["ad_account"]}),
        "custom_conversions": ("list_custom_conversions", {"ad_account_id": ids["ad_account"]}),
        "pixels": ("list_pixels", {"ad_account_id": ids["ad_account"]}),
        "launch": ("get_launch", {"launch_id": ids["launch"]}),
        "experiments": ("list_experiments", {}),
        "alerts": ("list_alerts", {}),
        "confirmations": ("list_confirmations", {}),
        "audit": ("audit_log", {"limit": 200}),
        "selections": ("token_status", {}),
    }
    seen: dict[str, Any] = {}
    for what, (op, args) in reads.items():
        answer = await t.tool(op, args)
        assert answer["ok"], f"alpha reads {what}: {answer['text']}"
        seen[what] = _stable(answer["data"])
    status, thread = await t.get(f"/v1/threads/{alpha.thread}")
    assert status == 200
    seen["thread"] = json.loads(thread)["messages"]
    seen["files"] = {
        str(p.relative_to(t.folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(t.folder.rglob("*"))
        if p.is_file()
    }
    return seen


def _differences(before: Any, after: Any, where: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            d
            for k in sorted(set(before) | set(after))
            for d in _differences(before.get(k), after.get(k), f"{where}.{k}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (b, a) in enumerate(zip(before, after)) for d in _differences(b, a, f"{where}[{i}]")]
    return [] if before == after else [f"{where}: {str(before)[:120]} -> {str(after)[:120]}"]


# -- the test ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
async def tenants(tmp_path):
    async with workspaces_on_a_server(tmp_path) as (url, runtime, made):
        yield [Caller(url, runtime, workspace, key) for workspace, key in made]


def test_every_id_and_path_argument_has_a_kind():
    """A new op whose argument names an object (or a file) fails here until ARG_KINDS says what it names."""
    arguments = {path[-1] for spec in REGISTRY.specs() for path, _ in schema_arguments(REGISTRY.args_schema(spec))}
    ids_and_paths = {name for name in arguments if is_id_or_path(name)}
    assert ids_and_paths - set(ARG_KINDS) - set(NOT_TENANT_IDS) == set(), "add these to ARG_KINDS (or NOT_TENANT_IDS)"
    looks_like_a_path = {name for name in arguments if PATH_LIKE_NAME.search(name)}
    assert looks_like_a_path <= INPUT_PATH_FIELDS | OUTPUT_PATH_FIELDS, "a path argument the confinement does not know"
    assert set(ARG_KINDS) - ids_and_paths == set(), "ARG_KINDS names arguments no op has any more"
    assert {"confirm", "audit_id", "launch_id", "experiment_id", "alert_id"} <= ids_and_paths


async def test_beta_gets_nothing_of_alphas(tenants, capsys):
    alpha_tenant, beta_tenant = tenants
    async with aiohttp.ClientSession() as session:  # videos are ready at once, so creatives can use them
        async with session.post(
            f"{alpha_tenant.runtime.sandbox_url}/__sandbox/config", json={"video_processing_seconds": 0}
        ) as resp:
            assert resp.status == 200
    alpha = await build_world(alpha_tenant, "alpha", full=True)
    beta = await build_world(beta_tenant, "beta", full=True)
    shared = {k: v for k, v in alpha.ids.items() if k not in STORE_INTEGER_KINDS and v in beta.ids.values()}
    assert not shared, f"the two worlds share {shared}"
    before = await snapshot(alpha)
    seen = json.dumps(before, default=str)  # the snapshot sees what alpha made, so a change to it would show
    unseen = [name for name in alpha.names if name not in seen]
    assert unseen == [n for n in alpha.names if n.endswith("planned test")], unseen  # a plan file alpha never launched
    assert alpha.ids["confirmation"] in seen and before["thread"] and before["files"] and before["audit"]["entries"]
    verdicts = Verdicts(alpha, str(alpha_tenant.runtime.settings.home))

    attempts = registry_attempts(alpha, beta)
    await attack(beta_tenant, verdicts, attempts, thread=f"beta-{secrets.token_hex(3)}")

    # Chat commands whose words name alpha's objects (/undo N, /confirm ID, /experiment N, /pause ID, …).
    for line, kind, sent, command in command_attempts(alpha):
        status, answer = await beta_tenant.post("/v1/chat", {"thread_id": "beta-commands", "message": line})
        verdicts.judge(
            "chat-command", f"/{command}", kind, sent, status, bool(answer.get("ok")), answer.get("reply", ""), answer
        )

    # Alpha's thread: beta reads nothing of it and writes into its own thread of the same name, never alpha's.
    status, body = await beta_tenant.get(f"/v1/threads/{alpha.thread}")
    assert status == 200 and json.loads(body)["messages"] == [], body[:300]
    status, answer = await beta_tenant.post("/v1/chat", {"thread_id": alpha.thread, "message": "/alerts"})
    assert status == 200
    verdicts.attempts += 2
    # Alpha's file links: 404 to beta, and nothing of alpha's in the answer.
    for link in alpha.file_urls:
        status, body = await beta_tenant.get(link)
        verdicts.attempts += 1
        if status != 404 or any(s in body.decode(errors="replace") for s in alpha.names):
            verdicts.successes.append(f"file {link}: HTTP {status}")

    after = await snapshot(alpha)
    changed = _differences(before, after)
    with capsys.disabled():
        print(
            f"\ncross-tenant: {verdicts.attempts} attempts ({len(attempts)} from the registry, "
            f"{dict(sorted(verdicts.by_interface.items()))}), {len(verdicts.successes)} successes, "
            f"{len(verdicts.kinds_tried)} kinds, {len(verdicts.refused_by_validation)} stopped by argument validation, "
            f"{verdicts.confirmed_holds} held calls confirmed by beta"
        )
    assert verdicts.successes == [], "\n".join(verdicts.successes[:40])
    assert changed == [], "alpha's objects changed:\n" + "\n".join(changed[:40])
    # Every attempt reached the op: none stopped at the argument model, where it would prove nothing.
    assert verdicts.refused_by_validation == [], "\n".join(verdicts.refused_by_validation)
    # Coverage: every kind of alpha's object was tried, over every interface.
    every_kind = {kind for kinds in ARG_KINDS.values() for kind in kinds}
    assert every_kind <= set(alpha.ids), every_kind - set(alpha.ids)
    for kind in every_kind:
        assert {"http", "mcp", "mcp-op", "chat"} <= verdicts.kinds_tried.get(kind, set()), (
            kind,
            verdicts.kinds_tried.get(kind),
        )
    for kind in ("confirmation", "audit_entry", "launch", "experiment", "alert"):
        assert "chat-command" in verdicts.kinds_tried[kind] or kind in ("launch", "alert"), kind
    assert len(attempts) >= 250 and verdicts.attempts >= 4 * len(attempts) - 2, (len(attempts), verdicts.attempts)


async def test_sign_in_links_across_browsers_give_nothing(tmp_path):
    """One case each way (tests/test_signin_tenants.py has the detail): a link beta made, completed in alpha's browser,
    and a link alpha made, completed in beta's browser, are refused and change no token."""
    async with running_server(tmp_path) as (url, runtime):
        alpha, alpha_key = await signin_workspace(runtime, "alpha", connected=True)
        beta, beta_key = await signin_workspace(runtime, "beta", connected=False)
        async with browser() as alpha_browser, browser() as beta_browser:
            assert (await Caller(url, runtime, alpha, alpha_key).tool("token_status", {}))["ok"]
            alpha_token = await runtime.store.load_token(alpha.id)
            beta_link = await make_link(beta_browser, url, beta_key)
            alpha_link = await make_link(alpha_browser, url, alpha_key, switch=True)  # even a link allowed to switch
            status, page = await consent(alpha_browser, beta_link)  # alpha's person completes beta's link
            assert status == 403 and "started in another browser" in page, page
            assert await runtime.store.load_token(beta.id) is None  # beta got no token of alpha's person
            status, page = await consent(beta_browser, alpha_link)  # beta's person completes alpha's link
            assert status == 403 and "started in another browser" in page, page
            assert (await runtime.store.load_token(alpha.id)).token == alpha_token.token  # alpha not rebound
            assert "Traceback" not in page and str(runtime.settings.home) not in page

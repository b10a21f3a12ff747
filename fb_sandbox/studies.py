"""Ad studies (split tests): `POST/GET /{business_id}/ad_studies`, `GET /act_x/ad_studies` (also on campaigns and
ad sets), `GET/POST/DELETE /{study_id}`, `GET /{study_id}/cells`, `GET /{cell_id}`.

Written from Meta's "Ad Study" reference (the curl example: `name`, `description`, `start_time`, `end_time` in
unix seconds, `type=SPLIT_TEST`, `cells=[{name, treatment_percentage, adsets: [...]}]` to `/{business_id}/ad_studies`;
reading `/{study_id}/cells?fields=name,treatment_percentage,campaigns,adsets,adaccounts`) and the SDK's `AdStudy` /
`AdStudyCell` classes (fields, `AdStudy.Type`). The validation rules and their wording are the sandbox's own
(docs/sandbox.md "Split tests": which parts are Facebook's and which are ours).

A study is an object of type `adstudy` (parent: the business); its cells are `adstudycell` objects (parent: the
study) holding the campaign or ad set ids they name. `split_windows` tells delivery.py which ad sets are split, when,
and by how much: while a SPLIT_TEST runs (start_time <= t < end_time, and before canceled_time), a cell's ad sets
reach only treatment_percentage % of their audience, a slice of its own (cells never share people).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any, Literal, overload

from facebook_business.adobjects.adstudy import AdStudy
from facebook_business.adobjects.adstudyobjective import AdStudyObjective

from .business import business_role, require_scope
from .campaigns import CONTROL_PARAMS
from .clock import iso, parse_time
from .context import Ctx
from .errors import GraphError, not_found, param_error
from .fields import parse_fields, select
from .paging import paginate
from .params import to_int
from .store import Obj


def _enum(klass) -> list[str]:
    return sorted(v for k, v in vars(klass).items() if not k.startswith("_") and isinstance(v, str))


TYPES = _enum(AdStudy.Type)
OBJECTIVE_TYPES = _enum(AdStudyObjective.Type)
SPLIT_TEST = AdStudy.Type.split_test
MIN_CELLS, MAX_CELLS = 2, 5  # a SPLIT_TEST compares 2 to 5 cells
MAX_OTHER_CELLS = 100  # other study types: the sandbox's own bound
MAX_DAYS = 30  # a split test lasts at most 30 days
DAY = 86400
MAX_NAME = 255
DEFAULT_FIELDS = ["id", "name"]
CELL_DEFAULT_FIELDS = ["id", "name", "treatment_percentage"]
UPDATABLE = {"name", "description", "end_time"}


# ---- errors


def _rule(title: str, message: str, field: str = "cells") -> GraphError:
    """A study rule refused: code 100 with Facebook's error_user_title / error_user_msg shape, blaming `field`."""
    return GraphError("Invalid parameter", 100, user_title=title, user_msg=message, blame=field)


# ---- loading and visibility


def load_study(ctx: Ctx, obj_id: str, types: tuple[str, ...] = ("adstudy", "adstudycell")) -> Obj:
    """A study or cell the caller may see: a member of the study's business. 100/33 otherwise."""
    obj = ctx.store.get(obj_id)
    if obj is None or obj.type not in types:
        raise not_found(obj_id)
    study = obj if obj.type == "adstudy" else ctx.store.get(obj.parent_id or "")
    business = ctx.store.get(study.get("_business_id", "")) if study is not None else None
    if business is None or not ctx.can_see(business):
        raise not_found(obj_id)
    return obj


def _business(ctx: Ctx, business_id: str, *, write: bool) -> Obj:
    if write:
        require_scope(ctx, "ads_management")
    else:
        require_scope(ctx, "ads_management", "ads_read", "business_management")
    business = ctx.load(business_id, types=("business",))
    if write and business_role(ctx, business) is None:
        raise GraphError(f"(#200) You need a role in business {business_id} to manage its ad studies", 200)
    return business


def _cells(ctx: Ctx, study: Obj) -> list[Obj]:
    return ctx.store.list("adstudycell", parent_id=study["id"])


# ---- rendering


def _subfields(raw: Any, name: str) -> Sequence[str]:
    """The nested field list of `name{a,b}` in a fields= value ([] when none)."""
    if raw is None:
        return []
    text = ",".join(str(v) for v in raw) if isinstance(raw, list) else str(raw)
    match = re.search(r"(?:^|,)\s*" + re.escape(name) + r"\s*\{", text)
    if not match:
        return []
    depth, start = 1, match.end()
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return parse_fields(text[start:i])
    return parse_fields(text[start:])


def _person(ctx: Ctx, user_id: str | None) -> dict | None:
    user = ctx.store.get(user_id or "")
    return {"id": user["id"], "name": user.get("name", "")} if user is not None else None


def _edge(ids: list[str]) -> dict:
    return {"data": [{"id": i} for i in ids]}


def render_cell(ctx: Ctx, cell: Obj, names: Sequence[str]) -> dict:
    def value(name: str) -> Any:
        if name == "campaigns":
            return _edge(cell.get("_campaign_ids", []))
        if name == "adsets":
            return _edge(cell.get("_adset_ids", []))
        if name == "adaccounts":
            return _edge(_cell_accounts(ctx, cell))
        if name == "ad_entities_count":
            return len(cell.get("_campaign_ids", [])) + len(cell.get("_adset_ids", []))
        if name.startswith("_"):
            return None
        return cell.get(name)

    return select("AdStudyCell", names, CELL_DEFAULT_FIELDS, value)


def _cell_accounts(ctx: Ctx, cell: Obj) -> list[str]:
    out: list[str] = []
    for obj_id in [*cell.get("_campaign_ids", []), *cell.get("_adset_ids", [])]:
        obj = ctx.store.get(obj_id)
        if obj is not None and obj.account_id and obj.account_id not in out:
            out.append(obj.account_id)
    return out


def render_study(ctx: Ctx, study: Obj, names: Sequence[str]) -> dict:
    def value(name: str) -> Any:
        if name in ("start_time", "end_time", "canceled_time", "cooldown_start_time", "observation_end_time"):
            return iso(study[name]) if study.get(name) is not None else None
        if name == "created_time":
            return iso(study.created)
        if name == "updated_time":
            return iso(study.updated)
        if name == "business":
            business = ctx.store.get(study.get("_business_id", ""))
            return {"id": business["id"], "name": business["name"]} if business is not None else None
        if name == "created_by":
            return _person(ctx, study.get("_created_by"))
        if name == "updated_by":
            return _person(ctx, study.get("_updated_by"))
        if name == "cells":
            wanted = _subfields(ctx.p.get("fields"), "cells")
            return [render_cell(ctx, c, wanted) for c in _cells(ctx, study)]
        if name == "objectives":
            return list(study.get("objectives") or [])
        if name.startswith("_"):
            return None
        return study.get(name)

    return select("AdStudy", names, DEFAULT_FIELDS, value)


# ---- reading


def read_study(ctx: Ctx, study: Obj) -> dict:
    require_scope(ctx, "ads_management", "ads_read", "business_management")
    return render_study(ctx, study, parse_fields(ctx.p.get("fields")))


def read_cell(ctx: Ctx, cell: Obj) -> dict:
    require_scope(ctx, "ads_management", "ads_read", "business_management")
    return render_cell(ctx, cell, parse_fields(ctx.p.get("fields")))


def list_cells(ctx: Ctx) -> dict:
    require_scope(ctx, "ads_management", "ads_read", "business_management")
    study = load_study(ctx, ctx.match[0], ("adstudy",))
    names = parse_fields(ctx.p.get("fields"))
    select("AdStudyCell", names, CELL_DEFAULT_FIELDS, lambda n: None)
    return paginate(ctx, _cells(ctx, study), lambda c: render_cell(ctx, c, names))


def _newest_first(objs: list[Obj]) -> list[Obj]:
    return sorted(objs, key=lambda o: o.seq, reverse=True)


def _page(ctx: Ctx, studies: list[Obj]) -> dict:
    names = parse_fields(ctx.p.get("fields"))
    select("AdStudy", names, DEFAULT_FIELDS, lambda n: None)
    return paginate(ctx, _newest_first(studies), lambda s: render_study(ctx, s, names))


def list_studies(ctx: Ctx) -> dict:
    """GET /{business_id}/ad_studies, or the studies naming a campaign / ad set (GET /{id}/ad_studies)."""
    node_id = ctx.match[0]
    obj = ctx.store.get(node_id)
    if obj is not None and obj.type in ("campaign", "adset"):
        require_scope(ctx, "ads_management", "ads_read", "business_management")
        obj = ctx.load(node_id, types=("campaign", "adset"))
        return _page(ctx, [s for s in _visible_studies(ctx) if _names_object(ctx, s, obj)])
    business = _business(ctx, node_id, write=False)
    return _page(ctx, ctx.store.list("adstudy", parent_id=business["id"]))


def list_account_studies(ctx: Ctx) -> dict:
    """GET /act_x/ad_studies: the studies whose cells name a campaign or ad set of the account."""
    require_scope(ctx, "ads_management", "ads_read", "business_management")
    account = ctx.load_account(ctx.match[0])
    wanted = []
    for study in _visible_studies(ctx):
        if any(
            _object_account(ctx, oid) == account["id"]
            for cell in _cells(ctx, study)
            for oid in [*cell.get("_campaign_ids", []), *cell.get("_adset_ids", [])]
        ):
            wanted.append(study)
    return _page(ctx, wanted)


def _visible_studies(ctx: Ctx) -> list[Obj]:
    out = []
    for study in ctx.store.list("adstudy"):
        business = ctx.store.get(study.get("_business_id", ""))
        if business is not None and ctx.can_see(business):
            out.append(study)
    return out


def _object_account(ctx: Ctx, obj_id: str) -> str | None:
    obj = ctx.store.get(obj_id)
    return obj.account_id if obj is not None else None


def _names_object(ctx: Ctx, study: Obj, obj: Obj) -> bool:
    """Does a study name this campaign or ad set (directly, or an ad set through its campaign and back)?"""
    for cell in _cells(ctx, study):
        campaigns, adsets = set(cell.get("_campaign_ids", [])), set(cell.get("_adset_ids", []))
        if obj["id"] in campaigns or obj["id"] in adsets:
            return True
        if obj.type == "adset" and obj.get("campaign_id") in campaigns:
            return True
        if obj.type == "campaign" and any((ctx.store.get(a) or {}).get("campaign_id") == obj["id"] for a in adsets):
            return True
    return False


# ---- validation helpers


@overload
def _time(ctx: Ctx, name: str, *, required: Literal[True]) -> float: ...
@overload
def _time(ctx: Ctx, name: str, *, required: bool) -> float | None: ...
def _time(ctx: Ctx, name: str, *, required: bool) -> float | None:
    raw = ctx.p.get(name)
    if raw is None or raw == "":
        if required:
            raise param_error(f"The parameter {name} is required", field=name)
        return None
    value = parse_time(raw)
    if value is None:
        raise param_error(f"Param {name} must be a unix time in seconds or an ISO-8601 time", field=name)
    return value


def _lenient_json(value: Any) -> Any:
    """cells as sent: JSON, or the relaxed form of Meta's curl example (`[{name:"Group A",adsets:[1]}]`)."""
    if not isinstance(value, str):
        return value
    with contextlib.suppress(ValueError):  # strict JSON first; then the relaxed form
        return json.loads(value)
    relaxed = re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:", r'\1"\2":', value)
    try:
        return json.loads(relaxed)
    except ValueError:
        return None


def _check_window(start: float, end: float, now: float) -> None:
    if end <= now:
        raise _rule(
            "Study End Time In The Past",
            f"The study's end_time ({iso(end)}) must be in the future (now: {iso(now)}).",
            "end_time",
        )
    if end <= start:
        raise _rule(
            "Study End Time Before Start Time",
            f"The study's end_time ({iso(end)}) must be after its start_time ({iso(start)}).",
            "end_time",
        )
    if end - start > MAX_DAYS * DAY:
        raise _rule(
            "Study Too Long",
            f"A split test can run for at most {MAX_DAYS} days; this one would run "
            f"{(end - start) / DAY:.1f} days ({iso(start)} to {iso(end)}).",
            "end_time",
        )


def _ids(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _rule("Cell Has No Ad Objects", f"{where} must be a non-empty list of ids.")
    out = []
    for item in value:
        text = str(item).strip() if isinstance(item, (str, int)) and not isinstance(item, bool) else ""
        if not text.isdigit():
            raise _rule("Ad Object Not Found", f"{where} contains {item!r}, which is not an object id.")
        if text not in out:
            out.append(text)
    return out


def _check_object(ctx: Ctx, obj_id: str, kind: str, where: str, business: Obj) -> Obj:
    """`kind` is campaign or adset: it must exist (not deleted), be visible, in an account of `business` that
    the caller may advertise on."""
    label = "campaign" if kind == "campaign" else "ad set"
    obj = ctx.store.get(obj_id)
    if obj is None or not ctx.can_see(obj) or obj.get("status") == "DELETED":
        raise _rule("Ad Object Not Found", f"{where}: {label} {obj_id} does not exist or you can't use it.")
    if obj.type != kind:
        raise _rule("Ad Object Not Found", f"{where}: {obj_id} is not a {label} (it is a {obj.type}).")
    account = ctx.store.get(obj.account_id or "")
    if account is None or account.get("_business_id") != business["id"]:
        raise _rule(
            "Ad Object Of Another Business",
            f"{where}: {label} {obj_id} belongs to ad account {obj.account_id}, which is not an ad account "
            f"of business {business['id']}.",
        )
    tasks = account.get("_user_tasks", {}).get(ctx.principal.user_id, [])
    if not {"ADVERTISE", "MANAGE"} & set(tasks):
        raise GraphError(
            f"(#200) You need the ADVERTISE task on ad account {obj.account_id} to put its {label} {obj_id} in a study",
            200,
        )
    return obj


def _entities(store, campaign_ids: list[str], adset_ids: list[str]) -> tuple[set[str], set[str]]:
    """(campaigns, ad sets) a cell covers: its campaigns with their ad sets' campaigns, its ad sets with the ad
    sets of its campaigns."""
    campaigns, adsets = set(campaign_ids), set(adset_ids)
    for aid in adset_ids:
        obj = store.get(aid)
        if obj is not None and obj.get("campaign_id"):
            campaigns.add(obj["campaign_id"])
    for cid in campaign_ids:
        adsets.update(a["id"] for a in store.list("adset", parent_id=cid))
    return campaigns, adsets


def _overlap(
    a: tuple[set[str], set[str]], b: tuple[set[str], set[str]], a_direct: set[str], b_direct: set[str]
) -> set[str]:
    """Objects two cells share: a campaign of one that the other names (directly or through its ad sets), or an
    ad set both cover."""
    return (a[1] & b[1]) | (a_direct & b[0]) | (b_direct & a[0])


def _window(study: Obj) -> tuple[float, float]:
    """When a study splits delivery: [start_time, end_time), cut at canceled_time."""
    end = float(study["end_time"])
    if study.get("canceled_time") is not None:
        end = min(end, float(study["canceled_time"]))
    return float(study["start_time"]), end


def _check_exclusive(ctx: Ctx, cells: list[dict], start: float, end: float, skip: str | None = None) -> None:
    """An object can be in only one split test at a time, and in only one cell of a study."""
    store = ctx.store
    mine = [(_entities(store, c["campaigns"], c["adsets"]), set(c["campaigns"]) | set(c["adsets"])) for c in cells]
    for i in range(len(mine)):
        for j in range(i + 1, len(mine)):
            shared = _overlap(mine[i][0], mine[j][0], mine[i][1], mine[j][1])
            if shared:
                raise _rule(
                    "Ad Object In Several Cells",
                    f"cells[{i}] and cells[{j}] both cover {', '.join(sorted(shared))}: each campaign or "
                    "ad set can be in only one cell of a study.",
                )
    for other in store.list("adstudy"):
        if other["id"] == skip or other.get("type") != SPLIT_TEST:
            continue
        o_start, o_end = _window(other)
        if not (start < o_end and o_start < end):
            continue
        for cell in store.list("adstudycell", parent_id=other["id"]):
            theirs = (
                _entities(store, cell.get("_campaign_ids", []), cell.get("_adset_ids", [])),
                set(cell.get("_campaign_ids", [])) | set(cell.get("_adset_ids", [])),
            )
            for i, (entities, direct) in enumerate(mine):
                shared = _overlap(entities, theirs[0], direct, theirs[1])
                if shared:
                    raise _rule(
                        "Ad Object Already In A Split Test",
                        f"cells[{i}] covers {', '.join(sorted(shared))}, already in split test "
                        f'{other["id"]} ("{other.get("name", "")}") from {iso(o_start)} to {iso(o_end)}; '
                        "a campaign or ad set can be in only one split test at a time.",
                    )


def _percentages(cells: list[dict], raw: list[Any], split_test: bool) -> list[int]:
    given = [r for r in raw if r is not None]
    if not given:
        n = len(cells)
        base, extra = divmod(100, n)
        return [base + (1 if i < extra else 0) for i in range(n)]
    if len(given) != len(raw):
        missing = [i for i, r in enumerate(raw) if r is None]
        raise _rule(
            "Treatment Percentage Missing",
            f"cells{missing} have no treatment_percentage: give it for every cell (summing to 100) or for "
            "none (an equal split).",
        )
    out = []
    for i, value in enumerate(raw):
        number = to_int(value)
        if number is None or not 1 <= number <= 100:
            raise _rule(
                "Invalid Treatment Percentage",
                f"cells[{i}].treatment_percentage must be an integer from 1 to 100, not {value!r}.",
            )
        out.append(number)
    if split_test and sum(out) != 100:
        raise _rule(
            "Treatment Percentages Must Add Up To 100",
            f"The cells' treatment_percentage values add up to {sum(out)}; in a split test they must add up to 100.",
        )
    return out


def _parse_cells(ctx: Ctx, business: Obj, study_type: str) -> list[dict]:
    value = ctx.p.get("cells")
    if value is None or value == "":
        raise param_error("The parameter cells is required", field="cells")
    cells = _lenient_json(value)
    if not isinstance(cells, list):
        raise param_error(
            "Param cells must be a JSON array of {name, treatment_percentage, campaigns | adsets} objects",
            field="cells",
        )
    split_test = study_type == SPLIT_TEST
    low, high = (MIN_CELLS, MAX_CELLS) if split_test else (1, MAX_OTHER_CELLS)
    if not low <= len(cells) <= high:
        raise _rule(
            "Wrong Number Of Cells",
            f"A {'split test' if split_test else 'study'} needs {low} to {high} cells; this one has {len(cells)}.",
        )
    out: list[dict[str, Any]] = []
    raw_pcts: list[Any] = []
    for i, cell in enumerate(cells):
        where = f"cells[{i}]"
        if not isinstance(cell, dict):
            raise param_error(
                f"Param {where} must be an object with name, treatment_percentage and campaigns or adsets",
                field="cells",
            )
        unknown = sorted(
            set(cell) - {"name", "treatment_percentage", "campaigns", "adsets", "description", "control_percentage"}
        )
        if unknown:
            raise param_error(f"Param {where} has unknown keys: {', '.join(unknown)}", field="cells")
        name = cell.get("name")
        if name is None or name == "":
            name = f"Cell {chr(ord('A') + i)}" if i < 26 else f"Cell {i + 1}"
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise param_error(f"Param {where}.name must be a string of at most {MAX_NAME} characters", field="cells")
        has_campaigns, has_adsets = cell.get("campaigns") is not None, cell.get("adsets") is not None
        if has_campaigns and has_adsets:
            raise _rule(
                "Campaigns Or Ad Sets",
                f"{where} names both campaigns and adsets: a cell names campaigns or ad sets, not both.",
            )
        if not has_campaigns and not has_adsets:
            raise _rule("Cell Has No Ad Objects", f"{where} names no campaigns and no adsets.")
        kind = "campaign" if has_campaigns else "adset"
        ids = _ids(cell.get("campaigns" if has_campaigns else "adsets"), f"{where}.{kind}s")
        for obj_id in ids:
            _check_object(ctx, obj_id, kind, f"{where}.{kind}s", business)
        out.append({"name": name, "campaigns": ids if has_campaigns else [], "adsets": [] if has_campaigns else ids})
        raw_pcts.append(cell.get("treatment_percentage"))
    for cell, pct in zip(out, _percentages(out, raw_pcts, split_test)):
        cell["treatment_percentage"] = pct
    return out


def _objectives(ctx: Ctx) -> list[dict]:
    value = ctx.p.get("objectives")
    if value is None or value == "":
        return []
    items = _lenient_json(value)
    if isinstance(items, (str, dict)):
        items = [items]
    if not isinstance(items, list):
        raise param_error("Param objectives must be a JSON array of objectives", field="objectives")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise param_error(f"Param objectives[{i}] must be an object (name, type, is_primary)", field="objectives")
        kind = item.get("type")
        if kind is not None and kind not in OBJECTIVE_TYPES:
            raise param_error(
                f"Param objectives[{i}].type must be one of {{{', '.join(OBJECTIVE_TYPES)}}}", field="objectives"
            )
        out.append(
            {
                "id": ctx.store.new_id("adstudyobjective"),
                "name": str(item.get("name") or kind or f"Objective {i + 1}"),
                **({"type": kind} if kind else {}),
                "is_primary": bool(item.get("is_primary", i == 0)),
            }
        )
    return out


def _confidence(ctx: Ctx) -> float | None:
    raw = ctx.p.get("confidence_level")
    if raw is None or raw == "":
        return None
    try:
        value = float(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or not 0 < value < 100:
        raise param_error(
            "Param confidence_level must be a number between 0 and 100 (e.g. 80, 90 or 95)", field="confidence_level"
        )
    return int(value) if value.is_integer() else value


# ---- writing


def insert_study(
    store,
    *,
    business_id: str,
    name: str,
    study_type: str,
    start: float,
    end: float,
    cells: list[dict],
    now: float,
    user_id: str | None,
    description: str | None = None,
    confidence_level: float | None = None,
    objectives: list[dict] | None = None,
) -> tuple[str, list[str]]:
    """Store a study and its cells in one transaction (cells: {name, treatment_percentage, campaigns, adsets});
    no checks. -> (study id, cell ids). delivery.create_scenario uses it too."""
    study_id = store.new_id("adstudy")
    cell_ids = [store.new_id("adstudycell") for _ in cells]
    data = {
        "id": study_id,
        "name": name,
        "type": study_type,
        "start_time": start,
        "end_time": end,
        "canceled_time": None,
        "objectives": objectives or [],
        "_business_id": business_id,
        "_created_by": user_id,
        "_updated_by": user_id,
    }
    if description is not None:
        data["description"] = description
    if confidence_level is not None:
        data["confidence_level"] = confidence_level
    rows = [("adstudy", study_id, data, business_id, None, now)]
    for cell_id, cell in zip(cell_ids, cells):
        rows.append(
            (
                "adstudycell",
                cell_id,
                {
                    "id": cell_id,
                    "name": cell["name"],
                    "treatment_percentage": int(cell["treatment_percentage"]),
                    "_campaign_ids": list(cell.get("campaigns") or []),
                    "_adset_ids": list(cell.get("adsets") or []),
                },
                study_id,
                None,
                now,
            )
        )
    store.insert_many(rows)
    return study_id, cell_ids


def create_study(ctx: Ctx) -> dict:
    node = ctx.store.get(ctx.match[0])
    if node is not None and node.type in ("campaign", "adset"):
        raise GraphError("(#100) Ad studies are created on a business: POST /{business_id}/ad_studies", 100)
    business = _business(ctx, ctx.match[0], write=True)
    name = ctx.p.str("name")
    if name is None or not name.strip():
        raise param_error("The parameter name is required", field="name")
    if len(name) > MAX_NAME:
        raise param_error(f"Param name must be at most {MAX_NAME} characters long", field="name")
    description = ctx.p.str("description")
    study_type = ctx.p.str("type", SPLIT_TEST)
    if study_type not in TYPES:
        raise param_error(f"Param type must be one of {{{', '.join(TYPES)}}}", field="type")
    now = ctx.now
    start = _time(ctx, "start_time", required=True)
    end = _time(ctx, "end_time", required=True)
    start = max(start, float(int(now)))  # a start in the past starts now: history is never rewritten
    _check_window(start, end, now)
    confidence = _confidence(ctx)
    cells = _parse_cells(ctx, business, study_type)
    if study_type == SPLIT_TEST:
        _check_exclusive(ctx, cells, start, end)
    objectives = _objectives(ctx)
    study_id, _ = insert_study(
        ctx.store,
        business_id=business["id"],
        name=name,
        study_type=study_type,
        start=start,
        end=end,
        cells=cells,
        now=now,
        user_id=ctx.principal.user_id,
        description=description,
        confidence_level=confidence,
        objectives=objectives,
    )
    return {"id": study_id}


def update_study(ctx: Ctx, study: Obj) -> dict:
    _business(ctx, study["_business_id"], write=True)
    unknown = sorted(k for k in ctx.p.raw if k not in UPDATABLE and k not in CONTROL_PARAMS)
    if unknown:
        raise _rule(
            "Study Field Can't Be Changed",
            f"Only name, description and end_time of a study can be changed; not {', '.join(unknown)}.",
            unknown[0],
        )
    if study.get("canceled_time") is not None:
        raise _rule(
            "Study Canceled",
            f"Study {study['id']} was canceled on {iso(study['canceled_time'])} and can't be edited.",
            "canceled_time",
        )
    changes: dict[str, Any] = {}
    if "name" in ctx.p:
        name = ctx.p.str("name")
        if name is None or not name.strip() or len(name) > MAX_NAME:
            raise param_error(f"Param name must be a non-empty string of at most {MAX_NAME} characters", field="name")
        changes["name"] = name
    if "description" in ctx.p:
        changes["description"] = ctx.p.str("description") or ""
    if "end_time" in ctx.p:
        now = ctx.now
        if float(study["end_time"]) <= now:
            raise _rule(
                "Study Already Ended",
                f"Study {study['id']} ended on {iso(study['end_time'])}; its end_time can't change any more.",
                "end_time",
            )
        end = max(_time(ctx, "end_time", required=True), float(int(now)))  # earlier than now: ends now
        start = float(study["start_time"])
        if end <= start and start > now:  # started already: ending now is fine, even in its first second
            raise _rule(
                "Study End Time Before Start Time",
                f"The study starts on {iso(start)}, after this end_time ({iso(end)}); to call off a study "
                "that hasn't started, DELETE it.",
                "end_time",
            )
        if end - start > MAX_DAYS * DAY:
            raise _rule(
                "Study Too Long",
                f"A split test can run for at most {MAX_DAYS} days; this end_time would "
                f"make it {(end - start) / DAY:.1f} days.",
                "end_time",
            )
        if end > float(study["end_time"]) and study.get("type") == SPLIT_TEST:
            cells = [
                {"campaigns": c.get("_campaign_ids", []), "adsets": c.get("_adset_ids", [])} for c in _cells(ctx, study)
            ]
            _check_exclusive(ctx, cells, start, end, skip=study["id"])
        changes["end_time"] = end
    if changes:
        ctx.store.update(study["id"], {**study, **changes, "_updated_by": ctx.principal.user_id}, now=ctx.now)
    return {"success": True}


def delete_study(ctx: Ctx, study: Obj) -> dict:
    """Cancel: canceled_time is set and the study stops splitting delivery (again: nothing changes)."""
    _business(ctx, study["_business_id"], write=True)
    if study.get("canceled_time") is None:
        ctx.store.update(
            study["id"],
            {**study, "canceled_time": float(int(ctx.now)), "_updated_by": ctx.principal.user_id},
            now=ctx.now,
        )
    return {"success": True}


# ---- delivery

Windows = dict[str, list[tuple[float, float, float]]]


def split_windows(store) -> tuple[Windows, Windows]:
    """For delivery: (by ad set id, by campaign id) -> [(start, end, share)] of every SPLIT_TEST's cells, where
    share = treatment_percentage / 100 and [start, end) is when the study splits (cut at canceled_time)."""
    by_adset: dict[str, list] = {}
    by_campaign: dict[str, list] = {}
    for study in store.list("adstudy"):
        if study.get("type") != SPLIT_TEST:
            continue
        start, end = _window(study)
        if end <= start:
            continue
        for cell in store.list("adstudycell", parent_id=study["id"]):
            share = max(1, min(100, int(cell.get("treatment_percentage") or 100))) / 100
            for cid in cell.get("_campaign_ids", []):
                by_campaign.setdefault(cid, []).append((start, end, share))
            for sid in cell.get("_adset_ids", []):
                by_adset.setdefault(sid, []).append((start, end, share))
    return by_adset, by_campaign

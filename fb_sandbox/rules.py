"""The registry of every rule and behaviour the sandbox imitates, with its source: the one declaration that
docs/fidelity.md is generated from (`python -m fb_sandbox.rules > docs/fidelity.md`, or `make docs`).

Declare a rule where the code that enforces it lives, with one line:

    from .rules import rule
    rule("creative.no_standard_enhancements", "POST adcreatives refuses creative_features_spec.standard_enhancements",
         source="https://developers.facebook.com/blog/post/2025/01/17/...", since="v22.0", verified=True,
         area="creatives")

or as a decorator on the function that enforces it (the function is recorded as where the rule lives):

    @rule("adset.R4", "Budget on the campaign or on its ad sets, never both", source="...", since="v22.0")
    def _budget_presence_rules(...): ...

- `id`: unique, dotted by area ("fields.syntax_error", "adset.R4", "insights.breakdowns", "legacy.ids").
- `source`: the URL(s) (or, for rules read from the SDK, the SDK class) the rule is written from. Required: a rule
  with an empty source fails tests/test_fidelity.py.
- `since`: the API version (or date) it applies from, e.g. "v26.0", "2026-11-04 (all versions)".
- `verified`: True only when the statement was seen in a Meta-authored page (changelog, reference, Meta blog,
  Meta's SDK); third-party reports or our inference are `verified=False` and docs/fidelity.md counts them.
- `area`: the section of docs/fidelity.md.
Registering the same id twice with different content is an error (two helpers describing one rule differently).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    source: str
    since: str = ""
    verified: bool = False
    area: str = "other"
    where: str = ""  # module (and function, for decorated rules) that enforces it


RULES: dict[str, Rule] = {}


class _Registration:
    """What `rule(...)` returns: usable as a decorator, harmless when ignored."""

    def __init__(self, r: Rule) -> None:
        self.rule = r

    def __call__(self, fn: F) -> F:
        where = f"{fn.__module__}.{fn.__qualname__}"
        RULES[self.rule.id] = Rule(**{**self.rule.__dict__, "where": where})
        return fn


def rule(
    id: str, summary: str, *, source: str, since: str = "", verified: bool = False, area: str = "other"
) -> _Registration:
    """Register a rule (see the module doc); returns a decorator that records the enforcing function."""
    caller = sys._getframe(1).f_globals.get("__name__", "")
    new = Rule(id, summary, source or "", since, verified, area, caller)
    old = RULES.get(id)
    if old is not None and (old.summary, old.source, old.since, old.verified) != (
        new.summary,
        new.source,
        new.since,
        new.verified,
    ):
        raise ValueError(f"rule {id} is registered twice with different content ({old.where} and {caller})")
    if old is None:
        RULES[id] = new
    return _Registration(new)


# The older rule tables (one markdown row per rule: | id | rule | code | blame | source |) are read into the
# registry when the docs are there (a source checkout), so that docs/fidelity.md counts them with the rest.
DOC_TABLES = {"adset": "docs/adset_rules.md", "creative": "docs/creative_rules.md"}
_ROW_ID = re.compile(r"[A-Z]{1,2}\d{1,3}")


def _cells(line: str) -> list[str]:
    """A markdown table row's cells; a `|` inside backticks belongs to its cell."""
    parts = re.split(r"\|(?=(?:[^`]*`[^`]*`)*[^`]*$)", line.strip())
    return [c.strip() for c in parts[1:-1]]


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def doc_table_rules(root: Path | None = None) -> list[Rule]:
    """The rows of the older rule tables as rules: id `<area>.<row id>`, source = the row's Source cell."""
    root = root or Path(__file__).resolve().parent.parent
    out = []
    for area, rel in DOC_TABLES.items():
        path = root / rel
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            cells = _cells(line) if line.startswith("|") else []
            if len(cells) < 3 or not _ROW_ID.fullmatch(cells[0]):
                continue
            source = cells[-1]
            verified = source.lower().startswith("verified") and "unverified" not in source.lower()
            out.append(Rule(f"{area}.{cells[0]}", cells[1], source, "", verified, area, rel))
    return out


def all_rules() -> list[Rule]:
    """Every registered rule, after importing every sandbox module (so that every declaration has run)."""
    import importlib
    import pkgutil

    import fb_sandbox

    for info in pkgutil.iter_modules(fb_sandbox.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"fb_sandbox.{info.name}")
    table = {r.id: r for r in doc_table_rules() if r.id not in RULES}  # a rule declared in code wins
    return sorted([*RULES.values(), *table.values()], key=lambda r: (r.area, _natural(r.id)))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fidelity_markdown() -> str:
    """docs/fidelity.md, generated from the registry and the SDK-derived spec."""
    from . import spec

    rules = all_rules()
    unverified = [r for r in rules if not r.verified]
    lines = [
        "# Sandbox fidelity: what the sandbox imitates, and from which source",
        "",
        "Generated by `python -m fb_sandbox.rules > docs/fidelity.md` from the rule registry in",
        "`fb_sandbox/rules.py` (each rule is declared next to the code that enforces it; see that module's doc for",
        "how to declare one). `tests/test_fidelity.py` fails when a rule has no source or when this file is stale.",
        "",
        f"**{len(rules)} rules, {len(unverified)} unverified** (verified = seen in a Meta-authored page or Meta's SDK;",
        "unverified = third-party reports or our reading; check those against a live account first).",
        "",
        "Rows of the older rule tables (docs/adset_rules.md, docs/creative_rules.md) are read into the registry",
        "(`rules.doc_table_rules`) and listed here with their Source cell; a rule declared in code with the same id",
        "(`adset.R4`, `creative.C4`) replaces the row's entry.",
        f"{sum(1 for r in rules if 'http' not in r.source)} rules cite no URL yet (a doc or the SDK only).",
        "",
    ]
    for area in sorted({r.area for r in rules}):
        lines += [
            f"## {area}",
            "",
            "| Rule | What the sandbox does | Since | Verified | Source | Where |",
            "|------|-----------------------|-------|----------|--------|-------|",
        ]
        for r in (r for r in rules if r.area == area):
            lines.append(
                f"| `{r.id}` | {_cell(r.summary)} | {_cell(r.since) or '—'} | "
                f"{'yes' if r.verified else '**unverified**'} | {_cell(r.source) or '**none**'} | "
                f"`{r.where}` |"
            )
        lines.append("")
    lines += [
        "## Fields and edges served, per node type (from the installed SDK)",
        "",
        "Every field of `<Node>.Field` is answered (stored value, else absent); every GET edge answers its data",
        "where the sandbox has it, else an empty paged list.",
        "",
        "| Stored type | SDK class | Fields | GET edges |",
        "|---|---|---|---|",
    ]
    for node_type, cls in sorted(spec.SERVED.items()):
        lines.append(f"| {node_type} | {cls} | {len(spec.fields(cls))} | {len(spec.get_edges(cls))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # run as a script this module is __main__: use the registry every module imports
    from fb_sandbox.rules import fidelity_markdown as _generate

    sys.stdout.write(_generate())

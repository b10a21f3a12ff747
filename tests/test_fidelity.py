"""docs/fidelity.md: every rule the sandbox imitates has a source; the doc is generated from the one registry
(fb_sandbox/rules.py) and is current; its counts are the registry's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fb_sandbox import rules, spec

ROOT = Path(__file__).resolve().parent.parent


def test_every_rule_has_a_source():
    every = rules.all_rules()
    assert len(every) >= 40
    missing = [r.id for r in every if not r.source.strip()]
    assert not missing, f"rules without a source: {missing}"
    declared_in_code = [r for r in every if r.where.startswith("fb_sandbox")]
    assert declared_in_code and all(r.since for r in declared_in_code), [r.id for r in declared_in_code if not r.since]


def test_a_rule_without_source_is_caught_and_a_conflicting_redeclaration_refused():
    before = dict(rules.RULES)
    try:
        rules.rule("test.no_source", "a rule nobody sourced", source="")
        assert [r.id for r in rules.all_rules() if not r.source] == ["test.no_source"]
        rules.rule("test.no_source", "a rule nobody sourced", source="")  # same content: fine
        with pytest.raises(ValueError):
            rules.rule("test.no_source", "a rule nobody sourced", source="https://example.invalid")

        @rules.rule("test.decorated", "decorated", source="https://example.invalid", since="v26.0")
        def enforce() -> int:
            return 1

        assert enforce() == 1 and rules.RULES["test.decorated"].where.endswith("enforce")
    finally:
        rules.RULES.clear()
        rules.RULES.update(before)


def test_fidelity_doc_is_generated_from_the_registry_and_current():
    generated = rules.fidelity_markdown()
    on_disk = (ROOT / "docs" / "fidelity.md").read_text(encoding="utf-8")
    assert on_disk == generated, "docs/fidelity.md is stale: run `python -m fb_sandbox.rules > docs/fidelity.md`"
    every = rules.all_rules()
    unverified = sum(1 for r in every if not r.verified)
    assert f"**{len(every)} rules, {unverified} unverified**" in on_disk
    for r in every:
        assert f"`{r.id}`" in on_disk
    for node_type, cls in spec.SERVED.items():
        assert re.search(
            rf"\| {node_type} \| {cls} \| {len(spec.fields(cls))} \| {len(spec.get_edges(cls))} \|", on_disk
        )


def test_fidelity_doc_script_prints_the_same():
    out = subprocess.run(
        [sys.executable, "-m", "fb_sandbox.rules"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out == rules.fidelity_markdown()


def test_the_older_rule_tables_are_read_into_the_registry():
    table = rules.doc_table_rules(ROOT)
    ids = {r.id for r in table}
    adset_rows = re.findall(r"^\| (R\d+) \|", (ROOT / "docs" / "adset_rules.md").read_text(encoding="utf-8"), re.M)
    assert {f"adset.{i}" for i in adset_rows} <= ids and adset_rows
    assert all(r.summary and r.source for r in table)

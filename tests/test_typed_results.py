"""Typed results (issue 20, item 3): every op declares what it answers as data (a pydantic model, `result=` on the
op), published as its MCP tool's outputSchema; the official MCP client checks every structured result against it.
The suite checks every answer any test gets (tests/conftest.py sets ADMONSTER_CHECK_RESULTS); here: the declarations
are complete, each op's example answers data its model allows (and each write's dry run the dry-run model), the check
names a difference, and the official client over stdio validates what it receives."""

from __future__ import annotations

import json

import pytest

from fb_utils import OpKind, OpResult, ValidationError, graph_object
from fi_facebook import CHECK_RESULTS_ENV, REGISTRY, DryRunData, ResultMismatch, check_error, check_result


def test_every_op_declares_a_result_model():
    missing = [spec.name for spec in REGISTRY.specs() if spec.result is None]
    assert missing == [], f"{len(missing)} ops declare no result model: {', '.join(missing)}"


def test_result_schemas_are_objects_and_writes_may_answer_a_dry_run():
    for spec in REGISTRY.specs():
        if spec.result is None:
            continue
        schema = REGISTRY.result_schema(spec)
        assert schema["type"] == "object", spec.name
        text = json.dumps(schema)
        assert ('"dry_run"' in text) is (spec.kind is not OpKind.READ), spec.name
        assert not _titles(schema), spec.name  # titles dropped (a field may be named title: a property, or required)


def _titles(schema) -> list:
    """The schema's "title" keywords (a string under "title"), not a property or a required field named title."""
    if isinstance(schema, dict):
        found = [schema["title"]] if isinstance(schema.get("title"), str) else []
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                found += [t for prop in value.values() for t in _titles(prop)]
            elif key != "title":
                found += _titles(value)
        return found
    if isinstance(schema, list):
        return [t for item in schema for t in _titles(item)]
    return []


async def test_every_ops_example_answers_data_its_model_allows(facebook):
    checked, dry_runs = [], 0
    for spec in REGISTRY.specs():
        if spec.example is None or spec.result is None:
            continue
        result = await facebook.call(spec.name, dict(spec.example))
        if result.ok:
            assert REGISTRY.result_problems(spec, result.data) == [], spec.name
            checked.append(spec.name)
        if spec.kind is not OpKind.READ:
            preview = await facebook.call(spec.name, {**spec.example, "dry_run": True})
            if preview.ok:
                assert preview.data["dry_run"] is True and REGISTRY.result_problems(spec, preview.data) == [], spec.name
                dry_runs += 1
    # Many examples name ids this demo world lacks (they answer "not found", an error): the suite-wide check
    # (tests/conftest.py) covers those ops in the tests that make their objects.
    assert len(checked) >= 15 and dry_runs >= 5, (len(checked), dry_runs)


def test_a_difference_is_named_and_logged(tmp_path, monkeypatch):
    spec = REGISTRY.require("list_campaigns")
    good = {
        "ad_account_id": "act_1",
        "currency": "USD",
        "next_after": None,
        "campaigns": [{"id": "1", "name": "A", "daily_budget": "5000", "status": "PAUSED"}],
    }
    assert REGISTRY.result_problems(spec, good) == []
    drifted = {**good, "currency": 978, "surprise": True, "campaigns": [{"id": "1", "daily_budget": 5000}]}
    problems = REGISTRY.result_problems(spec, drifted)
    assert any(p.startswith("currency:") for p in problems) and any("surprise" in p for p in problems)
    assert any(p.startswith("campaigns/0/daily_budget:") for p in problems)  # Meta's spec: a budget is a string
    log = tmp_path / "mismatches.jsonl"
    monkeypatch.setenv(CHECK_RESULTS_ENV, str(log))
    with pytest.raises(ResultMismatch, match="list_campaigns answered data its model refuses"):
        check_result(REGISTRY, spec, OpResult(text="x", data=drifted))
    assert json.loads(log.read_text())["op"] == "list_campaigns"
    with pytest.raises(ResultMismatch):  # an op's own answer that is not ok (a partial failure) is its model's too
        check_result(REGISTRY, spec, OpResult(text="x", data=drifted, ok=False))
    error = OpResult.from_error(ValidationError("Unknown op 'x'", fix="Call op=help", data={"suggestions": []}))
    check_result(REGISTRY, spec, error)  # an error answers the error model instead
    check_error("x", error)
    with pytest.raises(ResultMismatch, match="answered an error its model refuses: retryable"):
        check_error("x", OpResult(text="x", ok=False, data={**error.data, "retryable": "no"}))
    assert len(log.read_text().splitlines()) == 3


def test_graph_objects_are_typed_from_metas_spec():
    from facebook_business.adobjects.campaign import Campaign

    model = graph_object(Campaign, "id,name,daily_budget,adlabels{name},start_time,is_adset_budget_sharing_enabled")
    schema = model.model_json_schema()["properties"]
    assert schema["daily_budget"]["type"] == "string" and schema["is_adset_budget_sharing_enabled"]["type"] == "boolean"
    assert schema["adlabels"]["type"] == "array" and schema["start_time"]["type"] == "string"
    with pytest.raises(ValueError, match="no field budget_left"):
        graph_object(Campaign, "id,budget_left")


def test_a_dry_run_has_its_own_model():
    fields = set(DryRunData.model_fields)
    assert {"dry_run", "summary", "requests", "changes", "attention", "validation"} <= fields

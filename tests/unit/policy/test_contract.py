"""The contract table: every entry point's samples fit its input schema, and answers are checked against
its result schema and what the proxy does with them."""

from __future__ import annotations

import pytest

from proxy.policy.contract import ENTRYPOINTS, Entrypoint, builtin_samples, complete, input_errors, result_error

DECISION, SCOPES, MODELS, EGRESS, MCP = ENTRYPOINTS


@pytest.mark.parametrize("row", ENTRYPOINTS, ids=lambda row: row.path)
def test_every_builtin_sample_is_a_valid_input(row: Entrypoint) -> None:
    samples = builtin_samples(row)
    assert samples
    assert len({s.name for s in samples}) == len(samples), "sample names identify samples"
    for sample in samples:
        assert input_errors(row, sample.input) == [], sample.name


def test_input_errors_name_the_field() -> None:
    doc = builtin_samples(DECISION)[0].input
    broken = {**doc, "request": {**doc["request"], "stream": "yes"}}
    assert input_errors(DECISION, broken) == ["request.stream: 'yes' is not of type 'boolean'"]


@pytest.mark.parametrize(("result", "expected"), [
    (None, "data.llm.main.decision is undefined for this input"),
    ({"allow": "yes", "reasons": []}, "breaks decision.v1.json: allow: 'yes' is not of type 'boolean'"),
    ({"allow": True}, "'reasons' is a required property"),
    ({"allow": True, "reasons": [], "headers": {"x-a": "b\r\nc"}}, "headers.x-a"),
    ({"allow": True, "reasons": [], "budgets": [{"scope": "team:a", "window": "rolling", "limit_usd": 1}]},
     "'window_seconds' is a required property"),
])
def test_decisions_outside_the_schema_are_errors(result: object, expected: str) -> None:
    problem = result_error(DECISION, builtin_samples(DECISION)[0].input, result)
    assert problem is not None and expected in problem


def test_valid_decision_passes() -> None:
    assert result_error(DECISION, {}, {"allow": False, "reasons": [{"code": "x", "message": "y"}]}) is None


def test_allowed_models_may_only_name_models_that_were_asked_about() -> None:
    doc = {"version": 1, "identity": builtin_samples(MODELS)[0].input["identity"], "models": ["a", "b"]}
    assert result_error(MODELS, doc, ["b"]) is None
    problem = result_error(MODELS, doc, ["b", "c"])
    assert problem is not None and "not asked about" in problem


def test_a_partial_test_input_is_completed_into_the_entry_point_it_fits() -> None:
    partial = {"identity": {"team": "payments"}, "pii": {"types": ["email"]}}
    completed = complete(DECISION, partial)
    assert completed is not None
    assert completed["identity"]["team"] == "payments" and completed["pii"]["types"] == ["email"]
    assert completed["pii"]["counts"] == {}  # the rest of the sample's fields stay
    egress = {"host": "api.openai.com", "port": 443, "identity": {"app": "web"}}
    assert complete(DECISION, egress) is None
    assert complete(EGRESS, egress) is not None


@pytest.mark.parametrize(("result", "expected"), [
    (None, "data.llm.budgets.scopes is undefined for this input"),
    ({"scope": "team:a", "limit_usd": 1}, "is not of type 'array'"),
    ([{"scope": "team:a"}], "is not valid under any of the given schemas"),
    ([{"scope": "team:a", "limit_usd": 1, "window": "week"}], "'week' is not one of"),
])
def test_scopes_outside_the_schema_are_errors(result: object, expected: str) -> None:
    problem = result_error(SCOPES, builtin_samples(SCOPES)[0].input, result)
    assert problem is not None and expected in problem


def test_scopes_input_names_no_spend() -> None:
    doc = builtin_samples(SCOPES)[0].input
    assert set(doc) == {"version", "identity", "request"} and set(doc["request"]) == {"endpoint", "api", "model"}
    assert result_error(SCOPES, doc, [{"scope": "team:a", "limit_usd": 1, "window": "day"}]) is None
    assert input_errors(SCOPES, {**doc, "budget": {}}) != []

"""The built-in samples cover every endpoint, identity kind, PII type, budget state and enum value."""

from __future__ import annotations

from proxy.pii.types import CATEGORIES
from proxy.policy.contract import ENTRYPOINTS, builtin_samples, schema_document
from proxy.policy.samples import Sample, enum_samples

DECISION = ENTRYPOINTS[0]


def decision_inputs() -> list[dict[str, object]]:
    return [s.input for s in builtin_samples(DECISION)]


def test_every_value_the_input_schema_enumerates_is_sampled() -> None:
    schema = schema_document("input.v1.json")
    endpoints = schema["properties"]["request"]["properties"]["endpoint"]["enum"]
    sources = schema["$defs"]["identity"]["properties"]["source"]["enum"]
    docs = decision_inputs()
    assert {d["request"]["endpoint"] for d in docs} >= set(endpoints)  # type: ignore[index]
    assert {d["identity"]["source"] for d in docs} >= set(sources)  # type: ignore[index]
    assert any(d["identity"]["admin"] for d in docs)  # type: ignore[index]


def test_every_pii_type_budget_state_and_extreme_is_sampled() -> None:
    docs = decision_inputs()
    assert {t for d in docs for t in d["pii"]["types"]} >= set(CATEGORIES)  # type: ignore[index]
    assert any(len(d["pii"]["types"]) > 1 for d in docs)  # type: ignore[index, arg-type]
    percents = {s["percent"] for d in docs for s in d["budget"].values()}  # type: ignore[attr-defined]
    assert {0.0, 40.0, 92.0, 100.0, 150.0} <= percents
    assert any(d["model"] is None for d in docs)
    assert any(d["request"]["max_tokens"] is None for d in docs)  # type: ignore[index]
    assert max(d["request"]["max_tokens"] or 0 for d in docs) == 2**31 - 1  # type: ignore[index]


def test_an_enum_added_to_a_schema_later_is_sampled_without_changing_the_generator() -> None:
    schema = {"type": "object", "properties": {"request": {"$ref": "#/$defs/request"}},
              "$defs": {"request": {"type": "object", "properties": {"api": {"enum": ["openai", "anthropic"]}}}}}
    base = Sample("builtin:x", {"request": {"api": "openai", "model": "m"}})
    (added,) = enum_samples(schema, base)
    assert added.name == "builtin:x/request.api=anthropic"
    assert added.input == {"request": {"api": "anthropic", "model": "m"}}
    assert base.input["request"]["api"] == "openai"  # the base is not changed

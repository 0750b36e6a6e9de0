"""The static check for rules that may conflict (the compiled RVM cannot report a conflict)."""

from __future__ import annotations

import json

import pytest

from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.conflicts import possible_conflicts
from proxy.policy.rego import build_engine


def conflicts_in(source: str) -> list[str]:
    engine = build_engine([("x.rego", "package x\n\n" + source)], {})
    return [str(c) for c in possible_conflicts(json.loads(engine.get_ast_as_json()))]


def test_shipped_policies_have_no_rule_that_may_conflict() -> None:
    bundle = load_bundle(default_policy_dir())
    assert possible_conflicts(json.loads(build_engine(bundle.modules, bundle.data).get_ast_as_json())) == []


@pytest.mark.parametrize("source", [
    'r := 1 if input.a\nr := 2 if input.b\n',
    'r := msg if { msg := "a" }\nr := msg if { msg := "b" }\n',  # same expression, but locals bound differently
    'f(x) := x if x > 1\nf(y) := y if y < 0\n',  # arguments named differently: not proven equal
    'o[k] := 1 if some k in input.a\no[k] := 2 if some k in input.b\n',
    'r := 1 if input.a else := 2\nr := 1 if input.b else := 3\n',
], ids=["constants", "locals", "renamed-args", "object", "else-chains"])
def test_definitions_whose_values_may_differ_are_reported(source: str) -> None:
    (found,) = conflicts_in(source)
    assert "is defined 2 times with values that may differ (x.rego:3, x.rego:4)" in found


@pytest.mark.parametrize("source", [
    'b if input.a\nb if input.b\n',  # both true
    'limits := {"max": 1}\nm := limits.max if input.a\nm := limits.max if input.b\n',  # a rule, not a local
    'f(x) := x + 1 if x > 1\nf(x) := x + 1 if x < 0\n',  # the same arguments
    'default r := 0\nr := 1 if input.a\n',  # a default is not a second definition
    'o["a"] := 1\no["b"] := 2\n',  # different keys
    's contains 1 if input.a\ns contains 2 if input.b\n',  # sets collect, never conflict
    'r := 1 if input.a else := 2\n',
])
def test_definitions_that_always_agree_are_not_reported(source: str) -> None:
    assert conflicts_in(source) == []

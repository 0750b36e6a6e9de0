"""Collecting the inputs a folder's own tests evaluate its rules with."""

from __future__ import annotations

from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.test_inputs import capture, instrument


def test_shipped_tests_hand_over_their_inputs_with_locations() -> None:
    bundle = load_bundle(default_policy_dir())
    captured = capture(bundle.modules, bundle.tests, bundle.data)
    assert len(captured) > 50
    main = [doc for location, doc in captured if "/main_test.rego:" in location]
    assert any(doc.get("identity", {}).get("team") == "payments" for doc in main)  # main_test's `base`
    assert all(location.rsplit(":", 1)[1].isdigit() for location, _ in captured)
    assert any("host" in doc for _, doc in captured)  # egress tests too


def test_failing_and_erroring_tests_still_hand_over_their_inputs() -> None:
    modules = [("x.rego", "package x\n\nr := input.a / input.b\n")]
    tests = [("x_test.rego", 'package x_test\n\n'
                             'test_fails if { data.x.r == 9 with input as {"a": 1, "b": 1} }\n\n'
                             'test_errors if { data.x.r with input as {"a": 1, "b": 0} with data.q as {"s": {1}} }\n')]
    captured = capture(modules, tests, {})
    assert sorted(doc["b"] for _, doc in captured) == [0, 1]


def test_instrument_wraps_every_input_override_on_a_line() -> None:
    source = 'package t\n\ntest_a if { data.p.r with input as {"a": [1]} with data.q as 1; data.p.s with input as x }\n'
    spans = [{"start": source.index("with input as {"), "end": source.index(" with data.q"), "line": 3},
             {"start": source.index("with input as x"), "end": source.index(" }\n"), "line": 3}]
    wrapped = instrument("t.rego", source, spans)
    assert 'with input as llmpp_test_input("t.rego:3", {"a": [1]}) with data.q as 1' in wrapped
    assert 'with input as llmpp_test_input("t.rego:3", x) }' in wrapped

"""reads_input_key: which policies may read input.estimate, from regorus's own AST (the real parser)."""

from __future__ import annotations

import json

import pytest
import regorus

from proxy.policy.rego_ast import Node, reads_input_key

HEADER = "package t\nimport rego.v1\n"


def modules(*sources: tuple[str, str]) -> list[Node]:
    engine = regorus.Engine()
    for name, body in sources:
        engine.add_policy(name, HEADER + body)
    parsed: list[Node] = json.loads(engine.get_ast_as_json())
    return parsed


@pytest.mark.parametrize(("body", "reads"), [
    ('x if input.request.model == "m"', False),
    ('x if input["request"].model == "m"', False),
    ("x := input.identity.team", False),
    ('import input.request as r\nx if r.model == "m"', False),
    ('x if "estimate" in object.keys(input.request)', False),
    ("x if input.estimate.prompt_tokens > 10", True),
    ('x if input["estimate"].max_cost_usd > 1', True),
    ("import input.estimate as e\nx if e.prompt_tokens > 1", True),
    ("import input\nx if input.request", True),
    ("x := input", True),
    ("x if walk(input, [_, _])", True),
    ("x contains k if some k, _ in input", True),
    ('k := "estimate"\nx if input[k]', True),
    ("f(doc) := doc.estimate\nx := f(input)", True),
    ("x := json.marshal(input)", True),
    ("y if input.request\nx if y with input.request as {}", False),
    ("y if input.request\nx if y with input as {\"request\": input.estimate}", True),
])
def test_which_references_count_as_reading_the_estimate(body: str, reads: bool) -> None:
    assert reads_input_key(modules(("p.rego", body)), "estimate") is reads


def test_any_module_reading_it_counts() -> None:
    assert reads_input_key(modules(("a.rego", "a := input.request"),
                                   ("b.rego", "b := input.estimate.prompt_tokens")), "estimate")


def test_test_modules_are_not_served_so_they_do_not_count() -> None:
    served = ("p.rego", "x if input.request.model == \"m\"")
    test = ("p_test.rego", 'test_x if x with input as {"estimate": {"prompt_tokens": 1}, "request": {"model": "m"}}\n'
                           "test_y if input.estimate")
    assert not reads_input_key(modules(served, test), "estimate")


def test_the_shipped_policies_read_the_estimate_and_the_allow_all_bench_policy_does_not() -> None:
    from pathlib import Path

    from proxy.policy.bundle import load_bundle
    root = Path(__file__).resolve().parents[3]
    for folder, reads in ((root / "policies", True), (root / "bench" / "policies" / "allow-all", False)):
        bundle = load_bundle(folder)
        engine = regorus.Engine()
        for name, source in bundle.modules:
            engine.add_policy(name, source)
        assert reads_input_key(json.loads(engine.get_ast_as_json()), "estimate") is reads, folder

"""reads_input_key and depends_on: which input keys a policy may read and whether its answers can depend on
anything else, from regorus's own AST (the real parser)."""

from __future__ import annotations

import json

import pytest
import regorus

from proxy.policy.rego_ast import Node, depends_on, input_keys_read, reads_input_key

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


@pytest.mark.parametrize(("body", "keys"), [
    ('x if input.request.model == "m"', {"request"}),
    ('x := input.identity.team\ny := input["time"].hour_utc', {"identity", "time"}),
    ("import input.estimate as e\nx := e.prompt_tokens", {"estimate"}),
    ("x := 1", set()),
    ('x := data.t.y\ny := "constant"', set()),
    ("y if input.request\nx if y with input as {\"request\": input.models}", {"request", "models"}),
    ("x := input", None),
    ("x := count(input)", None),
    ('k := "request"\nx := input[k]', None),
    ("x := input.request.model == input.models[0]", {"request", "models"}),
])
def test_the_input_keys_a_policy_reads(body: str, keys: set[str] | None) -> None:
    parsed = modules(("p.rego", body))
    assert input_keys_read(parsed) == (None if keys is None else frozenset(keys))
    assert depends_on(parsed) == input_keys_read(parsed)


@pytest.mark.parametrize("body", [
    "x := time.now_ns()",
    'x := rand.intn("k", 10)',
    'x := uuid.rfc4122("k")',
    "f(n) := n + time.now_ns()\nx := f(1)",
    'x := io.jwt.decode_verify("t", {"secret": "s"})',
    'x := http.send({"method": "get", "url": "http://127.0.0.1:9"})',
    'x := opa.runtime()',
    'x := net.lookup_ip_addr("localhost")',
])
def test_a_policy_calling_a_volatile_builtin_depends_on_more_than_keys(body: str) -> None:
    parsed = modules(("p.rego", body))
    assert input_keys_read(parsed) == frozenset()
    assert depends_on(parsed) is None


def test_pure_builtins_and_the_clock_in_a_test_module_leave_the_dependence_to_keys() -> None:
    served = ("p.rego", 'x := time.parse_rfc3339_ns(input.time.at) + count(split("a,b", ","))')
    test = ("p_test.rego", "test_x if time.now_ns() > 0")
    assert depends_on(modules(served, test)) == frozenset({"time"})


def test_the_allow_all_bench_policy_reads_only_the_model_list() -> None:
    from pathlib import Path

    from proxy.policy.bundle import load_bundle
    bundle = load_bundle(Path(__file__).resolve().parents[3] / "bench" / "policies" / "allow-all")
    engine = regorus.Engine()
    for name, source in bundle.modules:
        engine.add_policy(name, source)
    assert depends_on(json.loads(engine.get_ast_as_json())) == frozenset({"models"})

"""Property: when reads_input_key says a policy never reads input.estimate, no value of the estimate can
change what it decides. Policies are composed from ways a rule can reach into the input, direct and
roundabout (whole-input builtins, computed keys, aliases, imports, comprehensions), and evaluated by
regorus on two inputs that differ only in the estimate."""

from __future__ import annotations

import json

import regorus
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.policy.rego_ast import depends_on, reads_input_key

# Each a rule body defining `v`, from the innocent to the roundabout.
REACHES = [
    'v := input.request.model',
    'v := input["identity"].team',
    'v := object.get(input, ["request", "model"], "none")',
    'v := count(input.request)',
    'v := input.estimate.prompt_tokens',
    'v := input["estimate"]["max_cost_usd"]',
    'v := object.get(input, "estimate", 0)',
    'v := json.marshal(input)',
    'v := count(input)',
    'v := [p | walk(input, [p, _])]',
    'k := "estimate"\nv := input[k]',
    'k := concat("", ["esti", "mate"])\nv := input[k].prompt_tokens',
    'doc := input\nv := doc.estimate',
    'v := {k | some k, _ in input}',
    'v := [x | some x in input.estimate]',
    'f(d) := d.estimate.prompt_tokens\nv := f(input)',
    'v := input.estimate.prompt_tokens > 1000',
    'v := object.remove(input, ["estimate"])',
    'v := input.time.hour_utc',
]
IMPORTS = ["", "import input.request as req\n", "import input.estimate as est\n"]
BASE = {"version": 1, "request": {"model": "gpt-4o", "endpoint": "chat.completions"},
        "identity": {"team": "research"}, "time": {"hour_utc": 8}}


def decide(modules: list[tuple[str, str]], estimate: dict[str, object]) -> object:
    engine = regorus.Engine()
    for name, source in modules:
        engine.add_policy(name, source)
    engine.set_input_json(json.dumps({**BASE, "estimate": estimate}))
    return [engine.eval_rule(f"data.p{i}.v") for i in range(len(modules))]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(REACHES), st.sampled_from(IMPORTS)), min_size=1, max_size=3),
       st.integers(0, 10**6), st.integers(0, 10**6))
def test_a_policy_said_not_to_read_the_estimate_decides_the_same_whatever_it_is(
        rules: list[tuple[str, str]], first: int, second: int) -> None:
    modules = [(f"p{i}.rego", f"package p{i}\nimport rego.v1\n{imported}{body}\n")
               for i, (body, imported) in enumerate(rules)]
    engine = regorus.Engine()
    for name, source in modules:
        engine.add_policy(name, source)
    if reads_input_key(json.loads(engine.get_ast_as_json()), "estimate"):
        return
    assert decide(modules, {"prompt_tokens": first, "max_cost_usd": first / 7}) == \
        decide(modules, {"prompt_tokens": second, "max_cost_usd": second / 3, "extra": [first]})


def test_the_property_has_teeth() -> None:
    # Only constant-key references to other members count as not reading; every roundabout reach above is
    # classified as reading (object.get on the whole input too, harmless as it is here): none is left to luck.
    innocent = {REACHES[0], REACHES[1], REACHES[3], REACHES[18]}
    for body in REACHES:
        engine = regorus.Engine()
        engine.add_policy("p.rego", f"package p\nimport rego.v1\n{body}\n")
        reads = reads_input_key(json.loads(engine.get_ast_as_json()), "estimate")
        assert reads is (body not in innocent), body


# Reaches whose answer is not a function of the input: a policy using one must never be said to depend on
# some keys only (its answers are never reused).
VOLATILE = ['v := time.now_ns()', 'v := rand.intn("draw", 1000000000)', 'v := uuid.rfc4122("id")']
OTHER = {"version": 2, "request": {"model": "o3", "endpoint": "responses"}, "identity": {"team": "payments"},
         "time": {"hour_utc": 23}, "estimate": {"prompt_tokens": 7}, "models": ["x"]}


def answers(modules: list[tuple[str, str]], doc: dict[str, object]) -> list[object]:
    engine = regorus.Engine()
    for name, source in modules:
        engine.add_policy(name, source)
    engine.set_input_json(json.dumps(doc))
    return [engine.eval_rule(f"data.p{i}.v") for i in range(len(modules))]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(REACHES + VOLATILE), st.sampled_from(IMPORTS)), min_size=1, max_size=3),
       st.sets(st.sampled_from(sorted(OTHER))))
def test_answers_change_only_with_the_keys_a_policy_is_said_to_depend_on(
        rules: list[tuple[str, str]], changed: set[str]) -> None:
    modules = [(f"p{i}.rego", f"package p{i}\nimport rego.v1\n{imported}{body}\n")
               for i, (body, imported) in enumerate(rules)]
    engine = regorus.Engine()
    for name, source in modules:
        engine.add_policy(name, source)
    keys = depends_on(json.loads(engine.get_ast_as_json()))
    if keys is None:
        return
    first = {**BASE, "estimate": {"prompt_tokens": 1}}
    # Every key the policy is not said to depend on changed, added or removed; the others kept.
    second = {k: v for k, v in first.items() if k in keys}
    second |= {k: OTHER[k] for k in changed if k not in keys}
    assert answers(modules, first) == answers(modules, second)


def test_the_dependence_property_has_teeth() -> None:
    for body in VOLATILE:
        engine = regorus.Engine()
        engine.add_policy("p.rego", f"package p0\nimport rego.v1\n{body}\n")
        assert depends_on(json.loads(engine.get_ast_as_json())) is None, body
        assert answers([("p.rego", f"package p0\nimport rego.v1\n{body}\n")], BASE) != \
            answers([("p.rego", f"package p0\nimport rego.v1\n{body}\n")], BASE), body

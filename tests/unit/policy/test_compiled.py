"""One meaning per policy: compiled mode (regorus RVM) answers exactly what the interpreter answers on the
whole sample set, for every shipped policy folder and data variant; where the RVM cannot mean the same
(rules that may conflict), it is not used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.conflicts import possible_conflicts
from proxy.policy.contract import ENTRYPOINTS, Entrypoint, builtin_samples, complete
from proxy.policy.embedded import EmbeddedRego
from proxy.policy.errors import PolicyEngineError
from proxy.policy.rego import UNDEFINED, build_engine
from proxy.policy.samples import Sample, decision_input
from proxy.policy.test_inputs import capture
from tests.support.config import REPO
from tests.support.policy_versions import conflicting_rules
from tests.unit.policy.conftest import make_input

SHIPPED = {"policies": default_policy_dir(), "helm": REPO / "helm" / "llm-policy-proxy" / "policies"}
AUDIT_ONLY = [[], ["llm.pii"], ["llm.budgets", "llm.limits"], ["llm.models", "llm.pii", "llm.limits", "llm.budgets"]]


def sample_set(root: Path) -> list[tuple[Entrypoint, Sample]]:
    """What validation asks: the built-in samples and the folder's own tests' inputs, per entry point."""
    bundle = load_bundle(root)
    captured = capture(bundle.modules, bundle.tests, bundle.data)
    cases = [(row, sample) for row in ENTRYPOINTS for sample in builtin_samples(row)]
    for location, partial in captured:
        for row in ENTRYPOINTS:
            document = complete(row, partial)
            if document is not None:
                cases.append((row, Sample(f"tests:{location}", document)))
    return cases


def assert_same_meaning(root: Path) -> int:
    interpreter, compiled = EmbeddedRego.from_dir(root), EmbeddedRego.from_dir(root, compiled=True)
    assert compiled.mode == "compiled", compiled.compile_error
    cases = sample_set(root)
    for row, sample in cases:
        expected = interpreter.evaluate_rule(row.path, sample.input)
        # The RVM itself, not the fallback: on the shipped policies it must answer every sample.
        raw = compiled._runtime.execute(row.path, orjson.dumps(sample.input).decode())
        assert raw != UNDEFINED, (row.path, sample.name)
        assert orjson.loads(raw) == expected, (row.path, sample.name)
    return len(cases)


@pytest.mark.parametrize("folder", list(SHIPPED))
@pytest.mark.parametrize("audit_only", AUDIT_ONLY, ids=lambda p: "+".join(p) or "enforced")
def test_compiled_answers_equal_interpreter_on_the_sample_set(tmp_path: Path, folder: str,
                                                              audit_only: list[str]) -> None:
    root = Path(shutil.copytree(SHIPPED[folder], tmp_path / "policies"))
    (root / "data" / "config.json").write_text(json.dumps({"config": {"audit_only": audit_only}}))
    assert assert_same_meaning(root) > 350


def test_compiled_egress_equals_interpreter_in_allow_list_mode(policy_copy: Path) -> None:
    (policy_copy / "data" / "egress.json").write_text(json.dumps({"egress": {
        "mode": "allow_list", "proxy_base_url": "https://llm.example/v1", "allow_hosts": ["*.github.com"],
        "exceptions": {"apps": {"billing-api": ["api.anthropic.com"]}}}}))
    assert_same_meaning(policy_copy)


def test_rvm_cannot_report_a_conflict_so_a_rule_that_may_conflict_keeps_it_off(policy_copy: Path) -> None:
    # What regorus does (0.13.0): the interpreter reports the conflict, the RVM answers undefined for the
    # conflicting rule and main.rego's else chain turns that into a decision that silently drops restore.
    conflicting_rules(policy_copy)
    doc = decision_input(pii="email")
    interpreter, compiled = EmbeddedRego.from_dir(policy_copy), EmbeddedRego.from_dir(policy_copy, compiled=True)
    with pytest.raises(PolicyEngineError, match="rule conflicts with rule"):
        interpreter.evaluate_rule("data.llm.main.decision", doc)
    decision = orjson.loads(compiled._runtime.execute("data.llm.main.decision", orjson.dumps(doc).decode()))
    assert decision["allow"] is True and "restore" not in decision
    # So the static check names it, and validation keeps the RVM off such a version (test_validate.py).
    bundle = load_bundle(policy_copy)
    found = possible_conflicts(json.loads(build_engine(bundle.modules, bundle.data).get_ast_as_json()))
    assert [c.path for c in found] == ["data.llm.pii.restore"]
    assert all(":" in location for location in found[0].locations)


async def test_undefined_rvm_answer_is_re_asked_of_the_interpreter(policy_copy: Path) -> None:
    # An else chain whose first body is an undefined lookup: the RVM answers undefined, OPA falls through.
    (policy_copy / "main.rego").write_text((policy_copy / "main.rego").read_text().replace(
        "decision := object.union(",
        'gate := x if { x := data.nowhere[input.version] } else := true\n\ndecision := object.union(\n'
        '\t{"allow": gate},\n\tobject.union(',
    ).replace("\tobligations,\n)", "\tobligations,\n))"))
    engine = EmbeddedRego.from_dir(policy_copy, compiled=True)
    assert engine.mode == "compiled"
    decision = await engine.evaluate(make_input())
    assert decision.allow

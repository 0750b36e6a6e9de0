"""Compiled mode (regorus RVM): the same answers as the interpreter, and the interpreter as fallback."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from proxy.identity import Identity
from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.embedded import EmbeddedRego, compile_program
from proxy.policy.input import PiiFinding, build_egress_input, identity_input
from tests.unit.policy.conftest import GPT_4O, PAYMENTS, RESEARCH, make_input, spend

SUPPORT_BOT = Identity(app="support-bot", team="support", user=None, key_id="k-1", source="api_key")
FRAUD_LAB = Identity(app="scorer", team="fraud-lab", user="u-7", key_id=None, source="sidecar")
CATALOGUE = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3-mini",
             "text-embedding-3-small", "text-embedding-3-large", "claude-sonnet-4"]
HOSTS = ["api.openai.com", "API.OpenAI.com.", "my-resource.openai.azure.com", "a.b.openai.azure.com",
         "bedrock-runtime.eu-central-1.amazonaws.com", "europe-west4-aiplatform.googleapis.com",
         "x.endpoints.huggingface.cloud", "api.anthropic.com", "api.github.com", "pypi.org", "localhost"]
AUDIT_ONLY = [[], ["llm.pii"], ["llm.budgets", "llm.limits"], ["llm.models", "llm.pii", "llm.limits", "llm.budgets"]]


def decision_inputs() -> list[dict[str, Any]]:
    """Every combination the shipped data reacts to: callers, models, sizes, PII and spend."""
    pii = [(), (PiiFinding("email", 2, "m[0]"),), (PiiFinding("card", 1, "m[1]"),),
           (PiiFinding("github_token", 1, "m[0]"), PiiFinding("phone", 1, "m[2]"))]
    budget = [(), (spend("team:payments", 92.0),), (spend("team:payments", 100.0), spend("app:billing-api", 95.0))]
    sizes = [(512, 812), (None, 40_000), (100_000, 150_000)]
    docs = []
    for identity, model, (max_tokens, prompt), found, spent in itertools.product(
        [PAYMENTS, RESEARCH, SUPPORT_BOT, FRAUD_LAB], ["gpt-4o", "o1", "text-embedding-3-large"], sizes, pii, budget
    ):
        endpoint = "embeddings" if model.startswith("text-") else "chat.completions"
        docs.append(make_input(model=model, identity=identity, endpoint=endpoint, max_tokens=max_tokens,
                               prompt_tokens=prompt, pii=found, budget=spent))
    docs.append(make_input(model="gpt-9", facts=None, identity=RESEARCH))
    docs.append(make_input(model="gpt-4o", facts=GPT_4O, endpoint="models.list"))
    return docs


def with_audit_only(root: Path, packages: list[str]) -> Path:
    path = root / "data" / "config.json"
    path.write_text(json.dumps({"config": {"audit_only": packages}}))
    return root


@pytest.mark.parametrize("audit_only", AUDIT_ONLY, ids=lambda p: "+".join(p) or "enforced")
def test_compiled_answers_equal_interpreter(policy_copy: Path, audit_only: list[str]) -> None:
    root = with_audit_only(policy_copy, audit_only)
    interpreter, compiled = EmbeddedRego.from_dir(root), EmbeddedRego.from_dir(root, compiled=True)
    assert compiled.mode == "compiled", compiled.compile_error
    cases: list[tuple[str, dict[str, Any]]] = [("data.llm.main.decision", doc) for doc in decision_inputs()]
    for identity in (PAYMENTS, RESEARCH, SUPPORT_BOT, FRAUD_LAB):
        cases.append(("data.llm.models.allowed_models",
                      {"version": 1, "identity": identity_input(identity), "models": CATALOGUE}))
        cases += [("data.llm.egress.decision", build_egress_input(host, 443, "CONNECT", identity)) for host in HOSTS]
    for rule, doc in cases:
        assert compiled.evaluate_entrypoint(rule, doc) == interpreter.evaluate_rule(rule, doc), (rule, doc)


def test_compiled_egress_equals_interpreter_in_allow_list_mode(policy_copy: Path) -> None:
    (policy_copy / "data" / "egress.json").write_text(json.dumps({"egress": {
        "mode": "allow_list", "proxy_base_url": "https://llm.example/v1", "allow_hosts": ["*.github.com"],
        "exceptions": {"apps": {"billing-api": ["api.anthropic.com"]}}}}))
    interpreter, compiled = EmbeddedRego.from_dir(policy_copy), EmbeddedRego.from_dir(policy_copy, compiled=True)
    for host, identity in itertools.product(HOSTS, (PAYMENTS, RESEARCH)):
        doc = build_egress_input(host, 443, "CONNECT", identity)
        assert compiled.evaluate_entrypoint("data.llm.egress.decision", doc) == \
            interpreter.evaluate_rule("data.llm.egress.decision", doc), host


def test_unsupported_policy_falls_back_to_interpreter(policy_copy: Path) -> None:
    # Partial object rules with constant keys: the RVM compiler refuses them.
    main = (policy_copy / "main.rego").read_text()
    main = main.replace('"allow": count(reasons) == 0', '"allow": count(reasons) == count(notes) - 1')
    (policy_copy / "main.rego").write_text(main + '\nnotes["a"] := 1 if input.version == 1\n')
    engine = EmbeddedRego.from_dir(policy_copy, compiled=True)
    assert engine.mode == "interpreter"
    assert engine.compile_error is not None and "constant keys" in engine.compile_error


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


def test_program_bytes_from_another_build_are_used(policy_copy: Path) -> None:
    bundle = load_bundle(default_policy_dir())
    engine = EmbeddedRego(bundle, program=compile_program(bundle))
    assert engine.mode == "compiled"
    assert engine.evaluate_entrypoint("data.llm.main.decision", make_input())["allow"] is True

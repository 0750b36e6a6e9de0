"""EmbeddedRego: compile errors with locations, runtime errors as engine errors, revisions, dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.policy.bundle import load_bundle
from proxy.policy.embedded import EmbeddedRego
from proxy.policy.errors import PolicyCompileError, PolicyEngineError
from proxy.policy.input import PiiFinding, build_egress_input
from tests.unit.policy.conftest import PAYMENTS, make_input


def edit_data(root: Path, name: str, change: dict[str, object]) -> None:
    path = root / "data" / f"{name}.json"
    doc = json.loads(path.read_text())
    doc[name].update(change)
    path.write_text(json.dumps(doc))


def test_syntax_error_names_file_line_and_column(policy_copy: Path) -> None:
    (policy_copy / "broken.rego").write_text("package llm.broken\n\nx if {\n  input.a ==\n}\n")
    with pytest.raises(PolicyCompileError, match=r"broken\.rego:5:1: error: "):
        EmbeddedRego.from_dir(policy_copy)


def test_missing_entry_point_is_a_compile_error(policy_copy: Path) -> None:
    (policy_copy / "egress.rego").unlink()
    (policy_copy / "egress_test.rego").unlink()
    with pytest.raises(PolicyCompileError, match=r"data\.llm\.egress\.decision is not defined"):
        EmbeddedRego.from_dir(policy_copy)


def test_conflicting_data_files_are_rejected(policy_copy: Path) -> None:
    (policy_copy / "data" / "extra.yaml").write_text("config:\n  audit_only: [llm.pii]\n")
    with pytest.raises(PolicyCompileError, match="also defined in"):
        EmbeddedRego.from_dir(policy_copy)


def test_yaml_data_is_merged(policy_copy: Path) -> None:
    (policy_copy / "data" / "extra.yaml").write_text("config:\n  site: eu-1\n")
    assert load_bundle(policy_copy).data["config"] == {"audit_only": [], "site": "eu-1"}


async def test_runtime_error_becomes_engine_error(policy_copy: Path) -> None:
    # Two complete definitions that disagree: OPA's eval_conflict_error, a multiple-results bug.
    (policy_copy / "conflict.rego").write_text(
        'package llm.main\n\nnote := "a" if input.version == 1\n\nnote := "b" if input.version == 1\n'
    )
    engine = EmbeddedRego.from_dir(policy_copy)
    with pytest.raises(PolicyEngineError, match="conflict"):
        engine.evaluate_rule("data.llm.main.note", make_input())


async def test_undefined_decision_is_an_engine_error(tmp_path: Path) -> None:
    never = 'package llm.main\n\ndecision := {"allow": true, "reasons": []} if input.never\n'
    (tmp_path / "main.rego").write_text(never)
    (tmp_path / "models.rego").write_text("package llm.models\n\nallowed_models := []\n")
    (tmp_path / "budgets.rego").write_text("package llm.budgets\n\nscopes := []\n")
    (tmp_path / "egress.rego").write_text('package llm.egress\n\ndecision := {"allow": true, "reasons": []}\n')
    engine = EmbeddedRego.from_dir(tmp_path)
    with pytest.raises(PolicyEngineError, match="undefined"):
        await engine.evaluate(make_input())


def test_revision_is_content_hash_and_follows_edits(policy_copy: Path) -> None:
    first = EmbeddedRego.from_dir(policy_copy).revision
    assert first.startswith("sha256:")
    assert EmbeddedRego.from_dir(policy_copy).revision == first
    edit_data(policy_copy, "limits", {"default": {"max_prompt_tokens": 1, "max_tokens": 1, "on_max_tokens": "cap"}})
    assert EmbeddedRego.from_dir(policy_copy).revision != first


def test_manifest_revision_wins(policy_copy: Path) -> None:
    (policy_copy / ".manifest").write_text(json.dumps({"revision": "2025-06-01.3", "roots": ["llm"]}))
    assert EmbeddedRego.from_dir(policy_copy).revision == "2025-06-01.3"


async def test_audit_only_package_reports_without_denying(policy_copy: Path) -> None:
    edit_data(policy_copy, "config", {"audit_only": ["llm.pii"]})
    engine = EmbeddedRego.from_dir(policy_copy)
    decision = await engine.evaluate(make_input(pii=(PiiFinding("aws_access_key", 1, "messages[0].content"),)))
    assert decision.allow
    assert [r.code for r in decision.audit] == ["pii_blocked"]
    assert decision.reasons == ()
    assert decision.redact == ()


async def test_egress_allow_list_mode_refuses_other_hosts(policy_copy: Path) -> None:
    edit_data(policy_copy, "egress", {"mode": "allow_list", "allow_hosts": ["*.github.com"]})
    engine = EmbeddedRego.from_dir(policy_copy)
    refused = await engine.evaluate_egress(build_egress_input("pypi.org", 443, "CONNECT", PAYMENTS))
    assert [r.code for r in refused.reasons] == ["host_not_allowed"]
    listed = await engine.evaluate_egress(build_egress_input("api.github.com", 443, "CONNECT", PAYMENTS))
    assert listed.allow


async def test_egress_exception_for_one_app(policy_copy: Path) -> None:
    edit_data(policy_copy, "egress", {"exceptions": {"apps": {"billing-api": ["api.anthropic.com"]}}})
    engine = EmbeddedRego.from_dir(policy_copy)
    own = await engine.evaluate_egress(build_egress_input("api.anthropic.com", 443, "CONNECT", PAYMENTS))
    assert own.allow
    assert own.provider == "anthropic"
    other = await engine.evaluate_egress(build_egress_input("api.openai.com", 443, "CONNECT", PAYMENTS))
    assert not other.allow

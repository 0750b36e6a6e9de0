"""`policy check/test/eval`: defaults that cannot mislead, and output an operator can act on."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from proxy.policy.bundle import default_policy_dir
from proxy.policy.cli import cmd_check, cmd_eval, cmd_test
from proxy.policy.samples import decision_input
from tests.support.policy_versions import conflicting_rules, restore_line
from tests.unit.policy.test_validate import GATE


def run(command, *args, **kwargs) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    code = command(*args, out=out, **kwargs)
    return code, out.getvalue()


@pytest.fixture
def in_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose ./policies is a copy of the shipped policies, as the current directory."""
    shutil.copytree(default_policy_dir(), tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "policies"


@pytest.mark.parametrize("command", [cmd_check, cmd_test])
def test_without_dir_the_commands_use_policies_in_the_current_directory(in_repository: Path, command: object) -> None:
    code, output = run(command)
    assert code == 0
    (in_repository / "limits.rego").write_text("package llm.limits\n\ndeny contains x if {\n  x := \n}\n")
    code, output = run(command)
    assert code == 1  # the repository's broken folder, not the shipped one
    assert f"{in_repository / 'limits.rego'}:4:" in output


@pytest.mark.parametrize("command", [cmd_check, cmd_test])
def test_without_dir_and_without_policies_here_the_commands_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: object) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = run(command)
    assert code == 2 and output == ""
    assert "pass DIR" in capsys.readouterr().err


def test_eval_without_dir_and_without_policies_here_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "input.json").write_text(json.dumps(decision_input()))
    assert run(cmd_eval, None, tmp_path / "input.json")[0] == 2


def test_check_reports_the_contract_sample_and_that_compiled_mode_agrees() -> None:
    code, output = run(cmd_check, default_policy_dir())
    assert code == 0
    lines = output.splitlines()
    assert lines[0].endswith("7 modules OK, revision " + lines[0].rsplit(" ", 1)[1])
    assert "answered all" in lines[1] and "built-in" in lines[1] and "tests" in lines[1]
    assert lines[2].startswith("compiled mode (policy.compiled): agrees with the interpreter on all")
    assert lines[3] == "input.estimate: read by a rule, so prompts are tokenized for it"
    assert lines[4].startswith("answers: may depend on the whole input")  # egress.rego: object.get(input, ...)


def test_check_says_when_no_rule_reads_the_estimate() -> None:
    code, output = run(cmd_check, Path(__file__).resolve().parents[3] / "bench" / "policies" / "allow-all")
    assert code == 0 and "input.estimate: read by no rule, so prompts are not tokenized for it" in output
    assert "answers: depend on input.models only; an entry point whose input has none of these is asked once " \
        "per version" in output


def test_check_says_when_compiled_mode_would_not_serve_a_version(policy_copy: Path) -> None:
    (policy_copy / "zz_gate.rego").write_text(GATE)
    code, output = run(cmd_check, policy_copy)
    assert code == 0
    assert "compiled mode (policy.compiled): not used for this version, the interpreter would serve it: " \
           "the RVM and the interpreter disagree: data.llm.main.decision on sample builtin:" in output


def test_check_rejects_conflicting_rules_with_file_line_and_sample(policy_copy: Path) -> None:
    conflicting_rules(policy_copy)
    code, output = run(cmd_check, policy_copy)
    assert code == 1
    first = output.splitlines()[0]
    assert f"{policy_copy}: rejected: " in first
    conflict = f"{policy_copy / 'zz_conflict.rego'}:3:1: error: rule conflicts with rule at "
    assert conflict + f"{policy_copy / 'pii.rego'}:{restore_line(policy_copy)}:1" in first
    assert "sample builtin:key/pii=email" in first


def test_check_reports_file_and_line_of_a_broken_policy(policy_copy: Path) -> None:
    (policy_copy / "limits.rego").write_text("package llm.limits\n\ndeny contains x if {\n  x := \n}\n")
    code, output = run(cmd_check, policy_copy)
    assert code == 1
    assert f"{policy_copy / 'limits.rego'}:4:5: error:" in output


def test_test_command_runs_every_shipped_test_verbosely() -> None:
    code, output = run(cmd_test, default_policy_dir(), verbose=True)
    assert code == 0
    assert "data.llm.pii_test.test_secret_blocked_with_types_named: PASS" in output
    assert "data.llm.egress_test.test_wildcard_provider_hosts_match: PASS" in output
    total = output.count(": PASS (")
    assert total >= 50
    assert output.rstrip().endswith(f"PASS: {total}/{total}")


def test_failing_test_rule_makes_the_command_fail(tmp_path: Path) -> None:
    (tmp_path / "x_test.rego").write_text(
        "package x_test\n\ntest_ok if true\n\ntest_broken if 1 == 2\n\ntest_error if 1 / 0\n"
    )
    code, output = run(cmd_test, tmp_path)
    assert code == 1
    assert "data.x_test.test_broken: FAIL" in output
    assert "data.x_test.test_ok" not in output  # only failures without -v
    assert "PASS: 1/3" in output
    assert "FAIL: 1/3" in output


def test_eval_prints_the_decision(tmp_path: Path) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps(decision_input(model="reasoning")))
    code, output = run(cmd_eval, default_policy_dir(), input_file)
    assert code == 0
    decision = json.loads(output)
    assert decision["allow"] is False
    assert decision["reasons"][0]["code"] == "model_not_allowed"


def test_eval_validates_the_input_against_its_schema(tmp_path: Path) -> None:
    doc = decision_input()
    doc["request"]["max_tokens"] = "512"
    del doc["time"]
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps(doc))
    code, output = run(cmd_eval, default_policy_dir(), input_file)
    assert code == 1
    assert f"{input_file}: not a valid input of data.llm.main.decision (input.v1.json):" in output
    assert "(document): 'time' is a required property" in output
    assert "request.max_tokens: '512' is not of type 'integer', 'null'" in output


def test_eval_other_entrypoint(tmp_path: Path) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps({"version": 1, "host": "api.x.ai", "port": 443, "method": "CONNECT",
                                      "identity": decision_input()["identity"]}))
    code, output = run(cmd_eval, default_policy_dir(), input_file, entrypoint="data.llm.egress.decision")
    assert code == 0
    assert json.loads(output)["provider"] == "xai"


def test_eval_of_a_decision_that_breaks_the_contract_fails(policy_copy: Path, tmp_path: Path) -> None:
    main = policy_copy / "main.rego"
    main.write_text(main.read_text().replace('"allow": count(reasons) == 0', '"allow": "yes"'))
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps(decision_input()))
    code, output = run(cmd_eval, policy_copy, input_file)
    assert code == 1
    assert "allow: 'yes' is not of type 'boolean'" in output

"""`policy check/test/eval/diff-report`: exit codes and output an operator can act on."""

from __future__ import annotations

import io
import json
from pathlib import Path

import orjson

from proxy.policy.cli import cmd_check, cmd_diff_report, cmd_eval, cmd_test
from proxy.policy.decision import Decision, Reason
from proxy.policy.shadow import JsonlSink, diff_decisions
from tests.unit.policy.conftest import make_input


def run(command, *args, **kwargs) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    code = command(*args, out=out, **kwargs)
    return code, out.getvalue()


def test_check_passes_on_shipped_policies() -> None:
    code, output = run(cmd_check)
    assert code == 0
    assert "OK" in output


def test_check_reports_file_and_line_of_a_broken_policy(policy_copy: Path) -> None:
    (policy_copy / "limits.rego").write_text("package llm.limits\n\ndeny contains x if {\n  x := \n}\n")
    code, output = run(cmd_check, policy_copy)
    assert code == 1
    assert f"{policy_copy / 'limits.rego'}:4:5: error:" in output


def test_test_command_runs_every_shipped_test_verbosely() -> None:
    code, output = run(cmd_test, verbose=True)
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
    input_file.write_text(json.dumps(make_input(model="o1")))
    code, output = run(cmd_eval, None, input_file)
    assert code == 0
    decision = json.loads(output)
    assert decision["allow"] is False
    assert decision["reasons"][0]["code"] == "model_not_allowed"


def test_eval_other_entrypoint(tmp_path: Path) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps({"host": "api.x.ai", "port": 443, "method": "CONNECT", "identity": {"app": "a"}}))
    code, output = run(cmd_eval, None, input_file, entrypoint="data.llm.egress.decision")
    assert code == 0
    assert json.loads(output)["provider"] == "xai"


def test_diff_report_counts_kinds_and_codes(tmp_path: Path) -> None:
    path = tmp_path / "shadow.jsonl"
    sink = JsonlSink(path)
    allow = Decision(allow=True)
    deny = Decision(allow=False, reasons=(Reason("prompt_too_large", "too big"),))
    capped = Decision(allow=True, max_tokens=100)
    for live, candidate in [(allow, deny), (allow, deny), (allow, capped)]:
        difference = diff_decisions(live, candidate, "r1", "r2")
        assert difference is not None
        sink(difference.as_event())
    sink.close()
    with path.open("ab") as f:
        f.write(b"not json\n" + orjson.dumps({"event": "other"}) + b"\n")
    code, output = run(cmd_diff_report, path)
    assert code == 0
    assert "shadow differences: 3 (2 unreadable lines skipped)" in output
    assert "2  allow -> deny" in output
    assert "2  prompt_too_large" in output
    assert "1  max_tokens" in output
    assert "3  r1 -> r2" in output

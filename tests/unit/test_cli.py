"""The command line: policy check/test/eval and budget show/reset against a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.__main__ import main
from tests.support.config import REPO


def test_policy_test_and_check_on_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test"]) == 0
    assert "PASS:" in capsys.readouterr().out
    assert main(["policy", "check", str(REPO / "policies")]) == 0


def test_policy_check_names_file_and_line_of_a_broken_policy(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.rego").write_text("package llm.bad\n\nallow if {\n  input.x ==\n}\n")
    assert main(["policy", "check", str(tmp_path)]) != 0
    output = capsys.readouterr()
    assert "bad.rego:" in output.out + output.err


def test_policy_eval_prints_the_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {"version": 1,
                "request": {"endpoint": "chat.completions", "model": "gpt-4o", "stream": False, "max_tokens": None,
                            "messages": 1, "tools": [], "user": None},
                "identity": {"app": "support-bot", "team": "support", "user": None, "key_id": "k", "source": "api_key",
                             "admin": False},
                "model": {"provider": "openai", "input_usd_per_mtok": 2.5, "output_usd_per_mtok": 10.0,
                          "cached_input_usd_per_mtok": 1.25, "context_window": 128000},
                "estimate": {"prompt_tokens": 10, "max_output_tokens": 100, "max_cost_usd": 0.001},
                "pii": {"types": [], "counts": {}, "findings": []}, "budget": {},
                "time": {"unix": 1795000000, "weekday": 3, "hour_utc": 14}}
    path = tmp_path / "input.json"
    path.write_text(json.dumps(document))
    assert main(["policy", "eval", "--input", str(path)]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["allow"] is False
    assert decision["reasons"][0]["code"] == "model_not_allowed"


def test_budget_show_and_reset(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMPP_STATE_DIR", str(tmp_path))
    config = str(REPO / "proxy" / "examples" / "demo.yaml")
    assert main(["budget", "show", "--config", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["budget", "reset", "--config", config, "team:payments"]) == 0
    assert "reset team:payments" in capsys.readouterr().out
    assert (tmp_path / "budget.sqlite3").exists()

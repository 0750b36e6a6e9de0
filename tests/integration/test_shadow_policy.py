"""A candidate policy runs beside the live one on real traffic; differences are logged, counted, reported."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from proxy.__main__ import main
from proxy.components import COMPONENTS
from proxy.policy.reload import PolicyReloader
from tests.conftest import ProxyFactory, UpstreamHandle
from tests.support.config import KEYS, REPO
from tests.support.policy_versions import conflicting_rules

HELLO = [{"role": "user", "content": "Hi"}]


def test_shadow_policy_differences_are_recorded_without_affecting_traffic(
        make_proxy: ProxyFactory, upstream: UpstreamHandle, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(REPO / "policies", candidate)
    models = json.loads((candidate / "data" / "models.json").read_text())
    models["models"]["teams"]["payments"] = ["gpt-4o-mini"]  # the candidate would deny gpt-4o to payments
    (candidate / "data" / "models.json").write_text(json.dumps(models))
    log = tmp_path / "shadow.jsonl"
    proxy = make_proxy(policy__shadow_dir=str(candidate), policy__shadow_log=str(log))

    payments = proxy.client()
    for _ in range(3):
        payments.chat.completions.create(model="gpt-4o", messages=HELLO)  # live policy allows
    proxy.client(KEYS["research"]).chat.completions.create(model="gpt-4o", messages=HELLO)  # both allow
    assert len(upstream.model.received) == 4

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(log.read_text().splitlines()) < 3:
        time.sleep(0.05)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(events) == 3
    assert all("allow" in event["kinds"] for event in events)
    assert all(event["live"]["allow"] is True and event["candidate"]["allow"] is False for event in events)
    # Who would be affected: what a security team needs to act on the difference.
    assert all({k: event[k] for k in ("team", "app", "model", "endpoint")} == {
        "team": "payments", "app": "billing-api", "model": "gpt-4o", "endpoint": "chat.completions"}
        for event in events)
    assert "Hi" not in log.read_text()
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_policy_shadow_differences_total{kind="allow"} 3.0' in metrics

    capsys.readouterr()
    assert main(["policy", "diff-report", str(log)]) == 0
    report = capsys.readouterr().out
    assert "        3  allow -> deny; +model_not_allowed  (payments/billing-api 3)" in report
    assert "        3  payments/billing-api  (allow -> deny; +model_not_allowed 3)" in report
    assert "        3  gpt-4o chat.completions" in report


def test_shadow_reloads_are_validated_and_reported_like_live_ones(
        make_proxy: ProxyFactory, upstream: UpstreamHandle, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(REPO / "policies", candidate)
    proxy = make_proxy(policy__shadow_dir=str(candidate), policy__reload_interval_s=0.05)
    shadow = proxy.app[COMPONENTS].reporter.shadow
    assert shadow is not None and isinstance(shadow.candidate, PolicyReloader)
    before = shadow.candidate.revision
    conflicting_rules(candidate)
    deadline = time.monotonic() + 30
    while shadow.candidate.reloads_failed == 0:
        assert time.monotonic() < deadline, "the broken candidate was never rejected"
        time.sleep(0.02)
    assert shadow.candidate.revision == before
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_policy_versions_rejected_total{policy="shadow",reason="conflict"} 1.0' in metrics
    logged = capsys.readouterr().out
    assert "policy_reload_failed" in logged and "policy=shadow" in logged and "zz_conflict.rego:3:1" in logged
    # The live policy is not affected.
    proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)

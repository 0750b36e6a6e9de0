"""A candidate policy runs beside the live one on real traffic; differences are logged, counted, reported."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from proxy.__main__ import main
from tests.conftest import ProxyFactory, UpstreamHandle
from tests.support.config import KEYS, REPO

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
    assert "Hi" not in log.read_text()
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_policy_shadow_differences_total{kind="allow"} 3.0' in metrics

    capsys.readouterr()
    assert main(["policy", "diff-report", str(log)]) == 0
    report = capsys.readouterr().out
    assert "3" in report and "allow" in report

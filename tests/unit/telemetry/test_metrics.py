"""The policy revision gauge shows the revision in force, one process or many."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from proxy.telemetry.metrics import Metrics


def revisions(exposition: str) -> dict[str, float]:
    # Worker processes add a pid label (multiprocess_mode="liveall").
    return {m.group(1): float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines()
            if line.startswith("llm_proxy_policy_revision_info{") and (m := re.search(r'revision="([^"]*)"', line))}


def test_a_reload_replaces_the_revision_in_force() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.policy_reloaded(ok=True, revision="r1")
    metrics.policy_reloaded(ok=False, revision=None)
    assert revisions(generate_latest(metrics.registry).decode()) == {"r1": 1.0}
    metrics.policy_reloaded(ok=True, revision="r2")
    metrics.policy_reloaded(ok=True, revision="r2")
    assert revisions(generate_latest(metrics.registry).decode()) == {"r2": 1.0}


def test_with_worker_processes_the_old_revision_reads_0_and_nothing_warns(tmp_path: Path) -> None:
    # prometheus_client picks its multiprocess store at import, hence a fresh interpreter.
    script = ("from prometheus_client import CollectorRegistry, generate_latest\n"
              "from prometheus_client.multiprocess import MultiProcessCollector\n"
              "from proxy.telemetry.metrics import Metrics\n"
              f"metrics = Metrics(CollectorRegistry(), multiprocess_dir={str(tmp_path)!r})\n"
              "metrics.policy_reloaded(ok=True, revision='r1')\n"
              "metrics.policy_reloaded(ok=True, revision='r2')\n"
              "registry = CollectorRegistry()\n"
              "MultiProcessCollector(registry)\n"
              "print(generate_latest(registry).decode())\n")
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", script], capture_output=True, text=True,
                          env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert revisions(done.stdout) == {"r1": 0.0, "r2": 1.0}


def test_switched_off_every_update_is_dropped() -> None:
    metrics = Metrics(CollectorRegistry(), enabled=False)
    metrics.in_flight.inc()
    metrics.request_finished(endpoint="chat.completions", model="gpt-4o", team="t", app="a", decision="allow",
                             status=200, seconds=0.1, upstream_seconds=0.05)
    metrics.tokens_used(model="gpt-4o", team="t", app="a", input_tokens=10, cached_input_tokens=0, output_tokens=5,
                        cost_usd=0.01)
    metrics.policy_reloaded(ok=True, revision="r1")
    metrics.budget_observed(scope="team:t", spent_usd=1.0, limit_usd=10.0)
    assert [line for line in generate_latest(metrics.registry).decode().splitlines()
            if line and not line.startswith("#")] == []

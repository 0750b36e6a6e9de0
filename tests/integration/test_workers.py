"""`serve --workers 2`: two processes share the port, metrics add up across them, SIGTERM drains a stream."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import UpstreamHandle
from tests.support.config import KEYS, config_document
from tests.support.processes import start_proxy, stop_proxy

AUTH = {"Authorization": f"Bearer {KEYS['research']}"}
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_two_workers_share_the_port_and_drain_on_sigterm(upstream: UpstreamHandle, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_document(upstream.url, tmp_path, telemetry={"log_level": "warning"})))
    proc, root = start_proxy(config, workers=2)
    try:
        with httpx.Client(base_url=root, headers=AUTH) as client:
            for _ in range(8):
                client.post("/v1/chat/completions", json=BODY, headers={"Connection": "close"}).raise_for_status()
            metrics = client.get("/metrics").text
        total = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                    if line.startswith("llm_proxy_requests_total{"))
        assert total == 8
        # Every worker observes its garbage-collector pauses (proxy/server/gc_tuning.py).
        assert 'llm_proxy_gc_pause_seconds_count{generation="2"}' in metrics

        # A slow stream in flight when SIGTERM arrives still finishes.
        upstream.model.faults.chunk_delay_s = 0.05
        result: dict[str, str] = {}

        def stream() -> None:
            with httpx.stream("POST", root + "/v1/chat/completions", headers=AUTH, json={**BODY, "stream": True},
                              timeout=10) as response:
                result["body"] = response.read().decode()

        reader = threading.Thread(target=stream)
        reader.start()
        time.sleep(0.2)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        proc.send_signal(signal.SIGTERM)
        # More stop signals while draining (a second SIGTERM; Ctrl-C reaches every process of the group):
        # ignored, the stream still finishes.
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):  # the worker without the stream may be gone already
                os.kill(int(pid), signal.SIGINT)
        reader.join(15)
        assert result["body"].rstrip().endswith("data: [DONE]")
        assert proc.wait(20) == 0
        # Nothing on stderr: e.g. prometheus_client warns when a metric's labels are cleared in this mode.
        assert proc.stderr is not None and proc.stderr.read().decode() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_worker_stuck_at_shutdown_prints_its_stacks_and_exits_1() -> None:
    # The worker's own watchdog (proxy.server.workers.arm_exit_watchdog), armed by its first shutdown hook: here
    # the process is wedged on its main thread, as a cleanup that never returns would leave it.
    script = ("import threading\n"
              "from proxy.config import ServerConfig\n"
              "from proxy.server.workers import arm_exit_watchdog\n"
              "arm_exit_watchdog(ServerConfig(drain_timeout_s=0.2, exit_grace_s=0.3))\n"
              "def wedged_cleanup():\n"
              "    threading.Event().wait()\n"
              "wedged_cleanup()\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=20)
    assert done.returncode == 1
    assert 0.5 <= time.monotonic() - started < 10
    stderr = done.stderr.decode()
    assert "most recent call first" in stderr and "wedged_cleanup" in stderr


@pytest.mark.slow
def test_the_supervisor_kills_a_worker_that_cannot_stop_and_exits_1(upstream: UpstreamHandle,
                                                                     tmp_path: Path) -> None:
    # A stopped (SIGSTOP) worker runs nothing, not even its watchdog: the supervisor's backstop has to act.
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_document(
        upstream.url, tmp_path, telemetry={"log_level": "warning"},
        server={"drain_timeout_s": 0.2, "exit_grace_s": 0.3})))
    log_path = tmp_path / "proxy.log"
    with open(log_path, "wb") as log_file:
        proc, _ = start_proxy(config, workers=2, stdout=log_file)
    try:
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        os.kill(int(workers[0]), signal.SIGSTOP)
        started = time.monotonic()
        proc.terminate()
        assert proc.wait(30) == 1
        # drain 0.2 + grace 0.3 + the supervisor's 5 s margin, then SIGABRT, then SIGKILL 2 s later.
        assert 5 < time.monotonic() - started < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    timeouts = [(e["pid"], e["signal"]) for e in events if e.get("event") == "worker_stop_timeout"]
    assert timeouts == [(int(workers[0]), "SIGABRT"), (int(workers[0]), "SIGKILL")]
    assert any(e.get("event") == "supervisor_stopped" and e.get("failed_workers") == [int(workers[0])]
               for e in events)


def test_sigterm_during_start_up_stops_the_workers_cleanly(upstream: UpstreamHandle, tmp_path: Path) -> None:
    # Before aiohttp's handlers exist, a worker remembers the stop and acts on it once started.
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_document(upstream.url, tmp_path, telemetry={"log_level": "warning"})))
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", "0",
                             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while len(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True).stdout.split()) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        assert err.decode() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_crashed_worker_is_replaced_and_its_live_gauges_forgotten(upstream: UpstreamHandle, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_document(upstream.url, tmp_path, telemetry={"log_level": "warning"})))
    proc, root = start_proxy(config, workers=2)
    try:
        def workers() -> set[str]:
            return set(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split())

        def revision_pids() -> set[str]:
            metrics = httpx.get(root + "/metrics").text
            return {line.split('pid="', 1)[1].split('"', 1)[0] for line in metrics.splitlines()
                    if line.startswith("llm_proxy_policy_revision_info{")}

        before = workers()
        deadline = time.monotonic() + 20
        while revision_pids() != before:  # /readyz answers as soon as one worker is up
            assert time.monotonic() < deadline, (before, revision_pids())
            time.sleep(0.1)
        crashed = sorted(before)[0]
        os.kill(int(crashed), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while len(workers() - before) < 1 or revision_pids() != workers():
            assert time.monotonic() < deadline, (workers(), revision_pids())
            time.sleep(0.2)
        assert crashed not in revision_pids()
        stop_proxy(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""`serve --workers 2`: two processes share the port, metrics add up across them, SIGTERM drains a stream."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import UpstreamHandle
from tests.support.config import KEYS, config_document
from tests.support.processes import start_proxy

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
        # Every worker observes its garbage-collector pauses (proxy/runtime.py).
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
        proc.send_signal(signal.SIGTERM)
        reader.join(15)
        assert result["body"].rstrip().endswith("data: [DONE]")
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

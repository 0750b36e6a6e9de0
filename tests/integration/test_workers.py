"""`serve --workers 2`: two processes share the port, metrics add up across them, SIGTERM drains a stream."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import UpstreamHandle
from tests.support.config import KEYS, config_document

AUTH = {"Authorization": f"Bearer {KEYS['research']}"}
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_workers_share_the_port_and_drain_on_sigterm(upstream: UpstreamHandle, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_document(upstream.url, tmp_path, telemetry={"log_level": "warning"})))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", str(port),
                             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(root + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the workers did not come up"
            time.sleep(0.1)
        with httpx.Client(base_url=root, headers=AUTH) as client:
            for _ in range(8):
                client.post("/v1/chat/completions", json=BODY, headers={"Connection": "close"}).raise_for_status()
            metrics = client.get("/metrics").text
        total = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                    if line.startswith("llm_proxy_requests_total{"))
        assert total == 8

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

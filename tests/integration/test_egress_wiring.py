"""The egress listener runs inside the proxy when enabled, and its refusals show in /admin/shadow-ai."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
import yaml

from proxy.__main__ import main
from proxy.app import EGRESS
from tests.conftest import ProxyFactory
from tests.support.config import KEYS, config_document


def test_enabled_egress_refuses_providers_and_reports_them(make_proxy: ProxyFactory) -> None:
    proxy = make_proxy(egress={"enabled": True, "port": 0})
    port = proxy.app[EGRESS].port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
                     b"Proxy-Authorization: Bearer " + KEYS["payments"].encode() + b"\r\n\r\n")
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 403")
    assert "/v1" in reply
    rows = httpx.get(proxy.root + "/admin/shadow-ai", params={"since": "1h"},
                     headers={"Authorization": f"Bearer {KEYS['admin']}"}).json()["data"]
    assert [(r["app"], r["provider"], r["attempts"]) for r in rows] == [("billing-api", "openai", 1)]
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'shadow_ai_attempts_total{app="billing-api",provider="openai"} 1.0' in metrics


def test_shadow_ai_report_command_reads_the_store(make_proxy: ProxyFactory, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    proxy = make_proxy(egress={"enabled": True, "port": 0})
    with socket.create_connection(("127.0.0.1", proxy.app[EGRESS].port), timeout=5) as sock:
        sock.sendall(b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n"
                     b"Proxy-Authorization: Bearer " + KEYS["research"].encode() + b"\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 403")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_document("http://127.0.0.1:1/v1", tmp_path)))
    assert main(["shadow-ai", "report", "--config", str(config), "--since", "1h"]) == 0
    report = capsys.readouterr().out
    assert "notebook" in report and "anthropic" in report
    assert main(["shadow-ai", "report", "--config", str(config), "--since", "soon"]) == 2

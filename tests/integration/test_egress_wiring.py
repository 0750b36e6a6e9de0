"""The egress listener runs inside the proxy when enabled, and its refusals show in /admin/shadow-ai."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.__main__ import main
from proxy.components import COMPONENTS
from tests.conftest import ProxyFactory, ProxyHandle
from tests.support.config import KEYS, config_document

# Provider names resolve to loopback stand-ins, so no test asks real DNS; they are refused by the policy.
SETTINGS: dict[str, Any] = {"enabled": True, "port": 0,
                            "resolve": {"api.openai.com": "127.0.0.1", "api.anthropic.com": "127.0.0.1"}}


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
        return reply


def report_rows(proxy: ProxyHandle) -> list[tuple[str, str, str, int]]:
    rows = httpx.get(proxy.root + "/admin/shadow-ai", params={"since": "1h"},
                     headers={"Authorization": f"Bearer {KEYS['admin']}"}).json()["data"]
    return [(r["app"], r["provider"], r["reason"], r["attempts"]) for r in rows]


def test_enabled_egress_refuses_providers_and_reports_them(make_proxy: ProxyFactory) -> None:
    proxy = make_proxy(egress=SETTINGS)
    reply = exchange(proxy.app[COMPONENTS].egress.port,
                     b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
                     b"Proxy-Authorization: Bearer " + KEYS["payments"].encode() + b"\r\n\r\n").decode()
    assert reply.startswith("HTTP/1.1 403")
    assert "/v1" in reply
    assert report_rows(proxy) == [("billing-api", "openai", "ai_provider_blocked", 1)]
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'shadow_ai_attempts_total{app="billing-api",provider="openai"} 1.0' in metrics
    assert 'llm_proxy_egress_refused_total{reason="ai_provider_blocked"} 1.0' in metrics


def test_the_proxy_api_is_not_reachable_through_its_own_egress_listener(make_proxy: ProxyFactory) -> None:
    proxy = make_proxy(egress=SETTINGS)
    egress_port = proxy.app[COMPONENTS].egress.port
    for target in (f"127.0.0.1:{proxy.port}", f"2130706433:{proxy.port}", f"[::ffff:127.0.0.1]:{egress_port}",
                   "169.254.169.254:80"):
        reply = exchange(egress_port, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode()).decode()
        assert reply.startswith("HTTP/1.1 403 Forbidden\r\n"), reply
        assert "403 egress refused (internal_destination): " in reply
    plain = exchange(egress_port, f"GET http://127.0.0.1:{proxy.port}/admin/budgets HTTP/1.1\r\n"
                                  f"Authorization: Bearer {KEYS['admin']}\r\n\r\n".encode()).decode()
    assert plain.startswith("HTTP/1.1 403 Forbidden\r\n") and "loopback" in plain
    assert report_rows(proxy) == [("unknown", "none", "internal_destination", 5)]
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_egress_refused_total{reason="internal_destination"} 5.0' in metrics


def test_shadow_ai_report_command_reads_the_store(make_proxy: ProxyFactory, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    proxy = make_proxy(egress=SETTINGS)
    reply = exchange(proxy.app[COMPONENTS].egress.port,
                     b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n"
                     b"Proxy-Authorization: Bearer " + KEYS["research"].encode() + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 403")
    exchange(proxy.app[COMPONENTS].egress.port, b"CONNECT metadata.google.internal:80 HTTP/1.1\r\n\r\n")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_document("http://127.0.0.1:1/v1", tmp_path)))
    assert main(["shadow-ai", "report", "--config", str(config), "--since", "1h"]) == 0
    report = capsys.readouterr().out
    assert "notebook" in report and "anthropic" in report and "ai_provider_blocked" in report
    assert "internal_destination" in report and "metadata.google.internal" in report
    assert main(["shadow-ai", "report", "--config", str(config), "--since", "soon"]) == 2

"""The egress listener runs inside the proxy when enabled, and its refusals show in /admin/shadow-ai."""

from __future__ import annotations

import socket

import httpx

from proxy.app import EGRESS
from tests.conftest import ProxyFactory
from tests.support.config import KEYS


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

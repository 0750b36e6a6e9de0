"""End to end: a real Prometheus scrapes running proxies under traffic, and every dashboard panel's query
returns data through its HTTP API; the repository's alert rules load, evaluate and fire on that traffic.

Two proxies are scraped, as two replicas would be: the main one (embedded policy with hot reload and a
shadow candidate, egress on) serves every kind of request; a degraded one (OPA down with policy fail-open,
Redis down with budgets failing closed) is the only way to reach the fail-open and budget-store-error
panels.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from proxy.components import COMPONENTS
from proxy.identity import hash_key
from proxy.identity.config import ApiKey
from proxy.identity.keyfile import write_keys
from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.observability.conftest import PrometheusFactory
from tests.observability.panels import panel_queries
from tests.support.config import KEYS, REPO
from tests.support.mcp_server import UPSTREAM_TOKEN, McpServerThread
from tests.support.prometheus_server import RULES, PrometheusServer, has_data
from tests.support.redis_server import free_port

# Firing on a fresh Prometheus needs no `for:`; each of these is caused by the traffic below.
EXPECTED_FIRING = {"LLMProxyPolicyReloadFailed", "LLMProxyPolicyEngineErrors", "LLMProxyFailOpen",
                   "LLMProxyShadowAIAttempts"}
NEEDS_TWO_SAMPLES = re.compile(r"\b(?:rate|irate|increase)\s*\(")
HELLO = [{"role": "user", "content": "Hi"}]
CARD = "4111 1111 1111 1111"
DEADLINE_S = 20


def policy_copy(tmp_path: Path) -> Path:
    """The repository's policies, with the limits package audit-only, a tiny research budget and a
    two-requests-a-minute rate limit for support."""
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    (target / "data" / "config.json").write_text(json.dumps({"config": {"audit_only": ["llm.limits"]}}))
    budgets_path = target / "data" / "budgets.json"
    budgets = json.loads(budgets_path.read_text())
    teams = budgets["budgets"]["scopes"]["team"]
    teams["research"] = [{"limit_usd": 0.01, "window": "day"}]
    teams["support"] = [{"requests_per_minute": 2, "window": "rolling", "window_seconds": 60}]
    budgets_path.write_text(json.dumps(budgets))
    return target


def successful_calls(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    client = proxy.client()
    assert client.chat.completions.create(model="gpt-4o", messages=HELLO).choices[0].message.content
    chunks = client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert client.embeddings.create(model="text-embedding-3-small", input="hello").data[0].embedding
    assert client.responses.create(model="gpt-4o", input="Hi").output_text
    # Over payments' max_tokens limit, but llm.limits is audit-only: a would-deny that is forwarded.
    client.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=5000)
    assert upstream.model.last().body["max_tokens"] == 5000
    # payments redacts cards on the way out; the answer carries an email of its own, redacted on the way back.
    upstream.model.reply_override = "Write to ops.team@example.org"
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"Refund {CARD}"}])
    assert CARD not in str(upstream.model.last().body)
    upstream.model.reply_override = None


def refused_calls(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    support, research = proxy.client(KEYS["support"]), proxy.client(KEYS["research"])
    with pytest.raises(openai.PermissionDeniedError) as denied:
        support.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert denied.value.code == "model_not_allowed"
    with pytest.raises(openai.PermissionDeniedError) as blocked:
        research.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"charge {CARD}"}])
    assert blocked.value.code == "pii_blocked"
    with pytest.raises(openai.RateLimitError) as over_budget:
        research.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert over_budget.value.code == "budget_exceeded"
    # Two requests a minute: the first round uses both and is refused the third, later rounds at once.
    refusals = []
    for _ in range(3):
        try:
            support.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        except openai.RateLimitError as exc:
            refusals.append(exc.code)
            break
    assert refusals == ["rate_limit_exceeded"]
    upstream.model.faults.status = 500
    try:
        with pytest.raises(openai.InternalServerError):
            proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    finally:
        upstream.model.faults.status = None


def degraded_call(degraded: ProxyHandle, upstream: UpstreamHandle) -> None:
    # The policy fails open (counted) with no budget limit, so the dead Redis is not asked before the call;
    # recording the spend at settle fails on it (a store error) and the spend goes to the ledger.
    received = len(upstream.model.received)
    degraded.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    assert len(upstream.model.received) == received + 1


def shadow_ai_attempt(proxy: ProxyHandle) -> None:
    with socket.create_connection(("127.0.0.1", proxy.app[COMPONENTS].egress.port), timeout=5) as sock:
        sock.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
                     b"Proxy-Authorization: Bearer " + KEYS["payments"].encode() + b"\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 403")


def mcp_tool_calls(proxy: ProxyHandle) -> None:
    """One allowed and one denied tool call through the MCP gateway (raw Streamable HTTP)."""
    url, headers = f"{proxy.root}/mcp/crm", {"Authorization": f"Bearer {KEYS['payments']}",
                                             "Accept": "application/json, text/event-stream"}
    initialized = httpx.post(url, headers=headers, timeout=10, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}})
    headers |= {"Mcp-Session-Id": initialized.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
    httpx.post(url, headers=headers, timeout=10, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    for id_, tool in enumerate(("lookup", "send_mail"), 1):
        answer = httpx.post(url, headers=headers, timeout=10, json={
            "jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": tool, "arguments": {"to": "x"}}})
        assert answer.status_code == 200


def wait_for_sample(proxy: ProxyHandle, sample: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while sample not in httpx.get(proxy.root + "/metrics").text:
        assert time.monotonic() < deadline, f"{sample} never appeared on {proxy.root}/metrics"
        time.sleep(0.05)


def identity_traffic(proxy: ProxyHandle, keys_file: Path, round_: int) -> None:
    """A refused credential, and a keys file change the proxy reloads (the keys' last use comes with every call)."""
    refused = httpx.get(proxy.root + "/v1/models", headers={"Authorization": "Bearer not-an-issued-key"})
    assert refused.status_code == 401
    write_keys(keys_file, tuple(ApiKey(id=f"k-round-{n}", sha256=hash_key(f"round-{n}"), app="a", team="t")
                                for n in range(round_)))
    wait_for_sample(proxy, f'llm_proxy_auth_reloads_total{{result="success",source="keys_file"}} {round_}.0')


def reload_good_then_broken_policy(proxy: ProxyHandle, policies: Path, round_: int) -> None:
    (policies / "zz_broken.rego").unlink(missing_ok=True)
    models_path = policies / "data" / "models.json"
    models = json.loads(models_path.read_text())
    models["models"]["apps"]["admin-cli"] = ["gpt-4o-mini"] if round_ % 2 else ["gpt-4.1-nano"]
    models_path.write_text(json.dumps(models))
    # Success 1 is the load at start-up.
    wait_for_sample(proxy, f'llm_proxy_policy_reloads_total{{result="success"}} {round_ + 1}.0')
    (policies / "zz_broken.rego").write_text("package llm.broken\n\nthis is not rego {\n")
    wait_for_sample(proxy, f'llm_proxy_policy_reloads_total{{result="failure"}} {round_}.0')


def traffic_round(proxy: ProxyHandle, degraded: ProxyHandle, upstream: UpstreamHandle, policies: Path,
                  round_: int) -> None:
    identity_traffic(proxy, policies.parent / "keys.yaml", round_)
    successful_calls(proxy, upstream)
    refused_calls(proxy, upstream)
    degraded_call(degraded, upstream)
    shadow_ai_attempt(proxy)
    mcp_tool_calls(proxy)
    reload_good_then_broken_policy(proxy, policies, round_)


def panel_has_data(prometheus: PrometheusServer, expr: str, since: float) -> bool:
    if not has_data(prometheus.query(expr)):
        return False
    # Grafana draws rate panels over a range: some step must have a number, i.e. an increase between scrapes.
    return not NEEDS_TWO_SAMPLES.search(expr) or has_data(prometheus.query_range(expr, since, time.time()))


def panels_without_data(prometheus: PrometheusServer, queries: list[tuple[str, str]], since: float) -> list[str]:
    """Polls until every panel has data or the deadline passes; returns the titles still without."""
    pending = dict(queries)
    deadline = time.monotonic() + DEADLINE_S
    while pending and time.monotonic() < deadline:
        pending = {title: expr for title, expr in pending.items() if not panel_has_data(prometheus, expr, since)}
        if pending:
            time.sleep(0.5)
    return [f"{title}: {expr}" for title, expr in pending.items()]


def label_sets(prometheus: PrometheusServer, expr: str, *labels: str) -> set[tuple[str, ...]]:
    return {tuple(series["metric"].get(label, "") for label in labels) for series in prometheus.query(expr)}


def eventually(check: Callable[[], None], timeout: float = 5) -> None:
    """Rules evaluate every second, on their own schedule: retry `check` until it passes or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def assert_rules_loaded_and_firing(prometheus: PrometheusServer) -> None:
    expected = {group["name"] for path in RULES.glob("*.yaml") for group in yaml.safe_load(path.read_text())["groups"]}
    groups = prometheus.rule_groups()
    assert {group["name"] for group in groups} == expected
    unhealthy = [(rule["name"], rule["health"], rule.get("lastError")) for group in groups
                 for rule in group["rules"] if rule["health"] != "ok"]
    assert not unhealthy, unhealthy
    firing = {alert["labels"]["alertname"] for alert in prometheus.alerts() if alert["state"] == "firing"}
    assert firing >= EXPECTED_FIRING, f"not firing: {sorted(EXPECTED_FIRING - firing)}"


@pytest.mark.prometheus
def test_every_dashboard_panel_has_data_and_the_alert_rules_fire_in_a_real_prometheus(
        make_proxy: ProxyFactory, make_prometheus: PrometheusFactory, upstream: UpstreamHandle, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    policies = policy_copy(tmp_path)
    mcp_server = McpServerThread()
    request.addfinalizer(mcp_server.close)
    # The shadow candidate is the repository's policy, which enforces the limits the live copy only audits.
    proxy = make_proxy(policy__dir=str(policies), policy__reload_interval_s=0.1,
                       policy__shadow_dir=str(REPO / "policies"),
                       egress={"enabled": True, "port": 0, "resolve": {"api.openai.com": "127.0.0.1"}},
                       mcp={"servers": {"crm": {"url": mcp_server.url, "bearer": UPSTREAM_TOKEN,
                                                "tools": ["lookup"]}}},
                       auth__keys_file=str(tmp_path / "keys.yaml"), auth__keys_reload_interval_s=0.1,
                       auth__metrics_per_key=True)
    degraded = make_proxy(policy__engine="opa", policy__opa_url=f"http://127.0.0.1:{free_port()}",
                          policy__opa_timeout_ms=300, policy__fail_open=True,
                          budget__store="redis", budget__redis_url=f"redis://127.0.0.1:{free_port()}/0",
                          budget__ledger_path=str(tmp_path / "degraded-ledger.jsonl"))
    targets = [f"127.0.0.1:{proxy.port}", f"127.0.0.1:{degraded.port}"]
    prometheus = make_prometheus(targets)
    since = time.time()

    # rate() sees only increases between two scrapes: the first round makes every series, the second,
    # once Prometheus has scraped the first, moves them.
    traffic_round(proxy, degraded, upstream, policies, 1)
    prometheus.wait_for_scrapes_after(time.time())
    traffic_round(proxy, degraded, upstream, policies, 2)

    queries = panel_queries()
    assert queries
    missing = panels_without_data(prometheus, queries, since)
    assert not missing, "panels without data:\n" + "\n".join(missing)
    assert prometheus.targets_up() == dict.fromkeys(targets, True)

    # The breakdowns show what the traffic did, under the label values the dashboards group by.
    assert label_sets(prometheus, "sum by (kind, scope_kind) (llm_proxy_limited_total)", "kind", "scope_kind") \
        == {("budget", "team"), ("rate", "team")}
    assert {("card", "redact", "request"), ("card", "block", "request"), ("email", "redact", "response")} \
        <= label_sets(prometheus, "llm_proxy_pii_findings_total", "type", "action", "direction")
    assert {("allow",), ("deny",), ("error",)} <= label_sets(
        prometheus, 'sum by (result) (llm_proxy_policy_decisions_total{mode="enforced"})', "result")
    # The failed record, and the ledger's replays and the breaker's probes that follow it.
    store_errors = label_sets(prometheus, "llm_proxy_store_errors_total", "store", "operation")
    assert ("redis", "record") in store_errors and store_errors <= {("redis", "record"), ("redis", "replay"),
                                                                    ("redis", "probe")}
    assert label_sets(prometheus, "llm_proxy_fail_open_total", "component") == {("policy",)}
    assert ("allow",) in label_sets(prometheus, "llm_proxy_policy_shadow_differences_total", "kind")
    assert ("status_500",) in label_sets(prometheus, "llm_proxy_upstream_errors_total", "kind")

    eventually(lambda: assert_rules_loaded_and_firing(prometheus))

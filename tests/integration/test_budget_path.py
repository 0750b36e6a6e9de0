"""Budgets and rate limits through the proxy: 429s in OpenAI's format, spend recorded on every store,
streams cut by the client charged for what was generated, store outages failing closed."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import uuid
from pathlib import Path

import aiohttp
import httpx
import openai
import pytest
from structlog.testing import capture_logs

from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.config import KEYS, REPO
from tests.support.redis_server import RedisServer, ensure_redis

HELLO = [{"role": "user", "content": "Hi"}]
ADMIN = {"Authorization": f"Bearer {KEYS['admin']}"}


def spent(proxy: ProxyHandle, scope: str) -> float:
    """Spend in the scope's largest window (a scope may also carry a rolling per-minute window)."""
    rows = httpx.get(proxy.root + "/admin/budgets", params={"scope": scope}, headers=ADMIN).json()["data"]
    return max((row["spent_usd"] for row in rows if row["scope"] == scope), default=0.0)


def policies_with_budget(tmp_path: Path, team_limits: list[dict[str, object]]) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    path = target / "data" / "budgets.json"
    data = json.loads(path.read_text())
    data["budgets"]["scopes"]["team"]["payments"] = team_limits
    data["budgets"]["scopes"]["app"] = {}
    path.write_text(json.dumps(data))
    return target


def test_spend_is_recorded_per_scope_and_visible_to_admins(proxy: ProxyHandle) -> None:
    proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    assert spent(proxy, "team:payments") > 0
    assert spent(proxy, "key:k-payments") == spent(proxy, "team:payments")
    assert httpx.get(proxy.root + "/admin/budgets", headers={"Authorization": f"Bearer {KEYS['payments']}"}
                     ).status_code == 403


def test_rate_limit_headers_on_every_response(proxy: ProxyHandle) -> None:
    raw = proxy.client().chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    # The proxy's own limits under its own names: x-ratelimit-* on a relayed answer is the provider's.
    assert raw.headers["x-llm-proxy-ratelimit-limit-requests"] == "600"
    assert int(raw.headers["x-llm-proxy-ratelimit-remaining-requests"]) < 600
    assert raw.headers["x-llm-proxy-ratelimit-limit-tokens"] == "200000"
    assert "x-ratelimit-limit-requests" not in raw.headers


def test_budget_exceeded_is_429_with_scope_and_reset(make_proxy: ProxyFactory, tmp_path: Path,
                                                     upstream: UpstreamHandle) -> None:
    # $0.01 a day: a request whose worst case (2048 output tokens at $10/M, ~$0.02) does not fit is
    # refused before forwarding; a small one that fits goes through.
    proxy = make_proxy(policy__dir=str(policies_with_budget(tmp_path, [{"limit_usd": 0.01, "window": "day"}])))
    client = proxy.client()
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "budget_exceeded"
    assert "team:payments" in caught.value.message
    assert int(caught.value.response.headers["retry-after"]) > 0
    reset = caught.value.response.headers["x-ratelimit-reset-budget"]  # OpenAI's duration format
    assert re.fullmatch(r"(\d+h)?(\d+m)?[\d.]+s", reset), reset
    assert upstream.model.received == []
    client.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=50)
    assert len(upstream.model.received) == 1
    assert 0 < spent(proxy, "team:payments") <= 0.01


def test_requests_per_minute_limit(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    proxy = make_proxy(policy__dir=str(policies_with_budget(
        tmp_path, [{"requests_per_minute": 2, "window": "rolling", "window_seconds": 60}])))
    client = proxy.client()
    client.chat.completions.create(model="gpt-4o", messages=HELLO)
    client.chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"]
    # The proxy's own 429 speaks like the provider's: the limit that refused, none left, when it resets.
    assert caught.value.response.headers["x-ratelimit-limit-requests"] == "2"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert caught.value.response.headers["x-ratelimit-reset-requests"]


async def cut_stream(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    """A slow stream for team payments that the client drops after four events."""
    upstream.model.faults.chunk_delay_s = 0.05
    async with aiohttp.ClientSession() as session:
        response = await session.post(proxy.base_url + "/chat/completions",
                                      headers={"Authorization": f"Bearer {KEYS['payments']}"},
                                      json={"model": "gpt-4o", "messages": HELLO, "stream": True})
        for _ in range(4):
            await response.content.readuntil(b"\n\n")
        response.close()


async def test_stream_cut_by_the_client_is_charged_for_what_was_generated(proxy: ProxyHandle,
                                                                          upstream: UpstreamHandle) -> None:
    await cut_stream(proxy, upstream)
    for _ in range(250):  # the upstream is read on after the client left (drain_on_disconnect_s)
        if upstream.model.watch.finished or upstream.model.watch.cancelled:
            break
        await asyncio.sleep(0.02)
    charged = 0.0
    for _ in range(250):  # then settled: the spend lands once the drained stream's usage is known
        charged = await asyncio.to_thread(spent, proxy, "team:payments")
        if charged:
            break
        await asyncio.sleep(0.02)
    # Charged for the prompt and the few words streamed, far below the 2048-token worst case held.
    assert 0 < charged < 2048 * 10 / 1e6


async def test_stream_cut_by_the_client_is_logged_and_measured_with_its_cost(proxy: ProxyHandle,
                                                                            upstream: UpstreamHandle) -> None:
    # The request log line, metrics and span are written once the settle has run, not when the
    # handler is cancelled: the audit trail of a cut stream carries its tokens and cost.
    with capture_logs() as logs:
        await cut_stream(proxy, upstream)
        for _ in range(100):
            if any(entry["event"] == "request" for entry in logs):
                break
            await asyncio.sleep(0.02)
    [line] = [entry for entry in logs if entry["event"] == "request"]
    assert line["status"] == 499 and line["client_disconnected"] is True
    assert line["cost_usd"] > 0 and line["output_tokens"] > 0


@pytest.mark.parametrize("prompt_estimate", ["exact", "bound"])  # bound: the tables are built for this count
def test_upstream_without_stream_usage_is_charged_by_counting_the_text(make_proxy: ProxyFactory,
                                                                       upstream: UpstreamHandle,
                                                                       prompt_estimate: str) -> None:
    proxy = make_proxy(tokens__prompt_estimate=prompt_estimate)
    upstream.model.faults.strip_usage = True
    text = "".join(c.choices[0].delta.content or "" for c in proxy.client().chat.completions.create(
        model="gpt-4o", messages=HELLO, stream=True) if c.choices)
    assert text
    assert spent(proxy, "team:payments") > 0


def test_upstream_error_releases_the_reservation(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    upstream.model.faults.status = 500
    with pytest.raises(openai.InternalServerError):
        proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    rows = httpx.get(proxy.root + "/admin/budgets", params={"scope": "team:"}, headers=ADMIN).json()["data"]
    assert all(row["spent_usd"] == 0 and row["reserved_usd"] == 0 for row in rows)


@pytest.mark.redis
def test_redis_store_records_spend(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    url, server = ensure_redis(tmp_path / "redis")
    try:
        proxy = make_proxy(budget__store="redis", budget__redis_url=url, budget__key_prefix=f"t{uuid.uuid4().hex[:8]}")
        proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
        assert spent(proxy, "team:payments") > 0
    finally:
        if server is not None:
            server.kill()


@pytest.mark.redis
def test_redis_down_fails_closed_and_forwards_nothing(make_proxy: ProxyFactory, private_redis: RedisServer,
                                                      upstream: UpstreamHandle) -> None:
    proxy = make_proxy(budget__store="redis", budget__redis_url=private_redis.url)
    proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    private_redis.kill()
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.status_code == 503
    assert str(private_redis.port) not in caught.value.message  # what failed, never where
    assert len(upstream.model.received) == 1
    assert httpx.get(proxy.root + "/readyz").status_code == 503
    metrics = httpx.get(proxy.root + "/metrics").text
    # Counted where the outage showed first: the state read, or the reserve when the state was cached.
    assert re.search(r'llm_proxy_store_errors_total\{operation="(state|reserve)",store="redis"\} 1\.0', metrics)


def metric(proxy: ProxyHandle, name: str, **labels: str) -> float:
    text = httpx.get(proxy.root + "/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.redis
def test_redis_down_fail_open_keeps_serving_and_recovers_on_its_own(make_proxy: ProxyFactory,
                                                                    private_redis: RedisServer,
                                                                    upstream: UpstreamHandle, tmp_path: Path) -> None:
    proxy = make_proxy(budget__store="redis", budget__redis_url=private_redis.url, budget__fail_open=True,
                       budget__breaker={"failures": 2, "cooldown_s": 0.2})
    client = proxy.client()
    client.chat.completions.create(model="gpt-4o", messages=HELLO)
    before = spent(proxy, "team:payments")
    assert metric(proxy, "llm_proxy_store_circuit_state", store="redis") == 0
    private_redis.kill()
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert len(upstream.model.received) == 4
    ledgered = [line for line in (tmp_path / "ledger.jsonl").read_text().splitlines() if '"reservation"' in line]
    assert len(ledgered) == 3
    # Two failures in a row opened the circuit: the requests after it never waited on the dead store.
    assert metric(proxy, "llm_proxy_store_circuit_state", store="redis") == 2
    assert metric(proxy, "llm_proxy_store_circuit_transitions_total", store="redis", state="open") == 1
    assert httpx.get(proxy.root + "/readyz").json()["store_circuit"] in ("open", "half_open")
    private_redis.start()
    # No traffic needed: the probe after the cool-down closes the circuit once the ledger is replayed.
    for _ in range(100):
        if metric(proxy, "llm_proxy_store_circuit_state", store="redis") == 0:
            break
        time.sleep(0.05)
    assert spent(proxy, "team:payments") == pytest.approx(before * 4, rel=1e-6)
    assert metric(proxy, "llm_proxy_store_circuit_transitions_total", store="redis", state="closed") == 1
    assert httpx.get(proxy.root + "/readyz").json()["store_circuit"] == "closed"
    rows = httpx.get(proxy.root + "/admin/budgets", params={"scope": "team:"}, headers=ADMIN).json()["data"]
    assert all(row["reserved_usd"] == 0 for row in rows)

"""Policy decisions through the real HTTP path with the openai SDK, on the embedded and the OPA engine."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from proxy.services import SERVICES
from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.config import KEYS, REPO
from tests.support.opa_rest_server import RunningOpa, start_opa_server
from tests.support.servers import ServerThread

HELLO = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def opa(servers: ServerThread) -> Iterator[RunningOpa]:
    running = servers.run(start_opa_server(REPO / "policies"))
    yield running
    servers.run(running.close())


@pytest.fixture(params=["embedded", "compiled", "opa"])
def engine_proxy(request: pytest.FixtureRequest, make_proxy: ProxyFactory) -> ProxyHandle:
    if request.param == "embedded":
        return make_proxy()
    if request.param == "compiled":
        proxy = make_proxy(policy__compiled=True)
        assert proxy.app[SERVICES].policy.engine.mode == "compiled"  # type: ignore[attr-defined]
        return proxy
    running: RunningOpa = request.getfixturevalue("opa")
    return make_proxy(policy__engine="opa", policy__opa_url=running.url)


def test_model_outside_the_callers_allow_list_is_denied_with_the_reason(engine_proxy: ProxyHandle,
                                                                       upstream: UpstreamHandle) -> None:
    client = engine_proxy.client(KEYS["support"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "model_not_allowed"
    assert "gpt-4o" in caught.value.message
    assert caught.value.response.headers["x-policy-revision"]
    assert upstream.model.received == []
    # The same caller may use what its app is allowed.
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HELLO).choices[0].message.content


def test_models_list_shows_only_what_the_caller_may_use(engine_proxy: ProxyHandle) -> None:
    support = {m.id for m in engine_proxy.client(KEYS["support"]).models.list()}
    research = {m.id for m in engine_proxy.client(KEYS["research"]).models.list()}
    assert support == {"gpt-4o-mini"}
    assert research == {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"}
    with pytest.raises(openai.NotFoundError):
        engine_proxy.client(KEYS["support"]).models.retrieve("gpt-4o")


def test_secret_in_prompt_is_blocked_naming_the_type_not_the_value(engine_proxy: ProxyHandle,
                                                                  upstream: UpstreamHandle) -> None:
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    with pytest.raises(openai.PermissionDeniedError) as caught:
        engine_proxy.client().chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"deploy with token {secret} please"}])
    assert caught.value.code == "pii_blocked"
    assert "github_token" in caught.value.message
    assert secret not in caught.value.message
    assert upstream.model.received == []


def test_max_tokens_over_the_team_limit_is_denied_or_capped(engine_proxy: ProxyHandle,
                                                           upstream: UpstreamHandle) -> None:
    # payments: limit 2048, deny above it.
    with pytest.raises(openai.PermissionDeniedError):
        engine_proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=5000)
    # payments without max_tokens: capped to its limit.
    engine_proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    assert upstream.model.last().body["max_tokens"] == 2048
    # support (default limits): 4096, capped rather than denied.
    engine_proxy.client(KEYS["support"]).chat.completions.create(model="gpt-4o-mini", messages=HELLO,
                                                                 max_tokens=9000)
    assert upstream.model.last().body["max_tokens"] == 4096


def test_unreachable_policy_engine_fails_closed(make_proxy: ProxyFactory, upstream: UpstreamHandle) -> None:
    proxy = make_proxy(policy__engine="opa", policy__opa_url="http://127.0.0.1:9", policy__opa_timeout_ms=300)
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.status_code == 503
    assert caught.value.code == "policy_unavailable"
    assert upstream.model.received == []
    ready = httpx.get(proxy.root + "/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["policy"] is False


def test_fail_open_lets_requests_through_and_counts_them(make_proxy: ProxyFactory, upstream: UpstreamHandle) -> None:
    proxy = make_proxy(policy__engine="opa", policy__opa_url="http://127.0.0.1:9", policy__opa_timeout_ms=300,
                       policy__fail_open=True)
    proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    assert len(upstream.model.received) == 1
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_fail_open_total{component="policy"} 1.0' in metrics


def copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    return target


def test_audit_only_package_records_would_deny_but_forwards(make_proxy: ProxyFactory, tmp_path: Path,
                                                            upstream: UpstreamHandle) -> None:
    policies = copy_policies(tmp_path)
    (policies / "data" / "config.json").write_text(json.dumps({"config": {"audit_only": ["llm.limits"]}}))
    proxy = make_proxy(policy__dir=str(policies))
    # Over payments' max_tokens limit: a would-deny, counted, but the request goes through.
    proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=5000)
    assert upstream.model.last().body["max_tokens"] == 5000
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_policy_decisions_total{mode="audit",reason="max_tokens_exceeded",result="would_deny"}' \
        in metrics


def test_hot_reload_under_traffic_never_serves_without_a_decision(make_proxy: ProxyFactory, tmp_path: Path,
                                                                  upstream: UpstreamHandle) -> None:
    policies = copy_policies(tmp_path)
    proxy = make_proxy(policy__dir=str(policies), policy__reload_interval_s=0.1)
    client = proxy.client()
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                client.chat.completions.create(model="gpt-4o", messages=HELLO)
                statuses.append(200)
            except openai.APIStatusError as exc:
                statuses.append(exc.status_code)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(0.3)
        models = json.loads((policies / "data" / "models.json").read_text())
        models["models"]["teams"]["payments"] = ["gpt-4o-mini"]
        (policies / "data" / "models.json").write_text(json.dumps(models))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and 403 not in statuses:
            time.sleep(0.05)
        assert 403 in statuses, "the new policy version never took effect"
        broken_at = len(statuses)
        (policies / "zz_broken.rego").write_text("package llm.broken\n\nthis is not rego {\n")
        time.sleep(0.6)
        after_broken = statuses[broken_at:]
    finally:
        stop.set()
        worker.join(10)
    # Every request got a decision: allowed (200) or denied (403); none failed because of the reloads.
    assert set(statuses) <= {200, 403}
    assert after_broken and set(after_broken) == {403}, "the last good version must keep serving"
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_policy_reloads_total{result="failure"}' in metrics
    assert httpx.get(proxy.root + "/readyz").status_code == 200

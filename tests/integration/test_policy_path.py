"""Policy decisions through the real HTTP path with the openai SDK, on the embedded and the OPA engine."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from proxy.components import COMPONENTS
from proxy.gateway.pipeline import body_user
from proxy.policy.reload import PolicyReloader
from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.config import KEYS, REPO
from tests.support.opa_rest_server import RunningOpa, start_opa_server
from tests.support.policy_versions import BROKEN, REASONS, slow_for_one_user
from tests.support.servers import ServerThread

HELLO = [{"role": "user", "content": "Hi"}]
# An else chain whose first body looks up something undefined: the interpreter falls through to true, the
# RVM answers undefined, so it would deny what the interpreter allows (see tests/unit/policy/test_validate.py).
GATE = ('package llm.limits\n\ngate := x if {\n\tx := data.nowhere[input.version]\n} else := true\n\n'
        'deny contains {"code": "gate_closed", "message": "gate"} if not gate\n')


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
        assert proxy.app[COMPONENTS].policy.engine.mode == "compiled"  # type: ignore[attr-defined]
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


def test_readyz_follows_policy_fail_open(make_proxy: ProxyFactory) -> None:
    proxy = make_proxy(policy__engine="opa", policy__opa_url="http://127.0.0.1:9", policy__opa_timeout_ms=300,
                       policy__fail_open=True)
    ready = httpx.get(proxy.root + "/readyz")
    # Fail-open answers every request (undecided ones pass), so the instance is ready, as with budget.fail_open.
    assert ready.status_code == 200 and ready.json()["checks"]["policy"] is True


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


def without_rate_limits(policies: Path) -> Path:
    """The copy with the shipped per-minute limits lifted: tests that loop requests for seconds (waiting
    for a reload) would otherwise reach 600 a minute and see 429s instead of what they wait for."""
    path = policies / "data" / "budgets.json"
    budgets = json.loads(path.read_text())

    def lift(node: object) -> None:
        if isinstance(node, dict):
            for key in ("requests_per_minute", "tokens_per_minute"):
                if key in node:
                    node[key] = 1_000_000_000
            for value in node.values():
                lift(value)
        elif isinstance(node, list):
            for value in node:
                lift(value)
    lift(budgets)
    path.write_text(json.dumps(budgets))
    return policies


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
    policies = without_rate_limits(copy_policies(tmp_path))
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
        deadline = time.monotonic() + 30  # a version is validated (~600 samples) at low priority before it serves
        while time.monotonic() < deadline and 403 not in statuses:
            time.sleep(0.05)
        assert 403 in statuses, "the new policy version never took effect"
        broken_at = len(statuses)
        (policies / "zz_broken.rego").write_text("package llm.broken\n\nthis is not rego {\n")
        wait_for(lambda: reloader_of(proxy).reloads_failed == 1, "the broken version to be rejected")
        rejected_at = len(statuses)
        wait_for(lambda: len(statuses) > rejected_at + 5, "traffic after the rejection")
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


def reloader_of(proxy: ProxyHandle) -> PolicyReloader:
    policy = proxy.app[COMPONENTS].policy
    assert isinstance(policy, PolicyReloader)
    return policy


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_reload_under_load_rejects_every_broken_version_and_the_last_good_one_serves(
        make_proxy: ProxyFactory, tmp_path: Path, upstream: UpstreamHandle) -> None:
    policies = copy_policies(tmp_path)
    # A timeout short enough to reject the spinning version quickly, long enough for a busy test machine.
    proxy = make_proxy(policy__dir=str(policies), policy__reload_interval_s=0.05, policy__compiled=True,
                       policy__timeout_ms=1000)
    reloader = reloader_of(proxy)
    good = reloader.revision
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def traffic(key: str) -> None:
        client = proxy.client(key)
        while not stop.is_set():
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "mail me at ann@example.com"}])
                answers.append((raw.http_response.status_code, raw.headers.get("x-policy-revision")))
            except openai.APIStatusError as exc:
                answers.append((exc.status_code, exc.response.headers.get("x-policy-revision")))

    # research: no request-rate limit in the shipped budgets, so every answer is the policy's.
    workers = [threading.Thread(target=traffic, args=(KEYS["research"],)) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for n, (kind, breaks) in enumerate(BROKEN.items(), start=1):
            undo = breaks(policies)
            wait_for(lambda n=n: reloader.reloads_failed == n, f"the {kind} version to be rejected")  # type: ignore[misc]
            undo()
        served_during = len(answers)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert served_during > 10, "there was traffic while the broken versions were rejected"
    # Every request was decided by the last good version: no 5xx, none forwarded without a decision.
    assert {status for status, _ in answers} == {200}
    assert {revision for _, revision in answers} == {good}
    assert len(upstream.model.received) == len(answers)
    assert reloader.revision == good and reloader.reloads_ok == 0
    metrics = httpx.get(proxy.root + "/metrics").text
    decided = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith('llm_proxy_policy_decisions_total{mode="enforced",reason="",result="allow"}'))
    assert decided == len(answers)
    for kind, reason in REASONS.items():
        assert f'llm_proxy_policy_versions_rejected_total{{policy="live",reason="{reason}"}} 1.0' in metrics, kind
    assert httpx.get(proxy.root + "/readyz").status_code == 200


def test_a_request_that_makes_the_policy_spin_fails_closed_and_the_proxy_recovers(
        make_proxy: ProxyFactory, tmp_path: Path, upstream: UpstreamHandle) -> None:
    policies = copy_policies(tmp_path)
    # Passes validation: no sample has this user (the policy sees a body's user as its digest).
    slow_for_one_user(policies, body_user("slowpoke", None))
    proxy = make_proxy(policy__dir=str(policies), policy__timeout_ms=1000)
    client = proxy.client()
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO, user="slowpoke")
    assert caught.value.status_code == 503 and caught.value.code == "policy_unavailable"
    assert time.monotonic() - started < 10
    assert upstream.model.received == []
    # A fresh evaluator process with the same version decides the next requests.
    assert client.chat.completions.create(model="gpt-4o", messages=HELLO).choices[0].message.content
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_policy_evaluator_restarts_total{policy="live",reason="timeout"} 1.0' in metrics


def test_compiled_mode_refused_for_a_version_is_counted_and_the_interpreter_serves(
        make_proxy: ProxyFactory, tmp_path: Path) -> None:
    policies = copy_policies(tmp_path)
    (policies / "zz_gate.rego").write_text(GATE)
    proxy = make_proxy(policy__dir=str(policies), policy__compiled=True)
    assert reloader_of(proxy).engine.mode == "interpreter"
    proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)  # the interpreter allows it
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_policy_compiled_fallbacks_total{policy="live",reason="parity"} 1.0' in metrics

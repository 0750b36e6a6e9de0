"""The per-request observation: what the stages report and the one line, metrics and span finish() writes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from proxy.budget import BudgetState
from proxy.endpoints.base import Usage
from proxy.gateway.decide import Decided
from proxy.gateway.observation import Observation, Reporter
from proxy.gateway.relay import Tally
from proxy.identity import Identity
from proxy.policy.decision import Decision, Reason
from proxy.telemetry.metrics import Metrics

WHO = Identity("billing-api", "payments", "u-1", "k-1", "api_key")


def observation() -> tuple[Observation, CollectorRegistry]:
    registry = CollectorRegistry()
    return Observation(Reporter(Metrics(registry)), "req-1", "POST", "/v1/chat/completions"), registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_an_unobserved_request_is_endpoint_other_with_no_decision() -> None:
    seen, registry = observation()
    with capture_logs() as logs:
        seen.finish(404)
    [line] = logs
    assert line["event"] == "request" and line["status"] == 404 and line["decision"] == "none"
    assert line["endpoint"] == "other" and "model_used" not in line and "error_code" not in line
    assert sample(registry, "llm_proxy_requests_total", endpoint="other", model="unknown", team="", app="",
                  decision="none", status="404") == 1


@pytest.mark.parametrize(("decision", "failed_open", "label"), [
    (Decision(allow=True), False, "allow"),
    (Decision(allow=False, reasons=(Reason("pii_blocked", "no"),)), False, "deny"),
    (Decision(allow=True), True, "fail_open"),
])
def test_decided_sets_the_decision_label_and_its_metrics(decision: Decision, failed_open: bool,
                                                          label: str) -> None:
    seen, registry = observation()
    seen.identified(WHO)
    seen.decided(Decided(decision, "rev-1", {}, 0.001, (), failed_open=failed_open))
    with capture_logs() as logs:
        seen.finish(200)
    assert logs[0]["decision"] == label and logs[0]["policy_revision"] == "rev-1"
    if failed_open:
        assert sample(registry, "llm_proxy_fail_open_total", component="policy") == 1
    else:
        reason = decision.reasons[0].code if decision.reasons else ""
        assert sample(registry, "llm_proxy_policy_decisions_total", result=label, reason=reason,
                      mode="enforced") == 1


def test_settled_usage_and_cost_are_on_the_line_and_in_the_token_metrics() -> None:
    seen, registry = observation()
    seen.identified(WHO)
    seen.called("chat.completions", "demo-model", stream=True)
    seen.model_used, seen.upstream, seen.provider = "gpt-4o", "test", "openai"
    seen.forwarded(200)
    seen.relayed(Tally(), 0.25, 0.05)
    seen.settled(Usage(100, 20, 40), estimated=True, cost_micros=450)
    with capture_logs() as logs:
        seen.finish(200)
    line = logs[0]
    assert (line["input_tokens"], line["cached_input_tokens"], line["output_tokens"]) == (100, 40, 20)
    assert line["usage_source"] == "estimated" and line["cost_usd"] == 0.00045 and line["ttft_seconds"] == 0.05
    assert sample(registry, "llm_proxy_tokens_total", model="gpt-4o", team="payments", app="billing-api",
                  type="output") == 20


@pytest.mark.parametrize(("status", "code"), [(502, "status_502"), (429, "status_429"), (200, None), (400, None)])
def test_upstream_statuses_that_are_its_failures_are_counted(status: int, code: str | None) -> None:
    seen, registry = observation()
    seen.upstream = "test"
    seen.forwarded(status)
    seen.finish(status)
    counted = sample(registry, "llm_proxy_upstream_errors_total", upstream="test", kind=code or "")
    assert counted == (1 if code else 0)


def test_limits_and_budget_fail_open_are_counted_by_kind_and_scope_kind() -> None:
    seen, registry = observation()
    seen.limited("budget", "team:payments")
    seen.finish(429)
    assert sample(registry, "llm_proxy_limited_total", kind="budget", scope_kind="team") == 1


def test_per_user_budget_gauges_are_opt_in() -> None:
    states = (BudgetState("user:u-1", "day", "d", 5_000_000, 0, 10_000_000, 0, 0, None, None),
              BudgetState("team:payments", "month", "m", 1_000_000, 0, 100_000_000, 0, 0, None, None))
    for opted in (False, True):
        registry = CollectorRegistry()
        seen = Observation(Reporter(Metrics(registry), user_label=opted), "r", "POST", "/v1/chat/completions")
        seen.decided(Decided(Decision(allow=True), "rev", {}, 0.0, (), budget_states=states))
        seen.finish(200)
        assert sample(registry, "llm_proxy_budget_spent_usd", scope="team:payments/month") == 1.0
        assert sample(registry, "llm_proxy_budget_spent_usd", scope="user:u-1/day") == (5.0 if opted else 0.0)

"""Prometheus metrics behind domain methods, over an injected registry (tests build a fresh one).

Names follow Prometheus conventions (base units, `_total` counters) and the OpenTelemetry GenAI
semantic conventions where those define an instrument. Every label value is bounded: models are
catalogue names (or "unknown"), identities are configured apps and teams, reasons are policy codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
EVAL_BUCKETS = (0.00002, 0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
CIRCUIT_STATES = ("closed", "half_open", "open")
GC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class _Off:
    """What every update reaches when metrics are switched off (`telemetry.metrics: false`)."""
    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


OFF = _Off()


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, enabled: bool = True,
                 multiprocess_dir: str | None = None) -> None:
        """`multiprocess_dir`: PROMETHEUS_MULTIPROC_DIR, where each worker writes its values (prometheus_client
        reads it on import: `llm-policy-proxy serve --workers` sets it before)."""
        self.enabled = enabled
        self.multiprocess_dir = multiprocess_dir
        # Children by (metric, label values): labels() validates and locks on every call, half of the
        # ~25 us a request spent on metrics. Label values are bounded (see docs/observability.md), so
        # this holds no more than the metrics themselves already do. Every update goes through child()
        # except in_flight (no labels) and policy_revision, whose old child is removed or zeroed on a reload.
        self._children: dict[tuple[object, ...], Any] = {}
        self._revision: str | None = None
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("llm_proxy_requests_total", "Requests handled, by outcome.",
                                ["endpoint", "model", "team", "app", "decision", "status"], registry=r)
        self.duration = Histogram("llm_proxy_request_duration_seconds", "Whole request time seen by the proxy.",
                                  ["endpoint", "model"], buckets=LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("llm_proxy_overhead_seconds",
                                  "Time the proxy itself added: request time minus time waiting on the upstream.",
                                  ["endpoint"], buckets=OVERHEAD_BUCKETS, registry=r)
        self.in_flight: Gauge | _Off = Gauge("llm_proxy_requests_in_flight", "Requests being handled now.",
                                             registry=r, multiprocess_mode="livesum") if enabled else OFF
        self.ttft = Histogram("gen_ai_server_time_to_first_token_seconds",
                              "Time from forwarding a streamed request to its first content event.",
                              ["gen_ai_operation_name", "gen_ai_request_model"], buckets=LATENCY_BUCKETS, registry=r)
        self.operation = Histogram("gen_ai_client_operation_duration_seconds",
                                   "Upstream model call duration.",
                                   ["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_provider_name",
                                    "upstream"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("llm_proxy_tokens_total", "Tokens used, by type (input, cached_input, output).",
                              ["model", "team", "app", "type"], registry=r)
        self.cost = Counter("llm_proxy_cost_usd_total", "Spend in USD at catalogue prices.",
                            ["model", "team", "app"], registry=r)
        self.upstream_errors = Counter("llm_proxy_upstream_errors_total",
                                       "Upstream failures: unreachable, timeout, broken stream, error status.",
                                       ["upstream", "kind"], registry=r)
        self.decisions = Counter("llm_proxy_policy_decisions_total",
                                 "Policy decisions by result and reason code; mode=audit counts would-deny.",
                                 ["result", "reason", "mode"], registry=r)
        self.policy_eval = Histogram("llm_proxy_policy_evaluation_seconds", "Policy evaluation time.",
                                     ["engine"], buckets=EVAL_BUCKETS, registry=r)
        self.policy_reloads = Counter("llm_proxy_policy_reloads_total", "Policy reloads by result.",
                                      ["result"], registry=r)
        self.policy_revision = Gauge("llm_proxy_policy_revision_info", "The policy revision in force (value 1).",
                                     ["revision"], registry=r, multiprocess_mode="liveall")
        self.fail_open = Counter("llm_proxy_fail_open_total",
                                 "Requests let through because a failing component is configured to fail open.",
                                 ["component"], registry=r)
        self.policy_rejected = Counter("llm_proxy_policy_versions_rejected_total",
                                       "Policy versions rejected at load (the last good one kept serving), by "
                                       "policy (live, shadow) and reason.", ["policy", "reason"], registry=r)
        self.policy_interpreted = Counter("llm_proxy_policy_compiled_fallbacks_total",
                                          "Policy versions served by the interpreter although policy.compiled is "
                                          "set, by policy and reason (unsupported, conflict, parity).",
                                          ["policy", "reason"], registry=r)
        self.policy_restarts = Counter("llm_proxy_policy_evaluator_restarts_total",
                                       "Policy evaluator processes replaced, by policy and reason (timeout: stuck "
                                       "past policy.timeout_ms; exited).", ["policy", "reason"], registry=r)
        self.shadow_diffs = Counter("llm_proxy_policy_shadow_differences_total",
                                    "Requests where the shadow policy decided differently.", ["kind"], registry=r)
        self.pii = Counter("llm_proxy_pii_findings_total", "PII and secret findings by type and action.",
                           ["type", "action", "direction"], registry=r)
        self.budget_spent = Gauge("llm_proxy_budget_spent_usd", "Spend in the current window, per scope.",
                                  ["scope"], registry=r, multiprocess_mode="mostrecent")
        self.budget_limit = Gauge("llm_proxy_budget_limit_usd", "Budget limit per scope.",
                                  ["scope"], registry=r, multiprocess_mode="mostrecent")
        self.budget_remaining = Gauge("llm_proxy_budget_remaining_usd", "Budget left in the window, per scope.",
                                      ["scope"], registry=r, multiprocess_mode="mostrecent")
        self.limited = Counter("llm_proxy_limited_total", "Requests refused by budgets or rate limits.",
                               ["kind", "scope_kind"], registry=r)
        self.store_errors = Counter("llm_proxy_store_errors_total", "Budget store failures by operation.",
                                    ["store", "operation"], registry=r)
        self.store_circuit_state = Gauge("llm_proxy_store_circuit_state",
                                         "Budget store circuit breaker: 0 closed, 1 half-open (probing), 2 open.",
                                         ["store"], registry=r, multiprocess_mode="livemax")
        self.store_circuit_transitions = Counter("llm_proxy_store_circuit_transitions_total",
                                                 "Budget store circuit breaker transitions, by the state entered.",
                                                 ["store", "state"], registry=r)
        self.gc_pause = Histogram("llm_proxy_gc_pause_seconds",
                                  "Pauses of the cyclic garbage collector (the event loop stops), by generation.",
                                  ["generation"], buckets=GC_BUCKETS, registry=r)
        self.mcp_messages = Counter("llm_proxy_mcp_messages_total",
                                    "MCP messages decided by the gateway, by server, method and decision.",
                                    ["server", "method", "decision"], registry=r)
        self.mcp_tool_calls = Counter("llm_proxy_mcp_tool_calls_total",
                                      "MCP tool calls by server, tool (configured names, else other), decision "
                                      "and outcome.", ["server", "tool", "decision", "outcome"], registry=r)
        self.mcp_tool_duration = Histogram("llm_proxy_mcp_tool_call_duration_seconds",
                                           "MCP tool call time through the gateway, decision to last byte.",
                                           ["server", "tool"], buckets=LATENCY_BUCKETS, registry=r)
        self.shadow_ai = Counter("shadow_ai_attempts_total",
                                 "Direct calls to AI providers refused by the egress proxy.",
                                 ["app", "provider"], registry=r)
        self.egress_refused = Counter("llm_proxy_egress_refused_total",
                                      "Requests refused by the egress proxy, by reason (internal_destination, "
                                      "ai_provider_blocked, ...).", ["reason"], registry=r)
        # key_id is "" unless auth.metrics_per_key (the number of issued keys bounds it then).
        self.auth_requests = Counter("llm_proxy_auth_requests_total", "Callers identified, by method and key.",
                                     ["method", "key_id"], registry=r)
        self.auth_key_last_used = Gauge("llm_proxy_auth_key_last_used_timestamp_seconds",
                                        "When each key was last used (only with auth.metrics_per_key).",
                                        ["key_id"], registry=r, multiprocess_mode="max")
        self.auth_failures = Counter("llm_proxy_auth_failures_total", "Credentials refused, by reason code.",
                                     ["reason"], registry=r)
        self.auth_reloads = Counter("llm_proxy_auth_reloads_total",
                                    "Keys file reloads and issuer key (JWKS) fetches, by result.",
                                    ["source", "result"], registry=r)

    def child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once per distinct label set."""
        if not self.enabled:
            return OFF
        key = (id(metric), *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def store_circuit(self, *, store: str, state: str, changed: bool) -> None:
        self.child(self.store_circuit_state, store).set(CIRCUIT_STATES.index(state))
        if changed:
            self.child(self.store_circuit_transitions, store, state).inc()
        else:  # at start-up: every transition series exists from the first scrape, at 0
            for each in CIRCUIT_STATES:
                self.child(self.store_circuit_transitions, store, each)

    def request_finished(self, *, endpoint: str, model: str, team: str, app: str, decision: str, status: int,
                         seconds: float, upstream_seconds: float) -> None:
        self.child(self.requests, endpoint, model, team, app, decision, str(status)).inc()
        self.child(self.duration, endpoint, model).observe(seconds)
        self.child(self.overhead, endpoint).observe(max(0.0, seconds - upstream_seconds))

    def upstream_finished(self, *, operation: str, model: str, provider: str, upstream: str, seconds: float,
                          ttft: float | None) -> None:
        self.child(self.operation, operation, model, provider, upstream).observe(seconds)
        if ttft is not None:
            self.child(self.ttft, operation, model).observe(ttft)

    def tokens_used(self, *, model: str, team: str, app: str, input_tokens: int, cached_input_tokens: int,
                    output_tokens: int, cost_usd: float) -> None:
        for kind, count in (("input", input_tokens - cached_input_tokens), ("cached_input", cached_input_tokens),
                            ("output", output_tokens)):
            if count > 0:
                self.child(self.tokens, model, team, app, kind).inc(count)
        if cost_usd > 0:
            self.child(self.cost, model, team, app).inc(cost_usd)

    def policy_decided(self, *, allow: bool, reasons: Iterable[str], audit: Iterable[str], seconds: float,
                       engine: str) -> None:
        result = "allow" if allow else "deny"
        codes = list(reasons)
        if codes:
            for code in codes:
                self.child(self.decisions, result, code, "enforced").inc()
        else:
            self.child(self.decisions, result, "", "enforced").inc()
        for code in audit:
            self.child(self.decisions, "would_deny", code, "audit").inc()
        self.child(self.policy_eval, engine).observe(seconds)

    def policy_failed(self, *, engine: str, fail_open: bool) -> None:
        self.child(self.decisions, "error", "engine_error", "enforced").inc()
        if fail_open:
            self.child(self.fail_open, "policy").inc()

    def policy_reloaded(self, *, ok: bool, revision: str | None) -> None:
        self.child(self.policy_reloads, "success" if ok else "failure").inc()
        if self.enabled and ok and revision and revision != self._revision:
            if self._revision is not None:
                if self.multiprocess_dir:
                    # A worker's values live in its file, which no removal reaches (prometheus_client warns
                    # and drops only its own copy): the old revision would go on reading 1. Zero it instead.
                    self.policy_revision.labels(self._revision).set(0)
                else:
                    self.policy_revision.remove(self._revision)
            self.policy_revision.labels(revision).set(1)
            self._revision = revision

    def pii_found(self, *, counts: dict[str, int], action_of: dict[str, str], direction: str) -> None:
        for kind, count in counts.items():
            self.child(self.pii, kind, action_of.get(kind, "allow"), direction).inc(count)

    def mcp_message(self, *, server: str, method: str, decision: str) -> None:
        self.child(self.mcp_messages, server, method, decision).inc()

    def mcp_tool_call(self, *, server: str, tool: str, decision: str, outcome: str, seconds: float) -> None:
        self.child(self.mcp_tool_calls, server, tool, decision, outcome).inc()
        self.child(self.mcp_tool_duration, server, tool).observe(seconds)

    def budget_observed(self, *, scope: str, spent_usd: float, limit_usd: float | None) -> None:
        self.child(self.budget_spent, scope).set(spent_usd)
        if limit_usd is not None:
            self.child(self.budget_limit, scope).set(limit_usd)
            self.child(self.budget_remaining, scope).set(max(0.0, limit_usd - spent_usd))

    def authenticated(self, *, method: str, key_id: str | None, per_key: bool, now: float) -> None:
        shown = key_id if per_key and key_id else ""
        self.child(self.auth_requests, method, shown).inc()
        if shown:
            self.child(self.auth_key_last_used, shown).set(now)

    def auth_refused(self, reason: str) -> None:
        self.child(self.auth_failures, reason).inc()

    def auth_reloaded(self, *, source: str, ok: bool) -> None:
        self.child(self.auth_reloads, source, "success" if ok else "failure").inc()


def render(metrics: Metrics) -> bytes:
    directory = metrics.multiprocess_dir
    if directory:
        # Each worker writes its own files; any worker can answer the scrape for all of them.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(metrics.registry)

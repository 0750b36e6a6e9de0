"""What one request did, as a typed record the stages report to through domain methods; `finish()` writes
it once: the canonical audit line, the metrics and the server span (and hands a decision to the shadow)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span

from proxy.identity import Identity
from proxy.telemetry.logging import get_logger
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.tracing import OPERATIONS, finish_server_span

if TYPE_CHECKING:
    from proxy.budget import BudgetState, Reservation
    from proxy.catalogue import CatalogueEntry
    from proxy.endpoints.base import Usage
    from proxy.gateway.analyse import Analysis
    from proxy.gateway.decide import Decided
    from proxy.gateway.relay import Tally
    from proxy.policy.shadow import ShadowEvaluator

log = get_logger("proxy")


@dataclass(slots=True)
class Reporter:
    """Where observations are written: built once per app. The shadow evaluator arrives with the other
    components, after the app is built."""

    metrics: Metrics
    engine: str = "embedded"  # the policy engine, a metric label
    user_label: bool = False  # per-user budget scopes as metric labels (unbounded values: opt-in)
    shadow: ShadowEvaluator | None = None
    background: set[asyncio.Task[object]] = field(default_factory=set)


@dataclass(slots=True)
class Observation:
    reporter: Reporter
    request_id: str
    method: str
    path: str
    span: Span | None = None
    started: float = field(default_factory=time.perf_counter)
    identity: Identity | None = None
    endpoint: str = "other"
    model_requested: str | None = None
    model_used: str | None = None
    upstream: str | None = None
    provider: str | None = None
    stream: bool = False
    decision: str = "none"  # allow | deny | error | fail_open | none
    reason_codes: tuple[str, ...] = ()
    audit_codes: tuple[str, ...] = ()
    policy_revision: str | None = None
    pii_types: tuple[str, ...] = ()
    pii_action: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    usage_source: str | None = None
    cost_usd: float = 0.0
    upstream_status: int | None = None
    upstream_seconds: float = 0.0
    ttft_seconds: float | None = None
    client_disconnected: bool = False
    # Set once the whole response is on the wire: a cancellation after that is not a client abort.
    completed_status: int | None = None
    error_code: str | None = None
    upstream_error: str | None = None
    stream_error: str | None = None
    limited_scope: str | None = None
    limited_kind: str | None = None
    budget_fail_open: bool = False
    response_pii: dict[str, int] = field(default_factory=dict)
    mcp_server: str | None = None
    mcp_method: str | None = None
    mcp_tool: str | None = None
    mcp_error: str | None = None
    _decided: Decided | None = None
    _pii_counts: dict[str, int] = field(default_factory=dict)
    _pii_actions: dict[str, str] = field(default_factory=dict)
    _settled: bool = False
    _usage_known: bool = False

    # The stages' reports, in the order of the path.
    def identified(self, identity: Identity) -> None:
        self.identity = identity

    def called(self, endpoint: str, model: str | None = None, stream: bool = False) -> None:
        self.endpoint, self.model_requested, self.stream = endpoint, model, stream

    def resolved(self, entry: CatalogueEntry) -> None:
        self.model_used, self.upstream, self.provider = entry.name, entry.upstream, entry.provider

    def analysed(self, analysis: Analysis) -> None:
        self.input_tokens = analysis.prompt_tokens
        self._pii_counts = analysis.counts()
        self.pii_types = tuple(sorted(self._pii_counts))

    def decided(self, decided: Decided) -> None:
        decision = decided.decision
        self._decided = decided
        self.policy_revision = decided.revision
        self.reason_codes = tuple(r.code for r in decision.reasons)
        self.audit_codes = tuple(r.code for r in decision.audit)
        self.decision = "fail_open" if decided.failed_open else "allow" if decision.allow else "deny"
        self._pii_actions = {t: ("block" if not decision.allow else "redact" if t in decision.redact else "allow")
                             for t in self._pii_counts}

    def policy_failed(self) -> None:
        self.decision = "error"

    def enforced(self, entry: CatalogueEntry, redacted: bool) -> None:
        self.resolved(entry)
        if redacted:
            self.pii_action = "redact"

    def limited(self, kind: str, scope: str) -> None:
        self.limited_kind, self.limited_scope = kind, scope

    def reserved(self, reservation: Reservation) -> None:
        self.budget_fail_open = reservation.local

    def forwarded(self, status: int) -> None:
        self.upstream_status = status
        if status >= 500 or status == 429:
            self.upstream_error = f"status_{status}"

    def upstream_failed(self, code: str) -> None:
        self.upstream_error = code

    def completed(self, status: int) -> None:
        self.completed_status = status

    def relayed(self, tally: Tally, seconds: float, ttft: float | None) -> None:
        self.upstream_seconds, self.ttft_seconds = seconds, ttft
        self.stream_error = tally.stream_error
        self.client_disconnected = self.client_disconnected or tally.client_gone
        self.response_pii = dict(tally.response_pii)

    def settled(self, usage: Usage | None, estimated: bool, cost_micros: int) -> None:
        self._settled, self._usage_known = True, usage is not None
        self.cost_usd = cost_micros / 1_000_000
        if usage is not None:
            self.input_tokens, self.output_tokens = usage.input_tokens, usage.output_tokens
            self.cached_input_tokens = usage.cached_input_tokens
            self.cache_write_input_tokens = usage.cache_write_input_tokens
            self.usage_source = "estimated" if estimated else None

    def counted(self, tokens: int) -> None:
        self.input_tokens = tokens

    def failed(self, code: str | None) -> None:
        self.error_code = code

    def finish(self, status: int) -> None:
        """The one place a request is written down: metrics, the audit line, the span, the shadow."""
        seconds = time.perf_counter() - self.started
        identity = self.identity
        team, app = (identity.team, identity.app) if identity else ("", "")
        metrics = self.reporter.metrics
        if metrics.enabled:
            self._count(metrics, team, app, status, seconds)
        log.info("request", method=self.method, path=self.path, status=status, duration_ms=round(seconds * 1000, 3),
                 app=app or None, team=team or None, user=identity.user if identity else None,
                 key_id=identity.key_id if identity else None, **self.fields())
        if self.span is not None:
            self._end_span(status)
        decided, shadow = self._decided, self.reporter.shadow
        if decided is not None and shadow is not None and not decided.failed_open:
            self._compare_in_shadow(shadow, decided)

    def fields(self) -> dict[str, Any]:
        """The audit line's fields: empty ones left out."""
        out = {
            "endpoint": self.endpoint, "model_requested": self.model_requested, "model_used": self.model_used,
            "upstream": self.upstream, "stream": self.stream, "decision": self.decision,
            "reason_codes": self.reason_codes, "audit_codes": self.audit_codes,
            "policy_revision": self.policy_revision, "pii_types": self.pii_types, "pii_action": self.pii_action,
            "input_tokens": self.input_tokens, "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens, "cost_usd": self.cost_usd, "upstream_status": self.upstream_status,
            "upstream_seconds": self.upstream_seconds, "ttft_seconds": self.ttft_seconds,
            "client_disconnected": self.client_disconnected, "provider": self.provider,
            "cache_write_input_tokens": self.cache_write_input_tokens or None, "usage_source": self.usage_source,
            "error_code": self.error_code, "stream_error": self.stream_error, "limited_scope": self.limited_scope,
            "budget_fail_open": self.budget_fail_open or None, "response_pii": self.response_pii or None,
            "mcp_server": self.mcp_server, "mcp_method": self.mcp_method, "mcp_tool": self.mcp_tool,
            "mcp_error": self.mcp_error,
        }
        return {k: v for k, v in out.items() if v not in (None, (), "")}

    def _count(self, metrics: Metrics, team: str, app: str, status: int, seconds: float) -> None:
        decided = self._decided
        if self.decision == "error":
            metrics.policy_failed(engine=self.reporter.engine, fail_open=False)
        elif decided is not None and decided.failed_open:
            metrics.policy_failed(engine=self.reporter.engine, fail_open=True)
        elif decided is not None:
            metrics.policy_decided(allow=decided.decision.allow, reasons=self.reason_codes, audit=self.audit_codes,
                                   seconds=decided.seconds, engine=self.reporter.engine)
        if decided is not None:
            self._observe_budgets(metrics, decided.budget_states)
            if self._pii_counts:
                metrics.pii_found(counts=self._pii_counts, action_of=self._pii_actions, direction="request")
        if self.limited_kind is not None and self.limited_scope is not None:
            metrics.child(metrics.limited, self.limited_kind, self.limited_scope.partition(":")[0]).inc()
        if self.budget_fail_open:
            metrics.child(metrics.fail_open, "budget_store").inc()
        if self.upstream_error is not None and self.upstream is not None:
            metrics.child(metrics.upstream_errors, self.upstream, self.upstream_error).inc()
        if self.stream_error is not None and self.upstream is not None:
            metrics.child(metrics.upstream_errors, self.upstream, self.stream_error).inc()
        if self.response_pii:
            metrics.pii_found(counts=self.response_pii, action_of={t: "redact" for t in self.response_pii},
                              direction="response")
        if self._settled and self.model_used is not None:
            if self._usage_known:
                metrics.tokens_used(model=self.model_used, team=team, app=app, input_tokens=self.input_tokens,
                                    cached_input_tokens=self.cached_input_tokens, output_tokens=self.output_tokens,
                                    cost_usd=self.cost_usd)
            metrics.upstream_finished(operation=self.endpoint, model=self.model_used, provider=self.provider or "",
                                      upstream=self.upstream or "", seconds=self.upstream_seconds,
                                      ttft=self.ttft_seconds)
        metrics.request_finished(endpoint=self.endpoint, model=self.model_used or "unknown", team=team, app=app,
                                 decision=self.decision, status=status, seconds=seconds,
                                 upstream_seconds=self.upstream_seconds)

    def _observe_budgets(self, metrics: Metrics, states: tuple[BudgetState, ...]) -> None:
        # Per-user scopes are unbounded label values: exported only when the operator opts in.
        for state in states:
            if state.limit_micros is None or (state.scope.startswith("user:") and not self.reporter.user_label):
                continue
            metrics.budget_observed(scope=f"{state.scope}/{state.window}", spent_usd=state.spent_micros / 1e6,
                                    limit_usd=state.limit_micros / 1e6)

    def _end_span(self, status: int) -> None:
        assert self.span is not None
        identity = self.identity
        operation = OPERATIONS.get(self.endpoint)
        if operation and self.model_used:
            self.span.update_name(f"{operation} {self.model_used}")
        finish_server_span(self.span, status, {
            "gen_ai.operation.name": operation, "gen_ai.request.model": self.model_requested,
            "gen_ai.response.model": self.model_used, "gen_ai.provider.name": self.provider,
            "gen_ai.usage.input_tokens": self.input_tokens, "gen_ai.usage.output_tokens": self.output_tokens,
            "llm_proxy.app": identity.app if identity else None,
            "llm_proxy.team": identity.team if identity else None,
            "llm_proxy.key_id": identity.key_id if identity else None, "llm_proxy.decision": self.decision,
            "llm_proxy.reason_codes": list(self.reason_codes), "llm_proxy.policy_revision": self.policy_revision,
            "llm_proxy.pii_types": list(self.pii_types), "llm_proxy.cost_usd": self.cost_usd,
            "llm_proxy.upstream": self.upstream})

    def _compare_in_shadow(self, shadow: ShadowEvaluator, decided: Decided) -> None:
        """The candidate policy decides after this request is answered, in its own task (never awaited)."""
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(shadow.compare(
            decided.input, decided.decision, live_revision=decided.revision, request_id=self.request_id))
        # The loop keeps only weak references to tasks: hold it until it is done.
        pending = self.reporter.background
        pending.add(task)
        task.add_done_callback(pending.discard)

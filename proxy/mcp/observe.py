"""What the gateway reports per message: metrics with bounded labels, one audit line per tool call, and the
request's audit record. Types and counts only; never argument or result values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from proxy.gateway.observation import Observation
from proxy.identity import Identity
from proxy.telemetry.logging import get_logger
from proxy.telemetry.metrics import Metrics

from .judge import Verdict

if TYPE_CHECKING:
    from .relay import Exchange

audit_log = get_logger("proxy.mcp")
METHODS = frozenset({"initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read",
                     "resources/templates/list", "resources/subscribe", "resources/unsubscribe", "prompts/list",
                     "prompts/get", "completion/complete", "logging/setLevel", "server/discover",
                     "subscriptions/listen", "notifications/initialized", "notifications/cancelled",
                     "notifications/progress", "notifications/roots/list_changed"})
# Worse outcomes win when one HTTP request carried several messages (a batch).
_DECISION_RANK = {"allow": 0, "fail_open": 1, "deny": 2, "error": 3}


class Observer:
    def __init__(self, metrics: Metrics, known_tools: Mapping[str, frozenset[str]]) -> None:
        self._metrics = metrics
        self._known = known_tools

    def tool_label(self, server: str, tool: str | None) -> str:
        return tool if tool is not None and tool in self._known.get(server, frozenset()) else "other"

    def message(self, verdict: Verdict, outcome: str, seconds: float, identity: Identity, request_id: str,
                session: str | None, exchange: Exchange | None, record: Observation) -> None:
        facts, decision = verdict.facts, verdict.decision_label
        method = facts.method if facts.method in METHODS else ("other" if facts.method else facts.kind)
        self._metrics.mcp_message(server=facts.server, method=method, decision=decision)
        counts = verdict.findings.counts()
        if counts:
            action = {t: "block" if verdict.refusal else "redact" if t in verdict.redacted else "allow" for t in counts}
            self._metrics.pii_found(counts=counts, action_of=action, direction="request")
        self.record(record, verdict, method)
        if facts.method != "tools/call" or verdict.tool is None:
            return
        self._metrics.mcp_tool_call(server=facts.server, tool=self.tool_label(facts.server, verdict.tool.name),
                                    decision=decision, outcome=outcome, seconds=seconds)
        result_pii = dict(exchange.result_pii) if exchange else {}
        if result_pii:
            redacted = exchange.redacted if exchange else {}
            self._metrics.pii_found(counts=result_pii, action_of={t: "redact" if t in redacted else "allow"
                                                                  for t in result_pii}, direction="response")
        annotations = verdict.tool.annotations
        audit_log.info(
            "mcp_tool_call", request_id=request_id, server=facts.server, tool=verdict.tool.name,
            call_id=verdict.message.id, session=session is not None, app=identity.app, team=identity.team,
            user=identity.user, key_id=identity.key_id, decision=decision, outcome=outcome,
            reason_codes=[r.code for r in verdict.decision.reasons] or None,
            error_code=verdict.refusal.name if verdict.refusal else None,
            read_only=None if annotations is None else annotations.get("readOnlyHint"),
            destructive=None if annotations is None else annotations.get("destructiveHint"),
            argument_pii=counts or None, arguments_redacted=list(verdict.redacted) or None,
            result_pii=result_pii or None, policy_revision=verdict.revision, duration_ms=round(seconds * 1000, 3))

    @staticmethod
    def record(record: Observation, verdict: Verdict, method: str) -> None:
        decision = verdict.decision_label
        if _DECISION_RANK.get(decision, 0) >= _DECISION_RANK.get(record.decision, -1):
            record.decision = decision
            record.reason_codes = tuple(r.code for r in verdict.decision.reasons)
        record.audit_codes = tuple(r.code for r in verdict.decision.audit)
        record.pii_types = tuple(sorted(set(record.pii_types) | set(verdict.findings.counts())))
        if verdict.redacted:
            record.pii_action = "redact"
        record.mcp_server = verdict.facts.server
        record.mcp_method = method
        if verdict.tool is not None:
            record.mcp_tool = verdict.tool.name
        if verdict.refusal is not None:
            record.error_code = verdict.refusal.name

"""A refused egress attempt is remembered three ways: an event-log entry (for the report), a metric, an audit line."""

from __future__ import annotations

from typing import Any

from proxy.egress.http_parse import Target
from proxy.eventlog import EventLog
from proxy.identity import Identity
from proxy.policy.decision import EgressDecision
from proxy.telemetry.logging import get_logger
from proxy.telemetry.metrics import Metrics

EVENT_KIND = "shadow_ai"
# Refusals of hosts that are not AI providers (allow-list mode) carry this provider in the event log.
NO_PROVIDER = "none"

log = get_logger("proxy.egress")


class RefusalRecorder:
    def __init__(self, events: EventLog, metrics: Metrics) -> None:
        self._events = events
        self._metrics = metrics

    async def refused(self, identity: Identity, target: Target, method: str, decision: EgressDecision,
                      *, rule: str | None = None) -> None:
        """`rule`: why the destination is internal (loopback, metadata, ...), when it is."""
        provider = decision.provider or NO_PROVIDER
        reason = decision.reasons[0].code if decision.reasons else "egress_denied"
        fields: dict[str, str | int] = {
            "app": identity.app,
            "team": identity.team,
            "host": target.host,
            "provider": provider,
            "method": method,
            "port": target.port,
            "reason": reason,
        }
        if rule is not None:
            fields["rule"] = rule
        self._metrics.child(self._metrics.egress_refused, reason).inc()
        # The counter (and the alert on it) means "an app called an AI provider directly"; an allow-list
        # refusal of some other host is only stored and logged, so it cannot page anyone as shadow AI.
        if decision.provider is not None:
            self._metrics.child(self._metrics.shadow_ai, identity.app, provider).inc()
            log.warning("shadow_ai_refused", **_audit(identity, fields))
        elif rule is not None:
            # Someone tried to reach an internal system through the proxy: worth a look, like shadow AI.
            log.warning("egress_internal_refused", **_audit(identity, fields))
        else:
            log.info("egress_refused", **_audit(identity, fields))
        try:
            await self._events.append(EVENT_KIND, fields)
        except Exception as exc:
            # The refusal stands either way; an event-log outage only costs the report an entry.
            log.error("shadow_ai_record_failed", error=type(exc).__name__, host=target.host, app=identity.app)


def _audit(identity: Identity, fields: dict[str, str | int]) -> dict[str, Any]:
    # Identity fields only, never the presented key: key_id is the configured id, not a secret.
    return {**fields, "key_id": identity.key_id, "source": identity.source}

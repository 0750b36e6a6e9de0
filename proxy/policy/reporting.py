"""What a policy reloader reports, as log events and metrics, the same way for the live and the shadow
version: loads, rejected versions, compiled mode refused, evaluator processes replaced."""

from __future__ import annotations

from typing import Any

from proxy.policy.isolated import RESTART_REASONS, OnRestart
from proxy.policy.reload import OnReload, ReloadEvent
from proxy.policy.validate import FALLBACK_REASONS, REJECTION_REASONS
from proxy.telemetry.metrics import Metrics


def reload_reporter(metrics: Metrics, log: Any) -> OnReload:
    def report(event: ReloadEvent) -> None:
        if event.initial:
            zero_counters(metrics, event.policy)
        if event.policy == "live":
            metrics.policy_reloaded(ok=event.ok, revision=event.revision)
        if not event.ok:
            metrics.child(metrics.policy_rejected, event.policy, event.reason or "error").inc()
            log.error("policy_reload_failed", policy=event.policy, reason=event.reason, candidate=event.candidate,
                      error=event.error, kept_revision=event.revision)
            return
        if event.fallback_reason is not None:
            metrics.child(metrics.policy_interpreted, event.policy, event.fallback_reason).inc()
            log.warning("policy_compiled_mode_refused", policy=event.policy, revision=event.revision,
                        reason=event.fallback_reason, detail=event.fallback)
        log.info("policy_loaded" if event.initial else "policy_reloaded", policy=event.policy,
                 revision=event.revision, mode=event.mode, samples=dict(event.samples))
    return report


def restart_reporter(metrics: Metrics, log: Any, which: str) -> OnRestart:
    def report(reason: str, revision: str) -> None:
        metrics.child(metrics.policy_restarts, which, reason).inc()
        log.error("policy_evaluator_replaced", policy=which, reason=reason, revision=revision)
    return report


def zero_counters(metrics: Metrics, which: str) -> None:
    """Every known outcome starts at 0: a series that first appears at 1 shows Prometheus no increase, so
    the first rejection or restart would go unseen by rates and alerts."""
    for reason in REJECTION_REASONS:
        metrics.child(metrics.policy_rejected, which, reason)
    for reason in FALLBACK_REASONS:
        metrics.child(metrics.policy_interpreted, which, reason)
    for reason in RESTART_REASONS:
        metrics.child(metrics.policy_restarts, which, reason)

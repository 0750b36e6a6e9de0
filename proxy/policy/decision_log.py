"""One decision-log event per decision, in the shape of OPA's decision logs plus our request_id.

A routine decision (a clean allow: no reasons, no audit, no model rewrite, no PII found) is
logged compact by default: its result, and of its input only the request and identity facts, which say
what was decided for whom. Denials, audit findings, obligations and engine errors keep the whole input,
which is what a later review reads. `policy.decision_log: full` keeps it for every decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from proxy.telemetry.clock import rfc3339

Detail = Literal["compact", "full"]
# Parts of the input a compact event keeps.
_COMPACT_INPUT = ("request", "identity")


def decision_event(
    *,
    decision_id: str,
    entrypoint: str,
    input: Mapping[str, Any],
    result: Mapping[str, Any] | None,
    revision: str,
    eval_ns: int,
    timestamp: float,
    request_id: str | None = None,
    labels: Mapping[str, str] | None = None,
    bundle: str = "policies",
    error: str | None = None,
    detail: Detail = "full",
) -> dict[str, Any]:
    """`input` goes in as passed to the engine (the same dict, not a copy): it holds no prompt text unless
    the operator opted in. With detail "compact", a routine decision keeps only the input's request and
    identity (`"detail": "compact"` on the event says so)."""
    compact = detail == "compact" and error is None and routine(result, input)
    event: dict[str, Any] = {
        "decision_id": decision_id,
        "labels": dict(labels or {}),
        "bundles": {bundle: {"revision": revision}},
        "path": entrypoint.removeprefix("data.").replace(".", "/"),
        "input": {key: input[key] for key in _COMPACT_INPUT if key in input} if compact else input,
        "result": result,
        "timestamp": rfc3339(timestamp),
        "metrics": {"timer_rego_query_eval_ns": eval_ns},
        "request_id": request_id,
    }
    if compact:
        event["detail"] = "compact"
    if error is not None:
        event["error"] = {"code": "policy_engine_error", "message": error}
    return event


def routine(result: Mapping[str, Any] | None, input: Mapping[str, Any]) -> bool:
    """A clean allow that changes nothing about the request: what most traffic is, and least worth keeping."""
    if result is None or result.get("allow") is not True:
        return False
    # `redact` and `restore` name what would happen to PII: with none found (checked below) they change
    # nothing, and the shipped policies name them on every allow.
    if result.get("reasons") or result.get("audit"):
        return False
    request = input.get("request")
    asked = request.get("model") if isinstance(request, Mapping) else None
    if result.get("model") not in (None, asked):
        return False  # a model rewrite
    pii = input.get("pii")
    return not (isinstance(pii, Mapping) and pii.get("types"))


def write(logger: Any, event: Mapping[str, Any]) -> None:
    """The event on the decision log: at error when the engine failed (an operator must see it), else info."""
    (logger.error if "error" in event else logger.info)("decision", **event)

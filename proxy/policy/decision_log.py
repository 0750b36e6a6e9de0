"""One decision-log event per decision, in the shape of OPA's decision logs plus our request_id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.telemetry.clock import rfc3339


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
) -> dict[str, Any]:
    """`input` goes in as passed to the engine: it holds no prompt text unless the operator opted in."""
    event: dict[str, Any] = {
        "decision_id": decision_id,
        "labels": dict(labels or {}),
        "bundles": {bundle: {"revision": revision}},
        "path": entrypoint.removeprefix("data.").replace(".", "/"),
        "input": input,
        "result": result,
        "timestamp": rfc3339(timestamp),
        "metrics": {"timer_rego_query_eval_ns": eval_ns},
        "request_id": request_id,
    }
    if error is not None:
        event["error"] = {"code": "policy_engine_error", "message": error}
    return event

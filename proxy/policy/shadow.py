"""Shadow evaluation: a candidate policy version decides beside the live one; differences are events.

compare() runs after the response is sent. Events carry who was affected (team, app, model, endpoint),
reason codes, obligations and revisions, never prompt text; JsonlSink appends them for
`policy diff-report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from proxy.policy.decision import Decision
from proxy.policy.engine import PolicyEngine
from proxy.policy.errors import PolicyEngineError
from proxy.policy.recent import record_input

EVENT = "policy_shadow_difference"
DECISION = "data.llm.main.decision"
OBLIGATIONS = ("model", "max_tokens", "redact", "restore", "budgets", "headers")

Sink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Difference:
    kinds: tuple[str, ...]
    live: dict[str, Any]
    candidate: dict[str, Any]
    obligations_changed: tuple[str, ...] = ()
    request_id: str | None = None
    error: str | None = None
    who: dict[str, Any] | None = None  # team, app, model, endpoint of the request

    def as_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event": EVENT,
            "time": time.time(),
            "request_id": self.request_id,
            **(self.who or {}),
            "kinds": list(self.kinds),
            "obligations_changed": list(self.obligations_changed),
            "live": self.live,
            "candidate": self.candidate,
        }
        if self.error is not None:
            event["error"] = self.error
        return event


class ShadowEvaluator:
    def __init__(self, candidate: PolicyEngine, *, sink: Sink | None = None) -> None:
        self.candidate = candidate
        self._sink = sink

    async def compare(
        self,
        input: dict[str, Any],
        live_decision: Decision,
        *,
        live_revision: str = "",
        request_id: str | None = None,
    ) -> Difference | None:
        live = summary(live_decision, live_revision)
        try:
            candidate_decision = await self.candidate.evaluate(input)
        except PolicyEngineError as exc:
            difference: Difference | None = Difference(
                ("error",), live, {"revision": self.candidate.revision}, request_id=request_id, error=str(exc),
                who=affected(input),
            )
        else:
            record_input(self.candidate, DECISION, input)
            difference = diff_decisions(live_decision, candidate_decision, live_revision,
                                        self.candidate.revision, request_id, affected(input))
        if difference is not None and self._sink is not None:
            self._sink(difference.as_event())
        return difference


def diff_decisions(
    live: Decision,
    candidate: Decision,
    live_revision: str = "",
    candidate_revision: str = "",
    request_id: str | None = None,
    who: dict[str, Any] | None = None,
) -> Difference | None:
    kinds = []
    if live.allow != candidate.allow:
        kinds.append("allow")
    if _codes(live.reasons) != _codes(candidate.reasons):
        kinds.append("reasons")
    if _codes(live.audit) != _codes(candidate.audit):
        kinds.append("audit")
    live_doc, candidate_doc = live.as_dict(), candidate.as_dict()
    changed = tuple(key for key in OBLIGATIONS if live_doc.get(key) != candidate_doc.get(key))
    if changed:
        kinds.append("obligations")
    if not kinds:
        return None
    return Difference(
        tuple(kinds),
        summary(live, live_revision),
        summary(candidate, candidate_revision),
        changed,
        request_id,
        who=who,
    )


def affected(input: dict[str, Any]) -> dict[str, Any]:
    """Who a difference would affect: names from the proxy's config and catalogue, never request content."""
    identity, request = input.get("identity") or {}, input.get("request") or {}
    return {"team": identity.get("team"), "app": identity.get("app"), "model": request.get("model"),
            "endpoint": request.get("endpoint")}


def summary(decision: Decision, revision: str) -> dict[str, Any]:
    doc = decision.as_dict()
    return {
        "revision": revision,
        "allow": decision.allow,
        "reasons": _codes(decision.reasons),
        "audit": _codes(decision.audit),
        "obligations": {key: doc[key] for key in OBLIGATIONS if key in doc},
    }


class JsonlSink:
    """Appends one JSON line per difference; line-buffered so a crash loses at most one event."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO = path.open("a", encoding="utf-8", buffering=1)

    def __call__(self, event: dict[str, Any]) -> None:
        self._file.write(orjson.dumps(event).decode() + "\n")

    def close(self) -> None:
        self._file.close()


def _codes(reasons: tuple[Any, ...]) -> list[str]:
    return [reason.code for reason in reasons]

"""What one request did, filled in by the pipeline and written once as the canonical audit line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class AuditRecord:
    endpoint: str = ""
    model_requested: str | None = None
    model_used: str | None = None
    upstream: str | None = None
    stream: bool = False
    decision: str = "none"  # allow | deny | error | fail_open | none
    reason_codes: tuple[str, ...] = ()
    audit_codes: tuple[str, ...] = ()
    policy_revision: str | None = None
    pii_types: tuple[str, ...] = ()
    pii_action: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    upstream_status: int | None = None
    upstream_seconds: float = 0.0
    ttft_seconds: float | None = None
    client_disconnected: bool = False
    # Set once the whole response is on the wire: a cancellation after that is not a client abort.
    completed_status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__ if name not in ("extra", "completed_status")}
        out.update(self.extra)
        return {k: v for k, v in out.items() if v not in (None, (), "")}

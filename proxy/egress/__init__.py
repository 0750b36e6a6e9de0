"""Shadow-AI egress control: a forward proxy that refuses, records and reports direct calls to AI providers."""

from __future__ import annotations

from proxy.egress.config import EgressConfig, SourceApp
from proxy.egress.identity import identities_by_hash
from proxy.egress.report import format_report, parse_since, shadow_ai_report
from proxy.egress.server import EgressServer, start_egress

__all__ = [
    "EgressConfig",
    "EgressServer",
    "SourceApp",
    "format_report",
    "identities_by_hash",
    "parse_since",
    "shadow_ai_report",
    "start_egress",
]

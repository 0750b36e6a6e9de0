"""PII and secret detection, redaction and restore, for whole texts and for streamed answers."""

from __future__ import annotations

from proxy.pii.detectors import Scanner
from proxy.pii.fields import scan_texts
from proxy.pii.findings import summarize
from proxy.pii.redact import Placeholders, redact, restore
from proxy.pii.stream import StreamRedactor, StreamRestorer
from proxy.pii.types import CATEGORIES, Category, CustomType, Finding, Match

__all__ = [
    "CATEGORIES",
    "Category",
    "CustomType",
    "Finding",
    "Match",
    "Placeholders",
    "Scanner",
    "StreamRedactor",
    "StreamRestorer",
    "redact",
    "restore",
    "scan_texts",
    "summarize",
]

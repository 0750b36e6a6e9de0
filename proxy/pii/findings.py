"""Turns matches into what the policy sees: type, count and JSON path, never the value."""

from __future__ import annotations

from collections.abc import Iterable

from proxy.pii.types import Finding, Match


def summarize(matches_by_path: Iterable[tuple[str, list[Match]]]) -> list[Finding]:
    """One finding per (path, type), in the order paths and types were first seen."""
    counts: dict[tuple[str, str], int] = {}
    for path, matches in matches_by_path:
        for m in matches:
            counts[(path, m.type)] = counts.get((path, m.type), 0) + 1
    return [Finding(type=type_, count=count, path=path) for (path, type_), count in counts.items()]

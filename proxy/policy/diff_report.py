"""Summarises a shadow-evaluation JSON lines file: what kinds of differences, how often, which codes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from proxy.policy.shadow import EVENT

EXAMPLES = 5


@dataclass
class DiffReport:
    events: int = 0
    skipped: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    codes_added: Counter[str] = field(default_factory=Counter)
    codes_removed: Counter[str] = field(default_factory=Counter)
    obligations: Counter[str] = field(default_factory=Counter)
    revisions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def render(self) -> str:
        lines = [f"shadow differences: {self.events}" + (f" ({self.skipped} unreadable lines skipped)"
                                                          if self.skipped else "")]
        lines += _section("by kind", self.kinds)
        lines += _section("allow changes (live -> candidate)", self.transitions)
        lines += _section("reason codes only the candidate gives", self.codes_added)
        lines += _section("reason codes only the live version gives", self.codes_removed)
        lines += _section("obligations changed", self.obligations)
        lines += _section("revisions (live -> candidate)", self.revisions)
        lines += _section("candidate errors", self.errors)
        return "\n".join(lines)


def summarise(path: Path) -> DiffReport:
    report = DiffReport()
    with path.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                report.skipped += 1
                continue
            if not isinstance(event, dict) or event.get("event") != EVENT:
                report.skipped += 1
                continue
            _count(report, event)
    return report


def _count(report: DiffReport, event: dict[str, object]) -> None:
    live, candidate = _dict(event.get("live")), _dict(event.get("candidate"))
    report.events += 1
    report.kinds.update(str(k) for k in _list(event.get("kinds")))
    report.obligations.update(str(k) for k in _list(event.get("obligations_changed")))
    report.revisions[f"{live.get('revision', '?')} -> {candidate.get('revision', '?')}"] += 1
    if "allow" in candidate and live.get("allow") != candidate.get("allow"):
        report.transitions[f"{_verdict(live)} -> {_verdict(candidate)}"] += 1
    live_codes = set(map(str, _list(live.get("reasons"))))
    candidate_codes = set(map(str, _list(candidate.get("reasons"))))
    report.codes_added.update(candidate_codes - live_codes)
    report.codes_removed.update(live_codes - candidate_codes)
    if event.get("error"):
        # Only the first line: engine errors name files and rules, never request content.
        report.errors[str(event["error"]).splitlines()[0][:200]] += 1


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _verdict(side: dict[str, object]) -> str:
    return "allow" if side.get("allow") else "deny"


def _section(title: str, counts: Counter[str]) -> list[str]:
    if not counts:
        return []
    lines = [f"{title}:"]
    for key, n in counts.most_common(EXAMPLES):
        lines.append(f"  {n:>7}  {key}")
    if len(counts) > EXAMPLES:
        lines.append(f"  {'':>7}  ... and {len(counts) - EXAMPLES} more")
    return lines

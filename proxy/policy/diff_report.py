"""Summarises a shadow-evaluation JSON lines file for a security team: what would change (by reason), who
it would affect (by team/app) and how often, plus the kinds, codes, obligations and revisions involved.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from proxy.policy.shadow import EVENT

EXAMPLES = 5


@dataclass
class DiffReport:
    events: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    who: Counter[str] = field(default_factory=Counter)
    who_by_reason: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    reasons_by_who: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    models: Counter[str] = field(default_factory=Counter)
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
        lines += _section("by reason (what would change; who)", self.reasons, self.who_by_reason)
        lines += _section("by team/app (who would be affected; why)", self.who, self.reasons_by_who)
        lines += _section("by model and endpoint", self.models)
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
    transition = None
    if "allow" in candidate and live.get("allow") != candidate.get("allow"):
        transition = f"{_verdict(live)} -> {_verdict(candidate)}"
        report.transitions[transition] += 1
    live_codes = set(map(str, _list(live.get("reasons"))))
    candidate_codes = set(map(str, _list(candidate.get("reasons"))))
    report.codes_added.update(candidate_codes - live_codes)
    report.codes_removed.update(live_codes - candidate_codes)
    error = str(event["error"]).splitlines()[0][:200] if event.get("error") else None
    if error is not None:
        # Only the first line: engine errors name files and rules, never request content.
        report.errors[error] += 1
    reason = _reason(transition, candidate_codes - live_codes, live_codes - candidate_codes,
                     _list(event.get("obligations_changed")), error)
    who = f"{event.get('team') or '?'}/{event.get('app') or '?'}"
    report.reasons[reason] += 1
    report.who[who] += 1
    report.who_by_reason[reason][who] += 1
    report.reasons_by_who[who][reason] += 1
    report.models[f"{event.get('model') or '?'} {event.get('endpoint') or '?'}"] += 1


def _reason(transition: str | None, added: set[str], removed: set[str], obligations: list[object],
            error: str | None) -> str:
    if error is not None:
        return "candidate error"
    parts = [transition] if transition else []
    codes = [f"+{code}" for code in sorted(added)] + [f"-{code}" for code in sorted(removed)]
    if codes:
        parts.append(" ".join(codes))
    if obligations:
        parts.append("changes " + ", ".join(map(str, obligations)))
    return "; ".join(parts) or "audit codes only"


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _verdict(side: dict[str, object]) -> str:
    return "allow" if side.get("allow") else "deny"


def _section(title: str, counts: Counter[str], breakdown: dict[str, Counter[str]] | None = None) -> list[str]:
    if not counts:
        return []
    lines = [f"{title}:"]
    for key, n in counts.most_common(EXAMPLES):
        line = f"  {n:>7}  {key}"
        if breakdown is not None:
            parts = breakdown[key].most_common(3)
            more = len(breakdown[key]) - len(parts)
            line += "  (" + ", ".join(f"{k} {v}" for k, v in parts) + (f", +{more} more" if more > 0 else "") + ")"
        lines.append(line)
    if len(counts) > EXAMPLES:
        lines.append(f"  {'':>7}  ... and {len(counts) - EXAMPLES} more")
    return lines

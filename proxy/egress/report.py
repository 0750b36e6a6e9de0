"""The shadow-AI report: which apps tried to reach AI providers (or internal destinations) directly, how
often, when, and why they were refused."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from proxy.egress.recorder import EVENT_KIND
from proxy.eventlog import EventLog

_SINCE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
COLUMNS = ("APP", "TEAM", "PROVIDER", "REASON", "ATTEMPTS", "FIRST SEEN (UTC)", "LAST SEEN (UTC)", "HOSTS")


def parse_since(text: str) -> float:
    """`30m`, `12h`, `7d` (also `s` and `w`) as seconds."""
    match = _SINCE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, like 30m, 12h or 7d")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be positive")
    return seconds


async def shadow_ai_report(events: EventLog, since_s: float, now: float | None = None) -> list[dict[str, Any]]:
    """Refused attempts of the last `since_s` seconds, one row per (app, team, provider, reason), newest first."""
    now = time.time() if now is None else now
    return aggregate(await events.events(EVENT_KIND, now - since_s))


def aggregate(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for event in events:
        key = (str(event.get("app", "unknown")), str(event.get("team", "unknown")), str(event.get("provider", "")),
               str(event.get("reason", "")))
        ts = float(event["ts"])
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"app": key[0], "team": key[1], "provider": key[2], "reason": key[3], "attempts": 0,
                               "first_seen": ts, "last_seen": ts, "hosts": set()}
        row["attempts"] += 1
        row["first_seen"] = min(row["first_seen"], ts)
        row["last_seen"] = max(row["last_seen"], ts)
        row["hosts"].add(str(event.get("host", "")))
    ordered = sorted(rows.values(), key=lambda r: (-r["last_seen"], r["app"], r["provider"]))
    return [{**row, "hosts": sorted(row["hosts"])} for row in ordered]


def format_report(rows: Sequence[dict[str, Any]]) -> str:
    """A plain text table for the CLI."""
    if not rows:
        return "no shadow-AI attempts recorded in this period"
    table = [COLUMNS] + [
        (r["app"], r["team"], r["provider"], r["reason"] or "-", str(r["attempts"]), _when(r["first_seen"]),
         _when(r["last_seen"]), ", ".join(r["hosts"]))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

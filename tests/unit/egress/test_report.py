"""The shadow-AI report: aggregation of recorded refusals, the text table, and --since durations."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.egress.report import aggregate, format_report, parse_since, shadow_ai_report

EVENTS: list[dict[str, Any]] = [
    {"app": "web", "team": "shop", "host": "api.openai.com", "provider": "openai", "method": "CONNECT",
     "port": "443", "reason": "ai_provider_blocked", "ts": 1000.0},
    {"app": "web", "team": "shop", "host": "api.anthropic.com", "provider": "anthropic", "method": "CONNECT",
     "port": "443", "reason": "ai_provider_blocked", "ts": 1100.0},
    {"app": "web", "team": "shop", "host": "api.openai.com", "provider": "openai", "method": "CONNECT",
     "port": "443", "reason": "ai_provider_blocked", "ts": 1200.0},
    {"app": "cron", "team": "ops", "host": "x.openai.azure.com", "provider": "azure_openai", "method": "CONNECT",
     "port": "443", "reason": "ai_provider_blocked", "ts": 1050.0},
    {"app": "web", "team": "shop", "host": "eu.api.openai.com", "provider": "openai", "method": "GET",
     "port": "80", "reason": "ai_provider_blocked", "ts": 900.0},
]
INTERNAL: list[dict[str, Any]] = [
    {"app": "web", "team": "shop", "host": "169.254.169.254", "provider": "none", "method": "GET", "port": "80",
     "reason": "internal_destination", "rule": "metadata", "ts": 1300.0},
    {"app": "web", "team": "shop", "host": "10.0.0.1", "provider": "none", "method": "CONNECT", "port": "22",
     "reason": "internal_destination", "rule": "private", "ts": 1250.0},
]


def test_aggregate_counts_per_app_and_provider_newest_first() -> None:
    rows = aggregate(EVENTS)
    assert [(r["app"], r["provider"], r["attempts"]) for r in rows] == [
        ("web", "openai", 3), ("web", "anthropic", 1), ("cron", "azure_openai", 1)]
    assert rows[0]["first_seen"] == 900.0 and rows[0]["last_seen"] == 1200.0
    assert rows[0]["hosts"] == ["api.openai.com", "eu.api.openai.com"]
    assert rows[0]["team"] == "shop"


def test_format_report_renders_an_aligned_table() -> None:
    text = format_report(aggregate(EVENTS))
    lines = text.splitlines()
    assert lines[0].split() == ["APP", "TEAM", "PROVIDER", "REASON", "ATTEMPTS", "FIRST", "SEEN", "(UTC)", "LAST",
                                "SEEN", "(UTC)", "HOSTS"]
    assert lines[1].split()[:5] == ["web", "shop", "openai", "ai_provider_blocked", "3"]
    assert "1970-01-01 00:15:00" in lines[1] and lines[1].endswith("api.openai.com, eu.api.openai.com")
    assert lines[1].index("openai") == lines[0].index("PROVIDER")


def test_internal_destination_refusals_get_their_own_row_with_the_reason() -> None:
    rows = aggregate(EVENTS + INTERNAL)
    assert (rows[0]["app"], rows[0]["provider"], rows[0]["reason"], rows[0]["attempts"]) == \
        ("web", "none", "internal_destination", 2)
    assert rows[0]["hosts"] == ["10.0.0.1", "169.254.169.254"]
    assert [r["reason"] for r in rows[1:]] == ["ai_provider_blocked"] * 3
    assert "internal_destination" in format_report(rows).splitlines()[1]


def test_events_recorded_before_reasons_existed_show_a_dash() -> None:
    [row] = aggregate([{"app": "a", "team": "t", "host": "h", "provider": "openai", "ts": 1.0}])
    assert row["reason"] == "" and format_report([row]).splitlines()[1].split()[3] == "-"


def test_format_report_says_so_when_nothing_was_recorded() -> None:
    assert "no shadow-AI attempts" in format_report([])


class Events:
    def __init__(self) -> None:
        self.asked: tuple[str, float] | None = None

    async def events(self, kind: str, since: float) -> list[dict[str, Any]]:
        self.asked = (kind, since)
        return [e for e in EVENTS if e["ts"] >= since]


async def test_shadow_ai_report_reads_the_window_from_the_store() -> None:
    store = Events()
    rows = await shadow_ai_report(store, since_s=200, now=1250.0)  # type: ignore[arg-type]
    assert store.asked == ("shadow_ai", 1050.0)
    assert [(r["app"], r["attempts"]) for r in rows] == [("web", 1), ("web", 1), ("cron", 1)]


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("12h", 43200), ("7d", 604800), ("45s", 45), ("2w", 1209600), (" 1.5H ", 5400)])
def test_parse_since_reads_durations(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7y", "-1d", "0h", "1d2h"])
def test_parse_since_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_since(text)

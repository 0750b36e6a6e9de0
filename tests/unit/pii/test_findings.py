"""Findings carry type, count and path, never the value."""

from __future__ import annotations

from proxy.pii import Finding, Match, summarize


def test_counts_per_path_and_type_in_first_seen_order() -> None:
    result = summarize(
        [
            ("messages[0].content", [Match("email", 0, 5), Match("phone", 9, 20), Match("email", 30, 40)]),
            ("messages[1].content", []),
            ("messages[2].content", [Match("card", 3, 19)]),
        ]
    )
    assert result == [
        Finding("email", 2, "messages[0].content"),
        Finding("phone", 1, "messages[0].content"),
        Finding("card", 1, "messages[2].content"),
    ]

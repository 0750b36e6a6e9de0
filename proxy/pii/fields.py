"""Scans the texts of one request: each field on its own, and the parts of one message also joined, so a
value split across two adjacent parts ("4111 1111" + " 1111 1111") is found and redacted in both."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from proxy.pii.detectors import Scanner
from proxy.pii.types import Match

# "messages[2].content[1].text", "input[0].content[3].text": a part of one message's content.
_PART: Final = re.compile(r"(?P<message>.*\.content)\[[0-9]+\](?:\.(?:text|refusal))?\Z")


def scan_texts(scanner: Scanner, slots: Iterable[tuple[str, str, Any, Any]]) -> dict[str, list[Match]]:
    """JSON path -> matches for every (path, text, ...) slot with findings."""
    found: dict[str, list[Match]] = {}
    messages: dict[str, list[tuple[str, str]]] = {}
    for path, text, *_ in slots:
        matches = scanner.find(text)
        if matches:
            found[path] = matches
        part = _PART.match(path)
        if part is not None:
            messages.setdefault(part.group("message"), []).append((path, text))
    for parts in messages.values():
        if len(parts) > 1:
            _scan_joined(scanner, parts, found)
    return found


def _overlaps(matches: Iterable[Match], type_: str, start: int, end: int) -> bool:
    return any(m.type == type_ and m.start < end and m.end > start for m in matches)


def _scan_joined(scanner: Scanner, parts: list[tuple[str, str]], found: dict[str, list[Match]]) -> None:
    joined = "".join(text for _, text in parts)
    bounds: list[tuple[str, int, int]] = []
    at = 0
    for path, text in parts:
        bounds.append((path, at, at + len(text)))
        at += len(text)
    for m in scanner.find(joined):
        # Also a value inside one part that needed the part before it ("SSN:" + "123456789").
        pieces = [(path, max(m.start, low) - low, min(m.end, high) - low) for path, low, high in bounds
                  if m.start < high and m.end > low]
        if len(pieces) > 1 and any(_overlaps(found.get(path, ()), m.type, start, end) for path, start, end in pieces):
            continue  # a part found this value whole: the join only ran it into the next part's words
        for path, start, end in pieces:
            found[path] = scanner.merge([*found.get(path, []), Match(m.type, start, end)])

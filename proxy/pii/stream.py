"""Redacts (or restores) a streamed answer delta by delta, holding back only what may still change.

Added delay: a redactor holds the last `window` characters (default 256, the longest bounded match),
any trailing run without whitespace (a token still being written, capped at `max_hold`), and an open
PEM private key block until its END line (also capped at `max_hold`, 16 KiB by default); past the cap
it redacts what it has rather than wait. A restorer holds at most a placeholder's length (64).
One instance per stream and choice index; both are plain objects with no I/O and no framework.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from proxy.pii.detectors import Scanner
from proxy.pii.patterns import MAX_BOUNDED_MATCH
from proxy.pii.redact import MAX_PLACEHOLDER, PLACEHOLDER_PREFIX, Placeholders, redact, restore
from proxy.pii.types import Match

DEFAULT_WINDOW: Final = MAX_BOUNDED_MATCH
DEFAULT_MAX_HOLD: Final = 16 * 1024
# Already emitted text kept for the detectors that look behind a value (phone and SSN keywords).
_CONTEXT: Final = 64


class StreamRedactor:
    """`feed` returns the redacted text that is safe to send now; `flush` returns the rest at the end."""

    def __init__(
        self,
        scanner: Scanner,
        types: Collection[str],
        placeholders: Placeholders,
        window: int = DEFAULT_WINDOW,
        max_hold: int = DEFAULT_MAX_HOLD,
    ) -> None:
        if window < 1 or max_hold < window:
            raise ValueError("need 1 <= window <= max_hold")
        self._scanner = scanner
        self._types = frozenset(types)
        self._placeholders = placeholders
        self._window = window
        self._max_hold = max_hold
        self._context = ""
        self._pending = ""
        self._scan_at = window + 1

    def feed(self, delta: str) -> str:
        self._pending += delta
        # While a long value is held, rescanning on every delta would be quadratic: wait for it to
        # grow by a quarter first (bounded extra delay, linear total work).
        if len(self._pending) < self._scan_at:
            return ""
        text = self._context + self._pending
        base = len(self._context)
        matches = self._scanner.find(text)
        cut = self._safe_cut(text, base, matches)
        return self._emit(text, base, cut, matches)

    def flush(self) -> str:
        text = self._context + self._pending
        base = len(self._context)
        return self._emit(text, base, len(text), self._scanner.find(text))

    def _safe_cut(self, text: str, base: int, matches: list[Match]) -> int:
        cut = len(text) - self._window
        # A token still being written (no whitespace yet) may become a key or a JWT of any length.
        run_start = len(text)
        while run_start > base and not text[run_start - 1].isspace():
            run_start -= 1
        cut = min(cut, run_start)
        for m in reversed(matches):
            # Anything reaching into the held tail may still grow, so it waits whole.
            if m.start < cut and m.end > min(cut, len(text) - self._window):
                cut = m.start
        # Holding more than the cap would stall the stream: send it, redacted as it stands.
        return max(cut, len(text) - self._max_hold, base)

    def _emit(self, text: str, base: int, cut: int, matches: list[Match]) -> str:
        if cut > base:
            # Clamped to [base, cut): a value cut by the cap, or one starting in already sent context,
            # is redacted in the part we send rather than sent in clear.
            mine = [
                Match(m.type, max(m.start, base), min(m.end, cut)) for m in matches if m.end > base and m.start < cut
            ]
            out = redact(text[:cut], mine, self._types, self._placeholders)[base:] if mine else text[base:cut]
            self._context = text[:cut][-_CONTEXT:]
            for m in matches:
                if m.start < cut < m.end:
                    # Released by the cap mid-value: keep the value's head as context so the rest
                    # still matches (a PEM body needs its BEGIN line) and is redacted too.
                    self._context = text[m.start : min(cut, m.start + _CONTEXT)]
            self._pending = text[cut:]
        else:
            out = ""
        grown = len(self._pending) + (len(self._pending) - self._window) // 4
        self._scan_at = max(self._window + 1, min(grown, self._max_hold))
        return out


class StreamRestorer:
    """Puts originals back into a streamed answer even when a placeholder is split across deltas."""

    def __init__(self, placeholders: Placeholders) -> None:
        self._placeholders = placeholders
        self._pending = ""

    def feed(self, delta: str) -> str:
        text = self._pending + delta
        hold = _open_placeholder(text)
        self._pending = text[hold:]
        return restore(text[:hold], self._placeholders)

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return restore(text, self._placeholders)


def _open_placeholder(text: str) -> int:
    """Where an unfinished placeholder starts at the end of `text`, or len(text) if none."""
    bracket = text.rfind("[", max(0, len(text) - MAX_PLACEHOLDER))
    if bracket >= 0 and PLACEHOLDER_PREFIX.fullmatch(text, bracket):
        return bracket
    return len(text)

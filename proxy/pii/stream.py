"""Redacts (or restores) a streamed answer delta by delta, holding back only what may still change.

Added delay: a redactor holds only the tail that could still become or extend a value: the word still
being written (no whitespace yet), a trailing run of digit groups (a card, phone or IBAN written with
any spaces, dashes or invisible characters, in any script), a key prefix whose pieces may still join
across whitespace, an open quoted secret assignment, and an open PEM block until its END line. Prose
passes through as soon as each word ends, so the first token is not delayed; a held tail never exceeds
`window` characters (256) except for a single word or a PEM block, capped at `max_hold` (16 KiB), past
which it redacts what it has rather than wait. A restorer holds at most a placeholder's length (64).
One instance per stream and choice index; both are plain objects with no I/O and no framework.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

from proxy.pii.detectors import Scanner
from proxy.pii.joined import open_token_start
from proxy.pii.normalise import fold
from proxy.pii.patterns import MAX_BOUNDED_MATCH
from proxy.pii.redact import MAX_PLACEHOLDER, PLACEHOLDER_PREFIX, Placeholders, redact, restore
from proxy.pii.types import Match

DEFAULT_WINDOW: Final = MAX_BOUNDED_MATCH
DEFAULT_MAX_HOLD: Final = 16 * 1024
# Already emitted text kept for the detectors that look behind a value (phone and SSN keywords).
_CONTEXT: Final = 64
# Characters that can continue a spaced identifier: digit groups, IBAN letters, phone punctuation.
_NUMBERISH: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ -.()+/\n\t\r")
# A secret assignment whose quoted value (which may hold spaces) is still open.
_OPEN_QUOTED_SECRET: Final = re.compile(
    r"(?i)(?:pass(?:word|wd|phrase)?|pwd|secret|api[_-]?key|token)\s*[:=]\s*(?P<value>[\"'][^\"'\n]*)\Z")


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
        self._scan_at = 0

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
        cut = min(_word_start(text, base), self._risky_tail(text, base))
        for m in reversed(matches):
            # A value that reaches the held tail (or the end) may still grow, so it waits whole.
            if m.start < cut <= m.end:
                cut = m.start
        # Holding more than the cap would stall the stream: send it, redacted as it stands.
        return max(cut, len(text) - self._max_hold, base)

    def _risky_tail(self, text: str, base: int) -> int:
        """Where the tail that may still turn into a value spanning whitespace begins."""
        floor = max(base, len(text) - self._window)
        cut = len(text)
        start = len(text)
        while start > floor and _numberish(text[start - 1]):
            start -= 1
        if any(c.isdigit() for c in text[start:]):
            cut = start
        # A key's prefix with pieces after it that may still join across whitespace ("ghp_abc12 def34").
        token = open_token_start(text, floor)
        if token is not None:
            cut = min(cut, token)
        # The keyword may already be sent (it is kept as context): hold from the opening quote.
        if _may_open_quoted_secret(text):
            quoted = _OPEN_QUOTED_SECRET.search(text, max(0, len(text) - self._window))
            if quoted is not None:
                cut = min(cut, max(base, quoted.start("value")))
        pem = text.rfind("-----BEGIN", base)
        if pem >= 0 and text.find("-----END", pem) < 0:
            cut = min(cut, pem)
        return cut

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
        # Short held tails are rescanned on every delta; a long one (a PEM block, a huge token) only after
        # it grew by a quarter.
        held = len(self._pending)
        self._scan_at = 0 if held <= self._window else min(held + held // 4, self._max_hold)
        return out


def _numberish(ch: str) -> bool:
    """Whether `ch` can continue a value written in digit groups, in any script or spacing: fullwidth and
    other digits, Unicode spaces and dashes, and the invisible characters normalisation removes."""
    if ch in _NUMBERISH:
        return True
    if ch.isascii():
        return False
    folded = fold(ch)
    return all(c in _NUMBERISH for c in folded)


def _may_open_quoted_secret(text: str) -> bool:
    """Whether _OPEN_QUOTED_SECRET can match: its quote is the last one, with ':' or '=' before it and no
    line break after. Searching the case-insensitive pattern costs ~10 us a delta; this costs ~0.3."""
    quote = max(text.rfind('"'), text.rfind("'"))
    return quote >= 0 and "\n" not in text[quote:] and text[:quote].rstrip()[-1:] in (":", "=")


def _word_start(text: str, base: int) -> int:
    """Start of the trailing run without whitespace: a token still being written may become a key or a
    JWT of any length."""
    start = len(text)
    while start > base and not text[start - 1].isspace():
        start -= 1
    return start


class StreamRestorer:
    """Puts originals back into a streamed answer even when a placeholder is split across deltas."""

    def __init__(self, placeholders: Placeholders, json_string: bool = False) -> None:
        self._placeholders = placeholders
        self._json = json_string
        self._pending = ""

    def feed(self, delta: str) -> str:
        text = self._pending + delta
        hold = _open_placeholder(text)
        self._pending = text[hold:]
        return restore(text[:hold], self._placeholders, self._json)

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return restore(text, self._placeholders, self._json)


def _open_placeholder(text: str) -> int:
    """Where an unfinished placeholder starts at the end of `text`, or len(text) if none."""
    bracket = text.rfind("[", max(0, len(text) - MAX_PLACEHOLDER))
    if bracket >= 0 and PLACEHOLDER_PREFIX.fullmatch(text, bracket):
        return bracket
    return len(text)

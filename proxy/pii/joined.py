"""Known-prefix tokens broken by whitespace (`ghp_abc… def…`, a key wrapped over two lines): pieces join
while the type's pattern still matches; past its shortest match only random-looking pieces join."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from proxy.pii.patterns import SECRETS, Anchored

PREFIX: Final = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:(?P<github>gh[pousr]_)|(?P<github_pat>github_pat_)|(?P<slack>xox[abprse]-)"
    r"|(?P<slack_app>xapp-)|(?P<sk>sk-)|(?P<stripe>[sr]k_(?:live|test)_)|(?P<aws>A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA"
    r"|BIA|CCA))|(?P<google>AIza)|(?P<jwt>eyJ))"
)
_PIECE: Final = re.compile(r"[A-Za-z0-9_\-+/=.]{1,400}")
_GAP: Final = re.compile(r"[ \t]{1,3}(?:\r?\n[ \t]{0,12})?|[ \t]{0,3}\r?\n[ \t]{0,12}")
_MAX_PIECES: Final = 16
_MAX_CHARS: Final = 1200


def joined_tokens(text: str, gates: Iterable[tuple[str | None, int]]) -> Iterator[tuple[Anchored, int, int, str]]:
    """(pattern, start, end, joined value) for each prefixed token written with whitespace inside it.

    `gates` are SECRET_GATE's hits (group name, position): the prefix is looked up where each one says.
    """
    for gate, position in gates:
        offset = _GATE_OFFSET.get(gate or "")
        if offset is None:
            continue
        start = position - offset
        if start < 0 or PREFIX.match(text, start) is None:
            continue
        first = _PIECE.match(text, start)
        if first is None or _GAP.match(text, first.end()) is None:
            continue  # nothing after the token but its own end: the plain patterns cover it
        for anchored in _BY_GATE[gate or ""]:
            found = _longest(text, _pieces(text, start), anchored)
            if found is not None:
                end, value = found
                yield anchored, start, end, value
                break


def open_token_start(text: str, floor: int) -> int | None:
    """Where a prefixed token that may still grow across whitespace starts, if one ends `text`: its
    pieces reach the end, and each finished piece after the first looks random."""
    start = None
    for prefix in PREFIX.finditer(text, floor):
        start = prefix.start()
    if start is None:
        return None
    pieces = list(_pieces(text, start))
    last_end = pieces[-1][1]
    if last_end == len(text):
        finished = pieces[1:-1]  # the last piece is still being written
    elif _GAP.fullmatch(text, last_end):
        finished = pieces[1:]
    else:
        return None
    return start if all(_random(text[s:e]) for s, e in finished) else None


def _pieces(text: str, start: int) -> Iterator[tuple[int, int]]:
    """Spans of the token characters from `start` on, each separated from the next by short whitespace."""
    pos = start
    limit = min(len(text), start + _MAX_CHARS)
    for _ in range(_MAX_PIECES):
        piece = _PIECE.match(text, pos, limit)
        if piece is None:
            return
        yield piece.start(), piece.end()
        gap = _GAP.match(text, piece.end(), limit)
        if gap is None:
            return
        pos = gap.end()


def _longest(text: str, pieces: Iterator[tuple[int, int]], anchored: Anchored) -> tuple[int, str] | None:
    """The end and value of the longest join past the first piece that the pattern matches whole."""
    first = next(pieces)
    joined = text[first[0] : first[1]]
    complete = _whole(anchored, joined)  # a full token already: only random pieces extend it
    best: tuple[int, str] | None = None
    for piece_start, piece_end in pieces:
        piece = text[piece_start:piece_end]
        if (complete or best is not None) and not _random(piece):
            break
        joined += piece
        if _whole(anchored, joined):
            best = (piece_end, joined)
        elif best is not None or complete:
            break
    return best


def _whole(anchored: Anchored, value: str) -> bool:
    m = anchored.regex.match(value)
    return m is not None and m.end() == len(value)


def _random(piece: str) -> bool:
    """Key material, not a word: it has a digit, or capitals after its first character and small letters."""
    return len(piece) >= 3 and (any(c.isdigit() for c in piece) or (
        any(c.isupper() for c in piece[1:]) and any(c.islower() for c in piece)))


# Where SECRET_GATE's anchor character sits inside each prefix ("ghp_": the "_", 3 characters in).
_GATE_OFFSET: Final = {"github": 3, "github_pat": 10, "stripe": 7, "slack": 4, "slack_app": 4, "sk": 2, "aws": 0,
                       "google": 0, "jwt": 2}
_BY_GATE: Final[dict[str, tuple[Anchored, ...]]] = {
    gate: tuple(a for a in SECRETS if gate in a.gate) for gate in _GATE_OFFSET
}

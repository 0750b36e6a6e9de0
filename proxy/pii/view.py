"""A text derived from another by local edits, and the map that takes its spans back to the source:
normalisation and decoded layers are views, so a redaction covers the characters behind a value."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator


class View:
    """`text` is the source with edits applied; `source_span` maps a span of `text` back to the source."""

    __slots__ = ("_at", "_len", "_src", "_src_end", "text")

    def __init__(self, text: str, edits: Iterable[tuple[int, int, int, int]] = ()) -> None:
        """`edits` are (position in `text`, replacement length, source start, source end), in order."""
        self.text = text
        columns = tuple(zip(*edits, strict=True)) if edits else ()
        self._at: tuple[int, ...] = columns[0] if columns else ()
        self._len: tuple[int, ...] = columns[1] if columns else ()
        self._src: tuple[int, ...] = columns[2] if columns else ()
        self._src_end: tuple[int, ...] = columns[3] if columns else ()

    @property
    def edited(self) -> bool:
        return bool(self._at)

    def edits(self) -> Iterator[tuple[int, int]]:
        """(position in `text`, length) of each replacement, in order."""
        return zip(self._at, self._len, strict=True)

    def source_start(self, i: int) -> int:
        k = bisect_right(self._at, i) - 1
        if k < 0:
            return i
        if i < self._at[k] + self._len[k]:
            return self._src[k]  # inside a replacement: its whole source
        return i - self._at[k] - self._len[k] + self._src_end[k]

    def source_end(self, j: int) -> int:
        """The exclusive source end of a span whose exclusive end in `text` is j (> 0)."""
        i = j - 1
        k = bisect_right(self._at, i) - 1
        if k < 0:
            return j
        if i < self._at[k] + self._len[k]:
            return self._src_end[k]
        return i - self._at[k] - self._len[k] + self._src_end[k] + 1

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The source span of text[start:end], widened over characters removed right at its edges (a
        zero-width character or combining mark glued to a value goes with it)."""
        if not self._at:
            return start, end
        s = self.source_start(start)
        e = self.source_end(end) if end > start else s
        k = bisect_left(self._at, start)
        if k < len(self._at) and self._at[k] == start and self._len[k] == 0:
            s = min(s, self._src[k])
        k = bisect_right(self._at, end) - 1
        while k >= 0 and self._at[k] == end and self._len[k] == 0:
            e = max(e, self._src_end[k])
            k -= 1
        return s, e


def build(source: str, replacements: Iterable[tuple[int, int, str]]) -> View:
    """A view of `source` with each (start, end, replacement) applied; spans must be ordered, disjoint."""
    pieces: list[str] = []
    edits: list[tuple[int, int, int, int]] = []
    last = 0
    out = 0
    for start, end, replacement in replacements:
        pieces.append(source[last:start])
        out += start - last
        pieces.append(replacement)
        edits.append((out, len(replacement), start, end))
        out += len(replacement)
        last = end
    if not edits:
        return View(source)
    pieces.append(source[last:])
    return View("".join(pieces), edits)

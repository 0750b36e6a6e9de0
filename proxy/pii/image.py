"""An ASCII image of a text, one byte per character, and searches over it in C that shortlist where a
pattern may match, so the pattern itself runs only there.

`re` searches for a pattern that starts with a character class one character at a time (~3-5 ns each):
over a whole text that was most of a scan's cost. `bytes.translate` marks the characters of the class,
and a `bytes` pattern starting with a literal finds the marks ~10x faster.
"""

from __future__ import annotations

import re

MARK = b"m"


def ascii_image(text: str) -> bytes:
    """`text` as bytes with `?` for each non-ASCII character, so offsets in it are offsets in `text`.
    NEL (U+0085), which normalisation keeps and `re` reads as whitespace but not as a line break, becomes
    VT, which `re` reads the same way: the keyword patterns read the image."""
    if not text.isascii() and "\x85" in text:
        text = text.replace("\x85", "\x0b")
    return text.encode("ascii", "replace")


def table(chars: str, **others: str) -> bytes:
    """A `bytes.translate` table turning each of the ASCII `chars` into MARK, those of each keyword's value
    into the keyword's letter (`d="0123456789"`: digits into `d`), and every other byte into `.`."""
    marks = {ord(ch): ord(mark[0]) for mark, group in others.items() for ch in group}
    marks.update((ord(ch), MARK[0]) for ch in chars)
    return bytes(marks.get(code, ord(".")) for code in range(256))


def runs_of_marks(length: int) -> re.Pattern[bytes]:
    """A pattern for the maximal runs of MARK at least `length` long in a text that holds only MARK and `.`;
    it starts with a literal, so `re` skips to each run in C."""
    return re.compile(MARK * length + b"+")

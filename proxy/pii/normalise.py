"""The view the detectors search: NFKC, Unicode spaces, dashes and digits in ASCII form, invisible
characters and stacked combining marks removed (the full list: docs/pii.md). ASCII text is returned as
it is; a mostly-ASCII text is searched only in its blocks holding non-ASCII characters."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator

from proxy.pii.view import View, build

# Invisible letters (Hangul fillers, the braille blank) that render as nothing.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Full stops other scripts use between the labels of a domain name.
_DOTS = frozenset("\u3002\uff61\ufe12")
_MINUS = frozenset("\u2212\u2043\u02d7\u2796")
_MARKS = frozenset({"Mn", "Me"})
_CHANGED_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Pd", "Nd"})
_BLOCK = 256


def normalise(text: str, spans: Iterable[tuple[int, int]] | None = None) -> View:
    """The normalised view of `text`; `View.source_span` maps findings back to `text`. `spans`: where
    anything may need normalising, when the caller knows (the rest is already normalised text, which
    normalising leaves as it is); by default the blocks holding non-ASCII characters."""
    if text.isascii():
        return View(text)
    finditer = _special().finditer
    fold = _fold
    edits = [(m.start(), m.end(), folded) for start, end in (_non_ascii_blocks(text) if spans is None else spans)
             for m in finditer(text, start, end) if (folded := fold(m.group())) != m.group()]
    return build(text, edits) if edits else View(text)


def _non_ascii_blocks(text: str) -> Iterator[tuple[int, int]]:
    """Spans of consecutive BLOCK-character blocks holding a non-ASCII character: `isascii` skips the rest
    of a mostly-English text in C (a regex would test every character of a text stored as UCS-2)."""
    length = len(text)
    i = 0
    while i < length:
        if text[i : i + _BLOCK].isascii():
            i += _BLOCK
            continue
        start = i
        while i < length and not text[i : i + _BLOCK].isascii():
            i += _BLOCK
        yield start, min(length, i)


def fold(ch: str) -> str:
    """What normalisation turns one character into ("" for an invisible one)."""
    return _fold(ch)


@functools.lru_cache(maxsize=8192)
def _fold(unit: str) -> str:
    """A matched unit: one character, maybe followed by combining marks, or a run of marks alone."""
    ch = unit[0]
    category = unicodedata.category(ch)
    if category == "Cf" or category in _MARKS or ch in _FILLERS:
        return ""
    if len(unit) > 1 or category == "Zs" or category in ("Zl", "Zp") or ch in _DOTS or ch in _MINUS:
        return _simple(ch)
    return "".join(_simple(c) for c in unicodedata.normalize("NFKC", ch))


def _simple(ch: str) -> str:
    """One character in the form detectors expect: digits, spaces and dashes of any script as ASCII."""
    if ch.isascii():
        return ch
    category = unicodedata.category(ch)
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if category == "Zs":
        return " "
    if category in ("Zl", "Zp") or ch == "\x85":
        return "\n"
    if category == "Pd" or ch in _MINUS:
        return "-"
    if ch in _DOTS:
        return "."
    if category == "Cf" or category in _MARKS or ch in _FILLERS:
        return ""
    normal = unicodedata.normalize("NFKC", ch)
    return normal if normal == ch else "".join(_simple(c) for c in normal)


@functools.cache
def _special() -> re.Pattern[str]:
    """What `normalise` edits: a BMP character `_fold` changes (or any astral one), with the combining
    marks after it; or marks stacked on an ASCII character. Built once (~40 ms) on the first non-ASCII
    text. It starts with one character class, both kinds together, and tells them apart by looking
    back: `re` skips to a candidate in C only when a pattern starts with a class (an alternation of two
    classes is tried at every character, several times slower)."""
    changed: list[tuple[int, int]] = []
    marks: list[tuple[int, int]] = []
    for code in range(0x80, 0x10000):
        ch = chr(code)
        if unicodedata.category(ch) in _MARKS:
            _extend(marks, code)
        elif _changes(ch):
            _extend(changed, code)
    # Every astral character goes to `_fold` (emoji come back unchanged and are skipped): one range keeps
    # the class a bitmap `re` tests in constant time, where hundreds of ranges are tested one by one.
    changed.append((0x10000, 0x10FFFF))
    changed_class = "".join(_range(low, high) for low, high in changed)
    marks_class = "".join(_range(low, high) for low, high in marks)
    return re.compile(f"[{changed_class}{marks_class}](?:(?<=[{changed_class}])|(?<=[\\x00-\\x7f][{marks_class}]))"
                      f"[{marks_class}]*")


def _changes(ch: str) -> bool:
    if unicodedata.category(ch) in _CHANGED_CATEGORIES or ch in _FILLERS or ch in _DOTS or ch in _MINUS:
        return True
    return unicodedata.normalize("NFKC", ch) != ch


def _extend(ranges: list[tuple[int, int]], code: int) -> None:
    if ranges and ranges[-1][1] == code - 1:
        ranges[-1] = (ranges[-1][0], code)
    else:
        ranges.append((code, code))


def _range(low: int, high: int) -> str:
    return f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}"

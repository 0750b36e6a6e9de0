"""Decoded layers: escapes, percent-encoding and HTML entities undone as a view that maps back to the
encoded characters, and base64 runs decoded whole (a finding inside one redacts the run); bounded and
cheap-anchored (docs/pii.md)."""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Iterator, Sequence
from typing import Final

from proxy.pii.image import MARK, ascii_image, runs_of_marks, table
from proxy.pii.view import View, build

# Decoded text is searched near its edits only: a value that needs the decoding to be found contains
# one, and the detectors look at most ~64 characters around a value for context.
NEAR: Final = 96
WINDOW: Final = 320
MIN_BASE64: Final = 16  # 12 bytes: the shortest address or card number worth decoding for
MAX_BASE64: Final = 64 * 1024  # characters of one run decoded; the rest of a longer run is not

# One search per kind, each starting with its literal (`re` skips to it in C, where a character class is
# tested character by character: ~20x slower). No match of one kind holds another's first character, so
# the three together find what one alternation would. Sequences that decode to a character no value is
# written with (`\\"`, `&amp;`: see _INERT) are not matched at all: JSON inside a JSON string and HTML
# markup then cost no Python call per quote.
_ESCAPE: Final = re.compile(
    r"\\(?:u(?P<hi>[dD][89abAB][0-9a-fA-F]{2})\\u(?P<lo>[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|u(?P<u>[0-9a-fA-F]{4})|x(?P<x>[0-9a-fA-F]{2})|(?P<c>[nrtbf\\/]))"
)
_PERCENT: Final = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")
_ENTITY: Final = re.compile(
    r"&(?!(?:amp|lt|gt|quot|apos);)(?:\#[0-9]{1,7};?|\#[xX][0-9A-Fa-f]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)"
)
# Decodings no value is written with (escaped quotes and backslashes, `&amp;`, `&lt;`): left encoded, as
# the patterns read them either way, so JSON inside a JSON string does not set off a search.
_INERT: Final = frozenset({'"', "'", "\\", "&", "<", ">"})
_SIMPLE: Final = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "\\": "\\", "/": "/"}
# A base64 run is found from one of its capitals or digits (prose has few) followed by 13 more of its
# characters, then widened both ways. Runs that long are shortlisted on the text's ASCII image first.
_BASE64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_BASE64_HINT: Final = re.compile(r"[A-Z0-9+/]")
_HINT_ROOM: Final = 13
_HINT_NEEDLE: Final = MARK * (_HINT_ROOM + 1)
_HINT_RUNS: Final = runs_of_marks(_HINT_ROOM + 1)
_BASE64_TABLE: Final = table(_BASE64_ALPHABET)
_BASE64_TAIL: Final = re.compile(r"[A-Za-z0-9+/_\-]*={0,2}")
_BASE64_CHARS: Final = frozenset(_BASE64_ALPHABET)
_URLSAFE: Final = str.maketrans("-_", "+/")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


def decoded(text: str) -> View | None:
    """`text` with JSON/JavaScript escapes (`\\u0040`, `\\x40`, `\\n`, surrogate pairs), runs of `%XX`
    (UTF-8, else Latin-1) and HTML character references (`&#64;`, `&#x40;`, `&commat;`) undone, in one
    pass; None when there is none (three substring tests settle most texts)."""
    if "\\" not in text and "%" not in text and "&" not in text:
        return None
    kinds = [kind for kind in _KINDS if kind[0] in text]
    sequences = [m for kind in kinds for m in kind[1].finditer(text)]
    if len(kinds) > 1:
        sequences.sort(key=lambda m: m.start())
    view = build(text, ((m.start(), m.end(), out) for m in sequences
                        if (out := _decode_memo(m)) not in _INERT and out != m.group()))
    return view if view.edited else None


_KINDS: Final = (("\\", _ESCAPE), ("%", _PERCENT), ("&", _ENTITY))


def _decode_memo(m: re.Match[str]) -> str:
    """The same few sequences (`\\n`, `%20`, `&#8212;`) make up most edits: each is decoded once."""
    sequence = m.group()
    out = _MEMO.get(sequence)
    if out is None:
        out = _decode_one(m)
        if len(_MEMO) < 4096 and len(sequence) <= 24:
            _MEMO[sequence] = out
    return out


_MEMO: dict[str, str] = {}


def _decode_one(m: re.Match[str]) -> str:
    kind = m.group()[0]
    if kind == "%":
        raw = bytes.fromhex(m.group().replace("%", ""))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if kind == "&":
        return html.unescape(m.group())
    if m.group("hi") is not None:
        high, low = int(m.group("hi"), 16), int(m.group("lo"), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    if m.group("u") is not None:
        code = int(m.group("u"), 16)
        return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)
    if m.group("x") is not None:
        return chr(int(m.group("x"), 16))
    return _SIMPLE[m.group("c")]


def windows(view: View) -> Iterator[tuple[int, int]]:
    """Merged spans of `view.text` around its edits: NEAR characters either side, widened to the ends of
    the words there (a long key with an escape inside is taken whole), never past WINDOW."""
    text = view.text
    length = len(text)
    start = end = -1
    for at, size in view.edits():
        low, high = max(0, at - NEAR), min(length, at + size + NEAR)
        if end < 0 or low > end:
            if end > start:
                yield start, end
            start = _word_start(text, low, max(0, at - WINDOW))
        elif high <= end:
            continue  # inside the open window
        end = _word_end(text, high, min(length, at + size + WINDOW))
    if end > start:
        yield start, end


def _word_start(text: str, low: int, floor: int) -> int:
    if low == 0 or text[low - 1].isspace():
        return low
    return max(text.rfind(" ", floor, low), text.rfind("\n", floor, low), floor - 1) + 1


def _word_end(text: str, high: int, ceiling: int) -> int:
    if high >= len(text) or text[high].isspace():
        return high
    found = [i for i in (text.find(" ", high, ceiling), text.find("\n", high, ceiling)) if i >= 0]
    return min(found) if found else ceiling


def base64_runs(text: str, budget: list[int], skip: Sequence[tuple[int, int]] = (),
                image: bytes | None = None) -> Iterator[tuple[int, int, str]]:
    """(start, end, decoded text) for each base64 or base64url run of MIN_BASE64 characters or more that
    decodes to readable UTF-8 text, except runs inside a `skip` span; `budget[0]`, the characters left
    to decode, goes down by each run decoded, and decoding stops at zero. `image`: `ascii_image(text)`,
    when the caller has it."""
    marked = (ascii_image(text) if image is None else image).translate(_BASE64_TABLE)
    if _HINT_NEEDLE not in marked:
        return  # most texts, and a streamed delta: no run long enough
    pos = 0
    for marks in _HINT_RUNS.finditer(marked):
        if budget[0] <= 0:
            return
        low, high = marks.span()
        hint = _BASE64_HINT.search(text, max(low, pos), high - _HINT_ROOM)
        if hint is None:
            continue
        start = hint.start()
        while start > pos and text[start - 1] in _BASE64_CHARS:
            start -= 1
        tail = _BASE64_TAIL.match(text, hint.start())
        end = tail.end() if tail is not None else hint.end()
        pos = end
        if end - start < MIN_BASE64 or any(s <= start and end <= e for s, e in skip):
            continue
        run = text[start : min(end, start + MAX_BASE64)]
        budget[0] -= len(run)
        decoded = _decode(run)
        if decoded is not None:
            yield start, end, decoded


def _decode(run: str) -> str | None:
    body = run.rstrip("=").translate(_URLSAFE)
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return None if _CONTROL.search(decoded) else decoded

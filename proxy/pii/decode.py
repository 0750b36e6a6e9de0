"""Decoded layers: the text as it reads once JSON/JS escapes, percent-encoding, HTML entities or base64
are undone, so a value hidden in one of them is found; each is cheap-anchored and bounded.

Escapes, percent-encoding and entities become views whose spans map back to the encoded source (the
redaction covers every escape of the value). A base64 run has no such map: a finding inside it
redacts the whole run.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Iterator
from typing import Final

from proxy.pii.view import View, build

# Decoded text is searched only this far either side of an edit: a value that needs the decoding to be
# found contains one, and the detectors look at most ~64 characters around a value for context.
WINDOW: Final = 320
MIN_BASE64: Final = 16  # 12 bytes: the shortest address or card number worth decoding for
MAX_BASE64: Final = 64 * 1024  # characters of one run decoded; the rest of a longer run is not

_ESCAPE: Final = re.compile(
    r"\\(?:u(?P<hi>[dD][89abAB][0-9a-fA-F]{2})\\u(?P<lo>[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|u(?P<u>[0-9a-fA-F]{4})|x(?P<x>[0-9a-fA-F]{2})|(?P<c>[nrtbf\"'\\/]))"
)
_SIMPLE: Final = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\", "/": "/"}
_PERCENT: Final = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_ENTITY: Final = re.compile(r"&(?:#[0-9]{1,7};?|#[xX][0-9A-Fa-f]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)")
# A base64 run is found from one of its capitals or digits (prose has few), then widened both ways.
_BASE64_HINT: Final = re.compile(r"[A-Z0-9+/](?=[A-Za-z0-9+/_\-]{13})")
_BASE64_TAIL: Final = re.compile(r"[A-Za-z0-9+/_\-]*={0,2}")
_BASE64_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_URLSAFE: Final = str.maketrans("-_", "+/")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


def unescaped(text: str) -> View | None:
    """JSON and JavaScript string escapes undone: `\\u0040`, `\\x40`, `\\n`, surrogate pairs."""
    if "\\" not in text:
        return None
    view = build(text, ((m.start(), m.end(), _unescape(m)) for m in _ESCAPE.finditer(text)))
    return view if view.edited else None


def _unescape(m: re.Match[str]) -> str:
    if m.group("hi") is not None:
        high, low = int(m.group("hi"), 16), int(m.group("lo"), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    if m.group("u") is not None:
        code = int(m.group("u"), 16)
        return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)
    if m.group("x") is not None:
        return chr(int(m.group("x"), 16))
    return _SIMPLE[m.group("c")]


def percent_decoded(text: str) -> View | None:
    """Runs of `%XX` as the UTF-8 (or, failing that, Latin-1) text they encode."""
    if "%" not in text:
        return None
    view = build(text, ((m.start(), m.end(), _percent(m.group())) for m in _PERCENT.finditer(text)))
    return view if view.edited else None


def _percent(run: str) -> str:
    raw = bytes.fromhex(run.replace("%", ""))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def entities_decoded(text: str) -> View | None:
    """HTML character references (`&#64;`, `&#x40;`, `&commat;`) as the characters they name."""
    if "&" not in text:
        return None
    view = build(text, ((m.start(), m.end(), decoded) for m in _ENTITY.finditer(text)
                        if (decoded := html.unescape(m.group())) != m.group()))
    return view if view.edited else None


def windows(view: View, length: int) -> Iterator[tuple[int, int]]:
    """Merged spans of `view.text` within WINDOW characters of an edit."""
    start = end = -1
    for at, size in view.edits():
        low, high = max(0, at - WINDOW), min(length, at + size + WINDOW)
        if low > end:
            if end > start:
                yield start, end
            start = low
        end = max(end, high)
    if end > start:
        yield start, end


def base64_runs(text: str, budget: int) -> Iterator[tuple[int, int, str]]:
    """(start, end, decoded text) for each base64 or base64url run of MIN_BASE64 characters or more that
    decodes to readable UTF-8 text; stops once `budget` characters have been decoded."""
    search = _BASE64_HINT.search
    pos = 0
    while budget > 0 and (hint := search(text, pos)) is not None:
        start = hint.start()
        while start > pos and text[start - 1] in _BASE64_CHARS:
            start -= 1
        tail = _BASE64_TAIL.match(text, hint.start())
        end = tail.end() if tail is not None else hint.end()
        pos = end
        if end - start < MIN_BASE64:
            continue
        run = text[start : min(end, start + MAX_BASE64)]
        budget -= len(run)
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

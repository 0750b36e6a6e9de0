"""Replaces detected values with placeholders, and puts the originals back into the model's answer.

Numbered placeholders (`[EMAIL_1]`) are stable within one request; keyed ones (`[EMAIL_3f9a2c1b]`,
HMAC-SHA256 of type and value) are stable across requests that share the key (pseudonymisation).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Final

import orjson

from proxy.pii.types import Match

# Long enough for any type name plus a counter or a 16-hex token; streams hold back at most this much.
MAX_PLACEHOLDER: Final = 64
PLACEHOLDER: Final = re.compile(r"\[[A-Z][A-Z0-9_]{0,40}_(?:[0-9]{1,6}|[0-9a-f]{8}|[0-9a-f]{16})\]")
# Any beginning of a placeholder: what a stream must hold back until the closing bracket arrives.
PLACEHOLDER_PREFIX: Final = re.compile(r"\[(?:[A-Z][A-Z0-9_]{0,40}[0-9a-f]{0,16})?")
_NOT_LABEL = re.compile(r"[^A-Z0-9]+")


class Placeholders:
    """One request's placeholder book: value to placeholder for redaction, and back for restore."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key
        self._by_value: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._counters: dict[str, int] = {}

    def placeholder(self, type_: str, value: str) -> str:
        existing = self._by_value.get((type_, value))
        if existing is not None:
            return existing
        label = _NOT_LABEL.sub("_", type_.upper()).strip("_") or "PII"
        token = self._keyed(label, type_, value) if self._key is not None else self._numbered(label)
        self._by_value[(type_, value)] = token
        self._originals[token] = value
        return token

    def for_answer(self) -> Placeholders:
        """A book for values the model writes: it knows this request's values (so a caller's own value
        gets its placeholder, which restore turns back), and numbers new ones after them, so a value the
        model wrote never shares a placeholder with one the caller sent."""
        answer = Placeholders(self._key)
        answer._by_value = dict(self._by_value)
        answer._originals = dict(self._originals)
        answer._counters = dict(self._counters)
        return answer

    def original(self, placeholder: str) -> str | None:
        return self._originals.get(placeholder)

    @property
    def originals(self) -> Mapping[str, str]:
        """Placeholder to original value, for everything redacted so far in this request."""
        return dict(self._originals)

    def _numbered(self, label: str) -> str:
        count = self._counters.get(label, 0) + 1
        self._counters[label] = count
        return f"[{label}_{count}]"

    def _keyed(self, label: str, type_: str, value: str) -> str:
        assert self._key is not None
        digest = hmac.new(self._key, f"{type_}\x00{value}".encode(), hashlib.sha256).hexdigest()
        token = f"[{label}_{digest[:8]}]"
        # Two values sharing 32 bits within one request would restore wrongly; widen instead.
        if self._originals.get(token, value) != value:
            token = f"[{label}_{digest[:16]}]"
        return token


def redact(text: str, matches: Iterable[Match], types: Collection[str], placeholders: Placeholders) -> str:
    """`text` with every match whose type is in `types` replaced; `matches` must not overlap."""
    parts: list[str] = []
    last = 0
    for m in matches:
        if m.type not in types:
            continue
        parts.append(text[last : m.start])
        parts.append(placeholders.placeholder(m.type, text[m.start : m.end]))
        last = m.end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def restore(text: str, placeholders: Placeholders, json_string: bool = False) -> str:
    """Placeholders this request issued become their originals again; anything else is left alone.

    `json_string`: `text` is JSON (tool-call arguments), so an original that would break a JSON string
    (a quote, a backslash, a control character) goes back escaped; one that is already valid string
    content (it came from arguments, `\u0040` and all) goes back as it was."""
    if "[" not in text:
        return text

    def back(m: re.Match[str]) -> str:
        original = placeholders.original(m.group())
        if original is None:
            return m.group()
        return _json_safe(original) if json_string else original

    return PLACEHOLDER.sub(back, text)


def _json_safe(value: str) -> str:
    if _JSON_STRING_CONTENT.fullmatch(value):
        return value
    return orjson.dumps(value).decode()[1:-1]


_JSON_STRING_CONTENT: Final = re.compile(r'(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*')

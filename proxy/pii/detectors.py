"""Finds PII and secrets in text: anchored patterns find candidates, validators confirm them."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from proxy.pii import patterns as p
from proxy.pii import validators as v
from proxy.pii.types import CATEGORIES, Category, CustomType, Match

__all__ = ["Scanner"]

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_CONTEXT = 40  # characters before a number searched for words such as "phone" or "order"
# Generic catch-alls lose ties against a specific detector claiming the same span.
_GENERIC = frozenset({"password", "url_credentials"})
_KEYWORD_GATES = tuple(sorted({gate for anchored in p.KEYWORDS for gate in anchored.gate}))


@dataclass(frozen=True, slots=True)
class _Custom:
    type: str
    regex: re.Pattern[str]
    check: v.Validator | None
    category: Category


class Scanner:
    """Compiled once, then shared: `find` keeps no state, so one scanner serves every request."""

    def __init__(self, custom: Sequence[CustomType] = ()) -> None:
        self._custom = tuple(_compile_custom(c) for c in custom)
        self._categories: dict[str, Category] = dict(CATEGORIES)
        for c in self._custom:
            self._categories[c.type] = c.category

    @property
    def categories(self) -> dict[str, Category]:
        """Type name to "pii" or "secret", custom types included."""
        return dict(self._categories)

    def find(self, text: str) -> list[Match]:
        """Matches sorted by start, never overlapping: secrets win over PII, then longer over shorter."""
        found: list[Match] = []
        found.extend(_digits(text))
        if "+" in text:
            found.extend(_international_phones(text))
        if "@" in text:
            found.extend(_emails(text))
        if "::" in text or text.count(":") >= 7:
            found.extend(_ipv6(text))
        found.extend(_secrets(text))
        found.extend(_keywords(text))
        for custom in self._custom:
            found.extend(_custom_matches(text, custom))
        return self._resolve(found)

    def _resolve(self, found: list[Match]) -> list[Match]:
        if len(found) < 2:
            return found  # most texts: nothing to rank (this early exit halves a scan of a short text)

        def rank(m: Match) -> tuple[int, int, int, int]:
            category = 0 if self._categories.get(m.type) == "secret" else 1
            return (category, m.start - m.end, m.type in _GENERIC, m.start)

        kept: list[Match] = []
        starts: list[int] = []
        for m in sorted(found, key=rank):
            i = bisect_left(starts, m.start)
            if (i > 0 and kept[i - 1].end > m.start) or (i < len(kept) and kept[i].start < m.end):
                continue
            kept.insert(i, m)
            starts.insert(i, m.start)
        return kept


def _compile_custom(custom: CustomType) -> _Custom:
    try:
        regex = re.compile(custom.pattern)
    except re.error as exc:
        raise ValueError(f"custom type {custom.name!r}: bad pattern: {exc}") from exc
    check = v.named_validator(custom.validator) if custom.validator else None
    return _Custom(custom.name, regex, check, custom.category)


def _custom_matches(text: str, custom: _Custom) -> Iterator[Match]:
    group: str | int = "value" if "value" in custom.regex.groupindex else 0
    for m in custom.regex.finditer(text):
        start, end = m.span(group)
        if end > start and (custom.check is None or custom.check(text[start:end])):
            yield Match(custom.type, start, end)


def _digits(text: str) -> Iterator[Match]:
    search = p.DIGITS.search
    pos = 0
    while (m := search(text, pos)) is not None:
        found = _confirm_digits(text, m)
        # A rejected candidate may hide a real one inside it, so resume just after its first digit.
        pos = found.end if found else m.start() + 1
        if found:
            yield found


def _confirm_digits(text: str, m: re.Match[str]) -> Match | None:
    kind = m.lastgroup
    start, end = m.start(), m.end()
    if kind == "iban":
        return _first_valid(text, start - 2, end, "iban", v.is_iban, 15)
    value = text[start:end]
    if kind == "card" or kind == "s1" or kind == "s2":
        return Match("card", start, end) if v.is_card(value) else None
    if kind == "ssn":
        return Match("ssn", start, end) if v.is_ssn(value) else None
    if kind == "ipv4":
        before = text[max(0, start - 12) : start].lower()
        ok = v.is_ip(value) and not p.VERSION_CONTEXT.search(before)
        return Match("ip", start, end) if ok else None
    if start > 0 and text[start - 1] == "(":
        start -= 1
    return _national_phone(text, start, end)


def _national_phone(text: str, start: int, end: int) -> Match | None:
    context = text[max(0, start - _CONTEXT) : start].translate(_ASCII_LOWER)
    value = text[start:end]
    if p.PHONE_CONTEXT.search(context):
        return _first_valid(text, start, end, "phone", v.is_national_phone, 7)
    if p.US_PHONE_SHAPE.fullmatch(value) and not p.NOT_PHONE_CONTEXT.search(context[-16:]):
        return Match("phone", start, end) if v.is_phone(value, "US") else None
    return None


def _international_phones(text: str) -> Iterator[Match]:
    for m in p.INTERNATIONAL_PHONE.finditer(text):
        found = _first_valid(text, m.start(), m.end(), "phone", lambda s: v.is_phone(s, None), 8)
        if found:
            yield found


def _first_valid(text: str, start: int, end: int, type_: str, check: v.Validator, least: int) -> Match | None:
    for candidate in v.shrinking(text[start:end], least):
        if check(candidate):
            return Match(type_, start, start + len(candidate))
    return None


def _emails(text: str) -> Iterator[Match]:
    for m in p.EMAIL_DOMAIN.finditer(text):
        at = m.start()
        if text[m.end() - 5 : m.end()].rsplit(".", 1)[-1].lower() in p.NOT_TLDS:
            continue
        local = p.EMAIL_LOCAL_REVERSED.match(text[max(0, at - 65) : at][::-1])
        if local is None or local.end() > 64:
            continue
        start = at - len(local.group().rstrip("."))
        # user@host after a scheme is a URL's user name, not an address.
        if start < at and not text.endswith("://", 0, start):
            yield Match("email", start, m.end())


def _ipv6(text: str) -> Iterator[Match]:
    resume = 0
    for hint in p.IPV6_HINT.finditer(text):
        if hint.start() < resume:
            continue
        start = hint.start()
        while start > 0 and start > hint.start() - 4 and text[start - 1] in _HEX:
            start -= 1
        token = p.IPV6_TOKEN.match(text, start)
        if token is None:
            continue
        resume = token.end()
        value = token.group()
        if (
            (start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_:."))
            or (resume < len(text) and (text[resume].isalnum() or text[resume] in "_:"))
            # "::1", "a::b" and slices like "[::2]" are too short to be worth a finding.
            or ("." not in value and sum(1 for group in value.split(":") if group) < 3)
        ):
            continue
        if v.is_ip(value):
            yield Match("ip", start, resume)


_HEX = frozenset("0123456789abcdefABCDEF")


def _secrets(text: str) -> Iterator[Match]:
    fired = {m.lastgroup for m in p.SECRET_GATE.finditer(text)}
    if fired:
        yield from _anchored(text, text, [a for a in p.SECRETS if not fired.isdisjoint(a.gate)])


def _keywords(text: str) -> Iterator[Match]:
    lowered = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
    # Seven substring tests settle most texts; only the patterns whose gate is present run.
    present = {gate for gate in _KEYWORD_GATES if gate in lowered}
    if present:
        yield from _anchored(lowered, text, [a for a in p.KEYWORDS if not present.isdisjoint(a.gate)])


def _anchored(searched: str, source: str, passes: Sequence[p.Anchored]) -> Iterator[Match]:
    for anchored in passes:
        confirm = _CONFIRM.get(anchored.type)
        for m in anchored.regex.finditer(searched):
            start, end = m.span(_value_group(m, anchored))
            if confirm is None or confirm(source, m, start, end):
                yield Match(anchored.type, start, end)


def _value_group(m: re.Match[str], anchored: p.Anchored) -> str | int:
    if anchored.type == "password":
        return next(name for name in ("dq", "sq", "bare") if m.group(name) is not None)
    return anchored.value


def _password_ok(source: str, m: re.Match[str], start: int, end: int) -> bool:
    value = source[start:end].strip()
    # A bare value with a call or subscript in it is code reading the secret from elsewhere.
    if m.group("bare") is not None and ("(" in value or "[" in value):
        return False
    return len(value) >= 3 and value.lower() not in p.NOT_PASSWORDS and not p.PLACEHOLDER_VALUE.match(value.lower())


def _aws_secret_ok(source: str, m: re.Match[str], start: int, end: int) -> bool:
    keyword_start = m.start()
    # Plain "secret_key" is too common (web frameworks); require AWS's own spelling.
    aws = source[max(0, keyword_start - 4) : keyword_start].lower().endswith(("aws_", "aws", "aws-"))
    return aws or "access" in m.group("kw")


_CONFIRM: dict[str, Callable[[str, re.Match[str], int, int], bool]] = {
    "password": _password_ok,
    "aws_secret_key": _aws_secret_ok,
    "ssn": lambda source, m, start, end: v.is_ssn(source[start:end]),
    "jwt": lambda source, m, start, end: v.is_jwt(source[start:end]),
    "openai_key": lambda source, m, start, end: v.is_mixed_token(source[start:end]),
}

"""Finds PII and secrets in text: anchored patterns find candidates, validators confirm them, in the
normalised view and its decoded layers (two deep at most, bounded); findings map back to the original."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from proxy.pii import patterns as p
from proxy.pii import validators as v
from proxy.pii.batch import GAP, batch
from proxy.pii.decode import base64_runs, decoded
from proxy.pii.digits import digit_values
from proxy.pii.image import ascii_image
from proxy.pii.joined import joined_tokens
from proxy.pii.normalise import normalise
from proxy.pii.runs import lower
from proxy.pii.types import CATEGORIES, Category, CustomType, Match

__all__ = ["Scanner"]

# Generic catch-alls lose ties against a specific detector claiming the same span.
_GENERIC = frozenset({"password", "url_credentials", "auth_header"})
# Up to this long a text is searched for secret prefixes with one pattern: several cost more below ~300
# characters (timed both ways at 200 to 2,000).
_ONE_GATE: Final = 320
_KEYWORD_GATES = tuple(sorted({gate for anchored in p.KEYWORDS for gate in anchored.gate}))
MAX_DEPTH: Final = 2  # an encoding inside an encoding is decoded; a third layer is not
MAX_DECODED: Final = 256 * 1024  # characters decoded per scanned text, over all layers


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
        return self._resolve(self._layered(text, 0, [MAX_DECODED]))

    def _layered(self, text: str, depth: int, budget: list[int], text_layer: bool = True) -> list[Match]:
        """What `text` holds, plainly and in its decoded layers. The windows of the escape layer are
        searched in the same pass as the text, after it and a gap (batch.py)."""
        view = normalise(text)
        searched = view.text
        layer = decoded(searched) if text_layer and depth < MAX_DEPTH else None
        joined, apart = batch(searched, layer, budget) if layer is not None else (None, [])
        scanned = searched if joined is None else searched + GAP + joined.view.text
        image = ascii_image(scanned)
        found = self._plain(scanned, image)
        if joined is not None:
            cut, base = len(searched), len(searched) + len(GAP)
            windowed = [Match(m.type, m.start - base, m.end - base) for m in found if m.start >= base]
            if depth + 1 < MAX_DEPTH:
                self._base64(joined.view.text, image[base:], depth + 1, budget, windowed)
            # A match running on past the text (a PEM body, a custom pattern) stops where the text does.
            found = [m if m.end <= cut else Match(m.type, m.start, cut) for m in found if m.start < cut]
            found.extend(Match(m.type, *span) for m in windowed if (span := joined.source(m.start, m.end)))
        for start, end, again in apart:
            assert layer is not None  # windows come from a layer
            for m in self._layered(layer.text[start:end], depth + 1, budget, again):
                found.append(Match(m.type, *layer.source_span(m.start + start, m.end + start)))
        if depth < MAX_DEPTH:
            self._base64(searched, image if joined is None else image[: len(searched)], depth, budget, found)
        if view.edited:
            found = [Match(m.type, *view.source_span(m.start, m.end)) for m in found]
        return found

    def _base64(self, searched: str, image: bytes, depth: int, budget: list[int], found: list[Match]) -> None:
        """Adds a finding for each base64 run of `searched` that decodes to text holding one."""
        # A run inside a key already found (a JWT's parts) is not decoded: the whole key goes anyway.
        taken = [(m.start, m.end) for m in found if self._categories.get(m.type) == "secret"] if found else []
        for start, end, text in base64_runs(searched, budget, taken, image):
            inner = self._layered(text, depth + 1, budget)
            if inner:
                # No character map inside base64: the whole encoded run is the finding.
                found.append(Match(self._strongest(inner), start, end))

    def _plain(self, text: str, image: bytes) -> list[Match]:
        found: list[Match] = list(digit_values(text, image))
        if "@" in text:
            found.extend(_emails(text))
        if ":" in text and p.IPV6_GATE.search(text):
            found.extend(_ipv6(text))
        found.extend(_secrets(text))
        found.extend(_keywords(text, image))
        for custom in self._custom:
            found.extend(_custom_matches(text, custom))
        return found

    def _strongest(self, matches: list[Match]) -> str:
        return min(matches, key=lambda m: (self._categories.get(m.type) != "secret", m.start - m.end)).type

    def merge(self, found: list[Match]) -> list[Match]:
        """`found` sorted and without overlaps, by the same ranking `find` applies."""
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


def _emails(text: str) -> Iterator[Match]:
    for m in p.EMAIL_DOMAIN.finditer(text):
        at, end = m.start(), m.end()
        if text[end - 5 : end].rsplit(".", 1)[-1].lower() in p.NOT_TLDS:
            continue
        local = p.EMAIL_LOCAL_REVERSED.match(text[max(0, at - 65) : at][::-1])
        if local is None or local.end() > 64:
            continue
        start = at - len(local.group().rstrip("."))
        if start == at or text[start:at].lower() in p.NOT_EMAIL_LOCALS:
            continue
        # user@host after a scheme is a URL's user name; user@host:path, or user@host after ssh, a login.
        if text.endswith("://", 0, start) or (text.startswith(":", end) and text[end + 1 : end + 2].strip()) \
                or p.SSH_COMMAND.search(text, max(0, start - 40), start):
            continue
        yield Match("email", start, end)


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
        if (start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_:.")) or (
            resume < len(text) and (text[resume].isalnum() or text[resume] in "_:")
        ):
            continue
        address = value.split("%", 1)[0]
        # "::1", "a::b" and slices like "[::2]" are too short to be worth a finding, unless a word
        # before them says they are an address.
        if "." not in address and sum(1 for group in address.split(":") if group) < 3:
            before = lower(text[max(0, start - 24) : start])
            if not address.strip(":") or not p.IPV6_CONTEXT.search(before):
                continue
        if v.is_ip(address):
            yield Match("ip", start, resume)


_HEX = frozenset("0123456789abcdefABCDEF")


def _secrets(text: str) -> Iterator[Match]:
    if len(text) > _ONE_GATE:
        hits = sorted((m.start(), m.lastgroup) for anchor, gate in p.SECRET_GATES if anchor in text
                      for m in gate.finditer(text))
    elif "_" in text or "-" in text or ":" in text or "A" in text or "J" in text:
        hits = [(m.start(), m.lastgroup) for m in p.SECRET_GATE.finditer(text)]
    else:
        return  # much prose, and many a streamed delta: no character a prefix is found from
    if not hits:
        return
    fired = {gate for _, gate in hits}
    yield from _anchored(text, text, [a for a in p.SECRETS if not fired.isdisjoint(a.gate)])
    for anchored, start, end, value in joined_tokens(text, [(gate, at) for at, gate in hits]):
        confirm = _CONFIRM.get(anchored.type)
        m = anchored.regex.match(value)
        if m is not None and (confirm is None or confirm(value, m, 0, len(value))):
            yield Match(anchored.type, start, end)


def _keywords(text: str, image: bytes) -> Iterator[Match]:
    # Searched in the lowercased ASCII image (a fraction of lowering a text stored as UCS-2): the patterns
    # read only ASCII, and take any other character for a non-letter, as they take `?`. Only the patterns
    # whose gate is present run; a few substring tests settle most texts.
    lowered = image.lower().decode("ascii")
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
        return m.lastgroup or 0  # "dq", "sq" or "bare": the value group closes last
    return anchored.value


def _password_ok(source: str, m: re.Match[str], start: int, end: int) -> bool:
    value = source[start:end].strip()
    # A bare value with a call or subscript in it is code reading the secret from elsewhere.
    if m.group("bare") is not None and ("(" in value or "[" in value):
        return False
    if m.group("prose") is not None and not v.looks_like_password(value):
        return False  # "the password is incorrect"
    return len(value) >= 3 and value.lower() not in p.NOT_PASSWORDS and not p.PLACEHOLDER_VALUE.match(value.lower())


def _aws_secret_ok(source: str, m: re.Match[str], start: int, end: int) -> bool:
    keyword_start = m.start()
    # Plain "secret_key" is too common (web frameworks); require AWS's own spelling.
    aws = source[max(0, keyword_start - 4) : keyword_start].lower().endswith(("aws_", "aws", "aws-", "aws "))
    return aws or "access" in m.group("kw")


def _auth_ok(source: str, m: re.Match[str], start: int, end: int) -> bool:
    value = source[start:end]
    scheme = m.groupdict().get("scheme")
    if scheme == "basic":
        return v.is_basic_credentials(value)
    # A bare "Bearer" in prose needs key material after it; the header form needs a non-placeholder.
    strict = m.re is p.BEARER.regex or scheme is None
    return v.is_credential(value, strict)


_CONFIRM: dict[str, Callable[[str, re.Match[str], int, int], bool]] = {
    "aws_access_key": lambda source, m, start, end: len(set(source[start + 4 : end])) > 3,  # not AKIAXXXX...
    "slack_token": lambda source, m, start, end: any(c.isdigit() for c in source[start:end]),  # not xoxb-your-token
    "password": _password_ok,
    "aws_secret_key": _aws_secret_ok,
    "auth_header": _auth_ok,
    "jwt": lambda source, m, start, end: v.is_jwt(source[start:end]),
    "openai_key": lambda source, m, start, end: v.is_mixed_token(source[start:end]),
}

"""Values written as runs of digit groups: cards, SSNs, IPv4 addresses and IBANs (phones: phones.py),
in any grouping, confirmed by validators, with context words where the digits alone are ambiguous."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from proxy.pii import validators as v
from proxy.pii.image import ascii_image
from proxy.pii.phones import phone, plus_before
from proxy.pii.runs import BODY, CONTEXT_BEFORE, DATE, Found, Run, around, lower, run_search
from proxy.pii.types import Match

IBAN: Final = re.compile(r"[A-Za-z]{2}[0-9]{2}(?:(?:[ \t]{0,3}\r?\n[ \t]{0,8}|[ \t\-.]{1,3})?[A-Za-z0-9]{1,8}){1,12}")
IBAN_CHUNK: Final = re.compile(r"[A-Za-z0-9]+")
NOT_CARD_LABEL: Final = re.compile(
    r"(?<![a-z])(?:order|invoice|tracking|ref|reference|sku|po|shipment|confirmation|booking|transaction|txn|isbn|"
    r"serial|imei|customer|member|account|acct|ticket|case|parcel|awb)(?![a-z])[^0-9]{0,12}\Z"
)
CARD_WORDS: Final = re.compile(r"(?<![a-z])(?:card|visa|mastercard|amex|cc|credit|debit|pan|payment|paid|charge)")
SSN_WORDS: Final = re.compile(r"(?<![a-z])(?:ssn|ss#|ss #|social security|soc\.? ?sec|social sec|ssa)(?![a-z])")
VERSION_WORDS: Final = re.compile(r"(?:version|release|build|firmware|ver|oid|v|tag|image)\W{0,3}$")
IP_WORDS: Final = re.compile(r"(?<![a-z])(?:ip|ipv4|address|addr|host|server|client|dns|nameserver|ping|"
                             r"resolver|gateway|route|src|dst|peer|remote)(?![a-z])")
_CARD_LEADS: Final = frozenset("23456")


def digit_values(text: str, image: bytes | None = None) -> Iterator[Match]:
    """Cards, SSNs, IPv4 addresses, IBANs and phones; `image`: `ascii_image(text)`, when the caller has it."""
    search = run_search(text, ascii_image(text) if image is None else image)
    pos = 0
    while (m := search(text, pos)) is not None:
        start = m.start()
        if m.lastgroup == "iban":
            found = _iban(text, start - 2)
            if found is not None:
                yield found
                pos = found.end
            else:
                pos = start + 1
            continue
        if m.group("quad") is not None:
            pos = m.end("quad")
            ip = _quad(text, start, pos)
            if ip is not None:
                yield ip
            continue
        if m.group("card") is not None:
            card = _whole_card(text, start, m.end("card"))
            if card is not None:
                yield card
                pos = card.end
                continue
        body = BODY.match(text, start)
        assert body is not None  # RUN's lookahead guarantees a digit
        end = body.end()
        pos = end
        if DATE.fullmatch(text, start, end) is None:  # dates are common (every JSON timestamp) and never values
            yield from _run_values(Run(text, start, end))


def _run_values(run: Run) -> Iterator[Match]:
    parts = run.parts
    n = len(parts)
    if n != 4 and sum(map(len, parts)) < 7:
        return  # too few digits for anything but an IPv4 address
    i = 0
    while i < n:
        found = None
        if i == 0 or _starts_value(run, i):
            if plus_before(run.text, run.starts[i]) is not None:
                found = phone(run, i)
            else:
                found = _card(run, i) or _ssn(run, i) or _ipv4(run, i) or phone(run, i)
        if found is None:
            i += 1
            continue
        match, last = found
        yield match
        i = last + 1


def _starts_value(run: Run, i: int) -> bool:
    """Whether a value may start at group i of a run: whitespace comes before it, and that separator differs
    from the one before it ("2024-05-01 4111 1111 ...") or after it; in "9400 6527 4620 ..." no group but the
    first starts one, and in "5.0 10.0.1" none but the first either."""
    before = run.seps[i - 1]
    if before.strip(" \t\r\n>") == before:
        return False
    if i >= 2:
        return before != run.seps[i - 2]
    return i < len(run.seps) and before != run.seps[i]


def _card(run: Run, i: int) -> Found:
    parts = run.parts
    if parts[i][0] not in _CARD_LEADS:
        return None
    best = -1
    digits = ""
    lengths: frozenset[int] = frozenset()
    for j in range(i, min(len(parts), i + 10)):
        digits += parts[j]
        if len(digits) > 19:
            break
        if len(digits) >= 12:
            lengths = lengths or v.card_lengths(digits)
            if len(digits) in lengths and v.luhn_valid(digits) and not run.glued_right(j):
                best = j
    if best < 0 or not run.uniform(i, best) or _labelled_other(run.text, run.starts[i]):
        return None
    return Match("card", run.starts[i], run.ends[best]), best


def _ssn(run: Run, i: int) -> Found:
    parts = run.parts
    if len(parts[i]) == 9:
        j = i
    elif len(parts[i]) == 3 and i + 2 < len(parts) and len(parts[i + 1]) == 2 and len(parts[i + 2]) == 4:
        j = i + 2
    else:
        return None
    if run.glued_right(j) or not v.is_ssn_digits(run.digits(i, j)):
        return None
    start, end = run.starts[i], run.ends[j]
    dashed = j == i + 2 and run.seps[i] == "-" and run.seps[i + 1] == "-"
    if dashed or SSN_WORDS.search(around(run.text, start, end)):
        return Match("ssn", start, end), j
    return None


def _ipv4(run: Run, i: int) -> Found:
    parts, seps = run.parts, run.seps
    if i + 3 >= len(parts) or seps[i] != "." or seps[i + 1] != "." or seps[i + 2] != "." or \
            max(len(parts[i]), len(parts[i + 1]), len(parts[i + 2]), len(parts[i + 3])) > 3:
        return None
    ip = _quad(run.text, run.starts[i], run.ends[i + 3])
    return None if ip is None else (ip, i + 3)


def _quad(text: str, start: int, end: int) -> Match | None:
    """text[start:end], four dotted groups of 1-3 digits, as an IPv4 address unless it is a version."""
    if (start > 0 and text[start - 1] == ".") or (text.startswith(".", end) and end + 1 < len(text)
                                                  and text[end + 1].isdigit()):
        return None  # one part of a longer dotted number (an OID, a version)
    if end < len(text) and (text[end].isalnum() or text[end] == "_"):
        return None
    value = text[start:end]
    before = lower(text[max(0, start - 24) : start])
    if not v.is_ip(value) or VERSION_WORDS.search(before):
        return None
    # Three small leading parts make a version ("6.4.9.11"); a real address rarely has them unless a
    # word says it is one ("dns 8.8.8.8").
    if value[1] == value[3] == value[5] == "." and not IP_WORDS.search(before):
        return None
    return Match("ip", start, end)


def _whole_card(text: str, start: int, end: int) -> Match | None:
    """A run that is exactly 13-19 digits, or four groups of four: a card if it validates."""
    digits = text[start:end].replace(" ", "").replace("-", "")
    if digits[0] not in _CARD_LEADS or len(digits) not in v.card_lengths(digits) or not v.luhn_valid(digits):
        return None
    if (end < len(text) and (text[end].isalnum() or text[end] == "_")) or _labelled_other(text, start):
        return None
    return Match("card", start, end)


def _iban(text: str, start: int) -> Match | None:
    m = IBAN.match(text, start)
    if m is None:
        return None
    chunks: list[tuple[int, int]] = []
    for c in IBAN_CHUNK.finditer(text, start, m.end()):
        if len(c.group()) > 4 and c.group().isalpha():
            break  # a word after the IBAN: its groups have digits, or four letters at most (GB: NWBK)
        chunks.append((c.start(), c.end()))
    # The pattern overreaches into the next word; drop chunks from the end until the rest validates.
    while chunks:
        end = chunks[-1][1]
        compact = "".join(text[s:e] for s, e in chunks)
        if len(compact) < 15:
            return None
        if len(compact) <= 34 and not (end < len(text) and (text[end].isalnum() or text[end] == "_")) \
                and v.is_iban(compact):
            return Match("iban", start, end)
        chunks.pop()
    return None


def _labelled_other(text: str, start: int) -> bool:
    """A number introduced as another identifier ("Order #", "tracking no.") with no card word nearby."""
    before = lower(text[max(0, start - CONTEXT_BEFORE) : start])
    label = NOT_CARD_LABEL.search(before[-24:])
    return label is not None and not CARD_WORDS.search(before)

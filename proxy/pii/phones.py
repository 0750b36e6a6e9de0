"""Phone numbers in runs of digit groups: international (`+`, `00`), NANP shapes, trunk-prefix national
formats, and any grouping `phonenumbers` accepts next to a phone word; dates, amounts and labelled
identifiers are not phones."""

from __future__ import annotations

import re
from typing import Final

from proxy.pii import validators as v
from proxy.pii.runs import DATE, Found, Run, before
from proxy.pii.types import Match

PHONE_WORDS: Final = re.compile(
    r"(?<![a-z])(?:phone|tel|call|mobile|mob|cell|fax|whatsapp|signal|sms|text me|texting|contact|reach me|"
    r"reach us|dial|ring|telefon|telephone|numero|número|tél|tlf|handy|hotline|landline|helpline|"
    r"my number|our number|his number|her number|extension|ext|ph)(?![a-z])"
)
NOT_PHONE_WORDS: Final = re.compile(
    r"(?<![a-z])(?:order|invoice|sku|part|ref|reference|tracking|account|acct|serial|isbn|id|item|model|batch|"
    r"lot|po|ticket|case|confirmation|booking|reservation|transaction|txn|receipt|price|total|amount|usd|eur|"
    r"gbp|qty|quantity|version|build|zip|postcode|code|ssn|social security)(?![a-z])(?:[ .]*(?:number|no|num)\b)?"
    r"|[#$€£¥]"
)
NANP_SHAPE: Final = re.compile(
    r"(?:\+?1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ .\-]?|[2-9][0-9]{2}[ .\-/])[2-9][0-9]{2}[ .\-][0-9]{4}"
)
# A number followed by a currency or unit is an amount ("96 189 656 VND", "1 299 000 €").
AMOUNT: Final = re.compile(
    r"[ \t]?(?:[$€£¥₹%]|(?:usd|eur|gbp|jpy|vnd|inr|chf|cny|rub|brl|aud|cad|sek|nok|dkk|pln|kg|km|mb|gb|ms|px)"
    r"(?![a-z]))",
    re.IGNORECASE,
)


def phone(run: Run, i: int) -> Found:
    text, parts = run.text, run.parts
    start = run.starts[i]
    plus = plus_before(text, start)
    span_start = start - 1 if start > 0 and text[start - 1] == "(" else start
    context: str | None = None
    digits = ""
    candidates: list[tuple[int, str]] = []
    for j in range(i, min(len(parts), i + 8)):
        digits += parts[j]
        if len(digits) > 15:
            break
        if len(digits) >= 7:
            candidates.append((j, digits))
    for j, digits in reversed(candidates):
        end = run.ends[j]
        if run.glued_right(j):
            continue
        if plus is not None:
            if v.is_phone(text[plus:end], None):
                return Match("phone", plus, end), j
            continue
        if digits.startswith("00") and len(digits) >= 10:
            if v.is_phone("+" + digits[2:], None):
                return Match("phone", span_start, end), j
            continue
        if DATE.fullmatch(text, start, end) or AMOUNT.match(text, end) or _dated(text, start, end):
            continue
        if context is None:
            context = _context(text, span_start)
        if context == "not":
            continue
        written = text[span_start:end]
        if NANP_SHAPE.fullmatch(written) and v.is_phone(written, "US"):
            return Match("phone", span_start, end), j
        trunk = digits[0] == "0" and digits[1] != "0"
        if trunk and context != "phone" and 9 <= len(digits) <= 12 and j > i and run.uniform(i, j) \
                and v.is_trunk_phone(written):
            return Match("phone", span_start, end), j
        if context == "phone" and ((trunk and v.is_trunk_phone(written)) or v.is_national_phone(written)):
            return Match("phone", span_start, end), j
    return None


def plus_before(text: str, start: int) -> int | None:
    """Where the `+` of an international number starts ("+44", "(+44)", "+ 44"), if there is one."""
    k = start - 1
    if k >= 0 and text[k] == "(":
        k -= 1
    if k >= 0 and text[k] == " ":
        k -= 1
    if k >= 0 and text[k] == "+" and (k == 0 or not text[k - 1].isalnum()):
        return k - 1 if k > 0 and text[k - 1] == "(" else k
    return None


def _dated(text: str, start: int, end: int) -> bool:
    """A date followed by something else (a time): "2024-06-22 10:05", "28/02/2021 16:29"."""
    date = DATE.match(text, start, end)
    return date is not None and date.end() < end and text[date.end()] != text[date.end() - 3]


def _context(text: str, start: int) -> str:
    """"phone" or "not" when a word before the number says which it is (the nearer word wins), else ""."""
    words = before(text, start)
    phone_word = max((m.end() for m in PHONE_WORDS.finditer(words)), default=-1)
    other = max((m.end() for m in NOT_PHONE_WORDS.finditer(words)), default=-1)
    if phone_word < 0 and other < 0:
        return ""
    return "phone" if phone_word > other else "not"  # "order number 0123 ...": the label wins a tie

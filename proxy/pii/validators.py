"""Checks that confirm a regex candidate: checksums, issuer ranges, number plans, decodable headers."""

from __future__ import annotations

import base64
import binascii
import functools
import importlib
import ipaddress
import re
from collections.abc import Callable, Iterator

import orjson
import phonenumbers
from stdnum import iban as stdnum_iban

Validator = Callable[[str], bool]

_MODULE_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?")

# (prefix length, lowest prefix, highest prefix, allowed lengths): the issuers' published ranges.
_ANY_16_19 = frozenset(range(16, 20))
_CARD_RANGES: tuple[tuple[int, int, int, frozenset[int]], ...] = (
    (1, 4, 4, frozenset({13, 16, 19})),  # Visa
    (2, 51, 55, frozenset({16})),  # Mastercard
    (4, 2221, 2720, frozenset({16})),  # Mastercard 2-series
    (2, 34, 34, frozenset({15})),  # American Express
    (2, 37, 37, frozenset({15})),
    (4, 6011, 6011, _ANY_16_19),  # Discover
    (3, 644, 649, _ANY_16_19),
    (2, 65, 65, _ANY_16_19),
    (3, 300, 305, frozenset(range(14, 20))),  # Diners Club
    (2, 36, 36, frozenset(range(14, 20))),
    (2, 38, 39, frozenset(range(14, 20))),
    (4, 3528, 3589, _ANY_16_19),  # JCB
    (2, 62, 62, _ANY_16_19),  # UnionPay
    (4, 2200, 2204, _ANY_16_19),  # Mir
    (2, 50, 50, frozenset(range(13, 20))),  # Maestro
    (2, 56, 58, frozenset(range(13, 20))),
    (2, 67, 67, frozenset(range(13, 20))),
)

# Regions tried for a national-format number that sits next to a phone keyword, most common first.
_NATIONAL_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "ES", "IT", "NL", "BR", "JP", "CH", "SE", "MX", "PL", "BE",
                     "AT", "IE", "ZA", "NZ")
# Regions whose national format starts with the trunk prefix 0 (Italy's numbers keep their 0 too): a
# number written "020 7946 0958" is tried as each, most common first.
_TRUNK_REGIONS = ("GB", "DE", "FR", "NL", "AU", "IN", "IT", "JP", "BE", "CH", "AT", "SE", "IE", "ZA", "NZ", "BR",
                  "TR", "KR", "CN", "IL")


def digits_of(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


# Luhn's doubled digit, precomputed: 2d, minus 9 when that has two digits.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_valid(number: str) -> bool:
    """Luhn's check on ASCII digits; what stdnum.luhn.is_valid answers, at a sixth of the cost (every
    card-shaped number in every prompt is checked, so it shows in the scan's per-KB figure)."""
    if not number or not number.isascii() or not number.isdigit():
        return False
    digits = [ord(ch) - 48 for ch in reversed(number)]
    return (sum(digits[0::2]) + sum(_DOUBLED[d] for d in digits[1::2])) % 10 == 0


def is_card(value: str) -> bool:
    number = digits_of(value)
    return len(number) in card_lengths(number) and luhn_valid(number)


def card_lengths(number: str) -> frozenset[int]:
    """The lengths an issuer uses for card numbers starting like `number` (at least 4 digits)."""
    return _lengths_for_prefix(number[:4])


@functools.cache
def _lengths_for_prefix(prefix: str) -> frozenset[int]:
    lengths: frozenset[int] = frozenset()
    for width, low, high, allowed in _CARD_RANGES:
        if low <= int(prefix[:width]) <= high:
            lengths |= allowed
    return lengths


def is_ssn(value: str) -> bool:
    return is_ssn_digits(digits_of(value))


def is_ssn_digits(number: str) -> bool:
    # SSA's rules (what stdnum checks): no area 000, 666 or 9xx, no group 00, no serial 0000. stdnum also
    # refuses the famous published numbers (078-05-1120); written in a prompt they are still an SSN.
    return len(number) == 9 and number.isascii() and number.isdigit() and number[:3] not in ("000", "666") \
        and number[0] != "9" and number[3:5] != "00" and number[5:] != "0000"


# mod-97-10 (ISO 7064) reads each letter as its two-digit value: A=10 ... Z=35.
_IBAN_LETTERS = str.maketrans({chr(65 + i): str(10 + i) for i in range(26)})


def is_iban(value: str) -> bool:
    """stdnum's answer (`stdnum.iban.is_valid`), step for step, with its per-country lookup done once per
    country: stdnum searches its registry on every call, ~90 us for each valid IBAN, twice the budget of
    a whole KB of scanned text. Non-ASCII text goes to stdnum itself (it maps Unicode dashes and digits)."""
    if not value.isascii():
        return bool(stdnum_iban.is_valid(value))
    number = value.replace(" ", "").replace("-", "").replace(".", "").strip().upper()  # stdnum's compact()
    if len(number) > 34:  # no country's IBAN is longer (and int() refuses over 4,300 digits)
        return False
    rearranged = number[4:] + number[:4]
    if not rearranged.isalnum() or int(rearranged.translate(_IBAN_LETTERS)) % 97 != 1:
        return False
    bban = _bban_structure(number[:2])
    if bban is None or not bban.match(number[4:]):
        return False
    module = stdnum_iban._get_cc_module(number[:2])  # stdnum caches these itself
    return module is None or bool(module.is_valid(number))


@functools.cache
def _bban_structure(country: str) -> re.Pattern[str] | None:
    properties = stdnum_iban._ibandb.info(country)[0][1]
    return stdnum_iban._struct_to_re(properties.get("bban", "")) if properties else None


def is_ip(value: str) -> bool:
    if value.count(".") == 3 and ":" not in value:
        return _is_ipv4(value)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_ipv4(value: str) -> bool:
    # ipaddress' rules (four decimal octets up to 255, no leading zeros) without building an address.
    for octet in value.split("."):
        if not (octet.isascii() and octet.isdigit()) or len(octet) > 3 or int(octet) > 255 or \
                (len(octet) > 1 and octet[0] == "0"):
            return False
    return True


def is_jwt(value: str) -> bool:
    header = value.split(".", 1)[0]
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def is_phone(value: str, region: str | None) -> bool:
    """`phonenumbers`' answer (~25 µs), remembered: a conversation resends its history on every turn and
    a stream rescans its held tail on every delta, so the same candidates come back. The memo is keyed by
    Python's salted string hash, so it holds no phone number, and it is bounded."""
    key = hash((value, region))
    known = _PHONE_MEMO.get(key)
    if known is None:
        known = _PHONE_MEMO[key] = _parse_valid(value, region)
        if len(_PHONE_MEMO) > _PHONE_MEMO_SIZE:
            _PHONE_MEMO.clear()
    return known


_PHONE_MEMO: dict[int, bool] = {}
_PHONE_MEMO_SIZE = 8192


def _parse_valid(value: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def is_national_phone(value: str) -> bool:
    digits = digits_of(value)
    if digits.startswith("00"):
        return is_phone("+" + digits[2:], None)
    return any(is_phone(value, region) for region in _NATIONAL_REGIONS)


def is_trunk_phone(value: str) -> bool:
    return any(is_phone(value, region) for region in _TRUNK_REGIONS)


_PLACEHOLDER_CREDENTIAL = re.compile(r"[A-Z0-9_\-.]*|(?i:.*(?:x{4,}|\.\.\.|your|token|redacted|example|placeholder).*)")


def is_credential(value: str, strict: bool) -> bool:
    """An HTTP credential rather than a placeholder (YOUR_TOKEN, xxxx, <token>); `strict` also wants key
    material: letters and digits, 16 characters or more."""
    if _PLACEHOLDER_CREDENTIAL.fullmatch(value):
        return False
    if not strict:
        return True
    return len(value) >= 16 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def is_basic_credentials(value: str) -> bool:
    """Basic auth: base64 of "user:password"."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in decoded and decoded.isprintable()


def looks_like_password(value: str) -> bool:
    """A word in prose that is a password rather than English: a digit, a symbol or an inner capital."""
    value = value.rstrip(".,;!?") if len(value) > 1 and value[-2:-1].isalnum() else value
    return len(value) >= 6 and (any(c.isdigit() for c in value) or any(not c.isalnum() for c in value)
                                or any(c.isupper() for c in value[1:]))


def is_mixed_token(value: str) -> bool:
    """Random keys mix digits and both cases; prose and identifiers made of words rarely do."""
    return any(ch.isdigit() for ch in value) and any(ch.isupper() for ch in value) and any(ch.islower() for ch in value)


def shrinking(candidate: str, min_length: int) -> Iterator[str]:
    """The candidate, then without its last space-separated group, and so on (greedy regexes overreach)."""
    while len(candidate) >= min_length:
        yield candidate
        cut = max(candidate.rfind(" "), candidate.rfind("-"))
        if cut <= 0:
            return
        candidate = candidate[:cut].rstrip(" -./()")


def named_validator(name: str) -> Validator:
    """A validator by name: "luhn", "iban" or a stdnum module ("de.idnr"); unknown names fail now."""
    if name == "luhn":
        return lambda value: luhn_valid(digits_of(value))
    # Only dotted lowercase names: the import stays inside the stdnum package.
    if not _MODULE_NAME.fullmatch(name):
        raise ValueError(f"unknown validator {name!r}")
    try:
        module = importlib.import_module(f"stdnum.{name}")
    except ImportError as exc:
        raise ValueError(f"unknown validator {name!r}: no stdnum.{name} module") from exc
    check = getattr(module, "is_valid", None)
    if not callable(check):
        raise ValueError(f"unknown validator {name!r}: stdnum.{name} has no is_valid")
    return lambda value: bool(check(value))

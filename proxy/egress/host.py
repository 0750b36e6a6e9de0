"""Destination hosts in one canonical form, whatever the client wrote: IP literals parsed as the C library
would (every inet_aton IPv4 form, bracketed IPv6 with a zone id), names percent-decoded, IDNA-mapped
(UTS #46, the `idna` package), lower-cased and without the trailing dot. Pure.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_NAME = 253
# DNS labels as hosts use them: letters, digits, hyphens inside, and underscores (SRV-style names exist).
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A last label like these makes the host an IPv4 address or nothing: `1.2.3.4.5` is not a name to look up.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# inet_aton also accepts trailing text after whitespace; only these characters ever reach it.
_IPV4_TEXT = re.compile(r"[0-9a-fx.]+")
_ZONE = re.compile(r"[A-Za-z0-9._~-]{1,64}")


class HostError(ValueError):
    """The host cannot be understood; the message is safe to send back to the caller."""


@dataclass(frozen=True, slots=True)
class Host:
    # An A-label name, or the address's compressed form (`%zone` appended for a scoped IPv6 literal).
    name: str
    address: IPAddress | None = None
    zone: str | None = None


def normalise_host(raw: str) -> Host:
    """The canonical host of an authority's host part (`[v6%25zone]`, `127.1`, `%41pi.example.`, ...)."""
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise HostError(f"malformed IPv6 address in {raw[:80]!r}")
        return _ipv6(raw[1:-1])
    text = _decoded(raw)
    if not text.isascii():
        text = _idna(text, raw)
    text = text.lower()
    # One trailing dot is the root (a fully qualified name); more than one is an empty label.
    text = text[:-1] if text.endswith(".") else text
    labels = text.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return _ipv4(text, raw)
    if len(text) > MAX_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        raise HostError(f"malformed host {raw[:80]!r}")
    return Host(text)


def _decoded(raw: str) -> str:
    # Decoded once: `%2531` stays `%31`, and is refused as a name.
    try:
        return unquote_to_bytes(raw.encode("utf-8")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise HostError(f"host {raw[:80]!r} is not valid UTF-8") from None


def _idna(text: str, raw: str) -> str:
    # UTS #46 mapping folds width and case and drops ignorables, so `１２７．０．０．１` is 127.0.0.1
    # and `ｌｏｃａｌｈｏｓｔ` is localhost.
    try:
        return idna.encode(text, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise HostError(f"host {raw[:80]!r} is not a valid internationalised name: {exc}") from None


def _ipv4(text: str, raw: str) -> Host:
    if not _IPV4_TEXT.fullmatch(text):
        raise HostError(f"{raw[:80]!r} is not a valid IPv4 address")
    try:
        packed = socket.inet_aton(text)
    except OSError:
        raise HostError(f"{raw[:80]!r} is not a valid IPv4 address") from None
    address = ipaddress.IPv4Address(packed)
    return Host(str(address), address)


def _ipv6(inner: str) -> Host:
    text, percent, zone_text = inner.partition("%")
    zone = None
    if percent:
        # RFC 6874 writes the zone delimiter as `%25`; a bare `%` is accepted too.
        zone = unquote(zone_text[2:] if zone_text.startswith("25") else zone_text)
        if not _ZONE.fullmatch(zone):
            raise HostError(f"malformed IPv6 zone id in {inner[:80]!r}")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise HostError(f"malformed IPv6 address in {inner[:80]!r}") from None
    name = str(address) if zone is None else f"{address}%{zone}"
    return Host(name, address, zone)

"""Runs of digit groups in text (groups of any size joined by any human separator): where one starts,
its groups and separators, and the context helpers the digit types share."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from proxy.pii.image import runs_of_marks, table
from proxy.pii.types import Match

RUN: Final = re.compile(
    r"""
    [0-9](?<![0-9][0-9])  # the first digit of a sequence; most digits in text exit here
    (?:
        (?<=(?<![A-Za-z0-9_])[A-Za-z]{2}[0-9])(?=[0-9])(?P<iban>)  # after a country code: an IBAN
    |   (?<![A-Za-z0-9_][0-9])(?<![A-Za-z0-9][\-_][0-9])(?<![0-9]\.[0-9])  # not in an identifier: v1.2, INV-2024
        (?![0-9]{3}-[0-9]{2}-[0-9]{2}(?![0-9]|-[0-9]))  # an ISO date (every JSON timestamp has one)
        (?:
            # The two commonest shapes are settled without taking the run apart (the first digit is
            # already consumed: each group ends where the value does).
            (?=(?P<quad>[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})(?![0-9]|\.[0-9]))
        |   (?=(?P<card>[0-9]{12,18}|[0-9]{3}(?P<s>[ \-])[0-9]{4}(?P=s)[0-9]{4}(?P=s)[0-9]{4})(?![0-9]|[ \-][0-9]))
        |   (?=[0-9 \t\r\n().\-/\\]{6})(?P<run>)  # room for a value: the next six are digits or separators
        )
    )
    """,
    re.VERBOSE,
)
# RUN shortlisted on the ASCII image: a value in digit groups starts at a digit followed by six more digits
# or separators (RUN's lookahead), so inside seven or more of them in a row; an IBAN's first digit follows
# two letters and a digit follows it.
_ROOM: Final = 7
# Up to this long (a streamed delta, most chat turns) a text is searched whole: shortlisting costs more
# below ~800 characters of mixed text (digit_values timed both ways at 400 to 8,000 characters).
_WHOLE: Final = 768
_ROOM_TABLE: Final = table("0123456789 \t\r\n().-/\\")
_ROOMS: Final = runs_of_marks(_ROOM)
_IBAN_TABLE: Final = table("", a="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", d="0123456789")
_IBAN_START: Final = re.compile(rb"dd(?<=aadd)")  # from the digits (few) rather than the letters (most)


def run_search(text: str, image: bytes) -> Callable[[str, int], re.Match[str] | None]:
    """A function answering, for the same `text` and non-decreasing positions, what `RUN.search` would;
    `image`: `ascii_image(text)`."""
    return RUN.search if len(text) <= _WHOLE else _Shortlisted(image).search


class _Shortlisted:
    """RUN run only inside the shortlisted spans and at the shortlisted IBAN starts."""

    __slots__ = ("_iban", "_ibans", "_room", "_rooms")

    def __init__(self, image: bytes) -> None:
        self._rooms = [m.span() for m in _ROOMS.finditer(image.translate(_ROOM_TABLE))]
        self._ibans = [m.start() for m in _IBAN_START.finditer(image.translate(_IBAN_TABLE))]
        self._room = self._iban = 0  # the first of each not yet passed

    def search(self, text: str, pos: int) -> re.Match[str] | None:
        rooms, ibans = self._rooms, self._ibans
        first = None
        while self._room < len(rooms):
            low, high = rooms[self._room]
            # Cut at the span's end: each lookahead of RUN fails on the character there as at the end.
            if high > pos and (first := RUN.search(text, max(low, pos), high)) is not None:
                break
            self._room += 1
        while self._iban < len(ibans) and (first is None or ibans[self._iban] < first.start()):
            at = ibans[self._iban]
            if at >= pos and (m := RUN.match(text, at)) is not None:
                return m
            self._iban += 1
        return first


_SEP = r"(?:[ \t]{0,3}\r?\n[ \t>]{0,8}|[ \t().\-/\\]{1,5})"
BODY: Final = re.compile(rf"[0-9]{{1,24}}(?:{_SEP}[0-9]{{1,24}}){{0,15}}")
DATE: Final = re.compile(
    r"(?:[0-9]{1,2}(?P<a>[./\-])[0-9]{1,2}(?P=a)(?:[0-9]{2}|[0-9]{4})|[0-9]{4}(?P<b>[./\-])[0-9]{1,2}(?P=b)[0-9]{1,2})"
)
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def lower(text: str) -> str:
    """`text` lowercased character for character, so offsets still hold: str.lower() (C speed) unless it
    changes the length (a dotted capital I), then ASCII letters only (a per-character dict lookup)."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)
CONTEXT_BEFORE: Final = 48  # characters before a number searched for words that say what it is
CONTEXT_AFTER: Final = 24
_LAST_DIGITS: Final = re.compile(r"[0-9]{2}(?=[^0-9]*\Z)")
_SPLIT: Final = re.compile(r"([0-9]+)")


class Run:
    """A run's digit groups: `parts[k]` is group k's digits at text[starts[k]:ends[k]], `seps[k]` what
    joins group k to group k + 1."""

    __slots__ = ("ends", "parts", "seps", "starts", "text")

    def __init__(self, text: str, start: int, end: int) -> None:
        pieces = _SPLIT.split(text[start:end])  # ["", digits, sep, digits, ..., ""]
        self.text = text
        self.parts: list[str] = pieces[1::2]
        self.seps: list[str] = pieces[2:-1:2]
        self.starts: list[int] = []
        self.ends: list[int] = []
        at = start
        for k, part in enumerate(self.parts):
            self.starts.append(at)
            at += len(part)
            self.ends.append(at)
            if k < len(self.seps):
                at += len(self.seps[k])

    def digits(self, i: int, j: int) -> str:
        return "".join(self.parts[i : j + 1])

    def uniform(self, i: int, j: int) -> bool:
        """Whether groups i..j are joined by one kind of separator: whitespace only, or one punctuation
        mark with spaces around it or not ("4111 1111\n1111 1111", "4111 - 1111"; not "5.0 10.0.1")."""
        return len({sep.strip(" \t\r\n>()") for sep in self.seps[i:j]}) <= 1

    def glued_right(self, j: int) -> bool:
        end = self.ends[j]
        return end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_")




Found = tuple[Match, int] | None  # a value and the index of its last group


def before(text: str, start: int) -> str:
    """The lowercased words before a number, from the last other number on: in "mobile +44 ... about the
    96 189 656", "mobile" says nothing about the second number."""
    window = text[max(0, start - CONTEXT_BEFORE) : start]
    m = _LAST_DIGITS.search(window)
    return lower(window[m.end() :] if m else window)


def around(text: str, start: int, end: int) -> str:
    return before(text, start) + " " + lower(text[end : end + CONTEXT_AFTER])

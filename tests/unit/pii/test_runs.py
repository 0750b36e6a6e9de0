"""Runs of digit groups: the shortlisted search finds exactly what RUN would, and lowering keeps offsets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.pii.image import ascii_image
from proxy.pii.runs import RUN, lower, run_search

PIECES = st.sampled_from(["4111", "1111", "123", "45", "6789", "2024-05-01", "1.2.3.4", "DE89", "GB82", "WEST",
                          "de", " ", "  ", "-", ".", "/", "\n", "(", ")", "\t", "x", "id", "v1", "_", "é", "ab12cd",
                          "0044", "+44", "2.14", ",", "T10:22"])


def every_match(text: str) -> list[tuple[int, str | None]]:
    search = run_search(text, ascii_image(text))
    found, pos = [], 0
    while (m := search(text, pos)) is not None:
        found.append((m.start(), m.lastgroup))
        pos = m.start() + 1
    return found


def reference(text: str) -> list[tuple[int, str | None]]:
    found, pos = [], 0
    while (m := RUN.search(text, pos)) is not None:
        found.append((m.start(), m.lastgroup))
        pos = m.start() + 1
    return found


@settings(max_examples=300)
@given(st.lists(PIECES, max_size=60), st.integers(0, 1200))
def test_the_shortlisted_search_finds_what_run_finds(pieces: list[str], padding: int) -> None:
    # Padding takes the text past the length up to which it is searched whole (768).
    text = "word " * (padding // 5) + "".join(pieces)
    assert every_match(text) == reference(text)


def test_an_iban_with_letters_after_its_check_digits_is_found_in_a_long_text() -> None:
    # Its digits after the country code are too few for a run of digit groups: the IBAN shortlist finds it.
    text = "prose without numbers " * 40 + "pay GB82WEST12345698765432 ok"
    assert every_match(text)[0] == (text.index("82WEST"), "iban")


@given(st.text(max_size=600))
def test_lower_keeps_every_offset_and_lowers_ascii_letters(text: str) -> None:
    lowered = lower(text)
    assert len(lowered) == len(text)
    assert all(a == b.lower() for a, b in zip(lowered, text, strict=True) if b.isascii())

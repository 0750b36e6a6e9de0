"""The ASCII image and the searches over it that shortlist where a pattern may match."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from proxy.pii.image import MARK, ascii_image, runs_of_marks, table


def test_the_image_has_one_byte_per_character() -> None:
    text = "café ４ 😀 \u200b ok?\x85"
    image = ascii_image(text)
    assert len(image) == len(text)
    assert image == b"caf? ? ? ? ok?\x0b"  # NEL: whitespace that is no line break, as VT


def test_a_table_marks_its_characters_and_keywords_map_to_their_letter() -> None:
    marked = b"a1-b_ ".translate(table("ab", d="0123456789"))
    assert marked == MARK + b"d." + MARK + b".."


@given(st.text(alphabet="m.", max_size=60), st.integers(1, 6))
def test_runs_of_marks_are_the_maximal_runs_at_least_that_long(marked: str, length: int) -> None:
    expected = [m.span() for m in re.finditer(f"m{{{length},}}", marked)]
    assert [m.span() for m in runs_of_marks(length).finditer(marked.encode())] == expected

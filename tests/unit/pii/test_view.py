"""Views built from edits map every span of the derived text back to the source characters behind it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.pii.view import View, build


def test_no_edits_is_the_identity() -> None:
    view = build("abc", [])
    assert view.text == "abc" and view.source_span(1, 3) == (1, 3)


def test_replacements_of_any_length() -> None:
    source = "a%40b&amp;c\u200bd"
    view = build(source, [(1, 4, "@"), (5, 10, "&"), (11, 12, "")])
    assert view.text == "a@b&cd"
    assert source[slice(*view.source_span(0, 3))] == "a%40b"
    assert source[slice(*view.source_span(3, 4))] == "&amp;"
    assert source[slice(*view.source_span(4, 6))] == "c\u200bd"


@given(st.lists(st.tuples(st.integers(0, 3), st.text(alphabet="xyz", max_size=3)), max_size=8),
       st.text(alphabet="abcdef", min_size=12, max_size=30))
def test_every_span_maps_to_a_source_span_holding_its_characters(cuts: list[tuple[int, str]], source: str) -> None:
    edits, at = [], 0
    for gap, replacement in cuts:
        start = at + gap
        end = min(len(source), start + (len(replacement) or 1))
        if start >= len(source):
            break
        edits.append((start, end, replacement))
        at = end
    view = build(source, edits)
    assert isinstance(view, View)
    for start in range(len(view.text)):
        for end in range(start + 1, len(view.text) + 1):
            s, e = view.source_span(start, end)
            assert 0 <= s < e <= len(source)
            # Characters kept as they were are found in the source span, in order.
            kept = [c for c in view.text[start:end] if c in "abcdef"]
            window = iter(source[s:e])
            assert all(c in window for c in kept)

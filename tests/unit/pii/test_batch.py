"""Decoded windows searched in one pass: each reads as it would alone, and maps back to its encoded text."""

from __future__ import annotations

import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.pii import Scanner
from proxy.pii.batch import GAP, batch
from proxy.pii.decode import decoded

SCANNER = Scanner()


def found(text: str) -> list[tuple[str, str]]:
    return [(m.type, text[m.start : m.end]) for m in SCANNER.find(text)]


def test_windows_are_joined_by_gaps_and_map_back_to_their_encoded_text() -> None:
    text = "x " * 150 + "jane%40example.org" + " y" * 150 + " a&#64;b.co " + "z " * 150
    layer = decoded(text)
    assert layer is not None
    joined, apart = batch(text, layer, [10**6])
    assert joined is not None and apart == []
    first, second = joined.view.text.split(GAP)
    assert "jane@example.org" in first and "a@b.co" in second
    at = joined.view.text.index("a@b.co")
    span = joined.source(at, at + len("a@b.co"))
    assert span is not None and text[slice(*span)] == "a&#64;b.co"


def test_a_window_decoded_into_new_escapes_is_set_apart_and_the_budget_bounds_windows() -> None:
    text = urllib.parse.quote("mail \\u0040 here")  # "%5C%5Cu0040": decodes to an escape
    layer = decoded(text)
    assert layer is not None
    joined, apart = batch(text, layer, [10**6])
    assert joined is None and [again for _, _, again in apart] == [True]
    budget = [0]
    assert batch(text, layer, budget) == (None, [])


def test_a_window_whose_decoding_brings_new_escapes_is_read_on_its_own() -> None:
    # "%5C%0A" decodes to a backslash and a line break: the window is decoded again, alone.
    text = urllib.parse.quote("curl -s https://api.example.com \\\n -H 'Authorization: Bearer kN0XcbJN23fbKPa6Wj1F'")
    assert [t for t, _ in found(text)] == ["auth_header"]


FILLER = " the quarterly report shows revenue grew while support tickets fell " * 6
SNIPPETS = ["call%20me%20on", "020%207946%200958", "my%20SSN%3A", "123%2045%206789", "order%20no%3A",
            "4111%201111%201111%201111", "jane.doe%40example.org", "jane&#64;example.org", "\\u00404111",
            "ip&#58;", "203.0.113.7", "password%3DTr0ub4dor3x", "card\\u003a", "5500%200000%200000%200004"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(SNIPPETS), min_size=2, max_size=5))
def test_decoded_windows_searched_together_read_as_they_would_alone(snippets: list[str]) -> None:
    # Far apart, each snippet's window is searched in the same pass as the others, after a gap: no value
    # and no context word reaches from one into the next.
    text = FILLER + FILLER.join(snippets) + FILLER
    alone: set[tuple[str, int, int]] = set()
    at = 0
    for snippet in snippets:
        piece = FILLER + snippet + FILLER
        alone |= {(m.type, m.start + at, m.end + at) for m in SCANNER.find(piece)}
        at += len(FILLER) + len(snippet)
    assert {(m.type, m.start, m.end) for m in SCANNER.find(text)} == alone


def test_a_context_word_at_one_windows_end_says_nothing_of_a_number_at_the_next_ones_start() -> None:
    # The two windows end with "SSN" and start with nine digits; in the text 400 characters part them.
    text = "w " * 100 + "a%20b " + "x " * 44 + "my SSN " + "f " * 200 + "123456789 " + "y " * 43 + "c%20d " + "z " * 100
    assert found(text) == []
    assert [t for t, _ in found(text.replace("f " * 200, ""))] == ["ssn"]


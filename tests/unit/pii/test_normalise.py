"""The normalised view: what it folds, what it removes, and spans mapped back over the removed characters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.pii.normalise import normalise


@pytest.mark.parametrize(
    ("original", "normal"),
    [
        ("４１１１ １１１１", "4111 1111"),
        ("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", "john@example.com"),
        ("jo\u200bhn@exa\u00admple.com", "john@example.com"),
        ("a\u200c\u200d\u2060\ufeffb", "ab"),
        ("x\u200ey\u200fz\u202a\u202e\u2066\u2069", "xyz"),
        ("4111\u00a01111\u20091111\u202f1111\u3000", "4111 1111 1111 1111 "),
        ("a\u2028b\u2029c", "a\nb\nc"),
        ("123\u2013456\u2014789\u2212", "123-456-789-"),
        ("١٢٣-٤٥-٦٧٨٩", "123-45-6789"),
        ("४१११", "4111"),
        ("𝟒𝟏𝟏𝟏 𝟙", "4111 1"),
        ("①②③", "123"),
        ("4\u03321\u0336", "41"),
        ("example\u3002com", "example.com"),
        ("tag\U000e0041\U000e0042s", "tags"),
    ],
)
def test_folds_and_removes(original: str, normal: str) -> None:
    assert normalise(original).text == normal


@pytest.mark.parametrize("text", ["plain ascii", "日本語のテキスト", "café naïve", "नमस्ते दुनिया", "emoji 😀 ok"])
def test_text_needing_nothing_is_returned_as_it_is(text: str) -> None:
    view = normalise(text)
    assert view.text == text
    assert not view.edited


def test_a_span_covers_the_invisible_characters_inside_and_around_it() -> None:
    original = "mail \u200bjo\u200bhn@exa\u00admple.com\u200d now"
    view = normalise(original)
    start = view.text.index("john")
    end = view.text.index(".com") + 4
    s, e = view.source_span(start, end)
    assert original[s:e] == "\u200bjo\u200bhn@exa\u00admple.com\u200d"


def test_a_span_over_an_expansion_maps_to_the_whole_source_character() -> None:
    original = "x ﬁle y"  # the ligature is two letters in the view
    view = normalise(original)
    assert view.text == "x file y"
    assert view.source_span(2, 3) == (2, 3)  # "f" alone is the whole ligature
    assert original.__getitem__(slice(*view.source_span(2, 6))) == "ﬁle"


UNICODE = st.text(alphabet=st.one_of(st.sampled_from("ab1 -.@\u0301\u0302\u093c\u200b\u00a0\u00ad\uff14é“İ😀\u2028"),
                                     st.characters(max_codepoint=0x2FFFF)), max_size=40)


@settings(max_examples=500)
@given(UNICODE)
def test_normalised_text_is_left_as_it_is(text: str) -> None:
    # Decoded windows are normalised only where decoding put characters: the rest is normalised already.
    once = normalise(text).text
    assert normalise(once).text == once


@given(st.text(alphabet="ab -", max_size=20), st.sampled_from(["\u00a0", "４", "\u200b", "e\u0301", "\u2013"]),
       st.text(alphabet="cd ", max_size=20))
def test_only_the_spans_given_are_normalised(before: str, inserted: str, after: str) -> None:
    text = "é" + before + inserted + after
    span = (1 + len(before), 1 + len(before) + len(inserted))
    assert normalise(text, [span]).text == normalise(text).text
    assert normalise(text, []).text == text

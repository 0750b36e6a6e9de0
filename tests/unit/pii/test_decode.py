"""Decoded layers: escapes, percent-encoding, entities and base64, each mapped back to its encoded run."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.pii import Scanner
from proxy.pii.decode import MAX_BASE64, base64_runs, decoded, windows

SCANNER = Scanner()


def found(text: str) -> list[tuple[str, str]]:
    return [(m.type, text[m.start : m.end]) for m in SCANNER.find(text)]


@pytest.mark.parametrize(
    ("encoded", "plain"),
    [
        ('a\\u0040b \\x40 \\n\\t \\ud83d\\ude00', 'a@b @ \n\t 😀'),
        ("a%40b%20c %E2%82%AC %zz", "a@b c € %zz"),
        ("a&#64;b&#x40;c&commat;d &nosuch;", "a@b@c@d &nosuch;"),
        ("mix%20\\u0040&#64;", "mix @@"),
    ],
)
def test_escapes_percent_encoding_and_entities_are_decoded(encoded: str, plain: str) -> None:
    view = decoded(encoded)
    assert view is not None and view.text == plain


def test_a_text_without_an_anchor_costs_three_substring_tests() -> None:
    assert decoded("plain text, nothing encoded") is None
    assert decoded("100% & a backslash \\ alone") is None


def test_quotes_backslashes_and_markup_stay_encoded() -> None:
    # The patterns read them either way; JSON inside a JSON string sets off no search.
    assert decoded('{\\"q\\": \\"a\\\\b\\"} &amp; &lt;p&gt; &quot;') is None


def test_windows_cover_each_edit_to_the_ends_of_its_words_and_merge_when_close() -> None:
    prose = "word " * 200
    view = decoded(prose + "key" + "k" * 150 + "\\n" + "k" * 150 + " " + prose + "\\t" + "y" * 40 + "\\r" + prose)
    assert view is not None
    spans = list(windows(view))
    assert len(spans) == 2
    first, second = (view.text[s:e] for s, e in spans)
    assert first.startswith("key") and first.endswith("\n" + "k" * 150)  # the whole long word, within 320
    assert "\t" in second and "\r" in second


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"to": "john\\u0040example.com"}', "john\\u0040example.com"),
        ("q=jane.doe%40example.org&x=1", "jane.doe%40example.org"),
        ("<a>jane&#64;example.org</a>", "jane&#64;example.org"),
        ("<a>&#106;&#97;&#110;&#101;&#64;example.org</a>", "&#106;&#97;&#110;&#101;&#64;example.org"),
        ('{"pan": "4111\\u00201111\\u00201111\\u00201111"}', "4111\\u00201111\\u00201111\\u00201111"),
    ],
)
def test_a_finding_in_a_decoded_layer_maps_back_over_its_escapes(text: str, value: str) -> None:
    assert [v for _, v in found(text)] == [value]


def test_base64_run_is_redacted_whole_with_the_inner_type() -> None:
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
    encoded = base64.b64encode(f"token={token}".encode()).decode()
    assert found(f"blob {encoded} end") == [("github_token", encoded)]
    urlsafe = base64.urlsafe_b64encode(b"mail jane.doe@example.org").decode().rstrip("=")
    assert found(f"x={urlsafe}") == [("email", urlsafe)]


def test_base64_of_binary_or_too_short_is_not_decoded() -> None:
    assert list(base64_runs("data:image/png;base64," + base64.b64encode(bytes(range(256))).decode(), [10**6])) == []
    assert list(base64_runs(base64.b64encode(b"a@b.co").decode(), [10**6])) == []


def test_base64_decoding_is_bounded() -> None:
    big = base64.b64encode(b"filler " * 40000).decode()
    budget = [10**6]
    runs = list(base64_runs(big, budget))
    assert len(runs) == 1 and len(runs[0][2]) <= MAX_BASE64 and budget == [10**6 - MAX_BASE64]
    assert list(base64_runs(big, [0])) == []


def test_an_encoding_inside_an_encoding_is_found_and_a_third_layer_is_not() -> None:
    inner = base64.b64encode(b'{"to": "jane\\u0040example.org"}').decode()
    assert [t for t, _ in found(f"payload {inner}")] == ["email"]
    three = base64.b64encode(base64.b64encode(b"jane%40example.org is the address")).decode()
    assert found(three) == []


# What decoding found before it searched each kind of sequence from its own first character: one
# alternation (each kind starts with a different character, and no sequence holds another's).
_ONE_PATTERN = re.compile(
    r"""\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[nrtbf"'\\/])
    |%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*|&(?:\#[0-9]{1,7};?|\#[xX][0-9A-Fa-f]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)""",
    re.VERBOSE,
)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["\\", "u", "0040", "d83d", "\\ude00", "x41", "n", '"', "%", "4", "0", "E2%82%AC",
                                 "&", "#64;", "#x2e;", "amp;", "lt;", "commat;", "a", " ", "\\\\"]), max_size=30))
def test_the_three_kinds_of_sequence_decode_as_one_search_would(pieces: list[str]) -> None:
    text = "".join(pieces)
    view = decoded(text)
    expected, last = [], 0
    for m in _ONE_PATTERN.finditer(text):
        alone = decoded(m.group())
        expected += [text[last : m.start()], m.group() if alone is None else alone.text]
        last = m.end()
    expected.append(text[last:])
    assert (text if view is None else view.text) == "".join(expected)


def _hinted_runs(text: str) -> list[tuple[int, int]]:
    """Where base64_runs looked before it shortlisted runs on the ASCII image: every hint, searched for."""
    hint = re.compile(r"[A-Z0-9+/](?=[A-Za-z0-9+/_\-]{13})")
    tail = re.compile(r"[A-Za-z0-9+/_\-]*={0,2}")
    found, pos = [], 0
    while (m := hint.search(text, pos)) is not None:
        start = m.start()
        while start > pos and re.match(r"[A-Za-z0-9+/_\-]", text[start - 1]):
            start -= 1
        end = tail.match(text, m.start()).end()  # type: ignore[union-attr]
        pos = end
        if end - start >= 16:
            found.append((start, end))
    return found


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["amFuZUBleGFtcGxlLm9yZw", "==", "=", " ", "-", "_", "abcdefghijklmnop", "Q",
                                 "é", "\n", "+/", "ZZZZ"]), max_size=20))
def test_base64_runs_are_the_runs_a_hint_search_finds(pieces: list[str]) -> None:
    text = "".join(pieces)
    budget = [10**9]
    decoded_runs = {(start, end) for start, end, _ in base64_runs(text, budget)}
    assert decoded_runs <= set(_hinted_runs(text))
    assert decoded_runs == {(s, e) for s, e in _hinted_runs(text) if list(base64_runs(text[s:e], [10**9]))}

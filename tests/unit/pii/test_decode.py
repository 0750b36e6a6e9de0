"""Decoded layers: escapes, percent-encoding, entities and base64, each mapped back to its encoded run."""

from __future__ import annotations

import base64

import pytest

from proxy.pii import Scanner
from proxy.pii.decode import MAX_BASE64, base64_runs, entities_decoded, percent_decoded, unescaped, windows

SCANNER = Scanner()


def found(text: str) -> list[tuple[str, str]]:
    return [(m.type, text[m.start : m.end]) for m in SCANNER.find(text)]


@pytest.mark.parametrize(
    ("decode", "encoded", "decoded"),
    [
        (unescaped, 'a\\u0040b \\x40 \\n\\t\\"\\\\n \\ud83d\\ude00', 'a@b @ \n\t"\\n 😀'),
        (percent_decoded, "a%40b%20c %E2%82%AC %zz", "a@b c € %zz"),
        (entities_decoded, "a&#64;b&#x40;c&commat;d &amp; &nosuch;", "a@b@c@d & &nosuch;"),
    ],
)
def test_layers_decode_what_they_are_for(decode: object, encoded: str, decoded: str) -> None:
    view = decode(encoded)  # type: ignore[operator]
    assert view is not None and view.text == decoded


@pytest.mark.parametrize("decode", [unescaped, percent_decoded, entities_decoded])
def test_a_text_without_the_anchor_costs_one_substring_test(decode: object) -> None:
    assert decode("plain text, nothing encoded") is None  # type: ignore[operator]


def test_windows_cover_each_edit_and_merge_when_close() -> None:
    view = unescaped("x" * 1000 + "\\n" + "y" * 100 + "\\t" + "z" * 2000 + "\\r")
    assert view is not None
    spans = list(windows(view, len(view.text)))
    assert len(spans) == 2
    assert spans[0][0] == 1000 - 320 and spans[1][1] == len(view.text)


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
    assert list(base64_runs("data:image/png;base64," + base64.b64encode(bytes(range(256))).decode(), 10**6)) == []
    assert list(base64_runs(base64.b64encode(b"a@b.co").decode(), 10**6)) == []


def test_base64_decoding_is_bounded() -> None:
    big = base64.b64encode(b"filler " * 40000).decode()
    runs = list(base64_runs(big, 10**6))
    assert len(runs) == 1 and len(runs[0][2]) <= MAX_BASE64
    assert list(base64_runs(big, 0)) == []


def test_an_encoding_inside_an_encoding_is_found_and_a_third_layer_is_not() -> None:
    inner = base64.b64encode(b'{"to": "jane\\u0040example.org"}').decode()
    assert [t for t, _ in found(f"payload {inner}")] == ["email"]
    three = base64.b64encode(base64.b64encode(b"jane%40example.org is the address")).decode()
    assert found(three) == []

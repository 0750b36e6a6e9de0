"""Finding, redacting and restoring PII in arbitrary tool arguments and results."""

from __future__ import annotations

import pytest

from proxy.mcp import content
from proxy.pii import Placeholders, Scanner

SCANNER = Scanner()


def test_strings_everywhere_are_scanned_with_their_paths_but_binary_is_skipped() -> None:
    value = {"to": ["jo@example.com"], "nested": {"note": "call +1 415 555 0100"},
             "image": {"type": "image", "data": "am9AZXhhbXBsZS5jb20="}, "blob": "jo@example.com"}
    found = content.scan(SCANNER, value, "arguments")
    assert {f.path: f.type for f in found.findings} == {"arguments.to[0]": "email",
                                                        "arguments.nested.note": "phone"}


def test_redacted_then_restored_gives_back_the_original() -> None:
    value = {"to": "jo@example.com", "cc": ["jo@example.com", "al@example.org"], "n": 3}
    found = content.scan(SCANNER, value, "arguments")
    placeholders, counts = Placeholders(), {}
    redacted = content.redacted(value, found, {"email"}, "arguments", placeholders, counts)
    assert redacted == {"to": "[EMAIL_1]", "cc": ["[EMAIL_1]", "[EMAIL_2]"], "n": 3}
    assert counts == {"email": 3}
    assert content.restored(redacted, placeholders) == value


def test_too_deep_a_value_is_refused_not_skipped() -> None:
    deep: object = "jo@example.com"
    for _ in range(content.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(content.TooDeep):
        content.scan(SCANNER, deep, "result")

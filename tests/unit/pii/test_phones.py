"""Phone numbers: international, 00 prefix, NANP shapes, trunk-prefix national formats, context words."""

from __future__ import annotations

import pytest

from proxy.pii.digits import digit_values


def phones(text: str) -> list[str]:
    return [text[m.start : m.end] for m in digit_values(text) if m.type == "phone"]


@pytest.mark.parametrize(
    "written",
    ["+44 20 7946 0958", "+44 (0) 20 7946 0958", "+1 (415) 555-2671", "+33 6 12 34 56 78", "+4930123456",
     "0044 20 7946 0958", "(415) 555-2671", "415-555-2671", "415.555.2671", "1-800-555-0199", "020 7946 0958",
     "030 12345678", "06 12 34 56 78", "0412 345 678", "07700 900123", "(02) 1234 5678"],
)
def test_written_without_a_keyword(written: str) -> None:
    assert phones(f"numbers: {written}.") == [written]


@pytest.mark.parametrize(
    ("text", "value"),
    [("call me on 4155552671", "4155552671"), ("Tel. 612 34 56 78", "612 34 56 78"),
     ("WhatsApp 98765 43210", "98765 43210"), ("mobile: 030/1234567", "030/1234567")],
)
def test_ambiguous_digits_next_to_a_phone_word(text: str, value: str) -> None:
    assert phones(text) == [value]


@pytest.mark.parametrize(
    "text",
    ["98765 43210", "order number 020 7946 0958", "total 415 555 2671 USD", "price: 1 299 000", "on 2024-06-22 10:05",
     "28/02/2021 16:29", "SKU 415-555-2671", "version 0.10.21411", "mobile +44 20 7946 0958 about the 96 189 656"],
)
def test_not_phones(text: str) -> None:
    assert phones(text) in ([], ["+44 20 7946 0958"])

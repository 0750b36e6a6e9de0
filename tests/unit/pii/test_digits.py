"""Digit-run values: any separator and grouping, validators, context words, and what is not a value."""

from __future__ import annotations

import pytest

from proxy.pii.digits import digit_values


def found(text: str) -> list[tuple[str, str]]:
    return [(m.type, text[m.start : m.end]) for m in digit_values(text)]


@pytest.mark.parametrize(
    "written",
    ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "4111.1111.1111.1111", "4111/1111/1111/1111",
     "4111  1111  1111  1111", "4111 - 1111 - 1111 - 1111", "4111 1111\n1111 1111", "41 11 11 11 11 11 11 11",
     "411 111 111 111 111 1", "3782 822463 10005", "6011\t0009\t9013\t9424"],
)
def test_cards_in_any_grouping(written: str) -> None:
    assert found(f"card: {written} thanks") == [("card", written)]


@pytest.mark.parametrize(
    "text",
    ["4111 1111 1111 1112", "Order #4111111111111111", "tracking no. 4111 1111 1111 1111", "5.0 10.0.15990.1414",
     "USPS 9400 6527 4620 9302 3557 75", "INV-2024-4111111111111111", "id 4111111111111111abc"],
)
def test_not_cards(text: str) -> None:
    assert [t for t, _ in found(text)] != ["card"]


def test_a_card_word_outweighs_an_order_label() -> None:
    assert found("order 12, paid by card 4111111111111111") == [("card", "4111111111111111")]


@pytest.mark.parametrize(
    ("text", "value"),
    [("123-45-6789", "123-45-6789"), ("SSN: 123456789", "123456789"), ("my ssn is 123 45 6789", "123 45 6789"),
     ("the famous 078-05-1120", "078-05-1120"),
     ("social security no. 123.45.6789", "123.45.6789"), ("123456789 (SSN)", "123456789")],
)
def test_ssns_dashed_or_next_to_their_word(text: str, value: str) -> None:
    assert found(text) == [("ssn", value)]


@pytest.mark.parametrize("text", ["ref 123456789", "123 45 6789", "666-12-3456", "SSN 912-05-1120", "12 345 67 89",
                                  "000-12-3456", "123-00-4567", "123-45-0000"])
def test_not_ssns(text: str) -> None:
    assert [t for t, _ in found(text)] != ["ssn"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("IBAN DE89 3704 0044 0532 0130 00 today", "DE89 3704 0044 0532 0130 00"),
     ("to DE89-3704-0044-0532-0130-00.", "DE89-3704-0044-0532-0130-00"),
     ("gb29 nwbk 6016 1331 9268 19", "gb29 nwbk 6016 1331 9268 19"),
     ("GB29NWBK60161331926819", "GB29NWBK60161331926819"),
     ("DE89 3704 0044\n0532 0130 00", "DE89 3704 0044\n0532 0130 00")],
)
def test_ibans_spaced_dashed_wrapped_or_compact(text: str, value: str) -> None:
    assert found(text) == [("iban", value)]


@pytest.mark.parametrize(
    ("text", "ips"),
    [("from 203.0.113.7 ok", ["203.0.113.7"]), ("version 1.2.3.4", []), ("image app:6.4.9.11", []),
     ("dns 8.8.8.8", ["8.8.8.8"]), ("OID 1.3.6.1.4.1.311", []), ("256.1.1.1", [])],
)
def test_ipv4_but_not_versions(text: str, ips: list[str]) -> None:
    assert [v for t, v in found(text) if t == "ip"] == ips


def test_dates_and_timestamps_are_not_values() -> None:
    for text in ["2024-05-01T10:22:31Z", "due 03.04.2024", "1718041234567", "20240501103000", "08/08/2022 00:30"]:
        assert found(text) == [], text

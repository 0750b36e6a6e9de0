"""Validators written for speed answer exactly as the references they replace (stdnum, ipaddress)."""

from __future__ import annotations

import ipaddress
import random

from stdnum import luhn

from proxy.pii.validators import is_card, is_ip, luhn_valid


def test_luhn_agrees_with_stdnum() -> None:
    rng = random.Random(3)
    numbers = ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19))) for _ in range(20000)]
    for number in [*numbers, "", "12a4", "١٢٣", " 123", "4111111111111111", "4111111111111112"]:
        assert luhn_valid(number) == bool(luhn.is_valid(number)), number
    assert is_card("4111 1111 1111 1111") and not is_card("4111 1111 1111 1112")


def test_ipv4_check_agrees_with_ipaddress() -> None:
    def reference(value: str) -> bool:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True

    octets = ["0", "00", "01", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256", "300", "999",
              "0255", "", "1a", "٣", " 1"]
    rng = random.Random(5)
    for _ in range(20000):
        value = ".".join(rng.choice(octets) for _ in range(rng.choice([3, 4, 4, 4, 5])))
        assert is_ip(value) == reference(value), value
    assert is_ip("2001:db8::1") and not is_ip("1.2.3")

"""Validators written for speed answer exactly as the references they replace (stdnum, ipaddress)."""

from __future__ import annotations

import ipaddress
import random

from stdnum import iban, luhn

from proxy.pii.validators import is_card, is_iban, is_ip, luhn_valid


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


def test_iban_check_agrees_with_stdnum() -> None:
    valid = ["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "FR14 2004 1010 0505 0001 3M02 606",
             "NL91ABNA0417164300", "ch9300762011623852957", "BE71-0961-2345-6769", "IT60X0542811101000000123456",
             "ES91 2100 0418 4502 0005 1332", "NO93 8601 1117 947", "ME25 5050 0001 2345 6789 51"]
    rng = random.Random(11)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz -.\t\u00e9\u0663"
    candidates = ["GB" + "1" * 5000, "DE89 3704 0044 0532 0130 00 00 00 00 00"]
    candidates += ["", " ", "DE", "DE89", "de89 3704", "GB82 WEST", "\u0663\u0663", "DE89\t3704 0044 0532 0130 00"]
    for good in valid:
        candidates.append(good)
        # The scanner's shrinking candidates, and one-character edits (almost all fail the checksum).
        candidates.extend(good[:cut] for cut in range(len(good)))
        for _ in range(300):
            i = rng.randrange(len(good))
            candidates.append(good[:i] + rng.choice(alphabet) + good[i + 1:])
    for _ in range(5000):
        candidates.append(rng.choice(["DE", "GB", "FR", "NL", "XX", "de"]) + "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 30))))
    # Checksums made right, so the per-country structure and stdnum's country modules (be, es, me, no) decide.
    for _ in range(3000):
        country, length = rng.choice([("ES", 20), ("NO", 11), ("BE", 12), ("ME", 18), ("DE", 18), ("GB", 18),
                                      ("GB", 17), ("XX", 16)])
        bban = "".join(rng.choice("0123456789" if rng.random() < 0.9 else "ABCZ") for _ in range(length))
        candidates.append(country + iban.calc_check_digits(country + "00" + bban) + bban)
    for value in candidates:
        assert is_iban(value) == bool(iban.is_valid(value)), value
    assert all(is_iban(good) for good in valid)

"""One case per evasion class (a text, the type in it, and the value as written and in canonical form),
and the check that a text no longer carries a value in any of its forms; for tests through the proxy."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

import orjson

from proxy.pii.normalise import normalise

EMAIL = "jane.doe@example.org"
CARD = "4111111111111111"
PHONE = "+44 20 7946 0958"
SSN = "123456789"
IBAN = "DE89370400440532013000"
GITHUB = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
BASIC = base64.b64encode(b"deploy:Tr0ub4dor3x!").decode()


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    type: str
    written: str
    canonical: str

    @property
    def digits(self) -> bool:
        return self.type in ("card", "phone", "ssn")


def _case(name: str, template: str, type_: str, written: str, canonical: str) -> Case:
    return Case(name, template.replace("{}", written), type_, written, canonical)


CASES = [
    _case("fullwidth", "my card {} ok", "card", "４１１１ １１１１ １１１１ １１１１", CARD),
    _case("zero_width", "mail {} today", "email", "jane\u200b.doe@exa\u200cmple.org", EMAIL),
    _case("soft_hyphen", "write to {} now", "email", "jane.d\u00adoe@example.\u00adorg", EMAIL),
    _case("bidi_marks", "token {} here", "github_token", GITHUB[:10] + "\u200e" + GITHUB[10:], GITHUB),
    _case("nbsp", "call {} please", "phone", "+44\u00a020\u20097946\u202f0958", "442079460958"),
    _case("card_dots", "card {} ok", "card", "4111.1111.1111.1111", CARD),
    _case("card_slashes", "card {} ok", "card", "4111/1111/1111/1111", CARD),
    _case("card_double_spaces", "card {} ok", "card", "4111  1111  1111  1111", CARD),
    _case("card_line_break", "card {} ok", "card", "4111 1111\n1111 1111", CARD),
    _case("unicode_dashes", "ssn {} on file", "ssn", "123\u201345\u20136789", SSN),
    _case("arabic_digits", "ssn {} on file", "ssn", "١٢٣-٤٥-٦٧٨٩", SSN),
    _case("ssn_no_dashes", "my SSN is {} ok", "ssn", SSN, SSN),
    _case("national_phone", "call me on {} tomorrow", "phone", "020 7946 0958", "2079460958"),
    _case("international_prefix", "phone {} please", "phone", "0044 20 7946 0958", "442079460958"),
    _case("iban_dashes", "iban {} paid", "iban", "DE89-3704-0044-0532-0130-00", IBAN),
    _case("iban_spaces_lower", "iban {} paid", "iban", "de89 3704 0044 0532 0130 00", IBAN.lower()),
    _case("short_ipv6", "the server listens on {} now", "ip", "fe80::1", "fe80::1"),
    _case("key_wrapped", "export T={} done", "github_token", GITHUB[:20] + "\n" + GITHUB[20:], GITHUB),
    _case("key_spaced", "export T={} done", "github_token", GITHUB[:15] + "  " + GITHUB[15:], GITHUB),
    _case("auth_basic", "curl -H 'Authorization: Basic {}' x", "auth_header", BASIC, BASIC),
    _case("json_escape", '{"to": "{}"}', "email", "jane.doe\\u0040example.org", EMAIL),
    _case("percent", "GET /?q={}&x=1", "email", "jane.doe%40example.org", EMAIL),
    _case("html_entity", "<p>{}</p>", "email", "jane.doe&#64;example&#x2e;org", EMAIL),
    _case("base64", "blob {} end", "email", base64.b64encode(EMAIL.encode()).decode(), EMAIL),
]


def carries(text: str, case: Case) -> bool:
    """Whether `text` still holds the case's value: as written, or once normalised (separators dropped
    for values written in digits)."""
    if case.written in text:
        return True
    normal = normalise(text).text
    if case.digits:
        return case.canonical in re.sub(r"[^0-9]", "", normal)
    if case.type == "iban":
        return case.canonical.upper() in re.sub(r"[^0-9A-Za-z]", "", normal).upper()
    return case.canonical in normal.replace("\n", "").replace(" ", "")


def policy_dir(tmp_path: Path, **pii: object) -> Path:
    """A copy of the shipped policies whose research team redacts every PII type (secrets and cards stay
    blocked in requests, and are then redacted in answers); `pii` overrides data.pii keys."""
    source = Path(__file__).resolve().parents[2] / "policies"
    target = tmp_path / "policies"
    for path in source.rglob("*"):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(path.read_bytes())
    data_file = target / "data" / "pii.json"
    data = orjson.loads(data_file.read_bytes())
    data["pii"]["teams"]["research"] = {"redact": ["email", "phone", "ssn", "iban", "ip"]}
    data["pii"].update(pii)
    data_file.write_bytes(orjson.dumps(data))
    # No per-user budget: a generated `user` value is the end user, and these tests are about PII.
    budgets_file = target / "data" / "budgets.json"
    budgets = orjson.loads(budgets_file.read_bytes())
    budgets["budgets"]["scopes"].pop("user", None)
    budgets_file.write_bytes(orjson.dumps(budgets))
    return target

"""Scanner behaviour: spans, overlap rules, custom types, and linear time on adversarial input."""

from __future__ import annotations

import itertools
import time

import pytest

from proxy.pii import CustomType, Match, Scanner

SCANNER = Scanner()


def found(text: str, scanner: Scanner = SCANNER) -> list[tuple[str, str]]:
    return [(m.type, text[m.start : m.end]) for m in scanner.find(text)]


def test_finds_each_type_at_its_exact_span() -> None:
    text = "mail bob@example.com, card 4111-1111-1111-1111, ip 203.0.113.9, token ghp_" + "a1B2" * 9
    assert found(text) == [
        ("email", "bob@example.com"),
        ("card", "4111-1111-1111-1111"),
        ("ip", "203.0.113.9"),
        ("github_token", "ghp_" + "a1B2" * 9),
    ]


def test_matches_are_sorted_and_never_overlap() -> None:
    text = "postgres://admin:pa55word@db.example.com/x and call +44 20 7946 0958, 4111111111111111"
    matches = SCANNER.find(text)
    assert matches == sorted(matches, key=lambda m: m.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(matches))


def test_secret_wins_over_overlapping_pii() -> None:
    # "pa55word@db.example.com" is also an email; the credentials are the finding.
    assert found("postgres://admin:pa55word@db.example.com/x") == [("url_credentials", "admin:pa55word")]


def test_specific_secret_wins_over_password_assignment_of_same_value() -> None:
    key = "sk_live_" + "Ab1" * 10
    assert found(f"api_key={key}") == [("stripe_key", key)]


@pytest.mark.parametrize(
    "text",
    ["666-12-3456", "000-12-3456", "912-34-5678", "123-00-4567", "123-45-0000", "4111 1111 1111 1112"],
)
def test_rejects_invalid_ssn_and_luhn_failures(text: str) -> None:
    assert found(text) == []


def test_ssn_without_dashes_needs_a_keyword() -> None:
    assert found("ref 123456789") == []
    assert found("SSN: 123456789") == [("ssn", "123456789")]


def test_iban_in_any_case_spaced_or_not() -> None:
    assert found("iban de89370400440532013000.") == [("iban", "de89370400440532013000")]
    assert found("to GB29 NWBK 6016 1331 9268 19 now") == [("iban", "GB29 NWBK 6016 1331 9268 19")]
    assert found("to GB29 NWBK 6016 1331 9268 18 now") == []


def test_jwt_needs_a_header_with_alg() -> None:
    good = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    no_alg = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    assert found(f"Bearer {good}") == [("jwt", good)]
    assert found(f"token {no_alg}") == []
    # After "Bearer" it is still a credential, of the generic kind.
    assert found(f"Bearer {no_alg}") == [("auth_header", no_alg)]


def test_private_key_block_is_one_finding_and_public_key_is_none() -> None:
    block = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
    assert found(f"key:\n{block}\nbye") == [("private_key", block)]
    assert found(block.replace("OPENSSH PRIVATE", "PUBLIC")) == []


def test_aws_secret_needs_aws_keyword() -> None:
    value = "q8Zr0Tm3XvB1nL5kW9yH2cJ/sD4fG6aP0eR3tY1u"
    assert found(f"aws_secret_access_key = {value}") == [("aws_secret_key", value)]
    assert [t for t, _ in found(f"secret_key = {value}")] == ["password"]


def test_password_value_is_the_finding_and_placeholders_are_not() -> None:
    assert found('{"password": "hunter2!x"}') == [("password", "hunter2!x")]
    assert found("password: ${DB_PASSWORD}") == []
    assert found("password=[PASSWORD_1]") == []


def test_custom_type_with_stdnum_validator() -> None:
    scanner = Scanner([CustomType("nl_bsn", r"\b[0-9]{9}\b", "nl.bsn"), CustomType("emp", r"EMP-(?P<value>\d{5})")])
    assert found("bsn 111222333 and 111222334, badge EMP-12345", scanner) == [
        ("nl_bsn", "111222333"),
        ("emp", "12345"),
    ]
    assert scanner.categories["emp"] == "pii"


def test_custom_luhn_validator_and_unknown_validator_fails_at_construction() -> None:
    scanner = Scanner([CustomType("loyalty", r"LY[0-9]{8}", "luhn")])
    assert [m.type for m in scanner.find("LY79927398 LY79927397")] == ["loyalty"]
    with pytest.raises(ValueError, match="no_such"):
        Scanner([CustomType("x", "x", "no_such")])
    with pytest.raises(ValueError, match="bad pattern"):
        Scanner([CustomType("x", "(")])


@pytest.mark.parametrize(
    "text",
    [
        "1" * 100_000,
        "a@" * 50_000,
        "1 " * 50_000,
        "1-" * 50_000,
        ":a" * 50_000,
        "::" * 50_000,
        "eyJ" * 33_000,
        "password=" * 11_000,
        "+1" * 50_000,
        "-----BEGIN PRIVATE KEY-----" + "A" * 100_000,
        "aA1." * 25_000,
    ],
    ids=lambda t: repr(t[:12]),
)
def test_adversarial_100kb_input_finishes_quickly(text: str) -> None:
    # CPU time, not wall time: on a busy machine the scan may wait for a core, which is not its cost.
    start = time.process_time()
    SCANNER.find(text)
    assert time.process_time() - start < 0.5


def test_time_grows_linearly_with_size() -> None:
    chunk = "Order 1234, mail a.b@example.org, call +1 415 555 2671 or see v1.2.3 at 10:30. " * 4

    def cost(text: str) -> float:
        best = float("inf")
        for _ in range(7):  # best of several: the machine may be busy
            start = time.perf_counter()
            SCANNER.find(text)
            best = min(best, time.perf_counter() - start)
        return best

    small, large = cost(chunk * 4), cost(chunk * 64)
    assert large < small * 16 * 2.5


def test_match_value_is_not_stored() -> None:
    assert not hasattr(Match("email", 0, 3), "value")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", [("auth_header", "dXNlcjpwYXNzd29yZA==")]),
        ("-H 'Authorization: Bearer abcDEF123456ghiJKL789'", [("auth_header", "abcDEF123456ghiJKL789")]),
        ('{"headers": {"authorization": "Token 9f8e7d6c5b4a392817"}}', [("auth_header", "9f8e7d6c5b4a392817")]),
        ("Authorization: Bearer <token>", []),
        ("Authorization: Bearer $TOKEN", []),
        ("Authorization: Bearer YOUR_API_TOKEN", []),
        ("bearer bonds pay interest", []),
        ("curl -u admin:hunter2x https://ci.example.com", [("url_credentials", "admin:hunter2x")]),
    ],
)
def test_http_credentials_in_header_forms(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    ["git@github.com:org/repo.git", "ssh git@github.com", "ssh -p 2222 deploy@bastion.example.com",
     "scp file.txt ops@build.example.com:/tmp", "rsync -av ./ backup@nas.example.org:/srv"],
)
def test_ssh_logins_are_not_addresses(text: str) -> None:
    assert found(text) == []


def test_an_address_followed_by_a_colon_and_space_is_still_one() -> None:
    assert found("write to jane@example.org: she knows") == [("email", "jane@example.org")]


def test_an_ipv6_address_with_six_colons_is_found_whole_and_a_text_of_timestamps_is_not_searched() -> None:
    text = "the server listens on 1:2:3:4:5:6:192.0.2.1 today"
    assert found(text) == [("ip", "1:2:3:4:5:6:192.0.2.1")]
    assert found('{"at": "2024-05-01T10:22:31Z", "next": "10:30:00", "ok": true}') == []

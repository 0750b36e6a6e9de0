"""Stream redaction and restore are correct at every chunk boundary."""

from __future__ import annotations

import itertools

import pytest

from proxy.pii import Placeholders, Scanner, StreamRedactor, StreamRestorer, redact, restore

SCANNER = Scanner()
ALL = frozenset(SCANNER.categories)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0t"] * 8)
    + ("\n-----END RSA PRIVATE KEY-----")
)
SAMPLES = [
    "Pay with 4111 1111 1111 1111 today.",
    "Write to alice.smith@example.co.uk soon",
    "key sk-ant-api03-" + "Ab3_" * 20 + "AA done",
    "ip 2001:db8::8a2e:370:7334 and iban DE89 3704 0044 0532 0130 00.",
]


def stream(text: str, cuts: list[int], window: int = 64) -> str:
    redactor = StreamRedactor(SCANNER, ALL, Placeholders(), window=window)
    bounds = [0, *cuts, len(text)]
    out = "".join(redactor.feed(text[a:b]) for a, b in itertools.pairwise(bounds))
    return out + redactor.flush()


def whole(text: str) -> str:
    return redact(text, SCANNER.find(text), ALL, Placeholders())


# One per evasion class: the stream must hold each one as long as it may still grow.
EVASIONS = [
    "card ４１１１ １１１１ １１１１ １１１１ ok",
    "mail jo\u200bhn.d\u00adoe@exam\u200dple.com ok",
    "pay 4111\u00a01111\u20091111\u202f1111 now",
    "card 4111.1111.1111.1111 or 4111/1111/1111/1111 now",
    "ssn ١٢٣-٤٥-٦٧٨٩ noted",
    "token ghp_aB3dE5fG7hJ9kL1mN3pQ5r\nS7tU9vW1xY3z5A for ci",
    'args {"to": "jane.doe\\u0040example.org"} sent',
    "GET /a?q=jane.doe%40example.org&x=1 HTTP/1.1",
    "<p>jane.doe&#64;example.org</p> end",
    "blob amFuZS5kb2VAZXhhbXBsZS5vcmc= end",
    "Authorization: Basic dXNlcjpwYXNzd29yZA== end",
    "my SSN: 123 45 6789 ok",
    "call me on 020 7946 0958 tomorrow",
    "iban DE89-3704-0044-0532-0130-00 paid",
    "server fe80::1 is up",
]


@pytest.mark.parametrize("text", SAMPLES + EVASIONS)
def test_every_single_split_point_gives_the_whole_text_result(text: str) -> None:
    expected = whole(text)
    assert "[" in expected
    for cut in range(1, len(text)):
        assert stream(text, [cut]) == expected, cut


def test_card_split_over_three_deltas_in_a_long_stream() -> None:
    text = "x " * 200 + "card 4111 1111 1111 1111 ok " + "y " * 200
    start = text.index("4111")
    for a in range(start, start + 19, 3):
        assert stream(text, [a, a + 5, a + 11]) == whole(text)
        assert "4111" not in stream(text, [a, a + 5, a + 11])


def test_one_character_deltas_never_leak_and_emit_before_the_end() -> None:
    text = ("Hello there, my email is bob@example.com and more words follow here. " * 10) + PEM + " done"
    redactor = StreamRedactor(SCANNER, ALL, Placeholders(), window=64)
    early = "".join(redactor.feed(ch) for ch in text)
    out = early + redactor.flush()
    assert out == whole(text)
    assert "bob@example.com" not in out and "MIIE" not in out
    assert len(early) > len(text) // 2


def test_output_lags_input_by_at_most_the_window_in_plain_prose() -> None:
    redactor = StreamRedactor(SCANNER, ALL, Placeholders(), window=64)
    sent = received = 0
    for _ in range(300):
        received += len("word ")
        sent += len(redactor.feed("word "))
        assert received - sent <= 64 + len("word ") * 2


def test_cap_releases_an_unterminated_private_key_redacted() -> None:
    redactor = StreamRedactor(SCANNER, ALL, Placeholders(), window=64, max_hold=1024)
    head = "-----BEGIN PRIVATE KEY-----\n"
    out = redactor.feed(head) + "".join(redactor.feed("QUJD" * 16 + "\n") for _ in range(40))
    assert out.startswith("[PRIVATE_KEY_1]") and "QUJD" not in out


def test_restorer_handles_placeholders_split_anywhere() -> None:
    book = Placeholders()
    redacted = redact(SAMPLES[1], SCANNER.find(SAMPLES[1]), ALL, book)
    answer = f"Sure, I will write to {redacted.split()[2]} today [not a placeholder]."
    expected = restore(answer, book)
    assert "alice.smith@example.co.uk" in expected
    for cut in range(1, len(answer)):
        restorer = StreamRestorer(book)
        assert restorer.feed(answer[:cut]) + restorer.feed(answer[cut:]) + restorer.flush() == expected


def test_restorer_handles_keyed_placeholders_split_anywhere() -> None:
    book = Placeholders(key=b"k")
    token = book.placeholder("email", "a@example.com")
    answer = f"reply to {token}."
    for cut in range(1, len(answer)):
        restorer = StreamRestorer(book)
        assert restorer.feed(answer[:cut]) + restorer.feed(answer[cut:]) + restorer.flush() == "reply to a@example.com."


def test_prose_is_released_word_by_word_so_the_first_token_is_not_delayed() -> None:
    redactor = StreamRedactor(SCANNER, ALL, Placeholders())
    assert redactor.feed("Hello") == ""  # a word still being written may become a key
    assert redactor.feed(" there,") == "Hello "
    assert redactor.feed(" how are you") == "there, how are "


def test_spaced_numbers_and_open_quoted_secrets_are_held_until_they_cannot_grow() -> None:
    for text in ('Card: 4111 1111 1111 1111. Thanks', 'call +44 20 7946 0958 now',
                 'config password = "correct horse battery staple" end', 'iban DE89 3704 0044 0532 0130 00 ok'):
        expected = whole(text)
        assert expected != text
        for size in (1, 2, 3, 5, 7):
            assert stream(text, list(range(size, len(text), size)), window=256) == expected, (text, size)


def test_the_quoted_secret_gate_never_hides_a_match() -> None:
    import random

    from proxy.pii.stream import _OPEN_QUOTED_SECRET, _may_open_quoted_secret

    pieces = ["password", "Token", "api_key", "secret", " ", "  ", "\n", "=", ":", '"', "'", "x", "don't", "é", "\t"]
    rng = random.Random(7)
    matched = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        if _OPEN_QUOTED_SECRET.search(text):
            matched += 1
            assert _may_open_quoted_secret(text), repr(text)
    assert matched > 200  # the fuzzing reaches the pattern often enough to mean something

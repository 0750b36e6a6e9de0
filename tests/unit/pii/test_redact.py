"""Placeholders: numbering, pseudonyms, selective redaction and restore."""

from __future__ import annotations

from proxy.pii import Placeholders, Scanner, redact, restore

SCANNER = Scanner()
TEXT = "Mail a@example.com, then b@example.com, then a@example.com again; card 4111 1111 1111 1111."


def test_same_value_same_placeholder_and_counters_per_type() -> None:
    book = Placeholders()
    out = redact(TEXT, SCANNER.find(TEXT), {"email", "card"}, book)
    assert out == "Mail [EMAIL_1], then [EMAIL_2], then [EMAIL_1] again; card [CARD_1]."


def test_only_listed_types_are_redacted() -> None:
    out = redact(TEXT, SCANNER.find(TEXT), {"card"}, Placeholders())
    assert "a@example.com" in out and "[CARD_1]" in out and "4111" not in out


def test_restore_round_trip() -> None:
    book = Placeholders()
    redacted = redact(TEXT, SCANNER.find(TEXT), {"email", "card"}, book)
    assert restore(redacted, book) == TEXT
    assert restore("I wrote to [EMAIL_2] and [EMAIL_9].", book) == "I wrote to b@example.com and [EMAIL_9]."


def test_pseudonyms_are_stable_across_requests_with_the_same_key_only() -> None:
    first = redact(TEXT, SCANNER.find(TEXT), {"email"}, Placeholders(key=b"k1"))
    second = redact(TEXT, SCANNER.find(TEXT), {"email"}, Placeholders(key=b"k1"))
    other = redact(TEXT, SCANNER.find(TEXT), {"email"}, Placeholders(key=b"k2"))
    assert first == second != other
    assert first.startswith("Mail [EMAIL_") and len(first.split("]")[0]) == len("Mail [EMAIL_") + 8


def test_pseudonym_restores_within_its_request() -> None:
    book = Placeholders(key=b"secret-key")
    redacted = redact(TEXT, SCANNER.find(TEXT), {"email", "card"}, book)
    assert restore(redacted, book) == TEXT
    assert set(book.originals.values()) == {"a@example.com", "b@example.com", "4111 1111 1111 1111"}


def test_custom_type_names_become_placeholder_labels() -> None:
    book = Placeholders()
    assert book.placeholder("de.idnr", "12345678901") == "[DE_IDNR_1]"
    assert book.placeholder("openai_key", "sk-x") == "[OPENAI_KEY_1]"

"""scan_texts: each field alone, and the parts of one message joined."""

from __future__ import annotations

from proxy.pii import Scanner, scan_texts

SCANNER = Scanner()


def spans(slots: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    texts = dict(slots)
    found = scan_texts(SCANNER, [(path, text, None, None) for path, text in slots])
    return {path: [(m.type, texts[path][m.start : m.end]) for m in matches] for path, matches in found.items()}


def test_fields_are_scanned_on_their_own() -> None:
    assert spans([("user", "jane.doe@example.com"), ("messages[0].content", "hello")]) == {
        "user": [("email", "jane.doe@example.com")]}


def test_a_value_split_across_adjacent_parts_is_found_in_each() -> None:
    found = spans([("messages[0].content[0].text", "my card is 4111 1111"),
                   ("messages[0].content[1].text", " 1111 1111 thanks")])
    assert found == {"messages[0].content[0].text": [("card", "4111 1111")],
                     "messages[0].content[1].text": [("card", " 1111 1111")]}


def test_a_word_in_one_part_gives_context_to_the_next() -> None:
    found = spans([("input[1].content[0].text", "SSN:"), ("input[1].content[1].text", "123456789")])
    assert found == {"input[1].content[1].text": [("ssn", "123456789")]}


def test_parts_of_different_messages_are_not_joined() -> None:
    assert spans([("messages[0].content[0].text", "john@exa"), ("messages[1].content[0].text", "mple.com")]) == {}


def test_a_part_keeps_what_it_found_alone() -> None:
    found = spans([("messages[0].content[0].text", "mail a@example.org"), ("messages[0].content[1].text", "call")])
    assert found == {"messages[0].content[0].text": [("email", "a@example.org")]}

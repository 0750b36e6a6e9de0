"""Known-prefix tokens with whitespace inside: joined while the join can still be a token, no further."""

from __future__ import annotations

import pytest

from proxy.pii import Scanner
from proxy.pii.joined import open_token_start

SCANNER = Scanner()
GITHUB = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
OPENAI = "sk-proj-" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef6"
AWS = "AKIA" + "Z7QW3ERT5YUI2OPA"
GOOGLE = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"


def found(text: str) -> list[tuple[str, str]]:
    return [(m.type, text[m.start : m.end]) for m in SCANNER.find(text)]


@pytest.mark.parametrize("gap", [" ", "  ", "\n", "\r\n", "\n    ", " \n "])
@pytest.mark.parametrize("token", [GITHUB, OPENAI, AWS, GOOGLE])
def test_a_key_broken_anywhere_is_found_whole(token: str, gap: str) -> None:
    for cut in (len(token) // 3, len(token) // 2, len(token) - 5):
        written = token[:cut] + gap + token[cut:]
        assert [v for _, v in found(f"key {written} then words")] == [written], cut


def test_the_words_after_a_key_are_not_taken_in() -> None:
    assert found(f"use {GITHUB} to deploy") == [("github_token", GITHUB)]
    assert found(f"{OPENAI} is mine") == [("openai_key", OPENAI)]


def test_a_long_key_split_after_its_minimum_length_is_found_to_its_end() -> None:
    written = OPENAI[:45] + " " + OPENAI[45:]
    assert found(written) == [("openai_key", written)]


@pytest.mark.parametrize(
    ("text", "held"),
    [(f"x {GITHUB[:20]}", True), (f"x {GITHUB[:20]} {GITHUB[20:30]}", True), (f"x {GITHUB} ", True),
     (f"x {GITHUB} to", True), (f"x {GITHUB} to deploy", False), ("x ghp is not a prefix", False)],
)
def test_a_stream_holds_a_prefixed_token_while_it_may_still_join(text: str, held: bool) -> None:
    assert (open_token_start(text, 0) == 2) is held

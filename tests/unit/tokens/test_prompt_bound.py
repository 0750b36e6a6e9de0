"""The prompt bound: never below the exact estimate, for every endpoint and encoding, on varied text."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from proxy.tokens import TokenEstimator, Vocab
from proxy.tokens.estimate import utf8_length

TEXTS = [
    "",
    "hello",
    "The quarterly report covers revenue, churn and hiring plans across all regions. " * 30,
    "naïve café — “quoted” résumé, 東京都 千代田区, emoji 🙂🚀, ελληνικά, русский текст",
    "    indented\n\t\tcode();\n" * 20,
    "<|endoftext|> typed by a user",
    "a" * 5000,  # one long run: a few tokens exactly, 5,000 bounded
    "".join(chr(c) for c in range(0x20, 0x2FF)),
]


def rng_texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abc XYZ 0123 .,;!?\n\té漢🙂ß"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400))) for _ in range(n)]


def bodies(text: str) -> dict[str, dict[str, Any]]:
    return {
        "chat.completions": {"messages": [{"role": "system", "content": "terse"},
                                          {"role": "user", "name": "ann", "content": text}],
                             "tools": [{"type": "function", "function": {"name": "f", "description": text[:50],
                                                                          "parameters": {"type": "object"}}}]},
        "responses": {"input": [{"role": "user", "content": [{"type": "input_text", "text": text}]}],
                      "instructions": text[:30]},
        "completions": {"prompt": [text, text[:10]], "suffix": text[:5]},
        "embeddings": {"input": [text, "second"]},
        "messages": {"system": "terse", "messages": [{"role": "user", "content": text}]},
    }


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base", "claude-3"])
def test_the_bound_is_never_below_the_exact_estimate(estimator: TokenEstimator, encoding: str) -> None:
    endpoints = ["messages"] if encoding.startswith("claude") else [
        "chat.completions", "responses", "completions", "embeddings"]
    for text in TEXTS + rng_texts(7, 60):
        for endpoint in endpoints:
            body = bodies(text)[endpoint]
            exact = estimator.prompt(endpoint, encoding, body)
            upper = estimator.prompt(endpoint, encoding, body, bound=True)
            assert upper >= exact, (endpoint, encoding, text[:40])


def test_the_bound_of_a_text_is_its_utf8_length(estimator: TokenEstimator) -> None:
    assert utf8_length("abc") == 3 and utf8_length("é🙂") == 2 + 4
    prose = TEXTS[2]
    assert estimator.prompt("embeddings", "o200k_base", {"input": prose}, bound=True) == len(prose)
    assert estimator.prompt("embeddings", "o200k_base", {"input": prose}) < len(prose) // 3


def test_bound_prompts_build_no_tables_until_a_count_is_needed() -> None:
    vocab = Vocab()  # not the session's: its tables are built already
    estimator = TokenEstimator(vocab)

    for endpoint, body in bodies("hello there").items():
        encoding = "claude-3" if endpoint == "messages" else "o200k_base"
        assert estimator.prompt(endpoint, encoding, body, bound=True) > 0
    assert not vocab.is_loaded("o200k_base")

    asyncio.run(estimator.ready("o200k_base"))

    assert vocab.is_loaded("o200k_base") and not vocab.is_loaded("cl100k_base")
    assert estimator.output("o200k_base", ["hello", " world"]) == 2

from __future__ import annotations

import pytest

from proxy.tokens import TokenEstimator


def test_embeddings_string_and_list_of_strings(estimator: TokenEstimator) -> None:
    one = estimator.text("cl100k_base", "The food was delicious.")

    assert estimator.embeddings("cl100k_base", {"input": "The food was delicious."}) == one
    assert estimator.embeddings("cl100k_base", {"input": ["The food was delicious."] * 3}) == 3 * one


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ([1, 2, 3, 4], 4),
        ([[1, 2, 3], [4, 5]], 5),
        ([], 0),
        ([[]], 0),
    ],
)
def test_embeddings_token_arrays_count_by_length(estimator: TokenEstimator, value: object, tokens: int) -> None:
    assert estimator.embeddings("cl100k_base", {"input": value}) == tokens


def test_embeddings_special_token_strings_are_ordinary_text(estimator: TokenEstimator) -> None:
    assert estimator.embeddings("cl100k_base", {"input": "<|endoftext|>"}) > 1


def test_completions_prompt_string_list_and_suffix(estimator: TokenEstimator) -> None:
    count = estimator.counter("o200k_base")

    assert estimator.completions("o200k_base", {"prompt": "Say this is a test"}) == count("Say this is a test")
    assert estimator.completions("o200k_base", {"prompt": ["a b", "c d"]}) == count("a b") + count("c d")
    assert estimator.completions("o200k_base", {"prompt": "def f(", "suffix": "return x"}) == count("def f(") + count(
        "return x"
    )


def test_missing_or_malformed_prompt_is_zero(estimator: TokenEstimator) -> None:
    assert estimator.completions("o200k_base", {}) == 0
    assert estimator.embeddings("o200k_base", {"input": {"x": 1}}) == 0

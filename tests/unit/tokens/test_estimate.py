from __future__ import annotations

from typing import Any

import pytest

from proxy.tokens import TokenEstimator, VocabError, requested_choices, requested_max_output


@pytest.mark.parametrize(
    ("body", "cap"),
    [
        ({}, None),
        ({"max_tokens": 512}, 512),
        ({"max_completion_tokens": 300}, 300),
        ({"max_output_tokens": 1000}, 1000),
        ({"max_tokens": 100, "max_completion_tokens": 400}, 400),
        ({"max_tokens": 0}, 0),
        ({"max_tokens": None}, None),
        ({"max_tokens": True}, None),
        ({"max_tokens": -5}, None),
        ({"max_tokens": "512"}, None),
    ],
)
def test_requested_max_output(body: dict[str, Any], cap: int | None) -> None:
    assert requested_max_output(body) == cap


@pytest.mark.parametrize(
    ("body", "choices"),
    [({}, 1), ({"n": 3}, 3), ({"n": 2, "best_of": 5}, 5), ({"n": 0}, 1), ({"n": True}, 1)],
)
def test_requested_choices(body: dict[str, Any], choices: int) -> None:
    assert requested_choices(body) == choices


def test_streamed_output_is_counted_on_the_joined_text(estimator: TokenEstimator) -> None:
    deltas = ["Hel", "lo, wor", "ld! antidis", "establishment", "arianism"]

    assert estimator.output("o200k_base", deltas) == estimator.text("o200k_base", "".join(deltas))
    assert estimator.output("o200k_base", deltas) < sum(estimator.text("o200k_base", d) for d in deltas)


def test_text_never_raises_on_special_token_strings(estimator: TokenEstimator) -> None:
    assert estimator.text("o200k_base", "<|endoftext|><|endofprompt|>") > 2


def test_unknown_encoding_is_a_vocab_error(estimator: TokenEstimator) -> None:
    with pytest.raises(VocabError):
        estimator.chat("r50k_base", {"messages": []})


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("chat.completions", {"messages": [{"role": "user", "content": "hi there"}]}),
        ("responses", {"input": "hi there"}),
        ("completions", {"prompt": "hi there"}),
        ("embeddings", {"input": "hi there"}),
    ],
)
def test_prompt_dispatches_on_the_config_endpoint_name(
    estimator: TokenEstimator, endpoint: str, body: dict[str, Any]
) -> None:
    method = {"chat.completions": "chat"}.get(endpoint, endpoint)

    assert estimator.prompt(endpoint, "o200k_base", body) == getattr(estimator, method)("o200k_base", body)


def test_prompt_rejects_an_unknown_endpoint(estimator: TokenEstimator) -> None:
    with pytest.raises(ValueError, match="images"):
        estimator.prompt("images", "o200k_base", {})

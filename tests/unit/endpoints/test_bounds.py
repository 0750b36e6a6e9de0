"""The request bounds: integer ranges, nesting depth, end-user ids, the worst-case output, the context window."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.apis.anthropic.messages import MESSAGES
from proxy.endpoints.base import EndpointSpec, parse_call
from proxy.endpoints.bounds import MAX_DEPTH, MAX_TOKENS, check_context, check_depth, check_end_user, integer, tokens
from proxy.endpoints.chat import CHAT
from proxy.endpoints.completions import COMPLETIONS
from proxy.endpoints.embeddings import EMBEDDINGS
from proxy.endpoints.responses import RESPONSES
from proxy.errors import BadRequest

HELLO = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(("value", "expected"), [(None, None), (1, 1), (MAX_TOKENS, MAX_TOKENS)])
def test_integers_in_range_pass(value: Any, expected: int | None) -> None:
    assert integer({"max_tokens": value}, tokens("max_tokens")) == expected


@pytest.mark.parametrize(("value", "code"), [
    (0, "integer_below_min_value"), (-1, "integer_below_min_value"), (MAX_TOKENS + 1, "integer_above_max_value"),
    (2**64 - 1, "integer_above_max_value"), (1e23, "integer_above_max_value"), (-1e23, "integer_below_min_value"),
    (1.5, "invalid_type"), (2.0, "invalid_type"), (True, "invalid_type"), ("10", "invalid_type"),
])
def test_integers_out_of_range_or_of_another_type_are_400(value: Any, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        integer({"max_tokens": value}, tokens("max_tokens"))
    assert (caught.value.param, caught.value.code) == ("max_tokens", code)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def test_depth_up_to_the_limit_passes_and_beyond_is_400_naming_the_key() -> None:
    check_depth({"messages": nested(MAX_DEPTH - 1)})
    with pytest.raises(BadRequest) as caught:
        check_depth({"model": "m", "messages": nested(MAX_DEPTH)})
    assert caught.value.param == "messages"
    with pytest.raises(BadRequest):
        check_depth({"tools": nested(5000)})  # no recursion: no RecursionError however deep


@pytest.mark.parametrize("user", ["u-42", "alice@example.com", 'quote"d', "ünïcode", "x" * 256])
def test_usable_end_user_ids_pass(user: str) -> None:
    assert check_end_user(user, "user") == user


@pytest.mark.parametrize("user", ["a\r\nb", "a b", "a|b", "a*", "x" * 257, "tab\there", "nul\x00"])
def test_end_user_ids_that_cannot_name_a_scope_are_400(user: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_end_user(user, "metadata.user_id")
    assert caught.value.param == "metadata.user_id"


@pytest.mark.parametrize(("spec", "body", "cap", "expected"), [
    (CHAT, {"messages": HELLO}, None, 4096),
    (CHAT, {"messages": HELLO, "n": 3}, None, 3 * 4096),
    (CHAT, {"messages": HELLO, "n": 3}, 2048, 3 * 2048),
    (CHAT, {"messages": HELLO, "n": 3, "max_tokens": 100}, 2048, 300),
    (CHAT, {"messages": HELLO, "max_tokens": 10, "max_completion_tokens": 500}, None, 500),
    (COMPLETIONS, {"prompt": "Hi", "n": 2, "best_of": 5, "max_tokens": 10}, None, 50),
    (RESPONSES, {"input": "Hi", "max_output_tokens": 700}, None, 700),
    (EMBEDDINGS, {"input": "Hi"}, None, 0),
    (MESSAGES, {"messages": HELLO, "max_tokens": 64}, 32, 32),
])
def test_worst_case_output_is_choices_times_the_cap(spec: EndpointSpec, body: dict[str, Any], cap: int | None,
                                                    expected: int) -> None:
    call = parse_call(spec, {"model": "m", **body})
    assert call.worst_case_output(4096, cap) == expected


def test_context_overflow_is_one_clear_400_in_each_api() -> None:
    check_context("openai", 128_000, 128_000)
    with pytest.raises(BadRequest) as openai_style:
        check_context("openai", 128_001, 128_000)
    assert openai_style.value.code == "context_length_exceeded"
    assert openai_style.value.message.count("128000") == 1
    with pytest.raises(BadRequest) as anthropic_style:
        check_context("anthropic", 200_001, 200_000)
    assert anthropic_style.value.message.startswith("prompt is too long")

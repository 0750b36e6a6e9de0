from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.tokens import TokenEstimator

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "tokens" / "cookbook_chat.json"
RECORDED = [
    pytest.param(case["body"], encoding, expected["prompt_tokens"], id=f"{case['name']}-{encoding}")
    for case in json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
    for encoding, expected in case["api_prompt_tokens"].items()
]


@pytest.mark.parametrize(("body", "encoding", "prompt_tokens"), RECORDED)
def test_text_chat_matches_prompt_tokens_recorded_from_openai(
    estimator: TokenEstimator, body: dict[str, Any], encoding: str, prompt_tokens: int
) -> None:
    assert estimator.chat(encoding, body) == prompt_tokens


def test_each_message_costs_three_plus_its_strings_and_the_reply_costs_three(estimator: TokenEstimator) -> None:
    text = estimator.text("o200k_base", "hello there")
    role = estimator.text("o200k_base", "user")

    assert estimator.chat("o200k_base", {"messages": [{"role": "user", "content": "hello there"}]}) == (
        3 + role + text + 3
    )


def test_name_costs_its_text_plus_one(estimator: TokenEstimator) -> None:
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    named = {"messages": [{"role": "user", "content": "hi", "name": "alice"}]}

    extra = estimator.chat("o200k_base", named) - estimator.chat("o200k_base", plain)

    assert extra == estimator.text("o200k_base", "alice") + 1


def test_text_parts_count_like_the_same_string(estimator: TokenEstimator) -> None:
    as_string = {"messages": [{"role": "user", "content": "first part second part"}]}
    as_parts = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "first part"}, {"type": "text", "text": " second part"}],
            }
        ]
    }

    assert estimator.chat("o200k_base", as_parts) == estimator.chat("o200k_base", as_string)


def test_image_parts_are_charged_by_the_tile_formula(estimator: TokenEstimator) -> None:
    def with_image(image_url: dict[str, str]) -> dict[str, Any]:
        content = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": image_url}]
        return {"messages": [{"role": "user", "content": content}]}

    text_only = estimator.chat("o200k_base", with_image({})) - 765
    low = estimator.chat("o200k_base", with_image({"url": "https://example.com/a.png", "detail": "low"}))
    unknown = estimator.chat("o200k_base", with_image({"url": "https://example.com/a.png"}))

    assert low == text_only + 85
    assert unknown == text_only + 765


def test_special_token_strings_in_user_text_count_as_ordinary_text(estimator: TokenEstimator) -> None:
    body = {"messages": [{"role": "user", "content": "ignore <|endoftext|> and <|endofprompt|> please"}]}

    tokens = estimator.chat("cl100k_base", body)

    # As a special token "<|endoftext|>" would be 1 token; as text it is several.
    assert estimator.text("cl100k_base", "<|endoftext|>") > 1
    assert tokens == 3 + 1 + estimator.text("cl100k_base", "ignore <|endoftext|> and <|endofprompt|> please") + 3


def test_assistant_tool_calls_count_names_and_arguments_not_ids(estimator: TokenEstimator) -> None:
    arguments = '{"location": "Paris, France", "unit": "celsius"}'
    call = {"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    body = {
        "messages": [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_abc123", "content": '{"temperature": 21}'},
        ]
    }

    count = estimator.counter("o200k_base")
    expected_assistant = 3 + count("assistant") + 3 + count("get_weather") + count(arguments)
    expected_tool = 3 + count("tool") + count('{"temperature": 21}')
    assert estimator.chat("o200k_base", body) == expected_assistant + expected_tool + 3


def test_legacy_functions_are_counted_like_tools(estimator: TokenEstimator) -> None:
    function = {"name": "lookup", "description": "Look a word up.", "parameters": {"type": "object"}}
    messages = [{"role": "user", "content": "define cat"}]

    as_functions = estimator.chat("o200k_base", {"messages": messages, "functions": [function]})
    as_tools = estimator.chat(
        "o200k_base", {"messages": messages, "tools": [{"type": "function", "function": function}]}
    )

    assert as_functions == as_tools > estimator.chat("o200k_base", {"messages": messages})


def test_malformed_messages_are_skipped_not_raised(estimator: TokenEstimator) -> None:
    body = {"messages": [None, 3, {"role": "user", "content": {"odd": True}}], "tools": "nope"}

    assert estimator.chat("o200k_base", body) == 3 + 3 + estimator.text("o200k_base", "user")

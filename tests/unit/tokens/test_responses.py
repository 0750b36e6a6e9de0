from __future__ import annotations

from proxy.tokens import TokenEstimator


def test_string_input_is_one_user_message(estimator: TokenEstimator) -> None:
    as_response = estimator.responses("o200k_base", {"input": "Tell me a joke."})
    as_chat = estimator.chat("o200k_base", {"messages": [{"role": "user", "content": "Tell me a joke."}]})

    assert as_response == as_chat


def test_instructions_are_a_developer_message(estimator: TokenEstimator) -> None:
    body = {"instructions": "Be terse.", "input": "hi"}
    chat = {"messages": [{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "hi"}]}

    assert estimator.responses("o200k_base", body) == estimator.chat("o200k_base", chat)


def test_message_items_with_input_parts_and_images(estimator: TokenEstimator) -> None:
    item = {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "what is in this image?"},
            {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "low"},
        ],
    }

    count = estimator.counter("o200k_base")
    expected = 3 + count("user") + count("what is in this image?") + 85 + 3
    assert estimator.responses("o200k_base", {"input": [item]}) == expected


def test_function_call_and_output_items(estimator: TokenEstimator) -> None:
    items = [
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": -3}'},
    ]

    count = estimator.counter("o200k_base")
    expected = (3 + count("get_weather") + count('{"city":"Oslo"}')) + (3 + count('{"temp": -3}')) + 3
    assert estimator.responses("o200k_base", {"input": items}) == expected


def test_flat_function_tools_are_counted_like_chat_tools(estimator: TokenEstimator) -> None:
    function = {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City"}}},
    }
    responses = {"input": "hi", "tools": [{"type": "function", **function}]}
    chat = {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": function}]}

    assert estimator.responses("cl100k_base", responses) == estimator.chat("cl100k_base", chat)


def test_unknown_items_cost_only_the_message_overhead(estimator: TokenEstimator) -> None:
    body = {"input": [{"type": "item_reference", "id": "msg_123"}]}

    assert estimator.responses("o200k_base", body) == 3 + 3

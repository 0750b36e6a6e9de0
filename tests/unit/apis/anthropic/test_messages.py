"""The Messages endpoint spec: validation errors, every text slot (and which are written back), usage."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.apis.anthropic.messages import MESSAGES, end_user, output_texts, stream_texts, stream_usage, texts, usage
from proxy.endpoints.base import Usage, parse_call
from proxy.errors import BadRequest

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("body", "message"), [
    ({"model": "m", "messages": HI}, "max_tokens: Field required"),
    ({"model": "m", "max_tokens": 0, "messages": HI}, "max_tokens"),
    ({"model": "m", "max_tokens": True, "messages": HI}, "max_tokens"),
    ({"model": "m", "max_tokens": 5}, "messages: Field required"),
    ({"model": "m", "max_tokens": 5, "messages": []}, "non-empty"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "'user' or 'assistant'"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "'type'"),
    ({"model": "m", "max_tokens": 5, "messages": HI, "system": [{"type": "image"}]}, "system"),
    ({"model": "m", "max_tokens": 5, "messages": HI, "stop_sequences": [1]}, "stop_sequences"),
    ({"model": "m", "max_tokens": 5, "messages": HI, "tool_choice": {"type": "tool"}}, "tool_choice"),
    ({"model": "m", "max_tokens": 5, "messages": HI, "metadata": {"user_id": 7}}, "metadata.user_id"),
])
def test_invalid_bodies_are_400_naming_the_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_call(MESSAGES, body)
    assert message in caught.value.message


def test_a_call_names_its_end_user_from_metadata() -> None:
    call = parse_call(MESSAGES, {"model": "m", "max_tokens": 9, "messages": HI, "stream": True,
                                 "metadata": {"user_id": "u-1"}, "tools": [{"name": "a", "input_schema": {}}]})
    assert (call.user, call.max_output_tokens, call.stream, call.tool_names) == ("u-1", 9, True, ("a",))
    assert end_user({"metadata": {"user_id": ""}}) is None


def test_every_text_field_has_a_slot_and_thinking_is_written_to_a_copy() -> None:
    thinking = {"type": "thinking", "thinking": "t", "signature": "s"}
    body: dict[str, Any] = {"system": [{"type": "text", "text": "sys"}], "messages": [
        {"role": "user", "content": "plain"},
        {"role": "assistant", "content": [thinking, {"type": "tool_use", "id": "1", "name": "n",
                                                     "input": {"a": ["x", {"b": "y"}], "n": 3}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "1", "content": [{"type": "text", "text": "result"}]},
            {"type": "document", "title": "T", "source": {"type": "text", "data": "doc"}},
            {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "chunk"}]}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}
    slots = list(texts(body))
    assert [(path, text) for path, text, _, _ in slots] == [
        ("system[0].text", "sys"), ("messages[0].content", "plain"), ("messages[1].content[0].thinking", "t"),
        ("messages[1].content[1].input.a[0]", "x"), ("messages[1].content[1].input.a[1].b", "y"),
        ("messages[2].content[0].content[0].text", "result"), ("messages[2].content[1].title", "T"),
        ("messages[2].content[1].source.data", "doc"), ("messages[2].content[2].source.content[0].text", "chunk")]
    for _, _, slot, key in slots:
        slot[key] = "X"  # type: ignore[index]
    assert thinking["thinking"] == "t"  # the signed block is untouched
    assert body["messages"][1]["content"][1]["input"] == {"a": ["X", {"b": "X"}], "n": 3}


def test_tool_input_nested_too_deep_is_refused() -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(40):
        cursor["k"] = {}
        cursor = cursor["k"]
    body = {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "input": deep}]}]}
    with pytest.raises(BadRequest):
        list(texts(body))


def test_answer_texts_include_tool_inputs_and_stream_deltas() -> None:
    answer = {"content": [{"type": "text", "text": "a"}, {"type": "tool_use", "input": {"q": "b"}},
                          {"type": "thinking", "thinking": "c"}]}
    assert [text for _, text, _, _ in output_texts(answer)] == ["a", "b"]
    delta = {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{"}}
    assert [(p, t) for p, t, _, _ in stream_texts(delta)] == [("content[2]", "{")]


def test_usage_counts_cache_reads_and_writes_into_the_prompt() -> None:
    reported = {"usage": {"input_tokens": 5, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 11,
                          "output_tokens": 3}}
    assert usage(reported) == Usage(23, 3, 7, 11)
    start = stream_usage({"type": "message_start", "message": reported})
    delta = stream_usage({"type": "message_delta", "usage": {"output_tokens": 40, "input_tokens": None}})
    assert start is not None and delta is not None
    assert start.merged(delta) == Usage(23, 40, 7, 11)
    assert stream_usage({"type": "ping"}) is None
    assert usage({"usage": {"input_tokens": True, "output_tokens": -4}}) == Usage(0, 0, 0, 0)

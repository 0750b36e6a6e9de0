"""Messages answers as chat completions: whole, and streamed as chunks with tool-call deltas and usage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.errors import UpstreamError
from proxy.upstream.adapters.answer_to_chat import ChunkTranslator, to_chat_completion

USAGE = {"input_tokens": 10, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 30, "output_tokens": 4}


def test_whole_answer() -> None:
    answer = {"id": "msg_1", "model": "claude", "stop_reason": "max_tokens", "usage": USAGE, "content": [
        {"type": "thinking", "thinking": "hidden", "signature": "s"}, {"type": "text", "text": "Hi "},
        {"type": "text", "text": "there"}, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]}
    completion = to_chat_completion(answer)
    message = completion["choices"][0]["message"]
    assert message["content"] == "Hi there"
    assert message["tool_calls"] == [{"id": "toolu_1", "type": "function",
                                      "function": {"name": "f", "arguments": '{"a":1}'}}]
    assert completion["choices"][0]["finish_reason"] == "length"
    assert completion["usage"] == {"prompt_tokens": 60, "completion_tokens": 4, "total_tokens": 64,
                                   "prompt_tokens_details": {"cached_tokens": 20}}


def events(*items: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": kind, **payload} for kind, payload in items]


STREAM = events(
    ("message_start", {"message": {"id": "msg_1", "model": "claude", "usage": {**USAGE, "output_tokens": 1}}}),
    ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}), ("ping", {}),
    ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
    ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
    ("content_block_stop", {"index": 0}),
    ("content_block_start", {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f",
                                                           "input": {}}}),
    ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a"'}}),
    ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": ": 1}"}}),
    ("content_block_stop", {"index": 1}),
    ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}}),
    ("message_stop", {}))


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_chunks(include_usage: bool) -> None:
    translator = ChunkTranslator({"stream_options": {"include_usage": include_usage}})
    chunks = [c for event in STREAM for _, c in translator.feed(event["type"].encode(), event)]
    chunks += [c for _, c in translator.finish()]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant"
    assert "".join(d.get("content") or "" for d in deltas) == "Hello"
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    assert calls[0]["id"] == "toolu_1" and calls[0]["function"]["name"] == "f"
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"a": 1}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert all(c["id"] == "chatcmpl-msg_1" for c in chunks)
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 60
        assert chunks[-1]["usage"]["completion_tokens"] == 12
    else:
        assert all(c["choices"] for c in chunks)


def test_a_stream_without_message_stop_or_with_an_error_event_fails() -> None:
    translator = ChunkTranslator({})
    translator.feed(b"message_start", STREAM[0])
    with pytest.raises(UpstreamError):
        translator.finish()
    with pytest.raises(UpstreamError) as failed:
        ChunkTranslator({}).feed(b"error", {"type": "error", "error": {"type": "overloaded_error", "message": "o"}})
    assert failed.value.code == "overloaded_error"

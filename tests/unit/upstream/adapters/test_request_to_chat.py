"""Messages requests as OpenAI chat requests, and what does not translate."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.errors import BadRequest
from proxy.upstream.adapters.request_to_chat import to_chat


def test_blocks_tools_and_options_translate() -> None:
    body: dict[str, Any] = {
        "model": "gpt", "stream": True, "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        "stop_sequences": ["x"], "metadata": {"user_id": "u"}, "temperature": 0.2,
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/gif",
                                                                      "data": "R0lG"}},
                                         {"type": "document", "source": {"type": "text", "data": "doc"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                              {"type": "text", "text": "ok"},
                                              {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                                          "content": [{"type": "text", "text": "boom"}]},
                                         {"type": "text", "text": "retry"}]}]}
    out = to_chat(body, 100)
    assert out["messages"] == [
        {"role": "system", "content": "A\n\nB"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}},
                                     {"type": "text", "text": "doc"}]},
        {"role": "assistant", "content": "ok", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: boom"},
        {"role": "user", "content": [{"type": "text", "text": "retry"}]}]
    assert out["stream_options"] == {"include_usage": True} and out["max_tokens"] == 100
    assert (out["tool_choice"], out["parallel_tool_calls"], out["stop"], out["user"]) == \
        ("required", False, ["x"], "u")
    assert out["response_format"]["json_schema"]["schema"] == {"type": "object"}


@pytest.mark.parametrize("extra", [
    {"thinking": {"type": "enabled", "budget_tokens": 1024}}, {"top_k": 3}, {"mcp_servers": [{"url": "x"}]},
    {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, {"stop_sequences": ["a", "b", "c", "d", "e"]}])
def test_what_has_no_chat_equivalent_is_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as refused:
        to_chat({"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}, 10)
    assert refused.value.code == "unsupported_parameter"


@pytest.mark.parametrize("block", [
    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
    {"type": "image", "source": {"type": "file", "file_id": "f"}},
    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]},
    {"type": "search_result", "content": []}])
def test_unsupported_blocks_are_400(block: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        to_chat({"model": "m", "messages": [{"role": "user", "content": [block]}]}, 10)


def test_thinking_disabled_is_fine() -> None:
    assert "thinking" not in to_chat({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                      "thinking": {"type": "disabled"}}, 10)

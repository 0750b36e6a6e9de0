"""OpenAI chat requests as Messages requests, and the options that do not translate."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.errors import BadRequest
from proxy.upstream.adapters.request_to_messages import to_messages


def test_roles_tools_and_options_translate() -> None:
    body: dict[str, Any] = {
        "model": "claude", "stream": True, "temperature": 0.4, "top_p": 0.9, "stop": "END", "user": "u-1",
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {
            "type": "object", "properties": {"x": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}, "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}},
        "messages": [
            {"role": "system", "content": "Sys."}, {"role": "developer", "content": [{"type": "text", "text": "Dev."}]},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                         {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]},
            {"role": "assistant", "content": "calling", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": "1"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "user", "content": "and?"}]}
    out = to_messages(body, 256)
    assert out["system"] == "Sys.\n\nDev."
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": "AAAA"}},
                                     {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "calling"},
                                          {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": "1"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
                                     {"type": "text", "text": "and?"}]}]
    assert out["tools"] == [{"name": "f", "description": "d",
                             "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}]
    assert out["tool_choice"] == {"type": "tool", "name": "f", "disable_parallel_tool_use": True}
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert (out["max_tokens"], out["stream"], out["stop_sequences"], out["metadata"]) == \
        (256, True, ["END"], {"user_id": "u-1"})
    assert (out["temperature"], out["top_p"]) == (0.4, 0.9)


@pytest.mark.parametrize(("choice", "expected"), [("auto", {"type": "auto"}), ("none", {"type": "none"}),
                                                  ("required", {"type": "any"})])
def test_tool_choices(choice: str, expected: dict[str, str]) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice,
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert to_messages(body, 10)["tool_choice"] == expected


@pytest.mark.parametrize("extra", [{"n": 2}, {"logprobs": True}, {"top_logprobs": 3}, {"audio": {"voice": "x"}},
                                   {"presence_penalty": 0.1}, {"logit_bias": {"1": 2}},
                                   {"response_format": {"type": "json_object"}}, {"functions": [{"name": "f"}]}])
def test_what_changes_the_answer_and_has_no_equivalent_is_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as refused:
        to_messages({"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}, 10)
    assert refused.value.code == "unsupported_parameter" and refused.value.param == next(iter(extra))


@pytest.mark.parametrize("message", [
    {"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{not json"}}]},
    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]},
    {"role": "narrator", "content": "x"}])
def test_malformed_or_unsupported_messages_are_400(message: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        to_messages({"model": "m", "messages": [message]}, 10)

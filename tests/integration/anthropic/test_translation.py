"""Across APIs: the openai SDK reaches a Claude model (chat translated to Messages and back), and the
anthropic SDK reaches an OpenAI-style model (Messages translated to chat and back), streamed and not,
with tools, usage and stop reasons; what does not translate is a clear 400 in the caller's format."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.conftest import ProxyHandle, UpstreamHandle
from tests.integration.anthropic.conftest import CLAUDE, PROVIDER_KEY, ClaudeUpstreamHandle, sdk
from tests.support.anthropic_upstream import Fault, Script
from tests.support.config import KEYS

EXPECTED = "Hello from the demo model. You said: Hi there"
HI = [{"role": "user", "content": "Hi there"}]
CHAT_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CLAUDE_TOOL = {"name": "get_weather", "description": "Current weather for a city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def chat(proxy: ProxyHandle) -> openai.OpenAI:
    return proxy.client(KEYS["research"])


def test_openai_sdk_reaches_a_claude_model(claude_proxy: ProxyHandle, claude_upstream: ClaudeUpstreamHandle) -> None:
    reply = chat(claude_proxy).chat.completions.create(
        model=CLAUDE, messages=[{"role": "system", "content": "Be brief."}, *HI], max_tokens=100, stop=["zzz"],
        temperature=1.5, user="u-7")
    assert reply.choices[0].message.content == EXPECTED
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == len(EXPECTED.split())
    sent = claude_upstream.model.last()
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == PROVIDER_KEY
    assert sent.body == {"model": "claude-sonnet-4-5-20250929", "system": "Be brief.", "max_tokens": 100,
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}],
                         "stop_sequences": ["zzz"], "temperature": 1.0, "metadata": {"user_id": "u-7"}}


def test_chat_stream_from_claude_with_usage_chunk(claude_proxy: ProxyHandle) -> None:
    chunks = list(chat(claude_proxy).chat.completions.create(model=CLAUDE, messages=HI, stream=True,
                                                             stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == EXPECTED
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(EXPECTED.split())


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_from_claude_come_back_as_openai_tool_calls(claude_proxy: ProxyHandle,
                                                               claude_upstream: ClaudeUpstreamHandle,
                                                               stream: bool) -> None:
    client = chat(claude_proxy)
    if stream:
        chunks = list(client.chat.completions.create(model=CLAUDE, messages=WEATHER, tools=[CHAT_TOOL], stream=True))
        calls: dict[int, dict[str, str]] = {}
        for chunk in chunks:
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                entry["name"] += (call.function.name or "") if call.function else ""
                entry["arguments"] += (call.function.arguments or "") if call.function else ""
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        call = calls[0]
    else:
        reply = client.chat.completions.create(model=CLAUDE, messages=WEATHER, tools=[CHAT_TOOL],
                                               tool_choice="required")
        tool_calls = reply.choices[0].message.tool_calls or []
        call = {"id": tool_calls[0].id, "name": tool_calls[0].function.name,  # type: ignore[union-attr]
                "arguments": tool_calls[0].function.arguments}  # type: ignore[union-attr]
        finish = [reply.choices[0].finish_reason]
        assert claude_upstream.model.last().body["tool_choice"] == {"type": "any"}
    assert finish == ["tool_calls"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    # The tool result goes back through the translation as a tool_result block.
    answer = client.chat.completions.create(model=CLAUDE, tools=[CHAT_TOOL], messages=[
        *WEATHER, {"role": "assistant", "content": None, "tool_calls": [
            {"id": call["id"], "type": "function",
             "function": {"name": call["name"], "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18 C"}])
    assert answer.choices[0].message.content == "The tool returned: 18 C"
    sent = claude_upstream.model.last().body["messages"]
    assert sent[1]["content"][0] == {"type": "tool_use", "id": call["id"], "name": "get_weather",
                                     "input": {"city": "Paris"}}
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": call["id"], "content": "18 C"}


def test_claude_cache_usage_survives_translation_into_openai_usage(claude_proxy: ProxyHandle,
                                                                   claude_upstream: ClaudeUpstreamHandle) -> None:
    claude_upstream.model.script = Script([{"type": "text", "text": "ok"}], usage={
        "input_tokens": 10, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 30, "output_tokens": 4},
        stop_reason="max_tokens")
    reply = chat(claude_proxy).chat.completions.create(model=CLAUDE, messages=HI, max_tokens=4)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.prompt_tokens == 60
    assert reply.usage.prompt_tokens_details is not None and reply.usage.prompt_tokens_details.cached_tokens == 30


@pytest.mark.parametrize(("option", "value"), [("n", 2), ("logprobs", True), ("frequency_penalty", 0.5),
                                               ("response_format", {"type": "json_object"})])
def test_what_does_not_translate_to_claude_is_a_400(claude_proxy: ProxyHandle, claude_upstream: ClaudeUpstreamHandle,
                                                    option: str, value: object) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        chat(claude_proxy).chat.completions.create(model=CLAUDE, messages=HI, **{option: value})  # type: ignore[call-overload]
    assert refused.value.code == "unsupported_parameter" and option in refused.value.message
    assert claude_upstream.model.received == []


def test_claude_errors_reach_the_openai_sdk_as_its_own_classes(claude_proxy: ProxyHandle,
                                                               claude_upstream: ClaudeUpstreamHandle) -> None:
    claude_upstream.model.fault = Fault(429, "rate_limit_error", {"retry-after": "3"})
    with pytest.raises(openai.RateLimitError) as limited:
        chat(claude_proxy).chat.completions.create(model=CLAUDE, messages=HI)
    assert "injected 429" in limited.value.message and limited.value.response.headers["retry-after"] == "3"
    claude_upstream.model.fault = Fault(529, "overloaded_error")
    with pytest.raises(openai.InternalServerError):
        chat(claude_proxy).chat.completions.create(model=CLAUDE, messages=HI)


def test_a_claude_stream_error_becomes_an_openai_stream_error(claude_proxy: ProxyHandle,
                                                              claude_upstream: ClaudeUpstreamHandle) -> None:
    claude_upstream.model.script = Script([{"type": "text", "text": "partial"}], error_after_events=3)
    with pytest.raises(openai.APIError):
        list(chat(claude_proxy).chat.completions.create(model=CLAUDE, messages=HI, stream=True))


def test_anthropic_sdk_reaches_an_openai_style_model(claude_proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    message = sdk(claude_proxy).messages.create(model="gpt-4o", max_tokens=100, system="Be brief.", messages=HI,
                                                stop_sequences=["zzz"], metadata={"user_id": "u-9"})
    assert message.content[0].text == EXPECTED  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == len(EXPECTED.split())
    sent = upstream.model.last()
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Hi there"}]
    assert (sent.body["stop"], sent.body["user"], sent.body["max_tokens"]) == (["zzz"], "u-9", 100)
    assert "anthropic-version" not in sent.headers


def test_anthropic_stream_helper_over_an_openai_style_model(claude_proxy: ProxyHandle) -> None:
    with sdk(claude_proxy).messages.stream(model="gpt-4o", max_tokens=100, messages=HI) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == EXPECTED  # type: ignore[union-attr]
    assert final.usage.input_tokens > 0 and final.usage.output_tokens == len(EXPECTED.split())
    assert events[0] == "message_start" and events[-1] == "message_stop"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use_over_an_openai_style_model(claude_proxy: ProxyHandle, upstream: UpstreamHandle,
                                                       stream: bool) -> None:
    client = sdk(claude_proxy)
    request = {"model": "gpt-4o", "max_tokens": 200, "messages": WEATHER, "tools": [CLAUDE_TOOL],
               "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}}
    if stream:
        with client.messages.stream(**request) as events:  # type: ignore[arg-type]
            message = events.get_final_message()
    else:
        message = client.messages.create(**request)  # type: ignore[arg-type]
    tool = next(b for b in message.content if b.type == "tool_use")
    assert tool.name == "get_weather" and tool.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"
    sent = upstream.model.last().body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    reply = client.messages.create(model="gpt-4o", max_tokens=100, tools=[CLAUDE_TOOL], messages=[  # type: ignore[list-item]
        *WEATHER, {"role": "assistant", "content": message.content},  # type: ignore[list-item]
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "18 C"}]}])
    assert reply.content[0].text == "The tool returned: 18 C"  # type: ignore[union-attr]
    assert upstream.model.last().body["messages"][2] == {"role": "tool", "tool_call_id": tool.id, "content": "18 C"}


@pytest.mark.parametrize(("option", "value"), [("thinking", {"type": "enabled", "budget_tokens": 1024}),
                                               ("top_k", 5)])
def test_what_does_not_translate_to_chat_is_an_anthropic_400(claude_proxy: ProxyHandle, upstream: UpstreamHandle,
                                                             option: str, value: object) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk(claude_proxy).messages.create(model="gpt-4o", max_tokens=2000, messages=HI, extra_body={option: value})
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert upstream.model.received == []


def test_openai_style_upstream_errors_reach_the_anthropic_sdk(claude_proxy: ProxyHandle,
                                                              upstream: UpstreamHandle) -> None:
    upstream.model.faults.status = 503
    with pytest.raises(anthropic.ServiceUnavailableError) as failed:
        sdk(claude_proxy).messages.create(model="gpt-4o", max_tokens=10, messages=HI)
    assert failed.value.body["error"]["message"] == "injected upstream error 503"  # type: ignore[index]


def test_redaction_and_restore_across_the_translation(claude_proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    # payments (cards redacted and restored) on gpt-4o through /v1/messages: the demo echoes the placeholder.
    prompt = "Refund card 4111 1111 1111 1111"
    with sdk(claude_proxy, key=KEYS["payments"]) as client, client.messages.stream(
            model="gpt-4o", max_tokens=100, messages=[{"role": "user", "content": prompt}]) as stream:
        text = "".join(stream.text_stream)
    assert text.endswith(prompt)
    assert "4111" not in json.dumps(upstream.model.last().body)

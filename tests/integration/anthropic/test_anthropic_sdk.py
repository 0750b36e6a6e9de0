"""The official anthropic SDK works unchanged through the proxy: only base URL and key differ."""

from __future__ import annotations

import anthropic
import pytest

from tests.conftest import ProxyHandle
from tests.integration.anthropic.conftest import CLAUDE, PROVIDER_KEY, ClaudeUpstreamHandle, async_sdk, sdk
from tests.support.anthropic_upstream import Fault, Script
from tests.support.config import KEYS

EXPECTED = "Hello from the demo model. You said: Hi there"
HI = [{"role": "user", "content": "Hi there"}]
WEATHER_TOOL = {"name": "get_weather", "description": "Current weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                                  "unit": {"enum": ["celsius", "fahrenheit"]}},
                                 "required": ["city"]}}


def test_create_round_trip_injects_the_provider_key_and_forwards_version_and_beta(
        claude_proxy: ProxyHandle, claude_upstream: ClaudeUpstreamHandle) -> None:
    message = sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=100, messages=HI,
                                                extra_headers={"anthropic-beta": "tools-2099-01-01",
                                                                               "anthropic-version": "2024-02-29"})
    assert message.content[0].type == "text" and message.content[0].text == EXPECTED
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == len(EXPECTED.split())
    sent = claude_upstream.model.last()
    assert sent.path == "/v1/messages"
    assert sent.body["model"] == "claude-sonnet-4-5-20250929"
    assert sent.headers["x-api-key"] == PROVIDER_KEY
    assert sent.headers["anthropic-version"] == "2024-02-29"  # the caller's, not the proxy's default
    assert sent.headers["anthropic-beta"] == "tools-2099-01-01"
    assert KEYS["research"] not in str(sent.headers) and "authorization" not in sent.headers


def test_bearer_auth_token_works_too(claude_proxy: ProxyHandle) -> None:
    client = anthropic.Anthropic(base_url=claude_proxy.root, auth_token=KEYS["research"], max_retries=0)
    assert client.messages.create(model=CLAUDE, max_tokens=50, messages=HI).content[0].text == EXPECTED  # type: ignore[union-attr]


def test_system_blocks_stop_sequences_and_metadata_reach_the_upstream(
        claude_proxy: ProxyHandle, claude_upstream: ClaudeUpstreamHandle) -> None:
    message = sdk(claude_proxy).messages.create(
        model=CLAUDE, max_tokens=100, messages=HI, system=[{"type": "text", "text": "Be brief."}],
        stop_sequences=["You said"], metadata={"user_id": "u-42"})
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "You said"
    assert message.content[0].text == "Hello from the demo model. "  # type: ignore[union-attr]
    sent = claude_upstream.model.last().body
    assert sent["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent["metadata"] == {"user_id": "u-42"}


def test_stream_helper_accumulates_text_and_final_usage(claude_proxy: ProxyHandle) -> None:
    with sdk(claude_proxy).messages.stream(model=CLAUDE, max_tokens=100, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == EXPECTED
    assert final.usage.output_tokens == len(EXPECTED.split()) and final.usage.input_tokens > 0
    assert final.stop_reason == "end_turn"


def test_raw_stream_has_the_exact_event_sequence(claude_proxy: ProxyHandle) -> None:
    events = list(sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=100, messages=HI, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


def test_tool_use_streams_valid_json_arguments(claude_proxy: ProxyHandle) -> None:
    client = sdk(claude_proxy)
    with client.messages.stream(model=CLAUDE, max_tokens=200, tools=[WEATHER_TOOL],  # type: ignore[list-item]
                                messages=[{"role": "user", "content": "What is the weather in Paris?"}]) as stream:
        final = stream.get_final_message()
    tool = next(b for b in final.content if b.type == "tool_use")
    assert tool.name == "get_weather" and tool.input == {"city": "Paris", "unit": "celsius"}
    assert final.stop_reason == "tool_use"
    # The tool result goes back; the model answers in text.
    reply = client.messages.create(model=CLAUDE, max_tokens=200, tools=[WEATHER_TOOL],  # type: ignore[list-item]
                                   messages=[{"role": "user", "content": "What is the weather in Paris?"},
                                             {"role": "assistant", "content": final.content},  # type: ignore[typeddict-item]
                                             {"role": "user", "content": [{"type": "tool_result",
                                                                           "tool_use_id": tool.id,
                                                                           "content": "18 C, sunny"}]}])
    assert reply.content[0].text == "The tool returned: 18 C, sunny"  # type: ignore[union-attr]


def test_thinking_blocks_stream_and_pass_through_unchanged(claude_proxy: ProxyHandle,
                                                            claude_upstream: ClaudeUpstreamHandle) -> None:
    client = sdk(claude_proxy)
    with client.messages.stream(model=CLAUDE, max_tokens=2000, messages=HI,
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = stream.get_final_message()
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.signature and thinking.thinking
    client.messages.create(model=CLAUDE, max_tokens=100, messages=[
        *HI, {"role": "assistant", "content": final.content}, {"role": "user", "content": "more"}])  # type: ignore[list-item]
    assert claude_upstream.model.last().body["messages"][1]["content"][0] == {
        "type": "thinking", "thinking": thinking.thinking, "signature": thinking.signature}


async def test_async_client_creates_and_streams(claude_proxy: ProxyHandle) -> None:
    client = async_sdk(claude_proxy)
    message = await client.messages.create(model=CLAUDE, max_tokens=100, messages=HI)
    assert message.content[0].text == EXPECTED  # type: ignore[union-attr]
    async with client.messages.stream(model=CLAUDE, max_tokens=100, messages=HI) as stream:
        text = "".join([t async for t in stream.text_stream])
    assert text == EXPECTED
    count = await client.messages.count_tokens(model=CLAUDE, messages=HI)
    assert count.input_tokens > 0
    await client.close()


def test_count_tokens_is_answered_by_the_proxy_without_forwarding(claude_proxy: ProxyHandle,
                                                                  claude_upstream: ClaudeUpstreamHandle) -> None:
    client = sdk(claude_proxy)
    short = client.messages.count_tokens(model=CLAUDE, messages=HI)
    longer = client.messages.count_tokens(model=CLAUDE, messages=HI, system="You are a careful assistant.",
                                          tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert 0 < short.input_tokens < longer.input_tokens
    assert claude_upstream.model.received == []
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=HI)


def test_error_classes(claude_proxy: ProxyHandle, claude_upstream: ClaudeUpstreamHandle) -> None:
    client = sdk(claude_proxy)
    # Clients made for one call are closed: a pooled socket left to the GC warns in whichever test it is collected.
    with sdk(claude_proxy, key="wrong") as wrong, pytest.raises(anthropic.AuthenticationError) as auth:
        wrong.messages.create(model=CLAUDE, max_tokens=10, messages=HI)
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=[])
    assert bad.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=10, messages=HI)
    with sdk(claude_proxy, key=KEYS["payments"]) as payments, \
            pytest.raises(anthropic.PermissionDeniedError) as denied:  # payments may not use Claude models
        payments.messages.create(model=CLAUDE, max_tokens=10, messages=HI)
    assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    claude_upstream.model.fault = Fault(529, "overloaded_error")
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=CLAUDE, max_tokens=10, messages=HI)
    claude_upstream.model.fault = Fault(429, "rate_limit_error", {"retry-after": "7"})
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=HI)
    assert limited.value.response.headers["retry-after"] == "7"


def test_request_too_large_is_413_in_anthropic_format(make_claude_proxy: ProxyHandle) -> None:
    proxy = make_claude_proxy(server__max_body_bytes=2000)  # type: ignore[operator]
    with pytest.raises(anthropic.RequestTooLargeError) as large:
        sdk(proxy).messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "x" * 5000}])
    assert large.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def test_an_error_mid_stream_is_an_error_event_the_sdk_raises(claude_proxy: ProxyHandle,
                                                              claude_upstream: ClaudeUpstreamHandle) -> None:
    claude_upstream.model.script = Script([{"type": "text", "text": "partial answer"}], error_after_events=3)
    with pytest.raises(anthropic.APIStatusError) as failed:
        list(sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=100, messages=HI, stream=True))
    assert "overloaded_error" in str(failed.value)


def test_unknown_messages_route_is_an_anthropic_404(claude_proxy: ProxyHandle) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk(claude_proxy).messages.batches.list()
    assert missing.value.body["type"] == "error"  # type: ignore[index]


def test_the_sdks_beta_namespace_works(claude_proxy: ProxyHandle, claude_upstream: ClaudeUpstreamHandle) -> None:
    # client.beta.messages posts to /v1/messages?beta=true with the betas in anthropic-beta.
    message = sdk(claude_proxy).beta.messages.create(model=CLAUDE, max_tokens=50, messages=HI,
                                                     betas=["context-1m-2025-08-07"])
    assert message.content[0].text == EXPECTED  # type: ignore[union-attr]
    assert claude_upstream.model.last().headers["anthropic-beta"] == "context-1m-2025-08-07"

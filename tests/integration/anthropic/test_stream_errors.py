"""A broken upstream event in a Messages stream, or in a stream translated either way, ends the stream
with an error event that the caller's SDK raises."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.conftest import ProxyFactory, UpstreamHandle
from tests.integration.anthropic.conftest import CLAUDE, ClaudeUpstreamHandle, sdk
from tests.support.config import KEYS

HELLO = [{"role": "user", "content": "Hi"}]


def test_messages_stream_with_an_event_that_is_not_json_raises_in_the_anthropic_sdk(
        make_claude_proxy: ProxyFactory, claude_upstream: ClaudeUpstreamHandle) -> None:
    proxy = make_claude_proxy()
    claude_upstream.model.faults.malformed_after_events = 3
    with sdk(proxy) as client, pytest.raises(anthropic.APIStatusError) as caught, \
            client.messages.stream(model=CLAUDE, max_tokens=100, messages=HELLO) as stream:  # type: ignore[arg-type]
        for _ in stream:
            pass
    assert "not JSON" in str(caught.value)


def test_translated_streams_with_an_event_that_is_not_json_raise_in_both_sdks(
        make_claude_proxy: ProxyFactory, claude_upstream: ClaudeUpstreamHandle, upstream: UpstreamHandle) -> None:
    proxy = make_claude_proxy()
    claude_upstream.model.faults.malformed_after_events = 3
    with proxy.client(key=KEYS["research"]) as openai_client, pytest.raises(openai.APIError) as from_claude:
        for _ in openai_client.chat.completions.create(model=CLAUDE, messages=HELLO, stream=True):  # type: ignore[arg-type]
            pass
    assert "not JSON" in from_claude.value.message
    upstream.model.faults.malformed_after_events = 2
    with sdk(proxy) as client, pytest.raises(anthropic.APIStatusError) as from_openai, \
            client.messages.stream(model="demo-model", max_tokens=100, messages=HELLO) as stream:  # type: ignore[arg-type]
        for _ in stream:
            pass
    assert "not JSON" in str(from_openai.value)

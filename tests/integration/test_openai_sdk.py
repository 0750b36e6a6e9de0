"""The official openai SDK works unchanged through the proxy: only base URL and key differ."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import ProxyHandle, UpstreamHandle
from tests.support.config import KEYS

EXPECTED = "Hello from the demo model. You said: Hi there"


def test_chat_completion_round_trip(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    result = proxy.client().chat.completions.create(
        model="demo-model", messages=[{"role": "user", "content": "Hi there"}])
    assert result.choices[0].message.content == EXPECTED
    assert result.usage is not None and result.usage.completion_tokens == len(EXPECTED.split())
    sent = upstream.model.last()
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == [{"role": "user", "content": "Hi there"}]
    # The caller's proxy key never travels upstream.
    assert KEYS["payments"] not in str(sent.headers)


def test_alias_is_rewritten_to_the_upstream_model_name(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    proxy.client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert upstream.model.last().body["model"] == "demo-model"


def test_chat_stream_relays_every_delta_and_hides_injected_usage(proxy: ProxyHandle,
                                                                 upstream: UpstreamHandle) -> None:
    chunks = list(proxy.client().chat.completions.create(
        model="demo-model", messages=[{"role": "user", "content": "Hi there"}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED
    # The proxy asked for usage (budgets need it) but the client did not, so it sees no usage chunk.
    assert upstream.model.last().body["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks)


def test_chat_stream_keeps_usage_chunk_when_client_asks(proxy: ProxyHandle) -> None:
    chunks = list(proxy.client().chat.completions.create(
        model="demo-model", messages=[{"role": "user", "content": "Hi there"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(EXPECTED.split())


def test_legacy_completions(proxy: ProxyHandle) -> None:
    result = proxy.client().completions.create(model="demo-model", prompt="Hi there")
    assert result.choices[0].text == EXPECTED
    streamed = "".join(c.choices[0].text for c in proxy.client().completions.create(
        model="demo-model", prompt="Hi there", stream=True) if c.choices)
    assert streamed == EXPECTED


def test_responses_non_streaming_and_streaming(proxy: ProxyHandle) -> None:
    client = proxy.client()
    result = client.responses.create(model="demo-model", input="Hi there", instructions="Be brief")
    assert result.output_text == EXPECTED
    assert result.usage is not None and result.usage.output_tokens == len(EXPECTED.split())
    events = list(client.responses.create(model="demo-model", input="Hi there", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == EXPECTED
    assert events[-1].type == "response.completed"


def test_embeddings_base64_default_is_decoded_by_the_sdk(proxy: ProxyHandle) -> None:
    result = proxy.client().embeddings.create(model="demo-embedding", input=["one", "two"])
    assert [len(d.embedding) for d in result.data] == [8, 8]
    assert all(-1 <= v <= 1 for v in result.data[0].embedding)
    assert result.data[0].embedding != result.data[1].embedding


def test_models_list_and_retrieve(proxy: ProxyHandle) -> None:
    client = proxy.client()
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("demo-model").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_request_id_is_returned_and_propagated(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="demo-model", messages=[{"role": "user", "content": "x"}], extra_headers={"x-request-id": "req-abc.1"})
    assert raw.headers["x-request-id"] == "req-abc.1"
    assert upstream.model.last().headers["x-request-id"] == "req-abc.1"
    generated = proxy.client().chat.completions.with_raw_response.create(
        model="demo-model", messages=[{"role": "user", "content": "x"}])
    assert len(generated.headers["x-request-id"]) == 32


async def test_async_client_streams_and_calls(proxy: ProxyHandle) -> None:
    client = proxy.async_client()
    result = await client.chat.completions.create(model="demo-model",
                                                  messages=[{"role": "user", "content": "Hi there"}])
    assert result.choices[0].message.content == EXPECTED
    stream = await client.chat.completions.create(
        model="demo-model", messages=[{"role": "user", "content": "Hi there"}], stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == EXPECTED
    response = await client.responses.create(model="demo-model", input="Hi there")
    assert response.output_text == EXPECTED
    embeddings = await client.embeddings.create(model="demo-embedding", input="one")
    assert len(embeddings.data[0].embedding) == 8
    await client.close()

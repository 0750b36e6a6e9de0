"""The first words of a stream go out as soon as each is ready, even when the upstream sends the whole
answer at once: the client's first HTTP chunks hold one event each, so the first word does not wait for
the rest of the read to be parsed and transformed; later events go out together."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from proxy.gateway.relay import EAGER_WRITES
from tests.conftest import ProxyHandle, UpstreamHandle
from tests.support.config import KEYS

LONG_REPLY = " ".join(f"word{i}" for i in range(40))


async def http_chunks(url: str, body: dict[str, object], headers: dict[str, str]) -> list[bytes]:
    """The body as the proxy wrote it: one item per HTTP chunk (one write of the proxy's)."""
    chunks, current = [], b""
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as response:
        assert response.status == 200
        async for data, end_of_chunk in response.content.iter_chunks():
            current += data
            if end_of_chunk:
                chunks.append(current)
                current = b""
    return [*chunks, current] if current else chunks


def has_text(chunk: bytes, key: bytes) -> bool:
    """Whether an event in this chunk carries generated text (non-empty)."""
    return any(line.startswith(b"data: {") and key in line and any(texts(orjson.loads(line[6:])))
               for line in chunk.split(b"\n"))


def texts(document: dict[str, object]) -> list[str]:
    found = []
    for choice in document.get("choices") or []:  # type: ignore[attr-defined]
        found.append((choice.get("delta") or {}).get("content") or "")
    delta = document.get("delta")
    if isinstance(delta, dict):
        found.append(delta.get("text") or "")
    elif isinstance(delta, str):
        found.append(delta)
    return found


def events_in(chunk: bytes) -> int:
    return chunk.count(b"\n\n")


@pytest.mark.parametrize(("path", "body", "key"), [
    ("/v1/chat/completions", {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
     b'"content"'),
    ("/v1/responses", {"model": "gpt-4o", "stream": True, "input": "Hi"}, b'"delta"'),
    # The Messages API in front of a chat-completions upstream: the translated relay.
    ("/v1/messages", {"model": "gpt-4o", "stream": True, "max_tokens": 200,
                      "messages": [{"role": "user", "content": "Hi"}]}, b'"text_delta"'),
], ids=["chat", "responses", "messages-translated"])
async def test_a_burst_from_the_upstream_reaches_the_client_first_words_first(
        proxy: ProxyHandle, upstream: UpstreamHandle, path: str, body: dict[str, object], key: bytes) -> None:
    upstream.model.reply_override = LONG_REPLY
    upstream.model.faults.burst = True
    chunks = await http_chunks(proxy.root + path, body, {"Authorization": f"Bearer {KEYS['payments']}"})
    first_text = next(i for i, chunk in enumerate(chunks) if has_text(chunk, key))
    assert first_text < EAGER_WRITES
    assert all(events_in(chunk) == 1 for chunk in chunks[:first_text + 1]), chunks[:first_text + 1]
    # After the first writes, what one read brought goes out together: fewer writes than events.
    assert len(chunks) < sum(events_in(chunk) for chunk in chunks)


async def test_a_burst_reaches_the_sdk_whole_and_in_order(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    upstream.model.reply_override = LONG_REPLY
    upstream.model.faults.burst = True
    async with proxy.async_client() as client:
        chunks = [chunk async for chunk in await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], stream=True,
            stream_options={"include_usage": True})]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == LONG_REPLY
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(LONG_REPLY.split())

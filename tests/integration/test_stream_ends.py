"""Every relayed stream ends: a broken upstream event is an error event the SDKs raise, in the caller's
format; a client that leaves is charged what the upstream generated, read on for a bounded time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest
from structlog.testing import capture_logs

from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.integration.test_budget_path import spent
from tests.support.config import KEYS

HELLO = [{"role": "user", "content": "Hi"}]
LONG_REPLY = " ".join(f"word{i}" for i in range(40))


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured


async def request_line(logs: list[dict[str, Any]], timeout_s: float = 15) -> dict[str, Any]:
    """The audit line of the one request the test made, once the settle stage has written it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = [entry for entry in logs if entry["event"] == "request"]
        if lines:
            [line] = lines
            return line
        await asyncio.sleep(0.02)
    raise AssertionError("no request line was written")


def test_chat_stream_with_an_event_that_is_not_json_raises_api_error_and_ends(
        proxy: ProxyHandle, upstream: UpstreamHandle, logs: list[dict[str, Any]]) -> None:
    upstream.model.faults.malformed_after_events = 2
    received = []
    with proxy.client() as client, pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="demo-model", messages=HELLO, stream=True):
            received.append(chunk)
    assert len(received) == 2
    assert "not JSON" in caught.value.message
    assert caught.value.body["code"] == "upstream_bad_event"  # type: ignore[index]
    line = asyncio.run(request_line(logs))
    assert line["stream_error"] == "upstream_bad_event"
    assert line["status"] == 200 and line["upstream_status"] == 200


def test_responses_stream_with_an_event_that_is_not_json_raises_api_error(proxy: ProxyHandle,
                                                                         upstream: UpstreamHandle) -> None:
    upstream.model.faults.malformed_after_events = 3
    with proxy.client() as client, pytest.raises(openai.APIError) as caught:
        for _ in client.responses.create(model="demo-model", input="Hi", stream=True):
            pass
    assert "not JSON" in caught.value.message


def test_broken_event_after_the_usage_chunk_still_charges_the_usage(proxy: ProxyHandle, upstream: UpstreamHandle,
                                                                     logs: list[dict[str, Any]]) -> None:
    # Usage rides in a late chunk: a break before it is charged by counting what was streamed.
    upstream.model.faults.malformed_after_events = 2
    with proxy.client() as client, pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="demo-model", messages=HELLO, stream=True):
            pass
    line = asyncio.run(request_line(logs))
    assert line["output_tokens"] > 0 and line["cost_usd"] > 0
    assert spent(proxy, "team:payments") == pytest.approx(line["cost_usd"], rel=1e-6)


async def cut_after_first_event(proxy: ProxyHandle) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(proxy.base_url + "/chat/completions",
                                      headers={"Authorization": f"Bearer {KEYS['payments']}"},
                                      json={"model": "gpt-4o", "messages": HELLO, "stream": True})
        await response.content.readuntil(b"\n\n")
        response.close()


async def test_client_gone_mid_stream_is_charged_what_the_upstream_reported(
        proxy: ProxyHandle, upstream: UpstreamHandle, logs: list[dict[str, Any]]) -> None:
    upstream.model.reply_override = LONG_REPLY
    async with proxy.async_client() as client:
        whole = [chunk async for chunk in await client.chat.completions.create(
            model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True})]
    reported = whole[-1].usage
    assert reported is not None and reported.completion_tokens > 20
    await request_line(logs)
    before = await asyncio.to_thread(spent, proxy, "team:payments")
    logs.clear()

    upstream.model.faults.chunk_delay_s = 0.01  # a fast stream: it ends well within the drain time
    await cut_after_first_event(proxy)
    line = await request_line(logs)
    assert line["client_disconnected"] is True and line["status"] == 499
    assert (line["input_tokens"], line["output_tokens"]) == (reported.prompt_tokens, reported.completion_tokens)
    assert "usage_source" not in line  # the provider's own count, not an estimate
    assert upstream.model.watch.finished == 2 and upstream.model.watch.cancelled == 0
    charged = await asyncio.to_thread(spent, proxy, "team:payments")
    assert charged - before == pytest.approx(line["cost_usd"], rel=1e-6)


async def test_drain_is_bounded_and_counts_the_text_it_read(make_proxy: ProxyFactory, upstream: UpstreamHandle,
                                                            logs: list[dict[str, Any]]) -> None:
    proxy = make_proxy(upstreams={"test": {"base_url": upstream.url, "timeouts": {"drain_on_disconnect_s": 0.3}}})
    upstream.model.reply_override = LONG_REPLY
    upstream.model.faults.chunk_delay_s = 0.1  # ~4 s of stream: far longer than the drain
    cut = time.monotonic()
    await cut_after_first_event(proxy)
    line = await request_line(logs)
    assert time.monotonic() - cut < 3.5  # the drain let go of the upstream long before its end
    for _ in range(200):
        if upstream.model.watch.cancelled:
            break
        await asyncio.sleep(0.02)
    assert upstream.model.watch.cancelled == 1 and upstream.model.watch.finished == 0
    assert line["usage_source"] == "estimated" and line["output_tokens"] >= 1


async def test_drain_off_cancels_the_upstream_at_once(make_proxy: ProxyFactory, upstream: UpstreamHandle) -> None:
    proxy = make_proxy(upstreams={"test": {"base_url": upstream.url, "timeouts": {"drain_on_disconnect_s": 0}}})
    upstream.model.faults.chunk_delay_s = 0.05
    await cut_after_first_event(proxy)
    for _ in range(200):
        if upstream.model.watch.cancelled:
            break
        await asyncio.sleep(0.02)
    assert upstream.model.watch.cancelled == 1
    assert upstream.model.watch.finished == 0


async def test_a_client_gone_mid_burst_is_charged_every_word_of_it(proxy: ProxyHandle, upstream: UpstreamHandle,
                                                                   logs: list[dict[str, Any]]) -> None:
    # The whole answer comes in one read and reports no usage: the words the relay had not taken when the
    # client left are counted by the drain all the same, so the cut stream costs what a whole one does.
    upstream.model.reply_override = LONG_REPLY
    upstream.model.faults.burst = True
    upstream.model.faults.strip_usage = True
    async with proxy.async_client() as client:
        whole = "".join([chunk.choices[0].delta.content or "" async for chunk in await client.chat.completions.create(
            model="gpt-4o", messages=HELLO, stream=True) if chunk.choices])
    assert whole.endswith(LONG_REPLY)
    complete = await request_line(logs)
    logs.clear()
    await cut_after_first_event(proxy)
    line = await request_line(logs)
    # (Whether the proxy sees the client leave before it has written the whole burst is a race; the
    # drain's part is checked deterministically in tests/unit/gateway/test_stream_end.py.)
    assert line["usage_source"] == "estimated"
    assert line["output_tokens"] == complete["output_tokens"]

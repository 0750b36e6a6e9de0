"""The drain after a client left: it counts the events of the last read the relay had not taken yet, then
reads the upstream on; against a real loopback upstream that has already sent its whole answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from proxy.config import Timeouts, UpstreamConfig
from proxy.endpoints import CHAT
from proxy.gateway.relay import Tally
from proxy.gateway.stream_end import Drain
from proxy.upstream.client import Upstream
from proxy.upstream.sse import SSEParser
from tests.support.servers import served

WORDS = ["one", " two", " three", " four", " five"]


def chunk(text: str) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}) + b"\n\n"


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async def whole_answer_at_once(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"".join(chunk(word) for word in WORDS) + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", whole_answer_at_once)
    async with served(app) as base:
        config = UpstreamConfig(kind="openai_compatible", base_url=f"{base}/v1",
                                timeouts=Timeouts(drain_on_disconnect_s=5))
        client = Upstream("test", config, None)
        await client.start()
        yield client
        await client.close()


async def test_the_events_the_relay_had_not_taken_are_counted(upstream: Upstream) -> None:
    response = await upstream.send("chat/completions", "m", b"{}", {})
    parser, read = SSEParser(), b""
    while read.count(b"\n\n") < len(WORDS) + 1:  # the whole answer, in as many reads as it took
        read += await upstream.read_chunk(response)
    events = parser.feed(read)
    tally = Tally()
    taken = next(events)  # the relay wrote the first event; then the client left
    assert orjson.loads(taken.data or b"")["choices"][0]["delta"]["content"] == "one"
    await Drain(upstream, response, parser, CHAT).run(tally)
    assert tally.drained
    assert tally.texts == WORDS[1:]
    response.close()

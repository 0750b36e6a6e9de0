"""How a relayed stream ends once its headers are sent, whatever stopped it.

- A `ProxyError` (the upstream broke off, stalled, or sent an event that is not JSON): one SSE error event
  in the caller's API format, then the end of the stream, so no client waits on a 200 that never ends.
- Anything unexpected: the same, as a `server_error`, logged with its type only (the message may quote
  the answer).
- The client gone (its connection reset, or its handler cancelled): the upstream is read on for a bounded
  time (`timeouts.drain_on_disconnect_s`) to learn what the provider generated, its final usage or the
  text to count, so the budget is charged that rather than what reached the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from proxy.endpoints.base import EndpointSpec
from proxy.errors import ProxyError
from proxy.telemetry.logging import get_logger
from proxy.upstream import sse
from proxy.upstream.client import Upstream

if TYPE_CHECKING:
    from proxy.gateway.relay import Tally

log = get_logger("proxy.gateway.relay")


@dataclass(frozen=True, slots=True)
class Drain:
    """The rest of an upstream stream, read without a client: usage and text only, nothing relayed."""

    upstream: Upstream
    response: aiohttp.ClientResponse
    parser: sse.SSEParser
    spec: EndpointSpec  # the upstream's wire format: where its usage and its text are

    async def run(self, tally: Tally) -> None:
        seconds = self.upstream.config.timeouts.drain_on_disconnect_s
        if seconds <= 0:
            return
        # What was seen when the time is up or the upstream fails is what is counted.
        with suppress(TimeoutError, ProxyError):
            async with asyncio.timeout(seconds):
                chunk = b""  # first the events of the last read that the relay had not taken yet
                while True:
                    for event in self.parser.feed(chunk):
                        if event.data is not None and event.data != sse.DONE:
                            self._count(event.data, tally)
                    if not (chunk := await self.upstream.read_chunk(self.response)):
                        break
        tally.drained = True

    def _count(self, data: bytes, tally: Tally) -> None:
        document = sse.event_object(data, self.upstream.name)
        if document is None:
            return
        usage = self.spec.stream_usage(document)
        if usage is not None:
            tally.usage = usage if tally.usage is None else tally.usage.merged(usage)
        tally.texts.extend(text for path, text, _, _ in self.spec.stream_texts(document) if not path.endswith(".done"))


@asynccontextmanager
async def stream_guard(out: web.StreamResponse, caller: EndpointSpec, drain: Drain,
                       tally: Tally) -> AsyncIterator[None]:
    """Wraps the relay loop of a prepared stream; see the module docstring for what each outcome does."""
    try:
        yield
    except ProxyError as exc:
        await end_with_error(out, caller, exc, tally)
    except (ConnectionResetError, asyncio.CancelledError) as exc:
        tally.client_gone = True
        await drain.run(tally)
        if isinstance(exc, asyncio.CancelledError):
            raise
    except Exception as exc:
        log.error("relay_failed", error_type=type(exc).__name__)
        await end_with_error(out, caller, ProxyError("The proxy failed while relaying the answer; the rest of it "
                                                     "was not sent.", code="relay_failed"), tally)


async def end_with_error(out: web.StreamResponse, caller: EndpointSpec, error: ProxyError, tally: Tally) -> None:
    tally.stream_error = error.code or "error"
    try:
        await out.write(caller.stream_error(error))
        await out.write_eof()
    except ConnectionResetError:
        tally.client_gone = True  # gone before the error reached it: nothing more to send

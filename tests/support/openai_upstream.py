"""The test upstream: the demo model plus recording of what it received and injected faults."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from proxy.demo import DemoModel


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Faults:
    status: int | None = None  # answer every call with this status and an OpenAI error body
    headers: dict[str, str] = field(default_factory=dict)  # ...and these headers (Retry-After, x-ratelimit-*)
    first_byte_delay_s: float = 0.0
    reset_after_events: int | None = None  # abort the connection after this many stream events
    chunk_delay_s: float = 0.0
    malformed_after_events: int | None = None  # send `data: {"usage": oops` after this many events, then end
    strip_usage: bool = False  # behave like a server that never reports stream usage
    hold: threading.Event | None = None  # answer nothing until the test sets it
    burst: bool = False  # the whole stream in one write, as a fast model or a cached answer sends it


@dataclass
class StreamWatch:
    started: int = 0
    finished: int = 0
    cancelled: int = 0


class TestUpstream(DemoModel):
    __test__ = False

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.faults = Faults()
        self.watch = StreamWatch()
        self.reply_override: str | None = None

    def reset(self) -> None:
        self.received.clear()
        self.faults = Faults()
        self.watch = StreamWatch()
        self.reply_override = None

    def reply(self, prompt: str) -> str:
        return self.reply_override if self.reply_override is not None else super().reply(prompt)

    def build_app(self) -> web.Application:
        app = super().build_app()
        app.middlewares.append(self._record_and_fault)
        return app

    @web.middleware
    async def _record_and_fault(self, request: web.Request,
                                handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        raw = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.append(Received(request.path_qs, headers, orjson.loads(raw) if raw else {}))
        if self.faults.first_byte_delay_s:
            await asyncio.sleep(self.faults.first_byte_delay_s)
        if self.faults.hold is not None:
            await asyncio.to_thread(self.faults.hold.wait, 60)
        if self.faults.status is not None:
            kind = "server_error" if self.faults.status >= 500 else "invalid_request_error"
            return web.Response(status=self.faults.status, content_type="application/json", headers=self.faults.headers,
                                body=orjson.dumps(
                {"error": {"message": f"injected upstream error {self.faults.status}", "type": kind,
                           "param": None, "code": "injected"}}))
        return await handler(request)

    async def stream(self, request: web.Request, events: AsyncIterator[bytes],
                     done_marker: bool = True) -> web.StreamResponse:
        self.watch.started += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        sent = 0
        held: list[bytes] = []
        try:
            async for event in events:
                if self.faults.strip_usage and b'"usage"' in event:
                    document = orjson.loads(event)
                    if not document.get("choices"):
                        continue
                    document.pop("usage", None)
                    event = orjson.dumps(document)
                if self.faults.reset_after_events is not None and sent >= self.faults.reset_after_events:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if self.faults.malformed_after_events is not None and sent >= self.faults.malformed_after_events:
                    await response.write(b'data: {"usage": oops\n\n')
                    await response.write_eof()
                    return response
                if self.faults.chunk_delay_s:
                    await asyncio.sleep(self.faults.chunk_delay_s)
                data = event if event.startswith(b"event: ") else b"data: " + event
                if self.faults.burst:
                    held.append(data + b"\n\n")
                else:
                    await response.write(data + b"\n\n")
                sent += 1
            if done_marker:
                held.append(b"data: [DONE]\n\n")
            await response.write(b"".join(held))
            await response.write_eof()
            self.watch.finished += 1
        except (asyncio.CancelledError, ConnectionResetError):
            self.watch.cancelled += 1
            raise
        return response

    def last(self) -> Received:
        return self.received[-1]

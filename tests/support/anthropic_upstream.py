"""A test upstream speaking Anthropic's Messages API exactly, with recording, scripts and faults.

By default it answers like the demo model. A `Script` makes it answer with given content blocks, split
into the given delta pieces (a value across input_json_delta events), with given usage (cache reads and
writes), or break off with an `event: error`. Like the real API, it pads JSON with whitespace inside
`data:` lines and sends `event:` lines, a ping after the first block starts, usage in message_start and
message_delta (output tokens only, as documented, unless `full_delta_usage`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from proxy.demo.messages import input_tokens
from tests.support.openai_upstream import TestUpstream

Json = dict[str, Any]


@dataclass
class Script:
    blocks: list[Json]
    # Per block index, the delta pieces (text for text blocks, JSON text for tool_use); default: whole.
    pieces: dict[int, list[str]] = field(default_factory=dict)
    usage: Json | None = None
    stop_reason: str = "end_turn"
    # Send `event: error` (overloaded_error) after this many events, then end the stream.
    error_after_events: int | None = None


@dataclass
class Fault:
    status: int
    error_type: str
    headers: dict[str, str] = field(default_factory=dict)


class AnthropicUpstream(TestUpstream):
    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.script: Script | None = None
        self.fault: Fault | None = None
        self.full_delta_usage = False

    def reset(self) -> None:
        super().reset()
        self.script, self.fault, self.full_delta_usage = None, None, False

    def build_app(self) -> web.Application:
        app = super().build_app()
        app.middlewares.append(self._anthropic_fault)
        return app

    @web.middleware
    async def _anthropic_fault(self, request: web.Request,
                               handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if self.fault is None:
            return await handler(request)
        body = {"type": "error", "error": {"type": self.fault.error_type, "message": f"injected {self.fault.status}"},
                "request_id": "req_injected"}
        return web.Response(status=self.fault.status, body=orjson.dumps(body), content_type="application/json",
                            headers=self.fault.headers)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        if self.script is None:
            return await super().messages(request)
        body = await request.json(loads=orjson.loads)
        script = self.script
        usage = script.usage or {"input_tokens": input_tokens(body), "cache_creation_input_tokens": 0,
                                 "cache_read_input_tokens": 0, "output_tokens": 7}
        message = {"id": "msg_script01", "type": "message", "role": "assistant", "model": body.get("model", ""),
                   "content": script.blocks, "stop_reason": script.stop_reason, "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(message), content_type="application/json")
        return await self.stream(request, self._events(message, script), done_marker=False)

    async def _events(self, message: Json, script: Script) -> AsyncIterator[bytes]:
        usage = message["usage"]
        events: list[tuple[str, Json]] = [("message_start", {"message": {
            **message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}})]
        for index, block in enumerate(script.blocks):
            events.extend(_block_events(index, block, script.pieces.get(index)))
            if index == 0:
                events.append(("ping", {}))
        delta_usage = usage if self.full_delta_usage else {"output_tokens": usage["output_tokens"]}
        events.append(("message_delta", {"delta": {"stop_reason": script.stop_reason, "stop_sequence": None},
                                         "usage": delta_usage}))
        events.append(("message_stop", {}))
        for number, (name, payload) in enumerate(events):
            if script.error_after_events is not None and number == script.error_after_events:
                yield _event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                return
            yield _event(name, payload)


def _block_events(index: int, block: Json, pieces: list[str] | None) -> list[tuple[str, Json]]:
    kind = block["type"]
    if kind == "text":
        start: Json = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in pieces or [block["text"]]]
    elif kind == "tool_use":
        start = {**block, "input": {}}
        whole = orjson.dumps(block["input"]).decode()
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces or [whole]]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces or [block["thinking"]]]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        start, deltas = block, []
    return [("content_block_start", {"index": index, "content_block": start}),
            *[("content_block_delta", {"index": index, "delta": d}) for d in deltas],
            ("content_block_stop", {"index": index})]


def _event(name: str, payload: Json) -> bytes:
    # The real API pads its JSON with spaces before the closing brace: valid JSON, and the relay must cope.
    data = orjson.dumps({"type": name, **payload})
    return b"event: " + name.encode() + b"\ndata: " + data[:-1] + b"    }"

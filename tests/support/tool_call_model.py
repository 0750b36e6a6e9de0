"""A model that answers with a tool call, in OpenAI's wire format for chat completions and responses, whole
or streamed with its arguments cut into small deltas; it records what it received."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

Json = dict[str, Any]


class ToolCallModel:
    __test__ = False

    def __init__(self) -> None:
        self.arguments = "{}"
        self.piece = 5  # characters of arguments per streamed delta
        self.received: list[Json] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/responses", self.responses)
        return app

    def pieces(self) -> list[str]:
        return [self.arguments[i : i + self.piece] for i in range(0, len(self.arguments), self.piece)]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        self.received.append(body)
        ident = {"id": "chatcmpl-tool", "created": int(time.time()), "model": body["model"]}
        usage = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
        if not body.get("stream"):
            call = {"id": "call_1", "type": "function", "function": {"name": "act", "arguments": self.arguments}}
            message = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}
            return web.json_response({**ident, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}]}, dumps=_dumps)

        def chunk(delta: Json, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return orjson.dumps({**ident, "object": "chat.completion.chunk", "choices": [choice]})

        async def events() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "act", "arguments": ""}}]})
            for piece in self.pieces():
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            yield chunk({}, "tool_calls")
            yield orjson.dumps({**ident, "object": "chat.completion.chunk", "choices": [], "usage": usage})

        return await _stream(request, events(), done=True)

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        self.received.append(body)
        item = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1", "name": "act",
                "arguments": self.arguments}
        usage = {"input_tokens": 10, "output_tokens": 10, "total_tokens": 20,
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
        done = {"id": "resp_tool", "object": "response", "created_at": int(time.time()), "model": body["model"],
                "status": "completed", "output": [item], "usage": usage, "tools": [], "tool_choice": "auto",
                "parallel_tool_calls": True, "error": None, "incomplete_details": None, "metadata": {}}
        if not body.get("stream"):
            return web.json_response(done, dumps=_dumps)
        where = {"item_id": "fc_1", "output_index": 0}
        sequence: list[tuple[str, Json]] = [
            ("response.created", {"response": {**done, "status": "in_progress", "output": [], "usage": None}}),
            ("response.output_item.added", {"output_index": 0, "item": {**item, "arguments": "",
                                                                         "status": "in_progress"}}),
            *[("response.function_call_arguments.delta", {**where, "delta": p}) for p in self.pieces()],
            ("response.function_call_arguments.done", {**where, "arguments": self.arguments}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": done}),
        ]

        async def events() -> AsyncIterator[bytes]:
            for number, (kind, payload) in enumerate(sequence):
                yield b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(
                    {"type": kind, "sequence_number": number, **payload})

        return await _stream(request, events(), done=False)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _stream(request: web.Request, events: AsyncIterator[bytes], done: bool) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    async for event in events:
        await response.write((event if event.startswith(b"event: ") else b"data: " + event) + b"\n\n")
    if done:
        await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response

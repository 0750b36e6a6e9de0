"""A deterministic model server: the upstream behind `llm-policy-proxy demo`.

It speaks OpenAI's wire format (JSON bodies, SSE chunks with a final usage chunk, `[DONE]`, responses
events, base64 embeddings) and Anthropic's Messages API (demo/messages.py), so that the SDKs and the
proxy behave exactly as they would with a provider. The test upstreams in tests/support extend it with
recording and fault injection.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from . import chat, messages
from .behaviour import count_tokens
from .wire import digest as _digest
from .wire import flatten
from .wire import json_response as _json
from .wire import openai_usage as _usage

Json = dict[str, Any]
__all__ = ["MODELS", "DemoModel", "flatten"]
MODELS = ("demo-model", "demo-embedding")


class DemoModel:
    """Replies with a fixed sentence that quotes the last user text, in words streamed one by one."""

    chunk_delay_s: float = 0.0

    def reply(self, prompt: str) -> str:
        return f"Hello from the demo model. You said: {prompt}" if prompt else "Hello from the demo model."

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", messages.count)
        app.router.add_get("/v1/models", self.models)
        # Azure OpenAI routes by deployment: same handlers behind a different path.
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self.embeddings)
        return app

    async def models(self, _: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "demo"} for m in MODELS]
        return _json({"object": "list", "data": data})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await chat.chat(self, request)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await messages.messages(self, request)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        prompt = body.get("prompt", "")
        prompt_text = prompt if isinstance(prompt, str) else " ".join(str(p) for p in prompt)
        words = self.reply(prompt_text).split(" ")
        usage = _usage(count_tokens(prompt_text), len(words))
        ident = {"id": "cmpl-demo" + _digest(prompt_text.encode())[:20], "object": "text_completion",
                 "created": int(time.time()), "model": body["model"], "system_fingerprint": "fp_demo"}
        if not body.get("stream"):
            return _json({**ident, "usage": usage, "choices": [
                {"index": 0, "text": " ".join(words), "logprobs": None, "finish_reason": "stop"}]})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include_usage else {}

        async def events() -> AsyncIterator[bytes]:
            for i, word in enumerate(words):
                last = i == len(words) - 1
                yield orjson.dumps({**ident, **extra, "choices": [{"index": 0, "text": (" " if i else "") + word,
                                    "logprobs": None, "finish_reason": "stop" if last else None}]})
            if include_usage:
                yield orjson.dumps({**ident, "choices": [], "usage": usage})
        return await self.stream(request, events())

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        value = body.get("input", "")
        prompt = value if isinstance(value, str) else flatten(
            [flatten(item.get("content")) for item in value if isinstance(item, dict)])
        text = self.reply(prompt)
        words = text.split(" ")
        response_id = "resp_demo" + _digest(prompt.encode())[:20]
        item_id = "msg_demo" + _digest(text.encode())[:20]
        usage = {"input_tokens": count_tokens(prompt) + count_tokens(body.get("instructions") or ""),
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens": len(words),
                 "output_tokens_details": {"reasoning_tokens": 0}}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]  # type: ignore[operator]
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
        base = {"id": response_id, "object": "response", "created_at": int(time.time()), "model": body["model"],
                "instructions": body.get("instructions"), "output": [], "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None,
                "metadata": {}, "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}}}
        done = {**base, "status": "completed", "output": [item], "usage": usage}
        if not body.get("stream"):
            return _json(done)

        async def events() -> AsyncIterator[bytes]:
            in_progress = {**base, "status": "in_progress", "usage": None}
            empty_item = {**item, "status": "in_progress", "content": []}
            where = {"item_id": item_id, "output_index": 0, "content_index": 0}
            sequence: list[tuple[str, Json]] = [
                ("response.created", {"response": in_progress}),
                ("response.in_progress", {"response": in_progress}),
                ("response.output_item.added", {"output_index": 0, "item": empty_item}),
                ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
                *[("response.output_text.delta", {**where, "delta": (" " if i else "") + w, "logprobs": []})
                  for i, w in enumerate(words)],
                ("response.output_text.done", {**where, "text": text, "logprobs": []}),
                ("response.content_part.done", {**where, "part": part}),
                ("response.output_item.done", {"output_index": 0, "item": item}),
                ("response.completed", {"response": done}),
            ]
            for number, (kind, payload) in enumerate(sequence):
                yield b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(
                    {"type": kind, "sequence_number": number, **payload})
        return await self.stream(request, events(), done_marker=False)

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        value = body["input"]
        items = [value] if isinstance(value, str) or (value and isinstance(value[0], int)) else value
        dimensions = int(body.get("dimensions") or 8)
        data = []
        for index, item in enumerate(items):
            vector = _vector(orjson.dumps(item), dimensions)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(i) if isinstance(i, list) else count_tokens(str(i)) for i in items)
        return _json({"object": "list", "data": data, "model": request.match_info.get("deployment") or body["model"],
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def stream(self, request: web.Request, events: AsyncIterator[bytes],
                     done_marker: bool = True) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        async for event in events:
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            data = event if event.startswith(b"event: ") else b"data: " + event
            await response.write(data + b"\n\n")
        if done_marker:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _vector(seed: bytes, dimensions: int) -> list[float]:
    raw = hashlib.shake_256(seed).digest(dimensions * 2)
    return [round((int.from_bytes(raw[i:i + 2], "little") / 65535.0) * 2 - 1, 6) for i in range(0, len(raw), 2)]

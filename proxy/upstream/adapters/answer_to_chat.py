"""An Anthropic Messages answer as an OpenAI chat completion: whole, or event by event as chunks (pure).

Text blocks become `content`, tool_use blocks `tool_calls` (arguments streamed as they come), stop
reasons finish reasons, and usage OpenAI's (prompt_tokens includes cache reads and writes). Thinking is
dropped: chat completions has no place for it.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ...endpoints.base import Json
from ...errors import UpstreamError

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "refusal": "content_filter", "pause_turn": "stop", "model_context_window_exceeded": "length"}


def chat_usage(usage: Any) -> Json:
    usage = usage if isinstance(usage, dict) else {}
    fresh, read, written, output = (int(usage.get(k) or 0) for k in (
        "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens"))
    prompt = fresh + read + written
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": read}}


def to_chat_completion(answer: Json) -> Json:
    texts: list[str] = []
    calls: list[Json] = []
    for block in answer.get("content") or ():
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id", ""), "type": "function", "function": {
                "name": block.get("name", ""), "arguments": orjson.dumps(block.get("input") or {}).decode()}})
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None,
                     "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {"id": f"chatcmpl-{answer.get('id', '')}", "object": "chat.completion", "created": int(time.time()),
            "model": answer.get("model", ""), "choices": [{
                "index": 0, "message": message, "logprobs": None,
                "finish_reason": FINISH_REASONS.get(answer.get("stop_reason") or "end_turn", "stop")}],
            "usage": chat_usage(answer.get("usage"))}


class ChunkTranslator:
    """Messages stream events in, chat.completion.chunk documents out."""

    def __init__(self, client_body: Json) -> None:
        self._include_usage = bool((client_body.get("stream_options") or {}).get("include_usage"))
        self._ident: Json = {"id": "chatcmpl-", "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": ""}
        self._usage: Json = {}
        self._tool_index: dict[int, int] = {}  # content block index -> tool_calls index
        self._finish: str | None = None
        self._done = False

    def feed(self, name: bytes | None, event: Json | None) -> list[tuple[bytes | None, Json]]:
        if event is None or self._done:
            return []
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._ident.update(id=f"chatcmpl-{message.get('id', '')}", model=message.get("model", ""))
            self._usage.update(_present(message.get("usage")))
            return [self._chunk({"role": "assistant", "content": "", "refusal": None})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tool_index.setdefault(int(event.get("index", 0)), len(self._tool_index))
                return [self._chunk({"tool_calls": [{"index": index, "id": block.get("id", ""), "type": "function",
                                                     "function": {"name": block.get("name", ""), "arguments": ""}}]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self._tool_index.get(int(event.get("index", 0)), 0)
                return [self._chunk({"tool_calls": [{"index": index, "function": {
                    "arguments": delta.get("partial_json", "")}}]})]
            return []
        if kind == "message_delta":
            self._usage.update(_present(event.get("usage")))
            stop = (event.get("delta") or {}).get("stop_reason")
            self._finish = FINISH_REASONS.get(stop or "end_turn", "stop")
            return []
        if kind == "message_stop":
            return self._close()
        if kind == "error":
            error = event.get("error") or {}
            raise UpstreamError(f"The upstream stream failed: {error.get('message', 'unknown error')}",
                                code=str(error.get("type") or "upstream_error"))
        return []

    def finish(self) -> list[tuple[bytes | None, Json]]:
        """At the end of the upstream's stream, which must have sent message_stop."""
        if not self._done:
            raise UpstreamError("The upstream ended its stream before message_stop.", code="stream_truncated")
        return []

    def _close(self) -> list[tuple[bytes | None, Json]]:
        self._done = True
        out = [self._chunk({}, self._finish or "stop")]
        if self._include_usage:
            out.append((None, {**self._ident, "choices": [], "usage": chat_usage(self._usage)}))
        return out

    def _chunk(self, delta: Json, finish: str | None = None) -> tuple[bytes | None, Json]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        extra = {"usage": None} if self._include_usage else {}
        return None, {**self._ident, "choices": [choice], **extra}


def _present(usage: Any) -> Json:
    return {k: v for k, v in usage.items() if v is not None} if isinstance(usage, dict) else {}

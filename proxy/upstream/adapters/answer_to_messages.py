"""An OpenAI chat completion as an Anthropic Messages answer: whole, or chunk by chunk as events (pure).

`content` becomes a text block and each tool call a tool_use block; the stream gets Anthropic's exact
event sequence (message_start, content_block_start/delta/stop per block, message_delta with the stop
reason and usage, message_stop), every event with its `event:` line. Usage arrives in the last chunk,
so message_start reports zero tokens and message_delta the real counts, input included.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...endpoints.base import Json
from ...errors import UpstreamError

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}
Event = tuple[bytes | None, Json]


def messages_usage(usage: Any) -> Json:
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return {"input_tokens": max(0, int(usage.get("prompt_tokens") or 0) - cached),
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached,
            "output_tokens": int(usage.get("completion_tokens") or 0)}


def to_message(completion: Json) -> Json:
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[Json] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                        "input": _arguments(function.get("arguments"))})
    return {"id": f"msg_{completion.get('id', '')}", "type": "message", "role": "assistant",
            "model": completion.get("model", ""), "content": content,
            "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None, "usage": messages_usage(completion.get("usage"))}


def _arguments(arguments: Any) -> Json:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        raise UpstreamError("The upstream returned tool call arguments that are not JSON.",
                            code="invalid_tool_arguments") from None
    return value if isinstance(value, dict) else {"value": value}


class EventTranslator:
    """chat.completion.chunk documents in (None for [DONE]), Messages stream events out."""

    def __init__(self, client_body: Json) -> None:
        self._started = False
        self._block: int | None = None  # the open content block's index
        self._block_kind = ""
        self._next = 0
        self._tools: dict[int, int] = {}  # tool_calls index -> content block index
        self._stop: str | None = None
        self._usage: Json = {}
        self._done = False

    def feed(self, name: bytes | None, chunk: Json | None) -> list[Event]:
        if self._done:
            return []
        if chunk is None:  # [DONE]
            return self._close()
        out: list[Event] = []
        if not self._started:
            self._started = True
            out.append(_event("message_start", {"message": {
                "id": f"msg_{chunk.get('id', '')}", "type": "message", "role": "assistant",
                "model": chunk.get("model", ""), "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}))
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out.extend(self._open("text", {"type": "text", "text": ""}))
                out.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                out.extend(self._tool_call(call))
            if choice.get("finish_reason"):
                self._stop = STOP_REASONS.get(choice["finish_reason"], "end_turn")
                out.extend(self._close_block())
        return out

    def finish(self) -> list[Event]:
        """At the end of the upstream's stream: a stream cut before its finish reason is an error."""
        if self._done:
            return []
        if self._stop is None:
            raise UpstreamError("The upstream ended its stream before a finish reason.", code="stream_truncated")
        return self._close()

    def _tool_call(self, call: Json) -> list[Event]:
        out: list[Event] = []
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self._tools:
            out.extend(self._close_block())
            self._tools[index] = self._next
            out.extend(self._open("tool", {"type": "tool_use", "id": call.get("id", ""),
                                           "name": function.get("name", ""), "input": {}}))
        if function.get("arguments"):
            if self._block != self._tools[index]:
                # Messages cannot reopen a finished block; dropping the piece would corrupt the call.
                raise UpstreamError("The upstream interleaved the arguments of several tool calls.",
                                    code="interleaved_tool_calls")
            out.append(self._delta({"type": "input_json_delta", "partial_json": function["arguments"]}))
        return out

    def _open(self, kind: str, block: Json) -> list[Event]:
        if self._block is not None and self._block_kind == kind == "text":
            return []
        out = self._close_block()
        self._block, self._block_kind = self._next, kind
        self._next += 1
        out.append(_event("content_block_start", {"index": self._block, "content_block": block}))
        return out

    def _delta(self, delta: Json) -> Event:
        return _event("content_block_delta", {"index": self._block, "delta": delta})

    def _close_block(self) -> list[Event]:
        if self._block is None:
            return []
        index, self._block = self._block, None
        return [_event("content_block_stop", {"index": index})]

    def _close(self) -> list[Event]:
        self._done = True
        out = self._close_block()
        out.append(_event("message_delta", {"delta": {"stop_reason": self._stop or "end_turn", "stop_sequence": None},
                                            "usage": messages_usage(self._usage)}))
        out.append(_event("message_stop", {}))
        return out


def _event(kind: str, payload: Json) -> Event:
    return kind.encode(), {"type": kind, **payload}

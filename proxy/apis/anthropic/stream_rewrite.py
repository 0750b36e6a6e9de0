"""A streamed Messages answer rewritten event by event: answer PII redacted, the caller's values restored.

Each text or tool_use content block is one stream (its `index`): text_delta and input_json_delta pieces
go through a redactor and a restorer that hold back only what may still change (a value split across
events), and what is held when the block ends is sent as one more delta just before its
content_block_stop. In input_json_delta the pieces are JSON text, so a restored value is JSON-escaped.
Thinking blocks pass untouched: they are signed by the provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ...endpoints.base import EventRewriter, Json
from ...upstream import sse

if TYPE_CHECKING:
    from proxy.gateway.answer_transform import OutputRules, StreamText
    from proxy.gateway.relay import Tally

_DELTA_KEYS = {"text_delta": "text", "input_json_delta": "partial_json"}


def messages_rewriter(rules: OutputRules, tally: Tally) -> EventRewriter:
    from proxy.gateway.answer_transform import StreamText

    blocks: dict[int, tuple[str, StreamText]] = {}

    def rewrite(event: Json, name: bytes | None) -> list[bytes]:
        kind = event.get("type")
        index = event.get("index")
        out: list[bytes] = []
        if kind == "content_block_start" and isinstance(index, int) and isinstance(event.get("content_block"), dict):
            block_type = event["content_block"].get("type")
            if block_type == "text":
                blocks[index] = ("text_delta", StreamText(rules, f"content[{index}].text"))
            elif block_type == "tool_use":
                # input_json_delta pieces are JSON text: restored values go in escaped.
                blocks[index] = ("input_json_delta", StreamText(rules, f"content[{index}].input", json=True))
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            delta = event["delta"]
            key = _DELTA_KEYS.get(delta.get("type", ""))
            held = blocks.get(index) if isinstance(index, int) else None
            if key is not None and held is not None and isinstance(delta.get(key), str):
                tally.texts.append(delta[key])
                delta[key] = held[1].feed(delta[key])
                if not delta[key]:
                    return []  # all of it held back for now
            elif isinstance(delta.get("thinking"), str):
                tally.texts.append(delta["thinking"])
        elif kind == "content_block_stop" and isinstance(index, int) and index in blocks:
            delta_type, stream = blocks.pop(index)
            rest = stream.flush()
            if rest:
                out.append(held_delta(index, delta_type, rest))
        elif kind == "error" and isinstance(event.get("error"), dict):
            tally.stream_error = str(event["error"].get("type") or "error")
        out.append(sse.encode(orjson.dumps(event), name))
        return out
    return rewrite


def held_delta(index: int, delta_type: str, text: str) -> bytes:
    """The tail a block's streams held back, sent just before the block's content_block_stop."""
    delta = {"type": delta_type, _DELTA_KEYS[delta_type]: text}
    return sse.encode(orjson.dumps({"type": "content_block_delta", "index": index, "delta": delta}),
                      b"content_block_delta")

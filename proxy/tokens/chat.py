"""Prompt tokens of a chat completions body: messages with the cookbook's overheads, plus tools.

Content parts are shared with the Responses API, so their counting lives here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.tokens.images import TileCosts, image_url_tokens
from proxy.tokens.overheads import REPLY_PRIMING, TOKENS_PER_MESSAGE, TOKENS_PER_NAME, Count
from proxy.tokens.tools import ToolOverheads, function_definitions, tools_tokens

# The model sees a tool result by position, not by the opaque call id, so ids are not counted.
_UNSEEN_KEYS = frozenset({"tool_call_id"})
_TEXT_PART_KEYS = {
    "text": "text",
    "input_text": "text",
    "output_text": "text",
    "summary_text": "text",
    "refusal": "refusal",
}


def chat_tokens(count: Count, tools: ToolOverheads, images: TileCosts, body: Mapping[str, Any]) -> int:
    total = REPLY_PRIMING
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                total += message_tokens(count, images, message)
    functions = [*function_definitions(body.get("tools")), *function_definitions(body.get("functions"))]
    return total + tools_tokens(count, tools, functions)


def message_tokens(count: Count, images: TileCosts, message: Mapping[str, Any]) -> int:
    total = TOKENS_PER_MESSAGE
    for key, value in message.items():
        if key in _UNSEEN_KEYS:
            continue
        if isinstance(value, str):
            total += count(value)
            if key == "name":
                total += TOKENS_PER_NAME
        elif key == "content":
            total += content_tokens(count, images, value)
        elif key == "tool_calls" and isinstance(value, list):
            total += sum(tool_call_tokens(count, call) for call in value if isinstance(call, Mapping))
        elif key == "function_call" and isinstance(value, Mapping):
            total += call_text_tokens(count, value)
    return total


def content_tokens(count: Count, images: TileCosts, content: object) -> int:
    """A content string or list of parts, in chat (`text`, `image_url`) or Responses shapes
    (`input_text`, `output_text`, `input_image`). Audio and file parts have no offline estimate."""
    if isinstance(content, str):
        return count(content)
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if isinstance(part, str):
            total += count(part)
        elif isinstance(part, Mapping):
            total += _part_tokens(count, images, part)
    return total


def _part_tokens(count: Count, images: TileCosts, part: Mapping[str, Any]) -> int:
    kind = part.get("type")
    text_key = _TEXT_PART_KEYS.get(kind) if isinstance(kind, str) else None
    if text_key is not None:
        text = part.get(text_key)
        return count(text) if isinstance(text, str) else 0
    if kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, Mapping):
            return image_url_tokens(image.get("url"), image.get("detail"), images)
        return image_url_tokens(image, None, images)
    if kind == "input_image":
        return image_url_tokens(part.get("image_url"), part.get("detail"), images)
    return 0


def tool_call_tokens(count: Count, call: Mapping[str, Any]) -> int:
    # Not covered by the cookbook: each call is rendered like a message of its own, so it is
    # charged the message overhead on top of its name and arguments.
    for key in ("function", "custom"):
        nested = call.get(key)
        if isinstance(nested, Mapping):
            return TOKENS_PER_MESSAGE + call_text_tokens(count, nested)
    return TOKENS_PER_MESSAGE


def call_text_tokens(count: Count, call: Mapping[str, Any]) -> int:
    """The name and arguments (or custom tool input) of a function call."""
    return sum(count(value) for key in ("name", "arguments", "input") if isinstance(value := call.get(key), str))

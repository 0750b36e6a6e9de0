"""Prompt tokens of a Responses API body: `instructions`, `input` (string or items) and tools.

Items reuse the chat overheads: each message, call or call output costs what a chat message does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.tokens.chat import call_text_tokens, content_tokens
from proxy.tokens.images import TileCosts
from proxy.tokens.overheads import REPLY_PRIMING, TOKENS_PER_MESSAGE, Count
from proxy.tokens.tools import ToolOverheads, function_definitions, tools_tokens

_CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})
_OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})


def responses_tokens(count: Count, tools: ToolOverheads, images: TileCosts, body: Mapping[str, Any]) -> int:
    total = REPLY_PRIMING
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        total += TOKENS_PER_MESSAGE + count("developer") + count(instructions)
    items = body.get("input")
    if isinstance(items, str):
        total += TOKENS_PER_MESSAGE + count("user") + count(items)
    elif isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping):
                total += item_tokens(count, images, item)
    return total + tools_tokens(count, tools, list(function_definitions(body.get("tools"))))


def item_tokens(count: Count, images: TileCosts, item: Mapping[str, Any]) -> int:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        role_tokens = count(role) if isinstance(role, str) else 0
        return TOKENS_PER_MESSAGE + role_tokens + content_tokens(count, images, item.get("content"))
    if kind in _CALL_ITEMS:
        return TOKENS_PER_MESSAGE + call_text_tokens(count, item)
    if kind in _OUTPUT_ITEMS:
        return TOKENS_PER_MESSAGE + content_tokens(count, images, item.get("output"))
    if kind == "reasoning":
        summary = item.get("summary")
        return TOKENS_PER_MESSAGE + content_tokens(count, images, summary if isinstance(summary, list) else None)
    # item_reference and built-in tool call items point at server-side state we cannot see.
    return TOKENS_PER_MESSAGE

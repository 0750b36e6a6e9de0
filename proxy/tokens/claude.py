"""Offline prompt-token estimates for Claude models, whose tokenizers are not published.

cl100k_base counts scaled per tokenizer generation, plus fixed costs per request, message, content block
and tool definition, and the tool-use system prompt the API adds when `tools` are present. The constants
were fitted to, and the error measured on, usage recorded from the API (docs/anthropic.md,
bench/claude_tokens.py); the reported usage is what gets settled.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.tokens.imagesize import image_size
from proxy.tokens.overheads import Count

BASE_ENCODING = "cl100k_base"


@dataclass(frozen=True, slots=True)
class ClaudeCosts:
    scale: float  # Claude tokens per cl100k_base token of ordinary text
    request: int
    message: int
    system: int
    block: int  # a tool_use, tool_result, image or document block, beyond its content
    tool: int  # a tool definition, beyond its name, description and schema
    tool_prompt: int  # the tool-use system prompt added when tools are present
    tool_forced: int  # added to it when tool_choice forces a call (any, tool)
    thinking: int  # extended thinking enabled
    structured: int  # output_config.format (structured outputs), beyond its schema


# Fitted to usage recorded from the API (bench/claude_tokens.py; docs/anthropic.md has the error measured).
CLAUDE_COSTS: Mapping[str, ClaudeCosts] = {
    # Claude 3 through 4.6.
    "claude-3": ClaudeCosts(scale=1.0, request=3, message=4, system=3, block=6, tool=85, tool_prompt=430,
                            tool_forced=110, thinking=30, structured=130),
    # The tokenizer introduced with Claude Opus 4.7 (and the models after it): ~1.4x the tokens for text.
    "claude-4.7": ClaudeCosts(scale=1.4, request=3, message=2, system=3, block=8, tool=95, tool_prompt=330,
                              tool_forced=110, thinking=15, structured=130),
}
# A Messages request for a model of another family (served by translation): its own encoding, these overheads.
GENERIC_COSTS = ClaudeCosts(scale=1.0, request=3, message=4, system=3, block=6, tool=8, tool_prompt=0,
                            tool_forced=0, thinking=0, structured=0)

# Anthropic's image rule: (width x height) / 750, images resized to at most ~1.15 megapixels first.
IMAGE_PIXELS_PER_TOKEN = 750
MAX_IMAGE_TOKENS = 1600
# A PDF page costs its text plus the page as an image; 2,000 is the middle of the documented range.
PDF_PAGE_TOKENS = 2000
UNKNOWN_PDF_TOKENS = 3 * PDF_PAGE_TOKENS
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
# Decoding a PDF to count its pages is bounded: past this, pages are extrapolated from the size.
_PDF_SCAN_CHARS = 4 * 1024 * 1024


def tiktoken_name(encoding: str) -> str:
    """The tiktoken encoding an estimate counts with (the Claude estimates scale cl100k_base)."""
    return BASE_ENCODING if encoding in CLAUDE_COSTS else encoding


def scaled(count: Count, scale: float) -> Count:
    if scale == 1.0:
        return count
    return lambda text: math.ceil(count(text) * scale)


def costs_for(encoding: str) -> ClaudeCosts:
    return CLAUDE_COSTS.get(encoding, GENERIC_COSTS)


def messages_tokens(count: Count, costs: ClaudeCosts, body: Mapping[str, Any]) -> int:
    """Input tokens of a Messages API body; `count` is already scaled for the model's tokenizer."""
    total = costs.request
    system = body.get("system")
    if isinstance(system, str) and system:
        total += costs.system + count(system)
    elif isinstance(system, list) and system:
        total += costs.system + sum(block_tokens(count, costs, b) for b in system if isinstance(b, Mapping))
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                total += costs.message + content_tokens(count, costs, message.get("content"))
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        choice = body.get("tool_choice")
        total += costs.tool_prompt
        if isinstance(choice, Mapping) and choice.get("type") in ("any", "tool"):
            total += costs.tool_forced
        total += sum(tool_tokens(count, costs, t) for t in tools if isinstance(t, Mapping))
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        total += costs.thinking  # adaptive thinking showed no fixed cost in the recorded usage
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    if isinstance(fmt, Mapping):
        total += costs.structured + count(_json(fmt.get("schema")))
    return total


def content_tokens(count: Count, costs: ClaudeCosts, content: object) -> int:
    if isinstance(content, str):
        return count(content)
    if not isinstance(content, list):
        return 0
    return sum(block_tokens(count, costs, b) for b in content if isinstance(b, Mapping))


def block_tokens(count: Count, costs: ClaudeCosts, block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return count(text) if isinstance(text, str) else 0
    if kind == "tool_use":
        return costs.block + count(f"{block.get('name', '')}{_json(block.get('input'))}")
    if kind == "tool_result":
        return costs.block + content_tokens(count, costs, block.get("content"))
    if kind == "image":
        return costs.block + image_tokens(block.get("source"))
    if kind == "document":
        return costs.block + document_tokens(count, costs, block)
    # thinking and redacted_thinking: the API drops them from earlier turns, and counts them only in a
    # tool-use loop's last turn (an undercount there is settled with the reported usage).
    if kind == "search_result":
        return costs.block + content_tokens(count, costs, block.get("content")) + count(str(block.get("title", "")))
    return 0  # redacted_thinking and server-tool blocks: no offline estimate


def tool_tokens(count: Count, costs: ClaudeCosts, tool: Mapping[str, Any]) -> int:
    text = f"{tool.get('name', '')}{tool.get('description', '')}"
    schema = tool.get("input_schema")
    return costs.tool + count(text) + (count(_json(schema)) if isinstance(schema, Mapping) else 0)


def image_tokens(source: object) -> int:
    if not isinstance(source, Mapping) or source.get("type") != "base64" or not isinstance(source.get("data"), str):
        return MAX_IMAGE_TOKENS  # a URL or file id: the size is unknown, assume the largest
    size = _base64_image_size(source["data"])
    if size is None:
        return MAX_IMAGE_TOKENS
    width, height = size
    return min(MAX_IMAGE_TOKENS, max(1, math.ceil(width * height / IMAGE_PIXELS_PER_TOKEN)))


def document_tokens(count: Count, costs: ClaudeCosts, block: Mapping[str, Any]) -> int:
    source = block.get("source")
    extra = sum(count(block[k]) for k in ("title", "context") if isinstance(block.get(k), str))
    if not isinstance(source, Mapping):
        return extra
    kind = source.get("type")
    if kind == "text" and isinstance(source.get("data"), str):
        return extra + count(source["data"])
    if kind == "content":
        return extra + content_tokens(count, costs, source.get("content"))
    if kind == "base64" and isinstance(source.get("data"), str):
        return extra + pdf_pages(source["data"]) * PDF_PAGE_TOKENS
    return extra + UNKNOWN_PDF_TOKENS


def pdf_pages(data: str) -> int:
    head = data[:_PDF_SCAN_CHARS]
    head = head[: len(head) - len(head) % 4]
    try:
        pages = len(_PAGE.findall(binascii.a2b_base64(head)))
    except binascii.Error:
        return UNKNOWN_PDF_TOKENS // PDF_PAGE_TOKENS
    if len(data) > len(head) and head:
        pages = math.ceil(pages * len(data) / len(head))
    return max(1, pages)


def _base64_image_size(data: str) -> tuple[int, int] | None:
    prefix = data[:256 * 1024]
    prefix = prefix[: len(prefix) - len(prefix) % 4]
    try:
        return image_size(binascii.a2b_base64(prefix))
    except binascii.Error:
        return None


def _json(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return ""

"""The offline Claude estimate: scaling per tokenizer generation, fixed costs, images, PDFs, tools."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest

from proxy.tokens import TokenEstimator
from proxy.tokens.claude import CLAUDE_COSTS, MAX_IMAGE_TOKENS, PDF_PAGE_TOKENS, image_tokens, pdf_pages, tiktoken_name

HI: dict[str, Any] = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}


def png(width: int, height: int) -> str:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
    return base64.b64encode(header + struct.pack(">I", zlib.crc32(header[12:]))).decode()


def test_claude_estimates_count_with_cl100k_scaled(estimator: TokenEstimator) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    base = estimator.text("cl100k_base", text)
    assert estimator.text("claude-3", text) == base
    assert estimator.text("claude-4.7", text) == pytest.approx(base * CLAUDE_COSTS["claude-4.7"].scale, abs=1)
    assert tiktoken_name("claude-4.7") == "cl100k_base" and tiktoken_name("o200k_base") == "o200k_base"


@pytest.mark.parametrize(("prompt", "recorded"), [
    # input_tokens the API reported for these prompts alone (Claude Sonnet 4.5; pydantic-ai's
    # test_no_tools_no_output and llm-anthropic's test_async_prompt cassettes).
    ("Tell me a brief fact about Paris", 14), ("Two names for a pet pelican, be brief", 17)])
def test_a_one_message_request_matches_recorded_usage(estimator: TokenEstimator, prompt: str, recorded: int) -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}]}
    assert estimator.prompt("messages", "claude-3", body) == recorded


def test_tools_forced_calls_thinking_and_structured_output_add_their_costs(estimator: TokenEstimator) -> None:
    costs = CLAUDE_COSTS["claude-3"]
    plain = estimator.prompt("messages", "claude-3", HI)
    tool = {"name": "f", "description": "d", "input_schema": {"type": "object"}}
    with_tool = estimator.prompt("messages", "claude-3", {**HI, "tools": [tool]})
    forced = estimator.prompt("messages", "claude-3", {**HI, "tools": [tool], "tool_choice": {"type": "any"}})
    assert with_tool - plain > costs.tool_prompt + costs.tool
    assert forced - with_tool == costs.tool_forced
    thinking = estimator.prompt("messages", "claude-3", {**HI, "thinking": {"type": "enabled", "budget_tokens": 9}})
    assert thinking - plain == costs.thinking
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    structured = estimator.prompt("messages", "claude-3", {**HI, "output_config": {"format": {
        "type": "json_schema", "schema": schema}}})
    assert structured - plain > costs.structured


def test_image_tokens_follow_the_pixels_over_750_rule() -> None:
    assert image_tokens({"type": "base64", "media_type": "image/png", "data": png(200, 150)}) == 40
    assert image_tokens({"type": "base64", "media_type": "image/png", "data": png(4000, 4000)}) == MAX_IMAGE_TOKENS
    assert image_tokens({"type": "url", "url": "https://example.com/a.png"}) == MAX_IMAGE_TOKENS
    assert image_tokens({"type": "base64", "data": "!!!not base64"}) == MAX_IMAGE_TOKENS


def test_pdf_pages_are_counted_from_the_document() -> None:
    pdf = b"%PDF-1.4\n" + b"1 0 obj << /Type /Pages /Count 3 >>\n" + b"<< /Type /Page >>\n" * 3
    assert pdf_pages(base64.b64encode(pdf).decode()) == 3


def test_documents_and_tool_blocks_count(estimator: TokenEstimator) -> None:
    pdf = base64.b64encode(b"<< /Type /Page >>" * 2).decode()
    body = {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
        {"type": "document", "source": {"type": "text", "data": "plain text"}},
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "result"}]},
        {"type": "redacted_thinking", "data": "opaque"}]}]}
    assert estimator.prompt("messages", "claude-3", body) > 2 * PDF_PAGE_TOKENS


def test_other_families_get_their_own_encoding_for_messages(estimator: TokenEstimator) -> None:
    assert estimator.prompt("messages", "o200k_base", HI) > 0

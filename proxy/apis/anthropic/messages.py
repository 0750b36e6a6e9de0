"""POST /v1/messages: what the Messages API differs in — its validation, where its text and usage are.

Text the model reads: the system prompt, text blocks, tool_use inputs (every string in them), tool_result
content and documents' text. Thinking blocks are scanned but never rewritten: the provider signed them,
and a changed block fails its signature check on the next turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...endpoints.base import EndpointSpec, Json, TextSlot, Usage, optional, tool_names
from ...endpoints.bounds import MAX_TOKENS, tokens
from ...errors import BadRequest
from .errors import stream_error
from .stream_rewrite import messages_rewriter

ROLES = ("user", "assistant")
TOOL_CHOICES = ("auto", "any", "tool", "none")
# tool_use inputs nest; deeper than this is not a tool call anyone writes, and recursion must be bounded.
MAX_DEPTH = 32


def validate(body: Json) -> None:
    if body.get("max_tokens") is None:
        raise BadRequest("max_tokens: Field required", param="max_tokens", code="missing_required_parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required" if messages is None else "messages: must be a non-empty list",
                         param="messages", code="missing_required_parameter" if messages is None else "invalid_type")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'", param=f"messages[{i}]",
                             code="invalid_type")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise BadRequest(f"messages.{i}.content: Input should be a valid string or list of content blocks",
                             param=f"messages[{i}].content", code="invalid_type")
        if isinstance(content, list):
            for j, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise BadRequest(f"messages.{i}.content.{j}: each content block must be an object with a "
                                     "string 'type'", param=f"messages[{i}].content[{j}]", code="invalid_type")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise BadRequest("system: Input should be a valid string or list of text blocks", param="system",
                         code="invalid_type")
    if isinstance(system, list) and not all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        raise BadRequest("system: each block must be a text block", param="system", code="invalid_type")
    stops = optional(body, "stop_sequences", list)
    if stops is not None and not all(isinstance(s, str) for s in stops):
        raise BadRequest("stop_sequences: Input should be a list of strings", param="stop_sequences",
                         code="invalid_type")
    choice = optional(body, "tool_choice", dict)
    if choice is not None and (choice.get("type") not in TOOL_CHOICES
                               or (choice["type"] == "tool" and not isinstance(choice.get("name"), str))):
        raise BadRequest("tool_choice: expected type auto, any, none, or tool with a name", param="tool_choice",
                         code="invalid_type")
    metadata = optional(body, "metadata", dict)
    if metadata is not None and metadata.get("user_id") is not None and not isinstance(metadata["user_id"], str):
        raise BadRequest("metadata.user_id: Input should be a valid string", param="metadata.user_id",
                         code="invalid_type")
    optional(body, "temperature", (int, float))


def end_user(body: Json) -> str | None:
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    return user if isinstance(user, str) and user else None


def texts(body: Json) -> Iterator[TextSlot]:
    system = body.get("system")
    if isinstance(system, str):
        yield "system", system, body, "system"
    elif isinstance(system, list):
        for i, block in enumerate(system):
            if isinstance(block.get("text"), str):
                yield f"system[{i}].text", block["text"], block, "text"
    for i, message in enumerate(body["messages"]):
        path = f"messages[{i}].content"
        if isinstance(message["content"], str):
            yield path, message["content"], message, "content"
        else:
            yield from blocks_texts(path, message["content"])


def blocks_texts(path: str, blocks: list[Any]) -> Iterator[TextSlot]:
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        where = f"{path}[{j}]"
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            yield f"{where}.text", block["text"], block, "text"
        elif kind == "tool_use" and isinstance(block.get("input"), dict | list):
            yield from json_strings(f"{where}.input", block["input"])
        elif kind in ("tool_result", "search_result"):
            content = block.get("content")
            if isinstance(content, str):
                yield f"{where}.content", content, block, "content"
            elif isinstance(content, list):
                yield from blocks_texts(f"{where}.content", content)
        elif kind == "document":
            yield from document_texts(where, block)
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            # Scanned (the policy sees findings) but written to a copy: the signed block stays as it was.
            yield f"{where}.thinking", block["thinking"], {"thinking": block["thinking"]}, "thinking"


def document_texts(where: str, block: Json) -> Iterator[TextSlot]:
    for key in ("title", "context"):
        if isinstance(block.get(key), str):
            yield f"{where}.{key}", block[key], block, key
    source = block.get("source")
    if not isinstance(source, dict):
        return
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        yield f"{where}.source.data", source["data"], source, "data"
    elif source.get("type") == "content" and isinstance(source.get("content"), list):
        yield from blocks_texts(f"{where}.source.content", source["content"])


def json_strings(path: str, value: dict[str, Any] | list[Any], depth: int = 0) -> Iterator[TextSlot]:
    """Every string value in a JSON object (a tool's input), with the slot to write it back to."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"{path}: nested more than {MAX_DEPTH} levels deep", param=path)
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        where = f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]"
        if isinstance(item, str):
            yield where, item, value, key
        elif isinstance(item, dict | list):
            yield from json_strings(where, item, depth + 1)


def output_texts(body: Json) -> Iterator[TextSlot]:
    for i, block in enumerate(body.get("content") or ()):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            yield f"content[{i}]", block["text"], block, "text"
        elif block.get("type") == "tool_use" and isinstance(block.get("input"), dict | list):
            yield from json_strings(f"content[{i}].input", block["input"])


def stream_texts(event: Json) -> Iterator[TextSlot]:
    """Generated text in one streamed event, for counting output when no usage is reported."""
    if event.get("type") != "content_block_delta" or not isinstance(event.get("delta"), dict):
        return
    delta = event["delta"]
    for key in ("text", "partial_json", "thinking"):
        if isinstance(delta.get(key), str):
            yield f"content[{event.get('index', 0)}]", delta[key], delta, key


def usage_of(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    fresh, read, written, output = (_count(value.get(k)) for k in (
        "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens"))
    return Usage(fresh + read + written, output, read, written)


def usage(body: Json) -> Usage | None:
    return usage_of(body.get("usage"))


def stream_usage(event: Json) -> Usage | None:
    kind = event.get("type")
    if kind == "message_start" and isinstance(event.get("message"), dict):
        return usage_of(event["message"].get("usage"))
    if kind == "message_delta":
        return usage_of(event.get("usage"))
    return None


def counts(body: Json) -> tuple[int, tuple[str, ...]]:
    return len(body["messages"]), tool_names(body)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


MESSAGES = EndpointSpec(
    name="messages",
    route="/v1/messages",
    upstream_path="messages",
    validate=validate,
    texts=texts,
    usage=usage,
    stream_usage=stream_usage,
    stream_texts=stream_texts,
    output_texts=output_texts,
    counts=counts,
    max_output_keys=("max_tokens",),
    int_params=(tokens("max_tokens"), ("top_k", 0, MAX_TOKENS)),
    end_user_param="metadata.user_id",
    api="anthropic",
    end_user=end_user,
    stream_rewriter=messages_rewriter,
    stream_error=stream_error,
    forward_headers=("anthropic-version", "anthropic-beta"),
)

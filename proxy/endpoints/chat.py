"""POST /v1/chat/completions: messages in, choices (or chunks with deltas) out."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import BadRequest
from .base import EndpointSpec, Json, TextSlot, Usage, content_slots, optional, token_usage, tool_names


def _validate(body: Json) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", param="messages",
                         code="missing_required_parameter" if messages is None else "invalid_type")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"Invalid 'messages[{i}]': expected an object with a string 'role'.",
                             param=f"messages[{i}]", code="invalid_type")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise BadRequest(f"Invalid type for 'messages[{i}].content': expected a string or an array.",
                             param=f"messages[{i}].content", code="invalid_type")
    optional(body, "stream_options", dict)
    optional(body, "n", int)
    optional(body, "temperature", (int, float))


def _texts(body: Json) -> Iterator[TextSlot]:
    for i, message in enumerate(body["messages"]):
        if message.get("content") is not None:
            yield from content_slots(f"messages[{i}].content", message, "content")
        for j, call in enumerate(message.get("tool_calls") or ()):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                yield f"messages[{i}].tool_calls[{j}].function.arguments", function["arguments"], \
                    function, "arguments"


def _output_texts(body: Json) -> Iterator[TextSlot]:
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            yield f"choices[{choice.get('index', 0)}]", message["content"], message, "content"


def _stream_texts(event: Json) -> Iterator[TextSlot]:
    for choice in event.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            yield f"choices[{choice.get('index', 0)}]", delta["content"], delta, "content"


def _usage(body: Json) -> Usage | None:
    return token_usage(body.get("usage"), "prompt_tokens", "completion_tokens", "prompt_tokens_details")


def _counts(body: Json) -> tuple[int, tuple[str, ...]]:
    return len(body["messages"]), tool_names(body)



CHAT = EndpointSpec(
    name="chat.completions",
    route="/v1/chat/completions",
    upstream_path="chat/completions",
    validate=_validate,
    texts=_texts,
    usage=_usage,
    stream_usage=_usage,
    stream_texts=_stream_texts,
    output_texts=_output_texts,
    counts=_counts,
    max_output_keys=("max_completion_tokens", "max_tokens"),
    usage_opt_in=True,
)

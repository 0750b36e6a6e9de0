"""POST /v1/responses: input items and instructions in, output items (or typed events) out."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import BadRequest
from .base import EndpointSpec, Json, TextSlot, Usage, content_slots, optional, token_usage, tool_names


def _validate(body: Json) -> None:
    value = body.get("input")
    if value is not None and not isinstance(value, str | list):
        raise BadRequest("Invalid type for 'input': expected a string or an array.", param="input",
                         code="invalid_type")
    if value is None and body.get("previous_response_id") is None and body.get("prompt") is None:
        raise BadRequest("Missing required parameter: 'input'.", param="input",
                         code="missing_required_parameter")
    optional(body, "instructions", str)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise BadRequest(f"Invalid type for 'input[{i}]': expected an object.", param=f"input[{i}]",
                                 code="invalid_type")


def _texts(body: Json) -> Iterator[TextSlot]:
    if isinstance(body.get("instructions"), str):
        yield "instructions", body["instructions"], body, "instructions"
    value = body.get("input")
    if isinstance(value, str):
        yield "input", value, body, "input"
        return
    for i, item in enumerate(value or ()):
        if "content" in item:
            yield from content_slots(f"input[{i}].content", item, "content")
        for key in ("arguments", "output"):
            if isinstance(item.get(key), str):
                yield f"input[{i}].{key}", item[key], item, key


def _output_texts(body: Json) -> Iterator[TextSlot]:
    for i, item in enumerate(body.get("output") or ()):
        for j, part in enumerate(item.get("content") or () if isinstance(item, dict) else ()):
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield f"output[{i}].content[{j}]", part["text"], part, "text"


def _stream_texts(event: Json) -> Iterator[TextSlot]:
    kind = event.get("type")
    if kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
        yield f"output[{event.get('output_index', 0)}]", event["delta"], event, "delta"
    elif kind == "response.output_text.done" and isinstance(event.get("text"), str):
        yield f"output[{event.get('output_index', 0)}].done", event["text"], event, "text"
    elif kind in ("response.completed", "response.incomplete") and isinstance(event.get("response"), dict):
        for path, text, slot, key in _output_texts(event["response"]):
            yield f"{path}.done", text, slot, key


def _usage(body: Json) -> Usage | None:
    return token_usage(body.get("usage"), "input_tokens", "output_tokens", "input_tokens_details")


def _stream_usage(event: Json) -> Usage | None:
    response = event.get("response")
    if event.get("type") in ("response.completed", "response.incomplete", "response.failed") \
            and isinstance(response, dict):
        return _usage(response)
    return None


def _counts(body: Json) -> tuple[int, tuple[str, ...]]:
    value = body.get("input")
    return (len(value) if isinstance(value, list) else 1), tool_names(body)


RESPONSES = EndpointSpec(
    name="responses",
    route="/v1/responses",
    upstream_path="responses",
    validate=_validate,
    texts=_texts,
    usage=_usage,
    stream_usage=_stream_usage,
    stream_texts=_stream_texts,
    output_texts=_output_texts,
    counts=_counts,
    max_output_keys=("max_output_tokens",),
)

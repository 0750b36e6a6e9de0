"""POST /v1/responses: input items and instructions in, output items (or typed events) out."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import BadRequest
from .base import EndpointSpec, Json, TextSlot, Usage, optional, token_usage, tool_names
from .bounds import tokens
from .text_fields import ANSWER_STRUCTURAL, body_slots, string_slots


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
    return body_slots(body)  # instructions, input items of every type, tools, text.format, metadata, ...


def _output_texts(body: Json) -> Iterator[TextSlot]:
    output = body.get("output")
    for i in range(len(output) if isinstance(output, list) else 0):
        yield from string_slots(f"output[{i}]", output, i, ANSWER_STRUCTURAL)  # type: ignore[arg-type]


# A streamed event's text field, and the path of the output it belongs to, by event kind.
_FIELDS: dict[str, tuple[str, str]] = {
    "output_text": ("text", "content[{content_index}].text"),
    "refusal": ("refusal", "content[{content_index}].refusal"),
    "reasoning_text": ("text", "content[{content_index}].text"),
    "reasoning_summary_text": ("text", "summary[{summary_index}].text"),
    "function_call_arguments": ("arguments", "arguments"),
    "mcp_call_arguments": ("arguments", "arguments"),
    "custom_tool_call_input": ("input", "input"),
    "code_interpreter_call_code": ("code", "code"),
    "audio.transcript": ("transcript", "transcript"),
}


def _stream_texts(event: Json) -> Iterator[TextSlot]:
    """Deltas are streams keyed by the path of the output they build (`output[0].content[0].text`,
    `output[1].arguments`); a finished text (a `.done` event, or an item, part or response carrying
    whole texts) is yielded with `.done` after that path."""
    kind = event.get("type")
    if not isinstance(kind, str) or not kind.startswith("response."):
        return
    base, _, phase = kind[len("response."):].rpartition(".")
    fields = _FIELDS.get(base)
    if fields is not None:
        field, template = fields
        where = f"output[{event.get('output_index', 0)}]." + template.format(
            content_index=event.get("content_index", 0), summary_index=event.get("summary_index", 0))
        if phase == "delta" and isinstance(event.get("delta"), str):
            yield where, event["delta"], event, "delta"
        elif phase == "done" and isinstance(event.get(field), str):
            yield f"{where}.done", event[field], event, field
        return
    index = event.get("output_index", 0)
    if isinstance(event.get("item"), dict):
        whole = string_slots(f"output[{index}]", event, "item", ANSWER_STRUCTURAL)
    elif isinstance(event.get("part"), dict):
        part_path = "summary" if "summary_index" in event else "content"
        position = event.get("summary_index", event.get("content_index", 0))
        whole = string_slots(f"output[{index}].{part_path}[{position}]", event, "part", ANSWER_STRUCTURAL)
    elif isinstance(event.get("response"), dict):
        whole = _output_texts(event["response"])
    else:
        return
    for path, text, slot, key in whole:
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
    int_params=(tokens("max_output_tokens"), ("top_logprobs", 0, 20), ("max_tool_calls", 1, 2**31 - 1)),
)

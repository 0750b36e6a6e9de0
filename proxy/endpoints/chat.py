"""POST /v1/chat/completions: messages in, choices (or chunks with deltas) out."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import BadRequest
from .base import EndpointSpec, Json, TextSlot, Usage, optional, token_usage, tool_names
from .bounds import CHOICES, SEED, tokens
from .text_fields import ANSWER_STRUCTURAL, body_slots, string_slots


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
    optional(body, "temperature", (int, float))


def _texts(body: Json) -> Iterator[TextSlot]:
    return body_slots(body)


def _output_texts(body: Json) -> Iterator[TextSlot]:
    for choice in body.get("choices") or ():
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
            yield from string_slots(f"choices[{choice.get('index', 0)}].message", choice, "message", ANSWER_STRUCTURAL)


def _stream_texts(event: Json) -> Iterator[TextSlot]:
    """Each choice's content, refusal, audio transcript and tool-call arguments are separate streams
    (`choices[0]`, `choices[0].refusal`, `choices[0].tool_calls[1]`): a value split across deltas of one
    of them is held until it is whole."""
    for choice in event.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        where = f"choices[{choice.get('index', 0)}]"
        if isinstance(delta.get("content"), str):
            yield where, delta["content"], delta, "content"
        if isinstance(delta.get("refusal"), str):
            yield f"{where}.refusal", delta["refusal"], delta, "refusal"
        for position, call in enumerate(delta.get("tool_calls") or ()):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                yield f"{where}.tool_calls[{call.get('index', position)}]", function["arguments"], function, "arguments"
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
            yield f"{where}.function_call", legacy["arguments"], legacy, "arguments"
        audio = delta.get("audio")
        if isinstance(audio, dict) and isinstance(audio.get("transcript"), str):
            yield f"{where}.audio", audio["transcript"], audio, "transcript"


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
    choice_keys=("n",),
    int_params=(CHOICES, tokens("max_completion_tokens"), tokens("max_tokens"), ("top_logprobs", 0, 20), SEED),
    usage_opt_in=True,
)

"""POST /v1/embeddings: text (or token arrays) in, vectors out; never streamed."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import BadRequest
from .base import EndpointSpec, Json, TextSlot, Usage, no_texts, optional, token_usage
from .bounds import tokens
from .text_fields import body_slots


def _validate(body: Json) -> None:
    value = body.get("input")
    if isinstance(value, str):
        return
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value) or all(_is_token(v) for v in value):
            return
        if all(isinstance(v, list) and all(_is_token(t) for t in v) for v in value):
            return
    raise BadRequest("'input' must be a string, an array of strings or an array of token arrays.",
                     param="input", code="missing_required_parameter" if value is None else "invalid_type")


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _texts(body: Json) -> Iterator[TextSlot]:
    return body_slots(body)  # input strings (token arrays carry no text), user


def _usage(body: Json) -> Usage | None:
    return token_usage(body.get("usage"), "prompt_tokens", "completion_tokens", "prompt_tokens_details")


def _counts(body: Json) -> tuple[int, tuple[str, ...]]:
    optional(body, "dimensions", int)
    value = body["input"]
    return (1 if isinstance(value, str) or _is_token(value[0]) else len(value)), ()


EMBEDDINGS = EndpointSpec(
    name="embeddings",
    route="/v1/embeddings",
    upstream_path="embeddings",
    validate=_validate,
    texts=_texts,
    usage=_usage,
    stream_usage=_usage,
    stream_texts=no_texts,
    output_texts=no_texts,
    counts=_counts,
    streams=False,
    int_params=(tokens("dimensions"),),
)

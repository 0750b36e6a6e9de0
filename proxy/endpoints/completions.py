"""POST /v1/completions: the legacy prompt-in, text-out endpoint."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import BadRequest
from .base import EndpointSpec, Json, TextSlot, Usage, token_usage
from .bounds import CHOICES, MAX_CHOICES, SEED, tokens
from .text_fields import body_slots


def _validate(body: Json) -> None:
    prompt = body.get("prompt")
    if not isinstance(prompt, str | list):
        raise BadRequest("'prompt' must be a string or an array.", param="prompt",
                         code="missing_required_parameter" if prompt is None else "invalid_type")


def _texts(body: Json) -> Iterator[TextSlot]:
    return body_slots(body)  # prompt (strings; token arrays carry no text), suffix, user


def _choice_texts(event: Json) -> Iterator[TextSlot]:
    for choice in event.get("choices") or ():
        if isinstance(choice, dict) and isinstance(choice.get("text"), str):
            yield f"choices[{choice.get('index', 0)}]", choice["text"], choice, "text"


def _usage(body: Json) -> Usage | None:
    return token_usage(body.get("usage"), "prompt_tokens", "completion_tokens", "prompt_tokens_details")


def _counts(body: Json) -> tuple[int, tuple[str, ...]]:
    prompt = body["prompt"]
    return (1 if isinstance(prompt, str) else len(prompt)), ()


COMPLETIONS = EndpointSpec(
    name="completions",
    route="/v1/completions",
    upstream_path="completions",
    validate=_validate,
    texts=_texts,
    usage=_usage,
    stream_usage=_usage,
    stream_texts=_choice_texts,
    output_texts=_choice_texts,
    counts=_counts,
    max_output_keys=("max_tokens",),
    choice_keys=("n", "best_of"),
    int_params=(CHOICES, ("best_of", 1, MAX_CHOICES), tokens("max_tokens"), ("logprobs", 0, 5), SEED),
    usage_opt_in=True,
)

"""What every model endpoint supplies to the pipeline: parsing, where its text lives, where usage is."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ..config import Endpoint
from ..errors import BadRequest, ProxyError
from ..upstream import sse
from .bounds import IntRange, check_depth, check_end_user, integer

if TYPE_CHECKING:
    from proxy.gateway.answer_transform import OutputRules
    from proxy.gateway.relay import Tally

Json = dict[str, Any]
# The API a client speaks (and the policy input's request.api); an upstream speaks one too.
Api = Literal["openai", "anthropic"]
# Rewrites one streamed event for the answer obligations: (event, SSE event name) -> SSE bytes to send.
EventRewriter = Callable[[Json, "bytes | None"], list[bytes]]
# A piece of text the model will read (or wrote), with the JSON path and the slot to write it back to.
TextSlot = tuple[str, str, "dict[str, Any] | list[Any]", "str | int"]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0  # all of the prompt: includes cached and cache-write tokens
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0

    def merged(self, later: Usage) -> Usage:
        """Counts reported again later in the same answer (Anthropic: message_start, then message_delta)
        are cumulative, so each keeps the larger value."""
        return Usage(max(self.input_tokens, later.input_tokens), max(self.output_tokens, later.output_tokens),
                     max(self.cached_input_tokens, later.cached_input_tokens),
                     max(self.cache_write_input_tokens, later.cache_write_input_tokens))


@dataclass(frozen=True, slots=True)
class ModelCall:
    """A parsed, validated request to one model endpoint."""

    endpoint: EndpointSpec
    body: Json
    model: str
    stream: bool
    max_output_tokens: int | None
    user: str | None
    messages: int
    tool_names: tuple[str, ...]
    choices: int = 1  # completions generated per request (`n`, `best_of`)

    def worst_case_output(self, model_max_output: int, cap: int | None = None) -> int:
        """The one max-output rule: choices x (the request's cap, else the model's maximum output), within
        a policy's per-choice cap; 0 for endpoints that generate nothing (embeddings)."""
        if not self.endpoint.max_output_keys:
            return 0
        per_choice = self.max_output_tokens or model_max_output
        if cap is not None:
            per_choice = min(per_choice, cap)
        return per_choice * self.choices


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    name: Endpoint
    route: str
    upstream_path: str
    validate: Callable[[Json], None]
    texts: Callable[[Json], Iterator[TextSlot]]
    usage: Callable[[Json], Usage | None]
    stream_usage: Callable[[Json], Usage | None]
    # Output text in one streamed event: (choice/output index, text, slot to write it back to).
    stream_texts: Callable[[Json], Iterator[TextSlot]]
    output_texts: Callable[[Json], Iterator[TextSlot]]
    counts: Callable[[Json], tuple[int, tuple[str, ...]]]
    max_output_keys: tuple[str, ...] = ()
    # How many completions one request asks for: the largest of these (`n`, `best_of`), 1 when absent.
    choice_keys: tuple[str, ...] = ()
    # Every integer parameter with its sane range; the output caps and choice keys must be among them.
    int_params: tuple[IntRange, ...] = ()
    streams: bool = True
    # chat and completions report stream usage only when asked with stream_options.include_usage.
    usage_opt_in: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    api: Api = "openai"
    # The end user the body names (OpenAI: `user`; Anthropic: `metadata.user_id`).
    end_user: Callable[[Json], str | None] = lambda body: optional(body, "user", str)
    end_user_param: str = "user"
    # Streamed answers rewritten event by event for the answer obligations; None: the choice-based default.
    stream_rewriter: Callable[[OutputRules, Tally], EventRewriter] | None = None
    # An error after the stream started: the SSE bytes that end it.
    stream_error: Callable[[ProxyError], bytes] = lambda error: sse.encode(orjson.dumps(error.body()))
    # Request headers passed on to an upstream of the same API (Anthropic: version and beta flags).
    forward_headers: tuple[str, ...] = ()


def parse_call(spec: EndpointSpec, body: Any) -> ModelCall:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", param="model",
                         code="missing_required_parameter" if model is None else "invalid_type")
    stream = optional(body, "stream", bool) or False
    if stream and not spec.streams:
        raise BadRequest(f"{spec.name} does not support streaming.", param="stream")
    check_depth(body)
    ints = {bounds[0]: integer(body, bounds) for bounds in spec.int_params}
    spec.validate(body)
    # Several caps sent at once: the largest is the worst case, whichever one the upstream honours.
    max_output = max((v for k in spec.max_output_keys if (v := ints.get(k)) is not None), default=None)
    choices = max((v for k in spec.choice_keys if (v := ints.get(k)) is not None), default=1)
    user = check_end_user(spec.end_user(body), spec.end_user_param)
    messages, tools = spec.counts(body)
    return ModelCall(spec, body, model, stream, max_output, user, messages, tools, choices)


def optional(body: Json, key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int in Python; a JSON true is never a valid integer parameter.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadRequest(f"Invalid type for '{key}': expected {_json_type(names)}.", param=key,
                         code="invalid_type")
    return value


def _json_type(python_names: str) -> str:
    return (python_names.replace("str", "a string").replace("int", "an integer")
            .replace("bool", "a boolean").replace("dict", "an object").replace("list", "an array"))


def tool_names(body: Json) -> tuple[str, ...]:
    tools = optional(body, "tools", list) or []
    names = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise BadRequest(f"Invalid type for 'tools[{i}]': expected an object.", param=f"tools[{i}]",
                             code="invalid_type")
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else tool.get("name", tool.get("type"))
        if isinstance(name, str):
            names.append(name)
    return tuple(names)


def content_slots(path: str, container: dict[str, Any] | list[Any], key: str | int) -> Iterator[TextSlot]:
    """Text of a content value: a string, or a list of parts with text in `text` fields."""
    value = container[key]  # type: ignore[index]
    if isinstance(value, str):
        yield path, value, container, key
    elif isinstance(value, list):
        for i, part in enumerate(value):
            if isinstance(part, str):
                yield f"{path}[{i}]", part, value, i
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                yield f"{path}[{i}].text", part["text"], part, "text"


def no_texts(_: Json) -> Iterator[TextSlot]:
    return iter(())


def token_usage(usage: Any, input_key: str, output_key: str, details_key: str) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    details = usage.get(details_key)
    cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
    return Usage(_int(usage.get(input_key)), _int(usage.get(output_key)), _int(cached))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0

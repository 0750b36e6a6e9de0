"""Upstream adapters: a request in one API sent to an upstream that speaks the other, and its answer back.

    OpenAI chat client ──to_messages──▶ anthropic upstream ──to_chat_completion / ChunkTranslator──▶ client
    Messages client    ──to_chat──────▶ OpenAI-style upstream ──to_message / EventTranslator───────▶ client

Translation is pure (request_to_*, answer_to_*); relay.py does the I/O. Usage is read in the upstream's
format (its own EndpointSpec), answer obligations are applied in the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from ...apis.anthropic.messages import MESSAGES
from ...endpoints.base import Api, EndpointSpec, Json
from ...endpoints.chat import CHAT
from . import errors
from .answer_to_chat import ChunkTranslator, to_chat_completion
from .answer_to_messages import EventTranslator, to_message
from .request_to_chat import to_chat
from .request_to_chat import untranslatable as chat_untranslatable
from .request_to_messages import to_messages
from .request_to_messages import untranslatable as messages_untranslatable

Event = tuple[bytes | None, Json]


class StreamTranslator(Protocol):
    def feed(self, name: bytes | None, event: Json | None) -> list[Event]:
        """One upstream event (None: the `[DONE]` marker) in, the caller's events out."""

    def finish(self) -> list[Event]:
        """The upstream's stream ended; raises UpstreamError when it ended early."""


@dataclass(frozen=True, slots=True)
class Adapter:
    upstream_path: str
    upstream_spec: EndpointSpec  # where the upstream reports usage
    request: Callable[[Json, int], Json]  # the caller's effective body, max output tokens -> upstream body
    check: Callable[[Json], None]  # raises BadRequest for what the upstream's API cannot express
    answer: Callable[[Json], Json]
    stream: Callable[[Json], StreamTranslator]  # one per request, given the caller's effective body
    error: Callable[[int, bytes], bytes]

    def translate_request(self, effective_body: bytes, max_output_tokens: int) -> bytes:
        return orjson.dumps(self.request(orjson.loads(effective_body), max_output_tokens))


def upstream_api(kind: str) -> Api:
    return "anthropic" if kind == "anthropic" else "openai"


ADAPTERS: dict[tuple[str, Api], Adapter] = {
    (CHAT.name, "anthropic"): Adapter(MESSAGES.upstream_path, MESSAGES, to_messages, messages_untranslatable,
                                      to_chat_completion, ChunkTranslator, errors.to_openai),
    (MESSAGES.name, "openai"): Adapter(CHAT.upstream_path, CHAT, to_chat, chat_untranslatable, to_message,
                                       EventTranslator, errors.to_anthropic),
}


def adapter_for(spec: EndpointSpec, upstream_kind: str) -> Adapter | None:
    """None when the upstream speaks the caller's API; the catalogue serves no other pairing."""
    target = upstream_api(upstream_kind)
    if spec.api == target:
        return None
    return ADAPTERS[(spec.name, target)]


def check_translatable(spec: EndpointSpec, upstream_kind: str, body: Json) -> None:
    adapter = adapter_for(spec, upstream_kind)
    if adapter is not None:
        adapter.check(body)

"""The answer's PII obligations: redact the decision's types in everything the model writes (text,
refusals, tool-call arguments, Responses items) and restore the request's placeholders, whole or per
stream, with one placeholder book per answer; a changed text's logprobs are dropped."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from proxy.endpoints.base import EndpointSpec, Json
from proxy.pii import Placeholders, Scanner, StreamRedactor, StreamRestorer, redact, restore
from proxy.upstream import sse

_CHOICE: Final = re.compile(r"choices\[([0-9]+)\]")
_CHAT_STREAM: Final = re.compile(
    r"choices\[([0-9]+)\](?:\.(refusal|audio|function_call|tool_calls)(?:\[([0-9]+)\])?)?\Z")


class Counts(Protocol):
    """Where findings in the answer are counted (the relay's tally)."""

    response_pii: dict[str, int]
    texts: list[str]


def json_text(path: str | None) -> bool:
    """Whether the text at `path` is JSON the model wrote: tool-call or function-call arguments."""
    return path is not None and (".tool_calls[" in path or ".function_call" in path or path.endswith(
        (".arguments", ".arguments.done")))


@dataclass(slots=True)
class OutputRules:
    """How the answer is transformed; `active` is False on the fast path that relays bytes untouched."""

    scanner: Scanner
    redact_types: frozenset[str]
    placeholders: Placeholders | None  # set when the answer's placeholders are restored
    book: Placeholders = field(init=False)  # placeholders for values the model writes, one per answer

    def __post_init__(self) -> None:
        self.book = self.placeholders.for_answer() if self.placeholders is not None else Placeholders()

    @property
    def active(self) -> bool:
        return bool(self.redact_types) or self.placeholders is not None

    def whole(self, text: str, tally: Counts, path: str | None = None) -> str:
        if self.redact_types:
            matches = [m for m in self.scanner.find(text) if m.type in self.redact_types]
            if matches:
                for m in matches:
                    tally.response_pii[m.type] = tally.response_pii.get(m.type, 0) + 1
                text = redact(text, matches, self.redact_types, self.book)
        if self.placeholders is not None:
            text = restore(text, self.placeholders, json_text(path))
        return text

    def apply(self, spec: EndpointSpec, document: Json, tally: Counts) -> bool:
        """Transforms a whole JSON answer in place; True when anything changed."""
        changed = False
        for path, text, slot, key in list(spec.output_texts(document)):
            new = self.whole(text, tally, path)
            if new != text:
                slot[key] = new  # type: ignore[index]
                _drop_logprobs(document, path, slot)
                changed = True
        return changed


class StreamText:
    """One output stream: redactor then restorer, each holding back what it must."""

    def __init__(self, rules: OutputRules, path: str, kind: Any = None, *, json: bool | None = None) -> None:
        """`json`: the stream is JSON text the model writes (restored values escaped); by default
        told from `path` (tool-call and function-call arguments)."""
        self.kind = kind  # a Responses delta event's type, for the delta that flushes the held tail
        self._redactor = StreamRedactor(rules.scanner, rules.redact_types, rules.book) if rules.redact_types \
            else None
        escaped = json_text(path) if json is None else json
        self._restorer = StreamRestorer(rules.placeholders, escaped) if rules.placeholders is not None else None

    def feed(self, delta: str) -> str:
        if self._redactor is not None:
            delta = self._redactor.feed(delta)
        return self._restorer.feed(delta) if self._restorer is not None and delta else delta

    def flush(self) -> str:
        rest = self._redactor.flush() if self._redactor is not None else ""
        if self._restorer is not None:
            rest = self._restorer.feed(rest) + self._restorer.flush() if rest else self._restorer.flush()
        return rest


def event_transformer(spec: EndpointSpec, rules: OutputRules,
                      tally: Counts) -> Callable[[Json, bytes | None], list[bytes]]:
    """A function from one parsed stream event to the bytes to send for it (it may send a held tail
    first, as its own delta event)."""
    streams: dict[str, StreamText] = {}

    def transform(document: Json, name: bytes | None) -> list[bytes]:
        out: list[bytes] = []
        finished = _finished_choices(document)
        for path, text, slot, key in list(spec.stream_texts(document)):
            if path.endswith(".done"):
                stream = streams.pop(path[: -len(".done")], None)
                rest = stream.flush() if stream is not None else ""
                if rest and stream is not None:
                    out.append(_synthetic_delta(document, stream.kind, rest, name))
                new = rules.whole(text, tally, path)
            else:
                tally.texts.append(text)
                stream = streams.get(path) or streams.setdefault(path, StreamText(rules, path, document.get("type")))
                new = stream.feed(text)
                if _choice_of(path) in finished:
                    new += streams.pop(path).flush()
            if new != text:
                slot[key] = new  # type: ignore[index]
                _drop_logprobs(document, path, slot)
        for path in [p for p in streams if _choice_of(p) in finished]:
            # A finishing chunk without text of its own for this stream: the held tail goes into it.
            rest = streams.pop(path).flush()
            if rest:
                _put_text(document, path, rest)
                _drop_logprobs(document, path, {})
        out.append(sse.encode(orjson.dumps(document), name))
        return out

    return transform


def _choice_of(path: str) -> str | None:
    m = _CHOICE.match(path)
    return m.group() if m else None


def _finished_choices(document: Json) -> set[str]:
    return {f"choices[{c.get('index', 0)}]" for c in document.get("choices") or ()
            if isinstance(c, dict) and c.get("finish_reason")}


def _put_text(document: Json, path: str, text: str) -> None:
    """Appends `text` to the stream at `path` in a chat or completions chunk."""
    m = _CHAT_STREAM.match(path)
    if m is None:
        return
    index, kind, call = int(m.group(1)), m.group(2), m.group(3)
    for choice in document.get("choices") or ():
        if not isinstance(choice, dict) or choice.get("index", 0) != index:
            continue
        if "delta" not in choice:
            choice["text"] = (choice.get("text") or "") + text  # completions
            return
        delta = choice["delta"] if isinstance(choice["delta"], dict) else {}
        choice["delta"] = delta
        if kind is None or kind == "refusal":
            delta[kind or "content"] = (delta.get(kind or "content") or "") + text
        elif kind == "audio":
            audio = delta.setdefault("audio", {})
            audio["transcript"] = (audio.get("transcript") or "") + text
        elif kind == "function_call":
            legacy = delta.setdefault("function_call", {})
            legacy["arguments"] = (legacy.get("arguments") or "") + text
        else:
            calls = delta.setdefault("tool_calls", [])
            entry = next((c for c in calls if isinstance(c, dict) and c.get("index") == int(call)), None)
            if entry is None:
                entry = {"index": int(call), "function": {}}
                calls.append(entry)
            function = entry.setdefault("function", {})
            function["arguments"] = (function.get("arguments") or "") + text
        return


def _drop_logprobs(document: Json, path: str, slot: Any) -> None:
    if isinstance(slot, dict) and slot.get("logprobs"):
        slot["logprobs"] = [] if isinstance(slot["logprobs"], list) else None
    m = _CHOICE.match(path)
    if m is None:
        return
    for choice in document.get("choices") or ():
        if isinstance(choice, dict) and choice.get("index", 0) == int(m.group(1)) and choice.get("logprobs"):
            choice["logprobs"] = None


def _synthetic_delta(done_event: Json, kind: Any, text: str, name: bytes | None) -> bytes:
    """A Responses delta event carrying the held tail, sent just before the event that finishes it."""
    kind = kind if isinstance(kind, str) and kind.endswith(".delta") else "response.output_text.delta"
    event = {"type": kind, "item_id": done_event.get("item_id"), "output_index": done_event.get("output_index", 0),
             "content_index": done_event.get("content_index", 0), "delta": text,
             "sequence_number": done_event.get("sequence_number", 0)}
    if kind == "response.output_text.delta":
        event["logprobs"] = []
    if "summary_index" in done_event:
        event["summary_index"] = done_event["summary_index"]
    return sse.encode(orjson.dumps(event), kind.encode() if name else None)

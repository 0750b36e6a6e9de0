"""The relay stage: the upstream's answer back to the client as JSON or SSE, transformed and tallied.

Transforms are the decision's response obligations: redact PII types the model wrote, and restore the
caller's own values behind the placeholders the request was redacted with. Streams are transformed
delta by delta, holding back only the small window a value split across chunks needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson
from aiohttp import web

from .endpoints.base import EndpointSpec, EventRewriter, Json, Usage
from .errors import ProxyError, UpstreamError
from .pii import Placeholders, Scanner, StreamRedactor, StreamRestorer, redact, restore
from .upstream import sse
from .upstream.client import RELAYED_HEADERS, Upstream


@dataclass(slots=True)
class Tally:
    """What came back: reported usage, or the streamed text to count when no usage is reported."""

    usage: Usage | None = None
    texts: list[str] = field(default_factory=list)
    # Raw events kept (not parsed) on the fast path, parsed only if the stream ends without usage.
    events: list[bytes] = field(default_factory=list)
    first_content_at: float | None = None
    response_pii: dict[str, int] = field(default_factory=dict)
    stream_error: str | None = None
    client_gone: bool = False

    def output_texts(self, spec: EndpointSpec) -> list[str]:
        texts = list(self.texts)
        for data in self.events:
            try:
                document = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(document, dict):
                texts.extend(text for path, text, _, _ in spec.stream_texts(document) if not path.endswith(".done"))
        return texts


@dataclass(slots=True)
class OutputRules:
    """How the answer is transformed; `active` is False on the fast path that relays bytes untouched."""

    scanner: Scanner
    redact_types: frozenset[str]
    placeholders: Placeholders | None  # set when the answer's placeholders are restored

    @property
    def active(self) -> bool:
        return bool(self.redact_types) or self.placeholders is not None

    def whole(self, text: str, tally: Tally) -> str:
        if self.redact_types:
            matches = [m for m in self.scanner.find(text) if m.type in self.redact_types]
            if matches:
                for m in matches:
                    tally.response_pii[m.type] = tally.response_pii.get(m.type, 0) + 1
                text = redact(text, matches, self.redact_types, Placeholders())
        if self.placeholders is not None:
            text = restore(text, self.placeholders)
        return text


class StreamText:
    """One output stream (a choice index): redactor then restorer, each holding back what it must."""

    def __init__(self, rules: OutputRules) -> None:
        self._redactor = StreamRedactor(rules.scanner, rules.redact_types, Placeholders()) \
            if rules.redact_types else None
        self._restorer = StreamRestorer(rules.placeholders) if rules.placeholders is not None else None

    def feed(self, delta: str) -> str:
        if self._redactor is not None:
            delta = self._redactor.feed(delta)
        return self._restorer.feed(delta) if self._restorer is not None and delta else delta

    def flush(self) -> str:
        rest = self._redactor.flush() if self._redactor is not None else ""
        if self._restorer is not None:
            rest = self._restorer.feed(rest) + self._restorer.flush() if rest else self._restorer.flush()
        return rest


def relayed_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    headers = {name: response.headers[name] for name in RELAYED_HEADERS if name in response.headers}
    if "x-request-id" in headers:
        headers["x-upstream-request-id"] = headers.pop("x-request-id")
    return headers


async def relay_json(spec: EndpointSpec, upstream: Upstream, response: aiohttp.ClientResponse,
                     rules: OutputRules, tally: Tally, headers: dict[str, str]) -> web.Response:
    payload = await upstream.read_body(response)
    if response.status == 200:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"Upstream {upstream.name!r} returned a body that is not JSON.") from None
        if isinstance(document, dict):
            tally.usage = spec.usage(document)
            if rules.active:
                changed = False
                for _, text, slot, key in list(spec.output_texts(document)):
                    new = rules.whole(text, tally)
                    if new != text:
                        slot[key] = new  # type: ignore[index]
                        changed = True
                if changed:
                    payload = orjson.dumps(document)
    # Upstream errors pass through unchanged: the SDK raises the same class it would against the provider.
    return web.Response(body=payload, status=response.status, headers={**relayed_headers(response), **headers})


async def relay_stream(request: web.Request, spec: EndpointSpec, upstream: Upstream,
                       response: aiohttp.ClientResponse, rules: OutputRules, tally: Tally,
                       headers: dict[str, str], hide_usage_chunk: bool) -> web.StreamResponse:
    out = web.StreamResponse(status=200, headers={**relayed_headers(response), **headers,
                                                  "Cache-Control": "no-cache"})
    await out.prepare(request)
    parser = sse.SSEParser()
    transform = event_rewriter(spec, rules, tally) if rules.active else None
    try:
        while chunk := await upstream.read_chunk(response):
            pieces = []
            for event in parser.feed(chunk):
                data = event.data
                if data is None or data == sse.DONE:
                    pieces.append(event.raw)
                    continue
                if transform is None and b'"usage"' not in data:
                    tally.events.append(data)
                    pieces.append(event.raw)
                    continue
                document = orjson.loads(data)
                if not isinstance(document, dict):
                    pieces.append(event.raw)
                    continue
                usage = spec.stream_usage(document)
                if usage is not None:
                    tally.usage = usage if tally.usage is None else tally.usage.merged(usage)
                    if hide_usage_chunk and not document.get("choices"):
                        continue  # the usage-only chunk the client did not ask for
                if transform is None:
                    tally.events.append(data)
                    pieces.append(event.raw)
                else:
                    pieces.extend(transform(document, event.name))
            if pieces:
                if tally.first_content_at is None:
                    tally.first_content_at = time.perf_counter()
                await out.write(b"".join(pieces))
    except ProxyError as exc:
        # Headers are gone already: the error becomes an SSE error event and the stream ends.
        tally.stream_error = exc.code
        await out.write(spec.stream_error(exc))
    except ConnectionResetError:
        tally.client_gone = True
        return out
    await out.write_eof()
    return out


def event_rewriter(spec: EndpointSpec, rules: OutputRules, tally: Tally) -> EventRewriter:
    """The endpoint's own rewriter of streamed events, or the default for choice-based streams."""
    if spec.stream_rewriter is not None:
        return spec.stream_rewriter(rules, tally)
    return _event_transformer(spec, rules, tally)


def _event_transformer(spec: EndpointSpec, rules: OutputRules,
                       tally: Tally) -> Callable[[Json, bytes | None], list[bytes]]:
    streams: dict[str, StreamText] = {}

    def transform(document: Json, name: bytes | None) -> list[bytes]:
        out: list[bytes] = []
        finished = _finished_streams(document)
        for path, text, slot, key in list(spec.stream_texts(document)):
            if path.endswith(".done"):
                prefix = path[: -len(".done")]
                stream = streams.pop(prefix, None)
                rest = stream.flush() if stream is not None else ""
                if rest:
                    out.append(_synthetic_delta(document, rest, name))
                slot[key] = rules.whole(text, tally)  # type: ignore[index]
                continue
            tally.texts.append(text)
            stream = streams.get(path) or streams.setdefault(path, StreamText(rules))
            slot[key] = stream.feed(text)  # type: ignore[index]
            if path in finished:
                slot[key] += streams.pop(path).flush()  # type: ignore[index]
        for path in finished:
            # A finishing chunk without text of its own (delta {}): the held tail goes into it.
            held = streams.pop(path, None)
            if held is not None:
                rest = held.flush()
                if rest:
                    _put_text(document, path, rest)
        out.append(sse.encode(orjson.dumps(document), name))
        return out
    return transform


def _finished_streams(document: Json) -> set[str]:
    return {f"choices[{c.get('index', 0)}]" for c in document.get("choices") or ()
            if isinstance(c, dict) and c.get("finish_reason")}


def _put_text(document: Json, path: str, text: str) -> None:
    for choice in document.get("choices") or ():
        if f"choices[{choice.get('index', 0)}]" == path:
            if "delta" in choice:
                choice["delta"]["content"] = (choice["delta"].get("content") or "") + text
            else:
                choice["text"] = (choice.get("text") or "") + text


def _synthetic_delta(done_event: Json, text: str, name: bytes | None) -> bytes:
    """A Responses delta event carrying the held tail, sent just before the matching `done` event."""
    event = {"type": "response.output_text.delta", "item_id": done_event.get("item_id"),
             "output_index": done_event.get("output_index", 0),
             "content_index": done_event.get("content_index", 0), "delta": text, "logprobs": [],
             "sequence_number": done_event.get("sequence_number", 0)}
    return sse.encode(orjson.dumps(event), b"response.output_text.delta" if name else None)

"""The relay stage: the upstream's answer back to the client as JSON or SSE, transformed and tallied.

Transforms are the decision's response obligations: redact PII types the model wrote, and restore the
caller's own values behind the placeholders the request was redacted with. Streams are transformed
delta by delta, holding back only the small window a value split across chunks needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp
import orjson
from aiohttp import web

from proxy.endpoints.base import EndpointSpec, EventRewriter, Usage
from proxy.errors import UpstreamError
from proxy.gateway.answer_transform import OutputRules, event_transformer
from proxy.gateway.stream_end import Drain, stream_guard
from proxy.upstream import sse
from proxy.upstream.client import RELAYED_HEADERS, Upstream


@dataclass(slots=True)
class Tally:
    """What came back: reported usage, or the streamed text to count when no usage is reported."""

    usage: Usage | None = None
    texts: list[str] = field(default_factory=list)
    # Raw events kept (not parsed) on the fast path, parsed only if the stream ends without usage.
    events: list[bytes] = field(default_factory=list)
    first_content_at: float | None = None
    writes: int = 0  # stream writes to the client so far
    response_pii: dict[str, int] = field(default_factory=dict)
    stream_error: str | None = None
    client_gone: bool = False
    drained: bool = False  # the client went away and the upstream was read on without it

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


# The provider's own limit state goes to the client as the provider sent it (SDKs back off on it); the
# proxy's limits on a relayed answer go under names of their own, so neither hides the other.
PROVIDER_LIMIT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
OWN_LIMIT_PREFIX = "x-llm-proxy-ratelimit-"


def relayed_headers(response: aiohttp.ClientResponse, own: dict[str, str]) -> dict[str, str]:
    """The headers of a relayed answer: the provider's useful ones, then the proxy's own (renamed limits)."""
    headers = {name: response.headers[name] for name in RELAYED_HEADERS if name in response.headers}
    headers.update((name.lower(), value) for name, value in response.headers.items()
                   if name.lower().startswith(PROVIDER_LIMIT_PREFIXES))
    if "x-request-id" in headers:
        headers["x-upstream-request-id"] = headers.pop("x-request-id")
    for name, value in own.items():
        headers[OWN_LIMIT_PREFIX + name[len("x-ratelimit-"):] if name.startswith("x-ratelimit-") else name] = value
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
            if rules.active and rules.apply(spec, document, tally):
                payload = orjson.dumps(document)
    # Upstream errors pass through unchanged: the SDK raises the same class it would against the provider.
    return web.Response(body=payload, status=response.status, headers=relayed_headers(response, headers))


async def relay_stream(request: web.Request, spec: EndpointSpec, upstream: Upstream,
                       response: aiohttp.ClientResponse, rules: OutputRules, tally: Tally,
                       headers: dict[str, str], hide_usage_chunk: bool) -> web.StreamResponse:
    out = web.StreamResponse(status=200, headers={**relayed_headers(response, headers), "Cache-Control": "no-cache"})
    await out.prepare(request)
    parser = sse.SSEParser()
    transform = event_rewriter(spec, rules, tally) if rules.active else None

    def take(event: sse.Event, pieces: list[bytes]) -> None:
        data = event.data
        if data is None or data == sse.DONE:
            pieces.append(event.raw)
            return
        document = sse.event_object(data, upstream.name)
        usage = spec.stream_usage(document) if document is not None and b'"usage"' in data else None
        if usage is not None:
            tally.usage = usage if tally.usage is None else tally.usage.merged(usage)
            if hide_usage_chunk and not document.get("choices"):  # type: ignore[union-attr]
                return  # the usage-only chunk the client did not ask for
        if transform is None or document is None:
            tally.events.append(data)
            pieces.append(event.raw)
        else:
            pieces.extend(transform(document, event.name))

    async with stream_guard(out, spec, Drain(upstream, response, parser, spec), tally):
        while chunk := await upstream.read_chunk(response):
            pieces: list[bytes] = []
            try:
                for event in parser.feed(chunk):
                    take(event, pieces)
                    await flush_early(out, pieces, tally)
            finally:
                await flush(out, pieces, tally)  # events before a broken one still go, ahead of the error
        await out.write_eof()
    return out


# The first events of a stream go to the client one by one, as each is ready: when an upstream sends many
# at once (a fast model, a cached answer, a burst after a pause), the first words must not wait for the
# rest of the read to be parsed and transformed. Eight reach the first words on every API (OpenAI's role
# chunk, the Responses and Messages lifecycle events, a word redaction holds back); after that, what one
# read brought goes out in one write.
EAGER_WRITES = 8


async def flush_early(out: web.StreamResponse, pieces: list[bytes], tally: Tally) -> None:
    """Writes and empties `pieces` while the stream is still within its first EAGER_WRITES writes."""
    if pieces and tally.writes < EAGER_WRITES:
        await flush(out, pieces, tally)
        pieces.clear()


async def flush(out: web.StreamResponse, pieces: list[bytes], tally: Tally) -> None:
    if pieces:
        if tally.first_content_at is None:
            tally.first_content_at = time.perf_counter()
        tally.writes += 1
        await out.write(b"".join(pieces))


def event_rewriter(spec: EndpointSpec, rules: OutputRules, tally: Tally) -> EventRewriter:
    """The endpoint's own rewriter of streamed events, or the default for choice-based streams."""
    if spec.stream_rewriter is not None:
        return spec.stream_rewriter(rules, tally)
    return event_transformer(spec, rules, tally)

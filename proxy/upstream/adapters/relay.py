"""The relay stage across APIs: the upstream's answer read in its format, sent in the caller's.

Usage is tallied from the upstream's own events (Anthropic's cache reads and writes survive the trip),
then each translated event gets the caller's endpoint rewriter (answer redaction and restore), exactly as
a same-API answer would.
"""

from __future__ import annotations

import aiohttp
import orjson
from aiohttp import web

from proxy.gateway.answer_transform import OutputRules
from proxy.gateway.relay import Tally, event_rewriter, flush, flush_early, relayed_headers
from proxy.gateway.stream_end import Drain, stream_guard

from ...endpoints.base import EventRewriter, Json, ModelCall
from ...errors import UpstreamError
from .. import sse
from ..client import Upstream
from . import Adapter


async def relay_translated(request: web.Request, adapter: Adapter, call: ModelCall, upstream: Upstream,
                           response: aiohttp.ClientResponse, rules: OutputRules, tally: Tally,
                           headers: dict[str, str]) -> web.StreamResponse:
    if response.status != 200:
        payload = await upstream.read_body(response)
        return web.Response(body=adapter.error(response.status, payload), status=response.status,
                            content_type="application/json",
                            headers=_without_type(relayed_headers(response, headers)))
    if call.stream:
        return await _stream(request, adapter, call, upstream, response, rules, tally, headers)
    document = _object(await upstream.read_body(response), f"Upstream {upstream.name!r} returned a body")
    tally.usage = adapter.upstream_spec.usage(document)
    answer = adapter.answer(document)
    if rules.active:
        for _, text, slot, key in list(call.endpoint.output_texts(answer)):
            slot[key] = rules.whole(text, tally)  # type: ignore[index]
    return web.Response(body=orjson.dumps(answer), content_type="application/json",
                        headers=_without_type(relayed_headers(response, headers)))


async def _stream(request: web.Request, adapter: Adapter, call: ModelCall, upstream: Upstream,
                  response: aiohttp.ClientResponse, rules: OutputRules, tally: Tally,
                  headers: dict[str, str]) -> web.StreamResponse:
    out = web.StreamResponse(status=200, headers={**_without_type(relayed_headers(response, headers)),
                                                  "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await out.prepare(request)
    parser = sse.SSEParser()
    translator = adapter.stream(call.body)
    rewrite = event_rewriter(call.endpoint, rules, tally) if rules.active else None
    async with stream_guard(out, call.endpoint, Drain(upstream, response, parser, adapter.upstream_spec), tally):
        while chunk := await upstream.read_chunk(response):
            pieces: list[bytes] = []
            try:
                for event in parser.feed(chunk):
                    if event.data is None:
                        continue
                    document = None if event.data == sse.DONE else _event(event.data, upstream.name)
                    if document is not None:
                        usage = adapter.upstream_spec.stream_usage(document)
                        if usage is not None:
                            tally.usage = usage if tally.usage is None else tally.usage.merged(usage)
                    for name, translated in translator.feed(event.name, document):
                        pieces.extend(_emit(call, translated, name, rewrite, tally))
                    await flush_early(out, pieces, tally)
            finally:
                await flush(out, pieces, tally)  # events before a broken one still go, ahead of the error
        tail = [piece for name, translated in translator.finish()
                for piece in _emit(call, translated, name, rewrite, tally)]
        if call.endpoint.api == "openai":
            tail.append(sse.encode(sse.DONE))
        if tail:
            await out.write(b"".join(tail))
        await out.write_eof()
    return out


def _event(data: bytes, name: str) -> Json:
    document = sse.event_object(data, name)
    if document is None:
        raise UpstreamError(f"Upstream {name!r} sent a stream event that is not a JSON object.",
                            code="upstream_bad_event")
    return document


def _object(data: bytes, what: str) -> Json:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{what} that is not JSON.") from None
    if not isinstance(document, dict):
        raise UpstreamError(f"{what} that is not a JSON object.")
    return document


def _emit(call: ModelCall, document: Json, name: bytes | None, rewrite: EventRewriter | None,
          tally: Tally) -> list[bytes]:
    # The translator emits a usage chunk only when the caller asked for one (its own body says so).
    if rewrite is not None:
        return rewrite(document, name)
    tally.texts.extend(text for path, text, _, _ in call.endpoint.stream_texts(document) if not path.endswith(".done"))
    return [sse.encode(orjson.dumps(document), name)]


def _without_type(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}

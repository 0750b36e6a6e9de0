"""The one path every model call takes, stage by stage, top to bottom (see docs/architecture.md)."""

from __future__ import annotations

import time

import aiohttp
import orjson
from aiohttp import web

from .audit import AuditRecord
from .catalogue import CatalogueEntry
from .endpoints.base import EndpointSpec, Json, ModelCall, Usage, parse_call
from .errors import BadRequest, PayloadTooLarge, ProxyError, UnknownModel, UpstreamError
from .identity import Identity
from .services import AUDIT, IDENTITY, REQUEST_ID, SERVICES, Services
from .upstream import sse
from .upstream.client import RELAYED_HEADERS, Upstream


async def serve_model_call(request: web.Request, spec: EndpointSpec) -> web.StreamResponse:
    services = request.app[SERVICES]
    record = request[AUDIT]
    record.endpoint = spec.name

    # parse: body -> typed call (400/413)
    call = parse_call(spec, decode_json(await read_body(request, services.config.server.max_body_bytes)))
    record.model_requested, record.stream = call.model, call.stream
    request[IDENTITY] = with_end_user(request[IDENTITY], call, request, services)

    # resolve: public model name -> catalogue entry and upstream (404 unknown model)
    entry = resolve_model(services, call)
    record.model_used, record.upstream = entry.name, entry.upstream

    # forward: effective request -> upstream response headers (502/504)
    upstream = services.upstreams[entry.upstream]
    body, usage_injected = upstream_body(call, entry)
    started = time.perf_counter()
    response = await upstream.send(spec.upstream_path, entry.upstream_model, body,
                                   {"x-request-id": request[REQUEST_ID]})
    record.upstream_status = response.status
    try:
        # relay: JSON or SSE back to the client
        if call.stream and response.status == 200 and \
                response.content_type == "text/event-stream":
            return await relay_stream(request, call, upstream, response, record, usage_injected, started)
        return await relay_json(call, upstream, response, record)
    finally:
        record.upstream_seconds = time.perf_counter() - started
        response.close()


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body of {request.content_length} bytes exceeds the limit of {limit} bytes.")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.") from None


def decode_json(raw: bytes) -> Json:
    if not raw:
        raise BadRequest("The request body is empty; expected a JSON object.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = "it is not valid UTF-8" if "UTF-8" in str(exc) else f"{exc.msg} at position {exc.pos}"
        raise BadRequest(f"We could not parse the JSON body of your request: {detail}.") from None
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object.")
    return value


def with_end_user(identity: Identity, call: ModelCall, request: web.Request, services: Services) -> Identity:
    sidecar = services.config.auth.sidecar
    if sidecar is not None and sidecar.user_header:
        header_user = request.headers.get(sidecar.user_header)
        if header_user:
            return identity.with_user(header_user)
    if services.config.auth.user_from_body and call.user:
        return identity.with_user(call.user)
    return identity


def resolve_model(services: Services, call: ModelCall) -> CatalogueEntry:
    entry = services.catalogue.resolve(call.model)
    if entry is None:
        raise UnknownModel(f"The model `{call.model}` does not exist or you do not have access to it.",
                           param="model")
    if call.endpoint.name not in entry.endpoints:
        raise BadRequest(f"The model `{call.model}` is not available on {call.endpoint.route}.",
                         param="model", code="model_not_supported")
    return entry


def upstream_body(call: ModelCall, entry: CatalogueEntry) -> tuple[bytes, bool]:
    """The body to send upstream, and whether we asked for stream usage the client did not ask for."""
    body = call.body
    changes: Json = {}
    if entry.upstream_model != call.model:
        changes["model"] = entry.upstream_model
    injected = False
    if call.stream and call.endpoint.usage_opt_in:
        options = body.get("stream_options") or {}
        if not options.get("include_usage"):
            # Budgets need the real token count, so always ask; the extra chunk is dropped on the way back.
            changes["stream_options"] = {**options, "include_usage": True}
            injected = True
    if not changes:
        return orjson.dumps(body), False
    return orjson.dumps({**body, **changes}), injected


def relayed_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    headers = {name: response.headers[name] for name in RELAYED_HEADERS if name in response.headers}
    if "x-request-id" in headers:
        headers["x-upstream-request-id"] = headers.pop("x-request-id")
    return headers


async def relay_json(call: ModelCall, upstream: Upstream, response: aiohttp.ClientResponse,
                     record: AuditRecord) -> web.Response:
    payload = await upstream.read_body(response)
    if response.status == 200:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"Upstream {upstream.name!r} returned a body that is not JSON.") from None
        if isinstance(document, dict):
            record_usage(record, call.endpoint.usage(document))
    # Upstream errors pass through unchanged: the SDK raises the same class it would against the provider.
    return web.Response(body=payload, status=response.status, headers=relayed_headers(response))


async def relay_stream(request: web.Request, call: ModelCall, upstream: Upstream,
                       response: aiohttp.ClientResponse, record: AuditRecord, usage_injected: bool,
                       started: float) -> web.StreamResponse:
    out = web.StreamResponse(status=200, headers={**relayed_headers(response), "Cache-Control": "no-cache",
                                                  "x-request-id": request[REQUEST_ID]})
    await out.prepare(request)
    parser = sse.SSEParser()
    spec = call.endpoint
    try:
        while chunk := await upstream.read_chunk(response):
            pieces = []
            for event in parser.feed(chunk):
                data = event.data
                if data is not None and data != sse.DONE and b'"usage"' in data:
                    document = orjson.loads(data)
                    usage = spec.stream_usage(document)
                    if usage is not None:
                        record_usage(record, usage)
                        if usage_injected and not document.get("choices"):
                            continue  # the usage-only chunk the client did not ask for
                pieces.append(event.raw)
            if pieces:
                if record.ttft_seconds is None:
                    record.ttft_seconds = time.perf_counter() - started
                await out.write(b"".join(pieces))
    except ProxyError as exc:
        # Headers are gone already: the error becomes an SSE error event and the stream ends.
        record.extra["stream_error"] = exc.code
        await out.write(sse.encode(orjson.dumps(exc.body())))
    except ConnectionResetError:
        record.client_disconnected = True
        return out
    await out.write_eof()
    return out


def record_usage(record: AuditRecord, usage: Usage | None) -> None:
    if usage is not None:
        record.input_tokens = usage.input_tokens
        record.output_tokens = usage.output_tokens
        record.cached_input_tokens = usage.cached_input_tokens

"""What every route passes through before its handler, composed once per route when the app is built.

The order is the one line in `guarded`. They are plain wrappers rather than aiohttp middlewares: no
per-request chain to walk, and the per-request observation and identity are handed to the handler as
arguments instead of being stashed on the request for a later wrapper to read back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from proxy import errors
from proxy.apis import anthropic
from proxy.apis.anthropic import errors as anthropic_errors
from proxy.components import COMPONENTS
from proxy.gateway.observation import Observation, Reporter
from proxy.identity import Identity
from proxy.ids import new_id
from proxy.telemetry.logging import get_logger
from proxy.telemetry.tracing import Tracing
from proxy.telemetry.tracing import ids as trace_ids

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Observed = Callable[[web.Request, Observation], Awaitable[web.StreamResponse]]
# A route's own work: the request, what it observes, and who is calling (None on public routes).
Route = Callable[[web.Request, Observation, Identity | None], Awaitable[web.StreamResponse]]
Authenticated = Callable[[web.Request, Observation, Identity], Awaitable[web.StreamResponse]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
log = get_logger("proxy")


def guarded(route: Route, reporter: Reporter, tracing: Tracing, *, public: bool = False) -> Handler:
    """The order every request passes, outermost first."""
    return observe(render_errors(route_for(route, public)), reporter, tracing, public=public)


def route_for(route: Route, public: bool) -> Observed:
    if public:
        async def unauthenticated(request: web.Request, observation: Observation) -> web.StreamResponse:
            return await route(request, observation, None)
        return unauthenticated
    return authenticate(route)


def observe(handler: Observed, reporter: Reporter, tracing: Tracing, *, public: bool) -> Handler:
    """Request id in and out, the server span from `traceparent`, and one finish() per request. Public
    routes (health, readiness, metrics) get their id but are not written down: probes would drown the rest."""
    async def handle(request: web.Request) -> web.StreamResponse:
        incoming = request.headers.get("x-request-id", "")
        observation = Observation(reporter, incoming if _REQUEST_ID.match(incoming) else new_id(), request.method,
                                  request.path)
        if public:
            response = await handler(request, observation)
            if not response.prepared:
                response.headers["x-request-id"] = observation.request_id
            return response
        if not tracing.enabled:
            return await observed(request, observation)
        with tracing.server_span(f"{request.method} {request.path}", request.headers,
                                 {"http.request.method": request.method, "url.path": request.path}) as span:
            observation.span = span
            return await observed(request, observation)

    async def observed(request: web.Request, observation: Observation) -> web.StreamResponse:
        reporter.metrics.in_flight.inc()
        structlog.contextvars.bind_contextvars(request_id=observation.request_id,
                                               **trace_ids(observation.span, request.headers))
        status = 500
        try:
            response = await handler(request, observation)
            status = response.status
            if not response.prepared:
                response.headers["x-request-id"] = observation.request_id
            return response
        except asyncio.CancelledError:
            if observation.completed_status is not None:
                status = observation.completed_status  # the client closed after receiving everything
            else:
                status = 499  # the client went away mid-request; the handler was cancelled with it
                observation.client_disconnected = True
            raise
        finally:
            reporter.metrics.in_flight.dec()
            observation.finish(status)
            structlog.contextvars.clear_contextvars()
    return handle


def render_errors(handler: Observed) -> Observed:
    """Every ProxyError becomes its status and body in the caller's API format; anything unexpected a 500
    that quotes the request id, never a traceback."""
    async def handle(request: web.Request, observation: Observation) -> web.StreamResponse:
        try:
            return await handler(request, observation)
        except errors.ProxyError as exc:
            return error_response(exc, request, observation)
        except web.HTTPException as exc:
            error = errors.ProxyError(exc.reason, code=exc.reason.lower().replace(" ", "_"))
            return error_response(error, request, observation, status=exc.status)
        except Exception:
            log.exception("unhandled_error")
            return error_response(errors.ProxyError(
                f"The proxy failed to handle this request; quote request id {observation.request_id}."), request,
                observation)
    return handle


def error_response(error: errors.ProxyError, request: web.Request, observation: Observation,
                   status: int | None = None) -> web.Response:
    headers = {**error.headers, "x-request-id": observation.request_id}
    observation.failed(error.code)
    if anthropic_path(request.path):
        body = anthropic_errors.render(error, status, observation.request_id)
    else:
        body = errors.render(error)
    return web.Response(body=body, status=status or error.status, content_type="application/json", headers=headers)


def anthropic_path(path: str) -> bool:
    """Routes of Anthropic's API (and unknown ones under it) answer errors in Anthropic's format."""
    return path == anthropic.MESSAGES.route or path.startswith(anthropic.MESSAGES.route + "/")


def authenticate(route: Route) -> Observed:
    """Every route needs an identity unless it was registered as public."""
    async def handle(request: web.Request, observation: Observation) -> web.StreamResponse:
        identity = await request.app[COMPONENTS].authenticator.authenticate(
            request.headers, "anthropic" if anthropic_path(request.path) else "openai")
        observation.identified(identity)
        return await route(request, observation, identity)
    return handle

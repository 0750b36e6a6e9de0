"""build_app(config): the wiring, the middleware order and the routes, in one place."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, suppress

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span
from prometheus_client import CollectorRegistry

from . import admin, errors, wiring
from .apis import anthropic
from .apis.anthropic import errors as anthropic_errors
from .apis.anthropic.count_tokens import COUNT_TOKENS_ROUTE, count_tokens
from .audit import AuditRecord
from .catalogue import Catalogue
from .config import Config
from .decide import Decided, ScopeMemory
from .egress.server import EgressServer, start_egress
from .endpoints import MODEL_ENDPOINTS, EndpointSpec
from .eventlog import open_event_log
from .http_errors import use_json_parser_errors
from .identity import Identity
from .identity.build import open_authenticator
from .ids import new_id
from .mcp.build import MCP_GATEWAY, open_gateway
from .pipeline import serve_model_call
from .policy.errors import PolicyEngineError
from .policy.input import identity_input
from .runtime import PauseRecorder
from .services import (
    AUDIT,
    AUTHENTICATOR,
    DECIDED,
    EVENT_LOG,
    IDENTITY,
    METRICS,
    REQUEST_ID,
    SERVICES,
    TRACING,
    Services,
)
from .telemetry.logging import get_logger
from .telemetry.metrics import Metrics
from .telemetry.metrics import render as render_metrics
from .telemetry.tracing import OPERATIONS, Tracing, finish_server_span
from .telemetry.tracing import ids as trace_ids
from .upstream.client import Upstream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Every front door's model endpoints; each names the API its errors are rendered in.
ENDPOINTS: tuple[EndpointSpec, ...] = (*MODEL_ENDPOINTS, anthropic.MESSAGES)
MODEL_ROUTES = frozenset({*(spec.route for spec in ENDPOINTS), COUNT_TOKENS_ROUTE})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

log = get_logger("proxy")
EGRESS = web.AppKey("egress", EgressServer)


def build_app(config: Config, registry: CollectorRegistry | None = None, egress_sock: socket.socket | None = None,
              tracer_provider: TracerProvider | None = None,
              listening: Sequence[tuple[str, int]] = ()) -> web.Application:
    """`listening`: where the API listens, when not config.server's host and port (the egress proxy refuses it)."""
    use_json_parser_errors()  # the parser's own 400s: OpenAI JSON that never echoes the request
    metrics = Metrics(registry, enabled=config.telemetry.metrics)
    tracing = Tracing(tracer_provider if tracer_provider is not None else wiring.tracer_provider_from_env(),
                      stage_spans=config.telemetry.stage_spans)
    app = web.Application(
        middlewares=[observe_request(metrics, tracing), render_errors(), authenticate()],
        client_max_size=config.server.max_body_bytes,
    )
    app[METRICS] = metrics
    app[TRACING] = tracing
    app.cleanup_ctx.append(identity_ctx(config, metrics))
    app.cleanup_ctx.append(services_ctx(config, metrics))
    app.cleanup_ctx.append(event_log_ctx(config))
    app.cleanup_ctx.append(egress_ctx(config, egress_sock, listening))
    for spec in ENDPOINTS:
        app.router.add_post(spec.route, model_handler(spec))
    app.router.add_post(COUNT_TOKENS_ROUTE, count_tokens)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", get_model)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics.enabled:
        app.router.add_get("/metrics", metrics_endpoint)
    admin.add_routes(app)
    if config.mcp.servers:
        app.router.add_route("*", "/mcp/{server}", mcp_handler)
    app.router.add_route("*", "/{tail:.*}", unknown_route)
    return app


def services_ctx(config: Config, metrics: Metrics) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if metrics.enabled:
                pauses = stack.enter_context(PauseRecorder(metrics.gc_pause))
                stack.push_async_callback(cancelled, asyncio.get_running_loop().create_task(pauses.drain_every(1.0)))
            stack.push_async_callback(app[TRACING].shutdown)
            # First: building an encoding briefly holds its ranks twice (Python dict and Rust tables), and
            # that moment is the process's peak RSS; the less else is allocated by then, the lower it is.
            estimator = await wiring.open_estimator(config)
            upstreams = {name: Upstream(name, cfg, cfg.resolved_key()) for name, cfg in config.upstreams.items()}
            for upstream in upstreams.values():
                await upstream.start()
                stack.push_async_callback(upstream.close)
            policy = await wiring.open_policy(config, metrics, stack)
            app[SERVICES] = Services(
                config=config, catalogue=Catalogue.from_config(config), upstreams=upstreams, metrics=metrics,
                estimator=estimator, scanner=wiring.build_scanner(config),
                policy=policy, store=await wiring.open_store(config, stack, metrics), scopes=ScopeMemory(),
                tracing=app[TRACING],
                pseudonym_key=wiring.pseudonym_key(config),
                shadow=await wiring.open_shadow(config, metrics, stack))
            if config.mcp.servers:
                services = app[SERVICES]
                app[MCP_GATEWAY] = await open_gateway(
                    config.mcp, config.base_dir, stack, policy=services.policy, store=services.store,
                    scanner=services.scanner, metrics=metrics, tracing=services.tracing,
                    fail_open=config.policy.fail_open, pseudonym_key=services.pseudonym_key)
            yield
    return ctx


async def cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def event_log_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    """The event log the egress listener writes its refusals to and /admin/shadow-ai reads."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        events = app[EVENT_LOG] = open_event_log(config)
        try:
            yield
        finally:
            await events.close()
    return ctx


def egress_ctx(config: Config, sock: socket.socket | None,
               listening: Sequence[tuple[str, int]] = ()) -> Callable[[web.Application], AsyncIterator[None]]:
    """The shadow-AI egress listener, opened after (and closed before) the services it uses."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not config.egress.enabled:
            yield
            return
        services = app[SERVICES]
        server = await start_egress(config.egress, lambda: services.policy, app[EVENT_LOG], services.metrics,
                                    app[AUTHENTICATOR].identify_credential, sock=sock,
                                    listening=[(config.server.host, config.server.port), *listening])
        app[EGRESS] = server
        try:
            yield
        finally:
            await server.close()
    return ctx


def observe_request(metrics: Metrics, tracing: Tracing) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            # Not observed, but an error on them (/metrics switched off) is still rendered with an id.
            request[REQUEST_ID], request[AUDIT] = new_id(), AuditRecord()
            return await handler(request)
        if not tracing.enabled:
            return await observed(request, handler, None)
        with tracing.server_span(f"{request.method} {request.path}", request.headers,
                                 {"http.request.method": request.method, "url.path": request.path}) as span:
            return await observed(request, handler, span)

    async def observed(request: web.Request, handler: Handler, span: Span | None) -> web.StreamResponse:
        started = time.perf_counter()
        metrics.in_flight.inc()
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else new_id()
        request[REQUEST_ID] = request_id
        request[AUDIT] = record = AuditRecord()
        structlog.contextvars.bind_contextvars(request_id=request_id, **trace_ids(span))
        status = 500
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers["x-request-id"] = request_id
            return response
        except asyncio.CancelledError:
            if record.completed_status is not None:
                status = record.completed_status  # the client closed after receiving everything
            else:
                status = 499  # the client went away mid-request; the handler was cancelled with it
                record.client_disconnected = True
            raise
        finally:
            metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            identity = request.get(IDENTITY)
            team, app = (identity.team, identity.app) if identity else ("", "")
            metrics.request_finished(endpoint=record.endpoint or "other", model=record.model_used or "unknown",
                                     team=team, app=app, decision=record.decision, status=status, seconds=seconds,
                                     upstream_seconds=record.upstream_seconds)
            log.info("request", method=request.method, path=request.path, status=status,
                     duration_ms=round(seconds * 1000, 3), app=app or None, team=team or None,
                     user=identity.user if identity else None, key_id=identity.key_id if identity else None,
                     **record.fields())
            if span is not None:
                finish_span(span, record, identity, status)
            decided = request.get(DECIDED)
            if decided is not None:
                compare_in_shadow(request, decided)
            structlog.contextvars.clear_contextvars()
    return middleware


def compare_in_shadow(request: web.Request, decided: Decided) -> None:
    """The candidate policy decides after this request is answered, in its own task (never awaited)."""
    shadow = request.app[SERVICES].shadow
    if shadow is None or decided.failed_open:
        return
    task: asyncio.Task[object] = asyncio.get_running_loop().create_task(shadow.compare(
        decided.input, decided.decision, live_revision=decided.revision, request_id=request[REQUEST_ID]))
    # The loop keeps only weak references to tasks: hold it until it is done.
    pending = request.app[SERVICES].background
    pending.add(task)
    task.add_done_callback(pending.discard)


def finish_span(span: Span, record: AuditRecord, identity: Identity | None, status: int) -> None:
    operation = OPERATIONS.get(record.endpoint)
    if operation and record.model_used:
        span.update_name(f"{operation} {record.model_used}")
    finish_server_span(span, status, {
        "gen_ai.operation.name": operation, "gen_ai.request.model": record.model_requested,
        "gen_ai.response.model": record.model_used, "gen_ai.provider.name": record.extra.get("provider"),
        "gen_ai.usage.input_tokens": record.input_tokens, "gen_ai.usage.output_tokens": record.output_tokens,
        "llm_proxy.app": identity.app if identity else None, "llm_proxy.team": identity.team if identity else None,
        "llm_proxy.key_id": identity.key_id if identity else None, "llm_proxy.decision": record.decision,
        "llm_proxy.reason_codes": list(record.reason_codes), "llm_proxy.policy_revision": record.policy_revision,
        "llm_proxy.pii_types": list(record.pii_types), "llm_proxy.cost_usd": record.cost_usd,
        "llm_proxy.upstream": record.upstream})


def render_errors() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.ProxyError as exc:
            return error_response(exc, request)
        except web.HTTPException as exc:
            error = errors.ProxyError(exc.reason, code=exc.reason.lower().replace(" ", "_"))
            return error_response(error, request, status=exc.status)
        except Exception:
            log.exception("unhandled_error")
            return error_response(errors.ProxyError(
                f"The proxy failed to handle this request; quote request id {request[REQUEST_ID]}."), request)
    return middleware


def error_response(error: errors.ProxyError, request: web.Request, status: int | None = None) -> web.Response:
    headers = {**error.headers, "x-request-id": request[REQUEST_ID]}
    request[AUDIT].extra["error_code"] = error.code
    if anthropic_path(request.path):
        body = anthropic_errors.render(error, status, request[REQUEST_ID])
    else:
        body = errors.render(error)
    return web.Response(body=body, status=status or error.status, content_type="application/json", headers=headers)


def anthropic_path(path: str) -> bool:
    """Routes of Anthropic's API (and unknown ones under it) answer errors in Anthropic's format."""
    return path == anthropic.MESSAGES.route or path.startswith(anthropic.MESSAGES.route + "/")


def authenticate() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        request[IDENTITY] = await request.app[AUTHENTICATOR].authenticate(
            request.headers, "anthropic" if anthropic_path(request.path) else "openai")
        return await handler(request)
    return middleware


def identity_ctx(config: Config, metrics: Metrics) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app[AUTHENTICATOR] = await open_authenticator(config, metrics, stack)
            yield
    return ctx


def model_handler(spec: EndpointSpec) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve_model_call(request, spec)
    return handler


async def mcp_handler(request: web.Request) -> web.StreamResponse:
    return await request.app[MCP_GATEWAY].serve(request, request[IDENTITY], request[REQUEST_ID], request[AUDIT])


def _model_object(name: str, owned_by: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owned_by}


async def allowed_models(request: web.Request) -> list[str]:
    """The catalogue as this caller may use it: the policy decides, and an engine error is a 503."""
    services = request.app[SERVICES]
    try:
        return await services.policy.allowed_models(identity_input(request[IDENTITY]), services.catalogue.names())
    except PolicyEngineError as exc:
        raise errors.Unavailable("The policy engine could not decide which models you may use.",
                                 code="policy_unavailable") from exc


async def list_models(request: web.Request) -> web.Response:
    catalogue = request.app[SERVICES].catalogue
    data = []
    for name in await allowed_models(request):
        entry = catalogue.resolve(name)
        if entry is not None:
            data.append(_model_object(name, entry.owned_by))
    return json_response({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    entry = request.app[SERVICES].catalogue.resolve(request.match_info["model"])
    if entry is None or entry.name not in await allowed_models(request):
        raise errors.UnknownModel(f"The model `{request.match_info['model']}` does not exist or you do not "
                                  "have access to it.", param="model")
    return json_response(_model_object(entry.name, entry.owned_by))


async def healthz(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app.get(SERVICES)
    checks = {"config": services is not None, "upstreams": bool(services and services.upstreams),
              "policy": False, "store": False}
    circuit = "closed"
    if services is not None:
        # Like the store: with fail-open the proxy answers (undecided requests pass), so it is ready.
        checks["policy"] = await policy_ready(services.policy) or services.config.policy.fail_open
        store = await services.store.readiness()
        checks["store"], circuit = store.ready, store.circuit
    ready = all(checks.values())
    return json_response({"status": "ready" if ready else "not_ready", "checks": checks,
                          "store_circuit": circuit}, status=200 if ready else 503)


async def policy_ready(engine: object) -> bool:
    healthy = getattr(engine, "healthy", None)
    if healthy is None:
        return bool(getattr(engine, "revision", None))
    try:
        return bool(await asyncio.wait_for(healthy(), 1.0))
    except Exception:
        return False


async def metrics_endpoint(request: web.Request) -> web.Response:
    return web.Response(body=render_metrics(request.app[METRICS]),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def unknown_route(request: web.Request) -> web.Response:
    if request.path in MODEL_ROUTES:
        raise errors.MethodNotAllowed(f"Method {request.method} is not allowed on {request.path}; use POST.")
    raise errors.NotFound(f"Invalid URL ({request.method} {request.path}): this proxy serves only the model "
                          "endpoints it enforces policy on.", code="unknown_url")


def json_response(document: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")

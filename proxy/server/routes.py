"""Every route and its handler: the model calls (through the pipeline), models, health, metrics, admin, MCP."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from proxy import errors
from proxy.apis import anthropic
from proxy.apis.anthropic.count_tokens import COUNT_TOKENS_ROUTE, count_tokens
from proxy.components import COMPONENTS
from proxy.endpoints import MODEL_ENDPOINTS, EndpointSpec
from proxy.gateway.observation import Observation, Reporter
from proxy.gateway.pipeline import serve_model_call
from proxy.identity import Identity
from proxy.policy.errors import PolicyEngineError
from proxy.policy.input import identity_input
from proxy.server import admin
from proxy.server.middleware import Authenticated, Route, guarded
from proxy.telemetry.metrics import render as render_metrics
from proxy.telemetry.tracing import Tracing

# Every front door's model endpoints; each names the API its errors are rendered in.
ENDPOINTS: tuple[EndpointSpec, ...] = (*MODEL_ENDPOINTS, anthropic.MESSAGES)
MODEL_ROUTES = frozenset({*(spec.route for spec in ENDPOINTS), COUNT_TOKENS_ROUTE})


def add_routes(app: web.Application, reporter: Reporter, tracing: Tracing, *, metrics: bool, mcp: bool) -> None:
    def add(method: str, path: str, route: Route, public: bool = False) -> None:
        app.router.add_route(method, path, guarded(route, reporter, tracing, public=public))

    for spec in ENDPOINTS:
        add("POST", spec.route, model_route(spec))
    add("POST", COUNT_TOKENS_ROUTE, authenticated(count_tokens))
    add("GET", "/v1/models", authenticated(list_models))
    add("GET", "/v1/models/{model}", authenticated(get_model))
    add("GET", "/healthz", healthz, public=True)
    add("GET", "/readyz", readyz, public=True)
    # Off, /metrics is still public: a scraper gets a 404, not a 401.
    add("GET", "/metrics", metrics_endpoint if metrics else unknown_route, public=True)
    for method, path, handler in admin.ROUTES:
        add(method, path, authenticated(handler))
    if mcp:
        add("*", "/mcp/{server}", authenticated(mcp_route))
    add("*", "/{tail:.*}", unknown_route)


def model_route(spec: EndpointSpec) -> Route:
    async def route(request: web.Request, observation: Observation, identity: Identity | None) -> web.StreamResponse:
        assert identity is not None
        return await serve_model_call(request, spec, request.app[COMPONENTS], identity, observation)
    return route


def authenticated(handler: Authenticated) -> Route:
    async def route(request: web.Request, observation: Observation, identity: Identity | None) -> web.StreamResponse:
        assert identity is not None
        return await handler(request, observation, identity)
    return route


async def mcp_route(request: web.Request, observation: Observation, identity: Identity) -> web.StreamResponse:
    gateway = request.app[COMPONENTS].mcp
    assert gateway is not None
    return await gateway.serve(request, identity, observation.request_id, observation)


def _model_object(name: str, owned_by: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owned_by}


async def allowed_models(request: web.Request, identity: Identity) -> list[str]:
    """The catalogue as this caller may use it: the policy decides, and an engine error is a 503."""
    components = request.app[COMPONENTS]
    try:
        return await components.policy.allowed_models(identity_input(identity), components.catalogue.names())
    except PolicyEngineError as exc:
        raise errors.Unavailable("The policy engine could not decide which models you may use.",
                                 code="policy_unavailable") from exc


async def list_models(request: web.Request, observation: Observation, identity: Identity) -> web.Response:
    observation.called("models")
    catalogue = request.app[COMPONENTS].catalogue
    data = []
    for name in await allowed_models(request, identity):
        entry = catalogue.resolve(name)
        if entry is not None:
            data.append(_model_object(name, entry.owned_by))
    return json_response({"object": "list", "data": data})


async def get_model(request: web.Request, observation: Observation, identity: Identity) -> web.Response:
    observation.called("models", request.match_info["model"])
    entry = request.app[COMPONENTS].catalogue.resolve(request.match_info["model"])
    if entry is None or entry.name not in await allowed_models(request, identity):
        raise errors.UnknownModel(f"The model `{request.match_info['model']}` does not exist or you do not "
                                  "have access to it.", param="model")
    return json_response(_model_object(entry.name, entry.owned_by))


async def healthz(*_: object) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request, *_: object) -> web.Response:
    components = request.app.get(COMPONENTS)
    checks = {"config": components is not None, "upstreams": bool(components and components.upstreams),
              "policy": False, "store": False}
    circuit = "closed"
    if components is not None:
        # Like the store: with fail-open the proxy answers (undecided requests pass), so it is ready.
        checks["policy"] = await policy_ready(components.policy) or components.config.policy.fail_open
        store = await components.store.readiness()
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


async def metrics_endpoint(request: web.Request, *_: object) -> web.Response:
    return web.Response(body=render_metrics(request.app[COMPONENTS].metrics),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def unknown_route(request: web.Request, *_: object) -> web.Response:
    if request.path in MODEL_ROUTES:
        raise errors.MethodNotAllowed(f"Method {request.method} is not allowed on {request.path}; use POST.")
    raise errors.NotFound(f"Invalid URL ({request.method} {request.path}): this proxy serves only the model "
                          "endpoints it enforces policy on.", code="unknown_url")


def json_response(document: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")

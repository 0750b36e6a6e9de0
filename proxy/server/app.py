"""build_app(config): the app assembled from its components and routes (middleware order: middleware.py)."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from proxy.components import components_ctx, tracer_provider_from_env
from proxy.config import Config
from proxy.gateway.observation import Reporter
from proxy.server.http_errors import use_json_parser_errors
from proxy.server.routes import add_routes
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.tracing import Tracing


def build_app(config: Config, registry: CollectorRegistry | None = None, egress_sock: socket.socket | None = None,
              tracer_provider: TracerProvider | None = None,
              listening: Sequence[tuple[str, int]] = ()) -> web.Application:
    """`listening`: where the API listens, when not config.server's host and port (the egress proxy refuses it)."""
    use_json_parser_errors()  # the parser's own 400s: OpenAI JSON that never echoes the request
    metrics = Metrics(registry, enabled=config.telemetry.metrics,
                      multiprocess_dir=config.telemetry_env.prometheus_multiproc_dir)
    if tracer_provider is None:
        tracer_provider = tracer_provider_from_env(config.telemetry_env)
    tracing = Tracing(tracer_provider, stage_spans=config.telemetry.stage_spans)
    reporter = Reporter(metrics, engine=config.policy.engine, user_label=config.telemetry.metrics_user_label)
    app = web.Application(client_max_size=config.server.max_body_bytes)
    app.cleanup_ctx.append(components_ctx(config, metrics, tracing, reporter, egress_sock, listening))
    add_routes(app, reporter, tracing, metrics=metrics.enabled, mcp=bool(config.mcp.servers))
    return app

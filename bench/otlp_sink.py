"""A tiny OTLP/HTTP trace receiver for the benchmark: accepts POST /v1/traces, answers 200, counts spans.

Protobuf bodies (gzip or not) are decoded with opentelemetry-proto when it is installed; JSON bodies are
counted too. GET /stats returns {"requests", "spans", "bytes", "undecoded"} so far.

Usage: python bench/otlp_sink.py --port 4318
"""

from __future__ import annotations

import argparse
import gzip
from typing import Any

import orjson
from aiohttp import web

STATS = web.AppKey("stats", dict)


def count_spans(body: bytes, content_type: str) -> int | None:
    if "json" in content_type:
        document: Any = orjson.loads(body)
        return sum(len(scope.get("spans", [])) for resource in document.get("resourceSpans", [])
                   for scope in resource.get("scopeSpans", []))
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    except ImportError:
        return None
    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


async def traces(request: web.Request) -> web.Response:
    stats = request.app[STATS]
    body = await request.read()
    stats["requests"] += 1
    stats["bytes"] += len(body)
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    try:
        spans = count_spans(body, request.content_type)
    except Exception:  # a sink must never fail the exporter; count what it could not read
        spans = None
    if spans is None:
        stats["undecoded"] += 1
    else:
        stats["spans"] += spans
    # An empty ExportTraceServiceResponse: zero bytes in protobuf, {} in JSON.
    if "json" in request.content_type:
        return web.Response(body=b"{}", content_type="application/json")
    return web.Response(body=b"", content_type="application/x-protobuf")


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS])


def build_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATS] = {"requests": 0, "spans": 0, "bytes": 0, "undecoded": 0}
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/stats", stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    web.run_app(build_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()

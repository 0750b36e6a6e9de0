"""OTLP/JSON trace export: the same message as the SDK's protobuf encoder, posted the way receivers expect."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as encode_protobuf
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from structlog.testing import capture_logs

from proxy.components import tracer_provider_from_env
from proxy.telemetry.env import EXPORT_BATCH_SIZE, parse_telemetry_env
from proxy.telemetry.otlp_json import OtlpJsonSpanExporter, encode_spans
from proxy.telemetry.tracing import otlp_provider
from tests.support.servers import ServerThread

REMOTE_PARENT = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=True,
                            trace_flags=TraceFlags(1))


def sample_spans() -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-json-test", "deployment": "ci"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("llm-policy-proxy", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.26.0")
    with tracer.start_as_current_span("chat gpt-4o", context=set_span_in_context(NonRecordingSpan(REMOTE_PARENT)),
                                      kind=SpanKind.SERVER, attributes={
                                          "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 12,
                                          "llm_proxy.cost_usd": 0.00125, "llm_proxy.pii_types": ("email", "phone"),
                                          "llm_proxy.stream": False, "big": 2**62}) as server:
        server.add_event("policy.denied", {"reason": "model_not_allowed", "count": 2})
        with tracer.start_as_current_span("POST demo", kind=SpanKind.CLIENT, links=[Link(REMOTE_PARENT, {"k": "v"})],
                                          attributes={"server.address": "http://127.0.0.1:1/v1"}):
            pass
        server.set_status(Status(StatusCode.ERROR, "upstream failed"))
    return exporter.get_finished_spans()


def hex_ids_to_base64(node: Any) -> Any:
    """OTLP JSON writes ids in hex, protobuf's canonical JSON in base64: convert to compare the two."""
    if isinstance(node, dict):
        return {key: (base64.b64encode(bytes.fromhex(value)).decode()
                      if key in ("traceId", "spanId", "parentSpanId") else hex_ids_to_base64(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [hex_ids_to_base64(item) for item in node]
    return node


def test_json_encodes_the_same_message_as_the_sdk_protobuf_encoder() -> None:
    spans = sample_spans()
    document = orjson.loads(encode_spans(spans))
    parsed = json_format.ParseDict(hex_ids_to_base64(document), ExportTraceServiceRequest())
    assert parsed == encode_protobuf(spans)
    server = next(s for s in document["resourceSpans"][0]["scopeSpans"][0]["spans"] if s["name"] == "chat gpt-4o")
    # The OTLP JSON mapping: hex ids, integer enums, 64-bit integers as strings.
    assert server["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736" and server["parentSpanId"] == "00f067aa0ba902b7"
    assert server["kind"] == 2 and server["status"] == {"code": 2, "message": "upstream failed"}
    assert {"key": "big", "value": {"intValue": str(2**62)}} in server["attributes"]


@pytest.fixture
def receiver(servers: ServerThread) -> Iterator[tuple[str, list[web.Request | Any]]]:
    """An OTLP/HTTP receiver that answers with the statuses queued in `script` (then 200)."""
    seen: list[Any] = []
    script: list[Any] = []

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp inflates a gzip body (and answers 400 to a broken one)
        seen.append((request.headers.copy(), orjson.loads(body)))
        answer = script.pop(0) if script else 200
        if callable(answer):  # something to do when this request arrives, then the answer after it
            answer = answer()
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, body=b"{}", content_type="application/json", headers=headers)

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner, port = servers.start_app(app)
    seen_and_script: list[Any] = [seen, script]
    yield f"http://127.0.0.1:{port}", seen_and_script
    servers.stop_app(runner)


def exporter_of(provider: TracerProvider) -> Any:
    return provider._active_span_processor._span_processors[0]._batch_processor._exporter


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
def test_exporter_posts_json_with_the_configured_headers(receiver: tuple[str, list[Any]], compression: str) -> None:
    base, (seen, _) = receiver
    provider = otlp_provider(parse_telemetry_env({
        "OTEL_EXPORTER_OTLP_ENDPOINT": base + "/", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20t0k",
        "OTEL_EXPORTER_OTLP_COMPRESSION": compression}))
    exporter = exporter_of(provider)
    assert exporter.endpoint == base + "/v1/traces"
    assert exporter.export(sample_spans()) == SpanExportResult.SUCCESS
    headers, document = seen[0]
    assert headers["Content-Type"] == "application/json" and headers["Content-Encoding"] == compression
    assert headers["x-tenant"] == "acme" and headers["authorization"] == "Bearer t0k"
    assert len(document["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 2
    provider.shutdown()


def test_exporter_retries_what_the_spec_calls_retryable_and_gives_up_on_the_rest(
        receiver: tuple[str, list[Any]]) -> None:
    base, (seen, script) = receiver
    exporter = OtlpJsonSpanExporter(endpoint=base + "/v1/traces", headers={}, timeout_s=10)
    script.extend([503, 429])
    assert exporter.export(sample_spans()) == SpanExportResult.SUCCESS
    assert len(seen) == 3
    script.append(400)
    assert exporter.export(sample_spans()) == SpanExportResult.FAILURE
    assert len(seen) == 4  # a 400 is not worth repeating


def test_exporter_gives_up_within_its_timeout_when_nothing_listens(unused_tcp_port: int) -> None:
    exporter = OtlpJsonSpanExporter(endpoint=f"http://127.0.0.1:{unused_tcp_port}/v1/traces", headers={},
                                    timeout_s=0.5)
    with capture_logs() as logs:
        assert exporter.export(sample_spans()) == SpanExportResult.FAILURE
    # One JSON event, not a plain-text line; the reason names the error (refused, or timed out on a slow day).
    [event] = logs
    assert event.pop("reason") in ("NewConnectionError", "ConnectTimeoutError", "timed out")
    assert event == {"event": "otlp_export_failed", "log_level": "warning", "status": None, "spans_dropped": 2,
                     "endpoint": f"http://127.0.0.1:{unused_tcp_port}/v1/traces"}


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_both_exporters_get_the_settings_read_from_the_environment(protocol: str) -> None:
    provider = tracer_provider_from_env(parse_telemetry_env({
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=acme", "OTEL_EXPORTER_OTLP_TIMEOUT": "2.5",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}))
    assert provider is not None
    exporter = exporter_of(provider)
    if protocol == "http/json":
        assert type(exporter) is OtlpJsonSpanExporter
        seen = (exporter.endpoint, exporter._headers["x-tenant"], exporter.timeout_s, exporter.compression)
    else:
        assert type(exporter).__name__ == "OTLPSpanExporter"
        client = exporter._client
        seen = (client._endpoint, client._headers["x-tenant"], client._timeout, client._compression.value)
    assert seen == ("http://127.0.0.1:9/v1/traces", "acme", 2.5, "gzip")
    provider.shutdown()


def test_no_provider_without_an_endpoint_or_with_the_sdk_off() -> None:
    assert tracer_provider_from_env(parse_telemetry_env({})) is None
    assert tracer_provider_from_env(parse_telemetry_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                                         "OTEL_SDK_DISABLED": "true"})) is None


@pytest.mark.parametrize(("env", "batch"), [
    ({}, EXPORT_BATCH_SIZE),
    ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "200"}, 200),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "32"}, 32),  # the SDK refuses a batch larger than the queue
])
def test_export_batches_are_small_unless_the_environment_says_otherwise(env: dict[str, str], batch: int) -> None:
    provider = otlp_provider(parse_telemetry_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", **env}))
    processor = provider._active_span_processor._span_processors[0]
    assert processor._batch_processor._max_export_batch_size == batch
    provider.shutdown()


def test_retry_after_is_honoured_and_shutdown_cuts_a_wait_short(receiver: tuple[str, list[Any]]) -> None:
    base, (seen, script) = receiver
    exporter = OtlpJsonSpanExporter(endpoint=base + "/v1/traces", headers={}, timeout_s=10)
    script.append((503, {"Retry-After": "0"}))
    started = time.monotonic()
    assert exporter.export(sample_spans()) == SpanExportResult.SUCCESS
    assert len(seen) == 2 and time.monotonic() - started < 0.4  # no backoff: the receiver said 0 s
    answered = threading.Event()

    def asked_to_wait() -> tuple[int, dict[str, str]]:
        answered.set()
        return 503, {"Retry-After": "30"}

    def shut_down_once_answered() -> None:
        if answered.wait(10):  # the exporter is in its 30 s wait, or about to be
            exporter.shutdown()

    script.extend([asked_to_wait, *[(503, {"Retry-After": "30"})] * 3])
    threading.Thread(target=shut_down_once_answered, daemon=True).start()
    started = time.monotonic()
    assert exporter.export(sample_spans()) == SpanExportResult.FAILURE
    assert time.monotonic() - started < 2


def test_non_finite_doubles_use_the_proto3_json_spelling() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("s", attributes={
            "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")}):
        pass
    spans = exporter.get_finished_spans()
    document = orjson.loads(encode_spans(spans))
    values = {a["key"]: a["value"] for a in document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]}
    assert values == {"nan": {"doubleValue": "NaN"}, "inf": {"doubleValue": "Infinity"},
                      "ninf": {"doubleValue": "-Infinity"}}
    parsed = json_format.ParseDict(hex_ids_to_base64(document), ExportTraceServiceRequest())
    assert parsed.resource_spans[0].scope_spans[0].spans[0].attributes[1].value.double_value == float("inf")

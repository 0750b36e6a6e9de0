"""Tracing's shutdown is bounded: a collector that never answers cannot hold a worker's exit."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from structlog.testing import capture_logs

from proxy.telemetry.tracing import Tracing


class Blackhole(SpanExporter):
    """Blocks every export until released, as a collector that accepts the connection and never replies."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


async def test_shutdown_gives_up_after_its_timeout_and_says_so() -> None:
    exporter = Blackhole()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing = Tracing(provider)
    with tracing.server_span("POST /v1/chat/completions", {}, {}):
        pass
    started = time.monotonic()
    with capture_logs() as logs:
        await tracing.shutdown(timeout_s=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert [entry["event"] for entry in logs] == ["trace_export_shutdown_timeout"]
    exporter.release.set()


async def test_shutdown_exports_what_is_queued_when_the_collector_answers() -> None:
    exporter = Blackhole()
    exporter.release.set()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing = Tracing(provider)
    for _ in range(3):
        with tracing.server_span("POST /v1/chat/completions", {}, {}):
            pass
    with capture_logs() as logs:
        await tracing.shutdown(timeout_s=5)
    assert exporter.exported == 3 and logs == []


def test_the_upstream_call_continues_the_trace_and_the_callers_baggage() -> None:
    provider = TracerProvider()
    tracing = Tracing(provider)
    incoming = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "baggage": "tenant=acme"}
    sent: dict[str, str] = {}
    with tracing.server_span("POST /v1/chat/completions", incoming, {}) as server:
        with tracing.span("POST demo", SpanKind.CLIENT) as client:
            tracing.inject(sent)
        assert server is not None and client.parent.span_id == server.get_span_context().span_id
    assert sent["traceparent"] == f"00-4bf92f3577b34da6a3ce929d0e0e4736-{client.get_span_context().span_id:016x}-01"
    assert sent["baggage"] == "tenant=acme"
    outside: dict[str, str] = {}
    tracing.inject(outside)
    assert outside == {}


def test_a_failed_upstream_call_marks_its_client_span_as_an_error() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    with (tracing.server_span("POST /v1/chat/completions", {}, {}), contextlib.suppress(ConnectionError),
          tracing.span("POST demo", SpanKind.CLIENT)):
        raise ConnectionError("refused")
    client, server = exporter.get_finished_spans()
    assert client.status.status_code == StatusCode.ERROR and client.status.description == "ConnectionError: refused"
    assert server.status.status_code == StatusCode.UNSET

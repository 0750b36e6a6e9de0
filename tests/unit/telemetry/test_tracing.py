"""proxy.telemetry.tracing: spans recorded by the proxy reach the provider's processors as the SDK's own would,
the provider's sampler decides, and shutdown is bounded (a collector that never answers cannot hold a worker's
exit)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry import propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context
from structlog.testing import capture_logs

from proxy.telemetry.env import parse_telemetry_env
from proxy.telemetry.tracing import Tracing, finish_server_span, ids, otlp_provider


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


def recorded(sampler: object | None = None, *, stage_spans: bool = False) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": "unit"}))  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider, stage_spans=stage_spans), exporter


def test_spans_reach_the_processors_as_the_sdk_would_hand_them_over() -> None:
    tracing, exporter = recorded()
    with tracing.server_span("POST /v1/chat/completions", {}, {"url.path": "/v1/chat/completions"}) as server:
        with tracing.span("POST demo", SpanKind.CLIENT, {"server.address": "http://127.0.0.1:1/v1", "tags": ["a"]}):
            pass
        server.update_name("chat gpt-4o")
        finish_server_span(server, 502, {"llm_proxy.pii_types": ["email", "phone"], "llm_proxy.app": None,
                                         "llm_proxy.reason_codes": []})
    client, span = exporter.get_finished_spans()
    assert isinstance(span, ReadableSpan) and span.name == "chat gpt-4o" and span.kind == SpanKind.SERVER
    assert span.parent is None and span.context.trace_flags.sampled and span.context.trace_flags.random_trace_id
    assert span.resource.attributes["service.name"] == "unit"
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "llm-policy-proxy"
    assert dict(span.attributes or {}) == {"url.path": "/v1/chat/completions",
                                           "llm_proxy.pii_types": ("email", "phone"), "http.response.status_code": 502}
    assert span.status.status_code == StatusCode.ERROR
    assert span.start_time is not None and span.end_time is not None
    assert client.start_time is not None and client.end_time is not None
    assert span.start_time <= client.start_time <= client.end_time <= span.end_time
    assert client.parent == span.context and client.context.trace_id == span.context.trace_id
    assert dict(client.attributes or {}) == {"server.address": "http://127.0.0.1:1/v1", "tags": ("a",)}


@pytest.mark.parametrize("sampler", [ALWAYS_OFF, TraceIdRatioBased(0.0)], ids=["always_off", "ratio_0"])
def test_a_request_the_sampler_drops_records_nothing_yet_still_propagates(sampler: object) -> None:
    tracing, exporter = recorded(sampler)
    sent: dict[str, str] = {}
    with tracing.server_span("POST /v1/chat/completions", {}, {}) as server:
        with tracing.span("POST demo", SpanKind.CLIENT) as client:
            tracing.inject(sent)
        assert not server.is_recording() and not client.is_recording()
    assert exporter.get_finished_spans() == ()
    trace_id, span_id = server.get_span_context().trace_id, client.get_span_context().span_id
    assert sent["traceparent"] == f"00-{trace_id:032x}-{span_id:016x}-02"  # random trace id, not sampled


def test_an_unsampled_caller_is_followed_by_the_parent_based_default() -> None:
    tracing, exporter = recorded(ParentBased(TraceIdRatioBased(1.0)))
    incoming = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
    sent: dict[str, str] = {}
    with tracing.server_span("POST /v1/chat/completions", incoming, {}), tracing.span("POST demo", SpanKind.CLIENT):
        tracing.inject(sent)
    assert exporter.get_finished_spans() == ()
    assert sent["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and sent["traceparent"][-2:] == "00"


def test_the_sdk_switched_off_means_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tracing = Tracing(TracerProvider())
    assert not tracing.enabled
    with tracing.server_span("POST /v1/chat/completions", {}, {}) as span:
        assert span is None


def test_without_a_caller_context_the_upstream_gets_what_the_w3c_propagators_write() -> None:
    tracing, _ = recorded()
    sent: dict[str, str] = {}
    with (tracing.server_span("POST /v1/chat/completions", {"content-type": "application/json"}, {}),
          tracing.span("POST demo", SpanKind.CLIENT) as client):
        tracing.inject(sent)
    expected: dict[str, str] = {}
    propagate.inject(expected, context=set_span_in_context(client))
    assert sent == expected and set(sent) == {"traceparent"}


async def test_a_stage_that_outlives_its_request_span_is_still_recorded() -> None:
    """A settle shielded from a second cancellation finishes after the request's span has ended."""
    tracing, exporter = recorded(stage_spans=True)
    release = asyncio.Event()

    async def settle() -> None:
        await release.wait()
        with tracing.stage("budget.settle"):
            pass

    with tracing.server_span("POST /v1/chat/completions", {}, {}) as server:
        task = asyncio.get_running_loop().create_task(settle())  # the request's context, server span current
    release.set()
    await task
    request, stage = exporter.get_finished_spans()
    assert stage.name == "budget.settle" and stage.parent == server.get_span_context() == request.context


class RecordOnly(Sampler):
    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None, attributes: Any = None,
                      links: Any = None, trace_state: Any = None) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY, attributes)

    def get_description(self) -> str:
        return "RecordOnly"


class Ended(SpanProcessor):
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.names.append(span.name)


def test_under_a_span_recorded_but_not_sampled_the_sampler_decides_for_the_child() -> None:
    ended = Ended()
    provider = TracerProvider(sampler=ParentBased(RecordOnly()))
    provider.add_span_processor(ended)
    tracing = Tracing(provider)
    with tracing.server_span("POST /v1/chat/completions", {}, {}) as server, tracing.span("POST demo") as client:
        assert server.is_recording() and not client.is_recording()  # ParentBased: local unsampled parent
    assert ended.names == ["POST /v1/chat/completions"]


@pytest.mark.parametrize(("header", "expected"), [
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
     {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",  # not sampled: still a trace context
     {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}),
    ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", {}),  # all-zero ids are invalid
    ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", {}),  # upper case is invalid
    ("garbage", {}),
    ("", {}),
])
def test_log_ids_come_from_the_caller_s_context_when_no_span_is_recorded(header: str,
                                                                        expected: dict[str, str]) -> None:
    assert ids(None, {"traceparent": header}) == expected


def test_log_ids_are_the_request_span_s_when_tracing_records_one() -> None:
    tracing = Tracing(TracerProvider(sampler=ALWAYS_OFF))
    caller = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with tracing.server_span("POST /v1/chat/completions", caller, {}) as span:
        found = ids(span, caller)
    # The proxy's own span in the caller's trace, even when the sampler drops it.
    assert found["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and found["span_id"] != "00f067aa0ba902b7"
    assert ids(None, None) == {}


@pytest.mark.parametrize(("env", "description"), [
    ({}, "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:"
         "AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"),
    ({"OTEL_TRACES_SAMPLER": "always_off"}, "AlwaysOffSampler"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, "TraceIdRatioBased{0.25}"),
    ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
     "ParentBased{root:TraceIdRatioBased{0.1},remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:"
     "AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"),
])
def test_the_provider_samples_as_the_sampler_variables_say(env: dict[str, str], description: str) -> None:
    provider = otlp_provider(parse_telemetry_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", **env}))
    assert provider.sampler.get_description() == description
    provider.shutdown()

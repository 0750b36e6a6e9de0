"""OpenTelemetry traces: one server span per request with GenAI attributes and a client span for the
upstream call; per-stage child spans only when `telemetry.stage_spans` asks for them.

Every exported span costs CPU twice: recording it on the event loop, and encoding it on the export thread,
which holds the GIL meanwhile. By default a stage's time goes onto the server span as an attribute
(`llm_proxy.stage.<name>_ms`) instead of a span of its own, which costs a clock read.
Off unless an OTLP endpoint is configured (the standard OTEL_* variables, read by proxy/telemetry/env.py) or
a provider is injected (tests). When off, every call here is a no-op on a shared object, so the hot path pays nothing.
No prompt or completion text ever goes into a span.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
import time
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, get_global_textmap, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    Decision,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, set_span_in_context

from .env import TelemetryEnv
from .logging import get_logger

# GenAI semantic conventions name operations, not endpoints.
OPERATIONS = {"chat.completions": "chat", "completions": "text_completion", "responses": "chat",
              "embeddings": "embeddings", "messages": "chat"}
_NULL = contextlib.nullcontext()
log = get_logger("proxy.tracing")


# Well inside server.exit_grace_s (10 s by default), which also covers the stores and the threads.
SHUTDOWN_TIMEOUT_S = 5.0
_SAMPLERS: dict[str, Sampler] = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF,
                                 "parentbased_always_on": DEFAULT_ON, "parentbased_always_off": DEFAULT_OFF}


def otlp_provider(settings: TelemetryEnv) -> TracerProvider:
    """A provider exporting over OTLP/HTTP as `settings.otlp` says (it must name an export).

    `http/json` uses our orjson encoder (a third of the CPU per span); `http/protobuf` the SDK's exporter."""
    otlp = settings.otlp
    assert otlp is not None, "no OTLP export configured"
    exporter: SpanExporter
    if otlp.protocol == "http/json":
        from .otlp_json import OtlpJsonSpanExporter

        exporter = OtlpJsonSpanExporter(otlp.endpoint, dict(otlp.headers), otlp.timeout_s, otlp.compression,
                                        otlp.certificate_file)
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(otlp.endpoint, otlp.certificate_file, headers=dict(otlp.headers),
                                    timeout=otlp.timeout_s, compression=Compression(otlp.compression))
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}),
                              sampler=sampler(settings))
    batch = settings.batch
    provider.add_span_processor(BatchSpanProcessor(
        exporter, max_queue_size=batch.max_queue_size, schedule_delay_millis=batch.schedule_delay_ms,
        max_export_batch_size=batch.max_export_batch_size, export_timeout_millis=batch.export_timeout_ms))
    return provider


def sampler(settings: TelemetryEnv) -> Sampler:
    """The SDK's built-in sampler that OTEL_TRACES_SAMPLER names, with its ratio."""
    if settings.sampler == "traceidratio":
        return TraceIdRatioBased(settings.sampler_ratio)
    if settings.sampler == "parentbased_traceidratio":
        return ParentBasedTraceIdRatio(settings.sampler_ratio)
    return _SAMPLERS[settings.sampler]


class Tracing:
    def __init__(self, provider: TracerProvider | None, *, stage_spans: bool = False) -> None:
        self.provider = provider
        tracer = provider.get_tracer(SCOPE.name) if provider is not None else None
        # OTEL_SDK_DISABLED=true makes an SDK provider hand out a no-op tracer: nothing to record then.
        self._recorder = _Recorder(tracer) if isinstance(tracer, SdkTracer) else None
        self.enabled = self._recorder is not None
        self.stage_spans = stage_spans
        self._fields = frozenset(get_global_textmap().fields)
        self._w3c = self._fields == _W3C_FIELDS

    def server_span(self, name: str, headers: Mapping[str, str],
                    attributes: dict[str, Any]) -> contextlib.AbstractContextManager[Span | None]:
        """The request's span, continuing the caller's trace; it ends (and is queued for export) on exit."""
        if self._recorder is None:
            return _NULL
        # Extracting costs a few microseconds even from headers that carry no context: most callers send none.
        carried = any(field in headers for field in self._fields)
        parent = extract(headers) if carried else otel_context.get_current()
        span = self._recorder.start(name, SpanKind.SERVER, attributes, parent)
        return _ServerScope(span, _Request(parent, plain=self._w3c and not carried and not parent))

    def span(self, name: str, kind: SpanKind = SpanKind.INTERNAL,
             attributes: dict[str, Any] | None = None) -> contextlib.AbstractContextManager[Any]:
        """A child of the request's innermost open span (a root span outside a request)."""
        if self._recorder is None:
            return _NULL
        return _Child(self._recorder, name, kind, attributes)

    def stage(self, name: str) -> contextlib.AbstractContextManager[Any]:
        """A pipeline stage: a child span when `stage_spans`, else its duration on the current span."""
        if self._recorder is None:
            return _NULL
        if self.stage_spans:
            return _Child(self._recorder, name, SpanKind.INTERNAL, None)
        request = _REQUEST.get()
        return _NULL if request is None else _Timed(request.stage_times, _stage_key(name))

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Adds `traceparent` for the innermost open span (and the caller's baggage), so the upstream
        continues the trace."""
        current = _CURRENT.get()
        if current is None:
            return
        request = _REQUEST.get()
        if request is not None and request.plain:
            # What the W3C propagators write when the caller sent no context: a tenth of their cost in place.
            context = current.get_span_context()
            headers["traceparent"] = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
            if context.trace_state:
                headers["tracestate"] = context.trace_state.to_header()
            return
        inject(headers, context=set_span_in_context(current, request.parent if request else None))

    async def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Exports what is queued, waiting at most `timeout_s`: with a collector that does not answer, the
        SDK's own shutdown would block for 30 s, past the worker's exit watchdog. The export carries on in a
        daemon thread, so the process can still exit; what it has not sent by then is lost."""
        if self.provider is None:
            return
        loop, finished = asyncio.get_running_loop(), asyncio.Event()
        provider = self.provider

        def run() -> None:
            try:
                provider.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
                    loop.call_soon_threadsafe(finished.set)

        threading.Thread(target=run, name="otel-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(finished.wait(), timeout_s)
        except TimeoutError:
            log.warning("trace_export_shutdown_timeout", timeout_s=timeout_s)


# Why the proxy records its spans itself. The SDK's Tracer.start_span and Span cost 162 us of event-loop time
# per request in place (the server span, the upstream call's client span, the end attributes each validated
# under a lock), the proxy's own records 70 (`bench/inplace_cost.py`, timers included). Every
# decision still comes from the provider's own parts: its sampler decides, its id generator makes the ids,
# and each span is handed, as the SDK's ReadableSpan with the provider's resource, to the provider's span
# processors when it ends, so exporters and processors see what the SDK would have given them. What is left
# out, because the proxy does not use it: events, links, span limits (the proxy's spans carry a fixed set of
# ~25 attributes, well inside the default 128) and SpanProcessor.on_start.
SCOPE = InstrumentationScope("llm-policy-proxy", "")
# version 00 (or a later one, read the same way), trace id, parent span id, flags: all lowercase hex.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(?:-.*)?")


class _Recorder:
    __slots__ = ("ids", "processor", "resource", "sampler")

    def __init__(self, tracer: SdkTracer) -> None:
        self.sampler, self.ids, self.resource = tracer.sampler, tracer.id_generator, tracer.resource
        self.processor = tracer.span_processor

    def start(self, name: str, kind: SpanKind, attributes: dict[str, Any] | None,
              parent: otel_context.Context | None) -> _Span:
        """A root span, or a child of the span in `parent` (a remote caller's), as the sampler decides."""
        parent_span = trace.get_current_span(parent).get_span_context()
        if parent_span.is_valid:
            trace_id, random_id = parent_span.trace_id, parent_span.trace_flags.random_trace_id
        else:
            trace_id, random_id = self.ids.generate_trace_id(), self.ids.is_trace_id_random()
        sampling = self.sampler.should_sample(parent, trace_id, name, kind, attributes)
        sampled = sampling.decision is Decision.RECORD_AND_SAMPLE
        flags = (TraceFlags.SAMPLED if sampled else 0) | (TraceFlags.RANDOM_TRACE_ID if random_id else 0)
        context = SpanContext(trace_id, self.ids.generate_span_id(), False, TraceFlags(flags), sampling.trace_state)
        return _Span(None if sampling.decision is Decision.DROP else self, name, kind, context,
                     parent_span if parent_span.is_valid else None, _cleaned(sampling.attributes))

    def child(self, parent: _Span, name: str, kind: SpanKind, attributes: dict[str, Any] | None) -> _Span:
        """A child of a sampled or dropped span shares its fate, as the default parent-based samplers decide
        (and always_on, always_off and traceidratio decide alike for every span of a trace); the sampler
        is asked only under a parent it chose to record without sampling."""
        context = parent.context
        if parent.recorder is not None and not context.trace_flags.sampled:
            return self.start(name, kind, attributes, set_span_in_context(parent))
        child = SpanContext(context.trace_id, self.ids.generate_span_id(), False, context.trace_flags,
                            context.trace_state)
        return _Span(parent.recorder, name, kind, child, context, _cleaned(attributes) if attributes else {})


def _cleaned(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with sequences as tuples, as the SDK stores them (the proxy passes lists)."""
    return {key: tuple(value) if type(value) is list else value for key, value in attributes.items()}


class _Span(Span):
    """An OpenTelemetry span recorded by the proxy; when it ends, a recording one becomes a ReadableSpan for
    the provider's processors. A span the sampler dropped (`recorder` None) only carries its ids."""

    __slots__ = ("attributes", "context", "ended", "kind", "name", "parent", "recorder", "start_time", "status")

    def __init__(self, recorder: _Recorder | None, name: str, kind: SpanKind, context: SpanContext,
                 parent: SpanContext | None, attributes: dict[str, Any]) -> None:
        self.recorder, self.name, self.kind, self.context, self.parent = recorder, name, kind, context, parent
        self.attributes = attributes
        self.status = _UNSET
        self.start_time = time.time_ns()
        self.ended = False

    def end(self, end_time: int | None = None) -> None:
        recorder = self.recorder
        if recorder is not None and not self.ended:
            self.ended = True
            recorder.processor.on_end(ReadableSpan(
                self.name, self.context, self.parent, recorder.resource, self.attributes, kind=self.kind,
                status=self.status, start_time=self.start_time, end_time=end_time or time.time_ns(),
                instrumentation_scope=SCOPE))

    def get_span_context(self) -> SpanContext:
        return self.context

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.recorder is not None and not self.ended:
            self.attributes.update(_cleaned(attributes))

    def set_attribute(self, key: str, value: Any) -> None:
        self.set_attributes({key: value})

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        """Events are not recorded: the proxy adds none."""

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        """Links are not recorded: the proxy adds none."""

    def update_name(self, name: str) -> None:
        if not self.ended:
            self.name = name

    def is_recording(self) -> bool:
        return self.recorder is not None and not self.ended

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if not self.ended:
            self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(self, exception: BaseException, attributes: Any = None, timestamp: int | None = None,
                         escaped: bool = False) -> None:
        """Exceptions are not recorded as events; a failed call sets the span's status instead."""


_UNSET = Status(StatusCode.UNSET)


class _Request:
    """The request being traced: the caller's context (parent span, baggage) and its stage times, set on
    its server span when it finishes in one set_attributes call. `plain`: the propagators are the default
    W3C ones and there is no context to carry on but the request's own spans."""
    __slots__ = ("parent", "plain", "stage_times")

    def __init__(self, parent: otel_context.Context, *, plain: bool) -> None:
        self.parent, self.plain = parent, plain
        self.stage_times: dict[str, float] = {}


# The headers of the default propagators, W3C trace context and baggage (OTEL_PROPAGATORS unset).
_W3C_FIELDS = frozenset({"traceparent", "tracestate", "baggage"})


# Spans are never made the OpenTelemetry context's current span: attaching and detaching that context cost
# 10% of tracing's work on the event loop (`bench/trace_bench.py --proxy-path`). The request's own state is in
# these two variables instead.
_REQUEST: ContextVar[_Request | None] = ContextVar("llm_proxy_trace_request", default=None)
# The innermost open span of the request (the server span, or the upstream call's client span within it).
_CURRENT: ContextVar[_Span | None] = ContextVar("llm_proxy_trace_current", default=None)


class _ServerScope:
    __slots__ = ("_current", "_request", "_span", "_state")

    def __init__(self, span: _Span, state: _Request) -> None:
        self._span, self._state = span, state

    def __enter__(self) -> Span:
        self._request, self._current = _REQUEST.set(self._state), _CURRENT.set(self._span)
        return self._span

    def __exit__(self, *_: object) -> None:
        _CURRENT.reset(self._current)
        _REQUEST.reset(self._request)
        self._span.end()


class _Child:
    __slots__ = ("_attributes", "_kind", "_name", "_recorder", "_span", "_token")

    def __init__(self, recorder: _Recorder, name: str, kind: SpanKind, attributes: dict[str, Any] | None) -> None:
        self._recorder, self._name, self._kind, self._attributes = recorder, name, kind, attributes

    def __enter__(self) -> Span:
        parent = _CURRENT.get()
        self._span = span = (self._recorder.start(self._name, self._kind, self._attributes, None) if parent is None
                             else self._recorder.child(parent, self._name, self._kind, self._attributes))
        self._token = _CURRENT.set(span)
        return span

    def __exit__(self, _: object, error: BaseException | None, __: object) -> None:
        _CURRENT.reset(self._token)
        if isinstance(error, Exception):  # as the SDK's own context manager marks it (not on cancellation)
            self._span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        self._span.end()


@functools.cache
def _stage_key(name: str) -> str:
    return f"llm_proxy.stage.{name}_ms"


class _Timed:
    __slots__ = ("_key", "_started", "_times")

    def __init__(self, times: dict[str, float], key: str) -> None:
        self._times, self._key, self._started = times, key, 0

    def __enter__(self) -> None:
        self._started = time.perf_counter_ns()

    def __exit__(self, *_: object) -> None:
        # Milliseconds to the microsecond: integer division, where round(x, 3) formats a decimal string.
        self._times[self._key] = (time.perf_counter_ns() - self._started) // 1000 / 1000


# What a span leaves out rather than records as empty.
_EMPTY: tuple[object, ...] = (None, (), [])


def finish_server_span(span: Span | None, status: int, attributes: dict[str, Any]) -> None:
    if span is None:
        return
    span.set_attributes({k: v for k, v in attributes.items() if v not in _EMPTY}
                        | (request.stage_times if (request := _REQUEST.get()) else {})
                        | {"http.response.status_code": status})
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def ids(span: Span | None, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ids for log lines: the request's span when tracing records one, else the caller's W3C
    `traceparent` (its trace and span), so logs join the caller's trace even with no OTLP export."""
    if span is not None:
        ctx = span.get_span_context()
        return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
    carried = _TRACEPARENT.fullmatch(headers.get("traceparent", "")) if headers else None
    if carried is None or carried[1] == "0" * 32 or carried[2] == "0" * 16:
        return {}
    return {"trace_id": carried[1], "span_id": carried[2]}


__all__ = ["OPERATIONS", "Tracing", "finish_server_span", "ids", "otlp_provider", "trace"]

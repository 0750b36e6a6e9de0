"""OpenTelemetry traces: one server span per request with GenAI attributes and a client span for the
upstream call; per-stage child spans only when `telemetry.stage_spans` asks for them.

Each exported span costs ~100 us of CPU (creation, then encoding on the export thread, which holds the
GIL): the four stage spans were a third of a request's CPU. By default a stage's time goes onto the
server span as an attribute (`llm_proxy.stage.<name>_ms`) instead, which costs a clock read.
Off unless an OTLP endpoint is configured (the standard OTEL_* variables) or a provider is injected
(tests). When off, every call here is a no-op on a shared object, so the hot path pays nothing.
No prompt or completion text ever goes into a span.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context

from ..config import environment_flag
from .logging import get_logger

# GenAI semantic conventions name operations, not endpoints.
OPERATIONS = {"chat.completions": "chat", "completions": "text_completion", "responses": "chat",
              "embeddings": "embeddings"}
_NULL = contextlib.nullcontext()
log = get_logger("proxy.tracing")


PROTOCOLS = ("http/protobuf", "http/json")
EXPORT_BATCH_SIZE = 64
# Well inside server.exit_grace_s (10 s by default), which also covers the stores and the threads.
SHUTDOWN_TIMEOUT_S = 5.0


def otlp_provider(service_name: str, protocol: str = "http/protobuf") -> TracerProvider:
    """A provider exporting over OTLP/HTTP; the exporters read OTEL_EXPORTER_OTLP_* themselves.

    `http/json` uses our orjson encoder (a third of the CPU per span); `http/protobuf` the SDK's exporter."""
    exporter: SpanExporter
    if protocol == "http/json":
        from .otlp_json import OtlpJsonSpanExporter

        exporter = OtlpJsonSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    # The export thread holds the GIL while it encodes a batch, and a request waiting for it waits for
    # the whole hold: 512 spans (the SDK's default) put ~10 ms into the p99 at concurrency 1, 64 ~1 ms.
    # OTEL_BSP_MAX_EXPORT_BATCH_SIZE still wins when set.
    batch = None if environment_flag("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else min(EXPORT_BATCH_SIZE, _queue_size())
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=batch))
    return provider


def _queue_size() -> int:
    """OTEL_BSP_MAX_QUEUE_SIZE as the SDK reads it: a batch larger than the queue is a start-up error."""
    try:
        size = int(environment_flag("OTEL_BSP_MAX_QUEUE_SIZE") or 2048)
    except ValueError:
        return 2048
    return size if size > 0 else 2048


class Tracing:
    def __init__(self, provider: TracerProvider | None, *, stage_spans: bool = False) -> None:
        self.provider = provider
        self.enabled = provider is not None
        self.stage_spans = stage_spans
        self._tracer = provider.get_tracer("llm-policy-proxy") if provider is not None else None

    @contextlib.contextmanager
    def server_span(self, name: str, headers: Mapping[str, str], attributes: dict[str, Any]) -> Iterator[Span | None]:
        if self._tracer is None:
            yield None
            return
        parent = extract(headers)
        span = self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes,
                                       record_exception=False, set_status_on_exception=False)
        request, current = _REQUEST.set(_Request(parent)), _CURRENT.set(span)
        try:
            yield span
        finally:
            _CURRENT.reset(current)
            _REQUEST.reset(request)
            span.end()

    def span(self, name: str, kind: SpanKind = SpanKind.INTERNAL,
             attributes: dict[str, Any] | None = None) -> contextlib.AbstractContextManager[Any]:
        """A child of the request's innermost open span (a root span outside a request)."""
        if self._tracer is None:
            return _NULL
        return _Child(self._tracer, name, kind, attributes)

    def stage(self, name: str) -> contextlib.AbstractContextManager[Any]:
        """A pipeline stage: a child span when `stage_spans`, else its duration on the current span."""
        if self._tracer is None:
            return _NULL
        if self.stage_spans:
            return _Child(self._tracer, name, SpanKind.INTERNAL, None)
        request = _REQUEST.get()
        return _NULL if request is None else _Timed(request.stage_times, f"llm_proxy.stage.{name}_ms")

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Adds `traceparent` for the innermost open span (and the caller's baggage), so the upstream
        continues the trace."""
        current = _CURRENT.get()
        if current is not None:
            request = _REQUEST.get()
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


# Spans are started and ended directly, never made the OpenTelemetry context's current span: attaching and
# detaching that context, and the SDK's context managers around it, cost 10% of tracing's work on the event
# loop for a sampled request and 22% for an unsampled one (`bench/trace_bench.py --proxy-path`). The
# request's own state is in these two variables instead; nothing here reads the OpenTelemetry context.
class _Request:
    """The request being traced: the caller's context (parent span, baggage) and its stage times, set on
    its server span when it finishes in one set_attributes call."""
    __slots__ = ("parent", "stage_times")

    def __init__(self, parent: otel_context.Context) -> None:
        self.parent = parent
        self.stage_times: dict[str, float] = {}


_REQUEST: ContextVar[_Request | None] = ContextVar("llm_proxy_trace_request", default=None)
# The innermost open span of the request (the server span, or the upstream call's client span within it).
_CURRENT: ContextVar[Span | None] = ContextVar("llm_proxy_trace_current", default=None)


class _Child:
    __slots__ = ("_attributes", "_kind", "_name", "_span", "_token", "_tracer")

    def __init__(self, tracer: trace.Tracer, name: str, kind: SpanKind, attributes: dict[str, Any] | None) -> None:
        self._tracer, self._name, self._kind, self._attributes = tracer, name, kind, attributes

    def __enter__(self) -> Span:
        parent, request = _CURRENT.get(), _REQUEST.get()
        context = None if parent is None else set_span_in_context(parent, request.parent if request else None)
        self._span = span = self._tracer.start_span(self._name, context=context, kind=self._kind,
                                                    attributes=self._attributes, record_exception=False)
        self._token = _CURRENT.set(span)
        return span

    def __exit__(self, _: object, error: BaseException | None, __: object) -> None:
        _CURRENT.reset(self._token)
        if isinstance(error, Exception):  # as the SDK's own context manager marks it (not on cancellation)
            self._span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        self._span.end()


class _Timed:
    __slots__ = ("_key", "_started", "_times")

    def __init__(self, times: dict[str, float], key: str) -> None:
        self._times, self._key, self._started = times, key, 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self._times[self._key] = round(1000 * (time.perf_counter() - self._started), 3)


def finish_server_span(span: Span | None, status: int, attributes: dict[str, Any]) -> None:
    if span is None:
        return
    span.set_attributes({k: v for k, v in attributes.items() if v is not None and v != ()}
                        | (request.stage_times if (request := _REQUEST.get()) else {})
                        | {"http.response.status_code": status})
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def ids(span: Span | None) -> dict[str, str]:
    if span is None:
        return {}
    ctx = span.get_span_context()
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


__all__ = ["OPERATIONS", "PROTOCOLS", "Tracing", "finish_server_span", "ids", "otlp_provider", "trace"]

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
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

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
        stages = _STAGE_TIMES.set({})
        try:
            with self._tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER,
                                                    attributes=attributes, record_exception=False,
                                                    set_status_on_exception=False) as span:
                yield span
        finally:
            _STAGE_TIMES.reset(stages)

    def span(self, name: str, kind: SpanKind = SpanKind.INTERNAL,
             attributes: dict[str, Any] | None = None) -> contextlib.AbstractContextManager[Any]:
        if self._tracer is None:
            return _NULL
        return self._tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                                  record_exception=False)

    def stage(self, name: str) -> contextlib.AbstractContextManager[Any]:
        """A pipeline stage: a child span when `stage_spans`, else its duration on the current span."""
        if self._tracer is None:
            return _NULL
        if self.stage_spans:
            return self._tracer.start_as_current_span(name, record_exception=False)
        times = _STAGE_TIMES.get()
        return _NULL if times is None else _Timed(times, f"llm_proxy.stage.{name}_ms")

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Adds `traceparent` for the current span, so the upstream continues the trace."""
        if self.enabled:
            inject(headers, context=otel_context.get_current())

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


# The stage times of the request being served, set on its server span when it finishes: one
# set_attributes call instead of a lookup and a locked set_attribute per stage.
_STAGE_TIMES: ContextVar[dict[str, float] | None] = ContextVar("llm_proxy_stage_times", default=None)


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
                        | (_STAGE_TIMES.get() or {}) | {"http.response.status_code": status})
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def ids(span: Span | None) -> dict[str, str]:
    if span is None:
        return {}
    ctx = span.get_span_context()
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


__all__ = ["OPERATIONS", "PROTOCOLS", "Tracing", "finish_server_span", "ids", "otlp_provider", "trace"]

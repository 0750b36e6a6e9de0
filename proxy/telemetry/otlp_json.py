"""OTLP/HTTP with JSON bodies (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), encoded with orjson.

The SDK's exporters build protobuf (or, in the official JSON exporter, dataclass) objects field by field:
~80 us per span with twenty attributes, on the export thread, holding the GIL the event loop needs. Plain
dicts dumped by orjson take ~24 us for the same span, and every OTLP receiver (the Collector, Jaeger,
Tempo) accepts JSON on `/v1/traces`. The encoding follows the OTLP JSON mapping: hex trace and span ids,
enum values as integers, 64-bit integers as decimal strings.
"""

from __future__ import annotations

import base64
import gzip
import math
import random
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import structlog
import urllib3
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind

from .env import DEFAULT_TIMEOUT_S, Compression

log = structlog.get_logger(__name__)

_KIND = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4, SpanKind.CONSUMER: 5}
# Worth another try (OTLP/HTTP spec): throttled or the receiver briefly unavailable.
_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_ATTEMPTS = 4
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _value(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"stringValue": value}
    if kind is bool:
        return {"boolValue": value}
    if kind is int:
        return {"intValue": str(value)}
    if kind is float:
        # proto3's JSON mapping spells the non-finite doubles as strings (orjson would write null).
        return {"doubleValue": value if math.isfinite(value) else _NON_FINITE[str(value)]}
    if kind is tuple or kind is list:
        return {"arrayValue": {"values": [_value(item) for item in value]}}
    if kind is bytes:
        return {"bytesValue": value}  # base64 by _default
    return {"stringValue": str(value)}


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    # Most values are strings: building their dict here saves a call per attribute.
    return [{"key": key, "value": {"stringValue": value} if type(value) is str else _value(value)}
            for key, value in (attributes or {}).items()]


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.context
    assert context is not None  # an SDK span always has one
    out: dict[str, Any] = {
        "traceId": format(context.trace_id, "032x"),
        "spanId": format(context.span_id, "016x"),
        "name": span.name,
        "kind": _KIND.get(span.kind, 1),
        "startTimeUnixNano": str(span.start_time or 0),
        "endTimeUnixNano": str(span.end_time or 0),
        "attributes": _attributes(span.attributes),
        "status": {"code": span.status.status_code.value},
        "flags": _flags(span.parent),
    }
    if span.parent is not None:
        out["parentSpanId"] = format(span.parent.span_id, "016x")
    if span.status.description:
        out["status"]["message"] = span.status.description
    if context.trace_state:
        out["traceState"] = context.trace_state.to_header()
    if span.events:
        out["events"] = [{"timeUnixNano": str(event.timestamp), "name": event.name,
                          "attributes": _attributes(event.attributes)} for event in span.events]
    if span.links:
        out["links"] = [{"traceId": format(link.context.trace_id, "032x"),
                         "spanId": format(link.context.span_id, "016x"), "flags": _flags(link.context),
                         "attributes": _attributes(link.attributes)} for link in span.links]
    dropped = span.dropped_attributes
    if dropped:
        out["droppedAttributesCount"] = dropped
    return out


def _flags(parent: SpanContext | None) -> int:
    # SpanFlags: bit 8 says whether bit 9 (the parent or link is remote) is known, as the SDK's encoder sets.
    return 0x300 if parent is not None and parent.is_remote else 0x100


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()  # proto3's JSON mapping of bytes
    raise TypeError


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """An ExportTraceServiceRequest in OTLP's JSON mapping, spans grouped by resource and scope."""
    # Grouped by identity: Resource.__hash__ serialises its attributes to JSON, a sixth of the encoding time.
    grouped: dict[int, tuple[Resource | None, dict[int, tuple[Any, list[dict[str, Any]]]]]] = {}
    for span in spans:
        scopes = grouped.setdefault(id(span.resource), (span.resource, {}))[1]
        scope = span.instrumentation_scope
        scopes.setdefault(id(scope), (scope, []))[1].append(_span(span))
    resource_spans = []
    for resource, scopes in grouped.values():
        scope_spans = []
        for scope, encoded in scopes.values():
            entry: dict[str, Any] = {"scope": {"name": scope.name if scope else "",
                                               "version": (scope.version or "") if scope else ""},
                                     "spans": encoded}
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        resource_entry: dict[str, Any] = {"resource": {"attributes": _attributes(resource.attributes if resource
                                                                                 else None)},
                                          "scopeSpans": scope_spans}
        if resource is not None and resource.schema_url:
            resource_entry["schemaUrl"] = resource.schema_url
        resource_spans.append(resource_entry)
    return orjson.dumps({"resourceSpans": resource_spans}, default=_default)


def _retry_after(header: str | None, default: float) -> float:
    """The receiver's Retry-After in seconds (the OTLP/HTTP spec asks clients to honour it)."""
    if header is None:
        return default
    try:
        seconds = float(header)
    except ValueError:
        return default  # an HTTP date: rare from OTLP receivers, the backoff will do
    return seconds if seconds >= 0 and math.isfinite(seconds) else default


class OtlpJsonSpanExporter(SpanExporter):
    """Posts to `endpoint` (the full traces URL); the arguments are what proxy/telemetry/env.py read from
    OTEL_EXPORTER_OTLP_[TRACES_]*."""

    def __init__(self, endpoint: str, headers: Mapping[str, str] | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, compression: Compression = "none",
                 certificate_file: str | None = None) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.compression = compression
        self._headers = {**(headers or {}), "content-type": "application/json"}
        if compression != "none":
            self._headers["content-encoding"] = compression
        self._http = urllib3.PoolManager(num_pools=1, maxsize=1, ca_certs=certificate_file) if certificate_file \
            else urllib3.PoolManager(num_pools=1, maxsize=1)
        self._shutdown = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown.is_set():
            return SpanExportResult.FAILURE
        body = encode_spans(spans)
        if self.compression == "gzip":
            body = gzip.compress(body, compresslevel=1)
        elif self.compression == "deflate":
            body = zlib.compress(body, 1)
        deadline = time.monotonic() + self.timeout_s
        status: int | None = None
        reason = "timed out"
        for attempt in range(_MAX_ATTEMPTS):
            wait = (2 ** attempt) * (0.5 + random.random() / 2)  # exponential backoff with jitter
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                response = self._http.request("POST", self.endpoint, body=body, headers=self._headers,
                                              timeout=urllib3.Timeout(total=remaining), retries=False)
            except urllib3.exceptions.HTTPError as exc:
                status, reason = None, type(exc).__name__
            else:
                if 200 <= response.status < 300:
                    return SpanExportResult.SUCCESS
                status, reason = response.status, f"HTTP {response.status}"
                if status not in _RETRYABLE:
                    break
                wait = _retry_after(response.headers.get("Retry-After"), wait)
            if attempt == _MAX_ATTEMPTS - 1:
                break
            # Never past the deadline; shutdown() cuts the wait short.
            if self._shutdown.wait(min(max(0.0, deadline - time.monotonic()), wait)):
                break
        log.warning("otlp_export_failed", endpoint=self.endpoint, reason=reason, status=status,
                    spans_dropped=len(spans))
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._shutdown.set()
        self._http.clear()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # nothing is buffered here; the batch processor holds the queue

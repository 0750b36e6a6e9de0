"""The OTEL_* and Prometheus variables the proxy acts on, parsed once into one frozen value.

OpenTelemetry's semantics: an empty variable is unset, a traces-specific one wins over the generic one.
A value the proxy cannot use stops start-up with the variable's name (the SDK would warn and carry on
with its default, e.g. sample every request). The SDK still reads what it is handed nothing for:
OTEL_RESOURCE_ATTRIBUTES, OTEL_PROPAGATORS, client certificates and credential providers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar, get_args
from urllib.parse import unquote, urlsplit

Protocol = Literal["http/protobuf", "http/json"]
Compression = Literal["none", "gzip", "deflate"]
SamplerName = Literal["always_on", "always_off", "parentbased_always_on", "parentbased_always_off",
                      "traceidratio", "parentbased_traceidratio"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
COMPRESSIONS: tuple[Compression, ...] = get_args(Compression)
SAMPLERS: tuple[SamplerName, ...] = get_args(SamplerName)
RATIO_SAMPLERS = frozenset({"traceidratio", "parentbased_traceidratio"})
DEFAULT_ENDPOINT = "http://localhost:4318"
# The export thread holds the GIL while it encodes a batch, and a request waiting for it waits for the
# whole hold: 512 spans (the SDK's default) put ~10 ms into the p99 at concurrency 1, 64 ~1 ms.
EXPORT_BATCH_SIZE = 64
DEFAULT_TIMEOUT_S = 10.0
# The SDK's defaults for the other OTEL_BSP_* variables.
DEFAULT_QUEUE_SIZE, DEFAULT_SCHEDULE_DELAY_MS, DEFAULT_EXPORT_TIMEOUT_MS = 2048, 5000, 30_000
_T = TypeVar("_T", bound=str)


@dataclass(frozen=True, slots=True)
class OtlpExport:
    """Where and how spans go (OTEL_EXPORTER_OTLP_[TRACES_]*): `endpoint` is the full traces URL."""
    endpoint: str
    protocol: Protocol = "http/protobuf"
    headers: tuple[tuple[str, str], ...] = ()
    # Seconds, as the Python SDK reads it for both protocols (the spec says milliseconds).
    timeout_s: float = DEFAULT_TIMEOUT_S
    compression: Compression = "none"
    certificate_file: str | None = None


@dataclass(frozen=True, slots=True)
class BatchExport:
    """The batch span processor (OTEL_BSP_*)."""
    max_queue_size: int = DEFAULT_QUEUE_SIZE
    schedule_delay_ms: int = DEFAULT_SCHEDULE_DELAY_MS
    max_export_batch_size: int = EXPORT_BATCH_SIZE
    export_timeout_ms: int = DEFAULT_EXPORT_TIMEOUT_MS


@dataclass(frozen=True, slots=True)
class TelemetryEnv:
    # None: no collector is named, so nothing is traced.
    otlp: OtlpExport | None = None
    sdk_disabled: bool = False
    service_name: str = "llm-policy-proxy"
    sampler: SamplerName = "parentbased_always_on"
    sampler_ratio: float = 1.0
    batch: BatchExport = BatchExport()
    prometheus_multiproc_dir: str | None = None

    @property
    def traces(self) -> OtlpExport | None:
        """The export to set up, or None when tracing is off."""
        return None if self.sdk_disabled else self.otlp


def parse_telemetry_env(env: Mapping[str, str]) -> TelemetryEnv:
    """Raises ValueError naming the first variable whose value is unusable."""
    read = _Reader(env)
    sampler = read.choice("OTEL_TRACES_SAMPLER", SAMPLERS) or "parentbased_always_on"
    return TelemetryEnv(
        otlp=_otlp(read),
        sdk_disabled=read.boolean("OTEL_SDK_DISABLED"),
        service_name=read.get("OTEL_SERVICE_NAME") or "llm-policy-proxy",
        sampler=sampler,
        sampler_ratio=read.ratio("OTEL_TRACES_SAMPLER_ARG") if sampler in RATIO_SAMPLERS else 1.0,
        batch=_batch(read),
        prometheus_multiproc_dir=read.get("PROMETHEUS_MULTIPROC_DIR"),
    )


def _otlp(read: _Reader) -> OtlpExport | None:
    if read.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        endpoint = read.url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")  # used as is
    elif read.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = read.url("OTEL_EXPORTER_OTLP_ENDPOINT").rstrip("/") + "/v1/traces"
    else:
        return None
    protocol = read.choice(read.traces_name("PROTOCOL"), PROTOCOLS,
                           " (the proxy exports OTLP over HTTP, not gRPC)") or "http/protobuf"
    compression = read.choice(read.traces_name("COMPRESSION"), COMPRESSIONS) or "none"
    return OtlpExport(endpoint=endpoint, protocol=protocol, headers=_headers(read), timeout_s=_timeout(read),
                      compression=compression, certificate_file=read.traces("CERTIFICATE"))


def _headers(read: _Reader) -> tuple[tuple[str, str], ...]:
    """`key=value` pairs separated by commas, percent-encoded (W3C baggage format); keys lowercased."""
    headers: dict[str, str] = {}
    for item in (read.traces("HEADERS") or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{read.traces_name('HEADERS')}: {item.strip()!r} is not key=value")
        headers[unquote(key.strip()).lower()] = unquote(value.strip())
    return tuple(headers.items())


def _timeout(read: _Reader) -> float:
    raw = read.traces("TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{read.traces_name('TIMEOUT')}: {raw!r} is not a positive number of seconds")
    return value


def _batch(read: _Reader) -> BatchExport:
    """What the SDK's BatchSpanProcessor would read, with the proxy's smaller default batch."""
    queue = read.integer("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE_SIZE, minimum=1)
    batch = read.integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", min(EXPORT_BATCH_SIZE, queue), minimum=1)
    if batch > queue:  # the SDK refuses it at start-up
        raise ValueError(f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE: {batch} is larger than the queue "
                         f"(OTEL_BSP_MAX_QUEUE_SIZE {queue})")
    return BatchExport(max_queue_size=queue, max_export_batch_size=batch,
                       schedule_delay_ms=read.integer("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS, minimum=1),
                       export_timeout_ms=read.integer("OTEL_BSP_EXPORT_TIMEOUT", DEFAULT_EXPORT_TIMEOUT_MS, minimum=0))


class _Reader:
    __slots__ = ("env",)

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def get(self, name: str) -> str | None:
        return self.env.get(name) or None

    def traces_name(self, suffix: str) -> str:
        """The variable that supplied `traces(suffix)`, for messages."""
        specific = f"OTEL_EXPORTER_OTLP_TRACES_{suffix}"
        return specific if self.get(specific) else f"OTEL_EXPORTER_OTLP_{suffix}"

    def traces(self, suffix: str) -> str | None:
        return self.get(f"OTEL_EXPORTER_OTLP_TRACES_{suffix}") or self.get(f"OTEL_EXPORTER_OTLP_{suffix}")

    def url(self, name: str) -> str:
        raw = self.env[name]
        try:
            parts = urlsplit(raw)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"{name}: {raw!r} is not an http(s) URL")
        return raw

    def boolean(self, name: str) -> bool:
        raw = (self.get(name) or "false").strip().lower()
        if raw not in ("true", "false"):
            raise ValueError(f"{name}: {self.env[name]!r} is not true or false")
        return raw == "true"

    def choice(self, name: str, allowed: tuple[_T, ...], why: str = "") -> _T | None:
        """One of `allowed`, compared without case; `why` ends the message when it is none of them."""
        raw = self.get(name)
        if raw is None:
            return None
        for value in allowed:
            if raw.strip().lower() == value:
                return value
        raise ValueError(f"{name}: {raw!r} is not supported; use one of {', '.join(allowed)}{why}")

    def ratio(self, name: str) -> float:
        raw = self.get(name)
        if raw is None:
            return 1.0
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: {raw!r} is not a ratio between 0 and 1")
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name}: {raw!r} is not an integer") from None
        if value < minimum:
            raise ValueError(f"{name}: {value} is below {minimum}")
        return value

"""What tracing costs per request: span creation (OpenTelemetry SDK) and export encoding, protobuf vs JSON.

    .venv/bin/python bench/trace_bench.py [--n 20000]
    .venv/bin/python bench/trace_bench.py --proxy-path   # proxy.telemetry.tracing's own calls per request

Builds the spans one proxied request makes (a SERVER span with the proxy's ~24 attributes and the upstream
CLIENT span; optionally the four stage spans), with the SDK's batch processor in front of an exporter that
only encodes, and reports CPU microseconds per request for creation alone and creation plus encoding with
the SDK's OTLP protobuf encoder and with proxy.telemetry.otlp_json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as encode_protobuf
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from opentelemetry.trace import SpanKind

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from proxy.telemetry.otlp_json import encode_spans as encode_json
from proxy.telemetry.tracing import Tracing, finish_server_span, ids

SERVER_ATTRIBUTES = {
    "http.request.method": "POST", "url.path": "/v1/chat/completions", "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini", "gen_ai.provider.name": "openai",
    "gen_ai.usage.input_tokens": 231, "gen_ai.usage.output_tokens": 64, "llm_proxy.app": "notebook",
    "llm_proxy.team": "research", "llm_proxy.key_id": "bench-research", "llm_proxy.decision": "allow",
    "llm_proxy.reason_codes": [], "llm_proxy.policy_revision": "3f2a9c1d7e4b", "llm_proxy.pii_types": ["email"],
    "llm_proxy.cost_usd": 0.0000731, "llm_proxy.upstream": "demo", "http.response.status_code": 200,
    "llm_proxy.stage.pii.scan_ms": 0.081, "llm_proxy.stage.policy.evaluate_ms": 0.112,
    "llm_proxy.stage.budget.reserve_ms": 0.064, "llm_proxy.stage.budget.settle_ms": 0.051,
}


class Encoding(SpanExporter):
    def __init__(self, encode: Callable[[Sequence[ReadableSpan]], object] | None) -> None:
        self.encode = encode

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.encode is not None:
            self.encode(spans)
        return SpanExportResult.SUCCESS


def cpu_us_per_request(encode: Callable[[Sequence[ReadableSpan]], object] | None, n: int, stages: bool) -> float:
    provider = TracerProvider(resource=Resource.create({"service.name": "trace-bench"}))
    # A queue as large as the run, so no span is dropped and every one is encoded.
    provider.add_span_processor(BatchSpanProcessor(Encoding(encode), max_queue_size=n * 8, max_export_batch_size=512))
    tracer = provider.get_tracer("llm-policy-proxy")
    started = time.process_time()
    for _ in range(n):
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.SERVER, record_exception=False) as span:
            for stage in ("pii.scan", "policy.evaluate", "budget.reserve") if stages else ():
                with tracer.start_as_current_span(stage, record_exception=False):
                    pass
            with tracer.start_as_current_span("POST demo", kind=SpanKind.CLIENT, record_exception=False,
                                              attributes={"gen_ai.request.model": "demo-model",
                                                          "server.address": "http://127.0.0.1:8001/v1"}):
                pass
            if stages:
                with tracer.start_as_current_span("budget.settle", record_exception=False):
                    pass
            span.set_attributes(SERVER_ATTRIBUTES)
    provider.shutdown()  # exports what is queued, on this process's CPU clock
    return 1e6 * (time.process_time() - started) / n


def proxy_path_us(sampler: Sampler, n: int, rounds: int = 5) -> float:
    """What proxy.telemetry.tracing costs a request on the event loop, as app.py and pipeline.py call it
    (server span, four stage timers, the upstream client span with traceparent, the end attributes); spans
    go to a processor that drops them. Best of `rounds`."""
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(Encoding(None), max_queue_size=2048, max_export_batch_size=64))
    tracing = Tracing(provider)
    headers = {"content-type": "application/json", "authorization": "Bearer k"}
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            with tracing.server_span("POST /v1/chat/completions", headers,
                                     {"http.request.method": "POST", "url.path": "/v1/chat/completions"}) as span:
                ids(span)
                for stage in ("pii.scan", "policy.evaluate", "budget.reserve"):
                    with tracing.stage(stage):
                        pass
                with tracing.span("POST demo", SpanKind.CLIENT, {"gen_ai.request.model": "demo-model"}):
                    tracing.inject({})
                with tracing.stage("budget.settle"):
                    pass
                finish_server_span(span, 200, SERVER_ATTRIBUTES)
        best = min(best, 1e6 * (time.process_time() - started) / n)
    provider.shutdown()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="requests per variant")
    parser.add_argument("--proxy-path", action="store_true",
                        help="only proxy.telemetry.tracing's own calls per request, sampled and not")
    args = parser.parse_args()
    if args.proxy_path:
        for name, sampler in (("sampled (always_on)", ALWAYS_ON), ("not sampled (always_off)", ALWAYS_OFF)):
            print(f"proxy.telemetry.tracing per request, {name}: {proxy_path_us(sampler, args.n // 4):.1f} µs")
        return
    print("| spans per request | create only | + protobuf encoding | + JSON encoding (otlp_json) |")
    print("|---|---|---|---|")
    for stages in (False, True):
        create = cpu_us_per_request(None, args.n, stages)
        protobuf = cpu_us_per_request(lambda spans: encode_protobuf(spans).SerializePartialToString(), args.n, stages)
        json = cpu_us_per_request(encode_json, args.n, stages)
        print(f"| {6 if stages else 2} | {create:.0f} µs | {protobuf:.0f} µs | {json:.0f} µs |")


if __name__ == "__main__":
    main()

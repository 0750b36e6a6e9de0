"""Traces: a server span per request with GenAI attributes and a client span upstream (stage spans on request),
W3C context continued."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.config import KEYS

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
EMAIL = "jane.doe@example.com"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(make_proxy: ProxyFactory, exporter: InMemorySpanExporter) -> Iterator[ProxyHandle]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield make_proxy(tracer_provider=provider)


@pytest.fixture
def traced_stages(make_proxy: ProxyFactory, exporter: InMemorySpanExporter) -> Iterator[ProxyHandle]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield make_proxy(tracer_provider=provider, telemetry={"stage_spans": True})


STAGES = ("pii.scan", "policy.evaluate", "budget.reserve", "budget.settle")


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def test_server_span_continues_the_callers_trace_with_a_client_child(traced: ProxyHandle, upstream: UpstreamHandle,
                                                                      exporter: InMemorySpanExporter) -> None:
    traced.client(KEYS["research"]).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"xylophone {EMAIL}"}],
        extra_headers={"traceparent": TRACEPARENT})
    spans = by_name(exporter.get_finished_spans())
    server = spans["chat gpt-4o"]
    assert server.kind == SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == "00f067aa0ba902b7"
    attributes = dict(server.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.response.model"] == "gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["llm_proxy.team"] == "research" and attributes["llm_proxy.decision"] == "allow"
    assert attributes["llm_proxy.pii_types"] == ("email",)
    assert attributes["http.response.status_code"] == 200
    # Two spans: stage times are attributes of the server span, not spans of their own (each costs CPU).
    assert sorted(spans) == ["POST test", "chat gpt-4o"]
    assert spans["POST test"].parent is not None and spans["POST test"].parent.span_id == server.context.span_id
    assert spans["POST test"].kind == SpanKind.CLIENT
    for stage in STAGES:
        assert 0 < attributes[f"llm_proxy.stage.{stage}_ms"] < 5000, stage
    # The upstream continues the same trace, as a child of the client span.
    sent = upstream.model.last().headers["traceparent"]
    assert sent.split("-")[1] == TRACE_ID
    assert sent.split("-")[2] == format(spans["POST test"].context.span_id, "016x")
    # No prompt or completion text in any span.
    for span in exporter.get_finished_spans():
        assert EMAIL not in str(dict(span.attributes or {})) and "xylophone" not in str(dict(span.attributes or {}))


def test_stage_spans_when_asked_for(traced_stages: ProxyHandle, exporter: InMemorySpanExporter) -> None:
    traced_stages.client(KEYS["research"]).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
    spans = by_name(exporter.get_finished_spans())
    server = spans["chat gpt-4o"]
    assert sorted(spans) == sorted(["chat gpt-4o", "POST test", *STAGES])
    for child in (*STAGES, "POST test"):
        assert spans[child].parent is not None and spans[child].parent.span_id == server.context.span_id, child
    assert not any(key.startswith("llm_proxy.stage.") for key in dict(server.attributes or {}))


def test_denied_request_span_carries_the_reason(traced: ProxyHandle, exporter: InMemorySpanExporter) -> None:
    import openai
    with pytest.raises(openai.PermissionDeniedError):
        traced.client(KEYS["support"]).chat.completions.create(model="gpt-4o", messages=[{"role": "user",
                                                                                          "content": "x"}])
    server = by_name(exporter.get_finished_spans())["chat gpt-4o"]
    attributes = dict(server.attributes or {})
    assert attributes["llm_proxy.decision"] == "deny"
    assert attributes["llm_proxy.reason_codes"] == ("model_not_allowed",)
    assert attributes["http.response.status_code"] == 403

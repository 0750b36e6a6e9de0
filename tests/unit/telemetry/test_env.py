"""proxy.telemetry.env: the OTEL_* and Prometheus variables read once, with OpenTelemetry's precedence and
defaults; a value the proxy cannot use is an error that names its variable."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.telemetry.env import BatchExport, OtlpExport, TelemetryEnv, parse_telemetry_env

GENERIC = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"


def test_an_empty_environment_means_no_traces_and_the_defaults() -> None:
    settings = parse_telemetry_env({})
    assert settings == TelemetryEnv()
    assert settings.traces is None and settings.service_name == "llm-policy-proxy"
    assert settings.sampler == "parentbased_always_on" and settings.prometheus_multiproc_dir is None
    assert settings.batch == BatchExport(max_queue_size=2048, schedule_delay_ms=5000, max_export_batch_size=64,
                                         export_timeout_ms=30_000)


@pytest.mark.parametrize(("env", "endpoint"), [
    ({GENERIC: "http://collector:4318"}, "http://collector:4318/v1/traces"),
    ({GENERIC: "http://collector:4318/"}, "http://collector:4318/v1/traces"),
    ({GENERIC: "https://collector/otlp"}, "https://collector/otlp/v1/traces"),
    ({TRACES: "http://collector:4318/custom/path"}, "http://collector:4318/custom/path"),  # used as is
    ({TRACES: "http://a:1/x", GENERIC: "http://b:2"}, "http://a:1/x"),  # the traces-specific one wins
    ({TRACES: "", GENERIC: "http://b:2"}, "http://b:2/v1/traces"),  # empty is unset
])
def test_the_endpoint_follows_the_otlp_exporter_rules(env: dict[str, str], endpoint: str) -> None:
    otlp = parse_telemetry_env(env).traces
    assert otlp is not None and otlp.endpoint == endpoint


@pytest.mark.parametrize(("env", "expected"), [
    ({}, OtlpExport(endpoint="http://c:4318/v1/traces")),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, OtlpExport("http://c:4318/v1/traces", protocol="http/json")),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "HTTP/PROTOBUF"},
     OtlpExport("http://c:4318/v1/traces", protocol="http/protobuf")),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme, Authorization=Bearer%20t0k,"},
     OtlpExport("http://c:4318/v1/traces", headers=(("x-tenant", "acme"), ("authorization", "Bearer t0k")))),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=2=3"},
     OtlpExport("http://c:4318/v1/traces", headers=(("b", "2=3"),))),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "3"}, OtlpExport("http://c:4318/v1/traces", timeout_s=3.0)),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "30", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0.5"},
     OtlpExport("http://c:4318/v1/traces", timeout_s=0.5)),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": ""}, OtlpExport("http://c:4318/v1/traces", timeout_s=10.0)),
    ({"OTEL_EXPORTER_OTLP_COMPRESSION": " GZIP "}, OtlpExport("http://c:4318/v1/traces", compression="gzip")),
    ({"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "deflate"},
     OtlpExport("http://c:4318/v1/traces", compression="deflate")),
    ({"OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/ca.pem"},
     OtlpExport("http://c:4318/v1/traces", certificate_file="/etc/ca.pem")),
])
def test_export_settings_prefer_the_traces_specific_variable(env: dict[str, str], expected: OtlpExport) -> None:
    assert parse_telemetry_env({GENERIC: "http://c:4318", **env}).otlp == expected


@pytest.mark.parametrize(("env", "expected"), [
    ({"OTEL_SDK_DISABLED": "true"}, {"sdk_disabled": True}),
    ({"OTEL_SDK_DISABLED": "TRUE"}, {"sdk_disabled": True}),
    ({"OTEL_SDK_DISABLED": "false"}, {"sdk_disabled": False}),
    ({"OTEL_SERVICE_NAME": "gateway-eu"}, {"service_name": "gateway-eu"}),
    ({"OTEL_TRACES_SAMPLER": "always_off"}, {"sampler": "always_off", "sampler_ratio": 1.0}),
    ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.05"},
     {"sampler": "parentbased_traceidratio", "sampler_ratio": 0.05}),
    ({"OTEL_TRACES_SAMPLER": "TraceIdRatio"}, {"sampler": "traceidratio", "sampler_ratio": 1.0}),  # no arg: 1.0
    ({"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "lots"}, {"sampler": "always_on"}),  # unused
    ({"PROMETHEUS_MULTIPROC_DIR": "/run/metrics"}, {"prometheus_multiproc_dir": "/run/metrics"}),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "32"}, {"batch": BatchExport(max_queue_size=32, max_export_batch_size=32)}),
    ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "200"}, {"batch": BatchExport(max_export_batch_size=200)}),
    ({"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BSP_EXPORT_TIMEOUT": "0"},
     {"batch": BatchExport(schedule_delay_ms=100, export_timeout_ms=0)}),
])
def test_each_variable_sets_its_field(env: dict[str, str], expected: dict[str, Any]) -> None:
    settings = parse_telemetry_env(env)
    assert {name: getattr(settings, name) for name in expected} == expected


def test_the_sdk_switched_off_means_no_traces_even_with_an_endpoint() -> None:
    settings = parse_telemetry_env({GENERIC: "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert settings.otlp is not None and settings.traces is None


@pytest.mark.parametrize(("env", "message"), [
    ({GENERIC: "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' is not an http(s) URL"),
    ({TRACES: "http://c:port/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:port/v1/traces' is not"),
    ({GENERIC: "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported; use one of http/protobuf, http/json (the proxy "
     "exports OTLP over HTTP, not gRPC)"),
    ({GENERIC: "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' is not supported"),
    ({GENERIC: "http://c", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd'"),
    ({GENERIC: "http://c", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
     "OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' is not a positive number of seconds"),
    ({GENERIC: "http://c", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0"}, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '0'"),
    ({GENERIC: "http://c", "OTEL_EXPORTER_OTLP_TIMEOUT": "inf"}, "OTEL_EXPORTER_OTLP_TIMEOUT: 'inf'"),
    ({GENERIC: "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "a=1,bearer-token"},
     "OTEL_EXPORTER_OTLP_HEADERS: 'bearer-token' is not key=value"),
    ({"OTEL_SDK_DISABLED": "1"}, "OTEL_SDK_DISABLED: '1' is not true or false"),
    ({"OTEL_TRACES_SAMPLER": "xray"}, "OTEL_TRACES_SAMPLER: 'xray' is not supported; use one of always_on,"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10%"},
     "OTEL_TRACES_SAMPLER_ARG: '10%' is not a ratio between 0 and 1"),
    ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
     "OTEL_TRACES_SAMPLER_ARG: '1.5'"),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "abc"}, "OTEL_BSP_MAX_QUEUE_SIZE: 'abc' is not an integer"),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE: 0 is below 1"),
    ({"OTEL_BSP_SCHEDULE_DELAY": "0"}, "OTEL_BSP_SCHEDULE_DELAY: 0 is below 1"),
    ({"OTEL_BSP_EXPORT_TIMEOUT": "-1"}, "OTEL_BSP_EXPORT_TIMEOUT: -1 is below 0"),
    ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1.5"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1.5' is not an integer"),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "200"},
     "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 200 is larger than the queue (OTEL_BSP_MAX_QUEUE_SIZE 100)"),
])
def test_an_unusable_value_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_telemetry_env(env)
    assert message in str(caught.value)


def test_export_variables_are_not_checked_when_nothing_is_exported() -> None:
    # Without an endpoint the exporter is never built: its settings cannot be wrong, as with the SDK.
    assert parse_telemetry_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).otlp is None

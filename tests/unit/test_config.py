"""Config: ${ENV} interpolation, and every bad key named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.__main__ import main
from proxy.config import ConfigError, load_config, parse_config
from tests.support.config import REPO, config_document


def document(**overrides: object) -> dict[str, object]:
    return config_document("http://127.0.0.1:1/v1", Path("/tmp"), **overrides)


def parse(doc: dict[str, object], env: dict[str, str] | None = None) -> object:
    return parse_config(doc, base_dir=REPO, env=env or {})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"server__port": 70000}, "server.port: Input should be less than or equal to 65535"),
    ({"server__colour": "blue"}, "server.colour: unknown key"),
    ({"models__gpt-4o__upstream": "nowhere"}, "models.gpt-4o.upstream: unknown upstream 'nowhere'"),
    ({"upstreams__test__base_url": "ftp://x"}, "upstreams.test.base_url: must start with http:// or https://"),
    ({"upstreams__test__kind": "azure"}, "kind 'azure' needs api_version"),
    ({"auth__keys": [{"id": "a", "sha256": "sk-plaintext", "app": "x", "team": "y"}]},
     "auth.keys.0.sha256: must be the hex SHA-256 of the key"),
    ({"auth__mode": "sidecar"}, "mode 'sidecar' needs auth.sidecar"),
    ({"models__gpt-4o-mini__aliases": ["demo-model"]}, "name 'demo-model' is already used by model 'gpt-4o'"),
    ({"upstreams__test__kind": "anthropic", "models__gpt-4o__endpoints": ["responses"]},
     "models.gpt-4o.endpoints: an anthropic upstream serves only messages and chat.completions, not responses"),
    ({"models__gpt-4o__encoding": "claude-9"}, "models.gpt-4o.encoding"),
])
def test_bad_config_names_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(document(**overrides))
    assert message in str(caught.value)


def test_env_interpolation_with_defaults_and_missing_variables() -> None:
    doc = document(upstreams__test__base_url="${UP:-http://fallback:1}/v1", upstreams__test__api_key="${KEY}")
    config = parse(doc, env={"KEY": "sk-from-env"})
    assert config.upstreams["test"].base_url == "http://fallback:1/v1"  # type: ignore[attr-defined]
    assert config.upstreams["test"].resolved_key() == "sk-from-env"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"upstreams.test.api_key: environment variable KEY is not set"):
        parse(doc, env={})


def test_the_telemetry_variables_are_read_with_the_config() -> None:
    config = parse(document(), env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                                    "PROMETHEUS_MULTIPROC_DIR": "/run/metrics"})
    settings = config.telemetry_env  # type: ignore[attr-defined]
    assert settings.traces.endpoint == "http://collector:4318/v1/traces"
    assert settings.prometheus_multiproc_dir == "/run/metrics"
    assert parse(document(), env={}).telemetry_env.traces is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("env", "doc", "message"), [
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "abc"}, {}, "OTEL_BSP_MAX_QUEUE_SIZE: 'abc' is not an integer"),
    ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10%"}, {},
     "OTEL_TRACES_SAMPLER_ARG: '10%' is not a ratio between 0 and 1"),
    ({}, {"telemetry_env": {}}, "telemetry_env: unknown key"),  # only the environment sets it
])
def test_a_bad_telemetry_variable_is_a_config_error_naming_it(env: dict[str, str], doc: dict[str, object],
                                                               message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({**document(), **doc}, env=env)
    assert str(caught.value) == message


def test_api_key_file_is_read_at_resolution(tmp_path: Path) -> None:
    secret = tmp_path / "openai-key"
    secret.write_text("sk-from-file\n")
    config = parse(document(upstreams__test__api_key_file=str(secret)))
    assert config.upstreams["test"].resolved_key() == "sk-from-file"  # type: ignore[attr-defined]


def test_config_is_frozen() -> None:
    config = parse(document())
    with pytest.raises(Exception, match="frozen"):
        config.server = None  # type: ignore[attr-defined]


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(REPO / "proxy" / "examples" / "demo.yaml")]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("upstreams: {a: {base_url: 'http://x'}}\nmodels: {m: {upstream: b, prices: {input: 1}}}\n"
                   "auth: {mode: sidecar, sidecar: {app: a, team: t}}\n")
    assert main(["check-config", str(bad)]) == 2
    assert "models.m.upstream: unknown upstream 'b'" in capsys.readouterr().err
    assert load_config(REPO / "proxy" / "examples" / "demo.yaml").auth.mode == "gateway"


def test_check_config_reports_a_bad_telemetry_variable(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert main(["check-config", str(REPO / "proxy" / "examples" / "demo.yaml")]) == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported" in capsys.readouterr().err

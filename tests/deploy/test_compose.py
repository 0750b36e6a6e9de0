"""deploy/docker-compose.yaml: structure, pinned images, health-gated start order, mounts that exist,
and the compose proxy's config accepted by the real loader."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yaml"
PROXY_IMAGE = "llm-policy-proxy:local"
# Images that ship no shell or HTTP client, so compose cannot run a healthcheck inside them.
NO_HEALTHCHECK = {"otel-collector", "jaeger"}
OTHER_OWNERS = ("deploy/grafana", "deploy/prometheus")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_stack_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"proxy", "demo-upstream", "redis", "opa", "prometheus", "grafana",
                             "otel-collector", "jaeger"}


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        if image == PROXY_IMAGE:
            assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}, name
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and re.search(r"\d+\.\d+", tag), f"{name}: image {image} is not pinned to a version"
        assert "latest" not in tag, name


def test_official_images_are_used(services: dict[str, dict[str, Any]]) -> None:
    assert services["opa"]["image"].startswith("openpolicyagent/opa:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert services["otel-collector"]["image"].startswith("otel/opentelemetry-collector-contrib:")
    assert services["jaeger"]["image"].startswith(("jaegertracing/jaeger:", "jaegertracing/all-in-one:"))
    assert services["redis"]["image"].startswith("redis:")


def test_services_have_exec_form_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service
            continue
        test = service["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] == "CMD", f"{name}: healthcheck must be exec form"


def test_depends_on_names_real_services_and_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = "service_started" if dependency in NO_HEALTHCHECK else "service_healthy"
            if name == "prometheus":  # it scrapes whatever is up, so it need not wait for a ready proxy
                expected = "service_started"
            assert rule["condition"] == expected, f"{name} -> {dependency}"
    assert set(services["proxy"]["depends_on"]) == {"demo-upstream", "redis", "opa", "otel-collector"}


def test_proxy_runs_hardened(services: dict[str, dict[str, Any]]) -> None:
    proxy = services["proxy"]
    assert proxy["read_only"] is True
    assert proxy["cap_drop"] == ["ALL"]
    assert proxy["user"] == "10001:10001"
    assert any(t.startswith("/tmp") for t in proxy["tmpfs"])
    assert "proxy-state:/var/lib/llm-policy-proxy" in proxy["volumes"]
    env = proxy["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_published_ports_match_the_documented_urls(services: dict[str, dict[str, Any]]) -> None:
    published = {name: s.get("ports", []) for name, s in services.items()}
    assert "8080:8080" in published["proxy"]
    assert "3000:3000" in published["grafana"]
    assert "9090:9090" in published["prometheus"]
    assert "16686:16686" in published["jaeger"]
    assert "8181:8181" in published["opa"]
    assert published["redis"] == []


def test_opa_loads_policies_with_data_as_its_own_root(services: dict[str, dict[str, Any]]) -> None:
    command = services["opa"]["command"]
    assert command[:2] == ["run", "--server"]
    assert "--addr=0.0.0.0:8181" in command
    assert command[-2:] == ["/policies", "/policies/data"]
    for pattern in ("--ignore=*_test.rego", "--ignore=data", "--ignore=schema"):
        assert pattern in command
    assert "../policies:/policies:ro" in services["opa"]["volumes"]


def bind_mounts(services: dict[str, dict[str, Any]]) -> list[tuple[str, str, Path]]:
    mounts = []
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                mounts.append((name, source, (DEPLOY / source).resolve()))
    return mounts


def test_bind_mounts_exist_in_the_repository(services: dict[str, dict[str, Any]]) -> None:
    missing = [f"{name}: {source}" for name, source, path in bind_mounts(services) if not path.exists()]
    pending = [m for m in missing if any(owner in m for owner in ("./grafana", "./prometheus"))]
    if pending and len(pending) == len(missing):
        pytest.xfail(f"written by the observability work ({', '.join(OTHER_OWNERS)}), not there yet: {pending}")
    assert not missing


def test_observability_mounts_match_what_their_configs_expect(services: dict[str, dict[str, Any]]) -> None:
    provider = DEPLOY / "grafana/provisioning/dashboards"
    prometheus = DEPLOY / "prometheus/prometheus.yml"
    if not provider.is_dir() or not prometheus.is_file():
        pytest.xfail(f"{', '.join(OTHER_OWNERS)} not written yet")
    paths = [p["options"]["path"] for f in sorted(provider.glob("*.yaml"))
             for p in yaml.safe_load(f.read_text())["providers"]]
    assert paths and all(f"./grafana/dashboards:{path}:ro" in services["grafana"]["volumes"] for path in paths)
    scrape = yaml.safe_load(prometheus.read_text())
    targets = [t for job in scrape["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert "proxy:8080" in targets
    assert all(rule.startswith("rules/") for rule in scrape.get("rule_files", []))


def test_otel_collector_exports_traces_to_jaeger(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load((DEPLOY / "otel-collector/config.yaml").read_text())
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    assert "otlp/jaeger" in traces["exporters"]
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_compose_proxy_config_passes_the_real_loader(services: dict[str, dict[str, Any]]) -> None:
    from proxy.config import load_config

    config = load_config(DEPLOY / "proxy/config.yaml", env=services["proxy"]["environment"])
    assert config.server.host == "0.0.0.0"
    assert config.policy.engine == "opa" and config.policy.opa_url == "http://opa:8181"
    assert config.budget.store == "redis" and config.budget.redis_url == "redis://redis:6379/0"
    assert config.upstreams["demo"].base_url == "http://demo-upstream:8081/v1"
    assert str(config.tokens.vocab_dir) == "/opt/llm-policy-proxy/vocab"


def test_compose_proxy_accepts_the_demo_keys() -> None:
    from proxy.config import load_config

    env = {"DEMO_UPSTREAM_URL": "http://demo-upstream:8081/v1"}
    demo = load_config(ROOT / "proxy/examples/demo.yaml", env=env)
    stack = load_config(DEPLOY / "proxy/config.yaml", env=env)
    assert stack.auth.keys == demo.auth.keys
    assert stack.models == demo.models

"""The Helm chart renders valid, hardened Kubernetes objects in gateway, sidecar and OPA-sidecar mode."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    ci_values,
    containers,
    find,
    kinds,
    pod_specs,
    proxy_container,
    render,
    render_notes,
)

KUBERNETES_VERSION = "1.31.0"
# Prometheus-operator CRDs: kubernetes-validate has no schema for them; checked by hand below.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
FULLNAME = "llmpp-llm-policy-proxy"


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def config_document(objects: list[dict[str, Any]]) -> dict[str, Any]:
    loaded = yaml.safe_load(find(objects, "ConfigMap", f"{FULLNAME}-config")["data"]["config.yaml"])
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize("mode", sorted(CI_VALUES))
def test_chart_lints_without_warnings(mode: str) -> None:
    import helm_python as helm

    report = helm.lint(str(CHART), ci_values(mode), strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], problems


@pytest.mark.parametrize("mode", sorted(CI_VALUES))
def test_every_object_validates_against_the_kubernetes_schema(rendered: dict[str, Any], mode: str) -> None:
    import kubernetes_validate  # type: ignore[import-untyped]

    for obj in rendered[mode]:
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.absolute_path)}")


def test_prometheus_operator_objects_are_well_formed(rendered: dict[str, Any]) -> None:
    objects = rendered["gateway"]
    monitor = find(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s",
                                             "scrapeTimeout": "10s"}]
    service = find(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    rule = find(objects, "PrometheusRule")
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for item in group["rules"]:
            assert ("alert" in item) != ("record" in item) and item["expr"]


@pytest.mark.parametrize("mode", sorted(CI_VALUES))
def test_every_container_runs_hardened(rendered: dict[str, Any], mode: str) -> None:
    specs = list(pod_specs(rendered[mode]))
    assert specs
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], where
            assert ":latest" not in container["image"], where


def test_proxy_gets_writable_state_and_tmp_only_from_volumes(rendered: dict[str, Any]) -> None:
    for mode in CI_VALUES:
        mounts = {m["mountPath"]: m for m in proxy_container(rendered[mode])["volumeMounts"]}
        writable = {path for path, m in mounts.items() if not m.get("readOnly")}
        assert {"/var/lib/llm-policy-proxy", "/tmp"} <= writable, mode
        assert mounts["/etc/llm-policy-proxy/config"]["readOnly"] is True
    gateway = proxy_container(rendered["gateway"])  # workers: 2 needs the multiprocess metrics dir
    assert env_of(gateway)["PROMETHEUS_MULTIPROC_DIR"]["value"] == "/var/run/llm-policy-proxy/metrics"
    assert gateway["args"] == ["serve", "--config", "/etc/llm-policy-proxy/config/config.yaml", "--workers", "2"]


def test_gateway_probes_use_healthz_and_readyz(rendered: dict[str, Any]) -> None:
    proxy = proxy_container(rendered["gateway"])
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert proxy["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_sidecar_listens_on_loopback_and_probes_from_inside(rendered: dict[str, Any]) -> None:
    objects = rendered["sidecar"]
    assert config_document(objects)["server"]["host"] == "127.0.0.1"
    proxy = proxy_container(objects)
    live, ready = proxy["livenessProbe"]["exec"]["command"], proxy["readinessProbe"]["exec"]["command"]
    assert live[:2] == ["python", "-c"] and "http://127.0.0.1:8080/healthz" in live[2]
    assert "http://127.0.0.1:8080/readyz" in ready[2]
    assert "Service" not in kinds(objects) and "NetworkPolicy" not in kinds(objects)


def test_sidecar_identity_comes_from_pod_labels(rendered: dict[str, Any]) -> None:
    objects = rendered["sidecar"]
    env = env_of(proxy_container(objects))
    assert env["APP_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['app.kubernetes.io/name']"
    assert env["TEAM"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['team']"
    auth = config_document(objects)["auth"]
    assert auth == {"mode": "sidecar", "sidecar": {"app": "${APP_NAME}", "team": "${TEAM}",
                                                    "user_header": "x-end-user"}, "user_from_body": True}
    app = find(objects, "Deployment", "sidecar-demo")
    labels = app["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "sidecar-demo" and labels["team"] == "demo"
    app_env = env_of(app["spec"]["template"]["spec"]["containers"][0])
    assert app_env["OPENAI_BASE_URL"]["value"] == "http://127.0.0.1:8080/v1"


def test_native_sidecar_goes_into_init_containers() -> None:
    values = ci_values("sidecar")
    values["sidecar"]["native"] = True
    spec = find(render(values), "Deployment", "sidecar-demo")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app"]
    assert [(c["name"], c["restartPolicy"]) for c in spec["initContainers"]] == [("llm-policy-proxy", "Always")]


def test_service_exposes_the_proxy_port_and_reserves_egress() -> None:
    service = find(render(ci_values("gateway")), "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    values = ci_values("gateway")
    values["egress"] = {"enabled": True, "port": 3128}
    objects = render(values)
    ports = {p["name"]: p["port"] for p in find(objects, "Service")["spec"]["ports"]}
    assert ports == {"http": 8080, "egress": 3128}
    assert {"name": "egress", "containerPort": 3128, "protocol": "TCP"} in proxy_container(objects)["ports"]


def test_provider_keys_and_redis_url_come_from_secrets(rendered: dict[str, Any]) -> None:
    objects = rendered["gateway"]
    env = env_of(proxy_container(objects))
    assert env["LLMPP_UPSTREAM_OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "llm-provider-keys",
                                                                                   "key": "openai"}
    assert env["LLMPP_UPSTREAM_AZURE_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "azure"
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "llm-policy-proxy-redis", "key": "redis-url"}
    config = config_document(objects)
    assert config["upstreams"]["openai"]["api_key"] == "${LLMPP_UPSTREAM_OPENAI_API_KEY}"
    assert config["budget"]["redis_url"] == "${REDIS_URL}"
    assert "sk-" not in yaml.safe_dump(objects)


@pytest.mark.parametrize("mode", sorted(CI_VALUES))
def test_rendered_config_passes_the_real_loader(rendered: dict[str, Any], mode: str) -> None:
    from proxy.config import parse_config

    env = {"APP_NAME": "billing-api", "TEAM": "payments", "REDIS_URL": "redis://redis:6379/0",
           "LLMPP_UPSTREAM_OPENAI_API_KEY": "sk-test", "LLMPP_UPSTREAM_AZURE_API_KEY": "az-test",
           "LLMPP_UPSTREAM_ANTHROPIC_API_KEY": "ant-test"}
    config = parse_config(config_document(rendered[mode]), base_dir=Path("/etc/llm-policy-proxy/config"), env=env)
    assert config.server.port == 8080
    assert str(config.tokens.vocab_dir) == "/opt/llm-policy-proxy/vocab"
    assert str(config.policy.dir) == "/etc/llm-policy-proxy/policies"
    if mode == "sidecar":
        assert config.auth.sidecar is not None and config.auth.sidecar.app == "billing-api"
    if mode == "opa-sidecar":
        assert config.policy.engine == "opa" and config.policy.opa_url == "http://127.0.0.1:8181"


def test_gateway_takes_issued_keys_from_a_secret_and_jwt_issuers_verbatim(rendered: dict[str, Any]) -> None:
    from proxy.config import parse_config

    objects = rendered["gateway"]
    mounts = {m["name"]: m for m in proxy_container(objects)["volumeMounts"]}
    assert mounts["llmpp-keys"] == {"name": "llmpp-keys", "mountPath": "/etc/llm-policy-proxy/keys", "readOnly": True}
    assert "subPath" not in mounts["llmpp-keys"]  # a subPath mount never sees the kubelet's updates
    ((_, spec),) = pod_specs(objects)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["llmpp-keys"]["secret"] == {"secretName": "llm-policy-proxy-keys",
                                               "items": [{"key": "keys.yaml", "path": "keys.yaml"}]}
    document = config_document(objects)
    assert document["auth"]["keys_file"] == "/etc/llm-policy-proxy/keys/keys.yaml"
    env = {"REDIS_URL": "redis://redis:6379/0", "LLMPP_UPSTREAM_OPENAI_API_KEY": "sk-test",
           "LLMPP_UPSTREAM_AZURE_API_KEY": "az-test", "LLMPP_UPSTREAM_ANTHROPIC_API_KEY": "ant-test"}
    config = parse_config(document, base_dir=Path("/etc/llm-policy-proxy/config"), env=env)
    (issuer,) = config.auth.jwt.issuers
    assert issuer.issuer == "https://login.example.com/" and issuer.algorithms == ("RS256", "ES256")
    assert config.models["claude-sonnet-4-5"].upstream == "anthropic"


def test_opa_sidecar_keeps_its_api_on_loopback(rendered: dict[str, Any]) -> None:
    spec = find(rendered["opa-sidecar"], "Deployment")["spec"]["template"]["spec"]
    opa = next(c for c in spec["containers"] if c["name"] == "opa")
    assert "--addr=127.0.0.1:8181" in opa["args"] and "--diagnostic-addr=0.0.0.0:8282" in opa["args"]
    assert opa["args"][-2:] == ["/policies", "/policies/data"]
    assert {"--ignore=.*", "--ignore=*_test.rego", "--ignore=data"} <= set(opa["args"])
    assert opa["readinessProbe"]["httpGet"] == {"path": "/health", "port": "opa-diag"}
    assert [p["containerPort"] for p in opa["ports"]] == [8282]


def test_opa_bundle_mode_fetches_policies_instead_of_mounting_them() -> None:
    values = ci_values("opa-sidecar")
    values["policies"] = {"source": "bundle"}
    values["opa"]["bundle"] = {"url": "https://bundles.example.com"}
    objects = render(values)
    assert not [o for o in objects if o["metadata"]["name"].endswith(("-policies", "-policy-data"))]
    opa_config = yaml.safe_load(find(objects, "ConfigMap", f"{FULLNAME}-opa")["data"]["config.yaml"])
    assert opa_config["services"]["policy-bundles"]["url"] == "https://bundles.example.com"
    assert opa_config["bundles"]["llm-policy-proxy"]["service"] == "policy-bundles"
    spec = find(objects, "Deployment")["spec"]["template"]["spec"]
    opa = next(c for c in spec["containers"] if c["name"] == "opa")
    assert "/policies" not in opa["args"] and opa["readinessProbe"]["httpGet"]["path"] == "/health?bundles"
    assert "llmpp-policies" not in {v["name"] for v in spec["volumes"]}


def test_policies_volume_rebuilds_the_folder_layout(rendered: dict[str, Any]) -> None:
    objects = rendered["gateway"]
    rego = find(objects, "ConfigMap", f"{FULLNAME}-policies")["data"]
    data = find(objects, "ConfigMap", f"{FULLNAME}-policy-data")["data"]
    assert "main.rego" in rego and not [name for name in rego if name.endswith("_test.rego")]
    shipped = CHART / "policies"
    assert set(rego) == {p.name for p in shipped.glob("*.rego") if not p.name.endswith("_test.rego")}
    assert set(data) == {p.name for p in (shipped / "data").iterdir()}
    volume = next(v for v in find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "llmpp-policies")
    rego_source, data_source = volume["projected"]["sources"]
    assert "items" not in rego_source["configMap"]
    assert {(i["key"], i["path"]) for i in data_source["configMap"]["items"]} == {(k, f"data/{k}") for k in data}


def test_network_policy_makes_the_proxy_the_only_way_out(rendered: dict[str, Any]) -> None:
    objects = rendered["gateway"]
    proxy = find(objects, "NetworkPolicy", FULLNAME)
    assert proxy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = proxy["spec"]["ingress"]
    assert ingress["from"][0] == {"namespaceSelector": {},
                                  "podSelector": {"matchLabels": {"llm-policy-proxy/client": "true"}}}
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8080}]
    dns, internet, redis = proxy["spec"]["egress"]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    block = internet["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0" and {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(block["except"])
    assert internet["ports"] == [{"protocol": "TCP", "port": 443}]
    assert redis["ports"] == [{"protocol": "TCP", "port": 6379}]

    clients = find(objects, "NetworkPolicy", f"{FULLNAME}-clients")
    assert clients["spec"]["podSelector"] == {"matchLabels": {"llm-policy-proxy/client": "true"}}
    assert clients["spec"]["policyTypes"] == ["Egress"]
    to_dns, to_proxy = clients["spec"]["egress"]
    assert {(p["protocol"], p["port"]) for p in to_dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert to_proxy["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                               "podSelector": {"matchLabels": {"app.kubernetes.io/name": "llm-policy-proxy",
                                                               "app.kubernetes.io/instance": "llmpp"}}}]
    assert to_proxy["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert not [rule for rule in clients["spec"]["egress"] if any("ipBlock" in peer for peer in rule["to"])]


def test_gateway_scales_and_keeps_capacity_during_disruptions(rendered: dict[str, Any]) -> None:
    objects = rendered["gateway"]
    deployment = find(objects, "Deployment")
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    hpa = find(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == 2
    assert find(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 50
    single = render(ci_values("opa-sidecar"))
    assert "PodDisruptionBudget" not in kinds(single) and "HorizontalPodAutoscaler" not in kinds(single)


def test_monitoring_objects_need_the_crds_or_force() -> None:
    values = ci_values("gateway")
    values["metrics"] = {"serviceMonitor": {"force": False}, "prometheusRule": {"force": False}}
    offline = kinds(render(values))  # offline rendering has no monitoring.coreos.com/v1 API
    assert "ServiceMonitor" not in offline and "PrometheusRule" not in offline


def test_grafana_dashboards_ship_with_the_sidecar_label(rendered: dict[str, Any]) -> None:
    dashboards = find(rendered["gateway"], "ConfigMap", f"{FULLNAME}-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {p.name for p in (CHART / "files/grafana/dashboards").glob("*.json")} == set(dashboards["data"])


def test_pods_roll_when_config_or_policies_change() -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        deployment = find(render(values), "Deployment")
        return dict(deployment["spec"]["template"]["metadata"]["annotations"])

    values = ci_values("opa-sidecar")
    before = annotations(values)
    assert {"checksum/config", "checksum/policies", "checksum/opa"} <= set(before)
    changed = copy.deepcopy(values)
    changed["config"]["policy"] = {"failOpen": True}
    assert annotations(changed)["checksum/config"] != before["checksum/config"]
    values["policies"]["rollOnChange"] = False
    assert "checksum/policies" not in annotations(values)


@pytest.mark.parametrize(("override", "message"), [
    ({"replicaCount": "two"}, "/replicaCount"),
    ({"unknownKey": 1}, "unknownKey"),
    ({"config": {"budget": {"store": "mysql"}}}, "/config/budget/store"),
    ({"config": {"server": {"maxBodyBytes": 1, "typo": 2}}}, "typo"),
    ({"securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": False, "allowPrivilegeEscalation": False,
                          "capabilities": {"drop": ["ALL"]}}}, "readOnlyRootFilesystem"),
    ({"opa": {"image": {"repository": "openpolicyagent/opa", "tag": "latest"}}}, "/opa/image/tag"),
])
def test_schema_rejects_bad_values(override: dict[str, Any], message: str) -> None:
    import helm_python as helm

    values = {**ci_values("gateway"), **override}
    with pytest.raises(helm.HelmValuesError, match=message):
        render(values)
    report = helm.lint(str(CHART), values)
    assert any(message in error for error in report["errors"]) or any(
        message in m["error"] for m in report["messages"] if m["severity"] == 3)


@pytest.mark.parametrize(("override", "message"), [
    ({"policies": {"source": "bundle"}}, "needs opa.sidecar.enabled"),
    ({"config": {"budget": {"store": "sqlite"}}}, "keeps budgets per pod"),
    ({"config": {"auth": {"keys": [], "keysFile": {"existingSecret": "", "key": "keys.yaml"}, "jwt": {}}}},
     "gateway mode needs at least one issued key"),
    ({"mode": "sidecar", "config": {"auth": {"keys": [], "jwt": {"issuers": []}}}}, "are for mode=gateway"),
    ({"mode": "gateway", "sidecar": {"example": {"enabled": True}}}, "needs mode=sidecar"),
])
def test_inconsistent_values_fail_at_install_time(override: dict[str, Any], message: str) -> None:
    import helm_python as helm

    values = ci_values("gateway")
    for key, value in override.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


def test_notes_tell_how_to_reach_the_gateway() -> None:
    notes = render_notes(ci_values("gateway"))
    assert "OPENAI_BASE_URL=http://llmpp-llm-policy-proxy.ai.svc:8080/v1" in notes
    assert "llm-provider-keys" in notes

"""Prometheus config and alert rules: promtool accepts them, their unit tests pass, each has a runbook."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.observability.promql import ROOT, problems, run_promtool, sample_index

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "llm-policy-proxy.yaml"
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yaml"))
SEVERITIES = {"info", "warning", "critical"}
REQUIRED = {
    "LLMProxyBudgetNearlySpent", "LLMProxyBudgetExhausted", "LLMProxyDenialSpike", "LLMProxyUpstreamErrorRate",
    "LLMProxyPolicyReloadFailed", "LLMProxyPolicyEngineErrors", "LLMProxyFailOpen", "LLMProxyOverheadHigh",
    "LLMProxyShadowAIAttempts",
}


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_prometheus_config_is_valid_and_scrapes_the_proxy() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # check config also loads the rule files, so a glob matching nothing would fail here rather than in prod.
    assert "SUCCESS: 1 rule files found" in result.stdout, result.stdout
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.yaml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert [c["targets"] for c in jobs["llm-policy-proxy"]["static_configs"]] == [["proxy:8080"]]


def test_alert_rules_are_valid() -> None:
    result = run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass() -> None:
    assert UNIT_TESTS, "no promtool unit tests in deploy/prometheus/tests"
    result = run_promtool("test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_both_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), "alerts never seen firing in a unit test"
    assert names - quiet == set(), "alerts never seen staying quiet in a unit test"


def test_the_required_alerts_exist_with_unique_names() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names))
    assert REQUIRED - set(names) == set()


def test_every_alert_has_a_severity_annotations_and_a_runbook_section() -> None:
    docs = ROOT / "docs" / "observability.md"
    sections = anchors(docs)
    for rule in alerts():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        notes = rule["annotations"]
        assert notes.get("summary") and notes.get("description"), rule["alert"]
        path, _, anchor = notes["runbook"].partition("#")
        assert ROOT / path == docs and anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in sections, f"{rule['alert']}: no heading `{rule['alert']}` in {path}"


def test_every_metric_and_label_in_an_alert_is_exported_by_the_proxy() -> None:
    index = sample_index()
    found = {rule["alert"]: problems(rule["expr"], index) for rule in alerts()}
    assert {alert: issues for alert, issues in found.items() if issues} == {}

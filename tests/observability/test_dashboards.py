"""The Grafana dashboards and their provisioning: valid JSON, one datasource, PromQL over real metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.panels import DASHBOARDS, dashboards, panel_queries, panels, substitute, variables
from tests.observability.promql import ROOT, catalogue, check_expressions, problems, read, sample_index

BOARDS = dashboards()
UNITS = {"s", "reqps", "percentunit", "currencyUSD", "short"}
EXPECTED = {"overview.json", "spend.json", "policy.json", "upstreams.json"}


def all_panels() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}: {panel.get('title')}", panel) for name, board in BOARDS.items() for panel in panels(board)]


def test_the_four_dashboards_exist_with_unique_uid_and_title() -> None:
    assert set(BOARDS) == EXPECTED
    uids = [board["uid"] for board in BOARDS.values()]
    titles = [board["title"] for board in BOARDS.values()]
    assert len(set(uids)) == len(uids) and all(uids)
    assert len(set(titles)) == len(titles) and all(titles)
    assert all(board["schemaVersion"] >= 38 for board in BOARDS.values())


def test_every_panel_target_and_variable_uses_the_prometheus_datasource_uid() -> None:
    wrong = []
    for where, panel in all_panels():
        refs = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]
        wrong += [where for ref in refs if not isinstance(ref, dict) or ref.get("uid") != "prometheus"]
    for name, board in BOARDS.items():
        wrong += [f"{name}: ${v['name']}" for v in board["templating"]["list"]
                  if v["type"] == "query" and v["datasource"].get("uid") != "prometheus"]
    assert wrong == []


def test_every_panel_has_a_query_and_a_known_unit() -> None:
    assert all(panel.get("targets") and all(t.get("expr") for t in panel["targets"]) for _, panel in all_panels())
    units = {where: panel["fieldConfig"]["defaults"].get("unit") for where, panel in all_panels()}
    assert {where: unit for where, unit in units.items() if unit not in UNITS} == {}


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    for name, board in BOARDS.items():
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), name
        cells: dict[tuple[int, int], str] = {}
        for panel in panels(board):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{name}: {panel['title']} is wider than the grid"
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{name}: {panel['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["title"]


def test_template_variables_are_defined_and_only_used_in_regex_matchers() -> None:
    for name, board in BOARDS.items():
        defined = {v["name"] for v in board["templating"]["list"]}
        exprs = [t["expr"] for panel in panels(board) for t in panel["targets"]]
        exprs += [v["definition"] for v in board["templating"]["list"]]
        used = set().union(*(variables(expr) for expr in exprs)) - {"__rate_interval", "__interval", "__range"}
        assert used <= defined, f"{name} uses undefined variables {used - defined}"
        # A multi-value or All selection renders as a regex, which an exact matcher would take literally.
        exact = [e for e in exprs if re.search(r'(?<![=!])=\s*"[^"]*\$', e) or re.search(r'!=\s*"[^"]*\$', e)]
        assert exact == [], name


def test_every_expression_parses_with_promtool(tmp_path: Path) -> None:
    ok, report = check_expressions(panel_queries(), tmp_path)
    assert ok, report


def test_every_metric_and_label_in_a_panel_is_exported_by_the_proxy() -> None:
    index = sample_index()
    found = {title: problems(expr, index) for title, expr in panel_queries()}
    assert {title: issues for title, issues in found.items() if issues} == {}


def test_every_latency_quantile_keeps_the_bucket_boundaries() -> None:
    for title, expr in panel_queries():
        if "histogram_quantile" in expr:
            assert "le" in read(expr).grouping, title
            assert all(name.endswith("_bucket") for name in read(expr).metrics), title


def test_every_metric_metrics_py_defines_is_on_some_dashboard() -> None:
    used = set().union(*(read(expr).metrics for _, expr in panel_queries()))
    families = {family.name for family in catalogue().values() if not used.intersection(family.samples)}
    assert families == set()


def test_panel_queries_cover_every_target_with_no_variable_left() -> None:
    queries = panel_queries()
    targets = sum(len(panel["targets"]) for _, panel in all_panels())
    assert len(queries) == targets
    assert [(title, expr) for title, expr in queries if "$" in expr or "[[" in expr] == []
    assert substitute('rate(x{team=~"$team", app=~"${app}"}[$__rate_interval])') == (
        'rate(x{team=~".*", app=~".*"}[1m])'
    )


def test_the_expression_reader_finds_metrics_labels_and_misuse() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, upstream) (rate(gen_ai_client_operation_duration_seconds_bucket'
            '{upstream=~"a|b", team="x"}[5m]))) / on (upstream) sum(llm_proxy_budget_spent_usd offset 5m) '
            'or sum by (colour) (increase(llm_proxy_budget_limit_usd[1h])) > 0.5 and up{job="rate(no_metric)"}')
    reading = read(expr)
    assert reading.metrics == {"gen_ai_client_operation_duration_seconds_bucket", "llm_proxy_budget_spent_usd",
                               "llm_proxy_budget_limit_usd", "up"}
    assert reading.grouping == {"le", "upstream", "colour"}
    assert problems(expr, sample_index()) == [
        "gen_ai_client_operation_duration_seconds_bucket has no label team",
        "grouping label colour is on no metric in the expression",
        "llm_proxy_budget_limit_usd is a gauge: rate() and increase() of it are meaningless",
    ]
    assert problems("llm_proxy_requests_count", sample_index()) == [
        "metric llm_proxy_requests_count is not defined in proxy/telemetry/metrics.py"
    ]


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards_folder() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert [(d["uid"], d["type"], d["url"]) for d in datasources] == [
        ("prometheus", "prometheus", "http://prometheus:9090")
    ]
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yaml").read_text())["providers"]
    assert [(p["type"], p["options"]["path"]) for p in providers] == [("file", "/var/lib/grafana/dashboards")]
    assert DASHBOARDS == ROOT / "deploy" / "grafana" / "dashboards"


@pytest.mark.parametrize("family", sorted(catalogue().values(), key=lambda f: f.name), ids=lambda f: f.name)
def test_the_docs_reference_table_matches_metrics_py(family: Any) -> None:
    rows = {}
    for line in (ROOT / "docs" / "observability.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1], set(re.findall(r"`(\w+)`", cells[2])))
    shown = family.samples[0] if family.type == "counter" else family.name
    assert rows.get(shown) == (family.type, set(family.labels))

"""The Grafana dashboards' panels and their PromQL, with template variables made concrete.

`panel_queries()` is what an end-to-end test sends to a real Prometheus: every variable matches
everything (`.*`) and Grafana's interval macros become fixed durations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
MACROS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
# $name, ${name}, ${name:format} and [[name]]: the forms Grafana substitutes.
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def dashboards() -> dict[str, dict[str, Any]]:
    """Each dashboard JSON by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows; rows themselves are not panels."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variables(expr: str) -> set[str]:
    return {next(g for g in match.groups() if g) for match in VARIABLE.finditer(expr)}


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return MACROS.get(name, ".*")

    return VARIABLE.sub(value, expr)


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard / panel (refId), expr) for every panel target, variables substituted."""
    queries = []
    for board in dashboards().values():
        for panel in panels(board):
            for target in panel.get("targets", []):
                title = f"{board['title']} / {panel['title']} ({target['refId']})"
                queries.append((title, substitute(target["expr"])))
    return queries

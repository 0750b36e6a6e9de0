"""The metric catalogue of proxy/telemetry/metrics.py, and the little PromQL reading the tests need.

Expressions are parsed by promtool (the real parser); this module only finds the metric names and label
names an expression mentions, so the tests can hold them against what the proxy exports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from proxy.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
# Labels Prometheus adds at scrape time, on every series.
TARGET_LABELS = frozenset({"job", "instance"})
# Series Prometheus makes itself, which metrics.py rightly does not define.
SCRAPE_SERIES = {"up": frozenset()}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
                      "unless", "inf", "nan"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_SELECTOR = re.compile(r"(?<![\w.])([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_RATE_ARGUMENT = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*([a-zA-Z_:][\w:]*)")


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    labels: frozenset[str]
    help: str

    @property
    def samples(self) -> tuple[str, ...]:
        base = self.name.removesuffix("_total") if self.type == "counter" else self.name
        return tuple(base + suffix for suffix in SUFFIXES[self.type])


def catalogue() -> dict[str, Family]:
    """Every metric family metrics.py defines, built on a fresh registry, keyed by family name."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    # prometheus_client keeps label names only on the instrument, not on the collected family.
    labels = {
        family.name: frozenset(wrapper._labelnames)
        for wrapper in vars(metrics).values() if isinstance(wrapper, MetricWrapperBase)
        for family in wrapper.describe()
    }
    return {f.name: Family(f.name, f.type, labels[f.name], f.documentation) for f in registry.collect()}


def sample_index() -> dict[str, tuple[Family, str]]:
    """Each series name a scrape can show (`_total`, `_bucket`, ...) to its family and suffix."""
    index = {}
    for family in catalogue().values():
        for sample, suffix in zip(family.samples, SUFFIXES[family.type], strict=True):
            index[sample] = (family, suffix)
    return index


@dataclass(frozen=True)
class Reading:
    """What one expression mentions: metric names, labels per selector, and grouping labels."""

    metrics: frozenset[str]
    selectors: tuple[tuple[str, frozenset[str]], ...]
    grouping: frozenset[str]
    rated: frozenset[str]


def read(expr: str) -> Reading:
    text = _STRING.sub('""', expr)
    selectors = tuple((name or "", frozenset(_MATCHER_LABEL.findall(body))) for name, body in _SELECTOR.findall(text))
    grouping = frozenset(label.strip() for group in _GROUPING.findall(text) for label in group.split(",")
                         if label.strip())
    rated = frozenset(_RATE_ARGUMENT.findall(text))
    bare = _GROUPING.sub(" ", _RANGE.sub(" ", _SELECTOR.sub(r"\1", text)))
    names = {n for n in _NAME.findall(bare) if n.lower() not in KEYWORDS} | {n for n, _ in selectors if n}
    return Reading(frozenset(names), selectors, grouping, rated)


def problems(expr: str, index: dict[str, tuple[Family, str]]) -> list[str]:
    """Names and labels in `expr` that the proxy never exports; an empty list means none."""
    reading = read(expr)
    found: list[str] = []
    known_labels: set[str] = set(TARGET_LABELS)
    for name in sorted(reading.metrics):
        if name in SCRAPE_SERIES:
            known_labels |= SCRAPE_SERIES[name]
        elif name not in index:
            found.append(f"metric {name} is not defined in proxy/telemetry/metrics.py")
        else:
            family, suffix = index[name]
            known_labels |= family.labels | ({"le"} if suffix == "_bucket" else set())
    for name, labels in reading.selectors:
        if name in index:
            family, suffix = index[name]
            allowed = family.labels | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
            found += [f"{name} has no label {label}" for label in sorted(labels - allowed)]
    found += [f"grouping label {label} is on no metric in the expression"
              for label in sorted(reading.grouping - known_labels)]
    for name in sorted(reading.rated & index.keys()):
        family, _ = index[name]
        if family.type == "gauge":
            found.append(f"{name} is a gauge: rate() and increase() of it are meaningless")
    return found


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; CI installs it)")
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


def check_expressions(exprs: Iterable[tuple[str, str]], directory: Path) -> tuple[bool, str]:
    """Parse every (name, expr) with promtool by writing them as recording rules; (ok, report)."""
    named = list(exprs)
    rules = [{"record": f"expression_{i}", "expr": expr} for i, (_, expr) in enumerate(named)]
    path = directory / "expressions.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}, sort_keys=False))
    result = run_promtool("check", "rules", str(path))
    legend = "\n".join(f"expression_{i}: {name}: {expr}" for i, (name, expr) in enumerate(named))
    return result.returncode == 0, f"{result.stdout}{result.stderr}\n{legend}"

"""Runs Rego unit tests the way `opa test` does: every `test_` rule in every package, true means PASS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from proxy.policy.bundle import load_bundle
from proxy.policy.embedded import compile_engine, evaluate_json
from proxy.policy.errors import PolicyEngineError

Outcome = Literal["PASS", "FAIL", "ERROR"]


@dataclass(frozen=True, slots=True)
class TestCase:
    package: str
    name: str
    location: str

    @property
    def rule(self) -> str:
        return f"{self.package}.{self.name}"


@dataclass(frozen=True, slots=True)
class TestResult:
    case: TestCase
    outcome: Outcome
    duration_ns: int
    error: str | None = None


def run_tests(root: Path) -> list[TestResult]:
    """Raises PolicyCompileError when the policies (tests included) do not load."""
    engine = compile_engine(load_bundle(root, include_tests=True))
    return [_run(engine, case) for case in discover_tests(engine)]


def discover_tests(engine: Any) -> list[TestCase]:
    seen: dict[str, TestCase] = {}
    for module in json.loads(engine.get_ast_as_json()):
        package = "data." + ".".join(_ref_names(module["ast"]["package"]["refr"]))
        for rule in module["ast"]["rules"]:
            head = _test_head(rule)
            if head is None:
                continue
            name, line = head
            case = TestCase(package, name, f"{module['source']['file']}:{line}")
            seen.setdefault(case.rule, case)
    return sorted(seen.values(), key=lambda c: c.rule)


def _run(engine: Any, case: TestCase) -> TestResult:
    started = time.perf_counter_ns()
    try:
        # No input: like `opa test`, a test supplies what it needs with `with input as`.
        value = evaluate_json(engine, case.rule, None)
    except PolicyEngineError as exc:
        return TestResult(case, "ERROR", time.perf_counter_ns() - started, str(exc))
    outcome: Outcome = "PASS" if value is True else "FAIL"
    return TestResult(case, outcome, time.perf_counter_ns() - started)


def _test_head(rule: dict[str, Any]) -> tuple[str, int] | None:
    # Only plain rules count (functions named test_ are helpers, as in OPA); `default test_x` adds nothing.
    spec = rule.get("Spec")
    if spec is None:
        return None
    kind, head = next(iter(spec["head"].items()))
    if kind == "Func":
        return None
    var = head["refr"].get("Var")
    if var is None or not str(var["value"]).startswith("test_"):
        return None
    return str(var["value"]), int(var["span"]["line"])


def _ref_names(ref: dict[str, Any]) -> Iterator[str]:
    if "Var" in ref:
        yield str(ref["Var"]["value"])
    elif "RefDot" in ref:
        yield from _ref_names(ref["RefDot"]["refr"])
        yield str(ref["RefDot"]["field"][1])
    elif "RefBrack" in ref:
        yield from _ref_names(ref["RefBrack"]["refr"])
        yield str(ref["RefBrack"]["index"].get("String", {}).get("value", "?"))

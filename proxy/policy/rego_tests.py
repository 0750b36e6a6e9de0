"""Runs Rego unit tests the way `opa test` does: every `test_` rule in every package, true means PASS."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from proxy.policy.bundle import load_bundle
from proxy.policy.embedded import compile_engine
from proxy.policy.errors import PolicyEngineError
from proxy.policy.rego import evaluate_json
from proxy.policy.rego_ast import TestCase, discover_tests

Outcome = Literal["PASS", "FAIL", "ERROR"]


@dataclass(frozen=True, slots=True)
class TestResult:
    case: TestCase
    outcome: Outcome
    duration_ns: int
    error: str | None = None


def run_tests(root: Path) -> list[TestResult]:
    """Raises PolicyCompileError when the policies (tests included) do not load."""
    engine = compile_engine(load_bundle(root, include_tests=True))
    return [_run(engine, case) for case in discover_tests(json.loads(engine.get_ast_as_json()))]


def _run(engine: Any, case: TestCase) -> TestResult:
    started = time.perf_counter_ns()
    try:
        # No input: like `opa test`, a test supplies what it needs with `with input as`.
        value = evaluate_json(engine, case.rule, None)
    except PolicyEngineError as exc:
        return TestResult(case, "ERROR", time.perf_counter_ns() - started, str(exc))
    outcome: Outcome = "PASS" if value is True else "FAIL"
    return TestResult(case, outcome, time.perf_counter_ns() - started)

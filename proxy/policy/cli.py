"""`llm-policy-proxy policy ...` commands: check, test, eval, diff-report. Each returns an exit code.

proxy/__main__.py parses the arguments and calls these; output goes to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import orjson

from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.decision import parse_decision
from proxy.policy.diff_report import summarise
from proxy.policy.embedded import compile_engine, compile_program, evaluate_json
from proxy.policy.engine import DEFAULT_ENTRYPOINTS
from proxy.policy.errors import PolicyEngineError
from proxy.policy.rego_tests import TestResult, run_tests

__all__ = ["cmd_check", "cmd_diff_report", "cmd_eval", "cmd_test", "default_policy_dir"]

RULE = "-" * 80


def cmd_check(directory: Path | None = None, *, out: TextIO | None = None) -> int:
    """Compile every module (tests included) and evaluate each entry point once."""
    out = out or sys.stdout
    root = directory or default_policy_dir()
    try:
        bundle = load_bundle(root, include_tests=True)
        compile_engine(bundle, DEFAULT_ENTRYPOINTS.all())
    except PolicyEngineError as exc:
        print(str(exc), file=out)
        return 1
    print(f"{root}: {len(bundle.modules)} modules OK, revision {bundle.revision}", file=out)
    try:
        compile_program(load_bundle(root))
        print("compiled mode (policy.compiled): the RVM compiles these policies", file=out)
    except Exception as exc:  # informative only: the interpreter serves whatever the RVM cannot
        print(f"compiled mode (policy.compiled): not available, the interpreter will serve ({exc})", file=out)
    return 0


def cmd_test(directory: Path | None = None, *, verbose: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    root = directory or default_policy_dir()
    try:
        results = run_tests(root)
    except PolicyEngineError as exc:
        print(str(exc), file=out)
        return 1
    failed = [r for r in results if r.outcome != "PASS"]
    shown = results if verbose else failed
    current_file = None
    for result in shown:
        file = result.case.location.rsplit(":", 1)[0]
        if file != current_file:
            if current_file is not None:
                print(file=out)
            print(f"{file}:", file=out)
            current_file = file
        print(_line(result), file=out)
    if shown:
        print(RULE, file=out)
    if not results:
        print("no tests found", file=out)
        return 1
    passed = len(results) - len(failed)
    if passed:
        print(f"PASS: {passed}/{len(results)}", file=out)
    for outcome in ("FAIL", "ERROR"):
        n = sum(1 for r in failed if r.outcome == outcome)
        if n:
            print(f"{outcome}: {n}/{len(results)}", file=out)
    return 1 if failed else 0


def cmd_eval(
    directory: Path | None,
    input_file: Path,
    *,
    entrypoint: str = DEFAULT_ENTRYPOINTS.decision,
    out: TextIO | None = None,
) -> int:
    """Print the entry point's result as JSON; the decision entry point is also parsed strictly."""
    out = out or sys.stdout
    root = directory or default_policy_dir()
    try:
        input_doc = orjson.loads(input_file.read_bytes())
        if not isinstance(input_doc, dict):
            raise PolicyEngineError(f"{input_file}: input must be a JSON object")
        engine = compile_engine(load_bundle(root))
        result = evaluate_json(engine, entrypoint, input_doc)
        if entrypoint == DEFAULT_ENTRYPOINTS.decision:
            parse_decision(result)
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"{input_file}: {exc}", file=out)
        return 1
    except PolicyEngineError as exc:
        print(str(exc), file=out)
        return 1
    if result is None:
        print(f"{entrypoint} is undefined for this input", file=out)
        return 1
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(), file=out)
    return 0


def cmd_diff_report(file: Path, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        report = summarise(file)
    except OSError as exc:
        print(f"{file}: {exc}", file=out)
        return 1
    print(report.render(), file=out)
    return 0


def _line(result: TestResult) -> str:
    duration = _duration(result.duration_ns)
    line = f"{result.case.rule}: {result.outcome} ({duration})"
    if result.error:
        line += "\n  " + result.error.replace("\n", "\n  ")
    return line


def _duration(ns: int) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.3f}ms"
    return f"{ns / 1_000:.1f}µs"

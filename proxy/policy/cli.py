"""`llm-policy-proxy policy ...` commands: check, test, eval, diff-report. Each returns an exit code.

Without DIR, the commands use ./policies in the current directory, never the shipped policies: a CI job
run in a repository must check that repository's policies or fail.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

import orjson

from proxy.policy.bundle import load_bundle
from proxy.policy.contract import ENTRYPOINTS, input_errors, result_error
from proxy.policy.contract import entrypoint as contract_row
from proxy.policy.diff_report import summarise
from proxy.policy.embedded import compile_engine
from proxy.policy.errors import PolicyEngineError
from proxy.policy.rego import evaluate_json
from proxy.policy.rego_tests import TestResult, run_tests
from proxy.policy.validate import DEFAULT_TIMEOUT_MS, Limits, Verdict, check_folder

RULE = "-" * 80
USAGE = 2


def policy_dir(directory: Path | None, err: TextIO | None = None) -> Path | None:
    """DIR, else ./policies if there is one; None (after saying so) when neither."""
    if directory is not None:
        return directory
    here = Path.cwd() / "policies"
    if here.is_dir():
        return here
    print(f"no policy folder given and there is no ./policies in {Path.cwd()}: pass DIR, "
          "e.g. `llm-policy-proxy policy check path/to/policies`", file=err or sys.stderr)
    return None


def cmd_check(directory: Path | None = None, *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
              out: TextIO | None = None) -> int:
    """Validate the folder as the proxy would before serving it, and say whether compiled mode agrees."""
    out = out or sys.stdout
    root = policy_dir(directory)
    if root is None:
        return USAGE
    try:
        verdict = asyncio.run(check_folder(root, compiled=True, limits=Limits(timeout_ms=timeout_ms)))
    except PolicyEngineError as exc:
        print(f"{root}: rejected: {exc}", file=out)
        return 1
    print(describe(root, verdict, timeout_ms), file=out)
    return 0


def describe(root: Path, verdict: Verdict, timeout_ms: int) -> str:
    total = sum(verdict.samples.values())
    named = {"builtin": "built-in", "tests": "from the folder's tests", "recent": "recently decided"}
    sources = ", ".join(f"{n} {named.get(source, source)}" for source, n in verdict.samples.items() if n)
    lines = [f"{root}: {verdict.modules} modules OK, revision {verdict.revision}",
             f"contract: every entry point answered all {total} samples ({sources}) validly, "
             f"each within {timeout_ms} ms"]
    if verdict.fallback is None:
        note = f"; the RVM had no answer for {verdict.rvm_fallbacks} (the interpreter answers those)" \
            if verdict.rvm_fallbacks else ""
        lines.append(f"compiled mode (policy.compiled): agrees with the interpreter on all {total} samples{note}")
    else:
        lines.append(f"compiled mode (policy.compiled): not used for this version, the interpreter would serve "
                     f"it: {verdict.fallback}")
    lines.append("input.estimate: read by a rule, so prompts are tokenized for it" if verdict.reads_estimate else
                 "input.estimate: read by no rule, so prompts are not tokenized for it "
                 "(tokens.prompt_estimate: auto)")
    lines.append(dependence(verdict.depends_on))
    lines += [f"warning: {warning}" for warning in verdict.warnings]
    return "\n".join(lines)


def dependence(keys: frozenset[str] | None) -> str:
    if keys is None:
        return "answers: may depend on the whole input or on more (the clock, randomness), so every request is asked"
    read = ", ".join(f"input.{key}" for key in sorted(keys)) or "no input key"
    return (f"answers: depend on {read} only; an entry point whose input has none of these is asked once "
            "per version")


def cmd_test(directory: Path | None = None, *, verbose: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    root = policy_dir(directory)
    if root is None:
        return USAGE
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
    entrypoint: str = ENTRYPOINTS[0].path,
    out: TextIO | None = None,
) -> int:
    """Print the entry point's result as JSON. An entry point of the contract table has its input checked
    against its input schema first, and its result against its result schema."""
    out = out or sys.stdout
    root = policy_dir(directory)
    if root is None:
        return USAGE
    try:
        input_doc = orjson.loads(input_file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"{input_file}: {exc}", file=out)
        return 1
    try:
        row = contract_row(entrypoint)
    except KeyError:
        row = None
    if not isinstance(input_doc, dict):
        print(f"{input_file}: input must be a JSON object", file=out)
        return 1
    if row is not None:
        errors = input_errors(row, input_doc)
        if errors:
            print(f"{input_file}: not a valid input of {row.path} ({row.input_schema}):", file=out)
            print("\n".join(f"  {error}" for error in errors[:10]), file=out)
            return 1
    try:
        result = evaluate_json(compile_engine(load_bundle(root)), entrypoint, input_doc)
    except PolicyEngineError as exc:
        print(str(exc), file=out)
        return 1
    problem = result_error(row, input_doc, result) if row is not None else (
        f"{entrypoint} is undefined for this input" if result is None else None)
    if problem is not None:
        print(problem, file=out)
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

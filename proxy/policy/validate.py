"""Validating a policy version before it serves (start-up, hot reload, shadow, `policy check`, check-config).

1. Read the files: an unreadable file, invalid JSON/YAML or data defined twice rejects the version.
2. Compile it in a fresh evaluator process: a syntax error rejects it (file:line:col), and so does an
   entry point of the contract table that no rule defines.
3. Ask every entry point about its samples: the built-in ones, the inputs of the folder's own tests and,
   when serving, the inputs the previous version recently decided. On the interpreter (the reference
   meaning), each answer must come within policy.timeout_ms and fit the entry point's result schema; an
   error (conflicting rules included), a timeout or an invalid answer rejects the version, naming the
   rule, where it is defined and the sample.
4. Compiled mode: the RVM serves only if it compiles the version, no rule may conflict (conflicts.py:
   the RVM cannot report a conflict), and what it serves equals the interpreter's answer on every
   sample; otherwise the interpreter serves it, and the verdict says why.
Validation runs at the lowest CPU priority; a version that passes is then served from a fresh process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from proxy.policy.answers import UNDEFINED
from proxy.policy.bundle import PolicyBundle, load_bundle
from proxy.policy.conflicts import possible_conflicts
from proxy.policy.contract import ENTRYPOINTS, Entrypoint, builtin_samples, complete, result_error, rows_for
from proxy.policy.errors import PolicyCompileError, PolicyEngineError
from proxy.policy.frames import AST, CAPTURE, FAILED, INTERPRETER, RVM
from proxy.policy.isolated import Answer, EvaluationTimeout, EvaluatorGone, EvaluatorProcess, VersionSpec
from proxy.policy.rego_ast import Node, defines, depends_on, locations, reads_input_key
from proxy.policy.samples import Sample

DEFAULT_TIMEOUT_MS = 500
# Why a version is rejected, and why compiled mode does not serve one (metric labels).
REJECTION_REASONS = ("unreadable", "compile", "entrypoint", "error", "conflict", "contract", "timeout")
FALLBACK_REASONS = ("unsupported", "conflict", "parity")
SHOWN_INPUT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Limits:
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    # On top of the timeout before an evaluation is presumed stuck (the machine may be busy).
    slack_s: float = 2.0
    # Compiling a version, or running its tests to collect their inputs.
    load_s: float = 10.0


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Verdict:
    revision: str
    modules: int
    samples: Mapping[str, int]  # by source: builtin, tests, recent
    mode: str  # what serves the version: "compiled" or "interpreter"
    compiled_requested: bool
    fallback: str | None = None  # why compiled mode does not serve it (when it was asked for)
    fallback_reason: str | None = None  # "unsupported", "conflict" or "parity"
    warnings: tuple[str, ...] = ()  # rules that may conflict: the interpreter reports it when they do
    rvm_fallbacks: int = 0  # samples the RVM had no answer for (the interpreter answered)
    # Whether a served module may read input.estimate: if none does, prompts need not be tokenized for it.
    reads_estimate: bool = True
    # The input keys its answers can depend on (None: more than keys, e.g. the whole input or the clock).
    depends_on: frozenset[str] | None = None


class VersionRejected(PolicyCompileError):
    """The version may not serve. `reason` is a metric label: unreadable, compile, entrypoint, error,
    conflict, contract or timeout."""

    def __init__(self, reason: str, message: str, sample: Sample | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.sample = sample


@dataclass
class _Run:
    """One validation: the process, the version and what has been learnt so far."""

    process: EvaluatorProcess
    bundle: PolicyBundle
    limits: Limits
    modules: list[Node] = field(default_factory=list)
    disagreement: str | None = None
    rvm_fallbacks: int = 0


class _Verdicts:
    """Verdicts of versions already validated in this process, by content and settings: tests start
    hundreds of proxies and a supervisor's forked workers start several, all on the same version. Only
    start-up uses them; a reload also checks recent inputs, which an earlier verdict has not seen."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._verdicts: dict[tuple[object, ...], Verdict] = {}

    def get(self, key: tuple[object, ...]) -> Verdict | None:
        return self._verdicts.get(key)

    def put(self, key: tuple[object, ...], verdict: Verdict) -> None:
        if len(self._verdicts) >= self._size:
            self._verdicts.pop(next(iter(self._verdicts)))
        self._verdicts[key] = verdict


VERDICTS = _Verdicts()


async def validate(bundle: PolicyBundle, *, compiled: bool, limits: Limits = DEFAULT_LIMITS,
                   table: Sequence[Entrypoint] = ENTRYPOINTS, recent: Mapping[str, Sequence[Sample]] | None = None,
                   reuse: bool = False) -> Verdict:
    """The verdict on a version; raises VersionRejected. With `reuse` (start-up), a version this process
    already validated with these settings is not validated again."""
    table = rows_for(bundle.modules, table)
    key = (bundle.digest, compiled, limits.timeout_ms, tuple(row.path for row in table))
    known = VERDICTS.get(key) if reuse and bundle.digest and not recent else None
    if known is not None:
        return known
    # At the lowest priority: a version that spins must not take CPU from the processes serving.
    process = await EvaluatorProcess.spawn(nice=19)
    try:
        verdict = await _validate(_Run(process, bundle, limits), compiled, table, recent or {})
    finally:
        process.kill()
        await process.close(grace_s=0)
    VERDICTS.put(key, verdict)
    return verdict


async def check_folder(root: Path, *, compiled: bool, limits: Limits = DEFAULT_LIMITS,
                       table: Sequence[Entrypoint] = ENTRYPOINTS) -> Verdict:
    """Validate the folder as it is now (for the CLI); raises VersionRejected."""
    bundle = await asyncio.to_thread(read_version, root)
    return await validate(bundle, compiled=compiled, limits=limits, table=table)


def check_policy_folder(which: str, root: Path, *, compiled: bool, timeout_ms: int) -> str | None:
    """None if the folder would serve, else why not (the first line names file:line where known). For
    `serve` and `check-config`, before any worker starts."""
    try:
        asyncio.run(check_folder(root, compiled=compiled, limits=Limits(timeout_ms=timeout_ms)))
    except PolicyEngineError as exc:
        return f"{which} {root}: {exc}"
    return None


def read_version(root: Path) -> PolicyBundle:
    try:
        return load_bundle(root)
    except PolicyCompileError as exc:
        raise VersionRejected("unreadable", str(exc)) from exc


def version_spec(bundle: PolicyBundle, table: Sequence[Entrypoint], compiled: bool) -> VersionSpec:
    paths = tuple(row.path for row in rows_for(bundle.modules, table))
    return VersionSpec(bundle.modules, bundle.data, paths, compiled, str(bundle.root),
                       bundle.tests)


async def _validate(run: _Run, compiled: bool, table: Sequence[Entrypoint],
                    recent: Mapping[str, Sequence[Sample]]) -> Verdict:
    try:
        loaded = await run.process.load(version_spec(run.bundle, table, compiled), run.limits.load_s)
    except EvaluationTimeout as exc:
        raise VersionRejected("timeout", f"{run.bundle.root}: compiling took longer than {run.limits.load_s:g} s"
                              ) from exc
    except PolicyEngineError as exc:
        raise VersionRejected("compile", str(exc)) from exc
    run.modules = orjson.loads(await _ask(run, AST, "reading the policies"))
    missing = [row.path for row in table if not defines(run.modules, row.path)]
    if missing:
        raise VersionRejected("entrypoint", f"{run.bundle.root}: entry point {missing[0]} is not defined by any "
                                            "policy")
    warnings = tuple(str(c) for c in await asyncio.to_thread(possible_conflicts, run.modules))
    use_rvm = loaded["mode"] == "compiled"
    # Built-in and recent samples first: a version that never finishes is caught by its first sample,
    # before its tests (which would spin too) are run to collect their inputs.
    samples = {row.path: [*builtin_samples(row), *recent.get(row.path, ())] for row in table}
    answers = [(row, sample, await _answer(run, row, sample, use_rvm)) for row in table for sample in samples[row.path]]
    captured = orjson.loads(await _ask(run, CAPTURE, "running the folder's tests")) if run.bundle.tests else []
    tests = await asyncio.to_thread(_test_samples, table, captured)
    answers += [(row, sample, await _answer(run, row, sample, use_rvm)) for row in table for sample in tests[row.path]]
    problem = await asyncio.to_thread(_first_contract_problem, answers)
    if problem is not None:
        row, sample, text = problem
        raise _rejected(run, "contract", text, row, sample)
    for row in table:
        samples[row.path] += tests[row.path]
    counts = {source: sum(1 for row in table for s in samples[row.path] if s.name.startswith(source + ":"))
              for source in ("builtin", "tests", "recent")}
    fallback, reason = _compiled_fallback(compiled, loaded.get("compile_error"), warnings, run.disagreement)
    return Verdict(run.bundle.revision, len(run.bundle.modules), counts,
                   "compiled" if compiled and fallback is None else "interpreter", compiled, fallback, reason,
                   warnings, run.rvm_fallbacks, reads_input_key(run.modules, "estimate"), depends_on(run.modules))


async def _ask(run: _Run, op: int, what: str) -> bytes:
    try:
        status, body = await run.process.call(op, b"", run.limits.load_s)
    except EvaluationTimeout as exc:
        raise VersionRejected("timeout", f"{run.bundle.root}: {what} took longer than {run.limits.load_s:g} s"
                              ) from exc
    except EvaluatorGone as exc:
        raise VersionRejected("error", f"{run.bundle.root}: the evaluator process died {what}") from exc
    if status == FAILED:
        raise VersionRejected("compile", body.decode())
    return body


async def _answer(run: _Run, row: Entrypoint, sample: Sample, use_rvm: bool) -> str:
    """The interpreter's answer (raw JSON); with the RVM on, also compares what compiled mode serves."""
    body = orjson.dumps(sample.input)
    reference = await _timed(run, row, sample, body, INTERPRETER)
    if not reference.ok:
        reason = "conflict" if _is_conflict(reference.text) else "error"
        raise _rejected(run, reason, reference.text, row, sample)
    if use_rvm:
        compiled = await _timed(run, row, sample, body, RVM)
        if not compiled.ok or compiled.text == UNDEFINED:
            run.rvm_fallbacks += 1  # the interpreter answers for the RVM here, so both modes agree
        elif run.disagreement is None and orjson.loads(compiled.text) != orjson.loads(reference.text):
            run.disagreement = (f"{row.path} on sample {sample.name}: compiled {_short(compiled.text)}, "
                                f"interpreter {_short(reference.text)}")
    return reference.text


async def _timed(run: _Run, row: Entrypoint, sample: Sample, body: bytes, engine: int) -> Answer:
    timeout_ms = run.limits.timeout_ms
    try:
        answer = await run.process.evaluate(row.path, body, timeout_ms / 1000 + run.limits.slack_s, engine)
    except EvaluationTimeout:
        raise _rejected(run, "timeout", f"did not finish within {timeout_ms} ms (policy.timeout_ms)", row,
                        sample) from None
    except EvaluatorGone:
        raise _rejected(run, "error", "the evaluator process died on this sample (out of memory?)", row,
                        sample) from None
    if answer.nanos > timeout_ms * 1_000_000:
        raise _rejected(run, "timeout", f"took {answer.nanos / 1e6:.0f} ms, more than policy.timeout_ms "
                                        f"({timeout_ms} ms)", row, sample)
    return answer


def _test_samples(table: Sequence[Entrypoint], captured: list[Any]) -> dict[str, list[Sample]]:
    """The tests' inputs, each completed into a full input of every entry point it fits."""
    by_row: dict[str, list[Sample]] = {row.path: [] for row in table}
    for location, partial in captured:
        for row in table:
            document = complete(row, partial) if isinstance(partial, dict) else None
            if document is not None:
                by_row[row.path].append(Sample(f"tests:{location}", document))
    return by_row


def _first_contract_problem(answers: list[tuple[Entrypoint, Sample, str]]) -> tuple[Entrypoint, Sample, str] | None:
    for row, sample, raw in answers:
        problem = result_error(row, sample.input, None if raw == UNDEFINED else orjson.loads(raw))
        if problem is not None:
            return row, sample, problem
    return None


def _compiled_fallback(compiled: bool, compile_error: str | None, warnings: tuple[str, ...],
                       disagreement: str | None) -> tuple[str | None, str | None]:
    if not compiled:
        return None, None
    if compile_error:
        return f"the RVM cannot compile this version: {compile_error.splitlines()[0]}", "unsupported"
    if warnings:
        return f"a rule may conflict, which the RVM cannot report: {warnings[0]}", "conflict"
    if disagreement:
        return f"the RVM and the interpreter disagree: {disagreement}", "parity"
    return None, None


def _rejected(run: _Run, reason: str, problem: str, row: Entrypoint, sample: Sample) -> VersionRejected:
    where = ", ".join(locations(run.modules, row.path)) or "no definition"
    first, _, details = problem.partition("\n")
    shown = orjson.dumps(sample.input).decode()
    if len(shown) > SHOWN_INPUT_CHARS:
        shown = shown[:SHOWN_INPUT_CHARS] + "..."
    message = f"{first} [{row.path} at {where}; sample {sample.name}]"
    message += "".join(f"\n{line}" for line in details.splitlines()) + f"\n  input: {shown}"
    return VersionRejected(reason, message, sample)


def _is_conflict(error: str) -> bool:
    return "conflicts with rule" in error or "multiple outputs" in error or "multiple values" in error


def _short(raw: str, limit: int = 200) -> str:
    text = orjson.dumps(orjson.loads(raw)).decode() if raw != UNDEFINED else "undefined"
    return text if len(text) <= limit else text[:limit] + "..."

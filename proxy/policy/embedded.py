"""Embedded Rego: regorus in-process, policies parsed once per version, ~0.06-0.25 ms per decision.

Two engines over the same bundle: the interpreter (regorus.Engine, always built, the reference) and,
when asked for, the compiled program (regorus RVM, about 4x faster). The RVM answers the entry
points; an RVM error or undefined result is re-asked of the interpreter, whose answer stands.
regorus objects are not thread-safe and may only be used on the thread that built them (PyO3
`unsendable`): build and evaluate on the event loop thread; validate copies elsewhere. A compiled
program crosses threads as bytes (`compile_program`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import regorus

from proxy.policy.bundle import PolicyBundle, load_bundle
from proxy.policy.decision import (
    Decision,
    EgressDecision,
    McpDecision,
    parse_allowed_models,
    parse_decision,
    parse_egress_decision,
    parse_mcp_decision,
)
from proxy.policy.engine import DEFAULT_ENTRYPOINTS, EntryPoints
from proxy.policy.errors import PolicyCompileError, PolicyEngineError
from proxy.policy.input import INPUT_VERSION

_LOCATION = re.compile(r"-->\s*(\S+:\d+:\d+)")
# What regorus' eval_rule_as_json answers for an undefined rule.
_UNDEFINED = '"<undefined>"'
_ERROR_LINE = re.compile(r"^error:\s*(.*)$", re.MULTILINE)


class EmbeddedRego:
    def __init__(
        self,
        bundle: PolicyBundle,
        entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS,
        *,
        compiled: bool = False,
        program: bytes | None = None,
    ) -> None:
        """`compiled` runs the entry points on the RVM (compiling here, ~30 ms, unless `program`
        holds `compile_program`'s bytes); a bundle the RVM cannot compile or run falls back to the
        interpreter, and `compile_error` says why."""
        self._engine = compile_engine(bundle, entrypoints.all())
        self._entrypoints = entrypoints
        self._revision = bundle.revision
        self.bundle = bundle
        self._vm: Any = None
        self.compile_error: str | None = None
        if compiled or program is not None:
            try:
                self._vm = load_program(bundle, program or compile_program(bundle, entrypoints))
                for rule in entrypoints.all():
                    _execute(self._vm, rule, "{}")
            except PolicyEngineError as exc:
                self._vm, self.compile_error = None, str(exc)

    @classmethod
    def from_dir(
        cls, root: Path, entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS, *, compiled: bool = False
    ) -> EmbeddedRego:
        return cls(load_bundle(root), entrypoints, compiled=compiled)

    @property
    def mode(self) -> str:
        """`compiled` when the RVM answers the entry points, else `interpreter`."""
        return "interpreter" if self._vm is None else "compiled"

    @property
    def revision(self) -> str:
        return self._revision

    async def evaluate(self, input: dict[str, Any]) -> Decision:
        if self._vm is not None:
            raw = self._compiled_json(self._entrypoints.decision, input)
            if raw is not None:
                return _decision_from_json(raw)
        return parse_decision(self.evaluate_rule(self._entrypoints.decision, input))

    async def allowed_models(self, identity: dict[str, Any], models: Sequence[str]) -> list[str]:
        doc = {"version": INPUT_VERSION, "identity": identity, "models": list(models)}
        return parse_allowed_models(self.evaluate_entrypoint(self._entrypoints.allowed_models, doc), models)

    async def evaluate_egress(self, input: dict[str, Any]) -> EgressDecision:
        return parse_egress_decision(self.evaluate_entrypoint(self._entrypoints.egress, input))

    async def evaluate_mcp(self, input: dict[str, Any]) -> McpDecision:
        return parse_mcp_decision(self.evaluate_entrypoint(self._entrypoints.mcp, input))

    def evaluate_entrypoint(self, rule: str, input: dict[str, Any]) -> Any:
        """Like evaluate_rule, on the RVM when compiled; an RVM error or undefined result (how its
        known gaps show) is re-asked of the interpreter."""
        if self._vm is not None:
            raw = self._compiled_json(rule, input)
            if raw is not None:
                return orjson.loads(raw)
        return self.evaluate_rule(rule, input)

    def _compiled_json(self, rule: str, input: dict[str, Any]) -> str | None:
        """The RVM's JSON answer, or None when it errs or is undefined (the interpreter then decides)."""
        assert self._vm is not None
        try:
            raw = _execute(self._vm, rule, _dumps(input))
        except PolicyEngineError:
            return None
        return None if raw == _UNDEFINED else raw

    async def close(self) -> None:
        return None

    def evaluate_rule(self, rule: str, input: dict[str, Any] | None) -> Any:
        """The raw JSON value of `rule` (None when undefined). Synchronous: safe because nothing
        can interleave between set_input and eval on one thread."""
        return evaluate_json(self._engine, rule, input)


def compile_engine(bundle: PolicyBundle, entrypoints: Sequence[str] = ()) -> Any:
    """A ready regorus.Engine; regorus prepares rules lazily, so each entry point is evaluated once
    to surface compile errors now rather than on the first request."""
    engine = regorus.Engine()
    for path, source in bundle.modules:
        try:
            engine.add_policy(path, source)
        except RuntimeError as exc:
            raise PolicyCompileError(describe_error(exc)) from exc
    try:
        engine.add_data(dict(bundle.data))
    except RuntimeError as exc:
        raise PolicyCompileError(f"{bundle.root}: data rejected: {describe_error(exc)}") from exc
    defined = {rule for rule in entrypoints if _is_defined(engine, rule)}
    for rule in entrypoints:
        if rule not in defined:
            raise PolicyCompileError(f"{bundle.root}: entry point {rule} is not defined by any policy")
        try:
            evaluate_json(engine, rule, {})
        except PolicyEngineError as exc:
            raise PolicyCompileError(str(exc)) from exc
    return engine


def compile_program(bundle: PolicyBundle, entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS) -> bytes:
    """The bundle compiled for the RVM, as bytes: unlike regorus objects they may cross threads."""
    try:
        program = regorus.Program.compile_from_modules(_dumps(bundle.data), list(bundle.modules), entrypoints.all())
        return bytes(program.serialize_binary())
    except (RuntimeError, ValueError) as exc:
        raise PolicyEngineError(f"RVM cannot compile {bundle.root}: {describe_error(exc)}") from exc


def load_program(bundle: PolicyBundle, program: bytes) -> Any:
    """A ready regorus.Rvm; the data must be set at run time too (the program alone answers as if empty)."""
    try:
        loaded, partial = regorus.Program.deserialize_binary(program)
        if partial:  # bytes regorus can only partly read back (another version): compile afresh
            loaded, _ = regorus.Program.deserialize_binary(compile_program(bundle))
        vm = regorus.Rvm()
        vm.load_program(loaded)
        vm.set_data_json(_dumps(bundle.data))
    except (RuntimeError, ValueError) as exc:
        raise PolicyEngineError(f"RVM cannot load the program for {bundle.root}: {describe_error(exc)}") from exc
    return vm


@functools.lru_cache(maxsize=2048)
def _decision_from_json(raw: str) -> Decision:
    """Most requests get one of a few distinct decisions: parse each distinct answer once (~20 us).
    Decisions are frozen, so sharing one between requests is safe."""
    return parse_decision(orjson.loads(raw))


def _execute(vm: Any, rule: str, input_json: str) -> str:
    try:
        vm.set_input_json(input_json)
        return str(vm.execute_entry_point(rule))
    except RuntimeError as exc:
        raise PolicyEngineError(f"RVM evaluating {rule}: {describe_error(exc)}") from exc


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise PolicyEngineError(f"not JSON: {exc}") from exc


def evaluate_json(engine: Any, rule: str, input: dict[str, Any] | None) -> Any:
    # JSON in and out: the policy sees exactly what OPA would get, and sets come back as arrays
    # the way OPA serialises them, so both engines feed the same strict parser.
    try:
        if input is not None:
            engine.set_input_json(orjson.dumps(input).decode())
        raw = engine.eval_rule_as_json(rule)
    except RuntimeError as exc:
        raise PolicyEngineError(f"evaluating {rule}: {describe_error(exc)}") from exc
    except TypeError as exc:
        raise PolicyEngineError(f"input for {rule} is not JSON: {exc}") from exc
    return None if raw == _UNDEFINED else orjson.loads(raw)


def describe_error(exc: BaseException) -> str:
    """regorus' message as `file:line:col: error: ...` plus its source snippet, without the Rust backtrace."""
    text = str(exc).split("Stack backtrace:", 1)[0].strip()
    location = _LOCATION.search(text)
    error = _ERROR_LINE.search(text)
    if location is None or error is None:
        return text
    snippet = "\n".join(line for line in text.splitlines() if "|" in line)
    return f"{location.group(1)}: error: {error.group(1)}\n{snippet}".rstrip()


def _is_defined(engine: Any, rule: str) -> bool:
    try:
        engine.eval_rule_as_json(rule)
    except RuntimeError as exc:
        return "not a valid rule path" not in str(exc)
    return True

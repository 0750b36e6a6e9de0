"""regorus underneath every embedded engine: build it, ask it, and turn its errors into file:line text.

Imports nothing heavier than regorus and orjson, because the evaluator process runs on it. A `Runtime`
holds one policy version: the interpreter (the reference meaning) and, when compiled, the RVM.
regorus objects are `unsendable`: use and drop them on the thread that built them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import regorus

from proxy.policy.answers import UNDEFINED
from proxy.policy.errors import PolicyCompileError, PolicyEngineError

Modules = Sequence[tuple[str, str]]

_LOCATION = re.compile(r"-->\s*(\S+:\d+:\d+)")
_ERROR_LINE = re.compile(r"^error:\s*(.*)$", re.MULTILINE)


class Runtime:
    """One policy version in regorus. `answer` is what the proxy serves: the RVM's answer when it has
    one, else the interpreter's (an RVM error or undefined result is how its known gaps show)."""

    def __init__(self, modules: Modules, data: Mapping[str, Any], entrypoints: Sequence[str], *,
                 compiled: bool = False, where: str = "policy") -> None:
        self.engine = build_engine(modules, data, where)
        self.vm: Any = None
        self.compile_error: str | None = None
        if compiled:
            try:
                self.vm = load_program(compile_program(modules, data, entrypoints, where), data, where)
            except PolicyEngineError as exc:
                self.compile_error = str(exc)

    def interpret(self, rule: str, input_json: str | None) -> str:
        """The interpreter's raw JSON answer (UNDEFINED when undefined)."""
        try:
            if input_json is not None:
                self.engine.set_input_json(input_json)
            return str(self.engine.eval_rule_as_json(rule))
        except RuntimeError as exc:
            raise PolicyEngineError(f"evaluating {rule}: {describe_error(exc)}") from exc

    def execute(self, rule: str, input_json: str) -> str:
        """The RVM's raw JSON answer; raises PolicyEngineError (also when not compiled)."""
        if self.vm is None:
            raise PolicyEngineError(f"RVM evaluating {rule}: not compiled")
        return execute(self.vm, rule, input_json)

    def answer(self, rule: str, input_json: str) -> str:
        if self.vm is not None:
            try:
                raw = execute(self.vm, rule, input_json)
            except PolicyEngineError:
                raw = UNDEFINED
            if raw != UNDEFINED:
                return raw
        return self.interpret(rule, input_json)


def build_engine(modules: Modules, data: Mapping[str, Any], where: str = "policy") -> Any:
    """A regorus.Engine with the modules parsed and the data added. regorus prepares rules lazily, so
    some errors (unsafe variables, unknown functions) only show on the first evaluation."""
    engine = regorus.Engine()
    for path, source in modules:
        try:
            engine.add_policy(path, source)
        except RuntimeError as exc:
            raise PolicyCompileError(describe_error(exc)) from exc
    try:
        engine.add_data(dict(data))
    except RuntimeError as exc:
        raise PolicyCompileError(f"{where}: data rejected: {describe_error(exc)}") from exc
    return engine


def compile_program(modules: Modules, data: Mapping[str, Any], entrypoints: Sequence[str],
                    where: str = "policy") -> Any:
    """The version compiled for the RVM (a regorus.Program); raises for rules the compiler does not support."""
    try:
        return regorus.Program.compile_from_modules(dumps(data), list(modules), list(entrypoints))
    except (RuntimeError, ValueError) as exc:
        raise PolicyEngineError(f"RVM cannot compile {where}: {describe_error(exc)}") from exc


def load_program(program: Any, data: Mapping[str, Any], where: str = "policy") -> Any:
    """A ready regorus.Rvm; the data must be set at run time too (the program alone answers as if empty)."""
    try:
        vm = regorus.Rvm()
        vm.load_program(program)
        vm.set_data_json(dumps(data))
    except (RuntimeError, ValueError) as exc:
        raise PolicyEngineError(f"RVM cannot load the program for {where}: {describe_error(exc)}") from exc
    return vm


def execute(vm: Any, rule: str, input_json: str) -> str:
    try:
        vm.set_input_json(input_json)
        return str(vm.execute_entry_point(rule))
    except RuntimeError as exc:
        raise PolicyEngineError(f"RVM evaluating {rule}: {describe_error(exc)}") from exc


def evaluate_json(engine: Any, rule: str, input: dict[str, Any] | None) -> Any:
    """The rule's value as Python (None when undefined). JSON in and out: the policy sees exactly what
    OPA would get, and sets come back as arrays the way OPA serialises them."""
    try:
        if input is not None:
            engine.set_input_json(orjson.dumps(input).decode())
        raw = engine.eval_rule_as_json(rule)
    except RuntimeError as exc:
        raise PolicyEngineError(f"evaluating {rule}: {describe_error(exc)}") from exc
    except TypeError as exc:
        raise PolicyEngineError(f"input for {rule} is not JSON: {exc}") from exc
    return None if raw == UNDEFINED else orjson.loads(raw)


def is_defined(engine: Any, rule: str) -> bool:
    try:
        engine.eval_rule_as_json(rule)
    except RuntimeError as exc:
        return "not a valid rule path" not in str(exc)
    return True


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise PolicyEngineError(f"not JSON: {exc}") from exc


def describe_error(exc: BaseException) -> str:
    """regorus' message as `file:line:col: error: ...` plus its source snippet, without the Rust backtrace."""
    text = str(exc).split("Stack backtrace:", 1)[0].strip()
    location = _LOCATION.search(text)
    error = _ERROR_LINE.search(text)
    if location is None or error is None:
        return text
    snippet = "\n".join(line for line in text.splitlines() if "|" in line)
    return f"{location.group(1)}: error: {error.group(1)}\n{snippet}".rstrip()

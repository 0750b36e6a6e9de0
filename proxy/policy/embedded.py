"""Embedded Rego in this process: regorus parsed once per version, ~0.06-0.25 ms per decision.

The proxy serves from the evaluator process (proxy/policy/isolated.py), where a timeout can be enforced;
this in-process engine serves the CLI, tests and the evaluator itself. Both modes answer through
`rego.Runtime`: the RVM when compiled, the interpreter where the RVM has no answer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from proxy.policy.answers import loads
from proxy.policy.bundle import PolicyBundle, load_bundle
from proxy.policy.decision import (
    Decision,
    EgressDecision,
    McpDecision,
    decision_from_json,
    parse_allowed_models,
    parse_egress_decision,
    parse_mcp_decision,
)
from proxy.policy.engine import DEFAULT_ENTRYPOINTS, EntryPoints
from proxy.policy.errors import PolicyCompileError, PolicyEngineError
from proxy.policy.input import INPUT_VERSION
from proxy.policy.rego import Runtime, build_engine, dumps, evaluate_json, execute, is_defined
from proxy.policy.rego_ast import reads_input_key


class EmbeddedRego:
    def __init__(self, bundle: PolicyBundle, entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS, *,
                 compiled: bool = False) -> None:
        """`compiled` also runs the entry points on the RVM (~30 ms to compile); a version the RVM cannot
        compile or run answers on the interpreter, and `compile_error` says why."""
        paths = entrypoints.served(bundle.modules)
        self._runtime = Runtime(bundle.modules, bundle.data, paths, compiled=compiled, where=str(bundle.root))
        check_entrypoints(self._runtime.engine, paths, bundle.root)
        self._entrypoints = entrypoints
        self.bundle = bundle
        self.compile_error = self._runtime.compile_error
        if self._runtime.vm is not None:
            try:
                for rule in paths:
                    execute(self._runtime.vm, rule, "{}")
            except PolicyEngineError as exc:
                self._runtime.vm, self.compile_error = None, str(exc)

    @classmethod
    def from_dir(cls, root: Path, entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS, *,
                 compiled: bool = False) -> EmbeddedRego:
        return cls(load_bundle(root), entrypoints, compiled=compiled)

    @property
    def mode(self) -> str:
        """`compiled` when the RVM answers the entry points, else `interpreter`."""
        return "interpreter" if self._runtime.vm is None else "compiled"

    @property
    def revision(self) -> str:
        return self.bundle.revision

    @functools.cached_property
    def reads_estimate(self) -> bool:
        return reads_input_key(orjson.loads(str(self._runtime.engine.get_ast_as_json())), "estimate")

    async def evaluate(self, input: dict[str, Any]) -> Decision:
        return decision_from_json(self._runtime.answer(self._entrypoints.decision, dumps(input)))

    async def allowed_models(self, identity: dict[str, Any], models: Sequence[str]) -> list[str]:
        doc = {"version": INPUT_VERSION, "identity": identity, "models": list(models)}
        return parse_allowed_models(self.evaluate_entrypoint(self._entrypoints.allowed_models, doc), models)

    async def evaluate_egress(self, input: dict[str, Any]) -> EgressDecision:
        return parse_egress_decision(self.evaluate_entrypoint(self._entrypoints.egress, input))

    async def evaluate_mcp(self, input: dict[str, Any]) -> McpDecision:
        return parse_mcp_decision(self.evaluate_entrypoint(self._entrypoints.mcp, input))

    async def query(self, rule: str, input: dict[str, Any]) -> Any:
        return self.evaluate_entrypoint(rule, input)

    def evaluate_entrypoint(self, rule: str, input: dict[str, Any]) -> Any:
        """The value the proxy would serve for `rule` (None when undefined)."""
        return loads(self._runtime.answer(rule, dumps(input)))

    def evaluate_rule(self, rule: str, input: dict[str, Any] | None) -> Any:
        """The interpreter's value of `rule` (None when undefined)."""
        return evaluate_json(self._runtime.engine, rule, input)

    async def close(self) -> None:
        return None


def compile_engine(bundle: PolicyBundle, entrypoints: Sequence[str] = ()) -> Any:
    """A ready regorus.Engine whose entry points are defined and answer an empty input."""
    engine = build_engine(bundle.modules, bundle.data, str(bundle.root))
    check_entrypoints(engine, entrypoints, bundle.root)
    return engine


def check_entrypoints(engine: Any, entrypoints: Sequence[str], root: Path) -> None:
    """regorus prepares rules lazily: each entry point is evaluated once to surface errors now."""
    for rule in entrypoints:
        if not is_defined(engine, rule):
            raise PolicyCompileError(f"{root}: entry point {rule} is not defined by any policy")
        try:
            evaluate_json(engine, rule, {})
        except PolicyEngineError as exc:
            raise PolicyCompileError(str(exc)) from exc

"""Embedded Rego: regorus in-process, policies parsed once per version, ~tens of µs per decision.

regorus engines are not thread-safe and may only be used on the thread that built them (PyO3
`unsendable`): build and evaluate on the event loop thread; validate copies elsewhere.
"""

from __future__ import annotations

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
    parse_allowed_models,
    parse_decision,
    parse_egress_decision,
)
from proxy.policy.engine import DEFAULT_ENTRYPOINTS, EntryPoints
from proxy.policy.errors import PolicyCompileError, PolicyEngineError
from proxy.policy.input import INPUT_VERSION

_LOCATION = re.compile(r"-->\s*(\S+:\d+:\d+)")
# What regorus' eval_rule_as_json answers for an undefined rule.
_UNDEFINED = '"<undefined>"'
_ERROR_LINE = re.compile(r"^error:\s*(.*)$", re.MULTILINE)


class EmbeddedRego:
    def __init__(self, bundle: PolicyBundle, entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS) -> None:
        self._engine = compile_engine(bundle, entrypoints.all())
        self._entrypoints = entrypoints
        self._revision = bundle.revision
        self.bundle = bundle

    @classmethod
    def from_dir(cls, root: Path, entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS) -> EmbeddedRego:
        return cls(load_bundle(root), entrypoints)

    @property
    def revision(self) -> str:
        return self._revision

    async def evaluate(self, input: dict[str, Any]) -> Decision:
        return parse_decision(self.evaluate_rule(self._entrypoints.decision, input))

    async def allowed_models(self, identity: dict[str, Any], models: Sequence[str]) -> list[str]:
        doc = {"version": INPUT_VERSION, "identity": identity, "models": list(models)}
        return parse_allowed_models(self.evaluate_rule(self._entrypoints.allowed_models, doc), models)

    async def evaluate_egress(self, input: dict[str, Any]) -> EgressDecision:
        return parse_egress_decision(self.evaluate_rule(self._entrypoints.egress, input))

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

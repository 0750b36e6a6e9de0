"""The policy contract as a table: every entry point the proxy asks, with its input and result schemas
(policies/schema/) and the built-in samples a version must answer before it serves.

Adding an entry point is one row in ENTRYPOINTS (plus its schemas and a sample generator).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
from referencing import Registry, Resource

from proxy.policy.bundle import declares, default_policy_dir
from proxy.policy.decision import (
    parse_allowed_models,
    parse_budgets,
    parse_decision,
    parse_egress_decision,
    parse_mcp_decision,
)
from proxy.policy.errors import PolicyEngineError
from proxy.policy.samples import (
    Sample,
    decision_samples,
    egress_samples,
    enum_samples,
    mcp_samples,
    models_samples,
    scopes_samples,
)

SCHEMA_DIR = default_policy_dir() / "schema"
PROMPT = ("request", "prompt")

Check = Callable[[dict[str, Any], Any], object]


@dataclass(frozen=True, slots=True)
class Entrypoint:
    path: str
    # A file in policies/schema/, optionally with a JSON pointer: "models_input.v1.json#/$defs/result".
    input_schema: str
    result_schema: str
    samples: Callable[[], Sequence[Sample]]
    # What the proxy does with the result beyond the schema (raises PolicyEngineError when it cannot).
    check: Check | None = None
    # Paths removed from an input before it is kept as a recent input: operator-enabled prompt text.
    private: tuple[tuple[str, ...], ...] = (PROMPT,)
    # Optional rows are validated only in a version whose policies declare the rule's package (a
    # deployment that does not use that door need not write its policy); declared, they must hold.
    optional: bool = False

    @property
    def package(self) -> str:
        """The Rego package that holds the rule: data.llm.mcp.decision -> llm.mcp."""
        return self.path.removeprefix("data.").rpartition(".")[0]


ENTRYPOINTS: tuple[Entrypoint, ...] = (
    Entrypoint("data.llm.main.decision", "input.v1.json", "decision.v1.json", decision_samples,
               check=lambda _, result: parse_decision(result)),
    # Asked before the budget state is read, and cached per revision, identity, endpoint and model.
    Entrypoint("data.llm.budgets.scopes", "scopes_input.v1.json", "scopes_input.v1.json#/$defs/result",
               scopes_samples, check=lambda _, result: parse_budgets(result, "scopes")),
    Entrypoint("data.llm.models.allowed_models", "models_input.v1.json", "models_input.v1.json#/$defs/result",
               models_samples, check=lambda doc, result: parse_allowed_models(result, doc["models"])),
    Entrypoint("data.llm.egress.decision", "egress_input.v1.json", "egress_decision.v1.json", egress_samples,
               check=lambda _, result: parse_egress_decision(result)),
    Entrypoint("data.llm.mcp.decision", "mcp_input.v1.json", "mcp_decision.v1.json", mcp_samples,
               check=lambda _, result: parse_mcp_decision(result), optional=True),
)


def rows_for(modules: Sequence[tuple[str, str]], table: Sequence[Entrypoint] = ENTRYPOINTS) -> tuple[Entrypoint, ...]:
    """The rows a version must satisfy: every required row, and the optional ones it declares."""
    return tuple(row for row in table if not row.optional or declares(modules, row.package))


def entrypoint(path: str, table: Sequence[Entrypoint] = ENTRYPOINTS) -> Entrypoint:
    for row in table:
        if row.path == path:
            return row
    raise KeyError(path)


def builtin_samples(row: Entrypoint) -> list[Sample]:
    """The row's samples, plus its first sample once per value of every enum in its input schema."""
    samples = list(row.samples())
    base = base_sample(row)
    if base is not None:
        samples += enum_samples(schema_document(row.input_schema), base)
    return samples


def input_errors(row: Entrypoint, document: Any) -> list[str]:
    """Where `document` breaks the row's input schema (empty when it is a valid input)."""
    return _errors(validator(row.input_schema), document)


def result_error(row: Entrypoint, document: dict[str, Any], result: Any) -> str | None:
    """Why `result` is not a valid answer to `document`, or None."""
    if result is None:
        return f"{row.path} is undefined for this input"
    errors = _errors(validator(row.result_schema), result)
    if errors:
        return f"{row.path} breaks {row.result_schema}: {errors[0]}"
    if row.check is not None:
        try:
            row.check(document, result)
        except PolicyEngineError as exc:
            return f"{row.path}: {exc}"
    return None


def _errors(checker: jsonschema.protocols.Validator, document: Any) -> list[str]:
    errors = sorted(checker.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_where(error.absolute_path)}: {error.message}" for error in errors]


def _where(path: Sequence[object]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".") or "(document)"


@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    file, _, pointer = name.partition("#")
    schema = schema_document(file)
    if pointer:
        schema = {"$ref": f"{schema['$id']}#{pointer}"}
    return jsonschema.Draft202012Validator(schema, registry=_registry())


@functools.cache
def schema_document(file: str) -> Mapping[str, Any]:
    document: Mapping[str, Any] = json.loads((SCHEMA_DIR / file.partition("#")[0]).read_text())
    return document


@functools.cache
def _registry() -> Registry:
    documents = [json.loads(path.read_text()) for path in sorted(SCHEMA_DIR.glob("*.json"))]
    return Registry().with_resources((doc["$id"], Resource.from_contents(doc)) for doc in documents)


def complete(row: Entrypoint, partial: Mapping[str, Any]) -> dict[str, Any] | None:
    """A test's (often partial) input laid over the row's first built-in sample, if that makes a valid
    input of this entry point; tests of other entry points give None."""
    base = base_sample(row)
    if base is None:
        return None
    document = _merged(base.input, partial)
    return None if input_errors(row, document) else document


@functools.cache
def base_sample(row: Entrypoint) -> Sample | None:
    samples = row.samples()
    return samples[0] if samples else None


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged

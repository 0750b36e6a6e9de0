"""The MCP decision contract: the input builder matches mcp_input.v1.json, the strict parser and
mcp_decision.v1.json agree, and the shipped policy's answers fit the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from proxy.identity import Identity
from proxy.mcp.input import MessageFacts, ToolFacts, build_mcp_input
from proxy.pii import Finding
from proxy.policy.bundle import default_policy_dir
from proxy.policy.decision import parse_mcp_decision
from proxy.policy.embedded import EmbeddedRego
from proxy.policy.errors import PolicyEngineError
from proxy.policy.input import BudgetState

SCHEMAS = default_policy_dir() / "schema"
PAYMENTS = Identity("billing-api", "payments", None, "k-payments", "api_key")


def validator(name: str) -> jsonschema.Draft202012Validator:
    schemas = [json.loads(path.read_text()) for path in SCHEMAS.glob("*.json")]
    registry: Registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def call_input(tool: str = "lookup", annotations: dict[str, Any] | None = None, identity: Identity = PAYMENTS,
               pii: tuple[Finding, ...] = (), method: str = "tools/call") -> dict[str, Any]:
    facts = MessageFacts("crm", "request", method, tool, "2025-11-25", True)
    tool_facts = ToolFacts(tool, annotations) if method == "tools/call" else None
    budget = (BudgetState("mcp:k:crm:lookup", 0.0, 10.0, "month"),)
    return build_mcp_input(facts, identity, tool_facts, pii, budget, 1_795_000_000)


def test_input_matches_the_schema() -> None:
    validator("mcp_input.v1.json").validate(call_input(pii=(Finding("email", 1, "arguments.to"),)))
    validator("mcp_input.v1.json").validate(call_input(annotations=None))
    validator("mcp_input.v1.json").validate(call_input(method="tools/list"))


FULL = {"allow": False, "reasons": [{"code": "x", "message": "y"}], "audit": [], "redact_arguments": ["email"],
        "redact_results": ["jwt"], "restore": True, "budgets": [{"scope": "mcp:a:crm:t", "requests_per_minute": 5}]}


def test_schema_and_parser_accept_a_full_decision() -> None:
    validator("mcp_decision.v1.json").validate(FULL)
    assert parse_mcp_decision(FULL).as_dict() == FULL


@pytest.mark.parametrize("change", [
    {"allow": "yes"}, {"reasons": None}, {"redact_arguments": "email"}, {"redact_results": ["jwt", "jwt"]},
    {"restore": 1}, {"budgets": [{"scope": "s"}]}, {"extra": 1}, {"tools": []},
])
def test_schema_and_parser_refuse_alike(change: dict[str, Any]) -> None:
    document = {**FULL, **change}
    assert not validator("mcp_decision.v1.json").is_valid(document)
    with pytest.raises(PolicyEngineError):
        parse_mcp_decision(document)


@pytest.fixture(scope="module")
def engine() -> EmbeddedRego:
    return EmbeddedRego.from_dir(Path(default_policy_dir()))


@pytest.mark.parametrize("document", [
    call_input(annotations={"readOnlyHint": True}), call_input(annotations=None), call_input(method="tools/list"),
    call_input(annotations={}, pii=(Finding("github_token", 1, "arguments.body"),)),
])
async def test_the_shipped_policy_answers_within_the_schema(engine: EmbeddedRego, document: dict[str, Any]) -> None:
    answer = engine.evaluate_rule("data.llm.mcp.decision", document)
    validator("mcp_decision.v1.json").validate(answer)
    parse_mcp_decision(answer)

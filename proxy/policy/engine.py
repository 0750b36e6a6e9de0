"""The policy engine boundary: one protocol, implemented by EmbeddedRego and OpaServer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.policy.bundle import declares
from proxy.policy.decision import Decision, EgressDecision, McpDecision


@dataclass(frozen=True, slots=True)
class EntryPoints:
    """Rule paths the proxy asks; the four in all() must exist in a policy version. The MCP gateway's is
    optional: a policy version without it answers every MCP message with an engine error, a deny."""

    decision: str = "data.llm.main.decision"
    scopes: str = "data.llm.budgets.scopes"
    allowed_models: str = "data.llm.models.allowed_models"
    egress: str = "data.llm.egress.decision"
    mcp: str = "data.llm.mcp.decision"

    def all(self) -> tuple[str, str, str, str]:
        return (self.decision, self.scopes, self.allowed_models, self.egress)

    def served(self, modules: Sequence[tuple[str, str]]) -> tuple[str, ...]:
        """The entry points a version with these modules (name, source) serves: all(), and the MCP one
        when a module declares its package."""
        package = self.mcp.removeprefix("data.").rpartition(".")[0]
        return self.all() + ((self.mcp,) if declares(modules, package) else ())


DEFAULT_ENTRYPOINTS = EntryPoints()


class PolicyEngine(Protocol):
    """Every method raises PolicyEngineError when no valid decision can be had."""

    @property
    def revision(self) -> str: ...

    @property
    def reads_estimate(self) -> bool:
        """Whether the policy may read input.estimate; when no policy does, prompts are not tokenized for
        it (tokens.prompt_estimate: auto). True when it cannot be known (a remote OPA)."""
        ...

    async def evaluate(self, input: dict[str, Any]) -> Decision: ...

    async def allowed_models(self, identity: dict[str, Any], models: Sequence[str]) -> list[str]: ...

    async def evaluate_egress(self, input: dict[str, Any]) -> EgressDecision: ...

    async def evaluate_mcp(self, input: dict[str, Any]) -> McpDecision: ...

    async def query(self, rule: str, input: dict[str, Any]) -> Any:
        """The raw value of any entry point of the contract table (None when undefined); the caller
        parses it (proxy/policy/contract.py lists the entry points and their result schemas)."""
        ...

    async def close(self) -> None: ...

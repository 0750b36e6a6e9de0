"""Policy test fixtures: realistic inputs built by build_input, and both engines over the shipped policies."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from proxy.identity import Identity
from proxy.policy.bundle import default_policy_dir
from proxy.policy.embedded import EmbeddedRego
from proxy.policy.engine import PolicyEngine
from proxy.policy.input import (
    BudgetState,
    Estimate,
    ModelFacts,
    PiiFinding,
    RequestFacts,
    build_input,
)
from proxy.policy.opa_server import OpaServer
from proxy.policy.reload import PolicyReloader
from tests.support.opa_rest_server import start_opa_server

NOW = 1_795_000_000.0
PAYMENTS = Identity(app="billing-api", team="payments", user=None, key_id="k-7", source="api_key")
RESEARCH = Identity(app="notebook", team="research", user="u-42", key_id="k-9", source="api_key")
GPT_4O = ModelFacts(provider="openai", input_usd_per_mtok=2.5, output_usd_per_mtok=10.0,
                    context_window=128_000, cached_input_usd_per_mtok=1.25)

InputFactory = Callable[..., dict[str, Any]]


def make_input(
    *,
    model: str = "gpt-4o",
    facts: ModelFacts | None = GPT_4O,
    identity: Identity = PAYMENTS,
    endpoint: str = "chat.completions",
    max_tokens: int | None = 512,
    prompt_tokens: int = 812,
    pii: tuple[PiiFinding, ...] = (),
    budget: tuple[BudgetState, ...] = (),
) -> dict[str, Any]:
    request = RequestFacts(endpoint="chat.completions", model=model, stream=True, max_tokens=max_tokens,
                           messages=3, tool_names=("search",), user=identity.user)
    request = replace(request, endpoint=endpoint)  # type: ignore[arg-type]
    estimate = Estimate(prompt_tokens=prompt_tokens, max_output_tokens=max_tokens or 4096, max_cost_usd=0.0071)
    return build_input(request, identity, facts, estimate, pii, budget, NOW)


def spend(scope: str, percent: float, limit: float = 500.0) -> BudgetState:
    spent = limit * percent / 100
    return BudgetState(scope=scope, spent_usd=spent, percent=percent, window="month",
                       limit_usd=limit, remaining_usd=max(0.0, limit - spent))


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped policies, for tests that edit data or files."""
    return Path(shutil.copytree(default_policy_dir(), tmp_path / "policies"))


@pytest.fixture
def embedded() -> EmbeddedRego:
    return EmbeddedRego.from_dir(default_policy_dir())


@pytest.fixture(params=["embedded", "compiled", "evaluator", "opa"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[PolicyEngine]:
    """The same decisions must come out of every engine: the suite runs once per engine (`evaluator` is
    what the proxy serves from: the validated version in an evaluator process, compiled)."""
    if request.param == "evaluator":
        reloader = await PolicyReloader(default_policy_dir(), compiled=True).start(watch=False)
        assert reloader.engine.mode == "compiled"
        yield reloader
        await reloader.close()
        return
    if request.param in ("embedded", "compiled"):
        embedded = EmbeddedRego.from_dir(default_policy_dir(), compiled=request.param == "compiled")
        assert embedded.mode == ("compiled" if request.param == "compiled" else "interpreter"), embedded.compile_error
        yield embedded
        return
    server = await start_opa_server(default_policy_dir())
    client = await OpaServer(server.url, timeout_s=2.0).start()
    try:
        yield client
    finally:
        await client.close()
        await server.close()

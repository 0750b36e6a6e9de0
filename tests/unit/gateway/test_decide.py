"""The decide stage: the policy input it builds, the budget scopes it derives, one evaluation per request."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from proxy.budget import MONTH, ScopeLimit
from proxy.catalogue import Catalogue
from proxy.components import open_store
from proxy.config import PromptEstimate
from proxy.endpoints import CHAT
from proxy.endpoints.base import parse_call
from proxy.gateway.analyse import analyse, counted
from proxy.gateway.decide import Decider, ScopeCache, build_input, scope_limits
from proxy.identity import Identity
from proxy.pii import Scanner
from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.decision import BudgetLimit, Decision
from proxy.policy.embedded import EmbeddedRego
from proxy.tokens import TokenEstimator, Vocab
from tests.support.config import REPO, make_config

IDENTITY = Identity("billing-api", "payments", "u-1", "k-1", "api_key")
SECRET_TEXT = "call jane.doe@example.com about the xylophone"


def facts() -> tuple[object, ...]:
    catalogue = Catalogue.from_config(make_config("http://127.0.0.1:1/v1", Path("/tmp")))
    call = parse_call(CHAT, {"model": "demo-model", "messages": [{"role": "user", "content": SECRET_TEXT}]})
    entry = catalogue.resolve("demo-model")
    assert entry is not None
    return call, entry, analyse(call, entry, TokenEstimator(Vocab()), Scanner())


def test_policy_input_has_no_prompt_text_unless_opted_in() -> None:
    call, entry, analysis = facts()
    document = build_input(call, entry, IDENTITY, analysis, {}, 1795000000.0)  # type: ignore[arg-type]
    assert "xylophone" not in str(document) and "jane.doe" not in str(document)
    assert document["request"]["model"] == "gpt-4o"  # the catalogue name, not the alias
    assert document["pii"]["counts"] == {"email": 1}
    opted = build_input(call, entry, IDENTITY, analysis, {}, 1795000000.0, include_prompt=True)  # type: ignore[arg-type]
    assert opted["request"]["prompt"] == SECRET_TEXT


def test_scope_limits_add_tracking_scopes_without_duplicating_named_ones() -> None:
    limits = scope_limits((BudgetLimit("team:payments", limit_usd=5.0, window="day"),), IDENTITY)
    assert [(limit.scope, str(limit.window), limit.limit_micros) for limit in limits] == [
        ("team:payments", "day", 5_000_000), ("app:billing-api", "month", None), ("key:k-1", "month", None)]


class Counting(EmbeddedRego):
    """The shipped policies on the real embedded engine, counting what the decide stage asks of them."""

    def __init__(self) -> None:
        super().__init__(load_bundle(default_policy_dir()))
        self.asked: list[str] = []

    async def evaluate(self, input: dict[str, Any]) -> Decision:
        self.asked.append("decision")
        return await super().evaluate(input)

    async def query(self, rule: str, input: dict[str, Any]) -> Any:
        self.asked.append(rule)
        return await super().query(rule, input)


async def test_one_evaluation_per_request_and_the_scopes_judged_are_the_scopes_reserved(tmp_path: Path) -> None:
    call, entry, analysis = facts()
    engine = Counting()
    async with AsyncExitStack() as stack:
        store = await open_store(make_config("http://127.0.0.1:1/v1", tmp_path), stack)
        decider = Decider(engine, ScopeCache(), store)
        first = await decider.decide(call, entry, IDENTITY, analysis, "r-1")  # type: ignore[arg-type]
        assert engine.asked == ["data.llm.budgets.scopes", "decision"]
        again = await decider.decide(call, entry, IDENTITY, analysis, "r-2")  # type: ignore[arg-type]
        assert engine.asked[2:] == ["decision"]  # the scopes are cached for this identity and model
        other = await decider.decide(call, entry, replace(IDENTITY, app="notebook"), analysis,  # type: ignore[arg-type]
                                     "r-3")
        assert engine.asked[3:] == ["data.llm.budgets.scopes", "decision"]
    limited = {limit.scope for limit in first.scopes if limit.limit_micros is not None}
    assert limited == {"team:payments", "app:billing-api", "user:u-1"}
    # The state read into the input is that of the scopes reserved (with the unlimited key scope tracked).
    assert set(first.input["budget"]) == {limit.scope for limit in first.scopes} == limited | {"key:k-1"}
    assert again.scopes == first.scopes
    assert {limit.scope for limit in other.scopes if limit.limit_micros is not None} == {"team:payments", "user:u-1"}
    assert first.decision.budgets == ()


async def test_a_decision_that_still_names_budgets_has_them_reserved_too(tmp_path: Path) -> None:
    # A policy written before data.llm.budgets.scopes: its decision names the limits.
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "main.rego").write_text('package llm.main\n\ndecision := {"allow": true, "reasons": [], "budgets": '
                                      '[{"scope": "team:legacy", "limit_usd": 5, "window": "day"}]}\n')
    (folder / "budgets.rego").write_text("package llm.budgets\n\nscopes := []\n")
    (folder / "models.rego").write_text("package llm.models\n\nallowed_models := []\n")
    (folder / "egress.rego").write_text('package llm.egress\n\ndecision := {"allow": true, "reasons": []}\n')
    call, entry, analysis = facts()
    async with AsyncExitStack() as stack:
        store = await open_store(make_config("http://127.0.0.1:1/v1", tmp_path), stack)
        decided = await Decider(EmbeddedRego.from_dir(folder), ScopeCache(), store).decide(
            call, entry, IDENTITY, analysis, "r-1")  # type: ignore[arg-type]
    assert [(limit.scope, limit.limit_micros) for limit in decided.scopes if limit.limit_micros] == [
        ("team:legacy", 5_000_000)]
    assert decided.input["budget"] == {}  # judged without its state: nothing named it before the decision


ALLOW_ALL = REPO / "bench" / "policies" / "allow-all"


@pytest.mark.parametrize(("mode", "live", "shadow", "reads"), [
    ("auto", "allow-all", None, False),
    ("auto", "shipped", None, True),
    ("auto", "allow-all", "shipped", True),  # the shadow policy is asked on the same input
    ("auto", "allow-all", "allow-all", False),
    ("exact", "allow-all", None, True),
    ("bound", "shipped", None, False),
])
def test_prompts_are_counted_for_the_decision_when_a_policy_may_read_the_estimate(
        mode: PromptEstimate, live: str, shadow: str | None, reads: bool) -> None:
    engines = {"allow-all": EmbeddedRego.from_dir(ALLOW_ALL), "shipped": EmbeddedRego.from_dir(default_policy_dir())}
    decider = Decider(engines[live], ScopeCache(), None, prompt_estimate=mode,  # type: ignore[arg-type]
                      shadow=None if shadow is None else engines[shadow])
    assert decider.reads_estimate is reads


@pytest.mark.parametrize(("limit", "mode", "holds"), [
    (ScopeLimit("team:t", MONTH), "auto", False),  # a tracking scope
    (ScopeLimit("team:t", MONTH, requests_per_minute=5), "auto", False),  # counts requests, not tokens
    (ScopeLimit("team:t", MONTH, limit_micros=10), "auto", True),
    (ScopeLimit("team:t", MONTH, limit_tokens=10), "auto", True),
    (ScopeLimit("team:t", MONTH, tokens_per_minute=10), "exact", True),
    (ScopeLimit("team:t", MONTH, limit_tokens=10), "bound", False),
])
def test_a_limit_that_holds_tokens_or_cost_needs_the_count(limit: ScopeLimit, mode: PromptEstimate,
                                                           holds: bool) -> None:
    decider = Decider(EmbeddedRego.from_dir(ALLOW_ALL), ScopeCache(), None,  # type: ignore[arg-type]
                      prompt_estimate=mode)
    assert decider.holds_count([limit]) is holds
    assert decider.holds_count([ScopeLimit("app:a", MONTH), limit]) is holds


def test_counted_replaces_a_bound_with_the_count_and_its_cost() -> None:
    call, entry, exact = facts()
    bound = analyse(call, entry, TokenEstimator(Vocab()), Scanner(), exact=False)  # type: ignore[arg-type]
    assert not bound.prompt_exact and bound.prompt_tokens > exact.prompt_tokens  # type: ignore[attr-defined]
    assert bound.max_cost_micros > exact.max_cost_micros  # type: ignore[attr-defined]
    assert counted(bound, call, entry, TokenEstimator(Vocab())) == exact  # type: ignore[arg-type]
    assert counted(exact, call, entry, TokenEstimator(Vocab())) is exact  # type: ignore[arg-type]

"""The budget-state and decide stages: what the policy needs to know, its decision, and the decision log.

Budget limits come from the policy (its decision's `budgets`), yet the policy wants the budget state to
decide. Limits depend only on who is calling, so they are remembered per identity and policy revision:
the first request of an identity under a revision is decided twice (once to learn its scopes, once with
their state); every later one once, after one store read.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .analyse import Analysis
from .budget import BudgetState, BudgetStore, ScopeLimit, usd_to_micros
from .budget.windows import MONTH, Window
from .catalogue import CatalogueEntry
from .endpoints.base import ModelCall
from .identity import Identity
from .ids import new_id
from .policy import input as policy_input
from .policy.decision import BudgetLimit, Decision
from .policy.decision_log import Detail, decision_event, write
from .policy.engine import PolicyEngine
from .policy.errors import PolicyEngineError
from .policy.recent import record_input
from .telemetry.logging import get_logger

decision_log = get_logger("decision_log")
FAIL_OPEN = Decision(allow=True)
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Decided:
    decision: Decision
    revision: str
    input: dict[str, Any]
    seconds: float
    failed_open: bool = False
    budget_states: tuple[BudgetState, ...] = ()


class ScopeMemory:
    """Budget scopes per (policy revision, identity), bounded; a new revision starts afresh."""

    def __init__(self) -> None:
        self._revision = ""
        self._scopes: dict[Identity, tuple[ScopeLimit, ...]] = {}

    def get(self, revision: str, identity: Identity) -> tuple[ScopeLimit, ...] | None:
        if revision != self._revision:
            self._revision, self._scopes = revision, {}
        return self._scopes.get(identity)

    def put(self, revision: str, identity: Identity, scopes: tuple[ScopeLimit, ...]) -> None:
        if revision == self._revision:
            if len(self._scopes) >= _MAX_REMEMBERED:
                self._scopes.clear()
            self._scopes[identity] = scopes


@functools.lru_cache(maxsize=4096)
def scope_limits(budgets: tuple[BudgetLimit, ...], identity: Identity) -> tuple[ScopeLimit, ...]:
    """The decision's limits plus unlimited tracking scopes, so spend is recorded per key, app and team.
    Pure and asked on every request with the same few inputs, hence the cache."""
    limits = [to_scope_limit(b) for b in budgets]
    named = {limit.scope for limit in limits}
    for scope in (f"team:{identity.team}", f"app:{identity.app}", f"key:{identity.key_id}" if identity.key_id
                  else None):
        if scope is not None and scope not in named:
            limits.append(ScopeLimit(scope, MONTH))
    return tuple(limits)


def to_scope_limit(budget: BudgetLimit) -> ScopeLimit:
    if budget.window == "rolling":
        window = Window("rolling", budget.window_seconds or 3600)
    else:
        window = Window(budget.window or "month")
    return ScopeLimit(
        budget.scope, window,
        limit_micros=None if budget.limit_usd is None else usd_to_micros(budget.limit_usd),
        limit_tokens=budget.limit_tokens,
        requests_per_minute=budget.requests_per_minute,
        tokens_per_minute=budget.tokens_per_minute,
    )


def has_spend_limits(limits: Sequence[ScopeLimit]) -> bool:
    return any(limit.limit_micros is not None or limit.limit_tokens is not None for limit in limits)


def request_facts(call: ModelCall, entry: CatalogueEntry) -> policy_input.RequestFacts:
    # The catalogue name, not what the caller typed: an alias must not slip past a rule about the model.
    return policy_input.RequestFacts(call.endpoint.name, entry.name, call.stream, call.max_output_tokens,
                                     call.messages, call.tool_names, call.user, call.endpoint.api)


def model_facts(entry: CatalogueEntry) -> policy_input.ModelFacts:
    prices = entry.prices
    return policy_input.ModelFacts(entry.provider, prices.input, prices.output, entry.context_window,
                                   prices.cached_input)


def budget_facts(states: dict[str, BudgetState]) -> list[policy_input.BudgetState]:
    facts = []
    for scope, state in states.items():
        doc = state.to_policy()
        facts.append(policy_input.BudgetState(scope, doc["spent_usd"], state.percent or 0.0, state.window,
                                              doc["limit_usd"], doc.get("remaining_usd")))
    return facts


def build_input(call: ModelCall, entry: CatalogueEntry, identity: Identity, analysis: Analysis,
                states: dict[str, BudgetState], now: float, include_prompt: bool = False) -> dict[str, Any]:
    estimate = policy_input.Estimate(analysis.prompt_tokens, analysis.max_output_tokens,
                                     analysis.max_cost_micros / 1_000_000)
    # Prompt text only when the operator opted in (policy.include_prompt): rules that read it see it all.
    prompt = "\n".join(text for _, text, _, _ in call.endpoint.texts(call.body)) if include_prompt else None
    return policy_input.build_input(request_facts(call, entry), identity, model_facts(entry), estimate,
                                    analysis.findings, budget_facts(states), now, include_prompt=include_prompt,
                                    prompt_text=prompt)


async def decide(engine: PolicyEngine, store: BudgetStore, memory: ScopeMemory, call: ModelCall,
                 entry: CatalogueEntry, identity: Identity, analysis: Analysis, *, fail_open: bool,
                 request_id: str, include_prompt: bool = False,
                 decision_log: Detail = "compact") -> tuple[Decided, tuple[ScopeLimit, ...]]:
    """The decision for this request and the budget scopes to reserve on. Raises PolicyEngineError
    (the caller answers 503) unless the operator configured fail-open."""
    now = time.time()
    revision = engine.revision
    scopes = memory.get(revision, identity)
    states: dict[str, BudgetState] = {}
    if scopes is None:
        first = await _evaluate(engine, build_input(call, entry, identity, analysis, {}, now, include_prompt),
                                fail_open, request_id, decision_log)
        scopes = scope_limits(first.decision.budgets, identity)
        if not first.failed_open:
            memory.put(revision, identity, scopes)
        if not has_spend_limits(scopes):
            return first, scopes
    if has_spend_limits(scopes):
        states = await store.state(scopes, now)
    decided = await _evaluate(engine, build_input(call, entry, identity, analysis, states, now, include_prompt),
                              fail_open, request_id, decision_log)
    decided = dataclasses.replace(decided, budget_states=tuple(states.values()))
    if decided.decision.budgets:
        scopes = scope_limits(decided.decision.budgets, identity)
    return decided, scopes


async def _evaluate(engine: PolicyEngine, document: dict[str, Any], fail_open: bool, request_id: str,
                    detail: Detail = "compact") -> Decided:
    started = time.perf_counter_ns()
    revision = engine.revision
    try:
        decision = await engine.evaluate(document)
    except PolicyEngineError as exc:
        elapsed = time.perf_counter_ns() - started
        log_decision(document, None, revision, elapsed, request_id, error=str(exc), detail=detail)
        if not fail_open:
            raise
        decision_log.error("policy_fail_open", error=str(exc), revision=revision)
        return Decided(FAIL_OPEN, revision, document, elapsed / 1e9, failed_open=True)
    elapsed = time.perf_counter_ns() - started
    record_input(engine, "data.llm.main.decision", document)  # the next policy version is checked on it
    log_decision(document, decision, revision, elapsed, request_id, detail=detail)
    return Decided(decision, revision, document, elapsed / 1e9)


def log_decision(document: dict[str, Any], decision: Decision | None, revision: str, eval_ns: int,
                 request_id: str, error: str | None = None, detail: Detail = "compact") -> None:
    event = decision_event(decision_id=new_id(), entrypoint="data.llm.main.decision", input=document,
                           result=None if decision is None else decision.as_dict(), revision=revision,
                           eval_ns=eval_ns, timestamp=time.time(), request_id=request_id, error=error, detail=detail)
    write(decision_log, event)

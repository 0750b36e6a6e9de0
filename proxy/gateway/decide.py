"""The scopes, budget-state and decide stages: one policy evaluation per request, and its decision log.

The budget scopes come first, from their own entry point (data.llm.budgets.scopes), whose input names only
who is calling and which model: never the spend. They are cached per policy revision and those facts,
their state is read, and the decision is asked once with it, so the scopes judged are the scopes reserved.
A decision may still name `budgets` (policies written before that entry point): they are reserved too,
though judged without their state.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proxy.budget import BudgetState, BudgetStore, ScopeLimit, usd_to_micros
from proxy.budget.windows import MONTH, Window
from proxy.catalogue import CatalogueEntry
from proxy.config import PromptEstimate
from proxy.endpoints.base import ModelCall
from proxy.gateway.analyse import Analysis
from proxy.identity import Identity
from proxy.ids import new_id
from proxy.policy import input as policy_input
from proxy.policy.decision import BudgetLimit, Decision, parse_budgets
from proxy.policy.decision_log import Detail, decision_event, write
from proxy.policy.engine import PolicyEngine
from proxy.policy.errors import PolicyEngineError
from proxy.policy.recent import record_input
from proxy.telemetry.logging import get_logger

decision_log = get_logger("decision_log")
FAIL_OPEN = Decision(allow=True)
DECISION = "data.llm.main.decision"
SCOPES = "data.llm.budgets.scopes"
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Decided:
    decision: Decision
    revision: str
    input: dict[str, Any]
    seconds: float
    scopes: tuple[ScopeLimit, ...]  # what the reserve stage reserves on: the scopes this decision judged
    failed_open: bool = False
    budget_states: tuple[BudgetState, ...] = ()


class ScopeCache:
    """data.llm.budgets.scopes per (revision, identity, endpoint, model), bounded; a new revision starts
    afresh."""

    def __init__(self, size: int = _MAX_REMEMBERED) -> None:
        self._revision = ""
        self._size = size
        self._known: OrderedDict[tuple[Identity, str, str], tuple[BudgetLimit, ...]] = OrderedDict()

    async def scopes(self, engine: PolicyEngine, identity: Identity, call: ModelCall,
                     entry: CatalogueEntry) -> tuple[BudgetLimit, ...]:
        """Raises PolicyEngineError, like the decision: an ill-typed answer is an engine error."""
        revision = engine.revision
        if revision != self._revision:
            self._revision, self._known = revision, OrderedDict()
        key = (identity, call.endpoint.name, entry.name)
        if key in self._known:
            return self._known[key]
        answer = await engine.query(SCOPES, scopes_input(identity, call, entry))
        limits = parse_budgets(answer if answer is not None else [], "scopes")
        if revision == self._revision:
            if len(self._known) >= self._size:
                self._known.popitem(last=False)
            self._known[key] = limits
        return limits


def scopes_input(identity: Identity, call: ModelCall, entry: CatalogueEntry) -> dict[str, Any]:
    """The input of data.llm.budgets.scopes (policies/schema/scopes_input.v1.json)."""
    return {"version": policy_input.INPUT_VERSION, "identity": policy_input.identity_input(identity),
            "request": {"endpoint": call.endpoint.name, "api": call.endpoint.api, "model": entry.name}}


@functools.lru_cache(maxsize=4096)
def scope_limits(budgets: tuple[BudgetLimit, ...], identity: Identity) -> tuple[ScopeLimit, ...]:
    """The policy's limits plus unlimited tracking scopes, so spend is recorded per key, app and team.
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


@dataclass(frozen=True, slots=True)
class Decider:
    """What the decide stage uses: the engine, the scope cache, the store to read state from, and the
    operator's choices about failing open and showing the prompt."""

    engine: PolicyEngine
    scopes: ScopeCache
    store: BudgetStore
    fail_open: bool = False
    include_prompt: bool = False
    decision_log: Detail = "compact"
    prompt_estimate: PromptEstimate = "auto"
    shadow: PolicyEngine | None = None  # the shadow policy sees the same input

    @property
    def reads_estimate(self) -> bool:
        """Whether prompts must be tokenized before the decision (else input.estimate holds a bound)."""
        if self.prompt_estimate != "auto":
            return self.prompt_estimate == "exact"
        return self.engine.reads_estimate or (self.shadow is not None and self.shadow.reads_estimate)

    def holds_count(self, scopes: Sequence[ScopeLimit]) -> bool:
        """Whether a limit on these scopes holds the prompt's tokens or cost: then it holds the exact count."""
        return self.prompt_estimate != "bound" and (
            has_spend_limits(scopes) or any(limit.tokens_per_minute is not None for limit in scopes))

    async def decide(self, call: ModelCall, entry: CatalogueEntry, identity: Identity, analysis: Analysis,
                     request_id: str) -> Decided:
        """Raises PolicyEngineError (the caller answers 503) unless the operator configured fail-open."""
        now = time.time()
        try:
            named = await self.scopes.scopes(self.engine, identity, call, entry)
        except PolicyEngineError as exc:
            if not self.fail_open:
                raise
            decision_log.error("policy_fail_open", error=str(exc), revision=self.engine.revision)
            named = ()
        scopes = scope_limits(named, identity)
        states = await self.store.state(scopes, now) if has_spend_limits(scopes) else {}
        document = build_input(call, entry, identity, analysis, states, now, self.include_prompt)
        decided = await evaluate(self.engine, document, self.fail_open, request_id, scopes,
                                 tuple(states.values()), self.decision_log)
        extra = tuple(b for b in decided.decision.budgets if b not in named)
        if extra:
            return dataclasses.replace(decided, scopes=scope_limits(named + extra, identity))
        return decided


async def evaluate(engine: PolicyEngine, document: dict[str, Any], fail_open: bool, request_id: str,
                   scopes: tuple[ScopeLimit, ...], states: tuple[BudgetState, ...],
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
        return Decided(FAIL_OPEN, revision, document, elapsed / 1e9, scopes, failed_open=True,
                       budget_states=states)
    elapsed = time.perf_counter_ns() - started
    record_input(engine, DECISION, document)  # the next policy version is checked on it
    log_decision(document, decision, revision, elapsed, request_id, detail=detail)
    return Decided(decision, revision, document, elapsed / 1e9, scopes, budget_states=states)


def log_decision(document: dict[str, Any], decision: Decision | None, revision: str, eval_ns: int,
                 request_id: str, error: str | None = None, detail: Detail = "compact") -> None:
    event = decision_event(decision_id=new_id(), entrypoint=DECISION, input=document,
                           result=None if decision is None else decision.as_dict(), revision=revision,
                           eval_ns=eval_ns, timestamp=time.time(), request_id=request_id, error=error, detail=detail)
    write(decision_log, event)

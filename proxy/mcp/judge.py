"""One client message judged: its facts and PII findings, the policy's decision (budget state included),
the rate limits reserved, and the message as it will be forwarded (arguments redacted). I/O only through
the policy engine and the budget store, both passed in."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.budget import BudgetExceeded, BudgetStore, RateLimited, ScopeLimit, StoreUnavailable
from proxy.gateway.decide import budget_facts, to_scope_limit
from proxy.identity import Identity
from proxy.ids import new_id
from proxy.pii import Placeholders, Scanner
from proxy.policy.decision import McpDecision
from proxy.policy.decision_log import decision_event, write
from proxy.policy.engine import PolicyEngine
from proxy.policy.errors import PolicyEngineError
from proxy.telemetry.logging import get_logger

from . import content, jsonrpc
from .input import MessageFacts, ToolFacts, build_mcp_input

decision_log = get_logger("decision_log")
ENTRYPOINT = "data.llm.mcp.decision"
MCP_FAIL_OPEN = McpDecision(allow=True)
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Refusal:
    code: int
    name: str  # the proxy's error code in words, as in its other errors and metric labels
    message: str
    data: dict[str, Any]
    outcome: str  # denied | rate_limited | policy_error


@dataclass(frozen=True, slots=True)
class Verdict:
    message: jsonrpc.Message
    facts: MessageFacts
    tool: ToolFacts | None
    decision: McpDecision
    revision: str
    failed_open: bool
    findings: content.Scan
    refusal: Refusal | None = None
    forward: dict[str, Any] | None = None  # the message to send (None when refused)
    placeholders: Placeholders | None = None  # set when results get the caller's values restored
    redacted: tuple[str, ...] = ()  # types replaced in the arguments

    @property
    def decision_label(self) -> str:
        if self.failed_open:
            return "fail_open"
        return "allow" if self.refusal is None else "deny" if self.refusal.outcome == "denied" else "error"


class ScopeMemory:
    """Budget scopes per (policy revision, identity, server, tool), so their state can go into the input."""

    def __init__(self) -> None:
        self._revision = ""
        self._scopes: OrderedDict[tuple[Identity, str, str | None], tuple[ScopeLimit, ...]] = OrderedDict()

    def get(self, revision: str, key: tuple[Identity, str, str | None]) -> tuple[ScopeLimit, ...]:
        if revision != self._revision:
            self._revision, self._scopes = revision, OrderedDict()
        return self._scopes.get(key, ())

    def put(self, revision: str, key: tuple[Identity, str, str | None], scopes: tuple[ScopeLimit, ...]) -> None:
        if revision == self._revision:
            self._scopes[key] = scopes
            if len(self._scopes) > _MAX_REMEMBERED:
                self._scopes.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Judge:
    engine: PolicyEngine
    store: BudgetStore
    scanner: Scanner
    memory: ScopeMemory
    fail_open: bool
    pseudonym_key: bytes | None = None

    async def judge(self, message: jsonrpc.Message, facts: MessageFacts, tool: ToolFacts | None,
                    identity: Identity, request_id: str) -> Verdict:
        root, scanned = scanned_part(message)
        findings = content.scan(self.scanner, scanned, root)
        key = (identity, facts.server, tool.name if tool else facts.method)
        revision = self.engine.revision
        remembered = self.memory.get(revision, key)
        states = await self.store.state(remembered) if remembered else {}
        document = build_mcp_input(facts, identity, tool, findings.findings, budget_facts(states), time.time())
        try:
            decision, failed_open = await self.decide(document, findings, request_id), False
        except PolicyEngineError:
            if not self.fail_open:
                return Verdict(message, facts, tool, McpDecision(allow=False), revision, False, findings, Refusal(
                    jsonrpc.POLICY_UNAVAILABLE, "policy_unavailable",
                    "The policy engine could not decide on this message, so it was not forwarded.", {},
                    "policy_error"))
            decision, failed_open = MCP_FAIL_OPEN, True
        verdict = Verdict(message, facts, tool, decision, revision, failed_open, findings)
        if not decision.allow:
            reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
            text = "; ".join(r.message for r in decision.reasons) or "denied by policy"
            return _refused(verdict, Refusal(jsonrpc.POLICY_DENIED, reasons[0]["code"] if reasons else "policy_denied",
                                             text, {"reasons": reasons, "policy_revision": revision}, "denied"))
        try:
            scopes = tuple(to_scope_limit(b) for b in decision.budgets)
        except ValueError as exc:  # a scope name the store cannot hold: the policy is broken, fail closed
            return _refused(verdict, Refusal(jsonrpc.POLICY_UNAVAILABLE, "policy_unavailable",
                                             f"The policy's rate limits cannot be applied: {exc}.", {},
                                             "policy_error"))
        if scopes != remembered and not failed_open:
            self.memory.put(revision, key, scopes)
        if scopes:
            refusal = await self.take(scopes, request_id)
            if refusal is not None:
                return _refused(verdict, refusal)
        return self.enforced(verdict, root)

    async def decide(self, document: dict[str, Any], findings: content.Scan, request_id: str) -> McpDecision:
        started = time.perf_counter_ns()
        revision = self.engine.revision
        decision: McpDecision | None = None
        error: str | None = None
        try:
            decision = await self.engine.evaluate_mcp(document)
            return decision
        except PolicyEngineError as exc:
            error = str(exc)
            raise
        finally:
            event = decision_event(decision_id=new_id(), entrypoint=ENTRYPOINT, input=loggable(document, findings),
                                   result=None if decision is None else decision.as_dict(), revision=revision,
                                   eval_ns=time.perf_counter_ns() - started, timestamp=time.time(),
                                   request_id=request_id, error=error)
            write(decision_log, event)

    async def take(self, scopes: tuple[ScopeLimit, ...], request_id: str) -> Refusal | None:
        """One call counted on every scope (cost 0, one unit as "tokens"), committed at once."""
        try:
            reservation = await self.store.reserve(request_id, scopes, 0, 1)
        except (RateLimited, BudgetExceeded) as exc:
            return Refusal(jsonrpc.RATE_LIMITED, exc.code or "rate_limit_exceeded", exc.message,
                           {"scope": exc.scope, "retry_after_s": exc.retry_after_s}, "rate_limited")
        except StoreUnavailable:
            return Refusal(jsonrpc.POLICY_UNAVAILABLE, "budget_store_unavailable",
                           "The rate-limit store is unavailable, so the message was not forwarded.", {},
                           "policy_error")
        await self.store.settle(reservation, 0, 1)
        return None

    async def visible(self, tools: Mapping[str, Mapping[str, Any]], facts: MessageFacts, identity: Identity,
                      request_id: str) -> set[str]:
        """The listed tools this caller may call: each is decided as a call with no arguments would be,
        so tools/list never shows a tool whose calls the same rules deny. An engine error hides the tool."""
        shown = set()
        now = time.time()
        for name, hints in tools.items():
            listing = dataclasses.replace(facts, method="tools/call", name=name, listing=True)
            document = build_mcp_input(listing, identity, ToolFacts(name, hints), (), (), now)
            try:
                decision = await self.decide(document, content.NO_FINDINGS, request_id)
            except PolicyEngineError:
                if self.fail_open:
                    shown.add(name)
                continue
            if decision.allow:
                shown.add(name)
        return shown

    def enforced(self, verdict: Verdict, root: str) -> Verdict:
        """The message to forward: arguments (or params) with the decision's types replaced."""
        message, decision = verdict.message, verdict.decision
        types = frozenset(decision.redact_arguments)
        hits = {m.type for found in verdict.findings.matches.values() for m in found} & types
        if not hits:
            return _replace(verdict, forward=message.raw)
        placeholders = Placeholders(self.pseudonym_key)
        counts: dict[str, int] = {}
        part = content.redacted(scanned_part(message)[1], verdict.findings, types, root, placeholders, counts)
        params = dict(message.params)
        if root == "arguments":
            params["arguments"] = part
        else:
            params = part
        return _replace(verdict, forward={**message.raw, "params": params}, redacted=tuple(sorted(counts)),
                        placeholders=placeholders if decision.restore else None)


def scanned_part(message: jsonrpc.Message) -> tuple[str, Any]:
    """Where a message's user data lives: a call's arguments, a response's result, else its params."""
    if message.method in ("tools/call", "prompts/get"):
        return "arguments", message.params.get("arguments", {})
    if message.kind == "response":
        return "result", message.raw.get("result", message.raw.get("error"))
    return "params", dict(message.params)


def loggable(document: dict[str, Any], findings: content.Scan) -> dict[str, Any]:
    """The input for the decision log: a resource URI holding PII or a secret is not written out."""
    if not any(path in ("params.uri", "params.name") for path in findings.matches):
        return document
    return {**document, "request": {**document["request"], "name": "<redacted>"}}


def _refused(verdict: Verdict, refusal: Refusal) -> Verdict:
    return _replace(verdict, refusal=refusal)


def _replace(verdict: Verdict, **changes: Any) -> Verdict:
    return dataclasses.replace(verdict, **changes)

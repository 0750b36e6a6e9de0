"""Policy input v1: a pure function from typed request facts to the JSON document Rego sees.

No prompt text appears in the input unless the operator opts in (include_prompt).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from proxy.identity import Identity
from proxy.pii.types import Finding as PiiFinding  # the scanner's findings go in as they are

INPUT_VERSION = 1

Endpoint = Literal["chat.completions", "completions", "responses", "embeddings", "messages", "models.list"]
Api = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    endpoint: Endpoint
    model: str | None
    stream: bool = False
    max_tokens: int | None = None
    messages: int = 0
    tool_names: tuple[str, ...] = ()
    user: str | None = None
    api: Api = "openai"  # the API the caller speaks (the front door), whatever the provider


@dataclass(frozen=True, slots=True)
class ModelFacts:
    provider: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    context_window: int | None = None
    cached_input_usd_per_mtok: float | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    prompt_tokens: int
    max_output_tokens: int
    max_cost_usd: float


@dataclass(frozen=True, slots=True)
class BudgetState:
    scope: str
    spent_usd: float
    percent: float
    window: str
    limit_usd: float | None = None
    remaining_usd: float | None = None


def build_input(
    request: RequestFacts,
    identity: Identity,
    model: ModelFacts | None,
    estimate: Estimate,
    pii: Sequence[PiiFinding],
    budget: Iterable[BudgetState],
    now: float,
    *,
    include_prompt: bool = False,
    prompt_text: str | None = None,
) -> dict[str, Any]:
    request_doc = request_input(request)
    if include_prompt and prompt_text is not None:
        request_doc["prompt"] = prompt_text
    return {
        "version": INPUT_VERSION,
        "request": request_doc,
        "identity": identity_input(identity),
        "model": None if model is None else model_input(model),
        "estimate": {
            "prompt_tokens": estimate.prompt_tokens,
            "max_output_tokens": estimate.max_output_tokens,
            "max_cost_usd": estimate.max_cost_usd,
        },
        "pii": pii_input(pii),
        "budget": budget_input(budget),
        "time": time_input(now),
    }


def build_models_input(identity: Identity, models: Sequence[str]) -> dict[str, Any]:
    """Input of data.llm.models.allowed_models: which of these catalogue models may this caller use."""
    return {"version": INPUT_VERSION, "identity": identity_input(identity), "models": list(models)}


def build_egress_input(host: str, port: int, method: str, identity: Identity) -> dict[str, Any]:
    return {
        "version": INPUT_VERSION,
        "host": host,
        "port": port,
        "method": method,
        "identity": identity_input(identity),
    }


def request_input(request: RequestFacts) -> dict[str, Any]:
    return {
        "endpoint": request.endpoint,
        "model": request.model,
        "stream": request.stream,
        "max_tokens": request.max_tokens,
        "messages": request.messages,
        "tools": list(request.tool_names),
        "user": request.user,
        "api": request.api,
    }


def identity_input(identity: Identity) -> dict[str, Any]:
    return {
        "app": identity.app,
        "team": identity.team,
        "user": identity.user,
        "key_id": identity.key_id,
        "source": identity.source,
        "admin": identity.admin,
        "method": identity.method,
        "claims": identity.claims.to_json(),
    }


def model_input(model: ModelFacts) -> dict[str, Any]:
    return {
        "provider": model.provider,
        "input_usd_per_mtok": model.input_usd_per_mtok,
        "cached_input_usd_per_mtok": model.cached_input_usd_per_mtok,
        "output_usd_per_mtok": model.output_usd_per_mtok,
        "context_window": model.context_window,
    }


def pii_input(findings: Sequence[PiiFinding]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.type] = counts.get(finding.type, 0) + finding.count
    return {
        "types": sorted(counts),
        "counts": counts,
        "findings": [{"type": f.type, "count": f.count, "path": f.path} for f in findings],
    }


def budget_input(states: Iterable[BudgetState]) -> dict[str, Any]:
    # Keyed by scope so policies can look one up; when a scope has several windows (day and month),
    # the one closest to exhaustion is the one a policy must react to.
    chosen: dict[str, BudgetState] = {}
    for state in states:
        current = chosen.get(state.scope)
        if current is None or state.percent > current.percent:
            chosen[state.scope] = state
    return {
        scope: {
            "scope": s.scope,
            "limit_usd": s.limit_usd,
            "spent_usd": s.spent_usd,
            "remaining_usd": s.remaining_usd,
            "percent": s.percent,
            "window": s.window,
        }
        for scope, s in chosen.items()
    }


def time_input(now: float) -> dict[str, Any]:
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    # ISO weekday: 1 = Monday ... 7 = Sunday.
    return {"unix": now, "weekday": moment.isoweekday(), "hour_utc": moment.hour}

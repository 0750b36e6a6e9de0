"""Decisions: strict parsing of what a policy returned, and rendering a denial as an error.

Anything policies/schema/decision.v1.json does not allow (unknown key, wrong type, undefined
result) raises PolicyEngineError, so a broken policy fails closed instead of half-applying.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from proxy.errors import Forbidden
from proxy.policy.answers import loads
from proxy.policy.errors import PolicyEngineError

Window = Literal["day", "month", "rolling"]
WINDOWS: frozenset[str] = frozenset({"day", "month", "rolling"})

# Policy-set headers are informational extras: an x- prefix keeps them away from framing and
# security headers, and token characters only (no CR/LF) rule out header injection.
HEADER_NAME = re.compile(r"[xX]-[A-Za-z0-9!#$%&'*+.^_`|~-]+")
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")

DECISION_KEYS = frozenset(
    {"allow", "reasons", "audit", "model", "max_tokens", "redact", "restore", "budgets", "headers"}
)
BUDGET_KEYS = frozenset(
    {"scope", "limit_usd", "limit_tokens", "window", "window_seconds", "requests_per_minute", "tokens_per_minute"}
)
BUDGET_LIMIT_KEYS = ("limit_usd", "limit_tokens", "requests_per_minute", "tokens_per_minute")
EGRESS_KEYS = frozenset({"allow", "reasons", "provider"})
MCP_KEYS = frozenset({"allow", "reasons", "audit", "redact_arguments", "redact_results", "restore", "budgets"})


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    scope: str
    limit_usd: float | None = None
    limit_tokens: int | None = None
    window: Window | None = None
    window_seconds: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    reasons: tuple[Reason, ...] = ()
    audit: tuple[Reason, ...] = ()
    model: str | None = None
    max_tokens: int | None = None
    redact: tuple[str, ...] = ()
    restore: bool = False
    budgets: tuple[BudgetLimit, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The canonical JSON document (for decision logs, shadow diffs and `policy eval`)."""
        doc: dict[str, Any] = {
            "allow": self.allow,
            "reasons": [_reason_dict(r) for r in self.reasons],
            "audit": [_reason_dict(r) for r in self.audit],
        }
        if self.model is not None:
            doc["model"] = self.model
        if self.max_tokens is not None:
            doc["max_tokens"] = self.max_tokens
        if self.redact:
            doc["redact"] = list(self.redact)
        if self.restore:
            doc["restore"] = True
        if self.budgets:
            doc["budgets"] = [_budget_dict(b) for b in self.budgets]
        if self.headers:
            doc["headers"] = dict(self.headers)
        return doc


@dataclass(frozen=True, slots=True)
class EgressDecision:
    allow: bool
    reasons: tuple[Reason, ...] = ()
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class McpDecision:
    """data.llm.mcp.decision (policies/schema/mcp_decision.v1.json): one MCP message's fate."""

    allow: bool
    reasons: tuple[Reason, ...] = ()
    audit: tuple[Reason, ...] = ()
    redact_arguments: tuple[str, ...] = ()
    redact_results: tuple[str, ...] = ()
    restore: bool = False
    budgets: tuple[BudgetLimit, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"allow": self.allow, "reasons": [_reason_dict(r) for r in self.reasons],
                               "audit": [_reason_dict(r) for r in self.audit]}
        for key in ("redact_arguments", "redact_results"):
            if getattr(self, key):
                doc[key] = list(getattr(self, key))
        if self.restore:
            doc["restore"] = True
        if self.budgets:
            doc["budgets"] = [_budget_dict(b) for b in self.budgets]
        return doc


def parse_mcp_decision(obj: object) -> McpDecision:
    doc = _object(obj, "mcp decision", MCP_KEYS, required=("allow", "reasons"))
    return McpDecision(
        allow=_bool(doc["allow"], "allow"),
        reasons=_reasons(doc["reasons"], "reasons"),
        audit=_reasons(doc.get("audit", []), "audit"),
        redact_arguments=_names(doc.get("redact_arguments", []), "redact_arguments"),
        redact_results=_names(doc.get("redact_results", []), "redact_results"),
        restore=_bool(doc.get("restore", False), "restore"),
        budgets=parse_budgets(doc.get("budgets", [])),
    )


@functools.lru_cache(maxsize=2048)
def decision_from_json(raw: str) -> Decision:
    """Most requests get one of a few distinct decisions: parse each distinct answer once (~20 us).
    Decisions are frozen, so sharing one between requests is safe."""
    return parse_decision(loads(raw))


def parse_decision(obj: object) -> Decision:
    doc = _object(obj, "decision", DECISION_KEYS, required=("allow", "reasons"))
    return Decision(
        allow=_bool(doc["allow"], "allow"),
        reasons=_reasons(doc["reasons"], "reasons"),
        audit=_reasons(doc.get("audit", []), "audit"),
        model=_optional(doc, "model", _name),
        max_tokens=_optional(doc, "max_tokens", _positive_int),
        redact=_names(doc.get("redact", []), "redact"),
        restore=_bool(doc.get("restore", False), "restore"),
        budgets=parse_budgets(doc.get("budgets", [])),
        headers=_headers(doc.get("headers", {})),
    )


def parse_budgets(obj: object, what: str = "budgets") -> tuple[BudgetLimit, ...]:
    """A list of budget limits: the decision's `budgets`, or what data.llm.budgets.scopes answers."""
    return tuple(_budget(b, f"{what}[{i}]") for i, b in enumerate(_list(obj, what)))


def parse_egress_decision(obj: object) -> EgressDecision:
    doc = _object(obj, "egress decision", EGRESS_KEYS, required=("allow", "reasons"))
    provider = doc.get("provider")
    return EgressDecision(
        allow=_bool(doc["allow"], "allow"),
        reasons=_reasons(doc["reasons"], "reasons"),
        provider=None if provider is None else _name(provider, "provider"),
    )


def parse_allowed_models(obj: object, asked: Sequence[str]) -> list[str]:
    """The allowed subset, in the order asked; a name that was not asked about is a policy bug."""
    names = _names(obj, "allowed_models")
    unknown = set(names) - set(asked)
    if unknown:
        raise PolicyEngineError(f"allowed_models returned models that were not asked about: {sorted(unknown)}")
    allowed = set(names)
    return [name for name in asked if name in allowed]


def denial_error(decision: Decision, revision: str) -> Forbidden:
    messages = [r.message for r in decision.reasons] or ["request denied by policy"]
    code = decision.reasons[0].code if decision.reasons else "policy_denied"
    return Forbidden("; ".join(messages), code=code, headers={"x-policy-revision": revision})


def _object(obj: object, what: str, keys: frozenset[str], required: tuple[str, ...]) -> dict[str, Any]:
    if obj is None:
        raise PolicyEngineError(f"{what} is undefined: the policy produced no result")
    if not isinstance(obj, dict):
        raise PolicyEngineError(f"{what} must be an object, got {_type(obj)}")
    unknown = sorted(set(obj) - keys)
    if unknown:
        raise PolicyEngineError(f"{what} has unknown keys: {', '.join(map(str, unknown))}")
    for key in required:
        if key not in obj:
            raise PolicyEngineError(f"{what} is missing {key!r}")
    return cast("dict[str, Any]", obj)


def _optional(doc: dict[str, Any], key: str, parse: Any) -> Any:
    return parse(doc[key], key) if key in doc else None


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyEngineError(f"{where} must be a boolean, got {_type(value)}")
    return value


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PolicyEngineError(f"{where} must be a non-empty string, got {_type(value)}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise PolicyEngineError(f"{where} must be an array, got {_type(value)}")
    return value


def _names(value: object, where: str) -> tuple[str, ...]:
    names = tuple(_name(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))
    if len(set(names)) != len(names):
        raise PolicyEngineError(f"{where} has duplicate entries")
    return names


def _reasons(value: object, where: str) -> tuple[Reason, ...]:
    reasons = []
    for i, item in enumerate(_list(value, where)):
        doc = _object(item, f"{where}[{i}]", frozenset({"code", "message"}), required=("code", "message"))
        message = doc["message"]
        if not isinstance(message, str):
            raise PolicyEngineError(f"{where}[{i}].message must be a string, got {_type(message)}")
        reasons.append(Reason(_name(doc["code"], f"{where}[{i}].code"), message))
    return tuple(reasons)


def _positive_int(value: object, where: str) -> int:
    # JSON Schema's "integer" accepts 2048.0; Rego arithmetic can produce it.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyEngineError(f"{where} must be a positive integer, got {value!r}")
    return value


def _non_negative_number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PolicyEngineError(f"{where} must be a non-negative number, got {value!r}")
    return float(value)


def _budget(value: object, where: str) -> BudgetLimit:
    doc = _object(value, where, BUDGET_KEYS, required=("scope",))
    if not any(key in doc for key in BUDGET_LIMIT_KEYS):
        raise PolicyEngineError(f"{where} sets no limit (one of {', '.join(BUDGET_LIMIT_KEYS)})")
    window = doc.get("window")
    if window is not None and window not in WINDOWS:
        raise PolicyEngineError(f"{where}.window must be one of day, month, rolling, got {window!r}")
    if window == "rolling" and "window_seconds" not in doc:
        raise PolicyEngineError(f"{where}: a rolling window needs window_seconds")
    return BudgetLimit(
        scope=_name(doc["scope"], f"{where}.scope"),
        limit_usd=_optional(doc, "limit_usd", _non_negative_number),
        limit_tokens=_optional(doc, "limit_tokens", _positive_int),
        window=cast("Window | None", window),
        window_seconds=_optional(doc, "window_seconds", _positive_int),
        requests_per_minute=_optional(doc, "requests_per_minute", _positive_int),
        tokens_per_minute=_optional(doc, "tokens_per_minute", _positive_int),
    )


def _headers(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PolicyEngineError(f"headers must be an object, got {_type(value)}")
    for name, text in value.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise PolicyEngineError(f"headers: {name!r} is not an x- header name")
        if not isinstance(text, str) or not HEADER_VALUE.fullmatch(text):
            raise PolicyEngineError(f"headers[{name!r}] must be a printable ASCII string")
    return dict(value)


def _reason_dict(reason: Reason) -> dict[str, str]:
    return {"code": reason.code, "message": reason.message}


def _budget_dict(budget: BudgetLimit) -> dict[str, Any]:
    doc: dict[str, Any] = {"scope": budget.scope}
    for key in sorted(BUDGET_KEYS - {"scope"}):
        value = getattr(budget, key)
        if value is not None:
            doc[key] = value
    return doc


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__

"""Strict decision parsing: anything the schema refuses is a PolicyEngineError; denials render as 403."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from proxy.errors import Forbidden
from proxy.policy.bundle import default_policy_dir
from proxy.policy.decision import (
    BudgetLimit,
    Decision,
    Reason,
    denial_error,
    parse_allowed_models,
    parse_decision,
    parse_egress_decision,
)
from proxy.policy.errors import PolicyEngineError

SCHEMA = json.loads((default_policy_dir() / "schema" / "decision.v1.json").read_text())
FULL = {
    "allow": True,
    "reasons": [{"code": "near_budget", "message": "team payments at 91%"}],
    "audit": [{"code": "prompt_too_large", "message": "would deny"}],
    "model": "gpt-4o-mini",
    "max_tokens": 512,
    "redact": ["email"],
    "restore": True,
    "budgets": [
        {"scope": "team:payments", "limit_usd": 100, "window": "month"},
        {"scope": "app:x", "requests_per_minute": 60, "window": "rolling", "window_seconds": 60},
    ],
    "headers": {"x-policy-note": "downgraded"},
}



def with_budget(budget: dict[str, Any]) -> dict[str, Any]:
    return {"allow": True, "reasons": [], "budgets": [budget]}


MALFORMED: list[tuple[str, Any]] = [
    ("undefined", None),
    ("multiple results", [{"allow": True, "reasons": []}, {"allow": False, "reasons": []}]),
    ("not an object", "allow"),
    ("missing allow", {"reasons": []}),
    ("missing reasons", {"allow": True}),
    ("allow as string", {"allow": "true", "reasons": []}),
    ("allow as number", {"allow": 1, "reasons": []}),
    ("unknown key", {"allow": True, "reasons": [], "rewrite": "gpt-4o"}),
    ("reasons not a list", {"allow": False, "reasons": {"code": "x", "message": "y"}}),
    ("reason without message", {"allow": False, "reasons": [{"code": "x"}]}),
    ("reason with extra key", {"allow": False, "reasons": [{"code": "x", "message": "y", "why": 1}]}),
    ("reason code empty", {"allow": False, "reasons": [{"code": "", "message": "y"}]}),
    ("audit not a list", {"allow": True, "reasons": [], "audit": "x"}),
    ("model empty", {"allow": True, "reasons": [], "model": ""}),
    ("max_tokens zero", {"allow": True, "reasons": [], "max_tokens": 0}),
    ("max_tokens fractional", {"allow": True, "reasons": [], "max_tokens": 10.5}),
    ("max_tokens bool", {"allow": True, "reasons": [], "max_tokens": True}),
    ("redact not strings", {"allow": True, "reasons": [], "redact": [1]}),
    ("redact duplicates", {"allow": True, "reasons": [], "redact": ["email", "email"]}),
    ("restore as string", {"allow": True, "reasons": [], "restore": "yes"}),
    ("budget without scope", with_budget({"limit_usd": 1})),
    ("budget without limit", with_budget({"scope": "team:a", "window": "day"})),
    ("budget unknown window", with_budget({"scope": "a", "limit_usd": 1, "window": "year"})),
    ("rolling without seconds", with_budget({"scope": "a", "limit_usd": 1, "window": "rolling"})),
    ("budget unknown key", with_budget({"scope": "a", "limit_usd": 1, "cap": 2})),
    ("negative usd", with_budget({"scope": "a", "limit_usd": -1})),
    ("header not x-", {"allow": True, "reasons": [], "headers": {"set-cookie": "a=b"}}),
    ("header injection", {"allow": True, "reasons": [], "headers": {"x-a": "b\r\nset-cookie: c"}}),
    ("header value not string", {"allow": True, "reasons": [], "headers": {"x-a": 1}}),
]


def test_full_decision_parses_into_typed_values() -> None:
    decision = parse_decision(FULL)
    assert decision.allow
    assert decision.reasons == (Reason("near_budget", "team payments at 91%"),)
    assert decision.audit == (Reason("prompt_too_large", "would deny"),)
    assert decision.model == "gpt-4o-mini"
    assert decision.max_tokens == 512
    assert decision.redact == ("email",)
    assert decision.restore is True
    assert decision.budgets[0] == BudgetLimit(scope="team:payments", limit_usd=100.0, window="month")
    assert decision.budgets[1].window_seconds == 60
    assert decision.headers == {"x-policy-note": "downgraded"}


def test_minimal_decision_has_no_obligations() -> None:
    assert parse_decision({"allow": True, "reasons": []}) == Decision(allow=True)


def test_integral_float_max_tokens_is_accepted_as_json_schema_does() -> None:
    assert parse_decision({"allow": True, "reasons": [], "max_tokens": 2048.0}).max_tokens == 2048


def test_as_dict_round_trips() -> None:
    decision = parse_decision(FULL)
    assert parse_decision(decision.as_dict()) == decision


@pytest.mark.parametrize(("case", "document"), MALFORMED, ids=[c for c, _ in MALFORMED])
def test_malformed_decision_is_an_engine_error(case: str, document: Any) -> None:
    with pytest.raises(PolicyEngineError):
        parse_decision(document)


@pytest.mark.parametrize(("case", "document"), MALFORMED, ids=[c for c, _ in MALFORMED])
def test_schema_refuses_what_the_parser_refuses(case: str, document: Any) -> None:
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(document)


def test_schema_accepts_what_the_parser_accepts() -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(FULL)


def test_denial_renders_forbidden_with_all_messages_and_first_code() -> None:
    reasons = (Reason("pii_blocked", "secret found"), Reason("budget_exhausted", "spent"))
    decision = Decision(allow=False, reasons=reasons)
    error = denial_error(decision, "sha256:abc")
    assert isinstance(error, Forbidden)
    assert error.status == 403
    assert error.code == "pii_blocked"
    assert error.message == "secret found; spent"
    assert error.headers == {"x-policy-revision": "sha256:abc"}


def test_denial_without_reasons_still_has_a_code() -> None:
    error = denial_error(Decision(allow=False), "r1")
    assert error.code == "policy_denied"
    assert error.message == "request denied by policy"


def test_egress_decision_is_strict() -> None:
    assert parse_egress_decision({"allow": False, "reasons": [], "provider": "openai"}).provider == "openai"
    with pytest.raises(PolicyEngineError):
        parse_egress_decision({"allow": True, "reasons": [], "host": "x"})
    with pytest.raises(PolicyEngineError):
        parse_egress_decision(None)


def test_allowed_models_keeps_asked_order_and_refuses_strangers() -> None:
    assert parse_allowed_models(["b", "a"], ["a", "b", "c"]) == ["a", "b"]
    with pytest.raises(PolicyEngineError):
        parse_allowed_models(["z"], ["a"])
    with pytest.raises(PolicyEngineError):
        parse_allowed_models(None, ["a"])

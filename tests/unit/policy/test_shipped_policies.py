"""Every shipped rule, decided through both engines with inputs built by build_input."""

from __future__ import annotations

import pytest

from proxy.identity import Identity
from proxy.policy.decision import BudgetLimit, parse_budgets
from proxy.policy.engine import PolicyEngine
from proxy.policy.input import PiiFinding, build_egress_input, identity_input
from tests.unit.policy.conftest import PAYMENTS, RESEARCH, make_input, spend

SUPPORT_BOT = Identity(app="support-bot", team="support", user=None, key_id="k-1", source="api_key")


def codes(reasons: tuple[object, ...]) -> list[str]:
    return [r.code for r in reasons]  # type: ignore[attr-defined]


async def test_allowed_request_carries_obligations(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input())
    assert decision.allow
    assert decision.reasons == ()
    assert {"card", "email", "phone", "github_token"} <= set(decision.redact)  # blocked types: redacted in answers
    assert decision.restore is True
    assert decision.model is None
    assert decision.max_tokens is None
    assert decision.budgets == ()  # named by data.llm.budgets.scopes, asked before the decision


def scopes_input(identity: Identity) -> dict[str, object]:
    return {"version": 1, "identity": identity_input(identity),
            "request": {"endpoint": "chat.completions", "api": "openai", "model": "gpt-4o"}}


async def test_budget_scopes_come_from_the_identity(engine: PolicyEngine) -> None:
    scopes = parse_budgets(await engine.query("data.llm.budgets.scopes", scopes_input(PAYMENTS)))
    assert BudgetLimit(scope="team:payments", limit_usd=500.0, window="month") in scopes
    assert BudgetLimit(scope="app:billing-api", limit_usd=50.0, window="day") in scopes


async def test_model_outside_team_list_is_denied(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(model="o1"))
    assert not decision.allow
    assert codes(decision.reasons) == ["model_not_allowed"]
    assert '"o1"' in decision.reasons[0].message


async def test_unknown_model_is_denied(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(model="gpt-9", facts=None, identity=RESEARCH))
    assert codes(decision.reasons) == ["unknown_model"]


async def test_app_list_overrides_team_list(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(identity=SUPPORT_BOT, model="gpt-4o"))
    assert codes(decision.reasons) == ["model_not_allowed"]


async def test_secret_in_prompt_blocks_and_names_only_the_type(engine: PolicyEngine) -> None:
    findings = (PiiFinding("github_token", 1, "messages[1].content"), PiiFinding("email", 2, "messages[0].content"))
    decision = await engine.evaluate(make_input(pii=findings))
    assert not decision.allow
    assert codes(decision.reasons) == ["pii_blocked"]
    assert decision.reasons[0].message.endswith(": github_token")


async def test_card_blocked_for_default_team_but_redacted_for_payments(engine: PolicyEngine) -> None:
    card = (PiiFinding("card", 1, "messages[2].content"),)
    blocked = await engine.evaluate(make_input(identity=RESEARCH, model="gpt-4o", pii=card))
    assert codes(blocked.reasons) == ["pii_blocked"]
    redacted = await engine.evaluate(make_input(pii=card))
    assert redacted.allow
    assert "card" in redacted.redact


async def test_prompt_over_team_limit_is_denied(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(prompt_tokens=32_001))
    assert codes(decision.reasons) == ["prompt_too_large"]


async def test_prompt_beyond_context_window_is_left_to_the_proxy(engine: PolicyEngine) -> None:
    # The proxy answers it with 400 context_length_exceeded before the policy is asked.
    decision = await engine.evaluate(make_input(identity=RESEARCH, prompt_tokens=150_000))
    assert decision.allow


async def test_max_tokens_over_limit_denied_for_deny_mode_team(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(max_tokens=4000))
    assert codes(decision.reasons) == ["max_tokens_exceeded"]


async def test_max_tokens_capped_for_cap_mode_team(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(identity=RESEARCH, max_tokens=100_000))
    assert decision.allow
    assert decision.max_tokens == 16_384


async def test_unset_max_tokens_gets_the_team_cap(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(max_tokens=None))
    assert decision.max_tokens == 2048


async def test_embeddings_get_no_output_cap(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(
        make_input(endpoint="embeddings", model="text-embedding-3-small", max_tokens=None)
    )
    assert decision.allow
    assert decision.max_tokens is None


async def test_near_budget_downgrades_model_with_header(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(budget=(spend("team:payments", 92.0),)))
    assert decision.allow
    assert decision.model == "gpt-4o-mini"
    assert decision.headers == {"x-policy-model-downgrade": "gpt-4o -> gpt-4o-mini"}


async def test_exhausted_budget_is_denied(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(make_input(budget=(spend("team:payments", 100.0),)))
    assert not decision.allow
    assert codes(decision.reasons) == ["budget_exhausted"]
    assert decision.model is None


async def test_reasons_from_several_packages_in_package_order(engine: PolicyEngine) -> None:
    decision = await engine.evaluate(
        make_input(model="o1", pii=(PiiFinding("password", 1, "messages[0].content"),), prompt_tokens=40_000)
    )
    assert codes(decision.reasons) == ["model_not_allowed", "pii_blocked", "prompt_too_large"]


async def test_user_scope_budget_for_identified_user(engine: PolicyEngine) -> None:
    scopes = parse_budgets(await engine.query("data.llm.budgets.scopes", scopes_input(RESEARCH)))
    assert BudgetLimit(scope="user:u-42", limit_usd=10.0, window="day") in scopes


async def test_allowed_models_lists_only_permitted_in_catalogue_order(engine: PolicyEngine) -> None:
    catalogue = ["o1", "gpt-4o", "gpt-4o-mini", "text-embedding-3-large", "claude-sonnet-4"]
    assert await engine.allowed_models(identity_input(PAYMENTS), catalogue) == [
        "gpt-4o", "gpt-4o-mini", "text-embedding-3-large",
    ]
    assert await engine.allowed_models(identity_input(RESEARCH), catalogue) == catalogue
    assert await engine.allowed_models(identity_input(SUPPORT_BOT), catalogue) == ["gpt-4o-mini"]


@pytest.mark.parametrize(
    ("host", "allowed", "provider"),
    [
        ("api.openai.com", False, "openai"),
        ("my-resource.openai.azure.com", False, "azure_openai"),
        ("bedrock-runtime.eu-central-1.amazonaws.com", False, "aws_bedrock"),
        ("europe-west4-aiplatform.googleapis.com", False, "google_vertex"),
        ("pypi.org", True, None),
    ],
)
async def test_egress_refuses_provider_hosts(engine: PolicyEngine, host: str, allowed: bool,
                                             provider: str | None) -> None:
    decision = await engine.evaluate_egress(build_egress_input(host, 443, "CONNECT", PAYMENTS))
    assert decision.allow is allowed
    assert decision.provider == provider
    if not allowed:
        assert codes(decision.reasons) == ["ai_provider_blocked"]
        assert "/v1" in decision.reasons[0].message

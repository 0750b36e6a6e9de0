"""The decide stage's pure parts: the policy input it builds and the budget scopes it derives."""

from __future__ import annotations

from pathlib import Path

from proxy.analyse import analyse
from proxy.catalogue import Catalogue
from proxy.decide import build_input, scope_limits
from proxy.endpoints import CHAT
from proxy.endpoints.base import parse_call
from proxy.identity import Identity
from proxy.pii import Scanner
from proxy.policy.decision import BudgetLimit
from proxy.tokens import TokenEstimator, Vocab
from tests.support.config import make_config

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

"""tokens.prompt_estimate: auto. Prompts are tokenized only when something needs the count: a policy that
reads input.estimate, a limit on the scopes judged, the context window, or spend without reported usage.
Each case is chosen so that the bound (the prompt's UTF-8 length) and the exact count give different
answers: "a" * 6000 is 6,000 bytes but a few hundred tokens."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import openai
import pytest
from structlog.testing import capture_logs

from tests.conftest import ProxyFactory, UpstreamHandle
from tests.support.config import KEYS, REPO

ALLOW_ALL = REPO / "bench" / "policies" / "allow-all"
LONG = "a" * 6000  # bound 6,000+; exact well under 1,000
ADMIN = {"Authorization": f"Bearer {KEYS['admin']}"}


def policies(tmp_path: Path, scopes: str = "[]", main: str | None = None) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(ALLOW_ALL, target)
    (target / "budgets.rego").write_text(f"package llm.budgets\n\nscopes := {scopes}\n")
    if main is not None:
        (target / "main.rego").write_text(main)
    return target


def decision_estimates(logs: list[dict[str, object]]) -> list[int]:
    return [event["input"]["estimate"]["prompt_tokens"]  # type: ignore[index]
            for event in logs if event.get("event") == "decision" and "estimate" in event.get("input", {})]


def test_a_policy_that_never_reads_the_estimate_gets_the_bound(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    proxy = make_proxy(policy__dir=str(policies(tmp_path)), policy__decision_log="full")
    with capture_logs() as logs:
        proxy.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": LONG}])
    assert decision_estimates(logs) and decision_estimates(logs)[0] >= 6000


def test_a_policy_that_reads_the_estimate_gets_the_count(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    reads = ('package llm.main\n\nimport rego.v1\n\ndecision := {"allow": input.estimate.prompt_tokens < 3000, '
             '"reasons": [{"code": "too_long", "message": "too long"}]}\n')
    proxy = make_proxy(policy__dir=str(policies(tmp_path, main=reads)), policy__decision_log="full")
    with capture_logs() as logs:
        proxy.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": LONG}])
    assert 0 < decision_estimates(logs)[0] < 1000


@pytest.mark.parametrize("mode", ["auto", "exact"])
def test_a_token_limit_holds_the_exact_count_not_the_bound(make_proxy: ProxyFactory, tmp_path: Path,
                                                           mode: str) -> None:
    # 2,000 tokens a day: the bound (6,000 + 16) does not fit, the count (a few hundred + 16) does.
    scopes = '[{"scope": "team:payments", "limit_tokens": 2000, "window": "day"}]'
    proxy = make_proxy(policy__dir=str(policies(tmp_path, scopes)), tokens__prompt_estimate=mode)
    proxy.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": LONG}],
                                           max_tokens=16)


def test_bound_mode_holds_the_bound_on_a_token_limit(make_proxy: ProxyFactory, tmp_path: Path,
                                                     upstream: UpstreamHandle) -> None:
    scopes = '[{"scope": "team:payments", "limit_tokens": 2000, "window": "day"}]'
    proxy = make_proxy(policy__dir=str(policies(tmp_path, scopes)), tokens__prompt_estimate="bound")
    with pytest.raises(openai.RateLimitError):
        proxy.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": LONG}],
                                               max_tokens=16)
    assert upstream.model.received == []


@pytest.mark.parametrize("mode", ["auto", "bound"])
def test_a_bound_over_the_context_window_is_counted_before_a_400(make_proxy: ProxyFactory, tmp_path: Path,
                                                                 mode: str) -> None:
    proxy = make_proxy(policy__dir=str(policies(tmp_path)), tokens__prompt_estimate=mode,
                       models__gpt_4o_small__upstream="test", models__gpt_4o_small__upstream_model="demo-model",
                       models__gpt_4o_small__prices={"input": 1.0}, models__gpt_4o_small__context_window=4000,
                       models__gpt_4o_small__max_output_tokens=100)
    client = proxy.client()
    client.chat.completions.create(model="gpt_4o_small", messages=[{"role": "user", "content": LONG}])
    prose = " ".join(f"word{i}" for i in range(3000))  # really over 4,000 tokens
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt_4o_small", messages=[{"role": "user", "content": prose}])
    assert caught.value.code == "context_length_exceeded"


def test_spend_without_reported_usage_is_charged_the_count_not_the_bound(
        make_proxy: ProxyFactory, tmp_path: Path, upstream: UpstreamHandle) -> None:
    proxy = make_proxy(policy__dir=str(policies(tmp_path)))
    upstream.model.faults.strip_usage = True
    stream = proxy.client().chat.completions.create(model="gpt-4o", stream=True,
                                                    messages=[{"role": "user", "content": LONG}])
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    rows = httpx.get(proxy.root + "/admin/budgets", params={"scope": "team:payments"}, headers=ADMIN).json()["data"]
    spent = max(row["spent_usd"] for row in rows)
    assert 0 < spent < 6000 * 2.5 / 1_000_000  # $2.50 per million input tokens: the bound would cost more

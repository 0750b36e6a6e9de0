"""Every control on /v1/messages: PII block, redaction with restore (values split across events), the
policy's view of the API, budgets settled from message_start + message_delta usage at cache rates."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from structlog.testing import capture_logs

from tests.conftest import ProxyFactory, ProxyHandle
from tests.integration.anthropic.conftest import CLAUDE, ClaudeUpstreamHandle, sdk
from tests.support.anthropic_upstream import Script
from tests.support.config import KEYS, REPO

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
ADMIN = {"Authorization": f"Bearer {KEYS['admin']}"}


def policies_letting_payments_use_claude(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    path = target / "data" / "models.json"
    data = json.loads(path.read_text())
    data["models"]["teams"]["payments"].append("claude-*")
    path.write_text(json.dumps(data))
    pii = target / "data" / "pii.json"
    rules = json.loads(pii.read_text())
    rules["pii"]["redact"].append("ticket")
    pii.write_text(json.dumps(rules))
    return target


# A custom type whose values hold a quote and a backslash, characters JSON must escape.
TICKET = 'TICKET<42"ab\\cd>'
TICKET_TYPE = {"name": "ticket", "pattern": r'TICKET<[0-9]+"[a-z]+\\[a-z]+>'}


@pytest.fixture
def payments_proxy(make_claude_proxy: ProxyFactory, tmp_path: Path) -> ProxyHandle:
    return make_claude_proxy(policy__dir=str(policies_letting_payments_use_claude(tmp_path)),
                             pii__custom=[TICKET_TYPE])


def spent(proxy: ProxyHandle, scope: str) -> float:
    rows = httpx.get(proxy.root + "/admin/budgets", params={"scope": scope}, headers=ADMIN).json()["data"]
    return max((row["spent_usd"] for row in rows if row["scope"] == scope), default=0.0)


def audit_line(logs: list[dict[str, Any]], timeout: float = 5) -> dict[str, Any]:
    """The request's audit line: written when the handler returns, which may be after the client has read
    the whole stream."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in logs if line.get("event") == "request"]
        if found:
            return found[-1]
        time.sleep(0.01)
    raise AssertionError("no audit line was written")


def test_a_secret_in_the_system_prompt_is_blocked(claude_proxy: ProxyHandle,
                                                  claude_upstream: ClaudeUpstreamHandle) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}],
                                          system="key ghp_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8")
    assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert "ghp_" not in str(denied.value.body)
    assert claude_upstream.model.received == []


@pytest.mark.parametrize("where", ["tool_use", "tool_result", "document", "system_block"])
def test_every_text_field_is_redacted_before_forwarding(claude_proxy: ProxyHandle,
                                                        claude_upstream: ClaudeUpstreamHandle, where: str) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "hello"}]
    system: list[dict[str, object]] = []
    if where == "tool_use":
        messages += [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "send",
                                                        "input": {"to": [{"address": EMAIL}]}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]
    elif where == "tool_result":
        messages += [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                                                        "input": {}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                   "content": [{"type": "text", "text": f"owner {EMAIL}"}]}]}]
    elif where == "document":
        messages = [{"role": "user", "content": [{"type": "document", "source": {
            "type": "text", "media_type": "text/plain", "data": f"Contact: {EMAIL}"}}, {"type": "text", "text": "?"}]}]
    else:
        system = [{"type": "text", "text": f"The user is {EMAIL}"}]
    sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=50, messages=messages,  # type: ignore[arg-type]
                                      **({"system": system} if system else {}))  # type: ignore[arg-type]
    sent = json.dumps(claude_upstream.model.last().body)
    assert EMAIL not in sent and "[EMAIL_1]" in sent


def test_thinking_is_scanned_but_never_rewritten(claude_proxy: ProxyHandle,
                                                 claude_upstream: ClaudeUpstreamHandle) -> None:
    thinking = {"type": "thinking", "thinking": f"the user is {EMAIL}", "signature": "c2lnbmVk"}
    with capture_logs() as logs:
        sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=50, messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [thinking, {"type": "text", "text": "ok"}]},
            {"role": "user", "content": "go on"}])  # type: ignore[list-item]
        audit = audit_line(logs)
    assert claude_upstream.model.last().body["messages"][1]["content"][0] == thinking
    assert "email" in audit["pii_types"]


@pytest.mark.parametrize("stream", [False, True])
def test_placeholders_split_across_input_json_deltas_are_restored(payments_proxy: ProxyHandle,
                                                                 claude_upstream: ClaudeUpstreamHandle,
                                                                 stream: bool) -> None:
    # payments: cards redacted and restored. The model calls a tool with the placeholder it was shown,
    # split over three input_json_delta events, and says it in text split over two text_deltas.
    claude_upstream.model.script = Script(
        [{"type": "text", "text": "Refunding [CARD_1] now"},
         {"type": "tool_use", "id": "toolu_9", "name": "refund", "input": {"card": "[CARD_1]", "note": "a\"b"}}],
        pieces={0: ["Refunding [CA", "RD_1] now"], 1: ['{"card": "[CA', "RD_", '1]", "note": "a\\"b"}']},
        stop_reason="tool_use")
    client = sdk(payments_proxy, key=KEYS["payments"])
    request = {"model": CLAUDE, "max_tokens": 100, "messages": [{"role": "user", "content": f"refund {CARD}"}]}
    if stream:
        with client.messages.stream(**request) as events:  # type: ignore[arg-type]
            message = events.get_final_message()
    else:
        message = client.messages.create(**request)  # type: ignore[arg-type]
    assert CARD not in json.dumps(claude_upstream.model.last().body)
    assert message.content[0].text == f"Refunding {CARD} now"  # type: ignore[union-attr]
    assert message.content[1].input == {"card": CARD, "note": 'a"b'}  # type: ignore[union-attr]


def test_restored_values_are_json_escaped_inside_tool_arguments(payments_proxy: ProxyHandle,
                                                                claude_upstream: ClaudeUpstreamHandle) -> None:
    # Restored into partial JSON, a value with a quote and a backslash must be escaped or the JSON breaks.
    claude_upstream.model.script = Script(
        [{"type": "tool_use", "id": "toolu_1", "name": "file", "input": {"ticket": "[TICKET_1]"}}],
        pieces={0: ['{"ticket": "[TICK', 'ET_1]"}']}, stop_reason="tool_use")
    with sdk(payments_proxy, key=KEYS["payments"]).messages.stream(
            model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": f"file {TICKET}"}]) as events:
        message = events.get_final_message()
    assert TICKET not in json.dumps(claude_upstream.model.last().body)
    assert message.content[0].input == {"ticket": TICKET}  # type: ignore[union-attr]


def test_pii_the_model_writes_is_redacted_in_the_stream(claude_proxy: ProxyHandle,
                                                        claude_upstream: ClaudeUpstreamHandle) -> None:
    claude_upstream.model.script = Script([{"type": "text", "text": "Mail ops.team@example.org today"}],
                                          pieces={0: ["Mail ops.te", "am@exam", "ple.org today"]})
    with sdk(claude_proxy).messages.stream(model=CLAUDE, max_tokens=50,
                                           messages=[{"role": "user", "content": "who?"}]) as events:
        text = "".join(events.text_stream)
    assert text == "Mail [EMAIL_1] today"


def test_policy_input_names_the_api(claude_proxy: ProxyHandle) -> None:
    with capture_logs() as logs:
        sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        claude_proxy.client(KEYS["research"]).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    requests = [line["input"]["request"] for line in logs if line.get("event") == "decision"]
    assert {(r["api"], r["endpoint"]) for r in requests} == {("anthropic", "messages"),
                                                            ("openai", "chat.completions")}


def test_max_tokens_over_the_team_limit_is_capped(claude_proxy: ProxyHandle,
                                                 claude_upstream: ClaudeUpstreamHandle) -> None:
    sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=100_000, messages=[{"role": "user", "content": "hi"}])
    assert claude_upstream.model.last().body["max_tokens"] < 100_000


@pytest.mark.parametrize(("stream", "full_delta_usage"), [(False, False), (True, False), (True, True)])
def test_settled_at_input_output_cache_write_and_cache_read_rates(claude_proxy: ProxyHandle,
                                                                 claude_upstream: ClaudeUpstreamHandle,
                                                                 stream: bool, full_delta_usage: bool) -> None:
    usage = {"input_tokens": 100, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 2000,
             "output_tokens": 50}
    claude_upstream.model.script = Script([{"type": "text", "text": "cached answer"}], usage=usage)
    claude_upstream.model.full_delta_usage = full_delta_usage
    client = sdk(claude_proxy)
    request = {"model": CLAUDE, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    with capture_logs() as logs:
        if stream:
            list(client.messages.create(stream=True, **request))  # type: ignore[call-overload]
        else:
            client.messages.create(**request)  # type: ignore[arg-type]
        audit = audit_line(logs)
    # $3/M input, $3.75/M cache writes, $0.30/M cache reads, $15/M output.
    expected = (100 * 3 + 1000 * 3.75 + 2000 * 0.3 + 50 * 15) / 1_000_000
    assert audit["cost_usd"] == pytest.approx(expected)
    assert (audit["input_tokens"], audit["output_tokens"], audit["cached_input_tokens"]) == (3100, 50, 2000)
    assert audit["cache_write_input_tokens"] == 1000
    assert spent(claude_proxy, "team:research") == pytest.approx(expected)


def test_metrics_use_the_same_names_with_the_messages_endpoint(claude_proxy: ProxyHandle) -> None:
    sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    text = httpx.get(claude_proxy.root + "/metrics").text
    assert 'endpoint="messages"' in text and f'model="{CLAUDE}"' in text


def test_shadow_policy_decides_on_messages_traffic_too(make_claude_proxy: ProxyFactory, tmp_path: Path) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(REPO / "policies", candidate)
    models = json.loads((candidate / "data" / "models.json").read_text())
    models["models"]["teams"]["research"] = ["gpt-4o"]  # the candidate would deny Claude to research
    (candidate / "data" / "models.json").write_text(json.dumps(models))
    log = tmp_path / "shadow.jsonl"
    proxy = make_claude_proxy(policy__shadow_dir=str(candidate), policy__shadow_log=str(log))
    sdk(proxy).messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (log.exists() and log.read_text().strip()):
        time.sleep(0.02)
    event = json.loads(log.read_text().splitlines()[0])
    assert event["live"]["allow"] is True and event["candidate"]["allow"] is False


def test_an_upstream_that_breaks_mid_stream_ends_it_with_an_anthropic_error_event(
        claude_proxy: ProxyHandle, claude_upstream: ClaudeUpstreamHandle) -> None:
    claude_upstream.model.faults.reset_after_events = 4
    with pytest.raises(anthropic.APIStatusError) as broken:
        list(sdk(claude_proxy).messages.create(model=CLAUDE, max_tokens=50, stream=True,
                                               messages=[{"role": "user", "content": "Hi there"}]))
    assert broken.value.body["type"] == "error"  # type: ignore[index]
    assert broken.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_a_budget_too_small_for_the_worst_case_is_a_429_with_retry_after(make_claude_proxy: ProxyFactory,
                                                                        tmp_path: Path,
                                                                        claude_upstream: ClaudeUpstreamHandle) -> None:
    policies = tmp_path / "budgeted"
    shutil.copytree(REPO / "policies", policies)
    path = policies / "data" / "budgets.json"
    data = json.loads(path.read_text())
    data["budgets"]["scopes"]["team"]["research"] = [{"limit_usd": 0.01, "window": "day"}]
    path.write_text(json.dumps(data))
    proxy = make_claude_proxy(policy__dir=str(policies))
    # 8,192 output tokens at $15/M is ~$0.12: over the $0.01 a day, refused before forwarding.
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk(proxy).messages.create(model=CLAUDE, max_tokens=8192, messages=[{"role": "user", "content": "hi"}])
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "team:research" in limited.value.body["error"]["message"]  # type: ignore[index]
    assert int(limited.value.response.headers["retry-after"]) > 0
    assert claude_upstream.model.received == []

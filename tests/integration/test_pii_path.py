"""PII through the proxy: the upstream never sees a redacted value, restore hides redaction from the caller,
streamed answers are redacted even when a value is split across chunks; every evasion class on both
sides, every field a model sees, and tool-call arguments in answers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import structlog

from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.config import KEYS, make_config
from tests.support.pii_forms import CASES, Case, carries, policy_dir
from tests.support.servers import ServerThread
from tests.support.tool_call_model import ToolCallModel

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def test_email_is_redacted_before_forwarding(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    # research: email redacted, no restore -> the answer keeps the placeholder.
    reply = proxy.client(KEYS["research"]).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"Write to {EMAIL} and {EMAIL} again"}])
    sent = upstream.model.last().body["messages"][0]["content"]
    assert EMAIL not in sent
    assert sent == "Write to [EMAIL_1] and [EMAIL_1] again"
    assert "[EMAIL_1]" in reply.choices[0].message.content


def test_restore_gives_the_caller_its_values_back(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    # payments: cards redacted (not blocked) and restored in the answer.
    prompt = f"Refund card {CARD} for {EMAIL}"
    reply = proxy.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": prompt}])
    sent = upstream.model.last().body["messages"][0]["content"]
    assert CARD not in sent and EMAIL not in sent
    assert "[CARD_1]" in sent and "[EMAIL_1]" in sent
    assert reply.choices[0].message.content.endswith(prompt)


@pytest.mark.parametrize("burst", [False, True], ids=["paced", "burst"])
def test_restore_in_a_stream(proxy: ProxyHandle, upstream: UpstreamHandle, burst: bool) -> None:
    upstream.model.faults.burst = burst  # in a burst the first events go out one by one, the rest together
    prompt = f"Refund card {CARD} for {EMAIL}"
    chunks = proxy.client().chat.completions.create(model="gpt-4o", stream=True,
                                                    messages=[{"role": "user", "content": prompt}])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith(prompt)
    assert CARD not in str(upstream.model.last().body)


@pytest.mark.parametrize("stream", [False, True, "burst"])
def test_pii_the_model_writes_is_redacted_in_the_answer(proxy: ProxyHandle, upstream: UpstreamHandle,
                                                        stream: bool | str) -> None:
    # The demo model streams word by word; a phone and an email split over chunks must still be caught,
    # also when they arrive in one burst with the first events written one by one.
    upstream.model.reply_override = "Call +44 20 7946 0958 or mail ops.team@example.org today"
    upstream.model.faults.burst = stream == "burst"
    client = proxy.client(KEYS["research"])
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": "contact?"}]) if c.choices)
    else:
        text = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "contact?"}]
                                              ).choices[0].message.content or ""
    assert "7946" not in text and "ops.team@example.org" not in text
    assert text.startswith("Call [PHONE_1] or mail [EMAIL_1] today")


def test_responses_stream_is_redacted(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    upstream.model.reply_override = "Reach ops.team@example.org now"
    events = list(proxy.client(KEYS["research"]).responses.create(model="gpt-4o", input="contact?", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Reach [EMAIL_1] now"
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Reach [EMAIL_1] now"


def test_card_number_is_blocked_for_teams_without_an_exception(proxy: ProxyHandle,
                                                               upstream: UpstreamHandle) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        proxy.client(KEYS["research"]).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"charge {CARD}"}])
    assert caught.value.code == "pii_blocked" and "card" in caught.value.message
    assert "4111" not in caught.value.message
    assert upstream.model.received == []


# Every evasion class, both directions, streamed and not. The research team's policy here redacts every
# PII type; cards and secrets stay blocked in requests, and are redacted in answers.

BLOCKED = {"card", "github_token", "auth_header"}


@pytest.fixture
def research(make_proxy: ProxyFactory, upstream: UpstreamHandle, tmp_path: Path) -> openai.OpenAI:
    return make_proxy(policy__dir=str(policy_dir(tmp_path))).client(KEYS["research"])


def answer_text(client: openai.OpenAI, stream: bool, prompt: str = "contact?") -> str:
    messages: list[Any] = [{"role": "user", "content": prompt}]
    if stream:
        return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="gpt-4o", stream=True, messages=messages) if c.choices)
    return client.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message.content or ""


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_evasion_in_a_request_is_redacted_or_blocked(research: openai.OpenAI, upstream: UpstreamHandle,
                                                        case: Case, stream: bool) -> None:
    if case.type in BLOCKED:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            answer_text(research, stream, case.text)
        assert case.type in caught.value.message and not carries(caught.value.message, case)
        assert upstream.model.received == []
        return
    reply = answer_text(research, stream, case.text)
    sent = upstream.model.last().body["messages"][0]["content"]
    assert not carries(sent, case), sent
    assert f"[{case.type.upper()}_1]" in sent
    assert not carries(reply, case)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_evasion_the_model_writes_is_redacted_in_the_answer(research: openai.OpenAI, upstream: UpstreamHandle,
                                                               case: Case, stream: bool) -> None:
    upstream.model.reply_override = f"Sure: {case.text} (as asked)"
    reply = answer_text(research, stream)
    assert not carries(reply, case), reply
    assert f"[{case.type.upper()}_1]" in reply and reply.endswith("(as asked)")


# Fields beyond message text.


def post(proxy: ProxyHandle, path: str, body: dict[str, Any], key: str = KEYS["research"]) -> httpx.Response:
    return httpx.post(f"{proxy.base_url}/{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_every_field_the_model_or_provider_sees_is_redacted(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    data_url = "data:text/plain;base64," + base64.b64encode(f"note for {EMAIL}".encode()).decode()
    body = {
        "model": "gpt-4o", "user": EMAIL, "metadata": {"contact": EMAIL},
        "messages": [
            {"role": "system", "content": "be brief", "name": f"bot {EMAIL}"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": f"I will not mail {EMAIL}"}]},
            {"role": "user", "content": [{"type": "text", "text": "see file"},
                                         {"type": "image_url", "image_url": {"url": data_url}}]},
        ],
        "tools": [{"type": "function", "function": {
            "name": "send", "description": f"sends mail as {EMAIL}",
            "parameters": {"type": "object", "properties": {"to": {"type": "string", "description": f"e.g. {EMAIL}",
                                                                   "enum": [EMAIL]}}}}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {
            "type": "object", "description": f"reply to {EMAIL}"}}},
    }
    assert post(proxy, "chat/completions", body).status_code == 200
    sent = orjson.dumps(upstream.model.last().body).decode()
    assert EMAIL not in sent and base64.b64encode(f"note for {EMAIL}".encode()).decode() not in sent
    assert sent.count("[EMAIL_1]") == 8


def test_responses_instructions_and_input_items_of_every_type_are_redacted(proxy: ProxyHandle,
                                                                          upstream: UpstreamHandle) -> None:
    body = {"model": "gpt-4o", "instructions": f"reply to {EMAIL}", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"mail {EMAIL}"}]},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": orjson.dumps({"q": EMAIL}).decode()},
        {"type": "function_call_output", "call_id": "c1", "output": f"found {EMAIL}"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": f"user is {EMAIL}"}]},
    ]}
    assert post(proxy, "responses", body).status_code == 200
    sent = orjson.dumps(upstream.model.last().body).decode()
    assert EMAIL not in sent and sent.count("[EMAIL_1]") == 5


def test_a_value_split_across_two_parts_is_caught(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    parts = [{"type": "text", "text": "write to jane.doe@exa"}, {"type": "text", "text": "mple.org today"}]
    assert post(proxy, "chat/completions", {"model": "gpt-4o", "messages": [
        {"role": "user", "content": parts}]}).status_code == 200
    sent = upstream.model.last().body["messages"][0]["content"]
    assert "".join(p["text"] for p in sent) == "write to [EMAIL_1][EMAIL_2] today"
    card = [{"type": "text", "text": "card 4111 1111"}, {"type": "text", "text": " 1111 1111 ok"}]
    blocked = post(proxy, "chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": card}]})
    assert blocked.status_code == 403 and "card" in blocked.text


def test_policy_input_carries_types_counts_and_paths_only(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    body = {"model": "gpt-4o", "metadata": {EMAIL: "x"}, "messages": [{"role": "user", "content": f"mail {EMAIL}"}]}
    record: list[dict[str, Any]] = []
    with structlog.testing.capture_logs() as logs:
        assert post(proxy, "chat/completions", body).status_code == 200
        record = [entry for entry in logs if entry.get("event") == "decision"]
    assert record, "no decision logged"
    pii = record[0]["input"]["pii"]
    assert pii["types"] == ["email"]
    assert pii["findings"] == [{"type": "email", "count": 1, "path": "messages[0].content"}]
    assert EMAIL not in orjson.dumps(record).decode()


# Tool calls in answers: restored and redacted exactly like text, whole and streamed.


@pytest.fixture
def tool_model(servers: ServerThread) -> Iterator[tuple[ToolCallModel, str]]:
    model = ToolCallModel()
    runner, port = servers.start_app(model.build_app())
    yield model, f"http://127.0.0.1:{port}/v1"
    servers.stop_app(runner)


def chat_arguments(client: openai.OpenAI, stream: bool, prompt: str) -> str:
    messages: list[Any] = [{"role": "user", "content": prompt}]
    if not stream:
        call = client.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message.tool_calls
        assert call is not None
        return call[0].function.arguments  # type: ignore[union-attr]
    return "".join(t.function.arguments or "" for c in client.chat.completions.create(
        model="gpt-4o", stream=True, messages=messages) if c.choices for t in c.choices[0].delta.tool_calls or ()
        if t.function is not None)


def responses_arguments(client: openai.OpenAI, stream: bool, prompt: str) -> tuple[str, str]:
    if not stream:
        item = client.responses.create(model="gpt-4o", input=prompt).output[0]
        return item.arguments, item.arguments  # type: ignore[union-attr]
    events = list(client.responses.create(model="gpt-4o", input=prompt, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    final = events[-1].response.output[0]  # type: ignore[union-attr]
    return deltas, final.arguments  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_call_arguments_in_answers_are_redacted(make_proxy: ProxyFactory, tool_model: tuple[ToolCallModel, str],
                                                     tmp_path: Path, stream: bool) -> None:
    model, url = tool_model
    model.arguments = orjson.dumps({"card": CARD, "phone": "+44 20 7946 0958", "other": "+1 415 555 2671"}).decode()
    client = make_proxy(make_config(url, tmp_path)).client(KEYS["research"])
    for arguments in (chat_arguments(client, stream, "pay"), *responses_arguments(client, stream, "pay")):
        assert orjson.loads(arguments) == {"card": "[CARD_1]", "phone": "[PHONE_1]", "other": "[PHONE_2]"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_call_arguments_in_answers_are_restored(make_proxy: ProxyFactory, tool_model: tuple[ToolCallModel, str],
                                                     tmp_path: Path, stream: bool) -> None:
    # payments: cards are redacted (not blocked) and restored; the model only ever saw [CARD_1].
    model, url = tool_model
    model.arguments = orjson.dumps({"card": "[CARD_1]", "email": "[EMAIL_1]"}).decode()
    client = make_proxy(make_config(url, tmp_path)).client(KEYS["payments"])
    arguments = chat_arguments(client, stream, f"refund {CARD} for {EMAIL}")
    assert CARD not in str(model.received[-1])
    assert orjson.loads(arguments) == {"card": CARD, "email": EMAIL}
    for arguments in responses_arguments(client, stream, f"refund {CARD} for {EMAIL}"):
        assert orjson.loads(arguments) == {"card": CARD, "email": EMAIL}

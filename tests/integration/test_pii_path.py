"""PII through the proxy: the upstream never sees a redacted value, restore hides redaction from the caller,
streamed answers are redacted even when a value is split across chunks."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import ProxyHandle, UpstreamHandle
from tests.support.config import KEYS

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


def test_restore_in_a_stream(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    prompt = f"Refund card {CARD} for {EMAIL}"
    chunks = proxy.client().chat.completions.create(model="gpt-4o", stream=True,
                                                    messages=[{"role": "user", "content": prompt}])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith(prompt)
    assert CARD not in str(upstream.model.last().body)


@pytest.mark.parametrize("stream", [False, True])
def test_pii_the_model_writes_is_redacted_in_the_answer(proxy: ProxyHandle, upstream: UpstreamHandle,
                                                        stream: bool) -> None:
    # The demo model streams word by word; a phone and an email split over chunks must still be caught.
    upstream.model.reply_override = "Call +44 20 7946 0958 or mail ops.team@example.org today"
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

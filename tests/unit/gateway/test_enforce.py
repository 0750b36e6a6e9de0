"""The enforce stage as a pure function: a decision's obligations applied to a parsed request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.apis.anthropic import MESSAGES
from proxy.catalogue import Catalogue
from proxy.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, EndpointSpec
from proxy.endpoints.base import parse_call
from proxy.gateway.analyse import analyse
from proxy.gateway.enforce import Effective, enforce
from proxy.pii import Scanner
from proxy.policy.decision import Decision
from proxy.policy.errors import PolicyEngineError
from proxy.tokens import TokenEstimator, Vocab
from tests.support.config import make_config

CATALOGUE = Catalogue.from_config(make_config("http://127.0.0.1:1/v1", Path("/tmp")))
ESTIMATOR = TokenEstimator(Vocab())
HI = [{"role": "user", "content": "hi"}]


def run(spec: EndpointSpec, body: dict[str, Any], decision: Decision) -> tuple[Effective, dict[str, Any]]:
    call = parse_call(spec, body)
    entry = CATALOGUE.resolve(call.model)
    assert entry is not None
    effective = enforce(call, entry, analyse(call, entry, ESTIMATOR, Scanner()), decision, CATALOGUE)
    return effective, orjson.loads(effective.body)


@pytest.mark.parametrize(("spec", "body", "cap", "key", "forwarded"), [
    # No max set: the cap is added under the endpoint's newest key.
    (CHAT, {"model": "gpt-4o", "messages": HI}, 100, "max_tokens", 100),
    # Over the cap: lowered, under whichever key the caller used.
    (CHAT, {"model": "gpt-4o", "messages": HI, "max_completion_tokens": 500}, 100, "max_completion_tokens", 100),
    (CHAT, {"model": "gpt-4o", "messages": HI, "max_tokens": 500}, 100, "max_tokens", 100),
    # Under the cap: left as asked.
    (CHAT, {"model": "gpt-4o", "messages": HI, "max_tokens": 50}, 100, "max_tokens", 50),
    (COMPLETIONS, {"model": "gpt-4o", "prompt": "hi", "max_tokens": 900}, 64, "max_tokens", 64),
    (RESPONSES, {"model": "gpt-4o", "input": "hi"}, 64, "max_output_tokens", 64),
    (MESSAGES, {"model": "gpt-4o", "messages": HI, "max_tokens": 4000}, 256, "max_tokens", 256),
])
def test_max_tokens_cap_lands_on_the_endpoints_own_key(spec: EndpointSpec, body: dict[str, Any], cap: int,
                                                       key: str, forwarded: int) -> None:
    effective, sent = run(spec, body, Decision(allow=True, max_tokens=cap))
    assert sent[key] == forwarded
    assert effective.max_output_tokens <= forwarded


def test_embeddings_have_no_output_to_cap() -> None:
    effective, sent = run(EMBEDDINGS, {"model": "text-embedding-3-small", "input": "hi"},
                          Decision(allow=True, max_tokens=10))
    assert "max_tokens" not in sent and effective.max_output_tokens == 0


@pytest.mark.parametrize(("asked", "rewrite", "upstream_model", "cheaper"), [
    ("gpt-4o", "gpt-4o-mini", "demo-model", True),
    ("demo-model", None, "demo-model", False),  # an alias is sent as the upstream's own name
])
def test_model_rewrite_changes_entry_price_and_upstream_name(asked: str, rewrite: str | None, upstream_model: str,
                                                             cheaper: bool) -> None:
    plain, _ = run(CHAT, {"model": asked, "messages": HI}, Decision(allow=True))
    effective, sent = run(CHAT, {"model": asked, "messages": HI}, Decision(allow=True, model=rewrite))
    assert sent["model"] == upstream_model
    assert effective.entry.name == (rewrite or "gpt-4o")
    assert (effective.cost_micros < plain.cost_micros) is cheaper


# Unknown to the catalogue, or not served on this endpoint: a broken policy, never a guess.
@pytest.mark.parametrize("target", ["no-such-model", "text-embedding-3-small"])
def test_rewrite_to_a_model_the_catalogue_cannot_route_is_an_engine_error(target: str) -> None:
    with pytest.raises(PolicyEngineError, match=target):
        run(CHAT, {"model": "gpt-4o", "messages": HI}, Decision(allow=True, model=target))


@pytest.mark.parametrize(("stream_options", "asked_for_usage", "hidden"), [
    (None, False, True),
    ({"include_usage": False}, False, True),
    ({"include_usage": True}, True, False),
])
def test_streams_always_ask_for_usage_and_hide_the_chunk_nobody_asked_for(
        stream_options: dict[str, bool] | None, asked_for_usage: bool, hidden: bool) -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": HI, "stream": True}
    if stream_options is not None:
        body["stream_options"] = stream_options
    effective, sent = run(CHAT, body, Decision(allow=True))
    assert sent["stream_options"]["include_usage"] is True
    assert effective.hide_usage_chunk is hidden


@pytest.mark.parametrize(("redact", "restore", "forwarded", "counts", "kept_book"), [
    ((), False, "mail jane.doe@example.com now", {}, False),
    (("email",), False, "mail [EMAIL_1] now", {"email": 1}, False),
    (("email",), True, "mail [EMAIL_1] now", {"email": 1}, True),
    (("phone",), True, "mail jane.doe@example.com now", {}, False),  # nothing of that type: nothing to keep
])
def test_redaction_rewrites_only_the_decided_types(redact: tuple[str, ...], restore: bool, forwarded: str,
                                                   counts: dict[str, int], kept_book: bool) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "mail jane.doe@example.com now"}]}
    effective, sent = run(CHAT, body, Decision(allow=True, redact=redact, restore=restore))
    assert sent["messages"][0]["content"] == forwarded
    assert effective.redacted == counts
    assert (effective.placeholders is not None) is kept_book
    assert body["messages"][0]["content"] == "mail jane.doe@example.com now"  # the caller's body is untouched


def test_no_obligation_forwards_the_body_as_parsed() -> None:
    body = {"model": "gpt-4o", "messages": HI, "temperature": 0.2}
    effective, sent = run(CHAT, body, Decision(allow=True))
    assert sent == {**body, "model": "demo-model"}
    assert effective.redacted == {} and effective.placeholders is None and not effective.hide_usage_chunk

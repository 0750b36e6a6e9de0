"""Every body representable as JSON gets a 400 (in the caller's API format) or a correct answer, never a 500;
the worst case reserved is n x the output cap on every endpoint, with or without max_tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.integration.test_budget_path import policies_with_budget
from tests.support.config import KEYS

HELLO = [{"role": "user", "content": "Hi"}]
AUTH = {"Authorization": f"Bearer {KEYS['payments']}", "Content-Type": "application/json"}
BASES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "demo-model", "messages": HELLO},
    "/v1/completions": {"model": "demo-model", "prompt": "Hi"},
    "/v1/responses": {"model": "demo-model", "input": "Hi"},
    "/v1/embeddings": {"model": "text-embedding-3-small", "input": "Hi"},
    "/v1/messages": {"model": "demo-model", "max_tokens": 50, "messages": HELLO},
}


def post(proxy: ProxyHandle, path: str, raw: bytes) -> httpx.Response:
    return httpx.post(proxy.root + path, content=raw, headers=AUTH, timeout=20)


def assert_error_format(path: str, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    document = response.json()
    if path == "/v1/messages":
        assert document["type"] == "error" and set(document["error"]) == {"type", "message"}
        return document["error"]  # type: ignore[no-any-return]
    assert set(document["error"]) == {"message", "type", "param", "code"}
    return document["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "fields", "param", "code"), [
    ("/v1/chat/completions", b'"n": 1000000', "n", "integer_above_max_value"),
    ("/v1/chat/completions", b'"n": 129', "n", "integer_above_max_value"),
    ("/v1/chat/completions", b'"n": 0', "n", "integer_below_min_value"),
    ("/v1/chat/completions", b'"n": 1.5', "n", "invalid_type"),
    ("/v1/chat/completions", b'"n": true', "n", "invalid_type"),
    ("/v1/chat/completions", b'"n": 18446744073709551615', "n", "integer_above_max_value"),
    ("/v1/chat/completions", b'"max_tokens": 99999999999999999999999', "max_tokens", "integer_above_max_value"),
    ("/v1/chat/completions", b'"max_tokens": -99999999999999999999999', "max_tokens", "integer_below_min_value"),
    ("/v1/chat/completions", b'"max_completion_tokens": -5', "max_completion_tokens", "integer_below_min_value"),
    ("/v1/chat/completions", b'"seed": 18446744073709551615', "seed", "integer_above_max_value"),
    ("/v1/completions", b'"best_of": 1000', "best_of", "integer_above_max_value"),
    ("/v1/responses", b'"max_output_tokens": 1e30', "max_output_tokens", "integer_above_max_value"),
    ("/v1/embeddings", b'"dimensions": 0', "dimensions", "integer_below_min_value"),
    ("/v1/chat/completions", b'"user": "a\\r\\nb"', "user", "invalid_value"),
])
def test_values_beyond_sane_ranges_are_400_naming_the_param(proxy: ProxyHandle, upstream: UpstreamHandle,
                                                            path: str, fields: bytes, param: str, code: str) -> None:
    raw = orjson.dumps(BASES[path])[:-1] + b", " + fields + b"}"
    error = assert_error_format(path, post(proxy, path, raw))
    assert (error["param"], error["code"]) == (param, code)
    assert upstream.model.received == []


def test_anthropic_max_tokens_past_64_bits_is_400_in_anthropic_format(proxy: ProxyHandle) -> None:
    raw = b'{"model": "demo-model", "max_tokens": 99999999999999999999999, "messages": [{"role": "user", ' \
          b'"content": "Hi"}]}'
    response = post(proxy, "/v1/messages", raw)
    assert response.status_code == 400
    assert "max_tokens" in assert_error_format("/v1/messages", response)["message"]


@pytest.mark.parametrize("path", list(BASES))
@pytest.mark.parametrize("depth", [255, 600, 1000])
def test_deep_nesting_inside_a_content_part_is_400(proxy: ProxyHandle, upstream: UpstreamHandle, path: str,
                                                   depth: int) -> None:
    part = b'{"type": "text", "text": "x", "extra": ' + b"[" * depth + b"]" * depth + b"}"
    key = b'"messages"' if path in ("/v1/chat/completions", "/v1/messages") else b'"input"' \
        if path != "/v1/completions" else b'"prompt"'
    raw = orjson.dumps(BASES[path])[:-1] + b", " + key + b': [{"role": "user", "content": [' + part + b"]}]}"
    response = post(proxy, path, raw)
    assert response.status_code == 400
    assert_error_format(path, response)
    assert upstream.model.received == []


@pytest.mark.parametrize("raw", [
    b'{"model": "demo-model", "model": "demo-model", "messages": [{"role": "user", "content": "Hi"}]}',
    b'{"model": "demo-model", "messages": [{"role": "user", "content": "\\u0048\\u0069 \\ud83d\\ude00"}]}',
    b'{"model": "demo-model", "messages": [{"role": "user", "content": "Hi"}], "user": "quote\\"d\'one\'"}',
    b'{"model": "demo-model", "messages": [{"role": "user", "content": "Hi"}], "metadata": {"n": 18446744073709551615}'
    b"}",
])
def test_odd_but_valid_json_gets_an_answer(proxy: ProxyHandle, raw: bytes) -> None:
    response = post(proxy, "/v1/chat/completions", raw)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("raw", [
    b'{"model": "demo-model", "messages": [{"role": "user", "content": "\\ud800"}]}',
    b'{"model": "demo-model", "messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}',
    b'{"model": "demo-model", "messages": [{"role": "user", "content": "Hi"}], "temperature": Infinity}',
])
def test_invalid_json_is_400(proxy: ProxyHandle, raw: bytes) -> None:
    assert post(proxy, "/v1/chat/completions", raw).status_code == 400


def test_many_choices_without_max_tokens_reserve_every_choice(make_proxy: ProxyFactory, tmp_path: Path,
                                                              upstream: UpstreamHandle) -> None:
    # $1 a day: one choice of the policy's 2048-token cap ($0.02) fits, a hundred ($2) do not.
    proxy = make_proxy(policy__dir=str(policies_with_budget(tmp_path, [{"limit_usd": 1, "window": "day"}])))
    client = proxy.client()
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO, n=100)
    assert caught.value.code == "budget_exceeded"
    assert upstream.model.received == []
    with pytest.raises(openai.BadRequestError) as too_many:
        client.chat.completions.create(model="gpt-4o", messages=HELLO, n=1_000_000)
    assert too_many.value.param == "n"
    assert upstream.model.received == []
    assert len(client.chat.completions.create(model="gpt-4o", messages=HELLO, n=2).choices) == 2


def test_prompt_over_the_context_window_is_400_context_length_exceeded(proxy: ProxyHandle,
                                                                       upstream: UpstreamHandle) -> None:
    long = [{"role": "user", "content": "word " * 140_000}]
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client(key=KEYS["research"]).chat.completions.create(model="gpt-4o", messages=long)  # type: ignore[arg-type]
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.message.count("128000") == 1
    client = anthropic.Anthropic(base_url=proxy.root, api_key=KEYS["research"], max_retries=0, timeout=20)
    with pytest.raises(anthropic.BadRequestError) as claude:
        client.messages.create(model="gpt-4o", max_tokens=10, messages=long)  # type: ignore[arg-type]
    assert claude.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "prompt is too long" in claude.value.message
    assert upstream.model.received == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64) | st.floats(allow_nan=False,
                                                                                             allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30)
KEYS_SEEN = ["model", "messages", "content", "role", "n", "best_of", "max_tokens", "max_completion_tokens",
             "max_output_tokens", "stream", "stream_options", "user", "metadata", "tools", "input", "prompt",
             "system", "temperature", "dimensions", "tool_choice", "seed", "top_k", "instructions"]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(list(BASES)),
       changes=st.dictionaries(st.sampled_from(KEYS_SEEN), JSON_VALUES, max_size=4),
       message_changes=st.dictionaries(st.sampled_from(KEYS_SEEN), JSON_VALUES, max_size=2))
def test_fuzzed_bodies_never_get_a_500(proxy: ProxyHandle, path: str, changes: dict[str, Any],
                                       message_changes: dict[str, Any]) -> None:
    body = {**BASES[path], **changes}
    if isinstance(body.get("messages"), list) and body["messages"] and message_changes:
        body["messages"] = [{**HELLO[0], **message_changes}]
    try:
        raw = orjson.dumps(body)
    except TypeError:  # an integer past 64 bits: sent as JSON text all the same
        raw = __import__("json").dumps(body).encode()
    response = post(proxy, path, raw)
    if response.status_code >= 400:
        assert_error_format(path, response)

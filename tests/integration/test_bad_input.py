"""Bad input and broken upstreams: a clear OpenAI-format error, the right SDK class, and the proxy keeps serving."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.config import KEYS

AUTH = {"Authorization": f"Bearer {KEYS['payments']}"}
HELLO = [{"role": "user", "content": "Hi"}]


def still_serving(proxy: ProxyHandle) -> None:
    result = proxy.client().chat.completions.create(model="demo-model", messages=HELLO)
    assert result.choices[0].message.content


def post_raw(proxy: ProxyHandle, body: bytes, path: str = "/v1/chat/completions",
             headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(proxy.root + path, content=body,
                      headers={**AUTH, "Content-Type": "application/json", **(headers or {})})


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert response.headers["x-request-id"]
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("body", [b"{not json", b'{"model": "demo-model", "messages": [', b"[1, 2]", b""])
def test_malformed_json_is_400(proxy: ProxyHandle, body: bytes) -> None:
    assert_openai_error(post_raw(proxy, body), 400)
    still_serving(proxy)


def test_invalid_utf8_is_400_naming_the_encoding(proxy: ProxyHandle) -> None:
    error = assert_openai_error(post_raw(proxy, b'{"model": "demo-model", "messages": [{"role": "user", '
                                               b'"content": "\xff\xfe"}]}'), 400)
    assert "UTF-8" in str(error["message"])
    still_serving(proxy)


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"messages": "not a list"}, "messages"),
    ({"messages": [{"content": "no role"}]}, "messages[0]"),
    ({"messages": HELLO, "max_tokens": "ten"}, "max_tokens"),
    ({"messages": HELLO, "stream": "yes"}, "stream"),
    ({"messages": HELLO, "max_tokens": True}, "max_tokens"),
])
def test_wrong_field_types_raise_bad_request_naming_the_param(proxy: ProxyHandle, kwargs: dict[str, object],
                                                              param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().chat.completions.create(model="demo-model", **kwargs)  # type: ignore[call-overload]
    assert caught.value.param == param
    still_serving(proxy)


def test_missing_model_is_400_and_unknown_model_is_404(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    with pytest.raises(openai.BadRequestError) as missing:
        proxy.client().chat.completions.create(model="", messages=HELLO)
    assert missing.value.param == "model"
    with pytest.raises(openai.NotFoundError) as unknown:
        proxy.client().chat.completions.create(model="gpt-9-ultra", messages=HELLO)
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        proxy.client().embeddings.create(model="demo-model", input="chat model on the embeddings route")
    assert upstream.model.received == []
    still_serving(proxy)


def test_oversize_body_is_413(make_proxy: ProxyFactory, upstream: UpstreamHandle) -> None:
    proxy = make_proxy(server__max_body_bytes=10_000)
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().chat.completions.create(model="demo-model", messages=[{"role": "user", "content": "x" * 20_000}])
    assert caught.value.status_code == 413
    # Chunked bodies (no Content-Length) are cut off at the same limit.
    chunked = httpx.post(proxy.root + "/v1/chat/completions", headers=AUTH,
                         content=iter([b'{"model": "demo-model", "messages": [{"role": "user", "content": "',
                                       b"x" * 20_000, b'"}]}']))
    assert_openai_error(chunked, 413)
    assert upstream.model.received == []
    still_serving(proxy)


def test_unknown_paths_are_404_and_wrong_methods_405(proxy: ProxyHandle) -> None:
    for path in ("/v1/files", "/v1/assistants", "/v1/chat/completions/../../admin", "/elsewhere"):
        assert_openai_error(httpx.get(proxy.root + path, headers=AUTH), 404)
    assert_openai_error(httpx.get(proxy.root + "/v1/chat/completions", headers=AUTH), 405)
    with pytest.raises(openai.NotFoundError):
        proxy.client().files.list()
    still_serving(proxy)


def test_missing_and_wrong_keys_are_401(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    with pytest.raises(openai.AuthenticationError):
        proxy.client(key="not-a-proxy-key").chat.completions.create(model="demo-model", messages=HELLO)
    missing = httpx.post(proxy.root + "/v1/chat/completions", json={"model": "demo-model", "messages": HELLO})
    assert_openai_error(missing, 401, "missing_api_key")
    assert upstream.model.received == []
    assert httpx.get(proxy.root + "/healthz").status_code == 200
    still_serving(proxy)


def test_upstream_errors_pass_through_unchanged(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    upstream.model.faults.status = 500
    with pytest.raises(openai.InternalServerError) as server_error:
        proxy.client().chat.completions.create(model="demo-model", messages=HELLO)
    assert server_error.value.code == "injected"
    upstream.model.faults.status = 429
    with pytest.raises(openai.RateLimitError):
        proxy.client().chat.completions.create(model="demo-model", messages=HELLO, stream=True)
    upstream.model.faults.status = None
    still_serving(proxy)


def test_unreachable_upstream_is_502(make_proxy: ProxyFactory) -> None:
    proxy = make_proxy(upstreams={"test": {"base_url": "http://127.0.0.1:9/v1"}})
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client().chat.completions.create(model="demo-model", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_unavailable"


def test_upstream_first_byte_timeout_is_504(make_proxy: ProxyFactory, upstream: UpstreamHandle) -> None:
    proxy = make_proxy(upstreams={"test": {"base_url": upstream.url, "timeouts": {"first_byte_s": 0.3}}})
    upstream.model.faults.first_byte_delay_s = 2
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client().chat.completions.create(model="demo-model", messages=HELLO)
    assert caught.value.status_code == 504
    assert time.monotonic() - started < 1.5
    upstream.model.faults.first_byte_delay_s = 0
    still_serving(proxy)


def test_upstream_idle_timeout_mid_stream_ends_with_error_event(make_proxy: ProxyFactory,
                                                                upstream: UpstreamHandle) -> None:
    proxy = make_proxy(upstreams={"test": {"base_url": upstream.url, "timeouts": {"idle_s": 0.2}}})
    upstream.model.faults.chunk_delay_s = 0.5
    with pytest.raises(openai.APIError) as caught:
        for _ in proxy.client().chat.completions.create(model="demo-model", messages=HELLO, stream=True):
            pass
    assert "sent nothing" in caught.value.message
    upstream.model.faults.chunk_delay_s = 0
    still_serving(proxy)


def test_upstream_reset_mid_stream_ends_client_stream_with_error_event(proxy: ProxyHandle,
                                                                       upstream: UpstreamHandle) -> None:
    upstream.model.faults.reset_after_events = 3
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in proxy.client().chat.completions.create(model="demo-model", messages=HELLO, stream=True):
            received.append(chunk)
    assert len(received) == 3
    assert "broke off" in caught.value.message
    upstream.model.faults.reset_after_events = None
    still_serving(proxy)

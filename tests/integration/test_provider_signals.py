"""The provider's signals reach the client: an upstream error's status, body, Retry-After and limit headers
pass through (the SDK backs off as the provider asked), and the proxy's own limits do not hide them."""

from __future__ import annotations

import time

import openai
import pytest

from tests.conftest import ProxyHandle, UpstreamHandle

HELLO = [{"role": "user", "content": "Hi"}]
PROVIDER_LIMITS = {"Retry-After": "1", "x-ratelimit-limit-requests": "10000",
                   "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"}


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_429_reaches_the_sdk_with_the_providers_retry_after_and_limits(
        proxy: ProxyHandle, upstream: UpstreamHandle, stream: bool) -> None:
    upstream.model.faults.status = 429
    upstream.model.faults.headers = PROVIDER_LIMITS
    with pytest.raises(openai.RateLimitError) as caught:
        proxy.client().chat.completions.create(model="demo-model", messages=HELLO, stream=stream)  # type: ignore[call-overload]
    headers = caught.value.response.headers
    assert caught.value.code == "injected"
    assert {name.lower(): headers[name] for name in PROVIDER_LIMITS} == {
        name.lower(): value for name, value in PROVIDER_LIMITS.items()}
    # The proxy's own limit state rides along under its own names.
    assert headers["x-llm-proxy-ratelimit-limit-requests"] == "600"


def test_the_sdk_waits_the_providers_retry_after_before_retrying(proxy: ProxyHandle, upstream: UpstreamHandle) -> None:
    upstream.model.faults.status = 429
    upstream.model.faults.headers = {**PROVIDER_LIMITS, "Retry-After": "2"}
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        proxy.client().with_options(max_retries=1).chat.completions.create(model="demo-model", messages=HELLO)
    # Without the header the SDK's own first backoff is under a second; with it, it waits the 2 s asked.
    assert time.monotonic() - started >= 2
    assert len(upstream.model.received) == 2

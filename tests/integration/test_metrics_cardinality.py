"""Metric series stay bounded however many distinct users, request ids or unknown model names arrive."""

from __future__ import annotations

import httpx
import openai
import pytest

from proxy.components import COMPONENTS
from tests.conftest import ProxyFactory, ProxyHandle
from tests.support.config import KEYS


def series(proxy: ProxyHandle) -> set[str]:
    text = httpx.get(proxy.root + "/metrics").text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def traffic(proxy: ProxyHandle, users: range) -> None:
    client = proxy.client(KEYS["research"])
    for n in users:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], user=f"u-{n}",
                                       extra_headers={"x-request-id": f"req-{n}"})
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model=f"made-up-model-{n}", messages=[{"role": "user", "content": "x"}])


def test_series_count_does_not_grow_with_distinct_users(proxy: ProxyHandle) -> None:
    traffic(proxy, range(0, 5))
    after_few = series(proxy)
    traffic(proxy, range(5, 105))
    after_many = series(proxy)
    assert after_many == after_few
    text = "\n".join(after_many)
    assert "u-7" not in text and "req-7" not in text and "made-up-model" not in text


def test_metrics_switched_off_serve_no_endpoint_and_record_nothing(make_proxy: ProxyFactory) -> None:
    proxy = make_proxy(telemetry={"metrics": False})
    traffic(proxy, range(0, 3))
    response = httpx.get(proxy.root + "/metrics")
    assert response.status_code == 404 and response.json()["error"]["type"] == "invalid_request_error"
    registry = proxy.app[COMPONENTS].metrics.registry
    assert not any(sample.value for metric in registry.collect() for sample in metric.samples
                   if not sample.name.endswith("_created"))

"""Upstream kinds (Azure deployments, provider keys injected) and identity modes (gateway keys, sidecar)."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import ProxyFactory, UpstreamHandle
from tests.support.config import KEYS

HELLO = [{"role": "user", "content": "Hi"}]


def test_azure_upstream_gets_deployment_url_api_version_and_api_key(make_proxy: ProxyFactory,
                                                                    upstream: UpstreamHandle, tmp_path: Path) -> None:
    key_file = tmp_path / "azure-key"
    key_file.write_text("azure-secret-key\n")
    root = upstream.url.removesuffix("/v1")
    proxy = make_proxy(upstreams={"test": {"kind": "azure", "base_url": root, "api_version": "2024-10-21",
                                           "api_key_file": str(key_file)}})
    proxy.client().chat.completions.create(model="gpt-4o", messages=HELLO)
    sent = upstream.model.last()
    assert sent.path == "/openai/deployments/demo-model/chat/completions?api-version=2024-10-21"
    assert sent.headers["api-key"] == "azure-secret-key"
    assert "authorization" not in sent.headers
    proxy.client().embeddings.create(model="text-embedding-3-small", input="x")
    assert upstream.model.last().path == "/openai/deployments/demo-embedding/embeddings?api-version=2024-10-21"


def test_openai_upstream_gets_the_provider_key_never_the_callers(make_proxy: ProxyFactory,
                                                                 upstream: UpstreamHandle) -> None:
    proxy = make_proxy(upstreams={"test": {"kind": "openai", "base_url": upstream.url, "api_key": "sk-provider"}})
    raw = proxy.client().chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert upstream.model.last().headers["authorization"] == "Bearer sk-provider"
    assert "sk-provider" not in str(dict(raw.headers)) and "sk-provider" not in raw.text


def test_sidecar_identity_comes_from_config_and_the_end_user_from_a_trusted_header(
        make_proxy: ProxyFactory, upstream: UpstreamHandle) -> None:
    proxy = make_proxy(auth__mode="sidecar", auth__sidecar={"app": "support-bot", "team": "support",
                                                            "user_header": "x-end-user"})
    # The application keeps whatever key its SDK insists on; the sidecar knows who it is.
    client = openai.OpenAI(base_url=proxy.base_url, api_key="unused-in-sidecar-mode", max_retries=0,
                           default_headers={"x-end-user": "u-42"})
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
    assert raw.headers["x-policy-revision"]  # decided like any other call
    # support-bot may only use gpt-4o-mini (policy data): the sidecar identity is what the policy saw.
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert len(upstream.model.received) == 1
    # An issued key still wins over the sidecar identity (e.g. an admin on the same pod).
    rows = httpx.get(proxy.root + "/admin/budgets", params={"scope": "user:u-42"},
                     headers={"Authorization": f"Bearer {KEYS['admin']}"}).json()["data"]
    assert rows and rows[0]["scope"] == "user:u-42"

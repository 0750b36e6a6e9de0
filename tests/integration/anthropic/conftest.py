"""The proxy in front of both test upstreams: an Anthropic one (Claude models) and the OpenAI one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest

from proxy.config import parse_config
from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.anthropic_upstream import AnthropicUpstream
from tests.support.config import KEYS, REPO, config_document
from tests.support.servers import ServerThread

PROVIDER_KEY = "sk-ant-provider-secret-0123456789"
CLAUDE = "claude-sonnet-4-5"


@dataclass
class ClaudeUpstreamHandle:
    model: AnthropicUpstream
    url: str


@pytest.fixture(scope="session")
def _claude_session(servers: ServerThread) -> Iterator[ClaudeUpstreamHandle]:
    model = AnthropicUpstream()
    runner, port = servers.start_app(model.build_app())
    yield ClaudeUpstreamHandle(model, f"http://127.0.0.1:{port}/v1")
    servers.stop_app(runner)


@pytest.fixture
def claude_upstream(_claude_session: ClaudeUpstreamHandle) -> ClaudeUpstreamHandle:
    _claude_session.model.reset()
    return _claude_session


def claude_document(openai_url: str, claude_url: str, state_dir: Path, **overrides: Any) -> dict[str, Any]:
    document = config_document(openai_url, state_dir, **overrides)
    document["upstreams"]["claude"] = {"kind": "anthropic", "base_url": claude_url, "api_key": PROVIDER_KEY,
                                       "timeouts": {"connect_s": 2, "first_byte_s": 5, "idle_s": 5}}
    document["models"][CLAUDE] = {
        "upstream": "claude", "upstream_model": "claude-sonnet-4-5-20250929", "aliases": ["claude-latest"],
        "prices": {"input": 3.0, "cached_input": 0.3, "cache_write_input": 3.75, "output": 15.0},
        "encoding": "claude-3", "context_window": 200000, "max_output_tokens": 8192}
    return document


@pytest.fixture
def make_claude_proxy(make_proxy: ProxyFactory, upstream: UpstreamHandle, claude_upstream: ClaudeUpstreamHandle,
                      tmp_path: Path) -> ProxyFactory:
    def factory(**overrides: Any) -> ProxyHandle:
        document = claude_document(upstream.url, claude_upstream.url, tmp_path, **overrides)
        return make_proxy(parse_config(document, base_dir=REPO))
    return factory


@pytest.fixture
def claude_proxy(make_claude_proxy: ProxyFactory) -> ProxyHandle:
    return make_claude_proxy()


def sdk(proxy: ProxyHandle, key: str = KEYS["research"], **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.root, api_key=key, max_retries=0, timeout=10, **kwargs)


def async_sdk(proxy: ProxyHandle, key: str = KEYS["research"], **kwargs: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.root, api_key=key, max_retries=0, timeout=10, **kwargs)

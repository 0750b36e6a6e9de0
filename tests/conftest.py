"""Shared fixtures: the test upstream and the proxy, both on real loopback HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider

from proxy.config import Config
from proxy.server.app import build_app
from tests.support.config import KEYS, make_config
from tests.support.openai_upstream import TestUpstream
from tests.support.servers import ServerThread


@pytest.fixture(scope="session")
def servers() -> Iterator[ServerThread]:
    thread = ServerThread()
    yield thread
    thread.close()


@dataclass
class UpstreamHandle:
    model: TestUpstream
    url: str


@pytest.fixture(scope="session")
def _upstream_session(servers: ServerThread) -> Iterator[UpstreamHandle]:
    model = TestUpstream()
    runner, port = servers.start_app(model.build_app())
    yield UpstreamHandle(model, f"http://127.0.0.1:{port}/v1")
    servers.stop_app(runner)


@pytest.fixture
def upstream(_upstream_session: UpstreamHandle) -> UpstreamHandle:
    _upstream_session.model.reset()
    return _upstream_session


@dataclass
class ProxyHandle:
    config: Config
    app: web.Application
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str = KEYS["payments"], **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=10, **kwargs)

    def async_client(self, key: str = KEYS["payments"], **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=10, **kwargs)


ProxyFactory = Callable[..., ProxyHandle]


@pytest.fixture
def make_proxy(servers: ServerThread, upstream: UpstreamHandle, tmp_path: Path) -> Iterator[ProxyFactory]:
    runners: list[web.AppRunner] = []

    def factory(config: Config | None = None, tracer_provider: TracerProvider | None = None,
                **overrides: Any) -> ProxyHandle:
        config = config or make_config(upstream.url, tmp_path, **overrides)
        app = build_app(config, tracer_provider=tracer_provider)
        runner, port = servers.start_app(app)
        runners.append(runner)
        return ProxyHandle(config, app, port)

    yield factory
    for runner in runners:
        servers.stop_app(runner)


@pytest.fixture
def proxy(make_proxy: ProxyFactory) -> ProxyHandle:
    return make_proxy()

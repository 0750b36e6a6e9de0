"""An issuer on loopback in the test's own event loop, and Authenticators built from config as `serve` does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.config import Config, parse_config
from proxy.identity.authenticator import Authenticator
from proxy.identity.build import open_authenticator
from proxy.telemetry.metrics import Metrics
from tests.support.config import config_document
from tests.support.jwks_server import AUDIENCE, JwksServer, signing_key

ALL_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]


async def start_issuer(server: JwksServer, stack: AsyncExitStack) -> JwksServer:
    runner = web.AppRunner(server.build_app(), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.issuer = f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def stop() -> None:
        if server.hang is not None:
            server.hang.set()
        await runner.cleanup()
    stack.push_async_callback(stop)
    return server


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exits:
        yield exits


@pytest.fixture
async def issuer(stack: AsyncExitStack) -> JwksServer:
    return await start_issuer(JwksServer([signing_key("rsa-1")]), stack)


def issuer_config(issuer: str, **overrides: Any) -> dict[str, Any]:
    return {"issuer": issuer, "audiences": [AUDIENCE], "algorithms": ALL_ALGORITHMS, "leeway_s": 30,
            "identity": {"app": {"claim": ["azp", "/kubernetes.io/serviceaccount/name"]},
                         "team": {"claim": "groups", "map": {"ml-engineers": "ml", "payments-devs": "payments"}},
                         "user": {"claim": "email"}},
            "admin": {"claim": "groups", "any_of": ["platform-admins"]},
            "policy_claims": ["groups", "/kubernetes.io/namespace"], **overrides}


def auth_config(tmp_path: Path, issuers: list[dict[str, Any]] | None = None, **auth: Any) -> Config:
    document = config_document("http://127.0.0.1:9/v1", tmp_path)
    if issuers is not None:
        auth.setdefault("jwt", {})["issuers"] = issuers
        auth["jwt"].setdefault("refetch_min_interval_s", 0)
    document["auth"].update(auth)
    return parse_config(document, base_dir=tmp_path)


async def authenticator(config: Config, stack: AsyncExitStack, registry: CollectorRegistry | None = None) \
        -> Authenticator:
    return await open_authenticator(config, Metrics(registry or CollectorRegistry()), stack)

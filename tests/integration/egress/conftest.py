"""Egress fixtures: the listener over the shipped policies, and loopback stand-ins for remote hosts."""

from __future__ import annotations

import asyncio
import copy
import gc
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.egress.config import EgressConfig
from proxy.egress.host import IPAddress
from proxy.egress.resolver import Resolver, StaticResolver
from proxy.egress.server import EgressServer, Stream, open_tcp, start_egress
from proxy.eventlog.sqlite import SqliteEventLog
from proxy.identity import Identity, hash_key
from proxy.policy.bundle import load_bundle
from proxy.policy.embedded import EmbeddedRego
from proxy.telemetry.metrics import Metrics

POLICIES = Path(__file__).resolve().parents[3] / "policies"
PROXY_V1 = "http://llm-proxy.test:8080/v1"
KEY = "egress-key-billing"
EVAL_KEY = "egress-key-eval"
KEYS = {
    hash_key(KEY): Identity("billing-api", "payments", None, "k-billing", "api_key"),
    hash_key(EVAL_KEY): Identity("eval-harness", "research", None, "k-eval", "api_key"),
}
# Stand-ins for remote hosts: the name is what the policy sees, the loopback address is where it goes.
# Loopback is internal, so the stand-ins are reached through an allow-list entry for it.
RESOLVE = {name: "127.0.0.1" for name in ("api.openai.com", "api.anthropic.com", "internal.example.test",
                                          "echo.example.test", "plain.example.test")}
STAND_INS = ["127.0.0.1/32:*"]


def policy(**egress: Any) -> EmbeddedRego:
    """The shipped policies and catalogue, with data.egress settings overridden."""
    bundle = load_bundle(POLICIES)
    data = copy.deepcopy(dict(bundle.data))
    data["egress"] = {**data["egress"], "proxy_base_url": PROXY_V1, **egress}
    return EmbeddedRego(replace(bundle, data=data))


class Dialler:
    """The real connect function, recording every address dialled: a refusal must leave this empty."""

    def __init__(self) -> None:
        self.dialled: list[tuple[str, int]] = []

    async def __call__(self, address: IPAddress, port: int) -> Stream:
        self.dialled.append((str(address), port))
        if not address.is_loopback:
            raise AssertionError(f"a test dialled {address}: only loopback may be reached")
        return await open_tcp(address, port)


@dataclass
class Egress:
    server: EgressServer
    store: SqliteEventLog
    metrics: Metrics
    dialler: Dialler

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, key: str | None = None) -> str:
        return f"http://{'' if key is None else key + '@'}127.0.0.1:{self.port}"

    def attempts(self, app: str, provider: str) -> float:
        value = self.metrics.registry.get_sample_value("shadow_ai_attempts_total", {"app": app, "provider": provider})
        return value or 0.0

    def refusals(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("llm_proxy_egress_refused_total", {"reason": reason})
        return value or 0.0


StartEgress = Callable[..., Awaitable[Egress]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartEgress]:
    started: list[Egress] = []

    async def start(engine: EmbeddedRego | None = None, *, resolver: Resolver | None = None,
                    listening: tuple[tuple[str, int], ...] = (), **settings: Any) -> Egress:
        config = EgressConfig.model_validate({"enabled": True, "port": 0, "allow_internal": STAND_INS, **settings})
        live = engine if engine is not None else policy()
        store = SqliteEventLog(tmp_path / f"egress-{len(started)}.sqlite3")
        metrics = Metrics(CollectorRegistry())
        dialler = Dialler()
        # No fallback: a name missing from the table fails to resolve instead of asking real DNS.
        server = await start_egress(config, lambda: live, store, metrics, KEYS, connector=dialler,
                                    resolver=resolver if resolver is not None else StaticResolver(RESOLVE),
                                    listening=listening)
        started.append(Egress(server, store, metrics, dialler))
        return started[-1]

    yield start
    for egress in started:
        await egress.server.close()
        await egress.store.close()
    started.clear()
    # regorus engines may only be dropped on the thread that built them: collect any caught in reference
    # cycles here, not later on whichever worker thread (an SDK call in to_thread) happens to trigger the GC.
    gc.collect()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world", "host": request.host, "via": request.headers.get("Via")})


async def echo_body(request: web.Request) -> web.Response:
    return web.json_response({"body": (await request.read()).decode(), "headers": dict(request.headers)})


def hello_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_post("/echo", echo_body)
    return app


@pytest.fixture
async def serve(ca: trustme.CA) -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """Serve an aiohttp app on a loopback port, over TLS with a certificate for `tls_names` if given."""
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application, tls_names: tuple[str, ...] = ()) -> int:
        context = None
        if tls_names:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(*tls_names).configure_cert(context)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield serve
    for runner in runners:
        await runner.cleanup()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes = b"") -> None:
    """Stream handler: send back everything read (starting with `first`) until the peer closes."""
    try:
        writer.write(first)
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send bytes to the proxy and read until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()

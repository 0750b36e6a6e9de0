"""Bad input, limits, timeouts and socket hygiene of the egress listener, over raw loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from proxy.egress.config import EgressConfig
from proxy.egress.server import start_egress
from proxy.eventlog.sqlite import SqliteEventLog
from proxy.telemetry.metrics import Metrics
from tests.integration.egress.conftest import (
    KEYS,
    RESOLVE,
    STAND_INS,
    Dialler,
    Egress,
    StartEgress,
    echo,
    policy,
    raw_exchange,
)

# A socket closed only by the garbage collector is a leak, even if the fd count recovers.
pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _talk_then_close(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(b"y" * 100_000)
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def _listening(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
                     ) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async with _listening(echo) as port:
        yield port


@pytest.fixture
async def talker_port() -> AsyncIterator[int]:
    async with _listening(_talk_then_close) as port:
        yield port


async def open_tunnel(egress: Egress, port: int) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", egress.port)
    writer.write(f"CONNECT echo.example.test:{port} HTTP/1.1\r\nHost: echo.example.test:{port}\r\n\r\n".encode())
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    if not status.startswith(b"HTTP/1.1 200 "):
        writer.close()
        await writer.wait_closed()
        raise AssertionError(status)
    return reader, writer


async def assert_echoes(egress: Egress, port: int) -> None:
    reader, writer = await open_tunnel(egress, port)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    writer.close()
    await writer.wait_closed()


MALFORMED = [
    b"CONNECT echo.example.test HTTP/1.1\r\n\r\n",
    b"CONNECT echo.example.test:0 HTTP/1.1\r\n\r\n",
    b"CONNECT echo.example.test:70000 HTTP/1.1\r\n\r\n",
    b"CONNECT echo.example.test:https HTTP/1.1\r\n\r\n",
    b"CONNECT :443 HTTP/1.1\r\n\r\n",
    b"CONNECT [::1 HTTP/1.1\r\n\r\n",
    b"CONNECT user@echo.example.test:443 HTTP/1.1\r\n\r\n",
    b"CONNECT echo.example.test:443 SPDY/3\r\n\r\n",
    b"CONNECT echo.example.test:443\r\n\r\n",
    b"garbage\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET https://api.openai.com/ HTTP/1.1\r\n\r\n",
    b"CONNECT echo.example.test:443 HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"CONNECT echo.example.test:443 HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
    b"CONNECT echo.example.test:443 HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    b"CONNECT echo.example.test:443 HTTP/1.1\r\nX-Big: " + b"a" * 20_000,
]


async def test_malformed_requests_get_400_and_the_proxy_keeps_serving(start: StartEgress, echo_port: int) -> None:
    egress = await start()
    for request in MALFORMED:
        started = time.monotonic()
        reply = await raw_exchange(egress.port, request)
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (request[:60], reply)
        assert b"Connection: close" in reply
        # Refused on what was read, not after a timeout.
        assert time.monotonic() - started < 1.5
    await assert_echoes(egress, echo_port)
    assert await egress.store.events("shadow_ai", 0) == []


async def test_listens_on_a_pre_bound_socket_shared_by_workers(tmp_path: Path, echo_port: int) -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    store = SqliteEventLog(tmp_path / "shared.sqlite3")
    config = EgressConfig.model_validate({"port": 3128, "resolve": RESOLVE, "allow_internal": STAND_INS})
    engine = policy()
    server = await start_egress(config, lambda: engine, store, Metrics(CollectorRegistry()), KEYS, sock=sock)
    try:
        assert server.port == sock.getsockname()[1]
        await assert_echoes(Egress(server, store, Metrics(CollectorRegistry()), Dialler()), echo_port)
    finally:
        await server.close()
        await store.close()


async def test_incomplete_head_times_out_with_408(start: StartEgress) -> None:
    egress = await start(header_timeout_s=0.2)
    reply = await raw_exchange(egress.port, b"CONNECT echo.example.test:443 HTTP/1.1\r\n")
    assert reply.startswith(b"HTTP/1.1 408 ")


async def test_unreachable_upstream_gets_502(start: StartEgress) -> None:
    egress = await start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    reply = await raw_exchange(egress.port, f"CONNECT echo.example.test:{closed_port} HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 502 ")


async def test_bytes_sent_before_the_200_reach_the_upstream(start: StartEgress, echo_port: int) -> None:
    egress = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", egress.port)
    writer.write(f"CONNECT echo.example.test:{echo_port} HTTP/1.1\r\n\r\nearly".encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
    assert await asyncio.wait_for(reader.readexactly(5), 5) == b"early"
    writer.close()
    await writer.wait_closed()


async def test_connection_limit_answers_503_quickly(start: StartEgress, echo_port: int) -> None:
    egress = await start(max_connections=2)
    first = await open_tunnel(egress, echo_port)
    second = await open_tunnel(egress, echo_port)
    started = time.monotonic()
    reply = await raw_exchange(egress.port, f"CONNECT echo.example.test:{echo_port} HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 503 ") and b"egress_busy" in reply
    assert time.monotonic() - started < 0.5
    first[1].close()
    await first[1].wait_closed()
    await _until(lambda: egress.server.active_connections < 2)
    await assert_echoes(egress, echo_port)
    second[1].close()
    await second[1].wait_closed()


async def test_idle_tunnel_is_closed_after_the_idle_timeout(start: StartEgress, echo_port: int) -> None:
    egress = await start(idle_timeout_s=0.3)
    reader, writer = await open_tunnel(egress, echo_port)
    writer.write(b"x")
    assert await reader.readexactly(1) == b"x"
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert 0.2 < time.monotonic() - started < 2
    writer.close()
    await writer.wait_closed()


async def test_close_ends_open_tunnels(start: StartEgress, echo_port: int) -> None:
    egress = await start()
    reader, writer = await open_tunnel(egress, echo_port)
    await egress.server.close()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert egress.server.active_connections == 0
    writer.close()
    await writer.wait_closed()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _until(condition: Callable[[], bool]) -> None:
    """Poll for up to 2 s: sockets close on the loop's next turns, not at once."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0.02)


async def _client_aborts_mid_transfer(egress: Egress, port: int, graceful: bool) -> None:
    reader, writer = await open_tunnel(egress, port)
    writer.write(b"z" * 300_000)
    await reader.readexactly(10_000)
    if graceful:
        writer.close()
    else:
        writer.transport.abort()
    await writer.wait_closed()


async def _server_closes(egress: Egress, port: int) -> None:
    reader, writer = await open_tunnel(egress, port)
    assert len(await asyncio.wait_for(reader.read(), 5)) == 100_000
    writer.close()
    await writer.wait_closed()


async def _idles_out(egress: Egress, port: int) -> None:
    reader, writer = await open_tunnel(egress, port)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await writer.wait_closed()


async def test_200_tunnels_leave_no_file_descriptors_behind(
    start: StartEgress, echo_port: int, talker_port: int
) -> None:
    egress = await start(idle_timeout_s=0.3)
    await assert_echoes(egress, echo_port)
    await _until(lambda: egress.server.active_connections == 0)
    baseline = _fds()
    for _ in range(4):
        await asyncio.gather(
            *(_client_aborts_mid_transfer(egress, echo_port, graceful=i % 2 == 0) for i in range(18)),
            *(_server_closes(egress, talker_port) for _ in range(17)),
            *(_idles_out(egress, echo_port) for _ in range(15)),
        )
    await _until(lambda: _fds() <= baseline and egress.server.active_connections == 0)
    assert egress.server.active_connections == 0
    assert _fds() == baseline

"""The byte relay over loopback socket pairs: both directions, half-close, the shared idle clock."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from proxy.egress.tunnel import relay, shut

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _pair() -> tuple[Stream, Stream]:
    left, right = socket.socketpair()
    return await asyncio.open_connection(sock=left), await asyncio.open_connection(sock=right)


@pytest.fixture
async def wired() -> AsyncIterator[tuple[Stream, Stream, Stream, Stream]]:
    """client <-> (proxy client side, proxy upstream side) <-> origin"""
    client, proxy_client = await _pair()
    proxy_upstream, origin = await _pair()
    yield client, proxy_client, proxy_upstream, origin
    for _, writer in (client, proxy_client, proxy_upstream, origin):
        await shut(writer, graceful=False)


async def test_bytes_flow_both_ways_and_eof_is_passed_on(wired: tuple[Stream, Stream, Stream, Stream]) -> None:
    client, proxy_client, proxy_upstream, origin = wired
    running = asyncio.create_task(relay(proxy_client, proxy_upstream, idle_timeout_s=5))
    client[1].write(b"a" * 200_000)
    client[1].write_eof()
    assert await origin[0].read() == b"a" * 200_000
    origin[1].write(b"reply")
    origin[1].write_eof()
    assert await client[0].read() == b"reply"
    stats = await asyncio.wait_for(running, 2)
    assert (stats.up, stats.down, stats.ending) == (200_000, 5, "eof")


async def test_traffic_in_one_direction_keeps_the_tunnel_alive(wired: tuple[Stream, Stream, Stream, Stream]) -> None:
    _, proxy_client, proxy_upstream, origin = wired
    running = asyncio.create_task(relay(proxy_client, proxy_upstream, idle_timeout_s=0.3))
    for _ in range(6):
        origin[1].write(b"tick")
        await asyncio.sleep(0.1)
    assert not running.done()
    stats = await asyncio.wait_for(running, 2)
    assert stats.ending == "idle" and stats.down == 24 and stats.up == 0


async def test_stop_on_upstream_eof_ends_without_waiting_for_the_client(
    wired: tuple[Stream, Stream, Stream, Stream],
) -> None:
    client, proxy_client, proxy_upstream, origin = wired
    running = asyncio.create_task(relay(proxy_client, proxy_upstream, idle_timeout_s=5, stop_on_upstream_eof=True))
    origin[1].write(b"HTTP/1.1 200 OK\r\n\r\n")
    origin[1].write_eof()
    stats = await asyncio.wait_for(running, 2)
    assert stats.ending == "eof" and stats.down == 19
    assert await client[0].read() == b"HTTP/1.1 200 OK\r\n\r\n"


async def test_a_reset_side_ends_the_relay_as_an_error(wired: tuple[Stream, Stream, Stream, Stream]) -> None:
    client, proxy_client, proxy_upstream, origin = wired
    running = asyncio.create_task(relay(proxy_client, proxy_upstream, idle_timeout_s=5))
    origin[1].transport.abort()
    client[1].write(b"x" * 1_000_000)
    stats = await asyncio.wait_for(running, 2)
    assert stats.ending == "error", stats

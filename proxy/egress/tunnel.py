"""Byte relay between two connections: 64 KiB chunks, drain backpressure, one idle clock for both ways.

Nothing here parses the bytes; callers close both connections with `shut` whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Literal

CHUNK = 64 * 1024
CLOSE_GRACE_S = 2.0

Ending = Literal["eof", "idle", "error"]


@dataclass(slots=True)
class Relayed:
    up: int = 0
    down: int = 0
    last_activity: float = 0.0
    ending: Ending = "eof"


async def relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    idle_timeout_s: float,
    *,
    stop_on_upstream_eof: bool = False,
) -> Relayed:
    """Copy both ways until both sides finished, either failed, or nothing moved for idle_timeout_s.

    An EOF is passed on as a half-close so the other direction can finish (TLS close_notify exchanges);
    with stop_on_upstream_eof (plain HTTP: the origin closing ends the response) it ends the relay.
    """
    loop = asyncio.get_running_loop()
    stats = Relayed(last_activity=loop.time())
    up = asyncio.create_task(_copy(client[0], upstream[1], stats, "up"))
    down = asyncio.create_task(_copy(upstream[0], client[1], stats, "down"))
    pending: set[asyncio.Task[None]] = {up, down}
    try:
        while pending:
            # The clock is shared: a long download with a silent uploader is not idle.
            remaining = stats.last_activity + idle_timeout_s - loop.time()
            if remaining <= 0:
                stats.ending = "idle"
                break
            done, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            # Every finished task's exception is read, so none is reported as never retrieved.
            failures = [task.exception() for task in done]
            if any(failure is not None for failure in failures):
                stats.ending = "error"
                break
            if stop_on_upstream_eof and down in done:
                break
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return stats


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stats: Relayed, way: str) -> None:
    loop = asyncio.get_running_loop()
    while data := await reader.read(CHUNK):
        stats.last_activity = loop.time()
        if way == "up":
            stats.up += len(data)
        else:
            stats.down += len(data)
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


async def shut(writer: asyncio.StreamWriter, *, graceful: bool) -> None:
    """Close a connection for certain: flush politely when asked, but a peer that stops reading cannot
    hold the socket open, so after a short grace the transport is aborted."""
    transport = writer.transport
    if not graceful:
        transport.abort()
    else:
        writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_GRACE_S)
    except (TimeoutError, OSError, ConnectionError):
        transport.abort()
    except asyncio.CancelledError:
        transport.abort()
        raise

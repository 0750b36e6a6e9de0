"""Load generator for chat completions, streaming or not: raw asyncio streams on uvloop, one JSON result.

Closed loop (default): `--concurrency` keep-alive connections each send the next request when the last one
has finished. Open loop (`--rate R`): requests are due every 1/R s and latency counts from the due time,
so a stalled server shows up as latency instead of as fewer requests (no coordinated omission).

Per request it records:
- total: from writing the request (closed loop) or its due time (open loop) to the last byte of the body;
- TTFT (time to first token, streams only): from the same start to the first SSE `data:` event whose
  choice carries non-empty `delta.content`, i.e. the first word after the role-only chunk.

Usage: python bench/loadgen.py --url URL --body-file F [--key K] [--concurrency 32] [--duration 10]
                               [--warmup 1] [--rate R]
Prints {"requests", "errors", "statuses", "seconds", "requests_per_s", "total_ms": {p50, p90, p99, max},
"ttft_ms": {...} or null} on stdout, and the lines `measure` and `stop` on stderr when the measured window
opens and closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import uvloop

TIMEOUT_S = 30.0


@dataclass
class Tally:
    totals: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a prepared request and reads the whole response."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def exchange(self, request: bytes, started: float) -> tuple[int, float | None]:
        """Send `request`; return (status, TTFT in seconds or None when the body is not an SSE stream)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        sse = headers.get(b"content-type", b"").startswith(b"text/event-stream")
        ttft = await self._read_body(headers, started if sse else None)
        if headers.get(b"connection") == b"close":
            await self.close()
        return status, ttft

    async def _read_body(self, headers: dict[bytes, bytes], started: float | None) -> float | None:
        assert self.reader is not None
        watcher = FirstToken(started) if started is not None else None
        if b"content-length" in headers:
            data = await self.reader.readexactly(int(headers[b"content-length"]))
            if watcher:
                watcher.feed(data)
        elif headers.get(b"transfer-encoding") == b"chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                data = await self.reader.readexactly(size + 2)
                if watcher and watcher.at is None:
                    watcher.feed(data[:-2])
        else:  # delimited by the server closing the connection
            while data := await self.reader.read(1 << 16):
                if watcher and watcher.at is None:
                    watcher.feed(data)
            await self.close()
        return watcher.at if watcher else None


class FirstToken:
    """Watches SSE bytes for the first `data:` event with non-empty `delta.content` (or legacy `text`)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.buffer = b""
        self.at: float | None = None

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while self.at is None and b"\n\n" in self.buffer:
            event, self.buffer = self.buffer.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data:") and has_token(line[5:].strip()):
                    self.at = time.perf_counter() - self.started


def has_token(payload: bytes) -> bool:
    if not payload or payload == b"[DONE]":
        return False
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        choices = orjson.loads(payload).get("choices") or []
        return any((c.get("delta") or {}).get("content") or c.get("text") for c in choices)
    return False


def build_request(url: str, body: bytes, key: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n")
    return host, port, head.encode() + body


async def run(url: str, body: bytes, key: str, concurrency: int, duration: float, warmup: float,
              rate: float | None) -> dict[str, object]:
    host, port, request = build_request(url, body, key)
    tally = Tally()
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration
    due: asyncio.Queue[float] = asyncio.Queue()

    async def one(connection: Connection, started: float) -> None:
        try:
            async with asyncio.timeout(TIMEOUT_S):
                status, ttft = await connection.exchange(request, started)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                IndexError):
            tally.errors += measure_from <= time.perf_counter() <= stop_at
            await connection.close()
            return
        done = time.perf_counter()
        # Completions inside the window, whenever they started: in a steady state that is the throughput, and
        # it matches the server's CPU time read over the same window.
        if not measure_from <= done <= stop_at:
            return
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status != 200:
            tally.errors += 1
            return
        tally.totals.append(done - started)
        if ttft is not None:
            tally.ttfts.append(ttft)

    async def closed_loop() -> None:
        connection = Connection(host, port)
        while time.perf_counter() < stop_at:
            await one(connection, time.perf_counter())
        await connection.close()

    async def open_loop() -> None:
        connection = Connection(host, port)
        while (started := await due.get()) >= 0:
            await one(connection, started)
        await connection.close()

    async def ticker(per_second: float) -> None:
        tick = start
        while tick < stop_at:
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            due.put_nowait(tick)
            tick += 1.0 / per_second
        for _ in range(concurrency):
            due.put_nowait(-1.0)

    # Markers on stderr let the caller read the proxy's CPU time over exactly the measured window.
    loop = asyncio.get_running_loop()
    for at, marker in ((measure_from, "measure"), (stop_at, "stop")):
        loop.call_later(at - time.perf_counter(), functools.partial(print, marker, file=sys.stderr, flush=True))
    if rate:
        await asyncio.gather(ticker(rate), *(open_loop() for _ in range(concurrency)))
    else:
        await asyncio.gather(*(closed_loop() for _ in range(concurrency)))
    return summary(tally, duration)


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1] * 1000, 3)}


def summary(tally: Tally, duration: float) -> dict[str, object]:
    return {
        "requests": len(tally.totals),
        "errors": tally.errors,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "seconds": duration,
        "requests_per_s": round(len(tally.totals) / duration, 1),
        "total_ms": percentiles(tally.totals),
        "ttft_ms": percentiles(tally.ttfts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--key", default="demo-key-research")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent but not recorded")
    parser.add_argument("--rate", type=float, help="open loop: requests per second (concurrency = max in flight)")
    args = parser.parse_args()
    result = uvloop.run(run(args.url, args.body_file.read_bytes(), args.key, args.concurrency, args.duration,
                            args.warmup, args.rate))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()

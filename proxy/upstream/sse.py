"""Incremental Server-Sent Events framing: bytes in, complete events out, whatever the chunking."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import UpstreamError

DONE = b"[DONE]"


@dataclass(frozen=True, slots=True)
class Event:
    raw: bytes  # the whole event including its blank-line terminator, to relay untouched
    data: bytes | None  # the joined `data:` lines, or None for a comment/keep-alive
    name: bytes | None = None


class SSEParser:
    """Splits a byte stream into events. Tolerates \\r\\n line endings and events split anywhere.

    `feed` hands the events out one at a time as they are asked for, so the first event of a large
    read reaches the client before the rest are parsed; an event counts as taken once handed out, and
    those not yet asked for are handed out first by the next `feed`."""

    __slots__ = ("_buffer", "_start")

    def __init__(self) -> None:
        self._buffer = b""
        self._start = 0  # where the events not yet handed out begin in _buffer

    def feed(self, chunk: bytes) -> Iterator[Event]:
        rest = self._buffer[self._start:]
        buffer = rest + chunk if rest else chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        self._buffer, self._start = buffer, 0
        return self._events(buffer)

    def _events(self, buffer: bytes) -> Iterator[Event]:
        while self._buffer is buffer:  # a later feed took over what is left
            end = buffer.find(b"\n\n", self._start)
            if end < 0:
                return
            start, self._start = self._start, end + 2
            yield parse_event(buffer[start:end + 2])

    def pending(self) -> bytes:
        return self._buffer[self._start:]


def parse_event(raw: bytes) -> Event:
    # Most events are one `data: ` line (every OpenAI chunk): no need to split them into lines.
    if raw.startswith(b"data: ") and raw.find(b"\n", 6) == len(raw) - 2:
        return Event(raw, raw[6:-2])
    data: list[bytes] = []
    name = None
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            name = line[6:].strip()
    return Event(raw, b"\n".join(data) if data else None, name)


def encode(data: bytes, name: bytes | None = None) -> bytes:
    prefix = b"event: " + name + b"\n" if name else b""
    return prefix + b"data: " + data + b"\n\n"


def event_object(data: bytes, upstream: str) -> dict[str, Any] | None:
    """An event's JSON object, or None for other JSON values; an event that is not JSON at all is the
    upstream's error (the stream is broken from there on), never the client's to parse."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"Upstream {upstream!r} sent a stream event that is not JSON.",
                            code="upstream_bad_event") from None
    return document if isinstance(document, dict) else None

"""Incremental Server-Sent Events framing: bytes in, complete events out, whatever the chunking."""

from __future__ import annotations

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
    """Splits a byte stream into events. Tolerates \\r\\n line endings and events split anywhere."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        events = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            events.append(parse_event(buffer[start:end + 2]))
            start = end + 2
        self._buffer = buffer[start:]
        return events

    def pending(self) -> bytes:
        return self._buffer


def parse_event(raw: bytes) -> Event:
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

"""JSON log lines on stdout through structlog, with request context bound once per request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, BinaryIO

import orjson
import structlog

from proxy.telemetry.clock import rfc3339

# Keys that must never reach a log line, whatever a caller passes by mistake.
_FORBIDDEN_KEYS = frozenset({"authorization", "api_key", "api-key", "proxy-authorization", "password",
                             "prompt", "messages", "content"})

# As structlog's add_log_level names them.
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _FORBIDDEN_KEYS.intersection(event):
        event[key] = "[removed]"
    return event


def _stamp(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Level, timestamp and the secret filter in one step: each structlog processor is a call per line,
    and structlog's TimeStamper builds a datetime per line (together ~4 us of a ~13 us line)."""
    event["level"] = _LEVEL_NAMES.get(method, method)
    event["ts"] = rfc3339(time.time())
    if not _FORBIDDEN_KEYS.isdisjoint(event):
        _drop_secrets(None, method, event)
    return event


def _dumps(value: Any, **_: Any) -> bytes:
    return orjson.dumps(value, default=str)


class LoopFlushedLogger:
    """Writes each line into the stream's buffer and flushes once per event-loop iteration.

    structlog's BytesLogger flushes after every line: a write() system call per line, two per request.
    Lines written on the loop are flushed together by a callback at the end of the iteration (so at
    most that iteration's lines wait, microseconds); lines from other threads, or with no loop
    running, are flushed at once.
    """

    __slots__ = ("_file", "_scheduled_on")

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        # The loop a flush is pending on. Per loop, because a loop may stop and close before running
        # it: lines written on the next loop must not wait for a callback that will never come.
        self._scheduled_on: asyncio.AbstractEventLoop | None = None

    def msg(self, message: bytes) -> None:
        self._file.write(message + b"\n")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._file.flush()
            return
        if self._scheduled_on is not loop:
            self._scheduled_on = loop
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled_on = None
        with contextlib.suppress(ValueError, OSError):  # closed at shutdown, or the reader went away
            self._file.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class LibraryRecords(logging.Handler):
    """Standard-library log records (the OpenTelemetry SDK's exporters and batch processor, asyncio) as JSON
    events like the proxy's own, instead of Python's plain-text last-resort lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = "otlp_export_failed" if record.name.startswith("opentelemetry.exporter") else "library_log"
            extra = {"exc_info": record.exc_info} if record.exc_info else {}
            structlog.get_logger(record.name).log(record.levelno, event, logger=record.name,
                                                  message=record.getMessage(), **extra)
        except Exception:
            self.handleError(record)


def configure_logging(level: str = "info", stream: Any = None) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _stamp,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_factory(stream if stream is not None else sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    if not any(isinstance(handler, LibraryRecords) for handler in root.handlers):
        root.addHandler(LibraryRecords(logging.WARNING))
    # Libraries' own debug and info (urllib3's connections, asyncio's) stay out even at log_level debug.
    root.setLevel(max(logging.WARNING, _LEVELS[level]))


def _factory(file: BinaryIO) -> Any:
    logger = LoopFlushedLogger(file)
    return lambda *_: logger


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)

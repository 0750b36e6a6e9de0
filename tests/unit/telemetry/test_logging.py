"""Log lines: JSON through structlog, flushed once per loop iteration on the loop and at once elsewhere."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import threading
from collections.abc import Iterator

import orjson
import pytest
import structlog

from proxy.telemetry.logging import LoopFlushedLogger, configure_logging, get_logger


class CountingRaw(io.RawIOBase):
    """The file under a BufferedWriter: records each write() the buffer makes (a system call on a pipe)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)


@pytest.fixture
def raw() -> Iterator[CountingRaw]:
    raw = CountingRaw()
    yield raw
    structlog.reset_defaults()


def lines(raw: CountingRaw) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in b"".join(raw.writes).splitlines()]


async def test_lines_on_the_loop_go_out_together_after_the_iteration(raw: CountingRaw) -> None:
    configure_logging("info", io.BufferedWriter(raw))
    log = get_logger("test")
    log.info("first", n=1)
    log.info("second", n=2, api_key="sk-should-not-appear")
    assert raw.writes == []  # still in the buffer while this callback runs
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(raw.writes) == 1
    first, second = lines(raw)
    assert first["event"] == "first" and second["n"] == 2 and second["api_key"] == "[removed]"


def test_lines_without_a_loop_or_from_a_thread_are_flushed_at_once(raw: CountingRaw) -> None:
    configure_logging("info", io.BufferedWriter(raw))
    get_logger("test").warning("no_loop")
    assert len(raw.writes) == 1
    thread = threading.Thread(target=lambda: get_logger("test").error("from_thread"))
    thread.start()
    thread.join()
    assert [line["event"] for line in lines(raw)] == ["no_loop", "from_thread"]


async def test_a_closed_stream_does_not_break_the_loop() -> None:
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "wb")
    logger = LoopFlushedLogger(stream)
    logger.msg(b"x")
    stream.close()
    await asyncio.sleep(0)  # the scheduled flush meets a closed file and says nothing
    os.close(read_end)


def test_a_loop_closed_with_a_flush_pending_does_not_hold_later_lines(raw: CountingRaw) -> None:
    configure_logging("info", io.BufferedWriter(raw))
    log = get_logger("test")
    loop = asyncio.new_event_loop()
    loop.call_soon(lambda: (log.info("last_on_old_loop"), loop.stop()))
    loop.run_forever()  # stops before the scheduled flush runs
    loop.close()

    async def later() -> None:
        log.info("on_new_loop")
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(later())
    assert [line["event"] for line in lines(raw)] == ["last_on_old_loop", "on_new_loop"]


def test_library_warnings_become_json_events_with_the_proxy_s_fields(raw: CountingRaw) -> None:
    configure_logging("info", io.BufferedWriter(raw))
    logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter").warning(
        "Failed to export batch code: %s", 503)
    logging.getLogger("asyncio").error("Task was destroyed but it is pending!")
    logging.getLogger("asyncio").info("below the library threshold")
    first, second = lines(raw)
    assert first["event"] == "otlp_export_failed" and first["level"] == "warning"
    assert first["message"] == "Failed to export batch code: 503"
    assert first["logger"] == "opentelemetry.exporter.otlp.proto.http.trace_exporter"
    assert second["event"] == "library_log" and second["level"] == "error" and "ts" in second


def test_lines_carry_level_and_an_rfc3339_utc_timestamp(raw: CountingRaw) -> None:
    configure_logging("debug", io.BufferedWriter(raw))
    log = get_logger("test")
    log.warn("old_name")
    log.debug("fine")
    warned, debugged = lines(raw)
    assert warned["level"] == "warning" and debugged["level"] == "debug"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", str(warned["ts"]))

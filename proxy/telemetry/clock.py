"""RFC 3339 UTC timestamps with microseconds, for log lines and decision logs, formatted cheaply."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import MutableMapping
from typing import Any


def rfc3339(timestamp: float) -> str:
    # Formatting a datetime cost ~20 us of every request under load; the seconds part changes once a second.
    # Split before scaling, as datetime.fromtimestamp does: timestamp * 1e6 loses a microsecond to
    # float rounding in about one case in eight.
    fraction, whole = math.modf(timestamp)
    seconds, micros = int(whole), round(fraction * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    elif micros < 0:
        seconds, micros = seconds - 1, micros + 1_000_000
    return f"{_seconds_prefix(seconds)}{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _seconds_prefix(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))


def add_timestamp(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: `ts` as structlog's TimeStamper(fmt="iso", utc=True) writes it, at a third of
    its cost (it builds a datetime per line)."""
    event["ts"] = rfc3339(time.time())
    return event

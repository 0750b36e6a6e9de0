"""Pure budget windows: calendar day and month in UTC, and rolling windows summed from time buckets.

A rolling window of W seconds keeps spend in buckets of ceil(W/60) seconds (at least 1). A bucket counts
while any part of it overlaps the window, so spend leaves the window up to one bucket late: the error is
always on the safe side, never more than 1/60 of the window, and a check reads at most 61 buckets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

WindowKind = Literal["day", "month", "rolling"]
# Counters outlive their window by this much so `budget show` can still read the last period.
KEEP_AFTER_WINDOW_S = 2 * 86400
_ROLLING_BUCKETS = 60


@dataclass(frozen=True, slots=True)
class Window:
    kind: WindowKind
    seconds: int = 0

    def __post_init__(self) -> None:
        if self.kind == "rolling":
            if self.seconds <= 0:
                raise ValueError("a rolling window needs seconds > 0")
        elif self.kind in ("day", "month"):
            if self.seconds:
                raise ValueError(f"a {self.kind} window takes no seconds")
        else:
            raise ValueError(f"unknown window kind {self.kind!r}")

    @classmethod
    def parse(cls, text: str) -> Window:
        """`day`, `month` or `rolling:<seconds>`, the form `str()` writes."""
        kind, _, seconds = text.partition(":")
        if kind == "rolling":
            if not seconds.isdigit():
                raise ValueError(f"rolling window needs seconds, e.g. rolling:3600, got {text!r}")
            return cls("rolling", int(seconds))
        if seconds or kind not in ("day", "month"):
            raise ValueError(f"unknown window {text!r}: expected day, month or rolling:<seconds>")
        return cls(kind)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"rolling:{self.seconds}" if self.kind == "rolling" else self.kind

    @property
    def bucket_seconds(self) -> int:
        return max(1, math.ceil(self.seconds / _ROLLING_BUCKETS)) if self.kind == "rolling" else 0


DAY = Window("day")
MONTH = Window("month")


@dataclass(frozen=True, slots=True)
class Period:
    """Where spend made at one instant is committed, and until when the counter is kept."""

    bucket: str
    resets_at: float | None
    expires_at: int


def period(window: Window, now: float) -> Period:
    return _span(window, now)[2]


def _span(window: Window, now: float) -> tuple[float, float, Period]:
    """The period at `now` and the [start, end) during which it stays the same."""
    if window.kind == "rolling":
        start = bucket_start(window, now)
        end = start + window.bucket_seconds
        return start, end, Period(str(start), None, end + window.seconds + KEEP_AFTER_WINDOW_S)
    moment = datetime.fromtimestamp(now, UTC)
    if window.kind == "day":
        begin = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        bucket, finish = begin.strftime("%Y-%m-%d"), begin + timedelta(days=1)
    else:
        begin = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        bucket = begin.strftime("%Y-%m")
        finish = (
            begin.replace(year=begin.year + 1, month=1) if begin.month == 12 else begin.replace(month=begin.month + 1)
        )
    resets_at = finish.timestamp()
    return begin.timestamp(), resets_at, Period(bucket, resets_at, int(resets_at) + KEEP_AFTER_WINDOW_S)


class PeriodCache:
    """`period()` remembered per window until its bucket changes (a day, a month, a rolling bucket later).

    The stores ask for it on every limit of every call; computing it is datetime work each time.
    """

    def __init__(self) -> None:
        self._spans: dict[Window, tuple[float, float, Period]] = {}

    def __call__(self, window: Window, now: float) -> Period:
        span = self._spans.get(window)
        if span is None or not span[0] <= now < span[1]:
            span = self._spans[window] = _span(window, now)
        return span[2]


def bucket_start(window: Window, t: float) -> int:
    size = window.bucket_seconds
    return int(t // size) * size


def in_window(window: Window, bucket: int, now: float) -> bool:
    return bucket + window.bucket_seconds > now - window.seconds


def leaves_window_at(window: Window, bucket: int) -> float:
    return float(bucket + window.bucket_seconds + window.seconds)


def rolling_total(window: Window, buckets: Mapping[int, int], now: float) -> int:
    return sum(value for bucket, value in buckets.items() if in_window(window, bucket, now))


def rolling_retry_after(window: Window, buckets: Mapping[int, int], now: float, excess: int) -> float:
    """Seconds until enough old buckets leave the window to free `excess`; the whole window if never."""
    freed = 0
    for bucket in sorted(b for b in buckets if in_window(window, b, now)):
        freed += buckets[bucket]
        if freed >= excess:
            return max(0.0, leaves_window_at(window, bucket) - now)
    return float(window.seconds)


def rolling_next_release(window: Window, buckets: Mapping[int, int], now: float) -> float | None:
    """When the oldest spend still counted leaves the window: the next moment the budget grows."""
    live = [b for b, value in buckets.items() if value and in_window(window, b, now)]
    return leaves_window_at(window, min(live)) if live else None

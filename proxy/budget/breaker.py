"""A circuit breaker for one budget store: after `failures` failures in a row (errors or timeouts) it opens, and
for `cooldown_s` nothing waits on the store; then one probe runs (half-open) and its outcome closes or reopens it.

    closed --N failures--> open --cool-down--> half_open --probe ok--> closed
                             ^                     |
                             +-----probe failed----+

Only `LedgeredStore` drives it (and the store's own queue asks `admits`); every transition is logged once
and reported to `on_change` (the metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import structlog

log = structlog.get_logger(__name__)
State = Literal["closed", "half_open", "open"]


class Breaker:
    def __init__(
        self,
        store: str,
        *,
        failures: int = 5,
        cooldown_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        if failures < 1 or cooldown_s <= 0:
            raise ValueError("a breaker needs failures >= 1 and cooldown_s > 0")
        self.store = store
        self.state: State = "closed"
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at = 0.0

    @property
    def closed(self) -> bool:
        """Whether callers may use the store; when not, they take the fail-open or fail-closed path at once."""
        return self.state == "closed"

    def admits(self) -> bool:
        """Whether a call already queued for the store should still be sent (not while open)."""
        return self.state != "open"

    def succeeded(self) -> None:
        self._failures = 0

    def failed(self) -> None:
        self._failures += 1
        if self.state == "closed" and self._failures >= self._threshold:
            self._open()

    def probe_due(self) -> bool:
        return self.state == "open" and self._clock() >= self._opened_at + self._cooldown

    def seconds_to_probe(self) -> float:
        return max(0.0, self._opened_at + self._cooldown - self._clock()) if self.state == "open" else 0.0

    def probing(self) -> None:
        """The cool-down is over: one probe goes to the store now."""
        if self.state == "open":
            self._move("half_open")

    def probe_succeeded(self) -> None:
        self._failures = 0
        if self.state == "half_open":
            self._move("closed")

    def probe_failed(self) -> None:
        if self.state == "half_open":
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move("open")

    def _move(self, state: State) -> None:
        previous, self.state = self.state, state
        # An open circuit is news an operator acts on; its recovery is worth a line at info.
        emit = log.warning if state == "open" else log.info
        emit(
            "budget_store_circuit",
            store=self.store,
            state=state,
            previous=previous,
            consecutive_failures=self._failures,
        )
        if self._on_change is not None:
            self._on_change(state)

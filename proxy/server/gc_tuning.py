"""Interpreter settings for a long-running server, applied once a worker has started: the garbage
collector and the GIL switch interval.

Everything built at start-up (modules, the catalogue, compiled policies, tokenizer tables' Python side)
lives as long as the process, yet CPython's cyclic collector walks all of it on every full collection.
Under load (`bench/gc_bench.py`, 1 KB chat at concurrency 32) the defaults spent 95-140 us of CPU per
request in the collector, with 1.6 full collections per 1,000 requests pausing the loop for up to 50 ms.
Freezing the start-up heap takes it out of the collector's sight, and a larger young generation makes
the collections that remain rarer: ~20 us per request and no full collection in the run. Every pause
is observed in `llm_proxy_gc_pause_seconds`, so a regression shows on the dashboard.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import sys
import time

from prometheus_client import Histogram

from proxy.config import ServerConfig


def tune_runtime(config: ServerConfig) -> None:
    """Collect the start-up garbage, freeze what survives, apply the GC thresholds and the GIL switch
    interval (CPython's 5 ms let a background thread, such as trace export, hold a request that long)."""
    gc.collect()
    if config.gc_freeze:
        gc.freeze()
    gc.set_threshold(*config.gc_thresholds)
    sys.setswitchinterval(config.gil_switch_interval_ms / 1000)


class PauseRecorder:
    """Records every collection's pause while registered; `drain()` moves them into the histogram.

    The GC callback only appends to a deque: observing the histogram there could deadlock, because with
    PROMETHEUS_MULTIPROC_DIR every value write takes one process-wide, non-reentrant lock, and a
    collection can start while this thread holds it (creating a labelled child allocates under it).
    """

    def __init__(self, pauses: Histogram) -> None:
        self._by_generation = [pauses.labels(str(generation)) for generation in range(3)]
        # Bounded: were nothing to drain it, a long run would still not grow without limit.
        self._recorded: collections.deque[tuple[int, float]] = collections.deque(maxlen=10_000)
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._recorded.append((info["generation"], time.perf_counter() - self._started))

    def __enter__(self) -> PauseRecorder:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)
        self.drain()

    def drain(self) -> None:
        while self._recorded:
            generation, seconds = self._recorded.popleft()
            self._by_generation[generation].observe(seconds)

    async def drain_every(self, interval_s: float) -> None:
        """Runs until cancelled, folding the recorded pauses in every `interval_s`."""
        while True:
            await asyncio.sleep(interval_s)
            self.drain()

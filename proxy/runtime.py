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

import contextlib
import gc
import sys
import time
from collections.abc import Iterator

from prometheus_client import Histogram

from .config import ServerConfig


def tune_runtime(config: ServerConfig) -> None:
    """Collect the start-up garbage, freeze what survives, apply the GC thresholds and the GIL switch
    interval (CPython's 5 ms let a background thread, such as trace export, hold a request that long)."""
    gc.collect()
    if config.gc_freeze:
        gc.freeze()
    gc.set_threshold(*config.gc_thresholds)
    sys.setswitchinterval(config.gil_switch_interval_ms / 1000)


@contextlib.contextmanager
def pauses_observed(pauses: Histogram) -> Iterator[None]:
    """Every collection while inside, observed in `pauses` by generation."""
    by_generation = [pauses.labels(str(generation)) for generation in range(3)]
    started = 0.0

    def observe(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started)

    gc.callbacks.append(observe)
    try:
        yield
    finally:
        gc.callbacks.remove(observe)

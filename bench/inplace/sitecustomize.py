"""Loaded only by bench/inplace_cost.py, which puts this directory on the proxy's PYTHONPATH and sets
BENCH_INPLACE=1: wraps the proxy's tracing and metrics entry points with perf_counter_ns and prints, every
2,000 requests, the microseconds per request each has taken so far, as a line `INPLACE {json}`.

It runs before the proxy imports anything, so `from .telemetry.tracing import finish_server_span` in
proxy/server/app.py picks up the wrapped function. Each timed call also pays the wrapper (a Python call and two
clock reads, ~0.2 µs).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

if os.environ.get("BENCH_INPLACE") == "1":
    source = os.environ.get("BENCH_INPLACE_SOURCE")
    if source:
        # The editable install's finder would answer first: drop it, so `proxy` comes from `source`.
        sys.meta_path[:] = [finder for finder in sys.meta_path
                            if "__editable__" not in getattr(finder, "__module__", "")]
        sys.path.insert(0, source)
    from proxy.telemetry import metrics, tracing

    totals: dict[str, int] = {}
    calls: dict[str, int] = {}
    clock = time.perf_counter_ns
    requests = [0]

    def add(label: str, started: int) -> None:
        totals[label] = totals.get(label, 0) + clock() - started
        calls[label] = calls.get(label, 0) + 1

    def timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                add(label, started)
        return wrapper

    class TimedScope:
        """A context manager timed on entry and on exit (the code inside is not counted)."""

        def __init__(self, label: str, inner: Any) -> None:
            self.label, self.inner = label, inner

        def __enter__(self) -> Any:
            started = clock()
            try:
                return self.inner.__enter__()
            finally:
                add(self.label, started)

        def __exit__(self, *error: object) -> Any:
            started = clock()
            try:
                return self.inner.__exit__(*error)
            finally:
                add(self.label, started)

    def scoped(label: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            inner = method(*args, **kwargs)
            add(label, started)
            return TimedScope(label, inner)
        return wrapper

    for name in ("server_span", "span", "stage"):
        setattr(tracing.Tracing, name, scoped(f"tracing.{name}", getattr(tracing.Tracing, name)))
    tracing.Tracing.inject = timed("tracing.inject", tracing.Tracing.inject)  # type: ignore[method-assign]
    tracing.finish_server_span = timed("tracing.finish_server_span", tracing.finish_server_span)
    tracing.ids = timed("tracing.ids", tracing.ids)
    for name in ("upstream_finished", "tokens_used", "policy_decided", "pii_found", "budget_observed"):
        setattr(metrics.Metrics, name, timed(f"metrics.{name}", getattr(metrics.Metrics, name)))
    request_finished = timed("metrics.request_finished", metrics.Metrics.request_finished)

    def counted(*args: Any, **kwargs: Any) -> None:
        request_finished(*args, **kwargs)
        requests[0] += 1
        if requests[0] % 2000 == 0:
            n = requests[0]
            report = {label: {"us_per_request": round(total / n / 1000, 2),
                              "calls_per_request": round(calls[label] / n, 2)}
                      for label, total in sorted(totals.items())}
            sys.stderr.write("INPLACE " + json.dumps({"requests": n, "entry_points": report}) + "\n")
            sys.stderr.flush()

    metrics.Metrics.request_finished = counted  # type: ignore[method-assign]

"""What the proxy's tracing and metrics calls cost in place: inside a running proxy under load, not in a
tight loop (where caches stay warm and everything costs two to five times less).

    .venv/bin/python bench/inplace_cost.py [--seconds 15] [--concurrency 1] [--source DIR]

Starts the full stack as bench/telemetry_ab.py's "on" proxy (metrics, every request traced to the OTLP
sink) with bench/inplace/sitecustomize.py loaded, which times each tracing and metrics entry point with
perf_counter_ns. Drives it with wrk (1 KB chat) and prints microseconds per request for each entry point
and in all. Each timed call includes the wrapper's own ~0.2 µs. The in_flight gauge is not timed.
`--source` runs the proxy from another checkout, e.g. `git worktree add /tmp/old <commit>`, to measure an
earlier version the same way (the entry points it wraps have kept their names).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import measure
import stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--source", type=Path, help="a checkout whose proxy package to run instead of this one")
    args = parser.parse_args()
    env = {"PYTHONPATH": str(stack.REPO / "bench" / "inplace"), "BENCH_INPLACE": "1"}
    if args.source:
        env["BENCH_INPLACE_SOURCE"] = str(args.source.resolve())
    with tempfile.TemporaryDirectory(prefix="llmpp-inplace-") as tmp:
        directory = Path(tmp)
        body = stack.write_body(directory, 1024, False)
        (directory / "proxy").mkdir()
        with (stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream, stack.otlp_sink(directory) as sink,
              stack.proxy(directory / "proxy", upstream.port, sink.port, "sqlite", 1, env_extra=env) as proxy):
            stack.reset_budget(proxy)
            result = measure.wrk(proxy.url("/v1/chat/completions"), body, args.concurrency, args.seconds, proxy.pid)
            lines = [line for line in proxy.log.read_text(errors="replace").splitlines() if line.startswith("INPLACE ")]
    if not lines:
        raise SystemExit("no INPLACE report in the proxy's log: fewer than 2,000 requests?")
    report = json.loads(lines[-1][len("INPLACE "):])
    print(f"{report['requests']} requests at concurrency {args.concurrency}; p50 {result['total_ms']['p50']} ms; "
          f"µs per request in place:")
    sums: dict[str, float] = {}
    for label, figures in report["entry_points"].items():
        print(f"  {label:32s} {figures['us_per_request']:7.2f} µs  ({figures['calls_per_request']} calls)")
        part = label.split(".")[0]
        sums[part] = sums.get(part, 0.0) + figures["us_per_request"]
    for part, total in sums.items():
        print(f"  {part + ' in all':32s} {total:7.2f} µs")


if __name__ == "__main__":
    main()

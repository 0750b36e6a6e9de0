"""What CPython's cyclic garbage collector costs the proxy under load, with and without `proxy/server/gc_tuning.py`.

    .venv/bin/python bench/gc_bench.py [--seconds 10] [--rounds 2]

For each setting, starts the full stack as bench/run.py does (SQLite, one worker, traces to the sink),
drives it with wrk (1 KB chat, concurrency 32) and reads `llm_proxy_gc_pause_seconds` from /metrics
before and after: time in the collector per request, collections per 1,000 requests by generation and
the longest pause (as the histogram bucket it fell in). Settings alternate, so a machine that drifts
affects both alike.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import httpx
import measure
import stack

SETTINGS = {
    "CPython defaults (no freeze, 700/10/10)": ", gc_freeze: false, gc_thresholds: [700, 10, 10]",
    "freeze only (700/10/10)": ", gc_freeze: true, gc_thresholds: [700, 10, 10]",
    "shipped (freeze, 5000/20/100)": "",
}
SAMPLE = re.compile(r'^llm_proxy_gc_pause_seconds_(bucket|sum|count)\{generation="(\d)"(?:,le="([^"]+)")?\} (\S+)$')


def gc_series(proxy: stack.Service) -> dict[tuple[str, str, str], float]:
    text = httpx.get(proxy.url("/metrics"), timeout=10).text
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            kind, generation, le, value = match.groups()
            found[(kind, generation, le or "")] = float(value)
    return found


def run(directory: Path, options: str, seconds: float, upstream: stack.Service, sink: stack.Service) -> dict:
    body = stack.write_body(directory, 1024, False)
    with stack.proxy(directory, upstream.port, sink.port, "sqlite", 1, server_options=options) as proxy:
        stack.reset_budget(proxy)
        url = proxy.url("/v1/chat/completions")
        measure.wrk(url, body, 32, 2.0, None, warmup=0)
        before = gc_series(proxy)
        result = measure.wrk(url, body, 32, seconds, proxy.pid, warmup=0)
        after = gc_series(proxy)
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    requests = result["requests"]
    longest = {}
    for generation in "012":
        buckets = sorted((float(le), count) for (kind, gen, le), count in delta.items()
                         if kind == "bucket" and gen == generation and le != "+Inf")
        total = delta.get(("count", generation, ""), 0.0)
        below = [le for le, count in buckets if count >= total]
        longest[generation] = 0.0 if not total else (below[0] if below else float("inf"))
    return {
        "cpu_us_per_request": 1e6 * result["cpu_s"] / requests,
        "gc_us_per_request": 1e6 * sum(delta.get(("sum", g, ""), 0.0) for g in "012") / requests,
        "collections_per_1k": {g: round(1000 * delta.get(("count", g, ""), 0.0) / requests, 1) for g in "012"},
        "longest_pause_ms_at_most": {g: longest[g] * 1000 for g in "012"},
        "requests_per_s": result["requests_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print("| setting | GC µs/req | collections per 1k req (gen 0/1/2) | longest pause ≤ ms (gen 0/1/2) "
          "| CPU µs/req | req/s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="llmpp-gc-") as tmp:
        directory = Path(tmp)
        with stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream, stack.otlp_sink(directory) as sink:
            for _ in range(args.rounds):
                for name, options in SETTINGS.items():
                    r = run(directory, options, args.seconds, upstream, sink)
                    counts = " / ".join(str(r["collections_per_1k"][g]) for g in "012")
                    pauses = " / ".join(f"{r['longest_pause_ms_at_most'][g]:g}" for g in "012")
                    print(f"| {name} | {r['gc_us_per_request']:.0f} | {counts} | {pauses} "
                          f"| {r['cpu_us_per_request']:.0f} | {r['requests_per_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""What telemetry adds per request: the same proxy with telemetry on and off, in alternating runs.

    .venv/bin/python bench/telemetry_ab.py [--rounds 7] [--seconds 5] [--concurrency 1] [--traces-only] [--aa]

Starts two proxies with the full shipped stack (SQLite budgets, info logs), both on core 0: "on" serves
metrics and exports every request's spans to the OTLP sink; "off" has `telemetry.metrics: false` and no
OTLP endpoint (so no spans at all). It drives them in turn with wrk (1 KB non-streaming chat): A, B, A, B...
so that the drift of a shared machine falls on both alike. Prints each variant's median p50 / p99 and CPU
per request, and the median of the per-round differences, which is the figure issue 6 sets a target for
(≤ 0.2 ms p50). `--traces-only` keeps metrics on in both, so the difference is tracing alone.

Known biases, both small against the figures it reports: the OTLP sink shares core 1 with wrk and the
upstream only while the "on" proxy runs, and the "on" proxy's export thread may send its last batch
(on core 0) during the next "off" run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import httpx
import measure
import stack


def gc_per_request(server: stack.Service) -> tuple[float, float]:
    """The proxy's own account of its GC pauses (proxy/server/gc_tuning.py), per request served so far."""
    text = httpx.get(server.url("/metrics"), timeout=10).text

    def total(prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    requests = total("llm_proxy_requests_total{") or 1.0
    return (1e6 * total("llm_proxy_gc_pause_seconds_sum") / requests,
            total("llm_proxy_gc_pause_seconds_count") / requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--traces-only", action="store_true", help="metrics on in both: what tracing alone adds")
    parser.add_argument("--aa", action="store_true",
                        help="a control run: both proxies as the off one, so any difference is the method's own")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    off_options = "" if args.traces_only else ", metrics: false"
    with tempfile.TemporaryDirectory(prefix="llmpp-telemetry-") as tmp:
        directory = Path(tmp)
        body = stack.write_body(directory, 1024, False)
        for name in runs:
            (directory / name).mkdir()
        with (stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream,
              stack.otlp_sink(directory) as sink,
              stack.proxy(directory / "on", upstream.port, None if args.aa else sink.port, "sqlite", 1,
                          telemetry_options=off_options if args.aa else "") as on,
              stack.proxy(directory / "off", upstream.port, None, "sqlite", 1, telemetry_options=off_options) as off):
            proxies = {"on": on, "off": off}
            for server in proxies.values():
                stack.reset_budget(server)
                measure.wrk(server.url("/v1/chat/completions"), body, args.concurrency, 2.0, None, warmup=0)
            for round_no in range(args.rounds):
                for name, server in proxies.items():
                    result = measure.wrk(server.url("/v1/chat/completions"), body, args.concurrency, args.seconds,
                                         server.pid, warmup=0)
                    if result["errors"]:
                        raise SystemExit(f"{name}: {result['errors']} errors")
                    row = {"p50": result["total_ms"]["p50"], "p99": result["total_ms"]["p99"],
                           "rps": result["requests_per_s"], "cpu_us": 1e6 * result["cpu_s"] / result["requests"]}
                    runs[name].append(row)
                    print(f"round {round_no + 1} {name:9s} p50 {row['p50']:.3f} ms  p99 {row['p99']:.3f} ms  "
                          f"{row['rps']:.0f} req/s  CPU {row['cpu_us']:.0f} µs/req", flush=True)
            exported = stack.sink_stats(sink)
            gc_costs = {name: gc_per_request(server) for name, server in proxies.items()
                        if args.traces_only or (name == "on" and not args.aa)}
    print(f"\nconcurrency {args.concurrency}, 1 KB chat, {args.rounds} rounds of {args.seconds:.0f} s each; "
          f"sink received {exported}")
    for name, rows in runs.items():
        print(f"{name:9s} median p50 {statistics.median(r['p50'] for r in rows):.3f} ms, "
              f"p99 {statistics.median(r['p99'] for r in rows):.3f} ms, "
              f"CPU {statistics.median(r['cpu_us'] for r in rows):.0f} µs/req")
    for name, (pause_us, collections) in gc_costs.items():
        print(f"{name:9s} garbage collector: {pause_us:.1f} µs and {collections:.3f} collections per request "
              "(llm_proxy_gc_pause_seconds over llm_proxy_requests_total)")
    what = "tracing" if args.traces_only else "telemetry"
    for key, unit in (("p50", "ms"), ("p99", "ms"), ("cpu_us", "µs/req")):
        deltas = sorted(a[key] - b[key] for a, b in zip(runs["on"], runs["off"], strict=True))
        print(f"{what} adds {key}: median {statistics.median(deltas):.3f} {unit} "
              f"(per round {deltas[0]:.3f} … {deltas[-1]:.3f})")


if __name__ == "__main__":
    main()

"""Soak: the full-stack proxy at a steady request rate for minutes, watching for leaks and errors.

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--rate 50] [--stream-share 0.5] [--workers 1] [--store sqlite]

Open-loop load (bench/loadgen.py, 1 KB prompts, part of it paced streams) in windows of `--window` seconds, while
/proc is sampled every `--sample-every` seconds: RSS per worker, open fds (/proc/<pid>/fd), threads. The
proxy has no endpoint for its asyncio task count, so tasks are not measured directly; the
`llm_proxy_requests_in_flight` gauge from /metrics (one handler task per request in flight) stands in for it,
with fds and threads. Reports RSS growth after the warm-up (%), fd and thread drift, errors and latency per
window. Writes bench/results/soak.json and prints a markdown summary (also bench/results/soak.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import measure
import procfs
import stack

RESULTS = stack.REPO / "bench" / "results"


def in_flight(proxy: stack.Service) -> float | None:
    try:
        text = httpx.get(proxy.url("/metrics"), timeout=5).text
    except httpx.HTTPError:
        return None
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("llm_proxy_requests_in_flight")]
    return sum(values) if values else None


def observe(proxy: stack.Service, started: float) -> dict[str, Any]:
    sample = procfs.sample(proxy.pid)
    return {"t_s": round(time.monotonic() - started, 1), "rss_mb": sample.rss_mb, "fds": sample.fds,
            "threads": sample.threads, "in_flight": in_flight(proxy), "cpu_s": round(procfs.cpu_seconds(proxy.pid), 2)}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    windows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="llmpp-soak-") as tmp:
        directory = Path(tmp)
        # Streams are paced (10 ms per event, ~0.7 s each), so connections and tasks stay open as in production.
        plain = stack.write_body(directory, 1024, False)
        streamed = stack.write_body(directory, 1024, True, stack.PACED_MODEL)
        with (stack.upstream(directory, 0, 0, 10, 64) as upstream, stack.otlp_sink(directory) as sink,
              stack.proxy(directory, upstream.port, sink.port, args.store, args.workers) as proxy):
            url = proxy.url("/v1/chat/completions")
            started = time.monotonic()
            samples.append(observe(proxy, started))
            deadline = started + args.minutes * 60
            while (left := deadline - time.monotonic()) > 1:
                seconds = min(args.window, left)
                stack.reset_budget(proxy)
                loads = [measure.background(url, body, 64, seconds, rate)
                         for body, rate in ((plain, args.rate * (1 - args.stream_share)),
                                            (streamed, args.rate * args.stream_share)) if rate > 0]
                next_sample = time.monotonic() + args.sample_every
                while any(load.poll() is None for load in loads):
                    if time.monotonic() >= next_sample:
                        samples.append(observe(proxy, started))
                        next_sample += args.sample_every
                    time.sleep(0.2)
                results = [measure.finish(load) for load in loads]
                windows.append({"t_s": round(time.monotonic() - started, 1), "load_average": procfs.load_average(),
                                "results": results})
                print(f"[{windows[-1]['t_s']:6.0f}s] rss {samples[-1]['rss_mb']} MB, fds {samples[-1]['fds']}, "
                      f"errors {sum(r['errors'] for r in results)}", file=sys.stderr, flush=True)
            samples.append(observe(proxy, started))
    return {"samples": samples, "windows": windows}


def summarise(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    samples = data["samples"]
    after = [s for s in samples if s["t_s"] >= args.warmup_minutes * 60] or samples[-1:]
    rss_start, rss_end = max(after[0]["rss_mb"]), max(samples[-1]["rss_mb"])
    minutes = max(1e-9, (samples[-1]["t_s"] - after[0]["t_s"]) / 60)
    requests = sum(r["requests"] for w in data["windows"] for r in w["results"])
    return {
        "minutes": args.minutes, "rate_per_s": args.rate, "stream_share": args.stream_share,
        "store": args.store, "workers": args.workers, "warmup_minutes": args.warmup_minutes,
        "requests": requests,
        "errors": sum(r["errors"] for w in data["windows"] for r in w["results"]),
        "rss_mb_after_warmup": rss_start, "rss_mb_end": rss_end,
        "rss_growth_percent": round((rss_end - rss_start) / rss_start * 100, 2) if rss_start else None,
        "rss_growth_mb_per_min": round((rss_end - rss_start) / minutes, 3),
        "fds": {"first": samples[0]["fds"], "after_warmup": after[0]["fds"], "end": samples[-1]["fds"],
                "max": max(max(s["fds"]) for s in samples)},
        "threads": {"first": samples[0]["threads"], "end": samples[-1]["threads"],
                    "max": max(max(s["threads"]) for s in samples)},
        "in_flight_max": max((s["in_flight"] or 0) for s in samples),
        "cpu_s_per_1k": round((samples[-1]["cpu_s"] - samples[0]["cpu_s"]) / max(1, requests) * 1000, 3),
        "load_average_end": procfs.load_average(),
    }


def markdown(summary: dict[str, Any], data: dict[str, Any]) -> str:
    s = summary
    lines = [
        f"Soak: {s['minutes']:g} min at {s['rate_per_s']:g} req/s ({s['stream_share']:.0%} streamed), 1 KB prompts, "
        f"{s['store']}, --workers {s['workers']}; warm-up {s['warmup_minutes']:g} min; load average at the end "
        f"{s['load_average_end']}.",
        "",
        f"- requests {s['requests']}, errors {s['errors']}; proxy CPU {s['cpu_s_per_1k']} s per 1,000 requests",
        f"- RSS (largest worker) {s['rss_mb_after_warmup']} MB after warm-up → {s['rss_mb_end']} MB at the end: "
        f"{s['rss_growth_percent']}% ({s['rss_growth_mb_per_min']} MB/min)",
        f"- open fds per worker: {s['fds']['first']} at start, {s['fds']['after_warmup']} after warm-up, "
        f"{s['fds']['end']} at the end (max {s['fds']['max']})",
        f"- threads per worker: {s['threads']['first']} → {s['threads']['end']} (max {s['threads']['max']}); "
        f"requests in flight (stand-in for handler tasks) at most {s['in_flight_max']:g}",
        "",
        "| window end s | req/s | errors | plain p50 ms | plain p99 ms | stream TTFT p99 ms | stream p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in data["windows"]:
        results = w["results"]
        plain, stream = results[0], results[-1]
        rps = sum(r["requests_per_s"] for r in results)
        lines.append(f"| {w['t_s']:.0f} | {rps:.0f} | {sum(r['errors'] for r in results)} "
                     f"| {(plain['total_ms'] or {}).get('p50')} | {(plain['total_ms'] or {}).get('p99')} "
                     f"| {(stream['ttft_ms'] or {}).get('p99')} | {(stream['total_ms'] or {}).get('p99')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second in total")
    parser.add_argument("--stream-share", type=float, default=0.5)
    parser.add_argument("--warmup-minutes", type=float, help="default: 1, or a fifth of a shorter soak")
    parser.add_argument("--window", type=float, default=30.0, help="seconds per load window")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args()
    if args.warmup_minutes is None:
        args.warmup_minutes = min(1.0, args.minutes / 5)
    data = soak(args)
    summary = summarise(args, data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, **data}, indent=2))
    text = markdown(summary, data)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

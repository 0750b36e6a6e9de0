"""Full-stack benchmark: the test upstream directly vs through the proxy, in one command.

Usage: .venv/bin/python bench/run.py [--quick] [--duration S] [--upstream-delay-ms MS] [--chunk-delay-ms MS]
                                     [--paced-chunk-delay-ms MS] [--setups sqlite:1 redis:2] [--no-ablation]

Starts the test upstream (bench/serve_upstream.py), an OTLP/HTTP sink (bench/otlp_sink.py) and, per setup,
the proxy with the full shipped stack (embedded Rego with policies/, PII scan, budgets on SQLite or Redis,
metrics, info logs to a file, traces exported to the sink). Cases (bench/scenarios.py): `plain` chat driven
by wrk with bench/post.lua; `stream` and `paced` chat (events as fast as possible, or 10 ms apart like a
model) driven by bench/loadgen.py, which also records time to first token. Each case runs against the
upstream directly, then through each proxy setup, reading the proxy's CPU time and peak RSS from /proc.
Then: the heavy-prompt scenario (small-request latency on one worker while 64 KB prompts arrive at a fixed
rate) and, unless --quick, the cost of info logs and trace export (each turned off in turn).

Writes bench/results/latest.json, bench/results/latest.md (also printed) and docs/perf/latency.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import chart
import measure
import procfs
import report
import stack
from scenarios import Case, Setup, direct_cases, full_matrix, quick_matrix

RESULTS = stack.REPO / "bench" / "results"


def run_case(case: Case, root: str, bodies: dict[tuple[int, str], Path], args: argparse.Namespace,
             pid: int | None) -> dict[str, Any]:
    """Run one case against `root` (the upstream when `pid` is None, else the proxy with that pid)."""
    body = bodies[case.size, case.mode]
    # Directly, paced streams come from the upstream's /paced/v1; the proxy routes the paced model there.
    url = root + ("/paced" if case.mode == "paced" and pid is None else "") + "/v1/chat/completions"
    # wrk counts only the requests that finish in a run that starts cold; with hundreds in flight at the end a
    # short run would undercount them, so high concurrency gets twice the time.
    duration = args.duration * (2 if case.concurrency >= 256 else 1)
    runs = []
    for _ in range(args.repeat):
        if case.mode == "plain":
            runs.append(measure.wrk(url, body, case.concurrency, duration, pid, warmup=args.warmup))
        else:
            runs.append(measure.loadgen(url, body, case.concurrency, duration, pid, warmup=args.warmup))
    # The run with the median throughput stands for the case, so its figures come from one run; the
    # others are kept to show the spread.
    result = sorted(runs, key=lambda run: run["requests_per_s"])[len(runs) // 2]
    if len(runs) > 1:
        result["requests_all_runs"] = sum(run["requests"] for run in runs)
        result["repeats"] = [{"requests_per_s": run["requests_per_s"], "total_ms": run["total_ms"],
                              "cpu_s_per_1k": cpu_per_1k(run) if run.get("cpu_s") is not None else None}
                             for run in runs]
    result.update(mode=case.mode, size=case.size, concurrency=case.concurrency, load_average=procfs.load_average())
    return result


def cpu_per_1k(result: dict[str, Any]) -> float:
    return round(float(result["cpu_s"]) / max(1, int(result["requests"])) * 1000, 3)


def heavy_scenario(proxy: stack.Service, bodies: dict[tuple[int, str], Path],
                   args: argparse.Namespace) -> dict[str, Any]:
    """Small-request latency at concurrency 1 on one worker, alone and while 64 KB prompts arrive at a rate."""
    url = proxy.url("/v1/chat/completions")
    small, heavy = bodies[1024, "plain"], bodies[65536, "plain"]
    stack.reset_budget(proxy)
    alone = measure.loadgen(url, small, 1, args.heavy_duration, proxy.pid, warmup=args.warmup)
    background = measure.background(url, heavy, 64, args.heavy_duration + args.warmup + 2, args.heavy_rate)
    time.sleep(1.0)
    loaded = measure.loadgen(url, small, 1, args.heavy_duration, proxy.pid, warmup=args.warmup)
    heavy_result = measure.finish(background)
    p99 = (loaded["total_ms"] or {}).get("p99")
    return {
        "heavy_rate_per_s": args.heavy_rate,
        "duration_s": args.heavy_duration,
        "small_alone": alone,
        "small_with_heavy": loaded,
        "heavy": heavy_result,
        "proxy_cpu_busy": round(loaded["cpu_s"] / args.heavy_duration, 2) if loaded.get("cpu_s") else None,
        "target_p99_ms": 10.0,
        "met": p99 is not None and p99 <= 10.0,
    }


ABLATION = (("full stack (info logs, traces)", "info", True), ("logs at warning", "warning", True),
            ("no trace export", "info", False), ("logs at warning, no trace export", "warning", False))


def ablation(directory: Path, upstream: stack.Service, sink: stack.Service, bodies: dict[tuple[int, str], Path],
             args: argparse.Namespace) -> list[dict[str, Any]]:
    """What the info logs and the trace export cost: 1 KB non-streaming on one SQLite worker, each turned off."""
    rows = []
    for label, log_level, traces in ABLATION:
        with stack.proxy(directory, upstream.port, sink.port if traces else None, "sqlite", 1, log_level) as proxy:
            for concurrency in (1, 32):
                stack.reset_budget(proxy)
                result = run_case(Case("plain", 1024, concurrency), proxy.url(""), bodies, args, proxy.pid)
                result |= {"variant": label, "cpu_s_per_1k": cpu_per_1k(result)}
                rows.append(result)
    return rows


def git(*command: str) -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(["git", *command], cwd=stack.REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    return ""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a representative subset (about 3 minutes)")
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 5, quick 4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per case; the one with the median req/s is reported, the others kept in the JSON")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192, 65536], help="prompt bytes (full)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 256], help="(full mode)")
    parser.add_argument("--setups", nargs="+", help="only these proxy setups, e.g. sqlite:1 redis:2")
    parser.add_argument("--upstream-delay-ms", type=float, default=0.0, help="upstream delay before the head")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="upstream delay before each event")
    parser.add_argument("--paced-chunk-delay-ms", type=float, default=10.0, help="the same, for the paced cases")
    parser.add_argument("--reply-words", type=int, default=64, help="words (stream chunks) per answer")
    parser.add_argument("--heavy-rate", type=float, default=20.0, help="64 KB prompts per second in the background")
    parser.add_argument("--heavy-duration", type=float, default=8.0)
    parser.add_argument("--no-heavy", action="store_true")
    parser.add_argument("--ablation", action=argparse.BooleanOptionalAction,
                        help="also measure with info logs and trace export turned off (default: on, off in --quick)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--chart", type=Path, default=stack.REPO / "docs" / "perf" / "latency.png")
    args = parser.parse_args()
    args.duration = args.duration or (4.0 if args.quick else 5.0)
    if args.ablation is None:
        args.ablation = not args.quick
    return args


def main() -> None:
    args = parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    matrix = quick_matrix() if args.quick else full_matrix(tuple(args.sizes), tuple(args.concurrency))
    if args.setups:
        matrix = [(s, c) for s, c in matrix if f"{s.store}:{s.workers}" in args.setups]
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty_files": len(git("status", "--porcelain", "--", "proxy", "policies").splitlines()),
        "command": " ".join(sys.argv),
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "upstream": {"delay_ms": args.upstream_delay_ms, "chunk_delay_ms": args.chunk_delay_ms,
                     "paced_chunk_delay_ms": args.paced_chunk_delay_ms, "reply_words": args.reply_words},
        "load_average_start": procfs.load_average(),
    }
    runs: list[dict[str, Any]] = []
    setups: list[dict[str, Any]] = []
    heavy: dict[str, Any] | None = None
    clock = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmpp-bench-") as tmp:
        directory = Path(tmp)
        bodies = {(size, mode): stack.write_body(directory, size, mode != "plain",
                                                 stack.PACED_MODEL if mode == "paced" else stack.MODEL)
                  for size in {1024, 65536, *(c.size for c in direct_cases(matrix))}
                  for mode in ("plain", "stream", "paced")}
        with (stack.upstream(directory, args.upstream_delay_ms, args.chunk_delay_ms, args.paced_chunk_delay_ms,
                             args.reply_words) as upstream,
              stack.otlp_sink(directory) as sink):
            for case in direct_cases(matrix):
                runs.append({"target": "direct", **run_case(case, upstream.url(""), bodies, args, None)})
                progress(f"direct {case.label}", runs[-1], clock)
            for setup, cases in matrix:
                spans_before = stack.sink_stats(sink)
                with stack.proxy(directory, upstream.port, sink.port, setup.store, setup.workers) as proxy:
                    served = 0
                    for case in cases:
                        stack.reset_budget(proxy)
                        result = run_case(case, proxy.url(""), bodies, args, proxy.pid)
                        sample = procfs.sample(proxy.pid)
                        result |= {"target": "proxy", "store": setup.store, "workers": setup.workers,
                                   "cpu_s_per_1k": cpu_per_1k(result),
                                   "peak_rss_mb": max(sample.peak_rss_mb)}
                        # Per-request log and span volumes divide by every request served, repeats included.
                        served += result.get("requests_all_runs", result["requests"])
                        runs.append(result)
                        progress(f"{setup.label} {case.label}", result, clock)
                    if heavy is None and not args.no_heavy and setup == Setup("sqlite", 1):
                        heavy = heavy_scenario(proxy, bodies, args)
                        progress("heavy-prompt scenario", heavy["small_with_heavy"], clock)
                    setups.append(setup_summary(setup, proxy, sink, spans_before, served))
            costs = ablation(directory, upstream, sink, bodies, args) if args.ablation else []
    meta["load_average_end"] = procfs.load_average()
    meta["elapsed_s"] = round(time.monotonic() - clock, 1)
    document = {"meta": meta, "runs": report.with_added_latency(runs), "heavy": heavy, "setups": setups,
                "ablation": costs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2))
    table = report.markdown(document)
    args.out.with_suffix(".md").write_text(table + "\n")
    chart.draw(document, args.chart)
    print(table)


def setup_summary(setup: Setup, proxy: stack.Service, sink: stack.Service, spans_before: dict[str, int],
                  served: int) -> dict[str, Any]:
    spans = stack.sink_stats(sink)
    sample = procfs.sample(proxy.pid)
    return {
        "store": setup.store,
        "workers": setup.workers,
        "peak_rss_mb_per_worker": sample.peak_rss_mb,
        "log_bytes": proxy.log.stat().st_size,
        "log_problems": log_problems(proxy.log),
        "otlp_spans": spans["spans"] - spans_before["spans"],
        "otlp_bytes": spans["bytes"] - spans_before["bytes"],
        "measured_requests": served,
    }


def log_problems(log: Path) -> dict[str, int]:
    """Warning and error log lines by event, and refused requests by status and error code."""
    counts: dict[str, int] = {}
    with log.open("rb") as lines:
        for line in lines:
            if not (b'"level":"warning"' in line or b'"level":"error"' in line or b'"error_code":"' in line):
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "request":
                    name = f"{event.get('status')} {event.get('error_code')}"
                else:
                    name = f"{event.get('level')} {event.get('event')}"
                counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1])[:10])


def progress(label: str, result: dict[str, Any], clock: float) -> None:
    total = result.get("total_ms") or {}
    print(f"[{time.monotonic() - clock:6.0f}s] {label}: {result.get('requests_per_s')} req/s, "
          f"p50 {total.get('p50')} ms, p99 {total.get('p99')} ms, errors {result.get('errors')}",
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()

"""The benchmark's result document as markdown tables, and the proxy's added latency against the direct runs."""

from __future__ import annotations

from typing import Any

Run = dict[str, Any]
QUANTILES = ("p50", "p90", "p99", "max")


def with_added_latency(runs: list[Run]) -> list[Run]:
    """Each proxy run gains `added_ms` (and `added_ttft_ms`): its percentiles minus the direct run's."""
    direct = {(r["mode"], r["size"], r["concurrency"]): r for r in runs if r["target"] == "direct"}
    for run in runs:
        base = direct.get((run["mode"], run["size"], run["concurrency"]))
        if run["target"] != "proxy" or base is None:
            continue
        for key, out in (("total_ms", "added_ms"), ("ttft_ms", "added_ttft_ms")):
            if run.get(key) and base.get(key):
                run[out] = {q: round(run[key][q] - base[key][q], 3) for q in QUANTILES}
    return runs


def target(run: Run) -> str:
    return "direct" if run["target"] == "direct" else f"{run['store']} w{run['workers']}"


def order(run: Run) -> tuple[Any, ...]:
    return (run["mode"], run["size"], run["concurrency"], run["target"] != "direct", run.get("store", ""),
            run.get("workers", 0))


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def throughput(r: Run) -> str:
    """req/s; with --repeat, the reported (median) run's and the range of all runs."""
    repeats = r.get("repeats")
    if not repeats:
        return f"{r['requests_per_s']:.0f}"
    rates = [run["requests_per_s"] for run in repeats]
    return f"{r['requests_per_s']:.0f} ({min(rates):.0f}–{max(rates):.0f})"


def main_table(runs: list[Run]) -> list[str]:
    lines = [
        "| mode | prompt | conc. | target | req/s | p50 ms | p90 ms | p99 ms | max ms | TTFT p50 | TTFT p99 "
        "| added p50 | added p99 | added TTFT p50 | CPU s/1k req | peak RSS MB | errors | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=order):
        total, ttft = r.get("total_ms") or {}, r.get("ttft_ms") or {}
        added, added_ttft = r.get("added_ms") or {}, r.get("added_ttft_ms") or {}
        lines.append(
            f"| {r['mode']} | {r['size'] // 1024} KB | {r['concurrency']} | {target(r)} | {throughput(r)} "
            f"| {fmt(total.get('p50'))} | {fmt(total.get('p90'))} | {fmt(total.get('p99'))} | {fmt(total.get('max'))} "
            f"| {fmt(ttft.get('p50'))} | {fmt(ttft.get('p99'))} | {fmt(added.get('p50'))} | {fmt(added.get('p99'))} "
            f"| {fmt(added_ttft.get('p50'))} | {fmt(r.get('cpu_s_per_1k'), 3)} | {fmt(r.get('peak_rss_mb'), 1)} "
            f"| {r['errors']} | {r['load_average'][0]} |"
        )
    return lines


def heavy_table(heavy: Run) -> list[str]:
    lines = [
        f"Heavy prompts vs small ones (`--workers 1`, SQLite): 1 KB requests at concurrency 1, alone and while "
        f"64 KB prompts arrive at {heavy['heavy_rate_per_s']:g}/s (open loop); target small p99 ≤ "
        f"{heavy['target_p99_ms']:g} ms: **{'met' if heavy['met'] else 'not met'}**; proxy CPU busy "
        f"{fmt(heavy['proxy_cpu_busy'])} cores during the loaded run.",
        "",
        "| load | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, key in (("1 KB alone", "small_alone"), ("1 KB with 64 KB background", "small_with_heavy"),
                       ("64 KB background", "heavy")):
        r = heavy[key]
        total = r.get("total_ms") or {}
        lines.append(f"| {label} | {r['requests_per_s']:.0f} | {fmt(total.get('p50'))} | {fmt(total.get('p90'))} "
                     f"| {fmt(total.get('p99'))} | {fmt(total.get('max'))} | {r['errors']} |")
    return lines


def setups_table(setups: list[Run]) -> list[str]:
    lines = ["| setup | peak RSS MB per worker | log bytes/req | OTLP spans/req | OTLP bytes/req | warnings, errors |",
             "|---|---|---|---|---|---|"]
    for s in setups:
        n = max(1, s["measured_requests"])
        problems = "; ".join(f"{name} ×{count}" for name, count in s.get("log_problems", {}).items())
        lines.append(f"| {s['store']} w{s['workers']} | {', '.join(fmt(v, 1) for v in s['peak_rss_mb_per_worker'])} "
                     f"| {s['log_bytes'] / n:.0f} | {s['otlp_spans'] / n:.2f} | {s['otlp_bytes'] / n:.0f} "
                     f"| {problems} |")
    return lines


def ablation_table(rows: list[Run]) -> list[str]:
    lines = ["What logging and tracing cost (1 KB non-streaming, SQLite, `--workers 1`):", "",
             "| variant | conc. | req/s | p50 ms | p99 ms | CPU s/1k req |", "|---|---|---|---|---|---|"]
    for r in rows:
        total = r.get("total_ms") or {}
        lines.append(f"| {r['variant']} | {r['concurrency']} | {r['requests_per_s']:.0f} | {fmt(total.get('p50'))} "
                     f"| {fmt(total.get('p99'))} | {fmt(r.get('cpu_s_per_1k'), 3)} |")
    return lines


def markdown(document: dict[str, Any]) -> str:
    meta = document["meta"]
    lines = [
        f"Benchmark of {meta['started']} (commit {meta['commit']}, {meta['dirty_files']} uncommitted files under "
        f"proxy/ and policies/), `{meta['command']}`: {meta['duration_s']:g} s per run after "
        f"{meta['warmup_s']:g} s warm-up, {meta['cpus']} cores, load average {meta['load_average_start']} at the "
        f"start and {meta['load_average_end']} at the end; upstream delay {meta['upstream']['delay_ms']:g} ms, "
        f"{meta['upstream']['chunk_delay_ms']:g} ms per chunk ({meta['upstream']['paced_chunk_delay_ms']:g} ms in "
        f"`paced` streams), {meta['upstream']['reply_words']} words (stream events) per answer.",
        "",
        "Latencies in ms; TTFT and total for streams; added = proxy minus direct at the same percentile; "
        "CPU = proxy CPU seconds (all workers) per 1,000 requests; load = 1-minute load average after the run.",
        "",
        *main_table(document["runs"]),
    ]
    if document.get("heavy"):
        lines += ["", *heavy_table(document["heavy"])]
    if document.get("setups"):
        lines += ["", *setups_table(document["setups"])]
    if document.get("ablation"):
        lines += ["", *ablation_table(document["ablation"])]
    return "\n".join(lines)

"""The proxy's cost as ratios to a bare aiohttp relay measured in the same run (issue 19's targets).

    .venv/bin/python bench/ratio.py [--rounds 3] [--seconds 6] [--cases relay full minimal]

Each round starts, in turn, the bare relay (bench/floor.py's `relay`: aiohttp server, orjson parse, pooled
aiohttp client; streams relayed chunk by chunk), the full shipped stack (bench/stack.py: Rego policies,
PII, budgets on SQLite, metrics, info logs, every request traced to bench/otlp_sink.py) and the minimal
config (bench/policies/allow-all, `telemetry.metrics: false`, no OTLP endpoint), all on core 0, and for
each measures, with the load on core 1:
- CPU µs per request (from /proc) under wrk at concurrency 32, the 2 KB chat body;
- p50 at concurrency 1 (wrk), less the upstream's own p50 measured directly in the same round: "added";
- time to first token of a stream at concurrency 1 (bench/loadgen.py), less the direct TTFT: "added";
- RSS per worker after the load, and for the proxies the policy evaluator process apart
  (proxy/policy/isolated.py runs regorus in a child process of the worker).
Rounds interleave the cases so the drift of this shared machine falls on all of them; the report is the
median over rounds of each round's ratio, with the load average beside each round.
`--ablate NAME=OPTIONS` adds a proxy case with extra telemetry/server options or environment, to measure
what one component costs (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import floor
import measure
import procfs
import stack

ALLOW_ALL = stack.REPO / "bench" / "policies" / "allow-all"
BODY_BYTES = 2048
TARGETS = {"full": 3.0, "minimal": 1.5}  # CPU per request as a multiple of the relay's
ADDED_TARGET = 2.0  # added p50 at c=1 and added TTFT, as a multiple of the relay's
RSS_TARGET_MB = 120.0


@dataclass
class Case:
    name: str
    kind: str  # "relay" or "proxy"
    telemetry: str = ""
    server: str = ""
    policy: str = ""
    tokens: str = ""
    traces: bool = True
    policy_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    checkout: Path | None = None


@dataclass
class Figures:
    cpu_us: float
    evaluator_cpu_us: float | None  # the policy evaluator process's share of cpu_us
    rps: float
    p50_c1_ms: float
    ttft_ms: float
    rss_mb: float
    evaluator_rss_mb: float | None
    load: float
    errors: int = 0  # a few client-side timeouts on an overloaded machine are reported, not fatal


def shipped_cases() -> list[Case]:
    return [Case("relay", "relay"),
            Case("full", "proxy"),
            Case("minimal", "proxy", telemetry=", metrics: false", traces=False, policy_dir=ALLOW_ALL)]


def parse_ablation(text: str) -> Case:
    """NAME=key:value,key:value: `telemetry.`, `server.`, `policy.` and `tokens.` keys go into the config
    (e.g. tokens.prompt_estimate:bound), `env.` ones into the environment, `traces:off` drops the OTLP
    endpoint, `policy:NAME` replaces the shipped policies with bench/policies/NAME (e.g. allow-all),
    `checkout:DIR` runs another checkout's proxy (e.g. main, for before and after in one run)."""
    name, _, spec = text.partition("=")
    case = Case(name, "proxy")
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition(":")
        section, _, name = key.partition(".")
        if section in ("telemetry", "server", "policy", "tokens") and name:
            setattr(case, section, getattr(case, section) + f", {name}: {value}")
        elif key.startswith("env."):
            case.env[key.removeprefix("env.")] = value
        elif key == "traces":
            case.traces = value != "off"
        elif key == "policy" and (stack.REPO / "bench" / "policies" / value).is_dir():
            case.policy_dir = stack.REPO / "bench" / "policies" / value
        elif key == "checkout":
            case.checkout = Path(value)
        else:
            sys.exit(f"--ablate {text}: unknown item {item!r}")
    return case


@contextlib.contextmanager
def start(case: Case, directory: Path, upstream: stack.Service, sink: stack.Service) -> Iterator[stack.Service]:
    if case.kind == "relay":
        with floor.relay(directory, upstream.port, parse=True) as server:
            yield server
        return
    with stack.proxy(directory, upstream.port, sink.port if case.traces else None, "sqlite", 1,
                     server_options=case.server, telemetry_options=case.telemetry, env_extra=case.env,
                     policy_dir=case.policy_dir, policy_options=case.policy, tokens_options=case.tokens,
                     checkout=case.checkout) as server:
        stack.reset_budget(server)
        yield server


def evaluator_rss_mb(pid: int) -> float | None:
    """The policy evaluator: the worker's child process (the proxy runs one worker here)."""
    children = procfs.process_tree(pid)[1:]
    return max((procfs.status_kb(p, "VmRSS") / 1024 for p in children), default=None)


def measure_case(server: stack.Service, bodies: dict[str, Path], seconds: float, concurrency: int,
                 evaluator: bool) -> Figures:
    url = server.url("/v1/chat/completions")
    measure.wrk(url, bodies["plain"], concurrency, 2.0, None, warmup=0)
    children = procfs.process_tree(server.pid)[1:] if evaluator else []
    before = sum(procfs.cpu_seconds(child) for child in children)
    loaded = measure.wrk(url, bodies["plain"], concurrency, seconds, server.pid, warmup=0)
    evaluator_cpu = sum(procfs.cpu_seconds(child) for child in children) - before
    single = measure.wrk(url, bodies["plain"], 1, max(3.0, seconds / 2), None, warmup=1.0)
    streamed = measure.loadgen(url, bodies["stream"], 1, max(3.0, seconds / 2), None, warmup=1.0)
    errors = loaded["errors"] + single["errors"] + streamed["errors"]
    if errors > 0.05 * (loaded["requests"] + single["requests"] + streamed["requests"]):
        log = server.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{server.name}: {errors} errors; log tail:\n{log}")
    worker_rss = procfs.status_kb(server.pid, "VmRSS") / 1024
    return Figures(cpu_us=1e6 * loaded["cpu_s"] / loaded["requests"],
                   evaluator_cpu_us=1e6 * evaluator_cpu / loaded["requests"] if evaluator else None,
                   rps=loaded["requests_per_s"],
                   p50_c1_ms=single["total_ms"]["p50"], ttft_ms=streamed["ttft_ms"]["p50"], rss_mb=worker_rss,
                   evaluator_rss_mb=evaluator_rss_mb(server.pid) if evaluator else None,
                   load=procfs.load_average()[0], errors=errors)


def direct(upstream: stack.Service, bodies: dict[str, Path], seconds: float) -> tuple[float, float]:
    """The upstream's own p50 and TTFT at concurrency 1: what every case's "added" is measured from."""
    url = upstream.url("/v1/chat/completions")
    single = measure.wrk(url, bodies["plain"], 1, max(3.0, seconds / 2), None, warmup=1.0)
    streamed = measure.loadgen(url, bodies["stream"], 1, max(3.0, seconds / 2), None, warmup=1.0)
    return single["total_ms"]["p50"], streamed["ttft_ms"]["p50"]


def run(cases: list[Case], rounds: int, seconds: float, concurrency: int,
        report: Callable[[str], None], burst: bool = False) -> dict[str, list[tuple[Figures, float, float]]]:
    results: dict[str, list[tuple[Figures, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="llmpp-ratio-") as tmp:
        directory = Path(tmp)
        bodies = {"plain": stack.write_body(directory, BODY_BYTES, False),
                  "stream": stack.write_body(directory, BODY_BYTES, True)}
        with stack.upstream(directory, 0.0, 0.0, 10.0, 64, burst) as upstream, stack.otlp_sink(directory) as sink:
            for round_no in range(1, rounds + 1):
                base_p50, base_ttft = direct(upstream, bodies, seconds)
                report(f"round {round_no} direct: p50 {base_p50:.3f} ms, TTFT {base_ttft:.3f} ms")
                for case in cases:
                    with start(case, directory, upstream, sink) as server:
                        figures = measure_case(server, bodies, seconds, concurrency, case.kind == "proxy")
                    results.setdefault(case.name, []).append((figures, base_p50, base_ttft))
                    evaluator = "" if figures.evaluator_rss_mb is None else \
                        f", evaluator RSS {figures.evaluator_rss_mb:.1f} MB"
                    in_evaluator = "" if figures.evaluator_cpu_us is None else \
                        f" of which evaluator {figures.evaluator_cpu_us:.0f}"
                    report(f"round {round_no} {case.name}: CPU {figures.cpu_us:.0f} µs/req{in_evaluator} "
                           f"({figures.rps:.0f} req/s), "
                           f"c=1 p50 {figures.p50_c1_ms:.3f} ms, TTFT {figures.ttft_ms:.3f} ms, "
                           f"RSS {figures.rss_mb:.1f} MB{evaluator}, load {figures.load:.2f}"
                           + (f", {figures.errors} errors" if figures.errors else ""))
    return results


def summary(results: dict[str, list[tuple[Figures, float, float]]], concurrency: int) -> list[str]:
    relay = results["relay"]
    lines = [f"median over {len(relay)} rounds of each round's ratio to the relay "
             f"(CPU at c={concurrency}, {BODY_BYTES // 1024} KB chat; added = through the case minus direct, c=1)"]
    for name, runs in results.items():
        cpu = [f.cpu_us / r[0].cpu_us for (f, _, _), r in zip(runs, relay, strict=True)]
        added = [(f.p50_c1_ms - b) / (r[0].p50_c1_ms - r[1])
                 for (f, b, _), r in zip(runs, relay, strict=True)]
        ttft = [(f.ttft_ms - t) / (r[0].ttft_ms - r[2]) for (f, _, t), r in zip(runs, relay, strict=True)]
        med = statistics.median
        cpu_us = med(f.cpu_us for f, _, _ in runs)
        added_ms = med(f.p50_c1_ms - b for f, b, _ in runs)
        ttft_ms = med(f.ttft_ms - t for f, _, t in runs)
        rss = med(f.rss_mb for f, _, _ in runs)
        evaluators = [f.evaluator_rss_mb for f, _, _ in runs if f.evaluator_rss_mb is not None]
        in_evaluator = [f.evaluator_cpu_us for f, _, _ in runs if f.evaluator_cpu_us is not None]
        target = TARGETS.get(name)
        verdict = "" if target is None else f" (target ≤ {target:g}: {'met' if med(cpu) <= target else 'not met'})"
        lines.append(
            f"{name:10s} CPU {cpu_us:6.0f} µs/req = {med(cpu):4.2f}x{verdict}"
            + (f" (evaluator process {med(in_evaluator):.0f})" if in_evaluator else "") + "; "
            f"added p50 {added_ms:.3f} ms = {med(added):4.2f}x; added TTFT {ttft_ms:.3f} ms = {med(ttft):4.2f}x; "
            f"RSS {rss:.1f} MB" + (f" + evaluator {med(evaluators):.1f} MB" if evaluators else "")
            + f"; loads {', '.join(f'{f.load:.2f}' for f, _, _ in runs)}")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="the measured window at concurrency 32")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--cases", nargs="+", default=["relay", "full", "minimal"],
                        help="which of relay, full, minimal (relay is always run: it is the unit)")
    parser.add_argument("--burst", action="store_true",
                        help="the upstream sends each stream in one write (TTFT when the first read holds it all)")
    parser.add_argument("--ablate", action="append", default=[], metavar="NAME=OPTIONS",
                        help="an extra proxy case, e.g. full-no-traces=traces:off or "
                             "no-metrics=telemetry.metrics:false or warn=telemetry.log_level:warning")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cases = [case for case in shipped_cases() if case.name == "relay" or case.name in args.cases]
    cases += [parse_ablation(text) for text in args.ablate]
    results = run(cases, args.rounds, args.seconds, args.concurrency, lambda line: print(line, flush=True),
                  args.burst)
    print()
    for line in summary(results, args.concurrency):
        print(line)


if __name__ == "__main__":
    main()

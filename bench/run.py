"""Benchmark: the test upstream directly vs through the proxy, with wrk as the load generator.

Usage: .venv/bin/python bench/run.py [--duration 10] [--workers 1 2] [--concurrency 1 32] [--sizes 1024]
Writes bench/results/latest.json and prints a markdown table (copy it into docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KEY = "demo-key-payments"
KEY_SHA = "59ca1868cfc1dd9e0f0177ae9066e7cec66a880f7aba63d6ededff6f1c755f95"


@dataclass
class Result:
    target: str
    workers: int
    concurrency: int
    prompt_bytes: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    cpu_us_per_request: float | None = None
    peak_rss_mb: float | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def pinned(cpus: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus and shutil.which("taskset") else command


@contextlib.contextmanager
def process(command: list[str], ready_url: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        wait_ready(ready_url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for value in child.read_text().split():
            pids.extend(process_tree(int(value)))
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for p in process_tree(pid):
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def peak_rss_mb(pid: int) -> float:
    """The largest peak RSS among the serving processes (per worker)."""
    peaks = []
    for p in process_tree(pid):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks) if peaks else 0.0


def body_file(directory: Path, size: int) -> Path:
    filler = ("The quarterly report covers revenue, churn and hiring plans across all regions. " * 200)[:size]
    path = directory / f"body-{size}.json"
    path.write_text(
        json.dumps(
            {
                "model": "demo-model",
                "max_tokens": 64,
                "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": filler}],
            }
        )
    )
    return path


def run_wrk(url: str, body: Path, concurrency: int, duration: float, cpus: str | None) -> dict[str, float]:
    threads = 1 if concurrency < 4 else 2
    command = pinned(
        cpus,
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{int(duration)}s",
            "--timeout",
            "10s",
            "-s",
            str(REPO / "bench" / "post.lua"),
            url,
        ],
    )
    env = {**os.environ, "BODY_FILE": str(body), "BENCH_KEY": KEY}
    output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("JSON "))
    return dict(json.loads(line[5:]))


def to_result(target: str, workers: int, concurrency: int, size: int, raw: dict[str, float]) -> Result:
    seconds = raw["duration_us"] / 1e6
    return Result(
        target,
        workers,
        concurrency,
        size,
        round(raw["requests"] / seconds, 1),
        raw["p50_us"] / 1000,
        raw["p90_us"] / 1000,
        raw["p99_us"] / 1000,
        raw["max_us"] / 1000,
        int(raw["errors"] + raw["non2xx"]),
    )


def proxy_config(directory: Path, upstream_port: int) -> Path:
    path = directory / "bench.yaml"
    path.write_text(f"""
auth:
  keys: [{{id: bench, sha256: {KEY_SHA}, app: bench-app, team: research}}]
upstreams:
  demo: {{kind: openai_compatible, base_url: "http://127.0.0.1:{upstream_port}/v1"}}
models:
  gpt-4o: {{upstream: demo, upstream_model: demo-model, aliases: [demo-model], prices: {{input: 2.5, output: 10}}}}
budget:
  sqlite_path: {directory}/budget.sqlite3
  ledger_path: {directory}/ledger.jsonl
telemetry: {{log_level: warning}}
policy: {{dir: {REPO / "policies"}}}
""")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        upstream_port = free_port()
        # Two cores: the proxy gets core 0; the upstream and wrk share core 1.
        upstream_cmd = pinned("1", [str(BIN / "python"), "bench/serve_upstream.py", "--port", str(upstream_port)])
        with process(upstream_cmd, f"http://127.0.0.1:{upstream_port}/v1/models"):
            upstream_url = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
            bodies = {size: body_file(directory, size) for size in args.sizes}
            for workers in args.workers:
                port = free_port()
                config = proxy_config(directory, upstream_port)
                cpus = "0" if workers == 1 else None
                serve = pinned(
                    cpus,
                    [
                        str(BIN / "llm-policy-proxy"),
                        "serve",
                        "--config",
                        str(config),
                        "--port",
                        str(port),
                        "--workers",
                        str(workers),
                    ],
                )
                with process(serve, f"http://127.0.0.1:{port}/healthz") as proxy:
                    proxy_url = f"http://127.0.0.1:{port}/v1/chat/completions"
                    for size, body in bodies.items():
                        for concurrency in args.concurrency:
                            run_wrk(proxy_url, body, concurrency, 2, "1")  # warm-up
                            if workers == args.workers[0]:
                                raw = run_wrk(upstream_url, body, concurrency, args.duration, "1")
                                results.append(to_result("direct", 0, concurrency, size, raw))
                            before = cpu_seconds(proxy.pid)
                            raw = run_wrk(proxy_url, body, concurrency, args.duration, "1")
                            used = cpu_seconds(proxy.pid) - before
                            result = to_result("proxy", workers, concurrency, size, raw)
                            result.cpu_us_per_request = round(used / max(1, raw["requests"]) * 1e6, 1)
                            result.peak_rss_mb = round(peak_rss_mb(proxy.pid), 1)
                            results.append(result)
                            print(f"done: workers={workers} c={concurrency} size={size}", file=sys.stderr)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(markdown(results))


def markdown(results: list[Result]) -> str:
    direct = {(r.concurrency, r.prompt_bytes): r for r in results if r.target == "direct"}
    lines = [
        "| target | workers | conc. | prompt | req/s | p50 ms | p90 ms | p99 ms | max ms | added p50 ms "
        "| added p99 ms | CPU µs/req | peak RSS MB | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = direct.get((r.concurrency, r.prompt_bytes))
        added50 = f"{r.p50_ms - base.p50_ms:.3f}" if base and r.target == "proxy" else ""
        added99 = f"{r.p99_ms - base.p99_ms:.3f}" if base and r.target == "proxy" else ""
        lines.append(
            f"| {r.target} | {r.workers or ''} | {r.concurrency} | {r.prompt_bytes} | {r.requests_per_s:.0f} "
            f"| {r.p50_ms:.3f} | {r.p90_ms:.3f} | {r.p99_ms:.3f} | {r.max_ms:.3f} | {added50} | {added99} "
            f"| {r.cpu_us_per_request or ''} | {r.peak_rss_mb or ''} | {r.errors} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

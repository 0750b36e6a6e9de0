"""Where the minimal config's CPU goes beyond the bare relay's, file by file, in one run (issue 19).

    .venv/bin/pip install py-spy      # not a dependency of the project
    .venv/bin/python bench/profile_vs_relay.py [--seconds 12] [--concurrency 32]

The relay (bench/floor.py) and the minimal config (allow-all policy, metrics off, no traces) each run
under wrk while py-spy samples them. Each file's share of the samples (own time; the policy evaluator
process left out) is turned into µs per request with the process's CPU per request from /proc, and the
files are listed by how much more the proxy spends in them than the relay: aiohttp's own frames against
the proxy's Python around them.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor
import measure
import stack

ALLOW_ALL = stack.REPO / "bench" / "policies" / "allow-all"
FRAME_FILE = re.compile(r"\((.*?)(?::\d+)?\)$")


def own_by_file(collapsed: Path) -> tuple[collections.Counter[str], int]:
    """Samples per source file (stdlib and site-packages by their top package), the evaluator left out."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if "proxy.policy.evaluator" in stack_text:
            continue
        match = FRAME_FILE.search(stack_text.split(";")[-1])
        path = match.group(1) if match else stack_text.split(";")[-1]
        path = re.sub(r".*site-packages/", "", path)
        path = re.sub(r".*/lib/python3\.\d+/", "", path)
        path = re.sub(r"^.*?/proxy/", "proxy/", path)
        key = path if path.startswith("proxy/") else path.split("/")[0]
        own[key] += int(count)
        total += int(count)
    return own, total


def sampled(url: str, body: Path, pid: int, concurrency: int, seconds: float, out: Path,
            py_spy: str) -> float:
    """CPU µs per request of the process (its worker thread and helpers), sampled into `out`."""
    measure.wrk(url, body, concurrency, 2.0, None, warmup=0)
    spy = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                            "--format", "raw", "--output", str(out), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = measure.wrk(url, body, concurrency, seconds, pid, warmup=0)
    spy.wait()
    return float(result["cpu_s"]) / int(result["requests"]) * 1e6


def main(seconds: float, concurrency: int) -> None:
    py_spy = shutil.which("py-spy") or str(stack.BIN / "py-spy")
    if not Path(py_spy).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    directory = Path(tempfile.mkdtemp(prefix="llmpp-vs-relay-"))
    with stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream:
        body = stack.write_body(directory, 2048, False)
        with floor.relay(directory, upstream.port, parse=True) as relay:
            relay_cpu = sampled(relay.url("/v1/chat/completions"), body, relay.pid, concurrency, seconds,
                                directory / "relay.collapsed", py_spy)
        with stack.proxy(directory, upstream.port, None, "sqlite", 1, telemetry_options=", metrics: false",
                         policy_dir=ALLOW_ALL) as proxy:
            stack.reset_budget(proxy)
            proxy_cpu = sampled(proxy.url("/v1/chat/completions"), body, proxy.pid, concurrency, seconds,
                                directory / "proxy.collapsed", py_spy)
    relay_own, relay_total = own_by_file(directory / "relay.collapsed")
    proxy_own, proxy_total = own_by_file(directory / "proxy.collapsed")

    def us(own: collections.Counter[str], total: int, cpu: float, key: str) -> float:
        return own[key] / total * cpu if total else 0.0

    print(f"CPU per request under py-spy: relay {relay_cpu:.0f} µs, minimal config {proxy_cpu:.0f} µs "
          f"(the worker process; its evaluator process apart), concurrency {concurrency}")
    print(f"{'own time in':46s} {'relay':>7s} {'proxy':>7s} {'more':>7s}   µs per request")
    keys = sorted(set(relay_own) | set(proxy_own),
                  key=lambda k: us(relay_own, relay_total, relay_cpu, k) - us(proxy_own, proxy_total, proxy_cpu, k))
    for key in keys[:40]:
        a, b = us(relay_own, relay_total, relay_cpu, key), us(proxy_own, proxy_total, proxy_cpu, key)
        print(f"{key[:46]:46s} {a:7.1f} {b:7.1f} {b - a:7.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    main(args.seconds, args.concurrency)

"""CPU per request at concurrency 1 and 32, the bare relay against the minimal config, in one run: why the
added latency at c=1 costs more than the c=32 CPU figure suggests (docs/performance.md, issue 19).

    .venv/bin/python bench/cpu_by_concurrency.py [--seconds 5]

Each process runs on core 0 with wrk on core 1 (bench/stack.py's pinning). CPU per request is read from
/proc for the relay, and for the proxy's worker and its policy evaluator process apart.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor
import measure
import procfs
import stack

ALLOW_ALL = stack.REPO / "bench" / "policies" / "allow-all"


def figures(url: str, body: Path, pid: int, concurrency: int, seconds: float) -> tuple[float, float, float]:
    """(CPU µs per request of the process tree's root, of its children, p50 ms)."""
    measure.wrk(url, body, concurrency, 2.0, None, warmup=0)
    children = procfs.process_tree(pid)[1:]
    before = sum(procfs.cpu_seconds(child) for child in children)
    result = measure.wrk(url, body, concurrency, seconds, pid, warmup=0)
    child_s = sum(procfs.cpu_seconds(child) for child in children) - before
    requests = result["requests"]
    return result["cpu_s"] / requests * 1e6, child_s / requests * 1e6, result["total_ms"]["p50"]


def main(seconds: float) -> None:
    directory = Path(tempfile.mkdtemp(prefix="llmpp-concurrency-"))
    with stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream:
        body = stack.write_body(directory, 2048, False)
        with floor.relay(directory, upstream.port, parse=True) as relay:
            rows = [("relay", c, *figures(relay.url("/v1/chat/completions"), body, relay.pid, c, seconds))
                    for c in (1, 32)]
        with stack.proxy(directory, upstream.port, None, "sqlite", 1, telemetry_options=", metrics: false",
                         policy_dir=ALLOW_ALL) as proxy:
            stack.reset_budget(proxy)
            rows += [("minimal", c, *figures(proxy.url("/v1/chat/completions"), body, proxy.pid, c, seconds))
                     for c in (1, 32)]
    for name, concurrency, cpu, child, p50 in rows:
        evaluator = f", of which {child:.0f} in the evaluator process" if name != "relay" else ""
        print(f"{name:8s} c={concurrency:<3d} CPU {cpu + child:6.0f} µs/req{evaluator}; p50 {p50:.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    main(parser.parse_args().seconds)

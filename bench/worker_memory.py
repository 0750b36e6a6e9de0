"""Resident memory of the proxy's processes after a little traffic: RSS, PSS and private memory of each.

    .venv/bin/python bench/worker_memory.py [--workers 1] [--requests 50] [--bound] [--minimal]

Starts the test upstream and the proxy with bench/stack.py's config (the full shipped stack, traces to
bench/otlp_sink.py; `--minimal`: allow-all policy, no metrics, no traces; `--bound`:
`tokens.prompt_estimate: bound`), sends `--requests` 2 KB chat requests one at a time, and reads
/proc/<pid>/status and smaps_rollup of the supervisor, the workers and their policy evaluators. No load:
for memory only (bench/ratio.py measures RSS after its load). With several workers, PSS and private
memory show what each adds, since RSS counts the pages they share with the supervisor.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import procfs
import stack

FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty")


def rollup(pid: int) -> dict[str, float]:
    """MB per smaps_rollup field."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        if name in FIELDS:
            values[name] = int(rest.split()[0]) / 1024
    return values


def role(pid: int) -> str:
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return "evaluator" if b"proxy.policy.evaluator" in command else "proxy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--bound", action="store_true", help="tokens.prompt_estimate: bound")
    parser.add_argument("--minimal", action="store_true", help="allow-all policy, metrics off, no traces")
    args = parser.parse_args()
    options = {"tokens_options": ", prompt_estimate: bound" if args.bound else ""}
    if args.minimal:
        options |= {"telemetry_options": ", metrics: false", "policy_dir": stack.REPO / "bench/policies/allow-all"}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        with stack.upstream(directory, 0, 0, 0, 20) as upstream, stack.otlp_sink(directory) as sink, \
                stack.proxy(directory, upstream.port, None if args.minimal else sink.port, "sqlite", args.workers,
                            **options) as proxy:
            body = json.loads(stack.write_body(directory, 2048, False).read_text())
            for _ in range(args.requests):
                httpx.post(proxy.url("/v1/chat/completions"), json=body, timeout=10,
                           headers={"Authorization": f"Bearer {stack.KEY}"}).raise_for_status()
            time.sleep(0.5)
            for pid in procfs.process_tree(proxy.proc.pid):
                figures = rollup(pid)
                print(f"{pid:>8} {role(pid):9s} " + "  ".join(f"{name} {figures.get(name, 0):6.1f}" for name in FIELDS)
                      + f"  peak {procfs.status_kb(pid, 'VmHWM') / 1024:6.1f} MB")


if __name__ == "__main__":
    main()

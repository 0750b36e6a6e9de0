"""System calls per request: the full proxy under wrk, counted by `strace -c -f`.

    apt-get install strace                # not installed by the project
    .venv/bin/python bench/syscalls.py [--seconds 5] [--concurrency 1] [--store sqlite] [--case full]

Starts the stack as bench/run.py does (traces to the OTLP sink), or the minimal config (`--case minimal`:
allow-all policy, metrics off, no traces), or the bare relay (`--case relay`, bench/floor.py), attaches
strace to it and its children (the policy evaluator) for one wrk run and prints each system call's count
per request, most frequent first. strace slows the proxy several
times over, so read the counts, not the times.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import floor
import measure
import stack

ALLOW_ALL = stack.REPO / "bench" / "policies" / "allow-all"


@contextlib.contextmanager
def served(case: str, directory: Path, upstream_port: int, sink_port: int, store: str) -> Iterator[stack.Service]:
    if case == "relay":
        with floor.relay(directory, upstream_port, parse=True) as relay:
            yield relay
        return
    minimal = case == "minimal"
    with stack.proxy(directory, upstream_port, None if minimal else sink_port, store, 1,
                     telemetry_options=", metrics: false" if minimal else "",
                     policy_dir=ALLOW_ALL if minimal else None) as proxy:
        stack.reset_budget(proxy)
        yield proxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--case", choices=("full", "minimal", "relay"), default="full")
    args = parser.parse_args()
    if not shutil.which("strace") or not shutil.which("wrk"):
        sys.exit("needs strace and wrk (apt-get install strace wrk)")
    with tempfile.TemporaryDirectory(prefix="llmpp-syscalls-") as tmp:
        directory = Path(tmp)
        body = stack.write_body(directory, 1024, False)
        with (stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream,
              stack.otlp_sink(directory) as sink,
              served(args.case, directory, upstream.port, sink.port, args.store) as proxy):
            url = proxy.url("/v1/chat/completions")
            measure.wrk(url, body, args.concurrency, 2.0, None, warmup=0)
            report = directory / "strace.txt"
            tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(proxy.pid), "-o", str(report)],
                                      stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached to every thread before the load starts
            result = measure.wrk(url, body, args.concurrency, args.seconds, None, warmup=0)
            time.sleep(0.5)
            tracer.terminate()
            tracer.wait()
        counts: list[tuple[int, str]] = []
        for line in report.read_text().splitlines():
            fields = line.split()
            # "% time  seconds  usecs/call  calls  [errors]  syscall"
            if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                counts.append((int(fields[3]), fields[-1]))
    requests = result["requests"]
    print(f"{requests} requests at concurrency {args.concurrency} ({args.case}, {args.store}); "
          "system calls per request:")
    for calls, name in sorted(counts, reverse=True):
        if calls / requests >= 0.05:
            print(f"  {name:16s} {calls / requests:6.2f}")


if __name__ == "__main__":
    main()

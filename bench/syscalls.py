"""System calls per request: the full proxy under wrk, counted by `strace -c -f`.

    apt-get install strace                # not installed by the project
    .venv/bin/python bench/syscalls.py [--seconds 5] [--concurrency 1] [--store sqlite]

Starts the stack as bench/run.py does (traces to the OTLP sink), attaches strace to the proxy for one wrk
run and prints each system call's count per request, most frequent first. strace slows the proxy several
times over, so read the counts, not the times.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import measure
import stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    args = parser.parse_args()
    if not shutil.which("strace") or not shutil.which("wrk"):
        sys.exit("needs strace and wrk (apt-get install strace wrk)")
    with tempfile.TemporaryDirectory(prefix="llmpp-syscalls-") as tmp:
        directory = Path(tmp)
        body = stack.write_body(directory, 1024, False)
        with (stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream,
              stack.otlp_sink(directory) as sink,
              stack.proxy(directory, upstream.port, sink.port, args.store, 1) as proxy):
            stack.reset_budget(proxy)
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
    print(f"{requests} requests at concurrency {args.concurrency} ({args.store}); system calls per request:")
    for calls, name in sorted(counts, reverse=True):
        if calls / requests >= 0.05:
            print(f"  {name:16s} {calls / requests:6.2f}")


if __name__ == "__main__":
    main()

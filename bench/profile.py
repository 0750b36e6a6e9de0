"""Where the proxy's CPU goes under load: the full stack under wrk, sampled by py-spy.

    .venv/bin/pip install py-spy      # not a dependency of the project
    .venv/bin/python bench/profile.py [--seconds 15] [--concurrency 32] [--store sqlite] [--no-traces]

Starts the test upstream, the OTLP sink and the proxy exactly as bench/run.py does, drives it with wrk
(1 KB non-streaming chat) while py-spy samples the proxy, and prints the functions with the most samples,
by own time and by inclusive time, grouped by module. The raw collapsed stacks are kept (--out) for a
flame graph (e.g. speedscope.app or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import measure
import procfs
import stack


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread of `pid` (/proc/<pid>/task/<tid>/stat utime + stime), keyed "name-tid"."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            found[f"{name}-{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--stream", action="store_true", help="streamed chat instead of plain")
    parser.add_argument("--no-traces", action="store_true", help="no OTLP endpoint, so no trace export")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--server-options", default="",
                        help='added to the config\'s server mapping, e.g. ", gc_freeze: false"')
    parser.add_argument("--minimal", action="store_true",
                        help="bench/ratio.py's minimal config: allow-all policy, metrics off, no traces")
    parser.add_argument("--telemetry-options", default="",
                        help='added to the config\'s telemetry mapping, e.g. ", log_level: warning"')
    parser.add_argument("--no-spy", action="store_true", help="only measure (req/s, CPU per request), no sampling")
    parser.add_argument("--out", type=Path, default=stack.REPO / "bench" / "results" / "profile.collapsed")
    return parser.parse_args()


def frames_of(line: str) -> tuple[list[str], int]:
    stack_text, _, count = line.rpartition(" ")
    return stack_text.split(";"), int(count)


def short(frame: str) -> str:
    # py-spy frames look like "function (path/to/module.py:123)"; drop the line and the site-packages prefix.
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{stack.REPO}/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarise(collapsed: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    modules: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        if not line.strip():
            continue
        frames, count = frames_of(line)
        total += count
        names = [short(f) for f in frames]
        own[names[-1]] += count
        modules[names[-1].rsplit("(", 1)[-1].rstrip(")")] += count
        for name in set(names):
            inclusive[name] += count
    print(f"{total} samples")
    for title, counter in (("own time", own), ("own time by file", modules), ("inclusive time", inclusive)):
        print(f"\n## {title}")
        for name, count in counter.most_common(top):
            print(f"{100 * count / total:6.1f}%  {name}")


def main() -> None:
    args = parse_args()
    py_spy = shutil.which("py-spy") or str(stack.BIN / "py-spy")
    if not (args.no_spy or Path(py_spy).exists()) or not shutil.which("wrk"):
        sys.exit("needs py-spy (.venv/bin/pip install py-spy) and wrk (apt-get install wrk)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmpp-profile-") as tmp:
        directory = Path(tmp)
        body = stack.write_body(directory, 1024, args.stream)
        telemetry = args.telemetry_options + (", metrics: false" if args.minimal else "")
        policy_dir = stack.REPO / "bench" / "policies" / "allow-all" if args.minimal else None
        with (stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream,
              stack.otlp_sink(directory) as sink,
              stack.proxy(directory, upstream.port, None if args.no_traces or args.minimal else sink.port,
                          args.store, 1, server_options=args.server_options, telemetry_options=telemetry,
                          policy_dir=policy_dir) as proxy):
            ready_peak_mb = procfs.status_kb(proxy.pid, "VmHWM") / 1024
            stack.reset_budget(proxy)
            run = measure.loadgen if args.stream else measure.wrk
            run(proxy.url("/v1/chat/completions"), body, args.concurrency, 2.0, None, warmup=0)
            record = [py_spy, "record", "--pid", str(proxy.pid), "--rate", "250", "--format", "raw",
                      "--duration", str(int(args.seconds) + 2), "--output", str(args.out), "--nonblocking",
                      "--subprocesses"]
            spy = None if args.no_spy else subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0 if spy is None else 1.0)
            threads_before = thread_cpu(proxy.pid)
            result = run(proxy.url("/v1/chat/completions"), body, args.concurrency, args.seconds, proxy.pid, warmup=0)
            threads_after = thread_cpu(proxy.pid)
            if spy is not None:
                spy.wait()
            sampler = "no sampler" if spy is None else "under py-spy"
            print(f"{result['requests_per_s']} req/s, CPU {1e6 * result['cpu_s'] / result['requests']:.0f} µs/req "
                  f"({sampler}), p50 {result['total_ms']['p50']} ms, p99 {result['total_ms']['p99']} ms, "
                  f"errors {result['errors']}, "
                  f"rss {max(procfs.sample(proxy.pid).peak_rss_mb):.0f} MB (peak once ready {ready_peak_mb:.1f} MB)")
            # The first thread is the event loop; the others are the SQLite, export and executor threads.
            for name, seconds in threads_after.items():
                used = seconds - threads_before.get(name, 0.0)
                if used > 0:
                    print(f"  thread {name}: {1e6 * used / result['requests']:.0f} µs/req")
    if not args.no_spy:
        summarise(args.out, args.top)


if __name__ == "__main__":
    main()

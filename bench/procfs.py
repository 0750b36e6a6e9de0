"""What the benchmark reads about the proxy from /proc: CPU time, peak and current RSS, fds and threads.

The serving processes are the process tree under the pid started (the supervisor and its forked workers).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(FileNotFoundError):
            for value in children.read_text().split():
                pids.extend(process_tree(int(value)))
    return pids


def workers(pid: int) -> list[int]:
    """The processes that serve requests: the children when there are any (supervisor mode), else pid."""
    tree = process_tree(pid)
    return tree[1:] or tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every process in the tree."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(FileNotFoundError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Sample:
    rss_mb: list[float]
    peak_rss_mb: list[float]
    fds: list[int]
    threads: list[int]


def sample(pid: int) -> Sample:
    """Per serving process: current RSS, peak RSS (VmHWM), open fds, threads."""
    pids = workers(pid)
    fds = []
    for p in pids:
        try:
            fds.append(len(os.listdir(f"/proc/{p}/fd")))
        except OSError:
            fds.append(0)
    return Sample(
        rss_mb=[round(status_kb(p, "VmRSS") / 1024, 1) for p in pids],
        peak_rss_mb=[round(status_kb(p, "VmHWM") / 1024, 1) for p in pids],
        fds=fds,
        threads=[status_kb(p, "Threads") for p in pids],
    )


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]

"""One measured load run, with wrk (non-streaming) or bench/loadgen.py (streaming, open loop), on core 1.

Both return the same shape: requests, requests_per_s, total_ms {p50, p90, p99, max}, ttft_ms, errors, and
the proxy's CPU seconds over the measured window when a proxy pid is given.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import procfs
from stack import BIN, KEY, LOAD_CPUS, REPO, pinned

Result = dict[str, Any]


def wrk(url: str, body: Path, concurrency: int, duration: float, pid: int | None, warmup: float = 1.0) -> Result:
    def command(seconds: float) -> list[str]:
        threads = 1 if concurrency < 4 else 2
        return pinned(LOAD_CPUS, ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s",
                                  "--timeout", "30s", "-s", str(REPO / "bench" / "post.lua"), url])

    env = {**os.environ, "BODY_FILE": str(body), "BENCH_KEY": KEY}
    if warmup:
        subprocess.run(command(warmup), capture_output=True, env=env, check=True)
    before = procfs.cpu_seconds(pid) if pid else 0.0
    output = subprocess.run(command(duration), capture_output=True, text=True, env=env, check=True).stdout
    cpu = procfs.cpu_seconds(pid) - before if pid else None
    raw = json.loads(next(line for line in output.splitlines() if line.startswith("JSON "))[5:])
    seconds = raw["duration_us"] / 1e6
    errors = int(raw["errors"] + raw["non2xx"])
    return {
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "total_ms": {q: round(raw[f"{q}_us"] / 1000, 3) for q in ("p50", "p90", "p99", "max")},
        "ttft_ms": None,
        "errors": errors,
        "cpu_s": cpu,
    }


def loadgen(url: str, body: Path, concurrency: int, duration: float, pid: int | None, warmup: float = 1.0,
            rate: float | None = None) -> Result:
    command = [str(BIN / "python"), str(REPO / "bench" / "loadgen.py"), "--url", url, "--body-file", str(body),
               "--key", KEY, "--concurrency", str(concurrency), "--duration", str(duration), "--warmup", str(warmup)]
    if rate:
        command += ["--rate", str(rate)]
    proc = subprocess.Popen(pinned(LOAD_CPUS, command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    window: dict[str, float] = {}
    other: list[str] = []

    def read_markers() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip() in ("measure", "stop"):
                window[line.strip()] = procfs.cpu_seconds(pid) if pid else 0.0
            else:
                other.append(line)

    reader = threading.Thread(target=read_markers, daemon=True)
    reader.start()
    stdout = proc.stdout.read()
    proc.wait()
    reader.join()
    if proc.returncode:
        raise RuntimeError(f"loadgen failed: {''.join(other)[-2000:]}")
    result: Result = json.loads(stdout)
    result["cpu_s"] = window["stop"] - window["measure"] if pid and len(window) == 2 else None
    return result


def background(url: str, body: Path, concurrency: int, duration: float, rate: float) -> subprocess.Popen[str]:
    """An open-loop loadgen left running (for the heavy-prompt scenario); read its JSON with finish()."""
    command = [str(BIN / "python"), str(REPO / "bench" / "loadgen.py"), "--url", url, "--body-file", str(body),
               "--key", KEY, "--concurrency", str(concurrency), "--duration", str(duration), "--warmup", "0",
               "--rate", str(rate)]
    return subprocess.Popen(pinned(LOAD_CPUS, command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def finish(proc: subprocess.Popen[str]) -> Result:
    stdout, _ = proc.communicate()
    return dict(json.loads(stdout))

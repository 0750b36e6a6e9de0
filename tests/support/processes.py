"""A real `llm-policy-proxy serve` process for tests that need one (workers, signals, real stdout)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_proxy(config: Path, *, workers: int = 1, env: Mapping[str, str] | None = None,
                stdout: IO[bytes] | int = subprocess.DEVNULL) -> tuple[subprocess.Popen[bytes], str]:
    """Starts the proxy and waits until /readyz answers 200; returns the process and its root URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", str(port),
                             "--workers", str(workers)], stdout=stdout,
                            stderr=subprocess.STDOUT if stdout is not subprocess.DEVNULL else subprocess.PIPE,
                            env=None if env is None else dict(env), start_new_session=True)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(root + "/readyz", timeout=1).status_code == 200:
                return proc, root
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            detail = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"the proxy exited with {proc.returncode}: {detail}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("the proxy did not become ready within 20 s")
        time.sleep(0.1)


def stop_proxy(proc: subprocess.Popen[bytes], timeout: float = 60, log: Path | None = None) -> None:
    """SIGTERM, then wait for a clean exit (0); a proxy that hangs or fails shows its stderr (or the tail of
    `log`, where its output went), stacks included. The default timeout is past the default drain (30 s)
    plus exit grace (10 s), so a stuck worker's watchdog prints its stacks before this gives up."""
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The whole session (start_proxy starts one), so no orphaned worker keeps the pipes open.
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"the proxy did not exit within {timeout} s of SIGTERM:\n{_output(err, log)}") \
            from None
    assert proc.returncode == 0, f"the proxy exited with {proc.returncode}:\n{_output(err, log)}"


def _output(err: bytes | None, log: Path | None) -> str:
    text = (err or b"").decode(errors="replace")
    if log is not None and log.exists():
        text += log.read_text(errors="replace")[-20_000:]
    return text

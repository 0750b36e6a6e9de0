"""Private redis-server processes for tests: start one on a free port, freeze, kill and restart it; and the
fixtures that hand them out (import them into a test module or conftest to use them)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def binary() -> str | None:
    return shutil.which("redis-server")


@dataclass
class RedisServer:
    """A redis-server of our own; AOF with fsync on every write, so a SIGKILL loses nothing (unless not
    `durable`: no persistence, for benchmarks)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    durable: bool = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError("redis-server is not on PATH")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.durable else "no",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not reachable("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and requests queue in the kernel, unanswered: a hung Redis."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: Redis runs again, and first serves whatever its clients sent while it was frozen."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


def ensure_redis(workdir: Path) -> tuple[str, RedisServer | None]:
    """The shared Redis if one answers on 6379, else a private one; the caller stops what it gets."""
    if reachable("127.0.0.1", 6379):
        return DEFAULT_URL, None
    server = RedisServer(workdir)
    server.start()
    return server.url, server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis to share under a unique key prefix: the one on 6379, or a private one."""
    if binary() is None and not reachable("127.0.0.1", 6379):
        pytest.skip("no Redis on 127.0.0.1:6379 and redis-server is not on PATH to start one")
    url, server = ensure_redis(tmp_path_factory.mktemp("redis"))
    yield url
    if server is not None:
        server.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to freeze, kill and restart."""
    if binary() is None:
        pytest.skip("needs redis-server on PATH to run one of its own")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()

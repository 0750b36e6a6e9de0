"""The benchmark matrix: which cases run against which proxy setups, in full and in `--quick` mode."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

SIZES = (1024, 8192, 65536)
CONCURRENCY = (1, 32, 256)
# Paced streams last ~0.7 s, so the lightest load is 4 streams at a time (enough samples in a few seconds).
PACED = ((1024, 4), (1024, 32), (8192, 32), (65536, 32))


@dataclass(frozen=True, order=True)
class Case:
    """One load shape: `plain` (non-streaming, driven by wrk), `stream` (bench/loadgen.py, events as fast as the
    upstream can send them) or `paced` (bench/loadgen.py, the upstream waits before each event, like a model)."""

    mode: str
    size: int
    concurrency: int

    @property
    def label(self) -> str:
        return f"{self.mode} {self.size // 1024}K c{self.concurrency}"


@dataclass(frozen=True)
class Setup:
    """A proxy configuration: budget store and number of workers."""

    store: str
    workers: int

    @property
    def label(self) -> str:
        return f"{self.store} w{self.workers}"


def full_matrix(sizes: tuple[int, ...] = SIZES,
                concurrency: tuple[int, ...] = CONCURRENCY) -> list[tuple[Setup, list[Case]]]:
    cases = [Case(mode, size, c) for mode, size, c in itertools.product(("plain", "stream"), sizes, concurrency)]
    cases += [Case("paced", size, c) for size, c in PACED if size in sizes]
    return [(Setup(store, workers), cases) for store in ("sqlite", "redis") for workers in (1, 2)]


def quick_matrix() -> list[tuple[Setup, list[Case]]]:
    """A representative subset: every size and concurrency once, both modes, both stores, both worker counts."""
    main = [Case("plain", 1024, 1), Case("plain", 1024, 32), Case("plain", 1024, 256), Case("plain", 8192, 32),
            Case("plain", 65536, 32), Case("stream", 1024, 1), Case("stream", 1024, 32), Case("stream", 65536, 32),
            Case("paced", 1024, 4), Case("paced", 1024, 32)]
    return [
        (Setup("sqlite", 1), main),
        (Setup("redis", 1), [Case("plain", 1024, 1), Case("plain", 1024, 32), Case("stream", 1024, 32)]),
        (Setup("sqlite", 2), [Case("plain", 1024, 32), Case("stream", 1024, 32)]),
    ]


def direct_cases(matrix: list[tuple[Setup, list[Case]]]) -> list[Case]:
    return sorted({case for _, cases in matrix for case in cases})

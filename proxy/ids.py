"""Unique ids for requests, decisions and reservations, cheap enough for the hot path.

uuid4() asks the kernel for randomness on every call; under load that syscall also hands the GIL to
the store's worker thread and back. These ids need uniqueness, not secrecy, so a per-process PRNG
seeded from the kernel does the job in a fraction of the time.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))


def reseed_after_fork() -> None:
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=reseed_after_fork)


def new_id() -> str:
    return f"{_random.getrandbits(128):032x}"

"""Local, durable record of settles the store could not take, replayed when it is back.

Append-only JSON lines, one fsync'd write each, shared by the worker processes of a host (an flock
guards appends and the hand-over to a replay). A replay first renames the file to a claim of its own,
so appends carry on into a fresh file; whatever it cannot replay goes back into the ledger. Replaying
an entry twice is harmless: a settle of one reservation id counts once in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import orjson
import structlog

from proxy.budget.errors import StoreUnavailable
from proxy.budget.store import Reservation

log = structlog.get_logger(__name__)
Settle = Callable[[Reservation, int, int], Awaitable[None]]
_CLAIM = ".replay-"


class Ledger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, reservation: Reservation, cost_micros: int, tokens: int) -> None:
        """Blocking (fsync): call it off the event loop."""
        line = orjson.dumps({"reservation": reservation.to_dict(), "cost_micros": cost_micros, "tokens": tokens})
        self._write_lines([line])

    def _write_lines(self, lines: list[bytes]) -> None:
        with self._locked():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # A leading newline too: a line torn by a crash must not swallow the next record.
                os.write(fd, b"".join(b"\n" + line + b"\n" for line in lines))
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending(self) -> bool:
        try:
            if self.path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
        return any(self._orphan_claims())

    def _orphan_claims(self) -> Iterator[Path]:
        """Claims left by a replay whose process died; a live process is still working on its own."""
        for claim in self.path.parent.glob(self.path.name + _CLAIM + "*"):
            pid = int(claim.name.rsplit(_CLAIM, 1)[1].split("-")[0])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                yield claim
            except PermissionError:
                continue

    def _claim(self) -> list[Path]:
        with self._locked():
            claims = list(self._orphan_claims())
            if self.path.exists() and self.path.stat().st_size > 0:
                claim = self.path.with_name(f"{self.path.name}{_CLAIM}{os.getpid()}-{uuid.uuid4().hex}")
                self.path.rename(claim)
                claims.append(claim)
            for claim in claims:
                # Take orphans over under our pid so no other replay picks them up at the same time.
                if not claim.name.split(_CLAIM, 1)[1].startswith(f"{os.getpid()}-"):
                    mine = claim.with_name(f"{self.path.name}{_CLAIM}{os.getpid()}-{uuid.uuid4().hex}")
                    claim.rename(mine)
                    claims[claims.index(claim)] = mine
            _fsync_dir(self.path.parent)
        return claims

    async def replay(self, settle: Settle) -> int:
        """Settle every entry through `settle`; returns how many were replayed. Stops at the first failure."""
        replayed = 0
        for claim in await asyncio.to_thread(self._claim):
            lines = [line for line in (await asyncio.to_thread(claim.read_bytes)).split(b"\n") if line.strip()]
            done = 0
            try:
                for line in lines:
                    entry = _parse(line)
                    if entry is not None:
                        await settle(*entry)
                        replayed += 1
                    done += 1
            except Exception as exc:
                if not isinstance(exc, StoreUnavailable):
                    log.exception("budget_ledger_replay_failed")
                await asyncio.to_thread(self._write_lines, lines[done:])
                await asyncio.to_thread(claim.unlink)
                return replayed
            await asyncio.to_thread(claim.unlink)
        return replayed


def _parse(line: bytes) -> tuple[Reservation, int, int] | None:
    try:
        data = orjson.loads(line)
        return Reservation.from_dict(data["reservation"]), int(data["cost_micros"]), int(data["tokens"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        # Only a torn last line from a crash mid-write can look like this; its settle never returned.
        log.error("budget_ledger_unreadable_line", line=line[:200].decode(errors="replace"))
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

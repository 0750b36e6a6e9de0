"""Local, durable record of what the store could not take, replayed when it is back: settles, records,
and the cancels that compensate reserves whose outcome is unknown.

Append-only JSON lines, fsync'd (the entries of one loop iteration share one write), shared by the worker
processes of a host (an flock guards appends and the hand-over to a replay). A replay first renames the
file to a claim of its own, so appends carry on into a fresh file; whatever it cannot replay goes back into
the ledger. Replaying an entry twice is harmless: each carries an id the store applies once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from proxy.budget.errors import StoreUnavailable
from proxy.budget.store import Reservation, ScopeLimit
from proxy.budget.windows import Window

log = structlog.get_logger(__name__)
_CLAIM = ".replay-"
_REPLAY_WINDOW = 64


@dataclass(frozen=True, slots=True)
class Settle:
    reservation: Reservation
    cost_micros: int
    tokens: int


@dataclass(frozen=True, slots=True)
class Cancel:
    """Release a hold that may exist, and refuse a reserve of this id that reaches the store later."""

    reservation_id: str


@dataclass(frozen=True, slots=True)
class Record:
    record_id: str
    scopes: tuple[ScopeLimit, ...]
    cost_micros: int
    tokens: int
    at: float  # the windows are those current then, however late the replay


Entry = Settle | Cancel | Record
Apply = Callable[[Entry], Awaitable[None]]


class Ledger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, entry: Entry) -> None:
        """Blocking (fsync): call it off the event loop, or use `write`."""
        self._write_lines([encode(entry)])

    async def write(self, entry: Entry) -> None:
        """Durable once this returns (raises OSError if the disk refuses); the entries written during one
        loop iteration share one write and one fsync, in a thread."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((encode(entry), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await asyncio.shield(future)  # a cancelled caller's entry is still written

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._write_lines, [line for line, _ in batch])
            except OSError as exc:
                for _, future in batch:
                    future.set_exception(OSError(exc.errno, exc.strerror))
            else:
                for _, future in batch:
                    future.set_result(None)

    async def flushed(self) -> None:
        """Wait until every entry written so far is on disk."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

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

    async def replay(self, apply: Apply) -> int:
        """Apply every entry, up to `_REPLAY_WINDOW` at once (each applies once and in any order, and a
        store that fsyncs every write takes a window in one fsync); returns how many were replayed. At the
        first failure, what was not applied goes back into the ledger and the failure is raised."""
        replayed = 0
        for claim in await asyncio.to_thread(self._claim):
            lines = [line for line in (await asyncio.to_thread(claim.read_bytes)).split(b"\n") if line.strip()]
            start = 0  # lines before it are applied, or given back
            try:
                while start < len(lines):
                    chunk = lines[start : start + _REPLAY_WINDOW]
                    outcomes = await asyncio.gather(
                        *(_apply_line(apply, line) for line in chunk), return_exceptions=True
                    )
                    replayed += sum(1 for outcome in outcomes if outcome is True)
                    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
                    if failures:
                        failed = [line for line, outcome in zip(chunk, outcomes, strict=True) if outcome in failures]
                        rest, start = failed + lines[start + len(chunk) :], len(lines)
                        await asyncio.shield(asyncio.to_thread(self._give_back, claim, rest))
                        if not isinstance(failures[0], StoreUnavailable):
                            log.error("budget_ledger_replay_failed", error=repr(failures[0]))
                        raise failures[0]
                    start += len(chunk)
            except asyncio.CancelledError:
                # The window being applied goes back too: an entry applied twice counts once.
                if start < len(lines):
                    await asyncio.shield(asyncio.to_thread(self._give_back, claim, lines[start:]))
                raise
            await asyncio.to_thread(claim.unlink)
        return replayed

    def _give_back(self, claim: Path, lines: list[bytes]) -> None:
        self._write_lines(lines)
        claim.unlink()


async def _apply_line(apply: Apply, line: bytes) -> bool:
    entry = _parse(line)
    if entry is None:
        return False
    await apply(entry)
    return True


def encode(entry: Entry) -> bytes:
    document: dict[str, Any]
    if isinstance(entry, Settle):
        # The shape ledgers had before cancels and records existed, so an old ledger still replays.
        document = {
            "reservation": entry.reservation.to_dict(),
            "cost_micros": entry.cost_micros,
            "tokens": entry.tokens,
        }
    elif isinstance(entry, Cancel):
        document = {"cancel": entry.reservation_id}
    else:
        document = {
            "record": {
                "id": entry.record_id,
                "scopes": [[s.scope, str(s.window)] for s in entry.scopes],
                "cost_micros": entry.cost_micros,
                "tokens": entry.tokens,
                "at": entry.at,
            }
        }
    return orjson.dumps(document)


def _parse(line: bytes) -> Entry | None:
    try:
        data = orjson.loads(line)
        if "cancel" in data:
            return Cancel(str(data["cancel"]))
        if "record" in data:
            record = data["record"]
            scopes = tuple(ScopeLimit(scope, Window.parse(window)) for scope, window in record["scopes"])
            return Record(
                str(record["id"]), scopes, int(record["cost_micros"]), int(record["tokens"]), float(record["at"])
            )
        return Settle(Reservation.from_dict(data["reservation"]), int(data["cost_micros"]), int(data["tokens"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        # Only a torn last line from a crash mid-write can look like this; its write never returned.
        log.error("budget_ledger_unreadable_line", line=line[:200].decode(errors="replace"))
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

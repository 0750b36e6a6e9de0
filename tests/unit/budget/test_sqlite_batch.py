"""Group commit on a real SQLite file: the writes of one loop iteration share one transaction, a refusal keeps
the rest of its batch, a bug keeps none of it, and a locked file moves the batch to the thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from proxy.budget.errors import BudgetExceeded, StoreUnavailable
from proxy.budget.sqlite_batch import GroupCommit


class Files:
    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.inline = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        self.inline.execute("PRAGMA journal_mode=WAL")
        self.inline.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
        self.locking = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        self.other = sqlite3.connect(path, isolation_level=None)  # another process, as far as locks go
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.commits: list[str] = []
        for name, db in (("inline", self.inline), ("thread", self.locking)):
            db.set_trace_callback(lambda sql, name=name: self.commits.append(name) if sql == "COMMIT" else None)
        self.open = True

    def admit(self) -> bool:
        return self.open

    def group(self) -> GroupCommit:
        return GroupCommit(self.inline, self.locking, self.pool, self.admit)

    def rows(self) -> dict[str, int]:
        return dict(self.other.execute("SELECT k, v FROM t").fetchall())


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Files]:
    files = Files(tmp_path / "batch.sqlite3", busy_timeout_s=0.3)
    yield files
    files.pool.shutdown()
    for db in (files.inline, files.locking, files.other):
        db.close()


def insert(key: str, value: int = 1) -> Callable[[sqlite3.Connection], str]:
    def body(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO t VALUES (?, ?)", (key, value))
        return key

    return body


def refuse(db: sqlite3.Connection) -> None:
    raise BudgetExceeded("team:a", "over", retry_after_s=1)


def half_then_bug(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO t VALUES ('half', 1)")
    raise KeyError("a bug")


async def test_writes_of_one_loop_iteration_commit_together(files: Files) -> None:
    group = files.group()
    keys = await asyncio.gather(*(group.submit(insert(f"k{i}")) for i in range(50)))
    assert keys == [f"k{i}" for i in range(50)]
    assert files.commits == ["inline"]
    await group.submit(insert("next"))
    assert files.commits == ["inline", "inline"] and len(files.rows()) == 51


async def test_a_refusal_keeps_the_rest_of_its_batch(files: Files) -> None:
    group = files.group()
    results = await asyncio.gather(group.submit(insert("a")), group.submit(refuse), group.submit(insert("b")),
                                   return_exceptions=True)
    assert results[0] == "a" and isinstance(results[1], BudgetExceeded) and results[2] == "b"
    assert files.rows() == {"a": 1, "b": 1}


async def test_a_bug_in_one_write_keeps_nothing_of_its_batch(files: Files) -> None:
    group = files.group()
    results = await asyncio.gather(group.submit(insert("a")), group.submit(half_then_bug),
                                   group.submit(insert("b")), return_exceptions=True)
    assert isinstance(results[0], StoreUnavailable) and not results[0].maybe_applied
    assert isinstance(results[1], KeyError) and isinstance(results[2], StoreUnavailable)
    assert files.rows() == {}
    assert await group.submit(insert("c")) == "c"


async def test_a_locked_file_moves_the_batch_to_the_thread_until_the_lock_is_free(files: Files) -> None:
    group = files.group()
    files.other.execute("BEGIN IMMEDIATE")
    first = asyncio.gather(*(group.submit(insert(f"a{i}")) for i in range(3)))
    await asyncio.sleep(0.05)  # the first batch is waiting for the lock on the thread
    second = asyncio.gather(*(group.submit(insert(f"b{i}")) for i in range(3)))
    files.other.execute("COMMIT")
    await asyncio.gather(first, second)
    assert files.commits[0] == "thread" and len(files.commits) == 2 and len(files.rows()) == 6


async def test_a_lock_held_past_busy_timeout_fails_the_batch_and_an_open_circuit_the_next_at_once(
    files: Files,
) -> None:
    group = files.group()
    files.other.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    first = group.submit(insert("a"))
    await asyncio.sleep(0.05)
    second = group.submit(insert("b"))
    with pytest.raises(StoreUnavailable):
        await first
    waited = time.monotonic() - started
    files.open = False  # the breaker opened on the first batch's failures
    with pytest.raises(StoreUnavailable, match="circuit"):
        await second
    assert time.monotonic() - started < waited + 0.2  # no second busy_timeout
    files.other.execute("ROLLBACK")
    files.open = True
    assert await group.submit(insert("c")) == "c"


async def test_a_write_whose_caller_left_before_the_batch_ran_is_skipped(files: Files) -> None:
    group = files.group()
    gone = group.submit(insert("gone"))
    kept = group.submit(insert("kept"))
    gone.cancel()
    assert await kept == "kept"
    assert files.rows() == {"kept": 1}

"""Forked workers open a new budget file at the same moment: every one of them must get a store."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

from proxy.budget.sqlite import SqliteStore
from proxy.eventlog.sqlite import SqliteEventLog


def open_both(path: Path, barrier: Barrier, results: multiprocessing.Queue[str]) -> None:
    barrier.wait()
    try:
        SqliteStore(path)
        SqliteEventLog(path)
    except Exception as exc:  # reported to the test, which names it
        results.put(f"{type(exc).__name__}: {exc}")
    else:
        results.put("ok")


def test_processes_racing_to_create_the_file_all_open_it(tmp_path: Path) -> None:
    # Before the retry, about one open in four lost the race to switch the new file to WAL and raised
    # "database is locked" at once: ten rounds of three make a pass by luck vanishingly unlikely.
    context = multiprocessing.get_context("fork")
    outcomes = []
    for round_ in range(10):
        path = tmp_path / f"budget-{round_}.sqlite3"
        barrier, results = context.Barrier(3), context.Queue()
        processes = [context.Process(target=open_both, args=(path, barrier, results)) for _ in range(3)]
        for process in processes:
            process.start()
        outcomes += [results.get(timeout=30) for _ in processes]
        for process in processes:
            process.join(timeout=30)
    assert outcomes == ["ok"] * 30, [o for o in outcomes if o != "ok"]

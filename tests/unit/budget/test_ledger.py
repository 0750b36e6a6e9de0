from __future__ import annotations

from pathlib import Path

from proxy.budget.errors import StoreUnavailable
from proxy.budget.ledger import Ledger
from proxy.budget.store import Reservation, Target


def reservation(rid: str) -> Reservation:
    return Reservation(rid, "req", 100, 10, 1.0, 601.0, (Target("team:a", "month", "2026-11", 9),))


class Recorder:
    def __init__(self, fail_after: int | None = None) -> None:
        self.settled: list[tuple[str, int, int]] = []
        self.fail_after = fail_after

    async def __call__(self, r: Reservation, cost: int, tokens: int) -> None:
        if self.fail_after is not None and len(self.settled) >= self.fail_after:
            raise StoreUnavailable("down")
        self.settled.append((r.id, cost, tokens))


async def test_replay_settles_every_entry_once_and_empties_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for i in range(3):
        ledger.append(reservation(f"r{i}"), 10 * i, i)
    assert ledger.pending()
    settle = Recorder()
    assert await ledger.replay(settle) == 3
    assert settle.settled == [("r0", 0, 0), ("r1", 10, 1), ("r2", 20, 2)]
    assert not ledger.pending()
    assert await ledger.replay(settle) == 0


async def test_replay_stopped_by_an_outage_keeps_what_it_did_not_replay(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for i in range(4):
        ledger.append(reservation(f"r{i}"), i, i)
    assert await ledger.replay(Recorder(fail_after=2)) == 2
    rest = Recorder()
    await ledger.replay(rest)
    assert [rid for rid, _, _ in rest.settled] == ["r2", "r3"]


def tear_last_line(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b'{"reservation": {"id": "tor')


async def test_a_torn_line_from_a_crash_loses_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.append(reservation("r0"), 1, 1)
    tear_last_line(path)
    ledger.append(reservation("r1"), 2, 2)
    settle = Recorder()
    await ledger.replay(settle)
    assert [rid for rid, _, _ in settle.settled] == ["r0", "r1"]


async def test_claim_left_by_a_dead_replayer_is_picked_up(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(reservation("r0"), 1, 1)
    # pid 2**22 + 1 is above Linux's pid_max default, so no process has it.
    (tmp_path / "ledger.jsonl").rename(tmp_path / f"ledger.jsonl.replay-{2**22 + 1}-abc")
    assert ledger.pending()
    settle = Recorder()
    assert await ledger.replay(settle) == 1
    assert not ledger.pending()

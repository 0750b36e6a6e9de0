"""The ledger: durable entries (settles, cancels, records) replayed in order, once, across crashes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from proxy.budget.errors import StoreUnavailable
from proxy.budget.ledger import Cancel, Entry, Ledger, Record, Settle
from proxy.budget.store import Reservation, ScopeLimit, Target
from proxy.budget.windows import DAY, Window


def settle(rid: str, cost: int = 100, tokens: int = 10) -> Settle:
    reservation = Reservation(rid, "req", 100, 10, 1.0, 601.0, (Target("team:a", "month", "2026-11", 9),))
    return Settle(reservation, cost, tokens)


class Replayer:
    def __init__(self, fail_after: int | None = None) -> None:
        self.applied: list[Entry] = []
        self.fail_after = fail_after

    async def __call__(self, entry: Entry) -> None:
        if self.fail_after is not None and len(self.applied) >= self.fail_after:
            raise StoreUnavailable("down")
        self.applied.append(entry)

    def ids(self) -> list[str]:
        return [e.reservation.id for e in self.applied if isinstance(e, Settle)]


async def test_replay_applies_every_entry_once_and_empties_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for i in range(3):
        ledger.append(settle(f"r{i}", 10 * i, i))
    assert ledger.pending()
    replayer = Replayer()
    assert await ledger.replay(replayer) == 3
    assert replayer.applied == [settle("r0", 0, 0), settle("r1", 10, 1), settle("r2", 20, 2)]
    assert not ledger.pending()
    assert await ledger.replay(replayer) == 0


async def test_cancels_and_records_come_back_as_written(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    record = Record("rec-1", (ScopeLimit("team:a", DAY), ScopeLimit("key:k", Window("rolling", 3600))), 7, 3, 1.5e9)
    entries: list[Entry] = [Cancel("r9"), record, settle("r1")]
    for entry in entries:
        await ledger.write(entry)
    replayer = Replayer()
    await ledger.replay(replayer)
    assert replayer.applied == entries


async def test_a_ledger_written_before_cancels_existed_still_replays(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text(
        '{"reservation": {"id": "old", "request_id": "q", "cost_micros": 5, "tokens": 1, "reserved_at": 1.0,'
        ' "expires_at": 601.0, "targets": [{"scope": "team:a", "window": "day", "bucket": "2026-11-02",'
        ' "expires_at": 9}]}, "cost_micros": 4, "tokens": 1}\n'
    )
    replayer = Replayer()
    assert await Ledger(path).replay(replayer) == 1
    assert replayer.ids() == ["old"]


async def test_replay_stopped_by_an_outage_raises_and_keeps_what_it_did_not_replay(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for i in range(4):
        ledger.append(settle(f"r{i}", i, i))
    first = Replayer(fail_after=2)
    with pytest.raises(StoreUnavailable):
        await ledger.replay(first)
    assert first.ids() == ["r0", "r1"]
    rest = Replayer()
    await ledger.replay(rest)
    assert rest.ids() == ["r2", "r3"]


async def test_writes_of_one_loop_iteration_share_one_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    batches: list[int] = []
    write_lines = ledger._write_lines
    monkeypatch.setattr(ledger, "_write_lines", lambda lines: (batches.append(len(lines)), write_lines(lines)))

    await asyncio.gather(*(ledger.write(Cancel(f"r{i}")) for i in range(20)))
    assert batches == [20]
    replayer = Replayer()
    assert await ledger.replay(replayer) == 20


def tear_last_line(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b'{"reservation": {"id": "tor')


async def test_a_torn_line_from_a_crash_loses_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.append(settle("r0"))
    tear_last_line(path)
    ledger.append(settle("r1"))
    replayer = Replayer()
    await ledger.replay(replayer)
    assert replayer.ids() == ["r0", "r1"]


async def test_claim_left_by_a_dead_replayer_is_picked_up(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(settle("r0"))
    # pid 2**22 + 1 is above Linux's pid_max default, so no process has it.
    (tmp_path / "ledger.jsonl").rename(tmp_path / f"ledger.jsonl.replay-{2**22 + 1}-abc")
    assert ledger.pending()
    replayer = Replayer()
    assert await ledger.replay(replayer) == 1
    assert not ledger.pending()

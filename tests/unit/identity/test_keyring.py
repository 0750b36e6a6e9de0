"""Issued keys: refused once expired or revoked, reloaded when the file changes, a bad file keeps the old."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from proxy.errors import Unauthorized
from proxy.identity import Identity, hash_key
from proxy.identity.config import ApiKey
from proxy.identity.keyfile import KeyFileError, write_keys
from proxy.identity.keyring import KeyRing

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def key(key_id: str, secret: str, **extra: object) -> ApiKey:
    return ApiKey.model_validate({"id": key_id, "sha256": hash_key(secret), "app": "app", "team": "team", **extra})


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


def test_expiry_is_checked_at_each_use_without_a_reload(tmp_path: Path) -> None:
    clock = Clock()
    ring = KeyRing([key("k-1", "s1", expires_at=NOW + dt.timedelta(seconds=10))], None, clock=clock)
    found = ring.find("s1")
    assert found is not None and ring.admit(found) == Identity("app", "team", None, "k-1", "api_key")
    clock.now += 10
    with pytest.raises(Unauthorized) as caught:
        ring.admit(found)
    assert caught.value.code == "api_key_expired" and "k-1" in caught.value.message
    assert "s1" not in caught.value.message


async def test_revocation_and_new_keys_arrive_by_reload(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    write_keys(path, (key("k-1", "s1"),))
    ring = KeyRing([key("k-static", "s0")], path)
    assert ring.find("s1") is not None and ring.find("s2") is None and ring.find("s0") is not None
    assert not await ring.poll()  # unchanged
    write_keys(path, (key("k-1", "s1", disabled=True), key("k-2", "s2")))
    assert await ring.poll()
    revoked = ring.find("s1")
    assert revoked is not None
    with pytest.raises(Unauthorized) as caught:
        ring.admit(revoked)
    assert caught.value.code == "api_key_revoked"
    assert ring.find("s2") is not None and ring.find("s0") is not None


async def test_a_broken_file_keeps_the_keys_in_force(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    write_keys(path, (key("k-1", "s1"),))
    outcomes: list[bool] = []
    ring = KeyRing([], path, on_reload=lambda ok, _: outcomes.append(ok))
    path.write_text("keys: [oops\n")
    assert not await ring.poll()
    assert ring.find("s1") is not None and outcomes == [False]
    path.unlink()  # a deleted file holds no keys: everyone it let in is out
    assert await ring.poll()
    assert ring.find("s1") is None and outcomes == [False, True]


def test_at_start_a_broken_file_or_an_id_clash_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys: 7\n")
    with pytest.raises(KeyFileError):
        KeyRing([], path)
    write_keys(path, (key("k-1", "s1"),))
    with pytest.raises(KeyFileError, match="duplicate id k-1"):
        KeyRing([key("k-1", "other")], path)


def test_usage_rows_count_requests_and_hide_hashes(tmp_path: Path) -> None:
    clock = Clock()
    ring = KeyRing([key("k-1", "s1", owner="ada"), key("k-2", "s2", disabled=True)], None, clock=clock)
    found = ring.find("s1")
    assert found is not None
    ring.admit(found)
    clock.now += 5
    ring.admit(found)
    rows = {row["id"]: row for row in ring.rows()}
    assert rows["k-1"]["requests"] == 2 and rows["k-1"]["owner"] == "ada" and rows["k-1"]["status"] == "active"
    assert rows["k-1"]["last_used_at"] == (NOW + dt.timedelta(seconds=5)).isoformat()
    assert rows["k-2"] | {"requests": 0, "last_used_at": None, "status": "revoked"} == rows["k-2"]
    assert all("sha256" not in row for row in rows.values())

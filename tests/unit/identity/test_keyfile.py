"""The keys file: YAML or JSON, validated with the bad key named, written atomically."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
import yaml

from proxy.identity import hash_key
from proxy.identity.config import ApiKey
from proxy.identity.keyfile import KeyFileError, read_keys, signature, write_keys


def key(key_id: str, secret: str, **extra: object) -> ApiKey:
    return ApiKey.model_validate({"id": key_id, "sha256": hash_key(secret), "app": "a", "team": "t", **extra})


@pytest.mark.parametrize("name", ["keys.yaml", "keys.json"])
def test_round_trip_in_either_format(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    keys = (key("k-1", "s1", expires_at="2030-01-01T00:00:00Z", owner="ada", description="ci"),
            key("k-2", "s2", disabled=True, admin=True))
    write_keys(path, keys)
    assert read_keys(path) == keys
    loaded = orjson.loads(path.read_bytes()) if name.endswith(".json") else yaml.safe_load(path.read_text())
    assert loaded["keys"][1] == {"id": "k-2", "sha256": hash_key("s2"), "app": "a", "team": "t", "admin": True,
                                 "disabled": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left behind


def test_a_time_without_zone_is_utc_and_a_missing_file_holds_no_keys(tmp_path: Path) -> None:
    assert key("k", "s", expires_at="2030-01-01T00:00:00").expires_at == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert read_keys(tmp_path / "absent.yaml") == ()
    assert signature(tmp_path / "absent.yaml") is None


@pytest.mark.parametrize(("text", "named"), [
    ("keys:\n  - {id: k-1, sha256: abc, app: a, team: t}\n", "keys.0.sha256"),
    ("keys:\n  - {id: k-1, sha256: " + "a" * 64 + ", app: a, team: t, colour: red}\n", "keys.0.colour: unknown key"),
    ("keys:\n  - {id: k-1, sha256: " + "a" * 64 + ", app: a, team: t}\n  - {id: k-1, sha256: " + "b" * 64
     + ", app: a, team: t}\n", "duplicate id k-1"),
    ("keys:\n  - {id: k-1, sha256: " + "a" * 64 + ", app: a, team: t}\n  - {id: k-2, sha256: " + "a" * 64
     + ", app: a, team: t}\n", "duplicate sha256 of key k-2"),
    ("keys: [\n", "not valid YAML"),
    ("- just a list\n", "mapping"),
    ("keys:\n  - {id: 'has space', sha256: " + "a" * 64 + ", app: a, team: t}\n", "keys.0.id"),
])
def test_invalid_files_name_the_problem(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(KeyFileError) as caught:
        read_keys(path)
    assert named in str(caught.value) and str(path) in str(caught.value)


def test_an_atomic_replace_changes_the_signature(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    write_keys(path, (key("k-1", "s1"),))
    before = signature(path)
    write_keys(path, (key("k-1", "s1"),))  # same bytes, new inode
    assert signature(path) != before

"""`llm-policy-proxy keys create|list|revoke` against a keys file."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
import yaml

from proxy.__main__ import main
from proxy.identity import hash_key
from proxy.identity.keyfile import read_keys
from tests.support.config import config_document


def create(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["keys", "create", "--file", str(path), "--app", "billing", "--team", "payments", *extra]) == 0
    out = capsys.readouterr().out.strip()
    assert "\n" not in out
    return out


def test_create_prints_the_key_once_and_stores_its_hash_only(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.yaml"
    secret = create(path, capsys, "--id", "k-ci", "--owner", "ada", "--description", "CI", "--expires", "90d")
    assert secret.startswith("llmpp-") and len(secret) > 40
    assert secret not in path.read_text()
    (stored,) = read_keys(path)
    assert stored.sha256 == hash_key(secret) and stored.id == "k-ci" and stored.owner == "ada"
    assert stored.expires_at is not None and stored.created_at is not None
    assert dt.timedelta(days=89) < stored.expires_at - stored.created_at <= dt.timedelta(days=90)


def test_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    create(path, capsys, "--id", "k-1")
    create(path, capsys, "--id", "k-2", "--expires", "2001-01-01T00:00:00")
    assert main(["keys", "revoke", "--file", str(path), "k-1"]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--file", str(path), "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["k-1"]["status"] == "revoked" and rows["k-2"]["status"] == "expired"
    assert main(["keys", "list", "--file", str(path)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["id", "app", "team"] and "revoked" in table
    assert main(["keys", "revoke", "--file", str(path), "k-404"]) == 2
    assert "no key k-404" in capsys.readouterr().err


def test_ids_are_unique_across_config_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = config_document("http://127.0.0.1:9/v1", tmp_path)
    document["auth"]["keys_file"] = "keys.yaml"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    assert main(["keys", "create", "--config", str(config), "--app", "a", "--team", "t", "--id", "k-payments"]) == 2
    assert "already used" in capsys.readouterr().err
    assert main(["keys", "create", "--config", str(config), "--app", "a", "--team", "t"]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--config", str(config), "--json"]) == 0
    origins = {row["id"]: row["origin"] for row in json.loads(capsys.readouterr().out)}
    assert origins["k-payments"] == "config" and list(origins.values()).count("file") == 1
    del document["auth"]["keys_file"]
    config.write_text(yaml.safe_dump(document))
    assert main(["keys", "list", "--config", str(config)]) == 2
    assert "keys_file is not set" in capsys.readouterr().err


def test_concurrent_creates_lose_no_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    results: list[int] = []

    def one(n: int) -> None:
        results.append(main(["keys", "create", "--file", str(path), "--app", "a", "--team", "t", "--id", f"k-{n}"]))
    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [0] * 8
    assert sorted(k.id for k in read_keys(path)) == sorted(f"k-{n}" for n in range(8))

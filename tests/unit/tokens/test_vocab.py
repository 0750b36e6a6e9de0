from __future__ import annotations

import gzip
import hashlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

from proxy.tokens import Vocab, VocabError, VocabIntegrityError, export_vocab
from proxy.tokens.__main__ import main
from proxy.tokens.encodings import SPECS


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("vocab")
    export_vocab(dest)
    return dest


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """tiktoken downloads through requests into TIKTOKEN_CACHE_DIR; make both a dead end."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("vocab loading tried to use the network")

    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("requests.get", refuse)
    monkeypatch.setattr("requests.Session.request", refuse)


def test_export_writes_verified_plain_files(exported: Path) -> None:
    assert sorted(p.name for p in exported.iterdir()) == ["cl100k_base.tiktoken", "o200k_base.tiktoken"]


@pytest.mark.usefixtures("no_network")
def test_packaged_vocab_loads_without_network() -> None:
    encoding = Vocab().encoding("cl100k_base")

    assert encoding.encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]


@pytest.mark.usefixtures("no_network")
def test_good_copy_in_vocab_dir_loads_without_network(exported: Path) -> None:
    encoding = Vocab(exported).encoding("cl100k_base")

    assert encoding.n_vocab == 100277


def test_tampered_copy_is_rejected_naming_file_and_both_hashes(exported: Path, tmp_path: Path) -> None:
    data = bytearray((exported / "cl100k_base.tiktoken").read_bytes())
    data[100] ^= 1
    tampered = tmp_path / "cl100k_base.tiktoken"
    tampered.write_bytes(bytes(data))

    with pytest.raises(VocabIntegrityError) as caught:
        Vocab(tmp_path).encoding("cl100k_base")

    message = str(caught.value)
    assert str(tampered) in message
    assert f"sha256 is {hashlib.sha256(data).hexdigest()}" in message
    assert f"expected {SPECS['cl100k_base'].sha256}" in message


def test_tampered_copy_is_not_skipped_in_favour_of_packaged_copy(tmp_path: Path) -> None:
    (tmp_path / "o200k_base.tiktoken").write_bytes(b"aGVsbG8= 0\n")

    with pytest.raises(VocabIntegrityError, match="o200k_base"):
        Vocab(tmp_path).encoding("o200k_base")


def test_verify_rejects_a_tampered_copy_and_builds_no_tables(exported: Path, tmp_path: Path) -> None:
    (tmp_path / "o200k_base.tiktoken").write_bytes(b"aGVsbG8= 0\n")
    good = Vocab(exported)

    with pytest.raises(VocabIntegrityError, match="o200k_base"):
        Vocab(tmp_path).verify(["o200k_base"])
    good.verify(["o200k_base", "cl100k_base"])
    assert not good.is_loaded("o200k_base") and not good.is_loaded("cl100k_base")


def test_missing_file_in_vocab_dir_falls_back_to_packaged_copy(tmp_path: Path) -> None:
    assert Vocab(tmp_path).encoding("cl100k_base").name == "cl100k_base"


def test_missing_vocab_is_an_error_naming_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("proxy.tokens.vocab._packaged_path", lambda spec: tmp_path / "gone.tiktoken.gz")

    with pytest.raises(VocabError, match=r"not found \(searched: .*cl100k_base\.tiktoken, .*gone\.tiktoken\.gz\)"):
        Vocab(tmp_path).encoding("cl100k_base")


def test_corrupt_packaged_gzip_is_an_integrity_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "cl100k_base.tiktoken.gz"
    broken.write_bytes(gzip.compress(b"x" * 1000)[:-20] + b"\0" * 20)
    monkeypatch.setattr("proxy.tokens.vocab._packaged_path", lambda spec: broken)

    with pytest.raises(VocabIntegrityError, match="not valid gzip"):
        Vocab().encoding("cl100k_base")


def test_loading_does_not_import_bpe_openai_which_parses_all_its_vocabs_on_import() -> None:
    code = "import sys; from proxy.tokens import Vocab; Vocab().load_all(); print('bpe_openai' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"


def test_each_encoding_is_built_once_per_vocab() -> None:
    vocab = Vocab()

    assert vocab.encoding("cl100k_base") is vocab.encoding("cl100k_base")


def test_unknown_encoding_names_the_known_ones() -> None:
    with pytest.raises(VocabError, match=r"p50k_base.*cl100k_base, o200k_base"):
        Vocab().encoding("p50k_base")


def test_cli_export_vocab_prints_written_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-vocab", str(tmp_path / "out")]) == 0

    assert capsys.readouterr().out.split() == [
        str(tmp_path / "out" / "cl100k_base.tiktoken"),
        str(tmp_path / "out" / "o200k_base.tiktoken"),
    ]

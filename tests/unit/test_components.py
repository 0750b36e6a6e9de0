"""Building the runtime objects from config: here, which tokenizer tables a worker builds at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.components import load_vocab
from proxy.tokens import VocabIntegrityError, export_vocab
from tests.support.config import make_config

ENCODINGS = ("o200k_base", "cl100k_base")  # the test catalogue has gpt-4o models and an embeddings model


def vocab_dir(tmp_path: Path) -> Path:
    # A folder of its own: the vocab is cached per folder per process, and other tests built the default's.
    folder = tmp_path / "vocab"
    export_vocab(folder)
    return folder


def test_exact_estimates_build_the_tables_of_every_configured_encoding_at_start(tmp_path: Path) -> None:
    config = make_config("http://127.0.0.1:9/v1", tmp_path, tokens={"vocab_dir": str(vocab_dir(tmp_path))})

    vocab = load_vocab(config)

    assert all(vocab.is_loaded(name) for name in ENCODINGS)


def test_bound_estimates_verify_the_files_at_start_but_build_no_tables(tmp_path: Path) -> None:
    folder = vocab_dir(tmp_path)
    config = make_config("http://127.0.0.1:9/v1", tmp_path,
                         tokens={"vocab_dir": str(folder), "prompt_estimate": "bound"})

    vocab = load_vocab(config)

    assert not any(vocab.is_loaded(name) for name in ENCODINGS)


def test_bound_estimates_with_a_tampered_vocab_file_stop_the_start(tmp_path: Path) -> None:
    folder = vocab_dir(tmp_path)
    (folder / "o200k_base.tiktoken").write_bytes(b"aGVsbG8= 0\n")
    config = make_config("http://127.0.0.1:9/v1", tmp_path,
                         tokens={"vocab_dir": str(folder), "prompt_estimate": "bound"})

    with pytest.raises(VocabIntegrityError, match="o200k_base"):
        load_vocab(config)

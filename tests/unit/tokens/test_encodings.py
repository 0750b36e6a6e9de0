from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tiktoken_ext import openai_public  # type: ignore[import-untyped]

from proxy.tokens import Vocab
from proxy.tokens.encodings import SPECS

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "tokens" / "cookbook_encodings.json"
CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_constants_match_tiktokens_own_constructor(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Call tiktoken's constructor with its loader stubbed out, so we read its hash, pattern and
    # special tokens without it ever reaching for the network.
    requested: dict[str, Any] = {}

    def fake_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        requested["hash"] = expected_hash
        return {}

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    official = openai_public.ENCODING_CONSTRUCTORS[name]()

    spec = SPECS[name]
    assert requested["hash"] == spec.sha256
    assert official["pat_str"] == spec.pat_str
    assert official["special_tokens"] == dict(spec.special_tokens)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["text"])
def test_local_encoding_reproduces_cookbook_token_ids(vocab: Vocab, case: dict[str, Any]) -> None:
    assert vocab.encoding(case["encoding"]).encode_ordinary(case["text"]) == case["tokens"]

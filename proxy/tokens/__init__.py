"""Offline token counting: verified tiktoken vocabularies and prompt estimates per endpoint."""

from __future__ import annotations

from proxy.tokens.estimate import TokenEstimator, requested_choices, requested_max_output
from proxy.tokens.images import GPT_4O_TILES, TileCosts, image_tokens
from proxy.tokens.vocab import Vocab, VocabError, VocabIntegrityError, export_vocab

__all__ = [
    "GPT_4O_TILES",
    "TileCosts",
    "TokenEstimator",
    "Vocab",
    "VocabError",
    "VocabIntegrityError",
    "export_vocab",
    "image_tokens",
    "requested_choices",
    "requested_max_output",
]

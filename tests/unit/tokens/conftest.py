"""One Vocab per test session: loading o200k_base takes about a second."""

from __future__ import annotations

import pytest

from proxy.tokens import TokenEstimator, Vocab


@pytest.fixture(scope="session")
def vocab() -> Vocab:
    loaded = Vocab()
    loaded.load_all()
    return loaded


@pytest.fixture(scope="session")
def estimator(vocab: Vocab) -> TokenEstimator:
    return TokenEstimator(vocab)

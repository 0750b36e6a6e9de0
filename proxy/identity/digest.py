"""SHA-256 digests of presented secrets: keys are stored and looked up by digest, never kept in clear."""

from __future__ import annotations

import hashlib
import hmac


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_match(presented_hash: str, stored_hash: str) -> bool:
    return hmac.compare_digest(presented_hash, stored_hash)


def token_digest(token: str) -> bytes:
    """The verified-token cache's key: a token is a bearer secret, so not even the cache holds it."""
    return hashlib.sha256(token.encode()).digest()

"""A bearer JWT to an Identity: verified once, then remembered by its SHA-256 until it expires.

A remembered token is still refused once its exp (plus leeway) passes or its issuer stops publishing the
key that signed it, so the cache never outlives a rotation that removed a key.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .caller import Claims, Identity
from .claims import UnmappedClaims, map_identity, policy_claims
from .digest import token_digest
from .tokens import Issuer, TokenVerifier, Verified, refused


@dataclass(frozen=True, slots=True)
class _Remembered:
    identity: Identity
    issuer: Issuer
    kid: str | None
    valid_until: float


class VerifiedTokens:
    """Bounded, least recently used first out; only successes are kept (failures cost an attacker the same)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, _Remembered] = OrderedDict()

    def get(self, digest: bytes, now: float) -> _Remembered | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry.valid_until or not entry.issuer.keys.has(entry.kid):
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry

    def put(self, digest: bytes, entry: _Remembered) -> None:
        if self._size <= 0:
            return
        self._entries[digest] = entry
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class JwtIdentities:
    def __init__(self, verifier: TokenVerifier, cache_size: int, clock: Callable[[], float] = time.time) -> None:
        self.verifier = verifier
        self.cache = VerifiedTokens(cache_size)
        self._clock = clock

    async def identify(self, token: str) -> Identity:
        """The token's identity, or Unauthorized with the reason as its code."""
        digest = token_digest(token)
        remembered = self.cache.get(digest, self._clock())
        if remembered is not None:
            return remembered.identity
        verified = await self.verifier.verify(token)
        identity = to_identity(verified)
        self.cache.put(digest, _Remembered(identity, verified.issuer, verified.kid, verified.valid_until))
        return identity


def to_identity(verified: Verified) -> Identity:
    config = verified.issuer.config
    try:
        mapped = map_identity(config.identity, config.admin, verified.claims)
    except UnmappedClaims as exc:
        raise refused("token_claims_unmapped", str(exc)) from None
    return Identity(mapped.app, mapped.team, mapped.user, None, "jwt", mapped.admin,
                    Claims.of(policy_claims(verified.claims, config.policy_claims)))

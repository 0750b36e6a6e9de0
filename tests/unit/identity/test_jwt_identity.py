"""The verified-token cache: hits skip verification, bounded, honours exp, forgets withdrawn keys."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from proxy.identity import Identity
from proxy.identity.jwt_identity import JwtIdentities, VerifiedTokens, _Remembered
from proxy.identity.tokens import TokenVerifier, Verified
from tests.support.jwks_server import JwksServer, claims_for, mint
from tests.unit.identity.conftest import auth_config, authenticator, issuer_config

ML = {"azp": "trainer", "groups": ["ml-engineers"]}


class CountingVerifier(TokenVerifier):
    def __init__(self, inner: TokenVerifier) -> None:
        super().__init__(list(inner.issuers.values()))
        self.calls = 0

    async def verify(self, token: str) -> Verified:
        self.calls += 1
        return await super().verify(token)


async def identities(issuer: JwksServer, stack: AsyncExitStack, tmp_path: Path, **jwt: Any) -> JwtIdentities:
    auth = await authenticator(auth_config(tmp_path, [issuer_config(issuer.issuer)], jwt=jwt), stack)
    assert auth.tokens is not None
    return auth.tokens


async def test_a_remembered_token_is_not_verified_again(issuer: JwksServer, stack: AsyncExitStack,
                                                        tmp_path: Path) -> None:
    tokens = await identities(issuer, stack, tmp_path)
    counting = tokens.verifier = CountingVerifier(tokens.verifier)
    token = mint(issuer.keys[0], claims_for(issuer.issuer, **ML))
    first = await tokens.identify(token)
    for _ in range(5):
        assert await tokens.identify(token) == first
    assert counting.calls == 1


async def test_cache_size_zero_verifies_every_time(issuer: JwksServer, stack: AsyncExitStack, tmp_path: Path) -> None:
    tokens = await identities(issuer, stack, tmp_path, cache_size=0)
    counting = tokens.verifier = CountingVerifier(tokens.verifier)
    token = mint(issuer.keys[0], claims_for(issuer.issuer, **ML))
    for _ in range(3):
        await tokens.identify(token)
    assert counting.calls == 3 and len(tokens.cache) == 0


async def test_entries_expire_are_bounded_and_need_their_key(issuer: JwksServer, stack: AsyncExitStack,
                                                             tmp_path: Path) -> None:
    tokens = await identities(issuer, stack, tmp_path)
    issuer_runtime = next(iter(tokens.verifier.issuers.values()))
    assert await issuer_runtime.keys.refresh()
    identity = Identity("a", "t", None, None, "jwt")
    cache = VerifiedTokens(2)
    cache.put(b"one", _Remembered(identity, issuer_runtime, "rsa-1", valid_until=100.0))
    assert cache.get(b"one", 99.9) is not None
    assert cache.get(b"one", 100.0) is None and len(cache) == 0  # expired entries are dropped
    for name in (b"a", b"b", b"c"):
        cache.put(name, _Remembered(identity, issuer_runtime, "rsa-1", valid_until=1e12))
    assert len(cache) == 2 and cache.get(b"a", 0) is None  # least recently used out
    cache.put(b"gone", _Remembered(identity, issuer_runtime, "withdrawn-kid", valid_until=1e12))
    assert cache.get(b"gone", 0) is None

"""Issuer keys: rotation, refetch on an unknown kid (rate-limited, shared), an issuer that is down or hangs."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.errors import Unauthorized
from proxy.identity.authenticator import Authenticator
from proxy.identity.jwks import JwksError, parse_jwks
from tests.support.jwks_server import JwksServer, claims_for, mint, signing_key
from tests.unit.identity.conftest import auth_config, authenticator, issuer_config, start_issuer

ML = {"azp": "trainer", "groups": ["ml-engineers"]}


async def jwt_auth(issuer: JwksServer, stack: AsyncExitStack, tmp_path: Path, jwt: dict[str, Any] | None = None,
                   **overrides: Any) -> Authenticator:
    config = auth_config(tmp_path, [issuer_config(issuer.issuer, **overrides)], jwt=jwt or {})
    return await authenticator(config, stack)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def until(condition: Any) -> None:
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_rotated_key_is_fetched_on_first_sight(issuer: JwksServer, stack: AsyncExitStack,
                                                       tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    assert (await auth.authenticate(bearer(mint(issuer.keys[0], claims_for(issuer.issuer, **ML))))).app == "trainer"
    fetched = issuer.fetches
    issuer.rotate(signing_key("rsa-2"))
    assert (await auth.authenticate(bearer(mint(issuer.keys[0], claims_for(issuer.issuer, **ML))))).app == "trainer"
    assert issuer.fetches == fetched + 1


async def test_unknown_kids_refetch_at_most_once_per_interval(issuer: JwksServer, stack: AsyncExitStack,
                                                              tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path, jwt={"refetch_min_interval_s": 3600, "refresh_interval_s": 3600})
    await auth.authenticate(bearer(mint(issuer.keys[0], claims_for(issuer.issuer, **ML))))  # the start-up fetch
    fetched = issuer.fetches
    for n in range(5):
        forged = mint(signing_key(f"forged-{n}"), claims_for(issuer.issuer, **ML))
        with pytest.raises(Unauthorized) as caught:
            await auth.authenticate(bearer(forged))
        assert caught.value.code == "token_key_unknown"
    assert issuer.fetches == fetched  # within the interval, a forged kid costs no fetch at all


async def test_concurrent_unknown_kids_share_one_fetch(issuer: JwksServer, stack: AsyncExitStack,
                                                       tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    await auth.authenticate(bearer(mint(issuer.keys[0], claims_for(issuer.issuer, **ML))))
    fetched = issuer.fetches
    issuer.hang = asyncio.Event()
    issuer.rotate(signing_key("rsa-3"))
    token = mint(issuer.keys[0], claims_for(issuer.issuer, **ML))
    waiting = [asyncio.ensure_future(auth.authenticate(bearer(token))) for _ in range(20)]
    await until(lambda: issuer.fetches > fetched)
    issuer.hang.set()
    identities = await asyncio.gather(*waiting)
    assert {i.app for i in identities} == {"trainer"}
    assert issuer.fetches == fetched + 1


async def test_a_cached_kid_never_waits_for_an_issuer_that_is_down_or_hangs(issuer: JwksServer,
                                                                           stack: AsyncExitStack,
                                                                           tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path, jwt={"fetch_timeout_s": 30, "refresh_interval_s": 0.05})
    await auth.authenticate(bearer(mint(issuer.keys[0], claims_for(issuer.issuer, **ML))))
    issuer.failing = True
    fetched = issuer.fetches
    await until(lambda: issuer.fetches > fetched + 1)  # background refreshes fail...
    fresh = mint(issuer.keys[0], claims_for(issuer.issuer, **ML, jti="1"))
    assert (await auth.authenticate(bearer(fresh))).app == "trainer"  # ...and the held keys stay in force
    issuer.failing, issuer.hang = False, asyncio.Event()
    fetched = issuer.fetches
    await until(lambda: issuer.fetches > fetched)  # a refresh is now stuck on the issuer
    # Not cached as a verified token (new jti), so this one is verified with the cached key, without waiting.
    again = mint(issuer.keys[0], claims_for(issuer.issuer, **ML, jti="2"))
    assert (await asyncio.wait_for(auth.authenticate(bearer(again)), 2.0)).app == "trainer"


async def test_an_unknown_kid_gives_up_after_the_fetch_timeout(issuer: JwksServer, stack: AsyncExitStack,
                                                               tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path, jwt={"fetch_timeout_s": 0.2})
    await auth.authenticate(bearer(mint(issuer.keys[0], claims_for(issuer.issuer, **ML))))
    issuer.hang = asyncio.Event()
    started = time.monotonic()
    with pytest.raises(Unauthorized) as caught:
        await auth.authenticate(bearer(mint(signing_key("new"), claims_for(issuer.issuer, **ML))))
    assert caught.value.code == "token_key_unknown"
    assert time.monotonic() - started < 2.0


async def test_a_key_the_issuer_withdraws_stops_verifying_cached_tokens(issuer: JwksServer, stack: AsyncExitStack,
                                                                        tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    token = mint(issuer.keys[0], claims_for(issuer.issuer, **ML))
    await auth.authenticate(bearer(token))
    issuer.rotate(signing_key("rsa-4"))
    await auth.reload()
    with pytest.raises(Unauthorized) as caught:
        await auth.authenticate(bearer(token))
    assert caught.value.code == "token_key_unknown"


async def test_discovery_naming_another_issuer_yields_no_keys(stack: AsyncExitStack, tmp_path: Path) -> None:
    server = await start_issuer(JwksServer([signing_key("rsa-1")], discovery_issuer="https://evil.example"), stack)
    auth = await jwt_auth(server, stack, tmp_path)
    with pytest.raises(Unauthorized) as caught:
        await auth.authenticate(bearer(mint(server.keys[0], claims_for(server.issuer, **ML))))
    assert caught.value.code == "token_key_unknown"
    assert server.fetches == 0 and server.discoveries >= 1


async def test_a_jwks_uri_skips_discovery(issuer: JwksServer, stack: AsyncExitStack, tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path, jwks_uri=f"{issuer.issuer}/jwks")
    assert (await auth.authenticate(bearer(mint(issuer.keys[0], claims_for(issuer.issuer, **ML))))).team == "ml"
    assert issuer.discoveries == 0


async def test_a_jwks_file_serves_air_gapped_clusters_and_is_reread_for_new_kids(stack: AsyncExitStack,
                                                                                 tmp_path: Path) -> None:
    issuer_name = "https://kubernetes.default.svc.cluster.local"
    jwks = tmp_path / "jwks.json"
    first, second = signing_key("file-1"), signing_key("file-2", "ES256")
    jwks.write_bytes(orjson.dumps({"keys": [first.public_jwk]}))
    config = auth_config(tmp_path, [issuer_config(issuer_name, jwks_file="jwks.json")])
    auth = await authenticator(config, stack)
    assert (await auth.authenticate(bearer(mint(first, claims_for(issuer_name, **ML))))).app == "trainer"
    jwks.write_bytes(orjson.dumps({"keys": [first.public_jwk, second.public_jwk]}))
    assert (await auth.authenticate(bearer(mint(second, claims_for(issuer_name, **ML))))).app == "trainer"


def test_parse_jwks_keeps_public_signature_keys_only() -> None:
    public = signing_key("pub").public_jwk
    document = {"keys": [public, {"kty": "oct", "k": "AA", "kid": "sym"}, {**public, "kid": "enc", "use": "enc"},
                         {**public, "kid": "priv", "d": "AA"}, "junk", {**public, "kid": 7}]}
    assert list(parse_jwks(document)) == ["pub"]
    for bad in ({}, {"keys": "x"}, [], {"keys": [{"kty": "oct", "k": "AA"}]}):
        with pytest.raises(JwksError):
            parse_jwks(bad)


async def test_the_refresh_loop_stops_when_cancelled_as_its_fetch_completes(tmp_path: Path) -> None:
    from proxy.identity.jwks import FileSource, IssuerKeys
    (tmp_path / "jwks.json").write_bytes(orjson.dumps({"keys": [signing_key("f").public_jwk]}))
    keys = IssuerKeys(FileSource(tmp_path / "jwks.json"), refetch_min_interval_s=0, refresh_interval_s=3600,
                      fetch_timeout_s=5)
    loop = asyncio.ensure_future(keys.run())  # it starts after this test's refresh, and joins its fetch
    assert await keys.refresh()  # done: this test resumes first, the loop's wake-up is queued behind it
    loop.cancel()  # (on 3.11, asyncio.wait_for would swallow this and sleep for the hour)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(loop, 2)

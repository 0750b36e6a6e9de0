"""Headers to identity on every surface: where the credential is read, sidecar fallback, egress, never a 500."""

from __future__ import annotations

import asyncio
import base64
import json
from contextlib import AsyncExitStack
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from proxy.errors import Unauthorized
from proxy.identity import Identity, hash_key
from proxy.identity.authenticator import presented_credential
from tests.support.config import KEYS
from tests.support.jwks_server import AUDIENCE, JwksServer, claims_for, forge, mint, signing_key
from tests.unit.identity.conftest import auth_config, authenticator, issuer_config

ML = {"azp": "trainer", "groups": ["ml-engineers"], "email": "ada@example.com"}


@pytest.mark.parametrize(("headers", "credential"), [
    ({"Authorization": "Bearer  abc "}, "abc"),
    ({"Authorization": "bearer abc"}, "abc"),
    ({"Authorization": "Basic abc"}, "Basic abc"),  # another scheme: the whole value, which matches no key
    ({"Authorization": "Bearer"}, "Bearer"),
    ({"x-api-key": "abc"}, "abc"),
    ({"api-key": "abc"}, "abc"),
    ({"Authorization": "Bearer a", "x-api-key": "b"}, "a"),
    ({}, None),
])
def test_where_the_credential_is_read(headers: dict[str, str], credential: str | None) -> None:
    assert presented_credential(headers) == credential


async def test_keys_missing_and_wrong_credentials(stack: AsyncExitStack, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    auth = await authenticator(auth_config(tmp_path), stack, registry)
    identity = await auth.authenticate({"x-api-key": KEYS["payments"]}, "anthropic")
    assert (identity.app, identity.key_id, identity.method) == ("billing-api", "k-payments", "key")
    with pytest.raises(Unauthorized) as missing:
        await auth.authenticate({}, "anthropic")
    assert missing.value.code == "missing_api_key" and "x-api-key" in missing.value.message
    with pytest.raises(Unauthorized) as missing_openai:
        await auth.authenticate({})
    assert "Authorization: Bearer" in missing_openai.value.message
    with pytest.raises(Unauthorized) as wrong:
        await auth.authenticate({"Authorization": "Bearer sk-not-ours"})
    assert wrong.value.code == "invalid_api_key" and "sk-not-ours" not in wrong.value.message
    text = generate_latest(registry).decode()
    assert 'llm_proxy_auth_requests_total{key_id="",method="key"} 1.0' in text
    assert 'llm_proxy_auth_failures_total{reason="missing_api_key"} 2.0' in text


async def test_per_key_metrics_only_when_configured(stack: AsyncExitStack, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    auth = await authenticator(auth_config(tmp_path, metrics_per_key=True), stack, registry)
    await auth.authenticate({"Authorization": f"Bearer {KEYS['research']}"})
    text = generate_latest(registry).decode()
    assert 'llm_proxy_auth_requests_total{key_id="k-research",method="key"} 1.0' in text
    assert 'llm_proxy_auth_key_last_used_timestamp_seconds{key_id="k-research"}' in text


async def test_sidecar_takes_anything_but_an_issued_key_or_a_bad_token(issuer: JwksServer, stack: AsyncExitStack,
                                                                       tmp_path: Path) -> None:
    expired = {"id": "k-old", "sha256": hash_key("old-key"), "app": "a", "team": "t",
               "expires_at": "2001-01-01T00:00:00Z"}
    config = auth_config(tmp_path, [issuer_config(issuer.issuer)], mode="sidecar", keys=[expired],
                         sidecar={"app": "support-bot", "team": "support"})
    auth = await authenticator(config, stack)
    sidecar = Identity("support-bot", "support", None, None, "sidecar")
    assert await auth.authenticate({"Authorization": "Bearer sk-whatever"}) == sidecar
    assert await auth.authenticate({}) == sidecar
    with pytest.raises(Unauthorized) as caught:  # an issued key that expired is refused, not downgraded
        await auth.authenticate({"Authorization": "Bearer old-key"})
    assert caught.value.code == "api_key_expired"
    with pytest.raises(Unauthorized):  # so is a token that does not verify
        await auth.authenticate({"Authorization": f"Bearer {mint(issuer.keys[0], claims_for('https://x', **ML))}"})
    token = mint(issuer.keys[0], claims_for(issuer.issuer, **ML))
    assert (await auth.authenticate({"Authorization": f"Bearer {token}"})).method == "jwt"


async def test_egress_credentials_are_a_key_a_token_or_nothing(issuer: JwksServer, stack: AsyncExitStack,
                                                               tmp_path: Path) -> None:
    auth = await authenticator(auth_config(tmp_path, [issuer_config(issuer.issuer)]), stack)
    assert (await auth.identify_credential(KEYS["payments"])) is not None
    token = mint(issuer.keys[0], claims_for(issuer.issuer, **ML))
    identity = await auth.identify_credential(token)
    assert identity is not None and (identity.app, identity.user) == ("trainer", "ada@example.com")
    assert await auth.identify_credential("nope") is None
    assert await auth.identify_credential(mint(issuer.keys[0], claims_for(issuer.issuer, **ML) | {"exp": 1})) is None


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


ISSUER = "https://issuer.test"
KEY = signing_key("fuzz-1", "ES256")
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)
claim_names = st.sampled_from(["alg", "kid", "typ", "crit", "iss", "aud", "exp", "nbf", "iat", "azp", "groups",
                               "email", "x"])
segments = st.one_of(st.text(max_size=40), st.binary(max_size=60).map(_b64),
                     st.dictionaries(claim_names, json_values, max_size=5).map(lambda d: _b64(json.dumps(d).encode())))
signed_claims = st.fixed_dictionaries(
    {}, optional={"iss": st.one_of(st.just(ISSUER), json_values), "aud": st.one_of(st.just(AUDIENCE), json_values),
                  "exp": st.one_of(st.just(2**40), json_values), "nbf": json_values, "iat": json_values,
                  "azp": json_values, "groups": st.one_of(st.just(["ml-engineers"]), json_values),
                  "email": json_values, "kubernetes.io": json_values})
bearer_values = st.one_of(
    st.text(max_size=200),
    st.tuples(segments, segments, segments).map(".".join),
    # Correctly signed by the issuer's key, with claims of every shape: the checks after the signature.
    signed_claims.map(lambda claims: mint(KEY, claims)),
    st.builds(lambda header, claims: forge(header, claims, b"k"),
              st.dictionaries(claim_names, json_values, max_size=4), signed_claims),
)


def test_no_bearer_value_raises_anything_but_unauthorized(tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_bytes(orjson.dumps({"keys": [KEY.public_jwk]}))
    config = auth_config(tmp_path, [issuer_config(ISSUER, jwks_file="jwks.json")])
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        auth = loop.run_until_complete(authenticator(config, stack))

        @settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
        @given(bearer_values)
        def check(value: str) -> None:
            try:
                identity = loop.run_until_complete(auth.authenticate({"Authorization": f"Bearer {value}"}))
            except Unauthorized as exc:
                assert exc.status == 401 and exc.code
                assert len(value) < 8 or value.strip() not in exc.message
            else:
                assert identity.method == "jwt" and identity.team == "ml"
        check()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()

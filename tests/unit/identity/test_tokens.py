"""Every way a bearer JWT is accepted or refused, attack forms included, against an issuer on loopback."""

from __future__ import annotations

import base64
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.errors import Unauthorized
from proxy.identity import Identity
from proxy.identity.authenticator import Authenticator
from tests.support.jwks_server import AUDIENCE, JwksServer, claims_for, forge, mint, signing_key
from tests.unit.identity.conftest import auth_config, authenticator, issuer_config, start_issuer

ML = {"azp": "trainer", "groups": ["staff", "ml-engineers"], "email": "ada@example.com"}


async def jwt_auth(issuer: JwksServer, stack: AsyncExitStack, tmp_path: Path, **overrides: Any) -> Authenticator:
    return await authenticator(auth_config(tmp_path, [issuer_config(issuer.issuer, **overrides)]), stack)


async def refused(auth: Authenticator, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        await auth.authenticate({"Authorization": f"Bearer {token}"})
    error = caught.value
    assert error.status == 401
    assert token not in error.message and token[-20:] not in error.message  # never echoed
    return error


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_each_allowed_algorithm_yields_the_mapped_identity(alg: str, issuer: JwksServer, stack: AsyncExitStack,
                                                                 tmp_path: Path) -> None:
    key = signing_key(f"{alg}-key", alg)
    issuer.rotate(key)
    auth = await jwt_auth(issuer, stack, tmp_path)
    claims = claims_for(issuer.issuer, **ML, **{"kubernetes.io": {"namespace": "ml", "pod": {"name": "x"}}})
    identity = await auth.authenticate({"Authorization": f"Bearer {mint(key, claims)}"})
    assert (identity.app, identity.team, identity.user, identity.method) == ("trainer", "ml", "ada@example.com", "jwt")
    assert identity.key_id is None and identity.admin is False
    # Only the allow-listed claims, nested as issued.
    assert identity.claims.to_json() == {"groups": ["staff", "ml-engineers"], "kubernetes.io": {"namespace": "ml"}}


async def test_kubernetes_service_account_claims_map_through_json_pointers(issuer: JwksServer, stack: AsyncExitStack,
                                                                           tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path, identity={
        "app": {"claim": "/kubernetes.io/serviceaccount/name"},
        "team": {"claim": "/kubernetes.io/namespace", "map": {"ml-prod": "ml"}, "default": "unassigned"}})
    claims = claims_for(issuer.issuer, sub="system:serviceaccount:ml-prod:trainer",
                        **{"kubernetes.io": {"namespace": "ml-prod", "serviceaccount": {"name": "trainer"}}})
    identity = await auth.authenticate({"Authorization": f"Bearer {mint(issuer.keys[0], claims)}"})
    assert (identity.app, identity.team, identity.user) == ("trainer", "ml", None)


async def test_admin_comes_from_a_claim(issuer: JwksServer, stack: AsyncExitStack, tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    claims = claims_for(issuer.issuer, azp="console", groups=["payments-devs", "platform-admins"])
    identity = await auth.authenticate({"Authorization": f"Bearer {mint(issuer.keys[0], claims)}"})
    assert identity.admin and identity.team == "payments"


async def test_a_token_without_kid_is_accepted_only_from_a_single_key_issuer(issuer: JwksServer,
                                                                             stack: AsyncExitStack,
                                                                             tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    token = mint(issuer.keys[0], claims_for(issuer.issuer, **ML), kid=None)
    assert (await auth.authenticate({"Authorization": f"Bearer {token}"})).app == "trainer"
    issuer.rotate(signing_key("rsa-2"), keep_old=True)
    await auth.reload()
    assert (await refused(auth, mint(issuer.keys[0], claims_for(issuer.issuer, **ML, jti="x"),
                                     kid=None))).code == "token_key_unknown"


async def test_clock_skew_within_the_leeway_is_accepted(issuer: JwksServer, stack: AsyncExitStack,
                                                        tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path, leeway_s=60)
    now = int(time.time())
    late = claims_for(issuer.issuer, **ML) | {"exp": now - 20}
    early = claims_for(issuer.issuer, **ML) | {"nbf": now + 20, "iat": now + 20}
    for claims in (late, early):
        assert (await auth.authenticate({"Authorization": f"Bearer {mint(issuer.keys[0], claims)}"})).team == "ml"


def _header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return dict(orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


@pytest.mark.parametrize("case", ["none", "None", "NONE", "hs256_with_public_key", "hs256_with_empty_key"])
async def test_unsigned_and_hmac_tokens_are_refused(case: str, issuer: JwksServer, stack: AsyncExitStack,
                                                    tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    key = issuer.keys[0]
    claims = claims_for(issuer.issuer, **ML)
    if case.lower() == "none":
        token = forge({"alg": case, "typ": "JWT", "kid": key.kid}, claims)
    else:
        # HS/RS confusion: the public key (which anyone may fetch) used as the HMAC secret.
        secret = key.public_pem() if case == "hs256_with_public_key" else b""
        token = forge({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims, secret)
    error = await refused(auth, token)
    assert error.code == "token_algorithm_not_allowed"
    assert "RS256" in error.message


async def test_an_algorithm_outside_the_issuers_allow_list_is_refused(issuer: JwksServer, stack: AsyncExitStack,
                                                                      tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path, algorithms=["RS256"])
    issuer.rotate(signing_key("rsa-1"), keep_old=False)
    ps = mint(issuer.keys[0], claims_for(issuer.issuer, **ML), alg="PS256")
    assert (await refused(auth, ps)).code == "token_algorithm_not_allowed"


async def test_a_key_only_serves_the_algorithm_of_its_type(issuer: JwksServer, stack: AsyncExitStack,
                                                           tmp_path: Path) -> None:
    ec = signing_key("ec-1", "ES256")
    issuer.rotate(ec, keep_old=True)
    auth = await jwt_auth(issuer, stack, tmp_path)
    # An ES256 header naming the RSA key's kid: the RSA key never verifies an ECDSA signature.
    token = mint(ec, claims_for(issuer.issuer, **ML), kid="rsa-1")
    assert (await refused(auth, token)).code == "token_key_unknown"


async def test_kid_of_another_issuers_key_is_refused(stack: AsyncExitStack, tmp_path: Path) -> None:
    first = await start_issuer(JwksServer([signing_key("a-1")]), stack)
    second = await start_issuer(JwksServer([signing_key("b-1")]), stack)
    auth = await authenticator(auth_config(tmp_path, [issuer_config(first.issuer), issuer_config(second.issuer)]),
                               stack)
    # Claims say issuer one, the signature is by issuer two's key (named by its own kid).
    stolen = mint(second.keys[0], claims_for(first.issuer, **ML))
    assert (await refused(auth, stolen)).code == "token_key_unknown"
    # ...and with issuer one's kid in the header, the signature does not verify.
    relabelled = mint(second.keys[0], claims_for(first.issuer, **ML), kid="a-1")
    assert (await refused(auth, relabelled)).code == "token_signature_invalid"
    # Each issuer's own tokens are fine.
    for server in (first, second):
        token = mint(server.keys[0], claims_for(server.issuer, **ML))
        assert (await auth.authenticate({"Authorization": f"Bearer {token}"})).team == "ml"


async def test_a_key_embedded_in_the_header_is_never_used(issuer: JwksServer, stack: AsyncExitStack,
                                                          tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    attacker = signing_key("attacker")
    token = mint(attacker, claims_for(issuer.issuer, **ML),
                 headers={"jwk": attacker.public_jwk, "jku": f"{issuer.issuer}/evil", "x5u": "https://x"})
    assert (await refused(auth, token)).code == "token_key_unknown"


def _now() -> int:
    return int(time.time())


CLAIM_FAILURES: list[tuple[str, Any, str]] = [
    ("expired", lambda iss: claims_for(iss, **ML) | {"exp": _now() - 120}, "token_expired"),
    ("not_yet_valid", lambda iss: claims_for(iss, **ML) | {"nbf": _now() + 120}, "token_not_yet_valid"),
    ("issued_in_future", lambda iss: claims_for(iss, **ML) | {"iat": _now() + 120}, "token_not_yet_valid"),
    ("wrong_issuer", lambda iss: claims_for(iss + "/other", **ML), "token_issuer_unknown"),
    ("issuer_not_a_string", lambda iss: claims_for(iss, **ML) | {"iss": [iss]}, "token_issuer_unknown"),
    ("no_issuer", lambda iss: {k: v for k, v in claims_for(iss, **ML).items() if k != "iss"}, "token_issuer_unknown"),
    ("wrong_audience", lambda iss: claims_for(iss, **ML) | {"aud": "someone-else"}, "token_audience_invalid"),
    ("audience_list_without_ours", lambda iss: claims_for(iss, **ML) | {"aud": ["a", "b"]},
     "token_audience_invalid"),
    ("missing_exp", lambda iss: {k: v for k, v in claims_for(iss, **ML).items() if k != "exp"},
     "token_claim_missing"),
    ("missing_aud", lambda iss: {k: v for k, v in claims_for(iss, **ML).items() if k != "aud"},
     "token_claim_missing"),
    ("exp_not_a_number", lambda iss: claims_for(iss, **ML) | {"exp": "tomorrow"}, "token_malformed"),
    ("unmapped_team", lambda iss: claims_for(iss, azp="x", groups=["guests"]), "token_claims_unmapped"),
    ("no_app", lambda iss: claims_for(iss, groups=["ml-engineers"]), "token_claims_unmapped"),
    ("app_not_text", lambda iss: claims_for(iss, azp={"x": 1}, groups=["ml-engineers"]), "token_claims_unmapped"),
]


@pytest.mark.parametrize(("name", "make", "code"), CLAIM_FAILURES, ids=[c[0] for c in CLAIM_FAILURES])
async def test_invalid_claims_are_refused_with_their_reason(name: str, make: Any, code: str, issuer: JwksServer,
                                                            stack: AsyncExitStack, tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    error = await refused(auth, mint(issuer.keys[0], make(issuer.issuer)))
    assert error.code == code, error.message
    if code == "token_audience_invalid":
        assert AUDIENCE in error.message


async def test_tampered_and_malformed_tokens_are_refused(issuer: JwksServer, stack: AsyncExitStack,
                                                         tmp_path: Path) -> None:
    auth = await jwt_auth(issuer, stack, tmp_path)
    good = mint(issuer.keys[0], claims_for(issuer.issuer, **ML))
    head, _, signature = good.split(".")
    other_body = mint(issuer.keys[0], claims_for(issuer.issuer, **ML | {"groups": ["platform-admins"]})).split(".")[1]
    assert (await refused(auth, f"{head}.{other_body}.{signature}")).code == "token_signature_invalid"
    assert (await refused(auth, f"{head}.{other_body}.")).code == "token_signature_invalid"
    for malformed in ("a.b.c", "eyJ.eyJ.", f"{head}.not-json.{signature}", "..", f"{head}..{signature}"):
        assert (await refused(auth, malformed)).code == "token_malformed"
    critical = mint(issuer.keys[0], claims_for(issuer.issuer, **ML), headers={"crit": ["exp"], "exp": 1})
    assert (await refused(auth, critical)).code == "token_malformed"
    assert _header(good)["kid"] == "rsa-1"


async def test_weak_or_wrong_curve_issuer_keys_are_not_used(issuer: JwksServer, stack: AsyncExitStack,
                                                            tmp_path: Path) -> None:
    short = signing_key("rsa-1024", "RS256", kind="RSA1024")
    p384 = signing_key("ec-384", "ES256", kind="EC384")
    issuer.rotate(short)
    issuer.rotate(p384, keep_old=True)
    auth = await jwt_auth(issuer, stack, tmp_path)
    with pytest.warns(UserWarning, match="1024 bits"):  # PyJWT signs with it, warning
        weak = mint(short, claims_for(issuer.issuer, **ML))
    assert (await refused(auth, weak)).code == "token_key_unknown"
    # ES256 means P-256: a P-384 key is refused before any signature is looked at.
    wrong_curve = forge({"alg": "ES256", "kid": p384.kid}, claims_for(issuer.issuer, **ML), b"x")
    assert (await refused(auth, wrong_curve)).code == "token_key_unknown"


async def test_private_and_symmetric_keys_in_the_jwks_are_ignored(issuer: JwksServer, stack: AsyncExitStack,
                                                                  tmp_path: Path) -> None:
    from jwt.algorithms import RSAAlgorithm
    leaked = signing_key("leaked")
    issuer.extra_jwks = [{**RSAAlgorithm.to_jwk(leaked.private, as_dict=True), "kid": "leaked"},
                         {"kty": "oct", "k": "c2VjcmV0", "kid": "shared"}]
    auth = await jwt_auth(issuer, stack, tmp_path)
    assert (await refused(auth, mint(leaked, claims_for(issuer.issuer, **ML)))).code == "token_key_unknown"
    hs = forge({"alg": "HS256", "kid": "shared"}, claims_for(issuer.issuer, **ML), b"secret")
    assert (await refused(auth, hs)).code == "token_algorithm_not_allowed"


async def test_a_jwt_shaped_api_key_is_still_an_api_key(issuer: JwksServer, stack: AsyncExitStack,
                                                        tmp_path: Path) -> None:
    from proxy.identity import hash_key
    config = auth_config(tmp_path, [issuer_config(issuer.issuer)],
                         keys=[{"id": "k-dots", "sha256": hash_key("a.b.c"), "app": "legacy", "team": "ops"}])
    auth = await authenticator(config, stack)
    identity = await auth.authenticate({"Authorization": "Bearer a.b.c"})
    assert identity == Identity("legacy", "ops", None, "k-dots", "api_key")

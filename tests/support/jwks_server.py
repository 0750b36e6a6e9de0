"""An OIDC issuer on loopback for tests: discovery document, a JWKS that rotates, tokens minted here.

The server can be made to fail (HTTP 503) or hang, and counts its JWKS fetches, so tests can show that
a cached key needs no fetch and an unknown one is fetched at most as often as configured.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

AUDIENCE = "llm-policy-proxy"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if self.alg in ("RS256", "PS256"):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif self.alg == "ES256":
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return bytes(self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo))


@functools.cache
def _private(kind: str, seed: str) -> Any:
    """One generated key per (kind, name) per test session: RSA generation costs ~0.1 s."""
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "RSA1024":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    if kind == "EC":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "EC384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def signing_key(kid: str, alg: str = "RS256", *, kind: str | None = None) -> SigningKey:
    kind = kind or {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}[alg]
    return SigningKey(kid, alg, _private(kind, kid))


def claims_for(issuer: str, *, lifetime_s: float = 600, **claims: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "aud": AUDIENCE, "iat": now, "exp": now + int(lifetime_s), "sub": "test-subject",
            **claims}


def mint(key: SigningKey, claims: dict[str, Any], *, alg: str | None = None, headers: dict[str, Any] | None = None,
         kid: str | None = "use-key") -> str:
    extra = {"kid": key.kid if kid == "use-key" else kid, **(headers or {})}
    if extra["kid"] is None:
        del extra["kid"]
    # Signed as raw JWS so tests can mint claims PyJWT's encoder would refuse (a list as `iss`).
    return jwt.api_jws.encode(_json(claims), key.private, algorithm=alg or key.alg, headers=extra)


def _json(value: Any) -> bytes:
    # The json module, not orjson: it writes what fuzzing asks for (huge integers, NaN), valid JSON or not.
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None = None) -> str:
    """A token no library would make: alg none (empty signature), or HS256 keyed with some bytes (the HS/RS
    confusion attack keys it with the issuer's public key)."""
    signing_input = f"{_b64(_json(header))}.{_b64(_json(claims))}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass
class JwksServer:
    keys: list[SigningKey]
    issuer: str = ""
    fetches: int = 0
    discoveries: int = 0
    failing: bool = False
    hang: asyncio.Event | None = None
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)
    discovery_issuer: str | None = None

    def rotate(self, new: SigningKey, *, keep_old: bool = False) -> None:
        self.keys = [*self.keys, new] if keep_old else [new]

    def document(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk for key in self.keys] + self.extra_jwks}

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        return app

    async def _discovery(self, _: web.Request) -> web.Response:
        self.discoveries += 1
        return web.json_response({"issuer": self.discovery_issuer or self.issuer, "jwks_uri": f"{self.issuer}/jwks",
                                  "id_token_signing_alg_values_supported": ["RS256"]})

    async def _jwks(self, _: web.Request) -> web.Response:
        self.fetches += 1
        if self.hang is not None:
            await self.hang.wait()
        if self.failing:
            return web.json_response({"error": "down"}, status=503)
        return web.Response(body=orjson.dumps(self.document()), content_type="application/json")

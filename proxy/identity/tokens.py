"""Verifying a JWT against the configured issuers: header, issuer, algorithm, key, signature, claims.

PyJWT does the cryptography and the registered-claim checks; this module only decides which issuer's
keys and which algorithms a token may be checked with, and turns each failure into a clear 401.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from proxy.errors import Unauthorized

from .config import JwtIssuer
from .jwks import IssuerKeys, UnknownKey

REQUIRED_CLAIMS = ["exp", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class Issuer:
    config: JwtIssuer
    keys: IssuerKeys


@dataclass(frozen=True, slots=True)
class Verified:
    issuer: Issuer
    kid: str | None
    claims: dict[str, Any]
    # Until when the token stays acceptable (its exp plus the issuer's leeway), Unix seconds.
    valid_until: float


def refused(code: str, message: str) -> Unauthorized:
    return Unauthorized(message, code=code)


class TokenVerifier:
    def __init__(self, issuers: Sequence[Issuer]) -> None:
        self.issuers = {issuer.config.issuer: issuer for issuer in issuers}

    async def verify(self, token: str) -> Verified:
        header, unverified = _unverified(token)
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise refused("token_issuer_unknown", "The token's issuer (iss) is not one this proxy trusts.")
        algorithm = header.get("alg")
        if algorithm not in issuer.config.algorithms:
            # `none`, HS256 signed with a public key, anything the issuer is not configured for.
            raise refused("token_algorithm_not_allowed", "The token is signed with an algorithm this issuer may "
                          f"not use (allowed: {', '.join(issuer.config.algorithms)}).")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise refused("token_malformed", "The bearer token is not a well-formed JWT (kid).")
        try:
            kid, key = await issuer.keys.key(kid, algorithm)
        except UnknownKey:
            raise refused("token_key_unknown", "The token is signed with a key (kid) its issuer does not publish; "
                          "if the issuer has just rotated its keys, retry shortly.") from None
        claims = _checked(token, key, algorithm, issuer.config)
        return Verified(issuer, kid, claims, _numeric(claims["exp"]) + issuer.config.leeway_s)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before any check: only to choose the issuer and the key, never trusted."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        raise refused("token_malformed", "The bearer token is not a well-formed JWT.") from None
    if "crit" in header:
        # RFC 7515 4.1.11: a recipient must refuse extensions it does not understand, and this one knows none.
        raise refused("token_malformed", "The token names critical header extensions this proxy does not support.")
    return header, claims


def _checked(token: str, key: Any, algorithm: str, issuer: JwtIssuer) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[algorithm], audience=list(issuer.audiences), issuer=issuer.issuer,
            leeway=issuer.leeway_s, options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True})
    except jwt.InvalidSignatureError:
        raise refused("token_signature_invalid", "The token's signature does not verify.") from None
    except jwt.ExpiredSignatureError:
        raise refused("token_expired", "The token has expired; get a fresh one from your identity provider.") \
            from None
    except jwt.ImmatureSignatureError:
        raise refused("token_not_yet_valid", "The token is not valid yet (nbf or iat in the future); "
                      "check the clocks of the issuer and the proxy.") from None
    except jwt.InvalidAudienceError:
        raise refused("token_audience_invalid", "The token was not issued for this proxy; request one with the "
                      f"audience {' or '.join(issuer.audiences)}.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise refused("token_claim_missing", f"The token lacks the required claim {exc.claim!r}.") from None
    except jwt.InvalidKeyError:
        raise refused("token_key_unknown", "The issuer's key for this token is not acceptable (too short or "
                      "of the wrong type).") from None
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
        raise refused("token_malformed", "The bearer token is not a well-formed JWT.") from None
    return claims


def _numeric(value: Any) -> float:
    # PyJWT has accepted it already (it reads NumericDate with int()); read it the same way.
    return float(int(value))

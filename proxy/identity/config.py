"""The identity parts of the `auth` config section: API keys (with a lifecycle) and JWT issuers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# JSON Pointer (RFC 6901) for nested claims, since claim names themselves contain dots ("kubernetes.io").
_POINTER = re.compile(r"^(/([^~/]|~[01])*)+$")

JwtAlgorithm = Literal["RS256", "PS256", "ES256", "EdDSA"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiKey(_Frozen):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/\-]+$")
    sha256: str
    app: str = Field(min_length=1)
    team: str = Field(min_length=1)
    user: str | None = None
    admin: bool = False
    # The lifecycle: a key past expires_at or disabled is refused (a keys file reload picks either up).
    expires_at: dt.datetime | None = None
    disabled: bool = False
    owner: str | None = None
    description: str | None = None
    created_at: dt.datetime | None = None

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.lower()
        if not _SHA256.match(value):
            raise ValueError("must be the hex SHA-256 of the key (64 hex characters), never the key itself")
        return value

    @field_validator("expires_at", "created_at")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        # A time without a zone is read as UTC: the proxy's clock and the file's author may differ.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


def claim_path(value: str) -> str:
    """A top-level claim name (`email`, `kubernetes.io`) or a JSON Pointer into nested claims."""
    if not value or (value.startswith("/") and not _POINTER.match(value)):
        raise ValueError(f"{value!r}: use a claim name or a JSON Pointer such as /kubernetes.io/namespace")
    return value


class ClaimRule(_Frozen):
    """Where app, team or user come from: the first claim present (a list claim such as `groups`
    through `map`, whose first entry the claim contains wins), else `default`."""

    claim: tuple[str, ...] = ()
    map: dict[str, str] | None = None
    default: str | None = Field(None, min_length=1)

    @field_validator("claim", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("claim")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(claim_path(v) for v in value)

    @model_validator(mode="after")
    def _has_a_source(self) -> ClaimRule:
        if not self.claim and self.default is None:
            raise ValueError("set claim (a name, a JSON Pointer or a list of them), default, or both")
        if self.map is not None and not self.map:
            raise ValueError("map: an empty table maps nothing; remove it or add entries")
        return self


class IdentityClaims(_Frozen):
    app: ClaimRule
    team: ClaimRule
    user: ClaimRule | None = None


class AdminRule(_Frozen):
    """Admin when the claim (a string or a list) holds any of these values."""

    claim: str
    any_of: tuple[str, ...] = Field(min_length=1)

    @field_validator("claim")
    @classmethod
    def _path(cls, value: str) -> str:
        return claim_path(value)


def _fetchable(url: str) -> str:
    """https, or http to a loopback address only: keys fetched in clear could be swapped on the way."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
    raise ValueError(f"{url!r}: must be an https:// URL (http:// only to a loopback address)")


class JwtIssuer(_Frozen):
    # The exact `iss` value; without jwks_uri or jwks_file, {issuer}/.well-known/openid-configuration
    # is fetched for the jwks_uri (OIDC discovery).
    issuer: str = Field(min_length=1)
    audiences: tuple[str, ...] = Field(min_length=1)
    jwks_uri: str | None = None
    jwks_file: Path | None = None
    algorithms: tuple[JwtAlgorithm, ...] = Field(("RS256",), min_length=1)
    leeway_s: float = Field(30.0, ge=0, le=300)
    identity: IdentityClaims
    admin: AdminRule | None = None
    # Claims (names or JSON Pointers) copied into the policy input as identity.claims, nested as issued.
    policy_claims: tuple[str, ...] = ()
    # For fetching discovery and JWKS: a CA bundle, and a bearer token file read at each fetch (a Kubernetes
    # API server serves its JWKS only to authenticated callers; projected tokens rotate).
    ca_file: Path | None = None
    token_file: Path | None = None

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else _fetchable(value)

    @field_validator("policy_claims")
    @classmethod
    def _claim_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(claim_path(v) for v in value)

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtIssuer:
        if self.jwks_uri and self.jwks_file:
            raise ValueError("set jwks_uri or jwks_file, not both")
        if not self.jwks_uri and not self.jwks_file:
            _fetchable(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        return self


class JwtConfig(_Frozen):
    issuers: tuple[JwtIssuer, ...] = ()
    # Verified tokens remembered (by SHA-256) until they expire, so most requests skip the signature check.
    cache_size: int = Field(10_000, ge=0)
    refresh_interval_s: float = Field(300.0, gt=0)
    # An unknown `kid` refetches the issuer's keys at most this often (a flood of forged kids must not
    # become a flood of requests to the issuer).
    refetch_min_interval_s: float = Field(30.0, ge=0)
    fetch_timeout_s: float = Field(5.0, gt=0)

    @field_validator("issuers")
    @classmethod
    def _distinct(cls, value: tuple[JwtIssuer, ...]) -> tuple[JwtIssuer, ...]:
        names = [i.issuer for i in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"issuer listed twice: {', '.join(dupes)}")
        return value

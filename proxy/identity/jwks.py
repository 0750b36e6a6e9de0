"""An issuer's signing keys: fetched (OIDC discovery, a JWKS URL or a local file), cached, rotated.

A request whose `kid` is cached never waits on the network. An unknown `kid` refetches the keys, at most
once per `refetch_min_interval_s` per issuer (concurrent requests share one fetch); a failed fetch keeps
the keys already held. A background task refreshes every `refresh_interval_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from jwt import PyJWK, PyJWTError

from proxy.telemetry.logging import get_logger

MAX_DOCUMENT_BYTES = 512 * 1024
MAX_KEYS = 100
# Which JWK may verify which algorithm: the token's header chooses the algorithm, so the key must agree.
KEY_TYPES: dict[str, tuple[str, frozenset[str | None]]] = {
    "RS256": ("RSA", frozenset({None})),
    "PS256": ("RSA", frozenset({None})),
    "ES256": ("EC", frozenset({"P-256"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}

log = get_logger("proxy.identity.jwks")
Jwk = Mapping[str, Any]


class JwksError(Exception):
    """The keys could not be fetched or are not a usable JWKS (the keys held before are kept)."""


class UnknownKey(Exception):
    """No key of this issuer matches the token's `kid` and algorithm."""


class KeySource(Protocol):
    description: str

    async def fetch(self) -> object: ...


def parse_jwks(document: object) -> dict[str | None, Jwk]:
    """Public signature keys by `kid`; private, symmetric and encryption keys are never used."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError('not a JWKS (an object with a "keys" list)')
    keys: dict[str | None, Jwk] = {}
    for jwk in document["keys"][:MAX_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC", "OKP") or "d" in jwk:
            continue
        if jwk.get("use", "sig") != "sig" or not isinstance(jwk.get("kid", ""), str):
            continue
        keys.setdefault(jwk.get("kid"), jwk)
    if not keys:
        raise JwksError("the JWKS holds no public signature key")
    return keys


def verification_key(jwk: Jwk, algorithm: str) -> Any:
    """The `cryptography` public key for this algorithm, or UnknownKey when the JWK is for another one."""
    kty, curves = KEY_TYPES[algorithm]
    if jwk.get("kty") != kty or jwk.get("crv") not in curves or jwk.get("alg", algorithm) != algorithm:
        raise UnknownKey(algorithm)
    try:
        return PyJWK(dict(jwk), algorithm).key
    except (PyJWTError, ValueError, TypeError) as exc:
        raise UnknownKey(algorithm) from exc


class IssuerKeys:
    def __init__(self, source: KeySource, *, refetch_min_interval_s: float, refresh_interval_s: float,
                 fetch_timeout_s: float, on_fetch: Callable[[bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._on_fetch = on_fetch
        self._refetch_min = refetch_min_interval_s
        self._refresh = refresh_interval_s
        self._timeout = fetch_timeout_s
        self._clock = clock
        self._jwks: dict[str | None, Jwk] = {}
        self._built: dict[tuple[str | None, str], Any] = {}
        self._inflight: asyncio.Task[bool] | None = None
        self._last_attempt = -float("inf")
        self.fetched_at: float | None = None

    def has(self, kid: str | None) -> bool:
        return kid in self._jwks

    def resolve(self, kid: str | None) -> tuple[str | None, Jwk] | None:
        jwk = self._jwks.get(kid)
        if jwk is not None:
            return kid, jwk
        if kid is None and len(self._jwks) == 1:
            # A token without `kid` is accepted only when the issuer publishes exactly one key.
            return next(iter(self._jwks.items()))
        return None

    def cached(self, kid: str | None, algorithm: str) -> tuple[str | None, Any] | None:
        """(the key's own kid, its public key) when held, without any I/O."""
        resolved = self.resolve(kid)
        if resolved is None:
            return None
        found_kid, jwk = resolved
        built = self._built.get((found_kid, algorithm))
        if built is None:
            built = self._built[(found_kid, algorithm)] = verification_key(jwk, algorithm)
        return found_kid, built

    async def key(self, kid: str | None, algorithm: str) -> tuple[str | None, Any]:
        found = self.cached(kid, algorithm)
        if found is not None:
            return found
        if self._inflight is None and self._clock() - self._last_attempt < self._refetch_min:
            raise UnknownKey(kid)
        await self.refresh()
        found = self.cached(kid, algorithm)
        if found is None:
            raise UnknownKey(kid)
        return found

    async def refresh(self) -> bool:
        """Fetch now, or join the fetch under way; True when the keys were replaced."""
        if self._inflight is None:
            self._last_attempt = self._clock()
            self._inflight = asyncio.get_running_loop().create_task(self._fetch())
            self._inflight.add_done_callback(self._fetched)
        try:
            # Shielded: a caller that gives up (or disconnects) does not cancel the fetch the others share.
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that meets a finished fetch,
            # and the refresh loop would then sleep through its own shutdown.
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(self._inflight)
        except TimeoutError:
            return False

    def _fetched(self, task: asyncio.Task[bool]) -> None:
        self._inflight = None
        if not task.cancelled():
            task.exception()  # _fetch handles its errors; this only marks the result as seen

    async def _fetch(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                jwks = parse_jwks(await self.source.fetch())
        except Exception as exc:  # whatever went wrong, the keys held so far stay in force
            log.warning("jwks_fetch_failed", source=self.source.description, error=str(exc)[:300],
                        keys_kept=len(self._jwks))
            if self._on_fetch is not None:
                self._on_fetch(False)
            return False
        if jwks != self._jwks:
            self._jwks, self._built = jwks, {}
            log.info("jwks_updated", source=self.source.description, keys=len(jwks))
        self.fetched_at = time.time()
        if self._on_fetch is not None:
            self._on_fetch(True)
        return True

    async def run(self) -> None:
        """Refresh forever (cancel to stop); after a failure, retry sooner."""
        while True:
            ok = await self.refresh()
            await asyncio.sleep(self._refresh if ok else min(self._refresh, max(self._refetch_min, 1.0)))

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._inflight


class FileSource:
    """A JWKS file, for clusters that cannot reach their issuer (re-read at each refresh)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)

    async def fetch(self) -> object:
        data = await asyncio.to_thread(self.path.read_bytes)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise JwksError(f"larger than {MAX_DOCUMENT_BYTES} bytes")
        return orjson.loads(data)


class HttpSource:
    """A JWKS URL, or (without one) the jwks_uri of the issuer's OIDC discovery document."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], issuer: str, jwks_uri: str | None, *,
                 ca_file: Path | None = None, token_file: Path | None = None) -> None:
        self._session = session
        self._issuer = issuer
        self._jwks_uri = jwks_uri
        self._ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        self._token_file = token_file
        self.description = jwks_uri or issuer

    async def fetch(self) -> object:
        if self._jwks_uri is not None:
            return await self._get(self._jwks_uri)
        discovery_url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        discovery = await self._get(discovery_url)
        if not isinstance(discovery, dict) or discovery.get("issuer") != self._issuer:
            # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer it describes.
            raise JwksError(f"{discovery_url}: the discovery document names another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _same_security(jwks_uri, discovery_url):
            raise JwksError(f"{discovery_url}: no usable jwks_uri (https, or http on loopback only)")
        same_origin = urlsplit(jwks_uri).netloc == urlsplit(discovery_url).netloc
        return await self._get(jwks_uri, send_token=same_origin)

    async def _get(self, url: str, *, send_token: bool = True) -> object:
        headers = {"Accept": "application/json"}
        if self._token_file is not None and send_token:
            token = (await asyncio.to_thread(self._token_file.read_text)).strip()
            headers["Authorization"] = f"Bearer {token}"
        # No redirects: a redirect could lead from https to a key server nobody configured.
        async with self._session().get(url, headers=headers, ssl=self._ssl, allow_redirects=False) as response:
            if response.status != 200:
                raise JwksError(f"{url}: HTTP {response.status}")
            body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise JwksError(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
        return orjson.loads(body)


def _same_security(url: str, discovered_from: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and urlsplit(discovered_from).scheme == "http" \
        and parts.hostname == urlsplit(discovered_from).hostname

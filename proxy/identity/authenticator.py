"""Who is calling, for every surface: request headers (model calls, admin) or a credential (egress).

An issued API key is looked up first (a dict lookup), then a JWT from a configured issuer, then the
sidecar's application; anything else is a 401 whose message names the reason, never the credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

from proxy.errors import Unauthorized
from proxy.telemetry.metrics import Metrics

from .caller import Identity
from .keyring import KeyRing

if TYPE_CHECKING:  # built by .issuers only when JWT issuers are configured (it imports PyJWT)
    from .jwt_identity import JwtIdentities

Api = Literal["openai", "anthropic"]
# Where each API's SDK sends its key, for the hint in "no key" errors.
KEY_HINTS: dict[Api, str] = {"openai": "'Authorization: Bearer <key>'", "anthropic": "'x-api-key: <key>'"}


def looks_like_jwt(credential: str) -> bool:
    """Three dot-separated parts: what a JWS in compact form is, and what no issued API key looks like."""
    return credential.count(".") == 2


def presented_credential(headers: Mapping[str, str]) -> str | None:
    """The bearer value of Authorization (the whole header for another scheme), else x-api-key (Anthropic's
    SDK) or api-key (Azure's)."""
    header = headers.get("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else header
    return headers.get("x-api-key") or headers.get("api-key") or None


class Authenticator:
    def __init__(self, keys: KeyRing, tokens: JwtIdentities | None, sidecar: Identity | None, metrics: Metrics,
                 *, per_key_metrics: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.tokens = tokens
        self.sidecar = sidecar
        self._metrics = metrics
        self._per_key = per_key_metrics
        self._clock = clock
        self._background: set[asyncio.Task[object]] = set()

    async def authenticate(self, headers: Mapping[str, str], api: Api = "openai") -> Identity:
        """The caller's identity, or Unauthorized (its code is the reason; the renderer picks the format)."""
        try:
            identity = await self._identify(presented_credential(headers), api)
        except Unauthorized as exc:
            self._metrics.auth_refused(exc.code or "invalid_api_key")
            raise
        self._counted(identity)
        return identity

    async def identify_credential(self, credential: str) -> Identity | None:
        """For the egress proxy's Proxy-Authorization: the key's or the token's identity, or None when the
        credential is neither (the egress proxy then identifies the caller by address)."""
        try:
            identity = await self._issued(credential)
        except Unauthorized as exc:
            self._metrics.auth_refused(exc.code or "invalid_api_key")
            return None
        if identity is not None:
            self._counted(identity)
        return identity

    async def _identify(self, credential: str | None, api: Api) -> Identity:
        if credential is not None:
            identity = await self._issued(credential)
            if identity is not None:
                return identity
        if self.sidecar is not None:
            # Only the application in this pod reaches a sidecar; the SDKs insist on sending some key,
            # so whatever it sends (unless it is an issued key or a token) means "this application".
            return self.sidecar
        if credential is not None:
            raise Unauthorized("Incorrect API key provided. Use a key issued for this proxy.")
        raise Unauthorized(f"You didn't provide an API key. Send it as {KEY_HINTS[api]}.", code="missing_api_key")

    async def _issued(self, credential: str) -> Identity | None:
        key = self.keys.find(credential)
        if key is not None:
            return self.keys.admit(key)
        if self.tokens is not None and looks_like_jwt(credential):
            return await self.tokens.identify(credential)
        return None

    def _counted(self, identity: Identity) -> Identity:
        self._metrics.authenticated(method=identity.method, key_id=identity.key_id, per_key=self._per_key,
                                    now=self._clock())
        return identity

    async def reload(self) -> None:
        """Re-read the keys file and refetch every issuer's keys now (SIGHUP)."""
        issuers = self.tokens.verifier.issuers.values() if self.tokens is not None else ()
        await asyncio.gather(self.keys.reload(), *(issuer.keys.refresh() for issuer in issuers))

    def reload_soon(self) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(self.reload())
        self._background.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

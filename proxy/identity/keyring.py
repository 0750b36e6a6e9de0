"""Issued API keys (config `auth.keys` plus the keys file) looked up by hash, with lifecycle and usage.

The keys file is reloaded when it changes (polled) or on demand (SIGHUP); a file that fails to load
leaves the keys in force unchanged. Expiry is checked at each use, so it needs no reload at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from proxy.errors import Unauthorized
from proxy.telemetry.logging import get_logger

from .caller import Identity
from .config import ApiKey
from .digest import hash_key, keys_match
from .keyfile import KeyFileError, Signature, check_unique, read_keys, signature

Origin = Literal["config", "file"]

log = get_logger("proxy.identity.keys")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    config: ApiKey
    identity: Identity
    origin: Origin

    def status(self, now: float) -> Literal["active", "revoked", "expired"]:
        if self.config.disabled:
            return "revoked"
        expires = self.config.expires_at
        if expires is not None and expires.timestamp() <= now:
            return "expired"
        return "active"


@dataclass(slots=True)
class Usage:
    requests: int = 0
    last_used: float | None = None


Table = dict[str, IssuedKey]


def issued(key: ApiKey, origin: Origin) -> IssuedKey:
    return IssuedKey(key, Identity(key.app, key.team, key.user, key.id, "api_key", key.admin), origin)


class KeyRing:
    def __init__(self, static: Sequence[ApiKey], path: Path | None, *, clock: Callable[[], float] = time.time,
                 on_reload: Callable[[bool, int], None] | None = None) -> None:
        self.path = path
        self._static = tuple(static)
        self._clock = clock
        self._on_reload = on_reload
        self._usage: dict[str, Usage] = {}
        # At start-up a bad file is an error (the caller turns it into a config error), never "no keys".
        self._signature, self._by_digest = self._read()

    def _read(self) -> tuple[Signature | None, Table]:
        # The signature is taken first: a write landing during the read is seen by the next poll.
        current = signature(self.path) if self.path is not None else None
        from_file = read_keys(self.path) if self.path is not None else ()
        check_unique((*self._static, *from_file), "auth.keys and auth.keys_file together")
        table = {key.sha256: issued(key, "config") for key in self._static}
        table.update((key.sha256, issued(key, "file")) for key in from_file)
        return current, table

    async def reload(self) -> bool:
        """Re-read the keys file now; False (and the old keys kept) when it does not load."""
        try:
            current, table = await asyncio.to_thread(self._read)
        except KeyFileError as exc:
            log.error("keys_reload_failed", error=str(exc)[:500], keys_kept=len(self._by_digest))
            if self._on_reload is not None:
                self._on_reload(False, len(self._by_digest))
            return False
        self._signature, self._by_digest = current, table
        log.info("keys_reloaded", keys=len(table))
        if self._on_reload is not None:
            self._on_reload(True, len(table))
        return True

    async def poll(self) -> bool:
        if self.path is None or signature(self.path) == self._signature:
            return False
        return await self.reload()

    async def watch(self, interval_s: float) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            await asyncio.sleep(interval_s)
            await self.poll()

    def find(self, credential: str) -> IssuedKey | None:
        digest = hash_key(credential)
        key = self._by_digest.get(digest)
        # Equal SHA-256 digests mean equal keys; the constant-time compare keeps the habit for the last step.
        return key if key is not None and keys_match(digest, key.config.sha256) else None

    def admit(self, key: IssuedKey) -> Identity:
        """The key's identity if it is in force (counted as used), else Unauthorized naming why."""
        now = self._clock()
        status = key.status(now)
        if status == "revoked":
            raise Unauthorized(f"This API key (id {key.config.id}) has been revoked; ask for a new one.",
                               code="api_key_revoked")
        if status == "expired":
            expired = key.config.expires_at.isoformat() if key.config.expires_at else ""
            raise Unauthorized(f"This API key (id {key.config.id}) expired at {expired}; ask for a new one.",
                               code="api_key_expired")
        usage = self._usage.get(key.config.id)
        if usage is None:
            usage = self._usage[key.config.id] = Usage()
        usage.requests += 1
        usage.last_used = now
        return key.identity

    def rows(self) -> list[dict[str, Any]]:
        """Every key with its lifecycle and this process's usage (for /admin/keys and `keys list`)."""
        now = self._clock()
        rows = []
        for key in sorted(self._by_digest.values(), key=lambda k: k.config.id):
            usage = self._usage.get(key.config.id, Usage())
            rows.append({**describe(key, now), "requests": usage.requests, "last_used_at": _iso(usage.last_used)})
        return rows


def describe(key: IssuedKey, now: float) -> dict[str, Any]:
    """A key as people see it: everything but its hash, with where it is kept and its status now."""
    return {**key.config.model_dump(mode="json", exclude={"sha256"}), "origin": key.origin,
            "status": key.status(now)}


def _iso(moment: float | None) -> str | None:
    return None if moment is None else dt.datetime.fromtimestamp(moment, tz=dt.UTC).isoformat()

"""Who is calling: API keys (gateway mode) or the configured application (sidecar mode)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

Source = Literal["api_key", "sidecar", "anonymous"]


@dataclass(frozen=True, slots=True)
class Identity:
    app: str
    team: str
    user: str | None
    key_id: str | None
    source: Source
    admin: bool = False

    def with_user(self, user: str | None) -> Identity:
        if not user or user == self.user:
            return self
        return Identity(self.app, self.team, user, self.key_id, self.source, self.admin)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_match(presented_hash: str, stored_hash: str) -> bool:
    return hmac.compare_digest(presented_hash, stored_hash)

"""Who is calling: the typed identity every surface (model calls, egress, admin) hands to the policy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from proxy.telemetry.logging import get_logger

Source = Literal["api_key", "jwt", "sidecar", "anonymous"]
Method = Literal["key", "jwt", "sidecar", "none"]
METHODS: dict[Source, Method] = {"api_key": "key", "jwt": "jwt", "sidecar": "sidecar", "anonymous": "none"}

log = get_logger("proxy.identity")


@dataclass(frozen=True, slots=True)
class Claims:
    """The allow-listed token claims the policy sees, kept as canonical JSON so an Identity stays hashable
    (budget scopes are remembered per identity) and no stage can change them."""

    canonical: bytes = b"{}"

    @classmethod
    def of(cls, claims: dict[str, Any]) -> Claims:
        return cls(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS)) if claims else NO_CLAIMS

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.canonical)
        return value


NO_CLAIMS = Claims()


@dataclass(frozen=True, slots=True)
class Identity:
    app: str
    team: str
    user: str | None
    key_id: str | None
    source: Source
    admin: bool = False
    claims: Claims = NO_CLAIMS

    @property
    def method(self) -> Method:
        return METHODS[self.source]

    def with_user(self, user: str | None) -> Identity:
        """The end user named by a trusted header or the body's `user`, unless a verified token named one:
        a caller could set the body to anyone, so the token wins and the mismatch is logged."""
        if not user or user == self.user:
            return self
        if self.source == "jwt" and self.user is not None:
            # Neither value is logged (either may be an e-mail address): the audit line has the token's.
            log.warning("end_user_override_ignored", app=self.app, team=self.team, method=self.method)
            return self
        return dataclasses.replace(self, user=user)

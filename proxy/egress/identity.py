"""Who is calling the egress proxy: a gateway key or JWT in Proxy-Authorization, else the caller's address.

Callers that are neither are not turned away here: they are `unknown` and the policy decides.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Mapping

from proxy.egress.config import SourceApp
from proxy.identity import Identity, hash_key
from proxy.identity.config import ApiKey

UNKNOWN = Identity(app="unknown", team="unknown", user=None, key_id=None, source="anonymous")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# The gateway's Authenticator.identify_credential: an issued key or a verified JWT, else None.
CredentialCheck = Callable[[str], Awaitable[Identity | None]]


def identities_by_hash(keys: Iterable[ApiKey]) -> dict[str, Identity]:
    """The `keys` argument of start_egress, from the gateway's configured keys."""
    return {key.sha256: Identity(key.app, key.team, key.user, key.id, "api_key", key.admin) for key in keys}


def presented_key(proxy_authorization: str | None) -> str | None:
    """The key in `Basic base64(user:KEY)` (or `base64(KEY:)`, what `http://KEY@proxy` sends) or `Bearer KEY`."""
    if not proxy_authorization:
        return None
    scheme, _, credentials = proxy_authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return password or user or None


def by_hash(keys: Mapping[str, Identity]) -> CredentialCheck:
    async def check(key: str) -> Identity | None:
        return keys.get(hash_key(key))  # equal SHA-256 digests mean equal keys
    return check


class CallerIdentifier:
    def __init__(self, keys: Mapping[str, Identity] | CredentialCheck, source_apps: Mapping[str, SourceApp]) -> None:
        self._credential = keys if callable(keys) else by_hash(keys)
        # Most specific network first, so a /32 for one host overrides its subnet's app.
        networks = [(ipaddress.ip_network(cidr, strict=False), app) for cidr, app in source_apps.items()]
        self._networks: list[tuple[Network, SourceApp]] = sorted(networks, key=lambda item: -item[0].prefixlen)

    async def identify(self, proxy_authorization: str | None, peer: str | None) -> Identity:
        key = presented_key(proxy_authorization)
        if key is not None:
            known = await self._credential(key)
            if known is not None:
                return known
            # A wrong key falls through to the address: the caller is still recorded, just not trusted.
        app = self._by_address(peer)
        if app is not None:
            return Identity(app.app, app.team, None, None, "sidecar")
        return UNKNOWN

    def _by_address(self, peer: str | None) -> SourceApp | None:
        if not peer:
            return None
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for network, app in self._networks:
            if address.version == network.version and address in network:
                return app
        return None

"""Session ids bound to the caller who opened them.

An MCP server's session id is a bearer value: whoever presents it continues that session, with the
server-side state (and any authorisation the server keyed to it). Behind the gateway every client reaches
the server with the proxy's one credential, so a raw upstream id would let one caller with a valid proxy
key continue another caller's session. The gateway therefore never shows a client the upstream id: it
hands out `<upstream id>.<tag>`, where the tag is an HMAC over the server, the caller and the upstream id
under a key the proxy holds. A presented id whose tag does not verify for this caller and server is an
unknown session (404, as the transport specifies, so the client starts a new one).
"""

from __future__ import annotations

import hashlib
import hmac

from proxy.identity import Identity

TAG_HEX = 32  # 128 bits: forging a tag is as hard as guessing a random 128-bit value


def principal(identity: Identity) -> str:
    """Who a session belongs to: the same caller as the proxy's own authentication sees it."""
    return "\x00".join((identity.source, identity.key_id or "", identity.app, identity.team, identity.user or ""))


class SessionSeal:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the MCP session key must be at least 16 bytes")
        self._key = key

    def _tag(self, server: str, owner: str, upstream_id: str) -> str:
        message = "\x00".join((server, owner, upstream_id)).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:TAG_HEX]

    def seal(self, server: str, owner: str, upstream_id: str) -> str:
        """The id this caller is given for the server's `upstream_id`."""
        return f"{upstream_id}.{self._tag(server, owner, upstream_id)}"

    def open(self, server: str, owner: str, presented: str) -> str | None:
        """The upstream id behind `presented`, or None when it was not issued to this caller for this server."""
        upstream_id, dot, tag = presented.rpartition(".")
        if not dot or not upstream_id or len(tag) != TAG_HEX:
            return None
        if not hmac.compare_digest(tag, self._tag(server, owner, upstream_id)):
            return None
        return upstream_id

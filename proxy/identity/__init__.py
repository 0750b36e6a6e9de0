"""Identity: API keys with a lifecycle, JWTs from the organisation's issuers, and the sidecar's application.

`proxy.identity.authenticator.open_authenticator` builds the one object every surface asks "who is this?".
"""

from .caller import NO_CLAIMS, Claims, Identity, Method, Source
from .digest import hash_key, keys_match

__all__ = ["NO_CLAIMS", "Claims", "Identity", "Method", "Source", "hash_key", "keys_match"]

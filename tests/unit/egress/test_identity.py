"""Caller identification: gateway keys in Proxy-Authorization first, then the source address, else unknown."""

from __future__ import annotations

import base64

import pytest

from proxy.config import ApiKey
from proxy.egress.config import SourceApp
from proxy.egress.identity import UNKNOWN, CallerIdentifier, identities_by_hash, presented_key
from proxy.identity import Identity, hash_key

BILLING = Identity("billing-api", "payments", None, "k-1", "api_key")
KEYS = {hash_key("secret-key"): BILLING}
SOURCES = {
    "10.0.0.0/8": SourceApp(app="cluster", team="platform"),
    "10.1.2.3": SourceApp(app="batch", team="data"),
    "fd00::/8": SourceApp(app="v6-app", team="net"),
}


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(("header", "key"), [
    (basic("anything:secret-key"), "secret-key"),
    (basic("secret-key:"), "secret-key"),
    (basic("secret-key"), "secret-key"),
    ("Bearer secret-key", "secret-key"),
    ("bearer   secret-key ", "secret-key"),
    ("Basic !!!notbase64", None),
    ("Digest username=x", None),
    ("Bearer", None),
    ("", None),
    (None, None),
])
def test_presented_key_reads_basic_and_bearer(header: str | None, key: str | None) -> None:
    assert presented_key(header) == key


async def test_a_gateway_key_names_the_caller_even_from_a_mapped_address() -> None:
    identifier = CallerIdentifier(KEYS, SOURCES)
    assert await identifier.identify("Bearer secret-key", "10.1.2.3") == BILLING


async def test_the_most_specific_source_network_wins() -> None:
    identifier = CallerIdentifier(KEYS, SOURCES)
    assert await identifier.identify(None, "10.1.2.3") == Identity("batch", "data", None, None, "sidecar")
    assert (await identifier.identify(None, "10.9.9.9")).app == "cluster"
    assert (await identifier.identify(None, "::ffff:10.9.9.9")).app == "cluster"
    assert (await identifier.identify(None, "fd12::1")).app == "v6-app"


async def test_a_wrong_key_falls_back_to_the_address_then_unknown() -> None:
    identifier = CallerIdentifier(KEYS, SOURCES)
    assert (await identifier.identify("Bearer wrong", "10.9.9.9")).app == "cluster"
    assert await identifier.identify("Bearer wrong", "192.0.2.1") is UNKNOWN
    assert await identifier.identify(None, None) is UNKNOWN
    assert await identifier.identify(None, "not-an-ip") is UNKNOWN
    assert Identity("unknown", "unknown", None, None, "anonymous") == UNKNOWN


def test_identities_by_hash_maps_configured_keys() -> None:
    key = ApiKey(id="k-1", sha256=hash_key("secret-key"), app="billing-api", team="payments")
    assert identities_by_hash([key]) == KEYS

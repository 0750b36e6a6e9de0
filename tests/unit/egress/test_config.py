"""The egress config section: defaults, validation of networks, addresses and allow entries, unknown keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.egress.config import EgressConfig


def test_defaults_keep_the_listener_off_and_on_loopback() -> None:
    config = EgressConfig()
    assert (config.enabled, config.host, config.port, config.max_header_bytes) == (False, "127.0.0.1", 3128, 16384)


def test_source_apps_and_resolve_are_validated_and_normalised() -> None:
    config = EgressConfig.model_validate({
        "source_apps": {"10.0.0.0/8": {"app": "a", "team": "t"}, "::1": {"app": "b", "team": "t"}},
        "resolve": {"API.OpenAI.com.": "127.0.0.1", "xn--bcher-kva.example": ["::1", "127.0.0.2"],
                    "Bücher.example": "127.0.0.3"},
    })
    assert config.resolve == {"api.openai.com": ("127.0.0.1",), "xn--bcher-kva.example": ("127.0.0.3",)}
    assert config.source_apps["10.0.0.0/8"].app == "a"


@pytest.mark.parametrize(("document", "message"), [
    ({"source_apps": {"10.0.0.0/33": {"app": "a", "team": "t"}}}, "not an IP address or CIDR"),
    ({"resolve": {"api.openai.com": "localhost"}}, "not an IP address"),
    ({"resolve": {"api.openai.com": []}}, "at least one"),
    ({"resolve": {"127.0.0.1": "127.0.0.1"}}, "is an IP address, not a name"),
    ({"resolve": {"a..b": "127.0.0.1"}}, "malformed host"),
    ({"allow_internal": ["10.2.0.0/16"]}, "expected CIDR:port"),
    ({"allow_internal": ["10.2.0.1/16:8000"]}, "has host bits set"),
    ({"allow_internal": ["10.2.0.0/16:0"]}, "ports must be 1-65535"),
    ({"allow_internal": ["10.2.0.0/16:90-80"]}, "the first not above the last"),
    ({"allow_internal": ["10.2.0.0/16:http"]}, "port must be a number"),
    ({"allow_internal": ["fd00::/8:443"]}, "expected CIDR:port"),
    ({"allow_internal": ["[fd00::/8]443"]}, r"\[network\]:port"),
    ({"allow_internal": ["[not-v6]:443"]}, "does not appear to be an IPv4 or IPv6"),
    ({"internal_domains": ["10.0.0.1"]}, "is an IP address"),
    ({"source_apps": {"10.0.0.1": {"app": "a"}}}, "team"),
    ({"max_connections": 0}, "greater than 0"),
    ({"listen": "0.0.0.0"}, "Extra inputs"),
])
def test_bad_settings_are_refused(document: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EgressConfig.model_validate(document)


def test_allow_internal_entries_are_kept_in_canonical_form() -> None:
    config = EgressConfig.model_validate({"allow_internal": [
        "10.2.0.0/16:8000", " 10.0.0.5:8000-8010", "[FD00::/8]:*", "127.0.0.1/32:443-443", "[::1]:1-65535"]})
    assert config.allow_internal == (
        "10.2.0.0/16:8000", "10.0.0.5/32:8000-8010", "[fd00::/8]:*", "127.0.0.1/32:443", "[::1/128]:*")


def test_internal_domains_are_normalised_names() -> None:
    config = EgressConfig.model_validate({"internal_domains": [".Corp.Example.COM.", "ｉｎｔｒａ.example"]})
    assert config.internal_domains == ("corp.example.com", "intra.example")


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        EgressConfig().port = 1  # type: ignore[misc]

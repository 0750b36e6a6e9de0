"""The egress config section: defaults, validation of networks and addresses, unknown keys."""

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
        "resolve": {"API.OpenAI.com.": "127.0.0.1"},
    })
    assert config.resolve == {"api.openai.com": "127.0.0.1"}
    assert config.source_apps["10.0.0.0/8"].app == "a"


@pytest.mark.parametrize(("document", "message"), [
    ({"source_apps": {"10.0.0.0/33": {"app": "a", "team": "t"}}}, "not an IP address or CIDR"),
    ({"resolve": {"api.openai.com": "localhost"}}, "not an IP address"),
    ({"source_apps": {"10.0.0.1": {"app": "a"}}}, "team"),
    ({"max_connections": 0}, "greater than 0"),
    ({"listen": "0.0.0.0"}, "Extra inputs"),
])
def test_bad_settings_are_refused(document: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EgressConfig.model_validate(document)


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        EgressConfig().port = 1  # type: ignore[misc]

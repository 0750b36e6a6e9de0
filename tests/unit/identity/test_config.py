"""The identity parts of `auth`: errors name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proxy.config import ConfigError, parse_config
from tests.support.config import config_document

ISSUER = {"issuer": "https://login.example.com", "audiences": ["llm-policy-proxy"],
          "identity": {"app": {"claim": "azp"}, "team": {"default": "everyone"}}}


def parse(tmp_path: Path, **auth: Any) -> Any:
    document = config_document("http://127.0.0.1:9/v1", tmp_path)
    document["auth"] = auth
    return parse_config(document, base_dir=tmp_path)


def test_gateway_mode_needs_some_way_in(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth\.keys: gateway mode needs keys, a keys_file or jwt\.issuers"):
        parse(tmp_path, mode="gateway")
    assert parse(tmp_path, keys_file="keys.yaml").auth.keys_file == Path("keys.yaml")
    config = parse(tmp_path, jwt={"issuers": [ISSUER]})
    assert config.auth.jwt.issuers[0].algorithms == ("RS256",) and config.auth.jwt.cache_size == 10_000


@pytest.mark.parametrize(("issuer", "message"), [
    ({"issuer": "http://login.example.com"}, "auth.jwt.issuers.0: Value error, 'http://login.example.com/.well"),
    ({"jwks_uri": "http://10.0.0.1/jwks"}, "auth.jwt.issuers.0.jwks_uri"),
    ({"jwks_uri": "https://x/jwks", "jwks_file": "j.json"}, "set jwks_uri or jwks_file, not both"),
    ({"algorithms": ["HS256"]}, "auth.jwt.issuers.0.algorithms.0"),
    ({"algorithms": ["none"]}, "auth.jwt.issuers.0.algorithms.0"),
    ({"algorithms": []}, "auth.jwt.issuers.0.algorithms"),
    ({"audiences": []}, "auth.jwt.issuers.0.audiences"),
    ({"policy_claims": ["/bad~2escape"]}, "auth.jwt.issuers.0.policy_claims"),
    ({"identity": {"app": {}, "team": {"default": "t"}}}, "auth.jwt.issuers.0.identity.app"),
    ({"identity": {"app": {"claim": "a", "map": {}}, "team": {"default": "t"}}}, "an empty table"),
    ({"leeway_s": 3600}, "auth.jwt.issuers.0.leeway_s"),
    ({"colour": "red"}, "auth.jwt.issuers.0.colour: unknown key"),
])
def test_bad_issuers_name_the_key(tmp_path: Path, issuer: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(tmp_path, jwt={"issuers": [{**ISSUER, **issuer}]})
    assert message.replace("Value error, ", "") in str(caught.value)


def test_loopback_http_is_allowed_and_issuers_are_distinct(tmp_path: Path) -> None:
    local = {**ISSUER, "issuer": "http://127.0.0.1:8080"}
    assert parse(tmp_path, jwt={"issuers": [local, {**ISSUER, "jwks_uri": "http://[::1]:9/jwks"}]})
    with pytest.raises(ConfigError, match="issuer listed twice"):
        parse(tmp_path, jwt={"issuers": [ISSUER, ISSUER]})

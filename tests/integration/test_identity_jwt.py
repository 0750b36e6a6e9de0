"""JWT callers end to end with the openai SDK: claims decide in Rego, bad tokens are 401s, every surface agrees."""

from __future__ import annotations

import shutil
import socket
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.components import COMPONENTS
from proxy.gateway.pipeline import body_user
from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.config import KEYS, REPO
from tests.support.jwks_server import JwksServer, claims_for, forge, mint, signing_key
from tests.support.servers import ServerThread

HELLO = [{"role": "user", "content": "Hi"}]
ENGINEER = {"azp": "notebook", "groups": ["staff", "ml-engineers"], "email": "ada@example.com"}
ANALYST = {"azp": "notebook", "groups": ["analysts"], "email": "bob@example.com"}
# A policy on IdP groups and on the user, beside the shipped ones (same package, more deny rules).
GROUP_POLICY = """package llm.models

deny contains {"code": "group_required", "message": "gpt-4o is for members of ml-engineers"} if {
	input.request.endpoint != "models.list"
	input.request.model == "gpt-4o"
	not "ml-engineers" in object.get(input.identity.claims, "groups", [])
}

deny contains {"code": "user_blocked", "message": "this user may not call models"} if {
	input.identity.user in {"mallory@example.com", "MALLORY_DIGEST"}
}
""".replace("MALLORY_DIGEST", body_user("mallory@example.com", None))  # a body's user reaches policy as its digest


@pytest.fixture
def idp(servers: ServerThread) -> Iterator[JwksServer]:
    server = JwksServer([signing_key("idp-1")])
    runner, port = servers.start_app(server.build_app())
    server.issuer = f"http://127.0.0.1:{port}"
    yield server
    servers.stop_app(runner)


def issuer(server: JwksServer, **overrides: Any) -> dict[str, Any]:
    return {"issuer": server.issuer, "audiences": ["llm-policy-proxy"],
            "identity": {"app": {"claim": "azp"},
                         "team": {"claim": "groups", "map": {"ml-engineers": "research", "analysts": "research"}},
                         "user": {"claim": "email"}},
            "admin": {"claim": "groups", "any_of": ["platform-admins"]}, "policy_claims": ["groups"], **overrides}


@pytest.fixture
def jwt_proxy(make_proxy: ProxyFactory, idp: JwksServer, tmp_path: Path) -> ProxyHandle:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "groups.rego").write_text(GROUP_POLICY)
    return make_proxy(policy__dir=str(policies), auth__jwt={"issuers": [issuer(idp)], "refetch_min_interval_s": 0},
                      egress={"enabled": True, "port": 0})


def token(idp: JwksServer, claims: dict[str, Any], **changes: Any) -> str:
    return mint(idp.keys[0], claims_for(idp.issuer, **claims) | changes)


def test_a_policy_allows_a_model_only_for_an_idp_group(jwt_proxy: ProxyHandle, idp: JwksServer,
                                                       upstream: UpstreamHandle) -> None:
    engineer = jwt_proxy.client(token(idp, ENGINEER))
    assert engineer.chat.completions.create(model="gpt-4o", messages=HELLO).choices[0].message.content
    analyst = jwt_proxy.client(token(idp, ANALYST))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        analyst.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "group_required"
    # Same team (research, which may use any model): only the group claim tells them apart.
    assert analyst.chat.completions.create(model="gpt-4o-mini", messages=HELLO).choices
    assert len(upstream.model.received) == 2


def test_a_rotated_issuer_key_works_without_a_restart(jwt_proxy: ProxyHandle, idp: JwksServer) -> None:
    assert jwt_proxy.client(token(idp, ENGINEER)).models.list().data
    idp.rotate(signing_key("idp-2"))
    assert jwt_proxy.client(token(idp, ENGINEER)).models.list().data


def _refusals(idp: JwksServer) -> dict[str, str]:
    key = idp.keys[0]
    good = claims_for(idp.issuer, **ENGINEER)
    other = signing_key("elsewhere")
    return {
        "alg_none": forge({"alg": "none", "kid": key.kid}, good),
        "hs256_with_the_public_key": forge({"alg": "HS256", "kid": key.kid}, good, key.public_pem()),
        "expired": token(idp, ENGINEER, exp=1_000_000_000),
        "not_yet_valid": token(idp, ENGINEER, nbf=4_000_000_000),
        "wrong_issuer": token(idp, ENGINEER, iss="https://accounts.example.com"),
        "wrong_audience": token(idp, ENGINEER, aud="another-service"),
        "missing_exp": mint(key, {k: v for k, v in good.items() if k != "exp"}),
        "unknown_key": mint(other, good),
        "malformed": "eyJhbGciOiJSUzI1NiJ9.not-base64!.x",
        "tampered": token(idp, ENGINEER)[:-6] + "AAAAAA",
    }


@pytest.mark.parametrize("case", list(_refusals(JwksServer([signing_key("idp-1")], issuer="https://x"))))
def test_every_invalid_token_is_a_401_the_sdk_understands(case: str, jwt_proxy: ProxyHandle, idp: JwksServer,
                                                          upstream: UpstreamHandle) -> None:
    bad = _refusals(idp)[case]
    with pytest.raises(openai.AuthenticationError) as caught:
        jwt_proxy.client(bad).chat.completions.create(model="gpt-4o", messages=HELLO)
    error = caught.value
    assert error.status_code == 401 and error.code and error.code != "server_error"
    assert all(part[:16] not in error.response.text for part in bad.split(".") if len(part) >= 8)
    assert error.response.headers["x-request-id"]
    assert upstream.model.received == []


def test_the_tokens_user_wins_over_the_bodys(jwt_proxy: ProxyHandle, idp: JwksServer) -> None:
    # The token says ada; a body naming someone else (here a blocked user) changes nothing.
    reply = jwt_proxy.client(token(idp, ENGINEER)).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, user="mallory@example.com")
    assert reply.choices
    # With an API key the body's user is taken, which the policy sees as its digest (and blocks).
    with pytest.raises(openai.PermissionDeniedError) as caught:
        jwt_proxy.client(KEYS["research"]).chat.completions.create(model="gpt-4o-mini", messages=HELLO,
                                                                   user="mallory@example.com")
    assert caught.value.code == "user_blocked"


def test_admin_routes_by_claim_show_key_usage(jwt_proxy: ProxyHandle, idp: JwksServer) -> None:
    jwt_proxy.client(KEYS["payments"]).models.list()
    admin = token(idp, {**ENGINEER, "groups": ["ml-engineers", "platform-admins"]})
    rows = httpx.get(jwt_proxy.root + "/admin/keys", headers={"Authorization": f"Bearer {admin}"}).json()["data"]
    payments = next(row for row in rows if row["id"] == "k-payments")
    assert payments["requests"] == 1 and payments["last_used_at"] and payments["status"] == "active"
    assert all("sha256" not in row for row in rows)
    denied = httpx.get(jwt_proxy.root + "/admin/keys", headers={"Authorization": f"Bearer {token(idp, ENGINEER)}"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "admin_required"
    by_key = httpx.get(jwt_proxy.root + "/admin/keys", headers={"Authorization": f"Bearer {KEYS['admin']}"})
    assert by_key.status_code == 200


def test_the_egress_proxy_knows_a_caller_by_its_jwt(jwt_proxy: ProxyHandle, idp: JwksServer) -> None:
    with socket.create_connection(("127.0.0.1", jwt_proxy.app[COMPONENTS].egress.port), timeout=5) as sock:
        sock.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
                     b"Proxy-Authorization: Bearer " + token(idp, ENGINEER).encode() + b"\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 403")
    rows = httpx.get(jwt_proxy.root + "/admin/shadow-ai", params={"since": "1h"},
                     headers={"Authorization": f"Bearer {KEYS['admin']}"}).json()["data"]
    assert [(row["app"], row["provider"]) for row in rows] == [("notebook", "openai")]


def test_malformed_authorization_headers_are_401_never_500(jwt_proxy: ProxyHandle) -> None:
    printable = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=120)
    values = st.one_of(printable, st.tuples(printable, printable, printable).map(".".join),
                       printable.map(lambda v: "Bearer " + v), printable.map(lambda v: "Bearer eyJ" + v + ".e.e"))
    with httpx.Client(base_url=jwt_proxy.root, timeout=10) as client:
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(values)
        def check(value: str) -> None:
            value = value.strip()
            response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO},
                                   headers={"Authorization": value} if value else {})
            assert response.status_code == 401, response.text
            assert response.json()["error"]["type"] == "invalid_request_error"
        check()

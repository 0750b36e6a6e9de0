"""What the request path writes down, through the real app: one audit line and one decision per model call,
request ids on every route, endpoints named, and the body's `user` never in clear."""

from __future__ import annotations

import httpx
import openai
from structlog.testing import capture_logs

from tests.conftest import ProxyHandle
from tests.support.config import KEYS

HELLO = [{"role": "user", "content": "Hi"}]
AUTH = {"Authorization": f"Bearer {KEYS['research']}"}


def test_public_routes_answer_with_a_request_id(proxy: ProxyHandle) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        response = httpx.get(proxy.root + path)
        assert response.status_code == 200, path
        assert len(response.headers["x-request-id"]) >= 16, path
    echoed = httpx.get(proxy.root + "/healthz", headers={"x-request-id": "probe-7"})
    assert echoed.headers["x-request-id"] == "probe-7"


def test_model_listing_is_counted_as_endpoint_models(proxy: ProxyHandle) -> None:
    with capture_logs() as logs:
        assert httpx.get(proxy.root + "/v1/models", headers=AUTH).status_code == 200
        assert httpx.get(proxy.root + "/v1/models/gpt-4o", headers=AUTH).status_code == 200
    assert [line["endpoint"] for line in logs if line["event"] == "request"] == ["models", "models"]
    metrics = httpx.get(proxy.root + "/metrics").text
    assert 'llm_proxy_requests_total{app="notebook",decision="none",endpoint="models"' in metrics
    assert 'endpoint="other"' not in metrics


def test_a_model_call_logs_one_request_line_and_one_decision(proxy: ProxyHandle) -> None:
    client = proxy.client(KEYS["research"])
    for user in ("first-caller@example.com", "first-caller@example.com", "second-caller@example.com"):
        with capture_logs() as logs:
            client.chat.completions.create(model="gpt-4o", messages=HELLO, user=user)
        events = [line["event"] for line in logs]
        # A new identity was decided twice before the scopes had their own entry point.
        assert events.count("decision") == 1 and events.count("request") == 1, events
        assert "caller@example.com" not in str(logs)
        [request] = [line for line in logs if line["event"] == "request"]
        assert request["user"].startswith("u-") and request["decision"] == "allow"


def test_the_same_body_user_is_the_same_digest_and_different_users_differ(proxy: ProxyHandle) -> None:
    client = proxy.client(KEYS["research"])
    seen = []
    for user in ("ada@example.com", "ada@example.com", "bob@example.com"):
        with capture_logs() as logs:
            client.chat.completions.create(model="gpt-4o", messages=HELLO, user=user)
        [decision] = [line for line in logs if line["event"] == "decision"]
        assert decision["input"]["identity"]["user"] == decision["input"]["request"]["user"]
        seen.append(decision["input"]["identity"]["user"])
    assert seen[0] == seen[1] != seen[2]


def test_a_denied_call_is_written_down_once_with_its_reason(proxy: ProxyHandle) -> None:
    client = proxy.client(KEYS["research"])
    with capture_logs() as logs:
        try:
            client.chat.completions.create(model="gpt-4o", messages=[
                {"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE"}])
        except openai.PermissionDeniedError as exc:
            assert exc.response.headers["x-request-id"]
        else:
            raise AssertionError("a secret in the prompt must be refused")
    [request] = [line for line in logs if line["event"] == "request"]
    assert request["status"] == 403 and request["decision"] == "deny"
    assert request["reason_codes"] == ("pii_blocked",) and request["error_code"] == "pii_blocked"
    assert [line["event"] for line in logs].count("decision") == 1

"""The request path's pure stages: parse, the end user's digest, deny, and which usage is settled."""

from __future__ import annotations

import orjson
import pytest

from proxy.endpoints import CHAT
from proxy.endpoints.base import Usage
from proxy.errors import BadRequest, Forbidden
from proxy.gateway.decide import Decided
from proxy.gateway.pipeline import allowed_or_denied, body_user, parse
from proxy.policy.decision import Decision, Reason

KEY = b"k" * 32


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "empty"),
    (b"{", "could not parse"),
    (b"\xff", "UTF-8"),
    (b"[1]", "must be a JSON object"),
])
def test_unreadable_bodies_are_a_400_that_says_why(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse(CHAT, raw, None)


@pytest.mark.parametrize("key", [None, KEY])
def test_the_body_user_is_parsed_as_a_stable_digest_never_the_value(key: bytes | None) -> None:
    raw = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "ada@example.com"})
    first, again = parse(CHAT, raw, key), parse(CHAT, raw, key)
    assert first.user == again.user == body_user("ada@example.com", key)
    assert first.user is not None and first.user.startswith("u-") and "ada" not in first.user
    assert first.body["user"] == "ada@example.com"  # what is forwarded is the caller's own body


def test_the_digest_depends_on_the_key_and_the_user() -> None:
    assert len({body_user("ada", None), body_user("ada", KEY), body_user("bob", KEY)}) == 3


def test_allowed_decisions_give_the_answers_headers_and_denials_raise_403_with_them() -> None:
    allowed = Decided(Decision(allow=True, headers={"x-note": "n"}), "rev-1", {}, 0.0, ())
    assert allowed_or_denied(allowed, "req-1") == {"x-request-id": "req-1", "x-policy-revision": "rev-1",
                                                   "x-note": "n"}
    denied = Decided(Decision(allow=False, reasons=(Reason("pii_blocked", "a secret"),)), "rev-2", {}, 0.0, ())
    with pytest.raises(Forbidden) as raised:
        allowed_or_denied(denied, "req-2")
    assert raised.value.code == "pii_blocked"
    assert raised.value.headers["x-request-id"] == "req-2" and raised.value.headers["x-policy-revision"] == "rev-2"


def test_usage_merging_keeps_the_largest_counts() -> None:
    assert Usage(1, 2, 0).merged(Usage(3, 1, 1)) == Usage(3, 2, 1)

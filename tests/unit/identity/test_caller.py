"""The Identity value: hashable with its claims, and a token's user is not overridden by the body."""

from __future__ import annotations

from structlog.testing import capture_logs

from proxy.identity import Claims, Identity


def test_claims_are_canonical_and_part_of_equality() -> None:
    one = Identity("a", "t", "u", None, "jwt", claims=Claims.of({"b": [1, 2], "a": {"y": 1, "x": 2}}))
    same = Identity("a", "t", "u", None, "jwt", claims=Claims.of({"a": {"x": 2, "y": 1}, "b": [1, 2]}))
    other = Identity("a", "t", "u", None, "jwt", claims=Claims.of({"b": [2, 1]}))
    assert one == same and hash(one) == hash(same) and one != other
    assert one.claims.to_json() == {"a": {"x": 2, "y": 1}, "b": [1, 2]}
    assert Claims.of({}) == Identity("a", "t", None, None, "api_key").claims


def test_methods() -> None:
    assert [Identity("a", "t", None, None, source).method for source in ("api_key", "jwt", "sidecar", "anonymous")] \
        == ["key", "jwt", "sidecar", "none"]


def test_a_token_named_user_wins_over_the_body_and_the_mismatch_is_logged() -> None:
    token = Identity("a", "t", "ada@example.com", None, "jwt", claims=Claims.of({"groups": ["g"]}))
    with capture_logs() as logs:
        assert token.with_user("mallory@example.com") is token
        assert token.with_user("ada@example.com") is token
    assert [entry["event"] for entry in logs] == ["end_user_override_ignored"]
    assert "mallory@example.com" not in str(logs) and "ada@example.com" not in str(logs)


def test_other_identities_take_the_end_user_from_the_request() -> None:
    nameless_token = Identity("a", "t", None, None, "jwt", claims=Claims.of({"g": 1}))
    assert nameless_token.with_user("u-1") == Identity("a", "t", "u-1", None, "jwt", claims=Claims.of({"g": 1}))
    key = Identity("a", "t", "configured", "k-1", "api_key", admin=True)
    assert key.with_user("u-2") == Identity("a", "t", "u-2", "k-1", "api_key", admin=True)
    assert key.with_user(None) is key

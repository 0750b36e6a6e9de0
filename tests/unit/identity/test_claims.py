"""Claims to app, team, user, admin and the policy's allow-listed subset (pure)."""

from __future__ import annotations

import pytest

from proxy.identity.claims import UnmappedClaims, apply_rule, claim_at, is_admin, map_identity, policy_claims
from proxy.identity.config import AdminRule, ClaimRule, IdentityClaims

K8S = {"sub": "system:serviceaccount:ml:trainer", "groups": ["b", "a"],
       "kubernetes.io": {"namespace": "ml", "serviceaccount": {"name": "trainer"}, "pods": [{"name": "p0"}]},
       "odd/name": {"til~de": "x"}, "n": 7, "flag": True}


@pytest.mark.parametrize(("path", "value"), [
    ("sub", "system:serviceaccount:ml:trainer"),
    ("kubernetes.io", K8S["kubernetes.io"]),
    ("/kubernetes.io/serviceaccount/name", "trainer"),
    ("/kubernetes.io/pods/0/name", "p0"),
    ("/kubernetes.io/pods/1/name", None),
    ("/kubernetes.io/pods/00/name", None),
    ("/odd~1name/til~0de", "x"),
    ("/kubernetes.io/missing", None),
    ("/sub/deeper", None),
])
def test_claim_paths_are_names_or_json_pointers(path: str, value: object) -> None:
    assert claim_at(K8S, path) == value


def test_a_list_claim_maps_by_the_tables_order_not_the_tokens() -> None:
    rule = ClaimRule(claim=("groups",), map={"a": "team-a", "b": "team-b"})
    assert apply_rule(rule, K8S) == "team-a"
    assert apply_rule(ClaimRule(claim=("groups",), map={"z": "zz"}), K8S) is None
    assert apply_rule(ClaimRule(claim=("groups",), map={"z": "zz"}, default="everyone"), K8S) == "everyone"


def test_fallback_claims_defaults_and_non_text_values() -> None:
    assert apply_rule(ClaimRule(claim=("email", "sub")), K8S) == "system:serviceaccount:ml:trainer"
    assert apply_rule(ClaimRule(claim=("n",)), K8S) == "7"
    assert apply_rule(ClaimRule(claim=("flag",)), K8S) is None  # booleans are not names
    assert apply_rule(ClaimRule(claim=("groups",)), K8S) is None  # a list needs a map to choose from
    assert apply_rule(ClaimRule(claim=("kubernetes.io",), default="d"), K8S) == "d"
    assert apply_rule(ClaimRule(claim=("x",)), {"x": "line\nbreak"}) is None
    assert apply_rule(ClaimRule(claim=("x",)), {"x": "y" * 257}) is None
    assert apply_rule(ClaimRule(default="fixed"), {}) == "fixed"


def test_admin_by_claim_value_in_a_string_or_list() -> None:
    rule = AdminRule(claim="groups", any_of=("a",))
    assert is_admin(rule, K8S) and not is_admin(rule, {"groups": "b"}) and is_admin(rule, {"groups": "a"})
    assert not is_admin(None, K8S) and not is_admin(rule, {})


def test_unmapped_team_names_the_rule_never_the_values() -> None:
    rules = IdentityClaims(app=ClaimRule(claim=("sub",)), team=ClaimRule(claim=("groups",), map={"z": "zz"}))
    with pytest.raises(UnmappedClaims) as caught:
        map_identity(rules, None, {**K8S, "groups": ["secret-project-x"]})
    assert "team" in str(caught.value) and "groups" in str(caught.value)
    assert "secret-project-x" not in str(caught.value)


def test_policy_claims_keep_the_issued_nesting() -> None:
    chosen = policy_claims(K8S, ["groups", "/kubernetes.io/namespace", "/kubernetes.io/serviceaccount/name",
                                 "absent", "/odd~1name/til~0de"])
    assert chosen == {"groups": ["b", "a"], "kubernetes.io": {"namespace": "ml", "serviceaccount": {"name": "trainer"}},
                      "odd/name": {"til~de": "x"}}
    # A shorter path first copies the whole value; a longer one after it adds nothing twice.
    assert policy_claims(K8S, ["kubernetes.io", "/kubernetes.io/namespace"]) == {"kubernetes.io": K8S["kubernetes.io"]}
    assert policy_claims(K8S, ["sub", "/sub/x"]) == {"sub": K8S["sub"]}

"""Session ids sealed to their caller: only the caller and server they were issued for can open them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.identity import Identity
from proxy.mcp.sessions import SessionSeal, principal

SEAL = SessionSeal(b"k" * 32)
ANN = principal(Identity("billing", "payments", None, "k-ann", "api_key"))
BOB = principal(Identity("billing", "payments", None, "k-bob", "api_key"))


def test_a_sealed_id_opens_for_its_caller_and_server_only() -> None:
    sealed = SEAL.seal("crm", ANN, "abc-123")
    assert sealed != "abc-123" and sealed.startswith("abc-123.")
    assert SEAL.open("crm", ANN, sealed) == "abc-123"
    assert SEAL.open("crm", BOB, sealed) is None
    assert SEAL.open("mail", ANN, sealed) is None
    assert SessionSeal(b"x" * 32).open("crm", ANN, sealed) is None


@pytest.mark.parametrize("presented", ["abc-123", "", ".", "abc-123.", ".0123456789abcdef0123456789abcdef",
                                       "abc-123.0123456789abcdef0123456789abcdef", "abc-123.00"])
def test_raw_truncated_or_forged_ids_do_not_open(presented: str) -> None:
    assert SEAL.open("crm", ANN, presented) is None


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80))
def test_any_upstream_id_round_trips_and_a_changed_tag_never_opens(upstream_id: str) -> None:
    sealed = SEAL.seal("crm", ANN, upstream_id)
    assert SEAL.open("crm", ANN, sealed) == upstream_id
    flipped = sealed[:-1] + ("0" if sealed[-1] != "0" else "1")
    assert SEAL.open("crm", ANN, flipped) is None


def test_caller_fields_are_not_ambiguous() -> None:
    # "a" + "b\x00" must not equal "a\x00" + "b": the separator cannot occur in what it separates here,
    # but different identities must still give different owners.
    first = principal(Identity("a", "b", None, None, "sidecar"))
    second = principal(Identity("a", "b", "u", None, "sidecar"))
    assert first != second


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SessionSeal(b"short")

"""The secret gates: searched as one pattern or one per anchor character, they find the same prefixes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.pii.patterns import SECRET_GATE, SECRET_GATES

PIECES = st.sampled_from(["ghp_", "gho_", "github_pat_", "sk_live_", "rk_test_", "xoxb-", "xapp-", "sk-",
                          "-----BEGIN ", "https://", "a:", "AKIA", "ASIA", "AIza", "eyJ", "A", "J", "_", "-", ":",
                          "//", " ", "x", "k"])


@given(st.lists(PIECES, max_size=30))
def test_one_pattern_and_one_per_anchor_find_the_same_gates(pieces: list[str]) -> None:
    text = "".join(pieces)
    one = [(m.start(), m.lastgroup) for m in SECRET_GATE.finditer(text)]
    per_anchor = sorted((m.start(), m.lastgroup) for anchor, gate in SECRET_GATES if anchor in text
                        for m in gate.finditer(text))
    assert one == per_anchor

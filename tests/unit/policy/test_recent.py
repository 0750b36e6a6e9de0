"""Recent inputs: bounded, newest first, one slot per distinct request, never prompt text."""

from __future__ import annotations

from proxy.policy.embedded import EmbeddedRego
from proxy.policy.recent import RecentInputs, record_input
from proxy.policy.samples import decision_input

DECISION = "data.llm.main.decision"


def test_prompt_text_is_never_kept() -> None:
    recent = RecentInputs()
    doc = decision_input()
    doc["request"]["prompt"] = "my card is 4111 1111 1111 1111"
    recent.record(DECISION, doc)
    (kept,) = recent.samples()[DECISION]
    assert "prompt" not in kept.input["request"]
    assert "4111" not in str(kept.input)
    assert doc["request"]["prompt"]  # the caller's document is left alone


def test_bounded_newest_first_and_one_slot_per_distinct_input() -> None:
    recent = RecentInputs(size=3)
    for i in range(5):
        doc = decision_input()
        doc["identity"]["team"] = f"team-{i}"
        recent.record(DECISION, doc)
    again = decision_input()
    again["identity"]["team"] = "team-2"
    again["time"]["unix"] += 60  # the same request a minute later
    recent.record(DECISION, again)
    kept = recent.samples()[DECISION]
    assert [s.input["identity"]["team"] for s in kept] == ["team-2", "team-4", "team-3"]
    assert kept[0].name == "recent:llm.main.decision#0 (team-2/billing-api)"
    assert len(recent) == 3


def test_unknown_entry_points_and_engines_without_a_recorder_are_ignored() -> None:
    recent = RecentInputs()
    recent.record("data.other.rule", {"x": 1})
    assert len(recent) == 0
    record_input(object(), DECISION, decision_input())  # e.g. the OPA server engine: nothing to do
    assert not hasattr(EmbeddedRego, "recent")

"""Shadow evaluation: a candidate version's differences from the live decision become events."""

from __future__ import annotations

import json
from pathlib import Path

from proxy.policy.embedded import EmbeddedRego
from proxy.policy.shadow import JsonlSink, ShadowEvaluator
from tests.unit.policy.conftest import make_input


def stricter_candidate(root: Path) -> EmbeddedRego:
    path = root / "data" / "limits.json"
    path.write_text(path.read_text().replace('"max_prompt_tokens": 32000', '"max_prompt_tokens": 100'))
    return EmbeddedRego.from_dir(root)


async def test_same_decision_is_no_difference(embedded: EmbeddedRego, policy_copy: Path) -> None:
    shadow = ShadowEvaluator(EmbeddedRego.from_dir(policy_copy))
    doc = make_input()
    assert await shadow.compare(doc, await embedded.evaluate(doc), live_revision=embedded.revision) is None


async def test_stricter_candidate_reports_allow_and_reason_changes(embedded: EmbeddedRego, policy_copy: Path,
                                                                  tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "shadow.jsonl")
    candidate = stricter_candidate(policy_copy)
    shadow = ShadowEvaluator(candidate, sink=sink)
    doc = make_input(prompt_tokens=812)
    difference = await shadow.compare(doc, await embedded.evaluate(doc), live_revision=embedded.revision,
                                      request_id="req-1")
    sink.close()
    assert difference is not None
    assert difference.kinds == ("allow", "reasons")
    assert difference.candidate["reasons"] == ["prompt_too_large"]
    event = json.loads((tmp_path / "shadow.jsonl").read_text())
    assert event["event"] == "policy_shadow_difference"
    assert event["request_id"] == "req-1"
    assert event["live"]["revision"] == embedded.revision
    assert event["candidate"]["revision"] == candidate.revision


async def test_obligation_change_is_reported_by_key(embedded: EmbeddedRego, policy_copy: Path) -> None:
    path = policy_copy / "data" / "limits.json"
    path.write_text(path.read_text().replace('"max_tokens": 2048', '"max_tokens": 1024'))
    shadow = ShadowEvaluator(EmbeddedRego.from_dir(policy_copy))
    doc = make_input(max_tokens=None)
    difference = await shadow.compare(doc, await embedded.evaluate(doc))
    assert difference is not None
    assert difference.kinds == ("obligations",)
    assert difference.obligations_changed == ("max_tokens",)


async def test_events_carry_no_prompt_text(embedded: EmbeddedRego, policy_copy: Path) -> None:
    events: list[dict[str, object]] = []
    shadow = ShadowEvaluator(stricter_candidate(policy_copy), sink=events.append)
    doc = make_input()
    doc["request"]["prompt"] = "the secret plan"
    await shadow.compare(doc, await embedded.evaluate(doc))
    assert events and "secret plan" not in json.dumps(events)

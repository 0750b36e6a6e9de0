"""Shadow evaluation: a candidate version's differences from the live decision become events."""

from __future__ import annotations

import json
from pathlib import Path

from proxy.policy.embedded import EmbeddedRego
from proxy.policy.errors import PolicyEngineError
from proxy.policy.reload import PolicyReloader
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
    # Who would be affected, for the security team's report: names from config and catalogue only.
    assert {k: event[k] for k in ("team", "app", "model", "endpoint")} == {
        "team": "payments", "app": "billing-api", "model": "gpt-4o", "endpoint": "chat.completions"}


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


async def test_candidate_errors_say_who_was_affected(embedded: EmbeddedRego) -> None:
    class Broken:
        revision = "r-broken"

        async def evaluate(self, input: dict[str, object]) -> object:
            raise PolicyEngineError("evaluating data.llm.main.decision: boom")

    events: list[dict[str, object]] = []
    shadow = ShadowEvaluator(Broken(), sink=events.append)  # type: ignore[arg-type]
    doc = make_input(model="o1")
    await shadow.compare(doc, await embedded.evaluate(doc))
    (event,) = events
    assert event["kinds"] == ["error"] and event["model"] == "o1" and event["team"] == "payments"


async def test_inputs_the_candidate_decided_are_kept_for_its_next_version(embedded: EmbeddedRego,
                                                                         policy_copy: Path) -> None:
    candidate = await PolicyReloader(policy_copy, policy="shadow").start(watch=False)
    try:
        doc = make_input()
        doc["request"]["prompt"] = "the secret plan"
        await ShadowEvaluator(candidate).compare(doc, await embedded.evaluate(doc))
        (kept,) = candidate.recent.samples()["data.llm.main.decision"]
        assert "prompt" not in kept.input["request"]
    finally:
        await candidate.close()

"""Decision log events in OPA's shape."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from proxy.policy.decision import Decision, Reason
from proxy.policy.decision_log import decision_event, rfc3339, write
from proxy.telemetry.logging import get_logger
from tests.unit.policy.conftest import make_input


def test_event_has_opa_decision_log_fields() -> None:
    doc = make_input()
    event = decision_event(
        decision_id="d-1", entrypoint="data.llm.main.decision", input=doc, result=Decision(allow=True).as_dict(),
        revision="sha256:abc", eval_ns=41_000, timestamp=1_700_000_000.25, request_id="req-9",
        labels={"id": "proxy-1", "version": "0.1.0"},
    )
    assert event["decision_id"] == "d-1"
    assert event["path"] == "llm/main/decision"
    assert event["bundles"] == {"policies": {"revision": "sha256:abc"}}
    assert event["labels"] == {"id": "proxy-1", "version": "0.1.0"}
    assert event["input"] is doc
    assert event["result"] == {"allow": True, "reasons": [], "audit": []}
    assert event["timestamp"] == "2023-11-14T22:13:20.250000Z"
    assert event["metrics"] == {"timer_rego_query_eval_ns": 41_000}
    assert event["request_id"] == "req-9"
    assert "error" not in event


def test_engine_error_is_recorded() -> None:
    event = decision_event(decision_id="d", entrypoint="data.llm.main.decision", input={}, result=None,
                           revision="r", eval_ns=0, timestamp=0, error="OPA unreachable")
    assert event["error"] == {"code": "policy_engine_error", "message": "OPA unreachable"}
    assert rfc3339(0) == "1970-01-01T00:00:00.000000Z"


def test_timestamps_are_utc_with_microseconds() -> None:
    assert rfc3339(1_790_000_000.123456) == "2026-09-21T14:13:20.123456Z"
    # Rounding to the microsecond may carry into the next second.
    assert rfc3339(59.9999996) == "1970-01-01T00:01:00.000000Z"
    assert rfc3339(951_782_400.5) == "2000-02-29T00:00:00.500000Z"


def test_timestamps_match_datetime_to_the_microsecond() -> None:
    import datetime as dt
    import random

    rng = random.Random(1)
    for _ in range(20000):
        stamp = rng.choice([rng.uniform(0, 4e9), rng.randint(0, 4 * 10**9) + rng.choice([0.5, 0.9999995, 5e-7])])
        moment = dt.datetime.fromtimestamp(stamp, tz=dt.UTC)
        assert rfc3339(stamp) == moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z", stamp


def event_for(result: dict[str, object] | None, detail: str = "compact", **changes: object) -> dict[str, object]:
    doc = make_input() | changes
    return decision_event(decision_id="d", entrypoint="data.llm.main.decision", input=doc, result=result,
                          revision="r", eval_ns=1, timestamp=0, detail=detail)  # type: ignore[arg-type]


def test_a_clean_allow_is_compact_with_the_request_and_identity_only() -> None:
    event = event_for(Decision(allow=True, max_tokens=512).as_dict())
    doc = make_input()
    assert event["input"] == {"request": doc["request"], "identity": doc["identity"]}
    assert event["detail"] == "compact" and event["result"] == {"allow": True, "reasons": [], "audit": [],
                                                                 "max_tokens": 512}


@pytest.mark.parametrize("result", [
    Decision(allow=False, reasons=(Reason("model_not_allowed", "no"),)),
    Decision(allow=True, audit=(Reason("pii_email", "would deny"),)),
    Decision(allow=True, model="gpt-4o-mini"),  # a rewrite: the input asked for another model
], ids=["deny", "audit", "model_rewrite"])
def test_anything_but_a_clean_allow_keeps_the_whole_input(result: Decision) -> None:
    event = event_for(result.as_dict())
    assert event["input"] == make_input() and "detail" not in event


FOUND = {"types": ["email"], "counts": {"email": 1}, "findings": [{"type": "email", "path": "messages[0].content"}]}


@pytest.mark.parametrize("result", [Decision(allow=True, redact=("email",)), Decision(allow=True, restore=True)],
                         ids=["redact", "restore"])
def test_redaction_obligations_keep_the_whole_input_only_when_pii_was_found(result: Decision) -> None:
    # The shipped policies name their redact types on every allow; with nothing found they change nothing.
    assert event_for(result.as_dict())["detail"] == "compact"
    found = event_for(result.as_dict(), pii=FOUND)
    assert found["input"]["pii"] == FOUND and "detail" not in found  # type: ignore[index]


def test_pii_found_or_an_engine_error_keeps_the_whole_input_and_full_keeps_it_always() -> None:
    found = {"types": ["email"], "findings": [{"type": "email", "count": 1, "path": "messages[0].content"}]}
    assert event_for(Decision(allow=True).as_dict(), pii=found)["input"]["pii"] == found  # type: ignore[index]
    assert "detail" not in event_for(None)
    assert event_for(Decision(allow=True).as_dict(), detail="full")["input"] == make_input()
    same_model = make_input()["request"]["model"]
    assert event_for(Decision(allow=True, model=same_model).as_dict())["detail"] == "compact"


def test_an_engine_error_is_written_at_error_and_a_decision_at_info() -> None:
    with capture_logs() as logs:
        write(get_logger("decision_log"), event_for(None) | {"error": {"code": "policy_engine_error"}})
        write(get_logger("decision_log"), event_for(Decision(allow=True).as_dict()))
    assert [(line["event"], line["log_level"]) for line in logs] == [("decision", "error"), ("decision", "info")]

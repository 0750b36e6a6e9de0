"""Decision log events in OPA's shape."""

from __future__ import annotations

from proxy.policy.decision import Decision
from proxy.policy.decision_log import decision_event, rfc3339
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

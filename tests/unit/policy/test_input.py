"""build_input: the documented v1 shape, no prompt text unless asked, budgets keyed by scope."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema
import orjson
from referencing import Registry, Resource

from proxy.policy.bundle import default_policy_dir
from proxy.policy.input import (
    BudgetState,
    Estimate,
    PiiFinding,
    RequestFacts,
    build_egress_input,
    build_input,
    build_models_input,
)
from tests.unit.policy.conftest import GPT_4O, NOW, PAYMENTS, make_input, spend

SCHEMAS = default_policy_dir() / "schema"


ESTIMATE = Estimate(prompt_tokens=10, max_output_tokens=10, max_cost_usd=0.001)


def validator(name: str) -> jsonschema.Draft202012Validator:
    schemas = [json.loads(path.read_text()) for path in SCHEMAS.glob("*.json")]
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def test_input_matches_schema() -> None:
    doc = make_input(pii=(PiiFinding("email", 2, "messages[0].content"),), budget=(spend("team:payments", 50),))
    validator("input.v1.json").validate(doc)
    assert doc["version"] == 1
    assert doc["request"]["tools"] == ["search"]
    assert doc["pii"] == {
        "types": ["email"],
        "counts": {"email": 2},
        "findings": [{"type": "email", "count": 2, "path": "messages[0].content"}],
    }


def test_unknown_model_is_null() -> None:
    doc = make_input(model="gpt-9", facts=None)
    assert doc["model"] is None
    validator("input.v1.json").validate(doc)


def test_no_prompt_text_unless_operator_opts_in() -> None:
    request = RequestFacts(endpoint="chat.completions", model="gpt-4o")
    args = (request, PAYMENTS, GPT_4O, ESTIMATE, (), (), NOW)
    secret = "my card is 4111 1111 1111 1111"
    assert secret not in orjson.dumps(build_input(*args, prompt_text=secret)).decode()
    assert "prompt" not in build_input(*args, prompt_text=secret)["request"]
    assert build_input(*args, include_prompt=True, prompt_text=secret)["request"]["prompt"] == secret


def test_counts_add_up_across_paths() -> None:
    doc = make_input(pii=(PiiFinding("email", 1, "messages[0].content"), PiiFinding("email", 2, "messages[1].content")))
    assert doc["pii"]["counts"] == {"email": 3}
    assert doc["pii"]["types"] == ["email"]


def test_budget_keeps_the_window_closest_to_exhaustion_per_scope() -> None:
    day = BudgetState("team:payments", spent_usd=9.5, percent=95.0, window="day", limit_usd=10.0, remaining_usd=0.5)
    month = BudgetState("team:payments", spent_usd=100, percent=20.0, window="month", limit_usd=500, remaining_usd=400)
    doc = make_input(budget=(month, day))
    assert list(doc["budget"]) == ["team:payments"]
    assert doc["budget"]["team:payments"]["window"] == "day"


def test_time_fields_are_utc() -> None:
    doc = make_input()
    moment = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    assert doc["time"] == {"unix": NOW, "weekday": moment.isoweekday(), "hour_utc": moment.hour}


def test_models_and_egress_inputs_match_their_schemas() -> None:
    validator("models_input.v1.json").validate(build_models_input(PAYMENTS, ["gpt-4o"]))
    validator("egress_input.v1.json").validate(build_egress_input("api.openai.com", 443, "CONNECT", PAYMENTS))


"""The demo's JSON for a schema is valid against it: SDK-generated schemas and random ones."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from proxy.demo.schema_values import SchemaValues


class Address(BaseModel):
    street: str
    zip_code: str = Field(min_length=5, max_length=5)


class Person(BaseModel):
    name: str
    age: int = Field(ge=18, lt=130)
    score: float = Field(gt=0, lt=1)
    email: str = Field(json_schema_extra={"format": "email"})
    role: Literal["admin", "user"]
    tags: list[str] = Field(min_length=2)
    address: Address | None
    friends: list[Person] = []


SCHEMAS: list[dict[str, Any]] = [
    Person.model_json_schema(),
    {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 7, "minimum": 10}}, "required": ["n"]},
    {"type": "array", "items": {"type": ["string", "null"]}, "minItems": 3, "maxItems": 3},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
               {"properties": {"b": {"const": 5}}, "required": ["b"]}]},
    {"oneOf": [{"type": "null"}, {"type": "boolean"}]},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}},
     "additionalProperties": False},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_values_are_valid_against_sdk_schemas(schema: dict[str, Any]) -> None:
    jsonschema.validate(SchemaValues(schema, "Paris").value(), schema)


def test_strings_take_the_prompt_word() -> None:
    assert SchemaValues({"type": "object", "properties": {"city": {"type": "string"}}}, "Berlin").value() == \
        {"city": "Berlin"}


LEAF = st.one_of(
    st.just({"type": "string"}), st.just({"type": "boolean"}), st.just({"type": "null"}),
    st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
              st.integers(-50, 50), st.integers(0, 10)),
    st.builds(lambda n: {"type": "string", "minLength": n, "maxLength": n + 3}, st.integers(0, 20)),
    st.builds(lambda values: {"enum": values}, st.lists(st.integers() | st.text(max_size=3), min_size=1, max_size=3)))
SCHEMA = st.recursive(LEAF, lambda inner: st.one_of(
    st.builds(lambda props: {"type": "object", "properties": props, "required": sorted(props)[:1]},
              st.dictionaries(st.text(min_size=1, max_size=4), inner, max_size=3)),
    st.builds(lambda items, n: {"type": "array", "items": items, "minItems": n}, inner, st.integers(0, 2)),
    st.builds(lambda options: {"anyOf": options}, st.lists(inner, min_size=1, max_size=3))), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(schema=SCHEMA)
def test_values_are_valid_against_random_schemas(schema: dict[str, Any]) -> None:
    jsonschema.validate(SchemaValues(schema).value(), schema)


def test_a_recursive_schema_ends() -> None:
    schema = {"$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}},
                                 "required": ["child"]}}, "$ref": "#/$defs/Node"}
    SchemaValues(schema).value()  # terminates; required recursion cannot be valid, only bounded

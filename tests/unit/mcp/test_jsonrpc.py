"""Strict JSON-RPC parsing: what the gateway decides on is exactly what it forwards."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.mcp import jsonrpc


def test_duplicate_keys_are_decided_and_forwarded_as_one_value() -> None:
    # A parser that kept the first "name" would run send_mail while the gateway decided on lookup.
    body = jsonrpc.parse_body(b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
                              b'"params":{"name":"send_mail","name":"lookup"}}')
    [message] = body.messages
    assert message.name == "lookup"
    assert b"send_mail" not in jsonrpc.dumps(message.raw)


def test_kinds_are_told_apart() -> None:
    kinds = [m.kind for m in jsonrpc.parse_body(b'[{"jsonrpc":"2.0","id":"a","method":"ping"},'
                                                b'{"jsonrpc":"2.0","method":"notifications/initialized"},'
                                                b'{"jsonrpc":"2.0","id":3,"result":{}}]').messages]
    assert kinds == ["request", "notification", "response"]


def test_mcp_name_header_is_compared_decoded() -> None:
    [message] = jsonrpc.parse_body('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"grüß"}}'
                                   .encode()).messages
    encoded = "=?base64?" + base64.b64encode("grüß".encode()).decode() + "?="
    jsonrpc.check_headers(message, "tools/call", encoded)
    with pytest.raises(jsonrpc.InvalidMessage):
        jsonrpc.check_headers(message, "tools/call", "=?base64?!!!?=")


def test_nesting_is_measured_without_recursion() -> None:
    deep: object = []
    for _ in range(10_000):
        deep = [deep]
    assert jsonrpc.nesting({"a": deep}) > jsonrpc.MAX_DEPTH


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_invalid_message(raw: bytes) -> None:
    try:
        body = jsonrpc.parse_body(raw)
    except jsonrpc.InvalidMessage as exc:
        assert exc.code in (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST, jsonrpc.INVALID_PARAMS)
    else:
        assert body.messages

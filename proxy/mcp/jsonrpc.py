"""JSON-RPC 2.0 as MCP uses it: strict, pure parsing of a POST body into messages, and error messages.

The gateway forwards what it parsed, re-serialised, so the upstream reads exactly what was decided on
(no parser differential over duplicate keys or odd-but-valid JSON can smuggle a different call past it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

Kind = Literal["request", "notification", "response"]
RequestId = str | int

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
# Implementation-defined server errors (JSON-RPC reserves -32000..-32099); `data.code` names them in words.
POLICY_DENIED: Final = -32010
RATE_LIMITED: Final = -32011
POLICY_UNAVAILABLE: Final = -32012
UPSTREAM_ERROR: Final = -32013
UPSTREAM_TIMEOUT: Final = -32014

_BASE64_SENTINEL = ("=?base64?", "?=")
# Deeper params could not be scanned for PII (proxy/mcp/content.py), so they are refused here.
MAX_DEPTH = 64


class InvalidMessage(Exception):
    """A body or message the gateway refuses before any decision, answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.id = code, message, id


@dataclass(frozen=True, slots=True)
class Message:
    kind: Kind
    id: RequestId | None
    method: str | None
    params: Mapping[str, Any]
    raw: dict[str, Any]

    @property
    def name(self) -> str | None:
        """`params.name` (tools/call, prompts/get) or `params.uri` (resources/read), when a string."""
        for key in ("name", "uri"):
            value = self.params.get(key)
            if isinstance(value, str):
                return value
        return None


@dataclass(frozen=True, slots=True)
class Body:
    messages: tuple[Message, ...]
    batch: bool


def parse_body(raw: bytes) -> Body:
    if not raw.strip():
        raise InvalidMessage(INVALID_REQUEST, "The request body is empty; expected a JSON-RPC message.")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = "it is not valid UTF-8" if "UTF-8" in str(exc) else f"{exc.msg} at position {exc.pos}"
        raise InvalidMessage(PARSE_ERROR, f"Parse error: the body is not valid JSON ({detail}).") from None
    if isinstance(document, list):
        if not document:
            raise InvalidMessage(INVALID_REQUEST, "An empty JSON-RPC batch is not a valid request.")
        return Body(tuple(parse_message(item) for item in document), batch=True)
    return Body((parse_message(document),), batch=False)


def parse_message(document: object) -> Message:
    if not isinstance(document, dict):
        raise InvalidMessage(INVALID_REQUEST, "A JSON-RPC message must be a JSON object.")
    raw_id = document.get("id")
    id_ = raw_id if _valid_id(raw_id) else None
    if document.get("jsonrpc") != "2.0":
        raise InvalidMessage(INVALID_REQUEST, 'A JSON-RPC message must carry "jsonrpc": "2.0".', id_)
    if "id" in document and id_ is None:
        raise InvalidMessage(INVALID_REQUEST, "A JSON-RPC id must be a string or an integer.")
    params = document.get("params", {})
    if not isinstance(params, dict):
        raise InvalidMessage(INVALID_PARAMS if id_ is not None else INVALID_REQUEST,
                             "MCP params must be a JSON object.", id_)
    method = document.get("method")
    if "method" in document:
        if not isinstance(method, str) or not method:
            raise InvalidMessage(INVALID_REQUEST, "A JSON-RPC method must be a non-empty string.", id_)
        if "result" in document or "error" in document:
            raise InvalidMessage(INVALID_REQUEST, "A JSON-RPC request cannot carry a result or an error.", id_)
        message = Message("request" if id_ is not None else "notification", id_, method, params, document)
        _check_params(message)
        return message
    if id_ is None or ("result" in document) == ("error" in document):
        raise InvalidMessage(INVALID_REQUEST, "A JSON-RPC message needs a method (request or notification), "
                                              "or an id with exactly one of result and error (response).", id_)
    return Message("response", id_, None, {}, document)


def _valid_id(value: object) -> bool:
    # MCP: string or integer, never null; a bool is not an integer here, nor is a float.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _check_params(message: Message) -> None:
    """The params the gateway itself reads must have the shape the decision relies on."""
    params = message.params
    if nesting(params) > MAX_DEPTH:
        raise InvalidMessage(INVALID_PARAMS, f"params are nested deeper than {MAX_DEPTH} levels.", message.id)
    if message.method in ("tools/call", "prompts/get"):
        if not isinstance(params.get("name"), str) or not params["name"]:
            raise InvalidMessage(INVALID_PARAMS, f"{message.method} needs params.name (a non-empty string).",
                                 message.id)
        arguments = params.get("arguments", {})
        if not isinstance(arguments, dict):
            raise InvalidMessage(INVALID_PARAMS, f"{message.method} params.arguments must be an object.",
                                 message.id)
    if message.method == "resources/read" and (not isinstance(params.get("uri"), str) or not params["uri"]):
        raise InvalidMessage(INVALID_PARAMS, "resources/read needs params.uri (a non-empty string).", message.id)


def nesting(value: object) -> int:
    """How deep containers nest in a JSON value (iterative: a hostile value must not exhaust the stack)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return deepest


def check_headers(message: Message, method_header: str | None, name_header: str | None) -> None:
    """Request headers that mirror the body (protocol 2026-07-28) must agree with it: a server that routes on
    the header must not run something other than what the policy decided on."""
    if method_header is not None and method_header != message.method:
        raise InvalidMessage(INVALID_REQUEST, "HeaderMismatch: Mcp-Method does not match the body's method.",
                             message.id)
    if name_header is not None and decode_header_value(name_header) != message.name:
        raise InvalidMessage(INVALID_REQUEST, "HeaderMismatch: Mcp-Name does not match the body.", message.id)


def decode_header_value(value: str) -> str | None:
    start, end = _BASE64_SENTINEL
    if not (value.startswith(start) and value.endswith(end) and len(value) >= len(start) + len(end)):
        return value
    try:
        return base64.b64decode(value[len(start):-len(end)], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def error_message(id: RequestId | None, code: int, message: str, data: Mapping[str, Any] | None = None) \
        -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data:
        error["data"] = dict(data)
    return {"jsonrpc": "2.0", "id": id, "error": error}


def dumps(document: object) -> bytes:
    return orjson.dumps(document)

"""The proxy's own responses: status line, a JSON error body (or plain text), `Connection: close`. Pure."""

from __future__ import annotations

from http import HTTPStatus

import orjson

ESTABLISHED = b"HTTP/1.1 200 Connection Established\r\n\r\n"


def error_reply(status: int, code: str, message: str, **details: str | int | None) -> bytes:
    """An OpenAI-shaped error body, like the gateway's own errors, so SDK users see a familiar message."""
    error: dict[str, str | int | None] = {"code": code, "message": message, "type": "egress_error"}
    error.update({key: value for key, value in details.items() if value is not None})
    return _reply(status, "application/json", orjson.dumps({"error": error}))


def text_reply(status: int, text: str) -> bytes:
    """A short plain-text answer (internal-destination refusals), naming the rule for a person or a script."""
    return _reply(status, "text/plain; charset=utf-8", (text + "\n").encode("utf-8"))


def _reply(status: int, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body

"""An upstream's error answer in the caller's API format, with its status kept (pure).

The status is what makes each SDK raise the matching class; the body is re-rendered so the SDK can read
its message. A body that is not the other API's error shape is carried as the message, truncated.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...apis.anthropic import errors as anthropic_errors
from ...errors import error_body

_MAX_MESSAGE = 2000


def message_of(payload: bytes) -> tuple[str, str | None]:
    """The message and type/code of an error body in either API's shape."""
    try:
        document: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload[:_MAX_MESSAGE].decode(errors="replace") or "upstream error", None
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        kind = error.get("type") or error.get("code")
        return str(error.get("message") or "upstream error")[:_MAX_MESSAGE], str(kind) if kind else None
    return str(document)[:_MAX_MESSAGE], None


def to_openai(status: int, payload: bytes) -> bytes:
    message, kind = message_of(payload)
    return orjson.dumps(error_body(message, kind or ("server_error" if status >= 500 else "invalid_request_error"),
                                   kind))


def to_anthropic(status: int, payload: bytes) -> bytes:
    message, _ = message_of(payload)
    return orjson.dumps(anthropic_errors.body(message, status))

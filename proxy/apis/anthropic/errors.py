"""The proxy's errors in Anthropic's format: `{"type": "error", "error": {"type": ..., "message": ...}}`.

The status is kept (the SDK picks its exception class by status: 400 BadRequestError, 401
AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 413 RequestTooLargeError, 429
RateLimitError, 503 ServiceUnavailableError, 529 OverloadedError, ...); the type is the one Anthropic's
API documents for that status.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import ProxyError
from ...upstream import sse

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic uses invalid_request_error for 4xx it lists no type for, and api_error for 5xx."""
    return ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")


def body(message: str, status: int, request_id: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"type": "error", "error": {"type": error_type(status), "message": message}}
    if request_id:
        document["request_id"] = request_id
    return document


def render(error: ProxyError, status: int | None = None, request_id: str | None = None) -> bytes:
    return orjson.dumps(body(error.message, status or error.status, request_id))


def stream_error(error: ProxyError) -> bytes:
    """After the stream started: an `error` event; the SDK raises it as an APIStatusError."""
    return sse.encode(render(error), b"error")

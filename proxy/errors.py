"""Every error the proxy itself produces, rendered in OpenAI's error format.

    ProxyError                      (500, server_error)
     +-- BadRequest                 (400, invalid_request_error)
     |    +-- UnknownModel          (404 for the SDK's NotFoundError, model_not_found)
     +-- Unauthorized               (401, invalid_api_key)
     +-- Forbidden                  (403, policy denial, PII block)
     +-- NotFound                   (404, unknown route)
     |    +-- MethodNotAllowed      (405)
     +-- PayloadTooLarge            (413)
     +-- TooManyRequests            (429, rate limit or budget; carries Retry-After)
     +-- UpstreamError              (502, upstream unreachable or broken)
     |    +-- UpstreamTimeout       (504)
     +-- Unavailable                (503, policy engine or store down: fail closed)

The status codes are the ones that make the official SDKs raise the matching exception class.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class ProxyError(Exception):
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.code, self.param)


class BadRequest(ProxyError):
    status = 400
    error_type = "invalid_request_error"


class UnknownModel(BadRequest):
    # OpenAI answers an unknown model with 404 model_not_found; the SDK raises NotFoundError.
    status = 404
    default_code = "model_not_found"


class Unauthorized(ProxyError):
    status = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class Forbidden(ProxyError):
    status = 403
    error_type = "permission_denied"
    default_code = "policy_denied"


class NotFound(ProxyError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowed(NotFound):
    status = 405
    default_code = "method_not_allowed"


class PayloadTooLarge(ProxyError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class TooManyRequests(ProxyError):
    status = 429
    error_type = "rate_limit_exceeded"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        merged = {"Retry-After": str(max(1, int(retry_after_s + 0.999)))}
        merged.update(headers or {})
        super().__init__(message, code=code, headers=merged)
        self.retry_after_s = retry_after_s


class UpstreamError(ProxyError):
    status = 502
    error_type = "upstream_error"
    default_code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    default_code = "upstream_timeout"


class Unavailable(ProxyError):
    status = 503
    error_type = "service_unavailable"
    default_code = "service_unavailable"


def error_body(message: str, error_type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def render(error: ProxyError) -> bytes:
    return orjson.dumps(error.body())

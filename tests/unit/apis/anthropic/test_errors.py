"""Errors in Anthropic's format with the status kept, so the SDK raises the matching class."""

from __future__ import annotations

import orjson
import pytest

from proxy.apis.anthropic.errors import error_type, render, stream_error
from proxy.errors import BadRequest, Forbidden, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable


@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
    (404, "not_found_error"), (405, "invalid_request_error"), (413, "request_too_large"),
    (429, "rate_limit_error"), (500, "api_error"), (502, "api_error"), (503, "api_error"),
    (504, "timeout_error"), (529, "overloaded_error")])
def test_each_status_has_anthropics_type(status: int, kind: str) -> None:
    assert error_type(status) == kind


@pytest.mark.parametrize(("error", "kind"), [
    (BadRequest("bad"), "invalid_request_error"), (Unauthorized("who"), "authentication_error"),
    (Forbidden("no"), "permission_error"), (PayloadTooLarge("big"), "request_too_large"),
    (TooManyRequests("slow", retry_after_s=2), "rate_limit_error"), (Unavailable("down"), "api_error")])
def test_proxy_errors_render_as_anthropic_errors(error: Exception, kind: str) -> None:
    assert orjson.loads(render(error, request_id="req-1")) == {  # type: ignore[arg-type]
        "type": "error", "error": {"type": kind, "message": str(error)}, "request_id": "req-1"}


def test_after_the_stream_started_an_error_is_an_error_event() -> None:
    assert stream_error(Unavailable("down")) == (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"down"}}\n\n')

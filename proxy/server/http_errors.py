"""Answers to requests aiohttp's HTTP parser refuses, in OpenAI's error format, never echoing the request.

aiohttp answers a request its parser refuses (smuggling attempts with Content-Length and
Transfer-Encoding, bad chunking, oversized or invalid headers, a bad method) itself, before any
middleware runs, as plain text quoting up to ~100 bytes of the offending line: an Authorization value
would go back to the sender and into the log. Here those answers are OpenAI-format JSON with a fixed
message per kind of fault (400, or 431 for oversized headers), logged with the fault's type only.

aiohttp has no setting for this: `web_server.Server` builds each connection's `RequestHandler` by its
module-level name, so `use_json_parser_errors` puts the subclass there, once per process.
"""

from __future__ import annotations

from aiohttp import http_exceptions, web, web_protocol, web_server
from aiohttp.web_request import BaseRequest

from proxy.errors import BadRequest, ProxyError, render
from proxy.telemetry.logging import get_logger

log = get_logger("proxy.http")


class HeadersTooLarge(ProxyError):
    status = 431
    error_type = "invalid_request_error"
    default_code = "request_header_fields_too_large"


def parser_error(exc: BaseException | None) -> ProxyError:
    """The answer for a parser fault: its kind decides the wording, the request's bytes never do."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return HeadersTooLarge("A request line or header field is larger than this server accepts.")
    message = getattr(exc, "message", "")
    if message == "Too many headers received":  # a fixed string in both of aiohttp's parsers
        return HeadersTooLarge("The request has more header fields than this server accepts.")
    if isinstance(exc, http_exceptions.BadHttpMethod):
        return BadRequest("The request line is not valid HTTP (bad method).", code="invalid_http_request")
    if isinstance(exc, http_exceptions.TransferEncodingError | http_exceptions.ContentLengthError):
        return BadRequest("The request body's framing is invalid (chunked encoding or Content-Length).",
                          code="invalid_http_request")
    if isinstance(exc, http_exceptions.InvalidHeader):
        return BadRequest("A request header is not valid HTTP.", code="invalid_http_request")
    return BadRequest("The request is not valid HTTP and was not read.", code="invalid_http_request")


class JsonErrorRequestHandler(web_protocol.RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status != 400 or not isinstance(exc, http_exceptions.HttpProcessingError):
            return super().handle_error(request, status, exc, message)  # a handler's own failure, not the parser's
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        error = parser_error(exc)
        log.warning("http_parse_error", error_type=type(exc).__name__, status=error.status, code=error.code)
        response = web.Response(status=error.status, body=render(error), content_type="application/json")
        response.force_close()
        return response


def use_json_parser_errors() -> None:
    setattr(web_server, "RequestHandler", JsonErrorRequestHandler)  # noqa: B010 (the name is not exported)

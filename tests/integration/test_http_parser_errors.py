"""Requests aiohttp's HTTP parser refuses get OpenAI-format JSON errors that never echo the request, over a raw
socket (no client library would send these bytes)."""

from __future__ import annotations

import socket
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from tests.conftest import ProxyHandle
from tests.support.config import KEYS

SECRET = "sk-proxy-secret-do-not-echo-0123456789"


def exchange(proxy: ProxyHandle, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
        conn.sendall(raw)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def request(*header_lines: str, line: str = "POST /v1/chat/completions HTTP/1.1", body: bytes = b"") -> bytes:
    return (line + "\r\n" + "".join(h + "\r\n" for h in ("Host: 127.0.0.1", *header_lines)) + "\r\n").encode(
        "latin-1") + body


CASES: list[tuple[str, bytes, int]] = [
    ("control character in a header", request(f"Authorization: Bearer {SECRET}\x01"), 400),
    ("Content-Length with Transfer-Encoding", request(f"Authorization: Bearer {SECRET}", "Content-Length: 5",
                                                      "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    ("bad chunk size", request(f"Authorization: Bearer {SECRET}", "Transfer-Encoding: chunked",
                               body=b"zz\r\n" + SECRET.encode() + b"\r\n0\r\n\r\n"), 400),
    ("header line too long", request(f"Authorization: Bearer {SECRET}" + "x" * 20_000), 431),
    ("too many headers", request(*(f"X-H{i}: {SECRET}" for i in range(300))), 431),
    ("request line too long", request(line=f"GET /{SECRET}{'a' * 20_000} HTTP/1.1"), 431),
    ("bad method", request(line=f"G@T /{SECRET} HTTP/1.1"), 400),
    ("duplicate Content-Length", request("Content-Length: 2", "Content-Length: 3", body=b"{}"), 400),
]


@pytest.mark.parametrize(("raw", "status"), [(raw, status) for _, raw, status in CASES],
                         ids=[name for name, _, _ in CASES])
def test_parser_refusals_are_openai_json_that_never_echo_the_request(proxy: ProxyHandle, raw: bytes, status: int,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with capture_logs() as logs:
        got, headers, body = exchange(proxy, raw)
    assert got == status, body
    assert headers["content-type"].startswith("application/json")
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert SECRET not in body.decode("latin-1")
    assert SECRET not in repr(logs) and SECRET not in caplog.text  # nor aiohttp's own logger


def test_a_valid_request_on_a_raw_socket_still_works(proxy: ProxyHandle) -> None:
    payload = orjson.dumps({"model": "demo-model", "messages": [{"role": "user", "content": "Hi"}]})
    status, _, body = exchange(proxy, request(f"Authorization: Bearer {KEYS['payments']}",
                                              "Content-Type: application/json", f"Content-Length: {len(payload)}",
                                              "Connection: close", body=payload))
    answer: dict[str, Any] = orjson.loads(body)
    assert status == 200 and answer["choices"][0]["message"]["content"]

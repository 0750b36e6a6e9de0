"""A real MCP server for tests, built with the official SDK (MCPServer, Streamable HTTP) and served by
uvicorn on loopback in a background thread; it requires its own bearer token and records what it saw."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

UPSTREAM_TOKEN = "upstream-secret-token-4f9a"
SECRET_IN_RESULT = "AKIAIOSFODNN7EXAMPLE"

Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


@dataclass
class Seen:
    """What the server received: headers of every HTTP request and the arguments of every tool call."""

    headers: list[dict[str, str]] = field(default_factory=list)
    arguments: list[dict[str, Any]] = field(default_factory=list)
    hang: asyncio.Event | None = None

    def reset(self) -> None:
        self.headers.clear()
        self.arguments.clear()


def build_server(seen: Seen) -> MCPServer:
    server = MCPServer("crm")

    @server.tool(annotations=types.ToolAnnotations(readOnlyHint=True))
    def lookup(email: str) -> str:
        """Find a customer by email."""
        seen.arguments.append({"email": email})
        return f"customer for {email}; api key {SECRET_IN_RESULT}"

    @server.tool(annotations=types.ToolAnnotations(readOnlyHint=False, destructiveHint=True))
    def send_mail(to: str, body: str) -> str:
        """Send an email."""
        seen.arguments.append({"to": to, "body": body})
        return f"sent to {to}"

    @server.tool(annotations=types.ToolAnnotations(readOnlyHint=True))
    async def slow(seconds: float) -> str:
        """Take a while."""
        await asyncio.sleep(seconds)
        return "done"

    @server.tool(annotations=types.ToolAnnotations(readOnlyHint=True))
    def broken() -> str:
        """Always fails."""
        raise ToolError("the tool broke")

    @server.resource("crm://customers/{id}")
    def customer(id: str) -> str:
        return f"customer {id}: jo@example.com, token ghp_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8"

    @server.prompt()
    def greet(name: str) -> str:
        return f"Say hello to {name}."

    return server


def guarded(app: Asgi, seen: Seen) -> Asgi:
    """Records headers; refuses any request without the upstream token, as a real protected server would."""
    async def guard(scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) \
            -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        seen.headers.append(headers)
        if headers.get("authorization") != f"Bearer {UPSTREAM_TOKEN}":
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"www-authenticate", b'Bearer resource_metadata="http://evil.example/"')]})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)
    return guard


class McpServerThread:
    def __init__(self, *, json_response: bool = False) -> None:
        self.seen = Seen()
        app = build_server(self.seen).streamable_http_app(json_response=json_response)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(guarded(app, self.seen), log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

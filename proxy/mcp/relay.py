"""The server's answer back to the client, as JSON or as an SSE stream, message by message: results and
server messages scanned and redacted (or restored) as the decisions asked, tools/list filtered down to
what the caller may use, and every request answered, with a JSON-RPC error if the server failed to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from proxy.errors import UpstreamError, UpstreamTimeout
from proxy.pii import Placeholders, Scanner
from proxy.upstream import sse

from . import content, jsonrpc
from .judge import Verdict
from .upstream import McpUpstream, relayed_headers

# Given a forwarded tools/list and its result: the result as this caller may see it.
ToolsFilter = Callable[[Verdict, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(slots=True)
class Exchange:
    """The requests one POST (or GET) forwarded, and what came back for them."""

    verdicts: dict[jsonrpc.RequestId, Verdict]
    redact_types: frozenset[str]
    placeholders: tuple[Placeholders, ...]
    outcomes: dict[jsonrpc.RequestId, str] = field(default_factory=dict)
    result_pii: dict[str, int] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)
    hidden_tools: int = 0
    # The client closed its side while events were still being relayed (an SDK ending its session
    # closes the GET stream it listens on): not an error, nothing left to answer.
    client_gone: bool = False

    @classmethod
    def of(cls, verdicts: list[Verdict]) -> Exchange:
        return cls({v.message.id: v for v in verdicts if v.message.kind == "request" and v.message.id is not None},
                   frozenset(t for v in verdicts for t in v.decision.redact_results),
                   tuple(v.placeholders for v in verdicts if v.placeholders is not None))

    def unanswered(self) -> list[jsonrpc.RequestId]:
        return [id_ for id_ in self.verdicts if id_ not in self.outcomes]


@dataclass(frozen=True, slots=True)
class Relay:
    upstream: McpUpstream
    scanner: Scanner
    tools_filter: ToolsFilter
    seal_session: Callable[[str], str]

    async def transform(self, document: Any, exchange: Exchange) -> Any:
        """One server message (or a batch of them) as the client will get it."""
        if isinstance(document, list):
            return [await self.transform(item, exchange) for item in document]
        if not isinstance(document, dict):
            return document
        id_ = document.get("id")
        verdict = exchange.verdicts.get(id_) if "method" not in document and isinstance(id_, str | int) else None
        if verdict is not None:
            exchange.outcomes[id_] = outcome_of(document)  # type: ignore[index]
            result = document.get("result")
            if verdict.message.method == "tools/list" and isinstance(result, dict):
                shown = await self.tools_filter(verdict, result)
                exchange.hidden_tools += len(result.get("tools") or ()) - len(shown.get("tools") or ())
                document = {**document, "result": shown}
        return self.cleaned(document, exchange)

    def cleaned(self, document: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        changed = dict(document)
        for key in ("result", "error", "params"):
            if key not in document:
                continue
            value = document[key]
            found = content.scan(self.scanner, value, key)
            for type_, count in found.counts().items():
                exchange.result_pii[type_] = exchange.result_pii.get(type_, 0) + count
            if exchange.redact_types and found.matches:
                value = content.redacted(value, found, exchange.redact_types, key, Placeholders(), exchange.redacted)
            for placeholders in exchange.placeholders:
                value = content.restored(value, placeholders)
            changed[key] = value
        return changed

    async def json(self, response: aiohttp.ClientResponse, exchange: Exchange) -> web.Response:
        body = await self.upstream.read_body(response)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"MCP server {self.upstream.name!r} answered with a body that is not JSON.") \
                from None
        try:
            answer = await self.transform(document, exchange)
        except content.TooDeep:
            raise UpstreamError(f"MCP server {self.upstream.name!r} answered with JSON too deeply nested to "
                                "inspect.") from None
        return web.Response(status=response.status, body=jsonrpc.dumps(answer),
                            headers={**relayed_headers(response.headers, self.seal_session),
                                     "Content-Type": "application/json"})

    async def stream(self, request: web.Request, response: aiohttp.ClientResponse, exchange: Exchange,
                     idle_s: float, prefix: list[dict[str, Any]] | None = None) -> web.StreamResponse:
        """Event by event as they arrive; a server that stalls or breaks off leaves no request unanswered.
        `prefix`: the gateway's own answers (refusals in a batch), sent first."""
        out = web.StreamResponse(status=response.status,
                                 headers=relayed_headers(response.headers, self.seal_session))
        out.headers["Content-Type"] = "text/event-stream"
        out.headers["X-Accel-Buffering"] = "no"
        await out.prepare(request)
        try:
            await self._relay_events(out, response, exchange, idle_s, prefix or [])
            await out.write_eof()
        except ConnectionResetError:  # aiohttp's "Cannot write to closing transport" is one
            exchange.client_gone = True
        return out

    async def _relay_events(self, out: web.StreamResponse, response: aiohttp.ClientResponse, exchange: Exchange,
                            idle_s: float, prefix: list[dict[str, Any]]) -> None:
        for message in prefix:
            await out.write(sse.encode(jsonrpc.dumps(message), b"message"))
        parser = sse.SSEParser()
        try:
            while chunk := await self.upstream.read_chunk(response, idle_s):
                for event in parser.feed(chunk):
                    await out.write(await self.event(event, exchange))
                if not exchange.unanswered() and exchange.verdicts:
                    break  # every request answered: the server should end the stream now anyway
        except (UpstreamError, UpstreamTimeout) as exc:
            timeout = isinstance(exc, UpstreamTimeout)
            for id_ in exchange.unanswered():
                exchange.outcomes[id_] = "timeout" if timeout else "upstream_error"
                error = jsonrpc.error_message(id_, jsonrpc.UPSTREAM_TIMEOUT if timeout else jsonrpc.UPSTREAM_ERROR,
                                              exc.message, {"code": exc.code})
                await out.write(sse.encode(jsonrpc.dumps(error), b"message"))

    async def event(self, event: sse.Event, exchange: Exchange) -> bytes:
        if not event.data:
            return event.raw
        try:
            document = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return b": an event that was not JSON was dropped by the gateway\n\n"
        try:
            answer = await self.transform(document, exchange)
        except content.TooDeep:
            answer = withheld(document, exchange, self.upstream.name)
        fields = [line for line in event.raw.split(b"\n") if line and not line.startswith(b"data:")]
        return b"\n".join([*fields, b"data: " + jsonrpc.dumps(answer)]) + b"\n\n"


def withheld(document: Any, exchange: Exchange, server: str) -> Any:
    """What replaces a message that cannot be inspected: an error for a request's answer, else nothing."""
    id_ = document.get("id") if isinstance(document, dict) else None
    if isinstance(id_, str | int) and id_ in exchange.verdicts:
        exchange.outcomes[id_] = "upstream_error"
        return jsonrpc.error_message(id_, jsonrpc.UPSTREAM_ERROR, f"MCP server {server!r} answered with JSON too "
                                     "deeply nested to inspect.", {"code": "upstream_unavailable"})
    return {"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "warning", "data": "a server message too deeply nested to inspect was withheld"}}


def outcome_of(document: dict[str, Any]) -> str:
    if "error" in document:
        return "error"
    result = document.get("result")
    return "tool_error" if isinstance(result, dict) and result.get("isError") is True else "ok"

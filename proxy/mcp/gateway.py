"""`/mcp/<server>`: the MCP gateway's front door. Every message gets a decision before anything is
forwarded; the answer comes back through the relay. POST carries messages, GET opens the server's
stream, DELETE ends a session; each is decided (kinds `listen` and `terminate` for the last two)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from proxy.errors import UpstreamError, UpstreamTimeout
from proxy.gateway.observation import Observation
from proxy.identity import Identity
from proxy.pii import Scanner
from proxy.telemetry.tracing import Tracing

from . import jsonrpc
from .discover import as_list, fetch_tools
from .input import MessageFacts, ToolFacts
from .judge import Judge, Verdict
from .observe import Observer
from .relay import Exchange, Relay
from .sessions import SessionSeal, principal
from .tools import ToolCatalog, filtered, listed_tools
from .upstream import McpUpstream, forward_headers, relayed_headers

# Batches (JSON arrays of messages) exist only in protocol 2025-03-26, which a request without an
# MCP-Protocol-Version header is taken to speak.
BATCH_VERSIONS = frozenset({"2025-03-26"})
SESSION = "mcp-session-id"
VERSION = "mcp-protocol-version"


@dataclass(slots=True)
class McpGateway:
    upstreams: Mapping[str, McpUpstream]
    judge: Judge
    scanner: Scanner
    observer: Observer
    tracing: Tracing
    seal: SessionSeal
    catalog: ToolCatalog = field(default_factory=ToolCatalog)

    async def serve(self, request: web.Request, identity: Identity, request_id: str,
                    record: Observation) -> web.StreamResponse:
        record.called("mcp")
        name = request.match_info.get("server", "")
        upstream = self.upstreams.get(name)
        if upstream is None:
            return error_response(None, jsonrpc.METHOD_NOT_FOUND, f"No MCP server named {name!r} is configured "
                                  "on this proxy.", "unknown_mcp_server", status=404)
        record.upstream = name
        call = _Call(self, upstream, request, identity, request_id, record)
        if call.unknown_session:
            # Not issued to this caller for this server (or forged): to the client, no such session.
            record.mcp_error = "unknown_session"
            return error_response(None, jsonrpc.INVALID_REQUEST, "Session not found; start a new one with "
                                  "initialize.", "unknown_session", status=404)
        if request.method == "POST":
            return await call.post()
        if request.method in ("GET", "DELETE"):
            return await call.stream_or_end()
        return error_response(None, jsonrpc.INVALID_REQUEST, f"Method {request.method} is not allowed on an MCP "
                              "endpoint; use POST, GET or DELETE.", "method_not_allowed", status=405,
                              headers={"Allow": "GET, POST, DELETE"})

    async def tools_filter(self, verdict: Verdict, result: dict[str, Any], identity: Identity, session: str | None,
                           request_id: str) -> dict[str, Any]:
        tools = listed_tools(result)
        self.catalog.learn(verdict.facts.server, session, result)
        shown = await self.judge.visible(tools, verdict.facts, identity, request_id)
        return filtered(result, shown)[0]


class _Call:
    """One HTTP request to the gateway, from decision to the last byte relayed."""

    def __init__(self, gateway: McpGateway, upstream: McpUpstream, request: web.Request, identity: Identity,
                 request_id: str, record: Observation) -> None:
        self.gateway, self.upstream, self.request = gateway, upstream, request
        self.identity, self.request_id, self.record = identity, request_id, record
        self.version = request.headers.get(VERSION)
        # The client holds a sealed id (proxy/mcp/sessions.py); the server only ever sees its own.
        owner = principal(identity)
        presented = request.headers.get(SESSION)
        self.session = gateway.seal.open(upstream.name, owner, presented) if presented else None
        self.unknown_session = presented is not None and self.session is None
        self.client_headers: CIMultiDict[str] = CIMultiDict(request.headers)
        if self.session is not None:
            self.client_headers[SESSION] = self.session

        async def tools_filter(verdict: Verdict, result: dict[str, Any]) -> dict[str, Any]:
            return await gateway.tools_filter(verdict, result, identity, self.session, request_id)

        def seal(upstream_id: str) -> str:
            return gateway.seal.seal(upstream.name, owner, upstream_id)
        self.relay = Relay(upstream, gateway.scanner, tools_filter, seal)
        self.seal = seal

    def facts(self, message: jsonrpc.Message | None, kind: str) -> MessageFacts:
        return MessageFacts(self.upstream.name, kind, message.method if message else None,
                            message.name if message else None, self.version, self.session is not None)

    async def post(self) -> web.StreamResponse:
        try:
            raw = await read_limited(self.request, self.upstream.config.max_body_bytes)
            body = jsonrpc.parse_body(raw)
            if body.batch and (self.version or "2025-03-26") not in BATCH_VERSIONS:
                raise jsonrpc.InvalidMessage(jsonrpc.INVALID_REQUEST, "JSON-RPC batches are not part of MCP "
                                             f"protocol version {self.version}.")
            if not body.batch:
                jsonrpc.check_headers(body.messages[0], self.request.headers.get("mcp-method"),
                                      self.request.headers.get("mcp-name"))
        except jsonrpc.InvalidMessage as exc:
            self.record.mcp_error = "invalid_message"
            status = 200 if exc.id is not None else 400
            return error_response(exc.id, exc.code, exc.message, "invalid_message", status=status)
        verdicts = [await self.decided(message) for message in body.messages]
        refusals = [refusal_message(v) for v in verdicts if v.refusal is not None and v.message.kind == "request"]
        allowed = [v for v in verdicts if v.refusal is None]
        if not allowed:
            for verdict in verdicts:
                self.observe(verdict, verdict.refusal.outcome if verdict.refusal else "denied", 0.0)
            if refusals:
                return json_response(refusals if body.batch else refusals[0])
            first = verdicts[0].refusal
            assert first is not None
            return error_response(None, first.code, first.message, first.name, status=403, data=first.data)
        forward = [v.forward for v in allowed] if body.batch else allowed[0].forward
        exchange = Exchange.of(allowed)
        changed = any(v.redacted for v in allowed)
        headers = {**forward_headers(self.client_headers, params=not changed), "content-type": "application/json"}
        started = time.perf_counter()
        tool = next((v for v in allowed if v.message.method == "tools/call"), None)
        span_name = f"execute_tool {tool.message.name}" if tool and not body.batch else "mcp " + (
            allowed[0].message.method or "response" if not body.batch else "batch")
        with self.gateway.tracing.span(span_name, attributes=span_attributes(tool, self.session)) as span:
            self.gateway.tracing.inject(headers)
            headers["x-request-id"] = self.request_id
            try:
                response = await self.answer(headers, jsonrpc.dumps(forward), exchange, refusals)
            finally:
                seconds = time.perf_counter() - started
                for verdict in verdicts:
                    outcome = (verdict.refusal.outcome if verdict.refusal else
                               exchange.outcomes.get(verdict.message.id, "no_response")  # type: ignore[arg-type]
                               if verdict.message.kind == "request" else "forwarded")
                    self.observe(verdict, outcome, seconds, exchange)
                if span is not None and tool is not None:
                    span.set_attribute("llm_proxy.mcp.outcome",
                                       exchange.outcomes.get(tool.message.id, "no_response"))  # type: ignore[arg-type]
            return response

    async def answer(self, headers: dict[str, str], body: bytes, exchange: Exchange,
                     refusals: list[dict[str, Any]]) -> web.StreamResponse:
        try:
            response = await self.upstream.send("POST", headers, body)
        except UpstreamError as exc:
            return self.failed(exc, exchange, refusals)
        try:
            self.record.upstream_status = response.status
            return await self.relayed(response, exchange, refusals)
        except UpstreamError as exc:
            return self.failed(exc, exchange, refusals)
        finally:
            response.close()

    async def relayed(self, response: aiohttp.ClientResponse, exchange: Exchange,
                      refusals: list[dict[str, Any]]) -> web.StreamResponse:
        content_type = response.headers.get("content-type", "").lower()
        if response.status == 202 or (not exchange.verdicts and response.status < 300):
            return web.Response(status=response.status, headers=relayed_headers(response.headers, self.seal))
        if 200 <= response.status < 300 and content_type.startswith("text/event-stream"):
            streamed = await self.relay.stream(self.request, response, exchange,
                                               self.upstream.config.timeouts.response_s, prefix=refusals)
            self.record.client_disconnected = exchange.client_gone
            return streamed
        if response.status in (401, 403, 407) or response.status >= 500 or response.status in (301, 302, 303, 307,
                                                                                                 308):
            raise UpstreamError(f"MCP server {self.upstream.name!r} answered HTTP {response.status}.",
                                code=f"upstream_status_{response.status}")
        if not content_type.startswith("application/json"):
            raise UpstreamError(f"MCP server {self.upstream.name!r} answered HTTP {response.status} with "
                                f"{content_type or 'no content type'}.", code="upstream_bad_response")
        relayed = await self.relay.json(response, exchange)
        if refusals:
            relayed.body = jsonrpc.dumps([*refusals, *as_list(relayed.body)])
        if response.status == 404 and self.session is not None:
            self.gateway.catalog.forget(self.upstream.name, self.session)
        return relayed

    def failed(self, exc: UpstreamError, exchange: Exchange, refusals: list[dict[str, Any]]) -> web.Response:
        timeout = isinstance(exc, UpstreamTimeout)
        self.record.mcp_error = exc.code
        errors = []
        for id_ in exchange.verdicts:
            exchange.outcomes[id_] = "timeout" if timeout else "upstream_error"
            errors.append(jsonrpc.error_message(id_, jsonrpc.UPSTREAM_TIMEOUT if timeout else jsonrpc.UPSTREAM_ERROR,
                                                exc.message, {"code": exc.code}))
        messages = [*refusals, *errors]
        if not messages:
            return error_response(None, jsonrpc.UPSTREAM_TIMEOUT if timeout else jsonrpc.UPSTREAM_ERROR,
                                  exc.message, exc.code or "upstream_unavailable", status=exc.status)
        return json_response(messages if len(messages) > 1 else messages[0])

    async def stream_or_end(self) -> web.StreamResponse:
        """GET (the server's own stream) and DELETE (end the session): decided, then relayed."""
        kind = "listen" if self.request.method == "GET" else "terminate"
        verdict = await self.decided(None, kind)
        if verdict.refusal is not None:
            self.observe(verdict, verdict.refusal.outcome, 0.0)
            refusal = verdict.refusal
            return error_response(None, refusal.code, refusal.message, refusal.name, status=403, data=refusal.data)
        headers = forward_headers(self.client_headers, params=False)
        headers["x-request-id"] = self.request_id
        self.gateway.tracing.inject(headers)
        try:
            response = await self.upstream.send(self.request.method, headers)
        except UpstreamError as exc:
            self.observe(verdict, "upstream_error", 0.0)
            return error_response(None, jsonrpc.UPSTREAM_ERROR, exc.message, exc.code or "upstream_unavailable",
                                  status=exc.status)
        try:
            self.observe(verdict, "forwarded", 0.0)
            content_type = response.headers.get("content-type", "").lower()
            if kind == "terminate":
                self.gateway.catalog.forget(self.upstream.name, self.session)
            if response.status == 200 and content_type.startswith("text/event-stream"):
                exchange = Exchange.of([verdict])
                streamed = await self.relay.stream(self.request, response, exchange,
                                                   self.upstream.config.timeouts.listen_idle_s)
                self.record.client_disconnected = exchange.client_gone
                return streamed
            if response.status in (401, 403, 407) or response.status >= 500:
                return error_response(None, jsonrpc.UPSTREAM_ERROR, f"MCP server {self.upstream.name!r} answered "
                                      f"HTTP {response.status}.", f"upstream_status_{response.status}", status=502)
            return web.Response(status=response.status, headers=relayed_headers(response.headers, self.seal))
        finally:
            response.close()

    async def decided(self, message: jsonrpc.Message | None, kind: str | None = None) -> Verdict:
        facts = self.facts(message, kind or (message.kind if message else "request"))
        tool = None
        if message is not None and message.method == "tools/call" and message.name is not None:
            tool = ToolFacts(message.name, await self.annotations(message.name))
        with self.gateway.tracing.stage("policy.evaluate"):
            verdict = await self.gateway.judge.judge(message or _EMPTY, facts, tool, self.identity, self.request_id)
        self.record.policy_revision = verdict.revision
        return verdict

    async def annotations(self, tool: str) -> Mapping[str, Any] | None:
        """The tool's hints; when this worker has not seen it listed (a session listed through another
        worker, or a client that never lists), the gateway lists the server's tools itself first."""
        catalog = self.gateway.catalog
        found = catalog.annotations(self.upstream.name, self.session, tool)
        if found is None:
            await fetch_tools(self.upstream, self.client_headers, self.session, catalog)
            found = catalog.annotations(self.upstream.name, self.session, tool)
        return found

    def observe(self, verdict: Verdict, outcome: str, seconds: float, exchange: Exchange | None = None) -> None:
        self.gateway.observer.message(verdict, outcome, seconds, self.identity, self.request_id, self.session,
                                      exchange, self.record)


_EMPTY = jsonrpc.Message("request", None, None, {}, {})
def span_attributes(tool: Verdict | None, session: str | None) -> dict[str, Any]:
    if tool is None:
        return {"mcp.session.id": session} if session else {}
    return {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool.message.name,
            "gen_ai.tool.call.id": str(tool.message.id), "gen_ai.tool.type": "extension",
            "mcp.method.name": "tools/call", **({"mcp.session.id": session} if session else {})}


def refusal_message(verdict: Verdict) -> dict[str, Any]:
    refusal = verdict.refusal
    assert refusal is not None
    return jsonrpc.error_message(verdict.message.id, refusal.code, refusal.message, {"code": refusal.name,
                                                                                     **refusal.data})


def error_response(id_: jsonrpc.RequestId | None, code: int, message: str, name: str, *, status: int = 200,
                   data: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response(jsonrpc.error_message(id_, code, message, {"code": name, **(data or {})}), status=status,
                         headers=headers)


def json_response(document: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=jsonrpc.dumps(document), status=status, content_type="application/json",
                        headers=headers)


async def read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise jsonrpc.InvalidMessage(jsonrpc.INVALID_REQUEST, f"The body exceeds the limit of {limit} bytes.")
    chunks, size = [], 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise jsonrpc.InvalidMessage(jsonrpc.INVALID_REQUEST, f"The body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)

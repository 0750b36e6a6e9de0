"""The egress listener: per connection read one head, identify the caller, resolve and classify the
destination, ask the policy, then refuse (and record), tunnel (CONNECT) or forward (absolute http:// URI)
to the checked addresses. One request per connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from proxy.egress.config import EgressConfig
from proxy.egress.destination import REFUSED, Destination, DestinationGuard
from proxy.egress.host import IPAddress
from proxy.egress.http_parse import HeadError, RequestHead, Target, origin_request, parse_head, parse_target, read_head
from proxy.egress.identity import CallerIdentifier, CredentialCheck
from proxy.egress.internal_allow import parse_internal_target
from proxy.egress.own_addresses import OwnAddresses
from proxy.egress.recorder import RefusalRecorder
from proxy.egress.replies import ESTABLISHED, error_reply, text_reply
from proxy.egress.resolver import Resolver, StaticResolver, SystemResolver
from proxy.egress.tunnel import CHUNK, relay, shut
from proxy.eventlog import EventLog
from proxy.identity import Identity
from proxy.policy.decision import EgressDecision, Reason
from proxy.policy.engine import PolicyEngine
from proxy.policy.input import build_egress_input
from proxy.telemetry.logging import get_logger
from proxy.telemetry.metrics import Metrics

# After an error reply, keep reading (and discarding) briefly: closing a socket with unread input makes
# the kernel send a reset, which can destroy the reply before the client has read it.
LINGER_S = 1.0
LINGER_BYTES = 256 * 1024
BACKLOG = 1024

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# Opens the TCP connection to one checked address; tests observe it to prove nothing else was dialled.
Connector = Callable[[IPAddress, int], Awaitable[Stream]]

log = get_logger("proxy.egress")


class EgressServer:
    def __init__(
        self,
        config: EgressConfig,
        engine_getter: Callable[[], PolicyEngine],
        recorder: RefusalRecorder,
        identifier: CallerIdentifier,
        *,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        listening: Iterable[tuple[str, int]] = (),
    ) -> None:
        """`listening`: the proxy's other listeners (its API), refused as destinations like this one."""
        self._config = config
        self._engine_getter = engine_getter
        self._recorder = recorder
        self._identifier = identifier
        self._resolver = resolver if resolver is not None else StaticResolver(config.resolve, SystemResolver())
        self._connector = connector if connector is not None else open_tcp
        self._listening = tuple(listening)
        self._guard: DestinationGuard | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._active = 0

    async def start(self, sock: socket.socket | None = None) -> EgressServer:
        if sock is not None:
            self._server = await asyncio.start_server(self._accept, sock=sock, limit=CHUNK, backlog=BACKLOG)
        else:
            self._server = await asyncio.start_server(
                self._accept, self._config.host, self._config.port, limit=CHUNK, backlog=BACKLOG
            )
        bound = [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in self._server.sockets]
        self._guard = DestinationGuard(
            self._resolver, [parse_internal_target(entry) for entry in self._config.allow_internal],
            OwnAddresses([*self._listening, *bound]), internal_domains=self._config.internal_domains,
            resolve_timeout_s=self._config.resolve_timeout_s,
        )
        log.info("egress_listening", host=self._config.host, port=self.port)
        return self

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("egress server is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_connections(self) -> int:
        return self._active

    async def close(self) -> None:
        """Stop listening, end every open connection and tunnel, and wait until their sockets are closed."""
        if self._server is not None:
            self._server.close()
        handlers = list(self._handlers)
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        clean = False
        try:
            if self._active >= self._config.max_connections:
                log.warning("egress_busy", limit=self._config.max_connections)
                await _reply(reader, writer, error_reply(503, "egress_busy", "too many connections; retry shortly"))
                clean = True
                return
            self._active += 1
            try:
                clean = await self._serve(reader, writer)
            finally:
                self._active -= 1
        except asyncio.CancelledError:
            # Only close() cancels a connection. Ending normally keeps asyncio's stream callback from
            # printing the cancellation as an unhandled error at every shutdown.
            clean = False
        except Exception:
            log.exception("egress_internal_error")
        finally:
            self._handlers.discard(task)
            await shut(writer, graceful=clean)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Handle one request; True when the connection may be closed gracefully."""
        try:
            async with asyncio.timeout(self._config.header_timeout_s):
                raw, early = await read_head(reader, self._config.max_header_bytes)
            head = parse_head(raw)
            target = parse_target(head)
        except EOFError:
            return True
        except TimeoutError:
            await _reply(reader, writer, error_reply(408, "request_timeout", "no complete request head in time"))
            return True
        except HeadError as exc:
            log.info("egress_bad_request", peer=_peer(writer), error=str(exc))
            await _reply(reader, writer, error_reply(exc.status, "bad_request", str(exc)))
            return True
        identity = await self._identifier.identify(head.header("proxy-authorization"), _peer(writer))
        assert self._guard is not None
        destination = await self._guard.check(target)
        decision = await self._decide(target, head.method, identity, destination)
        if destination.refused and (decision is None or decision.allow):
            # The policy may not open what the allow-list keeps shut (a permissive custom policy changes
            # nothing), and a failing one does not turn this refusal into a 503.
            provider = None if decision is None else decision.provider
            decision = EgressDecision(False, (Reason(REFUSED, destination.refusal_message()),), provider)
        if decision is None:
            message = "egress policy unavailable; the request was refused (fail closed)"
            await _reply(reader, writer, error_reply(503, "policy_unavailable", message))
            return True
        if not decision.allow:
            rule = None if destination.rule is None else destination.rule.kind
            await self._recorder.refused(identity, target, head.method, decision, rule=rule)
            await _reply(reader, writer, _refusal(target, decision, destination))
            return True
        if not destination.addresses:
            message = destination.unresolved or f"{target.host} has no address"
            await _reply(reader, writer, error_reply(502, "unresolvable_host", message, host=target.host))
            return True
        return await self._pass(head, target, destination, identity, early, (reader, writer))

    async def _decide(self, target: Target, method: str, identity: Identity,
                      destination: Destination) -> EgressDecision | None:
        try:
            engine = self._engine_getter()
            document = build_egress_input(target.host, target.port, method, identity)
            document["destination"] = destination.policy_input()
            return await engine.evaluate_egress(document)
        except Exception as exc:
            log.error("egress_policy_error", host=target.host, app=identity.app, error=str(exc)[:500])
            return None

    async def _pass(self, head: RequestHead, target: Target, destination: Destination, identity: Identity,
                    early: bytes, client: Stream) -> bool:
        upstream = await self._connect(target, destination.addresses, client)
        if upstream is None:
            return True
        started = time.monotonic()
        clean = False
        try:
            if target.path is None:
                client[1].write(ESTABLISHED)
                # Clients that send their TLS hello without waiting for the 200 are not cut short.
                if early:
                    upstream[1].write(early)
            else:
                upstream[1].write(origin_request(head, target) + early)
            # Plain HTTP ends when the origin has sent its response and closed (it was sent Connection: close).
            forwarding = target.path is not None
            stats = await relay(client, upstream, self._config.idle_timeout_s, stop_on_upstream_eof=forwarding)
            clean = stats.ending == "eof"
        finally:
            await shut(upstream[1], graceful=clean)
        log.info(
            "egress_tunnel" if target.path is None else "egress_forward",
            app=identity.app, team=identity.team, host=target.host, port=target.port, method=head.method,
            bytes_up=stats.up, bytes_down=stats.down, ending=stats.ending,
            seconds=round(time.monotonic() - started, 3),
        )
        return clean

    async def _connect(self, target: Target, addresses: tuple[IPAddress, ...], client: Stream) -> Stream | None:
        """The first checked address that answers, in the resolver's order; never a fresh lookup."""
        failure = "no address"
        try:
            async with asyncio.timeout(self._config.connect_timeout_s):
                for address in addresses:
                    try:
                        return await self._connector(address, target.port)
                    except OSError as exc:
                        failure = exc.strerror or type(exc).__name__
            reply = error_reply(502, "upstream_unreachable", f"cannot connect to {target.authority}: {failure}")
        except TimeoutError:
            reply = error_reply(504, "upstream_timeout", f"connecting to {target.authority} timed out")
        log.warning("egress_upstream_unreachable", host=target.host, port=target.port)
        await _reply(client[0], client[1], reply)
        return None


async def open_tcp(address: IPAddress, port: int) -> Stream:
    # A numeric host is never looked up; the flag makes that a guarantee.
    return await asyncio.open_connection(str(address), port, limit=CHUNK, flags=socket.AI_NUMERICHOST)


async def start_egress(
    config: EgressConfig,
    engine_getter: Callable[[], PolicyEngine],
    events: EventLog,
    metrics: Metrics,
    keys: Mapping[str, Identity] | CredentialCheck,
    *,
    sock: socket.socket | None = None,
    resolver: Resolver | None = None,
    connector: Connector | None = None,
    listening: Iterable[tuple[str, int]] = (),
) -> EgressServer:
    """Listen on config.host:config.port, or on `sock` (pre-bound and shared by `serve --workers N`);
    `keys` maps a key's SHA-256 to its Identity, or is the gateway's credential check (keys and JWTs);
    `listening` names the proxy's other listeners."""
    identifier = CallerIdentifier(keys, config.source_apps)
    server = EgressServer(config, engine_getter, RefusalRecorder(events, metrics), identifier, resolver=resolver,
                          connector=connector, listening=listening)
    return await server.start(sock)


def _refusal(target: Target, decision: EgressDecision, destination: Destination) -> bytes:
    code = decision.reasons[0].code if decision.reasons else "egress_denied"
    if code == REFUSED:
        # The proxy's own words when it refused; the policy's when it refused an admitted target.
        message = destination.refusal_message() if destination.refused else decision.reasons[0].message
        return text_reply(403, f"403 egress refused ({REFUSED}): {message}")
    message = "; ".join(r.message for r in decision.reasons) or f"egress to {target.host} is not allowed"
    return error_reply(403, code, message, host=target.host, provider=decision.provider)


async def _reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        writer.write(payload)
        await asyncio.wait_for(writer.drain(), LINGER_S)
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_S):
            discarded = 0
            while discarded < LINGER_BYTES and (chunk := await reader.read(CHUNK)):
                discarded += len(chunk)


def _peer(writer: asyncio.StreamWriter) -> str | None:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else None

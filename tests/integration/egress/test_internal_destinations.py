"""Through the real egress listener: internal destinations are refused before any connection is opened,
in every host form, for CONNECT and absolute-form alike; allow-listed ones work; a name is resolved once
and the tunnel goes to the address that was checked."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from proxy.egress.host import IPAddress
from proxy.egress.report import format_report, shadow_ai_report
from proxy.egress.resolver import StaticResolver
from proxy.policy.bundle import load_bundle
from proxy.policy.embedded import EmbeddedRego
from tests.integration.egress.conftest import (
    EVAL_KEY,
    KEY,
    POLICIES,
    StartEgress,
    echo,
    hello_app,
    policy,
    raw_exchange,
)

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


@pytest.fixture(autouse=True)
def _earlier_garbage_collected() -> None:
    """The warning filter is for this module's own sockets: what earlier tests left to the GC goes first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()

Serve = Callable[..., Awaitable[int]]


@dataclass
class Listener:
    """A loopback TCP server that counts the connections it accepts; it answers a plain GET with a tiny
    HTTP response and echoes anything else."""

    port: int
    accepted: list[tuple[str, int]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def listener(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Listener]:
    found = Listener(0)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.accepted.append(writer.get_extra_info("sockname")[:2])
        first = await reader.read(65536)
        if first.startswith(b"GET "):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            writer.close()
            return
        await echo(reader, writer, first)

    server = await asyncio.start_server(accept, host, port)
    found.port = server.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def target() -> AsyncIterator[Listener]:
    async with listener() as found:
        yield found


def connect(authority: str) -> bytes:
    return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: Bearer {KEY}\r\n\r\n".encode()


def get(authority: str, path: str = "/") -> bytes:
    return f"GET http://{authority}{path} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: Bearer {KEY}\r\n\r\n" \
        .encode()


async def reply_head(port: int, request: bytes) -> bytes:
    """The proxy's status line and headers; the connection is then closed (a tunnel would stay open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
        await writer.wait_closed()


def refused_for(reply: bytes, kind: str) -> None:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n"), reply[:200]
    assert b"Content-Type: text/plain; charset=utf-8" in head
    text = body.decode()
    assert text.startswith("403 egress refused (internal_destination): "), text
    assert f"{kind} (" in text or kind in text, text
    assert text.endswith("\n") and text.count("\n") == 1


LOOPBACK_FORMS = [
    ("127.0.0.1", "loopback"), ("localhost", "internal_name"), ("127.1", "loopback"), ("2130706433", "loopback"),
    ("0x7f000001", "loopback"), ("017700000001", "loopback"), ("0177.0.0.1", "loopback"),
    ("127.0.0.1.", "loopback"), ("[::ffff:127.0.0.1]", "loopback"), ("[::ffff:7f00:1]", "loopback"),
    ("0.0.0.0", "unspecified"), ("0", "unspecified"), ("%31%32%37.0.0.1", "loopback"),
    ("１２７．０．０．１", "loopback"), ("LocalHost.", "internal_name"), ("ｌｏｃａｌｈｏｓｔ", "internal_name"),
]


@pytest.mark.parametrize("form", ["connect", "get"])
async def test_loopback_in_every_form_is_refused_and_the_target_sees_no_connection(
    start: StartEgress, target: Listener, form: str
) -> None:
    egress = await start(allow_internal=[])
    async with listener("::1") as v6:
        cases = [*((f"{host}:{target.port}", kind) for host, kind in LOOPBACK_FORMS), (f"[::1]:{v6.port}", "loopback")]
        with capture_logs() as logs:
            for authority, kind in cases:
                request = connect(authority) if form == "connect" else get(authority, "/admin")
                refused_for(await raw_exchange(egress.port, request), kind)
        assert v6.accepted == []
    assert target.accepted == [] and egress.dialler.dialled == []
    assert egress.refusals("internal_destination") == len(cases)
    warnings = [e for e in logs if e["event"] == "egress_internal_refused"]
    assert len(warnings) == len(cases) and warnings[0]["reason"] == "internal_destination"
    assert {w["rule"] for w in warnings} == {"loopback", "internal_name", "unspecified"}
    events = await egress.store.events("shadow_ai", 0)
    assert {(e["reason"], e["provider"], e["app"]) for e in events} == {("internal_destination", "none", "billing-api")}


async def test_the_proxy_own_listeners_are_refused_even_when_loopback_is_allowed(
    start: StartEgress, serve: Serve
) -> None:
    api_port = await serve(hello_app())
    egress = await start(allow_internal=["127.0.0.0/8:*", "0.0.0.0/0:*"], listening=(("127.0.0.1", api_port),),
                         resolver=StaticResolver({"localhost": ["127.0.0.1", "::1"]}))
    for authority in (f"127.0.0.1:{egress.port}", f"127.0.0.2:{egress.port}", f"0.0.0.0:{egress.port}",
                      f"localhost:{egress.port}", f"[::ffff:127.0.0.1]:{api_port}", f"127.1:{api_port}"):
        for request in (connect(authority), get(authority, "/hello")):
            reply = await raw_exchange(egress.port, request)
            refused_for(reply, "proxy_listener")
            assert b"proxy loop" in reply
    assert egress.dialler.dialled == []


METADATA_AND_PRIVATE = [
    (connect("169.254.169.254:80"), "metadata"),
    (get("169.254.169.254", "/latest/meta-data/iam/security-credentials/"), "metadata"),
    (get("2852039166", "/computeMetadata/v1/"), "metadata"),
    (connect("[fd00:ec2::254]:80"), "metadata"),
    (get("[fd00:ec2::254]", "/latest/api/token"), "metadata"),
    (connect("[::ffff:169.254.169.254]:80"), "metadata"),
    (connect("[64:ff9b::a9fe:a9fe]:80"), "metadata"),
    (connect("168.63.129.16:80"), "metadata"),
    (connect("100.100.100.200:80"), "metadata"),
    (connect("metadata.google.internal:80"), "metadata"),
    (get("metadata.google.internal", "/computeMetadata/v1/instance/service-accounts/default/token"), "metadata"),
    (connect("metadata.azure.com:80"), "metadata"),
    (connect("kubernetes.default.svc:443"), "internal_name"),
    (connect("kubernetes.default.svc.cluster.local:443"), "internal_name"),
    (connect("10.0.0.1:22"), "private"),
    (get("10.0.0.1:8500", "/v1/kv/?recurse"), "private"),
    (connect("172.16.0.1:443"), "private"),
    (connect("192.168.0.1:80"), "private"),
    (connect("100.64.0.1:80"), "cgnat"),
    (connect("[fd00::1]:80"), "ula"),
    (connect("[fe80::1%25eth0]:80"), "link_local"),
    (connect("224.0.0.251:5353"), "multicast"),
    (connect("240.0.0.1:80"), "reserved"),
    (connect("[2002:a00:1::]:80"), "private"),
]


async def test_metadata_and_private_ranges_are_refused_before_any_connect_attempt(start: StartEgress) -> None:
    egress = await start(allow_internal=[])
    for request, kind in METADATA_AND_PRIVATE:
        refused_for(await raw_exchange(egress.port, request), kind)
    # The recorded connect function was never called: refused on the classification, not on a failed dial.
    assert egress.dialler.dialled == []
    events = await egress.store.events("shadow_ai", 0)
    assert len(events) == len(METADATA_AND_PRIVATE)
    assert {e["reason"] for e in events} == {"internal_destination"}


async def test_a_policy_that_allows_everything_cannot_open_an_internal_destination(
    start: StartEgress, tmp_path: Path
) -> None:
    shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
    (tmp_path / "egress.rego").write_text('package llm.egress\n\ndecision := {"allow": true, "reasons": []}\n')
    egress = await start(EmbeddedRego(load_bundle(tmp_path)), allow_internal=[])
    refused_for(await raw_exchange(egress.port, connect("169.254.169.254:80")), "metadata")
    refused_for(await raw_exchange(egress.port, get("10.0.0.1")), "private")
    assert egress.dialler.dialled == []


async def test_a_failing_policy_does_not_turn_an_internal_refusal_into_a_503(start: StartEgress) -> None:
    class Broken:
        async def evaluate_egress(self, _: object) -> None:
            raise RuntimeError("engine down")

    egress = await start(allow_internal=[])
    egress.server._engine_getter = lambda: Broken()  # type: ignore[assignment,return-value]
    refused_for(await raw_exchange(egress.port, connect("169.254.169.254:80")), "metadata")
    assert (await raw_exchange(egress.port, connect("public.example.test:443"))).startswith(b"HTTP/1.1 503 ")
    assert egress.refusals("internal_destination") == 1 and egress.dialler.dialled == []


async def test_an_allow_listed_internal_target_works_and_other_ports_stay_refused(
    start: StartEgress, serve: Serve, target: Listener
) -> None:
    http_port = await serve(hello_app())
    egress = await start(allow_internal=[f"127.0.0.1/32:{target.port}", f"127.0.0.0/8:{http_port}"],
                         resolver=StaticResolver({"vllm.internal.test": "127.0.0.1"}))
    reader, writer = await asyncio.open_connection("127.0.0.1", egress.port)
    writer.write(connect(f"vllm.internal.test:{target.port}"))
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    writer.close()
    await writer.wait_closed()
    async with httpx.AsyncClient(proxy=egress.url(KEY)) as client:
        response = await client.get(f"http://127.0.0.1:{http_port}/hello")
    assert response.status_code == 200 and response.json()["hello"] == "world"
    async with listener() as other:
        refused_for(await raw_exchange(egress.port, connect(f"127.0.0.1:{other.port}")), "loopback")
        assert other.accepted == []
    assert egress.dialler.dialled == [("127.0.0.1", target.port), ("127.0.0.1", http_port)]
    assert egress.refusals("internal_destination") == 1


async def test_data_internal_targets_open_an_allowed_target_to_one_team_only(
    start: StartEgress, target: Listener
) -> None:
    entry = f"127.0.0.1/32:{target.port}"
    egress = await start(policy(internal_targets={entry: {"teams": ["payments"]}}), allow_internal=[entry])
    assert (await reply_head(egress.port, connect(f"127.0.0.1:{target.port}"))).startswith(b"HTTP/1.1 200 ")
    other = f"CONNECT 127.0.0.1:{target.port} HTTP/1.1\r\nProxy-Authorization: Bearer {EVAL_KEY}\r\n\r\n"
    reply = await raw_exchange(egress.port, other.encode())
    refused_for(reply, "loopback")
    assert b"data.egress.internal_targets opens to other apps and teams only" in reply
    assert len(target.accepted) == 1
    [event] = await egress.store.events("shadow_ai", 0)
    assert (event["app"], event["reason"], event["rule"]) == ("eval-harness", "internal_destination", "loopback")


async def test_a_name_resolving_to_public_and_internal_addresses_is_refused(start: StartEgress) -> None:
    resolver = StaticResolver({"mixed.example.test": ["93.184.215.14", "127.0.0.1"],
                               "sneaky.example.test": ["169.254.169.254"]})
    egress = await start(allow_internal=[], resolver=resolver)
    reply = await raw_exchange(egress.port, connect("mixed.example.test:443"))
    refused_for(reply, "loopback")
    assert b"mixed.example.test:443 (93.184.215.14, 127.0.0.1)" in reply
    refused_for(await raw_exchange(egress.port, get("sneaky.example.test")), "metadata")
    assert egress.dialler.dialled == []


class Rebinding:
    """DNS rebinding: a name's first answer is the allowed target, every later one another address."""

    def __init__(self, first: str, later: str) -> None:
        self.first, self.later = first, later
        self.calls: list[str] = []

    async def resolve(self, name: str) -> tuple[IPAddress, ...]:
        answer = self.later if name in self.calls else self.first
        self.calls.append(name)
        return await StaticResolver({name: answer}).resolve(name)


async def test_the_tunnel_connects_to_the_checked_address_and_never_looks_the_name_up_again(
    start: StartEgress
) -> None:
    async with listener("127.0.0.2") as checked:
        resolver = Rebinding("127.0.0.2", "127.0.0.1")
        egress = await start(allow_internal=[f"127.0.0.2/32:{checked.port}"], resolver=resolver)
        tunnel = await reply_head(egress.port, connect(f"rebind-a.example.test:{checked.port}"))
        assert tunnel.startswith(b"HTTP/1.1 200 Connection Established")
        forwarded = await raw_exchange(egress.port, get(f"rebind-b.example.test:{checked.port}"))
        assert forwarded == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        # Once per request, never a second time for the connection (which would get the rebound answer).
        assert resolver.calls == ["rebind-a.example.test", "rebind-b.example.test"]
        assert egress.dialler.dialled == [("127.0.0.2", checked.port)] * 2
        assert checked.accepted == [("127.0.0.2", checked.port)] * 2


async def test_unresolvable_names_are_still_decided_and_provider_attempts_still_recorded(start: StartEgress) -> None:
    egress = await start(resolver=StaticResolver({}))
    reply = await raw_exchange(egress.port, connect("api.openai.com:443"))
    assert reply.startswith(b"HTTP/1.1 403 ") and b"ai_provider_blocked" in reply
    reply = await raw_exchange(egress.port, connect("nowhere.example.test:443"))
    assert reply.startswith(b"HTTP/1.1 502 ") and b"unresolvable_host" in reply
    [event] = await egress.store.events("shadow_ai", 0)
    assert (event["provider"], event["reason"]) == ("openai", "ai_provider_blocked")
    assert egress.dialler.dialled == []


async def test_internal_refusals_appear_in_the_shadow_ai_report(start: StartEgress, target: Listener) -> None:
    egress = await start(allow_internal=[])
    await raw_exchange(egress.port, connect("169.254.169.254:80"))
    await raw_exchange(egress.port, connect(f"127.0.0.1:{target.port}"))
    await raw_exchange(egress.port, connect("api.openai.com:443"))
    rows = await shadow_ai_report(egress.store, 3600)
    assert sorted((r["provider"], r["reason"], r["attempts"]) for r in rows) == [
        ("none", "internal_destination", 2), ("openai", "ai_provider_blocked", 1)]
    internal = next(r for r in rows if r["reason"] == "internal_destination")
    assert internal["hosts"] == ["127.0.0.1", "169.254.169.254"]
    assert "internal_destination" in format_report(rows)


async def test_provider_names_resolving_internally_are_still_reported_as_shadow_ai(start: StartEgress) -> None:
    # Private endpoints resolve provider names to internal addresses; the attempt is still shadow AI.
    egress = await start(allow_internal=[])
    reply = await raw_exchange(egress.port, connect("api.openai.com:443"))
    assert reply.startswith(b"HTTP/1.1 403 ") and b"ai_provider_blocked" in reply
    assert egress.attempts("billing-api", "openai") == 1
    assert egress.dialler.dialled == []

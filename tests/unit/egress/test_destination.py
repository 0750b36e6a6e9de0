"""The destination guard: normaliser and classifier over every host form, one lookup, every address
checked, the allow-list, the proxy's own listeners, and what the policy is told."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from ipaddress import ip_address

import jsonschema
import pytest
from referencing import Registry, Resource

from proxy.egress.destination import Destination, DestinationGuard
from proxy.egress.host import IPAddress
from proxy.egress.http_parse import HeadError, Target, parse_head, parse_target
from proxy.egress.internal_allow import parse_internal_target
from proxy.egress.own_addresses import OwnAddresses
from proxy.egress.resolver import ResolutionError, StaticResolver
from proxy.identity import Identity
from proxy.policy.bundle import default_policy_dir
from proxy.policy.input import build_egress_input

EGRESS_PORT = 3128
API_PORT = 8080
NAMES: dict[str, Sequence[str]] = {
    "public.example": ["93.184.215.14"],
    "dual.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "mixed.example": ["93.184.215.14", "127.0.0.1"],
    "mixed-private.example": ["10.2.0.5", "93.184.215.14"],
    "sneaky.example": ["169.254.169.254"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "vllm.example": ["10.2.0.5"],
    "vllm.svc.cluster.local": ["10.2.0.5"],
    "api.openai.com": ["162.159.140.245"],
}


class CountingResolver:
    """The test table, counting lookups (the guard must look a name up at most once)."""

    def __init__(self, table: Mapping[str, Sequence[str]] = NAMES) -> None:
        self.inner = StaticResolver(table)
        self.asked: list[str] = []

    async def resolve(self, name: str) -> tuple[IPAddress, ...]:
        self.asked.append(name)
        return await self.inner.resolve(name)


def guard(*allow: str, resolver: CountingResolver | None = None, domains: Sequence[str] = ()) -> DestinationGuard:
    own = OwnAddresses([("127.0.0.1", EGRESS_PORT), ("0.0.0.0", API_PORT)])
    return DestinationGuard(resolver or CountingResolver(), [parse_internal_target(a) for a in allow], own,
                            internal_domains=domains, resolve_timeout_s=1.0)


def check(raw: str, *allow: str) -> Destination:
    return asyncio.run(guard(*allow).check(parse_target(parse_head(raw.encode()))))


@pytest.mark.parametrize(("authority", "kind"), [
    ("127.0.0.1:8000", "loopback"),
    ("localhost:8000", "internal_name"),
    ("LOCALHOST.:8000", "internal_name"),
    ("ｌｏｃａｌｈｏｓｔ:8000", "internal_name"),
    ("127.1:8000", "loopback"),
    ("2130706433:8000", "loopback"),
    ("0x7f000001:8000", "loopback"),
    ("017700000001:8000", "loopback"),
    ("0177.0.0.1:8000", "loopback"),
    ("%31%32%37.0.0.1:8000", "loopback"),
    ("１２７．０．０．１:8000", "loopback"),
    ("[::1]:8000", "loopback"),
    ("[::ffff:127.0.0.1]:8000", "loopback"),
    ("[0:0:0:0:0:ffff:7f00:1]:8000", "loopback"),
    ("[::ffff:0:127.0.0.1]:8000", "loopback"),
    ("[64:ff9b::127.0.0.1]:8000", "loopback"),
    ("[2002:7f00:1::]:8000", "loopback"),
    ("[::127.0.0.1]:8000", "reserved"),
    ("0.0.0.0:8000", "unspecified"),
    ("0:8000", "unspecified"),
    ("[::]:8000", "unspecified"),
    ("127.0.0.1:3128", "proxy_listener"),
    ("127.0.0.2:3128", "proxy_listener"),
    ("127.0.0.1:8080", "proxy_listener"),
    ("[::ffff:127.0.0.1]:8080", "proxy_listener"),
    ("169.254.169.254:80", "metadata"),
    ("2852039166:80", "metadata"),
    ("0xa9fea9fe:80", "metadata"),
    ("169.254.43518:80", "metadata"),
    ("[::ffff:169.254.169.254]:80", "metadata"),
    ("[64:ff9b::a9fe:a9fe]:80", "metadata"),
    ("[2002:a9fe:a9fe::]:80", "metadata"),
    ("[fd00:ec2::254]:80", "metadata"),
    ("[FD00:EC2:0::254]:80", "metadata"),
    ("168.63.129.16:80", "metadata"),
    ("metadata.google.internal:80", "metadata"),
    ("Metadata.Google.Internal.:80", "metadata"),
    ("metadata.azure.com:80", "metadata"),
    ("sneaky.example:80", "metadata"),
    ("169.254.1.1:80", "link_local"),
    ("[fe80::1%25eth0]:80", "link_local"),
    ("[fe80::1]:80", "link_local"),
    ("[2606:4700::1%25eth0]:80", "zone_id"),
    ("10.0.0.1:22", "private"),
    ("10.1:22", "private"),
    ("172.16.0.1:22", "private"),
    ("192.168.0.1:22", "private"),
    ("100.64.0.1:22", "cgnat"),
    ("[fd00::1]:22", "ula"),
    ("[fec0::1]:22", "private"),
    ("224.0.0.1:22", "multicast"),
    ("[ff02::1]:22", "multicast"),
    ("255.255.255.255:22", "broadcast"),
    ("240.0.0.1:22", "reserved"),
    ("[2001:db8::1]:22", "reserved"),
    ("kubernetes.default.svc:443", "internal_name"),
    ("redis:6379", "internal_name"),
    ("mixed.example:443", "loopback"),
    ("mapped.example:443", "loopback"),
])
def test_internal_destinations_are_refused_in_every_form(authority: str, kind: str) -> None:
    for raw in (f"CONNECT {authority} HTTP/1.1", f"GET http://{authority}/ HTTP/1.1"):
        destination = check(raw)
        assert destination.refused, raw
        assert destination.rule is not None and destination.rule.kind == kind, (raw, destination.rule)


@pytest.mark.parametrize("authority", [
    "public.example:443", "dual.example:443", "93.184.215.14:443", "1572395790:443",
    "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443", "[::ffff:93.184.215.14]:443", "[64:ff9b::93.184.215.14]:443",
    "api.openai.com:443",
])
def test_public_destinations_are_external(authority: str) -> None:
    destination = check(f"CONNECT {authority} HTTP/1.1")
    assert not destination.internal and not destination.refused
    assert destination.addresses


@pytest.mark.parametrize("authority", ["1.2.3.4.5:80", "256.1.1.1:80", "[::ffff:127.1]:80", "a..b:80", "%2F:80"])
def test_ambiguous_hosts_never_reach_the_guard(authority: str) -> None:
    with pytest.raises(HeadError):
        parse_target(parse_head(f"CONNECT {authority} HTTP/1.1".encode()))


async def test_a_name_is_resolved_once_and_every_address_is_kept_in_order() -> None:
    resolver = CountingResolver()
    destination = await guard(resolver=resolver).check(Target("dual.example", 443))
    assert resolver.asked == ["dual.example"]
    assert destination.addresses == (ip_address("93.184.215.14"), ip_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c"))


async def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    destination = await guard().check(Target("mixed.example", 443))
    assert destination.refused and destination.rule is not None and destination.rule.kind == "loopback"
    assert "mixed.example:443 (93.184.215.14, 127.0.0.1)" in destination.refusal_message()


async def test_internal_names_are_refused_without_a_lookup_when_nothing_could_admit_them() -> None:
    resolver = CountingResolver()
    destination = await guard(resolver=resolver).check(Target("metadata.google.internal", 80))
    assert destination.refused and resolver.asked == []


async def test_an_allow_entry_admits_its_network_and_ports_only() -> None:
    admitted = await guard("10.2.0.0/16:8000-8001").check(Target("10.2.0.5", 8001, address=ip_address("10.2.0.5")))
    assert admitted.internal and not admitted.refused and admitted.allowed_by == ("10.2.0.0/16:8000-8001",)
    other_port = await guard("10.2.0.0/16:8000").check(Target("10.2.0.5", 22, address=ip_address("10.2.0.5")))
    assert other_port.refused
    other_net = await guard("10.2.0.0/16:8000").check(Target("10.3.0.5", 8000, address=ip_address("10.3.0.5")))
    assert other_net.refused
    mapped = await guard("10.2.0.0/16:8000").check(Target("::ffff:a02:5", 8000, address=ip_address("::ffff:10.2.0.5")))
    assert mapped.refused


async def test_an_admitted_name_needs_every_internal_address_admitted() -> None:
    allowed = await guard("10.2.0.0/16:8000").check(Target("mixed-private.example", 8000))
    assert not allowed.refused and allowed.allowed_by == ("10.2.0.0/16:8000",)
    refused = await guard("10.2.0.0/16:8000").check(Target("mixed.example", 8000))
    assert refused.refused and refused.rule is not None and refused.rule.kind == "loopback"


async def test_an_internal_name_is_admitted_only_when_all_its_addresses_are() -> None:
    resolver = CountingResolver()
    admitted = await guard("10.2.0.0/16:8000", resolver=resolver).check(Target("vllm.svc.cluster.local", 8000))
    assert resolver.asked == ["vllm.svc.cluster.local"]
    assert not admitted.refused and admitted.rule is not None and admitted.rule.kind == "private"
    unresolvable = await guard("10.2.0.0/16:8000").check(Target("nothing.svc.cluster.local", 8000))
    assert unresolvable.refused and unresolvable.rule is not None and unresolvable.rule.kind == "internal_name"


async def test_metadata_is_only_opened_by_an_entry_for_exactly_its_address() -> None:
    target = Target("169.254.169.254", 80, address=ip_address("169.254.169.254"))
    assert (await guard("169.254.0.0/16:*").check(target)).refused
    assert (await guard("0.0.0.0/0:*").check(target)).refused
    assert not (await guard("169.254.169.254/32:80").check(target)).refused
    assert (await guard("169.254.0.0/16:*").check(Target("sneaky.example", 80))).refused


async def test_the_proxy_own_listeners_are_refused_whatever_the_allow_list_says() -> None:
    for target in (Target("127.0.0.1", EGRESS_PORT, address=ip_address("127.0.0.1")),
                   Target("127.0.0.1", API_PORT, address=ip_address("127.0.0.1"))):
        destination = await guard("127.0.0.0/8:*", "0.0.0.0/0:*").check(target)
        assert destination.refused and destination.rule is not None and destination.rule.kind == "proxy_listener"
        assert "proxy loop" in destination.refusal_message()


async def test_configured_internal_domains_are_refused() -> None:
    resolver = CountingResolver({"git.corp.example.com": ["93.184.215.14"]})
    destination = await guard(resolver=resolver, domains=["corp.example.com"]).check(
        Target("git.corp.example.com", 443))
    assert destination.refused and resolver.asked == []


class Failing:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    async def resolve(self, name: str) -> tuple[IPAddress, ...]:
        if self.error is not None:
            raise self.error
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_an_unresolvable_external_name_is_left_to_the_policy() -> None:
    own = OwnAddresses([])
    failing = DestinationGuard(Failing(ResolutionError("cannot resolve x.example: NXDOMAIN")), [], own)
    destination = await failing.check(Target("x.example", 443))
    assert not destination.refused and destination.addresses == ()
    assert destination.unresolved == "cannot resolve x.example: NXDOMAIN"
    assert destination.policy_input()["resolved"] is False


async def test_a_hanging_resolver_is_cut_off() -> None:
    slow = DestinationGuard(Failing(), [], OwnAddresses([]), resolve_timeout_s=0.05)
    destination = await slow.check(Target("x.example", 443))
    assert destination.addresses == () and destination.unresolved == "resolving x.example timed out"


async def test_the_policy_sees_addresses_the_internal_flag_the_rule_and_the_admitting_entries() -> None:
    destination = await guard("10.2.0.0/16:8000").check(Target("vllm.example", 8000))
    assert destination.policy_input() == {
        "host": "vllm.example", "port": 8000, "addresses": ["10.2.0.5"], "internal": True, "rule": "private",
        "allowed_by": ["10.2.0.0/16:8000"], "resolved": True,
    }
    external = await guard().check(Target("public.example", 443))
    assert external.policy_input() == {
        "host": "public.example", "port": 443, "addresses": ["93.184.215.14"], "internal": False, "rule": None,
        "allowed_by": [], "resolved": True,
    }


async def test_the_policy_input_with_a_destination_matches_the_egress_input_schema() -> None:
    schemas = [json.loads(p.read_text()) for p in (default_policy_dir() / "schema").glob("*.json")]
    registry: Registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    schema = json.loads((default_policy_dir() / "schema" / "egress_input.v1.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    identity = Identity("web", "shop", None, None, "anonymous")
    for target in (Target("vllm.example", 8000), Target("mixed.example", 443), Target("nowhere.example", 443),
                   Target("127.0.0.1", EGRESS_PORT, address=ip_address("127.0.0.1"))):
        document = build_egress_input(target.host, target.port, "CONNECT", identity)
        document["destination"] = (await guard("10.2.0.0/16:8000").check(target)).policy_input()
        validator.validate(document)

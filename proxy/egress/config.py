"""The `egress` config section: the shadow-AI forward proxy's listener, caller mapping and limits."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

from proxy.egress.host import HostError, normalise_host
from proxy.egress.internal_allow import parse_internal_target


class SourceApp(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    app: str = Field(min_length=1)
    team: str = Field(min_length=1)


class EgressConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # Workloads must reach it, so deployments usually bind 0.0.0.0; loopback is the safe default.
    host: str = "127.0.0.1"
    port: int = Field(3128, ge=0, le=65535)
    source_apps: dict[str, SourceApp] = Field(
        default_factory=dict,
        description="Caller address (IP or CIDR) -> app and team, for workloads that send no proxy credentials; "
        "the most specific network wins.",
    )
    max_connections: int = Field(1024, gt=0)
    idle_timeout_s: float = Field(300.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    resolve_timeout_s: float = Field(5.0, gt=0)
    header_timeout_s: float = Field(10.0, gt=0)
    max_header_bytes: int = Field(16384, ge=256, le=1024 * 1024)
    resolve: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Host name -> IP address (or a list of them) used instead of DNS. For tests and special "
        "deployments: the addresses are checked like resolved ones, and the policy still sees the name.",
    )
    allow_internal: tuple[str, ...] = Field(
        default=(),
        description="Internal destinations that may be reached, as CIDR:port (10.2.0.0/16:8000, [fd00::/8]:443, "
        "10.0.0.5:8000-8010, 10.0.0.0/8:*). Everything else internal is refused before connecting.",
    )
    internal_domains: tuple[str, ...] = Field(
        default=(),
        description="More domain suffixes (corp.example.com) whose names are internal whatever they resolve to.",
    )

    @field_validator("source_apps")
    @classmethod
    def _networks(cls, value: dict[str, SourceApp]) -> dict[str, SourceApp]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP address or CIDR network") from None
        return value

    @field_validator("resolve", mode="before")
    @classmethod
    def _address_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {host: [address] if isinstance(address, str) else address for host, address in value.items()}
        return value

    @field_validator("resolve")
    @classmethod
    def _addresses(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        resolved: dict[str, tuple[str, ...]] = {}
        for host, addresses in value.items():
            if not addresses:
                raise ValueError(f"{host}: give at least one IP address")
            for address in addresses:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ValueError(f"{host}: {address!r} is not an IP address") from None
            # Lookups use the normalised host, so the keys must be too.
            resolved[_name(host)] = addresses
        return resolved

    @field_validator("allow_internal")
    @classmethod
    def _internal_targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(parse_internal_target(entry).text for entry in value)

    @field_validator("internal_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_name(domain.lstrip(".")) for domain in value)


def _name(host: str) -> str:
    try:
        normalised = normalise_host(host)
    except HostError as exc:
        raise ValueError(str(exc)) from None
    if normalised.address is not None:
        raise ValueError(f"{host!r} is an IP address, not a name")
    return normalised.name

"""The `egress` config section: the shadow-AI forward proxy's listener, caller mapping and limits."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
    header_timeout_s: float = Field(10.0, gt=0)
    max_header_bytes: int = Field(16384, ge=256, le=1024 * 1024)
    resolve: dict[str, str] = Field(
        default_factory=dict,
        description="Host name -> IP address to connect to instead of resolving it through DNS. For tests and "
        "special deployments only: the policy still sees the requested host name.",
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

    @field_validator("resolve")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for host, address in value.items():
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{host}: {address!r} is not an IP address") from None
        # Lookups use the normalised host (lower case, no trailing dot), so the keys must be too.
        return {host.lower().rstrip("."): address for host, address in value.items()}

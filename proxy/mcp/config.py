"""The `mcp` config section: upstream MCP servers behind `/mcp/<server>`, their credentials and timeouts."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

# Headers the gateway sets or relays itself: a configured credential header must not replace them.
RESERVED_HEADERS = frozenset({"content-type", "accept", "content-length", "host", "mcp-session-id",
                              "mcp-protocol-version", "last-event-id", "mcp-method", "mcp-name", "traceparent",
                              "tracestate", "x-request-id", "transfer-encoding", "connection"})
_SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class McpTimeouts(_Frozen):
    connect_s: float = Field(5.0, gt=0)
    # From forwarding a message to the upstream's response headers, and to each later piece of a response.
    response_s: float = Field(30.0, gt=0)
    # A GET stream (server-to-client messages) may be quiet for long: only a dead connection ends it.
    listen_idle_s: float = Field(600.0, gt=0)


class McpServerConfig(_Frozen):
    url: str
    # Credentials the proxy injects; clients never see them. `bearer` usually comes from ${ENV}.
    bearer: str | None = None
    bearer_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: McpTimeouts = McpTimeouts()
    max_connections: int = Field(64, gt=0)
    # Tool names exported as metric labels; any other tool is counted as "other" (bounded cardinality).
    tools: tuple[str, ...] = ()
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"{name!r} is set by the gateway itself")
            if "\r" in text or "\n" in text:
                raise ValueError(f"{name}: header values must be one line")
        return value

    @model_validator(mode="after")
    def _one_bearer(self) -> McpServerConfig:
        if self.bearer and self.bearer_file:
            raise ValueError("set bearer or bearer_file, not both")
        if (self.bearer or self.bearer_file) and any(n.lower() == "authorization" for n in self.headers):
            raise ValueError("headers.Authorization conflicts with bearer")
        return self

    def credential_headers(self, where: str, base_dir: Path) -> dict[str, str]:
        """The headers carrying this server's credentials, with `bearer_file` read now (start-up)."""
        from proxy.config import ConfigError  # proxy.config imports this module

        headers = dict(self.headers)
        token = self.bearer
        if self.bearer_file is not None:
            try:
                token = (base_dir / self.bearer_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{where}.bearer_file: {exc.strerror}") from exc
            if not token:
                raise ConfigError(f"{where}.bearer_file: the file is empty")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


class McpConfig(_Frozen):
    servers: dict[str, McpServerConfig] = Field(default_factory=dict)
    # The key that binds session ids to callers (proxy/mcp/sessions.py). Replicas behind one load
    # balancer must share it; without it each process group (a supervisor and its forked workers) makes
    # its own at start-up, and sessions do not survive a restart or cross replicas.
    session_key_file: Path | None = None
    _generated_key: bytes = PrivateAttr(default_factory=lambda: secrets.token_bytes(32))

    def session_key(self, base_dir: Path) -> bytes:
        from proxy.config import ConfigError  # proxy.config imports this module

        if self.session_key_file is None:
            return self._generated_key
        try:
            key = (base_dir / self.session_key_file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"mcp.session_key_file: {exc.strerror}") from exc
        if len(key) < 16:
            raise ConfigError("mcp.session_key_file: the key must be at least 16 bytes")
        return key

    @field_validator("servers")
    @classmethod
    def _names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in value:
            if not _SERVER_NAME.match(name):
                raise ValueError(f"{name!r}: server names are lower-case letters, digits, '-' and '_' (they are "
                                 "URL path segments and metric labels)")
        return value

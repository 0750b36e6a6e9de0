"""The gateway built from explicit parts (policy engine, store, scanner, metrics, tracing), so any front
door assembly can construct it; its upstream sessions are closed by the caller's exit stack."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from proxy.budget import BudgetStore
from proxy.pii import Scanner
from proxy.policy.engine import PolicyEngine
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.tracing import Tracing

from .config import McpConfig
from .gateway import McpGateway
from .judge import Judge, ScopeMemory
from .observe import Observer
from .sessions import SessionSeal
from .upstream import McpUpstream


async def open_gateway(config: McpConfig, base_dir: Path, stack: AsyncExitStack, *, policy: PolicyEngine,
                       store: BudgetStore, scanner: Scanner, metrics: Metrics, tracing: Tracing, fail_open: bool,
                       pseudonym_key: bytes | None = None) -> McpGateway:
    """The gateway with one pooled upstream per server, closed by `stack`; credentials are read now."""
    upstreams = {}
    for name, server in config.servers.items():
        upstream = McpUpstream(name, server, server.credential_headers(f"mcp.servers.{name}", base_dir))
        await upstream.start()
        stack.push_async_callback(upstream.close)
        upstreams[name] = upstream
    judge = Judge(policy, store, scanner, ScopeMemory(), fail_open, pseudonym_key)
    observer = Observer(metrics, {name: frozenset(server.tools) for name, server in config.servers.items()})
    return McpGateway(upstreams, judge, scanner, observer, tracing, SessionSeal(config.session_key(base_dir)))

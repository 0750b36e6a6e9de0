"""Builds each runtime component from its config section, and keeps them: the app opens and closes them in order."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider

from proxy.gateway.decide import Decider, ScopeCache
from proxy.gateway.observation import Reporter
from proxy.server.gc_tuning import PauseRecorder
from proxy.sighup import on_sighup

from .budget import BudgetStore
from .budget.build import build_store
from .catalogue import Catalogue
from .config import Config, ConfigError
from .egress.server import EgressServer, start_egress
from .eventlog import EventLog, open_event_log
from .identity.authenticator import Authenticator
from .identity.build import open_authenticator
from .mcp.build import open_gateway
from .mcp.gateway import McpGateway
from .pii import CustomType, Scanner
from .policy.engine import PolicyEngine
from .policy.reload import PolicyReloader
from .policy.reporting import reload_reporter, restart_reporter
from .policy.shadow import JsonlSink, ShadowEvaluator
from .policy.validate import Limits
from .telemetry.env import TelemetryEnv
from .telemetry.logging import get_logger
from .telemetry.metrics import Metrics
from .telemetry.tracing import Tracing, otlp_provider
from .tokens import TokenEstimator, Vocab
from .tokens.claude import tiktoken_name
from .upstream.client import Upstream

log = get_logger("proxy.components")


@dataclass(frozen=True, slots=True)
class Components:
    """The runtime objects, built from the config once per app; each stage is handed only what it uses."""

    config: Config
    catalogue: Catalogue
    upstreams: dict[str, Upstream]
    metrics: Metrics
    tracing: Tracing
    reporter: Reporter
    estimator: TokenEstimator
    scanner: Scanner
    policy: PolicyEngine
    store: BudgetStore
    decider: Decider
    pseudonym_key: bytes | None
    authenticator: Authenticator
    event_log: EventLog
    egress: EgressServer | None = None
    mcp: McpGateway | None = None


COMPONENTS = web.AppKey("components", Components)


def components_ctx(config: Config, metrics: Metrics, tracing: Tracing, reporter: Reporter,
                   egress_sock: socket.socket | None, listening: Sequence[tuple[str, int]]
                   ) -> Callable[[web.Application], AsyncIterator[None]]:
    """Every component opened in order, and closed in the reverse order, in one exit stack."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app[COMPONENTS] = await open_components(config, metrics, tracing, reporter, stack, egress_sock,
                                                    listening)
            yield
    return ctx


async def open_components(config: Config, metrics: Metrics, tracing: Tracing, reporter: Reporter,
                          stack: AsyncExitStack, egress_sock: socket.socket | None = None,
                          listening: Sequence[tuple[str, int]] = ()) -> Components:
    authenticator = await open_authenticator(config, metrics, stack)
    if metrics.enabled:
        pauses = stack.enter_context(PauseRecorder(metrics.gc_pause))
        stack.push_async_callback(cancelled, asyncio.get_running_loop().create_task(pauses.drain_every(1.0)))
    stack.push_async_callback(tracing.shutdown)
    # First: building an encoding briefly holds its ranks twice (Python dict and Rust tables), and
    # that moment is the process's peak RSS; the less else is allocated by then, the lower it is.
    estimator = await open_estimator(config)
    upstreams = {name: Upstream(name, cfg, cfg.resolved_key()) for name, cfg in config.upstreams.items()}
    for upstream in upstreams.values():
        await upstream.start()
        stack.push_async_callback(upstream.close)
    policy = await open_policy(config, metrics, stack)
    store = await open_store(config, stack, metrics)
    scanner, key = build_scanner(config), pseudonym_key(config)
    reporter.shadow = await open_shadow(config, metrics, stack)
    events = open_event_log(config)
    stack.push_async_callback(events.close)
    mcp = None
    if config.mcp.servers:
        mcp = await open_gateway(config.mcp, config.base_dir, stack, policy=policy, store=store, scanner=scanner,
                                 metrics=metrics, tracing=tracing, fail_open=config.policy.fail_open,
                                 pseudonym_key=key)
    egress = None
    if config.egress.enabled:
        # Opened after (and closed before) the components it uses.
        egress = await start_egress(config.egress, lambda: policy, events, metrics,
                                    authenticator.identify_credential, sock=egress_sock,
                                    listening=[(config.server.host, config.server.port), *listening])
        stack.push_async_callback(egress.close)
    return Components(
        config=config, catalogue=Catalogue.from_config(config), upstreams=upstreams, metrics=metrics,
        tracing=tracing, reporter=reporter, estimator=estimator, scanner=scanner, policy=policy, store=store,
        decider=Decider(policy, ScopeCache(), store, fail_open=config.policy.fail_open,
                        include_prompt=config.policy.include_prompt, decision_log=config.policy.decision_log,
                        prompt_estimate=config.tokens.prompt_estimate,
                        shadow=None if reporter.shadow is None else reporter.shadow.candidate),
        pseudonym_key=key, authenticator=authenticator, event_log=events, egress=egress, mcp=mcp)


async def cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


@functools.cache
def shared_vocab(vocab_dir: Path | None) -> Vocab:
    """One verified vocab per folder per process: the files never change while we run, and each app
    built in this process (tests build many) would otherwise verify and parse them again."""
    return Vocab(vocab_dir)


def load_vocab(config: Config) -> Vocab:
    """The vocab with the encodings the configured models name loaded: ~0.5 s to verify and parse, and
    ~65 MB of tiktoken tables for o200k_base and cl100k_base together. With `tokens.prompt_estimate:
    bound` prompts are rarely tokenized, so the files are only verified; a table is built when a count is
    first needed (TokenEstimator.ready: a bound over the context window, or streamed output without usage),
    and until then the worker is ~65 MB lighter. `auto` loads them: the shipped policies read the estimate,
    and the supervisor's copy, built before the fork, is shared by every worker."""
    vocab = shared_vocab(config.path(config.tokens.vocab_dir) if config.tokens.vocab_dir else None)
    needed = {tiktoken_name(model.encoding) for model in config.models.values()}
    if config.tokens.prompt_estimate == "bound":
        vocab.verify(needed)
    else:
        vocab.load_all(needed)
    return vocab


async def open_estimator(config: Config) -> TokenEstimator:
    # Off the loop. `serve` loaded it before the loop started (server/workers.py); tests build apps directly.
    vocab = await asyncio.to_thread(load_vocab, config)
    release_freed_memory()
    return TokenEstimator(vocab)


def release_freed_memory() -> None:
    """Parsing the vocab leaves tens of MB freed but held by malloc; hand them back to the OS (glibc only)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def tracer_provider_from_env(settings: TelemetryEnv) -> TracerProvider | None:
    """Tracing is on when the standard OTLP endpoint variables name a collector (and the SDK is not off)."""
    return otlp_provider(settings) if settings.traces is not None else None


def build_scanner(config: Config) -> Scanner:
    return Scanner([CustomType(c.name, c.pattern, c.validator, c.category) for c in config.pii.custom])


def pseudonym_key(config: Config) -> bytes | None:
    path = config.pii.pseudonymize_key_file
    if path is None:
        return None
    try:
        key = config.path(path).read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"pii.pseudonymize_key_file: {exc.strerror}") from exc
    if len(key) < 16:
        raise ConfigError("pii.pseudonymize_key_file: the key must be at least 16 bytes")
    return key


async def open_policy(config: Config, metrics: Metrics, stack: AsyncExitStack) -> PolicyEngine:
    policy = config.policy
    if policy.engine == "opa":
        # Imported only when used: the OPA client and the Redis client cost ~12 MB per worker otherwise.
        from .policy.opa_server import OpaServer

        server = await OpaServer(policy.opa_url, timeout_s=policy.opa_timeout_ms / 1000).start()
        stack.push_async_callback(server.close)
        return server
    reloader = policy_reloader(config, metrics, "live", policy.dir)
    await reloader.start(watch=policy.reload_interval_s > 0)
    stack.push_async_callback(reloader.close)
    reload_on_sighup(reloader)
    return reloader


def policy_reloader(config: Config, metrics: Metrics, which: str, root: Path) -> PolicyReloader:
    policy = config.policy
    return PolicyReloader(config.path(root), policy=which, compiled=policy.compiled,
                          limits=Limits(timeout_ms=policy.timeout_ms), interval_s=policy.reload_interval_s or 2.0,
                          on_reload=reload_reporter(metrics, log), on_restart=restart_reporter(metrics, log, which))


async def open_shadow(config: Config, metrics: Metrics, stack: AsyncExitStack) -> ShadowEvaluator | None:
    """A candidate policy version decided beside the live one; every difference is logged, counted and,
    with `policy.shadow_log`, appended for `llm-policy-proxy policy diff-report`."""
    policy = config.policy
    if policy.shadow_dir is None:
        return None
    candidate = policy_reloader(config, metrics, "shadow", policy.shadow_dir)
    await candidate.start(watch=policy.reload_interval_s > 0)
    stack.push_async_callback(candidate.close)
    jsonl = JsonlSink(config.path(policy.shadow_log)) if policy.shadow_log else None
    if jsonl is not None:
        stack.callback(jsonl.close)

    def sink(event: dict[str, Any]) -> None:
        for kind in event.get("kinds", ()):
            metrics.child(metrics.shadow_diffs, kind).inc()
        log.info("policy_shadow_difference", **{k: v for k, v in event.items() if k != "event"})
        if jsonl is not None:
            jsonl(event)
    return ShadowEvaluator(candidate, sink=sink)


def reload_on_sighup(reloader: PolicyReloader) -> None:
    loop = asyncio.get_running_loop()
    on_sighup(lambda: loop.create_task(reloader.reload_now()))


def store_error_counter(metrics: Metrics, store: str) -> Callable[[str], None]:
    def count(operation: str) -> None:
        metrics.child(metrics.store_errors, store, operation).inc()
    return count


async def open_store(config: Config, stack: AsyncExitStack, metrics: Metrics | None = None) -> BudgetStore:
    kind = config.budget.store
    on_circuit = None
    if metrics is not None:
        metrics.store_circuit(store=kind, state="closed", changed=False)
        on_circuit = functools.partial(store_circuit_changed, metrics, kind)
    store = build_store(config, on_error=None if metrics is None else store_error_counter(metrics, kind),
                        on_circuit=on_circuit)
    stack.push_async_callback(store.close)
    return store


def store_circuit_changed(metrics: Metrics, store: str, state: str) -> None:
    metrics.store_circuit(store=store, state=state, changed=True)

"""CPU per request of each piece of the proxy's own work on bench/ratio.py's request (2 KB chat), measured
one piece at a time in this process with the real components: what `bench/ratio.py`'s gap to the relay
is made of, in µs, so each named cost has a figure (docs/performance.md, "Where the gap goes").

    .venv/bin/python bench/stages.py [--n 3000] [--concurrency 1]

Each line is CPU time (this process, and the evaluator child where named) over n calls, per call. Calls
that batch under load (evaluator requests, SQLite writes) are issued 32 at a time, as at c=32 (one at a
time with --concurrency 1: each then pays its own pipe round trip or transaction, as at c=1). What the
lines do not cover is the HTTP handling itself (aiohttp's server and client), which the relay does too,
and the trace export (bench/ratio.py's full stack against an ablation without traces). The last lines sum
the pieces each of bench/ratio.py's configs cannot do without: a floor under its cost over the relay.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import procfs
import stack
from prometheus_client import CollectorRegistry

from proxy.budget import MONTH, ScopeLimit
from proxy.catalogue import Catalogue, CatalogueEntry
from proxy.components import build_scanner, open_estimator, open_store
from proxy.config import load_config
from proxy.endpoints import CHAT
from proxy.endpoints.base import Usage
from proxy.gateway.analyse import Analysis, analyse
from proxy.gateway.decide import Decided, build_input, log_decision
from proxy.gateway.enforce import enforce
from proxy.gateway.observation import Observation, Reporter
from proxy.gateway.pipeline import parse
from proxy.gateway.relay import Tally
from proxy.identity import Identity
from proxy.identity.build import open_authenticator
from proxy.pii import scan_texts
from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.contract import ENTRYPOINTS
from proxy.policy.decision import Decision
from proxy.policy.embedded import EmbeddedRego
from proxy.policy.isolated import IsolatedRego
from proxy.policy.validate import version_spec
from proxy.telemetry.logging import configure_logging
from proxy.telemetry.metrics import Metrics

ALLOW_ALL = Path(__file__).resolve().parent / "policies" / "allow-all"
IDENTITY = Identity("notebook", "research", None, "bench-research", "api_key")


def cpu_us(step: Callable[[], object], n: int) -> float:
    for _ in range(min(n, 300)):
        step()
    started = time.process_time_ns()
    for _ in range(n):
        step()
    return (time.process_time_ns() - started) / n / 1000


async def cpu_us_async(step: Callable[[], Awaitable[object]], n: int) -> float:
    for _ in range(min(n, 300)):
        await step()
    started = time.process_time_ns()
    for _ in range(n):
        await step()
    return (time.process_time_ns() - started) / n / 1000


def observe(reporter: Reporter, entry: CatalogueEntry, analysis: Analysis, decision: Decision) -> None:
    """One allowed, non-streamed request's observation, as the pipeline reports it, then its finish()."""
    observation = Observation(reporter, "0123456789abcdef0123456789abcdef", "POST", CHAT.route)
    observation.identified(IDENTITY)
    observation.called(CHAT.name, "gpt-4o", False)
    observation.resolved(entry)
    observation.analysed(analysis)
    observation.decided(Decided(decision, "rev", {}, 0.0001, ()))
    observation.enforced(entry, False)
    observation.forwarded(200)
    observation.relayed(Tally(usage=Usage(500, 64, 0)), 0.002, None)
    observation.settled(Usage(500, 64, 0), False, 1890)
    observation.finish(200)


async def cpu_us_batched(step: Callable[[], Awaitable[object]], n: int, child: int | None = None,
                         concurrency: int = 32) -> tuple[float, float | None]:
    """Per call, issued `concurrency` at a time; and the child process's CPU per call, if one is named."""
    async def rounds(count: int) -> None:
        for _ in range(count // concurrency):
            await asyncio.gather(*(step() for _ in range(concurrency)))

    await rounds(min(n, 640))
    started, child_started = time.process_time_ns(), procfs.cpu_seconds(child) if child else 0.0
    await rounds(n)
    calls = n // concurrency * concurrency
    child_us = (procfs.cpu_seconds(child) - child_started) / calls * 1e6 if child else None
    return (time.process_time_ns() - started) / calls / 1000, child_us


async def main(n: int, concurrency: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="llmpp-stages-"))
    config = load_config(stack.proxy_config(directory, 9, "sqlite", 8, "stages"))
    raw = stack.write_body(directory, 2048, False).read_bytes()
    sink = open(os.devnull, "wb")  # noqa: SIM115, ASYNC230
    configure_logging("info", sink)
    figures: dict[str, float] = {}

    def row(key: str, name: str, us: float, note: str = "") -> None:
        figures[key] = us
        print(f"{key:17s} {name:58s} {us:7.1f} µs{'  (' + note + ')' if note else ''}", flush=True)

    catalogue = Catalogue.from_config(config)
    estimator, scanner = await open_estimator(config), build_scanner(config)
    call = parse(CHAT, raw, None)
    entry = catalogue.resolve(call.model)
    assert entry is not None
    async with AsyncExitStack() as exits:
        metrics = Metrics(CollectorRegistry())
        authenticator = await open_authenticator(config, metrics, exits)
        headers = {"Authorization": f"Bearer {stack.KEY}"}
        row("auth", "API key to an identity", await cpu_us_async(lambda: authenticator.authenticate(headers), n))
    row("parse", "JSON body to a typed call", cpu_us(lambda: parse(CHAT, raw, None), n))
    row("resolve", "catalogue entry", cpu_us(lambda: catalogue.resolve(call.model), n))
    row("pii", "PII scan of every text field", cpu_us(lambda: scan_texts(scanner, CHAT.texts(call.body)), n))
    row("tokens", "prompt tokens, tokenized (o200k_base)",
        cpu_us(lambda: estimator.prompt(CHAT.name, entry.encoding, call.body), n))
    row("bound", "prompt tokens, bound (UTF-8 length)",
        cpu_us(lambda: estimator.prompt(CHAT.name, entry.encoding, call.body, bound=True), n))
    analysis = analyse(call, entry, estimator, scanner)
    document = build_input(call, entry, IDENTITY, analysis, {}, time.time())
    row("input", "policy input document", cpu_us(lambda: build_input(call, entry, IDENTITY, analysis, {}, time.time()),
                                                  n))

    policies = (("shipped", "shipped policies", default_policy_dir()), ("allow", "allow-all", ALLOW_ALL))
    for key, label, folder in policies:
        inline = EmbeddedRego.from_dir(folder, compiled=True)
        row(f"inline-{key}", f"policy decision in-process, compiled, {label}",
            cpu_us(lambda inline=inline: _sync(inline.evaluate(document)), n))  # type: ignore[misc]
        bundle = load_bundle(folder)
        engine = await IsolatedRego.start(version_spec(bundle, ENTRYPOINTS, True), bundle.revision, "compiled", 5000)
        assert engine.process is not None
        worker, child = await cpu_us_batched(lambda engine=engine: engine.evaluate(document), n,  # type: ignore[misc]
                                             engine.process.pid, concurrency)
        row(f"isolated-{key}", f"policy decision in the evaluator process, {label}", worker + (child or 0.0),
            f"{worker:.1f} in this process + {child:.1f} in the evaluator")
        await engine.close()
    # allow-all reads no key of the decision input: the version's one answer, kept after the first ask.
    bundle = load_bundle(ALLOW_ALL)
    constant = await IsolatedRego.start(version_spec(bundle, ENTRYPOINTS, True), bundle.revision, "compiled", 5000,
                                        depends_on=frozenset({"models"}))
    await constant.evaluate(document)
    row("constant-allow", "policy decision, allow-all's answer kept (asked once)",
        (await cpu_us_batched(lambda: constant.evaluate(document), n, None, concurrency))[0])
    await constant.close()

    decision = await EmbeddedRego.from_dir(default_policy_dir(), compiled=True).evaluate(document)
    row("enforce", "enforce (obligations of the shipped decision)",
        cpu_us(lambda: enforce(call, entry, analysis, decision, catalogue), n))
    for detail in ("compact", "full"):
        row(f"dlog-{detail}", f"decision log line, {detail}", cpu_us(
            lambda detail=detail: log_decision(document, decision, "rev", 1000, "req",  # type: ignore[misc]
                                               detail=detail), n))
    for label, enabled in (("metrics off", False), ("metrics on", True)):
        reporter = Reporter(Metrics(CollectorRegistry(), enabled=enabled))
        row(f"observe-{'on' if enabled else 'off'}", f"request observation and its log line, {label}",
            cpu_us(lambda reporter=reporter: observe(reporter, entry, analysis, decision), n))  # type: ignore[misc]

    async with AsyncExitStack() as exits:
        store = await open_store(config, exits)
        tracking = [ScopeLimit("team:research", MONTH), ScopeLimit("app:notebook", MONTH),
                    ScopeLimit("key:bench-research", MONTH)]
        record = (await cpu_us_batched(lambda: store.record(tracking, 1200, 300), n, None, concurrency))[0]
        row("record", "spend record on the tracking scopes (SQLite)", record)
        limited = [ScopeLimit("team:research", MONTH, limit_micros=10**15), *tracking[1:]]

        async def reserve_settle() -> None:
            reservation = await store.reserve("req", limited, 5000, 900)
            await store.settle(reservation, 1200, 300)

        hold = (await cpu_us_batched(reserve_settle, n, None, concurrency))[0]
        row("hold", "reserve + settle on a limited scope (SQLite)", hold)

    minimal = ["auth", "parse", "pii", "bound", "input", "constant-allow", "dlog-compact", "observe-off", "record"]
    full = ["auth", "parse", "pii", "tokens", "input", "isolated-shipped", "enforce", "dlog-compact", "observe-on",
            "hold"]
    for name, keys in (("minimal config", minimal), ("full stack, without traces", full)):
        print(f"\n{name}: the pieces above it needs sum to {sum(figures[k] for k in keys):.0f} µs ({', '.join(keys)})")
    sink.close()


def _sync(coroutine: Awaitable[Any]) -> Any:
    """Runs a coroutine that never awaits anything (the in-process engine) without an event loop turn."""
    try:
        coroutine.send(None)  # type: ignore[attr-defined]
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine awaited")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight for the batching pieces")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.concurrency))

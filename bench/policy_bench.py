"""Policy evaluation latency with the shipped policies: p50/p99 per entry point, embedded regorus,
interpreter and compiled (RVM), plus the Python side (input JSON, parsing the decision) on its own.

With --isolated: what serving from the evaluator process costs against evaluating in this process, per
decision: latency one at a time, CPU spent by this process (the event loop's share), and decisions per
second with 32 in flight.

Run: .venv/bin/python bench/policy_bench.py [--n 20000] [--isolated]   (targets: p50 <= 0.1 ms, p99 <= 0.3 ms)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from proxy.identity import Identity
from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.decision import parse_decision
from proxy.policy.embedded import EmbeddedRego
from proxy.policy.input import (
    BudgetState,
    Estimate,
    ModelFacts,
    PiiFinding,
    RequestFacts,
    build_egress_input,
    build_input,
    identity_input,
)

IDENTITY = Identity(app="billing-api", team="payments", user="u-42", key_id="k-7", source="api_key")
CATALOGUE = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3-mini",
             "text-embedding-3-small", "text-embedding-3-large", "claude-sonnet-4"]


def realistic_input() -> dict[str, Any]:
    request = RequestFacts(endpoint="chat.completions", model="gpt-4o", stream=True, max_tokens=512,
                           messages=6, tool_names=("search", "lookup_invoice"), user="u-42")
    model = ModelFacts(provider="openai", input_usd_per_mtok=2.5, output_usd_per_mtok=10.0,
                       context_window=128_000, cached_input_usd_per_mtok=1.25)
    findings = (PiiFinding("email", 2, "messages[1].content"), PiiFinding("phone", 1, "messages[3].content"))
    budget = (BudgetState("team:payments", spent_usd=310.0, percent=62.0, window="month", limit_usd=500.0,
                          remaining_usd=190.0),
              BudgetState("app:billing-api", spent_usd=12.5, percent=25.0, window="day", limit_usd=50.0,
                          remaining_usd=37.5))
    estimate = Estimate(prompt_tokens=2_400, max_output_tokens=512, max_cost_usd=0.0111)
    return build_input(request, IDENTITY, model, estimate, findings, budget, time.time())


async def measure(name: str, call: Callable[[], Awaitable[object] | object], n: int) -> None:
    async def once() -> None:
        result = call()
        if asyncio.iscoroutine(result):
            await result

    for _ in range(min(1000, n)):
        await once()
    samples = []
    for _ in range(n):
        started = time.perf_counter_ns()
        await once()
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    p50, p99 = samples[n // 2] / 1000, samples[int(n * 0.99)] / 1000
    mean = statistics.fmean(samples) / 1000
    print(f"{name:40s} p50 {p50:7.1f} µs   p99 {p99:7.1f} µs   mean {mean:7.1f} µs   (n={n})")


async def measure_engine(engine: EmbeddedRego, doc: dict[str, Any], egress: dict[str, Any],
                         identity: dict[str, Any], n: int) -> None:
    await measure("decision (input -> Decision)", lambda: engine.evaluate(doc), n)
    await measure("egress decision", lambda: engine.evaluate_egress(egress), n)
    await measure(f"allowed_models ({len(CATALOGUE)} models)", lambda: engine.allowed_models(identity, CATALOGUE), n)


async def isolated_cost(n: int) -> None:
    from proxy.policy.reload import PolicyReloader

    doc = realistic_input()
    for compiled in (False, True):
        reloader = await PolicyReloader(default_policy_dir(), compiled=compiled).start(watch=False)
        local = EmbeddedRego(load_bundle(default_policy_dir()), compiled=compiled)
        engines: dict[str, Any] = {"in-process": local, "evaluator process": reloader}
        for name, engine in engines.items():
            label = f"[{'compiled' if compiled else 'interpreter'}] {name}"
            await measure(f"{label} latency", lambda engine=engine: engine.evaluate(doc), n)
            cpu = time.process_time()
            for _ in range(n):
                await engine.evaluate(doc)
            print(f"{label:40s} CPU in this process per decision {(time.process_time() - cpu) / n * 1e6:7.1f} µs")
            started = time.perf_counter()
            for _ in range(n // 32):
                await asyncio.gather(*(engine.evaluate(doc) for _ in range(32)))
            print(f"{label:40s} {(n // 32) * 32 / (time.perf_counter() - started):9.0f} decisions/s at 32 in flight")
        await reloader.close()


async def main(n: int) -> None:
    doc = realistic_input()
    egress = build_egress_input("my-resource.openai.azure.com", 443, "CONNECT", IDENTITY)
    identity = identity_input(IDENTITY)
    for compiled in (False, True):
        started = time.perf_counter()
        bundle = load_bundle(default_policy_dir())
        loaded = time.perf_counter()
        engine = EmbeddedRego(bundle, compiled=compiled)
        built = time.perf_counter()
        print(f"[{engine.mode}] load {1000 * (loaded - started):.1f} ms, compile + warm-up "
              f"{1000 * (built - loaded):.1f} ms, revision {engine.revision}")
        await measure_engine(engine, doc, egress, identity, n)
    raw = orjson.dumps(engine.evaluate_entrypoint("data.llm.main.decision", doc))
    print("[python side of one decision]")
    await measure("input to JSON (orjson)", lambda: orjson.dumps(doc).decode(), n)
    await measure("result from JSON + parse_decision", lambda: parse_decision(orjson.loads(raw)), n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--isolated", action="store_true", help="compare the evaluator process with in-process")
    args = parser.parse_args()
    asyncio.run(isolated_cost(args.n) if args.isolated else main(args.n))

"""CPU per budget operation on each store: reserve + settle (a request with a limit), record (one with none),
at one request at a time and at many at once, on the store itself and through `LedgeredStore` (what the
request path calls); this process's CPU (the SQLite thread included) and, on a redis-server the bench
starts itself, the server's. `--against REV` runs the same measurement on the budget
code of another commit, in a process of its own, and prints both side by side.

    .venv/bin/python bench/budget_bench.py [--against db24dfe] [--n 4000] [--concurrency 1 32] [--scopes 4]
        [--uvloop] [--redis-url URL]

Without --redis-url a private redis-server is started (its CPU is then the bench's alone). Run it on a quiet
machine: CPU per operation is what the loop and the store spend, but a loaded host stretches both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from proxy.budget.ledger import Ledger
from proxy.budget.ledgered import LedgeredStore
from proxy.budget.redis import RedisStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import ScopeLimit
from proxy.budget.windows import DAY, MONTH, Window

ROOT = Path(__file__).resolve().parents[1]
SCOPES = ["key:k-7", "user:u-42", "app:billing-api", "team:payments", "global"]
WINDOWS = [DAY, MONTH, Window("rolling", 3600), MONTH, MONTH]


def limits(count: int) -> list[ScopeLimit]:
    out = [ScopeLimit(s, w, limit_micros=10**15) for s, w in zip(SCOPES[:count], WINDOWS, strict=False)]
    # The key also carries per-minute limits, as a real deployment would.
    out[0] = ScopeLimit(SCOPES[0], DAY, 10**15, None, 10**9, 10**12)
    return out


def tracking(count: int) -> list[ScopeLimit]:
    """The unlimited scopes a request is recorded on when its decision names no limit."""
    return [ScopeLimit(s, MONTH) for s in SCOPES[:count]]


def redis_cpu(client: redis.Redis | None) -> float:
    if client is None:
        return 0.0
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(
    store: Any, op: str, n: int, concurrency: int, scopes: int, server: redis.Redis | None
) -> dict[str, float]:
    scope_limits, unlimited = limits(scopes), tracking(scopes)

    async def one(i: int) -> None:
        if op == "record":
            await store.record(unlimited, 3_000, 600)
        else:
            reservation = await store.reserve(f"bench-{i}", scope_limits, 7_150, 1_324)
            await store.settle(reservation, 3_000, 600)

    async def worker(start: int, count: int) -> None:
        for i in range(start, start + count):
            await one(i)

    await asyncio.gather(*(worker(k * 1000, max(1, n // 10 // concurrency)) for k in range(concurrency)))  # warm
    per_worker = n // concurrency
    cpu, wall, server_cpu = time.process_time(), time.perf_counter(), redis_cpu(server)
    await asyncio.gather(*(worker(10**6 + k * per_worker, per_worker) for k in range(concurrency)))
    done = per_worker * concurrency
    return {
        "cpu_us": (time.process_time() - cpu) / done * 1e6,
        "server_cpu_us": (redis_cpu(server) - server_cpu) / done * 1e6,
        "wall_us": (time.perf_counter() - wall) / done * 1e6,
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    server = redis.Redis.from_url(args.redis_url) if args.private_redis else None
    for kind in ("redis", "sqlite"):
        for layer in ("store", "ledgered"):
            with tempfile.TemporaryDirectory() as tmp:
                prefix = f"bench{uuid.uuid4().hex[:8]}"
                if kind == "redis":
                    store: Any = RedisStore.from_url(args.redis_url, prefix=prefix)
                else:
                    store = SqliteStore(Path(tmp) / "bench.sqlite3")
                if layer == "ledgered":
                    store = LedgeredStore(store, Ledger(Path(tmp) / "ledger.jsonl"))
                for op in ("pair", "record"):
                    if op == "record" and not hasattr(store, "record"):
                        continue  # the code measured predates record()
                    watched = server if kind == "redis" else None
                    for concurrency in args.concurrency:
                        row = await measure(store, op, args.n, concurrency, args.scopes, watched)
                        results.append({"store": kind, "layer": layer, "op": op, "concurrency": concurrency, **row})
                await store.close()
                if kind == "redis":
                    client = redis.Redis.from_url(args.redis_url)
                    keys = list(client.scan_iter(match="{" + prefix + "}:*", count=1000))
                    if keys:
                        client.delete(*keys)
                    client.close()
    return results


def measured_in_subprocess(args: argparse.Namespace, rev: str | None) -> list[dict[str, Any]]:
    """This script's --json run, on the working tree's budget code or on `rev`'s."""
    command = [sys.executable, __file__, "--json", "--n", str(args.n), "--scopes", str(args.scopes),
               "--redis-url", args.redis_url, "--concurrency", *map(str, args.concurrency)]
    command += ["--uvloop"] if args.uvloop else []
    command += ["--private-redis"] if args.private_redis else []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        if rev is not None:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "proxy"], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
            env["PYTHONPATH"] = tmp  # ahead of the editable install of the working tree
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return list(json.loads(out))


def print_table(columns: dict[str, list[dict[str, Any]]]) -> None:
    names = list(columns)
    print("CPU µs per operation: this process / the redis-server (0 for SQLite)")
    print(f"{'store':<7} {'via':<9} {'operation':<14} {'conc':>4}  " + "  ".join(f"{n:>22}" for n in names))
    for row in columns[names[-1]]:
        key = (row["store"], row["layer"], row["op"], row["concurrency"])
        cells = []
        for name in names:
            match = [r for r in columns[name] if (r["store"], r["layer"], r["op"], r["concurrency"]) == key]
            cells.append(f"{match[0]['cpu_us']:>11.1f} / {match[0]['server_cpu_us']:>8.1f}" if match else f"{'-':>22}")
        op = "reserve+settle" if row["op"] == "pair" else "record"
        print(f"{row['store']:<7} {row['layer']:<9} {op:<14} {row['concurrency']:>4}  " + "  ".join(cells))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server started for the run")
    parser.add_argument("--n", type=int, default=4000, help="operations per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--scopes", type=int, default=4, choices=range(1, 6))
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as the server does")
    parser.add_argument("--against", metavar="REV", help="also measure the budget code of this commit")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--private-redis", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.json:
        if args.uvloop:
            import uvloop

            uvloop.install()
        print(json.dumps(asyncio.run(run(args))))
        return
    server = None
    if args.redis_url is None:
        sys.path.insert(0, str(ROOT))
        from tests.support.redis_server import RedisServer

        server = RedisServer(Path(tempfile.mkdtemp(prefix="budget-bench-")), durable=False)
        server.start()
        args.redis_url, args.private_redis = server.url, True
    else:
        args.private_redis = False
    try:
        columns = {}
        if args.against:
            columns[args.against] = measured_in_subprocess(args, args.against)
        columns["this tree"] = measured_in_subprocess(args, None)
    finally:
        if server is not None:
            server.kill()
    print_table(columns)


if __name__ == "__main__":
    main()

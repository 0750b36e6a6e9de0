"""`budget show|reset` and `shadow-ai report`: the configured store, read and reset from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack

import orjson

from proxy.components import open_store
from proxy.config import Config, ConfigError, load_config
from proxy.egress.report import format_report, parse_since, shadow_ai_report
from proxy.eventlog import open_event_log
from proxy.server.admin import budget_usage


def cmd_budget(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{args.config}: invalid config\n{exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, config))


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with AsyncExitStack() as stack:
        store = await open_store(config, stack)
        if args.budget_command == "reset":
            await store.reset(args.scope)
            print(f"reset {args.scope}")
            return 0
        rows = await budget_usage(store, args.scope)
        if args.json:
            print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
            return 0
        print(f"{'scope':<32} {'window':<12} {'period':<12} {'spent USD':>12} {'limit USD':>12} {'used %':>8}")
        for row in rows:
            limit = "-" if row["limit_usd"] is None else f"{row['limit_usd']:.4f}"
            percent = "-" if row["percent"] is None else f"{row['percent']:.1f}"
            print(f"{row['scope']:<32} {row['window']:<12} {row['period']:<12} {row['spent_usd']:>12.6f} "
                  f"{limit:>12} {percent:>8}")
    return 0


def cmd_shadow_report(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        since = parse_since(args.since)
    except (ConfigError, ValueError) as exc:
        print(f"llm-policy-proxy shadow-ai report: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        events = open_event_log(config)
        try:
            print(format_report(await shadow_ai_report(events, since)))
        finally:
            await events.close()
        return 0
    return asyncio.run(run())

"""Resident memory each dependency adds when imported, in the order the proxy's worker imports them.

    .venv/bin/python bench/import_memory.py

Reads VmRSS from /proc/self/status before and after each import, in one fresh interpreter: the floor a
worker stands on before it loads a tokenizer (bench/tokenizer_compare.py) or serves a request. regorus is
not among them: only the policy evaluator process imports it (tests/unit/test_imports.py).
"""

from __future__ import annotations

import importlib

MODULES = ("orjson", "yaml", "pydantic", "asyncio", "aiohttp", "uvloop", "structlog", "prometheus_client",
           "opentelemetry.sdk.trace", "tiktoken",
           "phonenumbers", "stdnum", "proxy.config", "proxy.server.app", "proxy.server.workers")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    print(f"{'interpreter':58s} {rss_mb():6.1f} MB")
    for name in MODULES:
        before = rss_mb()
        importlib.import_module(name)
        print(f"{name:58s} +{rss_mb() - before:5.1f} MB  (total {rss_mb():.1f})")


if __name__ == "__main__":
    main()

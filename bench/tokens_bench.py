"""Speed of prompt estimates for chat bodies of 1, 8 and 64 KB, in µs per KB (budget: 50 µs/KB).

Run from the repo root: `.venv/bin/python bench/tokens_bench.py [--check]`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proxy.tokens import TokenEstimator, Vocab

BUDGET_US_PER_KB = 50.0
SIZES_KB = (1, 8, 64)


def corpus() -> str:
    """Mixed prose and code from the standard library: realistic, and the same on every machine."""
    import asyncio
    import email
    import json.decoder
    import logging

    prose = "\n\n".join(inspect.getdoc(module) or "" for module in (asyncio, email, logging, json))
    code = inspect.getsource(json.decoder)
    return prose + "\n\n" + code


def chat_body(size_kb: int, text: str) -> dict[str, Any]:
    """A conversation of ~500-byte turns whose message text adds up to `size_kb` KB."""
    target = size_kb * 1024
    messages: list[dict[str, str]] = [{"role": "system", "content": "You are a careful reviewer."}]
    used, offset = 0, 0
    while used < target:
        chunk = min(500, target - used)
        if offset + chunk > len(text):
            offset = 0
        role = "user" if len(messages) % 2 else "assistant"
        messages.append({"role": role, "content": text[offset : offset + chunk]})
        used += chunk
        offset += chunk
    return {"model": "gpt-4o", "messages": messages, "max_tokens": 512}


def time_per_call(run: Callable[[], object]) -> float:
    """Best of five rounds, each long enough (~0.2 s) to swamp timer noise."""
    start = time.perf_counter()
    run()
    calls = max(1, int(0.2 / max(time.perf_counter() - start, 1e-6)))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocab-dir", type=Path, default=None)
    parser.add_argument("--check", action="store_true", help=f"exit 1 above {BUDGET_US_PER_KB} µs/KB")
    args = parser.parse_args()

    vocab = Vocab(args.vocab_dir)
    start = time.perf_counter()
    vocab.load_all()
    print(f"vocab load (all encodings, once per process): {time.perf_counter() - start:.2f} s")

    estimator = TokenEstimator(vocab)
    text = corpus()
    over = False
    # "raw" is tiktoken alone on the concatenated message text: the floor our estimate sits on.
    print(f"{'encoding':<12} {'size':>6} {'messages':>9} {'tokens':>7} {'µs/call':>9} {'µs/KB':>7} {'raw µs/KB':>10}")
    for encoding in ("o200k_base", "cl100k_base"):
        for size_kb in SIZES_KB:
            body = chat_body(size_kb, text)
            body_kb = len(json.dumps(body["messages"]).encode()) / 1024
            seconds = time_per_call(lambda: estimator.chat(encoding, body))  # noqa: B023
            joined = "".join(message["content"] for message in body["messages"])
            raw = time_per_call(lambda: vocab.encoding(encoding).encode_ordinary(joined))  # noqa: B023
            per_kb = seconds * 1e6 / body_kb
            over |= per_kb > BUDGET_US_PER_KB
            print(
                f"{encoding:<12} {size_kb:>4}KB {len(body['messages']):>9} "
                f"{estimator.chat(encoding, body):>7} {seconds * 1e6:>9.1f} {per_kb:>7.1f} "
                f"{raw * 1e6 / body_kb:>10.1f}"
            )
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())

"""The SSE framing's cost: a 64-event chat stream parsed in reads of several sizes, and how long the first
event of a read holding the whole stream takes to come out (what a burst adds to time to first token).

    .venv/bin/python bench/sse_bench.py [--n 2000] [--source DIR]

Best of five loops, CPU time per stream in this process. `--source DIR` measures the parser of another
checkout's `proxy/` instead (e.g. `git archive b0e4054 proxy | tar -x -C /tmp/before`), for before and after.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any

import orjson

EVENTS = [b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                    "choices": [{"index": 0, "delta": {"content": f" word{i}"},
                                                 "finish_reason": None}]}) + b"\n\n" for i in range(64)]
STREAM = b"".join(EVENTS)


def best_of_five(step: object, n: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time_ns()
        for _ in range(n):
            step()  # type: ignore[operator]
        best = min(best, (time.process_time_ns() - started) / n / 1000)
    return best


SSEParser: Any = None  # set in main(): this tree's parser, or the one of --source


def whole_stream(size: int) -> None:
    parser = SSEParser()
    for at in range(0, len(STREAM), size):
        for _ in parser.feed(STREAM[at:at + size]):
            pass


def first_event() -> None:
    next(iter(SSEParser().feed(STREAM)))  # iter(): older parsers return a list


def main(n: int, source: str | None) -> None:
    global SSEParser
    if source:
        sys.path.insert(0, source)
    SSEParser = importlib.import_module("proxy.upstream.sse").SSEParser
    for size in (len(STREAM), 4096, 512):
        print(f"64 events in reads of {size:5d} bytes: {best_of_five(lambda size=size: whole_stream(size), n):6.1f} µs")
    print(f"first event out of a read holding all 64: {best_of_five(first_event, n * 2):6.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--source", help="a checkout whose proxy/ parser to measure")
    args = parser.parse_args()
    main(args.n, args.source)

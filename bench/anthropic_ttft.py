"""Time to first token streamed through the proxy: /v1/messages against /v1/chat/completions.

    python bench/anthropic_ttft.py [--requests 400] [--warmup 50] [--chunk-delay-ms 10] [--out FILE]

Starts the benchmark upstream (bench/serve_upstream.py: the demo model, paced tokens) and one proxy
(`llm-policy-proxy serve`, SQLite budgets, the shipped policies), then sends streamed requests one at a
time, alternating the two APIs so drift hits both alike: each is timed directly against the upstream and
through the proxy, from sending the request to the first event carrying generated text. The added TTFT
is proxy minus direct; the issue's bar is messages' added p50 within 10% of chat completions'.
Run it on a quiet machine (docs/performance.md); figures from a loaded one are not valid.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import KEY, KEY_SHA, free_port, pinned

REPO = Path(__file__).resolve().parents[1]
PROMPT = "Summarise the quarterly report for the board in three sentences."


def config(directory: Path, upstream_port: int, port: int) -> Path:
    path = directory / "proxy.yaml"
    path.write_text(f"""server: {{host: 127.0.0.1, port: {port}}}
auth:
  mode: gateway
  keys: [{{id: bench-research, sha256: {KEY_SHA}, app: notebook, team: research}}]
upstreams:
  openai: {{kind: openai_compatible, base_url: "http://127.0.0.1:{upstream_port}/paced/v1"}}
  claude: {{kind: anthropic, base_url: "http://127.0.0.1:{upstream_port}/paced/v1", api_key: bench}}
models:
  gpt-4o: {{upstream: openai, upstream_model: demo-model, prices: {{input: 2.5, output: 10.0}}}}
  claude-sonnet-4-5: {{upstream: claude, encoding: claude-3, prices: {{input: 3.0, output: 15.0}}}}
policy: {{dir: {REPO / 'policies'}, reload_interval_s: 0, compiled: true}}
budget: {{store: sqlite, sqlite_path: {directory / 'budget.sqlite3'}, ledger_path: {directory / 'ledger.jsonl'}}}
telemetry: {{log_level: warning}}
""")
    return path


@contextmanager
def running(command: list[str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(ready_url, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{command[1]} did not start") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def first_token_seconds(client: httpx.Client, url: str, body: dict[str, object], headers: dict[str, str],
                        marker: re.Pattern[bytes]) -> float:
    started = time.perf_counter()
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        seen = b""
        chunks = response.iter_raw()
        for chunk in chunks:
            seen += chunk
            if marker.search(seen):
                elapsed = time.perf_counter() - started
                for _ in chunks:  # read to the end, so the connection is reused
                    pass
                return elapsed
    raise SystemExit(f"no generated text in the stream from {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="per API and path")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--chunk-delay-ms", type=float, default=10.0, help="the upstream's pace between events")
    parser.add_argument("--out", type=Path, help="append the result table here (markdown)")
    args = parser.parse_args()
    upstream_port, proxy_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        upstream_cmd = pinned("1", [sys.executable, "bench/serve_upstream.py", "--port", str(upstream_port),
                                    "--paced-chunk-delay-ms", str(args.chunk_delay_ms), "--reply-words", "32"])
        proxy_cmd = pinned("0", [sys.executable, "-m", "proxy", "serve", "--config",
                                 str(config(Path(tmp), upstream_port, proxy_port))])
        with running(upstream_cmd, f"http://127.0.0.1:{upstream_port}/v1/models"), \
                running(proxy_cmd, f"http://127.0.0.1:{proxy_port}/readyz"), httpx.Client(timeout=30) as client:
            proxy, direct = f"http://127.0.0.1:{proxy_port}/v1", f"http://127.0.0.1:{upstream_port}/paced/v1"
            cases = {
                "chat.completions": ("chat/completions", {"model": "gpt-4o", "stream": True, "max_tokens": 64,
                                                          "messages": [{"role": "user", "content": PROMPT}]},
                                     {"Authorization": f"Bearer {KEY}"}, re.compile(rb'"content":"[^"]')),
                "messages": ("messages", {"model": "claude-sonnet-4-5", "stream": True, "max_tokens": 64,
                                          "messages": [{"role": "user", "content": PROMPT}]},
                             {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
                             re.compile(rb'"text_delta","text":"[^"]')),
            }
            samples: dict[tuple[str, str], list[float]] = {(api, where): [] for api in cases
                                                          for where in ("direct", "proxy")}
            for number in range(args.warmup + args.requests):
                for api, (path, body, headers, marker) in cases.items():
                    for where, base in (("direct", direct), ("proxy", proxy)):
                        seconds = first_token_seconds(client, f"{base}/{path}", body, headers, marker)
                        if number >= args.warmup:
                            samples[(api, where)].append(seconds)
    report(samples, args)


def report(samples: dict[tuple[str, str], list[float]], args: argparse.Namespace) -> None:
    lines = [f"TTFT, {args.requests} streamed requests per API and path, upstream pace {args.chunk_delay_ms:g} ms",
             "", "| API | direct p50 ms | proxy p50 ms | proxy p90 ms | added p50 ms |", "|---|---|---|---|---|"]
    added = {}
    for api in ("chat.completions", "messages"):
        direct, proxy = samples[(api, "direct")], samples[(api, "proxy")]
        added[api] = statistics.median(proxy) - statistics.median(direct)
        p90 = statistics.quantiles(proxy, n=10)[-1]
        lines.append(f"| {api} | {statistics.median(direct) * 1000:.2f} | {statistics.median(proxy) * 1000:.2f} "
                     f"| {p90 * 1000:.2f} | {added[api] * 1000:.2f} |")
    ratio = added["messages"] / added["chat.completions"] if added["chat.completions"] > 0 else float("nan")
    lines += ["", f"messages' added TTFT is {ratio:.2f}x chat completions' (bar: at most 1.10x)"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a") as out:
            out.write(text + "\n\n")


if __name__ == "__main__":
    main()

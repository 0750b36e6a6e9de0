"""Latency the MCP gateway adds per tool call: the same SDK client session calling the same SDK MCP server
directly and through the proxy, in interleaved rounds, on loopback.

    .venv/bin/python bench/mcp_latency.py [--calls 500] [--rounds 5] [--tool lookup|slow]

The server is the test server (tests/support/mcp_server.py, MCPServer over Streamable HTTP, uvicorn);
the proxy runs the shipped policies (decision per call, argument and result scans, rate limit on SQLite,
metrics on). `lookup` carries an email (redacted, restored) and a secret in its result (redacted).
Prints p50/p90/p99 per call for each path and the difference of the medians. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.server.app import build_app
from tests.support.config import KEYS, REPO, make_config
from tests.support.mcp_server import UPSTREAM_TOKEN, McpServerThread
from tests.support.servers import ServerThread


async def timed_calls(url: str, token: str, calls: int, tool: str) -> list[float]:
    arguments = {"email": "jo@example.com"} if tool == "lookup" else {"seconds": 0}
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as client):
        await client.initialize()
        await client.list_tools()
        for _ in range(10):  # warm the connections, the policy engine and the catalogue
            await client.call_tool(tool, arguments)
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            await client.call_tool(tool, arguments)
            samples.append(time.perf_counter() - started)
        return samples


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49] * 1000:7.3f} ms  p90 {q[89] * 1000:7.3f} ms  p99 {q[98] * 1000:7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tool", choices=("lookup", "slow"), default="lookup")
    args = parser.parse_args()
    server, servers = McpServerThread(), ServerThread()
    with tempfile.TemporaryDirectory() as state:
        # The shipped policies with the rate limit far above the bench's rate: the reserve still runs on
        # every call, but the shipped 120 calls per minute would stop the first round.
        policies = Path(shutil.copytree(REPO / "policies", Path(state) / "policies"))
        data = json.loads((policies / "data" / "mcp.json").read_text())
        data["mcp"]["calls_per_minute"] = 10_000_000
        (policies / "data" / "mcp.json").write_text(json.dumps(data))
        config = make_config("http://127.0.0.1:9/v1", Path(state), policy__dir=str(policies), mcp={"servers": {
            "crm": {"url": server.url, "bearer": UPSTREAM_TOKEN, "tools": ["lookup", "slow"]}}})
        runner, port = servers.start_app(build_app(config))
        direct: list[float] = []
        proxied: list[float] = []
        try:
            for _ in range(args.rounds):
                direct += asyncio.run(timed_calls(server.url, UPSTREAM_TOKEN, args.calls, args.tool))
                proxied += asyncio.run(timed_calls(f"http://127.0.0.1:{port}/mcp/crm", KEYS["admin"], args.calls,
                                                   args.tool))
        finally:
            servers.stop_app(runner)
            servers.close()
            server.close()
    print(f"tool {args.tool}, {args.rounds} rounds x {args.calls} calls, one SDK client session per round")
    print(f"direct        {percentiles(direct)}")
    print(f"through proxy {percentiles(proxied)}")
    added = statistics.median(proxied) - statistics.median(direct)
    print(f"added per call (median difference): {added * 1000:.3f} ms")


if __name__ == "__main__":
    main()

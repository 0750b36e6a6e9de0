"""The floor under the proxy's CPU per request: what a bare aiohttp relay costs on this machine.

    .venv/bin/python bench/floor.py [--seconds 8] [--concurrency 32] [--rounds 3] [--no-proxy]

Runs, under wrk (1 KB non-streaming chat, the bench body), on core 0 with uvloop like the proxy:
- `relay`: an aiohttp server that reads the body, parses it with orjson, posts it upstream on a pooled
  aiohttp client session and returns the upstream's body and status: what every model call through any
  aiohttp proxy must do, with no auth, policy, PII scan, token count, budget, metrics, logs or traces;
- `relay-raw`: the same without parsing the JSON (bytes in, bytes out);
- `server`: a second instance of the test upstream (an aiohttp server answering from memory), on core 0
  like the relays, so the relays' "adds" compare like with like;
- `relay-tuned`: `relay` with a pre-encoded URL, no User-Agent and no decompression, as proxy/upstream does;
- `proxy`: the full stack as bench/run.py runs it (SQLite budgets, traces to the sink, info logs).
and prints req/s and CPU µs per request (from /proc) for each, rounds interleaved so drift hits all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import measure
import stack


def serve_relay(port: int, upstream_port: int, parse: bool, tuned: bool) -> None:
    import orjson
    import uvloop
    from aiohttp import ClientSession, TCPConnector, web
    from yarl import URL

    target = URL(f"http://127.0.0.1:{upstream_port}/v1/chat/completions", encoded=tuned)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["session"] = ClientSession(connector=TCPConnector(limit=256), skip_auto_headers=("User-Agent",),
                                       auto_decompress=not tuned) if tuned else \
            ClientSession(connector=TCPConnector(limit=256))
        yield
        await app["session"].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if parse:
            body = orjson.dumps(orjson.loads(body))
        async with request.app["session"].post(target, data=body,
                                               headers={"Content-Type": "application/json"}) as upstream:
            if upstream.content_type == "text/event-stream":
                # A stream is relayed chunk by chunk as it arrives, for bench/ratio.py's TTFT figure.
                response = web.StreamResponse(status=upstream.status,
                                              headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
            payload = await upstream.read()
            return web.Response(body=payload, status=upstream.status, content_type="application/json")

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/v1/chat/completions", relay)
    app.router.add_get("/readyz", ready)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024)


def bare_server(directory: Path):  # type: ignore[no-untyped-def]
    port = stack.free_port()
    command = stack.pinned(stack.PROXY_CPUS, [str(stack.BIN / "python"), "bench/serve_upstream.py", "--port", str(port),
                                              "--delay-ms", "0", "--chunk-delay-ms", "0", "--reply-words", "64"])
    return stack.service("server", command, port, "/v1/models", directory / "server.log")


def relay(directory: Path, upstream_port: int, parse: bool, tuned: bool = False):  # type: ignore[no-untyped-def]
    port = stack.free_port()
    command = stack.pinned(stack.PROXY_CPUS, [str(stack.BIN / "python"), "bench/floor.py", "--serve-relay",
                                              "--port", str(port), "--upstream-port", str(upstream_port)]
                           + ([] if parse else ["--raw"]) + (["--tuned"] if tuned else []))
    return stack.service("relay", command, port, "/readyz", directory / "relay.log")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-proxy", action="store_true", help="only the relays")
    parser.add_argument("--serve-relay", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tuned", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.serve_relay:
        serve_relay(args.port, args.upstream_port, parse=not args.raw, tuned=args.tuned)
        return
    results: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="llmpp-floor-") as tmp:
        directory = Path(tmp)
        body = stack.write_body(directory, 1024, False)
        with stack.upstream(directory, 0.0, 0.0, 10.0, 64) as upstream, stack.otlp_sink(directory) as sink:
            for round_no in range(args.rounds):
                cases = [("server", lambda: bare_server(directory)),
                         ("relay-raw", lambda: relay(directory, upstream.port, parse=False)),
                         ("relay", lambda: relay(directory, upstream.port, parse=True)),
                         ("relay-tuned", lambda: relay(directory, upstream.port, parse=True, tuned=True))]
                if not args.no_proxy:
                    cases.append(("proxy", lambda: stack.proxy(directory, upstream.port, sink.port, "sqlite", 1)))
                for name, start in cases:
                    with start() as server:  # type: ignore[operator]
                        if name == "proxy":
                            stack.reset_budget(server)
                        url = server.url("/v1/chat/completions")
                        measure.wrk(url, body, args.concurrency, 2.0, None, warmup=0)
                        result = measure.wrk(url, body, args.concurrency, args.seconds, server.pid, warmup=0)
                    if result["errors"]:
                        sys.exit(f"{name}: {result['errors']} errors")
                    cpu_us = 1e6 * result["cpu_s"] / result["requests"]
                    p50 = result["total_ms"]["p50"]
                    results.setdefault(name, []).append((result["requests_per_s"], cpu_us, p50))
                    print(f"round {round_no + 1} {name}: {result['requests_per_s']:.0f} req/s, "
                          f"CPU {cpu_us:.0f} µs/req, p50 {p50:.3f} ms", flush=True)
    print(f"\nconcurrency {args.concurrency}, 1 KB chat, {args.rounds} rounds of {args.seconds:.0f} s; median (range)")
    server_p50 = statistics.median(p for _, _, p in results["server"])
    for name, runs in results.items():
        rates, cpus = [r for r, _, _ in runs], [c for _, c, _ in runs]
        p50 = statistics.median(p for _, _, p in runs)
        # At higher concurrency p50 is mostly queueing (concurrency / throughput), not added work.
        added = "" if name == "server" or args.concurrency > 1 else f"   adds {p50 - server_p50:.3f} ms p50"
        print(f"{name:10s} {statistics.median(rates):7.0f} req/s ({min(rates):.0f}–{max(rates):.0f})   "
              f"CPU {statistics.median(cpus):6.0f} µs/req ({min(cpus):.0f}–{max(cpus):.0f})   p50 {p50:.3f} ms{added}")


if __name__ == "__main__":
    main()

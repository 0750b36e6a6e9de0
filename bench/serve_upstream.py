"""The benchmark's upstream: the demo model in its own process, with a set delay, stream rate and reply length.

The demo model quotes the whole prompt back; here the reply is a fixed `--reply-words` words, as a real
model's answer does not grow with the prompt (a 64 KB prompt would otherwise stream 11,000 chunks back).
The same model is also served under /paced/v1 with `--paced-chunk-delay-ms` between stream events, so one
upstream offers both an as-fast-as-possible stream and one paced like a real model's tokens. With
`--burst` a stream's events all go out in one write (a fast model, a cached answer), so the proxy's first
read holds the whole answer (bench/ratio.py --burst).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.demo import DemoModel
from proxy.server.workers import install_event_loop_policy

SENTENCE = "The quarterly numbers look steady, with revenue up slightly and churn flat across regions."


class DelayedModel(DemoModel):
    def __init__(self, delay_s: float, chunk_delay_s: float, reply_words: int, burst: bool = False) -> None:
        self.delay_s = delay_s
        self.chunk_delay_s = chunk_delay_s
        self.burst = burst
        words = SENTENCE.split(" ")
        self.answer = " ".join(words[i % len(words)] for i in range(max(1, reply_words)))

    def reply(self, prompt: str) -> str:
        return self.answer

    async def stream(self, request: web.Request, events: AsyncIterator[bytes],
                     done_marker: bool = True) -> web.StreamResponse:
        if not self.burst:
            return await super().stream(request, events, done_marker)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        parts = [(event if event.startswith(b"event: ") else b"data: " + event) + b"\n\n" async for event in events]
        await response.write(b"".join(parts) + (b"data: [DONE]\n\n" if done_marker else b""))
        await response.write_eof()
        return response

    def build_app(self) -> web.Application:
        app = super().build_app()
        if self.delay_s:

            @web.middleware
            async def delay(request: web.Request, handler):  # type: ignore[no-untyped-def]
                await asyncio.sleep(self.delay_s)
                return await handler(request)

            app.middlewares.append(delay)
        return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="before the response head")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="before each streamed event")
    parser.add_argument("--paced-chunk-delay-ms", type=float, default=10.0, help="the same, under /paced/v1")
    parser.add_argument("--reply-words", type=int, default=64)
    parser.add_argument("--burst", action="store_true", help="each stream in one write")
    args = parser.parse_args()
    install_event_loop_policy()
    app = DelayedModel(args.delay_ms / 1000, args.chunk_delay_ms / 1000, args.reply_words, args.burst).build_app()
    paced = DelayedModel(args.delay_ms / 1000, args.paced_chunk_delay_ms / 1000, args.reply_words)
    app.add_subapp("/paced", paced.build_app())
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()

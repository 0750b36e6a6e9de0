"""The benchmark's upstream: the demo model on its own process, with a configurable delay and stream rate."""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from proxy.demo import DemoModel
from proxy.workers import install_event_loop_policy


class DelayedModel(DemoModel):
    def __init__(self, delay_s: float, chunk_delay_s: float) -> None:
        self.delay_s = delay_s
        self.chunk_delay_s = chunk_delay_s

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
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    install_event_loop_policy()
    model = DelayedModel(args.delay_ms / 1000, args.chunk_delay_ms / 1000)
    web.run_app(model.build_app(), host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()

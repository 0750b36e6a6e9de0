"""Servers for tests on a background event loop, so sync and async clients can both call them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class ServerThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-servers", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def start_app(self, app: web.Application, host: str = "127.0.0.1") -> tuple[web.AppRunner, int]:
        async def start() -> tuple[web.AppRunner, int]:
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=2)
            await runner.setup()
            await web.TCPSite(runner, host, 0).start()
            return runner, runner.addresses[0][1]
        return self.run(start())

    def stop_app(self, runner: web.AppRunner) -> None:
        self.run(runner.cleanup())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """`app` on a free loopback port of this event loop, for as long as the block runs: its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()

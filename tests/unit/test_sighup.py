"""SIGHUP reaches every subscriber on the loop (the policy reloader and the keys both listen)."""

from __future__ import annotations

import asyncio
import os
import signal

from proxy.sighup import on_sighup


async def test_every_subscriber_hears_one_sighup() -> None:
    heard: list[str] = []
    both = asyncio.Event()

    def subscriber(name: str) -> None:
        heard.append(name)
        if len(heard) == 2:
            both.set()
    stop_policy = on_sighup(lambda: subscriber("policy"))
    stop_keys = on_sighup(lambda: subscriber("keys"))
    try:
        # pytest runs this loop on the main thread, so the handler is installed (else SIGHUP would kill us).
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, None)
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(both.wait(), 5)
        assert sorted(heard) == ["keys", "policy"]
    finally:
        stop_policy()
        stop_keys()
    stop_keys()  # twice is harmless

"""SIGHUP means "reload": one handler per event loop, calling every subscriber (policy, keys, JWKS).

asyncio keeps one handler per signal and a second add_signal_handler replaces the first, so the
subscribers are kept per loop here (signal dispositions are process-wide state by nature).
"""

from __future__ import annotations

import asyncio
import signal
import weakref
from collections.abc import Callable

from proxy.telemetry.logging import get_logger

log = get_logger("proxy.sighup")
_SUBSCRIBERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Callable[[], object]]] = \
    weakref.WeakKeyDictionary()


def on_sighup(callback: Callable[[], object]) -> Callable[[], None]:
    """Call `callback` on the running loop at each SIGHUP; returns the function that unsubscribes it.
    Outside the main thread (tests run apps on a background loop) nothing is installed."""
    loop = asyncio.get_running_loop()
    subscribers = _SUBSCRIBERS.get(loop)
    if subscribers is None:
        subscribers = []
        try:
            loop.add_signal_handler(signal.SIGHUP, _notify, subscribers)
        except (RuntimeError, ValueError, NotImplementedError):
            log.debug("sighup_reload_unavailable")
            return lambda: None
        _SUBSCRIBERS[loop] = subscribers
    subscribers.append(callback)
    return lambda: subscribers.remove(callback) if callback in subscribers else None


def _notify(subscribers: list[Callable[[], object]]) -> None:
    for callback in list(subscribers):
        callback()

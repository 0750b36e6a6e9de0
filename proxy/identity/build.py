"""The Authenticator from config, with its background work (keys file polling, JWKS refresh, SIGHUP)
started here and stopped by the exit stack it is given."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any

from proxy.config import Config, ConfigError
from proxy.sighup import on_sighup
from proxy.telemetry.metrics import Metrics

from .authenticator import Authenticator
from .caller import Identity
from .keyfile import KeyFileError
from .keyring import KeyRing


async def open_authenticator(config: Config, metrics: Metrics, stack: AsyncExitStack) -> Authenticator:
    auth = config.auth
    keys_path = config.path(auth.keys_file) if auth.keys_file is not None else None
    try:
        keyring = KeyRing(auth.keys, keys_path,
                          on_reload=lambda ok, _: metrics.auth_reloaded(source="keys_file", ok=ok))
    except KeyFileError as exc:
        raise ConfigError(f"auth.keys_file: {exc}") from None
    tokens = None
    if auth.jwt.issuers:
        # Imported only when configured: PyJWT and cryptography cost ~10 MB of RSS in every worker otherwise.
        from .issuers import open_issuers

        tokens = await open_issuers(config, metrics, stack)
    sidecar = Identity(auth.sidecar.app, auth.sidecar.team, None, None, "sidecar") if auth.sidecar else None
    authenticator = Authenticator(keyring, tokens, sidecar, metrics, per_key_metrics=auth.metrics_per_key)
    stack.push_async_callback(authenticator.close)
    if keys_path is not None:
        await in_background(keyring.watch(auth.keys_reload_interval_s), stack)
    stack.callback(on_sighup(authenticator.reload_soon))
    return authenticator


async def in_background(work: Coroutine[Any, Any, None], stack: AsyncExitStack) -> None:
    task = asyncio.get_running_loop().create_task(work)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stack.push_async_callback(stop)

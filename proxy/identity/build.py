"""The Authenticator from config, with its background work (keys file polling, JWKS refresh, SIGHUP)
started here and stopped by the exit stack it is given."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import aiohttp

from proxy.config import Config, ConfigError
from proxy.sighup import on_sighup
from proxy.telemetry.metrics import Metrics

from .authenticator import Authenticator
from .caller import Identity
from .jwks import FileSource, HttpSource, IssuerKeys, KeySource
from .jwt_identity import JwtIdentities
from .keyfile import KeyFileError
from .keyring import KeyRing
from .tokens import Issuer, TokenVerifier


async def open_authenticator(config: Config, metrics: Metrics, stack: AsyncExitStack) -> Authenticator:
    auth = config.auth
    keys_path = config.path(auth.keys_file) if auth.keys_file is not None else None
    try:
        keyring = KeyRing(auth.keys, keys_path,
                          on_reload=lambda ok, _: metrics.auth_reloaded(source="keys_file", ok=ok))
    except KeyFileError as exc:
        raise ConfigError(f"auth.keys_file: {exc}") from None
    tokens = await open_issuers(config, metrics, stack) if auth.jwt.issuers else None
    sidecar = Identity(auth.sidecar.app, auth.sidecar.team, None, None, "sidecar") if auth.sidecar else None
    authenticator = Authenticator(keyring, tokens, sidecar, metrics, per_key_metrics=auth.metrics_per_key)
    stack.push_async_callback(authenticator.close)
    if keys_path is not None:
        await in_background(keyring.watch(auth.keys_reload_interval_s), stack)
    stack.callback(on_sighup(authenticator.reload_soon))
    return authenticator


async def open_issuers(config: Config, metrics: Metrics, stack: AsyncExitStack) -> JwtIdentities:
    settings = config.auth.jwt
    session: aiohttp.ClientSession | None = None

    def shared_session() -> aiohttp.ClientSession:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.fetch_timeout_s))
        return session

    async def close_session() -> None:
        if session is not None:
            await session.close()

    stack.push_async_callback(close_session)
    issuers = []
    for index, issuer in enumerate(settings.issuers):
        keys = IssuerKeys(key_source(config, index, shared_session),
                          refetch_min_interval_s=settings.refetch_min_interval_s,
                          refresh_interval_s=settings.refresh_interval_s, fetch_timeout_s=settings.fetch_timeout_s,
                          on_fetch=lambda ok: metrics.auth_reloaded(source="jwks", ok=ok))
        stack.push_async_callback(keys.close)
        await in_background(keys.run(), stack)
        issuers.append(Issuer(issuer, keys))
    return JwtIdentities(TokenVerifier(issuers), settings.cache_size)


def key_source(config: Config, index: int, session: Callable[[], aiohttp.ClientSession]) -> KeySource:
    issuer = config.auth.jwt.issuers[index]
    if issuer.jwks_file is not None:
        return FileSource(config.path(issuer.jwks_file))
    try:
        return HttpSource(session, issuer.issuer, issuer.jwks_uri,
                          ca_file=config.path(issuer.ca_file) if issuer.ca_file else None,
                          token_file=config.path(issuer.token_file) if issuer.token_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"auth.jwt.issuers.{index}.ca_file: {exc}") from None


async def in_background(work: Coroutine[Any, Any, None], stack: AsyncExitStack) -> None:
    task = asyncio.get_running_loop().create_task(work)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stack.push_async_callback(stop)

"""The JWT issuers from config: each one's key source (a JWKS file or URL) refreshed in the background,
and the verifier over them. Imported only when `auth.jwt.issuers` names one (PyJWT and cryptography)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from contextlib import AsyncExitStack

import aiohttp

from proxy.config import Config, ConfigError
from proxy.telemetry.metrics import Metrics

from .build import in_background
from .jwks import FileSource, HttpSource, IssuerKeys, KeySource
from .jwt_identity import JwtIdentities
from .tokens import Issuer, TokenVerifier


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

"""Events in Redis streams, one per kind, under the budget store's key prefix (`{<prefix>}:ev:<kind>`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from proxy.eventlog import EVENT_RETENTION, EventLogUnavailable, Fields

T = TypeVar("T")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisEventLog:
    def __init__(self, client: aioredis.Redis, *, prefix: str = "llmpp", retention: int = EVENT_RETENTION) -> None:
        if any(c in prefix for c in "{}: "):
            raise ValueError(f"bad key prefix {prefix!r}")
        self._redis = client
        self._p = "{" + prefix + "}"
        self._retention = retention

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "llmpp", timeout_s: float = 1.0) -> RedisEventLog:
        client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix=prefix)

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (RedisError, OSError) as exc:
            raise EventLogUnavailable(f"event log unavailable: {type(exc).__name__}") from exc

    async def append(self, kind: str, fields: Fields) -> None:
        payload: dict[Any, Any] = dict(fields)  # xadd's key type is invariant over str | bytes | ...
        stream = f"{self._p}:ev:{kind}"
        await self._guard(lambda: self._redis.xadd(stream, payload, maxlen=self._retention, approximate=True))

    async def events(self, kind: str, since: float) -> list[dict[str, Any]]:
        stream = f"{self._p}:ev:{kind}"
        rows = await self._guard(lambda: self._redis.xrange(stream, min=str(int(since * 1000)), max="+"))
        out: list[dict[str, Any]] = []
        for entry_id, fields in rows or []:
            event: dict[str, Any] = {_text(k): _text(v) for k, v in (fields or {}).items() if v is not None}
            event["ts"] = int(_text(entry_id or "0").split("-")[0]) / 1000
            out.append(event)
        return out

    async def close(self) -> None:
        await self._redis.aclose()

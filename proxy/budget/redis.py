"""Budget store on Redis: every reserve, settle, record and state read is one atomic Lua script, one round trip.

All keys share one hash tag (`{<prefix>}`), so under Redis Cluster they live in one slot and a reserve
across any set of scopes stays one atomic script. The scripts derive window keys from the server clock,
so keys beyond KEYS[1] are computed inside them; the shared tag keeps those in the same slot too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.budget.errors import StoreUnavailable, refusal
from proxy.budget.scripts import NotSent, Script, ScriptRunner
from proxy.budget.store import (
    DEFAULT_RESERVATION_TTL_S,
    SETTLED_MARKER_TTL_S,
    BudgetState,
    Reservation,
    ScopeLimit,
    ScopeUsage,
    check_limits,
    make_reservation,
    rate_status,
    tightest_states,
)
from proxy.budget.windows import Window
from proxy.ids import new_id

T = TypeVar("T")
# Replies a Redis gives while it cannot serve: failing over, loading, a read-only replica, out of memory.
_OUTAGE_REPLIES = ("LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "BUSY", "OOM")
# Ids per cancel or renew call: Lua's unpack() takes a few thousand values at most.
_IDS_PER_CALL = 500


def _clock(now: float | None) -> str:
    return "" if now is None else str(int(now * 1_000_000))


def _opt(value: int | None) -> int:
    return -1 if value is None else value


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _spec(limits: Sequence[ScopeLimit]) -> str:
    return "\n".join(
        f"{lim.scope} {lim.window.kind} {lim.window.seconds} {_opt(lim.limit_micros)} {_opt(lim.limit_tokens)}"
        f" {_opt(lim.requests_per_minute)} {_opt(lim.tokens_per_minute)}"
        for lim in limits
    )


def _chunks(ids: Sequence[str]) -> Iterator[str]:
    for i in range(0, len(ids), _IDS_PER_CALL):
        yield "\n".join(ids[i : i + _IDS_PER_CALL])


class RedisStore:
    # A call that timed out may still run on the server (StoreUnavailable.maybe_applied).
    failures_may_apply = True

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "llmpp",
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        timeout_s: float = 0.5,
        max_connections: int = 64,
        admit: Callable[[], bool] | None = None,
    ) -> None:
        if any(c in prefix for c in "{}: "):
            raise ValueError(f"bad key prefix {prefix!r}")
        self._redis = client
        self._p = "{" + prefix + "}"
        self._keys = (f"{self._p}:rsv",)
        self._ttl = reservation_ttl_s
        self._scripts = ScriptRunner(
            client.connection_pool, max_connections=max_connections, timeout_s=timeout_s, admit=admit
        )
        self._reserve = Script.load("reserve_v3")
        self._settle = Script.load("settle_v3")
        self._state = Script.load("state_v3")
        self._record = Script.load("record_v3")
        self._cancel = Script.load("cancel_v3")
        self._renew = Script.load("renew_v3")

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "llmpp",
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        timeout_s: float = 0.5,
        max_connections: int = 64,
        admit: Callable[[], bool] | None = None,
    ) -> RedisStore:
        # The scripts (the hot path) run on connections of their own (scripts.py); this pool serves the
        # rest. A blocking pool makes a burst wait briefly for a connection instead of failing with "Too
        # many connections". One quick retry replaces a pooled connection that died with a restart; more
        # would only delay the 503 (or the fail-open path) while Redis is really down. The script runner
        # does the same: a burst waits for one of `max_connections`, a dead idle connection is retried once.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
        )
        return cls(
            aioredis.Redis(connection_pool=pool),
            prefix=prefix,
            reservation_ttl_s=reservation_ttl_s,
            timeout_s=timeout_s,
            max_connections=max_connections,
            admit=admit,
        )

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        # The caller's 503 says what failed, never where: redis-py's texts carry the server's address.
        except NotSent as exc:
            raise StoreUnavailable("The budget store is unreachable.") from exc
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(
                f"The budget store is not answering ({type(exc).__name__}).", maybe_applied=True
            ) from exc
        except ResponseError as exc:
            if str(exc).startswith(_OUTAGE_REPLIES):
                raise StoreUnavailable(f"The budget store is not serving ({str(exc).split()[0]}).") from exc
            raise

    async def _run(self, script: Script, args: Sequence[str | int | float]) -> Any:
        return await self._guard(lambda: self._scripts.run(script, self._keys, [self._p, *args]))

    async def reserve(
        self,
        request_id: str,
        limits: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None = None,
        *,
        reservation_id: str | None = None,
    ) -> Reservation:
        check_limits(limits)
        rid = reservation_id or new_id()
        args: list[str | int | float] = [_clock(now), self._ttl, rid, cost_micros, tokens, _spec(limits)]
        fields = _text(await self._run(self._reserve, args)).split()
        if fields[0] == "done":
            raise StoreUnavailable(f"reservation {rid} was cancelled before it reached the store")
        if fields[0] != "ok":
            kind, scope, retry_us, dim, limit_value, window = fields
            raise refusal(kind, scope, int(retry_us) / 1e6, dim, int(limit_value), window)
        n = len(limits)
        periods = [(fields[2 + 2 * i], int(fields[3 + 2 * i])) for i in range(n)]
        base = 2 + 2 * n
        rates = [
            rate_status([int(v) for v in fields[base + 6 * i : base + 6 * i + 6]]) if limit.has_rate else None
            for i, limit in enumerate(limits)
        ]
        return make_reservation(
            rid, request_id, limits, cost_micros, tokens, int(fields[1]) / 1e6, self._ttl, periods, rates
        )

    async def settle(self, reservation: Reservation, cost_micros: int, tokens: int) -> None:
        targets = "\n".join(f"{t.scope} {t.window} {t.bucket} {t.expires_at}" for t in reservation.targets)
        rates = "\n".join(f"{scope} {tpm}" for scope, tpm in reservation.token_rates)
        unused = max(0, reservation.tokens - tokens)
        args: list[str | int | float] = [
            _clock(None),
            reservation.id,
            cost_micros,
            tokens,
            unused,
            SETTLED_MARKER_TTL_S,
            targets,
            rates,
        ]
        await self._run(self._settle, args)

    async def record(
        self,
        scopes: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None = None,
        *,
        record_id: str | None = None,
    ) -> None:
        check_limits(scopes)
        args: list[str | int | float] = [
            _clock(now),
            record_id or "",
            cost_micros,
            tokens,
            SETTLED_MARKER_TTL_S,
            _spec(scopes),
        ]
        await self._run(self._record, args)

    async def cancel(self, reservation_ids: Sequence[str]) -> None:
        for ids in _chunks(reservation_ids):
            await self._run(self._cancel, [_clock(None), SETTLED_MARKER_TTL_S, ids])

    async def renew(self, reservation_ids: Sequence[str]) -> None:
        for ids in _chunks(reservation_ids):
            await self._run(self._renew, [_clock(None), self._ttl, ids])

    async def state(self, limits: Sequence[ScopeLimit], now: float | None = None) -> dict[str, BudgetState]:
        return tightest_states(await self._states(limits, now))

    async def _states(self, limits: Sequence[ScopeLimit], now: float | None) -> list[BudgetState]:
        spec = "\n".join(f"{lim.scope} {lim.window.kind} {lim.window.seconds}" for lim in limits)
        fields = _text(await self._run(self._state, [_clock(now), spec])).split()
        out = []
        for i, limit in enumerate(limits):
            bucket, resets_us, m, t, hm, ht = fields[1 + 6 * i : 7 + 6 * i]
            out.append(
                BudgetState(
                    scope=limit.scope,
                    window=str(limit.window),
                    bucket=bucket,
                    spent_micros=int(m),
                    reserved_micros=int(hm),
                    limit_micros=limit.limit_micros,
                    tokens=int(t),
                    reserved_tokens=int(ht),
                    limit_tokens=limit.limit_tokens,
                    resets_at=None if int(resets_us) < 0 else int(resets_us) / 1e6,
                )
            )
        return out

    async def usage(self, scope_prefix: str | None = None) -> list[ScopeUsage]:
        raw = await self._guard(lambda: self._redis.hgetall(f"{self._p}:scopes"))
        limits = []
        for key, value in sorted((_text(k), _text(v)) for k, v in raw.items()):
            scope, window = key.split(" ", 1)
            if scope_prefix and not scope.startswith(scope_prefix):
                continue
            m, t, rpm, tpm = (int(x) for x in value.split(" "))
            limits.append(
                ScopeLimit(
                    scope,
                    Window.parse(window),
                    m if m >= 0 else None,
                    t if t >= 0 else None,
                    rpm if rpm >= 0 else None,
                    tpm if tpm >= 0 else None,
                )
            )
        states = await self._states(limits, None) if limits else []
        return [ScopeUsage(limit, state) for limit, state in zip(limits, states, strict=True)]

    async def reset(self, scope: str) -> None:
        """Forget a scope's spend in every window and its rate-limit state; holds in flight stay."""
        ScopeLimit(scope)  # rejects glob characters: the name goes into a SCAN pattern below

        async def wipe() -> None:
            keys = [k async for k in self._redis.scan_iter(match=f"{self._p}:s:{scope}|*", count=500)]
            await self._redis.delete(f"{self._p}:rl:{scope}", *keys)

        await self._guard(wipe)

    async def ping(self) -> None:
        # A script, not PING: a replica or a Redis out of memory answers PING but refuses the scripts.
        await self._run(self._renew, [_clock(None), self._ttl, ""])

    async def close(self) -> None:
        await self._scripts.close()
        await self._redis.aclose(close_connection_pool=True)

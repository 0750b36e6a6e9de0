"""The configured budget store, built in one place: the store itself, its breaker and its ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from proxy.budget.breaker import Breaker, State
from proxy.budget.ledger import Ledger
from proxy.budget.ledgered import LedgeredStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import DEFAULT_RESERVATION_TTL_S, Backend
from proxy.config import Config, UpstreamConfig


def hold_ttl_s(config: Config) -> float:
    """`budget.reservation_ttl_s`, or the longest any request may wait for its upstream to start answering:
    a hold whose process died is reaped after that (a live request renews its hold however long it runs)."""
    if config.budget.reservation_ttl_s is not None:
        return config.budget.reservation_ttl_s
    return longest_wait_s(config.upstreams.values())


def longest_wait_s(upstreams: Iterable[UpstreamConfig]) -> float:
    return max((u.timeouts.connect_s + u.timeouts.first_byte_s for u in upstreams), default=DEFAULT_RESERVATION_TTL_S)


def build_store(
    config: Config,
    *,
    on_error: Callable[[str], None] | None = None,
    on_circuit: Callable[[State], None] | None = None,
) -> LedgeredStore:
    budget = config.budget
    ttl = hold_ttl_s(config)
    breaker = Breaker(
        budget.store, failures=budget.breaker.failures, cooldown_s=budget.breaker.cooldown_s, on_change=on_circuit
    )
    inner: Backend
    if budget.store == "redis":
        from proxy.budget.redis import RedisStore

        inner = RedisStore.from_url(
            budget.redis_url,
            prefix=budget.key_prefix,
            reservation_ttl_s=ttl,
            timeout_s=budget.redis_timeout_s,
            admit=breaker.admits,
        )
    else:
        inner = SqliteStore(
            config.path(budget.sqlite_path),
            reservation_ttl_s=ttl,
            busy_timeout_s=budget.sqlite_busy_timeout_s,
            admit=breaker.admits,
        )
    return LedgeredStore(
        inner,
        Ledger(config.path(budget.ledger_path)),
        fail_open=budget.fail_open,
        reservation_ttl_s=ttl,
        state_max_age_s=budget.state_max_age_s,
        on_error=on_error,
        breaker=breaker,
    )

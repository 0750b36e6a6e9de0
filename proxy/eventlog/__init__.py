"""Append-only logs of events by kind (the egress proxy's refusals, read back by `shadow-ai report`), kept in
the deployment's budget database but apart from the budget store: `EventLog` and its SQLite and Redis logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from proxy.config import Config
from proxy.errors import Unavailable

# Events kept per kind; older ones are dropped as new ones come.
EVENT_RETENTION = 10_000
Fields = Mapping[str, str | int]


class EventLogUnavailable(Unavailable):
    default_code = "event_log_unavailable"


class EventLog(Protocol):
    async def append(self, kind: str, fields: Fields) -> None:
        """Add one event, stamped now; raises EventLogUnavailable when the log cannot take it."""
        ...

    async def events(self, kind: str, since: float) -> list[dict[str, Any]]:
        """Events of `kind` from `since` (unix seconds) on, oldest first: their fields as strings, plus `ts`."""
        ...

    async def close(self) -> None: ...


def open_event_log(config: Config) -> EventLog:
    """The log in the store `budget.store` names: the same SQLite file, or the same Redis and key prefix."""
    budget = config.budget
    if budget.store == "redis":
        from proxy.eventlog.redis import RedisEventLog

        return RedisEventLog.from_url(budget.redis_url, prefix=budget.key_prefix, timeout_s=budget.redis_timeout_s)
    from proxy.eventlog.sqlite import SqliteEventLog

    return SqliteEventLog(config.path(budget.sqlite_path), busy_timeout_s=budget.sqlite_busy_timeout_s)

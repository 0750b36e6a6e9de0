"""The budget Lua scripts and their runner: one EVALSHA per call on connections kept for them alone.

redis-py's `Redis.execute_command` costs ~40 µs per call on top of a ~25 µs loopback round trip
(uvloop): the blocking pool's condition and timeout, the retry wrapper, observability hooks, and a
task per socket write for `socket_timeout`. A reserve and its settle make two calls on every model
request, so these go through a lean path: an idle connection from a list, one packed write, one
reply, all under a single deadline. Admin commands keep using the client and its pool.
A call that fails before its command was written raises `NotSent`: the caller knows it had no effect.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> Script:
        """`lua/<name>.lua` with the shared library prepended."""
        lua = resources.files("proxy.budget") / "lua"
        source = (lua / "lib_v3.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())


class NotSent(RedisConnectionError):
    """The command never reached Redis: no free connection, no connection, or the store's circuit is open."""


class ScriptRunner:
    def __init__(
        self,
        pool: ConnectionPool,
        *,
        max_connections: int,
        timeout_s: float,
        admit: Callable[[], bool] | None = None,
    ) -> None:
        # No socket_timeout on these connections: redis-py would wrap every write in a task for it.
        # The deadline around each whole call (below) bounds the write, the read and a reconnect.
        self._connection_class: type[AbstractConnection] = pool.connection_class
        self._connection_kwargs = {**pool.connection_kwargs, "socket_timeout": None}
        self._idle: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._timeout = timeout_s
        # A burst queues for a connection longer than one call may take: waiting for a slot is not an
        # outage, and counting it against the call's deadline turned bursts into 503s.
        self._queue_timeout = max(5.0, 10 * timeout_s)
        # False while the store's circuit is open: a call that queued for a connection behind calls to a
        # hung Redis gives up once they have shown it hung, instead of waiting out its own timeout too.
        self._admit = admit

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        """The script's reply; raises redis-py's ConnectionError or TimeoutError, or the script's error."""
        command = pack(b"EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            async with asyncio.timeout(self._queue_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise NotSent(f"no Redis connection free for {self._queue_timeout}s") from None
        try:
            if self._admit is not None and not self._admit():
                raise NotSent("the budget store's circuit is open")
            async with asyncio.timeout(self._timeout):
                if not self._idle:
                    return await self._call(self._new(), command, script, keys, args)
                try:
                    return await self._call(self._idle.pop(), command, script, keys, args)
                except RedisConnectionError:
                    pass  # closed while idle (a Redis restart): one retry on a fresh connection
                try:
                    return await self._call(self._new(), command, script, keys, args)
                except NotSent as exc:
                    # The first attempt was written, and may have run: its outcome is unknown.
                    raise RedisConnectionError(str(exc)) from exc
        except TimeoutError:
            raise RedisTimeoutError(f"budget script {script.name} took over {self._timeout}s") from None
        finally:
            self._slots.release()

    def _new(self) -> AbstractConnection:
        return self._connection_class(**self._connection_kwargs)

    @staticmethod
    async def _connect(conn: AbstractConnection) -> None:
        if conn.is_connected:
            return
        try:
            await conn.connect_check_health(check_health=False)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise NotSent(f"cannot connect to Redis: {exc}") from exc

    async def _call(
        self,
        conn: AbstractConnection,
        command: bytes,
        script: Script,
        keys: Sequence[str],
        args: Sequence[str | int | float],
    ) -> Any:
        try:
            try:
                reply = await self._exchange(conn, command)
            except NoScriptError:  # a Redis restarted or flushed: EVAL loads the script again
                reply = await self._exchange(conn, pack(b"EVAL", script.source, len(keys), *keys, *args))
        except ResponseError:
            self._idle.append(conn)  # an error reply, read in full: the connection is in step
            raise
        except BaseException:
            # Anything else (a broken socket, the deadline, a cancel mid-read) may leave a reply
            # unread on the connection, so it is not used again.
            await conn.disconnect(nowait=True)
            raise
        self._idle.append(conn)
        return reply

    async def _exchange(self, conn: AbstractConnection, command: bytes) -> Any:
        await self._connect(conn)
        await conn.send_packed_command(command, check_health=False)
        return await conn.read_response()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()


def pack(*parts: bytes | str | int | float) -> bytes:
    """One command in RESP: what redis-py's pack_command makes, at a third of its cost."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)

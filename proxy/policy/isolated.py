"""The proxy's side of the evaluator process: requests with a deadline, and a replacement when one hangs.

Each request is a frame written to the process's stdin; answers come back in order on its stdout and
are matched by id. The event loop spends tens of microseconds per decision on this, less than an
interpreted evaluation in-process takes (bench/policy_bench.py --isolated), and a slow policy never
stops it. A request that misses its
deadline fails closed (PolicyEngineError); if the process has been stuck on one evaluation that long, it
is killed and a new one loaded with the same version, while requests in between wait or fail closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.policy.answers import loads
from proxy.policy.decision import (
    Decision,
    EgressDecision,
    McpDecision,
    decision_from_json,
    parse_allowed_models,
    parse_egress_decision,
    parse_mcp_decision,
)
from proxy.policy.engine import DEFAULT_ENTRYPOINTS, EntryPoints
from proxy.policy.errors import PolicyEngineError
from proxy.policy.frames import EVAL, EVAL_HEAD, FAILED, HEADER, INTERPRETER, LOAD, NANOS, SERVED
from proxy.policy.input import INPUT_VERSION

OnRestart = Callable[[str, str], None]  # (reason, revision)
RESTART_REASONS = ("timeout", "exited")


class EvaluationTimeout(PolicyEngineError):
    """No answer within the deadline."""


class EvaluatorGone(PolicyEngineError):
    """The evaluator process exited (killed, crashed) before answering."""


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """What an evaluator process loads: one policy version, as plain values."""

    modules: tuple[tuple[str, str], ...]
    data: Mapping[str, Any]
    entrypoints: tuple[str, ...]
    compiled: bool
    where: str
    tests: tuple[tuple[str, str], ...] = ()

    def payload(self) -> bytes:
        return orjson.dumps({"modules": self.modules, "data": self.data, "entrypoints": self.entrypoints,
                             "compiled": self.compiled, "where": self.where, "tests": self.tests})


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool
    text: str  # raw JSON when ok, else the error
    nanos: int


class _Channel(asyncio.SubprocessProtocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        # Ids in the order sent: the process answers in that order, so the first is the one it is on.
        self.order: collections.deque[int] = collections.deque()
        self.head_since = time.monotonic()
        self.exited = asyncio.get_running_loop().create_future()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= HEADER.size:
            length, request_id, status = HEADER.unpack_from(buffer)
            end = HEADER.size + length
            if len(buffer) < end:
                return
            body = bytes(buffer[HEADER.size:end])
            del buffer[:end]
            while self.order and self.order.popleft() != request_id:
                pass
            self.head_since = time.monotonic()
            future = self.pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result((status, body))

    def process_exited(self) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(EvaluatorGone("the policy evaluator process exited"))
        self.pending.clear()
        if not self.exited.done():
            self.exited.set_result(None)


class EvaluatorProcess:
    def __init__(self, transport: asyncio.SubprocessTransport, channel: _Channel) -> None:
        self._transport = transport
        self._channel = channel
        self._stdin: Any = transport.get_pipe_transport(0)
        self._ids = 0
        self._outbox: list[bytes] = []

    @classmethod
    async def spawn(cls, *, nice: int = 0) -> EvaluatorProcess:
        """`nice` lowers its CPU priority: validation must not take CPU from the processes serving."""
        loop = asyncio.get_running_loop()
        # Without this, an error with RUST_BACKTRACE=1 set captures a Rust backtrace: ~0.5 s for the
        # first (symbols are resolved), ~0.5 ms each after. regorus errors are answers, not crashes.
        env = {**os.environ, "RUST_LIB_BACKTRACE": "0"}
        transport, channel = await loop.subprocess_exec(
            _Channel, sys.executable, "-m", "proxy.policy.evaluator", *(("--nice", str(nice)) if nice else ()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None, env=env)
        return cls(transport, channel)

    @property
    def alive(self) -> bool:
        return not self._channel.exited.done()

    @property
    def pid(self) -> int:
        return int(self._transport.get_pid())

    async def wait(self) -> None:
        """Until the process has exited."""
        await asyncio.shield(self._channel.exited)

    def busy_for(self) -> float:
        """Seconds the process has been on its current request (0 when idle)."""
        return time.monotonic() - self._channel.head_since if self._channel.order else 0.0

    async def call(self, op: int, payload: bytes, timeout_s: float) -> tuple[int, bytes]:
        if not self.alive:
            raise EvaluatorGone("the policy evaluator process exited")
        self._ids = (self._ids + 1) & 0xFFFFFFFF
        request_id = self._ids
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        channel = self._channel
        if not channel.order:
            channel.head_since = time.monotonic()
        channel.pending[request_id] = future
        channel.order.append(request_id)
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(HEADER.pack(len(payload), request_id, op) + payload)
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            channel.pending.pop(request_id, None)
            raise EvaluationTimeout(f"no answer within {timeout_s * 1000:.0f} ms") from None

    def _flush(self) -> None:
        # Everything asked during one turn of the event loop goes out in one write (one system call).
        if self._outbox and self.alive and not self._stdin.is_closing():
            self._stdin.write(b"".join(self._outbox))
        self._outbox.clear()

    async def evaluate(self, rule: str, input_json: bytes, timeout_s: float, engine: int = SERVED) -> Answer:
        encoded = rule.encode()
        status, body = await self.call(EVAL, EVAL_HEAD.pack(engine, len(encoded)) + encoded + input_json, timeout_s)
        (nanos,) = NANOS.unpack_from(body)
        return Answer(status != FAILED, body[NANOS.size:].decode(), nanos)

    async def load(self, spec: VersionSpec, timeout_s: float) -> dict[str, Any]:
        status, body = await self.call(LOAD, spec.payload(), timeout_s)
        if status == FAILED:
            raise PolicyEngineError(body.decode())
        loaded: dict[str, Any] = orjson.loads(body)
        return loaded

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self._transport.kill()

    async def close(self, grace_s: float = 5.0) -> None:
        """Let it answer what it was asked, then end it (killed after `grace_s`)."""
        if self.alive:
            self._flush()
            self._stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.shield(self._channel.exited)
            self.kill()
            await asyncio.shield(self._channel.exited)
        self._transport.close()


@dataclass
class IsolatedRego:
    """A PolicyEngine serving one validated version from an evaluator process (see the module docstring)."""

    spec: VersionSpec
    revision: str
    mode: str  # what the proxy serves this version on: "compiled" or "interpreter"
    timeout_ms: int
    process: EvaluatorProcess | None
    entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS
    on_restart: OnRestart | None = None
    restarts: int = 0
    reads_estimate: bool = True  # the reloader, which read the version's AST, knows better
    # The input keys this version's answers can depend on (rego_ast.depends_on; None: more than keys). An
    # entry point asked with none of them in its input has one answer for the version, kept after the first.
    depends_on: frozenset[str] | None = None
    _starting: asyncio.Task[EvaluatorProcess] | None = field(default=None, repr=False)
    _constant: dict[str, str] = field(default_factory=dict, repr=False)

    async def evaluate(self, input: dict[str, Any]) -> Decision:
        return decision_from_json(await self.answer(self.entrypoints.decision, input))

    async def allowed_models(self, identity: dict[str, Any], models: Sequence[str]) -> list[str]:
        doc = {"version": INPUT_VERSION, "identity": identity, "models": list(models)}
        return parse_allowed_models(loads(await self.answer(self.entrypoints.allowed_models, doc)), models)

    async def evaluate_egress(self, input: dict[str, Any]) -> EgressDecision:
        return parse_egress_decision(loads(await self.answer(self.entrypoints.egress, input)))

    async def evaluate_mcp(self, input: dict[str, Any]) -> McpDecision:
        return parse_mcp_decision(loads(await self.answer(self.entrypoints.mcp, input)))

    async def query(self, rule: str, input: dict[str, Any]) -> Any:
        """The value of any entry point of the contract table (None when undefined)."""
        return loads(await self.answer(rule, input))

    async def answer(self, rule: str, input: dict[str, Any]) -> str:
        """The raw JSON answer within policy.timeout_ms, or PolicyEngineError. An answer that cannot depend
        on this input (the version reads none of its keys) is asked once: a policy that does not look at
        the request costs no round trip to the evaluator process."""
        if self.depends_on is None or not self.depends_on.isdisjoint(input) or rule not in self.spec.entrypoints:
            return await self._evaluated(rule, input)
        known = self._constant.get(rule)
        if known is None:
            known = self._constant[rule] = await self._evaluated(rule, input)
        return known

    async def _evaluated(self, rule: str, input: dict[str, Any]) -> str:
        timeout_s = self.timeout_ms / 1000
        deadline = time.monotonic() + timeout_s
        process = self.process if self.process is not None and self.process.alive else await self._replaced(deadline)
        engine = SERVED if self.mode == "compiled" else INTERPRETER
        try:
            answer = await process.evaluate(rule, orjson.dumps(input), deadline - time.monotonic(), engine)
        except EvaluationTimeout:
            # Stuck on one evaluation for the whole timeout (not merely queued behind others): replace it.
            # (0.9: this request may have been sent a moment after the process took up the one it is on.)
            if process.busy_for() >= 0.9 * timeout_s:
                self._replace(process, "timeout")
            raise PolicyEngineError(f"evaluating {rule} took longer than policy.timeout_ms ({self.timeout_ms} ms)"
                                    ) from None
        except EvaluatorGone:
            self._replace(process, "exited")
            raise
        if not answer.ok:
            raise PolicyEngineError(answer.text)
        return answer.text

    def healthy(self) -> bool:
        return self.process is not None and self.process.alive

    async def close(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
        if self.process is not None:
            await self.process.close(grace_s=self.timeout_ms / 1000 + 1)

    def _replace(self, process: EvaluatorProcess, reason: str) -> None:
        if process is not self.process:
            return  # already replaced
        process.kill()
        self.process = None
        self.restarts += 1
        if self.on_restart is not None:
            self.on_restart(reason, self.revision)
        self._start()

    def _start(self) -> asyncio.Task[EvaluatorProcess]:
        if self._starting is None or self._starting.done():
            self._starting = asyncio.get_running_loop().create_task(self._spawn(), name="policy-evaluator")
            # A failed start is retried by the next request; nobody may be waiting to see this one's error.
            self._starting.add_done_callback(lambda task: task.cancelled() or task.exception())
        return self._starting

    @classmethod
    async def start(cls, spec: VersionSpec, revision: str, mode: str, timeout_ms: int,
                    entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS, on_restart: OnRestart | None = None, *,
                    depends_on: frozenset[str] | None = None) -> IsolatedRego:
        """Serving a version that passed validation, from a process of its own."""
        engine = cls(spec, revision, mode, timeout_ms, None, entrypoints, on_restart, depends_on=depends_on)
        await engine._spawn()
        return engine

    async def _spawn(self) -> EvaluatorProcess:
        process = await EvaluatorProcess.spawn()
        try:
            # The version passed validation: loading it again takes what compiling it took then.
            await process.load(self.spec, timeout_s=max(10.0, self.timeout_ms / 1000))
        except BaseException:
            process.kill()
            await process.close(grace_s=0)
            raise
        self.process = process
        return process

    async def _replaced(self, deadline: float) -> EvaluatorProcess:
        """Waits (until `deadline`) for the process that replaces a killed or crashed one."""
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                return await asyncio.shield(self._start())
        except TimeoutError:
            raise PolicyEngineError("the policy evaluator is restarting") from None
        except Exception as exc:
            raise PolicyEngineError(f"the policy evaluator could not be restarted: {exc}") from exc

"""Hot reload: watch the policy folder, validate each new version, swap it in only if it passes.

A version is validated (proxy/policy/validate.py) in a fresh evaluator process, on the built-in samples,
its own tests' inputs and the inputs this reloader's version recently decided (`recent`, recorded by the
decide stage); the process that passed then serves it. A rejected version changes nothing: the last
good one keeps serving, and the event says which rule, file:line and sample rejected it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.policy.bundle import PolicyBundle, policy_files
from proxy.policy.contract import ENTRYPOINTS, Entrypoint
from proxy.policy.decision import Decision, EgressDecision, McpDecision
from proxy.policy.engine import DEFAULT_ENTRYPOINTS, EntryPoints
from proxy.policy.errors import PolicyCompileError, PolicyEngineError
from proxy.policy.isolated import IsolatedRego, OnRestart
from proxy.policy.recent import RecentInputs
from proxy.policy.validate import DEFAULT_LIMITS, Limits, Verdict, read_version, validate, version_spec

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class ReloadEvent:
    """What a load or reload did, for the log and the metrics."""

    policy: str  # "live" or "shadow"
    ok: bool
    revision: str  # the revision serving after this event
    initial: bool = False
    candidate: str | None = None  # the rejected version's revision, when its files could be read
    reason: str | None = None  # why it was rejected (a metric label)
    error: str | None = None
    mode: str = "interpreter"
    fallback: str | None = None  # why policy.compiled does not serve this version
    fallback_reason: str | None = None
    samples: Mapping[str, int] = field(default_factory=dict)


OnReload = Callable[[ReloadEvent], None]


class PolicyReloader:
    """A PolicyEngine that always delegates to the newest policy version that passed validation."""

    def __init__(
        self,
        root: Path,
        *,
        policy: str = "live",
        compiled: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS,
        table: Sequence[Entrypoint] = ENTRYPOINTS,
        interval_s: float = 2.0,
        debounce_s: float = 0.3,
        on_reload: OnReload | None = None,
        on_restart: OnRestart | None = None,
    ) -> None:
        self.root = root
        self.policy = policy
        self.recent = RecentInputs(table)
        self._compiled = compiled
        self._limits = limits
        self._entrypoints = entrypoints
        self._table = table
        self._interval_s = interval_s
        self._debounce_s = debounce_s
        self._on_reload = on_reload
        self._on_restart = on_restart
        self._lock = asyncio.Lock()
        self._engine: IsolatedRego | None = None
        self._digest = ""
        self._reads_estimate = True
        self._fingerprint: Fingerprint = ()
        self._task: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self.reloads_ok = 0
        self.reloads_failed = 0

    async def start(self, *, watch: bool = True) -> PolicyReloader:
        """Loads the first version (raising VersionRejected if it does not pass), then polls."""
        self._fingerprint = await asyncio.to_thread(fingerprint, self.root)
        bundle = await asyncio.to_thread(read_version, self.root)
        verdict = await validate(bundle, compiled=self._compiled, limits=self._limits, table=self._table,
                                 reuse=True)
        self._serve(bundle, verdict, await self._serving(bundle, verdict))
        self._notify(_accepted(self.policy, verdict, initial=True))
        if watch:
            self._task = asyncio.create_task(self._watch(), name=f"policy-reloader-{self.policy}")
        return self

    @property
    def engine(self) -> IsolatedRego:
        if self._engine is None:
            raise PolicyEngineError("policy reloader used before start()")
        return self._engine

    @property
    def revision(self) -> str:
        return self.engine.revision

    @property
    def reads_estimate(self) -> bool:
        """Whether the version serving may read input.estimate (its prompts must then be tokenized)."""
        return self._reads_estimate

    async def evaluate(self, input: dict[str, Any]) -> Decision:
        return await self.engine.evaluate(input)

    async def allowed_models(self, identity: dict[str, Any], models: Sequence[str]) -> list[str]:
        return await self.engine.allowed_models(identity, models)

    async def evaluate_egress(self, input: dict[str, Any]) -> EgressDecision:
        return await self.engine.evaluate_egress(input)

    async def evaluate_mcp(self, input: dict[str, Any]) -> McpDecision:
        return await self.engine.evaluate_mcp(input)

    async def query(self, rule: str, input: dict[str, Any]) -> Any:
        return await self.engine.query(rule, input)

    async def healthy(self) -> bool:
        return self._engine is not None and self._engine.healthy()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._engine is not None:
            self._retire(self._engine)
            self._engine = None
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def reload_now(self) -> bool:
        """Validate the folder as it is now and swap if it passes (poll, SIGHUP, admin endpoint)."""
        async with self._lock:
            self._fingerprint = await asyncio.to_thread(fingerprint, self.root)
            bundle: PolicyBundle | None = None
            try:
                bundle = await asyncio.to_thread(read_version, self.root)
                if bundle.digest == self._digest:
                    return True
                verdict = await validate(bundle, compiled=self._compiled, limits=self._limits,
                                         table=self._table, recent=self.recent.samples())
                engine = await self._serving(bundle, verdict)
            except Exception as exc:  # any failure rejects the version; the old one keeps serving
                self.reloads_failed += 1
                self._notify(ReloadEvent(self.policy, False, self.revision, reason=getattr(exc, "reason", "error"),
                                         candidate=None if bundle is None else bundle.revision,
                                         error=str(exc) or type(exc).__name__, mode=self.engine.mode))
                return False
            old = self._engine
            self._serve(bundle, verdict, engine)
            if old is not None:
                self._retire(old)
            self.reloads_ok += 1
            self._notify(_accepted(self.policy, verdict))
            return True

    async def _serving(self, bundle: PolicyBundle, verdict: Verdict) -> IsolatedRego:
        spec = version_spec(bundle, self._table, verdict.mode == "compiled")
        return await IsolatedRego.start(spec, verdict.revision, verdict.mode, self._limits.timeout_ms,
                                        self._entrypoints, self._on_restart, depends_on=verdict.depends_on)

    def _serve(self, bundle: PolicyBundle, verdict: Verdict, engine: IsolatedRego) -> None:
        self._engine = engine
        self._digest = bundle.digest
        self._reads_estimate = verdict.reads_estimate

    def _retire(self, engine: IsolatedRego) -> None:
        # Requests already sent to the old process get their answers; then it exits.
        task = asyncio.get_running_loop().create_task(engine.close(), name="policy-evaluator-retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                if await self._settled_change():
                    await self.reload_now()
            except OSError as exc:
                # A folder being replaced (e.g. a ConfigMap symlink swap) can vanish for a moment.
                self._notify(ReloadEvent(self.policy, False, self.revision, reason="unreadable",
                                         error=f"{self.root}: {exc}", mode=self.engine.mode))

    async def _settled_change(self) -> bool:
        # Editors and `kubectl cp` write in several steps: reload once the files stop changing.
        current = await asyncio.to_thread(fingerprint, self.root)
        if current == self._fingerprint:
            return False
        while True:
            await asyncio.sleep(self._debounce_s)
            later = await asyncio.to_thread(fingerprint, self.root)
            if later == current:
                return True
            current = later

    def _notify(self, event: ReloadEvent) -> None:
        if self._on_reload is not None:
            self._on_reload(event)


def _accepted(policy: str, verdict: Verdict, *, initial: bool = False) -> ReloadEvent:
    return ReloadEvent(policy, True, verdict.revision, initial=initial, mode=verdict.mode, fallback=verdict.fallback,
                       fallback_reason=verdict.fallback_reason, samples=dict(verdict.samples))


def fingerprint(root: Path) -> Fingerprint:
    try:
        files = policy_files(root)
    except PolicyCompileError:
        return ()
    stats = []
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            stats.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(stats)

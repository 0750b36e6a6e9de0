"""Hot reload: watch the policy folder, compile a new version, swap it in only if it works.

A version that fails to load is rejected and the old one keeps serving. regorus engines cannot cross
threads, so the worker thread reads and fully validates the new version (compile plus one
evaluation of every entry point on a throwaway engine) and the loop thread then builds the serving
engine from the same in-memory bundle (about a millisecond of parsing plus the warm-up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from proxy.policy.bundle import PolicyBundle, load_bundle, policy_files
from proxy.policy.decision import Decision, EgressDecision, McpDecision
from proxy.policy.embedded import EmbeddedRego, compile_engine, compile_program
from proxy.policy.engine import DEFAULT_ENTRYPOINTS, EntryPoints
from proxy.policy.errors import PolicyCompileError, PolicyEngineError

OnReload = Callable[[bool, str, str | None], None]
Fingerprint = tuple[tuple[str, int, int], ...]


class PolicyReloader:
    """A PolicyEngine that always delegates to the newest policy version that loaded."""

    def __init__(
        self,
        root: Path,
        *,
        entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS,
        interval_s: float = 2.0,
        debounce_s: float = 0.3,
        on_reload: OnReload | None = None,
        compiled: bool = False,
    ) -> None:
        self.root = root
        self._compiled = compiled
        self._entrypoints = entrypoints
        self._interval_s = interval_s
        self._debounce_s = debounce_s
        self._on_reload = on_reload
        self._lock = asyncio.Lock()
        self._engine: EmbeddedRego | None = None
        self._fingerprint: Fingerprint = ()
        self._task: asyncio.Task[None] | None = None
        self.reloads_ok = 0
        self.reloads_failed = 0

    async def start(self, *, watch: bool = True) -> PolicyReloader:
        """Loads the first version (raising PolicyCompileError if it does not load), then polls."""
        self._fingerprint = await asyncio.to_thread(fingerprint, self.root)
        bundle, program = await _validated(self.root, self._entrypoints, self._compiled)
        self._engine = EmbeddedRego(bundle, self._entrypoints, compiled=self._compiled, program=program)
        if watch:
            self._task = asyncio.create_task(self._watch(), name="policy-reloader")
        return self

    @property
    def engine(self) -> EmbeddedRego:
        if self._engine is None:
            raise PolicyEngineError("policy reloader used before start()")
        return self._engine

    @property
    def revision(self) -> str:
        return self.engine.revision

    async def evaluate(self, input: dict[str, Any]) -> Decision:
        return await self.engine.evaluate(input)

    async def allowed_models(self, identity: dict[str, Any], models: Sequence[str]) -> list[str]:
        return await self.engine.allowed_models(identity, models)

    async def evaluate_egress(self, input: dict[str, Any]) -> EgressDecision:
        return await self.engine.evaluate_egress(input)

    async def evaluate_mcp(self, input: dict[str, Any]) -> McpDecision:
        return await self.engine.evaluate_mcp(input)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # regorus engines may only be dropped on the thread that built them: release it here, on the loop.
        self._engine = None

    async def reload_now(self) -> bool:
        """Compile the folder as it is now and swap if it loads (SIGHUP, admin endpoint)."""
        async with self._lock:
            self._fingerprint = await asyncio.to_thread(fingerprint, self.root)
            try:
                bundle, program = await _validated(self.root, self._entrypoints, self._compiled)
                engine = EmbeddedRego(bundle, self._entrypoints, compiled=self._compiled, program=program)
            except PolicyEngineError as exc:
                self.reloads_failed += 1
                self._notify(False, self.revision, str(exc))
                return False
            changed = engine.revision != self.revision
            self._engine = engine
            self.reloads_ok += 1
            if changed:
                self._notify(True, engine.revision, None)
            return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                if await self._settled_change():
                    await self.reload_now()
            except OSError as exc:
                # A folder being replaced (e.g. a ConfigMap symlink swap) can vanish for a moment.
                self._notify(False, self.revision, f"{self.root}: {exc}")

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

    def _notify(self, ok: bool, revision: str, error: str | None) -> None:
        if self._on_reload is not None:
            self._on_reload(ok, revision, error)


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


async def _validated(root: Path, entrypoints: EntryPoints, compiled: bool) -> tuple[PolicyBundle, bytes | None]:
    bundle, error = await asyncio.to_thread(_validate, root, entrypoints)
    if bundle is None:
        raise PolicyCompileError(error or f"{root}: policy version rejected")
    # The RVM program is plain bytes, so it is compiled off the loop too (tens of ms); a bundle the RVM
    # cannot compile gets no program and the engine says why and runs on the interpreter.
    program = await asyncio.to_thread(_program, bundle, entrypoints) if compiled else None
    return bundle, program


def _program(bundle: PolicyBundle, entrypoints: EntryPoints) -> bytes | None:
    try:
        return compile_program(bundle, entrypoints)
    except Exception:
        return None


def _validate(root: Path, entrypoints: EntryPoints) -> tuple[PolicyBundle | None, str | None]:
    # Runs in a worker thread. Only plain values leave it: the throwaway engine (and any traceback
    # that references it) must be dropped on this thread, as regorus requires.
    try:
        bundle = load_bundle(root)
        compile_engine(bundle, entrypoints.all())
    except Exception as exc:  # any failure rejects the version; the old one keeps serving
        return None, str(exc) or type(exc).__name__
    return bundle, None

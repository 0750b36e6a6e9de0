"""Hot reload: a good edit is served as a new revision; a broken one is rejected and the old one serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.policy.reload import PolicyReloader
from tests.unit.policy.conftest import make_input


class Recorder:
    """The on_reload callback; wait() returns once n reloads were reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, str, str | None]] = []
        self._changed = asyncio.Event()

    def __call__(self, ok: bool, revision: str, error: str | None) -> None:
        self.calls.append((ok, revision, error))
        self._changed.set()

    async def wait(self, n: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.calls) < n:
                self._changed.clear()
                await self._changed.wait()


def tighten_prompt_limit(root: Path) -> None:
    path = root / "data" / "limits.json"
    path.write_text(path.read_text().replace('"max_prompt_tokens": 32000', '"max_prompt_tokens": 100'))


@pytest.fixture
def calls() -> Recorder:
    return Recorder()


@pytest.fixture
async def reloader(policy_copy: Path, calls: Recorder) -> AsyncIterator[PolicyReloader]:
    watching = await PolicyReloader(policy_copy, interval_s=0.05, debounce_s=0.05, on_reload=calls).start()
    yield watching
    await watching.close()


async def test_changed_policy_is_served_under_a_new_revision(
    policy_copy: Path, reloader: PolicyReloader, calls: Recorder
) -> None:
    before = reloader.revision
    assert (await reloader.evaluate(make_input(prompt_tokens=812))).allow
    tighten_prompt_limit(policy_copy)
    await calls.wait(1)
    assert calls.calls == [(True, reloader.revision, None)]
    assert reloader.revision != before
    decision = await reloader.evaluate(make_input(prompt_tokens=812))
    assert [r.code for r in decision.reasons] == ["prompt_too_large"]


async def test_broken_policy_is_rejected_and_old_revision_keeps_serving(
    policy_copy: Path, reloader: PolicyReloader, calls: Recorder
) -> None:
    before = reloader.revision
    (policy_copy / "pii.rego").write_text("package llm.pii\n\ndeny contains x if {\n")
    await calls.wait(1)
    ok, revision, error = calls.calls[0]
    assert not ok
    assert revision == before
    assert error is not None and "pii.rego:" in error
    assert reloader.revision == before
    assert (await reloader.evaluate(make_input())).allow
    assert reloader.reloads_failed == 1


async def test_reload_now_swaps_without_waiting_for_the_poll(policy_copy: Path) -> None:
    calls = Recorder()
    reloader = await PolicyReloader(policy_copy, on_reload=calls).start(watch=False)
    tighten_prompt_limit(policy_copy)
    assert await reloader.reload_now()
    assert calls.calls[0][0] is True
    assert not (await reloader.evaluate(make_input(prompt_tokens=812))).allow
    await reloader.close()


async def test_unchanged_folder_is_not_reloaded(policy_copy: Path) -> None:
    calls = Recorder()
    reloader = await PolicyReloader(policy_copy, interval_s=0.02, on_reload=calls).start()
    await asyncio.sleep(0.15)
    await reloader.close()
    assert calls.calls == []
    assert reloader.reloads_ok == 0

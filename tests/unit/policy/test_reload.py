"""Hot reload: a good edit is served as a new revision; a broken one is rejected and the old one serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.policy.reload import PolicyReloader, ReloadEvent
from proxy.policy.samples import decision_input
from proxy.policy.validate import Limits
from tests.support.policy_versions import decision_breaks_schema, syntax_error
from tests.unit.policy.conftest import make_input

LIMITS = Limits(timeout_ms=5000, slack_s=2.0)


class Recorder:
    """The on_reload callback; wait() returns once n events were reported."""

    def __init__(self) -> None:
        self.events: list[ReloadEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ReloadEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait(self, n: int, timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.events) < n:
                self._changed.clear()
                await self._changed.wait()


def tighten_prompt_limit(root: Path) -> None:
    path = root / "data" / "limits.json"
    path.write_text(path.read_text().replace('"max_prompt_tokens": 32000', '"max_prompt_tokens": 100'))


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
async def reloader(policy_copy: Path, events: Recorder) -> AsyncIterator[PolicyReloader]:
    watching = await PolicyReloader(policy_copy, interval_s=0.05, debounce_s=0.05, on_reload=events,
                                    limits=LIMITS).start()
    yield watching
    await watching.close()


async def test_start_reports_the_loaded_version(reloader: PolicyReloader, events: Recorder) -> None:
    (loaded,) = events.events
    assert loaded.ok and loaded.initial and loaded.policy == "live"
    assert loaded.revision == reloader.revision
    assert loaded.samples["builtin"] > 0 and loaded.samples["tests"] > 0
    assert await reloader.healthy()


async def test_changed_policy_is_served_under_a_new_revision(
    policy_copy: Path, reloader: PolicyReloader, events: Recorder
) -> None:
    before = reloader.revision
    assert (await reloader.evaluate(make_input(prompt_tokens=812))).allow
    tighten_prompt_limit(policy_copy)
    await events.wait(2)
    reloaded = events.events[1]
    assert reloaded.ok and not reloaded.initial
    assert reloaded.revision == reloader.revision != before
    decision = await reloader.evaluate(make_input(prompt_tokens=812))
    assert [r.code for r in decision.reasons] == ["prompt_too_large"]


@pytest.mark.parametrize("breaks", [syntax_error, decision_breaks_schema], ids=["syntax", "contract"])
async def test_broken_policy_is_rejected_and_old_revision_keeps_serving(
    policy_copy: Path, reloader: PolicyReloader, events: Recorder, breaks: object
) -> None:
    before = reloader.revision
    breaks(policy_copy)  # type: ignore[operator]
    await events.wait(2)
    rejected = events.events[1]
    assert not rejected.ok
    assert rejected.revision == before
    assert rejected.candidate is not None and rejected.candidate != before
    assert rejected.reason in ("compile", "contract")
    assert rejected.error is not None and str(policy_copy) in rejected.error
    assert reloader.revision == before
    assert (await reloader.evaluate(make_input())).allow
    assert reloader.reloads_failed == 1


async def test_reload_now_swaps_without_waiting_for_the_poll(policy_copy: Path) -> None:
    events = Recorder()
    reloader = await PolicyReloader(policy_copy, on_reload=events, limits=LIMITS).start(watch=False)
    tighten_prompt_limit(policy_copy)
    assert await reloader.reload_now()
    assert [e.ok for e in events.events] == [True, True]
    assert not (await reloader.evaluate(make_input(prompt_tokens=812))).allow
    await reloader.close()


async def test_unchanged_folder_is_not_reloaded(policy_copy: Path) -> None:
    events = Recorder()
    reloader = await PolicyReloader(policy_copy, interval_s=0.02, on_reload=events, limits=LIMITS).start()
    await asyncio.sleep(0.15)
    (policy_copy / "main.rego").touch()  # a new mtime, the same content: nothing to validate
    assert await reloader.reload_now()
    await reloader.close()
    assert [e.initial for e in events.events] == [True]
    assert reloader.reloads_ok == 0


async def test_recently_decided_inputs_are_part_of_the_next_validation(policy_copy: Path) -> None:
    events = Recorder()
    reloader = await PolicyReloader(policy_copy, on_reload=events, limits=LIMITS, policy="shadow").start(watch=False)
    rare = decision_input()
    rare["identity"]["team"] = "rare-team"
    reloader.recent.record("data.llm.main.decision", rare)
    # Breaks the decision for that one team only: no built-in sample or test has it.
    (policy_copy / "zz_rare.rego").write_text(
        'package llm.limits\n\nmax_tokens := "lots" if input.identity.team == "rare-team"\n')
    assert not await reloader.reload_now()
    rejected = events.events[-1]
    assert rejected.policy == "shadow"
    assert "recent:llm.main.decision#0 (rare-team/billing-api)" in (rejected.error or "")
    await reloader.close()

"""A policy version whose answers cannot depend on an input (it reads none of its keys, calls no volatile
builtin) is asked once per entry point: later requests are answered without the evaluator process. The
evaluator is killed after the first answer to show who answers: a reused answer needs no process, an
evaluation has a new one started for it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest

from proxy.policy.reload import PolicyReloader
from proxy.policy.samples import decision_input
from proxy.policy.validate import Limits

LIMITS = Limits(timeout_ms=5000, slack_s=2.0)
ALLOW_ALL = Path(__file__).resolve().parents[3] / "bench" / "policies" / "allow-all"


@pytest.fixture
def allow_all(tmp_path: Path) -> Path:
    return Path(shutil.copytree(ALLOW_ALL, tmp_path / "policies"))


async def kill_evaluator(reloader: PolicyReloader) -> int:
    process = reloader.engine.process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    async with asyncio.timeout(10):
        await process.wait()
    return process.pid


def serving_pid(reloader: PolicyReloader) -> int | None:
    """The pid of a live evaluator process, None when the one serving is dead (and none was needed)."""
    process = reloader.engine.process
    return process.pid if process is not None and process.alive else None


async def test_a_policy_that_reads_no_key_of_the_decision_input_is_asked_once(allow_all: Path) -> None:
    reloader = await PolicyReloader(allow_all, limits=LIMITS).start(watch=False)
    try:
        assert reloader.engine.depends_on == frozenset({"models"})
        assert (await reloader.evaluate(decision_input())).allow
        killed = await kill_evaluator(reloader)
        for who in ("key", "key+user", "sidecar"):
            for pii in ("none", "email"):
                assert (await reloader.evaluate(decision_input(who=who, pii=pii, model="reasoning"))).allow
        assert serving_pid(reloader) is None
        # The models entry point's input has the one key the version reads: it is evaluated, by a new process.
        identity = decision_input()["identity"]
        assert await reloader.allowed_models(identity, ["gpt-4o"]) == ["gpt-4o"]
        assert serving_pid(reloader) not in (None, killed)
    finally:
        await reloader.close()


async def test_a_new_version_is_asked_afresh(allow_all: Path) -> None:
    reloader = await PolicyReloader(allow_all, limits=LIMITS).start(watch=False)
    try:
        assert (await reloader.evaluate(decision_input())).allow
        (allow_all / "main.rego").write_text(
            'package llm.main\n\ndecision := {"allow": false, "reasons": [{"code": "maintenance", '
            '"message": "Model calls are paused."}]}\n')
        assert await reloader.reload_now()
        decision = await reloader.evaluate(decision_input())
        assert not decision.allow
        assert [r.code for r in decision.reasons] == ["maintenance"]
    finally:
        await reloader.close()


@pytest.mark.parametrize("decision", [
    '{"allow": time.now_ns() > 0, "reasons": []}',  # the clock: never reused
    '{"allow": input.request.model != "forbidden", "reasons": []}',  # a key every decision input has
])
async def test_an_answer_that_may_change_is_asked_every_time(allow_all: Path, decision: str) -> None:
    (allow_all / "main.rego").write_text(f"package llm.main\n\ndecision := {decision}\n")
    reloader = await PolicyReloader(allow_all, limits=LIMITS).start(watch=False)
    try:
        assert (await reloader.evaluate(decision_input())).allow
        killed = await kill_evaluator(reloader)
        assert (await reloader.evaluate(decision_input())).allow  # from the process started to replace it
        assert serving_pid(reloader) not in (None, killed)
    finally:
        await reloader.close()

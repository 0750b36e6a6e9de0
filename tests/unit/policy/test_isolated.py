"""The evaluator process: the same answers as in-process, a deadline on every evaluation, and a stuck or
dead process replaced while the requests it held fail closed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.contract import ENTRYPOINTS, builtin_samples
from proxy.policy.embedded import EmbeddedRego
from proxy.policy.errors import PolicyEngineError
from proxy.policy.frames import INTERPRETER, RVM
from proxy.policy.isolated import EvaluatorProcess, IsolatedRego, VersionSpec
from proxy.policy.samples import decision_input
from proxy.policy.validate import version_spec
from tests.support.policy_versions import SPIN, slow_for_one_user

SLOW_USER = "slowpoke"


def spec_of(root: Path, compiled: bool = False) -> VersionSpec:
    return version_spec(load_bundle(root), ENTRYPOINTS, compiled)


async def isolated(root: Path, *, timeout_ms: int = 5000, compiled: bool = False,
                   restarts: list[tuple[str, str]] | None = None) -> IsolatedRego:
    spec = spec_of(root, compiled)
    process = await EvaluatorProcess.spawn()
    loaded = await process.load(spec, timeout_s=10)
    mode = loaded["mode"]
    on_restart = None if restarts is None else (lambda reason, revision: restarts.append((reason, revision)))
    return IsolatedRego(spec, "rev-1", mode, timeout_ms, process, on_restart=on_restart)


@pytest.fixture
async def slow_policy(policy_copy: Path) -> AsyncIterator[tuple[IsolatedRego, list[tuple[str, str]]]]:
    slow_for_one_user(policy_copy, SLOW_USER)
    restarts: list[tuple[str, str]] = []
    engine = await isolated(policy_copy, timeout_ms=1000, restarts=restarts)
    yield engine, restarts
    await engine.close()


def slow_input() -> dict[str, object]:
    doc = decision_input(who="key+user")
    doc["request"]["user"] = SLOW_USER
    return doc


@pytest.mark.parametrize("compiled", [False, True], ids=["interpreter", "compiled"])
async def test_answers_equal_the_in_process_engine_on_every_builtin_sample(compiled: bool) -> None:
    engine = await isolated(default_policy_dir(), compiled=compiled)
    local = EmbeddedRego(load_bundle(default_policy_dir()), compiled=compiled)
    assert engine.mode == local.mode == ("compiled" if compiled else "interpreter")
    try:
        for row in ENTRYPOINTS:
            for sample in builtin_samples(row):
                assert await engine.query(row.path, sample.input) == local.evaluate_entrypoint(row.path, sample.input)
    finally:
        await engine.close()


async def test_a_stuck_evaluation_fails_closed_and_the_process_is_replaced(
        slow_policy: tuple[IsolatedRego, list[tuple[str, str]]]) -> None:
    engine, restarts = slow_policy
    normal = decision_input(who="key+user")
    assert (await engine.evaluate(normal)).allow
    stuck_pid = engine.process.pid if engine.process else 0
    # The slow request, and the ones queued behind it in the stuck process, all fail closed.
    results = await asyncio.gather(engine.evaluate(slow_input()), engine.evaluate(normal), return_exceptions=True)
    assert all(isinstance(r, PolicyEngineError) for r in results), results
    assert "policy.timeout_ms (1000 ms)" in str(results[0])
    assert restarts == [("timeout", "rev-1")]
    # The next request is decided by a fresh process with the same version.
    assert (await engine.evaluate(normal)).allow
    assert engine.process is not None and engine.process.pid != stuck_pid
    with pytest.raises(ProcessLookupError):
        os.kill(stuck_pid, 0)


async def test_a_process_that_dies_is_replaced_and_its_requests_fail_closed(
        slow_policy: tuple[IsolatedRego, list[tuple[str, str]]]) -> None:
    engine, restarts = slow_policy
    assert engine.process is not None
    pending = asyncio.ensure_future(engine.evaluate(slow_input()))
    await asyncio.sleep(0.05)  # let it start spinning
    os.kill(engine.process.pid, signal.SIGKILL)
    with pytest.raises(PolicyEngineError):
        await pending
    assert restarts == [("exited", "rev-1")]
    assert (await engine.evaluate(decision_input())).allow


async def test_requests_queued_behind_slow_but_progressing_ones_do_not_kill_the_process(
        policy_copy: Path) -> None:
    # Each evaluation spins ~10^5 steps (tens of ms); a burst of them queues far past the timeout, but no
    # single one is stuck: the late ones fail closed, the process is kept. The timeout and the burst are
    # set from one evaluation timed on this machine, so a loaded machine changes the scale, not the case.
    (policy_copy / "zz_busy.rego").write_text(
        'package llm.limits\n\ndeny contains {"code": "busy", "message": "x"} if {\n'
        '\tinput.request.user == "busy"\n'
        + SPIN.replace("numbers.range(1, 1000)", "numbers.range(1, 40)") + "\tfalse\n}\n")
    busy = decision_input(who="key+user")
    busy["request"]["user"] = "busy"
    calibration = await isolated(policy_copy, timeout_ms=60_000)
    try:
        await calibration.evaluate(busy)
        started = time.perf_counter()
        await calibration.evaluate(busy)
        single_s = time.perf_counter() - started
    finally:
        await calibration.close()
    timeout_ms = max(1000, int(single_s * 10_000))  # one evaluation is a tenth of the timeout
    restarts: list[tuple[str, str]] = []
    engine = await isolated(policy_copy, timeout_ms=timeout_ms, restarts=restarts)
    try:
        pid = engine.process.pid if engine.process else 0
        burst = int(3 * timeout_ms / 1000 / single_s) + 1  # three timeouts' worth of queued work
        results = await asyncio.gather(*(engine.evaluate(busy) for _ in range(burst)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, Exception)]
        assert failed and all(isinstance(r, PolicyEngineError) for r in failed)
        assert len(failed) < len(results), "some requests must have been answered"
        assert restarts == []
        assert engine.process is not None and engine.process.pid == pid
    finally:
        await engine.close()


async def test_interpreter_and_rvm_can_be_asked_separately(policy_copy: Path) -> None:
    spec = spec_of(policy_copy, compiled=True)
    process = await EvaluatorProcess.spawn()
    try:
        await process.load(spec, timeout_s=10)
        body = b'{"version": 1}'
        interpreted = await process.evaluate("data.llm.models.allowed_models", body, 5, INTERPRETER)
        compiled = await process.evaluate("data.llm.models.allowed_models", body, 5, RVM)
        assert interpreted.ok and compiled.ok
        assert interpreted.nanos > 0
    finally:
        await process.close()


async def test_close_lets_sent_requests_be_answered() -> None:
    engine = await isolated(default_policy_dir())
    pending = [asyncio.ensure_future(engine.evaluate(decision_input())) for _ in range(20)]
    await asyncio.sleep(0)  # the requests are written
    await engine.close()
    assert all(decision.allow for decision in await asyncio.gather(*pending))

"""Runtime settings: GC thresholds, the start-up heap frozen, the GIL switch interval; GC pauses observed."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from proxy.config import ServerConfig
from proxy.server.gc_tuning import PauseRecorder, tune_runtime


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds, callbacks, interval = gc.get_threshold(), list(gc.callbacks), sys.getswitchinterval()
    yield
    sys.setswitchinterval(interval)
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


def pause_count(registry: CollectorRegistry, generation: str) -> float:
    return registry.get_sample_value("llm_proxy_gc_pause_seconds_count", {"generation": generation}) or 0.0


def test_tune_runtime_freezes_and_sets_thresholds_and_the_switch_interval(restore_gc: None) -> None:
    tune_runtime(ServerConfig(gc_thresholds=(4000, 15, 50), gil_switch_interval_ms=2))
    assert gc.get_threshold() == (4000, 15, 50)
    assert sys.getswitchinterval() == pytest.approx(0.002)
    assert gc.get_freeze_count() > 1000  # modules, config, everything alive at start-up


def test_collections_are_recorded_while_registered_and_observed_when_drained(restore_gc: None) -> None:
    registry = CollectorRegistry()
    pauses = Histogram("llm_proxy_gc_pause_seconds", "", ["generation"], registry=registry)
    callbacks = len(gc.callbacks)
    with PauseRecorder(pauses) as recorder:
        gc.collect(0)
        gc.collect(2)
        # Nothing touches the histogram inside a collection (its lock may be held by this thread).
        assert pause_count(registry, "2") == 0
        recorder.drain()
        assert pause_count(registry, "0") >= 1 and pause_count(registry, "2") == 1
        gc.collect(2)
    # Leaving drains what is left and unregisters the callback.
    assert pause_count(registry, "2") == 2
    assert registry.get_sample_value("llm_proxy_gc_pause_seconds_sum", {"generation": "2"}) > 0
    assert len(gc.callbacks) == callbacks
    gc.collect(2)
    assert pause_count(registry, "2") == 2


async def test_the_recorder_drains_on_its_own_while_the_loop_runs(restore_gc: None) -> None:
    registry = CollectorRegistry()
    pauses = Histogram("llm_proxy_gc_pause_seconds", "", ["generation"], registry=registry)
    with PauseRecorder(pauses) as recorder:
        task = asyncio.get_running_loop().create_task(recorder.drain_every(0.01))
        gc.collect(1)
        await asyncio.sleep(0.05)
        assert pause_count(registry, "1") == 1
        task.cancel()


def test_freezing_can_be_turned_off(restore_gc: None) -> None:
    gc.unfreeze()
    tune_runtime(ServerConfig(gc_freeze=False))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (5000, 20, 100)
    assert sys.getswitchinterval() == pytest.approx(0.001)


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="gc_thresholds"):
        ServerConfig(gc_thresholds=(0, 10, 10))  # a zero young threshold would turn the collector off

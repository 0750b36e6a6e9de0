"""Runtime settings: GC thresholds, the start-up heap frozen, the GIL switch interval; GC pauses observed."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from proxy.config import ServerConfig
from proxy.runtime import pauses_observed, tune_runtime


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


def test_collections_are_observed_as_pauses_only_while_inside(restore_gc: None) -> None:
    registry = CollectorRegistry()
    pauses = Histogram("llm_proxy_gc_pause_seconds", "", ["generation"], registry=registry)
    callbacks = len(gc.callbacks)
    with pauses_observed(pauses):
        gc.collect(0)
        gc.collect(2)
    assert pause_count(registry, "0") >= 1 and pause_count(registry, "2") == 1
    assert registry.get_sample_value("llm_proxy_gc_pause_seconds_sum", {"generation": "2"}) > 0
    assert len(gc.callbacks) == callbacks
    gc.collect(2)
    assert pause_count(registry, "2") == 1


def test_freezing_can_be_turned_off(restore_gc: None) -> None:
    gc.unfreeze()
    tune_runtime(ServerConfig(gc_freeze=False))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (5000, 20, 100)
    assert sys.getswitchinterval() == pytest.approx(0.001)


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="gc_thresholds"):
        ServerConfig(gc_thresholds=(0, 10, 10))  # a zero young threshold would turn the collector off

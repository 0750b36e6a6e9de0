"""GC settings: thresholds applied, the start-up heap frozen; collections observed as pauses while asked."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from proxy.config import ServerConfig
from proxy.heap import pauses_observed, settle_heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


def pause_count(registry: CollectorRegistry, generation: str) -> float:
    return registry.get_sample_value("llm_proxy_gc_pause_seconds_count", {"generation": generation}) or 0.0


def test_settle_heap_freezes_and_sets_thresholds(restore_gc: None) -> None:
    settle_heap(ServerConfig(gc_thresholds=(4000, 15, 50)))
    assert gc.get_threshold() == (4000, 15, 50)
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
    settle_heap(ServerConfig(gc_freeze=False))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (5000, 20, 100)


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="gc_thresholds"):
        ServerConfig(gc_thresholds=(0, 10, 10))  # a zero young threshold would turn the collector off

"""A real Prometheus for the end-to-end tests, started once the targets it scrapes are known."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.prometheus_server import PrometheusServer, binary, start_prometheus

PrometheusFactory = Callable[[Sequence[str]], PrometheusServer]


@pytest.fixture
def make_prometheus(tmp_path: Path) -> Iterator[PrometheusFactory]:
    if binary() is None:
        pytest.skip("prometheus is not installed (Debian package `prometheus`; CI installs it)")
    started: list[PrometheusServer] = []

    def factory(targets: Sequence[str]) -> PrometheusServer:
        server = start_prometheus(tmp_path / f"prometheus-{len(started)}", targets)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()

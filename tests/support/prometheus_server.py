"""A private Prometheus for tests: Debian's binary on a free loopback port, scraping given targets every second.

It loads the repository's alert rules, so rule evaluation runs against what it scrapes. `stop()` kills it;
its config, data and log live in a directory the caller owns.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.config import REPO
from tests.support.redis_server import free_port

RULES = REPO / "deploy" / "prometheus" / "rules"
JOB = "llm-policy-proxy"


def binary() -> str | None:
    return shutil.which("prometheus")


def has_data(result: list[dict[str, Any]]) -> bool:
    """True when an instant (`value`) or range (`values`) result holds a sample that is a number."""
    for series in result:
        for _, value in series.get("values", [series["value"]] if "value" in series else []):
            if not math.isnan(float(value)):
                return True
    return False


@dataclass
class PrometheusServer:
    workdir: Path
    targets: Sequence[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES / "*.yaml")],
            "scrape_configs": [{"job_name": JOB, "metrics_path": "/metrics",
                                "static_configs": [{"targets": list(self.targets)}]}],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self, timeout: float = 20.0) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError("prometheus is not on PATH")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [exe, f"--config.file={self.write_config()}", f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        with (self.workdir / "prometheus.log").open("wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus did not become ready on port {self.port}:\n{self.log_tail()}")
            time.sleep(0.1)

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "prometheus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def api(self, path: str, **params: str | float) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"GET /api/v1/{path} {params}: {response.status_code} {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        # Scalars and strings come back as one [time, value] pair; vectors as a list of series.
        return [{"value": data["result"]}] if data["resultType"] in ("scalar", "string") else data["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        return list(self.api("query_range", query=expr, start=start, end=end, step=step)["result"])

    def targets_up(self) -> dict[str, bool]:
        active = self.api("targets", state="active")["activeTargets"]
        return {target["labels"]["instance"]: target["health"] == "up" for target in active}

    def wait_for_scrapes_after(self, moment: float, timeout: float = 10.0) -> None:
        """Until every target has been scraped successfully by a scrape that started after `moment` (unix
        seconds). Targets start scraping at different offsets, and a target not yet scraped has no `up` at all."""
        deadline = time.monotonic() + timeout
        fresh = f"count(timestamp(up{{job='{JOB}'}} == 1) > {moment}) == {len(self.targets)}"
        while not has_data(self.query(fresh)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no scrape of every target after {moment} within {timeout} s")
            time.sleep(0.2)

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.api("rules")["groups"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])


def start_prometheus(workdir: Path, targets: Sequence[str], attempts: int = 3) -> PrometheusServer:
    """A ready Prometheus; retries on a fresh port, since another process may take the free one first."""
    for attempt in range(attempts):
        server = PrometheusServer(workdir / f"attempt-{attempt}", targets)
        try:
            server.start()
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            continue
        return server
    raise AssertionError("unreachable")

"""In a private network namespace: an address of the proxy's own host is internal even when it looks
public, its listening ports are never opened (a proxy loop), and hosts that bind foreign addresses fall
back to what is known for certain."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def namespace_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    out = tmp_path_factory.mktemp("netns") / "result.json"
    run = subprocess.run([unshare, "-rn", sys.executable, "-m", "tests.integration.egress.netns_own_host", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=90)
    if run.returncode != 0 and "unshare failed" in run.stderr:
        pytest.skip(f"no user and network namespaces here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_an_address_of_the_proxy_host_is_refused_before_connecting(namespace_run: dict[str, Any]) -> None:
    assert namespace_run["closed"]["service"].startswith("HTTP/1.1 403 ")
    assert "proxy_host (93.184.215.14 is an address of the proxy's host)" in namespace_run["closed"]["service"]
    # Only the allow-listed run reached the service.
    assert namespace_run["accepted"] == ["93.184.215.14"]


def test_an_allow_entry_opens_the_host_but_never_the_proxy_itself(namespace_run: dict[str, Any]) -> None:
    assert namespace_run["open"]["service"].startswith("HTTP/1.1 200 Connection Established")
    for run in ("closed", "open"):
        assert "proxy_listener (this proxy listens on port" in namespace_run[run]["itself"]
        assert "metadata (169.254.169.254" in namespace_run[run]["metadata"]


def test_without_a_route_resolution_fails_cleanly(namespace_run: dict[str, Any]) -> None:
    assert namespace_run["dns"].startswith("cannot resolve nothing.example: ")


def test_with_nonlocal_binding_only_certain_addresses_count_as_own(namespace_run: dict[str, Any]) -> None:
    assert namespace_run["nonlocal_bind"] == {"own": False, "loopback": True}

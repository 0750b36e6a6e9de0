"""Keys issued, revoked and expiring while the proxy runs: in-process (polling) and a real `serve` (SIGHUP)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from proxy.__main__ import main
from proxy.identity import hash_key
from proxy.identity.config import ApiKey
from proxy.identity.keyfile import read_keys, write_keys
from tests.conftest import ProxyFactory, UpstreamHandle
from tests.support.config import KEYS, config_document
from tests.support.processes import start_proxy, stop_proxy

HELLO = [{"role": "user", "content": "Hi"}]


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Waits on the proxy's reload, which is what is under test: bounded, and no longer than needed."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the proxy did not pick the change up in time"
        time.sleep(0.02)


def status(root: str, key: str) -> int:
    return httpx.get(root + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code


def test_keys_are_issued_revoked_and_expire_while_the_proxy_runs(make_proxy: ProxyFactory, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.yaml"
    proxy = make_proxy(auth__keys_file=str(path), auth__keys_reload_interval_s=0.05)
    assert main(["keys", "create", "--file", str(path), "--app", "billing-api", "--team", "payments",
                 "--id", "k-new", "--owner", "ada"]) == 0
    # The proxy's own log lines share this stdout in-process; the key is the line the command printed.
    (issued,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("llmpp-")]
    eventually(lambda: status(proxy.root, issued) == 200)
    reply = proxy.client(issued).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert reply.choices

    assert main(["keys", "revoke", "--file", str(path), "k-new"]) == 0
    eventually(lambda: status(proxy.root, issued) == 401)
    with pytest.raises(openai.AuthenticationError) as caught:
        proxy.client(issued).models.list()
    assert caught.value.code == "api_key_revoked"

    # A key that expires in a moment is refused once it has, with no reload involved.
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    write_keys(path, (*read_keys(path), ApiKey(id="k-brief", sha256=hash_key("brief-key"), app="a", team="payments",
                                                expires_at=soon)))
    eventually(lambda: status(proxy.root, "brief-key") == 200)
    eventually(lambda: status(proxy.root, "brief-key") == 401, seconds=5)
    assert httpx.get(proxy.root + "/v1/models", headers={"Authorization": "Bearer brief-key"}) \
        .json()["error"]["code"] == "api_key_expired"

    rows = {row["id"]: row for row in httpx.get(proxy.root + "/admin/keys", headers={
        "Authorization": f"Bearer {KEYS['admin']}"}).json()["data"]}
    assert rows["k-new"]["status"] == "revoked" and rows["k-new"]["requests"] >= 2 and rows["k-new"]["owner"] == "ada"
    assert rows["k-brief"]["status"] == "expired" and rows["k-payments"]["origin"] == "config"
    # A broken file changes nothing: the keys in force stay in force.
    path.write_text("keys: [broken\n")
    failed = 'llm_proxy_auth_reloads_total{result="failure",source="keys_file"}'
    eventually(lambda: failed in httpx.get(proxy.root + "/metrics").text)
    assert status(proxy.root, KEYS["payments"]) == 200 and status(proxy.root, "brief-key") == 401


def test_a_served_proxy_reloads_its_keys_on_sighup(upstream: UpstreamHandle, tmp_path: Path) -> None:
    document = config_document(upstream.url, tmp_path)
    document["auth"].update(keys_file="keys.yaml", keys_reload_interval_s=3600)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    proc, root = start_proxy(config)
    try:
        cli = [sys.executable, "-m", "proxy", "keys"]
        created = subprocess.run([*cli, "create", "--config", str(config), "--app", "notebook", "--team", "research",
                                  "--id", "k-served"], capture_output=True, text=True, check=True, timeout=60)
        key = created.stdout.strip()
        assert key and key not in (tmp_path / "keys.yaml").read_text() and "shown only this once" in created.stderr
        assert status(root, key) == 401  # the hour-long poll has not run; SIGHUP is what loads it
        os.kill(proc.pid, signal.SIGHUP)
        eventually(lambda: status(root, key) == 200)
        subprocess.run([*cli, "revoke", "--config", str(config), "k-served"], check=True, timeout=60,
                       capture_output=True)
        os.kill(proc.pid, signal.SIGHUP)
        eventually(lambda: status(root, key) == 401)
        assert status(root, KEYS["research"]) == 200  # config keys keep working beside the file's
    finally:
        stop_proxy(proc)

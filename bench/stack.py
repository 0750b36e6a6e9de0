"""The processes a benchmark runs against: test upstream, OTLP sink and the proxy with the full shipped stack.

Two cores: the proxy gets core 0 (with one worker; several workers are not pinned), the upstream, the sink
and the load generators share core 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# team research may use every model and has no rate limit (policies/data/*.json), so limits never interfere.
KEY, KEY_SHA = "demo-key-research", "94fe56ece68e5eb9115b1d05b58fa82b484396ee3db522193542218aabc76cf1"
ADMIN_KEY, ADMIN_SHA = "demo-admin-key", "ac5bb3526d3be432ba19fb1fc0712d350c160bd2169cd24401c9fcaeaac2d860"
# gpt-4o-mini: a 64 KB prompt costs ~$0.002, so a scenario never reaches the team's monthly budget (and its
# 90% downgrade); the budget is reset before each scenario anyway.
MODEL = "gpt-4o-mini"
# Served by the upstream's /paced/v1 (a delay before each stream event), for time-to-first-token figures.
PACED_MODEL = "gpt-4.1-mini"
PROXY_CPUS, LOAD_CPUS = "0", "1"
REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpus: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus and shutil.which("taskset") else command


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextlib.contextmanager
def service(name: str, command: list[str], port: int, ready_path: str, log: Path,
            env: dict[str, str] | None = None, timeout: float = 30.0) -> Iterator[Service]:
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    running = Service(name, proc, port, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} did not come up (exit {proc.returncode}); log tail:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(running.url(ready_path), timeout=1).status_code < 500:
                    break
            time.sleep(0.1)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def upstream(directory: Path, delay_ms: float, chunk_delay_ms: float, paced_chunk_delay_ms: float,
             reply_words: int, burst: bool = False) -> contextlib.AbstractContextManager[Service]:
    port = free_port()
    command = pinned(LOAD_CPUS, [str(BIN / "python"), "bench/serve_upstream.py", "--port", str(port),
                                 "--delay-ms", str(delay_ms), "--chunk-delay-ms", str(chunk_delay_ms),
                                 "--paced-chunk-delay-ms", str(paced_chunk_delay_ms),
                                 "--reply-words", str(reply_words), *(("--burst",) if burst else ())])
    return service("upstream", command, port, "/v1/models", directory / "upstream.log")


def otlp_sink(directory: Path) -> contextlib.AbstractContextManager[Service]:
    port = free_port()
    command = pinned(LOAD_CPUS, [str(BIN / "python"), "bench/otlp_sink.py", "--port", str(port)])
    return service("otlp-sink", command, port, "/stats", directory / "otlp-sink.log")


def proxy_config(directory: Path, upstream_port: int, store: str, port: int, prefix: str,
                 log_level: str = "info", server_options: str = "", telemetry_options: str = "",
                 policy_dir: Path | None = None, policy_options: str = "", tokens_options: str = "") -> Path:
    """The shipped stack as in proxy/examples/demo.yaml: embedded Rego, PII, budgets, metrics, info logs.
    `policy_dir` replaces the shipped policies/ (e.g. bench/policies/allow-all for the minimal config);
    `policy_options` and `tokens_options` are added to those mappings, e.g. ", decision_log: full"."""
    state = directory / f"state-{prefix}"
    state.mkdir()
    store_lines = (f"  store: redis\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n"
                   if store == "redis" else "  store: sqlite\n")
    path = directory / f"proxy-{store}.yaml"
    path.write_text(f"""server: {{host: 127.0.0.1, port: {port}{server_options}}}
auth:
  mode: gateway
  keys:
    - {{id: bench-research, sha256: {KEY_SHA}, app: notebook, team: research}}
    - {{id: bench-admin, sha256: {ADMIN_SHA}, app: admin-cli, team: platform, admin: true}}
upstreams:
  demo: {{kind: openai_compatible, base_url: "http://127.0.0.1:{upstream_port}/v1"}}
  paced: {{kind: openai_compatible, base_url: "http://127.0.0.1:{upstream_port}/paced/v1"}}
models:
  gpt-4o:
    {{upstream: demo, upstream_model: demo-model, aliases: [demo-model], context_window: 128000,
     prices: {{input: 2.5, cached_input: 1.25, output: 10.0}}, max_output_tokens: 4096, encoding: o200k_base}}
  gpt-4o-mini:
    {{upstream: demo, upstream_model: demo-model, aliases: [demo-model-mini], context_window: 128000,
     prices: {{input: 0.15, cached_input: 0.075, output: 0.6}}, max_output_tokens: 4096, encoding: o200k_base}}
  {PACED_MODEL}:
    {{upstream: paced, upstream_model: demo-model, context_window: 128000,
     prices: {{input: 0.4, cached_input: 0.1, output: 1.6}}, max_output_tokens: 4096, encoding: o200k_base}}
  text-embedding-3-small:
    {{upstream: demo, upstream_model: demo-embedding, aliases: [demo-embedding], prices: {{input: 0.02}},
     context_window: 8191, encoding: cl100k_base, endpoints: [embeddings]}}
policy: {{engine: embedded, compiled: true, dir: {policy_dir or REPO / "policies"}{policy_options}}}
tokens: {{offload_bytes: 16384{tokens_options}}}
budget:
{store_lines}  sqlite_path: {state}/budget.sqlite3
  ledger_path: {state}/ledger.jsonl
telemetry: {{log_level: {log_level}{telemetry_options}}}
""")
    return path


@contextlib.contextmanager
def proxy(directory: Path, upstream_port: int, sink_port: int | None, store: str, workers: int,
          log_level: str = "info", server_options: str = "", telemetry_options: str = "",
          env_extra: dict[str, str] | None = None, policy_dir: Path | None = None, policy_options: str = "",
          tokens_options: str = "", checkout: Path | None = None) -> Iterator[Service]:
    """The proxy with its own budget state: a fresh SQLite file, or a Redis key prefix deleted afterwards.

    Traces go to the sink on `sink_port` (None: no OTLP endpoint, so no export). `server_options` is
    appended to the config's `server` mapping, e.g. ", gc_freeze: false"; `telemetry_options` to its
    `telemetry` mapping, e.g. ", metrics: false". `env_extra` is added to the proxy's environment.
    `checkout`: run another checkout's proxy (its .venv), e.g. main beside this branch."""
    port = free_port()
    prefix = f"bench-{os.getpid()}-{time.time_ns()}"
    config = proxy_config(directory, upstream_port, store, port, prefix, log_level, server_options, telemetry_options,
                          policy_dir, policy_options, tokens_options)
    command = pinned(PROXY_CPUS if workers == 1 else None,
                     [str((checkout / ".venv" / "bin" if checkout else BIN) / "llm-policy-proxy"), "serve",
                      "--config", str(config), "--workers", str(workers)])
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("OTEL_") and key != "PROMETHEUS_MULTIPROC_DIR"}
    env |= env_extra or {}
    if sink_port is not None:
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": os.environ.get("BENCH_OTLP_PROTOCOL", "http/json"),
                "OTEL_SERVICE_NAME": "llm-policy-proxy-bench"}
        if os.environ.get("BENCH_OTEL_TRACES_SAMPLER"):  # e.g. always_off: tracing wired, nothing recorded
            env["OTEL_TRACES_SAMPLER"] = os.environ["BENCH_OTEL_TRACES_SAMPLER"]
    try:
        with service(f"proxy-{store}-w{workers}", command, port, "/readyz",
                     directory / f"proxy-{store}-w{workers}.log", env=env, timeout=60.0) as running:
            yield running
    finally:
        if store == "redis":
            delete_redis_prefix(prefix)


def delete_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        # The prefix is the keys' hash tag: every key of this run starts with "{prefix}".
        keys = list(client.scan_iter(match=f"{{{prefix}}}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
    finally:
        client.close()


def reset_budget(proxy_service: Service) -> None:
    httpx.post(proxy_service.url("/admin/budgets/reset"), json={"scope": "team:research"},
               headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10).raise_for_status()


def sink_stats(sink: Service) -> dict[str, int]:
    return dict(httpx.get(sink.url("/stats"), timeout=5).json())


def write_body(directory: Path, size: int, stream: bool, model: str = MODEL) -> Path:
    """A chat request whose user message is `size` bytes of ordinary prose (no PII), max_tokens 64."""
    filler = ("The quarterly report covers revenue, churn and hiring plans across all regions. " * (size // 80 + 1))
    body: dict[str, object] = {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": filler[:size]}],
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    path = directory / f"body-{model}-{size}{'-stream' if stream else ''}.json"
    path.write_text(json.dumps(body))
    return path

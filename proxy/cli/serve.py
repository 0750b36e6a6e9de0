"""`llm-policy-proxy serve` and `check-config`: a config loaded, its policy folders checked, then the
worker (or the supervisor and its workers) started."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from proxy.config import Config, ConfigError, load_config


def cmd_check_config(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: invalid config\n{exc}", file=sys.stderr)
        return 2
    problem = policy_problem(config)
    if problem is not None:
        print(f"{path}: {problem}", file=sys.stderr)
        return 1
    print(f"{path}: ok ({len(config.upstreams)} upstreams, {len(config.models)} models, "
          f"{len(config.auth.keys)} keys, auth mode {config.auth.mode})")
    return 0


def policy_problem(config: Config) -> str | None:
    """Why the embedded engine's policy folders (policy.dir, policy.shadow_dir) would not serve, or None."""
    policy = config.policy
    if policy.engine != "embedded":
        return None
    # Not from .policy.cli: with one worker this process serves, and the CLI's in-process engine imports regorus.
    from proxy.policy.validate import check_policy_folder
    folders = [("policy.dir", policy.dir)]
    if policy.shadow_dir is not None:
        folders.append(("policy.shadow_dir", policy.shadow_dir))
    for key, folder in folders:
        problem = check_policy_folder(key, config.path(folder), compiled=policy.compiled,
                                      timeout_ms=policy.timeout_ms)
        if problem is not None:
            return problem
    return None


def cmd_serve(path: Path, host: str | None, port: int | None, workers: int) -> int:
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # prometheus_client picks its multiprocess value store at import time, so this must come first:
        # each worker writes its own files and any worker's /metrics answers for all of them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="llm-policy-proxy-metrics-")
    from proxy.server.workers import run_supervisor, run_worker
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: invalid config\n{exc}", file=sys.stderr)
        return 2
    host = host or config.server.host
    port = config.server.port if port is None else port
    if workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    problem = policy_problem(config)  # before any worker starts: one line, not a traceback per worker
    if problem is not None:
        print(f"{path}: {problem.splitlines()[0]}", file=sys.stderr)
        return 2
    if workers == 1:
        run_worker(config, host=host, port=port)
        return 0
    return run_supervisor(config, host, port, workers)


"""Proxy configs for tests: the test upstream behind a small catalogue and known keys."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from proxy.config import Config, parse_config

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "payments": "test-key-payments",
    "research": "test-key-research",
    "admin": "test-key-admin",
    "support": "test-key-support",
}


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def config_document(upstream_url: str, state_dir: Path, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "auth": {"mode": "gateway", "keys": [
            {"id": "k-payments", "sha256": _sha(KEYS["payments"]), "app": "billing-api", "team": "payments"},
            {"id": "k-research", "sha256": _sha(KEYS["research"]), "app": "notebook", "team": "research"},
            {"id": "k-admin", "sha256": _sha(KEYS["admin"]), "app": "admin-cli", "team": "platform", "admin": True},
            {"id": "k-support", "sha256": _sha(KEYS["support"]), "app": "support-bot", "team": "support"},
        ]},
        "upstreams": {"test": {"kind": "openai_compatible", "base_url": upstream_url,
                               "timeouts": {"connect_s": 2, "first_byte_s": 5, "idle_s": 5}}},
        "models": {
            "gpt-4o": {"upstream": "test", "upstream_model": "demo-model", "aliases": ["demo-model"],
                       "prices": {"input": 2.5, "cached_input": 1.25, "output": 10.0}},
            "gpt-4o-mini": {"upstream": "test", "upstream_model": "demo-model", "aliases": ["demo-model-mini"],
                            "prices": {"input": 0.15, "cached_input": 0.075, "output": 0.6}},
            "text-embedding-3-small": {"upstream": "test", "upstream_model": "demo-embedding",
                                       "aliases": ["demo-embedding"], "prices": {"input": 0.02},
                                       "encoding": "cl100k_base", "endpoints": ["embeddings"]},
        },
        "budget": {"store": "sqlite", "sqlite_path": str(state_dir / "budget.sqlite3"),
                   "ledger_path": str(state_dir / "ledger.jsonl")},
        # A generous policy timeout: a busy test machine must not turn a slow scheduler into a 503.
        "policy": {"dir": str(REPO / "policies"), "reload_interval_s": 0, "timeout_ms": 5000},
    }
    for dotted, value in overrides.items():
        target = document
        *parents, last = dotted.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return document


def make_config(upstream_url: str, state_dir: Path, **overrides: Any) -> Config:
    return parse_config(config_document(upstream_url, state_dir, **overrides), base_dir=REPO)

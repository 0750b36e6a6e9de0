"""What one proxied request's Prometheus updates cost: the calls the pipeline makes for a 1 KB chat.

    .venv/bin/python bench/metrics_bench.py [--n 20000]

Request, duration and overhead histograms, the upstream operation, tokens and cost, the policy decision,
PII counts and two budget scopes' gauges; best of five runs, microseconds per request.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from proxy.telemetry.metrics import Metrics


def one_request(m: Metrics) -> None:
    m.request_finished(endpoint="chat.completions", model="gpt-4o-mini", team="research", app="notebook",
                       decision="allow", status=200, seconds=0.002, upstream_seconds=0.001)
    m.upstream_finished(operation="chat", model="gpt-4o-mini", provider="openai", upstream="demo", seconds=0.001,
                        ttft=None)
    m.tokens_used(model="gpt-4o-mini", team="research", app="notebook", input_tokens=231, cached_input_tokens=0,
                  output_tokens=64, cost_usd=0.0001)
    m.policy_decided(allow=True, reasons=[], audit=[], seconds=0.0001, engine="embedded")
    m.pii_found(counts={"email": 1}, action_of={"email": "redact"}, direction="request")
    for scope in ("team:research/month", "app:notebook/day"):
        m.budget_observed(scope=scope, spent_usd=1.0, limit_usd=100.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    metrics = Metrics()
    for _ in range(1000):
        one_request(metrics)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(args.n):
            one_request(metrics)
        best = min(best, (time.perf_counter() - started) / args.n)
    print(f"metrics of one request: {best * 1e6:.1f} µs")


if __name__ == "__main__":
    main()

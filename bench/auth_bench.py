"""What identifying a caller adds to each request: Authenticator.authenticate(headers) for an API key, and
for a JWT per algorithm with the verified-token cache (a repeat caller) and without it (cache_size: 0, or
a token seen for the first time). The issuer's keys are held (a local JWKS file), as in steady state.

Run: .venv/bin/python bench/auth_bench.py [--n 20000]
Prints p50/p99 in microseconds per call; the difference to the API-key row is JWT validation's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.config import parse_config
from proxy.identity.authenticator import Authenticator
from proxy.identity.build import open_authenticator
from proxy.telemetry.metrics import Metrics
from tests.support.config import KEYS, config_document
from tests.support.jwks_server import claims_for, mint, signing_key

ISSUER = "https://issuer.bench"
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")


async def build(directory: Path, cache_size: int, stack: AsyncExitStack) -> Authenticator:
    document = config_document("http://127.0.0.1:9/v1", directory)
    document["auth"]["jwt"] = {"cache_size": cache_size, "issuers": [{
        "issuer": ISSUER, "audiences": ["llm-policy-proxy"], "algorithms": list(ALGORITHMS), "jwks_file": "jwks.json",
        "identity": {"app": {"claim": "azp"}, "team": {"claim": "groups", "map": {"ml-engineers": "ml"}},
                     "user": {"claim": "email"}},
        "policy_claims": ["groups"]}]}
    config = parse_config(document, base_dir=directory)
    auth = await open_authenticator(config, Metrics(CollectorRegistry()), stack)
    assert auth.tokens is not None
    for issuer in auth.tokens.verifier.issuers.values():
        assert await issuer.keys.refresh()
    return auth


async def timed(auth: Authenticator, headers: list[dict[str, str]], n: int) -> tuple[float, float]:
    samples = []
    for i in range(n):
        started = time.perf_counter_ns()
        await auth.authenticate(headers[i % len(headers)])
        samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="llmpp-auth-bench-") as tmp:
        directory = Path(tmp)
        keys = {alg: signing_key(f"bench-{alg}", alg) for alg in ALGORITHMS}
        (directory / "jwks.json").write_bytes(orjson.dumps({"keys": [k.public_jwk for k in keys.values()]}))
        claims = {"azp": "trainer", "groups": ["staff", "ml-engineers"], "email": "ada@example.com"}
        async with AsyncExitStack() as stack:
            cached = await build(directory, 10_000, stack)
            uncached = await build(directory, 0, stack)
            rows = [("api key", *await timed(cached, [{"Authorization": f"Bearer {KEYS['payments']}"}], n))]
            for alg, key in keys.items():
                token = {"Authorization": f"Bearer {mint(key, claims_for(ISSUER, lifetime_s=3600, **claims))}"}
                rows.append((f"jwt {alg}, cached", *await timed(cached, [token], n)))
                # Verification is the expensive part: fewer rounds keep the run short.
                rows.append((f"jwt {alg}, no cache", *await timed(uncached, [token], max(200, n // 10))))
    print(f"{'case':<24}{'p50 us':>10}{'p99 us':>10}")
    for name, p50, p99 in rows:
        print(f"{name:<24}{p50:>10.1f}{p99:>10.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    asyncio.run(main(parser.parse_args().n))

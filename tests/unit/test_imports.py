"""Each serving process imports only what its config uses: an unused library still costs every worker its
resident memory (PyJWT with cryptography ~10 MB, regorus ~7 MB, see docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.config import REPO

# A worker with the default config: API keys (no JWT issuer), the embedded policy engine (served by the
# evaluator process), budgets on SQLite. Started for real, with the start-up check `serve` runs first.
SERVE = """
import asyncio, sys
from pathlib import Path
from aiohttp import web
from proxy.cli.serve import policy_problem
from proxy.server.app import build_app
from tests.support.config import make_config

config = make_config("http://127.0.0.1:9/v1", Path(sys.argv[1]))
assert policy_problem(config) is None

async def serve():
    runner = web.AppRunner(build_app(config))
    await runner.setup()
    await runner.cleanup()

asyncio.run(serve())
print(" ".join(sorted(sys.modules)))
"""

OPTIONAL = {"jwt", "cryptography", "regorus", "redis", "opa_client"}


def loaded_modules(code: str, *args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO,
                            check=True, timeout=120)
    return set(result.stdout.split())


def test_a_started_worker_imports_no_jwt_regorus_redis_or_opa_client_it_does_not_use(tmp_path: Path) -> None:
    modules = loaded_modules(SERVE, str(tmp_path))

    assert "proxy.components" in modules  # it did start
    assert {name.partition(".")[0] for name in modules} & OPTIONAL == set()


def test_the_evaluator_process_imports_regorus_orjson_and_its_own_modules_only() -> None:
    modules = loaded_modules("import sys, proxy.policy.evaluator; print(' '.join(sorted(sys.modules)))")

    assert {"regorus", "orjson"} <= modules
    assert {m for m in modules if m.startswith("proxy")} == {
        "proxy", "proxy.policy", "proxy.policy.answers", "proxy.policy.errors", "proxy.policy.evaluator",
        "proxy.policy.frames", "proxy.policy.rego"}
    assert not {"aiohttp", "pydantic", "tiktoken", "yaml"} & {m.partition(".")[0] for m in modules}

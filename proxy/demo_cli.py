"""`llm-policy-proxy demo`: the proxy with the example config in front of the built-in demo model."""

from __future__ import annotations

import asyncio
import os
import signal
from importlib import resources
from pathlib import Path

from aiohttp import web

from .app import build_app
from .config import load_config
from .demo import DemoModel
from .telemetry.logging import configure_logging
from .workers import install_event_loop_policy

DEMO_KEY = "demo-key-payments"


def demo_config_path() -> Path:
    return Path(str(resources.files("proxy") / "examples" / "demo.yaml"))


async def _serve(host: str, port: int) -> None:
    model_runner = web.AppRunner(DemoModel().build_app(), access_log=None)
    await model_runner.setup()
    model_site = web.TCPSite(model_runner, "127.0.0.1", 0)
    await model_site.start()
    model_port = model_runner.addresses[0][1]
    env = {**os.environ, "DEMO_UPSTREAM_URL": f"http://127.0.0.1:{model_port}/v1"}
    config = load_config(demo_config_path(), env=env)
    proxy_runner = web.AppRunner(build_app(config), access_log=None, handler_cancellation=True)
    await proxy_runner.setup()
    await web.TCPSite(proxy_runner, host, port).start()
    bound = proxy_runner.addresses[0][1]
    base_url = f"http://{host}:{bound}/v1"
    print(f"""
llm-policy-proxy demo is running.

  base URL : {base_url}
  API key  : {DEMO_KEY}

Try it:
  curl -s {base_url}/chat/completions -H 'Authorization: Bearer {DEMO_KEY}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"model": "demo-model", "messages": [{{"role": "user", "content": "Hi there"}}]}}'

  OPENAI_BASE_URL={base_url} OPENAI_API_KEY={DEMO_KEY} python -c \\
    "from openai import OpenAI; print(OpenAI().chat.completions.create(model='demo-model', \\
messages=[{{'role': 'user', 'content': 'Hi there'}}]).choices[0].message.content)"

Press Ctrl-C to stop.
""", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await proxy_runner.cleanup()
        await model_runner.cleanup()


def run_demo(host: str, port: int) -> int:
    configure_logging("info")
    install_event_loop_policy()
    asyncio.run(_serve(host, port))
    return 0

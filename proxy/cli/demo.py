"""`llm-policy-proxy demo`: the proxy with the example config in front of the built-in demo model."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sys
from importlib import resources
from pathlib import Path

from aiohttp import web

from proxy.config import load_config
from proxy.demo import DemoModel
from proxy.server.app import build_app
from proxy.server.workers import install_event_loop_policy
from proxy.telemetry.logging import configure_logging

DEMO_KEY = "demo-key-payments"
RESEARCH_KEY = "demo-key-research"


class PortBusy(Exception):
    def __init__(self, host: str, port: int, cause: OSError) -> None:
        in_use = cause.errno == errno.EADDRINUSE
        reason = "is already in use" if in_use else f"cannot be opened ({cause.strerror})"
        super().__init__(f"llm-policy-proxy demo: port {port} on {host} {reason}; pick another with "
                         f"`make demo PORT=9000` or `llm-policy-proxy demo --port 9000`.")


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
    try:
        await web.TCPSite(proxy_runner, host, port).start()
    except OSError as exc:
        await proxy_runner.cleanup()
        await model_runner.cleanup()
        raise PortBusy(host, port, exc) from None
    bound = proxy_runner.addresses[0][1]
    root = f"http://{host}:{bound}"
    base_url = f"{root}/v1"
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

  Anthropic's SDK and tools that honour ANTHROPIC_BASE_URL (Claude models need the research key):
  ANTHROPIC_BASE_URL={root} ANTHROPIC_API_KEY={RESEARCH_KEY} python -c \\
    "import anthropic; print(anthropic.Anthropic().messages.create(model='claude-sonnet-4-5', \\
max_tokens=100, messages=[{{'role': 'user', 'content': 'Hi there'}}]).content[0].text)"

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
    try:
        asyncio.run(_serve(host, port))
    except PortBusy as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0

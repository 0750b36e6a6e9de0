"""`llm-policy-proxy demo` as a newcomer runs it: both SDKs answered, tools and structured output work,
`make demo PORT=...` picks the port, a busy port is one clear line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.support.config import REPO
from tests.support.processes import free_port


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "LLMPP_STATE_DIR": str(tmp_path_factory.mktemp("demo"))}
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "demo", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(root + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the demo did not become ready"
        time.sleep(0.1)
    yield root
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)


class City(BaseModel):
    name: str
    population: int
    tags: list[str]


def test_both_sdks_and_structured_outputs_against_the_demo(demo: str) -> None:
    claude = anthropic.Anthropic(base_url=demo, api_key="demo-key-research", max_retries=0)
    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=100,
                                messages=[{"role": "user", "content": "Hi there"}]) as stream:
        assert "".join(stream.text_stream).endswith("You said: Hi there")
    client = openai.OpenAI(base_url=demo + "/v1", api_key="demo-key-payments", max_retries=0)
    parsed = client.chat.completions.parse(model="demo-model", response_format=City,
                                           messages=[{"role": "user", "content": "Describe Paris"}])
    city = parsed.choices[0].message.parsed
    assert city is not None and city.name == "Paris" and isinstance(city.population, int)
    parsed_claude = claude.messages.parse(model="claude-sonnet-4-5", max_tokens=200, output_format=City,
                                          messages=[{"role": "user", "content": "Describe Paris"}])
    assert parsed_claude.parsed_output is not None and parsed_claude.parsed_output.name == "Paris"


def test_demo_calls_tools_with_valid_arguments_and_honours_n_stop_logprobs(demo: str) -> None:
    client = openai.OpenAI(base_url=demo + "/v1", api_key="demo-key-payments", max_retries=0)
    tool = {"type": "function", "function": {"name": "lookup_order", "description": "Find an order by id",
                                             "parameters": City.model_json_schema()}}
    reply = client.chat.completions.create(model="demo-model", tools=[tool],  # type: ignore[list-item]
                                           messages=[{"role": "user", "content": "Find order for Berlin"}])
    call = (reply.choices[0].message.tool_calls or [])[0]
    City.model_validate(json.loads(call.function.arguments))  # type: ignore[union-attr]
    several = client.chat.completions.create(model="demo-model", n=3, stop=["You said"], logprobs=True,
                                             top_logprobs=2, messages=[{"role": "user", "content": "Hi"}])
    assert [c.index for c in several.choices] == [0, 1, 2]
    assert several.choices[0].message.content == "Hello from the demo model. "
    logprobs = several.choices[0].logprobs
    assert logprobs is not None and logprobs.content and len(logprobs.content[0].top_logprobs) == 2


def test_make_demo_passes_the_port() -> None:
    dry = subprocess.run(["make", "-n", "demo", "PORT=9000"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "demo --port 9000" in dry.stdout


def test_a_busy_port_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "proxy", "demo", "--port", str(port)], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == (f"llm-policy-proxy demo: port {port} on 127.0.0.1 is already in use; pick "
                                  "another with `make demo PORT=9000` or `llm-policy-proxy demo --port 9000`.")


def test_langchain_bind_tools_and_structured_output_against_the_demo(demo: str) -> None:
    from langchain_openai import ChatOpenAI

    class GetWeather(BaseModel):
        """Current weather for a city."""

        city: str

    for model, key in (("demo-model", "demo-key-payments"), ("claude-sonnet-4-5", "demo-key-research")):
        chat = ChatOpenAI(base_url=demo + "/v1", api_key=key, model=model, max_retries=0)  # type: ignore[arg-type]
        reply = chat.bind_tools([GetWeather]).invoke("What is the weather in Paris?")
        assert reply.tool_calls[0]["name"] == "GetWeather"  # type: ignore[attr-defined]
        assert GetWeather.model_validate(reply.tool_calls[0]["args"]).city == "Paris"  # type: ignore[attr-defined]
        city = chat.with_structured_output(City).invoke("Describe Paris")
        assert isinstance(city, City) and city.name == "Paris"

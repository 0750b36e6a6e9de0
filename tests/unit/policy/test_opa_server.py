"""OpaServer against OPA's REST API (the regorus-backed test server): failures stay within the timeout."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from proxy.policy.bundle import default_policy_dir
from proxy.policy.engine import EntryPoints
from proxy.policy.errors import PolicyEngineError
from proxy.policy.opa_server import OpaServer
from tests.support.opa_rest_server import RunningOpa, start_opa_server
from tests.unit.policy.conftest import make_input


@pytest.fixture
async def opa() -> AsyncIterator[RunningOpa]:
    server = await start_opa_server(default_policy_dir(), decision_ids=True)
    yield server
    await server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_revision_comes_from_provenance(opa: RunningOpa) -> None:
    client = await OpaServer(opa.url).start()
    assert client.revision == f"opa:{opa.url}"
    await client.evaluate(make_input())
    assert client.revision == opa.state.bundle.revision
    await client.close()


async def test_server_down_is_an_engine_error_quickly() -> None:
    client = await OpaServer(f"http://127.0.0.1:{free_port()}", timeout_s=0.5).start()
    started = time.monotonic()
    with pytest.raises(PolicyEngineError, match="unreachable"):
        await client.evaluate(make_input())
    assert time.monotonic() - started < 0.5
    await client.close()


async def test_slow_server_times_out_within_the_deadline(opa: RunningOpa) -> None:
    opa.state.delay_s = 2.0
    client = await OpaServer(opa.url, timeout_s=0.2).start()
    started = time.monotonic()
    with pytest.raises(PolicyEngineError, match=r"did not answer within 0\.2s"):
        await client.evaluate(make_input())
    assert time.monotonic() - started < 0.5
    await client.close()


async def test_undefined_result_is_an_engine_error(opa: RunningOpa) -> None:
    # OPA answers {} for an undefined document; the strict parser turns that into an error.
    client = await OpaServer(opa.url, entrypoints=EntryPoints(decision="data.llm.main.no_such_rule")).start()
    assert await client.query("data.llm.main.no_such_rule", {}) is None
    with pytest.raises(PolicyEngineError, match="undefined"):
        await client.evaluate(make_input())
    await client.close()


async def test_opa_error_json_is_kept_in_the_message(opa: RunningOpa) -> None:
    client = await OpaServer(opa.url).start()
    # A policy whose rule conflicts at evaluation time: OPA answers 500 with its error JSON.
    async with aiohttp.ClientSession() as session:
        body = 'package llm.main\n\nnote := "a" if input.version\n\nnote := "b" if input.version\n'
        async with session.put(f"{opa.url}/v1/policies/conflict", data=body) as response:
            assert response.status == 200
    with pytest.raises(PolicyEngineError, match=r"OPA answered 500 internal_error: .*conflict"):
        await client.query("data.llm.main.note", {"version": 1})
    await client.close()


async def test_rest_server_speaks_opa_data_api(opa: RunningOpa) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{opa.url}/v1/data/llm/main/decision", json={"input": make_input()}) as r:
            body = await r.json()
            assert r.status == 200
            assert body["result"]["allow"] is True
            assert "decision_id" in body
        async with session.post(f"{opa.url}/v1/data/llm/main/nothing", json={"input": {}}) as r:
            assert set(await r.json()) == {"decision_id"}
        async with session.post(f"{opa.url}/v1/data/llm/main/decision", data=b"{not json") as r:
            assert r.status == 400
            assert (await r.json())["code"] == "invalid_parameter"
        async with session.get(f"{opa.url}/v1/data/config/audit_only") as r:
            assert (await r.json())["result"] == []
        async with session.get(f"{opa.url}/health") as r:
            assert r.status == 200
        async with session.put(f"{opa.url}/v1/policies/bad", data="package x\n\ny if {\n") as r:
            assert r.status == 400


async def test_concurrent_decisions_share_one_session(opa: RunningOpa) -> None:
    client = await OpaServer(opa.url).start()
    decisions = await asyncio.gather(*(client.evaluate(make_input()) for _ in range(20)))
    assert all(d.allow for d in decisions)
    assert await client.healthy()
    await client.close()

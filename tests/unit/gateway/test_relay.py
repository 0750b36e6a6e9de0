"""proxy.gateway.relay's pure parts: which headers of a relayed answer reach the client, what a stream's tally counts,
and which rewriter a stream gets. The headers come from a real loopback answer."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from proxy.apis.anthropic import MESSAGES
from proxy.endpoints import CHAT, RESPONSES
from proxy.endpoints.base import EventRewriter, Json
from proxy.gateway.answer_transform import OutputRules
from proxy.gateway.relay import Tally, event_rewriter, relayed_headers
from proxy.pii import Scanner
from tests.support.servers import served

Answer = Callable[[list[tuple[str, str]]], Awaitable[aiohttp.ClientResponse]]


@pytest.fixture
async def answer() -> AsyncIterator[Answer]:
    """A loopback upstream answering with the headers each call asks for, and the client response to it."""
    wanted: list[list[tuple[str, str]]] = []

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=b"{}", headers=CIMultiDict(wanted.pop()))

    app = web.Application()
    app.router.add_get("/", handler)
    async with served(app) as base, aiohttp.ClientSession() as session:
        async def get(headers: list[tuple[str, str]]) -> aiohttp.ClientResponse:
            wanted.append(headers)
            response = await session.get(base + "/")
            await response.read()
            return response

        yield get


@pytest.mark.parametrize(("upstream", "own", "expected"), [
    # The provider's useful headers pass; cookies, banners and the rest stay behind the proxy.
    ([("Content-Type", "application/json"), ("openai-processing-ms", "12"), ("openai-version", "2020-10-01"),
      ("Set-Cookie", "s=1"), ("Server", "cloudflare"), ("openai-organization", "org-1")], {},
     {"content-type": "application/json", "openai-processing-ms": "12", "openai-version": "2020-10-01"}),
    ([("Retry-After", "3"), ("request-id", "req_anthropic")], {},
     {"retry-after": "3", "request-id": "req_anthropic"}),
    # The provider's request id is renamed, so the proxy's own x-request-id is the one the client sees.
    ([("X-Request-Id", "req_up")], {"x-request-id": "r-proxy"},
     {"x-upstream-request-id": "req_up", "x-request-id": "r-proxy"}),
    # The provider's limits as sent (lowercased); the proxy's own under a name of their own.
    ([("X-RateLimit-Remaining-Requests", "99"), ("anthropic-ratelimit-tokens-remaining", "5000")],
     {"x-ratelimit-remaining-requests": "4", "x-ratelimit-reset-tokens": "1s"},
     {"x-ratelimit-remaining-requests": "99", "anthropic-ratelimit-tokens-remaining": "5000",
      "x-llm-proxy-ratelimit-remaining-requests": "4", "x-llm-proxy-ratelimit-reset-tokens": "1s"}),
    # The policy's own headers go as they are.
    ([], {"x-policy-note": "downgraded"}, {"x-policy-note": "downgraded"}),
])
async def test_relayed_headers_keep_the_useful_ones_and_never_mix_the_two_limits(
        answer: Answer, upstream: list[tuple[str, str]], own: dict[str, str], expected: dict[str, str]) -> None:
    response = await answer(upstream)
    headers = relayed_headers(response, own)
    # aiohttp adds its own Content-Type and Content-Length: only the names this test chose are compared.
    chosen = {name.lower() for name, _ in upstream} | set(own) | set(expected)
    assert {k: v for k, v in headers.items() if k in chosen} == expected


@pytest.mark.parametrize(("spec", "events", "texts"), [
    (CHAT, [{"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
            {"choices": [{"index": 0, "delta": {"content": "lo"}}]}], ["Hel", "lo"]),
    (CHAT, [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}, {"choices": [], "usage": None}], []),
    # The finished text Responses repeats in its `.done` events is not counted twice.
    (RESPONSES, [{"type": "response.output_text.delta", "output_index": 0, "delta": "Hi"},
                 {"type": "response.output_text.done", "output_index": 0, "text": "Hi"}], ["Hi"]),
])
def test_the_tally_counts_the_text_of_kept_events(spec: object, events: list[Json], texts: list[str]) -> None:
    tally = Tally(texts=["earlier"], events=[orjson.dumps(event) for event in events])
    assert tally.output_texts(spec) == ["earlier", *texts]  # type: ignore[arg-type]


def test_the_tally_skips_events_that_are_not_json_objects() -> None:
    tally = Tally(events=[b"not json", b"[1, 2]", orjson.dumps({"choices": [{"index": 0, "delta": {"content": "x"}}]})])
    assert tally.output_texts(CHAT) == ["x"]


def test_a_stream_gets_its_endpoints_own_rewriter_else_the_choice_based_default() -> None:
    rules, tally = OutputRules(Scanner(), frozenset({"email"}), None), Tally()
    sentinel: EventRewriter = lambda document, name: [b"own"]  # noqa: E731
    spec = dataclasses.replace(CHAT, stream_rewriter=lambda got_rules, got_tally: sentinel
                               if (got_rules, got_tally) == (rules, tally) else None)  # type: ignore[arg-type,return-value]
    assert event_rewriter(spec, rules, tally) is sentinel
    assert MESSAGES.stream_rewriter is not None and CHAT.stream_rewriter is None
    chunk = {"choices": [{"index": 0, "delta": {"content": "mail me at ann@example.com please"}}]}
    sent = b"".join(event_rewriter(CHAT, rules, tally)(chunk, None))
    assert sent.startswith(b'data: {"choices":[{"index":0,"delta":{"content":"mail me at [EMAIL_1] ')

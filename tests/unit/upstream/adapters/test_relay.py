"""The translated relay's pure parts: reading the upstream's answer, emitting translated events, headers."""

from __future__ import annotations

import orjson
import pytest

from proxy.apis.anthropic import MESSAGES
from proxy.endpoints import CHAT
from proxy.endpoints.base import parse_call
from proxy.errors import UpstreamError
from proxy.gateway.relay import Tally
from proxy.upstream.adapters.relay import _emit, _event, _object, _without_type

CHAT_CALL = parse_call(CHAT, {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})
MESSAGES_CALL = parse_call(MESSAGES, {"model": "m", "max_tokens": 8, "stream": True,
                                      "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.parametrize(("data", "message"), [
    (b"not json", "returned a body that is not JSON."),
    (b"[1, 2]", "returned a body that is not a JSON object."),
    (b'"text"', "returned a body that is not a JSON object."),
    (b"", "returned a body that is not JSON."),
])
def test_an_answer_that_is_not_a_json_object_is_the_upstreams_error(data: bytes, message: str) -> None:
    with pytest.raises(UpstreamError) as raised:
        _object(data, "Upstream 'u' returned a body")
    assert str(raised.value).endswith(message)


def test_a_json_object_answer_is_read_as_is() -> None:
    assert _object(b'{"id": "x", "content": []}', "Upstream 'u' returned a body") == {"id": "x", "content": []}


@pytest.mark.parametrize("data", [b"[1]", b"3", b'"s"', b"null"])
def test_a_stream_event_that_is_not_an_object_breaks_the_stream_with_a_named_code(data: bytes) -> None:
    with pytest.raises(UpstreamError) as raised:
        _event(data, "u")
    assert raised.value.code == "upstream_bad_event"


def test_without_a_rewriter_an_event_is_tallied_and_encoded_under_its_name() -> None:
    tally = Tally()
    chunk = {"id": "c", "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]}
    assert _emit(CHAT_CALL, chunk, None, None, tally) == [b"data: " + orjson.dumps(chunk) + b"\n\n"]
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}}
    assert _emit(MESSAGES_CALL, delta, b"content_block_delta", None, tally) == [
        b"event: content_block_delta\ndata: " + orjson.dumps(delta) + b"\n\n"]
    assert tally.texts == ["Hello", " there"]  # what is counted if the stream ends without usage


def test_a_rewriter_when_there_is_one_decides_what_is_sent() -> None:
    seen: list[tuple[dict[str, object], bytes | None]] = []

    def rewrite(document: dict[str, object], name: bytes | None) -> list[bytes]:
        seen.append((document, name))
        return [b"rewritten"]

    tally = Tally()
    assert _emit(CHAT_CALL, {"choices": []}, None, rewrite, tally) == [b"rewritten"]
    assert seen == [({"choices": []}, None)] and tally.texts == []


@pytest.mark.parametrize(("headers", "kept"), [
    ({"Content-Type": "text/event-stream", "x-request-id": "r"}, {"x-request-id": "r"}),
    ({"content-type": "application/json", "retry-after": "2"}, {"retry-after": "2"}),
    ({}, {}),
])
def test_the_upstreams_content_type_never_reaches_a_caller_of_the_other_api(headers: dict[str, str],
                                                                             kept: dict[str, str]) -> None:
    assert _without_type(headers) == kept

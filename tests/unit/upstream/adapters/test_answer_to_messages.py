"""Chat completions answers as Messages answers: whole, and as a stream whose events follow the API's
grammar whatever the chunking, with text and tool arguments intact."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.errors import UpstreamError
from proxy.upstream.adapters.answer_to_messages import EventTranslator, to_message

Json = dict[str, Any]


def chunk(delta: Json, finish: str | None = None, **extra: Any) -> Json:
    return {"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def check_grammar(events: list[tuple[bytes | None, Json]]) -> None:
    """message_start, then blocks (start, deltas of that index, stop), then message_delta, message_stop;
    each event's `event:` name equals its type."""
    names = [name.decode() if name else None for name, _ in events]
    kinds = [event["type"] for _, event in events]
    assert names == kinds
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    open_index = None
    expected_index = 0
    for _, event in events[1:-2]:
        if event["type"] == "content_block_start":
            assert open_index is None and event["index"] == expected_index
            open_index = expected_index
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_index
        else:
            assert event["type"] == "content_block_stop" and event["index"] == open_index
            open_index, expected_index = None, expected_index + 1
    assert open_index is None


def test_whole_answer_with_text_tool_calls_usage_and_stop_reason() -> None:
    completion = {"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "content": "Let me look.", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get", "arguments": '{"q": 1}'}}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 10}}}
    assert to_message(completion) == {
        "id": "msg_c1", "type": "message", "role": "assistant", "model": "gpt-4o",
        "content": [{"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "get", "input": {"q": 1}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10,
                  "output_tokens": 9}}


def test_tool_arguments_that_are_not_json_are_an_upstream_error() -> None:
    completion = {"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}}]}
    with pytest.raises(UpstreamError):
        to_message(completion)


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=1, max_size=40), text_cuts=st.lists(st.integers(0, 40), max_size=5),
       arguments=st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=3),
       arg_cuts=st.lists(st.integers(0, 60), max_size=5), with_tool=st.booleans())
def test_any_chunking_gives_grammatical_events_with_text_and_arguments_intact(
        text: str, text_cuts: list[int], arguments: dict[str, str], arg_cuts: list[int], with_tool: bool) -> None:
    translator = EventTranslator({})
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in _split(text, text_cuts)]
    encoded = json.dumps(arguments)
    if with_tool:
        chunks.append(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                             "function": {"name": "f", "arguments": ""}}]}))
        chunks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                   for piece in _split(encoded, arg_cuts)]
    chunks.append(chunk({}, "tool_calls" if with_tool else "stop"))
    chunks.append({"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 6}})
    events = [e for c in chunks for e in translator.feed(None, c)] + translator.feed(None, None) + translator.finish()
    check_grammar(events)
    deltas = [e["delta"] for _, e in events if e["type"] == "content_block_delta"]
    assert "".join(d.get("text", "") for d in deltas) == text
    if with_tool:
        assert json.loads("".join(d.get("partial_json", "") for d in deltas)) == arguments
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == ("tool_use" if with_tool else "end_turn")
    assert final["usage"]["output_tokens"] == 6 and final["usage"]["input_tokens"] == 5


def test_a_stream_cut_before_its_finish_reason_is_an_error() -> None:
    translator = EventTranslator({})
    translator.feed(None, chunk({"content": "partial"}))
    with pytest.raises(UpstreamError):
        translator.finish()


def test_interleaved_tool_arguments_are_refused_rather_than_corrupted() -> None:
    translator = EventTranslator({})
    for index in (0, 1):
        translator.feed(None, chunk({"tool_calls": [{"index": index, "id": f"c{index}",
                                                     "function": {"name": "f", "arguments": ""}}]}))
    with pytest.raises(UpstreamError):
        translator.feed(None, chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))


def _split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]

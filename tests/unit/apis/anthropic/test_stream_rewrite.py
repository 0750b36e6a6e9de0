"""Messages stream rewriting: restore and redaction hold across any split of text_delta and
input_json_delta pieces, restored values stay valid JSON, and the held tail precedes content_block_stop."""

from __future__ import annotations

import itertools
import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.apis.anthropic.stream_rewrite import messages_rewriter
from proxy.gateway.answer_transform import OutputRules
from proxy.gateway.relay import Tally
from proxy.pii import Placeholders, Scanner, redact
from proxy.upstream.sse import SSEParser

SCANNER = Scanner()


def book(*values: tuple[str, str]) -> Placeholders:
    placeholders = Placeholders()
    for type_, value in values:
        placeholders.placeholder(type_, value)
    return placeholders


def run(events: list[dict[str, Any]], rules: OutputRules) -> list[dict[str, Any]]:
    rewrite = messages_rewriter(rules, Tally())
    raw = b"".join(piece for event in events for piece in rewrite(event, event["type"].encode()))
    parsed = list(SSEParser().feed(raw))
    assert all(event.name is not None for event in parsed), "every event keeps its event: line"
    return [orjson.loads(event.data) for event in parsed if event.data is not None]


def block_events(index: int, block: dict[str, Any], pieces: list[str]) -> list[dict[str, Any]]:
    kind = "text_delta" if block["type"] == "text" else "input_json_delta"
    key = "text" if block["type"] == "text" else "partial_json"
    return [{"type": "content_block_start", "index": index, "content_block": block},
            *[{"type": "content_block_delta", "index": index, "delta": {"type": kind, key: p}} for p in pieces],
            {"type": "content_block_stop", "index": index}]


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a] or [""]


def joined(events: list[dict[str, Any]], index: int, key: str) -> str:
    text = ""
    for event in events:
        if event["type"] == "content_block_delta" and event["index"] == index:
            text += event["delta"][key]
        if event["type"] == "content_block_stop" and event["index"] == index:
            return text
    raise AssertionError("the block never stopped")


VALUES = st.sampled_from(['ab"c\\d', "jane.doe@example.com", "4111 1111 1111 1111", "tab\tnew\nline", "ü€😀"])


@settings(max_examples=200, deadline=None)
@given(value=VALUES, cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8))
def test_tool_input_restored_across_any_split_is_valid_json(value: str, cuts: list[int]) -> None:
    placeholders = book(("secret", value))
    token = placeholders.placeholder("secret", value)
    arguments = json.dumps({"to": token, "note": f"again {token}!"})
    events = block_events(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}}, split(arguments, cuts))
    out = run(events, OutputRules(SCANNER, frozenset(), placeholders))
    assert json.loads(joined(out, 0, "partial_json")) == {"to": value, "note": f"again {value}!"}


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8))
def test_text_restored_and_new_pii_redacted_across_any_split(cuts: list[int]) -> None:
    placeholders = book(("card", "4111 1111 1111 1111"))
    text = "Card [CARD_1] and mail ops.team@example.org done"
    events = block_events(0, {"type": "text", "text": ""}, split(text, cuts))
    out = run(events, OutputRules(SCANNER, frozenset({"email"}), placeholders))
    expected = redact("Card 4111 1111 1111 1111 and mail ops.team@example.org done",
                      [m for m in SCANNER.find("Card 4111 1111 1111 1111 and mail ops.team@example.org done")
                       if m.type == "email"], {"email"}, Placeholders())
    assert joined(out, 0, "text") == expected


def test_held_tail_is_sent_before_the_block_stops_and_blocks_stay_apart() -> None:
    placeholders = book(("email", "a@example.com"))
    events = [*block_events(0, {"type": "text", "text": ""}, ["see [EMA"]),
              *block_events(1, {"type": "tool_use", "id": "t", "name": "n", "input": {}}, ['{"x": "[EMAIL_1', ']"}'])]
    out = run(events, OutputRules(SCANNER, frozenset(), placeholders))
    stop = next(i for i, e in enumerate(out) if e["type"] == "content_block_stop")
    # "[EMA" might have begun a placeholder: held until the block ends, then sent just before its stop.
    assert out[stop - 1] == {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "[EMA"}}
    assert joined(out, 0, "text") == "see [EMA"
    assert json.loads(joined(out, 1, "partial_json")) == {"x": "a@example.com"}


def test_thinking_and_signature_pass_untouched_and_other_events_too() -> None:
    placeholders = book(("email", "a@example.com"))
    events = [{"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 3}}},
              {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "[EMAIL_1]"}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}},
              {"type": "content_block_stop", "index": 0}, {"type": "ping"},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
              {"type": "message_stop"}]
    assert run(events, OutputRules(SCANNER, frozenset({"email"}), placeholders)) == events


def test_an_error_event_is_tallied() -> None:
    tally = Tally()
    messages_rewriter(OutputRules(SCANNER, frozenset({"email"}), None), tally)(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, b"error")
    assert tally.stream_error == "overloaded_error"

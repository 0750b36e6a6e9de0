"""The answer's obligations on whole answers and on streams: text, refusals and tool-call arguments alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.endpoints import CHAT, RESPONSES
from proxy.gateway.answer_transform import OutputRules, event_transformer, json_text
from proxy.pii import Placeholders, Scanner, redact

SCANNER = Scanner()
PHONE_A, PHONE_B = "+44 20 7946 0958", "+1 415 555 2671"
CARD = "4111 1111 1111 1111"


@dataclass
class Tally:
    response_pii: dict[str, int] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)


def rules(types: tuple[str, ...] = ("phone", "card", "email"), book: Placeholders | None = None) -> OutputRules:
    return OutputRules(SCANNER, frozenset(types), book)


def test_distinct_values_get_distinct_placeholders_across_fields() -> None:
    answer = {"choices": [{"index": 0, "logprobs": {"content": [{"token": "+44"}]}, "message": {
        "role": "assistant", "content": f"call {PHONE_A}",
        "tool_calls": [{"id": "c", "type": "function", "function": {
            "name": "dial", "arguments": orjson.dumps({"a": PHONE_A, "b": PHONE_B}).decode()}}]}}]}
    tally = Tally()
    assert rules().apply(CHAT, answer, tally)
    message = answer["choices"][0]["message"]
    assert message["content"] == "call [PHONE_1]"
    assert orjson.loads(message["tool_calls"][0]["function"]["arguments"]) == {"a": "[PHONE_1]", "b": "[PHONE_2]"}
    assert answer["choices"][0]["logprobs"] is None  # it would spell the number token by token
    assert tally.response_pii == {"phone": 3}


def test_restore_in_arguments_is_json_safe() -> None:
    book = Placeholders()
    assert redact("a@b.co", SCANNER.find("a@b.co"), {"email"}, book) == "[EMAIL_1]"
    book.placeholder("password", 'pa"ss\\word')
    arguments = orjson.dumps({"to": "[EMAIL_1]", "pw": "[PASSWORD_1]"}).decode()
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}}]}
    rules((), book).apply(CHAT, answer, Tally())
    restored = answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert orjson.loads(restored) == {"to": "a@b.co", "pw": 'pa"ss\\word'}


def test_an_answer_value_never_shares_a_placeholder_with_a_request_value() -> None:
    book = Placeholders()
    book.placeholder("phone", PHONE_A)
    output = rules(("phone",), book)
    assert output.whole(f"{PHONE_B} and {PHONE_A}", Tally()) == f"[PHONE_2] and {PHONE_A}"


def chunk(choice: dict[str, Any]) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "logprobs": None, **choice}]}


def run(transform: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        for raw in transform(event, None):
            out.append(orjson.loads(raw.split(b"data: ", 1)[1]))
    return out


def test_streamed_tool_call_arguments_split_across_deltas_are_redacted() -> None:
    arguments = orjson.dumps({"card": CARD, "note": "ok"}).decode()
    pieces = [arguments[i : i + 4] for i in range(0, len(arguments), 4)]
    events = [chunk({"delta": {"role": "assistant", "tool_calls": [
        {"index": 0, "id": "c", "type": "function", "function": {"name": "pay", "arguments": ""}}]}})]
    events += [chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}}) for p in pieces]
    events.append(chunk({"delta": {}, "finish_reason": "tool_calls"}))
    sent = run(event_transformer(CHAT, rules(), Tally()), events)
    text = "".join(c["function"]["arguments"] for e in sent for c in e["choices"][0]["delta"].get("tool_calls", ()))
    assert orjson.loads(text) == {"card": "[CARD_1]", "note": "ok"}
    assert "1111" not in str(sent)


def test_each_tool_call_is_its_own_stream() -> None:
    events = [chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": "+44 20 79'}},
                                              {"index": 1, "function": {"arguments": '{"b": "+1 415 5'}}]}}),
              chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '46 0958"}'}},
                                              {"index": 1, "function": {"arguments": '55 2671"}'}}]}}),
              chunk({"delta": {}, "finish_reason": "tool_calls"})]
    sent = run(event_transformer(CHAT, rules(), Tally()), events)
    calls: dict[int, str] = {}
    for event in sent:
        for call in event["choices"][0]["delta"].get("tool_calls", ()):
            calls[call["index"]] = calls.get(call["index"], "") + call["function"]["arguments"]
    assert {i: orjson.loads(v) for i, v in calls.items()} == {0: {"a": "[PHONE_1]"}, 1: {"b": "[PHONE_2]"}}


def test_held_text_and_logprobs_of_a_changed_delta() -> None:
    events = [chunk({"delta": {"content": "card 4111 "}, "logprobs": {"content": [{"token": "4111"}]}}),
              chunk({"delta": {"content": "1111 1111 1111 ok"}}), chunk({"delta": {}, "finish_reason": "stop"})]
    sent = run(event_transformer(CHAT, rules(), Tally()), events)
    assert sent[0]["choices"][0]["logprobs"] is None
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in sent) == "card [CARD_1] ok"


def test_responses_function_call_arguments_and_item_done_are_redacted_alike() -> None:
    arguments = orjson.dumps({"to": "jane.doe@example.org"}).decode()
    events: list[dict[str, Any]] = [
        {"type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "f", "delta": arguments[:12]},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "f", "delta": arguments[12:]},
        {"type": "response.function_call_arguments.done", "output_index": 0, "item_id": "f", "arguments": arguments},
        {"type": "response.output_item.done", "output_index": 0, "item": {
            "type": "function_call", "id": "f", "call_id": "c", "name": "mail", "arguments": arguments}},
        {"type": "response.completed", "response": {"output": [{
            "type": "function_call", "id": "f", "call_id": "c", "name": "mail", "arguments": arguments}]}},
    ]
    sent = run(event_transformer(RESPONSES, rules(), Tally()), events)
    deltas = "".join(e["delta"] for e in sent if e["type"].endswith(".delta"))
    assert orjson.loads(deltas) == {"to": "[EMAIL_1]"}
    assert [orjson.loads(e["arguments"]) for e in sent if e["type"].endswith("arguments.done")] == [{"to": "[EMAIL_1]"}]
    assert orjson.loads(sent[-2]["item"]["arguments"]) == orjson.loads(sent[-1]["response"]["output"][0]["arguments"])
    assert "jane" not in str(sent)


def test_json_text_paths() -> None:
    assert json_text("choices[0].tool_calls[1]") and json_text("output[1].arguments.done")
    assert not json_text("choices[0]") and not json_text(None)

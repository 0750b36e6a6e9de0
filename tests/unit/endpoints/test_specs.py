"""Every endpoint spec, table by table: what it parses, where its text and usage live (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.apis.anthropic import MESSAGES
from proxy.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES
from proxy.endpoints.base import Usage, parse_call
from proxy.errors import BadRequest

HI = [{"role": "user", "content": "hi there"}]
SPECS = {"chat": CHAT, "completions": COMPLETIONS, "responses": RESPONSES, "embeddings": EMBEDDINGS,
         "messages": MESSAGES}
# A minimal valid body per endpoint, with its prompt text "hi there".
BODIES: dict[str, dict[str, Any]] = {
    "chat": {"model": "m", "messages": HI},
    "completions": {"model": "m", "prompt": "hi there"},
    "responses": {"model": "m", "input": "hi there"},
    "embeddings": {"model": "m", "input": "hi there"},
    "messages": {"model": "m", "messages": HI, "max_tokens": 16},
}


@pytest.mark.parametrize(("name", "route", "api", "streams"), [
    ("chat", "/v1/chat/completions", "openai", True),
    ("completions", "/v1/completions", "openai", True),
    ("responses", "/v1/responses", "openai", True),
    ("embeddings", "/v1/embeddings", "openai", False),
    ("messages", "/v1/messages", "anthropic", True),
])
def test_each_spec_names_its_route_api_and_whether_it_streams(name: str, route: str, api: str,
                                                              streams: bool) -> None:
    spec = SPECS[name]
    assert (spec.route, spec.api, spec.streams) == (route, api, streams)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_prompt_text_is_found_where_the_endpoint_keeps_it(name: str) -> None:
    call = parse_call(SPECS[name], BODIES[name])
    assert [text for _, text, _, _ in call.endpoint.texts(call.body)] == ["hi there"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_text_slots_write_back_into_the_body(name: str) -> None:
    spec, body = SPECS[name], {**BODIES[name]}
    body = {k: (v if not isinstance(v, list) else [dict(m) for m in v]) for k, v in body.items()}
    for _, _, slot, key in list(spec.texts(body)):
        slot[key] = "[redacted]"  # type: ignore[index]
    assert [text for _, text, _, _ in spec.texts(body)] == ["[redacted]"]


@pytest.mark.parametrize(("name", "body", "max_output"), [
    ("chat", {"max_completion_tokens": 7}, 7),
    ("chat", {"max_tokens": 9}, 9),
    ("chat", {}, None),
    ("completions", {"max_tokens": 5}, 5),
    ("responses", {"max_output_tokens": 11}, 11),
    ("messages", {"max_tokens": 16}, 16),
    ("embeddings", {}, None),
])
def test_the_requested_output_limit_is_read_from_the_endpoints_own_key(name: str, body: dict[str, Any],
                                                                       max_output: int | None) -> None:
    assert parse_call(SPECS[name], {**BODIES[name], **body}).max_output_tokens == max_output


@pytest.mark.parametrize(("name", "body", "param"), [
    ("chat", {"max_tokens": 0}, "max_tokens"),
    ("chat", {"max_tokens": True}, "max_tokens"),
    ("chat", {"stream": "yes"}, "stream"),
    ("embeddings", {"stream": True}, "stream"),
    ("chat", {"model": ""}, "model"),
    ("responses", {"model": 4}, "model"),
])
def test_bad_fields_are_a_400_naming_the_parameter(name: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_call(SPECS[name], {**BODIES[name], **body})
    assert raised.value.param == param


@pytest.mark.parametrize(("name", "body", "user"), [
    ("chat", {"user": "u-1"}, "u-1"),
    ("responses", {"user": "u-2"}, "u-2"),
    ("messages", {"metadata": {"user_id": "u-3"}}, "u-3"),
    ("chat", {}, None),
])
def test_the_end_user_is_read_where_the_api_puts_it(name: str, body: dict[str, Any], user: str | None) -> None:
    assert parse_call(SPECS[name], {**BODIES[name], **body}).user == user


@pytest.mark.parametrize(("name", "answer", "usage"), [
    ("chat", {"usage": {"prompt_tokens": 3, "completion_tokens": 4,
                        "prompt_tokens_details": {"cached_tokens": 1}}}, Usage(3, 4, 1)),
    ("completions", {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}, Usage(3, 4, 0)),
    ("responses", {"usage": {"input_tokens": 5, "output_tokens": 6,
                             "input_tokens_details": {"cached_tokens": 2}}}, Usage(5, 6, 2)),
    ("embeddings", {"usage": {"prompt_tokens": 8, "total_tokens": 8}}, Usage(8, 0, 0)),
    ("chat", {}, None),
])
def test_usage_is_read_where_each_endpoint_reports_it(name: str, answer: dict[str, Any],
                                                      usage: Usage | None) -> None:
    assert SPECS[name].usage(answer) == usage


@pytest.mark.parametrize(("name", "extra", "counts"), [
    ("chat", {}, (1, ())),
    ("chat", {"messages": [*HI, {"role": "assistant", "content": "yes"}]}, (2, ())),
    ("responses", {}, (1, ())),
])
def test_counts_are_messages_and_tool_names(name: str, extra: dict[str, Any],
                                            counts: tuple[int, tuple[str, ...]]) -> None:
    assert SPECS[name].counts({**BODIES[name], **extra}) == counts


def test_tool_names_are_listed_for_the_policy() -> None:
    body = {**BODIES["chat"], "tools": [{"type": "function", "function": {"name": "search"}}]}
    assert parse_call(CHAT, body).tool_names == ("search",)


@pytest.mark.parametrize(("name", "event", "usage"), [
    # chat and completions: the last chunk carries it when the caller asked (stream_options.include_usage).
    ("chat", {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}, Usage(3, 4, 0)),
    ("chat", {"choices": [{"index": 0, "delta": {"content": "hi"}}]}, None),
    ("chat", {"choices": [], "usage": None}, None),
    ("completions", {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": True}}, Usage(2, 0, 0)),
    # responses: only the terminal events carry the response and its usage.
    ("responses", {"type": "response.completed", "response": {"usage": {"input_tokens": 5, "output_tokens": 6}}},
     Usage(5, 6, 0)),
    ("responses", {"type": "response.incomplete", "response": {"usage": {"input_tokens": 5, "output_tokens": 1}}},
     Usage(5, 1, 0)),
    ("responses", {"type": "response.failed", "response": {"usage": {"input_tokens": 5, "output_tokens": 0}}},
     Usage(5, 0, 0)),
    ("responses", {"type": "response.in_progress", "response": {"usage": {"input_tokens": 5}}}, None),
    ("responses", {"type": "response.completed", "response": "done"}, None),
    ("messages", {"type": "message_delta", "usage": {"output_tokens": 9}}, Usage(0, 9, 0)),
])
def test_stream_usage_is_read_from_the_event_that_reports_it(name: str, event: dict[str, Any],
                                                             usage: Usage | None) -> None:
    assert SPECS[name].stream_usage(event) == usage


@pytest.mark.parametrize(("name", "opt_in"), [
    ("chat", True), ("completions", True), ("responses", False), ("embeddings", False), ("messages", False)])
def test_only_chat_and_completions_report_stream_usage_on_request(name: str, opt_in: bool) -> None:
    assert SPECS[name].usage_opt_in is opt_in


@pytest.mark.parametrize(("first", "later", "merged"), [
    (Usage(10, 1, 2, 3), Usage(0, 40, 0, 0), Usage(10, 40, 2, 3)),  # message_start, then message_delta
    (Usage(10, 50), Usage(10, 40), Usage(10, 50)),  # cumulative counts: a smaller repeat never lowers one
    (Usage(), Usage(1, 2, 3, 4), Usage(1, 2, 3, 4)),
])
def test_usage_reported_twice_keeps_the_larger_count_of_each(first: Usage, later: Usage, merged: Usage) -> None:
    assert first.merged(later) == merged

"""Which fields each endpoint's scan reads: every string a model or provider sees, and none that steers."""

from __future__ import annotations

from typing import Any

from proxy.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES

CHAT_BODY: dict[str, Any] = {
    "model": "gpt-4o", "user": "u@example.com", "metadata": {"customer": "c1", "4111 1111 1111 1111": "x"},
    "messages": [
        {"role": "system", "content": "be brief", "name": "ops_bot"},
        {"role": "user", "content": [{"type": "text", "text": "part one"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                                     {"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}},
                                     {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}],
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "send", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sent"},
    ],
    "tools": [{"type": "function", "function": {"name": "send", "description": "sends mail",
                                                "parameters": {"type": "object", "properties": {
                                                    "to": {"type": "string", "description": "address",
                                                           "enum": ["a@b.co"]}}}}}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"description": "out"}}},
    "prediction": {"type": "content", "content": "predicted"},
}


def paths(spec: Any, body: dict[str, Any]) -> dict[str, str]:
    return {path: text for path, text, _, _ in spec.texts(body)}


def test_chat_scans_every_field_the_model_or_provider_sees() -> None:
    found = paths(CHAT, CHAT_BODY)
    assert found == {
        "user": "u@example.com", "metadata.customer": "c1", "metadata.#1": "x",
        "messages[0].content": "be brief", "messages[0].name": "ops_bot",
        "messages[1].content[0].text": "part one",
        "messages[1].content[2].image_url.url": "data:text/plain;base64,aGk=",
        "messages[2].content[0].refusal": "no", "messages[2].tool_calls[0].function.name": "send",
        "messages[2].tool_calls[0].function.arguments": "{}", "messages[3].content": "sent",
        "tools[0].function.name": "send", "tools[0].function.description": "sends mail",
        "tools[0].function.parameters.properties.to.description": "address",
        "tools[0].function.parameters.properties.to.enum[0]": "a@b.co",
        "response_format.json_schema.name": "r", "response_format.json_schema.schema.description": "out",
        "prediction.content": "predicted",
    }


def test_a_path_never_carries_a_key_the_caller_chose() -> None:
    assert not any("4111" in path for path in paths(CHAT, CHAT_BODY))


def test_slots_write_back_where_they_were_read() -> None:
    body: dict[str, Any] = {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}],
                            "instructions": "y"}
    for _, text, slot, key in list(RESPONSES.texts(body)):
        slot[key] = text.upper()
    assert body == {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "X"}],
                    "instructions": "Y"}


def test_responses_input_items_of_every_type() -> None:
    body = {"model": "m", "instructions": "sys", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"},
                                                        {"type": "input_file", "filename": "a.txt",
                                                         "file_data": "data:text/plain;base64,aGk="}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\"a\": 1}"},
        {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": "thought"}]},
        {"type": "local_shell_call", "action": {"type": "exec", "command": ["ls", "/home/jane"]}},
        {"type": "mcp_call", "server_label": "s", "arguments": "{}", "output": "done"},
    ]}
    assert set(paths(RESPONSES, body).values()) == {"sys", "hi", "a.txt", "data:text/plain;base64,aGk=", "f",
                                                     "{\"a\": 1}", "thought", "ls", "/home/jane", "s", "{}", "done"}


def test_completions_and_embeddings_read_prompts_suffix_and_user() -> None:
    assert set(paths(COMPLETIONS, {"model": "m", "prompt": ["a", "b"], "suffix": "c", "user": "d"}).values()) == \
        {"a", "b", "c", "d"}
    assert paths(EMBEDDINGS, {"model": "m", "input": [[1, 2], [3]], "user": "u"}) == {"user": "u"}


def test_a_deeply_nested_value_is_reached() -> None:
    body: dict[str, Any] = {"model": "m", "metadata": {}}
    node = body["metadata"]
    for _ in range(5000):
        node["n"] = {}
        node = node["n"]
    node["v"] = "deep"
    assert list(paths(CHAT, body).values()) == ["deep"]


def test_answer_fields_include_tool_arguments_and_refusals() -> None:
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "c", "refusal": "r",
                                                   "tool_calls": [{"id": "i", "type": "function",
                                                                   "function": {"name": "n", "arguments": "a"}}]}}]}
    assert {p: t for p, t, _, _ in CHAT.output_texts(answer)} == {
        "choices[0].message.content": "c", "choices[0].message.refusal": "r",
        "choices[0].message.tool_calls[0].function.arguments": "a"}


def test_streamed_tool_call_arguments_are_one_stream_per_call() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 1, "function": {"arguments": "{\"to\": "}}, {"index": 2, "function": {"arguments": "x"}}]}}]}
    assert [p for p, _, _, _ in CHAT.stream_texts(chunk)] == ["choices[0].tool_calls[1]", "choices[0].tool_calls[2]"]


def test_responses_stream_events_map_to_the_output_they_build() -> None:
    events = [
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{"},
        {"type": "response.function_call_arguments.done", "output_index": 1, "arguments": "{}"},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "hi"},
        {"type": "response.refusal.done", "output_index": 0, "content_index": 1, "refusal": "no"},
        {"type": "response.output_item.done", "output_index": 1,
         "item": {"type": "function_call", "name": "f", "call_id": "c", "arguments": "{}"}},
    ]
    assert [p for e in events for p, _, _, _ in RESPONSES.stream_texts(e)] == [
        "output[1].arguments", "output[1].arguments.done", "output[0].content[0].text",
        "output[0].content[1].refusal.done", "output[1].arguments.done"]

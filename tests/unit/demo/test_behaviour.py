"""The demo model's decisions: which tool, when to stop, what stop sequences and max_tokens do."""

from __future__ import annotations

from proxy.demo.behaviour import Ask, Tool, answer, logprob_entry

WEATHER = Tool("get_weather", "Current weather for a city", {"type": "object", "properties": {
    "city": {"type": "string"}}, "required": ["city"]})
ORDERS = Tool("find_order", "Look up an order by number", {"type": "object", "properties": {
    "number": {"type": "integer"}}})


def test_the_best_matching_tool_is_called_with_valid_arguments() -> None:
    result = answer(Ask("What is the weather in Paris?", tools=(ORDERS, WEATHER)), "text")
    assert result.tool == WEATHER and result.arguments == {"city": "Paris"} and result.stop == "tool"
    assert answer(Ask("where is my order", tools=(WEATHER, ORDERS)), "text").tool == ORDERS


def test_after_a_tool_result_it_answers_unless_a_call_is_forced() -> None:
    assert answer(Ask("weather?", tool_result="18 C", tools=(WEATHER,)), "x").text == "The tool returned: 18 C"
    assert answer(Ask("weather?", tool_result="18 C", tools=(WEATHER,), tool_choice="get_weather"), "x").tool == WEATHER
    assert answer(Ask("weather?", tools=(WEATHER,), tool_choice="none"), "plain").text == "plain"


def test_stop_sequences_and_max_tokens_cut_the_answer() -> None:
    stopped = answer(Ask("hi", stops=("three", "two")), "one two three four")
    assert (stopped.text, stopped.stop, stopped.stop_sequence) == ("one ", "stop_sequence", "two")
    capped = answer(Ask("hi", max_tokens=2), "one two three four")
    assert (capped.text, capped.stop) == ("one two", "max_tokens")


def test_json_modes() -> None:
    assert answer(Ask("x", schema={"type": "object", "properties": {"n": {"type": "integer"}}}), "t").text == '{"n":1}'
    assert answer(Ask("x", json_object=True), "hello").text == '{"reply":"hello"}'


def test_logprobs_have_the_requested_alternatives() -> None:
    entry = logprob_entry(" word", 3)
    assert entry["token"] == " word" and len(entry["top_logprobs"]) == 3
    assert entry["top_logprobs"][0]["logprob"] == entry["logprob"] >= entry["top_logprobs"][1]["logprob"]

from __future__ import annotations

from proxy.tokens.tools import TOOL_OVERHEADS, function_definitions, tools_tokens

O200K = TOOL_OVERHEADS["o200k_base"]


def count_chars(text: str) -> int:
    """A stand-in tokenizer: one token per character keeps expected values readable."""
    return len(text)


def test_definitions_are_found_in_chat_responses_and_custom_shapes() -> None:
    tools = [
        {"type": "function", "function": {"name": "a"}},
        {"type": "function", "name": "b", "parameters": {}},
        {"type": "custom", "custom": {"name": "c", "description": "free text"}},
        {"type": "web_search_preview"},
        "junk",
    ]

    assert [d["name"] for d in function_definitions(tools)] == ["a", "b", "c"]


def test_no_functions_costs_nothing() -> None:
    assert tools_tokens(count_chars, O200K, []) == 0


def test_function_follows_the_cookbook_rule() -> None:
    function = {
        "name": "f",
        "description": "Does it.",
        "parameters": {"type": "object", "properties": {"x": {"type": "string", "description": "An x."}}},
    }

    expected = (
        O200K.func_init + len("f:Does it") + O200K.prop_init + O200K.prop_key + len("x:string:An x") + O200K.func_end
    )
    assert tools_tokens(count_chars, O200K, [function]) == expected


def test_enum_items_cost_their_text_plus_a_constant() -> None:
    plain = {"name": "f", "parameters": {"properties": {"u": {"type": "string"}}}}
    with_enum = {"name": "f", "parameters": {"properties": {"u": {"type": "string", "enum": ["c", "ff"]}}}}

    extra = tools_tokens(count_chars, O200K, [with_enum]) - tools_tokens(count_chars, O200K, [plain])

    assert extra == O200K.enum_init + 2 * O200K.enum_item + len("c") + len("ff")


def test_nested_object_properties_are_counted() -> None:
    flat = {"name": "f", "parameters": {"properties": {"p": {"type": "object"}}}}
    nested = {
        "name": "f",
        "parameters": {"properties": {"p": {"type": "object", "properties": {"q": {"type": "integer"}}}}},
    }

    extra = tools_tokens(count_chars, O200K, [nested]) - tools_tokens(count_chars, O200K, [flat])

    assert extra == O200K.prop_init + O200K.prop_key + len("q:integer:")


def test_hostile_nesting_depth_is_bounded() -> None:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(5000):
        schema = {"type": "object", "properties": {"k": schema}}

    assert tools_tokens(count_chars, O200K, [{"name": "f", "parameters": schema}]) > 0

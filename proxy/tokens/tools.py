"""Tokens of tool/function definitions, by the cookbook's `num_tokens_for_tools` rules.

The cookbook counts `name:description` per function and `key:type:description` per top-level
property, plus fixed constants that differ between o200k models (gpt-4o) and cl100k ones (gpt-4).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.tokens.overheads import Count

# Deeply nested schemas are rare; the bound keeps a hostile body from exhausting the stack.
_MAX_DEPTH = 8


@dataclass(frozen=True)
class ToolOverheads:
    func_init: int
    prop_init: int
    prop_key: int
    enum_init: int
    enum_item: int
    func_end: int


TOOL_OVERHEADS: Mapping[str, ToolOverheads] = {
    "o200k_base": ToolOverheads(func_init=7, prop_init=3, prop_key=3, enum_init=-3, enum_item=3, func_end=12),
    "cl100k_base": ToolOverheads(func_init=10, prop_init=3, prop_key=3, enum_init=-3, enum_item=3, func_end=12),
}


def function_definitions(tools: object) -> Iterator[Mapping[str, Any]]:
    """The function definitions in a `tools` or legacy `functions` list, in any of OpenAI's shapes.

    Chat nests them (`{"type": "function", "function": {...}}`), the Responses API does not
    (`{"type": "function", "name": ...}`), and custom tools nest under "custom". Built-in tools
    (web_search, file_search, ...) have no published cost and are skipped.
    """
    if not isinstance(tools, list):
        return
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        for key in ("function", "custom"):
            nested = tool.get(key)
            if isinstance(nested, Mapping):
                yield nested
                break
        else:
            if isinstance(tool.get("name"), str):
                yield tool


def tools_tokens(count: Count, overheads: ToolOverheads, functions: Iterable[Mapping[str, Any]]) -> int:
    listed = list(functions)
    if not listed:
        return 0
    total = overheads.func_end
    for function in listed:
        total += overheads.func_init
        total += count(f"{_text(function.get('name'))}:{_strip_period(function.get('description'))}")
        parameters = function.get("parameters")
        if isinstance(parameters, Mapping):
            total += _properties_tokens(count, overheads, parameters.get("properties"), 0)
    return total


def _properties_tokens(count: Count, overheads: ToolOverheads, properties: object, depth: int) -> int:
    if not isinstance(properties, Mapping) or not properties or depth >= _MAX_DEPTH:
        return 0
    total = overheads.prop_init
    for key, prop in properties.items():
        total += overheads.prop_key
        if not isinstance(prop, Mapping):
            total += count(str(key))
            continue
        enum = prop.get("enum")
        if isinstance(enum, list):
            total += overheads.enum_init
            for item in enum:
                total += overheads.enum_item + count(str(item))
        total += count(f"{key}:{_text(prop.get('type'))}:{_strip_period(prop.get('description'))}")
        # Beyond the cookbook, which stops at the top level: nested objects and arrays of objects
        # are counted with the same rule so large schemas are not estimated as nearly free.
        total += _properties_tokens(count, overheads, prop.get("properties"), depth + 1)
        items = prop.get("items")
        if isinstance(items, Mapping):
            total += _properties_tokens(count, overheads, items.get("properties"), depth + 1)
    return total


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "|".join(str(item) for item in value)
    return str(value)


def _strip_period(value: object) -> str:
    text = _text(value)
    return text[:-1] if text.endswith(".") else text

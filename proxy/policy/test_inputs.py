"""The inputs a policy folder's own tests give its rules: every `with input as X` in a `*_test.rego`
becomes `with input as llmpp_test_input("file:line", X)`, the tests run, and the function keeps what
it was handed. Runs wherever policy code may run (the evaluator process), since tests are policy code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.policy.rego import Modules, build_engine
from proxy.policy.rego_ast import discover_tests, input_overrides

RECORDER = "llmpp_test_input"
MAX_INPUTS = 1000
_WITH_INPUT = re.compile(rb"with\s+input\s+as\s+")


def capture(modules: Modules, tests: Modules, data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(file:line, input) for each distinct input the tests evaluate a rule with; raises
    PolicyCompileError when a test module does not parse."""
    parsed = json.loads(build_engine(tests, {}).get_ast_as_json())
    sources = {path: source for path, source in tests}
    instrumented = [(m["source"]["file"], instrument(m["source"]["file"], sources[m["source"]["file"]],
                                                     list(input_overrides(m["ast"])))) for m in parsed]
    seen: dict[bytes, tuple[str, Any]] = {}

    def record(location: str, value: Any) -> Any:
        plain = _plain(value)
        key = orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
        if len(seen) < MAX_INPUTS:
            seen.setdefault(key, (location, plain))
        return value

    engine = build_engine([*modules, *instrumented], data)
    engine.add_extension(RECORDER, 2, record)
    for case in discover_tests(json.loads(engine.get_ast_as_json())):
        try:
            engine.eval_rule_as_json(case.rule)
        except RuntimeError:
            continue  # a failing test still showed its input; `policy test` reports the failure
    return list(seen.values())


def instrument(path: str, source: str, spans: list[dict[str, Any]]) -> str:
    """`source` with each `with input as X` (byte spans, as regorus reports them) wrapped for recording."""
    text = source.encode()
    for span in sorted(spans, key=lambda s: s["start"], reverse=True):
        modifier = text[span["start"]:span["end"]]
        head = _WITH_INPUT.match(modifier)
        if head is None:
            continue
        location = orjson.dumps(f"{path}:{span['line']}")
        wrapped = b"with input as " + RECORDER.encode() + b"(" + location + b", " + modifier[head.end():] + b")"
        text = text[:span["start"]] + wrapped + text[span["end"]:]
    return text.decode()


def _plain(value: Any) -> Any:
    # Rego sets arrive as Python sets: give them OPA's JSON form, a sorted array.
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

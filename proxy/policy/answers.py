"""An engine's answer as the proxy reads it: JSON text, or UNDEFINED when no rule gave a value.

Apart from proxy/policy/rego.py so that the serving process, which only reads the evaluator process's
answers, never imports regorus (~7 MB of RSS per worker); and light, because the evaluator imports it.
"""

from __future__ import annotations

from typing import Any

import orjson

# What regorus answers (as JSON) for an undefined rule.
UNDEFINED = '"<undefined>"'


def loads(raw: str) -> Any:
    return None if raw == UNDEFINED else orjson.loads(raw)

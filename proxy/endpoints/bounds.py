"""Request values bounded before anything is estimated or decided, and the worst case a budget holds.

Integer parameters are checked against sane ranges (a JSON number past 64 bits arrives as a float, a
`true` as an int: both are wrong), bodies nested deeper than any real request are refused before a
recursive walker (token counting, the policy engine, an upstream) meets them, and the end user's id must
be usable as a budget scope name. Each is a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import BadRequest

# OpenAI's own limit on `n`; Anthropic returns one completion per request.
MAX_CHOICES: Final = 128
# Past any model's output or window; keeps n x max_tokens x price far inside 64-bit micro-dollars.
MAX_TOKENS: Final = 2**31 - 1
MAX_SIGNED_64: Final = 2**63 - 1
# JSON schemas in tools nest a few levels (OpenAI allows 10 for structured outputs); 64 is no real request,
# and far below what exhausts a recursive walker's stack.
MAX_DEPTH: Final = 64
MAX_USER_CHARS: Final = 256
# Characters that separate fields in budget store keys or act as glob patterns in admin resets.
_SCOPE_UNSAFE: Final = frozenset(" |*?[]\\")
# A tuple, not `dict | list`: isinstance with a union costs three times as much in this hot loop.
_CONTAINERS: Final = (dict, list)

# (parameter, lowest, highest) for integer parameters anywhere an endpoint accepts them.
IntRange = tuple[str, int, int]
CHOICES: Final[IntRange] = ("n", 1, MAX_CHOICES)
SEED: Final[IntRange] = ("seed", -MAX_SIGNED_64 - 1, MAX_SIGNED_64)


def tokens(key: str) -> IntRange:
    return key, 1, MAX_TOKENS


def integer(body: dict[str, Any], bounds: IntRange) -> int | None:
    key, low, high = bounds
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and abs(value) > MAX_SIGNED_64:
        # orjson reads an integer past 64 bits as a float: say what was wrong with it, not its type.
        raise BadRequest(f"Invalid '{key}': integer {'above maximum' if value > 0 else 'below minimum'} value "
                         f"{high if value > 0 else low}.", param=key,
                         code="integer_above_max_value" if value > 0 else "integer_below_min_value")
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"Invalid type for '{key}': expected an integer.", param=key, code="invalid_type")
    if value < low:
        raise BadRequest(f"Invalid '{key}': integer below minimum value {low}.", param=key,
                         code="integer_below_min_value")
    if value > high:
        raise BadRequest(f"Invalid '{key}': integer above maximum value {high}.", param=key,
                         code="integer_above_max_value")
    return value


def check_depth(body: dict[str, Any]) -> None:
    """Refuses a body nested deeper than MAX_DEPTH, naming the top-level parameter (walked level by level,
    without recursion: no stack to exhaust, one depth count per level; ~7 us for a 2.4 KB chat body)."""
    for key, value in body.items():
        level = [value] if isinstance(value, _CONTAINERS) else []
        depth = 2  # the body itself is level 1
        while level:
            if depth > MAX_DEPTH:
                raise BadRequest(f"Invalid '{key}': nested more than {MAX_DEPTH} levels deep.", param=key,
                                 code="invalid_value")
            below: list[Any] = []
            for node in level:
                for child in node.values() if type(node) is dict else node:
                    if isinstance(child, _CONTAINERS):
                        below.append(child)
            level, depth = below, depth + 1


def check_end_user(user: str | None, param: str) -> str | None:
    """The end user's id becomes a budget scope (`user:<id>`): bounded, printable, no key separators."""
    if user is None:
        return None
    if len(user) > MAX_USER_CHARS or any(c in _SCOPE_UNSAFE or not c.isprintable() for c in user):
        raise BadRequest(f"Invalid '{param}': an end-user id is at most {MAX_USER_CHARS} printable characters "
                         "without spaces or any of | * ? [ ] \\.", param=param, code="invalid_value")
    return user


def check_context(api: str, prompt_tokens: int, context_window: int) -> None:
    """A prompt the model cannot read is the caller's error (400 context_length_exceeded, the code SDKs and
    routers fall back on), decided here once rather than as a policy denial."""
    if prompt_tokens <= context_window:
        return
    if api == "anthropic":
        message = f"prompt is too long: about {prompt_tokens} tokens > {context_window} maximum"
    else:
        message = (f"This model's maximum context length is {context_window} tokens. However, your messages "
                   f"resulted in about {prompt_tokens} tokens. Please reduce the length of the messages.")
    raise BadRequest(message, param="messages", code="context_length_exceeded")

"""Tokens of a plain `prompt` (legacy completions) or `input` (embeddings): no chat overheads.

Both accept a string, a list of strings, a token array, or a list of token arrays.
"""

from __future__ import annotations

from proxy.tokens.overheads import Count


def prompt_tokens(count: Count, prompt: object) -> int:
    if isinstance(prompt, str):
        return count(prompt)
    if not isinstance(prompt, list):
        return 0
    total = 0
    for item in prompt:
        if isinstance(item, str):
            total += count(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += 1  # one element of a single token array
        elif isinstance(item, list):
            total += len(item)  # a token array is already tokens
    return total

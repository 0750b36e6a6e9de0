"""The fixed costs of OpenAI's chat format, from the cookbook "How to count tokens with tiktoken".

Every current model (gpt-3.5-turbo-0125 onward, gpt-4, gpt-4o) uses the same three numbers.
"""

from __future__ import annotations

from collections.abc import Callable

# Counts the tokens of a text under one encoding; special-token strings count as ordinary text.
Count = Callable[[str], int]

# <|start|>{role}<|message|>...<|end|>: three tokens around every message.
TOKENS_PER_MESSAGE = 3
# A message's "name" costs its text plus one.
TOKENS_PER_NAME = 1
# Every reply is primed with <|start|>assistant<|message|>.
REPLY_PRIMING = 3

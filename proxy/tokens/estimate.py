"""Token estimates for each endpoint's parsed JSON body, and the output cap it asks for.

Pure apart from the one-off vocab load: tokenizing a large prompt is CPU work, so callers run big
bodies in a worker thread (tiktoken releases the GIL while encoding).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import tiktoken

from proxy.tokens.chat import chat_tokens
from proxy.tokens.claude import CLAUDE_COSTS, costs_for, messages_tokens, scaled, tiktoken_name
from proxy.tokens.images import GPT_4O_TILES, TileCosts
from proxy.tokens.overheads import Count
from proxy.tokens.prompts import prompt_tokens
from proxy.tokens.responses import responses_tokens
from proxy.tokens.tools import TOOL_OVERHEADS
from proxy.tokens.vocab import Vocab

_OUTPUT_CAP_KEYS = ("max_completion_tokens", "max_output_tokens", "max_tokens")
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_LONGEST_ROLE = max(map(len, _ROLES))


class TokenEstimator:
    """Prompt-token estimates; `encoding` is the name the model catalogue gives for the model.

    With `bound=True`, a prompt is not tokenized: each text counts as its UTF-8 length, a safe upper
    bound (every token of a byte-level BPE covers at least one byte), with the same per-message, tool
    and image costs. For when nothing needs the exact count (no policy reads the estimate, no limit
    holds it): a reservation then holds a little more until settle commits the provider's usage, and no
    prompt costs tiktoken's ~45 us per KB. Output counted when the provider reports no usage is exact.
    """

    def __init__(self, vocab: Vocab) -> None:
        self._vocab = vocab
        self._counters: dict[str, Count] = {}

    def counter(self, encoding: str) -> Count:
        count = self._counters.get(encoding)
        if count is None:
            if encoding in CLAUDE_COSTS:
                count = scaled(self.counter(tiktoken_name(encoding)), CLAUDE_COSTS[encoding].scale)
            else:
                count = _make_counter(self._vocab.encoding(encoding))
            self._counters[encoding] = count
        return count

    def prompt_counter(self, encoding: str, bound: bool = False) -> Count:
        """What prompt texts are counted with: the encoding, or with `bound` their UTF-8 length."""
        if not bound:
            return self.counter(encoding)
        if encoding in CLAUDE_COSTS:
            return scaled(utf8_length, CLAUDE_COSTS[encoding].scale)
        return utf8_length

    async def ready(self, encoding: str) -> None:
        """Build the tables `encoding` is counted with, off the loop, unless they are built: with
        `prompt_estimate: bound` the tables are built on first need (proxy/components.py load_vocab)."""
        if encoding not in self._counters:
            await asyncio.to_thread(self.counter, encoding)

    def text(self, encoding: str, text: str) -> int:
        return self.counter(encoding)(text)

    def chat(self, encoding: str, body: Mapping[str, Any], images: TileCosts = GPT_4O_TILES, *,
             bound: bool = False) -> int:
        return chat_tokens(self.prompt_counter(encoding, bound), TOOL_OVERHEADS[tiktoken_name(encoding)], images,
                           body)

    def responses(self, encoding: str, body: Mapping[str, Any], images: TileCosts = GPT_4O_TILES, *,
                  bound: bool = False) -> int:
        return responses_tokens(self.prompt_counter(encoding, bound), TOOL_OVERHEADS[tiktoken_name(encoding)],
                                images, body)

    def messages(self, encoding: str, body: Mapping[str, Any], *, bound: bool = False) -> int:
        """Anthropic's Messages API: the Claude estimate (proxy/tokens/claude.py)."""
        return messages_tokens(self.prompt_counter(encoding, bound), costs_for(encoding), body)

    def completions(self, encoding: str, body: Mapping[str, Any], *, bound: bool = False) -> int:
        count = self.prompt_counter(encoding, bound)
        suffix = body.get("suffix")
        return prompt_tokens(count, body.get("prompt")) + (count(suffix) if isinstance(suffix, str) else 0)

    def embeddings(self, encoding: str, body: Mapping[str, Any], *, bound: bool = False) -> int:
        return prompt_tokens(self.prompt_counter(encoding, bound), body.get("input"))

    def prompt(self, endpoint: str, encoding: str, body: Mapping[str, Any], *, bound: bool = False) -> int:
        """The estimate for `endpoint` (named as in the config: "chat.completions", "completions",
        "responses", "embeddings"), so the pipeline's estimate stage need not branch on it."""
        by_endpoint = {
            "chat.completions": self.chat,
            "responses": self.responses,
            "completions": self.completions,
            "embeddings": self.embeddings,
            "messages": self.messages,
        }
        estimate = by_endpoint.get(endpoint)
        if estimate is None:
            raise ValueError(f"no token estimate for endpoint {endpoint!r}")
        return estimate(encoding, body, bound=bound)

    def output(self, encoding: str, texts: Iterable[str]) -> int:
        """Tokens of streamed output when the upstream reports no usage: the deltas are joined
        first, because a token can span two chunks and per-chunk counts would overcount."""
        return self.counter(encoding)("".join(texts))


def utf8_length(text: str) -> int:
    """An upper bound on any byte-level BPE's token count of `text`, at a tiny fraction of encoding it."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _make_counter(core: tiktoken.Encoding) -> Count:
    # Every message repeats a role name; a call into tiktoken per role was ~8% of a chat estimate.
    roles = {role: len(core.encode_ordinary(role)) for role in _ROLES}

    def count(text: str) -> int:
        if len(text) <= _LONGEST_ROLE and text in roles:
            return roles[text]
        # encode_ordinary: "<|endoftext|>" typed by a user is text, never a special token or an error.
        return len(core.encode_ordinary(text))

    return count


def requested_max_output(body: Mapping[str, Any]) -> int | None:
    """The output cap per choice the request asks for, or None when it sets none.

    If a client sends several of the cap fields, the largest wins: it is the worst case a budget
    must cover whichever one the upstream honours.
    """
    caps = _int_fields(body, _OUTPUT_CAP_KEYS, minimum=0)
    return max(caps) if caps else None


def requested_choices(body: Mapping[str, Any]) -> int:
    """How many completions are generated: `n` (chat, completions) or `best_of` (completions).

    The worst-case output is `requested_max_output(body) * requested_choices(body)`.
    """
    return max(_int_fields(body, ("n", "best_of"), minimum=1), default=1)


def _int_fields(body: Mapping[str, Any], keys: Iterable[str], minimum: int) -> list[int]:
    # JSON true is a Python int; a boolean cap is a malformed request, not a cap of 1.
    return [
        value
        for key in keys
        if isinstance(value := body.get(key), int) and not isinstance(value, bool) and value >= minimum
    ]

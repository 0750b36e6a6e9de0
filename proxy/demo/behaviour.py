"""What the demo model answers, whichever API asked: text, a tool call, or JSON for a schema (pure).

It behaves like a real model where SDK users look first: given tools (and not just handed a tool
result) it calls the one whose name and description best match the prompt, with arguments valid against
its schema; asked for a JSON schema it answers JSON valid against it; stop sequences cut the answer and
max_tokens truncates it (one demo token per word).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from .schema_values import SchemaValues

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_'-]*")


def count_tokens(text: str) -> int:
    """The demo's own deterministic 'tokenizer': words and punctuation runs."""
    return max(1, len(text.split())) if text else 0


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ask:
    """A request, in terms common to both APIs."""

    prompt: str  # the last user text
    tool_result: str | None = None  # set when the last turn hands back a tool's result
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"  # auto | none | required | the name of the tool to call
    schema: dict[str, Any] | None = None  # answer JSON valid against this
    json_object: bool = False
    stops: tuple[str, ...] = ()
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    text: str = ""
    tool: Tool | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""
    stop: str = "end"  # end | stop_sequence | max_tokens | tool
    stop_sequence: str | None = None

    @property
    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()

    @property
    def output_tokens(self) -> int:
        return count_tokens(self.text) + (count_tokens(self.arguments_json) if self.tool else 0)


def answer(ask: Ask, reply: str) -> Answer:
    """`reply` is the model's plain-text answer (the demo's sentence, or a test's override)."""
    tool = choose_tool(ask)
    if tool is not None:
        arguments = SchemaValues(tool.schema, keyword(ask.prompt)).value()
        call_id = "call_" + hashlib.sha256(f"{tool.name}{ask.prompt}".encode()).hexdigest()[:24]
        return Answer(tool=tool, arguments=arguments if isinstance(arguments, dict) else {"value": arguments},
                      call_id=call_id, stop="tool")
    if ask.schema is not None:
        return Answer(text=orjson.dumps(SchemaValues(ask.schema, keyword(ask.prompt)).value()).decode())
    if ask.json_object:
        return Answer(text=orjson.dumps({"reply": reply}).decode())
    if ask.tool_result is not None:
        reply = f"The tool returned: {ask.tool_result}"
    return truncated(reply, ask)


def choose_tool(ask: Ask) -> Tool | None:
    if not ask.tools or ask.tool_choice == "none":
        return None
    if ask.tool_choice not in ("auto", "required"):
        return next((t for t in ask.tools if t.name == ask.tool_choice), ask.tools[0])
    if ask.tool_choice == "auto" and ask.tool_result is not None:
        return None  # a real model answers once it has the result
    words = {w.lower() for w in _WORD.findall(ask.prompt)}

    def overlap(tool: Tool) -> int:
        return len(words & {w.lower() for w in _WORD.findall(f"{tool.name.replace('_', ' ')} {tool.description}")})
    return max(ask.tools, key=overlap)  # max keeps the first of equals


def truncated(text: str, ask: Ask) -> Answer:
    stop, sequence = "end", None
    cut = min(((text.find(s), s) for s in ask.stops if s and s in text), default=None)
    if cut is not None:
        text, stop, sequence = text[: cut[0]], "stop_sequence", cut[1]
    words = text.split(" ")
    if ask.max_tokens is not None and len(words) > ask.max_tokens:
        text, stop, sequence = " ".join(words[: ask.max_tokens]), "max_tokens", None
    return Answer(text=text, stop=stop, stop_sequence=sequence)


def keyword(prompt: str) -> str:
    """The word an argument is filled with: the prompt's last capitalised word (a place, a name), else
    its last word."""
    words = _WORD.findall(prompt)
    capitalised = [w for w in words[1:] if w[0].isupper()]
    return str((capitalised or words or ["demo"])[-1])


def logprob_entry(token: str, top: int) -> dict[str, Any]:
    """OpenAI's logprobs entry for one token, with `top` alternatives (deterministic values)."""
    digest = hashlib.sha256(token.encode()).digest()
    best = -round(digest[0] / 2550, 4)
    alternatives = [{"token": token, "logprob": best, "bytes": list(token.encode())}]
    for i in range(1, top):
        alt = f"{token.strip()}_{i}"
        logprob = round(best - i - digest[i] / 255, 4)
        alternatives.append({"token": alt, "logprob": logprob, "bytes": list(alt.encode())})
    return {"token": token, "logprob": best, "bytes": list(token.encode()), "top_logprobs": alternatives[:top]}

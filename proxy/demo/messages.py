"""The demo model on Anthropic's Messages API: exact JSON answers and event streams, count_tokens too.

Streams follow the API's sequence: message_start (usage with the input tokens), per content block a
content_block_start, its deltas (text_delta, input_json_delta, thinking_delta and signature_delta) and a
content_block_stop, a ping after the first block starts, message_delta (stop reason, output tokens) and
message_stop; every event with its `event:` line.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .behaviour import Answer, Ask, Tool, answer, count_tokens
from .chat import ARGUMENT_PIECE, pieces
from .wire import digest, flatten, json_response

if TYPE_CHECKING:
    from .model import DemoModel

Json = dict[str, Any]
STOP_REASONS = {"end": "end_turn", "stop_sequence": "stop_sequence", "max_tokens": "max_tokens", "tool": "tool_use"}
THINKING = "Let me think about what was asked."


def ask_of(body: Json) -> Ask:
    messages = body.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    last = users[-1].get("content") if users else ""
    blocks = last if isinstance(last, list) else []
    results = [flatten(b.get("content")) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    prompts = [flatten(m.get("content")) for m in users
               if not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in m.get("content") or ()
                          if not isinstance(m.get("content"), str))]
    tools = tuple(Tool(t.get("name", ""), t.get("description") or "", t.get("input_schema") or {})
                  for t in body.get("tools") or () if isinstance(t, dict) and "input_schema" in t)
    choice = body.get("tool_choice") or {"type": "auto"}
    names = {"any": "required", "none": "none", "tool": str(choice.get("name", "auto"))}
    choice_name = names.get(str(choice.get("type")), "auto")
    config = body.get("output_config") or {}
    fmt = config.get("format") or body.get("output_format") or {}
    return Ask(prompt=prompts[-1] if prompts else "", tool_result=" ".join(results) if results else None,
               tools=tools, tool_choice=choice_name,
               schema=fmt.get("schema") or {} if fmt.get("type") == "json_schema" else None,
               stops=tuple(body.get("stop_sequences") or ()), max_tokens=body.get("max_tokens"))


def input_tokens(body: Json) -> int:
    system = body.get("system")
    total = count_tokens(system if isinstance(system, str) else flatten(system)) if system else 0
    return total + sum(count_tokens(flatten(m.get("content"))) + 3 for m in body.get("messages") or ()) + 3


def blocks(body: Json, result: Answer) -> list[Json]:
    out: list[Json] = []
    if (body.get("thinking") or {}).get("type") == "enabled":
        out.append({"type": "thinking", "thinking": THINKING, "signature": signature(THINKING)})
    if result.tool is not None:
        out.append({"type": "text", "text": f"I will use the {result.tool.name} tool."})
        out.append({"type": "tool_use", "id": "toolu_demo" + result.call_id[5:], "name": result.tool.name,
                    "input": result.arguments})
    else:
        out.append({"type": "text", "text": result.text})
    return out


def signature(text: str) -> str:
    return base64.b64encode(bytes.fromhex(digest(text.encode()))).decode()


async def messages(model: DemoModel, request: web.Request) -> web.StreamResponse:
    body = await request.json(loads=orjson.loads)
    ask = ask_of(body)
    result = answer(ask, model.reply(ask.prompt))
    content = blocks(body, result)
    output = sum(count_tokens(b.get("text") or b.get("thinking") or orjson.dumps(b.get("input")).decode())
                 for b in content)
    usage = {"input_tokens": input_tokens(body), "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "output_tokens": output}
    message = {"id": "msg_demo" + digest(orjson.dumps(body.get("messages")))[:24], "type": "message",
               "role": "assistant", "model": body.get("model", ""), "content": content,
               "stop_reason": STOP_REASONS[result.stop], "stop_sequence": result.stop_sequence, "usage": usage}
    if not body.get("stream"):
        return json_response(message)

    async def events() -> AsyncIterator[bytes]:
        yield event("message_start", {"message": {**message, "content": [], "stop_reason": None,
                                                  "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})
        for index, block in enumerate(content):
            for name, payload in block_events(index, block):
                yield event(name, payload)
            if index == 0:
                yield event("ping", {})
        yield event("message_delta", {"delta": {"stop_reason": message["stop_reason"],
                                                "stop_sequence": message["stop_sequence"]},
                                      "usage": {"output_tokens": output}})
        yield event("message_stop", {})
    return await model.stream(request, events(), done_marker=False)


def block_events(index: int, block: Json) -> list[tuple[str, Json]]:
    kind = block["type"]
    start = {"text": {"type": "text", "text": ""}, "thinking": {"type": "thinking", "thinking": "", "signature": ""},
             "tool_use": {**block, "input": {}}}[kind]
    deltas: list[Json]
    if kind == "text":
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces(Answer(text=block["text"]))]
    elif kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in pieces(Answer(text=block["thinking"]))]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        arguments = orjson.dumps(block["input"]).decode()
        deltas = [{"type": "input_json_delta", "partial_json": arguments[i:i + ARGUMENT_PIECE]}
                  for i in range(0, len(arguments), ARGUMENT_PIECE)]
    return [("content_block_start", {"index": index, "content_block": start}),
            *[("content_block_delta", {"index": index, "delta": d}) for d in deltas],
            ("content_block_stop", {"index": index})]


def event(name: str, payload: Json) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **payload})


async def count(request: web.Request) -> web.Response:
    body = await request.json(loads=orjson.loads)
    return json_response({"input_tokens": input_tokens(body)})

"""The demo model's chat completions: text, tool calls, JSON for a schema, n choices, stop, logprobs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .behaviour import Answer, Ask, Tool, answer, count_tokens, logprob_entry
from .wire import digest, flatten, json_response, openai_usage

if TYPE_CHECKING:
    from .model import DemoModel

Json = dict[str, Any]
FINISH = {"end": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool": "tool_calls"}
# Streamed tool arguments arrive in pieces this long, as a provider's do.
ARGUMENT_PIECE = 8


def ask_of(body: Json) -> Ask:
    messages = body.get("messages") or []
    users = [flatten(m.get("content")) for m in messages if m.get("role") == "user"]
    last = messages[-1] if messages else {}
    tools = tuple(Tool(f.get("name", ""), f.get("description") or "", f.get("parameters") or {})
                  for t in body.get("tools") or () if isinstance(f := t.get("function"), dict))
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name", "auto")
    fmt = body.get("response_format") or {}
    stops = body.get("stop")
    return Ask(prompt=users[-1] if users else "",
               tool_result=flatten(last.get("content")) if last.get("role") == "tool" else None,
               tools=tools, tool_choice=str(choice),
               schema=(fmt.get("json_schema") or {}).get("schema") or {} if fmt.get("type") == "json_schema" else None,
               json_object=fmt.get("type") == "json_object",
               stops=(stops,) if isinstance(stops, str) else tuple(stops or ()),
               max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"))


def pieces(result: Answer) -> list[str]:
    words = result.text.split(" ") if result.text else []
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def message(result: Answer) -> Json:
    out: Json = {"role": "assistant", "content": None if result.tool else result.text, "refusal": None}
    if result.tool:
        out["tool_calls"] = [{"id": result.call_id, "type": "function",
                              "function": {"name": result.tool.name, "arguments": result.arguments_json}}]
    return out


def logprobs(body: Json, tokens: list[str]) -> Json | None:
    if not body.get("logprobs"):
        return None
    return {"content": [logprob_entry(t, int(body.get("top_logprobs") or 0)) for t in tokens], "refusal": None}


async def chat(model: DemoModel, request: web.Request) -> web.StreamResponse:
    body = await request.json(loads=orjson.loads)
    messages = body.get("messages", [])
    ask = ask_of(body)
    result = answer(ask, model.reply(ask.prompt))
    n = int(body.get("n") or 1)
    prompt_tokens = sum(count_tokens(flatten(m.get("content"))) + 3 for m in messages) + 3
    usage = openai_usage(prompt_tokens, result.output_tokens * n)
    ident = {"id": "chatcmpl-demo" + digest(orjson.dumps(messages))[:20], "created": int(time.time()),
             "model": request.match_info.get("deployment") or body["model"], "system_fingerprint": "fp_demo"}
    finish = FINISH[result.stop]
    tokens = pieces(result)
    if not body.get("stream"):
        choices = [{"index": i, "message": message(result), "logprobs": logprobs(body, tokens),
                    "finish_reason": finish} for i in range(n)]
        return json_response({**ident, "object": "chat.completion", "usage": usage, "choices": choices})
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: Json, finish_reason: str | None = None, probs: Json | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": probs, "finish_reason": finish_reason}
        return orjson.dumps({**ident, "object": "chat.completion.chunk", "choices": [choice], **extra})

    async def events() -> AsyncIterator[bytes]:
        for index in range(n):
            yield chunk(index, {"role": "assistant", "content": "" if not result.tool else None, "refusal": None})
            if result.tool is not None:
                yield chunk(index, {"tool_calls": [{"index": 0, "id": result.call_id, "type": "function",
                                                    "function": {"name": result.tool.name, "arguments": ""}}]})
                arguments = result.arguments_json
                for start in range(0, len(arguments), ARGUMENT_PIECE):
                    yield chunk(index, {"tool_calls": [{"index": 0, "function": {
                        "arguments": arguments[start:start + ARGUMENT_PIECE]}}]})
            for token in tokens:
                yield chunk(index, {"content": token}, probs=logprobs(body, [token]))
            yield chunk(index, {}, finish)
        if include_usage:
            yield orjson.dumps({**ident, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return await model.stream(request, events())

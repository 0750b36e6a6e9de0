"""An Anthropic Messages request as an OpenAI chat completions request (pure).

`system` becomes a system message, `tool_use` blocks assistant tool calls, `tool_result` blocks tool
messages; thinking blocks from earlier turns are dropped (another model wrote them) and cache_control
marks too (OpenAI-style servers cache by themselves). What has no chat equivalent — extended thinking,
server tools, PDF documents, images in tool results, top_k — is refused with a 400 naming it.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...endpoints.base import Json
from ...errors import BadRequest

_REFUSED = {"mcp_servers": "MCP servers", "container": "containers", "context_management": "context management",
            "top_k": "top_k", "output_format": "output_format (use output_config.format)"}
# OpenAI's chat API takes at most four stop sequences.
MAX_STOPS = 4


def _refuse(what: str, param: str) -> BadRequest:
    return BadRequest(f"{what} is not available for this model: its upstream speaks OpenAI's chat completions "
                      "API.", param=param, code="unsupported_parameter")


def untranslatable(body: Json) -> None:
    for key, what in _REFUSED.items():
        if body.get(key) not in (None, [], {}):
            raise _refuse(what, key)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        raise _refuse("extended thinking", "thinking")
    stops = body.get("stop_sequences") or []
    if len(stops) > MAX_STOPS:
        raise _refuse(f"more than {MAX_STOPS} stop_sequences", "stop_sequences")
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") not in (None, "custom"):
            raise _refuse(f"the server tool {tool.get('type')!r}", "tools")


def to_chat(body: Json, max_output_tokens: int) -> Json:
    untranslatable(body)
    messages: list[Json] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        messages.append({"role": "system", "content": "\n\n".join(b.get("text", "") for b in system)})
    for i, message in enumerate(body["messages"]):
        if message["role"] == "assistant":
            messages.append(_assistant(message["content"], i))
        else:
            messages.extend(_user(message["content"], i))
    out: Json = {"model": body["model"], "messages": messages, "max_tokens": max_output_tokens}
    if body.get("stream"):
        # Usage arrives only when asked; the Messages stream needs it for message_delta.
        out.update(stream=True, stream_options={"include_usage": True})
    for key in ("temperature", "top_p"):
        if isinstance(body.get(key), int | float):
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    tools = body.get("tools")
    if tools:
        out["tools"] = [{"type": "function", "function": {
            "name": t.get("name", ""), "description": t.get("description", ""),
            "parameters": t.get("input_schema") or {"type": "object", "properties": {}}}} for t in tools]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            out["tool_choice"] = _tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                out["parallel_tool_calls"] = False
    fmt = (body.get("output_config") or {}).get("format") if isinstance(body.get("output_config"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": fmt.get("schema") or {"type": "object"}, "strict": True}}
    return out


def _tool_choice(choice: Json) -> Any:
    kind = choice.get("type")
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    return "none" if kind == "none" else "auto"


def _user(content: Any, i: int) -> list[Json]:
    """A user turn: tool results become tool messages (first, as chat wants them right after the calls)."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[Json] = []
    parts: list[Json] = []
    for j, block in enumerate(content):
        kind = block.get("type")
        where = f"messages[{i}].content[{j}]"
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block.get("source"), where)}})
        elif kind == "tool_result":
            tools.append({"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")),
                          "content": _tool_result_text(block, where)})
        elif kind == "document":
            parts.append({"type": "text", "text": _document_text(block, where)})
        elif kind not in ("thinking", "redacted_thinking"):
            raise _refuse(f"{kind!r} content blocks", where)
    if parts:
        tools.append({"role": "user", "content": parts})
    return tools


def _assistant(content: Any, i: int) -> Json:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[Json] = []
    for j, block in enumerate(content):
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append({"id": str(block.get("id", f"call_{i}_{j}")), "type": "function", "function": {
                "name": block.get("name", ""), "arguments": orjson.dumps(block.get("input") or {}).decode()}})
        elif kind not in ("thinking", "redacted_thinking"):
            raise _refuse(f"{kind!r} content blocks", f"messages[{i}].content[{j}]")
    message: Json = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _image_url(source: Any, where: str) -> str:
    if isinstance(source, dict) and source.get("type") == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    if isinstance(source, dict) and source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise _refuse("images given by file id", where)


def _tool_result_text(block: Json, where: str) -> str:
    content = block.get("content")
    if isinstance(content, list):
        if any(isinstance(b, dict) and b.get("type") != "text" for b in content):
            raise _refuse("non-text tool results", where)
        content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
    text = content if isinstance(content, str) else ""
    return f"Error: {text}" if block.get("is_error") else text


def _document_text(block: Json, where: str) -> str:
    source = block.get("source") or {}
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return str(source["data"])
    if source.get("type") == "content":
        return "".join(b.get("text", "") for b in source.get("content") or () if isinstance(b, dict))
    raise _refuse("PDF documents", where)

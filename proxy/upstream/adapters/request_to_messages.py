"""An OpenAI chat completions request as an Anthropic Messages request (pure).

system/developer messages become `system`; tool results become user `tool_result` blocks; assistant
tool calls become `tool_use` blocks; consecutive messages of one role are merged, as Messages wants
turns to alternate. Options with no Messages equivalent that change the shape of the answer (n > 1,
logprobs, audio, penalties, json_object) are refused with a 400 naming them.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...endpoints.base import Json
from ...errors import BadRequest

_REFUSED = {
    "logprobs": "log probabilities", "top_logprobs": "log probabilities", "audio": "audio output",
    "modalities": "output modalities", "prediction": "predicted outputs", "logit_bias": "logit_bias",
    "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty",
    "reasoning_effort": "reasoning_effort", "functions": "legacy functions (use tools)",
    "function_call": "legacy function_call (use tool_choice)", "web_search_options": "web search options",
}


def untranslatable(body: Json) -> None:
    """Raises BadRequest when the request asks for something Claude's Messages API cannot do."""
    for key, what in _REFUSED.items():
        value = body.get(key)
        if value not in (None, False, 0, 0.0, {}, []):
            raise BadRequest(f"{what} ({key}) is not available for this model: its upstream speaks Anthropic's "
                             "Messages API.", param=key, code="unsupported_parameter")
    n = body.get("n")
    if n not in (None, 1):
        raise BadRequest("n > 1 is not available for this model: its upstream speaks Anthropic's Messages API, "
                         "which returns one completion per request.", param="n", code="unsupported_parameter")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text", "json_schema"):
        raise BadRequest(f"response_format {fmt.get('type')!r} is not available for this model; use json_schema.",
                         param="response_format", code="unsupported_parameter")
    stops = body.get("stop")
    if isinstance(stops, list) and not all(isinstance(s, str) for s in stops):
        raise BadRequest("stop must be a string or a list of strings.", param="stop", code="invalid_type")


def to_messages(body: Json, max_output_tokens: int) -> Json:
    untranslatable(body)
    system: list[str] = []
    turns: list[Json] = []
    for i, message in enumerate(body.get("messages") or ()):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content")))
            continue
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id") or ""),
                     "content": _tool_result_content(message.get("content"))}
            _append(turns, "user", [block])
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), i))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, i))
        else:
            raise BadRequest(f"messages[{i}].role {role!r} cannot be sent to this model.", param=f"messages[{i}].role")
    out: Json = {"model": body["model"], "messages": turns, "max_tokens": max_output_tokens}
    if system:
        out["system"] = "\n\n".join(system)
    if body.get("stream"):
        out["stream"] = True
    if isinstance(body.get("temperature"), int | float):
        # OpenAI's scale runs to 2, Anthropic's to 1.
        out["temperature"] = min(float(body["temperature"]), 1.0)
    if isinstance(body.get("top_p"), int | float):
        out["top_p"] = body["top_p"]
    stops = body.get("stop")
    if stops:
        out["stop_sequences"] = [stops] if isinstance(stops, str) else list(stops)
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    tools = [_tool(t) for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    return out


def _append(turns: list[Json], role: str, blocks: list[Json]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _tool_result_content(content: Any) -> str | list[Json]:
    if isinstance(content, list):
        return [{"type": "text", "text": p["text"]} for p in content
                if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return content if isinstance(content, str) else ""


def _user_blocks(content: Any, i: int) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[Json] = []
    for j, part in enumerate(content or ()):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append({"type": "image", "source": _image_source(url, f"messages[{i}].content[{j}]")})
        else:
            raise BadRequest(f"messages[{i}].content[{j}]: {kind!r} parts cannot be sent to this model.",
                             param=f"messages[{i}].content[{j}]", code="unsupported_parameter")
    return blocks


def _image_source(url: Any, where: str) -> Json:
    if isinstance(url, str) and url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[len("data:"):].split(";")[0]
        if header.endswith(";base64") and media_type:
            return {"type": "base64", "media_type": media_type, "data": data}
        raise BadRequest(f"{where}: only base64 data URLs can be sent to this model.", param=where)
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise BadRequest(f"{where}: the image URL must be a data URL or an http(s) URL.", param=where)


def _assistant_blocks(message: Json, i: int) -> list[Json]:
    blocks: list[Json] = []
    text = _plain_text(message.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise BadRequest(f"messages[{i}].tool_calls[{j}]: only function calls can be sent to this model.",
                             param=f"messages[{i}].tool_calls[{j}]")
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise BadRequest(f"messages[{i}].tool_calls[{j}].function.arguments is not valid JSON.",
                             param=f"messages[{i}].tool_calls[{j}].function.arguments") from None
        blocks.append({"type": "tool_use", "id": str(call.get("id") or f"toolu_{i}_{j}"),
                       "name": str(function.get("name") or ""), "input": arguments if isinstance(arguments, dict)
                       else {"value": arguments}})
    if not blocks:
        blocks.append({"type": "text", "text": ""})
    return blocks


def _tool(tool: Json) -> Json:
    function = tool.get("function") or {}
    out: Json = {"name": function.get("name", ""),
                 "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> Json | None:
    out: Json | None = None
    if choice == "auto":
        out = {"type": "auto"}
    elif choice == "none":
        out = {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name", "")}
    if parallel is False:
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out

"""Small pieces of the wire formats the demo model's handlers share."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

Json = dict[str, Any]


def flatten(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p if isinstance(p, str) else flatten(p.get("content")) if p.get("type") == "tool_result"
                        else str(p.get("text", "")) for p in content if p)
    return ""


def openai_usage(prompt_tokens: int, completion_tokens: int) -> Json:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_response(document: Json, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")

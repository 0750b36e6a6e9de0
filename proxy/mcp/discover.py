"""The gateway lists a server's tools itself when it must decide on a tool it has not seen listed (the
client never listed, or listed through another worker), so the policy gets the tool's annotations."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.errors import UpstreamError
from proxy.ids import new_id
from proxy.upstream import sse

from . import jsonrpc
from .tools import ToolCatalog
from .upstream import McpUpstream, forward_headers

MAX_TOOL_PAGES = 10


async def fetch_tools(upstream: McpUpstream, client_headers: Mapping[str, str], session: str | None,
                      catalog: ToolCatalog) -> None:
    """tools/list, page by page, in the client's session, to learn annotations; any failure leaves them
    unknown (which the policy sees as `tool.known: false`)."""
    headers = {**forward_headers(client_headers, params=False), "content-type": "application/json"}
    headers.pop("mcp-name", None)
    if "mcp-method" in headers:
        headers["mcp-method"] = "tools/list"
    cursor: object = None
    for page in range(MAX_TOOL_PAGES):
        id_ = f"llm-policy-proxy-tools-{new_id()}-{page}"
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": "tools/list"}
        if isinstance(cursor, str):
            message["params"] = {"cursor": cursor}
        try:
            result = await listed_result(upstream, headers, message)
        except UpstreamError:
            return
        if result is None:
            return
        catalog.learn(upstream.name, session, result)
        cursor = result.get("nextCursor")
        if not isinstance(cursor, str):
            return


async def listed_result(upstream: McpUpstream, headers: Mapping[str, str], message: dict[str, Any]) \
        -> dict[str, Any] | None:
    response = await upstream.send("POST", headers, jsonrpc.dumps(message))
    try:
        content_type = response.headers.get("content-type", "").lower()
        documents: list[Any] = []
        if response.status == 200 and content_type.startswith("application/json"):
            documents = as_list(await upstream.read_body(response))
        elif response.status == 200 and content_type.startswith("text/event-stream"):
            parser = sse.SSEParser()
            while not documents and (chunk := await upstream.read_chunk(response, upstream.config.timeouts.response_s)):
                for event in parser.feed(chunk):
                    with contextlib.suppress(orjson.JSONDecodeError):
                        document = orjson.loads(event.data or b"null")
                        if isinstance(document, dict) and document.get("id") == message["id"]:
                            documents.append(document)
        for document in documents:
            if isinstance(document, dict) and document.get("id") == message["id"]:
                result = document.get("result")
                return result if isinstance(result, dict) else None
        return None
    finally:
        response.close()


def as_list(body: Any) -> list[Any]:
    document = orjson.loads(body)
    return document if isinstance(document, list) else [document]

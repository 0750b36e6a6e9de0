"""What the gateway knows of each server's tools: annotations learned from tools/list results, and the
filtering of a tools/list result down to the tools a caller may use."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

from .input import clean_annotations

Annotations = Mapping[str, Any]


class ToolCatalog:
    """Per (server, session), bounded; per server as a fallback, for a session listed by another worker."""

    def __init__(self, max_sessions: int = 10_000) -> None:
        self._max = max_sessions
        self._sessions: OrderedDict[tuple[str, str | None], dict[str, Annotations]] = OrderedDict()
        self._servers: dict[str, dict[str, Annotations]] = {}

    def learn(self, server: str, session: str | None, result: object) -> None:
        """Remember the tools of one tools/list result (one page: pages add up)."""
        tools = listed_tools(result)
        if not tools:
            return
        key = (server, session)
        known = self._sessions.pop(key, {})
        known.update(tools)
        self._sessions[key] = known
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        per_server = self._servers.setdefault(server, {})
        if len(per_server) + len(tools) > self._max:
            per_server.clear()
        per_server.update(tools)

    def annotations(self, server: str, session: str | None, name: str) -> Annotations | None:
        """The tool's hints, or None when no tools/list seen here named it."""
        found = self._sessions.get((server, session), {}).get(name)
        return found if found is not None else self._servers.get(server, {}).get(name)

    def forget(self, server: str, session: str | None) -> None:
        self._sessions.pop((server, session), None)


def listed_tools(result: object) -> dict[str, Annotations]:
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
        return {}
    return {tool["name"]: clean_annotations(tool.get("annotations"))
            for tool in result["tools"] if isinstance(tool, dict) and isinstance(tool.get("name"), str)}


def filtered(result: dict[str, Any], visible: Collection[str]) -> tuple[dict[str, Any], int]:
    """The result with only `visible` tools, and how many were hidden."""
    tools = result.get("tools")
    if not isinstance(tools, list):
        return result, 0
    kept = [t for t in tools if isinstance(t, dict) and t.get("name") in visible]
    return {**result, "tools": kept}, len(tools) - len(kept)

"""The MCP policy input (policies/schema/mcp_input.v1.json): a pure function of one message's facts.

Same contract family as model calls: `identity`, `pii` (types, counts, paths; never values), `budget` and
`time` have the shapes of input v1; `request.api` names the door.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.identity import Identity
from proxy.pii import Finding
from proxy.policy.input import INPUT_VERSION, BudgetState, budget_input, identity_input, pii_input, time_input

# The hints MCP defines on a tool (ToolAnnotations); anything else a server sends is not passed on.
ANNOTATION_KEYS = ("title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


@dataclass(frozen=True, slots=True)
class ToolFacts:
    name: str
    annotations: Mapping[str, Any] | None  # None: the server never listed this tool (to this gateway)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    server: str
    kind: str  # request | notification | response | listen (GET) | terminate (DELETE)
    method: str | None
    name: str | None = None  # params.name or params.uri
    protocol_version: str | None = None
    session: bool = False
    listing: bool = False  # a tools/call asked only to decide whether tools/list may show the tool


def clean_annotations(value: object) -> dict[str, Any]:
    """The hints of a listed tool, each of its defined type (a hint of the wrong type is as if absent)."""
    if not isinstance(value, dict):
        return {}
    return {key: value[key] for key in ANNOTATION_KEYS
            if isinstance(value.get(key), str if key == "title" else bool)}


def build_mcp_input(message: MessageFacts, identity: Identity, tool: ToolFacts | None, pii: Iterable[Finding],
                    budget: Iterable[BudgetState], now: float) -> dict[str, Any]:
    return {
        "version": INPUT_VERSION,
        "request": {
            "api": "mcp",
            "server": message.server,
            "kind": message.kind,
            "method": message.method,
            "name": message.name,
            "protocol_version": message.protocol_version,
            "session": message.session,
            "listing": message.listing,
        },
        "tool": None if tool is None else {
            "name": tool.name,
            "known": tool.annotations is not None,
            "annotations": dict(tool.annotations or {}),
        },
        "identity": identity_input(identity),
        "pii": pii_input(list(pii)),
        "budget": budget_input(budget),
        "time": time_input(now),
    }

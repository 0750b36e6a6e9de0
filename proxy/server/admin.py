"""Admin routes behind an admin key or admin token claim: budget usage and resets, API keys and their use
(and, with egress on, the shadow-AI report)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from proxy.budget import BudgetStore
from proxy.budget.store import ScopeUsage
from proxy.components import COMPONENTS
from proxy.egress.report import parse_since, shadow_ai_report
from proxy.errors import BadRequest, Forbidden
from proxy.gateway.observation import Observation
from proxy.identity import Identity


def require_admin(identity: Identity) -> None:
    if not identity.admin:
        raise Forbidden("This route needs an admin key or a token with the admin claim.", code="admin_required")


def usage_rows(usages: list[ScopeUsage]) -> list[dict[str, Any]]:
    rows = []
    for usage in usages:
        rows.append({"scope": usage.limit.scope, **usage.state.to_policy()})
    rows.sort(key=lambda row: (row["scope"], row["window"]))
    return rows


async def budget_usage(store: BudgetStore, prefix: str | None) -> list[dict[str, Any]]:
    return usage_rows(await store.usage(prefix or None))


async def get_budgets(request: web.Request, observation: Observation, identity: Identity) -> web.Response:
    require_admin(identity)
    rows = await budget_usage(request.app[COMPONENTS].store, request.query.get("scope"))
    return web.Response(body=orjson.dumps({"object": "list", "data": rows}), content_type="application/json")


async def reset_budget(request: web.Request, observation: Observation, identity: Identity) -> web.Response:
    require_admin(identity)
    try:
        scope = (await request.json(loads=orjson.loads))["scope"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest('Send {"scope": "team:payments"} to reset one scope.', param="scope") from None
    if not isinstance(scope, str) or ":" not in scope:
        raise BadRequest("scope must look like kind:name, e.g. team:payments", param="scope")
    await request.app[COMPONENTS].store.reset(scope)
    return web.Response(body=orjson.dumps({"reset": scope}), content_type="application/json")


async def get_shadow_ai(request: web.Request, observation: Observation, identity: Identity) -> web.Response:
    require_admin(identity)
    try:
        since = parse_since(request.query.get("since", "7d"))
    except ValueError as exc:
        raise BadRequest(f"since: {exc}", param="since") from None
    rows = await shadow_ai_report(request.app[COMPONENTS].event_log, since)
    return web.Response(body=orjson.dumps({"object": "list", "data": rows}), content_type="application/json")


async def get_keys(request: web.Request, observation: Observation, identity: Identity) -> web.Response:
    """Every issued key (never its hash) with status, and requests and last use as seen by this process."""
    require_admin(identity)
    rows = request.app[COMPONENTS].authenticator.keys.rows()
    return web.Response(body=orjson.dumps({"object": "list", "data": rows}), content_type="application/json")


ROUTES: tuple[tuple[str, str, Callable[[web.Request, Observation, Identity], Awaitable[web.Response]]], ...] = (
    ("GET", "/admin/keys", get_keys),
    ("GET", "/admin/budgets", get_budgets),
    ("GET", "/admin/shadow-ai", get_shadow_ai),
    ("POST", "/admin/budgets/reset", reset_budget),
)

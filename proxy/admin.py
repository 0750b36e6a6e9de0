"""Admin routes behind an admin key or admin token claim: budget usage and resets, API keys and their use
(and, with egress on, the shadow-AI report)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .budget import BudgetStore
from .budget.store import ScopeUsage
from .egress.report import parse_since, shadow_ai_report
from .errors import BadRequest, Forbidden
from .services import AUTHENTICATOR, EVENT_LOG, IDENTITY, SERVICES


def require_admin(request: web.Request) -> None:
    if not request[IDENTITY].admin:
        raise Forbidden("This route needs an admin key or a token with the admin claim.", code="admin_required")


def usage_rows(usages: list[ScopeUsage]) -> list[dict[str, Any]]:
    rows = []
    for usage in usages:
        rows.append({"scope": usage.limit.scope, **usage.state.to_policy()})
    rows.sort(key=lambda row: (row["scope"], row["window"]))
    return rows


async def budget_usage(store: BudgetStore, prefix: str | None) -> list[dict[str, Any]]:
    return usage_rows(await store.usage(prefix or None))


async def get_budgets(request: web.Request) -> web.Response:
    require_admin(request)
    rows = await budget_usage(request.app[SERVICES].store, request.query.get("scope"))
    return web.Response(body=orjson.dumps({"object": "list", "data": rows}), content_type="application/json")


async def reset_budget(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        scope = (await request.json(loads=orjson.loads))["scope"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest('Send {"scope": "team:payments"} to reset one scope.', param="scope") from None
    if not isinstance(scope, str) or ":" not in scope:
        raise BadRequest("scope must look like kind:name, e.g. team:payments", param="scope")
    await request.app[SERVICES].store.reset(scope)
    return web.Response(body=orjson.dumps({"reset": scope}), content_type="application/json")


async def get_shadow_ai(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        since = parse_since(request.query.get("since", "7d"))
    except ValueError as exc:
        raise BadRequest(f"since: {exc}", param="since") from None
    rows = await shadow_ai_report(request.app[EVENT_LOG], since)
    return web.Response(body=orjson.dumps({"object": "list", "data": rows}), content_type="application/json")


async def get_keys(request: web.Request) -> web.Response:
    """Every issued key (never its hash) with status, and requests and last use as seen by this process."""
    require_admin(request)
    rows = request.app[AUTHENTICATOR].keys.rows()
    return web.Response(body=orjson.dumps({"object": "list", "data": rows}), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/keys", get_keys)
    app.router.add_get("/admin/budgets", get_budgets)
    app.router.add_get("/admin/shadow-ai", get_shadow_ai)
    app.router.add_post("/admin/budgets/reset", reset_budget)
